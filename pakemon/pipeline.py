"""The pipeline: decode -> stream -> detect, fed ``(timestamp, frame)``.

Sans-I/O: ``Pipeline.feed`` takes one captured frame and returns the events
it caused (alerts, notices); ``flush`` ends the input. It does not know
whether frames come from a pcap file or the XDP perf buffer, never reads the
clock (time is the packet's), and writes nothing: the caller renders events.

The per-frame cost is what the sensor's throughput is made of, so ``feed``
is written flat: a frame whose ports fit no service node costs a header
parse, a few counter increments and one table index.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .decode import DecodeError, decode_frame, format_addr
from .decode.packet import LINKTYPE_ETHERNET, TH_SYN
from .detect.engine import Detector
from .detect.ruletree import RuleTree
from .events import Alert, Notice, NoticeKind
from .stream import StreamTracker

_NONE = ()


@dataclass
class Stats:
    """Frame counts by the paper's section 4.2 classes, and what was lost."""

    frames: int = 0
    bytes: int = 0
    ip: int = 0
    tcp: int = 0
    udp: int = 0
    icmp: int = 0
    malformed: int = 0
    inspected: int = 0  # frames that reached at least one service node
    fragments_uninspected: int = 0  # IP fragments: no defrag stage yet
    notices: Counter = field(default_factory=Counter)  # NoticeKind name -> n
    alerts: Counter = field(default_factory=Counter)  # signature -> n

    @property
    def other(self) -> int:
        return self.frames - self.tcp - self.udp - self.icmp

    def table(self) -> str:
        """The paper's section 4.2 table: frames and percent per class."""
        total = self.frames
        rows = [("IP", self.ip), ("TCP", self.tcp), ("UDP", self.udp),
                ("ICMP", self.icmp), ("OTHER", self.other)]
        out = [f"{'Protocol':<9}{'Frames':>12}{'%':>9}"]
        out.append(f"{'ALL':<9}{total:>12}{100.0 if total else 0.0:>9.2f}")
        for name, n in rows:
            pct = 100.0 * n / total if total else 0.0
            out.append(f"{name:<9}{n:>12}{pct:>9.2f}")
        return "\n".join(out)


class Pipeline:
    def __init__(self, rules, max_flows: int | None = None):
        self.tree = rules if isinstance(rules, RuleTree) else RuleTree(rules)
        self.stream = StreamTracker(max_flows) if max_flows else StreamTracker()
        self.detector = Detector(self.tree)
        self.stats = Stats()

    def feed(self, ts: float, frame: bytes, linktype: int = LINKTYPE_ETHERNET):
        """Events caused by one frame (an empty tuple for most frames)."""
        st = self.stats
        st.frames += 1
        st.bytes += len(frame)
        try:
            pkt = decode_frame(linktype, frame, ts)
        except DecodeError as e:
            return self._malformed(ts, e)
        if not pkt.family:
            return _NONE
        st.ip += 1
        proto = pkt.proto
        tree = self.tree
        if proto == 6:
            st.tcp += 1
            nodes = tree.tcp_by_dport[pkt.dport] + tree.tcp_by_sport[pkt.sport] if pkt.l4 else _NONE
        elif proto == 17:
            st.udp += 1
            nodes = tree.udp_by_dport[pkt.dport] + tree.udp_by_sport[pkt.sport] if pkt.l4 else _NONE
        elif proto == 1 or proto == 58:
            st.icmp += 1
            nodes = tree.icmp_by_type[pkt.sport] if pkt.l4 else _NONE
        else:
            nodes = _NONE
        if pkt.is_fragment:
            if nodes or tree.ip_nodes or not pkt.l4:
                st.fragments_uninspected += 1
            return _NONE
        if not nodes and not tree.ip_nodes:
            return _NONE
        return self._inspect(pkt, nodes)

    def _inspect(self, pkt, nodes):
        st = self.stats
        st.inspected += 1
        proto = pkt.proto
        events = []
        if nodes:
            if proto == 1 or proto == 58:
                nodes = tuple(n for n in nodes if pkt.dport in n.dst)
            else:
                sport = pkt.sport
                nodes = tuple(n for n in nodes if n.src_any or sport in n.src)
        if nodes:
            if proto == 6:
                data = pkt.payload
                # Pure ACKs add nothing; a SYN must still restart the direction.
                if data or pkt.flags & TH_SYN or any(n.any_rules for n in nodes):
                    d, data = self.stream.tcp(pkt)
                    events = self.detector.inspect_stream(d, nodes, data, pkt)
            else:
                events = self.detector.inspect_datagram(
                    lambda: self.stream.dgram(proto, pkt), nodes, pkt.payload, pkt)
        if self.tree.ip_nodes:
            events += self.detector.inspect_datagram(
                lambda: self.stream.dgram(("ip", proto), pkt), self.tree.ip_nodes,
                pkt.ip_payload, pkt, True)
        for a in events:
            st.alerts[a.rule.signature] += 1
        return events

    def _malformed(self, ts: float, e: DecodeError):
        st = self.stats
        st.malformed += 1
        pkt = e.pkt
        kind = e.kind
        st.notices[kind.name] += 1
        # classify what could be read, so the section 4.2 table adds up
        if pkt is not None and pkt.family:
            st.ip += 1
            if pkt.proto == 6:
                st.tcp += 1
            elif pkt.proto == 17:
                st.udp += 1
            elif pkt.proto in (1, 58):
                st.icmp += 1
        return [make_notice(ts, kind, pkt)]

    def flush(self):
        """End of input: nothing is pending in this engine yet."""
        return []


_LAYER = {
    "TCP": "TCP", "UDP": "UDP", "ICMP": "ICMP", "ICMPV6": "ICMPv6",
    "IPV4": "IPv4", "IPV6": "IPv6", "ETH": "Ethernet", "VLAN": "VLAN",
    "SLL": "Linux cooked",
}


def make_notice(ts: float, kind: NoticeKind, pkt=None) -> Notice:
    """A decode notice in the paper's words: ``invalid TCP header, from A to B``."""
    parts = kind.name.split("_")
    layer = _LAYER.get(parts[1], parts[1]) if len(parts) > 1 else ""
    src = dst = ""
    if pkt is not None and pkt.family:
        src, dst = format_addr(pkt.src), format_addr(pkt.dst)
    if kind is NoticeKind.CAPTURE_UNKNOWN_LINKTYPE:
        msg = "unknown link type, frame not decoded"
    elif parts[-1] == "TRUNCATED":
        msg = f"truncated {layer} header"
    else:
        msg = f"invalid {layer} header"
    if src:
        msg += f", from {src} to {dst}"
    proto = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMP"}.get(pkt.proto, "IP") if src else ""
    return Notice(ts=ts, kind=kind, message=msg, proto=proto, src_ip=src, dst_ip=dst)
