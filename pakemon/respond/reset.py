"""TCP resets for alerting connections (the paper's response unit).

Stage: respond. ``Resetter.reset(alert, d, ack)`` sends two RSTs for the
TCP connection of ``alert``, whose sending direction is ``d`` (a
``pakemon.stream.tcp.TcpDirection``, sender A -> receiver B):

* to B, from A: ``seq = d.rcv_nxt``, B's next expected sequence number for
  A's data;
* to A, from B: ``seq`` = A's next expected sequence number for B's data:
  the later of the peer direction's ``rcv_nxt`` and ``ack`` (the ACK number
  of the segment A just sent, when the caller has it: with an ingress-only
  sensor B's data is never seen, so the peer direction stays at its
  handshake value).

Both carry exactly the receiver's ``rcv_nxt``: RFC 5961 stacks (Linux) take
only such a RST; one merely in the window draws a challenge ACK, one before
``rcv_nxt`` is dropped. A's ``rcv_nxt`` is a guess (B may have sent more
since A's ACK: the sensor acts a little after the segment), so when A's
advertised window is known (``window``, already scaled) a third RST goes to
A in the middle of that window: if the exact one was stale, A answers this
one with a challenge ACK, which B's stack, whose socket the first RST has
already reset, answers with a RST at exactly A's ``rcv_nxt``.

Mode ``"stack"``: raw sockets (IPPROTO_RAW, headers included: the RST
must carry the peer's source address), one IPv4 and one IPv6, hand the
packets to this host's stack, which routes them: the RST for a local
address is delivered locally, the other goes out of the route's interface.
That is right when the sensor runs on the protected host (or its
namespace). A connection whose packets cannot be sent that way (IPv6 off in
this kernel, a link-local address, which needs an interface to be routed)
is counted: ``skipped`` when nothing could be built or no socket exists,
``errors`` when the kernel refused the send. Mode ``"iface"`` is not
implemented.
"""

from __future__ import annotations

import socket

from .packet import ipv4, ipv6, tcp

__all__ = ["Resetter", "TH_RST", "TH_ACK"]

M32 = 0xFFFFFFFF
HALF = 1 << 31
TH_RST = 0x04
TH_ACK = 0x10


def _later(a: int, b: int) -> int:
    """The later of two sequence numbers (modulo 2**32)."""
    return b if 0 < ((b - a) & M32) < HALF else a


def frame_ack(pkt, d) -> tuple[int, int] | None:
    """(ACK number, scaled window) of ``pkt`` (the alerting frame, decoded)
    if it is a segment d's sender sent with an ACK. None for anything else,
    an IP fragment included: the reset then goes without it (module doc)."""
    if (pkt is None or not pkt.l4 or pkt.proto != 6 or pkt.is_fragment
            or not pkt.flags & TH_ACK or pkt.src != d.src or pkt.dst != d.dst
            or pkt.sport != d.sport or pkt.dport != d.dport):
        return None
    return pkt.ack, pkt.window << d.wshift


class Resetter:
    """Sends the RST pair for TCP alerts; counts what it sent."""

    def __init__(self, mode: str = "stack", ifname: str | None = None) -> None:
        if mode != "stack":
            raise ValueError(f"reset mode {mode!r} is not supported (only 'stack')")
        self.mode = mode
        self.ifname = ifname
        self.sent = 0  # RST packets sent
        self.connections = 0  # connections reset (a pair each)
        self.skipped = 0  # TCP alerts whose connection could not be reset
        self.errors = 0  # sends the kernel refused
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        try:  # IPPROTO_RAW implies headers included for IPv6 (inet6_create)
            self._sock6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        except OSError:  # a kernel without IPv6: its connections are counted skipped
            self._sock6 = None

    def packets(self, d, ack: int | None = None, window: int = 0) -> list[tuple[str, bytes]]:
        """(destination, IP packet) for both ends of d's connection."""
        if len(d.src) == 4:
            a, b = socket.inet_ntoa(d.src), socket.inet_ntoa(d.dst)
            ip = ipv4
        else:
            a, b = socket.inet_ntop(socket.AF_INET6, d.src), socket.inet_ntop(socket.AF_INET6, d.dst)
            ip = ipv6
        seq_a = d.rcv_nxt  # B expects this from A
        o = d.peer
        seq_b = o.rcv_nxt if o is not None else None  # A expects this from B
        if ack is not None:
            seq_b = ack if seq_b is None else _later(seq_b, ack)
        out = [(b, ip(a, b, 6, tcp(a, b, d.sport, d.dport, seq_a, 0, TH_RST, window=0)))]
        if seq_b is not None:
            for seq in (seq_b, seq_b + window // 2) if window >= 2 else (seq_b,):
                out.append((a, ip(b, a, 6, tcp(b, a, d.dport, d.sport, seq, 0, TH_RST,
                                                 window=0))))
        return out

    def reset(self, d, seen: tuple[int, int] | None = None) -> bool:
        """Reset d's connection; ``seen``: ``frame_ack`` of d's segment. False: nothing sent."""
        pkts = self.packets(d, *seen) if d is not None and seen else \
            self.packets(d) if d is not None else []
        sock = self._sock if d is None or len(d.src) == 4 else self._sock6
        if not pkts or sock is None:
            self.skipped += 1
            return False
        ok = False
        for dst, pkt in pkts:
            try:
                sock.sendto(pkt, (dst, 0))
                self.sent += 1
                ok = True
            except OSError:
                self.errors += 1
        if ok:
            self.connections += 1
        return ok

    def close(self) -> None:
        self._sock.close()
        if self._sock6 is not None:
            self._sock6.close()
