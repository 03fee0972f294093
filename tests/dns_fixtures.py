"""A real DNS server for the tests (``bench.dns.DnsServer``), on 127.0.0.1 over UDP and TCP,
serving a zone they edit.

    with LocalDns() as dns_server:
        dns_server.add("shop.test", "MX", "10 mx1.shop.test")
        dns_server.add("mx1.shop.test", "A", "127.0.0.2")
        settings = settings.model_copy(update={"dns_resolver": dns_server.address})
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.resolver
import pytest

# bench/dns.py by its path: ``bench`` on the tests' path is tests/bench, not the bench's package.
_SPEC = importlib.util.spec_from_file_location(
    "bench_dns", Path(__file__).resolve().parents[1] / "bench" / "dns.py"
)
assert _SPEC is not None
assert _SPEC.loader is not None
_BENCH_DNS = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_dns"] = _BENCH_DNS
_SPEC.loader.exec_module(_BENCH_DNS)
DnsServer = _BENCH_DNS.DnsServer
txt = _BENCH_DNS.txt

__all__ = ["LocalDns", "txt"]


class LocalDns(DnsServer):  # type: ignore[misc,valid-type]
    def lookup_txt(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the TXT record at ``name`` as this server serves it, asked
        over the network like any resolver would."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.use_edns(0, 0, 4096)
        qname = name.decode() if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(qname, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(next(iter(answer)).strings)


@pytest.fixture
def local_dns() -> Iterator[LocalDns]:
    with LocalDns() as server:
        yield server
