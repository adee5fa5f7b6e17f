"""The live-target cases: crafted traffic, a real socket, and the sensor's view.

Each case sends hand-made frames from the client namespace to a real socket
of this machine's kernel in the server namespace (see live_netns), records
what the application received, and writes the capture taken on the server's
veth. ``sensor_view`` runs the project's pipeline (policy linux-current) over
that capture, so a test can compare the two.

UDP cases (port 9999): fragmented datagrams. The application's ``recvfrom``
payloads are compared with the sensor's reassembled datagrams. After the case
the client sends one whole datagram from another source port as a barrier:
when the socket has it, the kernel has processed every frame before it.

TCP cases (port 8080): the client does a real handshake (it sniffs the
SYN-ACK for the server's ISN), then sends the case's segments and, mostly, a
FIN. The bytes the server application read (until EOF, or a short timeout)
are compared with the sensor's reassembled client->server stream.

``kernel`` in each case is what Linux 6.18 (this project's machine) delivered
when the case was written; ``main()`` prints what this kernel delivers now
and whether it still matches.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from live_netns import CLI4, CLI6, CLI_MAC, SRV4, SRV6, SRV_MAC, Lab

UDP_PORT = 9999
TCP_PORT = 8080
UDP_SPORT = 40000
BARRIER_SPORT = 40999
TCP_SPORT = 40100
CLIENT_ISN = 0x10000000

# a loose source route of one hop: Linux refuses it (accept_source_route off)
LSRR = b"\x83\x07\x04\x0a\x00\x00\x09"

SENSOR_RULES = 'LIVE-TCP tcp * 8080 "zzzz-never"\nLIVE-UDP udp * 9999 "zzzz-never"\n'


def _scapy():
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    return Ether, IP, IPv6, IPv6ExtHdrFragment, TCP, UDP, Raw


# ---------------------------------------------------------------------------
# UDP over fragments
# ---------------------------------------------------------------------------

def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def with_ip_options(frame: bytes, options: bytes) -> bytearray:
    """An Ethernet/IPv4 frame (20-byte header) with ``options`` put in its
    IP header, padded with end-of-list bytes to a 4-byte boundary; lengths
    and the header checksum made right (the TCP/UDP checksum does not cover
    IP options)."""
    opts = options + b"\0" * (-len(options) % 4)
    ip = bytearray(frame[14:34])
    ip[0] = 0x40 | (20 + len(opts)) // 4
    struct.pack_into("!H", ip, 2, struct.unpack_from("!H", ip, 2)[0] + len(opts))
    struct.pack_into("!H", ip, 10, 0)
    struct.pack_into("!H", ip, 10, inet_checksum(bytes(ip) + opts))
    return bytearray(frame[:14]) + ip + opts + bytearray(frame[34:])


def with_tcp_options(frame: bytearray, extra: bytes, v6: bool) -> bytearray:
    """An Ethernet/IP/TCP frame (no IPv4 options or IPv6 extension headers)
    with ``extra`` appended to its TCP options: data offset, IP length and
    both checksums made right again."""
    extra = extra + b"\0" * (-len(extra) % 4)
    ihl = 40 if v6 else 20
    t = 14 + ihl
    doff = (frame[t + 12] >> 4) * 4
    assert doff + len(extra) <= 60, "TCP options longer than 40 bytes"
    out = bytearray(frame[:t + doff]) + extra + frame[t + doff:]
    out[t + 12] = ((doff + len(extra)) // 4) << 4 | (out[t + 12] & 0x0F)
    seg_len = len(out) - t
    if v6:
        struct.pack_into("!H", out, 14 + 4, seg_len)
        pseudo = bytes(out[22:54]) + struct.pack("!IxxxB", seg_len, 6)
    else:
        struct.pack_into("!H", out, 14 + 2, ihl + seg_len)
        struct.pack_into("!H", out, 14 + 10, 0)
        struct.pack_into("!H", out, 14 + 10, inet_checksum(bytes(out[14:14 + ihl])))
        pseudo = bytes(out[26:34]) + struct.pack("!xBH", 6, seg_len)
    struct.pack_into("!H", out, t + 16, 0)
    struct.pack_into("!H", out, t + 16, inet_checksum(pseudo + bytes(out[t:])))
    return out


def ipv4_fragments(frame: bytes, size: int, order: str = "in-order", seed: int = 0,
                   ident: int = 0x4242) -> list:
    """An Ethernet/IPv4 frame (20-byte header) as IPv4 fragments of ``size``
    payload bytes (a multiple of 8), in ``order``: in-order, reversed,
    shuffled, dup-shuffled (one fragment twice, all shuffled) or
    conflict-shuffled (one fragment again with other bytes, all shuffled)."""
    eth, ip, payload = frame[:14], bytearray(frame[14:34]), frame[34:]
    pieces = []
    for off in range(0, len(payload), size):
        piece = payload[off:off + size]
        h = bytearray(ip)
        more = off + size < len(payload)
        struct.pack_into("!H", h, 2, 20 + len(piece))
        struct.pack_into("!H", h, 4, ident)
        struct.pack_into("!H", h, 6, (0x2000 if more else 0) | off // 8)
        struct.pack_into("!H", h, 10, 0)
        struct.pack_into("!H", h, 10, inet_checksum(bytes(h)))
        pieces.append(eth + bytes(h) + piece)
    return _arrange(pieces, order, seed, 14 + 6, 34, True)


def ipv6_fragments(frame: bytes, size: int, order: str = "in-order", seed: int = 0,
                   ident: int = 0x4242) -> list:
    """An Ethernet/IPv6 frame as IPv6 fragments of ``size`` bytes (a
    multiple of 8) of everything after the 40-byte header (extension headers
    included: all fragmentable here), in ``order`` as ``ipv4_fragments``."""
    eth, ip, rest = frame[:14], bytearray(frame[14:54]), frame[54:]
    nh = ip[6]
    pieces = []
    for off in range(0, len(rest), size):
        piece = rest[off:off + size]
        more = off + size < len(rest)
        fh = struct.pack("!BBHI", nh, 0, off | (1 if more else 0), ident)
        h = bytearray(ip)
        h[6] = 44
        struct.pack_into("!H", h, 4, len(fh) + len(piece))
        pieces.append(eth + bytes(h) + fh + piece)
    return _arrange(pieces, order, seed, 54 + 2, 62, False)


def _arrange(pieces: list, order: str, seed: int, off_at: int, data_at: int,
             v4: bool) -> list:
    """Fragments ``pieces`` in ``order`` (see ``ipv4_fragments``); ``off_at``:
    where a fragment's offset word is (its unit, 8 bytes, is 1 in IPv4's and
    8 in IPv6's), ``data_at``: where its data starts."""
    rng = random.Random(seed)
    if order == "conflict-shuffled" and len(pieces) > 1:
        # one fragment again with other bytes: the same range, or 8 bytes on
        # (an overlap that makes Linux discard the datagram)
        fr = bytearray(pieces[rng.randrange(len(pieces) - 1)])
        word = struct.unpack_from("!H", fr, off_at)[0]
        struct.pack_into("!H", fr, off_at, word + rng.randrange(2) * (1 if v4 else 8))
        fr[data_at:] = bytes(rng.randrange(65, 91) for _ in range(len(fr) - data_at))
        if v4:
            struct.pack_into("!H", fr, 14 + 10, 0)
            struct.pack_into("!H", fr, 14 + 10, inet_checksum(bytes(fr[14:34])))
        pieces.append(bytes(fr))
        order = "shuffled"
    if order == "reversed":
        pieces.reverse()
    elif order in ("shuffled", "dup-shuffled"):
        if order == "dup-shuffled":
            pieces.append(rng.choice(pieces))
        rng.shuffle(pieces)
    return pieces


def udp_bytes(v6: bool, sport: int, dport: int, payload: bytes, checksum: bool = True) -> bytes:
    """A UDP header + payload from the client to the server."""
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    if not checksum:
        return hdr + payload  # IPv4 only: 0 = "no checksum"
    if v6:
        pseudo = (socket.inet_pton(socket.AF_INET6, CLI6) + socket.inet_pton(socket.AF_INET6, SRV6)
                  + struct.pack("!I3xB", length, 17))
    else:
        pseudo = (socket.inet_pton(socket.AF_INET, CLI4) + socket.inet_pton(socket.AF_INET, SRV4)
                  + struct.pack("!xBH", 17, length))
    c = inet_checksum(pseudo + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", c) + payload


# 56 payload bytes; with the UDP header 64 bytes to fragment, in four
# 16-byte fragments A [0,16) B [16,32) C [32,48) D [48,64) (offsets in the
# fragmentable part; A holds the UDP header and "abcdefgh").
PAYLOAD = b"abcdefgh" b"ijklmnopqrstuvwx" b"yz0123456789ABCD" b"EFGHIJKLMNOPQRST"
ALT_PAYLOAD = b"#" * len(PAYLOAD)  # another datagram of the same length
# RFC 7112 case: an 8-byte Destination Options header (next header UDP, PadN)
# before the UDP header, so the first fragment has no UDP header.
DEST_OPTS = bytes([17, 0, 1, 4, 0, 0, 0, 0])


@dataclass
class Piece:
    offset: int  # byte offset in the fragmentable part
    data: bytes
    more: bool  # MF / M flag
    ip_options: bytes = b""  # IPv4: options in this fragment's header
    bad_checksum: bool = False  # IPv4: a wrong header checksum (dropped in ip_rcv)
    ident: int | None = None  # another datagram's id (default: the case's)
    ecn: int = 0  # the ECN codepoint (IPv4 TOS, IPv6 traffic class): 0 Not-ECT, 3 CE


@dataclass
class FragCase:
    name: str
    v6: bool
    doc: str
    build: Callable[["Dgram"], list]  # -> list[Piece] in send order
    checksum: bool = True  # False: UDP checksum 0 (IPv4), app sees the bytes kept
    dest_opts: bool = False  # IPv6: Destination Options before UDP
    kernel: list | None = None  # payloads Linux 6.18 delivered (recorded)
    kind: str = "udp"
    # IPv6, not fragmented: these extension headers (next-header numbers
    # filled in) between the IPv6 and the UDP header instead of ``build``'s pieces
    ext: list | None = None


class Dgram:
    """One UDP datagram's fragmentable bytes, cut into pieces by offset."""

    def __init__(self, case: FragCase):
        udp = udp_bytes(case.v6, UDP_SPORT, UDP_PORT, PAYLOAD, case.checksum)
        self.nh = 60 if case.dest_opts else 17
        self.data = (DEST_OPTS if case.dest_opts else b"") + udp
        self.size = len(self.data)
        self.v6 = case.v6

    def p(self, start: int, end: int, data: bytes | None = None, more: bool | None = None) -> Piece:
        if data is None:
            data = self.data[start:end]
        elif len(data) == 1:
            data = data * (end - start)
        return Piece(start, data, end < self.size if more is None else more)

    def quarters(self) -> list:
        return [self.p(i, i + 16) for i in range(0, self.size, 16)]


def frag_frames(case: FragCase, pieces: list, ident: int) -> list:
    Ether, IP, IPv6, IPv6ExtHdrFragment, _TCP, _UDP, Raw = _scapy()
    eth = Ether(src=CLI_MAC, dst=SRV_MAC)
    frames = []
    for pc in pieces:
        if case.v6:
            pkt = (eth / IPv6(src=CLI6, dst=SRV6, hlim=64, tc=pc.ecn)
                   / IPv6ExtHdrFragment(nh=60 if case.dest_opts else 17, offset=pc.offset // 8,
                                        m=int(pc.more),
                                        id=ident if pc.ident is None else pc.ident)
                   / Raw(pc.data))
        else:
            pkt = (eth / IP(src=CLI4, dst=SRV4, ttl=64, tos=pc.ecn,
                            id=ident if pc.ident is None else pc.ident, proto=17,
                            flags="MF" if pc.more else 0, frag=pc.offset // 8)
                   / Raw(pc.data))
        raw = bytearray(with_ip_options(bytes(pkt), pc.ip_options) if pc.ip_options
                        else bytes(pkt))
        if pc.bad_checksum and not case.v6:
            raw[14 + 10] ^= 0x5A
        frames.append(bytes(raw))
    return frames


def ext_chain(ext: list, upper: int) -> tuple[int, bytes]:
    """(the IPv6 header's next header, the chain's bytes) for extension
    headers ``ext``, (header type, body after its two first bytes) each,
    before protocol ``upper``; each header padded to a multiple of 8."""
    chain = b""
    types = [t for t, _ in ext] + [upper]
    for i, (_t, body) in enumerate(ext):
        hdr = bytes([types[i + 1], (len(body) + 2 + 7) // 8 - 1]) + body
        chain += hdr + b"\0" * (-len(hdr) % 8)
    return types[0], chain


def ext_frame(ext: list) -> bytes:
    """An IPv6/UDP frame of PAYLOAD with the extension headers ``ext``."""
    Ether, _IP, IPv6, _F, _TCP, _UDP, Raw = _scapy()
    nh, chain = ext_chain(ext, 17)
    udp = udp_bytes(True, UDP_SPORT, UDP_PORT, PAYLOAD)
    ip = IPv6(src=CLI6, dst=SRV6, nh=nh, hlim=64)
    return bytes(Ether(src=CLI_MAC, dst=SRV_MAC) / ip / Raw(chain + udp))


def barrier_frame(v6: bool) -> bytes:
    Ether, IP, IPv6, _F, _TCP, _UDP, Raw = _scapy()
    udp = udp_bytes(v6, BARRIER_SPORT, UDP_PORT, b"barrier")
    ip = IPv6(src=CLI6, dst=SRV6, nh=17, hlim=64) if v6 else IP(src=CLI4, dst=SRV4, proto=17, ttl=64)
    return bytes(Ether(src=CLI_MAC, dst=SRV_MAC) / ip / Raw(udp))


def _shuffled(items, seed):
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


def _frag_cases() -> list:
    cases = []

    def add(suffix, doc, build, v4=True, v6=True, **kw):
        k4 = kw.pop("kernel4", None)
        k6 = kw.pop("kernel6", None)
        if v4:
            cases.append(FragCase(f"ipv4_frag_{suffix}", False, doc, build, kernel=k4, **kw))
        if v6:
            kw6 = dict(kw)
            kw6["checksum"] = True  # IPv6 UDP needs a real checksum
            cases.append(FragCase(f"ipv6_frag_{suffix}", True, doc, build, kernel=k6, **kw6))

    whole = [PAYLOAD]
    add("in_order", "A B C D", lambda d: d.quarters(), kernel4=whole, kernel6=whole)

    def short_udp_length(d, tail, fragments=False):
        """One whole datagram (offset 0, no MF) whose UDP length leaves out
        ``tail`` bytes sent after it (the checksum is over what it covers)."""
        whole = udp_bytes(d.v6, UDP_SPORT, UDP_PORT, PAYLOAD) + tail
        if not fragments:
            return [Piece(0, whole, False)]
        return [Piece(i, whole[i:i + 16], i + 16 < len(whole)) for i in range(0, len(whole), 16)]
    add("udp_length_short_of_payload", "one datagram whose UDP length leaves out 8 bytes "
        "after its payload", lambda d: short_udp_length(d, b"########"),
        kernel4=whole, kernel6=whole)
    add("udp_length_short_of_reassembly", "fragments of a datagram whose UDP length leaves "
        "out the 16 bytes of the last", lambda d: short_udp_length(d, b"#" * 16, True),
        kernel4=whole, kernel6=whole)

    def atomic(d, at):
        """The quarters, and at ``at`` an atomic fragment (offset 0, M clear;
        same id) holding a whole other datagram of the same length."""
        alt = Piece(0, udp_bytes(True, UDP_SPORT, UDP_PORT, ALT_PAYLOAD), False)
        q = d.quarters()
        return q[:at] + [alt] + q[at:]
    add("atomic_between", "A, an atomic fragment with the same id, B C D",
        lambda d: atomic(d, 1), v4=False, kernel6=[ALT_PAYLOAD, PAYLOAD])
    add("atomic_before", "an atomic fragment with the same id, A B C D",
        lambda d: atomic(d, 0), v4=False, kernel6=[ALT_PAYLOAD, PAYLOAD])
    add("atomic_after", "A B C D, an atomic fragment with the same id",
        lambda d: atomic(d, 4), v4=False, kernel6=[PAYLOAD, ALT_PAYLOAD])
    add("reversed", "D C B A", lambda d: d.quarters()[::-1], kernel4=whole, kernel6=whole)
    add("shuffled", "a fixed shuffle (seed 7)", lambda d: _shuffled(d.quarters(), 7),
        kernel4=whole, kernel6=whole)
    add("duplicated", "A A B B C C D D: the second D comes after completion",
        lambda d: [x for q in d.quarters() for x in (q, q)], kernel4=whole, kernel6=whole)
    add("inside_run_duplicate",
        "A B C (one contiguous run), then [8,40) with the same bytes, spanning A-B-C "
        "inside that run (a duplicate), then D",
        lambda d: d.quarters()[:3] + [d.p(8, 40)] + d.quarters()[3:],
        kernel4=whole, kernel6=whole)
    add("decoy_with_source_route_first",
        "A, a decoy B of '#' whose IP header has a loose source route, then the real B, C, D "
        "(IPv4: UDP checksum 0 so the app would see the decoy's bytes)",
        lambda d: [d.quarters()[0], Piece(16, b"#" * 16, True, LSRR)] + d.quarters()[1:],
        v6=False, checksum=False, kernel4=whole)
    add("inside_run_conflicting",
        "A B C, then [8,40) of '#' inside that run, then D: which bytes are kept? "
        "(IPv4: UDP checksum 0 so the app sees them)",
        lambda d: d.quarters()[:3] + [d.p(8, 40, b"#")] + d.quarters()[3:],
        checksum=False, kernel4=whole, kernel6=whole)
    add("partial_overlap_conflicting",
        "A, then [8,24) of '#' (overlaps A's tail), then B C D",
        lambda d: [d.p(0, 16), d.p(8, 24, b"#")] + d.quarters()[1:],
        checksum=False, kernel4=[], kernel6=[])
    add("partial_overlap_same_bytes",
        "A, then [8,24) with the datagram's own bytes (overlaps A's tail), then B C D",
        lambda d: [d.p(0, 16), d.p(8, 24)] + d.quarters()[1:],
        kernel4=[], kernel6=[])
    add("overlap_after_reordering",
        "C A B (three separate runs, since they came out of order), then [8,40) with the "
        "same bytes (wholly inside what is held, but across runs), then D",
        lambda d: [d.quarters()[i] for i in (2, 0, 1)] + [d.p(8, 40)] + d.quarters()[3:],
        kernel4=[], kernel6=[])
    add("overlap_then_resend",
        "A, [8,24) of '#' (overlap), then the whole datagram again A B C D",
        lambda d: [d.p(0, 16), d.p(8, 24, b"#")] + d.quarters(),
        checksum=False, kernel4=whole, kernel6=whole)
    add("tiny", "8-byte fragments, in order (the first holds only the UDP header)",
        lambda d: [d.p(i, i + 8) for i in range(0, d.size, 8)], kernel4=whole, kernel6=whole)
    add("tiny_shuffled", "8-byte fragments, shuffled (seed 3)",
        lambda d: _shuffled([d.p(i, i + 8) for i in range(0, d.size, 8)], 3),
        kernel4=whole, kernel6=whole)
    add("unaligned_nonlast",
        "A' = [0,20) with MF, its last 4 bytes '#' (not a multiple of 8), then B C D "
        "from 16 (IPv4 trims A' to 16; IPv6 must reject it)",
        lambda d: [d.p(0, 20, d.data[:16] + b"####")] + d.quarters()[1:],
        checksum=False, kernel4=whole, kernel6=[])

    def ecn(*codes):
        """The quarters, each with its ECN codepoint: Linux ORs 1 << codepoint
        over the fragments and drops the datagram when Not-ECT comes with
        ECT or CE (ip_frag_ecn_table, RFC 3168 5.3): a decoy datagram a
        sensor that reassembles it reads and the host never delivers."""
        def build(d):
            q = d.quarters()
            for pc, code in zip(q, codes):
                pc.ecn = code
            return q
        return build
    add("ecn_not_ect_with_ce", "A B C D, C marked CE, the rest Not-ECT",
        ecn(0, 0, 3, 0), kernel4=[], kernel6=[])
    add("ecn_not_ect_with_ect0", "A B C D, A ECT(0), the rest Not-ECT",
        ecn(2, 0, 0, 0), kernel4=[], kernel6=[])
    add("ecn_ect1_with_ce", "A B C D, ECT(1) but D CE", ecn(1, 1, 1, 3),
        kernel4=whole, kernel6=whole)
    add("ecn_ect0_with_ect1", "A B C D, ECT(0) and ECT(1) mixed", ecn(2, 1, 2, 1),
        kernel4=whole, kernel6=whole)
    cases.append(FragCase(
        "ipv6_frag_rfc7112_no_udp_header_in_first", True,
        "first fragment: Destination Options (8 bytes) only, the UDP header in the "
        "second (RFC 7112: the first fragment must hold the whole header chain)",
        lambda d: [d.p(0, 8), d.p(8, d.size)], dest_opts=True, kernel=[]))
    cases.append(FragCase(
        "ipv6_frag_dest_opts_with_udp_header_in_first", True,
        "control for the RFC 7112 case: Destination Options + UDP header + 8 bytes in the "
        "first fragment, the rest in the second",
        lambda d: [d.p(0, 24), d.p(24, d.size)], dest_opts=True, kernel=whole))
    for name, doc, ext, taken in IPV6_EXT_CASES:
        cases.append(FragCase(f"ipv6_ext_{name}", True, doc, None, ext=ext,
                              kernel=whole if taken else []))

    def after_incomplete(n):
        """n first fragments (8 bytes, other ids) never completed, then the
        quarters: past ipfrag_high_thresh (4 MB of queue and skb truesize:
        1,032 bytes for each of these over IPv4, 1,016 over IPv6, here) the
        host drops every fragment, the ones completing a datagram too
        (inet_frag_find)."""
        def build(d):
            junk = [Piece(0, b"########", True, ident=0x1000 + i) for i in range(n)]
            return junk + d.quarters()
        return build
    add("host_memory_nearly_full", "4,050 incomplete datagrams (one 8-byte first fragment "
        "each), then A B C D", after_incomplete(4050), kernel4=whole, kernel6=whole)
    add("host_memory_full", "4,200 incomplete datagrams (one 8-byte first fragment each), "
        "then A B C D: dropped", after_incomplete(4200), kernel4=[], kernel6=[])

    def far_apart(n, first=None):
        """``first`` (default A), n first fragments of other datagrams from
        the same source, then the quarters from B (from A with a decoy
        first). IPv4: past ipfrag_max_dist (64) fragments from the source
        since the queue's last one, ip_frag_too_far resets the queue (what
        it held is gone) before taking the new fragment; IPv6 has no such
        rule."""
        def build(d):
            q = d.quarters()
            head = [q[0] if first is None else first(d)]
            junk = [Piece(0, b"########", True, ident=0x2000 + i) for i in range(n)]
            return head + junk + (q if first is not None else q[1:])
        return build
    add("max_dist_63_between", "A, 63 first fragments of other datagrams, B C D",
        far_apart(63), v6=False, kernel4=whole)
    add("max_dist_64_between", "A, 64 first fragments of other datagrams, B C D: A is "
        "gone, the datagram never completes (IPv6 has no such limit)", far_apart(64),
        kernel4=[], kernel6=whole)
    add("max_dist_decoy_first", "a decoy A of '#', 64 first fragments of other datagrams, "
        "then A B C D: the decoy is gone when A comes (else it is kept, first wins) "
        "(IPv4: UDP checksum 0 so the app would see the decoy's bytes; IPv6 keeps the "
        "decoy, whose bytes fail the checksum)",
        far_apart(64, lambda d: d.p(0, 16, d.data[:8] + b"#" * 8)),
        checksum=False, kernel4=whole, kernel6=[])
    return cases


# IPv6 extension header chains before a UDP datagram, and whether Linux 6.18
# took it: (name, what, [(header type, body)], taken). Options: type, length,
# data; an unknown option's two high bits say what a host does with it
# (RFC 8200 4.2: 00 skip it, 01 discard, 10 discard and tell, 11 discard and
# tell unless multicast).
HOP, ROUTING, DSTOPTS = 0, 43, 60
PADN4 = b"\x01\x04\0\0\0\0"  # PadN: the header's 6 option bytes
IPV6_EXT_CASES = [
    ("dstopts_padn", "Destination Options with PadN", [(DSTOPTS, PADN4)], True),
    ("dstopts_unknown_skip", "Destination Options, unknown option 0x1e (skip)",
     [(DSTOPTS, b"\x1e\x04\0\0\0\0")], True),
    ("dstopts_unknown_discard", "Destination Options, unknown option 0x5e (discard)",
     [(DSTOPTS, b"\x5e\x04\0\0\0\0")], False),
    ("dstopts_unknown_discard_icmp", "Destination Options, unknown option 0x9e (discard, tell)",
     [(DSTOPTS, b"\x9e\x04\0\0\0\0")], False),
    ("dstopts_unknown_discard_icmp_unicast",
     "Destination Options, unknown option 0xde (discard, tell unless multicast)",
     [(DSTOPTS, b"\xde\x04\0\0\0\0")], False),
    ("hopopts_unknown_discard", "Hop-by-Hop first, unknown option 0x5e (discard)",
     [(HOP, b"\x5e\x04\0\0\0\0")], False),
    ("hopopts_padn", "Hop-by-Hop first with PadN", [(HOP, PADN4)], True),
    ("hopopts_after_dstopts", "Destination Options, then a Hop-by-Hop header (not first)",
     [(DSTOPTS, PADN4), (HOP, PADN4)], False),
    ("two_dstopts", "two Destination Options headers", [(DSTOPTS, PADN4), (DSTOPTS, PADN4)],
     True),
    ("routing0_segleft1", "a type 0 Routing header, one address, 1 segment left",
     [(ROUTING, b"\x00\x01\0\0\0\0" + bytes(16))], False),
    ("routing0_segleft0", "a type 0 Routing header, one address, 0 segments left",
     [(ROUTING, b"\x00\x00\0\0\0\0" + bytes(16))], True),
    ("routing4_segleft1", "a Segment Routing header (type 4), 1 segment left",
     [(ROUTING, b"\x04\x01\x01\0\0\0" + bytes(16))], False),
    ("routing253_segleft1", "a Routing header of an unknown type (253), 1 segment left",
     [(ROUTING, b"\xfd\x01\0\0\0\0" + bytes(16))], False),
    ("routing253_segleft0", "a Routing header of an unknown type (253), 0 segments left",
     [(ROUTING, b"\xfd\x00\0\0\0\0" + bytes(16))], True),
]


@dataclass
class UdpResult:
    app: list  # payloads recvfrom returned, from the case's source port
    frames_sent: int
    frames_seen_from_client: int
    pcap: Path
    barrier_seen: bool


def run_frag_case(lab: Lab, case: FragCase, pcap: Path) -> UdpResult:
    fam = socket.AF_INET6 if case.v6 else socket.AF_INET
    srv = lab.socket(lab.srv, fam, socket.SOCK_DGRAM)
    cap = link = None
    try:
        srv.bind((SRV6 if case.v6 else SRV4, UDP_PORT))
        cap = lab.capture()
        link = lab.client_link()
        d = Dgram(case)
        ident = (0x5000 + sum(case.name.encode())) & 0xFFFF
        if case.ext is not None:
            frames = [ext_frame(case.ext)] + [barrier_frame(case.v6)]
        else:
            frames = frag_frames(case, case.build(d), ident) + [barrier_frame(case.v6)]
        for fr in frames:
            link.send(fr)
        got, barrier = [], False
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            srv.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, addr = srv.recvfrom(65535)
            except socket.timeout:
                break
            if addr[1] == BARRIER_SPORT:
                barrier = True
                break
            if addr[1] == UDP_SPORT:
                got.append(data)
        # anything the barrier overtook (it should not happen)
        srv.settimeout(0.02)
        try:
            while True:
                data, addr = srv.recvfrom(65535)
                if addr[1] == UDP_SPORT:
                    got.append(data)
        except socket.timeout:
            pass
        cap.write_pcap(pcap)
        from_client = sum(1 for _ts, f in cap.frames if f[6:12] == _mac(CLI_MAC))
        return UdpResult(got, len(frames), from_client, pcap, barrier)
    finally:
        srv.close()
        if cap:
            cap.close()
        if link:
            link.close()


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


# ---------------------------------------------------------------------------
# TCP
# ---------------------------------------------------------------------------

class TcpClient:
    """A scripted TCP client on a raw link: sequence numbers are offsets.

    Offset 0 is the first data byte (ISN + 1). ``seg`` sends one segment with
    the ACK flag and the server's next sequence number unless told otherwise.
    """

    def __init__(self, link, sport: int = TCP_SPORT, timestamps: bool = False,
                 v6: bool = False):
        self.link = link
        self.v6 = v6
        self.sport = sport
        self.isn = CLIENT_ISN
        self.timestamps = timestamps
        self.tsval = 1000
        self.ts_ecr = 0
        self.srv_isn = None
        self.srv_ack = 0  # offset the server acknowledged up to
        self.srv_win = 0
        self.syn_ack_win = 0
        self.sent = 0
        self.server_frames = []  # parsed (flags, seq, ack, win) the client saw

    # --- frames -----------------------------------------------------------
    def _send(self, seq: int, flags: str, data: bytes = b"", urg: int = 0, options=(),
              tsval=None, bad_checksum: bool = False, ip_options: bytes = b"",
              dst_mac: str = SRV_MAC, ack_delta: int = 0, ttl: int = 64,
              ip_flags: str = "", frag: tuple | None = None, ext: list | None = None,
              window: int = 65535, vlan: int | None = None, len_delta: int = 0,
              trailer: bytes = b"", gre: bool = False, nsh: bool = False,
              raw_options: bytes = b"") -> None:
        """``ext``: IPv6 extension headers (``ext_chain``'s form) before TCP;
        ``ttl`` is the hop limit there; ``ip_options``/``ip_flags`` IPv4 only.
        ``raw_options``: bytes put after the TCP options as they are (scapy
        would fix a malformed option's length), padded with EOL to 4."""
        Ether, IP, IPv6, _F, TCP, _UDP, Raw = _scapy()
        opts = list(options)
        if self.timestamps and tsval is not False:
            if tsval is None:
                self.tsval = (self.tsval + 1) & 0xFFFFFFFF
                tsval = self.tsval
            opts.append(("Timestamp", (tsval, self.ts_ecr)))
        ack = (self.srv_isn + 1 + ack_delta) & 0xFFFFFFFF \
            if "A" in flags and self.srv_isn is not None else 0
        tcp = TCP(sport=self.sport, dport=TCP_PORT, seq=seq & 0xFFFFFFFF, ack=ack, flags=flags,
                  window=window, urgptr=urg, options=opts)
        if self.v6:
            ip = IPv6(src=CLI6, dst=SRV6, hlim=ttl)
        else:
            ip = IP(src=CLI4, dst=SRV4, ttl=ttl, flags=ip_flags)
        pkt = Ether(src=CLI_MAC, dst=dst_mac) / ip / tcp
        if data:
            pkt = pkt / Raw(data)
        raw = bytearray(bytes(pkt))
        ihl = 40 if self.v6 else 20
        if raw_options:
            raw = with_tcp_options(raw, raw_options, self.v6)
        if bad_checksum:
            raw[14 + ihl + 16] ^= 0x5A  # the TCP checksum
        if ip_options and not self.v6:
            raw = with_ip_options(raw, ip_options)
        if ext and self.v6:
            nh, chain = ext_chain(ext, 6)
            raw[14 + 6] = nh
            struct.pack_into("!H", raw, 14 + 4, len(raw) - 54 + len(chain))
            raw = raw[:54] + chain + raw[54:]
        if len_delta:  # the IP length field off by len_delta (the frame as built)
            if self.v6:
                plen = struct.unpack_from("!H", raw, 14 + 4)[0]
                struct.pack_into("!H", raw, 14 + 4, (plen + len_delta) & 0xFFFF)
            else:
                tot = struct.unpack_from("!H", raw, 14 + 2)[0]
                struct.pack_into("!H", raw, 14 + 2, (tot + len_delta) & 0xFFFF)
                struct.pack_into("!H", raw, 14 + 10, 0)
                struct.pack_into("!H", raw, 14 + 10, inet_checksum(bytes(raw[14:14 + 20])))
        if trailer:  # bytes past the IP packet's length (link-layer padding)
            raw = bytearray(raw) + trailer
        if gre and not self.v6:  # the IPv4 packet inside GRE from the client
            outer = bytes(IP(src=CLI4, dst=SRV4, ttl=64, proto=47)) + b"\x00\x00\x08\x00"
            inner = bytes(raw[14:])
            outer = bytearray(outer)
            struct.pack_into("!H", outer, 2, len(outer) + len(inner))
            struct.pack_into("!H", outer, 10, 0)
            struct.pack_into("!H", outer, 10, inet_checksum(bytes(outer[:20])))
            raw = bytearray(raw[:14]) + outer + inner
        if nsh:  # inside an NSH header (RFC 8300, MD type 2, no context)
            nxt = b"\x02" if self.v6 else b"\x01"
            raw = bytearray(raw[:12]) + b"\x89\x4f\x0f\xc2\x02" + nxt + b"\0\0\x01\xff" + raw[14:]
        if vlan is not None:  # VLAN tags: an id or a tuple of them, each an
            # 802.1Q VLAN id or a (TPID, VLAN id) pair
            for tag in reversed(vlan if isinstance(vlan, tuple) else (vlan,)):
                tpid, vid = tag if isinstance(tag, tuple) else (0x8100, tag)
                raw = raw[:12] + struct.pack("!HH", tpid, vid) + raw[12:]
        if frag is not None:  # (size, order, seed): as IP fragments
            self._ident = (getattr(self, "_ident", 0x4000) + 1) & 0xFFFF
            cut = ipv6_fragments if self.v6 else ipv4_fragments
            for piece in cut(bytes(raw), *frag, ident=self._ident):
                self.link.send(piece)
                self.sent += 1
            return
        self.link.send(bytes(raw))
        self.sent += 1

    def seq(self, off: int) -> int:
        return self.isn + 1 + off

    def seg(self, off: int, data: bytes = b"", flags: str = "PA", **kw) -> None:
        self._send(self.seq(off), flags, data, **kw)

    def fin(self, off: int, **kw) -> None:
        self._send(self.seq(off), "FA", **kw)

    # --- server's side, as the client sees it -----------------------------
    def _parse(self, frame: bytes):
        if self.v6:
            if len(frame) < 74 or frame[12:14] != b"\x86\xdd" or frame[20] != 6:
                return None
            t = 54
        else:
            if len(frame) < 54 or frame[12:14] != b"\x08\x00":
                return None
            ihl = (frame[14] & 0x0F) * 4
            if frame[23] != 6:
                return None
            t = 14 + ihl
        sport, dport, seq, ack, off_flags, win = struct.unpack_from("!HHIIHH", frame, t)
        if sport != TCP_PORT or dport != self.sport:
            return None
        flags = off_flags & 0x3F
        doff = (off_flags >> 12) * 4
        tsval = None
        i, end = t + 20, t + doff
        while i < end:
            kind = frame[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            ln = frame[i + 1]
            if kind == 8 and ln == 10:
                tsval = struct.unpack_from("!I", frame, i + 2)[0]
            i += max(ln, 2)
        return flags, seq, ack, win, tsval

    def _note(self, parsed) -> None:
        flags, seq, ack, win, tsval = parsed
        self.server_frames.append((flags, seq, ack, win))
        if flags & 0x10:
            rel = (ack - self.isn - 1) & 0xFFFFFFFF
            if rel < 0x80000000 and rel >= self.srv_ack:
                self.srv_ack = rel
                self.srv_win = win
        if tsval is not None:
            self.ts_ecr = tsval

    def handshake(self, timeout: float = 2.0, syn_data: bytes = b"", before_ack=None) -> None:
        """SYN (carrying ``syn_data`` if given: no Fast Open cookie), the
        SYN-ACK sniffed, the ACK."""
        opts = [("MSS", 1460)]
        if self.timestamps:
            opts.append(("Timestamp", (self.tsval, 0)))
        self._send(self.isn, "S", syn_data, options=opts, tsval=False)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            fr = self.link.recv(left) if left > 0 else None
            if fr is None:
                raise RuntimeError("no SYN-ACK from the server")
            p = self._parse(fr)
            if p and p[0] & 0x12 == 0x12:
                break
        flags, seq, ack, win, tsval = p
        self.srv_isn = seq
        self.syn_ack_win = win
        self._note(p)
        if before_ack is not None:
            before_ack(self)
        self._send(self.isn + 1, "A")

    def poll(self, timeout: float = 0.0) -> None:
        """Take in the server's frames that arrived (waiting up to ``timeout``)."""
        fr = self.link.recv(timeout) if timeout > 0 else self.link.recv(0.001)
        while fr is not None:
            p = self._parse(fr)
            if p:
                self._note(p)
            fr = self.link.recv(0.001)

    def wait_window(self, end: int, timeout: float = 2.0) -> None:
        """Wait until the server's advertised window reaches offset ``end``."""
        deadline = time.monotonic() + timeout
        self.poll()
        while self.srv_ack + self.srv_win < end:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"server window stuck at {self.srv_ack}+{self.srv_win} < {end}")
            self.poll(min(left, 0.05))

    def stream(self, start: int, data: bytes, chunk: int = 1400) -> None:
        """Send ``data`` in order from ``start``, only inside the server's window."""
        for i in range(0, len(data), chunk):
            piece = data[i:i + chunk]
            self.wait_window(start + i + len(piece))
            self.seg(start + i, piece)


@dataclass
class TcpCase:
    name: str
    doc: str
    script: Callable[[TcpClient], None]
    timestamps: bool = False
    eof_timeout: float = 1.5
    kernel: tuple | None = None  # (bytes, eof) Linux 6.18 delivered (recorded)
    kind: str = "tcp"
    v6: bool = False
    syn_data: bytes = b""  # carried by the SYN (without a Fast Open cookie)
    # sent after the SYN-ACK, before the handshake's own ACK
    before_ack: Callable[[TcpClient], None] | None = None
    isn: int = CLIENT_ISN  # the client's initial sequence number
    tsval: int = 1000  # the client's first timestamp value (with timestamps)


HOLE = b"0123456789"  # offsets [0,10): sent last, so earlier data waits out of order


def _ofo(old: tuple, new: tuple, end: int, *more):
    """Queue ``old`` then ``new`` (and ``more``) out of order, fill [0,10), FIN at end."""
    def script(c: TcpClient):
        for off, data in (old, new) + more:
            c.seg(off, data)
        c.seg(0, HOLE)
        c.fin(end)
    return script


def _many_tiny_ofo(n: int, top: int = 60000):
    """BENIGN queued at ``top``, n one-byte segments at every other offset
    from 100 (none coalesce), ATTACK at ``top`` (inside the queued BENIGN:
    dropped, old wins, unless BENIGN was pruned), the rest in order, FIN."""
    def script(c: TcpClient):
        c.seg(top, b"BENIGN")
        for i in range(n):
            c.seg(100 + 2 * i, b"#")
        c.seg(top, b"ATTACK")
        for off in range(0, top, 1000):
            c.seg(off, bytes([97 + off // 1000 % 26]) * 1000)
        c.fin(top + 6)
    return script


def _many_tiny_ofo_read(n: int, top: int = 60000) -> bytes:
    """What the server reads of _many_tiny_ofo: the in-order segments, but
    a one-byte segment queued exactly where one of them starts is at
    rcv_nxt when the one before is read, so it is read first and wins."""
    data = bytearray(b"".join(bytes([97 + o // 1000 % 26]) * 1000 for o in range(0, top, 1000)))
    for o in range(1000, top, 1000):
        if o <= 100 + 2 * (n - 1):
            data[o] = ord("#")
    return bytes(data) + b"BENIGN"


def _dropped_middle(**bad):
    """AAAAA, then bbbbb at [5,10) made suspect by ``bad``, CCCCC, DDDDD at [5,10), FIN."""
    def script(c: TcpClient):
        c.seg(0, b"AAAAA")
        c.seg(5, b"bbbbb", **bad)
        c.seg(10, b"CCCCC")
        c.seg(5, b"DDDDD")
        c.fin(15)
    return script


def _reconnect_ab(c: TcpClient):
    """xxxxx on the dropped connection, then AAAAA, bbbbb, FIN on a new one."""
    c.seg(0, b"xxxxx")
    c.isn = (c.isn + 0x01000000) & 0xFFFFFFFF
    c.handshake()
    _AB(c)


def _rst_data(at: int):
    def script(c: TcpClient):
        c.seg(0, b"AAAAA")
        c.seg(at, b"bbbbb", flags="RA")
        c.seg(5, b"CCCCC")
        c.fin(10)
    return script


def _marked_middle(**how):
    """AAAAA, then bbbbb sent as ``how`` says (TcpClient.seg keywords), FIN."""
    def script(c: TcpClient):
        c.seg(0, b"AAAAA")
        c.seg(5, b"bbbbb", **how)
        c.fin(10)
    return script


def _AB(c: TcpClient):
    c.seg(0, b"AAAAA")
    c.seg(5, b"bbbbb")
    c.fin(10)


AO18 = b"\x1d\x12\x01\x01" + b"\x5a" * 14  # a TCP-AO option, 18 bytes long


def _handshake_cases(T) -> list:
    """A segment between the SYN-ACK and the handshake's ACK: the server
    holds a request socket then (tcp_check_req), with checks of its own."""
    md5 = [("NOP", None), ("NOP", None), (19, b"\x5a" * 16)]
    AB = (b"AAAAAbbbbb", True)

    def case(name, doc, decoy, kernel=AB, **kw):
        return T(name, f"SYN, SYN-ACK, {doc}, ACK, AAAAA, bbbbb, FIN", _AB, kernel=kernel,
                 before_ack=decoy, **kw)
    return [
        case("tcp_hs_decoy_wrong_ack", "xxxxx acknowledging 5 past the SYN-ACK",
             lambda c: c.seg(0, b"xxxxx", ack_delta=5)),
        case("tcp_hs_decoy_old_ack", "xxxxx acknowledging before the SYN-ACK",
             lambda c: c.seg(0, b"xxxxx", ack_delta=-1)),
        case("tcp_hs_decoy_bad_checksum", "xxxxx with a bad checksum",
             lambda c: c.seg(0, b"xxxxx", bad_checksum=True)),
        case("tcp_hs_decoy_no_ack", "xxxxx without ACK", lambda c: c.seg(0, b"xxxxx", flags="P")),
        case("tcp_hs_data_completes", "xxxxx (completing the handshake)",
             lambda c: c.seg(0, b"xxxxx"), kernel=(b"xxxxxbbbbb", True)),
        case("tcp_hs_data_out_of_order", "yyyyy at 5 (completing the handshake)",
             lambda c: c.seg(5, b"yyyyy"), kernel=(b"AAAAAyyyyy", True)),
        # taken, and its TSval then makes every later segment PAWS-old
        case("tcp_hs_decoy_future_ts", "xxxxx with a far-future TSval (timestamps on)",
             lambda c: c.seg(0, b"xxxxx", tsval=0x70000000), kernel=(b"xxxxx", False),
             timestamps=True),
        case("tcp_hs_decoy_rst_flag", "xxxxx with RST+ACK at 5",
             lambda c: c.seg(5, b"xxxxx", flags="RA")),
        case("tcp_hs_decoy_out_of_window", "xxxxx far past the window",
             lambda c: c.seg(1 << 20, b"xxxxx")),
        case("tcp_hs_decoy_md5", "xxxxx with an MD5 option",
             lambda c: c.seg(0, b"xxxxx", options=md5)),
        # tcp_inbound_hash: a request socket that did not start with TCP-AO
        # drops a segment carrying an AO option (tcp_rsk_used_ao), even in a
        # kernel without CONFIG_TCP_AO; a full socket takes it (tcp_ao_option)
        case("tcp_hs_decoy_ao", "xxxxx with an 18-byte TCP-AO option",
             lambda c: c.seg(0, b"xxxxx", raw_options=AO18 + b"\x01\x01")),
        case("tcp_hs_decoy_ao_out_of_order", "xxxxx at 5 with an 18-byte TCP-AO option",
             lambda c: c.seg(5, b"xxxxx", raw_options=AO18 + b"\x01\x01")),
        case("tcp_hs_decoy_ao_not_parsed", "xxxxx with a TCP-AO option starting 17 option "
             "bytes before the end (not parsed)", lambda c: c.seg(
                 0, b"xxxxx", raw_options=b"\x01" * 3 + b"\x1d\x09" + b"\x5a" * 7 + b"\x01" * 8),
             kernel=(b"xxxxxbbbbb", True)),
        case("tcp_hs_second_syn_in_window", "a SYN with an ISN 1000 further",
             lambda c: c._send(c.isn + 1000, "S", options=[("MSS", 1460)]), kernel=(b"", False)),
        case("tcp_hs_second_syn_out_of_window", "a SYN with an ISN 2^30 further",
             lambda c: c._send(c.isn + (1 << 30), "S", options=[("MSS", 1460)])),
        case("tcp_hs_second_syn_data_in_window", "a SYN carrying xxxxx with an ISN 1000 back",
             lambda c: c._send(c.isn - 1000, "S", b"xxxxx", options=[("MSS", 1460)])),
        T("tcp_hs_second_syn_then_new_connection", "SYN, SYN-ACK, a SYN with an ISN 1000 "
          "further (the half-open connection dropped), ACK, xxxxx; then SYN with a new ISN, "
          "SYN-ACK, ACK, AAAAA, bbbbb, FIN", _reconnect_ab, kernel=(b"AAAAAbbbbb", True),
          before_ack=lambda c: c._send(c.isn + 1000, "S", options=[("MSS", 1460)])),
        case("tcp_hs_syn_retransmitted", "the SYN again",
             lambda c: c._send(c.isn, "S", options=[("MSS", 1460)])),
    ]


def _old_ack_first(c: TcpClient):
    """The first data segment with a too-old ACK: the kernel has no receive
    memory charged yet, so it takes the slow path, whose tcp_ack drops it.
    (A later in-order one can be queued by header prediction before its ACK
    is looked at, when memory is left from data the application has not read
    yet: a race with the reader, so the cases here change the window.)"""
    c.seg(0, b"aaaaa", ack_delta=-1)
    c.seg(0, b"AAAAA")
    c.seg(5, b"bbbbb")
    c.fin(10)


def _future_ts_ack(at: int, **bad):
    """AAAAA (acknowledged), a pure ACK at ``at`` with a far-future TSval
    made suspect by ``bad``, bbbbb, FIN: if the ACK's TSval counted, bbbbb
    would be PAWS-old."""
    def script(c: TcpClient):
        c.seg(0, b"AAAAA")
        c.poll(0.05)
        c.seg(at, flags="A", tsval=0x70000000, **bad)
        c.seg(5, b"bbbbb")
        c.fin(10)
    return script


def _tcp_in_order(c):
    c.seg(0, b"hello ")
    c.seg(6, b"world ")
    c.seg(12, b"again!")
    c.fin(18)


def _tcp_reversed(c):
    segs = [(0, b"seg0-"), (5, b"seg1-"), (10, b"seg2-"), (15, b"seg3.")]
    for off, data in reversed(segs):
        c.seg(off, data)
    c.fin(20)


def _tcp_duplicates(c):
    c.seg(0, b"hello ")
    c.seg(0, b"hello ")
    c.seg(6, b"world ")
    c.seg(6, b"world ")
    c.seg(0, b"hello ")
    c.seg(12, b"again!")
    c.seg(12, b"again!")
    c.fin(18)
    c.fin(18)


def _tcp_reversed_with_fin_first(c):
    c.fin(15)
    c.seg(10, b"CCCCC")
    c.seg(5, b"BBBBB")
    c.seg(0, b"AAAAA")


def _tcp_urgent(c):
    c.seg(0, b"abc")
    c.seg(3, b"XYZ", flags="PAU", urg=3)  # BSD pointer: urgent byte = seq+3-1 = 'Z'
    c.seg(6, b"def")
    c.fin(9)


def _tcp_urgent_pointer_ahead(c):
    c.seg(0, b"abc", flags="PAU", urg=5)  # urgent byte at offset 4, not yet here
    c.seg(3, b"XYZ")
    c.seg(6, b"def")
    c.fin(9)


def _tcp_paws(c):
    c.seg(0, b"AAAAA")
    c.seg(5, b"bbbbb", tsval=5)  # older than ts_recent (~1002)
    c.seg(10, b"CCCCC")
    c.seg(5, b"DDDDD")
    c.fin(15)


def _tcp_rst_wrong_seq(c):
    c.seg(0, b"AAAAA")
    c.seg(105, flags="R")  # in the window, not rcv_nxt: a challenge ACK, no reset
    c.seg(5, b"bbbbb")
    c.fin(10)


def _tcp_rst_outside_window(c):
    c.seg(0, b"AAAAA")
    c.seg(200000, flags="R")
    c.seg(5, b"bbbbb")
    c.fin(10)


def _tcp_beyond_window(c):
    w = c.syn_ack_win  # right edge now: offset w
    c.seg(w + 10, b"X" * 10)  # wholly outside the window: dropped?
    c.stream(0, b"y" * (w + 10))  # fill up to it, inside the (moving) window
    c.fin(w + 20)  # if X was dropped there is a hole: no EOF


def _tcp_straddling_window(c):
    w = c.syn_ack_win
    c.seg(w - 5, b"X" * 10)  # starts inside the window, ends 5 bytes past it
    c.stream(0, b"y" * (w - 5))
    c.fin(w + 5)


# IPv4 options on the middle segment of _dropped_middle: whether Linux takes
# the segment (ip_rcv_options: ip_options_compile, then a source route is
# refused unless accept_source_route is on, which it is not by default).
IP_OPTION_CASES = [
    ("lsrr", "a loose source route (one hop)", LSRR, True),
    ("ssrr", "a strict source route (one hop)", b"\x89\x07\x04\x0a\x00\x00\x09", True),
    ("lsrr_used_up", "a loose source route whose pointer is past its end",
     b"\x83\x07\x08\x0a\x00\x00\x09", True),
    ("rr", "a record route with room for one address", b"\x07\x07\x04\x00\x00\x00\x00", False),
    ("rr_pointer_3", "a record route whose pointer (3) is under 4",
     b"\x07\x07\x03\x00\x00\x00\x00", True),
    ("rr_full", "a record route already full", b"\x07\x07\x08\x0a\x00\x00\x09", False),
    ("rr_twice", "two record routes", b"\x07\x07\x04\x00\x00\x00\x00" * 2, True),
    ("ts", "a timestamp option with room for one stamp",
     b"\x44\x08\x05\x00\x00\x00\x00\x00", False),
    ("ts_pointer_4", "a timestamp option whose pointer (4) is under 5",
     b"\x44\x08\x04\x00\x00\x00\x00\x00", True),
    ("ts_overflow_15", "a full timestamp option whose overflow count is 15",
     b"\x44\x08\x09\xf0\x00\x00\x00\x01", True),
    ("ts_short", "a timestamp option of length 3", b"\x44\x03\x05", True),
    ("rr_pointer_5", "a record route whose pointer (5) leaves no room for an address",
     b"\x07\x07\x05\x00\x00\x00\x00", True),
    ("ts_prespec_short", "a prespecified-address timestamp option with room for the address only",
     b"\x44\x08\x05\x03\x0a\x00\x00\x09", True),
    ("ts_bad_flag", "a timestamp option with flag 5 (none defined)",
     b"\x44\x08\x05\x05\x00\x00\x00\x00", False),
    ("ra", "a router alert", b"\x94\x04\x00\x00", False),
    ("ra_short", "a router alert of length 2", b"\x94\x02", True),
    ("cipso", "a CIPSO label (no CIPSO DOI configured)",
     b"\x86\x0a\x00\x00\x00\x01\x01\x04\x00\x00", True),
    ("security", "a basic security option (type 130)", b"\x82\x0b" + b"\x00" * 9, False),
    ("unknown_66", "an unknown option 0x42 of length 4 (fragroute's ip_chaff opt)",
     b"\x42\x04\x12\x34", False),
    ("junk_after_eol", "end of list, then junk bytes", b"\x00\x83\x07\x04", False),
    ("nop_lsrr", "NOPs, then a loose source route", b"\x01\x01\x83\x07\x04\x0a\x00\x00\x09", True),
]


# TCP option blocks, put in the segment as they are: tcp_inbound_hash parses
# them for MD5/TCP-AO while 18 or more bytes are left (CONFIG_TCP_AO off, as
# here): a malformed option there, an MD5 option of another length, an AO
# one of 4 bytes or a second AO drops the segment
# (SKB_DROP_REASON_TCP_AUTH_HDR); past that, nothing is looked at.
# (name, what, option bytes, dropped)
_AO9 = b"\x1d\x09" + b"\x5a" * 7  # a TCP-AO option, 9 bytes long
TCP_OPTION_CASES = [
    ("malformed_option_18_left", "a 1-byte-long option with 18 option bytes left",
     b"\x01\x01\x42\x01" + b"\x01" * 16, True),
    ("malformed_option_17_left", "a 1-byte-long option with 17 option bytes left",
     b"\x01\x01\x01\x42\x01" + b"\x01" * 15, False),
    ("option_past_the_header", "an option 32 bytes long in 18 option bytes left",
     b"\x01\x01\x42\x20" + b"\x01" * 16, True),
    ("md5_option_wrong_length", "an MD5 option (kind 19) 10 bytes long",
     b"\x13\x0a" + b"\x5a" * 8 + b"\x01" * 10, True),
    ("ao_option_header_only", "a 4-byte TCP-AO option", b"\x1d\x04\x01\x01" + b"\x01" * 16,
     True),
    ("two_ao_options", "two TCP-AO options, the second with 31 option bytes left",
     _AO9 * 2 + b"\x01" * 22, True),
    ("ao_option_parsed", "an 18-byte TCP-AO option (parsed, taken: no CONFIG_TCP_AO)",
     AO18 + b"\x01\x01", False),
    ("two_ao_options_short", "two TCP-AO options, the second with 11 option bytes left",
     _AO9 * 2 + b"\x01" * 2, False),
]


def _tcp_option_cases(T) -> list:
    return [T(f"tcp_{name}", f"AAAAA, bbbbb with {doc}, CCCCC, DDDDD at bbbbb's place, FIN",
              _dropped_middle(raw_options=opts),
              kernel=(b"AAAAADDDDDCCCCC" if dropped else b"AAAAAbbbbbCCCCC", True))
            for name, doc, opts, dropped in TCP_OPTION_CASES]


def _ip_option_cases(T) -> list:
    return [T(f"tcp_ip_option_{name}",
              f"AAAAA, bbbbb with {doc} in its IP header, CCCCC, DDDDD at bbbbb's place, FIN",
              _dropped_middle(ip_options=opts),
              kernel=(b"AAAAADDDDDCCCCC" if dropped else b"AAAAAbbbbbCCCCC", True))
            for name, doc, opts, dropped in IP_OPTION_CASES]


def _tcp_cases() -> list:
    T = TcpCase
    md5 = [("NOP", None), ("NOP", None), (19, b"\x5a" * 16)]
    return [
        T("tcp_in_order", "three segments in order, FIN", _tcp_in_order,
          kernel=(b"hello world again!", True)),
        T("tcp_reversed", "four segments last-first, then FIN", _tcp_reversed,
          kernel=(b"seg0-seg1-seg2-seg3.", True)),
        T("tcp_reversed_with_fin_first", "FIN first, then the segments last-first",
          _tcp_reversed_with_fin_first, kernel=(b"AAAAABBBBBCCCCC", True)),
        T("tcp_duplicates", "every segment twice, an old one again, FIN twice",
          _tcp_duplicates, kernel=(b"hello world again!", True)),
        T("tcp_ofo_exact_duplicate_conflicting",
          "queued [10,20) 'a'; then [10,20) 'B'; fill [0,10)",
          _ofo((10, b"a" * 10), (10, b"B" * 10), 20), kernel=(HOLE + b"a" * 10, True)),
        T("tcp_ofo_new_inside_old", "queued [10,30) 'a'; then [15,25) 'B'; fill [0,10)",
          _ofo((10, b"a" * 20), (15, b"B" * 10), 30), kernel=(HOLE + b"a" * 20, True)),
        T("tcp_ofo_same_start_new_shorter", "queued [10,30) 'a'; then [10,20) 'B'",
          _ofo((10, b"a" * 20), (10, b"B" * 10), 30), kernel=(HOLE + b"a" * 20, True)),
        T("tcp_ofo_same_start_new_longer", "queued [10,20) 'a'; then [10,30) 'B'",
          _ofo((10, b"a" * 10), (10, b"B" * 20), 30), kernel=(HOLE + b"B" * 20, True)),
        T("tcp_ofo_same_end_new_longer", "queued [20,30) 'a'; then [10,30) 'B'",
          _ofo((20, b"a" * 10), (10, b"B" * 20), 30), kernel=(HOLE + b"B" * 20, True)),
        T("tcp_ofo_new_covers_old", "queued [15,25) 'a'; then [10,30) 'B'",
          _ofo((15, b"a" * 10), (10, b"B" * 20), 30), kernel=(HOLE + b"B" * 20, True)),
        T("tcp_ofo_partial_overlap_new_before_old", "queued [20,30) 'a'; then [10,25) 'B'",
          _ofo((20, b"a" * 10), (10, b"B" * 15), 30),
          kernel=(HOLE + b"B" * 15 + b"a" * 5, True)),
        T("tcp_ofo_partial_overlap_new_after_old", "queued [10,20) 'a'; then [15,30) 'B'",
          _ofo((10, b"a" * 10), (15, b"B" * 15), 30),
          kernel=(HOLE + b"a" * 10 + b"B" * 10, True)),
        T("tcp_ofo_new_spans_two_queued",
          "queued [10,15) 'a' and [20,25) 'c'; then [12,28) 'B'",
          _ofo((10, b"a" * 5), (20, b"c" * 5), 28, (12, b"B" * 16)),
          kernel=(HOLE + b"a" * 5 + b"B" * 13, True)),
        T("tcp_ofo_coalesce_into_ancestor",
          "queued [17,19) 'hf'; a decoy [18,24) (partial overlap, kept beside it); "
          "[19,20) and [20,24) real: the rbtree descent meets [17,19) first and "
          "coalesces them into it; fill [0,17)",
          lambda c: (c.seg(17, b"hf"), c.seg(18, b"VQHAMG"), c.seg(19, b"j"),
                     c.seg(20, b"wxyz"), c.seg(0, b"0123456789abcdefg"), c.fin(24)),
          kernel=(b"0123456789abcdefghfjwxyz", True)),
        T("tcp_ofo_data_after_a_queued_fin_is_purged",
          "abc; [4,6) 'de' with FIN queued (its FIN is seq 6); 'K' at seq 7, right after "
          "the FIN, is queued apart (no coalescing onto a FIN); fill [3,4): the kernel "
          "reads 'de', then the FIN, and purges 'K' (6.18.44-fc-v1045; the fc-v857 "
          "build coalesced 'K' and read 'deK')",
          lambda c: (c.seg(0, b"abc"), c.seg(4, b"de", flags="FPA"), c.seg(7, b"K"),
                     c.seg(3, b"x")),
          kernel=(b"abcxde", True)),
        T("tcp_ofo_data_after_a_queued_fin_then_more",
          "abc; [4,6) 'de' with FIN queued; 'KL' at seq 7 then 'M' at 9 (coalesced "
          "with 'KL', not with the FIN's segment); fill [3,4): the FIN ends it all",
          lambda c: (c.seg(0, b"abc"), c.seg(4, b"de", flags="FPA"), c.seg(7, b"KL"),
                     c.seg(9, b"M"), c.seg(3, b"x")),
          kernel=(b"abcxde", True)),
        T("tcp_syn_data_without_cookie",
          "the SYN carries 'EVIL' (no Fast Open cookie); then 'GOOD' at offset 0 and, "
          "as if the SYN's bytes were taken, 'MORE' at offset 4; FIN at 8",
          lambda c: (c.seg(0, b"GOOD"), c.seg(4, b"MORE"), c.fin(8)),
          syn_data=b"EVIL", kernel=(b"GOODMORE", True)),
        T("tcp_old_pure_ack_with_future_timestamp",
          "timestamps negotiated; AAAAA; a pure ACK at sequence 0 (before rcv_wup) with a "
          "far-future TSval; bbbbb; FIN (tcp_sequence discards the ACK before its TSval counts)",
          _future_ts_ack(0), timestamps=True, kernel=(b"AAAAAbbbbb", True)),
        T("tcp_pure_ack_of_unsent_data_with_future_timestamp",
          "timestamps negotiated; AAAAA; a pure ACK at rcv_nxt acknowledging 1000 bytes never "
          "sent, with a far-future TSval; bbbbb; FIN (tcp_ack drops it before its TSval counts)",
          _future_ts_ack(5, ack_delta=1000), timestamps=True, kernel=(b"AAAAAbbbbb", True)),
        T("tcp_pure_ack_bad_checksum_with_future_timestamp",
          "timestamps negotiated; AAAAA; a pure ACK at rcv_nxt with a bad TCP checksum and a "
          "far-future TSval; bbbbb; FIN",
          _future_ts_ack(5, bad_checksum=True), timestamps=True,
          kernel=(b"AAAAAbbbbb", True)),
        T("tcp_in_order_overlapping_queued",
          "queued [10,30) 'a'; then the in-order [0,20) 'B' overlapping it",
          lambda c: (c.seg(10, b"a" * 20), c.seg(0, b"B" * 20), c.fin(30)),
          kernel=(b"B" * 20 + b"a" * 10, True)),
        T("tcp_retransmit_overlapping_delivered",
          "[0,10) delivered; then [5,15) 'B' (old part differs); FIN at 15",
          lambda c: (c.seg(0, HOLE), c.seg(5, b"B" * 10), c.fin(15)),
          kernel=(HOLE + b"B" * 5, True)),
        T("tcp_urgent", "abc, XYZ with URG pointer 3 (urgent byte Z), def; default options",
          _tcp_urgent, kernel=(b"abcXYdef", True)),
        T("tcp_urgent_pointer_ahead",
          "abc with URG pointer 5 (urgent byte at offset 4, in the next segment), XYZ, def",
          _tcp_urgent_pointer_ahead, kernel=(b"abcXZdef", True)),
        T("tcp_data_without_ack_flag",
          "AAAAA, bbbbb without ACK flag, CCCCC, DDDDD at bbbbb's place, FIN",
          _dropped_middle(flags="P"), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_unexpected_md5_option",
          "AAAAA, bbbbb with a TCP MD5 option (kind 19 len 18, no key configured), "
          "CCCCC, DDDDD at bbbbb's place, FIN",
          _dropped_middle(options=md5), kernel=(b"AAAAADDDDDCCCCC", True)),
        *_ip_option_cases(T),
        T("tcp_ack_of_unsent_data",
          "AAAAA, bbbbb acknowledging 1000 bytes the server never sent, CCCCC, DDDDD, FIN",
          _dropped_middle(ack_delta=1000), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_data_with_too_old_ack",
          "aaaaa acknowledging one byte before the server's SYN-ACK ended, AAAAA, bbbbb, FIN",
          _old_ack_first, kernel=(b"AAAAAbbbbb", True)),
        T("tcp_data_with_too_old_ack_off_fast_path",
          "AAAAA, bbbbb with an ACK 100000 bytes old and another window (no header "
          "prediction), CCCCC, DDDDD, FIN",
          _dropped_middle(ack_delta=-100000, window=65534), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_vlan_tagged_decoy", "AAAAA, bbbbb tagged for VLAN 5, CCCCC, DDDDD, FIN",
          _dropped_middle(vlan=5), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_vlan0_tagged_decoy", "AAAAA, bbbbb priority-tagged (VLAN 0), CCCCC, DDDDD, FIN",
          _dropped_middle(vlan=0), kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_ip_length_past_the_frame", "AAAAA, bbbbb whose IP length claims 20 bytes "
          "more than the frame holds, CCCCC, DDDDD, FIN",
          _dropped_middle(len_delta=20), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_trailer_past_the_ip_length", "AAAAA, bbbbb followed by 5 bytes past the IP "
          "length (the checksum right without them), CCCCC, DDDDD, FIN",
          _dropped_middle(trailer=b"#####"), kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_ip_length_cuts_the_payload", "AAAAA, bbbbb whose IP length leaves out its last "
          "3 bytes, CCCCC, DDDDD, FIN", _dropped_middle(len_delta=-3),
          kernel=(b"AAAAADDDDDCCCCC", True)),
        *_handshake_cases(T),
        T("tcp_three_priority_tags", "AAAAA, bbbbb under three VLAN 0 tags, FIN",
          _marked_middle(vlan=(0, 0, 0)), kernel=(b"AAAAAbbbbb", True)),
        T("tcp_two_priority_tags", "AAAAA, bbbbb under two VLAN 0 tags, FIN",
          _marked_middle(vlan=(0, 0)), kernel=(b"AAAAAbbbbb", True)),
        T("tcp_five_priority_tags", "AAAAA, bbbbb under five VLAN 0 tags, FIN",
          _marked_middle(vlan=(0,) * 5), kernel=(b"AAAAAbbbbb", True)),
        T("tcp_eight_priority_tags", "AAAAA, bbbbb under eight VLAN 0 tags, FIN",
          _marked_middle(vlan=(0,) * 8), kernel=(b"AAAAAbbbbb", True)),
        T("tcp_nine_priority_tags", "AAAAA, bbbbb under nine VLAN 0 tags (dropped on "
          "6.18.44-fc-v1045, read by the fc-v857 build), FIN",
          _marked_middle(vlan=(0,) * 9), kernel=(b"AAAAA", False)),
        T("tcp_nine_mixed_priority_tags", "AAAAA, bbbbb under an 802.1ad VLAN 0 tag and "
          "eight 802.1Q ones (dropped: nine in all), FIN",
          _marked_middle(vlan=((0x88A8, 0),) + (0,) * 8), kernel=(b"AAAAA", False)),
        T("tcp_gre_decoy", "AAAAA, bbbbb inside GRE from the client (no tunnel), CCCCC, "
          "DDDDD, FIN", _dropped_middle(gre=True), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_nsh_decoy", "AAAAA, bbbbb inside NSH, CCCCC, DDDDD, FIN",
          _dropped_middle(nsh=True), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_legacy_qinq_tpid_decoy", "AAAAA, bbbbb under a 0x9100 tag (VLAN 0), CCCCC, "
          "DDDDD, FIN", _dropped_middle(vlan=((0x9100, 0),)),
          kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_8021ad_priority_tag", "AAAAA, bbbbb under an 802.1ad tag (VLAN 0), FIN",
          _marked_middle(vlan=((0x88A8, 0),)), kernel=(b"AAAAAbbbbb", True)),
        T("tcp_priority_tag_over_vlan5", "AAAAA, bbbbb under a VLAN 0 tag over a VLAN 5 one, "
          "FIN", _marked_middle(vlan=(0, 5)), kernel=(b"AAAAA", False)),
        T("tcp_v6_many_dest_opts", "IPv6; AAAAA, bbbbb behind 8 Destination Options headers, "
          "FIN", _marked_middle(ext=[(DSTOPTS, PADN4)] * 8), v6=True,
          kernel=(b"AAAAAbbbbb", True)),
        T("tcp_v6_many_dest_opts_decoy", "IPv6; AAAAA, bbbbb behind 8 Destination Options "
          "headers, CCCCC, DDDDD, FIN", _dropped_middle(ext=[(DSTOPTS, PADN4)] * 8), v6=True,
          kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_ts_option_bad_length_old", "timestamps; AAAAA, bbbbb with a timestamp option of "
          "length 11 holding an old TSval, CCCCC, DDDDD, FIN",
          _dropped_middle(tsval=False, options=[(8, b"\x00\x00\x00\x01" + b"\x00" * 5)]),
          timestamps=True, kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_ts_option_bad_length_future", "timestamps; AAAAA, bbbbb with a timestamp option "
          "of length 9 holding a far-future TSval, CCCCC, DDDDD, FIN",
          _dropped_middle(tsval=False, options=[(8, b"\x70\x00\x00\x00" + b"\x00" * 3)]),
          timestamps=True, kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_ts_option_after_eol", "timestamps; AAAAA, bbbbb with end-of-options before its "
          "(old) timestamp, CCCCC, DDDDD, FIN",
          _dropped_middle(tsval=False, options=[("EOL", None), ("NOP", None),
                                                ("Timestamp", (1, 0))]),
          timestamps=True, kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_rst_carrying_data_at_rcv_nxt", "AAAAA, RST+ACK carrying bbbbb at 5, CCCCC at 5, "
          "FIN", _rst_data(5), kernel=(b"AAAAA", False)),
        T("tcp_rst_carrying_data_in_window", "AAAAA, RST+ACK carrying bbbbb at 6, CCCCC at 5, "
          "FIN", _rst_data(6), kernel=(b"AAAAACCCCC", True)),
        T("tcp_no_timestamp_when_negotiated",
          "timestamps negotiated; AAAAA, bbbbb without a timestamp option, CCCCC, DDDDD, FIN",
          _dropped_middle(tsval=False), timestamps=True, kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_ao_option", "AAAAA, bbbbb with a TCP-AO option (kind 29) and no key, CCCCC, "
          "DDDDD at bbbbb's place, FIN",
          _dropped_middle(options=[(29, b"\x01\x01" + b"\x5a" * 12)]),
          kernel=(b"AAAAAbbbbbCCCCC", True)),
        *_tcp_option_cases(T),
        # A receive queue holds what the window lets in, up to tcp_rmem's
        # max (32 MB here): the kernel prunes none of these (nor 29,000,
        # all the 64 KB window takes); a sensor that did would drop the
        # farthest bytes, where an attacker puts its payload
        T("tcp_ofo_many_tiny_segments_kept", "BENIGN at 60000, 4,500 one-byte segments at "
          "every other offset, ATTACK at 60000, [0,60000) in order, FIN",
          _many_tiny_ofo(4500), eof_timeout=3, kernel=(_many_tiny_ofo_read(4500), True)),
        T("tcp_mptcp_option", "AAAAA, bbbbb with an MPTCP DSS option (kind 30), CCCCC, DDDDD, FIN",
          _dropped_middle(options=[(30, b"\x20\x01")]), kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_unknown_option", "AAAAA, bbbbb with an unknown TCP option (kind 99), CCCCC, "
          "DDDDD at bbbbb's place, FIN",
          _dropped_middle(options=[("NOP", None), ("NOP", None), (99, b"")]),
          kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_ttl_zero", "AAAAA, bbbbb with IP TTL 0, CCCCC, DDDDD at bbbbb's place, FIN",
          _dropped_middle(ttl=0), kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_ip_reserved_flag", "AAAAA, bbbbb with the IPv4 reserved (evil) flag bit, CCCCC, "
          "DDDDD at bbbbb's place, FIN", _dropped_middle(ip_flags="evil"),
          kernel=(b"AAAAAbbbbbCCCCC", True)),
        T("tcp_to_broadcast_mac",
          "AAAAA, bbbbb to the Ethernet broadcast address, CCCCC, DDDDD at bbbbb's place, FIN",
          _dropped_middle(dst_mac="ff:ff:ff:ff:ff:ff"), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_to_multicast_mac",
          "AAAAA, bbbbb to a multicast MAC (01:00:5e:00:00:01), CCCCC, DDDDD, FIN",
          _dropped_middle(dst_mac="01:00:5e:00:00:01"), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_to_other_host_mac",
          "AAAAA, bbbbb to another host's unicast MAC, CCCCC, DDDDD at bbbbb's place, FIN",
          _dropped_middle(dst_mac="02:00:00:00:99:99"), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_bad_checksum",
          "AAAAA, bbbbb with a bad TCP checksum, CCCCC, DDDDD at bbbbb's place, FIN",
          _dropped_middle(bad_checksum=True), kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_paws_old_timestamp",
          "timestamps negotiated; AAAAA, bbbbb with an old TSval, CCCCC, DDDDD, FIN",
          _tcp_paws, timestamps=True, kernel=(b"AAAAADDDDDCCCCC", True)),
        T("tcp_rst_wrong_seq",
          "AAAAA, RST in the window but not at rcv_nxt (RFC 5961), bbbbb, FIN",
          _tcp_rst_wrong_seq, kernel=(b"AAAAAbbbbb", True)),
        T("tcp_rst_outside_window", "AAAAA, RST far outside the window, bbbbb, FIN",
          _tcp_rst_outside_window, kernel=(b"AAAAAbbbbb", True)),
        T("tcp_data_beyond_window",
          "X*10 wholly past the SYN-ACK window's right edge W; then y*(W+10) in order "
          "inside the window; FIN at W+20 (a hole remains if X was dropped)",
          _tcp_beyond_window, eof_timeout=1.0, kernel=None),
        T("tcp_data_straddling_window",
          "X*10 at W-5 (crosses the right edge by 5); then y*(W-5) in order; FIN at W+5",
          _tcp_straddling_window, eof_timeout=1.0, kernel=None),
    ]


class _Reader(threading.Thread):
    def __init__(self, conn: socket.socket):
        super().__init__(daemon=True)
        self.conn = conn
        self.data = bytearray()
        self.eof = threading.Event()
        self.stop = threading.Event()
        self.error = None

    def run(self) -> None:
        self.conn.settimeout(0.05)
        try:
            while not self.stop.is_set():
                try:
                    chunk = self.conn.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    self.eof.set()
                    return
                self.data += chunk
        except OSError as e:  # e.g. a reset
            self.error = e
            self.eof.set()


@dataclass
class TcpResult:
    app: bytes
    eof: bool
    error: str | None
    frames_sent: int
    frames_seen_from_client: int
    pcap: Path
    syn_ack_window: int = 0
    notes: dict = field(default_factory=dict)


def run_tcp_case(lab: Lab, case: TcpCase, pcap: Path) -> TcpResult:
    lsock = lab.socket(lab.srv, socket.AF_INET6 if case.v6 else socket.AF_INET,
                       socket.SOCK_STREAM)
    cap = link = conn = reader = None
    try:
        lsock.bind((SRV6 if case.v6 else SRV4, TCP_PORT))
        lsock.listen(4)
        cap = lab.capture()
        link = lab.client_link()
        c = TcpClient(link, timestamps=case.timestamps, v6=case.v6)
        c.isn, c.tsval = case.isn, case.tsval
        c.handshake(syn_data=case.syn_data, before_ack=case.before_ack)
        lsock.settimeout(1.0)
        try:
            conn, _ = lsock.accept()
        except TimeoutError:
            conn = None  # the handshake never completed: the server reads nothing
        if conn is not None:
            reader = _Reader(conn)
            reader.start()
        case.script(c)
        if reader is None:
            # a connection the script opened anew (its bytes wait in the
            # socket's queue for the application)
            lsock.settimeout(0.5)
            try:
                conn, _ = lsock.accept()
            except TimeoutError:
                pass
            else:
                reader = _Reader(conn)
                reader.start()
        if reader is not None:
            reader.eof.wait(case.eof_timeout)
            reader.stop.set()
            reader.join(1.0)
        c.poll()
        cap.write_pcap(pcap)
        from_client = sum(1 for _ts, f in cap.frames if f[6:12] == _mac(CLI_MAC))
        if reader is None:
            return TcpResult(b"", False, "no connection accepted", c.sent, from_client, pcap,
                             c.syn_ack_win)
        return TcpResult(bytes(reader.data), reader.eof.is_set() and reader.error is None,
                         repr(reader.error) if reader.error else None, c.sent, from_client,
                         pcap, c.syn_ack_win)
    finally:
        if reader:
            reader.stop.set()
        if conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        lsock.close()
        if cap:
            cap.close()
        if link:
            link.close()


# ---------------------------------------------------------------------------
# Cases, running, the sensor's view
# ---------------------------------------------------------------------------

FRAG_CASES = _frag_cases()
TCP_CASES = _tcp_cases()
CASES = {c.name: c for c in FRAG_CASES + TCP_CASES}


def run_case(lab: Lab, case, pcap: Path):
    return run_frag_case(lab, case, pcap) if case.kind == "udp" else run_tcp_case(lab, case, pcap)


def kernel_expected(case, result):
    """The recorded 6.18 result for a case, with window-dependent ones filled in."""
    if case.kind == "udp":
        return case.kernel
    if case.name == "tcp_data_beyond_window":
        return (b"y" * (result.syn_ack_window + 10), False)
    if case.name == "tcp_data_straddling_window":
        return (b"y" * (result.syn_ack_window - 5) + b"X" * 10, True)
    return case.kernel


def _addr(text: str) -> str:
    return ipaddress.ip_address(text).compressed


def sensor_pipeline(pcap: Path):
    """The project's pipeline (linux-current) over a capture, with recording on."""
    from pakemon.capture import open_capture
    from pakemon.config import Config
    from pakemon.detect.rule_parser import parse_rules
    from pakemon.pipeline import Pipeline

    cfg = Config()
    cfg.defrag.policy = "linux-current"
    cfg.stream.policy = "linux-current"
    # the capture is the server's veth: the sensor there told its MAC (--host-mac)
    cfg.local_macs = frozenset({_mac(SRV_MAC)})
    pipe = Pipeline(parse_rules(SENSOR_RULES).rules, cfg, record=True)
    for ts, linktype, frame in open_capture(pcap):
        pipe.feed(ts, frame, linktype)
    pipe.flush()
    return pipe


def sensor_view(case, pcap: Path):
    """What the sensor reassembled for the case's client->server direction."""
    pipe = sensor_pipeline(pcap)
    if case.kind == "udp":
        cli, srv = (CLI6, SRV6) if case.v6 else (CLI4, SRV4)
        want = (_addr(cli), UDP_SPORT, _addr(srv), UDP_PORT, 17)
        return [bytes(d[5]) for d in pipe.recorded_datagrams
                if (_addr(d[0]), d[1], _addr(d[2]), d[3], d[4]) == want]
    cli, srv = (CLI6, SRV6) if case.v6 else (CLI4, SRV4)
    want = (_addr(cli), TCP_SPORT, _addr(srv), TCP_PORT)
    for key, data in pipe.recorded_streams.items():
        if len(key) != 4:
            continue  # a VLAN's flow: the server has no interface on one
        src, sport, dst, dport = key
        if (_addr(src), sport, _addr(dst), dport) == want:
            # what the server could read: up to a hole (the sensor reads on
            # past one at the end of the capture, the server never does)
            return bytes(data[:pipe.recorded_gaps.get(key, len(data))])
    return b""


def _show(b: bytes, limit: int = 80) -> str:
    if len(b) > limit:
        return f"{b[:30]!r}...{b[-30:]!r} ({len(b)} bytes)"
    return repr(b)


def describe(case, result) -> str:
    if case.kind == "udp":
        got = ", ".join(_show(p) for p in result.app) if result.app else "nothing"
        return f"delivered {len(result.app)} datagram(s): {got}"
    end = "EOF" if result.eof else f"no EOF ({result.error or 'timeout'})"
    return f"app read {_show(result.app)} then {end}"


def main(argv=None) -> int:
    """Print for each case what this kernel delivered (and the sensor, if it can)."""
    import argparse

    from live_netns import why_unavailable

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    ap.add_argument("--sensor", action="store_true", help="also run the sensor and compare")
    ap.add_argument("--keep", metavar="DIR", help="keep the captures in DIR")
    args = ap.parse_args(argv)
    reason = why_unavailable()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    names = args.cases or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}")
        return 2
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pk-live-"))
    out.mkdir(parents=True, exist_ok=True)
    changed = 0
    for name in names:
        case = CASES[name]
        with Lab() as lab:
            t0 = time.monotonic()
            res = run_case(lab, case, out / f"{name}.pcap")
            dt = time.monotonic() - t0
        exp = kernel_expected(case, res)
        now = res.app if case.kind == "udp" else (res.app, res.eof)
        mark = "" if exp is None else ("  [as on 6.18]" if now == exp else "  [DIFFERS from 6.18]")
        changed += exp is not None and now != exp
        print(f"{name} ({dt:.2f}s): {case.doc}")
        print(f"    kernel: {describe(case, res)}{mark}")
        if res.frames_seen_from_client != res.frames_sent:
            print(f"    HARNESS: sent {res.frames_sent} frames, capture saw "
                  f"{res.frames_seen_from_client} from the client")
        if args.sensor:
            try:
                sv = sensor_view(case, res.pcap)
            except Exception as e:  # the recording hook may not exist yet
                print(f"    sensor: unavailable ({type(e).__name__}: {e})")
            else:
                same = sv == res.app
                shown = (", ".join(_show(p) for p in sv) or "nothing") if case.kind == "udp" \
                    else _show(sv)
                print(f"    sensor: {shown}  [{'same' if same else 'DIFFERENT'}]")
    if args.keep:
        print(f"captures in {out}")
    else:
        import shutil
        shutil.rmtree(out, ignore_errors=True)
    return 1 if changed else 0
