"""The decoder, defrag and stream stages raise Suricata's decoder and stream
events as often as upstream counts them, on the corpus's own captures.

For every corpus case whose rules use ``decode-event``/``stream-event``, the
case's pcap goes through decode -> defrag -> TCP reassembly (the stages this
check is about, without the rule engine or the pipeline around them), with
the case's host policy, midstream and checksum settings. Per packet, the
event names it carries are those of its notices and of ``Packet.anomalies``
(``pakemon.decode.notices.anomaly_notices``) through
``pakemon.detect.eventmap``; a packet counts once per name, as Suricata
alerts once per packet. The count per event rule's sid must equal
``expected.json`` (these counts are all exact).

This is the stages' half of the contract; the corpus test (test_corpus.py)
checks the whole product, and passes these cases once the pipeline hands
the same notices to the event rules (KNOWN.md finding 5).
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import pytest

from pakemon.capture.pcapfile import open_capture
from pakemon.config import DefragConfig, StreamConfig
from pakemon.decode import DecodeError, decode_frame, format_addr
from pakemon.decode.notices import anomaly_notices
from pakemon.defrag import Defragmenter
from pakemon.detect.eventmap import event_matches
from pakemon.events import Notice
from pakemon.hostpolicy import HostPolicy
from pakemon.stream.tcp import TcpReassembler

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("conformance_runner_ev",
                                               ROOT / "bench" / "conformance.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)
CORPUS = runner.CORPUS

_EVENT_RULE = re.compile(r"(decode|stream)-event\s*:\s*([^;]+);.*?\bsid\s*:\s*(\d+)")


def event_cases():
    out = []
    for case_dir in runner.corpus_cases(CORPUS) if CORPUS.is_dir() else []:
        exp = runner.load_expected(case_dir)
        if exp.get("event_keywords"):
            out.append(pytest.param(case_dir, id=case_dir.name))
    return out


def event_rules(case_dir: Path) -> dict[str, str]:
    """sid -> event name, for the event rules of the case's rule file."""
    rules = {}
    for line in (case_dir / "test.rules").read_text(errors="replace").splitlines():
        m = _EVENT_RULE.search(line)
        if m and not line.lstrip().startswith("#"):
            rules[m.group(3)] = m.group(2).strip()
    return rules


def stages(exp: dict):
    s = runner.case_settings(exp)
    hp = HostPolicy.parse(s["host_policy"]) if s["host_policy"] else None
    dflt = runner.DEFAULT_POLICY
    defrag = Defragmenter(DefragConfig(policy=dflt),
                          (lambda a: hp.defrag_policy(a, dflt)) if hp else None)
    tcp = TcpReassembler(
        StreamConfig(policy=dflt, midstream=s["midstream"], async_oneside=s["async_oneside"],
                     checksum="off" if s["checksum"] == "off" else "auto"),
        (lambda a: hp.stream_policy(a, dflt)) if hp else None,
        lambda d: (1,))  # keep every direction's bytes, as with a rule on any port
    return defrag, tcp


def fatal_notice(ts: float, e: DecodeError) -> Notice:
    p = e.pkt
    src = format_addr(p.src) if p is not None and p.family else ""
    dst = format_addr(p.dst) if p is not None and p.family else ""
    return Notice(ts=ts, kind=e.kind, message=e.kind.doc, src_ip=src, dst_ip=dst)


def packet_notices(pkts_and_notices) -> list[Notice]:
    out = []
    for pkt, notices in pkts_and_notices:
        out += notices
        if pkt is not None:
            out += anomaly_notices(pkt)
    return out


@pytest.mark.skipif(not (CORPUS / "README.md").is_file(), reason=f"no corpus at {CORPUS}")
@pytest.mark.parametrize("case_dir", event_cases())
def test_stages_raise_the_events_upstream_counts(case_dir):
    exp = runner.load_expected(case_dir)
    rules = event_rules(case_dir)
    want = {sid: n for sid, n in exp["alerts"].items() if sid in rules}
    assert want, "no event rule with a checked count"
    defrag, tcp = stages(exp)
    got = Counter()
    for ts, linktype, frame, *_ in open_capture(str(case_dir / "input.pcap")):
        try:
            pkt = decode_frame(linktype, frame, ts)
        except DecodeError as e:
            found = [(e.pkt, [fatal_notice(ts, e)])]
        else:
            found = []
            if pkt.family and pkt.is_fragment:
                whole, notices = defrag.feed(pkt)
                found.append((pkt, notices))
                if whole is not None:
                    found.append((whole, []))
                    pkt = whole
                else:
                    pkt = None
            if pkt is not None and pkt.family and pkt.l4 and pkt.proto == 6:
                notices = tcp.feed(pkt)
                found.append((pkt, [n for n in notices if isinstance(n, Notice)]))
            elif pkt is not None and pkt.family:
                found.append((pkt, []))
        notices = packet_notices(found)
        # once per packet and name, however many notices carry it
        for sid, name in rules.items():
            if any(event_matches(name, n) for n in notices):
                got[sid] += 1
    assert {sid: got[sid] for sid in want} == want
