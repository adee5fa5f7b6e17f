"""Detect stage: the paper's rule tree (section 3.4, Figure 4).

Rules are grouped per protocol (TCP, UDP, ICMP, IP) into *service nodes*,
one per distinct (SRC spec, DST spec); each service node holds its *content
nodes*, one per distinct pattern. At load time every service node's literal
content nodes are compiled into one Aho-Corasick automaton (pyahocorasick),
case-sensitive and case-insensitive ones apart, so a payload is scanned once
per service node whatever the number of rules under it; regexes use ``re``,
and on streams hyperscan where it is installed (``RegexStream``).

A frame reaches only the service nodes whose specs fit its ports: for TCP and
UDP a 65,536-entry table indexed by destination port gives the nodes whose
DST spec holds that port (ICMP: 256 entries by type), and only those are then
checked against the source port. A frame that fits no node costs one list
index, which keeps the per-frame cost of uninteresting traffic at a header
parse.

Matching semantics (spec): all patterns of a rule must be found (AND, any
order) in the same stream direction (TCP) or datagram (UDP, ICMP, IP).
"""

from __future__ import annotations

from dataclasses import dataclass, field

try:  # the width of a regex's matches, from the parser ``re`` compiles with
    from re import _parser as _sre_parse
except ImportError:  # Python < 3.11
    import sre_parse as _sre_parse

import re

import ahocorasick

try:  # optional, as for the Suricata prefilter (pyproject's "fast" extra)
    import hyperscan
except ImportError:  # pragma: no cover - depends on the machine
    hyperscan = None

from .rules import Pattern, PatternKind, PortSpec, Rule

PROTOS = ("tcp", "udp", "icmp", "ip")

# Regexes can span segments; the stream keeps this much earlier data to run
# them over (the dump log shows the same last 4 KiB).
REGEX_WINDOW = 4096


def regex_reach(regex) -> int:
    """Bytes before a chunk a match ending in it can start at: its longest
    match less one, for a regex whose matches are bounded, else
    REGEX_WINDOW. The stream scan starts that far back in the window (the
    bytes before stay visible to anchors and lookbehinds), so a long
    upload's every byte is not scanned again and again against a 4 KB
    history by a regex that cannot reach that far."""
    try:
        hi = _sre_parse.parse(regex.pattern, regex.flags).getwidth()[1]
    except Exception:  # an internal API: fall back to the whole window
        return REGEX_WINDOW
    return min(REGEX_WINDOW, max(hi - 1, 0))


class RegexStream:
    """One stream direction's hyperscan stream of one regex
    (``ServiceNode.hs_db``): the end of its first match in the bytes
    fed since it opened lands in ``hits``.

    ``re`` can only search a window of the stream again at each segment:
    matches longer than the window were missed (``recipient=``, 5 KB of
    padding, then ``;cmd`` in one formmail query, which Apache takes whole),
    and an unbounded pattern retried every start to the window's end (the
    formmail rule over a stream of ``recipient=`` repeated: 18 ms a segment,
    65 frames per CPU second). Hyperscan's automaton keeps its state between
    segments and reads each byte once. Its stream is closed with this object
    (hyperscan's own memory is not freed otherwise)."""

    __slots__ = ("s", "db", "base", "hits")

    def __init__(self, db, base: int):
        self.hits: list = []
        self.base = base  # stream offset of the first byte fed
        # (the stream needs its database alive: a rule reload may drop the
        # node while this direction goes on)
        self.db = db
        s = db.stream(match_event_handler=_hit, context=self.hits)
        s.__enter__()
        self.s = s

    def feed(self, data) -> None:
        self.s.scan(data if type(data) is bytes else bytes(data))

    def close(self) -> None:
        s, self.s = self.s, None
        if s is not None:
            try:
                s.__exit__(None, None, None)
            except Exception:  # (hyperscan's error: nothing to free; or at exit, its module gone)
                pass

    def __del__(self):
        self.close()


def _hit(_id, _start, end, _flags, hits) -> bool:
    # (a callback must not raise: python-hyperscan crashes the process then)
    hits.append(end)
    return False


# Python re syntax PCRE (hyperscan's dialect) reads otherwise: {,n} is a
# literal there, \Z also matches before a final newline, \v is a class of
# vertical spaces, [: opens a POSIX class.
_PCRE_DIFFERS = re.compile(rb"\\[Zv]|\{,|\[:")
_RE_FLAGS = {re.IGNORECASE: "HS_FLAG_CASELESS", re.MULTILINE: "HS_FLAG_MULTILINE",
             re.DOTALL: "HS_FLAG_DOTALL"}


def _pcre_reads_alike(regex) -> bool:
    """Whether hyperscan is installed and may read ``regex`` (a bytes
    pattern) as ``re`` does, as far as its text tells."""
    src = regex.pattern
    if hyperscan is None or not isinstance(src, bytes):
        return False
    if regex.flags & ~(re.IGNORECASE | re.MULTILINE | re.DOTALL | re.ASCII):
        return False  # re.VERBOSE and the like
    # escapes taken pairwise, so an escaped backslash is not read as one
    return _PCRE_DIFFERS.search(re.sub(rb"\\\\", b"", src)) is None


def _hs_flags(regex) -> int:
    flags = hyperscan.HS_FLAG_SINGLEMATCH  # (a found bit stays found)
    for bit, name in _RE_FLAGS.items():
        if regex.flags & bit:
            flags |= getattr(hyperscan, name)
    return flags


def hs_db(regex, stream: bool = True):
    """``regex`` as a hyperscan database (stream or block mode), or None:
    hyperscan is not installed, reads it otherwise (_PCRE_DIFFERS) or
    refuses it (lookarounds, back-references, possessive or atomic groups,
    empty matches)."""
    if not _pcre_reads_alike(regex):
        return None
    return hs_compile(regex.pattern, _hs_flags(regex), stream)


def hs_compile(expr: bytes, flags: int, stream: bool = False):
    """One expression as a hyperscan database, or None where hyperscan
    refuses it (the caller checked that hyperscan is installed)."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_STREAM if stream else hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[expr], ids=[0], elements=1, flags=[flags])
    except hyperscan.error:
        return None
    return db


def first_match_end(db, data) -> int:
    """End of the first match of a block database's regex in ``data``, or -1."""
    box = []
    try:
        db.scan(data if type(data) is bytes else bytes(data), match_event_handler=_first,
                context=box)
    except hyperscan.ScanTerminated:
        pass
    return box[0] if box else -1


def _first(_id, _start, end, _flags, box) -> bool:
    box.append(end)
    return True  # (stops the scan)


def required_literal(regex) -> tuple[bytes, bool] | None:
    """The longest run of literal bytes every match of ``regex`` contains
    (at least 3), and whether it is caseless; None when there is none to
    rely on.

    Only what a match cannot do without counts: literals in sequence at the
    top level, or inside a group or a repeat of at least one. Alternatives,
    classes and optional parts break a run. A regex with scoped flags
    (``(?i:...)``) is left alone."""
    try:
        tree = _sre_parse.parse(regex.pattern, regex.flags)
    except Exception:  # an internal API: no prefilter, the regex just runs
        return None
    sp = _sre_parse
    repeats = (sp.MAX_REPEAT, sp.MIN_REPEAT, getattr(sp, "POSSESSIVE_REPEAT", None))
    best = b""
    scoped = False

    def walk(seq) -> None:
        nonlocal best, scoped
        run = bytearray()
        for op, av in list(seq) + [(None, None)]:  # (a sentinel ends the last run)
            if op is sp.LITERAL:
                run.append(av)
                continue
            if len(run) > len(best):
                best = bytes(run)
            run = bytearray()
            if op is sp.SUBPATTERN:
                _, add, dele, sub = av
                scoped = scoped or bool(add or dele)
                walk(sub)
            elif op in repeats and av[0] >= 1:
                walk(av[2])

    try:
        walk(tree)
    except Exception:
        return None
    if scoped or len(best) < 3:
        return None
    nocase = bool(tree.state.flags & sp.SRE_FLAG_IGNORECASE)
    return (best.lower() if nocase else best), nocase


@dataclass
class ContentNode:
    pattern: Pattern
    # (rule index within the service node, bit of the pattern in that rule)
    targets: list[tuple[int, int]] = field(default_factory=list)


class ServiceNode:
    """One (protocol, SRC, DST) with its rules and compiled content nodes."""

    def __init__(self, proto: str, src: PortSpec, dst: PortSpec):
        self.proto = proto
        self.src = src
        self.dst = dst
        self.src_any = src.any
        self.rules: list[Rule] = []
        self.gidx: list[int] = []  # each rule's index in the whole tree
        self.patterns: list[int] = []  # each rule's pattern count here (with prefilters)
        self.contents: dict[tuple, ContentNode] = {}
        # compiled
        self.full_masks: list[int] = []
        self.ac_case = None
        self.ac_nocase = None
        # (regex, targets, literal gates, reach: see regex_reach)
        self.regexes: list[tuple] = []
        # every regex waits for its rule's literals: none can run on a
        # stream where no literal was found yet (most of them)
        self.regexes_gated = False
        self.rx_by_rule: dict[int, tuple] = {}
        self.rx_ungated: tuple[int, ...] = ()
        self.any_rules: tuple[int, ...] = ()  # rules satisfied by any packet
        self.any_bits: dict[int, int] = {}
        self.overlap = 0  # bytes of earlier stream data a new segment needs
        self._hs_dbs: dict = {}  # (regex index, stream mode) -> hs_db(), made on first use

    def hs_db(self, j: int, stream: bool = True):
        """The hyperscan database of regex ``j`` (or None: ``re``), stream
        mode for streams, block mode for datagrams and request targets,
        compiled on first use: most regexes wait for literals that never
        come, and some cost much (the sioux rule's ``(...){100}``: 0.4 s)."""
        dbs = self._hs_dbs
        k = (j, stream)
        if k in dbs:
            return dbs[k]
        db = dbs[k] = hs_db(self.regexes[j][0], stream)
        return db

    @property
    def label(self) -> str:
        return f"{self.proto.upper()} {self.src.text} {self.dst.text}"

    def add(self, rule: Rule, gidx: int) -> None:
        ridx = len(self.rules)
        self.rules.append(rule)
        self.gidx.append(gidx)
        patterns = list(rule.patterns)
        if not any(p.kind in (PatternKind.BYTES, PatternKind.NOCASE) for p in patterns):
            # A rule of regexes alone gets, as its literal prefilter, the
            # bytes each regex cannot match without (Snort's fast pattern,
            # taken from the regex): its regexes then run only once those
            # are in the stream, not on every chunk of every connection to
            # the port. A match implies them, so the rule alerts as before.
            for p in rule.patterns:
                lit = required_literal(p.regex) if p.kind is PatternKind.REGEX else None
                if lit is not None:
                    value, nocase = lit
                    patterns.append(Pattern(PatternKind.NOCASE if nocase else PatternKind.BYTES,
                                            value, text=f"{value!r} (in {p.text})"))
        self.patterns.append(len(patterns))
        for bit, pat in enumerate(patterns):
            key = (pat.kind, pat.value.lower() if pat.kind is PatternKind.NOCASE else pat.value)
            node = self.contents.get(key)
            if node is None:
                node = self.contents[key] = ContentNode(pat)
            node.targets.append((ridx, bit))

    def compile(self) -> None:
        self.full_masks = [(1 << n) - 1 for n in self.patterns]
        # A rule's literal patterns are its prefilter (Snort's fast pattern):
        # its regexes run only once they are all found, so a rule like
        # `udp * * |binary header| <regex>` costs every datagram one automaton
        # pass, not a regex scan.
        lit_masks = [0] * len(self.rules)
        for (kind, _), cn in self.contents.items():
            if kind in (PatternKind.BYTES, PatternKind.NOCASE):
                for ridx, bit in cn.targets:
                    lit_masks[ridx] |= 1 << bit
        case = ahocorasick.Automaton()
        nocase = ahocorasick.Automaton()
        regexes = []
        any_bits: dict[int, int] = {}
        longest = 0
        for (kind, value), node in self.contents.items():
            targets = tuple(node.targets)
            if kind is PatternKind.ANY:
                for ridx, bit in targets:
                    any_bits[ridx] = any_bits.get(ridx, 0) | (1 << bit)
            elif kind is PatternKind.REGEX:
                gates = tuple((ridx, lit_masks[ridx]) for ridx, _ in targets)
                if any(need == 0 for _, need in gates):
                    gates = None  # some rule has no literal: always run
                rx = node.pattern.regex
                regexes.append((rx, targets, gates, regex_reach(rx)))
            else:
                # latin-1 maps each byte to one code point, so a str automaton
                # matches bytes exactly and offsets stay byte offsets.
                auto = nocase if kind is PatternKind.NOCASE else case
                auto.add_word(value.decode("latin-1"), (len(value), targets))
                longest = max(longest, len(value))
        if len(case):
            case.make_automaton()
            self.ac_case = case
        if len(nocase):
            nocase.make_automaton()
            self.ac_nocase = nocase
        self.regexes = regexes
        self.regexes_gated = bool(regexes) and all(r[2] is not None for r in regexes)
        # rule index -> the gated regexes that rule's literals open; the
        # regexes that run whatever was found
        by_rule: dict[int, list] = {}
        for j, (_, targets, gates, _) in enumerate(regexes):
            if gates is not None:
                for ridx, _ in targets:
                    by_rule.setdefault(ridx, []).append(j)
        self.rx_by_rule = {r: tuple(js) for r, js in by_rule.items()}
        self.rx_ungated = tuple(j for j, r in enumerate(regexes) if r[2] is None)
        self.any_bits = any_bits
        self.any_rules = tuple(any_bits)
        self.overlap = REGEX_WINDOW if regexes else max(longest - 1, 0)

    def search(self, data: bytes):
        """Yield (rule index, pattern bit, end offset) for matches in a
        whole buffer (a datagram, a normalized request target: streams go
        through StreamMatch). A regex runs only for rules whose literal
        patterns were all found in ``data``.
        """
        lit = {}
        if self.ac_case is not None:
            for end, (_, targets) in self.ac_case.iter(data.decode("latin-1")):
                for ridx, bit in targets:
                    lit[ridx] = lit.get(ridx, 0) | (1 << bit)
                    yield ridx, bit, end
        if self.ac_nocase is not None:
            # bytes.lower() folds ASCII letters only, as the spec asks.
            for end, (_, targets) in self.ac_nocase.iter(data.lower().decode("latin-1")):
                for ridx, bit in targets:
                    lit[ridx] = lit.get(ridx, 0) | (1 << bit)
                    yield ridx, bit, end
        if not lit and self.regexes_gated:
            return  # (no literal found: no regex may run)
        for j, (regex, targets, gates, _) in enumerate(self.regexes):
            if gates is not None and not any(lit.get(r, 0) & need == need for r, need in gates):
                continue
            # The first match: one is enough for a bit.
            # (hyperscan where it takes the regex: re retries every start, an
            # unbounded pattern each to the end: the formmail rule over a
            # request target of recipient=%41 repeated, 8 KB, took 5 ms a
            # segment)
            db = self.hs_db(j, False)
            if db is not None:
                e = first_match_end(db, data)
                if e >= 0:
                    for ridx, bit in targets:
                        yield ridx, bit, max(e - 1, 0)
                continue
            m = regex.search(data)
            if m is not None:
                for ridx, bit in targets:
                    yield ridx, bit, max(m.end() - 1, 0)


class RuleTree:
    """Per protocol, the service nodes; per port, the nodes that can match."""

    def __init__(self, rules: list[Rule]):
        self.rules = list(rules)
        self.nodes: dict[str, list[ServiceNode]] = {p: [] for p in PROTOS}
        by_key: dict[tuple, ServiceNode] = {}
        for gidx, rule in enumerate(self.rules):
            key = (rule.proto, _spec_key(rule.src), _spec_key(rule.dst))
            node = by_key.get(key)
            if node is None:
                node = by_key[key] = ServiceNode(rule.proto, rule.src, rule.dst)
                self.nodes[rule.proto].append(node)
            node.add(rule, gidx)
        for nodes in self.nodes.values():
            for node in nodes:
                node.compile()
        # A node with a specific SRC and DST `*` (a backdoor answering from
        # its port) goes in a table by source port: in the destination table
        # it would sit on every port and every frame would reach it.
        tcp_d, tcp_s = _split(self.nodes["tcp"])
        udp_d, udp_s = _split(self.nodes["udp"])
        self.tcp_by_dport = _index(tcp_d, 65536)
        self.tcp_by_sport = _index(tcp_s, 65536, by_src=True)
        self.udp_by_dport = _index(udp_d, 65536)
        self.udp_by_sport = _index(udp_s, 65536, by_src=True)
        self.icmp_by_type = _index(self.nodes["icmp"], 256, by_src=True)
        self.ip_nodes = tuple(self.nodes["ip"])
        # `*` rules on TCP fire on a direction's first packet: only then look
        self.has_any_tcp = any(n.any_rules for n in self.nodes["tcp"])
        # Service ports for the kernel filter (issue: kernel sensor) and stats.
        self.rule_count = len(self.rules)

    def lookup(self, proto: str, sport: int, dport: int) -> tuple[ServiceNode, ...]:
        """Service nodes of ``proto`` whose SRC and DST fit (sport, dport).

        For ICMP, sport is the type and dport the code.
        """
        if proto == "tcp":
            by_d, by_s = self.tcp_by_dport[dport], self.tcp_by_sport[sport]
        elif proto == "udp":
            by_d, by_s = self.udp_by_dport[dport], self.udp_by_sport[sport]
        elif proto == "icmp":
            cands = self.icmp_by_type[sport]
            return tuple(n for n in cands if dport in n.dst) if cands else ()
        else:
            return self.ip_nodes
        # The tables already fit one side: the destination-port table's nodes
        # hold dport, the source-port table's hold sport with DST `*`.
        if by_d:
            by_d = tuple(n for n in by_d if n.src_any or sport in n.src)
        return by_d + by_s if by_s else by_d

    def __iter__(self):
        for proto in PROTOS:
            yield from self.nodes[proto]


def _split(nodes: list[ServiceNode]) -> tuple[list, list]:
    """Nodes indexed by destination port, and those indexed by source port."""
    by_src = [n for n in nodes if n.dst.any and not n.src.any]
    return [n for n in nodes if n not in by_src], by_src


def _spec_key(spec: PortSpec) -> tuple:
    return ("*",) if spec.any else tuple(sorted(set(spec.ranges)))


def _index(nodes: list[ServiceNode], size: int, by_src: bool = False) -> list[tuple]:
    """A table value -> tuple of nodes whose DST (or SRC) spec holds value.

    Identical tuples are shared, so the table costs one pointer per entry.
    """
    table: list[tuple] = [()] * size
    for node in nodes:
        spec = node.src if by_src else node.dst
        if spec.any:
            ranges = ((0, size - 1),)
        else:
            ranges = spec.ranges
        for lo, hi in ranges:
            for v in range(lo, min(hi, size - 1) + 1):
                table[v] = table[v] + (node,)
    interned: dict[tuple, tuple] = {}
    return [interned.setdefault(t, t) for t in table]
