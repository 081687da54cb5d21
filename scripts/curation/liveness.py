"""Liveness: is the face from a live person in front of the camera, or a photo, screen, mask or recapture?"""

from __future__ import annotations

from scripts.curation.model import ToolCuration
from scripts.curation.texts import (
    CREDENTIALS,
    IMAGE_URL_CONTEXT,
    LARGEST_FACE,
    URL_MUST_BE_REACHABLE,
    VIDEO_URL_CONTEXT,
)

LIVENESS_TAGS = ["computer-vision", "face", "liveness", "anti-spoofing", "fraud-prevention"]
SELFIE_URL = "https://example.com/images/selfie.jpg"
FACE_RECT = {"Left": 402, "Top": 156, "Width": 238, "Height": 301}
FRESH_RESULT = "Do not cache liveness verdicts: every check must look at a new capture"

DETECT_LIVING_FACE = ToolCuration(
    name="Face Liveness Detection (Image)",
    name_zh="人脸活体检测",
    description=(
        "Checks whether face photos were taken of a live person rather than of a printed photo, screen or other "
        "recapture, returning a label, suggestion and score per face."
    ),
    description_zh="判断人脸照片是否为真人近距离实拍，而非打印照片、屏幕翻拍等攻击，逐脸返回标签、建议和分数。",
    description_for_model=(
        "Use as an anti-spoofing step before face-comparison in selfie verification. Send Tasks: images, each "
        "with ImageURL or base64 ImageData; every task is billed. Each item of Elements has TaskId, ImageURL, "
        "FaceNumber and Results [{Label (normal = live), Suggestion (pass, review or block), Rate (0-100), Rect "
        "{Left, Top, Width, Height}, MessageTips}]. Accept when Suggestion is pass. For video clips use "
        "video-face-liveness-detection; for near-infrared camera frames infrared-face-liveness-detection."
    ),
    category="liveness",
    keywords=[
        "face liveness detection",
        "anti-spoofing",
        "silent liveness",
        "photo attack detection",
        "presentation attack",
        "人脸活体检测",
        "静默活体",
        "防翻拍",
        "活体识别",
        "真人检测",
    ],
    aliases=["DetectLivingFace", "liveness check", "spoof detection", "活体检测"],
    use_cases=[
        "Reject printed photos or phone screens during selfie onboarding",
        "Add liveness to face login before comparing with the enrolled photo",
        "Screen proctoring snapshots for recaptured faces",
    ],
    limitations=[
        "Single-image (silent) liveness: strong 3D masks or deepfakes need additional checks",
        "Each task is billed separately",
        FRESH_RESULT,
        URL_MUST_BE_REACHABLE,
    ],
    tags=LIVENESS_TAGS,
    related_services=["face-comparison", "video-face-liveness-detection", "face-liveness-v2", "deepfake-detection"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1000ms",
    cacheable=False,
    idempotent=True,
    limits={"maxBytes": 10485760, "formats": ["PNG", "JPG", "JPEG", "BMP", "GIF", "WEBP"]},
    example_request={"Tasks": [{"ImageURL": SELFIE_URL}]},
    example_result={
        "Elements": [
            {
                "TaskId": "img7$FCTGfO4DI6vNvkORerdz-1unV0p",
                "ImageURL": SELFIE_URL,
                "FaceNumber": 1,
                "Results": [
                    {"Label": "normal", "Suggestion": "pass", "Rate": 99.12, "Rect": FACE_RECT, "MessageTips": ""}
                ],
            }
        ]
    },
    item_any_of={"Tasks": [["ImageURL", "ImageData"]]},
    field_schemas={
        "Tasks": {"description": "Face images to check, each with ImageURL or base64 ImageData; each task is billed."},
        "Tasks.ImageURL": {"description": "Public http or https image URL of one face photo to check."},
        "Tasks.ImageData": {"description": "Base64-encoded image bytes, instead of ImageURL."},
    },
)

DETECT_INFRARED_LIVING_FACE = ToolCuration(
    name="Infrared Face Liveness Detection",
    name_zh="红外人脸活体检测",
    description=(
        "Checks near-infrared (IR camera) face images for spoofing attacks such as photos, screens and masks, "
        "returning a label, suggestion and score per face."
    ),
    description_zh="对近红外(IR摄像头)人脸图像进行活体检测，识别照片、屏幕、面具等攻击，逐脸返回标签、建议和分数。",
    description_for_model=(
        "Use only with frames from a near-infrared camera (door terminals, turnstiles, laptops with IR face "
        "login). Send Tasks: images, each with ImageURL. Each item of Elements has ImageURL, FaceNumber and "
        "Results [{Label, Suggestion (pass, review or block), Rate (0-100), Rect, MessageTips}]. For normal RGB "
        "photos use face-liveness-detection."
    ),
    category="liveness",
    keywords=[
        "infrared liveness",
        "IR face anti-spoofing",
        "near-infrared face",
        "NIR liveness",
        "红外活体",
        "红外人脸活体检测",
        "近红外活体",
        "IR活体",
    ],
    aliases=["DetectInfraredLivingFace", "infrared anti-spoofing", "IR liveness check"],
    use_cases=[
        "Anti-spoofing for access-control terminals with IR cameras",
        "Liveness for face login on devices with IR sensors",
    ],
    limitations=[
        "Needs near-infrared images; ordinary colour photos give unreliable results",
        FRESH_RESULT,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*LIVENESS_TAGS, "infrared"],
    related_services=["face-liveness-detection", "face-comparison", "video-face-liveness-detection"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1000ms",
    cacheable=False,
    idempotent=True,
    limits={},
    example_request={"Tasks": [{"ImageURL": "https://example.com/images/ir-terminal-frame.jpg"}]},
    example_result={
        "Elements": [
            {
                "ImageURL": "https://example.com/images/ir-terminal-frame.jpg",
                "FaceNumber": 1,
                "Results": [
                    {"Label": "normal", "Suggestion": "pass", "Rate": 98.47, "Rect": FACE_RECT, "MessageTips": ""}
                ],
            }
        ]
    },
    field_schemas={
        "Tasks": {"description": "Near-infrared face images to check, each {ImageURL}."},
        "Tasks.ImageURL": {"description": "Public http or https image URL of one near-infrared face frame."},
    },
)

DETECT_VIDEO_LIVING_FACE = ToolCuration(
    name="Video Face Liveness Detection",
    name_zh="视频活体检测",
    description=(
        "Checks whether the face in a short video was filmed live or is a recapture (replayed video, screen or photo)."
    ),
    description_zh="检测视频中的人脸是直接拍摄的真人还是翻拍(重放视频、屏幕或照片)。",
    description_for_model=(
        "Use when the client records a short selfie video (over 3 s) instead of a photo. Send VideoUrl (MP4 or "
        "AVI, up to 30 MB). The largest face is judged. Elements [{LiveConfidence (0-1, higher = live), "
        "FaceConfidence (0-1), Rect [x1, y1, x2, y2]}]; choose your own LiveConfidence threshold. The call "
        "answers directly (no job polling)."
    ),
    category="liveness",
    keywords=[
        "video liveness",
        "video anti-spoofing",
        "selfie video liveness",
        "replay attack detection",
        "视频活体检测",
        "视频活体",
        "翻拍检测",
        "视频防伪",
    ],
    aliases=["DetectVideoLivingFace", "video liveness check", "liveness from video"],
    use_cases=[
        "Liveness for remote account opening with a short selfie video",
        "Detect replayed or screen-recorded videos in KYC flows",
    ],
    limitations=[
        "Video over 3 seconds, MP4 or AVI, up to 30 MB; faces should exceed 64x64 pixels",
        LARGEST_FACE,
        FRESH_RESULT,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*LIVENESS_TAGS, "video"],
    related_services=["face-liveness-detection", "face-liveness-v2", "face-comparison", "action-recognition"],
    required_context=[VIDEO_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="6000ms",
    cacheable=False,
    idempotent=True,
    limits={"maxBytes": 31457280, "formats": ["MP4", "AVI"], "minSide": 64},
    example_request={"VideoUrl": "https://example.com/videos/selfie-liveness.mp4"},
    example_result={"Elements": [{"LiveConfidence": 0.9246, "FaceConfidence": 0.9964, "Rect": [374, 96, 493, 248]}]},
    field_schemas={
        "VideoUrl": {
            "description": "Public http or https video URL of the selfie clip (MP4/AVI, over 3 s, up to 30 MB)."
        }
    },
)

FACE_LIVENESS_V2 = ToolCuration(
    name="Face Liveness V2 (ID Verification, International)",
    name_zh="人脸活体检测V2(国际版)",
    description=(
        "Server-side face liveness from one photo by Alibaba Cloud ID Verification (international): decides "
        "whether the face is live and returns quality, occlusion, age and gender details."
    ),
    description_zh="阿里云国际版实人认证的服务端人脸活体检测：基于单张照片判断是否为活体，并返回质量、遮挡、年龄和性别等详情。",
    description_for_model=(
        "Use for KYC-grade liveness outside mainland China. Send ProductCode (FACE_LIVENESS_MIN_PRO, the Qwen-VL "
        "based plan, or FACE_LIVENESS_MIN), MerchantBizId (your unique id, letters and digits, max 32), "
        "MerchantUserId (hash it) and the face as FacePictureUrl or FacePictureBase64; optional FaceQualityCheck "
        "Y blocks blurred/occluded photos. The business result comes with HTTP 200: Passed Y/N, SubCode (200 "
        "passed, 205 risk detected) and ExtFaceInfo {FaceAttack Y/N, FaceQualityScore, OcclusionResult, "
        "SharpnessScore, IlluminationScore, FaceAge, FaceGender}."
    ),
    category="liveness",
    keywords=[
        "face liveness v2",
        "ekyc liveness",
        "ID verification liveness",
        "FACE_LIVENESS_MIN_PRO",
        "KYC anti-spoofing",
        "人脸活体检测V2",
        "国际实人认证",
        "活体检测国际版",
        "服务端活体",
    ],
    aliases=["FaceLivenessV2", "cloudauth-intl liveness", "Alibaba eKYC face liveness", "金融级活体"],
    use_cases=[
        "eKYC onboarding for fintech or crypto apps outside mainland China",
        "Server-side liveness check of a selfie captured by your own app",
        "Screen selfies for attacks with quality gating (FaceQualityCheck=Y)",
    ],
    limitations=[
        "Image up to 1 MB (base64 source up to about 0.6 MB), 640x480 to 1920x1080, portrait orientation preferred",
        "The face should fill most of the frame; only the largest face is judged",
        "Served from cloudauth-intl regions (Singapore, Jakarta, Hong Kong, Kuala Lumpur); SubCodes 200/205 are billed",
        FRESH_RESULT,
    ],
    tags=[*LIVENESS_TAGS, "ekyc", "identity-verification"],
    related_services=[
        "face-liveness-detection",
        "deepfake-detection",
        "face-comparison",
        "video-face-liveness-detection",
    ],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1500ms",
    cacheable=False,
    idempotent=False,
    limits={"maxBytes": 1048576, "formats": ["JPG", "JPEG", "PNG"], "minSide": 480, "maxSide": 1920},
    example_request={
        "ProductCode": "FACE_LIVENESS_MIN_PRO",
        "MerchantBizId": "e0c34a77f5ac40a5aa5e6ed20c35ab12",
        "MerchantUserId": "5f4dcc3b5aa765d61d8327deb882cf99",
        "FacePictureUrl": SELFIE_URL,
        "FaceQualityCheck": "Y",
    },
    example_result={
        "TransactionId": "hksb7ba1b28130d24e015d6943610c8e",
        "Passed": "Y",
        "SubCode": "200",
        "ExtFaceInfo": {
            "FaceAttack": "N",
            "FaceQualityScore": 88.62,
            "OcclusionResult": "N",
            "OcclusionScore": 99.99,
            "KaOcclusionScore": 100.0,
            "IlluminationScore": 97.43,
            "SharpnessScore": 60.78,
            "FaceAge": 30,
            "FaceGender": "M",
        },
    },
    any_of=[["FacePictureUrl", "FacePictureBase64"]],
    extra_required=["MerchantBizId", "MerchantUserId"],
    excluded_fields=["FacePictureFile"],
    field_schemas={
        "ProductCode": {
            "enum": ["FACE_LIVENESS_MIN_PRO", "FACE_LIVENESS_MIN"],
            "description": "Product plan: FACE_LIVENESS_MIN_PRO (Qwen-VL based, recommended) or FACE_LIVENESS_MIN.",
        },
        "MerchantBizId": {
            "pattern": "^[A-Za-z0-9]{1,32}$",
            "description": "Your unique business id for this check (letters and digits, max 32) for later tracing.",
        },
        "MerchantUserId": {
            "description": "Your id of the end user (e.g. a hashed phone number or email); hash it before sending.",
        },
        "FacePictureUrl": {
            "description": "Public http or https image URL of the face photo (HTTPS recommended by Alibaba).",
        },
        "FacePictureBase64": {
            "description": "Base64-encoded face photo (source up to about 0.6 MB), instead of FacePictureUrl."
        },
        "FaceQualityCheck": {
            "enum": ["Y", "N"],
            "description": "Y rejects low-quality (blurred, occluded) photos with 401 UnqualifiedPhoto; default N.",
        },
        "FaceAttributeCheck": {
            "enum": ["Y", "N"],
            "description": "Y also returns face attribute details in ExtFaceInfo; default N.",
        },
    },
)

LIVENESS = {
    "DetectLivingFace": DETECT_LIVING_FACE,
    "DetectInfraredLivingFace": DETECT_INFRARED_LIVING_FACE,
    "DetectVideoLivingFace": DETECT_VIDEO_LIVING_FACE,
    "FaceLivenessV2": FACE_LIVENESS_V2,
}
