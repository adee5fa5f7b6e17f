"""`pakemon-xdp attach` live equals `pakemon-xdp read` offline (root only).

Real traffic through this machine's kernel: a client namespace talks to a
python http.server (and UDP/ICMP) in a server namespace, where the sensor
runs as a child process (``ip netns exec SRV pakemon-xdp attach vsrv``).
An AF_PACKET socket on the server's veth records the same traffic; the
alerts the sensor wrote live (eve.json) must equal those `pakemon-xdp read`
finds in that capture. Teardown stops the sensor with SIGTERM (exit 0) and
asserts nothing is left attached to the veth.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest
from helpers import eve_alerts, read_eve
from live_netns import Capture
from tcp_server import Server, wait_until
from xdp_lab import requires_xdp

from pakemon.lab.live import CLI_IP, CLI_IP2, SRV_IF, SRV_IP, LiveLab

pytestmark = requires_xdp


@pytest.fixture
def lab():
    lab = LiveLab().up()
    try:
        yield lab
        for sp in lab.sensors:
            if sp.proc.poll() is None:
                assert sp.stop(signal.SIGTERM) == 0, sp.stderr
    finally:
        try:
            lab.assert_nothing_attached()
        finally:
            lab.down()


def alert_tally(log_dir) -> Counter:
    """How many times each (signature, proto, addresses, ports) alerted."""
    return Counter((ev["alert"]["signature"], ev["proto"], ev["src_ip"], ev.get("src_port"),
                    ev["dest_ip"], ev.get("dest_port")) for ev in eve_alerts(log_dir))


def offline_alerts(pcap, log_dir, *args) -> Counter:
    r = subprocess.run([sys.executable, "-m", "pakemon.cli", "read", str(pcap), "--log-dir",
                        str(log_dir), "-q", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return alert_tally(log_dir)


def stop(sensor) -> None:
    assert sensor.stop(signal.SIGTERM) == 0, sensor.stderr
    assert "Traceback" not in "\n".join(sensor.stderr)
    assert any(line.startswith("kernel sensor on vsrv") for line in sensor.stdout)


def unserved_tcp_port(lo: int = 40000) -> int:
    """The first port from ``lo`` that no bundled rule has as a TCP
    destination: frames to it are a reverse direction to the kernel."""
    from pakemon import abi
    from pakemon.capture.xdp import service_keys
    from pakemon.cli import build_parser, load_rules_args
    from pakemon.detect.ruletree import RuleTree

    rs = load_rules_args(build_parser().parse_args(["read", "-"]))
    keys, _ = service_keys(RuleTree(rs.rules))
    port = lo
    while (socket.IPPROTO_TCP, abi.Dir.DST, port) in keys:
        port += 1
    return port


def pipeline_counter(sensor, name) -> int:
    rx = re.compile(rf"^\s*(\d+)\s+{re.escape(name)}$")
    for line in sensor.stdout:
        m = rx.match(line)
        if m:
            return int(m.group(1))
    return 0


# wakeup: the perf rings wake the reader at every record (default), or once
# 64 KiB came in; this light traffic then never reaches the watermark and
# is read at the reader's 20 ms poll
@pytest.mark.parametrize("wakeup", [[], ["--wakeup-bytes", "64k"]], ids=["per-record", "64k"])
def test_http_attacks_over_real_tcp_alert_live_as_offline(lab, tmp_path, wakeup):
    lab.start_http(80)
    cap = Capture(lab, lab.srv, SRV_IF)
    try:
        sensor = lab.start_sensor("--log-dir", str(tmp_path / "live"), "--direction", "both",
                                  *wakeup)
        status = [
            lab.http_get("/index.html"),
            lab.http_get("/cgi-bin/phf?Qalias=x%0a/bin/cat%20/etc/passwd"),
            lab.http_get("/scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir"),
            # split over 5-byte segments: only reassembly sees the pattern
            lab.http_get("/_vti_pvt/administrators.pwd", split=5, src=CLI_IP2),
            lab.http_get("/index.html", split=3),
        ]
        assert [s.split()[1] for s in status] == ["200", "404", "404", "404", "200"]
        # a pipelined keep-alive-less second request on one connection
        lab.tcp_exchange(80, [b"GET /index.html HTTP/1.0\r\n\r\n", b"GET /cgi-bin/test-cgi?* "
                              b"HTTP/1.0\r\n\r\n"])
        # each expected alert before stopping: a record can be held back a
        # moment for time order across the CPUs' rings
        for name in ("CGI-phf(CVE-1999-0067)", "CGI-phf-newline(CVE-1999-0067)",
                     "IIS-unicode-c0af(CVE-2000-0884)", "IIS-administrator.pwd",
                     "CGI-test-cgi(CVE-1999-0070)"):
            sensor.wait_for(rf"^ALERT {re.escape(name)}", stream="stdout", timeout=10)
        stop(sensor)
        cap.drain(0.3)
        n = cap.write_pcap(tmp_path / "capture.pcap")
    finally:
        cap.close()
    assert n > 30
    live = alert_tally(tmp_path / "live")
    offline = offline_alerts(tmp_path / "capture.pcap", tmp_path / "offline")
    assert live == offline
    sigs = {k[0] for k in live}
    assert {"CGI-phf(CVE-1999-0067)", "CGI-phf-newline(CVE-1999-0067)",
            "IIS-unicode-c0af(CVE-2000-0884)", "IIS-administrator.pwd"} <= sigs, sigs
    assert all(k[2] in (CLI_IP, CLI_IP2) and k[4] == SRV_IP and k[5] == 80 for k in live)
    # the server's side came as headers only, and nothing was lost
    assert sensor.counter("header-only") > 10
    assert sensor.counter("perf lost") == 0 and sensor.counter("truncated bytes") == 0
    # every candidate read; the records read also count the merged ranges
    # userland took out of the kernel's pending map itself (a range quiet
    # for the sweep's 0.5 s, as the wait for the alerts can leave one)
    swept = int(re.search(r"(\d+) more taken by userland", "".join(sensor.stdout)).group(1))
    assert sensor.counter("candidates") == sensor.counter("records read") - swept
    # a server frame can be lost on the way from the kernel or come late:
    # live, no client segment is judged by the server's side (it would drop
    # a real one)
    assert not any("ACK_UNSENT" in line for line in sensor.stdout + sensor.stderr)


def test_fragments_made_by_the_kernel_are_reassembled_live_as_offline(lab, tmp_path):
    cap = Capture(lab, lab.srv, SRV_IF)
    try:
        sensor = lab.start_sensor("--log-dir", str(tmp_path / "live"))
        # 4000-byte datagrams: three fragments each on a 1500-byte MTU
        lab.udp_send(31337, b"B" * 4000)  # BO-BackOrifice: any payload
        lab.udp_send(27444, b"A" * 3500 + b"l44adsl")  # the pattern is in the last fragment
        assert lab.ping(3000)  # fragmented echo request (and reply)
        assert lab.ping(1200, src=CLI_IP2)  # not fragmented
        sensor.wait_for(r"^ALERT ICMP-echo-large .*198\.51\.100\.3", stream="stdout",
                        timeout=10)
        stop(sensor)
        cap.drain(0.3)
        cap.write_pcap(tmp_path / "capture.pcap")
    finally:
        cap.close()
    live = alert_tally(tmp_path / "live")
    offline = offline_alerts(tmp_path / "capture.pcap", tmp_path / "offline")
    assert live == offline
    assert Counter(k[0] for k in live) == Counter({
        "BO-BackOrifice": 1, "DDOS-Trin00-master-to-daemon(CVE-2000-0138)": 1,
        "ICMP-echo-large": 2})
    # ingress only: 3 + 3 + 3 fragments of the requests
    assert sensor.counter("fragments") == 9
    assert pipeline_counter(sensor, "defrag_reassembled") == 3


def test_block_drops_the_rest_of_an_alerting_flow(lab, tmp_path):
    sensor = lab.start_sensor("--log-dir", str(tmp_path / "live"), "--block", "--scan", "off")
    lab.udp_send(31337, b"first", sport=45000)
    sensor.wait_for(r"^ALERT BO-BackOrifice .*\(45000\)", stream="stdout", timeout=10)
    lab.udp_send(31337, b"second", sport=45000)  # same flow: dropped in the kernel
    lab.udp_send(31337, b"other", sport=45001)  # another flow: passes, alerts
    sensor.wait_for(r"^ALERT BO-BackOrifice .*\(45001\)", stream="stdout", timeout=10)
    stop(sensor)
    assert len(sensor.alerts) == 2
    assert sensor.counter("blocked") == 1
    assert sensor.counter("flows blocked") == 2
    # each alert's flow is dropped from then on: its EVE action says so
    assert [ev["alert"]["action"] for ev in eve_alerts(tmp_path / "live")] == \
        ["blocked", "blocked"]


def test_a_flood_between_an_attacks_halves_does_not_hide_it_live(lab, tmp_path):
    """Real connections: the attack connection sends half its request, then
    more connections than the session table holds (``--max-sessions 64``)
    each leave a request open, so the table evicts the attack connection;
    then its second half. The sensor resumes the evicted session where the
    server was and alerts; the server really read the whole request."""
    server = Server(lab, answer=False)
    socks = []
    try:
        sensor = lab.start_sensor("--log-dir", str(tmp_path), "--max-sessions", "64", "-q")
        attack = lab.socket(lab.cli, socket.AF_INET, socket.SOCK_STREAM)
        socks.append(attack)
        attack.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        attack.connect((SRV_IP, 80))
        aport = attack.getsockname()[1]
        attack.sendall(b"GET /cgi-b")
        time.sleep(0.2)
        for _ in range(150):
            s = lab.socket(lab.cli, socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.connect((SRV_IP, 80))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.5)
        attack.sendall(b"in/phf?Qalias=x HTTP/1.0\r\n\r\n")
        read = server.conn(aport)
        wait_until(lambda: read["data"].endswith(b"\r\n\r\n"))
        assert read["data"] == b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n"
        time.sleep(0.3)
        stop(sensor)
        assert pipeline_counter(sensor, "stream_evicted") >= 80
        assert pipeline_counter(sensor, "stream_resumed_after_eviction") >= 1
        alerts = read_eve(tmp_path)
        phf = [a for a in alerts if a["event_type"] == "alert"
               and a["alert"]["signature"] == "CGI-phf(CVE-1999-0067)"]
        assert [a["src_port"] for a in phf] == [aport]
        resumed = [a for a in alerts if a["event_type"] == "anomaly"
                   and "resumes" in json.dumps(a)]
        assert any(a.get("src_port") == aport for a in resumed), resumed
    finally:
        for s in socks:
            s.close()
        server.close()


def test_a_wakeup_watermark_past_a_quarter_of_the_ring_is_cut_and_said(lab, tmp_path):
    sensor = lab.start_sensor("--log-dir", str(tmp_path), "--pages", "1",
                              "--wakeup-bytes", "64k")
    # one 4 KiB page per CPU: a wakeup must come while there is room left
    sensor.wait_for(r"^pakemon-xdp: warning: --wakeup-bytes 65536: at most a quarter of "
                    r"the ring, 1024$", timeout=5)
    stop(sensor)


def test_an_attack_after_a_large_response_on_the_same_connection_alerts_live(lab, tmp_path):
    """A real keep-alive connection: a 2 MB answer (the server's stack sends
    it as large segments through the tc egress hook, which the kernel merges
    into ranges), then the attack on the same connection. The merged ranges
    must leave the stream stage where the server was. (No offline twin:
    a packet capture's ring frames cannot hold the stack's 64 KB segments.)"""
    import threading

    ls = lab.socket(lab.srv, socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((SRV_IP, 80))
    ls.listen(4)
    read = []

    def serve():
        s, _ = ls.accept()
        with s:
            read.append(s.recv(4096))
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n" + b"b" * 2_000_000)
            data = b""
            while not data.endswith(b"\r\n\r\n"):
                more = s.recv(4096)
                if not more:
                    break
                data += more
            read.append(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = lab.socket(lab.cli, socket.AF_INET, socket.SOCK_STREAM)
    # Not an ephemeral port the kernel picks: 1,230 of them are service
    # ports of the bundled rules (RPC's 32771:34000 and others), and the
    # server's segments to one are rightly pushed whole, not header-only
    # (a CI run drew one).
    c.bind((CLI_IP, unserved_tcp_port()))
    try:
        sensor = lab.start_sensor("--log-dir", str(tmp_path / "live"), "--direction", "both")
        c.connect((SRV_IP, 80))
        c.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        got = 0
        while got < 2_000_000 + 44:
            chunk = c.recv(65536)
            assert chunk, "the server closed early"
            got += len(chunk)
        c.sendall(b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n")
        t.join(10)
        assert read[1] == b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n"
        sensor.wait_for(r"^ALERT CGI-phf\(CVE-1999-0067\)", stream="stdout", timeout=10)
        stop(sensor)
    finally:
        c.close()
        ls.close()
    live = alert_tally(tmp_path / "live")
    assert [k[0] for k in live] == ["CGI-phf(CVE-1999-0067)"]
    # the answer's segments went header-only (merged into ranges or not:
    # how many merge depends on how often the client's ACKs came between
    # them; the merging itself is pinned in test_xdp_coalesce)
    table = "\n".join(sensor.stdout)
    assert sensor.counter("header-only") > 2_000_000 // 65536, table
    assert sensor.counter("perf lost") == 0, table
