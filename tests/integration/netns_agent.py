"""A helper process for the XDP integration tests, run inside a namespace.

``ip netns exec NS python netns_agent.py`` reads one JSON request per line
on stdin and answers one JSON line on stdout: ``{"ok": result}`` or
``{"error": "SensorError: ..."}``. bcc attaches by interface name in the
current network namespace, so the sensor must live in the server's
namespace; the same script in the client's namespace sends frames.

Requests: {"op": NAME, ...args}. Sensor ops: open, attach, detach, close,
set_rules, configure, counters, collect, lost, bypass, unbypass, block,
unblock, flows, status, detach_interface, service_keys. Traffic ops: send (raw frames on an
interface), udp_listen, udp_received, udp_send, ping.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pakemon.capture import xdp  # noqa: E402
from pakemon.detect.rule_parser import parse_rules  # noqa: E402
from pakemon.detect.ruletree import RuleTree  # noqa: E402


class Agent:
    def __init__(self):
        self.sensor = None
        self.listeners = {}
        self.pending = []  # records read but not yet collected

    # -- sensor --
    def op_open(self, **kw):
        self.sensor = xdp.XdpSensor(**kw)
        return True

    def op_attach(self, ifname, mode="auto", direction="in"):
        a = self.sensor.attach(ifname, mode=mode, direction=direction)
        return {"mode": a.mode, "egress": a.egress, "links": a.dies_with_process}

    def op_detach(self, ifname=None):
        self.sensor.detach(ifname)
        return True

    def op_vanished(self):
        return self.sensor.vanished()

    def op_displaced(self):
        return self.sensor.displaced()

    def op_close(self):
        if self.sensor is not None:
            self.sensor.close()
            self.sensor = None
        return True

    def op_set_rules(self, text):
        tree = RuleTree(parse_rules(text, "test.rules").rules)
        return self.sensor.set_services(tree)

    def op_configure(self, **kw):
        cfg = self.sensor.configure(**kw)
        return {"snaplen": cfg.snaplen, "flags": cfg.flags, "any_ports": cfg.any_ports}

    def op_counters(self):
        return self.sensor.counters()

    def op_collect(self, count=0, timeout=2.0, settle=0.2):
        """Records until `count` arrived and `settle` s passed with no more,
        or `timeout` s in all."""
        out = self.pending
        self.pending = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            recs = self.sensor.poll_records(50)
            if recs:
                out += recs
                quiet_since = time.monotonic()
            elif len(out) >= count and time.monotonic() - quiet_since >= settle:
                break
        return [{"ts": r.ts, "frame": r.frame.hex(), "wire_len": r.wire_len,
                 "flags": r.flags, "hook": r.hook, "ifindex": r.ifindex} for r in out]

    def op_reader(self):
        return [self.sensor.reader, self.sensor.wakeup_bytes]

    def op_lost(self):
        return {str(cpu): n for cpu, n in self.sensor.lost_per_cpu().items()}

    def op_bypass(self, **flow):
        self.sensor.bypass_flow(**flow)
        return True

    def op_unbypass(self, **flow):
        self.sensor.unbypass_flow(**flow)
        return True

    def op_block(self, **flow):
        self.sensor.block_flow(**flow)
        return True

    def op_unblock(self, **flow):
        self.sensor.unblock_flow(**flow)
        return True

    def op_flows(self, kind):
        flows = self.sensor.bypassed_flows() if kind == "bypass" else self.sensor.blocked_flows()
        return [{"key": bytes(k).hex(), "packets": v.packets, "bytes": v.bytes}
                for k, v in flows]

    def op_service_keys(self):
        return sorted(self.sensor.service_keys())

    def op_status(self, ifname):
        st = xdp.interface_status(ifname)
        return {"xdp": [[p.mode, p.prog_id, p.name] for p in st.xdp],
                "tc_egress": list(st.tc_egress), "clsact": st.clsact, "ours": st.ours}

    def op_detach_interface(self, ifname, force=False):
        return xdp.detach_interface(ifname, force=force)

    # -- traffic --
    def op_send(self, ifname, frames, gap=0.0, cpu=None):
        """Send raw frames; with `cpu`, from that CPU (a veth processes what
        it receives on the sender's CPU, so that CPU's perf ring gets it)."""
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        cpus = os.sched_getaffinity(0)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        try:
            s.bind((ifname, 0))
            for h in frames:
                s.send(bytes.fromhex(h))
                if gap:
                    time.sleep(gap)
        finally:
            s.close()
            os.sched_setaffinity(0, cpus)
        return len(frames)

    def op_udp_listen(self, addr, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, port))
        s.setblocking(False)
        self.listeners[port] = [s, 0]
        return True

    def op_udp_received(self, port, wait=0.5):
        s, n = self.listeners[port]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                s.recv(65535)
                n += 1
            except BlockingIOError:
                time.sleep(0.01)
        self.listeners[port][1] = n
        return n

    def op_udp_send(self, addr, port, count, sport=0, payload="ping"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if sport:
                s.bind(("0.0.0.0", sport))
            for _ in range(count):
                s.sendto(payload.encode(), (addr, port))
        finally:
            s.close()
        return count

    def op_ping(self, addr, count=3, timeout=1.0):
        """ICMP echo replies received for `count` requests (a raw socket:
        no ping binary needed)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        s.settimeout(timeout)
        ident = os.getpid() & 0xFFFF
        replies = 0
        try:
            for seq in range(count):
                body = bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big")
                body += b"pakemon"
                csum = _checksum(body)
                s.sendto(body[:2] + csum.to_bytes(2, "big") + body[4:], (addr, 0))
                try:
                    while True:
                        data = s.recv(2048)
                        icmp = data[(data[0] & 15) * 4:]
                        if icmp[0] == 0 and icmp[4:6] == ident.to_bytes(2, "big"):
                            replies += 1
                            break
                except socket.timeout:
                    pass
        finally:
            s.close()
        return replies


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def main():
    agent = Agent()
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        try:
            res = {"ok": getattr(agent, "op_" + op)(**req)}
        except xdp.SensorError as e:
            res = {"error": f"SensorError: {e}"}
        except Exception as e:  # the test reads it; the traceback goes to stderr
            traceback.print_exc()
            res = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()
    agent.op_close()


if __name__ == "__main__":
    main()
