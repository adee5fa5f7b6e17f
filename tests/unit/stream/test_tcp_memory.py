"""Ended TCP sessions are freed by reference counting, not by the collector.

A session, its directions and the detect stages' state point at each other;
the pipeline unlinks every ended session once its frame is matched
(``Pipeline._reap``). If a cycle came back, dead sessions would wait for a
full collection (a replay of new connections in a loop once grew to 300 MB
that way, and each full collection walks every object of the process). So
these tests run with the collector off and count what is still alive.
"""

from __future__ import annotations

import gc

import pytest
from helpers import BUNDLED_RULES

from pakemon.detect.engine import StreamMatch
from pakemon.detect.rule_parser import load_rules
from pakemon.detect.sigengine import DirState, SigRuleSet
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection, http_exchange, tcp_frame
from pakemon.pipeline import Pipeline
from pakemon.stream.tcp import TcpDirection, TcpSession

# every kind of per-direction state: stream rules both ways, HTTP request and
# response rules (parsers, request log), a flowbit
SURICATA = """\
alert tcp any any -> any 80 (msg:"stream to server"; flow:to_server; content:"evil"; sid:1;)
alert tcp any 80 -> any any (msg:"stream to client"; flow:to_client; content:"evil"; sid:2;)
alert http any any -> any any (msg:"uri"; http.uri; content:"/evil"; flowbits:set,seen; sid:3;)
alert http any any -> any any (msg:"resp"; flow:to_client; http.stat_code; content:"404"; sid:4;)
alert http any any -> any any (msg:"body"; flow:to_client; file.data; content:"evil"; sid:5;)
"""


def _alive(cls) -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, cls))


def _traffic(i):
    """Connections that end each way a session can: FIN, RST, a new SYN on
    the closed 4-tuple, or left open (ended by the timeout sweep)."""
    cip = f"10.{1 + i // 60000}.{(i // 250) % 250}.{i % 250 + 1}"
    ts = i * 0.05
    kind = i % 4
    if kind == 0:
        return http_exchange(cip, "10.200.0.2", 1024 + i % 60000,
                             b"GET /evil HTTP/1.0\r\n\r\n", b"evil" * 50, ts=ts)
    conn = TcpConnection(cip, "10.200.0.2", 1024 + i % 60000, 80, ts=ts).open()
    conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nevil", from_client=False)
    if kind == 1:
        conn._emit(tcp_frame(cip, "10.200.0.2", conn.cport, 80, conn.cseq, conn.sseq, 0x14))
        return conn.frames
    if kind == 2:
        frames = conn.close()
        # the client's next connection from the same port, at once
        again = TcpConnection(cip, "10.200.0.2", conn.cport, 80, ts=conn.ts + 0.01).open()
        return frames + again.close()
    return conn.frames  # never closed: the sweep ends it


@pytest.mark.parametrize("suricata", [False, True], ids=["native", "native+suricata"])
def test_ended_sessions_are_freed_without_the_collector(suricata):
    sig = SigRuleSet(parse_suricata_rules(SURICATA)[0]) if suricata else None
    pipe = Pipeline(load_rules(str(BUNDLED_RULES)).rules, sig=sig)
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        n = 8000
        events = []
        for i in range(n):
            for ts, frame in _traffic(i):
                events += pipe.feed(ts, frame)
        active = pipe.tcp.counters()["sessions_active"]
        assert pipe.tcp.ended > n // 2  # most of them did end
        for cls in (TcpSession, TcpDirection, StreamMatch, DirState):
            per = 1 if cls is TcpSession else 2
            alive = _alive(cls)
            # (an older reading or two may be held by a live session)
            assert alive <= per * active + 8, (cls.__name__, alive, active)
        if suricata:
            got = {e.rule.sid for e in events if hasattr(e, "rule")}
            assert {1, 2, 3, 4, 5} <= got  # the rules did run on these sessions
    finally:
        if was:
            gc.enable()
        gc.collect()

