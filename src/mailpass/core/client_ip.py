"""Whose address a hit comes from: the peer's, or the client's as named by a trusted proxy."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "IPNetwork",
    "client_address",
    "in_networks",
    "parse_networks",
    "parse_trusted_senders",
    "request_client_address",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PEER_CACHE_SIZE = 1024  # peers remembered as trusted or not


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses and CIDR networks (``MAILPASS_TRUSTED_PROXIES``,
    ``MAILPASS_PROVIDER_NETWORKS``); a ``ValueError`` names the first that is neither."""
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def parse_trusted_senders(text: str) -> tuple[tuple[IPNetwork, int], ...]:
    """``MAILPASS_SMTP_TRUSTED_NETWORKS``: comma-separated ``network=key id`` pairs (the SMTP
    relay's senders that need no AUTH, each bound to one API key); a ``ValueError`` names the
    first entry that is not one."""
    bound = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        network, equals, key_id = item.rpartition("=")
        if not equals or not key_id.strip().isdigit():
            raise ValueError(f"{item!r} is not NETWORK=KEY_ID (an API key's id, a number)")
        (parsed,) = parse_networks(network) or (None,)
        if parsed is None:
            raise ValueError(f"{item!r} names no network")
        bound.append((parsed, int(key_id)))
    return tuple(bound)


def in_networks(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether the IP address ``address`` (an IPv4-mapped IPv6 one as its IPv4) is in one of
    ``networks``; False for anything that is not an IP address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[IPNetwork, ...]
) -> str | None:
    """The client's address.

    ``X-Forwarded-For`` counts only when the peer is a trusted proxy. Its entries are read from
    the right (the one our proxy added) leftwards, past every further trusted proxy; the first
    address that is not one is the client. Anything left of it could have been written by the
    client itself, and an entry that is not an IP address ends the walk.
    """
    if not trusted or not _is_trusted_peer(peer, trusted):
        return peer
    address = _parse(peer)
    assert address is not None  # a trusted peer is an address
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if not _is_trusted(address, trusted):
            break
        hop_address = _parse(hop)
        if hop_address is None:
            break
        address = hop_address
    return str(address)


def request_client_address(scope: Mapping[str, Any], trusted: tuple[IPNetwork, ...]) -> str | None:
    """``client_address`` of an ASGI request: its peer and its ``X-Forwarded-For`` headers."""
    client = scope.get("client")
    forwarded = (
        [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
        if trusted
        else []
    )
    return client_address(client[0] if client else None, forwarded, trusted)


@functools.lru_cache(maxsize=_PEER_CACHE_SIZE)
def _is_trusted_peer(peer: str | None, trusted: tuple[IPNetwork, ...]) -> bool:
    """Whether ``peer`` is one of the trusted proxies. Cached: behind a proxy every request
    comes from the same few peers, and parsing an address costs more than the rest of a hit's
    bookkeeping."""
    address = _parse(peer)
    return address is not None and _is_trusted(address, trusted)


def _parse(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: tuple[IPNetwork, ...]
) -> bool:
    return any(address.version == network.version and address in network for network in trusted)
