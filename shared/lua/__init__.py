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
loading the library first when the server does not have it. shared/keys.py makes `FUNCTIONS = Library(...)` from
the same names, and `keys.registered(redis, text)` is the function of one of SCRIPTS.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

import msgspec
from redis.exceptions import ResponseError

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

    for name in uses(text):
        visit(name, ())
    return "".join([*(parts[name] for name in order), text])


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


def load(names: Mapping[str, str]) -> Mapping[str, str]:
    """Every script by its file name, assembled with `names` written in (the part `names`)."""
    parts = {**_PARTS, NAMES_PART: names_part(names)}
    return MappingProxyType({name: assemble(text, parts) for name, text in sorted(_FILES.items())})


class Library:
    """Every script as a function of one Redis function library (FUNCTION LOAD), built from the same parts and files
    as `load`'s texts: each part once at the library's top (run once, when the library is loaded, not on every
    call as a script's prelude is), then each file's text as the body of a function whose KEYS and ARGV are its
    arguments. The library's name and every function's name end with a digest of the library's code, so two
    versions (a rolling upgrade, or the tests' names) live side by side, and a name always means the same code."""

    def __init__(self, names: Mapping[str, str]) -> None:
        parts = {**_PARTS, NAMES_PART: names_part(names)}
        order: list[str] = []
        for name in sorted(parts):
            for part in _parts_in_order(name, parts):
                if part not in order:
                    order.append(part)
        top = "".join(parts[name] for name in order)
        bodies = dict(sorted(_FILES.items()))
        digest = hashlib.sha1((top + "".join(bodies.values())).encode(), usedforsecurity=False).hexdigest()[:16]
        self.name = f"s402_{digest}"
        self.functions: Mapping[str, str] = MappingProxyType({name: f"{name}_{digest}" for name in bodies})
        registered = [
            f"redis.register_function('{self.functions[name]}', function(KEYS, ARGV)\n{body}\nend)\n"
            for name, body in bodies.items()
        ]
        self.code = f"#!lua name={self.name}\n" + top + "".join(registered)


def _parts_in_order(name: str, parts: Mapping[str, str]) -> list[str]:
    """`name` after the parts it uses, depth first, as `assemble` orders a script's parts (which refuses a cycle:
    `load` runs first)."""
    order: list[str] = []

    def visit(part: str) -> None:
        for used in uses(parts[part]):
            visit(used)
        if part not in order:
            order.append(part)

    visit(name)
    return order


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


class Function:
    """One script of a `Library`, called as redis-py's registered scripts are (`await f(keys=..., args=...)`):
    FCALL by its name. When the server does not have it (a new server, one restarted without its data, or
    FUNCTION FLUSH), the library is loaded (FUNCTION LOAD REPLACE: the same code under the same name, so loading
    it twice at once is harmless) and the call made again, once."""

    def __init__(self, redis: Any, library: Library, script: str) -> None:
        self._redis = redis
        self._library = library
        self.name = library.functions[script]

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any = None) -> Any:
        redis = client if client is not None else self._redis
        try:
            return await redis.fcall(self.name, len(keys), *keys, *args)
        except ResponseError as exc:
            if FUNCTION_NOT_FOUND not in str(exc).lower():
                raise
        await redis.function_load(self._library.code, replace=True)
        return await redis.fcall(self.name, len(keys), *keys, *args)
