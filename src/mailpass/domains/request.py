"""What ``POST /api/v1/domains`` and ``…/rotate`` take. Unknown fields are refused by name."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mailpass.domains.dkim import DkimAlgorithm

__all__ = ["DomainFields", "RotationFields"]


class DomainFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=253)
    algorithm: DkimAlgorithm | None = None  # default: MAILPASS_DKIM_ALGORITHM


class RotationFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: DkimAlgorithm | None = None  # default: the active key's
