"""Matching's admin commands, which ``werkbrug`` takes in: ``risk train|rollback`` and
``matching load-esco|load-competentnl|train-reranker|rollback-reranker|reranker-status``.

Matching's modules are imported when a command runs: they bring numpy and scikit-learn, which every other
``werkbrug`` command would otherwise wait for.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from services.matching import config
from shared.db import Database
from shared.registry import Registry, RegistryError


def _matching_db() -> Database:
    return Database(config.load().database_url)


def _known_tenant(slug: str) -> str:
    if slug not in Registry(Database(config.load().registry_database_url)).tenant_slugs():
        raise RegistryError(f"no tenant {slug!r}")
    return slug


def cmd_risk_train(args) -> int:
    from services.matching.placements import commands as placements

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        model = placements.train_model(session, tenant)
    print(json.dumps(model.to_dict(), indent=2))
    print(f"risk model {model.version} trained on {model.details['trained_on']} outcomes and in use", file=sys.stderr)
    return 0


def cmd_risk_rollback(args) -> int:
    from services.matching.placements import commands as placements

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        retired, current = placements.rollback_model(session, tenant)
    print(f"risk model {retired} rolled back; {tenant} now uses {current}", file=sys.stderr)
    return 0


def cmd_load_esco(args) -> int:
    from services.matching.ranking import concepts
    from services.matching.ranking import store as matching_store

    files = [(path, "skill") for path in args.skills or []] + [(path, "occupation") for path in args.occupations or []]
    if not files:
        print("werkbrug: give at least one --skills or --occupations file", file=sys.stderr)
        return 2
    try:
        with _matching_db().session() as session:
            for path, kind in files:
                rows = concepts.read_esco_csv(Path(path), kind, args.language)
                count = matching_store.save_concept_labels(session, rows)
                print(f"{path}: {count} {kind} concepts loaded", file=sys.stderr)
    except concepts.ConceptError as exc:
        print(f"werkbrug: {exc}", file=sys.stderr)
        return 2
    print("the matching processes pick the new concepts up at their next index refit", file=sys.stderr)
    return 0


def cmd_load_competentnl(args) -> int:
    from services.matching.ranking import concepts
    from services.matching.ranking import store as matching_store

    # Every file is read before anything is stored, so a malformed one leaves the database as it was.
    try:
        loaded = [(path, concepts.read_competentnl(Path(path))) for path in args.files]
    except concepts.ConceptError as exc:
        print(f"werkbrug: {exc}; nothing loaded", file=sys.stderr)
        return 2
    with _matching_db().session() as session:
        for path, rows in loaded:
            matching_store.save_concept_labels(session, rows)
            kinds = Counter(row.kind for row in {(row.uri, row.kind): row for row in rows}.values())
            counted = ", ".join(f"{kinds[kind]} {kind}" for kind in sorted(kinds))
            print(f"{path}: {counted} concepts loaded", file=sys.stderr)
    print("the matching processes pick the new concepts up at their next index refit", file=sys.stderr)
    return 0


def cmd_train_reranker(args) -> int:
    from services.matching.ranking import reranker

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        model = reranker.train_for_tenant(session, tenant)
    print(json.dumps(model.to_dict(), indent=2))
    print(f"reranker {model.version} trained on {model.trained_on} outcomes and in use", file=sys.stderr)
    return 0


def cmd_rollback_reranker(args) -> int:
    from services.matching.ranking import reranker

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        retired, current = reranker.rollback(session, tenant)
    print(f"reranker {retired} rolled back; {tenant} now ranks with {current or 'no reranker'}", file=sys.stderr)
    return 0


def cmd_reranker_status(args) -> int:
    from services.matching.ranking import store as matching_store

    tenant = _known_tenant(args.tenant)
    with _matching_db().session() as session:
        history = matching_store.rerankers.history(session, tenant)
    for row in history:
        state = f"rolled back {row['retired_at']:%Y-%m-%d %H:%M}" if row["retired_at"] else "usable"
        print(f"{row['version']}\ttrained {row['created_at']:%Y-%m-%d %H:%M}\t{state}")
    if not history:
        print(f"{tenant} has no reranker yet", file=sys.stderr)
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``risk`` and ``matching`` to the admin command line."""
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
    esco.set_defaults(func=cmd_load_esco)
    competentnl = matching.add_parser(
        "load-competentnl",
        help="load CompetentNL occupations and skills as extra concepts (Turtle, N-Triples, RDF/XML or JSON-LD)",
    )
    competentnl.add_argument("files", nargs="+", metavar="FILE", help="e.g. competentnl-beroepen.ttl (.gz accepted)")
    competentnl.set_defaults(func=cmd_load_competentnl)
    train_reranker = matching.add_parser("train-reranker", help="train a tenant's reranker on placement outcomes")
    train_reranker.add_argument("--tenant", required=True)
    train_reranker.set_defaults(func=cmd_train_reranker)
    rollback_reranker = matching.add_parser("rollback-reranker", help="stop using a tenant's newest reranker")
    rollback_reranker.add_argument("--tenant", required=True)
    rollback_reranker.set_defaults(func=cmd_rollback_reranker)
    status = matching.add_parser("reranker-status", help="list a tenant's rerankers")
    status.add_argument("--tenant", required=True)
    status.set_defaults(func=cmd_reranker_status)
