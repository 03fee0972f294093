"""What each process measures of itself, for ``GET /metrics`` (``mailpass.monitoring`` adds
what the database says): how long providers take to accept a message, their errors by code,
the queue's outcomes, and the process's memory.

Under a supervisor (``serve --processes N``, ``worker --processes N``) each process writes its
measures to files in a directory the supervisor made (prometheus-client's multiprocess mode,
``PROMETHEUS_MULTIPROC_DIR``), so that whichever process answers a scrape tells the sum of all:
a scrape that saw one process's counters would under-count by N.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "DELIVERIES",
    "MULTIPROCESS_ENV",
    "PROCESS_UP",
    "PROVIDER_ERRORS",
    "RELAY_MESSAGES",
    "SEND_SECONDS",
    "multiprocess_directory",
    "process_gone",
    "process_registry",
    "shared_measures",
]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# One SMTP transaction with a provider, from asking for a connection to its reply to DATA.
SEND_SECONDS = Histogram(
    "mailpass_send_seconds",
    "Seconds a provider took to take a message (one SMTP transaction), by outcome.",
    ["provider", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
PROVIDER_ERRORS = Counter(
    "mailpass_provider_errors",
    "SMTP transactions a provider did not take, by its reply code (or unreachable, other).",
    ["provider", "code"],
)
DELIVERIES = Counter(
    "mailpass_queue_outcomes",
    "Queued messages' attempts by outcome: sent, failed (for good), retry (back in the queue).",
    ["outcome"],
)
RELAY_MESSAGES = Counter(
    "mailpass_relay_messages",
    "Messages given to the SMTP relay after DATA, by outcome: accepted (stored and queued), "
    "refused (5xx), deferred (4xx: the client tries again).",
    ["outcome"],
)
# Set to 1 by every process at start: under a supervisor, its file names the live processes
# whose memory a scrape reports.
PROCESS_UP = Gauge(
    "mailpass_process_up",
    "1 for each running MailPass process.",
    multiprocess_mode="liveall",
)
_PID_IN_NAME = re.compile(r"_(\d+)\.db$")


def multiprocess_directory() -> Path | None:
    value = os.environ.get(MULTIPROCESS_ENV)
    return Path(value) if value else None


@contextlib.contextmanager
def shared_measures() -> Iterator[None]:
    """For a supervisor, around the life of its processes: a new directory for their measures,
    named in the environment they inherit, and removed once they are all gone."""
    if multiprocess_directory() is not None:  # a supervisor's supervisor made one already
        yield
        return
    directory = tempfile.mkdtemp(prefix="mailpass-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def process_gone(pid: int) -> None:
    """For a supervisor: a process of it ended, its gauges no longer count."""
    if multiprocess_directory() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class _Memory(Collector):
    """The resident memory of each live MailPass process, read from ``/proc`` at the scrape."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mailpass_process_resident_memory_bytes",
            "Resident memory of each MailPass process.",
            labels=["pid"],
        )
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        for pid in self._pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
                family.add_metric([str(pid)], pages * page)
        yield family

    def _pids(self) -> list[int]:
        if self.directory is None:
            return [os.getpid()]
        pids = {
            int(match.group(1))
            for path in self.directory.glob("gauge_liveall_*.db")
            if (match := _PID_IN_NAME.search(path.name))
        }
        return sorted(pids | {os.getpid()})


def process_registry() -> CollectorRegistry:
    """This process's measures, or under a supervisor every live process's, summed."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_directory()
    if directory is not None:
        multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    else:
        registry.register(_Single())
    registry.register(_Memory(directory))
    return registry


class _Single(Collector):
    """The measures of this one process, as the default registry holds them."""

    def collect(self) -> Iterator[Metric]:
        for instrument in (SEND_SECONDS, PROVIDER_ERRORS, DELIVERIES):
            yield from instrument.collect()
