"""Shared test helpers: rules from text, pipelines, and log reading.

Imported as ``from helpers import ...`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_RULES = ROOT / "rules" / "pakemon.rules"


def rules_from(text: str):
    from pakemon.detect.rule_parser import parse_rules

    return parse_rules(text, "test.rules").rules


def pipeline_from(text: str):
    from pakemon.pipeline import Pipeline

    return Pipeline(rules_from(text))


def run_frames(pipe, frames):
    """All events of feeding (ts, frame) pairs, then flush."""
    events = []
    for ts, frame in frames:
        events.extend(pipe.feed(ts, frame))
    events.extend(pipe.flush())
    return events


def feed_steps(parser, data: bytes, step: int = 0) -> list:
    """A sans-I/O parser's events for ``data`` fed ``step`` bytes at a time
    (0: all at once)."""
    if not step:
        return list(parser.feed(data))
    out = []
    for i in range(0, len(data), step):
        out += parser.feed(data[i:i + step])
    return out


def sig_alerts(frames, rules: str, vars=None, sig_rules=None) -> list:
    """Suricata-syntax ``rules`` (which must all load) run over ``frames`` by
    a pipeline with no native rule: its alerts. ``sig_rules``: a SigRuleSet
    already made (``rules`` is then not parsed)."""
    from pakemon.detect.sigengine import SigRuleSet
    from pakemon.detect.suricata_parser import parse_suricata_rules
    from pakemon.events import Alert
    from pakemon.pipeline import Pipeline

    if sig_rules is None:
        rs, skipped, errors = parse_suricata_rules(rules, vars=vars)
        assert not errors and not skipped, (errors, skipped)
        sig_rules = SigRuleSet(rs)
    return [e for e in run_frames(Pipeline([], sig=sig_rules), frames) if isinstance(e, Alert)]


def sid_counts(frames, rules: str, vars=None, sig_rules=None) -> dict:
    """``sig_alerts`` counted by sid."""
    counts: dict = {}
    for e in sig_alerts(frames, rules, vars, sig_rules):
        counts[e.rule.sid] = counts.get(e.rule.sid, 0) + 1
    return counts


def phf_with_decoy(decoy_of) -> list:
    """Frames of one connection: ``GET /cgi-bin/``, then a decoy for the
    next bytes (26 of "x", made by ``decoy_of(frame)`` from a plain segment:
    the way the server drops it), then the real rest of the phf request.
    The server reads the attack; a sensor that takes the decoy does not."""
    from pakemon.lab.traffic import ACK, PSH, TcpConnection, tcp_frame

    conn = TcpConnection("10.1.0.5", "10.2.0.1", 41000, 80).open()
    conn.send(b"GET /cgi-bin/")
    decoy = tcp_frame(conn.client, conn.server, conn.cport, conn.sport, conn.cseq, conn.sseq,
                      PSH | ACK, b"x" * 26)
    conn.frames.append((conn.ts, bytes(decoy_of(decoy))))
    conn.ts += conn.gap
    conn.send(b"phf?Qalias=x HTTP/1.0\r\n\r\n")
    return conn.close()


def alert_names(events):
    from pakemon.events import Alert

    return [e.rule.name for e in events if isinstance(e, Alert)]


def read_eve(log_dir):
    """The events of ``log_dir``'s eve.json, in order ([] without one)."""
    path = Path(log_dir) / "eve.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def eve_alerts(log_dir):
    """The alert events of ``log_dir``'s eve.json, in order."""
    return [e for e in read_eve(log_dir) if e["event_type"] == "alert"]


def dashboard_exprs(d) -> list[str]:
    """Every PromQL ``expr`` in a Grafana dashboard, wherever it is nested."""
    out = []

    def walk(o):
        if isinstance(o, dict):
            if isinstance(o.get("expr"), str):
                out.append(o["expr"])
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(d)
    return out


def nothing_attached_soon(lab, within: float = 5.0) -> None:
    """``lab.assert_nothing_attached()`` passes within ``within`` seconds: the
    kernel releases a dead process's bpf links at its exit, but the last
    reference may drop in a worker a moment later."""
    import time

    deadline = time.monotonic() + within
    while True:
        try:
            return lab.assert_nothing_attached()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
