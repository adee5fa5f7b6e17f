#!/usr/bin/env python3
"""`make bench`: the live XDP sensor under replayed and generated traffic (root).

Two network namespaces joined by a veth pair (pakemon.lab.live.LiveLab, MTU
9000 on both ends); ``pakemon-xdp attach vsrv -q --pages N`` runs as a child
in the server namespace, a fresh one per scenario; the traffic is sent from
the client namespace into vcli, so it arrives at vsrv's ingress where the
XDP program sees it:

  replay    bench/out/mixed-120000.pcap (HTTP sessions with bodies, DNS,
            ICMP, attacks scattered in; made by bench/run_bench.py) with
            ``tcpreplay --preload-pcap`` at --topspeed and at fixed --pps
            rates. Both directions of the capture are replayed into vsrv.
  flood10   64-byte frames from ``trafgen --cpus 1``, nine in ten a TCP ACK to
            port 9999 (no rule's service: passed over in the kernel), one in
            ten a UDP datagram to port 53 (a candidate), stepped through
            fixed rates (-b Npps, sendto) and trafgen's top speed (TX_RING).
  udp-any   64-byte UDP datagrams to port 9999. The bundled rules have UDP
            rules with `*` on both sides (RPC-statd-format-string,
            RPC-mountd-overflow, BO-BackOrifice-default-key), so the kernel
            pushes every UDP frame to userland whatever its port: this flood
            is 100% candidates, the userland pipeline's own limit.

The frames' MAC addresses are not vsrv's (the capture's 02:00:00:00:00:02),
so the server's stack drops them right after XDP: no replies, the sensor
and the sender are the only work.

Per run: frames offered (the sender's count) and its rate, frames the kernel
program saw (its ``frames`` counter), candidates (frames the filter chose),
records userland read and their rate (records / time from the first frame
sent until the sensor's CPU time stopped moving), lost samples, alerts in
the sensor's eve.json against those ``pakemon-xdp read`` finds offline in
the same pcap (the live alert set must equal it), and the sensor process's
user and system CPU seconds while the traffic lasted (/proc/PID/stat; the
total at exit, with the ~2 s of compiling, from os.wait4's rusage is in the
JSON). Lost samples are the kernel's failed pushes (``perf_fail``, ring
full): the reader's ``perf lost`` counts the same, but only once the kernel
has written its LOST record, at the next push that fits, so a loss in the
last burst shows in perf_fail alone.

Also: each sender at its top speed with no sensor attached (what the veth
takes without XDP), the top-speed replay --repeat times per ring size and
with smaller rings (--page-sweep), and at MTU 1500, where veth runs the
program in native mode (at MTU 9000 the kernel refuses native XDP on veth,
so the sensor's auto mode falls back to generic). A run that loses samples
is run again with bigger rings (--retry-pages) until none loses anything;
all are reported, with where the loss came from (ring size against the
userland deficit).

Results are printed as a table and appended to bench/out/live.jsonl, one
line per run with the date and machine. Exit 0 when it ran (whatever the
figures), also when it cannot run here (not root, no tcpreplay/trafgen: the
reason is printed); 1 if a sensor failed or something stayed attached.
Namespaces, the sensor and the senders are removed on any exit, Ctrl-C and
SIGTERM included.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable
sys.path.insert(0, str(ROOT))

from pakemon.lab.live import (CLI_IF, SRV_IF, LabError, LiveLab,  # noqa: E402
                              why_unavailable)

DEFAULT_PCAP = OUT / "mixed-120000.pcap"
FOREIGN_DST_MAC = "02:00:00:00:00:02"  # the capture's; not vsrv's: dropped after XDP
SRC_MAC = "02:00:00:00:00:01"
FLOOD_SRC, FLOOD_DST = "198.51.100.1", "198.51.100.2"
NON_SERVICE_PORT = 9999  # no bundled TCP rule's port (checked at start)
TICK = os.sysconf("SC_CLK_TCK")
QUIET_S = 1.0  # the sensor's CPU still this long after the sender: drained
BUSY_TICKS = 2  # CPU ticks per sample that count as "still working"
SAMPLE_S = 0.1
PERF_HDR = 8 + 4  # perf_event_header + the raw sample's u32 size
META = 24  # struct pk_event_meta


# ---- helpers ----------------------------------------------------------------

def proc_cpu(pid: int) -> tuple[int, int] | None:
    """(utime, stime) in clock ticks of a live process, None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[11]), int(rest[12])  # fields 14 and 15 of proc(5)


def wait_drained(pid: int, cpu0, t_sent: float, timeout: float, what: str = "run"):
    """Wait until the sensor's CPU time stops moving after the sender ended
    (its perf ring is drained): (last CPU sample, when it was last busy, an
    error or None)."""
    last = proc_cpu(pid) or cpu0
    t_busy = t_sent
    deadline = t_sent + timeout
    while time.monotonic() < deadline:
        time.sleep(SAMPLE_S)
        now_cpu = proc_cpu(pid)
        now = time.monotonic()
        if now_cpu is None:
            return last, t_busy, f"the sensor exited during the {what}"
        if sum(now_cpu) - sum(last) >= BUSY_TICKS:
            t_busy = now
        last = now_cpu
        if now - t_busy >= QUIET_S and now - t_sent >= QUIET_S:
            return last, t_busy, None
    return last, t_busy, f"the sensor was still busy {timeout:g} s after the sender"


def link_stats(lab: LiveLab, ns: str, dev: str) -> dict:
    p = subprocess.run(["ip", "-n", ns, "-j", "-s", "link", "show", "dev", dev],
                       capture_output=True, text=True)
    try:
        st = json.loads(p.stdout)[0]["stats64"]
        return {"rx_packets": st["rx"]["packets"], "rx_dropped": st["rx"]["dropped"],
                "tx_packets": st["tx"]["packets"], "tx_dropped": st["tx"]["dropped"]}
    except (ValueError, LookupError):
        return {}


def softnet_dropped() -> int:
    """Frames dropped at the per-CPU backlog (netdev_max_backlog), all CPUs."""
    total = 0
    try:
        with open("/proc/net/softnet_stat") as f:
            for line in f:
                total += int(line.split()[1], 16)
    except (OSError, IndexError, ValueError):
        pass
    return total


def eve_alerts(path: Path) -> Counter:
    out = Counter()
    if not path.exists():
        return out
    with open(path) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("event_type") == "alert":
                out[(ev["alert"]["signature"], ev["proto"], ev["src_ip"], ev.get("src_port"),
                     ev["dest_ip"], ev.get("dest_port"))] += 1
    return out


def sessions(alerts: Counter) -> set:
    return {k[1:] for k in alerts}


def offline_alerts(pcap: Path, rules: str | None, skip_bad: bool = False) -> tuple[Counter, dict]:
    with tempfile.TemporaryDirectory(prefix="pakemon-live-bench-") as d:
        cmd = [PY, "-m", "pakemon.cli", "read", "-q", "--progress", "never", "--log-dir", d,
               str(pcap)]
        if rules:
            cmd[4:4] = ["--rules", rules]
        if skip_bad:
            cmd[4:4] = ["--skip-bad-rules"]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise LabError(f"pakemon-xdp read {pcap}: exit {p.returncode}: {p.stderr.strip()}")
        m = re.search(r"^frames inspected: (\d+)", p.stdout, re.M)
        return eve_alerts(Path(d) / "eve.json"), {
            "wall_s": round(wall, 2), "frames_inspected": int(m.group(1)) if m else None}


def pcap_frames(path: Path) -> tuple[int, int]:
    from pakemon.capture import open_capture

    n = size = 0
    with open_capture(path) as r:
        for _, _, frame in r:
            n += 1
            size += len(frame)
    return n, size


def check_port_unused(rules: str | None, port: int, skip_bad: bool = False) -> list[str]:
    """Which kernel keys of the rule set name ``port`` (TCP), and the any-port bits."""
    import argparse

    from pakemon.capture.xdp import service_keys
    from pakemon.cli import load_rules_args
    from pakemon.detect.ruletree import RuleTree
    from pakemon.sensor import kernel_tree

    # the sensor's own loading: native and Suricata rule files alike
    rs = load_rules_args(argparse.Namespace(rules=[Path(rules)] if rules else None,
                                            rules_format="auto", vars=None,
                                            skip_bad_rules=skip_bad))
    if rs is None:
        raise LabError(f"{rules}: the rules do not load"
                       + ("" if skip_bad else " (--skip-bad-rules loads the rest)"))
    keys, any_bits = service_keys(kernel_tree(RuleTree(rs.rules), rs.sig))
    hits = [f"tcp/{p} dir {d}" for (proto, d, p) in keys if proto == 6 and p == port]
    if any_bits & 1:  # abi.ANY.TCP
        hits.append("any-port TCP rules")
    return hits


# ---- the sensor child ---------------------------------------------------------

@dataclass
class Run:
    """One scenario run: what was sent and what the sensor reported."""

    scenario: str
    sender: str
    pages: int
    mtu: int
    rate: str  # "topspeed", "20000pps", ...
    offered: int = 0
    send_s: float = 0.0
    offered_bytes: int = 0
    sender_failed: int = 0
    xdp_mode: str = ""
    kernel_frames: int = 0
    kernel_bytes: int = 0
    candidates: int = 0
    candidate_bytes: int = 0
    header_only: int = 0
    passed_over: int = 0
    perf_lost: int = 0
    perf_lost_by_cpu: str = ""
    perf_fail: int = 0
    records: int = 0
    handle_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    cpu_total_user_s: float = 0.0
    cpu_total_sys_s: float = 0.0
    peak_rss_mb: float | None = None
    alerts_live: int = 0
    alerts_expected: int | None = None
    alerts_matched: int | None = None
    alerts_extra: int | None = None
    sessions_live: int = 0
    sessions_expected: int | None = None
    equal_offline: bool | None = None
    link: dict = field(default_factory=dict)  # vsrv's counters, deltas
    link_cli: dict = field(default_factory=dict)  # vcli's
    softnet_dropped: int = 0
    exit_code: int | None = None
    load1: float = 0.0  # 1-minute load average before the run
    errors: list = field(default_factory=list)

    @property
    def offered_fps(self) -> float:
        return self.offered / self.send_s if self.send_s > 0 else 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.handle_s if self.handle_s > 0 else 0.0

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def us_per_record(self) -> float | None:
        return self.cpu_s / self.records * 1e6 if self.records else None

    @property
    def selected(self) -> int:
        """Frames the kernel filter chose: pushed, or refused by a full ring."""
        return self.candidates + self.perf_fail

    @property
    def lost(self) -> int:
        """Candidates userland never got. perf_fail counts the kernel's failed
        pushes (ring full); the reader's perf lost counts the same losses, but
        only once the kernel has written its LOST record, which it does at
        the next push that fits: a loss in the last burst shows in perf_fail
        alone."""
        return max(self.perf_lost, self.perf_fail, self.selected - self.records)

    @property
    def lost_before_xdp(self) -> int:
        return max(0, self.offered - self.kernel_frames)

    @property
    def lossless(self) -> bool:
        return (self.has_sensor and self.lost == 0 and not self.lost_before_xdp
                and self.records == self.candidates and not self.errors)

    @property
    def has_sensor(self) -> bool:
        return self.pages > 0

    def label(self) -> str:
        extra = "" if self.mtu == 9000 else f" mtu{self.mtu}"
        ring = f"p{self.pages}" if self.has_sensor else "no sensor"
        return f"{self.scenario} {self.rate} {ring}{extra}"


def start_sensor(lab: LiveLab, log_dir: Path, pages: int, rules: str | None, mode: str | None,
                 extra: tuple[str, ...] = ()):
    args = ["--log-dir", str(log_dir), "-q", "--pages", str(pages)]
    if rules:
        args += ["--rules", rules]
    if mode:
        args += ["--mode", mode]
    return lab.start_sensor(*args, *extra)


def stop_sensor(sp, timeout: float = 120.0):
    """SIGINT; reap the child ourselves for its rusage. (exit code, rusage)."""
    sp.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    usage = None
    status = None
    while True:
        pid, st, ru = os.wait4(sp.proc.pid, os.WNOHANG)
        if pid:
            status, usage = st, ru
            break
        if time.monotonic() > deadline:
            sp.proc.kill()
            _, status, usage = os.wait4(sp.proc.pid, 0)
            break
        time.sleep(0.05)
    sp.proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    for t in sp._threads:
        t.join(timeout=10)
    return sp.proc.returncode, usage


def parse_sensor(sp, run: Run) -> None:
    out = "\n".join(sp.stdout)

    def num(pattern, default=0):
        m = re.search(pattern, out, re.M)
        return int(m.group(1)) if m else default

    m = re.search(r"^ALL\s+(\d+)\s+[0-9.]+\s+(\d+)", out, re.M)
    if m:
        run.kernel_frames, run.kernel_bytes = int(m.group(1)), int(m.group(2))
    else:
        run.errors.append("no counters table in the sensor's output")
    run.candidates = num(r"^candidates\s+(\d+)")
    run.candidate_bytes = num(r"^candidates\s+\d+\s+(\d+) bytes")
    run.header_only = num(r"^header-only\s+(\d+)")
    run.passed_over = num(r"^passed over\s+(\d+)")
    run.perf_lost = num(r"^perf lost\s+(\d+)")
    m = re.search(r"^perf lost\s+\d+\s+by CPU: (.*); kernel perf_fail (\d+)", out, re.M)
    if m:
        run.perf_lost_by_cpu, run.perf_fail = m.group(1), int(m.group(2))
    run.records = num(r"^records read\s+(\d+)")
    m = re.search(r"^peak RSS: ([0-9.]+) MB", out, re.M)
    run.peak_rss_mb = float(m.group(1)) if m else None
    if "Traceback" in "\n".join(sp.stderr):
        run.errors.append("traceback in the sensor's stderr")


# ---- senders ----------------------------------------------------------------

def run_sender(lab: LiveLab, argv: list[str], timeout: float) -> tuple[int, str, float]:
    """argv in the client namespace; (exit code, stdout+stderr, wall s)."""
    t0 = time.monotonic()
    p = lab.popen(lab.cli, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise LabError(f"{argv[0]} did not finish in {timeout:g} s")
    return p.returncode, out, time.monotonic() - t0


def tcpreplay_argv(pcap: Path, rate: str, preload: bool) -> list[str]:
    argv = ["tcpreplay", "-i", CLI_IF]
    if preload:
        argv.append("--preload-pcap")
    argv += ["--topspeed"] if rate == "topspeed" else ["--pps", rate.removesuffix("pps")]
    return argv + [str(pcap)]


def parse_tcpreplay(out: str, run: Run, wall: float) -> None:
    m = re.search(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([0-9.]+) seconds", out)
    if not m:
        run.errors.append(f"tcpreplay output not understood: {out.strip()[-300:]}")
        run.send_s = wall
        return
    run.offered, run.offered_bytes, run.send_s = int(m.group(1)), int(m.group(2)), float(m.group(3))
    m = re.search(r"Failed packets:\s+(\d+)", out)
    run.sender_failed = int(m.group(1)) if m else 0


def _frame(proto: int, dport: int) -> str:
    """A 64-byte trafgen frame (no FCS) in the byte-level syntax.

    The source port's low byte and the IP id count up per frame (256
    flows); the checksums are trafgen's. trafgen 0.6.8's header functions
    (eth(), ipv4(), tcp(), udp()) abort at exit ("xfree: NULL pointer")
    when a config mixes TCP and UDP packets in 4 or more definitions, so
    the headers are written out here.
    """
    ip = ("0x45, 0x00, c16(50), dinc(0, 255, 1), dinc(0, 255, 1), c16(0x4000), 64, "
          f"{proto}, csumip(14, 33), {FLOOD_SRC.replace('.', ', ')}, "
          f"{FLOOD_DST.replace('.', ', ')}")
    if proto == 6:  # TCP ACK, 20-byte header, 10 bytes of payload
        l4 = (f"0x9c, dinc(0, 255, 1), c16({dport}), drnd(4), c32(1), 0x50, 0x10, c16(512), "
              "csumtcp(14, 34), c16(0), fill(0x00, 10)")
    else:  # UDP, 22 bytes of payload
        l4 = f"0x9c, dinc(0, 255, 1), c16({dport}), c16(30), csumudp(14, 34), fill(0x41, 22)"
    mac = ", ".join(f"0x{b}" for b in (FOREIGN_DST_MAC + ":" + SRC_MAC).split(":"))
    return f"{{ {mac}, c16(0x0800), {ip}, {l4} }}"


FLOOD_MIXES = {
    # name -> trafgen packets, sent in turn (round robin)
    "flood10": 9 * [_frame(6, NON_SERVICE_PORT)] + [_frame(17, 53)],
    "udp-any": [_frame(17, NON_SERVICE_PORT)],
}
FLOOD_FRAME = 64  # 14 + 20 + 20 + 10 (TCP) or 14 + 20 + 8 + 22 (UDP); no FCS


def trafgen_argv(cfg: Path, count: int, rate: str) -> list[str]:
    argv = ["trafgen", "-o", CLI_IF, "-i", str(cfg), "--cpus", "1", "-n", str(count)]
    if rate != "topspeed":
        argv += ["-b", rate]  # sendto(2) with a rate; topspeed: TX_RING
    return argv


def parse_trafgen(out: str, run: Run, wall: float) -> None:
    m = re.search(r"(\d+) packets outgoing", out)
    if not m:
        run.errors.append(f"trafgen output not understood: {out.strip()[-300:]}")
        run.send_s = wall
        return
    run.offered = int(m.group(1))
    m = re.search(r"(\d+) bytes outgoing", out)
    run.offered_bytes = int(m.group(1)) if m else run.offered * FLOOD_FRAME
    m = re.search(r"(\d+) sec, (\d+) usec on CPU\d+", out)
    run.send_s = int(m.group(1)) + int(m.group(2)) / 1e6 if m else wall
    if run.send_s <= 0:
        run.send_s = wall


# ---- one scenario --------------------------------------------------------------

def set_mtu(lab: LiveLab, mtu: int) -> None:
    for ns, dev in ((lab.cli, CLI_IF), (lab.srv, SRV_IF)):
        subprocess.run(["ip", "-n", ns, "link", "set", "dev", dev, "mtu", str(mtu)], check=True,
                       capture_output=True)


def baseline(lab: LiveLab, *, scenario: str, sender: str, argv: list[str], rate: str,
             mtu: int, args) -> Run:
    """The sender alone, nothing attached: its top speed into the veth."""
    run = Run(scenario=scenario, sender=sender, pages=0, mtu=mtu, rate=rate,
              load1=os.getloadavg()[0])
    print(f"-- {run.label()}: ", end="", flush=True)
    link0 = link_stats(lab, lab.srv, SRV_IF)
    drop0 = softnet_dropped()
    code, out, wall = run_sender(lab, argv, timeout=args.send_timeout)
    if code != 0:
        run.errors.append(f"{sender} exit {code}: {out.strip()[-300:]}")
    (parse_tcpreplay if sender == "tcpreplay" else parse_trafgen)(out, run, wall)
    time.sleep(0.2)
    link1 = link_stats(lab, lab.srv, SRV_IF)
    run.link = {k: link1[k] - link0.get(k, 0) for k in link1}
    run.softnet_dropped = softnet_dropped() - drop0
    run.kernel_frames = run.link.get("rx_packets", 0)  # vsrv's own count here
    run.xdp_mode = "none"
    print(f"{run.offered} offered at {run.offered_fps:,.0f}/s "
          f"({run.offered_bytes * 8 / run.send_s / 1e9 if run.send_s else 0:.2f} Gbit/s), "
          f"vsrv rx {run.kernel_frames}", flush=True)
    return run


def run_once(lab: LiveLab, *, scenario: str, sender: str, argv: list[str], rate: str,
             pages: int, mtu: int, args, offline: Counter | None, workdir: Path) -> Run:
    run = Run(scenario=scenario, sender=sender, pages=pages, mtu=mtu, rate=rate,
              load1=os.getloadavg()[0])
    log_dir = workdir / f"logs-{scenario}-{rate}-p{pages}-m{mtu}"
    if log_dir.exists():
        shutil.rmtree(log_dir)
    print(f"-- {run.label()}: ", end="", flush=True)
    sp = start_sensor(lab, log_dir, pages, args.rules, args.mode, tuple(args.sensor_args.split()))
    line = next((x for x in sp.stderr if "attached to " in x), "")
    m = re.search(r"\(([a-z]+) XDP", line)
    run.xdp_mode = m.group(1) if m else "?"
    pid = sp.proc.pid
    time.sleep(0.3)  # let the loop reach its first poll
    cpu0 = proc_cpu(pid) or (0, 0)
    link0 = link_stats(lab, lab.srv, SRV_IF)
    cli0 = link_stats(lab, lab.cli, CLI_IF)
    drop0 = softnet_dropped()
    t0 = time.monotonic()
    code, out, wall = run_sender(lab, argv, timeout=args.send_timeout)
    t_sent = time.monotonic()
    if code != 0:
        run.errors.append(f"{sender} exit {code}: {out.strip()[-300:]}")
    (parse_tcpreplay if sender == "tcpreplay" else parse_trafgen)(out, run, wall)
    # Wait until the sensor's CPU time stops moving: the ring is drained.
    last, t_busy, err = wait_drained(pid, cpu0, t_sent, args.drain_timeout, "run")
    if err:
        run.errors.append(err)
    run.handle_s = max(t_busy, t_sent) - t0
    run.cpu_user_s = (last[0] - cpu0[0]) / TICK
    run.cpu_sys_s = (last[1] - cpu0[1]) / TICK
    link1 = link_stats(lab, lab.srv, SRV_IF)
    run.link = {k: link1[k] - link0.get(k, 0) for k in link1}
    cli1 = link_stats(lab, lab.cli, CLI_IF)
    run.link_cli = {k: cli1[k] - cli0.get(k, 0) for k in cli1}
    if not run.offered and run.link_cli.get("tx_packets"):
        run.offered = run.link_cli["tx_packets"]  # the sender's own report was missing
    run.softnet_dropped = softnet_dropped() - drop0
    run.exit_code, usage = stop_sensor(sp)
    if usage is not None:
        run.cpu_total_user_s, run.cpu_total_sys_s = usage.ru_utime, usage.ru_stime
    if run.exit_code != 0:
        run.errors.append(f"sensor exit {run.exit_code}: {' | '.join(sp.stderr[-5:])}")
    parse_sensor(sp, run)
    try:
        lab.assert_nothing_attached()
    except AssertionError as e:
        run.errors.append(str(e))
    live = eve_alerts(log_dir / "eve.json")
    run.alerts_live = sum(live.values())
    run.sessions_live = len(sessions(live))
    if offline is not None:
        run.alerts_expected = sum(offline.values())
        run.alerts_matched = sum((live & offline).values())
        run.alerts_extra = sum((live - offline).values())
        run.sessions_expected = len(sessions(offline))
        run.equal_offline = live == offline
    if not args.keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)
    print(f"{run.offered} offered at {run.offered_fps:,.0f}/s, {run.kernel_frames} seen, "
          f"{run.records} records, lost {run.lost} (perf lost {run.perf_lost}, "
          f"perf_fail {run.perf_fail})"
          + (f", alerts {run.alerts_matched}/{run.alerts_expected}"
             + (f" (+{run.alerts_extra} extra)" if run.alerts_extra else "")
             if offline is not None else f", alerts {run.alerts_live}")
          + (f"  ERRORS: {run.errors}" if run.errors else ""), flush=True)
    return run


def with_retries(lab, retry_pages: list[int], repeat: int = 1, **kw) -> list[Run]:
    """``repeat`` runs; if one lost samples, as many again with each bigger ring
    in turn until none of them loses anything."""
    runs: list[Run] = []
    pages = kw["pages"]
    for bigger in [None] + retry_pages:
        if bigger is not None:
            if bigger <= pages:
                continue
            pages = bigger
        batch = [run_once(lab, **dict(kw, pages=pages)) for _ in range(repeat)]
        runs += batch
        if any(r.errors for r in batch) or not any(r.lost for r in batch):
            break
    return runs


# ---- the report ---------------------------------------------------------------

COLS = [("scenario", 30, "<"), ("offered", 9, ">"), ("offer/s", 9, ">"), ("kernel", 9, ">"),
        ("cands", 9, ">"), ("cand/s", 8, ">"), ("lost", 7, ">"), ("attacks", 9, ">"),
        ("cpu u/s s", 11, ">"), ("us/rec", 6, ">")]


def table(runs: list[Run]) -> str:
    head = " ".join(f"{name:{align}{w}}" for name, w, align in COLS)
    lines = [head, "-" * len(head)]
    for r in runs:
        if not r.has_sensor:
            cells = [r.label(), r.offered, f"{r.offered_fps:,.0f}", f"({r.kernel_frames})",
                     "-", "-", "-", "-", "-", "-"]
            lines.append(" ".join(f"{str(c):{align}{w}}"
                                  for c, (_, w, align) in zip(cells, COLS)))
            continue
        if r.alerts_expected is not None:
            att = f"{r.alerts_matched}/{r.alerts_expected}" + ("+" if r.alerts_extra else "")
        else:
            att = f"{r.alerts_live}/-"
        cells = [r.label(), r.offered, f"{r.offered_fps:,.0f}", r.kernel_frames, r.selected,
                 f"{r.records_per_s:,.0f}", r.lost, att,
                 f"{r.cpu_user_s:.2f}/{r.cpu_sys_s:.2f}",
                 f"{r.us_per_record:.1f}" if r.us_per_record is not None else "-"]
        lines.append(" ".join(f"{str(c):{align}{w}}" for c, (_, w, align) in zip(cells, COLS)))
    return "\n".join(lines)


def diagnose(r: Run) -> str:
    """Why a run lost samples: the ring against the backlog userland left."""
    avg_cap = r.candidate_bytes / r.candidates if r.candidates else FLOOD_FRAME
    rec = (PERF_HDR + META + avg_cap + 7) // 8 * 8
    ring = r.pages * 4096
    ring_records = int(ring / rec)
    in_rate = r.selected / r.send_s if r.send_s else 0
    drain = r.records_per_s
    share = r.cpu_s / r.handle_s if r.handle_s else 0
    full_cpu = 1e6 / r.us_per_record if r.us_per_record else 0
    parts = [f"{r.label()}: {in_rate:,.0f} candidates/s pushed for {r.send_s:.2f} s; userland "
             f"read {r.records:,} at {drain:,.0f}/s, on {share:.0%} of a CPU at "
             f"{r.us_per_record or 0:.1f} us per record (~{full_cpu:,.0f}/s on a whole CPU)"]
    parts.append(f"ring {r.pages} pages = {ring >> 10} KiB per CPU = ~{ring_records:,} records "
                 f"of ~{rec:.0f} bytes; lost {r.lost:,} (kernel perf_fail {r.perf_fail:,}; "
                 f"reader's perf lost {r.perf_lost:,}: {r.perf_lost_by_cpu})")
    if in_rate > drain > 0:
        backlog = r.selected - drain * r.send_s
        need = 1 << max(0, math.ceil(math.log2(max(1.0, backlog * rec / 4096))))
        parts.append(f"backlog ~{backlog:,.0f} records when the sender stopped (the ring of one "
                     f"CPU fills in ~{ring_records / (in_rate - drain) * 1e3:,.0f} ms at "
                     f"{in_rate - drain:,.0f}/s over the reader): this burst needs ~{need} pages "
                     "on the sender's CPU; "
                     + ("sustained, no ring suffices: more than a whole CPU of userland work"
                        if in_rate > full_cpu else
                        "sustained, the reader keeps up only with a CPU of its own"))
    return "\n    ".join(parts)


def as_json(r: Run, common: dict) -> dict:
    d = dict(common)
    d.update({k: v for k, v in r.__dict__.items()})
    d.update({"label": r.label(), "offered_fps": round(r.offered_fps),
              "records_per_s": round(r.records_per_s),
              "us_per_record_cpu": round(r.us_per_record, 2) if r.us_per_record else None,
              "sensor_cpu_share": round(r.cpu_s / r.handle_s, 3) if r.handle_s else None,
              "lost": r.lost, "candidates_selected": r.selected,
              "lost_before_xdp": r.lost_before_xdp, "lossless": r.lossless,
              "send_s": round(r.send_s, 4), "handle_s": round(r.handle_s, 3)})
    return d


# ---- main ------------------------------------------------------------------------

def rates(text: str) -> list[str]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        out.append(part if part == "topspeed" else f"{int(part)}pps")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcap", type=Path, default=DEFAULT_PCAP)
    ap.add_argument("--rules", help="rule file (default: the bundled rules)")
    ap.add_argument("--skip-bad-rules", action="store_true",
                    help="load the good rules of a rule set with errors (the ET Open set has "
                    "one), offline and in every sensor")
    ap.add_argument("--mode", choices=("auto", "native", "generic"),
                    help="XDP mode for the sensor (default: the sensor's auto)")
    ap.add_argument("--pages", type=int, default=256, help="perf ring pages per CPU (default 256)")
    ap.add_argument("--sensor-args", default="", metavar="ARGS",
                    help="more `pakemon-xdp attach` options for every sensor, e.g. "
                    "'--no-coalesce' (recorded in the JSON lines)")
    ap.add_argument("--retry-pages", default="1024,4096",
                    help="rings to try, in turn, for a run that lost samples ('' none)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of the top-speed replay per ring size (default 3)")
    ap.add_argument("--page-sweep", default="32,64,128",
                    help="also replay at top speed with these smaller rings ('' none): the "
                    "smallest that loses nothing")
    ap.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                    help="also send at top speed with no sensor attached (the senders' own "
                    "top speed into the veth)")
    ap.add_argument("--replay-rates", default="topspeed,20000,50000,100000",
                    help="tcpreplay: 'topspeed' and/or --pps values")
    ap.add_argument("--no-preload", action="store_true",
                    help="tcpreplay without --preload-pcap (reads the file while sending)")
    ap.add_argument("--mtu1500", action=argparse.BooleanOptionalAction, default=True,
                    help="also replay at top speed with MTU 1500 (native XDP on veth)")
    ap.add_argument("--flood-rates", default="50000,100000,200000,300000,400000,500000,topspeed",
                    help="flood10 (10%% candidates) rates, pps or 'topspeed' (TX_RING)")
    ap.add_argument("--udp-rates", default="25000,50000,100000,topspeed",
                    help="udp-any (100%% candidates) rates")
    ap.add_argument("--flood-count", type=int, default=500_000,
                    help="frames per flood10 step (default 500,000)")
    ap.add_argument("--udp-count", type=int, default=200_000,
                    help="frames per udp-any step (default 200,000)")
    ap.add_argument("--send-timeout", type=float, default=300.0)
    ap.add_argument("--drain-timeout", type=float, default=120.0)
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep each run's sensor logs under bench/out/live-logs/")
    args = ap.parse_args()

    reason = why_unavailable()
    for tool, pkg in (("tcpreplay", "tcpreplay"), ("trafgen", "netsniff-ng")):
        if reason is None and shutil.which(tool) is None:
            reason = f"{tool} not found (Debian package {pkg}; scripts/setup.sh installs it)"
    if reason:
        print(f"live_bench: skipped: {reason}")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    if args.skip_bad_rules:
        args.sensor_args = " ".join(filter(None, (args.sensor_args, "--skip-bad-rules")))
    try:
        # (the rules first: a set that does not load stops the bench before
        # it spends a minute generating the capture)
        used = check_port_unused(args.rules, NON_SERVICE_PORT, args.skip_bad_rules)
        if not args.pcap.exists():
            m = re.search(r"-(\d+)\.pcap$", args.pcap.name)
            n = m.group(1) if m else "120000"
            print(f"generating {args.pcap} ...", flush=True)
            subprocess.run([PY, "-m", "pakemon.lab.samples", "mixed", str(args.pcap), n],
                           check=True, cwd=ROOT)
        frames, nbytes = pcap_frames(args.pcap)
        offline, off_info = offline_alerts(args.pcap, args.rules, args.skip_bad_rules)
    except LabError as e:
        print(f"live_bench: {e}", file=sys.stderr)
        return 1
    if used:
        print(f"live_bench: warning: TCP port {NON_SERVICE_PORT} is a candidate: "
              f"{', '.join(used[:4])}")
    print(f"capture {args.pcap.name}: {frames} frames, {nbytes / 1e6:.1f} MB; offline "
          f"`pakemon-xdp read`: {sum(offline.values())} alerts in {len(sessions(offline))} "
          f"attack sessions ({off_info['wall_s']} s)", flush=True)
    retry = [int(x) for x in args.retry_pages.split(",") if x.strip()]

    stop = {}

    def on_term(signum, _frame):
        stop["signal"] = signum
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    lab = LiveLab(tag="bench")
    runs: list[Run] = []
    status = 0
    if args.keep_logs:
        workdir = OUT / "live-logs"
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="pakemon-live-bench-"))
    try:
        lab.up()
        set_mtu(lab, 9000)
        print(f"namespaces {lab.cli} / {lab.srv}, veth {CLI_IF} <-> {SRV_IF}, MTU 9000",
              flush=True)
        common = dict(args=args, offline=offline, workdir=workdir)
        flood_cfgs = {}
        for mix in FLOOD_MIXES:
            flood_cfgs[mix] = workdir / f"{mix}.cfg"
            flood_cfgs[mix].write_text("\n".join(FLOOD_MIXES[mix]) + "\n")
        if args.baseline:
            runs.append(baseline(lab, scenario="replay", sender="tcpreplay", rate="topspeed",
                                 argv=tcpreplay_argv(args.pcap, "topspeed",
                                                     not args.no_preload), mtu=9000, args=args))
            for mix, count in (("flood10", args.flood_count), ("udp-any", args.udp_count)):
                runs.append(baseline(lab, scenario=mix, sender="trafgen", rate="topspeed",
                                     argv=trafgen_argv(flood_cfgs[mix], count, "topspeed"),
                                     mtu=9000, args=args))
        for rate in rates(args.replay_rates):
            runs += with_retries(lab, retry, repeat=args.repeat if rate == "topspeed" else 1,
                                 scenario="replay", sender="tcpreplay",
                                 argv=tcpreplay_argv(args.pcap, rate, not args.no_preload),
                                 rate=rate, pages=args.pages, mtu=9000, **common)
        sweep = sorted({int(x) for x in args.page_sweep.split(",") if x.strip()}, reverse=True)
        if "topspeed" in rates(args.replay_rates):
            for pages in sweep:
                if pages in {r.pages for r in runs if r.scenario == "replay"
                             and r.rate == "topspeed"}:
                    continue
                runs.append(run_once(lab, scenario="replay", sender="tcpreplay",
                                     argv=tcpreplay_argv(args.pcap, "topspeed",
                                                         not args.no_preload),
                                     rate="topspeed", pages=pages, mtu=9000, **common))
        if args.mtu1500 and "topspeed" in rates(args.replay_rates):
            set_mtu(lab, 1500)
            try:
                runs += with_retries(lab, retry, scenario="replay", sender="tcpreplay",
                                     argv=tcpreplay_argv(args.pcap, "topspeed",
                                                         not args.no_preload),
                                     rate="topspeed", pages=args.pages, mtu=1500, **common)
            finally:
                set_mtu(lab, 9000)
        common["offline"] = None
        for mix, rate_text, count in (("flood10", args.flood_rates, args.flood_count),
                                      ("udp-any", args.udp_rates, args.udp_count)):
            cfg = flood_cfgs[mix]
            retried = False
            for rate in rates(rate_text):
                rs = with_retries(lab, [] if retried else retry, scenario=mix, sender="trafgen",
                                  argv=trafgen_argv(cfg, count, rate), rate=rate,
                                  pages=args.pages, mtu=9000, **common)
                retried = retried or len(rs) > 1
                runs += rs
    except KeyboardInterrupt:
        print("\nlive_bench: interrupted", flush=True)
        status = 130 if stop.get("signal") != signal.SIGTERM else 143
    except (LabError, OSError, subprocess.CalledProcessError) as e:
        print(f"live_bench: {e}", file=sys.stderr)
        status = 1
    finally:
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for sp in lab.sensors:  # a run cut short: its sensor detaches at SIGTERM
                if sp.proc.poll() is None:
                    sp.stop(signal.SIGTERM, timeout=30)
            try:
                lab.assert_nothing_attached()
            except AssertionError as e:
                print(f"live_bench: {e}", file=sys.stderr)
                status = status or 1
            except Exception:
                pass  # the namespaces may not exist (up() failed)
            lab.down()
            if not args.keep_logs:
                shutil.rmtree(workdir, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
    if not runs:
        return status or 1

    print()
    print(table(runs))
    print("offered: frames the sender sent; kernel: frames the XDP program saw (no sensor: "
          "vsrv's rx count); cands: frames it chose for userland; cand/s: records userland "
          "read per wall second (first frame sent until the sensor's CPU went idle); lost: "
          "candidates userland never got (kernel perf_fail / reader's perf lost); attacks: "
          "live alerts matching offline / offline alerts (+: extra live alerts); cpu: the "
          "sensor's user/sys s during the traffic; us/rec: its CPU per record read")
    busy = [r for r in runs if r.load1 > 0.7]
    if busy:
        print(f"note: the 1-minute load average was over 0.7 before {len(busy)} of {len(runs)} "
              f"runs (up to {max(r.load1 for r in busy):.2f} on {os.cpu_count()} CPUs): "
              "other processes shared the CPUs, the figures are noisier")
    modes: dict = {}
    for r in runs:
        if r.has_sensor:
            modes.setdefault(r.mtu, set()).add(r.xdp_mode)
    print("XDP mode: " + "; ".join(f"MTU {mtu}: {', '.join(sorted(m))}"
                                   for mtu, m in sorted(modes.items(), reverse=True)))
    print()
    for r in runs:
        if r.lost:
            print("lost samples: " + diagnose(r))
        if r.lost_before_xdp:
            print(f"{r.label()}: {r.lost_before_xdp:,} frames offered never reached XDP "
                  f"(vsrv rx_dropped {r.link.get('rx_dropped', '?')}, backlog drops "
                  f"{r.softnet_dropped})")
        if r.errors:
            print(f"{r.label()}: ERRORS {r.errors}")
            status = status or 1
        if r.equal_offline is False:
            print(f"{r.label()}: live alerts differ from offline: {r.alerts_matched}/"
                  f"{r.alerts_expected} matched, {r.alerts_extra} extra")
    top_all = [r for r in runs if r.scenario == "replay" and r.rate == "topspeed"
               and r.mtu == 9000 and r.has_sensor]
    top = [r for r in top_all if r.pages >= args.pages]
    if top_all:
        by_pages = sorted(top_all, key=lambda r: r.pages)
        ok_pages = [r.pages for r in by_pages if r.lossless]
        print("replay at top speed by ring size: " + ", ".join(
            f"{r.pages} pages -> lost {r.lost} at {r.offered_fps:,.0f} frames/s"
            for r in by_pages) + "; smallest lossless: "
            + (f"{min(ok_pages)} pages" if ok_pages else "none"))
    if top:
        final = [r for r in top if r.pages == top[-1].pages]
        ok = all(r.lossless and r.equal_offline for r in final)
        print(f"target (replay at top speed, MTU 9000, zero loss, every attack): "
              f"{'met' if ok else 'NOT met'} with {final[0].pages} pages in {len(final)} "
              f"run(s): " + "; ".join(
                  f"{r.offered_fps:,.0f} frames/s "
                  f"{r.offered_bytes * 8 / r.send_s / 1e9 if r.send_s else 0:.2f} Gbit/s, lost "
                  f"{r.lost}, alerts {r.alerts_matched}/{r.alerts_expected}"
                  + (f" (+{r.alerts_extra})" if r.alerts_extra else "") for r in final))
    for mix in FLOOD_MIXES:
        steps = [r for r in runs if r.scenario == mix and r.pages == args.pages]
        if not steps:
            continue
        good = [r for r in steps if r.lossless]
        bad = [r for r in steps if not r.lossless]
        share = (f"{100 * steps[0].candidates / steps[0].offered:.0f}% candidates"
                 if steps[0].offered else "")
        print(f"{mix} ({share}, {args.pages} pages): highest lossless rate "
              + (f"{max(r.offered_fps for r in good):,.0f} frames/s" if good else "none")
              + (f"; first loss at {min(r.offered_fps for r in bad):,.0f} frames/s" if bad
                 else "; no step lost anything"))

    if status in (130, 143):
        print("\ninterrupted: nothing appended to bench/out/live.jsonl")
        return status
    stamp = datetime.datetime.now().astimezone()
    common = {"date": stamp.date().isoformat(), "time": stamp.isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
              "python": platform.python_version(), "pcap": args.pcap.name,
              "pcap_frames": frames, "tcpreplay_preload": not args.no_preload,
              "sensor_args": args.sensor_args}
    with open(OUT / "live.jsonl", "a") as f:
        for r in runs:
            f.write(json.dumps(as_json(r, common), default=str) + "\n")
    print(f"\nappended {len(runs)} lines to {OUT / 'live.jsonl'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
