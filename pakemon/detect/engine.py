"""Detect stage: run a packet's or a stream's bytes through service nodes.

Input: the service nodes that fit the traffic, the bytes to search and the
match state of the flow direction. Output: Alert events.

Streams (TCP) are matched incrementally: each direction keeps, per service
node, pyahocorasick search iterators whose automaton state carries over from
one chunk of reassembled data to the next (``AutomatonSearchIter.set`` with
``reset=False``), so every byte is scanned once and a pattern spread over any
number of segments matches exactly once. Regexes run over a bounded window
(the last ``REGEX_WINDOW`` bytes plus the new chunk). Partial AND matches
persist in the direction. Datagrams (UDP, ICMP, IP) are searched whole.

A rule alerts once per flow direction.

On HTTP service ports (spec: rules.md, "What is searched") a direction also
carries an ``HttpRequestParser``: each request target it completes is
normalized (http_normalize) and, when that changes it, searched whole with
the direction's service nodes; the pattern bits found join the same
per-direction masks as the stream's, so a pattern matches in the raw stream
or in the normalized target.
"""

from __future__ import annotations

from ..decode import format_addr
from ..events import Alert, Notice, NoticeKind, PacketRef
from .http_normalize import (ENCODING_ANOMALIES, PLAIN_CHUNK_INTERESTING, HttpConfig,
                             normalize_uri)
from .ruletree import REGEX_WINDOW, RegexStream, first_match_end

_PROTO_NAMES = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMP"}

# What the dump log shows of a stream: the data up to and including the
# match, at most this much (spec/outputs.md).
DUMP_BYTES = 4096
HISTORY_BYTES = max(DUMP_BYTES, REGEX_WINDOW)
CHUNK_COST = 48  # a delivered chunk kept in the history, beside its bytes (held())
RX_READ_COST = 160  # an entry of StreamMatch.rx_read: key tuple, int, slot (tracemalloc)
RX_STREAM_COST = 512  # a RegexStream, hyperscan state and its entry (about 400 B by RSS)


class StreamMatch:
    """Detect's state for one TCP direction."""

    __slots__ = ("iters", "found", "alerted", "chunks", "chunks_len", "pos", "http", "sig",
                 "rx_read", "rx_streams", "rx_live")

    def __init__(self, http=None):
        self.iters = {}  # id(node) -> [base, case iter or None, nocase iter or None]
        self.found = {}  # (id(node), rule index) -> bit mask of patterns found
        self.alerted = set()  # rule indexes (in the tree) that alerted here
        # The last chunks of the stream before pos, at least HISTORY_BYTES of
        # them: the very chunks the reassembler delivered (and keeps in its
        # own history), not a joined copy made per segment, which doubled
        # the bytes a flood of connections with data pending held.
        self.chunks: list = []
        self.chunks_len = 0
        self.pos = 0  # stream offset just past the data seen so far
        self.http = http  # HttpRequestParser on HTTP service ports, else None
        self.sig = None  # sigengine.DirState when Suricata rules are loaded
        # (id(node), regex index) -> the stream offset an re regex has read
        # up to, and -> the open RegexStream of a hyperscan one (both made
        # when a regex first runs here)
        self.rx_read = None
        self.rx_streams = None
        # id(node) -> the gated regexes some literal of whose rules was found
        # here (_mark_live): the only ones a delivery looks at
        self.rx_live = None

    @property
    def hist(self) -> bytes:
        """The last HISTORY_BYTES of the stream before pos (joined on use:
        alerts, regexes)."""
        chunks = self.chunks
        h = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return h[-HISTORY_BYTES:] if len(h) > HISTORY_BYTES else h

    def held(self) -> int:
        """About the memory this direction's native state keeps beyond its
        fixed cost: the dump history's chunks and the HTTP request in
        progress (what the stream stage charges, with the Suricata
        engine's share: Pipeline._charge)."""
        n = self.chunks_len + CHUNK_COST * len(self.chunks)
        if self.rx_read:
            n += RX_READ_COST * len(self.rx_read)
        if self.rx_streams:
            n += RX_STREAM_COST * len(self.rx_streams)
        if self.http is not None:
            n += self.http.held()
        return n

    def remember(self, data: bytes) -> None:
        chunks = self.chunks
        chunks.append(data)
        self.chunks_len += len(data)
        while len(chunks) > 1 and self.chunks_len - len(chunks[0]) >= HISTORY_BYTES:
            self.chunks_len -= len(chunks.pop(0))

    def gap(self) -> None:
        """Bytes are missing: no match may span the hole."""
        self.iters = {}
        self.chunks = []
        self.chunks_len = 0
        if self.rx_streams:
            for rs in self.rx_streams.values():
                rs.close()
        self.rx_streams = None
        if self.http is not None:
            self.http.gap()


def _mark_live(sm: StreamMatch, node, rules) -> None:
    """The gated regexes of ``node`` whose rules (any of ``rules``) just had
    a literal found: from now on they are looked at in each delivery (their
    gates may be met). Gates read literal bits only, which inspect_stream
    and inspect_http set, both calling this: a regex none of whose rules
    had a literal found cannot pass its gate, and is not looked at (the
    phf flood: 14 gates tested per segment once any literal was found)."""
    by_rule = node.rx_by_rule
    js = [j for ridx in rules for j in by_rule.get(ridx, ())]
    if js:
        if sm.rx_live is None:
            sm.rx_live = {}
        sm.rx_live.setdefault(id(node), set()).update(js)


class Detector:
    def __init__(self, tree, http: HttpConfig | None = None):
        self.tree = tree
        self.http = http if http is not None else HttpConfig()
        self._personality = self.http.resolve()
        # Case folding changes any target with a capital: no skipping then.
        self._skip_plain = not self._personality.lowercase

    def inspect_stream(self, sm: StreamMatch, nodes, data: bytes, pkt):
        """Alerts for ``data``, the next in-order bytes of a TCP direction."""
        alerts = []
        hist = None  # sm.hist, joined when a regex or an alert needs it
        start = sm.pos  # stream offset of data[0]
        text = lower = None
        found = sm.found
        for node in nodes:
            nid = id(node)
            touched = {}  # rule index -> stream offset of its completing match
            if data:
                its = sm.iters.get(nid)
                if its is None:
                    its = sm.iters[nid] = [start, None, None]
                    if node.ac_case is not None:
                        its[1] = node.ac_case.iter("")
                    if node.ac_nocase is not None:
                        its[2] = node.ac_nocase.iter("")
                ibase = its[0]
                if its[1] is not None:
                    if text is None:
                        # latin-1: one code point per byte, offsets stay byte offsets
                        text = data.decode("latin-1")
                    it = its[1]
                    it.set(text, False)
                    for end, (_, targets) in it:
                        for ridx, bit in targets:
                            k = (nid, ridx)
                            found[k] = found.get(k, 0) | (1 << bit)
                            touched[ridx] = end + ibase
                    # The iterator keeps a 4-byte-per-character copy of the
                    # chunk; an empty string frees it and keeps the state.
                    it.set("", False)
                if its[2] is not None:
                    if lower is None:
                        lower = data.lower().decode("latin-1")  # ASCII-only fold
                    it = its[2]
                    it.set(lower, False)
                    for end, (_, targets) in it:
                        for ridx, bit in targets:
                            k = (nid, ridx)
                            found[k] = found.get(k, 0) | (1 << bit)
                            touched[ridx] = max(touched.get(ridx, -1), end + ibase)
                    it.set("", False)
                if node.regexes and (found or not node.regexes_gated):
                    # (gated regexes need a literal found: none is, on a
                    # fresh connection or a flood's lone segments)
                    if touched:
                        _mark_live(sm, node, touched)
                    live = sm.rx_live.get(nid, ()) if sm.rx_live else ()
                    if node.rx_ungated:
                        live = set(live).union(node.rx_ungated)
                    win: list = []  # [window, its stream offset], made once if needed
                    regexes = node.regexes
                    for j in sorted(live):
                        rx = regexes[j]
                        e = self._regex_end(sm, node, j, rx, data, start, win)
                        if e < 0:
                            continue
                        end = max(e - 1, 0)
                        for ridx, bit in rx[1]:
                            k = (nid, ridx)
                            found[k] = found.get(k, 0) | (1 << bit)
                            touched[ridx] = max(touched.get(ridx, -1), end)
            for ridx in node.any_rules:
                k = (nid, ridx)
                found[k] = found.get(k, 0) | node.any_bits[ridx]
                touched.setdefault(ridx, start + len(data) - 1)
            if not touched:
                continue
            full = node.full_masks
            for ridx, end in touched.items():
                gidx = node.gidx[ridx]
                if found[(nid, ridx)] != full[ridx] or gidx in sm.alerted:
                    continue
                sm.alerted.add(gidx)
                if hist is None:
                    hist = sm.hist
                base = start - len(hist)  # stream offset of hist[0]
                buf = hist + data
                dump = buf[:end - base + 1][-DUMP_BYTES:]
                alerts.append(self._alert(node.rules[ridx], pkt, dump, False))
        if data:
            sm.remember(data if type(data) is bytes else bytes(data))
            sm.pos = start + len(data)
        return alerts

    def _regex_end(self, sm, node, j, rx, data, start, win) -> int:
        """Stream offset just past a match of ``node``'s regex ``j`` that
        this delivery (``data`` at ``start``) completes, or -1.

        A regex waits for its rule's literals and stops once found for all
        its rules. Then, with hyperscan, it opens a RegexStream fed first
        the window before (a match that came before the literals counts)
        and from then on each byte once, closed at its match; else ``re``
        searches the window (``_regex_in_window``)."""
        regex, targets, gates, reach = rx
        nid = id(node)
        rk = (nid, j)
        streams = sm.rx_streams
        rs = streams.get(rk) if streams is not None else None
        if rs is not None:
            rs.feed(data)
        else:
            found = sm.found
            if gates is not None and not any(
                    found.get((nid, r), 0) & need == need for r, need in gates):
                return -1  # the rule's literals are not all in the stream yet
            if all(found.get((nid, r), 0) >> bit & 1 for r, bit in targets):
                return -1  # found already, for every rule of it
            if not win:
                window = sm.hist[-REGEX_WINDOW:] + data
                win += (window, start - (len(window) - len(data)))
            window, wstart = win
            db = node.hs_db(j)
            if db is None:
                e = self._regex_in_window(sm, rk, regex, reach, window, wstart,
                                          start + len(data))
                return wstart + e if e >= 0 else -1
            if streams is None:
                streams = sm.rx_streams = {}
            rs = streams[rk] = RegexStream(db, wstart)
            rs.feed(window)
        if not rs.hits:
            return -1
        rs.close()  # (found: its bits stay)
        del streams[rk]
        return rs.base + rs.hits[0]

    @staticmethod
    def _regex_in_window(sm, rk, regex, reach, window, wstart, read_to) -> int:
        """End (in ``window``) of a match of an ``re`` regex ending in bytes
        it has not read (``sm.rx_read``), or -1. A regex held back by its
        gates until now reads the whole window: its match may have come
        before the literals did."""
        read = sm.rx_read
        if read is None:
            read = sm.rx_read = {}
        after = read.get(rk, wstart - 1) - wstart
        read[rk] = read_to
        # (no match ending past ``after`` starts before reach)
        for m in regex.finditer(window, max(after - reach, 0)):
            if m.end() > after:
                return m.end()
        return -1

    def inspect_http(self, sm: StreamMatch, nodes, data: bytes, pkt):
        """Alerts and notices for the request targets ``data`` completes.

        Call after ``inspect_stream`` with the same data: the dump is the
        raw stream up to the end of the request line.
        """
        parser = sm.http
        if self._skip_plain and parser.skip_plain(data, PLAIN_CHUNK_INTERESTING):
            return []  # whole plain GETs (nearly all traffic): no target to look at
        reqs = parser.feed(data)
        if not reqs:
            return reqs
        out = []
        found = sm.found
        personality = self._personality
        double = self.http.double_decode
        for req in reqs:
            target = req.target
            norm, anomalies = normalize_uri(target, personality, double)
            if (anomalies and not parser.anomaly_noticed
                    and not ENCODING_ANOMALIES.isdisjoint(anomalies)):
                parser.anomaly_noticed = True  # one notice per direction
                out.append(self._http_notice(pkt, anomalies))
            if norm == target:
                continue  # the target is in the raw stream: nothing new to find
            for node in nodes:
                nid = id(node)
                touched = set()
                for ridx, bit, _ in node.search(norm):
                    k = (nid, ridx)
                    found[k] = found.get(k, 0) | (1 << bit)
                    touched.add(ridx)
                if touched and node.rx_by_rule:
                    _mark_live(sm, node, touched)  # (literals the raw stream lacked)
                full = node.full_masks
                for ridx in sorted(touched):
                    gidx = node.gidx[ridx]
                    if gidx in sm.alerted:
                        continue
                    if found[(nid, ridx)] != full[ridx] and node.regexes:
                        # inspect_stream skipped this rule's regexes while its
                        # literals were missing from the raw stream; now that
                        # the target supplied them, search the raw history
                        self._late_regexes(node, ridx, sm)
                    if found[(nid, ridx)] != full[ridx]:
                        continue
                    sm.alerted.add(gidx)
                    hist = sm.hist
                    base = sm.pos - len(hist)  # stream offset of hist[0]
                    dump = hist[:max(req.line_end - base, 0)][-DUMP_BYTES:] or req.request_line
                    out.append(self._alert(node.rules[ridx], pkt, dump, False))
        return out

    @staticmethod
    def _late_regexes(node, ridx: int, sm: StreamMatch) -> None:
        found = sm.found
        k = (id(node), ridx)
        for j, (regex, targets, _, _) in enumerate(node.regexes):
            mask = 0
            for r, bit in targets:
                if r == ridx:
                    mask |= 1 << bit
            if not mask or found[k] & mask == mask:
                continue
            db = node.hs_db(j, False)  # (re: every start of the history, ServiceNode.search)
            if (first_match_end(db, sm.hist) >= 0 if db is not None
                    else regex.search(sm.hist) is not None):
                found[k] |= mask

    @staticmethod
    def _http_notice(pkt, anomalies) -> Notice:
        src, dst = format_addr(pkt.src), format_addr(pkt.dst)
        return Notice(pkt.ts, NoticeKind.HTTP_URI_ENCODING_ANOMALY,
                      f"suspicious encoding in an HTTP request target ({', '.join(anomalies)}), "
                      f"from {src}:{pkt.sport} to {dst}:{pkt.dport}",
                      "TCP", src, dst, pkt.sport, pkt.dport)

    def inspect_datagram(self, flow, nodes, data: bytes, pkt, ip_rule: bool = False):
        """Alerts for one datagram; ``flow()`` gives its flow state.

        The flow is looked up only once a rule has matched, so datagrams
        that match nothing (nearly all) cost the search alone.
        """
        alerts = []
        d = None
        for node in nodes:
            masks = {}
            if data:
                for ridx, bit, _ in node.search(data):
                    masks[ridx] = masks.get(ridx, 0) | (1 << bit)
            for ridx in node.any_rules:
                masks[ridx] = masks.get(ridx, 0) | node.any_bits[ridx]
            full = node.full_masks
            for ridx, mask in masks.items():
                if mask != full[ridx]:
                    continue
                if d is None:
                    d = flow()
                gidx = node.gidx[ridx]
                if gidx in d.alerted:
                    continue
                d.alerted += (gidx,)
                alerts.append(self._alert(node.rules[ridx], pkt, data, ip_rule))
        return alerts

    @staticmethod
    def _alert(rule, pkt, dump: bytes, ip_rule: bool) -> Alert:
        proto = pkt.proto
        name = "IP" if ip_rule else _PROTO_NAMES.get(proto, "IP")
        icmp = proto in (1, 58)
        ports = pkt.l4 and not icmp and not ip_rule
        return Alert(
            ts=pkt.ts,
            rule=rule,
            proto=name,
            src_ip=format_addr(pkt.src),
            dst_ip=format_addr(pkt.dst),
            src_port=pkt.sport if ports else None,
            dst_port=pkt.dport if ports else None,
            payload=bytes(pkt.ip_payload if ip_rule else pkt.payload),
            dump=bytes(dump),
            ip_proto=proto,
            icmp_type=pkt.sport if icmp and pkt.l4 else None,
            icmp_code=pkt.dport if icmp and pkt.l4 else None,
            pkt=PacketRef(pkt),
        )
