"""Catalog search: exact keys first, field weights, bilingual synonyms, typos, generic words, filters, speed,
and work bounded per query whatever the query holds."""

from __future__ import annotations

import random
import re
import string
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from api import search, search_terms
from api.search import SearchIndex, SearchResult, searchable_text
from api.search_terms import edit_distance, normalize
from shared.catalog import Catalog, load_specs
from shared.models import Service
from shared.operator import parse_operator_terms

OPERATOR_FILE = Path(__file__).resolve().parents[1] / "deploy" / "operator.toml"
WHY = re.compile(r'^Matched .+ for ".+"\. Price is USD \d+\.\d{2} per policy \S+\.$')
LIVENESS = {"face-liveness-detection", "infrared-face-liveness-detection", "video-face-liveness-detection",
            "face-liveness-v2"}  # fmt: skip


@pytest.fixture(scope="module")
def services() -> tuple[Service, ...]:
    if OPERATOR_FILE.exists():
        return Catalog.load(OPERATOR_FILE).services
    specs = load_specs()
    ids = {spec.id for spec in specs}
    return Catalog.build(specs, parse_operator_terms({}, ids)).services


@pytest.fixture(scope="module")
def index(services: tuple[Service, ...]) -> SearchIndex:
    return SearchIndex(services)


def ids(result: SearchResult) -> list[str]:
    return [hit.service.id for hit in result.hits]


def first(index: SearchIndex, query: str) -> str:
    result = index.search(query)
    assert result.hits, f"{query!r} found nothing"
    return result.hits[0].service.id


def occurs(term: str, text: str) -> bool:
    """`term` is in the normalized `text`: a Chinese term anywhere, an English one as whole words."""
    term = normalize(term)
    if re.fullmatch(r"[\u3400-\u9fff]+", term):
        return term in text
    return f" {term} " in f" {text} "


# ----- exact keys: every tool first for each of its names -----


KEYS = {
    "id": lambda s: s.id,
    "legacy id": lambda s: s.internal_service_id,
    "tool name": lambda s: s.discovery.tool_name,
    "action": lambda s: s.upstream.action,
    "nameZh": lambda s: s.name_zh,
    "name": lambda s: s.name,
}


@pytest.mark.parametrize("key", list(KEYS))
def test_every_tool_is_first_for_its_own_key(index: SearchIndex, services: tuple[Service, ...], key: str) -> None:
    wrong = {service.id: first(index, KEYS[key](service)) for service in services}
    assert {sid: got for sid, got in wrong.items() if got != sid} == {}


@pytest.mark.parametrize(
    "query", ["DetectFace", "detect face", "detect-face", "detect_face", "DETECTFACE", " Detect Face "]
)
def test_action_name_matches_with_any_case_and_separators(index: SearchIndex, query: str) -> None:
    result = index.search(query)
    assert ids(result)[0] == "face-detection"
    assert result.hits[0].score >= 1000
    assert result.hits[0].terms[0] == "detect face"


def test_every_tool_is_first_for_its_action_split_into_words(index: SearchIndex, services: tuple[Service, ...]) -> None:
    wrong = {s.id: first(index, normalize(s.upstream.action)) for s in services}
    assert {sid: got for sid, got in wrong.items() if got != sid} == {}


# ----- field weights -----


def _variant(service: Service, sid: str, **changes: object) -> Service:
    blank: dict[str, object] = {"keywords": [], "use_cases": [], "description": "", "description_zh": "",
                                "description_for_model": "", "tags": [], "name_zh": "样例"}  # fmt: skip
    discovery = msgspec.structs.replace(service.discovery, tool_name=sid.replace("-", "_"), aliases=[])
    return msgspec.structs.replace(service, id=sid, internal_service_id=f"legacy-{sid}", discovery=discovery,
                                   **{**blank, **changes})  # fmt: skip


def test_field_weights_rank_key_over_name_over_keyword_over_description(services: tuple[Service, ...]) -> None:
    base = services[0]
    upstream = msgspec.structs.replace(base.upstream, action="ZebraStripes")
    variants = [
        _variant(base, "d-in-description", name="Alpha", description="Counts zebra herds."),
        _variant(base, "c-in-keywords", name="Beta", keywords=["zebra"]),
        _variant(base, "b-in-name", name="Zebra Gamma"),
        _variant(base, "a-in-action", name="Delta", upstream=upstream),
    ]
    result = SearchIndex(variants).search("zebra")
    assert ids(result) == ["a-in-action", "b-in-name", "c-in-keywords", "d-in-description"]
    assert [hit.score for hit in result.hits] == sorted((hit.score for hit in result.hits), reverse=True)


# ----- bilingual synonyms -----


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("人脸比对", "face-comparison"),
        ("compare faces", "face-comparison"),
        ("face verification", "face-comparison"),
        ("pose", "body-pose-estimation"),
        ("人体姿态", "body-pose-estimation"),
        ("美颜", "face-beauty-retouching"),
        ("人脸搜索", "face-database-search"),
        ("1:N face search", "face-database-search"),
        ("行人", "pedestrian-detection"),
        ("表情", "facial-expression-recognition"),
        ("facial expression", "facial-expression-recognition"),
        ("换脸", "face-fusion"),
        ("人脸融合", "face-fusion"),
        ("face swap", "face-fusion"),
        ("动漫", "anime-style-portrait"),
        ("卡通", "anime-style-portrait"),
        ("cartoon", "anime-style-portrait"),
        ("素描", "sketch-style-portrait"),
        ("名人", "celebrity-recognition"),
        ("deepfake", "deepfake-detection"),
        ("深度伪造", "deepfake-detection"),
        ("打码", "face-blur"),
        ("模糊", "face-blur"),
        ("瘦脸", "face-slimming"),
    ],
)
def test_bilingual_query_puts_the_right_tool_first(index: SearchIndex, query: str, expected: str) -> None:
    assert first(index, query) == expected


@pytest.mark.parametrize("query", ["活体检测", "liveness", "anti-spoofing"])
def test_liveness_queries_find_the_liveness_tools_first(index: SearchIndex, query: str) -> None:
    result = index.search(query)
    assert set(ids(result)[: len(LIVENESS)]) == LIVENESS


def test_face_database_query_finds_the_face_database_tools(index: SearchIndex) -> None:
    result = index.search("人脸库", limit=50)
    assert result.total >= 8
    assert all(sid.startswith("face-database") for sid in ids(result)[:8])


def test_expansion_is_reported_without_the_query_words_and_is_stable(index: SearchIndex) -> None:
    result = index.search("pose")
    assert "人体姿态" in result.expanded_terms
    assert "pose" not in result.expanded_terms
    assert index.search("pose").expanded_terms == result.expanded_terms
    assert "compare faces" in index.search("人脸比对").expanded_terms


# ----- generic words -----


def test_body_pose_estimation_finds_only_the_related_few(index: SearchIndex) -> None:
    result = index.search("body-pose-estimation")
    assert ids(result)[0] == "body-pose-estimation"
    assert result.total <= 5
    assert result.hits[0].terms[0] == "body pose estimation"
    assert "人体姿态" in result.expanded_terms


def test_a_generic_word_alone_does_not_make_a_match_next_to_a_specific_one(index: SearchIndex) -> None:
    result = index.search("face blur", limit=50)
    assert ids(result)[0] == "face-blur"
    assert result.total <= 5
    assert all(hit.terms != ["face"] for hit in result.hits)


def test_a_generic_word_alone_still_lists_what_it_describes(index: SearchIndex, services: tuple[Service, ...]) -> None:
    result = index.search("face", limit=100)
    assert result.total > len(services) // 2


# ----- typos -----


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("face-detecton", "face-detection"),
        ("celebrty", "celebrity-recognition"),
        ("comparision", "face-comparison"),
        ("pedestrain", "pedestrian-detection"),
    ],
)
def test_near_miss_spelling_still_finds_the_tool(index: SearchIndex, query: str, expected: str) -> None:
    assert first(index, query) == expected


def test_liveness_typo_finds_the_liveness_tools(index: SearchIndex) -> None:
    assert ids(index.search("liveness detecion"))[0] in LIVENESS


def test_typo_hits_report_the_corrected_word(index: SearchIndex) -> None:
    assert "celebrity" in index.search("celebrty").hits[0].terms
    assert "comparison" in index.search("comparision").hits[0].terms


def test_typo_scores_below_the_exact_spelling(index: SearchIndex) -> None:
    assert index.search("celebrty").hits[0].score < index.search("celebrity").hits[0].score


def test_short_words_and_nonsense_are_not_fuzzed(index: SearchIndex) -> None:
    assert index.search("xqzvbnm").total == 0


# ----- result shape -----


TERM_QUERIES = ["body-pose-estimation", "人脸比对", "liveness detecion", "compare faces", "美颜", "face", "celebrty",
                "人脸比对(1:1)", "DetectFace", "how many people are in this photo"]  # fmt: skip


@pytest.mark.parametrize("query", TERM_QUERIES)
def test_terms_occur_in_the_hit_and_why_follows_the_seed_format(index: SearchIndex, query: str) -> None:
    for hit in index.search(query, limit=50).hits:
        text = searchable_text(hit.service)
        assert hit.terms
        assert [term for term in hit.terms if not occurs(term, text)] == [], hit.service.id
        assert WHY.match(hit.why), hit.why
        assert f'for "{hit.service.name}"' in hit.why


def test_why_lists_the_terms_and_the_price(index: SearchIndex) -> None:
    hit = index.search("body-pose-estimation").hits[0]
    price = hit.service.pricing
    expected = (f'Matched {", ".join(hit.terms)} for "{hit.service.name}". '
                f"Price is USD {price.amount_cents / 100:.2f} per policy {price.policy_id}.")  # fmt: skip
    assert hit.why == expected


def test_hits_are_ranked_by_score_then_id(index: SearchIndex) -> None:
    for query in ("face", "liveness", "人脸库", "detect"):
        hits = index.search(query, limit=100).hits
        assert [(-h.score, h.service.id) for h in hits] == sorted((-h.score, h.service.id) for h in hits)


def test_empty_query_lists_every_service(index: SearchIndex, services: tuple[Service, ...]) -> None:
    for query in ("", "   "):
        result = index.search(query, limit=100)
        assert result.total == len(services) == len(result.hits)
        assert ids(result) == sorted(service.id for service in services)
        assert all(hit.score == 0 and hit.terms == [] and "Price is USD" in hit.why for hit in result.hits)
        assert result.expanded_terms == []


def test_limit_cuts_hits_but_not_total(index: SearchIndex) -> None:
    full = index.search("face", limit=100)
    short = index.search("face", limit=3)
    assert short.total == full.total > 3
    assert ids(short) == ids(full)[:3]
    assert index.search("face", limit=0).hits == []
    assert len(index.search("").hits) == 10


def test_category_filter_matches_category_or_tag_ignoring_case(
    index: SearchIndex, services: tuple[Service, ...]
) -> None:
    for category in {service.category for service in services}:
        wanted = {s.id for s in services if s.category == category or category in s.tags}
        result = index.search("", category=category.upper(), limit=100)
        assert set(ids(result)) == wanted
        assert result.total == len(wanted)
    assert index.search("", category="no-such-category").total == 0


def test_category_filter_applies_to_a_query(index: SearchIndex, services: tuple[Service, ...]) -> None:
    category = next(s.category for s in services if s.id == "face-liveness-detection")
    result = index.search("liveness", category=category, limit=100)
    assert result.total >= 1
    assert all(hit.service.category == category or category in hit.service.tags for hit in result.hits)
    other = next(s.category for s in services if s.category != category)
    assert "face-liveness-detection" not in ids(index.search("liveness", category=other, limit=100))


def test_results_are_the_same_from_a_fresh_index(index: SearchIndex, services: tuple[Service, ...]) -> None:
    fresh = SearchIndex(services)
    for query in ("body-pose-estimation", "人脸比对", "liveness detecion", "face", "人脸库", "celebrty"):
        assert fresh.search(query, limit=50) == index.search(query, limit=50)


# ----- bounded work: what one query may cost, counted, not timed -----


def _words(count: int, size: int, seed: int = 402) -> str:
    rnd = random.Random(seed)
    return " ".join("".join(rnd.choice(string.ascii_lowercase) for _ in range(size)) for _ in range(count))


COMMON = ("aliyun api facebody send face return photo url image vision computer person id people one result name "
          "database detection score check gallery each management analysis detect data list per db recognition up "
          "user create entity label search before body")  # fmt: skip
HOSTILE = {
    "one 256-letter word": _words(1, 256),
    "2000 characters of words": _words(250, 7)[:2000],
    "256 characters of 16-letter words": _words(16, 16)[:256],
    "256 characters of 5-letter words": _words(43, 5)[:256],
    "a word 51 times": "face " * 51,
    "39 words that are in most services": COMMON,
    "256 Chinese characters": "人脸比对活体检测美颜换脸" * 21 + "人脸比对",
    "256 characters NFKC makes 1024 Chinese ones": "㍿" * 256,
    "256 characters NFKC makes 4608 Arabic ones": "face " + "ﷺ" * 251,
}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the edit distances the search computes and the deletion variants it generates."""
    counts = {"distances": 0, "variants": 0}
    real_distance, real_deletions = edit_distance, search_terms.deletions

    def distance(a: str, b: str, limit: int) -> int:
        counts["distances"] += 1
        return real_distance(a, b, limit)

    def deletions(word: str, depth: int) -> set[str]:
        found = real_deletions(word, depth)
        counts["variants"] += len(found)
        return found

    monkeypatch.setattr(search, "edit_distance", distance)
    monkeypatch.setattr(search, "deletions", deletions)
    return counts


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_query_does_bounded_work(index: SearchIndex, counted: dict[str, int], name: str) -> None:
    work = index.search(HOSTILE[name]).work
    assert counted["distances"] == work.distances <= search.MAX_DISTANCES
    assert counted["variants"] <= work.variants <= search.MAX_TYPO_VARIANTS
    assert work.fuzzy_words <= search.MAX_FUZZY_WORDS
    assert work.words <= search.MAX_QUERY_WORDS
    assert work.postings <= search.MAX_POSTINGS


def test_a_long_word_is_not_fuzz_expanded(index: SearchIndex, counted: dict[str, int]) -> None:
    result = index.search(_words(1, 256))
    assert result.total == 0
    assert (result.work.fuzzy_words, result.work.variants, result.work.distances) == (0, 0, 0)
    assert counted == {"distances": 0, "variants": 0}


def test_typos_are_corrected_up_to_the_length_bound_and_not_beyond(services: tuple[Service, ...]) -> None:
    assert search.FUZZY_MAX_LENGTH == 16
    variants = [_variant(services[0], "sixteen", name="Alpha", keywords=["photolithography"]),
                _variant(services[0], "seventeen", name="Beta", keywords=["photolithographic"])]  # fmt: skip
    index = SearchIndex(variants)
    assert ids(index.search("photolithogrpahy")) == ["sixteen"]
    assert index.search("photolithogrpahy").work.fuzzy_words == 1
    unfuzzed = index.search("photolithogrpahic")
    assert (unfuzzed.total, unfuzzed.work.fuzzy_words, unfuzzed.work.distances) == (0, 0, 0)


def test_only_the_first_few_unknown_words_are_typo_expanded(index: SearchIndex) -> None:
    result = index.search("celebrty pedestrain comparision detecton")
    assert result.work.fuzzy_words == search.MAX_FUZZY_WORDS == 3
    terms = {term for hit in result.hits for term in hit.terms}
    assert {"celebrity", "pedestrian", "comparison"} <= terms
    assert "detection" not in terms


def test_a_spent_distance_budget_stops_typo_expansion(index: SearchIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "MAX_DISTANCES", 1)
    result = index.search("celebrty pedestrain")
    assert result.work.distances == 1
    assert ids(result)[0] == "celebrity-recognition"
    assert "pedestrian-detection" not in ids(result)


def test_a_long_query_is_read_up_to_its_bounds(index: SearchIndex) -> None:
    long = index.search(_words(250, 7)[:2000])
    assert long.work.truncated and long.work.words == search.MAX_QUERY_WORDS
    assert long.query == _words(250, 7)[:2000]
    expanded = index.search("㍿" * 256)
    assert expanded.work.truncated and expanded.work.words == 1
    assert not index.search("I want to compare two faces").work.truncated


def test_chinese_past_the_bound_is_not_read(index: SearchIndex) -> None:
    filler = "的" * search.MAX_CHINESE_CHARS
    assert index.search(filler + "人脸比对").total == 0
    assert first(index, "人脸比对" + filler) == "face-comparison"


def test_a_repeated_word_counts_once(index: SearchIndex) -> None:
    once, thrice = index.search("celebrity", limit=50), index.search("celebrity celebrity celebrity", limit=50)
    assert [(h.service.id, h.score) for h in thrice.hits] == [(h.service.id, h.score) for h in once.hits]
    assert thrice.work.postings == once.work.postings


def test_generic_words_are_left_out_first_when_postings_run_out(index: SearchIndex) -> None:
    result = index.search(COMMON[:200] + " deepfake")
    assert result.work.left_out > 0
    assert result.work.postings <= search.MAX_POSTINGS
    assert ids(result)[0] == "deepfake-detection"


def _reference_distance(a: str, b: str) -> int:
    """Optimal string alignment, the whole table."""
    table = [[i + j if not i * j else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
    return table[len(a)][len(b)]


def test_the_bounded_distance_is_the_full_one_up_to_its_limit() -> None:
    rnd = random.Random(7)
    for _ in range(3000):
        a = "".join(rnd.choice("abc") for _ in range(rnd.randint(0, 8)))
        b = "".join(rnd.choice("abc") for _ in range(rnd.randint(0, 8)))
        limit = rnd.randint(0, 3)
        assert edit_distance(a, b, limit) == min(_reference_distance(a, b), limit + 1), (a, b, limit)
    assert edit_distance("detecton", "detection", 1) == 1
    assert edit_distance("comparision", "comparison", 2) == 1
    assert edit_distance("celebrty", "celebrity", 2) == 1
    assert edit_distance("pedestrain", "pedestrian", 2) == 1


# ----- bounded work over HTTP -----


Client = TestClient[web.Request, web.Application]


async def _search(api: Client, q: str) -> tuple[int, Any]:
    response = await api.get("/api/catalog/search", params={"q": q})
    assert response.content_type == "application/json"
    return response.status, await response.json()


async def test_a_query_past_the_bound_is_a_clear_json_400(api: Client) -> None:
    status, body = await _search(api, "x" * (search.MAX_QUERY_CHARS + 1))
    assert (status, body["code"], body["error"]) == (400, "bad_request", "q must be at most 256 characters")
    status, body = await _search(api, "x" * search.MAX_QUERY_CHARS)
    assert (status, body["total"]) == (200, 0)


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_a_hostile_query_within_the_bound_is_answered(api: Client, name: str) -> None:
    query = HOSTILE[name]
    status, body = await _search(api, query)
    if len(query) > search.MAX_QUERY_CHARS:
        assert (status, body["code"]) == (400, "bad_request")
    else:
        assert status == 200 and body["schemaVersion"] == "server402.catalog.search.v1"
