"""The rule tree: service nodes per protocol, content nodes, port selection."""

import pytest
from helpers import rules_from

from pakemon.detect import ruletree
from pakemon.detect.ruletree import RuleTree

FIG6 = """
FTP-exploit1                  tcp   *    21     |50 57 44 0A 2F 69|
SMTP-exploit3                 tcp   *    25     'mail from:|20 22 7c|'
SMTP-exploit11(CVE-1999-0204) tcp   113  25     '|0a|D/'
IIS-administrator.pwd         tcp   *    80     '/_vti_pvt/administrators.pwd'
CGI-phf(CVE-1999-0067)        tcp   *    80     "/cgi-bin/phf"
HTTP-ApacheDOS                tcp   *    80     |2f 2f 2f 2f 2f 2f 2f 2f|
RPC-portmap-request-rusers    udp   *    111    |01 86 A2 00 00|
BO-BackOrifice                udp   *    31337  *
ICMP-echo-large               icmp  8    0      <.{1000}>
"""


def test_rules_group_into_service_nodes_per_protocol():
    tree = RuleTree(rules_from(FIG6))
    labels = {p: [n.label for n in tree.nodes[p]] for p in tree.nodes}
    assert labels["tcp"] == ["TCP * 21", "TCP * 25", "TCP 113 25", "TCP * 80"]
    assert labels["udp"] == ["UDP * 111", "UDP * 31337"]
    assert labels["icmp"] == ["ICMP 8 0"]
    assert labels["ip"] == []
    http = tree.nodes["tcp"][3]
    assert [r.name for r in http.rules] == [
        "IIS-administrator.pwd", "CGI-phf(CVE-1999-0067)", "HTTP-ApacheDOS"]
    assert len(http.contents) == 3


def test_identical_patterns_share_one_content_node():
    tree = RuleTree(rules_from(
        "A tcp * 80 \"/cgi-bin/\" 'phf'\n"
        "B tcp * 80 \"/cgi-bin/\" 'test-cgi'\n"
        "C tcp * 80 'PHF'\n"))
    node = tree.nodes["tcp"][0]
    assert len(node.contents) == 3  # /cgi-bin/ once; 'phf' and 'PHF' fold together
    targets = sorted(t for cn in node.contents.values() for t in cn.targets)
    assert targets == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]


def test_port_index_selects_only_fitting_nodes():
    tree = RuleTree(rules_from(FIG6 + "HI tcp * 1024: 'x'\nLIST tcp :1023 8000,8080:8081 'y'\n"))
    assert [n.label for n in tree.lookup("tcp", 1032, 80)] == ["TCP * 80"]
    assert [n.label for n in tree.lookup("tcp", 113, 25)] == ["TCP * 25", "TCP 113 25"]
    assert [n.label for n in tree.lookup("tcp", 2000, 25)] == ["TCP * 25"]
    assert tree.lookup("tcp", 80, 1032)[0].label == "TCP * 1024:"
    assert [n.label for n in tree.lookup("tcp", 80, 8081)] == ["TCP * 1024:", "TCP :1023 8000,8080:8081"]
    assert [n.label for n in tree.lookup("tcp", 2000, 8081)] == ["TCP * 1024:"]
    assert tree.lookup("tcp", 1032, 443) == ()
    assert tree.lookup("udp", 5000, 53) == ()
    assert [n.label for n in tree.lookup("icmp", 8, 0)] == ["ICMP 8 0"]
    assert tree.lookup("icmp", 0, 0) == ()
    assert tree.lookup("icmp", 8, 1) == ()


def test_search_finds_case_folded_and_binary_patterns():
    tree = RuleTree(rules_from(FIG6))
    smtp = tree.nodes["tcp"][1]
    hits = list(smtp.search(b"MAIL FROM: \"|/bin/sh\""))
    assert [(r, b) for r, b, _ in hits] == [(0, 0)]
    assert list(smtp.search(b"mail from: <a@b>")) == []
    ftp = tree.nodes["tcp"][0]
    assert [e for _, _, e in ftp.search(b"xxPWD\n/ifoo")] == [7]


def test_case_insensitive_folds_ascii_only():
    tree = RuleTree(rules_from("A tcp * 80 'caf\xe9'\n"))
    node = tree.nodes["tcp"][0]
    assert list(node.search("CAF\xe9".encode()))  # ASCII letters fold
    assert not list(node.search("caf\xc9".encode()))  # é and É are not folded


def test_regex_patterns_search_bytes():
    tree = RuleTree(rules_from("R tcp * 21 <USER [^\\n]{20}>\n"))
    node = tree.nodes["tcp"][0]
    # bit 0: the regex; bit 1: "USER ", the literal it cannot match without
    # (its prefilter, found on its own in the second)
    assert {bit for _, bit, _ in node.search(b"USER " + b"A" * 30 + b"\n")} == {0, 1}
    assert {bit for _, bit, _ in node.search(b"USER anonymous\n")} == {1}
    assert {bit for _, bit, _ in node.search(b"PASS " + b"A" * 30 + b"\n")} == set()


@pytest.mark.parametrize("regex,want", [
    (rb"(?i)/count\.cgi\?[^\s]{300}", (b"/count.cgi?", True)),
    (rb"(?i)(user-agent: sioux\r?\n){100}", (b"user-agent: sioux", True)),
    (rb"/level/[0-9]+/exec/", (b"/level/", False)),
    (rb"(?i)recipient=[^&\s]*(;|%3b)", (b"recipient=", True)),
    (rb"(abc|xyz)def", (b"def", False)),  # an alternative is no requirement
    (rb"(abcdef)?xy", None),  # an optional part neither
    (rb"(?:wxyz){0,3}ab", None),
    (rb"a(?i:bcdef)", None),  # scoped flags: left alone
    (rb"[a-z]+", None),
])
def test_required_literal_of_a_regex(regex, want):
    import re

    from pakemon.detect.ruletree import required_literal

    assert required_literal(re.compile(regex)) == want


def test_a_rule_of_regexes_alone_alerts_as_before_with_its_prefilter():
    """The literal taken from a regex is a prefilter, not a condition: the
    rule alerts exactly where the regex matches, across segments too."""
    import re

    rx = rb"(?i)/level/[0-9]+/exec/"
    tree = RuleTree(rules_from("R tcp * 80 <" + rx.decode() + ">\n"))
    node = tree.nodes["tcp"][0]
    for text in (b"GET /LEVEL/15/exec/-", b"GET /level/x/exec/", b"/level/ then /exec/",
                 b"GET /level/99/EXEC/ HTTP/1.0"):
        bits = {bit for _, bit, _ in node.search(text)}
        assert (bits == {0, 1}) == bool(re.search(rx, text)), text


def test_source_port_nodes_are_indexed_by_source_port():
    tree = RuleTree(rules_from("NB tcp 12345 * \"NetBus\"\nWEB tcp * 80 'x'\nANY udp * * 'y'\n"))
    # the backdoor answers from 12345 to any client port
    assert [n.label for n in tree.lookup("tcp", 12345, 40000)] == ["TCP 12345 *"]
    assert [n.label for n in tree.lookup("tcp", 12345, 80)] == ["TCP * 80", "TCP 12345 *"]
    assert tree.lookup("tcp", 40000, 12345) == ()
    assert all(not t for t in tree.tcp_by_dport[81:])  # not spread over every port
    assert [n.label for n in tree.lookup("udp", 1, 2)] == ["UDP * *"]


# Regexes with what RegexStream must get right: alternatives that overlap,
# anchors, caseless classes, unbounded runs (the formmail rule's shape).
WINDOW_REGEXES = {  # regex: a match of it, planted in half the windows
    rb"(?i)recipient=[^&\s]*(;|%3b|%0a|\||%7c)": b"recipient=aa;",
    rb"ab|bcd": b"abcd",
    rb"(\A|\n)wiz\r?\n": b"\nwiz\n",
    rb"(?i)site\s+exec\s[^\r\n]*%[0-9.]*[dfnpsux]": b"SITE exec x%5d",
    rb"x[a-c]{3,5}y": b"xabcy",
    rb"(?i)/[^/\s]{3,}\.htr": b"/abc.HTR",
    rb"\x00[\x01\x02][^\x00]*\.\./": b"\x00\x01a../",
    rb"^ab": b"ab",
    rb"(?i)rcpt to:\s*<?\s*\"?\|": b"RCPT TO: <|",
}
WINDOW_BYTES = b"recipient=;%3b&| \n\rwizsitexc.0dfabyhtr/\x00\x01\x02.RCPTto:<\"|"


@pytest.mark.parametrize("seed", range(3))
def test_regex_stream_finds_the_first_match_end_across_chunks(seed):
    """A RegexStream (hyperscan) fed a stream in random chunks reports, at
    the chunk that completes it, the least end of a match in the whole
    stream: what a search by ``re`` of every start and end would find,
    however long the match."""
    import random
    import re

    from pakemon.detect.ruletree import RegexStream, hs_db

    if ruletree.hyperscan is None:
        pytest.skip("hyperscan is not installed")
    rng = random.Random(seed)
    matched = 0
    for src, sample in WINDOW_REGEXES.items():
        rx = re.compile(src, re.DOTALL)
        db = hs_db(rx)
        assert db is not None, src
        for _ in range(12):
            w = bytes(rng.choice(WINDOW_BYTES) for _ in range(rng.randint(0, 48)))
            if rng.random() < 0.5:
                w += sample + bytes(rng.choice(WINDOW_BYTES) for _ in range(rng.randint(0, 8)))
            ends = [e for e in range(len(w) + 1)
                    if any(rx.fullmatch(w, s, e) for s in range(e + 1))]
            want = ends[0] if ends else -1
            rs = RegexStream(db, 0)
            pos, got = 0, -1
            while pos < len(w):
                n = rng.randint(1, 9)
                rs.feed(w[pos:pos + n])
                pos += n
                if rs.hits and got < 0:
                    got = rs.hits[0]
                    assert got <= pos and got > pos - n  # at the chunk that ends it
            rs.close()
            assert got == want, (src, w)
            matched += want >= 0
    assert matched > 20  # (the planted matches are found)


@pytest.mark.parametrize("src", [rb"a{,3}", rb"abc\Z", rb"a\vb", rb"[:x]",
                                 rb"(?<=a)b", rb"(a)\1", rb"x*", rb"(?x) a b"])
def test_regexes_pcre_reads_otherwise_stay_on_re(src):
    """Syntax PCRE gives another meaning ({,n}, \\Z, \\v, POSIX classes) or
    hyperscan lacks (lookarounds, back-references, empty matches, verbose
    mode) keeps the regex on ``re``; an escaped backslash before Z does not."""
    import re

    from pakemon.detect.ruletree import hs_db

    if ruletree.hyperscan is None:
        pytest.skip("hyperscan is not installed")
    assert hs_db(re.compile(src, re.DOTALL)) is None
    assert hs_db(re.compile(rb"a\\Z", re.DOTALL)) is not None
