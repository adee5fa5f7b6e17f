"""Non-fatal decoder anomalies (Packet.anomalies) and their notices.

Each anomaly is the project's reading of one Suricata decoder event
(``pakemon.detect.eventmap``); the frames are crafted with scapy, once with
the anomaly and once without it, so every test can fail both ways.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pakemon.decode import DecodeError, decode_frame
from pakemon.decode.notices import anomaly_notices
from pakemon.events import NoticeKind as K

ETH = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
A6, B6 = "2001:db8::1", "2001:db8::2"
A4, B4 = "192.0.2.1", "198.51.100.7"


def v6(*layers) -> bytes:
    p = ETH / IPv6(src=A6, dst=B6)
    for layer in layers:
        p = p / layer
    return bytes(p)


def anomalies(frame: bytes):
    try:
        return decode_frame(1, frame).anomalies
    except DecodeError as e:
        return e.pkt.anomalies


ECHO = ICMPv6EchoRequest(id=1, seq=1) / Raw(b"x" * 16)


def test_plain_packets_carry_no_anomaly():
    assert anomalies(v6(ECHO)) == ()
    assert anomalies(bytes(ETH / IP(src=A4, dst=B4) / TCP(options=[("MSS", 1460)]))) == ()


def test_atomic_fragment_is_exthdr_useless_fh():
    assert anomalies(v6(IPv6ExtHdrFragment(offset=0, m=0, nh=58), ECHO)) == (
        K.DECODE_IPV6_ATOMIC_FRAGMENT,)
    # a real first fragment is not atomic
    assert K.DECODE_IPV6_ATOMIC_FRAGMENT not in anomalies(
        v6(IPv6ExtHdrFragment(offset=0, m=1, nh=58), ECHO))


def test_two_fragment_headers_are_exthdr_dupl_fh_once():
    got = anomalies(v6(IPv6ExtHdrFragment(offset=0, m=0, nh=44, id=1),
                       IPv6ExtHdrFragment(offset=0, m=0, nh=44, id=2),
                       IPv6ExtHdrFragment(offset=0, m=0, nh=58, id=3), ECHO))
    # once per packet, as Suricata sets an event once per packet
    assert got.count(K.DECODE_IPV6_DUPLICATE_FRAG_HDR) == 1
    assert got.count(K.DECODE_IPV6_ATOMIC_FRAGMENT) == 1


def test_non_final_fragment_not_multiple_of_8_is_frag_invalid_length():
    bad = anomalies(v6(IPv6ExtHdrFragment(offset=0, m=1, nh=58), Raw(b"y" * 13)))
    good = anomalies(v6(IPv6ExtHdrFragment(offset=0, m=1, nh=58), Raw(b"y" * 16)))
    last = anomalies(v6(IPv6ExtHdrFragment(offset=2, m=0, nh=58), Raw(b"y" * 13)))
    assert K.DECODE_IPV6_FRAG_BAD_LENGTH in bad
    assert K.DECODE_IPV6_FRAG_BAD_LENGTH not in good + last


def test_fragment_past_65535_is_frag_pkt_too_large():
    # offset field 8190 -> 65520 bytes; 24 more bytes pass 65535
    over = anomalies(v6(IPv6ExtHdrFragment(offset=8190, m=0, nh=58), Raw(b"z" * 24)))
    under = anomalies(v6(IPv6ExtHdrFragment(offset=8190, m=0, nh=58), Raw(b"z" * 8)))
    assert K.DECODE_IPV6_FRAG_TOO_LARGE in over
    assert K.DECODE_IPV6_FRAG_TOO_LARGE not in under


@pytest.mark.parametrize("left", [0, 1])
def test_nothing_after_the_extension_headers_is_trunc_exthdr(left):
    frame = v6(IPv6ExtHdrFragment(offset=0, m=0, nh=6), Raw(b"\0" * left))
    with pytest.raises(DecodeError) as ei:
        decode_frame(1, frame)
    assert ei.value.kind is K.DECODE_TCP_TRUNCATED  # the fatal error stays
    assert K.DECODE_IPV6_TRUNC_EXTHDR in ei.value.pkt.anomalies
    assert K.DECODE_IPV6_TRUNC_EXTHDR not in anomalies(
        v6(IPv6ExtHdrFragment(offset=0, m=0, nh=6), TCP()))
    # a real (last) fragment of one byte: its payload waits for reassembly
    assert K.DECODE_IPV6_TRUNC_EXTHDR not in anomalies(
        v6(IPv6ExtHdrFragment(offset=3, m=0, nh=6), Raw(b"\0" * left)))


def opts_hdr(nh_here: int, options: bytes) -> bytes:
    """An IPv6 frame with one Hop-by-Hop (0) / Destination Options (60)
    header of ``options`` (6 bytes: one 8-byte header), then an echo."""
    assert len(options) == 6
    p = ETH / IPv6(src=A6, dst=B6, nh=nh_here) / Raw(bytes((58, 0)) + options) / ECHO
    return bytes(p)


def test_unknown_destination_option():
    assert K.DECODE_IPV6_DSTOPTS_UNKNOWN_OPT in anomalies(opts_hdr(60, b"\x11\x04ABCD"))
    assert anomalies(opts_hdr(60, b"\x01\x04\0\0\0\0")) == ()  # PadN
    assert anomalies(opts_hdr(60, b"\0" * 6)) == ()  # Pad1s
    assert anomalies(bytes(ETH / IPv6(src=A6, dst=B6) / IPv6ExtHdrDestOpt(nh=58) / ECHO)) == ()


def test_unknown_hop_by_hop_option_and_router_alert():
    assert K.DECODE_IPV6_HOPOPTS_UNKNOWN_OPT in anomalies(opts_hdr(0, b"\x3e\x04ABCD"))
    assert anomalies(opts_hdr(0, b"\x05\x02\0\0\x01\x00")) == ()  # router alert, PadN
    assert anomalies(bytes(ETH / IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop(nh=58) / ECHO)) == ()


def test_tunnels_with_the_wrong_inner_version():
    ip4_wrong = ETH / IPv6(src=A6, dst=B6, nh=4) / Raw(b"\x56" + b"\0" * 39)
    ip6_wrong = ETH / IPv6(src=A6, dst=B6, nh=41) / Raw(b"\x45" + b"\0" * 39)
    assert anomalies(bytes(ip4_wrong)) == (K.DECODE_IPV6_IPV4_IN_IPV6_WRONG_VERSION,)
    assert anomalies(bytes(ip6_wrong)) == (K.DECODE_IPV6_IPV6_IN_IPV6_WRONG_VERSION,)
    ok4 = ETH / IPv6(src=A6, dst=B6, nh=4) / IP(src=A4, dst=B4)
    ok6 = ETH / IPv6(src=A6, dst=B6, nh=41) / IPv6(src=A6, dst=B6)
    assert anomalies(bytes(ok4)) == () and anomalies(bytes(ok6)) == ()


def test_ipv4_total_length_past_the_packet_is_trunc_pkt():
    frame = bytearray(bytes(ETH / IP(src=A4, dst=B4) / UDP() / Raw(b"q" * 8)))
    frame[16:18] = (200).to_bytes(2, "big")
    with pytest.raises(DecodeError) as ei:
        decode_frame(1, bytes(frame))
    assert ei.value.kind is K.DECODE_IPV4_BAD_LEN
    assert ei.value.pkt.anomalies == (K.DECODE_IPV4_TRUNC_PKT,)
    frame[16:18] = (10).to_bytes(2, "big")  # under the header length: not trunc_pkt
    with pytest.raises(DecodeError) as ei:
        decode_frame(1, bytes(frame))
    assert ei.value.pkt.anomalies == ()



def _tcp_with_raw_options(opts: bytes) -> bytes:
    t = TCP(sport=1, dport=2, dataofs=5 + len(opts) // 4)
    raw = bytes(ETH / IP(src=A4, dst=B4, proto=6) / Raw(bytes(t)[:20] + opts))
    return raw


@pytest.mark.parametrize(("opts", "kind"), [
    (b"\x03\x04\x07\x00", K.DECODE_TCP_OPT_INVALID_LEN),          # window scale of length 4
    (b"\x02\x03\x05", K.DECODE_TCP_OPT_INVALID_LEN),              # MSS of length 3
    (b"\x08\x0a" + b"\0" * 6, K.DECODE_TCP_OPT_INVALID_LEN),      # runs past the header
    (b"\x05\x06\0\0\0\0", K.DECODE_TCP_OPT_INVALID_LEN),          # SACK, not 2 + 8n
    (b"\x22\x03\x00", K.DECODE_TCP_OPT_INVALID_LEN),              # TFO of odd length
    (b"\x02\x04\x05\xb4\x02\x04\x05\xb4", K.DECODE_TCP_OPT_DUPLICATE),  # MSS twice
    (b"\x01\x01\x08\x0a" + b"\0" * 8 + b"\x08\x0a" + b"\0" * 8, K.DECODE_TCP_OPT_DUPLICATE),
])
def test_bad_tcp_options(opts, kind):
    assert kind in anomalies(_tcp_with_raw_options(opts + b"\0" * (-len(opts) % 4)))


@pytest.mark.parametrize("opts", [
    b"\x05\x02",                           # empty SACK (suricata-verify tcp-empty-sack)
    b"\x22\x02",                           # TFO cookie request (tcp-fastopen-09)
    b"\x22\x0a" + b"c" * 8,                # TFO cookie
    b"\x01\x01\x08\x0a" + b"\0" * 8,       # NOP NOP TS, the fast path
    b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + b"\0" * 8 + b"\x01\x03\x03\x07",  # a Linux SYN
    b"\x13\x12" + b"m" * 16,               # MD5 (not checked by Suricata's list)
])
def test_valid_tcp_options_carry_no_anomaly(opts):
    assert anomalies(_tcp_with_raw_options(opts + b"\0" * (-len(opts) % 4))) == ()


def test_anomaly_notices_name_the_packet():
    frame = bytes(ETH / IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(offset=0, m=0, nh=17)
                  / UDP(sport=5353, dport=53) / Raw(b"d"))
    pkt = decode_frame(1, frame, 12.5)
    (n,) = anomaly_notices(pkt)
    assert n.kind is K.DECODE_IPV6_ATOMIC_FRAGMENT and n.ts == 12.5
    assert (n.src_ip, n.dst_ip, n.src_port, n.dst_port, n.proto) == (A6, B6, 5353, 53, "UDP")
    assert A6 in n.message and B6 in n.message
    assert anomaly_notices(decode_frame(1, v6(ECHO))) == []
