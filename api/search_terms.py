"""How text becomes search terms: normalization, typo tools, and the curated bilingual synonym groups.

Normalization: NFKC, CamelCase split, lower case, every non-word character a separator, plural `s` dropped; a run
of Chinese characters stays one token (the index splits it further with a dictionary and bigrams).

Each synonym group lists terms that mean the same thing to someone looking for a tool, in English and Chinese. A
query that contains any member (a whole word or phrase in English, a substring in Chinese) is expanded with the
other members, at a lower weight than the words typed. Members are written naturally: "anti-spoofing", "Anti
Spoofing" and "anti spoofings" normalize to the same member. Keep groups narrow: a member that means something
broader ("face", "人脸") belongs in no group.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_NOT_ALNUM = re.compile(r"[\W_]+")  # what str.isalnum() refuses, every code point checked

# fmt: off
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    # --- comparison, search, database ---
    ("compare", "comparison", "comparing", "比较", "对比", "比对"),
    ("compare faces", "face comparison", "face compare", "face match", "face matching", "face verification",
     "verify face", "1:1", "one to one", "same person", "人脸比对", "人脸对比", "人脸验证", "是否同一人", "同一个人"),
    ("face search", "search face", "1:n", "one to many", "face identification", "face retrieval", "find face",
     "face lookup", "人脸搜索", "人脸检索", "以脸搜脸", "人脸查找"),
    ("face database", "face db", "face library", "face gallery", "face collection", "face repository",
     "人脸库", "人脸数据库", "人脸底库", "底库"),
    ("face entity", "entity", "person entry", "人脸实体", "实体", "人脸样本"),
    ("mask", "masked", "face mask", "masked face", "wearing mask", "口罩", "戴口罩", "佩戴口罩"),
    ("add", "insert", "register", "enroll", "添加", "新增", "注册", "录入"),
    ("batch", "bulk", "批量"),
    ("create", "new", "创建", "新建"),
    ("delete", "remove", "删除", "移除"),
    ("list", "enumerate", "列表", "列出"),
    ("update", "modify", "edit", "更新", "修改"),
    ("get", "fetch", "retrieve", "获取", "查询"),
    # --- liveness, verification, forgery ---
    ("liveness", "liveness detection", "live detection", "living face", "anti spoofing", "spoofing",
     "presentation attack", "活体检测", "活体", "人脸活体", "防伪", "防翻拍"),
    ("infrared", "ir", "near infrared", "nir", "红外", "红外活体", "近红外"),
    ("video", "视频"),
    ("real person verification", "identity verification", "id verification", "kyc", "ekyc", "real name",
     "实人认证", "实人验证", "身份核验", "身份认证", "实名认证"),
    ("verify", "verification", "验证", "核验", "认证"),
    ("token", "verification token", "令牌"),
    ("deepfake", "deep fake", "fake face", "forged face", "face forgery", "synthetic face", "ai generated face",
     "深度伪造", "伪造", "人脸伪造", "换脸检测", "深伪", "人脸鉴伪", "鉴伪"),
    # --- analysis ---
    ("face detection", "detect face", "face location", "face landmark", "face bounding box", "人脸检测",
     "人脸定位", "人脸关键点"),
    ("detect", "detection", "检测"),
    ("recognize", "recognition", "identify", "识别"),
    ("face attribute", "age", "gender", "glasses", "人脸属性", "年龄", "性别", "眼镜"),
    ("expression", "facial expression", "emotion", "emotion recognition", "smile", "mood", "表情", "表情识别",
     "情绪", "情绪识别", "人脸表情", "笑容"),
    ("celebrity", "famous people", "famous person", "movie star", "名人", "明星", "名人识别"),
    ("public figure", "politician", "sensitive person", "公众人物", "政治人物", "敏感人物"),
    ("fingerprint", "face feature", "feature vector", "embedding", "face embedding", "指纹", "人脸特征",
     "特征提取", "特征向量"),
    ("quality", "face quality", "质量", "人脸质量"),
    # --- body ---
    ("body", "human body", "人体", "身体"),
    ("pose", "pose estimation", "body pose", "human pose", "posture", "body posture", "skeleton", "keypoint",
     "人体姿态", "姿态估计", "姿势识别", "姿态", "姿势", "骨骼", "骨骼关键点", "人体关键点"),
    ("pedestrian", "pedestrian detection", "person detection", "people detection", "human detection",
     "行人", "行人检测", "人形检测"),
    ("pedestrian attribute", "person attribute", "clothing", "行人属性", "人体属性", "衣着", "穿着"),
    ("body count", "people count", "count people", "people counting", "crowd count", "headcount",
     "number of people", "how many people", "人数", "人体计数", "人数统计", "数人头", "几个人"),
    ("action recognition", "action", "activity", "behavior", "behaviour", "动作识别", "动作", "行为识别", "行为"),
    ("exam", "examination", "proctoring", "invigilation", "cheating", "考试", "监考", "考场", "作弊", "考试监控"),
    # --- editing and generation ---
    ("beauty", "beautify", "beautification", "face beauty", "makeup", "美颜", "美化", "美白", "人脸美颜", "美妆"),
    ("skin retouching", "retouch", "retouching", "skin smoothing", "smooth skin", "blemish", "磨皮", "美肤",
     "祛痘", "皮肤美化", "智能美肤"),
    ("face fusion", "face swap", "swap face", "face merge", "merge face", "faceswap", "换脸", "人脸融合", "融合",
     "人脸替换"),
    ("template", "fusion template", "face template", "模板", "融合模板", "人脸模板"),
    ("anime", "cartoon", "comic", "manga", "toonify", "cartoonize", "动漫", "卡通", "动漫化", "漫画", "二次元",
     "人像动漫化"),
    ("sketch", "pencil drawing", "line drawing", "素描", "铅笔画", "线稿", "人像素描"),
    ("blur", "blur face", "face blur", "blurring", "mosaic", "pixelate", "anonymize", "anonymization", "redact",
     "打码", "模糊", "人脸模糊", "人脸打码", "马赛克", "脱敏"),
    ("slim face", "face slimming", "slimming", "thin face", "liquify", "face reshape", "瘦脸", "液化", "人脸液化",
     "脸型调整"),
    ("enhance", "enhancement", "face enhancement", "restore", "restoration", "super resolution", "sharpen",
     "upscale", "人脸增强", "增强", "修复", "人脸修复", "高清", "画质增强"),
)
# fmt: on

# fmt: off
STOP_WORDS: frozenset[str] = frozenset(
    {
        "a", "about", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
        "could", "do", "does", "for", "from", "give", "has", "have", "help", "how", "i", "if", "in", "into", "is",
        "it", "its", "just", "let", "like", "look", "make", "me", "my", "need", "of", "on", "or", "our", "please",
        "should", "show", "so", "some", "that", "the", "their", "them", "then", "there", "these", "they", "this",
        "those", "to", "tool", "turn", "use", "using", "want", "was", "we", "what", "when", "where", "which",
        "who", "will", "with", "would", "you", "your",
    }
)
# fmt: on


def tokens(text: str) -> list[str]:
    """Normalized tokens of `text`: lower-case words without plural `s`, and whole runs of Chinese characters."""
    spaced = _CAMEL_BOUNDARY.sub(" ", unicodedata.normalize("NFKC", text)).lower()
    return [_singular(word) for word in _WORD.findall(spaced)]


def normalize(text: str) -> str:
    """`text` as the search sees it: its tokens joined by single spaces."""
    return " ".join(tokens(text))


def compact(text: str) -> str:
    """Letters, digits and Chinese characters only, lower case: "Detect-Face", "detect_face" -> "detectface"."""
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", text).lower())


def is_chinese(token: str) -> bool:
    return token >= "\u3400"


def _singular(word: str) -> str:
    if is_chinese(word) or len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    return word[:-3] + "y" if word.endswith("ies") else word[:-1]


def bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


def deletions(word: str, depth: int) -> set[str]:
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def neighbourhood(length: int, depth: int) -> int:
    """How many strings `deletions` of a word of `length` letters can return at most (what a lookup costs)."""
    return sum(math.comb(length, k) for k in range(depth + 1))


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours), or `limit + 1` when it is
    more than `limit`. Only the part after a common prefix and before a common suffix is compared, only the cells
    within `limit` of the diagonal are computed, and it stops at the first row with nothing within `limit`."""
    a, b = _strip_affixes(a, b)
    over = limit + 1
    if abs(len(a) - len(b)) > limit:
        return over
    if not a or not b:
        return max(len(a), len(b))
    before, previous = [over] * (len(b) + 1), [min(j, over) for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        current = [i if i <= limit else over] + [over] * len(b)
        for j in range(max(1, i - limit), min(len(b), i + limit) + 1):
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            current[j] = min(value, over)
        if min(current) > limit:
            return over
        before, previous = previous, current
    return previous[len(b)]


def _strip_affixes(a: str, b: str) -> tuple[str, str]:
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return a[start : len(a) - end], b[start : len(b) - end]


class Synonyms:
    """The synonym groups, normalized, with lookups by word, phrase and Chinese term (member -> group ids)."""

    def __init__(self, groups: Iterable[Sequence[str]]) -> None:
        self.groups: list[list[str]] = []
        self.display: dict[str, str] = {}
        self.by_word: dict[str, list[int]] = {}
        self.by_phrase: dict[str, list[int]] = {}
        self.by_chinese: dict[str, list[int]] = {}
        for members in groups:
            self._add_group(members)
        self.longest_phrase = max((key.count(" ") + 1 for key in self.by_phrase), default=1)
        self.longest_chinese = max(map(len, self.by_chinese), default=1)

    def _add_group(self, members: Sequence[str]) -> None:
        group_id, keys = len(self.groups), []
        for member in members:
            key = normalize(member)
            if not key or key in keys:
                continue
            keys.append(key)
            self.display.setdefault(key, member)
            lookup = self.by_chinese if is_chinese(key[0]) else self.by_phrase if " " in key else self.by_word
            lookup.setdefault(key, []).append(group_id)
        self.groups.append(keys)

    def found_in(self, words: Sequence[str]) -> dict[int, set[str]]:
        """Group id -> the members that occur in the (normalized) query words."""
        found: dict[int, set[str]] = {}
        for key, lookup in self._candidates(words):
            for group_id in lookup.get(key, ()):
                found.setdefault(group_id, set()).add(key)
        return found

    def _candidates(self, words: Sequence[str]) -> Iterable[tuple[str, dict[str, list[int]]]]:
        for position, word in enumerate(words):
            if is_chinese(word):
                for start in range(len(word) - 1):
                    for end in range(start + 2, min(len(word), start + self.longest_chinese) + 1):
                        yield word[start:end], self.by_chinese
                continue
            yield word, self.by_word
            for size in range(2, self.longest_phrase + 1):
                if position + size <= len(words):
                    yield " ".join(words[position : position + size]), self.by_phrase

    def terms(self) -> set[str]:
        return {key for keys in self.groups for key in keys}
