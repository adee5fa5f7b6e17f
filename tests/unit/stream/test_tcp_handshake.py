"""Handshake variants, Fast Open, pickup of open connections, one-sided flows."""

from test_tcp_support import ACK, MSS, SYN, Lab, tsopt, wscale

from pakemon.stream.tcp import ESTABLISHED, SYN_RECV, SYN_SENT


def session(lab):
    (s,) = list(lab.r._sessions)
    return s


def test_three_way_handshake_then_data_both_ways():
    lab = Lab()
    lab.syn()
    assert session(lab).state == SYN_SENT
    lab.synack()
    assert session(lab).state == SYN_RECV
    lab.c(0, flags=ACK)
    assert session(lab).state == ESTABLISHED
    lab.c(0, b"GET / HTTP/1.0\r\n\r\n")
    lab.s(0, b"HTTP/1.0 200 OK\r\n", ack=18)
    assert lab.stream("c") == b"GET / HTTP/1.0\r\n\r\n"
    assert lab.stream("s") == b"HTTP/1.0 200 OK\r\n"
    s = session(lab)
    assert s.client.sport == 40000 and s.server.sport == 80
    assert s.policy == ("linux-current", "linux-current")
    assert s.client.packets == 3 and s.client.delivered == 18


def test_data_on_the_third_packet_establishes():
    lab = Lab()
    lab.syn()
    lab.synack()
    lab.c(0, b"hello")
    assert lab.stream() == b"hello"


def test_simultaneous_open():
    lab = Lab()
    lab.syn()
    lab.s(raw_seq=lab.sisn, raw_ack=0, flags=SYN, options=MSS)  # SYN crosses SYN
    lab.c(raw_seq=lab.cisn, ack=0, flags=SYN | ACK, options=MSS)
    lab.s(raw_seq=lab.sisn, ack=0, flags=SYN | ACK, options=MSS)
    lab.s(0, b"from server", ack=0)
    lab.c(0, b"from client", ack=11)
    assert lab.stream("s") == b"from server"
    assert lab.stream("c") == b"from client"


def test_split_handshake_four_way():
    """Beardsley & Qian: SYN, SYN (no ACK), SYN-ACK from the client, ACK."""
    lab = Lab()
    lab.syn()
    lab.s(raw_seq=lab.sisn, raw_ack=0, flags=SYN, options=MSS)
    lab.c(raw_seq=lab.cisn, ack=0, flags=SYN | ACK, options=MSS)
    lab.s(0, flags=ACK, ack=0)  # the server completes it
    s = session(lab)
    assert s.state == ESTABLISHED and s.split and s.client.sport == 40000
    lab.s(0, b"220 ready\r\n")
    lab.c(0, b"HELO x\r\n", ack=11)
    assert lab.stream("s") == b"220 ready\r\n" and lab.stream("c") == b"HELO x\r\n"


def test_split_handshake_five_way():
    """SYN, ACK (no SYN), SYN, SYN-ACK, ACK: the early bare ACK changes nothing."""
    lab = Lab()
    lab.syn()
    lab.s(raw_seq=lab.sisn, ack=0, flags=ACK)
    assert session(lab).state == SYN_SENT
    lab.s(raw_seq=lab.sisn, raw_ack=0, flags=SYN, options=MSS)
    lab.c(raw_seq=lab.cisn, ack=0, flags=SYN | ACK, options=MSS)
    lab.s(0, flags=ACK, ack=0)
    lab.c(0, b"data")
    assert lab.stream("c") == b"data"
    assert lab.counters["handshake_ignored"] == 1


def test_synack_with_wrong_ack_is_ignored():
    lab = Lab()
    lab.syn()
    lab.s(raw_seq=lab.sisn, raw_ack=lab.cisn + 77, flags=SYN | ACK, options=MSS)
    assert session(lab).state == SYN_SENT
    assert lab.counters["handshake_ignored"] == 1


def test_server_data_before_the_clients_ack_is_ignored_without_async_oneside():
    lab = Lab()
    lab.syn()
    lab.synack()
    lab.s(0, b"early")
    assert lab.stream("s") == b"" and lab.counters["handshake_ignored"] == 1
    lab.c(0, flags=ACK)
    lab.s(0, b"early")
    assert lab.stream("s") == b"early"


def test_fast_open_data_delivered_when_the_synack_acknowledges_it():
    lab = Lab()
    lab.syn(options=MSS + b"\x22\x0a" + b"c" * 8, data=b"GET /tfo")
    assert lab.stream() == b""  # waiting for the SYN-ACK's verdict
    lab.synack(ack=8)
    assert lab.stream() == b"GET /tfo"
    lab.c(8, b" HTTP/1.0\r\n", ack=0)
    assert lab.stream() == b"GET /tfo HTTP/1.0\r\n"


def test_fast_open_data_not_acknowledged_is_dropped_and_retransmitted():
    """linux-current default: no TFO on the server, the SYN-ACK acks the SYN only."""
    lab = Lab()
    lab.syn(data=b"EVIL")
    lab.synack(ack=0)
    assert lab.stream() == b"" and lab.counters["syn_data_dropped"] == 1
    lab.c(0, b"GOOD")  # the client retransmits what it really sends
    assert lab.stream() == b"GOOD"


def test_fast_open_one_sided_decided_by_the_next_client_segment():
    taken = Lab(async_oneside=True)
    taken.syn(data=b"abc")
    taken.c(3, b"def")
    assert taken.stream() == b"abcdef"
    retried = Lab(async_oneside=True)
    retried.syn(data=b"abc")
    retried.c(0, b"xyz")
    assert retried.stream() == b"xyz"


def test_synack_data_read_only_by_a_client_that_tried_fast_open():
    plain = Lab()
    plain.syn()
    plain.synack(data=b"banner")
    plain.c(0, flags=ACK)
    assert plain.stream("s") == b""
    tfo = Lab()
    tfo.syn(options=MSS + b"\x22\x02")
    tfo.synack(data=b"banner")
    assert tfo.stream("s") == b"banner"


def test_midstream_pickup_on():
    lab = Lab()
    lab.c(100, b"middle of a stream", ack=50)
    lab.s(50, b"reply", ack=118)
    lab.c(118, b" and more", ack=55)
    s = session(lab)
    assert s.midstream and s.state == ESTABLISHED
    assert lab.stream("c") == b"middle of a stream and more"
    assert lab.stream("s") == b"reply"
    assert lab.counters["midstream_pickups"] == 1


def test_midstream_other_direction_synchronised_from_the_ack():
    """The picked-up segment's ACK fixes where the server's data starts: a
    server segment before it is old data, not the start of the stream."""
    lab = Lab()
    lab.c(100, b"req", ack=50)
    lab.s(40, b"injected", ack=103)
    lab.s(50, b"real", ack=103)
    assert lab.stream("s") == b"real"
    assert lab.counters["retransmissions"] == 1


def test_midstream_off_ignores_and_counts():
    lab = Lab(midstream=False)
    lab.c(100, b"middle")
    lab.s(raw_seq=lab.sisn, ack=0, flags=SYN | ACK, options=MSS)
    assert lab.stream() == b"" and lab.r.sessions == 0
    assert lab.counters["midstream_ignored"] == 2


def test_synack_pickup_when_midstream_on():
    lab = Lab()
    lab.synack()
    lab.c(0, b"after the handshake")
    assert lab.stream() == b"after the handshake"
    assert session(lab).midstream


def test_async_oneside_changes_what_a_client_only_capture_yields():
    on = Lab(async_oneside=True)
    on.syn()
    on.c(0, b"one side", ack=0)
    assert on.stream() == b"one side" and session(on).oneside
    # with midstream pickup on, the client's side alone is accepted anyway
    off = Lab(async_oneside=False, midstream=False)
    off.syn()
    off.c(0, b"one side", ack=0)
    assert off.stream() == b""
    assert off.counters["handshake_ignored"] == 1 and session(off).state == SYN_SENT


def test_async_oneside_needs_the_segment_right_after_the_syn():
    lab = Lab(async_oneside=True)
    lab.syn()
    lab.c(10, b"not at isn+1")
    assert lab.stream() == b"" and lab.counters["handshake_ignored"] == 1


def test_async_oneside_server_only_capture():
    lab = Lab(async_oneside=True)
    lab.synack()
    lab.s(0, b"server data")
    assert lab.stream("s") == b"server data"


def test_sequence_wraparound_in_order_and_out_of_order():
    lab = Lab(cisn=0xFFFFFFF0, sisn=0xFFFFFFFE)
    lab.handshake()
    lab.c(0, b"0123456789")  # crosses 2**32
    lab.c(20, b"KLMNOPQRST")
    lab.c(10, b"ABCDEFGHIJ")
    lab.s(0, b"xyz", ack=30)
    assert lab.stream() == b"0123456789ABCDEFGHIJKLMNOPQRST"
    assert lab.stream("s") == b"xyz"


def test_retransmitted_syn_is_harmless():
    lab = Lab()
    lab.syn()
    lab.syn()
    lab.synack()
    lab.synack()
    lab.c(0, b"ok")
    assert lab.stream() == b"ok" and lab.counters["syn_ignored"] == 0


def test_new_syn_after_close_is_a_new_connection():
    lab = Lab()
    lab.handshake()
    lab.c(0, b"first")
    lab.c(5, flags=ACK | 0x04)  # RST at rcv_nxt: the server has no socket left
    first = session(lab)
    assert first.client.rst
    lab.cisn = 90000
    lab.syn()
    lab.synack()
    lab.c(0, b"second")
    assert lab.stream() == b"firstsecond"
    assert session(lab) is not first and lab.counters["sessions"] == 2


def test_window_scale_and_timestamps_negotiated_only_when_both_syns_carry_them():
    both = Lab().handshake(copts=MSS + wscale(7) + tsopt(1), sopts=MSS + wscale(2) + tsopt(9))
    s = session(both)
    assert s.wscale_ok and s.ts_ok
    one = Lab().handshake(copts=MSS + wscale(7) + tsopt(1), sopts=MSS)
    s = session(one)
    assert not s.wscale_ok and not s.ts_ok


def test_late_synack_in_a_one_sided_session_is_not_a_new_syn():
    lab = Lab(async_oneside=True)
    lab.syn()
    lab.c(0, b"abc")
    lab.synack()  # the capture delivered it late
    lab.s(0, b"srv", ack=3)
    assert lab.counters["syn_ignored"] == 0 and not lab.notices()
    assert lab.stream("s") == b"srv" and session(lab).server.isn == lab.sisn


def test_ipv6_session_built_with_scapy():
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    from pakemon.decode import decode_frame
    from pakemon.stream.tcp import StreamData, TcpReassembler

    def f(src, dst, sp, dp, seq, ack, flags, data=b""):
        pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
               / IPv6(src=src, dst=dst) / TCP(sport=sp, dport=dp, seq=seq, ack=ack,
                                              flags=flags, window=65535) / data)
        return bytes(pkt)

    a, b = "2001:db8::1", "2001:db8::2"
    r = TcpReassembler()
    frames = [f(a, b, 5555, 80, 100, 0, "S"), f(b, a, 80, 5555, 900, 101, "SA"),
              f(a, b, 5555, 80, 101, 901, "A"), f(a, b, 5555, 80, 105, 901, "PA", b"late"),
              f(a, b, 5555, 80, 101, 901, "PA", b"ABCD"), f(a, b, 5555, 80, 200, 901, "R")]
    events = []
    for i, fr in enumerate(frames):
        events += r.feed(decode_frame(1, fr, float(i)))
    data = b"".join(e.data for e in events if isinstance(e, StreamData))
    assert data == b"ABCDlate"
    (n,) = [e for e in events if not isinstance(e, StreamData)]
    assert n.src_ip == "2001:db8::1" and n.dst_ip == "2001:db8::2"
    assert n.message.endswith("from 2001:db8::1:5555 to 2001:db8::2:80")


def test_last_direction_names_the_sender_of_the_last_segment():
    lab = Lab()
    lab.syn()
    assert lab.r.last_direction.sport == 40000 and lab.r.last_direction.packets == 1
    lab.synack()
    assert lab.r.last_direction.sport == 80
    lab.c(0, b"x", flags=0x08)  # no ACK: dropped, but it was this direction's
    assert lab.r.last_direction.packets == 2
