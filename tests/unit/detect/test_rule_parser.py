"""The native rule-file parser against ../shared/spec/rules.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pakemon.detect.rule_parser import (
    PROTOCOLS,
    PortSpecError,
    load_rules,
    parse_port_spec,
    parse_rules,
)
from pakemon.detect.rules import (
    ANY_PORT,
    Pattern,
    PatternKind,
    PortSpec,
    Rule,
    RuleError,
    RuleFileError,
)

BYTES = PatternKind.BYTES
NOCASE = PatternKind.NOCASE
REGEX = PatternKind.REGEX
ANY = PatternKind.ANY

FIGURE_6 = """\
# name                        proto src  dst    pattern
FTP-exploit1                  tcp   *    21     |50 57 44 0A 2F 69|
SMTP-exploit3                 tcp   *    25     'mail from:|20 22 7c|'
SMTP-exploit11(CVE-1999-0204) tcp   113  25     '|0a|D/'
DNS-named-exploit             tcp   *    53     |CD 80 E8 D7 FF FF FF|
IIS-administrator.pwd         tcp   *    80     '/_vti_pvt/administrators.pwd'
IIS-ISM.DLL-Exploit           tcp   *    80     "%20%20%20%20%20.htr"
CGI-phf(CVE-1999-0067)        tcp   *    80     "/cgi-bin/phf"
HTTP-ApacheDOS                tcp   *    80     |2f 2f 2f 2f 2f 2f 2f 2f|
RPC-portmap-request-rusers    udp   *    111    |01 86 A2 00 00|
IMAP-exploit2                 tcp   *    143    |E8 C0 FF FF FF|
BO-BackOrifice                udp   *    31337  *
ICMP-echo-large               icmp  8    0      <.{1000}>
"""

# A comment and a good rule ahead of the line under test, so error positions
# are checked on a line number other than 1.
PREAMBLE = '# test rules\nok tcp * 80 "ok"\n'


def port(n: int) -> PortSpec:
    return PortSpec(str(n), ((n, n),), False)


def parse_one(line: str) -> Rule:
    ruleset = parse_rules(line + "\n", "t.rules")
    assert len(ruleset.rules) == 1
    return ruleset.rules[0]


def only_pattern(line: str) -> Pattern:
    rule = parse_one(line)
    assert len(rule.patterns) == 1
    return rule.patterns[0]


def error_of(line: str) -> str:
    with pytest.raises(RuleFileError) as info:
        parse_rules(PREAMBLE + line + "\n", "t.rules")
    assert len(info.value.errors) == 1
    return str(info.value.errors[0])


def regex_error(source: bytes) -> str:
    try:
        re.compile(source, re.DOTALL)
    except re.error as e:
        return str(e)
    raise AssertionError(f"{source!r} compiles")


# -- Figure 6 -----------------------------------------------------------------


def test_figure_6_parses_to_twelve_rules_with_their_values():
    ruleset = parse_rules(FIGURE_6, "fig6.rules")
    assert ruleset.skipped == []
    got = [
        (r.line, r.name, r.proto, r.src, r.dst, [(p.kind, p.value) for p in r.patterns])
        for r in ruleset.rules
    ]
    assert got == [
        (2, "FTP-exploit1", "tcp", ANY_PORT, port(21), [(BYTES, b"PWD\n/i")]),
        (3, "SMTP-exploit3", "tcp", ANY_PORT, port(25), [(NOCASE, b'mail from: "|')]),
        (4, "SMTP-exploit11(CVE-1999-0204)", "tcp", port(113), port(25), [(NOCASE, b"\nD/")]),
        (5, "DNS-named-exploit", "tcp", ANY_PORT, port(53),
         [(BYTES, b"\xcd\x80\xe8\xd7\xff\xff\xff")]),
        (6, "IIS-administrator.pwd", "tcp", ANY_PORT, port(80),
         [(NOCASE, b"/_vti_pvt/administrators.pwd")]),
        (7, "IIS-ISM.DLL-Exploit", "tcp", ANY_PORT, port(80), [(BYTES, b"%20%20%20%20%20.htr")]),
        (8, "CGI-phf(CVE-1999-0067)", "tcp", ANY_PORT, port(80), [(BYTES, b"/cgi-bin/phf")]),
        (9, "HTTP-ApacheDOS", "tcp", ANY_PORT, port(80), [(BYTES, b"////////")]),
        (10, "RPC-portmap-request-rusers", "udp", ANY_PORT, port(111),
         [(BYTES, b"\x01\x86\xa2\x00\x00")]),
        (11, "IMAP-exploit2", "tcp", ANY_PORT, port(143), [(BYTES, b"\xe8\xc0\xff\xff\xff")]),
        (12, "BO-BackOrifice", "udp", ANY_PORT, port(31337), [(ANY, b"")]),
        (13, "ICMP-echo-large", "icmp", port(8), port(0), [(REGEX, b".{1000}")]),
    ]
    assert all(r.file == "fig6.rules" for r in ruleset.rules)


def test_figure_6_patterns_keep_text_and_column_as_written():
    rules = parse_rules(FIGURE_6).rules
    assert [r.patterns[0].column for r in rules] == [49] * 12
    assert rules[1].patterns[0].text == "'mail from:|20 22 7c|'"
    assert rules[10].patterns[0] == Pattern(ANY, b"", text="*", column=49)
    regex = rules[11].patterns[0]
    assert regex.text == "<.{1000}>"
    assert regex.regex.pattern == b".{1000}" and regex.regex.flags & re.DOTALL


def test_figure_6_in_the_spec_file_matches_the_copy_here():
    spec = Path(__file__).resolve().parents[4] / "shared" / "spec" / "rules.md"
    if not spec.exists():
        pytest.skip("shared spec not present")
    block = spec.read_text().split("```")[-2].lstrip("\n")
    assert block == FIGURE_6


# -- patterns -----------------------------------------------------------------


def test_double_quoted_pattern_is_case_sensitive_bytes():
    assert only_pattern('r tcp * 80 "/cgi-bin/PHF"') == Pattern(
        BYTES, b"/cgi-bin/PHF", text='"/cgi-bin/PHF"', column=12
    )


def test_single_quoted_pattern_is_nocase_and_keeps_the_bytes_as_written():
    assert only_pattern("r tcp * 80 'MaIl FrOm:'") == Pattern(
        NOCASE, b"MaIl FrOm:", text="'MaIl FrOm:'", column=12
    )


@pytest.mark.parametrize(
    "written",
    ["|2f 63 67|", "|2f6367|", "|2F 63 67|", "|2f\t63  67|", "| 2f 63 67 |", "|2f63 67|"],
)
def test_binary_pattern_spaces_between_pairs_and_hex_case_do_not_matter(written):
    assert only_pattern(f"r tcp * 80 {written}") == Pattern(
        BYTES, b"/cg", text=written, column=12
    )


def test_quoted_pattern_embeds_binary_section():
    pattern = only_pattern("r tcp * 25 'mail from:|20 22 7c|'")
    assert pattern.kind is NOCASE
    assert pattern.value == b'mail from: "|'


def test_quoted_pattern_with_several_binary_sections():
    pattern = only_pattern('r tcp * 80 "|00|a|0d0a|b|ff|"')
    assert pattern.value == b"\x00a\r\nb\xff"


@pytest.mark.parametrize(
    "escaped, char",
    [(r"\"", '"'), (r"\'", "'"), (r"\\", "\\"), (r"\|", "|")],
)
@pytest.mark.parametrize("quote", ['"', "'"])
def test_quoted_escape_stands_for_the_character_itself(quote, escaped, char):
    pattern = only_pattern(f"r tcp * 80 {quote}a{escaped}b{quote}")
    assert pattern.value == f"a{char}b".encode()


def test_escaped_pipe_is_not_a_binary_section():
    assert only_pattern(r'r tcp * 80 "a\|0a\|"').value == b"a|0a|"


def test_other_quote_kind_needs_no_escape():
    assert only_pattern("r tcp * 80 \"it's\"").value == b"it's"
    assert only_pattern("r tcp * 80 'say \"hi\"'").value == b'say "hi"'


@pytest.mark.parametrize(
    "written, value",
    [
        (r'"\x41"', b"\\x41"),
        (r'"C:\WINNT"', b"C:\\WINNT"),
        (r'"a\n"', b"a\\n"),
        (r'"\\x41"', b"\\x41"),
        (r'"a\\"', b"a\\"),
    ],
)
def test_unknown_backslash_escape_keeps_the_backslash(written, value):
    assert only_pattern(f"r tcp * 80 {written}").value == value


def test_unknown_backslash_escape_before_a_binary_section():
    assert only_pattern(r'r tcp * 80 "a\z|0a|"').value == b"a\\z\n"


def test_spaces_inside_patterns_belong_to_the_pattern():
    rule = parse_one("r tcp * 80 \"GET / HTTP\"  'a b'\t|0d 0a|  <x y>")
    assert [p.value for p in rule.patterns] == [b"GET / HTTP", b"a b", b"\r\n", b"x y"]
    assert [p.column for p in rule.patterns] == [12, 26, 32, 41]
    assert [p.text for p in rule.patterns] == ['"GET / HTTP"', "'a b'", "|0d 0a|", "<x y>"]


def test_non_ascii_quoted_text_is_utf8():
    assert only_pattern('r tcp * 80 "café"').value == "café".encode()
    assert only_pattern("r tcp * 80 'ΑΒΓ'").value == "ΑΒΓ".encode()


def test_regex_pattern_compiles_over_bytes_with_dotall():
    pattern = only_pattern(r"r tcp * 80 <GET /[a-z]+\.cgi.*HTTP>")
    assert pattern.kind is REGEX
    assert pattern.value == rb"GET /[a-z]+\.cgi.*HTTP"
    assert pattern.regex == re.compile(rb"GET /[a-z]+\.cgi.*HTTP", re.DOTALL)
    assert pattern.regex.search(b"GET /phf.cgi\nHTTP")


def test_regex_escaped_greater_than_is_a_literal_greater_than():
    pattern = only_pattern(r"r tcp * 80 <a\>b>")
    assert pattern.value == b"a>b"
    assert pattern.text == r"<a\>b>"
    assert pattern.regex.search(b"xa>by")


def test_regex_other_backslash_pairs_pass_to_re_unchanged():
    pattern = only_pattern(r"r tcp * 80 <\d+\\>")
    assert pattern.value == rb"\d+\\"
    assert pattern.regex.search(b"42\\")


def test_regex_non_ascii_is_utf8():
    assert only_pattern("r tcp * 80 <é+>").value == "é+".encode()


def test_star_pattern_is_any_payload():
    assert only_pattern("r udp * 31337 *") == Pattern(ANY, b"", text="*", column=15)


def test_several_patterns_are_all_kept_in_order():
    rule = parse_one("r tcp * 80 \"USER\" 'pass' |00| <x+>")
    assert [(p.kind, p.value) for p in rule.patterns] == [
        (BYTES, b"USER"),
        (NOCASE, b"pass"),
        (BYTES, b"\x00"),
        (REGEX, b"x+"),
    ]


# -- fields -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, ranges",
    [
        ("80", ((80, 80),)),
        ("0", ((0, 0),)),
        ("65535", ((65535, 65535),)),
        ("080", ((80, 80),)),
        ("1024:65535", ((1024, 65535),)),
        (":1023", ((0, 1023),)),
        ("6000:", ((6000, 65535),)),
        ("80:80", ((80, 80),)),
        ("80,8080,8000:8010", ((80, 80), (8080, 8080), (8000, 8010))),
        (":10,20:", ((0, 10), (20, 65535))),
    ],
)
def test_port_spec_forms(text, ranges):
    spec = PortSpec(text, ranges, False)
    assert parse_port_spec(text) == spec
    rule = parse_one(f"r tcp {text} {text} *")
    assert rule.src == spec and rule.dst == spec


def test_star_port_is_any():
    assert parse_port_spec("*") == ANY_PORT
    assert 12345 in parse_one("r tcp * * *").src


def test_port_list_membership():
    spec = parse_port_spec("80,8000:8010,:22")
    assert [p in spec for p in (0, 22, 23, 80, 81, 7999, 8000, 8010, 8011)] == [
        True, True, False, True, False, False, True, True, False,
    ]


def test_icmp_src_is_type_and_dst_is_code():
    rule = parse_one("r icmp 3 0:4,13 *")
    assert rule.proto == "icmp"
    assert rule.src == PortSpec("3", ((3, 3),), False)
    assert rule.dst == PortSpec("0:4,13", ((0, 4), (13, 13)), False)


def test_icmp_open_ranges_end_at_255():
    rule = parse_one("r icmp 250: :255 *")
    assert rule.src.ranges == ((250, 255),)
    assert rule.dst.ranges == ((0, 255),)


def test_ip_rule_takes_star_ports():
    rule = parse_one('r ip * * "x"')
    assert (rule.proto, rule.src, rule.dst) == ("ip", ANY_PORT, ANY_PORT)


@pytest.mark.parametrize(
    "written, proto",
    [("TCP", "tcp"), ("Udp", "udp"), ("ICMP", "icmp"), ("iP", "ip"), ("tCp", "tcp")],
)
def test_proto_is_case_insensitive_and_stored_lower_case(written, proto):
    assert parse_one(f"r {written} * * *").proto == proto


def test_name_is_any_run_of_non_blank_characters():
    for name in ["CGI-phf(CVE-1999-0067)", '"quoted"', "|x|", "a#b", "日本", "a\u00a0b"]:
        assert parse_one(f"{name} tcp * 80 *").name == name


def test_fields_may_be_separated_by_tabs_and_runs_of_blanks():
    rule = parse_one('  \tr\t\ttcp \t*\t80\t"x"\t ')
    assert (rule.name, rule.proto, rule.dst, rule.patterns[0].column) == (
        "r", "tcp", port(80), 17,
    )


def test_rule_records_file_and_line():
    rules = parse_rules('\n\n# c\na tcp * 80 *\n\nb udp * 53 *\n', "x/y.rules").rules
    assert [(r.name, r.file, r.line) for r in rules] == [
        ("a", "x/y.rules", 4),
        ("b", "x/y.rules", 6),
    ]
    assert parse_rules("a tcp * 80 *").rules[0].file == "<string>"


def test_comments_and_blank_lines_are_ignored():
    text = "# top\n   # indented\n\t#tab\n\n   \n\t\na tcp * 80 *\n#a tcp * 80 *\n"
    ruleset = parse_rules(text)
    assert [r.name for r in ruleset.rules] == ["a"]
    assert ruleset.skipped == []


def test_empty_file_has_no_rules():
    assert parse_rules("").rules == []
    assert parse_rules("\n\n# only comments\n").rules == []


def test_crlf_line_endings():
    text = FIGURE_6.replace("\n", "\r\n")
    assert parse_rules(text, "fig6.rules") == parse_rules(FIGURE_6, "fig6.rules")
    rule = parse_one('r tcp * 80 "x"\r')
    assert rule.patterns[0].value == b"x"


def test_crlf_errors_have_the_same_columns():
    with pytest.raises(RuleFileError) as info:
        parse_rules('ok tcp * 80 *\r\nr tcp * 80\r\n', "t.rules")
    assert [str(e) for e in info.value.errors] == [
        "t.rules:2:11: expected NAME PROTO SRC DST PATTERN...: missing pattern"
    ]


def test_byte_order_mark_is_not_part_of_the_first_name():
    assert parse_rules("\ufeffa tcp * 80 *").rules[0].name == "a"


# -- errors -------------------------------------------------------------------

# Every line below starts "r tcp * 80 " where it can: NAME is column 1, PROTO
# 3, SRC 7, DST 9 and the first pattern 12.
BIG = "1" + "0" * 30
GARBLED = (
    "unexpected {!r} after {!r} ending the pattern: expected whitespace or the end of the line"
)
EMPTY = "an empty pattern would match every payload; use * for that"
PIPE_HINT = "close the section with '|', or write \\| for a literal '|'"
PATTERN_FORMS = "\"text\", 'text', |hex|, <regex> or *"
PORT_FORMS = "'*', N, LO:HI, :HI, LO: or a comma list of those"
MISSING = "expected NAME PROTO SRC DST PATTERN...: missing "

ERROR_CASES = [
    # PROTO
    ('r tcpx * 80 "a"', 3, "unknown protocol 'tcpx': expected tcp, udp, icmp or ip"),
    ('r ＴＣＰ * 80 "a"', 3, "unknown protocol 'ＴＣＰ': expected tcp, udp, icmp or ip"),
    ('r\ttcpx * 80 "a"', 3, "unknown protocol 'tcpx': expected tcp, udp, icmp or ip"),
    # missing fields: the column is just past the line's last character
    ("r", 2, MISSING + "PROTO"),
    ("r  \t ", 2, MISSING + "PROTO"),
    ("r tcp", 6, MISSING + "SRC"),
    ("r tcp *", 8, MISSING + "DST"),
    ("r tcp * 80", 11, MISSING + "pattern"),
    ("r tcp * 80  \t", 11, MISSING + "pattern"),
    # ports
    ('r tcp * 70000 "a"', 9, "port 70000 out of range 0-65535"),
    ('r tcp 65536 80 "a"', 7, "port 65536 out of range 0-65535"),
    ('r tcp * 80,99999 "a"', 12, "port 99999 out of range 0-65535"),
    ('r tcp * 1024:70000 "a"', 14, "port 70000 out of range 0-65535"),
    (f'r tcp * {BIG} "a"', 9, "port 10000000000000000000... out of range 0-65535"),
    ('r tcp * http "a"', 9, f"invalid port 'http': expected {PORT_FORMS}"),
    ('r tcp * -1 "a"', 9, f"invalid port '-1': expected {PORT_FORMS}"),
    ('r tcp * 80,8x "a"', 12, f"invalid port '8x': expected {PORT_FORMS}"),
    ('r tcp * 1:2:3 "a"', 9, f"invalid port '1:2:3': expected {PORT_FORMS}"),
    ('r tcp * : "a"', 9, f"invalid port ':': expected {PORT_FORMS}"),
    ('r tcp * ** "a"', 9, f"invalid port '**': expected {PORT_FORMS}"),
    ('r tcp * ８０ "a"', 9, f"invalid port '８０': expected {PORT_FORMS}"),
    ('r tcp * 90:80 "a"', 9, "empty port range 90:80: 90 is above 80"),
    ('r tcp * 80,,81 "a"', 12, "empty item in port list '80,,81'"),
    ('r tcp * 80, "a"', 12, "empty item in port list '80,'"),
    ('r tcp * ,80 "a"', 9, "empty item in port list ',80'"),
    ('r tcp * 80,* "a"', 12, "'*' cannot be part of a port list"),
    # ICMP type and code
    ("r icmp 256 0 *", 8, "ICMP type 256 out of range 0-255"),
    ("r icmp 8 300 *", 10, "ICMP code 300 out of range 0-255"),
    ("r icmp 8 0:256 *", 12, "ICMP code 256 out of range 0-255"),
    ("r icmp 9:8 0 *", 8, "empty ICMP type range 9:8: 9 is above 8"),
    ("r icmp x 0 *", 8, "invalid ICMP type 'x': expected " + PORT_FORMS),
    # ip
    ('r ip 80 * "a"', 6, "for ip rules SRC and DST must be '*', not '80'"),
    ('r ip * 1:2 "a"', 8, "for ip rules SRC and DST must be '*', not '1:2'"),
    # binary patterns
    ("r tcp * 80 |2f 6 67|", 16, "odd number of hex digits in binary pattern"),
    ("r tcp * 80 |2f636|", 13, "odd number of hex digits in binary pattern"),
    ("r tcp * 80 |2f6 367|", 13, "odd number of hex digits in binary pattern"),
    ('r tcp * 80 "ab|0a 0|"', 19, "odd number of hex digits in binary pattern"),
    ("r tcp * 80 |2g|", 14, "invalid hex digit 'g' in binary pattern"),
    ("r tcp * 80 |0x41|", 14, "invalid hex digit 'x' in binary pattern"),
    ('r tcp * 80 "a|0a"', 17, f"invalid hex digit '\"' in binary pattern ({PIPE_HINT})"),
    ("r tcp * 80 |2f 63", 12, "unterminated |...| binary pattern"),
    ('r tcp * 80 "a|0a', 14, "unterminated |...| section in quoted pattern"),
    ("r tcp * 80 ||", 12, f"empty pattern ||: {EMPTY}"),
    ("r tcp * 80 |  |", 12, f"empty pattern |  |: {EMPTY}"),
    ('r tcp * 80 "a||b"', 14, f"empty |...| section in quoted pattern ({PIPE_HINT})"),
    # quoted patterns
    ('r tcp * 80 "abc', 12, 'unterminated "..." pattern'),
    ("r tcp * 80 'abc", 12, "unterminated '...' pattern"),
    ('r tcp * 80 "abc\\"', 12, 'unterminated "..." pattern'),
    ("r tcp * 80 'abc\\", 12, "unterminated '...' pattern"),
    ('r tcp * 80 "a" "b', 16, 'unterminated "..." pattern'),
    ('r tcp * 80 ""', 12, f'empty pattern "": {EMPTY}'),
    ("r tcp * 80 ''", 12, f"empty pattern '': {EMPTY}"),
    # regex patterns
    ("r tcp * 80 <abc", 12, "unterminated <regex>"),
    ("r tcp * 80 <abc\\>", 12, "unterminated <regex>"),
    ("r tcp * 80 <(>", 12, "regex does not compile: " + regex_error(b"(")),
    ("r tcp * 80 <a{2,1}>", 12, "regex does not compile: " + regex_error(b"a{2,1}")),
    ("r tcp * 80 <(?u)a>", 12, "regex does not compile: " + regex_error(b"(?u)a")),
    ("r tcp * 80 <\\u0041>", 12, "regex does not compile: " + regex_error(b"\\u0041")),
    (
        "r tcp * 80 <a{99999999999999999999}>",
        12,
        "regex does not compile: the repetition number is too large",
    ),
    ("r tcp * 80 <>", 12, f"empty pattern <>: {EMPTY}"),
    # what follows a pattern
    ('r tcp * 80 "abc"def', 17, GARBLED.format("d", '"')),
    ("r tcp * 80 'abc'def", 17, GARBLED.format("d", "'")),
    ('r tcp * 80 "a""b"', 15, GARBLED.format('"', '"')),
    ("r tcp * 80 |0a|x", 16, GARBLED.format("x", "|")),
    ("r tcp * 80 <a>b", 15, GARBLED.format("b", ">")),
    ("r tcp * 80 *x", 13, GARBLED.format("x", "*")),
    ("r tcp * 80 **", 13, GARBLED.format("*", "*")),
    (
        'r tcp * 80 "a" # note',
        16,
        f"unexpected '#': expected a pattern ({PATTERN_FORMS}); "
        "a comment must be on a line of its own",
    ),
    ("r tcp * 80 abc", 12, f"unexpected 'a': expected a pattern ({PATTERN_FORMS})"),
    ("r tcp * 80 >a<", 12, f"unexpected '>': expected a pattern ({PATTERN_FORMS})"),
    ('r tcp * 80 * "a"', 12, "'*' (any payload) cannot be combined with other patterns"),
    ('r tcp * 80 "a" *', 16, "'*' (any payload) cannot be combined with other patterns"),
    # text that is not valid Unicode (undecodable bytes via surrogateescape)
    ('r tcp * 80 "\udc80"', 13, "invalid UTF-8 byte 0x80: rule files must be UTF-8"),
    ('r\udcff tcp * 80 "a"', 2, "invalid UTF-8 byte 0xff: rule files must be UTF-8"),
    ('r tcp * 80 "\ud800"', 13, "invalid character U+D800 (a lone surrogate)"),
]


@pytest.mark.parametrize(
    "line, column, message", ERROR_CASES, ids=[repr(case[0])[:40] for case in ERROR_CASES]
)
def test_error_is_reported_at_file_line_column(line, column, message):
    assert error_of(line) == f"t.rules:3:{column}: {message}"


def test_regex_nested_too_deep_is_a_compile_error_not_a_crash():
    line = "r tcp * 80 <" + "(" * 5000 + "a" + ")" * 5000 + ">"
    assert error_of(line).startswith("t.rules:3:12: regex does not compile: ")


def test_error_str_is_file_line_column_message():
    error = RuleError("a.rules", 7, 3, "boom")
    assert str(error) == "a.rules:7:3: boom"


def test_all_errors_of_a_file_are_reported_together():
    text = (
        "good1 tcp * 80 *\n"
        'bad1 tcpx * 80 "a"\n'
        "# comment\n"
        'bad2 tcp * 99999 "a"\n'
        "good2 udp * 53 *\n"
        "bad3 tcp * 80 |abc|\n"
    )
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, "m.rules")
    messages = [str(e) for e in info.value.errors]
    assert messages == [
        "m.rules:2:6: unknown protocol 'tcpx': expected tcp, udp, icmp or ip",
        "m.rules:4:12: port 99999 out of range 0-65535",
        "m.rules:6:16: odd number of hex digits in binary pattern",
    ]
    assert str(info.value) == "\n".join(messages)


def test_skip_bad_returns_the_good_rules_and_each_skipped_one():
    text = (
        "good1 tcp * 80 *\n"
        'bad1 tcpx * 80 "a"\n'
        'bad2 tcp * 99999 "a"\n'
        "good2 udp * 53 *\n"
        'good1 tcp * 81 "dup"\n'
    )
    ruleset = parse_rules(text, "s.rules", skip_bad=True)
    assert [(r.name, r.line) for r in ruleset.rules] == [("good1", 1), ("good2", 4)]
    assert ruleset.rules[0].dst == port(80)
    assert [str(e) for e in ruleset.skipped] == [
        "s.rules:2:6: unknown protocol 'tcpx': expected tcp, udp, icmp or ip",
        "s.rules:3:12: port 99999 out of range 0-65535",
        "s.rules:5:1: duplicate rule name 'good1' (first defined at line 1)",
    ]


def test_skip_bad_without_errors_skips_nothing():
    assert parse_rules(FIGURE_6, skip_bad=True).skipped == []


def test_duplicate_name_is_reported_on_each_later_occurrence():
    text = "a tcp * 80 *\nb tcp * 80 *\n  a udp * 53 *\n\ta icmp 8 0 *\n"
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, "d.rules")
    assert [str(e) for e in info.value.errors] == [
        "d.rules:3:3: duplicate rule name 'a' (first defined at line 1)",
        "d.rules:4:2: duplicate rule name 'a' (first defined at line 1)",
    ]


def test_duplicate_names_are_case_sensitive():
    assert len(parse_rules("a tcp * 80 *\nA tcp * 80 *\n").rules) == 2


def test_name_of_a_bad_rule_does_not_make_a_later_rule_a_duplicate():
    ruleset = parse_rules('a tcpx * 80 *\na tcp * 80 *\n', skip_bad=True)
    assert [(r.name, r.line) for r in ruleset.rules] == [("a", 2)]
    assert len(ruleset.skipped) == 1


def test_parse_port_spec_error_carries_the_offset_of_the_bad_item():
    with pytest.raises(PortSpecError) as info:
        parse_port_spec("80,8000:9000,70000")
    assert (info.value.offset, info.value.message) == (13, "port 70000 out of range 0-65535")
    with pytest.raises(PortSpecError) as info:
        parse_port_spec("1:300", "ICMP code", 255)
    assert (info.value.offset, info.value.message) == (2, "ICMP code 300 out of range 0-255")


# -- load_rules ---------------------------------------------------------------


def test_load_rules_reads_a_file_and_names_it_in_rules(tmp_path):
    path = tmp_path / "fig6.rules"
    path.write_text(FIGURE_6)
    ruleset = load_rules(path)
    assert len(ruleset.rules) == 12
    assert {r.file for r in ruleset.rules} == {str(path)}
    assert load_rules(str(path)).rules == ruleset.rules


def test_load_rules_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.rules"
    path.write_text('a tcp * 80 *\nb tcp * 80 "x\n')
    with pytest.raises(RuleFileError) as info:
        load_rules(path)
    assert [str(e) for e in info.value.errors] == [
        f'{path}:2:12: unterminated "..." pattern'
    ]
    assert [r.name for r in load_rules(path, skip_bad=True).rules] == ["a"]


def test_load_rules_reports_invalid_utf8_at_its_line_and_column(tmp_path):
    path = tmp_path / "latin1.rules"
    path.write_bytes('a tcp * 80 *\nb tcp * 80 "caf\xe9"\nc tcp * 80 *\n'.encode("latin-1"))
    with pytest.raises(RuleFileError) as info:
        load_rules(path)
    assert [str(e) for e in info.value.errors] == [
        f"{path}:2:16: invalid UTF-8 byte 0xe9: rule files must be UTF-8"
    ]
    ruleset = load_rules(path, skip_bad=True)
    assert [r.name for r in ruleset.rules] == ["a", "c"]


def test_load_rules_columns_count_characters_not_bytes(tmp_path):
    path = tmp_path / "utf8.rules"
    path.write_bytes('é tcp * 80 "ü\xff"\n'.encode("utf-8").replace(b"\xc3\xbf", b"\xff"))
    with pytest.raises(RuleFileError) as info:
        load_rules(path)
    assert str(info.value.errors[0]) == (
        f"{path}:1:14: invalid UTF-8 byte 0xff: rule files must be UTF-8"
    )


def test_load_rules_ignores_invalid_utf8_in_comments(tmp_path):
    path = tmp_path / "comment.rules"
    path.write_bytes(b"# r\xe9gles de 2001\na tcp * 80 'caf\xc3\xa9'\n")
    assert load_rules(path).rules[0].patterns[0].value == "café".encode()


def test_load_rules_accepts_a_byte_order_mark_and_crlf(tmp_path):
    path = tmp_path / "bom.rules"
    path.write_bytes(b"\xef\xbb\xbfa tcp * 80 *\r\nb udp * 53 *\r\n")
    assert [r.name for r in load_rules(path).rules] == ["a", "b"]


def test_load_rules_missing_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        load_rules(tmp_path / "nope.rules")


# -- properties ---------------------------------------------------------------

_BLANK = " \t\r\f\v"


def assert_total(text: str) -> None:
    """parse_rules raises only RuleFileError, and with skip_bad accounts for
    every rule line exactly once, as a rule or as an error inside the line."""
    try:
        strict = parse_rules(text, "fuzz.rules")
    except RuleFileError as e:
        strict_errors = e.errors
        assert strict_errors
    else:
        strict_errors = []
    lenient = parse_rules(text, "fuzz.rules", skip_bad=True)
    assert lenient.skipped == strict_errors
    if not strict_errors:
        assert lenient.rules == strict.rules

    lines = text.removeprefix("\ufeff").split("\n")
    lines = [line.removesuffix("\r") for line in lines]
    rule_lines = [
        n for n, line in enumerate(lines, 1)
        if line.lstrip(_BLANK) and not line.lstrip(_BLANK).startswith("#")
    ]
    seen = sorted([r.line for r in lenient.rules] + [e.line for e in lenient.skipped])
    assert seen == rule_lines
    for error in lenient.skipped:
        assert error.file == "fuzz.rules"
        assert error.column >= 1 and error.column <= len(lines[error.line - 1]) + 1
        assert error.message


# Random regex sources can trip re's FutureWarning ("possible nested set");
# a warning is not what these tests look for.
fuzz_settings = settings(max_examples=200, deadline=None)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@fuzz_settings
@given(st.text(alphabet=st.characters(exclude_categories=())))
def test_random_text_raises_nothing_but_rule_file_error(text):
    assert_total(text)


_FRAGMENTS = [
    '"', "'", "|", "<", ">", "\\", "*", "#", ":", ",", " ", "\t", "\r", "\n",
    "0a", "2f 6", "FF", "zz", "tcp", "UDP", "icmp", "ip", "80", "65536", "1:2",
    "é", "\udc80", "\ufeff", "(", ")", "[", "{9999999999}", ".{3}", "(?u)", "\\>",
]
rule_like_fragment = st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=3))
rule_like_line = st.tuples(
    st.sampled_from(["", "r tcp * 80 ", "r icmp 8 0 ", "r ip * * ", "r udp :1,2: 3 ", "r "]),
    st.lists(rule_like_fragment, max_size=15).map("".join),
).map("".join)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@fuzz_settings
@given(st.lists(rule_like_line, max_size=8).map("\n".join))
def test_random_rule_like_lines_raise_nothing_but_rule_file_error(text):
    assert_total(text)


# A strategy for valid rules: each draw yields the line as written and the
# Rule the parser must produce from it.

separators = st.text(alphabet=" \t", min_size=1, max_size=3)
names = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=16,
).filter(lambda s: not s.startswith(("#", "\ufeff")))


@st.composite
def port_item(draw, maximum):
    a = draw(st.integers(0, maximum))
    b = draw(st.integers(0, maximum))
    lo, hi = min(a, b), max(a, b)
    form = draw(st.sampled_from(["single", "range", "open-low", "open-high"]))
    if form == "single":
        return str(a), (a, a)
    if form == "range":
        return f"{lo}:{hi}", (lo, hi)
    if form == "open-low":
        return f":{hi}", (0, hi)
    return f"{lo}:", (lo, maximum)


@st.composite
def port_spec(draw, maximum):
    if draw(st.integers(0, 3)) == 0:
        return "*", ANY_PORT
    items = draw(st.lists(port_item(maximum), min_size=1, max_size=4))
    text = ",".join(t for t, _ in items)
    return text, PortSpec(text, tuple(r for _, r in items), False)


@st.composite
def hex_text(draw, data: bytes) -> str:
    pairs = [f"{b:02x}" for b in data]
    pairs = [p.upper() if draw(st.booleans()) else p for p in pairs]
    seps = draw(st.lists(st.sampled_from(["", " ", "  ", "\t"]), min_size=len(pairs),
                         max_size=len(pairs)))
    return "|" + "".join(s + p for s, p in zip(seps, pairs)) + "|"


quoted_chars = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\n"),
    min_size=1,
    max_size=8,
)


@st.composite
def quoted_pattern(draw):
    quote = draw(st.sampled_from(['"', "'"]))
    segments = draw(st.lists(st.one_of(quoted_chars, st.binary(min_size=1, max_size=4)),
                             min_size=1, max_size=4))
    written, value = [], b""
    for segment in segments:
        if isinstance(segment, bytes):
            written.append(draw(hex_text(segment)))
            value += segment
        else:
            written.append("".join("\\" + c if c in "\"'\\|" else c for c in segment))
            value += segment.encode()
    kind = BYTES if quote == '"' else NOCASE
    return quote + "".join(written) + quote, kind, value, None


@st.composite
def binary_pattern(draw):
    value = draw(st.binary(min_size=1, max_size=12))
    return draw(hex_text(value)), BYTES, value, None


REGEX_PIECES = [".", "a", "b+", "[0-9]", ">", r"\d", "(x|y)", ".{3}", "\\\\", " ", "é", "|"]


@st.composite
def regex_pattern(draw):
    pieces = draw(st.lists(st.sampled_from(REGEX_PIECES), min_size=1, max_size=6))
    written = "<" + "".join(p.replace(">", "\\>") for p in pieces) + ">"
    value = "".join(pieces).encode()
    return written, REGEX, value, re.compile(value, re.DOTALL)


payload_pattern = st.one_of(quoted_pattern(), binary_pattern(), regex_pattern())


@st.composite
def rule_line(draw, lineno):
    name = draw(names)
    proto = draw(st.sampled_from(PROTOCOLS))
    written_proto = "".join(c.upper() if draw(st.booleans()) else c for c in proto)
    if proto == "ip":
        (src_text, src), (dst_text, dst) = ("*", ANY_PORT), ("*", ANY_PORT)
    else:
        maximum = 255 if proto == "icmp" else 65535
        src_text, src = draw(port_spec(maximum))
        dst_text, dst = draw(port_spec(maximum))
    if draw(st.integers(0, 5)) == 0:
        drawn = [("*", ANY, b"", None)]
    else:
        drawn = draw(st.lists(payload_pattern, min_size=1, max_size=4))

    line = draw(st.sampled_from(["", " ", "\t"])) + name
    for field in (written_proto, src_text, dst_text):
        line += draw(separators) + field
    patterns = []
    for written, kind, value, regex in drawn:
        line += draw(separators)
        patterns.append(Pattern(kind, value, regex=regex, text=written, column=len(line) + 1))
        line += written
    line += draw(st.sampled_from(["", " ", "\t "]))
    rule = Rule(name, proto, src, dst, tuple(patterns), file="gen.rules", line=lineno)
    return line, rule


@st.composite
def rule_file(draw):
    """Unique-named rules among blank and comment lines, with LF or CRLF."""
    lines, expected, names_seen = [], [], set()
    for _ in range(draw(st.integers(1, 5))):
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(st.sampled_from(["", "  ", "# comment", "\t# x \"unterminated"])))
        line, rule = draw(rule_line(len(lines) + 1))
        if rule.name in names_seen:
            continue
        names_seen.add(rule.name)
        lines.append(line)
        expected.append(rule)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + newline, expected


@fuzz_settings
@given(rule_file())
def test_generated_valid_rules_parse_to_the_expected_rules(case):
    text, expected = case
    ruleset = parse_rules(text, "gen.rules")
    assert ruleset.skipped == []
    assert ruleset.rules == expected
