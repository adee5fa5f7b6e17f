"""The Prometheus exporter (pakemon/output/metrics.py) and the Grafana
dashboard, against Debian's real promtool and prometheus (no root needed).

The end-to-end test starts a Prometheus on loopback scraping an exporter in
this process every second, over a Pipeline fed the demo capture in a loop,
then evaluates every PromQL expression of grafana/dashboards/pakemon.json
through Prometheus' HTTP API and requires data from each.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from helpers import dashboard_exprs

from pakemon.capture import open_capture
from pakemon.detect.rule_parser import load_rules
from pakemon.output.metrics import MetricsExporter, add_metrics_option, parse_addr
from pakemon.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pakemon" / "lab" / "demo.pcap"
RULES = ROOT / "rules" / "pakemon.rules"
DASHBOARD = ROOT / "grafana" / "dashboards" / "pakemon.json"

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
need_promtool = pytest.mark.skipif(PROMTOOL is None,
                                   reason="promtool missing (apt-get install prometheus)")
need_prometheus = pytest.mark.skipif(PROMETHEUS is None,
                                     reason="prometheus missing (apt-get install prometheus)")


def _frames():
    with open_capture(DEMO) as r:
        return [(ts, lt, bytes(f)) for ts, lt, f in r]


FRAMES = _frames()
SPAN = FRAMES[-1][0] - FRAMES[0][0] + 1.0


def _pipeline():
    return Pipeline(load_rules(RULES).rules)


def _feed(pipe, round_no: int, exporter=None) -> None:
    """One pass over the demo capture, shifted in time so passes follow each other."""
    t0 = time.perf_counter()
    off = round_no * SPAN
    for ts, lt, f in FRAMES:
        pipe.feed(ts + off, f, lt)
    pipe.flush()
    if exporter is not None:
        exporter.observe(time.perf_counter() - t0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _promtool_check(text: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                          capture_output=True, timeout=30)


# ---- without Prometheus ---------------------------------------------------

def test_parse_addr_and_option():
    import argparse

    assert parse_addr("127.0.0.1:9590") == ("127.0.0.1", 9590)
    assert parse_addr("[::1]:9100") == ("::1", 9100)
    assert parse_addr(":9590") == ("127.0.0.1", 9590)
    for bad in ("9590", "host:port", "1.2.3.4:70000"):
        with pytest.raises(ValueError):
            parse_addr(bad)
    p = argparse.ArgumentParser()
    add_metrics_option(p)
    assert p.parse_args([]).metrics is None
    assert p.parse_args(["--metrics"]).metrics == "127.0.0.1:9590"
    assert p.parse_args(["--metrics", "0.0.0.0:9000"]).metrics == "0.0.0.0:9000"
    assert MetricsExporter.from_args(p.parse_args([])) is None


def test_pipeline_values():
    pipe = _pipeline()
    exp = MetricsExporter(pipe)
    _feed(pipe, 0, exp)
    s = _samples(exp.text().decode())
    st = pipe.stats
    for proto in ("ip", "tcp", "udp", "icmp", "other"):
        assert s[f'pakemon_frames_total{{proto="{proto}"}}'] == getattr(st, proto)
    assert s['pakemon_bytes_total{proto="all"}'] == st.bytes
    assert s["pakemon_capture_candidates_total"] == st.frames
    assert s["pakemon_rules_loaded"] == len(pipe.tree.rules)
    assert s["pakemon_rules_last_reload_success"] == 1
    assert s["pakemon_batch_seconds_count"] == 1
    assert "process_cpu_seconds_total" in s and "process_resident_memory_bytes" in s
    assert sum(v for k, v in s.items() if k.startswith("pakemon_alerts_total")) == \
        sum(st.alerts.values()) > 0
    for kind, n in st.notices.items():
        assert s[f'pakemon_notices_total{{kind="{kind}"}}'] == n
    exp.record_reload(False, when=123.0)
    s = _samples(exp.text().decode())
    assert s["pakemon_rules_last_reload_success"] == 0
    assert s["pakemon_rules_last_reload_timestamp_seconds"] == 123.0


def test_log_losses_are_exported(tmp_path):
    """A disk refusing the logs shows in the metrics, not only on stderr."""
    import errno
    import os

    from pakemon import output
    from pakemon.output import LogSet

    pipe = _pipeline()
    exp = MetricsExporter(pipe)
    logs = LogSet(tmp_path)
    exp.update(pipe, logs=logs)
    assert _samples(exp.text().decode())["pakemon_log_entries_lost_total"] == 0
    real = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    output.os.write = full
    try:
        for ts, lt, f in FRAMES:
            logs.write_many(pipe.feed(ts, f, lt))
        logs.write_many(pipe.flush())
    finally:
        output.os.write = real
    s = _samples(exp.text().decode())
    alerts = sum(pipe.stats.alerts.values())
    notices = sum(pipe.stats.notices.values())
    # an alert goes to three logs, a notice to two
    assert s["pakemon_log_entries_lost_total"] == 3 * alerts + 2 * notices > 0
    assert s["pakemon_syslog_messages_dropped_total"] == 0
    logs.close()


def test_alert_labels_bounded_and_monotonic():
    pipe = _pipeline()
    exp = MetricsExporter(pipe, top_n=3)
    pipe.stats.alerts.update({"a": 5, "b": 4, "c": 3, "d": 2})
    s = _samples(exp.text().decode())
    assert {k for k in s if k.startswith("pakemon_alerts_total")} == {
        'pakemon_alerts_total{signature="a"}', 'pakemon_alerts_total{signature="b"}',
        'pakemon_alerts_total{signature="c"}', 'pakemon_alerts_total{signature="other"}'}
    assert s['pakemon_alerts_total{signature="other"}'] == 2
    # "e" overtakes the labelled ones: it is summed in other, which only grows.
    pipe.stats.alerts.update({"e": 100})
    s = _samples(exp.text().decode())
    assert s['pakemon_alerts_total{signature="other"}'] == 102
    assert 'pakemon_alerts_total{signature="e"}' not in s


class FakeSensor:
    def __init__(self):
        self.closed = False
        self.c = {"frames": 10, "bytes": 1000, "ip_frames": 9, "ip_bytes": 900,
                  "tcp_frames": 5, "tcp_bytes": 500, "udp_frames": 3, "udp_bytes": 300,
                  "icmp_frames": 1, "icmp_bytes": 100, "other_frames": 1, "other_bytes": 100,
                  "candidates": 7, "passed_over": 3, "bypassed": 2, "blocked": 1,
                  "perf_fail": 4, "perf_lost": 4, "rejected": 0, "late": 2}

    def counters(self):
        if self.closed:
            raise RuntimeError("sensor closed")
        return dict(self.c)


def test_kernel_counters_preferred():
    pipe = _pipeline()
    _feed(pipe, 0)
    sensor = FakeSensor()
    exp = MetricsExporter()
    exp.update(pipe, sensor)
    s = _samples(exp.text().decode())
    assert s['pakemon_frames_total{proto="tcp"}'] == 5
    assert s['pakemon_bytes_total{proto="udp"}'] == 300
    assert s['pakemon_bytes_total{proto="all"}'] == 1000
    assert s["pakemon_capture_candidates_total"] == 7
    assert s["pakemon_capture_bypassed_total"] == 2
    assert s["pakemon_capture_blocked_total"] == 1
    assert s["pakemon_capture_lost_total"] == 4
    assert s["pakemon_capture_late_total"] == 2
    sensor.closed = True  # the last values read are kept
    assert _samples(exp.text().decode())["pakemon_capture_candidates_total"] == 7


@need_promtool
def test_promtool_check_metrics():
    pipe = _pipeline()
    exp = MetricsExporter(pipe)
    exp.update(pipe, FakeSensor())
    _feed(pipe, 0, exp)
    r = _promtool_check(exp.text())
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        (r.stdout + r.stderr).decode()


def test_dashboard_shape():
    d = json.loads(DASHBOARD.read_text())
    assert d["schemaVersion"] >= 39
    var = {v["name"]: v for v in d["templating"]["list"]}["instance"]
    assert var["definition"] == "label_values(pakemon_frames_total, instance)"
    exprs = dashboard_exprs(d)
    for needle in ("pakemon_frames_total", "process_cpu_seconds_total", "topk(",
                   "pakemon_capture_candidates_total", "pakemon_capture_bypassed_total",
                   "pakemon_capture_lost_total", "pakemon_capture_late_total",
                   "pakemon_memory_cap_bytes",
                   "pakemon_stream_sessions_active"):
        assert any(needle in e for e in exprs), needle


# ---- with a real Prometheus ------------------------------------------------

def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@need_prometheus
@need_promtool
def test_prometheus_scrapes_and_dashboard_queries(tmp_path):
    pipe = _pipeline()
    exp = MetricsExporter(pipe)
    host, port = exp.start("127.0.0.1:0")
    instance = f"{host}:{port}"
    stop = threading.Event()
    errors: list = []

    def feeder():
        n = 0
        try:
            while not stop.is_set():
                _feed(pipe, n, exp)
                exp.update(pipe)
                n += 1
                stop.wait(0.2)
        except Exception as e:  # surfaced by the main thread
            errors.append(e)

    prom_port = _free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: pakemon\n    scrape_interval: 1s\n"
        f"    static_configs:\n      - targets: ['{instance}']\n")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    feed_thread = threading.Thread(target=feeder, daemon=True)
    feed_thread.start()
    api = f"http://127.0.0.1:{prom_port}"
    try:
        # The scraped text passes promtool as served over HTTP.
        with urllib.request.urlopen(f"http://{instance}/metrics", timeout=5) as r:
            text = r.read()
        chk = _promtool_check(text)
        assert chk.returncode == 0 and not (chk.stdout + chk.stderr).strip(), \
            (chk.stdout + chk.stderr).decode()

        def query(expr: str) -> list:
            q = urllib.parse.urlencode({"query": expr})
            res = _get(f"{api}/api/v1/query?{q}")
            assert res["status"] == "success", (expr, res)
            return res["data"]["result"]

        deadline = time.monotonic() + 25
        while True:  # Prometheus up, and 3+ scrapes of the exporter in a 5s window
            try:
                got = query(f'count_over_time(pakemon_frames_total{{instance="{instance}",'
                            'proto="tcp"}[5s])')
                if got and float(got[0]["value"][1]) >= 3:
                    break
            except (OSError, ValueError):
                pass
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus did not scrape the exporter"
            time.sleep(0.5)

        # The template variable's query, as Grafana runs it.
        q = urllib.parse.urlencode({"match[]": "pakemon_frames_total"})
        labels = _get(f"{api}/api/v1/label/instance/values?{q}")
        assert instance in labels["data"]

        exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
        assert len(exprs) >= 10
        empty = []
        for raw in exprs:
            expr = raw.replace("$instance", instance).replace("$__rate_interval", "5s")
            if not query(expr):
                empty.append(raw)
        assert not empty, f"no data for: {empty}"
        # Frames were counting up between scrapes: rate() sees them.
        rate = query(f'sum(rate(pakemon_frames_total{{instance="{instance}",proto="ip"}}[5s]))')
        assert float(rate[0]["value"][1]) > 0
        assert not errors, errors
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        feed_thread.join(timeout=5)
        exp.stop()
