"""Face fusion: merge a user's face into a template image, and manage the templates."""

from __future__ import annotations

from scripts.curation.model import ToolCuration
from scripts.curation.texts import (
    CREDENTIALS,
    IMAGE_URL_CONTEXT,
    PORTRAIT_URL,
    RESULT_IMAGE_URL,
    RESULT_URL_EXPIRES,
    URL_MUST_BE_REACHABLE,
)

TEMPLATE_ID = "6cd509ea-54fa-4730-8e9d-c94cadcda048"
TEMPLATE_IMAGE_URL = "https://example.com/templates/hanfu-studio-shot.jpg"
TEMPLATE_CONTEXT = "face-template"
FUSION_LIMITS = {"maxBytes": 20971520, "formats": ["JPG", "JPEG", "PNG"], "minSide": 128, "maxSide": 2000}
TEMPLATE_FACES = [
    {"TemplateFaceID": f"{TEMPLATE_ID}_0", "FaceRect": {"X": "318", "Y": "142", "Width": "164", "Height": "211"}},
    {"TemplateFaceID": f"{TEMPLATE_ID}_1", "FaceRect": {"X": "604", "Y": "171", "Width": "151", "Height": "196"}},
]
TEMPLATE_ID_SCHEMA = {"description": "Template id returned by face-template-create, e.g. a UUID."}

MERGE_IMAGE_FACE = ToolCuration(
    name="Face Fusion (Face Merge into Template)",
    name_zh="图像人脸融合",
    description=(
        "Merges a user's face into the face position of a template image, producing a new picture that keeps "
        "the template's pose, expression and skin tone with the user's facial identity."
    ),
    description_zh="将用户图中的人脸融合到模板图的人脸位置，生成保留模板姿态、表情和肤色但具有用户五官特征的新图片。",
    description_for_model=(
        "Use for 'put my face on this picture' effects (costume photos, try-on posters). First create a template "
        "with face-template-create to get TemplateId (and TemplateFaceID per face). Then send TemplateId plus "
        "either ImageURL (the user's face, applied to the template) or MergeInfos, a list of {ImageURL, "
        "TemplateFaceID} to fill specific faces of a multi-face template. Returns ImageURL. Only use images you "
        "have consent for."
    ),
    category="face-fusion",
    keywords=[
        "face fusion",
        "face merge",
        "face swap into template",
        "put my face on",
        "costume photo",
        "人脸融合",
        "图像人脸融合",
        "换脸模板",
        "人脸替换",
    ],
    aliases=["MergeImageFace", "face merge API", "template face swap", "融合换脸"],
    use_cases=[
        "Create personalised costume or movie-poster photos from a selfie",
        "Let photo-studio customers preview sample shots with their own face",
        "Fill several faces of a group template with different users",
    ],
    limitations=[
        "Requires a template created with face-template-create in the same Alibaba account",
        "You must hold rights to both the template and the user image; never use it to impersonate someone",
        RESULT_URL_EXPIRES,
        URL_MUST_BE_REACHABLE,
    ],
    tags=["computer-vision", "face", "face-fusion", "generative", "image-editing"],
    related_services=["face-template-create", "face-template-query", "anime-style-portrait", "deepfake-detection"],
    required_context=[IMAGE_URL_CONTEXT, TEMPLATE_CONTEXT, CREDENTIALS],
    complexity="complex",
    typical_response_time="3000ms",
    cacheable=False,
    idempotent=True,
    limits=FUSION_LIMITS,
    example_request={"TemplateId": TEMPLATE_ID, "ImageURL": PORTRAIT_URL, "AddWatermark": True},
    example_result={"ImageURL": RESULT_IMAGE_URL},
    any_of=[["ImageURL", "MergeInfos"]],
    item_any_of={"MergeInfos": [["ImageURL"], ["TemplateFaceID"]]},
    field_schemas={
        "TemplateId": TEMPLATE_ID_SCHEMA,
        "ImageURL": {"description": "Public http or https image URL of the user's face to merge into the template."},
        "MergeInfos": {
            "description": "For multi-face templates: which user face goes into which template face.",
        },
        "MergeInfos.ImageURL": {"description": "Public http or https image URL of the user's face for this slot."},
        "MergeInfos.TemplateFaceID": {
            "description": "Template face to replace, e.g. `<TemplateId>_0`, from face-template-create or -query.",
        },
        "AddWatermark": {"description": "Set true to add a visible watermark to the fused image."},
        "WatermarkType": {"description": "Watermark style used when AddWatermark is true."},
        "ModelVersion": {"description": "Fusion model version, e.g. `v1`; leave unset for Alibaba's default."},
    },
)

ADD_FACE_IMAGE_TEMPLATE = ToolCuration(
    name="Create Face-Fusion Template",
    name_zh="新增人脸融合模板",
    description=(
        "Registers an image as a face-fusion template and returns its TemplateId and the id and position of "
        "every face found in it."
    ),
    description_zh="将一张图片登记为人脸融合模板，返回模板ID以及图中每张人脸的ID和位置。",
    description_for_model=(
        "Use once per template image before calling face-fusion. Send ImageURL of the template picture (up to "
        "about 5 clear faces). Returns TemplateId and FaceInfos [{TemplateFaceID, FaceRect {X, Y, Width, Height}}] "
        "(FaceRect values are strings). The template is stored in the Alibaba account until deleted with "
        "face-template-delete."
    ),
    category="face-fusion",
    keywords=[
        "create face fusion template",
        "add template",
        "register template image",
        "face merge template",
        "新增融合模板",
        "人脸融合模板",
        "添加模板",
        "模板上传",
    ],
    aliases=["AddFaceImageTemplate", "upload fusion template", "图像人脸融合模板增加"],
    use_cases=[
        "Register costume, poster or studio sample images for face fusion",
        "Find the TemplateFaceID of each face in a group template",
    ],
    limitations=[
        "Template faces should be clear, larger than 64x64 pixels and turned less than about 30 degrees",
        "Creates stored state in the Alibaba account; delete unused templates",
        URL_MUST_BE_REACHABLE,
    ],
    tags=["computer-vision", "face", "face-fusion", "template-management"],
    related_services=["face-fusion", "face-template-query", "face-template-delete"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="1500ms",
    cacheable=False,
    idempotent=False,
    limits=FUSION_LIMITS,
    example_request={"ImageURL": TEMPLATE_IMAGE_URL},
    example_result={"TemplateId": TEMPLATE_ID, "FaceInfos": TEMPLATE_FACES},
    field_schemas={"ImageURL": {"description": "Public http or https image URL of the template picture."}},
)

DELETE_FACE_IMAGE_TEMPLATE = ToolCuration(
    name="Delete Face-Fusion Template",
    name_zh="删除人脸融合模板",
    description="Deletes a face-fusion template by TemplateId.",
    description_zh="按模板ID删除人脸融合模板。",
    description_for_model=(
        "Use to remove a template created with face-template-create when it is no longer needed. Send TemplateId. "
        "Returns an empty result on success; later face-fusion calls with that id fail."
    ),
    category="face-fusion",
    keywords=[
        "delete face fusion template",
        "remove template",
        "delete template",
        "删除融合模板",
        "删除模板",
        "人脸融合模板删除",
    ],
    aliases=["DeleteFaceImageTemplate", "remove fusion template", "图像人脸融合模板删除"],
    use_cases=["Clean up expired campaign templates", "Remove a template whose image rights have ended"],
    limitations=["Irreversible: the template and its face ids are gone", "Only templates of the same Alibaba account"],
    tags=["face", "face-fusion", "template-management", "delete"],
    related_services=["face-template-query", "face-template-create", "face-fusion"],
    required_context=[TEMPLATE_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=False,
    limits={},
    example_request={"TemplateId": TEMPLATE_ID},
    example_result={},
    field_schemas={"TemplateId": {"description": "Id of the template to delete, from face-template-create."}},
)

QUERY_FACE_IMAGE_TEMPLATE = ToolCuration(
    name="Query Face-Fusion Templates",
    name_zh="查询人脸融合模板",
    description="Lists the account's face-fusion templates, or fetches one by TemplateId, with their face ids.",
    description_zh="分页列出账号下的人脸融合模板，或按模板ID查询单个模板及其人脸信息。",
    description_for_model=(
        "Use to find TemplateId/TemplateFaceID values for face-fusion or to audit templates. Send TemplateId for "
        "one template, or page with PageNo (1-5000, default 1) and PageSize (1-500, default 100). Returns Total "
        "and Elements [{TemplateId, TemplateURL, CreateTime, UpdateTime, UserId, FaceInfos}]. Sent as an HTTP GET "
        "by the SDK."
    ),
    category="face-fusion",
    keywords=[
        "list face fusion templates",
        "query template",
        "get template faces",
        "template list",
        "查询融合模板",
        "模板列表",
        "人脸融合模板查询",
    ],
    aliases=["QueryFaceImageTemplate", "list fusion templates", "图像人脸融合模板查询"],
    use_cases=[
        "Look up the TemplateFaceID of each face before a multi-face fusion",
        "Audit and clean up templates in an account",
    ],
    limitations=["Only templates of the same Alibaba account", "TemplateURL may be a temporary signed URL"],
    tags=["face", "face-fusion", "template-management", "query"],
    related_services=["face-template-create", "face-template-delete", "face-fusion"],
    required_context=[CREDENTIALS],
    complexity="simple",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=True,
    limits={},
    example_request={"PageNo": 1, "PageSize": 20},
    example_result={
        "Total": 1,
        "Elements": [
            {
                "TemplateId": TEMPLATE_ID,
                "TemplateURL": TEMPLATE_IMAGE_URL,
                "CreateTime": "2025-03-18 10:19:05",
                "UpdateTime": "2025-03-18 10:19:05",
                "UserId": "1234567890123456",
                "FaceInfos": TEMPLATE_FACES,
            }
        ],
    },
    field_schemas={
        "TemplateId": {"description": "Template to fetch; leave unset to list all templates page by page."},
        "PageNo": {"minimum": 1, "maximum": 5000, "description": "Page number, 1-5000 (default 1)."},
        "PageSize": {"minimum": 1, "maximum": 500, "description": "Templates per page, 1-500 (default 100)."},
    },
)

FACE_FUSION = {
    "MergeImageFace": MERGE_IMAGE_FACE,
    "AddFaceImageTemplate": ADD_FACE_IMAGE_TEMPLATE,
    "DeleteFaceImageTemplate": DELETE_FACE_IMAGE_TEMPLATE,
    "QueryFaceImageTemplate": QUERY_FACE_IMAGE_TEMPLATE,
}
