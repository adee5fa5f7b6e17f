"""Suricata payload inspection of one buffer (pakemon.detect.sigmatch).

Rules are parsed with the real parser; byte_test/byte_jump/byte_extract are
tested both from rule text (``BYTE_RULES``, skipped if the parser skips the
keyword) and built from the parser's data model, which also reaches fields
the text tests don't (dce, bad values). Sources of
truth: Suricata-verify cases (pcaps decoded with the project's reader and
decoder, expected alert counts from their expected.json), hand-made buffers
whose answer follows from the keyword definitions, and an exhaustive
reference for plain content chains (hypothesis).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pakemon.detect.sigmatch as sigmatch
from pakemon.capture.pcapfile import open_capture
from pakemon.decode.decoder import DecodeError, decode_frame
from pakemon.detect.sigmatch import compile_elements, inspect_buffer
from pakemon.detect.suricata_parser import (
    ByteExtract,
    ByteJump,
    ByteTest,
    ContentMatch,
    IsDataAt,
    PcreMatch,
    compile_pcre,
    parse_suricata_rules,
)

SV = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "suricata-verify"


def elements(options: str, buffer=None):
    """The elements of one buffer of a rule written as its options."""
    rules, skipped, errors = parse_suricata_rules(
        f"alert tcp any any -> any any ({options} sid:1;)", "t.rules"
    )
    assert not errors and not skipped, (errors, skipped)
    return tuple(e for e in rules[0].elements if getattr(e, "buffer", None) == buffer)


def match(options: str, data: bytes, env=None, buffer=None) -> bool:
    return inspect_buffer(compile_elements(elements(options, buffer)), data, env)


def run(elems, data: bytes, env=None) -> bool:
    return inspect_buffer(compile_elements(elems), data, env)


# ------------------------------------------------------------------ content


class TestContent:
    def test_offset_depth_are_absolute(self):
        opts = 'content:"ab"; offset:2; depth:3;'
        assert match(opts, b"xxabx")  # window [2, 5)
        assert match(opts, b"xxxab")
        assert not match(opts, b"xabxx")  # starts before offset
        assert not match(opts, b"xxxxab")  # ends past offset+depth

    def test_startswith_endswith(self):
        assert match('content:"GET"; startswith;', b"GET / HTTP/1.1")
        assert not match('content:"GET"; startswith;', b" GET /")
        assert match('content:"|0d 0a|"; endswith;', b"GET /\r\n")
        assert not match('content:"abc"; endswith;', b"abcabx")
        # a first occurrence elsewhere doesn't hide the one at the end
        assert match('content:"abc"; endswith;', b"abcXabc")

    def test_nocase_folds_ascii_only(self):
        assert match('content:"GeT"; nocase;', b"xget")
        assert not match('content:"GeT";', b"xget")
        assert not match('content:"|c3 a9|"; nocase;', b"\xc3\x89")  # no Unicode folding
        # a case-sensitive content in the same rule still sees the original bytes
        assert match('content:"AbC"; nocase; content:"Zz"; distance:0;', b"abcZz")
        assert not match('content:"AbC"; nocase; content:"Zz"; distance:0;', b"abczz")

    def test_distance_within_from_previous_match_end(self):
        opts = 'content:"ab"; content:"cd"; distance:2; within:4;'
        assert match(opts, b"ab..cd")  # window [4, 8)
        assert match(opts, b"ab....cd")
        assert not match(opts, b"ab.cd.")  # starts before distance
        assert not match(opts, b"ab.....cd")  # ends past distance+within

    def test_within_smaller_than_distance_plus_pattern(self):
        # within counts from where distance puts the window, not from the
        # previous match: [a_end+3, a_end+3+2)
        opts = 'content:"a"; content:"bc"; distance:3; within:2;'
        assert match(opts, b"a...bc")
        assert not match(opts, b"a..bc")
        assert not match(opts, b"a....bc")

    def test_negative_distance(self):
        opts = 'content:"def"; content:"abc"; distance:-6; within:3;'
        assert match(opts, b"abcdef")  # window [0, 3)
        assert match(opts, b"xxabcdef")
        assert not match(opts, b"abcxdef")  # window [1, 4) holds "bcx"
        # a window starting before the buffer is clamped to 0
        assert match('content:"b"; content:"a"; distance:-5; within:6;', b"ab")
        assert match('content:"b"; content:"a"; distance:-12; within:13;', b"a" + b"." * 8 + b"b")

    def test_backtracking_retries_the_previous_content(self):
        opts = 'content:"a"; content:"b"; distance:0; within:1;'
        assert match(opts, b"aab")  # a@0 fails, a@1 is followed by b
        assert match(opts, b"a a ab")
        assert not match(opts, b"a a a b")
        # three levels deep: the middle content is retried as well
        opts3 = 'content:"x"; content:"y"; distance:0; within:3; content:"z"; distance:0; within:1;'
        assert match(opts3, b"xy.y z xyyz")
        assert not match(opts3, b"xy.y z xy.z")

    def test_negated_content(self):
        assert match('content:"a"; content:!"evil";', b"a good day")
        assert not match('content:"a"; content:!"evil";', b"a evil day")
        assert match('content:!"evil"; depth:4;', b"xevil")  # outside its window

    def test_negated_relative_content(self):
        opts = 'content:"GET"; content:!"admin"; distance:0; within:10;'
        assert match(opts, b"GET /index")
        assert not match(opts, b"GET /admin")
        assert match(opts, b"GET /index.html/admin")  # past the window
        # the negated content is relative to the previous match: a later GET
        # without admin after it matches
        assert match(opts, b"GET /admin GET /index")
        # and it doesn't move the pointer: the next content is relative to GET
        opts2 = (
            'content:"GET"; content:!"x"; distance:0; within:2; '
            'content:"/a"; distance:1; within:2;'
        )
        assert match(opts2, b"GET /a")
        assert not match(opts2, b"GETx/a")

    def test_endswith_with_distance(self):
        opts = 'content:"ab"; content:"yz"; distance:2; endswith;'
        assert match(opts, b"ab..yz")
        assert match(opts, b"ab....yz")
        assert not match(opts, b"ab..yz.")
        assert not match(opts, b"ab.yz")  # before the window

    def test_negated_endswith(self):
        assert match('content:"x"; content:!"ab"; endswith;', b"x ab ab.")
        assert not match('content:"x"; content:!"ab"; endswith;', b"x ab ab")

    def test_byte_extract_variable_windows_are_looked_up(self):
        # content with a variable depth (as the parser will fill it: a str)
        c = ContentMatch(b"abc", depth="len")
        assert run((c,), b"xabc", {"len": 4})
        assert not run((c,), b"xabc", {"len": 3})
        assert not run((c,), b"xabc", {})  # unset variable: no match


# ---------------------------------------------------------------- isdataat


class TestIsDataAt:
    def test_absolute_and_relative(self):
        assert match('isdataat:3;', b"abcd")
        assert not match('isdataat:4;', b"abcd")
        assert match('isdataat:!4;', b"abcd")
        assert match('content:"ab"; isdataat:2,relative;', b"abcd")
        assert not match('content:"ab"; isdataat:3,relative;', b"abcd")

    def test_relative_after_the_last_match(self):
        # "nothing after the match": retried until the last occurrence
        opts = 'content:"ab"; isdataat:!1,relative;'
        assert match(opts, b"abxab")
        assert not match(opts, b"abxabx")


# -------------------------------------------------------------------- pcre


class TestPcre:
    def test_relative_pcre_anchors_at_previous_match_end(self):
        assert match('content:"a"; pcre:"/^b/R";', b"ab")
        assert not match('content:"a"; pcre:"/^b/R";', b"axb")
        assert match('content:"a"; pcre:"/^b/R";', b"axab")  # retry at the second a
        assert not match('pcre:"/^b/";', b"ab")  # not relative: the buffer start

    def test_pcre_moves_the_pointer(self):
        opts = 'pcre:"/x\\d+/"; content:"y"; within:1;'
        assert match(opts, b"x12y")
        assert not match(opts, b"x12 y")
        # retried at its next match when the relative content fails
        assert match(opts, b"x1 x2y")

    def test_negated_pcre(self):
        assert match('content:"a"; pcre:!"/^\\d/R";', b"ax")
        assert not match('content:"a"; pcre:!"/^\\d/R";', b"a1")


def test_bsize():
    opts = 'http.uri; content:"/a"; bsize:>3;'
    assert match(opts, b"/abcd", buffer="http.uri")
    assert not match(opts, b"/ab", buffer="http.uri")


# ------------------------------------------------------------------ byte_*


class TestByteTest:
    def test_endianness_and_operators(self):
        data = b"\x01\x02"
        assert run((ByteTest(2, "=", 0x0102, 0),), data)
        assert run((ByteTest(2, "=", 0x0201, 0, big_endian=False),), data)
        assert run((ByteTest(2, "=", 0x0201, 0, dce=True),), data)  # dce: little endian
        assert run((ByteTest(1, ">", 0, 1),), data)
        assert not run((ByteTest(1, ">", 2, 1),), data)
        assert run((ByteTest(1, ">=", 2, 1),), data)
        assert run((ByteTest(1, "<=", 1, 0),), data)
        assert run((ByteTest(1, "&", 0x03, 1),), data)
        assert not run((ByteTest(1, "&", 0x04, 1),), data)
        assert run((ByteTest(1, "^", 0x03, 1),), data)
        assert not run((ByteTest(1, "^", 0x02, 1),), data)
        assert run((ByteTest(1, "=", 2, 1, negated=True),), b"\x00\x03")
        assert not run((ByteTest(1, "=", 2, 1, negated=True),), data)

    def test_bounds(self):
        assert not run((ByteTest(2, "=", 0x0203, 1),), b"\x01\x02")  # runs off the end
        assert not run((ByteTest(1, "=", 1, -1),), b"\x01")
        assert not run((ByteTest(1, "=", 0, 0),), b"")

    def test_bitmask_shifts_by_trailing_zeros(self):
        # (0x0350 & 0x0ff0) >> 4 == 0x35
        assert run((ByteTest(2, "=", 0x35, 0, bitmask=0x0FF0),), b"\x03\x50")
        assert not run((ByteTest(2, "=", 0x350, 0, bitmask=0x0FF0),), b"\x03\x50")
        assert run((ByteTest(1, "=", 1, 0, bitmask=0x80),), b"\x80")

    def test_string_bases(self):
        assert run((ByteTest(2, "=", 31, 0, string_base=16),), b"1f")
        assert run((ByteTest(4, "=", 31, 0, string_base=16),), b"0x1f")
        assert run((ByteTest(2, "=", 15, 0, string_base=8),), b"17")
        assert run((ByteTest(4, "=", 42, 0, string_base=10),), b" 42x")  # strtoull prefix
        assert not run((ByteTest(2, "=", 0, 0, string_base=10),), b"xy")  # no digits
        assert run((ByteTest(2, "=", 1, 0, string_base=8),), b"19")  # 9 isn't octal: stops

    def test_relative_and_variables(self):
        # relative to the end of "len:" ; value from byte_extract
        elems = (
            ContentMatch(b"len:"),
            ByteExtract(1, 0, "n", relative=True),
            ByteTest(1, "=", "n", 0, relative=True),
        )
        assert run(elems, b"xlen:\x05\x05")
        assert not run(elems, b"xlen:\x05\x06")
        env: dict = {}
        assert run(elems, b"len:\x07\x07", env) and env["n"] == 7
        assert not run((ByteTest(1, "=", "missing", 0),), b"\x00")


class TestByteJump:
    def test_jump_then_relative_content(self):
        # 2-byte length 3, skip it: the pointer lands on "XYZ"
        elems = (ByteJump(2, 0), ContentMatch(b"XYZ", distance=0, within=3))
        assert run(elems, b"\x00\x03abcXYZ")
        assert not run(elems, b"\x00\x02abcXYZ")
        assert not run(elems, b"\x00\x30abcXYZ")  # jumps past the end

    def test_multiplier_align_post_offset(self):
        c = ContentMatch(b"Z", distance=0, within=1)
        assert run((ByteJump(1, 0, multiplier=2), c), b"\x02abcdZ")  # 1 + 2*2
        assert run((ByteJump(1, 0, align=True), c), b"\x02abcdZ")  # 2 -> 4: 1 + 4
        assert not run((ByteJump(1, 0), c), b"\x02abcdZ")
        assert run((ByteJump(1, 0, post_offset=-1), c), b"\x03abZc")  # 1 + 3 - 1
        assert run((ByteJump(1, 0, from_beginning=True), c), b"\x03abZc")
        assert run((ByteJump(1, 0, from_end=True, post_offset=-2), c), b"\x00abcZq")
        # a jump before the start lands on 0
        back = (ByteJump(1, 0, post_offset=-50), ContentMatch(b"\x01", distance=0, within=1))
        assert run(back, b"\x01")

    def test_string_jump_and_relative(self):
        # "12" decimal from after "len=": jump 12 past the digits
        elems = (
            ContentMatch(b"len="),
            ByteJump(2, 0, relative=True, string_base=10),
            ContentMatch(b"END", distance=0, within=3),
        )
        assert run(elems, b"len=12" + b"x" * 12 + b"END")
        assert not run(elems, b"len=12" + b"x" * 11 + b"END")
        # the jump starts after the digits read, not after the whole field
        # (Suricata adds strtoull's consumed count)
        elems = (ByteJump(4, 0, string_base=10), ContentMatch(b"E", distance=0, within=1))
        assert run(elems, b"12  " + b"x" * 10 + b"E")
        assert not run(elems, b"12  " + b"x" * 12 + b"E")


class TestByteExtract:
    def test_extract_feeds_depth_and_within(self):
        elems = (ByteExtract(1, 0, "len"), ContentMatch(b"abc", offset=1, depth="len"))
        assert run(elems, b"\x04xabc")  # window [1, 5)
        assert not run(elems, b"\x03xabc")
        elems = (
            ContentMatch(b"K"),
            ByteExtract(1, 0, "n", relative=True),
            ContentMatch(b"Z", distance=0, within="n"),
        )
        assert run(elems, b"K\x03..Z")
        assert not run(elems, b"K\x02..Z")

    def test_extract_string_multiplier_align(self):
        env: dict = {}
        assert run((ByteExtract(2, 0, "v", string_base=16, multiplier=3),), b"0a", env)
        assert env["v"] == 30
        assert run((ByteExtract(1, 0, "v", align=4),), b"\x05", env) and env["v"] == 8
        assert run((ByteExtract(2, 0, "v", big_endian=False),), b"\x01\x02", env)
        assert env["v"] == 0x0201


_WITHIN_N = 'content:"K"; byte_extract:1,0,n,relative; content:"Z"; distance:0; within:n;'
_TEST_N = 'content:"len="; byte_extract:1,0,n,relative; byte_test:1,=,n,0,relative;'
BYTE_RULES = [
    # byte_jump then a relative content
    ('byte_jump:2,0; content:"XYZ"; distance:0; within:3;', b"\x00\x03abcXYZ", True),
    ('byte_jump:2,0; content:"XYZ"; distance:0; within:3;', b"\x00\x02abcXYZ", False),
    ('content:"L"; byte_jump:1,0,relative,multiplier 2,post_offset -1; content:"Z"; within:1;',
     b"L\x02abcZ", True),
    ('byte_jump:1,0,from_end,post_offset -2; content:"Z"; within:1;', b"\x00abcZq", True),
    # byte_extract feeding depth and within
    ('byte_extract:1,0,len; content:"abc"; offset:1; depth:len;', b"\x04xabc", True),
    ('byte_extract:1,0,len; content:"abc"; offset:1; depth:len;', b"\x03xabc", False),
    (_WITHIN_N, b"K\x03..Z", True),
    (_WITHIN_N, b"K\x02..Z", False),
    (_TEST_N, b"len=\x02\x02", True),
    (_TEST_N, b"len=\x02\x03", False),
    # bitmask: (0x0350 & 0x0ff0) >> 4 == 0x35
    ("byte_test:2,=,0x35,0,bitmask 0x0ff0;", b"\x03\x50", True),
    ("byte_test:2,=,0x350,0,bitmask 0x0ff0;", b"\x03\x50", False),
    # string bases
    ("byte_test:4,>,1000,0,string,dec;", b"1001", True),
    ("byte_test:4,>,1000,0,string,dec;", b"0999", False),
    ("byte_test:2,=,31,0,string,hex;", b"1f", True),
    ("byte_test:2,=,15,0,string,oct;", b"17", True),
    ("byte_extract:2,0,v,string,hex,multiplier 3; byte_test:1,=,v,2;", b"0a\x0a", False),
    ("byte_extract:2,0,v,string,hex,multiplier 3; byte_test:1,=,v,2;", b"0a\x1e", True),
    ("byte_test:2,!=,5,0,little;", b"\x05\x00", False),
    ("byte_test:2,!=,5,0,little;", b"\x00\x05", True),
]


@pytest.mark.parametrize("options, data, expected", BYTE_RULES)
def test_byte_keywords_from_parsed_rules(options, data, expected):
    rules, skipped, errors = parse_suricata_rules(
        f"alert tcp any any -> any any ({options} sid:1;)", "t.rules"
    )
    assert not errors
    if skipped:
        pytest.skip(f"the parser skips {skipped[0].keyword}")
    assert inspect_buffer(compile_elements(rules[0].elements), data, {}) is expected


# ------------------------------------------------------------- robustness


def test_unknown_elements_and_bad_values_never_raise():
    assert not run((object(),), b"abc")
    assert not run((ByteTest(2, "??", 1, 0),), b"\x00\x01")
    assert not run((ByteTest(99, "=", 1, 0),), b"\x00" * 200)
    assert not run((IsDataAt("nope"),), b"abc")
    assert not run((ContentMatch(b"a", distance="d"),), b"aaa")
    assert not run((PcreMatch("x", "", None),), b"x")
    assert not run((ContentMatch("not bytes"),), b"not bytes")
    assert not inspect_buffer(None, b"abc")
    assert not inspect_buffer((ContentMatch(b"a"),), "a str, not bytes")
    assert inspect_buffer((ContentMatch(b"a"),), bytearray(b"xa"))
    # raw (uncompiled) elements work, and no env is fine
    assert inspect_buffer((ContentMatch(b"b", offset=1),), b"ab")


def test_raw_element_tuples_are_compiled_once_and_kept_apart():
    # the engine may pass the parser's tuples directly: each tuple keeps
    # its own compiled form, whatever order they are used in
    first = elements('content:"a"; content:"b"; distance:0; within:1;')
    second = elements('content:"b"; content:"a"; distance:0; within:1;')
    for _ in range(2):
        assert inspect_buffer(first, b"xab") and not inspect_buffer(first, b"xba")
        assert inspect_buffer(second, b"xba") and not inspect_buffer(second, b"xab")
    assert inspect_buffer(list(first), b"ab")  # a list: compiled at each call


def test_recursion_limit_stops_hostile_backtracking():
    # four chained "a" contents then "b" right after: the only match starts
    # in the trailing "aaaab", but depth-first search first tries every
    # chain of the leading a's (each within reach of the others)
    opts = (
        'content:"a"; content:"a"; distance:0; within:60; content:"a"; distance:0; '
        'within:60; content:"a"; distance:0; within:60; content:"b"; distance:0; within:1;'
    )
    compiled = compile_elements(elements(opts))
    assert inspect_buffer(compiled, b"aaaab")
    tail = b"." * 100 + b"aaaab"
    # ~6,000 steps for 20 leading a's: over Suricata's budget of 3000
    assert not inspect_buffer(compiled, b"a" * 20 + tail)
    with mock.patch.object(sigmatch, "RECURSION_LIMIT", 10**9):
        assert inspect_buffer(compiled, b"a" * 20 + tail)
    # 200 leading a's would be ~65 million steps without the budget
    t = time.perf_counter()
    assert not inspect_buffer(compiled, b"a" * 200 + tail)
    assert time.perf_counter() - t < 0.5


# ----------------------------------------------------- suricata-verify cases


def _payloads(case: str):
    out = []
    for ts, linktype, frame in open_capture(str(SV / case / "input.pcap")):
        try:
            pkt = decode_frame(linktype, frame, ts)
        except DecodeError:
            continue
        if pkt.payload:
            out.append(pkt)
    return out


def _expected(case: str) -> dict[int, int]:
    alerts = json.loads((SV / case / "expected.json").read_text())["alerts"]
    return {int(sid): count for sid, count in alerts.items()}


def _rules(case: str):
    text = (SV / case / "test.rules").read_text()
    rules, skipped, errors = parse_suricata_rules(text, "test.rules")
    assert not skipped and not errors
    return rules


needs_sv = pytest.mark.skipif(not SV.is_dir(), reason="suricata-verify corpus not present")


@needs_sv
@pytest.mark.parametrize(
    "case",
    ["alert-distance-within-1", "bug-5162", "bug-docs-5030-01", "bug-docs-5030-02", "tcp-5379"],
)
def test_suricata_verify_packet_payloads(case):
    """Alerts per rule = payloads that match (each alert of these cases is
    one packet's payload; bug-5162 needs backtracking over |09 00|)."""
    payloads = [bytes(p.payload) for p in _payloads(case)]
    got = {}
    for rule in _rules(case):
        compiled = compile_elements(rule.elements)
        got[rule.sid] = sum(inspect_buffer(compiled, data, {}) for data in payloads)
    assert got == _expected(case)


@needs_sv
def test_suricata_verify_isdataat():
    """issue-8031: 32-byte ICMP echo bodies (Suricata's ICMP payload starts
    after the 8-byte echo header; the decoder's keeps id and sequence)."""
    bodies = [bytes(p.payload[4:]) for p in _payloads("issue-8031-01-isdataat")]
    assert {len(b) for b in bodies} == {32}
    got = {}
    for rule in _rules("issue-8031-01-isdataat"):
        compiled = compile_elements(rule.elements)
        got[rule.sid] = sum(inspect_buffer(compiled, b, {}) for b in bodies)
    assert got == _expected("issue-8031-01-isdataat")


def test_pcre_from_compile_pcre_relative_flag():
    # the engine gets PcreMatch objects whose regex the parser compiled
    regex = compile_pcre("^\\d+&", "R")
    elems = (ContentMatch(b"id="), PcreMatch("^\\d+&", "R", regex, relative=True))
    assert run(elems, b"id=x&id=12&")
    assert not run(elems, b"id=x&id=12")


def test_pcre_time_limit_stops_a_hostile_regex():
    """ET 2103274's pcre backtracks without end on a run of T: re would take
    hours on 4,000 bytes. The inspection gives up at the time limit (the
    rule does not match, negated or not, as Suricata's PCRE match limit) and
    counts it; the same rule on ordinary bytes still matches."""
    hostile = b"T" * 4000
    opts = 'content:"T"; pcre:"/T.*?T.*?Y.*?P.*?R.*?O.*?M.*?P.*?T/";'
    before = sigmatch.LIMITS["pcre_time_limit"]
    # (without the hyperscan prefilter, which answers this one at once)
    with mock.patch.object(sigmatch, "PCRE_TIME_LIMIT", 0.05), \
            mock.patch.object(sigmatch, "_prefilter", lambda *a: False):
        t = time.monotonic()
        assert not match(opts, hostile)
        assert time.monotonic() - t < 1.0
        assert sigmatch.LIMITS["pcre_time_limit"] == before + 1
        assert not match('content:"T"; pcre:!"/T.*?T.*?Y.*?P.*?R.*?O.*?M.*?P.*?T/";', hostile)
        assert sigmatch.LIMITS["pcre_time_limit"] == before + 2
        assert match(opts, b"xT TYPE PROMPT x")
        assert sigmatch.LIMITS["pcre_time_limit"] == before + 2


def test_pcre_time_limit_is_shared_by_an_inspections_retries():
    """A pcre retried for a later content (distance/within) searches again
    per occurrence: the time limit holds for all of them together, and the
    inspection ends at the first search that runs out."""
    # each Q starts a search that backtracks exponentially over its run of
    # letters (the regex module too); 60 of them
    hostile = (b"Q" + b"a" * 22 + b"!") * 60
    opts = 'content:"Q"; pcre:"/(a|aa)+$/R"; content:"zz"; within:2;'
    before = sigmatch.LIMITS["pcre_time_limit"]
    no_prefilter = mock.patch.object(sigmatch, "_prefilter", lambda *a: False)
    t = time.monotonic()
    with mock.patch.object(sigmatch, "PCRE_TIME_LIMIT", 0.02), no_prefilter:
        assert not match(opts, hostile)
    took = time.monotonic() - t
    assert sigmatch.LIMITS["pcre_time_limit"] == before + 1
    assert took < 0.5, took
    # the same searches unbounded take far longer (what the limit saves)
    t = time.monotonic()
    with mock.patch.object(sigmatch, "PCRE_TIME_LIMIT", 60.0), no_prefilter:
        assert not match(opts, hostile[:24 * 10])
    assert time.monotonic() - t > 2 * took


@pytest.mark.skipif(sigmatch._hs is None, reason="hyperscan is not installed")
def test_pcre_prefilter_answers_hostile_bytes_that_cannot_match():
    """Hyperscan reads the pcre as written, widened where it must be
    (back-references, lookarounds): where it finds no match, no search
    runs, so the backtracking inputs above cost no time and hit no limit;
    where it finds one, the search decides, as before."""
    before = sigmatch.LIMITS["pcre_time_limit"]
    for opts, hostile in (
            ('content:"T"; pcre:"/T.*?T.*?Y.*?P.*?R.*?O.*?M.*?P.*?T/";', b"T" * 4000),
            ('content:"Q"; pcre:"/(a|aa)+$/R"; content:"zz"; within:2;',
             (b"Q" + b"a" * 22 + b"!") * 60),
            # widened: the back-reference is read as any (a+)
            ('content:"<"; pcre:"/<(a+)>.*\\1b/";', b"<" + b"a" * 3000)):
        assert not match(opts, hostile)
    assert sigmatch.LIMITS["pcre_time_limit"] == before  # (no search ran out of time)
    assert match('content:"<"; pcre:"/<(a+)>.*\\1b/";', b"x<aa> y aab")
    assert not match('content:"<"; pcre:"/<(a+)>.*\\1b/";', b"x<aa> y ab")  # (the search)
    assert match('content:"T"; pcre:"/T.*?T.*?Y.*?P.*?R.*?O.*?M.*?P.*?T/";', b"xT TYPE PROMPT x")


# ----------------------------------------------- exhaustive reference check


def _reference(chain, data: bytes) -> bool:
    """Every placement of plain contents (offset/depth or distance/within)."""

    def occurrences(pat, start, end):
        start = max(start, 0)
        return [p for p in range(start, end - len(pat) + 1) if data[p : p + len(pat)] == pat]

    def go(k: int, ptr: int) -> bool:
        if k == len(chain):
            return True
        pat, rel, a, b = chain[k]
        if rel:
            start = ptr + a
            end = len(data) if b is None else min(len(data), start + b)
        else:
            start = a
            end = len(data) if b is None else min(len(data), a + b)
        return any(go(k + 1, p + len(pat)) for p in occurrences(pat, start, end))

    return go(0, 0)


@st.composite
def _chains(draw):
    chain = []
    for k in range(draw(st.integers(1, 4))):
        pat = draw(st.binary(min_size=1, max_size=2).map(lambda b: bytes(0x61 + x % 2 for x in b)))
        if k and draw(st.booleans()):
            distance = draw(st.integers(-6, 4))
            within = draw(st.none() | st.integers(len(pat), 6))
            chain.append((pat, True, distance, within))
        else:
            offset = draw(st.integers(0, 4))
            depth = draw(st.none() | st.integers(len(pat), 8))
            chain.append((pat, False, offset, depth))
    return chain


@settings(max_examples=400, deadline=None)
@given(_chains(), st.binary(max_size=14).map(lambda b: bytes(0x61 + x % 3 for x in b)))
def test_content_chains_match_exhaustive_reference(chain, data):
    elems = []
    for pat, rel, a, b in chain:
        if rel:
            elems.append(ContentMatch(pat, distance=a, within=b))
        else:
            elems.append(ContentMatch(pat, offset=a, depth=b))
    expected = _reference(chain, data)
    with mock.patch.object(sigmatch, "RECURSION_LIMIT", 10**9):
        assert run(elems, data) == expected, (chain, data)


@pytest.mark.parametrize(("options", "want"), [
    ('content:"STREAMMARK";', 9),
    ('content:"ab"; nocase;', 1),
    ('content:"STREAMMARK"; depth:20;', None),
    ('content:"STREAMMARK"; offset:3;', None),
    ('content:"STREAMMARK"; endswith;', None),
    ('content:!"STREAMMARK";', None),
    ('content:"A"; content:"B"; distance:0;', None),
    ('pcre:"/x+y/";', None),
])
def test_cross_span_only_for_one_unanchored_content(options, want):
    """The tail bytes a match across a chunk boundary can use: a content's
    length less one, only where one positive content anywhere is the whole
    buffer (the engine then looks for a new match with just that much)."""
    assert sigmatch.cross_span(compile_elements(elements(options))) == want


@pytest.mark.parametrize(("options", "want"), [
    ('content:"A"; content:"B"; distance:0;', True),
    ('content:"A"; content:"B"; distance:2; within:5;', True),
    ('content:"A"; content:"B";', True),
    ('content:"A"; depth:4; content:"B"; distance:0;', False),
    ('content:"A"; content:!"B"; distance:0;', False),
    ('content:"A"; pcre:"/B+/R";', False),
    ('content:"A"; isdataat:2,relative;', False),
    ('content:"A"; content:"B"; distance:-1;', False),
])
def test_suffix_monotone_shapes(options, want):
    """Where cutting the buffer's front can only take matches away: the
    engine then finds the shortest tail end that still matches across a
    chunk boundary by halving."""
    assert sigmatch.suffix_monotone(compile_elements(elements(options))) is want
