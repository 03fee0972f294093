"""What ``POST /api/v1/suppressions`` takes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mailpass.suppressions.models import SuppressionReason

__all__ = ["SuppressionFields"]


class SuppressionFields(BaseModel):
    """One address to suppress. Unknown fields are refused by name: an address added without
    what the client meant to say of it would be a silent loss."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str
    # Another service's list brought over keeps its reasons; by default, added by hand.
    reason: SuppressionReason = SuppressionReason.MANUAL
