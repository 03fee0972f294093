"""The retry policy on its own: the delays, their cap, the jitter and when it gives up."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpass.config import Settings
from mailpass.delivery.retry import RetryPolicy

QUEUED_AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
EXACT = RetryPolicy(base_delay=60.0, max_delay=3600.0, give_up_after=86400.0, jitter=0.0)


def test_the_delay_doubles_from_the_base_delay() -> None:
    assert [EXACT.delay(attempts) for attempts in (1, 2, 3, 4, 5)] == [60, 120, 240, 480, 960]


def test_the_delay_stops_growing_at_max_delay() -> None:
    assert EXACT.delay(6) == 1920
    assert EXACT.delay(7) == 3600  # 3840 capped
    assert EXACT.delay(8) == 3600
    assert EXACT.delay(10_000) == 3600  # no overflow however many attempts


@given(attempts=st.integers(min_value=1, max_value=100_000))
def test_every_delay_lies_between_the_base_and_the_cap(attempts: int) -> None:
    delay = EXACT.delay(attempts)
    assert 60 <= delay <= 3600
    assert EXACT.delay(attempts + 1) >= delay


def test_the_next_attempt_is_the_delay_after_now_without_jitter() -> None:
    now = QUEUED_AT + timedelta(minutes=5)
    decision = EXACT.decide(attempts=3, queued_at=QUEUED_AT, now=now)
    assert decision.retry_at == now + timedelta(seconds=240)
    assert not decision.gives_up


@given(seed=st.integers(min_value=0, max_value=2**32))
def test_jitter_spreads_the_delay_by_at_most_its_fraction(seed: int) -> None:
    policy = RetryPolicy(base_delay=100.0, max_delay=1000.0, give_up_after=86400.0, jitter=0.2)
    decision = policy.decide(
        attempts=2, queued_at=QUEUED_AT, now=QUEUED_AT, rng=random.Random(seed)
    )
    assert decision.retry_at is not None
    waited = (decision.retry_at - QUEUED_AT).total_seconds()
    assert 160 <= waited <= 240  # 200 s +- 20 %


def test_jitter_spreads_messages_that_failed_together() -> None:
    policy = RetryPolicy(base_delay=100.0, max_delay=1000.0, give_up_after=86400.0)
    rng = random.Random(7)
    retry_times = {
        policy.decide(attempts=1, queued_at=QUEUED_AT, now=QUEUED_AT, rng=rng).retry_at
        for _ in range(20)
    }
    assert len(retry_times) == 20


def test_it_gives_up_once_the_next_attempt_would_fall_past_the_window() -> None:
    # Queued 23 h 30 min ago: an hour's wait would end past the 24 h window.
    now = QUEUED_AT + timedelta(hours=23, minutes=30)
    decision = EXACT.decide(attempts=9, queued_at=QUEUED_AT, now=now)
    assert decision.retry_at is None
    assert decision.gives_up
    # A minute's wait still fits in the same window.
    assert not EXACT.decide(attempts=1, queued_at=QUEUED_AT, now=now).gives_up


def test_an_attempt_due_exactly_at_the_end_of_the_window_is_still_made() -> None:
    now = QUEUED_AT + timedelta(seconds=86400 - 3600)
    decision = EXACT.decide(attempts=20, queued_at=QUEUED_AT, now=now)
    assert decision.retry_at == QUEUED_AT + timedelta(seconds=86400)


def test_the_retries_of_one_message_fill_the_window_and_stop() -> None:
    now, attempts, schedule = QUEUED_AT, 0, []
    while True:
        attempts += 1
        decision = EXACT.decide(attempts=attempts, queued_at=QUEUED_AT, now=now)
        if decision.retry_at is None:
            break
        schedule.append(decision.retry_at)
        now = decision.retry_at
    waits = [
        (b - a).total_seconds() for a, b in zip([QUEUED_AT, *schedule[:-1]], schedule, strict=True)
    ]
    assert waits[:6] == [60, 120, 240, 480, 960, 1920]
    assert set(waits[6:]) == {3600}
    assert schedule[-1] <= QUEUED_AT + timedelta(days=1) < schedule[-1] + timedelta(hours=1)
    assert len(schedule) == 6 + 22  # 3,780 s of doubling, then 22 hourly tries in the day


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("MAILPASS_RETRY_BASE_DELAY", "5", "base_delay", 5.0),
        ("MAILPASS_RETRY_MAX_DELAY", "90", "max_delay", 90.0),
        ("MAILPASS_RETRY_GIVE_UP_AFTER", "600", "give_up_after", 600.0),
    ],
)
def test_the_policy_comes_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: float
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(RetryPolicy.from_settings(Settings()), field) == expected
