"""Ended TCP sessions are freed while traffic flows, not only at exit.

A session and its directions point at each other, so only a full
collection frees an ended one, and CPython's own trigger waits for a quarter
of every long-lived object in the process: the pipeline collects after as
many sessions ended as its table holds (a replay of new connections in a
loop grew to 300 MB of dead sessions without it).
"""

from __future__ import annotations

import gc

from helpers import BUNDLED_RULES

from pakemon.detect.rule_parser import load_rules
from pakemon.lab.traffic import http_exchange
from pakemon.pipeline import Pipeline
from pakemon.stream.tcp import TcpSession


def test_dead_sessions_do_not_pile_up_between_collections():
    old = gc.get_threshold()
    gc.collect()
    try:
        pipe = Pipeline(load_rules(str(BUNDLED_RULES)).rules)  # sets its thresholds
        n = 20000
        for i in range(n):
            cip = f"10.{1 + i // 60000}.{(i // 250) % 250}.{i % 250 + 1}"
            for ts, frame in http_exchange(cip, "10.200.0.2", 1024 + i % 60000,
                                           b"GET /index.html HTTP/1.0\r\n\r\n", b"ok" * 50,
                                           ts=i * 0.01):
                pipe.feed(ts, frame)
        active = pipe.tcp.counters()["sessions_active"]
        alive = sum(1 for o in gc.get_objects() if isinstance(o, TcpSession))
        # without any full collection every one of the n would still be here
        assert alive - active < n // 2, (alive, active)
    finally:
        gc.set_threshold(*old)
