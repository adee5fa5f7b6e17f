"""TLS handshake parsing: SNI, JA3, server hello, certificate as Suricata shows it."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from tls_builders import (certificate_msg, client_hello, ext, handshake, make_cert, record,
                          server_hello)

from pakemon.applayer.tls import TlsParser, describe_certificate, render_name


GOOGLE_SUBJECT = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
    x509.NameAttribute(NameOID.LOCALITY_NAME, "Mountain View"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google Inc"),
    x509.NameAttribute(NameOID.COMMON_NAME, "*.google.com"),
])
GOOGLE_ISSUER = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google Inc"),
    x509.NameAttribute(NameOID.COMMON_NAME, "Google Internet Authority G2"),
])


def test_client_hello_sni_and_ja3():
    extra = ext(10, b"\x00\x06\x0a\x0a\x00\x1d\x00\x17") + ext(11, b"\x01\x00") + ext(
        16, b"\x00\x03\x02h2") + ext(43, b"\x04\x03\x04\x03\x03")
    data = record(22, client_hello(ciphers=(0x2A2A, 0x1301, 0xC02F), extra=extra),
                  b"\x03\x01")
    events = TlsParser().feed(data)
    assert [e.kind for e in events] == ["client_hello"]
    info = events[0].info
    assert info["sni"] == b"www.example.com"
    assert info["version"] == 0x0303
    assert info["supported_versions"] == [0x0304, 0x0303]
    assert info["alpn"] == [b"h2"]
    # JA3 leaves GREASE (0x2a2a, 0x0a0a) out of ciphers and groups.
    assert info["ja3"] == "771,4865-49199,0-10-11-16-43,29-23,0"
    assert info["ja3_hash"] == hashlib.md5(info["ja3"].encode()).hexdigest()


def test_client_hello_from_scapy_one_byte_segments():
    pytest.importorskip("scapy.layers.tls.all")
    from scapy.layers.tls.extensions import ServerName, TLS_Ext_ServerName
    from scapy.layers.tls.handshake import TLSClientHello
    from scapy.layers.tls.record import TLS

    pkt = TLS(msg=[TLSClientHello(ciphers=[0xC02F], ext=[
        TLS_Ext_ServerName(servernames=[ServerName(servername=b"evil.example.org")])])])
    data = bytes(pkt)
    p = TlsParser()
    events = []
    for i in range(len(data)):
        events += p.feed(data[i:i + 1])
    assert len(events) == 1 and events[0].info["sni"] == b"evil.example.org"


def test_no_sni():
    events = TlsParser().feed(record(22, client_hello(sni=None)))
    assert events[0].info["sni"] is None


def test_handshake_split_across_records():
    msg = client_hello(sni=b"split.example")
    data = record(22, msg[:10]) + record(22, msg[10:30]) + record(22, msg[30:])
    p = TlsParser()
    assert p.feed(data[:7]) == []
    events = p.feed(data[7:])
    assert events[0].info["sni"] == b"split.example"


def test_server_hello_tls13_version():
    p = TlsParser()
    events = p.feed(record(22, server_hello(0x0304)))
    assert events[0].kind == "server_hello"
    assert events[0].info["version"] == 0x0304
    assert events[0].info["legacy_version"] == 0x0303
    assert events[0].info["ja3s"] == "771,49199,43"


def test_certificate_formatted_as_suricata_eve():
    # Suricata's EVE documentation shows for *.google.com:
    #   "subject": "C=US, ST=California, L=Mountain View, O=Google Inc, CN=*.google.com"
    #   "issuerdn": "C=US, O=Google Inc, CN=Google Internet Authority G2"
    #   "serial": "0C:00:99:B7:D7:54:C9:F6:77:26:31:7E:BA:EA:7C:1C"
    der = make_cert(GOOGLE_SUBJECT, GOOGLE_ISSUER, 0x0C0099B7D754C9F67726317EBAEA7C1C)
    data = record(22, server_hello() + certificate_msg(der, der)) + record(20, b"\x01")
    p = TlsParser()
    events = p.feed(data)
    assert [e.kind for e in events] == ["server_hello", "certificate"]
    info = events[1].info
    assert info["subject"] == "C=US, ST=California, L=Mountain View, O=Google Inc, CN=*.google.com"
    assert info["issuer"] == "C=US, O=Google Inc, CN=Google Internet Authority G2"
    assert info["serial"] == "0C:00:99:B7:D7:54:C9:F6:77:26:31:7E:BA:EA:7C:1C"
    fp = x509.load_der_x509_certificate(der).fingerprint(hashes.SHA1()).hex()
    assert info["fingerprint"] == ":".join(fp[i:i + 2] for i in range(0, 40, 2))
    assert info["chain_length"] == 2
    assert info["not_before"] == 1704164645  # 2024-01-02T03:04:05Z
    assert p.encrypted


def test_serial_keeps_der_leading_zero():
    der = make_cert(GOOGLE_SUBJECT, GOOGLE_SUBJECT, 0xAB12CD)
    assert describe_certificate(der)["serial"] == "00:AB:12:CD"


def test_multivalued_rdn_email_and_unknown_oid():
    name = x509.Name([
        x509.RelativeDistinguishedName([
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
            x509.NameAttribute(NameOID.COMMON_NAME, "host"),
        ]),
        x509.RelativeDistinguishedName([
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@example.com")]),
        x509.RelativeDistinguishedName([
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "1234")]),
        x509.RelativeDistinguishedName([
            x509.NameAttribute(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), "x")]),
    ])
    der = make_cert(name, name, 5)
    subject = describe_certificate(der)["subject"]
    # DER sorts a SET's members by encoding; the order shown is the one sent.
    parts = subject.split(", ")
    assert sorted(parts[0].split(" + ")) == ["CN=host", "OU=Ops"]
    assert parts[1:] == ["Email=a@example.com", "serialNumber=1234", "OID(1.3.6.1.4.1.99999.1)=x"]


def test_ev_certificate_attributes():
    # Extended-validation subjects carry these; the registry names them.
    name = x509.Name([
        x509.NameAttribute(NameOID.BUSINESS_CATEGORY, "Private Organization"),
        x509.NameAttribute(NameOID.JURISDICTION_COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.PSEUDONYM, "nick"),
        x509.NameAttribute(NameOID.COMMON_NAME, "bank.example"),
    ])
    subject = describe_certificate(make_cert(name, name, 1))["subject"]
    assert subject == ("businessCategory=Private Organization, msJurisdictionCountry=US, "
                       "OID(2.5.4.65)=nick, CN=bank.example")


def test_bmpstring_and_non_string_values():
    # Name ::= SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, BMPString "hé" } },
    #                     SET { SEQUENCE { OID 2.5.4.10, OCTET STRING 01 02 } } }
    cn = b"\x30\x0b\x06\x03\x55\x04\x03\x1e\x04\x00h\x00\xe9"
    o = b"\x30\x09\x06\x03\x55\x04\x0a\x04\x02\x01\x02"
    body = b"\x31" + bytes([len(cn)]) + cn + b"\x31" + bytes([len(o)]) + o
    assert render_name(body, 0, len(body)) == "CN=h\u00e9, O=0102"
    bad = b"\x31\x0a\x30\x08\x06\x03\x55\x04\x03\x0c\x01\xff"
    assert render_name(bad, 0, len(bad)) == "<X509Error: Invalid X.509 name>"


def test_bad_certificate_counted_not_raised():
    p = TlsParser()
    events = p.feed(record(22, certificate_msg(b"\x30\x03\x02\x01\x01")))
    assert events == [] and p.cert_errors == 1


def test_not_tls_stops():
    p = TlsParser()
    assert p.feed(b"GET / HTTP/1.1\r\n\r\n") == []
    assert p.failed and p.anomalies["not_tls"] == 1
    assert p.feed(record(22, client_hello())) == []


def test_encrypted_handshake_after_ccs_ignored():
    p = TlsParser()
    data = record(20, b"\x01") + record(22, client_hello())
    assert p.feed(data) == []


def test_oversized_handshake_skipped_then_next_parsed():
    p = TlsParser(max_handshake=1000)
    big = handshake(11, bytes(3000))
    data = b"".join(record(22, big[i:i + 1500]) for i in range(0, len(big), 1500))
    data += record(22, client_hello(sni=b"after.example"))
    events = p.feed(data)
    assert p.anomalies["handshake_too_long"] == 1
    assert [e.info["sni"] for e in events] == [b"after.example"]
    assert len(p._hs) == 0


def test_sslv2_client_hello():
    specs = b"\x01\x00\x80\x07\x00\xc0"
    msg = b"\x01\x00\x02" + len(specs).to_bytes(2, "big") + b"\x00\x00\x00\x10" + specs + bytes(16)
    data = bytes([0x80 | (len(msg) >> 8), len(msg) & 0xFF]) + msg
    events = TlsParser().feed(data)
    assert events[0].kind == "client_hello"
    assert events[0].info["sslv2"] and events[0].info["version"] == 2
    assert events[0].info["ciphers"] == [0x010080, 0x0700C0]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 64))
def test_random_bytes_never_raise(data, step):
    p = TlsParser()
    for i in range(0, len(data), step):
        p.feed(data[i:i + step])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_handshake_bodies_never_raise(body):
    p = TlsParser()
    for mtype in (1, 2, 11):
        p.feed(record(22, handshake(mtype, body)))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.integers(1, 300))
def test_segmentation_and_record_split_do_not_change_events(step, rec_size):
    der = make_cert(GOOGLE_SUBJECT, GOOGLE_ISSUER, 77) if not _CERT else _CERT[0]
    _CERT[:] = [der]
    msgs = server_hello(0x0303) + certificate_msg(der)
    data = b"".join(record(22, msgs[i:i + rec_size]) for i in range(0, len(msgs), rec_size))
    p = TlsParser()
    events = []
    for i in range(0, len(data), step):
        events += p.feed(data[i:i + step])
    assert [e.kind for e in events] == ["server_hello", "certificate"]
    assert events[1].info["serial"] == "4D" and events[1].info["der"] == der


_CERT: list[bytes] = []


def test_records_and_key_exchanges_reported_on_request():
    flight = record(22, server_hello(legacy=b"\x03\x00") + handshake(12, bytes(40))
                    + handshake(14, b""), b"\x03\x00")
    alert = record(21, b"\x02\x28", b"\x03\x00")
    ssl3 = b"\x03\x00"
    stream = flight + record(20, b"\x01", ssl3) + record(23, bytes(30), ssl3) + alert
    for step in (len(stream), 1, 6):
        p = TlsParser(records=True)
        evs = []
        for k in range(0, len(stream), step):
            evs += p.feed(stream[k:k + step])
        kinds = [e.kind for e in evs]
        assert kinds == ["server_hello", "key_exchange", "record", "record", "record", "record"]
        recs = [e.info for e in evs if e.kind == "record"]
        assert [r["type"] for r in recs] == [22, 20, 23, 21]
        assert all(r["version"] == 0x0300 for r in recs)
        assert recs[0]["raw"] == flight and recs[-1]["raw"] == alert
        assert evs[1].info == {"side": "server"}
    # without it: the handshake facts only, as before
    assert [e.kind for e in TlsParser().feed(stream)] == ["server_hello"]
    assert [e.kind for e in TlsParser(records=True).feed(record(22, client_hello()))] == [
        "client_hello", "record"]
