"""The OpenAPI document of the mail API (``/openapi.json``) and its interactive docs.

The mail routes read their bodies themselves (pydantic straight from the bytes, so that every
problem is reported in the seed's envelope), so FastAPI cannot see their wire format: it is
written out in ``schemas`` (the bodies and answers), ``examples`` (the seed's) and
``operations`` (attached to each route with ``openapi_extra``), and checked field by field
against the models the routes use (tests/api/test_openapi_models.py).

The docs pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) load their scripts from this
server, never from a CDN: a self-hosted instance may have no way out, or a policy against it.
"""

from __future__ import annotations

import copy
import importlib.resources
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from mailpass.api.openapi.domains import (
    CREATE_DOMAIN_OPERATION,
    DELETE_DOMAIN_KEY_OPERATION,
    DELETE_DOMAIN_OPERATION,
    DOMAIN_EXAMPLES,
    DOMAIN_SCHEMAS,
    GET_DOMAIN_OPERATION,
    LIST_DOMAINS_OPERATION,
    ROTATE_DOMAIN_OPERATION,
    VERIFY_DOMAIN_OPERATION,
)
from mailpass.api.openapi.examples import COMPONENT_EXAMPLES
from mailpass.api.openapi.management import (
    CREATE_KEY_OPERATION,
    CREATE_PROVIDER_OPERATION,
    DEFAULT_PROVIDER_OPERATION,
    DELETE_PROVIDER_OPERATION,
    ENABLE_WEBHOOK_OPERATION,
    GET_PROVIDER_OPERATION,
    LIST_KEYS_OPERATION,
    LIST_PROVIDERS_OPERATION,
    MANAGEMENT_EXAMPLES,
    MANAGEMENT_SCHEMAS,
    REVOKE_KEY_OPERATION,
    TEST_PROVIDER_OPERATION,
    TEST_WEBHOOK_OPERATION,
    UPDATE_PROVIDER_OPERATION,
)
from mailpass.api.openapi.operations import (
    ADD_SUPPRESSION_OPERATION,
    CANCEL_OPERATION,
    CREATE_WEBHOOK_OPERATION,
    DELETE_WEBHOOK_OPERATION,
    LIST_SUPPRESSIONS_OPERATION,
    LIST_WEBHOOK_DELIVERIES_OPERATION,
    LIST_WEBHOOKS_OPERATION,
    REMOVE_SUPPRESSION_OPERATION,
    SEND_BATCH_OPERATION,
    SEND_OPERATION,
    STATUS_OPERATION,
)
from mailpass.api.openapi.schemas import COMPONENT_SCHEMAS, ERROR_DESCRIPTIONS, SCHEMAS

__all__ = [
    "ADD_SUPPRESSION_OPERATION",
    "CANCEL_OPERATION",
    "CREATE_DOMAIN_OPERATION",
    "CREATE_KEY_OPERATION",
    "CREATE_PROVIDER_OPERATION",
    "CREATE_WEBHOOK_OPERATION",
    "DEFAULT_PROVIDER_OPERATION",
    "DELETE_DOMAIN_KEY_OPERATION",
    "DELETE_DOMAIN_OPERATION",
    "DELETE_PROVIDER_OPERATION",
    "DELETE_WEBHOOK_OPERATION",
    "DOCS_URL",
    "ENABLE_WEBHOOK_OPERATION",
    "ERROR_DESCRIPTIONS",
    "GET_DOMAIN_OPERATION",
    "GET_PROVIDER_OPERATION",
    "LIST_DOMAINS_OPERATION",
    "LIST_KEYS_OPERATION",
    "LIST_PROVIDERS_OPERATION",
    "LIST_SUPPRESSIONS_OPERATION",
    "LIST_WEBHOOKS_OPERATION",
    "LIST_WEBHOOK_DELIVERIES_OPERATION",
    "OPENAPI_URL",
    "REDOC_URL",
    "REMOVE_SUPPRESSION_OPERATION",
    "REVOKE_KEY_OPERATION",
    "ROTATE_DOMAIN_OPERATION",
    "SEND_BATCH_OPERATION",
    "SEND_OPERATION",
    "STATUS_OPERATION",
    "TEST_PROVIDER_OPERATION",
    "TEST_WEBHOOK_OPERATION",
    "UPDATE_PROVIDER_OPERATION",
    "VERIFY_DOMAIN_OPERATION",
    "build_document",
    "install_api_docs",
]

OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
DOCS_ASSETS_URL = "/docs/assets"
# Swagger UI and ReDoc as files, from the fastapi-offline distribution that ships them.
DOCS_ASSETS_PACKAGE = "fastapi_offline"


DESCRIPTION = """\
Transactional e-mail through your own SMTP provider.

Every endpoint takes `Authorization: Bearer <API key>` and answers in one envelope:
`{"success": true, "data": {…}}` or
`{"success": false, "error": {"code": "…", "message": "…", "details": […]}}`.

`POST` requests take an optional `Idempotency-Key` header (up to 256 printable ASCII
characters): retrying with the same key and body never sends twice.

| code | HTTP | when |
| --- | --- | --- |
"""


def _error_table() -> str:
    return "".join(
        f"| `{error.code}` | {error.http_status} | {description} |\n"
        for error, description in ERROR_DESCRIPTIONS.items()
    )


def build_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of the app's routes, completed with the schemas above."""
    document = copy.deepcopy(
        get_openapi(
            title=app.title,
            version=app.version,
            description=DESCRIPTION + _error_table(),
            routes=app.routes,
        )
    )
    # No route answers FastAPI's own 422: a request that does not fit is a 400
    # VALIDATION_ERROR in the envelope (see ``api.app``).
    fastapi_422 = {"$ref": SCHEMAS + "HTTPValidationError"}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            unprocessable = responses.get("422", {}).get("content", {}).get("application/json", {})
            if unprocessable.get("schema") == fastapi_422:
                del responses["422"]
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(copy.deepcopy(COMPONENT_SCHEMAS | MANAGEMENT_SCHEMAS | DOMAIN_SCHEMAS))
    components.setdefault("examples", {}).update(
        copy.deepcopy(COMPONENT_EXAMPLES | MANAGEMENT_EXAMPLES | DOMAIN_EXAMPLES)
    )
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `mp_live_…`, or `mp_test_…` for mail that never leaves "
        "the machine.",
    }
    return document


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    assets = importlib.resources.files(DOCS_ASSETS_PACKAGE) / "static"
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi_document(_request: Request) -> Response:
        return Response(orjson.dumps(app.openapi()), media_type="application/json")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(_request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(_request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} API",
            redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
