"""The pipeline: decode -> defrag -> stream -> detect, fed ``(timestamp, frame)``.

Sans-I/O: ``Pipeline.feed`` takes one captured frame and returns the events
it caused (alerts, notices); ``flush`` ends the input and returns what the
open streams still held. It does not know whether frames come from a pcap
file or the XDP perf buffer, never reads the clock (time is the packet's),
and writes nothing: the caller renders events.

Snort/Suricata rules (``sig``, a ``sigengine.SigRuleSet``) run beside the
native rule tree in ``sigengine.SigEngine``: it sees every packet its rules
could match (packet rules), the reassembled data of every TCP direction its
rules need (stream and HTTP rules: such directions are classified as
wanted with ``_SigNodes``, a tuple that is true even when no native node
fits, so the reassembler buffers them), the decode/stream notices of the
packet (event rules), and the end of input (``flush``).

Ended sessions: a session, its directions and their detect state point at
each other. The stream stage lists the sessions that ended during a frame;
once the frame's events are matched, the pipeline lets the Suricata engine
inspect what such directions still hold (as at the end of input) and has
the stream stage unlink them (``_reap``), so reference counting frees them
at once (tests/unit/stream/test_tcp_memory.py counts them with the
collector off). With no cycle left per connection the collector has little
to find, so its youngest generation's threshold is raised to 50,000 once
(``tune_gc``): at 2,000 it walked every live flow's state again and
again, 10% of the processing time with ET Open loaded (measured: 2.84 s at
2,000, 2.60 s at 50,000, 2.57 s with the collector off).

Only traffic that some rule can match goes past the header parse: a TCP
segment reaches the reassembler when a service node fits either of its
directions (the other direction is still needed for state), a datagram
reaches the matcher when a node fits it. Every IP fragment is reassembled
(later fragments carry no ports), and TCP probes and UDP datagrams feed the
scan detector. A datagram both rule sets inspect has its checksum verified
once: the native stage's verdict is kept for the Suricata packet rules.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .config import Config
from .decode import DecodeError, decode_frame, format_addr
from .decode.decoder import ipv4_header_checksum_ok
from .decode.notices import anomaly_notices
from .decode.packet import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, TH_ACK
from .defrag import Defragmenter
from .detect.engine import Detector, StreamMatch
from .detect.http import HttpRequestParser
from .detect.http_normalize import HttpConfig
from .detect.ruletree import RuleTree
from .detect.scan import ScanDetector
from .events import Alert, Notice, NoticeKind
from .stream import StreamTracker
from .stream.checksum import ChecksumGate
from .stream.tcp import (CLOSED, StreamBypass, StreamData, StreamRewrite, TcpReassembler,
                         wire_len)

_NONE = ()
# EVE's pkt_src of an alert raised when a flow ends or input does, not on a
# packet of its own: what Suricata writes for its flow-timeout pseudo packets
FLOW_END = "stream (flow timeout)"
SCAN_SWEEP_S = 10.0  # how often idle scan sources are forgotten (packet time)
GC_THRESHOLDS = (50000, 10, 10)  # see the module docstring


def tune_gc() -> None:
    """Raise the collector's thresholds to GC_THRESHOLDS (never lower them)."""
    import gc

    cur = gc.get_threshold()
    want = tuple(max(a, b) for a, b in zip(cur, GC_THRESHOLDS))
    if want != cur:
        gc.set_threshold(*want)


@dataclass
class Stats:
    """Frame counts by the paper's section 4.2 classes, and what was lost."""

    frames: int = 0
    bytes: int = 0
    ip: int = 0
    tcp: int = 0
    udp: int = 0
    icmp: int = 0
    malformed: int = 0
    inspected: int = 0  # frames that reached at least one service node
    bad_ip_checksum: int = 0  # IPv4 headers the target would drop
    bad_l4_checksum: int = 0  # UDP/ICMP datagrams the target would drop
    not_for_host: int = 0  # frames the target's stack discards for their link-layer address
    bypassed: int = 0  # stream directions past their depth
    notices: Counter = field(default_factory=Counter)  # NoticeKind name -> n
    alerts: Counter = field(default_factory=Counter)  # signature -> n

    @property
    def other(self) -> int:
        return self.frames - self.tcp - self.udp - self.icmp

    def table(self) -> str:
        """The paper's section 4.2 table: frames and percent per class."""
        total = self.frames
        rows = [("IP", self.ip), ("TCP", self.tcp), ("UDP", self.udp),
                ("ICMP", self.icmp), ("OTHER", self.other)]
        out = [f"{'Protocol':<9}{'Frames':>12}{'%':>9}"]
        out.append(f"{'ALL':<9}{total:>12}{100.0 if total else 0.0:>9.2f}")
        for name, n in rows:
            pct = 100.0 * n / total if total else 0.0
            out.append(f"{name:<9}{n:>12}{pct:>9.2f}")
        return "\n".join(out)


class _SigNodes(tuple):
    """Native nodes of a TCP direction the Suricata rules also want: true
    even when empty, so the reassembler delivers the direction's data."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return True


class Pipeline:
    def __init__(self, rules, config: Config | None = None, record: bool = False,
                 sig=None):
        self.config = config = config or Config()
        tune_gc()
        self.tree = rules if isinstance(rules, RuleTree) else RuleTree(rules)
        hp = config.host_policy
        dflt_frag, dflt_stream = config.defrag.policy, config.stream.policy
        self.checksums = ChecksumGate(config.stream.checksum)
        self.defrag = Defragmenter(
            config.defrag, (lambda a: hp.defrag_policy(a, dflt_frag)) if hp else None)
        self.tcp = TcpReassembler(
            config.stream, (lambda a: hp.stream_policy(a, dflt_stream)) if hp else None,
            self._classify)
        self.tcp.checksums = self.checksums
        self.tcp.resume_need = self._resume_need
        self.flows = StreamTracker()  # datagram alert-once state (made on alerts only)
        self.scan = ScanDetector(config.scan) if config.scan.enabled else None
        self._scan_sweep = 0.0
        # HTTP service ports: client->server streams also get their request
        # targets normalized and searched (spec). `config.http` if the Config
        # has one (an HttpConfig), else the spec's defaults.
        self.http = getattr(config, "http", None) or HttpConfig()
        self.http_ports = frozenset(self.http.ports)
        self._local_macs = frozenset(getattr(config, "local_macs", ()) or ())
        self.detector = Detector(self.tree, self.http)
        self._l4_seen = None  # (datagram, checksum verdict) of the last one checked
        self._sig_pkt = None
        self.set_sig(sig)
        self.stats = Stats()
        # The live-target tests compare these with what a real socket got.
        self.record = record
        self.recorded_streams: dict = {}
        self.recorded_gaps: dict = {}  # stream key -> its length at the first gap
        self.recorded_datagrams: list = []
        # The live sensor sets a list here: (src, dst, sport, dport, proto)
        # of each TCP direction past its depth, for the kernel bypass map.
        self.bypass_requests: list | None = None

    def set_sig(self, sig) -> None:
        """Run the Suricata rules ``sig`` (a SigRuleSet; None: none) from now
        on, in a new engine (flowbits and thresholds start afresh)."""
        self.sig = None
        # TCP traffic the Suricata rules may want: every port, or the ports
        # in these (a flow's packets have one of them as source or destination)
        self._sig_tcp_any = False
        self._sig_tcp_ports: frozenset = frozenset()
        if sig is not None and len(sig):
            from .detect.sigengine import SigEngine, held_by

            # (a function, not a DirState method: DirState.held is a slot of
            # bytes; sigengine is imported only with Suricata rules)
            self._sig_held = held_by
            self.sig = SigEngine(sig, self.http)
            self.sig.verify_tcp = self._tcp_checksum_ok
            self._sig_tcp_any = sig.tcp_ports_any or sig.has_ip
            self._sig_tcp_ports = frozenset(sig.tcp_ports)

    @staticmethod
    def _resume_need(d) -> int:
        """Bytes at the end of d's stream that an HTTP parser holds as a
        request not parsed whole: an eviction keeps them for the session's
        return, which parses the request again from its start (a request
        line cut by the eviction is otherwise lost with its URI). The native
        rules search the URI at the request line, so only a partial one
        counts for them; the Suricata ones look at the request once its
        headers are complete."""
        sm = d.det
        if sm is None:
            return 0
        n = sm.http.unfinished(False) if sm.http is not None else 0
        st = sm.sig
        if st is not None and st.http is not None:
            n = max(n, st.http.unfinished())
        return n

    def _new_match(self, d) -> StreamMatch:
        """Detect state for direction d, with an HTTP parser on HTTP ports."""
        http = None
        if d.dport in self.http_ports and len(d.nodes):
            http = HttpRequestParser(body_cap=0, keep_headers=False)
        sm = d.det = StreamMatch(http)
        return sm

    def _classify(self, direction):
        """The service nodes that fit a TCP direction (its sender's view);
        ``_SigNodes`` when a Suricata stream or HTTP rule may read its bytes."""
        d = direction
        nodes = self.tree.lookup("tcp", d.sport, d.dport)
        if self.sig is not None and self._sig_tcp(d.sport, d.dport) and \
                self.sig.wants_stream(d):
            return _SigNodes(nodes)
        return nodes

    def _sig_tcp(self, sport, dport) -> bool:
        p = self._sig_tcp_ports
        return self._sig_tcp_any or dport in p or sport in p

    def _tcp_checksum_ok(self, pkt) -> bool:
        """For the Suricata packet rules on a segment the reassembler did not
        verify (its direction is not buffered): what the target would drop
        must not alert."""
        ok = self._l4_ok(pkt)
        if not ok:
            self.stats.bad_l4_checksum += 1
        return ok

    def feed(self, ts: float, frame: bytes, linktype: int = LINKTYPE_ETHERNET,
             wire_len: int | None = None):
        """Events caused by one frame (an empty tuple for most frames).

        wire_len: the frame's length on the wire if the capture cut it."""
        st = self.stats
        st.frames += 1
        st.bytes += len(frame)
        try:
            pkt = decode_frame(linktype, frame, ts, wire_len)
        except DecodeError as e:
            return self._malformed(ts, e)
        if not pkt.family:
            return _NONE
        if self._local_macs and pkt.raw is frame:
            kind = self._link_verdict(pkt, linktype, frame)
            if kind is not None:
                return self._malformed(ts, DecodeError(kind, pkt), "not_for_host")
        events = self._feed_sig(pkt) if self.sig is not None else self._feed_native(pkt)
        if self.tcp.graveyard:
            found = self._reap()
            if found:
                events = list(events) + found
        return events

    def _link_verdict(self, pkt, linktype, frame):
        """Why the target's stack discards this frame for its link-layer
        destination, or None; judged only when the host's own MACs are
        given (``Config.local_macs``, ``--host-mac``: the capture is the
        host's own view), as captures from elsewhere, replays and traffic
        generators carry MACs no host saw (suricata-verify's flowsynth
        pcaps: a random pair per frame, half of them group addresses).
        Checked against the live kernel: tests/integration/live_cases.py,
        tcp_to_*_mac.

        To another host's unicast MAC, from none of the host's own: ip_rcv
        drops it (PACKET_OTHERHOST), whatever the protocol. A TCP segment
        to a broadcast or multicast MAC: tcp_v4_rcv and tcp_v6_rcv discard
        any segment not PACKET_HOST (UDP and ICMP take it). A Linux cooked
        capture records the packet type itself. Not for a TCP fragment
        (the reassembled datagram's verdict, not modelled), nor for what a
        tunnel carried (its own link layer decides)."""
        local = self._local_macs
        if linktype == LINKTYPE_ETHERNET:
            if frame[0] & 1:
                group = True
            elif frame[0:6] in local or frame[6:12] in local:
                return None  # (from a local address: the host's own, sent)
            else:
                return NoticeKind.DECODE_FRAME_TO_OTHER_HOST
        else:
            if linktype == LINKTYPE_LINUX_SLL:
                ptype = frame[1] if frame[0] == 0 else 0
            elif linktype == LINKTYPE_LINUX_SLL2:
                ptype = frame[10]
            else:
                return None
            if ptype == 3:
                return NoticeKind.DECODE_FRAME_TO_OTHER_HOST
            group = ptype == 1 or ptype == 2
        if group and pkt.proto == 6 and not pkt.is_fragment:
            return NoticeKind.DECODE_TCP_TO_LINK_GROUP
        return None

    def _feed_sig(self, pkt):
        """feed with Suricata rules loaded: their event rules see every
        anomaly the decoder, defrag and stream stages marked on the packet
        (``pkt.anomalies``, unthrottled: Suricata raises an event per packet)."""
        sig = self.sig
        sig.begin(pkt)
        events = self._feed_native(pkt)
        extra = anomaly_notices(pkt) if pkt.anomalies else None
        if extra:
            for n in extra:
                self._count(n)
            events = list(events) + extra
        sp = self._sig_pkt
        if sp is pkt:
            return self._sig_packet(pkt, events)
        # An IP fragment: Suricata raises fragment events on the fragment
        # itself, whether it is held or completes a datagram.
        notices = [e for e in events if isinstance(e, Notice)]
        if notices:
            alerts = sig.malformed(pkt, notices)
            for a in alerts:
                self._count(a)
            events = list(events) + alerts
        if sp is None:
            return events
        # the reassembled datagram: its own anomalies only, or the fragment's
        # events would alert twice
        return list(events) + list(self._sig_packet(sp, anomaly_notices(sp)))

    def _feed_native(self, pkt):
        st = self.stats
        st.ip += 1
        proto = pkt.proto
        if proto == 6:
            st.tcp += 1
        elif proto == 17:
            st.udp += 1
        elif proto == 1 or proto == 58:
            st.icmp += 1
        events = _NONE
        if pkt.is_fragment:
            if not self._ip_checksum_ok(pkt):
                return _NONE
            sig = self.sig
            found = sig.fragment(pkt) if sig is not None and sig.frag_rules else None
            pkt, events = self.defrag.feed(pkt)
            if found:
                for a in found:
                    self._count(a)
                events = found + list(events)
            self._sig_pkt = pkt
            if pkt is None:
                return events
            proto = pkt.proto
        else:
            self._sig_pkt = pkt
        if not pkt.l4:
            if self.tree.ip_nodes:
                return list(events) + self._inspect_datagram(pkt, _NONE)
            return events
        tree = self.tree
        if proto == 6:
            sport, dport = pkt.sport, pkt.dport
            sig_wants = self.sig is not None and self._sig_tcp(sport, dport)
            if (sig_wants or tree.tcp_by_dport[dport] or tree.tcp_by_sport[sport]
                    or tree.tcp_by_dport[sport] or tree.tcp_by_sport[dport]):
                # the reassembler checks IPv4 and TCP checksums where they matter
                found = self._inspect_tcp(pkt, sig_wants)
                if found:
                    events = list(events) + found
            if tree.ip_nodes:
                # `ip` rules search every IP payload, TCP included
                events = list(events) + self._inspect_datagram(pkt, _NONE)
            if self.scan is not None and not pkt.flags & TH_ACK:
                events = list(events) + self._scan(pkt)
            return events
        if proto == 17:
            nodes = tree.udp_by_dport[pkt.dport] + tree.udp_by_sport[pkt.sport]
            if self.scan is not None:
                events = list(events) + self._scan(pkt)
        elif proto == 1 or proto == 58:
            nodes = tree.icmp_by_type[pkt.sport]
        else:
            nodes = _NONE
        if nodes or tree.ip_nodes:
            events = list(events) + self._inspect_datagram(pkt, nodes)
        elif self.record and proto == 17:
            self._record_datagram(pkt)
        return events

    def _sig_packet(self, pkt, events):
        """The Suricata packet rules on a decoded (or reassembled) packet;
        ``events`` so far hold the packet's notices, for event rules."""
        if pkt is None:  # a fragment held for reassembly
            return events
        notices = [e for e in events if isinstance(e, Notice)] if events else ()
        if pkt.proto == 6:
            if not notices and not self._sig_tcp(pkt.sport, pkt.dport):
                return events  # no TCP rule has these ports
        elif not notices and not self.sig.wants(pkt.proto, pkt.sport, pkt.dport):
            return events
        elif not self._l4_ok(pkt):
            return events
        alerts = self.sig.packet(pkt, notices)
        if alerts:
            for a in alerts:
                self._count(a)
            events = list(events) + alerts
        return events

    def _l4_ok(self, pkt) -> bool:
        gate = self.checksums
        if gate.enabled and not pkt.truncated and pkt.l4:
            seen = self._l4_seen
            if seen is not None and seen[0] is pkt:
                return seen[1]  # the native stage checked this datagram already
            return gate.check_l4(pkt)
        return True

    def _scan(self, pkt):
        if pkt.ts >= self._scan_sweep:
            # forget idle sources on packet time, not only at the caps
            self._scan_sweep = pkt.ts + SCAN_SWEEP_S
            self.scan.expire(pkt.ts)
        notices = self.scan.feed(pkt)
        for n in notices:
            self._count(n)
        return notices

    def _ip_checksum_ok(self, pkt) -> bool:
        """The target drops IPv4 headers with a wrong checksum: so do we."""
        gate = self.checksums
        if pkt.family != 4 or not gate.enabled or gate.accept(ipv4_header_checksum_ok(pkt)):
            return True
        self.stats.bad_ip_checksum += 1
        return False

    def _reap(self) -> list:
        """Finish with the sessions that ended during this frame (see the
        module docstring); the Suricata engine's alerts on what they held."""
        tcp = self.tcp
        sig = self.sig
        out = []
        if sig is not None:
            for s in tcp.graveyard:
                for d in (s.client, s.server):
                    if d.det is not None:
                        found = sig.end_direction(d)
                        if found:
                            out += found
            for a in out:
                self._count(a)
                a.extra["pkt_src"] = FLOW_END
        tcp.reap()
        return out

    def _inspect_tcp(self, pkt, sig_wants: bool):
        self.stats.inspected += 1
        sig = self.sig if sig_wants else None  # (else: here for the native rules only)
        tcp = self.tcp
        if sig is not None:
            # the state before this segment: what Suricata's flow:established sees
            pre = tcp.direction_of(pkt)
            sig.pre_state = pre.session.state if pre is not None and pre.session else 0
            early = self._peer_first(pre, pkt) if pre is not None else None
            evs = tcp.feed(pkt, pre)
        else:
            early = None
            evs = tcp.feed(pkt)
        out = self._stream_events(evs) if evs else []
        if early:
            out = early + out
        d = pkt.direction  # (set by the stream stage)
        if tcp.app_memory and tcp.over_budget():  # (app_memory: 0 without stream data)
            # what the sessions hold above the stream outgrew their budget:
            # the oldest go (counted), as when the table is full
            evs = []
            tcp.evict_for_memory(d.session if d is not None else None, evs)
            if evs:
                out += self._stream_events(evs)
        if sig is not None:
            sm = d.det if d is not None else None
            if sm is None and d is not None and d.session is not None:
                sm = self._new_match(d)
            st = sm.sig if sm is not None else None
            waiting = len(st.pending) if st is not None else 0
            acked = sig.after_tcp(pkt)
            if waiting and len(st.pending) != waiting:
                # the bytes the ACK released are no longer held: a charge
                # left at its peak kept every closed session of a large
                # response at ~40 KB for its closed timeout, and benign
                # traffic evicted live sessions (ET: 2,102 of 6,789)
                self._charge(d, sm)
            if acked:
                for a in acked:
                    self._count(a)
                out += acked
            ses = sm and d.session
            if ses and (d.fin_done or ses.state == CLOSED):
                out += self._streams_ended(d, ses.state == CLOSED)
        # `*` rules match the first packet of a direction, data or not
        if d is not None and d.packets == 1 and self.tree.has_any_tcp and d.nodes and any(
                n.any_rules for n in d.nodes):
            sm = d.det
            if sm is None:
                sm = self._new_match(d)
            alerts = self.detector.inspect_stream(sm, d.nodes, b"", pkt)
            for a in alerts:
                self._count(a)
            out += alerts
        return out

    def _peer_first(self, d, pkt):
        """The server's bytes that waited for the client to speak
        (``SigEngine.read_deferred``), read before direction ``d``'s packet
        ``pkt``."""
        peer = d.peer
        sm = peer.det if peer is not None else None
        if sm is None or sm.sig is None or sm.sig.defer is None:
            return None
        found = self.sig.read_deferred(sm.sig)
        if found:
            # Their alerts are raised at pkt, which the stream stage counts
            # only next: Suricata counts a packet before it inspects at it
            to_server = d.session is not None and d is d.session.client
            n = wire_len(pkt)
            for a in found:
                if a.pkt is not None:
                    a.pkt.count(to_server, n)
                self._count(a)
        self._charge(peer, sm)
        return found

    def _streams_ended(self, d, both: bool) -> list:
        """The Suricata engine finishes direction ``d`` (and its peer when
        ``both``, the connection closed) once its stream ended: see
        ``SigEngine.stream_end``; what they hold is charged again."""
        out = []
        for x in ((d, d.peer) if both else (d,)):
            sm = x.det
            if sm is None or sm.sig is None or sm.sig.ended:
                continue
            found = self.sig.stream_end(x)
            for a in found:
                self._count(a)
            out += found
            self._charge(x, sm)
        return out

    def _charge(self, d, sm):
        """Charge what the detect stages now hold for ``d`` to the stream's
        session budget (``TcpReassembler.charge_app``): the native
        matcher's history and HTTP request in progress, the Suricata
        engine's state of the direction."""
        n = sm.held()
        st = sm.sig
        if st is not None:
            n += self._sig_held(st)
        self.tcp.charge_app(d, n)

    def _stream_events(self, events):
        """Match StreamData, act on StreamBypass, pass notices on; counted."""
        out = []
        detector = self.detector
        for ev in events:
            cls = type(ev)
            if cls is StreamData:
                d = ev.direction
                sm = d.det
                if sm is None:
                    sm = self._new_match(d)
                if ev.gap:
                    sm.gap()
                if self.record:
                    key = (format_addr(d.src), d.sport, format_addr(d.dst), d.dport) + \
                        d.key[4:]  # (and a tagged flow's VLAN IDs)
                    got = self.recorded_streams.get(key, b"")
                    if ev.gap:  # where the stream first skipped bytes it never got
                        self.recorded_gaps.setdefault(key, len(got))
                    self.recorded_streams[key] = got + ev.data
                if len(d.nodes):
                    # (a direction only the Suricata rules want, e.g. the
                    # server's, has no native node: nothing to match or keep)
                    alerts = detector.inspect_stream(sm, d.nodes, ev.data, ev.pkt)
                    if alerts:
                        out += alerts
                if sm.http is not None:
                    out += detector.inspect_http(sm, d.nodes, ev.data, ev.pkt)
                if self.sig is not None and type(d.nodes) is _SigNodes:
                    # (the sink is for a direction no native rule, native
                    # HTTP parser or recording reads)
                    out += self.sig.stream_data(d, ev.data, ev.pkt, ev.gap,
                                                not self.record and sm.http is None
                                                and not len(d.nodes))
                self._charge(d, sm)
            elif cls is StreamBypass:
                self.stats.bypassed += 1
                d = ev.direction
                # Not for a VLAN's or a tunnel's flow: the kernel's bypass
                # key has no VLAN or tunnel, and would skip the plain
                # connection of the same addresses and ports too (a tagged
                # or tunneled decoy past the depth would blind the sensor)
                if self.bypass_requests is not None and len(d.key) == 4:
                    self.bypass_requests.append((d.src, d.dst, d.sport, d.dport, 6))
            elif cls is StreamRewrite:
                # (only for the Suricata engine: the recorded stream, like the
                # native rules, keeps what the host read)
                d = ev.direction
                if self.sig is not None and type(d.nodes) is _SigNodes:
                    out += self.sig.stream_rewrite(d, ev.at, ev.data)
            else:
                out.append(ev)
        for ev in out:
            self._count(ev)
        return out

    def _inspect_datagram(self, pkt, nodes):
        st = self.stats
        st.inspected += 1
        proto = pkt.proto
        gate = self.checksums
        if gate.enabled and not pkt.truncated:
            if pkt.l4:
                ok = gate.check_l4(pkt)
                if self.sig is not None:
                    # the Suricata packet rules ask again for the same datagram:
                    # one verification (and one offload count) per datagram
                    self._l4_seen = (pkt, ok)
            else:
                ok = self._ip_checksum_ok(pkt)
            if not ok:
                st.bad_l4_checksum += 1  # the target drops it: nothing to inspect
                return []
        if nodes:
            if proto == 1 or proto == 58:
                nodes = tuple(n for n in nodes if pkt.dport in n.dst)
            else:
                sport = pkt.sport
                nodes = tuple(n for n in nodes if n.src_any or sport in n.src)
        events = []
        if self.record and proto == 17:
            self._record_datagram(pkt)
        if nodes:
            events = self.detector.inspect_datagram(
                lambda: self.flows.dgram(proto, pkt), nodes, pkt.payload, pkt)
        if self.tree.ip_nodes:
            events += self.detector.inspect_datagram(
                lambda: self.flows.dgram(("ip", proto), pkt), self.tree.ip_nodes,
                pkt.ip_payload, pkt, True)
        for a in events:
            self._count(a)
        return events

    def _record_datagram(self, pkt):
        self.recorded_datagrams.append((format_addr(pkt.src), pkt.sport, format_addr(pkt.dst),
                                        pkt.dport, pkt.proto, bytes(pkt.payload)))

    def _count(self, ev):
        if isinstance(ev, Notice):
            self.stats.notices[ev.kind.name] += 1
        else:
            self.stats.alerts[ev.rule.signature] += 1

    def _malformed(self, ts: float, e: DecodeError, counter: str = "malformed"):
        """A frame no later stage sees (``counter``: the Stats field that
        counts it), noticed and offered to the Suricata event rules."""
        st = self.stats
        setattr(st, counter, getattr(st, counter) + 1)
        pkt = e.pkt
        kind = e.kind
        st.notices[kind.name] += 1
        # classify what could be read, so the section 4.2 table adds up
        if pkt is not None and pkt.family:
            st.ip += 1
            if pkt.proto == 6:
                st.tcp += 1
            elif pkt.proto == 17:
                st.udp += 1
            elif pkt.proto in (1, 58):
                st.icmp += 1
        notices = [make_notice(ts, kind, pkt)]
        if pkt is not None and pkt.anomalies and self.sig is not None:
            # non-fatal anomalies read before the fatal one (ipv4.trunc_pkt
            # beside a bad IPv4 length) are events too
            extra = anomaly_notices(pkt, ts)
            for n in extra:
                self._count(n)
            notices += extra
        if self.sig is not None:
            alerts = self.sig.malformed(pkt, notices)
            for a in alerts:
                self._count(a)
            return notices + alerts
        return notices

    def flush(self):
        """End of input: deliver and match what the open streams still hold."""
        out = self._stream_events(self.tcp.flush())
        out += self._reap()
        if self.sig is not None:
            found = self.sig.flush()
            for a in found:
                self._count(a)
            out += found
        for ev in out:
            if type(ev) is Alert:
                ev.extra["pkt_src"] = FLOW_END
        return out

    def counters(self) -> dict:
        """Every stage's counters, flat, for the summary and metrics."""
        out = {f"defrag_{k}": v for k, v in self.defrag.counters().items()}
        out.update({f"stream_{k}": v for k, v in self.tcp.counters().items()})
        if self.scan is not None:
            out.update({f"scan_{k}": v for k, v in self.scan.counters().items()})
        out["ip_bad_checksum"] = self.stats.bad_ip_checksum
        out["datagram_bad_checksum"] = self.stats.bad_l4_checksum
        out["checksum_offload_accepted"] = self.checksums.offloaded
        out["flows_expired"] = self.flows.table.expired
        out["flows_evicted"] = self.flows.table.evicted
        if self.sig is not None:
            out.update(self.sig.counters)
            out["sig_pcre_time_limit"] = self.sig.pcre_time_limited()
            if self.sig.datasets:
                # values a dataset's memcap refused to ``set``
                out["sig_dataset_full"] = sum(ds.full for ds in self.sig.datasets)
            refused = self.sig.matcher_refused()
            if refused:
                out["sig_matcher_refused"] = refused
        return out


_LAYER = {
    "TCP": "TCP", "UDP": "UDP", "ICMP": "ICMP", "ICMPV6": "ICMPv6",
    "IPV4": "IPv4", "IPV6": "IPv6", "ETH": "Ethernet", "VLAN": "VLAN",
    "SLL": "Linux cooked", "NULL": "BSD loopback",
}


def make_notice(ts: float, kind: NoticeKind, pkt=None) -> Notice:
    """A decode notice in the paper's words: ``invalid TCP header, from A to B``."""
    parts = kind.name.split("_")
    layer = _LAYER.get(parts[1], parts[1]) if len(parts) > 1 else ""
    src = dst = ""
    if pkt is not None and pkt.family:
        src, dst = format_addr(pkt.src), format_addr(pkt.dst)
    if kind is NoticeKind.CAPTURE_UNKNOWN_LINKTYPE:
        msg = "unknown link type, frame not decoded"
    elif parts[-1] == "TRUNCATED":
        msg = f"truncated {layer} header"
    elif kind is NoticeKind.DECODE_VLAN_TOO_MANY:
        msg = "too many VLAN tags"
    else:
        msg = f"invalid {layer} header"
    if src:
        msg += f", from {src} to {dst}"
    proto = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMP"}.get(pkt.proto, "IP") if src else ""
    return Notice(ts=ts, kind=kind, message=msg, proto=proto, src_ip=src, dst_ip=dst)
