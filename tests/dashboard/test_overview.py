"""Dashboard > Overview: the last 24 hours per hour as a server-drawn SVG chart, the queue."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.dashboard.charts import Series, hourly_chart, nice_ceiling
from mailpass.storage.tables import events, messages


def stat(html: str, name: str) -> int:
    found = re.search(rf'class="stat series-{name}"><span class="number">(\d+)</span>', html)
    assert found, name
    return int(found.group(1))


async def test_overview_counts_the_last_24_hours_and_the_queue(
    signed_in, make_smtp_sink, app_client, database
):
    sink = await make_smtp_sink(data_replies=["250 ok", "250 ok", "550 5.7.1 refused", "250 ok"])
    browser, account = await signed_in(sink=sink)
    _, other = await signed_in("other@example.com", sink=sink)  # its mail must not count
    for n in range(4):
        await app_client.post(
            "/api/v1/mail/send",
            json={"to": "a@example.com", "subject": f"s{n}", "text": "x"},
            headers=account.headers,
        )
    await app_client.post(
        "/api/v1/mail/send",
        json={"to": "a@example.com", "subject": "theirs", "text": "x"},
        headers=other.headers,
    )
    await app_client.post(
        "/api/v1/mail/send-batch",
        json={"messages": [{"to": "q@example.com", "subject": "q", "text": "x"}] * 2},
        headers=account.headers,
    )
    async with database.transaction() as connection:
        sent_pks = (
            (
                await connection.execute(
                    sa.select(messages.c.id).where(
                        messages.c.user_id == account.user.id, messages.c.status == "sent"
                    )
                )
            )
            .scalars()
            .all()
        )
        now = utcnow()

        def event(pk, kind, *, machine=False, at=now):
            return {"message_pk": pk, "event_type": kind, "is_machine": machine, "created_at": at}

        rows = [
            # two opens of one message count once; a machine's open not at all
            event(sent_pks[0], "open"),
            event(sent_pks[0], "open"),
            event(sent_pks[1], "open", machine=True),
            event(sent_pks[1], "click"),
            # older than 24 hours: outside the chart
            event(sent_pks[2], "open", at=now - timedelta(hours=30)),
        ]
        await connection.execute(events.insert(), rows)

    page = await browser.get("/dashboard/")
    assert page.status_code == 200
    html = page.text
    assert (stat(html, "sent"), stat(html, "failed")) == (3, 1)
    assert (stat(html, "opened"), stat(html, "clicked")) == (1, 1)
    assert re.search(r'id="queue-depth">2</span> queued<small>2 due now · 0 sending', html)
    assert html.count('<polyline class="line series-') == 4
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    assert f"{this_hour:%Y-%m-%d %H}:00 UTC: sent 3, failed 1, opened 1, clicked 1" in html


def test_the_chart_scales_to_the_data_and_labels_every_third_hour():
    start = datetime(2026, 1, 30, 0)
    hours = [start + timedelta(hours=n) for n in range(24)]
    values = [0] * 23 + [37]
    svg = str(hourly_chart(hours, [Series("sent", "sent", values)]))
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert ">40</text>" in svg  # 37 rounds up to a grid of 4 steps of 10
    assert ">03:00</text>" in svg
    assert ">04:00</text>" not in svg
    assert ">23:00</text>" in svg  # the current hour is always labelled
    assert svg.count('<circle class="dot') == 1  # zeros get no marker
    assert "2026-01-30 23:00 UTC: sent 37" in svg


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 3, 4, 5, 9, 37, 101, 999)] == [
        4,
        4,
        4,
        8,
        20,
        40,
        200,
        2000,
    ]
