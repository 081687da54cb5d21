"""Tenant isolation for the stateful facebody actions: the gateway has one Alibaba access key, many customers.

The worker wraps each upstream call: `scope_request` -> `Upstream.call` -> `scope_result` (and
`scope_error_message` on an upstream error); `SCOPES` is the one table of where face-database names and template
ids sit. How names are prefixed, templates owned and lists paged, and the keys: docs/architecture.md, "Tenants'
face databases".
"""

from __future__ import annotations

import copy
import enum
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared.keys import PREFIX, SCRIPTS, registered

UPSTREAM_NAME = re.compile(r"^[A-Za-z0-9_]+$")
UPSTREAM_NAME_MAX = 64
PREFIX_HEX_DIGITS = 10
PREFIX_LENGTH = len("t") + PREFIX_HEX_DIGITS + len("_")
NAME_MAX = UPSTREAM_NAME_MAX - PREFIX_LENGTH
TEMPLATE_ID = "TemplateId"
DB_FETCH_ALL = {"Offset": 0, "Limit": 1000}  # the upstream's largest page (the sandbox allows 100 dbs)
TEMPLATE_FETCH_ALL = {"PageNo": 1, "PageSize": 100}  # the sandbox's largest page (Alibaba documents 500)
TEMPLATE_PAGE_DEFAULT = 100  # Alibaba's documented default PageSize
TEMPLATE_PAGE_MAX = 500

Path = tuple[str, ...]
Rename = Callable[[str], str | None]


class TenantError(Exception):
    """A call refused on the tenant's behalf; a caller error (HTTP 400), never retried."""

    status = 400
    retryable = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def invalid_parameter(param: str, why: str) -> TenantError:
    return TenantError("InvalidParameter", f"Specified parameter {param} is not valid: {why}.")


def unknown_template(template_id: str) -> TenantError:
    """What the upstream answers for a template id it does not know (sandbox/state.py `Account.template`)."""
    return TenantError("InvalidTemplate.NotFound", f"The template {template_id} does not exist.")


# ---------------------------------------------------------------------------------------------- the table
class Templates(enum.Enum):
    CREATE = "create"  # the answer's TemplateId becomes the tenant's
    USE = "use"  # a TemplateId in the parameters must be the tenant's
    DELETE = "delete"  # as USE; the tenant's ownership ends when the call succeeds


@dataclass(frozen=True)
class Listing:
    """A list the upstream pages over the whole account: fetched whole, filtered, then paged for the tenant."""

    items: str  # the result's list
    fetch_all: Mapping[str, int]  # parameters that make the upstream answer everything in one page
    window: Callable[[Mapping[str, Any]], slice]  # the caller's page of the filtered list
    total: str | None = None  # a result field counting the whole (filtered) list
    unless: str | None = None  # a parameter that, when set, asks for one item: no listing then


@dataclass(frozen=True)
class Scope:
    db_params: tuple[str, ...] = ()  # parameters holding one face-database name
    db_list_params: tuple[str, ...] = ()  # parameters holding comma-separated face-database names
    db_results: tuple[Path, ...] = ()  # where database names sit in the result (lists walked item by item)
    templates: Templates | None = None
    template_results: tuple[Path, ...] = ()  # where template ids sit in the result
    listing: Listing | None = None


def _offset_window(params: Mapping[str, Any]) -> slice:
    offset = _integer(params, "Offset", minimum=0) or 0
    limit = _integer(params, "Limit", minimum=1)
    return slice(offset, None if limit is None else offset + limit)


def _page_window(params: Mapping[str, Any]) -> slice:
    page_no = _integer(params, "PageNo", minimum=1) or 1
    size = _integer(params, "PageSize", minimum=1, maximum=TEMPLATE_PAGE_MAX) or TEMPLATE_PAGE_DEFAULT
    return slice((page_no - 1) * size, page_no * size)


DB = ("DbName",)
SCOPES: dict[str, Scope] = {
    "CreateFaceDb": Scope(db_params=("Name",)),
    "DeleteFaceDb": Scope(db_params=("Name",)),
    "ListFaceDbs": Scope(db_results=(("DbList", "Name"),), listing=Listing("DbList", DB_FETCH_ALL, _offset_window)),
    "AddFaceEntity": Scope(db_params=DB),
    "GetFaceEntity": Scope(db_params=DB, db_results=(("DbName",),)),
    "ListFaceEntities": Scope(db_params=DB, db_results=(("Entities", "DbName"),)),
    "UpdateFaceEntity": Scope(db_params=DB),
    "DeleteFaceEntity": Scope(db_params=DB),
    "AddFace": Scope(db_params=DB),
    "BatchAddFaces": Scope(db_params=DB),
    "DeleteFace": Scope(db_params=DB),
    "SearchFace": Scope(db_params=DB, db_list_params=("DbNames",), db_results=(("MatchList", "FaceItems", "DbName"),)),
    "AddFaceImageTemplate": Scope(templates=Templates.CREATE),
    "MergeImageFace": Scope(templates=Templates.USE),
    "DeleteFaceImageTemplate": Scope(templates=Templates.DELETE),
    "QueryFaceImageTemplate": Scope(
        templates=Templates.USE,
        template_results=(("Elements", TEMPLATE_ID),),
        listing=Listing("Elements", TEMPLATE_FETCH_ALL, _page_window, total="Total", unless=TEMPLATE_ID),
    ),
}


# ---------------------------------------------------------------------------------------------- namespaces
NAMESPACE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
NAMESPACE_CANDIDATES = 4  # ids offered per claim; a 36**10 space makes even a second one all but unused
MAX_CACHED_NAMESPACES = 100_000

# A tenant's namespace id, claimed with its reverse entry (shared/lua/namespace_claim.lua).
CLAIM_NAMESPACE = SCRIPTS["namespace_claim"]


def namespace_key(tenant: str) -> str:
    """string: the tenant's namespace id; no expiry (its databases live upstream for as long)."""
    return f"{PREFIX}:tenant:ns:{hashlib.sha256(tenant.encode()).hexdigest()}"


NAMESPACE_OWNER_PREFIX = f"{PREFIX}:tenant:nsid:"  # string per id: the tenant holding it; no expiry


def db_prefix(namespace_id: str) -> str:
    """The upstream name prefix of a namespace, e.g. `tk3v9q0x2mb_`."""
    return f"t{namespace_id}_"


class Namespaces:
    """Tenants' namespace ids, claimed on first use and remembered by the worker (an id never changes)."""

    def __init__(self, redis: Redis, *, draw: Callable[[], str] | None = None) -> None:
        self._claim = registered(redis, CLAIM_NAMESPACE)
        self._known: dict[str, str] = {}
        self._draw = draw or _random_namespace_id

    async def prefix(self, tenant: str) -> str:
        namespace_id = self._known.get(tenant)
        while namespace_id is None:
            candidates = [self._draw() for _ in range(NAMESPACE_CANDIDATES)]
            claimed = _text(
                await self._claim(keys=[namespace_key(tenant)], args=[NAMESPACE_OWNER_PREFIX, tenant, *candidates])
            )
            namespace_id = claimed or None
        if len(self._known) >= MAX_CACHED_NAMESPACES:
            self._known.clear()
        self._known[tenant] = namespace_id
        return db_prefix(namespace_id)


def _random_namespace_id() -> str:
    return "".join(secrets.choice(NAMESPACE_ALPHABET) for _ in range(PREFIX_HEX_DIGITS))


def needs_namespace(action: str) -> bool:
    """Whether an action touches face databases or templates (then it needs the tenant's namespace)."""
    return action in SCOPES


# ---------------------------------------------------------------------------------------------- public API


def owner_key(template_id: str) -> str:
    """string: the tenant owning an upstream face-fusion template; no expiry."""
    return f"{PREFIX}:tenant:tpl:{template_id}"


def tenant_templates_key(tenant: str) -> str:
    """set: the template ids a tenant owns; no expiry."""
    return f"{PREFIX}:tenant:tpls:{hashlib.sha256(tenant.encode()).hexdigest()}"


async def scope_request(redis: Redis, action: str, params: dict[str, Any], tenant: str, prefix: str) -> dict[str, Any]:
    """The parameters the upstream should see for this tenant, whose namespace is `prefix` (a new dict).
    Raises TenantError."""
    scoped = dict(params)
    scope = SCOPES.get(action)
    if scope is None:
        return scoped
    for field in scope.db_params:
        if scoped.get(field) not in (None, ""):  # absent: the upstream answers Missing<field>
            scoped[field] = prefix + _checked_name(field, scoped[field])
    for field in scope.db_list_params:
        if scoped.get(field) not in (None, ""):
            names = [name.strip() for name in str(scoped[field]).split(",") if name.strip()]
            scoped[field] = ",".join(prefix + _checked_name(field, name) for name in names)
    if scope.templates in (Templates.USE, Templates.DELETE) and scoped.get(TEMPLATE_ID):
        await _check_owner(redis, str(scoped[TEMPLATE_ID]), tenant)
    listing = scope.listing
    if listing is not None and not (listing.unless and scoped.get(listing.unless)):
        listing.window(params)  # refuse a bad page before calling
        scoped.update(listing.fetch_all)
    return scoped


async def scope_result(
    redis: Redis, action: str, params: dict[str, Any], result: dict[str, Any], *, tenant: str, prefix: str
) -> dict[str, Any]:
    """The upstream's result as this tenant may see it (a new dict); `params` are the caller's own."""
    scope = SCOPES.get(action)
    if scope is None:
        return dict(result)
    scoped = copy.deepcopy(result)
    for path in scope.db_results:
        _rewrite(scoped, path, lambda name: name[len(prefix) :] if name.startswith(prefix) else None)
    if scope.template_results:
        owned = await _owned_templates(redis, tenant)
        for path in scope.template_results:
            _rewrite(scoped, path, lambda template_id: template_id if template_id in owned else None)
    listing = scope.listing
    if listing is not None and not (listing.unless and params.get(listing.unless)):
        _page(scoped, listing, params)
    await _track_templates(redis, scope.templates, params, scoped, tenant)
    return scoped


def scope_error_message(message: str, prefix: str) -> str:
    """An upstream error message in the caller's terms: its database names without the namespace prefix."""
    return message.replace(prefix, "") if prefix else message


# ---------------------------------------------------------------------------------------------- internals
def _checked_name(param: str, value: Any) -> str:
    if not isinstance(value, str) or not UPSTREAM_NAME.match(value):
        raise invalid_parameter(param, f"use 1 to {NAME_MAX} letters, digits or underscores")
    if len(value) > NAME_MAX:
        raise invalid_parameter(
            param,
            f"a face database name may have at most {NAME_MAX} characters here, not {len(value)} "
            f"(the gateway keeps {PREFIX_LENGTH} of the upstream's {UPSTREAM_NAME_MAX} for your namespace)",
        )
    return value


def _integer(params: Mapping[str, Any], name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value > (maximum or value):
        bounds = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
        raise invalid_parameter(name, f"use an integer {bounds}")
    return value


async def _check_owner(redis: Redis, template_id: str, tenant: str) -> None:
    owner = await redis.get(owner_key(template_id))
    if _text(owner) != tenant:
        raise unknown_template(template_id)


async def _owned_templates(redis: Redis, tenant: str) -> set[str]:
    members: set[bytes | str] = await redis.smembers(tenant_templates_key(tenant))  # type: ignore[misc]
    return {text for member in members if (text := _text(member)) is not None}


async def _track_templates(
    redis: Redis, kind: Templates | None, params: Mapping[str, Any], result: Mapping[str, Any], tenant: str
) -> None:
    if kind is Templates.CREATE and isinstance(result.get(TEMPLATE_ID), str):
        template_id = result[TEMPLATE_ID]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(owner_key(template_id), tenant)
            pipe.sadd(tenant_templates_key(tenant), template_id)
            await pipe.execute()
    elif kind is Templates.DELETE and params.get(TEMPLATE_ID):
        template_id = str(params[TEMPLATE_ID])
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(owner_key(template_id))
            pipe.srem(tenant_templates_key(tenant), template_id)
            await pipe.execute()


def _rewrite(node: Any, path: Path, rename: Rename) -> bool:
    """Rename the string at `path` below `node`, walking lists item by item; a list item whose string `rename`
    refuses (None) is dropped from its list. Returns False when `node` itself holds a refused string."""
    if not path or not isinstance(node, dict) or path[0] not in node:
        return True
    key, rest = path[0], path[1:]
    value = node[key]
    if not rest:
        renamed = rename(value) if isinstance(value, str) else None
        if renamed is None:
            del node[key]
            return False
        node[key] = renamed
        return True
    if isinstance(value, list):
        node[key] = [item for item in value if _rewrite(item, rest, rename)]
        return True
    return _rewrite(value, rest, rename)


def _page(result: dict[str, Any], listing: Listing, params: Mapping[str, Any]) -> None:
    items = result.get(listing.items)
    if not isinstance(items, list):
        return
    if listing.total is not None:
        result[listing.total] = len(items)
    result[listing.items] = items[listing.window(params)]


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else None
