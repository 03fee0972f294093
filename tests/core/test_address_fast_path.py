"""The usual address is checked without email-validator's whole path, and must get exactly the
answer the library gives: the same ASCII form, or a refusal with the same words."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailpass.core import addresses

check_address = addresses._ascii_email

ATEXT = "abcXYZ019!#$%&'*+-/=?^_`{|}~"
HOST_CHARACTERS = "abcXYZ019-."


def library_answer(address: str) -> str:
    try:
        result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return f"refused: {exc}"
    return f"valid: {result.ascii_email}"


def our_answer(address: str) -> str:
    try:
        return f"valid: {check_address(address)}"
    except EmailNotValidError as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize(
    "address",
    [
        "customer1@example.com",
        "Bob.Smith@Example.COM",
        "a+tag@sub.example.co.uk",
        "o'brien@example.ie",
        "{weird}~/=?^`|@example.com",
        "Postmaster@example.com",  # RFC 2142: the library lowercases it
        "ABUSE@example.com",
        "a.@example.com",
        ".a@example.com",
        "a..b@example.com",
        "@example.com",
        "a@",
        "a@example",
        "a@localhost",
        "a@example.test",
        "a@host.invalid",
        "a@host.local",
        "a@host.onion",
        "a@host.home.arpa",
        "a@mail.internal",
        "a@x.localhost",
        "a@example.123",
        "a@-example.com",
        "a@example-.com",
        "a@example..com",
        "a@example.com.",
        "a@.example.com",
        "a@xn--bcher-kva.de",
        "a@xn--zz.com",
        "a@" + "x" * 63 + ".com",
        "a@" + "x" * 64 + ".com",
        "a" * 64 + "@example.com",
        "a" * 242 + "@example.com",  # 254 octets: the longest allowed
        "a" * 243 + "@example.com",  # 255
        "a" * 200 + "@xn--bcher-kva.de",
        # 254 octets as given, 288 once the domain is shown in Unicode (twenty "あ")
        "a" * 224 + "@xn--l8jaaaaaaaaaaaaaaaaaaa.jp",
        "a" * 190 + "@xn--l8jaaaaaaaaaaaaaaaaaaa.jp",
        "a@" + ".".join(["x" * 60] * 4) + ".com",
        "a@b@example.com",
        '"quoted"@example.com',
        "a b@example.com",
        "a@exam_ple.com",
        "a@[192.0.2.1]",
        "a@bücher.de",
    ],
)
def test_known_cases_get_the_library_answer(address: str) -> None:
    assert our_answer(address) == library_answer(address)


local_parts = st.text(alphabet=ATEXT + '."@ \\', min_size=0, max_size=70) | st.builds(
    lambda n: "a" * n, st.integers(min_value=1, max_value=260)
)
labels = st.text(alphabet=HOST_CHARACTERS, min_size=0, max_size=66)
domains = st.lists(labels, min_size=1, max_size=5).map(".".join) | st.sampled_from(
    ["example.com", "EXAMPLE.com", "localhost", "example.test", "xn--bcher-kva.de", "x.onion"]
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(local_part=local_parts, domain=domains)
@example(local_part="a" * 233, domain="xn--bcher-kva.de")
def test_generated_addresses_get_the_library_answer(local_part: str, domain: str) -> None:
    address = f"{local_part}@{domain}"
    assert our_answer(address) == library_answer(address)


def test_the_usual_address_skips_the_library_once_its_domain_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def counted(address: str, **options: object) -> object:
        calls.append(address)
        return validate_email(address, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(addresses, "validate_email", counted)
    addresses._domain_forms.cache_clear()
    assert check_address("first@fast-path.example.com") == "first@fast-path.example.com"
    assert check_address("second@fast-path.example.com") == "second@fast-path.example.com"
    assert check_address("Third@FAST-PATH.example.com") == "Third@fast-path.example.com"
    # One probe for each spelling of the domain, no call for the addresses themselves.
    assert calls == ["x@fast-path.example.com", "x@FAST-PATH.example.com"]
