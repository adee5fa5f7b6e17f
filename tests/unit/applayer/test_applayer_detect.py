"""Protocol detection by content, with real first bytes of each protocol."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR

from pakemon.applayer.detect import AppProbe, probe, probe_dns_udp

TLS_CLIENT_HELLO = bytes.fromhex(
    "160301004f0100004b0303000000005d71c7662a1b4e674c3b266bac7e8e9d38b3c1557b6536b4dc5c8eeb"
    "0000041301c02f0100001e00000010000e00000b6578616d706c652e636f6d000a00060004001d0017")
SMB2_NEGOTIATE = (b"\x00\x00\x00\x66\xfeSMB\x40\x00" + bytes(58) + bytes(40))
SMB1_NEGOTIATE = b"\x00\x00\x00\x2f\xffSMBr\x00\x00\x00\x00" + bytes(35)
DNS_QUERY = bytes(DNS(id=3, rd=1, qd=DNSQR(qname="example.com")))


@pytest.mark.parametrize("data,to_server,sport,dport,want", [
    (b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", True, 40000, 8081, "http"),
    (b"PROPFIND /dav/ HTTP/1.1\r\n", True, 40000, 80, "http"),
    (b"HTTP/1.1 200 OK\r\n", False, 8080, 40000, "http"),
    (TLS_CLIENT_HELLO, True, 40000, 8443, "tls"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", True, 40000, 2222, "ssh"),
    (b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n", False, 22, 40000, "ssh"),
    (SMB2_NEGOTIATE, True, 40000, 445, "smb"),
    (SMB1_NEGOTIATE, True, 40000, 139, "smb"),
    (b"220 (vsFTPd 3.0.3)\r\n", False, 2121, 40000, "ftp"),
    (b"220 ProFTPD Server ready.\r\n", False, 21, 40000, "ftp"),
    (b"220 mail.example.com ESMTP Postfix\r\n", False, 2525, 40000, "smtp"),
    (b"220-mail.example.com\r\n220 ESMTP ready\r\n", False, 10025, 40000, "smtp"),
    (b"220 Welcome\r\n", False, 21, 40000, "ftp"),  # by port only when the text says nothing
    (b"220 Welcome\r\n", False, 9999, 40000, ""),
    (b"EHLO client.example\r\n", True, 40000, 2525, "smtp"),
    (b"USER anonymous\r\n", True, 40000, 21, "ftp"),
    # Suricata's FTP patterns hold on any port (an IRC client's first USER
    # line is FTP to it too); AUTH and SYST name it only toward 21
    (b"USER anonymous\r\n", True, 40000, 2121, "ftp"),
    (b"PORT 10,0,0,1,4,1\r\n", True, 40000, 8021, "ftp"),
    (b"feat\r\n", True, 40000, 8021, "ftp"),
    (b"SYST\r\n", True, 40000, 21, "ftp"),
    (b"220 (any server)\r\n", False, 2121, 40000, "ftp"),
    (len(DNS_QUERY).to_bytes(2, "big") + DNS_QUERY, True, 40000, 53, "dns"),
    (b"\x01\x02\x03 random", True, 40000, 80, ""),
    # listed methods in any case (Suricata's detection patterns are caseless)
    (b"get / HTTP/1.1\r\n", True, 40000, 80, "http"),
    # methods no list names: servers take extension methods (nginx: A-Z, _
    # and -), so the request line's shape decides
    (b"FOO /cgi-bin/phf HTTP/1.0\r\n", True, 40000, 80, "http"),
    (b"GET%00 /images.gif HTTP/1.1\r\n", True, 40000, 80, ""),  # no method to nginx
    # any token Apache takes, when the line ends in a version (a shell's
    # "cd /tmp" has none)
    (b"G3T /cgi-bin/phf HTTP/1.0\r\n", True, 40000, 80, "http"),
    (b"x.y!z http://www/ HTTP/1.1\r\n", True, 40000, 8080, "http"),
    (b"T'R /cgi-bin/phf  http/1.1\r\n", True, 40000, 80, "http"),  # Apache: any case
    (b"cd /tmp\r\n", True, 40000, 4444, ""),
    (b"ls -la /\r\n", True, 40000, 4444, ""),
    (b"X-CUSTOM http://example.com/ HTTP/1.1\r\n", True, 40000, 8080, "http"),
    (b"BREW * HTTP/1.1\r\n", True, 40000, 80, "http"),
    # blanks other than SP/HTAB after a listed method (servers that split on any)
    (b"GET\x0b/x HTTP/1.0\r\n", True, 40000, 80, "http"),
    (b"GET\x0c/x HTTP/1.0\r\n", True, 40000, 80, "http"),
    (b"GET\r/x HTTP/1.0\r\n", True, 40000, 80, "http"),
    # the target's shape keeps line protocols out
    (b"MAIL FROM:<a@b.example>\r\n", True, 40000, 2525, ""),
    (b"NICK someone\r\n", True, 40000, 6667, ""),
    (b"FOO bar baz\r\n", True, 40000, 80, ""),
])
def test_probe_whole_first_segment(data, to_server, sport, dport, want):
    assert probe(data, to_server, sport, dport) == want


@pytest.mark.parametrize("data,to_server", [
    (b"GE", True), (b"PROPFI", True), (b"HTTP/", False), (b"\x16\x03", True),
    (b"\x16\x03\x01\x00", True), (b"SSH", True), (b"\x00\x00\x00\x66\xfe", True),
    (b"220 mail.exam", False), (b"EHL", True),
    (b"FOO", True), (b"FOO ", True), (b"FOO ht", True), (b"FOO http:/", True),
    (b"G3T /cgi-bin/phf HTT", True), (b"get3 *", True),
])
def test_probe_prefix_needs_more(data, to_server):
    assert probe(data, to_server, 40000, 80 if to_server else 40000) is None


def test_every_prefix_of_real_starts_is_none_or_right():
    cases = [(b"POST /upload HTTP/1.1\r\n", True, "http"), (TLS_CLIENT_HELLO, True, "tls"),
             (b"FOO http://x.example/ HTTP/1.1\r\n", True, "http"),
             (SMB2_NEGOTIATE, True, "smb"), (b"220 FTP server ready\r\n", False, "ftp")]
    for data, to_server, want in cases:
        for i in range(1, len(data) + 1):
            assert probe(data[:i], to_server, 40000, 40001) in (None, want), (want, i)
        assert probe(data, to_server, 40000, 40001) == want


def test_tls_server_hello_only_to_client():
    sh = b"\x16\x03\x03\x00\x4a\x02" + bytes(20)
    assert probe(sh, False, 443, 40000) == "tls"
    assert probe(sh, True, 40000, 443) == ""


def test_sslv2_client_hello():
    assert probe(b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10", True, 40000, 443) == "tls"


def test_probe_dns_udp():
    assert probe_dns_udp(DNS_QUERY) == "dns"
    assert probe_dns_udp(bytes(DNS(id=1, qr=1, qd=DNSQR(qname="a.b")))) == "dns"
    assert probe_dns_udp(b"\x00" * 12) == ""  # no question
    assert probe_dns_udp(b"short") == ""
    assert probe_dns_udp(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n") == ""


def test_app_probe_accumulates_segments():
    p = AppProbe(40000, 8080)
    assert p.feed(b"GE", True) is None
    assert p.feed(b"T / HTTP/1.1\r\n", True) == "http"
    assert p.feed(b"garbage", False) == "http"  # decided once for the flow


def test_app_probe_server_side_decides():
    p = AppProbe(40000, 2121)
    assert p.feed(b"\x00\x01\x02\x03", True) is None  # client failed, server not seen yet
    assert p.feed(b"220 FTP ready\r\n", False) == "ftp"


def test_app_probe_gives_up():
    p = AppProbe(40000, 9999, limit=64)
    assert p.feed(b"\x01garbage", True) is None
    assert p.feed(b"A" * 100, False) == ""  # both directions failed
    assert p.proto == ""
    q = AppProbe(40000, 9999, limit=64)
    assert q.feed(b"220 hello", False) is None  # greeting line not finished
    assert q.feed(b" " * 80, False) is None  # undecided past limit: this direction gives up
    assert q.feed(b"ZZZZ garbage!!", True) == ""


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.booleans(), st.integers(0, 65535), st.integers(0, 65535))
def test_random_bytes_never_raise(data, to_server, sport, dport):
    r = probe(data, to_server, sport, dport)
    assert r in (None, "", "http", "tls", "dns", "ssh", "ftp", "smtp", "smb")
    assert probe_dns_udp(data) in ("", "dns")


def test_a_server_alert_record_is_tls():
    alert = b"\x15\x03\x00\x00\x02\x02\x28"
    assert probe(alert, False, 443, 40000) == "tls"
    for k in range(1, 7):  # any prefix: undecided, never wrongly decided
        assert probe(alert[:k], False, 443, 40000) is None
    assert probe(alert, True, 40000, 443) != "tls"  # clients do not open with it
    assert probe(b"\x15\x03\x00\x00\x09" + bytes(9), False, 443, 40000) != "tls"
