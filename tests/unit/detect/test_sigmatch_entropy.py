"""entropy (Suricata 8): the Shannon entropy of a buffer, or of ``bytes``
of it from ``offset``, compared with a value; an offset or count past the
buffer never matches."""

from __future__ import annotations

import base64
import random

import pytest

from pakemon.detect.sigmatch import shannon_entropy
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection, udp_frame
from test_sigengine import run, sids


def test_entropy_as_suricata_computes_it():
    # Suricata's own vectors (rust/src/detect/entropy.rs) and a known value
    assert shannon_entropy(b"aaaaaaa") == 0
    assert shannon_entropy(b"abcdabcd") == pytest.approx(2.0)
    assert shannon_entropy(b"") == 0
    assert shannon_entropy(b"hello, world") == pytest.approx(3.0220551, abs=1e-6)
    assert shannon_entropy(bytes(range(256))) == pytest.approx(8.0)


RULES = "".join(f'alert udp any any -> any any (msg:"e{sid}"; {body} sid:{sid};)\n'
                for sid, body in (
    (1, "entropy: value >7.5;"),
    (2, "entropy: value <4;"),
    (3, 'content:"KEY="; entropy: offset 4, bytes 256, value >= 7.0;'),
    (4, 'content:"abcd"; entropy: bytes 4, value 2;'),  # "abcd": exactly 2 bits
    (5, "entropy: value 1.5-3.5;"),
))


def test_entropy_on_payloads():
    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(2048))
    cases = [
        (noise, {1: 1}),
        (b"aaaabbbbaaaabbbb" * 8, {2: 1}),  # 1 bit: below the range too
        (b"KEY=" + noise[:300], {3: 1}),  # (300 random bytes: about 7.3 bits)
        (b"KEY=" + noise[:100], {}),  # fewer than 256 bytes after the offset
        (b"abcdabcdabcdabcd", {2: 1, 4: 1, 5: 1}),
    ]
    for i, (payload, want) in enumerate(cases):
        frames = [(1.0, udp_frame("10.0.0.1", "10.0.0.2", 5000 + i, 9000, payload))]
        assert sids(run(RULES, frames)) == want, i


def test_entropy_in_a_sticky_buffer():
    rules = ('alert http any any -> any any (msg:"random path"; http.uri; '
             'entropy: offset 1, value >4.5; sid:1;)\n')
    token = base64.urlsafe_b64encode(random.Random(3).randbytes(48))  # about 5.5 bits
    for i, (uri, want) in enumerate(((b"/" + token, {1: 1}), (b"/" + token.hex().encode(), {}),
                                     (b"/index.html", {}))):
        c = TcpConnection("10.0.0.1", "10.0.0.2", 40000 + i, 80).open()
        c.send(b"GET " + uri + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        assert sids(run(rules, c.close())) == want, uri


@pytest.mark.parametrize("value, message", [
    ("bytes 100", "the value is required"),
    ("value ? 7.0", "bad value"),
    ("bytes 1, offset 10, value 7.0, extra", "expected [bytes N]"),
    ("bytes 1, bytes 2, value 7", "expected [bytes N]"),
    ("offset 70000, value 7", "bad offset"),
])
def test_bad_entropy_is_a_rule_error(value, message):
    rules, skipped, errors = parse_suricata_rules(
        f'alert udp any any -> any any (msg:"x"; entropy:{value}; sid:1;)')
    assert not rules and not skipped and message in str(errors[0])
