"""What a client reads when a provider's sending limit stops a message (SEND_LIMIT_EXCEEDED)."""

from __future__ import annotations

from mailpass.providers.limits import LimitReached


def test_the_message_names_the_window_the_limit_and_the_wait() -> None:
    assert LimitReached("hourly", 500, 120).describe() == (
        "the provider's hourly limit of 500 messages is reached; retry in 120 seconds"
    )


def test_one_is_singular() -> None:
    assert LimitReached("daily", 1, 1).describe() == (
        "the provider's daily limit of 1 message is reached; retry in 1 second"
    )
