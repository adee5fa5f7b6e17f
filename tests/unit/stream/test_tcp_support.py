"""Helpers for the TCP reassembler tests: frames, a two-host conversation.

Imported by the other test_tcp_* files (they sit in the same directory, as
tests/integration's helpers do). Frames are built with the lab's struct
builder (real checksums); the urgent pointer and a deliberately wrong
checksum are patched in here because the lab builder does not set them.
"""

from __future__ import annotations

import struct

from pakemon.config import StreamConfig
from pakemon.decode import decode_frame
from pakemon.decode.decoder import checksum
from pakemon.events import Notice
from pakemon.lab.traffic import ACK, FIN, PSH, RST, SYN, ether, ipv4, tcp
from pakemon.stream.tcp import StreamBypass, StreamData, TcpReassembler

__all__ = ["ACK", "C", "FIN", "Lab", "MD5OPT", "MSS", "PA", "PSH", "RST", "S", "SYN", "URG",
           "frame", "tsopt", "wscale"]

URG = 0x20
PA = PSH | ACK
C, S = "10.0.0.1", "10.0.0.2"
CPORT, SPORT = 40000, 80
MSS = b"\x02\x04\x05\xb4"


def wscale(shift: int) -> bytes:
    return b"\x01\x03\x03" + bytes([shift])


def tsopt(tsval: int, tsecr: int = 0) -> bytes:
    """NOP NOP TIMESTAMP: the layout Linux sends on every segment."""
    return b"\x01\x01\x08\x0a" + struct.pack("!II", tsval & 0xFFFFFFFF, tsecr)


MD5OPT = b"\x13\x12" + b"\x5a" * 16  # kind 19, length 18


def frame(src, dst, sport, dport, seq, ack, flags, payload=b"", window=65535, options=b"",
          urgent=0, bad_checksum=False, offload_checksum=False) -> bytes:
    seg = bytearray(tcp(src, dst, sport, dport, seq, ack, flags, payload, window=window,
                        options=options))
    if offload_checksum:
        # what a host with checksum offload leaves: the pseudo-header sum only
        pseudo = (bytes(map(int, src.split("."))) + bytes(map(int, dst.split(".")))
                  + struct.pack("!BBH", 0, 6, len(seg)))
        struct.pack_into("!H", seg, 16, (~checksum(pseudo)) & 0xFFFF)
    elif urgent or bad_checksum:
        struct.pack_into("!H", seg, 18, urgent)
        struct.pack_into("!H", seg, 16, 0)
        pseudo = (bytes(map(int, src.split("."))) + bytes(map(int, dst.split(".")))
                  + struct.pack("!BBH", 0, 6, len(seg)))
        csum = checksum(pseudo + bytes(seg))
        struct.pack_into("!H", seg, 16, csum ^ 0x5555 if bad_checksum else csum)
    return ether(ipv4(src, dst, 6, bytes(seg)))


class Lab:
    """A client and a server talking through one reassembler.

    Offsets are relative: a data offset ``k`` is sequence ISN + 1 + k, so
    tests read like the stream and work at any ISN (wraparound included).
    """

    def __init__(self, policy="linux-current", cisn=1000, sisn=5000, classify=None,
                 policy_for=None, cport=CPORT, sport=SPORT, **config):
        config.setdefault("checksum", "on")
        self.config = StreamConfig(policy=policy, **config)
        self.r = TcpReassembler(self.config, policy_for, classify)
        self.cisn, self.sisn = cisn, sisn
        self.cport, self.sport = cport, sport
        self.ts = 0.0
        self.events = []

    # sequence helpers
    def cseq(self, off):
        return (self.cisn + 1 + off) & 0xFFFFFFFF

    def sseq(self, off):
        return (self.sisn + 1 + off) & 0xFFFFFFFF

    def feed_frame(self, f, ts=None):
        if ts is not None:
            self.ts = ts
        out = self.r.feed(decode_frame(1, f, self.ts))
        self.events += out
        self.ts += 0.001
        return out

    def c(self, off=0, data=b"", flags=PA, ack=0, raw_seq=None, raw_ack=None, **kw):
        """A client segment at data offset ``off`` acknowledging server offset ``ack``."""
        seq = self.cseq(off) if raw_seq is None else raw_seq
        a = self.sseq(ack) if raw_ack is None else raw_ack
        return self.feed_frame(frame(C, S, self.cport, self.sport, seq, a, flags, data, **kw))

    def s(self, off=0, data=b"", flags=PA, ack=0, raw_seq=None, raw_ack=None, **kw):
        seq = self.sseq(off) if raw_seq is None else raw_seq
        a = self.cseq(ack) if raw_ack is None else raw_ack
        return self.feed_frame(frame(S, C, self.sport, self.cport, seq, a, flags, data, **kw))

    def syn(self, options=MSS, data=b"", window=65535, **kw):
        return self.c(raw_seq=self.cisn, raw_ack=0, flags=SYN, data=data, options=options,
                      window=window, **kw)

    def synack(self, options=MSS, ack=0, data=b"", window=65535):
        return self.s(raw_seq=self.sisn, ack=ack, flags=SYN | ACK, data=data, options=options,
                      window=window)

    def handshake(self, copts=MSS, sopts=MSS, window=65535):
        self.syn(copts, window=window)
        self.synack(sopts, window=window)
        self.c(0, flags=ACK)
        return self

    def flush(self):
        out = self.r.flush()
        self.events += out
        return out

    # results
    def pieces(self, side="c"):
        """[(data, gap)] delivered for the client's ("c") or server's data."""
        port = self.cport if side == "c" else self.sport
        return [(e.data, e.gap) for e in self.events
                if isinstance(e, StreamData) and e.direction.sport == port]

    def stream(self, side="c") -> bytes:
        return b"".join(d for d, _ in self.pieces(side))

    def runs(self, side="c"):
        """Delivered bytes split where a gap was marked."""
        out = []
        for data, gap in self.pieces(side):
            if gap or not out:
                out.append(data)
            else:
                out[-1] += data
        return out

    def notices(self, kind=None):
        return [e for e in self.events if isinstance(e, Notice) and (kind is None or e.kind is kind)]

    def bypasses(self):
        return [e for e in self.events if isinstance(e, StreamBypass)]

    @property
    def counters(self):
        return self.r.counters()


def test_lab_frames_decode_with_good_and_bad_checksums():
    from pakemon.decode.decoder import l4_checksum_ok

    good = decode_frame(1, frame(C, S, 1, 2, 3, 4, PA, b"xy", urgent=2))
    bad = decode_frame(1, frame(C, S, 1, 2, 3, 4, PA, b"xy", bad_checksum=True))
    assert good.urgent == 2 and good.payload == b"xy"
    assert l4_checksum_ok(good) and not l4_checksum_ok(bad)


def test_lab_offsets_wrap():
    lab = Lab(cisn=0xFFFFFFFF)
    assert lab.cseq(0) == 0 and lab.cseq(5) == 5
