"""Perf records of the kernel sensor in, ``(ts, frame)`` out: the decoding half.

Stage: capture (live edge). ``pakemon.capture.xdp`` hands each CPU ring's
new bytes (``perf_ring``) to ``decode_records``, or, with bcc's reader, each
raw sample (the bytes bcc's callback points at, copied out first: perf ring
alignment is not guaranteed, as bcc's libbpf-tools handle_event notes) to
``decode_record``; both check each sample and return ``PerfRecord``s, and
the records of all CPUs' rings go to ``TimeOrder``, which releases them in
time order. Nothing here touches bcc, a socket or the clock, so unit tests
feed it bytes.

A sample is ``struct pk_event_meta`` (``pakemon.abi.PerfMeta``) followed by
``cap_len`` frame bytes and 0..7 bytes of alignment padding the kernel adds
(perf rounds raw samples up to 8 bytes). A sample shorter than the meta,
shorter than meta + cap_len, claiming more bytes than the wire carried, or
written by a program of another ABI version is rejected (``None`` with a
reason), never half-decoded.

Time: the kernel stamps ``bpf_ktime_get_ns()`` (CLOCK_MONOTONIC); the
reader adds an offset to wall-clock time measured once at start
(``monotonic_offset_ns``), so timestamps are comparable with a pcap's.
"""

from __future__ import annotations

import ctypes as ct
import struct
import time
from bisect import bisect_right
from operator import attrgetter
from typing import NamedTuple, Optional

from pakemon import abi
from pakemon.decode.decoder import checksum

__all__ = ["META_SIZE", "PerfRecord", "RejectReason", "TimeOrder", "decode_record",
           "decode_records", "monotonic_offset_ns", "pending_record"]

META_SIZE = ct.sizeof(abi.PerfMeta)
# PerfMeta as a struct format, for the per-record path: unpack_from reads it
# in place, about twice as fast as PerfMeta.from_buffer_copy plus six
# ctypes field reads. Kept equal to PerfMeta's layout by a unit test.
META = struct.Struct("=QIIIHBB")
# struct perf_event_header, and the two record types the ring holds for a
# BPF_PERF_OUTPUT event (include/uapi/linux/perf_event.h): a sample with
# PERF_SAMPLE_RAW is {header; u32 size; u8 data[size]}, a loss report
# {header; u64 id; u64 lost}.
PERF_HEADER = struct.Struct("<IHH")
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
_U32 = struct.Struct("<I")
_COALESCED_FLAGS = int(abi.EVF.REVERSE | abi.EVF.HDR_ONLY | abi.EVF.COALESCED)
_U64 = struct.Struct("<Q")


class RejectReason:
    """Why a sample was rejected (the reader counts each)."""

    SHORT_META = "short_meta"  # fewer bytes than PerfMeta
    SHORT_FRAME = "short_frame"  # fewer frame bytes than cap_len says
    CAP_OVER_WIRE = "cap_over_wire"  # cap_len > pkt_len: not from our program
    ABI_VERSION = "abi_version"  # written by a program of another ABI
    RING_CORRUPT = "ring_corrupt"  # a ring's bytes ended in no whole record


class PerfRecord(NamedTuple):
    """One candidate frame from the kernel."""

    ts: float  # wall-clock seconds
    frame: bytes  # the first cap_len bytes of the frame (Ethernet header on)
    wire_len: int  # the frame's length on the wire (pcap's origlen)
    flags: int  # abi.EVF bits: why pushed, how cut
    ifindex: int
    hook: int  # abi.Hook

    @property
    def truncated(self) -> bool:
        """True when frame holds fewer bytes than the wire carried."""
        return len(self.frame) < self.wire_len


def decode_record(raw: bytes, offset_ns: int) -> tuple[Optional[PerfRecord], Optional[str]]:
    """(record, None) for a good sample, (None, RejectReason.*) otherwise.

    raw: the sample's bytes (meta, frame, padding), already copied out of
    the ring. offset_ns: wall-clock minus monotonic time, in nanoseconds.
    """
    return _judge(raw, 0, len(raw), offset_ns)


def _judge(buf: bytes, start: int, stop: int, offset_ns: int):
    """The sample in buf[start:stop]: (PerfRecord, None) or (None, reason)."""
    if stop - start < META_SIZE:
        return None, RejectReason.SHORT_META
    ts_ns, ifindex, pkt_len, cap, flags, hook, version = META.unpack_from(buf, start)
    if version != abi.ABI_VERSION:
        return None, RejectReason.ABI_VERSION
    if cap > pkt_len:
        return None, RejectReason.CAP_OVER_WIRE
    f0 = start + META_SIZE
    if f0 + cap > stop:
        return None, RejectReason.SHORT_FRAME
    return PerfRecord((ts_ns + offset_ns) / 1e9, buf[f0:f0 + cap], pkt_len, flags, ifindex,
                      hook), None


def decode_records(chunk: bytes, offset_ns: int, records: list, rejected: dict) -> tuple[int, int]:
    """The perf records in ``chunk`` (one ring's bytes from its tail to its
    head, unwrapped): good samples appended to ``records`` as PerfRecords,
    rejected ones counted in ``rejected`` by reason, as ``decode_record``
    judges them. Returns (records lost as the kernel reported them, bytes
    of chunk that are no whole record: 0 unless the ring was corrupt)."""
    lost = 0
    pos = 0
    end = len(chunk)
    append = records.append
    while pos + 8 <= end:
        rtype, _misc, size = PERF_HEADER.unpack_from(chunk, pos)
        if size < 8 or pos + size > end:
            break
        if rtype == PERF_RECORD_SAMPLE and size >= 12:
            n = _U32.unpack_from(chunk, pos + 8)[0]
            rec, why = _judge(chunk, pos + 12, min(pos + 12 + n, pos + size), offset_ns)
            if rec is None:
                rejected[why] += 1
            else:
                append(rec)
        elif rtype == PERF_RECORD_LOST and size >= 24:
            lost += _U64.unpack_from(chunk, pos + 16)[0]
        pos += size
    return lost, end - pos


def pending_record(p: abi.Pending, ts: float) -> PerfRecord:
    """The record the kernel's pk_emit() would push for pending range ``p``
    (taken out of pk_pending by userland's sweeper), stamped ``ts``: the
    last segment's header with the first one's sequence number and an IP
    length covering every merged byte (IPv4: header checksum recomputed)."""
    n = min(p.hdr_len, abi.COALESCE_HDR_MAX)
    f = bytearray(bytes(p.hdr)[:n])
    l3, l4 = p.l3_off, p.l4_off
    if l4 + 8 <= n:
        f[l4 + 4:l4 + 8] = (p.seq_first & 0xFFFFFFFF).to_bytes(4, "big")
    grow = p.bytes - p.last_plen
    if p.family == 4 and l3 + 20 <= n:
        ihl = (f[l3] & 0x0F) * 4
        tot = (int.from_bytes(f[l3 + 2:l3 + 4], "big") + grow) & 0xFFFF
        f[l3 + 2:l3 + 4] = tot.to_bytes(2, "big")
        f[l3 + 10:l3 + 12] = b"\0\0"
        f[l3 + 10:l3 + 12] = checksum(bytes(f[l3:l3 + ihl])).to_bytes(2, "big")
    elif p.family == 6 and l3 + 40 <= n:
        plen = (int.from_bytes(f[l3 + 4:l3 + 6], "big") + grow) & 0xFFFF
        f[l3 + 4:l3 + 6] = plen.to_bytes(2, "big")
    return PerfRecord(ts, bytes(f), n + p.bytes, _COALESCED_FLAGS, p.ifindex, p.hook)


def monotonic_offset_ns(samples: int = 5) -> int:
    """Wall-clock minus CLOCK_MONOTONIC, in ns, from the tightest of a few reads.

    bpf_ktime_get_ns() is CLOCK_MONOTONIC, which Python's monotonic clock
    reads on Linux. The offset drifts if the wall clock is stepped (NTP),
    which a long-running sensor could re-measure; a few microseconds of
    read jitter do not matter to an IDS timestamp.
    """
    best = None
    for _ in range(samples):
        m0 = time.monotonic_ns()
        w = time.time_ns()
        m1 = time.monotonic_ns()
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, w - (m0 + m1) // 2)
    return best[1]


_TS = attrgetter("ts")


class TimeOrder:
    """The records of every CPU's ring, released in kernel-time order.

    Each CPU writes its own ring and bcc reads the rings one after another,
    so one CPU's frame can be read before an earlier frame of another: the
    server's SYN-ACK (tc egress, on the server's CPU) before the client's
    SYN (XDP, on the CPU that received it), or a whole response before the
    request it answers. The stream stage would then reassemble a
    conversation the host never had (a connection picked up mid-way, ACKs
    for data not yet seen), and could miss what the host read.

    So records are held until every ring has surely been read past their
    time, then released sorted by their kernel timestamp. The reader passes
    ``mark``, a time taken before a last read of all rings: every record
    stamped before ``mark - slack`` was in its ring by then (``slack``
    covers the few microseconds between the program's stamp and its write,
    with room for a preempted CPU), so it has been read and may go. A
    record older than one already released (stamped long before it reached
    its ring) still goes, counted in ``late``: nothing is dropped.

    Pure: no clock, no bcc; the reader gives times in the records' domain
    (wall-clock seconds).
    """

    __slots__ = ("slack", "_held", "_last", "late")

    def __init__(self, slack: float = 0.002) -> None:
        self.slack = slack
        self._held: list = []
        self._last = float("-inf")  # the newest timestamp released
        self.late = 0

    @property
    def held(self) -> int:
        return len(self._held)

    def release(self, records: list, mark: float) -> list:
        """Take ``records`` (in ring order); return those stamped at or
        before ``mark - slack``, with the ones held before, in time order."""
        if self._held:
            records = self._held + records
        if not records:
            return records
        # Each ring's records are already in time order, so this merges a
        # few sorted runs (Timsort: linear); stable for equal stamps.
        records.sort(key=_TS)
        cut = mark - self.slack
        if records[-1].ts <= cut:
            self._held = []
            out = records
        else:
            i = bisect_right(records, cut, key=_TS)
            out, self._held = records[:i], records[i:]
        return self._emit(out)

    def drain(self) -> list:
        """Every record held, in time order (the reader is stopping)."""
        out, self._held = self._held, []
        return self._emit(out)

    def _emit(self, out: list) -> list:
        if out:
            last = self._last
            if out[0].ts < last:
                self.late += sum(1 for r in out if r.ts < last)
            if out[-1].ts > last:
                self._last = out[-1].ts
        return out

