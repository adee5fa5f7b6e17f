"""Request-target normalization (pakemon.detect.http_normalize): a table per feature and
personality, the anomalies reported, and never raising."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pakemon.detect.http_normalize import (ENCODING_ANOMALIES, HTTP_PORTS, PERSONALITIES,
                                           HttpConfig, Personality, bestfit, get_personality,
                                           normalize_uri)

G, A, I = "generic", "apache", "iis"


def norm(raw, p=G, dd=False):
    return normalize_uri(raw, p, dd)[0]


def anomalies(raw, p=G, dd=False):
    return normalize_uri(raw, p, dd)[1]


# (raw, generic, apache, iis)
TABLE = [
    # nothing to do: returned as is
    (b"/index.html", b"/index.html", b"/index.html", b"/index.html"),
    (b"/a/b.cgi?x=1&y=2", b"/a/b.cgi?x=1&y=2", b"/a/b.cgi?x=1&y=2", b"/a/b.cgi?x=1&y=2"),
    (b"*", b"*", b"*", b"*"),
    (b"", b"", b"", b""),
    # %XX
    (b"/cgi-bin/%70hf", b"/cgi-bin/phf", b"/cgi-bin/phf", b"/cgi-bin/phf"),
    (b"/cgi%2dbin/phf", b"/cgi-bin/phf", b"/cgi-bin/phf", b"/cgi-bin/phf"),
    (b"/%2E%2e/x", b"/x", b"/x", b"/x"),
    (b"/a%20b", b"/a b", b"/a b", b"/a b"),
    # encoded separators: Apache keeps %2f encoded (AllowEncodedSlashes Off)
    (b"%2fcgi-bin%2fphf", b"/cgi-bin/phf", b"%2fcgi-bin%2fphf", b"/cgi-bin/phf"),
    (b"/cgi-bin%5cphf", b"/cgi-bin/phf", b"/cgi-bin\\phf", b"/cgi-bin/phf"),
    # %uXXXX: IIS syntax; Apache has none
    (b"%u002fcgi-bin%u002fphf", b"/cgi-bin/phf", b"%u002fcgi-bin%u002fphf", b"/cgi-bin/phf"),
    (b"/cgi-bin/%u0070hf", b"/cgi-bin/phf", b"/cgi-bin/%u0070hf", b"/cgi-bin/phf"),
    (b"/%uFF0Fetc%uff0fpasswd", b"/etc/passwd", b"/%uFF0Fetc%uff0fpasswd", b"/etc/passwd"),
    # invalid escapes are kept (libhtp: preserve percent, every personality)
    (b"/a%zzb", b"/a%zzb", b"/a%zzb", b"/a%zzb"),
    (b"/a%4", b"/a%4", b"/a%4", b"/a%4"),
    (b"/a%", b"/a%", b"/a%", b"/a%"),
    (b"/a%u12", b"/a%u12", b"/a%u12", b"/a%u12"),
    # /./ removal, // collapse, /x/../ resolution
    (b"/cgi-bin/./phf", b"/cgi-bin/phf", b"/cgi-bin/phf", b"/cgi-bin/phf"),
    (b"//cgi-bin//phf", b"/cgi-bin/phf", b"/cgi-bin/phf", b"/cgi-bin/phf"),
    (b"/cgi-bin/x/../phf", b"/cgi-bin/phf", b"/cgi-bin/phf", b"/cgi-bin/phf"),
    (b"/a/b/c/../../d", b"/a/d", b"/a/d", b"/a/d"),
    (b"/a/b/..", b"/a/", b"/a/", b"/a/"),
    (b"/a/.", b"/a/", b"/a/", b"/a/"),
    (b"/a/", b"/a/", b"/a/", b"/a/"),
    (b"/", b"/", b"/", b"/"),
    (b"////", b"/", b"/", b"/"),
    (b"/.htaccess", b"/.htaccess", b"/.htaccess", b"/.htaccess"),
    (b"/a/..b/c.", b"/a/..b/c.", b"/a/..b/c.", b"/a/..b/c."),
    # never above the root
    (b"/../../etc/passwd", b"/etc/passwd", b"/etc/passwd", b"/etc/passwd"),
    (b"/..", b"/", b"/", b"/"),
    (b"a/../../b", b"b", b"b", b"b"),
    # backslash: a separator for generic (spec default) and IIS, a character for Apache
    (b"/cgi-bin\\phf", b"/cgi-bin/phf", b"/cgi-bin\\phf", b"/cgi-bin/phf"),
    (b"/a\\..\\b", b"/b", b"/a\\..\\b", b"/b"),
    # overlong UTF-8: the IIS unicode traversal
    (b"/scripts/..%c0%af../winnt/system32/cmd.exe",
     b"/winnt/system32/cmd.exe", b"/scripts/..\xc0\xaf../winnt/system32/cmd.exe",
     b"/winnt/system32/cmd.exe"),
    (b"/scripts/..%e0%80%af../x", b"/x", b"/scripts/..\xe0\x80\xaf../x", b"/x"),
    (b"/scripts/..%f0%80%80%af../x", b"/x", b"/scripts/..\xf0\x80\x80\xaf../x", b"/x"),
    # the C1 lead with a non-continuation byte: IIS decoded it anyway (masking)
    (b"/scripts/..%c1%1c../x", b"/scripts/..\xc1\x1c../x", b"/scripts/..\xc1\x1c../x", b"/x"),
    (b"/scripts/..%c1%9c../x", b"/x", b"/scripts/..\xc1\x9c../x", b"/x"),
    # valid UTF-8: kept as bytes, but IIS best-fits it to its code page
    (b"/caf%c3%a9", b"/caf\xc3\xa9", b"/caf\xc3\xa9", b"/caf\xe9"),
    (b"/%ef%bc%8fetc", b"/\xef\xbc\x8fetc", b"/\xef\xbc\x8fetc", b"/etc"),
    (b"/a\xff\xfeb", b"/a\xff\xfeb", b"/a\xff\xfeb", b"/a\xff\xfeb"),
    # case folding: IIS only, and the path only
    (b"/CGI-BIN/PHF?Qalias=X", b"/CGI-BIN/PHF?Qalias=X", b"/CGI-BIN/PHF?Qalias=X",
     b"/cgi-bin/phf?Qalias=X"),
    (b"/Scripts/%2E%2E/X?A", b"/X?A", b"/X?A", b"/x?A"),
    # the query: decoded, not path-normalized, + is not a space
    (b"/cgi-bin/phf?Qalias=x%0a/bin/cat%20/etc/passwd",
     b"/cgi-bin/phf?Qalias=x\n/bin/cat /etc/passwd",
     b"/cgi-bin/phf?Qalias=x\n/bin/cat /etc/passwd",
     b"/cgi-bin/phf?Qalias=x\n/bin/cat /etc/passwd"),
    (b"/?p=/a/../b//c", b"/?p=/a/../b//c", b"/?p=/a/../b//c", b"/?p=/a/../b//c"),
    (b"/x?a+b%2Bc", b"/x?a+b+c", b"/x?a+b+c", b"/x?a+b+c"),
    # a decoded ? is a path character (fake parameter): it does not start the query
    (b"/index.htm%3f/../cgi-bin/phf", b"/cgi-bin/phf", b"/cgi-bin/phf", b"/cgi-bin/phf"),
    (b"/index.htm?/../cgi-bin/phf", b"/index.htm?/../cgi-bin/phf",
     b"/index.htm?/../cgi-bin/phf", b"/index.htm?/../cgi-bin/phf"),
    # a raw # ends the path too (the server never sees a fragment as path)
    (b"/cgi-bin/%70hf#/../x", b"/cgi-bin/phf#/../x", b"/cgi-bin/phf#/../x",
     b"/cgi-bin/phf#/../x"),
    # absolute form (proxies): scheme://authority kept, the path normalized
    (b"http://Example.com//cgi-bin/./%70hf?x", b"http://Example.com/cgi-bin/phf?x",
     b"http://Example.com/cgi-bin/phf?x", b"http://Example.com/cgi-bin/phf?x"),
    (b"http://h", b"http://h", b"http://h", b"http://h"),
    # NUL: kept (libhtp's default for every personality)
    (b"/a%00b", b"/a\x00b", b"/a\x00b", b"/a\x00b"),
    (b"/a\x00b", b"/a\x00b", b"/a\x00b", b"/a\x00b"),
]


@pytest.mark.parametrize("raw, generic, apache, iis", TABLE)
def test_normalization_table(raw, generic, apache, iis):
    assert norm(raw, G) == generic
    assert norm(raw, A) == apache
    assert norm(raw, I) == iis


@pytest.mark.parametrize("raw, expected", [
    (b"/index.html", []),
    (b"/a%zz", ["invalid_percent_encoding"]),
    (b"/a%u0041", ["u_encoding"]),
    (b"/a%u00", ["u_encoding", "invalid_percent_encoding"]),
    (b"/a%00", ["nul_byte"]),
    (b"/a\x00", ["nul_byte"]),
    (b"/..%c0%af..", ["overlong_utf8", "dot_segment", "dot_segment_above_root"]),
    (b"/a\\b", ["backslash"]),
    (b"/a%2fb", ["encoded_separator"]),
    (b"/a%5cb", ["encoded_separator", "backslash"]),
    (b"/a/./b", ["dot_segment"]),
    (b"/../a", ["dot_segment", "dot_segment_above_root"]),
    (b"/a//b", ["multiple_slashes"]),
    (b"/caf\xc3\xa9", ["bare_byte"]),
    (b"/..%255c..", ["double_encoding"]),
    (b"/..%%35c..", ["invalid_percent_encoding", "double_encoding"]),
    (b"/..%25u002f", ["double_encoding"]),
    (b"/100%25", []),  # an encoded % not starting an escape is fine
    (b"/?q=%41%zz", ["invalid_percent_encoding"]),
    (b"/?u=http%3a%2f%2fexample.com%2f", []),  # encoded slashes in a query are common
])
def test_anomalies_generic(raw, expected):
    assert anomalies(raw) == expected


def test_double_decode_option():
    # CVE-2001-0333: IIS decoded twice
    raw = b"/scripts/..%255c../winnt/system32/cmd.exe"
    assert norm(raw, I) == b"/scripts/..%5c../winnt/system32/cmd.exe"
    assert norm(raw, I, dd=True) == b"/winnt/system32/cmd.exe"
    assert norm(b"/scripts/..%%35c../x", I, dd=True) == b"/x"
    assert norm(b"/scripts/..%%35%63../x", G, dd=True) == b"/x"
    # Apache keeps the second-pass %5c as a backslash character, not a separator
    assert norm(raw, A, dd=True) == b"/scripts/..\\../winnt/system32/cmd.exe"
    # only what the first pass produced is decoded again
    assert norm(b"/a%2541%zz", G, dd=True) == b"/aA%zz"


def test_backslash_is_configurable():
    off = get_personality("generic", backslash=False)
    assert off.backslash is False and off.name == "generic"
    assert norm(b"/cgi-bin\\phf", off) == b"/cgi-bin\\phf"
    assert norm(b"/cgi-bin%5cphf", off) == b"/cgi-bin\\phf"
    assert "backslash" in anomalies(b"/cgi-bin\\phf", off)
    assert get_personality("generic") is PERSONALITIES["generic"]
    cfg = HttpConfig(backslash=False)
    assert cfg.resolve() == off


def test_nul_terminates_option():
    p = Personality("iis-nul", utf8=2, lowercase=True, nul_terminates=True)
    assert norm(b"/cgi-bin/phf%00.html?x", p) == b"/cgi-bin/phf?x"
    assert norm(b"/cgi-bin/phf\x00.html", p) == b"/cgi-bin/phf"
    assert norm(b"/cgi-bin/phf%c0%80.html", p) == b"/cgi-bin/phf"
    assert "nul_byte" in anomalies(b"/x%00", p)


def test_bestfit():
    assert bestfit(0x41) == 0x41
    assert bestfit(0xE9) == 0xE9
    assert bestfit(0xFF0F) == ord("/")  # fullwidth solidus
    assert bestfit(0x2215) == ord("/")  # division slash
    assert bestfit(0x2216) == ord("\\")  # set minus
    assert bestfit(0x0100) == ord("A")  # A with macron
    assert bestfit(0x4E2D) == ord("?")  # no look-alike
    assert bestfit(0xD800) == ord("?")  # lone surrogate


def test_http_ports_and_encoding_anomalies():
    assert HTTP_PORTS == (80, 8000, 8080, 3128)
    assert HttpConfig().ports == HTTP_PORTS
    assert "dot_segment" not in ENCODING_ANOMALIES
    assert "overlong_utf8" in ENCODING_ANOMALIES


def test_accepts_bytearray_and_memoryview():
    assert norm(bytearray(b"/a/./b")) == b"/a/b"
    assert norm(memoryview(b"/a%41")) == b"/aA"


def test_typical_targets_are_fast():
    import time

    targets = [b"/images/p/%d.gif?x=%d" % (i, i) for i in range(20000)]
    t0 = time.perf_counter()
    for t in targets:
        normalize_uri(t)
    per = (time.perf_counter() - t0) / len(targets)
    assert per < 20e-6, f"{per * 1e6:.1f} us per typical target"


_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from([b"%", b"%2", b"%2f", b"%25", b"%u", b"%u002f", b"%c0", b"%af",
                              b"%c1%1c", b"\xc0", b"\xaf", b"/", b"\\", b".", b"..", b"?",
                              b"#", b"a", b"%00", b"\x00", b"%e0%80", b"http://", b"%uff0f",
                              b"%f4%90%80%80", b"\xf7\xbf\xbf\xbf", b"\xed\xa0\x80"]),
             max_size=40).map(b"".join),
)


@settings(max_examples=1500, deadline=None)
@given(_bytes, st.sampled_from([G, A, I]), st.booleans())
def test_never_raises(raw, personality, dd):
    out, an = normalize_uri(raw, personality, dd)
    assert isinstance(out, bytes) and isinstance(an, list)
    assert len(set(an)) == len(an)
    # without a query or an absolute form, no //, ./ or ../ segment is left
    if not any(c in raw for c in b"?#") and b"://" not in raw:
        assert b"//" not in out
        assert not {b".", b".."} & set(out.split(b"/"))
