"""Ordinary reassembly: any order, duplicates, both families, transport decoded."""

import random

import pytest
from scapy.all import (IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, Raw,
                       fragment, fragment6)

from defrag_frames import A4, A6, B4, B6, MACS, feed_all, kinds, v4, v6
from pakemon.config import DEFRAG_POLICIES, DefragConfig
from pakemon.decode import decode_frame, format_addr
from pakemon.defrag import COUNTERS, Defragmenter

PAYLOAD = bytes(range(256)) * 6  # 1536 bytes: five fragments at 400


def udp4_fragments(fragsize=400, ts=0.0):
    dgram = IP(src=A4, dst=B4, id=4242, ttl=33) / UDP(sport=5353, dport=53) / Raw(PAYLOAD)
    return [decode_frame(1, bytes(Ether(**MACS) / f), ts + i * 0.001)
            for i, f in enumerate(fragment(dgram, fragsize=fragsize))]


def udp6_fragments(ts=0.0):
    dgram = (IPv6(src=A6, dst=B6, hlim=44) / IPv6ExtHdrFragment(id=77)
             / UDP(sport=5353, dport=53) / Raw(PAYLOAD))
    return [decode_frame(1, bytes(Ether(**MACS) / f), ts + i * 0.001)
            for i, f in enumerate(fragment6(dgram, 500))]


ORDERS = {
    "in_order": lambda fs: fs,
    "reversed": lambda fs: fs[::-1],
    "shuffled": lambda fs: random.Random(7).sample(fs, len(fs)),
    "duplicated": lambda fs: [f for f in fs[:-1] for _ in (0, 1)] + fs[-1:],
}


@pytest.mark.parametrize("policy", DEFRAG_POLICIES)
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("family", [4, 6])
def test_defrag_reassembles_any_order(family, order, policy):
    frags = udp4_fragments() if family == 4 else udp6_fragments()
    assert len(frags) > 3 and all(f.is_fragment for f in frags)
    d = Defragmenter(DefragConfig(policy=policy))
    out, notices = feed_all(d, ORDERS[order](frags))
    assert notices == []
    assert len(out) == 1
    r = out[0]
    assert not r.is_fragment and r.l4
    assert (r.sport, r.dport, r.payload) == (5353, 53, PAYLOAD)
    assert r.proto == 17 and r.family == family
    assert d.queues == 0 and d.memory == 0 and d.charged == 0
    c = d.counters()
    assert c["reassembled"] == 1 and c["fragments"] == len(ORDERS[order](frags))
    if order == "duplicated":
        assert c["duplicates"] == len(frags) - 1 and c["overlap_mismatches"] == 0


def test_defrag_reassembled_packet_fields():
    frags = udp4_fragments(ts=100.0)
    first = frags[0]
    d = Defragmenter()
    out, _ = feed_all(d, frags[1:] + frags[:1])
    r = out[0]
    assert r.ts == first.ts  # the completing fragment's time (it came last)
    for name in ("family", "src", "dst", "ttl", "ip_id", "linktype", "vlan", "raw",
                 "l3_off", "ip_hdr_len"):
        assert getattr(r, name) == getattr(first, name), name
    assert r.ttl == 33 and r.ip_id == 4242
    assert len(r.ip_payload) == 8 + len(PAYLOAD)
    assert r.frag_offset == 0 and not r.more_frags


def test_defrag_ipv6_extension_headers_after_fragment_header():
    """A destination-options header in the fragmentable part is walked by
    decode_transport once the datagram is whole."""
    dgram = (IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=9) / IPv6ExtHdrDestOpt()
             / TCP(sport=1025, dport=80, flags="PA") / Raw(b"GET /" + b"x" * 1200))
    frags = [decode_frame(1, bytes(Ether(**MACS) / f)) for f in fragment6(dgram, 600)]
    out, _ = feed_all(Defragmenter(), frags)
    assert len(out) == 1 and out[0].proto == 6 and out[0].dport == 80
    assert out[0].payload.startswith(b"GET /")


def test_defrag_tcp_over_ipv4_with_scapy_fragment():
    dgram = IP(src=A4, dst=B4, id=7) / TCP(sport=1025, dport=80, flags="PA") / Raw(b"A" * 900)
    frags = [decode_frame(1, bytes(Ether(**MACS) / f)) for f in fragment(dgram, 296)]
    out, _ = feed_all(Defragmenter(), reversed(frags))
    assert out[0].l4 and out[0].dport == 80 and out[0].payload == b"A" * 900


def test_defrag_vlans_ids_and_protocols_do_not_mix():
    d = Defragmenter()
    # Same addresses and id, other VLAN / id / protocol: three datagrams.
    out, _ = feed_all(d, [
        v4(0, b"a" * 8, vlan=1), v4(8, b"b" * 8, False, vlan=2),
        v4(0, b"a" * 8, id=5), v4(8, b"b" * 8, False, id=6),
        v4(0, b"a" * 8, proto=17), v4(8, b"b" * 8, False, proto=1),
    ])
    assert out == [] and d.queues == 6
    out, _ = feed_all(d, [v4(8, b"b" * 8, False, vlan=1)])
    assert len(out) == 1 and out[0].vlan == (1,)


def test_defrag_ipv6_ignores_protocol_in_key():
    """The kernel keys IPv6 queues on (src, dst, id) only."""
    d = Defragmenter()
    out, _ = feed_all(d, [v6(0, b"a" * 8, nh=58), v6(8, b"b" * 8, False, nh=17)])
    assert len(out) == 1 and out[0].proto == 58


def test_defrag_not_a_fragment_passes_through():
    pkt = decode_frame(1, bytes(Ether(**MACS) / IP(src=A4, dst=B4) / UDP() / Raw(b"x")))
    d = Defragmenter()
    assert d.feed(pkt) == (pkt, [])
    assert d.counters()["fragments"] == 0


def test_defrag_counters_and_policy_for():
    asked = []

    def policy_for(dst):
        asked.append(format_addr(dst))
        return "first"

    d = Defragmenter(DefragConfig(policy="last"), policy_for)
    out, notices = feed_all(d, [v4(0, b"a" * 16), v4(8, b"X" * 8), v4(16, b"c" * 8, False)])
    assert out[0].ip_payload == b"a" * 16 + b"c" * 8  # first, not last
    assert asked == [B4]  # once per datagram
    assert set(d.counters()) == set(COUNTERS)
    assert kinds(notices) == ["DEFRAG_OVERLAP_MISMATCH"]
    assert notices[0].message == (
        f"overlapping fragment with different data, from {A4} to {B4} (id 1)")
    assert (notices[0].proto, notices[0].src_ip, notices[0].dst_ip) == ("IP", A4, B4)


def test_defrag_unknown_policy_is_refused():
    with pytest.raises(ValueError):
        Defragmenter(DefragConfig(policy="beos"))
    d = Defragmenter(policy_for=lambda dst: "beos")
    with pytest.raises(ValueError):
        d.feed(v4(0, b"a" * 8))


def test_defrag_decode_error_of_reassembled_datagram():
    """A UDP length past the reassembled datagram: notice, no packet."""
    bad = bytes(UDP(sport=1, dport=2, len=400, chksum=0)) + b"z" * 8
    d = Defragmenter()
    out, notices = feed_all(d, [v4(0, bad[:8], proto=17), v4(8, bad[8:], False, proto=17)])
    assert out == [] and kinds(notices) == ["DECODE_UDP_BAD_LEN"]
    assert d.counters()["decode_errors"] == 1 and d.counters()["reassembled"] == 0
