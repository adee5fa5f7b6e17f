"""Suricata TLS rules (tls.sni, tls.cert_*) on real handshakes through the pipeline.

The handshakes are built record by record (tests/tls_builders.py) with real
X.509 certificates, carried in TCP sessions the reassembler follows; the
rules are ET Open's shapes (sticky buffers and the legacy keywords).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID
from helpers import sid_counts
from tls_builders import certificate_msg, client_hello, make_cert, record, server_hello

from pakemon.applayer.tls import describe_certificate
from pakemon.lab.traffic import TcpConnection

CN = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil Corp"),
                x509.NameAttribute(NameOID.COMMON_NAME, "c2.evil.example")])
CA = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shady CA")])

RULES = """\
alert tls $HOME_NET any -> $EXTERNAL_NET any (msg:"sni"; flow:established,to_server; \
tls.sni; content:"c2.evil.example"; endswith; nocase; sid:1;)
alert tls $EXTERNAL_NET any -> $HOME_NET any (msg:"subject"; flow:established,to_client; \
tls_cert_subject; content:"CN=c2.evil.example"; sid:2;)
alert tls any any -> any any (msg:"issuer and sni"; tls.cert_issuer; content:"Shady CA"; \
tls.sni; content:"evil"; sid:3;)
alert tls any any -> any any (msg:"other sni"; tls.sni; content:"good.example"; sid:4;)
alert tls any any -> any any (msg:"serial"; tls.cert_serial; content:"01:E2:40"; sid:5;)
alert tls $EXTERNAL_NET any -> $HOME_NET any (msg:"raw and issuer"; flow:from_server,established; \
content:"c2.evil.example"; fast_pattern; tls_cert_issuer; content:"Shady CA"; sid:6;)
alert tls $EXTERNAL_NET any -> $HOME_NET any (msg:"raw absent"; flow:from_server,established; \
content:"|55 04 03|"; content:"not.there"; distance:0; tls_cert_subject; content:"CN="; sid:7;)
"""
VARS = {"HOME_NET": "10.0.0.0/8", "EXTERNAL_NET": "!$HOME_NET"}


def handshake_frames(sni: bytes | None, subject=CN, issuer=CA, serial=123456,
                     port: int = 443, segment: int | None = None):
    der = make_cert(subject, issuer, serial)
    c = TcpConnection("10.0.0.5", "203.0.113.9", 45000, port).open()
    c.send(record(22, client_hello(sni), b"\x03\x01"), segment=segment)
    c.send(record(22, server_hello() + certificate_msg(der)), from_client=False,
           segment=segment)
    c.send(record(20, b"\x01"))  # ChangeCipherSpec: the rest is encrypted
    c.send(record(23, b"\x17" * 40))
    return c.close(), der


def run(frames, rules=RULES):
    return sid_counts(frames, rules, VARS)


def test_sni_subject_issuer_and_serial_rules_alert_once_each():
    frames, der = handshake_frames(b"c2.evil.example")
    serial = describe_certificate(der)["serial"]
    assert serial == "01:E2:40"  # 123456 as Suricata prints it
    assert run(frames) == {1: 1, 2: 1, 3: 1, 5: 1, 6: 1}


def test_other_names_do_not_alert():
    frames, _ = handshake_frames(b"good.example", subject=x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "good.example")]),
        issuer=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Real CA")]), serial=7)
    assert run(frames) == {4: 1}


def test_one_byte_segments_and_an_unusual_port():
    # app protocol by content, not port; records and handshakes split anywhere
    frames, _ = handshake_frames(b"c2.evil.example", port=8443, segment=1)
    assert run(frames) == {1: 1, 2: 1, 3: 1, 5: 1, 6: 1}


def test_no_sni_no_sni_rule():
    frames, _ = handshake_frames(None)
    assert run(frames) == {2: 1, 5: 1, 6: 1}


def test_not_tls_is_not_matched():
    c = TcpConnection("10.0.0.5", "203.0.113.9", 45000, 443).open()
    c.send(b"GET / HTTP/1.1\r\nHost: c2.evil.example\r\n\r\n")
    assert run(c.close()) == {}


def test_ja3_and_ja3s_rules():
    import hashlib

    # JA3 written out from what the builders send (TLS 1.2 hello, ciphers
    # 0x1301 and 0xc02f, one extension: server_name), JA3S likewise
    ja3 = "771,4865-49199,0,,"
    ja3s = "771,49199,"
    md5 = hashlib.md5(ja3.encode()).hexdigest()
    md5s = hashlib.md5(ja3s.encode()).hexdigest()
    rules = (
        f'alert tls any any -> any any (msg:"ja3"; ja3.hash; content:"{md5}"; sid:11;)\n'
        f'alert tls any any -> any any (msg:"ja3 legacy"; ja3_hash; content:"{md5}"; sid:12;)\n'
        f'alert tls any any -> any any (msg:"ja3 str"; ja3.string; content:"{ja3}"; '
        "startswith; endswith; sid:13;)\n"
        f'alert tls any any -> any any (msg:"ja3s"; ja3s.hash; content:"{md5s}"; sid:14;)\n'
        'alert tls any any -> any any (msg:"other"; ja3.hash; content:"00000000"; sid:15;)\n')
    frames, _ = handshake_frames(b"www.example.com")
    assert run(frames, rules) == {11: 1, 12: 1, 13: 1, 14: 1}
    frames, _ = handshake_frames(None)  # no SNI: JA3 still there (and without extension 0)
    md5_nosni = hashlib.md5(b"771,4865-49199,,,").hexdigest()
    assert run(frames, rules.replace(md5, md5_nosni)) == {11: 1, 12: 1, 14: 1}


def test_cert_chain_len_counts_the_servers_certificates():
    rules = (
        'alert tls any any -> any any (msg:"long"; tls.cert_chain_len:>2; sid:1;)\n'
        'alert tls any any -> any any (msg:"three"; tls.cert_chain_len:3; sid:2;)\n'
        'alert tls any any -> any any (msg:"one, with subject"; tls.cert_chain_len:1; '
        'tls.cert_subject; content:"evil"; sid:3;)\n')
    for n, want in ((1, {3: 1}), (3, {1: 1, 2: 1}), (4, {1: 1})):
        ders = [make_cert(CN, CA, 1000 + i) for i in range(n)]
        c = TcpConnection("10.0.0.5", "203.0.113.9", 45000 + n, 443).open()
        c.send(record(22, client_hello(b"a.example"), b"\x03\x01"))
        c.send(record(22, server_hello() + certificate_msg(*ders)), from_client=False)
        c.send(record(20, b"\x01"))
        assert run(c.close(), rules) == want, n
    # no certificate at all (a resumed session): no match, not even for >= 0
    c = TcpConnection("10.0.0.5", "203.0.113.9", 45100, 443).open()
    c.send(record(22, client_hello(b"a.example"), b"\x03\x01"))
    c.send(record(22, server_hello()), from_client=False)
    assert run(c.close(), 'alert tls any any -> any any (tls.cert_chain_len:>=0; sid:9;)') == {}


def test_eve_alerts_carry_the_tls_object_as_suricata_writes_it():
    from helpers import sig_alerts

    from pakemon.output.eve import alert_record
    frames, der = handshake_frames(b"c2.evil.example")
    info = describe_certificate(der)
    recs = {a.rule.sid: alert_record(a) for a in sig_alerts(frames, RULES, VARS)}
    tls = recs[2]["tls"]  # the certificate rule: everything of the handshake so far
    assert tls["sni"] == "c2.evil.example" and tls["version"] == "TLS 1.2"
    assert tls["subject"] == info["subject"] and tls["issuerdn"] == "CN=Shady CA"
    assert tls["serial"] == "01:E2:40" and tls["fingerprint"] == info["fingerprint"]
    assert tls["notbefore"] == "2024-01-02T03:04:05"
    assert len(tls["ja3"]["hash"]) == 32 and tls["ja3s"]["string"].startswith("771,")
    # the SNI rule alerts at the ClientHello: only what was known then
    assert set(recs[1]["tls"]) == {"sni", "ja3"} and recs[1]["app_proto"] == "tls"
