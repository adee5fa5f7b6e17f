"""`pakemon-xdp attach` with Snort/Suricata rules (root only).

The kernel's service maps come from the Suricata rules' ports ($HTTP_PORTS,
a DNS port), HTTP request and response buffers alert on real traffic
through the kernel, and what the sensor wrote live equals what `read` finds
in a capture of the same traffic.
"""

from __future__ import annotations

import os
import signal
import time

from helpers import eve_alerts, read_eve
from live_netns import Capture
from test_sensor_live import (  # noqa: F401 (lab: fixture)
    alert_tally, lab, offline_alerts, stop)
from xdp_lab import requires_xdp

from pakemon.lab.live import SRV_IF

pytestmark = requires_xdp

RULES = """\
alert http $HOME_NET any -> $HOME_NET $HTTP_PORTS (msg:"phf in uri"; \
flow:established,to_server; http.uri; content:"/cgi-bin/phf"; sid:9000001; rev:1;)
alert http $HOME_NET $HTTP_PORTS -> $HOME_NET any (msg:"marker in body"; \
flow:established,to_client; file_data; content:"pakemon-secret-marker"; sid:9000002; rev:1;)
alert udp any any -> any 5353 (msg:"evil query"; content:"|04|evil"; nocase; sid:9000003;)
"""


def test_suricata_rules_alert_live_as_offline(lab, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "page.html").write_text("<html>pakemon-secret-marker</html>\n")
    (www / "index.html").write_text("<html>nothing here</html>\n")
    rules = tmp_path / "s.rules"
    rules.write_text(RULES)
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text('HOME_NET: "[198.51.100.0/24,10.0.0.0/8]"\nHTTP_PORTS: "[80,8080]"\n')
    lab.start_http(8080, directory=www)
    cap = Capture(lab, lab.srv, SRV_IF)
    try:
        sensor = lab.start_sensor("--log-dir", str(tmp_path / "live"), "--direction", "both",
                                  "--rules", str(rules), "--vars", str(vars_file))
        lab.http_get("/index.html", port=8080)
        lab.http_get("/cgi-bin/%70hf?x", port=8080, split=4)
        lab.http_get("/page.html", port=8080)
        lab.udp_send(5353, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04EVIL\x03com\x00"
                     b"\x00\x01\x00\x01")
        lab.udp_send(5353, b"\x12\x35\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04good\x03com\x00"
                     b"\x00\x01\x00\x01")
        # every alert before stopping: the last frames read may be held a
        # moment for time order across the CPUs' rings
        for name in ("evil query", "phf in uri", "marker in body"):
            sensor.wait_for(rf"^ALERT {name}", stream="stdout", timeout=10)
        stop(sensor)
        cap.drain(0.3)
        cap.write_pcap(tmp_path / "capture.pcap")
    finally:
        cap.close()
    live = alert_tally(tmp_path / "live")
    sids = sorted(k[0] for k in live.elements())
    assert sids == ["evil query", "marker in body", "phf in uri"], live
    offline = offline_alerts(tmp_path / "capture.pcap", tmp_path / "offline", "--rules",
                             str(rules), "--vars", str(vars_file))
    assert live == offline
    assert sensor.counter("perf lost") == 0
    # EVE's flow object: the same flow, direction and client side live as
    # in the capture; the server's side may count fewer packets live (the
    # kernel merges a run of its header-only segments into one record)
    live_rec = _alert_records(tmp_path / "live")
    off_rec = _alert_records(tmp_path / "offline")
    assert sorted(live_rec) == sorted(off_rec)
    for name, on in live_rec.items():
        off = off_rec[name]
        assert on["direction"] == off["direction"], name
        lf, of = on["flow"], off["flow"]
        for k in ("src_ip", "dest_ip", "src_port", "dest_port"):
            assert lf.get(k) == of.get(k), (name, k)
        assert (lf["pkts_toserver"], lf["bytes_toserver"]) == (
            of["pkts_toserver"], of["bytes_toserver"]), name
        assert 0 <= lf["pkts_toclient"] <= of["pkts_toclient"], name
        assert 0 <= lf["bytes_toclient"] <= of["bytes_toclient"], name
    assert live_rec["phf in uri"]["direction"] == "to_server"
    assert live_rec["marker in body"]["direction"] == "to_client"
    assert live_rec["marker in body"]["flow"]["pkts_toclient"] >= 2  # SYN-ACK, the response


def _alert_records(log_dir) -> dict:
    """The EVE alert records of a log, by signature (one each here)."""
    return {ev["alert"]["signature"]: ev for ev in eve_alerts(log_dir)}


def test_both_directions_read_from_two_rings_keep_the_wire_order(lab, tmp_path):
    """The client's frames come through XDP and the server's through tc
    egress, on whichever CPUs ran them, into per-CPU rings read one after
    another. Here the client sends from CPU 0 and the server answers from
    CPU 1, and the sensor is held stopped meanwhile, so each ring holds a
    side of every conversation when it reads them. Merged in kernel-time
    order, every connection reads as the wire carried it: each response
    alerts, and the stream stage notes nothing odd (a SYN after its SYN-ACK,
    ACKs of data not yet seen) on these plain connections.

    Read in ring order, the frames were not in time order here (the
    server's CPU's ring first, with the answers, then the client's with the
    handshakes and requests), though this stream stage copes with that much
    mixing."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "page.html").write_text("<html>pakemon-secret-marker</html>\n")
    rules = tmp_path / "s.rules"
    # every frame alerts, so the alerts show the order the pipeline got them
    rules.write_text(RULES + 'alert tcp any any <> any 8080 (msg:"frame"; sid:9000004;)\n')
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text('HOME_NET: "[198.51.100.0/24,10.0.0.0/8]"\nHTTP_PORTS: "[80,8080]"\n')
    server = lab.start_http(8080, directory=www)
    sensor = lab.start_sensor("--log-dir", str(tmp_path / "live"), "--direction", "both",
                              "--rules", str(rules), "--vars", str(vars_file))
    n = 30
    cpus = sorted(os.sched_getaffinity(0))
    mine = set(cpus)
    os.kill(sensor.pid, signal.SIGSTOP)
    try:
        if len(cpus) > 1:
            os.sched_setaffinity(server.pid, {cpus[1]})
            os.sched_setaffinity(0, {cpus[0]})
        for _ in range(n):
            assert lab.http_get("/page.html", port=8080).endswith("200 OK")
    finally:
        os.sched_setaffinity(0, mine)
        os.kill(sensor.pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while sum(line.startswith("ALERT marker in body") for line in sensor.stdout) < n:
        assert time.monotonic() < deadline, sensor.stdout[-5:]
        time.sleep(0.05)
    stop(sensor)
    events = read_eve(tmp_path / "live")
    alerts = [e for e in events if e["event_type"] == "alert"]
    assert sum(e["alert"]["signature"] == "marker in body" for e in alerts) == n
    fed = [e["timestamp"] for e in alerts if e["alert"]["signature"] == "frame"]
    assert len(fed) == sensor.counter("records read") >= 10 * n
    assert fed == sorted(fed)
    assert [e for e in events if e["event_type"] == "anomaly"] == []
    assert sensor.counter("late records") == 0
    assert sensor.counter("perf lost") == 0
