"""Suricata decoder and stream event names -> the project's NoticeKinds.

Suricata rules test anomalies by name: ``decode-event:ipv6.frag_overlap;``
(usually on the ``pkthdr`` header) and ``stream-event:pkt_invalid_timestamp;``
(on ``tcp``). The project reports the same conditions as ``Notice`` events
of its own kinds (``pakemon.events.NoticeKind``), raised by decode (fatal:
``DecodeError``; non-fatal: ``Packet.anomalies`` turned into notices by
``pakemon.decode.notices.anomaly_notices``), defrag and stream. This module
is the one table between the two vocabularies:

``SURICATA_EVENTS: dict[str, frozenset[NoticeKind]]``
    event name as written after the keyword (lowercase, ``ipv4.trunc_pkt``
    for decode events, ``pkt_invalid_timestamp`` for stream events) -> the
    kinds that mean it. A Suricata name maps to several kinds where the
    project splits one condition (an overlap is reported as mismatch, same
    bytes, teardrop or discard); several names share a kind where the project
    does not tell them apart (``tcp.hlen_too_small`` and
    ``tcp.invalid_optlen`` are both a data offset the segment cannot have).
``EVENT_FAMILY``
    names that concern one IP version only (``ipv4.*``, ``ipv6.*``,
    ``icmpv4.*``, ``icmpv6.*``): a kind shared by both versions (defrag's)
    matches such a name only for a notice of that family.

Counting: Suricata sets an event once per packet and a ``pkthdr`` rule alerts
once per packet that carries it; the engine should therefore collect the
kinds of the notices one packet caused and alert once per rule whose name
``event_matches`` any of them (``names_for`` gives all names of a notice).

Names the project cannot detect are absent (``lookup`` returns None), so a
rule on them loads but never alerts; ``UNDETECTED`` lists the notable ones
with the reason, for rule-loading diagnostics. The names and their meanings
are Suricata's (src/decode-events.c, the stream events of stream-tcp.c and
rules/decoder-events.rules, stream-events.rules).
"""

from __future__ import annotations

from types import MappingProxyType

from pakemon.events import Notice, NoticeKind

__all__ = ["EVENT_FAMILY", "EVENT_MAP", "SURICATA_EVENTS", "UNDETECTED", "event_matches", "lookup",
           "names_for"]

_K = NoticeKind
_fs = frozenset

# Every defrag report of an overlap, whatever the bytes or the policy's outcome.
_FRAG_OVERLAP = _fs({_K.DEFRAG_OVERLAP_MISMATCH, _K.DEFRAG_OVERLAP_SAME, _K.DEFRAG_OVERLAP,
                     _K.DEFRAG_TEARDROP})

_DECODE = {
    # link layers
    "ethernet.pkt_too_small": {_K.DECODE_ETH_TRUNCATED},
    "vlan.header_too_small": {_K.DECODE_VLAN_TRUNCATED},
    "vlan.too_many_layers": {_K.DECODE_VLAN_TOO_MANY},
    "sll.pkt_too_small": {_K.DECODE_SLL_TRUNCATED},
    "null.pkt_too_small": {_K.DECODE_NULL_TRUNCATED},
    "decoder.invalid_linktype": {_K.CAPTURE_UNKNOWN_LINKTYPE},
    # IPv4
    "ipv4.pkt_too_small": {_K.DECODE_IPV4_TRUNCATED},
    "ipv4.hlen_too_small": {_K.DECODE_IPV4_BAD_IHL},
    "ipv4.iplen_smaller_than_hlen": {_K.DECODE_IPV4_BAD_LEN},
    "ipv4.trunc_pkt": {_K.DECODE_IPV4_TRUNC_PKT},
    "ipv4.opt_invalid": {_K.DECODE_IPV4_BAD_OPTIONS},
    "ipv4.opt_invalid_len": {_K.DECODE_IPV4_BAD_OPTIONS},
    "ipv4.opt_malformed": {_K.DECODE_IPV4_BAD_OPTIONS},
    "ipv4.wrong_ip_version": {_K.DECODE_IPV4_BAD_VERSION},
    "ipv4.frag_pkt_too_large": {_K.DEFRAG_TOO_LARGE},
    "ipv4.frag_overlap": _FRAG_OVERLAP,
    # IPv6
    "ipv6.pkt_too_small": {_K.DECODE_IPV6_TRUNCATED},
    "ipv6.trunc_pkt": {_K.DECODE_IPV6_BAD_LEN},
    "ipv6.trunc_exthdr": {_K.DECODE_IPV6_TRUNC_EXTHDR, _K.DECODE_IPV6_BAD_EXTHDR},
    "ipv6.exthdr_dupl_fh": {_K.DECODE_IPV6_DUPLICATE_FRAG_HDR},
    "ipv6.exthdr_useless_fh": {_K.DECODE_IPV6_ATOMIC_FRAGMENT},
    "ipv6.frag_invalid_length": {_K.DECODE_IPV6_FRAG_BAD_LENGTH},
    "ipv6.frag_pkt_too_large": {_K.DECODE_IPV6_FRAG_TOO_LARGE, _K.DEFRAG_TOO_LARGE},
    "ipv6.frag_overlap": _FRAG_OVERLAP,
    "ipv6.hopopts_unknown_opt": {_K.DECODE_IPV6_HOPOPTS_UNKNOWN_OPT},
    "ipv6.dstopts_unknown_opt": {_K.DECODE_IPV6_DSTOPTS_UNKNOWN_OPT},
    "ipv6.ipv4_in_ipv6_wrong_version": {_K.DECODE_IPV6_IPV4_IN_IPV6_WRONG_VERSION},
    "ipv6.ipv6_in_ipv6_wrong_version": {_K.DECODE_IPV6_IPV6_IN_IPV6_WRONG_VERSION},
    "ipv6.wrong_ip_version": {_K.DECODE_IPV6_BAD_VERSION},
    # TCP (Suricata: a data offset past the segment is hlen_too_small, one
    # under 20 bytes wraps its option length, invalid_optlen)
    "tcp.pkt_too_small": {_K.DECODE_TCP_TRUNCATED},
    "tcp.hlen_too_small": {_K.DECODE_TCP_BAD_HDR_LEN},
    "tcp.invalid_optlen": {_K.DECODE_TCP_BAD_HDR_LEN},
    "tcp.opt_invalid_len": {_K.DECODE_TCP_OPT_INVALID_LEN},
    "tcp.opt_duplicate": {_K.DECODE_TCP_OPT_DUPLICATE},
    # UDP
    "udp.pkt_too_small": {_K.DECODE_UDP_TRUNCATED},
    "udp.hlen_too_small": {_K.DECODE_UDP_TRUNCATED},
    "udp.hlen_invalid": {_K.DECODE_UDP_BAD_LEN},
    "udp.len_invalid": {_K.DECODE_UDP_BAD_LEN},
    # ICMP
    "icmpv4.pkt_too_small": {_K.DECODE_ICMP_TRUNCATED},
    "icmpv6.pkt_too_small": {_K.DECODE_ICMPV6_TRUNCATED},
}

_STREAM = {
    "pkt_invalid_timestamp": {_K.STREAM_PAWS_FAILED},
    "3whs_syn_flood": {_K.STREAM_SYN_FLOOD_3WHS},
    "suspected_rst_inject": {_K.STREAM_SUSPECTED_RST_INJECT},
    "est_packet_out_of_window": {_K.STREAM_OUT_OF_WINDOW},
    "est_invalid_rst": {_K.STREAM_RST_OUT_OF_WINDOW},
    "rst_invalid_ack": {_K.STREAM_RST_OUT_OF_WINDOW},
    "est_syn_resend_diff_seq": {_K.STREAM_SYN_IN_ESTABLISHED},
    "reassembly_seq_gap": {_K.STREAM_GAP},
    "reassembly_overlap_different_data": {_K.STREAM_OVERLAP_MISMATCH},
    "reassembly_depth_reached": {_K.STREAM_DEPTH_REACHED},
    "reassembly_insert_memcap": {_K.STREAM_MEMCAP},
    "reassembly_insert_limit": {_K.STREAM_QUEUE_OVERFLOW},
}

SURICATA_EVENTS: MappingProxyType = MappingProxyType(
    {name: _fs(kinds) for name, kinds in {**_DECODE, **_STREAM}.items()})

# The name pakemon.detect.sigengine imports.
EVENT_MAP = SURICATA_EVENTS

EVENT_FAMILY: MappingProxyType = MappingProxyType(
    {name: (4 if name.startswith(("ipv4.", "icmpv4.")) else 6)
     for name in _DECODE if name.startswith(("ipv4.", "ipv6.", "icmpv4.", "icmpv6."))})

UNDETECTED: MappingProxyType = MappingProxyType({
    "ipv6.fh_non_zero_res_field": "Fragment header reserved fields are not checked",
    "ipv6.hopopts_only_padding": "padding-only option headers are not reported",
    "ipv6.dstopts_only_padding": "padding-only option headers are not reported",
    "ipv6.rh_type_0": "routing header types are not checked",
    "ipv4.opt_unknown": "IPv4 option types are not checked, only their lengths",
    "ipv4.opt_pad_required": "IPv4 option padding is not checked",
    "3whs_synack_in_wrong_direction": "handshake anomalies beyond the SYN flood are not named",
})


def lookup(name: str) -> frozenset[NoticeKind] | None:
    """The kinds a ``decode-event``/``stream-event`` value means, None if undetected.

    Accepts the forms rules use: ``ipv4.trunc_pkt``, ``decoder.ipv4.trunc_pkt``,
    ``pkt_invalid_timestamp``, ``stream.pkt_invalid_timestamp``; case-insensitive.
    """
    n = name.strip().lower()
    for prefix in ("decoder.", "stream."):
        if n.startswith(prefix) and n[len(prefix):] in SURICATA_EVENTS:
            n = n[len(prefix):]
            break
    return SURICATA_EVENTS.get(n)


def _family(addr: str) -> int:
    return 6 if ":" in addr else 4 if addr else 0


def event_matches(name: str, notice: Notice) -> bool:
    """Does ``notice`` carry the Suricata event ``name``?"""
    kinds = lookup(name)
    if kinds is None or notice.kind not in kinds:
        return False
    fam = EVENT_FAMILY.get(name.strip().lower().removeprefix("decoder."))
    return fam is None or _family(notice.src_ip) in (0, fam)


def names_for(notice: Notice) -> frozenset[str]:
    """Every Suricata event name ``notice`` carries."""
    return frozenset(n for n, kinds in SURICATA_EVENTS.items()
                     if notice.kind in kinds and event_matches(n, notice))
