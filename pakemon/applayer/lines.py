"""The incremental line reader shared by the HTTP/1.x request and response parsers.

:class:`LineParser` is the base of ``pakemon.detect.http.HttpRequestParser``
and ``pakemon.applayer.http_response.HttpResponseParser``. Both read a
message the same way: a start line, header lines up to an empty line, then
a body framed by length, by chunks (size lines, data, trailer lines), by
the end of the stream, or a tunnel. ``feed()`` here owns what is the same
in both, which is also the per-segment hot path:

* finding line ends with ``bytes.find`` from an offset into each chunk,
  keeping a partial line as a list of pieces (joined once, so many small
  segments cost linear time);
* bounding memory: a line is kept up to ``max_line`` bytes before its LF;
  a longer one is cut there, counted in ``long_lines``, and the rest is
  skipped up to the next LF (state ``SKIP``, which then resumes where the
  cut line left the parser, unless that is a body read to the end of the
  stream or a tunnel) without being stored. A complete line and one cut
  while still partial are measured the same way (every byte before the
  LF, a CR included), so where TCP split a long line does not change
  which lines are cut, how, or where parsing resumes;
* a header block wholly inside one chunk (nearly every message) found with
  one regex search and handed over at once instead of line by line;
* body bytes of known length (``BODY``, chunk data ``CDATA``) and to the end
  of the stream (``CLOSE``) passed over without looking for lines.

Header lines are read the same way too (``_header_line``): ``name: value``
pairs appended to ``current.headers`` (the message in progress), obs-fold
lines continuing the last kept header, lines without a colon or past
``max_headers`` counted in ``bad_headers``, an empty line ending the
headers. What the rest means stays in the subclass, in these hooks:

* ``_line(raw, end, truncated)``: one line in a line state. ``raw`` is the
  line as received, its LF included when it had one (a cut line gets a
  synthetic LF, as if the line ended at the cut, except one cut while
  still partial: the rest of it has not arrived); ``end`` the stream
  offset just past it (past the cut for a partial line); ``truncated``
  whether it was cut;
* ``_header_block(data, pos, end, stop)``: header lines ``data[pos:end]``
  (LF-separated, none empty; ``end == pos`` for none) and the empty line
  ending them up to ``stop``, which ends the headers. Used only for a
  block of at most ``_block_max`` bytes: the response parser keeps raw
  header bytes that must come out as the line path would give them, so it
  takes no block with a line that could be too long; the request parser
  cuts long lines in the block itself;
* ``_end_headers()`` (after the empty line), ``_take_body(data, pos,
  take)`` and ``_complete()`` (the length-framed body is done).

State numbers are shared (``EXTRA`` and up are a subclass's own line
states). Events are collected in ``_out`` (None while empty, so a feed
that completes nothing allocates no list) and returned by ``feed()``.
"""

from __future__ import annotations

import re

# A header block: an empty line right where it starts (no headers), or the
# first LF, CRs, LF after it.
_EMPTY_LINE = re.compile(rb"\r*\n")
_HEADERS_END = re.compile(rb"\n\r*\n")

HELD_FACTOR = 3  # memory per byte of unfinished header lines (held())

# States. Line states (start line, headers, chunk size line, trailer lines,
# and a subclass's own from EXTRA on) are below SKIP (skip to the next LF,
# then _resume); the states that read no lines are above it (length-framed
# body, chunk data, body to the end of the stream, tunnel: nothing more is
# parsed), so one comparison tells the two kinds apart in the loop.
LINE, HDR, CSIZE, TRAILER = range(4)
EXTRA = 4  # up to SKIP - 1
SKIP = 10
BODY, CDATA, CLOSE, TUNNEL = range(11, 15)


class LineParser:
    """Line assembly and framing loop of one HTTP byte stream (see module doc)."""

    __slots__ = ("max_line", "max_headers", "offset", "long_lines", "bad_headers", "current",
                 "_state", "_resume", "_parts", "_plen", "_remaining", "_fold_ok", "_block_max",
                 "_out", "msg_held")

    def __init__(self, max_line: int, max_headers: int, block_max: int | None = None):
        self.max_line = max(int(max_line), 64)
        if block_max is None:
            block_max = self.max_line
        self.max_headers = max_headers
        self.offset = 0  # bytes fed so far
        self.long_lines = 0  # lines cut at max_line
        self.bad_headers = 0  # header lines without a colon, or past max_headers
        self.current = None  # the message in progress (a subclass's type)
        self._fold_ok = False  # the last header line was kept: a fold continues it
        self._state = LINE
        self._resume = LINE  # where SKIP goes at the next LF
        self._parts: list[bytes] | None = None  # the partial line
        self._plen = 0
        self._remaining = 0  # body bytes (Content-Length or chunk) still to come
        self._block_max = block_max  # longest header block taken at once (module doc)
        self._out: list | None = None
        # bytes of the message in progress kept as lines (start line and
        # header lines; held()), set by the subclass when a message starts
        self.msg_held = 0

    def feed(self, data) -> list:
        """Messages (the subclass's events) that ``data`` made ready."""
        if not isinstance(data, bytes):
            data = bytes(data)
        n = len(data)
        base = self.offset
        self.offset = base + n
        pos = 0
        find = data.find
        max_line = self.max_line
        # The header block's end found in this chunk: (start, end), or
        # False when the rest of the chunk has none. Searched once per chunk:
        # searched again at each line, a chunk of 365 four-byte header lines
        # (folds, or "a: b") was read about 180 times.
        hend = None
        while pos < n:
            st = self._state
            if st > SKIP:  # no lines here
                if st == CLOSE:
                    self._take_body(data, pos, n - pos)
                    break
                if st == TUNNEL:
                    break
                take = self._remaining  # BODY or CDATA
                if take > n - pos:
                    take = n - pos
                self._take_body(data, pos, take)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    if st == BODY:
                        self._complete()
                    else:
                        self._state = CSIZE
                continue
            if st == HDR and not self._parts:
                # The whole header block in this chunk (the common case): one
                # search and a split instead of a pass per line.
                m = _EMPTY_LINE.match(data, pos)
                if m is not None:  # no (more) header lines
                    self._header_block(data, pos, pos, m.end())
                    pos = m.end()
                    continue
                if hend is None or (hend and hend[0] < pos):
                    m = _HEADERS_END.search(data, pos)
                    hend = (m.start(), m.end()) if m is not None else False
                if hend and hend[1] - pos <= self._block_max:
                    self._header_block(data, pos, hend[0], hend[1])
                    pos = hend[1]
                    hend = None
                    continue
            j = find(b"\n", pos)
            if st == SKIP:
                if j < 0:
                    break
                pos = j + 1
                self._state = self._resume
                continue
            if j < 0:
                rest = n - pos
                if self._plen + rest > max_line:
                    # Cut now rather than buffer a line that is already too long.
                    raw = (b"".join(self._parts or ()) + data[pos:pos + max_line])[:max_line]
                    self._parts = None
                    self._plen = 0
                    self.long_lines += 1
                    self._line(raw, base + n, True)
                    st = self._state
                    if st != TUNNEL and st != CLOSE:  # (those take the rest as is)
                        self._resume = st
                        self._state = SKIP
                    break
                if self._parts is None:
                    self._parts = [data[pos:]]
                else:
                    self._parts.append(data[pos:])
                self._plen += rest
                break
            if self._parts:
                raw = b"".join(self._parts) + data[pos:j + 1]
                self._parts = None
                self._plen = 0
            else:
                raw = data[pos:j + 1]
            pos = j + 1
            if len(raw) > max_line + 1:  # more than max_line bytes before the LF
                self.long_lines += 1
                self._line(raw[:max_line] + b"\n", base + pos, True)
            else:
                self._line(raw, base + pos, False)
        return self._take_out()

    def held(self) -> int:
        """About the memory the message in progress keeps, in bytes (object
        overhead included): what the stream stage charges for this parser
        (``TcpReassembler.charge_app``). A subclass adds its body."""
        n = self._plen
        msg = self.current
        if msg is not None and not msg.headers_complete:
            # header lines are kept as (name, value) pairs: two bytes objects
            # and a tuple each, about three times the line (tracemalloc);
            # what a cut line skipped is not kept, and not counted
            n += HELD_FACTOR * self.msg_held
        return n

    def unfinished(self, headers: bool = True) -> int:
        """Bytes of the message in progress still unparsed as a whole: the
        partial start line, and (``headers``) the start and header lines
        kept while the headers are not complete; 0 between messages or in
        a body. What a reader must be shown again to parse that message
        from its start (the stream stage keeps them when it evicts a
        session: TcpReassembler.resume_need)."""
        st = self._state
        if st == LINE:
            return self._plen
        if st == HDR and headers:
            return self.msg_held + self._plen
        return 0

    def _take_out(self) -> list:
        out = self._out
        if out is None:
            return []
        self._out = None
        return out

    def _resync(self) -> None:
        """Bytes are missing: drop the partial line and body count, then skip
        to the next line end and expect a start line (a tunnel stays one)."""
        self._parts = None
        self._plen = 0
        self._remaining = 0
        if self._state != TUNNEL:
            self._state = SKIP
            self._resume = LINE

    def _header_line(self, line: bytes) -> None:
        """One header line, its line end removed."""
        msg = self.current
        if not line:
            self._end_headers()
            return
        if msg is None:
            return
        if line[0] in b" \t":  # obs-fold (or a blank line of spaces): continues the last
            if self._fold_ok and msg.headers:
                cont = line.strip(b" \t")
                if cont:
                    name, value = msg.headers[-1]
                    msg.headers[-1] = (name, value + b" " + cont if value else cont)
                    self.msg_held += len(cont) + 1
            else:
                self.bad_headers += 1
            return
        i = line.find(b":")
        if i <= 0 or len(msg.headers) >= self.max_headers:
            self.bad_headers += 1
            self._fold_ok = False  # a fold after it continues nothing
            return
        msg.headers.append((line[:i].strip(b" \t"), line[i + 1:].strip(b" \t")))
        self.msg_held += len(line)
        self._fold_ok = True

    # -- hooks (see the module docstring) -----------------------------------

    def _line(self, raw: bytes, end: int, truncated: bool) -> None:
        raise NotImplementedError

    def _header_block(self, data: bytes, pos: int, end: int, stop: int) -> None:
        raise NotImplementedError

    def _end_headers(self) -> None:
        raise NotImplementedError

    def _take_body(self, data: bytes, pos: int, take: int) -> None:
        raise NotImplementedError

    def _complete(self) -> None:
        raise NotImplementedError
