"""Tracking tokens: short, URL-safe, and worthless once altered or signed by someone else."""

from __future__ import annotations

import re

import pytest

from mailpass.tracking.tokens import MAX_LINK_INDEX, TokenSigner, TrackingToken, new_tracking_id

SIGNER = TokenSigner("instance-secret-one")
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_tokens_are_short_url_safe_and_read_back():
    tracking_id = new_tracking_id()
    opened = SIGNER.open_token(tracking_id)
    clicked = SIGNER.click_token(tracking_id, 7)
    assert URL_SAFE.fullmatch(opened)
    assert URL_SAFE.fullmatch(clicked)
    assert len(opened) == 34
    assert len(clicked) == 36
    assert SIGNER.verify(opened) == TrackingToken("open", tracking_id)
    assert SIGNER.verify(clicked) == TrackingToken("click", tracking_id, 7)
    assert SIGNER.verify(SIGNER.click_token(tracking_id, MAX_LINK_INDEX)) == TrackingToken(
        "click", tracking_id, MAX_LINK_INDEX
    )


def test_every_message_gets_its_own_tracking_id():
    assert len({new_tracking_id() for _ in range(1000)}) == 1000


def test_every_single_character_change_is_refused():
    token = SIGNER.click_token(new_tracking_id(), 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(len(token)):
        for replacement in alphabet:
            if replacement == token[position]:
                continue
            altered = token[:position] + replacement + token[position + 1 :]
            assert SIGNER.verify(altered) is None, (position, replacement)


@pytest.mark.parametrize(
    "garbage",
    ["", "x", "a" * 34, "a" * 36, "a" * 5000, "%2F%2Fevil.example", "//evil.example", "é" * 34],
)
def test_garbage_is_refused(garbage):
    assert SIGNER.verify(garbage) is None


def test_tokens_of_another_instance_are_refused():
    other = TokenSigner("instance-secret-two")
    tracking_id = new_tracking_id()
    assert SIGNER.verify(other.open_token(tracking_id)) is None
    assert SIGNER.verify(other.click_token(tracking_id, 0)) is None


def test_padding_or_truncation_is_refused():
    token = SIGNER.open_token(new_tracking_id())
    assert SIGNER.verify(token + "=") is None
    assert SIGNER.verify(token + "A") is None
    assert SIGNER.verify(token[:-1]) is None


def test_link_index_out_of_range_cannot_be_signed():
    with pytest.raises(ValueError, match="link index"):
        SIGNER.click_token(new_tracking_id(), MAX_LINK_INDEX + 1)
