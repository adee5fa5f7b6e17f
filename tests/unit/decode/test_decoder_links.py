"""Link layers and encapsulations added for the suricata-verify corpus:
PPP (linktype 9, with and without FF 03 framing, compressed protocol),
Cisco HDLC (104), NSH (RFC 8300) and GRE decapsulation."""

from __future__ import annotations

import socket
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pakemon.decode import DecodeError, decode_frame
from pakemon.decode.packet import LINKTYPE_C_HDLC, LINKTYPE_ETHERNET, LINKTYPE_PPP
from pakemon.events import NoticeKind as K

ETH = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
UDP4 = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=53) / Raw(b"data\n\n"))
TCP6 = bytes(IPv6(src="::1", dst="::2") / TCP(sport=7, dport=80) / Raw(b"v6"))


@pytest.mark.parametrize("head, inner, family", [
    (b"\xff\x03\x00\x21", UDP4, 4),   # RFC 1662 framing
    (b"\x00\x21", UDP4, 4),           # address/control compressed
    (b"\x21", UDP4, 4),               # protocol compressed too
    (b"\xff\x03\x00\x57", TCP6, 6),
    (b"\x57", TCP6, 6),
])
def test_ppp(head, inner, family):
    pkt = decode_frame(LINKTYPE_PPP, head + inner)
    assert pkt.family == family and pkt.l4
    assert pkt.payload in (b"data\n\n", b"v6")


def test_ppp_not_ip_and_cut_short():
    assert decode_frame(LINKTYPE_PPP, b"\xc0\x21\x01\x01\x00\x04").family == 0  # LCP
    with pytest.raises(DecodeError) as ei:
        decode_frame(LINKTYPE_PPP, b"\xff\x03\x00")
    assert ei.value.kind is K.DECODE_PPP_TRUNCATED


def test_cisco_hdlc():
    pkt = decode_frame(LINKTYPE_C_HDLC, b"\x0f\x00\x08\x00" + UDP4)
    assert pkt.family == 4 and pkt.dport == 53
    assert decode_frame(LINKTYPE_C_HDLC, b"\x8f\x00\x80\x35" + b"\0" * 8).family == 0
    with pytest.raises(DecodeError) as ei:
        decode_frame(LINKTYPE_C_HDLC, b"\x0f\x00")
    assert ei.value.kind is K.DECODE_CHDLC_TRUNCATED


def nsh(next_proto: int, md: int = 1, words: int = 6, ver: int = 0) -> bytes:
    base = bytes((ver << 6, words, md, next_proto)) + struct.pack("!I", 0x000001FF)
    return base + b"\0" * (words * 4 - 8)


@pytest.mark.parametrize("md, words", [(1, 6), (2, 2), (2, 4)])
def test_nsh_carrying_ipv4(md, words):
    frame = bytes(ETH)[:12] + b"\x89\x4f" + nsh(1, md, words) + UDP4
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.family == 4 and pkt.payload == b"data\n\n"


def test_nsh_carrying_ethernet_then_ipv6():
    inner = bytes(ETH)[:12] + b"\x86\xdd" + TCP6
    frame = bytes(ETH)[:12] + b"\x89\x4f" + nsh(3, 2, 2) + inner
    pkt = decode_frame(LINKTYPE_ETHERNET, frame)
    assert pkt.family == 6 and pkt.dport == 80


def test_nsh_traffic_is_marked_with_its_service_paths():
    """What NSH carries keeps to its own flows (live case tcp_nsh_decoy):
    each service path's id joins the flow key, after the VLAN tags."""
    frame = bytes(ETH)[:12] + b"\x81\x00\x00\x07\x89\x4f" + nsh(1, 2, 2) + UDP4
    assert decode_frame(LINKTYPE_ETHERNET, frame).vlan == (7, ("nsh", 1))
    inner = bytes(ETH)[:12] + b"\x81\x00\x00\x05\x08\x00" + UDP4
    frame = bytes(ETH)[:12] + b"\x89\x4f" + nsh(3, 2, 2) + inner
    assert decode_frame(LINKTYPE_ETHERNET, frame).vlan == (("nsh", 1), 5)


def test_nsh_in_nsh_and_its_bound():
    frame = bytes(ETH)[:12] + b"\x89\x4f" + nsh(4, 2, 2) + nsh(1, 2, 2) + UDP4
    assert decode_frame(LINKTYPE_ETHERNET, frame).payload == b"data\n\n"
    deep = bytes(ETH)[:12] + b"\x89\x4f" + nsh(4, 2, 2) * 8 + UDP4
    with pytest.raises(DecodeError) as ei:
        decode_frame(LINKTYPE_ETHERNET, deep)
    assert ei.value.kind is K.DECODE_NSH_TRUNCATED


@pytest.mark.parametrize("bad", [nsh(1, 1, 5), nsh(1, 2, 1), nsh(1, 1, 6, ver=1), nsh(1)[:7]])
def test_nsh_malformed(bad):
    with pytest.raises(DecodeError) as ei:
        decode_frame(LINKTYPE_ETHERNET, bytes(ETH)[:12] + b"\x89\x4f" + bad)
    assert ei.value.kind is K.DECODE_NSH_TRUNCATED


def gre(flags: int, ptype: int, extra: bytes, inner: bytes) -> bytes:
    outer = IP(src="7.7.7.7", dst="9.9.9.9", proto=47)
    return bytes(ETH / outer / Raw(struct.pack("!HH", flags, ptype) + extra + inner))


@pytest.mark.parametrize("flags, ptype, extra, inner", [
    (0, 0x0800, b"", UDP4),                               # plain GRE, IPv4
    (0xA000, 0x0800, b"\0" * 8, UDP4),                    # checksum + key
    (0x3000, 0x86DD, b"\0" * 8, TCP6),                    # key + sequence, IPv6
    (0, 0x880B, b"", b"\x21" + UDP4),                     # PPP (bug-6942's capture)
    (0x3081, 0x880B, b"\0" * 12, b"\xff\x03\x00\x21" + UDP4),  # PPTP GRE v1, seq + ack
    (0, 0x6558, b"", bytes(ETH)[:12] + b"\x08\x00" + UDP4),  # Ethernet bridging
])
def test_gre_is_decapsulated(flags, ptype, extra, inner):
    pkt = decode_frame(LINKTYPE_ETHERNET, gre(flags, ptype, extra, inner))
    assert pkt.proto in (6, 17) and pkt.l4
    assert pkt.payload in (b"data\n\n", b"v6")


def test_gre_traffic_is_marked_with_its_tunnel():
    """The inner packet's flow key (``vlan``) carries the tunnel's endpoints:
    a host that ends no such tunnel drops what it carries, so it is never
    part of an untunneled flow (live case tcp_gre_decoy)."""
    pkt = decode_frame(LINKTYPE_ETHERNET, gre(0, 0x0800, b"", UDP4))
    outer = (socket.inet_aton("7.7.7.7"), socket.inet_aton("9.9.9.9"))
    assert pkt.vlan == (("gre",) + outer,)
    assert decode_frame(LINKTYPE_ETHERNET, bytes(ETH / IP(UDP4))).vlan == ()


@pytest.mark.parametrize("flags, ptype, body", [
    (0x4000, 0x0800, b"\0" * 4 + UDP4),   # routing present: not decoded
    (0x0002, 0x0800, UDP4),              # unknown version
    (0, 0x88BE, UDP4),                   # ERSPAN: not a decapsulated type
    (0, 0x0800, b"gre-body"),            # inner not decodable
])
def test_gre_left_as_is(flags, ptype, body):
    pkt = decode_frame(LINKTYPE_ETHERNET, gre(flags, ptype, b"", body))
    assert pkt.proto == 47 and not pkt.l4 and pkt.payload == pkt.ip_payload


def test_nested_gre_is_bounded():
    inner = UDP4
    for _ in range(6):
        inner = bytes(IP(src="7.7.7.7", dst="9.9.9.9", proto=47))[:20] + b"\0\0\x08\0" + inner
        inner = bytes(IP(inner))  # fix lengths and checksum
    pkt = decode_frame(LINKTYPE_ETHERNET, bytes(ETH)[:12] + b"\x08\x00" + inner)
    assert pkt.proto == 47  # stopped after MAX_TUNNELS layers, no recursion error


# ---- malformed input never escapes as anything but DecodeError

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_IP4_GRE = bytes(IP(src="7.7.7.7", dst="9.9.9.9", proto=47))[:20]


def _with_len(hdr: bytes, body: bytes) -> bytes:
    return bytes(IP(hdr + body))  # scapy fixes the total length and checksum


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.sampled_from(["ppp", "chdlc", "nsh", "gre", "v6ext", "tcpopt"]))
def test_random_bytes_in_the_new_layers_raise_only_decode_error(body, where):
    if where == "ppp":
        frames = [(LINKTYPE_PPP, body), (LINKTYPE_PPP, b"\xff\x03" + body)]
    elif where == "chdlc":
        frames = [(LINKTYPE_C_HDLC, b"\x0f\x00\x08\x00" + body), (LINKTYPE_C_HDLC, body)]
    elif where == "nsh":
        frames = [(LINKTYPE_ETHERNET, bytes(ETH)[:12] + b"\x89\x4f" + body)]
    elif where == "gre":
        frames = [(LINKTYPE_ETHERNET, bytes(ETH)[:12] + b"\x08\x00" + _with_len(_IP4_GRE, body))]
    elif where == "v6ext":
        frames = [(LINKTYPE_ETHERNET, bytes(ETH / IPv6(src="::1", dst="::2", nh=nh) / Raw(body)))
                  for nh in (0, 44, 60, 4, 41)]
    else:
        opts = body[:40]
        opts += b"\0" * (-len(opts) % 4)
        t = TCP(sport=1, dport=2, dataofs=5 + len(opts) // 4)
        frames = [(LINKTYPE_ETHERNET,
                   bytes(ETH / IP(src="10.0.0.1", dst="10.0.0.2", proto=6) / Raw(bytes(t)[:20] + opts)))]
    for linktype, frame in frames:
        try:
            pkt = decode_frame(linktype, frame)
        except DecodeError as e:
            assert isinstance(e.pkt.anomalies, tuple)
        else:
            assert isinstance(pkt.anomalies, tuple)
            assert len(set(pkt.anomalies)) == len(pkt.anomalies)  # each kind once
