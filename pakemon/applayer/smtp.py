"""Sans-I/O parser of the client-to-server direction of an SMTP session.

``SmtpParser().feed(data) -> list[SmtpEvent]`` takes the reassembled bytes
the client sends, in any chunking (one byte at a time gives the same events
as everything at once), and returns one ``SmtpEvent("file", info)`` per
attachment of each mail, when the mail is complete: ``info`` is ``name``
(bytes, or None), ``data`` (the decoded contents: Suricata's ``file.data``
for ``alert smtp`` rules) and ``content_type`` (str, lower case).
``end()`` says the stream ended, ``gap()`` that bytes are missing.

Framing (RFC 5321, RFC 3030, RFC 2920), lenient like a server:

* Command mode: lines end at LF (CRLF or a bare LF), verbs are case
  insensitive, leading blanks are skipped. A line longer than
  ``max_line`` is cut there (``long_lines``), its first ``max_line`` bytes
  are still taken as the command (a server that truncates an over-long
  ``DATA`` line still starts a mail) and the rest is skipped up to the LF
  without being stored.
* ``DATA``: the mail is the lines up to one that is just ``.`` (``.\\r\\n``
  or ``.\\n``), dot-unstuffed (a line starting with ``.`` loses that
  first ``.``), line ends kept as sent. Data lines are not length-limited:
  only ``max_message`` bounds what is kept.
* ``BDAT <n> [LAST]``: exactly n raw bytes follow (no unstuffing, no end
  marker); chunks accumulate into one mail that ``LAST`` completes. A size
  that is not decimal digits makes the line an ignored command
  (``bad_bdat``); anything after the size other than ``LAST`` is ignored,
  since a server still has to read the chunk. A mail left open by BDAT
  chunks without ``LAST`` is examined when the client moves on (``MAIL``,
  ``RSET``, ``HELO``/``EHLO``, ``QUIT``, ``DATA``) or the stream ends.
* Pipelining needs nothing special: commands and whole mails may share a
  chunk.

We see only the client, not the server's replies, so a refused ``DATA``
(no valid recipient, a 503) looks accepted. The common honest case is
caught: when the first line of a "mail" is itself an SMTP command (``MAIL
FROM:``, ``RCPT TO:``, ``RSET``, ``QUIT``, ``DATA``, ``BDAT``, ``EHLO``...,
which no mail starts with: they are not header lines), the ``DATA`` was
refused, the line is taken as a command (``data_refused``) and command
mode goes on; otherwise the client's next mail would be swallowed up to
its final dot. A client that sends something else first after a refused
``DATA`` still makes us read its commands as a mail up to the next ``.``
line; only the server's replies could tell. Taking a command-like first line as a command
hides no attachment: such a line is not a header field, so for the
server and the recipient's mail client the header section ends there and
the mail has no MIME structure, no attachment, either.

STARTTLS (RFC 3207): after a ``STARTTLS`` command, when the next line
starts with a plausible TLS handshake record header (``16 03 0x``, x at
most 4, a length of 1 to 2^14 + 2048), ``encrypted`` is set and nothing
more is parsed: ``feed`` returns ``[]``. Bytes that do not start so (the
server refused STARTTLS and the client went on in clear) are commands as
before. So that a client cannot blind the parser by sending ``STARTTLS``
(refused) and then a fake record header before going on in clear, the
record framing is followed (headers only, record types 20 to 24): for
the first ``TLS_WINDOW`` bytes everything since the ``STARTTLS`` line is
kept, and if a record header turns out invalid, or the stream ends in the
middle of a record, those bytes are read again as commands, which is what
a server that refused STARTTLS did with them (``not_tls``, ``encrypted``
cleared). Past the window nothing is kept: an invalid header resumes
command mode at itself when an LF came just before it, else at the next
line start. A ``STARTTLS`` past the ``MAX_STARTTLS``-th is ignored
(bounds how often bytes are read again). A caller that stops feeding once
``encrypted`` is set gives that check up (``feed`` on a TLS session only
steps over record headers: it is cheap).

A complete mail is parsed with the standard library's ``email`` package
(``BytesParser``, ``policy=compat32``: lenient, keeps what it can of
malformed MIME); every part is walked (the root, the parts of nested
multiparts and of encapsulated ``message/rfc822`` mails). A leaf part is
a file when

* it has a file name (``get_filename()``: a Content-Disposition
  ``filename``, RFC 2231 ``filename*`` forms included, else a Content-Type
  ``name``), or a Content-Disposition ``attachment``: Suricata's test
  (``CTNT_IS_ATTACHMENT``), so a plain text body is never a file;
* or, our addition, its main type is not ``text``, ``multipart`` or
  ``message`` (``application/postscript``, ``image/*``...): a mail client
  still offers such a part to open even without a name.

``data`` is the part's body decoded per its Content-Transfer-Encoding
(value trimmed and lower-cased): quoted-printable and x-uuencode as
``email`` decodes them; base64 decoded here, leniently like ``email``
(characters outside the alphabet skipped, missing padding tolerated) but
also when the body was cut anywhere: a partial last quantum is dropped
instead of returning the undecoded text, so a truncated mail still gives
its decoded prefix. Any other encoding: the body as sent. ``name`` is the
file name as UTF-8 (raw 8-bit bytes in a header come back as sent; RFC
2047 encoded words are not decoded, as ``get_filename`` leaves them).
At most ``MAX_FILES`` files per mail (the rest counted in
``files_dropped``).

Two guards around ``email``: a Content-Type or Content-Disposition value
longer than ``MAX_PARAMS`` characters is read as its type and its
``boundary``, ``filename``, ``name`` and ``charset`` parameters only
(the stdlib's parameter splitter is quadratic: a 1 MiB header of
``;a=b`` costs seconds per lookup, and such padding must not hide a
boundary or a name either); the parts are walked without recursion. The
parser itself recurses per nesting level: a mail nested deeper than
Python's recursion limit allows (about 900 levels) gives no file
(``mime_errors``).

``end()`` examines the mail in progress as it is (what the server got so
far: a mail whose final dot never came, BDAT chunks without ``LAST``).
``gap()`` drops the partial line and the mail in progress (its bytes
before the hole are lost with it: ``lost_messages``) and resyncs at the
next line start in command mode, a STARTTLS check going on included;
past ``TLS_WINDOW`` of a TLS session it stops the record check for good
(the session stays ``encrypted``).

Memory: at most ``max_message`` bytes of a mail are kept (the rest is
framed, not stored; ``truncated`` counts such mails), a command line at
most ``max_line``, and the STARTTLS check at most ``TLS_WINDOW`` +
``MAX_RECORD`` + 5 bytes. Nothing raises on any input: a part or a mail
the ``email`` package fails on counts in ``mime_errors`` (the files found
before the failure are kept).

``counters`` (a ``collections.Counter``): ``messages`` (mails examined),
``incomplete`` (of them, not ended by ``.`` or ``BDAT ... LAST``),
``files``, ``files_dropped``, ``truncated``, ``long_lines``, ``gaps``,
``lost_messages`` (dropped at a gap), ``bdat_chunks``, ``bad_bdat``,
``commands``, ``data_refused``, ``starttls``, ``not_tls``,
``mime_errors``.
"""

from __future__ import annotations

import binascii
import collections
import quopri
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import NamedTuple

MAX_FILES = 1000  # files reported per mail
MAX_PARAMS = 8192  # longest Content-Type / Content-Disposition value read as it is
MAX_STARTTLS = 4  # STARTTLS commands whose following bytes are checked for TLS
TLS_WINDOW = 32 * 1024  # bytes after STARTTLS kept until TLS framing is trusted
MAX_RECORD = 16384 + 2048  # TLSCiphertext limit (RFC 5246 6.2.3)

# Parser states. Only CMD reads command lines; SKIP drops bytes up to the
# next LF then goes to _resume; the DATA_* states read a DATA mail (at the
# start of a line, after a "." there, after ".\r" there, inside a line).
(CMD, SKIP, DATA_BOL, DATA_DOT, DATA_DOTCR, DATA_MID, BDAT, TLS_PROBE, TLS, TLS_BLIND,
 CLOSED) = range(11)

# The first line of a "mail" that shows the DATA was refused: a command a
# client sends next, which no header line can look like (header names have
# no blank, and these are followed by a blank, a colon after a blank, or the
# line end).
_COMMAND_LINE = re.compile(
    rb"[ \t]*(?:(?:MAIL[ \t]+FROM|RCPT[ \t]+TO)[ \t]*:"
    rb"|(?:DATA|BDAT|RSET|QUIT|NOOP|HELO|EHLO|STARTTLS|AUTH)(?:[ \t\r\n]|$))",
    re.IGNORECASE)
# The commands after which a mail left open by BDAT chunks is over.
_ENDS_BDAT = frozenset((b"MAIL", b"RSET", b"HELO", b"EHLO", b"QUIT"))
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]+")
_UU = frozenset(("x-uuencode", "uuencode", "uue", "x-uue"))
_NOT_FILE_TYPES = frozenset(("text", "multipart", "message"))


class SmtpEvent(NamedTuple):
    """One fact of the session: ``kind`` ("file") and its ``info`` dict."""

    kind: str
    info: dict


# One "; name=value" parameter (a quoted value whole), and the parameters
# a long header keeps (see _Part).
_PARAM = re.compile(r';[ \t\r\n]*([^\s;=]+)[ \t\r\n]*=[ \t\r\n]*("(?:[^"\\]|\\.)*"?|[^;]*)')
_KEPT_PARAMS = frozenset(("boundary", "filename", "name", "charset"))


def _short_params(value: str) -> str:
    """A long Content-Type / Content-Disposition value cut down to its type
    and the parameters we read, found in one pass."""
    keep = [m.group(0) for m in _PARAM.finditer(value)
            if m.group(1).partition("*")[0].lower() in _KEPT_PARAMS]
    return (value.partition(";")[0][:MAX_PARAMS] + "".join(keep))[:MAX_PARAMS]


class _Part(Message):
    """A compat32 message part that reads a Content-Type or
    Content-Disposition value longer than ``MAX_PARAMS`` characters as its
    type and the parameters we use only: the stdlib's parameter splitter is
    quadratic in their number (a 1 MiB header of ``;a=b`` takes seconds per
    lookup), and padding the header must not hide a boundary or a file
    name either. Every parameter lookup (the parser's boundary,
    ``get_filename``) goes through ``get``."""

    def get(self, name, failobj=None):
        v = super().get(name, failobj)
        if isinstance(v, str) and len(v) > MAX_PARAMS and \
                name.lower() in ("content-type", "content-disposition"):
            cache = self.__dict__.setdefault("_short", {})  # a part asks several times
            short = cache.get(v)
            if short is None:
                short = cache[v] = _short_params(v)
            return short
        return v


def _record_ok(b, p: int, first: bool) -> bool:
    """Whether the 5 bytes at ``p`` can be a TLS record header (the first
    one after STARTTLS: a handshake record)."""
    ctype = b[p]
    if first:
        if ctype != 22:
            return False
    elif ctype < 20 or ctype > 24:  # ChangeCipherSpec .. Heartbeat
        return False
    length = (b[p + 3] << 8) | b[p + 4]
    return b[p + 1] == 3 and b[p + 2] <= 4 and length <= MAX_RECORD and (length or not first)


def _b64decode(body: bytes) -> bytes:
    """Base64 as ``email`` decodes it, and a decoded prefix where ``email``
    would give the encoded text back (a body cut in a quantum)."""
    try:
        return binascii.a2b_base64(body)  # skips junk, stops at padding
    except binascii.Error:
        pass
    # No padding ended the data (a2b_base64 would have stopped there), so
    # every "=" was ignored: decode the whole quanta of the alphabet chars.
    s = _NOT_B64.sub(b"", body)
    r = len(s) % 4
    if r == 1:
        s = s[:-1]
    elif r:
        s += b"=" * (4 - r)
    try:
        return binascii.a2b_base64(s)
    except binascii.Error:
        return b""


def _body_bytes(part) -> bytes:
    # The stored body itself: get_payload() without decode would re-decode
    # it with the part's charset parameter, which raises on crafted ones.
    p = part._payload
    if isinstance(p, bytes):
        return p
    if not isinstance(p, str):
        return b""
    try:
        return p.encode("ascii", "surrogateescape")  # BytesParser's own mapping back
    except UnicodeEncodeError:
        return p.encode("utf-8", "surrogatepass")


def _decoded(part) -> bytes:
    raw_cte = part.get("content-transfer-encoding")
    cte = str(raw_cte).strip().lower() if raw_cte is not None else ""
    if cte == "base64":
        return _b64decode(_body_bytes(part))
    if cte == "quoted-printable":
        return quopri.decodestring(_body_bytes(part))
    if cte in _UU:
        if str(raw_cte).lower() != cte:  # email only knows the bare token
            part.replace_header("content-transfer-encoding", cte)
        data = part.get_payload(decode=True)
        return data if isinstance(data, bytes) else b""
    return _body_bytes(part)


def _name_bytes(name: str) -> bytes:
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return name.encode("utf-8", "backslashreplace")


def _file_event(part) -> SmtpEvent | None:
    """The file a leaf part is, or None (see the module docstring)."""
    try:
        name = part.get_filename()
        named = name is not None
    except Exception:  # a filename parameter is there, its RFC 2231 charset broke
        name, named = None, True
    ctype = part.get_content_type()
    if not named and part.get_content_disposition() != "attachment" and \
            ctype.partition("/")[0] in _NOT_FILE_TYPES:
        return None
    return SmtpEvent("file", {"name": None if name is None else _name_bytes(str(name)),
                              "data": _decoded(part), "content_type": ctype})


class SmtpParser:
    """The client's side of one SMTP session, fed incrementally (see module doc)."""

    __slots__ = ("max_message", "max_line", "counters", "encrypted", "_state", "_resume",
                 "_line", "_msg", "_msize", "_mtrunc", "_first", "_bdat_open",
                 "_bdat_left", "_bdat_last", "_tls_next", "_tls_tries", "_tbuf", "_twalk",
                 "_tskip", "_thdr", "_prev_lf", "_out")

    def __init__(self, max_message: int = 1 << 20, max_line: int = 4096):
        self.max_message = max(int(max_message), 0)
        self.max_line = max(int(max_line), 64)
        self.counters: collections.Counter = collections.Counter(
            messages=0, files=0, truncated=0, long_lines=0, gaps=0, bdat_chunks=0)
        self.encrypted = False
        self._state = CMD
        self._resume = CMD  # where SKIP goes at the next LF
        self._line = bytearray()  # the partial command line
        self._msg: bytearray | None = None  # the mail in progress
        self._msize = 0
        self._mtrunc = False  # the mail in progress went over max_message
        self._first = False  # its first line is still being read (refused-DATA check)
        self._bdat_open = False  # BDAT chunks without LAST so far
        self._bdat_left = 0
        self._bdat_last = False
        self._tls_next = False  # STARTTLS seen: check the next line start for TLS
        self._tls_tries = 0
        self._tbuf: bytearray | None = None  # bytes since STARTTLS (TLS_PROBE)
        self._twalk = 0  # offset of the next record header in _tbuf
        self._tskip = 0  # record bytes still to pass over (TLS)
        self._thdr = bytearray()  # a record header being read (TLS)
        self._prev_lf = False  # the byte before the next record header was an LF
        self._out: list[SmtpEvent] = []

    # -- public -------------------------------------------------------------

    def feed(self, data) -> list[SmtpEvent]:
        """The files of the mails that ``data`` completed."""
        if self._state >= TLS_BLIND or not data:
            return []
        if not isinstance(data, bytes):
            data = bytes(data)
        self._run(data)
        return self._take()

    def gap(self) -> None:
        """Bytes are missing: drop the partial line and mail, resync at the
        next line start in command mode."""
        self.counters["gaps"] += 1
        st = self._state
        if st == CLOSED:
            return
        if st == TLS or st == TLS_BLIND:  # record boundaries lost: stay encrypted, blind
            self._state = TLS_BLIND
            return
        if self._msg is not None:
            self.counters["lost_messages"] += 1
        self._line = bytearray()
        self._msg = None
        self._first = self._bdat_open = self._tls_next = False
        self._bdat_left = 0
        self._tbuf = None
        self.encrypted = False  # (a STARTTLS check that was going on is abandoned)
        self._state = SKIP
        self._resume = CMD

    def end(self) -> list[SmtpEvent]:
        """The stream ended: the files of the mail in progress, as it is.
        The parser takes nothing more afterwards."""
        st = self._state
        if st == CLOSED:
            return []
        # Fake TLS cut in a record: what a server that refused STARTTLS read.
        while self._state == TLS_PROBE and len(self._tbuf) != self._twalk:
            self._not_tls()
        if self._state == DATA_DOTCR:
            self._append(b"\r", 0, 1)  # a line ".\r..." unstuffed
        if self._msg is not None:
            self._examine(False)
        self._state = CLOSED
        self._line = bytearray()
        self._tbuf = None
        return self._take()

    # -- framing ------------------------------------------------------------

    def _take(self) -> list[SmtpEvent]:
        out = self._out
        if not out:
            return []
        self._out = []
        return out

    def _run(self, data: bytes) -> None:
        n = len(data)
        pos = 0
        while pos < n:
            st = self._state
            if st == CMD:
                pos = self._cmd(data, pos, n)
            elif st == SKIP:
                j = data.find(b"\n", pos)
                if j < 0:
                    return
                pos = j + 1
                self._state = self._resume
            elif st <= DATA_MID:
                pos = self._data(data, pos, n)
            elif st == BDAT:
                take = min(self._bdat_left, n - pos)
                self._append(data, pos, pos + take)
                pos += take
                self._bdat_left -= take
                if not self._bdat_left:
                    self._state = CMD
                    if self._bdat_last:
                        self._examine(True)
            elif st == TLS_PROBE:
                pos = self._tls_probe(data, pos, n)
            elif st == TLS:
                pos = self._tls_walk(data, pos, n)
            else:
                return

    def _cmd(self, data: bytes, pos: int, n: int) -> int:
        """One command line (or the part of it in ``data``); the new offset."""
        line = self._line
        if self._tls_next and not line:
            self._tls_next = False
            if data[pos] == 0x16:
                self._tls_tries += 1
                self._tbuf = bytearray()
                self._twalk = 0
                self._state = TLS_PROBE
                return pos
        max_line = self.max_line
        j = data.find(b"\n", pos)
        if j < 0:
            if len(line) + n - pos > max_line:
                # Cut now rather than buffer a line that is already too long.
                raw = bytes(line) + data[pos:pos + max_line - len(line)]
                self._line = bytearray()
                self.counters["long_lines"] += 1
                self._command(raw)
                if self._state < TLS_BLIND:
                    self._resume = self._state
                    self._state = SKIP
                return n
            line += memoryview(data)[pos:]
            return n
        if line:
            raw = bytes(line) + data[pos:j]
            self._line = bytearray()
        else:
            raw = data[pos:j]
        if len(raw) > max_line:  # measured as a cut partial line is: CR included
            self.counters["long_lines"] += 1
            raw = raw[:max_line]
        self._command(raw)
        return j + 1

    def _command(self, line: bytes) -> None:
        words = line.split()
        if not words:
            return
        self.counters["commands"] += 1
        verb = words[0].upper()
        if verb == b"DATA":
            self._close_bdat()
            self._new_message()
            self._first = True
            self._state = DATA_BOL
        elif verb == b"BDAT":
            digits = words[1] if len(words) > 1 else b""
            if not digits.isdigit():  # (bytes.isdigit: ASCII digits only)
                self.counters["bad_bdat"] += 1
                return
            digits = digits.lstrip(b"0") or b"0"
            # (int() refuses over 4300 digits; such a chunk runs to the end anyway)
            size = int(digits) if len(digits) <= 18 else 10 ** 18
            self.counters["bdat_chunks"] += 1
            if not self._bdat_open:
                self._new_message()
                self._bdat_open = True
            self._bdat_left = size
            self._bdat_last = len(words) > 2 and words[2].upper() == b"LAST"
            if size:
                self._state = BDAT
            elif self._bdat_last:
                self._examine(True)
        elif verb == b"STARTTLS":
            self.counters["starttls"] += 1
            if self._tls_tries < MAX_STARTTLS:
                self._tls_next = True
        elif verb in _ENDS_BDAT:
            self._close_bdat()

    def _data(self, data: bytes, pos: int, n: int) -> int:
        """DATA mail bytes up to the end of ``data`` or of the mail."""
        while pos < n:
            st = self._state
            if st == DATA_MID:
                if self._first:
                    j = data.find(b"\n", pos)
                    if j < 0:
                        self._append(data, pos, n)
                        if self._msize > self.max_line:
                            self._first = False  # too long for a command
                        return n
                    self._append(data, pos, j + 1)
                    pos = j + 1
                    self._state = DATA_BOL
                    self._first = False
                    if self._refused():
                        return pos
                    continue
                # Only a line starting with "." needs a look: pass whole runs
                # of other lines at once.
                j = data.find(b"\n.", pos)
                if j < 0:
                    self._append(data, pos, n)
                    if data[n - 1] == 0x0A:
                        self._state = DATA_BOL
                    return n
                self._append(data, pos, j + 1)
                pos = j + 1
                self._state = DATA_BOL
                continue
            c = data[pos]
            if st == DATA_BOL:
                if c == 0x2E:  # "."
                    self._first = False  # a dot-stuffed line is no command
                    self._state = DATA_DOT
                    pos += 1
                else:
                    self._state = DATA_MID
            elif st == DATA_DOT:
                if c == 0x0A:
                    self._state = CMD
                    self._examine(True)
                    return pos + 1
                if c == 0x0D:
                    self._state = DATA_DOTCR
                    pos += 1
                else:
                    self._state = DATA_MID  # the stuffed "." is dropped
            else:  # DATA_DOTCR
                if c == 0x0A:
                    self._state = CMD
                    self._examine(True)
                    return pos + 1
                self._append(b"\r", 0, 1)
                self._state = DATA_MID
        return pos

    def _refused(self) -> bool:
        """The first line of the DATA mail is a command: take it as one."""
        if self._mtrunc:
            return False
        line = bytes(self._msg)
        if len(line) - 1 > self.max_line or _COMMAND_LINE.match(line) is None:
            return False
        self.counters["data_refused"] += 1
        self._msg = None
        self._state = CMD
        self._command(line)
        return True

    # -- STARTTLS -----------------------------------------------------------

    def _tls_probe(self, data: bytes, pos: int, n: int) -> int:
        """TLS records right after STARTTLS, kept until trusted."""
        buf = self._tbuf
        # Enough for the walk to reach past the window whatever the records.
        end = min(n, pos + TLS_WINDOW + 5 + MAX_RECORD - len(buf))
        buf += data[pos:end]
        w = self._twalk
        while len(buf) - w >= 5:
            if not _record_ok(buf, w, w == 0):
                self._twalk = w
                self._not_tls()
                return end
            self.encrypted = True
            w += 5 + ((buf[w + 3] << 8) | buf[w + 4])
            if w > TLS_WINDOW:
                # Trusted: from here only record headers are checked.
                self._state = TLS
                self._tbuf = None
                self._thdr = bytearray()
                if w <= len(buf):
                    self._tskip = 0
                    self._prev_lf = buf[w - 1] == 0x0A
                    if w < len(buf):
                        self._run(bytes(buf[w:]))
                else:
                    self._tskip = w - len(buf)
                return end
        self._twalk = w
        return end

    def _not_tls(self) -> None:
        """Not TLS after all: read what followed STARTTLS as commands."""
        buf = self._tbuf
        self._tbuf = None
        self.encrypted = False
        self.counters["not_tls"] += 1
        self._state = CMD
        self._run(bytes(buf))

    def _tls_walk(self, data: bytes, pos: int, n: int) -> int:
        """Record headers of a trusted TLS session; back to commands if one
        is invalid."""
        while pos < n:
            if self._tskip:
                k = min(self._tskip, n - pos)
                pos += k
                self._tskip -= k
                self._prev_lf = data[pos - 1] == 0x0A
                continue
            h = self._thdr
            k = min(5 - len(h), n - pos)
            h += data[pos:pos + k]
            pos += k
            if len(h) < 5:
                return pos
            self._thdr = bytearray()
            if not _record_ok(h, 0, False):
                self.encrypted = False
                self.counters["not_tls"] += 1
                # A server reading lines since STARTTLS is at a line start
                # here only if an LF came just before.
                if self._prev_lf:
                    self._state = CMD
                else:
                    self._state = SKIP
                    self._resume = CMD
                self._run(bytes(h))
                return pos
            self._tskip = (h[3] << 8) | h[4]
            self._prev_lf = False
        return pos

    # -- mails --------------------------------------------------------------

    def _new_message(self) -> None:
        self._msg = bytearray()
        self._msize = 0
        self._mtrunc = False

    def _append(self, data: bytes, start: int, end: int) -> None:
        if start >= end or self._msg is None:
            return
        room = self.max_message - self._msize
        if end - start > room:
            if not self._mtrunc:
                self._mtrunc = True
                self.counters["truncated"] += 1
            end = start + room
            if end <= start:
                return
        self._msg += memoryview(data)[start:end]
        self._msize += end - start

    def _close_bdat(self) -> None:
        if self._bdat_open:
            self._examine(False)

    def _examine(self, complete: bool) -> None:
        """Parse the mail in progress and queue its files."""
        raw = bytes(self._msg)
        self._msg = None
        self._bdat_open = False
        self._first = False
        self.counters["messages"] += 1
        if not complete:
            self.counters["incomplete"] += 1
        counters = self.counters
        files = 0
        try:
            # msg.walk() without its recursion (the parser nests as deep as
            # Python lets it; a walk of the same depth must not fail)
            stack = [BytesParser(_Part, policy=compat32).parsebytes(raw)]
            while stack:
                part = stack.pop()
                if part.is_multipart():
                    sub = part.get_payload()
                    if isinstance(sub, list):
                        stack.extend(q for q in reversed(sub) if isinstance(q, Message))
                    continue
                try:
                    ev = _file_event(part)
                except Exception:
                    counters["mime_errors"] += 1
                    continue
                if ev is None:
                    continue
                if files >= MAX_FILES:
                    counters["files_dropped"] += 1
                    continue
                files += 1
                counters["files"] += 1
                self._out.append(ev)
        except Exception:  # (RecursionError from the parser past ~900 nested parts, ...)
            counters["mime_errors"] += 1
