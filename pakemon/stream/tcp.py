"""Target-based TCP reassembly: the bytes the protected host's socket reads.

Sans-I/O: ``TcpReassembler.feed(pkt)`` takes one decoded TCP segment and
returns events; it never reads the clock (time is ``pkt.ts``) and does no
I/O. ``flush()`` ends the input, ``expire(now)`` ages sessions out.

API
===

``TcpReassembler(config, policy_for, classify)``
    ``policy_for(receiver_addr) -> name`` picks the receiving stack per
    direction (default ``config.policy``); ``classify(direction) -> nodes``
    runs once per new direction: falsy means track state only, keep no bytes.
    ``checksums`` is the ``ChecksumGate`` (replace it to share one gate).
``feed(pkt) / flush() / expire(now) -> list`` of events:
    ``StreamData(direction, data, pkt, gap)``: bytes newly read, in order, by
    the receiver of ``direction`` (the sender's direction); ``gap`` says bytes
    before them are missing. ``StreamBypass(direction)``: depth reached, after
    the data up to it. ``StreamRewrite(direction, at, data, pkt)``: bytes
    already read from stream offset ``at`` on that a Suricata-style policy
    (every one but linux-current) lets a later copy replace while the
    receiver has not ACKed them. ``pakemon.events.Notice``: conditions, at
    most one per kind per session (every occurrence is counted).
``counters()``, ``memory`` (queued bytes), ``sessions`` (in the table, older
readings of a reconnected 4-tuple included),
``last_direction`` (the direction of the last segment fed, None if it
started nothing).

Theory of operation
===================

The Pakemon claim (after Ptacek & Newsham 1998) is that an IDS which
reassembles a TCP stream exactly as the receiving host does cannot be evaded
by disorder, duplication, overlap, insertion or desynchronisation. So each
direction of a connection (one *sender*) is modelled as its *receiver's*
kernel sees it:

* A segment first passes the receiver's acceptance tests, in the kernel's
  order (``tcp_v4_rcv`` then ``tcp_rcv_established`` / ``tcp_validate_incoming``):
  checksum; MD5 option without a key (``tcp_inbound_hash``); no ACK on a
  non-SYN non-RST segment (RFC 793: dropped by every stack); PAWS (RFC 7323,
  ``tcp_paws_discard``); the sequence window (``tcp_sequence``); RST and SYN
  checks (RFC 5961 ``tcp_reset_check`` / challenge ACK, or RFC 793 for the
  older stacks). A segment that fails is ignored as the target ignores it,
  counted, and reported once per session and kind.
* An accepted segment's ACK and window fields describe the *other*
  direction's receiver: they move that direction's right window edge
  (``ack + (window << wscale)``, never shrinking) and its last acknowledged
  point. An acknowledgement past data we never saw, when we hold data after
  the hole, proves capture loss: the hole is skipped and the next bytes are
  marked ``gap=True``. (With nothing held after the hole we wait: the data
  may just have been captured after its ACK.)
* Data at ``rcv_nxt`` is delivered at once, as the kernel queues it to the
  socket (no waiting for ACKs, so one-sided captures work). A detect stage
  that only collects a direction's bytes for a while may hand it a sink
  (``TcpDirection.sink``, a bytearray, up to ``sink_max`` bytes): in-order
  bytes are then appended there, charged to the session's app memory, with
  no event (``sink_pkt``: the last segment appended). Data past
  ``rcv_nxt`` waits in a per-direction out-of-order queue; overlaps there are
  resolved by the receiver's policy (``pakemon.stream.tcp_policy``). Bytes
  already delivered are never replaced: a retransmission is trimmed to what
  is new and compared with the last ``HISTORY_BYTES`` delivered.
* The application is modelled as reading instantly (``copied_seq ==
  rcv_nxt``), which is what the urgent-pointer and window rules assume.

linux-current (the default policy), checked against net/ipv4/tcp_input.c:

* ``tcp_data_queue_ofo``: a new out-of-order segment wholly inside a queued
  one is dropped (old wins); one with the same start that covers a queued
  one replaces it (new wins); after insertion, queued segments it wholly
  covers are removed (``merge_right``); partial overlaps keep both.
  ``tcp_ooo_try_coalesce`` appends a segment that starts exactly where a
  queued one ends to it (first tried on the last segment), and nothing is
  merged right after a coalesce. Each decision is taken at the first
  queued segment the kernel's rbtree descent from the root meets, so the
  queue is mirrored in a port of lib/rbtree.c (``rbtree.py``) with the
  kernel's shape: once coalescing has grown a segment over the ones after
  it, the segment met first is not always the nearest one, and a decoy can
  win or lose by it (tests/integration/live_fuzz.py found it). We model
  coalescing as always succeeding; the kernel's ``skb_try_coalesce`` can
  refuse (a cloned skb: a capture socket that queues clones, as a plain
  AF_PACKET reader does but libpcap's ring does not; the frag limit for
  large segments), so boundaries after coalescing are our best reading.
* ``tcp_ofo_queue``: segments are taken in start order; bytes before
  ``rcv_nxt`` are skipped, so for partial overlaps the lower start wins, and
  in-order data arriving at ``rcv_nxt`` (``tcp_data_queue`` queue_and_out,
  including a segment that starts before ``rcv_nxt``) wins over queued data.
* ``tcp_sequence`` / ``tcp_data_queue``: data starting at or past
  ``rcv_nxt + window`` is dropped (zero-window probe); a segment may end past
  the window (since commit 9ca48d616ed7 "tcp: do not accept packets beyond
  window" only with an empty receive queue, which the instant reader always
  has); a bare FIN may exceed the window (commit 1e3bb184e941).
* Urgent data (``tcp_check_urg``, ``tcp_urg``, ``tcp_recvmsg``): with
  ``tcp_stdurg`` off the urgent byte is at ``seq + urg_ptr - 1`` (the pointer
  points one past it); only a pointer past the pending one replaces it, and
  ``SO_OOBINLINE`` is off by default, so the byte never reaches the stream.
* ``tcp_sequence``: a segment with data or FIN ending before ``rcv_wup``
  is discarded whole, its timestamp and ACK unread; a pure ACK before it
  moves no timestamp (its ACK is still read: the live sensor can hand a
  real one over late).
* PAWS: when both SYNs carried timestamps, a non-RST segment with data or
  FIN whose TSval is older than ``ts_recent`` by more than 1 is dropped;
  ``ts_recent`` 0 disables the test; ``ts_recent`` is updated from accepted
  segments that start at or before the last ACK the receiver sent
  (``tcp_replace_ts_recent`` with ``rcv_wup``), taken as at most
  ``rcv_nxt``: a receiver never acknowledges what it did not get, so an
  ACK past it is capture loss or forged.
* MD5 and TCP-AO (``tcp_inbound_hash``, Linux 6.7 and later): any segment
  with a well-formed TCP MD5 option (kind 19, length 18) is dropped, SYNs
  included; we assume CONFIG_TCP_MD5SIG=y (every major distribution) and
  no key on the socket. So is one whose options ``tcp_do_parse_auth_options``
  rejects while 18 or more option bytes are left: a malformed length (under
  2, or past the header), an MD5 option of another length, a TCP-AO option
  (kind 29) of 4 bytes or fewer, or a second MD5/AO option (live_cases
  tcp_malformed_option_18_left and the cases after it). A malformed option
  later in the block only ends the option parse, as before 6.7. A
  well-formed TCP-AO option there is taken by an established socket but
  dropped by the server's request socket (between SYN-ACK and the
  handshake's ACK: ``tcp_rsk_used_ao``, even without CONFIG_TCP_AO).
* RST (RFC 5961): resets only at exactly ``rcv_nxt``, or ``rcv_nxt - 1`` once
  the sender's FIN was read (``tcp_reset_check``); any other RST gets a
  challenge ACK and is ignored. A SYN with a new ISN on a synchronised
  connection gets a challenge ACK and is ignored.
* FIN: a FIN on a wholly old segment is a duplicate's and is dropped with
  it (every policy). In order it is read at once and the out-of-order queue
  purged (``tcp_fin``). Out of order it stays in its segment in the queue,
  taking the sequence number after the segment's data as in the kernel's
  ``end_seq`` (``it[4]``), and is lost with it: under in-order data
  reaching past it (``tcp_ofo_queue``), or a segment that replaces or
  ``merge_right``-s it; bytes queued past it wait, and go when it is read.
  A segment starting right after the FIN is not coalesced into its
  segment: it is queued apart, and purged with the rest when the FIN is
  read (live case tcp_ofo_data_after_a_queued_fin_is_purged; an earlier
  build of the same 6.18.44 kernel appended it and read it before the
  FIN). Every queued FIN is kept with its segment. The other policies keep the first
  FIN position seen, and nothing after it is read.
* TCP Fast Open: Linux servers accept SYN data only with TFO enabled and a
  valid cookie (not the default); otherwise the SYN-ACK acknowledges only
  the SYN and the client retransmits. So SYN data is delivered only as far
  as the SYN-ACK acknowledges it (for every policy). Without a SYN-ACK, a
  client segment at ISN+1+len shows the data was taken, one at ISN+1 that it
  was not. Data on a SYN-ACK is read only by a client that tried TFO.

Left out of linux-current: TCP-AO verification (a well-formed kind 29
option is taken, as on a kernel without CONFIG_TCP_AO like the one the live
cases run on; one built with it drops the segment) and RFC 5961's RST at the
highest SACKed sequence; the PAWS exemption is simplified to "pure ACKs are
never PAWS-dropped" (they carry no data); a slow
reader's receive buffer is not modelled (the window and instant-reader
assumptions stand in for it).

The other policies model overlap handling the way Suricata does, RFC 793
RST/SYN handling (any in-window RST resets, an in-window SYN resets the
connection), and keep the urgent byte inline (Suricata's default urgent
policy). PAWS and the no-ACK drop apply to every policy.

Desynchronisation
-----------------

The attacker may send anything, including packets forged "from the server"
towards its own host: the sensor sees them, the server never does, and the
sensor cannot tell them from the server's own (TTL, IP ID or MAC tricks are
out of scope: a packet that does not reach the host it is addressed to is
not modelled). So what the server reads must never depend on trusting one:

* A RST resets only the host it travels to (``_reset``): its receive queue
  is discarded, the other direction is untouched (a RST forged "from the
  server" leaves the server reading on). Data that still comes after a RST,
  in either direction, is delivered with the stream offset and match state
  kept, counted (``data_after_rst``) and reported: a false alert at worst,
  if the RST was real. Except, under linux-current, client data after a
  RST the server took: that RST is judged exactly as the kernel judges it
  (RFC 5961, checksum, MD5, options), so the server has no socket and reads
  nothing more (live_fuzz: the kernel read nothing after such a RST; the
  sensor inspected what followed, a false alert in waiting). The session
  closes once both hosts took one. A
  SYN-ACK after a forged "connection refused" still opens the connection.
* A SYN with a new ISN after a RST the server took (or on a closed 4-tuple)
  opens a new connection. After one the client took, or the server's FIN
  (whose orphan socket times out silently), the server may or may not still
  hold the old connection, and its answer can be forged: the new session
  keeps the old one as ``alt`` and both are fed every segment (at most
  ``MAX_READINGS``; past that the newest older reading leaves, the first
  connection stays).
* ACKs from the server side never skip a hole in an inspected direction,
  and never move ``rcv_wup`` past ``rcv_nxt`` (PAWS, above).
* Residual: a forged window update widens the window the sensor enforces;
  bytes sent into the widening that the server drops are queued here, and
  if the real bytes later stop exactly where they start, the sensor reads
  the junk and then the real bytes as a retransmission
  (``STREAM_OVERLAP_MISMATCH``). In-order real data covering the junk wins.

Handshakes and pickup
---------------------

A session starts at a SYN (its sender is the client), a SYN-ACK, or any
ACK-bearing segment (``config.midstream``: picked up already open, the
sender's sequence taken from the segment and the other direction's from its
ACK). Both SYNs seen -> SYN_RECV, whatever order and flags they came in:
this covers the three-way handshake, simultaneous open and the split 4/5-way
handshakes (Beardsley & Qian), where the server answers SYN with SYN and
the client sends the SYN-ACK. A non-SYN segment that acknowledges the
peer's SYN then establishes the connection; it must come from the client
unless the client sent a SYN-ACK (split handshake), ``async_oneside``, or the
session was picked up at the SYN-ACK (midstream: then a server segment that
acknowledges client bytes the capture missed starts the client's stream at
its ACK).
A SYN on a closed 4-tuple starts a new session (see Desynchronisation for
SYNs after a RST or the server's FIN).

``async_oneside`` (Suricata's stream.async-oneside): with only one side of
the traffic visible, a client segment at ISN+1 after its SYN, with no
SYN-ACK seen, establishes the session (and a server segment after a
SYN-ACK does). Off, such segments are ignored and counted
(``handshake_ignored``). Sessions whose window scale was not seen (midstream,
one-sided) do not enforce the receive window.

Limits
------

``queue_limit`` per direction and ``memcap`` over all queues: the farthest
queued bytes are dropped (``tcp_prune_ofo_queue`` drops from the tail), with
the paper's "Too much data in TCP receive queue" notice; in a direction
whose receiver never sent an ACK we saw (one-sided capture), the hole is
given up instead so inspection goes on. ``depth``: bytes delivered per
direction (``client_depth`` for the client's), then ``StreamBypass`` and
state-only tracking. ``max_sessions``:
the oldest session is evicted (``STREAM_EVICTED``, at most one notice a
second). A flood can evict the connection an attack is split across, and an
attacker can wait out the idle timeout between its halves, so a session
that leaves either way having carried data is remembered (bounded): picked
up again, it resumes where each receiver was, after the last
``RESUME_TAIL`` bytes it had read, or after the unfinished HTTP request
the stages above held (``resume_need``: a request line cut by the eviction
is parsed again from its start; other state held above the stream,
multi-pattern progress and parsers, is still lost); an evicted one is
reported (``STREAM_RESUMED_AFTER_EVICTION``). Either way the resumed
session also queues again what the old one held past a hole (the second
half sent first, then the quiet hour or the flood: Linux keeps its
out-of-order queue through both), within the remembered tails' budget.
A session leaving by timeout, eviction or ``flush`` delivers what it held
first, holes marked ``gap=True``; a RST discards what its receiver held,
as that host does.

Invariants
----------

* Sequence numbers are compared modulo 2**32 only when a segment is mapped
  to an *absolute* stream offset: ``off + signed32(seq - base - off)``. All
  queue bookkeeping uses absolute offsets, so sorting and wraparound never
  mix.
* ``d.off`` is the receiver's ``rcv_nxt`` as an absolute offset; the queue
  ``d.q`` holds items ``[start, end, chunks, pkt]`` sorted by start, every
  start > ``d.off``. ``chunks`` is None in a direction that only tracks
  state (classify said no, or depth reached): then the items are ranges.
* ``StreamData`` events of one direction, concatenated, are exactly the
  bytes the receiving application read, except where ``gap=True`` marks
  missing bytes; nothing is delivered past the direction's depth.
* ``self.memory`` is the sum of queued data bytes over all directions, plus
  ``segment_cost`` per queued segment that holds bytes; once
  a segment is handled it is within ``config.memcap``, and the sender's
  ``qbytes`` within ``config.queue_limit`` (a segment only grows its own
  direction's queue, so trimming that queue always suffices).
* Every dropped, ignored or skipped segment or byte increments a counter;
  notices are rate-limited to one per kind per session.

References: RFC 793 / RFC 9293 (TCP), RFC 5961 (blind in-window attacks),
RFC 7323 (window scale, timestamps, PAWS), RFC 7413 (Fast Open), RFC 6093
(urgent), RFC 2385 (MD5); Ptacek & Newsham, "Insertion, Evasion, and
Denial of Service" (1998); Novak & Sturges, "Target-Based TCP Stream
Reassembly" (2007); Beardsley & Qian, "The TCP Split Handshake" (2010);
Linux net/ipv4/tcp_input.c, tcp_ipv4.c; Suricata src/stream-tcp.c,
stream-tcp-list.c.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass

from ..config import STREAM_FOR_HOST, StreamConfig
from ..decode import format_addr
from ..decode.packet import TH_ACK, TH_FIN, TH_RST, TH_SYN, TH_URG, Packet
from ..events import Notice, NoticeKind
from .checksum import ChecksumGate
from .rbtree import Node, RBTree
from .tcp_policy import POLICIES, use_new_data

M32 = 0xFFFFFFFF
HALF = 0x80000000

# Session states.
SYN_SENT, SYN_RECV, ESTABLISHED, CLOSING, CLOSED = range(1, 6)
_RETIRED = "retired"  # _evict_one: a closed session went (no eviction)
# A closed session is quiet this long before it may make room early: the
# last ACK of the FINs, or a FIN sent again, is still on its way at first
# (a session gone by then is picked up again from it, one-sided).
CLOSED_GRACE_S = 2.0
STATE_NAMES = {SYN_SENT: "SYN_SENT", SYN_RECV: "SYN_RECV", ESTABLISHED: "ESTABLISHED",
               CLOSING: "CLOSING", CLOSED: "CLOSED"}

# Window scale shifts above 14 are clamped to 14 (RFC 7323 2.3, Linux too).
MAX_WSCALE = 14
# With the window unknown, an RFC 793 stack's RST/SYN window is taken as the
# largest a scaled window can be.
UNKNOWN_WINDOW = 0xFFFF << MAX_WSCALE
# State-only directions track received ranges, not bytes: cap their number.
MAX_RANGES = 4096
# Delivered bytes kept (as references to the delivered chunks) to compare
# retransmissions with: as much as the detect stage keeps for its dumps.
HISTORY_BYTES = 4096
_HISTORY_HIGH = 2 * HISTORY_BYTES  # trimmed in batches, down to HISTORY_BYTES
# Expiry sweep from feed: at most once a second of packet time, over a slice.
SWEEP_EVERY_S = 1.0
SWEEP_SLICE = 512

_TS_ALIGNED = b"\x01\x01\x08\x0a"  # NOP NOP TIMESTAMP(10): what Linux sends
_u32 = struct.Struct("!I").unpack_from
_PKT_HAS_DIRECTION = "direction" in getattr(Packet, "__slots__", ())
_LOOKUP = object()  # feed: the segment's direction is not known yet
_NO_OPTS = (-1, None, 0, False)
# _scan_options's auth verdicts (tcp_inbound_hash), and how many option bytes
# must be left for tcp_do_parse_auth_options to look at the next option
# (TCPOLEN_MD5SIG; sizeof(struct tcp_ao_hdr) + 1 with CONFIG_TCP_AO)
AUTH_MD5 = 1
AUTH_INVALID = 2
AUTH_AO = 3
AUTH_SCAN_MIN = 18
# Past the memcap the largest queue among those of BIG_QUEUE bytes or more
# is pruned first, by MEMCAP_SLACK more than needed (at most a quarter of
# it): a flood's segments then find room for a while without a search.
BIG_QUEUE = 64 * 1024
MEMCAP_SLACK = 256 * 1024
_SYN_RST_ACK = TH_SYN | TH_RST | TH_ACK

_K = NoticeKind
SESSION_COST = 4096  # bytes a tracked session costs, detect state included
# Sessions that leave while their connection may go on (evicted, or idle
# past the established timeout) and had carried data are remembered, by
# the hash of their client's key, with each direction's next sequence
# number and last RESUME_TAIL bytes delivered (about 430 bytes each, 7 MB
# in all per table, the answered sessions' and the unanswered pickups',
# and at most GONE_TAIL_BUDGET more for longer tails and out-of-order
# queues; the hash is
# salted per process, so a collision, about 1 in 10**15 pickups, cannot be
# aimed). A pattern split across the eviction or the
# quiet hour is matched if the part before it fits in the tail; one wholly
# inside the tail alerts a second time.
GONE_MAX = 16384
RESUME_TAIL = 64
# Longer tails (an unfinished HTTP request: _resume_tail) kept in all
GONE_TAIL_BUDGET = 8 * 1024 * 1024
# Data that keeps coming after a RST (see _reset).
_K_DATA_AFTER_RST = _K.STREAM_DATA_AFTER_RST
# Readings of one 4-tuple kept at once (the session and its alternatives).
MAX_READINGS = 3
# SYNs with a new ISN a handshake may see before each further one is a flood
# (Suricata's stream.max-syn-queued default; its 3whs_syn_flood event). The
# new SYN is still taken as the current attempt: the real client's SYN may be
# among the flood (suricata-verify bug 7657).
MAX_SYN_QUEUED = 10


def _scan_options(opts: bytes):
    """(wscale or -1, TSval or None, auth verdict, TFO option present).

    Parsing stops at a malformed option, as ``tcp_parse_options`` does. The
    auth verdict is what ``tcp_inbound_hash`` (Linux 6.7 and later, with
    CONFIG_TCP_MD5SIG and no key on the socket) makes of the block: 0 taken,
    AUTH_MD5 (an MD5 option: unexpected, dropped), AUTH_INVALID (dropped
    by ``tcp_do_parse_auth_options``), AUTH_AO (a well-formed TCP-AO
    option). That parse looks only while AUTH_SCAN_MIN bytes or more are
    left, and there rejects a malformed length, an MD5 option not 18 bytes
    long, a TCP-AO option of its bare 4-byte header, or a second MD5/AO
    option. A well-formed AO option is taken by a full socket (without
    CONFIG_TCP_AO, the kernel here, nothing verifies it) but dropped by a
    request socket, which did not start with AO (``tcp_rsk_used_ao``: live
    case tcp_hs_decoy_ao).
    """
    wscale = -1
    tsval = None
    auth = 0
    signed = tfo = False
    i = 0
    n = len(opts)
    while i < n:
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        checked = n - i >= AUTH_SCAN_MIN  # tcp_do_parse_auth_options still looks
        if i + 1 >= n:
            break
        size = opts[i + 1]
        if size < 2 or i + size > n:
            if checked:
                auth = AUTH_INVALID
            break
        if kind == 3 and size == 3:
            wscale = min(opts[i + 2], MAX_WSCALE)
        elif kind == 8 and size == 10:
            tsval = _u32(opts, i + 2)[0]
        elif kind == 19 or kind == 29:
            if checked:
                if signed or (size != 18 if kind == 19 else size <= 4):
                    auth = AUTH_INVALID
                    break
                signed = True
                auth = AUTH_MD5 if kind == 19 else AUTH_AO
        elif kind == 34:
            tfo = True
        i += size
    return wscale, tsval, auth, tfo


def _tsecr(opts: bytes) -> int | None:
    """The timestamp echo (TSecr) of a TCP option block, None without a
    (well-formed) timestamp option.

    The last one counts, as for TSval: ``tcp_parse_options`` overwrites
    rcv_tsval and rcv_tsecr at each, so a first option echoing the SYN
    cannot vouch for a segment whose later one does not."""
    tsecr = None
    i = 0
    n = len(opts)
    while i < n:
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            break
        size = opts[i + 1]
        if size < 2 or i + size > n:
            break
        if kind == 8 and size == 10:
            tsecr = _u32(opts, i + 6)[0]
        i += size
    return tsecr


@dataclass(frozen=True, slots=True)
class StreamData:
    """Bytes newly read, in order, by the receiver of ``direction``'s data.

    ``gap`` says bytes before these are missing (capture loss, or a hole
    given up at the end): a matcher must not join across it.
    """

    direction: "TcpDirection"
    data: bytes
    pkt: object
    gap: bool = False


@dataclass(frozen=True, slots=True)
class StreamBypass:
    """``direction`` reached its depth: nothing more is delivered for it."""

    direction: "TcpDirection"


@dataclass(frozen=True, slots=True)
class StreamRewrite:
    """Bytes of ``direction`` already read from stream offset ``at`` on,
    replaced by ``data`` from a later copy (``pkt``) that the receiver's
    Suricata-style overlap policy lets win, the receiver not having ACKed
    them yet: Suricata applies its policies to every segment it holds un-ACKed,
    in order or not (suricata-verify eve-overlap-payload-02-policy-oldlinux).
    Only what waits for the ACK (the Suricata engine's stream bytes) can
    still change."""

    direction: "TcpDirection"
    at: int
    data: bytes
    pkt: object


# _ack_verdict: what tcp_ack makes of a segment's ACK
ACK_OK, ACK_OLD, ACK_TOO_OLD, ACK_UNSENT = range(4)


def _paws_old(ts_recent: int, tsval: int) -> bool:
    """tcp_paws_check fails: TSval older than ts_recent (0: none yet) by more
    than TCP_PAWS_WINDOW (1)."""
    return bool(ts_recent) and 1 < ((ts_recent - tsval) & M32) < HALF


def _pkt_key(pkt) -> tuple:
    """The reassembler's key for pkt's direction: its 4-tuple, and its VLAN
    IDs when tagged. A host drops a frame tagged for a VLAN it has no
    interface on (PACKET_OTHERHOST in __netif_receive_skb_core), so a tagged
    segment is not part of an untagged connection (live case
    tcp_vlan_tagged_decoy); as Suricata's vlan.use-for-tracking, each VLAN
    has its own flows. (The decoder leaves VLAN 0 out: a priority tag only,
    which the kernel strips.)"""
    four = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
    return four + (pkt.vlan,) if pkt.vlan else four


class TcpDirection:
    """One sender of a connection, as its receiver's stack sees it."""

    __slots__ = (
        "src", "sport", "dst", "dport", "session", "peer", "nodes", "det",
        "packets", "nbytes", "delivered", "depth", "depth_reached", "policy", "pol", "buffer",
        "csum_strict", "isn", "base", "off", "edge", "wup", "wscale", "wshift", "syn_ts",
        "ts_recent", "tfo", "syn_data", "syn_pkt", "fin_abs", "fin_done", "q", "qbytes", "qmax",
        "urg_abs", "gap_pending", "hist", "hist_len", "rst", "fin_start", "ofo",
        "maxwin", "key", "app_mem", "sink", "sink_max", "sink_pkt",
    )

    def __init__(self, src, sport, dst, dport, session):
        self.src = src
        self.sport = sport
        self.dst = dst
        self.dport = dport
        self.session = session
        self.peer = None
        self.nodes = ()
        self.det = None  # the detect stage's state, opaque here
        # segments this sender's session took, and their frames' bytes:
        # Suricata's per-flow counters (EVE's alert ``flow`` object)
        self.packets = 0
        self.nbytes = 0
        self.delivered = 0
        self.depth = 1 << 62  # bytes delivered at most (the session sets it by role)
        self.depth_reached = False
        self.policy = ""  # name of the receiver's policy for this data
        self.pol = None
        self.buffer = False  # bytes are queued and delivered (classify said yes)
        self.csum_strict = False  # showed a right checksum: no offload excuse
        self.isn = None  # None: no SYN seen from this sender
        self.base = 0  # sequence number of absolute offset 0
        self.off = 0  # rcv_nxt as an absolute offset
        self.edge = None  # receiver's right window edge (absolute), None: unknown
        self.wup = None  # last ACK the receiver sent (absolute), None: none seen
        self.wscale = -1  # shift this sender announced in its SYN, -1: none
        self.wshift = 0  # shift applied to the windows it advertises (if negotiated)
        self.syn_ts = None  # TSval on this sender's SYN
        self.ts_recent = 0  # receiver's ts_recent for this sender (0: none)
        self.tfo = False  # this sender's SYN tried Fast Open (data or cookie)
        self.syn_data = None  # SYN payload waiting for the SYN-ACK's verdict
        self.syn_pkt = None
        self.fin_abs = None  # where this sender's FIN sits (absolute)
        self.fin_start = 0  # where the segment carrying it starts
        self.fin_done = False  # the receiver read the FIN: the stream ended
        self.q = []  # out-of-order items [start, end, chunks or None, pkt]
        self.qbytes = 0
        self.qmax = 0  # longest queued item: bounds the overlap search
        # linux-current: the kernel's rbtree over ``q``'s items (its shape
        # decides which queued segment a new one meets first); None: not
        # made yet, or ``q`` changed in a way the tree did not follow
        self.ofo = None
        self.urg_abs = None  # pending urgent byte (linux-current)
        self.gap_pending = False  # next StreamData carries gap=True
        self.hist = []  # (offset, bytes) last delivered chunks, for retransmissions
        self.hist_len = 0
        self.rst = False  # the receiver took a RST (or RFC 793 SYN): its socket may be gone
        self.maxwin = 0  # largest window this sender advertised (its peer's max_window)
        self.key = (src, sport, dst, dport)  # in the reassembler's table (see _pkt_key)
        self.app_mem = 0  # what the stages above hold for it, charged (charge_app)
        # the detect stage's bytearray that in-order bytes are appended to
        # instead of a StreamData, while it stays under sink_max (module doc)
        self.sink = None
        self.sink_max = 0
        self.sink_pkt = None

    @property
    def rcv_nxt(self) -> int:
        """The receiver's next expected sequence number for this sender."""
        return (self.base + self.off) & M32

    def __repr__(self) -> str:
        return (f"TcpDirection({format_addr(self.src)}:{self.sport} -> "
                f"{format_addr(self.dst)}:{self.dport}, off={self.off})")


def wire_len(pkt) -> int:
    """The frame's bytes on the wire: a header-only record of the live
    sensor (or a capture's snaplen) cut the payload, not the traffic."""
    n = pkt.frame_len
    if pkt.truncated:
        n += max(0, pkt.wire_payload - len(pkt.payload))
    return n


class TcpSession:
    """One connection: ``client`` sent the first SYN (or the picked-up segment)."""

    __slots__ = ("client", "server", "state", "last", "timeout", "midstream", "oneside",
                 "split", "win", "wscale_ok", "ts_ok", "noticed", "dead", "alt", "syns",
                 "pickup", "start")

    def __init__(self):
        self.start = 0.0  # its first packet's time (EVE's flow.start)
        self.client = None
        self.server = None
        self.state = SYN_SENT
        self.last = 0.0
        self.timeout = 0.0
        self.midstream = False  # picked up without the handshake
        self.oneside = False  # established with one side unseen
        self.split = False  # the client sent a SYN-ACK (split handshake)
        self.win = True  # window scaling known: the receive window is enforced
        self.wscale_ok = False  # both SYNs carried window scale
        self.ts_ok = False  # both SYNs carried timestamps: PAWS applies
        self.noticed = 0  # bit per NoticeKind already reported
        self.dead = False  # removed from the table
        # An older connection on the same 4-tuple that may still be alive at
        # the server (a reconnection the sensor cannot confirm): fed every
        # segment too, so either reading is inspected.
        self.alt = None
        self.syns = 0  # client SYNs with a new ISN before the handshake (3whs_syn_flood)
        self.pickup = False  # picked up from one segment, no answer seen yet

    @property
    def policy(self) -> tuple:
        """(policy for the client's data, policy for the server's data): each is
        the receiving host's stack, chosen by the receiver's address."""
        return (self.client.policy, self.server.policy)

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]


_KIND_BIT = {k: 1 << i for i, k in enumerate(NoticeKind)}


class TcpReassembler:
    """TCP sessions by 4-tuple, each direction reassembled for its receiver."""

    def __init__(self, config: StreamConfig | None = None, policy_for=None, classify=None):
        self.config = cfg = config or StreamConfig()
        if cfg.policy not in POLICIES:
            raise ValueError(f"unknown stream policy {cfg.policy!r}")
        self.policy_for = policy_for
        self.classify = classify
        self.checksums = ChecksumGate(cfg.checksum)
        self.depth = cfg.depth if cfg.depth and cfg.depth > 0 else 1 << 62
        cd = cfg.depth if cfg.client_depth is None else cfg.client_depth
        self.client_depth = cd if cd and cd > 0 else 1 << 62
        self.queue_limit = cfg.queue_limit
        # per queued segment beside its bytes (StreamConfig.segment_cost): a
        # flood of 1-byte segments is bounded by count too (4,092 per
        # direction at the default queue limit)
        self.item_cost = cfg.segment_cost
        self.memcap = cfg.memcap
        self._timeouts = (0.0, cfg.timeout_new, cfg.timeout_new, cfg.timeout_established,
                          cfg.timeout_established, cfg.timeout_closed)
        self._dirs = {}  # (src, sport, dst, dport) -> TcpDirection
        self._sessions = OrderedDict()  # TcpSession -> None, oldest first
        self._embryonic = OrderedDict()  # the half-open ones among them
        # Sessions picked up midstream from one segment whose other side has
        # not spoken yet: a flood of lone ACKs (random ports, forged
        # sources) makes one each, and they go first when the table is full,
        # so such a flood cannot evict the connection an attack rides on.
        self._pickups = OrderedDict()
        self.c_evicted_pickups = 0
        # Sessions both of whose streams ended (or were reset), in the order
        # they closed. They stay for the closed timeout only to place late
        # copies and new SYNs on the 4-tuple; when room is needed they go
        # before any open connection, as their timeout would, so a busy
        # server's closing connections (60 s each) cannot evict the open
        # one an attack rides on.
        self._closed = OrderedDict()
        self.c_closed_retired = 0
        # Each session costs ~1.6 KB half-open and ~4 KB with detect state
        # (tracemalloc, bench/floods.py --profile): sessions are charged
        # against the memcap unless max_sessions is set.
        self.max_sessions = cfg.max_sessions or max(1024, cfg.memcap // SESSION_COST)
        self.max_embryonic = max(256, self.max_sessions // 4)
        # What the stages above the stream hold per direction (parsers'
        # unfinished header lines and bodies, dump history, bytes waiting
        # for their ACK, the last packet) is charged to the same budget as
        # the sessions (charge_app): a slowloris of unfinished requests
        # held 9 KB a session bundled, 17 KB with Suricata http rules,
        # which the flat SESSION_COST let past the bound (bench/floods.py).
        self.app_memory = 0
        self.app_budget = self.max_sessions * SESSION_COST
        self.c_evicted_memory = 0
        self.c_evicted_embryonic = 0
        self._next_sweep = float("-inf")
        self._sweep_it = None
        self._last_notice = {}  # kind -> ts of its last rated notice (_rated)
        self._unreported = {}  # kind -> occurrences since
        # Sessions gone while their connection may go on (GONE_MAX): a
        # flood can evict the connection an attack is split across, or the
        # attacker can wait out the idle timeout between the halves.
        # Pickups the other side never answered are kept apart (lean: the
        # plain tail, no queue), so a flood of spoofed segments, which a
        # pickup each, cannot push a real connection's entry out
        self._gone: OrderedDict = OrderedDict()
        self._gone_unanswered: OrderedDict = OrderedDict()
        self._gone_bytes = 0  # the tails they keep
        # callable(direction) -> bytes at the end of its stream the stages
        # above still need to see again (set by the pipeline; see _resume_tail)
        self.resume_need = None
        self.c_resumed = 0
        self.c_resumed_idle = 0
        self.c_gone_forgotten = 0  # remembered sessions pushed out by newer ones
        self._pkt = None  # the segment being fed (its anomalies are marked), None outside feed
        self.memory = 0
        # directions whose queue reached BIG_QUEUE (the memcap prunes the
        # largest of them first); left when freed or found smaller
        self._big: dict = {}
        self.ended = 0  # sessions removed so far
        # Sessions removed since the caller last reaped: their directions may
        # still be in this frame's events and in the detect stage's state, so
        # the caller finishes with them and then calls ``unlink``.
        self.graveyard: list = []
        self.last_direction = None  # direction of the last segment fed (None: none)
        # counters
        self.c_sessions = 0
        self.c_midstream = 0
        self.c_midstream_ignored = 0
        self.c_handshake_ignored = 0
        self.c_bad_checksum = 0
        self.c_oow = 0
        self.c_ack_unsent = 0
        self.c_ack_too_old = 0
        # Off for the live sensor: a frame of the server's side can be lost
        # on the way from the kernel (a full ring) or come late, and its
        # client's ACKs would then look unsent.
        self.ack_check = True
        self.c_retrans = 0
        self.c_rst_ignored = 0
        self.c_rst_resets = 0
        self.c_syn_ignored = 0
        self.c_syn_resets = 0
        self.c_paws = 0
        self.c_no_ack = 0
        self.c_md5 = 0
        self.c_auth_invalid = 0
        self.c_urgent = 0
        self.c_overlaps = 0
        self.c_mismatch = 0
        self.c_qoverflow = 0
        self.c_qoverflow_bytes = 0
        self.c_memcap = 0
        self.c_memcap_bytes = 0
        self.c_gaps = 0
        self.c_gap_bytes = 0
        self.c_depth = 0
        self.c_timeouts = 0
        self.c_evicted = 0
        self.c_discarded = 0
        self.c_after_close = 0
        self.c_syn_data_dropped = 0
        self.c_delivered = 0
        self.c_data_after_rst = 0
        self.c_readings = 0
        self.c_fin_overtaken = 0

    # ------------------------------------------------------------------ API

    @property
    def sessions(self) -> int:
        """Sessions in the table now."""
        return len(self._sessions)

    def counters(self) -> dict:
        return {
            "sessions": self.c_sessions,
            "sessions_active": len(self._sessions),
            "evicted_half_open": self.c_evicted_embryonic,
            "evicted_one_sided": self.c_evicted_pickups,
            "closed_retired_early": self.c_closed_retired,
            "memory": self.memory,
            "midstream_pickups": self.c_midstream,
            "midstream_ignored": self.c_midstream_ignored,
            "handshake_ignored": self.c_handshake_ignored,
            "bad_checksum": self.c_bad_checksum,
            "checksum_offload_detected": int(self.checksums.offload_detected),
            "out_of_window": self.c_oow,
            "ack_of_unsent_data": self.c_ack_unsent,
            "ack_too_old": self.c_ack_too_old,
            "retransmissions": self.c_retrans,
            "rst_ignored": self.c_rst_ignored,
            "rst_resets": self.c_rst_resets,
            "syn_ignored": self.c_syn_ignored,
            "syn_resets": self.c_syn_resets,
            "paws_dropped": self.c_paws,
            "no_ack_dropped": self.c_no_ack,
            "md5_dropped": self.c_md5,
            "auth_options_dropped": self.c_auth_invalid,
            "urgent_bytes_removed": self.c_urgent,
            "overlaps": self.c_overlaps,
            "overlap_mismatches": self.c_mismatch,
            "queue_overflows": self.c_qoverflow,
            "queue_overflow_bytes": self.c_qoverflow_bytes,
            "memcap_drops": self.c_memcap,
            "memcap_drop_bytes": self.c_memcap_bytes,
            "gaps": self.c_gaps,
            "gap_bytes": self.c_gap_bytes,
            "depth_reached": self.c_depth,
            "timeouts": self.c_timeouts,
            "evicted": self.c_evicted,
            "evicted_app_memory": self.c_evicted_memory,
            "resumed_after_eviction": self.c_resumed,
            "resumed_after_timeout": self.c_resumed_idle,
            "gone_forgotten": self.c_gone_forgotten,
            "app_memory": self.app_memory,
            "closed_discarded_bytes": self.c_discarded,
            "data_after_close": self.c_after_close,
            "syn_data_dropped": self.c_syn_data_dropped,
            "delivered_bytes": self.c_delivered,
            "data_after_rst": self.c_data_after_rst,
            "reconnections_ambiguous": self.c_readings,
            "fin_overtaken": self.c_fin_overtaken,
        }

    def feed(self, pkt, d=_LOOKUP) -> list:
        """Events caused by one decoded TCP segment. ``d``: its direction as
        ``direction_of(pkt)`` gave it just before, where the caller needed
        it too (looked up again if a sweep or reap ran in between)."""
        if self.graveyard:
            self.reap()
            d = _LOOKUP
        ts = pkt.ts
        out = []
        self._pkt = None  # sweep notices are about other sessions
        if ts >= self._next_sweep:
            self._sweep(ts, out)
            d = _LOOKUP
        self._pkt = pkt
        if d is _LOOKUP:
            d = self.direction_of(pkt)
        gate = self.checksums
        # Checked: segments of a new session and of inspected directions.
        # Not: header-only records of the live sensor (they cannot be), and
        # the reverse direction of an inspected flow, whose receiver is not
        # what the rules protect and whose packets an attacker could forge
        # with right checksums anyway; the offline and live sensors then
        # follow the same state.
        check = gate.enabled and not pkt.truncated
        verdict = -1  # not checked
        # A pure ACK of an inspected direction carries nothing that changes
        # the inspected stream (its ACK and window speak for the other one),
        # unless it has options: a timestamp moves ts_recent, and a forged
        # far-future one would make the real segments after it PAWS-old
        # here only (live case tcp_pure_ack_bad_checksum_with_future_timestamp).
        if check and d is not None and d.buffer and (
                pkt.payload or pkt.flags != TH_ACK or pkt.tcp_options):
            verdict = gate.check_l4(pkt, d.csum_strict)
            if not verdict:
                self._bad_checksum(pkt, out)
                return out
            if verdict == 1 and not d.csum_strict and gate.proves_sender(pkt):
                d.csum_strict = True  # this sender computes real checksums
        older = None  # earlier readings of this 4-tuple a new session carries on
        if d is not None:
            s = d.session
            if ts - s.last > s.timeout:
                # idle past its timeout but not swept yet: it is gone
                older = self._detach(s)
                self._expire_one(s, out)
                d = None
            elif pkt.flags & (TH_SYN | TH_ACK | TH_RST) == TH_SYN:
                new = self._new_connection(d, s, pkt)
                if new == 1:  # a new connection on a closed 4-tuple
                    older = self._detach(s)
                    self._end(s, out)
                    d = None
                elif new == 2:  # maybe: the old one stays a reading
                    self.c_readings += 1
                    older = s
                    d = None
        if d is None:
            if check and verdict < 0:
                verdict = gate.check_l4(pkt)
                if not verdict:
                    self._bad_checksum(pkt, out)
                    return out
            d = self._open(pkt, out)
            if d is not None and verdict == 1 and gate.proves_sender(pkt):
                d.csum_strict = True
            if older is not None:
                self._carry(d, older, out)
            self.last_direction = d
            if _PKT_HAS_DIRECTION:
                pkt.direction = d
            if d is not None and d.session.alt is not None:
                self._feed_older(d, pkt, out)
            return out
        d.packets += 1
        d.nbytes += pkt.frame_len if not pkt.truncated else wire_len(pkt)
        if s.pickup and d.packets == 1:  # the other side answers
            s.pickup = False
            self._pickups.pop(s, None)
        s.last = ts
        self.last_direction = d
        if _PKT_HAS_DIRECTION:
            pkt.direction = d
        self._segment(d, s, pkt, out)
        if s.alt is not None:
            self._feed_older(d, pkt, out)
        return out

    def direction_of(self, pkt):
        """The TcpDirection pkt was sent in, or None (no session yet)."""
        return self._dirs.get(_pkt_key(pkt))

    @staticmethod
    def _ack_verdict(d, s, pkt) -> int:
        """What tcp_ack makes of ``pkt``'s ACK at d's receiver (which judges
        the ACK against what it sent itself): ACK_OK; ACK_OLD, before its
        snd_una (taken, but its TSval does not count); ACK_TOO_OLD, before
        it by more than min(max_window, bytes_acked), dropped with the
        segment (RFC 5961 5.2, and since Linux 6.7 no ACK of bytes never
        sent: with nothing acknowledged yet, any ACK before its first byte);
        ACK_UNSENT, past what it sent, dropped too. Judged only where that
        stream was seen whole: both SYNs, no hole (a hole or a one-sided
        session is capture loss, whose ACKs run ahead)."""
        o = d.peer
        if o.isn is None or s.oneside or s.midstream or o.q:
            return ACK_OK
        sent = o.off if o.fin_abs is None else max(o.off, o.fin_abs + 1)
        if ((pkt.ack - o.base - sent + HALF) & M32) - HALF > 0:
            return ACK_UNSENT
        una = o.wup or 0  # the receiver's snd_una, as an offset of its stream
        r = ((pkt.ack - o.base - una + HALF) & M32) - HALF
        if r >= 0:
            return ACK_OK
        # bytes_acked is una (the SYN is not counted); max_window is the
        # largest window d announced, known only with the window scale (else
        # the bound is bytes_acked alone: never a drop the target would not)
        mw = una if not s.win or d.maxwin > una else d.maxwin
        return ACK_TOO_OLD if r + mw < 0 else ACK_OLD

    def _new_connection(self, d, s, pkt) -> int:
        """A SYN (no ACK) from ``d`` on a known 4-tuple: 0 it belongs to the
        session (``_syn`` decides), 1 it opens a new connection, 2 it may.

        After a RST the server took (the client's, exact: RFC 5961) or once
        both streams ended, the server has no socket left (or a TIME_WAIT one
        that takes a new SYN): a new connection. After a RST the client took
        (which the server may never have sent: forged "from the server") or
        the server's FIN (its orphan socket dies after tcp_fin_timeout,
        silently), the server may still hold the connection, and then ignores
        the SYN (challenge ACK), or not, and takes it. Packets from the
        server cannot settle it (they can be forged too), so both readings
        are followed: the new session, and the old one as its ``alt``.
        """
        state = s.state
        if state == CLOSED:
            return 1
        if d is not s.client or (state != ESTABLISHED and state != CLOSING):
            return 0
        seq = pkt.seq
        if d.isn is not None:
            if seq == d.isn:
                return 0  # a retransmitted SYN
        elif ((seq + 1) & M32) == d.base:
            return 0  # the SYN of a session picked up midstream, late
        if d.rst:
            return 1
        o = d.peer
        if o.rst or o.fin_done:
            return 2
        return 0

    @staticmethod
    def _detach(s):
        """s's older readings, taken off it before it ends."""
        alt, s.alt = s.alt, None
        return alt

    def _carry(self, d, older, out):
        """The new session of d (None: none was opened) goes on with the
        older readings of its 4-tuple, at most MAX_READINGS in all: past that
        the newest older one leaves (the first connection stays)."""
        while older is not None and older.dead:
            older = older.alt
        if older is None:
            return
        if d is None:
            # nothing new: the older reading is the 4-tuple's session again
            for od in (older.client, older.server):
                self._dirs.setdefault(od.key, od)
            return
        n = 1
        a = older
        while a is not None:
            if not a.dead:
                n += 1
            a = a.alt
        if n > MAX_READINGS:
            keep = self._detach(older)
            self._end(older, out)
            older = keep
        d.session.alt = older

    def _feed_older(self, d, pkt, out):
        """Feed the older readings of d's session the segment d just took."""
        ts = pkt.ts
        holder = d.session
        a = holder.alt
        src, sport = d.src, d.sport
        while a is not None:
            if not a.dead and ts - a.last > a.timeout:
                self._expire_one(a, out)
            if a.dead:
                a = holder.alt = a.alt
                continue
            c = a.client
            ad = c if c.src == src and c.sport == sport else a.server
            ad.packets += 1
            ad.nbytes += wire_len(pkt)
            a.last = ts
            self._segment(ad, a, pkt, out)
            holder, a = a, a.alt

    def flush(self) -> list:
        """End of input: deliver what every open stream holds, drop all sessions."""
        self._pkt = None
        out = []
        for s in list(self._sessions):
            self._end(s, out)
        self._sweep_it = None
        return out

    def expire(self, now: float) -> list:
        """Sessions idle past their state's timeout leave, their data delivered."""
        self._pkt = None
        out = []
        for s in list(self._sessions):
            if now - s.last > s.timeout:
                self._expire_one(s, out)
        return out

    def _expire_one(self, s, out):
        if s.state != CLOSED:
            self.c_timeouts += 1  # an open connection went quiet
            if s.state == ESTABLISHED:
                # Linux keeps it however long it is quiet: half a request,
                # an hour's wait, the other half must still match
                self._remember(s, False)
        self._end(s, out)

    # ------------------------------------------------------------ sessions

    def _policy(self, addr):
        """The receiving stack at ``addr``: policy_for's answer, or the default.
        A host-policy name that is not a stream policy (``bsd-right``) maps as
        Suricata maps it (``STREAM_FOR_HOST``)."""
        name = self.policy_for(addr) if self.policy_for is not None else None
        if not name:
            return POLICIES[self.config.policy]
        pol = POLICIES.get(name)
        if pol is None:
            if name not in STREAM_FOR_HOST:
                raise ValueError(f"unknown stream policy {name!r}")
            pol = POLICIES[STREAM_FOR_HOST[name] or self.config.policy]
        return pol

    def _new_session(self, pkt, sender_is_client: bool, out):
        """A session for pkt's 4-tuple; returns the direction pkt was sent in."""
        emb = self._embryonic
        while len(emb) >= self.max_embryonic:
            self.c_evicted_embryonic += 1
            self._end(next(iter(emb)), out)
        while len(self._sessions) >= self.max_sessions and self._evict_one(None, out):
            pass
        s = TcpSession()
        a = TcpDirection(pkt.src, pkt.sport, pkt.dst, pkt.dport, s)
        b = TcpDirection(pkt.dst, pkt.dport, pkt.src, pkt.sport, s)
        if pkt.vlan:
            a.key += (pkt.vlan,)
            b.key += (pkt.vlan,)
        a.peer, b.peer = b, a
        s.client, s.server = (a, b) if sender_is_client else (b, a)
        s.last = s.start = pkt.ts
        classify = self.classify
        for d in (s.client, s.server):
            pol = self._policy(d.dst)
            d.pol = pol
            d.policy = pol.name
            d.nodes = classify(d) if classify is not None else True
            d.buffer = bool(d.nodes)
        s.client.depth = self.client_depth
        s.server.depth = self.depth
        self._dirs[a.key] = a
        self._dirs[b.key] = b
        self._sessions[s] = None
        self.c_sessions += 1
        a.packets = 1
        a.nbytes = wire_len(pkt)
        return a

    def charge_app(self, d, n: int) -> None:
        """What the stages above hold for direction ``d`` is now ``n`` bytes."""
        s = d.session
        if s is None or s.dead:
            return  # (ended in this frame: its charge went with it)
        self.app_memory += n - d.app_mem
        d.app_mem = n

    def over_budget(self) -> bool:
        """Sessions and what is held above them exceed the session budget."""
        return len(self._sessions) * SESSION_COST + self.app_memory > self.app_budget

    def evict_for_memory(self, keep, out) -> None:
        """End sessions in ``_evict_one``'s order (closed ones quiet for
        CLOSED_GRACE_S, then one-sided pickups, then the oldest) until the
        budget holds again; never ``keep`` (the session of the segment
        being handled). Each open one is counted in ``evicted`` and
        ``evicted_app_memory``; what it held is delivered to ``out`` as at
        any session end."""
        while self.over_budget():
            gone = self._evict_one(keep, out)
            if not gone:
                break
            if gone is not _RETIRED:
                self.c_evicted_memory += 1

    def _evict_one(self, keep, out):
        """End the session to go first when room is needed: the longest
        closed one (``_RETIRED``: nothing of it is lost, counted in
        ``closed_retired_early``), else the oldest one-sided pickup, else the
        oldest session (True, counted in ``evicted``); never ``keep``. False
        if there is none."""
        pkt = self._pkt
        if pkt is not None:
            for old in self._closed:
                if pkt.ts - old.last < CLOSED_GRACE_S:
                    break  # (closed in order: the ones after it are younger)
                if old is not keep:
                    self.c_closed_retired += 1
                    self._end(old, out)
                    return _RETIRED
        for table in (self._pickups, self._sessions):
            for old in table:
                if old is not keep:
                    if old.pickup:
                        self.c_evicted_pickups += 1
                    self.c_evicted += 1
                    self._remember(old, True)
                    pkt = self._pkt
                    self._flood_notice(_K.STREAM_EVICTED, pkt.ts if pkt is not None else old.last,
                                       "TCP session evicted, session table or memory full",
                                       old.client, out)
                    self._end(old, out)
                    return True
        return False

    def _remember(self, s, evicted: bool) -> None:
        """s leaves while its connection may go on (evicted, or idle past
        its timeout): if it carried data, keep where each receiver was for
        its return (``_resume``)."""
        c = s.client
        # What it queued out of order counts too: Linux keeps its
        # out-of-order queue however long the hole stays open, and however
        # full this sensor's table is (it prunes it only when that socket or
        # all of TCP runs out of memory, tcp_prune_ofo_queue)
        if c.delivered or c.peer.delivered or c.q or c.peer.q:
            k = hash(c.key)
            self._recall(k)  # (the 4-tuple remembered before)
            if s.pickup:  # never answered
                keys = self._gone_unanswered
                ct, st, cq, sq = _tail(c, RESUME_TAIL), _tail(c.peer, RESUME_TAIL), (), ()
            else:
                keys = self._gone
                ct, st = self._resume_tail(c), self._resume_tail(c.peer)
                cq = self._resume_queue(c, len(ct) + len(st))
                sq = self._resume_queue(c.peer, len(ct) + len(st) + _held(cq))
            keys[k] = (c.rcv_nxt, ct, c.peer.rcv_nxt, st, evicted, cq, sq)
            self._gone_bytes += len(ct) + len(st) + _held(cq) + _held(sq)
            if len(keys) > GONE_MAX:
                self._unkeep(keys.popitem(last=False)[1])
                self.c_gone_forgotten += 1

    def _recall(self, k):
        """The remembered session of client key hash k, taken out of its table."""
        t = self._gone.pop(k, None)
        if t is None:
            t = self._gone_unanswered.pop(k, None)
        if t is not None:
            self._unkeep(t)
        return t

    def _unkeep(self, t) -> None:
        """A remembered session leaves ``_gone``: its tails' and queues' bytes too."""
        self._gone_bytes -= len(t[1]) + len(t[3]) + _held(t[5]) + _held(t[6])

    def _resume_queue(self, d, more: int) -> tuple:
        """d's out-of-order data as (sequence number, bytes) pairs, to queue
        again if the connection comes back (``_resume``); none if it would
        take the remembered bytes (``more`` already to be added) past
        GONE_TAIL_BUDGET."""
        if not d.q or not d.buffer:
            return ()
        items = tuple(((d.base + it[0]) & M32, self._bytes(it)[:it[1] - it[0]])
                      for it in d.q if it[2] is not None and it[1] > it[0])
        if self._gone_bytes + more + _held(items) > GONE_TAIL_BUDGET:
            return ()
        return items

    def _resume_tail(self, d) -> bytes:
        """What d's stream resumes after: its last RESUME_TAIL bytes, or more
        if the stages above hold a message not parsed whole (``resume_need``:
        an HTTP request line cut by the eviction, its URI still to be
        normalized), up to HISTORY_BYTES while the remembered tails stay
        under GONE_TAIL_BUDGET."""
        need = self.resume_need
        size = RESUME_TAIL
        if need is not None and d.buffer:
            n = need(d)
            if n > size and self._gone_bytes + n <= GONE_TAIL_BUDGET:
                size = min(n, HISTORY_BYTES)
        return _tail(d, size)

    def _rated(self, kind, ts) -> int:
        """Notices a flood can repeat come at most one a second per kind:
        how many times ``kind`` occurred since its last notice if one is
        due at ``ts``, else 0 (the occurrence is kept for the next)."""
        n = self._unreported.get(kind, 0) + 1
        last = self._last_notice.get(kind)
        if last is not None and 0 <= ts - last < 1.0:
            self._unreported[kind] = n
            return 0
        self._last_notice[kind] = ts
        self._unreported[kind] = 0
        return n

    def _flood_notice(self, kind, ts, text, d, out):
        """A rated notice (evictions, resumptions) naming d's flow and how
        many occurred since the last one; each is counted by its caller."""
        n = self._rated(kind, ts)
        if not n:
            return
        if n > 1:
            text = f"{text} ({n} since the last notice, the last one)"
        _flow_notice(ts, kind, text, d, out)

    def _resume(self, d, pkt, out) -> None:
        """d's session was just picked up midstream from pkt. If its 4-tuple
        left with data before (``_remember``), go on from there, reporting
        an evicted one: each direction's stream resumes where its receiver
        was (a segment sent out of order first is queued, not taken as the
        start) after the tail it had read, so a pattern split across the gap
        still matches."""
        if not self._gone and not self._gone_unanswered:
            return
        o = d.peer
        t = self._recall(hash(d.key))
        if t is not None:
            d_nxt, d_tail, o_nxt, o_tail, evicted, d_q, o_q = t
        else:
            t = self._recall(hash(o.key))  # picked up from the server's side
            if t is None:
                return
            o_nxt, o_tail, d_nxt, d_tail, evicted, o_q, d_q = t
        if evicted:
            self.c_resumed += 1
            self._flood_notice(_K.STREAM_RESUMED_AFTER_EVICTION, pkt.ts,
                               "evicted TCP session resumes", d, out)
        else:  # a long-idle connection going on is no anomaly: counted only
            self.c_resumed_idle += 1
        # Wherever pkt lies: a decoy far from the old position, which the
        # receiver drops, must not become the stream's start. (A new
        # connection on the 4-tuple would have come with a SYN.)
        for x, nxt, tail, queued in ((d, d_nxt, d_tail, d_q), (o, o_nxt, o_tail, o_q)):
            x.base = nxt
            if tail and x.buffer:
                self._accept(x, tail, pkt, out)
                x.base = (nxt - len(tail)) & M32  # the tail's bytes precede nxt
            if x.buffer:
                # what it had queued past its hole waits there again (a
                # FIN queued with it is not kept: data after it would
                # say the connection went on)
                for seq, data in queued:
                    start = x.off + (((seq - nxt + HALF) & M32) - HALF)
                    if start > x.off:
                        self._data(x, pkt, start, data, False, out)

    def _set_state(self, s, state):
        s.state = state
        s.timeout = self._timeouts[state]
        # Half-open sessions are kept apart so a SYN flood evicts its own
        # kind first, not the established connections an attack rides on.
        if state == SYN_SENT or state == SYN_RECV:
            if not s.dead:
                self._embryonic[s] = None
        else:
            self._embryonic.pop(s, None)
        if state == CLOSED:
            if not s.dead:
                self._closed[s] = None
        else:
            self._closed.pop(s, None)

    def _auth_dropped(self, auth):
        """Count a segment tcp_inbound_hash drops; its (notice kind, text)."""
        if auth == AUTH_MD5:
            self.c_md5 += 1
            return _K.STREAM_MD5_UNEXPECTED, "unexpected TCP MD5 signature option, segment dropped"
        self.c_auth_invalid += 1
        if auth == AUTH_AO:
            return (_K.STREAM_AUTH_OPTIONS_INVALID,
                    "TCP-AO option on a connection that did not start with it, segment dropped")
        return (_K.STREAM_AUTH_OPTIONS_INVALID,
                "TCP options malformed or with MD5/TCP-AO set wrong, segment dropped")

    def _open(self, pkt, out):
        """The first segment of a 4-tuple: start a session, or ignore it."""
        flags = pkt.flags
        opts = pkt.tcp_options
        info = _scan_options(opts) if opts else _NO_OPTS
        if info[2] and info[2] != AUTH_AO and self._policy(pkt.dst).md5:
            self._free(pkt, *self._auth_dropped(info[2]), out)
            return None
        if flags & TH_RST:
            return None  # nothing to reset
        cfg = self.config
        if flags & TH_SYN:
            if not flags & TH_ACK:
                d = self._new_session(pkt, True, out)
                s = d.session
                self._set_state(s, SYN_SENT)
                self._init_syn(d, pkt, info)
                return d
            if not cfg.midstream:
                self.c_midstream_ignored += 1
                return None
            # a SYN-ACK: the handshake seen from its second packet
            d = self._new_session(pkt, False, out)
            s = d.session
            c = d.peer
            self.c_midstream += 1
            s.midstream = True
            s.win = False  # the client's window scale was in the SYN we missed
            self._set_state(s, SYN_RECV)
            self._init_syn(d, pkt, info)
            c.base = pkt.ack
            s.wscale_ok = info[0] >= 0  # a SYN-ACK carries it only if the SYN did
            s.ts_ok = info[1] is not None
            d.ts_recent = info[1] or 0
            if d.syn_data is not None:
                d.syn_data = None
                self.c_syn_data_dropped += 1
            return d
        if not flags & TH_ACK:
            self.c_no_ack += 1
            return None
        if not cfg.midstream:
            self.c_midstream_ignored += 1
            return None
        d = self._new_session(pkt, True, out)
        s = d.session
        o = d.peer
        self.c_midstream += 1
        s.midstream = True
        s.pickup = True
        self._pickups[s] = None
        s.win = False  # window scale unknown
        self._set_state(s, ESTABLISHED)
        d.base = pkt.seq
        o.base = pkt.ack
        if info[1] is not None:
            s.ts_ok = True  # TSopt is only sent once negotiated (RFC 7323 3.2)
            d.ts_recent = info[1]
        self._resume(d, pkt, out)
        self._segment(d, s, pkt, out)
        return d

    def _init_syn(self, d, pkt, info):
        seq = pkt.seq
        d.isn = seq
        d.base = (seq + 1) & M32
        d.off = 0
        d.wscale, d.syn_ts = info[0], info[1]
        data = pkt.payload
        d.tfo = info[3] or bool(data)
        if data:
            d.syn_data = data
            d.syn_pkt = pkt
        else:
            d.syn_data = d.syn_pkt = None

    def _end(self, s, out):
        """Remove a session: open streams deliver what they still hold."""
        if s.dead:
            return
        if s.state != CLOSED:
            for d in (s.client, s.server):
                self._give_up(d, out)
        primary = False
        for d in (s.client, s.server):
            self._release(d)
            self.app_memory -= d.app_mem
            d.app_mem = 0
            key = d.key
            if self._dirs.get(key) is d:
                del self._dirs[key]
                primary = True
        s.dead = True
        self.ended += 1
        self._sessions.pop(s, None)
        self._embryonic.pop(s, None)
        self._closed.pop(s, None)
        if s.pickup:
            self._pickups.pop(s, None)
        if primary and s.alt is not None:
            # the next older reading is the 4-tuple's session again
            self._carry(None, self._detach(s), out)
        self.graveyard.append(s)

    def reap(self) -> list:
        """The sessions ended since the last call, now unlinked."""
        dead, self.graveyard = self.graveyard, []
        for s in dead:
            self.unlink(s)
        return dead

    @staticmethod
    def unlink(s):
        """Break the reference cycles of an ended session (direction <->
        session, direction <-> peer, queued packets -> direction, detect
        state -> direction) so reference counting frees it at once: a cycle
        waits for a full collection, and with millions of long-lived objects
        (a large rule set) each full collection walks all of them (ET Open:
        0.15 s each, 16% of the processing time). Only ``dead`` and ``alt``
        stay meaningful: an older reading's chain may still pass through it."""
        for d in (s.client, s.server):
            d.session = d.peer = d.det = d.syn_pkt = d.syn_data = None
            d.q = []
            d.hist = []

    def _release(self, d):
        self.memory -= d.qbytes
        d.qbytes = 0
        d.q = []
        d.ofo = None
        self._big.pop(d, None)

    def _give_up(self, d, out):
        """Deliver everything pending, skipping holes (marked gap=True)."""
        if not d.buffer:
            return
        if d.syn_data is not None and d.off == 0:
            data, d.syn_data = d.syn_data, None
            self._accept_or_track(d, data, d.syn_pkt, out)
        while d.q and not d.fin_done:
            head = d.q[0][0]
            fa = d.fin_abs
            if fa is not None and d.off <= fa < head:
                if fa > d.off:
                    self._gap(d, fa - d.off, out)  # the FIN ends the stream first
                self._fin(d, out)
                break
            if head > d.off:
                self._gap(d, head - d.off, out)
            self._drain(d, None, out)

    def _sweep(self, ts, out):
        self._next_sweep = ts + SWEEP_EVERY_S
        it = self._sweep_it
        if it is None:
            # a snapshot of the keys only while this sweep lasts; ended
            # sessions in it are skipped (s.dead)
            it = self._sweep_it = iter(list(self._sessions))
        budget = SWEEP_SLICE + (len(self._sessions) >> 6)
        for s in it:
            if not s.dead and ts - s.last > s.timeout:
                self._expire_one(s, out)
            budget -= 1
            if not budget:
                return
        self._sweep_it = None

    def _close(self, s, out):
        """A reset: both hosts drop what they had not read."""
        for d in (s.client, s.server):
            self.c_discarded += _queued_bytes(d)
            self._release(d)
            if d.syn_data is not None:
                self.c_discarded += len(d.syn_data)
                d.syn_data = None
        self._set_state(s, CLOSED)

    # ------------------------------------------------------------- notices

    def _mark(self, kind):
        """Every occurrence goes on the segment's ``anomalies`` (unthrottled),
        so a Suricata ``stream-event`` rule can alert once per packet as
        Suricata does while notices stay one per kind per session."""
        p = self._pkt
        if p is not None and kind not in p.anomalies:
            p.anomalies = p.anomalies + (kind,)

    def _notice(self, d, kind, text, ts, out):
        """Report ``kind`` for d's session unless already reported there."""
        self._mark(kind)
        s = d.session
        bit = _KIND_BIT[kind]
        if s.noticed & bit:
            return
        s.noticed |= bit
        _flow_notice(ts, kind, text, d, out)

    def _free(self, pkt, kind, text, out):
        """A notice about a segment of no session: at most one a second per kind."""
        d = self.direction_of(pkt)
        if d is not None:
            self._notice(d, kind, text, pkt.ts, out)
            return
        self._mark(kind)
        if self._rated(kind, pkt.ts):
            _flow_notice(pkt.ts, kind, text, pkt, out)

    def _bad_checksum(self, pkt, out):
        self.c_bad_checksum += 1
        self._free(pkt, _K.STREAM_BAD_CHECKSUM, "bad TCP or IPv4 checksum, segment ignored", out)

    # ------------------------------------------------------------ segments

    def _segment(self, d, s, pkt, out):
        """One segment of an existing session, sent by d."""
        flags = pkt.flags
        opts = pkt.tcp_options
        tsval = info = None
        if opts:
            if len(opts) == 12 and opts.startswith(_TS_ALIGNED):
                tsval = _u32(opts, 4)[0]
            else:
                info = _scan_options(opts)
                auth = info[2]
                if auth and d.pol.md5 and (auth != AUTH_AO or (s.state == SYN_RECV
                                                                and d is s.client)):
                    # (an AO option only to the server's request socket)
                    self._notice(d, *self._auth_dropped(auth), pkt.ts, out)
                    return
                tsval = info[1]
        data = pkt.payload
        state = s.state
        after_rst = False
        if flags & _SYN_RST_ACK != TH_ACK or state != ESTABLISHED:
            if state == SYN_SENT and flags & TH_ACK and d is s.server and opts \
                    and self._bad_tsecr(d, s, pkt, opts, out):
                return
            if state == CLOSED:
                if data:
                    self.c_after_close += 1
                return
            if flags & (TH_SYN | TH_RST):
                # tcp_validate_incoming looks at RST before SYN
                if flags & TH_RST:
                    self._rst(d, s, pkt, out)
                else:
                    self._syn(d, s, pkt, info or (-1, tsval, False, False), out)
                return
            if not flags & TH_ACK:
                self.c_no_ack += 1
                if data or flags & TH_FIN:
                    self._notice(d, _K.STREAM_NO_ACK, "TCP data without ACK, segment dropped",
                                 pkt.ts, out)
                return
            if state != CLOSING and not self._handshake(d, s, pkt, tsval, out):
                return
            after_rst = d.rst or d.peer.rst
        n = len(data)
        if pkt.truncated and not d.buffer:
            # A header-only record of the live sensor: the payload's bytes
            # are not here but its sequence space is (a later RST or FIN
            # is checked against it).
            n = pkt.wire_payload
            data = b""
        fin = flags & TH_FIN
        off = d.off
        rel = ((pkt.seq - d.base - off + HALF) & M32) - HALF
        paws = tsval is not None and s.ts_ok
        if n or fin:
            if paws:
                if _paws_old(d.ts_recent, tsval):
                    self.c_paws += 1
                    self._notice(d, _K.STREAM_PAWS_FAILED,
                                 "TCP timestamp older than the last one seen (PAWS), "
                                 "segment dropped", pkt.ts, out)
                    return
            wup = d.wup
            if wup is not None and d.pol.rfc5961 and off + rel + n + (1 if fin else 0) < wup:
                # tcp_sequence: a segment ending before rcv_wup is discarded
                # whole, before its timestamp or ACK count (a far-future
                # TSval on an old copy would otherwise make every real
                # segment after it PAWS-old here, not at the server)
                self.c_retrans += 1
                if n and d.buffer and d.hist:
                    self._check_retrans(d, off + rel, data, pkt.ts, out)
                return
            edge = d.edge
            if edge is not None and s.win:
                wnd = edge - off
                if (rel >= wnd and (n or rel > wnd) and rel > 0) or (n and wnd <= 0 and rel + n > 0):
                    self.c_oow += 1
                    self._notice(d, _K.STREAM_OUT_OF_WINDOW,
                                 "TCP data outside the receive window, segment ignored",
                                 pkt.ts, out)
                    return
            # tcp_ack: a segment acknowledging what the receiver never sent
            # is discarded, data, FIN and all (before its timestamp counts);
            # judged for an inspected direction
            if d.buffer and self.ack_check:
                verdict = self._ack_verdict(d, s, pkt)
                if verdict == ACK_UNSENT:
                    self.c_ack_unsent += 1
                    self._notice(d, _K.STREAM_ACK_UNSENT,
                                 "TCP segment acknowledging data never sent, segment dropped",
                                 pkt.ts, out)
                    return
                # The slow path's tcp_ack drops a segment whose ACK is too
                # old. (Header prediction would queue an in-order one first,
                # but only with receive memory left from data not yet read:
                # never for an application that reads at once, this model's.)
                if verdict == ACK_TOO_OLD:
                    self.c_ack_too_old += 1
                    self._notice(d, _K.STREAM_ACK_TOO_OLD,
                                 "TCP segment with an ACK too old for the receiver, "
                                 "segment dropped", pkt.ts, out)
                    return
                if verdict == ACK_OLD:
                    paws = False  # tcp_ack's old_ack: taken, its TSval not
        elif paws:
            # a pure ACK of unsent data: tcp_ack drops it before its TSval
            # counts (its ACK is still read, as for a pure ACK before
            # rcv_wup); an old or too old one: no TSval either
            verdict = self._ack_verdict(d, s, pkt)
            if verdict == ACK_UNSENT or (verdict and self.ack_check):
                paws = False
        if paws:
            # tcp_replace_ts_recent: only from a segment at or before rcv_wup;
            # and one ending before it never got that far (tcp_sequence):
            # data or FIN returned above, a pure ACK then starts exactly there
            wup = d.wup
            if (rel <= 0 if wup is None else (rel <= wup - off and (n or fin or rel == wup - off))) \
                    and (not d.ts_recent or ((tsval - d.ts_recent) & M32) < HALF):
                d.ts_recent = tsval
        # the ACK and window speak for the peer's data
        o = d.peer
        ooff = o.off
        arel = ((pkt.ack - o.base - ooff + HALF) & M32) - HALF
        apos = ooff + arel
        if s.win:
            w = pkt.window << d.wshift
            if w > d.maxwin:
                d.maxwin = w
            e = apos + w
            if o.edge is None or e > o.edge:
                o.edge = e
        # An ACK past a hole means the capture lost the bytes, not the
        # network: skip the hole. Not for an inspected direction: an attacker
        # can forge that ACK (it travels to the client, never the server)
        # and then send the hole's bytes, which the sensor would have passed
        # over. There holes wait for flush, timeout or the queue limit.
        if arel > 0 and not o.buffer and (o.q or (o.fin_abs is not None and not o.fin_done)):
            self._skip(o, apos, out)
        # rcv_wup (the last ACK the receiver sent) is never past what it
        # received: an ACK beyond rcv_nxt is capture loss or forged "from the
        # server". Believed, it would let an out-of-order segment set
        # ts_recent here but not in the server, and PAWS then drop the real
        # in-order segments here only.
        if arel > 0 and apos > o.off:
            apos = o.off
        if o.wup is None or apos > o.wup:
            o.wup = apos
        if flags & TH_URG and d.pol.urg_oob:
            up = pkt.urgent
            ptr = rel + up - 1 if up else rel
            if ptr >= 0:
                u = d.urg_abs
                if u is None or off + ptr > u:
                    d.urg_abs = off + ptr
        if not n:
            if not fin:
                return
        if d.fin_done:
            if rel + n <= 0:
                self.c_retrans += 1
            elif n:
                self.c_after_close += 1
            return
        if after_rst and n and rel + n > 0:
            self._after_rst(d, pkt, out)
            if d.rst and d.pol.linux and d is s.client:
                # linux-current: the server took the client's RST (judged as
                # the kernel judges it) and has no socket left: it reads no
                # more of the client and answers with a RST. (What is sent
                # to the client after a RST stays inspected: the client may
                # be the attacker, ignoring a RST it forged to itself.)
                self.c_after_close += 1
                return
        if d.buffer:
            if not rel and not d.q and d.fin_abs is None:
                # in order with nothing queued: the common case
                if n:
                    if d.urg_abs is None and d.delivered + n < d.depth:
                        d.off = off + n
                        h = d.hist
                        h.append((off, data))
                        d.hist_len += n
                        if d.hist_len > _HISTORY_HIGH:
                            _trim_history(d)
                        sink = d.sink
                        if d.gap_pending:
                            d.gap_pending = False
                            out.append(StreamData(d, data, pkt, True))
                        elif sink is not None and len(sink) + n <= d.sink_max:
                            # (no event: the server's bytes of a response
                            # waiting for the client cost one append each)
                            sink += data
                            d.sink_pkt = pkt
                            d.app_mem += n
                            self.app_memory += n
                        else:
                            out.append(StreamData(d, data, pkt, False))
                        d.delivered += n
                        self.c_delivered += n
                    else:
                        self._accept(d, data, pkt, out)
                if fin:
                    d.fin_abs = d.off
                    self._fin(d, out)
                return
            self._data(d, pkt, off + rel, data, fin, out)
        elif not rel and not d.q and d.fin_abs is None:
            d.off = off + n  # state only, in order
            if fin:
                d.fin_abs = d.off
                self._fin(d, out)
        else:
            self._track(d, off + rel, n, fin, out)

    def _handshake(self, d, s, pkt, tsval, out) -> bool:
        """A non-SYN ACK segment before ESTABLISHED: does it establish?"""
        o = d.peer
        if s.state == SYN_SENT:
            # With midstream pickup on, a handshake seen from the client's
            # side alone is accepted too: the sensor would take the same
            # segments without the SYN, and capture loss of a SYN-ACK must not
            # blind it to the whole connection.
            cfg = self.config
            if d is not s.client or not (cfg.async_oneside or cfg.midstream):
                self.c_handshake_ignored += 1
                return False
            seq = pkt.seq
            at = (seq - d.base) & M32
            if d.syn_data is not None:
                if at == len(d.syn_data):
                    data, d.syn_data = d.syn_data, None
                    self._accept_or_track(d, data, d.syn_pkt, out)
                elif at == 0:
                    d.syn_data = None
                    self.c_syn_data_dropped += 1
            if at != d.off:
                self.c_handshake_ignored += 1
                return False
            o.base = pkt.ack
            s.oneside = True
            s.win = False
            s.ts_ok = d.syn_ts is not None and tsval is not None
            d.ts_recent = d.syn_ts or 0
            self._set_state(s, CLOSING if d.rst or o.rst else ESTABLISHED)
            return True
        # SYN_RECV: both SYNs seen (or the SYN-ACK picked up)
        if not (d is s.client or s.split or self.config.async_oneside or s.midstream):
            self.c_handshake_ignored += 1
            return False
        ack = pkt.ack
        if o.isn is not None:
            ok = ((ack - o.base) & M32) <= o.off
        else:
            ok = ack == o.base
            if not ok and s.midstream and d is not s.client and not o.off and not o.q \
                    and ((ack - o.base) & M32) < HALF:
                # Picked up at the SYN-ACK (midstream on), and the server
                # acknowledges client bytes the capture does not hold (with
                # the client's ACK): as a midstream pickup does, the client's
                # stream starts where the server's ACK says, and the server's
                # side is inspected (Suricata alerts on
                # stream-async-6063-srv-03; KNOWN.md finding 3).
                o.base = ack
                ok = True
        if not ok:
            self.c_handshake_ignored += 1
            return False
        if d is not s.client and not s.split:
            s.oneside = True
        # a RST one host took during the handshake: half gone, as after a FIN
        self._set_state(s, CLOSING if d.rst or o.rst else ESTABLISHED)
        return True

    def _bad_tsecr(self, d, s, pkt, opts, out) -> bool:
        """An ACK-bearing server segment in SYN_SENT whose timestamp echo
        the client never sent: dropped (True).

        Linux ``tcp_rcv_synsent_state_process``: with timestamps on, a
        non-zero TSecr outside [the SYN's TSval, now] is rejected before
        the RST or SYN-ACK is looked at (PAWSACTIVEREJECTED); Suricata
        raises ``pkt_invalid_timestamp`` for it (suricata-verify bug 3286:
        a forged RST+ACK and FIN+ACK with TSecr 100 answering the SYN).
        "Now" is unknown here, so any echo not before the SYN's TSval (by
        serial arithmetic) passes. A timestamp on an answer to a SYN that
        offered none is invalid too (RFC 7323 3.2: only sent once both
        SYNs carried one); Suricata flags it, and the Windows capture of
        bug 3286 shows the client ignored such a RST (it went on with the
        real handshake)."""
        tsecr = _tsecr(opts)
        if tsecr is None:
            return False
        syn_ts = d.peer.syn_ts
        if syn_ts is not None and (not tsecr or ((tsecr - syn_ts) & M32) < HALF):
            return False
        self.c_paws += 1
        self._notice(d, _K.STREAM_PAWS_FAILED,
                     "TCP timestamp on an answer to the SYN that does not echo it, "
                     "segment dropped",
                     pkt.ts, out)
        return True

    def _syn(self, d, s, pkt, info, out):
        o = d.peer
        seq = pkt.seq
        flags = pkt.flags
        state = s.state
        if state == SYN_SENT:
            if d is s.client:
                if seq != d.isn:
                    s.syns += 1
                    if s.syns > MAX_SYN_QUEUED:
                        self._notice(d, _K.STREAM_SYN_FLOOD_3WHS,
                                     f"more than {MAX_SYN_QUEUED} SYNs with new sequence numbers "
                                     "before the handshake", pkt.ts, out)
                    self._init_syn(d, pkt, info)  # a new attempt
                    d.rst = o.rst = False
                elif d.syn_data is None and pkt.payload:
                    d.syn_data, d.syn_pkt = pkt.payload, pkt
                return
            if flags & TH_ACK:
                c = o
                got = (pkt.ack - c.base) & M32
                if got > len(c.syn_data or b""):
                    self.c_handshake_ignored += 1  # the client answers RST
                    return
            self._init_syn(d, pkt, info)
            s.wscale_ok = o.wscale >= 0 and d.wscale >= 0
            if s.wscale_ok:
                d.wshift, o.wshift = d.wscale, o.wscale
            s.ts_ok = o.syn_ts is not None and d.syn_ts is not None
            if s.ts_ok:
                o.ts_recent = o.syn_ts
                d.ts_recent = d.syn_ts
            self._set_state(s, SYN_RECV)
            if flags & TH_ACK:
                self._syn_window(d, pkt)
                c = o
                if c.syn_data is not None:
                    data, c.syn_data = c.syn_data, None
                    if got:
                        self._accept_or_track(c, data[:got], c.syn_pkt, out)
                    if got < len(data):
                        self.c_syn_data_dropped += 1
            if d.syn_data is not None:
                data, d.syn_data = d.syn_data, None
                if flags & TH_ACK and o.tfo:
                    self._accept_or_track(d, data, pkt, out)
                else:
                    self.c_syn_data_dropped += 1
            return
        if d.isn is not None and seq == d.isn:
            # a retransmitted SYN or SYN-ACK, or the split handshake's SYN-ACK
            if flags & TH_ACK and state == SYN_RECV:
                if d is s.client:
                    s.split = True
                self._syn_window(d, pkt)
            return
        if d.isn is None and ((seq + 1) & M32) == d.base:
            # a SYN we had only inferred (from the peer's ACK) shows up late
            d.isn = seq
            d.wscale, d.syn_ts = info[0], info[1]
            return
        # a SYN with a new ISN on a synchronised connection
        pol = d.pol
        ts = pkt.ts
        if state == SYN_RECV and d is s.client and pol.linux and self._embryonic_reset(d, s, pkt,
                                                                                      info):
            self.c_syn_resets += 1
            self._notice(d, _K.STREAM_SYN_IN_ESTABLISHED,
                         "TCP SYN in the window of a half-open connection: the server drops "
                         "the connection (tcp_check_req)", ts, out)
            self._reset(d, s, out)
            if s.state == SYN_RECV:
                self._set_state(s, CLOSING)  # its ACK and data reach no socket
            return
        if pol.rfc5961:
            self.c_syn_ignored += 1
            self._notice(d, _K.STREAM_SYN_IN_ESTABLISHED,
                         "TCP SYN on an established connection, ignored (RFC 5961)", ts, out)
            return
        rel = ((seq - d.base - d.off + HALF) & M32) - HALF
        if 0 <= rel < self._window(d):
            self.c_syn_resets += 1
            self._notice(d, _K.STREAM_SYN_IN_ESTABLISHED,
                         "TCP SYN in window on an established connection, reset (RFC 793)",
                         ts, out)
            self._reset(d, s, out)
            return
        self.c_syn_ignored += 1
        self._notice(d, _K.STREAM_SYN_IN_ESTABLISHED,
                     "TCP SYN outside the window on an established connection, ignored",
                     ts, out)

    def _embryonic_reset(self, d, s, pkt, info) -> bool:
        """Does this client SYN with a new ISN end the server's half-open
        connection? The server holds a request socket until the handshake's
        ACK, and tcp_check_req drops it for a SYN that passes its checks: an
        ACK, if any, of exactly the SYN-ACK; PAWS against the SYN's TSval;
        the sequence inside the SYN-ACK's window (tcp_in_window). Outside,
        the SYN is only answered (live cases tcp_hs_second_syn_*)."""
        o = d.peer
        if pkt.flags & TH_ACK and (o.isn is None or (pkt.ack - o.isn - 1) & M32):
            return False  # the listener answers a wrong ACK with a RST
        tsval = info[1]
        if s.ts_ok and tsval is not None and _paws_old(d.ts_recent, tsval):
            return False
        rel = ((pkt.seq - d.base - d.off + HALF) & M32) - HALF
        return rel == 0 or (rel + 1 + len(pkt.payload) > 0 and rel < self._window(d))

    def _syn_window(self, d, pkt):
        """The window on a SYN-ACK (never scaled) opens the peer's data."""
        if not pkt.flags & TH_ACK:
            return
        o = d.peer
        apos = o.off + (((pkt.ack - o.base - o.off + HALF) & M32) - HALF)
        e = apos + pkt.window
        if apos > o.off:
            apos = o.off  # rcv_wup is never past rcv_nxt (see _segment)
        if o.wup is None or apos > o.wup:
            o.wup = apos
        if o.edge is None or e > o.edge:
            o.edge = e

    def _window(self, d) -> int:
        """The receive window for d's data, relative to rcv_nxt."""
        if d.edge is None or not d.session.win:
            return UNKNOWN_WINDOW
        return d.edge - d.off

    def _rst(self, d, s, pkt, out):
        o = d.peer
        if s.state == SYN_SENT:
            if d is s.server:
                # an answer to the SYN: valid if it acknowledges it
                valid = bool(pkt.flags & TH_ACK) and \
                    ((pkt.ack - o.base) & M32) <= len(o.syn_data or b"")
            else:
                valid = pkt.seq == d.base or pkt.seq == d.isn
        else:
            rel = ((pkt.seq - d.base - d.off + HALF) & M32) - HALF
            if d.pol.rfc5961:
                valid = rel == 0 or (rel == -1 and d.fin_done)
            else:
                wnd = self._window(d)
                valid = 0 <= rel < max(wnd, 1) or (rel == -1 and d.fin_done)
        if not valid:
            self.c_rst_ignored += 1
            self._notice(d, _K.STREAM_RST_OUT_OF_WINDOW,
                         "TCP RST not at the expected sequence number, ignored", pkt.ts, out)
            return
        self.c_rst_resets += 1
        self._reset(d, s, out)

    def _reset(self, d, s, out):
        """d's receiver took a RST from d's sender (or, RFC 793, an in-window
        SYN): that host drops its socket and what it had not read.

        Only that host: a RST travels to one host, and the other may never
        have sent it. A RST forged "from the server" reaches the client
        alone; the server keeps its socket, its queue, and reads on, so the
        client's stream goes on here too, stream offset and match state kept
        (a new midstream session would miss a pattern across the RST). Once
        both hosts took a RST the session is closed.

        Data that still comes after a RST, in either direction, is delivered
        and counted (``data_after_rst``), with a notice. Trade-off: the
        sensor cannot tell a forged RST from a real one. A host that really
        sent a RST has no socket and sends no more; if its RST was real, what
        its peer still sends is answered with a RST and never read, and
        inspecting it can only cost a false alert. If the RST was forged (to
        the attacker's own host), the data is read, and skipping it would
        miss the attack. The same holds for the host that took the RST: an
        attacker's client need not honour a RST it forged to itself, so the
        server's answers stay inspected too.
        """
        self.c_discarded += _queued_bytes(d)
        self._release(d)
        if d.syn_data is not None:
            self.c_discarded += len(d.syn_data)
            d.syn_data = None
        d.rst = True
        if d.peer.rst:
            self._close(s, out)
        elif s.state == ESTABLISHED:
            self._set_state(s, CLOSING)  # one side gone: off the fast path

    def _after_rst(self, d, pkt, out):
        self.c_data_after_rst += 1
        if d.rst and not d.session.noticed & _KIND_BIT[_K.STREAM_SUSPECTED_RST_INJECT]:
            # The RST's own sender goes on sending new data: a host that
            # really reset has no socket left, so the RST was a decoy
            # (suricata-verify security-4710: RST with an MD5 / TCP-AO
            # option the server drops). Once per session, on the first such
            # segment, as Suricata's suspected_rst_inject.
            self._notice(d, _K.STREAM_SUSPECTED_RST_INJECT,
                         "TCP data from the sender of a RST: the RST was probably injected",
                         pkt.ts, out)
        if d.rst and d.pol.linux and d is d.session.client:
            msg = "TCP data after a RST the server took: not read there, not inspected"
        else:
            side = "the receiver" if d.rst else "the sender"
            msg = f"TCP data after a RST to {side} (forged?), still inspected"
        self._notice(d, _K_DATA_AFTER_RST, msg, pkt.ts, out)

    # ---------------------------------------------------------------- data

    def _accept(self, d, data, pkt, out):
        """Deliver in-order ``data`` at d.off to d's receiving application."""
        start = d.off
        n = len(data)
        d.off = start + n
        d.hist.append((start, data))
        d.hist_len += n
        if d.hist_len > _HISTORY_HIGH:
            _trim_history(d)
        u = d.urg_abs
        if u is not None and u < start + n:
            if u >= start:
                i = u - start
                data = data[:i] + data[i + 1:]
                self.c_urgent += 1
            d.urg_abs = None
            if not data:
                return
        room = d.depth - d.delivered
        if len(data) >= room:
            data = data[:room]
            out.append(StreamData(d, data, pkt, d.gap_pending))
            d.gap_pending = False
            d.delivered += room
            self.c_delivered += room
            self._bypass(d, out)
            return
        out.append(StreamData(d, data, pkt, d.gap_pending))
        d.gap_pending = False
        d.delivered += len(data)
        self.c_delivered += len(data)

    def _accept_or_track(self, d, data, pkt, out):
        if d.buffer:
            self._accept(d, data, pkt, out)
        else:
            d.off += len(data)

    def _bypass(self, d, out):
        """Depth reached: keep tracking sequence space, stop keeping bytes."""
        d.depth_reached = True
        d.buffer = False
        self.c_depth += 1
        out.append(StreamBypass(d))
        self.memory -= d.qbytes
        d.qbytes = 0
        ranges = []
        for it in d.q:
            if ranges and it[0] <= ranges[-1][1]:
                if it[1] > ranges[-1][1]:
                    ranges[-1][1] = it[1]
            else:
                ranges.append([it[0], it[1], None, None])
        d.q[:] = ranges
        d.hist = []
        d.hist_len = 0

    def _fin(self, d, out):
        """The receiver reads d's FIN once rcv_nxt reaches it."""
        fa = d.fin_abs
        if fa is None or d.fin_done or d.off < fa:
            return
        if d.off > fa:
            # passed over, never read: its segment was dropped under data
            # reaching past it (tcp_ofo_queue), the FIN with it
            d.fin_abs = None
            self.c_fin_overtaken += 1
            return
        d.off = fa + 1
        d.fin_done = True
        if d.q:
            dropped = sum(it[1] - it[0] for it in d.q)
            self.c_after_close += len(d.q)
            self.c_discarded += dropped if d.buffer else 0
            self._release(d)
        s = d.session
        if d.peer.fin_done:
            self._set_state(s, CLOSED)
        elif s.state == ESTABLISHED or s.state == SYN_RECV:
            self._set_state(s, CLOSING)

    def _check_retrans(self, d, start, data, ts, out):
        """Compare bytes sent again with what was delivered (as far as kept)."""
        self.c_overlaps += 1
        end = start + len(data)
        for hs, hd in d.hist:
            lo = max(start, hs)
            hi = min(end, hs + len(hd))
            if lo < hi and data[lo - start:hi - start] != hd[lo - hs:hi - hs]:
                self._mismatch(d, ts, out)
                return

    def _rewrite_unacked(self, d, start, end, data, pkt, out):
        """Suricata's policies (``_ofo_policy``) for the bytes of segment
        [start, end) that overlap read ones the receiver has not ACKed
        (``data``: those, from ``start``): pairwise with each read chunk, as
        with queued ones; the winners go to the history and to detection."""
        code = d.pol.code
        lo = max(start, d.wup if d.wup is not None else 0)
        hi = start + len(data)
        h = d.hist
        for i in range(len(h) - 1, -1, -1):  # newest first: the un-ACKed end
            hs, hd = h[i]
            he = hs + len(hd)
            if he <= lo:
                break
            a, b = max(lo, hs), min(hi, he)
            if a >= b:
                continue
            new = data[a - start:b - start]
            if new == hd[a - hs:b - hs] or not use_new_data(code, start, end, hs, he):
                continue
            h[i] = (hs, hd[:a - hs] + new + hd[b - hs:])
            out.append(StreamRewrite(d, a, new, pkt))

    def _mismatch(self, d, ts, out):
        self.c_mismatch += 1
        self._notice(d, _K.STREAM_OVERLAP_MISMATCH,
                     "TCP segment overlaps held data with different bytes", ts, out)

    def _data(self, d, pkt, start, data, fin, out):
        """Buffered data that is not the simple in-order case."""
        if d.pol.linux:
            self._data_linux(d, pkt, start, data, fin, out)
            return
        n = len(data)
        end = start + n
        cut = self._fin_seen(d, start, end, fin)
        if cut < end:
            self.c_after_close += 1
            data = data[:max(cut - start, 0)]
            end = start + len(data)
        off = d.off
        if start < off:
            self.c_retrans += 1
            if d.hist:
                self._check_retrans(d, start, data[:off - start], pkt.ts, out)
                self._rewrite_unacked(d, start, end, data[:off - start], pkt, out)
            if end <= off:
                self._fin(d, out)
                return
            data = data[off - start:]
            start = off
        if data:
            self._ofo_policy(d, start, data, pkt, out)
            if d.q and d.q[0][0] <= d.off:
                self._drain(d, pkt, out)
            if d.qbytes >= BIG_QUEUE:
                self._big[d] = None
            if d.qbytes > self.queue_limit or self.memory > self.memcap:
                self._limit(d, pkt.ts, out)
        self._fin(d, out)

    def _data_linux(self, d, pkt, start, data, fin, out):
        """linux-current: ``tcp_data_queue``. A FIN takes a sequence number
        in its segment as in the kernel (an out-of-order FIN stays in its
        queued segment, whose kernel end ``it[4]`` counts it), so it is lost
        or kept with it and read when the segment is."""
        n = len(data)
        end = start + n
        kend = end + 1 if fin else end
        off = d.off
        if kend <= off:  # wholly old: a duplicate, its FIN too
            self.c_retrans += 1
            if n and d.hist:
                self._check_retrans(d, start, data, pkt.ts, out)
            return
        if start <= off:  # in order (queue_and_out): it wins over queued data
            if start < off:
                self.c_retrans += 1
                if d.hist:
                    self._check_retrans(d, start, data[:off - start], pkt.ts, out)
                data = data[off - start:]
                start = off
            if data:
                if d.q:
                    self._compare_queue(d, start, data, pkt.ts, out)
                self._accept(d, data, pkt, out)
            if fin:
                d.fin_abs = d.off  # read now; tcp_fin purges the queue
                self._fin(d, out)
                return
            if d.q and d.q[0][0] <= d.off:
                self._drain(d, pkt, out)
        else:
            self._ofo_linux(d, start, data, pkt, out, fin)
        if d.qbytes >= BIG_QUEUE:
            self._big[d] = None  # a candidate for the memcap (_limit)
        if d.qbytes > self.queue_limit or self.memory > self.memcap:
            self._limit(d, pkt.ts, out)

    def _fin_seen(self, d, start, end, fin) -> int:
        """Book segment [start, end) (with a FIN if ``fin``) against d's FIN;
        returns where its bytes must end (before ``end``: past the FIN).
        (A buffered linux-current direction keeps its FINs in the queued
        segments instead, ``_data_linux``; this serves the other policies
        and the state-only directions.)

        A FIN on a wholly old segment is a duplicate's, dropped with it
        (``tcp_sequence``); in order, it is read at once. Other stacks: the
        first FIN position wins and nothing after it is read.

        linux-current keeps an out-of-order FIN in its segment, in the
        out-of-order queue, seq space [fin_start, fin_abs + 1); it is lost
        when that segment is: under in-order data reaching past it
        (``tcp_ofo_queue`` drops a queued segment whose end is not after
        rcv_nxt), replaced by a segment with the same start that ends after
        it, or removed by ``merge_right`` under one starting before it that
        covers it; a FIN segment wholly inside queued data is dropped on
        arrival. Bytes queued past a pending FIN stay (the FIN may yet be
        lost) and are discarded when it is read (``tcp_fin``). Else the
        attacker sends "GET /", a FIN behind a hole, then "cgi-bin/phf ..."
        in order over it: Linux reads it all, a first-FIN-wins sensor stops
        at the FIN. Of several pending FINs the lowest is kept (a lost one
        can expose another: then the sensor reads more than the server,
        which can only cost a false alert).
        """
        off = d.off
        fa = d.fin_abs
        if not d.pol.linux:
            if fin and fa is None and end >= off:
                d.fin_abs = fa = end
                d.fin_start = start
                self._cut_queue(d, end)
            return end if fa is None or end <= fa else fa
        if fa is not None:
            fs = d.fin_start
            if end > fa and (start <= off or start < fs or (start == fs and end > fa + 1)):
                d.fin_abs = fa = None
                self.c_fin_overtaken += 1
        if fin and end >= off:
            if start <= off:
                d.fin_abs = end  # in order: read now, and the queue purged
                d.fin_start = start
                self._cut_queue(d, end)
            elif (fa is None or end < fa) and not self._holds(d, start, end):
                d.fin_abs = end
                d.fin_start = start
        return end

    @staticmethod
    def _holds(d, start, end) -> bool:
        """Does a queued item hold all of seq space [start, end + 1)?"""
        for it in d.q:
            if it[0] > start:
                break
            if it[1] > end:
                return True
        return False

    def _cut_queue(self, d, fa):
        """Nothing after the FIN is read: drop queued bytes past it."""
        q = d.q
        while q and q[-1][1] > fa:
            it = q[-1]
            if it[0] >= fa:
                q.pop()
                self._ofo_erase(d, it)
                self._unqueue(d, it)
                self.c_after_close += 1
            else:
                keep = fa - it[0]
                if it[2] is not None:
                    it[2] = [self._bytes(it)[:keep]]
                self._uncharge(d, it, it[1] - fa)
                it[1] = fa
                self.c_after_close += 1

    def _uncharge(self, d, it, n):
        if it[2] is not None:
            d.qbytes -= n
            self.memory -= n

    def _unqueue(self, d, it):
        """Uncharge queued item ``it``, taken off the queue whole."""
        if it[2] is not None:
            n = it[1] - it[0] + self.item_cost
            d.qbytes -= n
            self.memory -= n

    @staticmethod
    def _bytes(it) -> bytes:
        chunks = it[2]
        if len(chunks) == 1:
            return chunks[0]
        data = b"".join(chunks)
        it[2] = [data]
        return data

    def _drain(self, d, pkt, out):
        """Read queued items that rcv_nxt has reached (``tcp_ofo_queue``)."""
        q = d.q
        fa = d.fin_abs
        while q:
            it = q[0]
            st = it[0]
            if st > d.off or (fa is not None and d.off >= fa):
                break  # a hole, or the FIN: read first, it discards the rest
            del q[0]
            self._ofo_erase(d, it)  # tcp_ofo_queue: rb_erase of rb_first
            en = it[1]
            self._unqueue(d, it)
            if fa is not None and en > fa:
                en = fa  # bytes queued past a pending FIN
            if len(it) > 4:
                # linux-current: tcp_ofo_queue drops a segment whose end
                # (its FIN included) is not past rcv_nxt, FIN and all;
                # else reads the rest and, with a FIN, the FIN
                if it[4] <= d.off:
                    continue
                if en > d.off:
                    data = self._bytes(it)
                    self._accept(d, data[d.off - st:en - st], pkt or it[3], out)
                if it[4] > en:
                    d.fin_abs = d.off
                    break  # tcp_fin: the rest of the queue is purged
                q = d.q
                continue
            if en <= d.off:
                continue
            if it[2] is None or not d.buffer:
                d.off = en
                continue
            data = self._bytes(it)
            self._accept(d, data[d.off - st:en - st], pkt or it[3], out)
            q = d.q  # _bypass may have replaced the items by ranges
        if not q:
            d.qmax = 0
        self._fin(d, out)

    def _compare_queue(self, d, start, data, ts, out):
        """linux-current in-order data over queued items: it wins; report differences."""
        end = start + len(data)
        hit = bad = False
        for it in d.q:
            if it[0] >= end:
                break
            hit = True
            lo, hi = it[0], min(end, it[1])
            if data[lo - start:hi - start] != self._bytes(it)[:hi - lo]:
                bad = True
        if hit:
            self.c_overlaps += 1
            if bad:
                self._mismatch(d, ts, out)

    def _overlapping(self, d, st, en):
        """Queued items overlapping [st, en): starts before en, ends after st.
        ``qmax`` (the longest item) bounds how far back one can reach."""
        q = d.q
        j = bisect_left(q, en, key=_START)
        lo = j
        reach = d.qmax
        while lo > 0 and q[lo - 1][0] + reach > st:
            lo -= 1
        return [q[k] for k in range(lo, j) if q[k][1] > st]

    def _ofo_linux(self, d, st, data, pkt, out, fin=False):
        """``tcp_data_queue_ofo``: insert, drop, replace, coalesce, merge right,
        deciding at the queued segments the kernel's rbtree descent meets,
        with each segment's end as the kernel's ``end_seq`` (its FIN counts:
        ``it[4]``)."""
        q = d.q
        n = len(data)
        en = st + n
        ke = en + 1 if fin else en
        if q and n:
            over = self._overlapping(d, st, en)
            if over:
                bad = False
                for it in over:
                    if self._differs(st, data, it):
                        bad = True
                        break
                self._report(d, True, bad, pkt.ts, out)
        self.memory += n
        d.qbytes += n
        if n > d.qmax:
            d.qmax = n
        item = [st, en, [data], pkt, ke]
        t = self._ofo_tree(d)
        node = Node(item)
        if not q:
            q.append(item)
            self._charge_item(d)
            t.link(node, None, False)
            return
        last = t.last()  # ooo_last_skb: always the rightmost segment
        lk = last.item[4]
        if st == lk and lk == last.item[1]:  # tcp_ooo_try_coalesce(ooo_last_skb)
            self._coalesce(d, last.item, data, ke)
            return
        if st >= lk:
            q.append(item)
            self._charge_item(d)
            t.link(node, last, True)
            return
        # the descent from the root, deciding at the first segment it touches
        cur, parent, right = t.root, None, False
        while cur is not None:
            parent = cur
            p = cur.item
            if st < p[0]:
                cur, right = cur.left, False
                continue
            pk = p[4]
            if st < pk:
                if ke <= pk:  # all the bits are present: drop
                    self.memory -= n
                    d.qbytes -= n
                    return
                if st == p[0]:  # same start, covers it: replace
                    self._unqueue(d, p)
                    self._charge_item(d)
                    t.replace(cur, node)
                    i = bisect_left(q, st, key=_START)
                    q[i] = item
                    self._merge_right(d, q, i, ke, t)
                    return
                # partial overlap: keep both, go on to the right
            elif st == pk and pk == p[1]:  # coalesce; nothing is merged right after it
                self._coalesce(d, p, data, ke)
                return
            cur, right = cur.right, True
        t.link(node, parent, right)
        i = bisect_left(q, st, key=_START)
        q.insert(i, item)
        self._charge_item(d)
        self._merge_right(d, q, i, ke, t)

    def _merge_right(self, d, q, i, ke, t):
        """Remove the queued segments after q[i] it wholly covers (kernel
        ends, ``ke`` its own); a partial overlap stays."""
        k = i + 1
        while k < len(q):
            nx = q[k]
            if ke <= nx[0] or ke < nx[4]:
                break
            del q[k]
            self._ofo_erase(d, nx)
            self._unqueue(d, nx)

    def _charge_item(self, d):
        d.qbytes += self.item_cost
        self.memory += self.item_cost

    def _ofo_tree(self, d) -> RBTree:
        """d's rbtree, made again from ``q`` if it no longer mirrors it (a
        queue rebuilt by a bypass, say: the shape is then our own)."""
        t = d.ofo
        q = d.q
        if t is not None and t.size == len(q) and (
                not q or (t.first().item is q[0] and t.last().item is q[-1])):
            return t
        t = d.ofo = RBTree()
        prev = None
        for it in q:
            node = Node(it)
            t.link(node, prev, prev is not None)
            prev = node
        return t

    @staticmethod
    def _ofo_erase(d, it):
        """Queued item ``it`` left d's queue: erase its node (found by its
        start) from d's tree, if there is one."""
        t = d.ofo
        if t is None:
            return
        cur = t.root
        st = it[0]
        while cur is not None:
            if cur.item is it:
                t.erase(cur)
                return
            cur = cur.left if st < cur.item[0] else cur.right
        d.ofo = None  # not there: the tree no longer mirrors the queue

    @staticmethod
    def _coalesce(d, it, data, ke):
        """``tcp_try_coalesce``: ``data`` (a segment ending at kernel end
        ``ke``) appended to queued item ``it``, which carries no FIN (never
        onto one: the segment after a queued FIN is queued apart and purged
        when the FIN is read, measured on 6.18.44-fc-v1045; the 6.18.44
        build of 2026-11-30, fc-v857, appended it and read it before the
        FIN)."""
        it[2].append(data)
        it[1] += len(data)
        it[4] = ke
        if it[1] - it[0] > d.qmax:
            d.qmax = it[1] - it[0]

    def _differs(self, st, data, it) -> bool:
        lo = max(st, it[0])
        hi = min(st + len(data), it[1])
        if lo >= hi:
            return False
        return data[lo - st:hi - st] != self._bytes(it)[lo - it[0]:hi - it[0]]

    def _report(self, d, hit, bad, ts, out):
        if hit:
            self.c_overlaps += 1
            if bad:
                self._mismatch(d, ts, out)

    def _ofo_policy(self, d, st, data, pkt, out):
        """Suricata's per-pair overlap rules; queued bytes kept consistent."""
        q = d.q
        n = len(data)
        en = st + n
        code = d.pol.code
        over = self._overlapping(d, st, en) if q else None
        dup = None
        if over:
            buf = None
            bad = False
            for it in over:
                a, b = max(st, it[0]), min(en, it[1])
                old = self._bytes(it)[a - it[0]:b - it[0]]
                if old != data[a - st:b - st]:
                    bad = True
                    if not use_new_data(code, st, en, it[0], it[1]):
                        if buf is None:
                            buf = bytearray(data)
                        buf[a - st:b - st] = old
                if it[0] == st and it[1] == en:
                    dup = it
            self._report(d, True, bad, pkt.ts, out)
            if buf is not None:
                data = bytes(buf)
            if bad:
                # the queue holds one value per byte: the winners
                for it in over:
                    a, b = max(st, it[0]), min(en, it[1])
                    cur = self._bytes(it)
                    if cur[a - it[0]:b - it[0]] != data[a - st:b - st]:
                        it[2] = [cur[:a - it[0]] + data[a - st:b - st] + cur[b - it[0]:]]
        if dup is not None:
            return
        k = bisect_left(q, (st, en), key=_START_END)
        q.insert(k, [st, en, [data], pkt])
        self.memory += n + self.item_cost
        d.qbytes += n + self.item_cost
        if n > d.qmax:
            d.qmax = n

    def _limit(self, d, ts, out):
        """Over the queue limit or the memcap: report, and make room.

        With no ACK ever seen from this receiver (a one-sided capture)
        nothing will tell us the hole was lost, so it is given up: the
        queued bytes are read after a gap and inspection goes on. Otherwise
        the farthest bytes are dropped, as ``tcp_prune_ofo_queue`` does:
        d's own past the queue limit; past the memcap, the largest queue's
        first (``_biggest``). The memcap is the sensor's, not the host's (each
        socket there has its own limit), so whichever bytes go are bytes
        the host keeps; taken from the biggest queue, they are a flood's,
        not those of a connection with a few queued bytes: connections
        filling the memcap would otherwise make an attack's payload, queued
        out of order after them, the bytes dropped on arrival.
        """
        over_q = d.qbytes > self.queue_limit
        if d.wup is None:
            self._give_up(d, out)
        if over_q:
            dropped = self._prune(d, d.qbytes - self.queue_limit)
            self.c_qoverflow += 1
            self.c_qoverflow_bytes += dropped
            self._notice(d, _K.STREAM_QUEUE_OVERFLOW, "Too much data in TCP receive queue",
                         ts, out)
        over = self.memory - self.memcap
        if over <= 0:
            return
        # the largest queue pays, with room to spare (MEMCAP_SLACK), so that
        # a flood's next segments do not each look for it again
        v = self._biggest(d)
        dropped = self._prune(v, over + min(MEMCAP_SLACK, v.qbytes // 4))
        self._memcap_dropped(v, dropped, ts, out)
        over = self.memory - self.memcap
        if over > 0 and v is not d:  # not enough there: d's own go too
            self._memcap_dropped(d, self._prune(d, over), ts, out)

    def _biggest(self, d):
        """The direction with the largest queue among those that held
        BIG_QUEUE bytes or more, if larger than d's; else d."""
        big = self._big
        best = d
        gone = []
        for x in big:
            if x.qbytes < BIG_QUEUE or x.session is None:
                gone.append(x)
            elif x.qbytes > best.qbytes:
                best = x
        for x in gone:
            del big[x]
        return best

    def _memcap_dropped(self, v, dropped, ts, out):
        self.c_memcap += 1
        self.c_memcap_bytes += dropped
        self._notice(v, _K.STREAM_MEMCAP, "TCP reassembly memory cap reached, data dropped",
                     v.session.last if v.session is not None else ts, out)

    def _prune(self, d, excess) -> int:
        """Drop d's farthest queued bytes until ``excess`` of its charge is
        freed (or nothing is left); returns the data bytes dropped."""
        q = d.q
        dropped = 0
        while excess > 0 and q:
            it = q[-1]
            size = it[1] - it[0]
            if it[2] is None:
                break  # (ranges of a state-only direction hold nothing)
            if size <= excess:
                q.pop()
                self._ofo_erase(d, it)  # tcp_prune_ofo_queue: from the last
                self._unqueue(d, it)
                excess -= size + self.item_cost
                dropped += size
                continue
            cut = excess
            it[2] = [self._bytes(it)[:size - cut]]
            it[1] -= cut
            if len(it) > 4:
                it[4] = it[1]  # (a FIN it carried is cut off with its tail)
            d.qbytes -= cut
            self.memory -= cut
            excess -= cut
            dropped += cut
        return dropped

    def _track(self, d, start, n, fin, out):
        """A state-only direction: follow received ranges, keep no bytes."""
        end = start + n
        cut = self._fin_seen(d, start, end, fin)
        if cut < end:
            self.c_after_close += 1
            end = cut
        off = d.off
        if start < off:
            self.c_retrans += 1
            start = off
        if end > start:
            q = d.q
            if start == off and not q:
                d.off = end
            else:
                i = bisect_left(q, start, key=_START)
                if i and q[i - 1][1] >= start:
                    i -= 1
                    start = q[i][0]
                k = i
                while k < len(q) and q[k][0] <= end:
                    if q[k][1] > end:
                        end = q[k][1]
                    k += 1
                q[i:k] = [[start, end, None, None]]
                if len(q) > MAX_RANGES:
                    q.pop()
                    self.c_qoverflow += 1
                    self._notice(d, _K.STREAM_QUEUE_OVERFLOW,
                                 "Too much data in TCP receive queue", d.session.last, out)
                self._drain(d, None, out)
                return
        self._fin(d, out)

    def _skip(self, o, upto, out):
        """The receiver acknowledged up to ``upto``: holes before it were lost
        by the capture, not the network. Skip them and read what follows."""
        while not o.fin_done:
            q = o.q
            fa = o.fin_abs
            if q and q[0][0] <= upto and (fa is None or q[0][0] <= fa):
                if q[0][0] > o.off:
                    self._gap(o, q[0][0] - o.off, out)
                self._drain(o, None, out)
                if o.fin_abs is not None and o.off >= o.fin_abs:
                    self._fin(o, out)
                    break
                continue
            if fa is not None and o.off <= fa < upto:
                if fa > o.off:
                    self._gap(o, fa - o.off, out)
                self._fin(o, out)
            break

    def _gap(self, d, hole, out):
        """Jump rcv_nxt over a hole; only an inspected direction loses bytes."""
        d.off += hole
        if d.urg_abs is not None and d.urg_abs < d.off:
            d.urg_abs = None
        if d.buffer:
            d.gap_pending = True
            self.c_gaps += 1
            self.c_gap_bytes += hole
            self._notice(d, _K.STREAM_GAP, f"TCP stream gap, {hole} bytes missing",
                         d.session.last, out)


def _held(items) -> int:
    """Bytes of remembered out-of-order data, (sequence number, bytes) pairs."""
    return sum(len(b) for _, b in items)


def _queued_bytes(d) -> int:
    """Data bytes in d's queue (its charge less the items' cost)."""
    return sum(it[1] - it[0] for it in d.q if it[2] is not None)


def _flow_notice(ts, kind, text, f, out) -> None:
    """A notice naming f's flow: f is a direction or a segment (both have
    src, dst, sport and dport)."""
    src, dst = format_addr(f.src), format_addr(f.dst)
    out.append(Notice(ts, kind, f"{text}, from {src}:{f.sport} to {dst}:{f.dport}",
                      "TCP", src, dst, f.sport, f.dport))


def _tail(d, size: int = RESUME_TAIL) -> bytes:
    """The last ``size`` bytes d's receiver read (for an inspected
    direction; empty otherwise)."""
    if not d.buffer or not d.hist:
        return b""
    parts, n = [], 0
    for _, data in reversed(d.hist):
        parts.append(data)
        n += len(data)
        if n >= size:
            break
    return b"".join(reversed(parts))[-size:]


def _trim_history(d):
    """Forget the oldest delivered chunks past HISTORY_BYTES (keep one)."""
    h = d.hist
    while len(h) > 1 and d.hist_len - len(h[0][1]) >= HISTORY_BYTES:
        d.hist_len -= len(h.pop(0)[1])


def _START(it):
    return it[0]


def _START_END(it):
    return (it[0], it[1])
