"""The concept layer: Dutch and English terms for the same work meet, compounds are caught, ESCO and
CompetentNL extend it."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from services.matching.ranking import concepts, normalisation, text_model
from services.matching.ranking.concepts import ConceptError, Lexicon, read_competentnl, read_esco_csv
from services.matching.ranking.normalisation import phrase_tokens
from services.matching.ranking.profiles import CandidateProfile, VacancyProfile
from services.matching.ranking.rank import proposals_for_vacancy, rank_vacancies_for_candidate
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD

TENANT = "noord-limburg"
SECTORS = {
    "groen",
    "schoonmaak",
    "logistiek",
    "horeca",
    "zorg",
    "retail",
    "productie",
    "facilitair",
    "administratie",
    "bouw_techniek",
    "kringloop",
    "agrarisch",
}
SOURCES = concepts.SHIPPED_CONCEPTS.with_name("SOURCES.md")
COMPETENTNL_FIXTURES = Path(__file__).parents[1] / "fixtures" / "competentnl"


def candidate(*talents: str, id: str = "c-1") -> CandidateProfile:
    return CandidateProfile(
        id=id, tenant=TENANT, jobcoach_id="jc-1", talents=talents, ladder_step=3, consent_matching=True
    )


def vacancy(id: str, *skills: str, title: str = "Medewerker") -> VacancyProfile:
    return VacancyProfile(id=id, tenant=TENANT, employer_id="emp-1", title=title, skills=skills, kind="sheltered")


def concepts_of(text: str, lexicon: Lexicon | None = None) -> tuple[str, ...]:
    return (lexicon or normalisation.default_lexicon()).find(phrase_tokens(text))


# ---------------------------------------------------------------------------------------------- shipped list


def test_the_shipped_list_covers_the_twelve_fields_with_several_concepts_each():
    shipped = concepts.read_concept_csv(concepts.SHIPPED_CONCEPTS)
    per_sector = Counter(concept.sector for concept in shipped)
    assert set(per_sector) == SECTORS
    assert all(count >= 3 for count in per_sector.values()), per_sector
    assert all(concept.terms["nl"] and concept.terms["en"] for concept in shipped), "every concept in both languages"


def test_every_shipped_concept_names_a_source_that_the_sources_file_explains():
    explained = set(re.findall(r"^\| `([a-z_]+)` \|", SOURCES.read_text(encoding="utf-8"), re.MULTILINE))
    used = {concept.source for concept in concepts.read_concept_csv(concepts.SHIPPED_CONCEPTS)}
    assert used and used <= explained, used - explained


def test_a_concept_list_with_a_source_column_needs_a_source_on_every_row(tmp_path):
    listed = tmp_path / "concepts.csv"
    listed.write_text("concept_id,sector,nl,en,source\nbakken,productie,bakken,baking,\n", encoding="utf-8")
    with pytest.raises(ConceptError, match="names no source"):
        concepts.read_concept_csv(listed)


def test_every_shipped_term_leads_back_to_its_own_concept():
    lexicon = normalisation.default_lexicon()
    for concept in concepts.read_concept_csv(concepts.SHIPPED_CONCEPTS):
        for terms in concept.terms.values():
            for term in terms:
                assert concept.id in concepts_of(term.rstrip("*"), lexicon), (concept.id, term)


@pytest.mark.parametrize(
    ("words", "concept"),
    [
        ("schoonmaken", "schoonmaak_algemeen"),
        ("cleaning", "schoonmaak_algemeen"),
        ("Interieurverzorging", "schoonmaak_algemeen"),
        ("schoonmaakster", "schoonmaak_algemeen"),
        ("orderpicken", "logistiek_orderpicking"),
        ("order picking", "logistiek_orderpicking"),
        ("Magazijnmedewerker", "logistiek_orderpicking"),
        ("afwassen in de keuken", "horeca_afwas"),
        ("groenvoorziening", "groen_onderhoud"),
        ("inpakken en etiketteren", "productie_inpakken"),
        ("ouderen begeleiden", "zorg_ondersteuning"),
        ("vakkenvullen", "retail_vakkenvullen"),
        ("data entry", "administratie_invoer"),
        ("postkamer", "administratie_post"),
        ("kringloopwinkel", "kringloop_winkel"),
        ("stratenmaker", "bouw_bestrating"),
        ("beveiliger", "facilitair_beveiliging"),
        ("kaswerk", "agrarisch_teelt"),
        ("Dierverzorger", "agrarisch_dieren"),
    ],
)
def test_dutch_english_and_compound_terms_name_their_concept(words, concept):
    assert concept in concepts_of(words)


@pytest.mark.parametrize(
    ("words", "concept"),
    [
        ("ik heb bij de Action vakken gevuld", "retail_vakkenvullen"),
        ("afwassen in een restaurant", "horeca_afwas"),
        ("afwassen in de horeca", "horeca_algemeen"),
        ("bij de gemeente het gras gemaaid", "groen_tuinwerk"),
        ("ik heb kantoren schoongemaakt", "schoonmaak_algemeen"),
        ("pakketjes bezorgen met een busje", "logistiek_bezorgen"),
        ("koffie en thee rondbrengen bij ouderen", "zorg_maaltijden"),
        ("achter de kassa gezeten bij de Jumbo", "retail_kassa"),
        ("op de bouw stenen gesjouwd", "bouw_algemeen"),
        ("spullen sorteren bij de kringloop", "kringloop_winkel"),
        ("de post rondbrengen op kantoor", "administratie_post"),
        ("aardbeien plukken bij een boer", "agrarisch_teelt"),
        ("stallen uitmesten en de dieren voeren", "agrarisch_dieren"),
        ("in elkaar zetten van lampen", "productie_assemblage"),
        ("vergaderzalen klaarzetten", "facilitair_zalen"),
    ],
)
def test_everyday_wordings_of_the_work_name_its_concept(words, concept):
    assert concept in concepts_of(words)


@pytest.mark.parametrize(
    ("words", "wrong"),
    [
        ("kassen", "retail_kassa"),  # greenhouses, not tills
        ("kaswerk", "retail_kassa"),
        ("kassa", "agrarisch_teelt"),
        ("ramen gewassen", "agrarisch_teelt"),  # washed, not crops
        ("groenten snijden", "groen_onderhoud"),  # vegetables, not green maintenance
        ("zorgvuldig", "zorg_ondersteuning"),  # careful, not care
        ("vakkennis", "retail_vakkenvullen"),  # professional knowledge, not shelves
        ("bezorgd", "logistiek_bezorgen"),  # worried, not delivered
        ("keukenmonteur", "horeca_keuken"),  # fits kitchens, does not cook
        ("bouwmarkt", "bouw_algemeen"),  # a shop
        ("farmaceutische productie", "agrarisch_boerderij"),
        ("posters ophangen", "administratie_post"),
        ("stalen constructies", "agrarisch_dieren"),  # steel, not stables
        ("software packages", "productie_inpakken"),
        ("greenhouse gases", "agrarisch_teelt"),
        ("power plants", "groen_planten"),
        ("air traffic controller", "facilitair_beveiliging"),
    ],
)
def test_tricky_words_do_not_reach_a_concept_they_only_resemble(words, wrong):
    assert wrong not in concepts_of(words)


def test_a_phrase_without_a_known_term_names_no_concept_and_is_left_alone():
    lexicon = normalisation.default_lexicon()
    for text in ("buiten werken", "nauwkeurig", "🌱", "植物の世話", ""):
        tokens = phrase_tokens(text)
        assert lexicon.expand(tokens) == (tokens, ())


def test_expansion_appends_the_labels_once_and_never_drops_a_word():
    lexicon = normalisation.default_lexicon()
    words, found = lexicon.expand(phrase_tokens("interieurverzorging"))
    assert found == ("schoonmaak_algemeen",)
    assert words[0] == "interieurverzorging"
    assert {"schoonmaken", "cleaning"} <= set(words)
    assert len(words) == len(set(words))
    again, _ = lexicon.expand(words)
    assert set(again) == set(words)


def test_a_long_list_names_only_a_few_concepts():
    many = "schoonmaken afwassen orderpicken inpakken vakkenvullen archiveren kassawerk snoeien"
    assert len(concepts_of(many)) == concepts.MAX_CONCEPTS_PER_PHRASE


# ---------------------------------------------------------------------------------------------- in ranking


@pytest.mark.parametrize("talent", ["cleaning", "schoonmaken", "interieurverzorging"])
def test_cleaning_in_any_words_finds_the_cleaning_job_first(talent):
    jobs = [
        vacancy("v-clean", "interieurverzorging"),
        vacancy("v-kitchen", "koken"),
        vacancy("v-shop", "kassawerk"),
        vacancy("v-green", "groenonderhoud"),
    ]
    ranked = rank_vacancies_for_candidate(candidate(talent), jobs, top_k=None)
    assert ranked[0].vacancy_id == "v-clean"
    assert ranked[0].explanation["components"]["talent"] > ranked[1].explanation["components"]["talent"] + 0.3


@pytest.mark.parametrize("talent", ["orderpicken", "order picking"])
def test_order_picking_is_proposed_for_a_warehouse_job(talent):
    warehouse = vacancy("v-warehouse", "magazijn", title="Magazijnmedewerker")
    [match] = proposals_for_vacancy(warehouse, [candidate(talent)], DEFAULT_PROPOSAL_THRESHOLD)
    assert match.vacancy_id == "v-warehouse"


def test_the_explanation_names_the_concept_when_the_words_differ():
    [match] = rank_vacancies_for_candidate(candidate("dishwashing"), [vacancy("v-1", "afwassen")])
    [pair] = match.explanation["talents_matched"]
    assert (pair["talent"], pair["matched"]) == ("dishwashing", "afwassen")
    assert pair["concepts"] == ["afwassen"]
    [same] = rank_vacancies_for_candidate(candidate("afwassen"), [vacancy("v-1", "afwassen")])
    assert "concepts" not in same.explanation["talents_matched"][0]


def test_an_exact_phrase_still_beats_a_synonym():
    exact, synonym = rank_vacancies_for_candidate(
        candidate("afwassen"), [vacancy("v-synonym", "dishwashing"), vacancy("v-exact", "afwassen")], top_k=None
    )
    assert (exact.vacancy_id, synonym.vacancy_id) == ("v-exact", "v-synonym")
    assert exact.score >= synonym.score


# ---------------------------------------------------------------------------------------------- ESCO


def write_esco(path, rows: list[dict]) -> None:
    # As ESCO publishes them: every column quoted, alternative labels on separate lines inside one cell.
    columns = ["conceptType", "conceptUri", "preferredLabel", "altLabels", "hiddenLabels", "status", "description"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns, quoting=csv.QUOTE_ALL)
        writer.writeheader()
        for row in rows:
            writer.writerow({"conceptType": "KnowledgeSkillCompetence", "status": "released", **row})


ESCO_URI = "http://data.europa.eu/esco/skill/0000-test-bakken"


def test_esco_labels_become_concepts_across_languages(tmp_path):
    write_esco(
        tmp_path / "skills_nl.csv",
        [{"conceptUri": ESCO_URI, "preferredLabel": "brood bakken", "altLabels": "broodbakken\nbakkerswerk"}],
    )
    write_esco(tmp_path / "skills_en.csv", [{"conceptUri": ESCO_URI, "preferredLabel": "baking bread"}])
    rows = [
        *read_esco_csv(tmp_path / "skills_nl.csv", "skill"),
        *read_esco_csv(tmp_path / "skills_en.csv", "skill"),
    ]
    assert [(row.language, row.preferred_label, row.alt_labels) for row in rows] == [
        ("nl", "brood bakken", ("broodbakken", "bakkerswerk")),
        ("en", "baking bread", ()),
    ]

    lexicon = normalisation.lexicon_with(rows)
    assert lexicon.version != normalisation.default_lexicon().version
    assert concepts_of("bakkerswerk", lexicon) == ("esco:" + ESCO_URI,)
    assert concepts_of("baking bread", lexicon) == ("esco:" + ESCO_URI,)
    model = text_model.fit_model([vacancy("v-bakery", "bakkerswerk")], [], lexicon=lexicon)
    [with_esco] = rank_vacancies_for_candidate(
        candidate("baking bread"), [vacancy("v-bakery", "bakkerswerk")], model=model
    )
    [without] = rank_vacancies_for_candidate(candidate("baking bread"), [vacancy("v-bakery", "bakkerswerk")])
    assert with_esco.explanation["components"]["talent"] > without.explanation["components"]["talent"] + 0.3


def test_esco_rows_that_are_not_released_or_empty_are_skipped_and_the_language_comes_from_the_name(tmp_path):
    write_esco(
        tmp_path / "occupations_en.csv",
        [
            {"conceptUri": "u1", "preferredLabel": "cleaner", "altLabels": ""},
            {"conceptUri": "u2", "preferredLabel": "", "altLabels": "nothing"},
            {"conceptUri": "u3", "preferredLabel": "old job", "status": "obsolete"},
        ],
    )
    rows = list(read_esco_csv(tmp_path / "occupations_en.csv", "occupation"))
    assert [(row.uri, row.language, row.kind) for row in rows] == [("u1", "en", "occupation")]


def test_a_file_that_is_not_esco_is_refused_with_a_reason(tmp_path):
    other = tmp_path / "skills_nl.csv"
    other.write_text("name,value\nfoo,bar\n", encoding="utf-8")
    with pytest.raises(ConceptError, match="not an ESCO file"):
        list(read_esco_csv(other, "skill"))
    with pytest.raises(ConceptError, match="cannot read"):
        list(read_esco_csv(tmp_path / "missing.csv", "skill"))
    with pytest.raises(ConceptError, match="kind"):
        list(read_esco_csv(other, "hobby"))


# ---------------------------------------------------------------------------------------------- CompetentNL

FLORIST = "competentnl:https://linkeddata.competentnl.nl/uwv/id/occupation/TEST-0001"
SIGNPOSTING = "competentnl:https://linkeddata.competentnl.nl/id/human-capability/TEST-0100"


def test_competentnl_occupations_and_skills_are_read_with_their_synonyms_per_language():
    rows = read_competentnl(COMPETENTNL_FIXTURES / "beroepen.ttl")
    read = [(row.kind, row.uri.rsplit("/", 1)[1], row.language, row.preferred_label, row.alt_labels) for row in rows]
    assert read == [
        ("occupation", "TEST-0001", "en", "Florist assistant", ()),
        ("occupation", "TEST-0001", "nl", "Bloembinder", ("Bloemschikker", "Boeketten binden")),
        ("skill", "TEST-0100", "en", "Signposting", ()),
        ("skill", "TEST-0100", "nl", "Bewegwijzeren", ("Bebording aanbrengen", "Borden plaatsen")),
    ], "the invalidated occupation and the knowledge area are left out"
    [framing_en, framing_nl] = read_competentnl(COMPETENTNL_FIXTURES / "vaardigheden.jsonld")
    assert (framing_nl.kind, framing_nl.preferred_label) == ("skill", "Inlijsten")
    assert framing_nl.alt_labels == ("Lijsten maken",)
    assert (framing_en.language, framing_en.preferred_label) == ("en", "Picture framing")


def test_competentnl_synonyms_connect_two_phrases_in_a_ranking():
    lexicon = normalisation.lexicon_with(read_competentnl(COMPETENTNL_FIXTURES / "beroepen.ttl"))
    assert concepts_of("boeketten binden", lexicon) == (FLORIST,)
    assert concepts_of("borden plaatsen", lexicon) == (SIGNPOSTING,)
    jobs = [vacancy("v-florist", "bloemschikker"), vacancy("v-signs", "bewegwijzeren"), vacancy("v-kitchen", "koken")]
    model = text_model.fit_model(jobs, [], lexicon=lexicon)
    ranked = rank_vacancies_for_candidate(candidate("boeketten binden"), jobs, model=model, top_k=None)
    without = rank_vacancies_for_candidate(candidate("boeketten binden"), jobs, top_k=None)
    assert ranked[0].vacancy_id == "v-florist"
    talent = {match.vacancy_id: match.explanation["components"]["talent"] for match in without}
    assert ranked[0].explanation["components"]["talent"] > talent["v-florist"] + 0.3
    [pair] = ranked[0].explanation["talents_matched"]
    assert pair["concepts"] == ["Bloembinder"]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.ttl", "@prefix cnlo: <https://linkeddata.competentnl.nl/def/competentnl#> .\nx a", "not readable"),
        ("broken.jsonld", '{"@graph": [', "not readable"),
        ("empty.ttl", "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n", "no labelled CompetentNL"),
        ("beroepen.csv", "uri,label\n", "not a linked-data file name"),
    ],
)
def test_a_file_that_is_not_competentnl_linked_data_is_refused_with_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConceptError, match=reason):
        read_competentnl(path)
    with pytest.raises(ConceptError, match="cannot read"):
        read_competentnl(tmp_path / "missing.ttl")
