"""Ranking quality on Dutch everyday descriptions: twelve fields of work, ours against BM25.

The set is ``bench/data/dutch_fields.toml``: vacancies written from public Dutch descriptions of the work
in twelve fields where inclusive placements happen (its header names the sources), and candidates who
describe their own work in everyday Dutch, with tasks only or with a job title of their own that no
vacancy in their field carries. Every vacancy in the candidate's field is relevant.

Precision@3 is the share of the top 3 that belongs to the candidate's field; recall@10 the share of the
field's vacancies in the top 10; MRR the first one's. Ours is :class:`VacancyIndex` on a model fitted on
the set's vacancies and candidates, asked for the top 10 as ``GET /candidates/{id}/matches`` asks
(default weights, the pruned path); BM25 is ``rank_bm25.BM25Okapi`` over the same texts, tokenised as
ours. Nothing but text tells the fields apart here: every vacancy is open and allowed for every candidate,
hours, supports, ladder and place fit everyone alike, so both rankers are ordered by text alone.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.matching_quality import (
    PRECISION,
    PRECISION_K,
    TENANT,
    Bm25Ranker,
    K,
    served_matches,
    side_by_side,
)
from services.matching.ranking.profiles import CandidateProfile, VacancyProfile
from services.matching.ranking.rules import hard_constraint_failures
from services.matching.ranking.scoring import RANKING_VERSION
from services.matching.ranking.text_model import fit_model
from services.matching.ranking.vacancy_index import VacancyIndex

DATA_FILE = Path(__file__).resolve().parent / "data" / "dutch_fields.toml"
TARGET_PRECISION = 0.7
# One kind and one ladder step for everyone, so that the ladder fits every pair alike.
VACANCY_KIND = "supported_paid"
LADDER_STEP = 4


def read_set(path: Path = DATA_FILE) -> dict[str, Any]:
    with path.open("rb") as file:
        return tomllib.load(file)


def profiles(data: Mapping[str, Any]) -> tuple[list[VacancyProfile], list[tuple[CandidateProfile, str, str]]]:
    """The set's vacancies, and its candidates each with their field and how they describe themselves."""
    fields = set(data["fields"])
    vacancies = []
    for row in data["vacancy"]:
        if row["field"] not in fields:
            raise ValueError(f"vacancy {row['id']}: unknown field {row['field']!r}")
        vacancies.append(
            VacancyProfile(
                id=row["id"],
                tenant=TENANT,
                employer_id=f"emp-{row['id']}",
                title=row["title"],
                description=row.get("description", ""),
                tasks=tuple(row.get("tasks", ())),
                skills=tuple(row.get("skills", ())),
                kind=VACANCY_KIND,
            )
        )
    candidates = []
    for row in data["candidate"]:
        if row["field"] not in fields:
            raise ValueError(f"candidate {row['id']}: unknown field {row['field']!r}")
        candidate = CandidateProfile(
            id=row["id"],
            tenant=TENANT,
            jobcoach_id="jc-bench",
            talents=tuple(row.get("talents", ())),
            preferences=tuple(row.get("preferences", ())),
            ladder_step=LADDER_STEP,
            consent_matching=True,
            consent_share=True,
        )
        candidates.append((candidate, row["field"], row["style"]))
    return vacancies, candidates


def evaluate_dutch(data: Mapping[str, Any]) -> dict:
    started = time.perf_counter()
    vacancies, candidates = profiles(data)
    field_of = {row["id"]: row["field"] for row in data["vacancy"]}
    model = fit_model(vacancies, [candidate for candidate, _, _ in candidates])
    index = VacancyIndex(vacancies, model=model)
    bm25 = Bm25Ranker(vacancies)
    by_id = {vacancy.id: vacancy for vacancy in vacancies}

    ours: dict[str, list] = {"tasks": [], "title": []}
    theirs: dict[str, list] = {"tasks": [], "title": []}
    by_field: dict[str, tuple[list, list]] = {field: ([], []) for field in data["fields"]}
    broken = {"ours": 0, "bm25": 0}
    # Where the top 3 goes when it leaves the candidate's field, to see which fields are confused.
    confusions: dict[str, int] = {}
    for candidate, field, style in candidates:
        relevant = {vacancy.id for vacancy in vacancies if field_of[vacancy.id] == field}
        allowed = [i for i, vacancy in enumerate(vacancies) if not hard_constraint_failures(candidate, vacancy)]
        ranked_ours = [match.vacancy_id for match in served_matches(index, candidate)]
        ranked_bm25 = bm25.rank(candidate, allowed)[:K]
        for name, ranked in (("ours", ranked_ours), ("bm25", ranked_bm25)):
            broken[name] += sum(bool(hard_constraint_failures(candidate, by_id[v])) for v in ranked)
        ours[style].append((ranked_ours, relevant))
        theirs[style].append((ranked_bm25, relevant))
        by_field[field][0].append((ranked_ours, relevant))
        by_field[field][1].append((ranked_bm25, relevant))
        for vacancy_id in ranked_ours[:PRECISION_K]:
            if field_of[vacancy_id] != field:
                pair = f"{field} -> {field_of[vacancy_id]}"
                confusions[pair] = confusions.get(pair, 0) + 1

    overall = side_by_side(ours["tasks"] + ours["title"], theirs["tasks"] + theirs["title"])
    clean = not any(broken.values())
    return {
        "ranking_version": RANKING_VERSION,
        "dataset": f"{DATA_FILE.relative_to(DATA_FILE.parents[2])} (sources in its header)",
        "served": f"top {K} through the pruned path (top_k with k={K}), default weights; MRR is MRR@{K}",
        "fields": len(data["fields"]),
        "vacancies": len(vacancies),
        "candidates": len(candidates),
        PRECISION: "share of the top 3 that belongs to the candidate's field",
        "broken_hard_constraints": broken,
        "all": overall,
        "tasks": side_by_side(ours["tasks"], theirs["tasks"]),
        "title": side_by_side(ours["title"], theirs["title"]),
        f"{PRECISION}_by_field": {
            field: {
                "ours": side_by_side(*pairs)["ours"][PRECISION],
                "bm25": side_by_side(*pairs)["bm25"][PRECISION],
            }
            for field, pairs in by_field.items()
        },
        "top_3_outside_the_field": dict(sorted(confusions.items(), key=lambda item: (-item[1], item[0]))),
        "target": {
            f"{PRECISION}_at_least": TARGET_PRECISION,
            "met": bool(clean and overall["ours"][PRECISION] >= TARGET_PRECISION),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def check_set(data: Mapping[str, Any]) -> list[str]:
    """What is wrong with the set as written: a candidate using a vacancy title of their own field."""
    problems = []
    titles: dict[str, list[str]] = {}
    for row in data["vacancy"]:
        titles.setdefault(row["field"], []).append(row["title"].lower())
    for row in data["candidate"]:
        words = " ".join((*row.get("talents", ()), *row.get("preferences", ()))).lower()
        named = [title for title in titles[row["field"]] if title in words]
        problems += [f"{row['id']} names the vacancy title {title!r}" for title in named]
    return problems


def run(path: Path = DATA_FILE) -> dict:
    data = read_set(path)
    problems = check_set(data)
    if problems:
        raise ValueError("; ".join(problems))
    return evaluate_dutch(data)


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
