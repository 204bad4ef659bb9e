"""The outbound address policy, address by address."""

from __future__ import annotations

import ipaddress

import pytest

from runnel.engine.signals import NodeFailure
from runnel.nodes._netguard import check_target, forbidden_reason, host_allowed, normalize_host


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("fec0::1", "private"),  # deprecated site-local: Python does not call it private
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "shared address space"),
        ("192.0.2.1", "private"),  # documentation range
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
    ],
)
def test_internal_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_host_allowed_matches_exact_names_and_star() -> None:
    assert host_allowed("Example.ORG.", ["example.org"])
    assert host_allowed("::1", ["[::1]"])
    assert host_allowed("anything", ["*"])
    assert not host_allowed("api.example.org", ["example.org"])  # no implicit subdomains
    assert not host_allowed("example.org", [])
    assert normalize_host(" [FE80::1] ") == "fe80::1"
    assert host_allowed("xn--mnchen-3ya.de", ["München.de"])


async def test_an_allowed_host_is_not_even_resolved() -> None:
    # Would fail to resolve; allowed hosts skip the check entirely.
    await check_target("no-such-host.invalid", 80, ["no-such-host.invalid"])


async def test_check_target_names_host_and_address() -> None:
    with pytest.raises(NodeFailure) as info:
        await check_target("10.9.8.7", 443, [])
    assert info.value.kind == "forbidden_target"
    assert info.value.message.startswith("refusing to connect to 10.9.8.7: private address;")
    assert info.value.details == {"host": "10.9.8.7", "address": "10.9.8.7", "reason": "private"}
