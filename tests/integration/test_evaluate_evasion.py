"""Figure 9, shortened: HTTP evasion techniques replayed live into the sensor (root).

``run_evasion(quick=True)`` builds 5 attacks and their twins through 7
techniques (encodings, /./, \\, pipelining, with TCP segmentation and IP
fragmentation), replays them with tcpreplay into a LiveLab veth (namespace
prefix pke9) with ``pakemon-xdp attach`` on the other end, and scores the
sensor's eve.json. The live alerts must equal ``pakemon-xdp read``'s on the
same pcaps, session by session, with nothing lost in the perf ring.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# bench/ is not an installed package: the repository root must be importable
# whichever way pytest is started (xdist workers included).
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.evaluate import evasion_http as eh  # noqa: E402

WHY = eh.live_unavailable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"live Figure 9 needs: {WHY}")


def _our_namespaces() -> set[str]:
    # This process's labs only: under xdist another worker may run its own.
    mine = f"{eh.PREFIX}-{os.getpid()}-"
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0].startswith(mine)}


def test_figure9_quick_live(tmp_path):
    """One test, one live run: under xdist a module fixture would be built
    once per worker, i.e. two live runs competing for the same 2 cores."""
    pytest.importorskip("matplotlib")
    before = _our_namespaces()
    res = eh.run_evasion(tmp_path / "report", quick=True, work_dir=tmp_path / "work")
    t = res["totals"]

    # measured live, nothing lost, equal to offline, lab gone
    assert t["mode"] == "live", t["why_not_live"]
    assert t["live"]["sent"] > 1000  # the 1-byte segments and fragments went out
    assert t["live"]["perf_lost"] == 0 and t["live"]["perf_fail"] == 0
    assert t["live"]["exit_code"] == 0 and t["live"]["errors"] == []
    assert t["live_offline_diff"] == []
    assert t["live_offline_same"] == t["sessions"] == 2 * t["attacks"] * t["techniques"]
    assert _our_namespaces() <= before

    # detection and false alerts
    rows = {r["name"]: r for r in res["techniques"]}
    assert set(rows) == set(eh.QUICK_TECHNIQUES)
    assert t["attacks"] == len(eh.QUICK_ATTACKS)
    # Plain, /./, pipelined and segmented/fragmented variants: every attack
    # of the quick set is caught live (the normalizer's and reassembly's job).
    for name, r in rows.items():
        assert r["false_alerts"] == 0, (name, r["failed"])
        assert r["detected"] == r["attacks"], (name, r["failed"])
    # backslash is IIS syntax: the two Apache CGI attacks are not applicable,
    # and the three IIS ones are still detected.
    assert rows["backslash"]["not_applicable"] == 2
    assert rows["backslash"]["attacks"] == 3

    # the report's files
    png = tmp_path / res["png"]  # relative to the report directory's parent
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = res["markdown"]
    assert "| pct-encode+seg1 |" in md and res["png"] in md
    assert res["stamp"]["command"] in md
    saved = json.loads((tmp_path / "report" / "evasion-http.json").read_text())
    assert saved["totals"]["detected"] == t["detected"]
