"""IPv6 extension headers the target drops a packet for.

The decoder drops exactly the datagrams Linux dropped in the live cases
(tests/integration/live_cases.py ``IPV6_EXT_CASES``, re-checked against the
kernel by test_live_target.py): an option whose action bits say discard, a
Hop-by-Hop header not first, a Routing header with segments left. A decoy
carrying one is otherwise an insertion.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))

from live_cases import HOP, IPV6_EXT_CASES, ext_chain  # noqa: E402

from helpers import BUNDLED_RULES, run_frames  # noqa: E402
from pakemon.decode import DecodeError, decode_frame  # noqa: E402
from pakemon.decode.packet import LINKTYPE_ETHERNET  # noqa: E402
from pakemon.detect.rule_parser import load_rules  # noqa: E402
from pakemon.events import Alert, Notice  # noqa: E402
from pakemon.events import NoticeKind as K  # noqa: E402
from pakemon.lab.traffic import ether  # noqa: E402
from pakemon.pipeline import Pipeline  # noqa: E402

from scapy.layers.inet import TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.packet import Raw  # noqa: E402

A6, B6 = "2001:db8::1", "2001:db8::2"


def v6_frame(ext, upper) -> bytes:
    """An Ethernet/IPv6 frame with the headers ``ext`` before ``upper`` (a
    scapy UDP or TCP layer, checksummed over the right pseudo-header)."""
    nh, hdrs = ext_chain(ext, 17 if isinstance(upper, UDP) else 6)
    up = bytes(IPv6(src=A6, dst=B6) / upper)[40:]
    return ether(bytes(IPv6(src=A6, dst=B6, nh=nh, hlim=64) / Raw(hdrs + up)), ethertype=0x86DD)


@pytest.mark.parametrize("name,doc,ext,taken", IPV6_EXT_CASES,
                         ids=[c[0] for c in IPV6_EXT_CASES])
def test_extension_headers_dropped_as_linux_drops_them(name, doc, ext, taken):
    frame = v6_frame(ext, UDP(sport=40000, dport=9999) / Raw(b"payload"))
    if taken:
        pkt = decode_frame(LINKTYPE_ETHERNET, frame, 0.0)
        assert pkt.proto == 17 and pkt.payload == b"payload", doc
    else:
        with pytest.raises(DecodeError) as e:
            decode_frame(LINKTYPE_ETHERNET, frame, 0.0)
        assert e.value.kind is K.DECODE_IPV6_EXTHDR_REFUSED, doc


@pytest.mark.parametrize("body,taken", [
    (b"\x00" * 6, True),  # six Pad1: a run of 6
    (b"\x01\x06" + b"\x00" * 6 + b"\x00" * 6, False),  # PadN of 8 bytes: over 7
    (b"\x01\x04\x00\x01\x00\x00", False),  # PadN bytes not zero
    (b"\x05\x02\x00\x00\x01\x00", True),  # Router Alert, 4 bytes, then PadN of 2
    (b"\x05\x03\x00\x00\x00\x00", False),  # Router Alert of 5 bytes
    (b"\xc2\x04\x00\x01\x00\x00", False),  # Jumbo Payload in an ordinary packet
    (b"\x1e\x00" * 9 + b"\x00\x00", False),  # nine options: over 8
    (b"\x1e\x00" * 8 + b"\x00\x00\x00\x00", True),  # eight: the most taken
    (b"\x1e\x09\x00\x00", False),  # an option running past the header
], ids=["pad1-run-6", "padn-8", "padn-not-zero", "router-alert", "router-alert-long",
        "jumbo", "nine-options", "eight-options", "cut-option"])
def test_hop_by_hop_options_as_ip6_parse_tlv_reads_them(body, taken):
    frame = v6_frame([(HOP, body)], UDP(sport=40000, dport=9999) / Raw(b"payload"))
    if taken:
        assert decode_frame(LINKTYPE_ETHERNET, frame, 0.0).payload == b"payload"
    else:
        with pytest.raises(DecodeError) as e:
            decode_frame(LINKTYPE_ETHERNET, frame, 0.0)
        assert e.value.kind is K.DECODE_IPV6_EXTHDR_REFUSED


def test_an_unknown_option_taken_is_still_an_anomaly():
    skip = next(c[2] for c in IPV6_EXT_CASES if c[0] == "dstopts_unknown_skip")
    pkt = decode_frame(LINKTYPE_ETHERNET, v6_frame(skip, UDP(sport=1, dport=2)), 0.0)
    assert K.DECODE_IPV6_DSTOPTS_UNKNOWN_OPT in pkt.anomalies


def test_an_insertion_behind_a_discard_option_does_not_hide_the_attack():
    """GET /cgi-bin/ over IPv6, a decoy for the next bytes in a segment whose
    Destination Options say discard, then the real rest of the request."""
    discard = next(c[2] for c in IPV6_EXT_CASES if c[0] == "dstopts_unknown_discard")
    cseq, sseq = 1000, 5000
    frames = []

    def seg(seq, flags, data=b"", ext=(), from_client=True):
        src, dst, sp, dp = (A6, B6, 41000, 80) if from_client else (B6, A6, 80, 41000)
        ack = sseq + 1 if from_client else cseq + 1
        t = TCP(sport=sp, dport=dp, seq=seq, ack=ack, flags=flags, window=65535)
        nh, hdrs = ext_chain(list(ext), 6)
        up = bytes(IPv6(src=src, dst=dst) / t / Raw(data))[40:]
        frames.append((len(frames) * 0.001, ether(
            bytes(IPv6(src=src, dst=dst, nh=nh, hlim=64) / Raw(hdrs + up)), ethertype=0x86DD)))

    seg(cseq, "S")
    seg(sseq, "SA", from_client=False)
    seg(cseq + 1, "A")
    first, rest = b"GET /cgi-bin/", b"phf?Qalias=x HTTP/1.0\r\n\r\n"
    seg(cseq + 1, "PA", first)
    seg(cseq + 1 + len(first), "PA", b"x" * len(rest), ext=discard)
    seg(cseq + 1 + len(first), "PA", rest)
    seg(cseq + 1 + len(first) + len(rest), "FA")
    pipe = Pipeline(load_rules(BUNDLED_RULES).rules)
    events = run_frames(pipe, frames)
    assert "CGI-phf(CVE-1999-0067)" in {e.rule.name for e in events if isinstance(e, Alert)}
    assert K.DECODE_IPV6_EXTHDR_REFUSED in [e.kind for e in events if isinstance(e, Notice)]
