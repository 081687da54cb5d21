"""Face databases (state per access key, sandbox/state.py): CreateFaceDb, DeleteFaceDb, ListFaceDbs,
AddFaceEntity, GetFaceEntity, ListFaceEntities, UpdateFaceEntity, DeleteFaceEntity, AddFace, BatchAddFaces,
DeleteFace. Quality thresholds are accepted but not enforced."""

from __future__ import annotations

from typing import Any

from sandbox.errors import SandboxError, invalid_parameter
from sandbox.images import ImageInfo
from sandbox.responses.compare import image_rng
from sandbox.responses.context import Builder, Call
from sandbox.state import Entity, now_ms

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _page(params: dict[str, Any], offset_from_token: bool = False) -> tuple[int, int]:
    offset = params.get("Offset") or 0
    if offset_from_token and params.get("Token"):
        token = str(params["Token"])
        if not token.isdigit():
            raise invalid_parameter("Token", "use the Token of the previous answer")
        offset = int(token)
    limit = params.get("Limit") or DEFAULT_PAGE
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise invalid_parameter("Limit", f"Offset must be >= 0 and Limit between 1 and {MAX_PAGE}")
    return offset, limit


def quality(info: ImageInfo) -> float:
    return round(image_rng(info).uniform(70, 99), 2)


async def create_face_db(call: Call) -> None:
    call.account.create_db(call.params["Name"])


async def delete_face_db(call: Call) -> None:
    call.account.db(call.params["Name"])
    del call.account.dbs[call.params["Name"]]


async def list_face_dbs(call: Call) -> dict[str, Any]:
    offset, limit = _page(call.params)
    names = list(call.account.dbs)[offset : offset + limit]
    return {"DbList": [{"Name": name} for name in names]}


async def add_face_entity(call: Call) -> None:
    params = call.params
    call.account.add_entity(params["DbName"], params["EntityId"], params.get("Labels", ""))


async def get_face_entity(call: Call) -> dict[str, Any]:
    params = call.params
    entity = call.account.entity(params["DbName"], params["EntityId"])
    return {
        "DbName": params["DbName"],
        "EntityId": entity.entity_id,
        "Labels": entity.labels,
        "Faces": [{"FaceId": face_id} for face_id in entity.faces],
    }


def _matches(entity: Entity, prefix: str, labels: set[str]) -> bool:
    own = {label.strip() for label in entity.labels.split(",") if label.strip()}
    return entity.entity_id.startswith(prefix) and labels <= own


async def list_face_entities(call: Call) -> dict[str, Any]:
    params = call.params
    db = call.account.db(params["DbName"])
    offset, limit = _page(params, offset_from_token=True)
    labels = {label.strip() for label in str(params.get("Labels") or "").split(",") if label.strip()}
    order = str(params.get("Order") or "asc").lower()
    if order not in ("asc", "desc"):
        raise invalid_parameter("Order", "use asc or desc")
    found = [e for e in db.entities.values() if _matches(e, str(params.get("EntityIdPrefix") or ""), labels)]
    found.sort(key=lambda e: (e.created_at, e.entity_id), reverse=order == "desc")
    page = found[offset : offset + limit]
    entities = [
        {
            "DbName": db.name,
            "EntityId": e.entity_id,
            "Labels": e.labels,
            "FaceCount": len(e.faces),
            "CreatedAt": e.created_at,
            "UpdatedAt": e.updated_at,
        }
        for e in page
    ]
    token = str(offset + limit) if offset + limit < len(found) else ""
    return {"Entities": entities, "TotalCount": len(found), "Token": token}


async def update_face_entity(call: Call) -> None:
    params = call.params
    entity = call.account.entity(params["DbName"], params["EntityId"])
    if "Labels" in params:
        entity.labels = params["Labels"]
    entity.updated_at = now_ms()


async def delete_face_entity(call: Call) -> None:
    params = call.params
    call.account.entity(params["DbName"], params["EntityId"])
    del call.account.dbs[params["DbName"]].entities[params["EntityId"]]


async def add_face(call: Call) -> dict[str, Any]:
    params = call.params
    call.account.entity(params["DbName"], params["EntityId"])
    info = await call.image_param("ImageUrl")
    face = call.account.add_face(
        params["DbName"],
        params["EntityId"],
        image_url=params["ImageUrl"],
        extra_data=params.get("ExtraData", ""),
        feature=info.digest,
        quality=quality(info),
    )
    return {"FaceId": face.face_id, "QualitieScore": face.quality}


async def batch_add_faces(call: Call) -> dict[str, Any]:
    params = call.params
    call.account.entity(params["DbName"], params["EntityId"])
    inserted, failed = [], []
    for index, item in enumerate(params["Faces"], start=1):
        url = item.get("ImageURL", "")
        try:
            info = await call.image(url, f"Faces.{index}.ImageURL")
            face = call.account.add_face(
                params["DbName"],
                params["EntityId"],
                image_url=url,
                extra_data=item.get("ExtraData", ""),
                feature=info.digest,
                quality=quality(info),
            )
        except SandboxError as exc:
            failed.append({"ImageURL": url, "Code": exc.code, "Message": exc.message})
            continue
        inserted.append({"FaceId": face.face_id, "ImageURL": url, "QualitieScore": face.quality})
    return {"InsertedFaces": inserted, "FailedFaces": failed}


async def delete_face(call: Call) -> None:
    call.account.delete_face(call.params["DbName"], call.params["FaceId"])


BUILDERS: dict[str, Builder] = {
    "CreateFaceDb": create_face_db,
    "DeleteFaceDb": delete_face_db,
    "ListFaceDbs": list_face_dbs,
    "AddFaceEntity": add_face_entity,
    "GetFaceEntity": get_face_entity,
    "ListFaceEntities": list_face_entities,
    "UpdateFaceEntity": update_face_entity,
    "DeleteFaceEntity": delete_face_entity,
    "AddFace": add_face,
    "BatchAddFaces": batch_add_faces,
    "DeleteFace": delete_face,
}
