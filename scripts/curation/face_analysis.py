"""Face analysis: detection, attributes, expressions, celebrities and public figures, fingerprints, deepfakes."""

from __future__ import annotations

from scripts.curation.example_geometry import FACE_A, FACE_B, IMAGE_HEIGHT, IMAGE_WIDTH, landmarks, pupils
from scripts.curation.model import ToolCuration
from scripts.curation.texts import (
    CREDENTIALS,
    DEFAULT_QPS,
    GROUP_PHOTO_URL,
    IMAGE_URL_CONTEXT,
    LARGEST_FACE,
    NO_FILE_UPLOAD,
    PORTRAIT_URL,
    URL_MUST_BE_REACHABLE,
)

PORTRAIT_FACE = [402, 156, 238, 301]

DETECT_FACE = ToolCuration(
    name="Face Detection and Landmarks",
    name_zh="人脸检测与五官定位",
    description=(
        "Finds every face in a photo and returns its bounding box, detection confidence and, on request, "
        "105 facial landmarks, head pose angles, pupil positions and quality scores."
    ),
    description_zh="检测图片中的所有人脸，返回人脸框和置信度，并可按需返回105个五官关键点、头部姿态、瞳孔位置和质量分。",
    description_for_model=(
        "Use to locate faces before cropping, counting, alignment or quality gating. Send ImageURL; set "
        "Landmark, Pose and Quality to true for the extra arrays. Results are flat arrays: FaceRectangles holds "
        "[left, top, width, height] per face, PoseList [yaw, pitch, roll] per face, Pupils [x, y, r, x, y, r] per "
        "face, Landmarks 105 (x, y) points = 210 numbers per face. Does not identify people (use "
        "face-attribute-recognition for age/gender, face-database-search for identity)."
    ),
    category="face-analysis",
    keywords=[
        "face detection",
        "detect faces",
        "face bounding box",
        "facial landmarks",
        "105 landmarks",
        "head pose",
        "face quality score",
        "人脸检测",
        "人脸定位",
        "五官定位",
        "人脸关键点",
        "人脸质量",
    ],
    aliases=["DetectFace", "face locator", "face landmark detection", "人脸检测定位", "人脸框检测"],
    use_cases=[
        "Crop or blur faces after locating them",
        "Reject selfies that are blurred, badly lit or turned away before enrolment",
        "Count faces in a group photo",
        "Align faces for downstream recognition using the landmarks and pose angles",
    ],
    limitations=[
        "Returns geometry and quality only; it does not say who the person is",
        "Faces smaller than about 64x64 pixels may be missed",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=["computer-vision", "face", "detection", "landmarks", "pose", "quality"],
    related_services=[
        "face-attribute-recognition",
        "face-comparison",
        "face-blur",
        "facial-expression-recognition",
    ],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="900ms",
    cacheable=True,
    idempotent=True,
    limits={"maxBytes": 31457280, "formats": ["JPEG", "JPG", "PNG", "BMP"], "minSide": 32, "maxSide": 8192},
    example_request={"ImageURL": GROUP_PHOTO_URL, "Landmark": True, "MaxFaceNumber": 5, "Pose": True, "Quality": True},
    example_result={
        "FaceCount": 2,
        "FaceRectangles": FACE_A + FACE_B,
        "FaceProbabilityList": [0.998, 0.991],
        "PoseList": [-6.42, 4.18, 1.73, 11.27, -2.35, -3.06],
        "Pupils": pupils(FACE_A) + pupils(FACE_B),
        "LandmarkCount": 105,
        "Landmarks": landmarks(FACE_A) + landmarks(FACE_B),
        "LandmarkScore": [0.962, 0.947],
        "Qualities": {
            "ScoreList": [91.4, 84.7],
            "BlurList": [96.2, 88.5],
            "FnfList": [99.1, 98.4],
            "GlassList": [97.8, 99.0],
            "IlluList": [88.3, 79.6],
            "MaskList": [99.5, 99.2],
            "NoiseList": [93.1, 90.2],
            "PoseList": [94.6, 87.9],
        },
    },
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of the photo to search for faces."},
        "Landmark": {"description": "Set true to return 105 landmark points per face (Landmarks, LandmarkCount)."},
        "MaxFaceNumber": {
            "minimum": 1,
            "description": "Maximum number of faces to return; the largest faces are kept.",
        },
        "Pose": {"description": "Set true to return head pose per face in PoseList as [yaw, pitch, roll] degrees."},
        "Quality": {"description": "Set true to return per-face quality scores (0-100) in Qualities."},
    },
)

RECOGNIZE_FACE = ToolCuration(
    name="Face Attribute Recognition",
    name_zh="人脸属性识别",
    description=(
        "Detects faces and estimates attributes for each: age, gender, smile, glasses, hat, mask, a beauty score "
        "and image quality, plus landmarks and head pose."
    ),
    description_zh="检测人脸并识别每张脸的年龄、性别、表情(是否微笑)、眼镜、帽子、口罩、颜值分和图像质量，同时返回关键点与姿态。",
    description_for_model=(
        "Use when you need demographic or appearance attributes of the faces in one image. Send ImageURL and set "
        "the attribute flags you need (Age, Gender, Expression, Glass, Hat, Mask, Beauty, Quality) to true. "
        "Lists are per face in FaceRectangles order: AgeList (years), GenderList (0 female, 1 male), Expressions "
        "(0 neutral, 1 smiling), Glasses (0 none, 1 glasses, 2 sunglasses), HatList and Masks (0 no, 1 yes), "
        "BeautyList (0-100). For fine-grained emotions use facial-expression-recognition."
    ),
    category="face-analysis",
    keywords=[
        "face attributes",
        "age estimation",
        "gender detection",
        "glasses detection",
        "mask detection",
        "beauty score",
        "人脸属性",
        "年龄识别",
        "性别识别",
        "颜值打分",
        "口罩识别",
    ],
    aliases=["RecognizeFace", "face attribute analysis", "age and gender recognition", "人脸属性分析"],
    use_cases=[
        "Estimate audience age and gender in marketing photos",
        "Check whether people wear masks, hats or sunglasses",
        "Pick the most photogenic shot from a burst using the beauty and quality scores",
    ],
    limitations=[
        "Age and gender are statistical estimates and can be wrong; do not use them for legal decisions",
        "Attributes are only returned for the flags you set to true",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=["computer-vision", "face", "attributes", "age", "gender", "demographics"],
    related_services=["face-detection", "facial-expression-recognition", "face-beauty-retouching"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1000ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={
        "ImageURL": PORTRAIT_URL,
        "Age": True,
        "Beauty": True,
        "Expression": True,
        "Gender": True,
        "Glass": True,
        "Hat": True,
        "Mask": True,
        "MaxFaceNumber": 3,
        "Quality": True,
    },
    example_result={
        "FaceCount": 1,
        "FaceRectangles": PORTRAIT_FACE,
        "FaceProbabilityList": [0.997],
        "PoseList": [3.12, -5.41, 0.88],
        "Pupils": pupils(PORTRAIT_FACE),
        "LandmarkCount": 105,
        "Landmarks": landmarks(PORTRAIT_FACE),
        "AgeList": [31],
        "GenderList": [0],
        "Expressions": [1],
        "Glasses": [0],
        "HatList": [0],
        "Masks": [0],
        "BeautyList": [78.6],
        "Qualities": {
            "ScoreList": [93.2],
            "BlurList": [97.1],
            "FnfList": [99.3],
            "GlassList": [98.8],
            "IlluList": [90.4],
            "MaskList": [99.6],
            "NoiseList": [95.0],
            "PoseList": [96.2],
        },
    },
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of the photo whose faces to analyse."},
        "Age": {"description": "Set true to return the estimated age (years) per face in AgeList."},
        "Beauty": {"description": "Set true to return a 0-100 attractiveness score per face in BeautyList."},
        "Expression": {"description": "Set true to return Expressions per face (0 neutral, 1 smiling)."},
        "Gender": {"description": "Set true to return GenderList per face (0 female, 1 male)."},
        "Glass": {"description": "Set true to return Glasses per face (0 none, 1 glasses, 2 sunglasses)."},
        "Hat": {"description": "Set true to return HatList per face (0 no hat, 1 hat)."},
        "Mask": {"description": "Set true to return Masks per face (0 no mask, 1 mask)."},
        "MaxFaceNumber": {"minimum": 1, "description": "Maximum number of faces to analyse, largest first."},
        "Quality": {"description": "Set true to return per-face quality scores (0-100) in Qualities."},
    },
)

RECOGNIZE_EXPRESSION = ToolCuration(
    name="Facial Expression Recognition",
    name_zh="人脸表情识别",
    description=(
        "Recognises the facial expression of every face in a photo (neutral, happiness, surprise, sadness, anger, "
        "disgust, fear, pouty, grimace) with the face box and a confidence."
    ),
    description_zh="识别图片中每张人脸的表情（中性、高兴、惊讶、伤心、生气、厌恶、害怕、嘟嘴、鬼脸），返回人脸框和置信度。",
    description_for_model=(
        "Use to read emotions from faces in an image. Send ImageURL. Each item of Elements has Expression (one of "
        "neutral, happiness, surprise, sadness, anger, disgust, fear, pouty, grimace), FaceProbability (0-1) and "
        "FaceRectangle {Left, Top, Width, Height}. For a simple smile/no-smile flag together with age and gender "
        "use face-attribute-recognition."
    ),
    category="face-analysis",
    keywords=[
        "facial expression recognition",
        "emotion detection",
        "emotion recognition",
        "smile detection",
        "happy sad angry",
        "表情识别",
        "情绪识别",
        "人脸表情",
        "微笑检测",
    ],
    aliases=["RecognizeExpression", "emotion analysis", "face emotion API", "人脸情绪分析"],
    use_cases=[
        "Measure audience reactions in event or classroom photos",
        "Tag photo libraries by mood",
        "Pick shots where everyone is smiling",
    ],
    limitations=[
        "Classifies posed, clearly visible expressions; subtle or mixed emotions are reduced to one label",
        "Faces must be at least about 64x64 pixels",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=["computer-vision", "face", "emotion", "expression"],
    related_services=["face-attribute-recognition", "face-detection", "action-recognition"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="800ms",
    cacheable=True,
    idempotent=True,
    limits={
        "maxBytes": 3145728,
        "formats": ["JPEG", "JPG", "BMP", "PNG", "TIF", "WEBP"],
        "minSide": 5,
        "maxSide": 2048,
    },
    example_request={"ImageURL": GROUP_PHOTO_URL},
    example_result={
        "Elements": [
            {
                "Expression": "happiness",
                "FaceProbability": 0.996,
                "FaceRectangle": {"Left": 212, "Top": 168, "Width": 186, "Height": 232},
            },
            {
                "Expression": "neutral",
                "FaceProbability": 0.981,
                "FaceRectangle": {"Left": 618, "Top": 205, "Width": 160, "Height": 201},
            },
        ]
    },
    field_schemas={"ImageURL": {"description": "Public http or https image URL of the photo whose faces to read."}},
)

DETECT_CELEBRITY = ToolCuration(
    name="Celebrity Recognition",
    name_zh="明星识别",
    description="Recognises well-known celebrities in a photo and returns their names with face boxes.",
    description_zh="识别图片中的知名明星，返回姓名和人脸框位置。",
    description_for_model=(
        "Use to name famous entertainment or sports personalities in an image. Send ImageURL. The result has "
        "Width/Height of the image and FaceRecognizeResults with Name and FaceBoxes [left, top, width, height]. "
        "Only faces found in Alibaba's celebrity gallery get a name; ordinary people are not identified "
        "(use face-database-search with your own gallery for that)."
    ),
    category="face-analysis",
    keywords=[
        "celebrity recognition",
        "recognize celebrities",
        "famous people",
        "star recognition",
        "名人识别",
        "明星识别",
        "明星脸",
        "识别公众人物",
    ],
    aliases=["DetectCelebrity", "celebrity detection", "who is this celebrity", "明星人脸识别"],
    use_cases=[
        "Tag celebrities in entertainment news images",
        "Index a media archive by the stars who appear in it",
        "Detect unlicensed use of a celebrity's likeness in ads",
    ],
    limitations=[
        "Only recognises people in Alibaba's celebrity gallery, with mostly Chinese entertainment coverage",
        "Names are returned as Alibaba stores them (often Chinese)",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=["computer-vision", "face", "recognition", "celebrity", "media"],
    related_services=["public-figure-recognition", "face-detection", "face-database-search"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="1100ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={"ImageURL": "https://example.com/images/red-carpet.jpg"},
    example_result={
        "Width": IMAGE_WIDTH,
        "Height": IMAGE_HEIGHT,
        "FaceRecognizeResults": [{"Name": "成龙", "FaceBoxes": [468.0, 142.0, 171.0, 214.0]}],
    },
    field_schemas={"ImageURL": {"description": "Public http or https image URL of the photo to scan for celebrities."}},
)

RECOGNIZE_PUBLIC_FACE = ToolCuration(
    name="Public Figure Recognition (Content Review)",
    name_zh="公众人物识别",
    description=(
        "Checks images for sensitive public figures for content moderation and returns a label, a review "
        "suggestion and the matched person for each face."
    ),
    description_zh="面向内容审核，识别图片中的敏感公众人物，返回标签、处置建议以及每张人脸匹配到的人物。",
    description_for_model=(
        "Use for content moderation of user uploads when you must flag sensitive public figures (for example "
        "politicians). Send Task: a list of images, each with ImageURL or base64 ImageData. Each item of Elements "
        "has Results with Label (e.g. sface), Suggestion (pass, review or block), Rate (0-100) and SubResults "
        "giving the face box (X, Y, W, H) and Faces [{Name, Id, Rate}]. For celebrity tagging use "
        "celebrity-recognition instead."
    ),
    category="face-analysis",
    keywords=[
        "public figure recognition",
        "sensitive person detection",
        "politician detection",
        "content moderation",
        "image review",
        "公众人物识别",
        "敏感人物识别",
        "涉政人物",
        "内容审核",
    ],
    aliases=["RecognizePublicFace", "sensitive face moderation", "public face recognition", "涉政人脸识别"],
    use_cases=[
        "Moderate user-generated images before publishing",
        "Flag memes or ads that use the face of a political figure",
        "Route borderline images to human review using Suggestion=review",
    ],
    limitations=[
        "Built for moderation in mainland China: the gallery and labels follow Alibaba's review policy",
        "Treat Suggestion=review as a hint for human review, not a final verdict",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=["computer-vision", "face", "content-moderation", "recognition", "compliance"],
    related_services=["celebrity-recognition", "deepfake-detection", "face-blur"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1300ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={"Task": [{"ImageURL": "https://example.com/uploads/post-48213.jpg"}]},
    example_result={
        "Elements": [
            {
                "TaskId": "img3dhYqt1e4wO77Wnf2y@t@E-1tYAEt",
                "ImageURL": "https://example.com/uploads/post-48213.jpg",
                "Results": [
                    {
                        "Label": "sface",
                        "Suggestion": "review",
                        "Rate": 98.35,
                        "SubResults": [
                            {
                                "X": 182.0,
                                "Y": 153.0,
                                "W": 132.0,
                                "H": 153.0,
                                "Faces": [{"Name": "示例人物", "Id": "AliFace_0006272", "Rate": 98.35}],
                            }
                        ],
                    }
                ],
            }
        ]
    },
    item_any_of={"Task": [["ImageURL", "ImageData"]]},
    field_schemas={
        "Task": {
            "description": "Images to check, each with ImageURL or base64 ImageData. Send at least one task.",
        },
        "Task.ImageURL": {"description": "Public http or https image URL of one image to check."},
        "Task.ImageData": {"description": "Base64-encoded image bytes, instead of ImageURL."},
    },
)

EXTRACT_FINGER_PRINT = ToolCuration(
    name="Face Fingerprint Extraction",
    name_zh="人脸指纹提取",
    description=(
        "Extracts a compact feature fingerprint of the face in an image, for storing and comparing faces in "
        "your own system."
    ),
    description_zh="提取图片中人脸的特征指纹（特征向量编码），便于在自有系统中存储和比对人脸。",
    description_for_model=(
        "Use when you need a reusable face feature string rather than a yes/no comparison. Send ImageURL or "
        "base64 ImageData. Returns FingerPrint, an encoded feature of the largest face; store it and compare "
        "fingerprints from the same model version in your own code. For a direct 1:1 score use face-comparison; "
        "for 1:N search Alibaba hosts the gallery in face-database-search."
    ),
    category="face-analysis",
    keywords=[
        "face fingerprint",
        "face embedding",
        "face feature vector",
        "face template extraction",
        "人脸指纹",
        "人脸特征提取",
        "人脸特征值",
        "人脸向量",
    ],
    aliases=["ExtractFingerPrint", "face feature extraction", "face embedding API", "指纹提取"],
    use_cases=[
        "Store face features instead of photos to reduce privacy exposure",
        "Deduplicate user accounts by comparing fingerprints offline",
        "Build a custom face index in your own vector store",
    ],
    limitations=[
        "The fingerprint format is Alibaba's; only compare fingerprints produced by this same service",
        LARGEST_FACE,
        "Face features are biometric personal data: store them under your privacy obligations",
        NO_FILE_UPLOAD,
    ],
    tags=["computer-vision", "face", "embedding", "features", "biometrics"],
    related_services=["face-comparison", "face-database-add-face", "face-database-search"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="800ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={"ImageURL": PORTRAIT_URL},
    example_result={
        "FingerPrint": (
            "AQIAAAAAgD+9mMk+Ck1YPbh2sL0xK9c9fI6Hvt2aHz5mEqu9lI0GP0v0Jr2S3xS+0R8yPjn6Rb5wq1g9"
            "a1Q4vs9nXj3u3Yy9CqR7PgZ3Fb5H2Qy+3kq4PXl2G77f0Bc+U2iZPZk1sr0="
        )
    },
    any_of=[["ImageURL", "ImageData"]],
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of a photo with one clear face."},
        "ImageData": {"description": "Base64-encoded image bytes, instead of ImageURL."},
    },
)

DEEPFAKE_FACE = ToolCuration(
    name="Deepfake Face Detection",
    name_zh="换脸鉴别",
    description=(
        "Checks whether faces in an image were produced or altered by AI face swapping or face editing, with a "
        "label and confidence per face."
    ),
    description_zh="鉴别图片中的人脸是否为AI换脸或人脸属性编辑算法深度合成的假脸，逐脸返回标签和置信度。",
    description_for_model=(
        "Use to screen photos (selfies, ID onboarding images, news pictures) for AI face swaps or synthetic faces. "
        "Send Tasks: a list of images, each with ImageURL or base64 ImageData; each task is billed. Each item of "
        "Elements has FaceNumber and Results with Label (normalface for a genuine face), Confidence, Rect and "
        "MessageTips (e.g. blurred or occluded face). Liveness (is this a live person in front of the camera) is "
        "a different question: use face-liveness-detection."
    ),
    category="face-analysis",
    keywords=[
        "deepfake detection",
        "face swap detection",
        "fake face detection",
        "AI generated face",
        "synthetic face",
        "换脸鉴别",
        "深度伪造检测",
        "AI换脸识别",
        "假脸检测",
    ],
    aliases=["DeepfakeFace", "deepfake checker", "face forgery detection", "人脸伪造鉴别"],
    use_cases=[
        "Screen onboarding selfies for face-swap fraud",
        "Verify that news or social media photos are not AI face swaps",
        "Audit image libraries for synthetic faces",
    ],
    limitations=[
        "Works on still images; for videos extract frames first",
        "Blurred, occluded or strongly turned faces reduce accuracy (see MessageTips)",
        "Each task in Tasks is billed separately",
        URL_MUST_BE_REACHABLE,
    ],
    tags=["computer-vision", "face", "deepfake", "fraud-prevention", "forensics"],
    related_services=["face-liveness-detection", "face-liveness-v2", "public-figure-recognition", "face-comparison"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1500ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={"Tasks": [{"ImageURL": PORTRAIT_URL}]},
    example_result={
        "Elements": [
            {
                "TaskId": "8E6F65D5-62A1-1E5B-BC0B-00508034AC92",
                "ImageURL": PORTRAIT_URL,
                "FaceNumber": 1,
                "Results": [
                    {
                        "Label": "normalface",
                        "Confidence": 36.6455,
                        "MessageTips": "",
                        "Rect": {"Left": 402, "Top": 156, "Width": 238, "Height": 301},
                    }
                ],
            }
        ]
    },
    item_any_of={"Tasks": [["ImageURL", "ImageData"]]},
    field_schemas={
        "Tasks": {"description": "Images to check, each with ImageURL or base64 ImageData; each task is billed."},
        "Tasks.ImageURL": {"description": "Public http or https image URL of one image to check."},
        "Tasks.ImageData": {"description": "Base64-encoded image bytes, instead of ImageURL."},
    },
)

FACE_ANALYSIS = {
    "DetectFace": DETECT_FACE,
    "RecognizeFace": RECOGNIZE_FACE,
    "RecognizeExpression": RECOGNIZE_EXPRESSION,
    "DetectCelebrity": DETECT_CELEBRITY,
    "RecognizePublicFace": RECOGNIZE_PUBLIC_FACE,
    "ExtractFingerPrint": EXTRACT_FINGER_PRINT,
    "DeepfakeFace": DEEPFAKE_FACE,
}
