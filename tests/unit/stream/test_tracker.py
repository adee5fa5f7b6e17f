"""The minimal stream stage: sequence-ordered new bytes, expiry, eviction."""

from pakemon.decode import decode_frame
from pakemon.lab.traffic import ACK, PSH, SYN, tcp_frame
from pakemon.stream import StreamTracker
from pakemon.stream.tracker import TCP_TIMEOUT_S

C, S = "10.0.0.1", "10.0.0.2"


def seg(seq, data=b"", flags=PSH | ACK, ts=0.0, cport=1000):
    return decode_frame(1, tcp_frame(C, S, cport, 80, seq, 1, flags, data), ts)


def test_overlapping_retransmission_yields_only_new_bytes():
    st = StreamTracker()
    st.tcp(seg(99, flags=SYN))
    assert st.tcp(seg(100, b"abcd"))[1] == b"abcd"
    assert st.tcp(seg(102, b"cdef"))[1] == b"ef"
    assert st.tcp(seg(100, b"abcdef"))[1] == b""
    assert st.retransmitted == 1


def test_sequence_wraparound():
    st = StreamTracker()
    st.tcp(seg(0xFFFFFFFD, flags=SYN))
    assert st.tcp(seg(0xFFFFFFFE, b"abcd"))[1] == b"abcd"
    assert st.tcp(seg(0xFFFFFFFE, b"abcdxy"))[1] == b"xy"


def test_new_syn_on_same_ports_starts_a_new_connection():
    st = StreamTracker()
    d, _ = st.tcp(seg(99, flags=SYN))
    st.tcp(seg(100, b"abcd"))
    d.alerted.add(1)
    d2, _ = st.tcp(seg(5000, flags=SYN, ts=1.0))
    assert d2 is d and d.alerted == set() and d.hist == b""


def test_idle_directions_expire_and_table_is_capped():
    st = StreamTracker(max_flows=2)
    st.tcp(seg(1, b"a", cport=1))
    st.tcp(seg(1, b"a", cport=2))
    st.tcp(seg(1, b"a", cport=3))
    assert len(st.table) == 2 and st.table.evicted == 1
    st.tcp(seg(1, b"a", ts=TCP_TIMEOUT_S + 100, cport=4))
    assert st.table.expired == 2 and len(st.table) == 1
