"""Short single-line text a user names things with (a provider, a key, a host, credentials)."""

from __future__ import annotations

import re

__all__ = ["CONTROL_FREE_PATTERN", "check_control_free"]

# For the OpenAPI document: the same rule as ``check_control_free``.
CONTROL_FREE_PATTERN = "^[^\\x00-\\x1f\\x7f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_control_free(value: str | None) -> str | None:
    """``value`` unchanged, or a ValueError when it holds a control character: NUL, which
    PostgreSQL cannot store, and CR, LF or TAB, which would break an SMTP command or a log line."""
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters (such as NUL, CR, LF or TAB)")
    return value
