"""The live sensor's metrics, scraped by a real Prometheus (root only).

The lab's two namespaces; the sensor (``pakemon-xdp attach vsrv --metrics``)
serves on the server namespace's loopback, so Prometheus runs in that
namespace too, scraping every second, and the test queries its HTTP API
from a socket made there (``in_netns``). The client namespace sends benign
requests and attacks (HTTP, a BackOrifice datagram, large pings) the whole
time. Once Prometheus has scraped the sensor 3+ times, every PromQL
expression of grafana/dashboards/pakemon.json must return data, as in
test_metrics.py, and pakemon_alerts_total must carry the attacks'
signatures. Prometheus is stopped and the sensor gets SIGINT at the end.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from helpers import dashboard_exprs

from xdp_lab import requires_xdp

from pakemon.lab.live import LiveLab, in_netns

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "dashboards" / "pakemon.json"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

pytestmark = [
    requires_xdp,
    pytest.mark.skipif(PROMETHEUS is None or PROMTOOL is None,
                       reason="prometheus/promtool missing (apt-get install prometheus)"),
]

INSTANCE = "127.0.0.1:9590"  # the sensor's exporter, server namespace
PROM = "127.0.0.1:9090"      # Prometheus, server namespace
PHF = "CGI-phf(CVE-1999-0067)"
BO = "BO-BackOrifice"


def test_live_sensor_metrics_in_prometheus(tmp_path):
    lab = LiveLab().up()
    prom = None
    stop = threading.Event()
    errors: list = []
    traffic = None

    def fetch(url: str) -> bytes:
        with in_netns(lab.srv):  # the socket is made (and connects) in the server ns
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read()

    def query(expr: str) -> list:
        res = json.loads(fetch(f"http://{PROM}/api/v1/query?"
                               + urllib.parse.urlencode({"query": expr})))
        assert res["status"] == "success", (expr, res)
        return res["data"]["result"]

    def send_traffic():
        try:
            while not stop.is_set():
                lab.http_get("/index.html")                    # benign
                lab.http_get("/cgi-bin/phf?Qalias=x")          # attack
                lab.http_get("/_vti_pvt/administrators.pwd")   # attack
                # attack; its overlong UTF-8 raises an HTTP_URI_ENCODING notice
                lab.http_get("/scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir")
                lab.udp_send(31337, b"*!*QWTY?")               # attack
                lab.ping(1200, timeout=1.0)
                stop.wait(0.3)
        except Exception as e:  # surfaced by the main thread
            errors.append(e)

    try:
        lab.start_http()
        sensor = lab.start_sensor("--log-dir", str(tmp_path / "logs"), "-q",
                                  f"--metrics={INSTANCE}")
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: pakemon\n    scrape_interval: 1s\n"
            f"    static_configs:\n      - targets: ['{INSTANCE}']\n")
        log = tmp_path / "prometheus.log"
        with log.open("wb") as lf:
            prom = lab.popen(lab.srv, PROMETHEUS, f"--config.file={cfg}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address={PROM}", "--log.level=warn",
                             stdout=lf, stderr=subprocess.STDOUT)
        traffic = threading.Thread(target=send_traffic, daemon=True)
        traffic.start()

        # The live page passes promtool.
        text = fetch(f"http://{INSTANCE}/metrics")
        chk = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                             capture_output=True, timeout=30)
        assert chk.returncode == 0 and not (chk.stdout + chk.stderr).strip(), \
            (chk.stdout + chk.stderr).decode()

        deadline = time.monotonic() + 30
        while True:  # Prometheus up, 3+ scrapes in 5 s, the attacks and a notice counted
            try:
                n = query(f'count_over_time(pakemon_frames_total{{instance="{INSTANCE}",'
                          'proto="tcp"}[5s])')
                sigs = {r["metric"].get("signature") for r in
                        query(f'pakemon_alerts_total{{instance="{INSTANCE}"}} > 0')}
                notices = query(f'pakemon_notices_total{{instance="{INSTANCE}"}} > 0')
                if n and float(n[0]["value"][1]) >= 3 and {PHF, BO} <= sigs and notices:
                    break
            except (OSError, ValueError):
                pass
            assert prom.poll() is None, log.read_text()
            assert not errors, errors
            assert time.monotonic() < deadline, \
                f"Prometheus did not scrape the sensor's attacks; {log.read_text()}"
            time.sleep(0.5)

        labels = json.loads(fetch(f"http://{PROM}/api/v1/label/instance/values?"
                                  + urllib.parse.urlencode({"match[]": "pakemon_frames_total"})))
        assert INSTANCE in labels["data"]

        exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
        assert len(exprs) >= 10
        empty = [raw for raw in exprs
                 if not query(raw.replace("$instance", INSTANCE)
                              .replace("$__rate_interval", "5s"))]
        assert not empty, f"no data for: {empty}"
        # Kernel-counted frames went up between scrapes.
        rate = query(f'sum(rate(pakemon_frames_total{{instance="{INSTANCE}",proto="ip"}}[5s]))')
        assert float(rate[0]["value"][1]) > 0
        phf = query(f'pakemon_alerts_total{{instance="{INSTANCE}",signature="{PHF}"}}')
        assert phf and float(phf[0]["value"][1]) >= 1

        stop.set()
        traffic.join(timeout=15)
        assert not errors, errors
        assert sensor.stop(signal.SIGINT) == 0, sensor.stderr
        assert "Traceback" not in "\n".join(sensor.stderr)
        lab.assert_nothing_attached()
    finally:
        stop.set()
        if traffic is not None:
            traffic.join(timeout=15)
        try:
            if prom is not None and prom.poll() is None:
                prom.terminate()
                try:
                    prom.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait()
            for sp in lab.sensors:
                if sp.proc.poll() is None:
                    sp.stop(signal.SIGINT)
        finally:
            lab.down()
