"""Child processes of a bench run: started with their output in a log file, measured through
``/proc``, stopped politely and then firmly, never left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BenchError",
    "ManagedProcess",
    "Memory",
    "free_port",
    "log_tail",
    "run_checked",
    "wait_for_port",
]

STOP_TIMEOUT = 30.0  # seconds a process gets to exit after SIGTERM before SIGKILL
LOG_TAIL_BYTES = 4000  # of a log quoted in an error
KIB = 1024  # bytes; /proc reports memory in KiB


class BenchError(Exception):
    """The run cannot go on; the message says what failed and where its log is."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    port: int,
    *,
    timeout: float,
    process: ManagedProcess | None = None,
    host: str = "127.0.0.1",
) -> None:
    """Wait until something accepts connections on ``host``:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            process.check_alive()
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        time.sleep(0.05)
    raise BenchError(f"nothing listens on port {port} after {timeout:.0f} s")


def log_tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def run_checked(
    command: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 300.0
) -> str:
    """Run a command to completion; its standard output, or a BenchError quoting its stderr."""
    try:
        done = subprocess.run(  # noqa: S603  # our own fixed commands
            list(command), env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`{' '.join(command)}` did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(
            f"`{' '.join(command)}` exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-LOG_TAIL_BYTES:]}"
        )
    return done.stdout


@dataclass(frozen=True)
class Memory:
    """A process's resident memory, in bytes: now (VmRSS) and its peak so far (VmHWM)."""

    rss: int
    peak: int


def _memory_of(pid: int) -> Memory:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * KIB
    return Memory(rss=fields["VmRSS"], peak=fields["VmHWM"])


def _spawned_children(pid: int) -> list[int]:
    """The worker processes multiprocessing spawned for ``pid`` (uvicorn's server processes)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and b"spawn_main" in command:
            children.append(int(entry.name))
    return children


class ManagedProcess:
    """A child process whose stdout and stderr go to ``log``."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
        stdout: Path | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self._log_handle = log.open("ab")
        self._stdout_handle = stdout.open("wb") if stdout else None
        self.process = subprocess.Popen(  # noqa: S603  # our own fixed commands
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=self._stdout_handle or self._log_handle,
            stderr=self._log_handle,
            env=env,
            start_new_session=True,  # a Ctrl-C of the bench is handled by the bench alone
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise BenchError(
                f"{self.name} exited with status {code}; its log ({self.log}) ends:\n"
                f"{log_tail(self.log)}"
            )

    def server_pids(self) -> list[int]:
        """For ``serve --processes N`` its server processes; otherwise the process itself."""
        return _spawned_children(self.pid) or [self.pid]

    def memory(self) -> Memory:
        """Resident memory now and at its peak, from /proc/<pid>/status. For ``serve
        --processes N`` (a supervisor and N server processes) that of the largest server
        process: the target is per process."""
        self.check_alive()
        servers = [_memory_of(pid) for pid in _spawned_children(self.pid)]
        if not servers:
            return _memory_of(self.pid)
        return Memory(
            rss=max(memory.rss for memory in servers), peak=max(memory.peak for memory in servers)
        )

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not exited in time; returns the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_handle.close()
        if self._stdout_handle:
            self._stdout_handle.close()
        return self.process.returncode
