"""Everything measured on one MailPass installation (SQLite or PostgreSQL), in this order:

1. ``/send`` at each client count, after a warm-up: one ``mailpass serve --no-worker``.
2. ``/send-batch``, with no worker, so only acceptance is measured; its messages stay queued.
3. The memory soak: a ``mailpass worker`` starts, batches keep coming until it has sent
   ``rss_messages`` (the ones from 2 included); both processes' RSS is sampled at every tenth.
4. The drain: exactly ``drain_messages`` queued with no worker running, then a fresh
   ``mailpass worker``; seconds from its start until the sink has them all.
5. ``GET /status`` for message ids from 4.
6. ``GET`` of the open pixel: open tracking turned on for the provider, ``pixel_messages`` html
   messages sent through ``/send``, and the pixel of each (``/t/o/TOKEN.gif``, the token signed
   with the instance's secret for the tracking id the database holds) fetched round robin.
7. The database's status counts: every message must be ``sent``.
"""

from __future__ import annotations

import base64
import http.client
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.instance import BatchPoster, MailPassInstance, send_messages
from bench.load import LoadResult, run_wrk
from bench.payloads import (
    BATCH_SIZE,
    HOOK_EVENTS_PER_POST,
    attachment_send_bodies,
    batch_bodies,
    send_bodies,
    sendgrid_hook_lines,
)
from bench.processes import BenchError, ManagedProcess, Memory
from bench.profile import Profiler
from bench.receiver import WebhookReceiver
from bench.sink import SmtpSink
from bench.tools import Tools
from mailpass.tracking.machines import DELIVERY_SCAN_WINDOW

__all__ = ["MailPassFigures", "MemorySample", "Progress", "Sizes", "measure_mailpass"]

Progress = Callable[[str], None]

STALL_TIMEOUT = 120.0  # seconds without a message reaching the sink before the run fails
POSTER_CONNECTIONS = 4  # the bench's own /send-batch client, for queueing (not measured)
SOAK_BACKLOG = 5_000  # messages queued ahead of the worker during the soak, at most
SOAK_SAMPLES = 10  # RSS samples over the soak, at each tenth of its messages
WARMUP_CLIENTS = 16
ATTACHMENT_CLIENTS = 16
FIRST_DRAIN_NUMBER = 10_000_000  # message numbers of the drain's batches, apart from the soak's
FIRST_PIXEL_NUMBER = 20_000_000  # and of the messages whose pixel is fetched
# The pixel's hits come from a person's webmail in a browser, not from a proxy or a robot (which
# MailPass would record all the same, marked as a machine's).
PIXEL_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0"
)
PIXEL_DELIVERY_MARGIN = 0.5  # seconds past MailPass's scanner window before the pixel is fetched
# wrk stops at its deadline with requests in flight, which the server still finishes; a count is
# final once it has not moved for this long (and for twice the slowest request wrk saw).
SETTLE_QUIET = 0.5  # seconds
METRICS_SCRAPES = 20  # GET /metrics, one after another, once the database holds the run's mail


@dataclass(frozen=True)
class Sizes:
    """How much of everything a run does; the defaults are the issue's."""

    ceiling_messages: int = 100_000
    postfix_messages: int = 20_000
    warmup_seconds: int = 2
    seconds: int = 10  # each wrk measurement
    send_clients: tuple[int, ...] = (1, 16, 64)
    batch_clients: int = 8
    status_clients: int = 16
    status_ids: int = 1_000
    pixel_clients: int = 16
    pixel_messages: int = 1_000  # tracked messages whose pixels are fetched round robin
    hook_clients: int = 8
    hook_posts: int = 3_000  # distinct signed POSTs of SendGrid events (100 events each)
    dispatch_posts: int = 200  # of those again, whose events the webhook dispatch delivers
    drain_messages: int = 20_000
    # Direct delivery (``bench.direct``): to 100 recipient domains' MX hosts, MailPass and Postfix.
    direct_messages: int = 20_000
    rss_messages: int = 100_000
    # The SMTP relay (``bench.relay``): submitted by smtp-source, then as many again while the
    # worker drains the first.
    relay_messages: int = 20_000
    # The fault figures (``bench.faults``): each drain's messages, those queued for the hung
    # provider ahead of them, and how long the database is cut off.
    fault_messages: int = 5_000
    hung_messages: int = 1_000
    outage_seconds: int = 5
    # `serve --processes`: one server process per core, as the machine would be run.
    api_processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    # `worker --processes` for the worker that the soak and the drain start; None: as the
    # README advises, one per core on PostgreSQL and one on SQLite (`workers_for`).
    worker_processes: int | None = None

    def workers_for(self, database: str) -> int:
        """On 2 cores a second process drained 20,000 messages from PostgreSQL in 6.6 s instead
        of 10.3 (start-up included), and from SQLite in 7.8 s instead of 7.0: SQLite has one
        writer, and the processes' claims and outcomes wait for each other."""
        if self.worker_processes is not None:
            return self.worker_processes
        return (os.cpu_count() or 1) if database == "postgresql" else 1


@dataclass(frozen=True)
class MemorySample:
    messages: int  # sent by the soak's worker when the sample was taken
    api: Memory
    worker: Memory


@dataclass
class MailPassFigures:
    database: str
    version: str = ""
    api_processes: int = 1
    worker_processes: int = 1
    send: dict[int, LoadResult] = field(default_factory=dict)
    # /send of a message with one 100 KiB attachment, at ATTACHMENT_CLIENTS
    send_attachment: LoadResult | None = None
    batch: LoadResult | None = None
    batch_queued: int = 0  # messages the /send-batch run left in the queue
    soak: list[MemorySample] = field(default_factory=list)
    soak_worker_peak: int = 0
    drained: int = 0  # messages in the drain
    drain_seconds: float = 0.0
    drain_startup_seconds: float = 0.0  # from starting the worker to the first message at the sink
    drain_worker_peak: int = 0
    status: LoadResult | None = None
    metrics_seconds: list[float] = field(default_factory=list)  # each scrape of /metrics
    metrics_messages: int = 0  # messages in the database when it was scraped
    metrics_counted: int = 0  # the sent messages the last scrape counted
    metrics_expected: int = 0  # the sent messages in the database then
    pixel: LoadResult | None = None
    pixel_opens: int = 0  # opens recorded during the pixel measurement, once the server was done
    hook: LoadResult | None = None  # SendGrid's signed event batches to a provider's hook
    hook_events: int = 0  # events the hook measurement recorded, once the server was done
    dispatch_events: int = 0  # webhooks the endpoint received in the dispatch measurement
    dispatch_expected: int = 0  # deliveries that were in the outbox when the worker started
    dispatch_seconds: float = 0.0  # from the first delivery received to the last
    api_memory: Memory | None = None
    status_counts: dict[str, int] = field(default_factory=dict)
    # Of each MailPass process, once stopped with SIGTERM: anything but 0 is worth a look.
    exit_codes: dict[str, int] = field(default_factory=dict)

    def stop(self, process: ManagedProcess) -> None:
        self.exit_codes[process.name] = process.stop()


def _settled(read: Callable[[], int], *, quiet: float) -> int:
    """``read()`` once its value has not changed for ``quiet`` seconds."""
    value, changed = read(), time.monotonic()
    deadline = changed + STALL_TIMEOUT
    while time.monotonic() - changed < quiet:
        time.sleep(0.05)
        latest = read()
        if latest != value:
            value, changed = latest, time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"the server was still busy {STALL_TIMEOUT:.0f} s after wrk stopped")
    return value


def _profiled(
    profiler: Profiler | None, name: str, process: ManagedProcess, *, settled: bool = True
) -> AbstractContextManager[None]:
    """``profiler`` recording ``process`` while the block runs; ``settled``: the block waits
    until py-spy samples (see ``Profiler.recording``)."""
    if profiler is None:
        return nullcontext()
    return profiler.recording(name, process.server_pids(), settled=settled)


def _clients(n: int) -> str:
    return f"{n} client" if n == 1 else f"{n} clients"


def _url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def _soak(
    instance: MailPassInstance,
    sink: SmtpSink,
    api: ManagedProcess,
    poster: BatchPoster,
    *,
    already_queued: int,
    total: int,
    figures: MailPassFigures,
) -> None:
    to_post = max(0, total - already_queued)
    to_post += -to_post % BATCH_SIZE
    expected = already_queued + to_post
    start = sink.received()
    worker = instance.worker("soak-worker", processes=figures.worker_processes)
    try:
        failure: list[BaseException] = []

        def sent() -> int:
            return sink.received() - start

        def room_in_backlog() -> bool:
            return already_queued + poster.posted - sent() < SOAK_BACKLOG

        def post() -> None:
            try:
                poster.post(to_post, first=0, may_post=room_in_backlog)
            except BaseException as exc:  # reported by the sampling loop below
                failure.append(exc)

        posting = threading.Thread(target=post, daemon=True)
        posting.start()
        checkpoints = [expected * (i + 1) // SOAK_SAMPLES for i in range(SOAK_SAMPLES)]
        last_count, last_progress = 0, time.monotonic()
        while checkpoints:
            if failure:
                raise BenchError(f"queueing during the soak failed: {failure[0]}")
            count = sent()
            if count >= checkpoints[0]:
                while checkpoints and count >= checkpoints[0]:
                    checkpoints.pop(0)
                figures.soak.append(
                    MemorySample(messages=count, api=api.memory(), worker=worker.memory())
                )
            if count != last_count:
                last_count, last_progress = count, time.monotonic()
            elif time.monotonic() - last_progress > STALL_TIMEOUT:
                raise BenchError(
                    f"the soak stalled at {count} of {expected} messages; "
                    f"database: {instance.status_counts()}"
                )
            api.check_alive()
            worker.check_alive()
            time.sleep(0.02)
        posting.join()
        figures.soak_worker_peak = worker.memory().peak
    finally:
        figures.stop(worker)


def _drain(
    instance: MailPassInstance,
    sink: SmtpSink,
    poster: BatchPoster,
    messages: int,
    figures: MailPassFigures,
    profiler: Profiler | None,
) -> list[str]:
    ids = poster.post(messages, first=FIRST_DRAIN_NUMBER)
    target = sink.received() + messages
    started = time.monotonic()
    worker = instance.worker("drain-worker", processes=figures.worker_processes)
    try:
        # The drain is timed from the worker's start: py-spy is not waited for.
        with _profiled(profiler, f"{instance.database}-drain-worker", worker, settled=False):
            first_seen = sink.wait_for(
                target - messages + 1, stall_timeout=STALL_TIMEOUT, watch=[worker]
            )
            finished = sink.wait_for(target, stall_timeout=STALL_TIMEOUT, watch=[worker])
        figures.drained = messages
        figures.drain_startup_seconds = first_seen - started
        figures.drain_seconds = finished - started
        figures.drain_worker_peak = worker.memory().peak
    finally:
        figures.stop(worker)
    return ids


def _metrics(instance: MailPassInstance, port: int, figures: MailPassFigures) -> None:
    """Scrape ``/metrics`` as Prometheus would, one scrape after another: each counts every
    message of the database by status and provider."""
    counts = instance.status_counts()
    figures.metrics_messages = sum(counts.values())
    figures.metrics_expected = counts.get("sent", 0)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(METRICS_SCRAPES):
            started = time.perf_counter()
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read().decode()
            figures.metrics_seconds.append(time.perf_counter() - started)
            if response.status != 200:
                raise BenchError(f"GET /metrics answered {response.status}: {body[:300]!r}")
    finally:
        connection.close()
    figures.metrics_counted = sum(
        int(sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "mailpass_messages" and sample.labels.get("status") == "sent"
    )


def _pixel(
    instance: MailPassInstance,
    tools: Tools,
    port: int,
    key: str,
    sizes: Sizes,
    workdir: Path,
    figures: MailPassFigures,
    api: ManagedProcess,
    profiler: Profiler | None,
) -> None:
    instance.turn_on_open_tracking()
    ids = send_messages(
        port, key, sizes.pixel_messages, first=FIRST_PIXEL_NUMBER, connections=POSTER_CONNECTIONS
    )
    # A hit this soon after delivery is taken for a security scanner's; people open later.
    people_from = time.monotonic() + DELIVERY_SCAN_WINDOW + PIXEL_DELIVERY_MARGIN
    paths = instance.open_pixel_paths(ids)
    time.sleep(max(0.0, people_from - time.monotonic()))
    # One by hand first: a token the server refuses would otherwise only show as wrk's errors.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", paths[0], headers={"User-Agent": PIXEL_USER_AGENT})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200 or response.getheader("Content-Type") != "image/gif":
        raise BenchError(
            f"GET {paths[0]} answered {response.status} "
            f"{response.getheader('Content-Type')}: {body[:300].decode(errors='replace')}"
        )
    paths_file = workdir / "pixel-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    # The open is written just after the image is answered.
    opens_before = _settled(instance.open_events, quiet=SETTLE_QUIET)
    if opens_before != 1:
        raise BenchError(f"one pixel was fetched, and {opens_before} opens are recorded")
    with _profiled(profiler, f"{instance.database}-pixel", api):
        figures.pixel = run_wrk(
            tools.wrk,
            _url(port, "/"),
            connections=sizes.pixel_clients,
            seconds=sizes.seconds,
            script_args=["get", str(paths_file), PIXEL_USER_AGENT],
        )
    opens = _settled(instance.open_events, quiet=max(SETTLE_QUIET, 2 * figures.pixel.max))
    figures.pixel_opens = opens - opens_before


def _hook(
    instance: MailPassInstance,
    tools: Tools,
    port: int,
    sink_port: int,
    message_ids: list[str],
    sizes: Sizes,
    workdir: Path,
    figures: MailPassFigures,
    api: ManagedProcess,
    profiler: Profiler | None,
) -> tuple[str, object]:
    """SendGrid's Event Webhook about the drained messages: signed batches, each checked,
    matched to its messages and recorded with what it leads to (bounces suppress)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_key = ec.generate_private_key(ec.SECP256R1())
    public_key = base64.b64encode(
        private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    path = instance.add_hook_provider(public_key, sink_port)
    lines_file = workdir / "sendgrid-events.tsv"
    lines_file.write_bytes(sendgrid_hook_lines(message_ids, private_key, sizes.hook_posts))
    before = instance.reported_events()
    with _profiled(profiler, f"{instance.database}-hook", api):
        figures.hook = run_wrk(
            tools.wrk,
            _url(port, "/"),
            connections=sizes.hook_clients,
            seconds=sizes.seconds,
            script_args=["sendgrid", path, str(lines_file)],
        )
    recorded = _settled(instance.reported_events, quiet=max(SETTLE_QUIET, 2 * figures.hook.max))
    figures.hook_events = recorded - before
    return path, private_key


def _dispatch(
    instance: MailPassInstance,
    port: int,
    hook: tuple[str, object],
    message_ids: list[str],
    sizes: Sizes,
    figures: MailPassFigures,
) -> None:
    """Webhooks to a local endpoint: an endpoint is added for the account, SendGrid's events
    of ``dispatch_posts`` more POSTs are recorded (each also put in the outbox), and then a
    worker (which runs the dispatcher) is started: every delivery must reach the endpoint;
    the rate is from the first to the last."""
    path, private_key = hook
    receiver = WebhookReceiver()
    try:
        instance.add_webhook_endpoint(port, receiver.url)
        lines = sendgrid_hook_lines(
            message_ids, private_key, sizes.dispatch_posts, first_post=sizes.hook_posts
        )
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for line in lines.decode().splitlines():
                signature, timestamp, body = line.split("\t", 2)
                connection.request(
                    "POST",
                    path,
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Twilio-Email-Event-Webhook-Signature": signature,
                        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
                    },
                )
                answer = connection.getresponse()
                answered = answer.read()
                if answer.status != 200:
                    raise BenchError(f"POST {path} answered {answer.status}: {answered[:300]!r}")
        finally:
            connection.close()
        figures.dispatch_expected = instance.pending_webhooks()
        worker = instance.worker("dispatch-worker", processes=sizes.workers_for(instance.database))
        try:
            receiver.wait_for(figures.dispatch_expected, stall_timeout=STALL_TIMEOUT)
        finally:
            figures.stop(worker)
        figures.dispatch_events = receiver.count
        if receiver.first_at is not None and receiver.last_at is not None:
            figures.dispatch_seconds = receiver.last_at - receiver.first_at
        if receiver.count < figures.dispatch_expected:
            raise BenchError(
                f"the endpoint received {receiver.count:,} of {figures.dispatch_expected:,} "
                "webhooks"
            )
    finally:
        receiver.close()


def measure_mailpass(
    database: str,
    tools: Tools,
    sink: SmtpSink,
    sizes: Sizes,
    workdir: Path,
    *,
    postgres_url: str,
    progress: Progress,
    profiler: Profiler | None = None,
) -> MailPassFigures:
    figures = MailPassFigures(
        database=database,
        api_processes=sizes.api_processes,
        worker_processes=sizes.workers_for(database),
    )
    instance = MailPassInstance(database, workdir, postgres_url=postgres_url)
    with ExitStack() as cleanup:
        instance.create_database()
        cleanup.callback(instance.drop_database)
        figures.version = instance.server_version()
        key = instance.set_up(sink.port)
        api, port = instance.serve("api", worker=False, processes=sizes.api_processes)
        cleanup.callback(figures.stop, api)

        send_file = workdir / "send.jsonl"
        send_file.write_bytes(send_bodies())
        batch_file = workdir / "send-batch.jsonl"
        batch_file.write_bytes(batch_bodies())
        send_args = ["post", "/api/v1/mail/send", str(send_file), key]
        batch_args = ["post", "/api/v1/mail/send-batch", str(batch_file), key]
        url = _url(port, "/")

        progress(f"{database}: /send warm-up")
        run_wrk(
            tools.wrk,
            url,
            connections=WARMUP_CLIENTS,
            seconds=sizes.warmup_seconds,
            script_args=send_args,
        )
        for clients in sizes.send_clients:
            progress(f"{database}: /send with {_clients(clients)}")
            with _profiled(profiler, f"{database}-send-c{clients}", api):
                load = run_wrk(
                    tools.wrk,
                    url,
                    connections=clients,
                    seconds=sizes.seconds,
                    script_args=send_args,
                )
            figures.send[clients] = load
            _settled(sink.received, quiet=max(SETTLE_QUIET, 2 * load.max))

        progress(f"{database}: /send with a 100 KiB attachment, {ATTACHMENT_CLIENTS} clients")
        attachment_file = workdir / "send-attachment.jsonl"
        attachment_file.write_bytes(attachment_send_bodies())
        with _profiled(profiler, f"{database}-send-attachment", api):
            figures.send_attachment = run_wrk(
                tools.wrk,
                url,
                connections=ATTACHMENT_CLIENTS,
                seconds=sizes.seconds,
                script_args=["post", "/api/v1/mail/send", str(attachment_file), key],
            )
        _settled(sink.received, quiet=max(SETTLE_QUIET, 2 * figures.send_attachment.max))

        progress(f"{database}: /send-batch with {sizes.batch_clients} clients")
        queued_before = instance.status_counts().get("queued", 0)
        with _profiled(profiler, f"{database}-send-batch", api):
            figures.batch = run_wrk(
                tools.wrk,
                url,
                connections=sizes.batch_clients,
                seconds=sizes.seconds,
                script_args=batch_args,
            )
        figures.batch_queued = (
            _settled(
                lambda: instance.status_counts().get("queued", 0),
                quiet=max(SETTLE_QUIET, 2 * figures.batch.max),
            )
            - queued_before
        )

        poster = BatchPoster(port, key, connections=POSTER_CONNECTIONS)
        progress(
            f"{database}: memory soak, {max(sizes.rss_messages, figures.batch_queued):,} messages"
        )
        _soak(
            instance,
            sink,
            api,
            poster,
            already_queued=figures.batch_queued,
            total=sizes.rss_messages,
            figures=figures,
        )

        left = instance.status_counts()
        if set(left) - {"sent"}:
            raise BenchError(f"after the soak, not every message was sent: {left}")
        progress(f"{database}: queue drain of {sizes.drain_messages:,} messages")
        drain_poster = BatchPoster(port, key, connections=POSTER_CONNECTIONS)
        ids = _drain(instance, sink, drain_poster, sizes.drain_messages, figures, profiler)

        progress(f"{database}: GET /status with {sizes.status_clients} clients")
        ids_file = workdir / "status-ids.txt"
        ids_file.write_text("\n".join(ids[: sizes.status_ids]) + "\n")
        with _profiled(profiler, f"{database}-status", api):
            figures.status = run_wrk(
                tools.wrk,
                url,
                connections=sizes.status_clients,
                seconds=sizes.seconds,
                script_args=["status", str(ids_file), key],
            )

        progress(f"{database}: GET /metrics, {METRICS_SCRAPES} scrapes")
        _metrics(instance, port, figures)

        # Last: open tracking stays off for everything above, as it is by default.
        progress(
            f"{database}: GET pixel with {sizes.pixel_clients} clients, "
            f"{sizes.pixel_messages:,} tracked messages"
        )
        _pixel(instance, tools, port, key, sizes, workdir, figures, api, profiler)
        progress(
            f"{database}: provider webhook (SendGrid, {HOOK_EVENTS_PER_POST} events a POST) "
            f"with {sizes.hook_clients} clients"
        )
        figures.status_counts = instance.status_counts()  # what it sent, before any bounce
        hook = _hook(instance, tools, port, sink.port, ids, sizes, workdir, figures, api, profiler)
        progress(
            f"{database}: webhook dispatch of {sizes.dispatch_posts * HOOK_EVENTS_PER_POST:,} "
            "events to a local endpoint"
        )
        _dispatch(instance, port, hook, ids, sizes, figures)
        figures.api_memory = api.memory()
    return figures
