"""Failed authentication is throttled per client address, across processes; valid keys from
other addresses are not slowed down."""

from __future__ import annotations

import httpx
import pytest

from mailpass.accounts.key_rate import KeyRate
from mailpass.api.app import create_app

ITEM = {"to": "user@example.com", "subject": "Hi", "text": "Hello"}
WRONG = {"Authorization": "Bearer mp_live_" + "x" * 32}


@pytest.fixture
def small_limit(settings):
    settings.auth_failure_limit = 5
    return settings


def client_from(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://mailpass.test")


async def test_an_address_that_keeps_failing_is_answered_429_and_others_are_not(
    small_limit, database, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    app = create_app(small_limit)
    async with (
        app.router.lifespan_context(app),
        client_from(app, "203.0.113.7") as guesser,
        client_from(app, "198.51.100.2") as customer,
    ):
        statuses = [
            (await guesser.post("/api/v1/mail/send", json=ITEM, headers=WRONG)).status_code
            for _ in range(5)
        ]
        assert statuses == [401] * 5
        throttled = await guesser.post("/api/v1/mail/send", json=ITEM, headers=WRONG)
        assert throttled.status_code == 429
        error = throttled.json()["error"]
        assert error["code"] == "RATE_LIMITED"
        retry_after = int(throttled.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert error["details"] == [{"retry_after": retry_after}]
        # Even its valid key waits: the address is throttled, not the key.
        keyed = await guesser.get("/api/v1/mail/status/<x@y>", headers=account.headers)
        assert keyed.status_code == 429
        # Another address with a valid key is not affected, nor one with a wrong key yet.
        sent = await customer.post("/api/v1/mail/send", json=ITEM, headers=account.headers)
        assert sent.status_code == 200
        other_wrong = await customer.get("/api/v1/mail/status/<x@y>", headers=WRONG)
        assert other_wrong.status_code == 401


async def test_failures_are_counted_across_processes(
    small_limit, database, make_account, smtp_sink
):
    # Two apps on one database stand for two server processes.
    first, second = create_app(small_limit), create_app(small_limit)
    async with (
        first.router.lifespan_context(first),
        second.router.lifespan_context(second),
        client_from(first, "203.0.113.9") as on_first,
        client_from(second, "203.0.113.9") as on_second,
    ):

        async def status_with_a_wrong_key(client: httpx.AsyncClient) -> int:
            return (await client.get("/api/v1/mail/status/<x@y>", headers=WRONG)).status_code

        assert [await status_with_a_wrong_key(on_first) for _ in range(3)] == [401] * 3
        # Two more on the other process reach the limit there: five in the minute in all.
        assert [await status_with_a_wrong_key(on_second) for _ in range(3)] == [401, 401, 429]
        # The first process learns of it at the address's next failure there.
        assert [await status_with_a_wrong_key(on_first) for _ in range(2)] == [401, 429]


async def test_a_missing_key_counts_as_a_failure(small_limit, database):
    app = create_app(small_limit)
    async with app.router.lifespan_context(app), client_from(app, "192.0.2.1") as client:
        for _ in range(5):
            assert (await client.post("/api/v1/mail/send", json=ITEM)).status_code == 401
        assert (await client.post("/api/v1/mail/send", json=ITEM)).status_code == 429


async def test_an_optional_per_key_rate_answers_429_to_that_key_alone(
    settings, database, make_account, smtp_sink
):
    settings.key_rate_limit = 2  # a second's worth at once, then one every half second
    busy = await make_account("busy@example.com", sink=smtp_sink)
    calm = await make_account("calm@example.com", sink=smtp_sink)
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_from(app, "198.51.100.2") as client:
        statuses = [
            (await client.get("/api/v1/mail/status/<x@y>", headers=busy.headers)).status_code
            for _ in range(2)
        ]
        assert statuses == [404, 404]  # let in (there is no such message)
        limited = await client.get("/api/v1/mail/status/<x@y>", headers=busy.headers)
        assert limited.status_code == 429
        error = limited.json()["error"]
        assert error["code"] == "RATE_LIMITED"
        assert error["message"] == (
            "this API key's limit of 2 requests a second is reached; retry in 1 second"
        )
        assert limited.headers["retry-after"] == "1"
        # Another key, from the same address, is not held back.
        other = await client.get("/api/v1/mail/status/<x@y>", headers=calm.headers)
        assert other.status_code == 404


def test_the_key_rate_refills_at_its_rate_and_is_off_by_default():
    rate = KeyRate(2.0)
    assert [rate.take(1, now=10.0), rate.take(1, now=10.0)] == [None, None]
    assert rate.take(1, now=10.0) == 1
    assert rate.take(1, now=10.6) is None  # half a second later: one more
    assert rate.take(1, now=10.6) == 1
    assert rate.take(2, now=10.6) is None  # each key has its own
    slow = KeyRate(0.1)  # one every ten seconds
    assert slow.take(1, now=0.0) is None
    assert slow.take(1, now=1.0) == 9
    assert KeyRate(0).take(1, now=0.0) is None
    assert not KeyRate(0).enabled
