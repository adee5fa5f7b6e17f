"""iprep: address scores by category from Suricata-format reputation files
(host entries before networks, the most specific network first), and the
keyword's sides (src, dst, any, both) and operators, where an address with
no score never matches; the CLI flags that load them."""

from __future__ import annotations

import pytest

from pakemon.cli import main
from pakemon.detect.iprep import IpRepError, IpReputation
from pakemon.detect.sigengine import SigRuleSet
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.events import Alert
from pakemon.lab.traffic import TcpConnection, udp_frame, write_pcap
from pakemon.pipeline import Pipeline
from test_sigengine import sids

CATS = "# id,short name,description\n1,BadHosts,Known bad hosts\n2,Scanners,Scanning hosts\n"
REPS = ("10.0.0.1,1,60\n"
        "192.0.2.0/24,1,20\n"
        "192.0.2.128/25,1,40\n"
        "192.0.2.7,1,90\n"
        "198.51.100.9,2,100\n"
        "2001:db8::/32,1,90\n")


def _rep(tmp_path) -> IpReputation:
    (tmp_path / "cat.txt").write_text(CATS)
    (tmp_path / "rep.list").write_text(REPS)
    rep = IpReputation()
    rep.load_categories(tmp_path / "cat.txt")
    rep.load(tmp_path / "rep.list")
    return rep


def test_scores_hosts_before_networks_and_the_most_specific_network(tmp_path):
    rep = _rep(tmp_path)
    ip = __import__("ipaddress").ip_address
    assert rep.score(ip("10.0.0.1").packed, 1) == 60
    assert rep.score(ip("192.0.2.7").packed, 1) == 90  # the host entry
    assert rep.score(ip("192.0.2.200").packed, 1) == 40  # the /25 over the /24
    assert rep.score(ip("192.0.2.5").packed, 1) == 20
    assert rep.score(ip("192.0.3.5").packed, 1) == 0
    assert rep.score(ip("198.51.100.9").packed, 1) == 0  # scored in another category
    assert rep.score(ip("2001:db8::5").packed, 1) == 90
    assert rep.entries == 6


RULES = "".join(
    f'alert udp any any -> any any (msg:"{body}"; iprep:{body}; sid:{sid};)\n'
    for sid, body in enumerate(("src,BadHosts,>,30", "dst,BadHosts,>,30", "any,BadHosts,<,30",
                                "both,BadHosts,>=,40", "src,Scanners,=,100"), 1))


def test_sides_and_operators_on_packets(tmp_path):
    rep = _rep(tmp_path)
    rules, skipped, errors = parse_suricata_rules(RULES, reputation=rep)
    assert not skipped and not errors
    cases = [
        (("10.0.0.1", "10.9.9.9"), {1: 1}),  # src 60
        (("10.9.9.9", "10.0.0.1"), {2: 1}),  # dst 60
        (("192.0.2.5", "10.9.9.9"), {3: 1}),  # src 20: any < 30
        (("10.9.9.9", "192.0.2.5"), {3: 1}),  # dst 20
        (("192.0.2.7", "192.0.2.200"), {1: 1, 2: 1, 4: 1}),  # 90 and 40: both >= 40
        (("192.0.2.7", "192.0.2.5"), {1: 1, 3: 1}),  # 90 and 20
        (("198.51.100.9", "10.9.9.9"), {5: 1}),
        (("10.9.9.9", "10.9.9.8"), {}),  # no score: not even "< 30"
        (("2001:db8::1", "2001:db9::1"), {1: 1}),
    ]
    for i, ((src, dst), want) in enumerate(cases):
        pipe = Pipeline([], sig=SigRuleSet(rules))
        out = pipe.feed(1.0, udp_frame(src, dst, 5000 + i, 53, b"x")) + pipe.flush()
        assert sids([a for a in out if isinstance(a, Alert)]) == want, (src, dst)


def test_iprep_beside_a_stream_content(tmp_path):
    rep = _rep(tmp_path)
    rules, _, errors = parse_suricata_rules(
        'alert tcp any any -> any 80 (msg:"bad host GET"; flow:to_server,established; '
        'content:"GET /"; iprep:src,BadHosts,>,50; sid:1;)', reputation=rep)
    assert not errors
    for client, want in (("10.0.0.1", {1: 1}), ("192.0.2.5", {})):
        c = TcpConnection(client, "10.0.0.2", 40000, 80).open()
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        pipe = Pipeline([], sig=SigRuleSet(rules))
        out = []
        for ts, fr in c.close():
            out += pipe.feed(ts, fr)
        out += pipe.flush()
        assert sids([a for a in out if isinstance(a, Alert)]) == want, client


@pytest.mark.parametrize("body, message", [
    ("iprep:src,BadHosts,>;", "expected <any|src|dst|both>"),
    ("iprep:up,BadHosts,>,30;", "expected <any|src|dst|both>"),
    ("iprep:src,Nobody,>,30;", "not in the categories file"),
    ("iprep:src,BadHosts,~,30;", "unknown operator"),
    ("iprep:src,BadHosts,>,300;", "out of range"),
])
def test_bad_iprep_keywords_are_rule_errors(tmp_path, body, message):
    rules, _, errors = parse_suricata_rules(
        f'alert ip any any -> any any (msg:"x"; {body} sid:1;)', reputation=_rep(tmp_path))
    assert not rules and message in str(errors[0])


def test_iprep_without_categories_is_a_rule_error():
    _, _, errors = parse_suricata_rules(
        'alert ip any any -> any any (msg:"x"; iprep:src,BadHosts,>,30; sid:1;)')
    assert "no reputation categories loaded" in str(errors[0])


def test_bad_reputation_files_name_every_bad_line(tmp_path):
    rep = IpReputation()
    (tmp_path / "c.txt").write_text("1,Bad,x\nnot a line\n99,Far,x\n")
    with pytest.raises(IpRepError) as e:
        rep.load_categories(tmp_path / "c.txt")
    assert [x.split(": ", 1)[1] for x in e.value.errors] == [
        "expected id,short name,description", "category id 99 over 59"]
    (tmp_path / "r.list").write_text("10.0.0.1,1,5\n10.0.0.300,1,5\n10.0.0.2,7,5\n"
                                     "10.0.0.3,1,500\n10.0.0.4,1\n")
    with pytest.raises(IpRepError) as e:
        rep.load(tmp_path / "r.list")
    assert [x.split(":", 2)[1] for x in e.value.errors] == ["2", "3", "4", "5"]


def test_cli_flags(tmp_path, capsys):
    (tmp_path / "cat.txt").write_text(CATS)
    (tmp_path / "rep.list").write_text(REPS)
    (tmp_path / "r.rules").write_text(
        'alert udp any any -> any any (msg:"bad source"; iprep:src,BadHosts,>,30; sid:1;)\n')
    pcap = tmp_path / "c.pcap"
    write_pcap(pcap, [(1.0, udp_frame("10.0.0.1", "10.9.9.9", 5000, 53, b"x")),
                      (2.0, udp_frame("10.9.9.9", "10.0.0.1", 53, 5000, b"y"))])
    base = ["read", "-q", "--log-dir", str(tmp_path / "logs"), "--rules",
            str(tmp_path / "r.rules"), str(pcap)]
    assert main(base + ["--iprep-categories", str(tmp_path / "cat.txt"), "--iprep",
                        str(tmp_path / "rep.list")]) == 0
    assert "1  bad source" in capsys.readouterr().out
    assert main(base) != 0  # the rule cannot load without its categories
    assert "no reputation categories loaded" in capsys.readouterr().err
    assert main(base + ["--iprep", str(tmp_path / "rep.list")]) != 0
    assert "--iprep needs --iprep-categories" in capsys.readouterr().err
    (tmp_path / "bad.list").write_text("10.0.0.1,9,5\n")
    assert main(base + ["--iprep-categories", str(tmp_path / "cat.txt"), "--iprep",
                        str(tmp_path / "bad.list")]) != 0
    err = capsys.readouterr().err
    assert "bad.list:1: category 9 is not in the categories file" in err
    assert main(["rules", "check", str(tmp_path / "r.rules"), "--iprep-categories",
                 str(tmp_path / "cat.txt")]) == 0
