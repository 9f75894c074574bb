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


def test_bm25_equals_rank_bm25_okapi_with_the_fixed_idf_and_average_length():
    model = TextModel().fit(BM25_TEXTS)
    corpus = [model.text_terms(" ".join(document_tokens(text))) for text in BM25_TEXTS]
    reference = BM25Okapi(corpus, k1=text_model.BM25_K1, b=text_model.BM25_B)
    # The channel's weights are fixed, not the corpus's: the same tf and length arithmetic as rank_bm25
    # once its idf and average length are set to those constants.
    reference.avgdl = text_model.BM25_AVERAGE_LENGTH
    reference.idf = dict.fromkeys(reference.idf, text_model.BM25_IDF)
    documents = model.bm25_documents([document_tokens(text) for text in BM25_TEXTS])
    for query_text in ("magazijn orders", "planten verzorgen", "onbekend gasten koffie", "heftruck"):
        query, ceilings = model.bm25_queries([document_tokens(query_text)])
        terms = [model.term_vectorizer.get_feature_names_out()[i] for i in query.indices]
        scores = np.asarray(documents @ query.T.toarray()).reshape(-1)
        np.testing.assert_allclose(scores, reference.get_scores(terms), atol=1e-12)
        # The ceiling counts every distinct term of the query, also one no fitted text has ("onbekend").
        distinct = {term for word in document_tokens(query_text) for term in model.terms(word)}
        assert ceilings[0] == pytest.approx(len(distinct) * text_model.BM25_IDF * (text_model.BM25_K1 + 1.0))
        assert scores.max() > 0 and (scores <= ceilings[0]).all()
    unknown, _ = model.bm25_queries([document_tokens("onbekend gasten koffie")])
    assert len(unknown.indices) < len({t for w in document_tokens("onbekend gasten koffie") for t in model.terms(w)})


def test_bm25_scores_do_not_depend_on_how_many_texts_the_model_was_fitted_on():
    small = TextModel().fit(BM25_TEXTS)
    large = TextModel().fit(BM25_TEXTS + [BM25_TEXTS[1]] * 40)
    shares = []
    for model in (small, large):
        document = model.bm25_documents([document_tokens(BM25_TEXTS[1])])
        query, ceilings = model.bm25_queries([document_tokens("planten verzorgen buiten")])
        shares.append(float((document @ query.T).toarray()[0, 0] / ceilings[0]))
    assert shares[0] == shares[1] > 0


def test_bm25_scores_agree_in_both_directions_to_the_last_bit():
    model = TextModel().fit(BM25_TEXTS)
    queries = [document_tokens(t) for t in ("magazijn orders heftruck", "planten", "gasten koffie tafels")]
    documents = model.bm25_documents([document_tokens(text) for text in BM25_TEXTS])
    matrix, _ = model.bm25_queries(queries)
    by_query = np.asarray(matrix @ documents.T.toarray())
    for d in range(len(BM25_TEXTS)):
        one = model.bm25_documents([document_tokens(BM25_TEXTS[d])]).toarray().reshape(-1)
        assert (matrix @ one).tolist() == by_query[:, d].tolist()


def test_one_query_gets_the_terms_and_ceiling_its_batch_form_gives():
    # The served path asks for one query at a time and reads the terms of words seen in fit from the model.
    model = TextModel().fit(BM25_TEXTS)
    for query_text in (
        "magazijn orders",
        "onbekend gasten koffie koffie",
        "magazijnmedewerker heftruck groenonderhoud",
        "schoonmaakwerkzaamheden in de kantoortuin",
        "",
    ):
        tokens = document_tokens(query_text)
        batch, ceilings = model.bm25_queries([tokens])
        terms, ceiling = model.bm25_query(tokens)
        assert terms.tolist() == batch.indices.tolist()
        assert ceiling == float(ceilings[0])
    # Words no fitted text has count in the ceiling but not among the terms.
    terms, ceiling = model.bm25_query(document_tokens("onbekend gasten"))
    assert ceiling > len(terms) * text_model.BM25_IDF * (text_model.BM25_K1 + 1.0)
