"""``bench/run --profile DIR``: py-spy records the MailPass server processes during each
measurement, and a summary says where their time went.

py-spy samples the thread holding the GIL (``--gil``), so a sample is Python (or C called
from Python) running on a core, not a coroutine waiting for the database or the network. For
each measurement it writes the raw stacks of each process (``<name>-<pid>.txt``, the collapsed
format flame graph tools read) and ``<name>.summary.txt``: how busy the processes were, then
the functions by inclusive and by own share of the samples.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.processes import BenchError

__all__ = ["Profiler"]

SAMPLE_RATE = 200  # samples per second and process
TOP_FRAMES = 40  # functions listed in each ranking of a summary
STOP_GRACE = 30.0  # seconds py-spy may take to write its file after the measurement
START_TIMEOUT = 30.0  # seconds py-spy may take to start sampling before the measurement starts
SAMPLING = b"Sampling process"  # what py-spy prints once it samples
START_POLL = 0.02  # seconds between looks at what py-spy printed


class Profiler:
    def __init__(self, directory: Path) -> None:
        found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if found is None:
            raise BenchError("--profile needs py-spy: pip install py-spy (scripts/test does)")
        self.py_spy = found
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def recording(self, name: str, pids: list[int], *, settled: bool = True) -> Iterator[None]:
        """Record ``pids`` while the block runs (the measurement); with ``settled``, the block
        starts once py-spy samples them."""
        outputs = [self.directory / f"{name}-{pid}.txt" for pid in pids]
        logs = [output.with_suffix(".log") for output in outputs]
        spies = []
        for pid, output, log in zip(pids, outputs, logs, strict=True):
            with log.open("wb") as messages:  # py-spy's own messages, kept beside its output
                spies.append(
                    subprocess.Popen(  # noqa: S603
                        [
                            self.py_spy,
                            "record",
                            "--pid",
                            str(pid),
                            "--rate",
                            str(SAMPLE_RATE),
                            "--gil",
                            "--nonblocking",
                            # The worker's children too: `mailpass worker --processes N` sends
                            # from spawned processes, and its own is only their supervisor.
                            "--subprocesses",
                            "--format",
                            "raw",
                            "--output",
                            str(output),
                        ],
                        # (py-spy says nothing at all with its output sent nowhere.)
                        stdout=messages,
                        stderr=subprocess.STDOUT,
                    )
                )
        if settled:
            deadline = time.monotonic() + START_TIMEOUT
            for spy, log in zip(spies, logs, strict=True):
                _wait_until_sampling(spy, log, deadline)
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - started
            for spy in spies:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            for spy in spies:
                try:
                    spy.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    spy.kill()
        written = [output for output in outputs if output.exists()]
        if written:
            summary = summarize(written, possible_samples=seconds * len(pids) * SAMPLE_RATE)
            (self.directory / f"{name}.summary.txt").write_text(summary)


def _wait_until_sampling(spy: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    """Until ``spy`` says in ``log`` that it samples, exits, or ``deadline`` passes. py-spy
    first reads the process's symbols, ~1 s here with a core to itself: a measurement started
    meanwhile was not recorded at its start and shared the cores with py-spy (a 1 s smoke
    measurement on a busy machine once completed no request at all)."""
    while SAMPLING not in log.read_bytes():
        if spy.poll() is not None or time.monotonic() > deadline:
            return  # an exited py-spy leaves no file: the summary is not written
        time.sleep(START_POLL)


def summarize(paths: list[Path], *, possible_samples: float) -> str:
    """The summary of py-spy's raw output files; ``possible_samples``: what a fully
    busy set of processes would have given (duration x processes x rate)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            total += count
            frames = [_function(frame) for frame in stack.split(";")]
            for function in set(frames):
                inclusive[function] += count
            own[frames[-1]] += count
    if not total:
        return "no samples\n"
    lines = [
        f"{total} samples with the GIL held: {100 * total / possible_samples:.0f} % of the "
        "processes' time (the rest: waiting, or in C without the GIL)",
        "",
        "inclusive (the function or what it called):",
    ]
    # The frames every sample shares (the process's entry point down to the event loop) say
    # nothing: the ranking starts below them.
    shared = max(inclusive.values())
    ranked = [(name, n) for name, n in inclusive.most_common() if n < shared][:TOP_FRAMES]
    lines += [f"{100 * n / total:6.1f} %  {name}" for name, n in ranked]
    lines += ["", "own (in the function itself):"]
    lines += [f"{100 * n / total:6.1f} %  {name}" for name, n in own.most_common(TOP_FRAMES)]
    return "\n".join(lines) + "\n"


def _function(frame: str) -> str:
    """``name (path/to/module.py:123)`` -> ``name (module.py)``: lines apart, one function."""
    name, _, where = frame.partition(" (")
    module = where.rsplit(":", 1)[0].rsplit("/", 1)[-1].rstrip(")")
    return f"{name} ({module})" if module else name
