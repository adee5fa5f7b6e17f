#!/usr/bin/env python3
"""`make bench`: what crafted inputs cost per segment against a benign upload.

An attacker who cannot evade the sensor can still try to make it fall
behind: bytes that cost the sensor far more per segment than ordinary
traffic (a regex retried from every start, a search repeated at every line,
a parser's per-line work). Each case is one TCP connection carrying 64 KB
of one shape, in full segments, read by an in-process pipeline with the
bundled rules (``--et``: the whole ET Open set too), once to warm the
rules (what they compile on first use) and then measured. Printed per case: frames, CPU ms,
microseconds per frame and the ratio to the benign upload.

Nothing here is a pass/fail bound; the figures go in the README
(Performance, Floods). The shapes are the ones that once cost far more:
``regex-starts`` (the formmail regex over ``recipient=`` repeated: 18 ms a
segment before native regexes ran on hyperscan), ``folded`` and
``many-headers`` (the header block's end searched at every line),
``telnet-T`` (ET 2103274's pcre backtracking on a run of T, with --et).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pakemon import cli  # noqa: E402
from pakemon.detect.ruletree import RuleTree  # noqa: E402
from pakemon.lab.traffic import TcpConnection  # noqa: E402
from pakemon.pipeline import Pipeline  # noqa: E402

ET_DIR = ROOT.parent / "shared" / "rulesets" / "et-open-suricata-4.0"
N = 64_000
SMTP = b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


def cases() -> dict:
    """name -> (client bytes, server bytes, server port)."""
    chunked = b"".join(b"1\r\nx\r\n" for _ in range(N // 6)) + b"0\r\n\r\n"

    def resp(headers, body=b""):
        return b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n" + body

    return {
        "benign-upload": (b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % N
                          + b"A" * N, b"", 80),
        "regex-starts": (b"GET /formmail?" + b"recipient=" * (N // 10), b"", 80),
        "regex-target": (b"GET /formmail?" + b"recipient=%41" * (N // 13) + b" HTTP/1.1\r\n\r\n",
                         b"", 80),
        "pct-uri": (b"GET /" + b"%41" * (N // 3) + b" HTTP/1.1\r\nHost: a\r\n\r\n", b"", 80),
        "dot-segments": (b"GET /" + b"./" * (N // 2) + b" HTTP/1.1\r\nHost: a\r\n\r\n", b"", 80),
        "blank-lines": (b"\r\n" * (N // 2) + b"GET / HTTP/1.1\r\n\r\n", b"", 80),
        "many-headers": (b"GET / HTTP/1.1\r\n" + b"a: b\r\n" * (N // 6) + b"\r\n", b"", 80),
        "folded": (b"GET / HTTP/1.1\r\nX: a\r\n" + b" b\r\n" * (N // 4) + b"\r\n", b"", 80),
        "chunks-of-1": (b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + chunked, b"", 80),
        "pipelined": (b"GET / HTTP/1.1\r\n\r\n" * (N // 18), b"", 80),
        "resp-folded": (GET, resp(b"X: a\r\n" + b" b\r\n" * (N // 4) + b"Content-Length: 0\r\n"),
                        80),
        "resp-chunks-of-1": (GET, resp(b"Transfer-Encoding: chunked\r\n", chunked), 80),
        "smtp-mime-parts": (SMTP + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                            + b"--b\r\n\r\nx\r\n" * (N // 12) + b".\r\n", b"", 25),
        "telnet-T": (b"".join(b"\xff\xfa'\x00\x00" + b"T" * 1400 for _ in range(N // 1405)),
                     b"", 23),
    }


def frames_of(c2s: bytes, s2c: bytes, port: int) -> list:
    conn = TcpConnection("198.51.100.7", "10.2.0.1", 40000, port, cseq=1000, sseq=9000).open()
    if port == 23:  # one telnet option run per segment, as sent
        for i in range(0, len(c2s), 1405):
            conn.send(c2s[i:i + 1405])
    else:
        conn.send(c2s, segment=1460)
    if s2c:
        conn.send(s2c, from_client=False, segment=1460)
    return conn.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--et", action="store_true", help="load the whole ET Open set too")
    args = ap.parse_args(argv)
    paths = [str(ROOT / "rules" / "pakemon.rules")]
    if args.et:
        paths.append(str(ET_DIR))
    ns = argparse.Namespace(rules=paths, rules_format="auto", vars=None, skip_bad_rules=True)
    with contextlib.redirect_stderr(io.StringIO()):
        loaded = cli.load_rules_args(ns)
    if loaded is None:
        print("amplify: cannot load the rules", file=sys.stderr)
        return 1
    # one tree and one Suricata rule set for all, as in one sensor process:
    # their compiles on first use happen in the warm-up run
    tree = RuleTree(loaded.rules)
    base = None
    print(f"{'case':18s}{'frames':>7s}{'CPU ms':>9s}{'us/frame':>10s}{'x benign':>10s}")
    for name, (c2s, s2c, port) in cases().items():
        frames = frames_of(c2s, s2c, port)
        warm = Pipeline(tree, sig=loaded.sig)  # (compiles on first use: not measured)
        for ts, f in frames:
            warm.feed(ts, f)
        warm.flush()
        pipe = Pipeline(tree, sig=loaded.sig)
        t = time.process_time()
        for ts, f in frames:
            pipe.feed(ts, f)
        pipe.flush()
        us = (time.process_time() - t) / len(frames) * 1e6
        base = base or us
        print(f"{name:18s}{len(frames):7d}{us * len(frames) / 1e3:9.1f}{us:10.1f}{us / base:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
