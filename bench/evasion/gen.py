#!/usr/bin/env python3
"""Evasion captures: the paper's nidsbench/fragrouter experiment, rebuilt.

Section 4 of the Pakemon paper sent a web-vulnerability scan through
fragrouter (fragmentation, disorder, duplication, overlap, insertion,
desynchronization) and counted what each IDS detected. This module writes
that traffic as pcap: per technique, one capture holding one full TCP
connection (handshake, request, response, close) for every attack, and one
for every attack's *benign twin*, a harmless request of the same length
sent the same way, which must not alert.

Theory of operation. Every connection is built from two client streams of
equal length: ``real``, the bytes the target host's stack delivers to the
web server, and ``other``, the decoy that a monitor which reassembles
differently from the target sees instead. An attack connection has
real = attack request and other = twin request; its twin swaps the two. So
an IDS that reassembles like the target alerts on the attack and stays
quiet on the twin, and one that does not either misses the attack or
alerts on the twin. Techniques that need no decoy (plain fragmentation,
disorder, duplication) send ``real`` only.

Overlap techniques use the published layouts that Suricata's unit tests
hold as ground truth, at their original size:

* IP: Sturges and Novak's 17 fragments over a 192-byte datagram
  (OISF/suricata src/defrag.c, DefragDoSturgesNovakTest and the
  DefragSturgesNovak<Policy>Test expectations), for the defrag policies
  first, last, bsd, linux, windows and solaris.
* TCP: Novak's 18 segments over 25 bytes of stream, all out of order until
  the first byte arrives (src/tests/stream-tcp-list.c, OverlapBSD,
  OverlapLINUX, ... and DoHandleDataOverlap in src/stream-tcp-list.c).

Where the target's copy and a losing copy of a byte differ, the target's
copy carries ``real`` and the loser ``other``. The layout is slid along the
stream so that the bytes a rule needs (the attack's ``key``) fall where the
policies disagree: then an IDS running any other policy misses the attack.
``views`` records what each other policy would see, so ``run.py
--selfcheck`` can prove that with the current detector.

Linux since 4.19 (``linux-current``) discards a datagram with a partial
fragment overlap (inet_frag_queue_insert, IPFRAG_OVERLAP), so that
technique sends the decoy in an overlapping datagram and the real bytes in
the retransmission. Its TCP out-of-order queue (tcp_data_queue_ofo)
resolves Novak's layout as Suricata's ``linux`` does except at one byte,
where segment coalescing decides; that byte is sent identical in both
copies.

Frames are built with pakemon.lab.traffic (real checksums except where a
technique breaks one on purpose), Ethernet with explicit MACs. Sequence
numbers, IP IDs and client ports are random from a seed derived from the
technique's name, so every capture is reproducible.
"""

from __future__ import annotations

import re

import argparse
import json
import random
import socket
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pakemon.decode.decoder import checksum  # noqa: E402
from pakemon.lab.traffic import (  # noqa: E402
    ACK, CLIENT_MAC, FIN, PSH, RST, SERVER_MAC, SYN, PcapWriter, ether, ipv4, tcp,
)

CLIENT = "198.51.100.23"  # the scanner (TEST-NET-2)
SERVER = "192.0.2.80"  # the web server (TEST-NET-1)
HTTP_PORT = 80
T0 = 979242051.0  # Thu Jan 11 19:40:51 2001 UTC, the paper's era
GAP = 0.0005  # seconds between frames of one connection
CONN_GAP = 0.25  # seconds between connections
RTO = 0.2  # a retransmission comes this much later
MSS = b"\x02\x04\x05\xb4"  # MSS 1460, the only SYN option
DEFAULT_POLICY = "linux-current"
WS = frozenset(b" \t\r\n")

# ---------------------------------------------------------------------------
# Attacks and twins
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One GET a bundled rule detects, and the harmless path of its twin.

    ``key`` is the part of the path the rule needs (the whole path unless
    given): overlap layouts aim their conflicting bytes at it. Each attack
    trips exactly the rules in ``signatures``, so a twin built by garbling
    the key (what the target keeps of a twin under an overlap technique) is
    really benign. ``run_key``: the rule is a ``[^\\s]{N}`` run, which only
    whitespace breaks.
    """

    name: str
    path: str
    signatures: tuple[str, ...]
    twin: str
    key: str = ""
    run_key: bool = False

    @property
    def key_bytes(self) -> bytes:
        return (self.key or self.path).encode()


ATTACKS: tuple[Attack, ...] = (
    Attack("phf", "/cgi-bin/phf?Qalias=x", ("CGI-phf(CVE-1999-0067)",),
           "/cgi-bin/phonebook.html", key="/cgi-bin/phf"),
    Attack("test-cgi", "/cgi-bin/test-cgi?*", ("CGI-test-cgi(CVE-1999-0070)",),
           "/cgi-bin/guestbook.html", key="/test-cgi"),
    Attack("nph-test-cgi", "/cgi-bin/nph-test-cgi?*", ("CGI-nph-test-cgi(CVE-1999-0045)",),
           "/cgi-bin/news.html", key="/nph-test-cgi"),
    Attack("handler", "/cgi-bin/handler", ("CGI-handler(CVE-1999-0148)",),
           "/cgi-bin/hello.html"),
    Attack("wwwboard-passwd", "/wwwboard/passwd.txt", ("CGI-wwwboard-passwd(CVE-1999-0953)",),
           "/wwwboard/index.html"),
    Attack("faxsurvey", "/cgi-bin/faxsurvey?/bin/ls", ("CGI-faxsurvey(CVE-1999-0262)",),
           "/cgi-bin/faq.html", key="/faxsurvey"),
    Attack("campas", "/cgi-bin/campas?%0aid%0a", ("CGI-campas(CVE-1999-0146)",),
           "/cgi-bin/campus.html", key="/campas"),
    Attack("administrators-pwd", "/_vti_pvt/administrators.pwd", ("IIS-administrator.pwd",),
           "/about/contact.html"),
    Attack("service-pwd", "/_vti_pvt/service.pwd", ("IIS-service.pwd",),
           "/docs/service.html"),
    Attack("unicode-c0af", "/scripts/..%c0%af../winnt/system32/tree.com",
           ("IIS-unicode-c0af(CVE-2000-0884)",), "/scripts/readme.txt", key="..%c0%af"),
    Attack("double-decode", "/scripts/..%255c../winnt/system32/tree.com",
           ("IIS-double-decode-255c(CVE-2001-0333)",), "/scripts/help.txt", key="..%255c"),
    Attack("cmd-exe", "/scripts/cmd.exe?/c+dir", ("IIS-cmd.exe",),
           "/scripts/search.htm", key="/cmd.exe"),
    Attack("root-exe", "/scripts/root.exe?/c+dir", ("IIS-root.exe",),
           "/scripts/index.htm", key="/root.exe"),
    Attack("msadcs", "/msadc/msadcs.dll", ("IIS-MDAC-RDS-msadcs.dll(CVE-1999-1011)",),
           "/msadc/readme.htm"),
    Attack("codered", "/default.ida?NNNNNNNNNNNNNNNN", ("IIS-CodeRed-ida(CVE-2001-0500)",),
           "/default.htm", key="/default.ida?NNNNNNNN"),
    Attack("ida-overflow", "/scripts/null.ida?" + "A" * 202,
           ("IIS-ida-idq-overflow(CVE-2001-0500)",), "/scripts/default.htm",
           key=".ida?" + "A" * 202, run_key=True),
    Attack("bdir-htr", "/scripts/iisadmin/bdir.htr", ("IIS-bdir.htr",),
           "/scripts/iisadmin/help.htm"),
    Attack("global-asa", "/global.asa", ("IIS-global.asa",), "/global.htm"),
    Attack("iisadmpwd", "/iisadmpwd/aexp2.htr", ("IIS-iisadmpwd(CVE-1999-0407)",),
           "/iishelp/index.htm", key="/iisadmpwd/"),
    Attack("showcode", "/msadc/Samples/SELECTOR/showcode.asp", ("IIS-showcode.asp(CVE-1999-0736)",),
           "/msadc/Samples/default.htm", key="/showcode.asp"),
    Attack("ism-dll", "/iisstart.asp%20%20%20%20%20.htr", ("IIS-ISM.DLL-Exploit",),
           "/iisstart.htm", key="%20%20%20%20%20.htr"),
    Attack("apache-dos", "////////", ("HTTP-ApacheDOS",), "/index.html"),
    Attack("coldfusion-openfile", "/cfdocs/expeval/openfile.cfm",
           ("HTTP-ColdFusion-openfile.cfm(CVE-1999-0455)",), "/cfdocs/index.htm"),
    Attack("htpasswd", "/.htpasswd", ("HTTP-htpasswd-access",), "/robots.txt"),
    Attack("cisco-level-exec", "/level/16/exec/show/config",
           ("HTTP-Cisco-IOS-level-exec(CVE-2001-0537)",), "/status/index.html",
           key="/level/16/exec/"),
)

# The pytest version: a short key, a long literal key, and a 200-byte run.
SMALL = ("phf", "administrators-pwd", "ida-overflow")


def _rule_bytes(b: bytes) -> str:
    """``b`` as a Suricata content string (|hex| for what content cannot hold)."""
    return "".join(f"|{c:02x}|" if chr(c) in '";\\|:' or not 0x20 <= c <= 0x7E else chr(c)
                   for c in b)


def suricata_rules(attacks, kind: str) -> str:
    """Suricata rules that detect ``attacks`` as their bundled native rules
    do, named by the same signature (eve's ``signature`` is the msg), so the
    same scoring applies: ``kind`` "stream" matches the key in the
    reassembled client stream, "http" in the parsed request's URI (normalized,
    or raw for a key that is an encoded form or that normalizing rewrites).
    Every evasion here is below the URI, so both must detect everything."""
    out = []
    for i, a in enumerate(attacks):
        key = a.key_bytes
        if kind == "stream":
            head, buf = "alert tcp any any -> any 80", ""
        else:
            raw = a.run_key or b"%" in key or b"//" in key or b"/." in key
            head, buf = "alert http any any -> any any", (
                "http.uri.raw; " if raw else "http.uri; ")
        if a.run_key:
            # the native rule's [^\s]{N} run after a literal
            lit, n = key.rstrip(b"A"), len(key) - len(key.rstrip(b"A"))
            body = (f'{buf}content:"{_rule_bytes(lit)}"; '
                    f'pcre:"/{re.escape(lit.decode())}[^\\s]{{{n}}}/"; ')
        else:
            body = f'{buf}content:"{_rule_bytes(key)}"; '
        for sig in a.signatures:
            out.append(f'{head} (msg:"{sig}"; flow:to_server; {body}sid:{1000 + i};)')
    return "\n".join(out) + "\n"

UA = "Mozilla/4.0 (compatible; MSIE 5.01; Windows NT 5.0)"
LANGS = "en-us, en-gb;q=0.9, fr;q=0.8, de;q=0.7, ja;q=0.6, es;q=0.5, it;q=0.4, nl;q=0.3, "


def _languages(n: int) -> str:
    """An Accept-Language value of exactly ``n`` characters (pads twins)."""
    s = LANGS * (n // len(LANGS) + 1)
    return s[:n]


def request(path: str, pad: int, keep_alive: bool = False) -> bytes:
    version = "1.1" if keep_alive else "1.0"
    conn = "Keep-Alive" if keep_alive else "close"
    return (f"GET {path} HTTP/{version}\r\nHost: {SERVER}\r\nUser-Agent: {UA}\r\n"
            f"Accept: */*\r\nAccept-Language: {_languages(pad)}\r\n"
            f"Connection: {conn}\r\n\r\n").encode()


def request_pair(a: Attack) -> tuple[bytes, bytes]:
    """The attack request and its twin, padded to the same length."""
    diff = len(a.path) - len(a.twin)
    attack = request(a.path, 5 + max(0, -diff))
    twin = request(a.twin, 5 + max(0, diff))
    assert len(attack) == len(twin)
    return attack, twin


def _junk_byte(b: int, run_key: bool) -> int:
    if run_key:
        return 0x20  # only whitespace ends a [^\s]{N} run
    c = chr(b)
    if c.isalpha():
        base = ord("a") if c.islower() else ord("A")
        return base + (b - base + 13) % 26  # rot13: another letter in any case
    if c.isdigit():
        return ord("0") + (b - ord("0") + 5) % 10
    return ord("-") if c == "_" else ord("_")


def junk_of(stream: bytes, a: Attack) -> bytes:
    """``stream`` with every byte of the attack's key changed: the junk an
    overlap layout hides the attack under, and what the target of a twin
    keeps under an overlap technique."""
    ks = stream.index(a.key_bytes)
    key = bytes(_junk_byte(b, a.run_key) for b in a.key_bytes)
    return stream[:ks] + key + stream[ks + len(key):]


# A benign request in front of the attack on the same keep-alive connection
# (scanners of the time did this): it lets a layout reach the key however
# deep in a 192-byte datagram the policies disagree.
PRE = request("/", 40, keep_alive=True)

# An upload on the same keep-alive connection whose body carries the
# connection past 1 MB, Suricata's default reassembly depth (and this
# sensor's, before it read all a client sends): what comes after it is out
# of a depth-bound monitor's sight, though the server reads it.
PAD_BODY = 1_100_000
# A POST whose body leaves room for FLOOD_SEGMENTS one-byte segments at every
# other offset (tcp-ofo-tiny-flood), all inside the server's first 64 KB window
FLOOD_SEGMENTS = 4500
FLOOD_BODY = 2 * FLOOD_SEGMENTS + 200
PAD_FLOOD = (f"POST /upload HTTP/1.1\r\nHost: {SERVER}\r\nUser-Agent: {UA}\r\n"
             f"Content-Type: application/octet-stream\r\nContent-Length: {FLOOD_BODY}\r\n"
             f"\r\n").encode() + b"-" * FLOOD_BODY
PAD = (f"POST /upload HTTP/1.1\r\nHost: {SERVER}\r\nUser-Agent: {UA}\r\n"
       f"Content-Type: application/octet-stream\r\nContent-Length: {PAD_BODY}\r\n"
       f"\r\n").encode() + b"-" * PAD_BODY


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------


def _corrupt(csum: int) -> int:
    # Never csum ^ 0xFFFF: in one's complement 0x0000 and 0xFFFF are equal.
    return (csum + 0x1111) & 0xFFFF


def ip_datagram(src: str, dst: str, ident: int, payload: bytes, *, offset: int = 0,
                mf: bool = False, df: bool = False, bad_checksum: bool = False,
                options: bytes = b"") -> bytes:
    pkt = ipv4(src, dst, 6, payload, ident=ident, df=df, frag_offset=offset, mf=mf,
               options=options)
    if bad_checksum:
        good = struct.unpack_from("!H", pkt, 10)[0]
        pkt = pkt[:10] + struct.pack("!H", _corrupt(good)) + pkt[12:]
        assert checksum(pkt[:(pkt[0] & 15) * 4]) != 0
    return pkt


# IPv4 options a target drops the packet for (tests/integration/live_cases.py
# IP_OPTION_CASES has the kernel's verdicts): a loose source route (refused:
# accept_source_route is off by default), its one hop the server itself so
# the TCP checksum is right by RFC 1122's rule too (the pseudo-header takes
# a source route's final address); and a timestamp option whose pointer is
# under its minimum of 5 (malformed for ip_options_compile).
LSRR = b"\x83\x07\x04" + socket.inet_aton(SERVER)
BAD_TIMESTAMP = b"\x44\x08\x04\x00\x00\x00\x00\x00"


def bad_tcp_checksum(seg: bytes) -> bytes:
    good = struct.unpack_from("!H", seg, 16)[0]
    return seg[:16] + struct.pack("!H", _corrupt(good)) + seg[18:]


def tcp_checksum_ok(seg: bytes, src: str = CLIENT, dst: str = SERVER) -> bool:
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(seg))
    return checksum(pseudo + seg) == 0


def fragments(seg: bytes, size: int = 8) -> list[tuple[int, bytes, bool]]:
    """(offset, data, more-fragments) pieces of a transport segment, in order."""
    out = []
    for off in range(0, len(seg), size):
        out.append((off, seg[off:off + size], off + size < len(seg)))
    return out


def neutral_garble(data: bytes, parity_base: int = 0) -> bytes:
    """Different bytes with the same 16-bit one's complement sum.

    Bytes two apart sit in the same half of consecutive 16-bit words, so
    +1 on one and -1 on the other keeps the sum: a datagram overlapping
    itself this way has a valid TCP checksum whichever copy is kept.
    ``parity_base`` is the offset of data[0] from the checksummed start.
    """
    b = bytearray(data)
    for parity in (0, 1):
        idx = [i for i in range(len(b)) if (parity_base + i) % 2 == parity]
        for i, j in zip(idx[0::2], idx[1::2]):
            if b[i] < 0xFF and b[j] > 0:
                b[i] += 1
                b[j] -= 1
    return bytes(b)


class Capture:
    """Frames of one technique's capture, and the connections in it."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.frames: list[tuple[float, bytes]] = []
        self.us = round(T0 * 1e6)  # integer microseconds: no drift over many frames
        self.client_id = self.rng.randrange(0x10000)
        self.server_id = self.rng.randrange(0x10000)
        self.ports: set[int] = set()

    def new_port(self) -> int:
        while True:
            p = self.rng.randrange(1025, 65000)
            if p not in self.ports:
                self.ports.add(p)
                return p

    def next_client_id(self) -> int:
        self.client_id = (self.client_id + 1) & 0xFFFF
        return self.client_id

    def next_server_id(self) -> int:
        self.server_id = (self.server_id + 1) & 0xFFFF
        return self.server_id

    @property
    def ts(self) -> float:
        return self.us / 1e6

    def wait(self, seconds: float) -> None:
        self.us += round(seconds * 1e6)

    def emit(self, frame: bytes, gap: float = GAP) -> None:
        self.frames.append((self.ts, frame))
        self.wait(gap)

    def write(self, path) -> None:
        with PcapWriter(path) as w:
            w.write_all(self.frames)


def client_frame(ip: bytes, dst_mac: bytes = SERVER_MAC) -> bytes:
    return ether(ip, src=CLIENT_MAC, dst=dst_mac)


def server_frame(ip: bytes) -> bytes:
    return ether(ip, src=SERVER_MAC, dst=CLIENT_MAC)


# How a technique puts every client datagram on the wire.
Xmit = Callable[["Flow", bytes], None]


def xmit_plain(flow: "Flow", seg: bytes) -> None:
    flow.emit_datagram(seg)


def xmit_frag(order: str, size: int = 8) -> Xmit:
    """Fragment every client datagram into ``size``-byte pieces."""

    def xmit(flow: "Flow", seg: bytes) -> None:
        pieces = fragments(seg, size)
        rng = flow.cap.rng
        if order == "reversed":
            pieces.reverse()
        elif order == "shuffled":
            rng.shuffle(pieces)
        elif order == "duplicated":
            pieces = pieces + pieces
            rng.shuffle(pieces)
        flow.emit_fragments(pieces)

    return xmit


class Flow:
    """One client connection to the web server, frame by frame.

    ``cnxt``/``snxt`` are the next sequence numbers each side sends; client
    datagrams go through ``xmit`` (the technique's fragmenter), server
    datagrams never do.
    """

    def __init__(self, cap: Capture, xmit: Xmit = xmit_plain):
        self.cap = cap
        self.xmit = xmit
        self.cport = cap.new_port()
        self.ciss = cap.rng.getrandbits(32)
        self.siss = cap.rng.getrandbits(32)
        self.cnxt = self.ciss
        self.snxt = self.siss

    # -- raw building blocks -------------------------------------------------
    def cseg(self, seq: int, flags: int, payload: bytes = b"", ack: int | None = None,
             options: bytes = b"", window: int | None = None) -> bytes:
        if ack is None:
            ack = self.snxt if flags & ACK else 0
        if window is None:
            return tcp(CLIENT, SERVER, self.cport, HTTP_PORT, seq, ack, flags, payload,
                       options=options)
        return tcp(CLIENT, SERVER, self.cport, HTTP_PORT, seq, ack, flags, payload,
                   options=options, window=window)

    def sseg(self, flags: int, payload: bytes = b"", options: bytes = b"") -> bytes:
        return tcp(SERVER, CLIENT, HTTP_PORT, self.cport, self.snxt, self.cnxt, flags, payload,
                   options=options)

    def emit_datagram(self, seg: bytes, *, bad_ip: bool = False, gap: float = GAP,
                      ip_options: bytes = b"", dst_mac: bytes = SERVER_MAC,
                      vlan: int | None = None) -> None:
        ip = ip_datagram(CLIENT, SERVER, self.cap.next_client_id(), seg, df=True,
                         bad_checksum=bad_ip, options=ip_options)
        frame = client_frame(ip, dst_mac)
        if vlan is not None:  # an 802.1Q tag
            frame = frame[:12] + b"\x81\x00" + vlan.to_bytes(2, "big") + frame[12:]
        self.cap.emit(frame, gap)

    def emit_fragments(self, pieces, ident: int | None = None) -> None:
        """Pieces (offset, data, more-fragments) of one datagram, in the order given."""
        if ident is None:
            ident = self.cap.next_client_id()
        for off, data, mf in pieces:
            self.cap.emit(client_frame(ip_datagram(CLIENT, SERVER, ident, data,
                                                   offset=off, mf=mf)))

    def server_send(self, flags: int, payload: bytes = b"", options: bytes = b"") -> None:
        ip = ipv4(SERVER, CLIENT, 6, self.sseg(flags, payload, options),
                  ident=self.cap.next_server_id(), df=True)
        self.cap.emit(server_frame(ip))
        self.snxt = (self.snxt + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF

    def client_send(self, flags: int, payload: bytes = b"") -> None:
        """An in-sequence client segment through the technique's xmit."""
        self.xmit(self, self.cseg(self.cnxt, flags, payload,
                                  options=MSS if flags & SYN else b""))
        self.cnxt = (self.cnxt + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF

    # -- connection phases ---------------------------------------------------
    def open(self) -> None:
        self.client_send(SYN)
        self.server_send(SYN | ACK, options=MSS)
        self.client_send(ACK)

    def data_seq(self, offset: int) -> int:
        """Sequence number of client stream byte ``offset``."""
        return (self.ciss + 1 + offset) & 0xFFFFFFFF

    def send_stream(self, data: bytes, start: int = 0, size: int = 1460) -> None:
        """Client stream bytes [start, start+len(data)) in order, ``size`` per segment."""
        for i in range(0, len(data), size):
            chunk = data[i:i + size]
            self.xmit(self, self.cseg(self.data_seq(start + i), PSH | ACK, chunk))

    def finish(self, stream: bytes, responses: int = 1) -> None:
        """Server takes the request, answers and closes; the client closes too."""
        self.cnxt = self.data_seq(len(stream))
        self.server_send(ACK)
        for i in range(responses):
            last = i == responses - 1
            body = b"<html><body><h1>Not Found</h1></body></html>\n"
            head = (b"HTTP/1.1 404 Not Found\r\nServer: Apache/1.3.12 (Unix)\r\n"
                    b"Content-Type: text/html\r\nContent-Length: %d\r\n%s\r\n"
                    % (len(body), b"Connection: close\r\n" if last else b""))
            self.server_send(PSH | ACK, head + body)
            self.client_send(ACK)
        self.server_send(FIN | ACK)
        self.client_send(ACK)
        self.client_send(FIN | ACK)
        self.server_send(ACK)


# ---------------------------------------------------------------------------
# Overlap layouts
# ---------------------------------------------------------------------------

# Sturges & Novak: (letter, offset, length) in sending order; Q is last.
IP_NOVAK = (
    ("A", 0, 24), ("B", 32, 16), ("C", 48, 24), ("D", 80, 8), ("E", 104, 16),
    ("F", 120, 24), ("G", 144, 16), ("H", 160, 16), ("I", 176, 8),
    ("J", 8, 32), ("K", 48, 24), ("L", 72, 24), ("M", 96, 24), ("N", 128, 8),
    ("O", 152, 8), ("P", 160, 8), ("Q", 176, 16),
)
IP_NOVAK_LEN = 192
# Which fragment's bytes each 8-byte block of the datagram holds, per policy
# (Suricata's DefragSturgesNovak*Test expected data).
IP_NOVAK_WINNERS = {
    "bsd": "AAAJJBCCCLLLMMMFFFGGHHIQ",
    "linux": "AAAJJBKKKLLLMMMFFFGGPHQQ",
    "windows": "AAAJBBCCCLLLMEEFFFGGHHIQ",
    "solaris": "AAAJBBCCCLLLMMMFFFGGHHIQ",
    "first": "AAAJBBCCCLDLMEEFFFGGHHIQ",
    "last": "AJJJJBKKKLLLMMMFNFGOPHQQ",
}

# Novak's TCP layout: (letter, 1-based relative sequence, length) in sending
# order; "0" (the first byte, which holds everything back) comes last.
TCP_NOVAK = (
    ("A", 2, 3), ("B", 6, 2), ("C", 8, 3), ("D", 12, 1), ("E", 15, 2), ("F", 17, 3),
    ("G", 20, 2), ("H", 22, 2), ("I", 24, 1), ("J", 3, 4), ("K", 8, 3), ("L", 11, 3),
    ("M", 14, 3), ("N", 18, 1), ("O", 21, 1), ("P", 22, 1), ("Q", 24, 2),
)
TCP_NOVAK_LEN = 25
# The stream each class of receiver reassembles (src/tests/stream-tcp-list.c;
# first has no test there: DoHandleDataOverlap never takes new data for it,
# exactly as for vista). "?" marks a byte where linux-current depends on
# whether the kernel coalesced I into the queued run before Q came.
TCP_NOVAK_RESULTS = {
    "bsd": "0AAAJJBCCCLLLMMMFFFGGHHIQ",
    "first": "0AAAJBBCCCLDLMEEFFFGGHHIQ",
    "linux": "0AAAJJBCCCLLLMMMFFFGGHHQQ",
    "old-linux": "0AAAJJBKKKLLLMMMFFFGGHHQQ",
    "solaris": "0AJJJBBKKKLLLMMMFFFGGHHQQ",
    "last": "0AJJJJBKKKLLLMMMFNFGOPHQQ",
    "linux-current": "0AAAJJBCCCLLLMMMFFFGGHH?Q",
}
# Suricata's stream policies by the overlap class they behave as.
TCP_CLASS = {
    "first": "first", "vista": "first", "last": "last",
    "bsd": "bsd", "windows": "bsd", "windows2k3": "bsd", "hpux10": "bsd", "irix": "bsd",
    "macos": "bsd", "linux": "linux", "old-linux": "old-linux",
    "solaris": "solaris", "hpux11": "solaris", "linux-current": "linux-current",
}


def _ip_winner(policy: str, i: int) -> str:
    return IP_NOVAK_WINNERS[policy][i // 8]


def _tcp_winner(cls: str, i: int) -> str:
    return TCP_NOVAK_RESULTS[cls][i]


def _breaks(real: int, other: int, run_key: bool) -> bool:
    """Does seeing ``other`` instead of ``real`` break the rule's key?"""
    if run_key:
        return other in WS
    return chr(real).lower() != chr(other).lower()


def place_layout(real: bytes, other: bytes, key: tuple[int, int], run_key: bool,
                 span: range, stream_of: Callable[[int, int], int],
                 differs: Callable[[str, int], bool], rivals, starts: range) -> tuple[int, list]:
    """Slide a layout so its disagreeing bytes hit the key.

    For each candidate ``start`` (stream offset of the layout), count the
    rival policies whose view breaks the key: some layout byte ``i`` in
    ``span`` that lands in the key, where the rival keeps a different copy
    than the target (``differs``) and the decoy byte breaks the rule.
    The most rivals wins; ties go to the start that centres the layout on
    the key.
    """
    ks, ke = key
    centre = (ks + ke) / 2
    best = None
    for start in starts:
        beaten = []
        for rival in rivals:
            for i in span:
                pos = stream_of(start, i)
                if ks <= pos < ke and differs(rival, i) and _breaks(real[pos], other[pos], run_key):
                    beaten.append(rival)
                    break
        mid = stream_of(start, (span.start + span.stop) / 2)
        score = (len(beaten), -abs(mid - centre))
        if best is None or score > best[0]:
            best = (score, start, beaten)
    return best[1], best[2]


# ---------------------------------------------------------------------------
# Techniques
# ---------------------------------------------------------------------------


@dataclass
class Plan:
    """Per attack/twin pair: where a layout goes (the same for both)."""

    start: int = 0
    beaten: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Technique:
    """One evasion: how a connection carrying ``real`` (and a decoy) is sent.

    ``build(flow, real, other, plan)`` sends the client stream; ``plan``
    (optional) places a layout once per attack, from the attack's streams,
    and is reused for its twin; ``views(real, other, plan)`` gives what a
    monitor that got the technique wrong would see, by name. ``pipelined``
    puts PRE in front of the request.
    """

    name: str
    policy: str
    summary: str
    build: Callable
    xmit: Xmit = xmit_plain
    plan: Callable | None = None
    views: Callable | None = None
    pipelined: bool = False
    checksum: str | None = None
    decoy: str = "twin"  # or "junk": the attack with its key garbled
    prefix: bytes = b""  # sent first on the connection (PAD), answered too
    host_mac: bool = False  # the sensor is told the server's MAC (--host-mac)

    def cli_args(self) -> list[str]:
        args = []
        if self.policy != DEFAULT_POLICY:
            args += ["--policy", self.policy]
        if self.checksum:
            args += ["--checksum", self.checksum]
        if self.host_mac:
            args += ["--host-mac", SERVER_MAC.hex(":")]
        return args


def build_plain(flow: Flow, real: bytes, other: bytes, plan) -> None:
    flow.send_stream(real)


def build_segments(size: int, order: str = "in-order") -> Callable:
    def build(flow: Flow, real: bytes, other: bytes, plan) -> None:
        segs = [(i, real[i:i + size]) for i in range(0, len(real), size)]
        rng = flow.cap.rng
        if order == "reversed":
            segs.reverse()
        elif order == "shuffled":
            rng.shuffle(segs)
        elif order == "duplicated":
            segs = [s for s in segs for _ in (0, 1)]
        for off, chunk in segs:
            flow.xmit(flow, flow.cseg(flow.data_seq(off), PSH | ACK, chunk))
    return build


def build_acked(flow: Flow, real: bytes, other: bytes, plan) -> None:
    """Full segments in order, the server acknowledging every 32 of them (a
    stream longer than the server's 64 KB window)."""
    size = 1460
    for n, i in enumerate(range(0, len(real), size)):
        flow.xmit(flow, flow.cseg(flow.data_seq(i), PSH | ACK, real[i:i + size]))
        if n % 32 == 31:
            flow.cnxt = flow.data_seq(min(len(real), i + size))
            flow.server_send(ACK)


def build_overlap_identical(flow: Flow, real: bytes, other: bytes, plan) -> None:
    """In-order segments, each repeating the last 1-6 bytes of the one before."""
    rng = flow.cap.rng
    start = 0
    while start < len(real):
        end = min(len(real), start + rng.randrange(8, 21))
        flow.xmit(flow, flow.cseg(flow.data_seq(start), PSH | ACK, real[start:end]))
        if end == len(real):
            break
        start = end - rng.randrange(1, 7)


# -- IP fragment overlaps -------------------------------------------------------

IP_HDR = 20  # TCP header bytes at the front of every datagram here


def plan_ip_novak(policy: str) -> Callable:
    rivals = [p for p in IP_NOVAK_WINNERS if p != policy]

    def plan(real: bytes, other: bytes, key: tuple[int, int], run_key: bool) -> Plan:
        payload = IP_NOVAK_LEN - IP_HDR
        if run_key and key[1] - key[0] >= payload:
            # A run longer than the datagram: begin the datagram just before
            # the key, so every disagreeing block cuts the run short.
            start = key[0] - 8
            return Plan(start, rivals)
        start, beaten = place_layout(
            real, other, key, run_key, range(IP_HDR, IP_NOVAK_LEN),
            lambda s, i: s + i - IP_HDR,
            lambda rival, i: _ip_winner(rival, i) != _ip_winner(policy, i),
            rivals, range(0, len(real) - payload + 1))
        return Plan(start, beaten)

    return plan


def build_ip_novak(policy: str) -> Callable:
    def build(flow: Flow, real: bytes, other: bytes, plan: Plan) -> None:
        k = plan.start
        n = IP_NOVAK_LEN - IP_HDR
        if k:
            flow.send_stream(real[:k])
        seq = flow.data_seq(k)
        seg_real = flow.cseg(seq, PSH | ACK, real[k:k + n])
        # The decoy copy keeps the header (and so the checksum) of the real one.
        seg_other = seg_real[:IP_HDR] + other[k:k + n]
        ident = flow.cap.next_client_id()
        for letter, off, length in IP_NOVAK:
            data = bytes(seg_real[i] if i < IP_HDR or _ip_winner(policy, i) == letter
                         else seg_other[i] for i in range(off, off + length))
            flow.cap.emit(client_frame(ip_datagram(
                CLIENT, SERVER, ident, data, offset=off, mf=letter != "Q")))
        if k + n < len(real):
            flow.send_stream(real[k + n:], start=k + n)
    return build


def views_ip_novak(policy: str) -> Callable:
    def views(real: bytes, other: bytes, plan: Plan) -> dict:
        k = plan.start
        out = {}
        for rival in IP_NOVAK_WINNERS:
            if rival == policy:
                continue
            v = bytearray(real)
            for i in range(IP_HDR, IP_NOVAK_LEN):
                if _ip_winner(rival, i) != _ip_winner(policy, i):
                    v[k + i - IP_HDR] = other[k + i - IP_HDR]
            out[rival] = bytes(v)
        # linux-current and drop-overlap discard the datagram: a hole.
        return out
    return views


def plan_ip_discard(real: bytes, other: bytes, key, run_key) -> Plan:
    # The conflicting 8 bytes sit in the header lines of both requests, so
    # whichever copy a non-discarding monitor keeps, it reads the decoy.
    first = max(real.index(b"\r\n"), other.index(b"\r\n")) + 2 + IP_HDR
    return Plan(extra={"overlap": (first + 7) // 8 * 8})


def build_ip_discard(flow: Flow, real: bytes, other: bytes, plan: Plan) -> None:
    """Decoy in a datagram whose fragments partly overlap, then the real bytes.

    Linux (>= 4.19) kills the whole datagram at the partial overlap
    (IPFRAG_OVERLAP); the client's retransmission, a new datagram, carries
    the bytes the server reads. Fragments: F1 [0, o+8), F3 [o+40, end)
    last, then F2 [o, o+40) whose first 8 bytes conflict with F1's.
    """
    o = plan.extra["overlap"]
    decoy = flow.cseg(flow.data_seq(0), PSH | ACK, other)
    assert o + 40 < len(decoy)
    garbled = decoy[:o] + neutral_garble(decoy[o:o + 8]) + decoy[o + 8:]
    assert garbled != decoy and tcp_checksum_ok(garbled), "either copy must checksum"
    ident = flow.cap.next_client_id()
    flow.emit_fragments([(0, decoy[:o + 8], True), (o + 40, decoy[o + 40:], False),
                         (o, garbled[o:o + 40], True)], ident)
    flow.cap.wait(RTO)
    flow.send_stream(real)


def views_ip_discard(real: bytes, other: bytes, plan: Plan) -> dict:
    # A monitor that reassembles the overlapping datagram takes the decoy
    # first; the retransmission then repeats bytes it already has.
    return {"reassembles-overlap": other}


# -- TCP segment overlaps -------------------------------------------------------


def plan_tcp_novak(policy: str) -> Callable:
    cls = TCP_CLASS[policy]
    rivals = [c for c in TCP_NOVAK_RESULTS if c != cls and c != "linux-current"]

    def differs(rival: str, i: int) -> bool:
        mine, theirs = _tcp_winner(cls, i), _tcp_winner(rival, i)
        return "?" not in (mine, theirs) and mine != theirs

    def plan(real: bytes, other: bytes, key, run_key) -> Plan:
        start, beaten = place_layout(
            real, other, key, run_key, range(TCP_NOVAK_LEN), lambda s, i: s + i,
            differs, [r for r in rivals if any(differs(r, i) for i in range(TCP_NOVAK_LEN))],
            range(0, len(real) - TCP_NOVAK_LEN + 1))
        return Plan(start, beaten)

    return plan


def build_tcp_novak(policy: str) -> Callable:
    cls = TCP_CLASS[policy]

    def build(flow: Flow, real: bytes, other: bytes, plan: Plan) -> None:
        base = plan.start
        for letter, rseq, length in TCP_NOVAK:
            lo = rseq - 1
            data = bytes(real[base + i] if _tcp_winner(cls, i) in (letter, "?")
                         else other[base + i] for i in range(lo, lo + length))
            flow.xmit(flow, flow.cseg(flow.data_seq(base + lo), PSH | ACK, data))
        end = base + TCP_NOVAK_LEN
        if end < len(real):  # the rest, still out of order
            flow.send_stream(real[end:], start=end)
        # the first byte of the layout and everything before it, last
        flow.send_stream(real[:base + 1])
    return build


def views_tcp_novak(policy: str) -> Callable:
    cls = TCP_CLASS[policy]

    def views(real: bytes, other: bytes, plan: Plan) -> dict:
        out = {}
        for rival in TCP_NOVAK_RESULTS:
            if rival in (cls, "linux-current"):
                continue
            v = bytearray(real)
            for i in range(TCP_NOVAK_LEN):
                mine, theirs = _tcp_winner(cls, i), _tcp_winner(rival, i)
                if "?" not in (mine, theirs) and mine != theirs:
                    v[plan.start + i] = other[plan.start + i]
            out[rival] = bytes(v)
        return out
    return views


def build_retransmit_conflict(flow: Flow, real: bytes, other: bytes, plan) -> None:
    """Real bytes, acknowledged; then a 'retransmission' of the range with the decoy.

    Every stack has delivered the first copy already and drops the second.
    """
    flow.send_stream(real)
    flow.cnxt = flow.data_seq(len(real))
    flow.server_send(ACK)
    flow.cap.wait(RTO)
    flow.send_stream(other)
    flow.server_send(ACK)  # duplicate ACK


def views_first_copy_loses(real: bytes, other: bytes, plan) -> dict:
    return {"takes-retransmission": other}


# -- insertion ------------------------------------------------------------------


# TCP option blocks tcp_do_parse_auth_options rejects (Linux 6.7+): see
# pakemon/stream/tcp.py, _scan_options
AUTH_REJECTED = (
    b"\x01\x01\x42\x01" + b"\x01" * 16,  # a length of 1 with 18 bytes left
    b"\x01\x01\x42\x20" + b"\x01" * 16,  # a length past the header
    b"\x13\x0a" + b"\x5a" * 8 + b"\x01" * 10,  # an MD5 option 10 bytes long
    b"\x1d\x04\x01\x01" + b"\x01" * 16,  # a bare TCP-AO header
    (b"\x1d\x09" + b"\x5a" * 7) * 2 + b"\x01" * 22,  # two TCP-AO options
)


def build_insertion(kind: str, size: int = 4) -> Callable:
    """Before each real segment, a decoy for the same bytes the target drops.

    kind: ``tcp-checksum`` (wrong TCP checksum), ``ip-checksum`` (wrong IPv4
    header checksum), ``no-ack`` (data without the ACK flag, which an
    established stack discards: RFC 793 p. 72, Linux tcp_validate_incoming),
    ``source-route`` / ``bad-ip-option`` (an IPv4 option the target drops the
    packet for: ``LSRR``, ``BAD_TIMESTAMP``), ``broadcast-mac`` (sent to the
    Ethernet broadcast address, which Linux's TCP discards), ``ack-unsent``
    (acknowledging server bytes never sent: tcp_ack discards the segment),
    ``ack-too-old`` (acknowledging less than the server's first byte, before
    it has sent any: tcp_ack discards it too, RFC 5961 5.2; its window is not
    the one announced, which keeps it off header prediction, see
    tests/integration/live_cases.py, tcp_data_with_too_old_ack),
    ``vlan`` (tagged for a VLAN the server has no interface on: the kernel
    drops the frame, PACKET_OTHERHOST; live case tcp_vlan_tagged_decoy),
    ``md5`` (a TCP MD5 option the socket has no key for: tcp_inbound_hash
    drops it), ``bad-tcp-option`` (options the kernel's MD5/TCP-AO parse
    rejects: a malformed length, an MD5 option of another length, a bare or
    second TCP-AO option, with 18 or more option bytes left; live cases
    tcp_malformed_option_18_left and after).
    """

    def build(flow: Flow, real: bytes, other: bytes, plan) -> None:
        for i in range(0, len(real), size):
            seq = flow.data_seq(i)
            if kind == "no-ack":
                flow.emit_datagram(flow.cseg(seq, PSH, other[i:i + size]))
            elif kind == "tcp-checksum":
                flow.emit_datagram(bad_tcp_checksum(flow.cseg(seq, PSH | ACK, other[i:i + size])))
            elif kind == "ack-unsent":
                flow.emit_datagram(flow.cseg(seq, PSH | ACK, other[i:i + size],
                                             ack=(flow.snxt + 1000) & 0xFFFFFFFF))
            elif kind == "ack-too-old":
                behind = 1 + flow.cap.rng.randrange(100_000)
                flow.emit_datagram(flow.cseg(seq, PSH | ACK, other[i:i + size],
                                             ack=(flow.snxt - behind) & 0xFFFFFFFF,
                                             window=1000 + flow.cap.rng.randrange(60_000)))
            elif kind == "vlan":
                flow.emit_datagram(flow.cseg(seq, PSH | ACK, other[i:i + size]),
                                   vlan=1 + flow.cap.rng.randrange(4094))
            elif kind == "broadcast-mac":
                flow.emit_datagram(flow.cseg(seq, PSH | ACK, other[i:i + size]),
                                   dst_mac=b"\xff" * 6)
            elif kind == "md5":
                flow.emit_datagram(flow.cseg(seq, PSH | ACK, other[i:i + size],
                                             options=b"\x01\x01\x13\x12" + flow.cap.rng.randbytes(16)))
            elif kind == "bad-tcp-option":
                flow.emit_datagram(flow.cseg(seq, PSH | ACK, other[i:i + size],
                                             options=flow.cap.rng.choice(AUTH_REJECTED)))
            elif kind in ("source-route", "bad-ip-option"):
                flow.emit_datagram(flow.cseg(seq, PSH | ACK, other[i:i + size]),
                                   ip_options=LSRR if kind == "source-route" else BAD_TIMESTAMP)
            else:
                flow.emit_datagram(flow.cseg(seq, PSH | ACK, other[i:i + size]), bad_ip=True)
            flow.emit_datagram(flow.cseg(seq, PSH | ACK, real[i:i + size]))
    return build


def views_accepts_decoy(real: bytes, other: bytes, plan) -> dict:
    return {"accepts-decoy": other}


# -- state: RST and SYN ---------------------------------------------------------


def build_rst_out_of_window(flow: Flow, real: bytes, other: bytes, plan) -> None:
    """An RST a billion bytes off the window: ignored (RFC 793 p. 69, RFC 5961 3.2)."""
    bogus = (flow.cnxt + 0x40000000 + flow.cap.rng.randrange(0x1000000)) & 0xFFFFFFFF
    flow.emit_datagram(flow.cseg(bogus, RST | ACK))
    flow.send_stream(real)


def build_desync_syn(flow: Flow, real: bytes, other: bytes, plan) -> None:
    """A SYN with a new ISN mid-connection, then the decoy in the new sequence space.

    RFC 5961 4.2: the established stack answers a challenge ACK and keeps
    its sequence numbers, so the decoy lands out of window and is dropped;
    a monitor that resynchronises on the SYN reads the decoy instead.
    """
    fake_isn = (flow.cnxt + 0x80000000 + flow.cap.rng.randrange(0x1000000)) & 0xFFFFFFFF
    flow.emit_datagram(flow.cseg(fake_isn, SYN, options=MSS))
    flow.server_send(ACK)  # challenge ACK
    flow.emit_datagram(flow.cseg((fake_isn + 1) & 0xFFFFFFFF, PSH | ACK, other))
    flow.server_send(ACK)  # out of window: duplicate ACK
    flow.send_stream(real)


def views_resync(real: bytes, other: bytes, plan) -> dict:
    return {"resyncs-on-syn": other}


def build_after_queued_fin(flow: Flow, real: bytes, other: bytes, plan) -> None:
    """A decoy right after a FIN the server holds out of order.

    Byte 0 held back; the rest of the request sent with a FIN (queued: the
    FIN takes the sequence number after it); the decoy sent from one past
    that FIN; then byte 0. Linux queues the decoy apart (no coalescing onto
    a segment that carries a FIN, measured on 6.18.44-fc-v1045) and purges
    it when it reads the FIN: the server reads the request alone. A
    monitor that appends what follows a queued FIN (the fc-v857 build of
    the same kernel coalesced it and read it) reads the decoy after the
    request: it misses nothing, but alerts on the twin, whose decoy is the
    attack (no ``views``: those name monitors that miss).
    """
    n = len(real)
    flow.emit_datagram(flow.cseg(flow.data_seq(1), FIN | PSH | ACK, real[1:]))
    flow.emit_datagram(flow.cseg(flow.data_seq(n + 1), PSH | ACK, other))
    flow.emit_datagram(flow.cseg(flow.data_seq(0), PSH | ACK, real[:1]))
    flow.server_send(ACK)
    flow.cnxt = flow.data_seq(n + 1)  # (the FIN is read)


def build_coalesce_past_decoy(flow: Flow, real: bytes, other: bytes, plan) -> None:
    """A decoy the server keeps beside a queued segment but never reads.

    Bytes [1,3) of the request queued (the root of the kernel's rbtree);
    the decoy over [2,end) (a partial overlap: kept, to the root's right);
    the request's [3,end), whose rbtree descent meets [1,3) first and is
    coalesced into it; then byte 0. The server reads the request: the
    decoy starts inside bytes already read. A monitor that takes the
    queued segment with the nearest start (the decoy) drops the real tail
    as already present and reads the decoy's bytes from 3 on.
    """
    flow.emit_datagram(flow.cseg(flow.data_seq(1), PSH | ACK, real[1:3]))
    flow.emit_datagram(flow.cseg(flow.data_seq(2), PSH | ACK, other[2:]))
    flow.emit_datagram(flow.cseg(flow.data_seq(3), PSH | ACK, real[3:]))
    flow.emit_datagram(flow.cseg(flow.data_seq(0), PSH | ACK, real[:1]))


def build_tiny_ofo_flood(flow: Flow, real: bytes, other: bytes, plan) -> None:
    """The request queued out of order after a POST (PAD_FLOOD), then
    FLOOD_SEGMENTS one-byte copies of the POST's own bytes at every other
    offset (none coalesce), the decoy request over the queued one (dropped:
    old wins), the POST in order. Linux keeps the whole queue (its limit is
    tcp_rmem's max, 32 MB here; live case tcp_ofo_many_tiny_segments_kept);
    a monitor with a smaller per-connection queue prunes the farthest bytes,
    the request, and reads the decoy in its place."""
    at = len(PAD_FLOOD)
    flow.emit_datagram(flow.cseg(flow.data_seq(at), PSH | ACK, real[at:]))
    for i in range(1, 2 * FLOOD_SEGMENTS, 2):
        flow.emit_datagram(flow.cseg(flow.data_seq(i), PSH | ACK, real[i:i + 1]), gap=0.00002)
    flow.emit_datagram(flow.cseg(flow.data_seq(at), PSH | ACK, other[at:]))
    for i in range(0, at, 1460):
        flow.emit_datagram(flow.cseg(flow.data_seq(i), PSH | ACK, real[i:min(at, i + 1460)]))


def views_prunes_early(real: bytes, other: bytes, plan) -> dict:
    return {"prunes-its-queue-early": real[:len(PAD_FLOOD)] + other[len(PAD_FLOOD):]}


def views_nearest_segment(real: bytes, other: bytes, plan) -> dict:
    return {"nearest-queued-segment": real[:3] + other[3:]}


# -- IP fragments and TCP segments together -------------------------------------


def build_frag_seg(overlap: bool) -> Callable:
    """TCP segments, each fragmented into 8-byte pieces.

    overlap=False: segments of 16-48 bytes; every fragment of every segment
    shuffled together. overlap=True: segments repeating 1-8 bytes of the one
    before, sent last first, each one's fragments reversed and duplicated.
    """

    def build(flow: Flow, real: bytes, other: bytes, plan) -> None:
        rng = flow.cap.rng
        segs, start = [], 0
        while start < len(real):
            end = min(len(real), start + rng.randrange(16, 49))
            segs.append((start, end))
            if end == len(real):
                break
            start = end - rng.randrange(1, 9) if overlap else end
        batches = []
        for s, e in segs:
            seg = flow.cseg(flow.data_seq(s), PSH | ACK, real[s:e])
            ident = flow.cap.next_client_id()
            pieces = fragments(seg, 8)
            if overlap:
                pieces = [p for p in reversed(pieces) for _ in (0, 1)]
            batches.append([(ident, p) for p in pieces])
        if overlap:
            frames = [f for b in reversed(batches) for f in b]
        else:
            frames = [f for b in batches for f in b]
            rng.shuffle(frames)
        for ident, (off, data, mf) in frames:
            flow.cap.emit(client_frame(ip_datagram(CLIENT, SERVER, ident, data,
                                                   offset=off, mf=mf)))
    return build


def _techniques() -> list[Technique]:
    t = [
        Technique("plain", DEFAULT_POLICY, "no evasion: the baseline", build_plain),
        Technique("ip-frag-tiny", DEFAULT_POLICY,
                  "every client datagram in 8-byte IP fragments, in order",
                  build_plain, xmit=xmit_frag("in-order")),
        Technique("ip-frag-reversed", DEFAULT_POLICY,
                  "8-byte IP fragments, last first", build_plain, xmit=xmit_frag("reversed")),
        Technique("ip-frag-shuffled", DEFAULT_POLICY,
                  "8-byte IP fragments in random order", build_plain,
                  xmit=xmit_frag("shuffled")),
        Technique("ip-frag-duplicated", DEFAULT_POLICY,
                  "8-byte IP fragments, each sent twice, random order", build_plain,
                  xmit=xmit_frag("duplicated")),
    ]
    for p in ("first", "last", "bsd", "linux", "windows", "solaris"):
        t.append(Technique(
            f"ip-frag-overlap-{p}", p,
            f"Sturges-Novak fragment overlaps; the {p} target's bytes spell the request",
            build_ip_novak(p), plan=plan_ip_novak(p), views=views_ip_novak(p), pipelined=True,
            decoy="junk"))
    for p in ("linux-current", "drop-overlap"):
        t.append(Technique(
            f"ip-frag-overlap-discard-{p}", p,
            "decoy in a datagram with a partial fragment overlap (discarded), "
            "request in the retransmission", build_ip_discard, plan=plan_ip_discard,
            views=views_ip_discard))
    t += [
        Technique("tcp-seg-1byte", DEFAULT_POLICY, "1-byte TCP segments, in order",
                  build_segments(1)),
        Technique("tcp-seg-reversed", DEFAULT_POLICY, "8-byte TCP segments, last first",
                  build_segments(8, "reversed")),
        Technique("tcp-seg-shuffled", DEFAULT_POLICY, "1-byte TCP segments in random order",
                  build_segments(1, "shuffled")),
        Technique("tcp-seg-duplicated", DEFAULT_POLICY, "4-byte TCP segments, each sent twice",
                  build_segments(4, "duplicated")),
        Technique("tcp-overlap-identical", DEFAULT_POLICY,
                  "in-order segments overlapping the previous one with the same bytes",
                  build_overlap_identical),
    ]
    for p in TCP_CLASS:
        t.append(Technique(
            f"tcp-overlap-{p}", p,
            f"Novak segment overlaps, out of order; the {p} target's bytes spell the request",
            build_tcp_novak(p), plan=plan_tcp_novak(p), views=views_tcp_novak(p),
            decoy="junk"))
    t += [
        Technique("tcp-retransmit-conflict", DEFAULT_POLICY,
                  "acknowledged data retransmitted with different bytes",
                  build_retransmit_conflict, views=views_first_copy_loses),
        Technique("tcp-insert-bad-checksum", DEFAULT_POLICY,
                  "decoy segments with a wrong TCP checksum before each real one",
                  build_insertion("tcp-checksum"), views=views_accepts_decoy, checksum="on"),
        Technique("ip-insert-bad-checksum", DEFAULT_POLICY,
                  "decoy segments with a wrong IPv4 header checksum before each real one",
                  build_insertion("ip-checksum"), views=views_accepts_decoy, checksum="on"),
        Technique("ip-insert-source-route", DEFAULT_POLICY,
                  "decoy segments with a loose source route IP option before each real one",
                  build_insertion("source-route"), views=views_accepts_decoy),
        Technique("ip-insert-bad-option", DEFAULT_POLICY,
                  "decoy segments with a malformed IP timestamp option before each real one",
                  build_insertion("bad-ip-option"), views=views_accepts_decoy),
        Technique("tcp-insert-ack-unsent", DEFAULT_POLICY,
                  "decoy segments acknowledging 1000 server bytes never sent before each "
                  "real one", build_insertion("ack-unsent"), views=views_accepts_decoy),
        Technique("tcp-insert-ack-too-old", DEFAULT_POLICY,
                  "decoy segments acknowledging less than the server ever sent, before "
                  "each real one", build_insertion("ack-too-old"), views=views_accepts_decoy),
        Technique("tcp-insert-vlan-tagged", DEFAULT_POLICY,
                  "decoy segments tagged for a VLAN (the server's interface has none) "
                  "before each real one", build_insertion("vlan"), views=views_accepts_decoy),
        Technique("tcp-insert-broadcast-mac", DEFAULT_POLICY,
                  "decoy segments sent to the Ethernet broadcast address before each real one "
                  "(the sensor on the server, told its MAC)",
                  build_insertion("broadcast-mac"), views=views_accepts_decoy, host_mac=True),
        Technique("tcp-insert-md5", DEFAULT_POLICY,
                  "decoy segments with a TCP MD5 option (no key on the server) before each "
                  "real one", build_insertion("md5"), views=views_accepts_decoy),
        Technique("tcp-insert-bad-tcp-option", DEFAULT_POLICY,
                  "decoy segments whose TCP options the kernel's MD5/TCP-AO parse rejects "
                  "before each real one", build_insertion("bad-tcp-option"),
                  views=views_accepts_decoy),
        Technique("tcp-insert-no-ack", DEFAULT_POLICY,
                  "decoy data segments without ACK before each real one",
                  build_insertion("no-ack"), views=views_accepts_decoy),
        Technique("tcp-rst-out-of-window", DEFAULT_POLICY,
                  "RST with a sequence number far outside the window before the request",
                  build_rst_out_of_window),
        Technique("tcp-coalesce-past-decoy", DEFAULT_POLICY,
                  "[1,3) queued, a decoy over [2,end), the request's [3,end) (coalesced "
                  "into [1,3): the kernel's rbtree descent meets it first), then byte 0",
                  build_coalesce_past_decoy, views=views_nearest_segment),
        Technique("tcp-after-queued-fin", DEFAULT_POLICY,
                  "the request but byte 0 with a FIN held out of order, a decoy one past "
                  "that FIN (queued apart, purged when the FIN is read), then byte 0",
                  build_after_queued_fin),
        Technique("tcp-desync-syn", DEFAULT_POLICY,
                  "SYN with a new ISN mid-connection, decoy data in the new sequence space",
                  build_desync_syn, views=views_resync),
        Technique("tcp-pad-past-depth", DEFAULT_POLICY,
                  "a 1.1 MB upload first on the keep-alive connection, the request after "
                  "it (past a 1 MB reassembly depth)", build_acked, prefix=PAD),
        Technique("tcp-ofo-tiny-flood", DEFAULT_POLICY,
                  f"the request queued out of order behind a POST, {FLOOD_SEGMENTS:,} one-byte "
                  "segments before it, a decoy over it, then the POST in order",
                  build_tiny_ofo_flood, prefix=PAD_FLOOD, views=views_prunes_early),
        Technique("frag-seg-shuffled", DEFAULT_POLICY,
                  "16-48 byte TCP segments in 8-byte IP fragments, all shuffled together",
                  build_frag_seg(overlap=False), xmit=xmit_frag("in-order")),
        Technique("frag-seg-overlap-dup", DEFAULT_POLICY,
                  "overlapping TCP segments, last first, in reversed duplicated fragments",
                  build_frag_seg(overlap=True), xmit=xmit_frag("reversed")),
    ]
    return t


TECHNIQUES: dict[str, Technique] = {t.name: t for t in _techniques()}


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


@dataclass
class Connection:
    """One connection of a capture, as the scorer needs it."""

    client: str
    port: int
    kind: str  # "attack" or "twin"
    attack: str
    signatures: tuple[str, ...]
    stream: bytes  # what the target's web server reads
    views: dict = field(default_factory=dict)  # what a wrong monitor reads
    beaten: list = field(default_factory=list)  # policies the layout tells apart

    def manifest(self) -> dict:
        return {"client": self.client, "port": self.port, "kind": self.kind,
                "attack": self.attack, "signatures": list(self.signatures),
                "beaten": self.beaten}


@dataclass
class Generated:
    technique: Technique
    pcap: Path
    connections: list[Connection]

    def manifest(self) -> dict:
        t = self.technique
        return {"technique": t.name, "policy": t.policy, "summary": t.summary,
                "args": t.cli_args(), "pcap": self.pcap.name,
                "connections": [c.manifest() for c in self.connections]}


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def select(names=None) -> list[Attack]:
    if not names:
        return list(ATTACKS)
    by = {a.name: a for a in ATTACKS}
    return [by[n] for n in names]


def generate(tech: Technique, attacks, outdir) -> Generated:
    """Write ``outdir/<technique>.pcap`` (and .json) for ``attacks`` and their twins."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    cap = Capture(seed_of(tech.name))
    conns = []
    for a in attacks:
        attack_req, twin_req = request_pair(a)
        pre = tech.prefix + (PRE if tech.pipelined else b"")
        attack_stream, twin_stream = pre + attack_req, pre + twin_req
        if tech.decoy == "junk":
            twin_stream = junk_of(attack_stream, a)
        ks = attack_stream.index(a.key_bytes)
        key = (ks, ks + len(a.key_bytes))
        plan = tech.plan(attack_stream, twin_stream, key, a.run_key) if tech.plan else None
        for kind, real, other in (("attack", attack_stream, twin_stream),
                                  ("twin", twin_stream, attack_stream)):
            flow = Flow(cap, tech.xmit)
            flow.open()
            tech.build(flow, real, other, plan)
            flow.finish(real, responses=1 + tech.pipelined + bool(tech.prefix))
            cap.wait(CONN_GAP)
            conns.append(Connection(
                CLIENT, flow.cport, kind, a.name, a.signatures if kind == "attack" else (),
                real, tech.views(real, other, plan) if tech.views else {},
                list(plan.beaten) if plan is not None else []))
    pcap = outdir / f"{tech.name}.pcap"
    cap.write(pcap)
    g = Generated(tech, pcap, conns)
    (outdir / f"{tech.name}.json").write_text(json.dumps(g.manifest(), indent=1) + "\n")
    return g


def generate_all(outdir, techniques=None, attacks=None) -> list[Generated]:
    names = techniques or list(TECHNIQUES)
    return [generate(TECHNIQUES[n], attacks or select(), outdir) for n in names]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path, nargs="?", default=Path(__file__).parent / "out")
    ap.add_argument("--small", action="store_true", help=f"only the attacks {', '.join(SMALL)}")
    ap.add_argument("-t", "--technique", action="append", choices=list(TECHNIQUES),
                    help="only this technique (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the techniques and exit")
    args = ap.parse_args(argv)
    if args.list:
        for t in TECHNIQUES.values():
            print(f"{t.name:<36} {t.policy:<14} {t.summary}")
        return 0
    for g in generate_all(args.outdir, args.technique, select(SMALL if args.small else None)):
        print(f"{g.pcap}  {len(g.connections)} connections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
