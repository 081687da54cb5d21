"""The Lua scripts: one file per script (`<name>.lua` here) and the library parts they share (`lib/<part>.lua`).

A file whose first line is `--! uses: a, b` calls functions of the parts `a` and `b`; a part may use others the
same way. `SCRIPTS[name]` is `<name>.lua` preceded by every part it uses, each once and after the parts it uses
itself (a Lua local must be defined before the code that calls it). They are assembled once, at import; nothing
else joins or rewrites script text.

How they are called (each file's header says its KEYS and ARGV): keys come in as KEYS, or are built from the
names a script that uses `names` takes as ARGV[1] (shared/keys.py SCRIPT_NAMES); a script with more than five
options takes them as one table, `pack`ed here and read with `cmsgpack.unpack`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

import msgspec

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


def _load() -> Mapping[str, str]:
    here = resources.files(__name__)
    parts = _texts(here / "lib")
    return MappingProxyType({name: assemble(text, parts) for name, text in sorted(_texts(here).items())})


SCRIPTS = _load()


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
