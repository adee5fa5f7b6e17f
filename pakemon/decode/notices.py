"""Notices for the non-fatal decoder anomalies a packet carries.

``decode_frame`` records non-fatal anomalies on ``Packet.anomalies`` (see
the decoder's docstring) instead of raising, so the packet is still
inspected. The stage that owns the packet turns them into ``Notice`` events
with ``anomaly_notices``: one notice per kind per packet, carrying the
packet's addresses and, when the transport header was read, its ports, so
an alert of a Suricata ``pkthdr`` rule with ``decode-event`` can name them
(``pakemon.detect.eventmap`` maps the kinds onto Suricata's event names).
Kept apart from the hot path: it is only called when ``pkt.anomalies`` is
non-empty.
"""

from __future__ import annotations

from pakemon.decode.decoder import format_addr
from pakemon.decode.packet import Packet
from pakemon.events import Notice

__all__ = ["anomaly_notices", "packet_proto"]

_PROTO = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMP"}


def packet_proto(pkt: Packet) -> str:
    """The Notice ``proto`` of a packet: TCP/UDP/ICMP, IP, or "" if not IP."""
    if not pkt.family:
        return ""
    return _PROTO.get(pkt.proto, "IP")


def anomaly_notices(pkt: Packet, ts: float | None = None) -> list[Notice]:
    """One Notice per kind in ``pkt.anomalies`` (empty list when there are none)."""
    if not pkt.anomalies:
        return []
    src = format_addr(pkt.src) if pkt.family else ""
    dst = format_addr(pkt.dst) if pkt.family else ""
    proto = packet_proto(pkt)
    ports = pkt.proto in (6, 17) and (pkt.l4 or pkt.sport or pkt.dport)
    sport = pkt.sport if ports else None
    dport = pkt.dport if ports else None
    where = f", from {src} to {dst}" if src else ""
    t = pkt.ts if ts is None else ts
    return [Notice(ts=t, kind=k, message=k.doc + where, proto=proto, src_ip=src, dst_ip=dst,
                   src_port=sport, dst_port=dport)
            for k in pkt.anomalies]
