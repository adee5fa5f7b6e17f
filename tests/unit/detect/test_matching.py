"""Matching through the pipeline: AND patterns, split patterns, once per direction."""

import pytest
from helpers import BUNDLED_RULES, alert_names, pipeline_from, run_frames

from hypothesis import given, settings
from hypothesis import strategies as st

from pakemon.detect.rule_parser import load_rules
from pakemon.events import Alert
from pakemon.pipeline import Pipeline
from pakemon.lab.traffic import (TcpConnection, icmp_frame, ping_exchange, udp_frame,
                                 http_exchange)

C, S = "10.0.0.1", "10.0.0.2"
FORMMAIL = "CGI-formmail-cmd(CVE-1999-0172)"


def test_pattern_split_across_two_segments_is_found():
    pipe = pipeline_from('CGI-phf tcp * 80 "/cgi-bin/phf"\n')
    conn = TcpConnection(C, S, 40000, 80).open()
    conn.send(b"GET /cgi-b")
    conn.send(b"in/phf?Qalias=x HTTP/1.0\r\n\r\n")
    events = run_frames(pipe, conn.close())
    alerts = [e for e in events if isinstance(e, Alert)]
    assert [a.rule.name for a in alerts] == ["CGI-phf"]
    a = alerts[0]
    assert (a.src_ip, a.src_port, a.dst_ip, a.dst_port, a.proto) == (C, 40000, S, 80, "TCP")
    # the dump is the stream up to and including the match
    assert a.dump == b"GET /cgi-bin/phf"
    assert a.payload == b"in/phf?Qalias=x HTTP/1.0\r\n\r\n"


def test_pattern_split_one_byte_per_segment():
    pipe = pipeline_from("X tcp * 80 'ADMINISTRATORS.pwd'\n")
    conn = TcpConnection(C, S, 40001, 80).open()
    conn.send(b"GET /_vti_pvt/administrators.pwd HTTP/1.0\r\n\r\n", segment=1)
    assert alert_names(run_frames(pipe, conn.close())) == ["X"]


def test_and_patterns_found_in_any_order_across_segments():
    pipe = pipeline_from("AND tcp * 25 'rcpt to:' 'decode'\n")
    conn = TcpConnection(C, S, 40002, 25).open()
    conn.send(b"HELO x\r\nMAIL FROM:<a@b>\r\n")
    conn.send(b"DATA decode\r\n")
    events = [e for ts, f in conn.frames for e in pipe.feed(ts, f)]
    assert alert_names(events) == []
    conn.frames.clear()
    conn.send(b"RCPT TO: bin\r\n")
    assert alert_names(run_frames(pipe, conn.close())) == ["AND"]


def test_and_patterns_in_the_other_direction_do_not_combine():
    pipe = pipeline_from("AND tcp * 80 'foo' 'bar'\n")
    conn = TcpConnection(C, S, 40003, 80).open()
    conn.send(b"foo")
    conn.send(b"bar", from_client=False)  # server to client: not this direction
    assert alert_names(run_frames(pipe, conn.close())) == []


def test_rule_alerts_once_per_flow_direction():
    pipe = pipeline_from('PHF tcp * 80 "phf"\n')
    conn = TcpConnection(C, S, 40004, 80).open()
    for _ in range(3):
        conn.send(b"GET /cgi-bin/phf HTTP/1.0\r\n")
    events = run_frames(pipe, conn.close())
    assert alert_names(events) == ["PHF"]
    # a second connection alerts again
    events = run_frames(pipe, http_exchange(C, S, 40005, b"GET /phf HTTP/1.0\r\n\r\n"))
    assert alert_names(events) == ["PHF"]


def test_retransmitted_segment_is_not_searched_twice_as_new_data():
    pipe = pipeline_from("A tcp * 80 'GET /a'\n")
    conn = TcpConnection(C, S, 40006, 80).open()
    conn.send(b"GET /b HTTP/1.0\r\n")
    frames = conn.frames + [conn.frames[-2]]  # the data segment again
    assert alert_names(run_frames(pipe, frames)) == []


def test_service_node_direction_is_respected():
    pipe = pipeline_from('PHF tcp * 80 "phf"\n')
    # the server (port 80) sends "phf": SRC * DST 80 wants the client's data
    conn = TcpConnection(C, S, 40007, 80).open()
    conn.send(b"here is phf", from_client=False)
    assert alert_names(run_frames(pipe, conn.close())) == []


def test_udp_patterns_must_be_in_one_datagram():
    pipe = pipeline_from("RPC udp * 111 |01 86 A2| |00 00 00 03|\n")
    split = [(0.0, udp_frame(C, S, 700, 111, b"\x01\x86\xa2")),
             (0.1, udp_frame(C, S, 700, 111, b"\x00\x00\x00\x03"))]
    assert alert_names(run_frames(pipe, split)) == []
    whole = [(0.2, udp_frame(C, S, 701, 111, b"\x00\x00\x00\x03xx\x01\x86\xa2"))]
    assert alert_names(run_frames(pipe, whole)) == ["RPC"]


def test_any_payload_rule_fires_on_first_datagram_of_flow_only():
    pipe = pipeline_from("BO udp * 31337 *\n")
    frames = [(i * 1.0, udp_frame(C, S, 1031, 31337, b"x" * i)) for i in range(3)]
    events = run_frames(pipe, frames)
    alerts = [e for e in events if isinstance(e, Alert)]
    assert [a.rule.name for a in alerts] == ["BO"]
    assert alerts[0].ts == 0.0


def test_datagram_flow_alerts_again_after_idle_timeout():
    pipe = pipeline_from("BO udp * 31337 *\n")
    frames = [(0.0, udp_frame(C, S, 1031, 31337, b"a")),
              (10.0, udp_frame(C, S, 1031, 31337, b"b")),
              (1000.0, udp_frame(C, S, 1031, 31337, b"c"))]
    assert alert_names(run_frames(pipe, frames)) == ["BO", "BO"]


def test_icmp_rule_uses_type_and_code_and_regex():
    pipe = pipeline_from("BIG icmp 8 0 <.{1000}>\n")
    small = ping_exchange(C, S, 1, 1, size=56)
    big = ping_exchange(C, S, 1, 2, size=1200, ts=1.0)
    events = run_frames(pipe, small + big)
    alerts = [e for e in events if isinstance(e, Alert)]
    assert [a.rule.name for a in alerts] == ["BIG"]
    assert (alerts[0].icmp_type, alerts[0].icmp_code, alerts[0].src_port) == (8, 0, None)
    assert alerts[0].proto == "ICMP"


def test_ip_rule_searches_every_ip_payload():
    pipe = pipeline_from("NOP ip * * |90 90 90 90 90 90 90 90|\n")
    frames = [(0.0, udp_frame(C, S, 5, 6, b"\x90" * 20)),
              (0.1, icmp_frame(C, S, 8, 0, b"\0" * 4 + b"\x90" * 10)),
              (0.2, udp_frame(C, S, 5, 7, b"\x91" * 20))]
    events = run_frames(pipe, frames)
    alerts = [e for e in events if isinstance(e, Alert)]
    assert [(a.rule.name, a.proto) for a in alerts] == [("NOP", "IP"), ("NOP", "IP")]


def test_frames_fitting_no_service_node_are_only_counted():
    pipe = pipeline_from('PHF tcp * 80 "phf"\n')
    frames = http_exchange(C, S, 40010, b"GET /phf HTTP/1.0\r\n\r\n", port=8080)
    assert alert_names(run_frames(pipe, frames)) == []
    assert pipe.stats.inspected == 0
    assert pipe.stats.tcp == len(frames)


def test_random_frames_through_the_pipeline_never_raise():
    from hypothesis import given, settings, strategies as st

    from helpers import BUNDLED_RULES
    from pakemon.detect.rule_parser import load_rules
    from pakemon.events import Notice
    from pakemon.pipeline import Pipeline

    pipe = Pipeline(load_rules(BUNDLED_RULES).rules)
    base = http_exchange(C, S, 40020, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n")[3][1]

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200), st.integers(0, len(base)), st.sampled_from([0, 1, 101, 113, 276]))
    def run(junk, cut, linktype):
        for frame in (junk, base[:cut] + junk, base[:cut]):
            events = pipe.feed(0.0, frame, linktype)
            assert all(isinstance(e, (Alert, Notice)) for e in events)

    run()
    assert pipe.stats.malformed > 0


def test_any_payload_tcp_rule_fires_on_the_connection_attempt():
    pipe = pipeline_from("NETBUS tcp * 12345 *\n")
    conn = TcpConnection(C, S, 40030, 12345)
    conn.open()
    events = run_frames(pipe, conn.frames[:1])  # the SYN alone
    alerts = [e for e in events if isinstance(e, Alert)]
    assert [a.rule.name for a in alerts] == ["NETBUS"]
    assert (alerts[0].src_port, alerts[0].dst_port) == (40030, 12345)


def test_syn_scan_gives_one_scan_notice():
    from pakemon.events import Notice
    from pakemon.lab.traffic import SYN, tcp_frame

    pipe = pipeline_from('PHF tcp * 80 "phf"\n')
    frames = [(port * 0.01, tcp_frame(C, S, 50000, port, 1000, 0, SYN)) for port in range(1, 200)]
    notices = [e for e in run_frames(pipe, frames) if isinstance(e, Notice)]
    assert [n.message for n in notices] == [f"Scan from {C} scan type: SYN"]
    assert notices[0].kind.event_type == "scan"


def test_dump_after_a_long_stream_is_its_last_4_kib_up_to_the_match():
    """The dump (spec/outputs.md: the stream up to and including the match,
    at most the last 4 KiB) spans many earlier segments."""
    pipe = pipeline_from('CGI-phf tcp * 80 "/cgi-bin/phf"\n')
    conn = TcpConnection(C, S, 40010, 80).open()
    body = bytes(range(33, 127)) * 100  # 9,400 bytes before the match
    stream = b"POST /x HTTP/1.0\r\n\r\n" + body + b"GET /cgi-bin/phf"
    conn.send(stream, segment=700)
    (a,) = [e for e in run_frames(pipe, conn.close()) if isinstance(e, Alert)]
    assert a.dump == stream[-4096:]


def test_stream_history_holds_the_delivered_chunks_not_copies():
    """What a direction keeps for dumps and regexes is the chunks the
    reassembler delivered (it holds the same objects), at least the last
    HISTORY_BYTES of them and at most one chunk more: a flood of
    connections with data pending held each byte twice when the history was
    a joined copy."""
    from pakemon.detect.engine import HISTORY_BYTES, StreamMatch

    sm = StreamMatch()
    chunks = [bytes([65 + i % 26]) * 1000 for i in range(20)]
    for c in chunks:
        sm.remember(c)
    assert all(any(x is c for c in chunks) for x in sm.chunks)
    assert sm.hist == b"".join(chunks)[-HISTORY_BYTES:]
    assert sm.chunks_len - len(sm.chunks[0]) < HISTORY_BYTES <= sm.chunks_len
    sm.gap()
    assert sm.hist == b"" and sm.chunks_len == 0


def test_gated_regex_runs_on_later_segments_once_its_literal_was_found():
    """A regex waits for its rule's literals (here "/level/", the part it
    cannot match without): segments before them skip it, a segment after
    them runs it over the window that still holds them."""
    pipe = pipeline_from("LVL tcp * 80 <(?i)/level/[0-9]+/exec/>\nU tcp * 80 <USER [^\\n]{9}>\n")
    conn = TcpConnection(C, S, 40010, 80).open()
    conn.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")  # neither literal: skipped
    conn.send(b"GET /LEVEL/")  # the literal, not yet the match
    conn.send(b"15/exec/ HTTP/1.0\r\n\r\n")
    assert alert_names(run_frames(pipe, conn.close())) == ["LVL"]
    conn = TcpConnection(C, S, 40011, 80).open()
    conn.send(b"GET /level/x/exec/ HTTP/1.0\r\n\r\n")  # literal, no match
    assert alert_names(run_frames(pipe, conn.close())) == []


def test_gated_regex_of_a_datagram_rule_needs_its_literal():
    pipe = pipeline_from("SH udp * 69 'GET ' <GET [a-z]{4}>\n")
    frames = [(0.0, udp_frame(C, S, 5000, 69, b"xx GET abcd")),
              (0.1, udp_frame(C, S, 5001, 69, b"xx PUT abcd")),
              (0.2, udp_frame(C, S, 5002, 69, b"xx GET 1234"))]
    assert alert_names(run_frames(pipe, frames)) == ["SH"]


@pytest.fixture(params=["hyperscan", "re"])
def regex_engine(request, monkeypatch):
    """Stream regexes through hyperscan (where installed) or ``re``."""
    from pakemon.detect import ruletree

    if request.param == "hyperscan" and ruletree.hyperscan is None:
        pytest.skip("hyperscan is not installed")
    if request.param == "re":
        monkeypatch.setattr(ruletree, "hyperscan", None)
    return request.param


def test_a_regex_match_before_the_rules_literal_counts(regex_engine):
    """Patterns match in any order (spec): a regex held back until its
    rule's literal came reads the whole window then, not only the bytes
    after it; a regex that matches nowhere still does not count."""
    pipe = pipeline_from("T tcp * 80 'zzz' <ab+c>\n")
    for segs, want in (([b"GET /abbbc ", b"x zzz"], ["T"]),   # regex first
                       ([b"GET /ab", b"bc zzz"], ["T"]),      # across the segments
                       ([b"zzz ", b"GET /ab", b"c"], ["T"]),  # literal first
                       ([b"GET /abd ", b"x zzz"], [])):
        conn = TcpConnection(C, S, 40020, 80).open()
        for seg in segs:
            conn.send(seg)
        assert alert_names(run_frames(pipe, conn.close())) == want, segs


def test_an_unbounded_regex_over_many_starts_keeps_its_answer(regex_engine):
    """The formmail rule's regex over a long run of its own prefix (each a
    start whose ``[^&\\s]*`` runs to the window's end: 18 ms a segment for
    ``re``, hyperscan reads each byte once): the command separator after
    the run alerts, the run alone does not."""
    pad = b"recipient=" * 3000
    for tail, want in ((b"recipient=x;id", [FORMMAIL]), (b"recipient=x", [])):
        conn = TcpConnection(C, S, 40021, 80).open()
        conn.send(b"GET /formmail?" + pad + tail + b" HTTP/1.0\r\n\r\n", segment=1460)
        pipe = Pipeline(load_rules(BUNDLED_RULES).rules)
        assert alert_names(run_frames(pipe, conn.close())) == want


def test_a_regex_match_longer_than_the_window_is_found():
    """``recipient=``, 6 KB of padding, then ``;id``: one formmail query
    (Apache and nginx take request lines of 8 KB) whose match is longer
    than the 4 KB window ``re`` searched; hyperscan's stream keeps its
    state between segments."""
    from pakemon.detect import ruletree

    if ruletree.hyperscan is None:
        pytest.skip("hyperscan is not installed")
    for pad, want in ((b"a" * 6000 + b";id", [FORMMAIL]), (b"a" * 6000 + b"&id;", [])):
        conn = TcpConnection(C, S, 40022, 80).open()
        conn.send(b"GET /formmail?recipient=" + pad + b" HTTP/1.0\r\n\r\n", segment=1460)
        pipe = Pipeline(load_rules(BUNDLED_RULES).rules)
        assert alert_names(run_frames(pipe, conn.close())) == want


def test_regexes_on_the_normalized_target_and_the_raw_history(regex_engine):
    """A regex found only in the normalized request target (its ``;`` sent
    as ``%3B``, after 600 ``a=%41``: every one a start ``re`` ran to the
    target's end), and a literal found only there whose regex is in the raw
    header (``_late_regexes``): both alert, with either engine."""
    pipe = pipeline_from("T tcp * 80 '/x' <a=[^&\\s]*;>\n"
                         "H tcp * 80 '/formmail' <(?i)\\nhost:[^\\r\\n]{10}>\n")
    for req, want in ((b"GET /x?" + b"a=%41" * 600 + b"a=b%3Bc HTTP/1.0\r\n\r\n", ["T"]),
                      (b"GET /x?" + b"a=%41" * 600 + b"a=b%3Fc HTTP/1.0\r\n\r\n", []),
                      (b"GET /form%6Dail HTTP/1.0\r\nHost: aaaaaaaaaaaa\r\n\r\n", ["H"]),
                      (b"GET /form%6Dail HTTP/1.0\r\nHost: aaaaaaaa\r\n\r\n", [])):
        conn = TcpConnection(C, S, 40023, 80).open()
        conn.send(req, segment=1460)
        assert alert_names(run_frames(pipe, conn.close())) == want, req[:20]


# Pattern pieces of random native rules: (rule text, bytes that match it)
LITERALS = [("'passwd'", b"PassWD"), ('"/bin/sh"', b"/bin/sh"), ("|90 90 90|", b"\x90\x90\x90"),
            ("'cmd.exe'", b"CMD.EXE")]
REGEXES = [("<(?i)recipient=[^&\\s]*;>", b"recipient=aaaa;"), ("<ab+c>", b"abbbbc"),
           ("<(\\A|\\n)wiz\\r?\\n>", b"\nwiz\n"), ("<x[0-9]{3}y>", b"x123y"),
           ("<(?i)site\\s+exec\\s[^\\r\\n]*%[0-9.]*[dfnpsux]>", b"site exec a%.5d")]
NOISE = b"abcx0123456789 \r\n;&%.ywiz-passwdrecipient=SITEexec/bin"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_rules_alert_exactly_when_every_pattern_is_in_the_stream(data):
    """Any rule of literals and regexes, any stream of their pieces and
    noise (under the 4 KB window), cut anywhere: the rule alerts exactly
    when every pattern is somewhere in the stream, in any order (spec), with
    hyperscan streams and with re."""
    import re

    from pakemon.detect import ruletree

    pieces = data.draw(st.lists(st.sampled_from(LITERALS + REGEXES), min_size=1, max_size=3,
                                unique=True))
    # (a port that is not HTTP's: no normalized request target to search)
    rule = "R tcp * 9999 " + " ".join(p[0] for p in pieces) + "\n"
    # mostly every piece (the rule alerts), sometimes one left out
    drop = data.draw(st.sampled_from([None, None, 0, 1, 2]))
    parts = [p[1] for i, p in enumerate(pieces) if i != drop]
    parts += [bytes(data.draw(st.lists(st.sampled_from(NOISE), max_size=40)))
              for _ in range(data.draw(st.integers(0, 2)))]
    stream = b"".join(data.draw(st.permutations(parts))) or b"-"
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=8))))
    want = []
    for text, _ in pieces:
        if text.startswith("<"):
            ok = re.search(text[1:-1].encode(), stream, re.DOTALL) is not None
        elif text.startswith("'"):
            ok = text[1:-1].encode().lower() in stream.lower()
        elif text.startswith('"'):
            ok = text[1:-1].encode() in stream
        else:
            ok = bytes.fromhex(text.strip("|")) in stream
        want.append(ok)
    for engine in ("hyperscan", "re"):
        if engine == "hyperscan" and ruletree.hyperscan is None:
            continue
        saved = ruletree.hyperscan
        try:
            if engine == "re":
                ruletree.hyperscan = None
            conn = TcpConnection(C, S, 40030, 9999).open()
            for a, b in zip([0, *cuts], [*cuts, len(stream)]):
                if a < b:
                    conn.send(stream[a:b])
            got = alert_names(run_frames(pipeline_from(rule), conn.close()))
        finally:
            ruletree.hyperscan = saved
        assert got == (["R"] if all(want) else []), (engine, rule, stream, cuts)


def test_a_regex_match_does_not_span_a_hole(regex_engine):
    """A segment never arrives: the bytes after the hole (read at the end of
    the capture) start afresh, so ``recipient=aaaa`` before it and ``;id``
    after it do not make the formmail regex's match; the same bytes whole do."""
    from pakemon.lab.traffic import PSH, ACK, tcp_frame

    for hole, want in ((True, []), (False, [FORMMAIL])):
        conn = TcpConnection(C, S, 40024, 80).open()
        conn.send(b"GET /formmail?recipient=aaaa")
        if hole:  # "bbbb" is skipped: its sequence numbers only
            conn.cseq += 4
        else:
            conn.send(b"bbbb")
        conn.frames.append((conn.ts, tcp_frame(C, S, 40024, 80, conn.cseq, conn.sseq, PSH | ACK,
                                               b";id HTTP/1.0\r\n\r\n")))
        conn.cseq += 17
        pipe = Pipeline(load_rules(BUNDLED_RULES).rules)
        assert alert_names(run_frames(pipe, conn.frames)) == want, hole
