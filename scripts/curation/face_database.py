"""Face database (1:N gallery): databases, entities (people), face samples and search."""

from __future__ import annotations

from scripts.curation.model import ToolCuration
from scripts.curation.texts import CREDENTIALS, IMAGE_URL_CONTEXT, URL_MUST_BE_REACHABLE

DB_CONTEXT = "face-database"
DB_TAGS = ["face", "face-database", "gallery-management"]
DB_NAME = "staff_2024"
ENTITY_ID = "emp_10086"
ENROLL_URL = "https://example.com/enrollment/emp_10086-front.jpg"
FACE_SAMPLE_LIMITS = {"maxBytes": 5242880, "formats": ["JPG", "JPEG", "PNG"], "minSide": 32, "maxSide": 4096}
SCORE_0_100 = {"minimum": 0, "maximum": 100}
DB_NAME_SCHEMA = {"description": "Face database name, e.g. `staff_2024` (lowercase letters, digits, underscores)."}
ENTITY_ID_SCHEMA = {"description": "Your id for the person in that database, e.g. an employee number `emp_10086`."}
LABELS_SCHEMA = {"description": "Up to 10 comma-separated labels for the person, e.g. `employee,floor-3`."}
NOT_CACHEABLE_READ = "Reads live gallery state: results change as faces are added or deleted"

CREATE_FACE_DB = ToolCuration(
    name="Create Face Database",
    name_zh="创建人脸数据库",
    description="Creates a named face database (gallery) that will hold people and their face samples for 1:N search.",
    description_zh="创建一个命名的人脸数据库(人脸库)，用于存放人员及其人脸样本，供1:N人脸搜索使用。",
    description_for_model=(
        "First step of building a face gallery. Send Name (lowercase letters, digits, underscores, 1-64 chars). "
        "Then add people with face-database-create-entity, their photos with face-database-add-face, and search "
        "with face-database-search. Returns an empty result on success; fails if the name already exists."
    ),
    category="face-database",
    keywords=[
        "create face database",
        "new face gallery",
        "face library",
        "face recognition database",
        "创建人脸库",
        "人脸数据库",
        "新建人脸库",
        "人脸底库",
    ],
    aliases=["CreateFaceDb", "create face db", "create face collection", "创建人脸数据库"],
    use_cases=[
        "Set up an employee gallery for face-based attendance or access control",
        "Create a separate gallery per customer or per site",
    ],
    limitations=[
        "Creates stored biometric data in the operator's Alibaba account",
        "Each database holds at most about 50,000 face samples",
    ],
    tags=[*DB_TAGS, "create"],
    related_services=["face-database-create-entity", "face-database-list", "face-database-delete"],
    required_context=[CREDENTIALS],
    complexity="simple",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=False,
    limits={},
    example_request={"Name": DB_NAME},
    example_result={},
    field_schemas={
        "Name": {
            "pattern": "^[a-z0-9_]{1,64}$",
            "description": "New database name: lowercase letters, digits and underscores, 1-64 characters.",
        }
    },
)

DELETE_FACE_DB = ToolCuration(
    name="Delete Face Database",
    name_zh="删除人脸数据库",
    description="Deletes a face database by name, together with the people and face samples stored in it.",
    description_zh="按名称删除人脸数据库及其中存储的人员和人脸样本。",
    description_for_model=(
        "Use to remove a whole gallery (for example when a project ends or consent is withdrawn). Send Name. "
        "Irreversible. To remove one person use face-database-delete-entity; one photo, face-database-delete-face."
    ),
    category="face-database",
    keywords=[
        "delete face database",
        "drop face gallery",
        "remove face library",
        "删除人脸库",
        "删除人脸数据库",
        "清空人脸库",
    ],
    aliases=["DeleteFaceDb", "delete face db", "delete face collection"],
    use_cases=["Erase a gallery when its project ends", "Honour data-deletion requests for a whole site"],
    limitations=["Irreversible", "Only databases of the same Alibaba account"],
    tags=[*DB_TAGS, "delete"],
    related_services=["face-database-list", "face-database-create", "face-database-delete-entity"],
    required_context=[DB_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=False,
    limits={},
    example_request={"Name": DB_NAME},
    example_result={},
    field_schemas={"Name": {"description": "Name of the face database to delete."}},
)

LIST_FACE_DBS = ToolCuration(
    name="List Face Databases",
    name_zh="查询人脸数据库列表",
    description="Lists the names of the face databases in the account, page by page.",
    description_zh="分页列出账号下所有人脸数据库的名称。",
    description_for_model=(
        "Use to discover which galleries exist before adding or searching faces. Optional Offset and Limit page "
        "through the list. Returns DbList [{Name}]."
    ),
    category="face-database",
    keywords=[
        "list face databases",
        "show face galleries",
        "face db list",
        "人脸库列表",
        "查询人脸库",
        "人脸数据库列表",
    ],
    aliases=["ListFaceDbs", "list face db", "list face collections"],
    use_cases=["Find the DbName to use for search or enrolment", "Audit which galleries hold biometric data"],
    limitations=[NOT_CACHEABLE_READ],
    tags=[*DB_TAGS, "list"],
    related_services=["face-database-create", "face-database-list-entities", "face-database-delete"],
    required_context=[CREDENTIALS],
    complexity="simple",
    typical_response_time="250ms",
    cacheable=False,
    idempotent=True,
    limits={},
    example_request={"Limit": 20, "Offset": 0},
    example_result={"DbList": [{"Name": "default"}, {"Name": DB_NAME}, {"Name": "vip_members"}]},
    field_schemas={
        "Limit": {"minimum": 1, "description": "Maximum number of database names to return."},
        "Offset": {"minimum": 0, "description": "Number of databases to skip (pagination)."},
    },
)

ADD_FACE_ENTITY = ToolCuration(
    name="Create Person (Face Entity)",
    name_zh="添加人脸样本(人员)",
    description="Adds a person (entity) with optional labels to a face database; their face photos are added later.",
    description_zh="在人脸数据库中新增一个人员(实体)，可附带标签；之后再为其添加人脸照片。",
    description_for_model=(
        "Use after face-database-create and before face-database-add-face. Send DbName and EntityId (your stable "
        "id for the person, e.g. an employee number) and optionally Labels. Returns an empty result. One entity "
        "can hold up to 5 face photos."
    ),
    category="face-database",
    keywords=[
        "add person",
        "create face entity",
        "enroll person",
        "register user face",
        "添加人员",
        "添加实体",
        "人脸样本",
        "人员注册",
    ],
    aliases=["AddFaceEntity", "create entity", "add face entity", "添加人脸样本"],
    use_cases=["Register a new employee before uploading their photos", "Group faces of one customer under one id"],
    limitations=["The EntityId must be unique within the database", "Creates stored personal data"],
    tags=[*DB_TAGS, "enrollment", "create"],
    related_services=["face-database-add-face", "face-database-batch-add-faces", "face-database-update-entity"],
    required_context=[DB_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=False,
    limits={},
    example_request={"DbName": DB_NAME, "EntityId": ENTITY_ID, "Labels": "employee,floor-3"},
    example_result={},
    field_schemas={"DbName": DB_NAME_SCHEMA, "EntityId": ENTITY_ID_SCHEMA, "Labels": LABELS_SCHEMA},
)

DELETE_FACE_ENTITY = ToolCuration(
    name="Delete Person (Face Entity)",
    name_zh="删除人员",
    description="Deletes a person (entity) and all of their face samples from a face database.",
    description_zh="从人脸数据库中删除一个人员(实体)及其全部人脸样本。",
    description_for_model=(
        "Use when someone leaves or withdraws consent. Send DbName and EntityId. Irreversible; the person no "
        "longer appears in face-database-search results."
    ),
    category="face-database",
    keywords=[
        "delete person",
        "remove face entity",
        "unenroll",
        "delete user face data",
        "删除人员",
        "删除实体",
        "删除人脸样本",
    ],
    aliases=["DeleteFaceEntity", "delete entity", "remove person from gallery"],
    use_cases=["Offboard an employee from face access control", "Honour a person's data-deletion request"],
    limitations=["Irreversible"],
    tags=[*DB_TAGS, "delete"],
    related_services=["face-database-get-entity", "face-database-delete-face", "face-database-list-entities"],
    required_context=[DB_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=False,
    limits={},
    example_request={"DbName": DB_NAME, "EntityId": ENTITY_ID},
    example_result={},
    field_schemas={"DbName": DB_NAME_SCHEMA, "EntityId": {"description": "Id of the person to delete."}},
)

GET_FACE_ENTITY = ToolCuration(
    name="Get Person (Face Entity)",
    name_zh="查询人员详情",
    description="Returns one person (entity) of a face database with labels and the ids of their face samples.",
    description_zh="查询人脸数据库中某个人员(实体)的标签及其人脸样本ID。",
    description_for_model=(
        "Use to check a person's enrolment before or after adding photos. Send DbName and EntityId. Returns "
        "DbName, EntityId, Labels and Faces [{FaceId}] (use a FaceId with face-database-delete-face)."
    ),
    category="face-database",
    keywords=[
        "get person",
        "get face entity",
        "entity details",
        "enrolled faces",
        "查询人员",
        "人员详情",
        "查询实体",
        "人脸样本详情",
    ],
    aliases=["GetFaceEntity", "get entity", "show person faces"],
    use_cases=["Check how many photos a person has (maximum 5)", "Find a FaceId to delete a bad photo"],
    limitations=[NOT_CACHEABLE_READ],
    tags=[*DB_TAGS, "query"],
    related_services=["face-database-list-entities", "face-database-delete-face", "face-database-update-entity"],
    required_context=[DB_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="250ms",
    cacheable=False,
    idempotent=True,
    limits={},
    example_request={"DbName": DB_NAME, "EntityId": ENTITY_ID},
    example_result={
        "DbName": DB_NAME,
        "EntityId": ENTITY_ID,
        "Labels": "employee,floor-3",
        "Faces": [{"FaceId": "95791735"}, {"FaceId": "95791736"}],
    },
    field_schemas={"DbName": DB_NAME_SCHEMA, "EntityId": {"description": "Id of the person to look up."}},
)

LIST_FACE_ENTITIES = ToolCuration(
    name="List People (Face Entities)",
    name_zh="查询人员列表",
    description="Lists the people (entities) of a face database with filters by id prefix and labels, and paging.",
    description_zh="分页查询人脸数据库中的人员(实体)列表，可按ID前缀和标签筛选。",
    description_for_model=(
        "Use to browse or audit a gallery. Send DbName; optional EntityIdPrefix, Labels (comma-separated, up to "
        "10), Order (asc or desc), Offset (0-2000) and Limit (1-200). Past 2000 results continue with the Token "
        "returned by the previous page. Returns TotalCount, Token and Entities [{EntityId, Labels, FaceCount, "
        "CreatedAt, UpdatedAt (ms timestamps)}]."
    ),
    category="face-database",
    keywords=[
        "list people",
        "list face entities",
        "browse gallery",
        "enrolled users",
        "人员列表",
        "查询实体列表",
        "人脸样本列表",
    ],
    aliases=["ListFaceEntities", "list entities", "list persons in face db"],
    use_cases=["Export the enrolment status of all employees", "Find people with a given label"],
    limitations=["Offset only reaches 2000; use Token for deeper pages", NOT_CACHEABLE_READ],
    tags=[*DB_TAGS, "list"],
    related_services=["face-database-get-entity", "face-database-list", "face-database-delete-entity"],
    required_context=[DB_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=True,
    limits={},
    example_request={"DbName": DB_NAME, "EntityIdPrefix": "emp_", "Limit": 50, "Offset": 0, "Order": "asc"},
    example_result={
        "TotalCount": 2,
        "Token": "",
        "Entities": [
            {
                "DbName": DB_NAME,
                "EntityId": ENTITY_ID,
                "Labels": "employee,floor-3",
                "FaceCount": 2,
                "CreatedAt": 1735689600000,
                "UpdatedAt": 1736121600000,
            },
            {
                "DbName": DB_NAME,
                "EntityId": "emp_10087",
                "Labels": "employee",
                "FaceCount": 1,
                "CreatedAt": 1735776000000,
                "UpdatedAt": 1735776000000,
            },
        ],
    },
    field_schemas={
        "DbName": DB_NAME_SCHEMA,
        "EntityIdPrefix": {
            "description": "Only people whose EntityId starts with this (letters, digits, underscores)."
        },
        "Labels": {"description": "Only people with these labels (comma-separated, up to 10)."},
        "Limit": {"minimum": 1, "maximum": 200, "description": "People per page, 1-200."},
        "Offset": {"minimum": 0, "maximum": 2000, "description": "Index of the first person, 0-2000."},
        "Order": {"enum": ["asc", "desc"], "description": "Sort order: asc or desc."},
        "Token": {"description": "Paging token from the previous response, needed beyond 2000 results."},
    },
)

UPDATE_FACE_ENTITY = ToolCuration(
    name="Update Person Labels",
    name_zh="更新人员信息",
    description="Updates the labels of a person (entity) in a face database.",
    description_zh="更新人脸数据库中人员(实体)的标签。",
    description_for_model=(
        "Use to change the labels of an enrolled person (for example a new department). Send DbName, EntityId "
        "and the new Labels. Face photos are unchanged. Returns an empty result."
    ),
    category="face-database",
    keywords=[
        "update person",
        "update entity labels",
        "edit face entity",
        "更新人员",
        "修改标签",
        "更新实体",
        "人员信息修改",
    ],
    aliases=["UpdateFaceEntity", "update entity", "relabel person"],
    use_cases=["Move an employee to another department label", "Mark a member as VIP for later filtering"],
    limitations=["Replaces the labels; it does not add or remove photos"],
    tags=[*DB_TAGS, "update"],
    related_services=["face-database-get-entity", "face-database-create-entity", "face-database-list-entities"],
    required_context=[DB_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=False,
    limits={},
    example_request={"DbName": DB_NAME, "EntityId": ENTITY_ID, "Labels": "employee,floor-5,first-aider"},
    example_result={},
    field_schemas={
        "DbName": DB_NAME_SCHEMA,
        "EntityId": {"description": "Id of the person to update."},
        "Labels": LABELS_SCHEMA,
    },
)

THRESHOLD_FIELDS = {
    "QualityScoreThreshold": {**SCORE_0_100},
    "SimilarityScoreThresholdInEntity": {**SCORE_0_100},
    "SimilarityScoreThresholdBetweenEntity": {**SCORE_0_100},
}

ADD_FACE = ToolCuration(
    name="Add Face Photo to Person",
    name_zh="添加人脸数据",
    description="Adds one face photo to a person (entity) of a face database, with optional quality checks.",
    description_zh="为人脸数据库中的人员(实体)添加一张人脸照片，可设置质量和相似度校验阈值。",
    description_for_model=(
        "Use to enrol a face photo after face-database-create-entity. Send DbName, EntityId and ImageUrl (clear, "
        "frontal, unobstructed; the largest face is used) plus optional ExtraData and thresholds (0-100) that "
        "reject low-quality photos or photos that look like a different person. Returns FaceId and QualitieScore "
        "(sic). Up to 5 photos per person; for several at once use face-database-batch-add-faces."
    ),
    category="face-database",
    keywords=[
        "add face",
        "enroll face photo",
        "register face",
        "upload face sample",
        "添加人脸",
        "人脸入库",
        "人脸注册",
        "人脸录入",
    ],
    aliases=["AddFace", "add face to entity", "face enrollment"],
    use_cases=["Enrol an employee's badge photo for face attendance", "Add a second photo to improve search accuracy"],
    limitations=[
        "At most 5 face photos per person and about 50,000 per database",
        "Photos with several faces: only the largest face is stored",
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*DB_TAGS, "enrollment", "create"],
    related_services=["face-database-create-entity", "face-database-batch-add-faces", "face-database-search"],
    required_context=[IMAGE_URL_CONTEXT, DB_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="700ms",
    cacheable=False,
    idempotent=False,
    limits=FACE_SAMPLE_LIMITS,
    example_request={
        "DbName": DB_NAME,
        "EntityId": ENTITY_ID,
        "ImageUrl": ENROLL_URL,
        "ExtraData": "Li Wei, R&D",
        "QualityScoreThreshold": 60.0,
        "SimilarityScoreThresholdInEntity": 70.0,
    },
    example_result={"FaceId": "95791737", "QualitieScore": 93.4},
    field_schemas={
        "DbName": DB_NAME_SCHEMA,
        "EntityId": ENTITY_ID_SCHEMA,
        "ImageUrl": {
            "description": (
                "Public http or https image URL of a clear, frontal face photo (max 1024 characters); the largest "
                "face is stored."
            )
        },
        **THRESHOLD_FIELDS,
    },
)

BATCH_ADD_FACES = ToolCuration(
    name="Batch Add Face Photos to Person",
    name_zh="批量添加人脸数据",
    description=(
        "Adds several face photos to one person (entity) in a single call and reports which were inserted or rejected."
    ),
    description_zh="一次为同一人员(实体)批量添加多张人脸照片，返回成功入库和失败的明细。",
    description_for_model=(
        "Use to enrol several photos of the same person at once. Send DbName, EntityId and Faces, an array of "
        "{ImageURL, ExtraData?} (the gateway sends it to Alibaba as a JSON string), plus optional thresholds "
        "(0-100). Returns InsertedFaces [{FaceId, ImageURL, QualitieScore}] and FailedFaces [{ImageURL, Code, "
        "Message}]; partial success is normal, check both lists."
    ),
    category="face-database",
    keywords=[
        "batch add faces",
        "bulk face enrollment",
        "add multiple face photos",
        "批量添加人脸",
        "批量入库",
        "人脸批量注册",
    ],
    aliases=["BatchAddFaces", "bulk add faces", "multi face enrollment"],
    use_cases=["Enrol 3-5 photos of a new employee in one request", "Migrate a person's photos from another system"],
    limitations=[
        "A person holds at most 5 face photos, so send at most 5",
        "Some photos may fail while others succeed: inspect FailedFaces",
        URL_MUST_BE_REACHABLE,
    ],
    tags=[*DB_TAGS, "enrollment", "batch"],
    related_services=["face-database-add-face", "face-database-get-entity", "face-database-search"],
    required_context=[IMAGE_URL_CONTEXT, DB_CONTEXT, CREDENTIALS],
    complexity="complex",
    typical_response_time="1500ms",
    cacheable=False,
    idempotent=False,
    limits=FACE_SAMPLE_LIMITS,
    example_request={
        "DbName": DB_NAME,
        "EntityId": ENTITY_ID,
        "Faces": [
            {"ImageURL": ENROLL_URL, "ExtraData": "front"},
            {"ImageURL": "https://example.com/enrollment/emp_10086-glasses.jpg", "ExtraData": "with glasses"},
        ],
        "QualityScoreThreshold": 60.0,
    },
    example_result={
        "InsertedFaces": [{"FaceId": "95791738", "ImageURL": ENROLL_URL, "QualitieScore": 92.7}],
        "FailedFaces": [
            {
                "ImageURL": "https://example.com/enrollment/emp_10086-glasses.jpg",
                "Code": "InvalidImage.QualityScore",
                "Message": "face quality score is lower than QualityScoreThreshold",
            }
        ],
    },
    field_schemas={
        "DbName": DB_NAME_SCHEMA,
        "EntityId": ENTITY_ID_SCHEMA,
        "Faces": {
            "maxItems": 5,
            "description": "Face photos to add, each {ImageURL, ExtraData?}; sent to Alibaba as one JSON string.",
        },
        "Faces.ImageURL": {"description": "Public http or https image URL of one clear, frontal face photo."},
        "Faces.ExtraData": {"description": "Free-form text stored with this face sample."},
        **THRESHOLD_FIELDS,
    },
)

DELETE_FACE = ToolCuration(
    name="Delete Face Photo",
    name_zh="删除人脸数据",
    description="Deletes one stored face photo (by FaceId) from a face database; the person remains.",
    description_zh="按FaceId从人脸数据库删除一张人脸照片，人员本身保留。",
    description_for_model=(
        "Use to remove a bad or outdated photo. Send DbName and FaceId (from face-database-add-face or "
        "face-database-get-entity). Returns an empty result. To remove the whole person use "
        "face-database-delete-entity."
    ),
    category="face-database",
    keywords=["delete face photo", "remove face sample", "delete face id", "删除人脸", "删除人脸照片", "删除人脸数据"],
    aliases=["DeleteFace", "remove face", "delete face sample"],
    use_cases=["Replace an old enrolment photo", "Remove a photo that causes false matches"],
    limitations=["Irreversible"],
    tags=[*DB_TAGS, "delete"],
    related_services=["face-database-get-entity", "face-database-add-face", "face-database-delete-entity"],
    required_context=[DB_CONTEXT, CREDENTIALS],
    complexity="simple",
    typical_response_time="300ms",
    cacheable=False,
    idempotent=False,
    limits={},
    example_request={"DbName": DB_NAME, "FaceId": "95791736"},
    example_result={},
    field_schemas={"DbName": DB_NAME_SCHEMA, "FaceId": {"description": "Id of the face photo to delete."}},
)

SEARCH_FACE = ToolCuration(
    name="Face Search (1:N)",
    name_zh="人脸搜索(1:N)",
    description=(
        "Searches one or more face databases for the people most similar to the faces in a photo and returns "
        "ranked matches with scores."
    ),
    description_zh="在一个或多个人脸数据库中搜索与图片中人脸最相似的人员，返回带分数的排序结果。",
    description_for_model=(
        "Use to identify who is in a photo against your own gallery (built with face-database-create, "
        "-create-entity and -add-face). Send ImageUrl, Limit (1-100 matches per face) and DbName or DbNames "
        "(comma-separated, up to 10; DbNames wins if both are set); optional MaxFaceNum (faces of the photo to "
        "search, largest first) and QualityScoreThreshold. MatchList has one item per searched face with "
        "Location, QualitieScore and FaceItems [{EntityId, FaceId, DbName, Score, Confidence, ExtraData}]; decide a "
        "match by thresholding Confidence (e.g. >= 75)."
    ),
    category="face-database",
    keywords=[
        "face search",
        "1:N face recognition",
        "identify person",
        "face identification",
        "find similar faces",
        "人脸搜索",
        "1:N识别",
        "人脸检索",
        "以脸搜人",
    ],
    aliases=["SearchFace", "face lookup", "face gallery search", "人脸库搜索"],
    use_cases=[
        "Face-based attendance or door access against an employee gallery",
        "Recognise returning VIP customers",
        "Find duplicates of a person across several galleries",
    ],
    limitations=[
        "Only finds people you have enrolled; it does not search the internet",
        "Up to 10 faces per photo and 10 databases per search",
        "You choose the acceptance threshold; a top match is not necessarily the same person",
        URL_MUST_BE_REACHABLE,
    ],
    tags=["computer-vision", "face", "face-database", "recognition", "1:N"],
    related_services=["face-database-add-face", "face-comparison", "face-database-create", "face-detection"],
    required_context=[IMAGE_URL_CONTEXT, DB_CONTEXT, CREDENTIALS],
    complexity="moderate",
    typical_response_time="800ms",
    cacheable=False,
    idempotent=True,
    limits=FACE_SAMPLE_LIMITS,
    example_request={
        "DbName": DB_NAME,
        "ImageUrl": "https://example.com/images/entrance-camera-0815.jpg",
        "Limit": 3,
        "MaxFaceNum": 1,
        "QualityScoreThreshold": 50.0,
    },
    example_result={
        "MatchList": [
            {
                "Location": {"X": 402, "Y": 156, "Width": 238, "Height": 301},
                "QualitieScore": 88.1,
                "FaceItems": [
                    {
                        "EntityId": ENTITY_ID,
                        "FaceId": "95791735",
                        "DbName": DB_NAME,
                        "Score": 0.912,
                        "Confidence": 86.7,
                        "ExtraData": "Li Wei, R&D",
                    },
                    {
                        "EntityId": "emp_10087",
                        "FaceId": "95791741",
                        "DbName": DB_NAME,
                        "Score": 0.433,
                        "Confidence": 31.2,
                        "ExtraData": "",
                    },
                ],
            }
        ]
    },
    any_of=[["DbName", "DbNames"]],
    field_schemas={
        "DbName": {"description": "Face database to search (or use DbNames for several)."},
        "DbNames": {"description": "Comma-separated list of up to 10 databases to search; takes priority over DbName."},
        "ImageUrl": {"description": "Public http or https image URL of the photo whose faces to identify."},
        "Limit": {"minimum": 1, "maximum": 100, "description": "Number of best matches to return per face, 1-100."},
        "MaxFaceNum": {
            "minimum": 1,
            "maximum": 10,
            "description": "How many faces of the photo to search, largest first (up to 10).",
        },
        "QualityScoreThreshold": {
            **SCORE_0_100,
            "description": "Skip faces of the photo whose quality score (0-100) is below this.",
        },
    },
)

FACE_DATABASE = {
    "CreateFaceDb": CREATE_FACE_DB,
    "DeleteFaceDb": DELETE_FACE_DB,
    "ListFaceDbs": LIST_FACE_DBS,
    "AddFaceEntity": ADD_FACE_ENTITY,
    "DeleteFaceEntity": DELETE_FACE_ENTITY,
    "GetFaceEntity": GET_FACE_ENTITY,
    "ListFaceEntities": LIST_FACE_ENTITIES,
    "UpdateFaceEntity": UPDATE_FACE_ENTITY,
    "AddFace": ADD_FACE,
    "BatchAddFaces": BATCH_ADD_FACES,
    "DeleteFace": DELETE_FACE,
    "SearchFace": SEARCH_FACE,
}
