"""What the stateful actions remember, per access key id: face databases, entities, faces, face-fusion
templates and real-person verification tokens. In memory; POST /_sandbox/reset forgets it.

A face's "feature" is the sha256 of its image (content when fetched from loopback, else the URL), so SearchFace
finds the same image again with a high score and other images with low, deterministic scores. Ids are counters
per account, so the same sequence of calls always yields the same ids.

Errors (400): InvalidDB.Status (database missing, or exists on create), InvalidEntity.NotFound,
InvalidEntity.Exists, InvalidFace.NotFound, InvalidTemplate.NotFound, InvalidToken.NotFound, InvalidParameter
(names), QuotaExceeded (the limits below).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field

from sandbox.errors import StateError, invalid_parameter

NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MAX_DBS = 100
MAX_ENTITIES_PER_DB = 10_000
MAX_FACES_PER_ENTITY = 5
MAX_TEMPLATES = 1_000
MAX_TOKENS = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Face:
    face_id: str
    entity_id: str
    image_url: str
    extra_data: str
    feature: str
    quality: float


@dataclass
class Entity:
    entity_id: str
    labels: str
    created_at: int
    updated_at: int
    faces: dict[str, Face] = field(default_factory=dict)


@dataclass
class FaceDb:
    name: str
    entities: dict[str, Entity] = field(default_factory=dict)


@dataclass
class TemplateFace:
    face_id: str
    rect: tuple[int, int, int, int]  # x, y, width, height


@dataclass
class Template:
    template_id: str
    url: str
    size: tuple[int, int]
    faces: list[TemplateFace]
    created_at: int
    updated_at: int


@dataclass
class Verification:
    token: str
    certificate_number: str
    meta_info: str


@dataclass
class Account:
    key_id: str
    dbs: dict[str, FaceDb] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    tokens: dict[str, Verification] = field(default_factory=dict)
    counter: int = 0

    def next_id(self, prefix: str = "") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def stable_id(self, kind: str) -> str:
        self.counter += 1
        digest = hashlib.sha256(f"{self.key_id}/{kind}/{self.counter}".encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"

    # face databases -------------------------------------------------------------------------------------------
    def create_db(self, name: str) -> FaceDb:
        _check_name("Name", name)
        if name in self.dbs:
            raise StateError("InvalidDB.Status", f"The face database {name} already exists.")
        if len(self.dbs) >= MAX_DBS:
            raise StateError("QuotaExceeded", f"At most {MAX_DBS} face databases per account.")
        self.dbs[name] = FaceDb(name)
        return self.dbs[name]

    def db(self, name: str) -> FaceDb:
        found = self.dbs.get(name)
        if found is None:
            raise StateError("InvalidDB.Status", f"The face database {name} does not exist.")
        return found

    def add_entity(self, db_name: str, entity_id: str, labels: str) -> Entity:
        db = self.db(db_name)
        _check_name("EntityId", entity_id)
        if entity_id in db.entities:
            raise StateError("InvalidEntity.Exists", f"The entity {entity_id} already exists in {db_name}.")
        if len(db.entities) >= MAX_ENTITIES_PER_DB:
            raise StateError("QuotaExceeded", f"At most {MAX_ENTITIES_PER_DB} entities per face database.")
        stamp = now_ms()
        db.entities[entity_id] = Entity(entity_id, labels, stamp, stamp)
        return db.entities[entity_id]

    def entity(self, db_name: str, entity_id: str) -> Entity:
        found = self.db(db_name).entities.get(entity_id)
        if found is None:
            raise StateError("InvalidEntity.NotFound", f"The entity {entity_id} does not exist in {db_name}.")
        return found

    def add_face(
        self, db_name: str, entity_id: str, *, image_url: str, extra_data: str, feature: str, quality: float
    ) -> Face:
        entity = self.entity(db_name, entity_id)
        if len(entity.faces) >= MAX_FACES_PER_ENTITY:
            raise StateError("QuotaExceeded", f"At most {MAX_FACES_PER_ENTITY} faces per entity.")
        face = Face(self.next_id(), entity_id, image_url, extra_data, feature, quality)
        entity.faces[face.face_id] = face
        entity.updated_at = now_ms()
        return face

    def delete_face(self, db_name: str, face_id: str) -> None:
        for entity in self.db(db_name).entities.values():
            if entity.faces.pop(face_id, None) is not None:
                entity.updated_at = now_ms()
                return
        raise StateError("InvalidFace.NotFound", f"The face {face_id} does not exist in {db_name}.")

    # face-fusion templates ------------------------------------------------------------------------------------
    def add_template(self, url: str, size: tuple[int, int], faces: list[TemplateFace]) -> Template:
        if len(self.templates) >= MAX_TEMPLATES:
            raise StateError("QuotaExceeded", f"At most {MAX_TEMPLATES} templates per account.")
        stamp = now_ms()
        template = Template(self.stable_id("template"), url, size, faces, stamp, stamp)
        self.templates[template.template_id] = template
        return template

    def template(self, template_id: str) -> Template:
        found = self.templates.get(template_id)
        if found is None:
            raise StateError("InvalidTemplate.NotFound", f"The template {template_id} does not exist.")
        return found

    # real-person verification ---------------------------------------------------------------------------------
    def add_token(self, certificate_number: str, meta_info: str) -> Verification:
        if len(self.tokens) >= MAX_TOKENS:
            self.tokens.pop(next(iter(self.tokens)))
        verification = Verification(self.stable_id("token").replace("-", ""), certificate_number, meta_info)
        self.tokens[verification.token] = verification
        return verification

    def token(self, token: str) -> Verification:
        found = self.tokens.get(token)
        if found is None:
            raise StateError("InvalidToken.NotFound", "The verification token does not exist or has expired.")
        return found


class StateStore:
    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}

    def account(self, key_id: str) -> Account:
        return self._accounts.setdefault(key_id, Account(key_id))

    def clear(self) -> None:
        self._accounts.clear()


def _check_name(param: str, value: str) -> None:
    if not NAME.match(value):
        raise invalid_parameter(param, "use 1 to 64 letters, digits or underscores")
