"""The benchmark (`bench/run`) end to end with tiny numbers: smtp-sink, the smtp-source ceiling,
a throwaway Postfix, and MailPass on each test database under wrk. Its figures mean nothing
here and are never compared with anything; what is checked is that the run completes and
prints a complete table, that MailPass sent every message it was given along the way, and that it
took every pixel hit's token and recorded the open."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 1200  # seconds; on a fresh machine the run first installs postfix and wrk
DATABASES = os.environ.get("MAILPASS_TEST_DATABASES", "sqlite,postgresql").split(",")

SHARED_ROWS = {
    "ceiling.rate",
    "postfix.accept.rate",
    "postfix.relay.rate",
    "postfix.direct.rate",
    "postfix.accept16.rate",
}
ROWS_PER_DATABASE = {
    *(f"send.c{clients}.{figure}" for clients in (1, 16, 64) for figure in ("rate", "p50", "p99")),
    "send_attachment.c16.rate",
    "batch.rate",
    "direct.rate",
    "relay.accept.rate",
    "relay.drain.rate",
    "drain.seconds",
    "drain.rate",
    "status.rate",
    "metrics.p50",
    "pixel.rate",
    "hook.sendgrid.rate",
    "dispatch.rate",
    "rss.api.peak",
    "rss.soak_worker.peak",
    "rss.drain_worker.peak",
    "rss.api.after_soak",
    "rss.soak_worker.after_soak",
}
# The fault figures (bench/faults.py), each with a target; the database's outage is PostgreSQL's.
FAULT_ROWS = {"fault.kill9.seconds", "fault.beside_hung.rate", "fault.flood.p99"}
POSTGRES_FAULT_ROWS = {"fault.database_back.seconds"}


def fault_rows(db: str) -> set[str]:
    return FAULT_ROWS | (POSTGRES_FAULT_ROWS if db == "postgresql" else set())


# Rows that carry one of the targets, so the table says whether it holds.
TARGET_ROWS = {
    "direct.rate",
    "relay.accept.rate",
    "relay.drain.rate",
    "send.c16.rate",
    "send_attachment.c16.rate",
    "send.c16.p99",
    "batch.rate",
    "drain.rate",
    "status.rate",
    "metrics.p50",
    "pixel.rate",
    "hook.sendgrid.rate",
    "dispatch.rate",
    "rss.api.peak",
    "rss.soak_worker.peak",
    "rss.drain_worker.peak",
    "rss.api.after_soak",
    "rss.soak_worker.after_soak",
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("bench") / "results.json"
    profiles = results.parent / "profiles"
    env = {
        **os.environ,
        "MAILPASS_VENV": sys.prefix,  # the suite's own virtualenv, installed and current
        "MAILPASS_BENCH_SKIP_INSTALL": "1",
    }
    done = subprocess.run(
        [
            str(REPO / "bench" / "run"),
            "--smoke",
            "--databases",
            ",".join(DATABASES),
            "--json",
            str(results),
            "--profile",
            str(profiles),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"bench/run failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout, json.loads(results.read_text()), results.with_suffix(".md").read_text()


@pytest.fixture(scope="module")
def profiles(smoke_run, tmp_path_factory) -> Path:
    return next(tmp_path_factory.getbasetemp().glob("bench*/profiles"))


def test_the_table_has_every_figure_for_every_database(smoke_run):
    _, result, _ = smoke_run
    expected = SHARED_ROWS | {f"{db}.{row}" for db in DATABASES for row in ROWS_PER_DATABASE}
    expected |= {f"{db}.{row}" for db in DATABASES for row in fault_rows(db)}
    keys = [row["key"] for row in result["rows"]]
    assert sorted(keys) == sorted(expected)


def test_every_figure_and_ratio_is_a_positive_number(smoke_run):
    _, result, _ = smoke_run
    for row in result["rows"]:
        assert math.isfinite(row["value"]), row
        if ".fault." in row["key"] and row["unit"] == "s":
            # A recovery can take no time at all: a tiny drain may be over before the kill.
            assert row["value"] >= 0, row
            continue
        assert row["value"] > 0, row
        # Every message rate is compared with Postfix and with the ceiling of the same run.
        ratios = (row["vs_postfix"], row["vs_ceiling"])
        if row["unit"] == "msg/s" and ".fault." not in row["key"]:
            assert all(ratio is not None for ratio in ratios), row
        for ratio in ratios:
            assert ratio is None or (math.isfinite(ratio) and ratio > 0), row


def test_each_target_says_whether_it_holds(smoke_run):
    _, result, _ = smoke_run
    with_target = {row["key"] for row in result["rows"] if row["target"]}
    assert with_target == {
        f"{db}.{row}" for db in DATABASES for row in TARGET_ROWS | fault_rows(db)
    }
    assert all(isinstance(row["holds"], bool) for row in result["rows"] if row["target"])
    assert result["targets"] == len(with_target)


def test_the_printed_and_markdown_tables_show_every_row(smoke_run):
    stdout, result, markdown = smoke_run
    assert "SMOKE RUN" in stdout
    for row in result["rows"]:
        assert row["figure"] in stdout
        assert f"| {row['figure']} |" in markdown
    assert f"targets held: {result['targets_held']} of {result['targets']}" in stdout


def test_mailpass_sent_every_message_it_was_given_and_stopped_cleanly(smoke_run):
    stdout, result, _ = smoke_run
    assert [figures["database"] for figures in result["mailpass"]] == DATABASES
    for figures in result["mailpass"]:
        assert set(figures["status_counts"]) == {"sent"}, figures["status_counts"]
        assert figures["drained"] == result["sizes"]["drain_messages"]
        # Each stopped with SIGTERM: the workers exit 0; `serve` exits 0 or, as uvicorn does
        # after its graceful shutdown, by re-raising the signal.
        codes = figures["exit_codes"]
        assert codes.keys() == {"api", "soak-worker", "drain-worker", "dispatch-worker"}
        assert codes["soak-worker"] == codes["drain-worker"] == codes["dispatch-worker"] == 0
        assert codes["api"] in (0, -signal.SIGTERM)
    assert "WARNING" not in stdout


def test_the_fault_measurements_lost_nothing_and_stopped_cleanly(smoke_run):
    _, result, _ = smoke_run
    assert [figures["database"] for figures in result["faults"]] == DATABASES
    for figures in result["faults"]:
        codes = figures["exit_codes"]
        workers = {"restarted-worker", "alone-worker", "beside-hung-worker"}
        if figures["database"] == "postgresql":
            workers.add("outage-worker")
            assert figures["back_drained"] is not None
        assert codes.keys() == {"fault-api", *workers}
        assert all(codes[name] == 0 for name in workers), codes
        assert codes["fault-api"] in (0, -signal.SIGTERM)
        # The flood came from another address than the valid key: none of its requests got
        # in, and none of the valid key's was refused.
        assert figures["flood"]["failed"] == figures["flood"]["requests"] > 0
        assert figures["status_flooded"]["failed"] == 0
        assert figures["kill_duplicates"] <= figures["kill_held"]


def test_every_pixel_hit_was_a_valid_token_recorded_as_an_open(smoke_run):
    _, result, _ = smoke_run
    for figures in result["mailpass"]:
        pixel = figures["pixel"]
        # A token MailPass refused would answer 404; an open it failed to record still gets its
        # image, so only the database shows it.
        assert pixel["failed"] == 0, pixel
        assert figures["pixel_opens"] >= pixel["requests"] > 0, figures["database"]


def test_every_webhook_in_the_outbox_reached_the_endpoint(smoke_run):
    _, result, _ = smoke_run
    for figures in result["mailpass"]:
        assert figures["dispatch_expected"] > 0
        assert figures["dispatch_events"] == figures["dispatch_expected"]


def test_every_signed_event_batch_was_taken_and_recorded(smoke_run):
    _, result, _ = smoke_run
    for figures in result["mailpass"]:
        hook = figures["hook"]
        assert hook["failed"] == hook["broken"] == 0, hook
        # Each POST holds 100 events; round robin posts some again, which record nothing.
        assert 0 < figures["hook_events"] <= 100 * result["sizes"]["hook_posts"]


def test_profile_summarises_where_each_measurement_spent_its_time(profiles):
    expected = {
        f"{db}-{name}.summary.txt"
        for db in DATABASES
        for name in (
            "send-c1",
            "send-c16",
            "send-c64",
            "send-attachment",
            "send-batch",
            "status",
            "pixel",
            "hook",
            "drain-worker",
        )
    }
    assert {path.name for path in profiles.glob("*.summary.txt")} == expected
    for db in DATABASES:
        batch = (profiles / f"{db}-send-batch.summary.txt").read_text()
        assert "samples with the GIL held" in batch
        # The endpoint's own code shows in its profile: the stacks are MailPass's.
        assert "queue_batch (service.py)" in batch
        drain = (profiles / f"{db}-drain-worker.summary.txt").read_text()
        # The worker's own loop (in its spawned processes, where there are several).
        assert "_run_worker (servers.py)" in drain


def test_direct_delivery_sent_every_message_and_stopped_cleanly(smoke_run):
    _, result, _ = smoke_run
    direct = result["direct"]
    assert direct["messages"] == result["sizes"]["direct_messages"]
    assert set(direct["mailpass_seconds"]) == set(DATABASES)
    for database in DATABASES:
        assert direct["status_counts"][database] == {"sent": direct["messages"]}
        assert direct["exit_codes"][f"{database} direct-worker"] == 0
        assert direct["exit_codes"][f"{database} direct-api"] in (0, -signal.SIGTERM)


def test_the_relay_took_and_sent_every_message_and_stopped_cleanly(smoke_run):
    _, result, _ = smoke_run
    relay = result["relay"]
    assert relay["messages"] == result["sizes"]["relay_messages"]
    assert set(relay["accept_seconds"]) == set(relay["drain_seconds"]) == set(DATABASES)
    warmup = max(50, int(relay["messages"] * 0.02))
    for database in DATABASES:
        assert relay["status_counts"][database] == {"sent": 2 * relay["messages"] + warmup}
        assert relay["exit_codes"][f"{database} relay-worker"] == 0
        assert relay["exit_codes"][f"{database} relay-api"] in (0, -signal.SIGTERM)
