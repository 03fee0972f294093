"""What MailPass knows of a sending domain and its DKIM keys, as the repository reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from mailpass.domains.dkim import DkimAlgorithm, record_value

__all__ = ["DkimKey", "KeyState", "SendingDomain"]


class KeyState(StrEnum):
    """The same strings on the wire and in the database."""

    PENDING = "pending"  # made by a rotation, not yet seen in the DNS: not signing yet
    ACTIVE = "active"  # mail is signed with it
    RETIRED = "retired"  # replaced; keep its record until mail signed with it has arrived


@dataclass(frozen=True, slots=True)
class DkimKey:
    id: int
    selector: str
    algorithm: DkimAlgorithm
    public_key: str  # the record's p=
    private_key_encrypted: str
    state: KeyState
    created_at: datetime
    activated_at: datetime | None

    def record_name(self, domain: str) -> str:
        return f"{self.selector}._domainkey.{domain}"

    @property
    def record_value(self) -> str:
        return record_value(self.algorithm, self.public_key)

    @classmethod
    def of(cls, row: Any) -> DkimKey:
        return cls(
            id=row.id,
            selector=row.selector,
            algorithm=row.algorithm,
            public_key=row.public_key,
            private_key_encrypted=row.private_key_encrypted,
            state=KeyState(row.state),
            created_at=row.created_at,
            activated_at=row.activated_at,
        )


@dataclass(frozen=True, slots=True)
class SendingDomain:
    id: int
    user_id: int
    name: str  # lower-case ASCII (IDNA) form
    created_at: datetime
    checked_at: datetime | None
    verified_at: datetime | None
    # The last check's findings (``records.RecordCheck.as_dict`` each); None before the first.
    check_results: list[dict[str, Any]] | None
    keys: tuple[DkimKey, ...] = ()

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    def key_in(self, state: KeyState) -> DkimKey | None:
        return next((key for key in self.keys if key.state == state), None)
