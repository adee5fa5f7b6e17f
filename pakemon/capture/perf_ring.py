"""The perf ring buffers of the sensor's BPF_PERF_OUTPUT map, read directly.

Stage: capture (live edge). bcc's perf reader calls back into Python once
per record through ctypes (a C-to-Python transition, bcc's wrapper, a
string_at copy, a ctypes struct): about 2 of the ~9.5 us a record cost the
live sensor at top speed (py-spy, 2026-11-29). Here each CPU's ring is
opened the way bcc opens it (perf_event_open of PERF_COUNT_SW_BPF_OUTPUT,
PERF_SAMPLE_RAW, one wakeup per record, mmap, enable; the fd stored in the
map at the CPU's index), and a read copies everything between the ring's
tail and head in one slice, which ``perf_reader.decode_records`` splits with
struct: one Python loop, no callbacks.

Wakeups: bcc asks the kernel to wake the reader at every record
(wakeup_events 1), an irq_work and a scheduler wakeup each time, paid in the
receive softirq of the protected host. Given a ``watermark``, these rings
wake it when that many bytes have come in instead (perf_event_attr.watermark),
and the reader polls with a short timeout for what a quiet ring holds: at
60,000 frames/s of the load capture the softirq went from 45.8% to 2.9% of a
CPU (bench/evaluate load part, 2026-11-29, before the kernel merged the servers'
segments; ``attach --wakeup-bytes``).

x86-64 only: the kernel publishes data_head after the data with a write
barrier, and the reader may load data_head then the data without a read
barrier only where loads are not reordered with loads (x86's TSO). Other
machines keep bcc's reader (``available()`` says which).
"""

from __future__ import annotations

import ctypes as ct
import errno
import fcntl
import mmap
import os
import platform
import select
import struct

__all__ = ["PerfRings", "available", "read_ring"]

_NR_PERF_EVENT_OPEN = {"x86_64": 298}
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_EVENT_IOC_ENABLE = 0x2400  # _IO('$', 0)
PERF_ATTR_SIZE = 128  # PERF_ATTR_SIZE_VER7; the fields used here are in VER0
ATTR_WATERMARK = 1 << 14  # perf_event_attr bit: wakeup_watermark, not wakeup_events

# struct perf_event_mmap_page: where the ring's positions and geometry are
_HEAD_OFF = 1024  # data_head: written by the kernel
_TAIL_OFF = 1032  # data_tail: written by the reader
_DATA_OFFSET_OFF = 1040
_DATA_SIZE_OFF = 1048
_U64 = struct.Struct("<Q")


def available() -> bool:
    """True where this reader may be used (see the module's docstring)."""
    return platform.machine() in _NR_PERF_EVENT_OPEN


class _Attr(ct.Structure):
    # The head of struct perf_event_attr; the rest (to PERF_ATTR_SIZE) zero.
    _fields_ = [
        ("type", ct.c_uint32),
        ("size", ct.c_uint32),
        ("config", ct.c_uint64),
        ("sample_period", ct.c_uint64),
        ("sample_type", ct.c_uint64),
        ("read_format", ct.c_uint64),
        ("flags", ct.c_uint64),
        ("wakeup", ct.c_uint32),  # wakeup_events, or wakeup_watermark (bytes)
        ("bp_type", ct.c_uint32),
        ("_rest", ct.c_uint8 * (PERF_ATTR_SIZE - 56)),
    ]


def read_ring(buf, tail: int) -> tuple[bytes, int]:
    """(the bytes from ``tail`` to the ring's head, unwrapped; the head).

    ``buf``: the mapping (metadata page, then the data pages), or anything
    that slices like it. The caller passes the head back as the next tail
    once it has taken the bytes (``set_tail``)."""
    head = _U64.unpack_from(buf, _HEAD_OFF)[0]
    n = head - tail
    if n <= 0:
        return b"", tail
    off = _U64.unpack_from(buf, _DATA_OFFSET_OFF)[0]
    size = _U64.unpack_from(buf, _DATA_SIZE_OFF)[0]
    if n > size:  # cannot happen while the kernel keeps its side; never overread
        tail = head - size
        n = size
    start = tail % size
    if start + n <= size:
        return buf[off + start:off + start + n], head
    first = size - start
    return buf[off + start:off + size] + buf[off:off + n - first], head


def set_tail(buf, tail: int) -> None:
    """Give the bytes before ``tail`` back to the kernel."""
    _U64.pack_into(buf, _TAIL_OFF, tail)


class PerfRings:
    """One BPF_PERF_OUTPUT ring per CPU, for the map ``table`` (a bcc
    PerfEventArray: its fds are set here, as bcc's open_perf_buffer would).

    ``watermark``: bytes a ring takes in before the kernel wakes a waiting
    reader (at most a quarter of the ring, so a wakeup always comes with
    room left); 0: a wakeup per record, as bcc does."""

    def __init__(self, table, cpus, page_cnt: int, watermark: int = 0) -> None:
        self.watermark = min(watermark, page_cnt * mmap.PAGESIZE // 4)
        self._libc = ct.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ct.c_long
        self._nr = _NR_PERF_EVENT_OPEN[platform.machine()]
        self.cpus: list[int] = []
        self._fds: list[int] = []
        self._maps: list[mmap.mmap] = []
        self._tails: list[int] = []
        self._poll = select.poll()
        try:
            for cpu in cpus:
                fd = self._open(cpu)
                self._fds.append(fd)
                m = mmap.mmap(fd, (page_cnt + 1) * mmap.PAGESIZE, mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE)
                self._maps.append(m)
                self._tails.append(_U64.unpack_from(m, _TAIL_OFF)[0])
                fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
                table[table.Key(cpu)] = table.Leaf(fd)
                self._poll.register(fd, select.POLLIN)
                self.cpus.append(cpu)
        except BaseException:
            self.close()
            raise

    def _open(self, cpu: int) -> int:
        wm = self.watermark
        attr = _Attr(type=PERF_TYPE_SOFTWARE, size=PERF_ATTR_SIZE,
                     config=PERF_COUNT_SW_BPF_OUTPUT, sample_period=1,
                     sample_type=PERF_SAMPLE_RAW, flags=ATTR_WATERMARK if wm else 0,
                     wakeup=wm or 1)
        fd = self._libc.syscall(self._nr, ct.byref(attr), -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)
        if fd < 0:
            e = ct.get_errno()
            raise OSError(e, f"perf_event_open on CPU {cpu}: {os.strerror(e)}")
        return fd

    def wait(self, timeout_ms: int) -> None:
        """Until some ring has a record or ``timeout_ms`` passed."""
        try:
            self._poll.poll(timeout_ms)
        except InterruptedError:  # a signal: the caller looks at its flags
            pass
        except OSError as e:
            if e.errno != errno.EINTR:
                raise

    def read(self) -> list[bytes]:
        """Each ring's new bytes (unwrapped), the rings emptied."""
        out = []
        for i, m in enumerate(self._maps):
            chunk, head = read_ring(m, self._tails[i])
            if chunk:
                set_tail(m, head)
                self._tails[i] = head
            out.append(chunk)
        return out

    def close(self) -> None:
        for m in self._maps:
            try:
                m.close()
            except Exception:
                pass
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._maps, self._fds, self.cpus = [], [], []
