"""host:port strings as Toxiproxy (Go's net package) reads and writes them:
"127.0.0.1:80", "[::1]:80", ":80", "" (every interface, any port).

Errors carry Go's wording ("address garbage: missing port in address"), since
Toxiproxy passes them to its API clients verbatim.
"""

from __future__ import annotations

import ipaddress
import socket


class AddressError(ValueError):
    pass


def split(address: str) -> tuple[str, int]:
    """(host, port) as Go's ``SplitHostPort`` then ``LookupPort`` read it."""
    host, port_text = split_host_port(address)
    return host, lookup_port(port_text)


def split_host_port(address: str) -> tuple[str, str]:
    def fail(why: str) -> AddressError:
        return AddressError(f"address {address}: {why}")

    i = address.rfind(":")
    if i < 0:
        raise fail("missing port in address")
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(address):
            raise fail("missing port in address")
        if end + 1 != i:
            raise fail("too many colons in address" if address[end + 1] == ":" else "missing port in address")
        host = address[1:end]
        if "[" in address[1:] or "]" in address[end + 1:]:
            raise fail("unexpected '[' in address" if "[" in address[1:] else "unexpected ']' in address")
    else:
        host = address[:i]
        if ":" in host:
            raise fail("too many colons in address")
        if "[" in address:
            raise fail("unexpected '[' in address")
        if "]" in address:
            raise fail("unexpected ']' in address")
    return host, address[i + 1:]


def lookup_port(text: str) -> int:
    """A port number or service name, as Go's ``LookupPort`` ("" is 0)."""
    digits = text[1:] if text[:1] in "+-" else text
    if digits.isdigit() and digits.isascii():
        value = int(text)
    elif text == "":
        value = 0
    else:
        try:
            value = socket.getservbyname(text, "tcp")
        except OSError:
            raise AddressError(f"lookup tcp/{text}: unknown port") from None
    if not 0 <= value <= 65535:
        raise AddressError(f"address {text}: invalid port")
    return value


def join(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
