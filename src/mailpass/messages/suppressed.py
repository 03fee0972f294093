"""What the suppression list does to a message about to be sent or queued: a suppressed ``to``
refuses it; suppressed cc and bcc recipients are taken out of it (the message goes to the others,
and the answer names them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from mailpass.core.outgoing import Address
from mailpass.errors import RecipientSuppressed
from mailpass.messages.request import ValidMessage
from mailpass.suppressions.models import SuppressionReason

__all__ = ["recipients_of", "without_suppressed"]


def recipients_of(valid: ValidMessage) -> set[str]:
    """The message's recipients as the list keeps them (lower-cased)."""
    return {address.email.lower() for address in (*valid.to, *valid.cc, *valid.bcc)}


def without_suppressed(
    valid: ValidMessage, listed: Mapping[str, SuppressionReason]
) -> tuple[ValidMessage, tuple[str, ...]]:
    """The message without its suppressed cc and bcc recipients, and those (as given); raises
    `RecipientSuppressed` naming each suppressed ``to``. ``listed``: the suppressed among its
    recipients (``repository.suppressed_among``)."""
    if not listed:
        return valid, ()
    refused = [_detail("to", address, listed) for address in valid.to if _on(address, listed)]
    if refused:
        names = ", ".join(f"{item['email']} ({item['reason']})" for item in refused)
        raise RecipientSuppressed(
            f"the recipient is on the suppression list: {names}", details=refused
        )
    dropped = tuple(a.email for a in (*valid.cc, *valid.bcc) if _on(a, listed))
    if not dropped:
        return valid, ()
    kept = replace(
        valid,
        cc=_kept(valid.cc, listed),
        bcc=_kept(valid.bcc, listed),
    )
    return kept, dropped


def _on(address: Address, listed: Mapping[str, SuppressionReason]) -> bool:
    return address.email.lower() in listed


def _kept(
    addresses: Iterable[Address], listed: Mapping[str, SuppressionReason]
) -> tuple[Address, ...]:
    return tuple(address for address in addresses if not _on(address, listed))


def _detail(
    field: str, address: Address, listed: Mapping[str, SuppressionReason]
) -> dict[str, Any]:
    return {"field": field, "email": address.email, "reason": listed[address.email.lower()]}
