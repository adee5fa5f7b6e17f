"""decode_frame / decode_transport on well-formed frames built with scapy."""

from __future__ import annotations

import socket
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    fragment6,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, LLC, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Dot3, Ether, Loopback
from scapy.packet import Raw

from pakemon.decode import DecodeError, Packet, decode_frame, decode_transport, format_addr
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
    LINKTYPE_RAW,
    TH_ACK,
    TH_PUSH,
    TH_SYN,
)
from pakemon.events import NoticeKind

A4, B4 = "192.0.2.1", "198.51.100.7"
A6, B6 = "2001:db8::1", "2001:db8:ffff::22"
RA4, RB4 = socket.inet_aton(A4), socket.inet_aton(B4)
RA6, RB6 = socket.inet_pton(socket.AF_INET6, A6), socket.inet_pton(socket.AF_INET6, B6)
ETH = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")


def ip4(**kw):
    return IP(src=A4, dst=B4, **kw)


def ip6(**kw):
    return IPv6(src=A6, dst=B6, **kw)


def tcp(**kw):
    kw.setdefault("sport", 40000)
    kw.setdefault("dport", 80)
    return TCP(**kw)


# ------------------------------------------------------------------ IPv4/TCP


def test_ethernet_ipv4_tcp_fills_every_field():
    seg = tcp(seq=123456789, ack=987654321, flags="PA", window=4321, urgptr=7)
    frame = bytes(ETH / ip4(ttl=33, id=0xBEEF) / seg / Raw(b"GET / HTTP/1.0\r\n"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame, ts=12.5)
    assert isinstance(pkt, Packet)
    assert pkt.ts == 12.5
    assert pkt.linktype == LINKTYPE_ETHERNET
    assert pkt.frame_len == len(frame)
    assert pkt.vlan == ()
    assert (pkt.family, pkt.src, pkt.dst) == (4, RA4, RB4)
    assert (pkt.proto, pkt.ttl, pkt.ip_id) == (IPPROTO_TCP, 33, 0xBEEF)
    assert pkt.ip_hdr_len == 20
    assert not pkt.is_fragment
    assert pkt.ip_payload == frame[34:]
    assert pkt.l4
    assert (pkt.sport, pkt.dport) == (40000, 80)
    assert (pkt.seq, pkt.ack) == (123456789, 987654321)
    assert pkt.flags == TH_PUSH | TH_ACK
    assert (pkt.window, pkt.urgent) == (4321, 7)
    assert pkt.tcp_options == b""
    assert pkt.payload == b"GET / HTTP/1.0\r\n"


def test_tcp_options_are_kept_raw_and_payload_starts_after_them():
    opts = [("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b""), ("Timestamp", (1, 2))]
    seg = tcp(flags="S", options=opts)
    raw_opts = bytes(seg)[20:]
    frame = bytes(ETH / ip4() / seg / Raw(b"data"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.flags == TH_SYN
    assert pkt.tcp_options == raw_opts
    assert len(pkt.tcp_options) % 4 == 0 and len(pkt.tcp_options) > 0
    assert pkt.payload == b"data"


def test_tcp_with_empty_payload_has_empty_payload():
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH / ip4() / tcp(flags="A")))
    assert pkt.l4 and pkt.payload == b"" and pkt.flags == TH_ACK


def test_ethernet_padding_beyond_ip_total_length_is_cut_off():
    frame = bytes(ETH / ip4() / tcp(flags="A"))  # 54 bytes
    padded = frame + b"\x00" * 6  # minimum Ethernet frame is 60 bytes
    pkt = decode_frame(LINKTYPE_ETHERNET, padded)
    assert pkt.frame_len == 60
    assert pkt.ip_payload == frame[34:]
    assert pkt.payload == b""


def test_ethernet_padding_after_udp_is_not_payload():
    frame = bytes(ETH / ip4() / UDP(sport=1, dport=2) / Raw(b"ab")) + b"\xee" * 8
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.payload == b"ab"
    assert len(pkt.ip_payload) == 10


def test_ipv4_options_extend_the_header():
    # 8 bytes of options (router alert, 3 NOPs, EOL) spliced in by hand.
    opts = b"\x94\x04\x00\x00" + b"\x01\x01\x01\x00"
    raw = bytes(ip4() / tcp() / Raw(b"x"))
    hdr = bytearray(raw[:20]) + opts
    hdr[0] = 0x47
    struct.pack_into("!H", hdr, 2, len(raw) + 8)
    frame = bytes(ETH)[:12] + b"\x08\x00" + bytes(hdr) + raw[20:]
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.ip_hdr_len == 28
    assert pkt.ip_payload == raw[20:]
    assert pkt.l4 and pkt.dport == 80 and pkt.payload == b"x"


def test_ipv4_options_built_by_scapy_are_accepted():
    from scapy.layers.inet import IPOption_RR

    frame = bytes(ETH / IP(src=A4, dst=B4, options=[IPOption_RR(routers=["1.1.1.1", "2.2.2.2"])]) / tcp())
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.ip_hdr_len > 20
    assert pkt.l4 and pkt.dport == 80


def test_ipv4_options_padded_with_nop_and_eol_are_accepted():
    from scapy.layers.inet import IPOption_NOP, IPOption_Router_Alert

    frame = bytes(ETH / IP(src=A4, dst=B4, options=[IPOption_NOP(), IPOption_Router_Alert()]) / tcp())
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.ip_hdr_len == 28 and pkt.l4


def test_df_flag_alone_is_not_a_fragment():
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH / ip4(flags="DF") / tcp()))
    assert not pkt.is_fragment and pkt.l4


# ------------------------------------------------------------------ UDP/ICMP


def test_udp_ports_and_payload():
    frame = bytes(ETH / ip4() / UDP(sport=5353, dport=53) / Raw(b"\x12\x34query"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.proto == IPPROTO_UDP and pkt.l4
    assert (pkt.sport, pkt.dport) == (5353, 53)
    assert pkt.payload == b"\x12\x34query"


def test_udp_payload_is_cut_to_the_udp_length():
    frame = bytes(ETH / ip4() / UDP(sport=1, dport=2, len=11) / Raw(b"abcdef"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.payload == b"abc"
    assert len(pkt.ip_payload) == 14


def test_icmp_type_and_code_go_to_sport_and_dport():
    frame = bytes(ETH / ip4() / ICMP(type=3, code=4) / Raw(b"orig-hdr"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.proto == IPPROTO_ICMP and pkt.l4
    assert (pkt.sport, pkt.dport) == (3, 4)
    assert pkt.payload == frame[34 + 4:]  # after type/code/checksum


def test_icmp_echo_payload_includes_id_and_seq():
    frame = bytes(ETH / ip4() / ICMP(type=8, id=0x1234, seq=5) / Raw(b"ping"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert (pkt.sport, pkt.dport) == (8, 0)
    assert pkt.payload == b"\x12\x34\x00\x05ping"


def test_icmpv6_type_and_code_go_to_sport_and_dport():
    frame = bytes(ETH / ip6() / ICMPv6EchoRequest(id=1, seq=2, data=b"hi"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.proto == IPPROTO_ICMPV6 and pkt.l4
    assert (pkt.sport, pkt.dport) == (128, 0)
    assert pkt.payload == b"\x00\x01\x00\x02hi"


def test_other_ip_protocol_has_no_l4_and_payload_is_ip_payload():
    frame = bytes(ETH / ip4(proto=47) / Raw(b"\x00\x00\x08\x00gre-body"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.proto == 47 and not pkt.l4
    assert pkt.payload == pkt.ip_payload == b"\x00\x00\x08\x00gre-body"


# ------------------------------------------------------------------ IPv6


def test_ipv6_tcp():
    frame = bytes(ETH / ip6(hlim=9) / tcp(flags="S") / Raw(b"v6"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert (pkt.family, pkt.src, pkt.dst) == (6, RA6, RB6)
    assert (pkt.proto, pkt.ttl, pkt.ip_hdr_len) == (IPPROTO_TCP, 9, 40)
    assert pkt.l4 and pkt.dport == 80 and pkt.payload == b"v6"
    assert pkt.ip_payload == frame[14 + 40:]


def test_ipv6_padding_beyond_payload_length_is_cut_off():
    frame = bytes(ETH / ip6() / UDP(sport=1, dport=2) / Raw(b"q")) + b"\x00" * 5
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert len(pkt.ip_payload) == 9 and pkt.payload == b"q"


@pytest.mark.parametrize(
    "ext, ext_len",
    [
        (IPv6ExtHdrHopByHop(), 8),
        (IPv6ExtHdrRouting(addresses=["2001:db8::9"], segleft=0), 24),
        (IPv6ExtHdrDestOpt(), 8),
        (AH(nh=IPPROTO_UDP, payloadlen=2, spi=1, seq=1, icv=b"\xaa" * 4), 16),
    ],
    ids=["hop-by-hop", "routing", "destination-options", "ah"],
)
def test_ipv6_single_extension_header_is_walked_to_transport(ext, ext_len):
    frame = bytes(ETH / ip6() / ext / UDP(sport=7, dport=9) / Raw(b"body"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.proto == IPPROTO_UDP
    assert pkt.ip_hdr_len == 40 + ext_len
    assert pkt.ip_payload == frame[14 + 40 + ext_len:]
    assert pkt.l4 and (pkt.sport, pkt.dport) == (7, 9) and pkt.payload == b"body"


def test_ipv6_extension_header_chain_is_walked_to_transport():
    chain = (IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
             / IPv6ExtHdrRouting(addresses=["::1", "::2"], segleft=0)
             / AH(nh=60, payloadlen=2, spi=5, seq=9, icv=b"\xbb" * 4) / IPv6ExtHdrDestOpt())
    frame = bytes(ETH / ip6() / chain / tcp(flags="A") / Raw(b"chain"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.proto == IPPROTO_TCP
    assert pkt.ip_hdr_len == 40 + 8 + 8 + 40 + 16 + 8
    assert pkt.l4 and pkt.payload == b"chain"


def test_ipv6_no_next_header_has_no_l4():
    frame = bytes(ETH / ip6(nh=59) / Raw(b"ignored"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.proto == 59 and not pkt.l4 and pkt.payload == b"ignored"


def test_ipv6_no_next_header_with_zero_payload_length_is_fine():
    frame = bytes(ETH / ip6(nh=59, plen=0))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.family == 6 and pkt.ip_payload == b"" and not pkt.l4


def test_ipv6_no_next_header_after_extension_header():
    frame = bytes(ETH / ip6() / IPv6ExtHdrDestOpt(nh=59))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.proto == 59 and pkt.ip_hdr_len == 48 and pkt.ip_payload == b""


# ------------------------------------------------------------------ fragments


def _v4_frags():
    whole = ip4(id=4242) / UDP(sport=1111, dport=2222) / Raw(bytes(range(256)) * 4)
    return whole, fragment(whole, fragsize=400)


def test_ipv4_first_fragment_decodes_transport_without_udp_length_check():
    whole, frags = _v4_frags()
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH / frags[0]))
    assert pkt.is_fragment and pkt.more_frags
    assert (pkt.frag_offset, pkt.ip_id) == (0, 4242)
    assert pkt.l4 and (pkt.sport, pkt.dport) == (1111, 2222)
    assert pkt.payload == bytes(whole[UDP].payload)[: len(pkt.ip_payload) - 8]


def test_ipv4_later_fragments_have_byte_offsets_and_no_l4():
    whole, frags = _v4_frags()
    last = len(frags) - 1
    for i, frag in enumerate(frags[1:], start=1):
        pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH / frag))
        assert pkt.is_fragment and not pkt.l4
        assert pkt.frag_offset == frag.frag * 8 and pkt.frag_offset > 0
        assert pkt.more_frags == (i != last)
        assert pkt.ip_payload == bytes(frag.payload)
        assert pkt.payload == pkt.ip_payload
        assert pkt.ip_id == 4242


def test_ipv4_first_fragment_too_short_for_tcp_header_is_not_an_error():
    frame = bytes(ETH / ip4(flags="MF", proto=6) / Raw(b"\x00\x50\x01\xbb0123"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.is_fragment and pkt.frag_offset == 0 and not pkt.l4
    assert pkt.payload == pkt.ip_payload


def test_ipv4_first_fragment_with_tcp_options_past_the_fragment_is_not_an_error():
    seg = bytearray(bytes(tcp()))
    seg[12] = 0xF0  # data offset 60 bytes, fragment only holds 20
    frame = bytes(ETH / ip4(flags="MF", proto=6) / Raw(bytes(seg)))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.is_fragment and not pkt.l4


def test_ipv4_first_fragment_tcp_decoded_when_it_fits():
    frame = bytes(ETH / ip4(flags="MF") / tcp(flags="PA") / Raw(b"head"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.is_fragment and pkt.l4 and pkt.dport == 80 and pkt.payload == b"head"


def test_ipv4_reassembled_datagram_decodes_with_decode_transport():
    whole, frags = _v4_frags()
    parts = [decode_frame(LINKTYPE_ETHERNET, bytes(ETH / f)) for f in frags]
    first = parts[0]
    buf = bytearray()
    for p in sorted(parts, key=lambda p: p.frag_offset):
        buf[p.frag_offset:p.frag_offset + len(p.ip_payload)] = p.ip_payload
    first.is_fragment = False
    first.ip_payload = bytes(buf)
    first.l4 = False
    out = decode_transport(first)
    assert out is first
    assert out.l4 and (out.sport, out.dport) == (1111, 2222)
    assert out.payload == bytes(whole[UDP].payload)


def _v6_frags(ext=None):
    inner = UDP(sport=3333, dport=4444) / Raw(bytes(range(200)) * 5)
    if ext is not None:
        inner = ext / inner
    whole = ip6() / IPv6ExtHdrFragment(id=0xDEADBEEF) / inner
    return whole, fragment6(whole, 500)


def test_ipv6_first_fragment_decodes_transport():
    whole, frags = _v6_frags()
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH / frags[0]))
    assert pkt.is_fragment and pkt.more_frags and pkt.frag_offset == 0
    assert pkt.ip_id == 0xDEADBEEF
    assert pkt.proto == IPPROTO_UDP
    assert pkt.ip_hdr_len == 48
    assert pkt.l4 and (pkt.sport, pkt.dport) == (3333, 4444)


def test_ipv6_later_fragments_have_byte_offsets_and_fragmentable_part_payload():
    whole, frags = _v6_frags()
    assert len(frags) > 2
    last = len(frags) - 1
    for i, frag in enumerate(frags[1:], start=1):
        pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH / frag))
        fh = frag[IPv6ExtHdrFragment]
        assert pkt.is_fragment and not pkt.l4
        assert pkt.frag_offset == fh.offset * 8 > 0
        assert pkt.more_frags == (i != last)
        assert pkt.ip_payload == bytes(fh.payload)
        assert pkt.ip_hdr_len == 48


def test_ipv6_fragment_after_hop_by_hop_counts_both_in_header_length():
    whole = ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(id=7, offset=10, m=1) / Raw(b"x" * 16)
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH / whole))
    assert pkt.is_fragment and pkt.frag_offset == 80 and pkt.more_frags
    assert pkt.ip_hdr_len == 40 + 8 + 8
    assert pkt.ip_payload == b"x" * 16


def test_ipv6_atomic_fragment_is_treated_as_unfragmented():
    frame = bytes(ETH / ip6() / IPv6ExtHdrFragment(id=99, offset=0, m=0) / tcp() / Raw(b"atomic"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert not pkt.is_fragment
    assert pkt.ip_id == 99
    assert pkt.l4 and pkt.payload == b"atomic" and pkt.ip_hdr_len == 48


def test_ipv6_reassembled_datagram_with_destination_options_after_fragment_header():
    whole, frags = _v6_frags(ext=IPv6ExtHdrDestOpt())
    parts = [decode_frame(LINKTYPE_ETHERNET, bytes(ETH / f)) for f in frags]
    first = parts[0]
    assert first.proto == 60 and not first.l4  # dest opts in the fragmentable part
    buf = bytearray()
    for p in parts:
        buf[p.frag_offset:p.frag_offset + len(p.ip_payload)] = p.ip_payload
    first.is_fragment = False
    first.ip_payload = bytes(buf)
    out = decode_transport(first)
    assert out.proto == IPPROTO_UDP
    assert out.ip_hdr_len == 48 + 8
    assert out.l4 and (out.sport, out.dport) == (3333, 4444)
    assert out.payload == bytes(range(200)) * 5


# ------------------------------------------------------------------ link types


def test_linux_sll_ipv4():
    frame = bytes(CookedLinux(pkttype=0, lladdrtype=1) / ip4() / tcp())
    pkt = decode_frame(LINKTYPE_LINUX_SLL, frame)
    assert pkt.linktype == LINKTYPE_LINUX_SLL
    assert (pkt.family, pkt.src, pkt.dport) == (4, RA4, 80)


def test_linux_sll_ipv6():
    frame = bytes(CookedLinux() / ip6() / UDP(dport=53))
    pkt = decode_frame(LINKTYPE_LINUX_SLL, frame)
    assert (pkt.family, pkt.dst, pkt.dport) == (6, RB6, 53)


def test_linux_sll2_ipv4_and_ipv6():
    pkt = decode_frame(LINKTYPE_LINUX_SLL2, bytes(CookedLinuxV2() / ip4() / tcp()))
    assert (pkt.family, pkt.src, pkt.dport) == (4, RA4, 80)
    pkt = decode_frame(LINKTYPE_LINUX_SLL2, bytes(CookedLinuxV2() / ip6() / tcp()))
    assert (pkt.family, pkt.src, pkt.dport) == (6, RA6, 80)


def test_linux_sll_with_vlan_tag_left_in():
    frame = bytes(CookedLinux(proto=0x8100) / Dot1Q(vlan=12) / ip4() / tcp())
    pkt = decode_frame(LINKTYPE_LINUX_SLL, frame)
    assert pkt.vlan == (12,) and pkt.family == 4 and pkt.l4


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, DLT_RAW_BSD])
def test_raw_ip_version_nibble_decides(linktype):
    pkt = decode_frame(linktype, bytes(ip4() / tcp()))
    assert pkt.family == 4 and pkt.l4
    pkt = decode_frame(linktype, bytes(ip6() / tcp()))
    assert pkt.family == 6 and pkt.l4


def test_linktype_ipv4_and_ipv6():
    assert decode_frame(LINKTYPE_IPV4, bytes(ip4() / UDP())).family == 4
    assert decode_frame(LINKTYPE_IPV6, bytes(ip6() / UDP())).family == 6


def test_null_header_in_little_endian_host_order():
    frame = bytes(Loopback(type=2) / ip4() / tcp())
    assert frame[:4] == b"\x02\x00\x00\x00"
    pkt = decode_frame(LINKTYPE_NULL, frame)
    assert pkt.family == 4 and pkt.l4


@pytest.mark.parametrize("linktype", [LINKTYPE_NULL, LINKTYPE_LOOP])
@pytest.mark.parametrize("order", [">I", "<I"])
def test_null_and_loop_accept_either_byte_order(linktype, order):
    pkt = decode_frame(linktype, struct.pack(order, 2) + bytes(ip4() / tcp()))
    assert pkt.family == 4 and pkt.l4


@pytest.mark.parametrize("af", [10, 24, 28, 30])
@pytest.mark.parametrize("linktype", [LINKTYPE_NULL, LINKTYPE_LOOP])
def test_null_and_loop_recognise_every_af_inet6_value(linktype, af):
    pkt = decode_frame(linktype, struct.pack(">I", af) + bytes(ip6() / tcp()))
    assert pkt.family == 6 and pkt.l4


def test_null_with_unknown_family_is_not_ip():
    pkt = decode_frame(LINKTYPE_NULL, struct.pack("<I", 7) + bytes(ip4() / tcp()))
    assert pkt.family == 0 and not pkt.l4


# ------------------------------------------------------------------ VLAN


def test_single_8021q_tag():
    frame = bytes(ETH / Dot1Q(vlan=100, prio=5) / ip4() / tcp())
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.vlan == (100,)
    assert pkt.family == 4 and pkt.l4 and pkt.ip_payload == frame[18 + 20:]


def test_qinq_8021ad_outer_and_8021q_inner():
    frame = bytes(ETH / Dot1AD(vlan=300) / Dot1Q(vlan=42) / ip6() / tcp())
    assert frame[12:14] == b"\x88\xa8"
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.vlan == (300, 42)
    assert pkt.family == 6 and pkt.l4


def test_a_priority_tag_is_no_vlan():
    """VLAN 0 only carries a priority: the kernel strips it and reads the
    frame as untagged (so it makes no flow of its own downstream)."""
    frame = bytes(ETH / Dot1Q(vlan=0, prio=3) / ip4() / tcp())
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.vlan == () and pkt.family == 4 and pkt.l4
    frame = bytes(ETH / Dot1AD(vlan=0) / Dot1Q(vlan=42) / ip4() / tcp())
    assert decode_frame(LINKTYPE_ETHERNET, frame).vlan == (42,)
    # up to eight tags in all, as the kernel strips them (only VLAN ids count
    # against MAX_VLAN_TAGS); a ninth makes the kernel drop the frame
    def stacked(n, last=0):
        layers = ETH
        for _ in range(n - 1):
            layers = layers / Dot1Q(vlan=0)
        return bytes(layers / Dot1Q(vlan=last) / ip4() / tcp())
    pkt = decode_frame(LINKTYPE_ETHERNET, stacked(7, last=9))
    assert pkt.vlan == (9,) and pkt.l4
    assert decode_frame(LINKTYPE_ETHERNET, stacked(8)).l4
    for n in (9, 12):
        with pytest.raises(DecodeError) as e:
            decode_frame(LINKTYPE_ETHERNET, stacked(n))
        assert e.value.kind == NoticeKind.DECODE_VLAN_TOO_MANY


def test_a_legacy_0x9100_tag_keeps_its_vlan_0():
    """Linux takes no 0x9100 tag for a VLAN (the frame is dropped): its VLAN
    0 is kept so the frame is not read as untagged."""
    frame = bytes(ETH)[:12] + b"\x91\x00" + bytes(Dot1Q(vlan=0) / ip4() / tcp())
    assert decode_frame(LINKTYPE_ETHERNET, frame).vlan == (0,)


def test_legacy_9100_qinq_tag():
    frame = bytes(ETH)[:12] + b"\x91\x00" + bytes(Dot1Q(vlan=7) / ip4() / UDP())
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.vlan == (7,) and pkt.family == 4


def test_four_stacked_tags_are_accepted():
    frame = bytes(ETH / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / Dot1Q(vlan=4) / ip4() / tcp())
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.vlan == (1, 2, 3, 4) and pkt.l4


def test_vlan_tagged_arp_is_not_ip():
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH / Dot1Q(vlan=5) / ARP()))
    assert pkt.vlan == (5,) and pkt.family == 0


# ------------------------------------------------------------------ non-IP


def test_arp_is_not_ip_and_not_an_error():
    frame = bytes(ETH / ARP())
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.family == 0 and not pkt.l4 and pkt.frame_len == len(frame)


def test_8023_llc_frame_is_not_ip():
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(Dot3() / LLC() / Raw(b"stp-ish")))
    assert pkt.family == 0


def test_sll_non_ip_protocol_is_not_ip():
    pkt = decode_frame(LINKTYPE_LINUX_SLL, bytes(CookedLinux(proto=0x0806) / ARP()))
    assert pkt.family == 0


def test_unknown_linktype_raises_capture_unknown_linktype():
    with pytest.raises(DecodeError) as ei:
        decode_frame(9999, bytes(ip4() / tcp()))
    assert ei.value.kind is NoticeKind.CAPTURE_UNKNOWN_LINKTYPE
    assert ei.value.pkt.family == 0


# ------------------------------------------------------------------ misc API


def test_format_addr_formats_v4_and_v6():
    assert format_addr(RA4) == A4
    assert format_addr(RA6) == A6
    assert format_addr(b"") == ""


def test_format_addr_rejects_other_lengths():
    with pytest.raises(ValueError):
        format_addr(b"\x01\x02\x03")


def test_decode_error_names_its_kind():
    err = DecodeError(NoticeKind.DECODE_TCP_TRUNCATED, Packet())
    assert "DECODE_TCP_TRUNCATED" in str(err)


def test_decode_transport_on_unfragmented_ipv4_packet_is_idempotent():
    frame = bytes(ETH / ip4() / tcp(flags="PA") / Raw(b"again"))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    before = {k: getattr(pkt, k) for k in Packet.__slots__}
    decode_transport(pkt)
    assert {k: getattr(pkt, k) for k in Packet.__slots__} == before


# ---------------------------------------------- UDP length short of the packet


@pytest.mark.parametrize("ip", [ip4, ip6], ids=["ipv4", "ipv6"])
def test_bytes_past_the_udp_length_are_no_part_of_the_datagram(ip):
    """Linux trims a UDP packet to its length field before checksumming it
    (live case ipv4_frag_udp_length_short_of_payload): the checksum over the
    datagram is right, the bytes after it are neither payload nor summed."""
    from pakemon.decode.decoder import l4_checksum_ok

    good = bytes(ETH / ip() / UDP(sport=5000, dport=53) / Raw(b"query"))
    frame = good + b"#" * 8
    # the IP length covers the trailing bytes, the UDP length does not
    frame = bytearray(frame)
    off = 14 + 2 if ip is ip4 else 14 + 4
    struct.pack_into("!H", frame, off, struct.unpack_from("!H", frame, off)[0] + 8)
    if ip is ip4:
        struct.pack_into("!H", frame, 24, 0)
        frame = bytes(frame[:24]) + struct.pack("!H", _csum(frame[14:34])) + bytes(frame[26:])
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(frame))
    assert pkt.payload == b"query" and l4_checksum_ok(pkt)
    assert pkt.ip_payload.endswith(b"#" * 8)


def _csum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# ------------------------------------------------ one's complement sum

def _rfc1071_ok(data: bytes) -> bool:
    """RFC 1071 word by word: the folded sum of ``data`` (its checksum
    included, an odd byte padded) is 0xFFFF."""
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


def test_ones_sum_agrees_with_rfc1071_at_every_length():
    """The sum is taken from halves on long data (a faster remainder): every
    length, odd or even, short or long, with a right checksum, a wrong one
    by one bit, and the all-zero and all-ones data, agrees with RFC 1071."""
    import random

    from pakemon.decode.decoder import _ones_sum_ok

    rng = random.Random(1071)
    for n in list(range(0, 40)) + list(range(250, 270)) + [511, 512, 513, 1479, 1480, 9001]:
        for kind in ("random", "zeros", "ones"):
            body = bytes(n) if kind == "zeros" else b"\xff" * n if kind == "ones" \
                else bytes(rng.getrandbits(8) for _ in range(n))
            assert _ones_sum_ok(body) == _rfc1071_ok(body), (n, kind)
            if n >= 2:
                # place a checksum in the first word that makes the sum right
                pad = body + (b"\0" if n & 1 else b"")
                rest = sum(struct.unpack(f"!{len(pad) // 2 - 1}H", pad[2:]))
                while rest >> 16:
                    rest = (rest & 0xFFFF) + (rest >> 16)
                good = struct.pack("!H", 0xFFFF - rest) + body[2:]
                assert _ones_sum_ok(good) and _rfc1071_ok(good), (n, kind)
                bad = bytes([good[0] ^ 0x01]) + good[1:]
                assert not _ones_sum_ok(bad) and not _rfc1071_ok(bad), (n, kind)


def test_checksum_written_is_the_one_the_check_accepts():
    """checksum() (what built headers carry) on RFC 1071's own example, and
    placed into data of every length it makes the check pass; one bit off,
    the check fails."""
    import random

    from pakemon.decode.decoder import _ones_sum_ok, checksum

    # RFC 1071 4.1: the words 0001 f203 f4f5 f6f7 sum to ddf2
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    rng = random.Random(791)
    for n in list(range(0, 40)) + [255, 256, 257, 1480, 1481]:
        body = bytes(rng.getrandbits(8) for _ in range(n))
        pad = body + (b"\0" if n & 1 else b"")
        framed = struct.pack("!H", checksum(pad)) + pad
        assert _ones_sum_ok(framed) or not any(body), n
        if any(body):
            assert not _ones_sum_ok(bytes([framed[0] ^ 0x80]) + framed[1:]), n
