"""Fitting the fusion of the two relevance channels on one half of the quality benchmark, reported on the other.

The phrase channel (character n-grams, terms and concepts, phrase to phrase) and the BM25 channel are
read for every allowed pair from the explanation the served ranking gives (``relevance_channels``). The
unit groups are split in two by their code (even codes train, odd codes are held out): a grid of the
BM25 share and its saturation is searched on the training half by MRR (recall@10 breaking ties) and
the chosen pair, next to the phrase channel alone, is reported on the held-out half only.

``python -m bench.fusion_fit`` prints the figures as JSON; the chosen values are set by hand in
``services/matching/ranking/scoring.py`` (LEXICAL_SHARE, LEXICAL_SATURATION).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence

import numpy as np

from bench.matching_quality import K, build_evaluation, fetch_dataset, read_unit_groups
from services.matching.ranking.text_model import fit_model
from services.matching.ranking.vacancy_index import VacancyIndex

SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
SATURATIONS = (0.05, 0.1, 0.2, 0.5, 1.0, math.inf)


class Pairs:
    """One query's allowed vacancies with both channels, and which one is relevant."""

    def __init__(self, kind: str, ids: list[str], phrases: list[float], bm25: list[float], relevant: str) -> None:
        self.kind = kind
        order = np.argsort(np.array(ids))
        self.ids = np.array(ids)[order]
        self.phrases = np.array(phrases)[order]
        self.bm25 = np.array(bm25)[order]
        self.relevant = relevant

    def rank_of_relevant(self, share: float, saturation: float) -> int | None:
        lexical = self.bm25 if math.isinf(saturation) else self.bm25 / (self.bm25 + saturation) * (1 + saturation)
        fused = np.round((1 - share) * self.phrases + share * lexical, 4)
        # Stable sort on ids in ascending order: equal scores stay ordered by vacancy id, as served.
        ranked = self.ids[np.argsort(-fused, kind="stable")]
        hits = np.flatnonzero(ranked == self.relevant)
        return int(hits[0]) + 1 if len(hits) else None


def metrics(queries: Sequence[Pairs], share: float, saturation: float) -> dict[str, float]:
    ranks = [query.rank_of_relevant(share, saturation) for query in queries]
    return {
        "queries": len(ranks),
        f"recall@{K}": round(statistics.fmean(r is not None and r <= K for r in ranks), 4),
        "mrr": round(statistics.fmean(1 / r if r else 0.0 for r in ranks), 4),
        "precision@3": round(statistics.fmean((r is not None and r <= 3) / 3 for r in ranks), 4),
    }


def collect() -> list[Pairs]:
    evaluation = build_evaluation(read_unit_groups(fetch_dataset()))
    model = fit_model(evaluation.vacancies, [query.candidate for query in evaluation.queries])
    index = VacancyIndex(evaluation.vacancies, model=model)
    collected = []
    for query in evaluation.queries:
        matches = index.top_k(query.candidate, None)
        channels = [match.explanation["composition"].get("relevance_channels") for match in matches]
        collected.append(
            Pairs(
                query.kind,
                [match.vacancy_id for match in matches],
                [c["phrases"] if c else 0.0 for c in channels],
                [c["bm25"] if c else 0.0 for c in channels],
                next(iter(query.relevant)),
            )
        )
    return collected


def held_out(pairs: Pairs) -> bool:
    return int(pairs.relevant.lstrip("C")) % 2 == 1


def run() -> dict:
    collected = collect()
    train = [p for p in collected if not held_out(p)]
    test = [p for p in collected if held_out(p)]
    grid = {(share, saturation): metrics(train, share, saturation) for share in SHARES for saturation in SATURATIONS}
    best = max(grid, key=lambda key: (grid[key]["mrr"], grid[key][f"recall@{K}"], -key[0]))
    result: dict = {
        "split": "unit groups with even ISCO codes train, odd codes are held out",
        "train_queries": len(train),
        "held_out_queries": len(test),
        "chosen": {"bm25_share": best[0], "saturation": None if math.isinf(best[1]) else best[1]},
        "train": {"chosen": grid[best], "phrases_only": grid[(0.0, SATURATIONS[0])]},
        "held_out": {},
    }
    for kind in ("all", "tasks", "title"):
        picked = test if kind == "all" else [p for p in test if p.kind == kind]
        result["held_out"][kind] = {
            "chosen": metrics(picked, *best),
            "phrases_only": metrics(picked, 0.0, SATURATIONS[0]),
        }
    result["train_grid"] = {
        f"share={share} saturation={saturation}": values for (share, saturation), values in grid.items()
    }
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
