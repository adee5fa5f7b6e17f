"""`pakemon-xdp attach` with Snort/Suricata rules (root only).

The kernel's service maps come from the Suricata rules' ports ($HTTP_PORTS,
a DNS port), HTTP request and response buffers alert on real traffic
through the kernel, and what the sensor wrote live equals what `read` finds
in a capture of the same traffic.
"""

from __future__ import annotations

from live_netns import Capture
from test_sensor_live import eve_alerts, lab, offline_alerts, stop  # noqa: F401 (fixture)
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
        # every alert before stopping: the rings of two CPUs (the UDP query,
        # the page's response) are read in no set order, so the last frame
        # sent is not the last one read
        for name in ("evil query", "phf in uri", "marker in body"):
            sensor.wait_for(rf"^ALERT {name}", stream="stdout", timeout=10)
        stop(sensor)
        cap.drain(0.3)
        cap.write_pcap(tmp_path / "capture.pcap")
    finally:
        cap.close()
    live = eve_alerts(tmp_path / "live" / "eve.json")
    sids = sorted(k[0] for k in live.elements())
    assert sids == ["evil query", "marker in body", "phf in uri"], live
    offline = offline_alerts(tmp_path / "capture.pcap", tmp_path / "offline", "--rules",
                             str(rules), "--vars", str(vars_file))
    assert live == offline
    assert sensor.counter("perf lost") == 0
