"""Callers' URLs (image and video URLs of tool calls, webhook targets), parsed strictly and normalised.

`caller_url` refuses the forms URL parsers disagree on and normalises the rest, so the host we judge
(shared/netpolicy.py) is the host the reader connects to. What is refused and what is normalised to what:
docs/architecture.md, "Tool input and callers' URLs".
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

import idna  # yarl's own dependency: hosts come out as yarl (the webhook sender's parser) encodes them

from shared.netpolicy import IPAddress, host_address

MAX_URL = 2048
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_AUTHORITY_END = re.compile(r"[/?#]")
_QUERY_START = re.compile(r"[?#]")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_HEX = re.compile(r"0x[0-9a-f]*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})  # 。．｡ (NFKC leaves 。)


class UrlRefused(ValueError):
    """A URL `caller_url` will not pass. `reason` says why, or is "" when it simply is not an http(s) URL with a
    host (callers then keep their plain sentence)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or "not an http or https URL with a host")
        self.reason = reason

    def explained(self, sentence: str) -> str:
        """`sentence` ("ImageURL must be a valid http or https URL"), with the reason after a colon if there is one."""
        return f"{sentence}: {self.reason}" if self.reason else sentence


@dataclass(frozen=True, slots=True)
class CallerUrl:
    """A caller's URL, normalised: `url` is the text to store and forward."""

    url: str
    host: str  # as in `url`: a lowercase ASCII name, a dotted IPv4 address or an [IPv6] literal
    address: IPAddress | None  # what the host names without DNS (an IP, or loopback for localhost); None: a name


def caller_url(raw: str) -> CallerUrl:
    """`raw` parsed strictly and normalised (docs/architecture.md has the table); raises UrlRefused."""
    if len(raw) > MAX_URL:
        raise UrlRefused(f"it is longer than {MAX_URL} characters")
    if not raw.isprintable() or " " in raw:
        raise UrlRefused()
    scheme, authority, rest = _split(raw)
    host_text, port = _host_and_port(authority, scheme)
    host, address = _host(host_text)
    netloc = host if port is None else f"{host}:{port}"
    return CallerUrl(url=f"{scheme}://{netloc}{_ascii(rest)}", host=host, address=address)


def _split(raw: str) -> tuple[str, str, str]:
    """The scheme (lowercase), the authority, and the rest (path, query, fragment)."""
    match = _SCHEME.match(raw)
    scheme = match[0][:-1].lower() if match else ""
    if scheme not in _DEFAULT_PORTS:
        raise UrlRefused()
    after = raw[len(scheme) + 1 :]
    if "\\" in _QUERY_START.split(after, maxsplit=1)[0]:
        raise UrlRefused("it has a backslash before the query, which parsers read differently")
    if not after.startswith("//"):
        raise UrlRefused()
    end = _AUTHORITY_END.search(after, 2)
    authority, rest = (after[2 : end.start()], after[end.start() :]) if end else (after[2:], "")
    if "@" in authority:
        raise UrlRefused("it carries credentials (user:pass@)")
    return scheme, authority, rest


def _host_and_port(authority: str, scheme: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        close = authority.find("]") + 1
        if not close:
            raise UrlRefused("its IPv6 address is not valid")
        host, after = authority[:close], authority[close:]
    else:
        host, colon, port = authority.partition(":")
        after = colon + port
    if after and not after.startswith(":"):
        raise UrlRefused("its host is not a valid host name or address")
    return host, _port(after[1:], scheme)


def _port(text: str, scheme: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= 65535:
        raise UrlRefused("its port is not a number from 1 to 65535")
    port = int(text)
    return None if port == _DEFAULT_PORTS[scheme] else port


def _host(text: str) -> tuple[str, IPAddress | None]:
    """The host as it goes in the normalised URL, and the address it names without DNS."""
    if not text:
        raise UrlRefused()
    if text.startswith("["):
        return _ipv6(text[1:-1])
    name = unicodedata.normalize("NFKC", text).translate(_FULL_STOPS)
    if "%" in name:
        raise UrlRefused("its host is percent-encoded")
    name = name.lower() if name.isascii() else _idna(name)
    labels = name.removesuffix(".").split(".")
    if labels[-1].isdigit() or _HEX.fullmatch(labels[-1]):  # WHATWG: "ends in a number", so an IPv4 address
        address = host_address(name)
        if address is None:
            raise UrlRefused("its host ends in a number but is not an IPv4 address")
        return str(address), address
    if len(name.removesuffix(".")) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlRefused("its host is not a valid host name or address")
    return name, host_address(name)


def _ipv6(text: str) -> tuple[str, IPAddress]:
    try:
        if not text.isascii() or "%" in text:
            raise ValueError(text)
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise UrlRefused("its IPv6 address is not valid") from None
    return f"[{address.compressed}]", address


def _idna(name: str) -> str:
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except UnicodeError:  # idna.IDNAError and its kinds
        raise UrlRefused("its host is not a valid internationalised domain name") from None


def _ascii(text: str) -> str:
    """Non-ASCII characters percent-encoded as UTF-8 (as WHATWG parsers send them); the rest as given."""
    return text if text.isascii() else "".join(ch if ch.isascii() else quote(ch, safe="") for ch in text)
