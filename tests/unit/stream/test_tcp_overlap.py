"""Overlapping out-of-order segments, per receiving policy.

The patterns are Suricata's (src/tests/stream-tcp-list.c, after Novak &
Sturges): segments at stream offsets (1 = ISN + 1) sent out of order, with
each policy's final buffer ("\\0" = a hole). Where Suricata's pattern starts
with in-order data ("same", "after"), everything is moved one byte on and
the first byte ("0") is sent last, so every overlap is between queued
segments: a receiver never replaces bytes its application already read.
The expected delivery is the buffer's runs, a gap between runs.
"""

import pytest
from test_tcp_support import Lab

from pakemon.config import STREAM_POLICIES
from pakemon.events import NoticeKind as K
from pakemon.lab.traffic import ACK
from pakemon.stream.tcp import StreamData, StreamRewrite

MAIN = [(2, "AAA"), (6, "BB"), (8, "CCC"), (12, "D"), (15, "EE"), (17, "FFF"), (20, "GG"),
        (22, "HH"), (24, "I"), (3, "JJJJ"), (8, "KKK"), (11, "LLL"), (14, "MMM"), (18, "N"),
        (21, "O"), (22, "P"), (24, "QQ"), (1, "0")]
BEFORE = [(3, "B"), (9, "D"), (12, "EE"), (2, "AA"), (1, "JJJJ"), (8, "LLL"), (11, "MMM")]
SAME = [(1, "CCC"), (15, "HH"), (17, "II"), (1, "KKK"), (1, "LLLL"), (15, "P"), (15, "QQ")]
AFTER = [(1, "AA"), (16, "FFF"), (19, "GG"), (2, "JJ"), (20, "O"), (17, "N")]
PATTERNS = {"main": (MAIN, 0), "before": (BEFORE, 0), "same": (SAME, 1), "after": (AFTER, 1)}

Z = "\0"
# Final buffers from Suricata's tests ("same"/"after" before the shift).
BSD = {"main": "0AAAJJBCCCLLLMMMFFFGGHHIQ", "before": "JJJJ" + Z * 3 + "LLLMMM",
       "same": "CCCL" + Z * 10 + "HHII", "after": "AAJ" + Z * 12 + "FFFGG"}
VISTA = {"main": "0AAAJBBCCCLDLMEEFFFGGHHIQ", "before": "JABJ" + Z * 3 + "LDLMEE",
         "same": "CCCL" + Z * 10 + "HHII", "after": "AAJ" + Z * 12 + "FFFGG"}
LINUX = {"main": "0AAAJJBCCCLLLMMMFFFGGHHQQ", "before": "JJJJ" + Z * 3 + "LLLMMM",
         "same": "LLLL" + Z * 10 + "HHII", "after": "AAJ" + Z * 12 + "FFFGG"}
OLD_LINUX = {"main": "0AAAJJBKKKLLLMMMFFFGGHHQQ", "before": "JJJJ" + Z * 3 + "LLLMMM",
             "same": "LLLL" + Z * 10 + "QQII", "after": "AAJ" + Z * 12 + "FFFGG"}
SOLARIS = {"main": "0AJJJBBKKKLLLMMMFFFGGHHQQ", "before": "JJJJ" + Z * 3 + "LLLMMM",
           "same": "LLLL" + Z * 10 + "QQII", "after": "AJJ" + Z * 12 + "FFFGG"}
LAST = {"main": "0AJJJJBKKKLLLMMMFNFGOPHQQ", "before": "JJJJ" + Z * 3 + "LLLMMM",
        "same": "LLLL" + Z * 10 + "QQII", "after": "AJJ" + Z * 12 + "FNFGO"}


def deliver(policy, pattern):
    steps, shift = PATTERNS[pattern]
    lab = Lab(policy=policy).handshake()
    for rseq, data in steps:
        lab.c(rseq - 1 + shift, data.encode())
    if shift:
        lab.c(0, b"0")
    lab.flush()
    return lab


def expected_runs(buffer, shift):
    if shift:
        buffer = "0" + buffer
    return [run.encode() for run in buffer.split(Z) if run]


def check(policy, table):
    for pattern, buffer in table.items():
        lab = deliver(policy, pattern)
        assert lab.runs() == expected_runs(buffer, PATTERNS[pattern][1]), (policy, pattern)


def test_tcp_overlap_bsd():
    check("bsd", BSD)


def test_tcp_overlap_hpux10():
    check("hpux10", BSD)


def test_tcp_overlap_irix():
    check("irix", BSD)


def test_tcp_overlap_macos():
    check("macos", BSD)


def test_tcp_overlap_windows():
    check("windows", BSD)


def test_tcp_overlap_windows2k3():
    check("windows2k3", BSD)


def test_tcp_overlap_vista():
    check("vista", VISTA)


def test_tcp_overlap_first():
    check("first", VISTA)


def test_tcp_overlap_linux():
    check("linux", LINUX)


def test_tcp_overlap_old_linux():
    check("old-linux", OLD_LINUX)


def test_tcp_overlap_solaris():
    check("solaris", SOLARIS)


def test_tcp_overlap_hpux11():
    check("hpux11", SOLARIS)


def test_tcp_overlap_last():
    check("last", LAST)


SURICATA_TABLES = {"bsd": BSD, "hpux10": BSD, "irix": BSD, "macos": BSD, "windows": BSD,
                   "windows2k3": BSD, "vista": VISTA, "first": VISTA, "linux": LINUX,
                   "old-linux": OLD_LINUX, "solaris": SOLARIS, "hpux11": SOLARIS, "last": LAST}


def _as_read_then_rewritten(lab) -> str:
    """The client's stream as the Suricata engine inspects it: what was read,
    with the StreamRewrite replacements (kept in the direction's history)."""
    d = next(e.direction for e in lab.events
             if isinstance(e, StreamData) and e.direction.sport == lab.cport)
    got = {off + i: b for off, data in d.hist for i, b in enumerate(data)}
    return "".join(chr(got[i]) if i in got else Z for i in range(max(got) + 1))


@pytest.mark.parametrize("policy", sorted(SURICATA_TABLES))
@pytest.mark.parametrize("pattern", ["same", "after"])
def test_unacked_in_order_bytes_follow_suricatas_policy(policy, pattern):
    """Suricata's own "same" and "after" patterns as its tests send them,
    the first segment in order: the host read it at once, and a later copy
    over it is a retransmission to the reassembler (delivered runs keep the
    first bytes), but Suricata applies its policies to every segment it
    holds un-ACKed (no ACK comes here), so the bytes the Suricata engine
    inspects (StreamRewrite) are its final buffer exactly."""
    steps, _ = PATTERNS[pattern]
    lab = Lab(policy=policy).handshake()
    for rseq, data in steps:
        lab.c(rseq - 1, data.encode())
    lab.flush()
    assert _as_read_then_rewritten(lab) == SURICATA_TABLES[policy][pattern]
    first = steps[0][1].encode()
    assert lab.runs()[0][:len(first)] == first  # (what the host read)
    rewrites = [e for e in lab.events if isinstance(e, StreamRewrite)]
    assert bool(rewrites) == (SURICATA_TABLES[policy][pattern][:len(first)] != first.decode())


def test_acked_bytes_are_not_rewritten():
    """Once the receiver ACKed bytes, Suricata has inspected them: a later
    copy changes nothing, whatever the policy."""
    lab = Lab(policy="last").handshake()
    lab.c(0, b"GOOD")
    lab.s(0, flags=ACK, ack=4)
    lab.c(0, b"EVIL")
    assert not [e for e in lab.events if isinstance(e, StreamRewrite)]
    lab = Lab(policy="last").handshake()
    lab.c(0, b"GOOD")
    lab.s(0, flags=ACK, ack=2)  # "GO" ACKed, "OD" not yet
    lab.c(0, b"EVIL")
    assert [(e.at, e.data) for e in lab.events if isinstance(e, StreamRewrite)] == [(2, b"IL")]
    assert lab.runs() == [b"GOOD"]


def test_linux_current_never_rewrites():
    """The default models the kernel: read bytes are read (tcp_data_queue
    drops the later copy as a duplicate, a notice says it differed)."""
    lab = Lab(policy="linux-current").handshake()
    lab.c(0, b"GOOD")
    lab.c(0, b"EVIL")
    assert not [e for e in lab.events if isinstance(e, StreamRewrite)]
    assert lab.runs() == [b"GOOD"]
    assert lab.notices(K.STREAM_OVERLAP_MISMATCH)


# linux-current: today's tcp_data_queue_ofo / tcp_ofo_queue, traced by hand.
LINUX_CURRENT = {
    # Adjacent segments coalesce: BB+CCC = 6..11, EE+FFF+GG+HH+I = 15..25.
    # JJJJ@3 partly over AAA@2: kept, AAA (lower start) wins 3..4, J fills 5,
    # and J (lower start than BBCCC) wins 6. KKK@8 inside BBCCC: dropped.
    # LLL@11 coalesces onto BBCCC (it starts at its end) and so wins over
    # D@12. MMM@14 is kept and wins 15..16 over the EE.. item. N, O, P lie
    # inside queued data: dropped. QQ@24 starts inside the coalesced
    # 15..25 item, so it is a partial overlap, not I's replacement: I stays.
    "main": "0AAAJJBCCCLLLMMMFFFGGHHIQ",
    # AA@2 partly over B@3: AA wins. JJJJ@1 is in order: it wins over all
    # it overlaps. LLL@8 covers D@9: removed. MMM@11 covers EE@12: removed.
    "before": "JJJJ" + Z * 3 + "LLLMMM",
    # KKK@1 inside CCC@1: dropped. LLLL@1 same start, covers: replaces.
    # HH@15 and II@17 coalesce: P@15 and QQ@15 lie inside: dropped.
    "same": "LLLL" + Z * 10 + "HHII",
    # JJ@2 partial over AA@1: AA wins byte 2. FFF@16, GG@19 coalesce into
    # one item 16..20; O@20 and N@17 lie inside it: dropped.
    "after": "AAJ" + Z * 12 + "FFFGG",
}


def test_tcp_overlap_linux_current():
    check("linux-current", LINUX_CURRENT)


def test_tcp_overlap_every_policy_is_covered():
    covered = {"bsd", "hpux10", "irix", "macos", "windows", "windows2k3", "vista", "first",
               "linux", "old-linux", "solaris", "hpux11", "last", "linux-current"}
    assert covered == set(STREAM_POLICIES)


# ------------------------------------------- linux-current rule by rule


def lc(*segments, policy="linux-current"):
    """Send (offset, data) segments after a handshake, then byte 0..first."""
    lab = Lab(policy=policy).handshake()
    for off, data in segments:
        lab.c(off, data)
    return lab


def test_tcp_overlap_linux_current_inside_an_existing_segment_is_dropped():
    lab = lc((2, b"abcdef"), (3, b"XY"), (0, b"01"))
    assert lab.stream() == b"01abcdef"


def test_tcp_overlap_linux_current_same_start_covering_replaces():
    lab = lc((2, b"abc"), (2, b"XYZW"), (0, b"01"))
    assert lab.stream() == b"01XYZW"


def test_tcp_overlap_linux_current_same_start_shorter_is_dropped():
    lab = lc((2, b"abcd"), (2, b"XY"), (0, b"01"))
    assert lab.stream() == b"01abcd"


def test_tcp_overlap_linux_current_starting_before_and_covering_removes():
    lab = lc((4, b"cd"), (7, b"f"), (2, b"XYZWVU"), (0, b"01"))
    assert lab.stream() == b"01XYZWVU"


def test_tcp_overlap_linux_current_partial_overlap_lower_start_wins():
    lab = lc((4, b"cdef"), (2, b"XYZW"), (0, b"01"))  # new starts first: it wins 4..5
    assert lab.stream() == b"01XYZWef"
    lab = lc((2, b"abcd"), (4, b"XYZW"), (0, b"01"))  # queued starts first: it wins
    assert lab.stream() == b"01abcdZW"


def test_tcp_overlap_linux_current_in_order_data_wins_over_queued():
    lab = lc((2, b"abcd"), (0, b"0123"))
    assert lab.stream() == b"0123cd"
    assert lab.counters["overlap_mismatches"] == 1


def test_tcp_overlap_linux_current_adjacent_segments_coalesce():
    """Coalesced into one skb, a later segment with the first one's start and
    the second one's end is 'all bits present', not a replacement."""
    lab = lc((2, b"ab"), (4, b"cd"), (2, b"WXYZ"), (0, b"01"))
    assert lab.stream() == b"01abcd"
    lab = lc((2, b"ab"), (6, b"ef"), (2, b"WXYZ"), (0, b"01"))  # not adjacent: replaced
    assert lab.stream() == b"01WXYZef"


def test_tcp_overlap_old_data_is_never_replaced_by_a_retransmission():
    for policy in STREAM_POLICIES:
        lab = lc((0, b"abcd"), (0, b"XYZWV"), policy=policy)
        assert lab.stream() == b"abcdV", policy
        assert lab.counters["overlap_mismatches"] == 1, policy
        (n,) = lab.notices(K.STREAM_OVERLAP_MISMATCH)
        assert n.message.endswith("from 10.0.0.1:40000 to 10.0.0.2:80")


@pytest.mark.parametrize("policy", STREAM_POLICIES)
def test_tcp_overlap_mismatch_reported_whatever_the_policy(policy):
    lab = lc((4, b"abcd"), (2, b"XYZW"), (0, b"01"), policy=policy)
    assert lab.counters["overlaps"] >= 1 and lab.counters["overlap_mismatches"] == 1
    assert len(lab.notices(K.STREAM_OVERLAP_MISMATCH)) == 1


@pytest.mark.parametrize("policy", STREAM_POLICIES)
def test_tcp_overlap_same_bytes_is_no_mismatch(policy):
    lab = lc((4, b"4567"), (2, b"2345"), (0, b"01"), (1, b"12"), policy=policy)
    assert lab.stream() == b"01234567"
    assert lab.counters["overlaps"] >= 2 and lab.counters["overlap_mismatches"] == 0
    assert lab.notices(K.STREAM_OVERLAP_MISMATCH) == []


def test_tcp_overlap_novak_sturges_classic_per_policy():
    """The 'first vs last' split the paper is about: one OOO segment, then a
    second covering it with other bytes, then the hole filled."""
    results = {}
    for policy in STREAM_POLICIES:
        lab = lc((1, b"xx"), (1, b"ATTACK"), (0, b"<"), policy=policy)
        results[policy] = lab.stream()
    old = b"<xxTACK"
    new = b"<ATTACK"
    assert results == {
        "first": old, "vista": old, "bsd": old, "hpux10": old, "irix": old, "macos": old,
        "windows": old, "windows2k3": old,
        "linux": new, "old-linux": new, "solaris": new, "hpux11": new, "last": new,
        "linux-current": new,
    }


def test_tcp_overlap_linux_current_descent_meets_an_ancestor_first():
    """The kernel decides at the first queued segment its rbtree descent
    meets: 'hf'@17 is the root, the decoy @18 (a partial overlap) its right
    child; 'j'@19 and 'wxyz'@20 meet 'hf' first and coalesce into it, so the
    real bytes win. The nearest start (the decoy) would drop them. Checked
    against Linux 6.18 (live case tcp_ofo_coalesce_into_ancestor)."""
    lab = lc((17, b"hf"), (18, b"VQHAMG"), (19, b"j"), (20, b"wxyz"),
             (0, b"0123456789abcdefg"))
    assert lab.stream() == b"0123456789abcdefghfjwxyz"


@pytest.mark.parametrize("seed", range(30))
def test_tcp_linux_current_tree_mirrors_the_queue(seed):
    """Whatever arrives, drains, is pruned or replaced: the rbtree holds
    exactly the queued items, in order, and the delivered bytes are a
    prefix-consistent stream (every byte delivered once)."""
    import random

    rng = random.Random(seed)
    lab = Lab(queue_limit=rng.choice((64, 4096))).handshake()
    d = next(x for x in lab.r._dirs.values() if x.buffer and x.sport == lab.cport)
    n = 200
    for _ in range(150):
        a = rng.randrange(1, n)
        b = min(n, a + rng.randint(1, 12))
        lab.c(a, bytes(rng.choice(b"abcXYZ") for _ in range(b - a)))
        if d.ofo is not None:
            assert d.ofo.items() == d.q and all(x is y for x, y in zip(d.ofo.items(), d.q))
        assert all(d.q[i][0] < d.q[i + 1][0] for i in range(len(d.q) - 1))
    lab.c(0, b"<")
    assert d.ofo is None or d.ofo.items() == d.q
    assert len(lab.stream()) == d.off
