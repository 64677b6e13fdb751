"""host:port strings as Toxiproxy writes them ("127.0.0.1:80", "[::1]:80", ":80")."""

from __future__ import annotations

import ipaddress


class AddressError(ValueError):
    pass


def split(address: str) -> tuple[str, int]:
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise AddressError(f"address {address}: missing port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise AddressError(f"address {address}: invalid port") from None
    if not 0 <= port <= 65535:
        raise AddressError(f"address {address}: invalid port")
    return host, port


def join(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
