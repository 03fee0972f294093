"""The SDK's management calls (``client.providers``, ``client.keys``, ``client.webhooks``),
blocking and async, against a real running server and real SMTP servers; and what a lost
answer does to a call that must not be made twice."""

from __future__ import annotations

import pytest

from mailpass import (
    APIConnectionError,
    AsyncClient,
    Client,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from mailpass.config import Settings
from tcp_fixtures import DroppingProxy


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_allow_private": True})


async def test_providers_from_the_blocking_client(
    live_server, make_account, make_threaded_smtp_sink
):
    first = make_threaded_smtp_sink()
    second = make_threaded_smtp_sink(auth={"relay": "pw"})
    account = await make_account(sink=first)
    with Client(account.key, base_url=live_server.base_url, max_retries=0) as client:
        made = client.providers.create(
            name="second",
            host="127.0.0.1",
            port=second.port,
            security="none",
            username="relay",
            password="pw",
            from_email="second@shop.example",
            daily_limit=100,
        )
        assert (made.kind, made.password_set, made.default, made.daily_limit) == (
            "smtp",
            True,
            False,
            100,
        )
        assert [p.name for p in client.providers.list()] == ["primary", "second"]
        tested = client.providers.test(made.id)
        assert tested.ok, tested
        assert "pw" not in " ".join(tested.transcript)

        changed = client.providers.update(made.id, daily_limit=None, name="relay")
        assert (changed.name, changed.daily_limit, changed.password_set) == ("relay", None, True)
        assert client.providers.set_default(made.id).default is True
        sent = client.mail.send(to="user@example.com", subject="Hi", text="Hi")
        assert sent.from_email == "second@shop.example"
        second.wait_for_sync(1)
        assert first.messages == []

        with pytest.raises(ValidationError) as refused:
            client.providers.update(made.id, kind="ses")
        assert "kind cannot change" in str(refused.value.details)
        client.providers.delete(account.provider.id)
        with pytest.raises(NotFoundError):
            client.providers.get(account.provider.id)
        assert client.providers.get(made.id).name == "relay"


async def test_keys_and_webhooks_from_the_async_client(live_server, make_account):
    account = await make_account(permissions=["keys", "webhooks", "mail"])
    async with AsyncClient(account.key, base_url=live_server.base_url, max_retries=0) as client:
        made = await client.keys.create("ci", permissions=["mail"])
        assert made.key is not None
        assert made.key.startswith("mp_live_")
        assert made.permissions == ("mail",)
        listed = await client.keys.list()
        assert [(k.name, k.key) for k in listed] == [("default", None), ("ci", None)]
        with pytest.raises(ForbiddenError):
            await client.keys.create("root", permissions=["providers"])
        revoked = await client.keys.revoke(made.id)
        assert revoked.revoked_at is not None

        endpoint = await client.webhooks.create("http://127.0.0.1:9/hook", event_types=["bounced"])
        assert endpoint.secret is not None
        assert endpoint.secret.startswith("whsec_")
        assert endpoint.event_types == ("bounced",)
        await client.webhooks.send_test(endpoint.id)
        [delivery] = await client.webhooks.deliveries(endpoint.id, limit=10)
        assert (delivery.event_type, delivery.state) == ("test", "pending")
        assert (await client.webhooks.enable(endpoint.id)).enabled is True
        assert [w.id for w in await client.webhooks.list()] == [endpoint.id]
        await client.webhooks.delete(endpoint.id)
        assert await client.webhooks.list() == []

    # Another account sees none of it.
    stranger = await make_account("stranger@example.com", permissions=["webhooks", "keys"])
    async with AsyncClient(stranger.key, base_url=live_server.base_url) as client:
        with pytest.raises(NotFoundError):
            await client.keys.revoke(made.id)
        with pytest.raises(ForbiddenError):
            await client.providers.list()


async def test_a_key_whose_answer_was_lost_is_not_made_again(live_server, make_account):
    account = await make_account(permissions=["keys"])
    proxy = DroppingProxy(int(live_server.base_url.rpartition(":")[2]), drop=1)
    url = await proxy.start()
    try:
        async with AsyncClient(account.key, base_url=url, retry_backoff=0.01) as client:
            # The server made the key; the answer, the only copy of it, never arrived. Making
            # it again would leave a key nobody holds: the caller hears of the loss instead.
            with pytest.raises(APIConnectionError):
                await client.keys.create("lost")
            assert proxy.connections == 1
            # A read is made again after a lost answer.
            proxy.drop = 1
            names = [key.name for key in await client.keys.list()]
            assert names == ["default", "lost"]
            assert proxy.connections == 3
    finally:
        await proxy.stop()
