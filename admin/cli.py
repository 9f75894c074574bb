"""``werkbrug``: the admin command line (tenants, keys, migrations, topics, demo data).

Scriptable forms that must keep working: ``werkbrug tenants create SLUG`` and
``werkbrug keys create --tenant SLUG --role ROLE [--subject ID]``, which prints the key alone on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from shared.config import SERVICE_PORTS, load_settings, registry_database_url, var_dir
from shared.db import Database, upgrade
from shared.errors import Refused
from shared.registry import ROLES, Registry, RegistryError

SERVICES = tuple(SERVICE_PORTS)


def _registry() -> Registry:
    return Registry(Database(registry_database_url()))


def _service_store(service: str):
    return importlib.import_module(f"services.{service}.store")


def cmd_tenants_create(args) -> int:
    created = _registry().create_tenant(args.slug, args.name)
    print(f"tenant {args.slug} {'created' if created else 'already exists'}", file=sys.stderr)
    return 0


def cmd_tenants_list(_args) -> int:
    for slug in _registry().tenant_slugs():
        print(slug)
    return 0


def cmd_tenants_settings(args) -> int:
    import json

    registry = _registry()
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


def cmd_keys_create(args) -> int:
    print(_registry().create_key(args.tenant, args.role, args.subject, args.label))
    return 0


def cmd_db_upgrade(args) -> int:
    targets = args.service or ([] if args.registry else list(SERVICES))
    if args.registry or not args.service:
        _registry().migrate()
        print("registry database up to date", file=sys.stderr)
    for service in targets:
        upgrade(_service_store(service).MIGRATIONS, load_settings(service).database_url)
        print(f"{service} database up to date", file=sys.stderr)
    return 0


def cmd_kafka_create_topics(args) -> int:
    from shared.topics import ensure_topics

    ensure_topics(args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    print("topics ready", file=sys.stderr)
    return 0


def cmd_demo_seed(args) -> int:
    from services.demo import seed_demo

    keys = seed_demo(_registry(), args.tenant)
    env_file = var_dir() / "demo-keys.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export WERKBRUG_TENANT={args.tenant}"] + [f"export {name}={key}" for name, key in keys.items()]
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env_file.chmod(0o600)
    for name, key in keys.items():
        print(f"{name}={key}")
    print(f"# also written to {env_file}", file=sys.stderr)
    return 0


def _matching_db() -> Database:
    return Database(load_settings("matching").database_url)


def _known_tenant(slug: str) -> str:
    if slug not in _registry().tenant_slugs():
        raise RegistryError(f"no tenant {slug!r}")
    return slug


def cmd_risk_train(args) -> int:
    import json

    from services.matching import placements

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        model = placements.train_model(session, tenant)
    print(json.dumps(model.to_dict(), indent=2))
    print(f"risk model {model.version} trained on {model.details['trained_on']} outcomes and in use", file=sys.stderr)
    return 0


def cmd_risk_rollback(args) -> int:
    from services.matching import placements

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        retired, current = placements.rollback_model(session, tenant)
    print(f"risk model {retired} rolled back; {tenant} now uses {current}", file=sys.stderr)
    return 0


def cmd_matching_load_esco(args) -> int:
    from pathlib import Path

    from services.matching import concepts
    from services.matching import store as matching_store

    files = [(path, "skill") for path in args.skills or []] + [(path, "occupation") for path in args.occupations or []]
    if not files:
        print("werkbrug: give at least one --skills or --occupations file", file=sys.stderr)
        return 2
    try:
        with _matching_db().session() as session:
            for path, kind in files:
                rows = concepts.read_esco_csv(Path(path), kind, args.language)
                count = matching_store.save_esco_labels(session, rows)
                print(f"{path}: {count} {kind} concepts loaded", file=sys.stderr)
    except concepts.ConceptError as exc:
        print(f"werkbrug: {exc}", file=sys.stderr)
        return 2
    print("the matching processes pick the new concepts up at their next index refit", file=sys.stderr)
    return 0


def cmd_matching_train_reranker(args) -> int:
    import json

    from services.matching import reranker

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        model = reranker.train_for_tenant(session, tenant)
    print(json.dumps(model.to_dict(), indent=2))
    print(f"reranker {model.version} trained on {model.trained_on} outcomes and in use", file=sys.stderr)
    return 0


def cmd_matching_rollback_reranker(args) -> int:
    from services.matching import reranker

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        retired, current = reranker.rollback(session, tenant)
    print(f"reranker {retired} rolled back; {tenant} now ranks with {current or 'no reranker'}", file=sys.stderr)
    return 0


def cmd_matching_reranker_status(args) -> int:
    from services.matching import store as matching_store

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        history = matching_store.rerankers.history(session, tenant)
    for row in history:
        state = f"rolled back {row['retired_at']:%Y-%m-%d %H:%M}" if row["retired_at"] else "usable"
        print(f"{row['version']}\ttrained {row['created_at']:%Y-%m-%d %H:%M}\t{state}")
    if not history:
        print(f"{tenant} has no reranker yet", file=sys.stderr)
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
    key.set_defaults(func=cmd_keys_create)

    db = commands.add_parser("db", help="databases").add_subparsers(dest="action", required=True)
    up = db.add_parser("upgrade", help="apply migrations (all services and the registry by default)")
    up.add_argument("--service", action="append", choices=SERVICES)
    up.add_argument("--registry", action="store_true")
    up.set_defaults(func=cmd_db_upgrade)

    kafka = commands.add_parser("kafka", help="Kafka topics").add_subparsers(dest="action", required=True)
    topics = kafka.add_parser("create-topics", help="create the topics that do not exist yet")
    topics.add_argument("--bootstrap-servers")
    topics.set_defaults(func=cmd_kafka_create_topics)

    demo = commands.add_parser("demo", help="demo data").add_subparsers(dest="action", required=True)
    seed = demo.add_parser("seed", help="demo tenant, fresh demo keys, a few candidates and vacancies")
    seed.add_argument("--tenant", default="noord-limburg")
    seed.set_defaults(func=cmd_demo_seed)

    risk = commands.add_parser("risk", help="placement risk models").add_subparsers(dest="action", required=True)
    train = risk.add_parser("train", help="train a tenant's risk model from its ended placements and use it")
    train.add_argument("--tenant", required=True)
    train.set_defaults(func=cmd_risk_train)
    rollback = risk.add_parser("rollback", help="stop using a tenant's newest risk model, back to the one before")
    rollback.add_argument("--tenant", required=True)
    rollback.set_defaults(func=cmd_risk_rollback)

    matching = commands.add_parser("matching", help="matching concepts and rerankers").add_subparsers(
        dest="action", required=True
    )
    esco = matching.add_parser("load-esco", help="load ESCO skills and occupations CSV files as extra concepts")
    esco.add_argument("--skills", action="append", metavar="CSV", help="e.g. skills_nl.csv (repeatable)")
    esco.add_argument("--occupations", action="append", metavar="CSV", help="e.g. occupations_nl.csv (repeatable)")
    esco.add_argument("--language", help="the files' language; by default read from their names (skills_nl.csv)")
    esco.set_defaults(func=cmd_matching_load_esco)
    train_reranker = matching.add_parser("train-reranker", help="train a tenant's reranker on placement outcomes")
    train_reranker.add_argument("--tenant", required=True)
    train_reranker.set_defaults(func=cmd_matching_train_reranker)
    rollback_reranker = matching.add_parser("rollback-reranker", help="stop using a tenant's newest reranker")
    rollback_reranker.add_argument("--tenant", required=True)
    rollback_reranker.set_defaults(func=cmd_matching_rollback_reranker)
    status = matching.add_parser("reranker-status", help="list a tenant's rerankers")
    status.add_argument("--tenant", required=True)
    status.set_defaults(func=cmd_matching_reranker_status)
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
