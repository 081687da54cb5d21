"""Hand-curated catalog data per Alibaba action; `scripts/gen_catalog.py` merges it with what the SDK says.

One module per category; each exports a dict action -> ToolCuration. `FIELD_DESCRIPTIONS` holds parameter
descriptions shared by several actions.
"""

from __future__ import annotations

from scripts.curation.body_analysis import BODY_ANALYSIS
from scripts.curation.comparison import FACE_COMPARISON
from scripts.curation.face_analysis import FACE_ANALYSIS
from scripts.curation.face_database import FACE_DATABASE
from scripts.curation.face_editing import FACE_EDITING
from scripts.curation.face_fusion import FACE_FUSION
from scripts.curation.fields import FIELD_DESCRIPTIONS
from scripts.curation.liveness import LIVENESS
from scripts.curation.model import ToolCuration
from scripts.curation.verification import VERIFICATION


def merge_curation(*groups: dict[str, ToolCuration]) -> dict[str, ToolCuration]:
    merged: dict[str, ToolCuration] = {}
    for group in groups:
        duplicated = merged.keys() & group.keys()
        if duplicated:
            raise ValueError(f"actions curated twice: {sorted(duplicated)}")
        merged.update(group)
    return merged


CURATION = merge_curation(
    BODY_ANALYSIS,
    FACE_ANALYSIS,
    FACE_COMPARISON,
    FACE_DATABASE,
    FACE_EDITING,
    FACE_FUSION,
    LIVENESS,
    VERIFICATION,
)

__all__ = ["CURATION", "FIELD_DESCRIPTIONS", "ToolCuration"]
