"""Stability (the paper's 19.5 days, scaled): the sensor under a looped replay.

The paper ran Pakemon for 19.5 days at a campus perimeter "without any
trouble and degradation of performance". Here ``pakemon-xdp attach vsrv
--metrics`` runs in the lab while one ``tcpreplay --loop N --unique-ip``
replays the load capture (bench/evaluate/load.py, its attack set included)
for the configured duration at a fixed rate, and a sampler reads every few
seconds:

  rss       VmRSS of the sensor process (/proc/PID/status)
  frames/s  the kernel's frame counters (``pakemon_frames_total``, ip +
            other: every frame) between two samples
  lost      ``pakemon_capture_lost_total`` and ``..._perf_fail_total`` (the
            reader's and the kernel's count of samples the ring refused)
  alerts    ``pakemon_alerts_total`` summed over signatures

``--unique-ip`` makes tcpreplay shift the addresses every loop (keeping the
checksums valid), so each loop is new flows rather than the same 4-tuples
and sequence numbers again: the sensor's session table, the kernel's
bypass map and the pipeline see a stream of fresh connections, as on a
real link. One tcpreplay process for the whole run keeps that shift
unique; ``--loop`` is computed from the duration and the rate.

Attack accounting: every attack session of the capture has its own client
port (no benign TCP session shares one), so an alert on TCP port 80 from
one of those ports, from any address, is an attack instance, and the
distinct (source address, port) pairs alerted are the attacks detected.
Injected = attacks per loop x loops completed (tcpreplay's frame count /
the capture's frames).

PASS when (1) RSS after the warm-up grows less than 5% (the median of the
last three samples against the median of the first three after warm-up:
one GC cycle's swing must not decide it), (2) no sample was lost, (3) every
injected attack alerted. The rate defaults to a quarter of the load
part's highest lossless rate, else 20,000 frames/s. The margin is wide on
purpose: a load step is a few seconds on empty tables, while here the
session and scan tables fill to their limits within a minute and stay
there (evictions, and 60-s timeout sweeps that expire thousands of
sessions at once), which costs the reader more per frame than the step
measured; and the machine may be shared. The criterion asks for a load the
sensor sustains, not its peak (that is Figure 10's job).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.evaluate.load import build_capture, samples_lost  # noqa: E402
from bench.live_bench import eve_alerts, stop_sensor  # noqa: E402
from pakemon.lab.live import CLI_IF, LabError, LiveLab, why_unavailable  # noqa: E402

PREFIX = "pke11"
METRICS_PORT = 9597
DEFAULT_RATE = 20_000
RATE_MARGIN = 0.25
RSS_LIMIT = 0.05
WARMUP_MIN_S = 75.0


# ---- pure helpers -------------------------------------------------------------

def parse_metrics(text: str) -> dict:
    """The few series the sampler needs from a Prometheus text page."""
    out = {"frames": 0.0, "lost": 0.0, "perf_fail": 0.0, "alerts": 0.0, "sessions": 0.0,
           "scan_sources": 0.0, "stream_mem_mb": 0.0}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        if name.startswith("pakemon_frames_total{") and ('proto="ip"' in name
                                                          or 'proto="other"' in name):
            out["frames"] += v
        elif name == "pakemon_capture_lost_total":
            out["lost"] = v
        elif name == "pakemon_capture_perf_fail_total":
            out["perf_fail"] = v
        elif name.startswith("pakemon_alerts_total"):
            out["alerts"] += v
        elif name == "pakemon_stream_sessions_active":
            out["sessions"] = v
        elif name == "pakemon_scan_sources_tracked":
            out["scan_sources"] = v
        elif name == 'pakemon_memory_bytes{pool="stream"}':
            out["stream_mem_mb"] = v / 1e6
    return out


def rss_growth(samples: list[dict], warmup_s: float) -> tuple[float | None, float | None,
                                                               float | None]:
    """(RSS at the end of warm-up, at the end, growth ratio); medians of three."""
    after = [s["rss_mb"] for s in samples if s["t"] >= warmup_s and s["rss_mb"]]
    if len(after) < 4:
        return None, None, None
    a = statistics.median(after[:3])
    b = statistics.median(after[-3:])
    return a, b, (b - a) / a if a else None


def attack_instances(alerts, attack_ports: set) -> set:
    """(src address, src port) of the alerts on TCP/80 from an attack's port."""
    return {(k[2], k[3]) for k in alerts if k[3] in attack_ports and k[5] == 80
            and str(k[1]).upper() == "TCP"}


def pick_rate(lossless_max: float | None) -> int:
    if not lossless_max:
        return DEFAULT_RATE
    return max(1000, int(lossless_max * RATE_MARGIN) // 1000 * 1000)


# ---- the lab ----------------------------------------------------------------------

def scrape(lab: LiveLab, port: int, timeout: float = 2.0) -> str | None:
    """GET /metrics from the sensor's loopback in the server namespace; None
    on any failure (counted by the sampler, never the end of its thread)."""
    try:
        s = lab.socket(lab.srv, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return None
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        buf = []
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf.append(d)
        raw = b"".join(buf).decode("utf-8", "replace")
        return raw.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in raw else None
    except OSError:
        return None
    finally:
        s.close()


def vm_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


@dataclass
class Sampler:
    """Samples the sensor every ``interval`` seconds in a thread."""

    lab: LiveLab
    pid: int
    port: int
    interval: float
    samples: list = field(default_factory=list)
    errors: int = 0

    def __post_init__(self):
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self):
        now = time.monotonic() - self._t0
        text = scrape(self.lab, self.port)
        m = parse_metrics(text) if text else None
        if m is None:
            self.errors += 1
            return
        prev = self.samples[-1] if self.samples else None
        fps = ((m["frames"] - prev["frames"]) / (now - prev["t"])
               if prev and now > prev["t"] else 0.0)
        self.samples.append({"t": round(now, 2), "rss_mb": vm_rss_mb(self.pid),
                             "frames": m["frames"], "fps": round(fps, 1),
                             "lost": max(m["lost"], m["perf_fail"]), "alerts": m["alerts"],
                             "sessions": m["sessions"], "scan_sources": m["scan_sources"],
                             "stream_mem_mb": round(m["stream_mem_mb"], 2),
                             "load1": round(os.getloadavg()[0], 2)})

    def _loop(self):
        while True:
            try:
                self.sample()
            except Exception:  # a sampler that dies silently would fake a quiet run
                self.errors += 1
            if self._stop.wait(self.interval):
                return


def run_stability(out_dir: Path, minutes: float = 30.0, *, rate: int | None = None,
                  lossless_max: float | None = None, interval: float | None = None,
                  benign: int = 150, pages: int | None = None, rules: str | None = None,
                  log=print) -> dict:
    """Part 5. Returns a JSON-able dict; ``status`` ok, skipped or error;
    ``passed`` True/False when it ran."""
    res: dict = {"part": "stability", "status": "ok", "minutes": minutes}
    reason = why_unavailable()
    if reason is None and shutil.which("tcpreplay") is None:
        reason = "tcpreplay not found (Debian package tcpreplay; scripts/setup.sh installs it)"
    if reason:
        res.update(status="skipped", reason=reason)
        return res
    rate = rate or pick_rate(lossless_max)
    duration = minutes * 60.0
    interval = interval or (2.0 if duration <= 300 else 5.0)
    # The pipeline keeps closed and new TCP sessions and datagram flows 60 s
    # after their last packet (packet time, which is the wall clock live):
    # with fresh flows every loop the state fills for that long before the
    # first session leaves. The warm-up covers it with a margin.
    warmup = min(max(WARMUP_MIN_S, 0.1 * duration), 0.6 * duration)
    res.update(rate_fps=rate, rate_from_lossless_max=lossless_max, interval_s=interval,
               warmup_s=warmup)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pakemon-eval-stab-"))
    cap = build_capture(workdir / "loop.pcap", benign=benign, attack_repeats=1, arp=False)
    loops = max(1, math.ceil(duration * rate / cap.frames))
    attack_ports = {a["key"][1] for a in cap.attacks}
    res["capture"] = {"frames": cap.frames, "bytes": cap.bytes, "attacks_per_loop":
                      len(cap.attacks), "loops_planned": loops}
    log(f"stability: {minutes:g} min at {rate:,} frames/s: {loops} loops of {cap.frames} frames "
        f"({len(cap.attacks)} attacks each), samples every {interval:g} s, warm-up {warmup:g} s")
    stop = {}

    def on_term(signum, _frame):
        stop["signal"] = signum
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    lab = LiveLab(tag="stab", prefix=PREFIX)
    sampler = None
    log_dir = workdir / "logs"
    t_start = time.monotonic()
    try:
        lab.up()
        args = ["--log-dir", str(log_dir), "-q", "--metrics", f"127.0.0.1:{METRICS_PORT}"]
        if pages:
            args += ["--pages", str(pages)]
        if rules:
            args += ["--rules", rules]
        sp = lab.start_sensor(*args)
        line = next((x for x in sp.stderr if "attached to " in x), "")
        m = re.search(r"\(([a-z]+) XDP", line)
        res["xdp_mode"] = m.group(1) if m else "?"
        time.sleep(0.5)
        sampler = Sampler(lab, sp.proc.pid, METRICS_PORT, interval)
        sampler.start()
        argv = ["tcpreplay", "-i", CLI_IF, "--preload-pcap", "--pps", str(rate), "--loop",
                str(loops), "--unique-ip", str(cap.path)]
        res["sender"] = " ".join(argv[:-1] + ["loop.pcap"])
        p = lab.popen(lab.cli, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      text=True)
        try:
            out, _ = p.communicate(timeout=duration * 1.5 + 120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            res.setdefault("errors", []).append("tcpreplay ran past 1.5 x the duration")
        res["sender_output"] = out.strip()[-1200:]
        m = re.search(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([0-9.]+) seconds", out)
        if not m:
            res.setdefault("errors", []).append(f"tcpreplay: {out.strip()[-300:]}")
            offered, send_s = 0, time.monotonic() - t_start
        else:
            offered, send_s = int(m.group(1)), float(m.group(3))
        if p.returncode:
            res.setdefault("errors", []).append(f"tcpreplay exit {p.returncode}")
        time.sleep(max(2.0, interval))  # the ring drains; one more sample after it
        sampler.stop()
        sampler.sample()
        code, _ = stop_sensor(sp)
        if code != 0:
            res.setdefault("errors", []).append(f"sensor exit {code}: {' | '.join(sp.stderr[-5:])}")
        lost = samples_lost(sp.stdout)
        try:
            lab.assert_nothing_attached()
        except AssertionError as e:
            res.setdefault("errors", []).append(str(e))
        alerts = eve_alerts(log_dir / "eve.json")
        detected = attack_instances(alerts, attack_ports)
        loops_done = offered // cap.frames if cap.frames else 0
        partial = offered - loops_done * cap.frames
        # A run cut short ends inside a loop: its attacks before that point count.
        injected = loops_done * len(cap.attacks) + sum(a["frame"] < partial
                                                       for a in cap.attacks)
        res.update(offered=offered, send_s=send_s, offered_fps=offered / send_s if send_s else 0,
                   loops_done=loops_done, partial_loop_frames=partial,
                   attacks_injected=injected, attacks_detected=len(detected),
                   alerts=sum(alerts.values()), samples_lost=lost,
                   samples=sampler.samples, scrape_errors=sampler.errors)
    except KeyboardInterrupt:
        res.update(status="error", reason=f"interrupted (signal {stop.get('signal', 'INT')})")
    except (LabError, OSError, subprocess.SubprocessError) as e:
        res.update(status="error", reason=str(e))
    finally:
        if sampler is not None:
            sampler.stop()
        try:
            lab.down()
        finally:
            signal.signal(signal.SIGTERM, old_term)
            shutil.rmtree(workdir, ignore_errors=True)
    res["seconds"] = round(time.monotonic() - t_start, 1)
    if res["status"] != "ok":
        return res
    if res.get("errors"):
        res["status"] = "error"
        res["reason"] = "; ".join(res["errors"])
    a, b, g = rss_growth(res["samples"], warmup)
    res.update(rss_warm_mb=a, rss_end_mb=b, rss_growth=g)
    checks = {
        "rss": g is not None and g < RSS_LIMIT,
        "lost": res["samples_lost"] == 0,
        "attacks": res["attacks_injected"] > 0
        and res["attacks_detected"] >= res["attacks_injected"],
    }
    res["checks"] = checks
    res["passed"] = all(checks.values()) and res["status"] == "ok"
    res["png"] = plot_stability(res, out_dir)
    log(f"stability: {'PASS' if res['passed'] else 'FAIL'}: RSS "
        + (f"{a:.1f} -> {b:.1f} MB ({g * 100:+.1f}%)" if g is not None else "not enough samples")
        + f", lost {res['samples_lost']}, attacks {res['attacks_detected']}/"
        f"{res['attacks_injected']}, {res['offered']:,} frames in {res['send_s']:.0f} s")
    return res


def rss_explanation(res: dict) -> str:
    """What the samples say about an RSS failure: facts, no guess."""
    if res.get("rss_growth") is None:
        return "too few samples after the warm-up to judge RSS"
    smp = [x for x in res["samples"] if x["t"] >= res["warmup_s"]]
    third = smp[len(smp) * 2 // 3:]
    late = ((third[-1]["rss_mb"] - third[0]["rss_mb"]) / third[0]["rss_mb"]
            if len(third) > 1 and third[0]["rss_mb"] else 0.0)
    peak = max(x.get("sessions", 0) for x in res["samples"])
    return (f"RSS grew {res['rss_growth'] * 100:.1f}% after the warm-up "
            f"({res['rss_warm_mb']:.1f} -> {res['rss_end_mb']:.1f} MB), "
            f"{late * 100:+.1f}% in the last third of the run; TCP sessions held "
            f"{smp[0].get('sessions', 0):,.0f} at the end of the warm-up, "
            f"{smp[-1].get('sessions', 0):,.0f} at the end (peak {peak:,.0f}); scan sources "
            f"tracked {smp[0].get('scan_sources', 0):,.0f} and "
            f"{smp[-1].get('scan_sources', 0):,.0f}. The pipeline "
            "keeps a closed session and a datagram flow 60 s and an unclosed one up to "
            "3600 s or until evicted at its session limit, so a run of a few minutes is "
            "still filling those tables; the full run's longer warm-up separates that "
            "from growth")


def plot_stability(res: dict, out_dir: Path) -> str:
    from bench.evaluate.common import _pyplot

    plt = _pyplot()
    s = res["samples"]
    t = [x["t"] / 60 for x in s]
    fig, axes = plt.subplots(5, 1, figsize=(7, 9.5), dpi=110, sharex=True)
    series = [("RSS (MB)", [x["rss_mb"] or 0 for x in s]),
              ("frames/s (kernel)", [x["fps"] for x in s]),
              ("samples lost (total)", [x["lost"] for x in s]),
              ("alerts (total)", [x["alerts"] for x in s]),
              ("TCP sessions held", [x.get("sessions", 0) for x in s])]
    for ax, (label, ys) in zip(axes, series):
        ax.plot(t, ys, marker=".", markersize=3)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    # What the pipeline holds next to the sessions: a table that keeps
    # growing after the sessions level off is where RSS goes.
    tw4 = axes[4].twinx()
    tw4.plot(t, [x.get("scan_sources", 0) for x in s], color="#c0504d", linewidth=0.8)
    tw4.set_ylabel("scan sources", fontsize=7, color="#c0504d")
    axes[2].set_ylim(bottom=0, top=max(1.0, max(x["lost"] for x in s) * 1.1))
    # The machine's load average next to the losses: on a shared machine
    # a loss that follows other work is not the sensor's own limit.
    tw = axes[2].twinx()
    tw.plot(t, [x.get("load1", 0) for x in s], color="grey", linewidth=0.8)
    tw.set_ylabel("load avg", fontsize=7, color="grey")
    axes[0].axvline(res["warmup_s"] / 60, color="grey", linestyle=":", label="end of warm-up")
    axes[0].legend(fontsize=7)
    axes[-1].set_xlabel("minutes")
    fig.suptitle(f"Stability: {res['minutes']:g} min at {res['rate_fps']:,} frames/s")
    fig.tight_layout()
    path = out_dir / "stability.png"
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def markdown(res: dict, rel: str = "evaluation") -> str:
    from bench.evaluate.common import markdown_table

    out = ["## Stability (the paper's 19.5 days, scaled)\n"]
    if res.get("status") == "skipped":
        return out[0] + "\nNot run: " + res["reason"] + "\n"
    out.append(
        f"`pakemon-xdp attach vsrv --metrics` ({res.get('xdp_mode', '?')} XDP) while one "
        f"`{res.get('sender', 'tcpreplay')}` replays a capture made like the load part's "
        f"but smaller and without ARP ({res['capture']['frames']:,} frames, "
        f"{res['capture']['attacks_per_loop']} attacks "
        f"per loop, addresses shifted every loop) for {res['minutes']:g} minutes at "
        f"{res['rate_fps']:,} frames/s"
        + (f" (a quarter of the highest lossless load rate, "
           f"{res['rate_from_lossless_max']:,.0f} frames/s)"
           if res.get("rate_from_lossless_max")
           else " (given with `--stability-rate`)"
           if "--stability-rate" in res.get("stamp", {}).get("command", "")
           else " (default rate: the load part gave no lossless rate)")
        + f". Sampled every {res['interval_s']:g} s; warm-up {res['warmup_s']:g} s.\n")
    if res.get("status") == "error":
        out.append(f"**Run failed:** {res.get('reason')}\n")
    if "checks" not in res:
        return "\n".join(out)
    g = res["rss_growth"]
    rows = [
        ["RSS after warm-up grows < 5%",
         f"{res['rss_warm_mb']:.1f} MB -> {res['rss_end_mb']:.1f} MB ({g * 100:+.2f}%)"
         if g is not None else "not enough samples", "PASS" if res["checks"]["rss"] else "FAIL"],
        ["no sample lost", f"{res['samples_lost']}", "PASS" if res["checks"]["lost"] else "FAIL"],
        ["every injected attack alerted",
         f"{res['attacks_detected']:,} / {res['attacks_injected']:,} ({res['loops_done']:,} "
         f"loops x {res['capture']['attacks_per_loop']})",
         "PASS" if res["checks"]["attacks"] else "FAIL"],
    ]
    out.append(markdown_table(["criterion", "measured", "result"], rows))
    fps = [x["fps"] for x in res["samples"][1:] if x["fps"]]
    loads = [x.get("load1", 0) for x in res["samples"]] or [0]
    out.append(f"{res['offered']:,} frames offered in {res['send_s']:.0f} s "
               f"({res['offered_fps']:,.0f}/s); kernel frames/s per sample "
               + (f"{min(fps):,.0f} to {max(fps):,.0f}" if fps else "-")
               + f"; {res['alerts']:,} alerts; {res['scrape_errors']} failed scrapes; 1-minute "
               f"load average {min(loads):.2f} to {max(loads):.2f} on {os.cpu_count()} CPUs "
               "(other work on the machine included).\n")
    out.append(f"**{'PASS' if res['passed'] else 'FAIL'}**\n")
    if not res["passed"]:
        why = []
        if not res["checks"]["rss"]:
            why.append(rss_explanation(res))
        if not res["checks"]["lost"]:
            first = next((x for x in res["samples"] if x["lost"]), None)
            why.append(f"{res['samples_lost']:,} samples lost: the reader fell behind the ring "
                       "at this rate" + (f" (first seen at {first['t']:.0f} s, load average "
                                         f"{first.get('load1', 0):.2f})" if first else ""))
        if not res["checks"]["attacks"]:
            why.append(f"{res['attacks_injected'] - res['attacks_detected']} attacks without "
                       "an alert" + (" (samples were lost)" if res["samples_lost"] else ""))
        out.append("Failed: " + "; ".join(why) + ".\n")
    if res.get("png"):
        out.append(f"![Stability]({rel}/{Path(res['png']).name})\n")
    return "\n".join(out)
