"""The DNS, as MailPass asks it: a recipient domain's MX hosts, a host's addresses, TXT records.

dnspython's asynchronous resolver, asking ``MAILPASS_DNS_RESOLVER`` when it is set (a resolver
inside a split-horizon network, or the tests' own server) and the system's otherwise, with a
cache that keeps each answer for its TTL: a queue of mail to one domain asks once, not per
message.

Exceptions::

    DnsError            no answer could be had
    ├── NoSuchDomain    the name does not exist (NXDOMAIN): asking again will not help
    └── DnsUnavailable  timeouts, SERVFAIL, no reachable server: worth asking again later
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.inet
import dns.nameserver
import dns.rdatatype
import dns.resolver

__all__ = [
    "DnsError",
    "DnsUnavailable",
    "MxHost",
    "NoSuchDomain",
    "Resolver",
    "parse_servers",
]

DNS_PORT = 53


class DnsError(Exception):
    """No answer could be had; the message says for which name and why."""


class NoSuchDomain(DnsError):
    pass


class DnsUnavailable(DnsError):
    pass


@dataclass(frozen=True, slots=True)
class MxHost:
    preference: int
    host: str  # without the trailing dot; "" for a null MX (RFC 7505)

    @property
    def is_null(self) -> bool:
        return self.host == ""


def parse_servers(text: str) -> list[tuple[str, int]]:
    """``"10.0.0.2:5353, 10.0.0.3, [::1]:53"`` as (address, port) pairs; ValueError naming a
    bad entry."""
    servers = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        address, port = item, DNS_PORT
        if item.startswith("["):
            address, _, rest = item[1:].partition("]")
            if rest:
                port = _port(item, rest.removeprefix(":"))
        elif item.count(":") == 1:
            address, raw_port = item.split(":")
            port = _port(item, raw_port)
        try:
            dns.inet.af_for_address(address)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address with an optional port") from None
        servers.append((address, port))
    return servers


def _port(item: str, raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{item!r} has no valid port")
    return int(raw)


def _resolver(servers: list[tuple[str, int]], timeout: float) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(address, port) for address, port in servers
        ]
    resolver.lifetime = timeout
    resolver.timeout = timeout
    # EDNS0 with room for a 2048-bit DKIM key's TXT record without falling back to TCP.
    resolver.use_edns(0, 0, 1232)
    return resolver


class Resolver:
    """Asks the DNS; ``servers`` as ``MAILPASS_DNS_RESOLVER`` gives them (empty: the
    system's), each question given ``timeout`` seconds in all.

    Delivery's questions (MX, A, AAAA) are cached for their TTL; TXT records are asked afresh
    each time, since they are asked when someone has just published one: a cached "no such
    name" would hide it for as long as the zone's negative TTL."""

    def __init__(self, servers: str = "", timeout: float = 5.0) -> None:
        chosen = parse_servers(servers)
        self._cached = _resolver(chosen, timeout)
        self._cached.cache = dns.resolver.Cache()
        self._fresh = _resolver(chosen, timeout)

    async def _ask(self, name: str, kind: str) -> dns.resolver.Answer | None:
        """The answer, or None when the name has no record of ``kind``."""
        resolver = self._fresh if kind == "TXT" else self._cached
        try:
            return await resolver.resolve(name, kind, search=False)
        except dns.resolver.NoAnswer:
            return None
        except dns.resolver.NXDOMAIN:
            raise NoSuchDomain(f"{name} does not exist (NXDOMAIN)") from None
        except dns.exception.Timeout:
            raise DnsUnavailable(f"no answer from the DNS for {name} {kind} in time") from None
        except dns.resolver.NoNameservers as exc:
            raise DnsUnavailable(f"the DNS could not answer for {name} {kind}: {exc}") from None
        except dns.exception.DNSException as exc:
            raise DnsUnavailable(f"the DNS question {name} {kind} failed: {exc}") from None

    async def mx(self, domain: str) -> list[MxHost]:
        """The domain's MX hosts, lowest preference first and equal ones in random order (RFC
        5321 5.1 spreads the load so); [] when it has no MX records (its own address is then
        the implicit MX). ``NoSuchDomain`` when it does not exist."""
        answer = await self._ask(domain, "MX")
        if answer is None:
            return []
        hosts = [
            MxHost(record.preference, record.exchange.to_text(omit_final_dot=True).lower())
            for record in answer
        ]
        hosts = [MxHost(h.preference, "" if h.host in ("", ".") else h.host) for h in hosts]
        random.shuffle(hosts)
        return sorted(hosts, key=lambda host: host.preference)

    async def addresses(self, host: str) -> list[str]:
        """The host's IPv4 then IPv6 addresses; [] when it has none."""
        found: list[str] = []
        missing: NoSuchDomain | None = None
        for kind in ("A", "AAAA"):
            try:
                answer = await self._ask(host, kind)
            except NoSuchDomain as exc:
                missing = exc
                break
            if answer is not None:
                found += [record.address for record in answer]
        if not found and missing is not None:
            raise missing
        return found

    async def txt(self, name: str) -> list[str]:
        """The name's TXT records, each one's strings joined; [] when it has none or does
        not exist."""
        try:
            answer = await self._ask(name, "TXT")
        except NoSuchDomain:
            return []
        if answer is None:
            return []
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]
