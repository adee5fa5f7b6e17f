"""Sans-I/O parser of the client-to-server direction of an SMTP session.

``SmtpParser().feed(data) -> list[SmtpEvent]`` takes the reassembled bytes
the client sends, in any chunking (one byte at a time gives the same events
as everything at once), and returns one ``SmtpEvent("file", info)`` per
attachment of each mail, as soon as the attachment's MIME part is over
(the next boundary line, or the end of the mail): ``info`` is ``name``
(bytes, or None), ``data`` (the decoded contents, at most ``max_file``
bytes: Suricata's ``file.data`` for ``alert smtp`` rules) and
``content_type`` (str, lower case). ``end()`` says the stream ended,
``gap()`` that bytes are missing, ``held()`` how many bytes the parser
holds.

Framing (RFC 5321, RFC 3030, RFC 2920), lenient like a server:

* Command mode: lines end at LF (CRLF or a bare LF), verbs are case
  insensitive, leading blanks are skipped. A line longer than
  ``max_line`` is cut there (``long_lines``), its first ``max_line`` bytes
  are still taken as the command (a server that truncates an over-long
  ``DATA`` line still starts a mail) and the rest is skipped up to the LF
  without being stored.
* ``DATA``: the mail is the lines up to one that is just ``.`` (``.\\r\\n``
  or ``.\\n``), dot-unstuffed (a line starting with ``.`` loses that
  first ``.``), line ends kept as sent. Data lines are not length-limited,
  and not held either (see below).
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

MIME is parsed as the mail arrives (the DATA lines unstuffed, the BDAT
chunks), never kept whole: Suricata inspects each file on its own with
per-file limits, so a per-mail limit would let a big first attachment
(padding) hide an exploit in the next one, and every session in progress
could hold a whole mail. The structure is the one the standard library's
``email`` reads (``compat32``: lenient, keeps what it can of malformed
MIME), line by line (lines end at LF):

* A header block (the mail's, a part's, an encapsulated mail's) ends at a
  blank line, or at a line that is no header line (``Name:``, a
  continuation, ``From ``): that one is the body's first, as ``email``
  reads it. Only the fields read are kept, the first of each:
  Content-Type, Content-Disposition, Content-Transfer-Encoding. They are
  read with ``email`` (``BytesHeaderParser``); other fields, however many,
  cost nothing. Past ``max_header`` bytes of them (``header_truncated``,
  padding), a Content-Type or Content-Disposition is read as it comes:
  split into parameters as ``email`` splits them and kept as its type and
  its ``boundary``, ``filename``, ``name`` and ``charset`` parameters
  (``_Params``), so that padding hides neither a boundary nor a name; a
  Content-Transfer-Encoding keeps its start.
* ``multipart/*`` with a boundary pushes it on a stack: at most
  ``MAX_DEPTH`` levels, ``MAX_BOUNDARIES`` bytes of boundaries (RFC 2046
  allows 70 per boundary); a multipart past those is read as a leaf, its
  parts unseen (``mime_errors``). A boundary line is ``--`` and the
  boundary, ``--`` more on the closing one, then any blanks, at a line
  start (RFC 2046, and what ``email`` accepts); the boundary of any open
  multipart counts and ends the parts inside it (RFC 2046 5.1.2: mail
  clients close the inner ones), and a line that is the boundary of several
  levels is the outermost one's, as in ``email``. The line end before a
  boundary line belongs to it (not to the file). ``multipart/digest``
  parts are ``message/rfc822`` by default. A multipart whose own boundary
  never comes is a leaf whose body is its preamble (``email`` makes it
  one), so a preamble is decoded while the multipart may still become a
  file.
* ``message/*`` (but ``delivery-status``): the body is a mail again, headers
  first; its attachments are files too.
* A leaf part is a file when

  * it has a file name (``get_filename()``: a Content-Disposition
    ``filename``, RFC 2231 ``filename*`` forms included, else a
    Content-Type ``name``), or a Content-Disposition ``attachment``:
    Suricata's test (``CTNT_IS_ATTACHMENT``), so a plain text body is never
    a file;
  * or, our addition, its main type is not ``text``, ``multipart`` or
    ``message`` (``application/postscript``, ``image/*``...): a mail client
    still offers such a part to open even without a name.

  A file's body is decoded as it arrives per its Content-Transfer-Encoding
  (value trimmed and lower-cased), whatever the pieces: base64 as
  ``binascii.a2b_base64`` decodes it (characters outside the alphabet
  skipped, padding after 2 or 3 characters of a quantum ends the data) but
  a body cut in a quantum still gives its whole bytes, where ``email``
  would give the encoded text back; quoted-printable as
  ``binascii.a2b_qp`` (soft line breaks, ``=XX``); x-uuencode is kept as
  sent (at most ``max_file`` bytes, then its whole lines only) and decoded
  by ``email`` at the end of the part; anything else as sent. The first ``max_file`` decoded bytes
  are kept and the rest not even decoded (``file_truncated``; ``truncated``
  counts the mails with such a file). A part that is no file keeps nothing.
  ``name`` is the file name as UTF-8 (raw 8-bit bytes in a header come back
  as sent; RFC 2047 encoded words are not decoded, as ``get_filename``
  leaves them). At most ``MAX_FILES`` files per mail (the rest counted in
  ``files_dropped``).

No line is held whole (an attacker's line may be megabytes): only a line
starting with ``-`` may be a boundary line, and of it only ``--``, the
longest open boundary, ``--``, ``WS_KEEP`` blanks and CRLF are held until
it is known. Past those, a line that is still a boundary and blanks is
followed by counting its blanks; if anything but the line end comes, the
line was body after all and those blanks are given back as spaces (the one
place where a file can differ from its bytes: tabs past ``WS_KEEP`` blanks
of such a line). The start of a header line is held until it is known to
be one, up to ``max_header`` bytes less the fields kept (``HDR_PEEK`` at
least): a line of that many name characters and no colon is body.

A Content-Type or Content-Disposition value longer than ``MAX_PARAMS``
characters (and within ``max_header``) is read as its type and its
``boundary``, ``filename``, ``name`` and ``charset`` parameters only
(``_short_params``: the stdlib's parameter splitter is quadratic, a 64 KiB
header of ``;a=b`` would cost seconds per lookup).

``end()`` ends the mail in progress as it is (what the server got so far:
a mail whose final dot never came, BDAT chunks without ``LAST``): its last
line is read, the file in progress emitted. ``gap()`` drops the partial
line and the mail in progress (its files already emitted stay so; the one
in progress is lost with the rest: ``lost_messages``) and resyncs at the
next line start in command mode, a STARTTLS check going on included; past
``TLS_WINDOW`` of a TLS session it stops the record check for good (the
session stays ``encrypted``).

Memory, whatever the mail: a file in progress holds at most ``max_file``
bytes (one at a time), a header block at most ``max_header`` bytes plus
two padded fields of about 2 * ``MAX_PARAMS`` each and a line start of
``HDR_PEEK``, the boundary stack and a line start at most about 3 *
``MAX_BOUNDARIES``; a command line holds at most ``max_line``, and the
STARTTLS check at most ``TLS_WINDOW`` + ``MAX_RECORD`` + 5 bytes. So about
``max_file`` + ``max_header`` + ``max_line`` + 110 KiB in all (events not
returned yet aside), and ``held()`` tells. Nothing raises on any input: a
header block ``email`` fails on, or an internal error, counts in
``mime_errors`` (files already emitted stay so).

``counters`` (a ``collections.Counter``): ``messages`` (mails examined),
``incomplete`` (of them, not ended by ``.`` or ``BDAT ... LAST``),
``files``, ``files_dropped``, ``file_truncated`` (files cut at
``max_file``), ``truncated`` (mails with such a file),
``header_truncated`` (header blocks past ``max_header``), ``long_lines``,
``gaps``, ``lost_messages`` (dropped at a gap), ``bdat_chunks``,
``bad_bdat``, ``commands``, ``data_refused``, ``starttls``, ``not_tls``,
``mime_errors``.
"""

from __future__ import annotations

import binascii
import collections
import re
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import NamedTuple

from .tls import MAX_RECORD, record_header_ok

MAX_FILES = 1000  # files reported per mail
MAX_PARAMS = 8192  # longest Content-Type / Content-Disposition value read as it is
MAX_DEPTH = 32  # nested multiparts followed
MAX_BOUNDARIES = 8192  # bytes of the boundaries of the open multiparts
WS_KEEP = 64  # blanks after a boundary kept at a line start (more are counted)
HDR_PEEK = 1024  # bytes of a header line kept to classify it, once the block is full
MAX_STARTTLS = 4  # STARTTLS commands whose following bytes are checked for TLS
TLS_WINDOW = 32 * 1024  # bytes after STARTTLS kept until TLS framing is trusted

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
_ENVELOPE = frozenset((b"HELO", b"EHLO", b"MAIL", b"RCPT"))
_UU = frozenset(("x-uuencode", "uuencode", "uue", "x-uue"))
_NOT_FILE_TYPES = frozenset(("text", "multipart", "message"))

# email's header line test (feedparser.headerRE: "From ", a name and a
# colon, or a continuation), on bytes: a byte >= 0x80 is a surrogate there,
# outside the name class too.
_NAME = re.compile(rb"[\041-\071\073-\176]*")
# The header fields read (the first of each, as Message.get reads them).
_FIELDS = frozenset((b"content-type", b"content-disposition", b"content-transfer-encoding"))
_BAD_EOL = re.compile(rb"\r?\n(?![ \t])")  # a line end that would end a field
_BLANKS = re.compile(rb"[ \t]+")
(_CONT, _FROM, _FIELD, _BLANK, _BODY) = range(5)  # header line kinds

# Base64 as binascii.a2b_base64 reads it: the alphabet, "=" (padding ends
# the data once a quantum has 2 or 3 characters), anything else skipped.
_B64_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_B64_DROP = bytes(c for c in range(256) if c not in _B64_KEEP)
# On the reversed text: the trailing "="s and the last 1, 2 or 3 characters
# (with the "="s between them), i.e. a quantum not complete yet.
_B64_TAIL = [None] + [re.compile(rb"(?:=*+[^=]){%d}" % k) for k in (1, 2, 3)]
_B64_RUNS = re.compile(rb"=+|[^=]")
# Quoted-printable as binascii.a2b_qp reads it: "=" then CR is a soft line
# break that swallows everything up to the LF. A run of "="s pairs up
# ("==" is "="), so only the last "=" of an odd run starts an escape.
_QP_SOFT_CR = re.compile(rb"(?<!=)(?:==)*+=\r")

RAW, B64, QP, UU = range(4)
HDR, BODY = range(2)


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
    """Whether the 5 bytes at ``p`` can be a TLS record header of TLS 1.3 at
    most (the first one after STARTTLS: a non-empty handshake record)."""
    if not record_header_ok(b, p) or b[p + 2] > 4:
        return False
    return not first or b[p] == 22 and (b[p + 3] or b[p + 4])


class _Params:
    """A Content-Type / Content-Disposition value too long to keep whole
    (a padded one), read as it arrives: split into parameters as email
    splits it (``_parseparam``: a ";" splits unless the quotes before it
    in the parameter are odd), of which the first (the type) and the
    boundary, filename, name and charset ones are kept, MAX_PARAMS bytes
    at most in all, like _short_params."""

    __slots__ = ("kept", "size", "cur", "over", "odd", "prev", "full")

    def __init__(self):
        self.kept: list[bytes] = []
        self.size = 0
        self.cur = bytearray()  # the parameter being read (its first MAX_PARAMS bytes)
        self.over = False
        self.odd = 0  # its quotes (but escaped ones) so far are odd
        self.prev = 0  # its last byte (a backslash escapes a quote next)
        self.full = False  # MAX_PARAMS bytes kept: nothing more counts

    def held(self) -> int:
        return self.size + len(self.cur)

    def feed(self, data: bytes) -> None:
        start = 0
        i = data.find(b";")
        while i >= 0 and not self.full:
            self._add(data, start, i)
            if self.odd:  # a ";" in quotes
                self._add(data, i, i + 1)
            else:
                self._split()
            start = i + 1
            i = data.find(b";", start)
        if not self.full:
            self._add(data, start, len(data))

    def _add(self, data: bytes, a: int, b: int) -> None:
        if a >= b:
            return
        q = data.count(b'"', a, b) - data.count(b'\\"', a, b)
        if self.prev == 0x5C and data[a] == 0x22:
            q -= 1
        self.odd = (self.odd + q) & 1
        self.prev = data[b - 1]
        if not self.over:
            room = MAX_PARAMS - len(self.cur)
            if b - a > room:
                self.over = True
                b = a + room
            self.cur += data[a:b]

    def _split(self) -> None:
        seg = bytes(self.cur)
        self.cur = bytearray()
        self.over = False
        self.odd = self.prev = 0
        if not self.kept:  # the type
            self.kept.append(seg)
            self.size = len(seg)
        else:
            k = seg.find(b"=")
            name = (seg if k < 0 else seg[:k]).decode("ascii", "surrogateescape")
            if name.strip().lower().partition("*")[0] in _KEPT_PARAMS:
                self.kept.append(b";" + seg)
                self.size += 1 + len(seg)
        self.full = self.size >= MAX_PARAMS

    def value(self) -> bytes:
        """The value kept (once the field is over), a valid folded value."""
        if not self.full:
            self._split()
        v = b"".join(self.kept)[:MAX_PARAMS]
        return _BAD_EOL.sub(b"", v).rstrip(b"\r\n")


def _name_bytes(name: str) -> bytes:
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return name.encode("utf-8", "backslashreplace")


def _file_info(part) -> tuple | None:
    """``(name, content_type)`` of a leaf part that is a file, else None
    (see the module docstring)."""
    try:
        name = part.get_filename()
        named = name is not None
    except Exception:  # a filename parameter is there, its RFC 2231 charset broke
        name, named = None, True
    ctype = part.get_content_type()
    if not named and part.get_content_disposition() != "attachment" and \
            ctype.partition("/")[0] in _NOT_FILE_TYPES:
        return None
    return None if name is None else _name_bytes(str(name)), ctype


def _uudecode(raw: bytes, cte: str) -> bytes:
    # email's own decoder (which gives the text back when it finds no
    # "begin" line), on the body as it would have stored it.
    m = Message()
    m["Content-Transfer-Encoding"] = cte
    m.set_payload(raw.decode("ascii", "surrogateescape"))
    data = m.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


class _File:
    """An attachment being decoded as its body arrives; the first ``cap``
    decoded bytes are kept. Every decoder gives the same bytes whatever the
    pieces it is fed (a quantum, an escape cut anywhere is carried)."""

    __slots__ = ("name", "ctype", "cte", "kind", "buf", "cap", "cut", "carry", "stop", "keep")

    def __init__(self, name, ctype: str, cte: str, cap: int, keep: bool):
        self.name, self.ctype, self.cte, self.cap, self.keep = name, ctype, cte, cap, keep
        self.kind = (B64 if cte == "base64" else QP if cte == "quoted-printable"
                     else UU if cte in _UU else RAW)
        self.buf = bytearray()  # decoded (x-uuencode: as sent)
        self.cut = False  # more than cap bytes: the rest is not even decoded
        self.carry = b""  # an incomplete base64 quantum, quoted-printable escape
        self.stop = False  # base64: padding ended the data; QP: in "=\r..." up to the LF

    def held(self) -> int:
        return len(self.buf) + len(self.carry)

    def write(self, data: bytes) -> None:
        if self.cut or not self.keep or not data:
            return
        kind = self.kind
        if kind == B64:
            self._b64(data)
        elif kind == QP:
            self._qp(data)
        else:
            self._put(data)

    def finish(self) -> bytes:
        if self.keep and not self.cut and self.carry:
            if self.kind == B64:
                left = self.carry.rstrip(b"=")
                if len(left) >= 2:  # a quantum cut short: its whole bytes
                    self._put(binascii.a2b_base64(left + b"=" * (4 - len(left))))
            elif self.kind == QP and not self.stop:
                self._put(binascii.a2b_qp(self.carry))
        self.carry = b""
        data = bytes(self.buf)
        self.buf = bytearray()
        if self.kind != UU or not data:
            return data
        if self.cut:  # (a line cut short would decode to zeros: whole lines only)
            data = data[:data.rfind(b"\n") + 1]
        return _uudecode(data, self.cte)

    def _put(self, out: bytes) -> None:
        room = self.cap - len(self.buf)
        if len(out) > room:
            self.buf += out[:room]
            self.cut = True
        else:
            self.buf += out

    def _b64(self, data: bytes) -> None:
        # a2b_base64 on whole quanta (with the "="s around them), and the
        # last incomplete quantum carried in a normal form: its characters
        # and a pending "=" (after 2 characters, one "=" does not end it).
        if self.stop:
            return
        s = data.translate(None, _B64_DROP)
        if self.carry:
            s = self.carry + s
            self.carry = b""
        r = (len(s) - s.count(b"=")) % 4
        head, tail = s, b""
        if r:
            k = len(s) - _B64_TAIL[r].match(s[::-1]).end()
            head, tail = s[:k], s[k:]
        if head:
            out = binascii.a2b_base64(head)  # (complete quanta: never raises)
            self._put(out)
            if len(out) % 3:  # it stopped at padding after 2 or 3 characters
                self.stop = True
                return
        left, pads = b"", 0
        for m in _B64_RUNS.finditer(tail):  # at most 3 characters, 4 runs of "="
            t = m.group()
            if t[0] != 0x3D:
                left += t
                pads = 0
            elif len(left) >= 2:  # ("="s before the 2nd character are skipped)
                pads += len(t)
                if len(left) + pads >= 4:
                    self._put(binascii.a2b_base64(left + b"=" * (4 - len(left))))
                    self.stop = True
                    return
        self.carry = left + b"=" * pads

    def _qp(self, data: bytes) -> None:
        # a2b_qp up to a point where no escape is open: the last LF, or in
        # the last line before a trailing "=" / "=X" that starts an escape.
        if self.stop:  # a soft line break "=\r..." swallows up to the LF
            j = data.find(b"\n")
            if j < 0:
                return
            self.stop = False
            data = data[j + 1:]
        s = self.carry + data if self.carry else data
        self.carry = b""
        if not s:
            return
        k = s.rfind(b"\n") + 1
        last = s[k:]
        m = _QP_SOFT_CR.search(last)
        if m is not None:
            self._put(binascii.a2b_qp(s[:k + m.end() - 2]))
            self.stop = True
            return
        keep = 0
        run = len(last) - len(last.rstrip(b"="))
        if run:
            keep = run & 1
        elif len(last) >= 2 and last[-2] == 0x3D:
            run = len(last) - 1 - len(last[:-1].rstrip(b"="))
            keep = 2 if run & 1 else 0
        if keep:
            self.carry = s[-keep:]
            s = s[:-keep]
        self._put(binascii.a2b_qp(s))


class _Mime:
    """One mail's MIME structure, parsed as its bytes arrive (see the
    module docstring); files go to the parser's output when their part
    ends."""

    __slots__ = ("_p", "_mode", "_fields", "_fsize", "_field", "_last", "_hl", "_hscan",
                 "_hrest", "_htrunc", "_hdef", "_stack", "_bmap", "_bbytes", "_kb", "_bol",
                 "_eol", "_lp", "_bws", "_wsx", "_wscr", "_sink", "_files", "_cut")

    def __init__(self, parser: SmtpParser):
        self._p = parser
        self._mode = HDR
        # The header block: its fields we read (raw lines, or _Params when
        # too long), the field of the line being read and of the last one
        # (for a continuation), the start of a line not classified yet.
        self._fields: dict[bytes, bytearray | _Params] = {}
        self._fsize = 0  # raw bytes of _fields
        self._field: bytes | None = None
        self._last: bytes | None = None
        self._hl = bytearray()
        self._hscan = 0  # _hl[:_hscan] is header name characters
        self._hrest = False  # the line is classified: its rest goes to _field
        self._htrunc = False  # header_truncated counted for this block
        self._hdef = "text/plain"  # the default type of the block's entity
        self._stack: list[list] = []  # [boundary, digest, in preamble] of open multiparts
        self._bmap: dict[bytes, tuple[int, bool]] = {}  # "--b", "--b--" -> (level, close)
        self._bbytes = 0
        self._kb = 0  # line start bytes kept to recognise a boundary line
        self._bol = True  # at a line start not looked at yet
        self._eol = b""  # the line end before a possible boundary line (or a CR)
        self._lp = bytearray()  # a line start that may be a boundary line
        self._bws = False  # _lp is a boundary and blanks, more blanks are counted
        self._wsx = 0
        self._wscr = False
        self._sink: _File | None = None  # the file whose body is being read
        self._files = 0
        self._cut = False  # a file of this mail was truncated

    def held(self) -> int:
        sink = self._sink
        return (self._fsize + sum(v.held() for v in self._fields.values()
                                  if isinstance(v, _Params))
                + len(self._hl) + len(self._lp) + len(self._eol)
                + sum(map(len, self._bmap)) + (sink.held() if sink is not None else 0))

    # -- input --------------------------------------------------------------

    def feed(self, s: bytes) -> None:
        n = len(s)
        p = 0
        while p < n:
            if self._lp or self._bws or (self._bol and self._bmap and s[p] == 0x2D):
                p = self._check(s, p, n)
            elif self._mode == HDR:
                p = self._header(s, p, n)
            else:
                p = self._body(s, p, n)

    def _pass(self, line: bytes) -> None:
        """A line start that is no boundary line: to the headers or body."""
        self._bol = False
        self.feed(line)

    def finish(self) -> None:
        """The mail ended: its last line (without its LF), the open part."""
        for _ in range(16):  # (each round ends a header block or a pending line)
            if self._lp or self._bws:
                line = bytes(self._lp)
                hit = self._bmap.get(_core(line))
                extra, cr = self._wsx if self._bws else 0, self._wscr
                self._lp = bytearray()
                self._bws = self._wscr = False
                if hit is not None:
                    self._boundary(*hit)
                else:
                    self._pass(self._unblank(line, extra, cr))
            elif self._mode == HDR:
                self._hrest = False
                if self._hl:
                    line = bytes(self._hl)
                    self._hl = bytearray()
                    self._hscan = 0
                    self._header_line(line, _line_kind(line, True))
                else:
                    self._end_header(None)
            else:
                break
        eol = self._eol
        self._eol = b""
        # email drops the line end before the end of the mail too, in a multipart
        if eol and not self._stack and self._sink is not None:
            self._sink.write(eol)
        self._close_sink(True)

    # -- boundaries ---------------------------------------------------------

    def _check(self, s: bytes, p: int, n: int) -> int:
        """A line start that may be a boundary line."""
        if self._bws:
            return self._blanks(s, p, n)
        lp = self._lp
        need = self._kb - len(lp)
        j = s.find(b"\n", p, p + need)
        if j >= 0:
            lp += s[p:j + 1]
            line = bytes(lp)
            self._lp = bytearray()
            hit = self._bmap.get(_core(line))
            if hit is not None:
                self._boundary(*hit)
            else:
                self._pass(line)
            return j + 1
        e = min(n, p + need)
        lp += s[p:e]
        if len(lp) < self._kb and (len(lp) < 2 or lp[1] == 0x2D):
            return e  # (not decided yet)
        line = bytes(lp)
        if len(lp) >= self._kb and line.rstrip(b" \t") in self._bmap:
            self._bws = True  # a boundary, then blanks up to now
            self._wsx = 0
            self._wscr = False
            return e
        self._lp = bytearray()
        self._pass(line)
        return e

    def _blanks(self, s: bytes, p: int, n: int) -> int:
        """After a boundary and WS_KEEP blanks: more blanks then the line end
        (a boundary line), or anything else (a body line)."""
        while p < n:
            c = s[p]
            if c == 0x0A:
                line = bytes(self._lp)
                self._lp = bytearray()
                self._bws = self._wscr = False
                self._boundary(*self._bmap[line.rstrip(b" \t")])
                return p + 1
            if self._wscr or (c != 0x20 and c != 0x09 and c != 0x0D):
                line = self._unblank(bytes(self._lp), self._wsx, self._wscr)
                self._lp = bytearray()
                self._bws = self._wscr = False
                self._pass(line)
                return p
            if c == 0x0D:
                self._wscr = True
                p += 1
            else:
                q = _BLANKS.match(s, p).end()
                self._wsx += q - p
                p = q
        return n

    def _unblank(self, line: bytes, extra: int, cr: bool) -> bytes:
        """A boundary-like line start that was body after all, its blanks
        past WS_KEEP given back as spaces (as many as a file may take)."""
        sink = self._sink
        if extra and (self._mode == HDR or (sink is not None and sink.kind != B64)):
            line += b" " * min(extra, self._p.max_file + 2)
        return line + b"\r" if cr else line

    def _boundary(self, level: int, close: bool) -> None:
        """A boundary line of the multipart at ``level`` of the stack: it
        ends every part inside it."""
        if self._mode == HDR:  # the part has headers only
            self._end_header(None)
        self._eol = b""  # (the line end before a boundary line is the boundary's)
        stack = self._stack
        top = stack[level]
        # The first boundary of a multipart ends its preamble, which was
        # decoded in case the multipart turned out to have no parts.
        self._close_sink(not (level == len(stack) - 1 and top[2] and not close))
        del stack[level + 1:]
        if close:
            del stack[level]
            self._mode = BODY  # the epilogue
        else:
            top[2] = False
            self._mode = HDR
            self._hdef = "message/rfc822" if top[1] else "text/plain"
        self._bol = True
        self._restack()

    def _restack(self) -> None:
        bmap: dict[bytes, tuple[int, bool]] = {}
        longest = total = 0
        for level in range(len(self._stack) - 1, -1, -1):  # (the outermost wins)
            b = self._stack[level][0]
            bmap[b"--" + b] = (level, False)
            bmap[b"--" + b + b"--"] = (level, True)
            longest = max(longest, len(b))
            total += len(b)
        self._bmap = bmap
        self._bbytes = total
        self._kb = 2 + longest + 2 + WS_KEEP + 2 if bmap else 0

    # -- headers ------------------------------------------------------------

    def _header(self, s: bytes, p: int, n: int) -> int:
        self._bol = False
        if self._hrest:  # the rest of a classified line: to its field, or dropped
            j = s.find(b"\n", p)
            e = n if j < 0 else j + 1
            if self._field is not None:
                self._field_add(s[p:e])
            if j >= 0:
                self._hrest = False
                self._bol = True
            return e
        hl = self._hl
        cap = max(self._p.max_header - self._fsize, HDR_PEEK)
        j = s.find(b"\n", p, p + cap - len(hl))
        e = j + 1 if j >= 0 else min(n, p + cap - len(hl))
        hl += s[p:e]
        self._hscan = _NAME.match(hl, self._hscan).end()  # (only the new bytes)
        kind = _line_kind(hl, j >= 0, self._hscan)
        if kind is None:
            if len(hl) < cap:
                return e
            kind = _BODY  # a "name" that long: not a header line
        line = bytes(hl)
        self._hl = bytearray()
        self._hscan = 0
        if j < 0 and kind != _BODY:
            self._hrest = True
        else:
            self._bol = True
        self._header_line(line, kind)
        return e

    def _header_line(self, line: bytes, kind: int) -> None:
        """A header line (or its start): the block ends at a blank line or a
        line that is no header line (the body's first, as email reads it)."""
        if kind == _BLANK:
            self._end_header(None)
        elif kind == _BODY:
            self._hrest = False
            self._end_header(line)
        else:
            if kind == _FIELD:
                name = line[:line.index(b":")].lower()
                if name in _FIELDS and name not in self._fields:
                    self._fields[name] = bytearray()
                else:
                    name = None
                self._last = name
            elif kind == _FROM:
                self._last = None
            self._field = self._last  # (a continuation: the last field's)
            if self._field is not None:
                self._field_add(line)

    def _field_add(self, data: bytes) -> None:
        key = self._field
        v = self._fields[key]
        if isinstance(v, _Params):
            v.feed(data)
            return
        room = self._p.max_header - self._fsize
        if len(data) <= room:
            v += data
            self._fsize += len(data)
            return
        if not self._htrunc:
            self._htrunc = True
            self._p.counters["header_truncated"] += 1
        if key == b"content-transfer-encoding":  # (a token: its start is enough)
            v += data[:room]
            self._fsize += room
            return
        prm = _Params()  # padded parameters: read as they come, the ones we use kept
        prm.feed(bytes(v[v.index(b":") + 1:]))
        prm.feed(data)
        self._fsize -= len(v)
        self._fields[key] = prm

    def _end_header(self, line: bytes | None) -> None:
        """The header block is over: what its entity is; ``line`` (the first
        body line) is read again in that light."""
        block = []
        for key, v in self._fields.items():
            if isinstance(v, _Params):
                block.append(key + b":" + v.value() + b"\n")
            elif b":" in v:  # (not a field cut before its colon)
                block.append(bytes(v) if v.endswith(b"\n") else bytes(v) + b"\n")
        self._fields = {}
        self._fsize = 0
        self._field = self._last = None
        self._hl = bytearray()
        self._hscan = 0
        self._hrest = self._htrunc = False
        default, self._hdef = self._hdef, "text/plain"
        self._bol = True
        self._entity(b"".join(block), default)
        if line is not None:
            self.feed(line)

    def _entity(self, block: bytes, default: str) -> None:
        counters = self._p.counters
        part, ctype = None, default
        if block:
            try:
                part = BytesHeaderParser(_Part, policy=compat32).parsebytes(block)
                part.set_default_type(default)
                ctype = part.get_content_type()
            except Exception:
                counters["mime_errors"] += 1
                part, ctype = None, "text/plain"
        main = ctype.partition("/")[0]
        self._mode = BODY
        if main == "multipart" and part is not None:
            try:
                b = part.get_boundary()
            except Exception:
                b = None
            if b is not None:
                try:
                    bb = b.encode("ascii", "surrogateescape")  # email's own mapping back
                except UnicodeEncodeError:
                    bb = b.encode("utf-8", "surrogatepass")
                if len(self._stack) < MAX_DEPTH and self._bbytes + len(bb) <= MAX_BOUNDARIES:
                    self._stack.append([bb, ctype == "multipart/digest", True])
                    self._restack()
                    self._sink = self._new_file(part)  # (its preamble: see _boundary)
                    return
                counters["mime_errors"] += 1  # too deep: read as a leaf
        elif ctype == "message/delivery-status":  # header blocks, no attachment
            return
        elif main == "message":  # an encapsulated mail: its headers come next
            self._mode = HDR
            return
        if part is not None:
            self._sink = self._new_file(part)

    def _new_file(self, part) -> _File | None:
        try:
            info = _file_info(part)
            if info is None:
                return None
            raw = part.get("content-transfer-encoding")
            cte = str(raw).strip().lower() if raw is not None else ""
        except Exception:
            self._p.counters["mime_errors"] += 1
            return None
        return _File(info[0], info[1], cte, self._p.max_file, self._files < MAX_FILES)

    def _close_sink(self, emit: bool) -> None:
        f = self._sink
        if f is None:
            return
        self._sink = None
        if not emit:
            return
        counters = self._p.counters
        if not f.keep:
            counters["files_dropped"] += 1
            return
        data = f.finish()
        if f.cut:
            counters["file_truncated"] += 1
            if not self._cut:
                self._cut = True
                counters["truncated"] += 1
        self._files += 1
        counters["files"] += 1
        self._p._out.append(SmtpEvent("file", {"name": f.name, "data": data,
                                               "content_type": f.ctype, "cut": f.cut}))

    # -- bodies -------------------------------------------------------------

    def _body(self, s: bytes, p: int, n: int) -> int:
        """Body bytes up to the next line that may be a boundary line (one
        starting with "-"); the line end before it is held back."""
        self._bol = False
        sink = self._sink
        eol = self._eol
        if eol:
            self._eol = b""
            if eol == b"\r":  # a CR at the end of the last piece
                if s[p] == 0x0A:
                    self._eol = b"\r\n"
                    self._bol = True
                    return p + 1
            if sink is not None:
                sink.write(eol)
        if not self._bmap:  # no boundary can come: the rest of the mail
            if sink is not None:
                sink.write(s[p:n] if p else s)
            return n
        j = s.find(b"\n-", p)
        if j < 0:
            if s[n - 1] == 0x0A:
                j = n - 1
            elif s[n - 1] == 0x0D:
                if sink is not None:
                    sink.write(s[p:n - 1])
                self._eol = b"\r"
                return n
            else:
                if sink is not None:
                    sink.write(s[p:n] if p else s)
                return n
        e = j - 1 if j > p and s[j - 1] == 0x0D else j
        if sink is not None:
            sink.write(s[p:e])
        self._eol = s[e:j + 1]
        self._bol = True
        return j + 1


def _line_kind(hl, complete: bool, scan: int = -1) -> int | None:
    """What a header line is, from its start ``hl`` (None: not known yet);
    ``scan``: how many name characters it starts with."""
    if not hl or hl == b"\r":  # (a CR: maybe a blank line)
        return _BLANK if complete else None
    c = hl[0]
    if c == 0x20 or c == 0x09:
        return _CONT
    if scan < 0:
        scan = _NAME.match(hl).end()
    if scan < len(hl):
        if hl[scan] == 0x3A:
            return _FIELD
        if hl[:5] == b"From ":
            return _FROM
        return _BLANK if hl == b"\n" or hl == b"\r\n" else _BODY
    # name characters so far: a header line if a colon comes; at the end
    # of the mail (complete: the last line, without its LF) none will.
    return _BODY if complete else None


def _core(line: bytes) -> bytes:
    """A line without its line end and trailing blanks: a boundary line is
    "--" + boundary (+ "--") then."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.rstrip(b" \t")


class SmtpParser:
    """The client's side of one SMTP session, fed incrementally (see module doc)."""

    __slots__ = ("max_file", "max_header", "max_line", "counters", "encrypted", "_state",
                 "_resume", "_line", "_mime", "_fline", "_first", "_bdat_open",
                 "_bdat_left", "_bdat_last", "_tls_next", "_tls_tries", "_tbuf", "_twalk",
                 "_tskip", "_thdr", "_prev_lf", "_out", "envelope")

    def __init__(self, max_file: int = 1 << 20, max_line: int = 4096,
                 max_header: int = 64 * 1024, envelope: bool = False):
        # envelope: also return ("helo"|"mail_from"|"rcpt_to", {"value"}) for
        # those commands, and ("mail_end", {}) when a mail is over (the end
        # of Suricata's SMTP transaction)
        self.envelope = envelope
        self.max_file = max(int(max_file), 0)
        self.max_header = max(int(max_header), 1024)
        self.max_line = max(int(max_line), 64)
        self.counters: collections.Counter = collections.Counter(
            messages=0, files=0, truncated=0, long_lines=0, gaps=0, bdat_chunks=0,
            file_truncated=0, header_truncated=0)
        self.encrypted = False
        self._state = CMD
        self._resume = CMD  # where SKIP goes at the next LF
        self._line = bytearray()  # the partial command line
        self._mime: _Mime | None = None  # the mail in progress
        self._fline = bytearray()  # its first line, while _first
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
        if self._mime is not None:
            self.counters["lost_messages"] += 1
        self._line = bytearray()
        self._mime = None
        self._fline = bytearray()
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
        if self._mime is not None:
            self._examine(False)
        self._state = CLOSED
        self._line = bytearray()
        self._tbuf = None
        return self._take()

    def held(self) -> int:
        """Bytes the parser holds (buffers and partial data, not its counters)."""
        mime = self._mime
        return (len(self._line) + len(self._fline) + len(self._thdr)
                + (len(self._tbuf) if self._tbuf is not None else 0)
                + (mime.held() if mime is not None else 0))

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
        if self.envelope and verb in _ENVELOPE:
            self._envelope(line.lstrip(b" \t").rstrip(b"\r"))
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

    def _envelope(self, line: bytes) -> None:
        """HELO/EHLO, MAIL FROM and RCPT TO arguments as Suricata takes them
        (SMTPParseCommandWithParam): past the prefix and one more byte (the
        space or ':'), blanks skipped, up to the next space (so ``SIZE=``
        and other RFC 1870 parameters are left out)."""
        low = line[:9].lower()
        if low[:4] in (b"helo", b"ehlo"):
            kind, start = "helo", 5
        elif low == b"mail from":
            kind, start = "mail_from", 10
        elif low[:7] == b"rcpt to":
            kind, start = "rcpt_to", 8
        else:
            return
        rest = line[start:].lstrip(b" ")
        self._out.append(SmtpEvent(kind, {"value": rest.split(b" ", 1)[0]}))

    def _data(self, data: bytes, pos: int, n: int) -> int:
        """DATA mail bytes up to the end of ``data`` or of the mail."""
        while pos < n:
            st = self._state
            if st == DATA_MID:
                if self._first:
                    j = data.find(b"\n", pos)
                    if j < 0:
                        if len(self._fline) + n - pos > self.max_line:
                            self._first = False  # too long for a command
                            self._append_first()
                            self._append(data, pos, n)
                        else:
                            self._fline += memoryview(data)[pos:n]
                        return n
                    self._fline += memoryview(data)[pos:j + 1]
                    pos = j + 1
                    self._state = DATA_BOL
                    self._first = False
                    if self._refused():
                        return pos
                    self._append_first()
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
        line = bytes(self._fline)
        if len(line) - 1 > self.max_line or _COMMAND_LINE.match(line) is None:
            return False
        self.counters["data_refused"] += 1
        self._mime = None
        self._fline = bytearray()
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
        self._mime = _Mime(self)
        self._fline = bytearray()

    def _append(self, data: bytes, start: int, end: int) -> None:
        mime = self._mime
        if start >= end or mime is None:
            return
        try:
            mime.feed(data[start:end] if start or end != len(data) else data)
        except Exception:  # (a bug, not an input: the mail is given up, not the session)
            self._mime_failed()

    def _append_first(self) -> None:
        line = self._fline
        if line:
            self._fline = bytearray()
            self._append(bytes(line), 0, len(line))

    def _mime_failed(self) -> None:
        self.counters["mime_errors"] += 1
        self._mime = _Mime(self)
        self._mime._mode = BODY  # the rest of the mail is read as nothing

    def _close_bdat(self) -> None:
        if self._bdat_open:
            self._examine(False)

    def _examine(self, complete: bool) -> None:
        """The mail is over: the end of its last part."""
        self._append_first()
        mime = self._mime
        self._mime = None
        self._bdat_open = False
        self._first = False
        self.counters["messages"] += 1
        if not complete:
            self.counters["incomplete"] += 1
        if mime is not None:
            try:
                mime.finish()
            except Exception:
                self.counters["mime_errors"] += 1
        if self.envelope:
            self._out.append(SmtpEvent("mail_end", {}))
