"""Perf samples of the kernel sensor, decoded from bytes (no bcc, no root)."""

from __future__ import annotations

import time

from pakemon import abi
from pakemon.capture.perf_reader import (
    META_SIZE,
    RejectReason,
    decode_record,
    monotonic_offset_ns,
)

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
