"""ssl_state / ssl_version rules (ET Open's POODLE rules, verbatim) on real
TLS handshakes carried in TCP sessions through the pipeline.

Each rule reads one TLS record of its direction (its payload contents are
anchored at the record header, ``content:"|16 03 00|"; depth:3``) together
with the flow's handshake state and the direction's version.
"""

from __future__ import annotations

import pytest
from helpers import sid_counts
from tls_builders import client_hello, ext, handshake, record, server_hello

from pakemon.detect.sigengine import SigRuleSet, _TlsState
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection

# emerging-current_events.rules / emerging-policy.rules, as shipped
POODLE = """\
alert tcp $HOME_NET [443,465,993,995,25] -> $EXTERNAL_NET any (msg:"ET CURRENT_EVENTS SSL \
excessive fatal alerts (possible POODLE attack against server)"; flow:from_server,established; \
ssl_version:sslv3; content:"|15 03 00 00|"; depth:4; byte_jump:2,3,post_offset -1; \
isdataat:!2,relative; threshold:type both, track by_src, count 50, seconds 300; \
classtype:attempted-recon; sid:2019418; rev:5;)
alert tcp $EXTERNAL_NET [443,465,993,995,25] -> $HOME_NET any (msg:"SSLv3 outbound connection \
from client vulnerable to POODLE attack"; flow:established,from_server; ssl_version:sslv3; \
ssl_state:server_hello; content:"|16 03 00|"; depth:3; threshold: type limit, track by_src, \
seconds 300, count 1; classtype:policy-violation; sid:2019416; rev:3;)
alert tcp $HOME_NET [443,465,993,995,25] -> any any (msg:"SSLv3 inbound connection to server \
vulnerable to POODLE attack"; flow:established,to_client; ssl_version:sslv3; \
ssl_state:server_hello; content:"|16 03 00|"; depth:3; threshold: type limit, track by_src, \
seconds 300, count 1; classtype:policy-violation; sid:2019415; rev:3;)
"""
VARS = {"HOME_NET": "10.0.0.0/8", "EXTERNAL_NET": "!$HOME_NET"}
SSL3, TLS12 = b"\x03\x00", b"\x03\x03"
SERVER_KEYX = handshake(12, bytes(70))
HELLO_DONE = handshake(14, b"")


def session(server_version: bytes, port=443, flight_extra=b"", segment=None, cport=40000,
            ts=0.0, inside_server=True):
    server, client = ("10.0.0.7", "198.51.100.9") if inside_server else \
        ("198.51.100.9", "10.0.0.7")
    c = TcpConnection(client, server, cport, port, ts=ts).open()
    c.send(record(22, client_hello(b"mail.example"), b"\x03\x01"), segment=segment)
    c.send(record(22, server_hello(legacy=server_version) + flight_extra + HELLO_DONE,
                  server_version), from_client=False, segment=segment)
    c.send(record(20, b"\x01", server_version))
    return c.close()


def fatal_alert_session(cport, ts):
    """A client's hello answered by the server's fatal alert in an SSLv3 record."""
    c = TcpConnection("198.51.100.9", "10.0.0.7", cport, 443, ts=ts).open()
    c.send(record(22, client_hello(b"x.example"), SSL3))
    c.send(record(21, b"\x02\x28", SSL3), from_client=False)
    return c.close()


def run(frames, rules=POODLE):
    rs, skipped, errors = parse_suricata_rules(rules, vars=VARS)
    assert not errors and not skipped, (errors, skipped)
    sig = SigRuleSet(rs)
    assert not sig.inert(), sig.inert()  # none of them is left uninspected
    return sid_counts(frames, "", sig_rules=sig)


@pytest.mark.parametrize("segment", [None, 1, 7])
def test_sslv3_server_hello_alerts_whatever_the_segmentation(segment):
    assert run(session(SSL3, segment=segment)) == {2019415: 1}


def test_sslv3_server_outside_alerts_the_outbound_rule():
    assert run(session(SSL3, inside_server=False)) == {2019416: 1}


def test_tls12_server_hello_does_not_alert():
    assert run(session(TLS12)) == {}
    assert run(session(TLS12, inside_server=False)) == {}


def test_server_hello_in_a_flight_with_the_key_exchange_still_alerts():
    # Suricata would read the state as server_keyx here (the last message
    # parsed); the ServerHello of the same record is not hidden by it
    assert run(session(SSL3, flight_extra=SERVER_KEYX)) == {2019415: 1}


def test_other_ports_are_not_inspected():
    assert run(session(SSL3, port=8443)) == {}


def test_fifty_fatal_alerts_make_one_alert_forty_nine_none():
    def frames(n):
        out = []
        for i in range(n):
            out += fatal_alert_session(41000 + i, ts=i * 0.5)
        return out
    assert run(frames(49)) == {}
    assert run(frames(60)) == {2019418: 1}


def test_state_and_version_semantics():
    st = _TlsState()

    class R:
        ssl_state = ("server_hello",)
        ssl_version = ("sslv3",)
    st.message("client_hello", {"version": 0x0301})
    st.record(True, 0x0301)
    assert not st.fits(R, False)  # client_hello state only
    st.message("server_hello", {"legacy_version": 0x0300, "version": 0x0300})
    st.record(False, 0x0300)
    assert st.fits(R, False)
    assert not st.fits(R, True)  # the client's version is TLS 1.0

    class Neg:
        ssl_state = ("!client_hello",)
        ssl_version = ("!sslv2",)
    assert st.fits(Neg, False)
    st.record(False, 0x0300)  # a record without a handshake message keeps the state
    assert st.fits(R, False)


# ------------------------------------------------------------- tls.version

def _tls_version_rules(*versions):
    return "".join(
        f'alert tls any any -> any any (msg:"v {v} {d}"; flow:{d}; tls.version:{v}; '
        f'sid:{sid};)\n'
        for sid, (v, d) in enumerate(versions, 1))


def tls13_session(server_version: int, client_versions=(0x0304, 0x0303)):
    """A TLS 1.3-style handshake: both hellos say TLS 1.2 in their legacy
    fields; the supported_versions extensions carry the real ones."""
    sv = b"".join(v.to_bytes(2, "big") for v in client_versions)
    c = TcpConnection("198.51.100.9", "10.0.0.7", 40001, 443).open()
    c.send(record(22, client_hello(b"a.example", extra=ext(43, bytes([len(sv)]) + sv)),
                  b"\x03\x01"))
    c.send(record(22, server_hello(version_ext=server_version), TLS12), from_client=False)
    c.send(record(20, b"\x01", TLS12))
    return c.close()


def test_tls_version_reads_the_supported_versions_extension():
    rules = _tls_version_rules(("1.3", "to_client"), ("1.2", "to_client"),
                               ("1.3", "to_server"), ("1.2", "to_server"),
                               ("0x0304", "to_client"))
    assert run(tls13_session(0x0304), rules) == {1: 1, 3: 1, 5: 1}


def test_tls_version_of_a_plain_tls12_handshake():
    rules = _tls_version_rules(("1.2", "to_client"), ("1.3", "to_client"),
                               ("1.0", "to_server"), ("1.2", "to_server"))
    # session(): the client's hello says TLS 1.2 inside a TLS 1.0 record
    assert run(session(TLS12), rules) == {1: 1, 4: 1}


def test_tls_version_draft_counts_as_13_unless_written_raw():
    rules = _tls_version_rules(("1.3", "to_client"), ("0x7f12", "to_client"),
                               ("0x0304", "to_client"))
    assert run(tls13_session(0x7F12, (0x7F12,)), rules) == {1: 1, 2: 1}


@pytest.mark.parametrize("bad", ["1.4", "tls1.2", "0x123", "", "1.2,1.3"])
def test_tls_version_bad_values_are_errors(bad):
    rs, skipped, errors = parse_suricata_rules(
        f'alert tls any any -> any any (tls.version:{bad}; sid:1;)', vars=VARS)
    assert not rs and errors and "tls.version" in str(errors[0])


def test_a_state_rule_without_content_alerts_once_per_direction():
    # the client sends a hello and a ChangeCipherSpec record, both TLS 1.0
    # framed; Suricata alerts on its one TLS transaction once
    rules = ('alert tls any any -> any any (flow:to_server; ssl_version:tls1.2; sid:1;)\n'
             'alert tls any any -> any any (ssl_state:client_hello; sid:2;)\n')
    assert run(session(TLS12), rules) == {1: 1, 2: 1}


# ------------------------------------------------------------- tls.random

def test_tls_random_reads_the_inspected_directions_hello():
    # client_hello() sends bytes 0..31 as its random; server_hello() zeros
    rules = (
        'alert tls any any -> any any (msg:"client random"; flow:to_server; tls.random; '
        'content:"|00 01 02 03|"; startswith; bsize:32; sid:1;)\n'
        'alert tls any any -> any any (msg:"client time"; tls.random_time; '
        'content:"|00 01 02 03|"; bsize:4; sid:2;)\n'
        'alert tls any any -> any any (msg:"client bytes"; tls.random_bytes; '
        'content:"|04 05|"; startswith; bsize:28; sid:3;)\n'
        'alert tls any any -> any any (msg:"server random"; flow:to_client; tls.random; '
        'content:"|00 00 00 00 00 00 00 00|"; sid:4;)\n'
        'alert tls any any -> any any (msg:"not the client\'s"; flow:to_client; '
        'tls.random; content:"|00 01 02 03|"; sid:5;)\n')
    assert run(session(TLS12), rules) == {1: 1, 2: 1, 3: 1, 4: 1}
