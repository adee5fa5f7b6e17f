"""Perf samples of the kernel sensor, decoded from bytes (no bcc, no root)."""

from __future__ import annotations

import time

from pakemon import abi
from pakemon.capture.perf_reader import (
    META_SIZE,
    RejectReason,
    decode_record,
    monotonic_offset_ns,
    pending_record,
)
from pakemon.decode.decoder import decode_frame, ipv4_header_checksum_ok

FRAME = bytes(range(60))


def sample(frame=FRAME, pkt_len=None, cap_len=None, ts_ns=5_000_000_000, flags=0,
           version=abi.ABI_VERSION, pad=4) -> bytes:
    meta = abi.PerfMeta(ts_ns=ts_ns, ifindex=3,
                        pkt_len=len(frame) if pkt_len is None else pkt_len,
                        cap_len=len(frame) if cap_len is None else cap_len,
                        flags=flags, hook=abi.Hook.XDP, abi_version=version)
    return bytes(meta) + frame + b"\0" * pad  # perf pads samples to 8 bytes


def test_good_sample_gives_frame_wire_length_and_wall_time():
    rec, why = decode_record(sample(flags=abi.EVF.FORWARD), offset_ns=1_700_000_000_000_000_000)
    assert why is None
    assert rec.frame == FRAME and rec.wire_len == 60 and not rec.truncated
    assert rec.ts == 1_700_000_005.0
    assert rec.flags == abi.EVF.FORWARD and rec.ifindex == 3 and rec.hook == abi.Hook.XDP


def test_header_only_record_keeps_the_wire_length():
    rec, _ = decode_record(sample(frame=FRAME[:54], pkt_len=1514,
                                  flags=abi.EVF.REVERSE | abi.EVF.HDR_ONLY), 0)
    assert rec.frame == FRAME[:54] and rec.wire_len == 1514 and rec.truncated


def test_padding_after_the_frame_is_not_part_of_it():
    rec, _ = decode_record(sample(pad=7), 0)
    assert rec.frame == FRAME


def test_short_samples_are_rejected_not_half_decoded():
    assert decode_record(sample()[:META_SIZE - 1], 0) == (None, RejectReason.SHORT_META)
    assert decode_record(sample(pad=0)[:-1], 0) == (None, RejectReason.SHORT_FRAME)
    assert decode_record(b"", 0) == (None, RejectReason.SHORT_META)


def test_records_of_another_abi_or_impossible_lengths_are_rejected():
    assert decode_record(sample(version=abi.ABI_VERSION + 1), 0) == (None, RejectReason.ABI_VERSION)
    assert decode_record(sample(pkt_len=10), 0) == (None, RejectReason.CAP_OVER_WIRE)


def test_monotonic_offset_maps_monotonic_time_to_wall_time():
    off = monotonic_offset_ns()
    assert abs((time.monotonic_ns() + off) / 1e9 - time.time()) < 0.01


# ---- ranges userland takes out of pk_pending itself ------------------------

def _pending(last: bytes, l3: int, l4: int, hdr: int, family: int, first: int, total: int,
             frames: int = 3) -> abi.Pending:
    p = abi.Pending(frames=frames, seq_first=first, bytes=total,
                    last_plen=len(last) - hdr, ifindex=7, hdr_len=hdr, l3_off=l3,
                    l4_off=l4, family=family, hook=abi.Hook.TC_EGRESS)
    ct_hdr = (p.hdr._type_ * abi.COALESCE_HDR_MAX).from_buffer_copy(
        last[:hdr].ljust(abi.COALESCE_HDR_MAX, b"\0"))
    p.hdr = ct_hdr
    return p


def test_a_taken_ipv4_range_is_one_big_segment_with_a_right_header_checksum():
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Dot1Q, Ether

    tcp = TCP(sport=80, dport=4000, flags="PA", seq=9000, ack=77,
              options=[("Timestamp", (5, 6))])
    last = bytes(Ether() / Dot1Q(vlan=3) / IP(src="10.0.0.1", dst="10.0.0.2",
                                                options=b"\x01\x01\x01\x00", id=4242)
                 / tcp / (b"z" * 300))
    l3, l4 = 18, 18 + 24
    hdr = l4 + 32
    rec = pending_record(_pending(last, l3, l4, hdr, 4, first=6000, total=3300), ts=12.5)
    want = Ether(last)
    want[IP].len = 24 + 32 + 3300
    del want[IP].chksum  # scapy computes it again
    want[TCP].seq = 6000
    want[TCP].chksum = Ether(last)[TCP].chksum  # the last one's, as the kernel leaves it
    assert rec.frame == bytes(want)[:hdr]
    assert rec.wire_len == hdr + 3300 and rec.ts == 12.5
    assert rec.flags == abi.EVF.REVERSE | abi.EVF.HDR_ONLY | abi.EVF.COALESCED
    assert (rec.ifindex, rec.hook) == (7, abi.Hook.TC_EGRESS)
    pkt = decode_frame(1, rec.frame, 0.0, rec.wire_len)
    assert (pkt.seq, pkt.ack, pkt.wire_payload) == (6000, 77, 3300)
    assert ipv4_header_checksum_ok(pkt)


def test_a_taken_ipv6_range_grows_the_payload_length():
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
    from scapy.layers.l2 import Ether

    last = bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrDestOpt()
                 / TCP(sport=80, dport=4000, flags="A", seq=70, ack=1) / (b"q" * 10))
    l3, l4 = 14, 14 + 40 + 8
    hdr = l4 + 20
    rec = pending_record(_pending(last, l3, l4, hdr, 6, first=40, total=40), ts=1.0)
    pkt = decode_frame(1, rec.frame, 0.0, rec.wire_len)
    assert pkt.family == 6 and pkt.seq == 40 and pkt.wire_payload == 40
    assert rec.frame[l3 + 4:l3 + 6] == (8 + 20 + 40).to_bytes(2, "big")
