"""The run's one table: every figure, its ratio to Postfix and to the ceiling measured in the
same run, the issue's target and whether it holds; as text, Markdown and JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.direct import DOMAINS, DirectFigures
from bench.faults import FaultFigures
from bench.load import LoadResult
from bench.measure import ATTACHMENT_CLIENTS, MailPassFigures
from bench.payloads import BATCH_SIZE, HOOK_EVENTS_PER_POST
from bench.relay import RELAY_SESSIONS, SubmissionFigures
from bench.smtp import RelayFigures

__all__ = ["Row", "build_rows", "markdown_table", "text_table"]

MIB = 1024 * 1024  # bytes
TIMES = "\N{MULTIPLICATION SIGN}"
MILLISECONDS = 1000  # per second

# The targets. Ratios are to figures measured in the same run.
DRAIN_VS_POSTFIX_RELAY = 2.0
# Direct delivery to 100 domains' MX hosts, of Postfix doing the same through the same DNS.
DIRECT_VS_POSTFIX = 2.0
SEND_VS_POSTFIX_ACCEPT = 1.0
# The SMTP relay's accept rate, of Postfix's smtpd accepting the same in the same run (issue 34).
RELAY_VS_POSTFIX_ACCEPT = 1.5
SEND_TARGET_CLIENTS = 16
SEND_P99_LIMIT = 50.0  # milliseconds, at SEND_TARGET_CLIENTS
# /send with one 100 KiB attachment, of the plain /send rate at as many clients (issue 27).
ATTACHMENT_VS_SEND = 0.5
BATCH_VS_POSTFIX_ACCEPT = 20.0
STATUS_RATE = 3_000.0  # requests per second
PIXEL_RATE = 3_000.0  # requests per second (issue 5)
HOOK_RATE = 3_000.0  # provider events recorded per second (issue 28)
DISPATCH_RATE = 2_000.0  # webhooks delivered per second to a local endpoint (issue 28)
# A scrape of /metrics with the run's messages in the database, at the median (issue 30): far
# inside Prometheus's default 10 s scrape timeout.
METRICS_SCRAPE_LIMIT = 500.0  # milliseconds
RSS_LIMIT = 200.0  # MiB per process, at its peak
# "Flat over 100,000 messages": RSS after the last message may exceed RSS after the first tenth
# by this much. Allocator arenas settle after a warm-up; a leak keeps growing past it.
RSS_GROWTH_LIMIT = 10.0  # MiB
# The fault figures (issue 32).
KILL_RECOVERY_LIMIT = 15.0  # seconds from restart until a killed worker's messages are sent
DATABASE_BACK_LIMIT = 10.0  # seconds from the database's return until mail moves again
BESIDE_HUNG_SHARE = 0.8  # a healthy provider's drain beside a hung one, of its rate alone
FLOOD_P99_FACTOR = 3.0  # a valid key's /status p99 during a bad-key flood, of its p99 alone


@dataclass(frozen=True)
class Row:
    key: str  # stable identifier, e.g. "sqlite.send.c16.rate"
    figure: str
    value: float
    unit: str
    vs_postfix: float | None = None
    vs_ceiling: float | None = None
    target: str = ""
    holds: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clients(n: int) -> str:
    return f"{n} client" if n == 1 else f"{n} clients"


def _errors(load: LoadResult) -> str:
    parts = []
    if load.failed:
        parts.append(f"{load.failed:,} answered ≥ 400")
    if load.broken:
        parts.append(f"{load.broken:,} unanswered")
    return ", ".join(parts)


def _clean(load: LoadResult) -> bool:
    return load.failed == 0 and load.broken == 0


def _mailpass_rows(figures: MailPassFigures, postfix: RelayFigures, ceiling: float) -> list[Row]:
    db = figures.database
    rows: list[Row] = []
    for clients, load in figures.send.items():
        is_target = clients == SEND_TARGET_CLIENTS
        ratio = load.rate / postfix.accept_rate
        errors = _errors(load)
        rows.append(
            Row(
                key=f"{db}.send.c{clients}.rate",
                figure=f"{db}: /send, {_clients(clients)}",
                value=load.rate,
                unit="msg/s",
                vs_postfix=ratio,
                vs_ceiling=load.rate / ceiling,
                target=f"≥ {SEND_VS_POSTFIX_ACCEPT:g}{TIMES} Postfix accept" if is_target else "",
                holds=(ratio >= SEND_VS_POSTFIX_ACCEPT and _clean(load)) if is_target else None,
                note=errors or f"{load.succeeded:,} in {load.seconds:.1f} s",
            )
        )
        rows.append(
            Row(
                key=f"{db}.send.c{clients}.p50",
                figure=f"{db}: /send, {_clients(clients)}, p50",
                value=load.p50 * MILLISECONDS,
                unit="ms",
            )
        )
        p99 = load.p99 * MILLISECONDS
        rows.append(
            Row(
                key=f"{db}.send.c{clients}.p99",
                figure=f"{db}: /send, {_clients(clients)}, p99",
                value=p99,
                unit="ms",
                target=f"≤ {SEND_P99_LIMIT:g} ms" if is_target else "",
                holds=(p99 <= SEND_P99_LIMIT) if is_target else None,
                note=f"max {load.max * MILLISECONDS:,.1f} ms",
            )
        )
    if figures.send_attachment is not None:
        rows.append(_attachment_row(figures, figures.send_attachment, postfix, ceiling))
    if figures.batch is not None:
        batch = figures.batch
        rate = batch.rate * BATCH_SIZE
        ratio = rate / postfix.accept_rate
        rows.append(
            Row(
                key=f"{db}.batch.rate",
                figure=f"{db}: /send-batch ({BATCH_SIZE} a request), accepted",
                value=rate,
                unit="msg/s",
                vs_postfix=ratio,
                vs_ceiling=rate / ceiling,
                target=f"≥ {BATCH_VS_POSTFIX_ACCEPT:g}{TIMES} Postfix accept",
                holds=ratio >= BATCH_VS_POSTFIX_ACCEPT and _clean(batch),
                note=_errors(batch)
                or f"{figures.batch_queued:,} queued, p99 {batch.p99 * MILLISECONDS:,.0f} ms",
            )
        )
    if figures.drain_seconds:
        drained = figures.drained
        rate = drained / figures.drain_seconds
        ratio = rate / postfix.relay_rate
        rows.append(
            Row(
                key=f"{db}.drain.seconds",
                figure=f"{db}: queue drain of {drained:,}",
                value=figures.drain_seconds,
                unit="s",
                note=f"worker start-up to first message {figures.drain_startup_seconds:.1f} s",
            )
        )
        rows.append(
            Row(
                key=f"{db}.drain.rate",
                figure=f"{db}: queue drain, end to end",
                value=rate,
                unit="msg/s",
                vs_postfix=ratio,
                vs_ceiling=rate / ceiling,
                target=f"≥ {DRAIN_VS_POSTFIX_RELAY:g}{TIMES} Postfix relay",
                holds=ratio >= DRAIN_VS_POSTFIX_RELAY,
            )
        )
    if figures.status is not None:
        status = figures.status
        rows.append(
            Row(
                key=f"{db}.status.rate",
                figure=f"{db}: GET /status",
                value=status.rate,
                unit="req/s",
                target=f"≥ {STATUS_RATE:,.0f} req/s",
                holds=status.rate >= STATUS_RATE and _clean(status),
                note=_errors(status)
                or f"p50 {status.p50 * MILLISECONDS:.1f} ms, "
                f"p99 {status.p99 * MILLISECONDS:.1f} ms",
            )
        )
    if figures.metrics_seconds:
        rows.append(_metrics_row(figures))
    if figures.pixel is not None:
        rows.append(_pixel_row(figures, figures.pixel))
    if figures.hook is not None:
        rows.append(_hook_row(figures, figures.hook))
    if figures.dispatch_seconds:
        rate = figures.dispatch_events / figures.dispatch_seconds
        complete = figures.dispatch_events >= figures.dispatch_expected
        rows.append(
            Row(
                key=f"{db}.dispatch.rate",
                figure=f"{db}: webhook dispatch to a local endpoint",
                value=rate,
                unit="events/s",
                target=f"≥ {DISPATCH_RATE:,.0f} events/s",
                holds=rate >= DISPATCH_RATE and complete,
                note=f"{figures.dispatch_events:,} of {figures.dispatch_expected:,} delivered "
                f"in {figures.dispatch_seconds:.1f} s",
            )
        )
    rows.extend(_memory_rows(figures))
    return rows


def _hook_row(figures: MailPassFigures, load: LoadResult) -> Row:
    """Events recorded per second (counted in the database, so a POST refused or a duplicate
    counts nothing), from SendGrid's signed batches."""
    db = figures.database
    rate = figures.hook_events / load.seconds
    return Row(
        key=f"{db}.hook.sendgrid.rate",
        figure=f"{db}: provider webhook intake (SendGrid, {HOOK_EVENTS_PER_POST} events a POST)",
        value=rate,
        unit="events/s",
        target=f"≥ {HOOK_RATE:,.0f} events/s",
        holds=rate >= HOOK_RATE and _clean(load),
        note=_errors(load) or f"{load.rate:,.0f} POST/s, p99 {load.p99 * MILLISECONDS:,.0f} ms",
    )


def _attachment_row(
    figures: MailPassFigures, load: LoadResult, postfix: RelayFigures, ceiling: float
) -> Row:
    db = figures.database
    plain = figures.send.get(ATTACHMENT_CLIENTS)
    share = load.rate / plain.rate if plain is not None and plain.rate else None
    return Row(
        key=f"{db}.send_attachment.c{ATTACHMENT_CLIENTS}.rate",
        figure=f"{db}: /send with a 100 KiB attachment, {_clients(ATTACHMENT_CLIENTS)}",
        value=load.rate,
        unit="msg/s",
        vs_postfix=load.rate / postfix.accept_rate,
        vs_ceiling=load.rate / ceiling,
        target=f"≥ {ATTACHMENT_VS_SEND:g}{TIMES} plain /send" if plain is not None else "",
        holds=(share >= ATTACHMENT_VS_SEND and _clean(load)) if share is not None else None,
        note=_errors(load)
        or (f"{share:.2f}{TIMES} plain /send, " if share is not None else "")
        + f"p99 {load.p99 * MILLISECONDS:,.0f} ms",
    )


def _metrics_row(figures: MailPassFigures) -> Row:
    scrapes = sorted(figures.metrics_seconds)
    p50 = scrapes[len(scrapes) // 2] * MILLISECONDS
    # Every sent message is counted, or the scrape is wrong however fast it is.
    sent = figures.metrics_expected
    counted = figures.metrics_counted == sent
    return Row(
        key=f"{figures.database}.metrics.p50",
        figure=f"{figures.database}: GET /metrics, {figures.metrics_messages:,} messages",
        value=p50,
        unit="ms",
        target=f"≤ {METRICS_SCRAPE_LIMIT:g} ms",
        holds=p50 <= METRICS_SCRAPE_LIMIT and counted,
        note=f"{len(scrapes)} scrapes, slowest {scrapes[-1] * MILLISECONDS:.0f} ms, "
        f"{figures.metrics_counted:,} sent counted" + ("" if counted else f" of {sent:,}"),
    )


def _pixel_row(figures: MailPassFigures, pixel: LoadResult) -> Row:
    # The pixel is answered even when its open could not be recorded, so a 200 alone proves
    # nothing: every answered hit must also be an open in the database.
    unrecorded = max(0, pixel.succeeded - figures.pixel_opens)
    problems = [_errors(pixel)] if _errors(pixel) else []
    if unrecorded:
        problems.append(f"{unrecorded:,} answered but not recorded")
    return Row(
        key=f"{figures.database}.pixel.rate",
        figure=f"{figures.database}: GET pixel",
        value=pixel.rate,
        unit="req/s",
        target=f"≥ {PIXEL_RATE:,.0f} req/s",
        holds=pixel.rate >= PIXEL_RATE and _clean(pixel) and not unrecorded,
        note=", ".join(problems)
        or f"p50 {pixel.p50 * MILLISECONDS:.1f} ms, p99 {pixel.p99 * MILLISECONDS:.1f} ms, "
        f"{figures.pixel_opens:,} opens recorded",
    )


def _memory_rows(figures: MailPassFigures) -> list[Row]:
    db = figures.database
    rows: list[Row] = []
    peak_target = f"≤ {RSS_LIMIT:g} MiB"
    peaks = []
    if figures.api_memory is not None:
        label = "API process (serve --no-worker)"
        if figures.api_processes > 1:
            label = f"API, largest of {figures.api_processes} (serve --no-worker --processes)"
        peaks.append(("api", label, figures.api_memory.peak))
    of_workers = ""
    if figures.worker_processes > 1:
        of_workers = f", largest of {figures.worker_processes} (worker --processes)"
    if figures.soak_worker_peak:
        peaks.append(("soak_worker", f"soak worker{of_workers}", figures.soak_worker_peak))
    if figures.drain_worker_peak:
        peaks.append(("drain_worker", f"drain worker{of_workers}", figures.drain_worker_peak))
    for key, label, peak in peaks:
        mib = peak / MIB
        rows.append(
            Row(
                key=f"{db}.rss.{key}.peak",
                figure=f"{db}: peak RSS, {label}",
                value=mib,
                unit="MiB",
                target=peak_target,
                holds=mib <= RSS_LIMIT,
            )
        )
    if figures.soak:
        first, last = figures.soak[0], figures.soak[-1]
        for key, label, start, end in (
            ("api", "API process", first.api.rss, last.api.rss),
            ("soak_worker", "worker", first.worker.rss, last.worker.rss),
        ):
            growth = (end - start) / MIB
            rows.append(
                Row(
                    key=f"{db}.rss.{key}.after_soak",
                    figure=f"{db}: RSS after {last.messages:,} messages, {label}",
                    value=end / MIB,
                    unit="MiB",
                    target=f"≤ {RSS_LIMIT:g} MiB, +{RSS_GROWTH_LIMIT:g} MiB at most",
                    holds=end / MIB <= RSS_LIMIT and growth <= RSS_GROWTH_LIMIT,
                    note=f"{start / MIB:.1f} MiB after {first.messages:,} ({growth:+.1f} MiB)",
                )
            )
    return rows


def _fault_rows(faults: FaultFigures) -> list[Row]:
    db = faults.database
    rows = [
        Row(
            key=f"{db}.fault.kill9.seconds",
            figure=f"{db}: kill -9 of the worker mid-drain, restart → its messages sent",
            value=faults.kill_recovered,
            unit="s",
            target=f"≤ {KILL_RECOVERY_LIMIT:g} s",
            holds=faults.kill_recovered <= KILL_RECOVERY_LIMIT,
            note=f"{faults.kill_held} held by the dead worker; first message "
            f"{faults.kill_first:.1f} s after restart; {faults.kill_duplicates} sent twice",
        )
    ]
    if faults.back_drained is not None:
        moving = faults.back_moving if faults.back_moving is not None else 0.0
        rows.append(
            Row(
                key=f"{db}.fault.database_back.seconds",
                figure=f"{db}: database cut {faults.outage_seconds:g} s mid-drain, "
                "back → mail moving",
                value=moving,
                unit="s",
                target=f"≤ {DATABASE_BACK_LIMIT:g} s",
                holds=moving <= DATABASE_BACK_LIMIT,
                note=f"every message sent {faults.back_drained:.1f} s after its return",
            )
        )
    if faults.alone_rate:
        share = faults.beside_hung_rate / faults.alone_rate
        rows.append(
            Row(
                key=f"{db}.fault.beside_hung.rate",
                figure=f"{db}: a provider's drain of {faults.messages:,} beside a hung one",
                value=faults.beside_hung_rate,
                unit="msg/s",
                target=f"≥ {BESIDE_HUNG_SHARE:g}{TIMES} alone",
                holds=share >= BESIDE_HUNG_SHARE,
                note=f"alone {faults.alone_rate:,.0f} msg/s ({share:.2f}{TIMES}); "
                f"{faults.hung_messages:,} of the hung one's queued first",
            )
        )
    alone, flooded, flood = faults.status_alone, faults.status_flooded, faults.flood
    if alone is not None and flooded is not None and flood is not None:
        factor = flooded.p99 / alone.p99 if alone.p99 else 0.0
        rows.append(
            Row(
                key=f"{db}.fault.flood.p99",
                figure=f"{db}: GET /status p99 during a bad-key flood",
                value=flooded.p99 * MILLISECONDS,
                unit="ms",
                target=f"≤ {FLOOD_P99_FACTOR:g}{TIMES} alone",
                holds=factor <= FLOOD_P99_FACTOR and _clean(flooded),
                note=_errors(flooded)
                or f"alone {alone.p99 * MILLISECONDS:.1f} ms ({factor:.2f}{TIMES}); "
                f"{flood.requests:,} flood requests, {flood.succeeded:,} let in",
            )
        )
    return rows


def _direct_rows(direct: DirectFigures, ceiling: float) -> list[Row]:
    postfix_rate = direct.messages / direct.postfix_seconds
    rows = [
        Row(
            key="postfix.direct.rate",
            figure=f"Postfix: direct to {DOMAINS} domains' MX, from a full queue",
            value=postfix_rate,
            unit="msg/s",
            vs_postfix=1.0,
            vs_ceiling=postfix_rate / ceiling,
            note=f"{direct.messages:,} messages in {direct.postfix_seconds:.1f} s",
        )
    ]
    for database, seconds in direct.mailpass_seconds.items():
        rate = direct.messages / seconds
        ratio = rate / postfix_rate
        rows.append(
            Row(
                key=f"{database}.direct.rate",
                figure=f"{database}: direct to {DOMAINS} domains' MX, DKIM-signed",
                value=rate,
                unit="msg/s",
                vs_postfix=ratio,
                vs_ceiling=rate / ceiling,
                target=f"≥ {DIRECT_VS_POSTFIX:g}{TIMES} Postfix direct",
                holds=ratio >= DIRECT_VS_POSTFIX,
                note=f"{seconds:.1f} s from the worker's start",
            )
        )
    return rows


def _relay_rows(relay: SubmissionFigures, postfix: RelayFigures, ceiling: float) -> list[Row]:
    accept = relay.messages / relay.postfix_accept_seconds
    rows = [
        Row(
            key="postfix.accept16.rate",
            figure=f"Postfix: SMTP accept, {RELAY_SESSIONS} sessions",
            value=accept,
            unit="msg/s",
            vs_postfix=1.0,
            vs_ceiling=accept / ceiling,
            note=f"{relay.messages:,} messages",
        )
    ]
    for database, seconds in relay.accept_seconds.items():
        rate = relay.messages / seconds
        rows.append(
            Row(
                key=f"{database}.relay.accept.rate",
                figure=f"{database}: SMTP relay accept, {RELAY_SESSIONS} sessions",
                value=rate,
                unit="msg/s",
                vs_postfix=rate / accept,
                vs_ceiling=rate / ceiling,
                target=f"≥ {RELAY_VS_POSTFIX_ACCEPT:g}{TIMES} Postfix accept, {RELAY_SESSIONS}",
                holds=rate / accept >= RELAY_VS_POSTFIX_ACCEPT,
                note=f"{relay.messages:,} messages, trusted network",
            )
        )
    for database, seconds in relay.drain_seconds.items():
        rate = relay.messages / seconds
        ratio = rate / postfix.relay_rate
        rows.append(
            Row(
                key=f"{database}.relay.drain.rate",
                figure=f"{database}: queue drain of the relay's {relay.messages:,}, "
                "beside as many submitted",
                value=rate,
                unit="msg/s",
                vs_postfix=ratio,
                vs_ceiling=rate / ceiling,
                target=f"≥ {DRAIN_VS_POSTFIX_RELAY:g}{TIMES} Postfix relay",
                holds=ratio >= DRAIN_VS_POSTFIX_RELAY,
                note=f"{seconds:.1f} s from the worker's start; the intake beside it "
                f"{relay.messages / relay.beside_seconds[database]:,.0f} msg/s (flow control)",
            )
        )
    return rows


def build_rows(
    ceiling: float,
    postfix: RelayFigures,
    mailpass: list[MailPassFigures],
    faults: list[FaultFigures] | None = None,
    direct: DirectFigures | None = None,
    relay: SubmissionFigures | None = None,
) -> list[Row]:
    rows = [
        Row(
            key="ceiling.rate",
            figure="ceiling: smtp-source → smtp-sink, 8 sessions",
            value=ceiling,
            unit="msg/s",
            vs_postfix=ceiling / postfix.accept_rate,
            vs_ceiling=1.0,
        ),
        Row(
            key="postfix.accept.rate",
            figure="Postfix: SMTP accept, 8 sessions",
            value=postfix.accept_rate,
            unit="msg/s",
            vs_postfix=1.0,
            vs_ceiling=postfix.accept_rate / ceiling,
            note=f"{postfix.messages:,} messages",
        ),
        Row(
            key="postfix.relay.rate",
            figure="Postfix: relayed to the sink, end to end",
            value=postfix.relay_rate,
            unit="msg/s",
            vs_postfix=postfix.relay_rate / postfix.accept_rate,
            vs_ceiling=postfix.relay_rate / ceiling,
        ),
    ]
    for figures in mailpass:
        rows.extend(_mailpass_rows(figures, postfix, ceiling))
    for fault_figures in faults or []:
        rows.extend(_fault_rows(fault_figures))
    if direct is not None and direct.postfix_seconds:
        rows.extend(_direct_rows(direct, ceiling))
    if relay is not None and relay.postfix_accept_seconds:
        rows.extend(_relay_rows(relay, postfix, ceiling))
    return rows


def _value(row: Row) -> str:
    if row.unit in ("msg/s", "req/s"):
        return f"{row.value:,.0f} {row.unit}"
    return f"{row.value:,.1f} {row.unit}"


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.2f}{TIMES}" if ratio < 100 else f"{ratio:,.0f}{TIMES}"


def _holds(row: Row) -> str:
    return "" if row.holds is None else ("yes" if row.holds else "NO")


HEADER = ("Figure", "Value", f"{TIMES} Postfix", f"{TIMES} ceiling", "Target", "Holds", "Note")


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.figure,
        _value(row),
        _ratio(row.vs_postfix),
        _ratio(row.vs_ceiling),
        row.target,
        _holds(row),
        row.note,
    )


def text_table(rows: list[Row]) -> str:
    lines = [HEADER, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    right = {1, 2, 3}  # numbers line up on the right
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def markdown_table(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "| --- | ---: | ---: | ---: | --- | --- | --- |"]
    out += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(out)
