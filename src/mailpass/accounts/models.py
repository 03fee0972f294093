"""An account (a user) as the repository reads it; its API keys are ``accounts.keys.ApiKey``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["User"]


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    password_hash: str | None
    created_at: datetime
