"""Receiver models for target-based TCP reassembly: which bytes win an overlap.

A policy names the TCP stack of the host that *receives* a direction's
data. It decides two things the reassembler cannot learn from the wire:

* how overlapping out-of-order segments are resolved (the Novak & Sturges
  2007 question), and
* a few acceptance rules where stacks differ: RFC 5961 RST/SYN handling,
  urgent data taken out of band, and the TCP MD5 option drop.

Overlap resolution, Suricata's names and semantics
(``src/stream-tcp-list.c``, ``DoHandleDataOverlap``; checked against its
unit tests in ``src/tests/stream-tcp-list.c``). A new segment is compared
with every queued segment it overlaps, one pair at a time; for the bytes of
that pair the *old* (queued) bytes win unless the rule below says *new*.
When several queued segments cover the same byte, any one that keeps the
old bytes keeps them.

=========== =======================================================
policy      new bytes win the overlap with a queued segment when ...
=========== =======================================================
first       never
last        always
bsd         the new segment starts before the queued one
hpux10      as bsd
irix        as bsd
macos       as bsd
windows     as bsd
windows2k3  as bsd
vista       never (as first)
linux       it starts before, or starts at the same sequence and
            ends after the queued one
old-linux   it starts before, or starts at the same sequence and
            ends at or after the queued one
solaris     it ends after the queued one (whatever its start), or
            ends at its end and starts at or before its start
hpux11      as solaris
=========== =======================================================

The same table judges a later copy over bytes already delivered in order
that the receiver has not ACKed (Suricata holds every segment until its
ACK): the stream as delivered keeps the first bytes, the ones the new copy
wins go to the Suricata engine (``StreamRewrite``).

``linux-current`` is not in that table: it is modelled on today's kernel
(``tcp_data_queue_ofo`` and ``tcp_ofo_queue``), see ``pakemon.stream.tcp``;
delivered bytes are never replaced there.

References: Novak & Sturges, "Target-Based TCP Stream Reassembly" (2007);
RFC 5961 (RST and SYN in window); RFC 6093 (urgent data); RFC 2385 (MD5).
"""

from __future__ import annotations

from ..config import STREAM_POLICIES

# Overlap models. LINUX_CURRENT is the kernel rbtree model, the rest are
# Suricata's OS_POLICY_* codes (by meaning, not by number).
FIRST, LAST, BSD, LINUX, OLD_LINUX, WINDOWS, WINDOWS2K3, VISTA, SOLARIS, \
    HPUX10, HPUX11, IRIX, MACOS, LINUX_CURRENT = range(14)

_CODES = {
    "first": FIRST, "last": LAST, "bsd": BSD, "linux": LINUX, "old-linux": OLD_LINUX,
    "windows": WINDOWS, "windows2k3": WINDOWS2K3, "vista": VISTA, "solaris": SOLARIS,
    "hpux10": HPUX10, "hpux11": HPUX11, "irix": IRIX, "macos": MACOS,
    "linux-current": LINUX_CURRENT,
}

# "starts before the queued segment" -> new wins (Suricata's second switch).
_NEW_IF_BEFORE = frozenset((BSD, HPUX10, IRIX, WINDOWS, WINDOWS2K3, OLD_LINUX, LINUX, MACOS))
# Solaris-like: a new segment reaching past the queued one's end wins.
_NEW_IF_BEYOND = frozenset((SOLARIS, HPUX11))
# Same start and same or greater end -> new wins.
_NEW_IF_SAME_COVERS = frozenset((OLD_LINUX, SOLARIS, HPUX11))


def use_new_data(code: int, start: int, end: int, qstart: int, qend: int) -> bool:
    """Do the new bytes [start, end) win their overlap with queued [qstart, qend)?

    Offsets are absolute stream offsets (no wraparound). Suricata's
    ``DoHandleDataOverlap`` for one (new, queued) pair.
    """
    if code == LAST:
        return True
    if code == FIRST or code == VISTA:
        return False
    if start == qstart:
        if end < qend:
            return False
        if end > qend and code == LINUX:
            return True
        return code in _NEW_IF_SAME_COVERS
    if start < qstart:
        if end >= qend and code in _NEW_IF_BEYOND:
            return True
        return code in _NEW_IF_BEFORE
    return end > qend and code in _NEW_IF_BEYOND


class Policy:
    """What the reassembler needs to know about one receiving stack.

    ``linux``     overlap model is the kernel's OFO queue, not Suricata's table
    ``rfc5961``   RST must hit rcv_nxt exactly; an in-window SYN is ignored
                  (challenge ACK). Otherwise RFC 793: any in-window RST
                  resets, an in-window SYN resets the connection.
    ``urg_oob``   the urgent byte is taken out of band (SO_OOBINLINE off)
    ``md5``       a segment carrying a TCP MD5 option is dropped (no key)
    """

    __slots__ = ("name", "code", "linux", "rfc5961", "urg_oob", "md5")

    def __init__(self, name: str):
        self.name = name
        self.code = _CODES[name]
        modern = self.code == LINUX_CURRENT
        self.linux = modern
        self.rfc5961 = modern
        self.urg_oob = modern
        self.md5 = modern

    def __repr__(self) -> str:
        return f"Policy({self.name!r})"


POLICIES = {name: Policy(name) for name in STREAM_POLICIES}
assert set(POLICIES) == set(_CODES), "STREAM_POLICIES and the overlap models disagree"
