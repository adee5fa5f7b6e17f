"""Issue 7, part 5 (stability), shortened for CI: 2 minutes instead of 30.

The pure pieces (metrics parsing, the RSS criterion, attack attribution,
the rate pick) run anywhere; the live run (root, BPF, tcpreplay) replays
the looped capture at a rate this machine sustains and checks the three
pass criteria and that the samples describe the run.
PAKEMON_EVAL_STABILITY_MINUTES overrides the length.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from xdp_lab import skip_reason  # noqa: E402

from bench.evaluate import stability  # noqa: E402

live = pytest.mark.skipif(
    skip_reason() is not None or shutil.which("tcpreplay") is None,
    reason=str(skip_reason() or "tcpreplay not installed"))

PAGE = """# HELP pakemon_frames_total Frames seen
# TYPE pakemon_frames_total counter
pakemon_frames_total{proto="ip"} 990.0
pakemon_frames_total{proto="tcp"} 900.0
pakemon_frames_total{proto="udp"} 80.0
pakemon_frames_total{proto="icmp"} 10.0
pakemon_frames_total{proto="other"} 10.0
pakemon_capture_lost_total 3.0
pakemon_capture_perf_fail_total 5.0
pakemon_alerts_total{signature="CGI-phf(CVE-1999-0067)"} 4.0
pakemon_alerts_total{signature="other"} 2.0
pakemon_stream_sessions_active 17.0
pakemon_scan_sources_tracked 4.0
pakemon_memory_bytes{pool="stream"} 2500000.0
pakemon_memory_bytes{pool="defrag"} 7.0
"""


def test_parse_metrics_counts_every_frame_once():
    m = stability.parse_metrics(PAGE)
    assert m == {"frames": 1000.0, "lost": 3.0, "perf_fail": 5.0, "alerts": 6.0,
                 "sessions": 17.0, "scan_sources": 4.0, "stream_mem_mb": 2.5}
    assert stability.parse_metrics("garbage\n{{ 1 2")["frames"] == 0.0


def test_rss_growth_uses_samples_after_warmup():
    samples = [{"t": t, "rss_mb": 100.0 + t} for t in range(0, 20, 2)]
    a, b, g = stability.rss_growth(samples, warmup_s=10)
    assert (a, b) == (112.0, 116.0) and g == pytest.approx(4 / 112)
    assert stability.rss_growth(samples, warmup_s=15) == (None, None, None)  # too few


def test_attack_instances_by_source_port_on_http():
    alerts = {("CGI-phf", "TCP", "10.66.0.1", 5005, "10.2.0.80", 80): 1,
              ("CGI-phf", "TCP", "11.67.0.1", 5005, "10.2.0.80", 80): 2,  # next loop
              ("x", "TCP", "10.1.0.1", 6000, "10.2.0.80", 80): 1,
              ("y", "UDP", "10.1.0.1", 5005, "10.2.0.53", 53): 1}
    assert stability.attack_instances(alerts, {5005}) == {("10.66.0.1", 5005),
                                                          ("11.67.0.1", 5005)}


def test_pick_rate_keeps_a_margin():
    assert stability.pick_rate(57_024.0) == 14_000
    assert stability.pick_rate(3_000.0) == 1_000
    assert stability.pick_rate(None) == stability.DEFAULT_RATE


@live
def test_stability_run_live(tmp_path):
    minutes = float(os.environ.get("PAKEMON_EVAL_STABILITY_MINUTES", "2"))
    res = stability.run_stability(tmp_path, minutes, rate=8000, benign=60, log=lambda m: None)
    assert res["status"] == "ok", res.get("reason")
    frames = res["capture"]["frames"]
    assert res["loops_done"] == res["capture"]["loops_planned"]
    assert res["offered"] == res["loops_done"] * frames
    assert res["attacks_injected"] == res["loops_done"] * res["capture"]["attacks_per_loop"]
    s = res["samples"]
    assert len(s) >= minutes * 60 / res["interval_s"] * 0.8
    assert res["scrape_errors"] == 0
    # The kernel's frame counter at the last sample is what tcpreplay sent.
    assert s[-1]["frames"] == res["offered"]
    mid = [x["fps"] for x in s[2:-3]]
    assert sum(mid) / len(mid) == pytest.approx(8000, rel=0.15)
    assert s[-1]["alerts"] == res["alerts"] >= res["attacks_injected"]
    assert all(x["rss_mb"] and x["rss_mb"] > 10 for x in s)
    assert res["checks"]["lost"] and res["checks"]["attacks"], (
        res["samples_lost"], res["attacks_detected"])
    # Two minutes end inside the tables' filling phase (sessions live 60 s,
    # scan sources longer), so the 5% criterion is judged by make evaluate's
    # 30-minute run; here RSS must still level off within a loose bound.
    assert res["rss_growth"] is not None and res["rss_growth"] < 0.15, res["rss_growth"]
    assert res["checks"]["rss"] == (res["rss_growth"] < stability.RSS_LIMIT)
    assert res["passed"] == res["checks"]["rss"]
    assert Path(res["png"]).read_bytes()[:4] == b"\x89PNG"
    md = stability.markdown(res)
    assert ("**PASS**" in md) == res["passed"]
    assert f"{res['attacks_injected']:,} / {res['attacks_injected']:,}" in md
