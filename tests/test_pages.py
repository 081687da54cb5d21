"""The web pages: catalog search, a service's page, the status dashboard.

HTTP-level tests check status codes, content types, the Content-Security-Policy, caching of static files and
escaping. Browser tests drive Debian's Chromium (`/usr/bin/chromium`) with Playwright against the real app on a
loopback port: one browser for the module, a fresh context per test, and every test fails on a console error,
an uncaught page error or a request to a host that is not loopback.

`/api/status` is another module's endpoint. When the app has none yet, the browser tests add a test-only route
answering its documented contract with fixed data; once the real one exists they use it (the assertions hold
for either).
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Request, async_playwright

from api.app import create_app
from api.web.assets import STATIC_DIR
from api.web.templating import Markup, escape, html, render
from shared.catalog import Catalog, load_specs
from shared.config import Settings
from shared.operator import parse_operator_terms

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "about"}
PAGES = ["/", "/status", "/services/face-comparison"]
EVIL = '<script>alert("x")</script>'
browser_test = pytest.mark.asyncio(loop_scope="module")
Client = TestClient[web.Request, web.Application]


# ---------------------------------------------------------------- HTTP level


@pytest.mark.parametrize("path", PAGES)
async def test_pages_are_utf8_html_with_a_strict_content_security_policy(api: Client, path: str) -> None:
    response = await api.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    policy = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", PAGES)
async def test_pages_load_only_same_origin_files_and_nothing_inline(api: Client, path: str) -> None:
    page = PageParts.of(await (await api.get(path)).text())
    assert page.links, "a page links its stylesheet, icon and scripts"
    for link in page.links:
        assert link.startswith(("/", "#", "?")) and not link.startswith("//"), link
    assert page.inline_scripts == 0
    assert page.inline_styles == 0
    assert page.inline_handlers == []


async def test_static_files_have_their_content_type_and_cache_headers(api: Client) -> None:
    page = PageParts.of(await (await api.get("/")).text())
    expected = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
    statics = [link for link in page.links if link.startswith("/static/")]
    assert {Path(urlsplit(link).path).suffix for link in statics} == set(expected)
    for link in statics:
        response = await api.get(link)
        assert response.status == 200
        assert response.content_type == expected[Path(urlsplit(link).path).suffix]
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        etag = response.headers["ETag"]
        again = await api.get(link, headers={"If-None-Match": etag})
        assert again.status == 304 and await again.read() == b""
    unversioned = await api.get("/static/site.css")
    assert unversioned.status == 200 and unversioned.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/static/nope.css", "/static/..%2Froutes%2Fpages.py", "/static/.%2E%2F__init__.py"])
async def test_only_files_of_the_static_folder_are_served(api: Client, path: str) -> None:
    response = await api.get(path)
    assert response.status == 404


@pytest.mark.parametrize("key", ["face-comparison", "aliyun-facebody-compare-face", "face_comparison"])
async def test_a_service_page_resolves_id_legacy_id_and_tool_name(api: Client, key: str) -> None:
    response = await api.get(f"/services/{key}")
    assert response.status == 200
    text = await response.text()
    assert "人脸比对" in text and "face_comparison" in text and "/api/tools/face-comparison" in text


async def test_the_curl_example_is_a_valid_command_with_the_example_request(api: Client, catalog: Catalog) -> None:
    text = await (await api.get("/services/face-comparison")).text()
    argv = shlex.split(PageParts.of(text).texts["curl-example"])
    service = catalog.resolve("face-comparison")
    assert service is not None
    assert argv[:4] == ["curl", "-s", "-X", "POST"]
    assert argv[4].endswith("/api/tools/face-comparison")
    assert "X-Payment-Token: $SERVER402_TOKEN" in argv
    assert msgspec.json.decode(argv[argv.index("-d") + 1]) == service.example_request


async def test_the_mcp_example_is_a_tools_call_of_the_tool_name(api: Client, catalog: Catalog) -> None:
    text = await (await api.get("/services/face-detection")).text()
    body = msgspec.json.decode(PageParts.of(text).texts["mcp-example"])
    service = catalog.resolve("face-detection")
    assert service is not None
    assert body == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "face_detection", "arguments": service.example_request},
    }


async def test_an_unknown_service_is_an_html_404_that_escapes_the_name(api: Client) -> None:
    response = await api.get("/services/" + EVIL.replace("/", "%2F"))
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "Content-Security-Policy" in response.headers
    text = await response.text()
    assert "Service not found" in text
    assert EVIL not in text and "&lt;script&gt;" in text


async def test_catalog_text_and_query_parameters_are_escaped(aiohttp_client: Any, settings: Settings) -> None:
    client: Client = await aiohttp_client(create_app(settings, evil_catalog()))
    service_page = await (await client.get("/services/face-comparison")).text()
    assert EVIL not in service_page and "<img src=x" not in service_page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in service_page
    home = await (await client.get("/", params={"q": '"><script>x</script>', "category": "'><b>"})).text()
    assert "<script>x" not in home and "<b>" not in home
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in home


def test_the_template_function_escapes_everything_but_markup() -> None:
    assert escape(EVIL) == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert escape("it's") == "it&#x27;s"
    assert html("<b title='{}'>{}</b>", "a'b", Markup("<i>ok</i>")) == "<b title='a&#x27;b'><i>ok</i></b>"
    with pytest.raises(KeyError, match="missing"):
        render("not_found", key="x")


def test_page_scripts_never_write_html_strings() -> None:
    for script in STATIC_DIR.glob("*.js"):
        source = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, (script.name, sink)


# ---------------------------------------------------------------- in a real browser


@browser_test
async def test_searching_in_chinese_lists_face_comparison_first(site: str, page: Page, screenshot_dir: Path) -> None:
    await page.goto(site + "/")
    await page.wait_for_selector("#results .card")
    await page.fill("#q", "人脸比对")
    await page.locator("#search-summary", has_text="“人脸比对”").wait_for()
    first = page.locator("#results .card").first
    assert await first.get_attribute("data-service-id") == "face-comparison"
    assert await first.locator(".card-name-zh").text_content() == "人脸比对(1:1)"
    assert await first.locator(".card-price").text_content() == "$0.20 / call"
    assert await first.locator(".card-health").text_content()
    assert "q=%E4%BA%BA" in page.url
    await page.screenshot(path=str(screenshot_dir / "catalog.png"), full_page=False)
    await page.fill("#q", "face compare")
    await page.locator("#search-summary", has_text="“face compare”").wait_for()
    assert await page.locator("#results .card").first.get_attribute("data-service-id") == "face-comparison"
    await first.locator(".card-link").click()
    await page.wait_for_url("**/services/face-comparison")


@browser_test
async def test_a_service_page_copies_its_curl_example(site: str, page: Page, screenshot_dir: Path) -> None:
    await page.goto(site + "/services/face_comparison")
    curl = await page.locator("#curl-example").text_content()
    assert curl is not None and "/api/tools/face-comparison" in curl
    button = page.locator("button[data-copy='curl-example']")
    await button.click()
    await page.locator("button[data-copy='curl-example'].copied", has_text="Copied").wait_for()
    assert await page.evaluate("navigator.clipboard.readText()") == curl
    await page.wait_for_selector("#quality dt")
    assert await page.locator("#quality dt").count() >= 8
    assert "As of" in (await page.locator("#quality-status").text_content() or "")
    await page.screenshot(path=str(screenshot_dir / "service.png"), full_page=True)


@browser_test
@pytest.mark.parametrize("source", ["app", "fixed"])
async def test_the_status_page_draws_charts_and_refreshes(
    site: str, page: Page, catalog: Catalog, screenshot_dir: Path, source: str
) -> None:
    """`app`: whatever the app's /api/status answers (the real endpoint, or the test-only one while there is
    none); `fixed`: the browser is handed fixed figures, so bars, dots and tiles have known values."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if urlsplit(r.url).path == "/api/status" else None)
    if source == "fixed":
        body = msgspec.json.encode(fixed_status(catalog)).decode()
        await page.route("**/api/status", lambda route: route.fulfill(content_type="application/json", body=body))
    await page.clock.install()
    await page.goto(site + "/status")
    await page.wait_for_selector("#status-root[data-state='ready']")
    await page.clock.run_for(5_000)
    assert len(requests) == 1, "no refresh before its time"
    for chart in ("#chart-success svg", "#chart-latency svg"):
        box = await page.locator(chart).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 60, chart
        assert await page.locator(chart + " rect").count() == len(catalog)
    assert await page.locator("#status-rows tr").count() == len(catalog)
    assert await page.locator("#status-rows svg.sparkline").count() == len(catalog)
    if source == "fixed":
        await _check_fixed_figures(page, catalog)
    shot = screenshot_dir / f"status-{source}.png"
    await page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "the screenshot looks blank"
    async with page.expect_request(lambda request: urlsplit(request.url).path == "/api/status"):
        await page.clock.run_for(10_000)


async def _check_fixed_figures(page: Page, catalog: Catalog) -> None:
    heights = {await bar.get_attribute("height") for bar in await page.locator("#chart-success svg rect").all()}
    assert len(heights) > 3, "bars of different success rates have different heights"
    assert await page.locator("#chart-success svg rect.bar-unhealthy").count() > 0
    assert await page.locator("#chart-latency svg rect.bar-empty").count() == 0
    assert await page.locator("#status-rows polyline.spark-line").count() > len(catalog) // 2
    assert await page.locator("#status-rows circle.dot-unhealthy").count() > 0
    assert await page.locator("#tile-invocation").text_content() == "1 alive"
    face = page.locator("#status-rows tr[data-service-id='face-comparison']")
    assert await face.locator(".badge").text_content() in {"healthy", "degraded", "unhealthy", "unknown"}


@browser_test
async def test_the_status_page_says_when_status_is_unavailable(site: str, page: Page, watch: Watch) -> None:
    watch.allowed_console.append("status of 404")

    async def missing(route: Any) -> None:
        await route.fulfill(status=404, content_type="application/json", body='{"error": "no such route"}')

    await page.route("**/api/status", missing)
    await page.goto(site + "/status")
    await page.wait_for_selector("#status-root[data-state='unavailable']")
    message = await page.locator("#status-message").text_content()
    assert message is not None and "Status unavailable (HTTP 404)" in message
    assert await page.locator("#status-body").is_hidden()


# ---------------------------------------------------------------- fixtures and helpers


@dataclass
class Watch:
    """What a page did that it should not: console errors, uncaught errors, requests leaving the machine."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    allowed_console: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console_errors.append(f"{message.type}: {message.text}")

    def on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in LOCAL_SCHEMES and parts.hostname not in LOOPBACK_HOSTS:
            self.foreign_requests.append(request.url)

    def check(self) -> None:
        unexpected = [e for e in self.console_errors if not any(a in e for a in self.allowed_console)]
        assert unexpected == [], unexpected
        assert self.page_errors == []
        assert self.foreign_requests == []


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(settings: Settings, catalog: Catalog) -> AsyncIterator[str]:
    app = create_app(settings, catalog)
    if not any(resource.canonical == "/api/status" for resource in app.router.resources()):
        app.router.add_get("/api/status", fixed_status_route(catalog))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install Debian's package with "
            "`apt-get update && apt-get install -y chromium` (the Makefile's `browser` target does it)",
            pytrace=False,
        )
    return CHROMIUM


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # Playwright gives every launch a new empty profile (--user-data-dir) of its own.
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser, site: str) -> AsyncIterator[BrowserContext]:
    created = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    await created.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext, watch: Watch) -> AsyncIterator[Page]:
    opened = await context.new_page()
    opened.on("console", watch.on_console)
    opened.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    opened.on("request", watch.on_request)
    yield opened
    watch.check()


def fixed_status(catalog: Catalog) -> dict[str, Any]:
    """A `/api/status` answer of the documented contract with realistic, fixed figures."""
    healths = ["healthy"] * 7 + ["degraded", "healthy", "unhealthy", "unknown"]
    services = []
    for index, service in enumerate(catalog):
        health = healths[index % len(healths)]
        calls = (index * 37) % 400
        errors = 0 if health == "healthy" and index % 3 else calls // (4 if health == "unhealthy" else 20)
        history = [
            {
                "at": f"2026-11-01T12:{minute:02d}:00Z",
                "status": health if minute % 9 == 0 else "healthy",
                "latencyMs": 80 + (index * 13 + minute * 29) % 220 + (400 if health == "degraded" else 0),
            }
            for minute in range(0, 60, 3)
        ]
        services.append(
            {
                "id": service.id,
                "name": service.name,
                "category": service.category,
                "healthStatus": health,
                "healthCheckedAt": "2026-11-01T12:59:30Z",
                "healthLatencyMs": history[-1]["latencyMs"],
                "successRate": None if health == "unknown" else round(1 - errors / max(calls, 1), 4),
                "callCount": calls,
                "executionCount": calls - calls // 10,
                "successCount": calls - calls // 10 - errors,
                "errorCount": errors,
                "paymentRequireds": calls // 10,
                "lastCallAt": "2026-11-01T12:58:00Z" if calls else None,
                "latencyMs": None if health == "unknown" else 150 + (index * 53) % 900,
                "qualityScore": {"healthy": 4.6, "degraded": 3.1, "unhealthy": 0.8, "unknown": 0.0}[health],
                "history": [] if health == "unknown" else history,
            }
        )
    worker = {"alive": True, "lastSeenAt": "2026-11-01T12:59:58Z", "count": 1}
    return {
        "generatedAt": "2026-11-01T13:00:00Z",
        "workers": {"invocation": worker, "health": worker},
        "services": services,
    }


def fixed_status_route(catalog: Catalog) -> Any:
    """A test-only `/api/status` handler, for an app that has none yet."""
    body = fixed_status(catalog)

    async def status(request: web.Request) -> web.Response:
        return web.json_response(body)

    return status


def evil_catalog() -> Catalog:
    """The real catalog, with HTML in one service's texts (as a careless curation could put there)."""
    specs = [
        msgspec.structs.replace(spec, name=EVIL, name_zh=EVIL, description="<img src=x onerror=alert(1)>")
        if spec.id == "face-comparison"
        else spec
        for spec in load_specs()
    ]
    return Catalog.build(specs, parse_operator_terms({}, {spec.id for spec in specs}))


class PageParts(HTMLParser):
    """What a page loads, what it has inline, and the text of its `<pre id=...>` blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self.inline_handlers: list[str] = []
        self.texts: dict[str, str] = {}
        self._pre: str | None = None

    @classmethod
    def of(cls, text: str) -> PageParts:
        parser = cls()
        parser.feed(text)
        parser.close()
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.links += [value for name, value in attrs if name in ("src", "href") and value is not None]
        self.inline_scripts += tag == "script" and "src" not in values
        self.inline_styles += tag == "style" or "style" in values
        self.inline_handlers += [name for name in values if name.startswith("on")]
        element_id = values.get("id")
        if tag == "pre" and element_id:
            self._pre = element_id
            self.texts[element_id] = ""

    def handle_data(self, data: str) -> None:
        if self._pre is not None:
            self.texts[self._pre] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._pre = None
