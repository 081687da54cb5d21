"""Descriptions of Alibaba parameters shared by several actions, keyed by wire name.

A tool's `field_schemas` entry for the same path overrides these (e.g. `Type` means different things in
MonitorExamination and RecognizeAction). The generator refuses to write a property without a description.
"""

from __future__ import annotations

IMAGE_URL = (
    "Public http or https image URL of the photo to process. Alibaba downloads it itself: an OSS URL in "
    "cn-shanghai is fastest; the URL must not contain Chinese characters."
)
BASE64_IMAGE = "Base64-encoded image bytes (no data: prefix), as an alternative to the URL field."
QUALITY_THRESHOLD = (
    "Minimum face quality score (0-100) the image must reach; lower-quality faces are rejected. "
    "Leave unset to use Alibaba's default."
)

FIELD_DESCRIPTIONS: dict[str, str] = {
    "ImageURL": IMAGE_URL,
    "ImageUrl": IMAGE_URL,
    "ImageData": BASE64_IMAGE,
    "ImageDataA": "Base64-encoded bytes of the first image, as an alternative to ImageURLA.",
    "ImageDataB": "Base64-encoded bytes of the second image, as an alternative to ImageURLB.",
    "ImageURLA": "Public http or https image URL of the first face photo (for example the reference photo).",
    "ImageURLB": "Public http or https image URL of the second face photo (for example the photo to check).",
    "VideoUrl": (
        "Public http or https video URL (MP4, AVI, MOV ...) that Alibaba downloads; an OSS URL in cn-shanghai "
        "is fastest."
    ),
    "VideoData": "Base64-encoded video bytes, as an alternative to VideoUrl.",
    "DbName": "Name of the face database (created with face-database-create), e.g. `default` or `staff_2024`.",
    "EntityId": (
        "Your id for one person (entity) in the face database: letters, digits and underscores, unique within the "
        "database, e.g. an employee number."
    ),
    "FaceId": "Id of one stored face sample, as returned by face-database-add-face or face-database-get-entity.",
    "ExtraData": "Free-form text stored with the face sample and returned by searches (e.g. a name or a JSON note).",
    "Labels": "Comma-separated labels attached to the entity, e.g. `employee,floor-3`.",
    "QualityScoreThreshold": QUALITY_THRESHOLD,
    "SimilarityScoreThresholdInEntity": (
        "Reject the new face if it is LESS similar than this (0-100) to the faces already stored for the same "
        "entity, protecting against adding the wrong person."
    ),
    "SimilarityScoreThresholdBetweenEntity": (
        "Reject the new face if it is MORE similar than this (0-100) to a face of another entity, protecting "
        "against duplicate people in one database."
    ),
    "Limit": "Maximum number of items to return.",
    "Offset": "Number of items to skip before the first one returned (pagination).",
    "Name": "Name of the face database: letters, digits and underscores.",
    "TemplateId": "Id of a face-fusion template, as returned by face-template-create.",
    "MaxFaceNumber": "Maximum number of faces to return, largest faces first.",
    "Quality": "Set true to also return face quality scores (blur, illumination, pose, occlusion ...).",
    "Landmark": "Set true to also return facial landmarks (105 points per face).",
    "Pose": "Set true to also return head pose angles (yaw, pitch, roll) per face.",
    "Tasks": "List of images to check; each task is billed separately.",
    "Task": "List of images to check.",
}
