"""Face image editing: every tool returns a new, temporary image URL."""

from __future__ import annotations

from scripts.curation.model import ToolCuration
from scripts.curation.texts import (
    CREDENTIALS,
    GROUP_PHOTO_URL,
    IMAGE_URL_CONTEXT,
    PORTRAIT_URL,
    RESULT_IMAGE_URL,
    RESULT_URL_EXPIRES,
    URL_MUST_BE_REACHABLE,
)

MASK_URL = RESULT_IMAGE_URL.replace(
    "6F1E2A7C-58D4-4B0E-9C3A-2D7B41E8F905.jpg", "6F1E2A7C-58D4-4B0E-9C3A-2D7B41E8F905_mask.png"
)
EDITING_TAGS = ["computer-vision", "face", "image-editing"]

BLUR_FACE = ToolCuration(
    name="Face Blur (Anonymisation)",
    name_zh="人脸打码",
    description="Detects and blurs every face in a photo, returning the anonymised image and a face mask.",
    description_zh="自动检测并模糊图片中的所有人脸，返回打码后的图片和人脸区域蒙版。",
    description_for_model=(
        "Use to anonymise people before publishing or sharing an image (privacy, GDPR-style redaction). Send "
        "ImageURL. Returns ImageURL of the blurred image and MaskURL of a mask marking the blurred face areas. "
        "No faces are named or stored."
    ),
    category="face-editing",
    keywords=[
        "face blur",
        "blur faces",
        "anonymize faces",
        "redact faces",
        "privacy masking",
        "人脸打码",
        "人脸模糊",
        "人脸脱敏",
        "隐私保护",
    ],
    aliases=["BlurFace", "face anonymization", "face pixelation", "人脸马赛克"],
    use_cases=[
        "Anonymise bystanders in street or event photos before publishing",
        "Redact faces in dataset images for privacy compliance",
        "Protect minors' identities in shared photos",
    ],
    limitations=[
        "Only faces the detector finds are blurred; tiny or heavily turned faces may remain visible",
        RESULT_URL_EXPIRES,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*EDITING_TAGS, "privacy", "anonymization"],
    related_services=["face-detection", "public-figure-recognition", "pedestrian-detection"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="1500ms",
    cacheable=False,
    idempotent=True,
    limits={},
    example_request={"ImageURL": GROUP_PHOTO_URL},
    example_result={"ImageURL": RESULT_IMAGE_URL, "MaskURL": MASK_URL},
    field_schemas={"ImageURL": {"description": "Public http or https image URL of the photo whose faces to blur."}},
)

ENHANCE_FACE = ToolCuration(
    name="Face Enhancement (Restoration)",
    name_zh="人脸增强",
    description="Restores and sharpens faces in low-quality, blurry or old photos and returns the enhanced image.",
    description_zh="对模糊、低清或老照片中的人脸进行修复和清晰化增强，返回增强后的图片。",
    description_for_model=(
        "Use to make faces in a low-resolution, compressed or old photo clearer (face restoration / face "
        "super-resolution). Send ImageURL; returns ImageURL of the enhanced image. It improves detail but does "
        "not beautify; for smoothing and whitening use face-beauty-retouching or skin-retouching."
    ),
    category="face-editing",
    keywords=[
        "face enhancement",
        "face restoration",
        "restore old photo",
        "face super resolution",
        "deblur face",
        "人脸增强",
        "人脸修复",
        "老照片修复",
        "人脸超分",
    ],
    aliases=["EnhanceFace", "face restore", "face clarity enhancement", "人脸清晰化"],
    use_cases=[
        "Restore faces in scanned family photos",
        "Improve blurry faces in surveillance stills before review",
        "Upgrade low-resolution profile pictures",
    ],
    limitations=[
        "Restored details are synthesised and may not match the real person exactly; avoid it for forensic identity",
        RESULT_URL_EXPIRES,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*EDITING_TAGS, "restoration", "super-resolution"],
    related_services=["skin-retouching", "face-beauty-retouching", "face-detection"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="2500ms",
    cacheable=False,
    idempotent=True,
    limits={},
    example_request={"ImageURL": "https://example.com/images/old-family-photo.jpg"},
    example_result={"ImageURL": RESULT_IMAGE_URL},
    field_schemas={"ImageURL": {"description": "Public http or https image URL of the photo to restore."}},
)

FACE_BEAUTY = ToolCuration(
    name="Face Beautification",
    name_zh="人脸美颜",
    description="Beautifies faces with adjustable skin smoothing, whitening and sharpening; returns the edited image.",
    description_zh="对人脸进行美颜，可调节磨皮(平滑)、美白和锐化程度，返回美颜后的图片。",
    description_for_model=(
        "Use for beauty-camera style retouching with explicit strengths. Send ImageURL plus Sharp, Smooth and "
        "White, each 0-1 (all three are required; 0 disables an effect). Returns ImageURL. For texture-preserving "
        "blemish removal on face and body use skin-retouching; for face slimming use face-slimming."
    ),
    category="face-editing",
    keywords=[
        "face beautification",
        "beauty filter",
        "skin smoothing",
        "skin whitening",
        "sharpen face",
        "人脸美颜",
        "磨皮",
        "美白",
        "锐化",
    ],
    aliases=["FaceBeauty", "beauty camera API", "portrait retouch", "美颜"],
    use_cases=[
        "Apply beauty-camera effects to uploaded selfies",
        "Batch retouch portrait photos for social posts",
        "Offer adjustable beauty sliders in a photo app",
    ],
    limitations=[
        "All three strengths (Sharp, Smooth, White) must be sent",
        "Heavy blemishes, acne or under-exposed photos give weaker results",
        RESULT_URL_EXPIRES,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*EDITING_TAGS, "beauty", "retouching"],
    related_services=["skin-retouching", "face-slimming", "face-enhancement"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1800ms",
    cacheable=False,
    idempotent=True,
    limits={"maxBytes": 3145728, "formats": ["JPEG", "JPG", "PNG", "BMP"], "minSide": 10, "maxSide": 2000},
    example_request={"ImageURL": PORTRAIT_URL, "Sharp": 0.5, "Smooth": 0.6, "White": 0.3},
    example_result={"ImageURL": RESULT_IMAGE_URL},
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of the portrait to beautify."},
        "Sharp": {"minimum": 0, "maximum": 1, "description": "Sharpening (clarity) strength, 0-1; higher is sharper."},
        "Smooth": {"minimum": 0, "maximum": 1, "description": "Skin smoothing strength, 0-1; higher is smoother."},
        "White": {"minimum": 0, "maximum": 1, "description": "Skin whitening strength, 0-1; higher is whiter."},
    },
)

LIQUIFY_FACE = ToolCuration(
    name="Face Slimming",
    name_zh="智能瘦脸",
    description="Slims the faces in a portrait with an adjustable strength and returns the edited image.",
    description_zh="对人像中的脸型进行智能瘦脸，可调节瘦脸力度，返回处理后的图片。",
    description_for_model=(
        "Use to slim faces (face liquify / face reshaping) in a portrait with 1-3 faces. Send ImageURL and "
        "optionally SlimDegree (0-2, default 1; higher is slimmer). Returns ImageURL."
    ),
    category="face-editing",
    keywords=[
        "face slimming",
        "slim face",
        "face liquify",
        "face reshape",
        "thin face",
        "瘦脸",
        "智能瘦脸",
        "脸型调整",
        "人脸液化",
    ],
    aliases=["LiquifyFace", "face thinning", "V-face effect", "瘦脸特效"],
    use_cases=[
        "Offer a slim-face slider in a selfie app",
        "Batch retouch wedding or studio portraits",
    ],
    limitations=[
        "Works on images with 1 to 3 faces, each larger than 64x64 pixels",
        RESULT_URL_EXPIRES,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*EDITING_TAGS, "beauty", "reshaping"],
    related_services=["face-beauty-retouching", "skin-retouching", "face-enhancement"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="1800ms",
    cacheable=False,
    idempotent=True,
    limits={"maxBytes": 6291456, "formats": ["JPG", "JPEG", "PNG"], "minSide": 128, "maxSide": 5000},
    example_request={"ImageURL": PORTRAIT_URL, "SlimDegree": 1.2},
    example_result={"ImageURL": RESULT_IMAGE_URL},
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of a portrait with 1 to 3 faces."},
        "SlimDegree": {
            "minimum": 0,
            "maximum": 2,
            "description": "Slimming strength 0-2 (default 1.0); higher is slimmer.",
        },
    },
)

RETOUCH_SKIN = ToolCuration(
    name="Skin Retouching",
    name_zh="智能美肤",
    description=(
        "Retouches skin on the face and body: evens skin tone, removes blemishes such as acne and freckles while "
        "keeping skin texture, and can whiten exposed skin."
    ),
    description_zh="对脸部和全身皮肤进行美肤：匀肤、去除痘痘、痘印、雀斑等瑕疵并保留皮肤质感，可对全身皮肤美白。",
    description_for_model=(
        "Use for professional-looking skin retouching of photos with 1-10 people. Send ImageURL, optionally "
        "RetouchDegree (smoothing, 0-1.5, default 1.0) and WhiteningDegree (0-1.0, default 1.0). Only skin areas "
        "change; the background stays untouched. Returns ImageURL. For simple beauty sliders use "
        "face-beauty-retouching."
    ),
    category="face-editing",
    keywords=[
        "skin retouching",
        "blemish removal",
        "acne removal",
        "skin smoothing",
        "skin whitening",
        "智能美肤",
        "祛痘",
        "去瑕疵",
        "匀肤",
        "全身美白",
    ],
    aliases=["RetouchSkin", "skin beautify", "portrait skin retouch", "美肤"],
    use_cases=[
        "Speed up retouching for studio, e-commerce or live photo streams",
        "Clean up acne and freckles in portraits while keeping texture",
        "Whiten exposed skin in full-body photos",
    ],
    limitations=[
        "Designed for photos with 1 to 10 people and clearly visible skin",
        RESULT_URL_EXPIRES,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*EDITING_TAGS, "beauty", "retouching", "skin"],
    related_services=["face-beauty-retouching", "face-slimming", "face-enhancement"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="2500ms",
    cacheable=False,
    idempotent=True,
    limits={"maxBytes": 6291456, "formats": ["JPEG", "JPG", "PNG"], "minSide": 128, "maxSide": 5000},
    example_request={"ImageURL": PORTRAIT_URL, "RetouchDegree": 1.0, "WhiteningDegree": 0.6},
    example_result={"ImageURL": RESULT_IMAGE_URL},
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of a photo with 1 to 10 people."},
        "RetouchDegree": {
            "minimum": 0,
            "maximum": 1.5,
            "description": "Skin smoothing strength 0-1.5 (default 1.0); higher removes more texture.",
        },
        "WhiteningDegree": {"minimum": 0, "maximum": 1, "description": "Skin whitening strength 0-1.0 (default 1.0)."},
    },
)

ANIME_STYLES = ["anime", "3d", "handdrawn", "sketch", "artstyle", "claborate", "hongkong", "comic", "animation3d"]

GENERATE_HUMAN_ANIME_STYLE = ToolCuration(
    name="Anime-Style Portrait",
    name_zh="人物动漫化",
    description=(
        "Turns a photo of people into a cartoon in one of nine styles (Japanese anime, 3D, hand-drawn, pencil "
        "sketch, art effect, Chinese painting, Hong Kong comic, retro comic, animated 3D)."
    ),
    description_zh="将人物照片转换为卡通形象，支持日漫、3D、手绘、铅笔画、艺术特效、国画、港漫、漫画风、动画3D共9种风格。",
    description_for_model=(
        "Use to cartoonise people in a photo (up to 5 faces, whole body included). Send ImageURL and optionally "
        "AlgoType: anime (Japanese anime, default), 3d, handdrawn, sketch (pencil), artstyle, claborate (Chinese "
        "painting), hongkong (Hong Kong comic), comic (retro comic) or animation3d. Returns ImageURL. For a "
        "black-and-white head sketch use sketch-style-portrait."
    ),
    category="face-editing",
    keywords=[
        "anime style",
        "cartoon portrait",
        "photo to anime",
        "cartoonize photo",
        "anime avatar",
        "人物动漫化",
        "动漫头像",
        "卡通化",
        "日漫风",
        "港漫",
    ],
    aliases=["GenerateHumanAnimeStyle", "anime filter", "cartoon yourself", "动漫化"],
    use_cases=[
        "Generate cartoon avatars from user selfies",
        "Anonymise people in a photo while keeping it fun to share",
        "Create themed campaign images in anime or comic style",
    ],
    limitations=[
        "Up to 5 faces, each at least 60x60 pixels and turned less than 45 degrees",
        "Sent as query parameters with an empty body (SDK behaviour); keep URLs short",
        RESULT_URL_EXPIRES,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*EDITING_TAGS, "style-transfer", "cartoon", "generative"],
    related_services=["sketch-style-portrait", "face-fusion", "face-beauty-retouching"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="3500ms",
    cacheable=False,
    idempotent=True,
    limits={"maxBytes": 3145728, "formats": ["JPG", "JPEG", "PNG"], "minSide": 32, "maxSide": 1999},
    example_request={"ImageURL": PORTRAIT_URL, "AlgoType": "hongkong"},
    example_result={"ImageURL": RESULT_IMAGE_URL},
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of a photo with up to 5 clear faces."},
        "AlgoType": {
            "enum": ANIME_STYLES,
            "description": (
                "Cartoon style: anime (Japanese anime, default), 3d, handdrawn, sketch (pencil), artstyle (art "
                "effect), claborate (Chinese painting), hongkong (Hong Kong comic), comic, animation3d."
            ),
        },
    },
)

GENERATE_HUMAN_SKETCH_STYLE = ToolCuration(
    name="Sketch-Style Portrait",
    name_zh="人像素描风格化",
    description="Turns a single-person photo into a pencil-sketch head portrait (512x512 output).",
    description_zh="将单人照片的头部区域生成素描画效果的大头照，输出512x512像素。",
    description_for_model=(
        "Use to create a pencil-sketch portrait of one person. Send ImageURL of a clear, frontal single-person "
        "photo and optionally ReturnType (e.g. head, the head portrait). Returns ImageURL of a 512x512 sketch. For "
        "colourful cartoon styles use anime-style-portrait."
    ),
    category="face-editing",
    keywords=[
        "sketch portrait",
        "pencil sketch",
        "photo to sketch",
        "line drawing portrait",
        "人像素描",
        "素描风格",
        "素描头像",
        "铅笔画",
    ],
    aliases=["GenerateHumanSketchStyle", "sketch filter", "portrait drawing", "素描化"],
    use_cases=[
        "Create sketch-style profile pictures",
        "Produce artistic prints or gifts from a portrait",
    ],
    limitations=[
        "One clear, frontal face (turned less than 45 degrees, at least 60x60 pixels)",
        "Output is a fixed 512x512 head portrait",
        RESULT_URL_EXPIRES,
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*EDITING_TAGS, "style-transfer", "sketch", "generative"],
    related_services=["anime-style-portrait", "face-enhancement", "face-fusion"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="3000ms",
    cacheable=False,
    idempotent=True,
    limits={"maxBytes": 10485760, "formats": ["JPG", "JPEG", "PNG"], "minSide": 100, "maxSide": 1999},
    example_request={"ImageURL": PORTRAIT_URL, "ReturnType": "head"},
    example_result={"ImageURL": RESULT_IMAGE_URL},
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of a clear single-person photo."},
        "ReturnType": {"description": "Output framing; `head` returns the head portrait (Alibaba's example value)."},
    },
)

FACE_EDITING = {
    "BlurFace": BLUR_FACE,
    "EnhanceFace": ENHANCE_FACE,
    "FaceBeauty": FACE_BEAUTY,
    "LiquifyFace": LIQUIFY_FACE,
    "RetouchSkin": RETOUCH_SKIN,
    "GenerateHumanAnimeStyle": GENERATE_HUMAN_ANIME_STYLE,
    "GenerateHumanSketchStyle": GENERATE_HUMAN_SKETCH_STYLE,
}
