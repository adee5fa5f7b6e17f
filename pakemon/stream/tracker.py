"""Stream stage: flow state for datagrams (UDP, ICMP, IP rules).

UDP, ICMP and IP "flows" exist so that a rule alerts once per flow: they
carry no data between datagrams (TCP has its own reassembler, ``tcp``).
Directions idle longer than their timeout are expired on a sweep driven by
packet time (never the wall clock); past ``max_flows`` the oldest is
evicted. Both are counted.
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
