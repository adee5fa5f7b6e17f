"""Random evasion cases against the live target: an attacker's generator.

The hand-written cases of live_cases each pin one behaviour of the kernel.
These are drawn from a seed instead and mix them the way an evasion tool
would: a message cut into random segments (or a datagram into random
fragments) sent in random order, duplicated, overlapped by decoys whose
bytes differ, and each decoy made something the target may or may not
drop (a bad checksum, no ACK flag, an MD5 option, TCP options malformed or
with TCP-AO options where the kernel's MD5/AO parse looks or just past it,
an old, missing or far future timestamp, an IP option or IPv6 extension
header, an ACK of unsent
data or a too old one, a link-layer group address or a VLAN tag, an IP
length off the frame's), with RSTs and SYNs the target should ignore in
between, over IPv4 or IPv6, some segments sent as IP fragments, sequence
numbers and timestamps that may wrap inside the message, and fragments
whose ECN codepoints may not go together or with dozens of other
datagrams' fragments in between.
What the application received is the truth; the sensor (linux-current)
must have reassembled exactly that, up to the first hole (at the end of a
capture the sensor reads on past one; the server never does).

Everything stays inside the receive window and every byte of the message is
sent for real at least once, so the outcome does not depend on timing: no
hole is left for a timeout to decide, and no segment lands past the window.
Urgent pointers are left out: which urgent bytes leave the stream depends on
how far the application has read when each pointer arrives (tcp_check_urg),
a race here (the reader thread against the sender) as on any real server;
the sensor models an application that reads at once (tested on its own in
live_cases and the unit tests).

Script mode runs many seeds and prints the ones where the two differ::

    .venv/bin/python tests/integration/live_fuzz.py [--seeds N] [--start S] [--kind tcp|udp]
"""

from __future__ import annotations

import random
import string
import sys
import tempfile
from pathlib import Path

from live_cases import (CLIENT_ISN, DSTOPTS, HOP, LSRR, PADN4, ROUTING, Dgram, FragCase,
                        Piece, TcpCase, TcpClient, describe, run_case, sensor_view)

# A decoy's way of being dropped (or not) by the target; None: an ordinary
# segment, whose fate is the overlap policy's.
TCP_DECOYS = (
    None, None, None,
    {"bad_checksum": True},
    {"flags": "P"},  # no ACK
    {"options": [("NOP", None), ("NOP", None), (19, b"\x5a" * 16)]},  # MD5, no key
    {"ip_options": LSRR},
    {"ip_options": b"\x44\x08\x04\x00\x00\x00\x00\x00"},  # timestamp option, pointer 4
    {"ip_options": b"\x07\x07\x04\x00\x00\x00\x00"},  # a valid record route: taken
    {"ack_delta": 1000},  # acknowledges data the server never sent
    {"dst_mac": "ff:ff:ff:ff:ff:ff"},
    {"ttl": 1},  # taken: the host is the destination
    {"flags": "SPA"},  # a SYN with data on the connection: challenge ACK, dropped
    {"flags": "PAEC"},  # ECN flags: taken
    {"flags": "PAUE", "urg": 0},  # URG with a zero pointer
    # ACKs before the server's first byte: too old, dropped by tcp_ack. (A
    # window other than the one announced keeps them off header prediction,
    # which can queue an in-order segment before its ACK is looked at:
    # live_cases, tcp_data_with_too_old_ack.)
    {"ack_delta": -1, "window": 65534},
    {"ack_delta": -70000, "window": 65000},
    {"vlan": 5},  # tagged for a VLAN the server has no interface on: dropped
    {"vlan": 0},  # a priority tag only: taken
    {"vlan": (0,) * 6},  # priority tags, stacked: all stripped, taken
    {"vlan": ((0x9100, 0),)},  # not a VLAN tag to Linux: dropped
    {"gre": True},  # inside GRE (IPv4; the server ends no tunnel): dropped
    {"nsh": True},  # inside NSH (no service function there): dropped
    {"len_delta": 20},  # an IP length past the frame: dropped
    {"len_delta": -3},  # an IP length cutting the payload (checksum then wrong)
    {"trailer": b"#####"},  # bytes past the IP length: trimmed, the rest taken
    # options tcp_inbound_hash parses while 18 or more bytes are left
    {"raw_options": b"\x01\x01\x42\x01" + b"\x01" * 16},  # malformed there: dropped
    {"raw_options": b"\x01\x01\x01\x42\x01" + b"\x01" * 15},  # 17 left: taken
    {"raw_options": (b"\x1d\x09" + b"\x5a" * 7) * 2 + b"\x01" * 2},  # 2nd AO unseen: taken
    # (28 bytes: with a timestamp option in front, all 40)
    {"raw_options": (b"\x1d\x09" + b"\x5a" * 7) * 2 + b"\x01" * 10},  # 2nd AO seen: dropped
)
# Over IPv6 the IPv4 options become extension headers the kernel drops or takes
IPV6_FOR_IP_OPTIONS = {
    LSRR: [(ROUTING, b"\x00\x01\0\0\0\0" + bytes(16))],  # segments left: dropped
    b"\x44\x08\x04\x00\x00\x00\x00\x00": [(DSTOPTS, b"\x5e\x04\0\0\0\0")],  # discard
    b"\x07\x07\x04\x00\x00\x00\x00": [(DSTOPTS, PADN4)],  # taken
}
IPV6_EXTRA = ([(DSTOPTS, PADN4), (HOP, PADN4)],)  # Hop-by-Hop not first: dropped

# with timestamps: PAWS-old, none, and far ahead (taken; ts_recent then
# jumps if the segment is at rcv_wup, and the real ones after are PAWS-old)
TS_DECOYS = ({"tsval": 5}, {"tsval": False}, {"tsval": 0x70000000})


def _letters(rng, n, alphabet):
    return "".join(rng.choice(alphabet) for _ in range(n)).encode()


def _cuts(rng, n, most):
    """[0, n) cut into consecutive (start, end) pieces of 1..most bytes."""
    out, i = [], 0
    while i < n:
        j = min(n, i + rng.randint(1, most))
        out.append((i, j))
        i = j
    return out


def tcp_sends(seed: int) -> tuple[int, bool, list, str]:
    """(message length, (timestamps on, IPv6, SYN data), what the client
    sends in order, a summary) for one seed. A send is ("real"|"decoy", offset, bytes, the
    ``TcpClient.seg`` keywords), ("rst", offset), ("syn", offset) or
    ("fin", offset)."""
    rng = random.Random(seed)
    n = rng.randint(8, 160)
    msg = _letters(rng, n, string.ascii_lowercase)
    timestamps = rng.random() < 0.4
    kinds = TCP_DECOYS + (TS_DECOYS if timestamps else ())
    sends = []
    fragmented = rng.random() < 0.25  # some segments as IPv4 fragments

    def frag():
        if not fragmented or rng.random() < 0.5:
            return {}
        # (over IPv6 a first fragment without the whole TCP header is
        # dropped, RFC 7112: 8 and 16 make such, 24 on hold the header)
        return {"frag": (rng.choice((8, 16, 24, 32, 48)),
                         rng.choice(("in-order", "reversed", "shuffled", "dup-shuffled",
                                     "conflict-shuffled")),
                         rng.randrange(1 << 16))}

    for a, b in _cuts(rng, n, rng.choice((1, 4, 16, 64, n))):
        sends.append(("real", a, msg[a:b], frag()))
        if rng.random() < 0.15:
            sends.append(("real", a, msg[a:b], frag()))  # a duplicate
    for _ in range(rng.randint(0, 5)):
        a = rng.randrange(n)
        b = rng.randint(a + 1, min(n, a + 40))
        kw = dict(rng.choice(kinds) or {})
        if not kw.keys() & {"ip_options", "dst_mac", "vlan", "len_delta", "trailer", "gre",
                                "nsh"}:
            kw.update(frag())
        if rng.random() < 0.15:  # a FIN on the decoy: an early end of stream
            kw["flags"] = kw.get("flags", "PA") + "F"
        sends.append(("decoy", a, _letters(rng, b - a, string.ascii_uppercase + "#"), kw))
    order = rng.choice(("in-order", "shuffled", "decoys-first", "reversed"))
    if order == "shuffled":
        rng.shuffle(sends)
    elif order == "decoys-first":
        sends.sort(key=lambda s: (s[0] != "decoy", s[1]))
    elif order == "reversed":
        sends.sort(key=lambda s: -s[1])
    else:
        sends.sort(key=lambda s: s[1])
    # RSTs and SYNs the target ignores: an RST in the window past every byte
    # (so never at rcv_nxt), one far outside it, a SYN in the window
    extras = []
    if rng.random() < 0.3:
        extras.append(("rst", n + 100 + rng.randrange(1000)))
    if rng.random() < 0.2:
        extras.append(("rst", n + 3_000_000))
    if rng.random() < 0.2:
        extras.append(("syn", rng.randrange(n)))
    for ex in extras:
        sends.insert(rng.randrange(len(sends) + 1), ex)
    if timestamps and rng.random() < 0.3:
        # a pure ACK at a random place with a far-future timestamp
        extras.append(("ack", rng.randrange(n)))
        # made something the kernel may drop (or nothing)
        kw = {k: v for k, v in (rng.choice(TCP_DECOYS) or {}).items() if k not in ("flags", "urg")}
        kw.update(flags="A", tsval=0x70000000)
        sends.insert(rng.randrange(len(sends) + 1), ("decoy", extras[-1][1], b"", kw))
    fin_early = rng.random() < 0.25
    if fin_early:
        sends.insert(rng.randrange(len(sends) + 1), ("fin", n))
    if rng.random() < 0.2:
        # an RST exactly at rcv_nxt before any data, made something the
        # target drops (or, now and then, nothing: the connection is reset)
        kw = dict(rng.choice(TCP_DECOYS[3:]) if rng.random() < 0.9 else {})
        kw["flags"] = "R" if kw.pop("flags", "PA") == "P" else "RA"
        kw.pop("ack_delta", None) if kw["flags"] == "R" else None
        sends.insert(0, ("decoy", 0, b"", kw))
        extras.append(("rst", 0))
    sends.append(("fin", n))
    # IPv6 for some seeds (a separate draw: the IPv4 cases of a seed stay)
    side = random.Random(seed * 31 + 7)
    v6 = side.random() < 0.3
    # a SYN carrying a decoy (no Fast Open cookie: the server takes none of it)
    syn_data = _letters(side, side.randint(1, 20), "#") if side.random() < 0.1 else b""
    # sent between the SYN-ACK and the handshake's ACK, to the server's
    # request socket (tcp_check_req): a decoy, or a second SYN whose ISN may
    # fall in the SYN-ACK's window (then the half-open connection is gone)
    pre = []
    if side.random() < 0.2:
        if side.random() < 0.8:
            a = side.randrange(n)
            b = side.randint(a + 1, min(n, a + 40))
            kw = dict(side.choice(kinds) or {})
            kw.pop("frag", None)
            pre.append(("decoy", a, _letters(side, b - a, string.ascii_uppercase + "#"), kw))
        else:
            pre.append(("syn", side.choice((-3000, -1, 1, 500, 40000, 1 << 30))))
    if v6:
        for s in sends:
            if s[0] == "decoy" and "ip_options" in s[3]:
                s[3]["ext"] = IPV6_FOR_IP_OPTIONS[s[3].pop("ip_options")]
            elif s[0] == "decoy" and not s[3] and seed % 5 == 0:
                s[3]["ext"] = IPV6_EXTRA[0]
    doc = (f"{'IPv6, ' if v6 else ''}{n} bytes, {order}{', fragmented' if fragmented else ''}, "
           f"{sum(s[0] == 'decoy' for s in sends)} decoys, "
           f"{len(extras)} RST/SYN, timestamps {'on' if timestamps else 'off'}"
           f"{', early FIN' if fin_early else ''}")
    if syn_data:
        doc += ", data on the SYN"
    if pre:
        doc += f", {'a SYN' if pre[0][0] == 'syn' else 'a decoy'} inside the handshake"
    # Where the numbers start (a third draw, so the other two stay): now and
    # then the sequence numbers wrap inside the message, or the timestamps
    # do (the decoys' timestamps keep their place relative to the first)
    nums = random.Random(seed * 57 + 11)
    isn = CLIENT_ISN
    r = nums.random()
    if r < 0.25:
        isn = 0xFFFFFFFF - nums.randrange(n + 40)
    elif r < 0.5:
        isn = nums.randrange(1 << 32)
    tsval = 1000
    if timestamps and nums.random() < 0.3:
        tsval = 0xFFFFFFFF - nums.randrange(60)
        for s in sends + pre:
            if s[0] == "decoy" and isinstance(s[3].get("tsval"), int) \
                    and not isinstance(s[3]["tsval"], bool):
                s[3]["tsval"] = (s[3]["tsval"] - 1000 + tsval) & 0xFFFFFFFF
    if isn != CLIENT_ISN:
        doc += f", ISN {isn:#x}"
    if tsval != 1000:
        doc += f", timestamps from {tsval:#x}"
    return n, (timestamps, v6, syn_data, pre, isn, tsval), sends, doc


def sends_case(name: str, doc: str, sends: list, how: tuple) -> TcpCase:
    """A TcpCase sending ``sends``; ``how``: (timestamps, IPv6, SYN data,
    what is sent before the handshake's ACK, the client's ISN and first
    timestamp)."""
    timestamps, v6, syn_data, pre, isn, tsval = how

    def send(c: TcpClient, sends):
        for s in sends:
            if s[0] == "rst":
                c.seg(s[1], flags="R")
            elif s[0] == "syn":
                c._send(c.seq(s[1]), "S")
            elif s[0] == "fin":
                c.fin(s[1])
            else:
                _kind, off, data, kw = s
                kw = dict(kw)
                flags = kw.pop("flags", "PA")
                c.seg(off, data, flags=flags, **kw)
    return TcpCase(name, doc, lambda c: send(c, sends), timestamps=timestamps,
                   eof_timeout=1.0, v6=v6, syn_data=syn_data,
                   before_ack=(lambda c: send(c, pre)) if pre else None, isn=isn, tsval=tsval)


def tcp_case(seed: int) -> TcpCase:
    _n, how, sends, doc = tcp_sends(seed)
    return sends_case(f"fuzz_tcp_{seed}", f"seed {seed}: {doc}", sends, how)


def frag_case(seed: int) -> FragCase:
    rng = random.Random(seed)
    v6 = rng.random() < 0.4
    # ECN codepoints drawn per fragment (a draw apart, so the others stay):
    # Not-ECT mixed with ECT or CE makes Linux drop the datagram
    # (ip_frag_ecn_table)
    marks = random.Random(seed * 19 + 3)
    codes = None
    if marks.random() < 0.2:
        codes = marks.choice(((0, 3), (0, 2), (1, 3), (1, 2), (0, 1, 2, 3)))
    between = None
    if marks.random() < 0.15:
        between = (marks.randint(1, 6), marks.randint(55, 75))

    def build(d: Dgram) -> list:
        r = random.Random(seed * 7 + 1)
        size = d.size
        pieces = []
        i = 0
        while i < size:  # real fragments: multiples of 8 but the last
            j = min(size, i + 8 * r.randint(1, 4))
            pieces.append(d.p(i, j))
            i = j
        if r.random() < 0.3:
            pieces += [r.choice(pieces) for _ in range(r.randint(1, 3))]  # duplicates
        for _ in range(r.choice((0, 0, 1, 2))):
            a = 8 * r.randrange(size // 8)
            b = min(size, a + 8 * r.randint(1, 3))
            p = d.p(a, b, b"#" if r.random() < 0.7 else None)
            if not v6 and r.random() < 0.4:  # dropped before reassembly
                if r.random() < 0.5:
                    p.ip_options = LSRR
                else:
                    p.bad_checksum = True
            pieces.append(p)
        if codes:
            marks = random.Random(seed * 19 + 4)
            for pc in pieces:
                pc.ecn = marks.choice(codes)
        if between:
            # first fragments of other datagrams, around ipfrag_max_dist (64):
            # past it the kernel resets the IPv4 queue that waited that long
            at, k = between
            at = min(at, len(pieces))
            pieces[at:at] = [Piece(0, b"########", True, ident=0x3000 + i) for i in range(k)]
        order = r.choice(("in-order", "shuffled", "reversed", "decoys-first"))
        if order == "shuffled":
            r.shuffle(pieces)
        elif order == "reversed":
            pieces.reverse()
        elif order == "decoys-first":
            pieces.sort(key=lambda p: b"#" not in p.data)
        return pieces

    # IPv6: now and then a Destination Options header before UDP, so a short
    # first fragment lacks the upper-layer header (RFC 7112: dropped)
    dest_opts = v6 and random.Random(seed * 13 + 5).random() < 0.3
    return FragCase(f"fuzz_{'ipv6' if v6 else 'ipv4'}_frag_{seed}", v6,
                    f"seed {seed}{', destination options' if dest_opts else ''}"
                    f"{f', ECN codepoints {codes}' if codes else ''}"
                    f"{f', {between[1]} other datagrams after piece {between[0]}' if between else ''}",
                    build,
                    checksum=v6, dest_opts=dest_opts)


def check(lab, case, pcap: Path):
    """(same, what the kernel gave, what the sensor reassembled)."""
    res = run_case(lab, case, pcap)
    if res.frames_seen_from_client != res.frames_sent:
        raise RuntimeError(f"{case.name}: sent {res.frames_sent} frames, capture saw "
                           f"{res.frames_seen_from_client}")
    sv = sensor_view(case, res.pcap)
    return sv == res.app, res, sv


def main(argv=None) -> int:
    import argparse

    from live_netns import Lab, why_unavailable

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--start", type=int, default=1)
    ap.add_argument("--kind", choices=("tcp", "udp", "both"), default="both")
    ap.add_argument("--keep", metavar="DIR", help="keep the captures of differing seeds")
    args = ap.parse_args(argv)
    reason = why_unavailable()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    out = Path(args.keep or tempfile.mkdtemp(prefix="pk-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    bad = 0
    for seed in range(args.start, args.start + args.seeds):
        cases = []
        if args.kind in ("tcp", "both"):
            cases.append(tcp_case(seed))
        if args.kind in ("udp", "both"):
            cases.append(frag_case(seed))
        for case in cases:
            pcap = out / f"{case.name}.pcap"
            with Lab() as lab:
                same, res, sv = check(lab, case, pcap)
            if same:
                pcap.unlink(missing_ok=True)
                continue
            bad += 1
            print(f"DIFFERENT {case.name}: {case.doc}")
            print(f"    kernel: {describe(case, res)}")
            print(f"    sensor: {sv!r}")
    print(f"{bad} differing case(s)" + (f"; captures in {out}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
