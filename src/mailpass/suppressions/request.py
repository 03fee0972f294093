"""What ``POST /api/v1/suppressions`` takes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mailpass.core.addresses import AddressError, parse_mailbox
from mailpass.suppressions.models import SuppressionReason

__all__ = ["SuppressionFields", "address_to_suppress"]


class SuppressionFields(BaseModel):
    """One address to suppress. Unknown fields are refused by name: an address added without
    what the client meant to say of it would be a silent loss."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str
    # Another service's list brought over keeps its reasons; by default, added by hand.
    reason: SuppressionReason = SuppressionReason.MANUAL


def address_to_suppress(raw: str) -> str:
    """``raw`` as the one bare address it must be (ASCII form: an IDN domain as punycode);
    raises `AddressError` otherwise, for a name given with it too."""
    address = parse_mailbox(raw)
    if address.name is not None:
        raise AddressError(raw, "give the address alone, without a name")
    return address.email
