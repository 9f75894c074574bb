"""The workspace's admin subcommands: ``werkbrug people ...`` and ``werkbrug workspace upgrade-db``.

Composed into the ``werkbrug`` command line through :func:`add_commands`.
"""

from __future__ import annotations

import smtplib
import sys

from services.workspace import config, people, store
from shared import mail
from shared.config import registry_database_url
from shared.db import Database, upgrade
from shared.registry import ROLES, Registry, RegistryError


def _registry() -> Registry:
    return Registry(Database(registry_database_url()))


def cmd_invite(args) -> int:
    person, token = _registry().invite_person(args.tenant, args.role, args.subject, args.email)
    link = people.invitation_link(config.public_url(), token)
    # The link alone on stdout, so that a script can hand it on; everything else on stderr.
    print(link)
    if mail.smtp_configured() and not args.no_mail:
        settings = mail.smtp_settings()
        try:
            mail.send(settings, people.invitation_mail(settings.sender, person, link))
        except (OSError, smtplib.SMTPException) as exc:
            print(
                f"werkbrug: the link was made but not mailed ({type(exc).__name__}); pass it on yourself",
                file=sys.stderr,
            )
            return 1
        print(f"mailed to {person.email}", file=sys.stderr)
    else:
        print("no SMTP_HOST configured: pass the link on yourself (valid 48 hours, once)", file=sys.stderr)
    return 0


def cmd_create(args) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise RegistryError("no password on standard input")
    person = _registry().create_person(args.tenant, args.role, args.subject, args.email, password)
    state = "can sign in" if password else "has no password yet: send an invitation"
    print(f"{person.email} ({person.role}, {person.tenant}) created and {state}", file=sys.stderr)
    return 0


def cmd_seed_demo(args) -> int:
    for role, email, password in people.seed_demo_people(_registry(), args.tenant):
        print(f"{role:<9} {email}  {password}")
    return 0


def cmd_upgrade_db(_args) -> int:
    upgrade(store.MIGRATIONS, config.database_url())
    print("workspace database up to date", file=sys.stderr)
    return 0


def _person_arguments(parser) -> None:
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--subject", help="the jobcoach or employer id the person acts as (needed for those roles)")
    parser.add_argument("--email", required=True)


def add_commands(subparsers) -> None:
    people_commands = subparsers.add_parser("people", help="people who sign in to the workspace").add_subparsers(
        dest="action", required=True
    )
    invite = people_commands.add_parser("invite", help="print a one-time link to set a password (48 hours)")
    _person_arguments(invite)
    invite.add_argument("--no-mail", action="store_true", help="only print the link, even with SMTP configured")
    invite.set_defaults(func=cmd_invite)
    create = people_commands.add_parser("create", help="create an account (for scripts)")
    _person_arguments(create)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(func=cmd_create)
    seed = people_commands.add_parser("seed-demo", help="demo people with fresh passwords; prints their sign-in")
    seed.add_argument("--tenant", default="noord-limburg")
    seed.set_defaults(func=cmd_seed_demo)

    workspace = subparsers.add_parser("workspace", help="the workspace's own database").add_subparsers(
        dest="action", required=True
    )
    workspace.add_parser("upgrade-db", help="apply the workspace's migrations").set_defaults(func=cmd_upgrade_db)
