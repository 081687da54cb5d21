"""Tenants share one Alibaba access key but never see each other's face databases or templates.

Real parts only: the sandbox upstream in-process, the real SDK through `workers.upstream.Upstream`, real Redis.
`Gateway.call` does what the worker does around an upstream call: scope_request -> Upstream.call -> scope_result.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from sandbox.config import KeyPair, SandboxConfig
from sandbox.testing import RunningSandbox, run_sandbox
from scripts.embedded_redis import EmbeddedRedis
from shared.catalog import load_specs
from shared.config import Settings
from workers.tenancy import (
    NAME_MAX,
    Namespaces,
    TenantError,
    owner_key,
    scope_error_message,
    scope_request,
    scope_result,
    tenant_templates_key,
)
from workers.upstream import Upstream, UpstreamError

KEY_ID = "tenancy-key-id"
SECRET = "tenancy-key-secret"
SPECS = {spec.action: spec for spec in load_specs()}


@dataclass
class Gateway:
    upstream: Upstream
    redis: Redis
    sandbox: RunningSandbox
    namespaces: Namespaces

    async def call(self, tenant: str, action: str, **params: Any) -> dict[str, Any]:
        prefix = await self.namespaces.prefix(tenant)
        scoped = await scope_request(self.redis, action, params, tenant=tenant, prefix=prefix)
        try:
            answer = await self.upstream.call(SPECS[action], scoped, timeout_s=10)
        except UpstreamError as exc:  # what the worker records on the job: the message in the caller's terms
            message = scope_error_message(exc.message, prefix)
            raise UpstreamError(exc.code, message, status=exc.status, kind=exc.kind) from None
        return await scope_result(self.redis, action, params, answer.result, tenant=tenant, prefix=prefix)

    async def raw(self, action: str, **params: Any) -> dict[str, Any]:
        """The upstream as the gateway's one access key sees it, with no tenant scoping."""
        return (await self.upstream.call(SPECS[action], params, timeout_s=10)).result

    async def upstream_calls(self, action: str) -> int:
        return int((await self.sandbox.stats())["actions"].get(action, {}).get("calls", 0))


@pytest.fixture
async def gateway(redis_server: EmbeddedRedis, redis: Redis) -> AsyncIterator[Gateway]:
    config = SandboxConfig(key_pairs=(KeyPair(KEY_ID, SECRET),), qps=1000)
    async with run_sandbox(config) as sandbox:
        settings = Settings.from_env(
            {
                "REDIS_URL": redis_server.url,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
                "SERVER402_FACEBODY_ENDPOINT": sandbox.endpoint,
                "SERVER402_CLOUDAUTH_ENDPOINT": sandbox.endpoint,
            }
        )
        upstream = Upstream(settings.upstream)
        yield Gateway(upstream, redis, sandbox, Namespaces(redis))
        await upstream.close()


@pytest.fixture
def tenants() -> tuple[str, str]:
    """Two fresh tenants (the session's Redis outlives a test): an API-key customer and a payer address."""
    return f"key:{uuid.uuid4().hex[:6]}", f"0x{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"


async def failure(call: Awaitable[Any]) -> tuple[str, str]:
    with pytest.raises((TenantError, UpstreamError)) as caught:
        await call
    return caught.value.code, caught.value.message


async def people_with_alice(gateway: Gateway, tenant: str) -> str:
    """`tenant` gets db "people" with entity "alice" and one face (face.jpg); returns the face id."""
    await gateway.call(tenant, "CreateFaceDb", Name="people")
    await gateway.call(tenant, "AddFaceEntity", DbName="people", EntityId="alice")
    added = await gateway.call(
        tenant, "AddFace", DbName="people", EntityId="alice", ImageUrl=gateway.sandbox.image("face.jpg")
    )
    return str(added["FaceId"])


async def test_two_tenants_own_same_db_name_and_each_lists_only_its_own(
    gateway: Gateway, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    await people_with_alice(gateway, a)
    await gateway.call(b, "CreateFaceDb", Name="people")
    for name in ("staff", "visitors"):
        await gateway.call(a, "CreateFaceDb", Name=name)

    assert await gateway.call(b, "ListFaceDbs") == {"DbList": [{"Name": "people"}]}
    assert await gateway.call(a, "ListFaceDbs") == {"DbList": [{"Name": n} for n in ("people", "staff", "visitors")]}
    assert await gateway.call(a, "ListFaceDbs", Offset=1, Limit=1) == {"DbList": [{"Name": "staff"}]}
    upstream_names = {db["Name"] for db in (await gateway.raw("ListFaceDbs"))["DbList"]}
    prefix_a, prefix_b = await gateway.namespaces.prefix(a), await gateway.namespaces.prefix(b)
    assert {prefix_a + "people", prefix_b + "people"} <= upstream_names
    assert prefix_a != prefix_b

    entities = (await gateway.call(a, "ListFaceEntities", DbName="people"))["Entities"]
    assert [(e["DbName"], e["EntityId"], e["FaceCount"]) for e in entities] == [("people", "alice", 1)]
    assert (await gateway.call(b, "ListFaceEntities", DbName="people"))["Entities"] == []


async def test_other_tenant_cannot_read_search_or_delete_a_db(gateway: Gateway, tenants: tuple[str, str]) -> None:
    a, b = tenants
    face_id = await people_with_alice(gateway, a)
    missing = ("InvalidDB.Status", "The face database people does not exist.")

    assert await failure(gateway.call(b, "GetFaceEntity", DbName="people", EntityId="alice")) == missing
    search = {"ImageUrl": gateway.sandbox.image("face.jpg"), "Limit": 5}
    assert await failure(gateway.call(b, "SearchFace", DbName="people", **search)) == missing
    assert await failure(gateway.call(b, "DeleteFace", DbName="people", FaceId=face_id)) == missing
    assert await failure(gateway.call(b, "DeleteFaceDb", Name="people")) == missing
    a_upstream_name = (
        await gateway.namespaces.prefix(a) + "people"
    )  # knowing A's namespace does not help: B's own prefix goes first
    assert await failure(gateway.call(b, "DeleteFaceDb", Name=a_upstream_name)) == (
        "InvalidDB.Status",
        f"The face database {a_upstream_name} does not exist.",
    )

    await gateway.call(b, "CreateFaceDb", Name="people")
    await gateway.call(b, "AddFaceEntity", DbName="people", EntityId="alice")
    await gateway.call(b, "DeleteFaceEntity", DbName="people", EntityId="alice")
    await gateway.call(b, "DeleteFaceDb", Name="people")

    entity = await gateway.call(a, "GetFaceEntity", DbName="people", EntityId="alice")
    assert (entity["DbName"], entity["EntityId"], entity["Faces"]) == ("people", "alice", [{"FaceId": face_id}])
    assert await gateway.call(a, "ListFaceDbs") == {"DbList": [{"Name": "people"}]}


async def test_search_across_db_names_finds_only_own_faces(gateway: Gateway, tenants: tuple[str, str]) -> None:
    a, b = tenants
    face = gateway.sandbox.image("face.jpg")
    a_face = await people_with_alice(gateway, a)
    await gateway.call(a, "CreateFaceDb", Name="staff")
    await gateway.call(b, "CreateFaceDb", Name="people")
    await gateway.call(b, "AddFaceEntity", DbName="people", EntityId="bob")
    b_face = (await gateway.call(b, "AddFace", DbName="people", EntityId="bob", ImageUrl=face))["FaceId"]

    found_by_b = await gateway.call(b, "SearchFace", DbNames="people", ImageUrl=face, Limit=10)
    items = [(i["DbName"], i["EntityId"], i["FaceId"]) for i in found_by_b["MatchList"][0]["FaceItems"]]
    assert items == [("people", "bob", b_face)]

    found_by_a = await gateway.call(a, "SearchFace", DbNames="people, staff", ImageUrl=face, Limit=10)
    items = [(i["DbName"], i["EntityId"], i["FaceId"]) for i in found_by_a["MatchList"][0]["FaceItems"]]
    assert items == [("people", "alice", a_face)]
    assert found_by_a["MatchList"][0]["FaceItems"][0]["Score"] > 0.9

    a_upstream_name = await gateway.namespaces.prefix(a) + "people"
    across = gateway.call(b, "SearchFace", DbNames=f"people,{a_upstream_name}", ImageUrl=face, Limit=10)
    assert await failure(across) == ("InvalidDB.Status", f"The face database {a_upstream_name} does not exist.")


async def test_templates_are_invisible_and_undeletable_for_other_tenants(
    gateway: Gateway, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    image = gateway.sandbox.image("face.jpg")
    a_first = (await gateway.call(a, "AddFaceImageTemplate", ImageURL=image))["TemplateId"]
    a_second = (await gateway.call(a, "AddFaceImageTemplate", ImageURL=image))["TemplateId"]
    b_only = (await gateway.call(b, "AddFaceImageTemplate", ImageURL=image))["TemplateId"]
    assert await gateway.redis.get(owner_key(a_first)) == a.encode()
    assert await gateway.redis.smembers(tenant_templates_key(a)) == {a_first.encode(), a_second.encode()}

    listed = await gateway.call(a, "QueryFaceImageTemplate")
    assert ([e["TemplateId"] for e in listed["Elements"]], listed["Total"]) == ([a_first, a_second], 2)
    second_page = await gateway.call(a, "QueryFaceImageTemplate", PageNo=2, PageSize=1)
    assert [e["TemplateId"] for e in second_page["Elements"]] == [a_second]
    assert [e["TemplateId"] for e in (await gateway.call(b, "QueryFaceImageTemplate"))["Elements"]] == [b_only]

    unknown = await failure(gateway.raw("QueryFaceImageTemplate", TemplateId="no-such-template"))
    not_found = (unknown[0], unknown[1].replace("no-such-template", a_first))
    calls_before = {
        action: await gateway.upstream_calls(action)
        for action in ("MergeImageFace", "DeleteFaceImageTemplate", "QueryFaceImageTemplate")
    }
    assert await failure(gateway.call(b, "QueryFaceImageTemplate", TemplateId=a_first)) == not_found
    assert await failure(gateway.call(b, "MergeImageFace", TemplateId=a_first, ImageURL=image)) == not_found
    assert await failure(gateway.call(b, "DeleteFaceImageTemplate", TemplateId=a_first)) == not_found
    assert {action: await gateway.upstream_calls(action) for action in calls_before} == calls_before

    merged = await gateway.call(a, "MergeImageFace", TemplateId=a_first, ImageURL=image)
    assert merged["ImageURL"].startswith(gateway.sandbox.url)
    await gateway.call(a, "DeleteFaceImageTemplate", TemplateId=a_first)
    assert await gateway.redis.get(owner_key(a_first)) is None
    assert [e["TemplateId"] for e in (await gateway.call(a, "QueryFaceImageTemplate"))["Elements"]] == [a_second]
    assert await failure(gateway.call(a, "QueryFaceImageTemplate", TemplateId=a_first)) == not_found


async def test_names_too_long_for_the_namespace_are_caller_errors(gateway: Gateway, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    longest, too_long = "n" * NAME_MAX, "n" * (NAME_MAX + 1)
    await gateway.call(a, "CreateFaceDb", Name=longest)
    code, message = await failure(gateway.call(a, "CreateFaceDb", Name=too_long))
    assert code == "InvalidParameter"
    assert message.startswith("Specified parameter Name is not valid:") and f"at most {NAME_MAX}" in message
    search = {"ImageUrl": gateway.sandbox.image("face.jpg"), "Limit": 1}
    code, message = await failure(gateway.call(a, "SearchFace", DbNames=f"{longest},{too_long}", **search))
    assert (code, message.split(":")[0]) == ("InvalidParameter", "Specified parameter DbNames is not valid")
    assert (await failure(gateway.call(a, "GetFaceEntity", DbName="x,y", EntityId="e")))[0] == "InvalidParameter"
    assert await gateway.upstream_calls("CreateFaceDb") == 1
    assert await gateway.upstream_calls("SearchFace") == 0
    assert await gateway.call(a, "ListFaceDbs") == {"DbList": [{"Name": longest}]}


async def test_requests_are_copied_and_stateless_actions_pass_through(redis: Redis) -> None:
    params = {"DbName": "people", "EntityId": "alice"}
    prefix = await Namespaces(redis).prefix("anon")
    scoped = await scope_request(redis, "GetFaceEntity", params, tenant="anon", prefix=prefix)
    assert params == {"DbName": "people", "EntityId": "alice"}
    assert scoped["DbName"] == prefix + "people"
    detect = {"ImageURL": "http://127.0.0.1:9/face.jpg"}
    assert await scope_request(redis, "DetectFace", detect, tenant="anon", prefix=prefix) == detect
    result = {"DbName": prefix + "people", "EntityId": "alice"}
    assert await scope_result(redis, "GetFaceEntity", params, result, tenant="anon", prefix=prefix) == {
        "DbName": "people",
        "EntityId": "alice",
    }
    assert result["DbName"] == prefix + "people"
