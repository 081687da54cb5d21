"""Face-fusion templates (state per access key): AddFaceImageTemplate, QueryFaceImageTemplate,
DeleteFaceImageTemplate, and MergeImageFace, which needs an existing template."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from sandbox.errors import invalid_parameter, missing
from sandbox.images import ImageInfo
from sandbox.responses import geometry as geo
from sandbox.responses.compare import image_rng
from sandbox.responses.context import Builder, Call
from sandbox.responses.geometry import Rect
from sandbox.state import Template, TemplateFace

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _face_infos(template: Template) -> list[dict[str, Any]]:
    return [
        {
            "TemplateFaceID": face.face_id,
            "FaceRect": {
                "X": str(face.rect[0]),
                "Y": str(face.rect[1]),
                "Width": str(face.rect[2]),
                "Height": str(face.rect[3]),
            },
        }
        for face in template.faces
    ]


def _user_id(key_id: str) -> str:
    return str(int(hashlib.sha256(key_id.encode()).hexdigest()[:12], 16))


def _stamp(millis: int) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(millis / 1000))


async def add_face_image_template(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL")
    rng = image_rng(info)
    rects = [Rect(*box) for box in info.faces] or geo.face_rects(rng, info.width, info.height, rng.randint(1, 2))
    faces = [TemplateFace(str(index), (r.left, r.top, r.width, r.height)) for index, r in enumerate(rects)]
    template = call.account.add_template(call.params["ImageURL"], (info.width, info.height), faces)
    return {"TemplateId": template.template_id, "FaceInfos": _face_infos(template)}


async def query_face_image_template(call: Call) -> dict[str, Any]:
    params, account = call.params, call.account
    if params.get("TemplateId"):
        templates = [account.template(params["TemplateId"])]
    else:
        templates = sorted(account.templates.values(), key=lambda t: (t.created_at, t.template_id))
    page_no, page_size = params.get("PageNo") or 1, params.get("PageSize") or 10
    if page_no < 1 or not 1 <= page_size <= 100:
        raise invalid_parameter("PageSize", "PageNo must be >= 1 and PageSize between 1 and 100")
    page = templates[(page_no - 1) * page_size : page_no * page_size]
    elements = [
        {
            "TemplateId": t.template_id,
            "TemplateURL": t.url,
            "UserId": _user_id(account.key_id),
            "CreateTime": _stamp(t.created_at),
            "UpdateTime": _stamp(t.updated_at),
            "FaceInfos": _face_infos(t),
        }
        for t in page
    ]
    return {"Elements": elements, "Total": len(templates)}


async def delete_face_image_template(call: Call) -> None:
    call.account.template(call.params["TemplateId"])
    del call.account.templates[call.params["TemplateId"]]


async def merge_image_face(call: Call) -> dict[str, Any]:
    params = call.params
    template = call.account.template(params["TemplateId"])
    face_ids = {face.face_id for face in template.faces}
    if params.get("MergeInfos"):
        for index, info in enumerate(params["MergeInfos"], start=1):
            if not info.get("ImageURL"):
                raise missing(f"MergeInfos.{index}.ImageURL")
            if info.get("TemplateFaceID") not in face_ids:
                raise invalid_parameter(f"MergeInfos.{index}.TemplateFaceID", "no such face in the template")
            await call.image(info["ImageURL"], f"MergeInfos.{index}.ImageURL")
    elif params.get("ImageURL"):
        await call.image(params["ImageURL"], "ImageURL")
    else:
        raise missing("ImageURL")
    size = ImageInfo(template.size[0], template.size[1], "", False)
    return {"ImageURL": call.result_url("MergeImageFace", size)}


BUILDERS: dict[str, Builder] = {
    "AddFaceImageTemplate": add_face_image_template,
    "QueryFaceImageTemplate": query_face_image_template,
    "DeleteFaceImageTemplate": delete_face_image_template,
    "MergeImageFace": merge_image_face,
}
