"""Every action answers a full SDK response model, deterministically, with geometry inside the image."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from alibabacloud_cloudauth_intl20220809 import models as ca
from alibabacloud_facebody20191230 import models as fb

from sandbox.config import DEFAULT_TOOLS_FILE
from sandbox.testing import RunningSandbox


def snake(action: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in action).lstrip("_")


class Caller:
    """Calls actions with the real SDK, checks each answer is a full model valid against the catalog's
    resultSchema, and remembers which actions it saw."""

    def __init__(self, facebody: Any, cloudauth: Any, runtime: Any, missing_fields: Callable[[Any], list[str]]):
        self.facebody, self.cloudauth, self.runtime, self.missing_fields = facebody, cloudauth, runtime, missing_fields
        entries = json.loads(DEFAULT_TOOLS_FILE.read_text())
        self.schemas = {entry["action"]: entry["resultSchema"] for entry in entries}
        self.seen: list[str] = []

    async def __call__(self, action: str, request: Any) -> Any:
        if action == "FaceLivenessV2":
            call = self.cloudauth.face_liveness_v2with_options_async
        else:
            call = getattr(self.facebody, f"{snake(action)}_with_options_async")
        response = await call(request, self.runtime)
        assert response.status_code == 200
        assert self.missing_fields(response.body) == [], action
        payload = response.body.to_map().get("Result" if action == "FaceLivenessV2" else "Data")
        if payload is not None:
            jsonschema.validate(payload, self.schemas[action])
        self.seen.append(action)
        return response.body


async def run_stateless(call: Caller, sandbox: RunningSandbox) -> None:
    face, body, png = sandbox.image("face.jpg"), sandbox.image("body.jpg"), sandbox.image("face.png")
    for action in (
        "BlurFace",
        "EnhanceFace",
        "RetouchSkin",
        "LiquifyFace",
        "DetectFace",
        "RecognizeFace",
        "RecognizeExpression",
        "DetectCelebrity",
        "ExtractFingerPrint",
    ):
        await call(action, getattr(fb, f"{action}Request")(image_url=face))
    await call("FaceBeauty", fb.FaceBeautyRequest(image_url=face, sharp=0.5, smooth=0.5, white=0.3))
    await call("GenerateHumanAnimeStyle", fb.GenerateHumanAnimeStyleRequest(image_url=png, algo_type="anime"))
    await call("GenerateHumanSketchStyle", fb.GenerateHumanSketchStyleRequest(image_url=face, return_type="head"))
    await call(
        "RecognizePublicFace", fb.RecognizePublicFaceRequest(task=[fb.RecognizePublicFaceRequestTask(image_url=face)])
    )
    await call("DeepfakeFace", fb.DeepfakeFaceRequest(tasks=[fb.DeepfakeFaceRequestTasks(image_url=face)]))
    for action in ("BodyPosture", "DetectBodyCount", "DetectPedestrian", "PedestrianDetectAttribute"):
        await call(action, getattr(fb, f"{action}Request")(image_url=body))
    await call("MonitorExamination", fb.MonitorExaminationRequest(image_url=face, type=1))
    await call(
        "RecognizeAction", fb.RecognizeActionRequest(type=1, urllist=[fb.RecognizeActionRequestURLList(url=body)] * 4)
    )
    await call("CompareFace", fb.CompareFaceRequest(image_urla=face, image_urlb=png))
    await call("CompareFaceWithMask", fb.CompareFaceWithMaskRequest(image_urla=face, image_urlb=png))
    await call("DetectLivingFace", fb.DetectLivingFaceRequest(tasks=[fb.DetectLivingFaceRequestTasks(image_url=face)]))
    await call(
        "DetectInfraredLivingFace",
        fb.DetectInfraredLivingFaceRequest(tasks=[fb.DetectInfraredLivingFaceRequestTasks(image_url=face)]),
    )
    await call("DetectVideoLivingFace", fb.DetectVideoLivingFaceRequest(video_url="https://example.com/v.mp4"))
    await call(
        "FaceLivenessV2",
        ca.FaceLivenessV2Request(
            product_code="FACE_LIVENESS_MIN",
            merchant_biz_id="biz0001",
            merchant_user_id="user0001",
            face_picture_url=face,
            face_quality_check="Y",
        ),
    )


async def run_face_db(call: Caller, sandbox: RunningSandbox) -> None:
    face, png = sandbox.image("face.jpg"), sandbox.image("face.png")
    await call("CreateFaceDb", fb.CreateFaceDbRequest(name="staff"))
    await call("ListFaceDbs", fb.ListFaceDbsRequest(limit=10, offset=0))
    await call("AddFaceEntity", fb.AddFaceEntityRequest(db_name="staff", entity_id="alice", labels="team-a"))
    await call("AddFace", fb.AddFaceRequest(db_name="staff", entity_id="alice", image_url=face, extra_data="a"))
    await call(
        "BatchAddFaces",
        fb.BatchAddFacesRequest(
            db_name="staff",
            entity_id="alice",
            faces=[
                fb.BatchAddFacesRequestFaces(image_url=png, extra_data="b"),
                fb.BatchAddFacesRequestFaces(image_url=sandbox.image("missing.jpg"), extra_data="c"),
            ],
        ),
    )
    await call("UpdateFaceEntity", fb.UpdateFaceEntityRequest(db_name="staff", entity_id="alice", labels="team-b"))
    entity = await call("GetFaceEntity", fb.GetFaceEntityRequest(db_name="staff", entity_id="alice"))
    await call("ListFaceEntities", fb.ListFaceEntitiesRequest(db_name="staff", limit=1))
    await call("SearchFace", fb.SearchFaceRequest(db_name="staff", image_url=face, limit=5))
    await call("DeleteFace", fb.DeleteFaceRequest(db_name="staff", face_id=entity.data.faces[0].face_id))
    await call("DeleteFaceEntity", fb.DeleteFaceEntityRequest(db_name="staff", entity_id="alice"))
    await call("DeleteFaceDb", fb.DeleteFaceDbRequest(name="staff"))


async def run_templates_and_tokens(call: Caller, sandbox: RunningSandbox) -> None:
    face = sandbox.image("face.jpg")
    added = await call("AddFaceImageTemplate", fb.AddFaceImageTemplateRequest(image_url=face))
    template_id = added.data.template_id
    await call("QueryFaceImageTemplate", fb.QueryFaceImageTemplateRequest(template_id=template_id, page_size=10))
    face_id = added.data.face_infos[0].template_face_id
    await call(
        "MergeImageFace",
        fb.MergeImageFaceRequest(
            template_id=template_id,
            merge_infos=[fb.MergeImageFaceRequestMergeInfos(image_url=face, template_face_id=face_id)],
        ),
    )
    await call("DeleteFaceImageTemplate", fb.DeleteFaceImageTemplateRequest(template_id=template_id))
    token = await call(
        "GenRealPersonVerificationToken",
        fb.GenRealPersonVerificationTokenRequest(
            certificate_name="Zhang San", certificate_number="110101199001011234", meta_info='{"zimVer":"3.0.0"}'
        ),
    )
    result = await call(
        "GetRealPersonVerificationResult",
        fb.GetRealPersonVerificationResultRequest(verification_token=token.data.verification_token),
    )
    assert result.data.passed is True


@pytest.mark.asyncio
async def test_every_action_answers_a_full_response_model(
    sandbox: RunningSandbox, facebody: Any, cloudauth: Any, runtime: Any, missing_fields: Any
) -> None:
    call = Caller(facebody(), cloudauth(), runtime(), missing_fields)
    await run_stateless(call, sandbox)
    await run_face_db(call, sandbox)
    await run_templates_and_tokens(call, sandbox)
    status, health = await sandbox.admin("GET", "health")
    assert status == 200
    assert len(health["actions"]) == 44
    assert sorted(call.seen) == sorted(health["actions"])
    stats = await sandbox.stats()
    assert stats["totals"]["errors"] == 0
    assert stats["totals"]["ok"] == stats["totals"]["calls"] == 44


@pytest.mark.asyncio
async def test_same_request_same_data(facebody: Any, runtime: Any) -> None:
    client = facebody()
    request = fb.RecognizeFaceRequest(image_url="https://example.com/people/a.jpg", max_face_number=3)
    first = await client.recognize_face_with_options_async(request, runtime())
    second = await client.recognize_face_with_options_async(request, runtime())
    other = await client.recognize_face_with_options_async(
        fb.RecognizeFaceRequest(image_url="https://example.com/people/b.jpg", max_face_number=3), runtime()
    )
    assert first.body.request_id != second.body.request_id
    assert first.body.data.to_map() == second.body.data.to_map()
    assert first.body.data.to_map() != other.body.data.to_map()


@pytest.mark.parametrize("image", [("face.jpg", 640, 480), ("body.jpg", 480, 640), ("blank-3000x200.png", 3000, 200)])
@pytest.mark.asyncio
async def test_rectangles_stay_inside_a_loopback_image(
    sandbox: RunningSandbox, facebody: Any, runtime: Any, image: tuple[str, int, int]
) -> None:
    name, width, height = image
    client, url = facebody(), sandbox.image(name)
    for max_faces in (1, 5):
        data = (
            await client.detect_face_with_options_async(
                fb.DetectFaceRequest(image_url=url, max_face_number=max_faces), runtime()
            )
        ).body.data
        assert len(data.landmarks) == data.face_count * 105 * 2 and data.landmark_count == 105
        for i in range(data.face_count):
            left, top, w, h = data.face_rectangles[4 * i : 4 * i + 4]
            assert left >= 0 and top >= 0 and w > 0 and h > 0
            assert left + w <= width and top + h <= height
            xs, ys = data.landmarks[210 * i : 210 * (i + 1) : 2], data.landmarks[210 * i + 1 : 210 * (i + 1) : 2]
            assert all(left <= x <= left + w for x in xs) and all(top <= y <= top + h for y in ys)
        assert all(0.0 <= p <= 1.0 for p in data.face_probability_list)
    pedestrians = (
        await client.detect_pedestrian_with_options_async(fb.DetectPedestrianRequest(image_url=url), runtime())
    ).body.data
    assert (pedestrians.width, pedestrians.height) == (width, height)
    for element in pedestrians.elements:
        x1, y1, x2, y2 = element.boxes
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


@pytest.mark.asyncio
async def test_edited_image_url_is_served_by_the_sandbox(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    data = (
        await facebody().enhance_face_with_options_async(
            fb.EnhanceFaceRequest(image_url=sandbox.image("face.jpg")), runtime()
        )
    ).body.data
    assert data.image_url.startswith(f"{sandbox.url}/_sandbox/results/EnhanceFace-640x480-")
    async with sandbox.http.get(data.image_url) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert (await response.read()).startswith(b"\x89PNG")


@pytest.mark.asyncio
async def test_the_sandbox_knows_where_it_drew_its_sample_face(
    sandbox: RunningSandbox, facebody: Any, runtime: Any
) -> None:
    client = facebody()
    for name in ("face.jpg", "face.png"):
        data = (
            await client.detect_face_with_options_async(fb.DetectFaceRequest(image_url=sandbox.image(name)), runtime())
        ).body.data
        assert data.face_rectangles == [230, 100, 180, 250]
