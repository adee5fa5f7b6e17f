"""`pakemon-xdp attach`: kernel bypass at stream depth, SIGHUP rule reload (root only).

Bypass: once a TCP direction passed --stream-depth, the sensor writes the
flow into the kernel's bypass map and the kernel skips (and counts) the
rest of the connection. Reload: SIGHUP re-reads the rule file; the kernel's
service map follows it in place (which ports are pushed changes), a broken
file keeps the old rules.
"""

from __future__ import annotations

import signal
import socket
import threading

import pytest

from test_sensor_live import lab, stop  # noqa: F401 (fixture)
from xdp_lab import requires_xdp

from pakemon.lab.live import SRV_IP

pytestmark = requires_xdp


def _sink(lab, port: int):
    """A TCP server in the server namespace that reads everything it gets."""
    srv = lab.socket(lab.srv, socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((SRV_IP, port))
    srv.listen(4)
    got = []

    def run():
        conn, _ = srv.accept()
        with conn:
            n = 0
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                n += len(data)
            got.append(n)
            conn.sendall(b"thanks\n")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return srv, t, got


def test_stream_depth_puts_the_flow_in_the_kernel_bypass_map(lab, tmp_path):
    rules = tmp_path / "web.rules"
    rules.write_text('upload tcp * 8080 "never-sent-pattern"\n')
    srv, t, got = _sink(lab, 8080)
    try:
        sensor = lab.start_sensor("--rules", str(rules), "--log-dir", str(tmp_path / "logs"),
                                  "--stream-depth", "1k", "--direction", "both")
        body = b"POST /upload HTTP/1.0\r\n\r\n" + b"x" * 300_000
        chunks = [body[:1400]] + [body[i:i + 60_000] for i in range(1400, len(body), 60_000)]
        assert lab.tcp_exchange(8080, chunks, gap=0.2) == b"thanks\n"
        t.join(5)
        assert got == [len(body)]
        stop(sensor)
    finally:
        srv.close()
    # one direction reached its depth; the other is inspected by no rule:
    # both directions went into the map, and the kernel skipped the rest
    assert "directions bypassed: 1" in "\n".join(sensor.stdout)
    assert sensor.counter("flows bypassed") == 1
    line = next(s for s in sensor.stdout if s.startswith("flows bypassed"))
    assert "2 entries in the map" in line
    bypassed = sensor.counter("bypassed")
    tcp_frames = sensor.counter("TCP")
    assert bypassed > 100, sensor.stdout
    assert sensor.counter("candidates") + bypassed >= tcp_frames - 2  # ARP aside
    assert sensor.counter("candidates") < tcp_frames / 4


def test_sighup_reloads_rules_and_the_kernel_service_keys(lab, tmp_path):
    rules = tmp_path / "udp.rules"
    rules.write_text("first udp * 9001 *\n")
    sensor = lab.start_sensor("--rules", str(rules), "--log-dir", str(tmp_path / "logs"),
                              "--scan", "off")
    assert "1 service keys" in sensor.stderr[-1]
    lab.udp_send(9001, b"one", sport=41001)
    lab.udp_send(9002, b"two", sport=41002)  # no rule: passed over in the kernel
    sensor.wait_for(r"^ALERT first .*\(41001\)", stream="stdout", timeout=10)

    rules.write_text("broken udp *\n")  # a bad file: the old rules stay
    n = len(sensor.stderr)
    sensor.send_signal(signal.SIGHUP)
    sensor.wait_for(r"reload of .* failed: keeping the 1 rules loaded", start=n, timeout=10)
    lab.udp_send(9001, b"three", sport=41003)
    sensor.wait_for(r"^ALERT first .*\(41003\)", stream="stdout", timeout=10)

    rules.write_text("second udp * 9002 *\n")
    n = len(sensor.stderr)
    sensor.send_signal(signal.SIGHUP)
    line = sensor.wait_for(r"^pakemon-xdp: reloaded ", start=n, timeout=10)
    assert "1 rules, 1 service keys (+1 -1)" in line
    lab.udp_send(9001, b"four", sport=41004)  # no longer pushed
    lab.udp_send(9002, b"five", sport=41005)
    sensor.wait_for(r"^ALERT second .*\(41005\)", stream="stdout", timeout=10)
    stop(sensor)
    assert [a.split()[1] for a in sensor.alerts] == ["first", "first", "second"]
    # the kernel pushed exactly the datagrams a rule in force wanted
    assert sensor.counter("candidates") == 3
    assert sensor.counter("UDP") == 5
    assert sensor.counter("passed over") == sensor.counter("ALL") - 3


@pytest.mark.parametrize("direction", ["ingress"])
def test_sigint_stops_like_sigterm(lab, tmp_path, direction):
    sensor = lab.start_sensor("--log-dir", str(tmp_path / "logs"), "--direction", direction)
    assert sensor.stop(signal.SIGINT) == 0
    assert sensor.stderr[-1] == "pakemon-xdp: SIGINT: detaching from vsrv"
    lab.assert_nothing_attached()
