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
