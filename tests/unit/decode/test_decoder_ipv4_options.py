"""IPv4 options the target drops a packet for.

The decoder drops exactly the packets Linux dropped in the live cases
(tests/integration/live_cases.py ``IP_OPTION_CASES``, recorded against this
machine's kernel and re-checked by test_live_target.py), so an attacker
cannot slip the sensor bytes the server never takes behind a source route,
a CIPSO label or a malformed record route or timestamp.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))

from live_cases import IP_OPTION_CASES, with_ip_options  # noqa: E402

from helpers import BUNDLED_RULES, phf_with_decoy, run_frames  # noqa: E402
from pakemon.decode import DecodeError, decode_frame  # noqa: E402
from pakemon.decode.packet import LINKTYPE_ETHERNET  # noqa: E402
from pakemon.detect.rule_parser import load_rules  # noqa: E402
from pakemon.events import Alert, Notice  # noqa: E402
from pakemon.events import NoticeKind as K  # noqa: E402
from pakemon.lab.traffic import ACK, PSH, tcp_frame, udp_frame  # noqa: E402
from pakemon.pipeline import Pipeline  # noqa: E402

# well formed, but refused: a source route, a CIPSO label
REFUSED = {"lsrr", "ssrr", "lsrr_used_up", "nop_lsrr", "cipso"}


def segment(opts: bytes, payload: bytes = b"bbbbb") -> bytes:
    return bytes(with_ip_options(tcp_frame("10.0.0.1", "10.0.0.2", 40000, 80, 1, 1, PSH | ACK,
                                           payload), opts))


@pytest.mark.parametrize("name,doc,opts,dropped", IP_OPTION_CASES,
                         ids=[c[0] for c in IP_OPTION_CASES])
def test_options_dropped_as_linux_drops_them(name, doc, opts, dropped):
    frame = segment(opts)
    if dropped:
        with pytest.raises(DecodeError) as e:
            decode_frame(LINKTYPE_ETHERNET, frame, 0.0)
        assert e.value.kind is (K.DECODE_IPV4_OPTION_REFUSED if name in REFUSED
                                else K.DECODE_IPV4_BAD_OPTIONS), doc
        assert e.value.pkt.src == bytes((10, 0, 0, 1))  # the notice can say from where
    else:
        pkt = decode_frame(LINKTYPE_ETHERNET, frame, 0.0)
        assert pkt.ip_hdr_len == 20 + len(opts) + (-len(opts) % 4)
        assert pkt.payload == b"bbbbb", doc


def test_the_options_are_read_at_the_ip_layer_for_every_protocol():
    lsrr = next(c[2] for c in IP_OPTION_CASES if c[0] == "lsrr")
    frame = bytes(with_ip_options(udp_frame("10.0.0.1", "10.0.0.2", 5000, 53, b"q"), lsrr))
    with pytest.raises(DecodeError) as e:
        decode_frame(LINKTYPE_ETHERNET, frame, 0.0)
    assert e.value.kind is K.DECODE_IPV4_OPTION_REFUSED


@pytest.mark.parametrize("option", ["lsrr", "cipso", "rr_pointer_3", "ts_overflow_15"])
def test_an_insertion_behind_an_option_does_not_hide_the_attack(option):
    """GET /cgi-bin/ then, at the next sequence number, a chaff segment the
    server drops for its IP option, then the real rest of the request: the
    server reads the attack, so must the sensor (before, it took the chaff
    as the in-order bytes and the real rest as a retransmission)."""
    opts = next(c[2] for c in IP_OPTION_CASES if c[0] == option)
    frames = phf_with_decoy(lambda frame: with_ip_options(frame, opts))
    pipe = Pipeline(load_rules(BUNDLED_RULES).rules)
    events = run_frames(pipe, frames)
    alerts = {e.rule.name for e in events if isinstance(e, Alert)}
    assert "CGI-phf(CVE-1999-0067)" in alerts
    want = K.DECODE_IPV4_OPTION_REFUSED if option in REFUSED else K.DECODE_IPV4_BAD_OPTIONS
    assert [e.kind for e in events if isinstance(e, Notice)] == [want]
    assert pipe.stats.notices[want.name] == 1 and pipe.stats.malformed == 1
