"""Where webhooks may go: a public address, unless ``MAILPASS_WEBHOOKS_ALLOW_PRIVATE``. An
endpoint's URL is someone's input, and MailPass sits inside a network: without this, a URL of
``http://10.0.0.5:5432/`` or ``http://169.254.169.254/`` would make MailPass reach for what
only it can reach (SSRF). The host is resolved once per attempt and the request goes to the
very address checked, so a name that resolves elsewhere the second time gains nothing."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Destination", "Destinations", "UnsafeDestination", "check_url", "resolve"]


class UnsafeDestination(ValueError):
    """A URL MailPass does not send webhooks to; the message says why."""


@dataclass(frozen=True, slots=True)
class Destination:
    url: str  # the URL with the checked address in place of the host name
    host: str  # the name, for the Host header and TLS's SNI
    address: str


def check_url(url: str) -> None:
    """The shape of an endpoint's URL: http(s), a host, no credentials, at most 2000 chars."""
    if len(url) > 2000:
        raise UnsafeDestination("the URL is longer than 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeDestination("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise UnsafeDestination("the URL must not carry a user name or password")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise UnsafeDestination("the URL's port is not a port") from None


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(url: str, *, allow_private: bool) -> Destination:
    """Where to send ``url``'s request; UnsafeDestination for a private address."""
    check_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeDestination(f"{host} does not resolve: {exc}") from None
    addresses = [str(info[4][0]) for info in found]
    if not allow_private:
        private = [a for a in addresses if not _public(a)]
        if private:
            raise UnsafeDestination(
                f"{host} is a private address ({private[0]}): webhooks go to public ones "
                "(MAILPASS_WEBHOOKS_ALLOW_PRIVATE=1 allows others)"
            )
    address = addresses[0]
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    return Destination(parts._replace(netloc=netloc).geturl(), host, address)


class Destinations:
    """``resolve`` with the answers kept for ``ttl`` seconds: an endpoint receiving thousands
    of webhooks a second is not looked up thousands of times (each lookup a thread's work)."""

    def __init__(self, *, allow_private: bool, ttl: float = 30.0) -> None:
        self.allow_private = allow_private
        self.ttl = ttl
        self._known: dict[str, tuple[float, Destination]] = {}

    async def resolve(self, url: str) -> Destination:
        now = time.monotonic()
        known = self._known.get(url)
        if known is not None and known[0] > now:
            return known[1]
        destination = await resolve(url, allow_private=self.allow_private)
        if len(self._known) > 1000:
            self._known.clear()
        self._known[url] = (now + self.ttl, destination)
        return destination
