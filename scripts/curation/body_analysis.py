"""Body analysis: pose keypoints, counting, pedestrians and their attributes, actions, exam proctoring."""

from __future__ import annotations

from scripts.curation.example_geometry import IMAGE_HEIGHT, IMAGE_WIDTH, body_keypoints
from scripts.curation.model import ToolCuration
from scripts.curation.texts import (
    CREDENTIALS,
    DEFAULT_QPS,
    IMAGE_URL_CONTEXT,
    STREET_URL,
    URL_MUST_BE_REACHABLE,
    VIDEO_URL_CONTEXT,
)

BODY_TAGS = ["computer-vision", "body", "person"]

BODY_POSTURE = ToolCuration(
    name="Body Pose Estimation",
    name_zh="人体姿态关键点",
    description=(
        "Detects people in an image and returns 18 skeleton keypoints per person (nose, neck, shoulders, elbows, "
        "wrists, hips, knees, ankles, eyes, ears)."
    ),
    description_zh="检测图片中的人体，返回每个人18个骨骼关键点（鼻子、脖子、肩、肘、腕、髋、膝、踝、眼、耳）。",
    description_for_model=(
        "Use for skeleton / pose keypoints of people in a photo (fitness form checks, gesture or posture "
        "analysis). Send ImageURL. Result: MetaObject {Width, Height} and Outputs[0] with HumanCount and Results, "
        "one per person, each with Bodies: 18 keypoints {Label, Confident (0-1), Positions [{Points [x, y]}]} "
        "where x and y are fractions of the image width and height. For actions such as falling or phoning use "
        "action-recognition."
    ),
    category="body-analysis",
    keywords=[
        "pose estimation",
        "body keypoints",
        "skeleton detection",
        "human pose",
        "18 keypoints",
        "人体姿态",
        "姿态估计",
        "人体关键点",
        "骨骼点检测",
    ],
    aliases=["BodyPosture", "body posture", "pose keypoints", "人体姿态估计"],
    use_cases=[
        "Check exercise form in fitness apps",
        "Detect raised arms or sitting posture from keypoints",
        "Drive avatar animation from a photo",
    ],
    limitations=[
        "Coordinates are relative (0-1), not pixels: multiply by MetaObject Width/Height",
        "Occluded or cut-off limbs get low confidence or are missing",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=[*BODY_TAGS, "pose", "keypoints"],
    related_services=["action-recognition", "body-counting", "pedestrian-detection"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1200ms",
    cacheable=True,
    idempotent=True,
    limits={"maxBytes": 3145728, "formats": ["JPEG", "JPG", "BMP", "PNG"]},
    example_request={"ImageURL": "https://example.com/images/yoga-pose.jpg"},
    example_result={
        "MetaObject": {"Width": IMAGE_WIDTH, "Height": IMAGE_HEIGHT},
        "Outputs": [{"HumanCount": 1, "Results": [{"Bodies": body_keypoints()}]}],
    },
    field_schemas={"ImageURL": {"description": "Public http or https image URL of a photo showing people."}},
)

DETECT_BODY_COUNT = ToolCuration(
    name="People Counting",
    name_zh="人体计数",
    description="Counts the number of people in an image.",
    description_zh="统计图片中的人数。",
    description_for_model=(
        "Use when you only need how many people are in a photo (queue length, room occupancy, crowd size). Send "
        "ImageURL; returns PersonNumber. For boxes around each person use pedestrian-detection."
    ),
    category="body-analysis",
    keywords=[
        "people counting",
        "count people",
        "headcount",
        "occupancy",
        "crowd count",
        "人体计数",
        "人数统计",
        "人流统计",
        "数人头",
    ],
    aliases=["DetectBodyCount", "person counter", "body count", "人数检测"],
    use_cases=[
        "Measure room or store occupancy from a snapshot",
        "Estimate queue length",
        "Count attendees at an event",
    ],
    limitations=[
        "Heavily occluded or very small people may be missed in dense crowds",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=[*BODY_TAGS, "counting"],
    related_services=["pedestrian-detection", "body-pose-estimation", "pedestrian-attribute-recognition"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="700ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={"ImageURL": "https://example.com/images/store-entrance.jpg"},
    example_result={"PersonNumber": 7},
    field_schemas={"ImageURL": {"description": "Public http or https image URL of the scene to count people in."}},
)

DETECT_PEDESTRIAN = ToolCuration(
    name="Pedestrian Detection",
    name_zh="行人检测",
    description="Detects pedestrians in an image and returns a bounding box and confidence for each person.",
    description_zh="检测图片中的行人，返回每个人的检测框和置信度。",
    description_for_model=(
        "Use to locate every person in street, CCTV or store images. Send ImageURL. Returns Width, Height and "
        "Elements [{Type, Score (0-1), Boxes [x1, y1, x2, y2] in pixels}]. For clothing, age and gender of each "
        "person use pedestrian-attribute-recognition; for a plain count, body-counting."
    ),
    category="body-analysis",
    keywords=[
        "pedestrian detection",
        "person detection",
        "human detection",
        "detect people",
        "行人检测",
        "人体检测",
        "行人框",
    ],
    aliases=["DetectPedestrian", "person detector", "people detection", "人形检测"],
    use_cases=[
        "Find people in surveillance frames",
        "Crop people for re-identification",
        "Trigger alerts when people enter a zone",
    ],
    limitations=["Boxes are corner coordinates [x1, y1, x2, y2], not width/height", URL_MUST_BE_REACHABLE, DEFAULT_QPS],
    tags=[*BODY_TAGS, "detection", "surveillance"],
    related_services=["pedestrian-attribute-recognition", "body-counting", "face-blur"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="800ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={"ImageURL": STREET_URL},
    example_result={
        "Width": IMAGE_WIDTH,
        "Height": IMAGE_HEIGHT,
        "Elements": [
            {"Type": "pedestrian", "Score": 0.974, "Boxes": [132, 214, 241, 598]},
            {"Type": "pedestrian", "Score": 0.951, "Boxes": [566, 238, 661, 577]},
        ],
    },
    field_schemas={"ImageURL": {"description": "Public http or https image URL of the scene to search for people."}},
)

ATTRIBUTE_EXAMPLE = {
    "Gender": {"Name": "Female", "Score": 0.94},
    "Age": {"Name": "Age18-60", "Score": 0.91},
    "Orient": {"Name": "Front", "Score": 0.88},
    "Hat": {"Name": "No", "Score": 0.97},
    "Glasses": {"Name": "No", "Score": 0.83},
    "Handbag": {"Name": "Yes", "Score": 0.79},
    "ShoulderBag": {"Name": "No", "Score": 0.86},
    "Backpack": {"Name": "No", "Score": 0.92},
    "UpperWear": {"Name": "LongSleeve", "Score": 0.9},
    "UpperColor": {"Name": "White", "Score": 0.85},
    "LowerWear": {"Name": "Trousers", "Score": 0.89},
    "LowerColor": {"Name": "Black", "Score": 0.87},
}

PEDESTRIAN_DETECT_ATTRIBUTE = ToolCuration(
    name="Pedestrian Attribute Recognition",
    name_zh="行人属性识别",
    description=(
        "Detects pedestrians and describes each: gender, age group, orientation, hat, glasses, bags, upper and "
        "lower clothing type and colour."
    ),
    description_zh="检测行人并识别每个人的性别、年龄段、朝向、帽子、眼镜、包、上下装类型及颜色等属性。",
    description_for_model=(
        "Use to describe people's appearance in CCTV or street images (e.g. find 'woman in white long sleeves "
        "with a handbag'). Send ImageURL. Returns PersonNumber, Width, Height, Boxes [{TopLeftX, TopLeftY, "
        "BottomRightX, BottomRightY, Score}] and Attributes in the same order, each attribute as {Name, Score}."
    ),
    category="body-analysis",
    keywords=[
        "pedestrian attributes",
        "clothing recognition",
        "person attributes",
        "people search by appearance",
        "行人属性",
        "行人属性识别",
        "衣着识别",
        "人体属性",
    ],
    aliases=["PedestrianDetectAttribute", "person attribute recognition", "clothing color detection", "行人结构化"],
    use_cases=[
        "Search surveillance footage by clothing description",
        "Collect anonymous shopper demographics",
        "Tag street-fashion photos by garment type and colour",
    ],
    limitations=[
        "Attributes are estimates from appearance; small or occluded people give low scores",
        URL_MUST_BE_REACHABLE,
        DEFAULT_QPS,
    ],
    tags=[*BODY_TAGS, "attributes", "surveillance"],
    related_services=["pedestrian-detection", "body-counting", "face-attribute-recognition"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1100ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={"ImageURL": STREET_URL},
    example_result={
        "PersonNumber": 1,
        "Width": IMAGE_WIDTH,
        "Height": IMAGE_HEIGHT,
        "Boxes": [{"TopLeftX": 132.0, "TopLeftY": 214.0, "BottomRightX": 241.0, "BottomRightY": 598.0, "Score": 0.97}],
        "Attributes": [ATTRIBUTE_EXAMPLE],
    },
    field_schemas={"ImageURL": {"description": "Public http or https image URL of the scene with pedestrians."}},
)

RECOGNIZE_ACTION = ToolCuration(
    name="Human Action Recognition",
    name_zh="动作行为识别",
    description=(
        "Recognises human actions in a short video or 4 video frames: raising a hand, eating or drinking, "
        "smoking, phoning, playing with a phone, sleeping on a desk, falling, washing hands, taking photos."
    ),
    description_zh="识别短视频或4帧连续图像中的人体动作：举手、吃喝、吸烟、打电话、玩手机、趴桌睡觉、跌倒、洗手、拍照。",
    description_for_model=(
        "Use to detect behaviours in a 2-5 s clip. Type 0: send VideoUrl (or base64 VideoData) of a video longer "
        "than 2 s (only the first 5 s are analysed). Type 1: send URLList with exactly 4 frames sampled evenly "
        "from 2 s of the same video, each {URL} or {imageData} (base64). Elements give per time step Timestamp, "
        "Labels, Scores (0-1) and Boxes [{Box [x1, y1, x2, y2]}]; apply your own score threshold."
    ),
    category="body-analysis",
    keywords=[
        "action recognition",
        "behavior detection",
        "fall detection",
        "smoking detection",
        "phone use detection",
        "动作识别",
        "行为识别",
        "跌倒检测",
        "吸烟检测",
        "玩手机检测",
    ],
    aliases=["RecognizeAction", "activity recognition", "behaviour analysis", "动作行为识别"],
    use_cases=[
        "Driver monitoring: smoking, eating or phoning while driving",
        "Detect falls of elderly people from a home camera clip",
        "Spot phone use or sleeping in classrooms or workplaces",
    ],
    limitations=[
        "Video: 2-5 s, under 10 MB, 256x256 to 1280x720 (MPEG, AVI, MOV, MP4)",
        "Frames: exactly 4 frames from the same 2-second clip with identical size",
        "Best with a fixed camera 2-10 m from the people",
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*BODY_TAGS, "action", "video", "safety"],
    related_services=["body-pose-estimation", "exam-monitoring", "video-face-liveness-detection"],
    required_context=[VIDEO_URL_CONTEXT, CREDENTIALS],
    complexity="complex",
    typical_response_time="4000ms",
    cacheable=True,
    idempotent=True,
    limits={
        "maxBytes": 10485760,
        "formats": ["MPEG", "AVI", "MOV", "MP4", "JPEG", "JPG", "PNG", "BMP"],
        "minSide": 256,
        "maxSide": 1280,
    },
    example_request={"Type": 0, "VideoUrl": "https://example.com/videos/warehouse-cam-clip.mp4"},
    example_result={
        "Elements": [
            {"Timestamp": 1, "Labels": ["打电话"], "Scores": [0.91], "Boxes": [{"Box": [402, 118, 611, 540]}]},
            {"Timestamp": 3, "Labels": ["玩手机"], "Scores": [0.84], "Boxes": [{"Box": [398, 121, 606, 545]}]},
        ]
    },
    any_of=[["VideoUrl", "VideoData", "URLList"]],
    item_any_of={"URLList": [["URL", "imageData"]]},
    field_schemas={
        "Type": {
            "enum": [0, 1],
            "description": "Input kind: 0 = a video (VideoUrl or VideoData), 1 = 4 frames in URLList.",
        },
        "VideoUrl": {"description": "Public http or https video URL (2-5 s, under 10 MB) for Type 0."},
        "VideoData": {"description": "Base64-encoded video bytes for Type 0, instead of VideoUrl."},
        "URLList": {
            "minItems": 4,
            "maxItems": 4,
            "description": "Type 1: exactly 4 frames sampled evenly from 2 s of one video, each {URL} or {imageData}",
        },
        "URLList.URL": {"description": "Public http or https image URL of one frame."},
        "URLList.imageData": {"description": "Base64-encoded frame bytes, instead of URL (note the lower-case i)."},
    },
)

MONITOR_EXAMINATION = ToolCuration(
    name="Online Exam Proctoring",
    name_zh="线上监考",
    description=(
        "Checks a webcam frame of an exam candidate for proctoring risks: number of faces and people, face "
        "completeness and head pose, talking, and use of a mobile phone or earphones."
    ),
    description_zh="对考生摄像头画面进行监考检测：人脸数与人数、人脸完整度和头部姿态、说话行为以及手机、耳机使用情况。",
    description_for_model=(
        "Use to screen periodic snapshots of remote exam or interview candidates. Send ImageURL and Type (0 or "
        "1, the check type defined by Alibaba; Alibaba's own example uses 1). Returns FaceInfo {FaceNumber, "
        "Completeness, Pose {Pitch, Roll, Yaw}}, PersonInfo {PersonNumber, CellPhone {Score, Threshold}, "
        "EarPhone {Score, Threshold}}, ChatScore and Threshold: a score above its threshold signals that risk. "
        "Treat flags as hints for human review."
    ),
    category="body-analysis",
    keywords=[
        "online proctoring",
        "exam monitoring",
        "cheating detection",
        "remote exam",
        "phone detection",
        "线上监考",
        "在线监考",
        "考试作弊检测",
        "远程考试",
        "监考",
    ],
    aliases=["MonitorExamination", "AI proctoring", "exam invigilation", "智能监考"],
    use_cases=[
        "Flag extra people or missing candidates in remote exams",
        "Detect phone or earphone use during online interviews",
        "Sample webcam frames every 30-60 s and send risky ones to a human proctor",
    ],
    limitations=[
        "Single-frame analysis: aggregate several frames before concluding anything",
        "False positives happen with poor light or unusual camera angles; keep a human in the loop",
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*BODY_TAGS, "proctoring", "education", "safety"],
    related_services=["face-comparison", "face-liveness-detection", "action-recognition"],
    required_context=[IMAGE_URL_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="1200ms",
    cacheable=True,
    idempotent=True,
    limits={},
    example_request={"ImageURL": "https://example.com/proctoring/session-7731/frame-0042.jpg", "Type": 1},
    example_result={
        "ChatScore": 0.288,
        "Threshold": 0.5,
        "FaceInfo": {"FaceNumber": 1, "Completeness": 0.97, "Pose": {"Pitch": -8.2, "Roll": 1.5, "Yaw": 4.3}},
        "PersonInfo": {
            "PersonNumber": 1,
            "CellPhone": {"Score": 0.03, "Threshold": 0.6},
            "EarPhone": {"Score": 0.07, "Threshold": 0.6},
        },
    },
    field_schemas={
        "ImageURL": {"description": "Public http or https image URL of the candidate's webcam frame."},
        "Type": {"enum": [0, 1], "description": "Check type, 0 or 1, as defined by Alibaba (its example uses 1)."},
    },
)

BODY_ANALYSIS = {
    "BodyPosture": BODY_POSTURE,
    "DetectBodyCount": DETECT_BODY_COUNT,
    "DetectPedestrian": DETECT_PEDESTRIAN,
    "PedestrianDetectAttribute": PEDESTRIAN_DETECT_ATTRIBUTE,
    "RecognizeAction": RECOGNIZE_ACTION,
    "MonitorExamination": MONITOR_EXAMINATION,
}
