"""Window, RST/SYN/FIN, timeouts, flush, limits, checksums, depth, classify."""

import struct

import pytest
from test_tcp_support import ACK, C, FIN, MSS, PA, RST, S, SYN, URG, Lab, frame, tsopt, wscale

from pakemon.decode import decode_frame
from pakemon.decode.decoder import checksum
from pakemon.events import NoticeKind as K
from pakemon.stream.tcp import CLOSED, CLOSING, StreamBypass, StreamData, TcpReassembler


def session(lab):
    (s,) = list(lab.r._sessions)
    return s


# ---------------------------------------------------------------- window


def test_data_beyond_the_advertised_window_is_ignored():
    lab = Lab().handshake(window=100)
    lab.c(0, b"a" * 50)
    lab.c(100, b"beyond")  # starts at rcv_nxt + window: a zero-window probe
    lab.c(60, b"inside")
    assert lab.counters["out_of_window"] == 1
    assert [n.message for n in lab.notices(K.STREAM_OUT_OF_WINDOW)] == [
        "TCP data outside the receive window, segment ignored, "
        "from 10.0.0.1:40000 to 10.0.0.2:80"]
    lab.c(50, b"b" * 10)
    assert lab.stream() == b"a" * 50 + b"b" * 10 + b"inside"


def test_window_scale_opens_the_window():
    lab = Lab().handshake(copts=MSS + wscale(4), sopts=MSS + wscale(4), window=100)
    lab.s(0, flags=ACK, ack=0, window=100)  # 100 << 4 = 1600 bytes
    lab.c(1000, b"far but inside")
    assert lab.counters["out_of_window"] == 0
    lab.c(1700, b"outside")
    assert lab.counters["out_of_window"] == 1


def test_window_edge_never_moves_left():
    lab = Lab().handshake(window=1000)
    lab.s(0, flags=ACK, ack=0, window=10)  # a smaller window: the edge stays
    lab.c(500, b"x")
    assert lab.counters["out_of_window"] == 0


def test_zero_window_drops_data_but_accepts_a_bare_fin():
    lab = Lab().handshake(window=10)
    lab.c(0, b"0123456789")
    lab.s(0, flags=ACK, ack=10, window=0)
    lab.c(10, b"more")
    assert lab.counters["out_of_window"] == 1
    lab.c(10, flags=FIN | ACK)
    assert session(lab).client.fin_done


def test_wholly_old_data_is_a_duplicate_not_a_loss():
    lab = Lab().handshake()
    lab.c(0, b"abcdef")
    lab.c(0, b"abc")
    assert lab.stream() == b"abcdef"
    assert lab.counters["retransmissions"] == 1 and lab.counters["out_of_window"] == 0


# ------------------------------------------------------------------ RST


def test_rst_exactly_at_rcv_nxt_resets_the_server_side_only():
    """The server took the RST: its queue is gone (so is the sensor's), and
    under linux-current it has no socket and reads nothing the client still
    sends (counted and reported, not inspected: live_fuzz against the
    kernel). The client's own side is untouched (the RST may be forged
    "from the client")."""
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(6, b"queued")  # out of order, discarded by the reset
    lab.c(3, flags=RST | ACK)
    s = session(lab)
    assert s.client.rst and not s.server.rst and s.state == CLOSING
    lab.c(3, b"def")
    lab.flush()
    assert lab.stream() == b"abc"
    assert lab.counters["rst_resets"] == 1 and lab.counters["closed_discarded_bytes"] == 6
    assert lab.counters["data_after_rst"] == 1
    assert any("not read there" in n.message for n in lab.events if hasattr(n, "message"))
    lab.s(0, b"to the client")  # the client took no RST: its side reads on
    assert lab.stream("s") == b"to the client"


@pytest.mark.parametrize("policy", ["linux", "windows", "bsd", "first"])
def test_rst_then_client_data_is_still_inspected_by_suricata_policies(policy):
    """The Suricata-style policies keep inspecting after a RST (as Suricata
    does: a false alert at worst)."""
    lab = Lab(policy=policy).handshake()
    lab.c(0, b"abc")
    lab.c(3, flags=RST | ACK)
    lab.c(3, b"def")
    lab.flush()
    assert lab.stream() == b"abcdef"
    assert lab.counters["data_after_rst"] == 1


def test_rst_from_each_host_closes():
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(3, flags=RST | ACK)
    lab.s(0, flags=RST | ACK, ack=3)
    assert session(lab).state == CLOSED
    lab.c(3, b"def")
    assert lab.stream() == b"abc" and lab.counters["data_after_close"] == 1


@pytest.mark.parametrize("off", [1, 500, -1, 100000])
def test_rfc5961_rst_not_exact_is_ignored(off):
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(3 + off, flags=RST)
    assert session(lab).state != CLOSED
    lab.c(3, b"def")
    assert lab.stream() == b"abcdef"
    assert lab.counters["rst_ignored"] == 1
    (n,) = lab.notices(K.STREAM_RST_OUT_OF_WINDOW)
    assert n.src_ip == "10.0.0.1" and n.dst_port == 80


def test_rfc793_stack_resets_on_any_rst_in_window():
    lab = Lab(policy="bsd").handshake(window=1000)
    lab.c(0, b"abc")
    lab.c(503, flags=RST)
    assert session(lab).client.rst and lab.counters["rst_resets"] == 1


def test_rfc793_stack_ignores_rst_outside_the_window():
    lab = Lab(policy="windows").handshake(window=1000)
    lab.c(5000, flags=RST)
    assert session(lab).state != CLOSED and lab.counters["rst_ignored"] == 1


def test_rst_one_before_rcv_nxt_after_the_fin_closes():
    """tcp_reset_check: a RST at the FIN's sequence once the FIN was read."""
    lab = Lab().handshake()
    lab.c(0, b"abc", flags=PA | FIN)
    lab.c(3, flags=RST)
    assert session(lab).client.rst and lab.counters["rst_resets"] == 1


def test_rst_answering_a_syn_closes_only_if_it_acknowledges_it():
    lab = Lab()
    lab.syn()
    lab.s(raw_seq=0, raw_ack=lab.cisn + 50, flags=RST | ACK)
    assert not session(lab).server.rst and lab.counters["rst_ignored"] == 1
    lab.s(raw_seq=0, ack=0, flags=RST | ACK)
    # the client's connect() fails; the server may never have sent it (a
    # forged refusal): its SYN-ACK would still open the connection
    assert session(lab).server.rst and lab.counters["rst_resets"] == 1


# ------------------------------------------------------------------ SYN


def test_syn_on_established_is_ignored_by_rfc5961_stacks():
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(raw_seq=lab.cisn + 2, raw_ack=0, flags=SYN, options=MSS)
    lab.c(3, b"def")
    assert lab.stream() == b"abcdef"
    assert lab.counters["syn_ignored"] == 1
    (n,) = lab.notices(K.STREAM_SYN_IN_ESTABLISHED)
    assert "RFC 5961" in n.message


def test_syn_in_window_resets_an_rfc793_stack():
    lab = Lab(policy="solaris").handshake(window=1000)
    lab.c(0, b"abc")
    lab.c(raw_seq=lab.cseq(10), raw_ack=0, flags=SYN, options=MSS)
    assert session(lab).client.rst and lab.counters["syn_resets"] == 1
    lab.c(3, b"def")  # as after a RST: inspected, counted
    assert lab.stream() == b"abcdef" and lab.counters["data_after_rst"] == 1


def test_syn_outside_the_window_is_ignored_by_rfc793_stacks():
    lab = Lab(policy="solaris").handshake(window=1000)
    lab.c(raw_seq=lab.cseq(50000), raw_ack=0, flags=SYN, options=MSS)
    assert session(lab).state != CLOSED and lab.counters["syn_ignored"] == 1


# ------------------------------------------------------------------ FIN


def test_fin_ends_a_direction_and_both_close_the_session():
    lab = Lab().handshake()
    lab.c(0, b"abc", flags=PA | FIN)
    s = session(lab)
    assert s.client.fin_done and s.state == CLOSING
    lab.c(4, b"after the fin")
    assert lab.counters["data_after_close"] == 1
    lab.s(0, b"bye", flags=PA | FIN, ack=4)
    assert s.state == CLOSED
    assert lab.stream() == b"abc" and lab.stream("s") == b"bye"


def test_out_of_order_fin_waits_for_the_hole():
    lab = Lab().handshake()
    lab.c(3, b"def", flags=PA | FIN)
    s = session(lab)
    assert not s.client.fin_done
    lab.c(0, b"abc")
    assert s.client.fin_done and lab.stream() == b"abcdef"


def test_data_past_a_queued_fin_is_cut():
    lab = Lab(policy="bsd").handshake()
    lab.c(3, b"def", flags=PA | FIN)
    lab.c(6, b"ghi")
    lab.c(0, b"abc")
    assert lab.stream() == b"abcdef"


# ------------------------------------------------------- timeouts, flush


def test_expire_delivers_pending_data_and_counts():
    lab = Lab(timeout_established=10.0).handshake()
    lab.c(0, b"abc")
    lab.c(10, b"after a hole")
    out = lab.r.expire(lab.ts + 5)
    assert out == [] and lab.r.sessions == 1
    out = lab.r.expire(lab.ts + 20)
    assert [(e.data, e.gap) for e in out if isinstance(e, StreamData)] == [(b"after a hole", True)]
    assert lab.r.sessions == 0 and lab.counters["timeouts"] == 1
    assert lab.r.memory == 0


def test_timeouts_follow_the_state():
    lab = Lab(timeout_new=5.0, timeout_established=100.0, timeout_closed=1.0)
    lab.syn()
    assert lab.r.expire(lab.ts + 6) == [] and lab.r.sessions == 0
    lab2 = Lab(timeout_new=5.0, timeout_established=100.0).handshake()
    lab2.r.expire(lab2.ts + 6)
    assert lab2.r.sessions == 1


def test_feed_expires_idle_sessions_by_packet_time():
    lab = Lab(timeout_established=10.0).handshake()
    lab.c(0, b"abc")
    lab.feed_frame(frame("10.0.0.9", "10.0.0.2", 50000, 80, 1, 0, SYN, options=MSS),
                   ts=lab.ts + 60)
    assert lab.r.sessions == 1 and lab.counters["timeouts"] == 1


def test_a_segment_after_the_timeout_resumes_where_the_receiver_was():
    """The session left, the connection did not (Linux keeps a quiet one):
    picked up again, the new session's stream starts with the last bytes the
    old one read, so a pattern cut by the quiet hour still matches."""
    lab = Lab(timeout_established=10.0).handshake()
    lab.c(0, b"abc")
    lab.ts += 100  # no sweep ran: the lookup itself notices the idle session
    lab.c(3, b"def")
    assert lab.counters["timeouts"] == 1 and lab.counters["midstream_pickups"] == 1
    assert lab.counters["resumed_after_timeout"] == 1
    assert lab.counters["resumed_after_eviction"] == 0 and not lab.notices()
    first, again = [e.direction for e in lab.events if hasattr(e, "data")][::2]
    assert lab.pieces() == [(b"abc", False), (b"abc", False), (b"def", False)]
    assert again is not first  # a new session: the detect stage starts afresh
    lab.c(1, b"bcdefg")  # the receiver's position came back too: only "g" is new
    assert lab.pieces()[-1] == (b"g", False)


def test_flush_delivers_out_of_order_data_after_holes_with_gap():
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(5, b"fgh")
    lab.c(10, b"klm")
    out = lab.flush()
    assert [(e.data, e.gap) for e in out if isinstance(e, StreamData)] == [
        (b"fgh", True), (b"klm", True)]
    assert lab.r.sessions == 0 and lab.r.memory == 0
    assert lab.counters["gaps"] == 2 and lab.counters["gap_bytes"] == 4


def test_flush_delivers_unresolved_fast_open_data():
    lab = Lab()
    lab.syn(data=b"tfo")
    lab.flush()
    assert lab.stream() == b"tfo"


def test_max_sessions_evicts_the_oldest_and_flushes_it():
    r = reassembler(max_sessions=2)
    events = []
    for i, port in enumerate((1001, 1002, 1003)):
        events += r.feed(decode_frame(1, frame("10.0.0.1", "10.0.0.2", port, 80, 100, 7, PA,
                                                b"x"), float(i)))
        events += r.feed(decode_frame(1, frame("10.0.0.1", "10.0.0.2", port, 80, 105, 7, PA,
                                                b"queued"), float(i)))
    assert r.sessions == 2 and r.counters()["evicted"] == 1
    flushed = [e for e in events if isinstance(e, StreamData) and e.gap]
    assert [(e.direction.sport, e.data) for e in flushed] == [(1001, b"queued")]


def reassembler(**kw):
    from pakemon.config import StreamConfig

    return TcpReassembler(StreamConfig(**kw))


# ------------------------------------------------------- capture loss


def test_ack_past_a_hole_in_an_inspected_direction_waits_for_flush():
    """The ACK may be forged (it goes to the client, never the server): the
    hole's bytes may still come, so the sensor must not pass over them."""
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(6, b"ghi")  # 3..6 missing
    lab.s(0, flags=ACK, ack=9)  # claims the server has it all
    assert lab.pieces() == [(b"abc", False)] and lab.counters["gaps"] == 0
    lab.c(3, b"def")  # the hole's bytes after all: read in order
    assert lab.stream() == b"abcdefghi"


def test_hole_in_an_inspected_direction_is_skipped_at_flush():
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(6, b"ghi")  # 3..6 lost by the capture
    lab.s(0, flags=ACK, ack=9)
    lab.flush()
    assert lab.pieces() == [(b"abc", False), (b"ghi", True)]
    assert lab.notices(K.STREAM_GAP)[0].message.startswith("TCP stream gap, 3 bytes missing")


def test_ack_past_a_hole_without_later_data_waits():
    """Maybe the capture reordered the data behind its ACK: wait for it."""
    lab = Lab().handshake()
    lab.s(0, flags=ACK, ack=3)
    lab.c(0, b"abc")
    assert lab.pieces() == [(b"abc", False)] and lab.counters["gaps"] == 0


# ------------------------------------------------------------- limits


def test_queue_overflow_notice_text_and_tail_drop():
    lab = Lab(queue_limit=10, segment_cost=0).handshake()
    lab.s(0, flags=ACK, ack=0)  # an ACK from the receiver: no one-sided give-up
    lab.c(5, b"12345678")
    lab.c(20, b"abcdefgh")  # 6 bytes over: the farthest bytes go
    (n,) = lab.notices(K.STREAM_QUEUE_OVERFLOW)
    assert n.message == "Too much data in TCP receive queue, from 10.0.0.1:40000 to 10.0.0.2:80"
    assert (n.proto, n.src_ip, n.src_port, n.dst_ip, n.dst_port) == (
        "TCP", "10.0.0.1", 40000, "10.0.0.2", 80)
    assert lab.counters["queue_overflows"] == 1 and lab.counters["queue_overflow_bytes"] == 6
    lab.c(0, b"01234")
    assert lab.runs() == [b"0123412345678"]
    lab.flush()
    assert lab.runs() == [b"0123412345678", b"ab"]


def test_a_flood_of_one_byte_segments_is_bounded_by_count():
    """Each queued segment costs ``segment_cost`` beside its byte, as an skb
    costs its truesize in the kernel: 20,000 one-byte out-of-order segments
    (every other byte, so none coalesce) stop at queue_limit / 1,025 queued,
    the farthest dropped and counted, not 20,000 segments kept."""
    lab = Lab(checksum="off", queue_limit=1 << 20).handshake()
    lab.s(0, flags=ACK, ack=0)
    for i in range(20_000):
        lab.c(2 + 2 * i, b"x")
    d = next(x for x in lab.r._dirs.values() if x.sport == lab.cport)
    cap = (1 << 20) // 1025
    assert cap - 1 <= len(d.q) <= cap
    assert d.qbytes <= 1 << 20 and lab.r.memory == d.qbytes
    assert lab.counters["queue_overflows"] >= 1
    assert lab.counters["queue_overflow_bytes"] == 20_000 - len(d.q)
    assert d.q[-1][0] < 2 + 2 * cap + 2  # the farthest went first
    lab.c(0, b"ab")  # the first hole filled: the byte after it is read
    assert lab.stream() == b"abx"


def test_the_default_queue_holds_what_a_64k_window_holds():
    """Linux keeps every one-byte segment a 64 KB window lets in (29,000
    live; its limit is tcp_rmem's max, 32 MB on 6.18): with the defaults the
    sensor prunes none either, so the bytes queued farthest (where an
    attacker puts its payload) are still read when the holes fill."""
    lab = Lab(checksum="off").handshake()
    lab.s(0, flags=ACK, ack=0)
    lab.c(60_000, b"ATTACK")
    for i in range(29_000):
        lab.c(100 + 2 * i, b"x")
    lab.c(60_000, b"BENIGN")  # inside the queued ATTACK: old wins
    assert lab.counters["queue_overflows"] == 0 and lab.counters["memcap_drops"] == 0
    lab.c(0, b"." * 60_000)
    assert lab.stream().endswith(b"ATTACK") and len(lab.stream()) == 60_006


def test_queue_overflow_without_any_ack_gives_up_the_hole():
    """One-sided capture: no ACK will ever show the hole was lost."""
    lab = Lab(queue_limit=10, async_oneside=True)
    lab.syn()
    lab.c(0, b"abc")
    lab.c(10, b"0123456789")
    lab.c(20, b"x")
    assert lab.runs() == [b"abc", b"0123456789x"]
    assert lab.counters["queue_overflows"] == 1 and lab.counters["queue_overflow_bytes"] == 0
    lab.c(21, b"yz")
    assert lab.runs() == [b"abc", b"0123456789xyz"]


def _two_connections(**cfg):
    """Two established connections (client ports 40000, 41000) fed to one
    reassembler, each receiver's ACK seen: (lab a, lab b, the reassembler)."""
    a = Lab(**cfg).handshake()
    b = Lab(**cfg)
    b.r = a.r
    b.cport = 41000
    b.handshake()
    for lab in (a, b):
        lab.s(0, flags=ACK, ack=0)
    return a, b, a.r


def test_memcap_over_all_queues():
    a, b, r = _two_connections(memcap=12, checksum="off", segment_cost=0)
    a.c(10, b"0123456789")
    b.c(10, b"abcdefghij")  # 8 over: b's farthest 8, and a quarter of it to spare
    assert r.memory == 10 and r.counters()["memcap_drops"] == 1
    assert r.counters()["memcap_drop_bytes"] == 10
    assert len([e for e in b.events if getattr(e, "kind", None) is K.STREAM_MEMCAP]) == 1


def test_memcap_prunes_the_largest_queue_first():
    """Connections that fill the memcap lose their own farthest bytes: an
    attack's payload queued out of order after them is kept (before, the
    queue that had just grown lost its tail: the payload, on arrival)."""
    n = 100  # one-byte segments: 100 x 1,026 bytes charged, a big queue
    cfg = dict(memcap=n * 1026 + 100, checksum="off")
    flood, atk, r = _two_connections(**cfg)
    for i in range(n):
        flood.c(10 + 2 * i, b"x")
    assert r.counters()["memcap_drops"] == 0
    atk.c(6, b"ATTACK")  # over the memcap: the flood's tail goes, with room to spare
    assert r.memory <= cfg["memcap"] and r.counters()["memcap_drops"] == 1
    assert r.counters()["memcap_drop_bytes"] == n // 4 + 1
    atk.c(0, b"GET / ")
    assert atk.stream() == b"GET / ATTACK"
    (e,) = [e for lab in (flood, atk) for e in lab.events
            if getattr(e, "kind", None) is K.STREAM_MEMCAP]
    assert e.src_port == flood.cport  # reported on the flow that lost bytes
    for i in range(n // 4):  # the room left takes the flood's next segments
        flood.c(1000 + 2 * i, b"y")
    assert r.counters()["memcap_drops"] == 1


def test_depth_bypass_after_the_data_up_to_the_depth():
    lab = Lab(depth=10).handshake()
    lab.c(0, b"01234567")
    lab.c(8, b"89abcdef")
    lab.c(16, b"more")
    assert lab.stream() == b"0123456789"
    (bp,) = lab.bypasses()
    assert isinstance(bp, StreamBypass) and bp.direction.depth_reached
    assert lab.events.index(bp) > max(i for i, e in enumerate(lab.events)
                                      if isinstance(e, StreamData))
    assert lab.counters["depth_reached"] == 1
    lab.c(20, flags=RST)  # state is still tracked past the depth
    assert session(lab).client.rst and lab.counters["rst_resets"] == 1


@pytest.mark.parametrize("client_depth,want", [(None, b"0123456789"), (0, b"0123456789abcdef"),
                                               (12, b"0123456789ab")])
def test_the_clients_direction_has_its_own_depth(client_depth, want):
    """client_depth bounds what the client sends (None: as depth, 0: no
    limit); the server's replies keep depth."""
    lab = Lab(depth=10, client_depth=client_depth).handshake()
    lab.c(0, b"01234567")
    lab.c(8, b"89abcdef")
    lab.s(0, b"ABCDEFGHIJKLMNOP", ack=16)
    assert lab.stream() == want
    assert lab.stream("s") == b"ABCDEFGHIJ"
    assert len(lab.bypasses()) == (1 if client_depth == 0 else 2)


def test_depth_reached_while_draining_the_queue():
    lab = Lab(depth=6).handshake()
    lab.c(3, b"def")
    lab.c(9, b"jkl")
    lab.c(0, b"abc")
    assert lab.stream() == b"abcdef" and len(lab.bypasses()) == 1
    assert lab.r.memory == 0


# ----------------------------------------------------------- checksums


def test_bad_checksum_ignored_when_on():
    lab = Lab(checksum="on").handshake()
    lab.c(0, b"EVIL", bad_checksum=True)  # insertion: the target drops it
    lab.c(0, b"good")
    assert lab.stream() == b"good" and lab.counters["bad_checksum"] == 1
    assert len(lab.notices(K.STREAM_BAD_CHECKSUM)) == 1


def test_bad_checksum_accepted_when_off():
    lab = Lab(checksum="off").handshake()
    lab.c(0, b"offl", bad_checksum=True)
    assert lab.stream() == b"offl" and lab.counters["bad_checksum"] == 0


def test_checksum_auto_drops_bad_but_takes_the_offload_pattern():
    lab = Lab(checksum="auto").handshake()
    lab.c(0, b"EVIL", bad_checksum=True)  # insertion: random wrong checksum
    lab.c(0, b"good")
    assert lab.stream() == b"good" and lab.counters["bad_checksum"] == 1
    off = Lab(checksum="auto")  # a capture taken on a host with checksum offload
    off.syn(offload_checksum=True)
    off.synack()
    off.c(0, flags=ACK, offload_checksum=True)
    off.c(0, b"fine", offload_checksum=True)
    assert off.stream() == b"fine" and off.r.checksums.offload_detected


def test_checksum_auto_many_bad_packets_do_not_switch_checking_off():
    """Suricata's auto stops checking after many bad checksums; an attacker
    would send them on purpose."""
    lab = Lab(checksum="auto").handshake()
    for i in range(1200):
        lab.c(0, b"JUNK", bad_checksum=True)
    lab.c(0, b"real")
    lab.c(4, b"XXXX", bad_checksum=True)
    assert lab.stream() == b"real" and lab.counters["bad_checksum"] == 1201


def test_checksum_offload_pattern_is_refused_from_a_sender_with_real_checksums():
    lab = Lab(checksum="auto").handshake()  # the client's SYN had a real checksum
    lab.c(0, b"EVIL", offload_checksum=True)  # forged to look like offload
    lab.c(0, b"good")
    assert lab.stream() == b"good"


def _ack_whose_right_checksum_is_the_offload_pattern(lab):
    """A client pure ACK (a timestamp option, so it is checked) whose real
    checksum happens to equal the pseudo-header sum: tsval chosen so."""
    from pakemon.decode.decoder import l4_checksum_ok, l4_checksum_partial

    def ack(tsval):
        return frame(C, S, lab.cport, lab.sport, lab.cseq(0), lab.sseq(0), ACK,
                     options=tsopt(tsval))

    field = struct.unpack_from("!H", ack(0), 14 + 20 + 16)[0]
    # the field of tsval t is ~(S0 + t) in one's complement: solve for the
    # pseudo-header sum, which is what an offloading sender leaves there
    pseudo = (bytes(map(int, C.split("."))) + bytes(map(int, S.split(".")))
              + struct.pack("!BBH", 0, 6, 32))
    want = (~checksum(pseudo)) & 0xFFFF
    s0 = ~field & 0xFFFF
    t0 = (0xFFFF - want - s0) % 0xFFFF
    for t in (t0, t0 + 0xFFFF):
        f = ack(t)
        pkt = decode_frame(1, f, 0.0)
        if l4_checksum_ok(pkt) and l4_checksum_partial(pkt):
            return f
    raise AssertionError("no such timestamp")


def test_checksum_auto_a_right_checksum_equal_to_the_offload_pattern_proves_nothing():
    """One right checksum in 65,536 is also the offload pattern. A veth
    capture had a client's pure ACK so: taking it for proof of real
    checksums made the client's offloaded request segments drops."""
    lab = Lab(checksum="auto")
    lab.syn(offload_checksum=True)
    lab.synack()
    lab.feed_frame(_ack_whose_right_checksum_is_the_offload_pattern(lab))
    lab.c(0, b"GET /cgi-bin/phf", offload_checksum=True)
    lab.c(16, b" HTTP/1.0\r\n\r\n", offload_checksum=True)
    assert lab.stream() == b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n"
    assert lab.counters["bad_checksum"] == 0


def test_reassembler_uses_a_shared_gate_when_given_one():
    from pakemon.stream.checksum import ChecksumGate

    lab = Lab(checksum="on")
    lab.r.checksums = ChecksumGate("off")
    lab.handshake()
    lab.c(0, b"x", bad_checksum=True)
    assert lab.stream() == b"x"


# ------------------------------------------------------------ classify


def test_classify_falsy_tracks_state_but_keeps_no_bytes():
    calls = []

    def classify(d):
        calls.append(d)
        return ("node",) if d.dport == 80 else ()

    lab = Lab(classify=classify).handshake()
    assert len(calls) == 2
    lab.s(5, b"queued?", ack=0)  # out of order in an unbuffered direction
    lab.s(0, b"12345", ack=0)
    assert lab.stream("s") == b"" and lab.r.memory == 0
    s = session(lab)
    assert s.server.off == 12 and s.server.q == []
    lab.s(12, flags=RST)  # validated against the tracked rcv_nxt
    assert s.server.rst and lab.counters["rst_resets"] == 1


def test_classify_falsy_direction_still_needs_exact_rst():
    lab = Lab(classify=lambda d: d.dport == 80).handshake()
    lab.s(0, b"12345", ack=0)
    lab.s(3, flags=RST)
    assert session(lab).state != CLOSED and lab.counters["rst_ignored"] == 1


# ------------------------------------------------------------ notices


def test_notices_are_rate_limited_per_session_but_every_one_is_counted():
    lab = Lab().handshake()
    for i in range(5):
        lab.c(100000 + i, flags=RST)
    assert lab.counters["rst_ignored"] == 5
    assert len(lab.notices(K.STREAM_RST_OUT_OF_WINDOW)) == 1


def test_policy_for_chooses_by_the_receivers_address():
    seen = []

    def policy_for(addr):
        seen.append(addr)
        return "bsd" if addr == bytes([10, 0, 0, 2]) else "windows"

    lab = Lab(policy_for=policy_for).handshake()
    s = session(lab)
    assert s.client.policy == "bsd" and s.server.policy == "windows"
    assert s.policy == ("bsd", "windows")
    assert sorted(seen) == [bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])]


def test_unknown_policy_is_an_error():
    from pakemon.config import StreamConfig

    with pytest.raises(ValueError):
        TcpReassembler(StreamConfig(policy="plan9"))


def test_data_queued_past_a_hole_waits_there_again_after_the_timeout():
    """Out of order when the session went quiet: read at the timeout past
    its hole, as ever (the capture may end there), and queued again in the
    resumed session, so the hole's bytes, when they come, are read before
    it as the receiver reads them."""
    lab = Lab(timeout_established=10.0).handshake()
    lab.c(3, b"def")
    lab.c(9, b"jkl")
    lab.ts += 100
    lab.c(0, b"abc")
    assert lab.counters["timeouts"] == 1 and lab.counters["resumed_after_timeout"] == 1
    assert lab.pieces() == [(b"def", True), (b"jkl", True), (b"abc", False), (b"def", False)]
    lab.c(6, b"ghi")
    assert lab.pieces()[-2:] == [(b"ghi", False), (b"jkl", False)]


def test_closed_sessions_leave_without_counting_as_timeouts():
    lab = Lab(timeout_closed=1.0).handshake()
    lab.c(0, b"abc", flags=PA | FIN)
    lab.s(0, flags=ACK | FIN, ack=4)
    assert session(lab).state == CLOSED
    lab.r.expire(lab.ts + 5)
    assert lab.r.sessions == 0 and lab.counters["timeouts"] == 0


def test_flush_of_a_state_only_direction_delivers_nothing():
    lab = Lab(classify=lambda d: ())
    lab.syn(data=b"tfo")
    lab.handshake()
    lab.c(5, b"queued")
    assert lab.flush() == [] and lab.r.memory == 0


def test_retransmission_compared_with_the_recent_history_only():
    lab = Lab().handshake()
    for i in range(10):
        lab.c(i * 1000, bytes([65 + i]) * 1000)
    lab.c(0, b"Z" * 100)  # 10 KB back: past the 4 KiB kept, not compared
    assert lab.counters["retransmissions"] == 1 and lab.counters["overlap_mismatches"] == 0
    lab.c(9900, b"Z" * 100)  # the last chunk, different bytes
    assert lab.counters["overlap_mismatches"] == 1
    assert lab.stream() == b"".join(bytes([65 + i]) * 1000 for i in range(10))


def test_sessions_remembered_for_their_return_are_bounded_and_counted(monkeypatch):
    """Idle sessions with data are remembered for their return, at most
    GONE_MAX: the oldest goes, counted, and its return is a plain pickup."""
    from pakemon.stream import tcp as tcp_mod

    monkeypatch.setattr(tcp_mod, "GONE_MAX", 2)
    r = reassembler(timeout_established=10.0)
    for i, port in enumerate((1001, 1002, 1003)):
        for f in (frame("10.0.0.1", "10.0.0.2", port, 80, 100, 0, SYN, options=MSS),
                  frame("10.0.0.2", "10.0.0.1", 80, port, 500, 101, SYN | ACK, options=MSS),
                  frame("10.0.0.1", "10.0.0.2", port, 80, 101, 501, PA, b"abc")):
            r.feed(decode_frame(1, f, float(i)))
    r.expire(100.0)
    c = r.counters()
    assert c["timeouts"] == 3 and c["gone_forgotten"] == 1
    for port in (1001, 1002, 1003):  # each returns with its next bytes
        r.feed(decode_frame(1, frame("10.0.0.1", "10.0.0.2", port, 80, 104, 501, PA, b"d"),
                            101.0))
    assert r.counters()["resumed_after_timeout"] == 2  # 1001 was forgotten


def test_lookup_expires_a_session_the_sweep_has_not_reached():
    lab = Lab(timeout_established=10.0).handshake()
    lab.c(0, b"abc")
    lab.c(9, b"held")
    lab.r._next_sweep = float("inf")  # as if the sweep's slice missed it
    lab.ts += 100
    lab.c(3, b"def")
    assert lab.counters["timeouts"] == 1
    # the old session gave its held bytes up at the end; the new one resumes
    # after "abc", where the receiver was
    assert lab.pieces() == [(b"abc", False), (b"held", True), (b"abc", False),
                            (b"def", False)]
    first, _, again, _ = [e.direction for e in lab.events if hasattr(e, "data")]
    assert again is not first  # a new session: the detect stage starts afresh


def test_an_earlier_fin_cuts_queued_data_after_it():
    lab = Lab(policy="linux-current").handshake()
    lab.c(5, b"fghij")
    lab.c(3, b"de", flags=PA | FIN)  # FIN at offset 5: nothing after it is read
    lab.c(0, b"abc")
    assert lab.stream() == b"abcde" and session(lab).client.fin_done
    assert lab.r.memory == 0


def test_ack_past_a_hole_and_the_fin_closes_the_direction_at_flush():
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(6, flags=ACK | FIN)  # 3..6 lost by the capture
    lab.s(0, flags=ACK, ack=7)
    assert not session(lab).client.fin_done  # waits: the hole's bytes may come
    lab.flush()
    assert lab.stream() == b"abc" and lab.r.sessions == 0


def test_state_only_direction_follows_disorder_and_fin():
    lab = Lab(classify=lambda d: d.dport == 80).handshake()
    s = session(lab)
    lab.s(10, b"k", ack=0)
    lab.s(4, b"efg", flags=PA | FIN, ack=0)  # FIN at 7: the k at 10 is past it
    lab.s(2, b"cd", ack=0)
    # linux-current: the k stays queued until the FIN is read (it may be lost)
    assert s.server.off == 0 and [it[:2] for it in s.server.q] == [[2, 7], [10, 11]]
    lab.s(0, b"ab", ack=0)
    assert s.server.fin_done and s.server.off == 8 and s.server.q == []
    lab.s(0, b"ab", ack=0)
    assert lab.counters["retransmissions"] >= 1 and lab.stream("s") == b""


def test_state_only_direction_caps_its_ranges():
    import pakemon.stream.tcp as tcp

    lab = Lab(classify=lambda d: d.dport == 80).handshake()
    old = tcp.MAX_RANGES
    tcp.MAX_RANGES = 3
    try:
        for i in range(5):
            lab.s(10 + 2 * i, b"x", ack=0)
    finally:
        tcp.MAX_RANGES = old
    assert len(session(lab).server.q) == 3 and lab.counters["queue_overflows"] == 2


def test_a_gap_drops_an_urgent_pointer_inside_the_hole():
    lab = Lab().handshake()
    lab.c(0, b"ab", flags=ACK | URG, urgent=3)  # urgent byte at 2, never seen
    lab.c(4, b"ef")
    lab.s(0, flags=ACK, ack=6)
    lab.c(6, b"ghXi")
    lab.flush()
    assert lab.runs() == [b"ab", b"efghXi"]


def test_host_policy_names_map_to_stream_policies():
    lab = Lab(policy="bsd", policy_for=lambda a: "bsd-right" if a[-1] == 2 else "drop-overlap")
    lab.handshake()
    assert session(lab).policy == ("bsd", "bsd")
    with pytest.raises(ValueError):
        Lab(policy_for=lambda a: "plan9").syn()


def test_the_lab_generator_waits_for_the_window_as_a_real_sender():
    """lab.traffic.TcpConnection acknowledges a long message whenever the
    next segment would pass the receiver's window (unscaled 64,240), as a
    real sender waits for the ACK: before, a 1 MB response went out whole
    and the evaluation's load capture had 99,948 segments past the window
    (stream_out_of_window) and ACKs of data the model never took."""
    from pakemon.config import Config
    from pakemon.lab.traffic import WINDOW, TcpConnection
    from pakemon.pipeline import Pipeline

    conn = TcpConnection("10.9.0.1", "10.9.0.2", 40000, 80, cseq=1000, sseq=5000).open()
    conn.send(b"GET / HTTP/1.0\r\n\r\n")
    body = bytes(range(256)) * 1200  # 300 KB
    conn.send(body, from_client=False)
    frames = conn.close()
    acked = 5001
    sent = 5001
    for _, f in frames:
        pkt = decode_frame(1, f)
        if pkt.sport == 80:
            assert pkt.seq + len(pkt.payload) - acked <= WINDOW
            sent = max(sent, pkt.seq + len(pkt.payload) + (1 if pkt.flags & FIN else 0))
        elif pkt.dport == 80 and pkt.flags & ACK:
            assert pkt.ack <= sent
            acked = max(acked, pkt.ack)
    pipe = Pipeline([], Config())
    for ts, f in frames:
        pipe.feed(ts, f)
    c = pipe.tcp.counters()
    assert c["out_of_window"] == 0 and c["ack_of_unsent_data"] == 0
    assert c["gaps"] == 0
