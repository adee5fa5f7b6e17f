"""Build real-looking Ethernet/IPv4 traffic and write it as pcap.

``ipv6`` and the IPv6 pseudo-header in ``tcp``/``udp`` (an address with a
colon) are there for the reset unit, which answers IPv6 connections too.

Frames are built with struct rather than scapy so the benchmark can make
100,000+ frames in seconds; the decoder's own tests use scapy, an
independent builder, so the two check each other. Checksums are real so
that tcpreplay'd captures are accepted by a live stack.
"""

from __future__ import annotations

import random
import socket
import struct
from dataclasses import dataclass, field

from pakemon.decode.decoder import checksum

_ETH = struct.Struct("!6s6sH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")

CLIENT_MAC = bytes.fromhex("020000000001")
SERVER_MAC = bytes.fromhex("020000000002")

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def ether(payload: bytes, src=CLIENT_MAC, dst=SERVER_MAC, ethertype=0x0800) -> bytes:
    return _ETH.pack(dst, src, ethertype) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, ident: int = 0,
         df: bool = True, frag_offset: int = 0, mf: bool = False, options: bytes = b"") -> bytes:
    """An IPv4 packet; ``frag_offset`` in bytes (multiple of 8)."""
    if len(options) % 4:
        options += b"\0" * (4 - len(options) % 4)
    ihl = 5 + len(options) // 4
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    hdr = _IP4.pack(0x40 | ihl, 0, ihl * 4 + len(payload), ident, flags, ttl, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst)) + options
    csum = checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    if ":" in src:  # RFC 8200 8.1: 32-bit length, 24 zero bits, next header
        return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                + struct.pack("!I3xB", length, proto))
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, length)


def ipv6(src: str, dst: str, nh: int, payload: bytes, hlim: int = 64) -> bytes:
    """An IPv6 packet without extension headers."""
    return (struct.pack("!IHBB", 6 << 28, len(payload), nh, hlim)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + payload)


WINDOW = 64240  # the window every segment announces (no window scaling)


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"", window: int = WINDOW, options: bytes = b"") -> bytes:
    if len(options) % 4:
        options += b"\x01" * (4 - len(options) % 4)
    off = (5 + len(options) // 4) << 4
    seg = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off, flags, window, 0, 0)
    seg += options + payload
    csum = checksum(_pseudo(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    seg = _UDP.pack(sport, dport, 8 + len(payload), 0) + payload
    csum = checksum(_pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", csum) + seg[8:]


def icmp(icmp_type: int, code: int, body: bytes) -> bytes:
    msg = struct.pack("!BBH", icmp_type, code, 0) + body
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def _ip_ether(src: str, dst: str, proto: int, payload: bytes, macs=(CLIENT_MAC, SERVER_MAC)):
    """An Ethernet frame of an IPv4 packet, or IPv6 for IPv6 addresses."""
    if ":" in src:
        return ether(ipv6(src, dst, proto, payload), macs[0], macs[1], 0x86DD)
    return ether(ipv4(src, dst, proto, payload), macs[0], macs[1])


def tcp_frame(src, dst, sport, dport, seq, ack, flags, payload=b"", **kw) -> bytes:
    mac = (CLIENT_MAC, SERVER_MAC) if sport > dport else (SERVER_MAC, CLIENT_MAC)
    return _ip_ether(src, dst, 6, tcp(src, dst, sport, dport, seq, ack, flags, payload, **kw),
                     mac)


def udp_frame(src, dst, sport, dport, payload) -> bytes:
    return _ip_ether(src, dst, 17, udp(src, dst, sport, dport, payload))


def icmp_frame(src, dst, icmp_type, code, body) -> bytes:
    return ether(ipv4(src, dst, 1, icmp(icmp_type, code, body)))


@dataclass
class TcpConnection:
    """A client/server TCP connection that emits frames as it goes.

    Sequence and acknowledgement numbers follow the data, so the frames form
    a valid connection that a real stack would accept.
    """

    client: str
    server: str
    cport: int
    sport: int
    ts: float = 0.0
    gap: float = 0.0005
    mss: int = 1460
    cseq: int = field(default_factory=lambda: random.getrandbits(32))
    sseq: int = field(default_factory=lambda: random.getrandbits(32))
    frames: list = field(default_factory=list)

    def _emit(self, frame: bytes) -> None:
        self.frames.append((self.ts, frame))
        self.ts += self.gap

    def open(self) -> "TcpConnection":
        c, s = self.client, self.server
        self._emit(tcp_frame(c, s, self.cport, self.sport, self.cseq, 0, SYN,
                             options=b"\x02\x04\x05\xb4"))
        self.cseq += 1
        self._emit(tcp_frame(s, c, self.sport, self.cport, self.sseq, self.cseq, SYN | ACK,
                             options=b"\x02\x04\x05\xb4"))
        self.sseq += 1
        self._emit(tcp_frame(c, s, self.cport, self.sport, self.cseq, self.sseq, ACK))
        return self

    def send(self, data: bytes, from_client: bool = True, segment: int | None = None) -> None:
        """Send data in segments of at most ``segment`` (default MSS) bytes.

        The receiver acknowledges what it got whenever the next segment
        would pass its window (WINDOW, unscaled), as a real sender waits for
        it: a body sent whole past it is data a real receiver drops."""
        size = segment or self.mss
        unacked = 0
        for i in range(0, len(data), size):
            chunk = data[i:i + size]
            if unacked + len(chunk) > WINDOW:
                self._ack(from_client)
                unacked = 0
            unacked += len(chunk)
            if from_client:
                self._emit(tcp_frame(self.client, self.server, self.cport, self.sport,
                                     self.cseq, self.sseq, PSH | ACK, chunk))
                self.cseq += len(chunk)
            else:
                self._emit(tcp_frame(self.server, self.client, self.sport, self.cport,
                                     self.sseq, self.cseq, PSH | ACK, chunk))
                self.sseq += len(chunk)
        self._ack(from_client)  # the receiver acknowledges what it got

    def _ack(self, from_client: bool) -> None:
        """The receiver of the sender's data acknowledges all of it."""
        if from_client:
            self._emit(tcp_frame(self.server, self.client, self.sport, self.cport,
                                 self.sseq, self.cseq, ACK))
        else:
            self._emit(tcp_frame(self.client, self.server, self.cport, self.sport,
                                 self.cseq, self.sseq, ACK))

    def close(self) -> list:
        c, s = self.client, self.server
        self._emit(tcp_frame(c, s, self.cport, self.sport, self.cseq, self.sseq, FIN | ACK))
        self.cseq += 1
        self._emit(tcp_frame(s, c, self.sport, self.cport, self.sseq, self.cseq, FIN | ACK))
        self.sseq += 1
        self._emit(tcp_frame(c, s, self.cport, self.sport, self.cseq, self.sseq, ACK))
        return self.frames


def http_exchange(client: str, server: str, cport: int, request: bytes, body: bytes = b"",
                  ts: float = 0.0, port: int = 80, segment: int | None = None) -> list:
    """Frames of one HTTP/1.0 request and its response on a new connection."""
    conn = TcpConnection(client, server, cport, port, ts=ts).open()
    conn.send(request, segment=segment)
    head = (b"HTTP/1.0 200 OK\r\nServer: lab\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    conn.send(head + body, from_client=False)
    return conn.close()


def dns_query(qname: str, qid: int = 0x1234, qtype: int = 1) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in qname.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def dns_exchange(client: str, server: str, cport: int, qname: str, ts: float = 0.0) -> list:
    q = dns_query(qname, qid=cport)
    answer = (struct.pack("!HHHHHH", cport, 0x8180, 1, 1, 0, 0) + q[12:]
              + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton("192.0.2.80"))
    return [(ts, udp_frame(client, server, cport, 53, q)),
            (ts + 0.001, udp_frame(server, client, 53, cport, answer))]


def dns_txt_answer(qname: str, txt: bytes, qid: int = 0x1234) -> bytes:
    """A DNS response for a TXT record of ``qname`` whose one string is ``txt``
    (at most 255 bytes)."""
    q = dns_query(qname, qid=qid, qtype=16)
    return (struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + q[12:] + b"\xc0\x0c"
            + struct.pack("!HHIH", 16, 1, 300, len(txt) + 1) + bytes([len(txt)]) + txt)


def ping_exchange(client: str, server: str, ident: int, seq: int, size: int = 56,
                  ts: float = 0.0) -> list:
    body = struct.pack("!HH", ident, seq) + (bytes(range(256)) * (size // 256 + 1))[:size]
    return [(ts, icmp_frame(client, server, 8, 0, body)),
            (ts + 0.0002, icmp_frame(server, client, 0, 0, body))]


class PcapWriter:
    """Classic pcap, microsecond resolution, native byte order."""

    def __init__(self, path, linktype: int = 1, snaplen: int = 262144):
        self.f = open(path, "wb")
        self.f.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts: float, frame: bytes) -> None:
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        self.f.write(struct.pack("=IIII", sec, usec, len(frame), len(frame)) + frame)

    def write_all(self, frames) -> None:
        for ts, frame in frames:
            self.write(ts, frame)

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_pcap(path, frames, linktype: int = 1) -> None:
    with PcapWriter(path, linktype) as w:
        w.write_all(frames)
