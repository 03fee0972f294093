"""``/metrics`` (``mailpass.monitoring``) on both databases against real SMTP servers, read
with prometheus-client's own parser: off by default; what the database says (messages by
status and provider, the queue, the webhook backlog, providers); what the process measured
(send latency, provider errors by code, memory); and, under ``serve --processes 2``, the two
processes' measures summed on the metrics port and on the API's."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailpass.api.app import create_app
from mailpass.config import Settings
from process_fixtures import free_port, running, wait_healthy

ITEM = {"subject": "Hi", "text": "Hi"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels (sorted)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, metric: str, **labels: str) -> float:  # type: ignore[type-arg]
    return float(found.get((metric, tuple(sorted(labels.items()))), 0.0))


async def scrape(client: httpx.AsyncClient, path: str = "/metrics") -> dict:  # type: ignore[type-arg]
    answer = await client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(answer.text)


async def test_metrics_are_off_unless_asked_for(settings, database):
    app = create_app(settings.model_copy(update={"metrics": False}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mailpass.test"
        ) as client:
            answer = await client.get("/metrics")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics": True, "webhooks_allow_private": True})


async def test_metrics_tell_the_database_and_the_process(
    app_client, make_account, smtp_sink, make_smtp_sink
):
    account = await make_account(sink=smtp_sink)
    refusing = await make_smtp_sink(data_replies=["550 5.7.1 Refused by policy"])
    refused = await make_account("refused@example.com", sink=refusing)
    provider, other = str(account.provider.id), str(refused.provider.id)
    before = await scrape(app_client)

    for n in range(2):
        sent = await app_client.post(
            "/api/v1/mail/send", json={**ITEM, "to": f"u{n}@example.com"}, headers=account.headers
        )
        assert sent.status_code == 200, sent.text
    failed = await app_client.post(
        "/api/v1/mail/send", json={**ITEM, "to": "x@example.com"}, headers=refused.headers
    )
    assert failed.json()["error"]["code"] == "SEND_FAILED"
    queued = await app_client.post(
        "/api/v1/mail/send-batch",
        json={"messages": [{**ITEM, "to": "later@example.com"}]},
        headers=account.headers,
    )
    assert queued.json()["data"]["queued"] == 1
    endpoint = await app_client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=account.headers
    )
    await app_client.post(
        f"/api/v1/webhooks/{endpoint.json()['data']['id']}/test", headers=account.headers
    )
    await asyncio.sleep(0.01)  # the queued message has been due for a moment

    after = await scrape(app_client)

    assert value(after, "mailpass_messages", status="sent", provider=provider) == 2
    assert value(after, "mailpass_messages", status="failed", provider=other) == 1
    assert value(after, "mailpass_messages", status="queued", provider=provider) == 1
    assert value(after, "mailpass_queue_due") == 1
    assert value(after, "mailpass_queue_oldest_due_seconds") > 0
    assert value(after, "mailpass_webhook_deliveries_pending") == 1
    assert value(after, "mailpass_webhook_deliveries_due") == 1
    assert (
        value(after, "mailpass_provider_info", provider=provider, name="primary", kind="smtp") == 1
    )
    assert value(after, "mailpass_provider_down", provider=provider) == 0
    # This process's own measures: counted since it started, so compared with the first scrape.
    sent_count = "mailpass_send_seconds_count"
    assert (
        value(after, sent_count, provider=provider, outcome="sent")
        - value(before, sent_count, provider=provider, outcome="sent")
        == 2
    )
    assert (
        value(after, sent_count, provider=other, outcome="failed")
        - value(before, sent_count, provider=other, outcome="failed")
        == 1
    )
    errors = "mailpass_provider_errors_total"
    assert (
        value(after, errors, provider=other, code="550")
        - value(before, errors, provider=other, code="550")
        == 1
    )
    rss = value(after, "mailpass_process_resident_memory_bytes", pid=str(os.getpid()))
    assert rss > 20 * 1024 * 1024


async def test_processes_of_one_server_are_summed(cli_env, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    port, metrics_port = free_port(), free_port()
    env = {**cli_env, "MAILPASS_METRICS": "1"}
    command = ("serve", "--port", str(port), "--processes", "2", "--no-worker")
    async with running(*command, "--metrics-port", str(metrics_port), env=env) as server:
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, server)
        await asyncio.sleep(1.5)  # the second process starts after the first
        # One connection a request: the kernel spreads them over both processes.
        for n in range(12):
            async with httpx.AsyncClient(base_url=base_url, headers=account.headers) as client:
                answer = await client.post(
                    "/api/v1/mail/send", json={**ITEM, "to": f"p{n}@example.com"}
                )
                assert answer.status_code == 200, answer.text
        provider = str(account.provider.id)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as client:
            on_metrics_port = await scrape(client)
        async with httpx.AsyncClient(base_url=base_url) as client:
            on_api_port = await scrape(client)

    for found in (on_metrics_port, on_api_port):
        assert value(found, "mailpass_send_seconds_count", provider=provider, outcome="sent") == 12
        assert value(found, "mailpass_messages", status="sent", provider=provider) == 12
        memory = [
            labels
            for (name, labels), _ in found.items()
            if name == "mailpass_process_resident_memory_bytes"
        ]
        assert len(memory) >= 2, memory  # each server process (and the supervisor)


async def test_a_worker_serves_its_metrics_port(app_client, cli_env, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    queued = await app_client.post(
        "/api/v1/mail/send-batch",
        json={"messages": [{**ITEM, "to": f"w{n}@example.com"} for n in range(5)]},
        headers=account.headers,
    )
    assert queued.json()["data"]["queued"] == 5
    metrics_port = free_port()
    async with running("worker", "--metrics-port", str(metrics_port), env=cli_env):
        await smtp_sink.wait_for(5)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as client:
            for _ in range(100):  # the outcomes are written just after the sends
                found = await scrape(client)
                if (
                    value(
                        found, "mailpass_messages", status="sent", provider=str(account.provider.id)
                    )
                    == 5
                ):
                    break
                await asyncio.sleep(0.1)
    assert value(found, "mailpass_queue_outcomes_total", outcome="sent") == 5
    assert value(found, "mailpass_workers_live") == 1
    assert value(found, "mailpass_queue_due") == 0
