"""Face comparison (1:1), with and without masks."""

from __future__ import annotations

from scripts.curation.model import ToolCuration
from scripts.curation.texts import CREDENTIALS, DEFAULT_QPS, IMAGE_URL_CONTEXT, LARGEST_FACE, URL_MUST_BE_REACHABLE

ID_PHOTO_URL = "https://example.com/images/id-photo.jpg"
SELFIE_URL = "https://example.com/images/selfie.jpg"
QUALITY_THRESHOLD = {
    "minimum": 0,
    "maximum": 100,
    "description": "Reject the comparison if either face's quality score (0-100) is below this.",
}

COMPARE_FACE = ToolCuration(
    name="Face Comparison (1:1 Verification)",
    name_zh="人脸比对(1:1)",
    description=(
        "Compares the largest face in two images and returns a similarity confidence with reference thresholds, "
        "to decide whether both photos show the same person."
    ),
    description_zh="比对两张图片中最大的人脸，返回相似度置信度及参考阈值，用于判断是否为同一人。",
    description_for_model=(
        "Use for 1:1 face verification: selfie vs ID photo, login selfie vs enrolment photo. Send image A as "
        "ImageURLA or base64 ImageDataA and image B as ImageURLB or ImageDataB (URL and base64 may be mixed), "
        "optional QualityScoreThreshold. Returns Confidence (0-100) and Thresholds, three confidence values for "
        "false-accept rates 1e-3, 1e-4, 1e-5: same person if Confidence >= the threshold for your risk level. "
        "Also RectAList/RectBList [left, top, width, height], QualityScoreA/B, IsMaskA/B. For masked faces use "
        "masked-face-comparison; for searching a gallery use face-database-search."
    ),
    category="face-comparison",
    keywords=[
        "compare faces",
        "face verification",
        "1:1",
        "face match",
        "same person check",
        "face similarity",
        "人脸比对",
        "人脸相似度",
        "人脸验证",
        "1:1比对",
        "是否同一人",
    ],
    aliases=["CompareFace", "face compare", "face matching", "人证比对"],
    use_cases=[
        "Match a selfie against an ID-card photo during onboarding",
        "Verify that the person logging in is the enrolled account owner",
        "Check that the candidate in an online exam is the registered one",
    ],
    limitations=[
        LARGEST_FACE,
        "Faces should be at least 64x64 pixels; use a quality threshold to reject poor photos",
        "Pair with a liveness check: comparison alone cannot tell a live person from a photo",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=["computer-vision", "face", "verification", "1:1", "identity"],
    related_services=["face-liveness-detection", "masked-face-comparison", "face-database-search", "face-detection"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="900ms",
    cacheable=True,
    idempotent=True,
    limits={
        "maxBytes": 5242880,
        "formats": ["JPEG", "JPG", "PNG", "BMP", "WEBP"],
        "minSide": 32,
        "maxSide": 4096,
    },
    example_request={"ImageURLA": ID_PHOTO_URL, "ImageURLB": SELFIE_URL, "QualityScoreThreshold": 40.0},
    example_result={
        "Confidence": 88.43,
        "Thresholds": [61.0, 69.0, 75.0],
        "RectAList": [212, 168, 186, 232],
        "RectBList": [402, 156, 238, 301],
        "LandmarksAList": [268, 265, 342, 263, 305, 310, 276, 352, 335, 351],
        "LandmarksBList": [474, 287, 569, 285, 521, 346, 482, 399, 560, 398],
        "QualityScoreA": 91.6,
        "QualityScoreB": 84.2,
        "IsMaskA": 0,
        "IsMaskB": 0,
        "MessageTips": "",
    },
    any_of=[["ImageURLA", "ImageDataA"], ["ImageURLB", "ImageDataB"]],
    field_schemas={"QualityScoreThreshold": QUALITY_THRESHOLD},
)

COMPARE_FACE_WITH_MASK = ToolCuration(
    name="Masked Face Comparison (1:1)",
    name_zh="口罩人脸比对(1:1)",
    description=(
        "Compares two face photos when one or both people wear face masks and returns a similarity confidence "
        "with thresholds."
    ),
    description_zh="在一方或双方佩戴口罩的情况下比对两张人脸照片，返回相似度置信度和阈值。",
    description_for_model=(
        "Use for 1:1 verification when faces may be covered by medical masks (hospital staff, access control "
        "during epidemics). Send ImageURLA and ImageURLB (both required), optional QualityScoreThreshold. "
        "Returns Confidence (0-100), Thresholds (integers for false-accept rates 1e-3, 1e-4, 1e-5), IsMaskA/B "
        "(1 = mask detected), face rectangles and quality scores. For unmasked faces face-comparison is more "
        "accurate."
    ),
    category="face-comparison",
    keywords=[
        "masked face comparison",
        "face mask verification",
        "compare faces with mask",
        "1:1",
        "口罩人脸比对",
        "戴口罩人脸识别",
        "口罩比对",
        "遮挡人脸比对",
    ],
    aliases=["CompareFaceWithMask", "mask face compare", "face compare with mask", "口罩人脸1:1"],
    use_cases=[
        "Verify staff wearing surgical masks at a hospital entrance",
        "Check in travellers without asking them to remove masks",
    ],
    limitations=[
        "Only URLs are accepted (no base64 fields)",
        "Masks hide features: confidences are lower than for bare faces, so tune thresholds",
        LARGEST_FACE,
        URL_MUST_BE_REACHABLE,
    ],
    tags=["computer-vision", "face", "verification", "1:1", "mask"],
    related_services=["face-comparison", "face-attribute-recognition", "face-liveness-detection"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1000ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={
        "ImageURLA": ID_PHOTO_URL,
        "ImageURLB": "https://example.com/images/gate-camera-masked.jpg",
    },
    example_result={
        "Confidence": 79.12,
        "Thresholds": [61, 69, 75],
        "RectAList": [212, 168, 186, 232],
        "RectBList": [388, 142, 244, 309],
        "LandmarksAList": [268, 265, 342, 263, 305, 310, 276, 352, 335, 351],
        "LandmarksBList": [458, 276, 557, 274, 508, 337, 466, 392, 549, 391],
        "QualityScoreA": 91.6,
        "QualityScoreB": 72.8,
        "IsMaskA": 0,
        "IsMaskB": 1,
        "MessageTips": "",
    },
    field_schemas={
        "ImageURLA": {"description": "Public http or https image URL of the first face photo (e.g. the ID photo)."},
        "ImageURLB": {"description": "Public http or https image URL of the second, possibly masked, face photo."},
        "QualityScoreThreshold": QUALITY_THRESHOLD,
    },
)

FACE_COMPARISON = {"CompareFace": COMPARE_FACE, "CompareFaceWithMask": COMPARE_FACE_WITH_MASK}
