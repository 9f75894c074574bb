"""``werkbrug``: the admin command line (tenants, keys, migrations, topics, demo data), and whatever commands
the services add of their own (see :data:`admin.services.COMMANDS`).

Scriptable forms that must keep working: ``werkbrug tenants create SLUG`` and
``werkbrug keys create --tenant SLUG --role ROLE [--subject ID]``, which prints the key alone on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import timedelta

from admin import demo
from admin.services import COMMANDS, SERVICE_PORTS, SERVICES, migrations, settings_of, tenant_settings
from shared.config import registry_database_url, var_dir
from shared.db import Database, upgrade
from shared.errors import Refused
from shared.registry import ROLES, KeyInfo, Registry, RegistryError
from shared.topics import ensure_topics


def _registry() -> Registry:
    return Registry(Database(registry_database_url()))


def cmd_tenants_create(args) -> int:
    created = _registry().create_tenant(args.slug, args.name)
    print(f"tenant {args.slug} {'created' if created else 'already exists'}", file=sys.stderr)
    return 0


def cmd_tenants_list(_args) -> int:
    for slug in _registry().tenant_slugs():
        print(slug)
    return 0


def cmd_tenants_settings(args) -> int:
    registry = Registry(Database(registry_database_url()), tenant_settings=tenant_settings())
    if args.changes:
        changes = {}
        for change in args.changes:
            name, sep, value = change.partition("=")
            if not sep:
                raise RegistryError(f"expected NAME=VALUE, got {change!r}")
            changes[name.strip()] = value.strip()
        settings = registry.change_settings(args.slug, changes)
    else:
        if args.slug not in registry.tenant_slugs():
            raise RegistryError(f"no tenant {args.slug!r}")
        settings = registry.settings(args.slug)
    print(json.dumps(settings.to_dict(), indent=2))
    return 0


DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``90d`` (also ``s`` and ``w``) as a timedelta; anything else is refused."""
    match = DURATION.match(text.strip())
    if not match:
        raise RegistryError(f"a duration is a number and a unit (s, m, h, d or w), such as 30m, 12h or 90d: {text!r}")
    return timedelta(**{DURATION_UNITS[match.group(2)]: int(match.group(1))})


def _key_id(text: str) -> int:
    if not text.isdigit():
        raise RegistryError(f"a key id is a number (see 'werkbrug keys list'): {text!r}")
    return int(text)


def cmd_keys_create(args) -> int:
    registry = _registry()
    expires_at = registry.clock() + parse_duration(args.expires_in) if args.expires_in else None
    print(registry.issue_key(args.tenant, args.role, args.subject, args.label, expires_at)[1])
    return 0


def _when(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def _key_json(key: KeyInfo) -> dict:
    return {
        "id": key.id,
        "role": key.role,
        "subject": key.subject,
        "created_at": _when(key.created_at),
        "last_used_at": _when(key.last_used_at),
        "expires_at": _when(key.expires_at),
        "revoked_at": _when(key.revoked_at),
    }


def _key_row(key: KeyInfo) -> list[str]:
    def minute(moment) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"

    times = (key.created_at, key.last_used_at, key.expires_at, key.revoked_at)
    return [str(key.id), key.role, key.subject or "-", *(minute(moment) for moment in times)]


def cmd_keys_list(args) -> int:
    keys = _registry().list_keys(args.tenant)
    if args.json:
        print(json.dumps([_key_json(key) for key in keys], indent=2))
        return 0
    columns = ("id", "role", "subject", "created_at", "last_used_at", "expires_at", "revoked_at")
    rows = [list(columns)] + [_key_row(key) for key in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_keys_revoke(args) -> int:
    registry = _registry()
    key_id = _key_id(args.key_id)
    if registry.key_info(key_id) is None:
        raise RegistryError(f"no key with id {key_id}")
    revoked = registry.revoke_key(key_id)
    print(f"key {key_id} {'revoked' if revoked else 'was revoked already'}", file=sys.stderr)
    return 0


def cmd_keys_rotate(args) -> int:
    registry = _registry()
    grace = parse_duration(args.grace)
    expires_at = registry.clock() + parse_duration(args.expires_in) if args.expires_in else None
    new_id, key, old_ends = registry.rotate_key(_key_id(args.key_id), grace, expires_at)
    print(key)
    print(f"new key {new_id}; key {args.key_id} keeps working until {old_ends.isoformat()}", file=sys.stderr)
    return 0


def cmd_db_upgrade(args) -> int:
    targets = args.service or ([] if args.registry else list(SERVICES))
    if args.registry or not args.service:
        _registry().migrate()
        print("registry database up to date", file=sys.stderr)
    for service in targets:
        upgrade(migrations()[service], settings_of(service).database_url)
        print(f"{service} database up to date", file=sys.stderr)
    return 0


def cmd_kafka_create_topics(args) -> int:
    ensure_topics(args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    print("topics ready", file=sys.stderr)
    return 0


def cmd_demo_seed(args) -> int:
    keys = demo.seed_registry(_registry(), args.tenant)
    env_file = var_dir() / "demo-keys.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export WERKBRUG_TENANT={args.tenant}"] + [f"export {name}={key}" for name, key in keys.items()]
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env_file.chmod(0o600)
    for name, key in keys.items():
        print(f"{name}={key}")
    print(f"# also written to {env_file}", file=sys.stderr)
    return 0


def cmd_demo_load(args) -> int:
    keys = {name: os.environ.get(name, "") for name in ("JOBCOACH_KEY", "EMPLOYER_KEY")}
    if not all(keys.values()):
        raise Refused("no demo keys in the environment: run 'werkbrug demo seed', then 'source var/demo-keys.env'")
    urls = demo.ServiceUrls(args.candidate_url, args.vacancy_url)
    print(
        demo.post_demo_data(urls, args.tenant, keys["JOBCOACH_KEY"], keys["EMPLOYER_KEY"], args.wait), file=sys.stderr
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="werkbrug", description="Werkbrug administration")
    commands = parser.add_subparsers(dest="command", required=True)

    tenants = commands.add_parser("tenants", help="labour-market regions").add_subparsers(dest="action", required=True)
    create = tenants.add_parser("create", help="create a tenant (idempotent)")
    create.add_argument("slug")
    create.add_argument("--name", help="display name, defaults to the slug")
    create.set_defaults(func=cmd_tenants_create)
    tenants.add_parser("list", help="list tenants").set_defaults(func=cmd_tenants_list)
    settings = tenants.add_parser("set", help="show a tenant's settings, or change them with NAME=VALUE")
    settings.add_argument("slug")
    settings.add_argument("changes", nargs="*", metavar="NAME=VALUE")
    settings.set_defaults(func=cmd_tenants_settings)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    key = keys.add_parser("create", help="create an API key and print it alone on stdout")
    key.add_argument("--tenant", required=True)
    key.add_argument("--role", required=True, choices=ROLES)
    key.add_argument("--subject", help="the employer or jobcoach id the key acts as")
    key.add_argument("--label", help="a note for whoever revokes keys later")
    key.add_argument("--expires-in", metavar="DURATION", help="refused from then on, such as 30m, 12h or 90d")
    key.set_defaults(func=cmd_keys_create)
    listing = keys.add_parser("list", help="a tenant's keys: id, role, subject, created, last used, expiry, revoked")
    listing.add_argument("--tenant", required=True)
    listing.add_argument("--json", action="store_true", help="as a JSON array")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="refuse a key from now on (every service within 10 seconds)")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)
    rotate = keys.add_parser(
        "rotate", help="print a new key for the same tenant, role and subject; the old one ends after --grace"
    )
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", required=True, metavar="DURATION", help="how long the old key keeps working")
    rotate.add_argument("--expires-in", metavar="DURATION", help="the new key is refused from then on")
    rotate.set_defaults(func=cmd_keys_rotate)

    db = commands.add_parser("db", help="databases").add_subparsers(dest="action", required=True)
    up = db.add_parser("upgrade", help="apply migrations (all services and the registry by default)")
    up.add_argument("--service", action="append", choices=SERVICES)
    up.add_argument("--registry", action="store_true")
    up.set_defaults(func=cmd_db_upgrade)

    kafka = commands.add_parser("kafka", help="Kafka topics").add_subparsers(dest="action", required=True)
    topics = kafka.add_parser("create-topics", help="create the topics that do not exist yet")
    topics.add_argument("--bootstrap-servers")
    topics.set_defaults(func=cmd_kafka_create_topics)

    demo_commands = commands.add_parser("demo", help="demo data").add_subparsers(dest="action", required=True)
    seed = demo_commands.add_parser("seed", help="demo tenant and fresh demo keys (older demo keys are revoked)")
    seed.add_argument("--tenant", default="noord-limburg")
    seed.set_defaults(func=cmd_demo_seed)
    load = demo_commands.add_parser(
        "load",
        help="post a few candidates and vacancies through the services' APIs with the demo keys in the "
        "environment (source var/demo-keys.env), unless the demo employer has vacancies already",
    )
    load.add_argument("--tenant", default="noord-limburg")
    load.add_argument("--candidate-url", default=f"http://127.0.0.1:{SERVICE_PORTS['candidate']}")
    load.add_argument("--vacancy-url", default=f"http://127.0.0.1:{SERVICE_PORTS['vacancy']}")
    load.add_argument("--wait", type=float, default=120, metavar="SECONDS", help="how long to wait for the services")
    load.set_defaults(func=cmd_demo_load)

    for add_commands in COMMANDS:
        add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Refused as exc:
        print(f"werkbrug: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
