"""Malformed frames raise DecodeError with the right kind (and addresses when known)."""

from __future__ import annotations

import socket
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrRouting
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from pakemon.decode import DecodeError, decode_frame, decode_transport
from pakemon.decode.packet import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Packet,
)
from pakemon.events import NoticeKind as K

A4, B4 = "192.0.2.1", "198.51.100.7"
A6, B6 = "2001:db8::1", "2001:db8::2"
RA4, RB4 = socket.inet_aton(A4), socket.inet_aton(B4)
RA6, RB6 = socket.inet_pton(socket.AF_INET6, A6), socket.inet_pton(socket.AF_INET6, B6)
ETH = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")


def error(linktype: int, frame: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as ei:
        decode_frame(linktype, frame)
    return ei.value


def assert_v4_addrs(err: DecodeError):
    assert (err.pkt.family, err.pkt.src, err.pkt.dst) == (4, RA4, RB4)


def assert_v6_addrs(err: DecodeError):
    assert (err.pkt.family, err.pkt.src, err.pkt.dst) == (6, RA6, RB6)


def assert_no_addrs(err: DecodeError):
    assert (err.pkt.family, err.pkt.src, err.pkt.dst) == (0, b"", b"")


def set_byte(frame: bytes, index: int, value: int) -> bytes:
    b = bytearray(frame)
    b[index] = value
    return bytes(b)


def set_u16(frame: bytes, index: int, value: int) -> bytes:
    b = bytearray(frame)
    struct.pack_into("!H", b, index, value)
    return bytes(b)


# ------------------------------------------------------------------ link layer


@pytest.mark.parametrize("n", range(14))
def test_ethernet_shorter_than_its_header(n):
    err = error(LINKTYPE_ETHERNET, bytes(ETH / IP() / TCP())[:n])
    assert err.kind is K.DECODE_ETH_TRUNCATED
    assert err.pkt.frame_len == n
    assert_no_addrs(err)


@pytest.mark.parametrize("n", [14, 15, 16, 17, 18, 19, 20, 21])
def test_vlan_tag_cut_short(n):
    frame = bytes(ETH / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP() / TCP())[:n]
    err = error(LINKTYPE_ETHERNET, frame)
    assert err.kind is K.DECODE_VLAN_TRUNCATED
    assert_no_addrs(err)


def test_vlan_tags_read_before_the_cut_are_kept():
    frame = bytes(ETH / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP())[:20]
    assert error(LINKTYPE_ETHERNET, frame).pkt.vlan == (10,)


def test_more_than_four_vlan_tags():
    frame = bytes(ETH / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / Dot1Q(vlan=4)
                  / Dot1Q(vlan=5) / IP() / TCP())
    err = error(LINKTYPE_ETHERNET, frame)
    assert err.kind is K.DECODE_VLAN_TOO_MANY
    assert err.pkt.vlan == (1, 2, 3, 4)


@pytest.mark.parametrize("n", range(16))
def test_linux_sll_cut_short(n):
    err = error(LINKTYPE_LINUX_SLL, bytes(CookedLinux() / IP() / TCP())[:n])
    assert err.kind is K.DECODE_SLL_TRUNCATED


@pytest.mark.parametrize("n", range(20))
def test_linux_sll2_cut_short(n):
    err = error(LINKTYPE_LINUX_SLL2, bytes(CookedLinuxV2() / IP() / TCP())[:n])
    assert err.kind is K.DECODE_SLL_TRUNCATED


def test_linux_sll_vlan_tag_cut_short():
    frame = bytes(CookedLinux(proto=0x8100) / Dot1Q(vlan=3) / IP())[:18]
    assert error(LINKTYPE_LINUX_SLL, frame).kind is K.DECODE_VLAN_TRUNCATED


@pytest.mark.parametrize("linktype", [LINKTYPE_NULL, LINKTYPE_LOOP])
@pytest.mark.parametrize("n", range(4))
def test_null_and_loop_header_cut_short(linktype, n):
    err = error(linktype, (b"\x00\x00\x00\x02" + bytes(IP()))[:n])
    assert err.kind is K.DECODE_NULL_TRUNCATED


# ------------------------------------------------------------------ IPv4


def v4_frame(*upper, **ipkw) -> bytes:
    pkt = ETH / IP(src=A4, dst=B4, **ipkw)
    for layer in upper:
        pkt = pkt / layer
    return bytes(pkt)


@pytest.mark.parametrize("n", range(14, 34))
def test_ipv4_shorter_than_20_bytes(n):
    err = error(LINKTYPE_ETHERNET, v4_frame(TCP())[:n])
    assert err.kind is K.DECODE_IPV4_TRUNCATED
    assert_no_addrs(err)


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, LINKTYPE_IPV4])
def test_empty_raw_ipv4_frame_is_truncated(linktype):
    assert error(linktype, b"").kind is K.DECODE_IPV4_TRUNCATED


@pytest.mark.parametrize("version", [0, 5, 6, 15])
def test_ipv4_ethertype_with_wrong_version(version):
    frame = v4_frame(TCP())
    frame = set_byte(frame, 14, (version << 4) | 5)
    if version == 6:
        frame = frame + b"\x00" * 40  # long enough to be read as IPv6 too
    err = error(LINKTYPE_ETHERNET, frame)
    assert err.kind is K.DECODE_IPV4_BAD_VERSION
    assert_no_addrs(err)


@pytest.mark.parametrize("version", [0, 5, 7, 15])
def test_raw_ip_with_a_version_other_than_4_or_6(version):
    raw = bytes(IP(src=A4, dst=B4) / TCP())
    err = error(LINKTYPE_RAW, set_byte(raw, 0, (version << 4) | 5))
    assert err.kind is K.DECODE_IPV4_BAD_VERSION


def test_linktype_ipv4_carrying_ipv6_is_bad_version():
    err = error(LINKTYPE_IPV4, bytes(IPv6(src=A6, dst=B6) / TCP()))
    assert err.kind is K.DECODE_IPV4_BAD_VERSION


@pytest.mark.parametrize("ihl", [0, 1, 4])
def test_ipv4_ihl_under_five_words(ihl):
    err = error(LINKTYPE_ETHERNET, set_byte(v4_frame(TCP()), 14, 0x40 | ihl))
    assert err.kind is K.DECODE_IPV4_BAD_IHL
    assert_v4_addrs(err)


def test_ipv4_ihl_past_the_frame():
    frame = v4_frame(UDP())  # 20 + 8 bytes of IP
    err = error(LINKTYPE_ETHERNET, set_byte(frame, 14, 0x4F))  # 60-byte header
    assert err.kind is K.DECODE_IPV4_BAD_IHL
    assert_v4_addrs(err)


def test_ipv4_total_length_past_the_frame():
    frame = v4_frame(TCP(), Raw(b"abcd"))
    err = error(LINKTYPE_ETHERNET, set_u16(frame, 16, len(frame) - 14 + 1))
    assert err.kind is K.DECODE_IPV4_BAD_LEN
    assert_v4_addrs(err)


def test_ipv4_frame_cut_inside_the_payload_is_bad_length():
    frame = v4_frame(TCP(), Raw(b"x" * 100))
    err = error(LINKTYPE_ETHERNET, frame[:-10])
    assert err.kind is K.DECODE_IPV4_BAD_LEN
    assert_v4_addrs(err)


@pytest.mark.parametrize("total", [0, 1, 19])
def test_ipv4_total_length_under_the_header_length(total):
    err = error(LINKTYPE_ETHERNET, set_u16(v4_frame(TCP()), 16, total))
    assert err.kind is K.DECODE_IPV4_BAD_LEN
    assert_v4_addrs(err)


@pytest.mark.parametrize(
    "opts",
    [
        b"\x07\x00\x00\x00",  # length 0
        b"\x07\x01\x00\x00",  # length 1
        b"\x07\x09\x00\x00",  # runs past the header
        b"\x01\x01\x01\x07",  # length byte missing
    ],
    ids=["len0", "len1", "past-header", "no-length-byte"],
)
def test_ipv4_malformed_options(opts):
    raw = bytearray(bytes(IP(src=A4, dst=B4) / TCP()))
    hdr = raw[:20] + opts
    hdr[0] = 0x46
    struct.pack_into("!H", hdr, 2, len(raw) + 4)
    frame = bytes(ETH)[:12] + b"\x08\x00" + bytes(hdr) + bytes(raw[20:])
    err = error(LINKTYPE_ETHERNET, frame)
    assert err.kind is K.DECODE_IPV4_BAD_OPTIONS
    assert_v4_addrs(err)


# ------------------------------------------------------------------ IPv6


def v6_frame(*upper, **ipkw) -> bytes:
    pkt = ETH / IPv6(src=A6, dst=B6, **ipkw)
    for layer in upper:
        pkt = pkt / layer
    return bytes(pkt)


@pytest.mark.parametrize("n", [14, 15, 30, 53])
def test_ipv6_shorter_than_40_bytes(n):
    err = error(LINKTYPE_ETHERNET, v6_frame(TCP())[:n])
    assert err.kind is K.DECODE_IPV6_TRUNCATED
    assert_no_addrs(err)


def test_empty_linktype_ipv6_frame_is_truncated():
    assert error(LINKTYPE_IPV6, b"").kind is K.DECODE_IPV6_TRUNCATED


def test_ipv6_ethertype_with_version_4_is_bad_version():
    frame = set_byte(v6_frame(TCP()), 14, 0x45)
    err = error(LINKTYPE_ETHERNET, frame)
    assert err.kind is K.DECODE_IPV6_BAD_VERSION
    assert_no_addrs(err)


def test_linktype_ipv6_carrying_ipv4_is_bad_version():
    frame = bytes(IP() / TCP()) + b"\x00" * 40
    assert error(LINKTYPE_IPV6, frame).kind is K.DECODE_IPV6_BAD_VERSION


def test_ipv6_payload_length_past_the_frame():
    frame = v6_frame(TCP())
    err = error(LINKTYPE_ETHERNET, frame[:-1])
    assert err.kind is K.DECODE_IPV6_BAD_LEN
    assert_v6_addrs(err)


def test_ipv6_zero_payload_length_jumbogram_is_bad_length():
    err = error(LINKTYPE_ETHERNET, v6_frame(TCP(), plen=0))
    assert err.kind is K.DECODE_IPV6_BAD_LEN
    assert_v6_addrs(err)


@pytest.mark.parametrize("cut", [1, 2, 7])
def test_ipv6_extension_header_cut_short(cut):
    # Payload length covers only the first `cut` bytes of a 24-byte routing header.
    frame = v6_frame(IPv6ExtHdrRouting(addresses=["::1"]), plen=cut)
    frame = frame[:14 + 40 + cut]
    err = error(LINKTYPE_ETHERNET, frame)
    assert err.kind is K.DECODE_IPV6_BAD_EXTHDR
    assert_v6_addrs(err)


def test_ipv6_extension_header_length_past_the_payload():
    frame = v6_frame(IPv6ExtHdrDestOpt(), UDP())
    err = error(LINKTYPE_ETHERNET, set_byte(frame, 14 + 40 + 1, 5))  # 48-byte header
    assert err.kind is K.DECODE_IPV6_BAD_EXTHDR
    assert_v6_addrs(err)


def test_ipv6_fragment_header_cut_short():
    frame = v6_frame(IPv6ExtHdrFragment(), plen=6)[:14 + 40 + 6]
    err = error(LINKTYPE_ETHERNET, frame)
    assert err.kind is K.DECODE_IPV6_BAD_EXTHDR
    assert_v6_addrs(err)


# ------------------------------------------------------------------ transport


@pytest.mark.parametrize("n", [0, 1, 8, 19])
def test_tcp_shorter_than_its_header(n):
    err = error(LINKTYPE_ETHERNET, v4_frame(Raw(bytes(TCP(sport=1, dport=2))[:n]), proto=6))
    assert err.kind is K.DECODE_TCP_TRUNCATED
    assert_v4_addrs(err)
    assert err.pkt.proto == 6


def test_ipv6_tcp_shorter_than_its_header():
    err = error(LINKTYPE_ETHERNET, v6_frame(Raw(bytes(TCP())[:10]), nh=6))
    assert err.kind is K.DECODE_TCP_TRUNCATED
    assert_v6_addrs(err)


@pytest.mark.parametrize("words", [0, 1, 4])
def test_tcp_data_offset_under_five_words(words):
    err = error(LINKTYPE_ETHERNET, v4_frame(TCP(sport=1, dport=2, dataofs=words), Raw(b"abc")))
    assert err.kind is K.DECODE_TCP_BAD_HDR_LEN
    assert_v4_addrs(err)
    assert (err.pkt.sport, err.pkt.dport) == (1, 2)


def test_tcp_data_offset_past_the_segment():
    err = error(LINKTYPE_ETHERNET, v4_frame(TCP(sport=1, dport=2, dataofs=6)))
    assert err.kind is K.DECODE_TCP_BAD_HDR_LEN
    assert_v4_addrs(err)


def test_ipv6_tcp_data_offset_past_the_segment():
    err = error(LINKTYPE_ETHERNET, v6_frame(TCP(dataofs=15), Raw(b"x" * 8)))
    assert err.kind is K.DECODE_TCP_BAD_HDR_LEN
    assert_v6_addrs(err)


@pytest.mark.parametrize("n", [0, 4, 7])
def test_udp_shorter_than_its_header(n):
    err = error(LINKTYPE_ETHERNET, v4_frame(Raw(bytes(UDP())[:n]), proto=17))
    assert err.kind is K.DECODE_UDP_TRUNCATED
    assert_v4_addrs(err)


@pytest.mark.parametrize("ulen", [0, 1, 7])
def test_udp_length_under_eight(ulen):
    err = error(LINKTYPE_ETHERNET, v4_frame(UDP(sport=5, dport=53, len=ulen), Raw(b"abc")))
    assert err.kind is K.DECODE_UDP_BAD_LEN
    assert_v4_addrs(err)
    assert (err.pkt.sport, err.pkt.dport) == (5, 53)


def test_udp_length_past_the_data():
    err = error(LINKTYPE_ETHERNET, v4_frame(UDP(len=12), Raw(b"abc")))
    assert err.kind is K.DECODE_UDP_BAD_LEN


def test_ipv6_udp_length_past_the_data():
    err = error(LINKTYPE_ETHERNET, v6_frame(UDP(len=100), Raw(b"abc")))
    assert err.kind is K.DECODE_UDP_BAD_LEN
    assert_v6_addrs(err)


@pytest.mark.parametrize("n", [0, 1, 3])
def test_icmp_shorter_than_its_header(n):
    err = error(LINKTYPE_ETHERNET, v4_frame(Raw(bytes(ICMP())[:n]), proto=1))
    assert err.kind is K.DECODE_ICMP_TRUNCATED
    assert_v4_addrs(err)


@pytest.mark.parametrize("n", [1, 3])  # 0 would be a zero payload length: BAD_LEN
def test_icmpv6_shorter_than_its_header(n):
    err = error(LINKTYPE_ETHERNET, v6_frame(Raw(b"\x80\x00\x00\x00"[:n]), nh=58))
    assert err.kind is K.DECODE_ICMPV6_TRUNCATED
    assert_v6_addrs(err)


def test_transport_errors_behind_vlan_keep_vlan_and_addresses():
    frame = bytes(ETH / Dot1Q(vlan=9) / IP(src=A4, dst=B4) / UDP(len=3))
    err = error(LINKTYPE_ETHERNET, frame)
    assert err.kind is K.DECODE_UDP_BAD_LEN
    assert err.pkt.vlan == (9,)
    assert_v4_addrs(err)


def test_decode_transport_raises_on_a_bad_reassembled_datagram():
    pkt = Packet()
    pkt.family, pkt.src, pkt.dst, pkt.proto = 4, RA4, RB4, 6
    pkt.ip_payload = b"\x00" * 12
    with pytest.raises(DecodeError) as ei:
        decode_transport(pkt)
    assert ei.value.kind is K.DECODE_TCP_TRUNCATED
    assert ei.value.pkt is pkt


def test_decode_transport_raises_on_a_bad_reassembled_ipv6_extension_header():
    pkt = Packet()
    pkt.family, pkt.src, pkt.dst, pkt.proto = 6, RA6, RB6, 60
    pkt.ip_payload = b"\x11\x04" + b"\x00" * 10  # claims 40 bytes
    with pytest.raises(DecodeError) as ei:
        decode_transport(pkt)
    assert ei.value.kind is K.DECODE_IPV6_BAD_EXTHDR
