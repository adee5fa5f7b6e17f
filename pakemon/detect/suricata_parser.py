"""Detect stage: a parser for Snort/Suricata rule files (the second rule format).

Reads rules such as::

    alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET TROJAN x"; \\
        flow:established,to_server; content:"/gate.php"; http_uri; \\
        pcre:"/^\\/gate\\.php\\?id=\\d+$/U"; sid:2000001; rev:2;)

into ``SuricataRule`` objects: the header (action, protocol, address specs
with variables expanded, port specs, direction) and the options, the payload
ones as an ordered tuple of detection elements (``ContentMatch``,
``PcreMatch``, ``IsDataAt``, ``BufferSize``), each with the buffer it
inspects (``None`` for the packet payload / TCP stream, or a sticky buffer
name such as ``"http.uri"``).

This module only *parses*: the matching engine for these options comes later.
``SuricataRule.to_rule()`` already turns the simplest rules (plain contents
only, no positions, no buffers, no negation, no pcre) into a native
``pakemon.detect.rules.Rule`` that the native engine runs, with documented
approximations (addresses and flow direction/state are not checked, see
``to_rule``); every other rule says why it can't be converted.

API
---
``parse_suricata_rules(text, filename, vars=None) -> (rules, skipped, errors)``
    ``rules``: ``SuricataRule`` list; ``skipped``: ``SkippedRule`` list, each a
    ``(line, sid, keyword)`` tuple for a rule using something outside the
    supported set (below); ``errors``: ``RuleError`` list
    (``FILE:LINE:COLUMN: message``) for malformed rules. Raises nothing,
    whatever the text.
``load_suricata_rules(path, vars=None) -> SuricataRuleSet``
    a file, a directory (its ``*.rules``, sorted) or a list of those; logs one
    warning per skipped rule and a summary (logger ``pakemon.detect.suricata``).
``detect_format(text) -> "native" | "suricata"``
``vars``: ``None`` (Suricata's defaults, ``pakemon.detect.vars``), a mapping
    of overrides, a ``Vars``, or the path of a vars file.

Supported (the keyword set of the issue, ``SUPPORTED_KEYWORDS``)
----------------------------------------------------------------
- actions alert, drop, reject, pass; protocols tcp, udp, icmp, icmpv6, ip,
  ipv6, tcp-pkt, tcp-stream, http; directions ``->`` and ``<>``.
- msg sid rev gid classtype priority reference metadata; content (``|hex|``,
  escapes ``\\; \\" \\\\ \\:``, ``!``) with nocase offset depth distance within
  startswith endswith rawbytes fast_pattern (``;``, ``:only;``, ``:O,L;``);
  isdataat; pcre (flags i s m x A E G R B O, and the request-side buffer
  flags U I H D M C P V W); flow; dsize; flags; itype; icode; icmp_id;
  icmp_seq; urilen; bsize; threshold and detection_filter (type/track/
  count/seconds); decode-event; stream-event; sticky buffers http.method
  http.uri http.uri.raw http.request_line http.header http.header_names
  http.host http.user_agent http.cookie http.request_body; content
  modifiers http_method http_uri http_raw_uri http_header http_raw_header
  http_cookie http_user_agent http_host http_client_body.
- Beyond the issue's list (``EXTENSION_KEYWORDS``), three older spellings
  of supported keywords that Suricata itself still accepts: ``uricontent``
  (exactly ``content`` + ``http_uri``) and ``http_request_line`` /
  ``http_header_names`` (Suricata 4/5 names of the sticky buffers
  ``http.request_line`` / ``http.header_names``). ET Open 4.0 uses them in
  about 2,000 rules; ``bench/et_load.py`` reports the share with and
  without them.

Anything else skips the rule (``SkippedRule``; one warning
``FILE:LINE: sid N skipped: unsupported keyword 'flowbits'``): other
keywords (byte_test, flowbits, file_data, dns_query, tls_sni, ...), Suricata
app-layer protocols (``alert tls ...``: keyword ``protocol:tls``), the actions
rejectsrc/rejectdst/rejectboth, flow only_frag/no_frag, pcre buffer flags of
unsupported buffers (``pcre/Q``: file_data, S/Y: response status, Z: raw
host), threshold forms beyond type/track/count/seconds, and a pcre that
Python's ``re`` can't compile even after translation (``pcre-syntax``).

Choices
-------
- Rule lines: ``#`` starts a comment line (so ``# alert ...``, a disabled
  rule, is ignored); a line ending in ``\\`` continues on the next line (the
  backslash is dropped, the next line appended as is); leading blanks are
  allowed. Text after the closing ``)`` is an error.
- An option ends at the first ``;`` not escaped by ``\\``; when its value
  starts with ``"`` (after an optional ``!``), a ``;`` inside the quotes
  doesn't end it, so ``msg:"a; b";`` works. Every option, the last included,
  must end with ``;`` (as in Suricata). Keyword names are case-insensitive.
- content: only ``\\\\ \\" \\; \\:`` are escapes, any other backslash and an
  unescaped ``"`` are errors (as in Suricata); hex digits in ``|..|`` may be
  split by blanks but must total an even count. Suricata's checks on
  modifiers are made: a modifier needs a preceding content; offset/depth
  can't be mixed with distance/within on one content; depth and within must
  be at least the content's length; one fast_pattern per rule; a content
  modifier can't move a content out of another buffer; http.host contents
  must be lower case unless nocase.
- PCRE is translated to Python ``re`` (bytes, ASCII): PCRE-only syntax is
  rewritten (``(?i)`` mid-pattern, ``(?<name>``, ``\\x{..}``, ``\\z``,
  ``\\Z``, ``\\h``, ``\\v``, ``\\R``, ``\\e``, ``\\cX``, ``\\Q..\\E``, POSIX
  ``[:alpha:]`` classes, flags A/E/G); what remains uncompilable (e.g.
  variable-length look-behind, recursion, ``\\K``, backtracking verbs) skips
  the rule as ``pcre-syntax``.
- Relative pcre/isdataat without a buffer of their own inspect the buffer of
  the preceding content/pcre (Suricata's rule).
- A duplicate ``gid:sid`` is an error at the later rule; the first stays.
- ``sid`` is required (1..2^32-1); ``rev`` defaults to 1, ``gid`` to 1.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Union

from pakemon.detect.rules import Pattern, PatternKind, PortSpec, Rule, RuleError
from pakemon.detect.vars import AddressSpec, SpecError, Vars

__all__ = [
    "ACTIONS",
    "APP_LAYER_PROTOCOLS",
    "EXTENSION_KEYWORDS",
    "PROTOCOLS",
    "STICKY_BUFFERS",
    "SUPPORTED_KEYWORDS",
    "BufferSize",
    "Flowbit",
    "ByteExtract",
    "ByteJump",
    "ByteTest",
    "ContentMatch",
    "FlowSpec",
    "IntCompare",
    "IsDataAt",
    "PcreMatch",
    "SkippedRule",
    "SuricataRule",
    "SuricataRuleSet",
    "TcpFlags",
    "Threshold",
    "UriLen",
    "detect_format",
    "load_classification_config",
    "load_suricata_rules",
    "parse_suricata_rules",
    "translate_pcre",
]

log = logging.getLogger("pakemon.detect.suricata")

ACTIONS = ("alert", "drop", "reject", "pass")
UNSUPPORTED_ACTIONS = frozenset({"rejectsrc", "rejectdst", "rejectboth", "config"})

PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "ip", "ipv6", "tcp-pkt", "tcp-stream", "http")
NATIVE_PROTO = {
    "tcp": "tcp",
    "tcp-pkt": "tcp",
    "tcp-stream": "tcp",
    "http": "tcp",
    "udp": "udp",
    "icmp": "icmp",
    "icmpv6": "icmp",
    "ip": "ip",
    "ipv6": "ip",
}
# Protocols Suricata knows that this parser doesn't: the rule is skipped.
APP_LAYER_PROTOCOLS = frozenset(
    """tls ssl dns ftp ftp-data smtp smb dcerpc ssh imap pop3 modbus enip dnp3 nfs ntp
    tftp ikev2 ike krb5 dhcp snmp sip rfb mqtt pgsql telnet rdp quic http1 http2 doh2
    bittorrent-dht websocket ldap sctp pkthdr icmpv4 ipv4 udp-pkt""".split()
)

# sticky buffer keyword -> buffer name
STICKY_BUFFERS: Mapping[str, str] = {
    "http.method": "http.method",
    "http.uri": "http.uri",
    "http.uri.raw": "http.uri.raw",
    "http.request_line": "http.request_line",
    "http.header": "http.header",
    "http.header_names": "http.header_names",
    "http.host": "http.host",
    "http.user_agent": "http.user_agent",
    "http.cookie": "http.cookie",
    "http.request_body": "http.request_body",
    # older names of the same Suricata sticky buffers (EXTENSION_KEYWORDS)
    "http_request_line": "http.request_line",
    "http_header_names": "http.header_names",
}
# legacy content modifier -> the buffer it moves the preceding content to
LEGACY_MODIFIERS: Mapping[str, str] = {
    "http_method": "http.method",
    "http_uri": "http.uri",
    "http_raw_uri": "http.uri.raw",
    "http_header": "http.header",
    "http_raw_header": "http.header.raw",
    "http_cookie": "http.cookie",
    "http_user_agent": "http.user_agent",
    "http_host": "http.host",
    "http_client_body": "http.request_body",
}
# pcre flag -> buffer; and flags naming buffers this parser doesn't support
PCRE_BUFFER_FLAGS: Mapping[str, str] = {
    "U": "http.uri",
    "I": "http.uri.raw",
    "H": "http.header",
    "D": "http.header.raw",
    "M": "http.method",
    "C": "http.cookie",
    "P": "http.request_body",
    "V": "http.user_agent",
    "W": "http.host",
}
PCRE_UNSUPPORTED_FLAGS: Mapping[str, str] = {
    "Q": "file_data",
    "S": "http.stat_code",
    "Y": "http.stat_msg",
    "Z": "http.host.raw",
}
PCRE_FLAGS = frozenset("ismxAEGRBO") | frozenset(PCRE_BUFFER_FLAGS) | frozenset(
    PCRE_UNSUPPORTED_FLAGS
)

_META_KEYWORDS = ("msg", "sid", "rev", "gid", "classtype", "priority", "reference", "metadata")
_PAYLOAD_KEYWORDS = (
    "content", "nocase", "offset", "depth", "distance", "within", "startswith", "endswith",
    "isdataat", "rawbytes", "fast_pattern", "pcre", "bsize",
)  # fmt: skip
_OTHER_KEYWORDS = (
    "flow", "dsize", "flags", "itype", "icode", "icmp_id", "icmp_seq", "urilen",
    "threshold", "detection_filter", "decode-event", "stream-event",
)  # fmt: skip
EXTENSION_KEYWORDS = frozenset({"uricontent", "http_request_line", "http_header_names"})
SUPPORTED_KEYWORDS = (
    frozenset(_META_KEYWORDS + _PAYLOAD_KEYWORDS + _OTHER_KEYWORDS)
    | (frozenset(STICKY_BUFFERS) - EXTENSION_KEYWORDS)
    | frozenset(LEGACY_MODIFIERS)
)
_KNOWN = SUPPORTED_KEYWORDS | EXTENSION_KEYWORDS

_CONTENT_MODIFIERS = frozenset(
    {"nocase", "offset", "depth", "distance", "within", "startswith", "endswith", "rawbytes",
     "fast_pattern"}
)  # fmt: skip

_BLANK = " \t\r\f\v"
_OPTION_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_INT = re.compile(r"[+-]?\d{1,19}\Z")
_WORD = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_UINT32_MAX = 2**32 - 1
_INT32 = (-(2**31), 2**31 - 1)


# =============================================================== data model


@dataclass(frozen=True, slots=True)
class IntCompare:
    """A numeric test: ``N``/``=N``, ``<N``, ``>N``, ``<=N``, ``>=N``, ``!N``,
    or ``A<>B`` (also ``A-B``): strictly between A and B, as in Suricata."""

    op: str  # "=", "<", ">", "<=", ">=", "!=", "<>"
    value: int
    value2: int | None = None
    text: str = ""

    def matches(self, n: int) -> bool:
        op, v = self.op, self.value
        if op == "=":
            return n == v
        if op == "<":
            return n < v
        if op == ">":
            return n > v
        if op == "<=":
            return n <= v
        if op == ">=":
            return n >= v
        if op == "!=":
            return n != v
        return v < n < (self.value2 or 0)

    def ranges(self, maximum: int) -> tuple[tuple[int, int], ...]:
        """The values in 0..maximum that match, as inclusive ranges."""
        op, v = self.op, self.value
        if op == "=":
            spans = [(v, v)]
        elif op == "<":
            spans = [(0, v - 1)]
        elif op == ">":
            spans = [(v + 1, maximum)]
        elif op == "<=":
            spans = [(0, v)]
        elif op == ">=":
            spans = [(v, maximum)]
        elif op == "!=":
            spans = [(0, v - 1), (v + 1, maximum)]
        else:
            spans = [(v + 1, (self.value2 or 0) - 1)]
        return tuple(
            (max(lo, 0), min(hi, maximum))
            for lo, hi in spans
            if lo <= hi and lo <= maximum and hi >= 0
        )


@dataclass(frozen=True, slots=True)
class UriLen:
    compare: IntCompare
    form: str = ""  # "", "raw" or "norm"


@dataclass(frozen=True, slots=True)
class FlowSpec:
    text: str
    to_server: bool = False  # also from_client
    to_client: bool = False  # also from_server
    established: bool = False
    not_established: bool = False
    stateless: bool = False
    only_stream: bool = False
    no_stream: bool = False


TCP_FLAG_BITS = {
    "F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20,
    "E": 0x40, "C": 0x80, "2": 0x40, "1": 0x80,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TcpFlags:
    """``flags:[!|*|+]FLAGS[,IGNORED]``: bits per ``TCP_FLAG_BITS`` (0: none)."""

    text: str
    flags: int
    # "" exactly these, "+" at least these, "*" any of these, "!" not all of these
    modifier: str = ""
    ignore: int = 0

    def matches(self, tcp_flags: int) -> bool:
        value = tcp_flags & ~self.ignore & 0xFF
        if self.modifier == "+":
            return value & self.flags == self.flags
        if self.modifier == "*":
            return bool(value & self.flags) or self.flags == 0
        if self.modifier == "!":
            return value & self.flags != self.flags if self.flags else value != 0
        return value == self.flags


@dataclass(frozen=True, slots=True)
class Threshold:
    """threshold (``type`` set) or detection_filter (``type`` None)."""

    track: str  # by_src, by_dst, by_rule, by_both
    count: int
    seconds: int
    type: str | None = None  # limit, threshold, both


@dataclass(slots=True)
class ContentMatch:
    pattern: bytes
    nocase: bool = False
    negated: bool = False
    offset: int | None = None
    depth: int | None = None
    distance: int | None = None
    within: int | None = None
    startswith: bool = False
    endswith: bool = False
    fast_pattern: bool = False
    fast_pattern_only: bool = False
    fast_pattern_chop: tuple[int, int] | None = None  # (offset, length)
    rawbytes: bool = False
    buffer: str | None = None  # None: payload / stream; else e.g. "http.uri"
    text: str = ""  # the value as written, e.g. '!"GET|20|"'
    column: int = 0  # 1-based, in the rule's logical line (continuations joined)

    @property
    def relative(self) -> bool:
        return self.distance is not None or self.within is not None

    @property
    def plain(self) -> bool:
        """Just bytes to find anywhere in the payload (nocase allowed)."""
        return not (
            self.negated
            or self.buffer is not None
            or self.offset is not None
            or self.depth is not None
            or self.distance is not None
            or self.within is not None
            or self.startswith
            or self.endswith
        )


@dataclass(slots=True)
class PcreMatch:
    source: str  # between the slashes, as written
    flags: str  # after the last slash, as written
    regex: re.Pattern  # compiled (bytes) from ``translate_pcre``
    relative: bool = False  # R
    negated: bool = False
    buffer: str | None = None
    text: str = ""
    column: int = 0


@dataclass(slots=True)
class IsDataAt:
    offset: int
    relative: bool = False
    negated: bool = False
    rawbytes: bool = False
    buffer: str | None = None


@dataclass(slots=True)
class BufferSize:
    """``bsize``: the size of the sticky buffer it follows."""

    compare: IntCompare
    buffer: str


@dataclass(slots=True)
class ByteTest:
    """``byte_test:N,[!]OP,VALUE,OFFSET[,relative][,big|little][,string,hex|dec|oct]
    [,dce][,bitmask M]``. ``value`` and ``offset`` may name a byte_extract
    variable (str)."""

    nbytes: int
    op: str  # "<", ">", "=", "<=", ">=", "&", "^"
    value: int | str
    offset: int | str
    relative: bool = False
    negated: bool = False
    big_endian: bool = True
    string_base: int | None = None  # 10, 16 or 8 when the bytes are text
    dce: bool = False
    bitmask: int | None = None
    buffer: str | None = None


@dataclass(slots=True)
class ByteJump:
    """``byte_jump:N,OFFSET[,relative][,multiplier M][,big|little][,string,BASE]
    [,align][,from_beginning|from_end][,post_offset P][,dce][,bitmask M]``."""

    nbytes: int
    offset: int | str
    relative: bool = False
    multiplier: int = 1
    big_endian: bool = True
    string_base: int | None = None
    align: bool = False
    from_beginning: bool = False
    from_end: bool = False
    post_offset: int = 0
    dce: bool = False
    bitmask: int | None = None
    buffer: str | None = None


@dataclass(slots=True)
class ByteExtract:
    """``byte_extract:N,OFFSET,NAME[,relative][,multiplier M][,big|little]
    [,string,BASE][,align A][,dce][,bitmask M]``: NAME usable by later
    byte_test/byte_jump/content offset/depth/distance/within (as a str)."""

    nbytes: int
    offset: int
    name: str
    relative: bool = False
    multiplier: int = 1
    big_endian: bool = True
    string_base: int | None = None
    align: int = 0  # 0, 2 or 4
    dce: bool = False
    bitmask: int | None = None
    buffer: str | None = None


@dataclass(frozen=True, slots=True)
class Flowbit:
    """``flowbits:CMD[,NAME[|NAME..|&NAME..]]``; cmd set, unset, toggle,
    isset, isnotset or noalert. ``any_of``: names joined by ``|`` (isset
    a|b is true when either is set); otherwise all names (``&`` or one)."""

    cmd: str
    names: tuple[str, ...] = ()
    any_of: bool = False


Element = Union[ContentMatch, PcreMatch, IsDataAt, BufferSize, ByteTest, ByteJump, ByteExtract]


@dataclass(slots=True)
class SuricataRule:
    action: str
    proto: str
    src: AddressSpec
    src_port: PortSpec
    dst: AddressSpec
    dst_port: PortSpec
    bidirectional: bool
    elements: tuple[Element, ...]
    sid: int
    rev: int = 1
    gid: int = 1
    msg: str = ""
    classtype: str = ""
    priority: int | None = None
    references: tuple[tuple[str, str], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    flow: FlowSpec | None = None
    dsize: IntCompare | None = None
    flags: TcpFlags | None = None
    itype: IntCompare | None = None
    icode: IntCompare | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    urilen: UriLen | None = None
    threshold: Threshold | None = None
    detection_filter: Threshold | None = None
    decode_events: tuple[str, ...] = ()
    stream_events: tuple[str, ...] = ()
    # Suricata app-layer protocol of the header (``alert tls ...``, also
    # ``http`` here) or None: the rule applies only to flows detected as it.
    app_proto: str | None = None
    flowbits: tuple[Flowbit, ...] = ()  # in rule order; noalert sets ``noalert``
    noalert: bool = False
    options: tuple[str, ...] = ()  # keyword names in rule order
    file: str = "<string>"
    line: int = 0
    text: str = field(default="", repr=False)

    @property
    def contents(self) -> list[ContentMatch]:
        return [e for e in self.elements if isinstance(e, ContentMatch)]

    @property
    def pcres(self) -> list[PcreMatch]:
        return [e for e in self.elements if isinstance(e, PcreMatch)]

    @property
    def buffers(self) -> set[str | None]:
        return {getattr(e, "buffer", None) for e in self.elements}

    def native_blocker(self, ignore_addresses: bool = True) -> str | None:
        """Why ``to_rule`` can't express this rule natively; None if it can."""
        if self.action == "pass":
            return "a pass rule suppresses alerts; the native format has no actions"
        if self.bidirectional:
            return "'<>' (both directions) has no native form"
        if not ignore_addresses and not (self.src.any and self.dst.any):
            return "address restrictions have no native form"
        if not self.elements:
            return "no content to match"
        for e in self.elements:
            if isinstance(e, PcreMatch):
                return "pcre needs the matching engine"
            if isinstance(e, IsDataAt):
                return "isdataat needs the matching engine"
            if isinstance(e, BufferSize):
                return "bsize needs the matching engine"
            if not e.plain:
                what = (
                    "negated content" if e.negated
                    else f"content in buffer {e.buffer}" if e.buffer
                    else "content with a position "
                    "(offset/depth/distance/within/startswith/endswith)"
                )  # fmt: skip
                return f"{what} needs the matching engine"
        for name in ("dsize", "flags", "urilen", "threshold", "detection_filter", "icmp_id",
                     "icmp_seq"):  # fmt: skip
            if getattr(self, name) is not None:
                return f"{name.replace('_', ' ')} needs the matching engine"
        if self.decode_events or self.stream_events:
            return "decode-event/stream-event need the matching engine"
        if self.flow is not None and (
            self.flow.not_established or self.flow.stateless or self.flow.only_stream
            or self.flow.no_stream
        ):  # fmt: skip
            return f"flow:{self.flow.text} needs the matching engine"
        native = NATIVE_PROTO[self.proto]
        if native == "ip" and not (self.src_port.any and self.dst_port.any):
            return "ports on an ip rule have no native form"
        if native != "icmp" and (self.itype is not None or self.icode is not None):
            return "itype/icode on a non-ICMP rule need the matching engine"
        if native == "icmp":
            for what, cmp in (("itype", self.itype), ("icode", self.icode)):
                if cmp is not None and not cmp.ranges(255):
                    return f"{what}:{cmp.text} matches no value"
        return None

    def to_rule(
        self, ignore_addresses: bool = True, classifications: Mapping[str, int] | None = None
    ) -> Rule | None:
        """The native ``Rule`` for the simplest rules, else None (see
        ``native_blocker``).

        Convertible: alert/drop/reject rules whose detection is plain
        contents only (no offset/depth/distance/within/startswith/endswith,
        no negation, no buffer; nocase is fine). Mapping: name
        ``sid:N`` (``gid:G:sid:N`` for gid != 1), msg, sid, rev, category =
        classtype, severity = priority (else the classtype's priority from
        ``classifications``, else 3); proto tcp/tcp-pkt/tcp-stream/http -> tcp,
        udp -> udp, icmp/icmpv6 -> icmp (SRC/DST = itype/icode), ip/ipv6 ->
        ip. Approximations, recorded in ``meta["approximations"]``: the
        address specs are not checked (unless ``ignore_addresses=False``,
        which refuses rules with addresses), and flow direction/established
        is left to the native semantics (the stream direction whose ports fit).
        The full Suricata semantics come with the matching engine.
        """
        if self.native_blocker(ignore_addresses) is not None:
            return None
        native = NATIVE_PROTO[self.proto]
        if native == "icmp":
            src = _native_spec(self.itype.ranges(255)) if self.itype else _native_spec(())
            dst = _native_spec(self.icode.ranges(255)) if self.icode else _native_spec(())
        elif native == "ip":
            src = dst = _native_spec(())
        else:
            src = _native_spec(self.src_port.ranges if not self.src_port.any else ())
            dst = _native_spec(self.dst_port.ranges if not self.dst_port.any else ())
        patterns = tuple(
            Pattern(
                PatternKind.NOCASE if c.nocase else PatternKind.BYTES,
                c.pattern,
                text=c.text,
                column=c.column,
            )
            for c in self.contents
        )
        approximations = []
        if not (self.src.any and self.dst.any):
            approximations.append(f"addresses {self.src.text} -> {self.dst.text} not checked")
        if self.flow is not None:
            approximations.append(f"flow:{self.flow.text} left to the native semantics")
        if self.proto != native:
            approximations.append(f"protocol {self.proto} run as {native}")
        severity = self.priority
        if severity is None and classifications:
            severity = classifications.get(self.classtype)
        return Rule(
            name=f"sid:{self.sid}" if self.gid == 1 else f"gid:{self.gid}:sid:{self.sid}",
            proto=native,
            src=src,
            dst=dst,
            patterns=patterns,
            file=self.file,
            line=self.line,
            sid=self.sid,
            rev=self.rev,
            msg=self.msg,
            severity=severity if severity is not None else 3,
            category=self.classtype,
            meta={
                "format": "suricata",
                "action": self.action,
                "gid": self.gid,
                "references": list(self.references),
                "metadata": list(self.metadata),
                "approximations": approximations,
            },
        )


def _native_spec(ranges: tuple[tuple[int, int], ...]) -> PortSpec:
    if not ranges:
        return PortSpec("*")
    text = ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ranges)
    return PortSpec(text, tuple(ranges), any=False)


class _SkippedBase(NamedTuple):
    line: int
    sid: int
    keyword: str


class SkippedRule(_SkippedBase):
    """``(line, sid, keyword)``: a rule skipped for using ``keyword``.

    ``keyword`` is the keyword name (``flowbits``), or ``protocol:tls``,
    ``action:rejectboth``, ``direction:=>``, ``flow:only_frag``,
    ``pcre/Q`` (a pcre buffer flag), ``pcre-syntax``, ``threshold``.
    Extra attributes: ``file``, ``detail`` (the reason in words), ``blockers``
    (every unsupported thing found, ``keyword`` first) and ``options``
    (the rule's keyword names).
    """

    def __new__(cls, line: int, sid: int, keyword: str, *, file: str = "<string>",
                detail: str = "", blockers: tuple[str, ...] = (),
                options: tuple[str, ...] = ()):  # fmt: skip
        self = super().__new__(cls, line, sid, keyword)
        self.file = file
        self.detail = detail or f"unsupported keyword {keyword!r}"
        self.blockers = blockers or (keyword,)
        self.options = options
        return self

    @property
    def message(self) -> str:
        return f"{self.file}:{self.line}: sid {self.sid} skipped: {self.detail}"

    def __str__(self) -> str:
        return self.message


@dataclass
class SuricataRuleSet:
    rules: list[SuricataRule]
    skipped: list[SkippedRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rules) + len(self.skipped) + len(self.errors)

    def skipped_by_keyword(self) -> Counter:
        return Counter(s.keyword for s in self.skipped)

    def summary(self, top: int = 10) -> str:
        line = (
            f"{len(self.rules)} of {self.total} Suricata rules loaded "
            f"from {len(self.files)} file(s); {len(self.skipped)} skipped, "
            f"{len(self.errors)} with errors"
        )
        counts = self.skipped_by_keyword()
        if counts:
            shown = ", ".join(f"{k} {n}" for k, n in counts.most_common(top))
            more = len(counts) - top
            line += f"; skipped by keyword: {shown}" + (f" (+{more} more)" if more > 0 else "")
        return line

    def to_rules(self, ignore_addresses: bool = True) -> list[Rule]:
        out = []
        for r in self.rules:
            native = r.to_rule(ignore_addresses)
            if native is not None:
                out.append(native)
        return out


# ==================================================================== parsing


class _Error(Exception):
    def __init__(self, pos: int, message: str):
        super().__init__(message)
        self.pos = pos
        self.message = message


class _Skip(Exception):
    def __init__(self, keyword: str, detail: str = ""):
        super().__init__(keyword)
        self.keyword = keyword
        self.detail = detail or f"unsupported keyword {keyword!r}"


class _Opt(NamedTuple):
    name: str
    value: str | None
    name_pos: int
    value_pos: int


def parse_suricata_rules(
    text: str, filename: str = "<string>", vars: object = None
) -> tuple[list[SuricataRule], list[SkippedRule], list[RuleError]]:
    """Parse a Suricata/Snort rule file's text: ``(rules, skipped, errors)``.

    Never raises for any ``text`` (a bad ``vars`` argument may: a vars file
    with errors is ``RuleFileError``).
    """
    loader = _Loader(Vars.coerce(vars))
    loader.feed(text, filename)
    return loader.rules, loader.skipped, loader.errors


def load_suricata_rules(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], vars: object = None
) -> SuricataRuleSet:
    """Load a rule file, every ``*.rules`` of a directory (sorted), or a list
    of those. Logs a warning per skipped rule and one summary line. Invalid
    UTF-8 loads as in the native parser (surrogate escapes, reported where it
    matters). OSError if a file can't be read."""
    if isinstance(path, (str, os.PathLike)):
        paths = [path]
    else:
        paths = list(path)
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(p.glob("*.rules")))
        else:
            files.append(p)
    loader = _Loader(Vars.coerce(vars))
    for f in files:
        data = f.read_bytes()
        loader.feed(data.decode("utf-8", "surrogateescape"), str(f))
    rs = SuricataRuleSet(loader.rules, loader.skipped, loader.errors, [str(f) for f in files])
    for s in rs.skipped:
        log.warning("%s", s.message)
    for e in rs.errors:
        log.warning("%s", e)
    if rs.skipped or rs.errors:
        log.warning("%s", rs.summary())
    else:
        log.info("%s", rs.summary())
    return rs


_DETECT = re.compile(
    r"\s*(?:alert|drop|reject|pass|rejectsrc|rejectdst|rejectboth)\s+[A-Za-z0-9_.\-]+\s+"
    r"[^(]*?\s(?:->|<>)\s[^(]*\("
)


def detect_format(text: str) -> str:
    """``"suricata"`` if the first rule line (else, with no active rule, the
    first commented-out one) is ACTION PROTO ... -> ... (OPTIONS; otherwise
    ``"native"``. A native rule is NAME PROTO SRC DST PATTERN..., so a native
    rule named ``alert`` still has no direction arrow and option list."""
    commented = None
    for line in text.lstrip("\ufeff").split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if commented is None:
                body = stripped.lstrip("#")
                if _DETECT.match(body):
                    commented = "suricata"
            continue
        return "suricata" if _DETECT.match(stripped) else "native"
    return commented or "native"


def load_classification_config(path: str | os.PathLike[str]) -> dict[str, int]:
    """``config classification: NAME,DESCRIPTION,PRIORITY`` lines -> {NAME: PRIORITY}."""
    out: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"\s*config\s+classification\s*:\s*([^,]+),[^,]*,\s*(\d+)\s*$", line)
            if m:
                out[m.group(1).strip()] = int(m.group(2))
    return out


class _Loader:
    def __init__(self, vars: Vars):
        self.vars = vars
        self.rules: list[SuricataRule] = []
        self.skipped: list[SkippedRule] = []
        self.errors: list[RuleError] = []
        self.first: dict[tuple[int, int], tuple[str, int]] = {}

    def feed(self, text: str, filename: str) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        lines = text.split("\n")
        i = 0
        n = len(lines)
        while i < n:
            line = lines[i].rstrip("\r")
            lineno = i + 1
            i += 1
            stripped = line.strip(_BLANK + "\n")
            if not stripped or stripped.startswith("#"):
                continue
            # (logical start, physical line number) for each joined line
            segments = [(0, lineno)]
            buf = line.rstrip(_BLANK)
            while buf.endswith("\\") and i < n:
                buf = buf[:-1]
                segments.append((len(buf), i + 1))
                buf += lines[i].rstrip("\r").rstrip(_BLANK)
                i += 1
            if buf.endswith("\\"):
                buf = buf[:-1]
            self._one(buf, segments, filename, lineno)

    def _one(self, buf: str, segments: list[tuple[int, int]], filename: str, lineno: int) -> None:
        builder = _RuleBuilder(buf, self.vars, filename, lineno)
        try:
            rule = builder.build()
        except _Error as e:
            self.errors.append(_rule_error(filename, segments, e.pos, e.message))
            return
        except _Skip as s:
            self.skipped.append(
                SkippedRule(
                    lineno, builder.sid, s.keyword, file=filename, detail=s.detail,
                    blockers=tuple(builder.blockers) or (s.keyword,), options=builder.option_names,
                )  # fmt: skip
            )
            return
        except Exception as e:  # a parser bug must not take the whole file down
            self.errors.append(
                RuleError(filename, lineno, 1, f"internal parser error: {type(e).__name__}: {e}")
            )
            return
        key = (rule.gid, rule.sid)
        first = self.first.get(key)
        if first is not None:
            where = f"{first[1]}" if first[0] == filename else f"{first[0]}:{first[1]}"
            what = f"sid {rule.sid}" if rule.gid == 1 else f"gid {rule.gid} sid {rule.sid}"
            self.errors.append(
                _rule_error(
                    filename, segments, builder.sid_pos,
                    f"duplicate {what} (first defined at line {where})",
                )  # fmt: skip
            )
            return
        self.first[key] = (filename, lineno)
        self.rules.append(rule)


def _rule_error(filename: str, segments, pos: int, message: str) -> RuleError:
    start, lineno = segments[0]
    for seg_start, seg_line in segments:
        if seg_start <= pos:
            start, lineno = seg_start, seg_line
    return RuleError(filename, lineno, pos - start + 1, message)


class _RuleBuilder:
    """Parses one logical rule line."""

    def __init__(self, buf: str, vars: Vars, filename: str, lineno: int):
        self.buf = buf
        self.vars = vars
        self.filename = filename
        self.lineno = lineno
        self.sid = 0
        self.sid_pos = 0
        self.blockers: list[str] = []
        self.option_names: tuple[str, ...] = ()

    # ------------------------------------------------------------ header

    def _header(self) -> tuple[list[tuple[int, str]], int]:
        """The header tokens (position, text) and the index of '('."""
        buf = self.buf
        tokens: list[tuple[int, str]] = []
        i = 0
        n = len(buf)
        while True:
            while i < n and buf[i] in _BLANK:
                i += 1
            if i >= n:
                return tokens, -1
            if buf[i] == "(":
                return tokens, i
            start = i
            depth = 0
            opened = -1
            while i < n:
                c = buf[i]
                if c == "[":
                    if depth == 0:
                        opened = i
                    depth += 1
                elif c == "]":
                    depth = max(0, depth - 1)
                elif c == "(" and depth:
                    break
                elif depth == 0 and c in _BLANK + "(":
                    break
                i += 1
            if depth:  # blanks may sit inside [..], but a header never holds '('
                raise _Error(opened, "unterminated [ in the rule header")
            tokens.append((start, buf[start:i]))

    def build(self) -> SuricataRule:
        buf = self.buf
        tokens, paren = self._header()
        names = ("ACTION", "PROTO", "SRC", "SPORT", "DIRECTION", "DST", "DPORT")
        form = "expected ACTION PROTO SRC SPORT -> DST DPORT (OPTIONS)"
        if len(tokens) < 7:
            missing = names[len(tokens)]
            if paren < 0 and len(tokens) == 0:
                raise _Error(0, f"{form}: missing ACTION")
            at = paren if paren >= 0 else len(buf.rstrip(_BLANK))
            raise _Error(at, f"{form}: missing {missing}")
        if len(tokens) > 7:
            raise _Error(tokens[7][0], f"{form}: unexpected {tokens[7][1]!r} before '('")
        if paren < 0:
            raise _Error(len(buf.rstrip(_BLANK)), f"{form}: missing '(' and the options")
        (act_at, action), (proto_at, proto), (src_at, src), (sp_at, sport), \
            (dir_at, direction), (dst_at, dst), (dp_at, dport) = tokens  # fmt: skip
        opts, end = self._options(paren)
        rest = buf[end + 1 :].strip(_BLANK)
        if rest:
            raise _Error(end + 1 + (len(buf[end + 1 :]) - len(buf[end + 1 :].lstrip(_BLANK))),
                         "unexpected text after the closing ')'")  # fmt: skip
        self.option_names = tuple(o.name for o in opts)
        # sid first, so skips and errors can name the rule
        sids = [o for o in opts if o.name == "sid"]
        if not sids:
            raise _Error(paren, "missing sid: every rule needs sid:N;")
        if len(sids) > 1:
            raise _Error(sids[1].name_pos, "sid given twice")
        self.sid_pos = sids[0].name_pos
        self.sid = self._int(sids[0], 1, _UINT32_MAX)

        action_l = action.lower()
        if action_l not in ACTIONS and action_l not in UNSUPPORTED_ACTIONS:
            raise _Error(act_at, f"unknown action {action!r}: expected alert, drop, reject or pass")
        proto_l = proto.lower()
        if proto_l not in PROTOCOLS and proto_l not in APP_LAYER_PROTOCOLS:
            raise _Error(
                proto_at, f"unknown protocol {proto!r}: expected one of {', '.join(PROTOCOLS)}"
            )
        if direction not in ("->", "<>"):
            if direction == "=>":
                self.blockers.append("direction:=>")
            elif direction == "<-":
                raise _Error(dir_at, "'<-' is not a direction: use '->' with SRC and DST swapped")
            else:
                raise _Error(dir_at, f"expected the direction '->' or '<>', found {direction!r}")
        if action_l in UNSUPPORTED_ACTIONS:
            self.blockers.insert(0, f"action:{action_l}")
        if proto_l in APP_LAYER_PROTOCOLS:
            self.blockers.insert(0, f"protocol:{proto_l}")
        for o in opts:
            if o.name not in _KNOWN and o.name not in self.blockers:
                self.blockers.append(o.name)
        if self.blockers:
            first = self.blockers[0]
            kind, _, what = first.partition(":")
            if kind in ("protocol", "action", "direction") and what:
                raise _Skip(first, f"unsupported {kind} {what!r}")
            raise _Skip(first)

        src_spec = self._address(src, src_at)
        dst_spec = self._address(dst, dst_at)
        sport_spec = self._ports(sport, sp_at)
        dport_spec = self._ports(dport, dp_at)
        rule = SuricataRule(
            action=action_l,
            proto=proto_l,
            src=src_spec,
            src_port=sport_spec,
            dst=dst_spec,
            dst_port=dport_spec,
            bidirectional=direction == "<>",
            elements=(),
            sid=self.sid,
            options=self.option_names,
            file=self.filename,
            line=self.lineno,
            text=buf,
        )
        _OptionParser(self, rule, opts).run()
        return rule

    def _address(self, text: str, at: int) -> AddressSpec:
        try:
            return self.vars.address(text)
        except SpecError as e:
            raise _Error(at + e.offset, e.message) from None

    def _ports(self, text: str, at: int) -> PortSpec:
        try:
            return self.vars.ports(text)
        except SpecError as e:
            raise _Error(at + e.offset, e.message) from None

    # ------------------------------------------------------------ options

    def _options(self, paren: int) -> tuple[list[_Opt], int]:
        buf = self.buf
        n = len(buf)
        i = paren + 1
        opts: list[_Opt] = []
        while True:
            while i < n and buf[i] in _BLANK:
                i += 1
            if i >= n:
                raise _Error(paren, "unterminated option list: missing ')'")
            if buf[i] == ")":
                return opts, i
            name_start = i
            while i < n and buf[i] not in ":;)":
                i += 1
            raw_name = buf[name_start:i]
            name = raw_name.strip(_BLANK)
            if not name:
                found = repr(buf[i]) if i < n else "the end"
                raise _Error(name_start, f"expected an option keyword, found {found}")
            if not _OPTION_NAME.match(name):
                raise _Error(name_start, f"invalid option keyword {name!r}")
            name = sys.intern(name.lower())  # 18,000 rules share a few dozen names
            if i >= n or buf[i] == ")":
                raise _Error(name_start, f"option {name!r} is not terminated by ';'")
            if buf[i] == ";":
                opts.append(_Opt(name, None, name_start, name_start))
                i += 1
                continue
            # a value
            i += 1
            while i < n and buf[i] in _BLANK:
                i += 1
            value_start = i
            end = self._value_end(value_start)
            if end < 0:
                raise _Error(name_start, f"option {name!r} is not terminated by ';'")
            value = buf[value_start:end].rstrip(_BLANK)
            opts.append(_Opt(name, value, name_start, value_start))
            i = end + 1

    def _value_end(self, start: int) -> int:
        """Index of the ';' ending the value at ``start``, or -1."""
        buf = self.buf
        n = len(buf)
        j = start
        if j < n and buf[j] == "!":
            j += 1
            while j < n and buf[j] in _BLANK:
                j += 1
        if j < n and buf[j] == '"':
            k = j + 1
            while k < n:
                if buf[k] == "\\":
                    k += 2
                    continue
                if buf[k] == '"':
                    break
                k += 1
            if k < n:  # closed: the value ends at the first ';' after the quote
                semi = self._plain_end(k + 1)
                if semi >= 0:
                    return semi
        return self._plain_end(start)

    def _plain_end(self, start: int) -> int:
        buf = self.buf
        n = len(buf)
        k = start
        while k < n:
            c = buf[k]
            if c == "\\":
                k += 2
                continue
            if c == ";":
                return k
            k += 1
        return -1

    def _int(self, opt: _Opt, lo: int, hi: int) -> int:
        value = opt.value
        if value is None:
            raise _Error(opt.name_pos, f"{opt.name} needs a value: {opt.name}:N;")
        if not _INT.match(value):
            raise _Error(opt.value_pos, f"{opt.name}: expected an integer, found {value!r}")
        number = int(value)
        if not lo <= number <= hi:
            raise _Error(opt.value_pos, f"{opt.name}: {number} out of range {lo}-{hi}")
        return number


class _OptionParser:
    """The options of one rule, in order, into ``rule``."""

    def __init__(self, builder: _RuleBuilder, rule: SuricataRule, opts: list[_Opt]):
        self.b = builder
        self.rule = rule
        self.opts = opts
        self.elements: list[Element] = []
        self.sticky: str | None = None
        self.last_content: ContentMatch | None = None
        self.last_match: ContentMatch | PcreMatch | None = None  # for relative pcre/isdataat
        self.seen: dict[int, set[str]] = {}  # id(content) -> modifiers applied
        self.fast_pattern_at = -1
        self.once: set[str] = set()
        self.references: list[tuple[str, str]] = []
        self.metadata: list[tuple[str, str]] = []
        self.decode_events: list[str] = []
        self.stream_events: list[str] = []

    def run(self) -> None:
        for opt in self.opts:
            name = opt.name
            if name in _CONTENT_MODIFIERS:
                self._modifier(opt)
            elif name in LEGACY_MODIFIERS:
                self._legacy(opt)
            elif name in STICKY_BUFFERS:
                self._no_value(opt)
                self.sticky = STICKY_BUFFERS[name]
            else:
                getattr(self, "_opt_" + name.replace("-", "_").replace(".", "_"))(opt)
        self._validate()
        r = self.rule
        r.elements = tuple(self.elements)
        r.references = tuple(self.references)
        r.metadata = tuple(self.metadata)
        r.decode_events = tuple(self.decode_events)
        r.stream_events = tuple(self.stream_events)

    # ------------------------------------------------------------ helpers

    def _err(self, opt: _Opt, message: str, offset: int | None = None) -> _Error:
        if offset is None:
            return _Error(opt.name_pos, message)
        return _Error(opt.value_pos + offset, message)

    def _no_value(self, opt: _Opt) -> None:
        if opt.value is not None:
            raise self._err(opt, f"{opt.name} takes no value: write '{opt.name};'")

    def _value(self, opt: _Opt) -> str:
        if opt.value is None or not opt.value.strip(_BLANK):
            raise self._err(opt, f"{opt.name} needs a value")
        return opt.value

    def _single(self, opt: _Opt) -> None:
        if opt.name in self.once:
            raise self._err(opt, f"{opt.name} given twice")
        self.once.add(opt.name)

    def _int(self, opt: _Opt, lo: int, hi: int) -> int:
        return self.b._int(opt, lo, hi)

    def _compare(self, opt: _Opt, maximum: int, text: str | None = None) -> IntCompare:
        text = self._value(opt) if text is None else text
        m = re.fullmatch(
            r"\s*(?:(\d{1,20})\s*(?:<>|-)\s*(\d{1,20})|(<=|>=|<|>|!=|!|=)?\s*(\d{1,20}))\s*", text
        )
        if m is None:
            raise self._err(
                opt, f"{opt.name}: expected N, <N, >N, <=N, >=N, !N or A<>B, found {text!r}", 0
            )
        if m.group(1) is not None:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo >= hi or hi > maximum:
                raise self._err(
                    opt, f"{opt.name}: invalid range {lo}<>{hi} (0-{maximum}, A < B)", 0
                )
            return IntCompare("<>", lo, hi, text.strip())
        op = m.group(3) or "="
        op = "!=" if op == "!" else op
        value = int(m.group(4))
        if value > maximum:
            raise self._err(opt, f"{opt.name}: {value} out of range 0-{maximum}", 0)
        return IntCompare(op, value, None, text.strip())

    # ------------------------------------------------------------ meta

    def _opt_msg(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        self.rule.msg = _printable(re.sub(r"\\([\\\";:])", r"\1", value))

    def _opt_sid(self, opt: _Opt) -> None:
        pass  # parsed with the header

    def _opt_rev(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.rev = self._int(opt, 0, _UINT32_MAX)

    def _opt_gid(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.gid = self._int(opt, 0, _UINT32_MAX)

    def _opt_priority(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.priority = self._int(opt, 1, 255)

    def _opt_classtype(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        if not _WORD.match(value):
            raise self._err(opt, f"classtype: invalid name {value!r}", 0)
        self.rule.classtype = value

    def _opt_reference(self, opt: _Opt) -> None:
        value = self._value(opt)
        kind, comma, ref = value.partition(",")
        if not comma or not kind.strip(_BLANK) or not ref.strip(_BLANK):
            raise self._err(opt, f"reference: expected TYPE,ID, found {value!r}", 0)
        self.references.append((sys.intern(kind.strip(_BLANK)), _printable(ref.strip(_BLANK))))

    def _opt_metadata(self, opt: _Opt) -> None:
        for item in self._value(opt).split(","):
            item = item.strip(_BLANK)
            if not item:
                continue
            key, _, val = item.partition(" ")
            # keys and most values (dates, "Windows_XP_Vista_7_8_10") repeat
            self.metadata.append(
                (sys.intern(_printable(key)), sys.intern(_printable(val.strip(_BLANK))))
            )

    # ------------------------------------------------------------ content

    def _opt_content(self, opt: _Opt, buffer: str | None = None) -> None:
        value = self._value(opt)
        negated, data = self._content_bytes(opt, value)
        content = ContentMatch(
            data,
            negated=negated,
            buffer=buffer if buffer is not None else self.sticky,
            text=value,
            column=opt.value_pos + 1,
        )
        self.elements.append(content)
        self.last_content = content
        self.last_match = content
        self.seen[id(content)] = set()

    def _opt_uricontent(self, opt: _Opt) -> None:
        self._opt_content(opt, buffer="http.uri")

    def _content_bytes(self, opt: _Opt, value: str) -> tuple[bool, bytes]:
        i = 0
        n = len(value)
        negated = False
        if value.startswith("!"):
            negated = True
            i = 1
            while i < n and value[i] in _BLANK:
                i += 1
        end = n
        if i < n and value[i] == '"':
            if n - i < 2 or value[-1] != '"' or _escaped_at(value, n - 1, i + 1):
                raise self._err(opt, f"{opt.name}: unterminated \"...\"", i)
            i += 1
            end = n - 1
        out = bytearray()
        chars: list[str] = []
        while i < end:
            c = value[i]
            if c == "\\":
                if i + 1 < end and value[i + 1] in '\\";:':
                    chars.append(value[i + 1])
                    i += 2
                    continue
                shown = value[i : i + 2]
                raise self._err(
                    opt,
                    f"{opt.name}: invalid escape '{shown}' "
                    "(only \\\\, \\\", \\; and \\: are escapes; "
                    "write other bytes as |hex|)",
                    i,
                )
            if c == '"':
                raise self._err(
                    opt, f"{opt.name}: unescaped '\"' inside the content: write \\\" or |22|", i
                )
            if c == "|":
                out += self._encode(opt, "".join(chars), i)
                chars = []
                close = value.find("|", i + 1, end)
                if close < 0:
                    raise self._err(opt, f"{opt.name}: unterminated |hex| section", i)
                digits = []
                for k in range(i + 1, close):
                    d = value[k]
                    if d in _BLANK:
                        continue
                    if d not in "0123456789abcdefABCDEF":
                        raise self._err(opt, f"{opt.name}: invalid hex digit {d!r} in |..|", k)
                    digits.append(d)
                if len(digits) % 2:
                    raise self._err(opt, f"{opt.name}: odd number of hex digits in |..|", i)
                out += bytes.fromhex("".join(digits))
                i = close + 1
                continue
            chars.append(c)
            i += 1
        out += self._encode(opt, "".join(chars), i)
        if not out:
            raise self._err(opt, f"{opt.name}: empty content")
        return negated, bytes(out)

    def _encode(self, opt: _Opt, text: str, at: int) -> bytes:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as e:
            bad = f"U+{ord(text[e.start]):04X}"
            raise self._err(opt, f"{opt.name}: invalid character {bad}", at) from None

    def _target(self, opt: _Opt) -> ContentMatch:
        if self.last_content is None:
            raise self._err(opt, f"{opt.name} needs a preceding content")
        seen = self.seen[id(self.last_content)]
        if opt.name in seen:
            raise self._err(opt, f"{opt.name} given twice for one content")
        seen.add(opt.name)
        return self.last_content

    def _modifier(self, opt: _Opt) -> None:
        name = opt.name
        c = self._target(opt)
        if name == "nocase":
            self._no_value(opt)
            c.nocase = True
        elif name == "rawbytes":
            self._no_value(opt)
            c.rawbytes = True
        elif name in ("startswith", "endswith"):
            self._no_value(opt)
            if name == "startswith":
                if c.offset is not None or c.depth is not None or c.relative:
                    raise self._err(
                        opt, "startswith can't be combined with offset, depth, distance or within"
                    )
                c.startswith = True
            else:
                c.endswith = True
        elif name == "fast_pattern":
            self._fast_pattern(opt, c)
        else:
            lo, hi = (_INT32[0], _INT32[1]) if name == "distance" else (0, _INT32[1])
            number = self._int(opt, lo, hi)
            if c.startswith:
                raise self._err(opt, f"{name} can't be combined with startswith")
            if name in ("offset", "depth") and c.relative:
                raise self._err(
                    opt, f"{name} can't be combined with distance/within on one content"
                )
            if name in ("distance", "within") and (c.offset is not None or c.depth is not None):
                raise self._err(opt, f"{name} can't be combined with offset/depth on one content")
            if name in ("depth", "within") and number < len(c.pattern):
                raise self._err(
                    opt, f"{name} {number} is less than the content's length {len(c.pattern)}", 0
                )
            setattr(c, name, number)

    def _fast_pattern(self, opt: _Opt, c: ContentMatch) -> None:
        if self.fast_pattern_at >= 0:
            raise self._err(opt, "fast_pattern can be set on only one content of a rule")
        self.fast_pattern_at = opt.name_pos
        c.fast_pattern = True
        if opt.value is None:
            return
        value = opt.value.strip(_BLANK)
        if value == "only":
            c.fast_pattern_only = True
            return
        m = re.fullmatch(r"(\d{1,9})\s*,\s*(\d{1,9})", value)
        if m is None:
            raise self._err(
                opt, f"fast_pattern: expected 'only' or OFFSET,LENGTH, found {value!r}", 0
            )
        start, length = int(m.group(1)), int(m.group(2))
        if length == 0 or start + length > len(c.pattern):
            raise self._err(
                opt,
                f"fast_pattern:{start},{length} is outside the content ({len(c.pattern)} bytes)",
                0,
            )
        c.fast_pattern_chop = (start, length)

    def _legacy(self, opt: _Opt) -> None:
        self._no_value(opt)
        c = self._target(opt)
        buffer = LEGACY_MODIFIERS[opt.name]
        if c.buffer is not None and c.buffer != buffer:
            raise self._err(opt, f"{opt.name} can't move a content that is already in {c.buffer}")
        c.buffer = buffer

    def _opt_isdataat(self, opt: _Opt) -> None:
        value = self._value(opt)
        parts = [p.strip(_BLANK) for p in value.split(",")]
        head = parts[0]
        negated = head.startswith("!")
        if negated:
            head = head[1:].strip(_BLANK)
        if not re.fullmatch(r"\d{1,9}", head):
            raise self._err(
                opt, f"isdataat: expected [!]N[,relative][,rawbytes], found {value!r}", 0
            )
        relative = rawbytes = False
        for p in parts[1:]:
            if p == "relative":
                relative = True
            elif p == "rawbytes":
                rawbytes = True
            else:
                raise self._err(opt, f"isdataat: unknown option {p!r}", 0)
        buffer = self.sticky
        if relative and buffer is None and self.last_match is not None:
            buffer = self.last_match.buffer
        self.elements.append(IsDataAt(int(head), relative, negated, rawbytes, buffer))

    def _opt_bsize(self, opt: _Opt) -> None:
        if self.sticky is None:
            raise self._err(opt, "bsize needs a sticky buffer (e.g. http.uri;) before it")
        self.elements.append(BufferSize(self._compare(opt, 2**64 - 1), self.sticky))

    def _opt_pcre(self, opt: _Opt) -> None:
        value = self._value(opt).strip(_BLANK)
        v = value
        negated = False
        if v.startswith("!"):
            negated = True
            v = v[1:].lstrip(_BLANK)
        if v.startswith('"'):
            v = v[1:]
            if v.startswith("!") and not negated:
                negated = True
                v = v[1:]
        if v.endswith('"') and not _escaped_at(v, len(v) - 1, 0):
            v = v[:-1]
        if not v.startswith("/"):
            raise self._err(opt, f"pcre: expected \"/regex/flags\", found {value!r}", 0)
        last = v.rfind("/")
        if last <= 0:
            raise self._err(opt, "pcre: missing the closing '/'", 0)
        source, flags = v[1:last], v[last + 1 :].strip(_BLANK)
        for f in flags:
            if f not in PCRE_FLAGS:
                raise self._err(opt, f"pcre: unknown modifier {f!r}", 0)
        if not source:
            raise self._err(opt, "pcre: empty regex", 0)
        for f in flags:
            if f in PCRE_UNSUPPORTED_FLAGS:
                what = PCRE_UNSUPPORTED_FLAGS[f]
                raise _Skip(f"pcre/{f}", f"unsupported pcre modifier {f!r} ({what} buffer)")
        buffers = {PCRE_BUFFER_FLAGS[f] for f in flags if f in PCRE_BUFFER_FLAGS}
        if len(buffers) > 1:
            names = ", ".join(sorted(buffers))
            raise self._err(opt, f"pcre: modifiers for more than one buffer ({names})", 0)
        buffer = buffers.pop() if buffers else None
        if buffer is not None and self.sticky is not None and buffer != self.sticky:
            raise self._err(
                opt, f"pcre: modifier for {buffer} inside sticky buffer {self.sticky}", 0
            )
        relative = "R" in flags
        if buffer is None:
            buffer = self.sticky
            if buffer is None and relative and self.last_match is not None:
                buffer = self.last_match.buffer
        try:
            regex = compile_pcre(source, flags)
        except PcreUnsupported as e:
            raise _Skip("pcre-syntax", f"PCRE construct Python can't compile: {e}") from None
        pcre = PcreMatch(
            source, flags, regex, relative, negated, buffer, text=value, column=opt.value_pos + 1
        )
        self.elements.append(pcre)
        self.last_match = pcre

    # ------------------------------------------------------------ the rest

    def _opt_flow(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt)
        seen: dict[str, bool] = {}
        names = {
            "to_server": "to_server", "from_client": "to_server",
            "to_client": "to_client", "from_server": "to_client",
            "established": "established", "not_established": "not_established",
            "stateless": "stateless", "only_stream": "only_stream", "no_stream": "no_stream",
        }  # fmt: skip
        for item in value.split(","):
            item = item.strip(_BLANK).lower()
            if item in ("only_frag", "no_frag"):
                raise _Skip(f"flow:{item}", f"unsupported flow option {item!r}")
            if item not in names:
                raise self._err(opt, f"flow: unknown option {item!r}", 0)
            seen[names[item]] = True
        for a, b in (("to_server", "to_client"), ("established", "not_established"),
                     ("established", "stateless"), ("only_stream", "no_stream")):  # fmt: skip
            if a in seen and b in seen:
                raise self._err(opt, f"flow: {a} and {b} contradict each other", 0)
        self.rule.flow = FlowSpec(value.strip(_BLANK), **seen)

    def _opt_dsize(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.dsize = self._compare(opt, 65535)

    def _opt_urilen(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt)
        head, comma, form = value.partition(",")
        form = form.strip(_BLANK)
        if comma and form not in ("raw", "norm"):
            raise self._err(opt, f"urilen: expected ',raw' or ',norm', found {form!r}", 0)
        self.rule.urilen = UriLen(self._compare(opt, 2**32 - 1, head), form)

    def _opt_itype(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.itype = self._compare(opt, 255)

    def _opt_icode(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.icode = self._compare(opt, 255)

    def _opt_icmp_id(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.icmp_id = self._int(opt, 0, 65535)

    def _opt_icmp_seq(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.icmp_seq = self._int(opt, 0, 65535)

    def _opt_flags(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        head, comma, mask_text = value.partition(",")
        modifier = ""
        bits = 0
        zero = False
        for ch in head.strip(_BLANK):
            if ch in "+*!":
                if modifier:
                    raise self._err(opt, f"flags: more than one modifier in {value!r}", 0)
                modifier = ch
            elif ch == "0":
                zero = True
            elif ch.upper() in TCP_FLAG_BITS:
                bits |= TCP_FLAG_BITS[ch.upper()]
            else:
                raise self._err(opt, f"flags: unknown flag {ch!r}", 0)
        if zero and bits:
            raise self._err(opt, "flags: 0 (no flags) can't be combined with flags", 0)
        if not zero and not bits:
            raise self._err(opt, f"flags: no flags in {value!r}", 0)
        ignore = 0
        if comma:
            for ch in mask_text.strip(_BLANK):
                if ch.upper() not in TCP_FLAG_BITS:
                    raise self._err(opt, f"flags: unknown flag {ch!r} in the mask", 0)
                ignore |= TCP_FLAG_BITS[ch.upper()]
        self.rule.flags = TcpFlags(value, bits, modifier, ignore)

    def _threshold(self, opt: _Opt, with_type: bool) -> Threshold:
        self._single(opt)
        value = self._value(opt)
        items: dict[str, str] = {}
        for part in value.split(","):
            words = part.split()
            if len(words) != 2:
                raise self._err(
                    opt, f"{opt.name}: expected 'KEY VALUE' items, found {part.strip()!r}", 0
                )
            key, val = words[0].lower(), words[1]
            if key in items:
                raise self._err(opt, f"{opt.name}: {key} given twice", 0)
            items[key] = val
        keys = {"track", "count", "seconds"} | ({"type"} if with_type else set())
        extra = set(items) - keys
        if extra:
            raise _Skip(opt.name, f"unsupported {opt.name} form ({', '.join(sorted(extra))})")
        missing = keys - set(items)
        if missing:
            raise self._err(opt, f"{opt.name}: missing {', '.join(sorted(missing))}", 0)
        kind = items.get("type")
        if with_type and kind not in ("limit", "threshold", "both"):
            raise self._err(
                opt, f"{opt.name}: type must be limit, threshold or both, not {kind!r}", 0
            )
        if items["track"] not in ("by_src", "by_dst", "by_rule", "by_both"):
            raise self._err(opt, f"{opt.name}: track must be by_src, by_dst, by_rule or by_both", 0)
        numbers = []
        for key in ("count", "seconds"):
            if not re.fullmatch(r"\d{1,9}", items[key]):
                raise self._err(opt, f"{opt.name}: {key} must be a number, not {items[key]!r}", 0)
            numbers.append(int(items[key]))
        return Threshold(items["track"], numbers[0], numbers[1], kind)

    def _opt_threshold(self, opt: _Opt) -> None:
        self.rule.threshold = self._threshold(opt, True)

    def _opt_detection_filter(self, opt: _Opt) -> None:
        self.rule.detection_filter = self._threshold(opt, False)

    def _event(self, opt: _Opt) -> str:
        value = self._value(opt).strip(_BLANK)
        if not _WORD.match(value):
            raise self._err(opt, f"{opt.name}: invalid event name {value!r}", 0)
        return value

    def _opt_decode_event(self, opt: _Opt) -> None:
        self.decode_events.append(self._event(opt))

    def _opt_stream_event(self, opt: _Opt) -> None:
        self.stream_events.append(self._event(opt))

    # ------------------------------------------------------------ whole rule

    def _validate(self) -> None:
        for e in self.elements:
            if not isinstance(e, ContentMatch):
                continue
            if e.fast_pattern_only and (
                e.negated or e.offset is not None or e.depth is not None or e.relative
            ):
                raise _Error(
                    e.column - 1,
                    "fast_pattern:only can't be used on a negated content or one with "
                    "offset/depth/distance/within",
                )
            if e.buffer == "http.host" and not e.nocase and e.pattern.lower() != e.pattern:
                raise _Error(
                    e.column - 1,
                    "http.host content has upper case letters but the host buffer is lower "
                    "case: write it in lower case or add nocase",
                )


def _escaped_at(text: str, index: int, start: int) -> bool:
    """Whether text[index] is preceded by an odd number of backslashes."""
    count = 0
    k = index - 1
    while k >= start and text[k] == "\\":
        count += 1
        k -= 1
    return count % 2 == 1


def _printable(text: str) -> str:
    """Undecodable bytes (surrogate escapes) as U+FFFD, for logs and JSON."""
    if any("\ud800" <= c <= "\udfff" for c in text):
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


# ======================================================================= PCRE


class PcreUnsupported(ValueError):
    """A PCRE construct Python's ``re`` can't express."""


_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": "\\t\\n\\x0b\\x0c\\r ",
    "blank": " \\t",
    "punct": "!-/:-@\\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "word": "\\w",
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
    "ascii": "\\x00-\\x7f",
}
_VSPACE = "\\n\\x0b\\x0c\\r\\x85"
_HSPACE = "\\t \\xa0"
_FLAG_GROUP = re.compile(r"\(\?([A-Za-z]*)(?:-([A-Za-z]*))?([):])")
_QUANT = re.compile(r"\{\d+(?:,\d*)?\}")
_SIMPLE_ESCAPES = frozenset("dDwWsSbBAnrtfa")


def translate_pcre(source: str, flags: str = "") -> tuple[str, int]:
    """PCRE pattern + Suricata flags -> (Python pattern, re flags).

    Raises ``PcreUnsupported`` for constructs with no Python form. The result
    may still fail ``re.compile`` (``compile_pcre`` turns that into
    ``PcreUnsupported`` too).
    """
    t = _PcreTranslator(source, flags)
    pattern = t.run()
    py_flags = 0
    if "i" in flags:
        py_flags |= re.IGNORECASE
    if "s" in flags:
        py_flags |= re.DOTALL
    if "m" in flags:
        py_flags |= re.MULTILINE
    if "x" in flags:
        py_flags |= re.VERBOSE
    if "A" in flags:
        pattern = "\\A(?:" + pattern + ("\n)" if "x" in flags else ")")
    return pattern, py_flags


def compile_pcre(source: str, flags: str = "") -> re.Pattern:
    """``translate_pcre`` and compile (bytes); ``PcreUnsupported`` on failure."""
    try:
        pattern, py_flags = translate_pcre(source, flags)
        data = pattern.encode("utf-8", "surrogateescape")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(data, py_flags)
    except PcreUnsupported:
        raise
    except (re.error, OverflowError, RecursionError, ValueError, UnicodeError, TypeError) as e:
        raise PcreUnsupported(str(e)) from None


class _PcreTranslator:
    def __init__(self, source: str, flags: str):
        self.s = source
        self.out: list[str] = []
        self.x_mode = "x" in flags
        self.ungreedy = "G" in flags
        self.endonly = "E" in flags and "m" not in flags
        # one frame per open group: the inline-flag scopes opened in it
        self.frames: list[list[str]] = [[]]

    def run(self) -> str:
        s = self.s
        i = 0
        n = len(s)
        out = self.out
        while i < n:
            c = s[i]
            if c == "\\":
                i = self._escape(i, in_class=False)
            elif c == "[":
                i = self._class(i)
            elif c == "(":
                i = self._open(i)
            elif c == ")":
                scopes = self.frames[-1]
                out.append(")" * len(scopes))
                if len(self.frames) > 1:
                    self.frames.pop()
                out.append(")")
                i += 1
            elif c == "|":
                scopes = self.frames[-1]
                out.append(")" * len(scopes) + "|" + "".join(f"(?{f}:" for f in scopes))
                i += 1
            elif c in "*+?":
                out.append(c)
                i = self._lazy_suffix(i + 1)
            elif c == "{" and _QUANT.match(s, i):
                m = _QUANT.match(s, i)
                out.append(m.group())
                i = self._lazy_suffix(m.end())
            elif c == "$" and self.endonly:
                out.append("\\Z")
                i += 1
            elif c == "#" and self.x_mode:
                end = s.find("\n", i)
                end = n if end < 0 else end
                out.append(s[i:end])
                i = end
            else:
                out.append(c)
                i += 1
        out.append(")" * len(self.frames[0]))
        return "".join(out)

    def _lazy_suffix(self, i: int) -> int:
        """After a quantifier: flip greediness under G, keep +/? suffixes."""
        s = self.s
        nxt = s[i] if i < len(s) else ""
        if nxt == "+":
            self.out.append("+")
            return i + 1
        if self.ungreedy:
            if nxt == "?":
                return i + 1  # lazy under G -> greedy
            self.out.append("?")
            return i
        if nxt == "?":
            self.out.append("?")
            return i + 1
        return i

    def _open(self, i: int) -> int:
        s = self.s
        out = self.out
        if s.startswith("(*", i):
            raise PcreUnsupported(f"backtracking verb or option {s[i:i + 12]!r}")
        if not s.startswith("(?", i):
            out.append("(")
            self.frames.append([])
            return i + 1
        if s.startswith("(?#", i):
            end = s.find(")", i)
            if end < 0:
                raise PcreUnsupported("unterminated (?# comment")
            return end + 1  # dropped
        m = _FLAG_GROUP.match(s, i)
        if m:
            on, off, kind = m.group(1), m.group(2) or "", m.group(3)
            for f in on + off:
                if f not in "imsx":
                    raise PcreUnsupported(f"inline option {f!r} in {m.group()!r}")
            if "x" in on:
                self.x_mode = True
            spec = on + ("-" + off if off else "")
            if kind == ")":
                if spec:
                    out.append(f"(?{spec}:")
                    self.frames[-1].append(spec)
            else:
                out.append(f"(?{spec}:" if spec else "(?:")
                self.frames.append([])
            return m.end()
        for prefix in ("(?:", "(?=", "(?!", "(?<=", "(?<!", "(?>"):
            if s.startswith(prefix, i):
                out.append(prefix)
                self.frames.append([])
                return i + len(prefix)
        m = re.compile(r"\(\?(?:P?<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')").match(s, i)
        if m:
            out.append(f"(?P<{m.group(1) or m.group(2)}>")
            self.frames.append([])
            return m.end()
        m = re.compile(r"\(\?P=([A-Za-z_]\w*)\)").match(s, i)
        if m:
            out.append(m.group())
            return m.end()
        m = re.compile(r"\(\?\((\d+|[A-Za-z_]\w*)\)").match(s, i)
        if m:
            out.append(m.group())
            self.frames.append([])
            return m.end()
        raise PcreUnsupported(f"group construct {s[i:i + 6]!r}")

    def _class(self, i: int) -> int:
        s = self.s
        n = len(s)
        out = self.out
        out.append("[")
        i += 1
        if i < n and s[i] == "^":
            out.append("^")
            i += 1
        if i < n and s[i] == "]":
            out.append("\\]")
            i += 1
        while i < n:
            c = s[i]
            if c == "]":
                out.append("]")
                return i + 1
            if c == "\\":
                i = self._escape(i, in_class=True)
                continue
            if c == "[":
                m = re.compile(r"\[:(\^?)([a-z]+):\]").match(s, i)
                if m:
                    if m.group(1) or m.group(2) not in _POSIX_CLASSES:
                        raise PcreUnsupported(f"POSIX class {m.group()!r}")
                    out.append(_POSIX_CLASSES[m.group(2)])
                    i = m.end()
                    continue
                out.append("\\[")
                i += 1
                continue
            if c in "&~|":
                out.append("\\" + c)
                i += 1
                continue
            out.append(c)
            i += 1
        raise PcreUnsupported("unterminated character class")

    def _escape(self, i: int, in_class: bool) -> int:
        s = self.s
        n = len(s)
        out = self.out
        if i + 1 >= n:
            raise PcreUnsupported("pattern ends with a backslash")
        c = s[i + 1]
        j = i + 2
        if c == "x":
            if j < n and s[j] == "{":
                end = s.find("}", j)
                digits = s[j + 1 : end] if end > 0 else ""
                if end < 0 or not re.fullmatch(r"[0-9A-Fa-f]{1,8}", digits):
                    raise PcreUnsupported(f"bad \\x{{...}} escape {s[i:i + 12]!r}")
                value = int(digits, 16)
                if value > 0xFF:
                    raise PcreUnsupported(f"character \\x{{{digits}}} above 0xff")
                out.append(f"\\x{value:02x}")
                return end + 1
            m = re.compile(r"[0-9A-Fa-f]{0,2}").match(s, j)
            digits = m.group()
            out.append("\\x" + digits if len(digits) == 2 else f"\\x{int(digits or '0', 16):02x}")
            return m.end()
        if c == "0":
            m = re.compile(r"[0-7]{0,2}").match(s, j)
            out.append(f"\\x{int(m.group() or '0', 8):02x}")
            return m.end()
        if c == "o":
            raise PcreUnsupported("\\o{...} escape")
        if c == "e":
            out.append("\\x1b")
            return j
        if c == "c":
            if j >= n or not 32 <= ord(s[j]) < 127:
                raise PcreUnsupported("bad \\c escape")
            out.append(f"\\x{ord(s[j].upper()) ^ 0x40:02x}")
            return j + 1
        if c == "Q":
            end = s.find("\\E", j)
            literal = s[j:] if end < 0 else s[j:end]
            out.append("".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in literal))
            return n if end < 0 else end + 2
        if c == "E":
            return j  # a stray \E is ignored by PCRE
        if c == "v":
            out.append(_VSPACE if in_class else f"[{_VSPACE}]")
            return j
        if c == "h":
            out.append(_HSPACE if in_class else f"[{_HSPACE}]")
            return j
        if in_class and c in "VHRNKXCGzZ":
            raise PcreUnsupported(f"\\{c} inside a character class")
        if c == "V":
            out.append(f"[^{_VSPACE}]")
            return j
        if c == "H":
            out.append(f"[^{_HSPACE}]")
            return j
        if c == "R":
            out.append(f"(?:\\r\\n|[{_VSPACE}])")
            return j
        if c == "N" and not s.startswith("{", j):
            out.append("[^\\n]")
            return j
        if c == "z":
            out.append("\\Z")
            return j
        if c == "Z":
            out.append("(?=\\n?\\Z)")
            return j
        if c == "k":
            m = re.compile(r"<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|\{([A-Za-z_]\w*)\}").match(s, j)
            if not m:
                raise PcreUnsupported("bad \\k escape")
            out.append(f"(?P={m.group(1) or m.group(2) or m.group(3)})")
            return m.end()
        if c == "g":
            m = re.compile(r"\{(\d+)\}|(\d+)").match(s, j)
            if not m:
                raise PcreUnsupported(f"\\g escape {s[i:i + 8]!r}")
            out.append(f"(?:\\{m.group(1) or m.group(2)})")
            return m.end()
        if c in "KXCGpPu" or c == "N":
            raise PcreUnsupported(f"\\{c} escape")
        if c in "0123456789":  # not isdigit(): that is true of '²' too
            if in_class:
                m = re.compile(r"[0-7]{1,3}").match(s, i + 1)
                if not m:
                    raise PcreUnsupported(f"\\{c} inside a character class")
                out.append(f"\\x{int(m.group(), 8) & 0xFF:02x}")
                return m.end()
            m = re.compile(r"[0-9]+").match(s, i + 1)
            out.append(f"(?:\\{m.group()})")  # a back reference, fenced from digits after it
            return m.end()
        out.append("\\" + c)
        return j
