"""pakemon.pcap: the packets of alerted flows (``--pcap-log``).

``PcapLog(log_dir, max_bytes, keep)`` writes classic pcap (microsecond
timestamps, native byte order) to ``log_dir/pakemon.pcap``::

    events = pipe.feed(ts, frame, linktype)
    pcaplog.feed(ts, frame, linktype, events)   # mark(alert) + frame(...)

What is written, kept simple on purpose:

* ``mark(alert)`` marks the alert's flow: its 5-tuple, both directions
  (ICMP and other protocols without ports: the address pair and protocol).
* ``frame(ts, frame_bytes, pkt)`` writes the frame if ``pkt``'s flow is
  marked. Marking comes first, so the packet that raised the alert is
  written, then every later frame of the flow. Frames of the flow seen
  before the alert are not kept anywhere and so are not in the file.
  Non-first IP fragments carry no ports and are not written.
* Frames are only decoded (a second time, ``decode_frame``) while some flow
  is marked; up to ``max_flows`` flows are remembered, the least recently
  seen forgotten first.
* Before a record that would take the file past ``max_bytes`` (0: never),
  pakemon.pcap -> pakemon.pcap.1 ... pakemon.pcap.``keep`` (the oldest
  dropped) and a new file with its own pcap header is started. A frame of
  another link type than the file's also starts a new file.
* An existing pakemon.pcap is appended to (a restart loses nothing) when
  its header is ours and of the same link type; else it is rotated away.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections import OrderedDict
from pathlib import Path

from pakemon.events import Alert

PCAP_LOG = "pakemon.pcap"
PCAP_MAGIC = 0xA1B2C3D4
SNAPLEN = 262144
HEADER = struct.Struct("=IHHiIII")
RECORD = struct.Struct("=IIII")
FILE_MODE = 0o640
MAX_FLOWS = 65536

_PROTO_NUMBERS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58}
_PORTED = (6, 17)


def _ends(proto: int, a: bytes, ap, b: bytes, bp):
    """The key of a flow, the same for both directions."""
    if proto not in _PORTED:
        ap = bp = -1
    x, y = (a, ap), (b, bp)
    return (proto, x, y) if x <= y else (proto, y, x)


def alert_flow_key(alert: Alert):
    proto = alert.ip_proto or _PROTO_NUMBERS.get(str(alert.proto).upper(), 0)
    src = ipaddress.ip_address(alert.src_ip).packed
    dst = ipaddress.ip_address(alert.dst_ip).packed
    sp = alert.src_port if alert.src_port is not None else -1
    dp = alert.dst_port if alert.dst_port is not None else -1
    return _ends(proto, src, sp, dst, dp)


def packet_flow_key(pkt):
    """The flow key of a decoded packet, or None (not IP, no ports where due)."""
    if not pkt.family:
        return None
    proto = pkt.proto
    if proto in _PORTED and not pkt.l4:
        return None  # a non-first fragment: its flow is unknown here
    return _ends(proto, bytes(pkt.src), pkt.sport, bytes(pkt.dst), pkt.dport)


class PcapLog:
    def __init__(self, log_dir, max_bytes: int = 64 << 20, keep: int = 5,
                 max_flows: int = MAX_FLOWS):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.log_dir / PCAP_LOG
        self.max_bytes = max_bytes
        self.keep = keep
        self.max_flows = max_flows
        self._flows: OrderedDict = OrderedDict()
        self._f = None  # a pakemon.output._LogFile once a frame is written
        self._linktype = None
        self.frames_written = 0
        self.flows_marked = 0
        self._closed = False

    @property
    def active(self) -> bool:
        """True once some flow is marked: only then are frames decoded."""
        return bool(self._flows)

    def mark(self, alert) -> None:
        """Mark the flow of ``alert`` (other events are ignored)."""
        if not isinstance(alert, Alert):
            return
        try:
            key = alert_flow_key(alert)
        except ValueError:
            return
        flows = self._flows
        if key in flows:
            flows.move_to_end(key)
            return
        flows[key] = None
        self.flows_marked += 1
        while len(flows) > self.max_flows:
            flows.popitem(last=False)

    def is_marked(self, pkt) -> bool:
        flows = self._flows
        if not flows:
            return False
        key = packet_flow_key(pkt)
        if key is None:
            return False
        if key in flows:
            return True
        # an alert of a rule on IP itself: the address pair, any protocol
        return key[0] != 0 and _ends(0, key[1][0], -1, key[2][0], -1) in flows

    def frame(self, ts: float, frame_bytes: bytes, pkt, wire_len: int | None = None) -> bool:
        """Write the frame if the flow of ``pkt`` (its decoded form) is marked."""
        if not self.is_marked(pkt):
            return False
        self.write(ts, frame_bytes, getattr(pkt, "linktype", 1), wire_len)
        return True

    def feed(self, ts: float, frame_bytes: bytes, linktype: int = 1, events=(),
             wire_len: int | None = None) -> bool:
        """The pipeline hook: mark the alerts of ``events``, then write the
        frame if its flow is marked (decoding it only when some flow is)."""
        for ev in events:
            if isinstance(ev, Alert):
                self.mark(ev)
        if not self._flows:
            return False
        from pakemon.decode import DecodeError, decode_frame

        try:
            pkt = decode_frame(linktype, frame_bytes, ts, wire_len)
        except DecodeError:
            return False
        return self.frame(ts, frame_bytes, pkt, wire_len)

    # ---- the file ---------------------------------------------------------

    def write(self, ts: float, frame_bytes: bytes, linktype: int = 1,
              wire_len: int | None = None) -> None:
        if self._closed:
            raise ValueError("write to a closed PcapLog")
        frame_bytes = bytes(frame_bytes[:SNAPLEN])
        n = RECORD.size + len(frame_bytes)
        if self._f is None or self._f.fd is None:
            self._open(linktype)
        if linktype != self._linktype or (
                self.max_bytes > 0 and self._f.size > HEADER.size
                and self._f.size + n > self.max_bytes):
            self._rotate(linktype)
        if self._f.size == 0:  # a new file, or its header refused (disk full)
            self._f.write(HEADER.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, linktype))
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        orig = wire_len if wire_len is not None and wire_len > len(frame_bytes) else len(frame_bytes)
        self._f.write(RECORD.pack(sec, usec, len(frame_bytes), orig) + frame_bytes)
        self.frames_written += 1

    @property
    def file(self):
        """The output's _LogFile (its ``lost``, ``error``, ``failing``), or None."""
        return self._f

    def _open(self, linktype: int) -> None:
        """Open pakemon.pcap for appending; a file not ours or of another
        link type is rotated away first."""
        from pakemon.output import _LogFile, rotate_files

        try:
            with open(self.path, "rb") as f:
                head = f.read(HEADER.size)
        except FileNotFoundError:
            head = None
        if head is not None and len(head) > 0:
            ok = len(head) == HEADER.size
            if ok:
                magic, _, _, _, _, _, lt = HEADER.unpack(head)
                ok = magic == PCAP_MAGIC and lt == linktype
            if not ok:
                rotate_files(self.path, self.keep)
        if self._f is None:
            self._f = _LogFile(self.path)  # its losses are kept across reopenings
        else:
            self._f.open()
        self._linktype = linktype

    def _rotate(self, linktype: int) -> None:
        from pakemon.output import rotate_files

        self._f.close()
        rotate_files(self.path, self.keep)
        self._open(linktype)

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def reopen(self) -> None:
        """Close the file; the next frame opens pakemon.pcap by name again."""
        if self._f is not None:
            self._f.close()

    def close(self) -> None:
        self._closed = True
        self.reopen()

    def __enter__(self) -> PcapLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
