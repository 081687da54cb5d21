"""Catalog search: field-weighted, bilingual, typo-tolerant ranking of services for a free-text query.

`SearchIndex(services)` builds everything once; `search()` only reads it. The field weights, the query's concepts,
the bounds on a query's work, the score and the threshold: docs/architecture.md, "Catalog search".
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from api.search_terms import (
    STOP_WORDS,
    SYNONYM_GROUPS,
    Synonyms,
    bigrams,
    compact,
    deletions,
    edit_distance,
    is_chinese,
    neighbourhood,
    normalize,
    tokens,
)
from shared.models import Service

KEY_WEIGHT = 8.0
NAME_WEIGHT = 6.0
KEYWORD_WEIGHT = 4.0
TAG_WEIGHT = 2.5
TEXT_WEIGHT = 1.5
SYNONYM_FACTOR = 0.7
FUZZY_FACTOR = 0.6
ABSORBED_FACTOR = 0.5
EXTRA_TERM_FACTOR = 0.15
PHRASE_FACTOR = 0.5
EXACT_KEY_BONUS = 1000
EXACT_NAME_ZH_BONUS = 900
EXACT_NAME_BONUS = 800
MIN_COVERAGE = 0.4
MIN_RELATIVE_SCORE = 0.15
GENERIC_SHARE = 0.3
MAX_DICTIONARY_TERM = 12
FUZZY_MIN_LENGTH = 5
SCORE_SCALE = 10
MAX_QUERY_CHARS = 256  # read of the query text, and of its normalized words; the route refuses a longer q
MAX_QUERY_WORDS = 32
MAX_CHINESE_CHARS = 48  # a Chinese run costs a dictionary scan and synonym lookups per character
FUZZY_MAX_LENGTH = 16  # longer words are taken as typed: their deletion neighbourhood grows with the square
MAX_FUZZY_WORDS = 3
MAX_TYPO_VARIANTS = 256  # deletion variants looked up per query (a word is charged its neighbourhood's bound)
MAX_DISTANCES = 24  # edit distances computed per query
MAX_POSTINGS = 256  # (term, service) pairs scored per query; natural queries of a dozen words read under 200


class SearchHit(msgspec.Struct, frozen=True):
    service: Service
    score: int
    terms: list[str]
    why: str


class SearchWork(msgspec.Struct, frozen=True):
    """What one search did: words read (and whether the query was cut), words typo-expanded, deletion variants
    looked up (the bound charged), edit distances computed, postings scored and concepts left out for want of
    postings. Each is bounded by a constant above whatever the query; postings by MAX_POSTINGS or, when the most
    specific concept alone holds more, by that concept's (which the index bounds)."""

    words: int
    truncated: bool
    fuzzy_words: int
    variants: int
    distances: int
    postings: int
    left_out: int


class SearchResult(msgspec.Struct, frozen=True):
    query: str
    expanded_terms: list[str]
    total: int
    hits: list[SearchHit]
    work: SearchWork


@dataclass(slots=True)
class _Budget:
    """One query's allowance of words and typo work, and what it has used."""

    truncated: bool = False
    words: int = 0
    fuzzy_words: int = 0
    variants: int = 0
    distances: int = 0
    postings: int = 0
    left_out: int = 0

    def read(self, query: str) -> tuple[str, list[str]]:
        """The query's first MAX_QUERY_CHARS characters (NFKC), and of their words the first MAX_QUERY_WORDS, cut
        where they pass MAX_QUERY_CHARS characters in all or MAX_CHINESE_CHARS Chinese ones."""
        text = unicodedata.normalize("NFKC", query[:MAX_QUERY_CHARS])  # once: normalizing it again is a quick check
        words = tokens(text)
        kept: list[str] = []
        chars = chinese = 0
        for word in words[:MAX_QUERY_WORDS]:
            room = MAX_QUERY_CHARS - chars
            if is_chinese(word):
                room = min(room, MAX_CHINESE_CHARS - chinese)
                chinese += min(len(word), max(room, 0))
            part = word[: max(room, 0)]
            chars += len(part)
            kept += [part] if part else []
            self.truncated = self.truncated or len(part) < len(word)
        self.truncated = self.truncated or len(query) > MAX_QUERY_CHARS or len(words) > MAX_QUERY_WORDS
        self.words = len(kept)
        return text, kept

    def fuzz(self, word: str, limit: int) -> bool:
        """Whether `word` may be typo-expanded; if so its variants are charged."""
        if len(word) > FUZZY_MAX_LENGTH or self.fuzzy_words >= MAX_FUZZY_WORDS:
            return False
        cost = neighbourhood(len(word), limit)
        if self.variants + cost > MAX_TYPO_VARIANTS:
            return False
        self.fuzzy_words += 1
        self.variants += cost
        return True

    def distances_left(self) -> int:
        return MAX_DISTANCES - self.distances

    def report(self) -> SearchWork:
        return SearchWork(self.words, self.truncated, self.fuzzy_words, self.variants, self.distances,
                          self.postings, self.left_out)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Term:
    text: str
    factor: float


@dataclass(slots=True)
class _Concept:
    terms: list[_Term]
    words: set[str] = field(default_factory=set)
    phrase_words: set[str] = field(default_factory=set)

    def add(self, text: str, factor: float) -> bool:
        if any(term.text == text for term in self.terms):
            return False
        self.terms.append(_Term(text, factor))
        return True


def _absorb_phrase_words(concepts: list[_Concept]) -> None:
    """A word inside a recognized synonym phrase ("estimation" in "pose estimation") joins the phrase's concept
    at reduced weight instead of counting on its own."""
    for phrase in [concept for concept in concepts if concept.phrase_words]:
        if phrase not in concepts:
            continue
        for word in [c for c in concepts if c is not phrase and c.words & phrase.phrase_words]:
            for term in word.terms:
                phrase.add(term.text, term.factor * ABSORBED_FACTOR)
            phrase.words |= word.words
            phrase.phrase_words |= word.phrase_words
            concepts.remove(word)


@dataclass(slots=True)
class _Match:
    """One service's evidence for one query, built per call."""

    score: float = 0.0
    covered: float = 0.0
    specific: bool = False
    bonus: int = 0
    terms: list[str] = field(default_factory=list)

    def note(self, term: str) -> None:
        if term not in self.terms:
            self.terms.append(term)

    def lead(self, term: str) -> None:
        if term in self.terms:
            self.terms.remove(term)
        self.terms.insert(0, term)


def _service_fields(service: Service) -> list[tuple[float, list[str]]]:
    return [
        (KEY_WEIGHT, [service.id, service.internal_service_id, service.discovery.tool_name, service.upstream.action]),
        (NAME_WEIGHT, [service.name, service.name_zh]),
        (KEYWORD_WEIGHT, [*service.keywords, *service.discovery.aliases]),
        (TAG_WEIGHT, [service.category, *service.tags]),
        (TEXT_WEIGHT, [service.description, service.description_zh, service.description_for_model]),
        (TEXT_WEIGHT, service.use_cases),
    ]


def searchable_text(service: Service) -> str:
    """Every field the search reads, normalized (what a hit's `terms` must occur in)."""
    return " | ".join(normalize(value) for _, values in _service_fields(service) for value in values)


class SearchIndex:
    """Every service's searchable terms, weighted by field, with idf, synonyms and a typo index; built once."""

    def __init__(self, services: Sequence[Service]) -> None:
        self._services = tuple(services)
        self._synonyms = Synonyms(SYNONYM_GROUPS)
        self._dictionary = self._build_dictionary()
        self._postings: dict[str, dict[int, float]] = {}
        self._fields: list[tuple[tuple[float, str], ...]] = []  # per service: (weight, its fields' text)
        self._exact: dict[str, list[tuple[int, int, str]]] = {}
        self._categories: list[frozenset[str]] = []
        for index, service in enumerate(self._services):
            self._index_service(index, service)
        count = len(self._services)
        self._idf = {term: math.log(1 + (count - len(hits) + 0.5) / (len(hits) + 0.5)) for term, hits in
                     self._postings.items()}  # fmt: skip
        self._specific = frozenset(term for term, hits in self._postings.items() if len(hits) <= GENERIC_SHARE * count)
        self._typos = self._build_typo_index()

    # ----- building -----

    def _build_dictionary(self) -> frozenset[str]:
        terms = set(self._synonyms.by_chinese)
        for service in self._services:
            for value in [service.name_zh, *service.keywords, *service.discovery.aliases]:
                terms.update(run for run in tokens(value) if is_chinese(run) and len(run) <= MAX_DICTIONARY_TERM)
        return frozenset(term for term in terms if len(term) >= 2)

    def _index_service(self, index: int, service: Service) -> None:
        texts: dict[float, list[str]] = {}
        for weight, values in _service_fields(service):
            for value in values:
                words = tokens(value)
                texts.setdefault(weight, []).append(" ".join(words))
                for term in self._terms_of(words):
                    hits = self._postings.setdefault(term, {})
                    hits[index] = max(hits.get(index, 0.0), weight)
        self._fields.append(tuple((weight, f" {' | '.join(parts)} ") for weight, parts in texts.items()))
        self._categories.append(frozenset(value.lower() for value in [service.category, *service.tags]))
        exact = ((EXACT_KEY_BONUS, [service.id, service.internal_service_id, service.discovery.tool_name,
                                    service.upstream.action]),
                 (EXACT_NAME_ZH_BONUS, [service.name_zh]), (EXACT_NAME_BONUS, [service.name]))  # fmt: skip
        for bonus, values in exact:
            for value in values:
                if key := compact(value):
                    self._exact.setdefault(key, []).append((index, bonus, normalize(value)))

    def _terms_of(self, words: list[str]) -> set[str]:
        found: set[str] = set()
        for position, word in enumerate(words):
            if is_chinese(word):
                found.add(word)
                found.update(bigrams(word))
                found.update(self._dictionary_terms_in(word))
                continue
            found.add(word)
            for size in range(2, self._synonyms.longest_phrase + 1):
                phrase = " ".join(words[position : position + size])
                if phrase in self._synonyms.by_phrase:
                    found.add(phrase)
        return found

    def _dictionary_terms_in(self, run: str) -> Iterable[str]:
        for start in range(len(run) - 1):
            for end in range(start + 2, min(len(run), start + MAX_DICTIONARY_TERM) + 1):
                if run[start:end] in self._dictionary:
                    yield run[start:end]

    def _build_typo_index(self) -> dict[str, tuple[str, ...]]:
        index: dict[str, list[str]] = {}
        for term in self._idf:
            if FUZZY_MIN_LENGTH - 1 <= len(term) <= FUZZY_MAX_LENGTH + 2 and term.isascii() and term.isalpha():
                for variant in deletions(term, 2):
                    index.setdefault(variant, []).append(term)
        return {variant: tuple(terms) for variant, terms in index.items()}

    # ----- querying -----

    def search(self, query: str, *, limit: int = 10, category: str | None = None) -> SearchResult:
        allowed = self._allowed(category)
        budget = _Budget()
        text, words = budget.read(query)
        if not words:
            hits = [self._listing_hit(index) for index in sorted(allowed, key=lambda i: self._services[i].id)]
            return SearchResult(query=query, expanded_terms=[], total=len(hits), hits=hits[: max(limit, 0)],
                                work=budget.report())  # fmt: skip
        concepts, expanded = self._concepts(words, budget)
        concepts = self._affordable(concepts, budget)
        matches = self._score(concepts, allowed)
        self._add_phrase(words, matches)
        self._add_exact(text, matches, allowed)
        kept = self._threshold(concepts, matches)
        ranked = sorted(kept.items(), key=lambda item: (-self._final(item[1]), self._services[item[0]].id))
        hits = [self._hit(index, match) for index, match in ranked[: max(limit, 0)]]
        return SearchResult(query=query, expanded_terms=expanded, total=len(ranked), hits=hits, work=budget.report())

    def _allowed(self, category: str | None) -> set[int]:
        wanted = (category or "").strip().lower()
        return {index for index, names in enumerate(self._categories) if not wanted or wanted in names}

    def _concepts(self, words: list[str], budget: _Budget) -> tuple[list[_Concept], list[str]]:
        concepts: list[_Concept] = []
        corrected: list[str] = []
        for position, word in enumerate(words):
            if (first := words.index(word)) < position:  # a repeated word is one concept
                corrected.append(corrected[first])
                continue
            if is_chinese(word):
                concepts.extend(_Concept([_Term(part, 1.0)], {part}) for part in self._segment(word))
                corrected.append(word)
                continue
            if len(word) < 2 or word in STOP_WORDS:
                corrected.append(word)
                continue
            fixes = self._corrections(word, budget)
            concepts.append(_Concept([_Term(word, 1.0), *(_Term(fix, FUZZY_FACTOR) for fix in fixes)], {word, *fixes}))
            corrected.append(fixes[0] if fixes else word)
        return concepts, self._expand(concepts, corrected, set(words))

    def _segment(self, run: str) -> list[str]:
        """Greedy longest dictionary match; what no dictionary term covers becomes bigrams."""
        parts: list[str] = []
        start = position = 0
        while position < len(run):
            end = next((end for end in range(min(len(run), position + MAX_DICTIONARY_TERM), position + 1, -1)
                        if run[position:end] in self._dictionary), 0)  # fmt: skip
            if not end:
                position += 1
                continue
            parts.extend(bigrams(run[start:position]))
            parts.append(run[position:end])
            start = position = end
        parts.extend(bigrams(run[start:]))
        return list(dict.fromkeys(parts))

    def _corrections(self, word: str, budget: _Budget) -> list[str]:
        """Vocabulary words nearest an unknown word (edit distance 1 for 5-7 letters, 2 for longer), as far as
        the query's budget goes."""
        if len(word) < FUZZY_MIN_LENGTH or word in self._idf or word in self._synonyms.by_word:
            return []
        limit = 1 if len(word) < 8 else 2
        if not budget.fuzz(word, limit):
            return []
        found = {term for variant in deletions(word, limit) for term in self._typos.get(variant, ())}
        candidates = sorted((abs(len(term) - len(word)), term) for term in found)
        candidates = [item for item in candidates if item[0] <= limit][: max(budget.distances_left(), 0)]
        budget.distances += len(candidates)
        scored = sorted((edit_distance(word, term, limit), term) for _, term in candidates)
        best = [term for distance, term in scored if distance == scored[0][0] and distance <= limit]
        return best[:3]

    def _expand(self, concepts: list[_Concept], words: list[str], typed: set[str]) -> list[str]:
        expanded: list[str] = []
        for group_id, members in sorted(self._synonyms.found_in(words).items()):
            target = next((concept for concept in concepts if concept.words & members), None)
            if target is None:
                target = _Concept([], set(members))
                concepts.append(target)
            for key in self._synonyms.groups[group_id]:
                matched = key in members
                if matched and " " in key:
                    target.phrase_words.update(key.split())
                if target.add(key, 1.0 if matched else SYNONYM_FACTOR) and not matched and key not in typed:
                    expanded.append(self._synonyms.display[key])
        _absorb_phrase_words(concepts)
        return list(dict.fromkeys(expanded))

    def _affordable(self, concepts: list[_Concept], budget: _Budget) -> list[_Concept]:
        """The concepts whose postings fit in MAX_POSTINGS, taken from the most specific (highest best term
        weight; a generic word weighs ~0 anyway), that one always; in query order."""
        costs = [sum(len(self._postings.get(term.text, ())) for term in concept.terms) for concept in concepts]
        order = sorted(range(len(concepts)), key=lambda i: -max(map(self._term_weight, concepts[i].terms), default=0))
        chosen: set[int] = set()
        for position in order:
            if not chosen or budget.postings + costs[position] <= MAX_POSTINGS:
                chosen.add(position)
                budget.postings += costs[position]
        budget.left_out = len(concepts) - len(chosen)
        return [concept for position, concept in enumerate(concepts) if position in chosen]

    def _term_weight(self, term: _Term) -> float:
        return self._idf.get(term.text, 0.0) * term.factor

    def _score(self, concepts: list[_Concept], allowed: set[int]) -> dict[int, _Match]:
        matches: dict[int, _Match] = {}
        for concept in concepts:
            found: dict[int, list[tuple[float, float, str]]] = {}
            for term in concept.terms:
                weight = self._term_weight(term)
                for index, field_weight in self._postings.get(term.text, {}).items():
                    if index in allowed:
                        found.setdefault(index, []).append((field_weight * weight, weight, term.text))
            for index, scored in found.items():
                self._credit(matches.setdefault(index, _Match()), scored)
        return matches

    def _credit(self, match: _Match, scored: list[tuple[float, float, str]]) -> None:
        """Add one concept's matching terms to a service's evidence: the best in full, the others a little."""
        if len(scored) == 1:  # the usual case, without the sums
            points, weight, term = scored[0]
            match.score += points
            match.covered += weight
            match.specific = match.specific or term in self._specific
            match.note(term)
            return
        scored.sort(key=lambda item: -item[0])
        match.score += scored[0][0] + EXTRA_TERM_FACTOR * sum(item[0] for item in scored[1:])
        match.covered += max(item[1] for item in scored)
        match.specific = match.specific or any(item[2] in self._specific for item in scored)
        for item in scored:
            match.note(item[2])

    def _add_phrase(self, words: list[str], matches: dict[int, _Match]) -> None:
        if len(words) < 2:
            return
        phrase = " ".join(words)
        needle = f" {phrase} "
        mass = PHRASE_FACTOR * sum(self._idf.get(word, 0.0) for word in words)
        for index, match in matches.items():
            weight = next((weight for weight, text in self._fields[index] if needle in text), 0.0)
            if weight:
                match.score += weight * mass
                match.lead(phrase)

    def _add_exact(self, query: str, matches: dict[int, _Match], allowed: set[int]) -> None:
        for index, bonus, display in self._exact.get(compact(query), ()):
            if index in allowed:
                match = matches.setdefault(index, _Match())
                match.bonus = max(match.bonus, bonus)
                match.lead(display)

    def _threshold(self, concepts: list[_Concept], matches: dict[int, _Match]) -> dict[int, _Match]:
        """Keep exact matches, and services that cover enough of the query (relative to the best) and score
        enough; when the query has a specific word, a service must match one."""
        needs_specific = any(term.text in self._specific for concept in concepts for term in concept.terms)
        eligible = [m for m in matches.values() if m.bonus or m.specific or not needs_specific]
        best_cover = max((m.covered for m in eligible), default=0.0)
        eligible = [m for m in eligible if m.bonus or m.covered >= MIN_COVERAGE * best_cover - 1e-9]
        best_score = max((m.score for m in eligible), default=0.0)
        kept = {id(m) for m in eligible if m.score >= MIN_RELATIVE_SCORE * best_score}
        return {index: m for index, m in matches.items() if m.bonus or id(m) in kept}

    @staticmethod
    def _final(match: _Match) -> int:
        return round(match.score * SCORE_SCALE) + match.bonus

    def _hit(self, index: int, match: _Match) -> SearchHit:
        service = self._services[index]
        terms = list(dict.fromkeys(self._synonyms.display.get(term, term) for term in match.terms))
        why = f'Matched {", ".join(terms)} for "{service.name}". {_price(service)}'
        return SearchHit(service=service, score=self._final(match), terms=terms, why=why)

    def _listing_hit(self, index: int) -> SearchHit:
        service = self._services[index]
        why = f'No query given; listed "{service.name}" ({service.category}). {_price(service)}'
        return SearchHit(service=service, score=0, terms=[], why=why)


def _price(service: Service) -> str:
    pricing = service.pricing
    return f"Price is {pricing.currency} {pricing.amount_cents / 100:.2f} per policy {pricing.policy_id}."
