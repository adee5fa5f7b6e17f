"""base64_decode and base64_data: bytes decoded from a buffer (relative to a
match, at an offset, at most N bytes), the base64_data elements matched in
them, as Suricata's RFC 4648 mode decodes."""

from __future__ import annotations

import pytest

from pakemon.detect.sigmatch import b64_decode
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection, udp_frame
from test_sigengine import run, sids

# the Suricata verification suite's base64 case: a query ?arg=dGhpc2lzYXRlc3QK,
# "thisisatest\n" encoded; 17 bytes after "arg" and one more hold all of it,
# 10 only "thisisa"
URI_RULES = "".join(
    f'alert http any any -> any any (msg:"Example"; content:"arg"; http_uri; '
    f'base64_decode:bytes {n}, offset 1, relative; base64_data; content:"{want}"; sid:{sid};)\n'
    for sid, n, want in ((1, 17, "thisisatest"), (2, 17, "thisisatest"), (3, 10, "test"),
                         (4, 17, "toast")))


def test_base64_in_the_uri():
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 80).open()
    c.send(b"GET /?arg=dGhpc2lzYXRlc3QK HTTP/1.1\r\nHost: home.regit.org\r\n\r\n")
    assert sids(run(URI_RULES, c.close())) == {1: 1, 2: 1}


PAYLOAD_RULES = "".join(f'alert udp any any -> any any (msg:"b{sid}"; {body} sid:{sid};)\n'
                        for sid, body in (
    (1, 'content:"K="; base64_decode:relative; base64_data; content:"Hello World";'),
    (2, 'base64_decode:offset 8; base64_data; pcre:"/^aaa.*World$/";'),
    (3, 'content:"K="; base64_decode:relative; base64_data; content:!"Hello"; '),
    (4, 'content:"K="; base64_decode:relative; content:"Q"; distance:0;'),
    (5, 'base64_decode:bytes 4, offset 100;'),
))


@pytest.mark.parametrize("payload, want", [
    (b"K=SGVsbG8gV29ybGQ=", {1: 1, 4: 1}),  # (the position is not moved: Q follows K=)
    (b"aaaaaaaaYWFhIEhlbGxvIFdvcmxk", {2: 1}),  # "aaa Hello World", from byte 8
    (b"K=SGVsbG8*V29ybGQ=", {4: 1}),  # stops at "*": "Hello" (4: a Q follows K=)
    (b"K=SGVs*bG8=", {3: 1}),  # "Hel": no Hello
    (b"K=!!!!", {}),  # nothing decodes: base64_decode itself does not match
])
def test_base64_on_payloads(payload, want):
    frames = [(1.0, udp_frame("10.0.0.1", "10.0.0.2", 5000, 9000, payload))]
    assert sids(run(PAYLOAD_RULES, frames)) == want


def test_rfc4648_decoding_stops_at_the_first_byte_outside_the_alphabet():
    assert b64_decode(b"SGVsbG8gV29ybGQ=") == b"Hello World"
    assert b64_decode(b"SGVsbG8gV29ybGQ") == b"Hello World"  # no padding: 2 bytes of 3
    assert b64_decode(b"SGVs bG8=") == b"Hel"
    assert b64_decode(b"S") == b"" and b64_decode(b"") == b""
    # a padded group ends only itself; a lone character left fails it all
    assert b64_decode(b"QQ==QUJD") == b"AABC"
    assert b64_decode(b"QUJDR") == b"" and b64_decode(b"QUJDRA") == b"ABCD"


def test_rfc2045_skips_bytes_outside_the_alphabet_and_strict_takes_none():
    # Suricata's own vectors (rust/src/utils/base64.rs, transform-base64.c)
    assert b64_decode(b"Zm 9v Ym Fy", "rfc2045") == b"foobar"
    assert b64_decode(b"Zm$9vYm.Fy", "rfc2045") == b"foobar"
    assert b64_decode(b"Zm 9v Ym Fy") == b"f"
    assert len(b64_decode(b"This is not base64-encoded", "rfc2045")) == 15
    assert b64_decode(b"SGVsbG8gV29ybGQ=", "strict") == b"Hello World"
    assert b64_decode(b"SGVsbG8gV29ybGQ", "strict") == b"Hello World"
    assert b64_decode(b"SGVs bG8=", "strict") == b""
    assert b64_decode(b"SGVsbG8=x", "strict") == b""


@pytest.mark.parametrize("text", [
    'base64_data; content:"x";',
    'content:"a"; base64_decode:bytes x; base64_data; content:"x";',
    'content:"a"; base64_decode:relatve; base64_data; content:"x";',
    'content:"a"; base64_decode:bytes 70000; base64_data; content:"x";',
])
def test_bad_base64_keywords_are_rule_errors(text):
    rules, skipped, errors = parse_suricata_rules(
        f'alert tcp any any -> any any (msg:"bad"; {text} sid:1;)')
    assert not rules and not skipped and len(errors) == 1
    assert "base64" in str(errors[0])
