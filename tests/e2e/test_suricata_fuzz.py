"""Damaged traffic through the Suricata engine's app-layer paths never raises.

Sessions of every kind the engine parses (HTTP with chunked and gzip
bodies, TLS handshakes with a real certificate and SSLv3 ones for
ssl_state/ssl_version, SMTP mails with base64 attachments, DNS over UDP and
TCP, ICMP)
are cut, extended and bit-flipped at random, with checksum verification off
so the damage reaches the parsers; the pipeline must take every frame and
still alert on the undamaged sessions (the sensor must not die on a packet).
"""

from __future__ import annotations

import random
from email.message import EmailMessage

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from tls_builders import certificate_msg, client_hello, make_cert, record, server_hello

from pakemon.config import Config, StreamConfig
from pakemon.detect.sigengine import SigRuleSet
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.events import Alert
from pakemon.lab.traffic import TcpConnection, dns_exchange, ping_exchange
from pakemon.pipeline import Pipeline

RULES = """\
alert http any any -> any any (msg:"uri"; http.uri; content:"/cgi-bin/phf"; sid:1;)
alert http any any -> any any (msg:"body"; flow:to_client; file.data; content:"secret"; sid:2;)
alert http any any -> any any (msg:"req body"; http.request_body; content:"hello"; sid:3;)
alert tls any any -> any any (msg:"sni"; tls.sni; content:"evil.example"; sid:4;)
alert tls any any -> any any (msg:"cert"; tls.cert_subject; content:"CN=x.example"; sid:5;)
alert dns any any -> any any (msg:"dns"; dns.query; content:"evil"; nocase; sid:6;)
alert tcp any any -> any 80 (msg:"stream"; flow:to_server; content:"phf"; sid:7;)
alert icmp any any -> any any (msg:"ping"; itype:8; content:"ping"; sid:8;)
alert smtp any any -> any any (msg:"mail"; flow:to_server; file_data; content:"exploit"; sid:9;)
alert tcp any 443 -> any any (msg:"sslv3"; flow:to_client; ssl_version:sslv3; \
ssl_state:server_hello; content:"|16 03 00|"; depth:3; sid:10;)
"""
CERT = make_cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x.example")]),
                 x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]), 5)


def mail() -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.org", "b@example.net", "x"
    m.set_content("hi")
    m.add_attachment(b"an exploit inside", maintype="application", subtype="octet-stream",
                     filename="x.bin")
    return m.as_bytes()


def session(rnd: random.Random, i: int) -> list:
    c, ts = f"10.1.{i // 250 % 250}.{i % 250 + 1}", float(i)
    kind = i % 7
    if kind == 5:
        t = TcpConnection(c, "10.2.0.25", 1024 + i, 25, ts=ts).open()
        t.send(b"220 mx ESMTP\r\n", from_client=False)
        t.send(b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
               + mail().replace(b"\n", b"\r\n") + b"\r\n.\r\nQUIT\r\n",
               segment=rnd.choice([None, 7]))
        return t.close()
    if kind == 6:
        t = TcpConnection(c, "10.2.0.44", 1024 + i, 443, ts=ts).open()
        t.send(record(22, client_hello(b"a.example"), b"\x03\x00"))
        t.send(record(22, server_hello(legacy=b"\x03\x00"), b"\x03\x00"), from_client=False,
               segment=rnd.choice([None, 2]))
        return t.close()
    if kind == 0:
        t = TcpConnection(c, "10.2.0.80", 1024 + i, 80, ts=ts).open()
        t.send(b"GET /cgi-bin/phf?x HTTP/1.1\r\nHost: a\r\n\r\n", segment=rnd.choice([None, 3]))
        body = b"\x1f\x8b" + bytes(rnd.randrange(20)) if rnd.random() < 0.5 else b"secret"
        t.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n", from_client=False)
        return t.close()
    if kind == 1:
        t = TcpConnection(c, "10.2.0.44", 1024 + i, 443, ts=ts).open()
        t.send(record(22, client_hello(b"evil.example")), segment=rnd.choice([None, 5]))
        t.send(record(22, server_hello() + certificate_msg(CERT)), from_client=False)
        return t.close()
    if kind == 2:
        frames = dns_exchange(c, "10.2.0.53", 1024 + i, "www.evil.example", ts=ts)
        msg = frames[0][1][42:]
        t = TcpConnection(c, "10.2.0.53", 1024 + i, 53, ts=ts + 0.5).open()
        t.send(len(msg).to_bytes(2, "big") + msg)
        return frames + t.close()
    if kind == 3:
        return ping_exchange(c, "10.2.0.80", i & 0xFFFF, 1, ts=ts)
    t = TcpConnection(c, "10.2.0.80", 1024 + i, 80, ts=ts).open()
    t.send(b"\r\nPOST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
           segment=rnd.choice([None, 1]))
    return t.close()


def damage(rnd: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    for _ in range(rnd.randrange(1, 5)):
        op, n = rnd.randrange(4), len(b)
        if op == 0 and n > 14:
            b[rnd.randrange(14, n)] = rnd.randrange(256)
        elif op == 1 and n > 20:
            del b[rnd.randrange(14, n):]
        elif op == 2:
            b += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40)))
        elif op == 3 and n > 40:
            i, j = sorted((rnd.randrange(34, n), rnd.randrange(34, n)))
            del b[i:j]
    return bytes(b)


@pytest.mark.parametrize("seed", range(4))
def test_damaged_app_layer_traffic_never_raises(seed):
    rnd = random.Random(seed)
    sig = SigRuleSet(parse_suricata_rules(RULES)[0])
    pipe = Pipeline([], Config(stream=StreamConfig(checksum="off")), sig=sig)
    clean = Pipeline([], Config(stream=StreamConfig(checksum="off")), sig=sig)
    damaged = 0
    got, want = set(), set()
    for i in range(100):
        frames = session(rnd, i)
        if rnd.random() < 0.5:  # every frame of this session may be hit
            for ts, f in frames:
                if rnd.random() < 0.5:
                    f = damage(rnd, f)
                    damaged += 1
                pipe.feed(ts, f)
        else:
            for ts, f in frames:
                got |= {e.rule.sid for e in pipe.feed(ts, f) if isinstance(e, Alert)}
            for ts, f in frames:
                want |= {e.rule.sid for e in clean.feed(ts, f) if isinstance(e, Alert)}
    pipe.flush()
    clean.flush()
    assert damaged > 100
    # the undamaged sessions alert among the damaged ones as they do alone
    assert len(want) >= 8 and {9, 10} <= want and want <= got, (want, got)
