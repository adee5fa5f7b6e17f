"""Suricata stream events the reassembler marks on each segment
(``Packet.anomalies``, unthrottled) next to its notices (one per kind per
session): pkt_invalid_timestamp in SYN_SENT, 3whs_syn_flood,
suspected_rst_inject. Modelled on the suricata-verify captures
bug-3286-02/03, bug-7657-01 and security-4710-01."""

from __future__ import annotations

import pytest
from test_tcp_support import ACK, C, FIN, MD5OPT, MSS, PA, RST, S, SYN, Lab, frame, tsopt

from pakemon.decode import decode_frame
from pakemon.events import NoticeKind as K
from pakemon.stream.tcp import MAX_SYN_QUEUED


def feed(lab, f):
    """Feed one frame; (the decoded packet, events)."""
    pkt = decode_frame(1, f, lab.ts)
    lab.ts += 0.001
    out = lab.r.feed(pkt)
    lab.events += out
    return pkt, out


def server(lab, flags, seq, ack, options=b"", data=b""):
    return feed(lab, frame(S, C, lab.sport, lab.cport, seq, ack, flags, data, options=options))


def client(lab, flags, seq, ack, options=b"", data=b""):
    return feed(lab, frame(C, S, lab.cport, lab.sport, seq, ack, flags, data, options=options))


TS_BOGUS = b"\x08\x0a" + (100).to_bytes(4, "big") + (100).to_bytes(4, "big") + b"\0\0"


@pytest.mark.parametrize("policy", ["linux-current", "windows", "bsd"])
@pytest.mark.parametrize("client_ts", [True, False], ids=["syn-ts", "syn-no-ts"])
def test_forged_answers_to_the_syn_with_a_bogus_timestamp_are_dropped(policy, client_ts):
    lab = Lab(policy=policy, checksum="off")
    opts = MSS + (tsopt(1821165629) if client_ts else b"")
    client(lab, SYN, lab.cisn, 0, opts)
    rst, _ = server(lab, RST | ACK, 0, lab.cseq(0), TS_BOGUS)
    fin, _ = server(lab, FIN | ACK, 0, lab.cseq(0), TS_BOGUS)
    assert K.STREAM_PAWS_FAILED in rst.anomalies and K.STREAM_PAWS_FAILED in fin.anomalies
    assert len(lab.notices(K.STREAM_PAWS_FAILED)) == 1  # notices stay one per session
    # the forged RST did not reset anything: the real handshake and data go through
    echo = tsopt(13521974, 1821165629) if client_ts else b""
    lab.synack(MSS + echo)
    client(lab, ACK, lab.cseq(0), lab.sseq(0), tsopt(1821165700, 13521974) if client_ts else b"")
    client(lab, PA, lab.cseq(0), lab.sseq(0), tsopt(1821165700, 13521974) if client_ts else b"",
           b"GET / HTTP/1.1\r\n\r\n")
    assert lab.stream() == b"GET / HTTP/1.1\r\n\r\n"
    assert not lab.notices(K.STREAM_DATA_AFTER_RST)


def test_a_syn_ack_echoing_the_syn_timestamp_is_not_flagged():
    lab = Lab(checksum="off")
    client(lab, SYN, lab.cisn, 0, MSS + tsopt(5000))
    synack, _ = server(lab, SYN | ACK, lab.sisn, lab.cseq(0), MSS + tsopt(77, 5000))
    assert synack.anomalies == ()
    rst, _ = server(lab, RST | ACK, lab.sseq(0), lab.cseq(0), tsopt(78, 5000))
    assert K.STREAM_PAWS_FAILED not in rst.anomalies


@pytest.mark.parametrize("order", ["echo-first", "bogus-first"])
def test_of_two_timestamp_options_the_last_is_the_one_judged(order):
    # tcp_parse_options overwrites rcv_tsecr at each timestamp option: an
    # echo of the SYN put first cannot vouch for a bogus one after it.
    lab = Lab(checksum="off")
    client(lab, SYN, lab.cisn, 0, MSS + tsopt(5000))
    good = tsopt(77, 5000)[2:]  # the option alone, without its NOPs
    bad = TS_BOGUS[:10]
    opts = (good + bad if order == "echo-first" else bad + good) + b"\0\0\0\0"
    rst, _ = server(lab, RST | ACK, lab.sisn, lab.cseq(0), opts)
    assert (K.STREAM_PAWS_FAILED in rst.anomalies) == (order == "echo-first")


def test_syn_flood_before_the_handshake_is_flagged_per_syn_past_the_queue():
    lab = Lab(policy="windows", checksum="off")
    flagged = []
    isns = [1317897315 + 7919 * i for i in range(MAX_SYN_QUEUED + 4)]
    for isn in isns:
        pkt, _ = client(lab, SYN, isn, 0)
        flagged.append(K.STREAM_SYN_FLOOD_3WHS in pkt.anomalies)
    # the first SYN opens the session, the next MAX_SYN_QUEUED are queued
    assert flagged == [False] * (MAX_SYN_QUEUED + 1) + [True] * 3
    # a retransmission of the current SYN is no new SYN
    pkt, _ = client(lab, SYN, isns[-1], 0)
    assert K.STREAM_SYN_FLOOD_3WHS not in pkt.anomalies
    assert len(lab.notices(K.STREAM_SYN_FLOOD_3WHS)) == 1
    # the session still follows the last SYN: the real handshake and data pass
    lab.cisn = isns[-1]
    lab.synack()
    client(lab, ACK, lab.cseq(0), lab.sseq(0))
    client(lab, PA, lab.cseq(0), lab.sseq(0), data=b"POST /?-d HTTP/1.1\r\n\r\n")
    assert lab.stream() == b"POST /?-d HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize("policy", ["windows", "linux-current"])
def test_data_from_the_sender_of_a_rst_is_a_suspected_rst_injection(policy):
    lab = Lab(policy=policy, checksum="off").handshake()
    # an MD5-signed RST: dropped by linux-current (no key), taken by windows
    rst, _ = client(lab, RST | ACK, lab.cseq(0), lab.sseq(0), MD5OPT + b"\0\0")
    get, _ = client(lab, PA, lab.cseq(0), lab.sseq(0), data=b"GET /ultrasurf.html HTTP/1.1\r\n\r\n")
    more, _ = client(lab, PA, lab.cseq(33), lab.sseq(0), data=b"x")
    if policy == "windows":
        assert K.STREAM_SUSPECTED_RST_INJECT in get.anomalies
        assert K.STREAM_SUSPECTED_RST_INJECT not in more.anomalies  # once per session
    else:
        assert K.STREAM_SUSPECTED_RST_INJECT not in get.anomalies  # the RST never counted
    assert lab.stream().startswith(b"GET /ultrasurf.html")


def test_data_from_the_peer_of_a_rst_is_not_an_injection():
    lab = Lab(policy="windows", checksum="off").handshake()
    server(lab, RST | ACK, lab.sseq(0), lab.cseq(0))
    get, _ = client(lab, PA, lab.cseq(0), lab.sseq(0), data=b"GET / HTTP/1.1\r\n\r\n")
    assert K.STREAM_SUSPECTED_RST_INJECT not in get.anomalies
    assert K.STREAM_DATA_AFTER_RST in get.anomalies
