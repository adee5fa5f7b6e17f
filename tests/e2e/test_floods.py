"""Floods end to end: bench/floods.py scaled down, `pakemon-xdp read` as a child.

Each test writes one flood with the phf attack interleaved in its middle,
reads it with small memory caps (``--defrag-memcap 1m --stream-memcap 1m``)
and checks: exit 0, no traceback, the attack alerted on its own connection,
no flood frame dropped for a bad checksum, peak RSS within the caps plus
100 MB, and the counter of the limit the flood pushes against moved. The
SYN and connection floods are spread over more packet time than their
state's timeout (60 s half-open, 3600 s established) so that expiry runs
while the flood goes on. `make bench` runs the full-size floods.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import floods  # noqa: E402

SMALL_CAPS = ["--defrag-memcap", "1m", "--stream-memcap", "1m"]


def run(name, count, tmp_path, pps, flood_alerts=0):
    r = floods.run_flood(name, count, tmp_path, pps=pps, extra=SMALL_CAPS)
    assert r.exit_code == 0, r.stderr
    assert not r.traceback, r.stderr
    assert r.detected, f"{name}: attack in the middle of the flood not detected\n{r.summary}"
    assert r.other_alerts == flood_alerts, f"{name}: the flood's own alerts\n{r.summary}"
    assert r.events.get("alert", 0) == r.alerts_counted, r.summary  # none lost
    assert r.bad_checksums == 0, f"{name}: generator wrote bad checksums\n{r.summary}"
    assert r.bound_mb == 2 + floods.SLACK_MB
    assert r.rss_ok, f"{name}: peak RSS {r.peak_rss_mb:.1f} MB > {r.bound_mb:.0f} MB"
    return r


def test_fragment_flood_is_evicted_under_the_memcap_then_fills_the_host(tmp_path):
    r = run("fragments", 20_000, tmp_path, pps=100_000)
    c = r.counters
    assert r.frames == 20_000 + len(floods.attack_frames(False))
    assert c["defrag_fragments"] == 20_000 and c.get("defrag_reassembled", 0) == 0
    # 1 MB holds ~1,100 incomplete datagrams: the next ones evict the
    # oldest, until the host's own 4 MB (about 4,000 of them; what the 1 MB
    # memcap evicted the host still holds) is full: then the host drops
    # every fragment, and so does the sensor
    assert c["defrag_memcap_evictions"] > 2_500
    assert c["defrag_host_memory_full"] > 15_000
    assert r.events.get("anomaly:defrag_memcap_evict", 0) > 0  # both reported
    assert r.events.get("anomaly:defrag_host_memory_full", 0) > 0


def test_syn_flood_half_open_sessions_expire(tmp_path):
    # 20,000 SYNs over 100 s: the first ones pass the 60 s half-open timeout
    r = run("syns", 20_000, tmp_path, pps=200)
    c = r.counters
    assert c["stream_sessions"] == 20_001
    # half-open sessions leave by timeout or, at the session cap the memcap
    # sets (1 MB here), by eviction of the oldest half-open ones first
    assert c.get("stream_timeouts", 0) + c.get("stream_evicted_half_open", 0) > 5_000
    assert c["scan_packets"] >= 20_000


def test_connection_flood_never_closing_sessions_expire(tmp_path):
    # 3,000 connections (15,000 frames) over 5,000 s: the first ones pass
    # the 3600 s established timeout
    r = run("connections", 3_000, tmp_path, pps=3)
    c = r.counters
    assert r.frames == 3_000 * floods.CONN_FRAMES + len(floods.attack_frames(False))
    # (the attack's connection, closed, may make room before its last ACK
    # comes 50 flood frames later: that ACK is then picked up on its own)
    assert c["stream_sessions"] == 3_001 + c.get("stream_midstream_pickups", 0)
    assert c.get("stream_midstream_pickups", 0) <= 1
    assert c.get("stream_timeouts", 0) + c.get("stream_evicted", 0) > 500
    # every benign GET was read (the idle ones delivered at expiry or flush)
    assert c["stream_delivered_bytes"] >= 3_000 * len(floods.BENIGN_REQUEST)


def test_out_of_order_segment_flood_is_bounded_by_count(tmp_path):
    # 20,000 one-byte segments in 8 connections, never readable: each is
    # charged its byte plus the segment cost (1,024), so the 1 MB memcap
    # holds about a thousand of them and the rest are dropped, counted; the
    # largest queue pays each time, with room to spare, so there are far
    # fewer prunings than segments dropped (the attack's request, sent out
    # of order in the flood, is kept: run() checks its alert)
    r = run("segments", 20_000, tmp_path, pps=100_000)
    c = r.counters
    assert c["stream_sessions"] == 20_000 // floods.SEGS_PER_CONN + 1
    assert c["stream_memcap_drop_bytes"] > 18_000
    assert 0 < c["stream_memcap_drops"] < c["stream_memcap_drop_bytes"] // 10


def test_lone_ack_flood_does_not_evict_the_attack_connection(tmp_path):
    # 20,000 lone ACKs with the 1 MB memcap's 1,024 sessions: the attack's
    # request is cut in two, with over 1,500 ACKs between any two of its
    # frames, so the table turns over while the connection is open. The
    # pickups nothing answered go first (before: the oldest session, the
    # attack's, and the second half alone did not match)
    r = run("acks", 20_000, tmp_path, pps=100_000)
    c = r.counters
    assert c["stream_midstream_pickups"] == 20_000
    assert c["stream_evicted_one_sided"] > 18_000
    assert c["stream_evicted"] == c["stream_evicted_one_sided"]


def test_udp_flood_from_everyone_keeps_the_scan_table_bounded(tmp_path):
    # 20,000 datagrams, each from a new source: DNS queries, portmap and
    # random ports; the scan detector tracks 16,384 sources at most and
    # counts the ones it lets go
    r = run("udp", 20_000, tmp_path, pps=100_000)
    c = r.counters
    assert r.frames == 20_000 + len(floods.attack_frames(False))
    assert c["scan_sources"] + c["scan_sources_evicted"] >= 19_900  # (random collisions)
    assert c["scan_sources_evicted"] > 3_000
    assert c["stream_sessions"] == 1  # the attack's connection only


def test_slowloris_is_charged_for_what_it_holds(tmp_path):
    # 3,000 connections, each leaving a request unfinished: what they hold
    # above the stream (header lines, blank lines, the dump history) is
    # charged to the session budget the 1 MB memcap sets (1,024 sessions at
    # the flat cost), so the oldest are evicted before the table is full
    r = run("slowloris", 3_000, tmp_path, pps=100_000)
    c = r.counters
    assert c["stream_sessions"] == 3_001
    assert c["stream_evicted_app_memory"] > 1_000
    assert c["stream_evicted"] >= c["stream_evicted_app_memory"]


def test_regex_flood_is_read_whole_and_alerts_nothing(tmp_path):
    # 400 segments of a formmail query that never ends: the rule's literal
    # is there, so its unbounded regex runs over every window (bench/floods.py)
    r = run("regex", 400, tmp_path, pps=100_000)
    c = r.counters
    assert c["stream_sessions"] == 400 // floods.REGEX_SEGS + 1
    assert c["stream_delivered_bytes"] >= 400 * len(floods.REGEX_PAD)


def test_alert_flood_writes_every_alert(tmp_path):
    # 20,000 ICMP echoes from random sources, each the TFN probe: an alert
    # per source (one per flow direction), every one in the logs (read holds
    # entries in memory between flushes, by size and time: none may be lost)
    import random

    rnd = random.Random(9).getrandbits  # gen_alerts' seed: its sources
    sources = len({floods._random_source(rnd) for _ in range(20_000)})
    r = run("alerts", 20_000, tmp_path, pps=100_000, flood_alerts=sources)
    assert r.alerts_counted == sources + 1
    logs = tmp_path / "logs"
    assert (logs / "alert.log").read_text().count("DDOS-TFN-probe") == sources
    assert (logs / "dump.log").read_text().count("DDOS-TFN-probe") == sources
