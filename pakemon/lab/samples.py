"""Sample captures: the demo capture and the benchmark's mixed traffic.

``python -m pakemon.lab.samples demo OUT.pcap`` writes the small capture that
``make demo`` reads; ``python -m pakemon.lab.samples mixed OUT.pcap N`` writes
N+ frames of HTTP sessions with bodies, DNS and ICMP with attacks scattered
in, for ``make bench``. Both are deterministic (seeded).
"""

from __future__ import annotations

import random
import sys

from .traffic import (TcpConnection, dns_exchange, ether, http_exchange, ipv4,
                      ping_exchange, udp_frame, write_pcap)

T0 = 979_242_051.0  # Thu Jan 11 2001, the paper's alert log day

# (description, the attack's request bytes, port) — each hits a bundled rule
HTTP_ATTACKS = [
    b"GET /cgi-bin/phf?Qalias=x%0a/bin/cat%20/etc/passwd HTTP/1.0\r\n\r\n",
    b"GET /cgi-bin/test-cgi?* HTTP/1.0\r\n\r\n",
    b"GET /_vti_pvt/administrators.pwd HTTP/1.0\r\n\r\n",
    b"GET /scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir HTTP/1.0\r\n\r\n",
    b"GET ////////////////////////////////////////// HTTP/1.0\r\n\r\n",
]


def demo_frames() -> list:
    random.seed(2001)  # TcpConnection draws initial sequence numbers
    frames = []
    ts = T0
    client, server = "194.168.10.12", "192.168.10.5"

    def add(fs):
        nonlocal ts
        frames.extend(fs)
        ts = fs[-1][0] + 0.5

    for i in range(3):  # benign web browsing
        add(http_exchange(client, server, 1024 + i, b"GET /index.html HTTP/1.0\r\nHost: "
                          b"192.168.10.5\r\n\r\n", b"<html>" + b"x" * 3000 + b"</html>", ts=ts))
    add(dns_exchange(client, "192.168.10.1", 1030, "www.keio.ac.jp", ts=ts))
    # an ARP request: the OTHER row of the frame table
    arp = bytes.fromhex("000108000604000102000000000bc2a80a0c000000000000c2a80a05")
    add([(ts, ether(arp, dst=b"\xff" * 6, ethertype=0x0806))])
    add(ping_exchange(client, server, 1, 1, ts=ts))
    # the paper's example: phf, with the request split inside the pattern
    conn = TcpConnection(client, server, 1032, 80, ts=ts).open()
    conn.send(b"GET /cgi-bi", segment=11)
    conn.send(b"n/phf?Qalias=x HTTP/1.0\r\n\r\n")
    add(conn.close())
    for i, req in enumerate(HTTP_ATTACKS[1:]):
        add(http_exchange(client, server, 1033 + i, req, b"not found", ts=ts))
    # Back Orifice ping on its UDP port
    add([(ts, udp_frame(client, "192.168.10.7", 1031, 31337, b"\xce\x63\xd1\xd2\x16\xe7\x13\xcf"))])
    # a ping of 1,200 bytes
    add(ping_exchange(client, server, 2, 1, size=1200, ts=ts))
    # SMTP pipe in MAIL FROM (sendmail era)
    conn = TcpConnection(client, server, 1040, 25, ts=ts).open()
    conn.send(b"HELO x\r\n")
    conn.send(b'MAIL FROM: "|/bin/sh -c id"\r\n')
    add(conn.close())
    # a TCP header with data offset 2 words: the paper's "invalid TCP header"
    seg = bytearray(b"\x04\x00\x00\x50" + bytes(8) + b"\x20\x02\xff\xff" + bytes(4))
    add([(ts, ether(ipv4(client, server, 6, bytes(seg))))])
    return frames


def mixed_frames(n: int, seed: int = 7, attack_every: int = 97):
    """At least ``n`` frames of mixed traffic, attacks in every ~attack_every-th session."""
    rnd = random.Random(seed)
    random.seed(seed)  # TcpConnection draws initial sequence numbers
    out = []
    ts = T0
    session = 0
    while len(out) < n:
        session += 1
        client = f"10.1.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        server = f"10.2.0.{rnd.randrange(1, 20)}"
        cport = rnd.randrange(1025, 65535)
        kind = rnd.random()
        if session % attack_every == 0:
            req = rnd.choice(HTTP_ATTACKS)
            out.extend(http_exchange(client, server, cport, req, b"nope", ts=ts))
        elif kind < 0.55:
            path = "/" + "/".join(rnd.choice(["img", "docs", "news", "a", "b"]) for _ in range(3))
            req = (f"GET {path}/{rnd.randrange(10**6)}.html HTTP/1.1\r\nHost: {server}\r\n"
                   f"User-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n").encode()
            body = rnd.randbytes(rnd.choice([200, 1500, 4000, 12000, 30000]))
            out.extend(http_exchange(client, server, cport, req, body, ts=ts))
        elif kind < 0.85:
            name = rnd.choice(["example.org", "www.keio.ac.jp", "mail.example.com", "ntp.org"])
            out.extend(dns_exchange(client, server, cport, name, ts=ts))
        else:
            out.extend(ping_exchange(client, server, cport, session & 0xFFFF, ts=ts))
        ts += 0.01
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) >= 2 and argv[0] == "demo":
        write_pcap(argv[1], demo_frames())
    elif len(argv) >= 3 and argv[0] == "mixed":
        write_pcap(argv[1], mixed_frames(int(argv[2])))
    else:
        print("usage: python -m pakemon.lab.samples demo OUT.pcap | mixed OUT.pcap N",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
