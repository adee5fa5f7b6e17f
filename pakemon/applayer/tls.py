"""Sans-I/O TLS handshake parser for one direction of a TLS connection.

``TlsParser().feed(data) -> list[TlsEvent]`` takes the reassembled bytes of
one direction in any chunking and returns, in order:

* ``("client_hello", info)``: ``version`` (the legacy record-layer
  client_version, an int such as 0x0303), ``sni`` (bytes of the first
  host_name of the server_name extension, None without one; Suricata's
  ``tls.sni``), ``supported_versions`` (list of ints, TLS 1.3 clients),
  ``ciphers``, ``extensions``, ``groups``, ``point_formats`` (lists of
  ints), ``alpn`` (list of bytes), ``session_id`` (bytes), ``random`` (its
  32 bytes; not in an SSLv2 hello), ``ja3`` (the
  JA3 string, GREASE values left out as JA3 specifies) and ``ja3_hash``
  (its MD5, Suricata's ``ja3.hash``); ``sslv2`` True for an SSLv2-framed
  hello (then no extensions, no SNI).
* ``("server_hello", info)``: ``version`` (the negotiated one: the
  supported_versions extension's when present, else the legacy field),
  ``legacy_version``, ``cipher``, ``extensions``, ``random``, ``ja3s``,
  ``ja3s_hash``.
* ``("certificate", info)`` for the FIRST certificate of a Certificate
  handshake message (the server's own; TLS <= 1.2, where it is sent in
  clear): ``subject``, ``issuer`` (str, as Suricata's ``tls.cert_subject``
  / ``tls.cert_issuer``), ``serial`` (``tls.cert_serial``), ``fingerprint``
  (``tls.cert_fingerprint``), ``not_before`` / ``not_after`` (Unix
  seconds), ``chain_length`` (certificates in the message), ``der``.

With ``records=True`` (what Suricata's ``ssl_state``/``ssl_version``
rules need) two more kinds follow, in stream order:

* ``("key_exchange", {"side": "server"|"client"})`` for a ServerKeyExchange
  or ClientKeyExchange message (Suricata's ``server_keyx``/``client_keyx``
  states);
* ``("record", info)`` after each whole record (and after the events of the
  handshake messages it completed): ``type`` (content type), ``version``
  (the record-layer version, 0x0002 for an SSLv2-framed hello) and ``raw``
  (the record, header included: what those rules' payload contents read).
  Records are reported after a ChangeCipherSpec too (an Alert's header
  stays readable).

Framing: records (5-byte header) are cut from the stream and their
handshake payloads concatenated, so a handshake message split across
records and records split across TCP segments both work. Buffers keep an
offset and are compacted once per ``feed``. A handshake message longer
than ``max_handshake`` (256 KiB by default; a certificate chain is rarely
over 20 KiB) is skipped without being buffered (``handshake_too_long``).
After a ChangeCipherSpec the direction's handshake is encrypted and is no
longer parsed. Bytes that are not TLS records (record type unknown,
major version not 3, length over 2^14 + 2048) stop the parser
(``not_tls``): nothing in the rest can be trusted.

Certificate formatting is Suricata's (rust/src/x509, which uses the
x509-parser crate):

* subject / issuer: x509-parser's ``X509Name`` Display: RDNs in
  certificate order joined with ``", "``, the attributes of a
  multi-valued RDN with ``" + "``, each ``ABBREV=value``. ABBREV is CN, C,
  L, ST, O, OU, DC or Email for those attributes, else the OID registry's
  short name (serialNumber, surname, givenName, title, ...; see
  ``_SHORT_NAMES``), else ``OID(dotted.oid)``. A value of a string type
  is its bytes as UTF-8 (BMPString decoded from UTF-16); a value of any
  other type is its content bytes in upper-case hex. A value that is not
  valid text makes the whole name ``<X509Error: Invalid X.509 name>`` as
  x509-parser prints it.
* serial: the serial INTEGER's content bytes as DER encodes them (a
  leading 00 kept for a high first bit), upper-case hex pairs joined with
  ``:``.
* fingerprint: SHA-1 of the certificate's DER, lower-case hex pairs
  joined with ``:``.

The certificate is checked with the ``cryptography`` package (it must
load as an X.509 certificate, which also gives the validity dates); the
names and serial are read from the raw DER with the small reader below so
every byte is reproduced as sent rather than as cryptography re-renders
it. A certificate that does not parse gives no event and is counted in
``cert_errors``.
"""

from __future__ import annotations

import calendar
import hashlib
from typing import NamedTuple

MAX_HANDSHAKE = 256 * 1024
MAX_RECORD = 16384 + 2048  # TLSCiphertext limit (RFC 5246 6.2.3)

_CT_CCS, _CT_ALERT, _CT_HANDSHAKE, _CT_APPDATA, _CT_HEARTBEAT = 20, 21, 22, 23, 24
_HS_CLIENT_HELLO, _HS_SERVER_HELLO, _HS_CERTIFICATE = 1, 2, 11
_HS_SERVER_KEYX, _HS_CLIENT_KEYX = 12, 16


def record_header_ok(b, p: int) -> bool:
    """Whether the 5 bytes at ``p`` can be a TLS record header: a known
    content type (ChangeCipherSpec .. Heartbeat), major version 3, a length
    within the TLSCiphertext limit."""
    return (_CT_CCS <= b[p] <= _CT_HEARTBEAT and b[p + 1] == 3
            and ((b[p + 3] << 8) | b[p + 4]) <= MAX_RECORD)


class TlsEvent(NamedTuple):
    """One handshake fact: ``kind`` and its ``info`` dict (a 2-tuple)."""

    kind: str
    info: dict


def _grease(v: int) -> bool:
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


class _Reader:
    """Bounds-checked big-endian reads over a bytes object."""

    __slots__ = ("b", "p", "end")

    def __init__(self, b: bytes, p: int = 0, end: int | None = None):
        self.b = b
        self.p = p
        self.end = len(b) if end is None else end

    def left(self) -> int:
        return self.end - self.p

    def u8(self) -> int:
        if self.p + 1 > self.end:
            raise ValueError("short")
        v = self.b[self.p]
        self.p += 1
        return v

    def u16(self) -> int:
        if self.p + 2 > self.end:
            raise ValueError("short")
        v = (self.b[self.p] << 8) | self.b[self.p + 1]
        self.p += 2
        return v

    def u24(self) -> int:
        if self.p + 3 > self.end:
            raise ValueError("short")
        b = self.b
        v = (b[self.p] << 16) | (b[self.p + 1] << 8) | b[self.p + 2]
        self.p += 3
        return v

    def take(self, n: int) -> bytes:
        if n < 0 or self.p + n > self.end:
            raise ValueError("short")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def sub(self, n: int) -> "_Reader":
        if n < 0 or self.p + n > self.end:
            raise ValueError("short")
        r = _Reader(self.b, self.p, self.p + n)
        self.p += n
        return r


def parse_client_hello(body: bytes) -> dict:
    """ClientHello fields (see the module docstring); ValueError if malformed."""
    r = _Reader(body)
    version = r.u16()
    random = r.take(32)
    session_id = r.take(r.u8())
    cs = r.sub(r.u16())
    ciphers = [cs.u16() for _ in range(cs.left() // 2)]
    r.take(r.u8())  # compression methods
    sni = None
    exts: list[int] = []
    groups: list[int] = []
    formats: list[int] = []
    alpn: list[bytes] = []
    versions: list[int] = []
    if r.left() >= 2:
        er = r.sub(r.u16())
        while er.left() >= 4:
            etype = er.u16()
            ed = er.sub(er.u16())
            exts.append(etype)
            try:
                if etype == 0 and sni is None:
                    lst = ed.sub(ed.u16())
                    while lst.left() >= 3:
                        kind = lst.u8()
                        name = lst.take(lst.u16())
                        if kind == 0:
                            sni = name
                            break
                elif etype == 10:
                    g = ed.sub(ed.u16())
                    groups = [g.u16() for _ in range(g.left() // 2)]
                elif etype == 11:
                    f = ed.sub(ed.u8())
                    formats = [f.u8() for _ in range(f.left())]
                elif etype == 16:
                    a = ed.sub(ed.u16())
                    while a.left() >= 1:
                        alpn.append(a.take(a.u8()))
                elif etype == 43:
                    v = ed.sub(ed.u8())
                    versions = [v.u16() for _ in range(v.left() // 2)]
            except ValueError:
                pass  # one bad extension body: keep the others
    ja3 = "%d,%s,%s,%s,%s" % (
        version,
        "-".join(str(c) for c in ciphers if not _grease(c)),
        "-".join(str(e) for e in exts if not _grease(e)),
        "-".join(str(g) for g in groups if not _grease(g)),
        "-".join(str(f) for f in formats),
    )
    return {"version": version, "sni": sni, "supported_versions": versions,
            "ciphers": ciphers, "extensions": exts, "groups": groups,
            "point_formats": formats, "alpn": alpn, "session_id": session_id,
            "random": bytes(random), "ja3": ja3,
            "ja3_hash": hashlib.md5(ja3.encode()).hexdigest(), "sslv2": False}


def parse_server_hello(body: bytes) -> dict:
    r = _Reader(body)
    legacy = r.u16()
    random = r.take(32)
    r.take(r.u8())
    cipher = r.u16()
    r.u8()
    exts: list[int] = []
    version = legacy
    if r.left() >= 2:
        er = r.sub(r.u16())
        while er.left() >= 4:
            etype = er.u16()
            ed = er.sub(er.u16())
            exts.append(etype)
            if etype == 43 and ed.left() >= 2:
                version = ed.u16()
    ja3s = "%d,%d,%s" % (legacy, cipher, "-".join(str(e) for e in exts if not _grease(e)))
    return {"version": version, "legacy_version": legacy, "cipher": cipher,
            "extensions": exts, "random": bytes(random), "ja3s": ja3s,
            "ja3s_hash": hashlib.md5(ja3s.encode()).hexdigest()}


def _parse_sslv2_client_hello(rec: bytes) -> dict:
    r = _Reader(rec)
    if r.u8() != 1:
        raise ValueError("not a CLIENT-HELLO")
    version = r.u16()
    cs_len = r.u16()
    sid_len = r.u16()
    r.u16()  # challenge length
    specs = r.take(cs_len)
    ciphers = [(specs[i] << 16) | (specs[i + 1] << 8) | specs[i + 2]
               for i in range(0, len(specs) - 2, 3)]
    session_id = r.take(sid_len) if r.left() >= sid_len else b""
    return {"version": version, "sni": None, "supported_versions": [], "ciphers": ciphers,
            "extensions": [], "groups": [], "point_formats": [], "alpn": [],
            "session_id": session_id, "ja3": None, "ja3_hash": None, "sslv2": True}


# -- X.509 rendering (Suricata / x509-parser) -------------------------------

_ABBREV = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "0.9.2342.19200300.100.1.25": "DC", "1.2.840.113549.1.9.1": "Email",
}
# The oid-registry crate's short names (assets/oid_db.txt) for the other
# OIDs found in names; an OID missing there (pseudonym 2.5.4.65, userId
# 0.9.2342.19200300.100.1.1...) prints as OID(dotted).
_SHORT_NAMES = {
    "2.5.4.0": "objectClass", "2.5.4.1": "aliasedEntryName",
    "2.5.4.2": "knowledgeInformation", "2.5.4.4": "surname", "2.5.4.5": "serialNumber",
    "2.5.4.9": "streetAddress", "2.5.4.12": "title", "2.5.4.13": "description",
    "2.5.4.14": "searchGuide", "2.5.4.15": "businessCategory", "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode", "2.5.4.41": "name", "2.5.4.42": "givenName",
    "2.5.4.43": "initials", "2.5.4.44": "generationQualifier", "2.5.4.45": "uniqueIdentifier",
    "2.5.4.46": "dnQualifier",
    "1.3.6.1.4.1.311.60.2.1.1": "msJurisdictionLocality",
    "1.3.6.1.4.1.311.60.2.1.2": "msJurisdictionStateOrProvince",
    "1.3.6.1.4.1.311.60.2.1.3": "msJurisdictionCountry",
    "1.2.840.113549.1.9.2": "unstructuredName", "1.2.840.113549.1.9.20": "friendlyName",
}
# ASN.1 string tags x509-parser renders as text (from UTF-8): Numeric,
# Visible, Printable, General, ObjectDescriptor, Graphic, T61, Videotex,
# UTF8, IA5; BMPString (30) is decoded from UTF-16.
_TEXT_TAGS = {18, 26, 19, 27, 7, 25, 20, 21, 12, 22}
_BMP = 30


def _der(b: bytes, p: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``p``."""
    if p + 2 > end:
        raise ValueError("short")
    tag = b[p]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag number")
    ln = b[p + 1]
    p += 2
    if ln & 0x80:
        k = ln & 0x7F
        if k == 0 or k > 4 or p + k > end:
            raise ValueError("bad length")
        ln = int.from_bytes(b[p:p + k], "big")
        p += k
    if p + ln > end:
        raise ValueError("short")
    return tag, p, p + ln


def _oid(content: bytes) -> str:
    if not content:
        raise ValueError("empty OID")
    arcs: list[int] = []
    v = 0
    for c in content:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            arcs.append(v)
            v = 0
    if content[-1] & 0x80:
        raise ValueError("bad OID")
    first = arcs[0]
    x = 0 if first < 40 else 1 if first < 80 else 2
    return ".".join(str(a) for a in [x, first - 40 * x] + arcs[1:])


def render_name(b: bytes, start: int, end: int) -> str:
    """A DER Name (SEQUENCE content bounds) as x509-parser displays it."""
    rdns = []
    p = start
    try:
        while p < end:
            tag, s, e = _der(b, p, end)
            if tag != 0x31:
                raise ValueError("not a SET")
            attrs = []
            q = s
            while q < e:
                t2, s2, e2 = _der(b, q, e)
                if t2 != 0x30:
                    raise ValueError("not a SEQUENCE")
                t3, s3, e3 = _der(b, s2, e2)
                if t3 != 0x06:
                    raise ValueError("not an OID")
                oid = _oid(b[s3:e3])
                tv, sv, ev = _der(b, e3, e2)
                raw = b[sv:ev]
                if tv in _TEXT_TAGS:
                    val = raw.decode("utf-8")
                elif tv == _BMP:
                    val = raw.decode("utf-16-be")
                else:
                    val = raw.hex().upper()
                abbrev = _ABBREV.get(oid) or _SHORT_NAMES.get(oid) or f"OID({oid})"
                attrs.append(f"{abbrev}={val}")
                q = e2
            rdns.append(" + ".join(attrs))
            p = e
    except (ValueError, UnicodeDecodeError):
        return "<X509Error: Invalid X.509 name>"
    return ", ".join(rdns)


def describe_certificate(der: bytes) -> dict:
    """Suricata's view of one DER certificate; ValueError if it does not parse."""
    from cryptography import x509  # imported here: only TLS flows with cert rules pay for it

    try:
        cert = x509.load_der_x509_certificate(der)
        # cryptography < 42 has only the naive-UTC properties, later ones
        # deprecate them for the *_utc ones: timegm() takes either.
        nb = getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before
        na = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
        not_before = calendar.timegm(nb.utctimetuple())
        not_after = calendar.timegm(na.utctimetuple())
    except Exception as exc:  # cryptography raises ValueError and others on junk
        raise ValueError(f"certificate does not parse: {exc}") from None
    n = len(der)
    _t, cs, ce = _der(der, 0, n)  # Certificate
    _t, ts, te = _der(der, cs, ce)  # tbsCertificate
    p = ts
    tag, s, e = _der(der, p, te)
    if tag == 0xA0:  # [0] version
        p = e
        tag, s, e = _der(der, p, te)
    if tag != 0x02:
        raise ValueError("no serial")
    serial = ":".join("%02X" % c for c in der[s:e])
    p = e
    _t, s, e = _der(der, p, te)  # signature algorithm
    p = e
    tag, s, e = _der(der, p, te)  # issuer
    issuer = render_name(der, s, e)
    p = e
    _t, s, e = _der(der, p, te)  # validity
    p = e
    tag, s, e = _der(der, p, te)  # subject
    subject = render_name(der, s, e)
    fp = hashlib.sha1(der).hexdigest()
    return {"subject": subject, "issuer": issuer, "serial": serial,
            "fingerprint": ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)),
            "not_before": not_before, "not_after": not_after}


class TlsParser:
    """TLS records of one direction, fed incrementally (see module docstring)."""

    def __init__(self, max_handshake: int = MAX_HANDSHAKE, records: bool = False):
        self.max_handshake = max_handshake
        self.report_records = records
        self.records = 0
        self.cert_errors = 0
        self.anomalies: dict[str, int] = {}
        self.encrypted = False  # ChangeCipherSpec seen: handshake no longer readable
        self.failed = False  # not TLS: parsing stopped
        self.client_hello: dict | None = None
        self.server_hello: dict | None = None
        self.certificate: dict | None = None
        self._rec = bytearray()
        self._hs = bytearray()
        self._hs_skip = 0  # bytes of an over-long handshake message still to skip
        self._first = True
        self._out: list[TlsEvent] = []

    def _count(self, name: str) -> None:
        self.anomalies[name] = self.anomalies.get(name, 0) + 1

    def gap(self) -> None:
        """Bytes are missing: record boundaries are lost, stop parsing."""
        self._rec = bytearray()
        self._hs = bytearray()
        self.failed = True

    def feed(self, data) -> list[TlsEvent]:
        if self.failed or not data:
            return []
        buf = self._rec
        buf += data
        n = len(buf)
        p = 0
        if self._first:
            if n < 3:
                return []
            self._first = False
            if buf[0] & 0x80:
                # SSLv2 record header: 2-byte length (high bit set).
                ln = ((buf[0] & 0x7F) << 8) | buf[1]
                if n < 2 + ln:
                    self._first = True
                    return []
                try:
                    info = _parse_sslv2_client_hello(bytes(buf[2:2 + ln]))
                except ValueError:
                    self._count("not_tls")
                    self.failed = True
                    return []
                self.client_hello = info
                self._out.append(TlsEvent("client_hello", info))
                if self.report_records:
                    self._out.append(TlsEvent("record", {
                        "type": _CT_HANDSHAKE, "version": 0x0002, "raw": bytes(buf[:2 + ln])}))
                p = 2 + ln
        while n - p >= 5:
            ctype = buf[p]
            major = buf[p + 1]
            ln = (buf[p + 3] << 8) | buf[p + 4]
            if not record_header_ok(buf, p):
                self._count("not_tls")
                self.failed = True
                self._rec = bytearray()
                return self._take()
            if n - p - 5 < ln:
                break
            self.records += 1
            if ctype == _CT_HANDSHAKE and not self.encrypted:
                self._handshake(buf, p + 5, p + 5 + ln)
            elif ctype == _CT_CCS:
                self.encrypted = True
                self._hs = bytearray()
            if self.report_records:
                self._out.append(TlsEvent("record", {
                    "type": ctype, "version": (major << 8) | buf[p + 2],
                    "raw": bytes(buf[p:p + 5 + ln])}))
            p += 5 + ln
        if p:
            del buf[:p]
        return self._take()

    def _take(self) -> list[TlsEvent]:
        out = self._out
        self._out = []
        return out

    def _handshake(self, buf: bytearray, start: int, end: int) -> None:
        if self._hs_skip:
            k = min(self._hs_skip, end - start)
            self._hs_skip -= k
            start += k
            if start >= end:
                return
        hs = self._hs
        hs += buf[start:end]
        p = 0
        n = len(hs)
        while n - p >= 4:
            mtype = hs[p]
            ln = (hs[p + 1] << 16) | (hs[p + 2] << 8) | hs[p + 3]
            if ln > self.max_handshake:
                self._count("handshake_too_long")
                have = n - p - 4
                self._hs_skip = ln - have if have < ln else 0
                p = n if have < ln else p + 4 + ln
                continue
            if n - p - 4 < ln:
                break
            self._message(mtype, bytes(hs[p + 4:p + 4 + ln]))
            p += 4 + ln
        if p:
            del hs[:p]

    def _message(self, mtype: int, body: bytes) -> None:
        try:
            if mtype == _HS_CLIENT_HELLO:
                info = parse_client_hello(body)
                self.client_hello = info
                self._out.append(TlsEvent("client_hello", info))
            elif mtype == _HS_SERVER_HELLO:
                info = parse_server_hello(body)
                self.server_hello = info
                self._out.append(TlsEvent("server_hello", info))
            elif mtype == _HS_CERTIFICATE:
                self._certificate(body)
            elif self.report_records and mtype in (_HS_SERVER_KEYX, _HS_CLIENT_KEYX):
                self._out.append(TlsEvent("key_exchange", {
                    "side": "server" if mtype == _HS_SERVER_KEYX else "client"}))
        except ValueError:
            self._count("bad_handshake_message")

    def _certificate(self, body: bytes) -> None:
        r = _Reader(body)
        lst = r.sub(r.u24())
        ders = []
        while lst.left() >= 3:
            ders.append(lst.take(lst.u24()))
        if not ders:
            return
        try:
            info = describe_certificate(ders[0])
        except ValueError:
            self.cert_errors += 1
            self._count("cert_parse_error")
            return
        info["chain_length"] = len(ders)
        info["der"] = ders[0]
        self.certificate = info
        self._out.append(TlsEvent("certificate", info))
