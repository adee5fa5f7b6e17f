"""Suricata rules on http.uri see the normalized URI: the paper's URL
evasions (percent-encoding, dot insertion, double slashes, traversal, fake
parameters) alert, their benign twins don't, and pipelined requests alert
once per transaction, as Suricata counts."""

from __future__ import annotations


import pytest
from helpers import eve_alerts

from pakemon.cli import main
from pakemon.lab.traffic import TcpConnection, http_exchange, write_pcap

C, S = "10.0.0.1", "10.0.0.2"
RULES = (
    'alert http any any -> any any (msg:"phf uri"; content:"/cgi-bin/phf"; http_uri; sid:1;)\n'
    'alert http any any -> any any (msg:"phf raw"; http.uri.raw; content:"/cgi-bin/phf"; '
    'sid:2;)\n'
)
# (evasion, benign twin): none has "/cgi-bin/phf" in its raw bytes
EVASIONS = {
    "percent-encoding": (b"/cgi-bin/%70%68%66", b"/cgi-bin/%70%68%78"),
    "percent-u": (b"/cgi-bin/%u0070hf", b"/cgi-bin/%u0070hx"),
    "dot-insertion": (b"/./cgi-bin/././phf", b"/./cgi-bin/././phx"),
    "double-slash": (b"//cgi-bin//phf", b"//cgi-bin//phx"),
    "traversal": (b"/x/y/../../cgi-bin/x/../phf", b"/x/y/../../cgi-bin/x/../phx"),
    "above-root": (b"/../../cgi-bin/x/../phf", b"/../../cgi-bin/x/../phx"),
    "fake-parameter": (b"/index.html%3fa=/../../cgi-bin/%70hf",
                       b"/index.html%3fa=/../../cgi-bin/%70hx"),
    "long-prefix": (b"/" + b"x" * 300 + b"/../cgi-bin/%70hf",
                    b"/" + b"x" * 300 + b"/../cgi-bin/%70hx"),
    "backslash": (b"/cgi-bin\\phf", b"/cgi-bin\\phx"),
}


def run(tmp_path, frames):
    tmp_path.mkdir(parents=True, exist_ok=True)
    rules = tmp_path / "r.rules"
    rules.write_text(RULES)
    cap = tmp_path / "c.pcap"
    write_pcap(cap, frames)
    logs = tmp_path / "logs"
    assert main(["read", "-q", "--rules", str(rules), "--log-dir", str(logs), str(cap)]) == 0
    return sorted(e["alert"]["signature_id"] for e in eve_alerts(logs))


def get(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: www\r\n\r\n"


@pytest.mark.parametrize("technique", sorted(EVASIONS))
def test_evasion_alerts_on_normalized_uri_only(tmp_path, technique):
    evasion, twin = EVASIONS[technique]
    assert b"/cgi-bin/phf" not in evasion
    assert run(tmp_path, http_exchange(C, S, 40000, get(evasion), b"ok")) == [1]
    assert run(tmp_path / "twin", http_exchange(C, S, 40001, get(twin), b"ok")) == []


def test_plain_request_alerts_in_both_buffers(tmp_path):
    assert run(tmp_path, http_exchange(C, S, 40000, get(b"/cgi-bin/phf"), b"ok")) == [1, 2]


def test_pipelined_requests_alert_once_each(tmp_path):
    conn = TcpConnection(C, S, 40100, 8080).open()  # HTTP found by content, not port
    conn.send(get(b"/cgi-bin/%70hf") + get(b"/index.html") + get(b"/./cgi-bin/phf"), segment=5)
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 3, from_client=False)
    assert run(tmp_path, conn.close()) == [1, 1, 2]


def test_pipelined_requests_in_one_segment_alert_once_each(tmp_path):
    """Suricata's count is per transaction, not per packet: a client that
    pipelines three attacks into one segment gets three alerts (the nginx
    differential, http_diff, counted one)."""
    conn = TcpConnection(C, S, 40101, 80).open()
    conn.send(get(b"/cgi-bin/%70hf") + get(b"/cgi-bin/phx") + get(b"/./cgi-bin/phf")
              + get(b"//cgi-bin/phf"))
    conn.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" * 4, from_client=False)
    assert run(tmp_path, conn.close()) == [1, 1, 1, 2, 2]


# Request lines a listed-method probe misses but servers take (the method
# token and the blank after it are the attacker's to choose); twins ask for
# another script
REQUEST_LINES = {
    "extension-method": b"FOO %s HTTP/1.0\r\n\r\n",
    "lowercase-method": b"get %s HTTP/1.0\r\n\r\n",
    "absolute-form-extension": b"X-RUN http://www%s HTTP/1.1\r\nHost: www\r\n\r\n",
    "vertical-tab-spacer": b"GET\x0b%s HTTP/1.0\r\n\r\n",
    "form-feed-spacer": b"GET\x0c%s HTTP/1.0\r\n\r\n",
    "cr-spacer": b"GET\r%s HTTP/1.0\r\n\r\n",
}


@pytest.mark.parametrize("technique", sorted(REQUEST_LINES))
def test_request_line_evasion_still_parsed_as_http(tmp_path, technique):
    line = REQUEST_LINES[technique]
    conn = TcpConnection(C, S, 40200, 80).open()
    conn.send(line % b"/cgi-bin/%70hf", segment=3)
    assert run(tmp_path, conn.close()) == [1]
    twin = TcpConnection(C, S, 40201, 80).open()
    twin.send(line % b"/cgi-bin/%70hx", segment=3)
    assert run(tmp_path / "twin", twin.close()) == []


@pytest.mark.parametrize("method, path", [
    (b"G3T", b"/cgi-bin/%70hf"), (b"foo", b"/cgi-bin/%70hf"), (b"Get-Stuff", b"/cgi-bin/%70hf"),
    (b"X.Y", b"/cgi-bin/%70hf"), (b"A!B", b"/cgi-bin/%70hf"),
    # the version past the probe's first 64 bytes
    (b"M~", b"/" + b"x/../" * 20 + b"cgi-bin/%70hf")])
def test_any_token_method_with_a_version_is_http_from_the_client_alone(tmp_path, method, path):
    """Apache runs a CGI script for any token as the method. The live sensor
    sees no server answer by default (XDP is ingress only), so a request
    line with such a method and a version must be HTTP on its own: found
    by the nginx and Apache differential (http_diff), which saw Apache run
    phf for "G3T" while the sensor, given only the client's side, did not
    alert; and with a long target the version lay past the 64 bytes the
    probe read."""
    conn = TcpConnection(C, S, 40310, 80).open()
    conn.send(b"\r\n" + method + b" " + path + b" HTTP/1.0\r\n\r\n", segment=7)
    client_only = [(ts, f) for ts, f in conn.close() if f[26:30] == bytes([10, 0, 0, 1])]
    assert run(tmp_path, client_only) == [1]
    twin = TcpConnection(C, S, 40311, 80).open()
    twin.send(method + b" " + path[:-1] + b"x HTTP/1.0\r\n\r\n", segment=7)
    assert run(tmp_path / "twin", twin.close()) == []


@pytest.mark.parametrize("line", [b"GET%00 /cgi-bin/%70hf HTTP/1.0\r\n\r\n",
                                  b"M%41 /cgi-bin/%70hf HTTP/1.0\r\n\r\n"])
def test_request_the_probe_misses_is_http_once_the_server_answers_http(tmp_path, line):
    """A request line the client's side does not name ("%" in the method,
    which libhtp refuses though Apache would take it): the engine
    waits for the server's side, and a server answering "HTTP/1.1" makes
    the flow HTTP: the held request is parsed first, as Suricata parses
    both sides once one is detected."""
    def conn(port, answer):
        c = TcpConnection(C, S, port, 80).open()
        c.send(line, segment=7)
        if answer:
            c.send(answer, from_client=False)
        return c.close()

    assert run(tmp_path, conn(40300, b"HTTP/1.1 501 Not Implemented\r\n"
                                     b"Content-Length: 0\r\n\r\n")) == [1]
    assert run(tmp_path / "silent", conn(40301, None)) == []
    assert run(tmp_path / "ssh", conn(40302, b"SSH-2.0-OpenSSH_9.2\r\n")) == []


@pytest.mark.parametrize("segment", [5, 1460])
def test_a_long_run_of_blank_lines_before_the_request(tmp_path, segment):
    """nginx skips any number of empty lines before a request line; 6,000
    of them once pushed the request past the protocol probe and the hold."""
    conn = TcpConnection(C, S, 40400, 80).open()
    conn.send(b"\r\n" * 6000 + get(b"/cgi-bin/%70hf"), segment=segment)
    assert run(tmp_path, conn.close()) == [1]
