"""Snowball stems and Dutch compound splitting as the word block counts them, and BM25 over those terms."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from services.matching.ranking import text_model
from services.matching.ranking.morphology import CompoundSplitter, stems, word_terms
from services.matching.ranking.normalisation import GENERIC_JOB_WORDS, document_tokens
from services.matching.ranking.text_model import TextModel

DICTIONARY = {"magazijn", "groen", "voorziening", "schoonmaak", "werkzaamheden", "arbeid", "plaats", "heftruck"}


def splitter() -> CompoundSplitter:
    return CompoundSplitter(DICTIONARY | GENERIC_JOB_WORDS)


def test_dutch_compounds_split_into_known_words():
    assert splitter().split("magazijnmedewerker") == ("magazijn", "medewerker")
    assert splitter().split("groenvoorziening") == ("groen", "voorziening")
    assert splitter().split("schoonmaakwerkzaamheden") == ("schoonmaak", "werkzaamheden")


def test_a_linking_s_between_parts_is_allowed():
    assert splitter().split("arbeidsplaats") == ("arbeid", "plaats")


def test_words_that_are_not_compounds_of_known_words_stay_whole():
    assert splitter().split("verzorgen") == ()
    assert splitter().split("magazijn") == ()
    # A part unknown to the dictionary leaves the word whole rather than guessing.
    assert splitter().split("magazijnbeheerder") == ()
    # Short pieces are prefixes and endings, not words, even when the dictionary holds them.
    assert CompoundSplitter({"aan", "nemer"}).split("aannemer") == ()
    assert splitter().split("heftruck2") == ()


def test_dutch_and_english_stems_meet_their_inflections():
    assert stems("schoonmaken")[0] == stems("schoonmaak")[0]
    assert stems("planten")[0] == stems("plant")[0]
    assert "clean" in stems("cleaning")
    assert set(stems("workers")) & set(stems("worker"))


def test_a_compounds_terms_are_its_stems_and_its_parts_but_no_generic_job_word():
    terms = word_terms("magazijnmedewerker", splitter())
    assert "magazijn" in terms and terms[0] == stems("magazijnmedewerker")[0]
    assert not set(terms) & set(stems("medewerker"))
    assert {"groen", "voorzien"} <= set(word_terms("groenvoorziening", splitter()))


def test_the_model_splits_against_the_vocabulary_it_was_fitted_on():
    model = TextModel().fit(["magazijn en heftruck", "groen en voorziening", "Magazijnmedewerker"])
    assert "magazijn" in model.terms("magazijnmedewerker")
    assert {"groen", "voorzien"} <= set(model.terms("groenvoorziening"))
    # A compound as a candidate writes it finds the vacancy that names its part as a word.
    similar = model.similarity(["magazijnmedewerker"], ["werken in een magazijn", "groenvoorziening"])
    assert similar[0, 0] > similar[0, 1]
    assert model.similarity(["groenvoorziening"], ["groen"])[0, 0] > 0.3


# ---------------------------------------------------------------------------------------------- BM25 channel


BM25_TEXTS = [
    "orderpicken in het magazijn, pallets stapelen en orders verzamelen",
    "planten verzorgen, groenonderhoud en gras maaien in het park",
    "koffie zetten, tafels dekken en gasten ontvangen",
    "magazijnmedewerker met heftruck, orders laden en lossen",
    "schoonmaken van kantoren en sanitair",
    "",
]


def test_bm25_equals_rank_bm25_okapi_over_the_same_terms():
    model = TextModel().fit(BM25_TEXTS)
    corpus = [model.text_terms(" ".join(document_tokens(text))) for text in BM25_TEXTS]
    reference = BM25Okapi(corpus, k1=text_model.BM25_K1, b=text_model.BM25_B)
    assert model._average_length == pytest.approx(reference.avgdl)
    documents = model.bm25_documents([document_tokens(text) for text in BM25_TEXTS])
    for query_text in ("magazijn orders", "planten verzorgen", "onbekend gasten koffie", "heftruck"):
        query, ceilings = model.bm25_queries([document_tokens(query_text)])
        terms = [model.term_vectorizer.get_feature_names_out()[i] for i in query.indices]
        # rank_bm25's idf can go negative; the model's (Lucene's, bm25s's) cannot. Same tf and length
        # arithmetic: with rank_bm25's idf swapped in, the scores are equal.
        okapi_idf = np.array([reference.idf.get(term, 0.0) for term in terms])
        ours_idf = model._bm25_idf[query.indices]
        per_term = documents[:, query.indices].toarray()
        with np.errstate(invalid="ignore", divide="ignore"):
            swapped = np.nan_to_num(per_term / ours_idf * okapi_idf).sum(axis=1)
        np.testing.assert_allclose(swapped, reference.get_scores(terms), atol=1e-12)
        # Lucene's idf, and every score within the ceiling the fusion divides by.
        n, df = len(BM25_TEXTS), np.array([sum(term in doc for doc in corpus) for term in terms])
        np.testing.assert_allclose(ours_idf, np.log(1 + (n - df + 0.5) / (df + 0.5)))
        scores = np.asarray(documents @ query.T.toarray()).reshape(-1)
        assert scores.max() > 0 and (scores <= ceilings[0]).all()


def test_bm25_scores_agree_in_both_directions_to_the_last_bit():
    model = TextModel().fit(BM25_TEXTS)
    queries = [document_tokens(t) for t in ("magazijn orders heftruck", "planten", "gasten koffie tafels")]
    documents = model.bm25_documents([document_tokens(text) for text in BM25_TEXTS])
    matrix, _ = model.bm25_queries(queries)
    by_query = np.asarray(matrix @ documents.T.toarray())
    for d in range(len(BM25_TEXTS)):
        one = model.bm25_documents([document_tokens(BM25_TEXTS[d])]).toarray().reshape(-1)
        assert (matrix @ one).tolist() == by_query[:, d].tolist()
