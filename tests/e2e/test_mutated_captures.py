"""Real captures, damaged at random, through the whole ET Open set: nothing raises.

The conformance corpus's captures (HTTP, TLS, DNS, SMB, FTP, fragments,
overlaps, tunnels ...) are the traffic; each case's frames get bytes
overwritten in their headers, bits flipped, cuts, junk tails, IP and TCP
length fields rewritten, duplicates, swaps and timestamps thrown far ahead
or back. They go through a pipeline with the bundled rules and all of ET
Open 4.0 (every keyword the engine supports, on every parser), once with
checksums verified as the host would and once with checksum checks off,
so the damage reaches the parsers; every event is written to the three
logs. Any exception fails the test: the sensor must take every frame.
(A script run of the same over 3,600 seeds found nothing, 2026-11-29.)
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from helpers import BUNDLED_RULES, ROOT

CORPUS = ROOT.parent / "shared" / "conformance" / "suricata-verify"
ET_DIR = ROOT.parent / "shared" / "rulesets" / "et-open-suricata-4.0"

pytestmark = pytest.mark.skipif(not (CORPUS.exists() and ET_DIR.exists()),
                                reason="shared corpus or ET rule set not present")


@pytest.fixture(scope="module")
def loaded():
    import contextlib
    import io

    from pakemon import cli
    from pakemon.capture import CaptureError, open_capture

    args = cli.build_parser().parse_args(
        ["read", "--rules", str(BUNDLED_RULES), "--rules", str(ET_DIR), "--skip-bad-rules",
         "x.pcap"])
    with contextlib.redirect_stderr(io.StringIO()):
        rs, _ = cli.build_pipeline(args)
    assert rs.count > 18_000
    caps = []
    for path in sorted(CORPUS.glob("*/*.pcap")):
        try:
            with open_capture(path) as r:
                frames = list(r)
        except CaptureError:
            continue
        if 0 < len(frames) < 3000:
            caps.append((path, frames))
    assert len(caps) > 100
    return cli, rs, caps


def mutate(rng: random.Random, frames: list) -> list:
    out = []
    for ts, lt, f in frames:
        f = bytearray(f)
        r = rng.random()
        if r < 0.15 and len(f) > 14:  # header bytes overwritten
            for _ in range(rng.randint(1, 4)):
                f[rng.randrange(min(len(f), 80))] = rng.randrange(256)
        elif r < 0.2 and len(f) > 14:  # one bit anywhere
            f[rng.randrange(len(f))] ^= 1 << rng.randrange(8)
        elif r < 0.25:  # cut
            f = f[:rng.randrange(len(f) + 1)]
        elif r < 0.28:  # junk tail
            f += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        elif r < 0.31 and len(f) > 47:  # IPv4 length/id/fragment, TCP seq/ack/offset
            f[rng.choice([16, 17, 18, 19, 20, 21, 38, 39, 42, 43, 46, 47])] = rng.randrange(256)
        if rng.random() < 0.03:
            ts += rng.choice([-1e6, -5.0, 5.0, 1e6, float(rng.randrange(1 << 33))])
        out.append((ts, lt, bytes(f)))
        if rng.random() < 0.05:
            out.append((ts, lt, bytes(f)))
    if rng.random() < 0.3:
        for _ in range(len(out) // 5):
            i, j = rng.randrange(len(out)), rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
    return out


@pytest.mark.parametrize("checksum", ["auto", "off"])
def test_damaged_real_captures_through_et_never_raise(loaded, tmp_path, checksum):
    from pakemon.detect.ruletree import RuleTree
    from pakemon.pipeline import Pipeline

    cli, rs, caps = loaded
    args = cli.build_parser().parse_args(
        ["read", "--checksum", checksum, "--async-oneside", "on", "--log-dir",
         str(tmp_path / "logs"), "x.pcap"])
    config = cli.build_config(args)
    logs = cli.open_logs(args)
    with logs:
        for seed in range(40):
            rng = random.Random(seed * 2 + (checksum == "off"))
            path, frames = caps[rng.randrange(len(caps))]
            frames = mutate(rng, frames)
            pipe = Pipeline(RuleTree(rs.rules), config, sig=rs.sig)
            for ts, lt, f in frames:
                logs.write_many(pipe.feed(ts, f, lt))
            logs.write_many(pipe.flush())
            # every frame taken and counted, none lost to an exception
            assert pipe.stats.frames == len(frames), (seed, Path(path).parent.name)
    assert logs.entries_lost == 0
