"""The kernel's per-CPU counters against a known mix of frames (root only).

The counters feed the paper's section 4.2 table in live mode, so they must
equal what was sent, frame for frame and byte for byte, class by class,
in native and in generic mode.
"""

from __future__ import annotations

import platform
import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q
from scapy.packet import Raw

from xdp_lab import IF_B, IP_A, counter_delta, eth, lab, requires_xdp  # noqa: F401 (fixtures)

pytestmark = requires_xdp

# Not the server's address: the server's kernel drops these silently
# (no forwarding), so it sends nothing back that could be counted.
DST = "192.0.2.99"


def _mix(lab):
    tcp = [eth(lab, IP(src=IP_A, dst=DST) / TCP(sport=40000 + i, dport=8080, flags="S"))
           for i in range(7)]
    udp = [eth(lab, IP(src=IP_A, dst=DST) / UDP(sport=5000, dport=9999) / Raw(b"x" * (10 * i)))
           for i in range(5)]
    udp += [eth(lab, IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2))]
    icmp = [eth(lab, IP(src=IP_A, dst=DST) / ICMP(type=8, id=i)) for i in range(4)]
    other = [eth(lab, ARP(psrc=IP_A, pdst=DST)) for _ in range(3)]
    other += [eth(lab, IP(src=IP_A, dst=DST, proto=47) / Raw(b"\0" * 8))]  # GRE-ish
    vlan = [eth(lab, Dot1Q(vlan=7) / IP(src=IP_A, dst=DST) / UDP(sport=1, dport=2))]
    return tcp, udp + vlan, icmp, other


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_counters_equal_frames_sent_by_class(lab, mode):
    srv = lab.server
    srv.call("open")
    try:
        srv.call("attach", ifname=IF_B, mode=mode)
        srv.call("set_rules", text="x tcp * 80 *\n")  # nothing below is a candidate
        tcp, udp, icmp, other = _mix(lab)
        before = srv.call("counters")
        frames = tcp + udp + icmp + other
        lab.send(frames)
        size = lambda fs: sum(len(bytes(f)) for f in fs)  # noqa: E731
        ip_frames = tcp + udp + icmp + other[3:]
        want = {
            "frames": len(frames), "bytes": size(frames),
            "ip_frames": len(ip_frames), "ip_bytes": size(ip_frames),
            "tcp_frames": len(tcp), "tcp_bytes": size(tcp),
            "udp_frames": len(udp), "udp_bytes": size(udp),
            "icmp_frames": len(icmp), "icmp_bytes": size(icmp),
            "other_frames": len(other), "other_bytes": size(other),
            "passed_over": len(frames),
        }
        got = {}
        for _ in range(50):  # the frames cross the veth asynchronously
            got = counter_delta(before, srv.call("counters"))
            if got.get("frames", 0) >= len(frames):
                break
            time.sleep(0.05)
        assert got == want
    finally:
        srv.call("close")


@pytest.mark.parametrize("reader,wakeup", [("auto", 0), ("auto", 64 << 10), ("bcc", 0)])
def test_perf_ring_overflow_is_counted_per_cpu_and_by_the_kernel(lab, reader, wakeup):
    srv = lab.server
    # one 4 KiB page per CPU: three frames fit
    srv.call("open", page_cnt=1, reader=reader, wakeup_bytes=wakeup)
    try:
        direct = reader == "auto" and platform.machine() == "x86_64"
        # a watermark is at most a quarter of the ring
        assert srv.call("reader") == (["direct", min(wakeup, 1024)] if direct else ["bcc", 0])
        srv.call("attach", ifname=IF_B)
        srv.call("set_rules", text="u udp * * *\n")
        frames = [eth(lab, IP(src=IP_A, dst=DST) / UDP(sport=5000, dport=9999) / (b"z" * 1000))
                  for _ in range(40)]
        # All from CPU 0, so all into CPU 0's ring; nobody reads it meanwhile.
        lab.send(frames, cpu=0)
        time.sleep(0.2)
        recs = srv.call("collect", count=1, timeout=1.0)
        c = srv.call("counters")
        assert c["perf_fail"] > 0
        assert c["candidates"] + c["perf_fail"] == len(frames)
        assert len(recs) == c["candidates"]
        # The ring reports its drops (PERF_RECORD_LOST) only when it next has
        # room for a record: one more frame into the drained ring.
        lab.send(frames[:1], cpu=0)
        recs = srv.call("collect", count=1, timeout=1.0)
        assert len(recs) == 1
        lost = srv.call("lost")
        c = srv.call("counters")
        # The same drops, on the CPU that had them.
        assert lost == {"0": c["perf_fail"]}
        assert c["perf_lost"] == c["perf_fail"]
    finally:
        srv.call("close")
