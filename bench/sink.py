"""The one SMTP sink every figure of a run is measured against: Postfix's ``smtp-sink``, a C
server that accepts mail and throws it away at ~10,000+ messages per second on this machine.

It counts by itself: with ``-c`` it writes ``sess=N quit=N mesg=N`` plus a carriage return
after every message, which goes to a file (a pipe could fill and stall it); ``received()``
reads the file's last bytes."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from bench.processes import BenchError, ManagedProcess, free_port, wait_for_port

__all__ = ["SmtpSink"]

LISTEN_BACKLOG = 1024  # pending connections the kernel keeps for the sink
MAX_SESSIONS = 1024  # simultaneous SMTP sessions; Postfix opens up to 20, MailPass a few
COMMAND_TIMEOUT = 100  # seconds, smtp-sink's limit per SMTP command
TAIL_BYTES = 256  # the counter line is ~30 bytes
COUNTER = re.compile(rb"mesg=(\d+)\r")
STARTUP_TIMEOUT = 10.0  # seconds
POLL_INTERVAL = 0.01  # seconds between looks at the counter while waiting


class SmtpSink:
    def __init__(
        self,
        smtp_sink: str,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "smtp-sink",
    ) -> None:
        self.host = host
        self.port = port or free_port()
        self.counter_file = workdir / f"{name}.counter"
        command = [smtp_sink, "-c", "-4", "-m", str(MAX_SESSIONS), "-t", str(COMMAND_TIMEOUT)]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # smtp-sink refuses to keep root privileges
        command += [f"{host}:{self.port}", str(LISTEN_BACKLOG)]
        self.process = ManagedProcess(
            name, command, log=workdir / f"{name}.log", stdout=self.counter_file
        )
        wait_for_port(self.port, timeout=STARTUP_TIMEOUT, process=self.process, host=host)

    def received(self) -> int:
        """Messages received since the sink started."""
        with self.counter_file.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - TAIL_BYTES))
            counts = COUNTER.findall(handle.read())
        return int(counts[-1]) if counts else 0

    def wait_for(
        self,
        total: int,
        *,
        stall_timeout: float,
        watch: list[ManagedProcess] | None = None,
    ) -> float:
        """Wait until the sink has received ``total`` messages since it started; returns the
        monotonic time it saw the last one. Fails when no message arrived for ``stall_timeout``
        seconds, or when a process in ``watch`` died."""
        last_count = self.received()
        last_progress = time.monotonic()
        while True:
            count = self.received()
            now = time.monotonic()
            if count >= total:
                return now
            if count != last_count:
                last_count, last_progress = count, now
            elif now - last_progress > stall_timeout:
                raise BenchError(
                    f"the sink stalled at {count} of {total} messages "
                    f"(nothing for {stall_timeout:.0f} s)"
                )
            for process in watch or []:
                process.check_alive()
            self.process.check_alive()
            time.sleep(POLL_INTERVAL)

    def stop(self) -> None:
        self.process.stop()
