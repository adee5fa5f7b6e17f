"""The paper's section 4.2 failure, end to end: URL-encoded and dot-inserted attacks
through the pipeline with the bundled rules, and their benign twins.

Spec (rules.md, "What is searched"): on HTTP service ports the request target
is also searched normalized; a pattern matches in the raw stream or there.
"""

from __future__ import annotations

import pytest
from helpers import BUNDLED_RULES, alert_names, pipeline_from, run_frames

from pakemon.config import Config
from pakemon.detect.http_normalize import HttpConfig, normalize_uri
from pakemon.detect.rule_parser import load_rules
from pakemon.events import Alert, Notice, NoticeKind
from pakemon.lab.traffic import TcpConnection, http_exchange
from pakemon.pipeline import Pipeline

C, S = "10.0.0.1", "10.0.0.2"
PHF = "CGI-phf(CVE-1999-0067)"
_RULES = None


def bundled_pipeline(config=None):
    global _RULES
    if _RULES is None:
        _RULES = load_rules(str(BUNDLED_RULES)).rules
    return Pipeline(_RULES, config)


def request(target: bytes, port: int = 80, pipe=None, segment=None, cport=40000):
    pipe = pipe or bundled_pipeline()
    frames = http_exchange(C, S, cport, b"GET " + target + b" HTTP/1.0\r\nHost: www\r\n\r\n",
                           b"ok", port=port, segment=segment)
    return run_frames(pipe, frames)


def sent(rule: str, cport: int, *chunks: bytes) -> list:
    """Alert names of one native ``rule`` over a connection to port 80 that
    sends ``chunks``, each in its own segment(s)."""
    pipe = pipeline_from(rule)
    conn = TcpConnection(C, S, cport, 80).open()
    for chunk in chunks:
        conn.send(chunk)
    return alert_names(run_frames(pipe, conn.close()))


def notices(events):
    return [e for e in events if isinstance(e, Notice)
            and e.kind is NoticeKind.HTTP_URI_ENCODING_ANOMALY]


# (evasion, benign twin): no evasion has "/cgi-bin/phf" in its raw bytes.
EVASIONS = [
    (b"/cgi-bin/%70hf", b"/cgi-bin/%70hx"),
    (b"/cgi-bin/./phf", b"/cgi-bin/./phx"),
    (b"//cgi-bin//phf", b"//cgi-bin//phx"),
    (b"/cgi-bin/x/../phf", b"/cgi-bin/x/../phx"),
    (b"/cgi-bin\\phf", b"/cgi-bin\\phx"),
    (b"%2fcgi-bin%2fphf", b"%2fcgi-bin%2fphx"),
    (b"%u002fcgi-bin%u002fphf", b"%u002fcgi-bin%u002fphx"),
    (b"/cgi%2dbin/phf", b"/cgi%2dbin/phx"),
    (b"/%63%67%69%2d%62%69%6e%2f%70%68%66?Qalias=x",
     b"/%63%67%69%2d%62%69%6e%2f%70%68%78?Qalias=x"),
    (b"/cgi-bin/.%2e/cgi-bin/ph%66", b"/cgi-bin/.%2e/cgi-bin/ph%78"),
    (b"/cgi-bin%c0%afphf", b"/cgi-bin%c0%afphx"),  # overlong /
    # fake parameter: an encoded ? is not a query delimiter, the .. climbs over it
    (b"/index.html%3f/../cgi-bin/%70hf", b"/index.html%3f/../cgi-bin/%70hx"),
    (b"/cgi-bin/%70hf%3fQalias=x", b"/cgi-bin/%70hx%3fQalias=x"),
    # the pattern in the (decoded) query counts, as it would raw
    (b"/search?q=%2fcgi-bin%2fphf", b"/search?q=%2fcgi-bin%2fphx"),
]


@pytest.mark.parametrize("target", [a for a, _ in EVASIONS])
def test_encoded_and_dotted_phf_is_detected(target):
    assert b"/cgi-bin/phf" not in target  # raw matching alone misses it (the paper)
    assert alert_names(request(target)) == [PHF]


@pytest.mark.parametrize("target", [t for _, t in EVASIONS] + [
    b"/cgi-bin/%70hf/../x.html",  # phf is named, then left: the server opens /cgi-bin/x.html
    b"/cgi-bin/./%70h/f",
    b"/cgi-bin%2f%2e%2e%2fphf",  # /cgi-bin/../phf is /phf
    b"/index.html",
    b"/cgi-bin/phonebook.html",
])
def test_benign_twins_give_no_alert(target):
    assert alert_names(request(target)) == []


def test_phf_newline_and_rule_across_raw_and_normalized():
    # '/phf' is only in the normalized target, '%0a' only in the raw stream
    names = alert_names(request(b"/cgi-bin/%70hf?Qalias=x%0a/bin/cat%20/etc/passwd"))
    assert sorted(names) == [PHF, "CGI-phf-newline(CVE-1999-0067)", "HTTP-etc-passwd"]


def test_alert_fields_and_dump_of_a_normalized_match():
    events = request(b"/cgi-bin/%70hf")
    (a,) = [e for e in events if isinstance(e, Alert)]
    assert (a.src_ip, a.src_port, a.dst_ip, a.dst_port, a.proto) == (C, 40000, S, 80, "TCP")
    # the dump is the raw stream up to the end of the request line
    assert a.dump == b"GET /cgi-bin/%70hf HTTP/1.0\r\n"


def test_attack_in_the_third_request_of_a_keep_alive_connection():
    pipe = bundled_pipeline()
    conn = TcpConnection(C, S, 40100, 80).open()
    conn.send(b"GET /index.html HTTP/1.1\r\nHost: www\r\n\r\n"
              b"POST /form.cgi HTTP/1.1\r\nHost: www\r\nContent-Length: 11\r\n\r\nname=x&y=1")
    conn.send(b"z", from_client=True)
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 2, from_client=False)
    conn.send(b"GET /cgi-bin/./%70hf?Qalias=x HTTP/1.1\r\nHost: www\r\n\r\n", segment=7)
    events = run_frames(pipe, conn.close())
    alerts = [e for e in events if isinstance(e, Alert)]
    assert [a.rule.name for a in alerts] == [PHF]
    assert alerts[0].dump.endswith(b"GET /cgi-bin/./%70hf?Qalias=x HTTP/1.1\r\n")
    assert alerts[0].dump.startswith(b"GET /index.html")


def test_a_request_hidden_in_a_body_is_body():
    # what the server reads as a POST body is not a request target
    body = b"GET /cgi-bin/%70hf HTTP/1.0\r\n\r\n"
    events = run_frames(bundled_pipeline(), http_exchange(
        C, S, 40101, b"POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body, b""))
    assert alert_names(events) == []
    # ... but a request after it is one
    events = run_frames(bundled_pipeline(), http_exchange(
        C, S, 40102, b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + body, b""))
    assert alert_names(events) == [PHF]


def test_one_byte_segments():
    assert alert_names(request(b"/cgi-bin/%2e/%70hf", segment=1)) == [PHF]


def test_alerts_once_per_direction():
    pipe = bundled_pipeline()
    conn = TcpConnection(C, S, 40103, 80).open()
    conn.send(b"GET /cgi-bin/%70hf HTTP/1.1\r\n\r\nGET /cgi-bin/./phf HTTP/1.1\r\n\r\n"
              b"GET /cgi-bin/phf HTTP/1.1\r\n\r\n")
    assert alert_names(run_frames(pipe, conn.close())) == [PHF]


def test_iis_unicode_traversal_normalizes_and_iis_rules_still_alert():
    target = b"/scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir"
    assert normalize_uri(target)[0] == b"/winnt/system32/cmd.exe?/c+dir"
    assert normalize_uri(target, "iis")[0] == b"/winnt/system32/cmd.exe?/c+dir"
    names = alert_names(request(target))
    assert sorted(names) == ["IIS-cmd.exe", "IIS-unicode-c0af(CVE-2000-0884)"]
    # cmd.exe itself encoded: only the normalized target has "/cmd.exe"
    names = alert_names(request(b"/scripts/..%c0%af../winnt/system32/cm%64.exe?/c+dir"))
    assert sorted(names) == ["IIS-cmd.exe", "IIS-unicode-c0af(CVE-2000-0884)"]
    # the double-decode and c1%1c variants keep their raw signatures
    assert "IIS-double-decode-255c(CVE-2001-0333)" in alert_names(
        request(b"/scripts/..%255c../winnt/system32/cmd.exe?/c+dir"))
    assert "IIS-unicode-c11c(CVE-2000-0884)" in alert_names(
        request(b"/scripts/..%c1%1c../winnt/system32/cmd.exe?/c+dir"))


def test_and_rule_with_one_pattern_raw_and_one_normalized():
    # bit 1 from the normalized target first, bit 2 from a later header
    assert sent('X tcp * 80 "/cgi-bin/phf" "User-Agent: evil"\n', 40104,
                b"GET /cgi-bin/%70hf HTTP/1.0\r\n", b"User-Agent: evil\r\n\r\n") == ["X"]
    # a raw pattern first, the normalized one completes the rule
    assert sent('Y tcp * 80 "X-Pad: 1" "/cgi-bin/phf"\n', 40105,
                b"GET /a HTTP/1.1\r\nX-Pad: 1\r\n\r\n",
                b"GET /cgi-bin/%70hf HTTP/1.1\r\n\r\n") == ["Y"]


def test_regex_whose_literal_only_the_normalized_target_has_runs_on_later_segments():
    # the literal comes from the decoded target (inspect_http), the regex's
    # match in later segments, after the request line, with no literal in
    # them: the regex must be looked at from then on all the same
    rule = 'X tcp * 80 "/cgi-bin/phf" <Qalias=[a-z]*;id>\n'
    assert sent(rule, 40106, b"GET /cgi-bin/%70hf HTTP/1.1\r\nHost: www\r\n\r\n",
                b"POST /x HTTP/1.1\r\nContent-Length: 20\r\n\r\n", b"Qalias=abc;",
                b"id&z=1234") == ["X"]
    # without the literal anywhere, the regex alone alerts nothing
    assert sent(rule, 40107, b"GET /cgi-bin/%70hx HTTP/1.1\r\n\r\nQalias=abc;id") == []


def test_only_http_ports_are_normalized():
    pipe = pipeline_from('X tcp * 80,3128,8000,8080,9999 "/cgi-bin/phf"\n')
    for port in (80, 3128, 8000, 8080):
        assert alert_names(request(b"/cgi-bin/%70hf", port=port, pipe=pipe,
                                   cport=41000 + port)) == ["X"], port
    # not an HTTP service port: raw matching only, as before
    assert alert_names(request(b"/cgi-bin/%70hf", port=9999, pipe=pipe)) == []
    assert alert_names(request(b"/cgi-bin/phf", port=9999, pipe=pipe, cport=40001)) == ["X"]


def test_ports_and_personality_are_configurable():
    cfg = Config()
    cfg.http = HttpConfig(ports=(9999,))
    pipe = Pipeline(pipeline_from('X tcp * 80,9999 "/cgi-bin/phf"\n').tree, cfg)
    assert alert_names(request(b"/cgi-bin/%70hf", port=9999, pipe=pipe)) == ["X"]
    assert alert_names(request(b"/cgi-bin/%70hf", port=80, pipe=pipe, cport=40001)) == []
    # IIS folds case; generic does not (the rule is case-sensitive)
    assert alert_names(request(b"/CGI-BIN/PHF")) == []
    cfg = Config()
    cfg.http = HttpConfig(personality="iis")
    assert alert_names(request(b"/CGI-BIN/PHF", pipe=bundled_pipeline(cfg))) == [PHF]
    # Apache keeps %2f encoded: /cgi-bin%2fphf is not the phf script there
    cfg = Config()
    cfg.http = HttpConfig(personality="apache")
    assert alert_names(request(b"/cgi-bin%2fphf", pipe=bundled_pipeline(cfg))) == []
    assert alert_names(request(b"/cgi-bin/%70hf", pipe=bundled_pipeline(cfg))) == [PHF]
    # and reads \ as a plain character (its own setting, not the generic one)
    assert alert_names(request(b"/cgi-bin\\phf", pipe=bundled_pipeline(cfg))) == []
    cfg = Config()
    cfg.http = HttpConfig(personality="apache", backslash=True)
    assert alert_names(request(b"/cgi-bin\\phf", pipe=bundled_pipeline(cfg))) == [PHF]
    assert alert_names(request(b"/cgi-bin\\phf")) == [PHF]  # generic: as /
    # backslash off: \ is a plain character
    cfg = Config()
    cfg.http = HttpConfig(backslash=False)
    assert alert_names(request(b"/cgi-bin\\phf", pipe=bundled_pipeline(cfg))) == []


def test_encoding_anomaly_notice_once_per_direction():
    pipe = bundled_pipeline()
    conn = TcpConnection(C, S, 40106, 80).open()
    conn.send(b"GET /a%u0041 HTTP/1.1\r\n\r\nGET /b%c0%ae HTTP/1.1\r\n\r\n")
    events = run_frames(pipe, conn.close())
    (n,) = notices(events)
    assert n.kind.event_type == "anomaly"
    assert (n.src_ip, n.src_port, n.dst_ip, n.dst_port, n.proto) == (C, 40106, S, 80, "TCP")
    assert "u_encoding" in n.message and "from 10.0.0.1:40106 to 10.0.0.2:80" in n.message
    assert pipe.stats.notices["HTTP_URI_ENCODING_ANOMALY"] == 1


def test_no_notice_for_plain_or_merely_dotted_targets():
    assert notices(request(b"/index.html?a=b%20c")) == []
    assert notices(request(b"/a/./b//c/../d")) == []
    assert len(notices(request(b"/a%zz"))) == 1


@pytest.mark.parametrize("host_len, alerts", [(420, True), (20, False)])
def test_literal_only_in_normalized_target_with_regex_in_raw_stream(host_len, alerts):
    """IIS-printer-overflow: '.printer' only in the decoded target, the long
    Host header (a regex) only in the raw stream; both halves together alert."""
    target = b"/%4E%55%4C%4C%2E%70%72%69%6E%74%65%72"
    frames = http_exchange(C, S, 40000, b"GET " + target + b" HTTP/1.0\r\nHost: "
                           + b"B" * host_len + b"\r\n\r\n", b"ok")
    names = alert_names(run_frames(bundled_pipeline(), frames))
    assert ("IIS-printer-overflow(CVE-2001-0241)" in names) is alerts
