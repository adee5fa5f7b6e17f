"""SigEngine: Suricata's transforms (dotprefix, to_lowercase, to_uppercase,
strip_whitespace, compress_whitespace, url_decode, to_md5/sha1/sha256, xor,
from_base64, pcrexform, and Suricata 8's gunzip, zlib_deflate, subslice,
header_lowercase, strip_pseudo_headers)
rewrite the sticky buffer before its contents are matched, with the
prefilter still finding the rules (or passing them on) as it should."""

from __future__ import annotations

import hashlib

import pytest

from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection, dns_exchange
from test_sigengine import run, sids

DNS_RULES = ('alert dns any any -> any any (msg:"domain or below"; dns.query; dotprefix; '
             'content:".evil.example"; nocase; endswith; sid:1;)\n')


@pytest.mark.parametrize("prefilter", [True, False])
def test_dotprefix_matches_a_domain_and_its_subdomains_only(prefilter):
    names = {"evil.example": 1, "www.EVIL.example": 1, "a.b.evil.example": 1,
             "notevil.example": 0, "evil.example.org": 0, "evil.exampl": 0}
    for i, (name, want) in enumerate(names.items()):
        frames = dns_exchange("10.0.0.1", "10.0.0.53", 30000 + i, name, ts=1.0 + i)
        assert sids(run(DNS_RULES, frames, prefilter=prefilter)) == ({1: 1} if want else {}), name


def _http(request: bytes, port: int = 41000):
    c = TcpConnection("10.0.0.1", "10.0.0.2", port, 80).open()
    c.send(request)
    return c.close()


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % len(key)] for i, b in enumerate(data))


SECRET = hashlib.sha256(b"/secret").hexdigest()
MD5 = hashlib.md5(b"/secret").hexdigest()
_A = "alert http any any -> any any"
HTTP_RULES = "".join(f"{_A} ({body})\n" for body in (
    'msg:"lower"; http.uri; to_lowercase; content:"/admin"; sid:2;',
    'msg:"upper"; http.method; to_uppercase; content:"POST"; sid:3;',
    'msg:"strip"; http.header; strip_whitespace; content:"X-A:evil"; sid:4;',
    'msg:"compress"; http.user_agent; compress_whitespace; content:"a b c"; sid:5;',
    'msg:"urldec"; http.uri.raw; url_decode; content:"q=a b/c"; sid:6;',
    f'msg:"sha256"; http.uri; to_sha256; content:"|{SECRET}|"; sid:7;',
    f'msg:"md5"; http.uri; to_md5; content:"|{MD5}|"; bsize:16; sid:8;',
    'msg:"xor"; http.request_body; xor:"0d0ac8ff"; content:"secret"; sid:9;',
    'msg:"two"; http.uri; to_lowercase; content:"/x"; http.host; dotprefix; '
    'content:".lab.example"; endswith; sid:10;',
))


@pytest.mark.parametrize("prefilter", [True, False])
def test_transforms_on_http_buffers(prefilter):
    body = _xor(b"the secret", bytes.fromhex("0d0ac8ff"))
    cases = [
        (b"GET /ADMIN/x HTTP/1.0\r\n\r\n", {2: 1}),
        (b"post /a HTTP/1.0\r\nContent-Length: 0\r\n\r\n", {3: 1}),
        (b"GET /a HTTP/1.0\r\nX-A:   evil\r\n\r\n", {4: 1}),
        (b"GET /a HTTP/1.0\r\nUser-Agent: a \t  b  c\r\n\r\n", {5: 1}),
        (b"GET /s?q=a+b%2fc HTTP/1.0\r\n\r\n", {6: 1}),
        (b"GET /secret HTTP/1.0\r\n\r\n", {7: 1, 8: 1}),
        (b"POST /p HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(body) + body, {3: 1, 9: 1}),
        (b"GET /X HTTP/1.1\r\nHost: www.lab.example\r\n\r\n", {10: 1}),
        (b"GET /X HTTP/1.1\r\nHost: notlab.example\r\n\r\n", {}),
        (b"GET /admin HTTP/1.0\r\nUser-Agent: a bc\r\n\r\n", {2: 1}),
    ]
    for i, (req, want) in enumerate(cases):
        assert sids(run(HTTP_RULES, _http(req, 41000 + i), prefilter=prefilter)) == want, req


def test_transformed_contents_give_the_prefilter_what_it_can_find():
    from pakemon.detect.sigengine import SigRuleSet
    rules, _, errors = parse_suricata_rules(HTTP_RULES + DNS_RULES)
    assert not errors
    fps = {r.rule.sid: (r.fp, r.fp_buffer) for r in SigRuleSet(rules).rules}
    assert fps[1] == (b"evil.example", "dns.query")  # the dot the transform adds: not there
    assert fps[2] == (b"/admin", "http.uri")
    assert fps[4] == (None, None) and fps[7] == (None, None)  # nothing findable as sent
    assert fps[10] == (b"lab.example", "http.host")  # the longer one, its dot dropped


XFORM_RULES = "".join(f"{_A} ({body})\n" for body in (
    # a token in a cookie, base64 (Suricata's default mode, rfc4648)
    'msg:"b64"; http.cookie; from_base64: offset 3; content:"admin=1"; sid:11;',
    # base64 with blanks in it: only rfc2045 skips them
    'msg:"b64 2045"; http.user_agent; from_base64: mode rfc2045; content:"foobar"; '
    'startswith; sid:12;',
    # the user name of a basic authorization, by pcrexform
    'msg:"pcrexform"; http.header; pcrexform:"Authorization: Basic ([A-Za-z0-9+/=]+)"; '
    'from_base64; content:"root:"; startswith; sid:13;',
    # pcrexform finding nothing: not even a negated content matches
    'msg:"no capture"; http.uri; pcrexform:"^/api/([a-z]+)"; content:!"admin"; sid:14;',
))


@pytest.mark.parametrize("prefilter", [True, False])
def test_from_base64_and_pcrexform(prefilter):
    cases = [
        (b"GET /a HTTP/1.0\r\nCookie: ID=YWRtaW49MTtsYW5nPWVu\r\n\r\n", {11: 1}),
        (b"GET /a HTTP/1.0\r\nCookie: ID=bGFuZz1lbjthZG1pbj0w\r\n\r\n", {}),
        (b"GET /a HTTP/1.0\r\nUser-Agent: Zm 9v Ym Fy\r\n\r\n", {12: 1}),
        (b"GET /a HTTP/1.0\r\nAuthorization: Basic cm9vdDp0b29y\r\n\r\n", {13: 1}),
        (b"GET /a HTTP/1.0\r\nAuthorization: Basic dXNlcjpyb290\r\n\r\n", {}),
        (b"GET /api/users HTTP/1.0\r\n\r\n", {14: 1}),
        (b"GET /api/admin HTTP/1.0\r\n\r\n", {}),
        (b"GET /other HTTP/1.0\r\n\r\n", {}),
    ]
    for i, (req, want) in enumerate(cases):
        assert sids(run(XFORM_RULES, _http(req, 42000 + i), prefilter=prefilter)) == want, req


def test_from_base64_and_pcrexform_options():
    rules, skipped, errors = parse_suricata_rules(XFORM_RULES)
    assert not skipped and not errors
    xf = {r.sid: r.transforms for r in rules}
    assert xf[11] == {"http.cookie": (("from_base64", (0, 3, "rfc4648")),)}
    assert xf[12] == {"http.user_agent": (("from_base64", (0, 0, "rfc2045")),)}
    (name, rx), b64 = xf[13]["http.header"]
    assert name == "pcrexform" and rx.groups == 1 and b64 == ("from_base64", (0, 0, "rfc4648"))


@pytest.mark.parametrize("proto, text, message", [
    ("dns", "dotprefix; content:\".a\";", "must follow a sticky buffer"),
    ("dns", "dns.query; content:\"a\"; dotprefix; content:\".b\";",
     "must follow a sticky buffer"),
    ("dns", "dns.query; xor:\"0g\"; content:\"a\";", "xor: expected a key"),
    ("dns", "dns.query; dotprefix:1; content:\"a\";", "takes no value"),
    ("dns", "dns.query; dotprefix; content:\".a\"; dns.query; content:\"b\";",
     "different transforms"),
    ("http", "http.uri; pcrexform:\"^/(a)(b)\"; content:\"a\";", "exactly one capture group"),
    ("http", "http.uri; pcrexform:\"^/a\"; content:\"a\";", "exactly one capture group"),
    ("http", "http.uri; pcrexform:^/(a); content:\"a\";", "must be quoted"),
    ("http", "http.uri; from_base64: mode rfc9999; content:\"a\";", "unknown mode"),
    ("http", "http.uri; from_base64: bytes x; content:\"a\";", "not a variable"),
    ("http", "http.uri; from_base64: bytes 1, bytes 2; content:\"a\";", "expected [bytes N]"),
    ("http", "http.uri; gunzip: max-size 0; content:\"a\";", "expected max-size"),
    ("http", "http.uri; gunzip: size 10; content:\"a\";", "expected max-size"),
    ("http", "http.uri; zlib_deflate: max-size 17mb; content:\"a\";", "expected max-size"),
    ("http", "http.uri; subslice: 1, 0; content:\"a\";", "subslice: expected"),
    ("http", "http.uri; subslice: x; content:\"a\";", "subslice: expected"),
    ("http", "http.uri; subslice: 1, 2, 3; content:\"a\";", "subslice: expected"),
    ("http", "http.uri; header_lowercase: 1; content:\"a\";", "takes no value"),
])
def test_misplaced_or_bad_transforms_are_rule_errors(proto, text, message):
    rules, skipped, errors = parse_suricata_rules(
        f'alert {proto} any any -> any any (msg:"bad"; {text} sid:1;)')
    assert not rules and not skipped and len(errors) == 1
    assert message in str(errors[0])


def test_a_buffer_named_twice_with_one_chain_loads():
    rules, skipped, errors = parse_suricata_rules(
        'alert http any any -> any any (msg:"ok"; http.uri; to_lowercase; content:"/a"; '
        'http.host; content:"h"; http.uri; to_lowercase; content:"/b"; distance:0; sid:1;)')
    assert not skipped and not errors
    assert rules[0].transforms == {"http.uri": (("to_lowercase", None),)}


def test_request_and_response_headers_are_matched_one_header_at_a_time():
    """http.request_header / http.response_header (Suricata 7): a buffer per
    header, "Name: value"; every element of the rule must hold in one."""
    rules = "".join(f"alert http any any -> any any ({body})\n" for body in (
        'msg:"one header"; http.request_header; content:"X-Evil: 1"; sid:1;',
        'msg:"across headers"; http.request_header; content:"Host"; content:"evil"; '
        'distance:0; sid:2;',
        'msg:"agent"; http.request_header; content:"User-Agent: curl"; startswith; sid:3;',
        'msg:"server"; flow:to_client; http.response_header; content:"Server: nginx"; sid:4;',
        'msg:"lowered"; http.request_header; to_lowercase; content:"x-evil: 1"; sid:5;',
    ))
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 80).open()
    c.send(b"GET / HTTP/1.1\r\nHost: good\r\nX-A: evil\r\nX-Evil: 1\r\n"
           b"User-Agent: curl/8\r\n\r\n")
    c.send(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n", from_client=False)
    assert sids(run(rules, c.close())) == {1: 1, 3: 1, 4: 1, 5: 1}


ABSENT_RULES = "".join(f"alert http any any -> any any ({body})\n" for body in (
    # the Suricata verification suite's detect-absent-http-request-body rules
    'msg:"no request body"; flow:established,to_server; http.request_body; absent; '
    'http.method; content: "POST"; sid:1;',
    'msg:"no request body, no alert"; flow:established,to_server; http.request_body; '
    'bsize: >0; http.method; content: "POST"; sid:2;',
    'msg:"no request body or not abc"; flow:established,to_server; http.request_body; '
    'absent: or_else; content: !"abc"; http.method; content: "POST"; sid:3;',
    'msg:"not abc, no alert"; flow:established,to_server; http.request_body; '
    'content: !"abc"; http.method; content: "POST"; sid:4;',
    'msg:"no request body"; flow:established,to_server; http.request_body; absent; sid:5;',
    'msg:"no request body or not abc"; flow:established,to_server; http.request_body; '
    'absent: or_else; content: !"abc"; sid:6;',
))


@pytest.mark.parametrize("body, want", [
    (b"", {1: 1, 3: 1, 5: 1, 6: 1}),  # the suite's expected counts
    (b"xyz", {2: 1, 3: 1, 4: 1, 6: 1}),
    (b"abc", {2: 1}),
])
def test_absent_buffers(body, want):
    """A missing buffer is nothing to inspect, so even a negated content there
    does not match (sid 4). ``absent`` asks for it to be missing, and
    ``absent: or_else`` for it to be missing or else to match."""
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 8000).open()
    length = b"Content-Length: %d\r\n" % len(body) if body else b""
    c.send(b"POST /toto HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: curl/7.81.0\r\n"
           b"Accept: */*\r\n" + length + b"\r\n" + body)
    c.send(b"HTTP/1.0 501 Unsupported method\r\nContent-Length: 0\r\n\r\n", from_client=False)
    assert sids(run(ABSENT_RULES, c.close())) == want
    for bad in ("absent;", "http.uri; content:\"a\"; absent;", "http.uri; absent:maybe;"):
        _, _, errors = parse_suricata_rules(f'alert http any any -> any any ({bad} sid:1;)')
        assert len(errors) == 1, bad


# ---------------------------------------------- Suricata 8's newer transforms

def test_subslice_follows_suricatas_own_vectors():
    from pakemon.detect.sigengine import _subslice
    s = b"this is suricata"
    cases = [((1, None, False), b"his is suricata"), ((0, 9, False), b"this is s"),
             ((3, None, False), b"s is suricata"), ((1, 12, False), b"his is suric"),
             ((13, -12, False), b" is suric"), ((2, 30, False), b""),
             ((2, 30, True), b"is is suricata"), ((-1, None, False), b"a"),
             ((-10, -2, False), b"suricat"[:0] + s[6:14]), ((40, None, False), b""),
             ((40, None, True), b""), ((-40, None, True), s)]
    for args, want in cases:
        assert _subslice(s, *args) == want, args


@pytest.mark.parametrize("prefilter", [True, False])
def test_gunzip_zlib_subslice_and_header_transforms(prefilter):
    import base64
    import gzip
    import zlib
    payload = b"cmd=/bin/sh -c id;" + b"x" * 2000
    gz = base64.b64encode(gzip.compress(payload)).decode()
    zl = base64.b64encode(zlib.compress(payload)).decode()
    rules = (
        'alert http any any -> any any (msg:"gz"; http.cookie; from_base64; gunzip; '
        'content:"/bin/sh"; sid:1;)\n'
        'alert http any any -> any any (msg:"gz tail"; http.cookie; from_base64; '
        'gunzip: max-size=1KiB; content:"xxx"; endswith; sid:2;)\n'
        'alert http any any -> any any (msg:"zlib"; http.user_agent; from_base64; '
        'zlib_deflate; content:"cmd="; startswith; sid:3;)\n'
        'alert http any any -> any any (msg:"slice"; http.uri; subslice: 1, 5; '
        'content:"admin"; bsize:5; sid:4;)\n'
        'alert http any any -> any any (msg:"names"; http.header; header_lowercase; '
        'content:"x-evil: Yes"; sid:5;)\n'
        'alert http any any -> any any (msg:"pseudo"; http.header; strip_pseudo_headers; '
        'content:"x-evil"; nocase; sid:6;)\n')
    req = (b"GET /admin/x HTTP/1.1\r\nHost: a\r\nCookie: " + gz.encode()
           + b"\r\nUser-Agent: " + zl.encode() + b"\r\nX-EVIL: Yes\r\n\r\n")
    # the 1 KB output of gunzip stops inside the x's: sid 2 reads them to its end
    assert sids(run(rules, _http(req), prefilter=prefilter)) == {1: 1, 2: 1, 3: 1, 4: 1,
                                                                  5: 1, 6: 1}
    # not compressed: nothing inflates, nothing matches
    bad = (b"GET /x/admin HTTP/1.1\r\nCookie: " + base64.b64encode(payload)
           + b"\r\nUser-Agent: " + gz.encode() + b"\r\nX-Evil: no\r\n\r\n")
    assert sids(run(rules, _http(bad, 41001), prefilter=prefilter)) == {6: 1}
