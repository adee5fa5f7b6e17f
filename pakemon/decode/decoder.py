"""Frame decoder: link layer -> IPv4/IPv6 -> TCP/UDP/ICMP/ICMPv6.

``decode_frame`` is the per-frame hot path. The common case (Ethernet,
IPv4, TCP or UDP, no VLAN, no options, no fragments) runs as one flat
function with precompiled ``struct.Struct`` unpackers and no calls beyond
them; the rare cases (VLAN tags, Linux cooked and BSD loopback headers,
IPv4 options, IPv6 and its extension headers, fragments, ICMP) go through
small helpers.

Malformed input raises ``DecodeError`` and nothing else: every read is
preceded by a length check, so no ``struct.error``/``IndexError`` can escape.
Checksums are not verified (an IDS inspects what the wire carries).

Rules applied (they decide which ``NoticeKind`` a broken frame gets):

* Link layer: Ethernet (with 802.1Q/802.1ad tags and NSH, RFC 8300: MD
  types 1 and 2, carrying IPv4, IPv6 or Ethernet), Linux cooked v1/v2,
  BSD loopback, raw IP, PPP (with or without the FF 03 framing) and Cisco
  HDLC. GRE (IP protocol 47) carrying IPv4, IPv6, PPP or Ethernet is
  decapsulated: the inner packet is returned in place of the outer one
  (``_gre``). A header cut short raises the link's ``*_TRUNCATED`` kind;
  more than ``MAX_VLAN_TAGS`` stacked tags (priority tags not counted),
  or more than ``MAX_TAG_STACK`` tags of any kind, raise
  ``DECODE_VLAN_TOO_MANY``.
  An EtherType / SLL protocol / loopback family that is not IP is no error:
  the packet comes back with ``family == 0``.
* IPv4: under 20 bytes -> ``IPV4_TRUNCATED``; version nibble not 4 ->
  ``IPV4_BAD_VERSION`` (addresses are not set: the layout is unknown);
  from here on family/src/dst are set. IHL under 5 words or past the
  captured bytes -> ``IPV4_BAD_IHL``; total length under the header length
  (including 0, as TSO captures show) or past the captured bytes ->
  ``IPV4_BAD_LEN``; options Linux would drop the packet for (see
  ``_check_ipv4_options``) -> ``IPV4_BAD_OPTIONS`` (malformed) or
  ``IPV4_OPTION_REFUSED`` (a source route, a CIPSO label). Bytes past the
  total length (Ethernet padding) are cut off.
* IPv6: under 40 bytes -> ``IPV6_TRUNCATED``; version not 6 on a link that
  says IPv6 -> ``IPV6_BAD_VERSION``; payload length past the captured
  bytes, or 0 with a next header other than No Next Header (jumbograms are
  not supported) -> ``IPV6_BAD_LEN``; an extension header cut short ->
  ``IPV6_BAD_EXTHDR``. A fragment header with offset 0 and M clear (an
  atomic fragment, RFC 6946) is not a fragment.
* Fragments: only a first fragment gets its transport header decoded, and
  leniently: if the header (or TCP data offset) does not fit the fragment,
  ``l4`` stays False; the UDP length is not checked (it covers the whole
  datagram). Defrag re-decodes the reassembled datagram strictly with
  ``decode_transport``.
* Transport (strict): TCP under 20 bytes -> ``TCP_TRUNCATED``, data offset
  under 5 words or past the segment -> ``TCP_BAD_HDR_LEN`` (ports, seq...
  are set); UDP under 8 bytes -> ``UDP_TRUNCATED``, length field under 8 or
  past the datagram -> ``UDP_BAD_LEN`` (ports set; payload cut to the UDP
  length otherwise); ICMP/ICMPv6 under 4 bytes -> ``*_TRUNCATED``. TCP
  options are kept raw and not validated (end hosts accept segments with
  odd options, so dropping them here would let them past detection).
* Non-fatal anomalies (``pkt.anomalies``, each kind at most once per
  packet, as Suricata sets a decoder event once per packet): the packet
  decodes and is inspected as usual, the anomaly only names what an end
  host may treat differently or what an evasion tool does. They are the
  conditions behind Suricata's decoder events that have no fatal
  counterpart here: an IPv4 total length past the packet (``IPV4_TRUNC_PKT``,
  alongside the fatal ``IPV4_BAD_LEN``); an atomic IPv6 fragment
  (``IPV6_ATOMIC_FRAGMENT``), a second Fragment header
  (``IPV6_DUPLICATE_FRAG_HDR``), a non-final fragment whose length is not a
  multiple of 8 (``IPV6_FRAG_BAD_LENGTH``) or that ends past 65,535 bytes
  (``IPV6_FRAG_TOO_LARGE``); fewer than 2 bytes left after the extension
  headers (``IPV6_TRUNC_EXTHDR``: Suricata's ``trunc_exthdr`` is its
  "minimal header" check at the top of its header walk); an option type
  other than Pad1, PadN, Router Alert, Jumbo and Home Address in a
  Hop-by-Hop or Destination Options header (``*_UNKNOWN_OPT``, Suricata's
  list); IPv4/IPv6-in-IPv6 whose inner version nibble is wrong; a TCP
  option whose length is wrong for its kind or runs past the header
  (``TCP_OPT_INVALID_LEN``) or a kind seen twice (``TCP_OPT_DUPLICATE``),
  checked as Suricata's ``DecodeTCPOptions`` does (an empty SACK option,
  length 2, and a TFO cookie request, length 2, are valid). The TCP option
  walk is skipped for the usual NOP NOP TIMESTAMP layout, so the common
  path stays as fast as before.
* Truncated frames (``wire_len`` > captured bytes: the live sensor's
  header-only records of a TCP reverse direction, or a cut at its
  snaplen): every length check above that compares a length field with
  the packet compares it with what the wire carried (``wire_len``), not
  with the captured bytes; header fields themselves must still be captured
  (a header cut by the capture raises the layer's ``*_TRUNCATED`` kind).
  When the IP datagram runs past the captured bytes ``pkt.truncated`` is
  set and ``ip_payload``/``payload`` hold only what was captured (empty for
  a header-only record): later stages never see invented bytes, and skip
  checksum checks of such packets. Only Ethernet padding cut: not truncated.
"""

from __future__ import annotations

import functools
import socket
import struct

from pakemon.decode.packet import (
    DLT_RAW_BSD,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_C_HDLC,
    LINKTYPE_RAW,
    Packet,
)
from pakemon.events import NoticeKind

__all__ = [
    "DecodeError",
    "MAX_VLAN_TAGS",
    "SUPPORTED_LINKTYPES",
    "decode_frame",
    "decode_transport",
    "format_addr",
]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
ETHERTYPE_QINQ_OLD = 0x9100
ETHERTYPE_NSH = 0x894F
# NSH next protocol (RFC 8300 11.2.5) -> EtherType of what follows
_NSH_NEXT = {1: ETHERTYPE_IPV4, 2: ETHERTYPE_IPV6, 3: -1,  # -1: an Ethernet frame
             4: ETHERTYPE_NSH}
MAX_NSH = 4  # nested NSH / Ethernet-in-NSH headers walked at most
# PPP protocol numbers of IPv4 and IPv6 (RFC 1332, RFC 5072); the same
# values in their compressed one-byte form
_PPP_IP = {0x0021: 4, 0x0057: 6}
VLAN_TPIDS = frozenset((ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD))
MAX_VLAN_TAGS = 4
# Linux drops a frame under more stacked tags than this, priority tags
# included (measured on 6.18.44-fc-v1045: eight VLAN 0 tags read, nine
# dropped; the fc-v857 build of 2026-11-30 read nine)
MAX_TAG_STACK = 8

# Address families seen in the 4-byte NULL/LOOP header: AF_INET is 2
# everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD,
# DragonFly), 30 (Darwin).
_NULL_AF_INET = 2
_NULL_AF_INET6 = frozenset((10, 24, 28, 30))

# IPv6 extension headers that are walked to reach the transport header.
IPV6_HOPOPTS = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_AH = 51
IPV6_NONXT = 59
IPV6_DSTOPTS = 60
_IPV6_EXT = frozenset((IPV6_HOPOPTS, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_AH, IPV6_DSTOPTS))

SUPPORTED_LINKTYPES = frozenset((
    LINKTYPE_NULL, LINKTYPE_ETHERNET, DLT_RAW_BSD, LINKTYPE_RAW, LINKTYPE_LOOP,
    LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2,
    LINKTYPE_PPP, LINKTYPE_C_HDLC,
))

_u16 = struct.Struct("!H").unpack_from
_vlan_tag = struct.Struct("!HH").unpack_from  # TCI, inner EtherType
# version/IHL, TOS, total length, id, flags/fragment offset, TTL, protocol,
# (checksum skipped), source, destination
_ipv4 = struct.Struct("!BxHHHBB2x4s4s").unpack_from
# version/class/flow, payload length, next header, hop limit, source, dest
_ipv6 = struct.Struct("!IHBB16s16s").unpack_from
_ipv6_frag = struct.Struct("!BxHI").unpack_from  # next header, offset/M, id
# ports, seq, ack, data offset, flags, window, (checksum skipped), urgent
_tcp = struct.Struct("!HHIIBBH2xH").unpack_from
_udp = struct.Struct("!HHH").unpack_from  # ports, length

_K = NoticeKind
IPPROTO_GRE = 47
# GRE protocol types decapsulated -> the link type their payload is read as
_GRE_INNER = {ETHERTYPE_IPV4: LINKTYPE_RAW, ETHERTYPE_IPV6: LINKTYPE_RAW,
              0x880B: LINKTYPE_PPP, 0x6558: LINKTYPE_ETHERNET}
MAX_TUNNELS = 3  # GRE layers decapsulated at most (a GRE bomb stays bounded)
_tunnel_depth = 0
_TS_ALIGNED = b"\x01\x01\x08\x0a"  # NOP NOP TIMESTAMP(10): what Linux sends

# TCP option kind -> valid lengths (Suricata DecodeTCPOptions): WS, MSS,
# SACK-permitted, timestamps; SACK and TFO are checked in the loop.
_TCP_OPT_LEN = {3: (3,), 2: (4,), 4: (2,), 8: (10,)}
_TCP_OPT_SACK, _TCP_OPT_TFO = 5, 34
# IPv6 Hop-by-Hop / Destination option types Suricata knows (others raise
# *_UNKNOWN_OPT): PadN, Router Alert, Jumbo Payload, Home Address. Pad1 (0)
# is a single byte and handled apart.
_IPV6_KNOWN_OPTS = frozenset((0x01, 0x05, 0xC2, 0xC9))


class DecodeError(Exception):
    """A malformed frame.

    ``kind`` names the condition; ``pkt`` is the packet as far as it was
    decoded (family/src/dst are set when the IP header was readable, so a
    notice can say "from A to B").
    """

    def __init__(self, kind: NoticeKind, pkt: Packet):
        super().__init__(kind.name)
        self.kind = kind
        self.pkt = pkt


# Addresses are formatted for alerts and notices only (inet_ntop: ~0.2 us).
# A 65,536-entry cache held 16.6 MB once full, and traffic from ever-new
# addresses (the stability run's shifted replay) kept filling it: the live
# sensor's slow RSS growth.
@functools.lru_cache(maxsize=1024)
def format_addr(raw: bytes) -> str:
    """Raw 4- or 16-byte address to text; ``""`` for an empty address."""
    n = len(raw)
    if n == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if n == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    if n == 0:
        return ""
    raise ValueError(f"address must be 4 or 16 bytes, not {n}")


def decode_frame(linktype: int, frame: bytes, ts: float = 0.0,
                 wire_len: int | None = None) -> Packet:
    """Decode one captured frame. Raises ``DecodeError`` on malformed input.

    ``wire_len``: the frame's length on the wire when the capture cut it
    (pcap's origlen, the kernel sensor's ``PerfRecord.wire_len``); None or
    a value not above ``len(frame)`` means the frame is whole.
    """
    pkt = Packet()
    pkt.ts = ts
    pkt.linktype = linktype
    n = len(frame)
    pkt.frame_len = n
    # w: the frame's wire length; length fields are checked against it
    w = wire_len if wire_len is not None and wire_len > n else n

    # ---- link layer: find where IP starts and which version it claims ----
    if linktype == 1:  # LINKTYPE_ETHERNET
        if n < 14:
            raise DecodeError(_K.DECODE_ETH_TRUNCATED, pkt)
        etype = _u16(frame, 12)[0]
        off = 14
        if etype != 0x0800:
            if etype in VLAN_TPIDS:
                etype, off = _vlan(pkt, frame, off, etype)
            if etype == ETHERTYPE_NSH:
                etype, off = _nsh(pkt, frame, off)
            if etype == 0x86DD:
                return _ipv6_packet(pkt, frame, off, n, True, w)
            if etype != 0x0800:
                return pkt  # ARP, LLC, ...: not IP, not an error
    else:
        off, ver = _link(pkt, linktype, frame, n)
        if ver != 4:
            if ver == 6:
                return _ipv6_packet(pkt, frame, off, n, True, w)
            if ver == 0:
                return pkt
            # raw IP: the version nibble decides
            if off >= n:
                raise DecodeError(_K.DECODE_IPV4_TRUNCATED, pkt)
            if frame[off] >> 4 == 6:
                return _ipv6_packet(pkt, frame, off, n, False, w)

    # ---- IPv4 (inline: the common path) ----
    avail = n - off
    if avail < 20:
        raise DecodeError(_K.DECODE_IPV4_TRUNCATED, pkt)
    vihl, tot, ip_id, fragw, ttl, proto, src, dst = _ipv4(frame, off)
    if vihl >> 4 != 4:
        raise DecodeError(_K.DECODE_IPV4_BAD_VERSION, pkt)
    pkt.family = 4
    pkt.raw = frame
    pkt.l3_off = off
    pkt.src = src
    pkt.dst = dst
    pkt.proto = proto
    pkt.ttl = ttl
    pkt.ip_id = ip_id
    ihl = (vihl & 15) << 2
    if ihl < 20 or ihl > avail:
        if 20 <= ihl <= w - off:
            raise DecodeError(_K.DECODE_IPV4_TRUNCATED, pkt)  # cut by the capture
        raise DecodeError(_K.DECODE_IPV4_BAD_IHL, pkt)
    if tot < ihl or tot > w - off:
        if tot > w - off:
            pkt.anomalies = (_K.DECODE_IPV4_TRUNC_PKT,)
        raise DecodeError(_K.DECODE_IPV4_BAD_LEN, pkt)
    if ihl != 20:
        _check_ipv4_options(pkt, frame, off + 20, off + ihl)
    pkt.ip_hdr_len = ihl
    data = frame[off + ihl:off + tot]
    pkt.ip_payload = data
    cut = tot > avail  # the capture cut the datagram (wire_len)
    if cut:
        pkt.truncated = True
    if fragw & 0x3FFF:  # MF set or offset non-zero
        pkt.is_fragment = True
        pkt.more_frags = bool(fragw & 0x2000)
        fo = (fragw & 0x1FFF) << 3
        pkt.frag_offset = fo
        if fo == 0:
            _first_fragment_transport(pkt, data)
        else:
            pkt.payload = data
        return pkt

    # ---- transport (inline for TCP and UDP) ----
    if proto == 6:
        tl = tot - ihl
        if tl < 20 or (cut and len(data) < 20):
            raise DecodeError(_K.DECODE_TCP_TRUNCATED, pkt)
        (pkt.sport, pkt.dport, pkt.seq, pkt.ack, doff, pkt.flags, pkt.window,
         pkt.urgent) = _tcp(data)
        doff = (doff >> 4) << 2
        if doff < 20 or doff > tl:
            raise DecodeError(_K.DECODE_TCP_BAD_HDR_LEN, pkt)
        if cut:
            if doff > len(data):
                raise DecodeError(_K.DECODE_TCP_TRUNCATED, pkt)
            pkt.wire_payload = tl - doff
        if doff != 20:
            opts = pkt.tcp_options = data[20:doff]
            if opts[:4] != _TS_ALIGNED or doff != 32:
                _check_tcp_options(pkt, opts)
        pkt.payload = data[doff:]
        pkt.l4 = True
        return pkt
    if proto == 17:
        if tot - ihl < 8 or (cut and len(data) < 8):
            raise DecodeError(_K.DECODE_UDP_TRUNCATED, pkt)
        pkt.sport, pkt.dport, ulen = _udp(data)
        if ulen < 8 or ulen > tot - ihl:
            raise DecodeError(_K.DECODE_UDP_BAD_LEN, pkt)
        pkt.payload = data[8:ulen]
        pkt.l4 = True
        return pkt
    if proto == IPPROTO_GRE and not cut:
        return _gre(pkt, data)
    return _transport(pkt, data, proto, tot - ihl if cut else None)


def decode_transport(pkt: Packet) -> Packet:
    """Decode the transport header of ``pkt.ip_payload`` given ``pkt.proto``.

    Used by defrag on a reassembled datagram. For IPv6, extension headers
    left at the front of the payload (those after the fragment header) are
    walked first, updating ``proto``, ``ip_payload`` and ``ip_hdr_len``; a
    further fragment header stops the walk with ``l4`` False.
    Raises ``DecodeError`` like ``decode_frame``.
    """
    data = pkt.ip_payload
    proto = pkt.proto
    pkt.l4 = False
    if pkt.family == 6 and proto in _IPV6_EXT and proto != IPV6_FRAGMENT:
        proto, pos = _walk_ipv6_ext(pkt, data, 0, len(data), proto, True)
        if pos:
            data = data[pos:]
            pkt.ip_payload = data
            pkt.ip_hdr_len += pos
        pkt.proto = proto
    return _transport(pkt, data, proto)


# ---------------------------------------------------------------- helpers


def _link(pkt: Packet, linktype: int, frame: bytes, n: int) -> tuple[int, int]:
    """Non-Ethernet link layers: (IP offset, version 4/6, 0 = not IP,
    -1 = raw IP whose version nibble decides)."""
    if linktype == LINKTYPE_RAW or linktype == DLT_RAW_BSD:
        return 0, -1
    if linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            raise DecodeError(_K.DECODE_SLL_TRUNCATED, pkt)
        return _ethertype(pkt, frame, 16, _u16(frame, 14)[0])
    if linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            raise DecodeError(_K.DECODE_SLL_TRUNCATED, pkt)
        return _ethertype(pkt, frame, 20, _u16(frame, 0)[0])
    if linktype == LINKTYPE_IPV4:
        return 0, 4
    if linktype == LINKTYPE_IPV6:
        return 0, 6
    if linktype == LINKTYPE_PPP:
        # RFC 1662 framing: FF 03 then the protocol; without it the protocol
        # comes first (address/control field compression)
        # (ACFC); a protocol whose first byte is odd is one byte long
        # (protocol field compression, RFC 1661 6.5)
        off = 2 if n >= 2 and frame[0] == 0xFF and frame[1] == 0x03 else 0
        if n > off and frame[off] & 1:
            return off + 1, _PPP_IP.get(frame[off], 0)
        if n < off + 2:
            raise DecodeError(_K.DECODE_PPP_TRUNCATED, pkt)
        return off + 2, _PPP_IP.get(_u16(frame, off)[0], 0)
    if linktype == LINKTYPE_C_HDLC:
        if n < 4:
            raise DecodeError(_K.DECODE_CHDLC_TRUNCATED, pkt)
        return _ethertype(pkt, frame, 4, _u16(frame, 2)[0])
    if linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if n < 4:
            raise DecodeError(_K.DECODE_NULL_TRUNCATED, pkt)
        # The family is a small number in host order (NULL) or network
        # order (LOOP, and NULL from a big-endian writer): accept both.
        b0, b1, b2, b3 = frame[0], frame[1], frame[2], frame[3]
        af = -1
        if b1 == 0 and b2 == 0:
            if b3 == 0:
                af = b0
            elif b0 == 0:
                af = b3
        if af == _NULL_AF_INET:
            return 4, 4
        if af in _NULL_AF_INET6:
            return 4, 6
        return 4, 0
    raise DecodeError(_K.CAPTURE_UNKNOWN_LINKTYPE, pkt)


def _ethertype(pkt: Packet, frame: bytes, off: int, etype: int) -> tuple[int, int]:
    if etype in VLAN_TPIDS:
        etype, off = _vlan(pkt, frame, off, etype)
    if etype == ETHERTYPE_NSH:
        etype, off = _nsh(pkt, frame, off)
    if etype == ETHERTYPE_IPV4:
        return off, 4
    if etype == ETHERTYPE_IPV6:
        return off, 6
    return off, 0


def _nsh(pkt: Packet, frame: bytes, off: int) -> tuple[int, int]:
    """Skip NSH headers (RFC 8300, as Suricata's decode-nsh.c): returns the
    EtherType of what they carry and its offset (0 when not IP).

    Base header: version (must be 0), flags, TTL, length in 4-byte words
    (at least 2 for MD type 2, 6 for MD type 1), MD type, next protocol;
    then the service path header and the context headers the length covers.
    A carried Ethernet frame is unwrapped too (its VLAN tags and NSH again).

    Like a tunnel's (``_gre``), what NSH carries keeps to its own flows:
    each service path adds its id to ``pkt.vlan``, after the VLAN tags
    outside and inside. A host with no service function there drops NSH,
    so a decoy inside it is no part of an unencapsulated connection (live
    case tcp_nsh_decoy).
    """
    n = len(frame)
    zone = pkt.vlan
    for _ in range(MAX_NSH):
        if off + 8 > n:
            raise DecodeError(_K.DECODE_NSH_TRUNCATED, pkt)
        b0, b1, b2, nxt = frame[off], frame[off + 1], frame[off + 2], frame[off + 3]
        words = b1 & 0x3F
        md = b2 & 0x0F
        if b0 >> 6 != 0 or words < 2 or (md == 1 and words != 6) or off + words * 4 > n:
            raise DecodeError(_K.DECODE_NSH_TRUNCATED, pkt)
        zone = zone + (("nsh", int.from_bytes(frame[off + 4:off + 7], "big")),)
        off += words * 4
        etype = _NSH_NEXT.get(nxt, 0)
        if etype == -1:  # an Ethernet frame
            if off + 14 > n:
                raise DecodeError(_K.DECODE_ETH_TRUNCATED, pkt)
            etype = _u16(frame, off + 12)[0]
            off += 14
            if etype in VLAN_TPIDS:
                etype, off = _vlan(pkt, frame, off, etype)
                zone = zone + pkt.vlan
        pkt.vlan = zone
        if etype != ETHERTYPE_NSH:
            return etype, off
    raise DecodeError(_K.DECODE_NSH_TRUNCATED, pkt)


def _vlan(pkt: Packet, frame: bytes, off: int, etype: int) -> tuple[int, int]:
    """Walk stacked 802.1Q/802.1ad tags; returns (inner EtherType, offset).

    An 802.1Q or 802.1ad tag of VLAN 0 only carries a priority: Linux strips
    it and reads on as if untagged, up to ``MAX_TAG_STACK`` tags in all
    (live cases tcp_*_priority_tags), so those are neither kept in
    ``pkt.vlan`` (no flow of their own) nor counted against
    ``MAX_VLAN_TAGS``. Linux takes no 0x9100 tag for a VLAN: its VLAN 0 is
    kept, so such a frame stays out of the untagged flows (live case
    tcp_legacy_qinq_tpid_decoy)."""
    ids = []
    n = len(frame)
    depth = 0
    while etype in VLAN_TPIDS:
        if off + 4 > n:
            pkt.vlan = tuple(ids)
            raise DecodeError(_K.DECODE_VLAN_TRUNCATED, pkt)
        depth += 1
        if depth > MAX_TAG_STACK:
            pkt.vlan = tuple(ids)
            raise DecodeError(_K.DECODE_VLAN_TOO_MANY, pkt)
        tci, inner = _vlan_tag(frame, off)
        vid = tci & 0x0FFF
        if vid or etype == ETHERTYPE_QINQ_OLD:
            if len(ids) == MAX_VLAN_TAGS:
                pkt.vlan = tuple(ids)
                raise DecodeError(_K.DECODE_VLAN_TOO_MANY, pkt)
            ids.append(vid)
        etype = inner
        off += 4
    pkt.vlan = tuple(ids)
    return etype, off


def _gre(pkt: Packet, data: bytes) -> Packet:
    """A GRE packet: the packet it carries, decoded, when GRE version 0
    (RFC 2784/2890: checksum, key and sequence fields skipped) or 1 (PPTP,
    RFC 2637: key, sequence, acknowledgement) carries IPv4, IPv6, PPP or
    Ethernet and that decodes; otherwise the GRE packet itself, its
    payload unparsed.

    The inner packet replaces the outer one (the outer's VLAN tags and
    anomalies carry over, and ``vlan`` gains the tunnel's endpoints, which
    keep its flows apart from untunneled ones): what a tunnel endpoint
    reassembles and delivers is the inner traffic, so defrag, stream and
    rules see that, as Suricata's tunnel pseudo-packets (suricata-verify
    bug 6942: IPv4 fragments inside GRE/PPP). Routing (R) and unknown
    versions are left undecoded.
    """
    global _tunnel_depth
    n = len(data)
    pkt.payload = data
    if n < 4 or _tunnel_depth >= MAX_TUNNELS:
        return pkt
    flags, ptype = _u16(data, 0)[0], _u16(data, 2)[0]
    ver = flags & 7
    off = 4
    if ver == 0:
        if flags & 0x4000:  # routing present: a source route list follows
            return pkt
        off += 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
    elif ver == 1 and ptype == 0x880B and flags & 0x2000:
        off += 4 + 4 * (bool(flags & 0x1000) + bool(flags & 0x0080))
    else:
        return pkt
    inner_link = _GRE_INNER.get(ptype)
    if inner_link is None or off >= n:
        return pkt
    _tunnel_depth += 1
    try:
        inner = decode_frame(inner_link, data[off:], pkt.ts)
    except DecodeError:
        # the endpoint drops what it cannot decode; the GRE packet itself
        # stays for `ip` rules
        return pkt
    finally:
        _tunnel_depth -= 1
    if not inner.family:
        return pkt  # PPP control traffic, ARP over Ethernet...: not IP
    # The tunnel's endpoints mark its traffic like a VLAN ID: a host that
    # ends no such tunnel drops the packet, so what it carries is not part
    # of an untunneled connection with the same addresses and ports (live
    # case tcp_gre_decoy), nor its fragments of an untunneled datagram.
    inner.vlan = pkt.vlan + inner.vlan + (("gre", pkt.src, pkt.dst),)
    if pkt.anomalies:
        inner.anomalies = pkt.anomalies + inner.anomalies
    return inner


def _anomaly(pkt: Packet, kind: NoticeKind) -> None:
    """Record a non-fatal anomaly once per packet."""
    if kind not in pkt.anomalies:
        pkt.anomalies = pkt.anomalies + (kind,)


def _check_tcp_options(pkt: Packet, opts: bytes) -> None:
    """Suricata's TCP option checks; the walk stops at the first bad length."""
    i = 0
    n = len(opts)
    seen = set()
    while i < n:
        kind = opts[i]
        if kind == 0:  # end of option list
            return
        if kind == 1:  # NOP
            i += 1
            continue
        if i + 1 >= n:
            _anomaly(pkt, _K.DECODE_TCP_OPT_INVALID_LEN)
            return
        olen = opts[i + 1]
        if olen < 2 or i + olen > n:
            _anomaly(pkt, _K.DECODE_TCP_OPT_INVALID_LEN)
            return
        valid = _TCP_OPT_LEN.get(kind)
        if valid is not None:
            bad = olen not in valid
        elif kind == _TCP_OPT_SACK:
            bad = olen != 2 and (olen < 10 or olen > 34 or (olen - 2) % 8)
        elif kind == _TCP_OPT_TFO:
            bad = olen != 2 and (olen < 6 or olen > 18 or olen % 2)
        else:
            bad = False
            kind = -1  # other kinds are not checked for duplicates
        if bad:
            _anomaly(pkt, _K.DECODE_TCP_OPT_INVALID_LEN)
        elif kind in seen:
            _anomaly(pkt, _K.DECODE_TCP_OPT_DUPLICATE)
        elif kind >= 0:
            seen.add(kind)
        i += olen


def _check_ipv6_options(pkt: Packet, buf: bytes, pos: int, end: int, kind: NoticeKind,
                        hop: bool) -> None:
    """The options of a Hop-by-Hop (``hop``) or Destination Options header
    in buf[pos:end], read as Linux's ip6_parse_tlv reads them.

    An option type no host knows (beyond Pad1, PadN, Router Alert, Jumbo
    Payload, Home Address) is the non-fatal anomaly ``kind``. The packet is
    dropped (``IPV6_EXTHDR_REFUSED``) where the target drops it: an option
    whose action bits (RFC 8200 4.2) say discard, i.e. any unknown type
    above 0x3f; a Jumbo Payload (no jumbograms here) or Home Address
    option; a Router Alert not 2 bytes long; padding runs over 7
    bytes or PadN bytes not zero (RFC 4942 2.1.9.5); more than 8 options
    (max_hbh_opts_cnt, max_dst_opts_cnt); an option cut short. Checked
    against the live kernel: tests/integration/live_cases.py ipv6_ext_*.
    """
    padlen = count = 0
    refused = False
    while pos < end:
        opt = buf[pos]
        if opt == 0:  # Pad1
            padlen += 1
            refused = refused or padlen > 7
            pos += 1
            continue
        if pos + 1 >= end or pos + buf[pos + 1] + 2 > end:
            refused = True  # a cut option
            break
        olen = buf[pos + 1] + 2
        if opt == 1:  # PadN
            padlen += olen
            if padlen > 7 or any(buf[pos + 2:pos + olen]):
                refused = True
        else:
            count += 1
            padlen = 0
            if count > 8:
                refused = True
            if opt not in _IPV6_KNOWN_OPTS:
                _anomaly(pkt, kind)
                if opt > 0x3F:
                    refused = True
            elif opt == 0x05:  # Router Alert (in a Destination Options header: skipped)
                if hop and olen != 4:
                    refused = True
            else:  # Jumbo Payload, Home Address
                refused = True
        pos += olen
    if refused:
        raise DecodeError(_K.DECODE_IPV6_EXTHDR_REFUSED, pkt)


def _check_ipv4_options(pkt: Packet, frame: bytes, pos: int, end: int) -> None:
    """IPv4 options read as Linux reads a received packet's (net/ipv4/
    ip_options.c, __ip_options_compile, then ip_rcv_options).

    The target drops the packet, so the sensor must not take its bytes (an
    attacker's insertion otherwise: the middle segment of
    tests/integration/live_cases.py's tcp_ip_option_* cases, checked against
    the live kernel), when an option is malformed -> ``IPV4_BAD_OPTIONS``:
    a length under 2 or past the header; a second source route, record
    route, timestamp or CIPSO option; a record route or timestamp pointer
    under its minimum (4, 5) or pointing at a slot that does not fit; a
    full timestamp option whose overflow count is 15; a router alert under
    4 bytes. Or when it is refused -> ``IPV4_OPTION_REFUSED``: a loose or
    strict source route (accept_source_route is off by default, on Linux as
    on the BSDs and Windows) or a CIPSO label (no CIPSO DOI configured).
    Unknown options, the security options and whatever follows an
    end-of-list are accepted, as there.
    """
    seen = 0  # bits: the options that may appear once
    refused = False
    while pos < end:
        opt = frame[pos]
        if opt == 0:  # end of list: the rest is padding, whatever it holds
            break
        if opt == 1:  # no-operation
            pos += 1
            continue
        if pos + 1 >= end:
            raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
        olen = frame[pos + 1]
        if olen < 2 or pos + olen > end:
            raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
        once = _IPOPT_ONCE.get(opt)
        if once is not None:
            if seen & once:
                raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
            seen |= once
        if opt == 131 or opt == 137 or opt == 7:  # LSRR, SSRR, record route
            if olen < 3 or frame[pos + 2] < 4:
                raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
            if opt == 7:
                ptr = frame[pos + 2]
                if ptr <= olen and ptr + 3 > olen:
                    raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
            else:
                refused = True
        elif opt == 68:  # timestamp
            if olen < 4 or frame[pos + 2] < 5:
                raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
            ptr, flag = frame[pos + 2], frame[pos + 3]
            if ptr <= olen:
                room = 7 if flag & 0xF in (1, 3) else 3  # (address and) stamp
                if ptr + room > olen:
                    raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
            elif flag & 0xF != 3 and flag >> 4 == 15:  # overflow count full
                raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
        elif opt == 148:  # router alert
            if olen < 4:
                raise DecodeError(_K.DECODE_IPV4_BAD_OPTIONS, pkt)
        elif opt == 134:  # CIPSO: cipso_v4_validate finds no DOI
            refused = True
        pos += olen
    if refused:
        raise DecodeError(_K.DECODE_IPV4_OPTION_REFUSED, pkt)


# options Linux takes once per packet (a second one is an error): the bits
# of ``seen``; LSRR and SSRR share one (one source route)
_IPOPT_ONCE = {131: 1, 137: 1, 7: 2, 68: 4, 134: 8}


def _ipv6_packet(pkt: Packet, frame: bytes, off: int, n: int, strict_version: bool,
                 w: int | None = None) -> Packet:
    """IPv6 header, extension headers and transport.

    n: captured bytes of the frame; w: its wire length (None: n)."""
    if n - off < 40:
        raise DecodeError(_K.DECODE_IPV6_TRUNCATED, pkt)
    vcf, plen, nxt, hlim, src, dst = _ipv6(frame, off)
    if vcf >> 28 != 6:
        # On raw links the nibble already said 6; this is for links whose
        # type field said IPv6.
        raise DecodeError(
            _K.DECODE_IPV6_BAD_VERSION if strict_version else _K.DECODE_IPV4_BAD_VERSION, pkt)
    pkt.family = 6
    pkt.raw = frame
    pkt.l3_off = off
    pkt.src = src
    pkt.dst = dst
    pkt.proto = nxt
    pkt.ttl = hlim
    if w is None or w < n:
        w = n
    if plen > w - off - 40 or (plen == 0 and nxt != IPV6_NONXT):
        raise DecodeError(_K.DECODE_IPV6_BAD_LEN, pkt)
    start = off + 40
    end = start + plen
    cut = end > n  # the capture cut the datagram (wire_len)
    if cut:
        pkt.truncated = True
    if nxt in _IPV6_EXT:
        # extension headers must have been captured whole
        nxt, pos = _walk_ipv6_ext(pkt, frame, start, min(end, n), nxt, False)
        pkt.proto = nxt
        pkt.ip_hdr_len = pos - off
        data = frame[pos:end]
        pkt.ip_payload = data
        if pkt.is_fragment:
            flen = end - pos
            if pkt.more_frags and flen % 8:
                _anomaly(pkt, _K.DECODE_IPV6_FRAG_BAD_LENGTH)
            if pkt.frag_offset + flen > 65535:
                _anomaly(pkt, _K.DECODE_IPV6_FRAG_TOO_LARGE)
            if pkt.frag_offset == 0:
                _first_fragment_transport(pkt, data)
            else:
                pkt.payload = data
            return pkt
        # not for a real fragment (returned above): its bytes are parsed
        # only once reassembled, as Suricata does
        if end - pos < 2 and nxt != IPV6_NONXT:
            _anomaly(pkt, _K.DECODE_IPV6_TRUNC_EXTHDR)
    else:
        pos = start
        pkt.ip_hdr_len = 40
        data = frame[start:end]
        pkt.ip_payload = data
    if (nxt == 4 or nxt == 41) and data:
        # tunnels are not decoded further; a wrong inner version is what
        # Suricata flags (bug 7964)
        if nxt == 4 and data[0] >> 4 != 4:
            _anomaly(pkt, _K.DECODE_IPV6_IPV4_IN_IPV6_WRONG_VERSION)
        elif nxt == 41 and data[0] >> 4 != 6:
            _anomaly(pkt, _K.DECODE_IPV6_IPV6_IN_IPV6_WRONG_VERSION)
    if nxt == IPPROTO_GRE and not cut:
        return _gre(pkt, data)
    return _transport(pkt, data, nxt, end - pos if cut else None)


def _walk_ipv6_ext(pkt: Packet, buf: bytes, pos: int, end: int, nxt: int,
                   reassembled: bool) -> tuple[int, int]:
    """Walk extension headers in ``buf[pos:end]`` starting with ``nxt``.

    Returns (next header after the last one walked, its offset). Stops at a
    real fragment header (after recording it on ``pkt``; with
    ``reassembled`` it stops *before* one and records nothing).
    """
    frag_hdrs = 0
    # Hop-by-Hop only right after the IPv6 header (ip6_input: a later one is
    # an unknown next header, dropped); one after the fragment header is
    # never first
    first = not reassembled
    while nxt in _IPV6_EXT:
        if nxt == IPV6_HOPOPTS and not first:
            raise DecodeError(_K.DECODE_IPV6_EXTHDR_REFUSED, pkt)
        first = False
        if nxt == IPV6_FRAGMENT:
            if reassembled:
                return nxt, pos
            if pos + 8 > end:
                raise DecodeError(_K.DECODE_IPV6_BAD_EXTHDR, pkt)
            frag_hdrs += 1
            if frag_hdrs == 2:
                _anomaly(pkt, _K.DECODE_IPV6_DUPLICATE_FRAG_HDR)
            nh, offm, ident = _ipv6_frag(buf, pos)
            pos += 8
            pkt.ip_id = ident
            if offm & 0xFFF9:  # offset non-zero or M set: a real fragment
                pkt.is_fragment = True
                pkt.frag_offset = offm & 0xFFF8
                pkt.more_frags = bool(offm & 1)
                return nh, pos
            # atomic fragment (RFC 6946): carry on as unfragmented
            _anomaly(pkt, _K.DECODE_IPV6_ATOMIC_FRAGMENT)
            nxt = nh
            continue
        if pos + 2 > end:
            raise DecodeError(_K.DECODE_IPV6_BAD_EXTHDR, pkt)
        nh = buf[pos]
        if nxt == IPV6_AH:
            hlen = (buf[pos + 1] + 2) << 2
        else:
            hlen = (buf[pos + 1] + 1) << 3
        if pos + hlen > end:
            raise DecodeError(_K.DECODE_IPV6_BAD_EXTHDR, pkt)
        if nxt == IPV6_DSTOPTS:
            _check_ipv6_options(pkt, buf, pos + 2, pos + hlen, _K.DECODE_IPV6_DSTOPTS_UNKNOWN_OPT,
                                False)
        elif nxt == IPV6_HOPOPTS:
            _check_ipv6_options(pkt, buf, pos + 2, pos + hlen,
                                _K.DECODE_IPV6_HOPOPTS_UNKNOWN_OPT, True)
        elif nxt == IPV6_ROUTING and buf[pos + 3]:
            # segments left: the host would route the packet on, which no
            # default host does (type 0 and 2 source routes off, Segment
            # Routing and RPL off, other types unknown: ipv6_rthdr_rcv)
            raise DecodeError(_K.DECODE_IPV6_EXTHDR_REFUSED, pkt)
        pos += hlen
        nxt = nh
    return nxt, pos


def _transport(pkt: Packet, data: bytes, proto: int, wire_tl: int | None = None) -> Packet:
    """Strict transport decode of a whole (unfragmented) IP payload.

    wire_tl: the payload's length on the wire when the capture cut it
    (length fields are checked against it; headers must be captured)."""
    cap = len(data)
    tl = cap if wire_tl is None else wire_tl
    if proto == IPPROTO_TCP:
        if tl < 20 or cap < 20:
            raise DecodeError(_K.DECODE_TCP_TRUNCATED, pkt)
        (pkt.sport, pkt.dport, pkt.seq, pkt.ack, doff, pkt.flags, pkt.window,
         pkt.urgent) = _tcp(data)
        doff = (doff >> 4) << 2
        if doff < 20 or doff > tl:
            raise DecodeError(_K.DECODE_TCP_BAD_HDR_LEN, pkt)
        if doff > cap:
            raise DecodeError(_K.DECODE_TCP_TRUNCATED, pkt)
        if wire_tl is not None:
            pkt.wire_payload = wire_tl - doff
        opts = pkt.tcp_options = data[20:doff]
        if opts and (opts[:4] != _TS_ALIGNED or doff != 32):
            _check_tcp_options(pkt, opts)
        pkt.payload = data[doff:]
    elif proto == IPPROTO_UDP:
        if tl < 8 or cap < 8:
            raise DecodeError(_K.DECODE_UDP_TRUNCATED, pkt)
        pkt.sport, pkt.dport, ulen = _udp(data)
        if ulen < 8 or ulen > tl:
            raise DecodeError(_K.DECODE_UDP_BAD_LEN, pkt)
        pkt.payload = data[8:ulen]
    elif proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
        if tl < 4 or cap < 4:
            raise DecodeError(
                _K.DECODE_ICMP_TRUNCATED if proto == IPPROTO_ICMP else _K.DECODE_ICMPV6_TRUNCATED,
                pkt)
        pkt.sport = data[0]
        pkt.dport = data[1]
        pkt.payload = data[4:]
    else:
        pkt.payload = data
        return pkt
    pkt.l4 = True
    return pkt


def _first_fragment_transport(pkt: Packet, data: bytes) -> None:
    """Lenient transport decode of a first fragment: l4 only if it fits."""
    proto = pkt.proto
    tl = len(data)
    if proto == IPPROTO_TCP:
        if tl >= 20:
            doff = (data[12] >> 4) << 2
            if 20 <= doff <= tl:
                _transport(pkt, data, proto)
                return
    elif proto == IPPROTO_UDP:
        if tl >= 8:
            pkt.sport, pkt.dport, _ulen = _udp(data)
            pkt.payload = data[8:]  # the UDP length spans later fragments
            pkt.l4 = True
            return
    elif proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
        if tl >= 4:
            _transport(pkt, data, proto)
            return
    pkt.payload = data


# ---- checksums (verified only where a stage needs them: it costs a pass
# over the bytes). The one's complement sum of 16-bit words is the value of
# the bytes as one big integer modulo 0xFFFF (2**16 == 1 mod 0xFFFF), which
# int.from_bytes computes in C: ~10x faster than summing words in Python.

def _ones_sum_ok(data: bytes) -> bool:
    """True when the one's complement sum of ``data`` (checksum included) is 0xFFFF."""
    k = len(data)
    if k & 1:
        data = data + b"\0"
        k += 1
    if k > 256:
        # The remainder is the costly step (one division per 30-bit digit):
        # the two halves' values summed (each half an even number of bytes,
        # so a ≡ a * 2**(8 * len(b)) mod 0xFFFF) leave half the digits to
        # divide. 1.5 against 2.0 us on a 1,480-byte segment.
        h = (k >> 2) << 1
        n = int.from_bytes(data[:h], "big") + int.from_bytes(data[h:], "big")
    else:
        n = int.from_bytes(data, "big")
    return n != 0 and n % 0xFFFF == 0


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) to write into a header built here:
    the reset unit's, EVE's rebuilt packet, a merged live record's. Summed
    word by word, not by the remainder trick above, so that frames built
    with it (pakemon.respond.packet's, which the lab uses too) and the
    check of them are two different computations that test each other."""
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_header_checksum_ok(pkt: Packet) -> bool:
    """The IPv4 header checksum of a decoded packet is right."""
    off = pkt.l3_off
    return _ones_sum_ok(pkt.raw[off:off + pkt.ip_hdr_len])


def l4_checksum_ok(pkt: Packet, segment: bytes | None = None) -> bool:
    """The TCP/UDP/ICMPv6 checksum (with pseudo-header) or ICMPv4 checksum is right.

    ``segment`` defaults to ``pkt.ip_payload`` (for a reassembled datagram it
    is the whole transport message). A UDP checksum of 0 over IPv4 means
    "none" and is accepted, as the stack does.
    """
    seg = pkt.ip_payload if segment is None else segment
    proto = pkt.proto
    if proto == 1:
        return _ones_sum_ok(seg)
    if proto == 17:
        if pkt.family == 4 and seg[6:8] == b"\0\0":
            return True
        seg = _udp_message(seg)
    n = len(seg)
    if pkt.family == 4:
        pseudo = pkt.src + pkt.dst + bytes((0, proto, n >> 8 & 0xFF, n & 0xFF))
    else:
        pseudo = pkt.src + pkt.dst + n.to_bytes(4, "big") + bytes((0, 0, 0, proto))
    if n & 1:
        seg = seg + b"\0"
    return _ones_sum_ok(pseudo + seg)


def _udp_message(seg: bytes) -> bytes:
    """A UDP header and payload cut to the header's length field, as
    __udp4_lib_rcv / udpv6_rcv trim the packet before checksumming it: bytes
    past the UDP length are no part of the datagram, and its checksum and
    pseudo-header length leave them out (live case
    ipv4_frag_udp_length_short_of_payload). A length the decoder rejects
    (under 8, past the packet) leaves the bytes as they are."""
    if len(seg) >= 8:
        ulen = seg[4] << 8 | seg[5]
        if 8 <= ulen < len(seg):
            return seg[:ulen]
    return seg


def l4_checksum_partial(pkt: Packet) -> bool:
    """The TCP/UDP checksum field holds only the pseudo-header sum.

    That is what a sending host with checksum offload (CHECKSUM_PARTIAL)
    leaves for its NIC to finish, and what a capture taken on that host, or
    on a veth, shows: the frame on the wire was right. Linux stores the
    folded, not inverted, pseudo-header sum (tcp_v4_send_check: th->check =
    ~tcp_v4_check(len, saddr, daddr, 0)).
    """
    proto = pkt.proto
    seg = pkt.ip_payload
    if proto == 17:
        seg = _udp_message(seg)
    n = len(seg)
    if proto == 6:
        field = seg[16:18]
    elif proto == 17:
        field = seg[6:8]
    else:
        return False
    if len(field) < 2:
        return False
    if pkt.family == 4:
        pseudo = pkt.src + pkt.dst + bytes((0, proto, n >> 8 & 0xFF, n & 0xFF))
    else:
        pseudo = pkt.src + pkt.dst + n.to_bytes(4, "big") + bytes((0, 0, 0, proto))
    s = int.from_bytes(pseudo, "big") % 0xFFFF
    want = int.from_bytes(field, "big")
    # 0xFFFF and 0 are the same one's complement value
    return want == s or (s == 0 and want == 0xFFFF)
