"""Stream stage: flow directions and TCP payload in sequence order.

Input: decoded packets that some service node wants. Output: for each, the
flow-direction state and the bytes that are new to that direction's stream.

Theory of operation (the minimum the offline engine needs; the network
monitor replaces the TCP part with target-based reassembly): each TCP
direction remembers the next sequence number it expects. A segment wholly
before it is a retransmission and yields nothing; one that overlaps it
yields only its new tail; one after it (a gap: loss or reordering) is taken
in arrival order and moves the expectation past it. A SYN starts the
direction afresh, so a reused port pair is a new connection.

UDP, ICMP and IP "flows" exist only so that a rule alerts once per flow;
they carry no data between datagrams.

Bounds: directions idle longer than their timeout are expired on a sweep
driven by packet time (never the wall clock); past ``max_flows`` the oldest
direction is evicted. Both are counted.
"""

from __future__ import annotations

from ..decode.packet import TH_SYN

# Suricata's defaults: established TCP 3600 s, UDP and ICMP 30 s... we keep
# UDP/ICMP at 60 s so a slow request/response pair stays one flow.
TCP_TIMEOUT_S = 3600.0
DGRAM_TIMEOUT_S = 60.0
SWEEP_EVERY_S = 5.0
# 256k directions: about 100 MB at the 4 KiB history each holds at most.
MAX_FLOWS = 262_144
# What the dump log shows of a TCP stream, and the regex window.
HISTORY_BYTES = 4096


class FlowDir:
    """One direction of one flow, and what detect has learnt about it."""

    __slots__ = ("key", "next_seq", "hist", "found", "alerted", "last", "timeout")

    def __init__(self, key, timeout):
        self.key = key
        self.next_seq = None
        self.hist = b""  # last HISTORY_BYTES of the stream (TCP only)
        self.found = {}  # (node id, rule index) -> bit mask of found patterns
        self.alerted = set()  # rule indexes (in the tree) that alerted here
        self.last = 0.0
        self.timeout = timeout

    def reset(self):
        self.next_seq = None
        self.hist = b""
        self.found = {}
        self.alerted = set()


class FlowTable:
    """Flow directions by key, with idle expiry and a size cap."""

    def __init__(self, max_flows: int = MAX_FLOWS):
        self.max_flows = max_flows
        self.dirs: dict = {}
        self.next_sweep = 0.0
        self.expired = 0
        self.evicted = 0

    def get(self, key, ts: float, timeout: float) -> FlowDir:
        d = self.dirs.get(key)
        if d is None:
            if ts >= self.next_sweep:
                self.sweep(ts)
            if len(self.dirs) >= self.max_flows:
                # dicts keep insertion order: the first key is the oldest flow
                del self.dirs[next(iter(self.dirs))]
                self.evicted += 1
            d = self.dirs[key] = FlowDir(key, timeout)
        elif ts - d.last > d.timeout:
            d.reset()  # idle past its timeout: a new flow on the same key
            self.expired += 1
        d.last = ts
        return d

    def sweep(self, ts: float) -> None:
        self.next_sweep = ts + SWEEP_EVERY_S
        stale = [k for k, d in self.dirs.items() if ts - d.last > d.timeout]
        for k in stale:
            del self.dirs[k]
        self.expired += len(stale)

    def __len__(self) -> int:
        return len(self.dirs)


class StreamTracker:
    def __init__(self, max_flows: int = MAX_FLOWS):
        self.table = FlowTable(max_flows)
        self.retransmitted = 0  # segments wholly already seen
        self.gaps = 0  # segments past the expected sequence number

    def tcp(self, pkt) -> tuple[FlowDir, bytes]:
        """The direction of a TCP segment and the stream bytes it adds."""
        key = (6, pkt.src, pkt.sport, pkt.dst, pkt.dport)
        d = self.table.get(key, pkt.ts, TCP_TIMEOUT_S)
        flags = pkt.flags
        data = pkt.payload
        if flags & TH_SYN:
            if d.next_seq is not None and d.next_seq != (pkt.seq + 1) & 0xFFFFFFFF:
                d.reset()  # a new connection on the same ports
            d.next_seq = (pkt.seq + 1 + len(data)) & 0xFFFFFFFF
            return d, data
        if not data:
            return d, data
        seq = pkt.seq
        if d.next_seq is None:
            # joined mid-stream: take the segment as the start
            d.next_seq = (seq + len(data)) & 0xFFFFFFFF
            return d, data
        # signed 32-bit distance handles sequence wrap-around
        delta = ((seq - d.next_seq + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        if delta < 0:
            if -delta >= len(data):
                self.retransmitted += 1
                return d, b""
            data = data[-delta:]
        elif delta > 0:
            self.gaps += 1
        d.next_seq = (seq + len(pkt.payload)) & 0xFFFFFFFF
        return d, data

    def dgram(self, proto: int, pkt) -> FlowDir:
        key = (proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
        return self.table.get(key, pkt.ts, DGRAM_TIMEOUT_S)
