"""A DNS server of the bench's own (and the tests'): UDP and TCP on one address, answering from
a zone its owner edits, with dnspython reading each question and writing each answer.

Names the zone does not hold are NXDOMAIN; a name held with other types answers with no
records (NOERROR); ``failing`` names answer SERVFAIL, and ``silent`` ones nothing at all. The
direct delivery figure (``bench.direct``) serves its recipient domains' MX records with it, to
MailPass and to Postfix alike.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Self

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsServer", "txt"]

TXT_CHUNK = 255  # a TXT record's strings are at most this long


def txt(value: str) -> str:
    """``value`` as a TXT record's text: quoted, in strings of at most 255 characters."""
    chunks = [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]
    return " ".join('"' + chunk.replace('"', '\\"') + '"' for chunk in chunks)


class DnsServer:
    """A DNS server on ``address`` (port ``port``; 0: a free one), over UDP and TCP, answering
    from the zone its owner edits, each record with ``ttl``."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0, *, ttl: int = 0) -> None:
        self.ttl = ttl
        self.records: dict[tuple[str, str], list[str]] = {}
        self.failing: set[str] = set()
        self.silent: set[str] = set()
        self.questions: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((address, port))
        self.host = address
        self.port = self._udp.getsockname()[1]
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind((address, self.port))
        self._tcp.listen(16)
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True, name="dns-udp"),
            threading.Thread(target=self._serve_tcp, daemon=True, name="dns-tcp"),
        ]
        self._stopped = False

    @property
    def address(self) -> str:
        """As ``MAILPASS_DNS_RESOLVER`` takes it."""
        return f"{self.host}:{self.port}"

    # -- the zone ------------------------------------------------------------------------------

    def add(self, name: str, kind: str, *values: str) -> None:
        """Add records; TXT values are given as plain text (``txt`` quotes them)."""
        texts = [txt(value) if kind == "TXT" else value for value in values]
        with self._lock:
            self.records.setdefault((name.lower().rstrip("."), kind), []).extend(texts)

    def replace(self, name: str, kind: str, *values: str) -> None:
        self.remove(name, kind)
        self.add(name, kind, *values)

    def remove(self, name: str, kind: str) -> None:
        with self._lock:
            self.records.pop((name.lower().rstrip("."), kind), None)

    # -- answering -----------------------------------------------------------------------------

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            with self._lock:
                self.questions.append((name, kind))
                if name in self.silent:
                    return None
                if name in self.failing:
                    response.set_rcode(dns.rcode.SERVFAIL)
                    continue
                values = list(self.records.get((name, kind), []))
                known = any(held == name for held, _ in self.records)
            if values:
                response.answer.append(
                    dns.rrset.from_text(question.name, self.ttl, dns.rdataclass.IN, kind, *values)
                )
            elif not known:
                response.set_rcode(dns.rcode.NXDOMAIN)
        payload = query.payload if query.edns >= 0 else 512
        return response.to_wire(max_size=65535 if payload > 65535 else max(payload, 512))

    def _serve_udp(self) -> None:
        while not self._stopped:
            try:
                wire, client = self._udp.recvfrom(65535)
            except OSError:
                return
            try:
                reply = self.answer(wire)
            except dns.exception.TooBig:
                reply = None  # the client asks again over TCP
            except (dns.exception.DNSException, ValueError):
                reply = None  # a question it cannot parse: no answer, as a real server
            if reply is not None:
                self._udp.sendto(reply, client)

    def _serve_tcp(self) -> None:
        while not self._stopped:
            try:
                connection, _ = self._tcp.accept()
            except OSError:
                return
            with connection:
                try:
                    size = struct.unpack("!H", _read(connection, 2))[0]
                    reply = self.answer(_read(connection, size))
                except (OSError, ValueError, struct.error):
                    continue
                if reply is not None:
                    connection.sendall(struct.pack("!H", len(reply)) + reply)

    # -- running -------------------------------------------------------------------------------

    def start(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        for sock in (self._udp, self._tcp):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ValueError("the client went away")
        data += chunk
    return data
