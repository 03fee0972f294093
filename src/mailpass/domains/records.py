"""The DNS records a sending domain publishes, and what the DNS was found to serve for each.

- DKIM: a TXT record per key not yet removed, at ``<selector>._domainkey.<domain>``.
- SPF: the domain's ``v=spf1`` record must allow MailPass's sending addresses
  (``MAILPASS_DIRECT_SPF``); with none configured, any SPF record will do.
- DMARC (suggested, not required): a policy at ``_dmarc.<domain>``; start with ``p=none``.
- Return path (when ``MAILPASS_BOUNCE_DOMAIN`` is set): its MX, where bounces come back.

A domain is verified once every required record is found as expected.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from mailpass.config import Settings
from mailpass.core.dns import DnsUnavailable, NoSuchDomain, Resolver
from mailpass.domains.models import KeyState, SendingDomain

__all__ = ["DnsRecord", "RecordCheck", "RecordStatus", "check_records", "records_to_publish"]

DMARC_SUGGESTION = "v=DMARC1; p=none; adkim=r; aspf=r"
SPF_DEFAULT_MECHANISMS = "a mx"


class RecordStatus(StrEnum):
    VERIFIED = "verified"  # found, as expected
    MISSING = "missing"  # nothing there
    MISMATCH = "mismatch"  # something there, not what was expected
    UNAVAILABLE = "unavailable"  # the DNS did not answer: nothing is known


@dataclass(frozen=True, slots=True)
class DnsRecord:
    purpose: str  # "dkim", "spf", "dmarc" or "return_path"
    type: str  # "TXT" or "MX"
    name: str
    value: str
    required: bool
    selector: str | None = None  # a DKIM record's

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "purpose": self.purpose,
            "type": self.type,
            "name": self.name,
            "value": self.value,
            "required": self.required,
        }
        if self.selector is not None:
            answer["selector"] = self.selector
        return answer


@dataclass(frozen=True, slots=True)
class RecordCheck:
    record: DnsRecord
    status: RecordStatus
    found: list[str] = field(default_factory=list)
    note: str | None = None  # what is wrong, in a sentence

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.record.as_dict(),
            "status": self.status.value,
            "found": self.found,
            "note": self.note,
        }


def spf_mechanisms(settings: Settings) -> str:
    return settings.direct_spf.strip() or SPF_DEFAULT_MECHANISMS


def records_to_publish(domain: SendingDomain, settings: Settings) -> list[DnsRecord]:
    records = [
        DnsRecord(
            "dkim",
            "TXT",
            key.record_name(domain.name),
            key.record_value,
            required=key.state == KeyState.ACTIVE,
            selector=key.selector,
        )
        for key in domain.keys
    ]
    records.append(
        DnsRecord(
            "spf", "TXT", domain.name, f"v=spf1 {spf_mechanisms(settings)} ~all", required=True
        )
    )
    records.append(DnsRecord("dmarc", "TXT", f"_dmarc.{domain.name}", DMARC_SUGGESTION, False))
    if settings.bounce_domain:
        host = urlsplit(settings.public_url).hostname or "this server"
        records.append(DnsRecord("return_path", "MX", settings.bounce_domain, f"10 {host}", False))
    return records


async def check_records(resolver: Resolver, records: list[DnsRecord]) -> list[RecordCheck]:
    """What the DNS serves for each record, asked all at once."""
    return list(await asyncio.gather(*(_check(resolver, record) for record in records)))


async def _check(resolver: Resolver, record: DnsRecord) -> RecordCheck:
    try:
        if record.type == "MX":
            found = [f"{mx.preference} {mx.host}" for mx in await resolver.mx(record.name)]
        else:
            found = await resolver.txt(record.name)
    except NoSuchDomain:
        found = []
    except DnsUnavailable as exc:
        return RecordCheck(record, RecordStatus.UNAVAILABLE, note=str(exc))
    if record.purpose == "dkim":
        return _check_dkim(record, found)
    if record.purpose == "spf":
        return _check_spf(record, found)
    if record.purpose == "dmarc":
        policies = [text for text in found if text.replace(" ", "").lower().startswith("v=dmarc1")]
        if not policies:
            return RecordCheck(record, RecordStatus.MISSING, found, "no DMARC policy")
        return RecordCheck(record, RecordStatus.VERIFIED, policies)
    if not found:
        return RecordCheck(record, RecordStatus.MISSING, found, "no MX record")
    return RecordCheck(record, RecordStatus.VERIFIED, found)


def _tags(text: str) -> dict[str, str]:
    """A DKIM record's tags; whitespace inside values (a long key split by the DNS host's
    editor) is not part of them (RFC 6376 3.2)."""
    tags = {}
    for part in text.split(";"):
        name, separator, value = part.partition("=")
        if separator:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def _check_dkim(record: DnsRecord, found: list[str]) -> RecordCheck:
    if not found:
        return RecordCheck(record, RecordStatus.MISSING, found, f"no TXT record at {record.name}")
    expected = _tags(record.value)
    for text in found:
        tags = _tags(text)
        if tags.get("p") == expected["p"] and tags.get("k", "rsa") == expected["k"]:
            return RecordCheck(record, RecordStatus.VERIFIED, found)
    return RecordCheck(
        record,
        RecordStatus.MISMATCH,
        found,
        "the TXT record there does not carry this key (p= differs): publish the value shown",
    )


def _check_spf(record: DnsRecord, found: list[str]) -> RecordCheck:
    policies = [text for text in found if text.lower().split(" ", 1)[0] == "v=spf1"]
    if not policies:
        return RecordCheck(record, RecordStatus.MISSING, found, f"no SPF record at {record.name}")
    if len(policies) > 1:
        return RecordCheck(
            record,
            RecordStatus.MISMATCH,
            policies,
            "more than one SPF record: receivers take that as an error (RFC 7208 3.2); merge them",
        )
    wanted = record.value.split()[1:-1]  # the mechanisms between "v=spf1" and "~all"
    if wanted == SPF_DEFAULT_MECHANISMS.split():
        return RecordCheck(record, RecordStatus.VERIFIED, policies)
    present = {term.lower().lstrip("+") for term in policies[0].split()}
    absent = [term for term in wanted if term.lower().lstrip("+") not in present]
    if absent:
        return RecordCheck(
            record,
            RecordStatus.MISMATCH,
            policies,
            f"the SPF record does not allow MailPass's servers: add {' '.join(absent)}",
        )
    return RecordCheck(record, RecordStatus.VERIFIED, policies)
