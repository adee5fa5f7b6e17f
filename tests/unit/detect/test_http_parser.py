"""The incremental HTTP/1.x request parser (pakemon.detect.http)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pakemon.detect.http import MAX_LINE, HttpRequestParser


def feed_all(data: bytes, size: int | None = None, **kw):
    p = HttpRequestParser(**kw)
    out = []
    step = size or max(len(data), 1)
    for i in range(0, len(data), step):
        out += p.feed(data[i:i + step])
    return p, out


def triples(reqs):
    return [(r.method, r.target, r.version) for r in reqs]


def test_simple_request_and_fields():
    data = (b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\nHost: www.example.com\r\n"
            b"User-Agent: Mozilla/4.0\r\nCookie: a=1\r\nAccept: */*\r\ncookie: b=2\r\n\r\n")
    p, reqs = feed_all(data)
    assert len(reqs) == 1
    r = reqs[0]
    assert (r.method, r.target, r.version) == (b"GET", b"/cgi-bin/phf?Qalias=x", b"HTTP/1.0")
    assert r.request_line == b"GET /cgi-bin/phf?Qalias=x HTTP/1.0"
    assert r.line_end == len(b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n")
    assert r.host == b"www.example.com"
    assert r.user_agent == b"Mozilla/4.0"
    assert r.cookie == b"a=1; b=2"
    assert r.headers[0] == (b"Host", b"www.example.com")
    assert len(r.headers) == 5
    assert r.headers_complete and r.complete
    assert p.current is None and p.requests == 1


def test_request_is_returned_as_soon_as_its_request_line_is_complete():
    p = HttpRequestParser()
    assert p.feed(b"GET /cgi-bin/p") == []
    reqs = p.feed(b"hf HTTP/1.1\r\nHost: a")
    assert triples(reqs) == [(b"GET", b"/cgi-bin/phf", b"HTTP/1.1")]
    r = reqs[0]
    assert not r.headers_complete and not r.complete and p.current is r
    assert p.feed(b"\r\n\r\n") == []  # returned once only
    assert r.complete and r.host == b"a"


def test_one_byte_at_a_time_and_every_split():
    data = (b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n"
            b"GET /c\r\n")
    expected = [(b"POST", b"/a", b"HTTP/1.1"), (b"GET", b"/b", b"HTTP/1.1"), (b"GET", b"/c", b"")]
    for size in (1, 2, 3, 7, 1000):
        p, reqs = feed_all(data, size)
        assert triples(reqs) == expected, size
        assert reqs[0].body == b"hello"
    for cut in range(len(data)):
        p = HttpRequestParser()
        assert triples(p.feed(data[:cut]) + p.feed(data[cut:])) == expected


def test_pipelined_keep_alive_requests():
    data = b"".join(b"GET /r%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(5))
    p, reqs = feed_all(data)
    assert [r.target for r in reqs] == [b"/r%d" % i for i in range(5)]
    assert all(r.complete for r in reqs)
    # line_end is each request line's end in the stream
    for r in reqs:
        assert data[:r.line_end].endswith(r.request_line + b"\r\n")


def test_content_length_body_is_skipped_and_capped():
    body = b"GET /hidden HTTP/1.0\r\n\r\n" + b"x" * 100_000
    data = (b"POST /upload HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            + b"GET /next HTTP/1.1\r\n\r\n")
    p, reqs = feed_all(data, 1460)
    # the request inside the body is body, as the server reads it
    assert [r.target for r in reqs] == [b"/upload", b"/next"]
    assert reqs[0].body_length == len(body)
    assert reqs[0].body == body[:64 * 1024]
    assert reqs[0].content_length == len(body)
    p, reqs = feed_all(data, 1460, body_cap=0)
    assert reqs[0].body == b"" and reqs[0].body_length == len(body)


def test_chunked_body():
    data = (b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            b"5;ext=1\r\nhello\r\n 6 \r\n world\r\n0\r\nTrailer: x\r\n\r\n"
            b"GET /after HTTP/1.1\r\n\r\n")
    for size in (1, 5, 1000):
        p, reqs = feed_all(data, size)
        assert [r.target for r in reqs] == [b"/c", b"/after"]
        assert reqs[0].chunked and reqs[0].body == b"hello world" and reqs[0].complete


def test_chunked_lf_only_and_bad_chunk_size_resyncs():
    data = (b"POST /c HTTP/1.1\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"
            b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nGET /e HTTP/1.1\r\n\r\n")
    p, reqs = feed_all(data)
    assert [r.target for r in reqs] == [b"/c", b"/d", b"/e"]
    assert reqs[0].body == b"abc"
    assert reqs[1].complete  # given up on at the bad chunk size


def test_header_folding():
    data = b"GET / HTTP/1.1\r\nUser-Agent: Mozilla\r\n  (compatible)\r\n\tsioux\r\nHost: h\r\n\r\n"
    p, reqs = feed_all(data)
    assert reqs[0].user_agent == b"Mozilla (compatible) sioux"
    assert reqs[0].host == b"h"


def test_lenient_forms_servers_accept():
    data = (b"\r\n\r\n  GET   /a   HTTP/1.0\r\n\r\n"  # empty lines, runs of spaces
            b"GET\t/b\tHTTP/1.1\nHost : x\nno colon here\n\n"  # tabs, LF only, space before colon
            b"GET /c\n"  # HTTP/0.9
            b"get /d HTTP/1.1\r\r\n\r\n")  # any method token, CR CR LF
    p, reqs = feed_all(data)
    assert triples(reqs) == [(b"GET", b"/a", b"HTTP/1.0"), (b"GET", b"/b", b"HTTP/1.1"),
                             (b"GET", b"/c", b""), (b"get", b"/d", b"HTTP/1.1")]
    assert reqs[1].host == b"x"
    assert p.bad_headers == 1
    assert reqs[2].complete


def test_junk_lines_are_skipped():
    data = b"\x16\x03\x01garbage\r\nhello\r\nPOST /x\r\nGET /real HTTP/1.0\r\n\r\n"
    p, reqs = feed_all(data)
    assert [r.target for r in reqs] == [b"/real"]
    assert p.junk_lines == 3


def test_long_lines_are_cut_and_never_buffered_whole():
    target = b"/" + b"A" * (MAX_LINE * 4)
    data = b"GET " + target + b" HTTP/1.0\r\nHost: h\r\n\r\nGET /next HTTP/1.0\r\n\r\n"
    for size in (1000, len(data)):
        p, reqs = feed_all(data, size)
        assert [len(r.request_line) for r in reqs] == [MAX_LINE, len(b"GET /next HTTP/1.0")]
        assert reqs[0].truncated and reqs[0].target == target[:MAX_LINE - 4]
        assert reqs[1].target == b"/next"
        assert p.long_lines == 1
    # an endless line: memory stays bounded
    p = HttpRequestParser()
    p.feed(b"GET /")
    for _ in range(200):
        p.feed(b"B" * 1000)
        assert p._plen <= MAX_LINE
    assert p.long_lines == 1


def test_header_count_is_capped():
    data = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(500)) + b"\r\n"
    p, reqs = feed_all(data)
    assert len(reqs[0].headers) == 100
    assert p.bad_headers == 400


def test_connect_makes_a_tunnel():
    data = b"CONNECT host:443 HTTP/1.1\r\nHost: host\r\n\r\n\x16\x03\x01GET /x HTTP/1.1\r\n\r\n"
    p, reqs = feed_all(data)
    assert [r.target for r in reqs] == [b"host:443"]


def test_gap_resyncs_on_the_next_request_line():
    p = HttpRequestParser()
    assert len(p.feed(b"POST /a HTTP/1.1\r\nContent-Length: 100000\r\n\r\nxxxx")) == 1
    p.gap()
    assert p.current is None
    reqs = p.feed(b"yyy\r\nmore body\r\nGET /b HTTP/1.1\r\n\r\n")
    assert [r.target for r in reqs] == [b"/b"]


def test_offsets_count_all_bytes_fed():
    p = HttpRequestParser()
    p.feed(b"xx\r\n")
    reqs = p.feed(b"GET / HTTP/1.0\r\n")
    assert reqs[0].line_end == 4 + 16
    assert p.offset == 20


_parts = st.lists(st.sampled_from([
    b"GET ", b"POST ", b"/a", b"%2f", b" HTTP/1.1", b"\r\n", b"\n", b"\r", b" ", b"\t",
    b"Content-Length: 3", b"Content-Length: -1", b"Content-Length: 99999999999999999999",
    b"Transfer-Encoding: chunked", b"0", b"5", b"ffffffffffffffffff", b"zz", b";x",
    b"\x00", b"\xff", b":", b"CONNECT x HTTP/1.1", b"HTTP/1.0", b"abc"]), max_size=60).map(b"".join)


@settings(max_examples=800, deadline=None)
@given(st.one_of(st.binary(max_size=3000), _parts), st.integers(1, 64),
       st.integers(64, 512), st.booleans())
def test_random_input_never_raises(data, size, max_line, gap):
    p = HttpRequestParser(max_line=max_line, body_cap=16)
    n = 0
    for i in range(0, len(data), size):
        for r in p.feed(data[i:i + size]):
            n += 1
            assert isinstance(r.target, bytes) and isinstance(r.method, bytes)
            assert len(r.request_line) <= max_line
            assert r.line_end <= p.offset
        if gap and i % 3 == 0:
            p.gap()
        assert p._plen <= max_line
    assert p.offset == len(data)
    assert n == p.requests


def summary(reqs):
    return [(r.method, r.target, r.version, r.truncated, r.complete, r.body, r.body_length,
             r.chunked, r.content_length) for r in reqs]


_header = st.sampled_from([
    b"Host: h", b"Content-Length: 3", b"Content-Length: 0", b"content-length:12",
    b"Content-Length: x", b"Transfer-Encoding: chunked", b"TRANSFER-ENCODING: gzip, chunked",
    b"  folded", b"\tmore", b"   ", b"no colon", b"X-Long: " + b"L" * 80, b": empty name"])
_request = st.builds(
    lambda line, headers, eol, body: line + eol + b"".join(h + eol for h in headers) + eol + body,
    st.sampled_from([b"GET /a HTTP/1.1", b"POST /b HTTP/1.0", b"GET /c", b"junk",
                     b"CONNECT x:1 HTTP/1.1", b"GET /" + b"D" * 70 + b" HTTP/1.1", b""]),
    st.lists(_header, max_size=5), st.sampled_from([b"\r\n", b"\n", b"\r\r\n"]),
    st.sampled_from([b"", b"abc", b"3\r\nabc\r\n0\r\n\r\n", b"5\nhello\n0\n\n", b"zz\r\n",
                     b"ffff;x\r\n" + b"y" * 30]))
_stream = st.lists(_request, max_size=6).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(_stream, _parts), st.integers(1, 40))
def test_chunking_and_keep_headers_do_not_change_the_parse(data, size):
    _, whole = feed_all(data, max_line=64, body_cap=8)
    _, split = feed_all(data, size, max_line=64, body_cap=8)
    _, lean = feed_all(data, size, max_line=64, body_cap=8, keep_headers=False)
    assert summary(split) == summary(whole)
    assert summary(lean) == summary(whole)
    assert [r.headers for r in split] == [r.headers for r in whole]


def test_keep_headers_false_keeps_only_framing():
    data = (b"GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nokGET /c HTTP/1.1\r\n\r\n")
    p, reqs = feed_all(data, keep_headers=False)
    assert [r.target for r in reqs] == [b"/a", b"/b", b"/c"]
    assert reqs[0].headers == [] and reqs[0].host is None
    assert reqs[1].content_length == 2 and reqs[1].body == b"ok"


_plainish = st.lists(st.sampled_from([
    b"GET /a HTTP/1.1\r\n", b"GET /b\r\n", b"Host: h\r\n", b"\r\n", b"\n", b"X: 1\n",
    b"Content-Length: 2\r\n", b"Transfer-Encoding: chunked\r\n", b"CONNECT h:1 HTTP/1.1\r\n",
    b"ok", b"2\r\nab\r\n0\r\n\r\n", b"POST /p HTTP/1.0\r\n", b"GET /%41 HTTP/1.1\r\n",
    b"GET //x HTTP/1.0\r\n", b"junk line\r\n", b"GET /" + b"L" * 90 + b" HTTP/1.1\r\n"]),
    max_size=12).map(b"".join)


_plain = st.lists(st.sampled_from([
    b"GET /a HTTP/1.1\r\n", b"GET /b\r\n", b"Host: h\r\n", b"\r\n", b"\n", b"junk line\r\n",
    b"GET /" + b"L" * 90 + b" HTTP/1.1\r\n", b" folded\r\n"]), max_size=8).map(
    lambda parts: b"".join(parts) + b"\r\n\r\n")


@settings(max_examples=800, deadline=None)
@given(_plainish, st.one_of(_plainish, _plain))
def test_skip_plain_only_skips_what_cannot_matter(first, second):
    from pakemon.detect.http_normalize import PLAIN_CHUNK_INTERESTING, normalize_uri

    a = HttpRequestParser(max_line=64, keep_headers=False)
    b = HttpRequestParser(max_line=64, keep_headers=False)
    a.feed(first)
    b.feed(first)
    if a.skip_plain(second, PLAIN_CHUNK_INTERESTING):
        reqs = b.feed(second)
        # nothing to look at: every target is its own normalization
        assert all(normalize_uri(r.target) == (r.target, []) for r in reqs)
        # and the parser is where it would have been: between requests
        assert (b._state, b._parts, b.current) == (a._state, None, None)
        assert a.offset == b.offset
        assert all(r.complete for r in reqs)
    else:
        assert a.offset == len(first) and a.skipped == 0


def test_skip_plain():
    from pakemon.detect.http_normalize import PLAIN_CHUNK_INTERESTING as I

    p = HttpRequestParser()
    assert p.skip_plain(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\n\r\n", I)
    assert p.offset == p.skipped == 47
    assert not p.skip_plain(b"GET /a%41 HTTP/1.1\r\n\r\n", I)
    assert not p.skip_plain(b"GET /a HTTP/1.1\r\nHost: h\r\n", I)  # headers not ended
    assert not p.skip_plain(b"POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\n", I)
    p.feed(b"GET /a HTTP/1.1\r\n")
    assert not p.skip_plain(b"Host: h\r\n\r\n", I)  # in the middle of a request


def test_request_line_without_protocol_keeps_following_headers():
    """libhtp (suricata-verify http-missing-protocol): a version-less request
    line followed by header lines is a request that lost its protocol token."""
    data = b"GET /gen.php?hwid=-5312\r\nUser-Agent: x\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n\r\n"
    for size in (None, 1, 7):
        _, reqs = feed_all(data, size)
        assert [(r.method, r.target, r.version) for r in reqs] == [
            (b"GET", b"/gen.php?hwid=-5312", b""), (b"GET", b"/next", b"HTTP/1.1")]
        assert reqs[0].headers == [(b"User-Agent", b"x"), (b"Host", b"h")]
        assert reqs[0].complete and reqs[1].complete


def test_http09_request_then_next_request():
    _, reqs = feed_all(b"GET /a\r\nGET /b\r\n\r\n")
    assert [(r.target, r.version, r.complete, r.headers) for r in reqs] == [
        (b"/a", b"", True, []), (b"/b", b"", True, [])]


def test_target_with_spaces_up_to_the_protocol():
    """libhtp keeps `/uri afterspace` whole (suricata-verify http-uri-spaces)."""
    _, reqs = feed_all(b"GET /uri afterspace HTTP/1.1\r\nHost: h\r\n\r\n")
    assert [(r.target, r.version) for r in reqs] == [(b"/uri afterspace", b"HTTP/1.1")]
    # without a protocol token at the end the second field stays the target
    _, reqs = feed_all(b"GET /a b c\r\n\r\n")
    assert [(r.target, r.version) for r in reqs] == [(b"/a", b"c")]


def test_a_chunk_of_short_header_lines_is_searched_for_its_end_once():
    """The header block's end is looked for once per chunk: searched again
    at each line, a segment of 365 four-byte header lines (folds, or
    ``a: b``) was read about 180 times. The headers parse as before, with
    the end in this chunk, in a later one, or cut anywhere."""
    from unittest import mock

    from pakemon.applayer import lines

    searches = []
    real = lines._HEADERS_END

    class Counting:
        def search(self, data, pos=0):
            searches.append(pos)
            return real.search(data, pos)

    head = b"GET / HTTP/1.1\r\nX: a\r\n" + b" b\r\n" * 360
    with mock.patch.object(lines, "_HEADERS_END", Counting()):
        p = HttpRequestParser()
        reqs = p.feed(head)
        assert len(searches) == 1  # (none in the chunk: the lines follow)
        reqs += p.feed(b"Host: h\r\n\r\nGET /2 HTTP/1.1\r\n" + b"a: b\r\n" * 300 + b"\r\n")
        assert len(searches) <= 4
    assert [r.target for r in reqs] == [b"/", b"/2"]
    assert reqs[0].host == b"h" and reqs[0].headers[0] == (b"X", b"a" + b" b" * 360)
    assert len(reqs[1].headers) == 100
    for size in (1, 7, 100, 1460):
        p, again = feed_all(head + b"Host: h\r\n\r\n", size)
        assert again[0].headers[0] == reqs[0].headers[0] and again[0].host == b"h"
