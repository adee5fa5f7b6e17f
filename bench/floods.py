#!/usr/bin/env python3
"""`make bench`: floods against `pakemon-xdp read`, one real attack in the middle of each.

Nine floods, each written as a pcap (streamed to disk, never held in
memory) and read by `pakemon-xdp read -q` as a child process:

  fragments    1,000,000 first fragments (MF set, offset 0) of distinct IPv4
               datagrams (random sources, id = frame number mod 65536) to
               port 80, never completed: the host's fragment memory
               (ipfrag_high_thresh, 4 MB) is full after about 4,000, and
               from then on it drops every fragment, as the sensor does.
  syns         1,000,000 SYNs from random sources and ports to port 80 that
               the server never answers: half-open sessions, max_sessions.
  connections  100,000 TCP connections to port 80 that complete the
               handshake, send a benign GET, are acknowledged and never close.
  segments     500,000 one-byte out-of-order segments in 200 connections:
               the stream memcap's case; the attack's request in two
               segments, the second sent first (out of order in the flood).
  acks         1,000,000 lone ACKs from random sources (half with data),
               each a midstream pickup; the attack's request cut in two.
  udp          1,000,000 UDP datagrams from random sources: DNS queries to
               53, portmap's port, random ports (a UDP scan from everyone).
  slowloris    40,000 connections that each leave a request unfinished and
               unacknowledged (1 KB of header lines, or 4.2 KB of blank
               lines): what the stages above the stream hold per session.
               Run it with a Suricata http rule too:
               ``-- --rules rules/pakemon.rules --rules bench/suricata-http.rules``.
  regex        20,000 full segments in 200 connections, each a
               ``GET /formmail?`` followed by ``recipient=`` repeated and
               never a separator: the bundled formmail rule's regex
               ``recipient=[^&\\s]*(;|...)`` has a start every 10 bytes, each
               running to the end of its 4 KB window (``re``: 18 ms a
               segment; a hyperscan stream, ruletree.RegexStream: each
               byte once).
  alerts       200,000 ICMP echo requests from random sources, each the
               TFN probe (``1234``) the bundled rules report: an alert a
               frame, what writing alerts costs. Every alert counted must
               be in eve.json (for every flood: none lost on the way).

In the middle of each flood one attack connection is interleaved (one frame
of it every ``ATTACK_GAP`` flood frames): a full handshake, then
``GET /cgi-bin/phf?Qalias=x HTTP/1.0`` to port 80, which the bundled rules
report as CGI-phf(CVE-1999-0067). In the fragment flood it is sent whole: the
flood blinds the host to fragments (a fragmented request then never reaches
it, and the sensor, modelling that, does not read one either: counted as
``host_memory_full``), not to whole segments. (``--pps`` low enough that the
incomplete datagrams time out before 4 MB of them pile up would leave room.)

Packet time runs at ``--pps`` frames per second (default 100,000: the whole
flood is inside every timeout, so the state held is the most the caps
allow). Per flood: generation time, wall time, frames/s, the child's peak
RSS (``os.wait4`` ru_maxrss), whether the attack alerted on its own
connection (eve.json), and the defrag/stream/scan counters of the summary.

Bound: peak RSS <= defrag memcap + stream memcap + 100 MB (196 MB with the
defaults), for every flood. Exit 1 if an attack is missed, the child exits
non-zero or prints a traceback, a flood frame was dropped for a bad
checksum (the generator would be wrong, the flood void), or a bound is
broken. Results are printed and appended to bench/out/floods.jsonl.

Frames are patched from templates with ``struct.pack_into``; both checksums
are finished from precomputed partial sums (RFC 1071: the one's complement
sum is additive, so the fixed part of a header is summed once).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable
sys.path.insert(0, str(ROOT))

from pakemon.lab.traffic import (ACK, CLIENT_MAC, PSH, SERVER_MAC, SYN,  # noqa: E402
                                 PcapWriter, TcpConnection, ether, icmp, ipv4, tcp, tcp_frame,
                                 udp)

MB = 1 << 20
SERVER = "10.80.0.80"
ATTACKER = "198.51.100.66"
ATTACK_PORT = 40666
ATTACK_REQUEST = b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n"
SIGNATURE = "CGI-phf(CVE-1999-0067)"
BENIGN_REQUEST = (b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n"
                  b"User-Agent: flood/1.0\r\nAccept: */*\r\n\r\n")
ATTACK_GAP = 50  # flood frames between two frames of the attack connection
T0_US = 1_700_000_000 * 1_000_000  # packet time of the first frame
SLACK_MB = 100  # the bound: memory caps + 100 MB
DEFAULT_DEFRAG_MEMCAP = 32 * MB  # pakemon.config.DefragConfig.memcap
DEFAULT_STREAM_MEMCAP = 64 * MB  # pakemon.config.StreamConfig.memcap

FLOODS = {  # name -> (count at scale 1.0, unit)
    "fragments": (1_000_000, "datagrams"),
    "syns": (1_000_000, "SYNs"),
    "connections": (100_000, "connections"),
    "segments": (500_000, "one-byte out-of-order segments"),
    "acks": (1_000_000, "lone ACKs (half with data)"),
    "udp": (1_000_000, "UDP datagrams"),
    "slowloris": (40_000, "connections with an unfinished request"),
    "regex": (20_000, "segments of formmail queries that never end"),
    "alerts": (200_000, "ICMP echoes that each alert"),
}

_U16 = struct.Struct("!H")
_TS = struct.Struct("=II")  # pcap record: ts_sec, ts_usec (native order, as PcapWriter)
_REC = struct.Struct("=IIII")
# frame offset 18: IPv4 id, flags/fragment, ttl, proto, checksum, src, dst,
# then TCP source port, destination port, seq, ack
_IP_TCP = struct.Struct("!HHBBHIIHHII")
_IP_SRC = struct.Struct("!HHBBHI")  # offset 18: id .. src
_IP_UDP = struct.Struct("!HHBBHIIHH")  # offset 18: id .. dst, then the ports


def _sum16(data: bytes) -> int:
    """One's complement sum of 16-bit words, not yet folded."""
    if len(data) & 1:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def _fold(s: int) -> int:
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ip(text: str) -> int:
    return struct.unpack("!I", socket.inet_aton(text))[0]


class TcpTemplate:
    """One Ethernet/IPv4/TCP frame shape (flags, options, payload) whose
    IP id, addresses, ports, seq and ack are patched per frame."""

    def __init__(self, flags: int, payload: bytes = b"", options: bytes = b"",
                 from_client: bool = True):
        seg = tcp("0.0.0.0", "0.0.0.0", 0, 0, 0, 0, flags, payload, options=options)
        seg = seg[:16] + b"\0\0" + seg[18:]
        ip = ipv4("0.0.0.0", "0.0.0.0", 6, seg)
        mac = (CLIENT_MAC, SERVER_MAC) if from_client else (SERVER_MAC, CLIENT_MAC)
        frame = ether(ip[:10] + b"\0\0" + ip[12:], src=mac[0], dst=mac[1])
        self.ip_sum = _sum16(frame[14:34])
        self.tcp_sum = _sum16(seg) + 6 + len(seg)  # + pseudo-header proto and length
        self.fragword, self.ttl = struct.unpack_from("!HB", frame, 20)
        self.rec = bytearray(_REC.pack(0, 0, len(frame), len(frame)) + frame)


class UdpTemplate:
    """One Ethernet/IPv4/UDP frame (payload fixed) whose IP id, addresses
    and ports are patched per frame."""

    def __init__(self, payload: bytes):
        seg = udp("0.0.0.0", "0.0.0.0", 0, 0, payload)
        seg = seg[:6] + b"\0\0" + seg[8:]
        ip = ipv4("0.0.0.0", "0.0.0.0", 17, seg)
        frame = ether(ip[:10] + b"\0\0" + ip[12:])
        self.ip_sum = _sum16(frame[14:34])
        self.udp_sum = _sum16(seg) + 17 + len(seg)
        self.fragword, self.ttl = struct.unpack_from("!HB", frame, 20)
        self.rec = bytearray(_REC.pack(0, 0, len(frame), len(frame)) + frame)


class IpTemplate:
    """An IPv4 packet to the server whose IP id and source are patched: a
    first fragment (MF, offset 0) by default, else a whole datagram whose
    transport checksum leaves the source out (ICMP)."""

    def __init__(self, payload: bytes, proto: int = 6, mf: bool = True):
        ip = ipv4("0.0.0.0", SERVER, proto, payload, df=False, mf=mf)
        frame = ether(ip[:10] + b"\0\0" + ip[12:])
        self.ip_sum = _sum16(frame[14:34])
        self.fragword, self.ttl = struct.unpack_from("!HB", frame, 20)
        self.proto = proto
        self.rec = bytearray(_REC.pack(0, 0, len(frame), len(frame)) + frame)


class Handshake:
    """The three frames that open a connection to port 80 (MSS on the SYNs)."""

    def __init__(self):
        mss = b"\x02\x04\x05\xb4"
        self.syn = TcpTemplate(SYN, options=mss)
        self.synack = TcpTemplate(SYN | ACK, options=mss, from_client=False)
        self.ack = TcpTemplate(ACK)

    @staticmethod
    def numbers(rnd, base: int, i: int) -> tuple[int, int, int, int, int]:
        """Connection ``i``'s client address and port, first data sequence
        numbers (client, server) and IP id."""
        cs1 = (rnd(32) + 1) & 0xFFFFFFFF
        ss1 = (rnd(32) + 1) & 0xFFFFFFFF
        return base + i, 32768 + (i * 7919) % 28232, cs1, ss1, i & 0xFFFF

    def connect(self, w, rnd, base: int, i: int, server: int, ack_delta: int = 1):
        """Connection ``i``'s numbers (``numbers``), its handshake written to
        ``w`` (the client's ACK with IP id ``ident + ack_delta``)."""
        c, cport, cs1, ss1, ident = self.numbers(rnd, base, i)
        self.emit(w, c, server, cport, cs1, ss1, ident, (ident + ack_delta) & 0xFFFF)
        return c, cport, cs1, ss1, ident

    def emit(self, w, c: int, server: int, cport: int, cs1: int, ss1: int, ident: int,
             ack_ident: int) -> None:
        w.tcp(self.syn, c, server, cport, 80, (cs1 - 1) & 0xFFFFFFFF, 0, ident)
        w.tcp(self.synack, server, c, 80, cport, (ss1 - 1) & 0xFFFFFFFF, cs1, ident)
        w.tcp(self.ack, c, server, cport, 80, cs1, ss1, ack_ident)


class FloodWriter:
    """A pcap of flood frames at ``pps`` frames per second of packet time,
    with the attack's frames interleaved from frame ``attack_at`` on."""

    def __init__(self, path, pps: float, attack_frames: list, attack_at: int,
                 gap: int = ATTACK_GAP):
        self.gap = gap  # flood frames between two frames of the attack
        self.w = PcapWriter(path)
        self.write = self.w.f.write
        self.step_us = max(1, round(1e6 / pps))
        self.t_us = T0_US
        self.frames = 0
        self.bytes = 0
        self.attack = list(attack_frames)
        self.next_attack = attack_at

    def tcp(self, t: TcpTemplate, src, dst, sport, dport, seq, ack, ident) -> None:
        a = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        rec = t.rec
        _IP_TCP.pack_into(rec, 34, ident, t.fragword, t.ttl, 6, _fold(t.ip_sum + a + ident),
                          src, dst, sport, dport, seq, ack)
        _U16.pack_into(rec, 66, _fold(t.tcp_sum + a + sport + dport + (seq >> 16)
                                      + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)))
        self._out(rec)

    def udp(self, t: UdpTemplate, src, dst, sport, dport, ident) -> None:
        a = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        rec = t.rec
        _IP_UDP.pack_into(rec, 34, ident, t.fragword, t.ttl, 17, _fold(t.ip_sum + a + ident),
                          src, dst, sport, dport)
        c = _fold(t.udp_sum + a + sport + dport)
        _U16.pack_into(rec, 56, c or 0xFFFF)  # 0 would mean "no checksum"
        self._out(rec)

    def ip(self, t: IpTemplate, src, ident) -> None:
        rec = t.rec
        _IP_SRC.pack_into(rec, 34, ident, t.fragword, t.ttl, t.proto,
                          _fold(t.ip_sum + (src >> 16) + (src & 0xFFFF) + ident), src)
        self._out(rec)

    def _out(self, rec) -> None:
        t = self.t_us
        _TS.pack_into(rec, 0, t // 1_000_000, t % 1_000_000)
        self.write(rec)
        self.t_us = t + self.step_us
        self.frames += 1
        self.bytes += len(rec) - 16
        if self.frames >= self.next_attack:
            self._attack_frame()

    def _attack_frame(self) -> None:
        if not self.attack:
            self.next_attack = 1 << 62
            return
        frame = self.attack.pop(0)
        self.w.write(self.t_us / 1e6, frame)
        self.t_us += self.step_us
        self.frames += 1
        self.bytes += len(frame)
        self.next_attack = self.frames + self.gap

    def close(self) -> None:
        while self.attack:  # a flood too short to carry it all
            self._attack_frame()
        self.w.close()


def attack_frames(fragmented: bool, split: bool = False,
                  reordered: bool = False) -> list[bytes]:
    """The attack connection: handshake, the phf request, its ACK, the close.
    ``fragmented``: the request segment as three IP fragments cut inside
    "/cgi-bin/phf" (24 + 16 + the rest bytes of the TCP segment); ``split``:
    the request as two segments cut inside it, each acknowledged;
    ``reordered``: as two segments cut inside it, the second sent first (it
    waits out of order, with the flood's, until the first comes)."""
    conn = TcpConnection(ATTACKER, SERVER, ATTACK_PORT, 80, cseq=0x1000, sseq=0x9000).open()
    if reordered:
        cut = 10
        for a, b in ((cut, len(ATTACK_REQUEST)), (0, cut)):
            conn.frames.append((0.0, tcp_frame(ATTACKER, SERVER, ATTACK_PORT, 80, conn.cseq + a,
                                               conn.sseq, PSH | ACK, ATTACK_REQUEST[a:b])))
        conn.cseq += len(ATTACK_REQUEST)
        conn.frames.append((0.0, tcp_frame(SERVER, ATTACKER, 80, ATTACK_PORT, conn.sseq,
                                           conn.cseq, ACK)))
    elif split:
        conn.send(ATTACK_REQUEST[:10])
        conn.send(ATTACK_REQUEST[10:])
    elif not fragmented:
        conn.send(ATTACK_REQUEST)
    else:
        seg = tcp(ATTACKER, SERVER, ATTACK_PORT, 80, conn.cseq, conn.sseq, PSH | ACK,
                  ATTACK_REQUEST)
        cuts = [0, 24, 40, len(seg)]
        for a, b in zip(cuts, cuts[1:]):
            conn.frames.append((0.0, ether(ipv4(ATTACKER, SERVER, 6, seg[a:b], ident=0xBEEF,
                                                df=False, frag_offset=a, mf=b < len(seg)))))
        conn.cseq += len(ATTACK_REQUEST)
        conn.frames.append((0.0, tcp_frame(SERVER, ATTACKER, 80, ATTACK_PORT, conn.sseq,
                                           conn.cseq, ACK)))
    return [f for _, f in conn.close()]


def _random_source(rnd) -> int:
    """A random unicast address in 1.0.0.0 - 219.255.255.255."""
    return 0x01000000 + rnd(32) % 0xDB000000


def _from_everyone(path, n: int, pps: float, seed: int, t: "IpTemplate") -> FloodWriter:
    """``n`` copies of ``t`` from random sources, IP id = frame number mod
    65536, the attack in the middle."""
    rnd = random.Random(seed).getrandbits
    w = FloodWriter(path, pps, attack_frames(False), n // 2)
    emit = w.ip
    for i in range(n):
        emit(t, _random_source(rnd), i & 0xFFFF)
    w.close()
    return w


def gen_fragments(path, n: int, pps: float, seed: int = 1) -> FloodWriter:
    # the first 64 bytes of a TCP segment to port 80 (header + request start)
    payload = tcp("0.0.0.0", SERVER, 1025, 80, 1, 1, PSH | ACK, BENIGN_REQUEST)[:64]
    return _from_everyone(path, n, pps, seed, IpTemplate(payload))


def gen_syns(path, n: int, pps: float, seed: int = 2) -> FloodWriter:
    rnd = random.Random(seed).getrandbits
    t = TcpTemplate(SYN, options=b"\x02\x04\x05\xb4")
    server = _ip(SERVER)
    w = FloodWriter(path, pps, attack_frames(False), n // 2)
    emit = w.tcp
    for _ in range(n):
        emit(t, _random_source(rnd), server, 1024 + rnd(16) % 64512, 80, rnd(32), 0, rnd(16))
    w.close()
    return w


CONN_FRAMES = 5  # SYN, SYN-ACK, ACK, GET, the server's ACK


def gen_connections(path, n: int, pps: float, seed: int = 3) -> FloodWriter:
    """``n`` connections from 10.1.0.1 + i, each: handshake, a benign GET
    acknowledged by the server, and nothing more."""
    rnd = random.Random(seed).getrandbits
    hs = Handshake()
    get = TcpTemplate(PSH | ACK, BENIGN_REQUEST)
    sack = TcpTemplate(ACK, from_client=False)
    server = _ip(SERVER)
    glen = len(BENIGN_REQUEST)
    w = FloodWriter(path, pps, attack_frames(False), n // 2 * CONN_FRAMES)
    emit = w.tcp
    base = _ip("10.1.0.1")
    for i in range(n):
        c, cport, cs1, ss1, ident = hs.connect(w, rnd, base, i, server)
        emit(get, c, server, cport, 80, cs1, ss1, (ident + 2) & 0xFFFF)
        emit(sack, server, c, 80, cport, ss1, (cs1 + glen) & 0xFFFFFFFF, (ident + 1) & 0xFFFF)
    w.close()
    return w


SEGS_PER_CONN = 2_500


def gen_segments(path, n: int, pps: float, seed: int = 4) -> FloodWriter:
    """``n`` one-byte segments out of order (every other byte, the first
    never sent, so nothing is ever read or coalesced), 2,500 per connection
    from 10.2.0.1 + i: each sits in the reassembly queue, with its packet.
    The attack's request comes in two segments, the second first: it waits
    out of order while the flood holds the memcap, so the memcap must take
    the flood's bytes, not the ones that just came."""
    rnd = random.Random(seed).getrandbits
    hs = Handshake()
    sack = TcpTemplate(ACK, from_client=False)
    one = TcpTemplate(PSH | ACK, b"x")
    server = _ip(SERVER)
    w = FloodWriter(path, pps, attack_frames(False, reordered=True), n // 2)
    emit = w.tcp
    base = _ip("10.2.0.1")
    for i in range(max(1, n // SEGS_PER_CONN)):
        c, cport, cs1, ss1, ident = hs.connect(w, rnd, base, i, server, ack_delta=0)
        emit(sack, server, c, 80, cport, ss1, cs1, ident)  # the server has all: 0
        for k in range(SEGS_PER_CONN):
            emit(one, c, server, cport, 80, (cs1 + 1 + 2 * k) & 0xFFFFFFFF, ss1,
                 (ident + k) & 0xFFFF)
    w.close()
    return w


def gen_acks(path, n: int, pps: float, seed: int = 5) -> FloodWriter:
    """``n`` lone ACKs from random sources and ports to the server (every
    other one carrying 20 bytes), no answer to any: each is a connection
    picked up midstream. The attack's request is cut in two and its frames
    spread over the flood, more than the session table holds between any
    two: a sensor that evicts the oldest session loses the attack's
    connection between its halves."""
    rnd = random.Random(seed).getrandbits
    ack = TcpTemplate(ACK)
    data = TcpTemplate(PSH | ACK, b"x" * 20)
    server = _ip(SERVER)
    frames = attack_frames(False, split=True)
    gap = max(ATTACK_GAP, n // (len(frames) + 1))
    w = FloodWriter(path, pps, frames, gap, gap)
    emit = w.tcp
    for i in range(n):
        emit(data if i & 1 else ack, _random_source(rnd), server, 1024 + rnd(16) % 64512, 80,
             rnd(32), rnd(32), rnd(16))
    w.close()
    return w


def gen_udp(path, n: int, pps: float, seed: int = 6) -> FloodWriter:
    """``n`` UDP datagrams from random sources and ports to the server: one
    in four to port 53 (a DNS query, which the DNS rules read), one in
    eight to 111 (portmap's rules), the rest to random ports (a UDP scan
    from every source, each one the scan detector tracks)."""
    rnd = random.Random(seed).getrandbits
    dns = UdpTemplate(bytes.fromhex("123401000001000000000000") + b"\x03www\x07example\x03com\0"
                      + b"\x00\x01\x00\x01")
    other = UdpTemplate(b"x" * 32)
    server = _ip(SERVER)
    w = FloodWriter(path, pps, attack_frames(False), n // 2)
    emit = w.udp
    for i in range(n):
        r = rnd(16)
        if r & 3 == 0:
            emit(dns, _random_source(rnd), server, 1024 + r % 64512, 53, i & 0xFFFF)
        elif r & 7 == 1:
            emit(other, _random_source(rnd), server, 1024 + r % 64512, 111, i & 0xFFFF)
        else:
            port = 1 + rnd(16) % 65535
            if port == 31337:  # BackOrifice's port: any datagram there alerts
                port = 31338
            emit(other, _random_source(rnd), server, 1024 + r % 64512, port, i & 0xFFFF)
    w.close()
    return w


SLOW_HEADERS = (b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n"
                + b"".join(b"X-Pad-%03d: %s\r\n" % (k, b"a" * 40) for k in range(18)))
SLOW_BLANKS = b"\r\n" * 700  # 1,400 bytes; three segments of it a connection


def gen_slowloris(path, n: int, pps: float, seed: int = 7) -> FloodWriter:
    """``n`` connections from 10.3.0.0 + i that complete the handshake and
    then leave a request unfinished, none of it acknowledged: every other
    one a request line and 1 KB of header lines without the blank line
    that ends them, the rest 4.2 KB of CRLFs in three segments (blank lines
    a server skips while it waits for the request line). What a sensor
    holds per connection above the stream (parsers' partial lines, held
    blank lines, the last packet) must stay inside the bound too."""
    rnd = random.Random(seed).getrandbits
    hs = Handshake()
    headers = TcpTemplate(PSH | ACK, SLOW_HEADERS)
    blanks = TcpTemplate(ACK, SLOW_BLANKS)
    server = _ip(SERVER)
    w = FloodWriter(path, pps, attack_frames(False), n // 2 * 5)
    emit = w.tcp
    base = _ip("10.3.0.0")
    for i in range(n):
        c, cport, cs1, ss1, ident = hs.connect(w, rnd, base, i, server)
        if i & 1:
            emit(headers, c, server, cport, 80, cs1, ss1, (ident + 2) & 0xFFFF)
        else:
            for k in range(3):
                emit(blanks, c, server, cport, 80, (cs1 + k * len(SLOW_BLANKS)) & 0xFFFFFFFF,
                     ss1, (ident + 2 + k) & 0xFFFF)
    w.close()
    return w


REGEX_SEGS = 100  # full segments per connection of the regex flood
REGEX_HEAD = b"GET /formmail?"
REGEX_PAD = b"recipient=" * 146  # 1,460 bytes: a full segment


def gen_regex(path, n: int, pps: float, seed: int = 8) -> FloodWriter:
    """``n`` full segments in connections of REGEX_SEGS from 10.4.0.0 + i:
    the handshake, ``GET /formmail?`` (the rule's literal, which lets its
    regex run), then segments of ``recipient=`` repeated, the server
    acknowledging every fourth. A query that never ends: nothing alerts."""
    rnd = random.Random(seed).getrandbits
    hs = Handshake()
    head = TcpTemplate(PSH | ACK, REGEX_HEAD)
    pad = TcpTemplate(ACK, REGEX_PAD)
    sack = TcpTemplate(ACK, from_client=False)
    server = _ip(SERVER)
    conns = -(-n // REGEX_SEGS)
    w = FloodWriter(path, pps, attack_frames(False), n // 2)
    emit = w.tcp
    base = _ip("10.4.0.0")
    for i in range(conns):
        c, cport, cs1, ss1, ident = hs.connect(w, rnd, base, i, server)
        emit(head, c, server, cport, 80, cs1, ss1, (ident + 2) & 0xFFFF)
        seq = cs1 + len(REGEX_HEAD)
        for k in range(min(REGEX_SEGS, n - i * REGEX_SEGS)):
            emit(pad, c, server, cport, 80, seq & 0xFFFFFFFF, ss1, (ident + 3 + k) & 0xFFFF)
            seq += len(REGEX_PAD)
            if k % 4 == 3:
                emit(sack, server, c, 80, cport, ss1, seq & 0xFFFFFFFF, (ident + k) & 0xFFFF)
    w.close()
    return w


ALERT_PROBE = b"1234"  # an ICMP echo of exactly this: DDOS-TFN-probe(CVE-2000-0138)
ALERT_SIGNATURE = "DDOS-TFN-probe(CVE-2000-0138)"


def gen_alerts(path, n: int, pps: float, seed: int = 9) -> FloodWriter:
    """``n`` ICMP echo requests from random sources, each the TFN probe the
    bundled rules report: an alert a frame (each source its own flow), what
    writing alerts costs and whether any is lost on the way to the logs."""
    return _from_everyone(path, n, pps, seed, IpTemplate(icmp(8, 0, ALERT_PROBE), proto=1,
                                                          mf=False))


GENERATORS = {"fragments": gen_fragments, "syns": gen_syns, "connections": gen_connections,
              "segments": gen_segments, "acks": gen_acks, "udp": gen_udp,
              "slowloris": gen_slowloris, "regex": gen_regex, "alerts": gen_alerts}


# ---------------------------------------------------------------- running


@dataclass
class Run:
    flood: str
    count: int
    frames: int = 0
    pcap_mb: float = 0.0
    gen_s: float = 0.0
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    bound_mb: float = 0.0
    exit_code: int = 0
    traceback: bool = False
    detected: bool = False
    other_alerts: int = 0
    alerts_counted: int = 0  # the summary's alerts by rule, summed
    counters: dict = field(default_factory=dict)
    notices: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)  # eve.json records by type
    logs_mb: float = 0.0
    summary: str = ""
    stderr: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s else 0.0

    @property
    def rss_ok(self) -> bool:
        return self.peak_rss_mb <= self.bound_mb

    @property
    def bad_checksums(self) -> int:
        c = self.counters
        return (c.get("ip_bad_checksum", 0) + c.get("stream_bad_checksum", 0)
                + c.get("datagram_bad_checksum", 0))

    def problems(self) -> list[str]:
        out = []
        if self.exit_code != 0:
            out.append(f"exit {self.exit_code}")
        if self.traceback:
            out.append("traceback or internal error on stderr")
        if not self.detected:
            out.append("attack missed")
        if not self.rss_ok:
            out.append(f"peak RSS {self.peak_rss_mb:.1f} MB > bound {self.bound_mb:.0f} MB")
        if self.bad_checksums:
            out.append(f"{self.bad_checksums} frames with bad checksums (generator bug)")
        written = self.events.get("alert", 0)
        if written != self.alerts_counted:
            out.append(f"{self.alerts_counted} alerts counted, {written} in eve.json")
        return out

    def key_counters(self) -> dict:
        c = self.counters
        if self.flood == "fragments":
            keys = ("defrag_fragments", "defrag_reassembled", "defrag_memcap_evictions",
                    "defrag_timeouts", "defrag_host_memory_full", "defrag_fragments_dropped")
        elif self.flood == "segments":
            keys = ("stream_sessions", "stream_memcap_drops", "stream_memcap_drop_bytes",
                    "stream_queue_overflows")
        elif self.flood == "udp":
            keys = ("scan_sources_evicted", "scan_udp_probes_dropped", "stream_sessions")
        else:
            keys = ("stream_sessions", "stream_evicted",
                    "stream_timeouts", "scan_sources_evicted")
        return {k: c.get(k, 0) for k in keys}


def parse_summary(text: str) -> tuple[dict, dict, dict]:
    """(counters, alerts by rule, notices by kind) from the read summary."""
    sections = {"counters:": {}, "alerts by rule:": {}, "notices by kind:": {}}
    cur = None
    for line in text.splitlines():
        if line in sections:
            cur = sections[line]
            continue
        if not line.strip():
            cur = None
            continue
        m = re.match(r"^\s*(\d+)  (.+)$", line)
        if cur is not None and m:
            cur[m.group(2)] = int(m.group(1))
    return sections["counters:"], sections["alerts by rule:"], sections["notices by kind:"]


_EVENT = re.compile(r'"event_type":"(\w+)"')
_ANOMALY = re.compile(r'"anomaly":\{"type":"\w+","event":"(\w+)"')


def read_eve(log_dir: Path) -> tuple[bool, int, dict]:
    """(the attack alerted on its own connection, alerts on anything else,
    eve.json records by event type, anomalies by event)."""
    found = False
    other = 0
    events: dict = {}
    eve = log_dir / "eve.json"
    if not eve.exists():
        return False, 0, events
    with open(eve) as f:
        for line in f:
            m = _EVENT.search(line)
            kind = m.group(1) if m else "?"
            if kind == "anomaly":
                a = _ANOMALY.search(line)
                kind = f"anomaly:{a.group(1) if a else '?'}"
            events[kind] = events.get(kind, 0) + 1
            if kind != "alert":
                continue
            e = json.loads(line)
            if (e.get("src_ip"), e.get("src_port")) == (ATTACKER, ATTACK_PORT) and \
                    e["alert"]["signature"] == SIGNATURE:
                found = True
            else:
                other += 1
    return found, other, events


def read_capture(pcap: Path, work: Path, extra=()) -> tuple[int, float, float, str, str]:
    """Run `pakemon-xdp read -q` over pcap: (exit code, wall s, peak RSS MB,
    stdout, stderr)."""
    logs = work / "logs"
    if logs.exists():
        shutil.rmtree(logs)
    cmd = [PY, "-m", "pakemon.cli", "read", "-q", "--progress", "never",
           "--log-dir", str(logs), *extra, str(pcap)]
    with open(work / "stdout.txt", "w+") as out, open(work / "stderr.txt", "w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        # wait4: this child's own peak RSS (ru_maxrss, KiB on Linux)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        # The CLI prints its own VmHWM: ru_maxrss would include the parent's
        # size inherited at fork (a pytest process of 120 MB, say).
        m = re.search(r"^peak RSS: ([0-9.]+) MB", stdout, re.M)
        rss = float(m.group(1)) if m else usage.ru_maxrss / 1024
        return proc.returncode, wall, rss, stdout, err.read()


def _memcaps(extra) -> tuple[int, int]:
    """The defrag and stream memcaps that ``extra`` CLI flags set."""
    from pakemon.cli import _size

    defrag, stream = DEFAULT_DEFRAG_MEMCAP, DEFAULT_STREAM_MEMCAP
    extra = list(extra)
    for i, a in enumerate(extra[:-1]):
        if a == "--defrag-memcap":
            defrag = _size(extra[i + 1])
        elif a == "--stream-memcap":
            stream = _size(extra[i + 1])
    return defrag, stream


def run_flood(name: str, count: int, work: Path, pps: float = 100_000.0, extra=(),
              keep: bool = False) -> Run:
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    pcap = work / f"flood-{name}-{count}.pcap"
    r = Run(name, count)
    t0 = time.perf_counter()
    w = GENERATORS[name](pcap, count, pps)
    r.gen_s = time.perf_counter() - t0
    r.frames = w.frames
    r.pcap_mb = pcap.stat().st_size / 1e6
    defrag, stream = _memcaps(extra)
    r.bound_mb = (defrag + stream) / MB + SLACK_MB
    r.exit_code, r.wall_s, r.peak_rss_mb, r.summary, r.stderr = read_capture(pcap, work, extra)
    r.traceback = "Traceback" in r.stderr or "internal error" in r.stderr
    r.counters, alerts, r.notices = parse_summary(r.summary)
    r.alerts_counted = sum(alerts.values())
    r.detected, r.other_alerts, r.events = read_eve(work / "logs")
    r.logs_mb = sum(f.stat().st_size for f in (work / "logs").iterdir()) / 1e6
    if not keep:
        pcap.unlink()
    return r


def profile(name: str, count: int, work: Path, pps: float = 100_000.0, top: int = 15) -> None:
    """Where a flood's memory goes: feed it in-process under tracemalloc and
    print the bytes still held per source file and per allocation site, and
    per unit of state (TCP session, defrag queue or scan source)."""
    import collections
    import gc
    import tracemalloc

    from pakemon.capture import open_capture
    from pakemon.detect.rule_parser import load_rules
    from pakemon.pipeline import Pipeline

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    pcap = work / f"profile-{name}-{count}.pcap"
    GENERATORS[name](pcap, count, pps)
    pipe = Pipeline(load_rules(ROOT / "rules" / "pakemon.rules").rules)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    with open_capture(pcap) as reader:
        for ts, linktype, frame in reader:
            pipe.feed(ts, frame, linktype)
    gc.collect()
    diff = tracemalloc.take_snapshot().compare_to(before, "lineno")
    tracemalloc.stop()
    pcap.unlink()
    sessions, queues = pipe.tcp.sessions, pipe.defrag.queues
    sources = pipe.scan.counters()["sources"] if pipe.scan is not None else 0
    unit, what = (queues, "defrag queue") if name == "fragments" else (sessions, "TCP session")
    held = sum(st.size_diff for st in diff)
    print(f"profile {name} x {count:,}: {held / MB:.1f} MiB held; {sessions:,} TCP sessions, "
          f"{queues:,} defrag queues ({pipe.defrag.charged:,} bytes charged), "
          f"{sources:,} scan sources")
    files: collections.Counter = collections.Counter()
    for st in diff:
        files[st.traceback[0].filename.split("/pakemon/")[-1]] += st.size_diff
    for f, n in files.most_common(8):
        if n < MB // 10:
            break
        print(f"  {f:<28}{n / MB:9.1f} MiB {n / max(unit, 1):10,.0f} B per {what}")
    print(f"  top allocation sites (bytes, per {what}):")
    for st in diff[:top]:
        fr = st.traceback[0]
        site = f"{fr.filename.split('/pakemon/')[-1]}:{fr.lineno}"
        print(f"    {site:<30}{st.size_diff:>13,}{st.size_diff / max(unit, 1):>9,.0f}  "
              f"{st.count_diff:>9,} blocks")


def table(runs: list[Run]) -> str:
    head = (f"{'flood':<12}{'frames':>11}{'gen s':>8}{'read s':>9}{'frames/s':>10}"
            f"{'peak RSS MB':>13}{'bound MB':>10}  {'attack':<9}key counters")
    lines = [head, "-" * len(head)]
    for r in runs:
        kc = "  ".join(f"{k.split('_', 1)[1]}={v:,}" for k, v in r.key_counters().items())
        lines.append(f"{r.flood:<12}{r.frames:>11,}{r.gen_s:>8.1f}{r.wall_s:>9.1f}"
                     f"{r.fps:>10,.0f}{r.peak_rss_mb:>13.1f}{r.bound_mb:>10.0f}  "
                     f"{'detected' if r.detected else 'MISSED':<9}{kc}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="scale every flood's count")
    ap.add_argument("--pps", type=float, default=100_000.0,
                    help="flood rate in packet time, frames/s (default 100000)")
    ap.add_argument("--only", choices=list(FLOODS), action="append",
                    help="run only this flood (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the pcaps in bench/out/floods")
    ap.add_argument("--no-record", action="store_true",
                    help="do not append to bench/out/floods.jsonl")
    ap.add_argument("--profile", type=int, metavar="COUNT",
                    help="instead of the bench: feed COUNT-sized floods in-process under "
                    "tracemalloc and show where the memory goes")
    ap.add_argument("extra", nargs=argparse.REMAINDER,
                    help="after --: more `pakemon-xdp read` flags (e.g. --defrag-memcap 1m)")
    args = ap.parse_args(argv)
    extra = [a for a in args.extra if a != "--"]

    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "floods"
    if args.profile:
        for name in args.only or list(FLOODS):
            profile(name, args.profile, work, args.pps)
        return 0
    runs = []
    for name in args.only or list(FLOODS):
        count = max(1, round(FLOODS[name][0] * args.scale))
        print(f"== {name}: {count:,} {FLOODS[name][1]} ...", flush=True)
        r = run_flood(name, count, work, args.pps, extra, args.keep)
        runs.append(r)
        print(f"generated {r.frames:,} frames ({r.pcap_mb:.1f} MB) in {r.gen_s:.1f} s "
              f"({r.frames / r.gen_s:,.0f} frames/s); read in {r.wall_s:.1f} s, "
              f"peak RSS {r.peak_rss_mb:.1f} MB; logs {r.logs_mb:.1f} MB, eve.json {r.events}")
        print("\n".join("   " + line for line in r.summary.strip().splitlines()))
        if r.stderr.strip():
            print("stderr:\n" + r.stderr.strip()[-4000:], file=sys.stderr)
        for p in r.problems():
            print(f"!! {name}: {p}", file=sys.stderr)
        sys.stdout.flush()
    if not args.keep:
        shutil.rmtree(work / "logs", ignore_errors=True)

    print()
    print(table(runs))
    machine = f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}"
    today = datetime.date.today().isoformat()
    if not args.no_record:
        with open(OUT / "floods.jsonl", "a") as f:
            for r in runs:
                f.write(json.dumps({
                    "date": today, "machine": machine, "python": platform.python_version(),
                    "flood": r.flood, "count": r.count, "frames": r.frames,
                    "pcap_mb": round(r.pcap_mb, 1), "pps_packet_time": args.pps,
                    "extra_flags": extra, "gen_s": round(r.gen_s, 2),
                    "wall_s": round(r.wall_s, 2), "frames_per_s": round(r.fps),
                    "peak_rss_mb": round(r.peak_rss_mb, 1), "bound_mb": round(r.bound_mb),
                    "rss_ok": r.rss_ok, "exit": r.exit_code, "traceback": r.traceback,
                    "attack_detected": r.detected, "other_alerts": r.other_alerts,
                    "counters": r.counters, "notices": r.notices, "eve_events": r.events,
                    "logs_mb": round(r.logs_mb, 1),
                }) + "\n")
    bad = [(r.flood, p) for r in runs for p in r.problems()]
    for flood, p in bad:
        print(f"FAIL {flood}: {p}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
