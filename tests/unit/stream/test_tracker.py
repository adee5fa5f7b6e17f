"""Datagram flow state: alert-once keys, idle expiry and the size cap."""

from pakemon.decode import decode_frame
from pakemon.lab.traffic import udp_frame
from pakemon.stream import StreamTracker
from pakemon.stream.tracker import DGRAM_TIMEOUT_S

C, S = "10.0.0.1", "10.0.0.2"


def dgram(ts=0.0, cport=1000):
    return decode_frame(1, udp_frame(C, S, cport, 53, b"q"), ts)


def test_same_flow_same_state_and_idle_flow_starts_afresh():
    st = StreamTracker()
    d = st.dgram(17, dgram(0.0))
    d.alerted += (3,)
    assert st.dgram(17, dgram(1.0)) is d and d.alerted == (3,)
    again = st.dgram(17, dgram(DGRAM_TIMEOUT_S + 10))
    assert again.alerted == () and st.table.expired == 1


def test_idle_flows_expire_on_sweep_and_table_is_capped():
    st = StreamTracker(max_flows=2)
    for port in (1, 2, 3):
        st.dgram(17, dgram(0.0, cport=port))
    assert len(st.table) == 2 and st.table.evicted == 1
    st.dgram(17, dgram(DGRAM_TIMEOUT_S + 100, cport=4))
    assert st.table.expired == 2 and len(st.table) == 1


def test_flow_counters_each_way_by_first_sender():
    from pakemon.lab.traffic import icmp_frame
    from pakemon.stream import FlowCounters
    from pakemon.stream.tracker import (FC_BYTES_TC, FC_BYTES_TS, FC_PKTS_TC, FC_PKTS_TS,
                                        FC_START)

    fc = FlowCounters()
    q = dgram(1.0)
    f = fc.count(q)
    answer = decode_frame(1, udp_frame(S, C, 53, 1000, b"answer!"), 1.5)
    assert fc.count(answer) is f
    assert (f[FC_PKTS_TS], f[FC_PKTS_TC], f[FC_START]) == (1, 1, 1.0)
    assert (f[FC_BYTES_TS], f[FC_BYTES_TC]) == (q.frame_len, answer.frame_len)
    assert q.flow == (f, True) and answer.flow == (f, False)
    # ICMP: one flow per address pair, whatever the type (request, reply)
    req = decode_frame(1, icmp_frame(S, C, 8, 0, b"\0\1\0\1ping"), 2.0)
    rep = decode_frame(1, icmp_frame(C, S, 0, 0, b"\0\1\0\1ping"), 2.1)
    g = fc.count(req)
    assert fc.count(rep) is g and g is not f and (g[FC_PKTS_TS], g[FC_PKTS_TC]) == (1, 1)
    # idle past the datagram timeout: a new flow, its own start
    later = dgram(1.0 + DGRAM_TIMEOUT_S + 1)
    h = fc.count(later)
    assert h is not f and (h[FC_PKTS_TS], h[FC_PKTS_TC], h[FC_START]) == (1, 0, later.ts)


def test_flow_counters_capped_and_evictions_counted():
    from pakemon.stream import FlowCounters
    from pakemon.stream.tracker import FC_PKTS_TS

    fc = FlowCounters(max_flows=2)
    first = fc.count(dgram(0.0, cport=1))
    fc.count(dgram(0.0, cport=2))
    fc.count(dgram(0.0, cport=3))
    assert len(fc.flows) == 2 and fc.evicted == 1
    back = fc.count(dgram(0.1, cport=1))  # the oldest went: counted again from 1
    assert back is not first and back[FC_PKTS_TS] == 1 and fc.evicted == 2
