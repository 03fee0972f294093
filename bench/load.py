"""HTTP load from ``wrk`` (C, one thread: the two cores belong to the server under test), driven
by ``lua/mailpass.lua``, which prints one ``BENCH-WRK key=value ...`` line at the end."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.processes import BenchError, run_checked

__all__ = ["LoadResult", "run_wrk"]

SCRIPT = Path(__file__).parent / "lua" / "mailpass.lua"
REQUEST_TIMEOUT = 30  # seconds before wrk counts a request as timed out
RESULT_LINE = re.compile(r"^BENCH-WRK (.*)$", re.MULTILINE)
MICROSECONDS = 1_000_000
WRK_THREADS = 1


@dataclass(frozen=True)
class LoadResult:
    """What wrk saw: ``requests`` answered in ``seconds``, of which ``failed`` with a status of
    400 or more; ``broken`` requests got no answer (timeout, connection error). Latencies are
    in seconds."""

    requests: int
    failed: int
    broken: int
    seconds: float
    p50: float
    p99: float
    max: float

    @property
    def succeeded(self) -> int:
        return self.requests - self.failed

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.succeeded / self.seconds


def run_wrk(
    wrk: str, url: str, *, connections: int, seconds: int, script_args: list[str]
) -> LoadResult:
    """Load ``url`` with ``connections`` keep-alive connections for ``seconds``."""
    output = run_checked(
        [
            wrk,
            "-t",
            str(WRK_THREADS),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            f"{REQUEST_TIMEOUT}s",
            "-s",
            str(SCRIPT),
            url,
            "--",
            *script_args,
        ],
        timeout=seconds + REQUEST_TIMEOUT + 30,
    )
    match = RESULT_LINE.search(output)
    if match is None:
        raise BenchError(f"wrk printed no result line:\n{output}")
    values = {
        key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())
    }
    broken = values["timeouts"] + values["read_errors"] + values["write_errors"]
    broken += values["connect_errors"]
    if values["requests"] == 0:
        raise BenchError(f"wrk completed no request against {url}:\n{output}")
    return LoadResult(
        requests=values["requests"],
        failed=values["status_errors"],
        broken=broken,
        seconds=values["duration_us"] / MICROSECONDS,
        p50=values["p50_us"] / MICROSECONDS,
        p99=values["p99_us"] / MICROSECONDS,
        max=values["max_us"] / MICROSECONDS,
    )
