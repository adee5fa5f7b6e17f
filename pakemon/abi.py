"""Kernel ABI: the ctypes mirror of ``bpf/pakemon_abi.h``, and nothing else.

Stage: capture (the contract between the kernel sensor and userland). This
module is the ONLY Python declaration of the structs, enums and limits the
kernel program shares with Python: same names (without the ``pk_`` /
``PK_`` prefix, CamelCase for structs), same order, and each field's byte
order in its comment. It imports only ctypes, so pcap mode and unit tests
use it without bcc.

Two machine checks keep it honest (cilium's alignchecker idea):
``tests/unit/capture/test_abi.py`` compiles a probe of the header with
``cc`` and compares every ``sizeof``/``offsetof`` and constant with this
file; at attach time ``pakemon.capture.xdp`` compares these structs with the
layouts bcc derived from the compiled program and refuses to run on a
mismatch (``check_layout``).

Numbers are append-only (a retired one stays as ``UNUSEDn``); a change of
layout or meaning bumps ``ABI_VERSION`` here and in the header together.
"""

from __future__ import annotations

import ctypes as ct
import enum
import ipaddress
import socket

__all__ = [
    "ABI_VERSION", "SNAPLEN_MAX", "SNAPLEN_DEFAULT", "SERVICE_MAX", "BYPASS_MAX",
    "BLOCK_MAX", "IPV6_EXT_MAX", "VLAN_MAX", "PENDING_MAX", "COALESCE_HDR_MAX",
    "COALESCE_BYTES_MAX", "COALESCE_HOLD_NS", "COALESCE_QUIET_NS",
    "Hook", "EVF", "Counter", "ANY", "CFG", "Dir",
    "PerfMeta", "Config", "ServiceKey", "ServiceVal", "FlowKey", "FlowVal", "BlockVal",
    "Pending", "MAP_EVENTS", "MAP_COUNTERS", "MAP_CONFIG", "MAP_SERVICES", "MAP_BYPASS",
    "MAP_BLOCK", "MAP_PENDING",
    "MAP_META_LAYOUT", "PROG_XDP", "PROG_TC_EGRESS", "SHARED_STRUCTS",
    "flow_key", "layout_of",
]

ABI_VERSION = 3  # PK_ABI_VERSION

# ---- limits (see the header for why each has its value) ------------------
SNAPLEN_MAX = 65279  # PK_SNAPLEN_MAX: the perf sample size is a u16
SNAPLEN_DEFAULT = SNAPLEN_MAX  # PK_SNAPLEN_DEFAULT
SERVICE_MAX = 2 * 2 * 65536 + 2 * 256  # PK_SERVICE_MAX
BYPASS_MAX = 65536  # PK_BYPASS_MAX
BLOCK_MAX = 16384  # PK_BLOCK_MAX
IPV6_EXT_MAX = 6  # PK_IPV6_EXT_MAX
VLAN_MAX = 2  # PK_VLAN_MAX
PENDING_MAX = 16384  # PK_PENDING_MAX: flows holding a pending range at once
COALESCE_HDR_MAX = 192  # PK_COALESCE_HDR_MAX: header bytes a range keeps
COALESCE_BYTES_MAX = 61440  # PK_COALESCE_BYTES_MAX: payload bytes one range covers
COALESCE_HOLD_NS = 250_000_000  # PK_COALESCE_HOLD_NS: a range grows while younger
COALESCE_QUIET_NS = 60_000_000_000  # PK_COALESCE_QUIET_NS: no merging after a NO_FLOW frame

# ---- names the C program declares (maps, programs) ------------------------
MAP_EVENTS = "events"  # BPF_PERF_OUTPUT
MAP_COUNTERS = "pk_counters"  # per-CPU array, Counter -> u64
MAP_CONFIG = "pk_config"  # array, one Config at index 0
MAP_SERVICES = "pk_services"  # hash ServiceKey -> ServiceVal
MAP_BYPASS = "pk_bypass"  # LRU hash FlowKey -> FlowVal
MAP_BLOCK = "pk_block"  # LRU hash FlowKey -> BlockVal
MAP_PENDING = "pk_pending"  # hash FlowKey (server->client) -> Pending
MAP_META_LAYOUT = "pk_meta_layout"  # array of PerfMeta, a layout witness only
PROG_XDP = "pk_xdp"
PROG_TC_EGRESS = "pk_tc_egress"
# The kernel keeps 15 characters of a program's name; ours all start so.
PROG_NAME_PREFIX = "pk_"


class Hook(enum.IntEnum):
    """enum pk_hook: where a record was taken."""

    XDP = 0  # XDP, ingress
    TC_EGRESS = 1  # tc clsact egress (--direction both)


class EVF(enum.IntFlag):
    """PK_EVF_*: PerfMeta.flags, why a frame was pushed and how it was cut."""

    FORWARD = 1 << 0  # client->server of a service (whole)
    REVERSE = 1 << 1  # server->client of a TCP service
    HDR_ONLY = 1 << 2  # cut after the transport header
    SNAPLEN = 1 << 3  # cut at the configured snaplen
    FRAGMENT = 1 << 4  # an IP fragment (always pushed)
    ANY_PORT = 1 << 5  # the protocol's any-port flag matched
    PROBE = 1 << 6  # a scan probe (TCP without ACK, UDP)
    COALESCED = 1 << 7  # server segments in a row as one header-only record (Pending)
    NO_FLOW = 1 << 8  # no flow the program can tell (TCP fragment, headers past the walk)


class Counter(enum.IntEnum):
    """enum pk_counter: indices of the per-CPU counter array (append only).

    IP counts every IPv4/IPv6 frame; TCP, UDP, ICMP (ICMPv6 included) are
    subsets of IP; OTHER is every frame none of the three (pipeline.Stats).
    """

    FRAMES = 0  # every frame seen
    BYTES = 1  # their wire bytes
    IP_FRAMES = 2
    IP_BYTES = 3
    TCP_FRAMES = 4
    TCP_BYTES = 5
    UDP_FRAMES = 6
    UDP_BYTES = 7
    ICMP_FRAMES = 8
    ICMP_BYTES = 9
    OTHER_FRAMES = 10
    OTHER_BYTES = 11
    CANDIDATES = 12  # frames pushed to userland
    CANDIDATE_BYTES = 13  # frame bytes pushed (sum of cap_len)
    HDR_ONLY = 14  # candidates cut after the transport header
    FRAGMENTS = 15  # IP fragments seen (all are candidates)
    PASSED_OVER = 16  # frames no rule can match: not pushed
    BYPASSED = 17  # frames of bypassed flows: skipped
    BYPASS_EXPIRED = 18  # bypass entries found stale and deleted
    BLOCKED = 19  # frames dropped by the block map
    PERF_FAIL = 20  # bpf_perf_event_output failed (ring full)
    MALFORMED = 21  # headers cut short or inconsistent: passed
    DEEP_HEADERS = 22  # VLAN tags or IPv6 extension headers past the walk: pushed whole
    COALESCED = 23  # server segments taken into a pending range (in HDR_ONLY too)
    COALESCE_RECORDS = 24  # pending ranges the program pushed (COALESCED records)
    COALESCE_FULL = 25  # segments pushed on their own: pk_pending was full
    MAX_ = 26  # PK_CNT__MAX: the array size, not a counter


class ANY(enum.IntFlag):
    """PK_ANY_*: Config.any_ports, push every frame of the protocol."""

    TCP = 1 << 0
    UDP = 1 << 1
    ICMP = 1 << 2  # ICMP and ICMPv6
    OTHER = 1 << 3  # IP protocols other than the three


class CFG(enum.IntFlag):
    """PK_CFG_*: Config.flags."""

    BLOCK = 1 << 0  # enforce pk_block: XDP_DROP its flows
    SCAN_TCP = 1 << 1  # push headers of TCP without ACK, any port
    SCAN_UDP = 1 << 2  # push headers of UDP, any port
    COALESCE = 1 << 3  # merge the server's header-only data segments in a row


class Dir(enum.IntEnum):
    """enum pk_dir: ServiceKey.dir."""

    DST = 0  # port is the rule's DST (ICMP: the type)
    SRC = 1  # port is the rule's SRC, its DST being `*`


class PerfMeta(ct.Structure):
    """struct pk_event_meta: the head of each perf record; host byte order."""

    _fields_ = [
        ("ts_ns", ct.c_uint64),  # host order; bpf_ktime_get_ns(), CLOCK_MONOTONIC
        ("ifindex", ct.c_uint32),  # host order
        ("pkt_len", ct.c_uint32),  # host order; wire length
        ("cap_len", ct.c_uint32),  # host order; frame bytes that follow
        ("flags", ct.c_uint16),  # host order; EVF
        ("hook", ct.c_uint8),  # Hook
        ("abi_version", ct.c_uint8),  # ABI_VERSION of the writer
    ]


class Config(ct.Structure):
    """struct pk_config: index 0 of pk_config; host byte order."""

    _fields_ = [
        ("abi_version", ct.c_uint32),  # host order
        ("snaplen", ct.c_uint32),  # host order; 0 = SNAPLEN_MAX
        ("any_ports", ct.c_uint32),  # host order; ANY
        ("flags", ct.c_uint32),  # host order; CFG
        ("bypass_timeout_ns", ct.c_uint64),  # host order; 0 = LRU eviction only
    ]


class ServiceKey(ct.Structure):
    """struct pk_service_key."""

    _fields_ = [
        ("proto", ct.c_uint8),  # IP protocol number
        ("dir", ct.c_uint8),  # Dir
        ("port", ct.c_uint16),  # NETWORK order (socket.htons); ICMP: htons(type)
    ]


class ServiceVal(ct.Structure):
    """struct pk_service_val."""

    _fields_ = [
        ("nodes", ct.c_uint32),  # host order; service nodes behind the key
    ]


class FlowKey(ct.Structure):
    """struct pk_flow_key: one direction of a flow; every byte hashed."""

    _fields_ = [
        ("family", ct.c_uint8),  # 4 or 6
        ("proto", ct.c_uint8),  # IP protocol number
        ("sport", ct.c_uint16),  # NETWORK order; 0 for ICMP and others
        ("dport", ct.c_uint16),  # NETWORK order; 0 for ICMP and others
        ("_pad", ct.c_uint16),  # zero
        ("saddr", ct.c_uint32 * 4),  # NETWORK order; IPv4 in word 0, rest 0
        ("daddr", ct.c_uint32 * 4),  # NETWORK order; IPv4 in word 0, rest 0
    ]


class FlowVal(ct.Structure):
    """struct pk_flow_val: a bypassed flow; host byte order."""

    _fields_ = [
        ("last_seen_ns", ct.c_uint64),  # host order; CLOCK_MONOTONIC
        ("packets", ct.c_uint64),  # host order; packets skipped
        ("bytes", ct.c_uint64),  # host order; wire bytes skipped
    ]


class BlockVal(ct.Structure):
    """struct pk_block_val: a blocked flow; host byte order."""

    _fields_ = [
        ("since_ns", ct.c_uint64),  # host order; CLOCK_MONOTONIC
        ("packets", ct.c_uint64),  # host order; packets dropped
        ("bytes", ct.c_uint64),  # host order; wire bytes dropped
    ]


class Pending(ct.Structure):
    """struct pk_pending: a pending range of server segments (pk_pending's
    value); host byte order unless said."""

    _fields_ = [
        ("lock", ct.c_uint32),  # struct bpf_spin_lock (the kernel's; opaque here)
        ("frames", ct.c_uint32),  # host order; segments merged, 0: empty
        ("ts_ns", ct.c_uint64),  # host order; CLOCK_MONOTONIC of the last merge or flush
        ("seq_first", ct.c_uint32),  # host order; first merged byte
        ("seq_next", ct.c_uint32),  # host order; after the last merged byte
        ("ack", ct.c_uint32),  # host order
        ("bytes", ct.c_uint32),  # host order; payload bytes merged
        ("last_plen", ct.c_uint32),  # host order; the last segment's payload bytes
        ("ifindex", ct.c_uint32),  # host order
        ("hdr_len", ct.c_uint16),  # host order; bytes of hdr
        ("l3_off", ct.c_uint16),  # host order; IP header offset in hdr
        ("l4_off", ct.c_uint16),  # host order; TCP header offset in hdr
        ("family", ct.c_uint8),  # 4 or 6
        ("hook", ct.c_uint8),  # Hook
        ("hdr", ct.c_uint8 * COALESCE_HDR_MAX),  # wire bytes: the last segment's header
    ]


# C struct name -> mirror, for the layout checks.
SHARED_STRUCTS = {
    "pk_event_meta": PerfMeta,
    "pk_config": Config,
    "pk_service_key": ServiceKey,
    "pk_service_val": ServiceVal,
    "pk_flow_key": FlowKey,
    "pk_flow_val": FlowVal,
    "pk_block_val": BlockVal,
    "pk_pending": Pending,
}


def layout_of(cls) -> tuple:
    """(sizeof, ((field, offset, size), ...)) of a ctypes struct.

    Array fields compare by total size, so bcc's ``c_uint * 4`` and ours
    match whatever element type name each side prints.
    """
    fields = tuple((name, getattr(cls, name).offset, getattr(cls, name).size)
                   for name, _ in cls._fields_)
    return ct.sizeof(cls), fields


def _addr_bytes(addr, family: int) -> bytes:
    """An address (bytes, str or ipaddress) as 16 bytes, IPv4 zero-padded."""
    if isinstance(addr, (bytes, bytearray)):
        raw = bytes(addr)
    else:
        raw = ipaddress.ip_address(addr).packed
    if len(raw) != (4 if family == 4 else 16):
        raise ValueError(f"address {addr!r} is not IPv{family}")
    return raw.ljust(16, b"\0")


def flow_key(src, dst, sport: int, dport: int, proto: int) -> FlowKey:
    """The FlowKey of the direction src:sport -> dst:dport.

    src, dst: packed bytes (4 or 16, as the decoder gives them), text or
    ipaddress objects. Ports in host order; they are stored network order,
    and forced to 0 for protocols other than TCP and UDP (as the kernel
    builds keys).
    """
    if isinstance(src, (bytes, bytearray)):
        family = 4 if len(src) == 4 else 6
    else:
        family = ipaddress.ip_address(src).version
    key = FlowKey()
    key.family = family
    key.proto = proto
    if proto in (6, 17):
        key.sport = socket.htons(sport)
        key.dport = socket.htons(dport)
    # The words hold wire bytes: copy them in as they are.
    base = ct.addressof(key)
    ct.memmove(base + FlowKey.saddr.offset, _addr_bytes(src, family), 16)
    ct.memmove(base + FlowKey.daddr.offset, _addr_bytes(dst, family), 16)
    return key
