"""Every ET Open rule this generator can build traffic for alerts on it.

et_synth reads each rule of the whole set, lays its contents, pcres and
isdataat checks out in their buffers, checks the layout with its own reading
of the match semantics, and builds the session (an HTTP request or response,
a TCP stream either way, a TLS handshake, a UDP datagram, an ICMP message, a
DNS query) from the rule's header (16,066 rules get one; a rule that needs a
flowbit has a setter's traffic first on the same connection). The sessions
go as a client would send them; a quarter of them also in 3-byte segments,
out of order; a fifth behind bad-checksum decoys; a third over IPv6. All go
through one pipeline with all 18,219 rules loaded, and each must raise its
own rule (a threshold's after its count of connections). Each rule's near
miss (one byte of one content changed, where this reading says the rule can
then not match) must not raise it, nor a threshold rule's traffic one time
short of its count.

It found that a raw content beside HTTP buffers was only looked for in the
start line and headers: 303 ET rules, such as
``content:"|0D 0A 0D 0A|PK"`` beside ``http_header``, could not alert on a
body (tests/unit/detect/test_sigengine.py pins it).
"""

from __future__ import annotations

import logging

import pytest
from et_synth import (ET_DIR, Skip, alerted, build, build_short, build_twins, layout, misses,
                      regex_sample, run, satisfies, setters_of)

from pakemon.detect.suricata_parser import parse_suricata_rules


def _rule(text: str):
    rules, errors = parse_suricata_rules(text)[:2]
    assert not errors, errors
    return rules[0]


def _body(opts: str):
    return _rule(f'alert tcp any any -> any any (msg:"t"; {opts} sid:1;)').elements


# ---- the generator's own reading of a rule (it decides which sessions count)

@pytest.mark.parametrize("opts,buf,ok", [
    ('content:"abc"; content:"def"; distance:0; within:3;', b"abcdef", True),
    ('content:"abc"; content:"def"; distance:0; within:3;', b"abcxdef", False),
    # within counts from where distance puts the start (Suricata)
    ('content:"abc"; content:"def"; distance:2; within:3;', b"abcxxdef", True),
    ('content:"abc"; content:"def"; distance:2; within:3;', b"abcxxxdef", False),
    ('content:"abc"; depth:3; content:!"zz";', b"abcz", True),
    ('content:"abc"; depth:3; content:!"zz";', b"abczz", False),
    # backtracking: the second "ab" is the one the next content follows
    ('content:"ab"; content:"cd"; distance:0; within:2;', b"abxabcd", True),
    ('content:"ab"; isdataat:!1,relative;', b"xxab", True),
    ('content:"ab"; isdataat:!1,relative;', b"abx", False),
    ('content:"GET"; nocase; pcre:"/^\\/x\\d+/R";', b"get/x9", True),
    # byte_test reads after the match; byte_jump moves the pointer
    ('content:"|ff|"; byte_test:2,>,256,0,relative;', b"\xff\x01\x01", True),
    ('content:"|ff|"; byte_test:2,>,256,0,relative;', b"\xff\x01\x00", False),
    ('content:"|ff|"; byte_test:2,!=,7,0,relative,little;', b"\xff\x07\x00", False),
    ('content:"L="; byte_test:3,<,200,0,relative,string,dec;', b"L=199", True),
    ('content:"|01|"; byte_jump:1,0,relative; content:"Z"; within:1;', b"\x01\x02abZ", True),
    ('content:"|01|"; byte_jump:1,0,relative; content:"Z"; within:1;', b"\x01\x02aZ", False),
])
def test_generator_reads_match_semantics(opts, buf, ok):
    assert satisfies(_body(opts), buf) is ok


@pytest.mark.parametrize("opts", [
    'content:"MSG "; depth:4; content:"Type|3a|"; distance:0; content:"603"; distance:2;',
    'content:"abc"; offset:3; depth:6; isdataat:5,relative;',
    'pcre:"/^[a-f0-9]{8}-(x|y)\\d{2}[^a-z]$/";',
    'content:"id="; pcre:"/id=[0-9]+&k=\\w+/R";',
    'content:"|00|SMB"; byte_test:1,>,10,2,relative; byte_jump:2,0,relative,little; '
    'content:"|5c|PIPE"; within:5;',
    'content:"LEN "; byte_jump:4,0,relative,string,dec,post_offset 2; content:"go"; within:2;',
])
def test_layout_satisfies_the_rule(opts):
    elems = _body(opts)
    assert satisfies(elems, layout(elems))


def test_regex_sampler_refuses_what_it_cannot_invert():
    with pytest.raises(Skip):
        regex_sample(_body('pcre:"/a(?=b)/";')[0].regex)


@pytest.fixture(scope="module")
def et_rules():
    if not ET_DIR.exists():
        pytest.skip("ET rule set not present")
    from pakemon.detect.suricata_parser import load_suricata_rules

    logging.disable(logging.WARNING)
    try:
        return load_suricata_rules(ET_DIR).rules
    finally:
        logging.disable(logging.NOTSET)


def test_every_et_rule_with_a_session_alerts_on_it(et_rules):
    sessions, skipped = build(et_rules, setters=setters_of(et_rules))
    # most of the set has a session (if the generator lost a kind of rule
    # this would say so rather than pass on fewer)
    assert len(sessions) >= 16050, skipped.most_common(10)
    missed = misses(sessions, run(et_rules, sessions))
    assert not missed, [f"{r.sid}: {r.text[:200]}" for r in missed[:10]]


def test_et_rules_alert_on_tiny_segments_out_of_order(et_rules):
    # a quarter of the set, each session's data in 3-byte segments sent in
    # a random order within each flight: reassembly, the app parsers and
    # the stream matcher must give every rule the bytes it names
    sessions, _ = build(et_rules[::4], segment=3, shuffle=True, setters=setters_of(et_rules))
    assert len(sessions) >= 3500
    missed = misses(sessions, run(et_rules, sessions))
    assert not missed, [f"{r.sid}: {r.text[:200]}" for r in missed[:10]]


def test_et_rules_do_not_alert_on_their_near_misses(et_rules):
    # each rule's twin: one byte of one content changed, traffic made from
    # it, kept only where the original rule cannot match what was sent
    sessions, skipped = build_twins(et_rules)
    assert len(sessions) >= 12000, skipped.most_common(10)
    # and each threshold rule's traffic one time short of its count
    short = build_short(et_rules, setters_of(et_rules))
    assert len(short) >= 80
    sessions += short
    wrong = alerted(sessions, run(et_rules, sessions))
    assert not wrong, [f"{r.sid}: {r.text[:200]}" for r in wrong[:10]]


def test_et_rules_alert_over_ipv6(tmp_path, monkeypatch):
    # a home network with an IPv6 range, a third of the set, every session
    # over IPv6 (addresses, pseudo-header checksums, the address intervals
    # of the rule groups)
    if not ET_DIR.exists():
        pytest.skip("ET rule set not present")
    import et_synth

    from pakemon.detect.suricata_parser import load_suricata_rules

    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text('HOME_NET: "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12,fd00::/8]"\n')
    logging.disable(logging.WARNING)
    try:
        rules = load_suricata_rules(ET_DIR, vars=vars_file).rules
    finally:
        logging.disable(logging.NOTSET)
    monkeypatch.setattr(et_synth, "IPV6", True)
    sessions, _ = build(rules[::3], setters=setters_of(rules))
    assert len(sessions) >= 5000
    assert all(":" in key[0] for _r, _f, key in sessions)
    missed = misses(sessions, run(rules, sessions))
    assert not missed, [f"{r.sid}: {r.text[:200]}" for r in missed[:10]]


def test_et_rules_alert_behind_bad_checksum_decoys(et_rules):
    # a fifth of the set, each data segment preceded by a decoy with the
    # same sequence numbers, other bytes and a wrong checksum, which the
    # host drops: with checksums checked (the default) every rule still
    # alerts; a sensor that took the decoys would miss nearly all of them
    from et_synth import with_decoys

    sessions, _ = build(et_rules[::5], setters=setters_of(et_rules))
    sessions = [(r, with_decoys(f), k) for r, f, k in sessions]
    assert len(sessions) >= 3000
    missed = misses(sessions, run(et_rules, sessions, checksum="auto"))
    assert not missed, [f"{r.sid}: {r.text[:200]}" for r in missed[:10]]
