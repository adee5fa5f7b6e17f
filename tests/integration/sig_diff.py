"""Differential fuzz of the Suricata engine: alerts that must not change.

Each seed is one random connection (tests/sig_traffic.py) run two ways that
must give the same detection:

* ``sink``: the server's waiting bytes appended by the reassembler itself
  (``TcpDirection.sink``) against the event path (sink off): every alert,
  its packet and its place in the output.
* ``defer``: the server's side read when the client next speaks against
  read at once: no rule may alert less often (raw-stream counts may be
  higher: the inspection chunks end elsewhere).
* ``stream``: the client's bytes sent whole against cut and ACKed at
  random: the same stream rules alert, and a flowbit-gated one whenever a
  copy follows its setter.
* ``http``: the HTTP exchanges (bodies by length or chunked, responses
  plain, gzip or deflate) sent whole against cut, ACKed at random: the
  same alerts, count for count.
* ``frag``: UDP datagrams (DNS queries, marked payloads) sent whole
  against cut into IP fragments in random order, some twice, other
  datagrams' fragments between: the same alerts, count for count.
* ``tls``: a TLS handshake (sni, certificate subject and issuer, ja3s, a
  raw content with a certificate buffer) sent whole against cut, pieces
  swapped, ACKed at random: the same alerts, count for count.
* ``apps``: DNS over TCP (``dns.query``), SMTP (attachments' ``file_data``,
  a raw stream content) and SSH (``ssh.software``, ``ssh.proto``), each
  side's writes whole against cut as for ``tls``: count for count.

The unit tests run a few seeds of each (tests/unit/detect/test_sigengine.py);
this runs many and prints the seeds that differ::

    .venv/bin/python tests/integration/sig_diff.py [--seeds N] [--start S] [--kind K]
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sig_traffic import (APP_RULES, CUT_RULES, FRAG_RULES, HTTP_RULES,  # noqa: E402
                         SINK_RULES, TLS_RULES, app_frames, cut_frames, cut_stream,
                         frag_datagrams, frag_frames, http_exchanges, http_frames,
                         sink_traffic, tls_frames)

from pakemon.detect import sigengine  # noqa: E402
from pakemon.detect.suricata_parser import parse_suricata_rules  # noqa: E402
from pakemon.events import Alert  # noqa: E402
from pakemon.pipeline import Pipeline  # noqa: E402

KINDS = ("sink", "defer", "stream", "http", "frag", "tls", "apps")


def _rules(text):
    rules, skipped, errors = parse_suricata_rules(text)
    assert not errors and not skipped, (errors, skipped)
    return rules


def _alerts(rules, frames, stream_data=None):
    """(frame index or "flush", sid, ts, source port) of each alert."""
    orig = sigengine.SigEngine.stream_data
    if stream_data is not None:
        sigengine.SigEngine.stream_data = stream_data
    try:
        pipe = Pipeline([], sig=sigengine.SigRuleSet(rules))
        out = []
        for i, (ts, frame) in enumerate(frames):
            out += [(i, a.rule.sid, a.ts, a.src_port) for a in pipe.feed(ts, frame)
                    if isinstance(a, Alert)]
        out += [("flush", a.rule.sid, a.ts, a.src_port) for a in pipe.flush()
                if isinstance(a, Alert)]
        return out
    finally:
        sigengine.SigEngine.stream_data = orig


def _sink_off():
    orig = sigengine.SigEngine.stream_data

    def stream_data(self, d, data, pkt, gap=False, sink=False):
        return orig(self, d, data, pkt, gap, False)
    return stream_data


def _read_at_once():
    orig = sigengine.SigEngine.stream_data

    def stream_data(self, d, data, pkt, gap=False, sink=False):
        out = orig(self, d, data, pkt, gap, False)
        st = sigengine._sig_of(d)
        if st is not None and st.defer is not None:
            out = out + self.read_deferred(st)
        return out
    return stream_data


def differs(kind: str, seed: int) -> str | None:
    """Why ``seed`` breaks ``kind``'s invariant, or None."""
    if kind == "sink":
        rules = _rules(SINK_RULES)
        frames = sink_traffic(seed)
        a, b = _alerts(rules, frames), _alerts(rules, frames, _sink_off())
        return None if a == b else f"sink on {a} off {b}"
    if kind == "defer":
        rules = _rules(SINK_RULES)
        frames = sink_traffic(seed)
        a = collections.Counter(x[1] for x in _alerts(rules, frames))
        b = collections.Counter(x[1] for x in _alerts(rules, frames, _read_at_once()))
        fewer = {sid: (a[sid], b[sid]) for sid in b if a[sid] < b[sid]}
        return f"deferred alerts fewer (deferred, at once): {fewer}" if fewer else None
    if kind == "stream":
        rules = _rules(CUT_RULES)
        rnd = random.Random(seed)
        data = cut_stream(rnd)
        whole = {x[1] for x in _alerts(rules, cut_frames(data, rnd, 40000, True))}
        cut = {x[1] for x in _alerts(rules, cut_frames(data, rnd, 40001, False))}
        if whole - {6, 8} != cut - {6, 8}:
            return f"whole {sorted(whole)} cut {sorted(cut)}"
        go = data.find(b"SETGO")
        if go >= 0 and data.find(b"EVILWORD", go) >= 0 and not {6, 8} <= cut:
            return f"gated copy after its setter missed when cut: {sorted(cut)}"
        return None
    if kind == "frag":
        rules = _rules(FRAG_RULES)
        datagrams = frag_datagrams(random.Random(seed))
        whole = collections.Counter(
            x[1] for x in _alerts(rules, frag_frames(datagrams, random.Random(seed), True)))
        cut = collections.Counter(
            x[1] for x in _alerts(rules, frag_frames(datagrams, random.Random(-seed - 1),
                                                     False)))
        return None if whole == cut else f"whole {dict(whole)} fragmented {dict(cut)}"
    if kind in ("tls", "apps"):
        rules, gen = (_rules(TLS_RULES), tls_frames) if kind == "tls" else \
            (_rules(APP_RULES), app_frames)
        whole = collections.Counter(
            x[1] for x in _alerts(rules, gen(random.Random(seed), 40000, True)))
        cut = collections.Counter(
            x[1] for x in _alerts(rules, gen(random.Random(seed), 40001, False)))
        return None if whole == cut else f"whole {dict(whole)} cut {dict(cut)}"
    rules = _rules(HTTP_RULES)
    exchanges = http_exchanges(random.Random(seed))
    whole = collections.Counter(
        x[1] for x in _alerts(rules, http_frames(exchanges, random.Random(seed), 40000, True)))
    cut = collections.Counter(
        x[1] for x in _alerts(rules, http_frames(exchanges, random.Random(-seed - 1), 40001,
                                                 False)))
    return None if whole == cut else f"whole {dict(whole)} cut {dict(cut)}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=500)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--kind", choices=KINDS + ("all",), default="all")
    args = ap.parse_args(argv)
    kinds = KINDS if args.kind == "all" else (args.kind,)
    bad = 0
    for kind in kinds:
        found = []
        for seed in range(args.start, args.start + args.seeds):
            why = differs(kind, seed)
            if why is not None:
                found.append(seed)
                if len(found) <= 5:
                    print(f"{kind} seed {seed}: {why}")
        print(f"{kind}: {args.seeds} seeds from {args.start}, {len(found)} differing"
              + (f" ({found[:20]})" if found else ""))
        bad += len(found)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
