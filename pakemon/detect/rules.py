"""The rule base's data model (native format, ../shared/spec/rules.md).

The parser (``rule_parser``) produces these; the rule tree (``ruletree``)
compiles them. Kept free of parsing so a second input format (Snort and
Suricata rules) can produce the same objects.
"""

from __future__ import annotations

import enum
import re
import zlib
from dataclasses import dataclass, field


class PatternKind(enum.Enum):
    BYTES = "bytes"  # "text" or |hex|: case-sensitive
    NOCASE = "nocase"  # 'text': ASCII letters fold
    REGEX = "regex"  # <regex>: Python re over bytes, DOTALL
    ANY = "any"  # *: any payload, matches the flow's first packet


@dataclass(frozen=True)
class Pattern:
    kind: PatternKind
    value: bytes = b""  # the literal bytes (BYTES, NOCASE) or regex source bytes
    regex: re.Pattern | None = None
    text: str = ""  # as written in the rule, for `rules tree`
    column: int = 0


@dataclass(frozen=True)
class PortSpec:
    """A port (or ICMP type/code) spec: `*`, `80`, `1024:65535`, `:1023`, lists."""

    text: str
    ranges: tuple[tuple[int, int], ...] = ()  # inclusive; empty means any
    any: bool = True

    def __contains__(self, value: int) -> bool:
        if self.any:
            return True
        for lo, hi in self.ranges:
            if lo <= value <= hi:
                return True
        return False


ANY_PORT = PortSpec("*")


@dataclass(frozen=True)
class Rule:
    name: str
    proto: str  # "tcp", "udp", "icmp", "ip" (lower case)
    src: PortSpec
    dst: PortSpec
    patterns: tuple[Pattern, ...]
    file: str = "<string>"
    line: int = 0
    sid: int = 0  # 0: derive from the name (see ``signature_id``)
    rev: int = 1
    msg: str = ""  # Snort/Suricata msg; native rules use the name
    severity: int = 3
    category: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def signature(self) -> str:
        return self.msg or self.name

    @property
    def signature_id(self) -> int:
        """The sid, or a stable number derived from the NAME for native rules.

        Native ids live above 1,000,000 (the range Snort leaves to local
        rules) and below 2**31 so every consumer of EVE stores them as int32.
        """
        if self.sid:
            return self.sid
        return 1_000_000 + zlib.crc32(self.name.encode()) % (2**31 - 1_000_000)

    @property
    def service(self) -> str:
        """The service node as the dump log shows it: ``TCP * 80``."""
        return f"{self.proto.upper()} {self.src.text} {self.dst.text}"


@dataclass(frozen=True)
class RuleError:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RuleFileError(Exception):
    """A rule file with errors, loaded without --skip-bad-rules."""

    def __init__(self, errors: list[RuleError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class RuleSet:
    rules: list[Rule]
    skipped: list[RuleError] = field(default_factory=list)  # with skip_bad
