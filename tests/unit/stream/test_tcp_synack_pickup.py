"""A session picked up at the SYN-ACK (midstream on) whose client bytes and
ACK the capture lacks: the server's side is still reassembled
(suricata-verify stream-async-6063-srv-03, KNOWN.md finding 3)."""

from __future__ import annotations

from test_tcp_support import ACK, FIN, PA, Lab


def test_server_side_after_a_synack_pickup_with_missed_client_data():
    lab = Lab(checksum="off")
    lab.synack()                      # picked up here: the SYN was not captured
    # the server acknowledges 81 client bytes the capture does not hold
    lab.s(0, b"uid=0(root) gid=0(root)\n", ack=81)
    lab.s(24, flags=FIN | ACK, ack=81)
    assert lab.stream("s") == b"uid=0(root) gid=0(root)\n"
    # the client's stream starts at that ACK: its next bytes are read there
    lab.c(81, b"next", ack=25)
    assert lab.stream("c") == b"next"


def test_without_midstream_no_synack_pickup_at_all():
    lab = Lab(checksum="off", midstream=False)
    lab.synack()
    lab.s(0, b"uid=0(root)", ack=81)
    assert lab.stream("s") == b"" and lab.counters["midstream_ignored"] >= 1


def test_a_full_handshake_still_needs_the_exact_ack():
    # SYN seen: the client's ISN is known, so an ACK past its data is no proof
    lab = Lab(checksum="off")
    lab.syn()
    lab.synack()
    lab.s(0, b"early", ack=81)
    assert lab.stream("s") == b"" and lab.counters["handshake_ignored"] == 1
    lab.c(0, flags=ACK)
    lab.s(0, b"later", flags=PA)
    assert lab.stream("s") == b"later"
