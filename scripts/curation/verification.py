"""Real-person verification (实人认证): token for the client-side face capture, then the server-side result."""

from __future__ import annotations

from scripts.curation.model import ToolCuration
from scripts.curation.texts import CHINA_ID_ONLY, CREDENTIALS

VERIFICATION_TAGS = ["face", "identity-verification", "kyc", "real-person"]
VERIFICATION_TOKEN = "b2c4e8f0a1d3c5e7f9a0b2c4d6e8f0a1"
META_INFO = (
    '{"zimVer":"3.0.0","appVersion":"1","bioMetaInfo":"4.1.0:1150976,0","appName":"com.example.app",'
    '"deviceType":"h5","osVersion":"iOS 17.2","apdidToken":"","deviceModel":"iPhone15,2"}'
)

GEN_REAL_PERSON_VERIFICATION_TOKEN = ToolCuration(
    name="Real-Person Verification: Create Token",
    name_zh="实人认证：获取认证Token",
    description=(
        "Starts a real-person verification for a named Chinese ID-card holder and returns a token for the "
        "client-side face capture."
    ),
    description_zh="为指定姓名和身份证号的用户发起实人认证，返回供客户端刷脸采集使用的认证Token。",
    description_for_model=(
        "Step 1 of 2 of Alibaba real-person verification (is this live person the owner of this mainland China "
        "ID card). Send CertificateName (real name), CertificateNumber (18-character resident ID number) and "
        "MetaInfo (the JSON string returned by Alibaba's client SDK getMetaInfo() on the user's device). Returns "
        "VerificationToken: hand it to the client SDK for face capture, then call real-person-verification-result "
        "with the same token."
    ),
    category="real-person-verification",
    keywords=[
        "real person verification",
        "identity verification token",
        "ID card face verification",
        "eKYC China",
        "实人认证",
        "实名认证",
        "人证核验",
        "认证Token",
        "刷脸认证",
    ],
    aliases=["GenRealPersonVerificationToken", "start real-person verification", "实人认证获取token"],
    use_cases=[
        "Real-name verification for financial or gaming accounts in mainland China",
        "Confirm that the person signing a contract is the ID-card holder",
    ],
    limitations=[
        CHINA_ID_ONLY,
        "Needs Alibaba's client SDK on the user's device to produce MetaInfo and capture the face",
        "Handles highly sensitive personal data (name and ID number): collect consent and never log them",
    ],
    tags=[*VERIFICATION_TAGS, "token"],
    related_services=["real-person-verification-result", "face-comparison", "face-liveness-detection"],
    required_context=["identity-document", "client-meta-info", CREDENTIALS],
    complexity="complex",
    typical_response_time="600ms",
    cacheable=False,
    idempotent=False,
    limits={},
    example_request={"CertificateName": "张三", "CertificateNumber": "11010519491231002X", "MetaInfo": META_INFO},
    example_result={"VerificationToken": VERIFICATION_TOKEN},
    field_schemas={
        "CertificateName": {"description": "Real name exactly as printed on the ID card, e.g. 张三."},
        "CertificateNumber": {
            "pattern": "^[0-9]{17}[0-9Xx]$",
            "description": "18-character mainland China resident ID number (last character may be X).",
        },
        "MetaInfo": {
            "description": "JSON string from Alibaba's client SDK getMetaInfo() on the user's device, unchanged.",
        },
    },
)

GET_REAL_PERSON_VERIFICATION_RESULT = ToolCuration(
    name="Real-Person Verification: Get Result",
    name_zh="实人认证：查询认证结果",
    description="Returns whether a real-person verification started with a token passed.",
    description_zh="根据认证Token查询实人认证是否通过。",
    description_for_model=(
        "Step 2 of 2 of Alibaba real-person verification. After the user finished face capture in the client "
        "SDK, send the VerificationToken from real-person-verification-token. Returns Passed (true when the live "
        "face matches the ID-card holder). Always decide on this server-side result, never on client callbacks."
    ),
    category="real-person-verification",
    keywords=[
        "verification result",
        "real person verification result",
        "KYC result",
        "identity check passed",
        "实人认证结果",
        "认证结果查询",
        "核验结果",
        "是否通过",
    ],
    aliases=["GetRealPersonVerificationResult", "check verification result", "实人认证查询"],
    use_cases=[
        "Confirm on the server that a user passed real-name face verification",
        "Unlock an account after verification",
    ],
    limitations=[CHINA_ID_ONLY, "Only meaningful after the user completed the client-side capture for that token"],
    tags=[*VERIFICATION_TAGS, "result"],
    related_services=["real-person-verification-token", "face-liveness-detection", "face-comparison"],
    required_context=["verification-token", CREDENTIALS],
    complexity="simple",
    typical_response_time="400ms",
    cacheable=False,
    idempotent=True,
    limits={},
    example_request={"VerificationToken": VERIFICATION_TOKEN},
    example_result={"Passed": True},
    field_schemas={"VerificationToken": {"description": "Token returned by real-person-verification-token."}},
)

VERIFICATION = {
    "GenRealPersonVerificationToken": GEN_REAL_PERSON_VERIFICATION_TOKEN,
    "GetRealPersonVerificationResult": GET_REAL_PERSON_VERIFICATION_RESULT,
}
