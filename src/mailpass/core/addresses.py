"""Parsing the mailboxes and header text that API clients send, before anything is composed.

Everything here is strict on purpose: a value that reaches a header must not be able to add a
header of its own (CR, LF), and an address must mean exactly one mailbox.
"""

from __future__ import annotations

import functools
import re

import email_validator
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from mailpass.core.outgoing import Address

__all__ = [
    "REFUSED_DOMAINS",
    "AddressError",
    "HeaderValueError",
    "allow_single_label_domains",
    "check_header_text",
    "mail_domain",
    "parse_mailbox",
    "parse_mailbox_list",
]

# The special-use names (RFC 6761 and later) that stay refused as mail domains: ".invalid" is
# guaranteed never to exist, and "localhost" is whatever machine reads the address. The others
# email-validator refuses by default (".local", ".home.arpa", ".test", ".onion") name real hosts
# on the intranets, home networks and test set-ups where self-hosted mail runs, and are
# accepted. (Trimming the library's list is how its documentation says to do this.)
REFUSED_DOMAINS = ("invalid", "localhost")
email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = [
    name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES if name in REFUSED_DOMAINS
]
# Whether a domain must have a dot (and a TLD ending in a letter), as one on the Internet does;
# off for installations whose hosts have single-label names ("ops@mailhost"), see
# ``allow_single_label_domains``.
_globally_deliverable = True

# Values are echoed in error messages shown to API clients; a megabyte of junk should not be.
_MAX_ECHOED_CHARS = 100


# An address alone, as most are sent: no whitespace, angle brackets, list separators, quotes,
# CR, LF or NUL, so parse_mailbox has nothing to strip, split or refuse before validating it.
_BARE_ADDRESS = re.compile(r'[^\s<>,;"\x00]+')

# RFC 5322 "specials" other than ".", which RFC 5322's obs-phrase allows in names ("Dr. Who").
# Each of them changes what an unquoted name means, so such a name must be put in quotes.
_SPECIALS_IN_NAMES = re.compile(r'[()<>\[\]:;@\\,"]')

# The usual address: a dot-atom of RFC 5322 atext before the "@" and a host name of ASCII
# letters, digits, dots and hyphens after it. For these, everything email-validator checks
# outside the domain is the dot-atom itself and the length, which we check here; see
# _ascii_email.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_ASCII_HOST = re.compile(r"[A-Za-z0-9.\-]+")
# Mailbox names that email-validator lowercases (RFC 2142); those take its whole path.
_CASE_INSENSITIVE_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
_MAX_ADDRESS_OCTETS = 254  # email-validator's limit, on each form of the address
# A local part that makes every domain's probe address valid: short, plain, not in RFC 2142.
_PROBE_LOCAL_PART = "x"
_DOMAIN_CACHE_SIZE = 4096  # domains; mail goes to far fewer than it has recipients
# Mailboxes as given: every message of an account repeats its sender. Only successes are
# cached (``lru_cache`` does not store exceptions).
_ADDRESS_CACHE_SIZE = 4096


class AddressError(ValueError):
    """An e-mail address, or a name with it, that cannot be used.

    ``str(error)`` is a complete sentence suitable for an API client, e.g.
    ``'bob@@x' is not a valid e-mail address: ...``.
    """

    def __init__(self, value: str, reason: str) -> None:
        # Both go to args so the exception survives pickling (e.g. across process pools).
        super().__init__(value, reason)
        self.value = value
        self.reason = reason

    def __str__(self) -> str:
        return f"{_shorten(self.value)!r} is not a valid e-mail address: {self.reason}"


class HeaderValueError(ValueError):
    """Text bound for a header (a subject, a display name) that contains CR, LF or NUL."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return f"{_shorten(self.value)!r} must not contain line breaks (CR, LF) or NUL characters"


def allow_single_label_domains(allowed: bool) -> None:
    """Accept domains without a dot (``ops@mailhost``) from now on, or stop accepting them:
    ``MAILPASS_ALLOW_SINGLE_LABEL_DOMAINS``, set once per process as it starts."""
    global _globally_deliverable
    if _globally_deliverable == (not allowed):
        return
    _globally_deliverable = not allowed
    parse_mailbox.cache_clear()
    _domain_forms.cache_clear()


def check_header_text(value: str) -> str:
    """Return ``value`` unchanged, or raise `HeaderValueError` if it contains CR, LF or NUL."""
    if _has_line_break_or_nul(value):
        raise HeaderValueError(value)
    return value


@functools.lru_cache(maxsize=_ADDRESS_CACHE_SIZE)
def parse_mailbox(raw: str) -> Address:
    """Parse one mailbox: ``user@example.com`` or ``Name <user@example.com>``.

    The name may be quoted (``"Doe, Jane" <jane@example.com>``) and must be when it contains
    any of ``( ) < > [ ] : ; @ \\ , "``. The returned address is in its ASCII form: an IDN
    domain comes back as punycode. Addresses with non-ASCII characters before the ``@`` are
    refused because sending them needs SMTPUTF8, which MailPass does not use.
    """
    if _BARE_ADDRESS.fullmatch(raw):
        # Nothing below would change it or find a name in it.
        return Address(email=_validate_addr_spec(raw, raw))
    if _has_line_break_or_nul(raw):
        raise AddressError(raw, "it must not contain line breaks (CR, LF) or NUL characters")
    text = raw.strip(" \t")
    if not text:
        raise AddressError(raw, "it is empty")

    if text.endswith(">"):
        open_at = text.rfind("<")
        if open_at == -1:
            raise AddressError(raw, "it has a '>' without a matching '<'")
        addr_spec = text[open_at + 1 : -1].strip(" \t")
        name = _parse_display_name(raw, text[:open_at].strip(" \t"))
    else:
        if "<" in text:
            raise AddressError(raw, "there is text after the '>', or the '>' is missing")
        if "," in text or ";" in text:
            raise AddressError(raw, "only one address is allowed here")
        addr_spec, name = text, None

    if not addr_spec:
        raise AddressError(raw, "the address between '<' and '>' is empty")
    return Address(email=_validate_addr_spec(raw, addr_spec), name=name)


def parse_mailbox_list(raw: list[str]) -> tuple[Address, ...]:
    """Parse each string with `parse_mailbox`; the first invalid one raises `AddressError`."""
    return tuple(parse_mailbox(item) for item in raw)


def _parse_display_name(raw: str, phrase: str) -> str | None:
    """Turn the text before ``<`` into a display name (``None`` when there is none)."""
    if not phrase:
        return None
    if phrase.startswith('"'):
        return _unquote(raw, phrase) or None
    special = _SPECIALS_IN_NAMES.search(phrase)
    if special is None:
        return phrase
    if special.group() == ",":
        reason = "only one address is allowed here; a name containing ',' must be in double quotes"
    else:
        reason = f"the name contains {special.group()!r}, so it must be in double quotes"
    raise AddressError(raw, reason)


def _unquote(raw: str, phrase: str) -> str:
    """Decode an RFC 5322 quoted-string that must make up the whole of ``phrase``."""
    chars: list[str] = []
    index = 1
    while index < len(phrase):
        char = phrase[index]
        if char == "\\":
            if index + 1 == len(phrase):
                break
            chars.append(phrase[index + 1])
            index += 2
        elif char == '"':
            if index != len(phrase) - 1:
                raise AddressError(raw, "there is text between the quoted name and the '<'")
            return "".join(chars)
        else:
            chars.append(char)
            index += 1
    raise AddressError(raw, "the quoted name has no closing '\"'")


def _validate_addr_spec(raw: str, addr_spec: str) -> str:
    local_part = addr_spec.rpartition("@")[0]
    if not local_part.isascii():
        raise AddressError(
            raw,
            "non-ASCII characters before the '@' are not supported "
            "(that needs SMTPUTF8, which MailPass does not use)",
        )
    try:
        return _ascii_email(addr_spec)
    except EmailNotValidError as exc:
        raise AddressError(raw, str(exc)) from exc


def _ascii_email(addr_spec: str) -> str:
    """The validated ASCII form of ``addr_spec``, as email-validator gives it;
    `EmailNotValidError` if it is not valid.

    email-validator spends most of a call (~35 µs on the bench machine) on the domain (IDNA,
    special-use names), and a batch's recipients are mostly distinct while their domains
    repeat. So the usual address is checked here, with the library's verdict on its domain
    cached per domain, and anything else (quoted or non-ASCII local parts, IDN hosts, RFC 2142
    names, failures) goes through the library whole, which also words every error. A
    differential test holds the two paths to the same answers. Only successes are cached
    (``lru_cache`` does not store exceptions), and the bound keeps a stream of distinct
    domains from growing memory.
    """
    local_part, _, domain = addr_spec.rpartition("@")
    if (
        _DOT_ATOM.fullmatch(local_part)
        and _ASCII_HOST.fullmatch(domain)
        and local_part.lower() not in _CASE_INSENSITIVE_NAMES
    ):
        try:
            ascii_domain, display_domain = _domain_forms(domain)
        except EmailNotValidError:
            pass
        else:
            ascii_email = local_part + "@" + ascii_domain
            if (
                len(addr_spec) <= _MAX_ADDRESS_OCTETS
                and len(ascii_email) <= _MAX_ADDRESS_OCTETS
                and len(f"{local_part}@{display_domain}".encode()) <= _MAX_ADDRESS_OCTETS
            ):
                return ascii_email
    result = validate_email(
        addr_spec,
        check_deliverability=False,
        allow_smtputf8=False,
        globally_deliverable=_globally_deliverable,
    )
    # With allow_smtputf8=False the library has refused anything without an ASCII form.
    assert result.ascii_email is not None
    return result.ascii_email


@functools.lru_cache(maxsize=_DOMAIN_CACHE_SIZE)
def _domain_forms(domain: str) -> tuple[str, str]:
    """email-validator's ASCII and display forms of ``domain``, from a probe address at it."""
    result = validate_email(
        _PROBE_LOCAL_PART + "@" + domain,
        check_deliverability=False,
        allow_smtputf8=False,
        globally_deliverable=_globally_deliverable,
    )
    return result.ascii_domain, result.domain


def mail_domain(raw: str) -> str:
    """``raw`` as a domain mail can be sent from or to, in its lower-case ASCII (IDNA) form;
    ``ValueError`` saying why not (the rules of addresses' domains, special-use names and
    single-label hosts included)."""
    domain = raw.strip().removesuffix(".")
    if not domain or domain.startswith("[") or "@" in domain or _has_line_break_or_nul(domain):
        raise ValueError(f"{_shorten(raw)!r} is not a domain name")
    try:
        ascii_domain, _display = _domain_forms(domain)
    except EmailNotValidError as exc:
        reason = (
            str(exc).replace("The part after the @-sign", "It").replace("An email address", "It")
        )
        raise ValueError(f"{_shorten(raw)!r} is not a usable domain: {reason}") from None
    return ascii_domain.lower()


def _has_line_break_or_nul(value: str) -> bool:
    """CR and LF would end the header line (header injection); NUL is refused by SMTP servers.
    (Three scans for one character each took a fifth of a regex search's time.)"""
    return "\r" in value or "\n" in value or "\x00" in value


def _shorten(value: str) -> str:
    if len(value) <= _MAX_ECHOED_CHARS:
        return value
    return value[:_MAX_ECHOED_CHARS] + "…"
