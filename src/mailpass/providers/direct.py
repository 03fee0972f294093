"""Direct delivery ("MailPass SMTP"): no relay in between; each recipient domain's MX hosts.

A message is signed once with its sender domain's DKIM key, split by recipient domain, and
each part delivered on its own: the domain's MX hosts in preference order (its own address
when it has none, RFC 5321 5.1; none at all for a null MX, RFC 7505), STARTTLS whenever
offered (``MAILPASS_DIRECT_TLS=require``, or the domain's MTA-STS policy in ``enforce`` mode:
always, with a valid certificate, and for MTA-STS only at the MX hosts the policy names).

- Connections are pooled per MX host and reused (``smtp.SmtpTransport``); at most
  ``MAILPASS_DIRECT_DOMAIN_CONNECTIONS`` sends to one domain at once, so a slow or
  greylisting domain waits alone while mail for the others goes on.
- An MX host that cannot be reached (refused, timed out, 421) passes the part to the next
  one; a 4xx from one that answered defers the part (greylisting: the next attempt, after
  the queue's back-off, usually gets through); a 5xx refuses its recipients for good.
- The answer: accepted as soon as one domain's MX took its part. Parts deferred are in
  ``DeliveryResult.deferred`` for the queue to retry alone; parts refused in ``refused``.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from mailpass.core.dns import DnsUnavailable, MxHost, NoSuchDomain, Resolver
from mailpass.providers.mta_sts import MtaSts
from mailpass.providers.smtp import ProbeError, SmtpEndpoint, SmtpTransport
from mailpass.providers.smtp.client import as_transmitted
from mailpass.providers.transport import (
    DeliveryError,
    DeliveryResult,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = ["DirectOptions", "DirectTransport", "Signer", "SignerLookup", "probe_direct"]

_T = TypeVar("_T")

MX_HOST_CONNECTIONS = 20  # connections to one MX host at once, per process
# Seconds a domain's MX hosts, and a host's addresses, are used without asking again: the
# resolver's own cache keeps answers for their TTL, but asking it costs more than signing.
ROUTE_KEPT_FOR = 60.0
NAMES_REMEMBERED = 50_000  # past this many, expired entries are dropped
SIGNERS_KEPT_FOR = 30.0  # seconds a domain's signer (or its absence) is trusted before asking
FROM_FIELD = re.compile(rb"^from:[ \t]*(.*(?:\r\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


class Signer(Protocol):
    """A DKIM key of the sender's domain (``domains.dkim.DkimSigner``)."""

    @property
    def domain(self) -> str: ...

    def sign(self, message: bytes) -> bytes:
        """The ``DKIM-Signature`` field to put before the message's first."""
        ...


# The sending domain's signer, for mail from ``domain``; None when the account has not
# verified it.
SignerLookup = Callable[[str], Awaitable[Signer | None]]


@dataclass(frozen=True, slots=True)
class DirectOptions:
    port: int = 25
    tls: Literal["opportunistic", "require"] = "opportunistic"
    domain_connections: int = 5
    helo: str | None = None
    timeout: float = 30.0  # seconds per SMTP command
    connect_timeout: float = 10.0
    ca_file: str | None = None  # trusted besides the system's roots, for "require"


@dataclass(slots=True)
class _Part:
    """What became of one domain's recipients."""

    accepted: list[str] = field(default_factory=list)
    reply: str | None = None  # the accepting MX's reply to DATA
    refused: dict[str, str] = field(default_factory=dict)  # for good
    deferred: dict[str, str] = field(default_factory=dict)  # for now


class DirectTransport:
    """Delivers to recipients' MX hosts, signed with the sender domain's DKIM key."""

    def __init__(
        self,
        resolver: Resolver,
        signers: SignerLookup,
        options: DirectOptions,
        mta_sts: MtaSts | None = None,
    ) -> None:
        self.resolver = resolver
        self.signers = signers
        self.options = options
        self.mta_sts = mta_sts
        self._pools: dict[str, SmtpTransport] = {}  # by MX host name
        self._domain_slots: dict[str, asyncio.Semaphore] = {}
        self._signers: dict[str, tuple[float, Signer | None]] = {}
        self._routes: dict[str, tuple[float, list[MxHost]]] = {}
        self._host_addresses: dict[str, tuple[float, list[str]]] = {}
        self._retired: set[asyncio.Task[None]] = set()

    def hold(self, reason: str, seconds: float) -> None:
        """Nothing: direct delivery has no one server to be down, and holding it would stop
        mail to every domain for the fault of one."""

    async def send(
        self, envelope_from: str, recipients: Sequence[str], data: bytes
    ) -> DeliveryResult:
        if not recipients:
            raise ValueError("send() needs at least one recipient")
        message = as_transmitted(data)
        sender_domain = _from_domain(message)
        signer = await self._signer(sender_domain) if sender_domain else None
        if signer is None:
            raise PermanentDeliveryError(
                f"mail from {sender_domain or 'an address without a domain'} cannot be "
                "delivered directly: add the domain (mailpass domains add, or "
                "/api/v1/domains) and verify its DNS records first"
            )
        signed = signer.sign(message) + message
        by_domain: dict[str, list[str]] = {}
        for rcpt in recipients:
            by_domain.setdefault(rcpt.rpartition("@")[2].lower(), []).append(rcpt)
        parts = await asyncio.gather(
            *(
                self._deliver(domain, rcpts, envelope_from, signed)
                for domain, rcpts in by_domain.items()
            )
        )
        accepted = [part for part in parts if part.accepted]
        refused = {rcpt: reply for part in parts for rcpt, reply in part.refused.items()}
        deferred = {rcpt: reply for part in parts for rcpt, reply in part.deferred.items()}
        if accepted:
            reply = accepted[0].reply or "250 accepted"
            return DeliveryResult(reply=reply, refused=refused, deferred=deferred)
        if deferred:
            # Never "unreachable": a recipient domain whose MX hosts are down says nothing of
            # whether this provider works, and the breaker would hold every domain's mail.
            raise TransientDeliveryError("; ".join(sorted(set(deferred.values()))))
        raise PermanentDeliveryError("; ".join(f"{r}: {reply}" for r, reply in refused.items()))

    async def _mx(self, domain: str) -> list[MxHost]:
        """The domain's MX hosts, kept for ``ROUTE_KEPT_FOR``: asking the resolver, even its
        cache, for every message cost more than signing it."""
        kept = self._routes.get(domain)
        now = time.monotonic()
        if kept is not None and kept[0] > now:
            return kept[1]
        hosts = await self.resolver.mx(domain)
        self._remember(self._routes, domain, (now + ROUTE_KEPT_FOR, hosts), now)
        return hosts

    async def _addresses(self, host: str) -> list[str]:
        kept = self._host_addresses.get(host)
        now = time.monotonic()
        if kept is not None and kept[0] > now:
            return kept[1]
        addresses = await self.resolver.addresses(host)
        self._remember(self._host_addresses, host, (now + ROUTE_KEPT_FOR, addresses), now)
        return addresses

    @staticmethod
    def _remember(
        kept: dict[str, tuple[float, _T]], name: str, entry: tuple[float, _T], now: float
    ) -> None:
        if len(kept) >= NAMES_REMEMBERED:  # mail to ever new domains: expired ones go
            for old in [key for key, (until, _) in kept.items() if until <= now]:
                del kept[old]
        kept[name] = entry

    async def _signer(self, domain: str) -> Signer | None:
        kept = self._signers.get(domain)
        now = time.monotonic()
        if kept is not None and kept[0] > now:
            return kept[1]
        signer = await self.signers(domain)
        self._signers[domain] = (now + SIGNERS_KEPT_FOR, signer)
        return signer

    async def _deliver(
        self, domain: str, recipients: list[str], envelope_from: str, message: bytes
    ) -> _Part:
        slots = self._domain_slots.get(domain)
        if slots is None:
            slots = self._domain_slots[domain] = asyncio.Semaphore(self.options.domain_connections)
        async with slots:
            return await self._deliver_now(domain, recipients, envelope_from, message)

    async def _deliver_now(
        self, domain: str, recipients: list[str], envelope_from: str, message: bytes
    ) -> _Part:
        part = _Part()
        try:
            hosts = await self._mx(domain)
        except NoSuchDomain:
            part.refused = dict.fromkeys(
                recipients, f"550 5.1.2 the domain {domain} does not exist"
            )
            return part
        except DnsUnavailable as exc:
            part.deferred = dict.fromkeys(recipients, f"451 4.4.3 {exc}")
            return part
        if any(host.is_null for host in hosts):
            part.refused = dict.fromkeys(
                recipients, f"556 5.1.10 {domain} accepts no mail (null MX, RFC 7505)"
            )
            return part
        names = [host.host for host in hosts] or [domain]  # no MX: the domain itself
        policy = await self.mta_sts.policy(domain) if self.mta_sts is not None else None
        enforced = policy is not None and policy.enforced
        if policy is not None and enforced:
            names = [name for name in names if policy.allows(name)]
            if not names:
                part.deferred = dict.fromkeys(
                    recipients,
                    f"451 4.7.5 no MX host of {domain} is one its MTA-STS policy names",
                )
                return part
        last = f"451 4.4.1 no MX host of {domain} could be reached"
        for name in names:
            try:
                addresses = await self._addresses(name)
            except (NoSuchDomain, DnsUnavailable) as exc:
                last = f"451 4.4.3 {exc}"
                continue
            if not addresses:
                last = f"451 4.4.3 the MX host {name} has no address"
                continue
            transport = self._pool(name, addresses, verified=enforced)
            try:
                result = await transport.send(envelope_from, recipients, message)
            except DeliveryError as exc:
                if exc.unreachable or (enforced and (exc.smtp_code or 0) < 500):
                    # RFC 5321 5.1: the next MX host. Under an enforced MTA-STS policy a host
                    # without valid TLS is passed over the same way, and never failed for good.
                    last = exc.reply
                    continue
                if exc.transient:
                    part.deferred = dict.fromkeys(recipients, exc.reply)
                else:
                    part.refused = dict.fromkeys(recipients, exc.reply)
                return part
            for rcpt, reply in result.refused.items():
                (part.deferred if reply.startswith("4") else part.refused)[rcpt] = reply
            part.accepted = [rcpt for rcpt in recipients if rcpt not in result.refused]
            part.reply = result.reply
            return part
        part.deferred = dict.fromkeys(recipients, last)
        return part

    def _pool(self, host: str, addresses: list[str], *, verified: bool) -> SmtpTransport:
        """The connections to the MX ``host``; ``verified``: over TLS with a certificate valid
        for its name only (MTA-STS), as ``MAILPASS_DIRECT_TLS=require`` always asks."""
        verified = verified or self.options.tls == "require"
        key = f"{host} verified" if verified else host
        pool = self._pools.get(key)
        if pool is not None and pool.endpoint.addresses == tuple(addresses):
            return pool
        options = self.options
        endpoint = SmtpEndpoint(
            host=host,
            port=options.port,
            security="starttls" if verified else "opportunistic",
            timeout=options.timeout,
            connect_timeout=options.connect_timeout,
            ca_file=options.ca_file,
            local_hostname=options.helo,
            addresses=tuple(addresses),
        )
        # A host's connections are shared by the domains it serves (a provider's MX hosts
        # serve thousands), each domain capped by its own semaphore; the host as Postfix's
        # default caps a destination.
        pool = SmtpTransport(endpoint, max_connections=MX_HOST_CONNECTIONS)
        if key in self._pools:  # its addresses changed: the old pool closes once idle
            task = asyncio.get_running_loop().create_task(self._pools[key].close())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
        self._pools[key] = pool
        return pool

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools), *self._retired)


async def probe_direct(resolver: Resolver, options: DirectOptions) -> list[str]:
    """A direct provider's "test": it has no server of its own, so what can be checked is
    that the DNS answers (MX questions go there). The lines say what is done; ``ProbeError``
    when the resolver does not answer."""
    lines = [
        f"I: delivery to each recipient domain's MX hosts on port {options.port}, "
        f"TLS {options.tls}, at most {options.domain_connections} connections a domain",
    ]
    try:
        await resolver.mx("mailpass-probe.invalid")  # RFC 2606: never exists, always answered
    except NoSuchDomain:
        pass
    except DnsUnavailable as exc:
        raise ProbeError(f"the DNS resolver does not answer: {exc}", lines) from None
    lines.append("I: the DNS resolver answers")
    return lines


def _from_domain(message: bytes) -> str | None:
    """The domain of the message's From address, lower-cased; None without one."""
    split = message.find(b"\r\n\r\n")
    header = message if split < 0 else message[: split + 2]
    found = FROM_FIELD.search(header)
    if found is None:
        return None
    value = found.group(1).replace(b"\r\n", b"").decode("ascii", "replace")
    address = email.utils.parseaddr(value)[1]
    domain = address.rpartition("@")[2].lower()
    return domain or None
