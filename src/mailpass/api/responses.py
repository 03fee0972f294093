"""Answers in the seed's envelope, serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from mailpass.errors import ApiError

__all__ = ["error_response", "success_response"]


def success_response(data: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps({"success": True, "data": data}),
        status_code=status_code,
        media_type="application/json",
    )


def error_response(error: ApiError) -> Response:
    return Response(
        orjson.dumps(error.envelope()),
        status_code=error.http_status,
        media_type="application/json",
        headers=error.headers,
    )
