"""Settings of the defrag and stream stages, with the reasons for defaults.

Plain dataclasses so the sans-I/O stages take them as arguments and tests
build them directly; the CLI fills them from flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Policy names. Defrag: Snort frag3 / Suricata defrag names, plus ours.
DEFRAG_POLICIES = ("first", "last", "bsd", "bsd-right", "linux", "windows", "solaris",
                   "drop-overlap", "linux-current")
# Stream: Suricata's stream.reassembly / host-os-policy names, plus ours.
STREAM_POLICIES = ("first", "last", "bsd", "linux", "old-linux", "windows", "windows2k3",
                   "vista", "solaris", "hpux10", "hpux11", "irix", "macos", "linux-current")
# Suricata's host-os-policy names also include these; they select policies
# as Suricata's DefragGetOsPolicy / stream code map them.
HOST_POLICY_NAMES = tuple(sorted(set(DEFRAG_POLICIES) | set(STREAM_POLICIES)
                                 | {"bsd-right", "old-solaris"}))

# A host-policy name -> the defrag policy it selects (Suricata defrag.c
# DefragGetOsPolicy; ours map to themselves).
DEFRAG_FOR_HOST = {
    "bsd": "bsd", "hpux10": "bsd", "irix": "bsd",
    "bsd-right": "bsd-right",
    "old-linux": "linux", "linux": "linux",
    "old-solaris": "first", "hpux11": "first", "macos": "first", "first": "first",
    "solaris": "solaris",
    "windows": "windows", "vista": "windows", "windows2k3": "windows",
    "last": "last",
    "linux-current": "linux-current", "drop-overlap": "drop-overlap",
}
# A host-policy name -> the stream policy it selects (None: the default).
STREAM_FOR_HOST = {name: name for name in STREAM_POLICIES}
STREAM_FOR_HOST.update({"bsd-right": "bsd", "old-solaris": "solaris", "drop-overlap": None})


@dataclass
class DefragConfig:
    policy: str = "linux-current"
    # Linux's net.ipv4.ipfrag_time default, and Snort/Suricata's 30-60 s.
    timeout: float = 30.0
    # Bytes of fragment data held at most; the oldest incomplete datagrams
    # are evicted past it (Suricata's defrag.memcap default is 32 MB).
    memcap: int = 32 * 1024 * 1024
    # 64 KiB / 8-byte fragments = 8192 is the most a legal datagram needs;
    # more is an attack on the reassembler (Suricata max-frags: 65535).
    max_frags: int = 8192


@dataclass
class StreamConfig:
    policy: str = "linux-current"
    midstream: bool = True  # pick up connections already open at start
    async_oneside: bool = False  # accept flows where one direction is never seen
    checksum: str = "auto"  # auto | on | off
    memcap: int = 64 * 1024 * 1024  # reassembly bytes held in all queues
    # Per direction out-of-order queue, in the units below: the protected
    # host's receive buffer limit (net.ipv4.tcp_rmem max: 32 MB on Linux
    # 6.18, 6 MB on older kernels). A smaller limit prunes bytes the host
    # keeps, and what the sensor prunes it never reads: 29,000 one-byte
    # segments queued out of order (all a 64 KB window holds) were kept by
    # the live kernel, while a 4 MB limit dropped the farthest ones, the
    # bytes an attacker puts its payload in (live case
    # tcp_ofo_many_tiny_segments_kept). The memcap still bounds the sum.
    queue_limit: int = 32 * 1024 * 1024
    # What a queued out-of-order segment costs beside its bytes (its item,
    # the packet kept for the alert, the rbtree node), charged against the
    # queue limit and the memcap as the kernel charges an skb's truesize:
    # a flood of 1-byte segments is bounded by count too. (Measured: ~880
    # bytes of Python objects per queued 1-byte segment.)
    segment_cost: int = 1024
    depth: int = 1024 * 1024  # stream.reassembly.depth: bytes inspected per direction
    # The client's direction (what the protected server receives), if not
    # ``depth``: 0 for all of it. None: ``depth``. The CLI's default is 0.
    client_depth: int | None = None
    # Idle timeouts (Suricata flow-timeouts for TCP). An opening connection
    # waits 64 s, not Suricata's 60: Linux keeps a request socket 63 s
    # (tcp_synack_retries 5: SYN-ACKs at 0, 1, 3, 7, 15 and 31 s, dropped at
    # 63), and a client's ACK or data until then completes the handshake; a
    # session gone by then would pick the connection up at whatever segment
    # came first, an out-of-order one too, and read the rest as old.
    timeout_new: float = 64.0
    timeout_established: float = 3600.0
    timeout_closed: float = 60.0
    # 0: as many as the memcap allows at ~4 KB a session (16k for 64 MB);
    # a SYN flood evicts half-open sessions first.
    max_sessions: int = 0


@dataclass
class ScanConfig:
    enabled: bool = True
    window: float = 60.0  # seconds over which distinct targets are counted
    ports: int = 20  # distinct destination ports from one source in a window
    hosts: int = 20  # distinct destination hosts from one source in a window


@dataclass
class Config:
    defrag: DefragConfig = field(default_factory=DefragConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    host_policy: object = None  # pakemon.hostpolicy.HostPolicy or None
    # pakemon.detect.http_normalize.HttpConfig or None (its defaults): kept
    # as an opaque object so this module imports nothing from detect.
    http: object = None
    # The protected host's own link-layer (MAC) addresses, 6 bytes each
    # (``--host-mac``): an Ethernet frame to another unicast address, from
    # none of them, is one the host's stack discards (PACKET_OTHERHOST).
    # Empty (the default): not checked, as a replayed capture keeps the
    # MACs it was taken with.
    local_macs: frozenset = frozenset()
