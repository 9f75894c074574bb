"""What both indexes share: rows that can be left out without a rebuild, and results in a stable order."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from services.matching.ranking.profiles import Match


class MaskableRows:
    """Rows of an index that can be left out without rebuilding it: a mask over arrays that stay shared."""

    def _rows(self) -> Sequence[Any]:
        raise NotImplementedError

    def _mask_all_live(self) -> None:
        rows = self._rows()
        self._index_of = {row.id: i for i, row in enumerate(rows)}
        self._live = np.ones(len(rows), dtype=bool)

    def __len__(self) -> int:
        return int(self._live.sum())

    def without(self, ids: Iterable[str]):
        """This index with the given rows left out; this one is unchanged, the arrays are shared."""
        positions = [self._index_of[i] for i in ids if i in self._index_of]
        if not positions:
            return self
        view = copy.copy(self)
        view._live = self._live.copy()
        view._live[positions] = False
        return view

    @property
    def size(self) -> int:
        """Rows held, including those left out since: what a rebuild would have to drop."""
        return len(self._rows())

    def live(self) -> list:
        return [row for row, live in zip(self._rows(), self._live, strict=True) if live]

    def get(self, row_id: str):
        position = self._index_of.get(row_id)
        return self._rows()[position] if position is not None and self._live[position] else None


def top_positions(scores: np.ndarray, id_rank: np.ndarray, k: int | None) -> np.ndarray:
    """Positions of the ``k`` best scores (all if None), best first, equal scores by id."""
    if k is not None and k < len(scores):
        cutoff = -np.partition(-scores, k - 1)[k - 1]
        keep = np.flatnonzero(scores >= cutoff)
    else:
        keep = np.arange(len(scores))
    return keep[np.lexsort((id_rank[keep], -scores[keep]))][:k]


def id_ranks(ids: Sequence[str]) -> np.ndarray:
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    return ranks


def kth_largest(values: np.ndarray, k: int) -> float:
    return float(-np.partition(-values, k - 1)[k - 1])


def merge_ranked(groups: Iterable[Sequence[Match]], k: int | None, *, by: str) -> list[Match]:
    """Several ranked lists (disjoint) as one, best first, equal scores by ``by`` ("vacancy" or "candidate")."""
    key = (lambda m: (-m.score, m.vacancy_id)) if by == "vacancy" else (lambda m: (-m.score, m.candidate_id))
    merged = sorted((match for group in groups for match in group), key=key)
    return merged if k is None else merged[:k]
