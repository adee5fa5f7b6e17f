"""Anomaly notices, drop-overlap, and the time and memory bounds."""


import pytest

from defrag_frames import A4, B4, feed_all, frag, kinds, v4, v6
from pakemon.config import DEFRAG_POLICIES, DefragConfig
from pakemon.decode import decode_frame
from pakemon.defrag import Defragmenter
from pakemon.defrag.tracker import DATAGRAM_COST, PIECE_COST


@pytest.mark.parametrize("policy", DEFRAG_POLICIES)
@pytest.mark.parametrize("family", [4, 6])
def test_defrag_mismatch_reported_under_every_policy(policy, family):
    d = Defragmenter(DefragConfig(policy=policy))
    _, notices = feed_all(d, [frag(family, 0, b"a" * 16), frag(family, 8, b"EVIL!!!!")])
    assert "DEFRAG_OVERLAP_MISMATCH" in kinds(notices)
    n = next(n for n in notices if n.kind.name == "DEFRAG_OVERLAP_MISMATCH")
    assert n.message.startswith("overlapping fragment with different data, from ")
    assert d.counters()["overlap_mismatches"] == 1


@pytest.mark.parametrize("policy", DEFRAG_POLICIES)
def test_defrag_identical_overlap_is_not_a_mismatch(policy):
    d = Defragmenter(DefragConfig(policy=policy))
    _, notices = feed_all(d, [v4(0, b"a" * 16), v4(0, b"a" * 16)])
    assert notices == [] and d.counters()["duplicates"] == 1


class TestDropOverlap:
    def test_partial_overlap_discards_even_with_identical_bytes(self):
        d = Defragmenter(DefragConfig(policy="drop-overlap"))
        data = bytes(range(32))
        out, notices = feed_all(d, [v4(0, data[:16]), v4(8, data[8:24]), v4(24, data[24:], False)])
        assert out == [] and kinds(notices) == ["DEFRAG_OVERLAP"]
        assert d.counters()["discarded"] == 1

    def test_exact_duplicates_are_ignored(self):
        """RFC 5722 errata 3089: duplicates ignored, the datagram kept."""
        d = Defragmenter(DefragConfig(policy="drop-overlap"))
        data = bytes(range(32))
        out, notices = feed_all(d, [v4(0, data[:16]), v4(0, data[:16]), v4(16, data[16:24]),
                                    v4(8, data[8:24]),  # spans two held fragments, same bytes
                                    v4(24, data[24:], False)])
        assert [r.ip_payload for r in out] == [data] and notices == []
        assert d.counters()["duplicates"] == 2

    def test_duplicate_with_other_bytes_discards(self):
        d = Defragmenter(DefragConfig(policy="drop-overlap"))
        out, notices = feed_all(d, [v4(0, b"a" * 16), v4(0, b"b" * 16)])
        assert kinds(notices) == ["DEFRAG_OVERLAP_MISMATCH", "DEFRAG_OVERLAP"]
        assert d.queues == 0


@pytest.mark.parametrize("policy", ["bsd", "linux", "first", "last", "windows", "drop-overlap"])
def test_defrag_teardrop_classic(policy):
    """teardrop.c: a last fragment starting inside the first and ending
    before its end. The classic policies ignore it, keeping the datagram."""
    d = Defragmenter(DefragConfig(policy=policy))
    out, notices = feed_all(d, [v4(0, b"t" * 40, proto=17), v4(24, b"t" * 4, False, proto=17)])
    assert out == [] and kinds(notices) == ["DEFRAG_TEARDROP"]
    c = d.counters()
    assert c["teardrop"] == 1 and c["fragments_dropped"] == 1 and d.queues == 1
    assert "teardrop" in notices[0].message


def test_defrag_non_last_fragment_inside_with_other_bytes_is_teardrop():
    d = Defragmenter(DefragConfig(policy="last"))
    out, notices = feed_all(d, [v4(0, b"t" * 40), v4(8, b"X" * 8), v4(40, b"u" * 8, False)])
    assert kinds(notices) == ["DEFRAG_OVERLAP_MISMATCH", "DEFRAG_TEARDROP"]
    assert out[0].ip_payload == b"t" * 8 + b"X" * 8 + b"t" * 24 + b"u" * 8


@pytest.mark.parametrize("policy", ["bsd", "linux-current"])
@pytest.mark.parametrize("size", [8, 16])
def test_defrag_tiny_first_fragment(policy, size):
    """RFC 1858: TCP flags pushed into the second fragment."""
    d = Defragmenter(DefragConfig(policy=policy))
    _, notices = feed_all(d, [v4(0, b"\x50" * size, proto=6)])
    assert kinds(notices) == ["DEFRAG_TINY_FRAGMENT"] and d.counters()["tiny"] == 1
    assert notices[0].message.startswith(
        f"tiny first fragment ({size} bytes, transport header needs 20)")
    _, notices = feed_all(d, [v4(0, b"x" * 24, proto=6, id=2), v4(0, b"x" * 8, proto=17, id=3)])
    assert notices == []


def test_defrag_tiny_udp_first_fragment():
    d = Defragmenter()
    _, notices = feed_all(d, [v4(0, b"u" * 4, proto=17)])
    assert kinds(notices)[0] == "DEFRAG_TINY_FRAGMENT"


@pytest.mark.parametrize("policy", ["bsd", "linux-current"])
def test_defrag_too_many_fragments(policy):
    d = Defragmenter(DefragConfig(policy=policy, max_frags=4))
    out, notices = feed_all(d, [v4(off, b"m" * 8) for off in range(0, 40, 8)])
    assert out == [] and kinds(notices) == ["DEFRAG_TOO_MANY_FRAGMENTS"]
    assert d.counters()["too_many"] == 1 and d.queues == 0


def test_defrag_overlap_flood_in_one_datagram_is_cut_off():
    """Under "last" every repeat wins; max_frags bounds the work."""
    d = Defragmenter(DefragConfig(policy="last", max_frags=100))
    out, notices = feed_all(d, [v4(0, bytes([i]) * 16) for i in range(101)])
    assert "DEFRAG_TOO_MANY_FRAGMENTS" in kinds(notices) and d.queues == 0


class TestTimeout:
    def test_expires_after_timeout_from_first_fragment(self):
        d = Defragmenter(DefragConfig(timeout=30))
        feed_all(d, [v4(0, b"a" * 8, ts=0.0), v4(16, b"c" * 8, ts=20.0)])
        assert d.expire(29.0) == [] and d.queues == 1
        notices = d.expire(30.5)  # 10.5 s after the last fragment: the host counts from the first
        assert kinds(notices) == ["DEFRAG_TIMEOUT"] and d.queues == 0
        assert notices[0].message == f"incomplete datagram timed out, from {A4} to {B4} (id 1)"
        c = d.counters()
        assert c["timeouts"] == 1 and d.memory == 0 and d.charged == 0

    def test_late_fragment_starts_a_new_datagram(self):
        d = Defragmenter(DefragConfig(timeout=30))
        out, notices = feed_all(d, [v4(0, b"a" * 8, ts=0.0), v4(8, b"b" * 8, False, ts=30.5)])
        assert out == [] and "DEFRAG_TIMEOUT" in kinds(notices) and d.queues == 1

    def test_feed_sweeps_once_per_second(self):
        d = Defragmenter(DefragConfig(timeout=1))
        feed_all(d, [v4(0, b"a" * 8, id=i, ts=0.0) for i in range(10)])
        _, notices = feed_all(d, [v4(0, b"a" * 8, id=99, ts=5.0)])
        assert d.queues == 1 and d.counters()["timeouts"] == 10

    def test_timeout_notices_are_rate_limited_but_all_counted(self):
        d = Defragmenter(DefragConfig(timeout=30))
        feed_all(d, [v4(0, b"a" * 8, id=i, ts=i * 0.01) for i in range(500)])
        notices = d.expire(100.0)
        assert len(notices) == 1 and d.counters()["timeouts"] == 500
        assert notices[0].message.startswith("500 incomplete datagrams timed out, the last from ")
        feed_all(d, [v4(0, b"a" * 8, id=1000, ts=70.0), v4(0, b"a" * 8, id=1001, ts=70.1)])
        assert d.expire(100.05) == [] and d.queues == 1  # counted, not reported yet
        assert d.counters()["timeouts"] == 501
        notices = d.expire(131.0)
        assert len(notices) == 1 and d.counters()["timeouts"] == 502
        assert notices[0].message.startswith("2 incomplete datagrams timed out, the last from ")


class TestMemcap:
    def test_oldest_datagram_evicted_first(self):
        one = DATAGRAM_COST + 200  # a datagram with one small fragment, roughly
        d = Defragmenter(DefragConfig(memcap=5 * one))
        feed_all(d, [v4(0, b"a" * 8, id=i, ts=float(i)) for i in range(20)])
        assert 0 < d.queues < 20 and d.charged <= 5 * one
        assert d.counters()["memcap_evictions"] == 20 - d.queues
        held_ids = sorted(k[2] for k in d._queues)
        assert held_ids == list(range(20 - d.queues, 20))  # the newest survive
        # The evicted datagram's later fragment cannot complete it.
        out, notices = feed_all(d, [v4(8, b"b" * 8, False, id=0, ts=21.0)])
        assert out == [] and "DEFRAG_MEMCAP_EVICT" in kinds(notices)

    def test_one_notice_per_burst(self):
        small = v4(0, b"a" * 8)
        per = DATAGRAM_COST + PIECE_COST + 8 + len(small.raw)  # one 8-byte first fragment
        d = Defragmenter(DefragConfig(memcap=20 * per + 500))
        feed_all(d, [v4(0, b"a" * 8, id=i) for i in range(20)])
        assert d.queues == 20 and d.charged == 20 * per
        _, notices = d.feed(v4(0, b"b" * 1400, id=500))
        assert kinds(notices) == ["DEFRAG_MEMCAP_EVICT"]
        assert "incomplete datagrams evicted" in notices[0].message
        assert d.counters()["memcap_evictions"] == 21 - d.queues >= 2

    def test_single_datagram_cannot_exceed_cap(self):
        cap = 6000
        d = Defragmenter(DefragConfig(memcap=cap))
        for off in range(0, 16000, 1000):
            d.feed(v4(off, b"x" * 1000, id=7))
            assert d.charged <= cap and d.memory <= cap
        assert d.counters()["memcap_evictions"] >= 1

    def test_flood_stays_under_cap_and_a_datagram_in_the_middle_reassembles(self):
        """3,600 distinct incomplete datagrams (fewer than the host's own
        fragment memory holds: past it the host drops the good one too, see
        test_defrag_linux_current); the frames are one decoded template with
        its IP id patched (scapy would take seconds)."""
        cap = 64 * 1024
        n = 3_600
        d = Defragmenter(DefragConfig(memcap=cap))
        template = bytearray(bytes(v4(0, b"f" * 64, id=0, proto=17).raw))
        frames = []
        for i in range(n):
            template[18:20] = i.to_bytes(2, "big")  # Ethernet 14 + IPv4 id at 4
            frames.append(bytes(template))
        pkts = [decode_frame(1, f, i * 6e-4) for i, f in enumerate(frames)]
        good = [v4(0, b"g" * 64, id=4242, src="192.0.2.1", ts=1.0),
                v4(64, b"h" * 8, False, id=4242, src="192.0.2.1", ts=1.0)]
        pkts[n // 2:n // 2] = good
        out, notices = feed_all(d, pkts)
        assert [r.ip_payload for r in out] == [b"g" * 64 + b"h" * 8]
        assert d.charged <= cap and d.memory <= cap
        c = d.counters()
        assert c["memcap_evictions"] == n - d.queues
        assert c["memcap_evictions"] > n - 100
        assert c["host_memory_full"] == 0
        # every eviction counted, reported at most once per second of packet
        # time (the flood spans 2 s): a flood must not flood the logs
        evict = [n for n in notices if n.kind.name == "DEFRAG_MEMCAP_EVICT"]
        assert len(evict) in (1, 2, 3)
        assert "datagrams evicted" in evict[-1].message


def test_defrag_ipv6_misaligned_classic_rounds_down():
    d = Defragmenter(DefragConfig(policy="bsd"))
    out, notices = feed_all(d, [v6(0, b"a" * 13), v6(8, b"b" * 8, False)])
    assert [r.ip_payload for r in out] == [b"a" * 8 + b"b" * 8]
    assert kinds(notices) == ["DEFRAG_BAD_LENGTH"]


@pytest.mark.parametrize("policy", ["bsd", "linux", "windows"])
def test_defrag_classic_last_fragment_conflicts_ignored(policy):
    d = Defragmenter(DefragConfig(policy=policy))
    out, notices = feed_all(d, [v4(0, b"a" * 8), v4(16, b"c" * 8, False),
                                v4(24, b"d" * 8, False),  # another end: ignored
                                v4(24, b"e" * 8),  # past the end: ignored
                                v4(8, b"b" * 8)])
    assert [r.ip_payload for r in out] == [b"a" * 8 + b"b" * 8 + b"c" * 8]
    assert kinds(notices) == ["DEFRAG_BAD_LENGTH", "DEFRAG_BAD_LENGTH"]
    assert d.counters()["fragments_dropped"] == 2
