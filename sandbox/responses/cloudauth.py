"""Cloudauth-intl 2022-08-09 FaceLivenessV2. Its answer is `{"RequestId","Code":"Success","Message":"success",
"Result":{...}}` (the business verdict, Passed Y/N with SubCode, inside an HTTP 200)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sandbox.errors import invalid_parameter, missing
from sandbox.images import ImageInfo
from sandbox.responses import geometry as geo
from sandbox.responses.context import Builder, Call

PRODUCT_CODES = ("FACE_LIVENESS_MIN", "FACE_LIVENESS_MIN_PRO")
MAX_BIZ_ID = 32


async def _picture(call: Call) -> ImageInfo:
    params = call.params
    for field in ("FacePictureUrl", "FacePictureFile"):
        if params.get(field):
            return await call.image(params[field], field)
    if params.get("FacePictureBase64"):
        return await call.image_param("FacePictureUrl", "FacePictureBase64")
    raise missing("FacePictureUrl")


def _check(params: dict[str, Any]) -> None:
    if params["ProductCode"] not in PRODUCT_CODES:
        raise invalid_parameter("ProductCode", f"use one of {', '.join(PRODUCT_CODES)}")
    if len(params["MerchantBizId"]) > MAX_BIZ_ID:
        raise invalid_parameter("MerchantBizId", f"at most {MAX_BIZ_ID} characters")
    for flag in ("FaceQualityCheck", "FaceAttributeCheck"):
        if params.get(flag) not in (None, "Y", "N"):
            raise invalid_parameter(flag, "use Y or N")


async def face_liveness_v2(call: Call) -> dict[str, Any]:
    _check(call.params)
    info = await _picture(call)
    rng = call.rng
    attack = rng.random() < 0.1
    occluded = rng.random() < 0.1
    attributes = {
        "Hat": rng.choice(("Y", "N", "N")),
        "Glasses": rng.choice(("Y", "N", "N")),
        "Mask": "N",
        "Age": rng.randint(18, 70),
    }
    ext = {
        "FaceAttack": "Y" if attack else "N",
        "FaceQualityScore": geo.score(rng, 60, 99, 2),
        "FaceAge": attributes["Age"],
        "FaceGender": rng.choice(("M", "F")),
        "OcclusionResult": "Y" if occluded else "N",
        "OcclusionScore": geo.score(rng, 0.5, 1.0) if occluded else geo.score(rng, 0, 0.3),
        "IlluminationScore": geo.score(rng, 60, 99, 2),
        "SharpnessScore": geo.score(rng, 60, 99, 2),
        "KaOcclusionScore": geo.score(rng, 0, 0.3),
        "FaceAttributeInfo": json.dumps(attributes, separators=(",", ":")),
    }
    transaction = hashlib.sha256(f"{info.digest}/{call.params['MerchantBizId']}".encode()).hexdigest()[:32]
    return {
        "TransactionId": transaction,
        "Passed": "N" if attack else "Y",
        "SubCode": "205" if attack else "200",
        "ExtFaceInfo": ext,
    }


BUILDERS: dict[str, Builder] = {"FaceLivenessV2": face_liveness_v2}
