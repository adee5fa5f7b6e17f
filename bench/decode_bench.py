"""Micro-benchmark of pakemon.decode.decode_frame.

Builds ~10k realistic frames with scapy (TCP with 0-1400 byte payloads,
UDP DNS queries/answers, ICMP echo) and reports ns/frame, overall and per
frame class. Run: .venv/bin/python bench/decode_bench.py [--frames N]
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys
import time

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from pakemon.decode import decode_frame  # noqa: E402


def _rand_ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def build(n: int, seed: int = 1) -> dict[str, list[bytes]]:
    rng = random.Random(seed)
    eth = Ether(src="00:11:22:33:44:55", dst="66:77:88:99:aa:bb")
    classes: dict[str, list[bytes]] = {
        "eth/ipv4/tcp": [], "eth/ipv4/udp-dns": [], "eth/ipv4/icmp": [],
        "eth/vlan/ipv4/tcp": [], "eth/ipv6/tcp": [],
    }
    for _ in range(n):
        r = rng.random()
        ip = IP(src=_rand_ip(rng), dst=_rand_ip(rng), id=rng.randrange(65536))
        if r < 0.70:
            size = rng.choice((0, 0, 0, rng.randrange(1, 1401), 1400))
            opts = [("NOP", None), ("NOP", None), ("Timestamp", (rng.randrange(2**32), 0))] \
                if rng.random() < 0.5 else []
            tcp = TCP(sport=rng.randrange(1024, 65536), dport=rng.choice((80, 443, 22, 25)),
                      seq=rng.randrange(2**32), ack=rng.randrange(2**32), flags="PA" if size else "A",
                      options=opts)
            classes["eth/ipv4/tcp"].append(bytes(eth / ip / tcp / Raw(rng.randbytes(size))))
        elif r < 0.90:
            name = f"host{rng.randrange(1000)}.example.com"
            if rng.random() < 0.5:
                dns = DNS(id=rng.randrange(65536), rd=1, qd=DNSQR(qname=name))
                udp = UDP(sport=rng.randrange(1024, 65536), dport=53)
            else:
                dns = DNS(id=rng.randrange(65536), qr=1, qd=DNSQR(qname=name),
                          an=DNSRR(rrname=name, rdata="192.0.2.1"))
                udp = UDP(sport=53, dport=rng.randrange(1024, 65536))
            classes["eth/ipv4/udp-dns"].append(bytes(eth / ip / udp / dns))
        else:
            classes["eth/ipv4/icmp"].append(
                bytes(eth / ip / ICMP(id=rng.randrange(65536), seq=rng.randrange(100)) / Raw(b"x" * 56)))
    # A few extra classes for reference (not in the "mix").
    for _ in range(max(1, n // 10)):
        tcp = TCP(sport=rng.randrange(1024, 65536), dport=443, flags="PA")
        payload = Raw(rng.randbytes(rng.randrange(0, 1401)))
        classes["eth/vlan/ipv4/tcp"].append(
            bytes(eth / Dot1Q(vlan=rng.randrange(1, 4095)) / IP(src=_rand_ip(rng), dst=_rand_ip(rng)) / tcp / payload))
        classes["eth/ipv6/tcp"].append(
            bytes(eth / IPv6(src="2001:db8::1", dst="2001:db8::2") / tcp / payload))
    return classes


def measure(frames: list[bytes], rounds: int) -> float:
    """Best-of-rounds ns/frame for decode_frame over ``frames``."""
    dec = decode_frame
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for f in frames:
            dec(1, f, 0.0)
        dt = time.perf_counter_ns() - t0
        best = min(best, dt / len(frames))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    classes = build(args.frames)
    mix = [f for k in ("eth/ipv4/tcp", "eth/ipv4/udp-dns", "eth/ipv4/icmp") for f in classes[k]]
    random.Random(2).shuffle(mix)
    for f in mix:  # sanity: everything decodes
        decode_frame(1, f)
    print(f"{'class':<22}{'frames':>8}{'ns/frame':>12}")
    print(f"{'mix (tcp/udp/icmp)':<22}{len(mix):>8}{measure(mix, args.rounds):>12.0f}")
    for name, frames in classes.items():
        if frames:
            print(f"{name:<22}{len(frames):>8}{measure(frames, args.rounds):>12.0f}")


if __name__ == "__main__":
    main()
