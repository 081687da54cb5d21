"""Phrases and example values repeated across many tools (kept in one place so they stay consistent)."""

from __future__ import annotations

PORTRAIT_URL = "https://example.com/images/portrait.jpg"
GROUP_PHOTO_URL = "https://example.com/images/team-photo.jpg"
STREET_URL = "https://example.com/images/street-crossing.jpg"
RESULT_IMAGE_URL = (
    "https://viapi-customer-temp.oss-cn-shanghai.aliyuncs.com/facebody/result/"
    "6F1E2A7C-58D4-4B0E-9C3A-2D7B41E8F905.jpg?Expires=1767225600&OSSAccessKeyId=LTAI****&Signature=Xk9q****"
)

CREDENTIALS = "aliyun-credentials"
IMAGE_URL_CONTEXT = "public-image-url"
VIDEO_URL_CONTEXT = "public-video-url"

URL_MUST_BE_REACHABLE = (
    "Alibaba downloads the image itself: the URL must be publicly reachable (OSS in cn-shanghai is fastest) and "
    "must not contain Chinese characters"
)
RESULT_URL_EXPIRES = "The returned image URL is temporary (about 30 minutes): download or copy it promptly"
NO_FILE_UPLOAD = "Binary upload is not exposed: pass a public URL (or base64 text where the schema has a Data field)"
DEFAULT_QPS = "Alibaba's default rate limit is 2 calls per second per capability; excess calls fail fast"
LARGEST_FACE = "When the image holds several faces, only the largest face is used"
CHINA_ID_ONLY = "Works with mainland China resident identity cards only"
