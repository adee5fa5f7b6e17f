"""Capture filters (pakemon.capture.bpf): libpcap's compiler and interpreter
on real frames, per link type, and the errors a user sees."""

from __future__ import annotations

import pytest

from pakemon.capture.bpf import BpfError, BpfFilter
from pakemon.lab.traffic import dns_exchange, http_exchange, ping_exchange

HTTP = http_exchange("10.0.0.1", "10.0.0.2", 40000, b"GET / HTTP/1.0\r\n\r\n", b"hi")
DNS = dns_exchange("10.0.0.1", "10.0.0.3", 40001, "example.org")
PING = ping_exchange("10.0.0.1", "10.0.0.4", 7, 1)


def frames(exchange):
    return [f for _, f in exchange]


def test_filter_takes_what_tcpdump_would_and_counts_the_rest():
    f = BpfFilter("tcp port 80")
    assert all(f.match(1, x) for x in frames(HTTP))
    assert not any(f.match(1, x) for x in frames(DNS) + frames(PING))
    assert f.filtered == len(DNS) + len(PING)
    g = BpfFilter("icmp or (udp and dst host 10.0.0.3)")
    assert [g.match(1, x) for x in frames(DNS)] == [True, False]  # the query, not the answer
    assert all(g.match(1, x) for x in frames(PING))


def test_length_primitives_see_the_wire_length_when_given():
    f = BpfFilter("greater 1000")
    small = frames(HTTP)[0]
    assert not f.match(1, small)
    assert f.match(1, small, wire_len=1500)  # a frame cut by the capture's snaplen


def test_raw_ip_captures_get_a_program_of_their_own():
    f = BpfFilter("tcp port 80")
    raw = [x[14:] for x in frames(HTTP)]  # LINKTYPE_RAW (101): no Ethernet header
    assert all(f.match(101, x) for x in raw)
    e = BpfFilter("ether host 02:00:00:00:00:01")
    with pytest.raises(BpfError, match="link type 101"):
        e.match(101, raw[0])


@pytest.mark.parametrize("expr, says", [
    ("tcp port 8O", "unknown port"),
    ("tcp and", "syntax error"),
    ("host 999.1.1.1", "999.1.1.1"),
])
def test_a_bad_expression_is_refused_with_libpcap_s_reason(expr, says):
    with pytest.raises(BpfError, match=says) as e:
        BpfFilter(expr)
    assert expr in str(e.value)
