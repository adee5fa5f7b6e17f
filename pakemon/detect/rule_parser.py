"""Detect stage: the native rule-file parser (../shared/spec/rules.md).

Reads the rule language of the Pakemon paper (section 3.5, Figures 5 and 6)
into the data model of ``pakemon.detect.rules``: one ``Rule`` per line,

    NAME  PROTO  SRC  DST  PATTERN [PATTERN ...]

Input is text, output is a ``RuleSet``; the only I/O is ``load_rules`` reading
the file. A bad line becomes one ``RuleError`` (``FILE:LINE:COLUMN: message``,
1-based, a column is one character, a tab included) and parsing goes on, so a
file's errors are all reported together. ``parse_rules`` raises nothing but
``RuleFileError``, whatever the text.

Choices the spec leaves open:

- In "..." and '...', a backslash before anything other than ``" ' \\ |`` is
  kept literally, with the character after it read as usual (``\\x41`` is four
  bytes), so a stray backslash in an old rule loads as written rather than
  failing the whole file.
- In <regex>, ``\\>`` becomes ``>`` and every other backslash pair goes to
  ``re`` unchanged, so ``<a\\\\>`` is the regex ``a\\\\`` (a backslash) and ends
  at the ``>``.
- Only whole-line comments exist; a ``#`` after a rule's fields is an error.
- Empty patterns (``""``, ``''``, ``||``, ``<>``) and empty ``||`` sections
  inside quotes are errors: an empty content matches every payload, which is
  what ``*`` says explicitly. For the same reason ``*`` must be a rule's only
  pattern.
- Spaces in ``|..|`` may separate hex pairs but not split one: each
  blank-separated group of digits must have an even length.
- A duplicate NAME is checked against the rules that loaded, so with skip_bad
  a rule whose earlier namesake was bad (and skipped) still loads.
- Field separators are ASCII blanks (space, tab, CR, FF, VT); other Unicode
  spaces are ordinary characters, e.g. part of a NAME.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from pakemon.detect.rules import (
    ANY_PORT,
    Pattern,
    PatternKind,
    PortSpec,
    Rule,
    RuleError,
    RuleFileError,
    RuleSet,
)

__all__ = [
    "ICMP_MAX",
    "PORT_MAX",
    "PROTOCOLS",
    "PortSpecError",
    "load_rules",
    "parse_port_spec",
    "parse_rules",
]

PROTOCOLS = ("tcp", "udp", "icmp", "ip")

PORT_MAX = 65535
ICMP_MAX = 255  # type and code are one byte each (RFC 792)

_BLANK = " \t\r\f\v"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_PORT_CHARS = frozenset("0123456789:")
_QUOTED_ESCAPES = "\"'\\|"

# Digits beyond this (after leading zeros) are out of range for any spec; the
# check comes before int() so a pathological line can neither hit Python's
# int digit limit (a ValueError) nor cost time.
_MAX_SIGNIFICANT_DIGITS = 9

# A lone surrogate can't be encoded to the UTF-8 pattern bytes; load_rules
# turns each undecodable byte into one (surrogateescape), so this also finds
# a file's invalid UTF-8 at its column.
_SURROGATE = re.compile("[\ud800-\udfff]")

_PATTERN_FORMS = "\"text\", 'text', |hex|, <regex> or *"
_PORT_FORMS = "'*', N, LO:HI, :HI, LO: or a comma list of those"
_LITERAL_PIPE_HINT = "close the section with '|', or write \\| for a literal '|'"
_EMPTY_HINT = "an empty pattern would match every payload; use * for that"

# re.compile reports most bad regexes as re.error, but a huge repeat count is
# an OverflowError, deep nesting a RecursionError, and some flag misuse a
# ValueError; all are the rule's fault, not the parser's.
_REGEX_ERRORS = (re.error, OverflowError, RecursionError, ValueError)


class PortSpecError(ValueError):
    """A malformed port (or ICMP type/code) spec.

    ``offset`` is the 0-based index, within the spec's text, of the item at
    fault, so a caller can turn it into a column.
    """

    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset
        self.message = message


class _LineError(Exception):
    """The first error on a line, at 0-based character ``index``."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index
        self.message = message


def parse_rules(text: str, filename: str = "<string>", skip_bad: bool = False) -> RuleSet:
    """Parse a whole rule file's text.

    Without ``skip_bad`` any error fails the file: ``RuleFileError`` carries
    every error, in line order. With it, the good rules load and ``skipped``
    holds one error per bad rule.
    """
    if text.startswith("\ufeff"):
        text = text[1:]  # a BOM from a Windows editor is not part of line 1
    rules: list[Rule] = []
    errors: list[RuleError] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        content = line.lstrip(_BLANK)
        if not content or content.startswith("#"):
            continue
        try:
            rule = _parse_line(line, filename, lineno)
        except _LineError as e:
            errors.append(RuleError(filename, lineno, e.index + 1, e.message))
            continue
        if rule.name in first_line:
            name_column = len(line) - len(content) + 1
            errors.append(
                RuleError(
                    filename,
                    lineno,
                    name_column,
                    f"duplicate rule name {rule.name!r} "
                    f"(first defined at line {first_line[rule.name]})",
                )
            )
            continue
        first_line[rule.name] = lineno
        rules.append(rule)
    if errors and not skip_bad:
        raise RuleFileError(errors)
    return RuleSet(rules=rules, skipped=errors)


def load_rules(path: str | os.PathLike[str], skip_bad: bool = False) -> RuleSet:
    """Read and parse a UTF-8 rule file; OSError if it can't be read.

    Invalid UTF-8 in a rule is reported as a ``RuleError`` at its line and
    column; in a comment it is harmless.
    """
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8", "surrogateescape")
    return parse_rules(text, filename=str(path), skip_bad=skip_bad)


def parse_port_spec(text: str, what: str = "port", maximum: int = PORT_MAX) -> PortSpec:
    """Parse ``*``, ``80``, ``1024:65535``, ``:1023``, ``6000:`` or a comma list.

    ``what`` names the field in messages ("port", "ICMP type", "ICMP code")
    and ``maximum`` is its largest value. Raises ``PortSpecError``.
    """
    if text == "*":
        return ANY_PORT
    ranges = []
    offset = 0
    for item in text.split(","):
        ranges.append(_parse_port_item(text, item, offset, what, maximum))
        offset += len(item) + 1
    return PortSpec(text=text, ranges=tuple(ranges), any=False)


def _parse_port_item(
    text: str, item: str, offset: int, what: str, maximum: int
) -> tuple[int, int]:
    if not item:
        raise PortSpecError(offset, f"empty item in {what} list {text!r}")
    if item == "*":
        raise PortSpecError(offset, f"'*' cannot be part of a {what} list")
    if not set(item) <= _PORT_CHARS or item.count(":") > 1 or item == ":":
        raise PortSpecError(offset, f"invalid {what} {item!r}: expected {_PORT_FORMS}")
    lo_text, colon, hi_text = item.partition(":")
    if not colon:
        value = _parse_number(lo_text, offset, what, maximum)
        return value, value
    lo = _parse_number(lo_text, offset, what, maximum) if lo_text else 0
    hi_offset = offset + len(lo_text) + 1
    hi = _parse_number(hi_text, hi_offset, what, maximum) if hi_text else maximum
    if lo > hi:
        raise PortSpecError(offset, f"empty {what} range {item}: {lo} is above {hi}")
    return lo, hi


def _parse_number(digits: str, offset: int, what: str, maximum: int) -> int:
    significant = digits.lstrip("0")
    if len(significant) <= _MAX_SIGNIFICANT_DIGITS:
        value = int(digits)
        if value <= maximum:
            return value
    shown = digits if len(digits) <= 20 else digits[:20] + "..."
    raise PortSpecError(offset, f"{what} {shown} out of range 0-{maximum}")


def _parse_line(line: str, filename: str, lineno: int) -> Rule:
    bad = _SURROGATE.search(line)
    if bad:
        raise _LineError(bad.start(), _surrogate_message(bad.group()))
    fields = _Fields(line)
    _, name = fields.next("NAME")
    proto_at, proto_text = fields.next("PROTO")
    proto = proto_text.lower()
    if proto not in PROTOCOLS:
        raise _LineError(
            proto_at, f"unknown protocol {proto_text!r}: expected tcp, udp, icmp or ip"
        )
    src_at, src_text = fields.next("SRC")
    dst_at, dst_text = fields.next("DST")
    src = _parse_endpoint(proto, "SRC", src_text, src_at)
    dst = _parse_endpoint(proto, "DST", dst_text, dst_at)
    patterns = _parse_patterns(line, fields.pos)
    return Rule(
        name=name,
        proto=proto,
        src=src,
        dst=dst,
        patterns=patterns,
        file=filename,
        line=lineno,
    )


def _surrogate_message(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"invalid UTF-8 byte 0x{code - 0xDC00:02x}: rule files must be UTF-8"
    return f"invalid character U+{code:04X} (a lone surrogate)"


class _Fields:
    """Reads the blank-separated leading fields of a line."""

    def __init__(self, line: str):
        self.line = line
        self.pos = 0

    def next(self, what: str) -> tuple[int, str]:
        start = _skip_blank(self.line, self.pos)
        if start == len(self.line):
            raise _LineError(
                len(self.line.rstrip(_BLANK)),
                f"expected NAME PROTO SRC DST PATTERN...: missing {what}",
            )
        end = start
        while end < len(self.line) and self.line[end] not in _BLANK:
            end += 1
        self.pos = end
        return start, self.line[start:end]


def _skip_blank(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in _BLANK:
        pos += 1
    return pos


def _parse_endpoint(proto: str, role: str, text: str, at: int) -> PortSpec:
    if proto == "ip":
        if text != "*":
            raise _LineError(at, f"for ip rules SRC and DST must be '*', not {text!r}")
        return ANY_PORT
    if proto == "icmp":
        what = "ICMP type" if role == "SRC" else "ICMP code"
        maximum = ICMP_MAX
    else:
        what = "port"
        maximum = PORT_MAX
    try:
        return parse_port_spec(text, what, maximum)
    except PortSpecError as e:
        raise _LineError(at + e.offset, e.message) from None


def _parse_patterns(line: str, pos: int) -> tuple[Pattern, ...]:
    patterns: list[Pattern] = []
    while True:
        pos = _skip_blank(line, pos)
        if pos == len(line):
            break
        char = line[pos]
        scan = _SCANNERS.get(char)
        if scan is None:
            message = f"unexpected {char!r}: expected a pattern ({_PATTERN_FORMS})"
            if char == "#":
                message += "; a comment must be on a line of its own"
            raise _LineError(pos, message)
        pattern, end = scan(line, pos)
        if end < len(line) and line[end] not in _BLANK:
            raise _LineError(
                end,
                f"unexpected {line[end]!r} after {line[end - 1]!r} ending the pattern: "
                "expected whitespace or the end of the line",
            )
        patterns.append(pattern)
        pos = end
    if not patterns:
        raise _LineError(
            len(line.rstrip(_BLANK)), "expected NAME PROTO SRC DST PATTERN...: missing pattern"
        )
    if len(patterns) > 1:
        for pattern in patterns:
            if pattern.kind is PatternKind.ANY:
                raise _LineError(
                    pattern.column - 1,
                    "'*' (any payload) cannot be combined with other patterns",
                )
    return tuple(patterns)


def _scan_quoted(line: str, start: int) -> tuple[Pattern, int]:
    quote = line[start]
    kind = PatternKind.BYTES if quote == '"' else PatternKind.NOCASE
    value = bytearray()
    chars: list[str] = []
    i = start + 1
    while True:
        if i >= len(line):
            raise _LineError(start, f"unterminated {quote}...{quote} pattern")
        char = line[i]
        if char == quote:
            break
        if char == "\\" and i + 1 < len(line) and line[i + 1] in _QUOTED_ESCAPES:
            chars.append(line[i + 1])
            i += 2
        elif char == "|":
            value += "".join(chars).encode("utf-8")
            chars = []
            data, i = _scan_hex(line, i, embedded=True)
            value += data
        else:
            chars.append(char)
            i += 1
    value += "".join(chars).encode("utf-8")
    end = i + 1
    if not value:
        raise _LineError(start, f"empty pattern {line[start:end]}: {_EMPTY_HINT}")
    return Pattern(kind, bytes(value), text=line[start:end], column=start + 1), end


def _scan_binary(line: str, start: int) -> tuple[Pattern, int]:
    value, end = _scan_hex(line, start, embedded=False)
    return Pattern(PatternKind.BYTES, value, text=line[start:end], column=start + 1), end


def _scan_hex(line: str, start: int, embedded: bool) -> tuple[bytes, int]:
    """Read ``|..|`` from the opening bar; return the bytes and the index past
    the closing bar."""
    digits: list[str] = []
    group_start = -1
    i = start + 1
    while True:
        if i >= len(line):
            if embedded:
                raise _LineError(start, "unterminated |...| section in quoted pattern")
            raise _LineError(start, "unterminated |...| binary pattern")
        char = line[i]
        if char == "|" or char in _BLANK:
            if group_start >= 0 and (i - group_start) % 2:
                raise _LineError(group_start, "odd number of hex digits in binary pattern")
            group_start = -1
            if char == "|":
                break
        elif char in _HEX_DIGITS:
            if group_start < 0:
                group_start = i
            digits.append(char)
        else:
            message = f"invalid hex digit {char!r} in binary pattern"
            if embedded:
                message += f" ({_LITERAL_PIPE_HINT})"
            raise _LineError(i, message)
        i += 1
    if not digits:
        if embedded:
            raise _LineError(
                start, f"empty |...| section in quoted pattern ({_LITERAL_PIPE_HINT})"
            )
        raise _LineError(start, f"empty pattern {line[start:i + 1]}: {_EMPTY_HINT}")
    return bytes.fromhex("".join(digits)), i + 1


def _scan_regex(line: str, start: int) -> tuple[Pattern, int]:
    source: list[str] = []
    i = start + 1
    while True:
        if i >= len(line):
            raise _LineError(start, "unterminated <regex>")
        char = line[i]
        if char == ">":
            break
        if char == "\\" and i + 1 < len(line):
            following = line[i + 1]
            source.append(">" if following == ">" else char + following)
            i += 2
        else:
            source.append(char)
            i += 1
    end = i + 1
    value = "".join(source).encode("utf-8")
    if not value:
        raise _LineError(start, f"empty pattern <>: {_EMPTY_HINT}")
    try:
        compiled = re.compile(value, re.DOTALL)
    except _REGEX_ERRORS as e:
        raise _LineError(start, f"regex does not compile: {e}") from None
    pattern = Pattern(
        PatternKind.REGEX, value, regex=compiled, text=line[start:end], column=start + 1
    )
    return pattern, end


def _scan_any(line: str, start: int) -> tuple[Pattern, int]:
    return Pattern(PatternKind.ANY, b"", text="*", column=start + 1), start + 1


_SCANNERS: dict[str, Callable[[str, int], tuple[Pattern, int]]] = {
    '"': _scan_quoted,
    "'": _scan_quoted,
    "|": _scan_binary,
    "<": _scan_regex,
    "*": _scan_any,
}
