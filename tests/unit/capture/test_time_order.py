"""Records of several CPUs' perf rings, released in kernel-time order (no bcc).

The model of the reader: each record is stamped (``ts``) by the kernel
program and lands in its CPU's ring a little later; the reader reads the
rings one after another, takes ``mark``, reads them all again, and hands
everything it read to ``TimeOrder.release(records, mark)``.
"""

from __future__ import annotations

import random

from pakemon.capture.perf_reader import PerfRecord, TimeOrder


def rec(ts: float, tag: str = "") -> PerfRecord:
    return PerfRecord(ts, tag.encode(), 60, 0, 1, 0)


def stamps(records) -> list[float]:
    return [r.ts for r in records]


def test_rings_read_one_after_another_come_out_in_time_order():
    cpu0 = [rec(1.000), rec(1.003), rec(1.004)]  # the server's replies (tc egress)
    cpu1 = [rec(1.001), rec(1.002), rec(1.005)]  # the client's frames (XDP)
    order = TimeOrder(slack=0.002)
    out = order.release(cpu0 + cpu1, mark=2.0)
    assert stamps(out) == [1.000, 1.001, 1.002, 1.003, 1.004, 1.005]
    assert order.held == 0 and order.late == 0


def test_records_near_the_mark_wait_for_the_next_read():
    order = TimeOrder(slack=0.002)
    # read at 1.010: a record of 1.009 may have an older sibling in a ring
    # not yet read, so it waits; 1.007 cannot
    out = order.release([rec(1.007), rec(1.009)], mark=1.010)
    assert stamps(out) == [1.007]
    assert order.held == 1
    # the other CPU's 1.0085 arrives with the next read: it goes first
    out = order.release([rec(1.0085), rec(1.020)], mark=1.015)
    assert stamps(out) == [1.0085, 1.009]
    assert order.held == 1
    assert stamps(order.drain()) == [1.020]
    assert order.held == 0 and order.late == 0


def test_nothing_read_still_releases_what_has_waited_long_enough():
    order = TimeOrder(slack=0.002)
    assert order.release([rec(1.0095)], mark=1.010) == []
    assert stamps(order.release([], mark=1.012)) == [1.0095]


def test_a_record_older_than_one_released_is_kept_and_counted_late():
    order = TimeOrder(slack=0.002)
    order.release([rec(1.000), rec(1.005)], mark=1.010)
    # stamped long before it reached its ring (a CPU held up past the slack)
    out = order.release([rec(1.001, "late"), rec(1.006)], mark=1.020)
    assert [r.frame for r in out] == [b"late", b""]
    assert order.late == 1


def test_equal_stamps_keep_the_order_read():
    order = TimeOrder()
    out = order.release([rec(1.0, "a"), rec(1.0, "b"), rec(0.5, "c"), rec(1.0, "d")], mark=9.0)
    assert [r.frame for r in out] == [b"c", b"a", b"b", b"d"]


def simulate_reader(records, n_cpus: int, rnd: random.Random, slack: float):
    """Feed ``records`` (in time order) through a model of the reader: each
    lands on a random CPU's ring up to slack/2 after its stamp; the reader
    wakes at random times, reads the rings in a random order (each read
    takes time), takes the mark, reads them all again, releases. Returns
    the records in the order released, and the TimeOrder."""
    rings = [[] for _ in range(n_cpus)]
    for r in records:
        rings[rnd.randrange(n_cpus)].append((r.ts + rnd.uniform(0, slack / 2), r))
    for ring in rings:
        ring.sort(key=lambda wr: wr[0])  # a ring holds its records in write order
    order = TimeOrder(slack=slack)
    out = []
    now = records[0].ts if records else 0.0
    end = (records[-1].ts if records else 0.0) + slack
    pos = [0] * n_cpus

    def read_all():
        nonlocal now
        got = []
        for cpu in rnd.sample(range(n_cpus), n_cpus):
            now += rnd.uniform(0, slack / 4)  # the callbacks of the ring before
            ring = rings[cpu]
            while pos[cpu] < len(ring) and ring[pos[cpu]][0] <= now:
                got.append(ring[pos[cpu]][1])
                pos[cpu] += 1
        return got

    while now <= end:
        now += rnd.expovariate(1 / slack)
        batch = read_all()
        mark = now
        batch += read_all()
        out += order.release(batch, mark)
    out += order.drain()
    for cpu in range(n_cpus):
        out += [r for _, r in rings[cpu][pos[cpu]:]]  # never read: the model is wrong
    return out, order


def test_any_spread_over_rings_and_reads_comes_out_in_time_order():
    for seed in range(200):
        rnd = random.Random(seed)
        ts, records = 100.0, []
        for i in range(rnd.randrange(1, 300)):
            ts += rnd.expovariate(1 / 0.0005)
            records.append(rec(ts, str(i)))
        out, order = simulate_reader(records, rnd.randrange(1, 5), rnd, slack=0.002)
        assert [r.frame for r in out] == [r.frame for r in records], seed
        assert order.late == 0 and order.held == 0


def test_a_conversation_split_over_two_rings_reads_as_the_host_saw_it():
    """The stream stage gets the client's frames (XDP) and the server's
    (tc egress) from different rings; merged, it sees what the wire carried:
    the response's marker alerts at once, as in a capture."""
    from helpers import sid_counts

    from pakemon.lab.traffic import http_exchange

    rule = ('alert http any 80 -> any any (msg:"marker in body"; flow:established,to_client; '
            'file_data; content:"pakemon-secret-marker"; sid:1;)\n')
    frames = []
    for i in range(20):
        frames += http_exchange("10.0.0.1", "10.0.0.2", 40000 + i, b"GET /page HTTP/1.0\r\n\r\n",
                                b"<html>pakemon-secret-marker</html>", ts=100.0 + i * 0.0013)
    frames.sort(key=lambda f: f[0])
    records = [rec(ts)._replace(frame=fr) for ts, fr in frames]
    for seed in range(20):
        out, _ = simulate_reader(records, 2, random.Random(seed), slack=0.002)
        assert sid_counts([(r.ts, r.frame) for r in out], rule) == {1: 20}, seed
