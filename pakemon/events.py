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
    DECODE_IPV4_BAD_OPTIONS = ("anomaly", "IPv4 options malformed")
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
    DECODE_VLAN_TOO_MANY = ("anomaly", "more than 4 stacked 802.1Q/802.1ad tags")
    DECODE_NULL_TRUNCATED = ("anomaly", "BSD loopback (NULL/LOOP) header cut short")
    DECODE_IPV6_BAD_VERSION = ("anomaly", "IPv6 version field is not 6 where the link says IPv6")

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


@dataclass(frozen=True, slots=True)
class Alert:
    """A rule matched in one flow direction.

    ``dump`` is what the dump log shows: for TCP the reassembled stream data
    up to and including the match (at most the last 4 KiB), else the
    datagram payload. ``payload`` is the packet's own payload (EVE).
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
