"""Build real-looking Ethernet/IPv4 traffic and write it as pcap.

Whole connections and exchanges (TCP with sequence numbers that follow the
data, HTTP, DNS, ping) made of the packets ``pakemon.respond.packet``
builds, re-exported here for the tests and benches (``ipv4``, ``tcp``, ...).
Checksums are real so that tcpreplay'd captures are accepted by a live stack.
"""

from __future__ import annotations

import random
import socket
import struct
from dataclasses import dataclass, field

from pakemon.respond.packet import WINDOW, icmp, ipv4, ipv6, tcp, udp
from pakemon.respond.packet import ether as _ether

__all__ = ["ACK", "CLIENT_MAC", "FIN", "PSH", "RST", "SERVER_MAC", "SYN", "WINDOW",
           "PcapWriter", "TcpConnection", "dns_exchange", "dns_query", "dns_txt_answer",
           "ether", "http_exchange", "icmp", "icmp_frame", "ipv4", "ipv6", "ping_exchange",
           "tcp", "tcp_frame", "udp", "udp_frame", "write_pcap"]

CLIENT_MAC = bytes.fromhex("020000000001")
SERVER_MAC = bytes.fromhex("020000000002")

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def ether(payload: bytes, src=CLIENT_MAC, dst=SERVER_MAC, ethertype=0x0800) -> bytes:
    return _ether(payload, src, dst, ethertype)


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
