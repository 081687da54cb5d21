"""Image URLs and webhook targets are judged as their reader will parse them (shared/urls.py, shared/netpolicy.py).

URLs that parsers read differently (a backslash, a percent-encoded host, full-width digits, ideographic full
stops) or IPv6 addresses that carry a private IPv4 one (NAT64, 6to4, IPv4-compatible or -mapped, Teredo) are
refused for images and webhooks, at the API and again when a webhook is delivered; what passes is forwarded
normalised, so the upstream fetcher and the webhook sender connect to the host that was checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import FREE_AND_FAST, Pipeline, build_catalog

from api.apikeys import ApiKeyStore
from api.app import create_app
from api.errors import ValidationFailed
from api.validation import InputValidators
from shared import keys
from shared.config import Settings
from shared.netpolicy import address_allowed, embedded_ipv4s, ip_allowed
from shared.urls import UrlRefused, caller_url
from shared.webhooks import DeliveryStore, WebhookRefused, check_target
from workers.webhooks import GuardedResolver

IMAGE_ALLOWED = "192.0.2.0/24"  # TEST-NET-1: an allowed network that holds none of the URLs below
PRIVATE = "is a private, loopback or link-local address"
WEBHOOK_PRIVATE = "webhook targets on private or loopback addresses are not allowed"
TEREDO_TO_10_0_0_1 = "2001:0:4136:e378:8000:63bf:f5ff:fffe"  # server 65.54.227.120, client ~f5fffffe = 10.0.0.1

# (URL, what the image error ends with): each names a private address, in a form some parser reads so
HOSTILE = [
    ("http://10.0.0.1\\@example.com/x", "it has a backslash before the query, which parsers read differently"),
    ("http://%31%30.0.0.1/x", "its host is percent-encoded"),
    ("http://１２７.０.０.１/x", f"127.0.0.1 {PRIVATE}"),
    ("http://169。254。169。254/x", f"169.254.169.254 {PRIVATE}"),
    ("http://169．254．169．254/x", f"169.254.169.254 {PRIVATE}"),
    ("http://169｡254｡169｡254/x", f"169.254.169.254 {PRIVATE}"),
    ("http://[64:ff9b::a00:1]/x", f"[64:ff9b::a00:1] {PRIVATE}"),
    ("http://[64:ff9b:1::a00:1]/x", f"[64:ff9b:1::a00:1] {PRIVATE}"),
    ("http://[2002:a00:1::]/x", f"[2002:a00:1::] {PRIVATE}"),
    ("http://[::10.0.0.1]/x", f"[::a00:1] {PRIVATE}"),
    ("http://[::ffff:10.0.0.1]/x", f"[::ffff:a00:1] {PRIVATE}"),
    ("http://[::ffff:0:10.0.0.1]/x", f"[::ffff:0:a00:1] {PRIVATE}"),
    (f"http://[{TEREDO_TO_10_0_0_1}]/x", f"[{TEREDO_TO_10_0_0_1}] {PRIVATE}"),
    ("http://user:pass@10.0.0.1/x", "it carries credentials (user:pass@)"),
    ("http://0x0a.1:8080/x", f"10.0.0.1 {PRIVATE}"),
    ("http://10.0.0.1.:8080/x", f"10.0.0.1 {PRIVATE}"),
]


@pytest.fixture(scope="module")
def validators() -> InputValidators:
    return InputValidators(build_catalog(FREE_AND_FAST), allowed_networks=(IMAGE_ALLOWED,))


def image_error(validators: InputValidators, url: str) -> str:
    with pytest.raises(ValidationFailed) as refused:
        validators.validate("face-detection", {"ImageURL": url})
    return refused.value.message


# ---------------------------------------------------------------- the parser and the policy, as functions


@pytest.mark.parametrize(("url", "why"), HOSTILE)
def test_a_private_address_in_any_form_is_refused_for_images_and_webhooks(
    validators: InputValidators, url: str, why: str
) -> None:
    error = image_error(validators, url)
    assert error.startswith("ImageURL must be a ") and error.endswith(why), error
    with pytest.raises(WebhookRefused) as refused:
        check_target(url, ())
    message = str(refused.value)
    assert message == WEBHOOK_PRIVATE or message.startswith("webhook must be an http or https URL: "), message


def test_international_names_are_accepted_and_sent_idna_encoded(validators: InputValidators) -> None:
    for given, sent in [
        ("http://bücher.example/x", "http://xn--bcher-kva.example/x"),
        ("https://BÜCHER.example:443/a.jpg", "https://xn--bcher-kva.example/a.jpg"),
        ("http://例子。测试/x", "http://xn--fsqu00a.xn--0zwm56d/x"),
        ("http://straße.de/x", "http://xn--strae-oqa.de/x"),  # UTS 46 nontransitional, as yarl and browsers
    ]:
        assert validators.validate("face-detection", {"ImageURL": given}) == {"ImageURL": sent}
        assert check_target(given, ()) == sent


def test_public_addresses_are_accepted_including_through_nat64_6to4_and_mapped(validators: InputValidators) -> None:
    for url in [
        "https://example.com/a.jpg",
        "http://8.8.8.8/a.jpg",
        "http://[2001:4860:4860::8888]/a.jpg",
        "http://[64:ff9b::808:808]/a.jpg",
        "http://[2002:808:808::1]/a.jpg",
        "http://[::ffff:8.8.8.8]/a.jpg",
        "http://a_b.example.com./a.jpg",
    ]:
        params = validators.validate("face-detection", {"ImageURL": url})
        assert params["ImageURL"] == caller_url(url).url
        assert check_target(url, ()) == caller_url(url).url


def test_urls_are_forwarded_normalised_and_unchanged_when_already_plain() -> None:
    for given, normalised in [
        ("https://example.com/a.jpg?x=1#f", "https://example.com/a.jpg?x=1#f"),
        ("http://127.0.0.1:8080/_sandbox/images/face.jpg", "http://127.0.0.1:8080/_sandbox/images/face.jpg"),
        ("HTTP://Example.COM:80/A.jpg", "http://example.com/A.jpg"),
        ("http://example.com:/a", "http://example.com/a"),
        ("http://2130706433:8080/a", "http://127.0.0.1:8080/a"),
        ("http://0x7f.1/a", "http://127.0.0.1/a"),
        ("http://0177.0.0.1/a", "http://127.0.0.1/a"),
        ("http://１２７。０。０。１/a", "http://127.0.0.1/a"),
        ("http://[::FFFF:127.0.0.1]:8080/a", "http://[::ffff:7f00:1]:8080/a"),
        ("http://ＥＸＡＭＰＬＥ.com/a", "http://example.com/a"),
        ("http://example.com/bücher?q=ü", "http://example.com/b%C3%BCcher?q=%C3%BC"),
        ("http://example.com/a?path=c:\\x", "http://example.com/a?path=c:\\x"),  # after the query: no disagreement
    ]:
        assert caller_url(given).url == normalised, given


def test_forms_parsers_disagree_on_are_refused_with_a_reason() -> None:
    for url, reason in [
        ("http:\\\\10.0.0.1/x", "it has a backslash before the query, which parsers read differently"),
        ("http://example.com\\x", "it has a backslash before the query, which parsers read differently"),
        ("http://example.com/a\\b", "it has a backslash before the query, which parsers read differently"),
        ("http://user@example.com/", "it carries credentials (user:pass@)"),
        ("http://ex%61mple.com/", "its host is percent-encoded"),
        ("http://ex％61mple.com/", "its host is percent-encoded"),  # a full-width % is NFKC's %
        ("http://[fe80::1%25eth0]/", "its IPv6 address is not valid"),
        ("http://[::1/", "its IPv6 address is not valid"),
        ("http://[::１]/", "its IPv6 address is not valid"),
        ("http://example.123/", "its host ends in a number but is not an IPv4 address"),
        ("http://1.2.3.4.5/", "its host ends in a number but is not an IPv4 address"),
        ("http://09.0.0.1/", "its host ends in a number but is not an IPv4 address"),
        ("http://a..b/", "its host is not a valid host name or address"),
        ("http://ex!ample.com/", "its host is not a valid host name or address"),
        ("http://example.com：8080/", "its host is not a valid host name or address"),
        ("http://a＠b.example/", "its host is not a valid host name or address"),
        ("http://[::1]x/", "its host is not a valid host name or address"),
        ("http://example.com:0/", "its port is not a number from 1 to 65535"),
        ("http://example.com:65536/", "its port is not a number from 1 to 65535"),
        ("http://example.com:８０/", "its port is not a number from 1 to 65535"),
        ("http://☃_.example/", "its host is not a valid internationalised domain name"),
        ("http://example.com/" + "a" * 2048, "it is longer than 2048 characters"),
    ]:
        with pytest.raises(UrlRefused) as refused:
            caller_url(url)
        assert refused.value.reason == reason, url


def test_what_is_not_an_http_url_at_all_keeps_the_seeds_plain_text(validators: InputValidators) -> None:
    for url in ["not-a-url", "ftp://example.com/a", "http://", "http:example.com", "http:/example.com",
                "http:///example.com", "http://:80/", "https://exa mple.com/a", "http://exa\tmple.com/",
                "http://e\u200bvil.com/", "http://10.0.0.1\u3000/", "javascript:alert(1)"]:  # fmt: skip
        with pytest.raises(UrlRefused) as refused:
            caller_url(url)
        assert refused.value.reason == "", url
        assert image_error(validators, url) == "ImageURL must be a valid http or https URL"


def test_embedded_ipv4_addresses_are_found_by_prefix() -> None:
    def carried(address: str) -> list[str]:
        return [str(ip) for ip in embedded_ipv4s(ipaddress.IPv6Address(address))]

    assert carried("::ffff:10.0.0.1") == ["10.0.0.1"]
    assert carried("::10.0.0.1") == ["10.0.0.1"]
    assert carried("::ffff:0:10.0.0.1") == ["10.0.0.1"]
    assert carried("64:ff9b::10.0.0.1") == ["10.0.0.1"]
    assert carried("2002:a00:1::1") == ["10.0.0.1"]
    assert carried(TEREDO_TO_10_0_0_1) == ["65.54.227.120", "10.0.0.1"]
    assert "10.0.0.1" in carried("64:ff9b:1:a00:0:100::")  # local-use NAT64, /48 layout (bits 64-71 skipped)
    assert "10.0.0.1" in carried("64:ff9b:1::a00:1")  # ... and /96 layout
    assert carried("2001:4860:4860::8888") == []


def test_the_operators_allowed_networks_still_allow_what_they_list(validators: InputValidators) -> None:
    nat64_of_test_net = "http://[64:ff9b::c000:201]/a.jpg"  # 192.0.2.1, in this module's allowed network
    assert validators.validate("face-detection", {"ImageURL": nat64_of_test_net})["ImageURL"] == nat64_of_test_net
    assert check_target("http://１２７.０.０.１/x", ("127.0.0.0/8",)) == "http://127.0.0.1/x"
    assert check_target("http://[64:ff9b::a00:1]/x", ("64:ff9b::/96",)) == "http://[64:ff9b::a00:1]/x"
    assert check_target("http://[64:ff9b::a00:1]/x", ("10.0.0.0/8",)) == "http://[64:ff9b::a00:1]/x"
    assert ip_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), ("127.0.0.0/8",))
    assert not ip_allowed(ipaddress.ip_address("2002:a00:1::"), ("127.0.0.0/8",))


async def test_resolved_nat64_and_6to4_addresses_are_refused_by_the_senders_resolver() -> None:
    """getaddrinfo answers an address with itself: what a name resolving to it would give the resolver."""
    for resolved in ("64:ff9b::a00:1", "2002:a00:1::", "::ffff:10.0.0.1", TEREDO_TO_10_0_0_1, "::1"):
        assert not address_allowed(resolved, ())
        with pytest.raises(OSError, match="private or loopback"):
            await GuardedResolver(()).resolve(resolved, 80, socket.AF_UNSPEC)
    [public] = await GuardedResolver(()).resolve("64:ff9b::808:808", 80, socket.AF_UNSPEC)
    assert public["host"] == "64:ff9b::808:808"
    assert address_allowed("2002:808:808::1", ()) and address_allowed("fe80::1%eth0", ("fe80::/10",))


# ---------------------------------------------------------------- through the real API and worker


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    return {"SERVER402_IMAGE_ALLOWED_NETWORKS": IMAGE_ALLOWED}  # webhooks: none allowed (the default)


async def stored_nothing(pipeline: Pipeline) -> None:
    stored = [key for pattern in ("job", "batch", "wh") async for key in pipeline.redis.scan_iter(f"s402:{pattern}*")]
    assert stored == []
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == 0


async def test_the_api_refuses_each_private_form_for_images_and_webhooks_and_stores_nothing(
    pipeline: Pipeline,
) -> None:
    _, key = await ApiKeyStore(pipeline.redis).create("url policy", None, rate=1000, burst=1000)
    for url, why in HOSTILE:
        status, body, _ = await pipeline.call("face-detection", {"ImageURL": url})
        assert (status, body["code"]) == (400, "validation_failed"), url
        assert body["error"].startswith("ImageURL must be a ") and body["error"].endswith(why), body
        response = await pipeline.api.post(
            "/api/tools/face-detection",
            params={"webhook": url},
            json={"ImageURL": "https://example.com/a.jpg"},
            headers={"X-API-Key": key},
        )
        error = (await response.json())["error"]
        assert response.status == 400 and (error == WEBHOOK_PRIVATE or error.startswith("webhook must be an")), url
    await stored_nothing(pipeline)


async def test_the_sandbox_image_still_runs_and_the_upstream_gets_the_url_normalised(pipeline: Pipeline) -> None:
    default = Settings.from_env({"REDIS_URL": pipeline.settings.redis_url})  # sandbox mode: loopback images allowed
    image = pipeline.sandbox.image("face.jpg")
    assert image.startswith("http://127.0.0.1:")
    async with TestClient(TestServer(create_app(default, pipeline.catalog))) as api:
        for url in (image, image.replace("127.0.0.1", "2130706433"), image.replace("127.0.0.1", "１２７。０。０。１")):
            response = await api.post("/api/tools/face-detection", json={"ImageURL": url})
            assert response.status == 200, await response.text()
    # the sandbox downloads only URLs whose host is a plain loopback IP (yarl + ipaddress): it got 127.0.0.1
    assert (await pipeline.sandbox.stats())["fetches"] == 3


async def test_an_accepted_webhook_is_stored_normalised(pipeline: Pipeline) -> None:
    loopback_hooks = Settings.from_env(
        {"REDIS_URL": pipeline.settings.redis_url, "SERVER402_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    )
    _, key = await ApiKeyStore(pipeline.redis).create("url policy", None, rate=1000, burst=1000)
    async with TestClient(TestServer(create_app(loopback_hooks, pipeline.catalog))) as api:
        response = await api.post(
            "/api/tools/face-detection",
            params={"webhook": "HTTP://0x7f.1:9/hook", "webhookEvents": "job.started"},
            json={"ImageURL": "https://example.com/a.jpg"},
            headers={"X-API-Key": key, "Prefer": "respond-async"},
        )
        assert response.status == 202, await response.text()
        job_id = (await response.json())["jobId"]
    assert await pipeline.redis.hget(keys.job_key(job_id), "webhook") == b"http://127.0.0.1:9/hook"


async def test_a_stored_webhook_to_a_nat64_or_6to4_address_is_refused_at_delivery(pipeline: Pipeline) -> None:
    """Deliveries made before this check (or under a wider policy) are judged again when sent: refused, never
    connected to, not retried."""
    deliveries = DeliveryStore(pipeline.redis)
    targets = {
        "msg_nat64": "http://[64:ff9b::a00:1]/hook",
        "msg_6to4": "http://[2002:a00:1::]:8080/hook",
        "msg_compatible": "http://[::10.0.0.1]/hook",
        "msg_teredo": f"http://[{TEREDO_TO_10_0_0_1}]/hook",
    }
    now = int(time.time() * 1000)
    for delivery_id, url in targets.items():
        fields: dict[str, Any] = {"id": delivery_id, "url": url, "owner": "o", "event": "job.succeeded",
                                  "subject": "job_gone", "createdAt": now, "status": "pending"}  # fmt: skip
        await pipeline.redis.hset(keys.webhook_key(delivery_id), mapping=fields)
        await pipeline.redis.pexpire(keys.webhook_key(delivery_id), 60_000)
        await pipeline.redis.zadd(keys.WEBHOOKS_DUE, {delivery_id: now})
    for delivery_id in targets:
        for _ in range(200):
            delivery = await deliveries.get(delivery_id)
            if delivery is not None and delivery.status != "pending":
                break
            await asyncio.sleep(0.05)
        assert delivery is not None and (delivery.status, delivery.attempts) == ("failed", 1), delivery
        log = await pipeline.redis.lrange(keys.webhook_key(delivery_id) + ":log", 0, -1)
        assert b"refused: webhook targets on private or loopback addresses" in log[0], log
