"""``AsyncClient`` against a real running server and a real SMTP server, and what its retries
do when the network or the server gets in the way."""

from __future__ import annotations

import asyncio

import pytest

from mailpass import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    Client,
    IdempotencyInProgressError,
    SendFailedError,
    ValidationError,
)
from process_fixtures import free_port
from tcp_fixtures import DroppingProxy


@pytest.fixture
async def dropping_proxy(live_server):
    proxies: list[DroppingProxy] = []

    async def make(drop: int) -> tuple[DroppingProxy, str]:
        proxy = DroppingProxy(int(live_server.base_url.rpartition(":")[2]), drop=drop)
        proxies.append(proxy)
        return proxy, await proxy.start()

    yield make
    for proxy in proxies:
        await proxy.stop()


async def test_the_async_twin_sends_batches_and_reads_status(live_server, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    async with AsyncClient(account.key, base_url=live_server.base_url) as client:
        sent = await client.mail.send(to="user@example.com", subject="Hello", html="<p>Hi</p>")
        batch = await client.mail.send_batch(
            messages=[{"to": "a@example.com", "subject": "A", "text": "a"}],
            from_email="support@yourdomain.com",
        )
        await smtp_sink.wait_for(2)
        status = await client.mail.status(sent.message_id)
        with pytest.raises(ValidationError):
            await client.mail.send(to="user@example.com", subject="", text="x")

    assert status.message.status == "sent"
    assert batch.queued == 1
    assert {m.message["Subject"] for m in smtp_sink.messages} == {"Hello", "A"}


async def test_a_retry_after_a_dropped_connection_does_not_send_twice(
    live_server, make_account, smtp_sink, dropping_proxy
):
    account = await make_account(sink=smtp_sink)
    proxy, url = await dropping_proxy(drop=1)

    async with AsyncClient(account.key, base_url=url, retry_backoff=0.05) as client:
        sent = await client.mail.send(to="user@example.com", subject="Once", text="x")

    assert proxy.connections == 2  # the first answer was lost, the retry got through
    assert sent.replayed is True  # ...and was answered from the first request
    [received] = await smtp_sink.wait_for(1)
    assert received.message["Message-ID"] == sent.message_id
    await asyncio.sleep(0.2)
    assert len(smtp_sink.messages) == 1


async def test_the_blocking_client_retries_the_same_way(
    live_server, make_account, smtp_sink, dropping_proxy
):
    account = await make_account(sink=smtp_sink)
    proxy, url = await dropping_proxy(drop=1)

    def send_batch() -> object:
        with Client(account.key, base_url=url, retry_backoff=0.05) as client:
            return client.mail.send_batch(
                messages=[{"to": "user@example.com", "subject": "Batch once", "text": "x"}],
                from_email="support@yourdomain.com",
            )

    result = await asyncio.to_thread(send_batch)

    assert result.replayed is True
    assert proxy.connections == 2
    await smtp_sink.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(smtp_sink.messages) == 1


async def test_without_retries_the_caller_hears_of_the_drop(
    live_server, make_account, smtp_sink, dropping_proxy
):
    account = await make_account(sink=smtp_sink)
    _, url = await dropping_proxy(drop=1)

    async with AsyncClient(account.key, base_url=url, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.mail.send(to="user@example.com", subject="Lost answer", text="x")

    # The mail went out all the same: only the idempotency key makes a retry safe.
    await smtp_sink.wait_for(1)


async def test_requests_with_one_key_at_once_send_once(live_server, make_account, make_smtp_sink):
    sink = await make_smtp_sink(delay_data=0.5)
    account = await make_account(sink=sink)

    async def send(max_retries: int):
        async with AsyncClient(
            account.key, base_url=live_server.base_url, max_retries=max_retries
        ) as client:
            return await client.mail.send(
                to="user@example.com", subject="Hi", text="x", idempotency_key="checkout-7"
            )

    first = asyncio.create_task(send(0))
    await sink.wait_for(1)  # the first request is waiting for the provider
    # Without retries the second hears that the first is still running...
    with pytest.raises(IdempotencyInProgressError) as in_progress:
        await send(0)
    assert in_progress.value.status_code == 409
    # ...with them it waits (Retry-After: 1) and gets the first request's answer.
    second = await send(3)
    first_result = await first

    assert second.message_id == first_result.message_id
    assert (first_result.replayed, second.replayed) == (False, True)
    assert len(sink.messages) == 1


async def test_send_failed_is_not_retried(live_server, make_account, make_smtp_sink):
    sink = await make_smtp_sink(data_replies=["554 5.7.1 rejected"])
    account = await make_account(sink=sink)
    async with AsyncClient(account.key, base_url=live_server.base_url, max_retries=3) as client:
        with pytest.raises(SendFailedError) as failed:
            await client.mail.send(to="user@example.com", subject="Hi", text="x")
    assert failed.value.smtp_code == 554
    assert sink.connections_opened == 1


async def test_no_server_is_a_connection_error():
    url = f"http://127.0.0.1:{free_port()}"
    async with AsyncClient("mp_live_" + "x" * 32, base_url=url, retry_backoff=0.01) as client:
        with pytest.raises(APIConnectionError) as error:
            await client.mail.status("<x@example.com>")
    assert isinstance(error.value, ConnectionError)


async def test_a_slow_answer_is_a_timeout(live_server, make_account, make_smtp_sink):
    sink = await make_smtp_sink(delay_data=2.0)
    account = await make_account(sink=sink)
    async with AsyncClient(
        account.key, base_url=live_server.base_url, timeout=0.3, max_retries=0
    ) as client:
        with pytest.raises(APITimeoutError) as error:
            await client.mail.send(to="user@example.com", subject="Hi", text="x")
    assert isinstance(error.value, TimeoutError)
