"""Prometheus metrics: ``--metrics [ADDR:PORT]`` on ``read`` and ``attach``.

A custom collector reads the pipeline's and the sensor's own counters when
Prometheus scrapes (``MetricsExporter.collect``): nothing is done per frame.
The hot path only hands over references (``update``) and, once per batch of
perf records, the time the batch took (``observe``).

Wiring (the CLI)::

    add_metrics_option(parser)                  # --metrics [ADDR:PORT]
    metrics = MetricsExporter.from_args(args, pipe)   # None without --metrics
    ...
    metrics.update(pipe, sensor, logs)          # once the sensor is open
    metrics.observe(seconds)                    # per batch of records
    metrics.record_reload(ok)                   # after a SIGHUP reload

The address defaults to loopback, 127.0.0.1:9590: the page shows rule
names and traffic volumes, so exposing it wider is the operator's choice
(``--metrics 0.0.0.0:9590``, ``--metrics [::]:9590``).

Metrics (all prefixed ``pakemon_``):

frames_total{proto}, bytes_total{proto}
    proto: ip, tcp, udp, icmp, other (tcp, udp, icmp are subsets of ip; other
    is every frame none of the three), as counted by the kernel program when a
    sensor is attached, else by the pipeline. bytes_total has per-protocol
    series only from the kernel; ``proto="all"`` (every frame) always.
capture_candidates_total, capture_passed_over_total, capture_bypassed_total,
capture_blocked_total, capture_lost_total, capture_perf_fail_total
    The kernel's verdicts and the perf ring's losses. Without a sensor
    (``read``) every frame is a candidate and the rest are 0.
stream_bypassed_directions_total
    TCP directions past the stream depth (the pipeline's bypass requests).
log_entries_lost_total, syslog_messages_dropped_total
    Log entries (alert.log, dump.log, eve.json, the pcap log) the file system
    refused (disk full, quota, I/O error), and syslog messages not sent.
notices_total{kind}
    Decoder, reassembly, scan and other anomaly notices by NoticeKind name.
alerts_total{signature}
    Alerts by rule message. At most ``top_n`` (50) signatures get a series:
    at each scrape the biggest not yet labelled fill the free slots, and a
    labelled signature keeps its series (so every series only grows); the
    alerts of every other signature are summed as ``signature="other"``.
resets_sent_total
    TCP resets the sensor sent (0 until the response unit exists).
defrag_memcap_evictions_total, defrag_timeouts_total,
stream_evicted_total, stream_evicted_half_open_total, stream_timeouts_total,
stream_memcap_drops_total, flows_evicted_total
    Evictions and memory-cap hits.
stage_events_total{stage, event}
    Every other counter of ``Pipeline.counters()`` (defrag_*, stream_*,
    scan_*, ...), by stage and name.
stream_sessions_active, defrag_queues, scan_sources_tracked (gauges)
memory_bytes{pool}, memory_cap_bytes{pool} (gauges)
    Reassembly memory held and its cap; pool: stream, defrag.
rules_loaded, rules_last_reload_timestamp_seconds,
rules_last_reload_success (gauges)
    The start counts as the first (successful) load.
batch_seconds (histogram)
    Userland processing time per batch of perf records.
process_* (the client's process collector)
    CPU seconds, resident and virtual memory, open fds, start time.
"""

from __future__ import annotations

import argparse
import time

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest, start_http_server
from prometheus_client.registry import Collector

DEFAULT_ADDR = "127.0.0.1:9590"
TOP_N = 50
PROTOS = ("ip", "tcp", "udp", "icmp", "other")
# Batch times: 50 us (a record or two) to 2.5 s (a full ring on a slow box).
BATCH_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
                 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5)

# Pipeline.counters() keys with a metric of their own (the rest go to
# stage_events_total): key -> (name, help).
_NAMED_COUNTERS = {
    "defrag_memcap_evictions": (
        "pakemon_defrag_memcap_evictions_total",
        "Incomplete IP datagrams evicted for the defragmentation memory cap."),
    "defrag_timeouts": (
        "pakemon_defrag_timeouts_total",
        "Incomplete IP datagrams expired by the reassembly timeout."),
    "stream_evicted": (
        "pakemon_stream_evicted_total",
        "TCP sessions evicted to make room (session limit or memory cap)."),
    "stream_evicted_half_open": (
        "pakemon_stream_evicted_half_open_total",
        "Half-open TCP sessions evicted to make room."),
    "stream_timeouts": (
        "pakemon_stream_timeouts_total", "TCP sessions expired while idle."),
    "stream_memcap_drops": (
        "pakemon_stream_memcap_drops_total",
        "TCP segments not queued because the stream memory cap was reached."),
    "flows_evicted": (
        "pakemon_flows_evicted_total",
        "Datagram flow entries evicted from the full flow table."),
}
# Pipeline.counters() keys that are levels, not counts.
_GAUGE_KEYS = frozenset({
    "stream_sessions_active", "stream_memory", "stream_checksum_offload_detected",
    "scan_sources", "scan_targets", "scan_ftp_sessions",
})


def parse_addr(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6ADDR]:PORT`` or ``:PORT`` (loopback) -> (addr, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"{text!r}: expected ADDR:PORT (without an address, put --metrics "
                         "after the capture files or write --metrics=ADDR:PORT)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        host = "127.0.0.1"
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: port {port!r} is not a number") from None
    if not 0 <= p <= 65535:
        raise ValueError(f"{text!r}: port {p} out of range")
    return host, p


def _addr_arg(text: str) -> str:
    try:
        parse_addr(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_metrics_option(parser) -> None:
    """``--metrics [ADDR:PORT]`` on a read or attach parser (off when absent)."""
    parser.add_argument(
        "--metrics", nargs="?", const=DEFAULT_ADDR, default=None, type=_addr_arg,
        metavar="ADDR:PORT",
        help=f"serve Prometheus metrics over HTTP at /metrics (alone: {DEFAULT_ADDR}, "
        "loopback; 0.0.0.0:PORT or [::]:PORT to expose them)")


def _snapshot(fn, tries: int = 5):
    """fn() read from the scrape thread while the main thread changes what
    it reads: a dict resized mid-iteration is just read again."""
    for i in range(tries):
        try:
            return fn()
        except RuntimeError:
            if i == tries - 1:
                raise
    return None  # unreachable


class MetricsExporter(Collector):
    """The collector plus the HTTP server that serves it.

    ``registry`` holds this collector, the process collector and the batch
    histogram; pass ``registry=None`` to make a private one (the default) so
    several exporters can live in one process (tests).
    """

    def __init__(self, pipeline=None, sensor=None, *, top_n: int = TOP_N,
                 registry: CollectorRegistry | None = None) -> None:
        self.pipeline = pipeline
        self.sensor = sensor
        self.logs = None  # the LogSet, for its losses
        self.top_n = top_n
        self._labelled: list[str] = []  # signatures with a series of their own
        self._labelled_set: set[str] = set()
        self._kernel_last: dict | None = None  # last counters a closed sensor gave
        self.reload_time = time.time()
        self.reload_ok = True
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        self.batch = Histogram(
            "pakemon_batch_seconds",
            "Userland processing time per batch of perf records.",
            buckets=BATCH_BUCKETS, registry=self.registry)
        self.server = None
        self.thread = None

    # -- the CLI's side ------------------------------------------------------

    @classmethod
    def from_args(cls, args, pipeline=None, sensor=None):
        """Started on ``args.metrics``, or None without ``--metrics``.
        OSError (address in use, ...) propagates."""
        addr = getattr(args, "metrics", None)
        if not addr:
            return None
        exp = cls(pipeline, sensor)
        exp.start(addr)
        return exp

    def start(self, addr: str = DEFAULT_ADDR) -> tuple[str, int]:
        """Serve /metrics on ``ADDR:PORT`` from a daemon thread; the bound
        (host, port) (port 0 picks a free one)."""
        host, port = parse_addr(addr)
        self.server, self.thread = start_http_server(port, host, registry=self.registry)
        return self.server.server_address[:2]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def update(self, pipeline, sensor=None, logs=None) -> None:
        """What to read at the next scrapes (cheap: references only)."""
        self.pipeline = pipeline
        if sensor is not None:
            self.sensor = sensor
        if logs is not None:
            self.logs = logs

    def observe(self, seconds: float) -> None:
        """One batch of records took ``seconds`` of userland time."""
        self.batch.observe(seconds)

    def record_reload(self, ok: bool, when: float | None = None) -> None:
        self.reload_time = time.time() if when is None else when
        self.reload_ok = bool(ok)

    def text(self) -> bytes:
        """The exposition text, as a scrape would get it."""
        return generate_latest(self.registry)

    # -- collection ----------------------------------------------------------

    def describe(self):
        return []  # no registration-time collect (nothing may be set yet)

    def _kernel(self) -> dict | None:
        if self.sensor is None:
            return None
        try:
            self._kernel_last = self.sensor.counters()
        except Exception:  # closed, or a map read failed: the last good values
            pass
        return self._kernel_last

    def _alerts(self, alerts: dict) -> list[tuple[str, int]]:
        """(signature, count) rows: the labelled ones, then "other"."""
        free = self.top_n - len(self._labelled)
        if free > 0:
            new = sorted(((n, s) for s, n in alerts.items() if s not in self._labelled_set
                          and s != "other"), key=lambda t: (-t[0], t[1]))
            for _, s in new[:free]:
                self._labelled.append(s)
                self._labelled_set.add(s)
        rows = [(s, alerts.get(s, 0)) for s in self._labelled]
        other = sum(n for s, n in alerts.items() if s not in self._labelled_set)
        rows.append(("other", other))
        return rows

    def collect(self):
        pipe = self.pipeline
        kc = self._kernel()
        st = pipe.stats if pipe is not None else None
        pc = _snapshot(pipe.counters) if pipe is not None else {}

        frames = CounterMetricFamily(
            "pakemon_frames_total", "Frames seen, by protocol class (tcp, udp and icmp "
            "are subsets of ip; other is every frame none of the three).", labels=["proto"])
        nbytes = CounterMetricFamily(
            "pakemon_bytes_total", "Wire bytes of the frames seen, by protocol class "
            "(all: every frame).", labels=["proto"])
        if kc is not None:
            nbytes.add_metric(["all"], kc.get("bytes", 0))
            for p in PROTOS:
                frames.add_metric([p], kc.get(f"{p}_frames", 0))
                nbytes.add_metric([p], kc.get(f"{p}_bytes", 0))
        elif st is not None:
            for p in PROTOS:
                frames.add_metric([p], getattr(st, p))
            nbytes.add_metric(["all"], st.bytes)
        yield frames
        yield nbytes

        def counter(name, doc, value):
            c = CounterMetricFamily(name, doc)
            c.add_metric([], value)
            return c

        def gauge(name, doc, value):
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], value)
            return g

        k = kc or {}
        pipe_frames = st.frames if st is not None else 0
        yield counter("pakemon_capture_candidates_total",
                      "Frames handed to userland for inspection (read: every frame).",
                      k.get("candidates", pipe_frames) if kc is not None else pipe_frames)
        yield counter("pakemon_capture_passed_over_total",
                      "Frames the kernel passed without pushing them (no rule can match).",
                      k.get("passed_over", 0))
        yield counter("pakemon_capture_bypassed_total",
                      "Frames of bypassed flows the kernel skipped.", k.get("bypassed", 0))
        yield counter("pakemon_capture_blocked_total",
                      "Frames the kernel dropped for the block map.", k.get("blocked", 0))
        yield counter("pakemon_capture_lost_total",
                      "Perf samples the ring dropped before userland read them.",
                      k.get("perf_lost", 0))
        yield counter("pakemon_capture_late_total",
                      "Records read after a newer frame of another CPU's ring "
                      "(inspected out of time order).", k.get("late", 0))
        yield counter("pakemon_capture_coalesced_total",
                      "Server segments the kernel merged into ranges (header-only "
                      "records of several segments).", k.get("coalesced", 0))
        yield counter("pakemon_capture_perf_fail_total",
                      "Failed perf event outputs in the kernel (ring full).",
                      k.get("perf_fail", 0))
        yield counter("pakemon_stream_bypassed_directions_total",
                      "TCP stream directions past the inspection depth.",
                      st.bypassed if st is not None else 0)
        logs = self.logs
        yield counter("pakemon_log_entries_lost_total",
                      "Log entries the file system refused (disk full, quota, I/O error).",
                      logs.entries_lost if logs is not None else 0)
        yield counter("pakemon_syslog_messages_dropped_total",
                      "Syslog messages not sent (queue full or send errors).",
                      sum(x.dropped for x in logs.sinks) if logs is not None else 0)

        notices = CounterMetricFamily(
            "pakemon_notices_total", "Decoder and anomaly notices, by kind.", labels=["kind"])
        if st is not None:
            for kind, n in sorted(dict(st.notices).items()):
                notices.add_metric([str(kind)], n)
        yield notices

        alerts = CounterMetricFamily(
            "pakemon_alerts_total", f"Alerts by rule message (the first {self.top_n} "
            "signatures by count; the rest summed as other).", labels=["signature"])
        for sig, n in self._alerts(dict(st.alerts) if st is not None else {}):
            alerts.add_metric([str(sig)], n)
        yield alerts

        yield counter("pakemon_resets_sent_total", "TCP resets sent by the response unit.",
                      pc.get("resets_sent", getattr(pipe, "resets_sent", 0) or 0))

        for key, (name, doc) in _NAMED_COUNTERS.items():
            yield counter(name, doc, pc.get(key, 0))
        stage = CounterMetricFamily(
            "pakemon_stage_events_total",
            "Other pipeline stage counters, by stage and event.", labels=["stage", "event"])
        for key, v in sorted(pc.items()):
            if key in _NAMED_COUNTERS or key in _GAUGE_KEYS or key == "resets_sent":
                continue
            st_name, _, event = key.partition("_")
            stage.add_metric([st_name, event], v)
        yield stage

        cfg = getattr(pipe, "config", None)
        yield gauge("pakemon_stream_sessions_active", "TCP sessions tracked now.",
                    pc.get("stream_sessions_active", 0))
        yield gauge("pakemon_defrag_queues", "Incomplete IP datagrams held now.",
                    pipe.defrag.queues if pipe is not None else 0)
        yield gauge("pakemon_scan_sources_tracked", "Scan sources tracked now.",
                    pc.get("scan_sources", 0))
        mem = GaugeMetricFamily("pakemon_memory_bytes",
                                "Reassembly memory in use, by pool.", labels=["pool"])
        mem.add_metric(["stream"], pc.get("stream_memory", 0))
        mem.add_metric(["defrag"], pipe.defrag.memory if pipe is not None else 0)
        yield mem
        cap = GaugeMetricFamily("pakemon_memory_cap_bytes",
                                "Reassembly memory cap, by pool.", labels=["pool"])
        if cfg is not None:
            cap.add_metric(["stream"], cfg.stream.memcap)
            cap.add_metric(["defrag"], cfg.defrag.memcap)
        yield cap
        tree = getattr(pipe, "tree", None)
        yield gauge("pakemon_rules_loaded", "Rules in force.",
                    len(tree.rules) if tree is not None else 0)
        yield gauge("pakemon_rules_last_reload_timestamp_seconds",
                    "Unix time of the last rule load or reload attempt.", self.reload_time)
        yield gauge("pakemon_rules_last_reload_success",
                    "1 if the last rule load or reload succeeded, else 0.",
                    1 if self.reload_ok else 0)
