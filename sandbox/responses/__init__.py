"""Response builders, one module per action family; `BUILDERS` maps every action to its builder.

A builder gets a `Call` (typed parameters, a random.Random seeded from action + canonical parameters, the caller's
state, image access) and returns the answer's `Data` (None: the action answers only a RequestId) or, for
Cloudauth-intl actions (RESULT_ACTIONS), its `Result`. `envelope` wraps it as Alibaba does.
"""

from __future__ import annotations

from typing import Any

from sandbox.responses import body, cloudauth, compare, editing, face_analysis, face_db, fusion, liveness, verification
from sandbox.responses.context import Builder

BUILDERS: dict[str, Builder] = {
    **face_db.BUILDERS,
    **editing.BUILDERS,
    **face_analysis.BUILDERS,
    **body.BUILDERS,
    **compare.BUILDERS,
    **liveness.BUILDERS,
    **fusion.BUILDERS,
    **verification.BUILDERS,
    **cloudauth.BUILDERS,
}
RESULT_ACTIONS = frozenset(cloudauth.BUILDERS)


def envelope(action: str, request_id: str, payload: dict[str, Any] | None) -> dict[str, Any]:
    if action in RESULT_ACTIONS:
        return {"RequestId": request_id, "Code": "Success", "Message": "success", "Result": payload or {}}
    if payload is None:
        return {"RequestId": request_id}
    return {"RequestId": request_id, "Data": payload}
