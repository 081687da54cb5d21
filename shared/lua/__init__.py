"""The Lua scripts: one file per script (`<name>.lua` here) and the library parts they share (`lib/<part>.lua`).

A file whose first line is `--! uses: a, b` calls functions of the parts `a` and `b`; a part may use others the
same way. A script is `<name>.lua` preceded by every part it uses, each once and after the parts it uses itself
(a Lua local must be defined before the code that calls it). Nothing else joins or rewrites script text.

Key names are given when the scripts are loaded, not per call. `load(names)` assembles every script, `names`
(shared/keys.py SCRIPT_NAME_TABLE: job, batch, payment, queue, arq's prefixes, ...) written in as the part `names`,
which is no file but one generated comment and line, `local NAMES = {arq_in_progress = "arq:in-progress:", ...}`
(`lua_table`: names in sorted order, each value a `lua_literal`, every byte but printable ASCII escaped; str
values only). A script that uses `names`, itself or through a part (`state` does), reads `NAMES.job` and so on:
its text, and so its SHA, holds the names, and no call sends them. shared/keys.py makes
`SCRIPTS = load(SCRIPT_NAME_TABLE)` (every name written once, in Python), and the modules that run scripts take
them from there. The files are read once, at import, and names are written in sorted order: each script's text is
the same on every run.

How they are called (each file's header says its KEYS and ARGV): keys come in as KEYS, or are built from NAMES;
a script with more than five options takes them as one table, `pack`ed here and read with `cmsgpack.unpack`.

How they run: `Library(names)` is every script as a function of one Redis function library (the parts once at its
top, so their code runs when the library is loaded rather than on every call), and `Function` calls one with FCALL,
loading the library first when the server does not have it (`load_library`: one load for all the calls that found
it missing). shared/keys.py makes `FUNCTIONS = Library(...)` from the same names, `keys.registered(redis, text)` is
the function of one of SCRIPTS, and `keys.load_functions` loads the library as a process starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

import msgspec
from redis.exceptions import ResponseError

from shared import autopipeline

USES = re.compile(r"--! uses:(.*)")
_msgpack = msgspec.msgpack.Encoder()


def _texts(folder: Traversable) -> dict[str, str]:
    return {f.name.removesuffix(".lua"): f.read_text() for f in folder.iterdir() if f.name.endswith(".lua")}


def uses(text: str) -> list[str]:
    """The parts a file's first line names."""
    match = USES.fullmatch(text.partition("\n")[0].strip())
    return [name.strip() for name in match.group(1).split(",") if name.strip()] if match else []


def assemble(text: str, parts: Mapping[str, str]) -> str:
    """`text` preceded by the parts it uses, depth first: each part after its own, each once."""
    return "".join([*(parts[name] for name in in_order(uses(text), parts)), text])


def in_order(names: Iterable[str], parts: Mapping[str, str]) -> list[str]:
    """`names` and the parts they use, depth first: each part after the parts it uses, each once (a part used by
    itself, through others, or one that does not exist is refused)."""
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            raise ValueError("Lua parts use each other: " + " -> ".join((*chain, name)))
        if name not in parts:
            raise ValueError(f"no Lua part lib/{name}.lua (used by {chain[-1] if chain else 'a script'})")
        if name not in order:
            for used in uses(parts[name]):
                visit(used, (*chain, name))
            order.append(name)

    for name in names:
        visit(name, ())
    return order


NAMES_PART = "names"  # the part `load` writes from its names (there is no lib/names.lua)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LUA_KEYWORDS = frozenset({
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local", "nil", "not", "or",
    "repeat", "return", "then", "true", "until", "while",
})  # fmt: skip
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def lua_literal(text: str) -> str:
    """`text` as a Lua string literal: its UTF-8 bytes, each but printable ASCII (and `"`, `\\`) as a three-digit
    decimal escape, so the literal is one line and reads back as exactly those bytes. Only a str."""
    if type(text) is not str:
        raise TypeError(f"a Lua string literal is made of a str, not {type(text).__name__}")
    return '"' + "".join(chr(byte) if byte in _PLAIN else f"\\{byte:03d}" for byte in text.encode()) + '"'


def lua_table(values: Mapping[str, str]) -> str:
    """A Lua table constructor of str names to str values, in sorted order: `{job = "s402:job:", ["a-b"] = "x"}`.
    Anything else (bytes, a number, None, a str subclass) is refused: say what you mean."""
    for name in values:
        if type(name) is not str:
            raise TypeError(f"a Lua table's name is a str, not {type(name).__name__}")
    fields = []
    for name in sorted(values):
        plain = _IDENTIFIER.fullmatch(name) and name not in _LUA_KEYWORDS
        fields.append(f"{name if plain else f'[{lua_literal(name)}]'} = {lua_literal(values[name])}")
    return "{" + ", ".join(fields) + "}"


def names_part(names: Mapping[str, str]) -> str:
    """The part `names`: the key names and prefixes a script builds keys from, as the local NAMES."""
    header = "-- NAMES: shared/keys.py SCRIPT_NAME_TABLE, written in when loaded (shared/lua/__init__.py `load`)"
    return f"{header}\nlocal NAMES = {lua_table(names)}\n"


_HERE = resources.files(__name__)
_FILES = _texts(_HERE)
_PARTS = _texts(_HERE / "lib")
if NAMES_PART in _PARTS:
    raise ValueError(f"lib/{NAMES_PART}.lua: the part `{NAMES_PART}` is written by load(), from its names")


def parts() -> Mapping[str, str]:
    """The library parts (lib/<part>.lua) by name."""
    return MappingProxyType(dict(_PARTS))


def files() -> Mapping[str, str]:
    """The scripts' own files (<name>.lua) by name, as written."""
    return MappingProxyType(dict(_FILES))


def _with_names(names: Mapping[str, str]) -> dict[str, str]:
    """Every part, the part `names` written from `names` among them."""
    return {**_PARTS, NAMES_PART: names_part(names)}


def load(names: Mapping[str, str]) -> Mapping[str, str]:
    """Every script by its file name, assembled with `names` written in (the part `names`)."""
    parts = _with_names(names)
    return MappingProxyType({name: assemble(text, parts) for name, text in sorted(_FILES.items())})


class Library:
    """Every script as a function of one Redis function library (FUNCTION LOAD), built from the same parts and files
    as `load`'s texts: each part once at the library's top (run once, when the library is loaded, not on every
    call as a script's prelude is), then each file's text as the body of a function whose KEYS and ARGV are its
    arguments. The library's name and every function's name end with a digest of the library's code, so two
    versions (a rolling upgrade, or the tests' names) live side by side, and a name always means the same code."""

    def __init__(self, names: Mapping[str, str]) -> None:
        parts = _with_names(names)
        top = "".join(parts[name] for name in in_order(sorted(parts), parts))
        bodies = dict(sorted(_FILES.items()))

        def code(suffix: str) -> str:
            registered = [
                f"redis.register_function('{name}{suffix}', function(KEYS, ARGV)\n{body}\nend)\n"
                for name, body in bodies.items()
            ]
            return f"#!lua name=s402{suffix}\n" + top + "".join(registered)

        # the digest of the whole code but the digest itself: no two codes share a name
        digest = hashlib.sha1(code("").encode(), usedforsecurity=False).hexdigest()[:16]
        self.name = f"s402_{digest}"
        self.functions: Mapping[str, str] = MappingProxyType({name: f"{name}_{digest}" for name in bodies})
        self.code = code(f"_{digest}")


def _lua_string(data: bytes) -> msgspec.Raw:
    """Bytes as a msgpack str (Lua's cmsgpack has no bin type): any bytes, read back as a Lua string."""
    size = len(data)
    if size < 32:
        head = bytes([0xA0 | size])
    elif size < 1 << 8:
        head = b"\xd9" + size.to_bytes(1, "big")
    elif size < 1 << 16:
        head = b"\xda" + size.to_bytes(2, "big")
    else:
        head = b"\xdb" + size.to_bytes(4, "big")
    return msgspec.Raw(head + data)


def _lua_value(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is float:
        return repr(value)  # as redis-py sends a number in ARGV: the script reads the same string
    if kind is bytes:
        return _lua_string(value)
    if kind is list or kind is tuple:
        return [_lua_value(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _lua_value(item) for key, item in value.items()}
    raise TypeError(f"no Lua value for {kind.__name__}")  # bool, None, a subclass: say what you mean


def pack(**options: Any) -> bytes:
    """One ARGV holding a table of options: every str, bytes and number arrives as the Lua string it would be as
    its own ARGV, lists and mappings as tables."""
    encoded: bytes = _msgpack.encode(_lua_value(options))
    return encoded


FUNCTION_NOT_FOUND = "function not found"  # (in the error of an FCALL of a function no library loaded defines)
UNKNOWN_COMMAND = "unknown command"  # (a server without functions: Redis before 7.0)


class FunctionsUnsupported(RuntimeError):
    """The Redis server has no FUNCTION LOAD (Redis 7.0+ or Valkey 7.2+ is needed)."""


_loading: dict[tuple[int, int, str], asyncio.Future[None]] = {}


async def load_library(redis: Any, library: Library) -> None:
    """FUNCTION LOAD REPLACE `library` on `redis` (the same code under the same name: harmless when it is there).
    However many calls of one process find the library missing at once, one load is made and they all wait for
    it. Raises FunctionsUnsupported on a server without functions; the processes call this as they start, so such
    a server (or an ACL that forbids FUNCTION) stops them there rather than failing every call."""
    key = (id(asyncio.get_running_loop()), id(redis), library.name)
    task = _loading.get(key)
    if task is None:
        task = asyncio.ensure_future(_load(redis, library))
        _loading[key] = task
        task.add_done_callback(lambda done: _loaded(key, done))
    await asyncio.shield(task)


def _loaded(key: tuple[int, int, str], task: asyncio.Future[None]) -> None:
    if _loading.get(key) is task:
        del _loading[key]
    if not task.cancelled():
        task.exception()  # retrieved here: every caller that waited has seen it


async def _load(redis: Any, library: Library) -> None:
    try:
        await redis.function_load(library.code, replace=True)
    except ResponseError as exc:
        if UNKNOWN_COMMAND in str(exc).lower():
            raise FunctionsUnsupported(
                f"the Redis server has no FUNCTION LOAD; server402 needs Redis 7.0+ or Valkey 7.2+ ({exc})"
            ) from exc
        raise


class Function:
    """One script of a `Library`, called as redis-py's registered scripts are (`await f(keys=..., args=...)`):
    FCALL by its name, sharing a round trip with the other commands of its event-loop turn (shared/autopipeline.py).
    When the server does not have it (a new server, one restarted without its data, or
    FUNCTION FLUSH), the library is loaded (`load_library`: once for all the calls that found it missing) and the
    call made again, once. The client is a connection or pool client, not a pipeline (whose FCALL only queues)."""

    def __init__(self, redis: Any, library: Library, script: str) -> None:
        self._redis = redis
        self._library = library
        self.name = library.functions[script]

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return await autopipeline.call(self._redis, "FCALL", self.name, len(keys), *keys, *args)
        except ResponseError as exc:
            if FUNCTION_NOT_FOUND not in str(exc).lower():
                raise
        await load_library(self._redis, self._library)
        return await autopipeline.call(self._redis, "FCALL", self.name, len(keys), *keys, *args)
