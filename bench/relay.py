"""The SMTP relay (issue 34): ``smtp-source`` with 16 sessions, each reusing its connection,
submitting 20,000 messages through a trusted network (no AUTH, no TLS: the load generator
speaks neither) into ``mailpass serve --no-worker --processes <cores> --smtp-port``, against
Postfix's own smtpd accepting the same in the same run.

Then the relay's intake beside the queue's drain: a ``mailpass worker`` starts on the 20,000
relayed messages while ``smtp-source`` submits as many again; the drain is timed from the
worker's start until the sink has the first 20,000, and every message of the run must end
``sent``. The relay's flow control (``relay.flow``) slows that second intake while the queue
is behind; how long it took is kept too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.instance import ACCOUNT, MailPassInstance, summarize
from bench.processes import BenchError, ManagedProcess, free_port, run_checked
from bench.sink import SmtpSink
from bench.smtp import PAYLOAD_BYTES, SOURCE_FROM, SOURCE_TO, PostfixInstance
from bench.tools import Tools

__all__ = ["RELAY_SESSIONS", "SubmissionFigures", "measure_relay"]

RELAY_SESSIONS = 16  # smtp-source's sessions, as the issue says
WARMUP_FRACTION = 0.02  # of the messages, first, so that start-up is not measured
MIN_WARMUP = 50
STALL_TIMEOUT = 120.0  # seconds without progress before the run fails


@dataclass
class SubmissionFigures:
    messages: int
    postfix_accept_seconds: float = 0.0
    accept_seconds: dict[str, float] = field(default_factory=dict)  # by database
    drain_seconds: dict[str, float] = field(default_factory=dict)  # beside as many submitted
    # How long the intake beside the drain took: slowed by the relay's flow control while the
    # queue was behind.
    beside_seconds: dict[str, float] = field(default_factory=dict)
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)


def _submit(tools: Tools, port: int, messages: int) -> float:
    """``messages`` submitted with ``smtp-source``; the seconds until it finished (every one
    answered 250)."""
    started = time.monotonic()
    run_checked(
        [
            tools.smtp_source,
            "-4",
            "-d",
            "-s",
            str(RELAY_SESSIONS),
            "-m",
            str(messages),
            "-l",
            str(PAYLOAD_BYTES),
            "-f",
            SOURCE_FROM,
            "-t",
            SOURCE_TO,
            f"127.0.0.1:{port}",
        ],
        timeout=STALL_TIMEOUT + messages / 50,
    )
    return time.monotonic() - started


def _warmup(messages: int) -> int:
    return max(MIN_WARMUP, int(messages * WARMUP_FRACTION))


def _postfix_accept_seconds(tools: Tools, sink: SmtpSink, root: Path, messages: int) -> float:
    instance = PostfixInstance(tools, root, sink.port, free_port())
    try:
        instance.start()
        base = sink.received()
        _submit(tools, instance.port, _warmup(messages))
        seconds = _submit(tools, instance.port, messages)
        # Every message relayed on before Postfix stops, so the sink's count stays the run's.
        sink.wait_for(base + _warmup(messages) + messages, stall_timeout=STALL_TIMEOUT)
        return seconds
    finally:
        instance.stop()


def _key_id(instance: MailPassInstance) -> str:
    listed = instance.cli("keys", "list", "--user", ACCOUNT)
    return listed.splitlines()[0].split("\t")[0]


def _mailpass(
    database: str,
    tools: Tools,
    sink: SmtpSink,
    workdir: Path,
    messages: int,
    *,
    postgres_url: str,
    api_processes: int,
    worker_processes: int,
    figures: SubmissionFigures,
) -> None:
    instance = MailPassInstance(database, workdir, postgres_url=postgres_url)
    processes: list[tuple[str, ManagedProcess]] = []
    try:
        instance.create_database()
        instance.set_up(sink.port)
        instance.env["MAILPASS_SMTP_TRUSTED_NETWORKS"] = f"127.0.0.0/8={_key_id(instance)}"
        smtp_port = free_port()
        api, _port = instance.serve(
            "relay-api",
            worker=False,
            processes=api_processes,
            extra=("--smtp-port", str(smtp_port)),
        )
        processes.append(("relay-api", api))
        warmup = _warmup(messages)
        _submit(tools, smtp_port, warmup)
        figures.accept_seconds[database] = _submit(tools, smtp_port, messages)
        api.check_alive()

        base = sink.received()
        started = time.monotonic()
        worker = instance.worker("relay-worker", processes=worker_processes)
        processes.append(("relay-worker", worker))
        more: list[float] = []
        failure: list[BaseException] = []

        def submit_more() -> None:
            try:
                more.append(_submit(tools, smtp_port, messages))
            except BaseException as exc:  # re-raised below, in the run's thread
                failure.append(exc)

        beside = threading.Thread(target=submit_more, name="relay-intake")
        beside.start()
        drained = sink.wait_for(
            base + warmup + messages, stall_timeout=STALL_TIMEOUT, watch=[api, worker]
        )
        figures.drain_seconds[database] = drained - started
        beside.join()
        if failure:
            raise BenchError(f"the relay's second intake failed: {failure[0]}")
        figures.beside_seconds[database] = more[0]
        sink.wait_for(
            base + warmup + 2 * messages, stall_timeout=STALL_TIMEOUT, watch=[api, worker]
        )
        processes.pop()
        figures.exit_codes[f"{database} relay-worker"] = worker.stop()
        counts = instance.status_counts()
        figures.status_counts[database] = counts
        if set(counts) - {"sent"}:
            raise BenchError(f"the relay's messages on {database}: {summarize(counts)}")
    finally:
        for name, process in reversed(processes):
            figures.exit_codes[f"{database} {name}"] = process.stop()
        instance.drop_database()


def measure_relay(
    tools: Tools,
    sink: SmtpSink,
    databases: list[str],
    workdir: Path,
    messages: int,
    *,
    postgres_url: str,
    api_processes: int,
    worker_processes: dict[str, int],
) -> SubmissionFigures:
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    figures = SubmissionFigures(messages)
    figures.postfix_accept_seconds = _postfix_accept_seconds(
        tools, sink, workdir / "postfix", messages
    )
    for database in databases:
        _mailpass(
            database,
            tools,
            sink,
            workdir / database,
            messages,
            postgres_url=postgres_url,
            api_processes=api_processes,
            worker_processes=worker_processes[database],
            figures=figures,
        )
    return figures
