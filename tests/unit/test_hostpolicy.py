"""--host-policy: address blocks to target policies, most specific wins."""

import socket

import pytest
from helpers import rules_from

from pakemon.config import Config
from pakemon.hostpolicy import HostPolicy, HostPolicyError
from pakemon.lab.traffic import ether, ipv4
from pakemon.pipeline import Pipeline


def a4(text):
    return socket.inet_aton(text)


def test_most_specific_block_wins_and_bare_addresses_are_hosts():
    hp = HostPolicy.parse("# hosts\n10.0.0.0/8 windows\n10.1.0.0/16 bsd  # lab\n"
                          "10.1.2.3 linux\n2001:db8::/32 solaris\n2001:db8::7 macos\n")
    assert hp.lookup(a4("10.9.9.9")) == "windows"
    assert hp.lookup(a4("10.1.9.9")) == "bsd"
    assert hp.lookup(a4("10.1.2.3")) == "linux"
    assert hp.lookup(a4("192.0.2.1")) is None
    assert hp.lookup(socket.inet_pton(socket.AF_INET6, "2001:db8::1")) == "solaris"
    assert hp.lookup(socket.inet_pton(socket.AF_INET6, "2001:db8::7")) == "macos"


def test_a_name_selects_defrag_and_stream_policies_as_suricata_maps_them():
    hp = HostPolicy.parse("10.0.0.1 vista\n10.0.0.2 hpux10\n10.0.0.3 bsd-right\n")
    assert (hp.defrag_policy(a4("10.0.0.1"), "x"), hp.stream_policy(a4("10.0.0.1"), "x")) == (
        "windows", "vista")
    assert (hp.defrag_policy(a4("10.0.0.2"), "x"), hp.stream_policy(a4("10.0.0.2"), "x")) == (
        "bsd", "hpux10")
    assert (hp.defrag_policy(a4("10.0.0.3"), "x"), hp.stream_policy(a4("10.0.0.3"), "x")) == (
        "bsd-right", "bsd")
    assert hp.defrag_policy(a4("10.0.0.9"), "linux-current") == "linux-current"


def test_errors_name_file_line_and_column():
    with pytest.raises(HostPolicyError) as e:
        HostPolicy.parse("10.0.0.0/8 windows\n10.0.0.0/33 bsd\n  10.1.0.0/16 plan9\nfoo\n",
                         "hosts.txt")
    errs = e.value.errors
    assert errs[0].startswith("hosts.txt:2:1: bad address block '10.0.0.0/33'")
    assert errs[1].startswith("hosts.txt:3:15: unknown policy 'plan9'")
    assert errs[2] == "hosts.txt:4:1: expected 'CIDR POLICY'"


def _overlap_frags(dst, ident):
    """Two UDP fragments overlapping on bytes 8..16 with different data."""
    udp = b"\x13\x88\x27\x0f\x00\x20\x00\x00"  # 5000 -> 9999, length 32, no checksum
    first = udp + b"A" * 16  # bytes 0..24
    second = b"B" * 16  # bytes 16..32: overlaps 16..24
    return [
        (0.0, ether(ipv4("10.9.0.1", dst, 17, first, ident=ident, df=False, mf=True))),
        (0.1, ether(ipv4("10.9.0.1", dst, 17, second, ident=ident, df=False, frag_offset=16))),
    ]


def test_each_destination_is_reassembled_by_its_own_policy():
    hp = HostPolicy.parse("10.0.0.1 first\n10.0.0.2 last\n10.0.0.3 linux-current\n")
    pipe = Pipeline(rules_from('U udp * 9999 "zzzz"\n'), Config(host_policy=hp), record=True)
    for i, dst in enumerate(["10.0.0.1", "10.0.0.2", "10.0.0.3"]):
        for ts, f in _overlap_frags(dst, 100 + i):
            pipe.feed(ts, f)
    got = {d[2]: d[5] for d in pipe.recorded_datagrams}
    assert got["10.0.0.1"] == b"A" * 16 + b"B" * 8  # first: held bytes win
    assert got["10.0.0.2"] == b"A" * 8 + b"B" * 16  # last: new bytes win
    assert "10.0.0.3" not in got  # linux-current: a partial overlap kills the datagram
