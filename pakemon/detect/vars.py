"""Address and port variables for Snort/Suricata rules, and the specs they fill.

A Suricata rule header names its addresses and ports with variables
(``$HOME_NET``, ``$HTTP_PORTS``); this module holds their usual values, reads
a file that overrides them, and parses the address and port specs of a rule
header, variables expanded:

    addresses   any | 1.2.3.4 | 10.0.0.0/8 | 10.0.0.0/255.0.0.0 | 2001:db8::/32
                | 1.2.3.4-1.2.3.9 | $NAME | [spec, spec, ...] | !spec
    ports       any | 80 | 1024:65535 | 1024: | :1023 | $NAME | [spec, ...] | !spec

A list is the union of its plain items minus the union of its negated items
(a list of negated items only is "everything except those"), as in Suricata;
lists nest, and ``!`` applies to a whole list or variable. A top-level list
may go without brackets (``!5800,!445`` is ``[!5800,!445]``): Suricata's
spec parsers split on a comma outside brackets, and ET Open has such a rule. A spec is computed
into a set of ranges once: ``AddressSpec.ranges`` (IPv4 and IPv6 in one
integer space, see ``AddressSpec``) and ``PortSpec.ranges``, so a negation is
a complement and nothing is left to interpret at match time. An empty result
(``!any``, ``[80,!80]``) is an error, as in Suricata.

Defaults
--------
``DEFAULT_VARS`` are the ``address-groups`` and ``port-groups`` of the
``suricata.yaml`` that Suricata ships (6.x/7.x), plus ``GTP_PORTS``, which
suricata.yaml lacks, with the value of Snort's ``snort.conf``.

Variables share one namespace (Suricata keeps address and port groups apart,
but no usual name is in both); a variable is parsed as an address or a port
spec where it is used, so ``$HOME_NET`` in a port position is an error there.

The vars file (``load_vars``)
-----------------------------
A text file, one variable a line, overriding the defaults by name (names are
case-sensitive, an optional leading ``$`` is dropped)::

    # comment
    HOME_NET [10.0.0.0/8,192.168.0.0/16]
    ipvar DNS_SERVERS [10.0.0.53,10.0.1.53]      # Snort's ipvar/portvar/var
    portvar HTTP_PORTS [80,8080]
    HTTP_SERVERS: "$HOME_NET"                     # suricata.yaml's form

``NAME VALUE``, ``ipvar|portvar|var NAME VALUE`` and ``NAME: VALUE`` (VALUE
optionally in double or single quotes) are all accepted. A file with an
``address-groups:`` or ``port-groups:`` line is read as YAML-ish instead: only
the more-indented ``NAME: VALUE`` lines under those two keys count, so a whole
``suricata.yaml`` can be given and its other sections are ignored (no YAML
library is needed; anchors, flow mappings and the like are not understood).
Every value must parse as an address or a port spec, against the other
variables; errors are ``FILE:LINE:COLUMN: message``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pakemon.detect.rules import PortSpec, RuleError, RuleFileError

__all__ = [
    "ADDRESS_MAX",
    "ANY_ADDRESS",
    "DEFAULT_ADDRESS_VARS",
    "DEFAULT_PORT_VARS",
    "DEFAULT_VARS",
    "AddressSpec",
    "SpecError",
    "Vars",
    "load_vars",
    "parse_vars",
]

DEFAULT_ADDRESS_VARS: Mapping[str, str] = MappingProxyType(
    {
        "HOME_NET": "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]",
        "EXTERNAL_NET": "!$HOME_NET",
        "HTTP_SERVERS": "$HOME_NET",
        "SMTP_SERVERS": "$HOME_NET",
        "SQL_SERVERS": "$HOME_NET",
        "DNS_SERVERS": "$HOME_NET",
        "TELNET_SERVERS": "$HOME_NET",
        "AIM_SERVERS": "$EXTERNAL_NET",
        "DC_SERVERS": "$HOME_NET",
        "DNP3_SERVER": "$HOME_NET",
        "DNP3_CLIENT": "$HOME_NET",
        "MODBUS_CLIENT": "$HOME_NET",
        "MODBUS_SERVER": "$HOME_NET",
        "ENIP_CLIENT": "$HOME_NET",
        "ENIP_SERVER": "$HOME_NET",
    }
)

DEFAULT_PORT_VARS: Mapping[str, str] = MappingProxyType(
    {
        "HTTP_PORTS": "80",
        "SHELLCODE_PORTS": "!80",
        "ORACLE_PORTS": "1521",
        "SSH_PORTS": "22",
        "DNP3_PORTS": "20000",
        "MODBUS_PORTS": "502",
        "FILE_DATA_PORTS": "[$HTTP_PORTS,110,143]",
        "FTP_PORTS": "21",
        "GENEVE_PORTS": "6081",
        "VXLAN_PORTS": "4789",
        "TEREDO_PORTS": "3544",
        "GTP_PORTS": "[2123,2152,3386]",  # snort.conf; not in suricata.yaml
    }
)

DEFAULT_VARS: Mapping[str, str] = MappingProxyType({**DEFAULT_ADDRESS_VARS, **DEFAULT_PORT_VARS})

PORT_MAX = 65535
_V6_BASE = 1 << 32  # IPv6 addresses are offset past the IPv4 space
ADDRESS_MAX = _V6_BASE + (1 << 128) - 1

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_VAR_REF = re.compile(r"[A-Za-z0-9_]+")
_DELIMS = frozenset("[],!")
_BLANKS = " \t\r\f\v\n"
_MAX_DEPTH = 64  # nesting of lists and variables

Ranges = tuple[tuple[int, int], ...]


class SpecError(ValueError):
    """A bad address or port spec; ``offset`` is the 0-based index in the text."""

    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset
        self.message = message


@dataclass(frozen=True, slots=True)
class AddressSpec:
    """A set of IPv4 and IPv6 addresses, as sorted disjoint inclusive ranges.

    IPv4 address ``a`` is the integer ``a`` and IPv6 address ``a`` is
    ``2**32 + a``, so one range list holds both families (a range may run on
    from the top of IPv4 into IPv6; ``any`` is the one range
    0-``ADDRESS_MAX``). ``text`` is the spec as written in the rule
    (variables unexpanded).
    """

    text: str
    ranges: Ranges
    any: bool = False

    def __contains__(self, address: object) -> bool:
        if self.any:
            return True
        try:
            key = _address_key(address)
        except (TypeError, ValueError):
            return False
        i = bisect_right(self.ranges, (key, ADDRESS_MAX))
        return i > 0 and self.ranges[i - 1][0] <= key <= self.ranges[i - 1][1]

    @property
    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The set as a minimal list of CIDR networks (IPv4 first)."""
        nets: list = []
        pieces = []
        for lo, hi in self.ranges:  # a range may run from IPv4 on into IPv6
            if lo < _V6_BASE <= hi:
                pieces += [(lo, _V6_BASE - 1), (_V6_BASE, hi)]
            else:
                pieces.append((lo, hi))
        for lo, hi in pieces:
            if hi < _V6_BASE:
                first, last = ipaddress.IPv4Address(lo), ipaddress.IPv4Address(hi)
            else:
                first = ipaddress.IPv6Address(lo - _V6_BASE)
                last = ipaddress.IPv6Address(hi - _V6_BASE)
            nets.extend(ipaddress.summarize_address_range(first, last))
        return nets


ANY_ADDRESS = AddressSpec("any", ((0, ADDRESS_MAX),), any=True)


def _address_key(address: object) -> int:
    if isinstance(address, (bytes, bytearray)) and len(address) in (4, 16):
        address = ipaddress.ip_address(bytes(address))
    elif isinstance(address, str):
        address = ipaddress.ip_address(address)
    if isinstance(address, ipaddress.IPv4Address):
        return int(address)
    if isinstance(address, ipaddress.IPv6Address):
        return _V6_BASE + int(address)
    raise TypeError(f"not an IP address: {address!r}")


# ---------------------------------------------------------------- range sets


def _normalize(ranges) -> Ranges:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _complement(ranges: Ranges, lo: int, hi: int) -> Ranges:
    out = []
    at = lo
    for a, b in ranges:
        if a > at:
            out.append((at, a - 1))
        at = max(at, b + 1)
    if at <= hi:
        out.append((at, hi))
    return tuple(out)


def _difference(ranges: Ranges, minus: Ranges, lo: int, hi: int) -> Ranges:
    keep = _complement(minus, lo, hi)
    out = []
    i = j = 0
    while i < len(ranges) and j < len(keep):
        a = max(ranges[i][0], keep[j][0])
        b = min(ranges[i][1], keep[j][1])
        if a <= b:
            out.append((a, b))
        if ranges[i][1] < keep[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


# ------------------------------------------------------------------ the specs


class _Kind:
    """What differs between address and port specs."""

    name = ""
    lo = 0
    hi = 0

    def atom(self, text: str) -> Ranges:  # raises ValueError with a message
        raise NotImplementedError


class _AddressKind(_Kind):
    name = "address"
    lo = 0
    hi = ADDRESS_MAX

    def atom(self, text: str) -> Ranges:
        if text.lower() == "any":
            return ((0, ADDRESS_MAX),)
        if "-" in text and "/" not in text:
            first_text, _, last_text = text.partition("-")
            first = _parse_ip(first_text, text)
            last = _parse_ip(last_text, text)
            if first.version != last.version:
                raise ValueError(f"address range {text!r} mixes IPv4 and IPv6")
            a, b = _address_key(first), _address_key(last)
            if a > b:
                raise ValueError(f"empty address range {text!r}: the start is above the end")
            return ((a, b),)
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(
                f"invalid address {text!r}: expected any, an IPv4 or IPv6 address, "
                "a CIDR block, a range A-B, a $VARIABLE or a [list]"
            ) from None
        base = 0 if net.version == 4 else _V6_BASE
        return ((base + int(net.network_address), base + int(net.broadcast_address)),)


def _parse_ip(text: str, whole: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"invalid address {text!r} in range {whole!r}") from None


class _PortKind(_Kind):
    name = "port"
    lo = 0
    hi = PORT_MAX

    def atom(self, text: str) -> Ranges:
        if text.lower() == "any":
            return ((0, PORT_MAX),)
        lo_text, colon, hi_text = text.partition(":")
        if not re.fullmatch(r"\d*", lo_text) or not re.fullmatch(r"\d*", hi_text) or (
            not lo_text and not hi_text
        ):
            raise ValueError(
                f"invalid port {text!r}: expected any, N, LO:HI, LO:, :HI, "
                "a $VARIABLE or a [list]"
            )
        lo = _port_number(lo_text) if lo_text else 0
        hi = _port_number(hi_text) if hi_text else (PORT_MAX if colon else lo)
        if lo > hi:
            raise ValueError(f"empty port range {text}: {lo} is above {hi}")
        return ((lo, hi),)


def _port_number(digits: str) -> int:
    if len(digits.lstrip("0")) > 5 or int(digits) > PORT_MAX:
        shown = digits if len(digits) <= 12 else digits[:12] + "..."
        raise ValueError(f"port {shown} out of range 0-{PORT_MAX}")
    return int(digits)


_ADDRESS = _AddressKind()
_PORT = _PortKind()


class Vars:
    """Variable values (defaults overridden) and the specs parsed against them.

    ``address(text)`` and ``ports(text)`` parse a rule header's spec and
    cache the result by text, so the 18,000 rules of a rule set that all say
    ``$HOME_NET`` share one ``AddressSpec``. Both raise ``SpecError``.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None, defaults: bool = True):
        self.values: dict[str, str] = dict(DEFAULT_VARS) if defaults else {}
        for name, value in (overrides or {}).items():
            self.values[str(name).lstrip("$")] = str(value)
        self._specs: dict[tuple[str, str], object] = {}
        self._vars: dict[tuple[str, str], Ranges] = {}

    @classmethod
    def coerce(cls, value: object) -> Vars:
        """``None`` (defaults), a ``Vars``, a mapping of overrides, or the path
        of a vars file (overrides; ``RuleFileError`` if it has errors)."""
        if value is None:
            return cls()
        if isinstance(value, Vars):
            return value
        if isinstance(value, Mapping):
            return cls(value)
        if isinstance(value, (str, os.PathLike)):
            return load_vars(value)
        raise TypeError(f"vars must be a mapping, a Vars or a path, not {type(value).__name__}")

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def address(self, text: str) -> AddressSpec:
        key = ("a", text)
        spec = self._specs.get(key)
        if spec is None:
            ranges = _SpecParser(self, _ADDRESS, text).parse()
            if ranges == ((0, ADDRESS_MAX),):
                spec = ANY_ADDRESS if text.strip().lower() == "any" else AddressSpec(
                    text, ranges, any=True
                )
            else:
                spec = AddressSpec(text, ranges)
            self._specs[key] = spec
        return spec  # type: ignore[return-value]

    def ports(self, text: str) -> PortSpec:
        key = ("p", text)
        spec = self._specs.get(key)
        if spec is None:
            ranges = _SpecParser(self, _PORT, text).parse()
            if ranges == ((0, PORT_MAX),):
                spec = PortSpec(text, (), any=True)
            else:
                spec = PortSpec(text, ranges, any=False)
            self._specs[key] = spec
        return spec  # type: ignore[return-value]

    def _variable(self, kind: _Kind, name: str, stack: tuple[str, ...]) -> Ranges:
        key = (kind.name, name)
        ranges = self._vars.get(key)
        if ranges is not None:
            return ranges
        if name not in self.values:
            raise ValueError(f"undefined variable ${name}")
        if name in stack:
            chain = " -> ".join(f"${n}" for n in (*stack[stack.index(name):], name))
            raise ValueError(f"variable loop: {chain}")
        if len(stack) >= _MAX_DEPTH:
            raise ValueError(f"variables nested deeper than {_MAX_DEPTH}")
        try:
            ranges = _SpecParser(self, kind, self.values[name], (*stack, name)).parse()
        except SpecError as e:
            raise ValueError(f"in ${name} = {self.values[name]!r}: {e.message}") from None
        self._vars[key] = ranges
        return ranges


class _SpecParser:
    """Recursive descent over ``!``, ``[ , ]``, atoms and ``$VARIABLES``."""

    def __init__(self, vars: Vars, kind: _Kind, text: str, stack: tuple[str, ...] = ()):
        self.vars = vars
        self.kind = kind
        self.text = text
        self.stack = stack
        self.pos = 0

    def parse(self) -> Ranges:
        self._blank()
        if self.pos == len(self.text):
            raise SpecError(0, f"empty {self.kind.name} spec")
        start = self.pos
        ranges = self._spec(0)
        self._blank()
        if self.pos < len(self.text) and self.text[self.pos] == ",":
            # Suricata's DetectPortParseDo / DetectAddressParse2 take a
            # comma at bracket depth 0 as a list separator, so `!5800,!445`
            # (emerging-trojan.rules:10727) is `[!5800,!445]` there: same here.
            self.pos = start
            ranges = self._items(0, None)
        if self.pos < len(self.text):
            message = f"unexpected {self.text[self.pos]!r} in {self.kind.name} spec"
            raise SpecError(self.pos, message)
        if not ranges:
            raise SpecError(0, f"{self.kind.name} spec {self.text!r} matches nothing")
        return ranges

    def _blank(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _BLANKS:
            self.pos += 1

    def _spec(self, depth: int) -> Ranges:
        """``!``* then a list or an atom."""
        if depth > _MAX_DEPTH:
            raise SpecError(self.pos, f"{self.kind.name} lists nested too deeply")
        negate = False
        self._blank()
        while self.pos < len(self.text) and self.text[self.pos] == "!":
            negate = not negate
            self.pos += 1
            self._blank()
        if self.pos < len(self.text) and self.text[self.pos] == "[":
            ranges = self._list(depth)
        else:
            ranges = self._atom()
        if negate:
            ranges = _complement(ranges, self.kind.lo, self.kind.hi)
        return ranges

    def _list(self, depth: int) -> Ranges:
        open_at = self.pos
        self.pos += 1
        return self._items(depth, open_at)

    def _items(self, depth: int, open_at: int | None) -> Ranges:
        """Comma-separated items up to the ``]`` closing the ``[`` at
        ``open_at``, or (``open_at`` None: an unbracketed top-level list) up
        to the end of the text."""
        plus: list[tuple[int, int]] = []
        minus: list[tuple[int, int]] = []
        has_plus = False
        while True:
            self._blank()
            if self.pos >= len(self.text):
                if open_at is None:  # "80," : nothing after the comma
                    raise SpecError(self.pos, f"empty item in {self.kind.name} list")
                raise SpecError(open_at, f"unterminated [ in {self.kind.name} spec")
            if self.text[self.pos] in ",]":
                raise SpecError(self.pos, f"empty item in {self.kind.name} list")
            negated = self.text[self.pos] == "!"
            if negated:
                self.pos += 1
            item = self._spec(depth + 1)
            if negated:
                minus.extend(item)
            else:
                has_plus = True
                plus.extend(item)
            self._blank()
            if self.pos >= len(self.text):
                if open_at is None:
                    break
                raise SpecError(open_at, f"unterminated [ in {self.kind.name} spec")
            char = self.text[self.pos]
            if char == "]" and open_at is None:
                raise SpecError(self.pos, f"unexpected ']' in {self.kind.name} spec")
            self.pos += 1
            if char == "]":
                break
            if char != ",":
                raise SpecError(
                    self.pos - 1,
                    f"unexpected {char!r} in {self.kind.name} list: expected ',' or ']'",
                )
        base = _normalize(plus) if has_plus else ((self.kind.lo, self.kind.hi),)
        return _difference(base, _normalize(minus), self.kind.lo, self.kind.hi)

    def _atom(self) -> Ranges:
        start = self.pos
        while (
            self.pos < len(self.text)
            and self.text[self.pos] not in _DELIMS
            and self.text[self.pos] not in _BLANKS
        ):
            self.pos += 1
        atom = self.text[start : self.pos]
        if not atom:
            shown = repr(self.text[start]) if start < len(self.text) else "the end"
            raise SpecError(start, f"expected a {self.kind.name}, found {shown}")
        try:
            if atom.startswith("$"):
                name = atom[1:]
                if not _VAR_REF.fullmatch(name):
                    raise ValueError(f"invalid variable name {atom!r}")
                return self.vars._variable(self.kind, name, self.stack)
            return _normalize(self.kind.atom(atom))
        except ValueError as e:
            raise SpecError(start, str(e)) from None


# ------------------------------------------------------------ the vars file

_SECTION = re.compile(r"(address|port)-groups\s*:\s*(#.*)?\Z")
_PREFIXES = ("ipvar", "portvar", "var")
_LINE_ENTRY = re.compile(r"(\$?[^\s:]+)(\s*:\s*|\s+)")
_YAML_ENTRY = re.compile(r"(\$?[^\s:]+)(\s*:\s*)")


def parse_vars(text: str, filename: str = "<string>") -> tuple[dict[str, str], list[RuleError]]:
    """Read a vars file's text (format in the module doc): the variables it
    sets, in file order, and its errors. Values are checked against the
    defaults overridden by the file."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    yaml_mode = any(_SECTION.match(line.strip()) for line in lines)
    found: dict[str, tuple[str, int, int]] = {}
    errors: list[RuleError] = []
    section_indent = -1  # yaml mode: indent of the current *-groups key, -1 outside
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if yaml_mode:
            if _SECTION.match(stripped):
                section_indent = indent
                continue
            if section_indent < 0 or indent <= section_indent:
                section_indent = -1
                continue
        entry = _vars_line(line, indent, yaml_mode)
        if isinstance(entry, RuleError):
            errors.append(RuleError(filename, lineno, entry.column, entry.message))
            continue
        if entry is None:
            continue
        name, value, column = entry
        found[name] = (value, lineno, column)
    values = {name: value for name, (value, _, _) in found.items()}
    checker = Vars(values)
    for name, (value, lineno, column) in found.items():
        try:
            checker.address(value)
            continue
        except SpecError as address_error:
            try:
                checker.ports(value)
                continue
            except SpecError as port_error:
                bad = address_error if "$" in value or "." in value or "::" in value else port_error
                errors.append(
                    RuleError(
                        filename,
                        lineno,
                        column + bad.offset,
                        f"${name} is neither an address nor a port spec: {bad.message}",
                    )
                )
    errors.sort(key=lambda e: (e.line, e.column))
    return values, errors


def _vars_line(line: str, indent: int, yaml_mode: bool):
    """One line: (name, value, value column) or a RuleError (file, line unset),
    or None for a YAML key without a value."""
    at = indent
    body = line[indent:]
    m = re.match(_YAML_ENTRY if yaml_mode else _LINE_ENTRY, body)
    if m is None:
        expected = "expected NAME: VALUE" if yaml_mode else "expected NAME VALUE"
        return RuleError("", 0, at + 1, expected)
    word = m.group(1)
    if not yaml_mode and word in _PREFIXES and ":" not in m.group(2):
        at += m.end()
        body = line[at:]
        m = re.match(_LINE_ENTRY, body)
        if m is None:
            return RuleError("", 0, at + 1, f"expected NAME VALUE after {word!r}")
        word = m.group(1)
    name = word[1:] if word.startswith("$") else word
    if not _NAME.match(name):
        return RuleError("", 0, at + 1, f"invalid variable name {word!r}")
    value_at = at + m.end()
    value = line[value_at:].rstrip()
    if not value:
        return RuleError("", 0, value_at + 1, f"${name} has no value")
    comment = re.search(r"\s+#", value)
    if comment and not value.startswith(("'", '"')):
        value = value[: comment.start()]
    if value[0] in "\"'":
        quote = value[0]
        end = value.find(quote, 1)
        if end < 0:
            return RuleError("", 0, value_at + 1, f"unterminated {quote} in the value of ${name}")
        rest = value[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            return RuleError("", 0, value_at + end + 2, "unexpected text after the quoted value")
        value = value[1:end]
        value_at += 1
    if not value.strip():
        return RuleError("", 0, value_at + 1, f"${name} has no value")
    return name, value, value_at + 1


def load_vars(path: str | os.PathLike[str]) -> Vars:
    """Read a vars file: the defaults overridden by it. ``RuleFileError``
    (every error) if it has errors, ``OSError`` if it can't be read."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    values, errors = parse_vars(text, str(path))
    if errors:
        raise RuleFileError(errors)
    return Vars(values)

