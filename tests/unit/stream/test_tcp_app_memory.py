"""What the stages above the stream hold per connection is charged to the
session budget (``TcpReassembler.charge_app``), so a slowloris of unfinished
requests cannot hold more than the sessions it displaces.

Before the charge, 40,000 connections that each left 1 KB of header lines
(or 4 KB of blank lines) unfinished held 9 KB a session with the bundled
rules and 17 KB with a Suricata ``http`` rule, while the table admitted them
at a flat 4 KB: 232 and 385 MB against a 196 MB bound (bench/floods.py,
``slowloris``).
"""

from __future__ import annotations

import zlib

import pytest
from helpers import BUNDLED_RULES

from pakemon.applayer.http_response import DECODER_COST, HttpResponseParser
from pakemon.config import Config
from pakemon.detect.http import HttpRequestParser
from pakemon.detect.rule_parser import load_rules
from pakemon.detect.sigengine import DIRSTATE_COST, SigRuleSet
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection, http_exchange
from pakemon.stream.tcp import SESSION_COST

SURICATA = """\
alert http any any -> any any (msg:"sig phf"; flow:to_server; http.uri; content:"/cgi-bin/phf"; \
sid:1;)
"""
HEADERS = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n" + b"".join(
    b"X-Pad-%02d: %s\r\n" % (k, b"a" * 50) for k in range(20))
BLANKS = b"\r\n" * 700


def _pipeline(suricata: bool, max_sessions: int, rules: str = SURICATA):
    from pakemon.pipeline import Pipeline

    cfg = Config()
    cfg.stream.max_sessions = max_sessions
    sig = SigRuleSet(parse_suricata_rules(rules)[0]) if suricata else None
    return Pipeline(load_rules(str(BUNDLED_RULES)).rules, cfg, sig=sig)


def _charged(tcp) -> int:
    return sum(d.app_mem for s in tcp._sessions for d in (s.client, s.server))


@pytest.mark.parametrize("suricata", [False, True], ids=["native", "native+suricata"])
def test_a_slowloris_is_bounded_by_the_session_budget(suricata):
    pipe = _pipeline(suricata, max_sessions=200)
    tcp = pipe.tcp
    budget = 200 * SESSION_COST
    assert tcp.app_budget == budget
    most = 0
    for i in range(600):
        conn = TcpConnection(f"10.3.{i // 250}.{i % 250 + 1}", "10.80.0.80", 20000 + i, 80,
                             ts=i * 0.001).open()
        if i & 1:
            conn.send(HEADERS[:700])  # the request line and half the headers
            conn.send(HEADERS[700:])  # the rest, still no empty line
        else:
            for _ in range(3):
                conn.send(BLANKS)
        for ts, frame in conn.frames:
            pipe.feed(ts, frame)
        # what each session holds is charged, and the charges add up
        assert tcp.app_memory == _charged(tcp)
        assert not tcp.over_budget()
        most = max(most, tcp.app_memory)
    c = tcp.counters()
    # unfinished headers and held blank lines weigh more than the flat cost:
    # the table held fewer than its 200 sessions, the oldest went first
    assert c["evicted_app_memory"] > 0
    assert c["evicted"] >= c["evicted_app_memory"]
    assert tcp.sessions < 200
    assert most > tcp.sessions * 1500
    # an attack after the flood still alerts, on both rule formats
    events = []
    for ts, frame in http_exchange("198.51.100.66", "10.80.0.80", 40666,
                                   b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n", b"ok", ts=1.0):
        events += pipe.feed(ts, frame)
    names = {e.rule.signature for e in events if hasattr(e, "rule")}
    assert "CGI-phf(CVE-1999-0067)" in names
    if suricata:
        assert "sig phf" in names
    # every session ended gives its charge back
    pipe.flush()
    assert tcp.sessions == 0
    assert tcp.app_memory == 0


def test_ordinary_connections_are_charged_their_state_only():
    """Finished requests and responses keep nothing in progress: each
    direction is charged its fixed state, its last packet and its dump
    history only, and a table with room for them evicts none."""
    pipe = _pipeline(True, max_sessions=400)
    for i in range(150):
        conn = TcpConnection(f"10.4.0.{i + 1}", "10.80.0.80", 30000 + i, 80, ts=i * 0.001).open()
        conn.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", from_client=False)
        for ts, frame in conn.frames:
            pipe.feed(ts, frame)
    tcp = pipe.tcp
    assert tcp.counters()["evicted"] == 0
    assert tcp.sessions == 150
    for s in tcp._sessions:
        for d in (s.client, s.server):
            assert 0 < d.app_mem < DIRSTATE_COST + 1024, d.app_mem


def test_request_parser_held_follows_the_message_in_progress():
    p = HttpRequestParser(body_cap=64 * 1024, keep_headers=True)
    assert p.held() == 0
    p.feed(HEADERS)
    unfinished = p.held()
    assert unfinished >= 2 * len(HEADERS)  # the lines, kept as parsed pairs
    p.feed(b"\r\n")
    assert p.held() < 64  # complete: the parser keeps nothing of it
    p.feed(b"POST /x HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"b" * 3000)
    assert 3000 <= p.held() < 3200  # the body so far


def test_request_parser_held_counts_kept_lines_not_skipped_ones():
    """A line too long is cut and the rest skipped: the header lines kept
    before it stay charged while it is skipped, the skipped bytes are not."""
    p = HttpRequestParser(body_cap=0, keep_headers=True)
    p.feed(HEADERS)
    kept = p.held()
    p.feed(b"X-Long: " + b"x" * 200_000)  # never ends: cut, then skipped
    assert kept <= p.held() < kept + 3 * p.max_line + 64


def test_request_parser_without_keep_headers_keeps_framing_headers_only():
    """The native engine's parser (keep_headers=False) kept every header
    line that came line by line, though its block path keeps none."""
    p = HttpRequestParser(body_cap=0, keep_headers=False)
    p.feed(b"POST /a HTTP/1.1\r\n")
    for k in range(30):
        p.feed(b"X-Pad-%02d: %s\r\n" % (k, b"a" * 50))
    p.feed(b"Content-Length: 3\r\n")
    p.feed(b" \r\n")  # (a fold of nothing)
    p.feed(b"X-Other: 1\r\n")
    p.feed(b"  continued\r\n")  # continues X-Other: not kept either
    req = p.current
    assert [name for name, _ in req.headers] == [b"Content-Length"]
    (nxt,) = p.feed(b"\r\nabcGET /b HTTP/1.0\r\n\r\n")
    assert req.complete and req.body_length == 3  # framed by the header kept
    assert nxt.target == b"/b"


def test_response_parser_held_counts_headers_body_and_decompressor():
    p = HttpResponseParser()
    p.expect(b"GET")
    p.feed(b"HTTP/1.1 200 OK\r\nServer: x\r\n" + b"X-Pad: " + b"a" * 900 + b"\r\n")
    assert p.held() >= 900
    body = zlib.compress(b"z" * 20000)
    p.feed(b"Content-Encoding: deflate\r\nContent-Length: %d\r\n\r\n" % len(body))
    p.feed(body[:len(body) // 2])
    assert p.held() >= DECODER_COST
    p.feed(body[len(body) // 2:])
    assert p.held() < 64  # complete: handed out



# rules that make every kind of per-direction state: stream both ways, HTTP
# request and response (bodies), TLS, DNS
BROAD = """\
alert tcp any any -> any any (msg:"stream to server"; flow:to_server; content:"evil"; sid:1;)
alert tcp any any -> any any (msg:"stream to client"; flow:to_client; content:"evil"; sid:2;)
alert http any any -> any any (msg:"uri"; http.uri; content:"/evil"; sid:3;)
alert http any any -> any any (msg:"resp"; flow:to_client; http.stat_code; content:"404"; sid:4;)
alert http any any -> any any (msg:"body"; flow:to_client; file.data; content:"evil"; sid:5;)
alert tls any any -> any any (msg:"sni"; tls.sni; content:"evil"; sid:6;)
alert dns any any -> any any (msg:"dns"; dns.query; content:"evil"; sid:7;)
"""


def _corpus():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    corpus = root.parent / "shared" / "conformance" / "suricata-verify"
    return sorted(corpus.glob("*/input.pcap")) if corpus.is_dir() else []


@pytest.mark.skipif(not _corpus(), reason="suricata-verify corpus not found")
def test_charges_add_up_over_the_conformance_corpus():
    """Every pcap of the suricata-verify corpus (reconnections, SYN floods,
    overlaps, midstream pickups, gaps, TLS, DNS, SMTP, HTTP) through both
    engines: the budget's total is always the sum of the live sessions'
    charges, and every session ended gives its charge back."""
    from pakemon.capture import open_capture
    from pakemon.capture.pcapfile import CaptureError
    from pakemon.pipeline import Pipeline

    charged = 0
    for pcap in _corpus():
        pipe = Pipeline(load_rules(str(BUNDLED_RULES)).rules,
                        sig=SigRuleSet(parse_suricata_rules(BROAD)[0]))
        tcp = pipe.tcp
        try:
            with open_capture(str(pcap)) as reader:
                for n, (ts, linktype, frame) in enumerate(reader):
                    pipe.feed(ts, frame, linktype)
                    if n % 16 == 0:
                        assert tcp.app_memory == _charged(tcp), pcap.parent.name
        except CaptureError:
            pass  # (a case's broken capture: what came before it was fed)
        assert tcp.app_memory == _charged(tcp), pcap.parent.name
        charged += tcp.app_memory > 0
        pipe.flush()
        assert tcp.app_memory == 0, pcap.parent.name
    assert charged > 20  # (the corpus did leave state to charge)


def test_bytes_released_by_their_ack_give_back_their_charge():
    """A rule reading the servers' side keeps each response's bytes until
    the client ACKs them (Suricata's IDS mode inspects then); once they are
    inspected the direction is charged its state only. A charge left at its
    peak (~40 KB for a 30 KB response) stayed on every closed session for
    its 60 s closed timeout: the bench capture's one-at-a-time sessions
    overran the budget and, with the ET set, 2,102 of 6,789 were evicted."""
    pipe = _pipeline(True, max_sessions=400, rules=BROAD)
    tcp = pipe.tcp
    body = bytes(range(256)) * 120  # 30 KB, as the bench capture's largest
    for i in range(150):
        for ts, frame in http_exchange(f"10.5.0.{i + 1}", "10.80.0.80", 31000 + i,
                                       b"GET /a.html HTTP/1.0\r\nHost: x\r\n\r\n", body,
                                       ts=i * 0.01):
            pipe.feed(ts, frame)
        assert tcp.app_memory == _charged(tcp)
    c = tcp.counters()
    assert c["evicted"] == 0 and c["closed_retired_early"] == 0
    assert tcp.sessions == 150  # all closed, none timed out yet
    for s in tcp._sessions:
        # its fixed state, the 2 KB tail kept for patterns across chunks,
        # the last packet: nothing of the 30 KB
        assert s.server.app_mem < DIRSTATE_COST + 2048 + 1024, s.server.app_mem
    pipe.flush()
    assert tcp.app_memory == 0


def test_ended_streams_let_go_of_their_parsers_and_last_packet():
    """A closed session waits up to its 60 s closed timeout for late copies;
    once both streams ended (each FIN read), its Suricata state keeps what a
    late packet may still read (the flow, the view) and nothing of the
    stream: no parser, no pending bytes, no last packet. That packet's frame
    and IP payload copies, kept on each closed direction, were ~10 MB of
    peak RSS with the ET set on the bench capture, and every closed
    session's parsers were walked by each collection of the collector."""
    from pakemon.detect.sigengine import held_by

    pipe = _pipeline(True, max_sessions=400, rules=BROAD)
    tcp = pipe.tcp
    events = []
    for i in range(40):
        body = b"evil body" if i == 7 else b"x" * 3000
        for ts, frame in http_exchange(f"10.7.0.{i + 1}", "10.80.0.80", 33000 + i,
                                       b"GET /a.html HTTP/1.0\r\nHost: x\r\n\r\n", body,
                                       ts=i * 0.01):
            events += pipe.feed(ts, frame)
    # (what they held was inspected before it went)
    assert {e.rule.signature for e in events if hasattr(e, "rule")} == {
        "stream to client", "body"}
    assert tcp.sessions == 40
    for s in tcp._sessions:
        for d in (s.client, s.server):
            st = d.det.sig
            assert st.ended and st.view is not None and st.flow is not None
            assert st.last_pkt is None and st.http is None and st.resp is None
            assert not st.pending and not st.reqs and not st.acc
            assert held_by(st) == DIRSTATE_COST
    assert tcp.app_memory == _charged(tcp)


def test_closed_sessions_make_room_before_open_ones():
    """When the table or the budget is full, sessions whose streams both
    ended go first (nothing of them is lost: they wait only for late
    copies), counted apart from evictions: a busy server's closing
    connections, 60 s each, no longer push out the open connection an
    attack is split across, and raise no eviction notice. Not before they
    have been quiet for CLOSED_GRACE_S: the last ACK may still come."""
    pipe = _pipeline(True, max_sessions=64)
    tcp = pipe.tcp
    events = []
    attack = TcpConnection("198.51.100.7", "10.80.0.80", 41000, 80, ts=0.0).open()
    attack.send(b"GET /cgi-bin/p")
    for ts, frame in attack.frames:
        events += pipe.feed(ts, frame)
    attack.frames.clear()
    for i in range(300):
        for ts, frame in http_exchange(f"10.6.{i // 200}.{i % 200 + 1}", "10.80.0.80",
                                       32000 + i, b"GET /a.html HTTP/1.0\r\n\r\n",
                                       b"x" * 3000, ts=1.0 + i * 0.1):
            events += pipe.feed(ts, frame)
    c = tcp.counters()
    assert c["closed_retired_early"] >= 300 - 64
    assert c["evicted"] == 0 and c["evicted_app_memory"] == 0
    assert not [e for e in events if getattr(e, "kind", None) is not None
                and "EVICTED" in str(e.kind)]
    attack.send(b"hf?Qalias=x HTTP/1.0\r\n\r\n")
    for ts, frame in attack.frames:
        events += pipe.feed(ts + 40.0, frame)
    names = {e.rule.signature for e in events if hasattr(e, "rule")}
    assert "CGI-phf(CVE-1999-0067)" in names and "sig phf" in names
    assert tcp.counters()["resumed_after_eviction"] == 0


@pytest.mark.parametrize("suricata", [False, True], ids=["native", "native+suricata"])
def test_a_request_line_cut_by_an_eviction_is_parsed_again_on_return(suricata):
    """The attack's request line, its URI percent-encoded and padded with dot
    segments past the 64-byte resume tail, is cut in two and its session
    evicted in between by open connections. On its return the stream
    resumes after the bytes of the unfinished request (the HTTP parser's:
    TcpReassembler.resume_need), so the request is parsed from its start
    and its normalized URI matched; with only the last 64 bytes the
    request line was lost and the attack missed."""
    pipe = _pipeline(suricata, max_sessions=64)
    tcp = pipe.tcp
    events = []
    request = b"GET /" + b"a/../" * 20 + b"cgi-bin/%70hf?Qalias=x HTTP/1.0\r\n\r\n"
    attack = TcpConnection("198.51.100.7", "10.80.0.80", 41000, 80, ts=0.0).open()
    attack.send(request[:120])
    for ts, frame in attack.frames:
        events += pipe.feed(ts, frame)
    attack.frames.clear()
    for i in range(200):  # open connections, each with a request and no end
        conn = TcpConnection(f"10.7.{i // 200}.{i % 200 + 1}", "10.80.0.80", 33000 + i, 80,
                             ts=1.0 + i * 0.01).open()
        conn.send(b"GET /a.html HTTP/1.1\r\nHost: x\r\n\r\n")
        for ts, frame in conn.frames:
            events += pipe.feed(ts, frame)
    assert tcp.counters()["evicted"] >= 200 - 64
    attack.send(request[120:])
    for ts, frame in attack.frames:
        events += pipe.feed(ts + 10.0, frame)
    assert tcp.counters()["resumed_after_eviction"] == 1
    names = {e.rule.signature for e in events if hasattr(e, "rule")}
    assert "CGI-phf(CVE-1999-0067)" in names
    if suricata:
        assert "sig phf" in names


def test_a_sink_takes_in_order_bytes_charged_and_up_to_its_bound():
    """A direction with a sink (TcpDirection.sink): its in-order bytes are
    appended there with no event, each charged to the session's app memory
    as it comes; a segment that would pass ``sink_max``, one after a hole
    (the gap must be seen), and out-of-order ones filling a hole (the queue's
    path) come as StreamData as before, in stream order."""
    from test_tcp_support import Lab

    lab = Lab().handshake()
    lab.c(0, b"GET / HTTP/1.1\r\n\r\n")
    lab.s(0, b"HTTP/1.1 200 OK\r\n", ack=18)  # a first delivery, as an event
    (s,) = lab.r._sessions
    d = s.server
    sink = d.sink = bytearray(b"HTTP/1.1 200 OK\r\n")
    d.sink_max = 40
    mem0, dmem0 = lab.r.app_memory, d.app_mem
    n_events = len(lab.pieces("s"))
    lab.s(17, b"A" * 10, ack=18)
    lab.s(27, b"B" * 10, ack=18)
    assert bytes(sink) == b"HTTP/1.1 200 OK\r\n" + b"A" * 10 + b"B" * 10
    assert len(lab.pieces("s")) == n_events  # no event for them
    assert lab.r.app_memory == mem0 + 20 and d.app_mem == dmem0 + 20
    assert d.sink_pkt is not None and d.sink_pkt.payload == b"B" * 10
    lab.s(37, b"C" * 10, ack=18)  # 47 > sink_max: an event, the sink untouched
    assert len(sink) == 37 and lab.pieces("s")[-1] == (b"C" * 10, False)
    # a hole, then its bytes: the later segment waits in the queue, the
    # hole's bytes and it are delivered by the queue's path, as events
    d.sink_max = 1 << 20
    lab.s(57, b"E" * 10, ack=18)
    lab.s(47, b"D" * 10, ack=18)
    assert lab.stream("s").endswith(b"C" * 10 + b"D" * 10 + b"E" * 10)
    assert len(sink) == 37
    lab.s(67, b"F" * 5, ack=18)  # in order again: the sink
    assert sink.endswith(b"F" * 5) and not lab.stream("s").endswith(b"F" * 5)
    # bytes after a hole the reassembler gave up (gap_pending, as a flush or
    # the queue limit leave it) carry the gap: an event, never the sink
    d.gap_pending = True
    lab.s(72, b"G" * 5, ack=18)
    assert lab.pieces("s")[-1] == (b"G" * 5, True) and not sink.endswith(b"G" * 5)
