"""The whole suricata-verify corpus through the real CLI, one test per case.

Each case runs ``bench/conformance.py``'s ``run_case``: ``pakemon-xdp read``
over the case's pcap with its own Suricata rule file and the settings its
``expected.json`` ``config`` names, alerts counted per sid from eve.json and
compared as the corpus README says (exact counts, lower bounds, 0 = none).

Cases that cannot pass yet are strict xfails from the single list
``known_failures.json`` (case -> reason; KNOWN.md explains the causes), so a
fix shows as an unexpected pass until the list is updated
(``bench/conformance.py --update-known``).
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("conformance_runner", ROOT / "bench" / "conformance.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)

CORPUS = runner.CORPUS
KNOWN = Path(__file__).with_name("known_failures.json")

pytestmark = pytest.mark.skipif(
    not (CORPUS / "README.md").is_file(),
    reason=f"suricata-verify corpus not found at {CORPUS}")


def _known() -> dict[str, str]:
    return runner.load_known_failures(KNOWN)


def _params():
    known = _known()
    out = []
    for case_dir in runner.corpus_cases(CORPUS):
        marks = []
        if case_dir.name in known:
            marks.append(pytest.mark.xfail(reason=known[case_dir.name], strict=True))
        out.append(pytest.param(case_dir, id=case_dir.name, marks=marks))
    return out


# Alert fields written as Suricata writes them, checked against upstream's
# own values wherever a case checks them (pcap_cnt is not: Suricata inspects
# a request at the client's packet after the server's ACK, this sensor as
# it comes; the flow's counters are checked where the alert's frame is the
# same, as they count up to it; not payload and ether, see KNOWN.md)
SURICATA_FIELDS = ("tx_id", "http.", "stream", "ip_v", "vlan[", "packet", "pkt_src",
                   "app_proto", "flow.start")


@pytest.mark.parametrize("case_dir", _params())
def test_case(case_dir, tmp_path):
    rec = runner.run_case(case_dir, work=tmp_path)
    assert rec["pass"], (f"{rec['case']}: {rec['error'] or '; '.join(rec['mismatches'])}\n"
                         f"$ {' '.join(rec['cmd'])}\n{rec['stderr'][-2000:]}")
    fields = rec["fields"]["differ"]
    differ = [k for k in fields if k.startswith(SURICATA_FIELDS)]
    if "pcap_cnt" not in fields:
        differ += [k for k in fields if k.startswith("flow.") and k not in differ]
    assert not differ, f"{rec['case']}: alert fields unlike upstream's: {differ}"


def test_corpus_is_whole():
    # The README promises 171 cases; a partial checkout would pass vacuously.
    assert len(runner.corpus_cases(CORPUS)) == 171


def test_known_failures_name_real_cases_with_reasons():
    cases = {p.name for p in runner.corpus_cases(CORPUS)}
    known = _known()
    assert set(known) <= cases, sorted(set(known) - cases)
    assert all(reason.strip() for reason in known.values())
    # KNOWN.md must have a row for every case (the prose behind the list)
    text = (Path(__file__).with_name("KNOWN.md")).read_text()
    missing = [c for c in cases if f"`{c}`" not in text]
    assert not missing, missing


# ---- the runner's own pieces, on real corpus inputs


def test_settings_follow_the_case_config(tmp_path):
    exp = runner.load_expected(CORPUS / "tcp-async-01")  # midstream + async-oneside, stock yaml
    args, _ = runner.case_args(exp, tmp_path, frozenset())
    assert args[args.index("--midstream") + 1] == "on"
    assert args[args.index("--async-oneside") + 1] == "on"
    assert args[args.index("--policy") + 1] == "bsd"
    table = Path(args[args.index("--host-policy") + 1]).read_text()
    assert "0.0.0.0/0 windows" in table and "10.0.0.0/8 linux" in table and "::1 solaris" in table

    exp = runner.load_expected(CORPUS / "eve-payload-02-tcp-exact-overlap-policy-oldlinux")
    args, _ = runner.case_args(exp, tmp_path, frozenset())
    assert args[args.index("--checksum") + 1] == "off"  # -k none
    assert args[args.index("--midstream") + 1] == "off"
    table = Path(args[args.index("--host-policy") + 1]).read_text()
    assert "2.2.2.2 old-linux" in table and "0.0.0.0/0 windows" in table

    exp = runner.load_expected(CORPUS / "eve-payload-01-tcp-exact-overlap")  # own yaml, no policy
    (tmp_path / "own").mkdir()
    args, _ = runner.case_args(exp, tmp_path / "own", frozenset())
    assert "--host-policy" not in args and args[args.index("--policy") + 1] == "bsd"

    exp = runner.load_expected(CORPUS / "test-dsize-values")  # checksums validated? no: -k none
    args, _ = runner.case_args(exp, tmp_path, frozenset())
    assert args[args.index("--checksum") + 1] == "off"
    exp = runner.load_expected(CORPUS / "ipv4-truncated")  # stock checksum checks
    args, _ = runner.case_args(exp, tmp_path, frozenset())
    assert args[args.index("--checksum") + 1] == "auto"


def test_optional_settings_are_passed_only_when_the_cli_has_them(tmp_path):
    exp = runner.load_expected(CORPUS / "detect-http-uri--UriTestSig01")  # stream.inline=true
    args, unsupported = runner.case_args(exp, tmp_path, frozenset())
    assert unsupported == ["stream.inline=true"] and "--stream-inline" not in args
    args, unsupported = runner.case_args(
        exp, tmp_path, frozenset({"--stream-inline", "--vars", "--http-personality"}))
    assert not unsupported
    assert args[args.index("--stream-inline") + 1] == "on"
    assert args[args.index("--http-personality") + 1] == "generic"
    assert "HOME_NET" in Path(args[args.index("--vars") + 1]).read_text()
    exp = runner.load_expected(CORPUS / "bug-28")  # own yaml: libhtp Minimal personality
    args, unsupported = runner.case_args(exp, tmp_path, frozenset())
    assert unsupported == ["libhtp personality minimal"]


def test_compare_exact_lower_bound_and_zero():
    got = Counter({"1": 2, "2": 1, "9": 5})
    assert runner.compare({"1": 2, "2": 1}, True, got) == []
    assert runner.compare({"1": 1}, True, got) == ["sid 1: expected 1, got 2"]
    assert runner.compare({"1": 1}, False, got) == []  # lower bound
    assert runner.compare({"1": 3}, False, got) == ["sid 1: expected >=3, got 2"]
    assert runner.compare({"9": 0}, False, got) == ["sid 9: expected 0, got 5"]
    assert runner.compare({"7": 0}, True, got) == []  # unlisted sids (9) are free


def test_alerts_are_counted_per_signature_id(tmp_path):
    eve = tmp_path / "eve.json"
    lines = [{"event_type": "alert", "alert": {"signature_id": 5}},
             {"event_type": "anomaly", "anomaly": {"event": "x"}},
             {"event_type": "alert", "alert": {"signature_id": 5}},
             {"event_type": "alert", "alert": {"signature_id": 7}}]
    eve.write_text("".join(json.dumps(x) + "\n" for x in lines) + "{not json\n")
    counts, bad = runner.count_alerts(eve)
    assert counts == Counter({"5": 2, "7": 1}) and bad == 1


def test_a_refusing_or_missing_cli_fails_the_case_not_the_runner(tmp_path):
    rec = runner.run_case(CORPUS / "test-dsize-values", exe=tmp_path / "no-such-exe", work=tmp_path)
    assert not rec["pass"] and "cannot run" in rec["error"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "expected.json").write_text("{")
    rec = runner.run_case(broken, work=tmp_path)
    assert not rec["pass"] and "expected.json" in rec["error"]


def _fake_cli(tmp_path, body: str) -> Path:
    exe = tmp_path / "fake-pakemon-xdp"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    return exe


def test_runner_reads_eve_of_the_log_dir_it_passed(tmp_path):
    # a stand-in CLI that writes two alerts for sid 2 and one for sid 4 into --log-dir
    exe = _fake_cli(tmp_path, r'''
while [ $# -gt 0 ]; do [ "$1" = --log-dir ] && dir=$2; shift; done
mkdir -p "$dir"
for sid in 2 2 4 4; do echo "{\"event_type\":\"alert\",\"alert\":{\"signature_id\":$sid}}"; done > "$dir/eve.json"
echo "x.rules:7: sid 9 skipped: unsupported keyword 'zz'" >&2
''')
    (tmp_path / "w").mkdir()
    rec = runner.run_case(CORPUS / "test-dsize-values", exe=exe, work=tmp_path / "w")
    assert rec["got"] == {"2": 2, "4": 2}
    assert "sid 2: expected 4, got 2" in rec["mismatches"]
    assert "sid 4: expected 1, got 2" in rec["mismatches"]
    assert rec["skipped_rules"] == ["sid 9 skipped: unsupported keyword 'zz'"]
    assert not rec["pass"]


def test_runner_times_out_a_hanging_cli(tmp_path):
    exe = _fake_cli(tmp_path, 'case "$*" in *--help*) exit 0;; esac\nsleep 30\n')
    rec = runner.run_case(CORPUS / "test-dsize-values", exe=exe, timeout=0.5, work=tmp_path)
    assert not rec["pass"] and "timed out" in rec["error"]


def test_runner_reports_a_nonzero_exit_with_the_first_error_line(tmp_path):
    exe = _fake_cli(tmp_path, "echo 'pakemon-xdp: rules refused' >&2\nexit 1\n")
    rec = runner.run_case(CORPUS / "test-dsize-values", exe=exe, work=tmp_path)
    assert rec["error"] == "exit 1: pakemon-xdp: rules refused" and not rec["pass"]
