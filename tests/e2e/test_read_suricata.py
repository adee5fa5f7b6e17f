"""`pakemon-xdp read` with Snort/Suricata rule files: eve.json alerts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pakemon.cli import main
from pakemon.lab.traffic import dns_exchange, http_exchange, write_pcap

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "conformance" / "suricata-verify"


def eve_alerts(log_dir):
    out = []
    for line in (Path(log_dir) / "eve.json").read_text().splitlines():
        e = json.loads(line)
        if e["event_type"] == "alert":
            out.append(e)
    return out


def make_pcap(tmp_path):
    frames = http_exchange("10.0.0.1", "192.0.2.2", 40000,
                           b"GET /gate.php?id=42 HTTP/1.1\r\nHost: c2.example\r\n\r\n", b"ok")
    frames += dns_exchange("10.0.0.1", "10.0.0.53", 5353, "bad.example.com", ts=1)
    pcap = tmp_path / "c.pcap"
    write_pcap(pcap, frames)
    return pcap


def test_read_suricata_rules_mixed_with_native(tmp_path, capsys):
    rules = tmp_path / "s.rules"
    rules.write_text(
        'alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET TROJAN gate"; '
        'flow:established,to_server; content:"/gate.php"; http_uri; '
        'pcre:"/id=\\d+$/U"; classtype:trojan-activity; priority:1; sid:2000001; rev:3;)\n'
        'drop udp any any -> any 53 (msg:"DNS bad"; content:"|03|bad"; sid:2000002;)\n'
        'alert udp any any -> any 53 (msg:"never"; content:"good"; sid:2000003;)\n'
        'alert udp any any -> any 53 (msg:"gid 3"; content:"|03|bad"; gid:3; sid:2000004;)\n')
    native = tmp_path / "n.rules"
    native.write_text('NATIVE-GATE tcp * 80 "/gate.php"\n')
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("HOME_NET: \"[10.0.0.0/24]\"\n")
    logs = tmp_path / "logs"
    rc = main(["read", "-q", "--rules", str(rules), "--rules", str(native),
               "--vars", str(vars_file), str(make_pcap(tmp_path)), "--log-dir", str(logs)])
    assert rc == 0, capsys.readouterr().err
    got = {e["alert"]["signature"]: e["alert"] for e in eve_alerts(logs)}
    assert set(got) == {"ET TROJAN gate", "DNS bad", "NATIVE-GATE", "gid 3"}
    assert [got[m]["gid"] for m in ("ET TROJAN gate", "gid 3", "NATIVE-GATE")] == [1, 3, 1]
    gate = got["ET TROJAN gate"]
    assert (gate["signature_id"], gate["rev"], gate["category"], gate["severity"]) == \
        (2000001, 3, "trojan-activity", 1)


def test_home_net_var_restricts(tmp_path):
    rules = tmp_path / "s.rules"
    rules.write_text('alert http $HOME_NET any -> any any (msg:"g"; content:"/gate.php"; '
                     'http_uri; sid:1;)\n')
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("HOME_NET: \"[192.168.0.0/16]\"\n")
    logs = tmp_path / "logs"
    rc = main(["read", "-q", "--rules", str(rules), "--vars", str(vars_file),
               str(make_pcap(tmp_path)), "--log-dir", str(logs)])
    assert rc == 0
    assert eve_alerts(logs) == []


def test_bad_suricata_rule_exit_1_unless_skipped(tmp_path, capsys):
    rules = tmp_path / "s.rules"
    rules.write_text('alert udp any any -> any 53 (msg:"ok"; content:"|03|bad"; sid:1;)\n'
                     'alert udp any any -> any 53 (msg:"broken"; content:"x"; depth:0; sid:2;)\n'
                     'alert tcp any any -> any any (msg:"no sid";)\n')
    pcap = make_pcap(tmp_path)
    rc = main(["read", "-q", "--rules", str(rules), str(pcap), "--log-dir", str(tmp_path / "a")])
    assert rc == 1
    assert "s.rules:3" in capsys.readouterr().err
    rc = main(["read", "-q", "--skip-bad-rules", "--rules", str(rules), str(pcap),
               "--log-dir", str(tmp_path / "b")])
    assert rc == 0
    assert [e["alert"]["signature_id"] for e in eve_alerts(tmp_path / "b")] == [1]


def run_case(name, tmp_path):
    case = CORPUS / name
    expected = json.loads((case / "expected.json").read_text())
    logs = tmp_path / name
    rc = main(["read", "-q", "--checksum", "off", "--rules", str(case / "test.rules"),
               str(case / expected.get("pcap", "input.pcap")), "--log-dir", str(logs)])
    assert rc == 0
    counts = {}
    for e in eve_alerts(logs):
        sid = str(e["alert"]["signature_id"])
        counts[sid] = counts.get(sid, 0) + 1
    return {s: counts.get(s, 0) for s in expected["alerts"]}, expected["alerts"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="suricata-verify corpus not present")
@pytest.mark.parametrize("name", [
    "alert-distance-within-1", "test-dsize-values", "bug-5162", "detect-itype",
    "uricontent--detect-uricontent-02", "detect-http-uri--UriTestSig01",
    "threshold--detection_filter-rule-hostsrc",
])
def test_suricata_verify_cases(name, tmp_path):
    got, want = run_case(name, tmp_path)
    assert got == want


def test_rules_directory_format_flag_and_missing_vars(tmp_path, capsys):
    d = tmp_path / "ruledir"
    d.mkdir()
    (d / "a.rules").write_text('alert udp any any -> any 53 (msg:"A"; content:"|03|bad"; '
                               'sid:11;)\n')
    (d / "b.rules").write_text('alert udp any any -> any 53 (msg:"B"; content:"example"; '
                               'sid:12;)\n')
    pcap = make_pcap(tmp_path)
    logs = tmp_path / "logs"
    assert main(["read", "-q", "--rules", str(d), str(pcap), "--log-dir", str(logs)]) == 0
    assert sorted(e["alert"]["signature_id"] for e in eve_alerts(logs)) == [11, 12]
    # forcing the native format on a Suricata file: the native parser's errors
    assert main(["read", "-q", "--rules-format", "native", "--rules", str(d / "a.rules"),
                 str(pcap), "--log-dir", str(tmp_path / "n")]) == 1
    capsys.readouterr()
    assert main(["read", "-q", "--rules", str(d), "--vars", str(tmp_path / "none.yaml"),
                 str(pcap), "--log-dir", str(tmp_path / "v")]) == 1
    assert "cannot read vars" in capsys.readouterr().err


def test_a_broken_vars_file_is_an_error_with_native_rules_too(tmp_path, capsys):
    """Native rules take no variables, but a vars file given with them is
    read and its errors reported (exit 1), not passed over in silence."""
    native = tmp_path / "n.rules"
    native.write_text('DNS-bad udp * 53 "|03|bad"\n')
    bad = tmp_path / "vars.txt"
    bad.write_text("HOME_NET [10.0.0.0/8\nHTTP_PORTS [80,abc]\n")
    pcap = make_pcap(tmp_path)
    assert main(["read", "-q", "--rules", str(native), "--vars", str(bad), str(pcap),
                 "--log-dir", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "vars.txt:1:" in err and "vars.txt:2:" in err and "2 error(s) in the vars file" in err
    good = tmp_path / "good.txt"
    good.write_text("HOME_NET [10.0.0.0/8]\n")
    assert main(["read", "-q", "--rules", str(native), "--vars", str(good), str(pcap),
                 "--log-dir", str(tmp_path / "b")]) == 0


ET_DIR = ROOT.parent / "shared" / "rulesets" / "et-open-suricata-4.0"
MUTATION_CHARS = ';:"|\\!,()[]$ -/<>*.0123456789abcdefxyzABC_%{}\t'


def _mutate(rng, line: str) -> str:
    s = list(line.rstrip("\n"))
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(s))
        op = rng.randrange(5)
        if op == 0:
            del s[i]
        elif op == 1:
            s.insert(i, rng.choice(MUTATION_CHARS))
        elif op == 2:
            s[i] = rng.choice(MUTATION_CHARS)
        elif op == 3:
            s.insert(i, s[i])
        else:
            j = rng.randrange(len(s))
            s[i], s[j] = s[j], s[i]
    return "".join(s)


@pytest.mark.skipif(not ET_DIR.exists(), reason="shared ET rule set not present")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_et_rules_load_compile_and_match_without_raising(seed, tmp_path):
    """The parser's own fuzz stops at parsing; here damaged ET rules go the
    whole way (the prefilter's compile, the checks on real traffic): a rule
    is loaded or reported, never a crash (PAKEMON_STRICT raises on any
    frame the engine fails on)."""
    import random

    lines = [ln for f in sorted(ET_DIR.glob("*.rules"))
             for ln in f.read_text(errors="surrogateescape").splitlines()
             if ln.startswith("alert")]
    rng = random.Random(seed)
    rules = tmp_path / "mutated.rules"
    rules.write_text("\n".join(_mutate(rng, rng.choice(lines)) for _ in range(300)) + "\n",
                     errors="surrogateescape")
    code = main(["read", "-q", "--skip-bad-rules", "--rules", str(rules),
                 "--log-dir", str(tmp_path / "logs"), str(make_pcap(tmp_path)),
                 str(ROOT / "pakemon" / "lab" / "demo.pcap")])
    assert code in (0, 1)
