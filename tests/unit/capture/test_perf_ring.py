"""The direct perf ring reader's two pure halves: unwrapping a ring's bytes
(``perf_ring.read_ring`` on a bytearray laid out like the mapping) and
splitting them into records (``perf_reader.decode_records``), which must
judge every sample as ``decode_record`` does for bcc's reader.

The live rings themselves (perf_event_open, mmap, overflow and its LOST
records) are tested against the kernel in
tests/integration/test_xdp_counters.py.
"""

from __future__ import annotations

import struct

import pytest
from test_perf_reader import FRAME, sample

from pakemon import abi
from pakemon.capture import perf_ring
from pakemon.capture.perf_reader import (
    META,
    META_SIZE,
    RejectReason,
    decode_record,
    decode_records,
)

PAGE = 4096


def sample_record(raw: bytes) -> bytes:
    """A PERF_RECORD_SAMPLE as the kernel writes it: header, u32 size, the
    raw bytes, padded to 8 bytes."""
    body = struct.pack("<I", len(raw)) + raw
    body += b"\0" * (-(8 + len(body)) % 8)
    return struct.pack("<IHH", 9, 0, 8 + len(body)) + body


def lost_record(n: int) -> bytes:
    return struct.pack("<IHHQQ", 2, 0, 24, 77, n)


def rejected():
    return {r: 0 for r in (RejectReason.SHORT_META, RejectReason.SHORT_FRAME,
                           RejectReason.CAP_OVER_WIRE, RejectReason.ABI_VERSION,
                           RejectReason.RING_CORRUPT)}


def test_meta_struct_is_perfmeta():
    assert META.size == META_SIZE
    m = abi.PerfMeta(ts_ns=1 << 40, ifindex=7, pkt_len=1514, cap_len=60, flags=0x1234,
                     hook=abi.Hook.TC_EGRESS, abi_version=abi.ABI_VERSION)
    assert META.unpack(bytes(m)) == (1 << 40, 7, 1514, 60, 0x1234, abi.Hook.TC_EGRESS,
                                     abi.ABI_VERSION)


SAMPLES = [
    sample(),
    sample(frame=FRAME[:54], pkt_len=1514, flags=abi.EVF.HDR_ONLY, pad=2),
    sample(version=abi.ABI_VERSION + 1),
    sample(cap_len=61),  # more than the wire: not from our program
    sample(cap_len=60, pkt_len=60)[:META_SIZE + 20],  # frame cut short
    bytes(10),  # not even the meta
    sample(frame=bytes(range(256)) * 6, ts_ns=9_000_000_123),
]


def test_records_are_judged_as_decode_record_judges_them():
    chunk = b"".join(sample_record(r) for r in SAMPLES[:3]) + lost_record(5) \
        + b"".join(sample_record(r) for r in SAMPLES[3:]) + lost_record(2)
    recs, rej = [], rejected()
    lost, junk = decode_records(chunk, 1_000_000_000, recs, rej)
    assert (lost, junk) == (7, 0)
    want, want_rej = [], rejected()
    for raw in SAMPLES:
        rec, why = decode_record(raw, 1_000_000_000)
        if rec is None:
            want_rej[why] += 1
        else:
            want.append(rec)
    assert recs == want and rej == want_rej
    assert len(recs) == 3 and sum(rej.values()) == 4


def test_a_corrupt_record_stops_the_walk_and_is_reported():
    good = sample_record(sample())
    bad = struct.pack("<IHH", 9, 0, 4)  # a size below the header's own
    recs, rej = [], rejected()
    lost, junk = decode_records(good + bad + good, 0, recs, rej)
    assert len(recs) == 1 and lost == 0 and junk == len(bad + good)


def ring(pages: int, data: bytes, tail: int) -> bytearray:
    """A mapping of ``pages`` data pages holding ``data`` written from
    ``tail`` on (wrapping), its head after them."""
    size = pages * PAGE
    buf = bytearray(PAGE + size)
    struct.pack_into("<QQQQ", buf, 1024, tail + len(data), tail, PAGE, size)
    for i, b in enumerate(data):
        buf[PAGE + (tail + i) % size] = b
    return buf


@pytest.mark.parametrize("tail", [0, 100, PAGE - 24, PAGE - 1, 5 * PAGE + 3000])
def test_a_ring_is_unwrapped_from_its_tail_to_its_head(tail):
    data = b"".join(sample_record(sample(frame=bytes([i]) * 200, ts_ns=i)) for i in range(5))
    buf = ring(1, data, tail)
    chunk, head = perf_ring.read_ring(buf, tail)
    assert chunk == data and head == tail + len(data)
    perf_ring.set_tail(buf, head)
    assert struct.unpack_from("<Q", buf, 1032)[0] == head
    assert perf_ring.read_ring(buf, head) == (b"", head)  # nothing new
    recs, rej = [], rejected()
    decode_records(chunk, 0, recs, rej)
    assert [r.frame[0] for r in recs] == [0, 1, 2, 3, 4]


def test_never_more_than_the_ring_is_read():
    buf = ring(1, b"\x01" * PAGE, 0)
    struct.pack_into("<Q", buf, 1024, 3 * PAGE)  # a head two rings ahead
    chunk, head = perf_ring.read_ring(buf, 0)
    assert len(chunk) == PAGE and head == 3 * PAGE
