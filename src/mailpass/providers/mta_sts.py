"""MTA-STS (RFC 8461): a recipient domain that publishes a policy in ``enforce`` mode gets its
mail only over TLS with a valid certificate, and only at the MX hosts the policy names.

The policy is announced by ``_mta-sts.<domain>`` TXT (``v=STSv1; id=…``) and fetched over
HTTPS from ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (certificate checked, no
redirects). It is kept for its ``max_age`` and fetched again when the TXT record's ``id``
changes; while it is kept, a failed fetch or a TXT record that vanished leave it in force
(RFC 8461 5.1), so an attacker who blocks the lookups does not switch it off.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

import certifi
import httpx

from mailpass.core.dns import DnsError, Resolver

__all__ = ["MtaSts", "StsPolicy", "parse_policy"]

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 3.2
MAX_AGE_MOST = 31_557_600  # seconds (a year), RFC 8461 3.2
FETCH_TIMEOUT = 10.0  # seconds
# Seconds a domain's TXT announcement (or its absence) is trusted before it is asked again: a
# DNS question per message would cost direct delivery more than the delivery itself.
RECHECK_AFTER = 300.0
DOMAINS_REMEMBERED = 50_000  # past this many, expired entries are dropped
MODES = ("enforce", "testing", "none")


@dataclass(frozen=True, slots=True)
class StsPolicy:
    id: str
    mode: str  # enforce, testing or none
    mx: tuple[str, ...]  # "mail.example.com", "*.example.net"
    max_age: int  # seconds

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"

    def allows(self, host: str) -> bool:
        """Whether the MX host ``host`` is one the policy names (a ``*.`` pattern stands for
        exactly one leftmost label)."""
        host = host.lower().rstrip(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                if host.partition(".")[2] == pattern[2:] and "." in host:
                    return True
            elif host == pattern:
                return True
        return False


def parse_policy(text: str, policy_id: str) -> StsPolicy:
    """The policy a fetched document states; ``ValueError`` saying what is wrong with it."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, separator, value = line.partition(":")
        if separator:
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise ValueError("the policy is not version STSv1")
    mode = (fields.get("mode") or [""])[0]
    if mode not in MODES:
        raise ValueError(f"the policy's mode {mode!r} is not enforce, testing or none")
    raw_age = (fields.get("max_age") or [""])[0]
    if not raw_age.isdigit():
        raise ValueError("the policy has no max_age")
    mx = tuple(value.lower().rstrip(".") for value in fields.get("mx", []))
    if mode != "none" and not mx:
        raise ValueError("the policy names no mx")
    return StsPolicy(policy_id, mode, mx, min(int(raw_age), MAX_AGE_MOST))


class MtaSts:
    """Policies of recipient domains, fetched when announced and kept for their max_age."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        port: int = 443,
        ca_file: str | None = None,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.resolver = resolver
        self.port = port
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=certifi.where())
        if ca_file:
            self._context.load_verify_locations(cafile=ca_file)
        self._kept: dict[str, tuple[float, StsPolicy]] = {}  # domain -> (until, policy)
        self._announced: dict[str, tuple[float, str | None]] = {}  # domain -> (until, id)

    async def policy(self, domain: str) -> StsPolicy | None:
        """The domain's policy in force; None when it has none (or none could be had)."""
        now = time.monotonic()
        kept = self._kept.get(domain)
        if kept is not None and kept[0] <= now:
            del self._kept[domain]
            kept = None
        asked = self._announced.get(domain)
        if asked is not None and asked[0] > now:
            announced = asked[1]
        else:
            try:
                announced = await self._announced_id(domain)
            except DnsError:
                announced = None
            if len(self._announced) >= DOMAINS_REMEMBERED:
                self._forget_expired(now)
            self._announced[domain] = (now + RECHECK_AFTER, announced)
        if announced is None or (kept is not None and kept[1].id == announced):
            return kept[1] if kept is not None else None
        try:
            policy = parse_policy(await self._fetch(domain), announced)
        except (ValueError, httpx.HTTPError, DnsError, OSError):
            return kept[1] if kept is not None else None
        self._kept[domain] = (now + policy.max_age, policy)
        return policy

    def _forget_expired(self, now: float) -> None:
        """Drop what has expired, so that mail to ever new domains does not grow memory."""
        self._announced = {d: seen for d, seen in self._announced.items() if seen[0] > now}
        self._kept = {d: kept for d, kept in self._kept.items() if kept[0] > now}

    async def _announced_id(self, domain: str) -> str | None:
        for text in await self.resolver.txt(f"_mta-sts.{domain}"):
            fields = {
                name.strip(): value.strip()
                for name, _, value in (part.partition("=") for part in text.split(";"))
            }
            if fields.get("v") == "STSv1" and fields.get("id"):
                return fields["id"]
        return None

    async def _fetch(self, domain: str) -> str:
        """The policy document, fetched from the address MailPass's resolver gives the policy
        host (its certificate checked against that name)."""
        host = f"mta-sts.{domain}"
        addresses = await self.resolver.addresses(host)
        if not addresses:
            raise ValueError(f"{host} has no address")
        address = addresses[0]
        literal = f"[{address}]" if ":" in address else address
        async with httpx.AsyncClient(
            verify=self._context, timeout=self.timeout, follow_redirects=False, trust_env=False
        ) as client:
            answer = await client.get(
                f"https://{literal}:{self.port}{POLICY_PATH}",
                headers={"Host": host},
                extensions={"sni_hostname": host},
            )
        if answer.status_code != 200:
            raise ValueError(f"{host} answered {answer.status_code}")
        if not answer.headers.get("content-type", "").startswith("text/plain"):
            raise ValueError(f"{host}'s policy is not text/plain")
        if len(answer.content) > MAX_POLICY_BYTES:
            raise ValueError(f"{host}'s policy is too large")
        return answer.text
