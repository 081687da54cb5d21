"""Face databases, templates and verification tokens are real state, kept per access key."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_facebody20191230 import models as fb
from alibabacloud_tea_openapi.exceptions import ClientException

from sandbox.testing import RunningSandbox


async def code_of(call: Any) -> str:
    with pytest.raises(ClientException) as caught:
        await call
    assert caught.value.status_code == 400
    return str(caught.value.code)


@pytest.mark.asyncio
async def test_face_db_flow_and_isolation(sandbox: RunningSandbox, facebody: Any, runtime: Any, keys: Any) -> None:
    client, rt = facebody(), runtime()
    face, body = sandbox.image("face.jpg"), sandbox.image("body.jpg")
    await client.create_face_db_with_options_async(fb.CreateFaceDbRequest(name="staff"), rt)
    dbs = (await client.list_face_dbs_with_options_async(fb.ListFaceDbsRequest(), rt)).body.data.db_list
    assert [db.name for db in dbs] == ["staff"]
    await client.add_face_entity_with_options_async(fb.AddFaceEntityRequest(db_name="staff", entity_id="alice"), rt)
    await client.add_face_entity_with_options_async(fb.AddFaceEntityRequest(db_name="staff", entity_id="bob"), rt)
    alice = (
        await client.add_face_with_options_async(
            fb.AddFaceRequest(db_name="staff", entity_id="alice", image_url=face, extra_data="Alice"), rt
        )
    ).body.data
    await client.add_face_with_options_async(fb.AddFaceRequest(db_name="staff", entity_id="bob", image_url=body), rt)
    found = (
        await client.search_face_with_options_async(fb.SearchFaceRequest(db_name="staff", image_url=face, limit=2), rt)
    ).body.data.match_list
    best = found[0].face_items[0]
    assert (best.face_id, best.entity_id, best.extra_data) == (alice.face_id, "alice", "Alice")
    assert best.score > 0.9 > found[0].face_items[1].score

    other = facebody(keys.other_key_id, keys.other_secret)
    assert (await other.list_face_dbs_with_options_async(fb.ListFaceDbsRequest(), rt)).body.data.db_list == []
    assert (
        await code_of(
            other.search_face_with_options_async(fb.SearchFaceRequest(db_name="staff", image_url=face, limit=2), rt)
        )
        == "InvalidDB.Status"
    )


@pytest.mark.asyncio
async def test_missing_and_duplicate_things(facebody: Any, runtime: Any) -> None:
    client, rt = facebody(), runtime()
    assert (
        await code_of(
            client.add_face_entity_with_options_async(fb.AddFaceEntityRequest(db_name="nope", entity_id="e"), rt)
        )
        == "InvalidDB.Status"
    )
    await client.create_face_db_with_options_async(fb.CreateFaceDbRequest(name="db1"), rt)
    assert (
        await code_of(client.create_face_db_with_options_async(fb.CreateFaceDbRequest(name="db1"), rt))
        == "InvalidDB.Status"
    )
    assert (
        await code_of(client.create_face_db_with_options_async(fb.CreateFaceDbRequest(name="bad name!"), rt))
        == "InvalidParameter"
    )
    assert (
        await code_of(
            client.get_face_entity_with_options_async(fb.GetFaceEntityRequest(db_name="db1", entity_id="ghost"), rt)
        )
        == "InvalidEntity.NotFound"
    )
    assert (
        await code_of(client.delete_face_with_options_async(fb.DeleteFaceRequest(db_name="db1", face_id="404"), rt))
        == "InvalidFace.NotFound"
    )


@pytest.mark.asyncio
async def test_list_entities_pages_with_a_token(facebody: Any, runtime: Any) -> None:
    client, rt = facebody(), runtime()
    await client.create_face_db_with_options_async(fb.CreateFaceDbRequest(name="db"), rt)
    for entity_id, labels in (("a1", "x"), ("a2", "x,y"), ("b1", "y")):
        await client.add_face_entity_with_options_async(
            fb.AddFaceEntityRequest(db_name="db", entity_id=entity_id, labels=labels), rt
        )
    first = (
        await client.list_face_entities_with_options_async(fb.ListFaceEntitiesRequest(db_name="db", limit=2), rt)
    ).body.data
    assert (first.total_count, [e.entity_id for e in first.entities]) == (3, ["a1", "a2"])
    rest = (
        await client.list_face_entities_with_options_async(
            fb.ListFaceEntitiesRequest(db_name="db", limit=2, token=first.token), rt
        )
    ).body.data
    assert ([e.entity_id for e in rest.entities], rest.token) == (["b1"], "")
    filtered = (
        await client.list_face_entities_with_options_async(
            fb.ListFaceEntitiesRequest(db_name="db", entity_id_prefix="a", labels="y"), rt
        )
    ).body.data
    assert [e.entity_id for e in filtered.entities] == ["a2"]


@pytest.mark.asyncio
async def test_templates_and_merge(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    client, rt = facebody(), runtime()
    added = (
        await client.add_face_image_template_with_options_async(
            fb.AddFaceImageTemplateRequest(image_url=sandbox.image("face.jpg")), rt
        )
    ).body.data
    listed = (
        await client.query_face_image_template_with_options_async(fb.QueryFaceImageTemplateRequest(), rt)
    ).body.data
    assert (listed.total, listed.elements[0].template_id) == (1, added.template_id)
    merged = (
        await client.merge_image_face_with_options_async(
            fb.MergeImageFaceRequest(template_id=added.template_id, image_url=sandbox.image("face.png")), rt
        )
    ).body.data
    assert "/_sandbox/results/MergeImageFace-640x480-" in merged.image_url
    await client.delete_face_image_template_with_options_async(
        fb.DeleteFaceImageTemplateRequest(template_id=added.template_id), rt
    )
    assert (
        await code_of(
            client.merge_image_face_with_options_async(
                fb.MergeImageFaceRequest(template_id=added.template_id, image_url=sandbox.image("face.png")), rt
            )
        )
        == "InvalidTemplate.NotFound"
    )


@pytest.mark.asyncio
async def test_verification_tokens(facebody: Any, runtime: Any, keys: Any) -> None:
    client, rt = facebody(), runtime()
    token = (
        await client.gen_real_person_verification_token_with_options_async(
            fb.GenRealPersonVerificationTokenRequest(
                certificate_name="fail-case", certificate_number="11010119900101123X", meta_info="{}"
            ),
            rt,
        )
    ).body.data.verification_token
    result = await client.get_real_person_verification_result_with_options_async(
        fb.GetRealPersonVerificationResultRequest(verification_token=token), rt
    )
    assert result.body.data.passed is False
    other = facebody(keys.other_key_id, keys.other_secret)
    assert (
        await code_of(
            other.get_real_person_verification_result_with_options_async(
                fb.GetRealPersonVerificationResultRequest(verification_token=token), rt
            )
        )
        == "InvalidToken.NotFound"
    )


@pytest.mark.asyncio
async def test_reset_forgets_state(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    client, rt = facebody(), runtime()
    await client.create_face_db_with_options_async(fb.CreateFaceDbRequest(name="temp"), rt)
    await sandbox.reset()
    assert (await client.list_face_dbs_with_options_async(fb.ListFaceDbsRequest(), rt)).body.data.db_list == []
    assert (await sandbox.stats())["totals"]["calls"] == 1
