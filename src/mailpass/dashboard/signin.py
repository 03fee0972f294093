"""Checking a dashboard sign-in, with a lockout after repeated failures.

Failures are counted in the database, so the lockout holds across every process of an
installation: per e-mail (someone guessing one account's password) and per client address
(someone trying many accounts). While locked, even the right password is refused, so guessing
cannot go on at full speed. A successful sign-in forgets that e-mail's failures.
"""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

from mailpass.accounts import repository as accounts
from mailpass.accounts.models import User
from mailpass.accounts.passwords import verify_password
from mailpass.clock import utcnow
from mailpass.dashboard import repository
from mailpass.storage.database import Database

__all__ = [
    "FAILURE_WINDOW",
    "MAX_FAILURES_PER_ACCOUNT",
    "MAX_FAILURES_PER_ADDRESS",
    "Locked",
    "SignInRefused",
    "check_sign_in",
]

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5  # within FAILURE_WINDOW, for one e-mail
MAX_FAILURES_PER_ADDRESS = 20  # within FAILURE_WINDOW, from one client address

# Verified when the e-mail is unknown, so that an unknown account costs the same time as a
# wrong password and answers cannot tell which accounts exist.
_DUMMY_HASH = (  # of a random password nobody kept
    "$argon2id$v=19$m=65536,t=3,p=4$FiA7HRnCTvKADV59zdEj5A$"
    "fwxMyNu+4VelgZJm6FQaEkvgiHFZetRgukkqpEQ83uk"
)


class SignInRefused(Exception):
    """Wrong e-mail or password (deliberately not saying which)."""


class Locked(Exception):
    """Too many failures: no sign-in for ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            f"too many failed sign-ins; try again in {minutes} minute{'s' * (minutes != 1)}"
        )


async def check_sign_in(database: Database, email: str, password: str, ip_address: str) -> User:
    """The account whose password this is; ``Locked`` or ``SignInRefused`` otherwise."""
    email = email.strip().lower()
    now = utcnow()
    since = now - FAILURE_WINDOW
    async with database.transaction() as connection:
        await repository.delete_expired(connection, now, since)
        waits = []
        for scope, limit in (
            ({"email": email}, MAX_FAILURES_PER_ACCOUNT),
            ({"ip_address": ip_address}, MAX_FAILURES_PER_ADDRESS),
        ):
            count, oldest = await repository.count_failures(connection, since=since, **scope)
            if count >= limit and oldest is not None:
                waits.append((oldest + FAILURE_WINDOW - now).total_seconds())
        user = await accounts.find_user_by_email(connection, email)
    if waits:
        raise Locked(retry_after=max(1, math.ceil(max(waits))))

    # argon2 takes tens of milliseconds of CPU: off the event loop, so other requests go on.
    password_hash = user.password_hash if user and user.password_hash else _DUMMY_HASH
    valid = await asyncio.to_thread(verify_password, password_hash, password)
    accepted = user is not None and user.password_hash is not None and valid
    async with database.transaction() as connection:
        if accepted:
            await repository.forget_failures(connection, email)
        else:
            await repository.record_failure(
                connection, email=email[:320], ip_address=ip_address[:64], now=utcnow()
            )
    if user is None or not accepted:
        raise SignInRefused("wrong e-mail or password")
    return user
