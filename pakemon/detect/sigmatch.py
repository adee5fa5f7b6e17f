"""Detect stage: Suricata's payload inspection of one buffer for one rule.

``pakemon.detect.sigengine`` groups a candidate rule's ``elements`` (from
``pakemon.detect.suricata_parser``) by buffer, keeping rule order, and asks
this module whether one buffer's elements match its bytes::

    compiled = compile_elements(elements)      # once per rule+buffer (cached)
    inspect_buffer(compiled, data, env) -> bool

``env`` is one dict per rule evaluation, shared by the rule's buffers: a
``byte_extract`` stores its value under its name, and a later byte_test /
byte_jump / isdataat / content offset, depth, distance or within written as
that name reads it (a name not set yet: that element does not match).

Semantics: Suricata's ``DetectEngineContentInspection``
--------------------------------------------------------
The model is a cursor, the *detection pointer* (Suricata's
``buffer_offset``): it starts at 0; a matched content or pcre moves it to
the end of its match, byte_jump moves it to the jump target, byte_extract
past the bytes it read. Relative elements (distance/within, pcre ``R``,
``relative``) are placed from it; absolute ones ignore it.

- content: absolute window ``[offset, offset+depth)``; relative window
  ``[ptr+distance, ptr+distance+within)`` (distance may be negative; the
  start is clamped to 0). ``startswith`` is ``offset:0; depth:len``;
  ``endswith`` needs the match to end at the end of the buffer; nocase folds
  ASCII only; ``rawbytes`` changes nothing here.
- Backtracking: when a later element fails, a content is retried at its next
  occurrence (the one-byte-later search of Suricata's ``do { } while``
  loop), and a pcre at its next match. As in Suricata this only happens
  when something after it depends on it through ``within`` or a relative
  pcre/isdataat/byte_* (Suricata's ``DETECT_CONTENT_WITHIN_NEXT`` /
  ``RELATIVE_NEXT`` flags, computed here by ``compile_elements``): a later
  content with only ``distance`` can't be helped by a later occurrence
  (its window only shrinks), so the whole inspection gives up instead.
  Failures that no retry can repair (an absolute content that is not in its
  window, an absolute isdataat, bsize) also end the inspection at once.
- Each step of the search counts against ``RECURSION_LIMIT`` (Suricata's
  ``inspection-recursion-limit``, 3000): a hostile buffer that makes a rule
  backtrack without end gets "no match" once the budget is spent.
- pcre time: a regex an attacker can feed makes Python's ``re`` take
  exponential time (ET 2020318's ``(?:\\s*?[a-z]+\\s*?)*?`` on a run of
  letters never ends; ET 2016175's ``<[^>]*\\s...`` on 100 KB of ``<`` takes
  about 45 s), and ``re`` cannot be stopped. Suricata bounds PCRE with its
  match limit and takes the keyword as not matching. Here the searches run
  on the ``regex`` module (same syntax, with a timeout) and one inspection's
  pcre searches share ``PCRE_TIME_LIMIT`` CPU seconds; past it the pcre does not
  match, negated or not (Suricata's error path), and ``LIMITS`` counts it
  (``sig_pcre_time_limit``). Without the module, ``re`` runs unbounded.
- Negation: a negated content matches when the pattern is absent from its
  window and does not move the pointer; a negated pcre likewise.
- pcre: the subject of a relative pcre starts at the pointer, so ``^``
  anchors there (PCRE semantics: Suricata passes ``buffer + offset``); a
  retry searches again from the previous match start + 1, where ``^`` no
  longer matches (in PCRE and Python alike).
- byte_test / byte_jump / byte_extract follow Suricata's ``*DoMatch``:
  numbers are big endian unless ``little`` (``dce``: little endian, the DCE/
  RPC byte order we don't track per flow); ``string`` reads text like C's
  ``strtoull`` (leading blanks, sign, ``0x`` for hex, digits until the
  first non-digit: a field with none doesn't match); a bitmask ANDs then
  shifts right by its trailing zero bits; byte_jump jumps from the end of the
  bytes it read (``from_beginning``: from 0, ``from_end``: from the buffer
  end), a jump before the start lands on 0, beyond the end fails.

Deliberate differences from Suricata's C code (its integer wrap-arounds):
a relative window that ends before the buffer start (a large negative
distance) is empty here, where Suricata's unsigned arithmetic searches the
whole buffer; a negated ``endswith`` content fails exactly when the window
ends with the pattern, where Suricata only checks the first occurrence.

Performance: everything that depends only on the rule is computed once in
``compile_elements`` (lower-cased nocase patterns, fixed windows, retry
flags, the kind that indexes a dispatch table); per call the buffer is
lowered at most once (only for rules with a nocase content) and contents use
``bytes.find`` with start/end bounds, no regex. A buffer with one fixed-place
content (most rules) skips the search machinery altogether. Raw element
tuples are compiled once and remembered (see ``inspect_buffer``).
"""

from __future__ import annotations

import binascii
import math
import re
import time
from collections import Counter

from pakemon.detect.asn1 import asn1_matches
from pakemon.detect.ruletree import first_match_end, hs_compile
from pakemon.detect.ruletree import hyperscan as _hs  # (optional: None without it)
from pakemon.detect.suricata_parser import (
    Asn1Check,
    Base64Decode,
    BufferSize,
    ByteExtract,
    ByteJump,
    ByteMath,
    ByteTest,
    ContentMatch,
    DatarepCheck,
    DatasetCheck,
    EntropyCheck,
    IsDataAt,
    PcreMatch,
)

__all__ = ["RECURSION_LIMIT", "CompiledElements", "compile_elements", "inspect_buffer"]

# Suricata's default detect.inspection-recursion-limit. Read at each call
# (module global) so a test can raise it to compare against an exhaustive
# reference.
RECURSION_LIMIT = 3000

try:
    import regex as _regex
except ImportError:  # pragma: no cover - a dependency; re stays, unbounded
    _regex = None

# CPU seconds of pcre searching one inspection may spend (see module doc).
# Generous: the regex module can be several times slower than re on a
# heavy pcre that does match (ET 2102681 on its own test sample, 2 KB: 94 ms
# against re's 18), and those matches must not be lost; a hostile input
# costs at most this, where it never ended before.
PCRE_TIME_LIMIT = 0.5
# Inspections cut by it, for the engine's counters (sig_pcre_time_limit).
LIMITS = {"pcre_time_limit": 0}

_RE_TO_REGEX = ((re.IGNORECASE, "I"), (re.MULTILINE, "M"), (re.DOTALL, "S"), (re.VERBOSE, "X"))
_TIMED: dict = {}


_PREFILTERS: dict = {}
_OPEN_MIN = re.compile(r"(?<!\\)\{,")


def _prefilter(src: str, flags: str):
    """The pcre as written, compiled by hyperscan in prefilter mode: a
    block database that matches wherever PCRE would (and maybe elsewhere:
    back-references, lookarounds and the like are widened), or False.

    A pcre an attacker feeds mostly costs when it does not match: every
    start is tried and backtracks (ET 2016175's ``<[^>]*\\s...`` on 100 KB
    of ``<``: 45 s in ``re``, cut at PCRE_TIME_LIMIT by ``regex``). Hyperscan
    reads the subject once; where it finds nothing, nothing is searched."""
    if _hs is None:
        return False
    key = (src, flags)
    db = _PREFILTERS.get(key)
    if db is not None:
        return db
    if _OPEN_MIN.search(re.sub(r"\\\\", "", src)) is not None:
        # {,n}: a quantifier for the translation (and PCRE2 from 10.43), a
        # literal for hyperscan (older PCRE): it would not be a superset
        return False
    hs_flags = _hs.HS_FLAG_PREFILTER | _hs.HS_FLAG_SINGLEMATCH | _hs.HS_FLAG_ALLOWEMPTY
    for f, name in (("i", "HS_FLAG_CASELESS"), ("s", "HS_FLAG_DOTALL"),
                    ("m", "HS_FLAG_MULTILINE")):
        if f in flags:
            hs_flags |= getattr(_hs, name)
    expr = ("(?x)" + src if "x" in flags else src).encode("utf-8", "surrogateescape")
    # (what it cannot read even widened: the search alone)
    db = hs_compile(expr, hs_flags) or False
    if len(_PREFILTERS) < 65536:
        _PREFILTERS[key] = db
    return db


def _timed(rx):
    """The ``regex`` module's compile of an ``re`` pattern (its flags mapped
    one by one: the two modules' flag values differ, ``re.ASCII`` is
    ``regex.V1``), or None if the module is missing or refuses it."""
    if _regex is None:
        return None
    key = (rx.pattern, rx.flags)
    if key in _TIMED:
        return _TIMED[key]
    flags = _regex.V0
    for bit, name in _RE_TO_REGEX:
        if rx.flags & bit:
            flags |= getattr(_regex, name)
    try:
        out = _regex.compile(rx.pattern, flags)
    except Exception:  # (its own error type; re accepted it: keep re)
        out = None
    if len(_TIMED) < 65536:
        _TIMED[key] = out
    return out

_U64 = (1 << 64) - 1
_REP_OPS = {">": int.__gt__, "<": int.__lt__, "==": int.__eq__}
_FLOAT_OPS = {
    "=": lambda x, v, _: x == v, "!=": lambda x, v, _: x != v, "<": lambda x, v, _: x < v,
    "<=": lambda x, v, _: x <= v, ">": lambda x, v, _: x > v, ">=": lambda x, v, _: x >= v,
    "<>": lambda x, v, w: v < x < w,
}


def shannon_entropy(data: bytes) -> float:
    """Bits per byte (0 for no bytes), as Suricata's calculate_entropy."""
    n = len(data)
    if not n:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())
# isdataat with a byte_extract value at least this big: Suricata treats it
# as "never there" without computing positions.
_ISDATAAT_VAR_MAX = 100_000_000

# kinds of compiled nodes
_CONTENT, _PCRE, _ISDATAAT, _BSIZE, _BTEST, _BJUMP, _BEXTRACT, _NEVER, _ASN1, _BMATH, _B64, \
    _DSET, _ENTROPY = range(13)


class _Node:
    """One compiled element; the fields used depend on ``kind``."""

    __slots__ = (
        "kind", "src", "pat", "plen", "nocase", "negated", "relative", "endswith", "simple",
        "offset", "depth", "distance", "within", "static_window", "retry", "give_up",
        "regex", "compare", "nbytes", "op", "value", "big", "base", "bitmask", "shift",
        "multiplier", "align", "from_beginning", "from_end", "post_offset", "name", "timed",
        "hs", "result_mask", "sub",
    )  # fmt: skip

    def __init__(self, kind: int, src) -> None:
        self.kind = kind
        self.src = src
        self.retry = False
        self.give_up = False
        self.relative = False
        self.negated = False
        self.bitmask = None
        self.shift = 0
        self.simple = False

    def __repr__(self) -> str:
        return f"_Node({self.kind}, {self.src!r})"


class CompiledElements(tuple):
    """``compile_elements``' result: the nodes of one rule's buffer."""

    __slots__ = ()


def _is_var(v) -> bool:
    return isinstance(v, str)


def _int_or_var(v, default=None):
    """An int field, a byte_extract name (str), or ``default`` for None.

    Anything else (a float, a bool from a future parser) is coerced to int
    when it can be, so bad input never raises at match time."""
    if v is None:
        return default
    if isinstance(v, str):
        return v
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _mask_shift(mask) -> tuple[int | None, int]:
    if mask is None:
        return None, 0
    try:
        mask = int(mask)
    except (TypeError, ValueError):
        return None, 0
    shift = 0
    if mask > 0:
        while not (mask >> shift) & 1:
            shift += 1
    return mask, shift


def _compile_one(e) -> _Node:
    if isinstance(e, ContentMatch):
        n = _Node(_CONTENT, e)
        pat = bytes(e.pattern or b"")
        n.nocase = bool(e.nocase)
        n.pat = pat.lower() if n.nocase else pat
        n.plen = len(pat)
        n.negated = bool(e.negated)
        n.endswith = bool(e.endswith)
        n.distance = _int_or_var(e.distance)
        n.within = _int_or_var(e.within)
        n.relative = e.distance is not None or e.within is not None
        n.offset = _int_or_var(e.offset, 0)
        n.depth = _int_or_var(e.depth)
        if e.startswith:
            if n.relative:
                # "begins right where the window begins"
                if n.distance is None:
                    n.distance = 0
                if n.within is None:
                    n.within = n.plen
            else:
                n.offset = 0 if e.offset is None else n.offset
                if n.depth is None:
                    n.depth = n.plen
        # absolute window known at compile time: (start, end or None)
        n.static_window = None
        if not n.relative and not _is_var(n.offset) and not _is_var(n.depth):
            n.static_window = (n.offset, None if n.depth is None else n.offset + n.depth)
        return n
    if isinstance(e, PcreMatch):
        n = _Node(_PCRE, e)
        n.regex = e.regex
        n.relative = bool(e.relative)
        n.negated = bool(e.negated)
        n.timed = False
        n.hs = None  # the prefilter: made on first use (False: none)
        if n.regex is None or not hasattr(n.regex, "search"):
            n.kind = _NEVER
        elif isinstance(n.regex, re.Pattern):
            t = _timed(n.regex)
            if t is not None:
                n.regex, n.timed = t, True
        return n
    if isinstance(e, IsDataAt):
        n = _Node(_ISDATAAT, e)
        n.offset = _int_or_var(e.offset, 0)
        n.relative = bool(e.relative)
        n.negated = bool(e.negated)
        return n
    if isinstance(e, Asn1Check):
        n = _Node(_ASN1, e)
        n.relative = e.relative_offset is not None
        n.offset = e.relative_offset if n.relative else (e.absolute_offset or 0)
        return n
    if isinstance(e, BufferSize):
        n = _Node(_BSIZE, e)
        n.compare = e.compare
        return n
    if isinstance(e, DatasetCheck):
        n = _Node(_DSET, e)
        n.op = e.cmd
        n.value = e.set
        return n
    if isinstance(e, EntropyCheck):
        n = _Node(_ENTROPY, e)
        n.offset = int(e.offset)
        n.nbytes = int(e.nbytes)
        return n
    if isinstance(e, DatarepCheck):
        n = _Node(_DSET, e)
        n.op = e.op
        n.value = e.set
        n.compare = e.value
        return n
    if isinstance(e, ByteTest):
        n = _Node(_BTEST, e)
        _byte_common(n, e)
        n.op = e.op
        n.negated = bool(e.negated)
        n.value = _int_or_var(e.value, 0)
        n.offset = _int_or_var(e.offset, 0)
        if n.op not in ("<", ">", "=", "<=", ">=", "&", "^"):
            n.kind = _NEVER
        return n
    if isinstance(e, ByteJump):
        n = _Node(_BJUMP, e)
        _byte_common(n, e)
        n.offset = _int_or_var(e.offset, 0)
        n.multiplier = _int_or_var(e.multiplier, 1)
        n.align = 4 if e.align else 0
        n.from_beginning = bool(e.from_beginning)
        n.from_end = bool(e.from_end)
        n.post_offset = _int_or_var(e.post_offset, 0)
        if _is_var(n.multiplier) or _is_var(n.post_offset):
            n.kind = _NEVER  # not variables in Suricata either
        return n
    if isinstance(e, ByteExtract):
        n = _Node(_BEXTRACT, e)
        _byte_common(n, e)
        n.offset = _int_or_var(e.offset, 0)
        n.multiplier = _int_or_var(e.multiplier, 1)
        n.align = _int_or_var(e.align, 0) or 0
        n.name = e.name
        if _is_var(n.multiplier) or _is_var(n.align) or not isinstance(n.name, str):
            n.kind = _NEVER
        return n
    if isinstance(e, Base64Decode):
        n = _Node(_B64, e)
        n.relative = bool(e.relative)
        n.offset = int(e.offset)
        n.nbytes = int(e.nbytes) or 65535
        n.sub = compile_elements(e.data) if e.data else None
        return n
    if isinstance(e, ByteMath):
        n = _Node(_BMATH, e)
        _byte_common(n, e)
        # (its bitmask applies to the result, not to the field as read)
        n.op, n.bitmask, n.shift = e.oper, None, 0
        n.result_mask = _mask_shift(e.bitmask)
        n.offset = _int_or_var(e.offset, 0)
        n.value = _int_or_var(e.rvalue, 0)
        n.name = e.name
        if not isinstance(n.name, str):
            n.kind = _NEVER
        return n
    # An element this module doesn't know can't be evaluated: the rule must
    # not fire on a guess.
    return _Node(_NEVER, e)


def _byte_common(n: _Node, e) -> None:
    n.nbytes = _int_or_var(e.nbytes, 0)
    n.relative = bool(e.relative)
    n.big = bool(e.big_endian) and not e.dce
    n.base = e.string_base
    n.bitmask, n.shift = _mask_shift(e.bitmask)
    if _is_var(n.nbytes) or not 0 < n.nbytes <= (23 if n.base else 8):
        n.kind = _NEVER


def compile_elements(elements) -> CompiledElements:
    """Pre-process one rule's elements for one buffer (in rule order).

    Also computes Suricata's retry flags: a content is retried at its next
    occurrence only when the next relative element that refers to it (the
    nearest following one, with no other content/pcre in between) is a
    content with ``within``, a negated content with ``distance``, or a
    relative pcre / isdataat / byte_*; a pcre is retried for any relative
    follower."""
    try:
        items = tuple(elements)
    except TypeError:
        items = (None,)  # not a sequence: a rule we can't evaluate
    nodes = []
    for e in items:
        try:
            nodes.append(_compile_one(e))
        except (TypeError, ValueError, AttributeError, OverflowError):
            nodes.append(_Node(_NEVER, e))  # malformed fields: never matches
    prev = None  # the last content/pcre node: what a relative element refers to
    for n in nodes:
        if n.relative and prev is not None:
            if prev.kind == _PCRE:
                prev.retry = True
            elif n.kind == _CONTENT:
                if n.within is not None or n.negated:
                    prev.retry = True
            else:
                prev.retry = True
        if n.kind in (_CONTENT, _PCRE) or isinstance(n.src, (ContentMatch, PcreMatch)):
            prev = n
    if len(nodes) == 1:
        n = nodes[0]
        # the commonest rule buffer: one content at a fixed place
        n.simple = n.kind == _CONTENT and n.static_window is not None and not n.endswith
    for n in nodes:
        if n.kind == _CONTENT:
            # Suricata's DETECT_CONTENT_IS_SINGLE for a negated content:
            # found means no position of the rest can help.
            n.give_up = not (
                n.relative or n.retry or n.depth is not None or n.offset or _is_var(n.offset)
            )
    return CompiledElements(nodes)


def inspect_buffer(elements, data: bytes, env: dict | None = None) -> bool:
    """Whether one buffer's elements match ``data`` (see module docstring).

    ``elements``: ``compile_elements``' result, or the raw parser elements:
    a raw *tuple* is compiled once and remembered by identity (the tuple is
    kept alive with it, so its id can't be reused by another object), any
    other sequence is compiled at each call. Never raises on odd input: a
    bad element or missing variable is a non-match."""
    if type(elements) is not CompiledElements:
        elements = _compiled(elements)
    if not elements:
        return True
    if not isinstance(data, bytes):
        try:
            data = bytes(data)
        except (TypeError, ValueError):
            return False
    first = elements[0]
    if first.simple:
        start, end = first.static_window
        hay = data.lower() if first.nocase else data
        found = hay.find(first.pat, start, len(data) if end is None else end)
        return (found < 0) if first.negated else (found >= 0)
    run = _Run(elements, data, env if env is not None else {})
    try:
        return run.step(0) == 1
    except RecursionError:
        return False


def cross_span(elements) -> int | None:
    """For elements that are one positive content anywhere in the buffer
    (no offset, depth or end anchor): its length less one, the bytes before
    a chunk that a match crossing into the chunk can use. None for any
    other shape (several elements, a negation, an anchor, a pcre)."""
    if type(elements) is not CompiledElements:
        elements = _compiled(elements)
    if len(elements) != 1:
        return None
    n = elements[0]
    if n.kind != _CONTENT or n.negated or n.endswith or n.static_window != (0, None):
        return None
    return n.plen - 1


def suffix_monotone(elements) -> bool:
    """Whether cutting bytes off the front of a buffer can only take matches
    away, never make one: every element a positive content, each either
    relative to the one before or anywhere in the buffer (no offset, depth,
    end anchor, negation, pcre, byte or size test)."""
    if type(elements) is not CompiledElements:
        elements = _compiled(elements)
    if not elements:
        return False
    for n in elements:
        if n.kind != _CONTENT or n.negated or n.endswith:
            return False
        if not n.relative and n.static_window != (0, None):
            return False
        if n.relative and (_is_var(n.distance) or n.distance is not None and n.distance < 0):
            return False
    return True


# id(raw tuple) -> (raw tuple, compiled): the engine may hand us the parser's
# element tuples as they are; compiling them per call would cost more than
# the matching itself.
_CACHE: dict[int, tuple[object, CompiledElements]] = {}
_CACHE_MAX = 65536


def _compiled(elements) -> CompiledElements:
    hit = _CACHE.get(id(elements))
    if hit is not None and hit[0] is elements:
        return hit[1]
    compiled = compile_elements(elements)
    if type(elements) is tuple:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[id(elements)] = (elements, compiled)
    return compiled


def _resolve(v, env):
    """An int, or a byte_extract name looked up in env (None if unset)."""
    if type(v) is int:
        return v
    got = env.get(v)
    return got if type(got) is int else None


_BLANKS = b" \t\n\v\f\r"
_DIGITS = {
    8: frozenset(b"01234567"),
    10: frozenset(b"0123456789"),
    16: frozenset(b"0123456789abcdefABCDEF"),
}


def _strtoull(chunk: bytes, base: int) -> tuple[int, int] | None:
    """C ``strtoull`` on ``chunk`` (Suricata's ByteExtractStringUint64):
    (value, characters consumed), or None for no number / overflow."""
    digits = _DIGITS.get(base)
    if digits is None:
        return None
    n = len(chunk)
    i = 0
    while i < n and chunk[i] in _BLANKS:
        i += 1
    neg = False
    if i < n and chunk[i] in b"+-":
        neg = chunk[i] == 0x2D
        i += 1
    if base == 16 and chunk[i : i + 2] in (b"0x", b"0X") and i + 2 < n and chunk[i + 2] in digits:
        i += 2
    start = i
    while i < n and chunk[i] in digits:
        i += 1
    if i == start:
        return None
    value = int(chunk[start:i], base)
    if value > _U64:
        return None
    if neg:
        value = -value & _U64
    return value, i


class _OutOfTime(Exception):
    """An inspection's pcre time is spent (PCRE_TIME_LIMIT)."""


class _Run:
    """One inspection: the buffer, the detection pointer, the budget."""

    __slots__ = ("nodes", "last", "data", "lower", "n", "ptr", "budget", "env", "view",
                 "deadline")

    def __init__(self, nodes: CompiledElements, data: bytes, env: dict) -> None:
        self.nodes = nodes
        self.last = len(nodes) - 1
        self.data = data
        self.lower = None
        self.n = len(data)
        self.ptr = 0
        self.budget = RECURSION_LIMIT
        self.env = env
        self.view = None
        self.deadline = 0.0  # of the pcre searches: set by the first one

    # Every step returns 1 (this and all later elements matched), 0 (no
    # match here; an earlier element may retry) or -1 (no match, stop).

    def step(self, i: int) -> int:
        self.budget -= 1
        if self.budget <= 0:
            return -1
        node = self.nodes[i]
        return _STEPS[node.kind](self, node, i)

    def _next(self, i: int) -> int:
        if i == self.last:
            return 1
        return self.step(i + 1)

    def _never(self, node: _Node, i: int) -> int:
        return -1

    # ------------------------------------------------------------- content

    def _content(self, node: _Node, i: int) -> int:
        n = self.n
        env = self.env
        if node.relative:
            base = self.ptr
            dist = 0
            if node.distance is not None:
                dist = _resolve(node.distance, env)
                if dist is None:
                    return 0
            start = base + dist
            end = n
            if node.within is not None:
                within = _resolve(node.within, env)
                if within is None:
                    return 0
                if start + within < end:
                    end = start + within
            if start < 0:
                start = 0
        elif node.static_window is not None:
            start, end = node.static_window
            if end is None or end > n:
                end = n
        else:
            start = _resolve(node.offset, env)
            if start is None:
                return 0
            end = n
            if node.depth is not None:
                depth = _resolve(node.depth, env)
                if depth is None:
                    return 0
                if start + depth < end:
                    end = start + depth
        if end > n:
            end = n
        negated = node.negated
        if start > end or end <= 0:
            return self._next(i) if negated else 0

        if node.nocase:
            hay = self.lower
            if hay is None:
                hay = self.lower = self.data.lower()
        else:
            hay = self.data
        pat = node.pat
        plen = node.plen

        if node.endswith:
            # only an occurrence ending at the buffer end counts: one place
            pos = n - plen
            found = pos if end == n and pos >= start and hay.startswith(pat, pos) else -1
            if negated:
                if found < 0:
                    return self._next(i)
                return -1 if node.give_up else 0
            if found < 0:
                return 0 if node.relative else -1
            self.ptr = n
            r = self._next(i)
            if r:
                return r
            if not node.retry:
                return -1
            # no later occurrence can end at the buffer end either
            return 0 if node.relative else -1

        found = hay.find(pat, start, end)
        if negated:
            if found < 0:
                return self._next(i)
            return -1 if node.give_up else 0
        if found < 0:
            # independent of earlier positions: nothing can repair it
            return 0 if node.relative else -1
        last = i == self.last
        while True:
            self.ptr = found + plen
            if last:
                return 1
            r = self.step(i + 1)
            if r:
                return r
            if not node.retry:
                return -1
            found = hay.find(pat, found + 1, end)
            if found < 0:
                return 0 if node.relative else -1

    # ---------------------------------------------------------------- pcre

    def _pcre(self, node: _Node, i: int) -> int:
        base = self.ptr if node.relative else 0
        if base:
            view = self.view
            if view is None:
                view = self.view = memoryview(self.data)
            subject = view[base:]
        else:
            subject = self.data
        try:
            m = self._search(node, subject, 0)
        except _OutOfTime:
            return -1  # the rule does not match
        except (TypeError, ValueError, RecursionError, OverflowError):
            return 0
        if node.negated:
            return 0 if m else self._next(i)
        if m is None:
            return 0
        while True:
            self.ptr = base + m.end()
            r = self._next(i)
            if r or not node.retry:
                return r
            start = m.start() + 1
            if start > len(subject):
                return 0
            try:
                m = self._search(node, subject, start)
            except _OutOfTime:
                return -1
            if m is None:
                return 0

    def _search(self, node: _Node, subject, start: int):
        """node's regex searched from ``start``; _OutOfTime once this
        inspection's pcre time is spent."""
        regex = node.regex
        if not start:
            hs = node.hs
            if hs is None:
                e = node.src
                hs = node.hs = _prefilter(e.source, e.flags) if isinstance(
                    e, PcreMatch) else False
            if hs is not False and first_match_end(hs, subject) < 0:
                return None  # (no match at all)
        if not node.timed:
            return regex.search(subject, start)
        # CPU time, as the regex module counts its timeout: a sensor that
        # waits for the CPU under load does not lose matches for it
        now = time.process_time()
        if self.deadline == 0.0:
            self.deadline = now + PCRE_TIME_LIMIT
        left = self.deadline - now
        if left <= 0:
            raise _OutOfTime
        try:
            return regex.search(subject, start, timeout=left)
        except TimeoutError:
            LIMITS["pcre_time_limit"] += 1
            self.deadline = -1.0
            raise _OutOfTime from None

    # ------------------------------------------------------------ isdataat

    def _isdataat(self, node: _Node, i: int) -> int:
        at = node.offset
        var = type(at) is not int
        if var:
            at = _resolve(at, self.env)
            if at is None:
                return 0
            if at >= _ISDATAAT_VAR_MAX:
                return self._next(i) if node.negated else 0
        if node.relative:
            there = self.ptr + at <= self.n
        else:
            there = at < self.n
        if there != node.negated:
            return self._next(i)
        # absolute, or a relative one that fails on the earliest pointer:
        # a later pointer can't help a positive relative test either
        if node.relative and node.negated:
            return 0
        return 0 if var else -1

    def _asn1(self, node: _Node, i: int) -> int:
        at = self.ptr + node.offset if node.relative else node.offset
        if at < 0 or at >= self.n:
            return 0 if node.relative else -1
        e = node.src
        if asn1_matches(self.data[at:], e.oversize_length, e.bitstring_overflow,
                        e.double_overflow):
            return self._next(i)
        return 0 if node.relative else -1

    def _dataset(self, node: _Node, i: int) -> int:
        # the whole buffer, wherever the elements before it matched (an
        # empty buffer matches no command, as in Suricata)
        data, ds, cmd = self.data, node.value, node.op
        if not data:
            return -1
        if cmd == "isset":
            ok = data in ds.values
        elif cmd == "isnotset":
            ok = data not in ds.values
        elif cmd == "set":
            ok = ds.add(data) == 1
        elif cmd == "unset":
            ok = ds.remove(data)
        else:  # datarep: in the set, its reputation compared
            ok = data in ds.values and _REP_OPS[cmd](ds.reps.get(data, 0), node.compare)
        return self._next(i) if ok else -1

    def _entropy(self, node: _Node, i: int) -> int:
        # (absolute: an offset or byte count past the buffer never matches)
        data, n = self.data, self.n
        start = node.offset if node.offset > 0 else 0
        if start > n or node.nbytes > n - start:
            return -1
        chunk = data[start:start + node.nbytes] if node.nbytes else data[start:]
        e = node.src
        return self._next(i) if _FLOAT_OPS[e.op](shannon_entropy(chunk), e.value, e.value2) \
            else -1

    def _bsize(self, node: _Node, i: int) -> int:
        try:
            ok = node.compare.matches(self.n)
        except Exception:  # a malformed compare object: no match, no traceback
            ok = False
        return self._next(i) if ok else -1

    # ------------------------------------------------------------- byte_*

    def _read(self, node: _Node, pos: int) -> tuple[int, int] | None:
        """(value, bytes consumed) of the field at ``pos`` (in the buffer)."""
        chunk = self.data[pos : pos + node.nbytes]
        if node.base:
            got = _strtoull(chunk, node.base)
            if got is None:
                return None
            value, used = got
        else:
            value = int.from_bytes(chunk, "big" if node.big else "little")
            used = node.nbytes
        if node.bitmask is not None:
            value &= node.bitmask
            if value and node.shift:
                value >>= node.shift
        return value, used

    def _field_pos(self, node: _Node) -> int | None:
        """Where the field starts, or None when it isn't wholly in the buffer."""
        if self.n == 0:
            return None
        offset = _resolve(node.offset, self.env)
        if offset is None:
            return None
        pos = offset + self.ptr if node.relative else offset
        remaining = self.n - pos
        if node.relative and remaining <= 0:
            return None
        if pos < 0 or node.nbytes > remaining:
            return None
        return pos

    def _byte_test(self, node: _Node, i: int) -> int:
        pos = self._field_pos(node)
        if pos is None:
            return 0
        got = self._read(node, pos)
        if got is None:
            return 0
        value = _resolve(node.value, self.env)
        if value is None:
            return 0
        v = got[0]
        op = node.op
        if op == "=":
            ok = v == value
        elif op == "<":
            ok = v < value
        elif op == ">":
            ok = v > value
        elif op == "<=":
            ok = v <= value
        elif op == ">=":
            ok = v >= value
        elif op == "&":
            ok = bool(v & value)
        else:  # "^"
            ok = bool(v ^ value)
        if ok == node.negated:
            return 0
        return self._next(i)

    def _scaled(self, node: _Node):
        """byte_jump's and byte_extract's field: (position, value times the
        multiplier and rounded up to the alignment, bytes read), or None."""
        pos = self._field_pos(node)
        if pos is None:
            return None
        got = self._read(node, pos)
        if got is None:
            return None
        value, used = got
        value = (value * node.multiplier) & _U64
        if node.align and value % node.align:
            value = (value + node.align - value % node.align) & _U64
        return pos, value, used

    def _byte_jump(self, node: _Node, i: int) -> int:
        got = self._scaled(node)
        if got is None:
            return 0
        pos, value, used = got
        if value >= 1 << 63:  # C's (int64_t) cast of the jump
            value -= 1 << 64
        value += node.post_offset
        if node.from_beginning:
            target = value
        elif node.from_end:
            target = self.n + value
        else:
            target = pos + used + value
        if target < 0:
            target = 0
        elif target > self.n:
            return 0
        self.ptr = target
        return self._next(i)

    def _byte_extract(self, node: _Node, i: int) -> int:
        got = self._scaled(node)
        if got is None:
            return 0
        pos, value, used = got
        self.env[node.name] = value
        self.ptr = pos + used
        return self._next(i)

    def _byte_math(self, node: _Node, i: int) -> int:
        pos = self._field_pos(node)
        if pos is None:
            return 0
        got = self._read(node, pos)
        rv = _resolve(node.value, self.env)
        if got is None or rv is None:
            return 0
        value, used = got
        op = node.op
        if op == "+":
            value += rv
        elif op == "-":
            value -= rv
        elif op == "*":
            value *= rv
        elif op == "/":
            if not rv:
                return 0  # (a variable of 0: no value to go on with)
            value //= rv
        elif op == "<<":
            value = value << rv if rv < 64 else 0
        else:
            value = value >> rv if rv < 64 else 0
        value &= _U64
        mask, shift = node.result_mask
        if mask is not None:
            value &= mask
            if value and shift:
                value >>= shift
        self.env[node.name] = value
        self.ptr = pos + used
        return self._next(i)

    def _base64(self, node: _Node, i: int) -> int:
        start = self.ptr if node.relative else 0
        if node.offset:
            if node.offset >= self.n - start:
                return 0
            start += node.offset
        decoded = b64_decode(self.data[start:start + node.nbytes])
        if not decoded:
            return 0
        # base64_data's elements, in the decoded bytes; the position in this
        # buffer stays where it was
        if node.sub is not None and not inspect_buffer(node.sub, decoded, self.env):
            return 0
        return self._next(i)


_B64_RUN = re.compile(rb"[A-Za-z0-9+/=]*")
_B64_OTHER = re.compile(rb"[^A-Za-z0-9+/=]+")
_B64_STRICT = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def b64_decode(data: bytes, mode: str = "rfc4648") -> bytes:
    """Base64 decoded as Suricata's decoder (base64_decode, from_base64)
    in its three modes; b"" when nothing decodes.

    rfc4648 reads up to the first byte outside the alphabet and ``=``,
    rfc2045 skips such bytes; both read each group of four on its own (a
    ``=`` third or fourth ends that group only) and fail whole on a group
    with ``=`` first or second, which a lone trailing character padded
    makes in rfc4648 (rfc2045 drops an unfinished group). strict takes
    only well-formed padded or unpadded base64."""
    if mode == "strict":
        if _B64_STRICT.fullmatch(data) is None:
            return b""
        text = data.rstrip(b"=")
        pad = len(data) - len(text)
        if len(text) % 4 == 1 or (pad and (len(text) + pad) % 4):
            return b""
        return binascii.a2b_base64(text + b"=" * (-len(text) % 4)) if text else b""
    if mode == "rfc2045":
        text = _B64_OTHER.sub(b"", data)
        text = text[:len(text) - len(text) % 4]
    else:
        text = _B64_RUN.match(data).group()
        text += b"=" * (-len(text) % 4)
    if b"=" not in text:
        return binascii.a2b_base64(text) if text else b""
    out = bytearray()
    for i in range(0, len(text), 4):
        q = text[i:i + 4]
        if q[0] == 61 or q[1] == 61:  # ("=")
            return b""
        out += binascii.a2b_base64(q[:2] + b"==" if q[2] == 61 else
                                   q[:3] + b"=" if q[3] == 61 else q)
    return bytes(out)


_STEPS = (
    _Run._content,
    _Run._pcre,
    _Run._isdataat,
    _Run._bsize,
    _Run._byte_test,
    _Run._byte_jump,
    _Run._byte_extract,
    _Run._never,
    _Run._asn1,
    _Run._byte_math,
    _Run._base64,
    _Run._dataset,
    _Run._entropy,
)
