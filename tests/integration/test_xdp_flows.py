"""Flow bypass and flow blocking in the kernel (root only).

Bypass: userland marks a flow it has finished with; the kernel skips and
counts its packets (both directions) until the entry goes stale. Block: a
flow an alert marked is dropped, but only while blocking is enabled; the
sensor otherwise passes everything, and other traffic always flows.
"""

from __future__ import annotations

import time

import pytest
from scapy.layers.inet import IP, TCP

from xdp_lab import (  # noqa: F401 (fixtures)
    IP_A,
    IP_B,
    counter_delta,
    eth,
    lab,
    requires_xdp,
    sensor_lab,
)

pytestmark = requires_xdp

DST = "192.0.2.99"  # a test-only address nobody answers for
RULES = 'web tcp * 80 "GET"\n'


@pytest.fixture
def net(sensor_lab):
    srv = sensor_lab.server
    srv.call("set_rules", text=RULES)
    # (coalescing off: these tests count the records of each frame)
    srv.call("configure", block=False, bypass_timeout=60.0, coalesce=False)
    srv.call("collect", timeout=0.3, settle=0.1)
    return sensor_lab


def _flow_frames(net, sport, n_fwd=3, n_back=2):
    fwd = [bytes(eth(net, IP(src=IP_A, dst=DST) / TCP(sport=sport, dport=80, flags="PA")
                     / f"GET /{i}".encode())) for i in range(n_fwd)]
    back = [bytes(eth(net, IP(src=DST, dst=IP_A) / TCP(sport=80, dport=sport, flags="A")))
            for _ in range(n_back)]
    return fwd + back


def _exchange(net, frames, expect):
    srv = net.server
    before = srv.call("counters")
    net.send(frames)
    recs = srv.call("collect", count=expect, timeout=3.0, settle=0.2 if expect else 0.4)
    return [bytes.fromhex(r["frame"]) for r in recs], counter_delta(before, srv.call("counters"))


def test_bypassed_flow_is_skipped_and_counted_both_ways(net):
    srv = net.server
    flow = dict(src=IP_A, dst=DST, sport=40010, dport=80, proto=6)
    srv.call("bypass", **flow)
    skipped = _flow_frames(net, 40010)
    other = _flow_frames(net, 40011, n_fwd=1, n_back=0)
    frames, d = _exchange(net, skipped + other, 1)
    assert frames == other
    assert d["bypassed"] == len(skipped) and d["candidates"] == 1
    per_key = sorted(f["packets"] for f in srv.call("flows", kind="bypass"))
    assert per_key == [2, 3]
    srv.call("unbypass", **flow)
    frames, d = _exchange(net, skipped, len(skipped))
    assert len(frames) == len(skipped) and "bypassed" not in d


def test_bypass_entry_expires_after_the_timeout(net):
    srv = net.server
    srv.call("configure", bypass_timeout=0.3)
    srv.call("bypass", src=IP_A, dst=DST, sport=40020, dport=80, proto=6)
    first = _flow_frames(net, 40020, n_fwd=1, n_back=0)
    frames, d = _exchange(net, first, 0)
    assert frames == [] and d["bypassed"] == 1
    time.sleep(0.5)  # idle longer than the timeout
    frames, d = _exchange(net, first, 1)
    assert frames == first
    assert d["bypass_expired"] == 1 and "bypassed" not in d
    # The stale forward entry is gone; the unused reverse one waits for LRU
    # eviction or its own first packet.
    assert [f["packets"] for f in srv.call("flows", kind="bypass")] == [0]


def test_block_drops_a_marked_flow_only_when_enabled(net):
    srv, cli = net.server, net.client
    srv.call("udp_listen", addr=IP_B, port=7000)
    assert cli.call("ping", addr=IP_B) == 3  # also resolves ARP before counting
    flow = dict(src=IP_A, dst=IP_B, sport=41000, dport=7000, proto=17)

    def deliver(sport=41000, n=5):
        cli.call("udp_send", addr=IP_B, port=7000, count=n, sport=sport)
        return srv.call("udp_received", port=7000, wait=0.4)

    base = deliver()
    assert base == 5
    srv.call("block", **flow)  # marked, but blocking is off: XDP_PASS
    before = srv.call("counters")
    assert deliver() == base + 5
    assert "blocked" not in counter_delta(before, srv.call("counters"))

    srv.call("configure", block=True)
    try:
        before = srv.call("counters")
        assert deliver() == base + 5  # all five dropped in the kernel
        assert counter_delta(before, srv.call("counters"))["blocked"] == 5
        assert [f["packets"] for f in srv.call("flows", kind="block") if f["packets"]] == [5]
        # Everything else still flows: another port pair, and ICMP.
        assert deliver(sport=41001, n=2) == base + 7
        assert cli.call("ping", addr=IP_B) == 3
        srv.call("unblock", **flow)
        assert deliver() == base + 12
    finally:
        srv.call("configure", block=False)
