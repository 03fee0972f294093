"""MTA-STS policies (RFC 8461 3.2) as documents state them, and the MX names they allow."""

from __future__ import annotations

import pytest

from mailpass.providers.mta_sts import MAX_AGE_MOST, parse_policy


def test_a_policy_is_read_with_its_patterns():
    policy = parse_policy(
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\n"
        "max_age: 604800\r\n",
        "id1",
    )
    assert policy.enforced
    assert policy.max_age == 604800
    assert policy.allows("mail.example.com")
    assert policy.allows("MX1.example.net.")
    assert not policy.allows("example.net")  # "*." stands for exactly one label
    assert not policy.allows("a.b.example.net")
    assert not policy.allows("evil-mail.example.com")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("mode: enforce\nmx: a.example\nmax_age: 1\n", "not version STSv1"),
        ("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n", "is not enforce"),
        ("version: STSv1\nmode: enforce\nmx: a.example\n", "no max_age"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "names no mx"),
    ],
)
def test_a_broken_policy_is_refused_saying_why(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_policy(text, "id")


def test_max_age_is_capped_at_a_year_and_none_needs_no_mx():
    policy = parse_policy("version: STSv1\nmode: none\nmax_age: 999999999\n", "id")
    assert policy.max_age == MAX_AGE_MOST
    assert not policy.enforced
