"""pakemon.detect.eventmap: every Suricata event the corpus uses has kinds,
and the lookup / family rules hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pakemon.detect.eventmap import (
    SURICATA_EVENTS,
    event_matches,
    lookup,
    names_for,
)
from pakemon.events import Notice, NoticeKind as K

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "suricata-verify"

# The README's decoder/stream event table (all names the corpus's rules use).
README_EVENTS = [
    "decode-event:ipv4.trunc_pkt", "decode-event:ipv6.dstopts_unknown_opt",
    "decode-event:ipv6.exthdr_dupl_fh", "decode-event:ipv6.exthdr_useless_fh",
    "decode-event:ipv6.frag_invalid_length", "decode-event:ipv6.frag_overlap",
    "decode-event:ipv6.frag_pkt_too_large", "decode-event:ipv6.ipv4_in_ipv6_wrong_version",
    "decode-event:ipv6.ipv6_in_ipv6_wrong_version", "decode-event:ipv6.trunc_exthdr",
    "decode-event:tcp.hlen_too_small", "decode-event:tcp.invalid_optlen",
    "decode-event:tcp.opt_duplicate", "decode-event:tcp.opt_invalid_len",
    "decode-event:tcp.pkt_too_small", "decode-event:udp.len_invalid",
    "stream-event:3whs_syn_flood", "stream-event:pkt_invalid_timestamp",
    "stream-event:suspected_rst_inject",
]


@pytest.mark.parametrize("keyword", README_EVENTS)
def test_every_readme_event_is_mapped(keyword):
    name = keyword.split(":", 1)[1]
    kinds = lookup(name)
    assert kinds and all(isinstance(k, K) for k in kinds)


def test_corpus_event_keywords_are_all_mapped():
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    used = set()
    for f in CORPUS.glob("*/expected.json"):
        used.update(json.loads(f.read_text()).get("event_keywords", []))
    assert used, "the corpus names no events"
    assert sorted(used) == sorted(set(README_EVENTS) & used)
    assert not [k for k in used if lookup(k.split(":", 1)[1]) is None]


def test_lookup_forms():
    assert lookup("IPv6.Frag_Overlap") == lookup("ipv6.frag_overlap")
    assert lookup("decoder.ipv4.trunc_pkt") == frozenset({K.DECODE_IPV4_TRUNC_PKT})
    assert lookup("stream.pkt_invalid_timestamp") == frozenset({K.STREAM_PAWS_FAILED})
    assert lookup("ipv6.no_such_event") is None


def _notice(kind, src):
    return Notice(ts=0.0, kind=kind, message="", src_ip=src, dst_ip=src)


def test_family_restricts_shared_defrag_kinds():
    v4 = _notice(K.DEFRAG_OVERLAP_MISMATCH, "10.0.0.1")
    v6 = _notice(K.DEFRAG_OVERLAP_SAME, "2001:db8::1")
    assert event_matches("ipv4.frag_overlap", v4) and not event_matches("ipv6.frag_overlap", v4)
    assert event_matches("ipv6.frag_overlap", v6) and not event_matches("ipv4.frag_overlap", v6)
    assert names_for(v6) == {"ipv6.frag_overlap"}
    paws = _notice(K.STREAM_PAWS_FAILED, "10.0.0.1")
    assert names_for(paws) == {"pkt_invalid_timestamp"}


def test_every_mapped_kind_is_a_notice_kind():
    assert all(kinds and all(isinstance(k, K) for k in kinds)
               for kinds in SURICATA_EVENTS.values())
