"""TLS record and handshake builders for tests (ClientHello with SNI,
ServerHello, certificates made with ``cryptography``).

Imported as ``from tls_builders import ...`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def record(ctype: int, payload: bytes, version: bytes = b"\x03\x03") -> bytes:
    return bytes([ctype]) + version + len(payload).to_bytes(2, "big") + payload


def handshake(mtype: int, body: bytes) -> bytes:
    return bytes([mtype]) + len(body).to_bytes(3, "big") + body


def ext(etype: int, data: bytes) -> bytes:
    return etype.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def client_hello(sni: bytes | None = b"www.example.com", ciphers=(0x1301, 0xC02F),
                 extra: bytes = b"") -> bytes:
    exts = b""
    if sni is not None:
        entry = b"\x00" + len(sni).to_bytes(2, "big") + sni
        exts += ext(0, len(entry).to_bytes(2, "big") + entry)
    exts += extra
    cs = b"".join(c.to_bytes(2, "big") for c in ciphers)
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + len(cs).to_bytes(2, "big") + cs
            + b"\x01\x00" + len(exts).to_bytes(2, "big") + exts)
    return handshake(1, body)


def server_hello(version_ext: int | None = None, legacy: bytes = b"\x03\x03") -> bytes:
    exts = b""
    if version_ext is not None:
        exts = ext(43, version_ext.to_bytes(2, "big"))
    body = (legacy + bytes(32) + b"\x00" + b"\xc0\x2f" + b"\x00"
            + len(exts).to_bytes(2, "big") + exts)
    return handshake(2, body)


def make_cert(subject: x509.Name, issuer: x509.Name, serial: int) -> bytes:
    # Ed25519, its key drawn from the names and serial: the same arguments
    # give the same bytes (an ECDSA signature's length varies from run to
    # run, and with it where a seed of the differential tests cuts)
    seed = hashlib.sha256(subject.public_bytes() + issuer.public_bytes()
                          + serial.to_bytes(20, "big")).digest()
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    now = datetime.datetime(2024, 1, 2, 3, 4, 5)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=90))
            .sign(key, None))
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_msg(*ders: bytes) -> bytes:
    lst = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return handshake(11, len(lst).to_bytes(3, "big") + lst)
