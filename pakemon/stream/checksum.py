"""When to trust checksums: ``--checksum auto|on|off``.

A target drops a segment or fragment whose checksum is wrong, so an IDS
that accepts it can be fed bytes the target never saw (insertion). But a
capture taken on a sending host with checksum offload, or on a veth, shows
that host's packets with only the pseudo-header sum in the checksum field:
the NIC (or nobody, on a veth) finished the job and the target got them.

``on`` drops every packet with a wrong checksum. ``off`` checks nothing.
``auto`` drops wrong checksums except the offload pattern (the field holds
exactly the pseudo-header sum), and for TCP only in a direction that has
not shown a right checksum: a sender whose first segment had a real
checksum computes them itself, so a later "offload-looking" segment from it
is forged. Suricata's auto mode instead stops checking altogether once a
share of the first packets fail, which an attacker can trigger on purpose by
sending many bad packets: then every insertion goes through.

IPv4 header checksums are always computed in software, so ``auto`` checks
them like ``on``.
"""

from __future__ import annotations

from ..decode.decoder import ipv4_header_checksum_ok, l4_checksum_ok, l4_checksum_partial


class ChecksumGate:
    def __init__(self, mode: str = "auto"):
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"checksum mode must be auto, on or off, not {mode!r}")
        self.mode = mode
        self.enabled = mode != "off"
        self.checked = 0
        self.bad = 0
        self.offloaded = 0  # accepted with the offload pattern (auto)

    @property
    def offload_detected(self) -> bool:
        return self.offloaded > 0

    def accept(self, ok: bool) -> bool:
        """Count one verification done by the caller; True to process it."""
        self.checked += 1
        if not ok:
            self.bad += 1
        return ok

    @staticmethod
    def proves_sender(pkt) -> bool:
        """Whether a right checksum shows its sender computes real ones.

        Not when it also equals the offload pattern: about one right
        checksum in 65,536 is the pseudo-header sum itself (a veth capture
        showed a client's pure ACK so), and taking it for proof made every
        later offload-pattern segment of that client a drop: its request
        went unseen."""
        return not l4_checksum_partial(pkt)

    def check_l4(self, pkt, strict: bool = False) -> int:
        """0: drop; 1: checksum right; 2: offload pattern accepted (auto, not strict).

        An IPv4 header checksum is checked first (a target drops the packet
        in ip_rcv before TCP sees it).
        """
        self.checked += 1
        if pkt.family == 4 and not ipv4_header_checksum_ok(pkt):
            self.bad += 1
            return 0
        if l4_checksum_ok(pkt):
            return 1
        if self.mode == "auto" and not strict and l4_checksum_partial(pkt):
            self.offloaded += 1
            return 2
        self.bad += 1
        return 0
