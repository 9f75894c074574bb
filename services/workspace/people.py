"""Commands about people's accounts that the admin command line and the demo run use."""

from __future__ import annotations

import secrets
from email.message import EmailMessage
from urllib.parse import urlencode

from shared.registry import Person, Registry, RegistryError

DEMO_PEOPLE = (
    ("jobcoach", "jc-demo", "jobcoach@demo.werkbrug.nl"),
    ("operator", None, "regiobeheer@demo.werkbrug.nl"),
    ("council", None, "clientenraad@demo.werkbrug.nl"),
    ("employer", "emp-demo", "werkgever@demo.werkbrug.nl"),
)


def invitation_link(public_url: str, token: str) -> str:
    return f"{public_url}/set-password?{urlencode({'token': token})}"


def invitation_mail(sender: str, person: Person, link: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = person.email
    message["Subject"] = "Kies je wachtwoord voor Werkbrug"
    message.set_content(
        "Hallo,\n\n"
        f"Je hebt een account voor Werkbrug gekregen (regio {person.tenant}).\n"
        "Kies je wachtwoord met deze link. De link werkt 48 uur en maar één keer:\n\n"
        f"{link}\n\n"
        "Heb je hier niet om gevraagd? Dan kun je deze mail negeren.\n"
    )
    return message


def seed_demo_people(registry: Registry, tenant: str) -> list[tuple[str, str, str]]:
    """One person per role for a local run, each with a fresh random password: (role, e-mail, password)."""
    registry.create_tenant(tenant)
    signed: list[tuple[str, str, str]] = []
    for role, subject, email in DEMO_PEOPLE:
        address = email if tenant == "noord-limburg" else email.replace("@demo.", f"@{tenant}.demo.")
        password = secrets.token_urlsafe(12)
        try:
            registry.set_password(address, password)
        except RegistryError:  # not there yet
            registry.create_person(tenant, role, subject, address, password)
        signed.append((role, address, password))
    return signed
