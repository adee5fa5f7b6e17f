"""Property tests: the decoder raises DecodeError on junk, never anything else."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Raw

from pakemon.decode import SUPPORTED_LINKTYPES, DecodeError, Packet, decode_frame, decode_transport
from pakemon.decode.packet import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)
from pakemon.events import NoticeKind as K

ETH = Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
FUZZ = settings(max_examples=300, deadline=None)

# Kinds raised only after the IP header was read: the packet must carry addresses.
AFTER_IP_HEADER = {
    K.DECODE_IPV4_BAD_IHL, K.DECODE_IPV4_BAD_LEN, K.DECODE_IPV4_BAD_OPTIONS,
    K.DECODE_IPV4_OPTION_REFUSED,
    K.DECODE_IPV6_BAD_LEN, K.DECODE_IPV6_BAD_EXTHDR,
    K.DECODE_TCP_TRUNCATED, K.DECODE_TCP_BAD_HDR_LEN, K.DECODE_UDP_TRUNCATED,
    K.DECODE_UDP_BAD_LEN, K.DECODE_ICMP_TRUNCATED, K.DECODE_ICMPV6_TRUNCATED,
}


def _payload(n: int) -> Raw:
    return Raw(bytes((i * 7) & 0xFF for i in range(n)))


def _corpus() -> list[tuple[int, bytes]]:
    v4 = IP(src="10.0.0.1", dst="10.0.0.2")
    v6 = IPv6(src="fe80::1", dst="ff02::1")
    uppers = [
        TCP(sport=1234, dport=80, flags="PA", options=[("MSS", 1460), ("NOP", None), ("WScale", 2)]) / _payload(30),
        TCP(sport=5, dport=6, flags="S"),
        UDP(sport=53, dport=5353) / _payload(20),
        ICMP(type=8) / _payload(8),
    ]
    out: list[tuple[int, bytes]] = []
    eth = Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
    for up in uppers:
        out.append((LINKTYPE_ETHERNET, bytes(eth / v4 / up)))
        out.append((LINKTYPE_ETHERNET, bytes(eth / Dot1AD(vlan=2) / Dot1Q(vlan=3) / v4 / up)))
        out.append((LINKTYPE_LINUX_SLL, bytes(CookedLinux() / v4 / up)))
        out.append((LINKTYPE_LINUX_SLL2, bytes(CookedLinuxV2() / v4 / up)))
        out.append((LINKTYPE_RAW, bytes(v4 / up)))
        out.append((LINKTYPE_IPV4, bytes(v4 / up)))
        out.append((LINKTYPE_NULL, bytes(Loopback(type=2) / v4 / up)))
        out.append((LINKTYPE_LOOP, struct.pack("!I", 2) + bytes(v4 / up)))
        frags = fragment(v4 / up / _payload(100), fragsize=48)
        out.extend((LINKTYPE_ETHERNET, bytes(eth / f)) for f in frags[:2])
    for up in [TCP(sport=1, dport=2) / _payload(12), UDP() / _payload(5), ICMPv6EchoRequest(data=b"abcd")]:
        out.append((LINKTYPE_ETHERNET, bytes(eth / v6 / up)))
        out.append((LINKTYPE_ETHERNET, bytes(eth / v6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
                                             / IPv6ExtHdrRouting(addresses=["::1"], segleft=0)
                                             / up)))
        out.append((LINKTYPE_ETHERNET, bytes(eth / v6 / AH(nh=60, payloadlen=2, icv=b"\x00" * 4)
                                             / IPv6ExtHdrDestOpt() / up)))
        out.append((LINKTYPE_ETHERNET, bytes(eth / v6 / IPv6ExtHdrFragment(offset=0, m=1) / up)))
        out.append((LINKTYPE_ETHERNET, bytes(eth / v6 / IPv6ExtHdrFragment(offset=3, m=0) / up)))
        out.append((LINKTYPE_IPV6, bytes(v6 / up)))
        out.append((LINKTYPE_NULL, struct.pack("<I", 30) + bytes(v6 / up)))
    out.append((LINKTYPE_ETHERNET, bytes(eth / ARP())))
    return out


CORPUS = _corpus()
LINKTYPES = sorted(SUPPORTED_LINKTYPES) + [2, 105, 127]  # plus some it does not know


def check(linktype: int, frame: bytes):
    """Decode; on success check invariants, on DecodeError check the record."""
    try:
        pkt = decode_frame(linktype, frame, ts=1.0)
    except DecodeError as err:
        assert isinstance(err.kind, K)
        assert isinstance(err.pkt, Packet)
        assert err.pkt.frame_len == len(frame)
        if err.kind in AFTER_IP_HEADER:
            assert err.pkt.family in (4, 6)
            assert len(err.pkt.src) == len(err.pkt.dst) == (4 if err.pkt.family == 4 else 16)
        if err.kind is K.CAPTURE_UNKNOWN_LINKTYPE:
            assert linktype not in SUPPORTED_LINKTYPES
        return None
    assert linktype in SUPPORTED_LINKTYPES
    assert pkt.frame_len == len(frame) and pkt.ts == 1.0 and pkt.linktype == linktype
    assert len(pkt.vlan) <= 4
    if pkt.family == 0:
        assert not pkt.l4 and pkt.src == b""
        return pkt
    alen = 4 if pkt.family == 4 else 16
    assert len(pkt.src) == len(pkt.dst) == alen
    assert pkt.ip_hdr_len >= (20 if pkt.family == 4 else 40)
    assert pkt.ip_payload in frame
    assert pkt.ip_hdr_len + len(pkt.ip_payload) <= len(frame)
    if pkt.is_fragment and pkt.frag_offset:
        assert not pkt.l4
    if pkt.l4:
        assert pkt.payload in pkt.ip_payload
        assert 0 <= pkt.sport <= 0xFFFF and 0 <= pkt.dport <= 0xFFFF
    return pkt


def test_corpus_frames_all_decode():
    for linktype, frame in CORPUS:
        pkt = check(linktype, frame)
        assert pkt is not None, (linktype, frame.hex())


@pytest.mark.parametrize("linktype", LINKTYPES)
@FUZZ
@given(frame=st.binary(max_size=200))
def test_random_bytes_on_each_linktype_raise_only_decode_error(linktype, frame):
    check(linktype, frame)


@FUZZ
@given(st.sampled_from(CORPUS), st.data())
def test_truncated_valid_frames_raise_only_decode_error(sample, data):
    linktype, frame = sample
    cut = data.draw(st.integers(0, len(frame)))
    check(linktype, frame[:cut])


@FUZZ
@given(st.sampled_from(CORPUS), st.data())
def test_byte_flipped_valid_frames_raise_only_decode_error(sample, data):
    linktype, frame = sample
    buf = bytearray(frame)
    hot = min(len(buf), 110)  # mostly hit headers, where the lengths live
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, hot - 1))
        buf[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[: data.draw(st.integers(0, len(buf)))]
    check(linktype, bytes(buf))


@FUZZ
@given(st.sampled_from(CORPUS), st.binary(min_size=1, max_size=60))
def test_random_bytes_after_a_valid_prefix_raise_only_decode_error(sample, tail):
    linktype, frame = sample
    check(linktype, frame[: len(frame) // 2] + tail)


@FUZZ
@given(
    st.sampled_from((4, 6)),
    st.one_of(st.sampled_from((0, 1, 6, 17, 43, 44, 51, 58, 59, 60)), st.integers(0, 255)),
    st.binary(max_size=80),
)
def test_decode_transport_on_random_payload_raises_only_decode_error(family, proto, payload):
    pkt = Packet()
    pkt.family = family
    pkt.src = pkt.dst = b"\x00" * (4 if family == 4 else 16)
    pkt.proto = proto
    pkt.ip_payload = payload
    try:
        out = decode_transport(pkt)
    except DecodeError as err:
        assert err.pkt is pkt
        return
    assert out is pkt
    if out.l4:
        assert out.payload in out.ip_payload


@settings(max_examples=100, deadline=None)
@given(
    sport=st.integers(0, 0xFFFF), dport=st.integers(0, 0xFFFF),
    seq=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1),
    flags=st.integers(0, 0xFF), window=st.integers(0, 0xFFFF),
    nopts=st.integers(0, 10), payload=st.binary(max_size=300), vlan=st.booleans(),
)
def test_random_valid_tcp_segments_decode_to_their_fields(sport, dport, seq, ack, flags, window,
                                                           nopts, payload, vlan):
    seg = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=window,
              options=[("NOP", None)] * nopts)
    l2 = ETH / Dot1Q(vlan=99) if vlan else ETH
    frame = bytes(l2 / IP(src="1.2.3.4", dst="5.6.7.8") / seg / Raw(payload))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert (pkt.sport, pkt.dport, pkt.seq, pkt.ack, pkt.flags, pkt.window) == (
        sport, dport, seq, ack, flags, window)
    assert pkt.tcp_options == bytes(seg)[20:]
    assert pkt.payload == payload
    assert pkt.vlan == ((99,) if vlan else ())


@settings(max_examples=100, deadline=None)
@given(sport=st.integers(0, 0xFFFF), dport=st.integers(0, 0xFFFF), payload=st.binary(max_size=300),
       v6=st.booleans())
def test_random_valid_udp_datagrams_decode_to_their_fields(sport, dport, payload, v6):
    ip = IPv6(src="::1", dst="::2") if v6 else IP(src="1.2.3.4", dst="5.6.7.8")
    frame = bytes(ETH / ip / UDP(sport=sport, dport=dport) / Raw(payload))
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert (pkt.family, pkt.sport, pkt.dport, pkt.payload) == (6 if v6 else 4, sport, dport, payload)
