"""Dashboard sessions: a signed, HttpOnly, SameSite cookie naming a row in ``dashboard_sessions``.

The cookie holds a random token signed with a key derived from the instance secret (HKDF, a
purpose of its own), so a forged or altered cookie is refused before the database is asked.
The database keeps only the token's SHA-256: signing out deletes the row, and the session also
ends when its time is up or when the account's password changes.

CSRF: each session has its own random token, put into every form; a POST must carry it back.
The sign-in form, which comes before any session, uses a signed cookie of its own instead
(double submit). Requests whose ``Origin`` names another site are refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from mailpass.clock import utcnow
from mailpass.dashboard import repository
from mailpass.dashboard.repository import SessionRow
from mailpass.storage.database import Database

__all__ = [
    "COOKIE_PATH",
    "SESSION_COOKIE",
    "SIGNIN_COOKIE",
    "SessionCodec",
    "SignedInAccount",
    "end_session",
    "load_session",
    "password_fingerprint",
    "same_origin",
    "start_session",
    "tokens_match",
]

SESSION_COOKIE = "mailpass_session"
SIGNIN_COOKIE = "mailpass_signin"  # the sign-in form's CSRF token, before there is a session
COOKIE_PATH = "/dashboard"
TOKEN_BYTES = 32
SIGNIN_FORM_LIFETIME = 3600  # seconds a sign-in form stays usable


@dataclass(frozen=True, slots=True)
class SignedInAccount:
    """Who is signed in, as every page sees it."""

    user_id: int
    email: str
    csrf_token: str
    token_hash: str


class SessionCodec:
    """Signs and checks the dashboard's cookies."""

    def __init__(self, instance_secret: str, *, lifetime: float, secure: bool) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailpass dashboard cookies v1"
        ).derive(instance_secret.encode())
        self._sessions = URLSafeTimedSerializer(key, salt="session")
        self._signin = URLSafeTimedSerializer(key, salt="signin-form")
        self.lifetime = lifetime
        self.secure = secure

    # -- the session cookie ------------------------------------------------------------------

    def session_token(self, request: Request) -> str | None:
        """The token of a genuine, unexpired session cookie, else None."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            token = self._sessions.loads(raw, max_age=int(self.lifetime))
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    def set_session_cookie(self, response: Response, token: str) -> None:
        self._set(response, SESSION_COOKIE, self._sessions.dumps(token), int(self.lifetime))

    def clear_session_cookie(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path=COOKIE_PATH, secure=self.secure, httponly=True, samesite="lax"
        )

    # -- the sign-in form's CSRF token ---------------------------------------------------------

    def signin_token(self, request: Request) -> str | None:
        raw = request.cookies.get(SIGNIN_COOKIE)
        if not raw:
            return None
        try:
            token = self._signin.loads(raw, max_age=SIGNIN_FORM_LIFETIME)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    def set_signin_cookie(self, response: Response, token: str) -> None:
        self._set(response, SIGNIN_COOKIE, self._signin.dumps(token), SIGNIN_FORM_LIFETIME)

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        # Lax rather than Strict: a link to the dashboard from a mail or a chat should open it
        # signed in. Every state change is a POST, which Lax never sends from another site.
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def password_fingerprint(password_hash: str | None) -> str:
    """Changes whenever the password does (argon2 hashes carry a fresh salt)."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()


def tokens_match(expected: str | None, given: object) -> bool:
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from a page of another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Old browsers send no Origin; the CSRF token still protects them. "null" comes from
        # sandboxed documents and privacy modes: not proof of a cross-site request by itself.
        return True
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def start_session(
    database: Database, codec: SessionCodec, *, user_id: int, password_hash: str | None
) -> str:
    """A new session for the account; returns the token for the cookie."""
    token = new_token()
    now = utcnow()
    async with database.transaction() as connection:
        await repository.insert_session(
            connection,
            token_hash=hash_token(token),
            user_id=user_id,
            csrf_token=new_token(),
            password_fingerprint=password_fingerprint(password_hash),
            now=now,
            expires_at=now + timedelta(seconds=codec.lifetime),
        )
    return token


async def load_session(
    database: Database, codec: SessionCodec, request: Request
) -> SignedInAccount | None:
    token = codec.session_token(request)
    if token is None:
        return None
    token_hash = hash_token(token)
    async with database.read() as connection:
        row: SessionRow | None = await repository.find_session(connection, token_hash, utcnow())
    if row is None:
        return None
    if not hmac.compare_digest(
        row.password_fingerprint, password_fingerprint(row.current_password_hash)
    ):
        return None
    return SignedInAccount(
        user_id=row.user_id, email=row.email, csrf_token=row.csrf_token, token_hash=token_hash
    )


async def end_session(database: Database, token_hash: str) -> None:
    async with database.transaction() as connection:
        await repository.delete_session(connection, token_hash)
