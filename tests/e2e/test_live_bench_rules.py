"""bench/live_bench.py reads the rule files the sensor reads (its check of
which ports are candidates ran the native loader only, and a Suricata file
ended in a traceback)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import live_bench  # noqa: E402


def test_candidate_port_check_reads_suricata_and_native_files(tmp_path):
    sur = tmp_path / "s.rules"
    sur.write_text('alert tcp any any -> any 9999 (msg:"x"; content:"abc"; sid:1;)\n')
    assert live_bench.check_port_unused(str(sur), 9999) == ["tcp/9999 dir 0"]
    assert live_bench.check_port_unused(str(sur), 9998) == []
    nat = tmp_path / "n.rules"
    nat.write_text('x-rule tcp * 9999 "abc"\n')
    assert live_bench.check_port_unused(str(nat), 9999) == ["tcp/9999 dir 0"]
    assert live_bench.check_port_unused(str(nat), 9998) == []
