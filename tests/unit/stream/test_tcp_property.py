"""Property: with consistent bytes, no segmentation, order or duplication
changes what is delivered, under any policy (the Pakemon claim for the
benign case: disorder and duplication alone cannot hide or alter data)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from test_tcp_support import ACK, FIN, PA, Lab

from pakemon.config import STREAM_POLICIES


@st.composite
def shuffled_segments(draw):
    data = draw(st.binary(min_size=1, max_size=200))
    n = len(data)
    # a segmentation covering the whole stream ...
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=12)) if n > 1 else []))
    bounds = [0] + cuts + [n]
    ranges = list(zip(bounds, bounds[1:]))
    # ... plus duplicates and overlapping retransmissions of any extent
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n)), max_size=10))
    ranges += [(a, min(n, a + ln)) for a, ln in extra]
    order = draw(st.permutations(ranges))
    fin = draw(st.booleans())
    isn = draw(st.sampled_from([0, 1000, 0xFFFFFFFF - 50, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1))
    policy = draw(st.sampled_from(STREAM_POLICIES))
    acks = draw(st.booleans())
    return data, order, fin, isn, policy, acks


@settings(max_examples=200, deadline=None)
@given(shuffled_segments())
def test_any_order_and_duplication_of_consistent_bytes_delivers_the_stream(case):
    data, order, fin, isn, policy, acks = case
    lab = Lab(policy=policy, cisn=isn).handshake()
    for a, b in order:
        flags = PA | FIN if fin and b == len(data) else PA
        lab.c(a, data[a:b], flags=flags)
        if acks:
            # the server acknowledges what it has read so far, as it would
            (s,) = lab.r._sessions
            lab.s(0, flags=ACK, ack=s.client.off if not s.client.fin_done else len(data) + 1)
        check_accounting(lab.r)
    lab.flush()
    assert lab.stream() == data
    assert [g for _, g in lab.pieces()] == [False] * len(lab.pieces())
    c = lab.counters
    assert c["overlap_mismatches"] == 0 and c["gaps"] == 0
    assert lab.r.memory == 0


def check_accounting(r):
    """memory is the sum of the queues; each queue is sorted past rcv_nxt."""
    total = 0
    for s in r._sessions:
        for d in (s.client, s.server):
            held = sum(it[1] - it[0] for it in d.q if it[2] is not None)
            items = sum(1 for it in d.q if it[2] is not None)
            assert d.qbytes == held + items * r.item_cost
            held += items * r.item_cost
            assert all(it[0] > d.off for it in d.q)
            assert [it[0] for it in d.q] == sorted(it[0] for it in d.q)
            total += held
    assert r.memory == total


@st.composite
def conflicting_segments(draw):
    n = draw(st.integers(1, 120))
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=8)) if n > 1 else []))
    bounds = [0] + cuts + [n]
    ranges = list(zip(bounds, bounds[1:]))
    ranges += [(a, min(n, a + ln)) for a, ln in
               draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n)), max_size=8))]
    segs = [(a, draw(st.binary(min_size=b - a, max_size=b - a))) for a, b in ranges]
    order = draw(st.permutations(segs))
    policy = draw(st.sampled_from(STREAM_POLICIES))
    return n, order, policy


@settings(max_examples=200, deadline=None)
@given(conflicting_segments())
def test_conflicting_overlaps_deliver_each_byte_once_from_some_segment(case):
    """Whatever the policy picks, every offset is read once, and its byte is
    one that some segment carried there: nothing invented, nothing lost."""
    n, order, policy = case
    lab = Lab(policy=policy).handshake()
    for a, data in order:
        lab.c(a, data)
        check_accounting(lab.r)
    lab.flush()
    out = lab.stream()
    assert len(out) == n
    for i, byte in enumerate(out):
        assert any(a <= i < a + len(d) and d[i - a] == byte for a, d in order), i
    if lab.counters["overlap_mismatches"] == 0:
        # no report: then no two segments disagreed anywhere
        for i in range(n):
            assert len({d[i - a] for a, d in order if a <= i < a + len(d)}) == 1, i


_OPTS = [b"", tsopt_bytes := b"\x01\x01\x08\x0a\x00\x00\x00\x05\x00\x00\x00\x00",
         b"\x02\x04\x05\xb4\x01\x03\x03\x07", b"\x13\x12" + b"k" * 16, b"\x08\x0a\x00", b"\x22\x02"]


@st.composite
def random_traffic(draw):
    segs = draw(st.lists(st.tuples(
        st.booleans(),  # from the client
        st.integers(0, 0x3F),  # flags (FIN SYN RST PSH ACK URG)
        st.sampled_from([0, 1, 2, 5, 40, 0xFFFFFFFE, 0xFFFFFFFF]) | st.integers(0, 80),
        st.sampled_from([0, 1, 3, 40]) | st.integers(0, 80),
        st.binary(max_size=12),
        st.sampled_from(range(len(_OPTS))),
        st.integers(0, 4),  # urgent pointer
        st.sampled_from([0, 1, 8, 65535]),  # window
    ), max_size=40))
    policy = draw(st.sampled_from(STREAM_POLICIES))
    cfg = draw(st.fixed_dictionaries({
        "midstream": st.booleans(), "async_oneside": st.booleans(),
        "queue_limit": st.sampled_from([8, 64, 4096]), "memcap": st.sampled_from([16, 1 << 20]),
        "depth": st.sampled_from([0, 5, 1000]), "max_sessions": st.sampled_from([1, 10]),
    }))
    buffered = draw(st.sampled_from(["both", "client", "none"]))
    return segs, policy, cfg, buffered


@settings(max_examples=200, deadline=None)
@given(random_traffic())
def test_random_segments_never_break_the_reassembler(case):
    from test_tcp_support import frame

    from pakemon.events import Notice
    from pakemon.stream.tcp import StreamBypass, StreamData

    segs, policy, cfg, buffered = case
    classify = {"both": None, "client": (lambda d: d.dport == 80), "none": (lambda d: ())}
    lab = Lab(policy=policy, classify=classify[buffered], cisn=0xFFFFFFF0, **cfg)
    for from_c, flags, seq, ack, data, oi, urg, win in segs:
        if from_c:
            f = frame("10.0.0.1", "10.0.0.2", 40000, 80, lab.cisn + seq, lab.sisn + ack, flags,
                      data, window=win, options=_OPTS[oi], urgent=urg)
        else:
            f = frame("10.0.0.2", "10.0.0.1", 80, 40000, lab.sisn + seq, lab.cisn + ack, flags,
                      data, window=win, options=_OPTS[oi], urgent=urg)
        for e in lab.feed_frame(f):
            assert isinstance(e, (StreamData, StreamBypass, Notice))
        check_accounting(lab.r)
        assert lab.r.memory <= cfg["memcap"]
        assert all(d.qbytes <= cfg["queue_limit"] for s in lab.r._sessions
                   for d in (s.client, s.server))
    lab.flush()
    assert lab.r.memory == 0 and lab.r.sessions == 0
    depth = cfg["depth"]
    for e in lab.events:
        if isinstance(e, StreamData):
            assert e.data and (depth == 0 or e.direction.delivered <= depth)
            assert e.direction.nodes
