"""Sans-I/O incremental HTTP/1.x response parser for one server->client stream.

``HttpResponseParser(body_limit).feed(chunk) -> list[HttpResponse]`` takes
the reassembled bytes of the server's direction in any chunking and returns
each response once, when it is ready for detection: its body is complete,
or its decoded body reached ``body_limit`` (the rest of that body is then
framed and skipped, not kept), or the stream ended (``finish()``) or lost
bytes (``gap()``) in the middle of it (``complete`` False). A response
whose headers never completed is returned by ``finish()``/``gap()`` too, so
a rule on ``http.stat_code`` still sees a cut-short response.
``parser.current`` is the response in progress (headers only, body not
filled in yet).

The sibling of :mod:`pakemon.detect.http` (requests) and lenient the same
way, because what matters is what the client will act on: LF-only line
ends, empty lines before a status line, a status line without a reason
phrase, obs-fold continuation lines, header lines without a colon (skipped,
counted), whitespace and extensions around chunk sizes, trailers.

Framing (RFC 9112 6.3), which needs the request method: the engine calls
``expect(method)`` for each request in order (the request parser's
``method``), and each final response consumes one (a missing one is taken
as GET and counted in ``unmatched``):

* 1xx other than 101 is interim (100 Continue): no body, and it does not
  answer the request, the final response that follows does;
* a response to HEAD, and 204 and 304, have no body;
* 101 Switching Protocols and a 2xx answer to CONNECT turn the rest of the
  stream into a tunnel (not parsed; ``tunnel`` set);
* Transfer-Encoding chunked wins over Content-Length (its presence with a
  Content-Length is an anomaly: the classic smuggling signature);
* else Content-Length (the first valid one; differing ones are counted);
* else the body runs to the end of the stream and ``finish()`` completes
  it (close-delimited).

A chunk size that is not hex makes the rest of the stream a close-delimited
body, as libhtp does for responses: the client shows those bytes somehow,
so detection must see them in ``body``.

Body decoding (what Suricata calls ``file.data`` / ``http.response_body``):
chunked framing removed, then Content-Encoding gzip / x-gzip / deflate
undone (zlib-wrapped or raw deflate, decided from the first two bytes as
browsers do; up to ``MAX_LAYERS`` codings, as libhtp's default layer
limit). Decompression runs incrementally, on 1 KiB pieces of the
compressed body at fixed offsets (so the result does not depend on TCP
segmentation, and a stream corrupted midway keeps what decoded before the
damaged piece), with ``max_length`` bounds so a zip bomb costs at most
``body_limit`` output bytes; a body whose output is
capped with a compression ratio above ``BOMB_RATIO`` is reported as a
``decompression_bomb`` anomaly. Data that fails to decompress before
producing anything is passed through raw (libhtp's behaviour: the bytes are
still shown to detection), counted as ``decompress_error``. Unknown codings
(br, compress, ...) leave the body as sent (``unsupported_encoding``).

Anomalies are counted per parser in ``anomalies`` (name -> count) and
listed per response in ``HttpResponse.anomalies``.

Performance: the line reader (lines found with ``bytes.find``, partial
lines kept as pieces joined once, over-long lines cut at ``max_line``) is
:class:`pakemon.applayer.lines.LineParser`, shared with the request
parser. A header block wholly inside one chunk (nearly every response) is
found with one search and split at once, each line then handled as in the
line-by-line path (same headers, folds, anomalies, raw block).
``body_limit`` 0 frames bodies without keeping them: a body with no
Content-Encoding then gets no decoder at all (the detect stage's choice
where no rule reads response bodies).
"""

from __future__ import annotations

import zlib
from collections import deque

from .lines import (BODY as _BODY, CDATA as _CDATA, CLOSE as _CLOSE, CSIZE as _CSIZE,
                    HDR as _HDR, LINE as _LINE, TRAILER as _TRAILER, TUNNEL as _TUNNEL,
                    LineParser)

MAX_LINE = 16 * 1024
MAX_HEADERS = 100
MAX_RAW_HEADER = 64 * 1024  # raw header block kept per response
MAX_LAYERS = 2
BOMB_RATIO = 500  # decoded/encoded ratio at the cap that is reported
MAX_PENDING_METHODS = 1024
BODY_LIMIT = 102400
_PIECE = 1024  # compressed bytes per decompress call
DECODER_COST = 48 * 1024  # one decompressor's memory, for held()


class HttpResponse:
    """One response as parsed so far.

    ``response_line`` is the raw status line without its line end;
    ``protocol`` its first field (``b"HTTP/1.1"``), ``stat_code`` the raw
    status code field (Suricata's ``http.stat_code`` buffer, bytes such as
    ``b"200"``), ``status`` the same as an int (None when not three
    digits), ``stat_msg`` the reason phrase (``b""`` when missing).
    ``headers`` lists (name, value) pairs as sent (values stripped of
    surrounding blanks, folded lines joined with a space); ``get(name)``
    returns the first value by case-insensitive name. ``header`` is the
    normalized block as Suricata's ``http.response_header``; ``raw_header``
    the header lines as received, line ends and the closing empty line
    included (``http.response_header.raw``). ``body`` is the decoded body,
    at most the parser's ``body_limit`` bytes (``file.data``);
    ``body_length`` counts the de-chunked body bytes on the wire.
    """

    __slots__ = ("response_line", "protocol", "stat_code", "status", "stat_msg", "headers",
                 "raw_header", "body", "body_length", "content_length", "chunked",
                 "content_encoding", "method", "headers_complete", "complete",
                 "body_truncated", "tunnel", "anomalies", "_raw", "_header", "_returned")

    def __init__(self, line: bytes, protocol: bytes, code: bytes, msg: bytes):
        self.response_line = line
        self.protocol = protocol
        self.stat_code = code
        self.status = int(code) if len(code) == 3 and code.isdigit() else None
        self.stat_msg = msg
        self.headers: list[tuple[bytes, bytes]] = []
        self.raw_header = b""
        self.body = b""
        self.body_length = 0
        self.content_length: int | None = None
        self.chunked = False
        self.content_encoding: bytes | None = None
        self.method: bytes | None = None  # the request method it answers
        self.headers_complete = False
        self.complete = False
        self.body_truncated = False  # decoded body reached body_limit
        self.tunnel = False
        self.anomalies: list[str] = []
        self._raw: list[bytes] | None = []
        self._header: bytes | None = None
        self._returned = False

    def get(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        key = name.lower()
        for n, v in self.headers:
            if n.lower() == key:
                return v
        return None

    @property
    def interim(self) -> bool:
        """A 1xx other than 101 (100 Continue, 103 Early Hints): it answers
        no request, the final response after it does (RFC 9110 15.2)."""
        st = self.status
        return st is not None and 100 <= st < 200 and st != 101

    @property
    def content_type(self) -> bytes | None:
        return self.get(b"content-type")

    @property
    def server(self) -> bytes | None:
        return self.get(b"server")

    @property
    def location(self) -> bytes | None:
        return self.get(b"location")

    @property
    def header(self) -> bytes:
        """``Name: value\\r\\n`` per header, as Suricata's http.response_header.

        libhtp keeps one entry per header name (the first spelling), later
        values of the same name appended with ``, ``; Suricata's buffer
        leaves out Set-Cookie (it has its own, http.cookie).
        """
        if self._header is None:
            merged: dict[bytes, list] = {}
            for name, value in self.headers:
                key = name.lower()
                if key == b"set-cookie":
                    continue
                entry = merged.get(key)
                if entry is None:
                    merged[key] = [name, value]
                else:
                    entry[1] = entry[1] + b", " + value
            self._header = b"".join(n + b": " + v + b"\r\n" for n, v in merged.values())
        return self._header

    def __repr__(self) -> str:
        return (f"HttpResponse({self.stat_code!r}, headers={len(self.headers)}, "
                f"body={len(self.body)}, complete={self.complete})")


class _BodyDecoder:
    """Content-Encoding undone incrementally into at most ``limit`` bytes."""

    __slots__ = ("limit", "out", "decs", "passthrough", "consumed", "produced_any", "head",
                 "anomalies", "stopped", "pending")

    def __init__(self, codings: list[bytes], limit: int, anomalies: list[str]):
        self.limit = limit
        self.out = bytearray()
        self.anomalies = anomalies
        self.consumed = 0
        self.produced_any = False
        self.head = bytearray()  # first raw bytes, replayed if decoding fails at once
        self.passthrough = True
        self.stopped = False  # decoding broke after producing output: the rest is dropped
        self.pending = bytearray()  # compressed bytes waiting for a whole piece
        self.decs: list = []
        if not codings:
            return
        if len(codings) > MAX_LAYERS:
            anomalies.append("too_many_encodings")
            return
        decs = []
        for c in reversed(codings):  # applied in the order listed: undo the last first
            if c in (b"gzip", b"x-gzip"):
                decs.append([zlib.decompressobj(16 + zlib.MAX_WBITS), "gzip"])
            elif c == b"deflate":
                decs.append([None, "deflate"])  # wrapper decided on the first bytes
            else:
                anomalies.append("unsupported_encoding")
                return
        self.decs = decs
        self.passthrough = False

    @property
    def full(self) -> bool:
        return len(self.out) >= self.limit

    def write(self, data: bytes) -> None:
        if not data or self.full or self.stopped:
            return
        if self.passthrough:
            self._append(data)
            return
        # Decompressed in pieces of _PIECE bytes at fixed stream offsets: a
        # corrupt stream loses the output of one piece at most (zlib drops a
        # call's output on error), and the same body decodes to the same
        # bytes whatever its TCP segmentation.
        pend = self.pending
        pend += data
        if len(pend) < _PIECE:
            return
        n = len(pend) - len(pend) % _PIECE
        for pos in range(0, n, _PIECE):
            if self._piece(bytes(pend[pos:pos + _PIECE])):
                self.pending = bytearray()
                if self.passthrough:  # failed before any output: raw from here on
                    self._append(pend[pos + _PIECE:])
                return
        del pend[:n]

    def _piece(self, piece: bytes) -> bool:
        """Decode one piece; True when no more input is wanted."""
        self.consumed += len(piece)
        if not self.produced_any and len(self.head) < self.limit:
            self.head += piece[:self.limit - len(self.head)]
        self._push(piece, 0)
        return self.full or self.stopped or self.passthrough

    def _append(self, data: bytes) -> None:
        room = self.limit - len(self.out)
        if room > 0:
            self.out += data[:room]

    def _push(self, data: bytes, i: int) -> None:
        if i == len(self.decs):
            self.produced_any = True
            self.head = bytearray()
            self._append(data)
            return
        slot = self.decs[i]
        while data and not self.full:
            d = slot[0]
            if d is None:
                # RFC 9110 says zlib-wrapped; servers send raw deflate too.
                wbits = zlib.MAX_WBITS
                if len(data) >= 2 and not ((data[0] & 0x0F) == 8
                                           and ((data[0] << 8) | data[1]) % 31 == 0):
                    wbits = -zlib.MAX_WBITS
                d = slot[0] = zlib.decompressobj(wbits)
            if d.eof:
                return  # trailing bytes after the compressed stream: ignored
            try:
                chunk = d.decompress(data, 65536)
            except zlib.error:
                self._fail()
                return
            data = d.unconsumed_tail
            if chunk:
                self._push(chunk, i + 1)
            elif data:
                return  # no progress possible
        if i == 0 and self.full:
            # Input the first decoder really used (not what was fed): a bomb
            # fills the cap from its first few hundred bytes.
            used = self.consumed - len(data)
            if len(self.out) >= BOMB_RATIO * max(used, 1):
                if "decompression_bomb" not in self.anomalies:
                    self.anomalies.append("decompression_bomb")

    def _fail(self) -> None:
        self.anomalies.append("decompress_error")
        self.decs = []
        self.passthrough = True
        if not self.produced_any:
            # Nothing decoded at all: show detection the bytes as sent.
            head = bytes(self.head)
            self.head = bytearray()
            self._append(head)
        else:
            self.passthrough = False  # keep what decoded; drop the rest
            self.stopped = True

    def close(self) -> bytes:
        """Flush the decoders (bounded) and return the decoded body."""
        if self.pending and not (self.passthrough or self.full or self.stopped):
            pend = bytes(self.pending)
            self.pending = bytearray()
            self._piece(pend)  # on failure the head replay holds this piece too
        if not self.passthrough and not self.full and not self.stopped:
            for i, slot in enumerate(self.decs):
                d = slot[0]
                if d is None or d.unconsumed_tail:
                    break
                try:
                    rest = d.flush()
                except zlib.error:
                    self._fail()
                    break
                if rest:
                    self._push(rest, i + 1)
                if not d.eof and "truncated_compressed_body" not in self.anomalies:
                    self.anomalies.append("truncated_compressed_body")
        return bytes(self.out)


class HttpResponseParser(LineParser):
    """Responses of one server->client byte stream, fed incrementally.

    ``feed(data) -> list[HttpResponse]``: the responses that became ready
    (see the module docstring) in ``data``; the line reader is
    :class:`LineParser`'s.
    """

    def __init__(self, body_limit: int = BODY_LIMIT, max_line: int = MAX_LINE,
                 max_headers: int = MAX_HEADERS):
        # (A header block goes at once only up to max_line bytes, the
        # default: no line of it can be too long, so its raw bytes and
        # lines come out as line by line.)
        super().__init__(max_line, max_headers)
        self.body_limit = max(0, int(body_limit))
        self.responses = 0  # status lines seen
        self.junk_lines = 0  # lines skipped where a status line was expected
        self.unmatched = 0  # final responses with no expected request method
        self.anomalies: dict[str, int] = {}
        self.current: HttpResponse | None  # the response in progress
        self._methods: deque[bytes] = deque()
        self._dec: _BodyDecoder | None = None
        self._raw_len = 0  # bytes in current._raw

    # -- interface ---------------------------------------------------------

    def held(self) -> int:
        """About the memory the response in progress keeps (see
        LineParser.held): its header lines (parsed into pairs, and their
        raw bytes kept too), the body decoded so far, and each
        decompressor's window and state (zlib: 32 KB window, about 7 KB
        state)."""
        n = LineParser.held(self)
        resp = self.current
        if resp is not None and not resp.headers_complete:
            n += self._raw_len
        dec = self._dec
        if dec is not None:
            n += len(dec.out) + len(dec.head) + len(dec.pending) + DECODER_COST * len(dec.decs)
        return n

    def expect(self, method: bytes) -> None:
        """The next request on this connection has ``method`` (in order)."""
        if len(self._methods) >= MAX_PENDING_METHODS:
            self._methods.popleft()  # a client pipelining without answers: keep the newest
            self._count("pending_methods_dropped")
        self._methods.append(bytes(method).upper())

    def gap(self) -> list[HttpResponse]:
        """Bytes are missing: the response in progress is returned as is.

        Parsing resumes at the next line that is a status line.
        """
        if self._state != _TUNNEL:
            self._abandon()
        self._resync()
        return self._take_out()

    def finish(self) -> list[HttpResponse]:
        """End of the stream: a close-delimited body completes here.

        A response cut short is returned with ``complete`` False.
        """
        if self._parts:
            line = b"".join(self._parts)
            self._parts = None
            self._plen = 0
            if self._state in (_LINE, _HDR, _CSIZE, _TRAILER):
                self._line(line, self.offset, False)  # the last line, without its line end
        if self._state == _CLOSE:
            self._complete()
        elif self._state != _TUNNEL:
            self._abandon()
            self._state = _LINE
        return self._take_out()

    # -- internals -----------------------------------------------------------

    def _count(self, name: str, resp: HttpResponse | None = None) -> None:
        self.anomalies[name] = self.anomalies.get(name, 0) + 1
        if resp is not None:
            resp.anomalies.append(name)

    def _emit(self, resp: HttpResponse) -> None:
        if not resp._returned:
            resp._returned = True
            if self._out is None:
                self._out = [resp]
            else:
                self._out.append(resp)

    def _abandon(self) -> None:
        """The response in progress ends without completing."""
        resp = self.current
        if resp is not None:
            self._close_body(resp)
            self._emit(resp)
        self.current = None
        self._dec = None

    def _close_body(self, resp: HttpResponse) -> None:
        dec = self._dec
        if dec is not None:
            before = len(dec.anomalies)
            resp.body = dec.close()
            for name in dec.anomalies[before:]:
                self._count(name)
        self._dec = None

    def _complete(self) -> None:
        resp = self.current
        if resp is not None:
            resp.complete = True
            if not resp._returned:
                self._close_body(resp)
            self._emit(resp)
        self.current = None
        self._dec = None
        self._state = _LINE

    def _take_body(self, data: bytes, pos: int, take: int) -> None:
        resp = self.current
        if resp is None or take <= 0:
            return
        resp.body_length += take
        dec = self._dec
        if dec is None or resp._returned:
            return
        before = len(dec.anomalies)
        dec.write(data[pos:pos + take] if pos or take != len(data) else data)
        for name in dec.anomalies[before:]:
            self._count(name)
        if dec.full and self.body_limit > 0:
            # Ready for detection now; the rest of the body is skipped.
            resp.body_truncated = True
            resp.body = bytes(dec.out)
            self._emit(resp)

    def _line(self, raw: bytes, end: int, truncated: bool) -> None:
        line = raw.rstrip(b"\r\n")
        st = self._state
        if st == _LINE:
            self._status_line(line)
        elif st == _HDR:
            resp = self.current
            if resp is not None and resp._raw is not None:
                resp._raw.append(raw)
                self._raw_len += len(raw)
                if self._raw_len > MAX_RAW_HEADER:
                    resp._raw = None  # too big to keep; raw_header stays cut
                    self._count("raw_header_too_long", resp)
            self._header_line(line)
        elif st == _CSIZE:
            self._chunk_size(line, raw)
        elif st == _TRAILER:
            if not line.strip(b" \t"):
                self._complete()

    def _header_block(self, data: bytes, pos: int, end: int, stop: int) -> None:
        """Header lines data[pos:end] (LF-separated, none empty) and the
        empty line ending them (up to ``stop``), as ``_line`` would take them."""
        resp = self.current
        if resp is not None and resp._raw is not None:
            piece = data[pos:stop]
            resp._raw.append(piece)
            self._raw_len += len(piece)
            if self._raw_len > MAX_RAW_HEADER:
                resp._raw = None
                self._count("raw_header_too_long", resp)
        if end > pos:
            header_line = self._header_line
            for line in data[pos:end].split(b"\n"):
                if line[-1:] == b"\r":
                    line = line.rstrip(b"\r")
                header_line(line)
        self._end_headers()

    def _status_line(self, line: bytes) -> None:
        s = line.lstrip(b" \t")
        if not s:
            return  # empty lines between responses
        if s[:5].upper() != b"HTTP/":
            self.junk_lines += 1
            return
        fields = s.split(None, 2)
        protocol = fields[0]
        code = fields[1] if len(fields) > 1 else b""
        msg = fields[2].strip(b" \t") if len(fields) > 2 else b""
        resp = HttpResponse(line, protocol, code, msg)
        self.responses += 1
        if resp.status is None:
            self._count("invalid_status_code", resp)
        self.current = resp
        self.msg_held = len(line)
        self._fold_ok = False
        self._raw_len = 0
        self._state = _HDR

    def _end_headers(self) -> None:
        resp = self.current
        if resp is None:
            self._state = _LINE
            return
        resp.headers_complete = True
        if resp._raw is not None:
            resp.raw_header = b"".join(resp._raw)
        resp._raw = None
        cl = None
        cls = set()
        te = b""
        ce: list[bytes] = []
        for name, value in resp.headers:
            key = name.lower()
            if key == b"content-length":
                v = value.split(b",")[0].strip()
                if v.isdigit() and len(v) <= 18:
                    cls.add(int(v))
                    if cl is None:
                        cl = int(v)
                else:
                    self._count("invalid_content_length", resp)
            elif key == b"transfer-encoding":
                te = te + b"," + value.lower() if te else value.lower()
            elif key == b"content-encoding":
                ce.extend(c.strip(b" \t").lower() for c in value.split(b","))
        if len(cls) > 1:
            self._count("multiple_content_length", resp)
        resp.content_length = cl
        codings = [c for c in ce if c and c != b"identity"]
        if codings:
            resp.content_encoding = b", ".join(codings)

        status = resp.status
        if resp.interim:
            self._complete()  # the request is still waiting for its answer
            return
        if self._methods:
            method = self._methods.popleft()
        else:
            method = b"GET"
            self.unmatched += 1
        resp.method = method
        if status == 101 or (method == b"CONNECT" and status is not None
                             and 200 <= status < 300):
            resp.tunnel = True
            self._complete()
            self._state = _TUNNEL
            return
        if method == b"HEAD" or status in (204, 304):
            self._complete()
            return
        if self.body_limit or codings:
            self._dec = _BodyDecoder(codings, self.body_limit, [])
            for name in self._dec.anomalies:
                self._count(name, resp)
            self._dec.anomalies = resp.anomalies  # later ones go on the response directly
        # else (body_limit 0, a plain body): framed only, nothing to decode or keep
        if b"chunked" in te:
            resp.chunked = True
            if cl is not None:
                self._count("chunked_with_content_length", resp)
            self._state = _CSIZE
        elif cl is not None:
            if cl == 0:
                self._complete()
            else:
                self._remaining = cl
                self._state = _BODY
        else:
            self._state = _CLOSE

    def _chunk_size(self, line: bytes, raw: bytes) -> None:
        s = line.split(b";", 1)[0].strip(b" \t")
        if not s:
            return  # the CRLF after a chunk's data (or a stray empty line)
        ok = len(s) <= 16 and all(c in b"0123456789abcdefABCDEF" for c in s)
        if not ok:
            # libhtp: an invalid chunk length on a response turns the rest of
            # the stream into body, shown as received.
            resp = self.current
            if resp is not None:
                self._count("invalid_chunk_size", resp)
            self._state = _CLOSE
            self._take_body(raw, 0, len(raw))
            return
        size = int(s, 16)
        if size == 0:
            self._state = _TRAILER
        else:
            self._remaining = size
            self._state = _CDATA
