"""``/api/v1/domains``: the sending domains' schemas, examples and operations."""

from __future__ import annotations

from typing import Any

from mailpass.api.openapi.management import _BODY_ERRORS, _ERRORS, _example, _operation
from mailpass.api.openapi.schemas import NULLABLE_STRING, SCHEMAS, SEED_TIME, _success
from mailpass.domains.dkim import ALGORITHMS
from mailpass.domains.models import KeyState
from mailpass.domains.records import RecordStatus
from mailpass.errors import NotFound

__all__ = [
    "CREATE_DOMAIN_OPERATION",
    "DELETE_DOMAIN_KEY_OPERATION",
    "DELETE_DOMAIN_OPERATION",
    "DOMAIN_EXAMPLES",
    "DOMAIN_SCHEMAS",
    "GET_DOMAIN_OPERATION",
    "LIST_DOMAINS_OPERATION",
    "ROTATE_DOMAIN_OPERATION",
    "VERIFY_DOMAIN_OPERATION",
]

NULLABLE_TIME = {**SEED_TIME, "type": ["string", "null"]}
ALGORITHM = {"type": "string", "enum": list(ALGORITHMS)}

DKIM_KEY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "selector": {"type": "string"},
        "algorithm": ALGORITHM,
        "state": {
            "type": "string",
            "enum": [state.value for state in KeyState],
            "description": "`active` signs; `pending` waits to be found in the DNS (a "
            "rotation); `retired` was replaced: keep its record until you remove the key.",
        },
        "created_at": SEED_TIME,
        "activated_at": NULLABLE_TIME,
    },
}
DKIM_KEY["required"] = list(DKIM_KEY["properties"])
DNS_RECORD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "purpose": {"type": "string", "enum": ["dkim", "spf", "dmarc", "return_path"]},
        "type": {"type": "string", "enum": ["TXT", "MX"]},
        "name": {"type": "string"},
        "value": {"type": "string", "description": "What to publish."},
        "required": {"type": "boolean", "description": "Needed for the domain to be verified."},
        "status": {
            "type": ["string", "null"],
            "enum": [*(status.value for status in RecordStatus), None],
            "description": "What the last check found; null before one.",
        },
        "found": {"type": "array", "items": {"type": "string"}},
        "note": NULLABLE_STRING,
    },
}
DNS_RECORD["required"] = list(DNS_RECORD["properties"])
DNS_RECORD["properties"]["selector"] = {"type": "string"}
DOMAIN: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string", "description": "Lower-case, internationalized names in IDNA."},
        "verified": {
            "type": "boolean",
            "description": "Its DKIM and SPF records were found: direct providers send from it.",
        },
        "verified_at": NULLABLE_TIME,
        "checked_at": NULLABLE_TIME,
        "dkim_keys": {"type": "array", "items": {"$ref": SCHEMAS + "DkimKey"}},
        "records": {"type": "array", "items": {"$ref": SCHEMAS + "DnsRecord"}},
        "created_at": SEED_TIME,
    },
}
DOMAIN["required"] = list(DOMAIN["properties"])
DOMAIN_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "algorithm": {**ALGORITHM, "description": "Default: `rsa` (2048 bits)."},
    },
}
ROTATION_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"algorithm": {**ALGORITHM, "description": "Default: the active key's."}},
}
DOMAIN_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["domains"],
    "properties": {"domains": {"type": "array", "items": {"$ref": SCHEMAS + "Domain"}}},
}
DOMAIN_DELETED: dict[str, Any] = {
    "type": "object",
    "required": ["id", "deleted"],
    "properties": {"id": {"type": "integer"}, "deleted": {"type": "boolean", "const": True}},
}

DOMAIN_SCHEMAS: dict[str, Any] = {
    "DkimKey": DKIM_KEY,
    "DnsRecord": DNS_RECORD,
    "Domain": DOMAIN,
    "DomainRequest": DOMAIN_REQUEST,
    "RotationRequest": ROTATION_REQUEST,
    "DomainSuccess": _success("Domain"),
    "DomainList": DOMAIN_LIST,
    "DomainListSuccess": _success("DomainList"),
    "DomainDeleted": DOMAIN_DELETED,
    "DomainDeletedSuccess": _success("DomainDeleted"),
}

_DOMAIN_EXAMPLE = {
    "id": 1,
    "name": "shop.example",
    "verified": True,
    "verified_at": "2026-01-30T12:05:00",
    "checked_at": "2026-01-30T12:05:00",
    "dkim_keys": [
        {
            "selector": "mp20260130a1b2",
            "algorithm": "rsa",
            "state": "active",
            "created_at": "2026-01-30T12:00:00",
            "activated_at": "2026-01-30T12:00:00",
        }
    ],
    "records": [
        {
            "purpose": "dkim",
            "type": "TXT",
            "name": "mp20260130a1b2._domainkey.shop.example",
            "value": "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA…",
            "required": True,
            "selector": "mp20260130a1b2",
            "status": "verified",
            "found": ["v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA…"],
            "note": None,
        },
        {
            "purpose": "spf",
            "type": "TXT",
            "name": "shop.example",
            "value": "v=spf1 ip4:203.0.113.5 ~all",
            "required": True,
            "status": "verified",
            "found": ["v=spf1 ip4:203.0.113.5 ~all"],
            "note": None,
        },
        {
            "purpose": "dmarc",
            "type": "TXT",
            "name": "_dmarc.shop.example",
            "value": "v=DMARC1; p=none; adkim=r; aspf=r",
            "required": False,
            "status": "missing",
            "found": [],
            "note": "no DMARC policy",
        },
    ],
    "created_at": "2026-01-30T12:00:00",
}

DOMAIN_EXAMPLES: dict[str, Any] = {
    "DomainAnswer": _example("A domain and the records to publish", _DOMAIN_EXAMPLE),
    "DomainListAnswer": _example("The account's domains", {"domains": [_DOMAIN_EXAMPLE]}),
    "DomainDeletedAnswer": _example("Removed", {"id": 1, "deleted": True}),
}

_DOMAIN_ID = {"name": "domain_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SELECTOR = {"name": "selector", "in": "path", "required": True, "schema": {"type": "string"}}
_ANSWER = ("The domain.", "DomainSuccess", "DomainAnswer")

LIST_DOMAINS_OPERATION = _operation(
    "listDomains",
    "The account's sending domains",
    "By name, each with its DKIM keys and the DNS records to publish.",
    tag="domains",
    answer=("The domains.", "DomainListSuccess", "DomainListAnswer"),
    errors=_ERRORS,
)
CREATE_DOMAIN_OPERATION = _operation(
    "createDomain",
    "Add a sending domain",
    "Makes its first DKIM key (the private key stays on the server, encrypted) and answers "
    "the records to publish. Direct providers send from it once `verify` found them.",
    tag="domains",
    answer=("Added.", "DomainSuccess", "DomainAnswer"),
    errors=_BODY_ERRORS,
    body="DomainRequest",
)
GET_DOMAIN_OPERATION = _operation(
    "getDomain",
    "One sending domain",
    "`NOT_FOUND` for another account's.",
    tag="domains",
    answer=_ANSWER,
    errors=[*_ERRORS, NotFound],
    parameters=[_DOMAIN_ID],
)
VERIFY_DOMAIN_OPERATION = _operation(
    "verifyDomain",
    "Look the domain's records up",
    "Each record says what was found and what was expected. A rotation's new key found in "
    "the DNS starts signing, and the key it replaces is retired. Records not there yet are "
    "an answer (`verified: false`), not an error.",
    tag="domains",
    answer=_ANSWER,
    errors=[*_ERRORS, NotFound],
    parameters=[_DOMAIN_ID],
)
ROTATE_DOMAIN_OPERATION = _operation(
    "rotateDomainKey",
    "Make a new DKIM key",
    "Under a new selector, `pending` until `verify` finds its record; the active key signs "
    "until then, and stays valid (retired) until you remove it. The body may be empty.",
    tag="domains",
    answer=_ANSWER,
    errors=[*_BODY_ERRORS, NotFound],
    parameters=[_DOMAIN_ID],
    body="RotationRequest",
)
DELETE_DOMAIN_KEY_OPERATION = _operation(
    "deleteDomainKey",
    "Remove a pending or retired DKIM key",
    "Then its record can go from the DNS. The active key cannot be removed.",
    tag="domains",
    answer=_ANSWER,
    errors=[*_ERRORS, NotFound],
    parameters=[_DOMAIN_ID, _SELECTOR],
)
DELETE_DOMAIN_OPERATION = _operation(
    "deleteDomain",
    "Remove a sending domain",
    "Its keys go with it: direct providers no longer send from it.",
    tag="domains",
    answer=("Removed.", "DomainDeletedSuccess", "DomainDeletedAnswer"),
    errors=[*_ERRORS, NotFound],
    parameters=[_DOMAIN_ID],
)
