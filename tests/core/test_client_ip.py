"""Whose address a hit is recorded with: X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import pytest

from mailpass.config import Settings
from mailpass.core.client_ip import client_address, parse_networks

TRUSTED = parse_networks("10.0.0.1, 10.1.0.0/16, fd00::/8")


def test_without_a_trusted_peer_the_header_is_ignored():
    assert client_address("203.0.113.9", ["198.51.100.7"], TRUSTED) == "203.0.113.9"
    assert client_address("203.0.113.9", ["198.51.100.7"], ()) == "203.0.113.9"


def test_a_trusted_peer_names_the_client():
    assert client_address("10.0.0.1", ["198.51.100.7"], TRUSTED) == "198.51.100.7"
    assert client_address("fd00::5", ["2001:db8::1"], TRUSTED) == "2001:db8::1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right():
    # client -> 10.1.2.3 (trusted) -> 10.0.0.1 (trusted, our peer)
    assert client_address("10.0.0.1", ["198.51.100.7, 10.1.2.3"], TRUSTED) == "198.51.100.7"
    # Several headers count as one list.
    assert client_address("10.0.0.1", ["198.51.100.7", "10.1.2.3"], TRUSTED) == "198.51.100.7"


def test_what_the_client_wrote_itself_is_not_believed():
    # The client sent "X-Forwarded-For: 1.2.3.4"; our proxy appended the real address.
    assert client_address("10.0.0.1", ["1.2.3.4, 198.51.100.7"], TRUSTED) == "198.51.100.7"


def test_a_malformed_entry_ends_the_walk():
    assert client_address("10.0.0.1", ["198.51.100.7, <script>"], TRUSTED) == "10.0.0.1"
    assert client_address("10.0.0.1", [""], TRUSTED) == "10.0.0.1"


def test_ipv4_mapped_peers_are_recognised():
    assert client_address("::ffff:10.0.0.1", ["198.51.100.7"], TRUSTED) == "198.51.100.7"


def test_settings_refuse_a_bad_proxy_entry():
    with pytest.raises(ValueError, match=r"'proxy\.internal' is not an IP address"):
        Settings(trusted_proxies="10.0.0.1, proxy.internal")
    assert Settings(trusted_proxies=" 10.0.0.1 ,10.1.0.0/16 ").trusted_proxy_networks == TRUSTED[:2]
