"""Fragment builders for the defrag tests: scapy frames, decoded by pakemon."""

from __future__ import annotations

from scapy.all import IP, UDP, Dot1Q, Ether, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, Raw

from pakemon.decode import decode_frame

# Explicit MACs: without them scapy looks routes and ARP up (slow).
MACS = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
A4, B4 = "10.0.0.1", "10.0.0.2"
A6, B6 = "2001:db8::1", "2001:db8::2"


def eth(vlan=None):
    e = Ether(**MACS)
    return e / Dot1Q(vlan=vlan) if vlan is not None else e


def v4(off, data, mf=True, *, id=1, proto=1, src=A4, dst=B4, vlan=None, ts=0.0, tos=0):
    """An IPv4 fragment: ``off`` in bytes, ``data`` the fragment's payload."""
    ip = IP(src=src, dst=dst, id=id, proto=proto, tos=tos,
            flags="MF" if mf else 0, frag=off // 8)
    return decode_frame(1, bytes(eth(vlan) / ip / Raw(data)), ts)


def v6(off, data, mf=True, *, id=1, nh=58, src=A6, dst=B6, vlan=None, ts=0.0, tc=0,
       hop_by_hop=False):
    """An IPv6 fragment (optionally behind a Hop-by-Hop header)."""
    ip = IPv6(src=src, dst=dst, tc=tc)
    if hop_by_hop:
        ip = ip / IPv6ExtHdrHopByHop()
    fh = IPv6ExtHdrFragment(id=id, nh=nh, offset=off // 8, m=1 if mf else 0)
    return decode_frame(1, bytes(eth(vlan) / ip / fh / Raw(data)), ts)


def frag(family, off, data, mf=True, **kw):
    if family == 4:
        return v4(off, data, mf, **kw)
    if "proto" in kw:
        proto = kw.pop("proto")
        kw["nh"] = 58 if proto == 1 else proto  # ICMP's IPv6 counterpart
    return v6(off, data, mf, **kw)


def udp_datagram(payload: bytes, sport=1234, dport=53) -> bytes:
    """A UDP header and payload: what a fragmented UDP datagram carries."""
    return bytes(UDP(sport=sport, dport=dport, chksum=0) / Raw(payload))


def feed_all(d, pkts):
    """Feed in order; (reassembled packets, all notices)."""
    out, notices = [], []
    for p in pkts:
        r, n = d.feed(p)
        notices.extend(n)
        if r is not None:
            out.append(r)
    return out, notices


def kinds(notices):
    return [n.kind.name for n in notices]
