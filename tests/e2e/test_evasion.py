"""Evasion end to end: the paper's nidsbench/fragrouter test, one technique per test.

Each test writes the small version of one technique's capture
(bench/evasion/gen.py: a few attacks, each with its benign twin, every one
on its own full TCP connection), runs `pakemon-xdp read` with the
technique's target policy, and checks eve.json: every attack's connection
carries its signature, no twin's connection carries any alert.
`bench/evasion/run.py` runs the full set and prints the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "evasion"))

import gen as evasion  # noqa: E402
import run as evasion_run  # noqa: E402

ATTACKS = evasion.select(evasion.SMALL)


def run_technique(tech, tmp_path, args=None):
    g = evasion.generate(tech, ATTACKS, tmp_path)
    logs = tmp_path / "logs"
    r = evasion_run.cli([g.pcap], logs, tech.cli_args() if args is None else args)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return evasion_run.score(g.connections, evasion_run.read_alerts(logs), tech.name, tech.policy)


@pytest.mark.parametrize("technique", list(evasion.TECHNIQUES))
def test_evasion(technique, tmp_path):
    tech = evasion.TECHNIQUES[technique]
    s = run_technique(tech, tmp_path)
    assert s.attacks == len(ATTACKS)
    assert s.missed == [], f"{technique} ({tech.summary}), --policy {tech.policy}: attacks missed"
    assert s.false == [], f"{technique}: alerts on benign twins"
    assert s.stray == [], f"{technique}: alerts on no known connection"


@pytest.mark.parametrize("kind", ["stream", "http"])
@pytest.mark.parametrize("technique", list(evasion.TECHNIQUES))
def test_evasion_with_suricata_rules(technique, kind, tmp_path):
    """The same captures through the Suricata engine, with rules equivalent
    to the attacks' native ones: reassembled stream content, or the parsed
    request's URI (an HTTP request cut to 1-byte segments once lost the bytes
    the protocol probe read, and with them every http rule)."""
    tech = evasion.TECHNIQUES[technique]
    rules = tmp_path / "s.rules"
    rules.write_text(evasion.suricata_rules(ATTACKS, kind))
    g = evasion.generate(tech, ATTACKS, tmp_path)
    logs = tmp_path / "logs"
    r = evasion_run.cli([g.pcap], logs, tech.cli_args(), rules=rules)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    s = evasion_run.score(g.connections, evasion_run.read_alerts(logs), tech.name, tech.policy)
    assert s.missed == [], f"{technique} ({tech.summary}), {kind} rules: attacks missed"
    assert s.false == [] and s.stray == [], f"{technique}, {kind} rules: false alerts"


@pytest.mark.parametrize("technique, wrong", [
    ("ip-frag-overlap-bsd", "first"),
    ("ip-frag-overlap-last", "linux-current"),
    ("tcp-overlap-solaris", "linux-current"),
    ("tcp-overlap-first", "bsd"),
])
def test_evasion_overlap_under_another_policy_misses(technique, wrong, tmp_path):
    """The overlap captures really tell policies apart: read as another
    stack would, every attack is hidden (the bench is not vacuous)."""
    s = run_technique(evasion.TECHNIQUES[technique], tmp_path, ["--policy", wrong])
    assert s.detected == 0


def test_evasion_discard_under_a_reassembling_policy_alerts_on_twins(tmp_path):
    """Reassembling the overlapping datagram (bsd) reads the decoy: the
    attacks are missed and every twin alerts."""
    s = run_technique(evasion.TECHNIQUES["ip-frag-overlap-discard-linux-current"], tmp_path,
                      ["--policy", "bsd"])
    assert s.detected == 0
    assert len(s.false) == len(ATTACKS)


@pytest.mark.parametrize("depth,hidden", [("1m", True), ("2m", False), ("0", False)])
def test_evasion_padding_hides_the_attack_from_a_depth_bound_reader(tmp_path, depth, hidden):
    """The padded captures are not vacuous: read with Suricata's 1 MB depth
    every attack is out of sight (the default reads all a client sends)."""
    s = run_technique(evasion.TECHNIQUES["tcp-pad-past-depth"], tmp_path,
                      ["--stream-depth", depth])
    assert s.detected == (0 if hidden else len(ATTACKS))
    assert s.false == []


def test_evasion_captures_are_reproducible(tmp_path):
    tech = evasion.TECHNIQUES["frag-seg-shuffled"]
    a = evasion.generate(tech, ATTACKS, tmp_path / "a").pcap.read_bytes()
    b = evasion.generate(tech, ATTACKS, tmp_path / "b").pcap.read_bytes()
    assert a == b
