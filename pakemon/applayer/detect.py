"""Application protocol detection by content, port-agnostic.

After Suricata's probing parsers: the first bytes of each direction of a
TCP flow name its protocol, whatever the ports, so ``alert http`` rules
apply to HTTP on port 8081 and ``alert tls`` to TLS on 8443. Ports are
used only where the content alone is ambiguous (an FTP client's ``USER``
command looks like any line protocol; a ``220`` banner without ``FTP`` or
``SMTP`` in it).

``probe(data, to_server, sport, dport) -> str | None`` looks at the first
bytes of one direction and answers

* a protocol name: ``"http"``, ``"tls"``, ``"dns"``, ``"ssh"``, ``"ftp"``,
  ``"smtp"``, ``"smb"``;
* ``None``: the bytes so far are a prefix of something recognizable, more
  are needed (``b"GE"``, a TLS record header without its handshake type,
  a ``220`` banner line without its end);
* ``""``: none of them, whatever follows.

What each protocol needs (in the order tried):

* SMB: a NetBIOS session message header (type 0, 17-bit length) followed
  by ``\\xffSMB`` (SMB1), ``\\xfeSMB`` (SMB2/3) or ``\\xfdSMB`` (SMB3
  transform).
* TLS: a handshake record ``16 03 0x`` (x 0..4) whose length is plausible
  (1..18432) and, when present, a handshake type ClientHello (1) to the
  server or ServerHello (2) to the client; or an SSLv2-framed ClientHello
  (what old clients send for compatibility: 2-byte length with the high
  bit set, message type 1, version 0002 or 03xx); or, to the client, a
  plaintext Alert record ``15 03 0x 00 02`` of level 1 or 2 (a server that
  refuses the hello outright).
* SSH: ``SSH-`` (RFC 4253 4.2 identification string, both directions).
* HTTP: to the server a request method from the list below followed by a
  space; to the client ``HTTP/1.``. Methods are upper case, as servers
  require (Suricata's detection is the same set, plus WebDAV's).
* FTP / SMTP, to the client: a ``220`` greeting line (``220 `` or
  ``220-``) naming ``FTP`` or ``SMTP``/``ESMTP``; a greeting naming
  neither is FTP from source port 21 and SMTP from 25, 465 or 587, else
  not decided; ``220 (`` (vsftpd's) is FTP on any port. To the server:
  ``EHLO``/``HELO`` are SMTP on any port; ``USER``/``PASS``/``PORT``/
  ``FEAT`` are FTP on any port, as Suricata's port-independent detection
  patterns make them (an IRC client's first ``USER`` line too, as there),
  ``AUTH``/``SYST`` toward port 21 only.
* DNS over TCP: a 2-byte length (>= 12) and a header whose question count
  is 1..16; once the whole message is there it must parse with its
  question names intact (QR clear to the server; set or clear to the
  client, a server answers).

``probe_dns_udp(payload) -> "dns" | ""`` does the same for one UDP
datagram (there is no "more data": a datagram is whole).

``AppProbe`` keeps the first ``limit`` bytes (2048 by default) of each
direction of one flow and probes again on each ``feed``; the flow's
protocol is the first one found in either direction. A direction that
reaches the limit undecided counts as ``""``; the flow answers ``""`` once
both directions have answered ``""`` (a server's reply can still name a
protocol the client's bytes did not).
"""

from __future__ import annotations

import re

from .dns import parse_dns

HTTP_METHODS = (
    b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"DELETE", b"CONNECT", b"TRACE", b"PATCH",
    b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH",
    b"CHECKOUT", b"CHECKIN", b"UNCHECKOUT", b"VERSION-CONTROL", b"REPORT", b"MERGE",
    b"MKWORKSPACE", b"MKACTIVITY", b"BASELINE-CONTROL", b"LABEL", b"UPDATE", b"ACL",
    b"SUBSCRIBE", b"UNSUBSCRIBE", b"NOTIFY", b"POLL", b"BMOVE", b"BCOPY", b"BDELETE",
    b"BPROPFIND", b"BPROPPATCH", b"MKCALENDAR", b"LINK", b"UNLINK",
)
# (a tab, vertical tab, form feed or CR after the method is taken by servers
# that split the request line on any blank: Python's http.server, Apache
# before 2.4.25 or with HttpProtocolOptions Unsafe, libhtp too)
_METHOD_PREFIXES = tuple(m + sep for m in HTTP_METHODS for sep in (b" ", b"\t", b"\v", b"\f",
                                                                     b"\r"))
_MAX_METHOD = max(len(m) for m in _METHOD_PREFIXES)
# A request line with a method no list names: servers take extension
# methods (nginx any run of A-Z, "_" and "-"; Apache any token, handed to a
# CGI script as it came), so a listed method is no condition of an attack
# reaching the server ("FOO /cgi-bin/phf HTTP/1.0"). Such a method (as nginx
# spells one: "GET%00" is none, as libhtp's detection agrees, suricata-verify
# uricontent-06), blanks, then a request target (origin form "/...", "*", or
# an absolute URI's scheme and "://") is taken as HTTP; the target's shape
# keeps the line protocols out (FTP's "USER x", SMTP's "MAIL FROM:").
_TOKEN = rb"[A-Z_-]{1,32}"
_TARGET = rb"(?:/|\*|[A-Za-z][A-Za-z0-9+.-]{0,15}://)"
_EXT_REQUEST = re.compile(_TOKEN + rb"[ \t]+" + _TARGET)
# ... and what may still become one (the probe waits for more bytes)
_EXT_PREFIX = re.compile(_TOKEN + rb"(?:[ \t]+(?:[A-Za-z][A-Za-z0-9+.-]{0,15}(?::/?)?)?)?\Z")
# Apache takes any token as the method (digits, lower case, "!#$&'*+.^`|~")
# and runs a CGI script for it: "G3T /cgi-bin/phf HTTP/1.0". Such a line is
# HTTP when it also ends in a version, which keeps a shell's "cd /tmp" out.
# The live sensor sees no server answer by default (ingress only), so the
# client's line must decide. "%" stays out: "GET%00" is no method to
# libhtp (suricata-verify uricontent-06) nor to nginx.
_ANY_TOKEN = rb"[!#$&'*+.^_`|~0-9A-Za-z-]{1,32}"
_ANY_REQUEST = re.compile(_ANY_TOKEN + rb"[ \t]+" + _TARGET + rb"[^\r\n]*?[ \t][Hh][Tt][Tt][Pp]/")
_ANY_PREFIX = re.compile(_ANY_TOKEN + rb"(?:[ \t]+(?:" + _TARGET
                         + rb"[^\r\n]*|[A-Za-z][A-Za-z0-9+.-]{0,15}(?::/?)?)?)?\Z")

PROBE_LIMIT = 2048
_BANNER_LINE = 512  # a greeting line longer than this without LF: not decided by text

# FTP commands that name the protocol on any port, as Suricata's detection
# patterns do (they are port-independent: an FTP server on 2121 with a
# plain "220 Welcome" banner is still FTP to `alert ftp` rules); the rest
# only toward port 21
_FTP_ANY_PORT = (b"USER ", b"PASS ", b"PORT ", b"FEAT")
_FTP_CLIENT = _FTP_ANY_PORT + (b"AUTH ", b"SYST")
_SMTP_CLIENT = (b"EHLO ", b"HELO ", b"EHLO\r", b"HELO\r")
_SMTP_PORTS = (25, 465, 587, 2525)


def _prefix_of(data: bytes, words) -> bool:
    """True when ``data`` is a proper prefix of one of ``words``."""
    n = len(data)
    for w in words:
        if n < len(w) and w[:n] == data:
            return True
    return False


def _smb(data: bytes):
    if data[0] != 0:
        return False
    if len(data) < 8:
        if len(data) >= 2 and data[1] & 0xFE:
            return False  # NetBIOS length is 17 bits
        magic = data[4:8]
        if len(data) > 4 and not (b"\xffSMB".startswith(magic) or b"\xfeSMB".startswith(magic)
                                  or b"\xfdSMB".startswith(magic)):
            return False
        return None
    if data[1] & 0xFE:
        return False
    return data[4:8] in (b"\xffSMB", b"\xfeSMB", b"\xfdSMB")


def _tls(data: bytes, to_server: bool):
    n = len(data)
    b0 = data[0]
    if b0 == 0x16:
        if n < 3:
            return None if n < 2 or data[1] == 3 else False
        if data[1] != 3 or data[2] > 4:
            return False
        if n < 5:
            return None
        length = (data[3] << 8) | data[4]
        if length == 0 or length > 18432:
            return False
        if n < 6:
            return None
        return data[5] == (1 if to_server else 2)
    if b0 == 0x15 and not to_server:
        # A server refusing the hello at once answers with a plaintext
        # Alert record (5-byte header, level 1 or 2, description): TLS too
        want = b"\x15\x03"
        if data[:2] != want[:min(n, 2)] or n >= 3 and data[2] > 4:
            return False
        if n < 7:
            return None if n < 5 or data[3:5] == b"\x00\x02" else False
        return data[3:5] == b"\x00\x02" and data[5] in (1, 2)
    if b0 & 0x80 and to_server:
        # SSLv2 record header (2 bytes), then CLIENT-HELLO (1), version.
        if n < 5:
            if n >= 3 and data[2] != 1:
                return False
            return None
        length = ((b0 & 0x7F) << 8) | data[1]
        if data[2] != 1 or length < 9:
            return False
        return data[3:5] == b"\x00\x02" or (data[3] == 3 and data[4] <= 4)
    return False


def _http(data: bytes, to_server: bool):
    if to_server:
        # servers skip empty lines before a request line (RFC 9112 2.2), and
        # those that split it on blanks (http.server, libhtp) leading blanks
        data = data.lstrip(b" \t\r\n")
        # listed methods in any case, as Suricata's detection patterns take them
        head = data[:_MAX_METHOD].upper()
        if head.startswith(_METHOD_PREFIXES) or _EXT_REQUEST.match(data) \
                or _ANY_REQUEST.match(data):
            return True
        if len(data) < _MAX_METHOD and _prefix_of(head, _METHOD_PREFIXES):
            return None
        return None if _EXT_PREFIX.match(data) or _ANY_PREFIX.match(data) else False
    if data.startswith(b"HTTP/1."):
        return True
    return None if _prefix_of(data, (b"HTTP/1.",)) else False


def _banner(data: bytes, sport: int):
    """FTP or SMTP from a server greeting, None if undecided, "" if neither."""
    if len(data) < 4:
        return None if _prefix_of(data, (b"220 ", b"220-")) else ""
    if data[:3] != b"220" or data[3:4] not in (b" ", b"-"):
        return ""
    if data[3:5] == b" (":
        return "ftp"  # (Suricata's "220 (" pattern: vsftpd's greeting)
    # A multi-line greeting (220-...) may name the protocol on any line up
    # to the last one (220 ...): look at all complete lines.
    end = data.rfind(b"\n")
    if end < 0:
        return None if len(data) < _BANNER_LINE else _by_port(sport)
    text = data[:end].upper()
    if b"SMTP" in text:
        return "smtp"
    if b"FTP" in text:
        return "ftp"
    last_ok = any(line.startswith(b"220 ") for line in data[:end + 1].split(b"\n"))
    if not last_ok:
        return None  # the greeting goes on
    return _by_port(sport)


def _by_port(sport: int):
    if sport == 21:
        return "ftp"
    if sport in _SMTP_PORTS:
        return "smtp"
    return ""


def _line_client(data: bytes, dport: int):
    up = data[:8].upper()
    if up.startswith(_SMTP_CLIENT):
        return "smtp"
    if up.startswith(_FTP_CLIENT if dport == 21 else _FTP_ANY_PORT):
        return "ftp"
    if len(data) < 5:
        words = _SMTP_CLIENT + (_FTP_CLIENT if dport == 21 else _FTP_ANY_PORT)
        if _prefix_of(up, words):
            return None
    return ""


def _dns_tcp(data: bytes, to_server: bool):
    n = len(data)
    if n < 2:
        return None
    length = (data[0] << 8) | data[1]
    if length < 12:
        return False
    if n < 8:
        return None
    flags = (data[4] << 8) | data[5]
    qd = (data[6] << 8) | data[7]
    if (to_server and flags & 0x8000) or not 1 <= qd <= 16 or (flags >> 11) & 0xF > 6:
        return False
    if n < 2 + length:
        # Whole message not there yet; past the probe limit a long message
        # is judged by its header alone.
        return None if 2 + length <= PROBE_LIMIT else True
    msg = parse_dns(data[2:2 + length])
    return msg is not None and not msg.malformed and len(msg.queries) == qd


def probe(data: bytes, to_server: bool, sport: int, dport: int) -> str | None:
    """The protocol named by the first bytes of one direction of a flow.

    ``data`` is the start of the direction's reassembled stream (as many
    bytes as are known), ``to_server`` True for the client's direction.
    Returns a protocol name ("http", "tls", "dns", "ssh", "ftp", "smtp",
    "smb"), None when more bytes are needed to decide, "" when it is none
    of them. Never raises.
    """
    if not data:
        return None
    if not isinstance(data, bytes):
        data = bytes(data)
    undecided = False
    checks = (("smb", _smb(data)), ("tls", _tls(data, to_server)))
    for name, r in checks:
        if r:
            return name
        if r is None:
            undecided = True
    if data.startswith(b"SSH-"):
        return "ssh"
    if len(data) < 4 and b"SSH-".startswith(data):
        undecided = True
    r = _http(data, to_server)
    if r:
        return "http"
    if r is None:
        undecided = True
    r = _banner(data, sport) if not to_server else _line_client(data, dport)
    if r:
        return r
    if r is None:
        undecided = True
    r = _dns_tcp(data, to_server)
    if r:
        return "dns"
    if r is None:
        undecided = True
    return None if undecided else ""


def probe_dns_udp(payload: bytes) -> str:
    """"dns" when a UDP datagram parses as a DNS message, else "".

    A query (QR clear) or a response, with 1..16 questions whose names
    parse (what Suricata's UDP probe accepts; zero-question messages are
    not claimed, random payloads too often have a 12-byte "header").
    """
    try:
        msg = parse_dns(payload)
    except Exception:  # parse_dns does not raise; belt and braces for a sensor
        return ""
    if msg is None or msg.malformed or not 1 <= msg.qdcount <= 16 or msg.opcode > 6:
        return ""
    return "dns" if len(msg.queries) == msg.qdcount else ""


class AppProbe:
    """Protocol detection for one flow, fed both directions as they come.

    ``feed(data, to_server)`` keeps the direction's first ``limit`` bytes
    and returns the flow's protocol once known (and on every later call),
    None while undecided, "" once both directions have failed. ``proto``
    holds the same answer.
    """

    __slots__ = ("limit", "sport", "dport", "proto", "_buf", "_done")

    def __init__(self, sport: int = 0, dport: int = 0, limit: int = PROBE_LIMIT):
        # sport/dport are the client's source and the server's port (the
        # flow as the client opened it).
        self.limit = max(16, int(limit))
        self.sport = sport
        self.dport = dport
        self.proto: str | None = None
        self._buf = (bytearray(), bytearray())  # to server, to client
        self._done = [False, False]  # direction gave up ("")

    def feed(self, data: bytes, to_server: bool) -> str | None:
        if self.proto is not None:
            return self.proto
        i = 0 if to_server else 1
        if self._done[i] or not data:
            return self.proto
        buf = self._buf[i]
        room = self.limit - len(buf)
        if room > 0:
            buf += data[:room]
        # The client's direction is seen from the client (ports as given),
        # the server's with them swapped: probe() always gets the sender's
        # port as sport.
        if to_server:
            r = probe(bytes(buf), True, self.sport, self.dport)
        else:
            r = probe(bytes(buf), False, self.dport, self.sport)
        if r:
            self.proto = r
            self._release()
        elif r == "" or len(buf) >= self.limit:
            self._done[i] = True
            self._buf[i].clear()
            if self._done[0] and self._done[1]:
                self.proto = ""
        return self.proto

    def _release(self) -> None:
        self._buf[0].clear()
        self._buf[1].clear()
