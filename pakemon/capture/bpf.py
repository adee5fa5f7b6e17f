"""Capture filters for ``read --bpf``: tcpdump's filter language, run by libpcap.

Snort (``snort -r FILE FILTER``), Suricata (``-r FILE`` with a BPF filter)
and Zeek (``-f``) take a capture filter with a capture file; so does
``pakemon-xdp read --bpf 'tcp port 80'``. libpcap, which tcpdump and
netsniff-ng already bring, compiles the expression for each link type the
files have (``pcap_compile`` on a ``pcap_open_dead`` handle) and runs it on
each frame (``pcap_offline_filter``); writing a second compiler for this
language would only make a second set of bugs. A frame the filter rejects
never reaches the pipeline and is counted (``filtered``), as the kernel's
socket filter counts nothing it drops but tcpdump reports its own tally.

Stage: capture (edge). No state but the compiled programs.
"""

from __future__ import annotations

import ctypes as ct
import ctypes.util

__all__ = ["BpfError", "BpfFilter"]

PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
SNAPLEN = 262144
# pcap_open_dead takes a DLT_ value; a file header holds a LINKTYPE_ value.
# They are equal from 104 up and for the common low ones, but not for these
# (libpcap's linktype_to_dlt, which it does not export): raw IP above all.
_LINKTYPE_TO_DLT = {100: 11, 101: 12, 102: 15, 103: 16}


class BpfError(ValueError):
    """The filter cannot be used: libpcap missing, or an expression it refuses."""


class _Program(ct.Structure):  # struct bpf_program
    _fields_ = [("bf_len", ct.c_uint), ("bf_insns", ct.c_void_p)]


class _PktHdr(ct.Structure):  # struct pcap_pkthdr (struct timeval, then lengths)
    _fields_ = [("tv_sec", ct.c_long), ("tv_usec", ct.c_long),
                ("caplen", ct.c_uint32), ("len", ct.c_uint32)]


_lib = None


def _libpcap():
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("pcap")
        for candidate in ([name] if name else []) + ["libpcap.so.1", "libpcap.so.0.8"]:
            try:
                lib = ct.CDLL(candidate)
                break
            except OSError:
                continue
        else:
            raise BpfError("--bpf needs libpcap (Debian: libpcap0.8), which is not installed")
        lib.pcap_open_dead.restype = ct.c_void_p
        lib.pcap_open_dead.argtypes = [ct.c_int, ct.c_int]
        lib.pcap_compile.restype = ct.c_int
        lib.pcap_compile.argtypes = [ct.c_void_p, ct.POINTER(_Program), ct.c_char_p, ct.c_int,
                                     ct.c_uint32]
        lib.pcap_geterr.restype = ct.c_char_p
        lib.pcap_geterr.argtypes = [ct.c_void_p]
        lib.pcap_close.argtypes = [ct.c_void_p]
        lib.pcap_freecode.argtypes = [ct.POINTER(_Program)]
        lib.pcap_offline_filter.restype = ct.c_int
        lib.pcap_offline_filter.argtypes = [ct.POINTER(_Program), ct.POINTER(_PktHdr),
                                            ct.c_char_p]
        _lib = lib
    return _lib


class BpfFilter:
    """One filter expression, compiled per link type on first use."""

    def __init__(self, expr: str, linktype: int = 1):
        self.expr = expr
        self.lib = _libpcap()
        self._progs: dict = {}
        self._hdr = _PktHdr()
        self._hdr_ref = ct.byref(self._hdr)
        self.filtered = 0  # frames the filter rejected
        self.program(linktype)  # a bad expression is an error now, not at the first frame

    def program(self, linktype: int):
        prog = self._progs.get(linktype)
        if prog is None:
            lib = self.lib
            handle = lib.pcap_open_dead(_LINKTYPE_TO_DLT.get(linktype, linktype), SNAPLEN)
            if not handle:
                raise BpfError(f"libpcap cannot open a handle for link type {linktype}")
            prog = _Program()
            try:
                if lib.pcap_compile(handle, ct.byref(prog), self.expr.encode("utf-8", "replace"),
                                    1, PCAP_NETMASK_UNKNOWN) != 0:
                    msg = (lib.pcap_geterr(handle) or b"").decode("utf-8", "replace")
                    raise BpfError(f"bad --bpf filter {self.expr!r}"
                                   + (f" for link type {linktype}" if linktype != 1 else "")
                                   + f": {msg}")
            finally:
                lib.pcap_close(handle)
            self._progs[linktype] = prog = (prog, ct.byref(prog))
        return prog

    def match(self, linktype: int, frame: bytes, wire_len: int | None = None) -> bool:
        """Whether the filter takes ``frame`` (counted when it does not)."""
        prog = self._progs.get(linktype) or self.program(linktype)
        hdr = self._hdr
        hdr.caplen = len(frame)
        hdr.len = wire_len if wire_len is not None else len(frame)
        if self.lib.pcap_offline_filter(prog[1], self._hdr_ref, frame):
            return True
        self.filtered += 1
        return False

    def close(self) -> None:
        for prog, _ in self._progs.values():
            self.lib.pcap_freecode(ct.byref(prog))
        self._progs.clear()
