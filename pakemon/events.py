"""Events that the pipeline stages return: alerts and notices.

Stages never write anything themselves; they return these frozen records and
the output edge (alert.log, dump.log, eve.json, later syslog and metrics)
renders them. Addresses are kept as text so every output agrees on them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class NoticeKind(enum.Enum):
    """Every condition the sensor reports that is not a rule match.

    Value: (EVE event_type, short doc). The member name is the counter label
    and the EVE ``anomaly.event`` name, STAGE_CONDITION style. Append only.
    """

    # capture
    CAPTURE_UNKNOWN_LINKTYPE = ("anomaly", "frame of a link type the decoder does not know")
    # decode: link layer
    DECODE_ETH_TRUNCATED = ("anomaly", "Ethernet frame shorter than its header")
    DECODE_VLAN_TRUNCATED = ("anomaly", "802.1Q/802.1ad tag cut short")
    DECODE_SLL_TRUNCATED = ("anomaly", "Linux cooked header cut short")
    # decode: IPv4
    DECODE_IPV4_TRUNCATED = ("anomaly", "IPv4 packet shorter than its header")
    DECODE_IPV4_BAD_VERSION = ("anomaly", "IP version field does not match the link's protocol")
    DECODE_IPV4_BAD_IHL = ("anomaly", "IPv4 header length under 20 bytes or past the packet")
    DECODE_IPV4_BAD_LEN = ("anomaly", "IPv4 total length impossible for the frame")
    DECODE_IPV4_BAD_OPTIONS = ("anomaly", "IPv4 options malformed: dropped as the target would")
    # decode: IPv6
    DECODE_IPV6_TRUNCATED = ("anomaly", "IPv6 packet shorter than its header")
    DECODE_IPV6_BAD_LEN = ("anomaly", "IPv6 payload length impossible for the frame")
    DECODE_IPV6_BAD_EXTHDR = ("anomaly", "IPv6 extension header malformed or cut short")
    # decode: transport
    DECODE_TCP_TRUNCATED = ("anomaly", "TCP segment shorter than its header")
    DECODE_TCP_BAD_HDR_LEN = ("anomaly", "TCP data offset under 5 words or past the segment")
    DECODE_TCP_BAD_OPTIONS = ("anomaly", "TCP options malformed")
    DECODE_UDP_TRUNCATED = ("anomaly", "UDP datagram shorter than its header")
    DECODE_UDP_BAD_LEN = ("anomaly", "UDP length field impossible for the datagram")
    DECODE_ICMP_TRUNCATED = ("anomaly", "ICMP message shorter than its header")
    DECODE_ICMPV6_TRUNCATED = ("anomaly", "ICMPv6 message shorter than its header")
    DECODE_VLAN_TOO_MANY = ("anomaly", "more than 4 stacked VLAN tags, or more than 8 tags "
                            "with priority tags: dropped as the target would")
    DECODE_NULL_TRUNCATED = ("anomaly", "BSD loopback (NULL/LOOP) header cut short")
    DECODE_IPV6_BAD_VERSION = ("anomaly", "IPv6 version field is not 6 where the link says IPv6")

    # defrag (IPv4 and IPv6)
    DEFRAG_OVERLAP_MISMATCH = ("anomaly", "overlapping fragment carries different bytes than those held")
    DEFRAG_OVERLAP = ("anomaly", "overlapping fragments: the target policy discards the datagram")
    DEFRAG_TOO_LARGE = ("anomaly", "reassembled datagram over 65,535 bytes (ping of death)")
    DEFRAG_TEARDROP = ("anomaly", "fragment lies inside an earlier one and ends before it (teardrop)")
    DEFRAG_TINY_FRAGMENT = ("anomaly", "first fragment too small to hold the transport header")
    DEFRAG_TOO_MANY_FRAGMENTS = ("anomaly", "more fragments for one datagram than the limit")
    DEFRAG_BAD_LENGTH = ("anomaly", "fragment length inconsistent with the datagram's end")
    DEFRAG_IPV6_INCOMPLETE_CHAIN = ("anomaly", "IPv6 first fragment without the whole header chain (RFC 7112)")
    DEFRAG_MEMCAP_EVICT = ("anomaly", "fragment memory cap reached: oldest incomplete datagram evicted")
    DEFRAG_HOST_MEMORY_FULL = ("anomaly", "the host's fragment memory is full (ipfrag_high_thresh): fragments dropped as the host drops them")
    DEFRAG_TIMEOUT = ("anomaly", "incomplete datagram timed out")
    # stream (TCP)
    STREAM_OVERLAP_MISMATCH = ("anomaly", "overlapping TCP segment carries different bytes than those held")
    STREAM_QUEUE_OVERFLOW = ("anomaly", "too much data in TCP receive queue")
    STREAM_MEMCAP = ("anomaly", "stream reassembly memory cap reached")
    STREAM_BAD_CHECKSUM = ("anomaly", "TCP or IPv4 header checksum wrong: segment ignored as the target would")
    STREAM_OUT_OF_WINDOW = ("anomaly", "TCP data outside the receive window: ignored")
    STREAM_RST_OUT_OF_WINDOW = ("anomaly", "RST not at the expected sequence number: ignored (RFC 5961)")
    STREAM_SYN_IN_ESTABLISHED = ("anomaly", "SYN on an established connection: ignored (RFC 5961)")
    STREAM_PAWS_FAILED = ("anomaly", "segment timestamp older than the last one seen (PAWS): dropped")
    STREAM_NO_ACK = ("anomaly", "data segment without ACK: dropped by the target")
    STREAM_MD5_UNEXPECTED = ("anomaly", "unexpected TCP MD5 signature option: dropped by the target")
    STREAM_AUTH_OPTIONS_INVALID = ("anomaly", "TCP options malformed, or MD5/TCP-AO option of a wrong length or given twice: dropped by the target")
    STREAM_GAP = ("anomaly", "sequence gap: stream data missing (capture loss)")
    STREAM_DEPTH_REACHED = ("anomaly", "stream depth reached: direction no longer inspected")
    STREAM_BAD_OPTIONS = ("anomaly", "malformed IP options: segment ignored as the target would")
    STREAM_DATA_AFTER_RST = ("anomaly", "data continues after a RST: inspected (the RST may be forged)")
    STREAM_EVICTED = ("anomaly", "TCP session evicted (session table or memory full): its match state is lost")
    STREAM_RESUMED_AFTER_EVICTION = ("anomaly", "an evicted TCP session resumes: only its last bytes before the eviction match with those after")
    # scan
    SCAN_DETECTED = ("scan", "one source probed many ports or hosts")
    # http (detect stage, HTTP service ports)
    HTTP_URI_ENCODING_ANOMALY = ("anomaly", "suspicious encoding in an HTTP request target")
    # decode: non-fatal anomalies (the packet is still decoded and inspected;
    # ``Packet.anomalies``), named after the Suricata decoder events they map
    # to in pakemon.detect.eventmap
    DECODE_IPV4_TRUNC_PKT = ("anomaly", "IPv4 total length larger than the packet")
    DECODE_IPV6_ATOMIC_FRAGMENT = ("anomaly", "IPv6 Fragment header with offset 0 and M clear (atomic fragment)")
    DECODE_IPV6_DUPLICATE_FRAG_HDR = ("anomaly", "more than one Fragment header in one IPv6 packet")
    DECODE_IPV6_FRAG_BAD_LENGTH = ("anomaly", "non-final IPv6 fragment not a multiple of 8 bytes")
    DECODE_IPV6_FRAG_TOO_LARGE = ("anomaly", "IPv6 fragment offset plus length past 65,535 bytes")
    DECODE_IPV6_TRUNC_EXTHDR = ("anomaly", "IPv6 header after the extension headers cut short")
    DECODE_IPV6_HOPOPTS_UNKNOWN_OPT = ("anomaly", "unknown option type in an IPv6 Hop-by-Hop Options header")
    DECODE_IPV6_DSTOPTS_UNKNOWN_OPT = ("anomaly", "unknown option type in an IPv6 Destination Options header")
    DECODE_IPV6_IPV4_IN_IPV6_WRONG_VERSION = ("anomaly", "IPv4-in-IPv6 payload whose version is not 4")
    DECODE_IPV6_IPV6_IN_IPV6_WRONG_VERSION = ("anomaly", "IPv6-in-IPv6 payload whose version is not 6")
    DECODE_TCP_OPT_INVALID_LEN = ("anomaly", "TCP option with an invalid length field")
    DECODE_TCP_OPT_DUPLICATE = ("anomaly", "TCP option present twice in one segment")
    # stream: Suricata stream events without an earlier notice
    STREAM_SYN_FLOOD_3WHS = ("anomaly", "too many SYNs with different ISNs before the handshake completed")
    STREAM_SUSPECTED_RST_INJECT = ("anomaly", "RST that does not fit the session: probably injected")
    # defrag: an overlap whose bytes agree with those held (Suricata's
    # frag_overlap fires on any overlap; DEFRAG_OVERLAP_MISMATCH on differing ones)
    DEFRAG_OVERLAP_SAME = ("anomaly", "overlapping fragment repeats bytes already held")
    # decode: more link layers and encapsulations
    DECODE_PPP_TRUNCATED = ("anomaly", "PPP header cut short")
    DECODE_CHDLC_TRUNCATED = ("anomaly", "Cisco HDLC header cut short")
    DECODE_NSH_TRUNCATED = ("anomaly", "NSH (Network Service Header) cut short or malformed")
    # decode: an IPv4 option the target refuses although it is well formed
    DECODE_IPV4_OPTION_REFUSED = ("anomaly", "IPv4 source route or CIPSO option: dropped as the "
                                  "target would")
    # decode: frames the target's stack discards for their link-layer destination
    DECODE_TCP_TO_LINK_GROUP = ("anomaly", "TCP segment sent to a link-layer broadcast or "
                                "multicast address: dropped as the target would")
    DECODE_FRAME_TO_OTHER_HOST = ("anomaly", "frame addressed to another host's link-layer "
                                  "address: dropped as the target would")
    DECODE_IPV6_EXTHDR_REFUSED = ("anomaly", "IPv6 extension header the target drops the "
                                  "packet for (an option to discard, a Hop-by-Hop header "
                                  "not first, segments left to route): dropped as the "
                                  "target would")
    # stream: a segment the target discards for its ACK number
    STREAM_ACK_UNSENT = ("anomaly", "TCP segment acknowledging data never sent: dropped as "
                         "the target would")
    STREAM_ACK_TOO_OLD = ("anomaly", "TCP segment whose ACK is older than the receiver's "
                          "window of acknowledged data (RFC 5961 5.2): dropped as the target "
                          "would")

    @property
    def event_type(self) -> str:
        return self.value[0]

    @property
    def doc(self) -> str:
        return self.value[1]


@dataclass(frozen=True, slots=True)
class Notice:
    """A counted condition; rendered as the paper's time line + message."""

    ts: float
    kind: NoticeKind
    message: str
    proto: str = ""  # "TCP", "UDP", "ICMP", "IP" or "" when not known
    src_ip: str = ""
    dst_ip: str = ""
    src_port: int | None = None
    dst_port: int | None = None


# bytes 0x80-0xff as the four characters \xNN
_EVE_TEXT_TABLE = {c: f"\\x{c:02x}" for c in range(0x80, 0x100)}


def eve_text(b: bytes) -> str:
    """A byte string as an EVE text field, the way Suricata's JSON writer
    turns bytes into a string (set_string_from_bytes): valid UTF-8 as it
    is, anything else byte for byte with each byte over 0x7f written as
    the four characters ``\\xNN`` (the rule's own bytes stay readable, and
    a name that is not UTF-8 cannot pass for one that is)."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("latin-1").translate(_EVE_TEXT_TABLE)


class PacketRef:
    """What EVE reads of the packet that raised an alert, apart from it:
    the packet itself points into its stream's state (``direction``), which
    an alert held by a caller would keep alive."""

    __slots__ = ("family", "vlan", "linktype", "raw", "l3_off", "ip_hdr_len", "ip_payload",
                 "is_fragment", "flow")

    def __init__(self, pkt):
        self.family = pkt.family
        self.vlan = pkt.vlan
        self.linktype = pkt.linktype
        self.raw = pkt.raw
        self.l3_off = pkt.l3_off
        self.ip_hdr_len = pkt.ip_hdr_len
        self.ip_payload = pkt.ip_payload
        self.is_fragment = pkt.is_fragment
        # the flow's counters as they are now (EVE's ``direction`` and
        # ``flow``): (start, to_server, packets to the server, to the
        # client, bytes to the server, to the client), or None
        d = pkt.direction
        s = d.session if d is not None else None
        if s is not None and s.client is not None:
            c, v = s.client, s.server
            self.flow = (s.start, d is c, c.packets, v.packets, c.nbytes, v.nbytes)
        elif pkt.flow is not None:
            f, to_server = pkt.flow  # (a datagram flow's sigengine.FlowState)
            self.flow = (f.start, to_server, f.pkts_ts, f.pkts_tc, f.bytes_ts, f.bytes_tc)
        else:
            self.flow = None

    def count(self, to_server: bool, n: int) -> None:
        """Count in ``flow`` a packet of ``n`` bytes the stream stage has
        not counted yet (the one an alert is raised at)."""
        f = self.flow
        if f is not None:
            start, ts, pts, ptc, bts, btc = f
            self.flow = ((start, ts, pts + 1, ptc, bts + n, btc) if to_server
                         else (start, ts, pts, ptc + 1, bts, btc + n))


@dataclass(frozen=True, slots=True)
class Alert:
    """A rule matched in one flow direction.

    ``dump`` is what the dump log shows: for TCP the reassembled stream data
    up to and including the match (at most the last 4 KiB), else the
    datagram payload. ``payload`` is the packet's own payload (EVE).
    ``pkt`` is what EVE reads of the packet that raised it (a PacketRef:
    ip_v, vlan, packet), made into fields only when written; ``extra``
    holds what the detect stages add (app_proto, tx_id, the HTTP
    transaction's metadata, stream) and the capture edge (pcap_cnt, pkt_src).
    """

    ts: float
    rule: object  # pakemon.detect.rules.Rule
    proto: str  # "TCP", "UDP", "ICMP", "IP"
    src_ip: str
    dst_ip: str
    src_port: int | None  # ICMP: None (type/code are in icmp_type/icmp_code)
    dst_port: int | None
    payload: bytes = b""
    dump: bytes = b""
    ip_proto: int = 0
    icmp_type: int | None = None
    icmp_code: int | None = None
    action: str = "allowed"
    extra: dict = field(default_factory=dict)
    pkt: object = field(default=None, compare=False, repr=False)
