"""Perf records of the kernel sensor in, ``(ts, frame)`` out: the decoding half.

Stage: capture (live edge). ``pakemon.capture.xdp`` hands each raw perf
sample (the bytes bcc's callback points at, copied out first: perf ring
alignment is not guaranteed, as bcc's libbpf-tools handle_event notes) to
``decode_record``, which checks it and returns a ``PerfRecord``; nothing
here touches bcc, a socket or the clock, so unit tests feed it bytes.

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
import time
from typing import NamedTuple, Optional

from pakemon import abi

__all__ = ["META_SIZE", "PerfRecord", "RejectReason", "decode_record", "monotonic_offset_ns"]

META_SIZE = ct.sizeof(abi.PerfMeta)


class RejectReason:
    """Why a sample was rejected (the reader counts each)."""

    SHORT_META = "short_meta"  # fewer bytes than PerfMeta
    SHORT_FRAME = "short_frame"  # fewer frame bytes than cap_len says
    CAP_OVER_WIRE = "cap_over_wire"  # cap_len > pkt_len: not from our program
    ABI_VERSION = "abi_version"  # written by a program of another ABI


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
    if len(raw) < META_SIZE:
        return None, RejectReason.SHORT_META
    meta = abi.PerfMeta.from_buffer_copy(raw, 0)
    if meta.abi_version != abi.ABI_VERSION:
        return None, RejectReason.ABI_VERSION
    cap = meta.cap_len
    if cap > meta.pkt_len:
        return None, RejectReason.CAP_OVER_WIRE
    end = META_SIZE + cap
    if len(raw) < end:
        return None, RejectReason.SHORT_FRAME
    ts = (meta.ts_ns + offset_ns) / 1e9
    return PerfRecord(ts, raw[META_SIZE:end], meta.pkt_len, meta.flags, meta.ifindex,
                      meta.hook), None


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
