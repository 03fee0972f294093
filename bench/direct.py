"""Direct delivery (issue 29): messages to 100 recipient domains whose MX hosts are local
``smtp-sink`` processes on 127.0.1.1-4, port 25, named by a DNS server of the bench's own
(``bench.dns``). MailPass's ``direct`` provider (the sending domain added, its DKIM record and
SPF published in that DNS, verified; every message DKIM-signed) against Postfix delivering the
same messages to the same MX hosts through the same DNS server: Postfix reads its resolver from
/etc/resolv.conf alone, so it runs in a mount namespace where that file names the bench's.

Both are timed from a full queue until the sinks have every message: MailPass's messages are
queued through ``/send-batch`` with no worker running, and the clock starts with ``mailpass
worker`` (its start-up included); Postfix's are injected by ``smtp-source`` while
``defer_transports = smtp`` holds them, and the clock starts when ``postqueue -f`` lets them go.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.dns import DnsServer
from bench.instance import ACCOUNT, BatchPoster, MailPassInstance, summarize
from bench.payloads import direct_batch_body
from bench.processes import BenchError, ManagedProcess, free_port, run_checked
from bench.sink import SmtpSink
from bench.smtp import PAYLOAD_BYTES, PostfixInstance
from bench.tools import Tools

__all__ = ["DOMAINS", "DirectFigures", "measure_direct"]

DOMAINS = 100
MX_ADDRESSES = ("127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4")
DNS_ADDRESS = "127.0.1.53"  # on port 53: a resolv.conf names no port
SMTP_PORT = 25  # where MX hosts are reached, by Postfix and by MailPass alike
RECORD_TTL = 3600  # seconds: resolvers may keep the answers for the whole run
SENDER_DOMAIN = "bench-sender.test"
SENDER = f"orders@{SENDER_DOMAIN}"
POSTFIX_INJECTORS = 8  # smtp-source processes filling Postfix's queue at once
POSTER_CONNECTIONS = 4
FIRST_NUMBER = 40_000_000  # message numbers apart from the other rows'
STALL_TIMEOUT = 120.0  # seconds without progress before the run fails
POLL_INTERVAL = 0.01  # seconds

MAIN_CF = """\
# A throwaway Postfix delivering to each recipient domain's MX hosts, as MailPass's direct
# provider does: Debian's defaults, its state in this directory, and its mail held in the
# queue until the run lets it go (defer_transports).
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
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
biff = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
defer_transports = smtp
"""


@dataclass
class DirectFigures:
    messages: int
    postfix_seconds: float = 0.0
    mailpass_seconds: dict[str, float] = field(default_factory=dict)  # by database
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)


class MxSinks:
    """The recipient domains' MX hosts: an ``smtp-sink`` on each of ``MX_ADDRESSES``, port 25."""

    def __init__(self, tools: Tools, workdir: Path) -> None:
        self.sinks: list[SmtpSink] = []
        try:
            for number, address in enumerate(MX_ADDRESSES):
                self.sinks.append(
                    SmtpSink(
                        tools.smtp_sink,
                        workdir,
                        host=address,
                        port=SMTP_PORT,
                        name=f"mx-sink-{number}",
                    )
                )
        except BaseException:
            self.stop()
            raise

    def received(self) -> int:
        return sum(sink.received() for sink in self.sinks)

    def wait_for(self, total: int, *, watch: list[ManagedProcess] | None = None) -> float:
        """The monotonic time the sinks had ``total`` messages between them."""
        last, progress = self.received(), time.monotonic()
        while True:
            count, now = self.received(), time.monotonic()
            if count >= total:
                return now
            if count != last:
                last, progress = count, now
            elif now - progress > STALL_TIMEOUT:
                raise BenchError(f"the MX sinks stalled at {count} of {total} messages")
            for process in watch or []:
                process.check_alive()
            time.sleep(POLL_INTERVAL)

    def stop(self) -> None:
        for sink in self.sinks:
            sink.stop()


def _zone() -> DnsServer:
    server = DnsServer(DNS_ADDRESS, 53, ttl=RECORD_TTL)
    for number in range(DOMAINS):
        host = f"mx{number % len(MX_ADDRESSES)}.bench.test"
        server.add(f"d{number}.bench.test", "MX", f"10 {host}.")
    for number, address in enumerate(MX_ADDRESSES):
        server.add(f"mx{number}.bench.test", "A", address)
    return server.start()


def _inject(tools: Tools, port: int, messages: int) -> None:
    """``messages`` into Postfix over SMTP, to the recipient domains in equal shares."""
    each = messages // DOMAINS

    def one(domain: int) -> None:
        run_checked(
            [
                tools.smtp_source,
                "-4",
                "-d",
                "-s",
                "2",
                "-m",
                str(each),
                "-l",
                str(PAYLOAD_BYTES),
                "-f",
                SENDER,
                "-t",
                f"customer@d{domain}.bench.test",
                f"127.0.0.1:{port}",
            ],
            timeout=STALL_TIMEOUT,
        )

    with ThreadPoolExecutor(POSTFIX_INJECTORS) as pool:
        for future in [pool.submit(one, domain) for domain in range(DOMAINS)]:
            future.result()


def _postfix_seconds(tools: Tools, sinks: MxSinks, root: Path, messages: int) -> float:
    resolv = root.parent / "resolv.conf"
    resolv.write_text(f"nameserver {DNS_ADDRESS}\noptions timeout:2 attempts:2\n")
    instance = PostfixInstance(tools, root, 0, free_port(), main_cf=MAIN_CF, resolv_conf=resolv)
    try:
        instance.start()
        _inject(tools, instance.port, messages)
        last, progress = -1, time.monotonic()
        while (held := instance.queued("deferred")) < messages:
            if held != last:
                last, progress = held, time.monotonic()
            elif time.monotonic() - progress > STALL_TIMEOUT:
                raise BenchError(f"Postfix's queue holds {held} of {messages} messages")
            time.sleep(0.1)
        base = sinks.received()
        instance.postconf("defer_transports =")
        instance.reload()
        started = time.monotonic()
        instance.flush()
        return sinks.wait_for(base + messages) - started
    finally:
        instance.stop()


def _publish(instance: MailPassInstance, zone: DnsServer) -> None:
    """Add the sending domain, publish what it asks for in the bench's DNS, verify it."""
    printed = instance.cli("domains", "add", "--user", ACCOUNT, SENDER_DOMAIN)
    for line in printed.splitlines():
        purpose, kind, name, value = ([*line.split("\t"), "", "", ""])[:4]
        if purpose in ("dkim", "spf") and kind == "TXT":
            zone.add(name, "TXT", value)
    instance.cli("domains", "verify", "--user", ACCOUNT, SENDER_DOMAIN)


def _mailpass_seconds(
    database: str,
    zone: DnsServer,
    sinks: MxSinks,
    workdir: Path,
    messages: int,
    *,
    postgres_url: str,
    worker_processes: int,
    figures: DirectFigures,
) -> float:
    instance = MailPassInstance(database, workdir, postgres_url=postgres_url)
    instance.env.update(
        {
            "MAILPASS_DNS_RESOLVER": DNS_ADDRESS,
            "MAILPASS_DIRECT_HELO": "mailpass.bench.example.com",
        }
    )
    processes: list[tuple[str, ManagedProcess]] = []
    try:
        instance.create_database()
        instance.cli("users", "create", ACCOUNT)
        _publish(instance, zone)
        instance.cli(
            "providers", "add", "--user", ACCOUNT, "--name", "own", "--kind", "direct", "--default"
        )
        key = instance.cli("keys", "create", "--user", ACCOUNT, "--permission", "mail")
        api, port = instance.serve("direct-api", worker=False)
        processes.append(("direct-api", api))
        poster = BatchPoster(
            port,
            key,
            connections=POSTER_CONNECTIONS,
            body=lambda first: direct_batch_body(first, SENDER, DOMAINS),
        )
        poster.post(messages, first=FIRST_NUMBER)
        base = sinks.received()
        started = time.monotonic()
        worker = instance.worker("direct-worker", processes=worker_processes)
        processes.append(("direct-worker", worker))
        finished = sinks.wait_for(base + messages, watch=[worker])
        # The sinks count a message at its DATA; its outcome may still be on its way to the
        # database: a stopped worker has written every one.
        processes.pop()
        figures.exit_codes[f"{database} direct-worker"] = worker.stop()
        counts = instance.status_counts()
        figures.status_counts[database] = counts
        if set(counts) - {"sent"}:
            raise BenchError(f"direct delivery on {database}: {summarize(counts)}")
        return finished - started
    finally:
        for name, process in reversed(processes):
            figures.exit_codes[f"{database} {name}"] = process.stop()
        instance.drop_database()


def measure_direct(
    tools: Tools,
    databases: list[str],
    workdir: Path,
    messages: int,
    *,
    postgres_url: str,
    worker_processes: dict[str, int],
) -> DirectFigures:
    if messages % DOMAINS:
        raise BenchError(f"direct delivery: {messages} messages do not split over {DOMAINS}")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    figures = DirectFigures(messages)
    zone = _zone()
    try:
        sinks = MxSinks(tools, workdir)
        try:
            figures.postfix_seconds = _postfix_seconds(tools, sinks, workdir / "postfix", messages)
            for database in databases:
                figures.mailpass_seconds[database] = _mailpass_seconds(
                    database,
                    zone,
                    sinks,
                    workdir / database,
                    messages,
                    postgres_url=postgres_url,
                    worker_processes=worker_processes[database],
                    figures=figures,
                )
        finally:
            sinks.stop()
    finally:
        zone.stop()
    return figures
