"""Path and query parameters of the management routes, checked into the envelope's errors."""

from __future__ import annotations

from starlette.requests import Request

from mailpass.errors import NotFound, ValidationError

__all__ = ["MAX_ID", "path_id", "query_integer"]

MAX_ID = 2**31 - 1  # the id columns' range on PostgreSQL


def path_id(raw: str, what: str) -> int:
    """The id a path names; NOT_FOUND for anything no row could have (``abc``, ``0``, an id
    past the column's range, which PostgreSQL would refuse rather than find nothing)."""
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_ID:
        return int(raw)
    raise NotFound(f"no {what} {raw}")


def query_integer(request: Request, name: str, lowest: int, highest: int | None) -> int | None:
    """The query parameter ``name`` as a whole number within bounds; None when not given."""
    given = request.query_params.getlist(name)
    if not given:
        return None
    if len(given) > 1:
        raise ValidationError(
            f"invalid {name}", details=[{"field": name, "message": "is given more than once"}]
        )
    raw = given[0]
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < lowest or (highest is not None and value > highest):
        bounds = f"from {lowest}" + (f" to {highest}" if highest is not None else "")
        raise ValidationError(
            f"invalid {name}",
            details=[{"field": name, "message": f"must be a whole number {bounds}"}],
        )
    return value
