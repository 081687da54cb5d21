"""Which network addresses a URL given by a caller may point at: public ones, plus the operator's allowed networks.

Used for webhook targets and for image and video URLs (the URLs themselves are parsed by shared/urls.py). What
`host_address` reads without DNS, and how an IPv6 address carrying an IPv4 one is judged: docs/architecture.md,
"Tool input and callers' URLs".
"""

from __future__ import annotations

import functools
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def address_allowed(address: str, allowed_networks: tuple[str, ...]) -> bool:
    """Public unicast addresses, plus any in the operator's allowed networks."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return ip_allowed(ip, allowed_networks)


def ip_allowed(ip: IPAddress, allowed_networks: tuple[str, ...]) -> bool:
    """Public unicast addresses, plus any in the operator's allowed networks; an IPv6 address outside those that
    carries IPv4 ones (embedded_ipv4s) is allowed when all of those are."""
    if any(ip in ipaddress.ip_network(net) for net in allowed_networks):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and (carried := embedded_ipv4s(ip)):
        return all(ip_allowed(v4, allowed_networks) for v4 in carried)
    return ip.is_global and not ip.is_multicast


_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated, but still routed as IPv4 by some stacks
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT, RFC 2765
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix, RFC 6052
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local use, RFC 8215: any RFC 6052 prefix length in it
_LOW_32 = 0xFFFF_FFFF


def embedded_ipv4s(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries, by its prefix: IPv4-mapped (::ffff:0:0/96), -compatible
    (::/96) and -translated (::ffff:0:0:0/96), NAT64 (64:ff9b::/96; 64:ff9b:1::/48 at every place RFC 6052
    allows), 6to4 (2002::/16), Teredo (2001::/32: server and client). Empty for any other address."""
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in _IPV4_COMPATIBLE or ip in _IPV4_TRANSLATED or ip in _NAT64:
        return (ipaddress.IPv4Address(int(ip) & _LOW_32),)
    if ip in _NAT64_LOCAL:
        return tuple(_rfc6052_ipv4(ip, prefix_len) for prefix_len in (48, 56, 64, 96))
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    return ()


def _rfc6052_ipv4(ip: ipaddress.IPv6Address, prefix_len: int) -> ipaddress.IPv4Address:
    """The IPv4 address after a NAT64 prefix of this length (RFC 6052 2.2: bits 64-71 are skipped)."""
    if prefix_len == 96:
        return ipaddress.IPv4Address(int(ip) & _LOW_32)
    value = int(ip)
    without_u = (value >> 64) << 56 | (value & ((1 << 56) - 1))  # 120 bits
    return ipaddress.IPv4Address((without_u >> (88 - prefix_len)) & _LOW_32)


@functools.lru_cache(maxsize=4096)  # the same few image hosts, call after call: each parsed once (bounded)
def host_address(host: str) -> IPAddress | None:
    """The address a URL's host names without any DNS lookup, or None for a name (docs/architecture.md)."""
    host = host.strip("[]").split("%", 1)[0].rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return LOOPBACK
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _numeric_ipv4(host)


def _numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    *leading, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(parts)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int | None:
    base, digits = 10, part
    if part[:2] in ("0x", "0X"):
        base, digits = 16, part[2:]
    elif len(part) > 1 and part.startswith("0"):
        base, digits = 8, part[1:]
    if not digits:
        return 0 if base == 16 else None
    try:
        return int(digits, base) if digits.isalnum() and digits.isascii() else None
    except ValueError:
        return None
