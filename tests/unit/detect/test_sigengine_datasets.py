"""dataset: a sticky buffer (after its transforms) looked up in, added to or
removed from a named set, as Suricata's detect-dataset.c: isset, isnotset,
set (matches when the value is new), unset (when it was there); sets loaded
beside the rule file, ``state`` written back at the end of input by the
edge, ``memcap`` bounding what ``set`` adds, and ip.src/ip.dst as buffers;
and datarep: the buffer in a set with a reputation above, below or equal to
a value (``data,reputation`` lines; a value without one has 0)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress

import pytest

from pakemon.cli import main, save_datasets
from pakemon.detect.suricata_parser import DataSet, parse_suricata_rules
from pakemon.lab.traffic import TcpConnection, dns_exchange, udp_frame, write_pcap
from test_sigengine import run_pipe, sids


def _b64(*names: str) -> str:
    return "".join(base64.b64encode(n.encode()).decode() + "\n" for n in names)


def _load(tmp_path, text, datasets=None):
    rules, skipped, errors = parse_suricata_rules(text, str(tmp_path / "t.rules"),
                                                  datasets=datasets)
    return rules, skipped, errors


def _run(tmp_path, text, frames, prefilter=True):
    return run_pipe(text, frames, prefilter, filename=str(tmp_path / "t.rules"))


def _http(agent: bytes, port: int):
    c = TcpConnection("10.0.0.1", "10.0.0.2", port, 80).open()
    c.send(b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: " + agent + b"\r\n\r\n")
    return c.close()


@pytest.mark.parametrize("prefilter", [True, False])
def test_isset_and_isnotset_on_dns_queries(tmp_path, prefilter):
    (tmp_path / "bad.lst").write_text("# blocked\n" + _b64("evil.example", "bad.test"))
    rules = (
        'alert dns any any -> any any (msg:"bad"; dns.query; '
        'dataset:isset,bad,type string,load bad.lst; sid:1;)\n'
        'alert dns any any -> any any (msg:"not bad"; dns.query; content:"example"; '
        'dataset:isnotset,bad; sid:2;)\n')
    want = {"evil.example": {1: 1}, "bad.test": {1: 1}, "good.example": {2: 1},
            "www.evil.example": {2: 1}, "bad.tes": {}}
    for i, (name, expect) in enumerate(want.items()):
        frames = dns_exchange("10.0.0.1", "10.0.0.53", 30000 + i, name, ts=1.0 + i)
        alerts, _ = _run(tmp_path, rules, frames, prefilter)
        assert sids(alerts) == expect, name


def test_set_matches_new_values_once_and_state_survives_a_restart(tmp_path):
    rules = ('alert http any any -> any any (msg:"new agent"; http.user_agent; '
             'dataset:set,ua-seen,type string,state ua.lst; sid:1;)\n')
    frames = _http(b"curl/8.0", 40000) + _http(b"curl/8.0", 40001) + _http(b"Wget", 40002)
    alerts, pipe = _run(tmp_path, rules, frames)
    assert sids(alerts) == {1: 2}  # curl once, Wget once
    assert not (tmp_path / "ua.lst").exists()  # written at the end, by the edge
    assert save_datasets(pipe) == 0
    saved = (tmp_path / "ua.lst").read_text().split()
    assert sorted(base64.b64decode(v) for v in saved) == [b"Wget", b"curl/8.0"]
    # the next run reads the state: nothing new
    alerts, _ = _run(tmp_path, rules, _http(b"Wget", 40003) + _http(b"new", 40004))
    assert sids(alerts) == {1: 1}


def test_unset_matches_when_the_value_was_there(tmp_path):
    (tmp_path / "h.lst").write_text(_b64("h"))
    rules = ('alert http any any -> any any (msg:"seen, forgotten"; http.host; '
             'dataset:unset,hosts,type string,load h.lst; sid:1;)\n')
    alerts, _ = _run(tmp_path, rules, _http(b"a", 40000) + _http(b"a", 40001))
    assert sids(alerts) == {1: 1}


def test_hash_types_take_the_transformed_buffer(tmp_path):
    (tmp_path / "md5.lst").write_text(hashlib.md5(b"evil.example").hexdigest() + "\n")
    (tmp_path / "sha.lst").write_text(hashlib.sha256(b"bad.test").hexdigest().upper() + "\n")
    rules = ('alert dns any any -> any any (msg:"md5"; dns.query; to_md5; '
             'dataset:isset,m,type md5,load md5.lst; sid:1;)\n'
             'alert dns any any -> any any (msg:"sha"; dns.query; to_sha256; '
             'dataset:isset,s,type sha256,load sha.lst; sid:2;)\n')
    for i, (name, want) in enumerate({"evil.example": {1: 1}, "bad.test": {2: 1},
                                      "other.example": {}}.items()):
        alerts, _ = _run(tmp_path, rules, dns_exchange("10.0.0.1", "10.0.0.53", 31000 + i,
                                                       name, ts=1.0 + i))
        assert sids(alerts) == want, name


def test_ip_src_and_ip_dst_buffers_against_an_address_set(tmp_path):
    (tmp_path / "ips.lst").write_text("10.9.9.9\n2001:db8::7\n")
    rules = ('alert ip any any -> any any (msg:"from"; ip.src; '
             'dataset:isset,ips,type ip,load ips.lst; sid:1;)\n'
             'alert udp any any -> any any (msg:"to"; ip.dst; dataset:isset,ips; sid:2;)\n')
    frames = [(1.0, udp_frame("10.9.9.9", "10.0.0.2", 5000, 53, b"x")),
              (2.0, udp_frame("10.0.0.2", "10.9.9.9", 53, 5000, b"y")),
              (3.0, udp_frame("2001:db8::7", "2001:db8::1", 5001, 53, b"z")),
              (4.0, udp_frame("10.9.9.8", "10.0.0.2", 5002, 53, b"w"))]
    alerts, _ = _run(tmp_path, rules, frames)
    assert sorted((a.rule.sid, a.src_ip) for a in alerts) == [
        (1, "10.9.9.9"), (1, "2001:db8::7"), (2, "10.0.0.2")]


def test_memcap_bounds_set_and_counts_what_it_refused(tmp_path):
    rules = ('alert http any any -> any any (msg:"new"; http.user_agent; '
             'dataset:set,few,type string,memcap 150; sid:1;)\n')
    frames = []
    for i in range(4):
        frames += _http(b"agent-%d" % i, 40000 + i)
    alerts, pipe = _run(tmp_path, rules, frames)
    assert sids(alerts) == {1: 2}  # two values of 7 bytes (+64 each) fit in 150
    assert pipe.counters()["sig_dataset_full"] == 2


def test_a_set_is_shared_by_name_across_rule_files(tmp_path):
    (tmp_path / "bad.lst").write_text(_b64("evil.example"))
    shared: dict = {}
    r1, _, e1 = _load(tmp_path, 'alert dns any any -> any any (msg:"a"; dns.query; '
                      'dataset:isset,bad,type string,load bad.lst; sid:1;)', shared)
    r2, _, e2 = _load(tmp_path, 'alert dns any any -> any any (msg:"b"; dns.query; '
                      'dataset:isnotset,bad; sid:2;)', shared)
    assert not e1 and not e2
    assert r1[0].elements[0].set is r2[0].elements[0].set


@pytest.mark.parametrize("body, message", [
    ('dataset:isset,bad,type string;', "needs a sticky buffer"),
    ('dns.query; dataset:check,bad,type string;', "unknown command"),
    ('dns.query; dataset:isset,nowhere;', "give its type"),
    ('dns.query; dataset:isset,bad,type string,load missing.lst;', "cannot read missing.lst"),
    ('dns.query; dataset:isset,bad,type md5,load notmd5.lst;', "notmd5.lst:2: not a md5"),
    ('dns.query; dataset:isset,bad,type string,state a.lst,load b.lst;', "can not be mixed"),
    ('dns.query; dataset:isset,bad,type bytes;', "bad type"),
    ('dns.query; dataset:isset,bad,type string,memcap lots;', "bad memcap"),
    ('dns.query; dataset:isset,bad,type string,color blue;', "unknown option"),
])
def test_bad_datasets_are_rule_errors(tmp_path, body, message):
    (tmp_path / "notmd5.lst").write_text(hashlib.md5(b"x").hexdigest() + "\nxyz\n")
    rules, skipped, errors = _load(tmp_path, f'alert dns any any -> any any (msg:"x"; {body} '
                                             'sid:1;)')
    assert not rules and not skipped and len(errors) == 1, (errors, skipped)
    assert message in str(errors[0])


def test_a_set_of_another_type_is_a_rule_error(tmp_path):
    shared: dict = {}
    _load(tmp_path, 'alert dns any any -> any any (msg:"a"; dns.query; '
          'dataset:set,s,type string; sid:1;)', shared)
    _, _, errors = _load(tmp_path, 'alert dns any any -> any any (msg:"b"; dns.query; '
                         'dataset:isset,s,type md5; sid:2;)', shared)
    assert "is a string set, not md5" in str(errors[0])


@pytest.mark.parametrize("prefilter", [True, False])
def test_datarep_compares_the_reputation_of_the_buffer(tmp_path, prefilter):
    (tmp_path / "rep.lst").write_text(
        "".join(f"{base64.b64encode(n.encode()).decode()},{r}\n"
                for n, r in (("evil.example", 900), ("meh.example", 200))) + _b64("plain.example"))
    rules = "".join(
        f'alert dns any any -> any any (msg:"{op} {v}"; dns.query; datarep:rep,{op},{v}'
        f'{", load rep.lst, type string" if sid == 1 else ""}; sid:{sid};)\n'
        for sid, (op, v) in enumerate(((">", 500), ("<", 500), ("==", 200), ("==", 0)), 1))
    want = {"evil.example": {1: 1}, "meh.example": {2: 1, 3: 1},
            "plain.example": {2: 1, 4: 1}, "other.example": {}}
    for i, (name, expect) in enumerate(want.items()):
        alerts, _ = _run(tmp_path, rules, dns_exchange("10.0.0.1", "10.0.0.53", 32000 + i,
                                                       name, ts=1.0 + i), prefilter)
        assert sids(alerts) == expect, name


@pytest.mark.parametrize("body, message", [
    ('dns.query; datarep:r,>=,5,type string;', "unknown operator"),
    ('dns.query; datarep:r,>,70000,type string;', "0-65535"),
    ('dns.query; datarep:r,>;', "expected <name>,<op>,<value>"),
    ('dns.query; datarep:r,>,5,type string,load rep.lst;', "rep.lst:1: not a reputation"),
    ('dns.query; datarep:r,>,5,type string,state r.lst;', "unknown option 'state'"),
])
def test_bad_datareps_are_rule_errors(tmp_path, body, message):
    (tmp_path / "rep.lst").write_text(_b64("a").strip() + ",high\n")
    rules, skipped, errors = _load(tmp_path, f'alert dns any any -> any any (msg:"x"; {body} '
                                             'sid:1;)')
    assert not rules and not skipped and len(errors) == 1, (errors, skipped)
    assert message in str(errors[0])


def test_dataset_file_values_round_trip():
    for type_, value in (("string", b"a,b\n\x00"), ("md5", bytes(range(16))),
                         ("sha256", bytes(range(32))),
                         ("ipv4", ipaddress.ip_address("192.0.2.1").packed),
                         ("ip", ipaddress.ip_address("2001:db8::1").packed)):
        ds = DataSet("x", type_)
        assert ds.parse_line(ds.format(value) + "\n") == value


def test_read_saves_state_and_reads_it_back(tmp_path, capsys):
    """The CLI: two --rules files share one set; ``read`` writes its state
    at the end of the capture, and the next ``read`` starts from it."""
    (tmp_path / "a.rules").write_text(
        'alert http any any -> any any (msg:"new agent"; http.user_agent; '
        'dataset:set,ua,type string,state ua.lst; sid:1;)\n')
    (tmp_path / "b.rules").write_text(
        'alert http any any -> any any (msg:"known agent"; http.user_agent; '
        'dataset:isset,ua; sid:2;)\n')
    pcap = tmp_path / "c.pcap"
    write_pcap(pcap, _http(b"curl/8.0", 40000) + _http(b"curl/8.0", 40001))
    argv = ["read", "-q", "--log-dir", str(tmp_path / "logs"), "--rules",
            str(tmp_path / "a.rules"), "--rules", str(tmp_path / "b.rules"), str(pcap)]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert base64.b64decode((tmp_path / "ua.lst").read_text()) == b"curl/8.0"
    assert main(argv) == 0
    second = capsys.readouterr().out
    # first run: new once, and known from then on (the set rule, sid 1, runs
    # before the isset one on the first request); second run: known twice
    assert " 1  new agent" in first and " 2  known agent" in first
    assert "new agent" not in second and " 2  known agent" in second
