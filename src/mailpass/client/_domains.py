"""``client.domains``: the account's sending domains (``direct`` providers send from them), for
keys with the ``domains`` permission. Private keys never leave the server: a domain comes with
the DNS records to publish and what the last check found of each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from mailpass.client._base import ApiCall
from mailpass.client._management import (
    Call,
    _AsyncResource,
    _item,
    _post,
    _Resource,
)
from mailpass.client._models import _required_time, _time

__all__ = ["AsyncDomains", "DkimKey", "DnsRecord", "Domain", "Domains"]

DOMAINS = "api/v1/domains"


@dataclass(frozen=True, slots=True)
class DkimKey:
    selector: str
    algorithm: str  # rsa, ed25519
    state: str  # active (signs), pending (a rotation's, not yet in the DNS), retired
    created_at: datetime
    activated_at: datetime | None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> DkimKey:
        return cls(
            selector=data["selector"],
            algorithm=data["algorithm"],
            state=data["state"],
            created_at=_required_time(data["created_at"]),
            activated_at=_time(data.get("activated_at")),
        )


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """A record to publish; ``status`` is what the last check found (None before one)."""

    purpose: str  # dkim, spf, dmarc, return_path
    type: str  # TXT, MX
    name: str
    value: str
    required: bool
    status: str | None  # verified, missing, mismatch, unavailable
    found: tuple[str, ...]
    note: str | None
    selector: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> DnsRecord:
        return cls(
            purpose=data["purpose"],
            type=data["type"],
            name=data["name"],
            value=data["value"],
            required=bool(data["required"]),
            status=data.get("status"),
            found=tuple(data.get("found") or ()),
            note=data.get("note"),
            selector=data.get("selector"),
        )


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str
    verified: bool
    verified_at: datetime | None
    checked_at: datetime | None
    dkim_keys: tuple[DkimKey, ...]
    records: tuple[DnsRecord, ...]
    created_at: datetime

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Domain:
        return cls(
            id=int(data["id"]),
            name=data["name"],
            verified=bool(data["verified"]),
            verified_at=_time(data.get("verified_at")),
            checked_at=_time(data.get("checked_at")),
            dkim_keys=tuple(DkimKey.from_wire(k) for k in data.get("dkim_keys") or ()),
            records=tuple(DnsRecord.from_wire(r) for r in data.get("records") or ()),
            created_at=_required_time(data["created_at"]),
        )


class _Calls:
    @staticmethod
    def list_domains() -> Call[list[Domain]]:
        return ApiCall("GET", DOMAINS), lambda d: [Domain.from_wire(x) for x in d["domains"]]

    @staticmethod
    def get_domain(domain_id: int) -> Call[Domain]:
        return ApiCall("GET", _item(DOMAINS, domain_id)), Domain.from_wire

    @staticmethod
    def create_domain(name: str, algorithm: str | None) -> Call[Domain]:
        body: dict[str, Any] = {"name": name}
        if algorithm is not None:
            body["algorithm"] = algorithm
        return _post(DOMAINS, body), Domain.from_wire

    @staticmethod
    def verify_domain(domain_id: int) -> Call[Domain]:
        return _post(_item(DOMAINS, domain_id) + "/verify"), Domain.from_wire

    @staticmethod
    def rotate_key(domain_id: int, algorithm: str | None) -> Call[Domain]:
        body = {"algorithm": algorithm} if algorithm is not None else {}
        return _post(_item(DOMAINS, domain_id) + "/rotate", body), Domain.from_wire

    @staticmethod
    def delete_key(domain_id: int, selector: str) -> Call[Domain]:
        path = _item(DOMAINS, domain_id) + "/keys/" + quote(selector, safe="")
        return ApiCall("DELETE", path), Domain.from_wire

    @staticmethod
    def delete_domain(domain_id: int) -> Call[None]:
        return ApiCall("DELETE", _item(DOMAINS, domain_id)), lambda _: None


class Domains(_Resource):
    """``client.domains``: the account's sending domains."""

    def list(self) -> list[Domain]:
        return self._run(_Calls.list_domains())

    def get(self, domain_id: int) -> Domain:
        return self._run(_Calls.get_domain(domain_id))

    def create(self, name: str, *, algorithm: str | None = None) -> Domain:
        """A new domain with its first DKIM key (``rsa`` or ``ed25519``), and the records to
        publish."""
        return self._run(_Calls.create_domain(name, algorithm))

    def verify(self, domain_id: int) -> Domain:
        """Look its records up now; each record says what was found."""
        return self._run(_Calls.verify_domain(domain_id))

    def rotate(self, domain_id: int, *, algorithm: str | None = None) -> Domain:
        """A new DKIM key, pending until ``verify`` finds its record."""
        return self._run(_Calls.rotate_key(domain_id, algorithm))

    def delete_key(self, domain_id: int, selector: str) -> Domain:
        """Remove a pending or retired key."""
        return self._run(_Calls.delete_key(domain_id, selector))

    def delete(self, domain_id: int) -> None:
        self._run(_Calls.delete_domain(domain_id))


class AsyncDomains(_AsyncResource):
    """``client.domains`` of an ``AsyncClient``: ``Domains``' calls, awaited."""

    async def list(self) -> list[Domain]:
        return await self._run(_Calls.list_domains())

    async def get(self, domain_id: int) -> Domain:
        return await self._run(_Calls.get_domain(domain_id))

    async def create(self, name: str, *, algorithm: str | None = None) -> Domain:
        return await self._run(_Calls.create_domain(name, algorithm))

    async def verify(self, domain_id: int) -> Domain:
        return await self._run(_Calls.verify_domain(domain_id))

    async def rotate(self, domain_id: int, *, algorithm: str | None = None) -> Domain:
        return await self._run(_Calls.rotate_key(domain_id, algorithm))

    async def delete_key(self, domain_id: int, selector: str) -> Domain:
        return await self._run(_Calls.delete_key(domain_id, selector))

    async def delete(self, domain_id: int) -> None:
        await self._run(_Calls.delete_domain(domain_id))
