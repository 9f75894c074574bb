"""Snowball stems and Dutch compound splitting, as the text model's word block counts them."""

from __future__ import annotations

from services.matching.ranking.morphology import CompoundSplitter, stems, word_terms
from services.matching.ranking.normalisation import GENERIC_JOB_WORDS
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
