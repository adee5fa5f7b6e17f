"""`pakemon-xdp attach --reset` resets alerting TCP connections (root only).

A plain socket server in the server namespace, the sensor attached to the
server's veth in that namespace with ``--reset``. Over IPv4 and over IPv6
(its own raw socket), two connections from the client namespace: a benign one kept open, and one whose request line
matches CGI-phf. The attack connection is reset at both ends (the client's
read fails with ECONNRESET, the server's accepted socket too); the benign
one still carries data both ways; eve.json says "blocked". The sensor stops
on SIGINT with exit 0 and nothing is left attached.
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import time

import pytest
from helpers import eve_alerts
from tcp_server import PORT, Server, wait_until
from xdp_lab import requires_xdp

from pakemon.lab.live import SRV_IP, SRV_IP6, LiveLab

pytestmark = requires_xdp

FAMILIES = {"ipv4": (socket.AF_INET, SRV_IP), "ipv6": (socket.AF_INET6, SRV_IP6)}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_reset_tears_down_the_alerting_connection_only(tmp_path, family):
    fam, addr = FAMILIES[family]
    lab = LiveLab(ipv6=fam == socket.AF_INET6).up()
    server = socks = None
    try:
        server = Server(lab, fam, addr)
        sensor = lab.start_sensor("--log-dir", str(tmp_path), "--reset", "-q")
        benign = lab.socket(lab.cli, fam, socket.SOCK_STREAM)
        attack = lab.socket(lab.cli, fam, socket.SOCK_STREAM)
        socks = (benign, attack)
        for s in socks:
            s.settimeout(5)
            s.connect((addr, PORT))
        bport, aport = benign.getsockname()[1], attack.getsockname()[1]
        b_srv, a_srv = server.conn(bport), server.conn(aport)

        benign.sendall(b"GET /index.html HTTP/1.0\r\n")
        assert benign.recv(100) == b"ok\n"
        attack.sendall(b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n")
        # the client keeps the socket open and reads: the RST ends it
        got = None
        try:
            while True:
                b = attack.recv(100)
                if not b:
                    got = "eof"
                    break
        except ConnectionResetError:
            got = "reset"
        except OSError as e:
            got = f"error {e}"
        # Usually ECONNRESET. Under load (the CI runs two workers) the read
        # has been seen to end with EOF instead: the kernel reports a reset's
        # error once, after which a closed socket reads as EOF. Either way the
        # connection is closed, which the failing write below proves.
        assert got in ("reset", "eof"), got
        assert wait_until(lambda: a_srv["end"] is not None), "the server's socket stayed up"
        assert a_srv["end"] == "reset", a_srv["end"]
        with pytest.raises(OSError) as ei:
            attack.sendall(b"more\r\n")
        assert ei.value.errno in (errno.ECONNRESET, errno.EPIPE)

        # the benign connection, sending slowly, is untouched
        for i in range(3):
            time.sleep(0.2)
            benign.sendall(f"X-Slow-{i}: yes\r\n".encode())
            assert benign.recv(100) == b"ok\n"
        assert b_srv["end"] is None
        assert b_srv["data"].endswith(b"X-Slow-2: yes\r\n")

        assert sensor.stop(signal.SIGINT) == 0, sensor.stderr
        assert "Traceback" not in "\n".join(sensor.stderr)
        assert sensor.counter("resets sent") >= 2  # the exact pair, and a fallback
        assert not any("send errors" in ln and not ln.rstrip().endswith(" 0 send errors")
                       for ln in sensor.stdout), sensor.stdout
        alerts = eve_alerts(tmp_path)
        # (EVE writes IPv6 in full, as Suricata does: compared as addresses)
        assert alerts and all(ev["src_port"] == aport and ipaddress.ip_address(ev["dest_ip"])
                              == ipaddress.ip_address(addr) for ev in alerts), alerts
        assert {ev["alert"]["signature"] for ev in alerts} >= {"CGI-phf(CVE-1999-0067)"}
        assert all(ev["alert"]["action"] == "blocked" for ev in alerts)
        lab.assert_nothing_attached()
    finally:
        try:
            for s in socks or ():
                s.close()
            if server is not None:
                server.close()
        finally:
            lab.down()


def test_without_reset_the_sensor_sends_nothing(tmp_path):
    lab = LiveLab().up()
    server = s = None
    try:
        server = Server(lab)
        sensor = lab.start_sensor("--log-dir", str(tmp_path), "-q")
        s = lab.socket(lab.cli, socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect((SRV_IP, PORT))
        c = server.conn(s.getsockname()[1])
        s.sendall(b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n")
        assert s.recv(100) == b"ok\n"
        time.sleep(0.5)
        s.sendall(b"X-After: 1\r\n")
        assert s.recv(100) == b"ok\n"
        assert c["end"] is None
        assert sensor.stop(signal.SIGINT) == 0, sensor.stderr
        assert not any(line.startswith("resets sent") for line in sensor.stdout)
        alerts = eve_alerts(tmp_path)
        assert alerts and all(ev["alert"]["action"] == "allowed" for ev in alerts), alerts
        lab.assert_nothing_attached()
    finally:
        try:
            if s is not None:
                s.close()
            if server is not None:
                server.close()
        finally:
            lab.down()


def test_suricata_rules_answer_by_their_action(tmp_path):
    """--reset --block with Suricata rules does what their actions say, as in
    Suricata: an `alert` rule's connection is left alone (ET ships every rule
    as alert, INFO and POLICY ones included), a `drop` rule's is blocked in
    the kernel without a RST, a `reject` rule's is reset (and blocked); the
    alerts of both say "blocked" in eve.json, as Suricata's IPS mode logs them."""
    rules = tmp_path / "actions.rules"
    rules.write_text(
        'alert tcp any any -> any 80 (msg:"only alert"; flow:to_server; '
        'content:"/alert-only"; sid:9100001;)\n'
        'drop tcp any any -> any 80 (msg:"drop it"; flow:to_server; '
        'content:"/drop-me"; sid:9100002;)\n'
        'reject tcp any any -> any 80 (msg:"reject it"; flow:to_server; '
        'content:"/reject-me"; sid:9100003;)\n')
    lab = LiveLab().up()
    server = None
    socks = {}
    try:
        server = Server(lab)
        sensor = lab.start_sensor("--log-dir", str(tmp_path / "logs"), "--rules", str(rules),
                                  "--reset", "--block", "-q")
        for name in ("alert", "drop", "reject"):
            s = lab.socket(lab.cli, socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(3)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect((SRV_IP, PORT))
            socks[name] = (s, server.conn(s.getsockname()[1]))
        for name, (s, c) in socks.items():
            s.sendall(f"GET /{name}-{'only' if name == 'alert' else 'me'} HTTP/1.0\r\n".encode())
        # the alert rule's connection carries on both ways
        s, c = socks["alert"]
        assert s.recv(100) == b"ok\n"
        for i in range(3):
            time.sleep(0.2)
            s.sendall(f"X-More-{i}: yes\r\n".encode())
            assert s.recv(100) == b"ok\n"
        assert c["end"] is None and c["data"].endswith(b"X-More-2: yes\r\n")
        # the reject rule's is reset at the server
        assert wait_until(lambda: socks["reject"][1]["end"] is not None)
        assert socks["reject"][1]["end"] == "reset"
        # the drop rule's: nothing more reaches the server, and no RST came
        s, c = socks["drop"]
        time.sleep(0.3)
        before = c["data"]
        s.sendall(b"X-After-Block: 1\r\n")
        time.sleep(0.5)
        assert c["data"] == before and c["end"] is None
        assert sensor.stop(signal.SIGINT) == 0, sensor.stderr
        assert sensor.counter("alerts only") == 1
        assert sensor.counter("flows blocked") == 2
        actions = {ev["alert"]["signature_id"]: ev["alert"]["action"]
                   for ev in eve_alerts(tmp_path / "logs")}
        assert actions == {9100001: "allowed", 9100002: "blocked", 9100003: "blocked"}
        lab.assert_nothing_attached()
    finally:
        try:
            for s, _ in socks.values():
                s.close()
            if server is not None:
                server.close()
        finally:
            lab.down()
