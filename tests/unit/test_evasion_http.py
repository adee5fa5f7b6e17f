"""Offline checks of Figure 9's HTTP evasion generator (bench/evaluate/evasion_http.py).

The live run is only meaningful if the traffic is right: every evaded
request must still be the attack for its target server (normalized the way
that server reads it, it equals the plain attack's target), the requests
must parse as HTTP the way the sensor's parser reads them, every attack must
alert when sent plainly, and the benign twins sent through every technique
must stay quiet. Also the shared helpers of bench/evaluate/common.py.
"""

from __future__ import annotations

import json
import random
import struct
import sys
from pathlib import Path

import pytest

# bench/ is not an installed package: the repository root must be importable
# whichever way pytest is started (xdist workers included).
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.evaluate import common  # noqa: E402
from bench.evaluate import evasion_http as eh  # noqa: E402
from pakemon.detect.http import HttpRequestParser  # noqa: E402
from pakemon.detect.http_normalize import get_personality, normalize_uri  # noqa: E402

ATTACKS, NO_REQUEST = eh.derive_attacks()
BY_NAME = {a.name: a for a in ATTACKS}
# Techniques every server of the era accepts: judged for every attack.
UNIVERSAL = ("pct-encode", "dot-insert", "double-slash", "reverse-traversal",
             "fake-parameter", "long-prefix", "premature-end")
# IIS syntax or IIS semantics: effective on IIS targets only.
IIS_ONLY = ("pct-u-encode", "backslash", "random-case", "double-encode")


def norm(target: str, server: str, double: bool = False) -> bytes:
    return normalize_uri(target.encode("latin-1"), get_personality(server), double)[0]


# -- attacks -------------------------------------------------------------------

def test_at_least_100_distinct_attacks_from_every_http_rule():
    assert len(ATTACKS) >= 100
    assert len({a.target for a in ATTACKS}) == len(ATTACKS)
    assert NO_REQUEST == []  # every port-80 rule got a request
    rules = {r.name for r in eh.http_rules()}
    assert {a.rule for a in ATTACKS} == rules


def test_derived_target_carries_the_rule_literal():
    rule = next(r for r in eh.http_rules() if r.name == "CGI-campas(CVE-1999-0146)")
    target, server = eh._derive(rule)
    assert target == "/cgi-bin/campas" and server == "apache"
    rule = next(r for r in eh.http_rules() if r.name == "IIS-cmd.exe")
    assert eh._derive(rule) == ("/cmd.exe", "iis")


def test_every_attack_alerts_plainly_and_twins_do_not(tmp_path):
    kept, dropped = eh.check_plain(ATTACKS, tmp_path)
    assert dropped == []
    assert len(kept) == len(ATTACKS)


# -- techniques: the server still runs the attack ------------------------------------

@pytest.mark.parametrize("name", UNIVERSAL)
def test_universal_technique_normalizes_to_the_attack(name):
    tech = eh.TECHNIQUES[name]
    for a in ATTACKS:
        evaded = eh.evaded_target(tech, a)
        if a.path.strip("/"):  # "////////" has nothing to encode
            assert evaded != a.target, (name, a.name)
        assert norm(evaded, a.server) == norm(a.target, a.server), (name, a.name, evaded)
        assert eh.effective(tech, a) == (True, "")


@pytest.mark.parametrize("name", IIS_ONLY)
def test_iis_technique_normalizes_to_the_attack_on_iis(name):
    tech = eh.TECHNIQUES[name]
    iis = [a for a in ATTACKS if a.server == "iis"]
    assert len(iis) > 40
    for a in iis:
        evaded = eh.evaded_target(tech, a)
        assert norm(evaded, "iis", tech.double_decode) == norm(a.target, "iis",
                                                               tech.double_decode), (name, a.name)
        assert eh.effective(tech, a)[0]


@pytest.mark.parametrize("name", ["pct-u-encode", "backslash", "double-encode"])
def test_iis_technique_is_not_applicable_to_apache(name):
    tech = eh.TECHNIQUES[name]
    a = BY_NAME["CGI-phf"]
    ok, why = eh.effective(tech, a)
    assert not ok and "Apache" in why
    # A generic reading would not equal the plain attack either for these.
    assert norm(eh.evaded_target(tech, a), "apache") != norm(a.target, "apache")


def test_rewrites_look_like_the_scanners():
    rng = random.Random(1)
    assert eh.rw_pct("/cgi-bin/phf", rng) == "/%63%67%69%2D%62%69%6E/%70%68%66"
    assert eh.rw_dot("/cgi-bin/phf", rng) == "/./cgi-bin/./phf"
    assert eh.rw_slashes("/a/b", rng) == "//a//b"
    assert eh.rw_backslash("/a/b/c", rng) == "/a\\b\\c"
    fake = eh.rw_fake_param("/cgi-bin/phf", rng)
    assert fake.startswith("/%3f") and fake.endswith("=/../cgi-bin/phf")
    assert len(eh.rw_long("/x", rng)) > 1024
    assert eh.rw_premature("/x", rng).startswith("/%20HTTP/1.1%0d%0aAccept%3a%20")
    rev = eh.rw_reverse("/a/b", rng)
    assert rev.count("/..") == 2 and norm(rev, "apache") == b"/a/b"
    # existing escapes (the attack itself) are never re-encoded
    assert eh.rw_pct("/..%c0%af../x", rng) == "/%2E%2E%c0%af%2E%2E/%78"
    assert eh.rw_double("/a", rng) == "/%2561"
    assert eh.rw_pct_u("/a", rng) == "/%u0061"


def test_query_is_kept_and_rewrites_are_deterministic():
    a = BY_NAME["CGI-phf-newline"]
    for t in eh.TECHNIQUES.values():
        ev = eh.evaded_target(t, a)
        assert ev.endswith(a.query)
        assert ev == eh.evaded_target(t, a)


@pytest.mark.parametrize("name", ["plain", "tab-separator", "cr-separator", "vt-separator",
                                  "pipelined", "keep-alive", "premature-end", "long-prefix"])
def test_requests_parse_as_the_sensor_reads_them(name):
    """The sensor's HTTP parser finds the evaded target in every request,
    whatever the separator and layout (else normalization could not work)."""
    tech = eh.TECHNIQUES[name]
    a = BY_NAME["IIS-cmd.exe#2"]
    streams = eh.session_streams(tech, a)
    p = HttpRequestParser()
    reqs = []
    for s in streams:
        for i in range(0, len(s), 7):  # any chunking
            reqs += p.feed(s[i:i + 7])
    targets = [r.target.decode("latin-1") for r in reqs]
    assert eh.evaded_target(tech, a) in targets, (name, targets)
    n = 3 if tech.layout != "single" else 1
    assert len(reqs) == n


# -- twins, offline --------------------------------------------------------------------

def test_twins_stay_quiet_through_every_technique(tmp_path):
    attacks = ATTACKS[::4]  # every server, shape and layout, a quarter of them
    techs = list(eh.TECHNIQUES.values())
    caps = eh.build_captures(tmp_path / "pcaps", techs, attacks)
    alerts = eh.eve_by_port(tmp_path / "none.json")
    assert alerts == {}
    got = eh.read_offline([caps[t.name][0] for t in techs], tmp_path / "logs")
    for t in techs:
        pcap, sessions = caps[t.name]
        twins = [s for s in sessions if s.kind == "twin"]
        assert len(twins) == len(attacks)
        for s in twins:
            sigs = got.get(s.port, set())
            if t.name == "premature-end":
                # whisker's "/../.." that takes back the fake request line is
                # itself a traversal: that rule, and only it, fires.
                assert sigs == {"HTTP-directory-traversal"}, (s.target, sigs)
            else:
                assert sigs == set(), (t.name, s.target, sigs)
        # The plain attack of every session alerts when the technique is the
        # network-level one alone (nothing in the request changed).
        if t.rewrite is None and t.sep == " ":
            for s in sessions:
                if s.kind == "attack":
                    assert got.get(s.port), (t.name, s.attack)


def test_sessions_have_unique_ports_across_captures(tmp_path):
    techs = [eh.TECHNIQUES[n] for n in ("plain", "pct-encode", "keep-alive")]
    caps = eh.build_captures(tmp_path, techs, ATTACKS[:10])
    ports = [s.port for t in techs for s in caps[t.name][1]]
    assert len(ports) == len(set(ports)) == 60


def test_score_counts_misses_false_alerts_and_not_applicable():
    tech = eh.TECHNIQUES["backslash"]
    S = eh.Session
    sessions = [S("backslash", "attack", "a", "r", 1, "/x"),
                S("backslash", "twin", "a", "", 2, "/y"),
                S("backslash", "attack", "b", "r", 3, "/x"),
                S("backslash", "twin", "b", "", 4, "/y"),
                S("backslash", "attack", "c", "r", 5, "/x", False, "Apache reads ...")]
    r = eh.score(tech, sessions, {1: {"r"}, 4: {"HTTP-x"}})
    assert (r["attacks"], r["detected"], r["rate"]) == (2, 1, 50.0)
    assert (r["false_alerts"], r["twins"], r["not_applicable"]) == (1, 2, 1)
    assert r["missed"] == ["b"] and len(r["failed"]) == 2


def test_eve_by_port_maps_both_directions_and_skips_junk(tmp_path):
    p = tmp_path / "eve.json"
    ev = {"event_type": "alert", "src_ip": eh.CLIENT, "src_port": 1234, "dest_ip": eh.SERVER,
          "dest_port": 80, "alert": {"signature": "CGI-phf(CVE-1999-0067)"}}
    other = dict(ev, src_ip="10.0.0.1")
    p.write_text(json.dumps(ev) + "\nnot json\n" + json.dumps(other) + "\n")
    assert eh.eve_by_port(p) == {1234: {"CGI-phf(CVE-1999-0067)"}}


# -- common helpers -----------------------------------------------------------------

def test_stamp_describes_this_machine():
    st = common.stamp("make evaluate")
    assert st["command"] == "make evaluate"
    assert st["cores"] >= 1 and st["kernel"].startswith("Linux ")
    assert st["date"].endswith("Z")
    line = common.stamp_line(st)
    assert "make evaluate" in line and st["kernel"] in line


def test_markdown_table_escapes_and_checks_widths():
    md = common.markdown_table(["a", "n"], [["x|y", 3], ["z", 12.25]])
    lines = md.splitlines()
    assert lines[0] == "| a | n |"
    assert lines[1] == "|---|---:|"
    assert lines[2] == "| x\\|y | 3 |"
    assert lines[3] == "| z | 12.2 |" or lines[3] == "| z | 12.3 |"
    with pytest.raises(ValueError):
        common.markdown_table(["a", "b"], [[1]])


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    bar = common.save_bar(tmp_path / "b.png", ["x", "y"], [50.0, 100.0], "t", "%",
                          secondary=[0, 1], secondary_label="fa")
    lines = common.save_lines(tmp_path / "sub" / "l.png", {"s": ([1, 2], [3, 4])}, "t", "x", "y")
    for p in (bar, lines):
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", data[16:24])
        assert w > 100 and h > 100
    with pytest.raises(ValueError):
        common.save_bar(tmp_path / "c.png", ["x"], [1, 2], "t", "y")


def test_command_line_is_pasteable():
    assert common.command_line("bench.evaluate.evasion_http", ["x", "--out", "a b"]) == \
        "python -m bench.evaluate.evasion_http --out 'a b'"


# -- miss explanations -----------------------------------------------------------------

RULES = {r.name: r for r in eh.http_rules()}


@pytest.mark.parametrize("technique,attack,cause", [
    ("pct-encode", "IIS-printer-overflow", "gating-bug"),
    ("tab-separator", "HTTP-WebSitePro-path", "separator"),
    ("pct-encode", "IIS-asp-dot-source", "separator"),
    ("pct-encode", "IIS-ISM.DLL-Exploit", "encoded-signature"),
    ("random-case", "IIS-ISM.DLL-Exploit", "case"),
    ("dot-insert", "HTTP-ApacheDOS", "slash-dot"),
    ("double-encode", "IIS-cmd.exe", "double-decode"),
])
def test_explain_miss_finds_where_the_patterns_went(technique, attack, cause):
    a = BY_NAME[attack]
    got, detail = eh.explain_miss(eh.TECHNIQUES[technique], a, RULES[a.rule], set())
    assert got == cause, detail
    assert got in eh.CAUSES


def test_explain_miss_says_unexplained_when_everything_is_there():
    a = BY_NAME["CGI-phf"]
    got, _ = eh.explain_miss(eh.TECHNIQUES["plain"], a, RULES[a.rule], set())
    assert got == "unexplained"


def test_offline_run_end_to_end(tmp_path):
    """What a machine without root gets: the quick set read offline, the
    report saying so, the files written."""
    pytest.importorskip("matplotlib")
    res = eh.main_run(tmp_path / "fig", quick=True, live=False, work_dir=tmp_path / "work",
                      command="pytest")
    t = res["totals"]
    assert t["mode"] == "offline" and "--offline" in t["why_not_live"]
    assert "**Offline only**" in res["markdown"]
    assert t["attacks"] == len(eh.QUICK_ATTACKS) and t["techniques"] == len(eh.QUICK_TECHNIQUES)
    assert t["cases"] + t["not_applicable"] == t["attacks"] * t["techniques"]
    rows = {r["name"]: r for r in res["techniques"]}
    assert rows["plain"]["detected"] == rows["plain"]["attacks"] == len(eh.QUICK_ATTACKS)
    assert res["png"] == "fig/fig9-evasion-http.png"
    assert (tmp_path / res["png"]).exists()
    assert f"]({res['png']})" in res["markdown"]
    # the standalone copy links the chart next to itself
    assert "](fig9-evasion-http.png)" in (tmp_path / "fig" / "evasion-http.md").read_text()
    assert json.loads((tmp_path / "fig" / "evasion-http.json").read_text())["command"] == "pytest"
