"""Translate plain-content Suricata rules into native rules (../shared/spec/rules.md).

Used by ``test_suricata_verify.py`` to run suricata-verify cases through the
sensor. Only rules whose detection is plain content translate:

    alert PROTO SRC SPORT -> DST DPORT (content:"..."; [nocase;] ... sid:N;)

* NAME is ``sid-N``; PROTO ``tcp``/``udp``/``icmp``/``ip`` map to themselves,
  ``icmpv6`` to ``icmp`` (the native ``icmp`` covers ICMPv6), ``tcp-stream``
  to ``tcp`` (the native tcp rule searches the reassembled stream only, which
  is what tcp-stream means), ``http`` to ``tcp`` (a content with no sticky
  buffer in an ``alert http`` rule is matched against the TCP payload of an
  HTTP flow; the "is HTTP" condition is not expressible and is dropped).
* ``tcp-pkt`` (match single packets, never the stream) has no native protocol.
  Such a rule is translated to ``ip * *`` -- the native ip rule searches each
  datagram's IP payload on its own -- and marked ``packet_level``: the test
  runs packet-level rules in a separate sensor run, because in one rule set a
  native ``tcp * *`` rule takes every TCP segment to the reassembler and the
  ``ip`` rules never see it (see KNOWN.md). The IP payload includes the TCP
  header, so a pattern could in principle also match header bytes.
* SPORT/DPORT: ``any`` -> ``*``, ``80``, ``[80,8080]`` -> ``80,8080``,
  ``1024:`` and ``:1023`` as they are. Negation (``!``) and variables
  (``$HTTP_PORTS``) do not translate. Addresses are ignored; a rule with
  addresses other than ``any`` gets a note.
* ``content`` (not negated) becomes one pattern, ``"..."``, or ``'...'`` with
  ``nocase``. ``fast_pattern`` only changes the prefilter and is dropped.
  ``msg``, ``rev``, ``classtype``, ``reference``, ``priority``, ``metadata``,
  ``gid`` are descriptive.
* ``flow`` with ``to_server``/``to_client``/``from_server``/``from_client``/
  ``established``: the native format has no flow keyword. The direction is
  what the ports say (a rule ``any -> any`` with ``flow:to_server`` matches
  either direction natively) and ``established`` is dropped; each becomes a
  note, and KNOWN.md says where it decides a case.
* Anything else (``depth``, ``offset``, ``distance``, ``within``, ``pcre``,
  ``http_*``, ``dsize``, ``flags``, ``decode-event``, ``stream-event``,
  ``threshold``, ``itype`` ...) makes the rule "not plain": it is not
  translated and ``reason`` says which keywords.

``translate_header_only`` additionally accepts rules whose only detection is
an exact ``itype``/``icode`` pair (native ``icmp TYPE CODE *``); the test uses
it for the few defrag cases that need nothing else, and reports them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Translated", "parse_rule", "translate_rule", "translate_file", "native_pattern"]

DESCRIPTIVE = {"msg", "sid", "rev", "classtype", "reference", "priority", "metadata", "gid",
               "target"}
FLOW_OK = {"to_server", "to_client", "from_server", "from_client", "established"}
PROTO_MAP = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "icmp", "ip": "ip",
             "tcp-stream": "tcp", "http": "tcp", "tcp-pkt": "ip"}

_HEADER = re.compile(
    r"^\s*(?P<action>\w+)\s+(?P<proto>[\w-]+)\s+(?P<src>\S+)\s+(?P<sport>\S+)\s+"
    r"(?P<dir>->|<>)\s+(?P<dst>\S+)\s+(?P<dport>\S+)\s*\((?P<opts>.*)\)\s*$")


@dataclass
class Translated:
    """One Suricata rule and what became of it."""

    raw: str
    sid: int | None = None
    native: str | None = None  # the native rule line; None: not translated
    proto: str = ""  # native PROTO, SRC, DST and PATTERNs of that line
    src: str = ""
    dst: str = ""
    patterns: str = ""
    reason: str | None = None  # why not translated
    notes: list = field(default_factory=list)  # what the translation drops
    packet_level: bool = False  # tcp-pkt: run apart from the stream rules
    header_only: bool = False  # itype/icode -> icmp TYPE CODE *

    def line(self, proto: str | None = None) -> str:
        """The native rule, optionally with another PROTO (ip -> tcp)."""
        proto = proto or self.proto
        src, dst = (self.src, self.dst) if proto == self.proto else ("*", "*")
        return f"sid-{self.sid} {proto} {src} {dst} {self.patterns}"


def parse_rule(line: str):
    """(header dict, [(keyword, value or None), ...]) of a Suricata rule."""
    m = _HEADER.match(line)
    if not m:
        raise ValueError(f"not a Suricata rule: {line!r}")
    return m.groupdict(), _split_options(m.group("opts"))


def _split_options(text: str):
    opts, buf, quoted, i = [], [], False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            buf.append(text[i:i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == ";" and not quoted:
            _add_option(opts, "".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    _add_option(opts, "".join(buf))
    return opts


def _add_option(opts, item: str):
    item = item.strip()
    if not item:
        return
    key, colon, value = item.partition(":")
    opts.append((key.strip().lower(), value.strip() if colon else None))


def content_bytes(value: str) -> tuple[bytes, bool]:
    """The bytes of a Suricata content value and whether it is negated."""
    value = value.strip()
    negated = value.startswith("!")
    if negated:
        value = value[1:].strip()
    if not (len(value) >= 2 and value[0] == value[-1] == '"'):
        raise ValueError(f"content value not quoted: {value!r}")
    value = value[1:-1]
    out, i, in_hex = bytearray(), 0, False
    while i < len(value):
        c = value[i]
        if c == "|":
            in_hex = not in_hex
            i += 1
        elif in_hex:
            digits = ""
            while i < len(value) and value[i] != "|":
                digits += value[i]
                i += 1
            out += bytes.fromhex(digits.replace(" ", ""))
        elif c == "\\" and i + 1 < len(value):
            out += value[i + 1].encode("latin-1")
            i += 2
        else:
            out += c.encode("utf-8")
            i += 1
    if in_hex:
        raise ValueError(f"unterminated hex section in {value!r}")
    return bytes(out), negated


def native_pattern(data: bytes, nocase: bool) -> str:
    """``"text|hex|"`` (or ``'...'``): printable ASCII as text, the rest as hex."""
    quote = "'" if nocase else '"'
    parts, hexrun = [], []
    for b in data:
        ch = chr(b)
        if 0x21 <= b <= 0x7E and ch not in "\"'\\|":
            if hexrun:
                parts.append("|" + " ".join(hexrun) + "|")
                hexrun = []
            parts.append(ch)
        else:
            hexrun.append(f"{b:02x}")
    if hexrun:
        parts.append("|" + " ".join(hexrun) + "|")
    return quote + "".join(parts) + quote


def _port(spec: str) -> str | None:
    """Native port spec for a Suricata one, or None when not expressible."""
    if spec == "any":
        return "*"
    if spec.startswith("[") and spec.endswith("]"):
        items = [s.strip() for s in spec[1:-1].split(",")]
    else:
        items = [spec]
    for item in items:
        if not re.fullmatch(r"\d*:?\d*", item) or item in ("", ":"):
            return None  # negation, variables, nested lists
    return ",".join(items)


def translate_rule(line: str, header_only: bool = False) -> Translated:
    t = Translated(raw=line.strip())
    try:
        hdr, opts = parse_rule(line)
    except ValueError as e:
        t.reason = str(e)
        return t
    for key, value in opts:
        if key == "sid" and value:
            t.sid = int(value)
    proto = hdr["proto"].lower()
    bad = []
    if hdr["action"] != "alert":
        bad.append(f"action {hdr['action']}")
    if proto not in PROTO_MAP:
        bad.append(f"protocol {proto}")
    if hdr["dir"] != "->":
        bad.append("bidirectional '<>' header")
    native_proto = PROTO_MAP.get(proto)
    if proto == "tcp-pkt":
        t.packet_level = True
        t.notes.append("tcp-pkt -> ip * * (per-packet search of the IP payload)")
    elif proto == "tcp-stream":
        t.notes.append("tcp-stream -> tcp")
    elif proto == "http":
        t.notes.append("http -> tcp (HTTP protocol detection dropped)")
    for side in ("src", "dst"):
        if hdr[side] != "any":
            t.notes.append(f"{side} address {hdr[side]} ignored")
    sport, dport = _port(hdr["sport"]), _port(hdr["dport"])
    if native_proto in ("tcp", "udp"):
        if sport is None:
            bad.append(f"source port {hdr['sport']}")
        if dport is None:
            bad.append(f"destination port {hdr['dport']}")
    elif native_proto in ("ip", "icmp"):
        if proto != "tcp-pkt" and (hdr["sport"] != "any" or hdr["dport"] != "any"):
            bad.append(f"ports on a {proto} rule")
        if proto == "tcp-pkt" and (sport != "*" or dport != "*"):
            bad.append("ports on a tcp-pkt rule (ip rules take none)")
        sport = dport = "*"

    patterns, unplain = [], []
    itype = icode = None
    last = None  # index of the last content pattern, for nocase
    for key, value in opts:
        if key in DESCRIPTIVE:
            continue
        if key == "content":
            try:
                data, negated = content_bytes(value or "")
            except ValueError as e:
                bad.append(str(e))
                continue
            if negated:
                unplain.append("content:!")
                continue
            patterns.append([data, False])
            last = len(patterns) - 1
        elif key == "nocase":
            if last is not None:  # else it modifies a keyword already refused
                patterns[last][1] = True
        elif key == "fast_pattern":
            continue
        elif key == "flow":
            words = {w.strip() for w in (value or "").split(",")}
            extra = words - FLOW_OK
            if extra:
                unplain.append("flow:" + ",".join(sorted(extra)))
            else:
                t.notes.append(f"flow:{value} dropped (direction from the ports)")
        elif header_only and key in ("itype", "icode") and value and value.isdigit():
            if key == "itype":
                itype = value
            else:
                icode = value
        else:
            unplain.append(key)
            last = None  # modifiers after this keyword are its own
    if unplain:
        bad.append("not plain: " + ", ".join(dict.fromkeys(unplain)))
    if t.sid is None:
        bad.append("no sid")
    if not patterns and not bad:
        if header_only and native_proto == "icmp" and itype is not None:
            t.header_only = True
            sport, dport = itype, icode or "*"
        else:
            bad.append("no content")
    if bad:
        t.reason = "; ".join(bad)
        return t
    pats = " ".join(native_pattern(d, nc) for d, nc in patterns) or "*"
    t.proto, t.src, t.dst, t.patterns = native_proto, sport, dport, pats
    t.native = t.line()
    return t


def rule_lines(path: Path):
    for raw in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            yield line


def translate_file(path: Path, header_only: bool = False) -> list:
    return [translate_rule(line, header_only) for line in rule_lines(path)]
