"""The fitted TF-IDF text model of one tenant, and fitting it on profiles."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from services.matching.ranking.concepts import Lexicon
from services.matching.ranking.morphology import CompoundSplitter, word_terms
from services.matching.ranking.normalisation import GENERIC_JOB_WORDS, default_lexicon, document_tokens, phrase_tokens
from services.matching.ranking.phrases import candidate_phrases, vacancy_record
from services.matching.ranking.profiles import CandidateProfile, VacancyProfile

CHAR_WEIGHT: Final = 0.7
# Okapi BM25 over the same terms as the word block (the lexical channel), with the usual parameters.
BM25_K1: Final = 1.2
BM25_B: Final = 0.75
# The channel's weights do not come from the tenant's texts: with idf and average length taken from the
# region, a region holding many vacancies of one kind gave their shared words an idf near 0 while the
# candidate's other words kept theirs, so the right kind of work sank below the proposal threshold as the
# region filled up. Every term weighs alike (the stop lists and generic job words already drop what every
# text says) and lengths are measured against a fixed typical vacancy, so a pair's score depends only on
# its two texts.
BM25_IDF: Final = 1.0
BM25_AVERAGE_LENGTH: Final = 24.0


def _tfidf_rows(counts: sp.csr_matrix, idf: np.ndarray, scale: float) -> sp.csr_matrix:
    """TfidfTransformer(sublinear_tf=True, norm="l2") on a count matrix, then scaled by ``scale``."""
    matrix = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    matrix.sum_duplicates()
    np.log(matrix.data, out=matrix.data)
    matrix.data += 1.0
    matrix.data *= idf[matrix.indices]
    row_ids = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    norms = np.sqrt(np.bincount(row_ids, weights=matrix.data**2, minlength=matrix.shape[0]))
    matrix.data /= norms[row_ids]
    matrix.data *= scale
    return matrix


def _idf(document_frequency: np.ndarray, n_documents: int) -> np.ndarray:
    return np.log((1.0 + n_documents) / (1.0 + document_frequency)) + 1.0


def rows_of_counts(index_lists: Sequence[Sequence[int]], width: int) -> sp.csr_matrix:
    lengths = np.fromiter((len(indices) for indices in index_lists), dtype=np.int64, count=len(index_lists))
    row_ids = np.repeat(np.arange(len(index_lists), dtype=np.int64), lengths)
    flat = np.fromiter((i for indices in index_lists for i in indices), dtype=np.int64, count=int(lengths.sum()))
    matrix = sp.csr_matrix((np.ones(len(flat)), (row_ids, flat)), shape=(len(index_lists), width))
    matrix.sum_duplicates()
    return matrix


def _summed(keys: np.ndarray, values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values summed per key (``row * width + column``), as rows, columns and sums in key order."""
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse.reshape(-1), weights=values, minlength=len(unique))
    return unique // width, unique % width, sums


def _tfidf_data(
    rows: np.ndarray, columns: np.ndarray, counts: np.ndarray, idf: np.ndarray, n_rows: int, weight: float
) -> np.ndarray:
    """:func:`_tfidf_rows` on the entries of a count matrix given in canonical order."""
    data = np.log(counts)
    data += 1.0
    data *= idf[columns]
    norms = np.sqrt(np.bincount(rows, weights=data**2, minlength=n_rows))
    data /= norms[rows]
    data *= math.sqrt(weight)
    return data


class TextModel:
    """TF-IDF over character n-grams and word terms, fitted on the vacancy and candidate texts of one tenant.

    The word block counts each word's *terms* (:func:`.morphology.word_terms`): its Dutch and English
    Snowball stems and the stems of its compound parts, split against the fitted vocabulary and the
    concept list's words. So "schoonmaken" meets "schoonmaak" as a whole word, and "magazijnmedewerker"
    meets "magazijn", where the character n-grams alone see only shared letters.

    It works word by word rather than text by text: ``char_wb`` n-grams never cross a space and terms are
    per word, so a text's counts are the sum of its words' counts. Each distinct word is analysed once and
    a text is a sparse sum of word rows, which turns vectorising tens of thousands of vacancies into a few
    sparse products. The numbers are exactly those of the two ``TfidfVectorizer``s it exposes
    (:attr:`char_vectorizer`, :attr:`term_vectorizer`) on the normalised text; the tests hold it to that.

    A fitted model is read-only and safe to share between threads. Fitted on candidate texts, its
    vocabulary contains words candidates wrote: refit it when a candidate is erased.

    ``lexicon`` is the concept layer that profiles ranked with this model are expanded with (the shipped
    concepts when None); the model's own text methods do not use it.
    """

    def __init__(self, *, char_weight: float = CHAR_WEIGHT, lexicon: Lexicon | None = None) -> None:
        if not 0.0 <= char_weight <= 1.0:
            raise ValueError("char_weight must be between 0 and 1")
        self.char_weight = char_weight
        self.lexicon = lexicon or default_lexicon()
        self._version: str | None = None
        self._char_analyzer = self._new_char_vectorizer().build_analyzer()
        self._fitted = False
        self._word_index: dict[str, int] = {}
        self._gram_index: dict[str, int] = {}
        self._term_index: dict[str, int] = {}
        self._word_grams = sp.csr_matrix((0, 0))
        self._word_terms = sp.csr_matrix((0, 0))
        self._splitter = CompoundSplitter(())
        self._char_idf = np.zeros(0)
        self._term_idf = np.zeros(0)
        self._bm25_idf = np.zeros(0)

    @staticmethod
    def _new_char_vectorizer(**kwargs: Any) -> TfidfVectorizer:
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=False, sublinear_tf=True, **kwargs)

    def _new_term_vectorizer(self, **kwargs: Any) -> TfidfVectorizer:
        return TfidfVectorizer(analyzer=self.text_terms, lowercase=False, sublinear_tf=True, **kwargs)

    def terms(self, word: str) -> tuple[str, ...]:
        """The terms the word block counts for one normalised word (see :mod:`.morphology`)."""
        return word_terms(word, self._splitter)

    def text_terms(self, text: str) -> list[str]:
        """The terms of a normalised text, word by word."""
        return [term for word in text.split() for term in self.terms(word)]

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    @property
    def n_features(self) -> int:
        return len(self._gram_index) + len(self._term_index)

    @property
    def version(self) -> str:
        """A short digest of what the model learned and the concepts it expands with.

        Two models with the same version score every pair alike; it names the model in the ranking log.
        """
        self._require_fitted()
        if self._version is None:
            digest = hashlib.sha256()
            digest.update(self.lexicon.version.encode())
            digest.update(repr(self.char_weight).encode())
            digest.update("\n".join(self._word_index).encode("utf-8"))
            digest.update(self._char_idf.tobytes())
            digest.update("\n".join(self._term_index).encode("utf-8"))
            digest.update(self._term_idf.tobytes())
            self._version = digest.hexdigest()[:12]
        return self._version

    @property
    def char_vectorizer(self) -> TfidfVectorizer:
        """The character n-gram block as a fitted scikit-learn vectorizer (its input: normalised text)."""
        self._require_fitted()
        vectorizer = self._new_char_vectorizer(vocabulary=self._gram_index)
        vectorizer.idf_ = self._char_idf
        return vectorizer

    @property
    def term_vectorizer(self) -> TfidfVectorizer:
        """The word block, over terms, as a fitted scikit-learn vectorizer (its input: normalised text)."""
        self._require_fitted()
        vectorizer = self._new_term_vectorizer(vocabulary=self._term_index)
        vectorizer.idf_ = self._term_idf
        return vectorizer

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise ValueError("TextModel is not fitted; call fit() with vacancy and candidate texts first")

    def fit(self, texts: Iterable[str]) -> TextModel:
        """Fit on documents, typically one per vacancy and one per candidate (see :func:`vacancy_text`)."""
        return self.fit_tokens([document_tokens(text) for text in texts])

    def fit_tokens(self, documents: Sequence[Sequence[str]]) -> TextModel:
        as_tuples = [tuple(document) for document in documents]
        return self._fit(as_tuples, sp.identity(len(as_tuples), format="csr"))

    def _fit(self, phrases: Sequence[tuple[str, ...]], document_phrases: sp.csr_matrix) -> TextModel:
        """Fit on documents given as bags of phrases: ``document_phrases[d, p]`` > 0 if ``p`` is in ``d``."""
        words = sorted({word for phrase in phrases for word in phrase})
        word_index = {word: position for position, word in enumerate(words)}
        phrase_words = rows_of_counts([[word_index[w] for w in phrase] for phrase in phrases], len(words))
        document_words = sp.csr_matrix(document_phrases @ phrase_words)
        document_words.data[:] = 1.0
        gram_lists = [self._char_analyzer(word) for word in words]
        grams = sorted({gram for gram_list in gram_lists for gram in gram_list})
        gram_index = {gram: position for position, gram in enumerate(grams)}
        word_grams = rows_of_counts([[gram_index[g] for g in gram_list] for gram_list in gram_lists], len(grams))
        presence = sp.csr_matrix(word_grams, copy=True)
        presence.data[:] = 1.0
        document_grams = sp.csr_matrix(document_words @ presence)
        # Compounds split into words the tenant's texts or the concept list use as words of their own.
        self._splitter = CompoundSplitter(set(words) | self.lexicon.words | GENERIC_JOB_WORDS)
        term_lists = [self.terms(word) for word in words]
        terms = sorted({term for term_list in term_lists for term in term_list})
        term_index = {term: position for position, term in enumerate(terms)}
        word_terms = rows_of_counts([[term_index[t] for t in term_list] for term_list in term_lists], len(terms))
        presence = sp.csr_matrix(word_terms, copy=True)
        presence.data[:] = 1.0
        document_terms = sp.csr_matrix(document_words @ presence)
        n_documents = document_phrases.shape[0]
        self._char_idf = _idf(np.bincount(document_grams.indices, minlength=len(grams)), n_documents)
        self._term_idf = _idf(np.bincount(document_terms.indices, minlength=len(terms)), n_documents)
        self._bm25_idf = np.full(len(terms), BM25_IDF)
        self._word_grams = word_grams
        self._word_terms = word_terms
        self._word_index = word_index
        self._gram_index = gram_index
        self._term_index = term_index
        self._fitted = True
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row per text; rows have unit length, so their dot product is the cosine similarity."""
        return self.transform_tokens([document_tokens(text) for text in texts])

    def transform_tokens(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        self._require_fitted()
        # A query is a handful of phrases, so this works on flat arrays rather than through sparse
        # matrix constructions, whose fixed cost would outweigh the arithmetic. The numbers are those of
        # sum_duplicates, log, idf and l2 norm in ascending column order within a row, exactly as
        # TfidfTransformer computes them.
        local: dict[str, int] = {}
        row_of_word: list[int] = []
        word_of_row: list[int] = []
        for row, tokens in enumerate(token_lists):
            for word in tokens:
                column = local.get(word)
                if column is None:
                    column = local[word] = len(local)
                row_of_word.append(row)
                word_of_row.append(column)
        n_rows, n_local = len(token_lists), len(local)
        n_grams = len(self._gram_index)
        pair_rows = np.asarray(row_of_word, dtype=np.int64)
        pair_words = np.asarray(word_of_row, dtype=np.int64)
        global_ids = np.fromiter((self._word_index.get(w, -1) for w in local), dtype=np.int64, count=n_local)

        char_rows, char_columns, char_data = self._block_counts(
            local, global_ids, pair_rows, pair_words, self._word_grams, self._char_analyzer, self._gram_index
        )
        char_data = _tfidf_data(char_rows, char_columns, char_data, self._char_idf, n_rows, self.char_weight)
        term_rows, term_columns, term_data = self._block_counts(
            local, global_ids, pair_rows, pair_words, self._word_terms, self.terms, self._term_index
        )
        term_data = _tfidf_data(term_rows, term_columns, term_data, self._term_idf, n_rows, 1.0 - self.char_weight)

        # Rows in order, and within a row the n-grams before the terms, each ascending: the canonical
        # order, so a dot product sums in the same order whichever batch a phrase was transformed in and
        # the two ranking directions agree to the last bit.
        all_rows = np.concatenate((char_rows, term_rows))
        order = np.argsort(all_rows, kind="stable")
        columns = np.concatenate((char_columns, term_columns + n_grams))[order]
        values = np.concatenate((char_data, term_data))[order]
        row_pointer = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(all_rows, minlength=n_rows), out=row_pointer[1:])
        result = sp.csr_matrix((values, columns, row_pointer), shape=(n_rows, n_grams + len(self._term_index)))
        result.has_sorted_indices = True
        return result

    @staticmethod
    def _block_counts(
        local: dict[str, int],
        global_ids: np.ndarray,
        pair_rows: np.ndarray,
        pair_words: np.ndarray,
        word_features: sp.csr_matrix,
        analyse: Callable[[str], Sequence[str]],
        feature_index: dict[str, int],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One block's counts (rows, columns, sums in canonical order) for the words of the texts.

        Each local word's features come as (feature, count) runs: from the fitted rows for words seen in
        fit; any other word is analysed here, keeping only the features the model knows, exactly as
        TfidfVectorizer.transform ignores unknown features.
        """
        n_local, width = len(local), len(feature_index)
        indptr, indices, data = word_features.indptr, word_features.indices, word_features.data
        feature_lists: list[np.ndarray] = []
        count_lists: list[np.ndarray] = []
        for word, global_id in zip(local, global_ids.tolist(), strict=True):
            if global_id >= 0:
                feature_lists.append(indices[indptr[global_id] : indptr[global_id + 1]])
                count_lists.append(data[indptr[global_id] : indptr[global_id + 1]])
            else:
                known = [feature_index[f] for f in analyse(word) if f in feature_index]
                features, counts = np.unique(np.asarray(known, dtype=np.int64), return_counts=True)
                feature_lists.append(features)
                count_lists.append(counts.astype(np.float64))
        lengths = np.fromiter((len(f) for f in feature_lists), dtype=np.int64, count=n_local)
        word_features_flat = np.concatenate(feature_lists).astype(np.int64) if n_local else np.zeros(0, dtype=np.int64)
        word_counts = np.concatenate(count_lists) if n_local else np.zeros(0)
        word_starts = np.cumsum(lengths) - lengths

        spans = lengths[pair_words]
        firsts = np.repeat(word_starts[pair_words] - (np.cumsum(spans) - spans), spans) + np.arange(int(spans.sum()))
        keys = np.repeat(pair_rows, spans) * width + word_features_flat[firsts]
        return _summed(keys, word_counts[firsts], width)

    def _term_counts(self, documents: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each document's term counts (rows, columns, counts in canonical order); unknown terms dropped."""
        local: dict[str, int] = {}
        row_of_word: list[int] = []
        word_of_row: list[int] = []
        for row, tokens in enumerate(documents):
            for word in tokens:
                row_of_word.append(row)
                word_of_row.append(local.setdefault(word, len(local)))
        global_ids = np.fromiter((self._word_index.get(w, -1) for w in local), dtype=np.int64, count=len(local))
        return self._block_counts(
            local,
            global_ids,
            np.asarray(row_of_word, dtype=np.int64),
            np.asarray(word_of_row, dtype=np.int64),
            self._word_terms,
            self.terms,
            self._term_index,
        )

    def bm25_documents(self, documents: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Okapi BM25 term weights, one row per document (its words): ``score(q, d) = sum of d's weights
        over the distinct terms of q``, with the fixed idf and average length (see BM25_IDF).
        """
        self._require_fitted()
        rows, columns, counts = self._term_counts(documents)
        lengths = np.bincount(rows, weights=counts, minlength=len(documents))
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths / BM25_AVERAGE_LENGTH)
        weights = self._bm25_idf[columns] * counts * (BM25_K1 + 1.0) / (counts + norm[rows])
        pointer = np.zeros(len(documents) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(documents)), out=pointer[1:])
        matrix = sp.csr_matrix((weights, columns, pointer), shape=(len(documents), len(self._term_index)))
        matrix.has_sorted_indices = True
        return matrix

    def bm25_queries(self, queries: Sequence[Sequence[str]]) -> tuple[sp.csr_matrix, np.ndarray]:
        """Each query's distinct known terms (ones), and the most a document could score on them: every
        distinct term of the query, known to the model or not, at its idf times ``k1 + 1``, the limit of
        BM25's saturation. Score over it lies in [0, 1] and does not change as vacancies come and go."""
        self._require_fitted()
        rows, columns, _ = self._term_counts(queries)
        pointer = np.zeros(len(queries) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(queries)), out=pointer[1:])
        ones = np.ones(len(columns))
        matrix = sp.csr_matrix((ones, columns, pointer), shape=(len(queries), len(self._term_index)))
        matrix.has_sorted_indices = True
        terms_of: dict[str, tuple[str, ...]] = {}
        for word in {word for query in queries for word in query}:
            terms_of[word] = self.terms(word)
        distinct = np.fromiter(
            (len({term for word in query for term in terms_of[word]}) for query in queries),
            dtype=np.float64,
            count=len(queries),
        )
        return matrix, distinct * BM25_IDF * (BM25_K1 + 1.0)

    def bm25_query(self, query: Sequence[str]) -> tuple[np.ndarray, float]:
        """One query's distinct known terms (ascending) and its ceiling, equal to :meth:`bm25_queries`'s.

        A served query needs only the term numbers, so this builds no matrix, and a word seen in fit takes
        its terms from the fitted rows instead of being stemmed and split again.
        """
        self._require_fitted()
        indptr, indices = self._word_terms.indptr, self._word_terms.indices
        known: list[np.ndarray] = []
        unknown: set[str] = set()
        for word in set(query):
            row = self._word_index.get(word)
            if row is not None:
                known.append(indices[indptr[row] : indptr[row + 1]])
                continue
            for term in self.terms(word):
                column = self._term_index.get(term)
                if column is None:
                    unknown.add(term)
                else:
                    known.append(np.array([column]))
        terms = np.unique(np.concatenate(known)).astype(np.int64) if known else np.zeros(0, dtype=np.int64)
        return terms, float(len(terms) + len(unknown)) * BM25_IDF * (BM25_K1 + 1.0)

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Cosine similarity of every phrase in ``left`` with every phrase in ``right``."""
        a = self.transform_tokens([phrase_tokens(text) for text in left])
        b = self.transform_tokens([phrase_tokens(text) for text in right])
        return np.asarray((a @ b.T).toarray())


class PhraseTable:
    """Distinct phrase token lists, numbered; number 0 is the empty phrase."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {(): 0}

    def add(self, tokens: tuple[str, ...]) -> int:
        number = self.ids.get(tokens)
        if number is None:
            number = self.ids[tokens] = len(self.ids)
        return number

    @property
    def tokens(self) -> list[tuple[str, ...]]:
        return list(self.ids)


def fit_on_phrases(table: PhraseTable, documents: Sequence[Sequence[int]], lexicon: Lexicon | None = None) -> TextModel:
    """A model fitted on documents given as lists of phrase numbers from ``table``."""
    return TextModel(lexicon=lexicon)._fit(table.tokens, rows_of_counts(documents, len(table.ids)))


def fit_model(
    vacancies: Iterable[VacancyProfile] = (),
    candidates: Iterable[CandidateProfile] = (),
    *,
    lexicon: Lexicon | None = None,
) -> TextModel:
    """A model fitted on these vacancies and candidates, one document each; same as
    ``TextModel().fit([vacancy_text(v) ...] + [candidate_text(c) ...])`` but faster."""
    lexicon = lexicon or default_lexicon()
    table = PhraseTable()
    documents = [[table.add(p.tokens) for p in vacancy_record(v, lexicon).phrases] for v in vacancies]
    documents += [[table.add(p.tokens) for p in candidate_phrases(c, lexicon)] for c in candidates]
    return fit_on_phrases(table, documents, lexicon)
