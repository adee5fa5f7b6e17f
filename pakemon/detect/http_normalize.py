"""HTTP request-target normalization: what the web server will really open.

The paper's admitted failure (section 4.2): ``%``-encoded URLs and ``/./``
insertion went undetected because Pakemon matched the raw bytes only. The
spec (rules.md, "What is searched") fixes it: on HTTP service ports the
request line's target is also searched in normalized form, and a pattern
matches if it is in the raw stream *or* in the normalized target.

``normalize_uri(raw, personality, double_decode) -> (normalized, anomalies)``

What is normalized
------------------
The target is split at the first *raw* ``?`` or ``#`` (a decoded ``%3f`` is
an ordinary path character, as every server treats it: the classic "fake
parameter" ``/index.htm%3f/../cgi-bin/phf`` opens ``/cgi-bin/phf``).

* The **path** is percent-decoded, then UTF-8 overlong forms are folded, then
  separators are unified and dot segments resolved (RFC 3986 section 5.2.4
  ``remove_dot_segments``, never above the root), then (IIS) case-folded.
  Decoding comes first because servers decode before they resolve:
  ``/%2e%2e/`` climbs like ``/../``.
* The **query** (and a fragment, which clients never send) is kept, with the
  same character decoding but no path operations: attacks such as
  ``/cgi-bin/phf?Qalias=x%0a/bin/cat%20/etc/passwd`` carry their pattern in
  the query, and a CGI sees it decoded. ``+`` is not read as a space (that
  is form-data decoding, which the path/URI decoders of servers and of
  libhtp/Snort do not do).
* An **absolute-form** target (``http://host/path``, proxies on port 3128)
  keeps ``scheme://authority`` verbatim and normalizes what follows.

Personalities
-------------
After libhtp's server personalities (htp_config.c
``htp_config_set_server_personality``) and Snort's http_inspect profiles;
our own code, the same decisions:

==================  =========  =========  =========
feature             generic    apache     iis
==================  =========  =========  =========
``%XX``             decoded    decoded    decoded
``%uXXXX``          decoded    kept [1]   decoded
``%2f`` separator   decoded    kept [2]   decoded
``\\`` as ``/``      yes [3]    no         yes
overlong UTF-8      strict     no         lenient
UTF-8 best fit      no         no         yes [4]
case folding        no         no         yes
invalid ``%``       kept       kept       kept [5]
NUL                 kept       kept       kept [6]
``//`` and dots     resolved   resolved   resolved
==================  =========  =========  =========

[1] Apache has no ``%u`` syntax: ``%u`` is an invalid escape (400).
[2] Apache's ``AllowEncodedSlashes Off`` (the default) answers 404 to a
    path with ``%2f``: the slash never becomes a separator, so ``%2f`` stays
    encoded in the normalized path (libhtp ``path_separators_decode = 0``).
[3] The spec: ``\\`` is read as ``/`` (configurable): pass
    ``personality=get_personality("generic", backslash=False)`` to turn it
    off.
[4] IIS maps Unicode to the ANSI code page with Windows' "best fit": a
    ``%uXXXX`` or UTF-8 character above U+00FF becomes its look-alike ASCII
    byte (U+FF0F fullwidth solidus -> ``/``). libhtp ships Windows' table;
    we use Unicode compatibility decomposition (NFKD, first character when
    ASCII) plus the slash look-alikes, else ``?`` as libhtp's replacement
    byte. ``generic`` applies best fit to ``%u`` escapes only (a ``%u``
    escape is IIS syntax, so IIS semantics), and leaves valid UTF-8 text
    as its bytes so UTF-8 patterns still match.
[5] libhtp's IIS 5.1 to 7.5 personalities all keep the ``%`` of an invalid
    escape (HTP_URL_DECODE_PRESERVE_PERCENT); IIS 7 answers 400. libhtp's
    optional "decode invalid" mode is not offered here.
[6] libhtp terminates the path at a NUL only when configured
    (``nul_encoded_terminates``, ``nul_raw_terminates``, default off for
    every personality): the NUL is kept and reported. ``Personality(...,
    nul_terminates=True)`` cuts the path there (C string file APIs).

Overlong UTF-8: the classic IIS unicode traversal ``/scripts/..%c0%af../``
decodes to ``/scripts/../../`` and then resolves. ``generic`` folds only
well-formed overlong sequences (lead byte, then 10xxxxxx continuation
bytes), which no valid UTF-8 or sensible Latin-1 text contains. ``iis``
also takes the C0/C1 leads with any second byte the way IIS's decoder did,
by masking (``%c1%1c`` and ``%c1%9c`` are ``\\``, CVE-2000-0884).

Double decoding (CVE-2001-0333: IIS decoded twice): off by default; the
anomaly ``double_encoding`` is reported either way when a ``%`` produced by
decoding, or left by an invalid escape, starts a valid escape in the result
(``%255c``, ``%%35c``). With ``double_decode=True`` a second pass decodes it.

Anomalies (names, in the order first found): ``invalid_percent_encoding``,
``u_encoding``, ``double_encoding``, ``nul_byte``, ``overlong_utf8``,
``backslash``, ``encoded_separator``, ``dot_segment``,
``dot_segment_above_root``, ``multiple_slashes``, ``bare_byte`` (a raw,
unencoded byte >= 0x80).

Only the encoding anomalies (``ENCODING_ANOMALIES``: not the dot segments,
``//`` or ``\\``, which sloppy clients and links make too) raise the detect
stage's HTTP_URI_ENCODING_ANOMALY notice, once per direction.

Configuration: ``HttpConfig`` (ports, personality, backslash,
double_decode); the pipeline takes ``config.http`` when its Config has one.

Never raises on any bytes, and a typical target (no ``%``, ``\\``, NUL,
high byte, ``//`` or ``/.``) costs one regex search.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache

# HTTP service ports whose client->server streams are parsed (spec default).
HTTP_PORTS = (80, 8000, 8080, 3128)

# The anomalies that are encodings (the detect stage's
# HTTP_URI_ENCODING_ANOMALY notice); the path tricks (dot segments, ``//``,
# ``\\``) are normalized silently: sloppy clients and links make them too.
ENCODING_ANOMALIES = frozenset({
    "invalid_percent_encoding", "u_encoding", "double_encoding", "nul_byte",
    "overlong_utf8", "encoded_separator", "bare_byte"})


@dataclass(frozen=True)
class Personality:
    """How one kind of server reads a request target."""

    name: str
    u_decode: bool = True  # %uXXXX escapes
    separators_decode: bool = True  # %2f (and %5c when backslash) become separators
    backslash: bool = True  # \ is a path separator
    utf8: int = 1  # 0: bytes as-is; 1: fold strict overlong; 2: lenient + best fit (IIS)
    lowercase: bool = False  # case-insensitive file system
    nul_terminates: bool = False  # a NUL (raw or %00) ends the path


PERSONALITIES = {
    "generic": Personality("generic"),
    "apache": Personality("apache", u_decode=False, separators_decode=False,
                          backslash=False, utf8=0),
    "iis": Personality("iis", utf8=2, lowercase=True),
}


def get_personality(name: str = "generic", backslash: bool | None = None) -> Personality:
    """A named personality, optionally with ``\\`` handling overridden."""
    p = PERSONALITIES[name]
    if backslash is not None and backslash != p.backslash:
        p = replace(p, backslash=backslash)
    return p


@dataclass
class HttpConfig:
    """HTTP inspection settings (spec: the ports and ``\\`` are configurable).

    Kept here rather than in pakemon/config.py, which is the integrator's:
    the pipeline reads ``config.http`` when the Config has one, else these
    defaults.
    """

    ports: tuple = HTTP_PORTS
    personality: str = "generic"
    # None: the personality's own (generic and IIS read ``\`` as ``/``,
    # Apache does not); True or False overrides it
    backslash: bool | None = None
    double_decode: bool = False
    _resolved: Personality | None = field(default=None, init=False, repr=False, compare=False)

    def resolve(self) -> Personality:
        if self._resolved is None:
            self._resolved = get_personality(self.personality, self.backslash)
        return self._resolved


# --- tables -----------------------------------------------------------------

_HEX = [-1] * 256
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
del _i, _c

# Anything that could make the normalized target differ from the raw one.
_NEEDS_WORK = re.compile(rb"[%\\\x00\x80-\xff]|//|/\.|\A\.|\A[A-Za-z][A-Za-z0-9+.\-]*://")
# The same over a whole chunk of requests: nothing in it can normalize
# differently (a target starting with "." follows white space).
PLAIN_CHUNK_INTERESTING = re.compile(rb"[%\\\x00\x80-\xff]|//|/\.|\s\.")
_ABS_FORM = re.compile(rb"\A[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")
_HIGH = re.compile(rb"[\x80-\xff]")
_QUERY_START = re.compile(rb"[?#]")

# Best-fit look-alikes NFKD does not give (libhtp's map has them too).
_BESTFIT_EXTRA = {0x2044: 0x2F, 0x2215: 0x2F, 0x2216: 0x5C, 0x2236: 0x3A, 0x2212: 0x2D,
                  0x2010: 0x2D, 0x2011: 0x2D, 0x3000: 0x20}


@lru_cache(maxsize=4096)
def bestfit(cp: int) -> int:
    """One byte for a code point, the way IIS maps to the ANSI code page."""
    if cp < 0x100:
        return cp
    b = _BESTFIT_EXTRA.get(cp)
    if b is not None:
        return b
    try:
        d = unicodedata.normalize("NFKD", chr(cp))
    except Exception:  # noqa: BLE001 - lone surrogates and the like
        return 0x3F
    if d and ord(d[0]) < 0x80:
        return ord(d[0])
    return 0x3F  # '?', libhtp's bestfit_replacement_byte


def _note(an: list, name: str) -> None:
    if name not in an:
        an.append(name)


# --- character decoding -----------------------------------------------------

def _pct_decode(s: bytes, p: Personality, path: bool, an: list, marks: list | None):
    """One pass of %XX / %uXXXX decoding.

    Returns (bytearray, terminated). ``marks`` (when given) collects the
    output positions of each ``%`` that came from decoding or from an
    invalid escape: the double-encoding check looks there.
    """
    out = bytearray()
    i = 0
    n = len(s)
    find = s.find
    hexv = _HEX
    while True:
        j = find(b"%", i)
        if j < 0:
            out += s[i:]
            return out, False
        out += s[i:j]
        c1 = s[j + 1] if j + 1 < n else -1
        if c1 == 0x75 or c1 == 0x55:  # %u
            _note(an, "u_encoding")
            if (j + 5 < n and hexv[s[j + 2]] >= 0 and hexv[s[j + 3]] >= 0
                    and hexv[s[j + 4]] >= 0 and hexv[s[j + 5]] >= 0):
                if p.u_decode:
                    hi = hexv[s[j + 2]] * 16 + hexv[s[j + 3]]
                    lo = hexv[s[j + 4]] * 16 + hexv[s[j + 5]]
                    b = lo if hi == 0 else bestfit(hi * 256 + lo)
                    i = j + 6
                    if _emit(out, b, s, j, i, p, path, an, marks):
                        return out, True
                    continue
                # a server without %u: "%u" is an invalid escape, kept as is
                _note(an, "invalid_percent_encoding")
                out += b"%"
                i = j + 1
                continue
            _note(an, "invalid_percent_encoding")
            if marks is not None:
                marks.append(len(out))
            out += b"%"
            i = j + 1
            continue
        h1 = hexv[c1] if c1 >= 0 else -1
        h2 = hexv[s[j + 2]] if j + 2 < n else -1
        if h1 >= 0 and h2 >= 0:
            i = j + 3
            if _emit(out, h1 * 16 + h2, s, j, i, p, path, an, marks):
                return out, True
            continue
        _note(an, "invalid_percent_encoding")
        if marks is not None:
            marks.append(len(out))
        out += b"%"
        i = j + 1


def _emit(out, b, s, j, i, p, path, an, marks) -> bool:
    """Append decoded byte ``b`` (escape s[j:i]); True: the path ends here."""
    if b == 0x2F or (b == 0x5C and p.backslash):
        if path:
            _note(an, "encoded_separator")
            if not p.separators_decode:
                out += s[j:i]  # stays encoded, as Apache leaves it
                return False
    elif b == 0:
        _note(an, "nul_byte")
        if path and p.nul_terminates:
            return True
    elif b == 0x25 and marks is not None:
        marks.append(len(out))
    out.append(b)
    return False


def _double_encoded(buf: bytearray, marks: list) -> bool:
    n = len(buf)
    hexv = _HEX
    for k in marks:
        if k + 2 < n and hexv[buf[k + 1]] >= 0 and hexv[buf[k + 2]] >= 0:
            return True
        if (k + 5 < n and buf[k + 1] in (0x75, 0x55) and hexv[buf[k + 2]] >= 0
                and hexv[buf[k + 3]] >= 0 and hexv[buf[k + 4]] >= 0 and hexv[buf[k + 5]] >= 0):
            return True
    return False


def _utf8_fold(buf: bytearray, mode: int, an: list) -> bytearray:
    """Fold overlong UTF-8 to ASCII (mode 1), and best-fit the rest (mode 2)."""
    out = bytearray()
    i = 0
    n = len(buf)
    search = _HIGH.search
    while i < n:
        m = search(buf, i)
        if m is None:
            out += buf[i:]
            break
        k = m.start()
        out += buf[i:k]
        b0 = buf[k]
        cp = -1
        ln = 1
        if 0xC0 <= b0 <= 0xDF and k + 1 < n:
            b1 = buf[k + 1]
            if 0x80 <= b1 <= 0xBF or (mode == 2 and b0 <= 0xC1):
                cp = ((b0 & 0x1F) << 6) | (b1 & 0x3F)
                ln = 2
        elif 0xE0 <= b0 <= 0xEF and k + 2 < n:
            b1, b2 = buf[k + 1], buf[k + 2]
            if 0x80 <= b1 <= 0xBF and 0x80 <= b2 <= 0xBF:
                cp = ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F)
                ln = 3
        elif 0xF0 <= b0 <= 0xF7 and k + 3 < n:
            b1, b2, b3 = buf[k + 1], buf[k + 2], buf[k + 3]
            if 0x80 <= b1 <= 0xBF and 0x80 <= b2 <= 0xBF and 0x80 <= b3 <= 0xBF:
                cp = (((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((b2 & 0x3F) << 6)
                      | (b3 & 0x3F))
                ln = 4
        if cp < 0:
            out.append(b0)  # not UTF-8: the byte as is (Latin-1 text, binary)
            i = k + 1
            continue
        if cp < 0x80 or (ln == 3 and cp < 0x800) or (ln == 4 and cp < 0x10000):
            _note(an, "overlong_utf8")
            if cp < 0x80:
                if cp == 0:
                    _note(an, "nul_byte")
                out.append(cp)
                i = k + ln
                continue
        if mode == 2:
            out.append(bestfit(cp) if cp <= 0xFFFF else 0x3F)
        else:
            out += buf[k:k + ln]
        i = k + ln
    return out


def _decode(s: bytes, p: Personality, path: bool, double_decode: bool, an: list):
    """Character decoding of one part: (bytes, terminated)."""
    if not s:
        return s, False
    if b"\0" in s:
        _note(an, "nul_byte")
        if path and p.nul_terminates:
            s = s[:s.index(b"\0")]
    if _HIGH.search(s) is not None:
        _note(an, "bare_byte")
    term = False
    if b"%" in s:
        marks: list = []
        buf, term = _pct_decode(s, p, path, an, marks)
        if marks and _double_encoded(buf, marks):
            _note(an, "double_encoding")
            if double_decode and not term:
                buf, term = _pct_decode(bytes(buf), p, path, an, None)
    else:
        buf = s
    if p.utf8 and _HIGH.search(buf) is not None:
        before = len(buf)
        buf = _utf8_fold(bytearray(buf), p.utf8, an)
        if path and p.nul_terminates and len(buf) != before and 0 in buf:
            buf = buf[:buf.index(0)]
            term = True
    return bytes(buf), term


# --- path structure ---------------------------------------------------------

def _path_ops(path: bytes, p: Personality, an: list) -> bytes:
    if b"\\" in path:
        _note(an, "backslash")
        if p.backslash:
            path = path.replace(b"\\", b"/")
    if b"//" not in path and b"." not in path:
        return path
    absolute = path[:1] == b"/"
    parts = path.split(b"/")
    if absolute:
        del parts[0]
    last = len(parts) - 1
    stack = []
    trailing = False
    for idx, seg in enumerate(parts):
        if not seg:
            if idx != last:
                _note(an, "multiple_slashes")
            trailing = True
        elif seg == b".":
            _note(an, "dot_segment")
            trailing = True
        elif seg == b"..":
            _note(an, "dot_segment")
            if stack:
                stack.pop()
            else:
                _note(an, "dot_segment_above_root")
            trailing = True
        else:
            stack.append(seg)
            trailing = False
    out = b"/".join(stack)
    if absolute:
        out = b"/" + out
    if trailing and stack:
        out += b"/"
    return out


# --- entry point ------------------------------------------------------------

def normalize_uri(raw: bytes, personality="generic",
                  double_decode: bool = False) -> tuple[bytes, list[str]]:
    """The request target as ``personality``'s server reads it, and anomalies.

    ``personality``: "generic", "apache", "iis" or a :class:`Personality`.
    """
    p = personality if isinstance(personality, Personality) else PERSONALITIES[personality]
    if type(raw) is not bytes:
        raw = bytes(raw)
    if _NEEDS_WORK.search(raw) is None:
        if not p.lowercase:
            return raw, []
        m = _QUERY_START.search(raw)
        if m is None:
            return raw.lower(), []
        return raw[:m.start()].lower() + raw[m.start():], []
    an: list[str] = []
    prefix = b""
    rest = raw
    m = _ABS_FORM.match(raw)
    if m is not None:
        prefix = raw[:m.end()]
        rest = raw[m.end():]
    m = _QUERY_START.search(rest)
    if m is None:
        path, query = rest, b""
    else:
        path, query = rest[:m.start()], rest[m.start():]
    path, term = _decode(path, p, True, double_decode, an)
    path = _path_ops(path, p, an)
    if p.lowercase:
        path = path.lower()
    if query:
        query, _ = _decode(query, p, False, double_decode, an)
    return prefix + path + query, an
