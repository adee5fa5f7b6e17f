"""Issue 7, parts 2-4 (Figures 10, 11, the traffic table), shortened for CI.

The pure pieces (capture builder, alert attribution, traffic table) run
anywhere; the live run (root, BPF, tcpreplay) replays a small load capture
at a light and at the top rate through the lab with the sensor attached and
checks the figures against what the capture holds.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from xdp_lab import skip_reason  # noqa: E402

from bench.evaluate import load  # noqa: E402
from pakemon.capture import open_capture  # noqa: E402

live = pytest.mark.skipif(
    skip_reason() is not None or shutil.which("tcpreplay") is None,
    reason=str(skip_reason() or "tcpreplay not installed"))


def test_capture_places_attacks_and_counts_classes(tmp_path):
    cap = load.build_capture(tmp_path / "c.pcap", benign=60, attack_repeats=2)
    assert len(cap.attacks) == 2 * len(load.ATTACKS)
    sessions = [a["session"] for a in cap.attacks]
    assert sessions == sorted(set(sessions))  # one attack per session, spread in order
    assert 0 < sessions[0] and sessions[-1] < cap.sessions
    gaps = {b - a for a, b in zip(sessions, sessions[1:])}
    assert min(gaps) >= 2 and max(gaps) <= 3  # 100 sessions / 40 attacks: every 2.5th
    assert 1024 <= cap.body_min < cap.body_max <= 1 << 20
    # The recorded positions and classes are those of the file itself.
    frames = [f for _, _, f in open_capture(cap.path)]
    assert len(frames) == cap.frames
    got = Counter(load.classify(f) for f in frames)
    assert got["tcp"] == cap.classes["tcp"] and got["udp"] == cap.classes["udp"]
    assert got["icmp"] == cap.classes["icmp"] and got["other"] == cap.classes["other"] > 0
    for a in cap.attacks:
        name, line = dict(load.ATTACKS)[a["name"]], a["frame"]
        assert name in frames[line]  # the request is the frame after the handshake
    ports = [a["key"][1] for a in cap.attacks]
    assert len(set(ports)) == len(ports)


def test_capture_without_arp_has_no_other_frames(tmp_path):
    cap = load.build_capture(tmp_path / "c.pcap", benign=80, attack_repeats=1, arp=False)
    assert cap.classes["other"] == 0 and cap.classes["ip"] == cap.frames


def test_score_alerts_attributes_by_four_tuple():
    keys = {("10.66.0.1", 1111, "10.2.0.80", 80), ("10.66.0.2", 2222, "10.2.0.80", 80)}
    alerts = Counter({("CGI-phf", "TCP", "10.66.0.1", 1111, "10.2.0.80", 80): 2,
                      ("HTTP-etc-passwd", "TCP", "10.66.0.1", 1111, "10.2.0.80", 80): 1,
                      ("CGI-phf", "TCP", "10.1.0.9", 1111, "10.2.0.80", 80): 1})
    sc = load.score_alerts(alerts, keys)
    assert sc["alerted"] == 1 and sc["alerts_on_attacks"] == 3
    assert sc["false_sessions"] == 1
    assert sc["missed"] == [("10.66.0.2", 2222, "10.2.0.80", 80)]


def test_lossless_max_needs_no_loss_and_full_detection():
    steps = [dict(attached=True, lost=0, detection_pct=100.0, errors=[], offered_fps=9000.0),
             dict(attached=True, lost=0, detection_pct=95.0, errors=[], offered_fps=30000.0),
             dict(attached=True, lost=3, detection_pct=100.0, errors=[], offered_fps=50000.0),
             dict(attached=False, lost=None, detection_pct=None, errors=[],
                  offered_fps=90000.0)]
    assert load.lossless_max(steps) == 9000.0
    assert load.lossless_max(steps[1:]) is None


def test_kernel_table_parsed_from_sensor_output():
    out = ["kernel sensor on vsrv (native XDP)", "Protocol       Frames        %          Bytes",
           "ALL             1000   100.00         900000", "IP               990    99.00  1",
           "TCP              900    90.00         800000", "UDP               80     8.00  2",
           "ICMP              10     1.00           1000", "OTHER             10     1.00  3",
           "", "samples lost                 7  the largest of ..."]
    assert load.kernel_classes(out) == {"all": 1000, "ip": 990, "tcp": 900, "udp": 80,
                                        "icmp": 10, "other": 10}
    assert load.samples_lost(out) == 7


@live
def test_load_run_live(tmp_path):
    res = load.run_load(tmp_path, rates=["5000", "topspeed"], benign=60, attack_repeats=1,
                        log=lambda m: None)
    assert res["status"] == "ok", res.get("reason")
    gt = res["ground_truth"]
    assert gt["attacks_alerted"] == gt["attacks_injected"] == len(load.ATTACKS)
    assert gt["false_sessions"] == 0
    cap_frames = res["capture"]["frames"]
    steps = res["steps"]
    assert [(s["rate"], s["attached"]) for s in steps] == [
        ("5000pps", False), ("5000pps", True), ("topspeed", False), ("topspeed", True)]
    for s in steps:
        assert s["offered"] == cap_frames, s
        assert s["softirq_s"] >= 0
    light = steps[1]
    assert 4000 < light["offered_fps"] < 6000
    # A light load: nothing lost, every attack alerted, no benign session.
    assert light["lost"] == 0 and light["detection_pct"] == 100.0
    assert light["false_sessions"] == 0 and not light["missed"]
    for s in (steps[1], steps[3]):
        assert s["kernel"]["all"] == cap_frames  # the kernel saw every frame
        assert s["sensor_cpu_s"] > 0 and s["candidates"] > 0
        assert s["attacks_alerted"] + len(s["missed"]) == s["attacks_injected"]
    assert steps[2]["offered_fps"] > steps[3]["offered_fps"] * 0.5  # attached is no faster
    t = res["table"]
    assert t["replays"] == 2 and t["all"] == 2 * cap_frames == t["offered"]
    assert {r["class"]: r["frames"] for r in t["rows"]} == {
        r["class"]: r["expected"] for r in t["rows"]}
    assert t["rows"][-1]["frames"] > 0  # OTHER: the ARP requests
    for key in ("fig10", "fig11"):
        assert Path(res["png"][key]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = load.markdown(res)
    assert f"| 5000pps | {cap_frames} | {round(light['offered_fps'])} |" in md
    assert "PASS: the kernel counted exactly" in md


def test_a_run_of_one_part_keeps_the_other_parts_figures(tmp_path, monkeypatch):
    # The figures of the last full run, as committed; then only the load
    # part runs again (its result stood in for by the committed one, marked).
    import json

    from bench.evaluate import run

    committed = json.loads((ROOT / "docs" / "evaluation" / "results.json").read_text())
    (tmp_path / run.FIG_DIR).mkdir()
    (tmp_path / run.FIG_DIR / "results.json").write_text(json.dumps(committed))
    again = dict(committed["load"], lossless_max_fps=123_456)
    monkeypatch.setattr(load, "run_load", lambda *a, **k: dict(again))
    assert run.main(["--parts", "load", "--out", str(tmp_path)]) == 0
    after = json.loads((tmp_path / run.FIG_DIR / "results.json").read_text())
    assert after["load"]["lossless_max_fps"] == 123_456
    assert after["evasion"] == committed["evasion"]
    assert after["stability"] == committed["stability"]
    md = (tmp_path / "evaluation.md").read_text()
    assert "## Evasion (Figure 9)" in md and "## Stability" in md and "123,456" in md
