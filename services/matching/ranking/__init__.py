"""Ranking: matching candidates and vacancies, hard rules first, then an explainable soft score.

The pure modules (normalisation, profiles, rules, phrases, text_model, scoring, rows, the two indexes,
rank, fingerprints, concepts, reranker's model) do no I/O: everything they compute is deterministic for
the same inputs (and the same fitted text model), so a proposal can always be reproduced. Around them:
the store, the live index and its cache, the engine, the event handlers, the commands and the routes.

How a pair is judged
--------------------
1. Hard constraints (:func:`.rules.hard_constraint_failures`) decide whether a pair may be shown at all. They are
   never traded against a good score: a vacancy that lacks an essential support is not proposed, however
   well the talents fit.
2. The score puts relevance first. It is built from named components, each in [0, 1] (see
   :data:`.rules.DEFAULT_WEIGHTS`):

   ``talent``   text similarity between the candidate's talents and preferences and the vacancy text
   ``supports`` share of the candidate's *preferred* supports that the workplace offers (1.0 if none)
   ``hours``    overlap of the two hour ranges, as a share of the narrower range
   ``ladder``   how well the vacancy's rung suits the candidate's Participatieladder step
   ``distance`` 1 at 0 km, falling linearly to 0 at the candidate's max travel distance (1.0 if unknown)

   ``score = talent * (1 - a + a * soft)`` (:func:`.scoring.final_score`): ``soft`` is the weighted mean of
   the four components after talent, whose weights weigh them against each other; ``a``, the soft share,
   is half of their share of all the weights, at most 0.4 (0.25 with the defaults). So the soft fit can
   lift a score by at most a third and never lifts a vacancy whose talent score is below 0.75 times
   another's above it. A candidate without usable talent text (none, or only stop words) is ranked by
   ``0.45 * soft`` and stays below the proposal threshold; a talent weight of zero ranks by ``soft``. The
   explanation's ``composition`` says which of these applied, with its numbers.

Text similarity
---------------
Phrases are normalised (case folded, accents stripped, punctuation and emoji dropped, digits kept, short
Dutch and English stop-word lists and a few words every job text contains removed) and embedded with two
scikit-learn ``TfidfVectorizer``s: character n-grams (``char_wb``, 3 to 5) so that Dutch compounds and
inflections overlap partially ("orderpicken" and "orderpicking", "magazijn" and "magazijnmedewerker"),
and word terms so that a shared word counts for more than a shared fragment. A word's terms
(:mod:`.morphology`) are its Dutch and English Snowball stems (PyStemmer) and the stems of its parts if
it is a Dutch compound of words the tenant's texts or the concept list use on their own
("magazijnmedewerker" also counts as "magazijn", "groenvoorziening" as "groen" and "voorziening"). Each
block is L2-normalised and scaled by the square root of its weight, so the dot product of two phrase
vectors is ``0.7 * char cosine + 0.3 * term cosine``.

Before a phrase is vectorised, the concept layer (:mod:`services.matching.ranking.concepts`) appends the labels
of every concept it names, so that "schoonmaken", "cleaning" and "interieurverzorging" meet although
they share no letters. The fitted :class:`.text_model.TextModel` carries the lexicon its phrases were expanded with,
so a query is always expanded like the index it is compared with. The raw-text methods of the model
(``fit``, ``transform``, ``similarity``) do not expand: they are plain TF-IDF.

Similarity is computed phrase to phrase, not document to document: each candidate phrase is compared with
every phrase of the vacancy (each skill, each task, the title, each sentence of the description). A
phrase's similarity is multiplied by the weight of the field it comes from (:data:`.phrases.FIELD_WEIGHTS`:
skills and tasks 1.0, title 0.7, description 0.4), so skills and tasks weigh more than the title and the
title more than the description, and a candidate phrase takes its best weighted match. Evidence adds
up: the talent component sums these best matches over the candidate's phrases (at most 12) and
saturates the sum as BM25 saturates term frequency, ``E / (E + 0.5)``, divided by the same for a
candidate all of whose phrases fit perfectly. A vacancy that meets several of the candidate's talents
beats one that meets a single one exactly, one talent that fits still counts (0.75 for one in four),
and a long list of unrelated talents does not drown the one that fits. Because the score is built from
phrase pairs, the explanation can name exactly which talent met which skill or task.

A second, lexical channel scores the candidate's words as one query against each vacancy's words as one
document with Okapi BM25 (k1 1.2, b 0.75) over the same terms. Its idf is the same for every term and
lengths are measured against a fixed typical vacancy, so a pair's score does not depend on how many
similar vacancies the tenant holds (an idf from the tenant's texts made the right kind of work sink below
the threshold as a region filled up with it). Its score over the most the query could score (every term
of the candidate's), saturated, is fused linearly with
the phrase channel into the talent component (:func:`.scoring.fused_relevance`, BM25 share 0.7, fitted on
one half of the quality benchmark and reported on the other); the explanation's
``composition.relevance_channels`` gives both channels and the formula.
"""
