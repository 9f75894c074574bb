"""A synonym and concept layer over the text model, in Dutch and English.

TF-IDF over character n-grams sees that "orderpicken" and "orderpicking" share letters, but not that
"schoonmaken", "cleaning" and "interieurverzorging" are the same work, or that someone who did
"orderpicken" fits a job in a "magazijn". A concept groups such terms. Before a phrase is vectorised,
every concept it mentions adds the concept's labels (its first Dutch and first English term) to the
phrase's words, so that two phrases naming one concept in different words end up sharing those labels:
"cleaning" reads as "cleaning schoonmaken" and "schoonmaken" as "schoonmaken cleaning", which the model
then finds identical; "interieurverzorging" gains both labels and lands close to either.

Labels are added, never substituted, so an exact phrase still beats a synonym, and expanding a phrase
twice changes nothing. Which concepts a phrase mentioned is kept with the phrase, so an explanation can
say that "ramen wassen" met "schoonmaken" through the concept rather than by shared letters.

Three sources:

* the shipped list, ``data/concepts.csv``: about sixty concepts across the twelve fields where inclusive
  placements happen (green maintenance, cleaning, logistics and warehouse, hospitality and kitchen, care
  support, retail, production and assembly, facility services, administration and post room,
  construction and technical support, recycling and second-hand shops, agriculture and animal care), in
  job titles and in the words people use for their own work ("vakken gevuld", "afwassen"). Columns
  ``concept_id``, ``sector``, ``nl``, ``en`` and ``source`` (where the terms come from, explained in
  ``data/SOURCES.md``); terms separated by ``|``, the first one the label; a trailing ``*`` matches any
  word that starts with the term ("magazijn*" covers "magazijnmedewerker"), which is how Dutch compounds
  are caught.
* ESCO, the EU's skills and occupations classification, when an operator loads its published CSV files
  (``werkbrug matching load-esco``). Each ESCO concept (``conceptUri``) becomes a concept whose terms
  are its ``preferredLabel`` and ``altLabels`` in every language loaded.
* CompetentNL, the Dutch national skills language, when an operator loads its published linked data
  (``werkbrug matching load-competentnl``): SKOS concepts of the classes ``cnlo:Occupation`` and
  ``cnlo:HumanCapability``, whose terms are their ``skos:prefLabel`` and ``skos:altLabel`` (or the
  SKOS-XL labels' ``skosxl:literalForm``, which CompetentNL uses for occupations' many synonyms).

This module is pure: it parses and matches. Reading the loaded rows from the database is the store's job,
and the word normalisation is handed in by the caller so that terms are normalised exactly like text.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    from rdflib import Graph, Literal
    from rdflib.term import Node

Tokenise = Callable[[str], tuple[str, ...]]

SHIPPED_CONCEPTS: Final = Path(__file__).with_name("data") / "concepts.csv"
LANGUAGES: Final = ("nl", "en")

# A phrase naming many concepts is a list, not a skill; beyond a few the added labels would outweigh
# the phrase's own words.
MAX_CONCEPTS_PER_PHRASE: Final = 4
# Prefix terms shorter than this would catch unrelated words ("kas*" is greenhouse and till alike).
MIN_PREFIX_CHARS: Final = 4
# ESCO labels longer than this are descriptions; a talent of a few words never contains one.
MAX_TERM_WORDS: Final = 6

_CONCEPT_ID: Final = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


class ConceptError(ValueError):
    """A concept list, ESCO or CompetentNL file that cannot be read, with a message fit for the command line."""


@dataclass(frozen=True)
class Concept:
    id: str
    sector: str
    # Language code to the concept's terms, the label first.
    terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Where the terms come from: a key of data/SOURCES.md for the shipped list, else "esco" or "competentnl".
    source: str = ""

    def label(self, language: str = "nl") -> str:
        for code in (language, *LANGUAGES, *self.terms):
            if self.terms.get(code):
                return self.terms[code][0]
        return self.id


class Lexicon:
    """Concepts indexed for matching against normalised phrase words; immutable once built."""

    def __init__(self, concepts: Iterable[Concept], tokenise: Tokenise) -> None:
        self.concepts: dict[str, Concept] = {}
        # First word of a term -> (words, last word is a prefix, concept ids), longest terms first.
        exact: dict[str, list[tuple[tuple[str, ...], bool, list[str]]]] = {}
        # First MIN_PREFIX_CHARS letters -> (prefix, concept ids), longest prefixes first.
        prefixes: dict[str, list[tuple[str, list[str]]]] = {}
        self._labels: dict[str, tuple[str, ...]] = {}
        seen_terms: dict[tuple[tuple[str, ...], bool], list[str]] = {}
        for concept in concepts:
            if concept.id in self.concepts:
                raise ConceptError(f"concept {concept.id!r} is listed twice")
            self.concepts[concept.id] = concept
            label_words: list[str] = []
            for language in concept.terms:
                for word in tokenise(concept.terms[language][0].rstrip("*")) if concept.terms[language] else ():
                    if word not in label_words:
                        label_words.append(word)
            self._labels[concept.id] = tuple(label_words)
            for terms in concept.terms.values():
                for term in terms:
                    prefix = term.endswith("*")
                    words = tokenise(term.rstrip("*"))
                    if not words or len(words) > MAX_TERM_WORDS:
                        continue
                    if prefix and len(words[-1]) < MIN_PREFIX_CHARS:
                        prefix = False
                    ids = seen_terms.setdefault((words, prefix), [])
                    if concept.id not in ids:
                        ids.append(concept.id)
        # Every word the concepts' terms are made of: known words, which compounds may be split into.
        self.words: frozenset[str] = frozenset(word for words, _ in seen_terms for word in words)
        for (words, prefix), ids in seen_terms.items():
            if prefix and len(words) == 1:
                prefixes.setdefault(words[0][:MIN_PREFIX_CHARS], []).append((words[0], ids))
            else:
                exact.setdefault(words[0], []).append((words, prefix, ids))
        for entries in exact.values():
            entries.sort(key=lambda entry: -len(entry[0]))
        for prefix_entries in prefixes.values():
            prefix_entries.sort(key=lambda entry: -len(entry[0]))
        self._exact = exact
        self._prefixes = prefixes
        digest = hashlib.sha256(
            json.dumps(
                [[c.id, c.sector, {k: list(v) for k, v in sorted(c.terms.items())}] for c in self.concepts.values()],
                ensure_ascii=False,
            ).encode("utf-8")
        )
        self.version: str = digest.hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.concepts)

    def label(self, concept_id: str, language: str = "nl") -> str:
        concept = self.concepts.get(concept_id)
        return concept.label(language) if concept else concept_id

    def find(self, words: Sequence[str]) -> tuple[str, ...]:
        """The concepts these normalised words mention, in order of first mention, at most a few."""
        found: list[str] = []
        exact, prefixes = self._exact, self._prefixes
        i, n = 0, len(words)
        while i < n and len(found) < MAX_CONCEPTS_PER_PHRASE:
            word = words[i]
            if word not in exact and word[:MIN_PREFIX_CHARS] not in prefixes:
                # Most words start no term at all: skip them without building a window.
                i += 1
                continue
            length, ids = self._match_at(words, i)
            if length:
                found.extend(cid for cid in ids if cid not in found)
                i += length
            else:
                i += 1
        return tuple(found[:MAX_CONCEPTS_PER_PHRASE])

    def _match_at(self, words: Sequence[str], i: int) -> tuple[int, list[str]]:
        best, ids = 0, cast(list[str], [])
        for term, prefix, term_ids in self._exact.get(words[i], ()):
            length = len(term)
            if length < best:
                break
            if i + length > len(words):
                continue
            window = words[i : i + length]
            last_fits = window[-1].startswith(term[-1]) if prefix else window[-1] == term[-1]
            if last_fits and tuple(window[:-1]) == term[:-1]:
                if length > best:
                    best, ids = length, []
                ids.extend(cid for cid in term_ids if cid not in ids)
        if best <= 1:
            # One-word matches and prefix matches stand side by side: an ESCO occupation "schoonmaker"
            # and the shipped "schoonma*" both describe the word.
            word = words[i]
            for prefix_word, term_ids in self._prefixes.get(word[:MIN_PREFIX_CHARS], ()):
                if word.startswith(prefix_word):
                    best = 1
                    ids.extend(cid for cid in term_ids if cid not in ids)
                    break
        return best, ids

    def expand(self, words: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The words with the labels of every concept they mention appended, and those concepts."""
        words = tuple(words)
        if not words:
            return words, ()
        concepts = self.find(words)
        if not concepts:
            return words, ()
        present = set(words)
        extra: list[str] = []
        for concept_id in concepts:
            for word in self._labels[concept_id]:
                if word not in present:
                    present.add(word)
                    extra.append(word)
        return words + tuple(extra), concepts


# --------------------------------------------------------------------------------------------------------
# The shipped list


def _split_terms(cell: str | None) -> tuple[str, ...]:
    return tuple(term.strip() for term in (cell or "").split("|") if term.strip())


def read_concept_csv(path: Path) -> list[Concept]:
    """Concepts from a CSV with columns ``concept_id, sector, nl, en`` and optionally ``source`` (terms
    separated by ``|``); with a ``source`` column, every concept must name one."""
    concepts = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        missing = {"concept_id", "sector"} - columns
        if missing:
            raise ConceptError(f"{path.name}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            concept_id = (row.get("concept_id") or "").strip()
            if not _CONCEPT_ID.match(concept_id):
                raise ConceptError(f"{path.name}:{line}: concept_id must be lower-case letters, digits and _")
            terms = {language: _split_terms(row.get(language)) for language in LANGUAGES}
            for language, listed in terms.items():
                if listed and listed[0].endswith("*"):
                    raise ConceptError(f"{path.name}:{line}: the first {language} term is the label, not a prefix")
            if not any(terms.values()):
                raise ConceptError(f"{path.name}:{line}: concept {concept_id} has no terms")
            source = (row.get("source") or "").strip()
            if "source" in columns and not source:
                raise ConceptError(f"{path.name}:{line}: concept {concept_id} names no source")
            concepts.append(Concept(concept_id, (row.get("sector") or "").strip(), terms, source))
    return concepts


# --------------------------------------------------------------------------------------------------------
# ESCO


@dataclass(frozen=True)
class ConceptLabels:
    """One loaded concept (ESCO or CompetentNL, see ``source``) in one language: its labels as published."""

    source: str
    uri: str
    kind: str
    language: str
    preferred_label: str
    alt_labels: tuple[str, ...]


ESCO: Final = "esco"
ESCO_KINDS: Final = ("skill", "occupation")
_ESCO_COLUMNS: Final = ("conceptUri", "preferredLabel")
_LANGUAGE_IN_NAME: Final = re.compile(r"_([a-z]{2})(?:\.csv)?$", re.IGNORECASE)
# ESCO's CSV files are large but their cells are not; a longer cell is not an ESCO file.
_MAX_CELL_CHARS: Final = 100_000


def language_from_filename(path: Path, default: str = "nl") -> str:
    """ESCO names its files after the language (``skills_nl.csv``); other names get the default."""
    match = _LANGUAGE_IN_NAME.search(path.name)
    return match.group(1).lower() if match else default


def _alt_labels(cell: str | None) -> tuple[str, ...]:
    # ESCO separates alternative labels with line breaks inside the quoted cell.
    labels = []
    for label in re.split(r"[\r\n]+", cell or ""):
        label = label.strip()
        if label and label not in labels:
            labels.append(label)
    return tuple(labels)


def read_esco_csv(path: Path, kind: str, language: str | None = None) -> Iterator[ConceptLabels]:
    """The concepts of one ESCO CSV file (``skills_nl.csv``, ``occupations_en.csv``, ...)."""
    if kind not in ESCO_KINDS:
        raise ConceptError(f"ESCO kind must be one of {', '.join(ESCO_KINDS)}")
    language = (language or language_from_filename(path)).lower()
    csv.field_size_limit(_MAX_CELL_CHARS)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ConceptError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = set(_ESCO_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ConceptError(f"{path.name} is not an ESCO file: missing columns {sorted(missing)}")
        try:
            for row in reader:
                uri = (row.get("conceptUri") or "").strip()
                label = (row.get("preferredLabel") or "").strip()
                status = (row.get("status") or "released").strip().lower()
                if not uri or not label or status not in ("released", ""):
                    continue
                yield ConceptLabels(ESCO, uri, kind, language, label, _alt_labels(row.get("altLabels")))
        except csv.Error as exc:
            raise ConceptError(f"{path.name}: {exc}") from exc


def loaded_concepts(rows: Iterable[ConceptLabels]) -> list[Concept]:
    """One concept per source and URI, with the labels of every language loaded for it."""
    by_uri: dict[tuple[str, str], dict[str, list[str]]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for row in rows:
        key = (row.source, row.uri)
        languages = by_uri.setdefault(key, {})
        terms = languages.setdefault(row.language, [])
        for term in (row.preferred_label, *row.alt_labels):
            if term not in terms:
                terms.append(term)
        kinds[key] = row.kind
    return [
        Concept(
            f"{source}:{uri}",
            kinds[source, uri],
            {language: tuple(terms) for language, terms in sorted(by_uri[source, uri].items())},
            source,
        )
        for source, uri in sorted(by_uri)
    ]


# --------------------------------------------------------------------------------------------------------
# CompetentNL


COMPETENTNL: Final = "competentnl"
CNLO: Final = "https://linkeddata.competentnl.nl/def/competentnl#"
SKOS_CORE: Final = "http://www.w3.org/2004/02/skos/core#"
SKOSXL: Final = "http://www.w3.org/2008/05/skos-xl#"
PROV: Final = "http://www.w3.org/ns/prov#"
RDF_TYPE: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
# CompetentNL's classes and the kind each becomes; its knowledge areas, tasks and educational norms are
# not work a candidate names as a talent, so they are left out.
COMPETENTNL_KINDS: Final = {"Occupation": "occupation", "HumanCapability": "skill"}
# The serialisations linked data is published in, by file name ending; rdflib reads each of them.
RDF_FORMATS: Final = {
    ".ttl": "turtle",
    ".nt": "nt",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
    ".jsonld": "json-ld",
    ".json": "json-ld",
}
# A literal without a language tag is read as Dutch, CompetentNL's own language.
DEFAULT_LANGUAGE: Final = "nl"


def _rdf_format(path: Path) -> str:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    rdf_format = RDF_FORMATS.get(suffixes[-1] if suffixes else "")
    if rdf_format is None:
        known = ", ".join(sorted(RDF_FORMATS))
        raise ConceptError(f"{path.name}: not a linked-data file name; CompetentNL files end in {known}")
    return rdf_format


def _read_graph(path: Path) -> Graph:
    # rdflib is imported only by this admin command, not by every process that reads the concept list.
    from rdflib import Graph

    rdf_format = _rdf_format(path)
    graph = Graph()
    try:
        data = path.read_bytes()
        if path.suffix.lower() == ".gz":
            data = gzip.decompress(data)
        graph.parse(data=data, format=rdf_format)
    except OSError as exc:
        raise ConceptError(f"cannot read {path}: {exc.strerror or exc}") from exc
    # rdflib's parsers raise their own exception types (and ValueError, SAX and JSON errors): any failure
    # here means the file is not the linked data it claims to be.
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ConceptError(f"{path.name} is not readable {rdf_format} linked data: {reason}") from exc
    return graph


def _labels(graph: Graph, concept: Node, name: str) -> Iterator[Literal]:
    """A concept's labels of one kind (``prefLabel``, ``altLabel``), given as plain SKOS literals or as
    SKOS-XL label resources."""
    from rdflib import Literal, URIRef

    for label in graph.objects(concept, URIRef(SKOS_CORE + name)):
        if isinstance(label, Literal):
            yield label
    for resource in graph.objects(concept, URIRef(SKOSXL + name)):
        for label in graph.objects(resource, URIRef(SKOSXL + "literalForm")):
            if isinstance(label, Literal):
                yield label


def _by_language(labels: Iterable[Literal]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for label in labels:
        text = " ".join(str(label).split())
        if not text:
            continue
        terms = found.setdefault((label.language or DEFAULT_LANGUAGE).lower()[:8], [])
        if text not in terms:
            terms.append(text)
    return {language: sorted(terms) for language, terms in found.items()}


def read_competentnl(path: Path) -> list[ConceptLabels]:
    """The occupations and skills of one CompetentNL linked-data file, one row per concept and language.

    A concept that was invalidated (``prov:invalidatedAtTime``) is left out, as ESCO's obsolete ones are.
    Where a language has synonyms but no preferred label, the first synonym stands in for it.
    """
    from rdflib import URIRef

    graph = _read_graph(path)
    invalidated = URIRef(PROV + "invalidatedAtTime")
    rows: list[ConceptLabels] = []
    for class_name, kind in COMPETENTNL_KINDS.items():
        for concept in sorted(set(graph.subjects(URIRef(RDF_TYPE), URIRef(CNLO + class_name))), key=str):
            if not isinstance(concept, URIRef) or (concept, invalidated, None) in graph:
                continue
            preferred = _by_language(_labels(graph, concept, "prefLabel"))
            alternative = _by_language(_labels(graph, concept, "altLabel"))
            for language in sorted(preferred.keys() | alternative.keys()):
                names = preferred.get(language, []) + alternative.get(language, [])
                label, synonyms = names[0], tuple(name for name in names[1:] if name != names[0])
                rows.append(ConceptLabels(COMPETENTNL, str(concept), kind, language, label, synonyms))
    if not rows:
        classes = " or ".join(f"cnlo:{class_name}" for class_name in COMPETENTNL_KINDS)
        raise ConceptError(f"{path.name} holds no labelled CompetentNL concepts ({classes})")
    return rows


def build_lexicon(
    tokenise: Tokenise, loaded: Iterable[ConceptLabels] = (), shipped: Path = SHIPPED_CONCEPTS
) -> Lexicon:
    """The shipped concepts, then any loaded ESCO and CompetentNL concepts: a term several name expands
    with all of them."""
    return Lexicon([*read_concept_csv(shipped), *loaded_concepts(loaded)], tokenise)
