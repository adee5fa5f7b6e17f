"""The perf reader's batching: a poll woken for a few records waits a moment
so that the records arriving meanwhile are read with them (one wakeup, one
batch), and never waits when the batch is already big, when nothing came,
or when draining at stop.

No kernel: a stand-in for bcc's BPF object writes samples into the reader's
callback as perf_buffer_poll would, and time.sleep is where more "arrive".
"""

from __future__ import annotations

import ctypes as ct

import pytest
from test_perf_reader import sample

from pakemon.capture import xdp
from pakemon.capture.perf_reader import TimeOrder


class FakeBPF:
    """Rings whose samples perf_buffer_poll hands to the reader's callback."""

    def __init__(self, sensor):
        self.sensor = sensor
        self.ring: list[bytes] = []
        self.polls: list[int] = []

    def arrive(self, n: int, ts_ns: int = 1_000_000_000) -> None:
        self.ring += [sample(ts_ns=ts_ns + i) for i in range(n)]

    def perf_buffer_poll(self, timeout_ms: int) -> None:
        self.polls.append(timeout_ms)
        ring, self.ring = self.ring, []
        for raw in ring:
            buf = ct.create_string_buffer(raw, len(raw))
            self.sensor._on_sample(0, ct.addressof(buf), len(raw))


def reader():
    s = object.__new__(xdp.XdpSensor)  # the reader half alone: no program loaded
    s._closed = False
    s._records = []
    s._order = TimeOrder()
    s._rejected = {}
    s._offset_ns = 0
    s._rings = None  # bcc's reader path
    s._coalescing_seen = False  # (no pk_pending to sweep)
    s._bpf = FakeBPF(s)
    return s


class Waits(list):
    """time.sleep in xdp, recorded; while it "sleeps", 5 more records arrive."""

    bpf = None

    def __call__(self, seconds):
        self.append(seconds)
        self.bpf.arrive(5, ts_ns=2_000_000_000)


@pytest.fixture
def waits(monkeypatch):
    w = Waits()
    monkeypatch.setattr(xdp.time, "sleep", w)
    return w


def test_a_poll_woken_for_one_record_waits_and_reads_the_next_ones_with_it(waits):
    s = reader()
    waits.bpf = s._bpf
    s._bpf.arrive(1)
    recs = s.poll_records(200)
    assert waits == [xdp.BATCH_WAIT_S]
    assert len(recs) == 6  # the one that woke it and the five of the wait
    assert [r.ts for r in recs] == sorted(r.ts for r in recs)


def test_a_full_batch_is_read_at_once(waits):
    s = reader()
    waits.bpf = s._bpf
    s._bpf.arrive(xdp.BATCH_MIN)
    assert len(s.poll_records(200)) == xdp.BATCH_MIN
    assert waits == []


def test_no_wait_when_nothing_came_or_when_draining(waits):
    s = reader()
    waits.bpf = s._bpf
    assert s.poll_records(200) == [] and waits == []
    s._bpf.arrive(1)
    assert len(s.poll_records(0, drain=True)) == 1 and waits == []
