"""Stream stage: flow state for datagrams (UDP, ICMP, IP rules).

UDP, ICMP and IP "flows" exist so that a rule alerts once per flow: they
carry no data between datagrams (TCP has its own reassembler, ``tcp``).
Directions idle longer than their timeout are expired on a sweep driven by
packet time (never the wall clock); past ``max_flows`` the oldest is
evicted. Both are counted.

``FlowCounters`` keeps, apart, what Suricata counts per flow (packets and
bytes each way, the first packet's time) for the datagram flows the rules
inspect: an alert's EVE record carries them (its ``flow`` object).
"""

from __future__ import annotations

from collections import OrderedDict

# Suricata's UDP and ICMP flow timeout is 30 s; 60 s keeps a slow
# request/response pair one flow.
DGRAM_TIMEOUT_S = 60.0
SWEEP_EVERY_S = 5.0
# A flow is made only when a rule matches one of its datagrams, so only an
# alerting flood fills the table: bench/floods.py's "alerts" (an ICMP probe
# from every source) measured ~400 bytes a flow held (the ordered table's
# entry 170, the key and its two addresses 150, this object and its
# tuple), 52 MB at the cap (with a set per flow and twice the cap: 122 MB).
# Past it the oldest flow goes: at worst a rule alerts on it again, counted.
MAX_FLOWS = 131_072


class FlowDir:
    """One direction of one flow, and what detect has learnt about it."""

    __slots__ = ("key", "alerted", "last", "timeout")

    def __init__(self, key, timeout):
        self.key = key
        # rule indexes (in the tree) that alerted here: a tuple, as nearly
        # every flow has one (a set costs 216 bytes, a tuple of one 48)
        self.alerted: tuple = ()
        self.last = 0.0
        self.timeout = timeout

    def reset(self):
        self.alerted = ()


class FlowTable:
    """Flow directions by key, with idle expiry and a size cap."""

    def __init__(self, max_flows: int = MAX_FLOWS):
        self.max_flows = max_flows
        # oldest first, evicted from the front: an OrderedDict, as a dict
        # emptied from its front walks the holes on every next(iter())
        self.dirs: OrderedDict = OrderedDict()
        self.next_sweep = 0.0
        self.expired = 0
        self.evicted = 0

    def get(self, key, ts: float, timeout: float) -> FlowDir:
        d = self.dirs.get(key)
        if d is None:
            if ts >= self.next_sweep:
                self.sweep(ts)
            if len(self.dirs) >= self.max_flows:
                self.dirs.popitem(last=False)
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
    """Datagram flows (UDP, ICMP, IP rules): alert-once state with expiry."""

    def __init__(self, max_flows: int = MAX_FLOWS):
        self.table = FlowTable(max_flows)

    def dgram(self, proto: int, pkt) -> FlowDir:
        key = (proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
        return self.table.get(key, pkt.ts, DGRAM_TIMEOUT_S)


# Datagram flows counted at once (FlowCounters): ~250 bytes each, 8 MB at
# the cap; past it the oldest flow's counters go (counted) and start again
# if it comes back.
MAX_COUNTED = 32_768

# A counted flow: one list and its flat key, the fewest objects a flow can
# keep: the collector walks each young one, and an object per flow with
# nested key tuples made the bundled rules' run 6% slower (one DNS flow a
# query), these lists 2-3%. Indexed by:
FC_CLIENT, FC_CPORT, FC_START, FC_LAST, FC_PKTS_TS, FC_PKTS_TC, FC_BYTES_TS, FC_BYTES_TC = \
    range(8)


class FlowCounters:
    """Packets and bytes per datagram flow and direction, as Suricata's flow
    counters (``FlowUpdateCounter``: every packet, its captured length, the
    link header included); ``client`` sent the flow's first packet. ICMP
    flows are keyed by address pair, as ``flow_id`` is. A flow idle past
    DGRAM_TIMEOUT_S starts again."""

    def __init__(self, max_flows: int = MAX_COUNTED):
        self.max_flows = max_flows
        # oldest first; no move to the end per datagram (a flood evicts the
        # flows it made before a long-lived one only after the cap's worth)
        self.flows: OrderedDict = OrderedDict()
        self.evicted = 0

    def count(self, pkt) -> list:
        """Count ``pkt`` in its flow; sets ``pkt.flow`` to (counters, to
        the server) and returns the counters (FC_* indexes)."""
        proto = pkt.proto
        src, dst = pkt.src, pkt.dst
        if proto == 17 or proto == 6:
            sp, dp = pkt.sport, pkt.dport
        else:
            sp = dp = 0
        if (src, sp) <= (dst, dp):
            key = (proto, src, sp, dst, dp, pkt.vlan)
        else:
            key = (proto, dst, dp, src, sp, pkt.vlan)
        flows = self.flows
        ts = pkt.ts
        f = flows.get(key)
        if f is None or ts - f[FC_LAST] > DGRAM_TIMEOUT_S:
            if f is None and len(flows) >= self.max_flows:
                flows.popitem(last=False)
                self.evicted += 1
            f = flows[key] = [src, sp, ts, ts, 0, 0, 0, 0]
        f[FC_LAST] = ts
        if f[FC_CPORT] == sp and f[FC_CLIENT] == src:
            f[FC_PKTS_TS] += 1
            f[FC_BYTES_TS] += pkt.frame_len
            pkt.flow = (f, True)
        else:
            f[FC_PKTS_TC] += 1
            f[FC_BYTES_TC] += pkt.frame_len
            pkt.flow = (f, False)
        return f
