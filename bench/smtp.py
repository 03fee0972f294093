"""The two reference figures: the machine's raw SMTP ceiling (``smtp-source`` straight into the
sink) and Postfix, a throwaway instance relaying to the sink, as the anchor MailPass is held to.

Both are fed by ``smtp-source`` with 8 sessions, each reusing its connection (``-d``) as
MailPass reuses its provider connections, with a payload about the size of the message MailPass
composes from the bench's request.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench.processes import BenchError, free_port, log_tail, run_checked, wait_for_port
from bench.sink import SmtpSink
from bench.tools import Tools

__all__ = ["PostfixInstance", "RelayFigures", "measure_ceiling", "measure_postfix"]

SOURCE_SESSIONS = 8  # parallel SMTP sessions, as in the issue
# Body bytes per message; with smtp-source's own headers, the ~1,400 bytes MailPass composes
# from the bench's request (bench/payloads.py).
PAYLOAD_BYTES = 1250
SOURCE_FROM = "bench-source@example.com"
SOURCE_TO = "bench-recipient@example.com"
STALL_TIMEOUT = 60.0  # seconds without a message reaching the sink before the run fails
STARTUP_TIMEOUT = 30.0  # seconds for Postfix to listen
WARMUP_FRACTION = 0.02  # of the messages, sent first so process start-up is not measured
MIN_WARMUP = 50  # messages


@dataclass(frozen=True)
class RelayFigures:
    """Messages per second: accepted over SMTP, and relayed until the sink had them all."""

    messages: int
    accept_rate: float
    relay_rate: float


def _source(tools: Tools, port: int, messages: int) -> None:
    run_checked(
        [
            tools.smtp_source,
            "-4",
            "-d",
            "-s",
            str(SOURCE_SESSIONS),
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
        timeout=STALL_TIMEOUT + messages / 100,
    )


def _timed_relay(tools: Tools, sink: SmtpSink, port: int, messages: int) -> RelayFigures:
    target = sink.received() + messages
    started = time.monotonic()
    _source(tools, port, messages)
    accepted = time.monotonic()
    relayed = sink.wait_for(target, stall_timeout=STALL_TIMEOUT)
    return RelayFigures(
        messages=messages,
        accept_rate=messages / (accepted - started),
        relay_rate=messages / (relayed - started),
    )


def _warm_up(tools: Tools, sink: SmtpSink, port: int, messages: int) -> None:
    count = max(MIN_WARMUP, int(messages * WARMUP_FRACTION))
    target = sink.received() + count
    _source(tools, port, count)
    sink.wait_for(target, stall_timeout=STALL_TIMEOUT)


def measure_ceiling(tools: Tools, sink: SmtpSink, messages: int) -> float:
    """``smtp-source`` → ``smtp-sink``: messages per second, until the sink counted them all."""
    _warm_up(tools, sink, sink.port, messages)
    return _timed_relay(tools, sink, sink.port, messages).relay_rate


MAIN_CF = """\
# A throwaway Postfix for the MailPass benchmark: Debian's defaults, plus only what makes it a
# loopback relay to the bench's smtp-sink with its state in this directory.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = postfix.bench.example.com
mydomain = bench.example.com
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{sink_port}
# No local delivery: nothing is ever delivered on this machine.
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
biff = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
"""

# Debian's master.cf without chroot (the queue is not under /var/spool/postfix) and without the
# pipe transports; the SMTP server listens on the bench's port.
MASTER_CF = """\
127.0.0.1:{smtpd_port} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


class PostfixInstance:
    """A Postfix of its own in ``root``: config, queue and log there, SMTP on a free loopback
    port, relaying everything to the sink. Needs root, as Postfix does."""

    def __init__(
        self,
        tools: Tools,
        root: Path,
        sink_port: int,
        smtpd_port: int,
        *,
        main_cf: str = MAIN_CF,
        resolv_conf: Path | None = None,
    ) -> None:
        if os.geteuid() != 0:
            raise BenchError("the Postfix anchor needs root (Postfix's master runs as root)")
        self.tools = tools
        self.root = root
        self.port = smtpd_port
        self.config = root / "etc"
        self.config.mkdir(parents=True)
        (root / "queue").mkdir(mode=0o755)
        data = root / "data"
        data.mkdir(mode=0o700)
        shutil.chown(data, user="postfix")
        # Postfix's unprivileged daemons must reach the queue through every parent directory.
        root.chmod(0o755)
        (self.config / "main.cf").write_text(main_cf.format(root=root, sink_port=sink_port))
        (self.config / "master.cf").write_text(MASTER_CF.format(smtpd_port=smtpd_port))
        # Postfix reads the DNS servers it asks from /etc/resolv.conf alone: with another one
        # given, it runs in a mount namespace of its own where that file is this one.
        self.resolv_conf = resolv_conf
        self.started = False

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def postconf(self, setting: str) -> None:
        run_checked([self.tools.postconf, "-c", str(self.config), "-e", setting], timeout=60)

    def reload(self) -> None:
        self._postfix("reload")

    def flush(self) -> None:
        """Deliver the deferred mail now (``postqueue -f``)."""
        postqueue = str(Path(self.tools.postconf).with_name("postqueue"))
        run_checked([postqueue, "-c", str(self.config), "-f"], timeout=60)

    def queued(self, queue: str) -> int:
        """Messages in one of its queue directories (incoming, active, deferred, …)."""
        return sum(1 for path in (self.root / "queue" / queue).rglob("*") if path.is_file())

    def _postfix(self, *args: str) -> None:
        try:
            run_checked([self.tools.postfix, "-c", str(self.config), *args], timeout=60)
        except BenchError as exc:
            raise BenchError(
                f"{exc}\nPostfix's log ({self.maillog}):\n{log_tail(self.maillog)}"
            ) from None

    def start(self) -> None:
        if self.resolv_conf is None:
            self._postfix("start")
        else:
            start = f"{self.tools.postfix} -c {self.config} start"
            script = f"mount --bind {self.resolv_conf} /etc/resolv.conf && exec {start}"
            try:
                run_checked(["unshare", "--mount", "sh", "-c", script], timeout=60)
            except BenchError as exc:
                raise BenchError(f"{exc}\nPostfix's log:\n{log_tail(self.maillog)}") from None
        self.started = True
        try:
            wait_for_port(self.port, timeout=STARTUP_TIMEOUT)
        except BenchError as exc:
            raise BenchError(f"{exc}\nPostfix's log:\n{log_tail(self.maillog)}") from None

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        master = self._master_pid()
        with contextlib.suppress(BenchError):
            self._postfix("stop")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while master and Path(f"/proc/{master}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if master and Path(f"/proc/{master}").exists():
            with contextlib.suppress(BenchError):
                self._postfix("abort")

    def _master_pid(self) -> int | None:
        try:
            return int((self.root / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def measure_postfix(tools: Tools, sink: SmtpSink, root: Path, messages: int) -> RelayFigures:
    """Postfix accepting ``messages`` from ``smtp-source`` and relaying them to the sink."""
    instance = PostfixInstance(tools, root, sink.port, free_port())
    try:
        instance.start()
        _warm_up(tools, sink, instance.port, messages)
        return _timed_relay(tools, sink, instance.port, messages)
    finally:
        instance.stop()
