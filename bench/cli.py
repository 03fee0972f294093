"""``bench/run`` (``python -m bench``): the whole benchmark in one command, printing one table.

Progress goes to standard error, the table to standard output, and the table with every raw
figure to a JSON file (plus the same table in Markdown beside it, for bench/README.md)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.direct import DOMAINS, measure_direct
from bench.faults import FaultFigures, measure_faults
from bench.measure import MailPassFigures, Sizes, measure_mailpass
from bench.processes import BenchError
from bench.profile import Profiler
from bench.relay import RELAY_SESSIONS, measure_relay
from bench.report import build_rows, markdown_table, text_table
from bench.sink import SmtpSink
from bench.smtp import measure_ceiling, measure_postfix
from bench.tools import Tools, ensure_tools, system_mta_listening

__all__ = ["main"]

DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASES = ("sqlite", "postgresql")
# How a MailPass process may end on SIGTERM: 0, or (uvicorn, after its graceful shutdown)
# by re-raising the signal it caught.
CLEAN_EXITS = {0, -signal.SIGTERM}
# A run that proves the harness works, in seconds rather than minutes; its figures mean little.
SMOKE_SIZES = Sizes(
    ceiling_messages=500,
    postfix_messages=200,
    warmup_seconds=1,
    seconds=1,
    status_ids=50,
    pixel_messages=50,
    hook_posts=50,
    dispatch_posts=5,
    drain_messages=2_000,  # enough that the drain worker's profile is its loop, not its start-up
    direct_messages=500,
    relay_messages=500,
    rss_messages=1_000,
    fault_messages=300,
    hung_messages=100,
    outage_seconds=1,
)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    defaults = Sizes()
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="MailPass side by side with Postfix and the raw SMTP ceiling, in one run.",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny numbers: checks the harness in under a minute"
    )
    parser.add_argument(
        "--databases",
        default=",".join(DATABASES),
        help="comma-separated: sqlite, postgresql (default: both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MAILPASS_BENCH_POSTGRES_URL")
        or os.environ.get("MAILPASS_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_URL,
        help="a PostgreSQL server and a user allowed to create databases; the run creates its "
        "own database there and drops it at the end",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="fail instead of installing postfix and wrk with apt-get when missing",
    )
    parser.add_argument(
        "--keep-workdir", action="store_true", help="keep logs and databases after a good run"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record the MailPass processes with py-spy during each /send, /send-batch, "
        "/status and pixel measurement and the queue drain; raw stacks and summaries go to DIR",
    )
    parser.add_argument(
        "--require-targets",
        action="store_true",
        help="exit with status 2 when a target does not hold",
    )
    sizes = parser.add_argument_group("sizes (the defaults are the issue's)")
    sizes.add_argument("--ceiling-messages", type=int, default=None, metavar="N")
    sizes.add_argument("--postfix-messages", type=int, default=None, metavar="N")
    sizes.add_argument(
        "--seconds", type=int, default=None, metavar="S", help="of each wrk measurement"
    )
    sizes.add_argument("--warmup-seconds", type=int, default=None, metavar="S")
    sizes.add_argument(
        "--send-clients",
        default=None,
        metavar="N,N,...",
        help=f"default {','.join(map(str, defaults.send_clients))}",
    )
    sizes.add_argument("--batch-clients", type=int, default=None, metavar="N")
    sizes.add_argument("--status-clients", type=int, default=None, metavar="N")
    sizes.add_argument("--pixel-clients", type=int, default=None, metavar="N")
    sizes.add_argument("--hook-clients", type=int, default=None, metavar="N")
    sizes.add_argument("--hook-posts", type=int, default=None, metavar="N")
    sizes.add_argument("--dispatch-posts", type=int, default=None, metavar="N")
    sizes.add_argument("--drain-messages", type=int, default=None, metavar="N")
    sizes.add_argument("--direct-messages", type=int, default=None, metavar="N")
    sizes.add_argument("--rss-messages", type=int, default=None, metavar="N")
    sizes.add_argument("--relay-messages", type=int, default=None, metavar="N")
    sizes.add_argument("--fault-messages", type=int, default=None, metavar="N")
    sizes.add_argument("--hung-messages", type=int, default=None, metavar="N")
    sizes.add_argument("--outage-seconds", type=int, default=None, metavar="S")
    sizes.add_argument(
        "--api-processes",
        type=int,
        default=None,
        metavar="N",
        help=f"`mailpass serve --processes N` for the API (default: one per core, "
        f"{defaults.api_processes} here)",
    )
    sizes.add_argument(
        "--worker-processes",
        type=int,
        default=None,
        metavar="N",
        help="`mailpass worker --processes N` for the soak and the drain (default: one per "
        f"core on PostgreSQL, {defaults.workers_for('postgresql')} here; one on SQLite)",
    )
    return parser


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = SMOKE_SIZES if args.smoke else Sizes()
    chosen: dict[str, Any] = {
        name: getattr(args, name)
        for name in (
            "ceiling_messages",
            "postfix_messages",
            "seconds",
            "warmup_seconds",
            "batch_clients",
            "status_clients",
            "pixel_clients",
            "hook_clients",
            "hook_posts",
            "dispatch_posts",
            "drain_messages",
            "direct_messages",
            "rss_messages",
            "fault_messages",
            "hung_messages",
            "outage_seconds",
            "api_processes",
            "worker_processes",
        )
        if getattr(args, name) is not None
    }
    if args.send_clients:
        chosen["send_clients"] = tuple(int(n) for n in args.send_clients.split(","))
    sizes = replace(sizes, **chosen)
    for name, value in asdict(sizes).items():
        values = value if isinstance(value, tuple) else (value,)
        if any(v is not None and v < 1 for v in values):  # None: the default, by database
            raise BenchError(f"--{name.replace('_', '-')} must be at least 1")
    for name in (
        "drain_messages",
        "direct_messages",
        "rss_messages",
        "fault_messages",
        "hung_messages",
    ):
        if getattr(sizes, name) % 100:
            raise BenchError(f"--{name.replace('_', '-')} must be a multiple of 100 (one batch)")
    return sizes


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    except OSError:
        return "?"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def _machine(tools: Tools) -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "postfix": _first_line([tools.postconf, "-d", "-h", "mail_version"]),
        "wrk": _first_line([tools.wrk, "-v"]),
        "load_average_at_start": os.getloadavg()[0],
        "system_mta_on_port_25": system_mta_listening(),
    }


def _headline(result: dict[str, Any]) -> str:
    machine = result["machine"]
    return (
        f"MailPass benchmark, {result['date']}: {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['memory']}, {machine['os']}; load average {machine['load_average_at_start']:.2f}"
        f" at start, {machine['load_average_at_end']:.2f} at end"
        + ("; SMOKE RUN, the figures mean nothing" if result["smoke"] else "")
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    sizes = _sizes(args)
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = sorted(set(databases) - set(DATABASES))
    if unknown or not databases:
        raise BenchError(f"--databases: choose from {', '.join(DATABASES)}")
    tools = ensure_tools(install=not args.no_install)
    profiler = Profiler(args.profile) if args.profile else None
    workdir = Path(tempfile.mkdtemp(prefix="mailpass-bench-"))
    workdir.chmod(0o755)  # Postfix's unprivileged daemons must reach its queue inside
    _progress(f"work directory (logs): {workdir}")
    succeeded = clean = False
    sink: SmtpSink | None = None
    try:
        result: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "smoke": args.smoke,
            "machine": _machine(tools),
            "sizes": asdict(sizes),
        }
        sink = SmtpSink(tools.smtp_sink, workdir)
        _progress(f"ceiling: smtp-source → smtp-sink, {sizes.ceiling_messages:,} messages")
        ceiling = measure_ceiling(tools, sink, sizes.ceiling_messages)
        _progress(f"Postfix: {sizes.postfix_messages:,} messages")
        postfix = measure_postfix(tools, sink, workdir / "postfix", sizes.postfix_messages)
        mailpass: list[MailPassFigures] = []
        for database in databases:
            mailpass.append(
                measure_mailpass(
                    database,
                    tools,
                    sink,
                    sizes,
                    workdir / database,
                    postgres_url=args.postgres_url,
                    progress=_progress,
                    profiler=profiler,
                )
            )
        faults: list[FaultFigures] = []
        for database in databases:
            faults.append(
                measure_faults(
                    database,
                    tools,
                    sink,
                    sizes,
                    workdir / f"{database}-faults",
                    postgres_url=args.postgres_url,
                    progress=_progress,
                )
            )
        _progress(
            f"direct delivery: {sizes.direct_messages:,} messages to {DOMAINS} domains' MX "
            "hosts, Postfix then MailPass"
        )
        direct = measure_direct(
            tools,
            databases,
            workdir / "direct",
            sizes.direct_messages,
            postgres_url=args.postgres_url,
            worker_processes={database: sizes.workers_for(database) for database in databases},
        )
        _progress(
            f"SMTP relay: {sizes.relay_messages:,} messages, {RELAY_SESSIONS} sessions, Postfix "
            "then MailPass, then the drain beside as many more"
        )
        relay = measure_relay(
            tools,
            sink,
            databases,
            workdir / "relay",
            sizes.relay_messages,
            postgres_url=args.postgres_url,
            api_processes=sizes.api_processes,
            worker_processes={database: sizes.workers_for(database) for database in databases},
        )
        result["machine"]["load_average_at_end"] = os.getloadavg()[0]
        result["machine"]["databases"] = {f.database: f.version for f in mailpass}
        rows = build_rows(ceiling, postfix, mailpass, faults, direct, relay)
        targets = [row for row in rows if row.holds is not None]
        result["targets_held"] = sum(1 for row in targets if row.holds)
        result["targets"] = len(targets)
        result["rows"] = [row.as_dict() for row in rows]
        result["postfix"] = asdict(postfix)
        result["mailpass"] = [asdict(figures) for figures in mailpass]
        result["faults"] = [asdict(figures) for figures in faults]
        result["direct"] = asdict(direct)
        result["relay"] = asdict(relay)
        lost = {f.database: f.status_counts for f in mailpass if set(f.status_counts) - {"sent"}}

        failed_exits = {
            f"{f.database} {name}": code
            for f in [*mailpass, *faults]
            for name, code in f.exit_codes.items()
            if code not in CLEAN_EXITS
        }
        for phase in (direct, relay):
            failed_exits.update(
                {name: code for name, code in phase.exit_codes.items() if code not in CLEAN_EXITS}
            )
        warnings = [
            f"WARNING: {database}: not every message was sent: {counts}"
            for database, counts in lost.items()
        ]
        if failed_exits:
            warnings.append(f"WARNING: processes that did not stop cleanly: {failed_exits}")
        result["warnings"] = warnings
        # The logs and the database are the evidence of what went wrong: keep them.
        clean = not warnings

        headline = _headline(result)
        summary = "\n".join(
            [f"targets held: {result['targets_held']} of {result['targets']}", *warnings]
        )
        print(f"{headline}\n\n{text_table(rows)}\n\n{summary}")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        args.json.with_suffix(".md").write_text(
            f"{headline}\n\n{markdown_table(rows)}\n\n{summary}\n"
        )
        _progress(f"results: {args.json} and {args.json.with_suffix('.md')}")
        succeeded = True
        if args.require_targets and result["targets_held"] < result["targets"]:
            return 2
        return 0
    finally:
        if sink is not None:
            sink.stop()
        if succeeded and clean and not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            _progress(f"kept the work directory: {workdir}")


def main() -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)
    args = _parser().parse_args()
    try:
        sys.exit(run(args))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped", file=sys.stderr)
        sys.exit(130)
