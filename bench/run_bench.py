#!/usr/bin/env python3
"""`make bench`: throughput and memory of `pakemon-xdp read` on mixed traffic.

Generates (once) a capture of at least 100,000 frames: HTTP sessions with
response bodies, DNS over UDP, ICMP echo, with attacks scattered in; then
runs `pakemon-xdp read -q` over it with the bundled rules as a child process
and reports frames/s, Mbit/s and the child's peak RSS. Results are printed
and appended to bench/out/results.jsonl.

Targets (issue 2): >= 150,000 frames/s in one process, peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable


def count_frames(path: Path) -> tuple[int, int]:
    sys.path.insert(0, str(ROOT))
    from pakemon.capture import open_capture

    n = size = 0
    with open_capture(path) as r:
        for _, _, frame in r:
            n += 1
            size += len(frame)
    return n, size


def unmatched_cost(rules_path: str, n: int = 50_000) -> dict:
    """ns/frame of decode alone vs the whole pipeline, for frames no rule fits.

    TLS-like traffic to port 8443 fits no service node of the bundled rules,
    so the pipeline should cost a header parse and a table lookup more.
    """
    sys.path.insert(0, str(ROOT))
    from pakemon.decode import decode_frame
    from pakemon.detect.rule_parser import load_rules
    from pakemon.lab.traffic import http_exchange
    from pakemon.pipeline import Pipeline

    frames = []
    port = 50000
    while len(frames) < n:
        port += 1
        frames += http_exchange("10.9.0.1", "10.9.0.2", port, b"\x16\x03\x01" + bytes(300),
                                bytes(4000), port=8443)
    pipe = Pipeline(load_rules(rules_path).rules)

    def best(fn):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            for ts, f in frames:
                fn(ts, f)
            times.append(time.perf_counter() - t0)
        return min(times) / len(frames) * 1e9

    dec = best(lambda ts, f: decode_frame(1, f, ts))
    full = best(pipe.feed)
    assert pipe.stats.inspected == 0, "port 8443 traffic should fit no service node"
    return {"decode_ns_per_frame": round(dec), "pipeline_ns_per_frame": round(full)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rules", default=str(ROOT / "rules" / "pakemon.rules"))
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    cap = OUT / f"mixed-{args.frames}.pcap"
    if not cap.exists():
        print(f"generating {cap} ...", flush=True)
        subprocess.run([PY, "-m", "pakemon.lab.samples", "mixed", str(cap), str(args.frames)],
                       check=True, cwd=ROOT)
    frames, nbytes = count_frames(cap)
    print(f"capture: {cap.name}: {frames} frames, {nbytes / 1e6:.1f} MB")

    best = None
    peak_rss = 0.0
    best_cpu = None
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as logdir:
            t0 = time.perf_counter()
            proc = subprocess.Popen([PY, "-m", "pakemon.cli", "read", "-q", "--progress",
                                     "never", "--rules", args.rules, "--log-dir", logdir,
                                     str(cap)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            summary = proc.stdout.read()
            # wait4 gives this child's own peak RSS (ru_maxrss, KiB on Linux)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                print(f"pakemon-xdp read exited {proc.returncode}", file=sys.stderr)
                return 1
            # the CLI's own VmHWM; ru_maxrss would include this parent at fork
            m = re.search(r"^peak RSS: ([0-9.]+) MB", summary, re.M)
            peak_rss = max(peak_rss, float(m.group(1)) if m else usage.ru_maxrss / 1024)
            # CPU seconds are what the process needed, whatever else ran
            cpu = usage.ru_utime + usage.ru_stime
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
            alerts = sum(1 for _ in open(Path(logdir) / "eve.json"))
        fps = frames / wall
        print(f"run {i + 1}: {wall:.2f} s (cpu {cpu:.2f} s)  {fps:,.0f} frames/s  "
              f"{nbytes * 8 / wall / 1e6:,.1f} Mbit/s  alerts {alerts}")
        if best is None or wall < best:
            best = wall
    rss_mb = peak_rss
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "frames": frames,
        "bytes": nbytes,
        "best_wall_s": round(best, 3),
        "frames_per_s": round(frames / best),
        "best_cpu_s": round(best_cpu, 3),
        "frames_per_cpu_s": round(frames / best_cpu),
        "mbit_per_s": round(nbytes * 8 / best / 1e6, 1),
        "peak_rss_mb": round(rss_mb, 1),
        "unmatched_frames": unmatched_cost(args.rules),
        "target_frames_per_s": 150_000,
        "target_rss_mb": 200,
    }
    print(json.dumps(result, indent=2))
    with open(OUT / "results.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
