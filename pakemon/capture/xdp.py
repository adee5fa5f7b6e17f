"""The kernel sensor's loader: bcc compiles and attaches, pyroute2 does netlink.

Stage: capture (live edge). ``XdpSensor`` compiles ``bpf/pakemon_xdp.bpf.c``
with bcc, checks that ``pakemon.abi`` matches what was compiled, attaches
the XDP program to an interface (and the tc program on clsact egress for
``direction="both"``), fills the service maps from a ``RuleTree``, and reads
the perf rings (directly, ``perf_ring``, or through bcc's reader off x86-64):
``poll()`` returns ``(ts, frame)`` pairs for
``Pipeline.feed``, the same shape ``pakemon-xdp read`` gets from a capture
file, in kernel-time order across the CPUs' rings (``TimeOrder``).
``counters()`` sums the per-CPU counters (the paper's section 4.2
classes, candidates, bypassed, blocked...).

Module functions serve the CLI without compiling anything:
``interface_status(ifname)`` (``pakemon-xdp status``) and
``detach_interface(ifname)`` (``pakemon-xdp detach``). The programs are
attached through bpf links where the kernel has them (XDP links, Linux 5.9;
tcx, 6.6), so the kernel detaches them when the sensor's process ends, even
killed; through netlink (clsact for tc) otherwise, and then they outlive it
until ``pakemon-xdp detach`` removes them.

Everything runs in the caller's network namespace (bcc and netlink resolve
interface names there). Errors reach the caller as ``SensorError`` with a
message for the user, never as a bcc traceback.

How the rule tree becomes kernel keys (``service_keys``): per TCP/UDP
service node, the DST ports when DST is specific (SRC is then checked in
userland), else the SRC ports with direction SRC (a backdoor answering from
its port), else (`*` both sides) the protocol's any-port flag. ICMP nodes
give their types (for ICMP and ICMPv6: the rule tree matches both by type);
a type `*` sets the ICMP any-port flag. Any ``ip`` rule sets every
any-port flag. See bpf/pakemon_xdp.bpf.c for what the kernel does with them.
"""

from __future__ import annotations

import atexit
import ctypes as ct
import errno
import os
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from pakemon import abi
from pakemon.capture import perf_ring
from pakemon.capture.perf_reader import (
    PerfRecord,
    RejectReason,
    TimeOrder,
    decode_record,
    decode_records,
    monotonic_offset_ns,
    pending_record,
)

__all__ = [
    "SensorError", "XdpSensor", "Attachment", "InterfaceStatus", "XdpProgram",
    "interface_status", "detach_interface", "interface_index", "service_keys",
    "DEFAULT_BPF_DIR", "DEFAULT_PAGE_CNT", "DEFAULT_BYPASS_TIMEOUT",
]

DEFAULT_BPF_DIR = Path(__file__).resolve().parents[2] / "bpf"
BPF_SOURCE = "pakemon_xdp.bpf.c"

# Perf ring pages per CPU (power of two). 1024 x 4 KiB = 4 MiB per CPU holds
# the backlog of a tcpreplay --topspeed burst of the 120k-frame bench capture
# while the Python reader (~9 us a record) catches up: measured 2026-11-28,
# 32 to 256 pages lost 2-65k samples, 1024 lost none in 6 runs
# (bench/live_bench.py). bcc's default of 8 loses at a few thousand frames/s.
DEFAULT_PAGE_CNT = 1024

# A poll that woke for fewer records than this waits BATCH_WAIT_S before
# reading the rings, so the next records join the batch. By default the
# reader is woken per record (wakeup_events 1: larger values woke it far
# too rarely here, on kernel 6.18, and the rings overflowed at 25,000
# frames/s), and each wakeup costs the reader a context switch, two
# polls and the batch's bookkeeping: at 20,000 frames/s that was two thirds
# of its CPU (28.9 us a record against 9.8 at top speed; with the wait,
# 15.8), measured with bench/live_bench.py on 2026-11-29. The price is up
# to BATCH_WAIT_S more before a quiet link's frame is inspected.
BATCH_MIN = 64
BATCH_WAIT_S = 0.002

# With wakeup_bytes (the direct rings only), the kernel wakes the reader
# once that many bytes came into a ring (a quarter of the ring at most)
# instead of at every record, and the reader looks at the rings at least
# every RING_POLL_MS whatever the wakeups: a frame on a quiet link waits at
# most that long (plus BATCH_WAIT_S) to be inspected (AF_PACKET v3's block
# timeout in Suricata is 10 ms), and an idle sensor polls 50 times a second:
# 0.65% of a CPU here (1.3% at 10 ms). Not the default: the per-record
# wakeups are what slows a sender on the same machine (tcpreplay --topspeed
# into a veth) to the reader's pace; see README, Live throughput.
RING_POLL_MS = 20

# While records are held back for time order (perf_reader.TimeOrder), poll
# at most this long (ms): a held frame waits at most about this for release.
HOLD_POLL_MS = 5

# A bypassed flow unused this long is inspected again (seconds): Linux's
# conntrack keeps an established TCP flow 5 days, an unreplied one 30 s;
# 60 s lets a flow that only paused stay bypassed without keeping dead
# tuples (then reused by a new connection) uninspected for long.
DEFAULT_BYPASS_TIMEOUT = 60.0
# How often poll_records sweeps pk_pending for ranges of flows gone quiet
# (older than SWEEP_RANGE_NS: twice the kernel's hold, so it no longer grows
# them) and for emptied entries unused for SWEEP_EMPTY_NS (they only hold a
# slot). A range is the server's, waiting for the client's next packet:
# the stream stage needs it before then, never sooner.
SWEEP_S = 0.5
SWEEP_RANGE_NS = 2 * abi.COALESCE_HOLD_NS
SWEEP_EMPTY_NS = 2_000_000_000
# A plain int for the per-record test (int & IntFlag runs the enum machinery:
# py-spy put that at 5% of the live sensor's time at top speed).
_NO_FLOW = int(abi.EVF.NO_FLOW)
SWEEP_BATCH = 1024  # pk_pending entries read per syscall

_MODES = ("auto", "native", "generic")
_DIRECTIONS = ("in", "both")
# tc clsact egress hook: TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS).
_TC_EGRESS_PARENT = 0xFFFFFFF3
_TC_INGRESS_PARENT = 0xFFFFFFF2
# IFLA_XDP_ATTACHED values (uapi/linux/if_link.h) as pyroute2 names them.
_XDP_MODE_NAMES = {"xdp": "native", "xdpgeneric": "generic", "xdpoffload": "offload",
                   "xdpmulti": "multi", 1: "native", 2: "generic", 3: "offload", 4: "multi"}
# uapi/linux/if_link.h XDP_FLAGS_*.
_XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
_XDP_FLAGS_SKB_MODE = 1 << 1
_XDP_FLAGS_DRV_MODE = 1 << 2
_XDP_FLAGS_HW_MODE = 1 << 3
_MODE_FLAGS = {"native": _XDP_FLAGS_DRV_MODE, "generic": _XDP_FLAGS_SKB_MODE,
               "offload": _XDP_FLAGS_HW_MODE}

IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58


class SensorError(Exception):
    """The sensor cannot do what was asked; ``str()`` is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class Attachment:
    """One interface the sensor is attached to."""

    ifname: str
    ifindex: int
    mode: str  # "native" or "generic"
    egress: bool = False  # tc egress program attached too
    created_clsact: bool = False  # we added the clsact qdisc (so we remove it)
    link_fd: Optional[int] = None  # the XDP program's bpf link (None: netlink)
    tc_link_fd: Optional[int] = None  # the tc program's tcx link (None: clsact)

    @property
    def dies_with_process(self) -> bool:
        """Whether the kernel detaches everything if the sensor is killed."""
        return self.link_fd is not None and (not self.egress or self.tc_link_fd is not None)


@dataclass(frozen=True)
class XdpProgram:
    mode: str  # "native", "generic" or "offload"
    prog_id: int
    name: Optional[str]  # None if the kernel would not say

    @property
    def ours(self) -> bool:
        return bool(self.name) and self.name.startswith(abi.PROG_NAME_PREFIX)


@dataclass(frozen=True)
class InterfaceStatus:
    """What is attached to an interface (``pakemon-xdp status``)."""

    ifname: str
    ifindex: int
    xdp: tuple[XdpProgram, ...] = ()
    tc_egress: tuple[str, ...] = ()  # names of bpf filters on clsact egress
    clsact: bool = False

    @property
    def attached(self) -> bool:
        return bool(self.xdp or self.tc_egress)

    @property
    def ours(self) -> bool:
        return any(p.ours for p in self.xdp) or any(
            n.startswith(abi.PROG_NAME_PREFIX) for n in self.tc_egress)

    def describe(self) -> str:
        parts = [f"{p.mode} id {p.prog_id} {p.name or '?'}" for p in self.xdp]
        parts += [f"tc egress {n}" for n in self.tc_egress]
        return f"{self.ifname}: " + (", ".join(parts) if parts else "no XDP or tc program")


# ---- bpf links (bpf(2) through ctypes) --------------------------------------
# An XDP program attached through a bpf link (BPF_LINK_CREATE, Linux 5.9+),
# and a tc program through a tcx link (Linux 6.6+), stay only while the
# link's file descriptor is open: when the sensor's process ends, SIGKILL and
# crashes included, the kernel detaches them. Attached through netlink
# instead, they outlive their process and keep copying frames into perf rings
# nobody reads until someone runs `pakemon-xdp detach`. Netlink stays the
# fallback for kernels without these links. bcc 0.26 has no call for links,
# and the attributes used here are few and fixed (uapi/linux/bpf.h); the
# status and detach commands use the same calls, without importing bcc.

_NR_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351,
           "riscv64": 280}.get(os.uname().machine)
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_OBJ_GET_INFO_BY_FD = 15
_BPF_PROG_QUERY = 16
_BPF_LINK_CREATE = 28
_BPF_LINK_GET_FD_BY_ID = 30
_BPF_LINK_GET_NEXT_ID = 31
_BPF_LINK_DETACH = 34
_BPF_XDP = 37  # enum bpf_attach_type
_BPF_TCX_EGRESS = 47
_BPF_LINK_TYPE_XDP = 6  # enum bpf_link_type
_BPF_LINK_TYPE_TCX = 11
_ATTR_SIZE = 128  # the kernel wants the bytes past the fields it knows zeroed
_libc = None


def _bpf(cmd: int, fmt: str, *fields) -> tuple[int, bytes]:
    """bpf(cmd, attr) with attr packed from ``fields``: (result, attr after)."""
    global _libc
    if _NR_BPF is None:
        raise OSError(errno.ENOSYS, "bpf(2): syscall number unknown on this machine")
    if _libc is None:
        _libc = ct.CDLL(None, use_errno=True)
    buf = ct.create_string_buffer(struct.pack(fmt, *fields), _ATTR_SIZE)
    r = _libc.syscall(ct.c_long(_NR_BPF), ct.c_int(cmd), buf, ct.c_uint(_ATTR_SIZE))
    if r < 0:
        e = ct.get_errno()
        raise OSError(e, os.strerror(e))
    return r, buf.raw


def _obj_info(fd: int) -> bytes:
    """The kernel's struct bpf_prog_info or bpf_link_info of the program or
    link behind ``fd`` (a zeroed buffer longer than the struct is accepted)."""
    info = ct.create_string_buffer(256)
    # info: bpf_fd, info_len, info (a pointer)
    _bpf(_BPF_OBJ_GET_INFO_BY_FD, "=IIQ", fd, len(info), ct.addressof(info))
    return info.raw


def _link_create(prog_fd: int, ifindex: int, attach_type: int, flags: int = 0) -> int:
    """A bpf link of ``prog_fd`` on ``ifindex``: its file descriptor."""
    # link_create: prog_fd, target_ifindex, attach_type, flags
    return _bpf(_BPF_LINK_CREATE, "=IIII", prog_fd, ifindex, attach_type, flags)[0]


def _links_on(ifindex: int) -> list[tuple[int, int, int]]:
    """(link id, link type, program id) of the XDP and tcx links on ``ifindex``
    in any network namespace (link ids are global, ifindexes are not: the
    caller checks the program is the one its own interface runs)."""
    out = []
    lid = 0
    while True:
        try:  # get_next_id: start_id, next_id
            lid = struct.unpack_from("=I", _bpf(_BPF_LINK_GET_NEXT_ID, "=II", lid, 0)[1], 4)[0]
        except OSError:
            return out  # ENOENT: no more
        try:
            fd = _bpf(_BPF_LINK_GET_FD_BY_ID, "=I", lid)[0]
        except OSError:
            continue  # gone meanwhile
        try:  # struct bpf_link_info: type, id, prog_id, then a union at
            # offset 16 whose xdp and tcx members start with the ifindex
            ltype, _, prog_id, _pad, idx = struct.unpack_from("=IIIII", _obj_info(fd))
        except OSError:
            continue
        finally:
            os.close(fd)
        if ltype in (_BPF_LINK_TYPE_XDP, _BPF_LINK_TYPE_TCX) and idx == ifindex:
            out.append((lid, ltype, prog_id))


def _link_detach(link_id: int) -> None:
    """Detach link ``link_id`` (its owner's fd stays, defunct)."""
    fd = _bpf(_BPF_LINK_GET_FD_BY_ID, "=I", link_id)[0]
    try:
        _bpf(_BPF_LINK_DETACH, "=I", fd)
    finally:
        os.close(fd)


def _tcx_egress_ids(ifindex: int) -> list[int]:
    """Program ids on ``ifindex``'s tcx egress hook ([] without tcx)."""
    ids = (ct.c_uint32 * 16)()
    try:  # query: target_ifindex, attach_type, query_flags, attach_flags,
        # prog_ids (a pointer), prog_cnt
        raw = _bpf(_BPF_PROG_QUERY, "=IIIIQI", ifindex, _BPF_TCX_EGRESS, 0, 0,
                   ct.addressof(ids), len(ids))[1]
    except OSError:
        return []
    return list(ids[:min(struct.unpack_from("=I", raw, 24)[0], len(ids))])


# ---- preflight checks ------------------------------------------------------

def _need_root() -> None:
    if os.geteuid() != 0:
        raise SensorError("the XDP sensor needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON): "
                          "run it as root")


def _import_bcc():
    try:
        import bcc  # noqa: F401  (Debian's python3-bpfcc, system site-packages)
    except ImportError as e:
        raise SensorError(f"bcc is not importable ({e}): install the Debian package "
                          "python3-bpfcc, or run `make setup`") from None
    return bcc


def _check_kernel_headers() -> None:
    rel = os.uname().release
    build = Path("/lib/modules") / rel / "build"
    # bcc also finds headers built into the kernel (CONFIG_IKHEADERS).
    if build.exists() or Path("/sys/kernel/kheaders.tar.xz").exists():
        return
    raise SensorError(f"kernel headers for {rel} are missing ({build}): bcc compiles the "
                      f"sensor against them. Install linux-headers-{rel}, or run `make setup` "
                      "(it links the newest Debian headers when the running kernel has none)")


def interface_index(ifname: str) -> int:
    """The ifindex of ``ifname`` in this network namespace, or SensorError."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        raise SensorError(f"no such interface: {ifname}") from None


# Link types whose frames reach XDP with an Ethernet header, which is where
# the kernel program starts parsing (loopback's is an all-zero one).
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
_ARPHRD_NAMES = {65534: "none (an IP tunnel: tun, WireGuard)", 768: "IPIP tunnel",
                 769: "IPv6-in-IPv4 tunnel", 776: "SIT tunnel", 778: "GRE tunnel",
                 823: "IP6GRE tunnel", 512: "PPP", 32: "InfiniBand", 280: "CAN"}


def link_type(ifindex: int) -> Optional[int]:
    """The interface's ARPHRD_* type (None if it cannot be read)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with IPRoute() as ipr:
            return ipr.get_links(ifindex)[0]["ifi_type"]
    except (NetlinkError, IndexError, KeyError):
        return None


def _index_now(ifname: str) -> Optional[int]:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


# ---- the rule tree as kernel keys -----------------------------------------

def _ports(spec) -> Iterator[int]:
    for lo, hi in spec.ranges:
        yield from range(max(lo, 0), min(hi, 65535) + 1)


def service_keys(tree) -> tuple[dict[tuple[int, int, int], int], int]:
    """({(proto, dir, port in host order): service nodes}, any-port bits).

    tree: a pakemon.detect.ruletree.RuleTree (its ``nodes`` and
    ``ip_nodes``). ICMP keys hold the type in ``port``.
    """
    keys: dict[tuple[int, int, int], int] = {}
    any_bits = 0

    def add(proto, d, port):
        k = (proto, d, port)
        keys[k] = keys.get(k, 0) + 1

    for proto, pnum, bit in (("tcp", IPPROTO_TCP, abi.ANY.TCP), ("udp", IPPROTO_UDP, abi.ANY.UDP)):
        for node in tree.nodes.get(proto, ()):
            if not node.dst.any:
                for port in _ports(node.dst):
                    add(pnum, abi.Dir.DST, port)
            elif not node.src.any:
                for port in _ports(node.src):
                    add(pnum, abi.Dir.SRC, port)
            else:
                any_bits |= bit
    for node in tree.nodes.get("icmp", ()):
        if node.src.any:
            any_bits |= abi.ANY.ICMP
            continue
        for icmp_type in _ports(node.src):
            if icmp_type <= 255:
                add(IPPROTO_ICMP, abi.Dir.DST, icmp_type)
                add(IPPROTO_ICMPV6, abi.Dir.DST, icmp_type)
    if tree.ip_nodes:
        any_bits |= abi.ANY.TCP | abi.ANY.UDP | abi.ANY.ICMP | abi.ANY.OTHER
    if getattr(tree, "other", False):  # (sigengine.KernelTree: ``ip_proto:N`` rules)
        any_bits |= abi.ANY.OTHER
    return keys, int(any_bits)


# ---- the sensor ------------------------------------------------------------

class XdpSensor:
    """The compiled kernel program, its maps, its perf reader, its attachments.

    Compiling takes about 1.5 s and loading the XDP program into the
    verifier 0.7 s (measured on the CI machine); both happen in the
    constructor, before any attach. Use as a context manager, or call
    ``close()``: where the kernel has no bpf links for them, attached
    programs otherwise outlive the process (``atexit`` detaches on a normal
    interpreter exit; ``Attachment.dies_with_process`` says which).
    """

    def __init__(self, *, bpf_dir: str | os.PathLike | None = None,
                 snaplen: int = abi.SNAPLEN_DEFAULT, page_cnt: int = DEFAULT_PAGE_CNT,
                 bypass_timeout: float = DEFAULT_BYPASS_TIMEOUT,
                 scan_tcp: bool = False, scan_udp: bool = False,
                 cflags: tuple[str, ...] = (), reader: str = "auto",
                 wakeup_bytes: int = 0, coalesce: bool = True, links: bool = True) -> None:
        _need_root()
        if reader not in ("auto", "bcc"):
            raise SensorError(f"reader must be auto or bcc, not {reader}")
        if wakeup_bytes < 0:
            raise SensorError(f"wakeup_bytes must be >= 0, not {wakeup_bytes}")
        bcc = _import_bcc()
        _check_kernel_headers()
        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise SensorError(f"page_cnt must be a power of two, not {page_cnt}")
        self._bcc = bcc
        bpf_dir = Path(bpf_dir) if bpf_dir is not None else DEFAULT_BPF_DIR
        src = bpf_dir / BPF_SOURCE
        if not src.is_file():
            raise SensorError(f"kernel program not found: {src}")
        try:
            self._bpf = bcc.BPF(src_file=str(src).encode(),
                                cflags=[f"-I{bpf_dir}", *cflags])
        except Exception as e:  # bcc raises bare Exception; it printed clang's errors
            raise SensorError(f"bcc could not compile {src} ({e}); its diagnostics are above") \
                from None
        self._xdp_fn = self._load(abi.PROG_XDP, bcc.BPF.XDP)
        self._tc_fn = None  # loaded on the first direction="both"
        self._links = links  # attach through bpf links where the kernel can (False: netlink)
        self._attachments: dict[str, Attachment] = {}
        self._records: list[PerfRecord] = []
        self._order = TimeOrder()
        self._rejected = {r: 0 for r in (RejectReason.SHORT_META, RejectReason.SHORT_FRAME,
                                         RejectReason.CAP_OVER_WIRE, RejectReason.ABI_VERSION,
                                         RejectReason.RING_CORRUPT)}
        self._rings = None  # perf_ring.PerfRings, or None: bcc's reader
        self._lost: dict[int, int] = {}
        self._closed = False
        self._next_sweep = 0.0  # time.monotonic() of the next pk_pending sweep
        self._coalescing_seen = False  # COALESCE was on once: ranges may be left
        self._batch_buf = None  # (keys, values) arrays for _pending_keys
        self._noflow_ns = None  # kernel time of the last NO_FLOW record
        self.swept_ranges = 0  # pending ranges userland took out of pk_pending
        self.swept_frames = 0  # the server segments in them
        self.check_layout()
        self._config = abi.Config(abi_version=abi.ABI_VERSION)
        self._services: dict[tuple[int, int, int], int] = {}
        self.configure(snaplen=snaplen, bypass_timeout=bypass_timeout,
                       scan_tcp=scan_tcp, scan_udp=scan_udp, block=False,
                       coalesce=coalesce)
        self._offset_ns = monotonic_offset_ns()
        self._open_perf(page_cnt, direct=reader == "auto", wakeup_bytes=wakeup_bytes)
        atexit.register(self.close)

    # -- loading -------------------------------------------------------------

    def _load(self, name: str, prog_type):
        try:
            return self._bpf.load_func(name, prog_type)
        except Exception as e:
            raise SensorError(
                f"the kernel refused BPF program {name} ({e}): no BPF support in this "
                "kernel (CONFIG_BPF_SYSCALL), or the verifier rejected a change to bpf/ "
                "(its log is above)") from None

    def check_layout(self) -> None:
        """Refuse to run if abi.py and the compiled program disagree.

        Compares abi.py's structs with the key/value types bcc derived from
        the compiled C for each map, and PerfMeta with the pk_meta_layout
        witness (and with ``events.event()`` when bcc derives it).
        """
        b = self._bpf
        checks = [
            ("pk_event_meta", abi.PerfMeta, b[abi.MAP_META_LAYOUT].Leaf),
            ("pk_config", abi.Config, b[abi.MAP_CONFIG].Leaf),
            ("pk_service_key", abi.ServiceKey, b[abi.MAP_SERVICES].Key),
            ("pk_service_val", abi.ServiceVal, b[abi.MAP_SERVICES].Leaf),
            ("pk_flow_key", abi.FlowKey, b[abi.MAP_BYPASS].Key),
            ("pk_flow_val", abi.FlowVal, b[abi.MAP_BYPASS].Leaf),
            ("pk_flow_key", abi.FlowKey, b[abi.MAP_BLOCK].Key),
            ("pk_block_val", abi.BlockVal, b[abi.MAP_BLOCK].Leaf),
            ("pk_flow_key", abi.FlowKey, b[abi.MAP_PENDING].Key),
            ("pk_pending", abi.Pending, b[abi.MAP_PENDING].Leaf),
        ]
        # (bcc derives events.event() from perf_submit calls; bcc 0.26 knows
        # neither perf_submit_skb's records nor the nested struct of
        # pk_emit()'s, so the pk_meta_layout witness is what proves PerfMeta.)
        for cname, mirror, compiled in checks:
            if abi.layout_of(mirror) != abi.layout_of(compiled):
                raise SensorError(
                    f"ABI mismatch for struct {cname}: pakemon/abi.py has "
                    f"{abi.layout_of(mirror)}, the compiled program "
                    f"{abi.layout_of(compiled)}; update abi.py with bpf/pakemon_abi.h")

    # -- perf ring -----------------------------------------------------------

    @property
    def reader(self) -> str:
        """How the perf rings are read: "direct" (perf_ring) or "bcc"."""
        return "bcc" if self._rings is None else "direct"

    @property
    def wakeup_bytes(self) -> int:
        """Bytes a ring takes in before the reader is woken; 0: every record."""
        return self._rings.watermark if self._rings is not None else 0

    def _open_perf(self, page_cnt: int, direct: bool = True, wakeup_bytes: int = 0) -> None:
        events = self._bpf[abi.MAP_EVENTS]
        from bcc.utils import get_online_cpus

        if direct and perf_ring.available():
            try:
                self._rings = perf_ring.PerfRings(events, get_online_cpus(), page_cnt,
                                                  watermark=wakeup_bytes)
                return
            except OSError:
                self._rings = None  # bcc's reader says what is wrong, if anything
        try:
            # One reader per CPU with its own lost callback, so losses are
            # counted per CPU (the public open_perf_buffer's lost_cb is not
            # told the CPU). Same code path as open_perf_buffer.
            for cpu in get_online_cpus():
                events._open_perf_buffer(cpu, self._on_sample, page_cnt,
                                         self._lost_counter(cpu), 1)
        except AttributeError:  # a bcc without the per-CPU opener
            events.open_perf_buffer(self._on_sample, page_cnt=page_cnt,
                                    lost_cb=self._lost_counter(-1))
        except Exception as e:
            raise SensorError(f"cannot open the perf ring buffer ({e}): "
                              "is perf_event_open allowed (CAP_PERFMON)?") from None

    def _lost_counter(self, cpu: int) -> Callable[[int], None]:
        def lost(n: int) -> None:
            self._lost[cpu] = self._lost.get(cpu, 0) + n
        return lost

    def _on_sample(self, cpu, data, size) -> None:
        # Called by bcc inside perf_buffer_poll. Copy out first: the ring
        # slot is reused after return and its alignment is not guaranteed.
        # Exceptions here would be printed and swallowed by ctypes, so
        # nothing here raises.
        raw = ct.string_at(data, size)
        rec, why = decode_record(raw, self._offset_ns)
        if rec is None:
            self._rejected[why] += 1
        else:
            self._records.append(rec)

    def _read(self, timeout_ms: int) -> None:
        """Wait up to timeout_ms for a wakeup (0: not at all), then take
        every ring's records into self._records."""
        rings = self._rings
        if rings is None:
            self._bpf.perf_buffer_poll(timeout_ms)  # bcc calls _on_sample per record
            return
        if timeout_ms:
            rings.wait(min(timeout_ms, RING_POLL_MS) if rings.watermark else timeout_ms)
        for cpu, chunk in zip(rings.cpus, rings.read()):
            if chunk:
                lost, junk = decode_records(chunk, self._offset_ns, self._records,
                                            self._rejected)
                if lost:
                    self._lost[cpu] = self._lost.get(cpu, 0) + lost
                if junk:
                    self._rejected[RejectReason.RING_CORRUPT] += 1

    def poll_records(self, timeout_ms: int = 100, drain: bool = False) -> list[PerfRecord]:
        """Wait up to timeout_ms for records; return them in time order.

        Records of the last ``TimeOrder.slack`` seconds may be held back
        until the next call (a ring read later may still hold older ones);
        ``drain`` returns everything read and held (when stopping).
        """
        self._check_open()
        order = self._order
        if order.held and not drain:
            # held records wait for the next read: do not sleep on them
            timeout_ms = min(timeout_ms, HOLD_POLL_MS)
        self._read(timeout_ms)
        if 0 < len(self._records) < BATCH_MIN and not drain:
            time.sleep(BATCH_WAIT_S)
        # Every record stamped before mark is in its ring now; read them all.
        mark = (time.monotonic_ns() + self._offset_ns) / 1e9
        self._read(0)
        recs, self._records = self._records, []
        out = order.release(recs, mark)
        if drain:
            out += order.drain()
        if self._coalescing_seen:
            out = self._with_pending(out, drain)
        return out

    # -- coalescing: pending ranges of the server's segments (pk_pending) ----

    def _with_pending(self, out: list, drain: bool) -> list:
        """``out`` with the pending ranges userland must take itself.

        Before the first NO_FLOW record (a TCP fragment, a frame past the
        header walk: the kernel could not push its flow's range first),
        every range, if merging may have run since the last such record
        (the kernel merges nothing for COALESCE_QUIET_NS after one; half
        of it here is the margin). Every SWEEP_S, the ranges of flows gone
        quiet. When draining, all.
        """
        noflow = [i for i, rec in enumerate(out) if rec.flags & _NO_FLOW]
        if noflow:
            first = out[noflow[0]].ts
            last, self._noflow_ns = (self._noflow_ns,
                                     int(out[noflow[-1]].ts * 1e9) - self._offset_ns)
            if last is None or int(first * 1e9) - self._offset_ns - last > \
                    abi.COALESCE_QUIET_NS // 2:
                out[noflow[0]:noflow[0]] = self.take_pending(stale_only=False, ts=first)
        now = time.monotonic()
        if drain or now >= self._next_sweep:
            self._next_sweep = now + SWEEP_S
            on = bool(self._config.flags & abi.CFG.COALESCE)
            out += self.take_pending(stale_only=on and not drain)
        return out

    def take_pending(self, stale_only: bool = True, ts: Optional[float] = None) -> list[PerfRecord]:
        """Take ranges out of pk_pending, as records stamped ``ts`` (now).

        ``stale_only``: only ranges older than SWEEP_RANGE_NS (the kernel no
        longer grows them) and empty entries older than SWEEP_EMPTY_NS.
        Each entry is read and deleted in one step
        (bpf_map_lookup_and_delete_elem), so a range the kernel started in it
        meanwhile comes out too; one the kernel pushed meanwhile comes out
        twice (a retransmission to the stream stage), never lost.
        """
        now_ns = time.monotonic_ns()
        if ts is None:
            ts = (now_ns + self._offset_ns) / 1e9
        lib = self._bcc.libbcc.lib
        fd = self._bpf[abi.MAP_PENDING].map_fd
        out = []
        for key in self._pending_keys(stale_only, now_ns):
            got = abi.Pending()
            if lib.bpf_lookup_and_delete(fd, ct.byref(key), ct.byref(got)) != 0:
                continue  # gone meanwhile: the kernel pushed it
            if got.frames:
                self.swept_ranges += 1
                self.swept_frames += got.frames
                out.append(pending_record(got, ts))
        return out

    def _pending_keys(self, stale_only: bool, now_ns: int) -> list[abi.FlowKey]:
        """The keys of pk_pending to take (see take_pending), read in
        batches (BPF_MAP_LOOKUP_BATCH) into buffers kept for the sensor's
        life: bcc's items_lookup_batch allocates room for the whole map at
        each call, 1.4% of the sensor's time at top speed (py-spy)."""
        tbl = self._bpf[abi.MAP_PENDING]
        if self._batch_buf is None:
            self._batch_buf = ((abi.FlowKey * SWEEP_BATCH)(), (abi.Pending * SWEEP_BATCH)())
        keys, vals = self._batch_buf
        lib = self._bcc.libbcc.lib

        def wanted(v) -> bool:
            return not stale_only or now_ns - v.ts_ns >= (SWEEP_RANGE_NS if v.frames
                                                          else SWEEP_EMPTY_NS)

        token, cnt = ct.c_uint32(0), ct.c_uint32(0)
        first = True
        out = []
        while True:
            cnt.value = SWEEP_BATCH
            res = lib.bpf_lookup_batch(tbl.map_fd, None if first else ct.byref(token),
                                       ct.byref(token), ct.byref(keys), ct.byref(vals),
                                       ct.byref(cnt))
            err = ct.get_errno()
            if res != 0 and err != errno.ENOENT:
                # a kernel without batch lookups (before 5.6): one by one
                return [abi.FlowKey.from_buffer_copy(k) for k, v in tbl.items() if wanted(v)]
            out += [abi.FlowKey.from_buffer_copy(keys[i]) for i in range(cnt.value)
                    if wanted(vals[i])]
            if res != 0 or cnt.value == 0:
                return out  # ENOENT: the whole map was read
            first = False

    def poll(self, timeout_ms: int = 100) -> list[tuple[float, bytes]]:
        """Wait up to timeout_ms; the ``(ts_seconds_wall, frame)`` pairs read."""
        return [(r.ts, r.frame) for r in self.poll_records(timeout_ms)]

    def frames(self, timeout_ms: int = 100,
               stop: Callable[[], bool] = lambda: False) -> Iterator[tuple[float, bytes]]:
        """Yield ``(ts, frame)`` until ``stop()`` is true (checked every poll)."""
        while not stop():
            yield from self.poll(timeout_ms)

    # -- configuration -------------------------------------------------------

    def configure(self, *, snaplen: Optional[int] = None, block: Optional[bool] = None,
                  bypass_timeout: Optional[float] = None, scan_tcp: Optional[bool] = None,
                  scan_udp: Optional[bool] = None, coalesce: Optional[bool] = None) -> abi.Config:
        """Change settings in place (one map write; no reload). None: unchanged."""
        self._check_open()
        cfg = self._config
        if snaplen is not None:
            if not 1 <= snaplen <= abi.SNAPLEN_MAX:
                raise SensorError(f"snaplen must be 1..{abi.SNAPLEN_MAX}, not {snaplen}")
            cfg.snaplen = snaplen
        if bypass_timeout is not None:
            if bypass_timeout < 0:
                raise SensorError("bypass timeout must be >= 0 (0: never expires)")
            cfg.bypass_timeout_ns = int(bypass_timeout * 1e9)
        for flag, on in ((abi.CFG.BLOCK, block), (abi.CFG.SCAN_TCP, scan_tcp),
                         (abi.CFG.SCAN_UDP, scan_udp), (abi.CFG.COALESCE, coalesce)):
            if on is not None:
                cfg.flags = (cfg.flags | flag) if on else (cfg.flags & ~flag)
        if coalesce:
            self._coalescing_seen = True
        elif coalesce is not None:
            self._next_sweep = 0.0  # what is left goes at the next poll
        self._write_config()
        return abi.Config.from_buffer_copy(cfg)

    def set_block(self, enabled: bool) -> None:
        """Enforce the block map (XDP_DROP of marked flows) or not."""
        self.configure(block=enabled)

    def _write_config(self) -> None:
        tbl = self._bpf[abi.MAP_CONFIG]
        tbl[tbl.Key(0)] = tbl.Leaf.from_buffer_copy(self._config)

    def set_services(self, tree) -> dict[str, int]:
        """Fill the service maps from a RuleTree, in place (no reload).

        New keys are inserted before stale ones are deleted, so a frame that
        both rule sets want is never missed during the swap. Returns counts:
        keys, added, removed, any_ports (abi.ANY bits).
        """
        self._check_open()
        want, any_bits = service_keys(tree)
        tbl = self._bpf[abi.MAP_SERVICES]
        have: dict[tuple[int, int, int], object] = {}
        for k in list(tbl.keys()):
            have[(k.proto, k.dir, socket.ntohs(k.port))] = k
        added = [k for k in want if k not in have or self._services.get(k) != want[k]]
        self._update_services(tbl, added, want)
        stale = [have[k] for k in have if k not in want]
        for k in stale:
            try:
                del tbl[k]
            except KeyError:
                pass
        self._services = want
        self._config.any_ports = any_bits
        self._write_config()
        return {"keys": len(want), "added": len(added), "removed": len(stale),
                "any_ports": any_bits}

    def _update_services(self, tbl, keys, want) -> None:
        if not keys:
            return
        n = len(keys)
        ks = (tbl.Key * n)()
        vs = (tbl.Leaf * n)()
        for i, (proto, d, port) in enumerate(keys):
            ks[i].proto, ks[i].dir, ks[i].port = proto, d, socket.htons(port)
            vs[i].nodes = want[(proto, d, port)]
        try:
            tbl.items_update_batch(ks, vs)  # one syscall (kernel 5.6+)
        except Exception:
            for i in range(n):
                tbl[ks[i]] = vs[i]

    def service_keys(self) -> set[tuple[int, int, int]]:
        """The keys in the kernel map now: (proto, dir, port in host order)."""
        tbl = self._bpf[abi.MAP_SERVICES]
        return {(k.proto, k.dir, socket.ntohs(k.port)) for k in tbl.keys()}

    # -- flows ---------------------------------------------------------------

    @staticmethod
    def _flow_keys(src, dst, sport, dport, proto, both) -> list[abi.FlowKey]:
        try:
            keys = [abi.flow_key(src, dst, sport, dport, proto)]
            if both:
                keys.append(abi.flow_key(dst, src, dport, sport, proto))
        except ValueError as e:
            raise SensorError(f"bad flow: {e}") from None
        return keys

    def bypass_flow(self, src, dst, sport: int, dport: int, proto: int,
                    both: bool = True) -> None:
        """Stop pushing a flow's packets (both directions unless both=False).

        The kernel skips and counts them until the entry is idle for the
        bypass timeout, or LRU evicts it. Fragments are never bypassed.
        """
        self._check_open()
        tbl = self._bpf[abi.MAP_BYPASS]
        now = time.monotonic_ns()
        for k in self._flow_keys(src, dst, sport, dport, proto, both):
            tbl[tbl.Key.from_buffer_copy(k)] = tbl.Leaf(now, 0, 0)

    def unbypass_flow(self, src, dst, sport: int, dport: int, proto: int,
                      both: bool = True) -> None:
        self._delete_flows(abi.MAP_BYPASS, src, dst, sport, dport, proto, both)

    def bypassed_flows(self) -> list[tuple[abi.FlowKey, abi.FlowVal]]:
        return self._dump_flows(abi.MAP_BYPASS, abi.FlowVal)

    def block_flow(self, src, dst, sport: int, dport: int, proto: int,
                   both: bool = True) -> None:
        """Mark a flow for XDP_DROP (tc egress: TC_ACT_SHOT).

        Takes effect only while blocking is enabled (``set_block(True)``);
        otherwise the mark is kept and everything passes.
        """
        self._check_open()
        tbl = self._bpf[abi.MAP_BLOCK]
        now = time.monotonic_ns()
        for k in self._flow_keys(src, dst, sport, dport, proto, both):
            tbl[tbl.Key.from_buffer_copy(k)] = tbl.Leaf(now, 0, 0)

    def unblock_flow(self, src, dst, sport: int, dport: int, proto: int,
                     both: bool = True) -> None:
        self._delete_flows(abi.MAP_BLOCK, src, dst, sport, dport, proto, both)

    def blocked_flows(self) -> list[tuple[abi.FlowKey, abi.BlockVal]]:
        return self._dump_flows(abi.MAP_BLOCK, abi.BlockVal)

    def _delete_flows(self, name, src, dst, sport, dport, proto, both) -> None:
        self._check_open()
        tbl = self._bpf[name]
        for k in self._flow_keys(src, dst, sport, dport, proto, both):
            try:
                del tbl[tbl.Key.from_buffer_copy(k)]
            except KeyError:
                pass

    def _dump_flows(self, name, val_cls) -> list:
        self._check_open()
        tbl = self._bpf[name]
        return [(abi.FlowKey.from_buffer_copy(k), val_cls.from_buffer_copy(v))
                for k, v in tbl.items()]

    # -- counters ------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Kernel counters summed over CPUs (lower-case abi.Counter names),
        plus the reader's: ``perf_lost`` (records the ring dropped),
        ``rejected`` (samples decode_record refused), ``late`` (records
        released after a newer one: out of time order, still inspected),
        ``swept_ranges`` and ``swept_frames`` (pending ranges userland took
        out of pk_pending itself, and their segments)."""
        self._check_open()
        tbl = self._bpf[abi.MAP_COUNTERS]
        out = {}
        for c in abi.Counter:
            if c is abi.Counter.MAX_:
                continue
            out[c.name.lower()] = int(sum(tbl.getvalue(tbl.Key(c))))
        out["perf_lost"] = sum(self._lost.values())
        out["rejected"] = sum(self._rejected.values())
        out["late"] = self._order.late
        out["swept_ranges"] = self.swept_ranges
        out["swept_frames"] = self.swept_frames
        return out

    def lost_per_cpu(self) -> dict[int, int]:
        """Records the perf ring dropped, by CPU (-1: CPU unknown).

        The kernel reports drops with the next record it can write to that
        CPU's ring, so this lags; the kernel counter ``perf_fail`` counts
        the same drops at once.
        """
        return dict(self._lost)

    def rejected(self) -> dict[str, int]:
        """Samples refused by decode_record, by RejectReason."""
        return dict(self._rejected)

    # -- attach / detach -----------------------------------------------------

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        return tuple(self._attachments.values())

    def attach(self, ifname: str, mode: str = "auto", direction: str = "in") -> Attachment:
        """Attach to ``ifname``: XDP in ``mode``, plus tc egress if direction is "both".

        mode "auto" tries native (driver) XDP, then generic (skb) XDP.
        Refuses an interface that already has an XDP program (ours from a
        killed sensor included: ``pakemon-xdp detach`` removes it).
        """
        self._check_open()
        if mode not in _MODES:
            raise SensorError(f"XDP mode must be one of {', '.join(_MODES)}, not {mode!r}")
        if direction not in _DIRECTIONS:
            raise SensorError(f"direction must be one of {', '.join(_DIRECTIONS)}, "
                              f"not {direction!r}")
        ifindex = interface_index(ifname)
        if ifname in self._attachments:
            raise SensorError(f"already attached to {ifname}")
        kind = link_type(ifindex)
        if kind is not None and kind not in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            raise SensorError(
                f"{ifname} has no Ethernet header (link type "
                f"{_ARPHRD_NAMES.get(kind, kind)}): XDP would hand the kernel program "
                "frames it cannot parse, and it would see nothing; attach to the Ethernet "
                "interface the traffic arrives on, or capture here and use `read`")
        st = interface_status(ifname)
        if st.xdp:
            raise SensorError(
                f"{st.describe()}: an XDP program is already attached"
                + ("; a killed sensor left it: `pakemon-xdp detach "
                   f"{ifname}` removes it" if st.ours else ""))
        tried = []
        used = None
        link_fd = None
        for m in (("native", "generic") if mode == "auto" else (mode,)):
            link_err = "not tried"
            try:
                if self._links:
                    link_fd = _link_create(self._xdp_fn.fd, ifindex, _BPF_XDP, _MODE_FLAGS[m])
                    used = m
                    break
            except OSError as e:
                # no XDP links in this kernel, or the mode cannot be had:
                # netlink says which, and attaches where it can
                link_err = e.strerror
            try:
                self._bcc.BPF.attach_xdp(ifname, self._xdp_fn,
                                         _XDP_FLAGS_UPDATE_IF_NOEXIST | _MODE_FLAGS[m])
                used = m
                break
            except Exception as e:
                tried.append(f"{m}: {e} (as a bpf link: {link_err})")
        if used is None:
            raise SensorError(f"cannot attach XDP to {ifname} ({'; '.join(tried)})")
        att = Attachment(ifname, ifindex, used, link_fd=link_fd)
        self._attachments[ifname] = att
        if direction == "both":
            try:
                self._attach_tc(att)
            except SensorError:
                self._detach_one(att)
                del self._attachments[ifname]
                raise
        return att

    def _attach_tc(self, att: Attachment) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        if self._tc_fn is None:
            self._tc_fn = self._load(abi.PROG_TC_EGRESS, self._bcc.BPF.SCHED_CLS)
        try:
            if self._links:
                att.tc_link_fd = _link_create(self._tc_fn.fd, att.ifindex, _BPF_TCX_EGRESS)
                att.egress = True
                return
        except OSError:
            pass  # no tcx before Linux 6.6: a clsact qdisc and a bpf filter
        try:
            with IPRoute() as ipr:
                try:
                    ipr.tc("add", "clsact", att.ifindex)
                    att.created_clsact = True
                except NetlinkError as e:
                    if e.code != errno.EEXIST:
                        raise
                ipr.tc("add-filter", "bpf", att.ifindex, ":1", fd=self._tc_fn.fd,
                       name=abi.PROG_TC_EGRESS, parent=_TC_EGRESS_PARENT, classid=1,
                       direct_action=True)
                att.egress = True
        except NetlinkError as e:
            raise SensorError(f"cannot attach the tc egress program to {att.ifname}: "
                              f"{os.strerror(e.code)}") from None

    def _ours_there(self, att: Attachment) -> Optional[bool]:
        """Whether the interface still runs this sensor's XDP program (None:
        cannot tell). Another tool may have removed or replaced it."""
        mine = _prog_id(self._xdp_fn.fd)
        if mine is None:
            return None
        try:
            st = interface_status(att.ifname)
        except SensorError:
            return None
        return any(p.prog_id == mine for p in st.xdp)

    def displaced(self) -> list[str]:
        """Attached interfaces (still there) whose XDP program is no longer
        this sensor's: removed or replaced by another tool."""
        return [name for name, att in self._attachments.items()
                if _index_now(name) == att.ifindex and self._ours_there(att) is False]

    def _detach_one(self, att: Attachment) -> None:
        # Closing a link detaches its program (unless another tool detached
        # it already: then there is nothing to remove, and nothing else is)
        if att.link_fd is not None:
            os.close(att.link_fd)
            att.link_fd = None
        elif self._ours_there(att) is not False:
            # bcc removes whatever XDP program the name has: not another
            # tool's that replaced ours
            try:
                self._bcc.BPF.remove_xdp(att.ifname, _MODE_FLAGS[att.mode])
            except Exception:
                pass  # interface gone, or already removed: checked below
        if att.tc_link_fd is not None:
            os.close(att.tc_link_fd)
            att.tc_link_fd = None
        elif att.egress or att.created_clsact:
            _remove_tc(att.ifindex, remove_clsact=att.created_clsact)

    def detach(self, ifname: Optional[str] = None) -> None:
        """Remove our XDP and tc programs from ``ifname`` (default: all).

        Raises SensorError if a program of ours is still there afterwards.
        """
        names = [ifname] if ifname else list(self._attachments)
        left = []
        for name in names:
            att = self._attachments.pop(name, None)
            if att is None:
                continue
            if _index_now(name) != att.ifindex:
                # Gone, its programs with it; or the name is another
                # interface's now, whose programs are not ours to remove.
                continue
            mine = _prog_id(self._xdp_fn.fd)
            self._detach_one(att)
            try:
                st = interface_status(name)
            except SensorError:
                continue  # the interface is gone, and its programs with it
            if any(p.prog_id == mine if mine is not None else p.ours for p in st.xdp) or any(
                    n.startswith(abi.PROG_NAME_PREFIX) for n in st.tc_egress):
                left.append(st.describe())
        if left:
            raise SensorError("programs still attached after detach: " + "; ".join(left))

    def vanished(self) -> list[str]:
        """Attached interfaces that are gone (deleted, their namespace too)
        or whose name is now another interface's: nothing is watched there."""
        return [name for name, att in self._attachments.items()
                if _index_now(name) != att.ifindex]

    def close(self) -> None:
        """Detach everything, free the perf ring and the maps. Idempotent."""
        if self._closed:
            return
        try:
            self.detach()
        finally:
            self._closed = True
            try:
                atexit.unregister(self.close)
            except Exception:
                pass
            try:
                self._bpf.cleanup()
            except Exception:
                pass
            if self._rings is not None:
                self._rings.close()

    def _check_open(self) -> None:
        if self._closed:
            raise SensorError("the sensor is closed")

    def __enter__(self) -> "XdpSensor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- status and cleanup without a sensor -----------------------------------

def _prog_name(prog_id: int) -> Optional[str]:
    """A BPF program's name from its id (None if the kernel would not say)."""
    try:
        fd = _bpf(_BPF_PROG_GET_FD_BY_ID, "=I", prog_id)[0]
    except OSError:
        return None
    try:
        # struct bpf_prog_info: name[16] at offset 64
        return _obj_info(fd)[64:80].split(b"\0", 1)[0].decode("ascii", "replace") or None
    except OSError:
        return None
    finally:
        os.close(fd)


def _prog_id(fd: int) -> Optional[int]:
    """The id of the BPF program behind ``fd`` (None if it cannot be read)."""
    try:
        return int.from_bytes(_obj_info(fd)[4:8], sys.byteorder)  # type, id
    except OSError:
        return None


def interface_status(ifname: str) -> InterfaceStatus:
    """XDP programs (mode, id, name) and tc egress filters on ``ifname``."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    ifindex = interface_index(ifname)
    progs = []
    tc_names = []
    clsact = False
    try:
        with IPRoute() as ipr:
            link = ipr.get_links(ifindex)[0]
            xdp = link.get_attr("IFLA_XDP")
            if xdp is not None:
                ids = {"native": xdp.get_attr("IFLA_XDP_DRV_PROG_ID"),
                       "generic": xdp.get_attr("IFLA_XDP_SKB_PROG_ID"),
                       "offload": xdp.get_attr("IFLA_XDP_HW_PROG_ID")}
                attached = _XDP_MODE_NAMES.get(xdp.get_attr("IFLA_XDP_ATTACHED"))
                prog_id = xdp.get_attr("IFLA_XDP_PROG_ID")
                # One mode attached: the kernel may report only PROG_ID.
                if attached in ("native", "generic", "offload") and not ids[attached]:
                    ids[attached] = prog_id
                for mode, pid in ids.items():
                    if pid:
                        progs.append(XdpProgram(mode, pid, _prog_name(pid)))
            clsact = any(q.get_attr("TCA_KIND") == "clsact"
                         for q in ipr.get_qdiscs(index=ifindex))
            if clsact:
                for f in ipr.get_filters(index=ifindex, parent=_TC_EGRESS_PARENT):
                    opts = f.get_attr("TCA_OPTIONS")
                    name = opts.get_attr("TCA_BPF_NAME") if opts is not None else None
                    if name and f.get_attr("TCA_KIND") == "bpf":
                        tc_names.append(name)
    except NetlinkError as e:
        raise SensorError(f"cannot read the state of {ifname}: {os.strerror(e.code)}") from None
    tc_names += tcx_egress_names(ifindex)
    return InterfaceStatus(ifname, ifindex, tuple(progs), tuple(tc_names), clsact)


def tcx_egress_names(ifindex: int) -> list[str]:
    """The programs on ``ifindex``'s tcx egress hook (Linux 6.6 links, which
    Debian 12's tc and bpftool do not show), by name, or "id N" for one
    whose name cannot be read; [] without tcx. In the caller's namespace."""
    return [_prog_name(pid) or f"id {pid}" for pid in _tcx_egress_ids(ifindex)]


def _remove_tc(ifindex: int, remove_clsact: bool) -> None:
    """Delete our bpf filters on clsact egress; then the qdisc if asked, or
    if no filter at all is left on it."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        try:
            if not any(q.get_attr("TCA_KIND") == "clsact"
                       for q in ipr.get_qdiscs(index=ifindex)):
                return
            for f in ipr.get_filters(index=ifindex, parent=_TC_EGRESS_PARENT):
                opts = f.get_attr("TCA_OPTIONS")
                name = opts.get_attr("TCA_BPF_NAME") if opts is not None else None
                if name and name.startswith(abi.PROG_NAME_PREFIX):
                    ipr.tc("del-filter", "bpf", ifindex, f["handle"],
                           parent=_TC_EGRESS_PARENT, info=f["info"])
            others = [f for parent in (_TC_EGRESS_PARENT, _TC_INGRESS_PARENT)
                      for f in ipr.get_filters(index=ifindex, parent=parent)
                      if f.get_attr("TCA_OPTIONS") is not None]
            if remove_clsact or not others:
                ipr.tc("del", "clsact", ifindex)
        except NetlinkError as e:
            if e.code not in (errno.ENOENT, errno.ENODEV, errno.EINVAL):
                raise SensorError(f"cannot remove the tc egress program: "
                                  f"{os.strerror(e.code)}") from None


def detach_interface(ifname: str, force: bool = False) -> list[str]:
    """Remove pakemon's XDP program and tc egress filter from ``ifname``.

    For ``pakemon-xdp detach`` after a sensor attached through netlink
    (kernels without bpf links) was killed, or while one hangs. An XDP
    program that is not pakemon's (name not ``pk_*``) is left alone unless
    ``force``; another tool's tc program always.
    Returns what was removed; raises SensorError if anything of ours stays.
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    _need_root()
    st = interface_status(ifname)
    removed = []
    foreign = [p for p in st.xdp if not p.ours]
    if foreign and not force:
        raise SensorError(f"{st.describe()}: not a pakemon program; --force removes it anyway")
    # Attached through bpf links (a sensor that still runs, or hangs: a
    # killed one took its links with it), they are detached as links;
    # netlink cannot remove them (EBUSY)
    tcx_here = _tcx_egress_ids(st.ifindex)
    linked = set()
    for lid, ltype, prog_id in _links_on(st.ifindex):
        if ltype == _BPF_LINK_TYPE_TCX:
            name = _prog_name(prog_id)
            if prog_id not in tcx_here or not (name and name.startswith(abi.PROG_NAME_PREFIX)):
                continue  # another namespace's, or another tool's (as with clsact)
            what = f"tc egress {name}"
        else:
            p = next((p for p in st.xdp if p.prog_id == prog_id), None)
            if p is None:
                continue  # an interface of the same index in another namespace
            what = f"XDP {p.mode} id {p.prog_id} {p.name or '?'}"
        try:
            _link_detach(lid)
        except OSError as e:
            raise SensorError(f"cannot detach bpf link {lid} ({what}) from {ifname}: "
                              f"{e.strerror}") from None
        linked.add(prog_id)
        removed.append(what)
    with IPRoute() as ipr:
        for p in st.xdp:
            if p.prog_id in linked:
                continue
            flags = _MODE_FLAGS[p.mode]
            try:
                ipr.link("set", index=st.ifindex,
                         xdp={"attrs": [("IFLA_XDP_FD", -1), ("IFLA_XDP_FLAGS", flags)]})
                removed.append(f"XDP {p.mode} id {p.prog_id} {p.name or '?'}")
            except NetlinkError as e:
                raise SensorError(f"cannot remove XDP program {p.prog_id} from {ifname}: "
                                  f"{os.strerror(e.code)}") from None
    if st.clsact:
        before = interface_status(ifname).tc_egress
        if any(n.startswith(abi.PROG_NAME_PREFIX) for n in before):
            _remove_tc(st.ifindex, remove_clsact=False)
            after = interface_status(ifname).tc_egress
            removed += [f"tc egress {n}" for n in before
                        if n.startswith(abi.PROG_NAME_PREFIX) and n not in after]
    after = interface_status(ifname)
    if after.ours or (force and after.xdp):
        raise SensorError(f"still attached after detach: {after.describe()}")
    return removed

