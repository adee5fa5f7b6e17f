"""HTTP response parsing: framing, de-chunking, decompression, robustness."""

from __future__ import annotations

import gzip
import random
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import feed_steps

from pakemon.applayer.http_response import HttpResponseParser


def run(data: bytes, methods=(b"GET",), step: int = 0, finish: bool = True, **kw):
    p = HttpResponseParser(**kw)
    for m in methods:
        p.expect(m)
    out = feed_steps(p, data, step)
    if finish:
        out += p.finish()
    return p, out


def chunked(body: bytes, size: int = 7, ext: bytes = b"") -> bytes:
    parts = [b"%x%s\r\n%s\r\n" % (len(body[i:i + size]), ext, body[i:i + size])
             for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\nX-Trailer: t\r\n\r\n"


def test_chunked_gzip_body_any_segmentation():
    text = b"<html>malware payload here</html>" * 50
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    data = head + chunked(gzip.compress(text), 13, b";name=value")
    for step in (0, 1, 5, 1460):
        p, out = run(data, step=step, finish=False)
        assert len(out) == 1, step
        r = out[0]
        assert r.complete and r.chunked and r.body == text
        assert r.stat_code == b"200" and r.status == 200 and r.stat_msg == b"OK"
        assert r.content_type == b"text/html"
        assert r.body_length == len(gzip.compress(text))


def test_deflate_zlib_and_raw():
    text = b"deflated body " * 20
    for enc in (zlib.compress(text), zlib.compress(text)[2:-4]):
        data = (b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
                % len(enc)) + enc
        _p, out = run(data)
        assert out[0].body == text


def test_head_and_304_and_204_have_no_body():
    data = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"  # answers HEAD: no body
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
            b"HTTP/1.1 204 No Content\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    p, out = run(data, methods=(b"HEAD", b"GET", b"GET", b"GET"), finish=False)
    assert [(r.stat_code, r.body, r.complete) for r in out] == [
        (b"200", b"", True), (b"304", b"", True), (b"204", b"", True), (b"200", b"hello", True)]
    assert [r.method for r in out] == [b"HEAD", b"GET", b"GET", b"GET"]
    assert p.unmatched == 0


def test_interim_100_does_not_consume_the_method():
    data = (b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    _p, out = run(data, methods=(b"HEAD",), finish=False)
    assert [r.stat_code for r in out] == [b"100", b"200"]
    assert out[1].method == b"HEAD" and out[1].body == b""


def test_pipelined_responses_in_one_segment():
    data = b"".join(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n%03d" % i for i in range(5))
    p, out = run(data, methods=(b"GET",) * 5, finish=False)
    assert [r.body for r in out] == [b"000", b"001", b"002", b"003", b"004"]
    assert p.responses == 5


def test_close_delimited_completes_at_finish():
    p = HttpResponseParser()
    assert p.feed(b"HTTP/1.0 200 OK\nServer: Apache\n\nline one\n") == []
    assert p.feed(b"line two") == []
    out = p.finish()
    assert len(out) == 1 and out[0].complete
    assert out[0].body == b"line one\nline two" and out[0].server == b"Apache"
    assert p.unmatched == 1  # no expect(): taken as GET


def test_missing_reason_bare_lf_leading_junk():
    data = b"\r\n\r\ngarbage line\nHTTP/1.1 404\nLocation: /x\n\n"
    p, out = run(data)
    assert len(out) == 1 and out[0].stat_code == b"404" and out[0].stat_msg == b""
    assert out[0].location == b"/x" and p.junk_lines == 1


def test_normalized_and_raw_header():
    data = (b"HTTP/1.1 200 OK\r\nServer:  nginx \r\nSet-Cookie: s=1\r\nX-Dup: a\r\n"
            b"x-dup: b\r\nX-Fold: one\r\n two\r\nContent-Length: 0\r\n\r\n")
    _p, out = run(data)
    r = out[0]
    assert r.header == (b"Server: nginx\r\nX-Dup: a, b\r\nX-Fold: one two\r\n"
                        b"Content-Length: 0\r\n")
    assert r.raw_header == data[len(b"HTTP/1.1 200 OK\r\n"):]
    assert r.get(b"set-cookie") == b"s=1"


def test_truncated_stream_returns_incomplete():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
    _p, out = run(data)
    assert len(out) == 1 and not out[0].complete and out[0].body == b"partial"
    _p, out = run(b"HTTP/1.1 302 Found\r\nLocation: http://evil/")
    assert len(out) == 1 and out[0].stat_code == b"302" and not out[0].headers_complete
    assert out[0].location == b"http://evil/"


def test_gap_returns_current_and_resyncs():
    p = HttpResponseParser()
    p.expect(b"GET")
    p.expect(b"GET")
    p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc")
    out = p.gap()
    assert len(out) == 1 and not out[0].complete
    out = p.feed(b"rest of lost body\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    assert [r.stat_code for r in out] == [b"500"]


def test_body_limit_returns_early_and_skips_rest():
    body = bytes(range(256)) * 40
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    data += b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    p = HttpResponseParser(body_limit=1000)
    p.expect(b"GET")
    p.expect(b"GET")
    out = p.feed(data[:2000])
    assert len(out) == 1 and out[0].body_truncated and out[0].body == body[:1000]
    out = p.feed(data[2000:])
    assert [r.stat_code for r in out] == [b"201"]


def test_gzip_bomb_capped_and_reported():
    bomb = gzip.compress(bytes(20_000_000))  # ~20 KB expanding 1000x
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    p, out = run(data + bomb, body_limit=102400, finish=False)
    assert len(out) == 1 and len(out[0].body) == 102400
    assert p.anomalies.get("decompression_bomb") == 1
    assert "decompression_bomb" in out[0].anomalies


def test_bad_gzip_passed_through():
    junk = b"this is not gzip at all"
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(junk)
    p, out = run(data + junk)
    assert out[0].body == junk and p.anomalies["decompress_error"] == 1


def test_invalid_chunk_size_becomes_close_delimited_body():
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n<script>\r\n"
    p, out = run(data)
    assert out[0].body == b"zz\r\n<script>\r\n"
    assert p.anomalies["invalid_chunk_size"] == 1


def test_connect_and_101_tunnel():
    data = (b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01\x00\x05hello"
            b"HTTP/1.1 200 OK\r\n\r\n")
    p, out = run(data, methods=(b"CONNECT",))
    assert len(out) == 1 and out[0].tunnel
    _p, out = run(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
    assert len(out) == 1 and out[0].tunnel


def test_chunked_with_content_length_anomaly():
    data = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(b"chunk wins"))
    p, out = run(data, finish=False)
    assert out[0].body == b"chunk wins"
    assert p.anomalies["chunked_with_content_length"] == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500), st.integers(1, 40))
def test_random_bytes_never_raise(data, step):
    p = HttpResponseParser(body_limit=200)
    for i in range(0, len(data), step):
        p.feed(data[i:i + step])
    p.gap()
    p.finish()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 304\n", b"Content-Length: 4\r\n", b"\r\n",
    b"Transfer-Encoding: chunked\r\n", b"Content-Encoding: gzip\r\n", b"4\r\nabcd\r\n",
    b"0\r\n\r\n", b"ffffffffffffffffff\r\n", b"x;y\r\n", b"\x1f\x8b\x08\x00", b"abcd",
]), max_size=30), st.integers(1, 9))
def test_structured_garbage_never_raises(parts, step):
    data = b"".join(parts)
    p = HttpResponseParser(body_limit=64)
    p.expect(b"GET")
    got = []
    for i in range(0, len(data), step):
        got += p.feed(data[i:i + step])
    got += p.finish()
    assert len(got) == len({id(r) for r in got})  # each response returned once
    assert all(len(r.body) <= 64 for r in got)


def test_gzip_corrupt_midway_keeps_decoded_prefix():
    text = random.Random(7).randbytes(6000)  # incompressible: ~6000 compressed bytes
    c = zlib.compressobj(wbits=31)
    # A byte-aligned flush, then a block header of the reserved type 3:
    # zlib fails there ("invalid block type").
    bad = c.compress(text) + c.flush(zlib.Z_FULL_FLUSH) + b"\x07" + b"more" * 50
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bad)
    bodies = set()
    for step in (0, 1, 700, 1460):
        p, out = run(head + bad, step=step, finish=False)
        r = out[0]
        assert r.complete and not r.body_truncated
        # What decoded before the damaged piece is kept, the rest dropped.
        assert len(r.body) >= 4000 and text.startswith(r.body)
        assert p.anomalies["decompress_error"] == 1
        bodies.add(r.body)
    assert len(bodies) == 1  # independent of segmentation


def test_body_limit_zero_keeps_no_body_but_frames():
    data = (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
            b"HTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n")
    _p, out = run(data, methods=(b"GET", b"GET"), finish=False, body_limit=0)
    assert [(r.stat_code, r.body, r.body_length) for r in out] == [(b"200", b"", 4),
                                                                    (b"404", b"", 0)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([
    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"HTTP/1.1 404 Not Found\nContent-Length: 0\n\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(gzip.compress(b"zipped" * 300)), gzip.compress(b"zipped" * 300)),
    b"junk line\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nclose delimited",
]), min_size=1, max_size=6), st.integers(1, 50))
def test_segmentation_does_not_change_results(parts, step):
    data = b"".join(parts)

    def summary(out):
        return [(r.stat_code, r.body, r.complete, r.header) for r in out]

    whole = run(data, methods=(b"GET",) * 6)[1]
    pieces = run(data, methods=(b"GET",) * 6, step=step)[1]
    assert summary(whole) == summary(pieces)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    b"Server: a\r\n", b"X-Fold: one\r\n", b"  two\r\n", b"\tthree\n", b"no colon here\r\n",
    b": empty name\r\n", b"Set-Cookie: s=1\r\n", b"server: b\r\n", b"Content-Length: 3\r\n",
    b"Content-Length: 4\r\n", b"Transfer-Encoding: chunked\r\n", b"X-CR: a\rb\r\n",
]), max_size=8), st.sampled_from([b"\r\n", b"\n", b"\r\r\n"]),
    st.sampled_from([b"HTTP/1.1 200 OK\r\n", b"\r\nHTTP/1.0 404 Nope\n", b"  HTTP/1.1 204\r\n"]),
    st.integers(1, 40))
def test_header_block_at_once_same_as_line_by_line(lines, empty, status, step):
    """A whole header block in one chunk takes the block path; one byte at a
    time takes the line path: every parsed detail is the same."""
    data = status + b"".join(lines) + empty + b"abcd" * 5 + b"HTTP/1.1 304 Again\r\n\r\n"

    def details(p, out):
        return ([(r.stat_code, r.headers, r.header, r.raw_header, r.body, r.chunked,
                  r.content_length, r.anomalies, r.complete) for r in out],
                p.bad_headers, p.junk_lines, p.anomalies)

    whole = details(*run(data, methods=(b"GET", b"GET")))
    assert details(*run(data, methods=(b"GET", b"GET"), step=1)) == whole
    assert details(*run(data, methods=(b"GET", b"GET"), step=step)) == whole
    assert whole[0][0][3] == b"".join(lines) + empty  # the raw block as received


def test_header_block_longer_than_a_line_limit_still_parsed():
    hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(40))  # 2.4 KB
    data = b"HTTP/1.1 200 OK\r\n" + hdrs + b"Content-Length: 2\r\n\r\nok"
    p, out = run(data, max_line=100)
    assert len(out[0].headers) == 41 and out[0].body == b"ok" and p.long_lines == 0


def test_body_limit_zero_plain_body_has_no_decoder_encoded_one_still_checked():
    data = (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
            b"HTTP/1.1 200 OK\r\nContent-Encoding: br, gzip, deflate\r\nContent-Length: 2\r\n"
            b"\r\nzz")
    p, out = run(data, methods=(b"GET", b"GET"), body_limit=0)
    assert [(r.body, r.body_length) for r in out] == [(b"", 4), (b"", 2)]
    assert out[1].anomalies == ["too_many_encodings"] and p.anomalies == {"too_many_encodings": 1}


def test_long_chunk_extension_same_body_whatever_the_segmentation():
    """A chunk-size line cut at max_line skips to its line end before the
    chunk data, however TCP split it (the response parser used to take the
    rest of a split extension as body)."""
    data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;" + b"e" * 100
            + b"\r\nhello\r\n0\r\n\r\n")
    for step in (0, 70, 1):
        parser, (resp,) = run(data, step=step, max_line=64)
        assert resp.body == b"hello", step


def test_over_long_status_line_cut_the_same_whatever_the_segmentation():
    data = b"HTTP/1.1 200 " + b"x" * 52 + b"\nContent-Length: 2\r\n\r\nok"
    for step in (0, 70, 1):
        parser, (resp,) = run(data, step=step, max_line=64)
        assert len(resp.response_line) == 64, step
        assert parser.long_lines == 1, step
        assert resp.body == b"ok", step


def _response_sequence(rng: random.Random):
    """A keep-alive stream of random responses, each framed and encoded at
    random (Content-Length, chunked with extensions and trailers, or to the
    end of the stream for the last; identity, gzip, x-gzip, zlib or raw
    deflate; CRLF or bare LF; header names in any case), some after a 100
    Continue, some to HEAD or 204/304 (no body): the methods, the bytes,
    and (status, decoded body) of each final response."""
    methods, data, want = [], b"", []
    n = rng.randint(1, 5)
    for i in range(n):
        method = rng.choice([b"GET", b"GET", b"POST", b"HEAD"])
        methods.append(method)
        eol = rng.choice([b"\r\n", b"\r\n", b"\n"])
        if rng.random() < 0.2:
            data += b"HTTP/1.1 100 Continue" + eol + rng.choice([b"", b"X-I: 1" + eol]) + eol
        status = rng.choice([200, 200, 200, 404, 500, 204, 304, 302])
        body = bytes(rng.choice(b"abcdefghij<>/ \r\n\x00\xff")
                     for _ in range(rng.choice([0, 1, 5, 100, 3000, 20000])))
        enc = rng.choice([None, None, b"gzip", b"x-gzip", b"deflate", b"raw", b"identity"])
        if enc in (b"gzip", b"x-gzip"):
            wire = gzip.compress(body)
        elif enc == b"deflate":
            wire = zlib.compress(body)
        elif enc == b"raw":  # deflate without the zlib wrapper, as some servers send
            wire, enc = zlib.compress(body)[2:-4], b"deflate"
        else:
            wire = body
        framing = rng.choice(["length", "chunked"] + (["close"] if i == n - 1 else []))
        headers = [b"Server: t"]
        if enc is not None:
            headers.append(rng.choice([b"Content-Encoding", b"content-encoding"]) + b": " + enc)
        if framing == "length":
            headers.append(rng.choice([b"Content-Length:", b"content-length: "])
                           + b"%d" % len(wire))
        elif framing == "chunked":
            headers.append(b"Transfer-Encoding: " + rng.choice([b"chunked", b"Chunked"]))
        rng.shuffle(headers)
        data += b"HTTP/1.1 %d X" % status + eol + b"".join(h + eol for h in headers) + eol
        if method == b"HEAD" or status in (204, 304):
            want.append((status, b""))
            continue
        if framing == "chunked":
            pos = 0
            while pos < len(wire):
                piece = wire[pos:pos + rng.randint(1, 4000)]
                pos += len(piece)
                data += (rng.choice([b"%x", b"%X", b"0%x"]) % len(piece)
                         + rng.choice([b"", b";a=b", b" "]) + eol + piece + eol)
            data += b"0" + eol + rng.choice([b"", b"T: v" + eol]) + eol
        else:
            data += wire
        want.append((status, body))
    return methods, data, want


def test_random_response_sequences_decode_to_the_bodies_sent():
    for seed in range(300):
        rng = random.Random(seed)
        methods, data, want = _response_sequence(rng)
        p = HttpResponseParser(body_limit=1 << 20)
        for m in methods:
            p.expect(m)
        out, pos = [], 0
        while pos < len(data):
            step = rng.choice([1, 7, 100, 1460, 5000, len(data)])
            out += p.feed(data[pos:pos + step])
            pos += step
        out += p.finish()
        final = [r for r in out if r.status != 100]
        assert [(r.status, r.body) for r in final] == want, seed
        assert all(r.complete for r in final), seed
