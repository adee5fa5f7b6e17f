"""The decoded packet: what decode hands to defrag, stream and detect.

One plain object with __slots__ per frame, filled in place by the decoder:
the hot path allocates this and a few slices, nothing else. Addresses stay
raw bytes (4 or 16, network order); outputs format them only for alerts.
"""

from __future__ import annotations

# Link types (pcap LINKTYPE_* values) that the decoder accepts.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6, version nibble decides
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_PPP = 9  # PPP, optionally with the HDLC-like FF 03 address/control bytes
LINKTYPE_C_HDLC = 104  # Cisco HDLC: address, control, EtherType
DLT_RAW_BSD = 12  # some writers use the DLT value 12 for raw IP

# IP protocol numbers the pipeline cares about.
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

# TCP flags (RFC 793, 3168).
TH_FIN = 0x01
TH_SYN = 0x02
TH_RST = 0x04
TH_PUSH = 0x08
TH_ACK = 0x10
TH_URG = 0x20
TH_ECE = 0x40
TH_CWR = 0x80


class Packet:
    """A decoded frame.

    family      0 (not IP), 4 or 6
    src, dst    raw addresses, network order
    proto       transport protocol number (after IPv6 extension headers)
    ip_payload  bytes after the IP header(s), cut to the IP length
    is_fragment True when this is one fragment of a larger datagram: then
                frag_offset (bytes), more_frags and ip_id are set, and the
                transport fields are only decoded for the first fragment
                (frag_offset == 0) if its header fits; defrag re-decodes the
                reassembled datagram with ``decode_transport``.
    l4          True when the transport header below was decoded
    sport/dport TCP/UDP ports; for ICMP/ICMPv6 the type and code (the rule
                tree indexes ICMP service nodes by type/code the same way)
    payload     transport payload (TCP data, UDP data, ICMP body after the
                4-byte type/code/checksum header)
    raw, l3_off the frame and the IP header's offset in it, so a stage that
                needs the IP header bytes (checksums) reads them without a copy
    anomalies   NoticeKinds of the non-fatal decoder anomalies this packet
                carries (atomic IPv6 fragment, unknown destination option,
                bad TCP option length, ...), each at most once, in the order
                found; also set on ``DecodeError.pkt`` for those found before
                the fatal one. A tuple, empty for nearly every packet: the
                common path never touches it.
    """

    __slots__ = (
        "ts", "linktype", "vlan", "family", "src", "dst", "proto", "ttl",
        "ip_id", "is_fragment", "frag_offset", "more_frags", "ip_hdr_len",
        "ip_payload", "l4", "sport", "dport", "seq", "ack", "flags", "window",
        "urgent", "tcp_options", "payload", "frame_len", "raw", "l3_off", "direction",
        "truncated", "wire_payload", "anomalies", "flow",
    )

    def __init__(self):
        self.ts = 0.0
        self.linktype = LINKTYPE_ETHERNET
        self.vlan = ()  # VLAN IDs outermost first (and tunnels: decoder._gre); keys flows
        self.family = 0
        self.src = b""
        self.dst = b""
        self.proto = 0
        self.ttl = 0
        self.ip_id = 0
        self.is_fragment = False
        self.frag_offset = 0
        self.more_frags = False
        self.ip_hdr_len = 0
        self.ip_payload = b""
        self.l4 = False
        self.sport = 0
        self.dport = 0
        self.seq = 0
        self.ack = 0
        self.flags = 0
        self.window = 0
        self.urgent = 0
        self.tcp_options = b""
        self.payload = b""
        self.frame_len = 0
        self.raw = b""  # the whole frame: checksums are verified from it lazily
        self.l3_off = 0  # where the IP header starts in raw
        self.direction = None  # the TCP direction the stream stage put it in
        self.truncated = False  # captured shorter than on the wire (snaplen, header-only)
        self.wire_payload = 0  # TCP payload length on the wire, when truncated
        self.anomalies = ()  # non-fatal decoder anomalies (NoticeKinds), see above
        self.flow = None  # a datagram's (flow state with counters, to the server), once counted
