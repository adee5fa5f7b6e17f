"""Network-namespace plumbing for the live-target tests.

A ``Lab`` is two fresh network namespaces joined by one veth pair::

    pk-<pid>-<tag>-cli                       pk-<pid>-<tag>-srv
    vcli 02:50:4b:00:00:01  <== veth ==>  vsrv 02:50:4b:00:00:02
    (no IP address, IPv6 off)              10.201.0.2/24, fd00:504b::2/64
                                            neigh 10.201.0.100 / fd00:504b::100
                                                  -> 02:50:4b:00:00:01 (permanent)

The client side sends hand-made Ethernet frames through an AF_PACKET socket
on ``vcli``, from the addresses 10.201.0.100 / fd00:504b::100 that no
interface has. The server answers them through its static neighbour entries;
the client namespace's kernel gets those answers but owns no such address and
forwards nothing, so it drops them silently: it never sends the RSTs (or ICMP
errors) a kernel sends for packets of a connection it has no socket for, and
no nftables/iptables rule is needed.

The server side is the live target: real sockets of this machine's kernel
listen there. An AF_PACKET socket on ``vsrv`` (the Python stand-in for
``tcpdump -i vsrv -w``) records every frame that goes in or out of the server
as the sensor would see it on the wire, and writes a pcap file.

Sockets are made inside a namespace by switching the calling thread there
with setns(2) for the moment of the ``socket()`` call; a socket keeps its
namespace for life, so everything else runs in the caller's namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import time

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = getattr(socket, "PACKET_OUTGOING", 4)
SOL_PACKET = getattr(socket, "SOL_PACKET", 263)
PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION = 5, 6, 10
TPACKET_V2 = 1
TP_STATUS_KERNEL, TP_STATUS_USER, TP_STATUS_LOSING = 0, 1, 4
# struct tpacket2_hdr: status, len, snaplen, mac, net, sec, nsec, vlan_tci, vlan_tpid
_TP2 = struct.Struct("IIIHHIIHH")
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
LINKTYPE_ETHERNET = 1

CLI_MAC = "02:50:4b:00:00:01"
SRV_MAC = "02:50:4b:00:00:02"
CLI_IF, SRV_IF = "vcli", "vsrv"
CLI4, SRV4 = "10.201.0.100", "10.201.0.2"
CLI6, SRV6 = "fd00:504b::100", "fd00:504b::2"

_NS_RE = re.compile(r"^pk-(\d+)-")
_libc = ctypes.CDLL(None, use_errno=True)
_counter = 0


class LabError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and p.returncode:
        raise LabError(f"ip {' '.join(args)}: {p.stderr.strip() or p.returncode}")
    return p


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


@contextlib.contextmanager
def in_netns(name: str):
    """Run the body with the calling thread in network namespace ``name``."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def remove_stale_namespaces() -> None:
    """Delete pk-<pid>-* namespaces left by runs whose process is gone."""
    p = _ip("netns", "list", check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NS_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _ip("netns", "del", name, check=False)
        except PermissionError:
            pass


_unavailable: list = []


def why_unavailable() -> str | None:
    """None when namespaces can be made here, else the reason to skip."""
    if _unavailable:
        return _unavailable[0]
    reason = _probe()
    _unavailable.append(reason)
    return reason


def _probe() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "live-target tests need root (network namespaces, AF_PACKET)"
    if not shutil.which("ip"):
        return "iproute2's `ip` is not installed"
    if not hasattr(socket, "AF_PACKET"):
        return "no AF_PACKET sockets on this platform"
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "no /proc/thread-self/ns/net (network namespaces unsupported)"
    try:
        remove_stale_namespaces()
        lab = Lab("probe")
        try:
            lab.up()
            with in_netns(lab.srv):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.close()
        finally:
            lab.down()
    except (LabError, OSError, subprocess.SubprocessError) as e:
        return f"`ip netns` / veth / AF_PACKET unavailable here: {e}"
    return None


class Lab:
    """Client and server namespaces joined by a veth pair (see module doc)."""

    def __init__(self, tag: str | None = None):
        global _counter
        _counter += 1
        tag = tag or str(_counter)
        base = f"pk-{os.getpid()}-{tag}"
        self.cli = f"{base}-cli"
        self.srv = f"{base}-srv"
        self._made: list[str] = []

    # --- lifetime -------------------------------------------------------
    def up(self) -> "Lab":
        try:
            for ns in (self.cli, self.srv):
                _ip("netns", "add", ns)
                self._made.append(ns)
            c, s = self.cli, self.srv
            _ip("-n", c, "link", "add", CLI_IF, "address", CLI_MAC, "type", "veth",
                "peer", "name", SRV_IF, "netns", s, "address", SRV_MAC)
            self.sysctl(c, "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0",
                        f"net.ipv6.conf.{CLI_IF}.disable_ipv6=1")
            self.sysctl(s, "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0")
            # no link-local address: no DAD/router solicitation noise
            _ip("-n", s, "link", "set", SRV_IF, "addrgenmode", "none")
            _ip("-n", s, "addr", "add", f"{SRV4}/24", "dev", SRV_IF)
            _ip("-n", s, "addr", "add", f"{SRV6}/64", "dev", SRV_IF, "nodad")
            for ns, dev in ((c, CLI_IF), (s, SRV_IF)):
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", s, "neigh", "replace", CLI4, "lladdr", CLI_MAC, "dev", SRV_IF,
                "nud", "permanent")
            _ip("-n", s, "-6", "neigh", "replace", CLI6, "lladdr", CLI_MAC, "dev", SRV_IF,
                "nud", "permanent")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        while self._made:
            _ip("netns", "del", self._made.pop(), check=False)

    def __enter__(self) -> "Lab":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    @staticmethod
    def sysctl(ns: str, *settings: str) -> None:
        p = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", *settings],
                           capture_output=True, text=True, timeout=10)
        if p.returncode:
            raise LabError(f"sysctl in {ns}: {p.stderr.strip()}")

    # --- sockets ----------------------------------------------------------
    def socket(self, ns: str, family: int, type_: int, proto: int = 0) -> socket.socket:
        with in_netns(ns):
            return socket.socket(family, type_, proto)

    def client_link(self) -> "RawLink":
        return RawLink(self, self.cli, CLI_IF)

    def capture(self) -> "Capture":
        return Capture(self, self.srv, SRV_IF)


class RawLink:
    """Send and receive whole Ethernet frames on one interface of a namespace."""

    def __init__(self, lab: Lab, ns: str, ifname: str):
        self.ifname = ifname
        self.sock = lab.socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        with in_netns(ns):
            self.sock.bind((ifname, ETH_P_ALL))

    def send(self, frame: bytes) -> None:
        self.sock.send(bytes(frame))

    def recv(self, timeout: float):
        """The next frame that came in (not one we sent), or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(65535)
            except (socket.timeout, BlockingIOError):
                return None
            if addr[0] == self.ifname and addr[2] != PACKET_OUTGOING:
                return data

    def close(self) -> None:
        self.sock.close()


class Capture:
    """Every frame in and out of one interface, with kernel timestamps.

    Read through a TPACKET_V2 ring (PACKET_RX_RING), as tcpdump's libpcap
    does: the kernel copies each frame into the ring. A plain packet
    socket's recv queue instead holds a *clone* of every frame the server
    takes in until it is read, and a cloned skb makes the server's TCP
    refuse to coalesce out-of-order segments (``skb_try_coalesce``), so
    the target would behave as it does under no ordinary capture: the
    random cases of live_fuzz found a decoy replacing a segment that Linux,
    without the clone, coalesces into its neighbour and keeps.
    """

    FRAME = 1 << 12  # bytes per ring frame; a longer frame is an error (not cut)
    BLOCK = 1 << 22
    BLOCKS = 12  # 12,288 frames: more than any case sends and gets (tcp_ofo_many_tiny_segments_kept ~9,100)

    def __init__(self, lab: Lab, ns: str, ifname: str):
        self.ifname = ifname
        self.frames: list[tuple[float, bytes]] = []
        self._next = 0
        s = lab.socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            s.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack(
                "IIII", self.BLOCK, self.BLOCKS, self.FRAME,
                self.BLOCK // self.FRAME * self.BLOCKS))
            self.ring = mmap.mmap(s.fileno(), self.BLOCK * self.BLOCKS)
            with in_netns(ns):
                s.bind((ifname, ETH_P_ALL))
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.nframes = self.BLOCK // self.FRAME * self.BLOCKS

    def drain(self, quiet: float = 0.05) -> list[tuple[float, bytes]]:
        """Take what the ring holds, until ``quiet`` seconds pass with nothing new."""
        ring = self.ring
        while True:
            off = self._next * self.FRAME
            status, length, snaplen, mac, _net, sec, nsec, tci, tpid = _TP2.unpack_from(ring, off)
            if not status & TP_STATUS_USER:
                if not select.select([self.sock], [], [], quiet)[0]:
                    break
                continue
            if snaplen < length or status & TP_STATUS_LOSING:
                raise LabError(f"capture on {self.ifname} lost or cut frames")
            frame = bytes(ring[off + mac:off + mac + snaplen])
            if status & TP_STATUS_VLAN_VALID:
                # the device took the 802.1Q tag off into metadata (veth
                # does): put it back where it was, as libpcap does
                if not status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = 0x8100
                frame = frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]
            self.frames.append((sec + nsec / 1e9, frame))
            struct.pack_into("I", ring, off, TP_STATUS_KERNEL)
            self._next = (self._next + 1) % self.nframes
        drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
        if drops:
            raise LabError(f"capture on {self.ifname} dropped {drops} frames")
        return self.frames

    def write_pcap(self, path) -> int:
        """Write the frames drained so far as a pcap (Ethernet, microseconds)."""
        self.drain()
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))
            for ts, data in self.frames:
                sec = int(ts)
                usec = min(int(round((ts - sec) * 1e6)), 999_999)
                f.write(struct.pack("<IIII", sec, usec, len(data), len(data)))
                f.write(data)
        return len(self.frames)

    def close(self) -> None:
        self.ring.close()
        self.sock.close()
