"""``pakemon-xdp lab``: the live sensor against a real server, in two namespaces.

What ``make demo`` runs (as root)::

    netns pkl-<pid>-<n>-cli                     netns pkl-<pid>-<n>-srv
    vcli 198.51.100.1, .3  <==== veth ====>  vsrv 198.51.100.2
    curl, ping, a UDP datagram                python -m http.server 80
                                              pakemon-xdp attach vsrv (XDP ingress,
                                              tc egress), a child process

The client sends real requests through this machine's kernel: benign ones
and the paper's attacks (phf, the IIS unicode traversal, FrontPage's
administrators.pwd), a datagram to BackOrifice's port 31337, a large ping
and one so large the kernel fragments it. Then the sensor gets SIGINT and
its alerts and counters table are shown. Addresses are TEST-NET-2 (RFC
5737) and exist only inside the two namespaces, which are deleted at exit,
on Ctrl-C and on SIGTERM too (the XDP program goes with its interface).

``LiveLab`` is also the integration tests' harness (tests/integration/
test_sensor_*.py): namespaces, the HTTP server, the sensor as a child
process (``SensorProcess``), traffic from the client namespace, and the
check that nothing stays attached.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pakemon.decode.decoder import checksum

__all__ = ["LiveLab", "SensorProcess", "LabError", "run_lab", "add_lab_command",
           "CLI_IF", "SRV_IF", "CLI_IP", "CLI_IP2", "SRV_IP", "CLI_IP6", "SRV_IP6"]

CLI_IF, SRV_IF = "vcli", "vsrv"
CLI_IP, CLI_IP2, SRV_IP = "198.51.100.1", "198.51.100.3", "198.51.100.2"
CLI_IP6, SRV_IP6 = "2001:db8:5100::1", "2001:db8:5100::2"  # LiveLab(ipv6=True); RFC 3849
PREFIX = "pkl"
ROOT = Path(__file__).resolve().parents[2]
CLONE_NEWNET = 0x40000000
ATTACH_TIMEOUT = 90.0  # seconds for the sensor to compile and attach

_ns_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


class LabError(RuntimeError):
    pass


def _run(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise LabError(f"{' '.join(cmd)}: {p.stderr.strip() or f'exit {p.returncode}'}")
    return p


@contextlib.contextmanager
def in_netns(name: str):
    """The calling thread in network namespace ``name`` for the body."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET):
                e = ctypes.get_errno()
                raise OSError(e, f"setns {name}: {os.strerror(e)}")
            try:
                yield
            finally:
                _libc.setns(own, CLONE_NEWNET)
        finally:
            os.close(target)
    finally:
        os.close(own)


def why_unavailable() -> str | None:
    """None when a lab can run here, else why not."""
    if os.geteuid() != 0:
        return "the live lab needs root (network namespaces, XDP)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"the live lab needs iproute2 (`{tool}` not found)"
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "network namespaces unsupported here"
    return None


def remove_stale_namespaces(prefix: str = PREFIX) -> None:
    """Delete <prefix>-<pid>-* namespaces whose process is gone."""
    pat = re.compile(rf"^{re.escape(prefix)}-(\d+)-")
    for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = pat.match(name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            _run("ip", "netns", "del", name, check=False)
        except PermissionError:
            pass


def tcx_egress(ns: str, ifname: str) -> str:
    """Names of the programs on ``ifname``'s tcx egress hook in network
    namespace ``ns``, a line each ("" when it is gone). Debian 12's tc and
    bpftool predate tcx links (Linux 6.6) and do not show them: this is the
    kernel's answer to BPF_PROG_QUERY, asked from inside the namespace."""
    from pakemon.capture import xdp

    with in_netns(ns):
        try:
            names = xdp.tcx_egress_names(socket.if_nametoindex(ifname))
        except OSError:
            return ""
    return "".join(f"{n}\n" for n in names)


class SensorProcess:
    """``pakemon-xdp attach`` as a child; its output read by two threads."""

    def __init__(self, argv: list[str], env: dict | None = None) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
                                     env=env, start_new_session=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._cv = threading.Condition()
        self._threads = [threading.Thread(target=self._pump, args=(f, buf), daemon=True)
                         for f, buf in ((self.proc.stdout, self.stdout),
                                        (self.proc.stderr, self.stderr))]
        for t in self._threads:
            t.start()

    def _pump(self, f, buf) -> None:
        for line in f:
            with self._cv:
                buf.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, pattern: str, stream: str = "stderr", timeout: float = 30.0,
                 start: int = 0) -> str:
        """The first line (from index ``start``) matching ``pattern``; LabError
        if the process ends or ``timeout`` passes first."""
        rx = re.compile(pattern)
        buf = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in buf[start:]:
                    if rx.search(line):
                        return line
                start = len(buf)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LabError(f"sensor: no line matching {pattern!r} in {timeout:g} s; "
                                   f"stderr: {' | '.join(self.stderr[-10:])}")
                if self.proc.poll() is not None and all(not t.is_alive()
                                                         for t in self._threads):
                    raise LabError(f"sensor exited ({self.proc.returncode}) before "
                                   f"{pattern!r}: {' | '.join(self.stderr[-10:])}")
                self._cv.wait(min(left, 0.2))

    def wait_ready(self, timeout: float = ATTACH_TIMEOUT) -> str:
        return self.wait_for(r"attached to ", timeout=timeout)

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        """Send ``sig``, wait for the exit (SIGKILL after ``timeout``); the code."""
        self.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: what a crashed sensor looks like (nothing detached)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)

    @property
    def alerts(self) -> list[str]:
        return [line for line in self.stdout if line.startswith("ALERT ")]

    def counter(self, name: str) -> int:
        """A figure of the final counters table (``name   value`` lines)."""
        rx = re.compile(rf"^{re.escape(name)}\s+(\d+)(\s|$)")
        for line in self.stdout:
            m = rx.match(line)
            if m:
                return int(m.group(1))
        raise KeyError(name)


class LiveLab:
    """Two namespaces joined by a veth pair; see the module doc."""

    def __init__(self, tag: str | None = None, prefix: str = PREFIX, ipv6: bool = False) -> None:
        base = f"{prefix}-{os.getpid()}-{tag or next(_ns_counter)}"
        self.ipv6 = ipv6
        self.cli = f"{base}-cli"
        self.srv = f"{base}-srv"
        self._made: list[str] = []
        self._procs: list[subprocess.Popen] = []
        self.sensors: list[SensorProcess] = []
        self._tmp = None

    # -- lifetime --------------------------------------------------------
    def up(self) -> "LiveLab":
        remove_stale_namespaces()
        try:
            for ns in (self.cli, self.srv):
                _run("ip", "netns", "add", ns)
                self._made.append(ns)
            c, s = self.cli, self.srv
            for ns in (c, s):
                if self.ipv6:
                    # Static addresses only: no link-local address, no DAD
                    # (an address usable at once), no router solicitation.
                    _run("ip", "netns", "exec", ns, "sysctl", "-qw",
                         "net.ipv6.conf.default.addr_gen_mode=1",
                         "net.ipv6.conf.default.accept_dad=0",
                         "net.ipv6.conf.default.router_solicitations=0")
                else:
                    # No IPv6: no DAD, router or MLD frames of the kernel's own.
                    _run("ip", "netns", "exec", ns, "sysctl", "-qw",
                         "net.ipv6.conf.all.disable_ipv6=1",
                         "net.ipv6.conf.default.disable_ipv6=1")
            _run("ip", "-n", c, "link", "add", CLI_IF, "type", "veth",
                 "peer", "name", SRV_IF, "netns", s)
            _run("ip", "-n", c, "addr", "add", f"{CLI_IP}/24", "dev", CLI_IF)
            _run("ip", "-n", c, "addr", "add", f"{CLI_IP2}/24", "dev", CLI_IF)
            _run("ip", "-n", s, "addr", "add", f"{SRV_IP}/24", "dev", SRV_IF)
            if self.ipv6:
                _run("ip", "-n", c, "addr", "add", f"{CLI_IP6}/64", "dev", CLI_IF, "nodad")
                _run("ip", "-n", s, "addr", "add", f"{SRV_IP6}/64", "dev", SRV_IF, "nodad")
            for ns, dev in ((c, CLI_IF), (s, SRV_IF)):
                _run("ip", "-n", ns, "link", "set", "lo", "up")
                _run("ip", "-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop every process started here, delete the namespaces."""
        for sp in self.sensors:
            if sp.proc.poll() is None:
                sp.stop(signal.SIGTERM, timeout=20)
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self._procs = []
        while self._made:
            _run("ip", "netns", "del", self._made.pop(), check=False)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "LiveLab":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    # -- processes -------------------------------------------------------
    def exec(self, ns: str, *cmd: str, check: bool = True,
             timeout: float = 30) -> subprocess.CompletedProcess:
        return _run("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)

    def popen(self, ns: str, *cmd: str, **kw) -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)
        self._procs.append(p)
        return p

    def socket(self, ns: str, family: int, type_: int, proto: int = 0) -> socket.socket:
        """A socket of namespace ``ns`` (it keeps it for life)."""
        with in_netns(ns):
            return socket.socket(family, type_, proto)

    def start_http(self, port: int = 80, directory: str | os.PathLike | None = None):
        """python -m http.server on SRV_IP:port in the server namespace."""
        if directory is None:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="pakemon-lab-")
            directory = Path(self._tmp.name) / "www"
            directory.mkdir(exist_ok=True)
            (directory / "index.html").write_text(
                "<html><body><h1>pakemon lab</h1><p>It works.</p></body></html>\n")
        p = self.popen(self.srv, sys.executable, "-m", "http.server", str(port),
                       "--bind", SRV_IP, "--directory", str(directory),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_port(port, proc=p)
        return p

    def wait_port(self, port: int, timeout: float = 15.0, proc=None) -> None:
        """Until something accepts on SRV_IP:port (tried from the server side)."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.socket(self.srv, socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(0.5)
                s.connect((SRV_IP, port))
                return
            except OSError:
                if proc is not None and proc.poll() is not None:
                    raise LabError(f"the server on port {port} exited ({proc.returncode})")
                if time.monotonic() > deadline:
                    raise LabError(f"nothing listens on {SRV_IP}:{port} after {timeout:g} s")
                time.sleep(0.05)
            finally:
                s.close()

    def start_sensor(self, *args: str, iface: str = SRV_IF, wait: bool = True,
                     timeout: float = ATTACH_TIMEOUT) -> SensorProcess:
        """``pakemon-xdp attach IFACE ARGS...`` in the server namespace."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        sp = SensorProcess(["ip", "netns", "exec", self.srv, sys.executable, "-m",
                            "pakemon.cli", "attach", iface, *args], env=env)
        self.sensors.append(sp)
        if wait:
            sp.wait_ready(timeout)
        return sp

    def cli_command(self, ns: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``pakemon-xdp ARGS`` (detach, status...) in namespace ``ns``."""
        return self.exec(ns, sys.executable, "-m", "pakemon.cli", *args, check=False,
                         timeout=timeout)

    # -- what is attached ------------------------------------------------
    def link_state(self) -> str:
        link = _run("ip", "-n", self.srv, "-d", "link", "show", "dev", SRV_IF, check=False)
        tc = _run("tc", "-n", self.srv, "filter", "show", "dev", SRV_IF, "egress", check=False)
        return link.stdout + tc.stdout + tcx_egress(self.srv, SRV_IF)

    def assert_nothing_attached(self) -> None:
        state = self.link_state()
        if "prog/xdp" in state or "xdpgeneric" in state or "xdpdrv" in state or "pk_" in state:
            raise AssertionError(f"a program is still attached to {SRV_IF}:\n{state}")

    # -- traffic from the client namespace ---------------------------------
    def tcp_exchange(self, port: int, chunks, gap: float = 0.05, src: str = CLI_IP,
                     timeout: float = 5.0) -> bytes:
        """Connect from the client to SRV_IP:port, send ``chunks`` one write
        each (TCP_NODELAY, ``gap`` seconds apart: one segment each), half-close,
        read the answer to EOF."""
        s = self.socket(self.cli, socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.bind((src, 0))
            s.connect((SRV_IP, port))
            try:
                for i, chunk in enumerate(chunks):
                    if i and gap:
                        time.sleep(gap)
                    s.sendall(chunk)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server answered and closed (or reset) early: read what came
            got = []
            while True:
                try:
                    data = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not data:
                    break
                got.append(data)
            return b"".join(got)
        finally:
            s.close()

    def http_get(self, path: str, split: int = 0, port: int = 80, src: str = CLI_IP) -> str:
        """GET ``path`` (sent as is, no normalisation); the status line.
        ``split`` > 0 sends the request in segments of that many bytes."""
        req = f"GET {path} HTTP/1.0\r\nHost: {SRV_IP}\r\nUser-Agent: pakemon-lab\r\n\r\n"
        raw = req.encode("latin-1")
        chunks = [raw[i:i + split] for i in range(0, len(raw), split)] if split else [raw]
        resp = self.tcp_exchange(port, chunks, src=src)
        return resp.split(b"\r\n", 1)[0].decode("latin-1", "replace")

    def curl(self, path: str, port: int = 80) -> str:
        """curl from the client (``--path-as-is``: no dot-segment squashing);
        the HTTP status, or why curl failed."""
        p = self.exec(self.cli, "curl", "-sS", "--path-as-is", "--max-time", "5", "-o",
                      "/dev/null", "-w", "%{http_code}", f"http://{SRV_IP}:{port}{path}",
                      check=False)
        return p.stdout.strip() if p.returncode == 0 else f"curl failed: {p.stderr.strip()}"

    def udp_send(self, port: int, payload: bytes, src: str = CLI_IP, sport: int = 0) -> None:
        s = self.socket(self.cli, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((src, sport))
            s.sendto(payload, (SRV_IP, port))
        finally:
            s.close()

    def ping(self, size: int, src: str = CLI_IP, timeout: float = 2.0) -> bool:
        """One ICMP echo of ``size`` payload bytes; True if answered. Over
        1472 bytes the client's kernel fragments it. Uses ping(8) when
        installed, else a raw socket."""
        if shutil.which("ping"):
            p = self.exec(self.cli, "ping", "-n", "-q", "-c", "1", "-W", str(int(timeout)),
                          "-s", str(size), "-I", src, SRV_IP, check=False)
            return p.returncode == 0
        s = self.socket(self.cli, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            s.bind((src, 0))
            s.settimeout(timeout)
            ident = os.getpid() & 0xFFFF
            body = bytes((i + 8) & 0xFF for i in range(size))
            msg = bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + b"\0\1" + body
            msg = msg[:2] + checksum(msg).to_bytes(2, "big") + msg[4:]
            s.sendto(msg, (SRV_IP, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    return False
                icmp = data[(data[0] & 15) * 4:]
                if icmp[:1] == b"\0" and icmp[4:6] == ident.to_bytes(2, "big"):
                    return True
            return False
        finally:
            s.close()


# ---- the demo --------------------------------------------------------------

# (what, how, the signatures it must raise)
def _steps(lab: LiveLab, use_curl: bool):
    get = lab.curl if use_curl else lab.http_get
    tool = "curl" if use_curl else "GET"
    return [
        (f"{tool} /index.html (benign)", lambda: get("/index.html"), []),
        (f"{tool} /cgi-bin/phf?Qalias=x", lambda: get("/cgi-bin/phf?Qalias=x"),
         ["CGI-phf(CVE-1999-0067)"]),
        (f"{tool} /scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir",
         lambda: get("/scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir"),
         ["IIS-unicode-c0af(CVE-2000-0884)"]),
        (f"{tool} /_vti_pvt/administrators.pwd", lambda: get("/_vti_pvt/administrators.pwd"),
         ["IIS-administrator.pwd"]),
        ("GET /cgi-bin/phf in 7-byte TCP segments (from .3)",
         lambda: lab.http_get("/cgi-bin/phf", split=7, src=CLI_IP2),
         ["CGI-phf(CVE-1999-0067)"]),
        ("UDP datagram to port 31337", lambda: lab.udp_send(31337, b"*!*QWTY?") or "sent",
         ["BO-BackOrifice"]),
        ("ping -s 1200", lambda: "reply" if lab.ping(1200) else "no reply",
         ["ICMP-echo-large"]),
        ("ping -s 3000 from .3 (fragmented by the kernel)",
         lambda: "reply" if lab.ping(3000, src=CLI_IP2) else "no reply",
         ["ICMP-echo-large"]),
    ]


def run_lab(args) -> int:
    from ..sensor import EXIT_SENSOR

    reason = why_unavailable()
    if reason:
        print(f"pakemon-xdp lab: {reason}", file=sys.stderr)
        return EXIT_SENSOR
    out = sys.stdout
    stop = {}

    def on_term(signum, _frame):
        stop["signal"] = signum
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    lab = LiveLab()
    status = 0
    try:
        print(f"== lab: namespaces {lab.cli} ({CLI_IP}, {CLI_IP2}) and {lab.srv} ({SRV_IP}), "
              f"veth {CLI_IF} <-> {SRV_IF}", file=out, flush=True)
        lab.up()
        lab.start_http(80)
        print(f"== {lab.srv}: python -m http.server 80 --bind {SRV_IP}", file=out, flush=True)
        # The sensor runs from the project root: hand it absolute paths.
        sensor_args = ["--log-dir", str(Path(args.log_dir).resolve()), "--direction", "both"]
        if args.rules:
            sensor_args += ["--rules", str(Path(args.rules).resolve())]
        if args.mode:
            sensor_args += ["--mode", args.mode]
        print(f"== {lab.srv}: pakemon-xdp attach {SRV_IF} {' '.join(sensor_args)}",
              file=out, flush=True)
        t0 = time.monotonic()
        sensor = lab.start_sensor(*sensor_args)
        for line in sensor.stderr:
            print(f"   {line}", file=out)
        print(f"   (compiled and attached in {time.monotonic() - t0:.1f} s)", file=out)
        use_curl = shutil.which("curl") is not None
        print(f"== traffic from {lab.cli}", file=out, flush=True)
        expected = []
        for what, act, sigs in _steps(lab, use_curl):
            result = act()
            print(f"   {what:<58} -> {result}", file=out, flush=True)
            expected += sigs
        time.sleep(0.5)  # the last records cross the perf ring
        print("== SIGINT to the sensor; its output:", file=out, flush=True)
        rc = sensor.stop(signal.SIGINT)
        for line in sensor.stdout:
            print(f"   {line}", file=out)
        for line in sensor.stderr[1:]:
            print(f"   {line}", file=out)
        got = [a.split()[1] for a in sensor.alerts]
        missing = list(expected)
        for sig in got:
            if sig in missing:
                missing.remove(sig)
        lab.assert_nothing_attached()
        print(f"== sensor exit code {rc}; {len(got)} alerts; logs in {args.log_dir}/",
              file=out)
        if rc != 0 or missing:
            status = 1
            if missing:
                print(f"== MISSING expected alerts: {', '.join(missing)}", file=out)
        else:
            print(f"== all {len(expected)} expected alerts seen; nothing left attached",
                  file=out)
    except KeyboardInterrupt:
        print("\n== interrupted", file=out)
        status = 130 if stop.get("signal") != signal.SIGTERM else 143
    except (LabError, AssertionError, OSError) as e:
        print(f"pakemon-xdp lab: {e}", file=sys.stderr)
        status = EXIT_SENSOR
    finally:
        # Ctrl-C from here on must not skip the cleanup.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            lab.down()
            print(f"== teardown: {lab.cli} and {lab.srv} deleted", file=out, flush=True)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
    return status


def add_lab_command(sub, fmt, epilog: str) -> None:
    from ..cli import _path  # (cli calls this while it builds its parser)

    lab = sub.add_parser(
        "lab", help="demo: the live sensor against real traffic in two namespaces (root)",
        description="Make a client and a server network namespace joined by a veth pair, "
        "run an HTTP server and the XDP sensor in the server's, send benign requests and "
        "attacks from the client's (curl, UDP, ping), stop the sensor and show its alerts "
        "and counters. Everything is deleted at exit. Exit 1 if an expected alert is "
        "missing.", epilog=epilog, formatter_class=fmt)
    lab.add_argument("--log-dir", type=_path, default=Path("pakemon-lab-logs"), metavar="DIR",
                     help="the sensor's log directory (default ./pakemon-lab-logs)")
    lab.add_argument("--rules", type=_path, metavar="FILE",
                     help="rule file (default: the bundled rules)")
    lab.add_argument("--mode", choices=("auto", "native", "generic"),
                     help="XDP mode for the sensor (default auto)")
    lab.set_defaults(func=run_lab)
