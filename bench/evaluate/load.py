"""Figures 10 and 11 and the section 4.2 traffic table: the live sensor under load.

The paper replayed recorded HTTP downloads with tcpreplay at rising rates
while a scanner attacked the server, and plotted the detection rate
(Figure 10) and the IDS's share of the processor (Figure 11) against the
load in frames per second. This part does the same through the kernel
sensor:

capture   ``build_capture`` writes a deterministic pcap: HTTP/1.0 sessions
          whose response bodies are drawn log-uniformly from 1 KB to 1 MB
          (so every decade of size is equally common: many small pages, a
          few downloads), one in ten a POST with a 1-64 KB form body, DNS
          queries, pings and ARP requests between them (so every row of the
          traffic table is exercised), and the attack set (``ATTACKS``,
          requests the bundled rules detect) at known, evenly spaced
          sessions. Each attack session has its own client address and port,
          so an alert is attributed to its attack by the 4-tuple alone.
ground    ``pakemon-xdp read`` over the same capture offline: every attack
truth     must alert there (else the attack set, not the load, is at
          fault) and the benign sessions that alert offline are the false
          alerts the rules would raise anyway.
steps     for each rate (tcpreplay ``--pps N`` and ``--topspeed``), first
          the replay with nothing attached, then with a fresh
          ``pakemon-xdp attach vsrv`` (the sensor's own defaults: ring
          size, stream depth). Interleaving keeps the two runs of a rate
          under the same background load of this shared machine.
measured  per step: frames offered and their rate (tcpreplay's own report),
          attacks alerted / injected (detection rate) and benign sessions
          alerted, samples lost (the largest of the kernel's perf_fail, the
          reader's perf lost and candidates never read: the sensor's
          ``samples lost`` line), the sensor process's CPU (utime + stime
          from /proc/PID/stat, from the first frame sent until its CPU time
          stops moving, i.e. the ring is drained) and the kernel's softirq
          time (/proc/stat, all CPUs, from the first frame sent until 0.2 s
          after the last: the XDP program runs in the receive softirq, at
          the time the frame arrives, not when userland reads it). CPU is
          given as percent of one CPU over the send time, as the paper
          gives "percentage of processor time".
table     the kernel program's per-class counters (IP, TCP, UDP, ICMP,
          OTHER) summed over the attached steps, printed as the paper's
          table (frames, per second of replay, percent), with the capture's
          own class counts times the replays as the check that the kernel
          saw every frame.

softirq time in /proc/stat is machine-wide: other processes' network work
lands in it too. The not-attached runs measure the same replay with the
same background, which is why the figure shows both lines rather than a
difference.

Sans-I/O where it matters: the capture builder, the frame classifier, the
alert attribution (``score_alerts``) and the rate pick for the stability
run are pure functions over bytes and dicts, tested without root; only
``measure_step`` and ``run_load`` touch the lab.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.live_bench import (Run, eve_alerts, offline_alerts, parse_sensor,  # noqa: E402
                              parse_tcpreplay, proc_cpu, run_sender, softnet_dropped,
                              stop_sensor, tcpreplay_argv, wait_drained, TICK)
from pakemon.lab.live import LabError, LiveLab  # noqa: E402
from pakemon.lab.traffic import (CLIENT_MAC, PcapWriter, TcpConnection,  # noqa: E402
                                 dns_exchange, ether, ping_exchange)

PREFIX = "pke10"  # this part's namespaces: pke10-<pid>-<tag>-{cli,srv}
SERVER = "10.2.0.80"
SETTLE_S = 0.2  # softirq work of the last frames, after tcpreplay returns

# Attack requests, each detected by a rule of rules/pakemon.rules (the rule
# name in the comment). The offline read of the capture checks that each
# one alerts; a rule change that breaks one shows as a ground-truth failure,
# not as a load effect.
ATTACKS: list[tuple[str, bytes]] = [
    ("phf", b"GET /cgi-bin/phf?Qalias=x%0a/bin/cat%20/etc/passwd HTTP/1.0"),  # CGI-phf
    ("test-cgi", b"GET /cgi-bin/test-cgi?* HTTP/1.0"),  # CGI-test-cgi
    ("nph-test-cgi", b"GET /cgi-bin/nph-test-cgi?* HTTP/1.0"),  # CGI-nph-test-cgi
    ("administrators.pwd", b"GET /_vti_pvt/administrators.pwd HTTP/1.0"),
    ("iis-unicode", b"GET /scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir HTTP/1.0"),
    ("apache-dos", b"GET ////////////////////////////////////////// HTTP/1.0"),
    ("wwwboard-passwd", b"GET /wwwboard/passwd.txt HTTP/1.0"),  # CGI-wwwboard-passwd
    ("php.cgi", b"GET /cgi-bin/php.cgi?/etc/passwd HTTP/1.0"),  # CGI-php.cgi
    ("campas", b"GET /cgi-bin/campas?%0acat%0a/etc/passwd%0a HTTP/1.0"),  # CGI-campas
    ("glimpse", b"GET /cgi-bin/aglimpse/80|IFS=5;CMD=5mail5x@x.org HTTP/1.0"),
    ("faxsurvey", b"GET /cgi-bin/faxsurvey?/bin/cat%20/etc/passwd HTTP/1.0"),
    ("view-source", b"GET /cgi-bin/view-source?../../../../etc/passwd HTTP/1.0"),
    ("htpasswd", b"GET /admin/.htpasswd HTTP/1.0"),  # HTTP-htpasswd-access
    ("traversal", b"GET /docs/../../../../etc/shadow HTTP/1.0"),  # HTTP-directory-traversal
    ("cfdocs-openfile", b"GET /cfdocs/expeval/openfile.cfm HTTP/1.0"),
    ("double-decode", b"GET /scripts/..%255c../winnt/system32/cmd.exe?/c+dir HTTP/1.0"),
    ("codered", b"GET /default.ida?" + b"N" * 224 + b"%u9090%u6858%ucbd3%u7801 HTTP/1.0"),
    ("msadcs", b"POST /msadc/msadcs.dll HTTP/1.0"),  # IIS-MDAC-RDS-msadcs.dll
    ("showcode", b"GET /msadc/Samples/SELECTOR/showcode.asp?source=/../../x HTTP/1.0"),
    ("global.asa", b"GET /global.asa HTTP/1.0"),  # IIS-global.asa
]

PATHS = ["img", "docs", "news", "static", "blog", "files", "a", "b"]
EXTS = ["html", "css", "js", "png", "jpg", "pdf", "tar.gz"]


# ---- the capture (pure) -------------------------------------------------------

def classify(frame: bytes) -> str:
    """The paper's class of an Ethernet frame: tcp, udp, icmp, ip_other or other.

    The same split as the kernel program (IPv4 and IPv6; VLAN tags are not
    generated here, so none are parsed)."""
    if len(frame) < 14:
        return "other"
    etype = struct.unpack_from("!H", frame, 12)[0]
    if etype == 0x0800 and len(frame) >= 34:
        proto = frame[23]
    elif etype == 0x86DD and len(frame) >= 54:
        proto = frame[20]
    else:
        return "other"
    return {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}.get(proto, "ip_other")


@dataclass
class LoadCapture:
    """What ``build_capture`` wrote, and where the attacks are."""

    path: str
    frames: int = 0
    bytes: int = 0
    sessions: int = 0  # HTTP sessions, attacks included
    classes: dict = field(default_factory=dict)  # ip, tcp, udp, icmp, other -> frames
    attacks: list = field(default_factory=list)  # {name, session, frame, key}
    body_min: int = 0
    body_max: int = 0

    @property
    def attack_keys(self) -> set:
        return {tuple(a["key"]) for a in self.attacks}


def body_size(rnd: random.Random, lo: int = 1024, hi: int = 1 << 20) -> int:
    """Log-uniform in [lo, hi]: each decade of size as likely as the next."""
    return int(round(math.exp(rnd.uniform(math.log(lo), math.log(hi)))))


def _text(rnd: random.Random, n: int) -> bytes:
    # Letters and digits only: a random body must not spell a rule's
    # pattern (they all carry '/', '.', '%' or punctuation), or the benign
    # traffic would alert by chance and blur the false-alert count.
    unit = bytes(rnd.choices(b"abcdefghijklmnopqrstuvwxyz0123456789", k=4096))
    return (unit * (n // 4096 + 1))[:n]


def build_capture(path: Path, benign: int = 1200, attack_repeats: int = 5,
                  seed: int = 2001, arp: bool = True) -> LoadCapture:
    """Write the load capture to ``path``; see the module doc.

    ``benign`` HTTP sessions, ``attack_repeats`` times the whole attack set
    spread evenly among them, a DNS exchange after every 4th session, a
    ping after every 15th, an ARP request after every 40th (unless
    ``arp`` is False: ``tcpreplay --unique-ip`` fails to send non-IP frames
    after the first loop, which would blur the stability run's count).
    """
    rnd = random.Random(seed)
    random.seed(seed)  # TcpConnection draws its initial sequence numbers here
    n_attacks = len(ATTACKS) * attack_repeats
    total = benign + n_attacks
    # Attack i goes to session floor((i + 0.5) * total / n_attacks): evenly
    # spread, never two in a row when benign >= n_attacks (floor, not round:
    # round-half-even would put two attacks in one session at spacing 1).
    slots = ({int((i + 0.5) * total / n_attacks): i for i in range(n_attacks)}
             if n_attacks else {})
    cap = LoadCapture(path=str(path))
    cls = Counter()
    ts = 979_600_000.0
    sizes = []
    with PcapWriter(path) as w:
        def emit(frames):
            nonlocal ts
            for t, f in frames:
                w.write(t, f)
                c = classify(f)
                cls[c] += 1
                cap.frames += 1
                cap.bytes += len(f)
            if frames:
                ts = frames[-1][0] + 0.001

        for s in range(total):
            cport = 1024 + (s * 7919) % 60000
            if s in slots:
                i = slots[s]
                name, line = ATTACKS[i % len(ATTACKS)]
                # An address of its own per attack: the alert's 4-tuple names it.
                client = f"10.66.{i // 250}.{i % 250 + 1}"
                req = line + b"\r\nHost: " + SERVER.encode() + b"\r\nUser-Agent: scanner\r\n\r\n"
                conn = TcpConnection(client, SERVER, cport, 80, ts=ts).open()
                cap.attacks.append({"name": name, "session": s, "frame": cap.frames + 3,
                                    "key": [client, cport, SERVER, 80]})
                conn.send(req)
                conn.send(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                          from_client=False)
                emit(conn.close())
            else:
                client = f"10.1.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
                size = body_size(rnd)
                sizes.append(size)
                path_s = "/" + "/".join(rnd.choice(PATHS) for _ in range(rnd.randint(1, 3)))
                path_s += f"/{rnd.randrange(10 ** 6)}.{rnd.choice(EXTS)}"
                conn = TcpConnection(client, SERVER, cport, 80, ts=ts).open()
                if rnd.random() < 0.1:
                    form = b"q=" + _text(rnd, rnd.randint(1024, 65536))
                    conn.send(f"POST {path_s} HTTP/1.0\r\nHost: {SERVER}\r\n"
                              f"User-Agent: Mozilla/5.0\r\nContent-Type: application/"
                              f"x-www-form-urlencoded\r\nContent-Length: {len(form)}\r\n\r\n"
                              .encode() + form)
                else:
                    conn.send(f"GET {path_s} HTTP/1.0\r\nHost: {SERVER}\r\n"
                              f"User-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n".encode())
                head = (f"HTTP/1.0 200 OK\r\nServer: lab\r\nContent-Type: application/"
                        f"octet-stream\r\nContent-Length: {size}\r\n\r\n").encode()
                conn.send(head + _text(rnd, size), from_client=False)
                emit(conn.close())
            if s % 4 == 3:
                emit(dns_exchange(f"10.1.9.{s % 250 + 1}", "10.2.0.53", 20000 + s % 40000,
                                  rnd.choice(["example.org", "www.keio.ac.jp", "ntp.org"]),
                                  ts=ts))
            if s % 15 == 14:
                emit(ping_exchange(f"10.1.8.{s % 250 + 1}", SERVER, s & 0xFFFF, 1, ts=ts))
            if arp and s % 40 == 39:
                arp = (bytes.fromhex("0001080006040001") + CLIENT_MAC + bytes([10, 1, 7, 1])
                       + bytes(6) + bytes([10, 2, 0, 80]))
                emit([(ts, ether(arp, dst=b"\xff" * 6, ethertype=0x0806))])
    cap.sessions = total
    cap.classes = {"ip": cls["tcp"] + cls["udp"] + cls["icmp"] + cls["ip_other"],
                   "tcp": cls["tcp"], "udp": cls["udp"], "icmp": cls["icmp"],
                   "other": cls["other"] + cls["ip_other"]}
    cap.body_min = min(sizes) if sizes else 0
    cap.body_max = max(sizes) if sizes else 0
    return cap


# ---- scoring (pure) ------------------------------------------------------------

def score_alerts(alerts: Counter, attack_keys: set) -> dict:
    """Attribute alerts (``eve_alerts`` keys) to attack sessions by 4-tuple.

    Returns attacks alerted, alerts on attack sessions, benign sessions
    alerted (false alerts) and the attacks that got none."""
    alerted = set()
    on_attacks = 0
    benign = set()
    for key, n in alerts.items():
        four = (key[2], key[3], key[4], key[5])
        if four in attack_keys:
            alerted.add(four)
            on_attacks += n
        else:
            benign.add(four)
    return {"alerted": len(alerted), "alerts_on_attacks": on_attacks,
            "false_sessions": len(benign), "missed": sorted(attack_keys - alerted)}


def softirq_ticks() -> int:
    """Softirq time of all CPUs (the aggregate ``cpu`` line of /proc/stat)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                return int(line.split()[7])
    return 0


KTABLE = re.compile(r"^(ALL|IP|TCP|UDP|ICMP|OTHER)\s+(\d+)\s+[0-9.]+\s+(\d+)\s*$")


def kernel_classes(stdout: list[str]) -> dict:
    """The kernel counters table of a sensor's output: class -> frames."""
    out = {}
    for line in stdout:
        m = KTABLE.match(line)
        if m and m.group(1).lower() not in out:
            out[m.group(1).lower()] = int(m.group(2))
    return out


def samples_lost(stdout: list[str]) -> int | None:
    for line in stdout:
        m = re.match(r"^samples lost\s+(\d+)", line)
        if m:
            return int(m.group(1))
    return None


# ---- one step (the lab) --------------------------------------------------------

@dataclass
class Step:
    rate: str  # "5000pps" or "topspeed"
    attached: bool
    offered: int = 0
    send_s: float = 0.0
    offered_fps: float = 0.0
    softirq_s: float = 0.0
    softirq_pct: float = 0.0  # of one CPU over the send time
    sensor_cpu_s: float | None = None
    sensor_cpu_pct: float | None = None
    drain_s: float | None = None  # after the sender, until the sensor went idle
    xdp_mode: str = ""
    kernel: dict = field(default_factory=dict)  # all, ip, tcp, udp, icmp, other
    candidates: int = 0
    records: int = 0
    lost: int | None = None
    perf_fail: int = 0
    perf_lost: int = 0
    attacks_injected: int = 0
    attacks_alerted: int | None = None
    detection_pct: float | None = None
    false_sessions: int | None = None
    missed: list = field(default_factory=list)
    backlog_dropped: int = 0
    load1: float = 0.0
    errors: list = field(default_factory=list)


def measure_step(lab: LiveLab, cap: LoadCapture, rate: str, *, attached: bool, workdir: Path,
                 pages: int | None = None, rules: str | None = None,
                 sensor_args: tuple[str, ...] = (),
                 send_timeout: float = 600.0, drain_timeout: float = 180.0) -> Step:
    st = Step(rate=rate, attached=attached, attacks_injected=len(cap.attacks),
              load1=round(os.getloadavg()[0], 2))
    sp = None
    log_dir = workdir / f"logs-{rate}"
    if attached:
        shutil.rmtree(log_dir, ignore_errors=True)
        args = ["--log-dir", str(log_dir), "-q"]
        if pages:
            args += ["--pages", str(pages)]
        if rules:
            args += ["--rules", rules]
        sp = lab.start_sensor(*args, *sensor_args)
        line = next((x for x in sp.stderr if "attached to " in x), "")
        m = re.search(r"\(([a-z]+) XDP", line)
        st.xdp_mode = m.group(1) if m else "?"
        time.sleep(0.3)  # let its loop reach the first poll
    pid = sp.proc.pid if sp else None
    cpu0 = proc_cpu(pid) if pid else None
    drop0 = softnet_dropped()
    soft0 = softirq_ticks()
    t0 = time.monotonic()
    run = Run(scenario="load", sender="tcpreplay", pages=pages or 0, mtu=1500, rate=rate)
    try:
        code, out, wall = run_sender(lab, tcpreplay_argv(Path(cap.path), rate, True),
                                     timeout=send_timeout)
    except LabError as e:
        st.errors.append(str(e))
        code, out, wall = -1, "", time.monotonic() - t0
    t_sent = time.monotonic()
    if code != 0:
        st.errors.append(f"tcpreplay exit {code}: {out.strip()[-300:]}")
    parse_tcpreplay(out, run, wall)
    st.offered, st.send_s = run.offered, run.send_s
    st.offered_fps = run.offered_fps
    time.sleep(SETTLE_S)
    soft = softirq_ticks() - soft0
    st.softirq_s = soft / TICK
    st.backlog_dropped = softnet_dropped() - drop0
    if st.send_s > 0:
        st.softirq_pct = 100.0 * st.softirq_s / st.send_s
    if sp is None:
        return st
    # The ring drains after the sender: wait until the sensor's CPU time
    # stops moving (as bench/live_bench.py does).
    last, t_busy, err = wait_drained(pid, cpu0, t_sent, drain_timeout, "step")
    if err:
        st.errors.append(err)
    if cpu0 and last:
        st.sensor_cpu_s = (sum(last) - sum(cpu0)) / TICK
        st.sensor_cpu_pct = 100.0 * st.sensor_cpu_s / st.send_s if st.send_s > 0 else None
    st.drain_s = round(max(0.0, t_busy - t_sent), 2)
    code, _usage = stop_sensor(sp)
    if code != 0:
        st.errors.append(f"sensor exit {code}: {' | '.join(sp.stderr[-5:])}")
    parse_sensor(sp, run)
    st.errors += run.errors
    st.kernel = kernel_classes(sp.stdout)
    st.candidates, st.records = run.candidates, run.records
    st.perf_fail, st.perf_lost = run.perf_fail, run.perf_lost
    lost = samples_lost(sp.stdout)
    st.lost = lost if lost is not None else run.lost
    sc = score_alerts(eve_alerts(log_dir / "eve.json"), cap.attack_keys)
    st.attacks_alerted = sc["alerted"]
    st.false_sessions = sc["false_sessions"]
    st.missed = [list(k) for k in sc["missed"]]
    st.detection_pct = 100.0 * sc["alerted"] / len(cap.attacks) if cap.attacks else None
    shutil.rmtree(log_dir, ignore_errors=True)
    return st


# ---- the part --------------------------------------------------------------------

FULL_RATES = ["5000", "10000", "20000", "40000", "60000", "80000", "100000", "topspeed"]
QUICK_RATES = ["10000", "30000", "topspeed"]


def rate_label(r: str) -> str:
    return r if r == "topspeed" else f"{int(r)}pps"


def ground_truth(cap: LoadCapture, rules: str | None) -> dict:
    """The offline read of the capture: which attacks alert with no load at all."""
    alerts, info = offline_alerts(Path(cap.path), rules)
    sc = score_alerts(alerts, cap.attack_keys)
    by_name = Counter(a["name"] for a in cap.attacks)
    missed_names = sorted({a["name"] for a in cap.attacks if tuple(a["key"]) in
                           set(map(tuple, sc["missed"]))})
    return {"alerts": sum(alerts.values()), "attacks_alerted": sc["alerted"],
            "attacks_injected": len(cap.attacks), "false_sessions": sc["false_sessions"],
            "missed_names": missed_names, "attack_names": dict(by_name), **info}


def lossless_max(steps: list[dict]) -> float | None:
    """Highest offered frames/s of an attached step that lost nothing and
    detected every attack; None when no step did."""
    ok = [s["offered_fps"] for s in steps if s["attached"] and s["lost"] == 0
          and s["detection_pct"] == 100.0 and not s["errors"]]
    return max(ok) if ok else None


def traffic_table(steps: list[dict], cap: LoadCapture) -> dict:
    """The kernel's class counters summed over the attached steps, against
    the capture's own classes times the number of attached replays."""
    att = [s for s in steps if s["attached"] and s["kernel"]]
    tot = Counter()
    for s in att:
        tot.update(s["kernel"])
    seconds = sum(s["send_s"] for s in att)
    rows = []
    for name in ("ip", "tcp", "udp", "icmp", "other"):
        n = tot.get(name, 0)
        rows.append({"class": name.upper(), "frames": n,
                     "per_s": n / seconds if seconds else 0.0,
                     "pct": 100.0 * n / tot["all"] if tot.get("all") else 0.0,
                     "expected": cap.classes.get(name, 0) * len(att)})
    return {"replays": len(att), "seconds": seconds, "all": tot.get("all", 0),
            "offered": sum(s["offered"] for s in att), "rows": rows}


def run_load(out_dir: Path, quick: bool = False, *, rates: list[str] | None = None,
             benign: int | None = None, attack_repeats: int | None = None,
             pages: int | None = None, rules: str | None = None,
             capture: Path | None = None, sensor_args: tuple[str, ...] = (),
             log=print) -> dict:
    """Parts 2-4. Returns a JSON-able dict; ``status`` "ok", "skipped" or "error"."""
    from pakemon.lab.live import why_unavailable

    res: dict = {"part": "load", "status": "ok"}
    reason = why_unavailable()
    if reason is None and shutil.which("tcpreplay") is None:
        reason = "tcpreplay not found (Debian package tcpreplay; scripts/setup.sh installs it)"
    if reason:
        res.update(status="skipped", reason=reason)
        return res
    rates = rates or (QUICK_RATES if quick else FULL_RATES)
    benign = benign if benign is not None else (250 if quick else 1200)
    attack_repeats = attack_repeats if attack_repeats is not None else (1 if quick else 5)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pakemon-eval-load-"))
    cap_path = capture or workdir / f"load-{benign}-{attack_repeats}.pcap"
    t_start = time.monotonic()
    cap = build_capture(cap_path, benign=benign, attack_repeats=attack_repeats)
    log(f"load: capture {cap.frames} frames, {cap.bytes / 1e6:.1f} MB, {cap.sessions} HTTP "
        f"sessions ({len(cap.attacks)} attacks), bodies {cap.body_min}-{cap.body_max} bytes")
    res["capture"] = {k: v for k, v in asdict(cap).items() if k != "attacks"}
    res["capture"]["attacks"] = len(cap.attacks)
    res["attacks"] = cap.attacks
    res["ground_truth"] = gt = ground_truth(cap, rules)
    log(f"load: offline read: {gt['attacks_alerted']}/{gt['attacks_injected']} attacks "
        f"alerted, {gt['false_sessions']} benign sessions alerted ({gt['wall_s']} s)")
    steps: list[Step] = []
    stop = {}

    def on_term(signum, _frame):
        stop["signal"] = signum
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    lab = LiveLab(tag="load", prefix=PREFIX)
    try:
        lab.up()
        for r in rates:
            label = rate_label(r)
            for attached in (False, True):
                st = measure_step(lab, cap, label, attached=attached, workdir=workdir,
                                  pages=pages, rules=rules, sensor_args=sensor_args)
                steps.append(st)
                log(f"load: {label:>9} {'attached' if attached else 'no XDP  '}: "
                    f"{st.offered} frames at {st.offered_fps:,.0f}/s, softirq "
                    f"{st.softirq_pct:.1f}%"
                    + (f", sensor {st.sensor_cpu_pct or 0:.1f}% CPU, lost {st.lost}, attacks "
                       f"{st.attacks_alerted}/{st.attacks_injected}" if attached else "")
                    + (f"  ERRORS {st.errors}" if st.errors else ""))
                try:
                    lab.assert_nothing_attached()
                except AssertionError as e:
                    st.errors.append(str(e))
    except KeyboardInterrupt:
        res.update(status="error", reason=f"interrupted (signal {stop.get('signal', 'INT')})")
    except (LabError, OSError, subprocess.SubprocessError) as e:
        res.update(status="error", reason=str(e))
    finally:
        try:
            lab.down()
        finally:
            signal.signal(signal.SIGTERM, old_term)
            if capture is None:
                shutil.rmtree(workdir, ignore_errors=True)
    res["steps"] = [asdict(s) for s in steps]
    res["seconds"] = round(time.monotonic() - t_start, 1)
    if not steps:
        return res
    res["table"] = traffic_table(res["steps"], cap)
    res["lossless_max_fps"] = lossless_max(res["steps"])
    res["png"] = plot_load(res, out_dir)
    if res["status"] == "ok" and any(s.errors for s in steps):
        res["status"] = "error"
        res["reason"] = "; ".join(f"{s.rate}: {e}" for s in steps for e in s.errors)
    return res


# ---- figures and markdown ---------------------------------------------------------

def plot_load(res: dict, out_dir: Path) -> dict:
    from bench.evaluate.common import _pyplot

    plt = _pyplot()
    att = [s for s in res["steps"] if s["attached"]]
    bare = [s for s in res["steps"] if not s["attached"]]
    paths = {}
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), dpi=110, sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1.3]})
    xs = [s["offered_fps"] for s in att]
    ax1.plot(xs, [s["detection_pct"] or 0 for s in att], marker="o", label="pakemon-xdp (XDP)")
    ax1.set_ylim(0, 105)
    ax1.set_ylabel("detection rate (%)")
    ax1.set_title("Figure 10: detection rate by load traffic")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="lower left")
    ax2.bar(xs, [s["lost"] or 0 for s in att], width=max(xs) * 0.02 if xs else 1,
            color="#c0504d")
    ax2.set_ylabel("samples lost")
    ax2.set_xlabel("offered load (frames/s, tcpreplay)")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    paths["fig10"] = str(out_dir / "fig10-detection-by-load.png")
    fig.savefig(paths["fig10"])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(xs, [s["sensor_cpu_pct"] or 0 for s in att], marker="o",
            label="sensor process (user+sys)")
    ax.plot(xs, [s["softirq_pct"] for s in att], marker="s", label="softirq, XDP attached")
    ax.plot([s["offered_fps"] for s in bare], [s["softirq_pct"] for s in bare], marker="^",
            linestyle="--", label="softirq, not attached")
    ax.set_xlabel("offered load (frames/s, tcpreplay)")
    ax.set_ylabel("% of one CPU over the send time")
    ax.set_title("Figure 11: CPU use by load traffic")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths["fig11"] = str(out_dir / "fig11-cpu-by-load.png")
    fig.savefig(paths["fig11"])
    plt.close(fig)
    return paths


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _us(seconds, frames) -> str:
    return "-" if seconds is None or not frames else f"{seconds / frames * 1e6:.2f}"


def markdown(res: dict, rel: str = "evaluation") -> str:
    """Sections for Figures 10, 11 and the traffic table."""
    from bench.evaluate.common import markdown_table

    if res.get("status") == "skipped":
        return ("## Figure 10: detection rate under load\n\nNot run: " + res["reason"] + "\n\n"
                "## Figure 11: CPU use under load\n\nNot run (see Figure 10).\n\n"
                "## Traffic table\n\nNot run (see Figure 10).\n")
    out = []
    cap = res["capture"]
    gt = res["ground_truth"]
    att = [s for s in res.get("steps", []) if s["attached"]]
    bare = {s["rate"]: s for s in res.get("steps", []) if not s["attached"]}
    out.append("## Figure 10: detection rate under load\n")
    out.append(
        f"Capture: {cap['frames']:,} frames ({cap['bytes'] / 1e6:.1f} MB), {cap['sessions']:,} "
        f"HTTP sessions with response bodies of {cap['body_min']:,} to {cap['body_max']:,} "
        f"bytes (log-uniform, one in ten a POST with a 1-64 KB form), DNS, ping and ARP "
        f"between them, and {cap['attacks']} attack requests ({len(gt['attack_names'])} "
        f"kinds, each {_times(max(gt['attack_names'].values()))}) at evenly spaced sessions. "
        f"Replayed with `tcpreplay --preload-pcap` from the client namespace into the "
        f"lab's veth; `pakemon-xdp attach vsrv` with its defaults, a fresh sensor per "
        f"step.\n")
    out.append(f"Ground truth (`pakemon-xdp read` over the same capture): "
               f"{gt['attacks_alerted']}/{gt['attacks_injected']} attacks alerted, "
               f"{gt['false_sessions']} benign sessions alerted"
               + (f"; not detected even offline: {', '.join(gt['missed_names'])}"
                  if gt["missed_names"] else "") + ".\n")
    if res.get("status") == "error":
        out.append(f"**Run failed:** {res.get('reason')}\n")
    rows = []
    for s in att:
        rows.append([s["rate"], s["offered"], round(s["offered_fps"]), s["xdp_mode"],
                     f"{s['attacks_alerted']}/{s['attacks_injected']}",
                     _pct(s["detection_pct"]), s["false_sessions"], s["candidates"],
                     s["lost"] if s["lost"] is not None else "-"])
    out.append(markdown_table(["rate", "frames offered", "frames/s", "XDP", "attacks alerted",
                               "detection %", "benign sessions alerted", "candidates",
                               "samples lost"], rows))
    if "fig10" in res.get("png", {}):
        out.append(f"![Figure 10]({rel}/{Path(res['png']['fig10']).name})\n")
    lm = res.get("lossless_max_fps")
    out.append("Highest load with every attack alerted and no sample lost: "
               + (f"**{lm:,.0f} frames/s**" if lm else "**none**") + ".\n")
    top_a = next((s for s in att if s["rate"] == "topspeed"), None)
    top_b = bare.get("topspeed")
    if top_a and top_b and top_b["offered_fps"] > top_a["offered_fps"]:
        out.append(f"The machine's maximum: `tcpreplay --topspeed` sent "
                   f"{top_b['offered_fps']:,.0f} frames/s with nothing attached and "
                   f"{top_a['offered_fps']:,.0f} frames/s with the sensor attached. The "
                   f"receive softirq, where the XDP program and its perf output run, and "
                   f"the sensor process share this machine's {os.cpu_count()} CPUs with "
                   f"the sender, so the sender is slowed by the sensor's share; a "
                   f"sender on another machine would offer more. Most of the softirq "
                   f"share is the perf ring waking the reader at every record (the "
                   f"default); `attach --wakeup-bytes` wakes it per batch of bytes "
                   f"instead (README, Live throughput).\n")
    fails = [s for s in att if s["detection_pct"] != 100.0 or s["lost"]]
    for s in fails:
        why = []
        if s["lost"]:
            why.append(f"{s['lost']:,} samples lost (kernel perf_fail {s['perf_fail']:,}): "
                       "the perf ring filled faster than the reader emptied it, and the "
                       "lost frames' bytes never reached the stream reassembly")
        if s["missed"]:
            missed = {tuple(k) for k in s["missed"]}
            names = Counter(a["name"] for a in res["attacks"] if tuple(a["key"]) in missed)
            why.append(f"{len(s['missed'])} attacks without an alert ("
                       + ", ".join(f"{n} x{c}" for n, c in sorted(names.items())) + ")")
        if s["backlog_dropped"]:
            why.append(f"{s['backlog_dropped']:,} frames dropped at the CPU backlog before XDP")
        out.append(f"- {s['rate']}: " + "; ".join(why or ["see errors"]) + "\n")
    out.append("\n## Figure 11: CPU use under load\n")
    out.append("Same run as Figure 10 (stamped there). Sensor: the `pakemon-xdp attach` "
               "process's user+system time (/proc/PID/stat) "
               "from the first frame sent until its CPU went idle (ring drained). Kernel: "
               "softirq time of all CPUs (/proc/stat) from the first frame sent until 0.2 s "
               "after the last, with the XDP program attached and for the same replay with "
               "nothing attached. Both as percent of one CPU over tcpreplay's send time; "
               "softirq is machine-wide, so other work on the machine adds to both lines.\n")
    rows = []
    for s in att:
        b = bare.get(s["rate"], {})
        rows.append([s["rate"], round(s["offered_fps"]), _pct(s["sensor_cpu_pct"]),
                     _us(s.get("sensor_cpu_s"), s["offered"]), _pct(s["softirq_pct"]),
                     _us(s["softirq_s"], s["offered"]),
                     round(b["offered_fps"]) if b else "-",
                     _pct(b.get("softirq_pct")) if b else "-",
                     _us(b["softirq_s"], b["offered"]) if b else "-",
                     f"{s['drain_s']:.1f}" if s["drain_s"] is not None else "-",
                     s["load1"]])
    out.append(markdown_table(["rate", "frames/s (attached)", "sensor CPU %", "sensor us/frame",
                               "softirq % attached", "softirq us/frame attached",
                               "frames/s (not attached)", "softirq % not attached",
                               "softirq us/frame not attached", "drain s", "load avg before"],
                              rows))
    out.append("At top speed the two replays run at different rates (the sender is slowed "
               "by the sensor), so the per-frame columns are the comparable ones. softirq "
               "time is counted in clock ticks (10 ms): short steps are coarse.\n")
    if "fig11" in res.get("png", {}):
        out.append(f"![Figure 11]({rel}/{Path(res['png']['fig11']).name})\n")
    t = res.get("table")
    out.append("\n## Traffic table (section 4.2)\n")
    if t:
        out.append(f"Same run as Figure 10 (stamped there). The XDP program's per-class "
                   f"frame counters, summed over the "
                   f"{t['replays']} attached replays ({t['seconds']:.1f} s of sending, "
                   f"{t['offered']:,} frames offered, {t['all']:,} frames seen by the "
                   f"kernel). Percent of all frames seen; OTHER is every frame that is "
                   f"none of TCP, UDP, ICMP (here: ARP). `expected` is the capture's own "
                   f"classification times the replays.\n")
        rows = [["ALL", t["all"], round(t["all"] / t["seconds"], 1) if t["seconds"] else 0,
                 "100.00", t["offered"]]]
        for r in t["rows"]:
            rows.append([r["class"], r["frames"], round(r["per_s"], 1), f"{r['pct']:.2f}",
                         r["expected"]])
        out.append(markdown_table(["Protocol", "Frames", "per second", "%", "expected"], rows))
        ok = all(r["frames"] == r["expected"] for r in t["rows"])
        out.append(("PASS" if ok else "FAIL") + ": the kernel counted "
                   + ("exactly the capture's frames by class."
                      if ok else "other figures than the capture holds (frames lost before "
                      "XDP or counted twice).") + "\n")
    return "\n".join(out)
