"""What ``POST /api/v1/webhooks`` takes: an endpoint's URL and the event types it wants."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mailpass.core.statuses import EventType
from mailpass.webhooks.guard import UnsafeDestination, check_url

__all__ = ["EndpointFields"]


class EndpointFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000)
    # Of ``core.statuses.EventType``; empty: every type.
    event_types: list[str] = Field(default_factory=list, max_length=len(EventType))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        try:
            check_url(value)
        except UnsafeDestination as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(EventType))
        if unknown:
            raise ValueError(
                f"unknown event types {', '.join(unknown)}; choose from " + ", ".join(EventType)
            )
        return [member.value for member in EventType if member.value in value]
