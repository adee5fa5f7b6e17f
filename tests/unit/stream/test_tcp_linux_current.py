"""What linux-current models beyond overlaps: urgent data, no-ACK, MD5/TCP-AO, PAWS."""

import pytest
from test_tcp_support import ACK, FIN, MD5OPT, MSS, PA, PSH, SYN, URG, Lab, tsopt

from pakemon.events import NoticeKind as K

# ------------------------------------------------------------------ urgent


def test_urgent_byte_is_taken_out_of_band():
    """urg_ptr points one past the urgent byte (tcp_stdurg off): 'X' goes."""
    lab = Lab().handshake()
    lab.c(0, b"ATTXACK", flags=PA | URG, urgent=4)
    assert lab.stream() == b"ATTACK"
    assert lab.counters["urgent_bytes_removed"] == 1


def test_urgent_pointer_into_a_later_segment():
    lab = Lab().handshake()
    lab.c(0, b"AT", flags=PA | URG, urgent=4)  # urgent byte is offset 3
    lab.c(2, b"TXACK")
    assert lab.stream() == b"ATTACK"


def test_urgent_byte_in_out_of_order_data():
    lab = Lab().handshake()
    lab.c(3, b"XACK", flags=PA | URG, urgent=1)
    lab.c(0, b"ATT")
    assert lab.stream() == b"ATTACK"


def test_only_a_later_urgent_pointer_replaces_the_pending_one():
    lab = Lab().handshake()
    lab.c(0, b"abc", flags=ACK | URG, urgent=8)  # urgent byte at offset 7
    lab.c(3, b"de", flags=ACK | URG, urgent=1)  # offset 3: not after 7, ignored
    lab.c(5, b"fgXh")
    assert lab.stream() == b"abcdefgh"


def test_a_newer_urgent_pointer_leaves_the_older_byte_inline():
    lab = Lab().handshake()
    lab.c(0, b"ab", flags=ACK | URG, urgent=4)  # pending: offset 3 (not here yet)
    lab.c(2, b"cd", flags=ACK | URG, urgent=4)  # offset 5 replaces it
    lab.c(4, b"efg")
    assert lab.stream() == b"abcdeg"  # 'd' stays inline, 'f' is taken out


def test_urgent_data_stays_inline_for_other_policies():
    for policy in ("bsd", "windows", "linux", "first"):
        lab = Lab(policy=policy).handshake()
        lab.c(0, b"ATTXACK", flags=PA | URG, urgent=4)
        assert lab.stream() == b"ATTXACK", policy
        assert lab.counters["urgent_bytes_removed"] == 0


def test_urgent_pointer_before_rcv_nxt_is_ignored():
    lab = Lab().handshake()
    lab.c(0, b"abcdef")
    lab.c(0, b"ab", flags=ACK | URG, urgent=1)  # points at old data
    lab.c(6, b"gh")
    assert lab.stream() == b"abcdefgh"


# ------------------------------------------------------------------ no ACK


def test_data_without_ack_is_dropped_by_every_policy():
    for policy in ("linux-current", "bsd", "windows", "last"):
        lab = Lab(policy=policy).handshake()
        lab.c(0, b"EVIL", flags=PSH)
        lab.c(0, b"good")
        assert lab.stream() == b"good", policy
        assert lab.counters["no_ack_dropped"] == 1
        assert len(lab.notices(K.STREAM_NO_ACK)) == 1


def test_fin_without_ack_is_dropped():
    lab = Lab().handshake()
    lab.c(0, b"abc", flags=FIN)
    lab.c(0, b"abc")
    assert lab.counters["no_ack_dropped"] == 1
    assert lab.stream() == b"abc"


def test_first_segment_without_ack_starts_no_session():
    lab = Lab()
    lab.c(0, b"x", flags=PSH)
    assert lab.r.sessions == 0 and lab.counters["no_ack_dropped"] == 1


# ------------------------------------------------------------------ MD5


def test_md5_option_dropped_by_linux_current():
    lab = Lab().handshake()
    lab.c(0, b"EVIL", options=MD5OPT)
    lab.c(0, b"good")
    assert lab.stream() == b"good" and lab.counters["md5_dropped"] == 1
    (n,) = lab.notices(K.STREAM_MD5_UNEXPECTED)
    assert n.src_port == 40000


def test_md5_option_kept_by_other_policies():
    lab = Lab(policy="bsd").handshake()
    lab.c(0, b"data", options=MD5OPT)
    assert lab.stream() == b"data" and lab.counters["md5_dropped"] == 0


def test_md5_on_syn_means_no_connection_for_linux_current():
    lab = Lab()
    lab.c(raw_seq=lab.cisn, raw_ack=0, flags=SYN, options=MSS + MD5OPT)
    assert lab.r.sessions == 0 and lab.counters["md5_dropped"] == 1
    assert len(lab.notices(K.STREAM_MD5_UNEXPECTED)) == 1


def test_md5_rst_cannot_reset():
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(3, flags=0x04, options=MD5OPT)
    lab.c(3, b"def")
    assert lab.stream() == b"abcdef"


def test_malformed_md5_option_is_not_an_md5_option():
    lab = Lab().handshake()
    lab.c(0, b"data", options=b"\x13\x04ab")  # length 4: tcp_parse_md5sig_option says no
    assert lab.stream() == b"data"


# tcp_do_parse_auth_options (Linux 6.7+) looks at options while 18 or more
# option bytes are left; there it drops the segment for a malformed length,
# an MD5 option of another length, a bare TCP-AO header or a second MD5/AO
# option (each checked on the kernel: tests/integration/live_cases.py).
NOP = b"\x01"
AO = b"\x1d\x09" + b"\x5a" * 7  # a well-formed TCP-AO option: taken (no CONFIG_TCP_AO)
AUTH_DROPPED = [
    NOP * 2 + b"\x42\x01" + NOP * 16,  # length 1 with 18 bytes left
    NOP * 2 + b"\x42\x20" + NOP * 16,  # length past the header
    b"\x13\x0a" + b"\x5a" * 8 + NOP * 10,  # MD5 option 10 bytes long
    b"\x1d\x04\x01\x01" + NOP * 16,  # TCP-AO header only
    AO * 2 + NOP * 22,  # two AO options, the second with 31 bytes left
    AO + MD5OPT + NOP,  # AO, then MD5 with 19 bytes left
]
AUTH_TAKEN = [
    NOP * 3 + b"\x42\x01" + NOP * 15,  # length 1 with 17 bytes left: parse just stops
    AO * 2 + NOP * 2,  # the second AO with 11 bytes left: never looked at
    AO + NOP * 3,
    b"\x00" + b"\x42\x01" + NOP * 17,  # after end-of-options
]


def test_auth_option_parse_drops_what_linux_drops():
    for opts in AUTH_DROPPED:
        lab = Lab().handshake()
        lab.c(0, b"EVIL", options=opts)
        lab.c(0, b"good")
        assert lab.stream() == b"good", opts
        assert lab.counters["auth_options_dropped"] == 1 and lab.counters["md5_dropped"] == 0
        assert len(lab.notices(K.STREAM_AUTH_OPTIONS_INVALID)) == 1


def test_auth_option_parse_takes_what_linux_takes():
    for opts in AUTH_TAKEN:
        lab = Lab().handshake()
        lab.c(0, b"good", options=opts)
        lab.c(0, b"EVIL")
        assert lab.stream() == b"good", opts
        assert lab.counters["auth_options_dropped"] == 0


def test_ao_option_dropped_only_by_the_request_socket():
    """Between the SYN-ACK and the handshake's ACK the server holds a request
    socket, which drops a parsed TCP-AO option (tcp_rsk_used_ao); the
    established socket takes one (no CONFIG_TCP_AO)."""
    ao18 = b"\x1d\x12\x01\x01" + b"\x5a" * 14 + NOP * 2
    lab = Lab()
    lab.syn()
    lab.synack()
    lab.c(0, b"EVIL", options=ao18)
    lab.c(0, b"good")
    lab.c(4, b"more", options=ao18)
    assert lab.stream() == b"goodmore"
    assert lab.counters["auth_options_dropped"] == 1
    # not parsed (fewer than 18 option bytes left where it starts): taken
    lab = Lab()
    lab.syn()
    lab.synack()
    lab.c(0, b"good", options=NOP * 3 + AO + NOP * 8)
    assert lab.stream() == b"good" and lab.counters["auth_options_dropped"] == 0


def test_invalid_auth_options_on_a_syn_open_nothing():
    lab = Lab()
    lab.c(raw_seq=lab.cisn, raw_ack=0, flags=SYN, options=AUTH_DROPPED[0] + MSS)
    assert lab.r.sessions == 0 and lab.counters["auth_options_dropped"] == 1


def test_invalid_auth_options_kept_by_other_policies():
    lab = Lab(policy="windows").handshake()
    lab.c(0, b"data", options=AUTH_DROPPED[0])
    assert lab.stream() == b"data" and lab.counters["auth_options_dropped"] == 0


# ------------------------------------------------------------------ PAWS


def paws_lab(policy="linux-current"):
    lab = Lab(policy=policy)
    lab.handshake(copts=MSS + tsopt(1000), sopts=MSS + tsopt(50000))
    return lab


def test_paws_drops_an_older_timestamp():
    lab = paws_lab()
    lab.c(0, b"abc", options=tsopt(1010))
    lab.c(3, b"EVIL", options=tsopt(900))  # older than ts_recent (1010)
    lab.c(3, b"good", options=tsopt(1020))
    assert lab.stream() == b"abcgood"
    assert lab.counters["paws_dropped"] == 1
    assert len(lab.notices(K.STREAM_PAWS_FAILED)) == 1


def test_paws_tolerates_one_tick_and_wraps():
    lab = Lab()
    lab.handshake(copts=MSS + tsopt(0xFFFFFFF0), sopts=MSS + tsopt(5))
    lab.c(0, b"ab", options=tsopt(0xFFFFFFFF))
    lab.c(2, b"cd", options=tsopt(0xFFFFFFFE))  # one behind: allowed
    lab.c(4, b"ef", options=tsopt(3))  # past 2**32: newer
    assert lab.stream() == b"abcdef" and lab.counters["paws_dropped"] == 0


def test_paws_needs_both_syns_to_carry_timestamps():
    lab = Lab().handshake(copts=MSS + tsopt(1000), sopts=MSS)
    lab.c(0, b"abc", options=tsopt(1010))
    lab.c(3, b"def", options=tsopt(10))
    assert lab.stream() == b"abcdef"


def test_paws_ts_recent_moves_only_from_segments_at_the_last_ack():
    """tcp_replace_ts_recent: a segment past rcv_wup does not update it."""
    lab = paws_lab()
    lab.s(0, flags=ACK, ack=0, options=tsopt(50001))  # rcv_wup = 0
    lab.c(0, b"ab", options=tsopt(1100))  # at rcv_wup: ts_recent = 1100
    lab.c(2, b"cd", options=tsopt(5000))  # past rcv_wup: not recorded
    lab.c(4, b"ef", options=tsopt(1200))  # older than 5000 but newer than 1100
    assert lab.stream() == b"abcdef" and lab.counters["paws_dropped"] == 0
    lab.c(6, b"gh", options=tsopt(1000))  # older than 1100
    assert lab.counters["paws_dropped"] == 1


def test_an_old_copy_before_rcv_wup_moves_no_timestamp():
    """tcp_sequence discards a segment ending before rcv_wup whole, before
    its TSval counts: an old copy with a far-future TSval must not make the
    real segments after it PAWS-old (random live case: the sensor dropped
    the server's last byte)."""
    lab = paws_lab()
    lab.c(0, b"abcdef", options=tsopt(1010))
    lab.s(0, flags=ACK, ack=6, options=tsopt(50001))  # rcv_wup = 6
    lab.c(1, b"XY", flags=FIN | PA, options=tsopt(0x70000000))  # ends at 4 (FIN 3+1)
    lab.c(6, b"gh", options=tsopt(1020))
    assert lab.stream() == b"abcdefgh"
    assert lab.counters["paws_dropped"] == 0


def test_an_old_pure_ack_moves_no_timestamp():
    """A pure ACK starting before rcv_wup ends before it: tcp_sequence drops
    it before its TSval counts (live case
    tcp_old_pure_ack_with_future_timestamp: the sensor read AAAAA only)."""
    lab = paws_lab()
    lab.c(0, b"AAAAA", options=tsopt(1010))
    lab.s(0, flags=ACK, ack=5, options=tsopt(50001))  # rcv_wup = 5
    lab.c(0, flags=ACK, options=tsopt(0x70000000))
    lab.c(5, b"bbbbb", options=tsopt(1020))
    assert lab.stream() == b"AAAAAbbbbb"
    assert lab.counters["paws_dropped"] == 0


def test_a_pure_ack_of_unsent_data_moves_no_timestamp():
    """tcp_ack drops a segment acknowledging bytes never sent before its
    TSval counts, a pure ACK too (live case
    tcp_pure_ack_of_unsent_data_with_future_timestamp)."""
    lab = paws_lab()
    lab.c(0, b"AAAAA", options=tsopt(1010))
    lab.s(0, flags=ACK, ack=5, options=tsopt(50001))
    lab.c(5, flags=ACK, ack=1000, options=tsopt(0x70000000))  # the server sent nothing
    lab.c(5, b"bbbbb", options=tsopt(1020))
    assert lab.stream() == b"AAAAAbbbbb"
    assert lab.counters["paws_dropped"] == 0


def test_a_pure_ack_with_a_bad_checksum_moves_no_timestamp():
    """A pure ACK with options is checksummed like data: a forged one with a
    far-future TSval is dropped, not taken into ts_recent (live case
    tcp_pure_ack_bad_checksum_with_future_timestamp)."""
    from test_tcp_support import C, S, frame

    lab = paws_lab()
    lab.c(0, b"AAAAA", options=tsopt(1010))
    lab.s(0, flags=ACK, ack=5, options=tsopt(50001))
    f = bytearray(frame(C, S, lab.cport, lab.sport, lab.cseq(5), lab.sseq(0), ACK, b"",
                        options=tsopt(0x70000000)))
    f[14 + 20 + 16] ^= 0x5A  # the TCP checksum
    lab.feed_frame(bytes(f))
    lab.c(5, b"bbbbb", options=tsopt(1020))
    assert lab.stream() == b"AAAAAbbbbb"
    assert lab.counters["paws_dropped"] == 0


def test_paws_applies_to_all_policies():
    lab = paws_lab("windows")
    lab.c(0, b"abc", options=tsopt(1010))
    lab.c(3, b"EVIL", options=tsopt(900))
    assert lab.stream() == b"abc" and lab.counters["paws_dropped"] == 1


def test_paws_ts_recent_zero_disables_the_check():
    lab = Lab().handshake(copts=MSS + tsopt(0), sopts=MSS + tsopt(0))
    lab.c(0, b"abc", options=tsopt(0x90000000))
    assert lab.stream() == b"abc"


def test_paws_does_not_apply_to_rst():
    lab = paws_lab()
    lab.c(0, b"abc", options=tsopt(1010))
    lab.c(3, flags=0x04, options=tsopt(1))
    assert lab.counters["rst_resets"] == 1


# ------------------------------------------------------------------ FIN in the queue


@pytest.mark.parametrize("after", [[(7, b"K")], [(7, b"KL"), (9, b"M")], [(9, b"M"), (7, b"KL")]])
def test_data_right_after_a_queued_fin_is_purged_with_the_queue(after):
    """A queued segment's FIN takes the sequence number after its data; a
    segment starting right after the FIN is not coalesced into it (the
    kernel no longer appends onto a FIN), so it waits apart and is purged
    when the FIN is read. Live cases tcp_ofo_data_after_a_queued_fin_*."""
    lab = Lab().handshake()
    lab.c(0, b"abc")
    lab.c(4, b"de", flags=FIN | PA)  # FIN at seq offset 6
    for at, data in after:
        lab.c(at, data)
    lab.c(3, b"x")
    assert lab.stream() == b"abcxde"
    d = next(x for x in lab.r._dirs.values() if x.sport == lab.cport)
    assert d.fin_done


def test_every_queued_fin_is_kept_with_its_segment():
    """Two out-of-order FINs: the lower one's segment is replaced by a longer
    one with the same start (its FIN goes with it); the higher one, queued
    too, then ends the stream."""
    lab = Lab().handshake()
    lab.c(0, b"ab")
    lab.c(4, b"cd", flags=FIN | PA)  # FIN at 6: lost below
    lab.c(8, b"gh", flags=FIN | PA)  # FIN at 10
    lab.c(4, b"CDEF")  # same start, covers [4,7) (FIN included): replaces it
    d = next(x for x in lab.r._dirs.values() if x.sport == lab.cport)
    assert not d.fin_done
    lab.c(2, b"xy")
    assert lab.stream() == b"abxyCDEFgh"
    assert d.fin_done
