"""Truncated records and the live loop's bookkeeping, without a kernel (no root).

The kernel sensor pushes the reverse direction of a TCP service cut after
its TCP header, and anything longer than --snaplen cut there; each record
carries the frame's wire length. decode_frame(wire_len=...) must check
length fields against the wire, hand on only captured bytes, and mark the
packet truncated; the stream stage must keep following a connection whose
other side arrives as headers only. LiveSession (pakemon/sensor.py) turns
StreamBypass into kernel bypass entries and alerts into block entries.
"""

from __future__ import annotations

import random
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pakemon.abi import EVF
from pakemon.capture.perf_reader import PerfRecord
from pakemon.config import Config, StreamConfig
from pakemon.decode import DecodeError, decode_frame
from pakemon.decode.decoder import checksum
from pakemon.detect.rule_parser import parse_rules
from pakemon.events import Alert, NoticeKind
from pakemon.lab.traffic import TcpConnection, http_exchange, udp_frame
from pakemon.pipeline import Pipeline
from pakemon.sensor import LiveSession

C, S = "198.51.100.1", "198.51.100.2"


def _hdr_len(frame: bytes) -> int:
    """Bytes up to the end of the TCP header (what the kernel keeps)."""
    ihl = (frame[14] & 15) * 4
    doff = (frame[14 + ihl + 12] >> 4) * 4
    return 14 + ihl + doff


# ---- decode_frame(wire_len) ------------------------------------------------

def test_header_only_tcp_keeps_header_fields_and_no_payload():
    whole = bytes(Ether() / IP(src=C, dst=S) / TCP(sport=80, dport=40000, seq=1000, ack=77,
                                                   flags="PA", window=501) / Raw(b"x" * 900))
    cut = whole[:_hdr_len(whole)]
    with pytest.raises(DecodeError) as e:
        decode_frame(1, cut)  # without the wire length: IP length past the frame
    assert e.value.kind is NoticeKind.DECODE_IPV4_BAD_LEN
    pkt = decode_frame(1, cut, 1.0, wire_len=len(whole))
    assert pkt.truncated and pkt.l4
    assert (pkt.sport, pkt.dport, pkt.seq, pkt.ack, pkt.window) == (80, 40000, 1000, 77, 501)
    assert pkt.flags == 0x18
    assert pkt.payload == b"" and pkt.ip_payload == cut[34:]
    # the same frame whole, given its own length, is not truncated
    full = decode_frame(1, whole, wire_len=len(whole))
    assert not full.truncated and full.payload == b"x" * 900


def test_snaplen_cut_udp_gets_the_captured_payload_only():
    whole = bytes(Ether() / IP(src=C, dst=S) / UDP(sport=5, dport=31337) / Raw(b"a" * 400))
    pkt = decode_frame(1, whole[:200], wire_len=len(whole))
    assert pkt.truncated and pkt.l4 and pkt.dport == 31337
    assert pkt.payload == b"a" * (200 - 42)


def test_ipv6_header_only_and_a_header_cut_by_the_capture():
    whole = bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2")
                  / TCP(sport=80, dport=40001, flags="A", seq=5) / Raw(b"y" * 300))
    pkt = decode_frame(1, whole[:14 + 40 + 20], wire_len=len(whole))
    assert pkt.truncated and pkt.l4 and pkt.seq == 5 and pkt.payload == b""
    with pytest.raises(DecodeError) as e:
        decode_frame(1, whole[:14 + 40 + 10], wire_len=len(whole))
    assert e.value.kind is NoticeKind.DECODE_TCP_TRUNCATED
    with pytest.raises(DecodeError) as e:  # IPv4 header itself cut
        decode_frame(1, bytes(Ether() / IP(src=C, dst=S, options=b"\x01" * 8)
                              / TCP())[:14 + 24], wire_len=100)
    assert e.value.kind is NoticeKind.DECODE_IPV4_TRUNCATED


def test_length_checks_still_apply_against_the_wire_length():
    whole = bytes(Ether() / IP(src=C, dst=S) / TCP(sport=80, dport=40000) / Raw(b"z" * 100))
    # an IP total length past even the wire length is still malformed
    with pytest.raises(DecodeError) as e:
        decode_frame(1, whole[:54], wire_len=len(whole) - 50)
    assert e.value.kind is NoticeKind.DECODE_IPV4_BAD_LEN
    # a wire length not above the captured bytes changes nothing
    assert not decode_frame(1, whole, wire_len=10).truncated


def test_only_ethernet_padding_cut_is_not_truncation():
    f = bytes(Ether() / IP(src=C, dst=S) / TCP(sport=80, dport=40000, flags="A"))
    assert len(f) == 54
    pkt = decode_frame(1, f, wire_len=60)  # the wire frame was padded to 60
    assert not pkt.truncated and pkt.l4


# ---- the pipeline with header-only reverse directions ----------------------

RULES = 'phf tcp * 80 "/cgi-bin/phf"\nbo udp * 31337 *\n'


def _kernel_view(frames):
    """What the kernel pushes for RULES: client->server whole, server->client
    (source port 80) cut after the TCP header: (ts, frame, wire_len)."""
    out = []
    for ts, f in frames:
        sport = int.from_bytes(f[34:36], "big")
        out.append((ts, f[:_hdr_len(f)] if sport == 80 else f, len(f)))
    return out


def _feed(pipe, recs):
    events = []
    for ts, frame, wire in recs:
        events += pipe.feed(ts, frame, 1, wire)
    return events + pipe.flush()


def test_header_only_server_side_gives_the_same_alerts_and_closes_the_session():
    random.seed(7)
    frames = []
    for i, req in enumerate([b"GET /index.html HTTP/1.0\r\n\r\n",
                             b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n",
                             b"GET /cgi-bin/p", ]):
        frames += http_exchange(C, S, 40000 + i, req, b"<html>" + b"b" * 3000 + b"</html>",
                                ts=10.0 + i, segment=9)
    rules = parse_rules(RULES, "t.rules").rules
    full = Pipeline(rules)
    live = Pipeline(rules)
    want = _feed(full, [(ts, f, None) for ts, f in frames])
    got = _feed(live, _kernel_view(frames))
    key = lambda ev: (ev.rule.name, ev.src_ip, ev.src_port, ev.dst_port)  # noqa: E731
    assert [key(a) for a in got if isinstance(a, Alert)] == \
        [key(a) for a in want if isinstance(a, Alert)] == [("phf", C, 40001, 80)]
    assert not [ev for ev in got if not isinstance(ev, Alert)]  # no notice either
    lc, fc = live.tcp.counters(), full.tcp.counters()
    # the client's bytes all delivered; the server's payload never seen as data
    assert lc["delivered_bytes"] == fc["delivered_bytes"] == sum(
        len(r) for r in (b"GET /index.html HTTP/1.0\r\n\r\n",
                         b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n", b"GET /cgi-bin/p"))
    assert lc["bad_checksum"] == 0 and lc["out_of_window"] == 0
    assert lc["sessions"] == 3 and lc["sessions_active"] == 0


class FakeSensor:
    def __init__(self):
        self.calls = []

    def bypass_flow(self, *flow, both=True):
        self.calls.append(("bypass", flow, both))

    def block_flow(self, *flow, both=True):
        self.calls.append(("block", flow, both))


class FakeLogs:
    """LogSet stand-in: the events written, and how often it was flushed."""

    def __init__(self):
        self.events = []
        self.flushes = 0

    def write_many(self, events, lazy=False):
        self.events += events
        self.flushes += not lazy

    def flush(self):
        self.flushes += 1


def _records(frames, flags=EVF.FORWARD, cut=None):
    return [PerfRecord(ts, f[:cut] if cut else f, len(f), flags, 1, 0) for ts, f in frames]


def test_stream_depth_makes_one_bypass_request_for_both_directions():
    random.seed(8)
    conn = TcpConnection(C, S, 41000, 80, ts=5.0).open()
    conn.send(b"POST /upload HTTP/1.0\r\n\r\n" + b"q" * 5000)
    conn.send(b"HTTP/1.0 200 OK\r\n\r\n", from_client=False)
    frames = conn.close()
    pipe = Pipeline(parse_rules(RULES, "t.rules").rules,
                    Config(stream=StreamConfig(depth=1024)))
    sensor, logs = FakeSensor(), FakeLogs()
    sess = LiveSession(sensor, pipe, logs, show=False)
    sess.handle(_records(frames))
    assert pipe.stats.bypassed == 1
    assert sensor.calls == [("bypass", (bytes([198, 51, 100, 1]), bytes([198, 51, 100, 2]),
                                        41000, 80, 6), True)]
    assert sess.flows_bypassed == 1 and pipe.bypass_requests == []


def test_a_vlan_flow_past_its_depth_is_not_bypassed_in_the_kernel():
    """The kernel's bypass key has no VLAN: a tagged decoy flow sent past
    the depth must not put the plain connection of its addresses and ports
    in the bypass map."""
    random.seed(8)
    conn = TcpConnection(C, S, 41000, 80, ts=5.0).open()
    conn.send(b"POST /upload HTTP/1.0\r\n\r\n" + b"q" * 5000)
    frames = [(ts, f[:12] + b"\x81\x00\x00\x05" + f[12:]) for ts, f in conn.close()]
    pipe = Pipeline(parse_rules(RULES, "t.rules").rules,
                    Config(stream=StreamConfig(depth=1024)))
    sensor = FakeSensor()
    sess = LiveSession(sensor, pipe, FakeLogs(), show=False)
    sess.handle(_records(frames))
    assert pipe.stats.bypassed == 1 and sensor.calls == []


def test_bypass_waits_while_the_other_direction_is_still_inspected():
    random.seed(9)
    rules = parse_rules('a tcp * 80 "zzz"\nb tcp 80 * "yyy"\n', "t.rules").rules
    conn = TcpConnection(C, S, 41001, 80, ts=5.0).open()
    conn.send(b"c" * 3000)
    frames = list(conn.frames)
    pipe = Pipeline(rules, Config(stream=StreamConfig(depth=1024)))
    sensor = FakeSensor()
    sess = LiveSession(sensor, pipe, FakeLogs(), show=False)
    sess.handle(_records(frames))
    assert pipe.stats.bypassed == 1 and sensor.calls == []  # the server side is inspected
    n = len(conn.frames)
    conn.send(b"s" * 3000, from_client=False)
    sess.handle(_records(conn.frames[n:]))
    assert pipe.stats.bypassed == 2
    assert [c[0] for c in sensor.calls] == ["bypass"]


def test_block_marks_the_alerting_flow_once_and_snaplen_cuts_are_counted():
    frames = [(1.0, udp_frame(C, S, 5000, 31337, b"x" * 300)),
              (1.1, udp_frame(C, S, 5000, 31337, b"x" * 300))]
    pipe = Pipeline(parse_rules(RULES, "t.rules").rules)
    sensor, logs = FakeSensor(), FakeLogs()
    sess = LiveSession(sensor, pipe, logs, block=True, show=False)
    sess.handle(_records(frames, EVF.FORWARD | EVF.ANY_PORT | EVF.SNAPLEN, cut=200))
    assert [type(e).__name__ for e in logs.events] == ["Alert"]
    assert logs.flushes == 1  # once for the batch, after its events
    assert sensor.calls == [("block", (C, S, 5000, 31337, 17), True)]
    assert sess.truncated_frames == 2 and sess.truncated_bytes == 2 * (len(frames[0][1]) - 200)
    # header-only records miss no inspected byte: not counted
    sess.handle(_records(frames, EVF.REVERSE | EVF.HDR_ONLY | EVF.SNAPLEN, cut=42))
    assert sess.truncated_frames == 2


# ---- --reset: which connection a TCP alert names ---------------------------

class RecordingResetter:
    """Resetter stand-in: the directions it was asked to reset."""

    def __init__(self):
        self.calls = []
        self.skipped = 0

    def reset(self, d, seen=None):
        self.calls.append((d, seen))
        return True


def _attack(sport, ts):
    conn = TcpConnection(C, S, sport, 80, ts=ts).open()
    conn.send(b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n")
    return conn.frames


def _reset_session():
    pipe = Pipeline(parse_rules('phf tcp * 80 "/cgi-bin/phf"\n', "t.rules").rules)
    rs, logs = RecordingResetter(), FakeLogs()
    return LiveSession(FakeSensor(), pipe, logs, show=False, resetter=rs), rs, logs


def test_reset_finds_a_vlan_connection_by_the_alerting_frames_tags():
    """The alert names addresses and ports only; a benign plain connection
    with the same ones is open too. The tagged one is reset, not the plain."""
    random.seed(11)
    plain = TcpConnection(C, S, 41010, 80, ts=1.0).open()
    plain.send(b"GET /index.html HTTP/1.0\r\n")
    tagged = [(ts, f[:12] + b"\x88\xa8\x00\x07\x81\x00\x00\x05" + f[12:])  # QinQ 7, 5
              for ts, f in _attack(41010, 2.0)]
    sess, rs, logs = _reset_session()
    sess.handle(_records(list(plain.frames) + tagged))
    alerts = [e for e in logs.events if isinstance(e, Alert)]
    assert alerts and all(a.action == "blocked" for a in alerts)
    assert len(rs.calls) == 1 and rs.skipped == 0
    d, seen = rs.calls[0]
    assert d.key[4:] == ((7, 5),) and d.sport == 41010 and d.dst == bytes([198, 51, 100, 2])
    assert seen is not None  # the tagged frame's ACK was read through both tags


def test_reset_leaves_a_tunnels_connection_alone_and_counts_it():
    """Inside GRE the stack would send a plain RST to the inner addresses,
    outside the tunnel: not reset, counted skipped, the alert stays allowed."""
    random.seed(12)
    outer = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0, 64, 47, 0,
                        bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))
    gre = []
    for ts, f in _attack(41011, 3.0):
        inner = f[14:]
        hdr = bytearray(outer)
        struct.pack_into("!H", hdr, 2, 20 + 4 + len(inner))
        struct.pack_into("!H", hdr, 10, checksum(bytes(hdr)))
        gre.append((ts, f[:14] + bytes(hdr) + b"\x00\x00\x08\x00" + inner))
    sess, rs, logs = _reset_session()
    sess.handle(_records(gre))
    alerts = [e for e in logs.events if isinstance(e, Alert)]
    assert alerts and all(a.action == "allowed" for a in alerts)
    assert rs.calls == [] and rs.skipped == len(alerts)
