"""Detect stage: run a packet's bytes through its service nodes.

Input: the flow direction (its match state), the service nodes the packet's
ports selected, and the bytes to search. Output: Alert events.

For TCP the bytes are what the packet adds to the direction's stream; each
node also searches the ``overlap`` bytes before them (the longest literal
minus one, or the regex window) so a pattern split across segments is found,
and partial AND matches persist in the direction. For datagrams every
datagram starts from nothing. A rule alerts once per flow direction.
"""

from __future__ import annotations

from ..decode import format_addr
from ..events import Alert
from ..stream.tracker import HISTORY_BYTES

_PROTO_NAMES = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMP"}


class Detector:
    def __init__(self, tree):
        self.tree = tree

    def inspect_stream(self, d, nodes, data: bytes, pkt):
        """Alerts for ``data``, the bytes a TCP segment adds to direction ``d``."""
        alerts = []
        ctx = d.hist
        found = d.found
        for node in nodes:
            ov = node.overlap
            if ov and ctx:
                window = ctx[-ov:] + data
                start = len(window) - len(data)
            else:
                window = data
                start = 0
            nid = id(node)
            touched = {}  # rule index -> end offset of its latest new match
            if window:
                for ridx, bit, end in node.search(window, start):
                    k = (nid, ridx)
                    found[k] = found.get(k, 0) | (1 << bit)
                    if end > touched.get(ridx, -1):
                        touched[ridx] = end
            for ridx in node.any_rules:
                k = (nid, ridx)
                found[k] = found.get(k, 0) | node.any_bits[ridx]
                touched.setdefault(ridx, start + len(data) - 1)
            full = node.full_masks
            for ridx, end in touched.items():
                gidx = node.gidx[ridx]
                if found[(nid, ridx)] != full[ridx] or gidx in d.alerted:
                    continue
                d.alerted.add(gidx)
                # the stream up to and including the completing match
                upto = len(ctx) + (end - start) + 1
                dump = (ctx + data)[:upto][-HISTORY_BYTES:]
                alerts.append(self._alert(node.rules[ridx], pkt, dump, False))
        if data:
            h = ctx + data
            d.hist = h[-HISTORY_BYTES:] if len(h) > HISTORY_BYTES else h
        return alerts

    def inspect_datagram(self, flow, nodes, data: bytes, pkt, ip_rule: bool = False):
        """Alerts for one datagram; ``flow()`` gives its flow state.

        The flow is looked up only once a rule has matched, so datagrams
        that match nothing (nearly all) cost the search alone.
        """
        alerts = []
        d = None
        for node in nodes:
            masks = {}
            if data:
                for ridx, bit, _ in node.search(data):
                    masks[ridx] = masks.get(ridx, 0) | (1 << bit)
            for ridx in node.any_rules:
                masks[ridx] = masks.get(ridx, 0) | node.any_bits[ridx]
            full = node.full_masks
            for ridx, mask in masks.items():
                if mask != full[ridx]:
                    continue
                if d is None:
                    d = flow()
                gidx = node.gidx[ridx]
                if gidx in d.alerted:
                    continue
                d.alerted.add(gidx)
                alerts.append(self._alert(node.rules[ridx], pkt, data, ip_rule))
        return alerts

    @staticmethod
    def _alert(rule, pkt, dump: bytes, ip_rule: bool) -> Alert:
        proto = pkt.proto
        name = "IP" if ip_rule else _PROTO_NAMES.get(proto, "IP")
        icmp = proto in (1, 58)
        ports = pkt.l4 and not icmp and not ip_rule
        return Alert(
            ts=pkt.ts,
            rule=rule,
            proto=name,
            src_ip=format_addr(pkt.src),
            dst_ip=format_addr(pkt.dst),
            src_port=pkt.sport if ports else None,
            dst_port=pkt.dport if ports else None,
            payload=bytes(pkt.ip_payload if ip_rule else pkt.payload),
            dump=bytes(dump),
            ip_proto=proto,
            icmp_type=pkt.sport if icmp and pkt.l4 else None,
            icmp_code=pkt.dport if icmp and pkt.l4 else None,
        )
