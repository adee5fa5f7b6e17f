"""bench/live_bench.py reads the rule files the sensor reads (its check of
which ports are candidates ran the native loader only, and a Suricata file
ended in a traceback)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import live_bench  # noqa: E402
import pytest  # noqa: E402


def test_candidate_port_check_reads_suricata_and_native_files(tmp_path):
    sur = tmp_path / "s.rules"
    sur.write_text('alert tcp any any -> any 9999 (msg:"x"; content:"abc"; sid:1;)\n')
    assert live_bench.check_port_unused(str(sur), 9999) == ["tcp/9999 dir 0"]
    assert live_bench.check_port_unused(str(sur), 9998) == []
    nat = tmp_path / "n.rules"
    nat.write_text('x-rule tcp * 9999 "abc"\n')
    assert live_bench.check_port_unused(str(nat), 9999) == ["tcp/9999 dir 0"]
    assert live_bench.check_port_unused(str(nat), 9998) == []


def test_rule_set_with_a_bad_rule_is_a_message_or_loaded_with_skip_bad_rules(tmp_path, capsys,
                                                                             monkeypatch):
    # the ET Open set has one bad rule: the bench ended in a traceback
    rules = tmp_path / "mixed.rules"
    rules.write_text('alert tcp any any -> any 9999 (msg:"x"; content:"abc"; sid:1;)\n'
                     'alert tcp any any -> any 80 (msg:"y"; content:"d"; sid:2; '
                     'threshold:type limit,track by_src,count 1,seconds 60; '
                     'threshold:type limit,track by_src,count 1,seconds 60;)\n')
    with pytest.raises(live_bench.LabError, match="--skip-bad-rules loads the rest"):
        live_bench.check_port_unused(str(rules), 9999)
    assert live_bench.check_port_unused(str(rules), 9999, skip_bad=True) == ["tcp/9999 dir 0"]
    monkeypatch.setattr(sys, "argv", ["live_bench.py", "--rules", str(rules),
                                      "--pcap", str(tmp_path / "none-10.pcap")])
    rc = live_bench.main()
    out = capsys.readouterr()
    if "live_bench: skipped:" in out.out:  # not root, or no tcpreplay/trafgen
        assert rc == 0
        return
    assert rc == 1, out
    assert "the rules do not load (--skip-bad-rules loads the rest)" in out.err
    assert not (tmp_path / "none-10.pcap").exists()  # stopped before generating it
