"""Benchmark: reading capture files, libraries against the hand loop.

Generates a pcap and a pcapng file of ~100k mixed-size frames (a plain
struct writer, frame content is irrelevant) and times iterating every frame
with each candidate reader, printing frames/s and microseconds per frame.
The figures chose the reader in pakemon/capture/pcapfile.py; rerun this when
Python, dpkt or scapy change and update the comment there.

    .venv/bin/python bench/pcap_read_bench.py [--frames N] [--repeat R]

Candidates:
  dpkt.pcap.Reader / dpkt.pcapng.Reader     file-object readers
  dpkt + offset adapter                     dpkt plus the f.tell() and tuple
                                            shape open_capture must provide
  scapy RawPcapReader / RawPcapNgReader     raw (undissected) readers
  bare hand loop                            floor: mmap + unpack_from, no checks
  pakemon open_capture                      the module as shipped
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pakemon.capture import open_capture  # noqa: E402

# A rough Internet mix: many small ACK-sized frames, some full-size ones.
SIZES = [54, 60, 60, 66, 66, 74, 90, 128, 200, 576, 1024, 1400, 1514, 1514]


def frames(n: int, seed: int = 1):
    rnd = random.Random(seed)
    payload = bytes(range(256)) * 6
    t0 = 1_764_000_000
    for i in range(n):
        size = rnd.choice(SIZES)
        yield t0 + i // 1000, (i % 1000) * 1000 + rnd.randrange(1000), payload[:size]


def write_pcap(path: str, n: int) -> None:
    rec = struct.Struct("<IIII").pack
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for sec, usec, data in frames(n):
            f.write(rec(sec, usec, len(data), len(data)))
            f.write(data)


def write_pcapng(path: str, n: int) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
        f.write(struct.pack("<IIHHII", 1, 20, 1, 0, 262144, 20))
        for sec, usec, data in frames(n):
            pad = -len(data) & 3
            blen = 32 + len(data) + pad
            ts = sec * 1_000_000 + usec
            f.write(struct.pack("<IIIIIII", 6, blen, 0, ts >> 32, ts & 0xFFFFFFFF,
                                len(data), len(data)))
            f.write(data + b"\0" * pad + struct.pack("<I", blen))


# -- candidates: each takes a path and returns the number of frames read ----

def dpkt_pcap(path: str) -> int:
    import dpkt
    n = 0
    with open(path, "rb") as f:
        for _ts, _buf in dpkt.pcap.Reader(f):
            n += 1
    return n


def dpkt_pcap_adapted(path: str) -> int:
    """dpkt wrapped to the open_capture shape: (ts, linktype, frame) and the
    offset after each record. It still cannot tell a truncated frame."""
    import dpkt
    n = 0
    with open(path, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        linktype = reader.datalink()
        tell = f.tell

        def gen():
            for ts, buf in reader:
                yield ts, linktype, buf, tell()

        for _item in gen():
            n += 1
    return n


def dpkt_pcapng(path: str) -> int:
    import dpkt
    n = 0
    with open(path, "rb") as f:
        for _ts, _buf in dpkt.pcapng.Reader(f):
            n += 1
    return n


def scapy_pcap(path: str) -> int:
    from scapy.utils import RawPcapReader
    n = 0
    with RawPcapReader(path) as r:
        for _pkt, _meta in r:
            n += 1
    return n


def scapy_pcapng(path: str) -> int:
    from scapy.utils import RawPcapNgReader
    n = 0
    with RawPcapNgReader(path) as r:
        for _pkt, _meta in r:
            n += 1
    return n


def bare_pcap(path: str) -> int:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        unpack = struct.Struct("<IIII").unpack_from
        off, end, n = 24, len(buf), 0
        while off < end:
            sec, usec, caplen, _ = unpack(buf, off)
            start = off + 16
            off = start + caplen
            _item = ((sec * 1_000_000 + usec) / 1_000_000, 1, buf[start:off])
            n += 1
    return n


def bare_pcapng(path: str) -> int:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        hdr = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        off, end, n = 0, len(buf), 0
        while off < end:
            btype, blen = hdr(buf, off)
            if btype == 6:
                _iface, hi, lo, caplen, _ = epb(buf, off + 8)
                _item = (((hi << 32) | lo) / 1_000_000, 1, buf[off + 28:off + 28 + caplen])
                n += 1
            off += blen
    return n


def pakemon_reader(path: str) -> int:
    n = 0
    with open_capture(path) as r:
        for _item in r:
            n += 1
    return n


def timeit(fn, path: str, repeat: int) -> tuple[int, float]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = fn(path)
        best = min(best, time.perf_counter() - t0)
    return count, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5, help="best of R runs")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pcap = os.path.join(tmp, "bench.pcap")
        pcapng = os.path.join(tmp, "bench.pcapng")
        write_pcap(pcap, args.frames)
        write_pcapng(pcapng, args.frames)
        print(f"{args.frames} frames; pcap {os.path.getsize(pcap)} bytes, "
              f"pcapng {os.path.getsize(pcapng)} bytes; best of {args.repeat}; "
              f"Python {sys.version.split()[0]}")
        runs = [
            ("pcap", "dpkt.pcap.Reader", dpkt_pcap, pcap),
            ("pcap", "dpkt + offset adapter", dpkt_pcap_adapted, pcap),
            ("pcap", "scapy RawPcapReader", scapy_pcap, pcap),
            ("pcap", "bare hand loop (no checks)", bare_pcap, pcap),
            ("pcap", "pakemon open_capture", pakemon_reader, pcap),
            ("pcapng", "dpkt.pcapng.Reader", dpkt_pcapng, pcapng),
            ("pcapng", "scapy RawPcapNgReader", scapy_pcapng, pcapng),
            ("pcapng", "bare hand loop (no checks)", bare_pcapng, pcapng),
            ("pcapng", "pakemon open_capture", pakemon_reader, pcapng),
        ]
        for fmt, name, fn, path in runs:
            count, dt = timeit(fn, path, args.repeat)
            if count != args.frames:
                print(f"  {name}: read {count} frames, expected {args.frames}")
            print(f"{fmt:7s} {name:30s} {count / dt:>12,.0f} frames/s "
                  f"{dt / count * 1e6:7.3f} us/frame")


if __name__ == "__main__":
    main()
