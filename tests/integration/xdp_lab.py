"""Root-only XDP tests: two namespaces joined by a veth pair, a real sensor.

Layout of a ``Lab``::

    netns pkx-<pid>-<n>-a                  netns pkx-<pid>-<n>-b
    pkxa 192.0.2.1  <---- veth ---->  pkxb 192.0.2.2   (XDP, tc egress)
    client agent: sends frames        server agent: XdpSensor, UDP listeners

Both agents are ``netns_agent.py`` processes under ``ip netns exec`` (bcc
attaches by name in its own namespace). IPv6 is disabled on both ends so
the kernel sends nothing of its own (no DAD, router or MLD messages) and
the counters count exactly the frames a test sends. Addresses are from
TEST-NET-1 (RFC 5737) and never leave the namespaces.

Teardown runs even when a test fails: it closes the sensor, kills the
agents, asserts that ``ip -d link`` and ``tc filter`` show no program left
on the veth, and deletes both namespaces.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pakemon.lab.live import tcx_egress

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AGENT = HERE / "netns_agent.py"
IP_A, IP_B = "192.0.2.1", "192.0.2.2"
IF_A, IF_B = "pkxa", "pkxb"
AGENT_TIMEOUT = 60.0  # seconds for one request (compiling takes ~2.5 s)

_counter = itertools.count()


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "XDP tests need root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "XDP tests need iproute2 (ip, tc)"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "XDP tests need bcc (python3-bpfcc; run make setup)"
    if not Path(f"/lib/modules/{os.uname().release}/build").exists():
        return "XDP tests need kernel headers (run make setup)"
    return None


def run(*cmd: str, check: bool = True) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


class AgentError(Exception):
    pass


class Agent:
    """A netns_agent.py process; ``call(op, **args)`` returns its result."""

    def __init__(self, ns: str, log: Path) -> None:
        self.ns = ns
        self.log = log
        self._log_f = open(log, "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(AGENT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_f,
            text=True, cwd=ROOT)

    def call(self, op: str, timeout: float = AGENT_TIMEOUT, **args):
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AgentError(f"{op}: no answer in {timeout} s (log {self.log})")
        line = self.proc.stdout.readline()
        if not line:
            raise AgentError(f"{op}: agent died: {self.log.read_text()[-2000:]}")
        res = json.loads(line)
        if "error" in res:
            raise AgentError(res["error"])
        return res["ok"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self._log_f.close()

    def kill(self) -> None:
        """SIGKILL: what a crashed sensor looks like (nothing cleaned up)."""
        self.proc.kill()
        self.proc.wait()
        self._log_f.close()


def remove_stale_namespaces() -> None:
    """Delete pkx-<pid>-* namespaces of test runs whose process is gone
    (a run killed before its teardown); their veths and programs go too."""
    for line in run("ip", "netns", "list", check=False).splitlines():
        m = re.match(r"^pkx-(\d+)-", line)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            run("ip", "netns", "del", line.split()[0], check=False)
        except PermissionError:
            pass


class Lab:
    def __init__(self, tmp: Path) -> None:
        remove_stale_namespaces()
        n = next(_counter)
        self.ns_a = f"pkx-{os.getpid()}-{n}-a"
        self.ns_b = f"pkx-{os.getpid()}-{n}-b"
        self.tmp = tmp
        self.agents: list[Agent] = []
        run("ip", "netns", "add", self.ns_a)
        run("ip", "netns", "add", self.ns_b)
        for ns in (self.ns_a, self.ns_b):
            run("ip", "netns", "exec", ns, "sysctl", "-qw",
                "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        run("ip", "link", "add", IF_A, "netns", self.ns_a, "type", "veth",
            "peer", "name", IF_B, "netns", self.ns_b)
        for ns, ifname, addr in ((self.ns_a, IF_A, IP_A), (self.ns_b, IF_B, IP_B)):
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "link", "set", ifname, "up")
        self.mac_a = self._mac(self.ns_a, IF_A)
        self.mac_b = self._mac(self.ns_b, IF_B)
        self.client = self.agent(self.ns_a, "client")
        self.server = self.agent(self.ns_b, "server")

    @staticmethod
    def _mac(ns: str, ifname: str) -> str:
        return json.loads(run("ip", "-n", ns, "-j", "link", "show", "dev", ifname))[0]["address"]

    def agent(self, ns: str, name: str) -> Agent:
        a = Agent(ns, self.tmp / f"{name}-{len(self.agents)}.log")
        self.agents.append(a)
        return a

    def send(self, frames, gap: float = 0.0, cpu: int | None = None) -> int:
        """Send raw frames from the client's end; they arrive on pkxb."""
        return self.client.call("send", ifname=IF_A, frames=[bytes(f).hex() for f in frames],
                                gap=gap, cpu=cpu)

    def send_from_server(self, frames) -> int:
        """Send raw frames out of pkxb (through its tc egress hook)."""
        return self.server.call("send", ifname=IF_B, frames=[bytes(f).hex() for f in frames])

    def link_state(self) -> str:
        """What ip and tc show attached to pkxb."""
        link = run("ip", "-n", self.ns_b, "-d", "link", "show", "dev", IF_B, check=False)
        tc = run("tc", "-n", self.ns_b, "filter", "show", "dev", IF_B, "egress", check=False)
        return link + tc + tcx_egress(self.ns_b, IF_B)

    def assert_nothing_attached(self) -> None:
        state = self.link_state()
        assert "prog/xdp" not in state and "xdpgeneric" not in state, state
        assert "pk_" not in state, state

    def close(self) -> None:
        try:
            for a in self.agents:
                if a.proc.poll() is None:
                    try:
                        a.call("close", timeout=15)
                    except Exception:
                        pass
                a.close()
            self.assert_nothing_attached()
        finally:
            run("ip", "netns", "del", self.ns_a, check=False)
            run("ip", "netns", "del", self.ns_b, check=False)


# ---- fixtures (test modules import them: this directory has no conftest,
# whose module name would shadow tests/conftest.py for `from conftest import`)

requires_xdp = pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A namespace pair with agents on both ends; no sensor yet."""
    lab = Lab(tmp_path_factory.mktemp("xdp"))
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def sensor_lab(lab):
    """``lab`` with an XdpSensor attached natively to pkxb (both directions)."""
    lab.server.call("open")
    lab.server.call("attach", ifname=IF_B, mode="native", direction="both")
    return lab


# ---- frame builders (scapy; the decoder's tests use the same) -------------

def eth(lab, payload, src=None, dst=None):
    from scapy.layers.l2 import Ether

    return Ether(src=src or lab.mac_a, dst=dst or lab.mac_b) / payload


def counter_delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}
