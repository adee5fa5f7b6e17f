"""Sans-I/O incremental HTTP/1.x request parser for one client->server stream.

``HttpRequestParser().feed(chunk) -> list[HttpRequest]`` takes the
reassembled bytes of one TCP direction in any chunking (1-byte segments
included) and returns each request once, as soon as its request line is
complete: an alert on the URI must not wait for headers or a body. The same
object is filled in afterwards (headers, body, ``headers_complete``,
``complete``) as later chunks arrive (``body`` when complete);
``parser.current`` is the request still in progress. ``gap()`` tells it
bytes are missing.

Lenient the way servers are, since what matters is what the server will
act on: LF-only line ends, runs of spaces or tabs between request-line
fields, leading white space and empty lines before a request, HTTP/0.9
``GET /path``, obs-fold header continuation lines, header lines without a
colon (skipped), whitespace around chunk sizes and chunk extensions.
Pipelined and keep-alive requests follow one another; bodies are framed by
Transfer-Encoding: chunked (which wins over Content-Length, RFC 9112 6.3) or
Content-Length (the first valid one), and skipped without being buffered
(the first ``body_cap`` bytes are kept, 0 keeps none). A request without
either has no body (RFC 9112 6.3: a request body is never read to the end
of the connection). CONNECT turns the rest of the stream into a tunnel,
not parsed.

Memory is bounded: a line is kept up to ``max_line`` bytes (longer lines
are truncated, counted in ``long_lines``, and the rest is skipped up to the
next LF without being stored: the line reader,
:class:`pakemon.applayer.lines.LineParser`, shared with the response
parser); at most ``max_headers`` headers are kept
per request (Apache answers 400 past 100; with ``keep_headers=False`` a
Content-Length past that cap may still frame a body). A line that does
not look like a request line (a method token
followed by a target, and an HTTP/ version unless it is an HTTP/0.9 GET) is
skipped and counted in ``junk_lines``; after a gap in the stream the
parser skips to the next line end and looks for a request line again.

Why not h11 (measured, then not added as a dependency): on this machine
(Python 3.11, h11 0.16), 20,000 pipelined typical GET requests (a 70-byte
request line and 4 headers) fed as 1460-byte segments cost this parser
3.2 us a request (2.2 us with keep_headers=False, as the detect stage
runs it) and h11 28 us (h11 also needs a response sent before it
reads the next request, which a passive sensor has to fake). And h11
rejects what servers accept and evasions use: runs of spaces or tabs in the
request line, a space before a header's colon, bare high bytes in the
target, empty lines before a request all raise RemoteProtocolError (and end
the connection's parsing), and an HTTP/0.9 ``GET /x`` waits forever.
"""

from __future__ import annotations

import re
import sys

from ..applayer.lines import (BODY as _BODY, CDATA as _CDATA, CSIZE as _CSIZE, EXTRA,
                              HDR as _HDR, LINE as _LINE, TRAILER as _TRAILER,
                              TUNNEL as _TUNNEL, LineParser)

MAX_LINE = 16 * 1024  # IIS's request line limit; Apache's is 8190
MAX_HEADERS = 100  # Apache's LimitRequestFields
BODY_CAP = 64 * 1024

_METHOD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z\-]+\Z")
_ENDS_WITH_EMPTY_LINE = re.compile(rb"\n\r*\n\Z")

# A request line without a protocol seen: HTTP/0.9, unless header lines
# follow (the other states are the line reader's, pakemon.applayer.lines).
_P09 = EXTRA
# A header line: a token, then a colon (what makes a version-less request
# line an HTTP/1.x request missing its protocol rather than HTTP/0.9).
_HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z\-]+[ \t]*:")
# The protocol token at the end of a request line.
_PROTOCOL = re.compile(rb"HTTP/", re.I)


class HttpRequest:
    """One request as parsed so far.

    ``target`` is the raw request target; ``request_line`` the raw line
    without its line end; ``line_end`` the stream offset just past the
    request line's LF (counted over the bytes fed to the parser).
    ``headers`` is a list of (name, value) pairs as sent (folded lines
    joined with a space); ``host``, ``user_agent`` and ``cookie`` are set
    when the headers are complete (cookies of several Cookie headers joined
    with ``; ``). ``body`` holds at most the parser's ``body_cap`` first
    bytes; ``body_length`` counts all of it. ``tx`` is its place among the
    stream's requests, from 0 (EVE's tx_id).
    """

    __slots__ = ("method", "target", "version", "headers", "host", "user_agent", "cookie",
                 "body", "body_length", "request_line", "line_end", "truncated",
                 "content_length", "chunked", "headers_complete", "complete", "tx")

    def __init__(self, method: bytes, target: bytes, version: bytes, request_line: bytes,
                 line_end: int, truncated: bool = False):
        self.method = method
        self.target = target
        self.version = version  # b"" for HTTP/0.9
        self.request_line = request_line
        self.line_end = line_end
        self.truncated = truncated  # the request line was longer than max_line
        self.headers: list[tuple[bytes, bytes]] = []
        self.host: bytes | None = None
        self.user_agent: bytes | None = None
        self.cookie: bytes | None = None
        self.body = b""
        self.body_length = 0
        self.content_length: int | None = None
        self.chunked = False
        self.headers_complete = False
        self.complete = False
        self.tx = 0

    def __repr__(self) -> str:
        return (f"HttpRequest({self.method!r}, {self.target!r}, {self.version!r}, "
                f"headers={len(self.headers)}, complete={self.complete})")


class HttpRequestParser(LineParser):
    """Requests of one client->server byte stream, fed incrementally.

    ``feed(data) -> list[HttpRequest]``: the requests whose request line
    completed in ``data`` (the line reader is :class:`LineParser`'s).
    """

    __slots__ = ("body_cap", "keep_headers", "requests", "junk_lines", "skipped",
                 "anomaly_noticed", "_body")

    def __init__(self, max_line: int = MAX_LINE, max_headers: int = MAX_HEADERS,
                 body_cap: int = BODY_CAP, keep_headers: bool = True):
        # Any header block is taken at once: _header_block cuts its long lines.
        super().__init__(max_line, max_headers, sys.maxsize)
        self.body_cap = body_cap
        # False: headers are read only for the body's framing (Content-Length,
        # Transfer-Encoding); a request without those keeps no headers (and
        # no host, user_agent, cookie). The detect stage needs no more.
        self.keep_headers = keep_headers
        self.requests = 0  # request lines seen
        self.junk_lines = 0  # lines skipped where a request line was expected
        self.skipped = 0  # bytes passed over by skip_plain (their requests not counted)
        self.current: HttpRequest | None  # the request in progress
        # Free for the consumer: the detect stage sets it once it has
        # reported an encoding anomaly on this stream (one per direction).
        self.anomaly_noticed = False
        self._body: bytearray | None = None

    def held(self) -> int:
        """LineParser.held, and the body kept so far."""
        n = LineParser.held(self)
        if self._body is not None:
            n += len(self._body)
        return n

    def skip_plain(self, data: bytes, interesting) -> bool:
        """Pass over ``data`` when it cannot matter to the caller; True if so.

        That is when the parser is between requests, ``data`` ends with an
        empty line, has no Content-Length, Transfer-Encoding or CONNECT
        (so every request in it is whole and body-less, and the parser ends
        between requests again), and the compiled regex ``interesting``
        finds nothing in it (the caller's test that no request target in it
        is worth a look). The bytes are counted (``offset``, ``skipped``),
        the requests are not returned. The detect stage's fast path for
        ordinary GETs: one lower() and three searches instead of a parse.
        """
        if (self._state != _LINE or self._parts or interesting.search(data) is not None
                or _ENDS_WITH_EMPTY_LINE.search(data) is None):
            return False
        low = data.lower()
        if b"content-length" in low or b"transfer-encoding" in low or b"connect" in low:
            return False
        n = len(data)
        self.offset += n
        self.skipped += n
        return True

    def gap(self) -> None:
        """Bytes are missing: drop the partial request, resync on a request line."""
        self._body = None
        self.current = None
        self._resync()

    # -- internals -------------------------------------------------------

    def _take_body(self, data: bytes, pos: int, take: int) -> None:
        req = self.current
        if req is None:
            return
        req.body_length += take
        body = self._body
        if body is not None and len(body) < self.body_cap:
            body += data[pos:pos + min(take, self.body_cap - len(body))]

    def _complete(self) -> None:
        req = self.current
        if req is not None:
            req.complete = True
            if self._body is not None:
                req.body = bytes(self._body)
        self._body = None
        self.current = None
        self._state = _LINE

    def _line(self, raw: bytes, end: int, truncated: bool) -> None:
        line = raw.rstrip(b"\r\n")
        st = self._state
        if st == _P09:
            if _HEADER_LINE.match(line) is not None:
                self._body = bytearray() if self.body_cap > 0 else None
                self._fold_ok = False
                self._state = _HDR
                self._header_line(line)
                return
            req = self.current
            req.headers_complete = req.complete = True  # HTTP/0.9 after all
            self.current = None
            self._state = st = _LINE
            if not line.strip(b" \t"):
                return  # the empty line that ended it
        if st == _LINE:
            self._request_line(line, end, truncated)
        elif st == _HDR:
            if self.keep_headers or not line:
                self._header_line(line)
            elif line[:1] in b" \t":
                if self._fold_ok:  # continues a framing header that was kept
                    self._header_line(line)
            else:
                # As _header_block: without keep_headers only the framing
                # headers are kept, or a slowloris's header lines would be
                # held line by line where the block path keeps none.
                low = line.lower()
                if b"content-length" in low or b"transfer-encoding" in low:
                    self._header_line(line)
                else:
                    self._fold_ok = False
        elif st == _CSIZE:
            self._chunk_size(line, end, truncated)
        elif st == _TRAILER:
            if not line.strip(b" \t"):
                self._complete()

    def _request_line(self, line: bytes, end: int, truncated: bool) -> None:
        fields = line.split()
        if not fields:
            return  # empty lines before a request are allowed (RFC 9112 2.2)
        method = fields[0]
        if len(fields) < 2 or _METHOD.match(method) is None:
            self.junk_lines += 1
            return
        version = b""
        target = fields[1]
        if len(fields) >= 3:
            version = fields[-1]
            if len(fields) > 3 and _PROTOCOL.match(version):
                # "GET /a b HTTP/1.1": libhtp keeps everything between the
                # method and the protocol as the target, spaces included
                start = line.index(target, line.index(method) + len(method))
                target = line[start:line.rindex(version)].rstrip(b" \t")
        elif method != b"GET" and not truncated:
            self.junk_lines += 1  # HTTP/0.9 had GET only
            return
        req = HttpRequest(method, target, version, line, end, truncated)
        req.tx = self.requests
        self.msg_held = len(line)
        self.requests += 1
        if self._out is None:
            self._out = [req]
        else:
            self._out.append(req)
        self.current = req
        if not version and not truncated:
            # HTTP/0.9 (no headers, no body) unless header lines follow: then,
            # as libhtp, a request that lost its protocol token (_P09).
            self._state = _P09
            return
        self._body = bytearray() if self.body_cap > 0 else None
        self._fold_ok = False
        self._state = _HDR

    def _header_block(self, data: bytes, pos: int, end: int, stop: int) -> None:
        """Header lines data[pos:end] (LF-separated, none empty; long ones are
        cut here as on the line path), then the end of the headers."""
        if end > pos:
            block = data[pos:end]
            keep = self.keep_headers
            if not keep:
                # only framing headers matter, or a fold continuing a kept header
                low = block.lower()
                keep = (b"content-length" in low or b"transfer-encoding" in low
                        or (block[:1] in b" \t" and self._fold_ok))
            if keep:
                header_line = self._header_line
                max_line = self.max_line
                for line in block.split(b"\n"):
                    if line[-1:] == b"\r":
                        line = line.rstrip(b"\r")
                    if len(line) > max_line:
                        line = line[:max_line]
                        self.long_lines += 1
                    header_line(line)
        self._end_headers()

    def _end_headers(self) -> None:
        req = self.current
        if req is None:
            self._state = _LINE
            return
        req.headers_complete = True
        cl = None
        te = b""
        cookies = []
        for name, value in req.headers:
            key = name.lower()
            if key == b"host":
                if req.host is None:
                    req.host = value
            elif key == b"user-agent":
                if req.user_agent is None:
                    req.user_agent = value
            elif key == b"cookie":
                cookies.append(value)
            elif key == b"content-length":
                if cl is None:
                    v = value.split(b",")[0].strip()
                    if v.isdigit() and len(v) <= 18:
                        cl = int(v)
            elif key == b"transfer-encoding":
                te = value.lower()
        if cookies:
            req.cookie = b"; ".join(cookies)
        req.content_length = cl
        if len(req.method) == 7 and req.method.upper() == b"CONNECT":
            self._complete()
            self._state = _TUNNEL
        elif b"chunked" in te:
            req.chunked = True
            self._state = _CSIZE
        elif cl:
            self._remaining = cl
            self._state = _BODY
        else:
            self._complete()

    def _chunk_size(self, line: bytes, end: int, truncated: bool) -> None:
        s = line.split(b";", 1)[0].strip(b" \t")
        if not s:
            return  # the CRLF after a chunk's data (or a stray empty line)
        try:
            size = int(s, 16) if len(s) <= 16 else -1
        except ValueError:
            size = -1
        if size < 0 or s[:1] in b"+-" or s[:2].lower() == b"0x" or b"_" in s:
            # Not a chunk size: the server gives up on this request; look
            # for the next one in this very line.
            self._complete()
            self._request_line(line, end, truncated)
            return
        if size == 0:
            self._state = _TRAILER
        else:
            self._remaining = size
            self._state = _CDATA
