"""Defrag stage: the target policies, i.e. whose bytes win an overlap.

A host that receives two fragments covering the same bytes of a datagram
keeps one of them, and which one depends on its IP stack (Ptacek & Newsham
1998, section 3.3.1; Novak, "Target-Based Fragmentation Reassembly", 2005).
An IDS that picks differently sees another datagram than the host: the
evasion this stage exists to close. The names are Snort frag3's and
Suricata's (``pakemon.config.DEFRAG_POLICIES``) plus two of ours.

Overlap model (the classic policies). The datagram is held as a sorted list
of non-overlapping pieces, each the surviving part of one fragment with its
*current* start (after earlier trims), exactly as the BSD ``ip_reass`` and
pre-4.19 Linux ``ip_frag_queue`` queues are: a piece trimmed by a later
fragment starts where the trim left it. A new fragment N = [s, e) is
compared with each held piece P = [ps, pe) it overlaps and, on the
overlapping bytes, the new data wins when ``new_wins(policy, s, e, ps, pe)``:

=========  ==============================================  =================
policy     the new fragment's bytes win when               models
=========  ==============================================  =================
first      never (the first copy received stays)           Mac OS, HP-UX 11,
                                                           old Solaris
last       always (the last copy received wins)            Cisco IOS
bsd        it starts before the piece (s < ps)             4.4BSD ip_reass,
                                                           HP-UX 10, IRIX
bsd-right  it ends after the piece, or ends with it and    HP JetDirect
           starts at or before it
linux      it starts at or before the piece (s <= ps)      Linux < 4.19
windows    it starts before and ends after the piece       Windows
           (s < ps and e > pe)
solaris    it starts before the piece and ends at or       Solaris 9/10
           after it (s < ps and e >= pe)
=========  ==============================================  =================

Sources: Snort 2.9 ``spp_frag3.c`` / Snort 3 ``stream_ip/ip_defrag.cc``
``FragInsert`` (left and right overlap switch per ``FRAG_POLICY_*``) and
Suricata ``src/defrag.c`` ``DefragInsertFrag`` (7.x, after the 2024 BSD fix
"DefragBsdSubsequentOverlapsStartOfOriginal"). Where the two engines differ
we follow the OS algorithm they model: comparisons use the new fragment's
original start and end (Snort compares its already-slid start on the right
side; BSD compares ``ip_off`` as received), and bsd-right follows Snort
(Suricata never implemented it: its ``switch`` falls through to no trim).

The table is checked against Suricata's DefragSturgesNovak{Bsd,Linux,
Windows,Solaris,First,Last}{Ipv4,Ipv6}Test expected bytes in
``tests/unit/defrag/test_defrag_novak.py``.

``drop-overlap`` (RFC 5722 with errata 3089, as RFC 8200 hosts must): any
overlap discards the whole datagram, except a fragment that lies wholly in
bytes already held and repeats them exactly (a duplicate), which is ignored.
Unlike the kernel's notion of a duplicate (inside one "run", see below) this
one is decided on bytes, so it does not depend on arrival order.

``linux-current`` is today's Linux (4.19 to 6.x): ``inet_frag_queue_insert``
(net/ipv4/inet_fragment.c) keeps "runs" of fragments that arrived in
ascending contiguous order; a fragment wholly inside one run is a duplicate
(dropped, queue kept: IPFRAG_DUP) and any other overlap discards the
datagram (IPFRAG_OVERLAP -> inet_frag_kill). Its size and end rules are in
``tracker.py`` next to the code (ip_frag_queue, ip6_frag_queue,
ip_frag_reasm, ip6_frag_reasm, ipv6_frag_rcv).
"""

from __future__ import annotations

from ..config import DEFRAG_POLICIES

FIRST, LAST, BSD, BSD_RIGHT, LINUX, WINDOWS, SOLARIS, DROP_OVERLAP, LINUX_CURRENT = range(9)

CODES = {
    "first": FIRST, "last": LAST, "bsd": BSD, "bsd-right": BSD_RIGHT, "linux": LINUX,
    "windows": WINDOWS, "solaris": SOLARIS, "drop-overlap": DROP_OVERLAP,
    "linux-current": LINUX_CURRENT,
}
NAMES = {code: name for name, code in CODES.items()}
assert set(CODES) == set(DEFRAG_POLICIES)


def _first(s, e, ps, pe):
    return False


def _last(s, e, ps, pe):
    return True


def _bsd(s, e, ps, pe):
    # ip_reass trims the new fragment by the piece before it (ip_off <= s)
    # and trims every piece after it (ip_off > s).
    return s < ps


def _bsd_right(s, e, ps, pe):
    # frag3: a left-side piece keeps its bytes when it reaches the new
    # fragment's end; a right-side piece is trimmed only when the new
    # fragment covers it to its end.
    return e > pe or (e == pe and s <= ps)


def _linux(s, e, ps, pe):
    # ip_frag_queue before 4.19: "prev" is the last piece with offset < s
    # (it keeps its bytes), every later piece has its head eaten.
    return s <= ps


def _windows(s, e, ps, pe):
    return s < ps and e > pe


def _solaris(s, e, ps, pe):
    return s < ps and e >= pe


# Indexed by policy code; drop-overlap and linux-current never resolve an
# overlap (they discard or ignore), so they have no entry.
NEW_WINS = (_first, _last, _bsd, _bsd_right, _linux, _windows, _solaris)


# --------------------------------------------------------------- RFC 7112

# ipv6_ext_hdr(): the headers ipv6_skip_exthdr() walks.
_HOPOPTS, _ROUTING, _FRAGMENT, _AH, _NONXT, _DSTOPTS = 0, 43, 44, 51, 59, 60
_EXT = frozenset((_HOPOPTS, _ROUTING, _FRAGMENT, _AH, _NONXT, _DSTOPTS))
# Minimum upper-layer header ipv6_frag_thdr_truncated() demands: tcphdr,
# udphdr, icmp6hdr, else one byte.
_THDR_MIN = {6: 20, 17: 8, 58: 8}


def thdr_truncated(buf: bytes, start: int, end: int, nexthdr: int) -> bool:
    """``ipv6_frag_thdr_truncated`` (net/ipv6/reassembly.c, Linux 5.10+).

    ``buf[start:end]`` runs from the fragment header to the end of the
    IPv6 payload; ``nexthdr`` is the header type the walk assumes at
    ``start``. True when the walk reaches an upper-layer header at offset 0
    of the datagram and that header does not fit: RFC 8200 4.5 / RFC 7112
    say to drop such a first fragment.

    ``ipv6_frag_rcv`` passes the fixed header's next-header field, not 44:
    with a Hop-by-Hop or Destination Options header before the fragment
    header the kernel walks the fragment header as if it were that header
    (length from its reserved byte, offset not read), so non-first
    fragments are checked too. Pass ``raw[l3_off + 6]`` to model the host;
    pass 44 for the RFC's own rule.
    """
    frag_off = 0
    while nexthdr in _EXT:
        if nexthdr == _NONXT or start + 2 > end:
            return False  # ipv6_skip_exthdr() < 0: nothing to check
        if nexthdr == _FRAGMENT:
            if start + 4 > end:
                return False
            frag_off = (buf[start + 2] << 8) | buf[start + 3]
            if frag_off & 0xFFF8:
                break
            hdrlen = 8
        elif nexthdr == _AH:
            hdrlen = (buf[start + 1] + 2) << 2
        else:
            hdrlen = (buf[start + 1] + 1) << 3
        nexthdr = buf[start]
        start += hdrlen
    if frag_off & 0xFFF8:
        return False
    return start + _THDR_MIN.get(nexthdr, 1) > end


# ------------------------------------------------------------------- ECN

def ecn_bit(pkt) -> int:
    """``ip4_frag_ecn`` / ``ip6_frag_ecn``: 1 << the ECN codepoint."""
    raw, off = pkt.raw, pkt.l3_off
    if pkt.family == 4:
        return 1 << (raw[off + 1] & 3)
    return 1 << ((raw[off + 1] >> 4) & 3)


def ecn_invalid(bits: int) -> bool:
    """``ip_frag_ecn_table[bits] == 0xff``: Not-ECT mixed with ECT or CE
    (RFC 3168 5.3); the kernel drops the reassembled datagram."""
    return bool(bits & 1) and bool(bits & 0x0E)
