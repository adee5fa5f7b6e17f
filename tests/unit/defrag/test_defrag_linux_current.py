"""linux-current: today's Linux (4.19 to 6.x) rule by rule.

Each test names the kernel code it models: inet_frag_queue_insert
(net/ipv4/inet_fragment.c), ip_frag_queue / ip_frag_too_far / ip_frag_reasm
(net/ipv4/ip_fragment.c), ipv6_frag_rcv / ip6_frag_queue / ip6_frag_reasm
(net/ipv6/reassembly.c).
"""

import pytest

from defrag_frames import feed_all, frag, kinds, v4, v6
from pakemon.config import DefragConfig
from pakemon.defrag import Defragmenter


def lc(**kw):
    return Defragmenter(DefragConfig(policy="linux-current", **kw))


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_lc_partial_overlap_discards_datagram(family):
    """IPFRAG_OVERLAP -> inet_frag_kill, even with identical bytes."""
    d = lc()
    data = bytes(range(24))
    out, notices = feed_all(d, [frag(family, 0, data[:16]), frag(family, 8, data[8:24])])
    assert out == [] and d.queues == 0
    assert kinds(notices) == ["DEFRAG_OVERLAP"]
    c = d.counters()
    assert c["discarded"] == 1 and c["overlaps"] == 1 and c["overlap_mismatches"] == 0
    # The last fragment now starts a new queue that cannot complete.
    out, _ = feed_all(d, [frag(family, 24, b"z" * 8, False)])
    assert out == [] and d.queues == 1


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_lc_fragment_inside_a_run_is_duplicate(family):
    """IPFRAG_DUP: dropped, queue kept; the held (first) bytes win."""
    d = lc()
    out, notices = feed_all(d, [
        frag(family, 0, b"a" * 8), frag(family, 8, b"b" * 8), frag(family, 16, b"c" * 8),
        frag(family, 8, b"X" * 16),  # inside the run [0, 24), different bytes
        frag(family, 24, b"d" * 8, False),
    ])
    assert [r.ip_payload for r in out] == [b"a" * 8 + b"b" * 8 + b"c" * 8 + b"d" * 8]
    assert kinds(notices) == ["DEFRAG_OVERLAP_MISMATCH"]
    c = d.counters()
    assert c["duplicates"] == 1 and c["discarded"] == 0


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_lc_same_fragment_dup_or_overlap_by_arrival_order(family):
    """Runs grow only by in-order appends at the tail: [0,8) then [8,16)
    make one run and [0,16) is a duplicate; [8,16) then [0,8) make two runs
    (the second went through the rb-tree) and [0,16) spans both: overlap."""
    x = frag(family, 0, b"a" * 8 + b"b" * 8)
    last = frag(family, 16, b"c" * 8, False)
    d = lc()
    out, _ = feed_all(d, [frag(family, 0, b"a" * 8), frag(family, 8, b"b" * 8), x, last])
    assert len(out) == 1 and d.counters()["duplicates"] == 1

    d = lc()
    out, notices = feed_all(d, [frag(family, 8, b"b" * 8), frag(family, 0, b"a" * 8), x, last])
    assert out == [] and "DEFRAG_OVERLAP" in kinds(notices)
    assert d.counters()["discarded"] == 1


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_lc_second_last_fragment_with_other_end_discards(family):
    d = lc()
    out, notices = feed_all(d, [frag(family, 16, b"c" * 8, False),
                                frag(family, 24, b"d" * 8, False)])
    assert out == [] and d.queues == 0 and kinds(notices) == ["DEFRAG_BAD_LENGTH"]
    assert d.counters()["discarded"] == 1


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_lc_last_fragment_before_held_data_discards(family):
    d = lc()
    out, notices = feed_all(d, [frag(family, 0, b"a" * 8), frag(family, 16, b"c" * 8),
                                frag(family, 8, b"b" * 4, False)])
    assert out == [] and d.queues == 0 and kinds(notices) == ["DEFRAG_BAD_LENGTH"]


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_lc_data_past_last_fragment_discards(family):
    d = lc()
    out, notices = feed_all(d, [frag(family, 8, b"b" * 8, False), frag(family, 16, b"c" * 8)])
    assert out == [] and d.queues == 0 and kinds(notices) == ["DEFRAG_BAD_LENGTH"]


def test_defrag_lc_ipv4_end_rounded_down():
    """ip_frag_queue: a non-last fragment's end &= ~7, the tail bytes lost."""
    d = lc()
    out, notices = feed_all(d, [v4(0, b"a" * 13), v4(8, b"b" * 8, False)])
    assert [r.ip_payload for r in out] == [b"a" * 8 + b"b" * 8]
    assert d.counters()["truncated"] == 1 and "DEFRAG_BAD_LENGTH" in kinds(notices)


def test_defrag_lc_ipv4_short_non_last_fragment_is_zero_length():
    """5 bytes at offset 8 round down to nothing: end == offset -> discard."""
    d = lc()
    out, notices = feed_all(d, [v4(0, b"a" * 8), v4(8, b"b" * 5)])
    assert out == [] and d.queues == 0 and d.counters()["discarded"] == 1


def test_defrag_lc_ipv6_misaligned_fragment_dropped_queue_kept():
    """ip6_frag_queue: parameter problem, fragment dropped, queue kept."""
    d = lc()
    out, notices = feed_all(d, [v6(0, b"a" * 8), v6(8, b"b" * 13)])
    assert out == [] and d.queues == 1 and "DEFRAG_BAD_LENGTH" in kinds(notices)
    out, _ = feed_all(d, [v6(8, b"b" * 8, False)])
    assert [r.ip_payload for r in out] == [b"a" * 8 + b"b" * 8]


def test_defrag_lc_ping_of_death_ipv4():
    """ip_frag_reasm: ip_hdrlen(head) + q.len > 65535 -> dropped."""
    d = lc()
    frags = [v4(off, b"p" * 1480) for off in range(0, 65120, 1480)]
    frags.append(v4(65120, b"p" * 428, False))  # ends at 65548
    out, notices = feed_all(d, frags)
    assert out == [] and d.queues == 0
    assert kinds(notices).count("DEFRAG_TOO_LARGE") == 1
    c = d.counters()
    assert c["too_large"] == 1 and c["discarded"] == 1 and c["overlaps"] == 0


@pytest.mark.parametrize("policy", ["bsd", "first", "drop-overlap"])
def test_defrag_classic_ping_of_death_fragment_ignored(policy):
    d = Defragmenter(DefragConfig(policy=policy))
    out, notices = feed_all(d, [v4(0, b"a" * 8), v4(65520, b"p" * 100, False)])
    assert kinds(notices) == ["DEFRAG_TOO_LARGE"] and d.counters()["too_large"] == 1
    assert d.queues == 1


def test_defrag_lc_ipv6_fragment_past_65535_dropped():
    d = lc()
    out, notices = feed_all(d, [v6(65528, b"p" * 16, False)])
    assert out == [] and kinds(notices) == ["DEFRAG_TOO_LARGE"]


def test_defrag_lc_ipv6_first_fragment_without_tcp_header():
    """ipv6_frag_rcv / ipv6_frag_thdr_truncated (RFC 7112): a first
    fragment cut inside the TCP header is dropped before fq_find; the
    datagram can still complete with a proper first fragment."""
    d = lc()
    tcp = bytearray(32)
    tcp[12] = 5 << 4  # data offset: 5 words
    tcp = bytes(tcp)
    out, notices = feed_all(d, [v6(0, tcp[:16], nh=6)])
    assert out == [] and d.queues == 0
    assert kinds(notices) == ["DEFRAG_IPV6_INCOMPLETE_CHAIN"]
    out, notices = feed_all(d, [v6(24, tcp[24:], False, nh=6), v6(0, tcp[:16], nh=6)])
    assert out == [] and d.queues == 1 and d.counters()["incomplete_chain"] == 2
    out, _ = feed_all(d, [v6(0, tcp[:24], nh=6)])
    assert len(out) == 1 and out[0].l4 and out[0].proto == 6


def test_defrag_classic_ipv6_incomplete_chain_reported_not_dropped():
    d = Defragmenter(DefragConfig(policy="bsd"))
    out, notices = feed_all(d, [v6(0, b"u" * 8, nh=6)])
    assert kinds(notices) == ["DEFRAG_IPV6_INCOMPLETE_CHAIN"] and d.queues == 1


def test_defrag_lc_ipv6_hop_by_hop_quirk_checks_later_fragments():
    """ipv6_frag_rcv passes the fixed header's next header (Hop-by-Hop) to
    ipv6_frag_thdr_truncated, which then walks the fragment header as an
    options header without reading its offset: a short *last* fragment of
    a TCP datagram is dropped too."""
    d = lc()
    out, notices = feed_all(d, [v6(0, bytes(32), nh=6, hop_by_hop=True),
                                v6(32, b"z" * 4, False, nh=6, hop_by_hop=True)])
    assert out == [] and kinds(notices) == ["DEFRAG_IPV6_INCOMPLETE_CHAIN"]
    # Without the Hop-by-Hop header the same short last fragment is fine.
    d = lc()
    out, _ = feed_all(d, [v6(0, bytes(12) + bytes([0x50]) + bytes(19), nh=6),
                          v6(32, b"z" * 4, False, nh=6)])
    assert len(out) == 1


def test_defrag_lc_mixed_ecn_drops_datagram():
    """ip_frag_reasm: ip_frag_ecn_table[] == 0xff (Not-ECT with CE)."""
    d = lc()
    out, notices = feed_all(d, [v4(0, b"a" * 8, tos=0), v4(8, b"b" * 8, False, tos=3)])
    assert out == [] and d.queues == 0 and d.counters()["ecn_invalid"] == 1
    d = lc()
    out, _ = feed_all(d, [v4(0, b"a" * 8, tos=1), v4(8, b"b" * 8, False, tos=3)])
    assert len(out) == 1  # ECT(1) with CE is fine


def test_defrag_lc_ipfrag_max_dist_reinitialises_queue():
    """ip_frag_too_far: more than 64 fragments from this source to this host
    since the queue's last one -> ip_frag_reinit drops what it held."""
    d = lc()
    feed_all(d, [v4(0, b"a" * 8, id=1)])
    # (end - start) > max, with end - start = fragments in between + 1
    feed_all(d, [v4(0, b"o" * 8, id=100 + i) for i in range(63)])
    out, _ = feed_all(d, [v4(8, b"b" * 8, False, id=1)])
    assert len(out) == 1 and d.counters()["too_far"] == 0  # 63 in between: kept
    feed_all(d, [v4(0, b"a" * 8, id=2)])
    feed_all(d, [v4(0, b"o" * 8, id=200 + i) for i in range(64)])
    out, _ = feed_all(d, [v4(8, b"b" * 8, False, id=2)])
    assert out == [] and d.counters()["too_far"] == 1
    # Other destinations do not count: the kernel's counter is the host's.
    d = lc()
    feed_all(d, [v4(0, b"a" * 8, id=3)])
    feed_all(d, [v4(0, b"o" * 8, id=300 + i, dst="10.0.0.9") for i in range(100)])
    out, _ = feed_all(d, [v4(8, b"b" * 8, False, id=3)])
    assert len(out) == 1


def test_defrag_lc_duplicate_last_fragment_sets_end_but_does_not_complete():
    """ip_frag_queue sets LAST_IN before inet_frag_queue_insert says DUP,
    and only checks for completion after a successful insert."""
    d = lc()
    out, _ = feed_all(d, [v4(0, b"a" * 8), v4(8, b"b" * 8), v4(8, b"b" * 8, False)])
    assert out == [] and d.queues == 1 and d.counters()["duplicates"] == 1


def test_defrag_lc_ipv6_queue_lives_60_seconds():
    """ip6frag_time is 60 s where ipfrag_time is 30 s."""
    d = lc()
    feed_all(d, [v6(0, b"a" * 8, ts=0.0), v4(0, b"a" * 8, ts=0.0)])
    d.expire(45.0)
    assert d.queues == 1 and d.counters()["timeouts"] == 1
    out, _ = feed_all(d, [v6(8, b"b" * 8, False, ts=59.0)])
    assert len(out) == 1


def test_defrag_lc_teardrop_discards():
    d = lc()
    out, notices = feed_all(d, [v4(0, b"t" * 40), v4(24, b"t" * 4, False)])
    assert out == [] and d.queues == 0
    assert kinds(notices) == ["DEFRAG_TEARDROP"] and d.counters()["teardrop"] == 1
