"""Dashboard fixtures: signed-in HTTP clients against the real app, and HTML helpers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from mailpass.accounts import service as accounts

PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF_FIELD.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


class Browser:
    """An HTTP client with its own cookies, signed in to the dashboard as one account."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, url: str, **kwargs: object) -> httpx.Response:
        return await self.client.get(url, **kwargs)  # type: ignore[arg-type]

    async def post(self, url: str, data: dict | None = None, **kwargs: object) -> httpx.Response:
        """A form post carrying this session's CSRF token (unless ``data`` sets its own)."""
        fields = {"csrf_token": self.csrf, **(data or {})}
        return await self.client.post(url, data=fields, **kwargs)  # type: ignore[arg-type]

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        form = await self.client.get("/dashboard/sign-in")
        answer = await self.client.post(
            "/dashboard/sign-in",
            data={"csrf_token": csrf_of(form.text), "email": email, "password": password},
        )
        if answer.status_code == 303:
            self.csrf = csrf_of((await self.client.get("/dashboard/")).text)
        return answer


@pytest.fixture
async def browsers(app_client: httpx.AsyncClient) -> AsyncIterator[object]:
    """Make independent clients (own cookie jars) against the test's app."""
    app = app_client.app  # type: ignore[attr-defined]
    opened: list[httpx.AsyncClient] = []

    def make() -> Browser:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://mailpass.test",
        )
        opened.append(client)
        return Browser(client)

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def signed_in(browsers, make_account, database):  # type: ignore[no-untyped-def]
    """An account (with key and, given a sink, a provider) and a browser signed in as it."""

    async def make(email: str = "owner@example.com", **options: object) -> tuple[Browser, object]:
        account = await make_account(email, **options)
        await accounts.set_password(database, email, PASSWORD)
        browser = browsers()
        answer = await browser.sign_in(email)
        assert answer.status_code == 303, answer.text
        return browser, account

    return make
