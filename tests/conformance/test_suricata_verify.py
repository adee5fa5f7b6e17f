"""Suricata-verify conformance: the defrag and stream cases with plain-content rules.

The corpus (``../shared/conformance/suricata-verify`` next to the repository;
see its README.md) holds public suricata-verify cases: a pcap, the upstream
Suricata rules and ``expected.json`` (alert counts per sid). For every case
about IP defragmentation or TCP stream handling whose rules translate to the
native format (``translate.py``), this runs ``pakemon-xdp read`` with the
settings upstream ran Suricata with and compares the alerts per sid.

KNOWN.md lists every corpus case: selected or not, translated or not, and
why each expected failure fails. A case is marked xfail(strict=True) only
when it was seen to fail for the reason given there.

Settings taken from ``expected.json``'s ``config``:

* ``-k none`` -> ``--checksum off``; otherwise the default ``auto`` (like
  Suricata's pcap-file ``checksum-checks: auto``).
* ``stream.midstream=true`` -> ``--midstream on``, else ``off`` (Suricata's
  default is off, ours on); ``stream.async-oneside=true`` ->
  ``--async-oneside on``; ``stream.reassembly.depth=0`` -> ``--stream-depth 0``,
  else ``1m`` (Suricata's default, both directions).
* host-os-policy: the stock suricata.yaml's table (windows for 0.0.0.0/0,
  linux for 10.0.0.0/8, 192.168.1.100 and 8762:2352:6241:7245:E000::,
  solaris for ::1) or a test's own table becomes a ``--host-policy`` file;
  whatever no block covers (and every case whose minimal suricata.yaml sets
  none) gets Suricata's built-in default, ``--policy bsd``.

Comparison, per checked sid that translated (sids whose rule did not
translate are not checked; when no checked sid is left the case is not
run): expected 0 -> no alert; expected N > 0 -> N alerts. The native
semantics are one alert per rule per flow direction; where Suricata alerts
per packet more often than that, ``PRESENCE_ONLY`` compares "alerted or not"
instead, with the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from translate import translate_file

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "conformance" / "suricata-verify"
KNOWN = Path(__file__).with_name("KNOWN.md")

pytestmark = pytest.mark.skipif(
    not (CORPUS / "README.md").is_file(),
    reason=f"suricata-verify corpus not found at {CORPUS}")

# Cases about defrag or TCP stream handling outside the corpus's "stream" and
# "defrag" categories (which are all selected): evasions, midstream and
# one-sided pickup, handshake variants, TCP payload bounds, IPv6 evasions.
EXTRA_SELECTED = {
    "bug-1401-01": "SYN-ACK of a session whose SYN is missing",
    "bug-1401-02": "same, picked up midstream",
    "bug-1401-03": "SYN-ACK with a complete handshake",
    "bug-1401-04": "same, flow:to_client",
    "bug-2491-01": "client side only (async-oneside)",
    "bug-28": "retransmitted request segment must not alert twice",
    "bug-3286-01-no-evasion": "baseline of the TCP timestamp evasion",
    "bug-3286-02-linux-evasion": "TCP timestamp (PAWS) evasion, Linux receiver",
    "bug-3286-03-windows-evasion": "TCP timestamp (PAWS) evasion, Windows receiver",
    "bug-7657-01": "SYN flood before the real session",
    "http2-disabled": "plain content picked up midstream",
    "iponly-midstream-01": "single midstream TCP packet",
    "ipv6-evasion--ipv6-covert-dstopts": "IPv6 evasion (destination options)",
    "ipv6-evasion--ipv6-rsmurf": "IPv6 evasion (multicast echo)",
    "like-ip-only-01": "flow:established",
    "security-4710-01": "RST injection evasion (TCP MD5 option)",
    "security-4710-02": "RST injection evasion (TCP-AO option)",
    "tcp-5379": "TCP payload bounded by the IP length",
    "tcp-empty-sack": "empty SACK option",
    "tcp-fastopen-01": "TCP Fast Open data in the SYN",
    "tcp-fastopen-03": "TCP Fast Open, first session midstream",
    "tcp-fastopen-09": "TCP Fast Open cookie option",
    "tcp-fastopen-13": "TCP Fast Open, inline stream",
}

# Suricata alerts per packet for these sids; natively a rule alerts once per
# flow direction, so only "alerted or not" is compared.
PRESENCE_ONLY = {
    ("ipv6-evasion--ipv6-rsmurf", "1"):
        "1000 echo requests ff02::1 -> ff02::1, one ICMPv6 flow: Suricata alerts per "
        "packet (1000), the native rule once per flow direction (1)",
}

# (case, variant) -> why it fails; mirrored in KNOWN.md, strict xfail.
_OVERLAP_UNACKED = (
    "stream: the native engine matches in-order bytes as they are read, as the host reads "
    "them: 'GOOD' (seq 2, in order) first, the same-range 'EVIL' after it a retransmission. "
    "Suricata applies old-linux to all un-ACKed data (the ACK comes in packet 7), and the "
    "Suricata engine does too (StreamRewrite; the corpus's Suricata rules pass), but a "
    "native rule has already matched what it read")
XFAIL = {
    ("eve-overlap-payload-02-policy-oldlinux", "rules"): _OVERLAP_UNACKED,
    ("eve-payload-02-tcp-exact-overlap-policy-oldlinux", "rules"): _OVERLAP_UNACKED,
}

STOCK_HOST_POLICY = """\
# host-os-policy of the stock suricata.yaml
0.0.0.0/0 windows
10.0.0.0/8 linux
192.168.1.100 linux
8762:2352:6241:7245:E000:: linux
::1 solaris
"""


def corpus_cases() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(p.parent.name for p in CORPUS.glob("*/expected.json"))


def expected(case: str) -> dict:
    return json.loads((CORPUS / case / "expected.json").read_text())


def is_selected(case: str) -> bool:
    return expected(case)["category"] in ("stream", "defrag") or case in EXTRA_SELECTED


def translation(case: str):
    """(translated rules, untranslated rules, checked sids that translated)."""
    rules = translate_file(CORPUS / case / "test.rules", header_only=True)
    done = [t for t in rules if t.native]
    skipped = [t for t in rules if not t.native]
    checked = [sid for sid in expected(case)["alerts"] if any(str(t.sid) == sid for t in done)]
    return done, skipped, checked


def runnable_cases() -> list[str]:
    return [c for c in corpus_cases() if is_selected(c) and translation(c)[2]]


def sensor_options(case: str, tmp: Path) -> list[str]:
    cfg = expected(case)["config"]
    args = []
    if "disabled" in cfg.get("checksum_validation", ""):
        args += ["--checksum", "off"]
    stream = cfg.get("stream_args", [])
    args += ["--midstream", "on" if "stream.midstream=true" in stream else "off"]
    if "stream.async-oneside=true" in stream:
        args += ["--async-oneside", "on"]
    # Suricata's depth (1 MB unless the case says 0) in both directions
    args += ["--stream-depth", "0" if "stream.reassembly.depth=0" in stream else "1m"]
    args += ["--policy", "bsd"]
    hop = cfg.get("host_os_policy", "")
    table = None
    if isinstance(hop, dict):
        table = "".join(f"{net} {name}\n" for name, nets in hop.items() for net in nets)
    elif hop.startswith("stock"):
        table = STOCK_HOST_POLICY
    if table is not None:
        path = tmp / "host-policy"
        path.write_text(table)
        args += ["--host-policy", str(path)]
    return args


def run_sensor(case: str, rules: list[str], tmp: Path, tag: str) -> Counter:
    """Alerts per sid of one `pakemon-xdp read` over the case's pcap."""
    rules_file = tmp / f"{tag}.rules"
    rules_file.write_text("".join(line + "\n" for line in rules))
    logs = tmp / f"logs-{tag}"
    cmd = [sys.executable, "-m", "pakemon.cli", "read", str(CORPUS / case / "input.pcap"),
           "--rules", str(rules_file), "--log-dir", str(logs), "-q",
           *sensor_options(case, tmp)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    counts = Counter()
    eve = logs / "eve.json"
    if eve.exists():
        for line in eve.read_text().splitlines():
            ev = json.loads(line)
            if ev.get("event_type") == "alert":
                m = re.fullmatch(r"sid-(\d+)", ev["alert"]["signature"])
                assert m, ev["alert"]["signature"]
                counts[m.group(1)] += 1
    return counts


def variants(case: str) -> list[str]:
    """How to run a case: "rules" as translated; "ip-as-tcp" also with its
    content rules on the ip header protocol as native tcp rules. Suricata matches such a rule
    against the reassembled TCP stream as well, while a native ip rule
    searches each packet alone, which would leave stream pickup untested."""
    done = translation(case)[0]
    out = ["rules"]
    if any(t.proto == "ip" and not t.packet_level for t in done):
        out.append("ip-as-tcp")
    return out


def run_case(case: str, tmp: Path, variant: str = "rules") -> tuple[dict, dict]:
    """(expected, got) alert counts of the checked sids that translated."""
    done, _, checked = translation(case)
    stream_rules = [t for t in done if not t.packet_level]
    packet_rules = [t for t in done if t.packet_level]
    if variant == "ip-as-tcp":
        stream_rules = [t.line("tcp") if t.proto == "ip" else t.line() for t in stream_rules]
    else:
        stream_rules = [t.line() for t in stream_rules]
    got = Counter()
    # tcp-pkt rules (native ip rules) run on their own: with a tcp rule in the
    # same set, TCP segments go to the reassembler only (KNOWN.md, finding 4)
    for tag, rules in (("stream", stream_rules), ("packet", [t.line() for t in packet_rules])):
        if rules:
            got.update(run_sensor(case, rules, tmp, tag))
    want = {sid: expected(case)["alerts"][sid] for sid in checked}
    return want, {sid: got.get(sid, 0) for sid in checked}


def compare(case: str, want: dict, got: dict) -> list[str]:
    bad = []
    for sid, n in want.items():
        if (case, sid) in PRESENCE_ONLY:
            ok = (got[sid] > 0) == (n > 0)
        else:
            ok = got[sid] == n
        if not ok:
            bad.append(f"sid {sid}: expected {n}, got {got[sid]}")
    return bad


def _params():
    out = []
    for case in runnable_cases():
        for variant in variants(case):
            marks = []
            if (case, variant) in XFAIL:
                marks.append(pytest.mark.xfail(reason=XFAIL[case, variant], strict=True))
            pid = case if variant == "rules" else f"{case}-{variant}"
            out.append(pytest.param(case, variant, id=pid, marks=marks))
    return out


@pytest.mark.parametrize(("case", "variant"), _params())
def test_case(case, variant, tmp_path):
    want, got = run_case(case, tmp_path, variant)
    bad = compare(case, want, got)
    assert not bad, f"{case} ({variant}): " + "; ".join(bad)


def test_ip_rules_still_see_tcp_segments_next_to_tcp_rules(tmp_path):
    case = "eve-payload-01-tcp-exact-overlap"
    done = translation(case)[0]
    counts = run_sensor(case, [t.line() for t in done], tmp_path, "together")
    # run apart, the tcp-pkt rules (ip) alert on the EVIL and GOOD packets
    assert counts["3"] == 1 and counts["4"] == 1, dict(counts)


def test_known_md_lists_every_case_and_every_expected_failure():
    text = KNOWN.read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", text, re.M))
    missing = [c for c in corpus_cases() if c not in rows]
    assert not missing, f"cases not in KNOWN.md: {missing}"
    for case, _variant in XFAIL:
        row = re.search(rf"^\| `{re.escape(case)}` \|.*$", text, re.M).group(0)
        assert "fail" in row, f"KNOWN.md row of {case} does not say fail: {row}"
