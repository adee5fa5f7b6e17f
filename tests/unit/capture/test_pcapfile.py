"""Tests for the capture-file source (pakemon.capture.pcapfile).

Captures are written by independent writers: scapy (wrpcap, PcapWriter,
PcapNgWriter), dpkt (pcap.Writer, pcapng.Writer) and a small hand builder in
this file for what those writers cannot produce (big-endian pcapng, odd
timestamp resolutions, Simple and obsolete Packet Blocks, damaged files).

Expected timestamps are computed exactly, as the float nearest to
units / divisor (``fractions.Fraction``), never by the reader's formula.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import tempfile
from decimal import Decimal
from fractions import Fraction

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, PcapWriter, wrpcap

from pakemon.capture import MAX_CAPLEN, CaptureError, CaptureReader, open_capture

# ---------------------------------------------------------------------------
# helpers


def exact(units: int, divisor: int) -> float:
    """The float nearest to units / divisor seconds."""
    return float(Fraction(units, divisor))


def write(tmp_path, data: bytes, name: str = "cap") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def read_all(path):
    with open_capture(path) as r:
        return list(r)


def read_until_error(path):
    """Frames yielded before the CaptureError, and the error (or None)."""
    got = []
    try:
        with open_capture(path) as r:
            for item in r:
                got.append(item)
    except CaptureError as e:
        return got, e
    return got, None


# Hand builders, written straight from the format documents.

def pcap_header(order="<", nano=False, linktype=1, snaplen=65535, major=2, minor=4):
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack(order + "IHHiIII", magic, major, minor, 0, 0, snaplen, linktype)


def pcap_record(data: bytes, sec: int, frac: int, order="<", caplen=None, origlen=None):
    caplen = len(data) if caplen is None else caplen
    origlen = caplen if origlen is None else origlen
    return struct.pack(order + "IIII", sec, frac, caplen, origlen) + data


def block(btype: int, body: bytes, order="<", total=None, trailer=None) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body) if total is None else total
    trailer = total if trailer is None else trailer
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", trailer)


def option(code: int, value: bytes, order="<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def end_of_options(order="<") -> bytes:
    return struct.pack(order + "HH", 0, 0)


def shb(order="<", major=1, options=b"") -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, major, 0, -1) + options, order)


def idb(linktype=1, snaplen=0, order="<", options=b"") -> bytes:
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + options, order)


def epb(data: bytes, units: int, iface=0, order="<", caplen=None, options=b"") -> bytes:
    caplen = len(data) if caplen is None else caplen
    fixed = struct.pack(order + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, caplen, len(data))
    return block(6, fixed + data + b"\0" * (-len(data) % 4) + options, order)


def spb(data: bytes, origlen=None, order="<") -> bytes:
    origlen = len(data) if origlen is None else origlen
    return block(3, struct.pack(order + "I", origlen) + data, order)


def pb(data: bytes, units: int, iface=0, order="<") -> bytes:
    fixed = struct.pack(order + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF,
                        len(data), len(data))
    return block(2, fixed + data, order)


def sample_frames(n: int):
    """n distinct frames of varied sizes (including odd ones for padding)."""
    return [bytes((i + k) & 0xFF for k in range(14 + (i * 37) % 120)) for i in range(n)]


T0 = 1_700_000_000
# Fixed addresses: an Ether() without dst makes scapy resolve it by ARP.
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


# ---------------------------------------------------------------------------
# pcap


def test_pcap_scapy_wrpcap_microseconds(tmp_path):
    pkts = []
    for i in range(5):
        p = ETH / IP(dst="192.0.2.%d" % i) / TCP(dport=80 + i) / (b"x" * i)
        p.time = Decimal(f"{T0 + i}.{123456 + i:06d}")
        pkts.append(p)
    path = str(tmp_path / "s.pcap")
    wrpcap(path, pkts)

    got = read_all(path)
    assert [f for _, _, f in got] == [bytes(p) for p in pkts]
    assert [lt for _, lt, _ in got] == [1] * 5
    assert [ts for ts, _, _ in got] == [exact((T0 + i) * 10**6 + 123456 + i, 10**6) for i in range(5)]
    with open_capture(path) as r:
        assert r.format == "pcap"
        assert r.linktype == 1
        assert r.size == os.path.getsize(path)


def test_pcap_scapy_nanoseconds_big_endian_raw_ip(tmp_path):
    pkts = [IP(dst="198.51.100.1") / UDP(dport=53) / (b"q" * i) for i in range(4)]
    path = str(tmp_path / "n.pcap")
    w = PcapWriter(path, linktype=101, nano=True, endianness=">")
    w.write_header(pkts[0])
    for i, p in enumerate(pkts):
        w.write_packet(p, sec=T0 + i, usec=999_999_990 + i)  # usec means ns with nano=True
    w.close()
    with open(path, "rb") as f:
        assert f.read(4) == bytes.fromhex("a1b23c4d")  # big-endian nano magic

    got = read_all(path)
    assert [f for _, _, f in got] == [bytes(p) for p in pkts]
    assert {lt for _, lt, _ in got} == {101}
    assert [ts for ts, _, _ in got] == [exact((T0 + i) * 10**9 + 999_999_990 + i, 10**9)
                                        for i in range(4)]


def test_pcap_dpkt_writer(tmp_path):
    frames = sample_frames(20)
    buf = io.BytesIO()
    w = dpkt.pcap.Writer(buf, linktype=113, nano=True)
    for i, fr in enumerate(frames):
        w.writepkt(fr, ts=T0 + i / 4)  # quarters: exact in binary, so dpkt writes them exactly
    path = write(tmp_path, buf.getvalue())
    got = read_all(path)
    assert got == [(T0 + i / 4, 113, fr) for i, fr in enumerate(frames)]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_hand_built_all_magics(tmp_path, order, nano):
    div = 10**9 if nano else 10**6
    frames = sample_frames(6)
    data = pcap_header(order, nano, linktype=228)
    for i, fr in enumerate(frames):
        data += pcap_record(fr, T0 + i, div - 1 - i, order)
    got = read_all(write(tmp_path, data))
    assert got == [(exact((T0 + i) * div + div - 1 - i, div), 228, fr) for i, fr in enumerate(frames)]


def test_pcap_linktype_fcs_bits_masked(tmp_path):
    # draft-ietf-opsawg-pcap: upper bits of the link-type field are FCS info.
    lt_field = (1 << 26) | (4 << 28) | 1
    data = pcap_header(linktype=lt_field) + pcap_record(b"abcd", T0, 0)
    path = write(tmp_path, data)
    with open_capture(path) as r:
        assert r.linktype == 1
        assert list(r) == [(float(T0), 1, b"abcd")]


def test_pcap_header_only_and_offsets(tmp_path):
    assert read_all(write(tmp_path, pcap_header(), "empty.pcap")) == []

    frames = sample_frames(3)
    data = pcap_header() + b"".join(pcap_record(f, T0, 0) for f in frames)
    path = write(tmp_path, data)
    with open_capture(path) as r:
        assert r.offset == 0
        expect = 24
        for _, _, fr in r:
            expect += 16 + len(fr)
            assert r.offset == expect
        assert r.offset == r.size == len(data)


def test_pcap_max_caplen_allowed_and_beyond_rejected(tmp_path):
    big = bytes(MAX_CAPLEN)
    got = read_all(write(tmp_path, pcap_header() + pcap_record(big, T0, 0), "max.pcap"))
    assert len(got) == 1 and got[0][2] == big

    data = pcap_header() + pcap_record(b"ok", T0, 0)
    bad_at = len(data)
    data += pcap_record(b"", T0, 0, caplen=MAX_CAPLEN + 1) + bytes(100)
    got, err = read_until_error(write(tmp_path, data, "bad.pcap"))
    assert got == [(float(T0), 1, b"ok")]
    assert err.offset == bad_at
    assert err.message == "impossible record length"


def test_pcap_truncated_mid_frame(tmp_path):
    frames = sample_frames(4)
    data = pcap_header() + b"".join(pcap_record(f, T0 + i, 0) for i, f in enumerate(frames))
    last = len(data) - 16 - len(frames[-1])
    cut = data[:last + 16 + 5]
    path = write(tmp_path, cut, "capture.pcap")
    got, err = read_until_error(path)
    assert [f for _, _, f in got] == frames[:3]
    assert err.offset == last
    assert err.path == path
    assert err.message == "truncated record"
    assert str(err) == (f"{path}: truncated record at byte offset {last} "
                        f"(header says {len(frames[-1])} bytes, 5 left)")


@pytest.mark.parametrize("keep", [1, 8, 15])
def test_pcap_truncated_mid_record_header(tmp_path, keep):
    frames = sample_frames(3)
    data = pcap_header() + b"".join(pcap_record(f, T0, 0) for f in frames)
    at = len(data)
    data += pcap_record(b"zzzz", T0, 0)[:keep]
    got, err = read_until_error(write(tmp_path, data))
    assert [f for _, _, f in got] == frames
    assert err.offset == at
    assert err.message == "truncated record header"
    assert f"{keep} left" in str(err)


def test_pcap_truncated_file_header(tmp_path):
    with pytest.raises(CaptureError) as ei:
        open_capture(write(tmp_path, pcap_header()[:10]))
    assert ei.value.offset == 0
    assert "file header" in ei.value.message


def test_pcap_bad_major_version(tmp_path):
    with pytest.raises(CaptureError) as ei:
        open_capture(write(tmp_path, pcap_header(major=3)))
    assert ei.value.offset == 4


# ---------------------------------------------------------------------------
# not a capture, empty, missing


def test_text_file_is_not_a_capture(tmp_path):
    path = write(tmp_path, b"hello world\n", "x.txt")
    with pytest.raises(CaptureError) as ei:
        open_capture(path)
    e = ei.value
    assert (e.path, e.offset) == (path, 0)
    assert str(e) == f"{path}: not a pcap or pcapng file at byte offset 0 (magic 0x68656c6c)"


@pytest.mark.parametrize("tool", ["gzip", "bzip2", "xz"])
def test_a_compressed_capture_is_named_with_what_to_do(tmp_path, tool):
    """A compressed pcap (Wireshark's .pcap.gz, a rotated and compressed
    tcpdump file) is refused with its compressor named and the pipe that
    reads it."""
    import bz2
    import gzip
    import lzma
    pcap = b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(8) + b"\xff\xff\x00\x00\x01\x00\x00\x00"
    packed = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[tool](pcap)
    path = write(tmp_path, packed, "x.pcap.z")
    with pytest.raises(CaptureError) as ei:
        open_capture(path)
    assert ei.value.offset == 0
    assert f"{tool}-compressed; decompress it first ({tool} -dc FILE | pakemon-xdp read -)" \
        in str(ei.value)


@pytest.mark.parametrize("data", [b"", b"\xd4", b"\xd4\xc3\xb2"])
def test_empty_or_tiny_file(tmp_path, data):
    with pytest.raises(CaptureError) as ei:
        open_capture(write(tmp_path, data))
    assert ei.value.offset == 0
    assert ei.value.message == "not a pcap or pcapng file"


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_capture(tmp_path / "nope.pcap")


def test_error_str_format():
    e = CaptureError("a.pcap", 7, "truncated record", "header says 9 bytes, 1 left")
    assert isinstance(e, Exception)
    assert str(e) == "a.pcap: truncated record at byte offset 7 (header says 9 bytes, 1 left)"
    assert str(CaptureError("a.pcap", 0, "oops")) == "a.pcap: oops at byte offset 0"


# ---------------------------------------------------------------------------
# reader object


def test_reader_reiterates_closes_and_accepts_pathlike(tmp_path):
    data = pcap_header() + pcap_record(b"one", T0, 1) + pcap_record(b"two", T0, 2)
    path = tmp_path / "r.pcap"
    path.write_bytes(data)
    r = open_capture(path)  # os.PathLike
    assert isinstance(r, CaptureReader)
    assert r.path == str(path)
    first = list(r)
    assert list(r) == first and len(first) == 2
    r.close()
    r.close()  # idempotent
    with pytest.raises(ValueError):
        iter(r)


def test_read_fallback_without_mmap(tmp_path, monkeypatch):
    class NoMmap:
        def __new__(cls, *a, **k):
            raise OSError("no mmap here")

    monkeypatch.setattr(mmap, "mmap", NoMmap)
    frames = sample_frames(3)
    data = pcap_header() + b"".join(pcap_record(f, T0, 0) for f in frames)
    got, err = read_until_error(write(tmp_path, data[:-1]))
    assert [f for _, _, f in got] == frames[:2]
    assert err.message == "truncated record"
    assert all(type(f) is bytes for _, _, f in got)


def test_frames_are_bytes(tmp_path):
    data = pcap_header() + pcap_record(b"abc", T0, 0)
    ((_, _, fr),) = read_all(write(tmp_path, data))
    assert type(fr) is bytes


# ---------------------------------------------------------------------------
# pcapng, written by libraries


def test_pcapng_scapy_writer(tmp_path):
    path = str(tmp_path / "s.pcapng")
    pkts = [ETH / IP() / TCP(sport=1000 + i) / (b"d" * (i * 3)) for i in range(6)]
    w = PcapNgWriter(path)
    for i, p in enumerate(pkts):
        # Sixteenths of a second: exact in binary, so scapy's float maths
        # writes exactly these microseconds.
        p.time = T0 + i / 16
        w.write(p)
    w.close()
    with open_capture(path) as r:
        assert r.format == "pcapng"
        assert r.linktype == 1
        got = list(r)
    assert got == [(T0 + i / 16, 1, bytes(p)) for i, p in enumerate(pkts)]


def test_pcapng_dpkt_writer_two_interfaces(tmp_path):
    le = dpkt.pcapng.InterfaceDescriptionBlockLE
    buf = io.BytesIO()
    w = dpkt.pcapng.Writer(buf, idb=[le(linktype=1, snaplen=65535), le(linktype=101, snaplen=65535)])
    frames = sample_frames(6)
    for i, fr in enumerate(frames):
        epb_ = dpkt.pcapng.EnhancedPacketBlockLE(iface_id=i % 2, pkt_data=fr)
        w.writepkt(epb_, ts=T0 + i / 8)
    path = write(tmp_path, buf.getvalue())
    with open_capture(path) as r:
        assert r.linktype == 1
        got = list(r)
    assert got == [(T0 + i / 8, (1, 101)[i % 2], fr) for i, fr in enumerate(frames)]


# ---------------------------------------------------------------------------
# pcapng, hand built


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_both_byte_orders_default_microseconds(tmp_path, order):
    frames = sample_frames(5)
    data = shb(order) + idb(1, order=order)
    units = [(T0 + i) * 10**6 + 654321 for i in range(5)]
    data += b"".join(epb(f, u, order=order) for f, u in zip(frames, units))
    got = read_all(write(tmp_path, data))
    assert got == [(exact(u, 10**6), 1, f) for f, u in zip(frames, units)]


def test_pcapng_tsresol_nanoseconds(tmp_path):
    units = T0 * 10**9 + 123_456_789
    data = shb() + idb(1, options=option(9, b"\x09") + end_of_options()) + epb(b"frame", units)
    assert read_all(write(tmp_path, data)) == [(exact(units, 10**9), 1, b"frame")]


def test_pcapng_tsresol_power_of_two(tmp_path):
    units = T0 * 1024 + 513  # 2^-10 s resolution
    data = shb(">") + idb(1, order=">", options=option(9, b"\x8a", ">")) + epb(b"f", units, order=">")
    assert read_all(write(tmp_path, data)) == [(exact(units, 1024), 1, b"f")]


def test_pcapng_tsoffset(tmp_path):
    # if_tsoffset: seconds added to every timestamp of the interface.
    opts = option(2, b"eth0") + option(14, struct.pack("<q", T0)) + option(9, b"\x03") + end_of_options()
    data = shb() + idb(1, options=opts) + epb(b"a", 1500) + epb(b"b", 0)
    assert read_all(write(tmp_path, data)) == [
        (exact(T0 * 1000 + 1500, 1000), 1, b"a"),
        (float(T0), 1, b"b"),
    ]


def test_pcapng_negative_tsoffset(tmp_path):
    opts = option(14, struct.pack("<q", -10))
    data = shb() + idb(1, options=opts) + epb(b"a", 15 * 10**6 + 1)
    assert read_all(write(tmp_path, data)) == [(exact(5 * 10**6 + 1, 10**6), 1, b"a")]


def test_pcapng_wrong_size_option_values_ignored(tmp_path):
    opts = option(9, b"\x09\x09") + option(14, b"\x01\x02\x03\x04")
    data = shb() + idb(1, options=opts) + epb(b"a", 2 * 10**6)
    assert read_all(write(tmp_path, data)) == [(2.0, 1, b"a")]


def test_pcapng_simple_packet_block(tmp_path):
    data = shb() + idb(113) + idb(1)
    data += spb(b"abcdef")  # padded to 8 in the block; origlen cuts the padding
    data += spb(b"abcd", origlen=1500)  # snapped: the block holds only 4
    with open_capture(write(tmp_path, data)) as r:
        assert r.linktype == 113
        assert list(r) == [(0.0, 113, b"abcdef"), (0.0, 113, b"abcd")]


def test_pcapng_simple_packet_block_snaplen(tmp_path):
    data = shb() + idb(1, snaplen=4) + spb(b"abcdefgh", origlen=100)
    assert read_all(write(tmp_path, data)) == [(0.0, 1, b"abcd")]


def test_pcapng_obsolete_packet_block(tmp_path):
    data = shb(">") + idb(1, order=">") + idb(105, order=">")
    data += pb(b"wifi", 7 * 10**6 + 5, iface=1, order=">")
    assert read_all(write(tmp_path, data)) == [(exact(7 * 10**6 + 5, 10**6), 105, b"wifi")]


def test_pcapng_multiple_interfaces_and_resolutions(tmp_path):
    data = shb()
    data += idb(1)  # iface 0: Ethernet, microseconds
    data += idb(101, options=option(9, b"\x09"))  # iface 1: raw IP, nanoseconds
    data += idb(276, options=option(9, b"\x81"))  # iface 2: SLL2, half seconds
    data += epb(b"e", 10**6 + 1, iface=0)
    data += epb(b"r", 10**9 + 1, iface=1)
    data += epb(b"s", 3, iface=2)
    assert read_all(write(tmp_path, data)) == [
        (exact(10**6 + 1, 10**6), 1, b"e"),
        (exact(10**9 + 1, 10**9), 101, b"r"),
        (1.5, 276, b"s"),
    ]


def test_pcapng_unknown_blocks_skipped(tmp_path):
    nrb = block(4, struct.pack("<HH", 1, 8) + bytes([192, 0, 2, 1]) + b"host" + b"\0" * 4)
    isb = block(5, struct.pack("<III", 0, 0, 0))
    custom = block(0x00000BAD, struct.pack("<I", 32473) + b"private data")
    local = block(0x80000001, b"")
    data = shb() + nrb + idb(1) + isb + epb(b"x", 0) + custom + local + epb(b"y", 10**6)
    assert read_all(write(tmp_path, data)) == [(0.0, 1, b"x"), (1.0, 1, b"y")]


def test_pcapng_epb_options_and_padding(tmp_path):
    opts = option(1, b"a comment") + option(2, struct.pack("<I", 1)) + end_of_options()
    data = shb() + idb(1) + epb(b"12345", 0, options=opts) + epb(b"6", 0)
    assert [f for _, _, f in read_all(write(tmp_path, data))] == [b"12345", b"6"]


def test_pcapng_two_sections_reset_interfaces(tmp_path):
    first = shb("<") + idb(1) + idb(101) + epb(b"a", 0, iface=1)
    second = shb(">") + idb(113, order=">") + epb(b"b", 10**6, order=">")
    data = first + second
    path = write(tmp_path, data)
    with open_capture(path) as r:
        assert r.linktype == 1
        assert list(r) == [(0.0, 101, b"a"), (1.0, 113, b"b")]

    # Interface 1 of section one does not exist in section two.
    bad_at = len(data)
    path = write(tmp_path, data + epb(b"c", 0, iface=1, order=">"), "bad")
    got, err = read_until_error(path)
    assert [f for _, _, f in got] == [b"a", b"b"]
    assert err.offset == bad_at
    assert "undefined interface" in err.message


def test_pcapng_no_interface(tmp_path):
    path = write(tmp_path, shb())
    with open_capture(path) as r:
        assert r.linktype is None
        assert list(r) == []


def test_pcapng_offsets(tmp_path):
    blocks = [shb(), idb(1), epb(b"abc", 0), block(5, bytes(12)), epb(b"defgh", 0)]
    path = write(tmp_path, b"".join(blocks))
    with open_capture(path) as r:
        it = iter(r)
        next(it)
        assert r.offset == sum(map(len, blocks[:3]))
        next(it)
        assert r.offset == r.size


# ---------------------------------------------------------------------------
# pcapng errors


def _ng_errors(tmp_path, tail: bytes, head=None):
    head = shb() + idb(1) + epb(b"good", 0) if head is None else head
    got, err = read_until_error(write(tmp_path, head + tail))
    assert err is not None, "expected a CaptureError"
    if b"good" in head:
        assert got == [(0.0, 1, b"good")]  # everything before the damage came first
    return err, len(head)


@pytest.mark.parametrize("total", [0, 8, 11, 30, 33])
def test_pcapng_bad_block_length(tmp_path, total):
    err, at = _ng_errors(tmp_path, block(0x00000BAD, bytes(20), total=total))
    assert err.offset == at
    assert err.message == "bad block length"


def test_pcapng_block_past_end_of_file(tmp_path):
    err, at = _ng_errors(tmp_path, epb(b"frame data", 0)[:-4])
    assert err.offset == at
    assert err.message == "truncated block"


def test_pcapng_mismatched_trailing_length(tmp_path):
    good = epb(b"frame", 0)
    for tail in (block(5, bytes(12), trailer=28), good[:-4] + struct.pack("<I", len(good) + 4)):
        err, at = _ng_errors(tmp_path, tail)
        assert err.offset == at
        assert err.message == "mismatched block trailing length"


def test_pcapng_undefined_interface(tmp_path):
    err, at = _ng_errors(tmp_path, epb(b"x", 0, iface=1))
    assert err.offset == at
    assert "undefined interface" in err.message
    err, at = _ng_errors(tmp_path, pb(b"x", 0, iface=3))
    assert err.offset == at
    assert "undefined interface" in err.message


def test_pcapng_epb_caplen_past_block(tmp_path):
    err, at = _ng_errors(tmp_path, epb(b"abcd", 0, caplen=9))
    assert err.offset == at
    assert "captured length" in err.message


def test_pcapng_packet_before_interface(tmp_path):
    err, at = _ng_errors(tmp_path, epb(b"x", 0), head=shb())
    assert err.offset == at
    err, at = _ng_errors(tmp_path, spb(b"x"), head=shb())
    assert err.offset == at and "simple packet block" in err.message


@pytest.mark.parametrize("keep", [1, 4, 7])
def test_pcapng_truncated_block_header(tmp_path, keep):
    err, at = _ng_errors(tmp_path, epb(b"next", 0)[:keep])
    assert err.offset == at
    assert err.message == "truncated block header"


def test_pcapng_block_too_short_for_its_type(tmp_path):
    err, at = _ng_errors(tmp_path, block(6, bytes(8)))
    assert err.offset == at and "too short" in err.message
    err, at = _ng_errors(tmp_path, block(1, b""))
    assert err.offset == at and "too short" in err.message


def test_pcapng_idb_option_past_block(tmp_path):
    bad_opts = struct.pack("<HH", 9, 200) + b"\x09\0\0\0"
    head = shb() + idb(1) + epb(b"good", 0)
    err, at = _ng_errors(tmp_path, idb(1, options=bad_opts), head=head)
    assert err.offset == at + 16  # the option, inside the IDB


def test_pcapng_bad_second_section_byte_order(tmp_path):
    bad = bytearray(shb())
    bad[8:12] = b"\0\0\0\0"
    err, at = _ng_errors(tmp_path, bytes(bad))
    assert err.offset == at
    assert "byte-order" in err.message


def test_pcapng_first_section_damaged_fails_at_open(tmp_path):
    for data in (shb()[:10], shb()[:-4] + b"\0\0\0\0", shb(major=2), b"\x0a\x0d\x0d\x0a" + bytes(24)):
        with pytest.raises(CaptureError) as ei:
            open_capture(write(tmp_path, data))
        assert ei.value.offset == 0


# ---------------------------------------------------------------------------
# properties: damage only ever gives frames, then one CaptureError


_TMP = tempfile.TemporaryDirectory(prefix="pakemon-capture-test-")


def _tmpfile(data: bytes) -> str:
    path = os.path.join(_TMP.name, "h.cap")
    with open(path, "wb") as f:
        f.write(data)
    return path


def _read_loosely(data: bytes):
    """(frames, error) for a capture given as bytes; anything but a
    CaptureError propagates and fails the test."""
    try:
        r = open_capture(_tmpfile(data))
    except CaptureError as e:
        return [], e
    got = []
    try:
        with r:
            for ts, lt, fr in r:
                assert isinstance(ts, float) and isinstance(lt, int) and type(fr) is bytes
                got.append((ts, lt, fr))
    except CaptureError as e:
        assert 0 <= e.offset <= len(data)
        return got, e
    return got, None


def _valid_pcap():
    """(data, bounds, frames): bounds are the offsets where records start
    (and the file ends); 0 stands for the file header."""
    frames = sample_frames(8)
    data = pcap_header(">", nano=True)
    bounds = [0, len(data)]
    for i, f in enumerate(frames):
        data += pcap_record(f, T0 + i, i, ">")
        bounds.append(len(data))
    return data, bounds, frames


def _valid_pcapng():
    frames = sample_frames(8)
    # Section one, little-endian: two interfaces, EPBs on both and an SPB.
    parts = [shb(), idb(1), idb(101, options=option(9, b"\x09"))]
    parts += [spb(f) if i == 3 else epb(f, i, iface=i % 2) for i, f in enumerate(frames[:5])]
    # A statistics block, then section two, big-endian.
    parts += [block(5, bytes(12)), shb(">"), idb(1, order=">")]
    parts += [epb(f, i, order=">") for i, f in enumerate(frames[5:])]
    data, bounds = b"", [0]
    for p in parts:
        data += p
        bounds.append(len(data))
    return data, bounds, frames


VALID = {"pcap": _valid_pcap(), "pcapng": _valid_pcapng()}

_settings = settings(max_examples=200, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def test_valid_samples_read_fully():
    for data, _bounds, frames in VALID.values():
        got, err = _read_loosely(data)
        assert err is None
        assert [f for _, _, f in got] == frames


@_settings
@given(st.binary(max_size=300))
def test_random_bytes_only_capture_errors(data):
    _read_loosely(data)


@_settings
@given(st.sampled_from([pcap_header(), pcap_header(">", True), shb(), shb(">") + idb(1, order=">")]),
       st.binary(max_size=400))
def test_random_bytes_after_a_valid_header_only_capture_errors(head, tail):
    _read_loosely(head + tail)


@_settings
@given(st.sampled_from(sorted(VALID)), st.data())
def test_random_truncation_yields_prefix_then_error_at_record(kind, draw):
    data, bounds, frames = VALID[kind]
    cut = draw.draw(st.integers(0, len(data)))
    got, err = _read_loosely(data[:cut])
    fr = [f for _, _, f in got]
    assert fr == frames[:len(fr)]
    # Records whose end is within the cut are all yielded; the error, if
    # any, sits at the start of the record the cut went through.
    whole = max(b for b in bounds if b <= cut)
    if cut == whole and cut != 0:
        assert err is None
    else:
        assert err is not None
        assert err.offset == whole
    full, _ = _read_loosely(data)
    assert got == full[:len(got)]


@_settings
@given(st.sampled_from(sorted(VALID)), st.data())
def test_random_corruption_only_capture_errors(kind, draw):
    data = bytearray(VALID[kind][0])
    for _ in range(draw.draw(st.integers(1, 4))):
        i = draw.draw(st.integers(0, len(data) - 1))
        data[i] = draw.draw(st.integers(0, 255))
    _read_loosely(bytes(data))


# ---------------------------------------------------------------------------
# streams: a pipe, a FIFO or standard input, read as the bytes come


def _pipe_of(data: bytes, hold=None):
    """(path of the pipe's read end, writer thread): the thread writes
    ``data`` and closes, or first waits for ``hold`` (an Event) if given."""
    import threading

    rfd, wfd = os.pipe()

    def writer():
        try:
            with open(wfd, "wb", buffering=0) as w:
                w.write(data)
                if hold is not None:
                    hold.wait(10)
        except BrokenPipeError:
            pass

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    return rfd, t


def _read_stream(data: bytes, chunk: int):
    """(frames, error) as _read_loosely gives them, reading ``data`` through
    a pipe ``chunk`` bytes at a time at most."""
    import pakemon.capture.pcapfile as pcapfile

    saved = pcapfile.STREAM_CHUNK
    pcapfile.STREAM_CHUNK = chunk
    rfd, t = _pipe_of(data)
    try:
        try:
            r = open_capture(f"/dev/fd/{rfd}")
        except CaptureError as e:
            return [], e
        got = []
        try:
            with r:
                assert r.size == 0  # not known for a stream
                for item in r:
                    got.append(item)
        except CaptureError as e:
            return got, e
        return got, None
    finally:
        pcapfile.STREAM_CHUNK = saved
        os.close(rfd)
        t.join(5)


def _same(a, b):
    """Two (frames, error) results are the same, the error's offset and
    message too (its detail may count fewer bytes left: a stream does not
    read on past a length longer than any real block)."""
    assert a[0] == b[0]
    if a[1] is None or b[1] is None:
        assert a[1] is None and b[1] is None, (a[1], b[1])
    else:
        assert (a[1].offset, a[1].message) == (b[1].offset, b[1].message)


@pytest.mark.parametrize("kind", sorted(VALID))
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16, 100, 1 << 20])
def test_a_stream_read_in_any_chunks_is_the_file(kind, chunk):
    data, _bounds, frames = VALID[kind]
    got, err = _read_stream(data, chunk)
    assert err is None
    assert got == read_all(_tmpfile(data))
    assert [f for _, _, f in got] == frames


@_settings
@given(st.sampled_from(sorted(VALID)), st.data())
def test_a_cut_or_damaged_stream_gives_the_file_s_frames_and_error(kind, draw):
    data = bytearray(VALID[kind][0])
    data = data[:draw.draw(st.integers(0, len(data)))]
    for _ in range(draw.draw(st.integers(0, 3))):
        if data:
            data[draw.draw(st.integers(0, len(data) - 1))] = draw.draw(st.integers(0, 255))
    chunk = draw.draw(st.sampled_from([1, 2, 5, 13, 64, 4096]))
    _same(_read_stream(bytes(data), chunk), _read_loosely(bytes(data)))


def test_a_stream_s_frames_come_before_it_ends():
    # tcpdump -w - | pakemon-xdp read -: each record is yielded when it has
    # come, not when the writer is done
    import threading

    data, _bounds, frames = VALID["pcapng"]
    first = len(shb() + idb(1) + idb(101, options=option(9, b"\x09")) + epb(frames[0], 0))
    hold = threading.Event()
    rfd, t = _pipe_of(data[:first], hold)
    try:
        with open_capture(f"/dev/fd/{rfd}") as r:
            it = iter(r)
            assert next(it)[2] == frames[0]  # the writer still holds the pipe open
            assert t.is_alive()
            hold.set()
            assert list(it) == []
    finally:
        hold.set()
        os.close(rfd)
        t.join(5)


def test_dash_is_standard_input_read_once(monkeypatch):
    data, _bounds, frames = VALID["pcap"]
    rfd, t = _pipe_of(data)
    try:
        with open(rfd, "rb", closefd=False) as stdin:
            monkeypatch.setattr("sys.stdin", stdin)
            with open_capture("-") as r:
                assert r.path == "<stdin>"
                assert [f for _, _, f in r] == frames
                assert r.offset == len(data)
                with pytest.raises(ValueError, match="read once"):
                    iter(r)
    finally:
        os.close(rfd)
        t.join(5)


def test_a_stream_that_is_not_a_capture_is_refused_at_open():
    got, err = _read_stream(b"GET / HTTP/1.1\r\n\r\n", 3)
    assert got == [] and err.offset == 0 and err.message == "not a pcap or pcapng file"
    got, err = _read_stream(b"", 3)
    assert err.detail == "empty file"


def test_a_stream_block_longer_than_any_real_one_is_refused_not_awaited():
    # a damaged length must not make the reader buffer gigabytes waiting
    data = shb() + idb(1) + epb(b"good", 0) + block(5, bytes(20), total=1 << 30)
    got, err = _read_stream(data, 16)
    assert [f for _, _, f in got] == [b"good"]
    assert err.message == "truncated block" and err.offset == len(shb() + idb(1) + epb(b"good", 0))


def test_dash_on_a_terminal_is_refused_rather_than_waited_on(monkeypatch):
    master, slave = os.openpty()
    try:
        with open(slave, "rb", closefd=False) as tty:
            monkeypatch.setattr("sys.stdin", tty)
            with pytest.raises(CaptureError, match="standard input is a terminal"):
                open_capture("-")
    finally:
        os.close(master)
        os.close(slave)


def test_dash_with_standard_input_closed_is_one_error(monkeypatch):
    monkeypatch.setattr("sys.stdin", None)  # what Python sets when fd 0 was closed
    with pytest.raises(CaptureError, match="standard input is closed"):
        open_capture("-")
