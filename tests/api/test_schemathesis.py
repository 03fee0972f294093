"""schemathesis against the real server, its published /openapi.json and a real SMTP server:
a bounded run of generated requests, valid and invalid, that must find no server error other
than SEND_FAILED and no answer the document does not describe."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

pytestmark = pytest.mark.slow

# Per operation and generation mode: 23 operations, 2 modes, 40 each, plus the documented
# examples: about 1,900 requests a database.
MAX_EXAMPLES = 40
EXAMPLE_DRAWS = 3  # per documented example
API = "/api/v1/"


def no_unexpected_server_error(ctx, response, case) -> None:
    """schemathesis's ``not_a_server_error``, less the one 500 the API documents on purpose:
    SEND_FAILED, the provider's refusal."""
    if response.status_code < 500:
        return
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if response.status_code != 500 or code != "SEND_FAILED":
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code} {code}: "
            f"{response.content[:300]!r}"
        )


CHECKS = [
    no_unexpected_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
# Whatever breaks the schema is refused, except in a batch: there a bad item fails alone, inside
# a 200 answer (as the document says).
NEGATIVE_CHECKS = [*CHECKS, schemathesis.checks.negative_data_rejection]
PARTIAL_ACCEPTANCE = {"/api/v1/mail/send-batch"}


@dataclass
class Tally:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def run_schemathesis(base_url: str, api_key: str) -> Tally:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    tally = Tally()
    headers = {"Authorization": f"Bearer {api_key}"}
    bounded = settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same few hundred requests on every run: no flaky CI
        phases=[Phase.generate],  # no shrinking: the run stays bounded even when it fails
        suppress_health_check=list(HealthCheck),
    )

    def exercise(strategy, checks, max_examples: int) -> None:
        @settings(bounded, max_examples=max_examples)
        @given(case=strategy)
        def one_request(case) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            tally.requests += 1
            tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=checks, headers=headers)

        one_request()

    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith(API)]
    # send, send-batch, status, cancel; the suppression list's list, add and remove; the
    # webhook endpoints' list, add, remove, deliveries, test and enable; the providers' list,
    # add, get, change, remove, default and test; the keys' list, make and revoke; the sending
    # domains' list, add, get, verify, rotate, key removal and removal
    assert len(operations) == 30
    for operation in operations:
        for example in schema.get_strategies_from_examples(operation):
            exercise(example, CHECKS, EXAMPLE_DRAWS)
        exercise(operation.as_strategy(GenerationMode.POSITIVE), CHECKS, MAX_EXAMPLES)
        negative_checks = CHECKS if operation.path in PARTIAL_ACCEPTANCE else NEGATIVE_CHECKS
        exercise(operation.as_strategy(GenerationMode.NEGATIVE), negative_checks, MAX_EXAMPLES)
    return tally


@pytest.fixture
def unthrottled(settings):  # type: ignore[no-untyped-def]
    """No throttle on failed keys: the run's generated bad keys would otherwise have every later
    request answered 429 RATE_LIMITED, and the endpoints themselves would go untested."""
    settings.auth_failure_limit = 1_000_000
    return settings


async def test_generated_requests_get_documented_answers(
    unthrottled, live_server, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)

    tally = await asyncio.to_thread(run_schemathesis, live_server.base_url, account.key)

    print(tally)
    assert 1400 <= tally.requests <= 3000, tally
    # The run reached both the happy path and the refusals.
    assert tally.statuses.get(200, 0) > 0, tally
    assert tally.statuses.get(400, 0) > 0, tally
