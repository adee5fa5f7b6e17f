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


# ------------------------------------------------- the host's fragment memory


def _incomplete(n, ts=0.0):
    """n incomplete datagrams: one 8-byte first fragment each, ids 0x1000 on
    (one frame built, its id patched: the IPv4 header checksum is not
    checked by the defragmenter)."""
    from pakemon.decode import decode_frame

    raw = bytearray(bytes(v4(0, b"#" * 8, id=0).raw))
    out = []
    for i in range(n):
        raw[18:20] = (0x1000 + i).to_bytes(2, "big")
        out.append(decode_frame(1, bytes(raw), ts))
    return out


def _whole(ts):
    return [v4(0, b"a" * 16, id=7, ts=ts), v4(16, b"b" * 8, False, id=7, ts=ts)]


def test_defrag_lc_host_memory_full_drops_even_completing_fragments():
    """inet_frag_find: past ipfrag_high_thresh (4 MB of qsize + truesize)
    nothing is looked up, so a datagram's own fragments are dropped too
    until queues time out. On the live kernel: 4,050 such datagrams leave
    room, 4,100 do not (live cases ipv4_frag_host_memory_*)."""
    d = lc()
    feed_all(d, _incomplete(4100))
    out, notices = feed_all(d, _whole(1.0))
    assert out == []
    assert d.counters()["host_memory_full"] >= 2
    assert kinds(notices) == ["DEFRAG_HOST_MEMORY_FULL"]  # one, however many
    # the incomplete ones time out (30 s): memory again
    out, _ = feed_all(d, _whole(31.0))
    assert [r.ip_payload for r in out] == [b"a" * 16 + b"b" * 8]


def test_defrag_lc_host_memory_nearly_full_leaves_room():
    d = lc()
    feed_all(d, _incomplete(4050))
    out, _ = feed_all(d, _whole(1.0))
    assert len(out) == 1 and d.counters()["host_memory_full"] == 0


def test_defrag_host_memory_is_linux_current_only():
    d = Defragmenter(DefragConfig(policy="linux"))
    feed_all(d, _incomplete(4100))
    out, _ = feed_all(d, _whole(1.0))
    assert len(out) == 1


def test_host_truesize_steps_as_measured():
    from pakemon.defrag.tracker import HOST_FRAG_QSIZE, host_truesize

    # (frame length, queue + one fragment) as measured on the live kernel
    for family, frame, cost in ((4, 42, 1032), (4, 234, 1032), (4, 242, 1481),
                                (4, 682, 1481), (4, 690, 2504), (4, 1434, 2504),
                                (6, 70, 1016), (6, 262, 1464), (6, 1462, 2488)):
        assert abs(HOST_FRAG_QSIZE[family] + host_truesize(frame) - cost) <= 8, frame


def test_defrag_lc_datagrams_this_memcap_evicted_still_fill_the_host():
    """A sensor memcap smaller than the host's: what it evicts the host
    still holds until the datagram's timer fires."""
    d = lc(memcap=64 * 1024)
    feed_all(d, _incomplete(4100))
    assert d.counters()["memcap_evictions"] > 3900
    out, _ = feed_all(d, _whole(1.0))
    assert out == [] and d.counters()["host_memory_full"] >= 2
    out, _ = feed_all(d, _whole(31.0))
    assert len(out) == 1


def test_defrag_lc_each_host_has_its_own_fragment_memory():
    """A capture can hold traffic to many hosts, each with its own 4 MB:
    one host's full fragment memory drops nothing sent to another."""
    d = lc()
    feed_all(d, _incomplete(4100))  # to B4, whose memory is then full
    full = d.counters()["host_memory_full"]
    out, _ = feed_all(d, [v4(0, b"a" * 16, id=7, dst="10.0.0.3", ts=1.0),
                          v4(16, b"b" * 8, False, id=7, dst="10.0.0.3", ts=1.0)])
    assert len(out) == 1 and d.counters()["host_memory_full"] == full
    out, _ = feed_all(d, _whole(1.0))  # to B4
    assert out == [] and d.counters()["host_memory_full"] == full + 2
