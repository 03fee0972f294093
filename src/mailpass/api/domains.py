"""``/api/v1/domains``: the account's sending domains, for keys with the ``domains``
permission. Private DKIM keys never leave the server: an answer gives the records to publish."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailpass.api.auth import authenticate
from mailpass.api.mail import DirectRoute, services_of
from mailpass.api.openapi import (
    CREATE_DOMAIN_OPERATION,
    DELETE_DOMAIN_KEY_OPERATION,
    DELETE_DOMAIN_OPERATION,
    GET_DOMAIN_OPERATION,
    LIST_DOMAINS_OPERATION,
    ROTATE_DOMAIN_OPERATION,
    VERIFY_DOMAIN_OPERATION,
)
from mailpass.api.params import path_id
from mailpass.api.responses import success_response
from mailpass.clock import isoformat
from mailpass.domains.models import SendingDomain
from mailpass.domains.request import DomainFields, RotationFields
from mailpass.domains.service import DomainError, record_answers
from mailpass.errors import NotFound, ValidationError
from mailpass.messages.request import parse_json_body
from mailpass.services import Services

__all__ = ["domain_answer", "router"]

router = APIRouter(prefix="/api/v1/domains", route_class=DirectRoute)

PERMISSION = "domains"
WHAT = "domain"


def domain_answer(services: Services, domain: SendingDomain) -> dict[str, Any]:
    return {
        "id": domain.id,
        "name": domain.name,
        "verified": domain.is_verified,
        "verified_at": isoformat(domain.verified_at) if domain.verified_at else None,
        "checked_at": isoformat(domain.checked_at) if domain.checked_at else None,
        "dkim_keys": [
            {
                "selector": key.selector,
                "algorithm": key.algorithm,
                "state": key.state,
                "created_at": isoformat(key.created_at),
                "activated_at": isoformat(key.activated_at) if key.activated_at else None,
            }
            for key in domain.keys
        ],
        "records": record_answers(domain, services.settings),
        "created_at": isoformat(domain.created_at),
    }


def _refused(exc: DomainError) -> ValidationError:
    return ValidationError(str(exc), details=[{"message": str(exc)}])


async def _services(request: Request) -> tuple[Services, int]:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.domains.find_key, PERMISSION)
    return services, key.user_id


async def _own(request: Request, domain_id: str) -> tuple[Services, SendingDomain]:
    services, user_id = await _services(request)
    domain = await services.domains.get(user_id, path_id(domain_id, WHAT))
    if domain is None:  # another account's is as unknown as a missing one
        raise NotFound(f"no {WHAT} {domain_id}")
    return services, domain


@router.get("", openapi_extra=LIST_DOMAINS_OPERATION)
async def list_domains(request: Request) -> Response:
    services, user_id = await _services(request)
    found = await services.domains.domains(user_id)
    return success_response({"domains": [domain_answer(services, d) for d in found]})


@router.post("", openapi_extra=CREATE_DOMAIN_OPERATION)
async def create_domain(request: Request) -> Response:
    services, user_id = await _services(request)
    fields = parse_json_body(await request.body(), DomainFields)
    try:
        domain = await services.domains.add(user_id, fields.name, fields.algorithm)
    except DomainError as exc:
        raise _refused(exc) from None
    return success_response(domain_answer(services, domain))


@router.get("/{domain_id}", openapi_extra=GET_DOMAIN_OPERATION)
async def get_domain(request: Request, domain_id: str) -> Response:
    services, domain = await _own(request, domain_id)
    return success_response(domain_answer(services, domain))


@router.post("/{domain_id}/verify", openapi_extra=VERIFY_DOMAIN_OPERATION)
async def verify_domain(request: Request, domain_id: str) -> Response:
    """Look the records up now; what was found is in each record's ``status`` and ``found``.
    A domain whose records are not there yet is an answer (``verified: false``), not an
    error."""
    services, domain = await _own(request, domain_id)
    checked = await services.domains.verify(domain.user_id, domain.id)
    if checked is None:  # deleted meanwhile
        raise NotFound(f"no {WHAT} {domain_id}")
    return success_response(domain_answer(services, checked[0]))


@router.post("/{domain_id}/rotate", openapi_extra=ROTATE_DOMAIN_OPERATION)
async def rotate_key(request: Request, domain_id: str) -> Response:
    services, domain = await _own(request, domain_id)
    body = await request.body()
    fields = parse_json_body(body, RotationFields) if body.strip() else RotationFields()
    try:
        rotated = await services.domains.rotate(domain.user_id, domain.id, fields.algorithm)
    except DomainError as exc:
        raise _refused(exc) from None
    if rotated is None:
        raise NotFound(f"no {WHAT} {domain_id}")
    return success_response(domain_answer(services, rotated))


@router.delete("/{domain_id}/keys/{selector}", openapi_extra=DELETE_DOMAIN_KEY_OPERATION)
async def delete_key(request: Request, domain_id: str, selector: str) -> Response:
    services, domain = await _own(request, domain_id)
    try:
        removed = await services.domains.remove_key(domain.user_id, domain.id, selector)
    except DomainError as exc:
        raise _refused(exc) from None
    if not removed:
        raise NotFound(f"the domain {domain.name} has no DKIM key {selector}")
    changed = await services.domains.get(domain.user_id, domain.id)
    if changed is None:
        raise NotFound(f"no {WHAT} {domain_id}")
    return success_response(domain_answer(services, changed))


@router.delete("/{domain_id}", openapi_extra=DELETE_DOMAIN_OPERATION)
async def delete_domain(request: Request, domain_id: str) -> Response:
    services, domain = await _own(request, domain_id)
    await services.domains.delete(domain.user_id, domain.id)
    return success_response({"id": domain.id, "deleted": True})
