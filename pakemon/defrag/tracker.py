"""Defrag stage: decoded fragments in, reassembled datagrams and notices out.

Reassembles IPv4 and IPv6 fragments the way the protected host does, so
that a datagram cut into overlapping pieces cannot show the sensor one
payload and the host another (Ptacek & Newsham 1998, section 3.3). Sans-I/O:
time is the packets' timestamps, nothing is read or written.

Datagram key: IPv4 (source, destination, id, protocol), IPv6 (source,
destination, id), as the kernel keys its queues (ip4_frag_init,
ip6frag_init), plus the VLAN ids so two VLANs never mix.

Each datagram keeps the target policy of its destination, chosen when its
first fragment arrives (``pakemon.defrag.policy``). Two paths:

* The classic policies (first, last, bsd, bsd-right, linux, windows,
  solaris) and drop-overlap keep non-overlapping pieces and resolve each
  overlap with the policy (Snort frag3, Suricata defrag). Size rules, as
  frag3 applies them to every policy: a non-last fragment's end is rounded
  down to a multiple of 8; a fragment past 65,535 bytes is ignored (ping of
  death); a zero-length fragment is ignored; a last fragment that ends
  before bytes already held, or a second last fragment with another end, is
  ignored (pre-4.19 Linux ``goto err``); a fragment past a known end is
  ignored. The datagram is complete when its end is known and every byte
  before it is held.
* ``linux-current`` replays today's Linux (4.19 to 6.x) step by step, with
  the kernel function named in each comment: net/ipv4/ip_fragment.c
  (ip_frag_queue, ip_frag_too_far, ip_frag_reinit, ip_frag_reasm),
  net/ipv6/reassembly.c (ipv6_frag_rcv, ip6_frag_queue, ip6_frag_reasm),
  net/ipv4/inet_fragment.c (inet_frag_queue_insert).

Anomalies are reported whatever the policy: an overlap whose bytes differ
from those held (the evasion attempt itself), teardrop, ping of death, tiny
first fragments, IPv6 first fragments without the header chain (RFC 7112),
too many fragments, memory-cap evictions and timeouts. Every fragment or
datagram lost has a counter.

The host's fragment memory (linux-current): past ``HOST_FRAG_HIGH_THRESH``
(ipfrag_high_thresh) of queue sizes and skb truesizes the host drops every
fragment, even one that completes a datagram (``inet_frag_find``), until
queues complete or time out; the sensor keeps the same account and drops
the same fragments, else a flood of incomplete datagrams would let it read
decoy fragments the host never did.

Bounds. Memory: the payload bytes held (``memory``) plus a fixed charge per
datagram and per piece and the first fragment's frame (``charged``) stay
under ``DefragConfig.memcap``; a fragment that would pass it evicts the
oldest incomplete datagrams first (creation order), and one datagram alone
can never hold more than the cap. Time: a datagram expires ``timeout``
seconds after its first fragment, not after its last, because that is how
the hosts count (Linux arms ``ipfrag_time`` in inet_frag_create and never
re-arms it, BSD sets ``ipq_ttl`` once, frag3 keeps ``frag_time``): a
sensor that kept a datagram alive longer than the host would splice a
late fragment into data the host already threw away. Linux keeps IPv6
queues 60 s (``ip6frag_time``), so linux-current IPv6 datagrams live at
least that long.

References: RFC 791, RFC 815, RFC 5722 (errata 3089), RFC 7112, RFC 8200
4.5, RFC 3168 5.3; Novak 2005; Ptacek & Newsham 1998.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import OrderedDict

from ..config import DefragConfig
from ..decode.decoder import DecodeError, decode_transport, format_addr
from ..decode.packet import Packet
from ..events import Notice, NoticeKind
from . import policy as P

_K = NoticeKind

IP_MAXPACKET = 65535  # IPv4 total length / IPv6 payload length limit
IPFRAG_MAX_DIST = 64  # net.ipv4.ipfrag_max_dist default
IP6FRAG_TIME = 60.0  # net.ipv6.ip6frag_time default (IPV6_FRAG_TIMEOUT)
# Python's own cost of a datagram and of a piece, charged against the cap
# with the payload so a flood of one-byte fragments cannot hold unbounded
# memory under it (the kernel charges skb truesize and qsize the same way).
DATAGRAM_COST = 640
PIECE_COST = 96
# linux-current: the host's fragment memory (inet_frag_find: past
# net.ipv4.ipfrag_high_thresh / net.ipv6.ip6frag_high_thresh, 4 MB by
# default, every fragment is dropped, even one completing a datagram, until
# queues complete or time out). The kernel charges each queue its qsize and
# each queued fragment its skb's truesize; measured on this kernel (6.18)
# for frames sent through a packet socket into a veth, as tcpreplay sends
# them: 200 bytes an IPv4 queue (struct ipq), 184 an IPv6 one (struct
# frag_queue), and a fragment's truesize by frame length, in steps (the skb
# head's slab size): see host_truesize.
HOST_FRAG_HIGH_THRESH = 4 * 1024 * 1024
HOST_FRAG_QSIZE = {4: 200, 6: 184}
_TRUESIZE_STEPS = ((234, 832), (682, 1280), (1706, 2304), (3754, 4352), (7850, 8448))


def host_truesize(frame_len: int) -> int:
    """What the host charges for a received frame of ``frame_len`` bytes
    (link-layer header included): 1, 2 and 3 fragments per datagram, IPv4
    and IPv6, frames from 42 to 1,462 bytes measured; past a 1,500-byte MTU
    the steps are extrapolated (the slab sizes double)."""
    for top, size in _TRUESIZE_STEPS:
        if frame_len <= top:
            return size
    return 16640


def _host(q):
    """The host account a datagram is charged to: its destination address
    and VLAN (``feed`` makes the same pair from the packet), from its key."""
    return q.key[1], q.key[4]


SWEEP_EVERY = 1.0  # seconds of packet time between expiry sweeps
NOTICE_EVERY = 1.0  # at most one timeout notice per second of packet time
_ROUNDED = "non-last fragment not a multiple of 8 bytes, end rounded down"
# Smallest first fragment that holds the transport header.
_TINY = {6: 20, 17: 8, 1: 8}

_DROP = P.DROP_OVERLAP
_CURRENT = P.LINUX_CURRENT
_NEW_WINS = P.NEW_WINS

# inet_frag_queue_insert() results
_OK, _DUP, _OVERLAP = 0, 1, 2

COUNTERS = (
    "fragments",  # fragments fed
    "reassembled",  # datagrams returned
    "timeouts",  # incomplete datagrams expired
    "memcap_evictions",  # incomplete datagrams evicted for the memory cap
    "overlaps",  # fragments overlapping bytes already held
    "overlap_mismatches",  # ... with bytes different from those held
    "duplicates",  # fragments ignored as repeating bytes already held
    "discarded",  # whole datagrams dropped by the policy or an error
    "fragments_dropped",  # single fragments ignored, the datagram kept
    "too_large",  # fragments past 65,535 bytes (ping of death)
    "too_many",  # datagrams dropped for more than max_frags fragments
    "tiny",  # first fragments too small for the transport header
    "teardrop",  # fragments inside an earlier one, ending before it
    "bad_length",  # end conflicts, zero-length or misaligned fragments
    "truncated",  # non-last fragments whose end was rounded down to 8
    "incomplete_chain",  # IPv6 first fragments without the header chain
    "ecn_invalid",  # linux-current: Not-ECT mixed with ECT/CE (RFC 3168)
    "too_far",  # linux-current IPv4: queues reset by ipfrag_max_dist
    "decode_errors",  # reassembled datagrams whose transport is malformed
    "host_memory_full",  # linux-current: fragments dropped, the host's memory full
)


class _Datagram:
    """One incomplete datagram: its pieces and what the policy needs."""

    __slots__ = (
        "key", "policy", "seq", "deadline", "part", "starts", "datas", "held",
        "cost", "end", "last_in", "first_in", "nfrags", "first", "noted",
        "runs_s", "runs_e", "ecn", "peer", "rid", "hmem",
    )

    def __init__(self, key, policy, seq, deadline, part):
        self.key = key
        self.policy = policy
        self.seq = seq  # creation order, for memcap eviction
        self.deadline = deadline
        self.part = part  # the OrderedDict of datagrams with this timeout
        self.starts = []  # piece offsets, sorted
        self.datas = []  # piece bytes, parallel to starts
        self.held = 0  # payload bytes in the pieces (the kernel's "meat")
        self.cost = DATAGRAM_COST
        self.end = 0  # datagram end: known once last_in (kernel: q.len)
        self.last_in = False
        self.first_in = False
        self.nfrags = 0
        self.first = None  # the offset-0 fragment: header source
        self.noted = False  # too-large notice already given
        self.runs_s = None  # linux-current: run starts / ends, sorted
        self.runs_e = None
        self.ecn = 0
        self.peer = None  # linux-current IPv4: [rid, queues, key] of (src, dst)
        self.rid = 0
        self.hmem = 0  # linux-current: what the host charges for it (qsize + truesizes)


class Defragmenter:
    """Target-based IP fragment reassembly with anomaly notices.

    ``policy_for(dst_raw)`` names the policy for a destination (default:
    always ``config.policy``); it is asked once per datagram.
    """

    def __init__(self, config: DefragConfig | None = None, policy_for=None):
        self.config = config = config or DefragConfig()
        if config.policy not in P.CODES:
            raise ValueError(f"unknown defrag policy {config.policy!r}")
        self._default = P.CODES[config.policy]
        self._policy_for = policy_for
        self._timeout = float(config.timeout)
        self._memcap = int(config.memcap)
        self._max_frags = int(config.max_frags)
        self._queues: dict = {}  # key -> _Datagram
        self._parts: dict = {}  # timeout -> OrderedDict(key -> _Datagram), creation order
        self._peers: dict = {}  # linux-current IPv4 (vlan, src, dst) -> [rid, queues, key]
        self._seq = 0
        self.memory = 0  # payload bytes held
        self.charged = 0  # bytes counted against the memcap
        self._c = dict.fromkeys(COUNTERS, 0)
        self._next_sweep = None
        self._next_timeout_notice = None
        self._timeouts_unreported = 0
        self._evicted = 0  # evictions not yet reported
        self._next_evict_notice = None
        self._evicted_last = None
        # linux-current: each host's fragment memory, by destination address
        # (and VLAN) (a host has one account per family, an fqdir each:
        # a capture may hold traffic to many hosts), and the drops not yet
        # reported
        self._hmem: dict = {}
        self._hfull = 0
        self._next_hfull_notice = None
        # (deadline, seq, host, charge) of datagrams this memcap evicted: the
        # host still holds them until their timer fires
        self._ghosts: list = []

    # ------------------------------------------------------------ public

    @property
    def queues(self) -> int:
        """Incomplete datagrams held."""
        return len(self._queues)

    def counters(self) -> dict[str, int]:
        return dict(self._c)

    def feed(self, pkt: Packet) -> tuple[Packet | None, list[Notice]]:
        """Insert one fragment; the reassembled datagram when it completes one."""
        if not pkt.is_fragment or not pkt.family:
            return pkt, []
        c = self._c
        c["fragments"] += 1
        ts = pkt.ts
        notices: list = []
        if self._next_sweep is None or ts >= self._next_sweep:
            self._next_sweep = ts + SWEEP_EVERY
            if self._queues or self._ghosts:
                notices.extend(self.expire(ts))
        if pkt.family == 4:
            key = (pkt.src, pkt.dst, pkt.ip_id, pkt.proto, pkt.vlan)
        else:
            key = (pkt.src, pkt.dst, pkt.ip_id, None, pkt.vlan)
        q = self._queues.get(key)
        if q is not None and q.deadline < ts:
            # Its timer has fired on the host even if no sweep ran yet.
            self._remove(q)
            c["timeouts"] += 1
            self._timeout_notice(q, 1, ts, notices)
            q = None
        if q is None:
            code = self._default
            if self._policy_for is not None:
                name = self._policy_for(pkt.dst)
                if name is not None:
                    code = P.CODES.get(name)
                    if code is None:
                        raise ValueError(f"unknown defrag policy {name!r}")
        else:
            code = q.policy
        if code == _CURRENT:
            out = self._feed_current(pkt, key, q, notices)
        else:
            out = self._feed_classic(pkt, key, q, code, notices)
        if self._evicted:
            self._evict_notice(ts, notices)
        return out, notices

    def expire(self, now: float) -> list[Notice]:
        """Drop the datagrams whose first fragment is older than their
        timeout (the host's timer runs from the first fragment, not the
        last: see the module docstring)."""
        notices: list = []
        n = 0
        last = None
        ghosts = self._ghosts
        while ghosts and ghosts[0][0] < now:
            _, _, host, charge = heapq.heappop(ghosts)
            self._uncharge(host, charge)
        for part in self._parts.values():
            while part:
                q = next(iter(part.values()))
                if q.deadline >= now:
                    break
                self._remove(q)
                n += 1
                last = q
        if n:
            self._c["timeouts"] += n
            self._timeout_notice(last, n, now, notices)
        return notices

    # ------------------------------------------------------- classic path

    def _feed_classic(self, pkt, key, q, code, notices):
        """first, last, bsd, bsd-right, linux, windows, solaris, drop-overlap."""
        c = self._c
        data = pkt.ip_payload
        s = pkt.frag_offset
        e = s + len(data)
        mf = pkt.more_frags
        if pkt.family == 4:
            over = pkt.ip_hdr_len + e > IP_MAXPACKET
        else:
            over = pkt.ip_hdr_len - 48 + e > IP_MAXPACKET  # unfragmentable part + payload
        if over:
            c["too_large"] += 1
            c["fragments_dropped"] += 1
            notices.append(self._notice(pkt, _K.DEFRAG_TOO_LARGE,
                                        "fragment past 65535 bytes ignored (ping of death)"))
            return None
        if s == 0 and mf:
            if pkt.family == 4:
                self._check_tiny(pkt, data, notices)
            elif self._chain_cut(pkt, 44):
                drop = code == _DROP  # RFC 8200 4.5: "should be discarded"
                self._chain_notice(pkt, drop, notices)
                if drop:
                    return None
        if mf and e & 7:
            e &= ~7
            data = data[:e - s]
            c["truncated"] += 1
            notices.append(self._notice(pkt, _K.DEFRAG_BAD_LENGTH, _ROUNDED))
        if e <= s:
            c["bad_length"] += 1
            c["fragments_dropped"] += 1
            notices.append(self._notice(pkt, _K.DEFRAG_BAD_LENGTH, "zero-length fragment ignored"))
            return None
        if q is None:
            q = self._new(key, code, pkt.family, pkt.ts, pkt)
            if q is None:
                return None

        starts, datas = q.starts, q.datas
        lo = bisect_left(starts, s)
        if lo and starts[lo - 1] + len(datas[lo - 1]) > s:
            lo -= 1
        hi = bisect_left(starts, e, lo)
        if lo != hi:
            mismatch, covered, inside = self._overlap_report(
                starts, datas, lo, hi, pkt, s, e, data, mf, notices)

        # The end must agree with what is known of the datagram.
        if not mf:
            held_end = starts[-1] + len(datas[-1]) if starts else 0
            if (q.last_in and e != q.end) or e < held_end:
                c["fragments_dropped"] += 1
                self._bad_end(pkt, lo != hi and inside, "ignored", notices)
                return None
        elif q.last_in and e > q.end:
            c["bad_length"] += 1
            c["fragments_dropped"] += 1
            notices.append(self._notice(pkt, _K.DEFRAG_BAD_LENGTH,
                                        "fragment past the datagram's last fragment ignored"))
            return None

        if lo == hi:
            new_s = (s,)
            new_d = (data,)
            won0 = s == 0
        else:
            if covered and not mismatch:
                # A repeat of bytes held changes nothing under any policy.
                c["duplicates"] += 1
                if not mf:
                    q.last_in = True
                    q.end = e
                    if q.held == e and q.first is not None:
                        return self._complete_classic(q, pkt, notices)
                return None
            if code == _DROP:
                self._discard(q, pkt, _K.DEFRAG_OVERLAP,
                              "overlapping fragment: datagram discarded (drop-overlap)", notices)
                return None
            new_s, new_d, won0 = self._resolve(_NEW_WINS[code], starts, datas, lo, hi, s, e, data)

        q.nfrags += 1
        if q.nfrags > self._max_frags:
            c["too_many"] += 1
            self._discard(q, pkt, _K.DEFRAG_TOO_MANY_FRAGMENTS,
                          f"more than {self._max_frags} fragments: datagram discarded", notices)
            return None
        old_bytes = 0
        for k in range(lo, hi):
            old_bytes += len(datas[k])
        new_bytes = 0
        for d in new_d:
            new_bytes += len(d)
        grow = new_bytes - old_bytes + (len(new_s) - (hi - lo)) * PIECE_COST
        if won0:
            grow += len(pkt.raw) - (len(q.first.raw) if q.first is not None else 0)
        if grow > 0 and not self._make_room(grow, q):
            self._memcap_discard(q)
            return None
        starts[lo:hi] = new_s
        datas[lo:hi] = new_d
        q.held += new_bytes - old_bytes
        self.memory += new_bytes - old_bytes
        q.cost += grow
        self.charged += grow
        if won0:
            q.first = pkt
        if not mf:
            q.last_in = True
            q.end = e
        if q.last_in and q.held == q.end and q.first is not None:
            return self._complete_classic(q, pkt, notices)
        return None

    def _overlap_report(self, starts, datas, lo, hi, pkt, s, e, data, mf, notices):
        """Count and report an overlap, whatever the policy will do with it:
        DEFRAG_OVERLAP_MISMATCH when its bytes differ (the evasion itself),
        DEFRAG_OVERLAP_SAME when they agree. The latter is a duplicate, no
        attack, so it is no notice of ours: it goes on the fragment's
        ``anomalies`` (``pakemon.decode.notices``) because Suricata's
        frag_overlap decoder event fires on any overlap."""
        c = self._c
        c["overlaps"] += 1
        mismatch, covered, inside = self._compare(starts, datas, lo, hi, s, e, data)
        if not mismatch and _K.DEFRAG_OVERLAP_SAME not in pkt.anomalies:
            pkt.anomalies = pkt.anomalies + (_K.DEFRAG_OVERLAP_SAME,)
        if mismatch:
            c["overlap_mismatches"] += 1
            notices.append(self._notice(pkt, _K.DEFRAG_OVERLAP_MISMATCH,
                                        "overlapping fragment with different data"))
            if inside and mf:
                # A last fragment inside is reported by the end check.
                c["teardrop"] += 1
                notices.append(self._notice(
                    pkt, _K.DEFRAG_TEARDROP,
                    "fragment inside an earlier one, ending before it (teardrop)"))
        return mismatch, covered, inside

    def _bad_end(self, pkt, inside, outcome, notices):
        """A last fragment ending before bytes already held, or disagreeing
        with an earlier last fragment; inside one piece it is the teardrop."""
        c = self._c
        if inside:
            c["teardrop"] += 1
            notices.append(self._notice(
                pkt, _K.DEFRAG_TEARDROP,
                f"last fragment inside an earlier one, ending before it (teardrop): {outcome}"))
        else:
            c["bad_length"] += 1
            notices.append(self._notice(
                pkt, _K.DEFRAG_BAD_LENGTH,
                f"last fragment ends before data already held or disagrees with "
                f"an earlier last fragment: {outcome}"))

    @staticmethod
    def _compare(starts, datas, lo, hi, s, e, data):
        """(bytes differ, new wholly inside held bytes, inside one piece
        and ending before it)."""
        mismatch = False
        covered = starts[lo] <= s
        reach = starts[lo]
        for k in range(lo, hi):
            ps = starts[k]
            pd = datas[k]
            pe = ps + len(pd)
            if ps > reach:
                covered = False
            reach = pe
            a = s if s > ps else ps
            b = e if e < pe else pe
            if not mismatch and data[a - s:b - s] != pd[a - ps:b - ps]:
                mismatch = True
        covered = covered and reach >= e
        ps = starts[lo]
        inside = hi - lo == 1 and ps <= s and e < ps + len(datas[lo])
        return mismatch, covered, inside

    @staticmethod
    def _resolve(new_wins, starts, datas, lo, hi, s, e, data):
        """The pieces replacing starts[lo:hi] once the policy has decided
        each overlap; new data is kept as maximal contiguous pieces."""
        out_s = []
        out_d = []
        cur = s  # first byte of the new fragment not yet placed or lost
        right = None
        won0 = False
        for k in range(lo, hi):
            ps = starts[k]
            pd = datas[k]
            pe = ps + len(pd)
            if new_wins(s, e, ps, pe):
                if ps < s:
                    out_s.append(ps)
                    out_d.append(pd[:s - ps])
                if pe > e:
                    right = (e, pd[e - ps:])
            else:
                if cur < ps:
                    if cur == 0:
                        won0 = True
                    out_s.append(cur)
                    out_d.append(data[cur - s:ps - s])
                out_s.append(ps)
                out_d.append(pd)
                if pe > cur:
                    cur = pe
        if cur < e:
            if cur == 0:
                won0 = True
            out_s.append(cur)
            out_d.append(data[cur - s:])
        if right is not None:
            out_s.append(right[0])
            out_d.append(right[1])
        return out_s, out_d, won0

    def _complete_classic(self, q, pkt, notices):
        self._remove(q)
        return self._emit(q, pkt, b"".join(q.datas), notices)

    # ------------------------------------------------- linux-current path

    def _feed_current(self, pkt, key, q, notices):
        """Today's Linux, in the order ipv6_frag_rcv / ip_defrag and
        ip_frag_queue / ip6_frag_queue take their decisions."""
        c = self._c
        data = pkt.ip_payload
        s = pkt.frag_offset
        mf = pkt.more_frags
        v4 = pkt.family == 4
        if v4:
            if s == 0 and mf:
                self._check_tiny(pkt, data, notices)
        elif self._chain_cut(pkt, pkt.raw[pkt.l3_off + 6]):
            # ipv6_frag_rcv: ICMP parameter problem and the fragment is
            # dropped before fq_find, so no queue is made or touched.
            self._chain_notice(pkt, True, notices)
            return None
        host = (pkt.dst, pkt.vlan)
        hmem = self._hmem
        if hmem.get(host, 0) > HOST_FRAG_HIGH_THRESH:
            notices.extend(self.expire(pkt.ts))  # the host's timers are exact
        if hmem.get(host, 0) > HOST_FRAG_HIGH_THRESH:
            # inet_frag_find: over high_thresh nothing is looked up or made
            c["host_memory_full"] += 1
            c["fragments_dropped"] += 1
            self._hfull += 1
            self._hfull_notice(pkt, notices)
            return None
        if q is None:
            # ip_find / fq_find create the queue before any check.
            q = self._new(key, _CURRENT, pkt.family, pkt.ts, pkt)
            if q is None:
                return None
            q.hmem = qs = HOST_FRAG_QSIZE[pkt.family]
            hmem[host] = hmem.get(host, 0) + qs
        e = s + len(data)
        if v4:
            # ip_frag_too_far: more than ipfrag_max_dist fragments from this
            # source to this host since this queue's last one -> reinit.
            peer = q.peer
            peer[0] += 1
            if q.runs_s and peer[0] - q.rid > IPFRAG_MAX_DIST:
                c["too_far"] += 1
                self._reinit(q, pkt.ts)
            q.rid = peer[0]
        starts, datas = q.starts, q.datas
        ce = e & ~7 if v4 and mf else e  # the bytes the host will keep
        lo = bisect_left(starts, s)
        if lo and starts[lo - 1] + len(datas[lo - 1]) > s:
            lo -= 1
        hi = bisect_left(starts, ce, lo)
        inside = False
        if lo != hi and ce > s:
            _mismatch, _covered, inside = self._overlap_report(
                starts, datas, lo, hi, pkt, s, ce, data, mf, notices)
        if not v4 and e > IP_MAXPACKET:
            # ip6_frag_queue: parameter problem, fragment dropped; 4.19-6.x
            # keep the queue (mainline 7.0, commit 9ff2d2a98370, kills it).
            c["too_large"] += 1
            c["fragments_dropped"] += 1
            notices.append(self._notice(pkt, _K.DEFRAG_TOO_LARGE,
                                        "fragment past 65535 bytes dropped (ping of death)"))
            return None
        if not mf:
            # "If we already have some bits beyond end or have different
            # end, the segment is corrupted." -> discard_qp
            if e < q.end or (q.last_in and e != q.end):
                self._bad_end(pkt, inside, "datagram discarded", notices)
                self._discard(q, None, None, None, notices)
                return None
            q.last_in = True
            q.end = e
        else:
            if e & 7:
                if not v4:
                    # ip6_frag_queue: "RFC2460 says always send parameter
                    # problem in this case"; fragment dropped (queue kept
                    # until 7.0, as above).
                    c["bad_length"] += 1
                    c["fragments_dropped"] += 1
                    notices.append(self._notice(
                        pkt, _K.DEFRAG_BAD_LENGTH,
                        "non-last fragment not a multiple of 8 bytes dropped"))
                    return None
                e = ce  # ip_frag_queue: end &= ~7
                c["truncated"] += 1
                notices.append(self._notice(pkt, _K.DEFRAG_BAD_LENGTH, _ROUNDED))
            if e > q.end:
                if q.last_in:  # "Some bits beyond end -> corruption."
                    c["bad_length"] += 1
                    self._discard(q, pkt, _K.DEFRAG_BAD_LENGTH,
                                  "fragment past the last fragment: datagram discarded", notices)
                    return None
                q.end = e
        if e == s:
            c["bad_length"] += 1
            self._discard(q, pkt, _K.DEFRAG_BAD_LENGTH,
                          "zero-length fragment: datagram discarded", notices)
            return None
        if len(data) != e - s:
            data = data[:e - s]  # pskb_trim_rcsum
        if v4 and not q.noted and pkt.ip_hdr_len + e > IP_MAXPACKET:
            # ip_frag_reasm refuses it once complete; say so now.
            q.noted = True
            c["too_large"] += 1
            notices.append(self._notice(pkt, _K.DEFRAG_TOO_LARGE,
                                        "fragment past 65535 bytes (ping of death)"))

        res = self._runs_insert(q, s, e)
        if res == _DUP:
            # IPFRAG_DUP: skb dropped, queue kept. Completion is checked only
            # after a successful insert, even if this fragment set LAST_IN.
            c["duplicates"] += 1
            return None
        if res == _OVERLAP:
            self._discard(q, pkt, _K.DEFRAG_OVERLAP,
                          "overlapping fragment: datagram discarded (linux-current)", notices)
            return None

        if q.nfrags >= self._max_frags:
            # Not a kernel limit, but one it cannot disagree with by default:
            # 65,535 bytes in 8-byte fragments that may not overlap is 8192.
            c["too_many"] += 1
            self._discard(q, pkt, _K.DEFRAG_TOO_MANY_FRAGMENTS,
                          f"more than {self._max_frags} fragments: datagram discarded", notices)
            return None
        grow = len(data) + PIECE_COST + (len(pkt.raw) if s == 0 else 0)
        if not self._make_room(grow, q):
            self._memcap_discard(q)
            return None
        k = bisect_left(starts, s)
        starts.insert(k, s)
        datas.insert(k, data)
        q.held += len(data)
        self.memory += len(data)
        q.cost += grow
        self.charged += grow
        q.ecn |= P.ecn_bit(pkt)
        q.nfrags += 1
        t = host_truesize(len(pkt.raw) - pkt.l3_off + 14)
        q.hmem += t
        hmem[host] += t
        if s == 0:
            q.first_in = True
            q.first = pkt
        if q.first_in and q.last_in and q.held == q.end:
            return self._reasm_current(q, pkt, notices)
        return None

    def _runs_insert(self, q, s, e) -> int:
        """inet_frag_queue_insert: runs of fragments that arrived in order.

        The last run holds the fragment with the highest end (fragments_tail).
        A fragment past it is appended to it when contiguous, else starts a
        new run; any other fragment is looked up among the runs: wholly
        inside one is a duplicate, touching one otherwise an overlap, in a
        gap a new run of its own (never merged with its neighbours).
        """
        rs, re_ = q.runs_s, q.runs_e
        if not rs:
            rs.append(s)
            re_.append(e)
            return _OK
        tail = re_[-1]
        if tail < e:
            if s < tail:
                return _OVERLAP
            if s == tail:
                re_[-1] = e  # fragrun_append_to_last
            else:
                rs.append(s)  # fragrun_create
                re_.append(e)
            return _OK
        k = bisect_right(rs, s) - 1
        if k >= 0 and re_[k] > s:
            return _DUP if e <= re_[k] else _OVERLAP
        if k + 1 < len(rs) and rs[k + 1] < e:
            return _OVERLAP
        rs.insert(k + 1, s)
        re_.insert(k + 1, e)
        return _OK

    def _reinit(self, q, ts):
        """ip_frag_reinit: drop every fragment, re-arm the timer."""
        self._uncharge(_host(q), q.hmem - HOST_FRAG_QSIZE[4])  # (IPv4 only)
        q.hmem = HOST_FRAG_QSIZE[4]
        self.memory -= q.held
        freed = q.cost - DATAGRAM_COST
        self.charged -= freed
        q.cost = DATAGRAM_COST
        q.starts.clear()
        q.datas.clear()
        q.runs_s.clear()
        q.runs_e.clear()
        q.held = 0
        q.end = 0
        q.last_in = q.first_in = False
        q.first = None
        q.ecn = 0
        q.nfrags = 0
        q.deadline = ts + self._timeout
        self._seq += 1
        q.seq = self._seq
        q.part.move_to_end(q.key)

    def _reasm_current(self, q, pkt, notices):
        """ip_frag_reasm / ip6_frag_reasm."""
        self._remove(q)
        c = self._c
        if P.ecn_invalid(q.ecn):
            c["ecn_invalid"] += 1
            c["discarded"] += 1
            return None
        first = q.first
        if first.family == 4:
            size = first.ip_hdr_len + q.end  # len = ip_hdrlen(head) + q.len
        else:
            size = first.ip_hdr_len - 48 + q.end  # unfragmentable part + q.len
        if size > IP_MAXPACKET:
            c["discarded"] += 1
            if not q.noted:
                c["too_large"] += 1
                notices.append(self._notice(
                    pkt, _K.DEFRAG_TOO_LARGE,
                    f"reassembled datagram of {size} bytes (ping of death)"))
            return None
        return self._emit(q, pkt, b"".join(q.datas), notices)

    # ------------------------------------------------------------ shared

    def _check_tiny(self, pkt, data, notices):
        """An IPv4 first fragment too short for its transport header: the
        flags or ports then ride in a later, overlappable fragment (RFC 1858)."""
        need = _TINY.get(pkt.proto)
        if need is not None and len(data) < need:
            self._c["tiny"] += 1
            notices.append(self._notice(
                pkt, _K.DEFRAG_TINY_FRAGMENT,
                f"tiny first fragment ({len(data)} bytes, transport header needs {need})"))

    def _chain_notice(self, pkt, dropped, notices):
        c = self._c
        c["incomplete_chain"] += 1
        if dropped:
            c["fragments_dropped"] += 1
        notices.append(self._notice(
            pkt, _K.DEFRAG_IPV6_INCOMPLETE_CHAIN,
            "IPv6 first fragment without the whole header chain (RFC 7112)"
            + (", dropped" if dropped else "")))

    @staticmethod
    def _chain_cut(pkt, nexthdr):
        fh = pkt.l3_off + pkt.ip_hdr_len - 8
        return P.thdr_truncated(pkt.raw, fh, fh + 8 + len(pkt.ip_payload), nexthdr)

    def _emit(self, q, pkt, payload, notices):
        """The reassembled datagram as a new Packet, transport decoded."""
        first = q.first
        rp = Packet()
        rp.ts = pkt.ts
        rp.linktype = first.linktype
        rp.vlan = first.vlan
        rp.family = first.family
        rp.src = first.src
        rp.dst = first.dst
        rp.ttl = first.ttl
        rp.ip_id = first.ip_id
        rp.raw = first.raw
        rp.l3_off = first.l3_off
        rp.ip_hdr_len = first.ip_hdr_len
        rp.proto = first.proto
        rp.ip_payload = payload
        rp.frame_len = first.l3_off + first.ip_hdr_len + len(payload)
        try:
            decode_transport(rp)
        except DecodeError as err:
            self._c["decode_errors"] += 1
            notices.append(self._notice(pkt, err.kind,
                                        f"reassembled datagram: {err.kind.doc}"))
            return None
        self._c["reassembled"] += 1
        return rp

    def _new(self, key, code, family, ts, pkt):
        """A new datagram, charged against the cap (None if it cannot fit)."""
        timeout = self._timeout
        if code == _CURRENT and family == 6 and timeout < IP6FRAG_TIME:
            timeout = IP6FRAG_TIME
        if not self._make_room(DATAGRAM_COST, None):
            self._c["fragments_dropped"] += 1  # a cap smaller than one datagram
            return None
        part = self._parts.get(timeout)
        if part is None:
            part = self._parts[timeout] = OrderedDict()
        self._seq += 1
        q = _Datagram(key, code, self._seq, ts + timeout, part)
        if code == _CURRENT:
            q.runs_s = []
            q.runs_e = []
            if family == 4:
                pk = (pkt.vlan, pkt.src, pkt.dst)
                peer = self._peers.get(pk)
                if peer is None:
                    peer = self._peers[pk] = [0, 0, pk]
                peer[1] += 1
                q.peer = peer
        self._queues[key] = q
        part[key] = q
        self.charged += DATAGRAM_COST
        return q

    def _remove(self, q):
        del self._queues[q.key]
        del q.part[q.key]
        if q.hmem:
            self._uncharge(_host(q), q.hmem)
        self.memory -= q.held
        self.charged -= q.cost
        peer = q.peer
        if peer is not None:
            peer[1] -= 1
            if not peer[1]:
                # Only differences of the counter matter, and only for live
                # queues: forget it with its last queue.
                del self._peers[peer[2]]

    def _discard(self, q, pkt, kind, why, notices):
        """Drop a whole datagram (the notice may already have been given)."""
        self._remove(q)
        self._c["discarded"] += 1
        if kind is not None:
            notices.append(self._notice(pkt, kind, why))

    def _make_room(self, need, keep) -> bool:
        """Evict the oldest incomplete datagrams (not ``keep``) until
        ``need`` more bytes fit under the cap."""
        cap = self._memcap
        if self.charged + need <= cap:
            return True
        if need + (keep.cost if keep is not None else 0) > cap:
            return False
        parts = self._parts.values()
        while self.charged + need > cap:
            victim = None
            for part in parts:
                for q in part.values():
                    if q is keep:
                        continue
                    if victim is None or q.seq < victim.seq:
                        victim = q
                    break
            if victim is None:
                return False
            self._ghost(victim)
            self._remove(victim)
            self._c["memcap_evictions"] += 1
            self._evicted += 1
            self._evicted_last = victim
        return True

    def _ghost(self, q):
        """q leaves for this sensor's memcap, not the host's reasons: its
        charge stays on the host's fragment memory until its deadline."""
        if q.hmem:
            # (q.seq is unique: hosts, whose VLAN may be None, never compared)
            heapq.heappush(self._ghosts, (q.deadline, q.seq, _host(q), q.hmem))
            q.hmem = 0

    def _uncharge(self, host, charge):
        hmem = self._hmem
        left = hmem[host] - charge
        if left:
            hmem[host] = left
        else:
            del hmem[host]

    def _memcap_discard(self, q):
        """The datagram being fed cannot fit under the cap by itself."""
        self._ghost(q)
        self._remove(q)
        self._c["memcap_evictions"] += 1
        self._c["fragments_dropped"] += 1
        self._evicted += 1
        self._evicted_last = q

    # ------------------------------------------------------------ notices

    @staticmethod
    def _where(src, dst, ip_id):
        return f"from {format_addr(src)} to {format_addr(dst)} (id {ip_id})"

    def _notice(self, pkt, kind, what):
        src, dst = format_addr(pkt.src), format_addr(pkt.dst)
        return Notice(pkt.ts, kind, f"{what}, from {src} to {dst} (id {pkt.ip_id})",
                      proto="IP", src_ip=src, dst_ip=dst)

    def _timeout_notice(self, q, n, now, notices):
        """One notice for the ``n`` datagrams that just timed out (``q`` the
        last), at most one per NOTICE_EVERY seconds: a flood of half-sent
        datagrams is counted in full but reported in a few lines."""
        n += self._timeouts_unreported
        if self._next_timeout_notice is not None and now < self._next_timeout_notice:
            self._timeouts_unreported = n
            return
        self._next_timeout_notice = now + NOTICE_EVERY
        self._timeouts_unreported = 0
        src, dst, ip_id = q.key[0], q.key[1], q.key[2]
        what = ("incomplete datagram timed out," if n == 1 else
                f"{n} incomplete datagrams timed out, the last")
        notices.append(Notice(now, _K.DEFRAG_TIMEOUT, f"{what} {self._where(src, dst, ip_id)}",
                              proto="IP", src_ip=format_addr(src), dst_ip=format_addr(dst)))

    def _hfull_notice(self, pkt, notices):
        """At most one notice per NOTICE_EVERY seconds for fragments the
        host's full fragment memory drops, every one counted."""
        ts = pkt.ts
        if self._next_hfull_notice is not None and ts < self._next_hfull_notice:
            return
        self._next_hfull_notice = ts + NOTICE_EVERY
        n, self._hfull = self._hfull, 0
        what = ("the host's fragment memory is full (ipfrag_high_thresh): fragment dropped"
                if n == 1 else
                f"the host's fragment memory is full (ipfrag_high_thresh): {n} fragments "
                "dropped, the last")
        notices.append(self._notice(pkt, _K.DEFRAG_HOST_MEMORY_FULL, what))

    def _evict_notice(self, ts, notices):
        """At most one notice per NOTICE_EVERY seconds for evictions, every
        eviction counted: a flood of a million half-sent datagrams must not
        write a million log lines (measured: 441 MB of logs)."""
        if self._next_evict_notice is not None and ts < self._next_evict_notice:
            return  # self._evicted keeps adding up for the next notice
        self._next_evict_notice = ts + NOTICE_EVERY
        n = self._evicted
        q = self._evicted_last
        self._evicted = 0
        self._evicted_last = None
        src, dst, ip_id = q.key[0], q.key[1], q.key[2]
        what = ("fragment memory cap reached: incomplete datagram evicted," if n == 1 else
                f"fragment memory cap reached: {n} incomplete datagrams evicted, the last")
        notices.append(Notice(ts, _K.DEFRAG_MEMCAP_EVICT, f"{what} {self._where(src, dst, ip_id)}",
                              proto="IP", src_ip=format_addr(src), dst_ip=format_addr(dst)))
