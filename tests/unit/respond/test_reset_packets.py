"""The RSTs `--reset` builds: addresses, ports, sequence numbers, checksums.

Connections are real ones to the stream stage (frames built with scapy, an
independent builder, decoded and reassembled); the RSTs are parsed back with
scapy, which recomputes every checksum. IPv4 and IPv6 alike. No socket is
opened: sending is the live test's part (tests/integration/test_reset.py).
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.layers.l2 import Dot1Q, Ether

from pakemon.decode import decode_frame
from pakemon.respond.reset import Resetter
from pakemon.respond.reset import frame_ack as _frame_ack
from pakemon.stream.tcp import StreamConfig, TcpReassembler

ADDRS = {4: ("192.0.2.10", "192.0.2.80"), 6: ("2001:db8::10", "2001:db8::80")}
CISN, SISN = 0xFFFFFF00, 7000  # the client's data wraps past 2**32
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def ip(v, src, dst):
    return IP(src=src, dst=dst) if v == 4 else IPv6(src=src, dst=dst)


class Conn:
    """A client (port 40000) and a server (port 80) through one reassembler."""

    def __init__(self, v):
        self.v = v
        self.c, self.s = ADDRS[v]
        self.r = TcpReassembler(StreamConfig(policy="linux-current", checksum="on"), None, None)
        self.ts = 0.0

    def frame(self, from_client, seq, ack, flags, data=b"", window=1000, ext=None):
        a, b = (self.c, self.s) if from_client else (self.s, self.c)
        sp, dp = (40000, 80) if from_client else (80, 40000)
        l3 = ip(self.v, a, b) if ext is None else ip(self.v, a, b) / ext
        return bytes(ETH / l3 / TCP(sport=sp, dport=dp, seq=seq, ack=ack, flags=flags,
                                        window=window) / data)

    def feed(self, f):
        self.ts += 0.001
        return self.r.feed(decode_frame(1, f, self.ts))

    def direction(self, from_client=True):
        (s,) = self.r._sessions
        return s.client if from_client else s.server


def opened(v):
    c = Conn(v)
    c.feed(c.frame(True, CISN, 0, "S"))
    c.feed(c.frame(False, SISN, CISN + 1, "SA"))
    c.feed(c.frame(True, CISN + 1, SISN + 1, "A"))
    c.feed(c.frame(True, CISN + 1, SISN + 1, "PA", b"x" * 300))  # past 2**32
    c.feed(c.frame(False, SISN + 1, (CISN + 301) & 0xFFFFFFFF, "PA", b"y" * 40))
    return c


def frame_ack(frame, d):
    """What the sensor does: the alerting frame decoded, then read."""
    return _frame_ack(decode_frame(1, frame, 0.0), d)


def resetter():
    return Resetter.__new__(Resetter)  # packets() needs no socket


def parse(v, pkt):
    """(IP layer, TCP layer, checksums right): scapy recomputes them from scratch."""
    cls = IP if v == 4 else IPv6
    p = cls(pkt)
    fresh = p.copy()
    del fresh[TCP].chksum
    if v == 4:
        del fresh.chksum
    again = cls(bytes(fresh))
    return p, p[TCP], again[TCP].chksum == p[TCP].chksum and (v == 6 or again.chksum == p.chksum)


@pytest.mark.parametrize("v", [4, 6])
def test_each_end_gets_a_rst_at_exactly_its_next_expected_sequence(v):
    c = opened(v)
    d = c.direction(True)
    out = resetter().packets(d)
    assert [dst for dst, _ in out] == [c.s, c.c]
    (to_srv_dst, to_srv), (to_cli_dst, to_cli) = out
    p, t, ok = parse(v, to_srv)
    assert ok and p.src == c.c and p.dst == c.s
    assert (t.sport, t.dport, t.flags, t.seq) == (40000, 80, "R", (CISN + 301) & 0xFFFFFFFF)
    p, t, ok = parse(v, to_cli)
    assert ok and p.src == c.s and p.dst == c.c
    assert (t.sport, t.dport, t.flags, t.seq) == (80, 40000, "R", SISN + 41)
    if v == 6:
        assert p.nh == 6 and p.plen == len(t) and p.hlim == 64


@pytest.mark.parametrize("v", [4, 6])
def test_the_alerting_segments_ack_and_window_add_a_rst_inside_the_clients_window(v):
    c = opened(v)
    d = c.direction(True)
    f = c.frame(True, (CISN + 301) & 0xFFFFFFFF, SISN + 41 + 500, "PA", b"z", window=2000)
    seen = frame_ack(f, d)
    assert seen == (SISN + 541, 2000)  # the handshake had no window scale
    out = resetter().packets(d, *seen)
    seqs = [parse(v, pkt)[1].seq for _, pkt in out]
    # the ACK is later than what the sensor saw of the server: it wins
    assert seqs == [(CISN + 301) & 0xFFFFFFFF, SISN + 541, SISN + 541 + 1000]
    assert all(parse(v, pkt)[2] for _, pkt in out)


@pytest.mark.parametrize("v", [4, 6])
def test_frame_ack_reads_only_the_directions_own_unfragmented_segment(v):
    c = opened(v)
    d = c.direction(True)
    seq = (CISN + 301) & 0xFFFFFFFF
    assert frame_ack(c.frame(False, SISN + 41, seq, "A"), d) is None  # the peer's
    assert frame_ack(c.frame(True, seq, SISN + 41, "R"), d) is None  # no ACK flag
    plain = c.frame(True, seq, SISN + 41, "A")
    tagged = bytes(ETH / Dot1Q(vlan=7) / Dot1Q(vlan=8, type=0x0800 if v == 4 else 0x86DD))
    tagged = tagged[:12] + b"\x88\xa8" + tagged[14:] + plain[14:]  # QinQ
    assert frame_ack(tagged, d) == (SISN + 41, 1000)
    if v == 4:
        frag = bytes(ETH / IP(src=c.c, dst=c.s, proto=6, frag=4, flags="MF") / (b"\0" * 20))
        assert frame_ack(frag, d) is None
    else:
        ext = IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()
        assert frame_ack(c.frame(True, seq, SISN + 41, "A", ext=ext), d) == (SISN + 41, 1000)
        frag = c.frame(True, seq, SISN + 41, "A", ext=IPv6ExtHdrFragment(offset=0, m=1))
        assert frame_ack(frag, d) is None
        # an atomic fragment is a whole packet (RFC 6946; Linux reads it so)
        atomic = c.frame(True, seq, SISN + 41, "A", ext=IPv6ExtHdrFragment(offset=0, m=0))
        assert frame_ack(atomic, d) == (SISN + 41, 1000)
    assert _frame_ack(None, d) is None  # a frame the decoder refused


def test_a_connection_the_stack_cannot_reach_is_counted_not_sent():
    r = resetter()
    r.skipped = r.sent = r.errors = r.connections = 0
    r._sock, r._sock6 = object(), None  # a kernel without IPv6
    d = opened(6).direction(True)
    assert r.reset(d) is False
    assert (r.skipped, r.sent, r.connections) == (1, 0, 0)
    assert r.reset(None) is False and r.skipped == 2
