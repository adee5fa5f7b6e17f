"""Properties of the whole pipeline (decode -> defrag -> stream -> detect)
with the bundled rules: the Pakemon claim for consistent traffic.

(a) Any segmentation, reordering and duplication of a client->server HTTP
    request stream, with consistent bytes, gives the alerts of the unsplit
    stream, and the recorded stream is the original bytes.
(b) The same when the segments are also IP-fragmented at any 8-byte cut
    points and the fragments come in any order, with exact duplicates
    (linux-current discards a datagram whose fragments overlap partially,
    so only exact duplicates and non-overlapping cuts are consistent).
(c) Junk from a third host (random TCP flags, numbers, options and
    payloads, random fragments, random bytes) never raises and changes
    nothing for the connection it is mixed into.
"""

from __future__ import annotations

import random
import struct

from helpers import BUNDLED_RULES, rules_from
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pakemon.config import Config
from pakemon.detect.ruletree import RuleTree
from pakemon.events import Alert
from pakemon.lab.traffic import ACK, FIN, PSH, SYN, ether, ipv4, tcp, tcp_frame, udp
from pakemon.pipeline import Pipeline

TREE = RuleTree(rules_from(BUNDLED_RULES.read_text()))
C, S, X = "192.0.2.10", "198.51.100.80", "203.0.113.66"  # client, server, third host
CPORT, SPORT = 40123, 80
PA = PSH | ACK
M32 = 0xFFFFFFFF
MSS = b"\x02\x04\x05\xb4"
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

PATHS = [
    b"/cgi-bin/phf?Qalias=x%0a/bin/cat%20/etc/passwd",
    b"/index.html",
    b"/cgi-bin/test-cgi?*",
    b"/scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir",
    b"/%63gi-bin/ph%66",
    b"/a/./b/../../cgi-bin/jj",
    b"/wwwboard/passwd.txt",
    b"/images/logo.gif",
    # rules with a regex: IIS-Translate-f-source's matches the request line
    # and waits for its literal, the header below (a regex before its
    # literal); CGI-formmail-cmd's comes after its literal
    b"/default.asp\\",
    b"/cgi-bin/formmail?recipient=x%0aid",
]
# extra header lines (a request's literal that may come after its regex)
HEADERS = [b"", b"", b"Translate: f\r\n", b"User-Agent: sioux\r\n"]


@st.composite
def requests(draw):
    """One to three pipelined HTTP requests, attacks and benign ones."""
    out = b""
    for _ in range(draw(st.integers(1, 3))):
        method = draw(st.sampled_from([b"GET", b"POST", b"HEAD"]))
        path = draw(st.sampled_from(PATHS))
        junk = draw(st.binary(max_size=30)).replace(b"\r", b"").replace(b"\n", b"")
        hdr = draw(st.sampled_from(HEADERS))
        out += (method + b" " + path + b" HTTP/1.0\r\nHost: lab\r\n" + hdr + b"X-J: " + junk
                + b"\r\n\r\n")
    return out


class Conn:
    """Frames of one client->server connection, by stream offset."""

    def __init__(self, cisn, sisn):
        self.cisn, self.sisn = cisn, sisn
        self.frames = []
        self.ident = 100

    def cseq(self, k):
        return (self.cisn + 1 + k) & M32

    def add(self, frame):
        self.frames.append(frame)

    def handshake(self):
        self.add(tcp_frame(C, S, CPORT, SPORT, self.cisn, 0, SYN, options=MSS))
        self.add(tcp_frame(S, C, SPORT, CPORT, self.sisn, self.cisn + 1, SYN | ACK,
                           options=MSS))
        self.add(tcp_frame(C, S, CPORT, SPORT, self.cseq(0), self.sisn + 1, ACK))
        return self

    def segment(self, data, a, b, fin):
        """The client's TCP segment [a, b) as an IP payload."""
        flags = PA | FIN if fin and b == len(data) else PA
        return tcp(C, S, CPORT, SPORT, self.cseq(a), self.sisn + 1, flags, data[a:b])

    def server_ack(self, k):
        self.add(tcp_frame(S, C, SPORT, CPORT, self.sisn + 1, self.cseq(k), ACK))


def run(frames):
    """(sorted (rule, sport, dport) of every alert, recorded client stream)."""
    pipe = Pipeline(TREE, Config(), record=True)
    events = []
    for i, f in enumerate(frames):
        events += pipe.feed(1.0 + i * 0.001, f)
    events += pipe.flush()
    alerts = sorted((e.rule.name, e.src_port, e.dst_port) for e in events
                    if isinstance(e, Alert) and e.src_ip == C)
    return alerts, pipe.recorded_streams.get((C, CPORT, S, SPORT), b"")


def reference(data, cisn, sisn, fin):
    """The unsplit stream: one segment, in order."""
    c = Conn(cisn, sisn).handshake()
    c.add(ether(ipv4(C, S, 6, c.segment(data, 0, len(data), fin))))
    return run(c.frames)


def read_prefix(got, n):
    """How far a receiver holding the byte set ``got`` has read in order."""
    k = 0
    while k < n and k in got:
        k += 1
    return k


# ---------------------------------------------------- (a) segmentation


@st.composite
def segmented(draw):
    data = draw(requests())
    n = len(data)
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=16))))
    bounds = [0, *cuts, n]
    ranges = list(zip(bounds, bounds[1:]))
    # retransmissions of any extent (consistent bytes) and exact duplicates
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n)), max_size=6))
    ranges += [(a, min(n, a + ln)) for a, ln in extra]
    ranges += draw(st.lists(st.sampled_from(ranges), max_size=4))
    order = draw(st.permutations(ranges))
    isns = draw(st.tuples(st.integers(0, M32), st.integers(0, M32)))
    return data, order, isns, draw(st.booleans()), draw(st.booleans())


@SETTINGS
@given(segmented())
def test_any_segmentation_order_and_duplication_gives_the_unsplit_alerts(case):
    data, order, (cisn, sisn), fin, acks = case
    c = Conn(cisn, sisn).handshake()
    got = set()
    for a, b in order:
        c.add(ether(ipv4(C, S, 6, c.segment(data, a, b, fin))))
        if acks:  # the server acknowledges what it has read, as it would
            got.update(range(a, b))
            c.server_ack(read_prefix(got, len(data)))
    alerts, stream = run(c.frames)
    assert stream == data
    assert alerts == reference(data, cisn, sisn, fin)[0]


# -------------------------------------------------- (b) IP fragmentation


@st.composite
def fragmented(draw):
    data = draw(requests())
    n = len(data)
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=3))))
    bounds = [0, *cuts, n]
    ranges = list(zip(bounds, bounds[1:]))
    ranges += draw(st.lists(st.sampled_from(ranges), max_size=2))  # retransmissions
    isns = draw(st.tuples(st.integers(0, M32), st.integers(0, M32)))
    fin = draw(st.booleans())
    conn = Conn(*isns)
    frags = []
    for ident, (a, b) in enumerate(ranges, 1000):
        seg = conn.segment(data, a, b, fin)
        points = draw(st.lists(st.integers(1, (len(seg) - 1) // 8), max_size=4))
        offs = sorted({p * 8 for p in points})
        edges = [0, *offs, len(seg)]
        for lo, hi in zip(edges, edges[1:]):
            frags.append(ether(ipv4(C, S, 6, seg[lo:hi], ident=ident, df=False,
                                    frag_offset=lo, mf=hi < len(seg))))
    frags += draw(st.lists(st.sampled_from(frags), max_size=6))  # exact duplicates
    order = draw(st.permutations(frags))
    return data, isns, fin, order


@SETTINGS
@given(fragmented())
def test_any_ip_fragmentation_order_and_exact_duplicates_gives_the_unsplit_alerts(case):
    data, (cisn, sisn), fin, frags = case
    c = Conn(cisn, sisn).handshake()
    c.frames += frags
    alerts, stream = run(c.frames)
    assert stream == data
    assert alerts == reference(data, cisn, sisn, fin)[0]


# ------------------------------------------------- (c) third-host junk


@st.composite
def junk_frame(draw):
    kind = draw(st.sampled_from(["tcp", "tcp", "tcp", "frag", "udp", "bytes"]))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    sport = rnd.choice([CPORT, SPORT, rnd.randrange(65536)])
    dport = rnd.choice([SPORT, CPORT, rnd.randrange(65536)])
    dst = rnd.choice([S, C])
    payload = rnd.randbytes(rnd.choice([0, 0, 1, 7, 40]))
    if kind == "bytes":
        return rnd.randbytes(rnd.randrange(0, 90))
    if kind == "udp":
        return ether(ipv4(X, dst, 17, udp(X, dst, sport, dport, payload)))
    seg = tcp(X, dst, sport, dport, rnd.randrange(2**32), rnd.randrange(2**32),
              rnd.randrange(256), payload, window=rnd.randrange(65536),
              options=rnd.randbytes(rnd.choice([0, 0, 3, 12, 40])))
    if rnd.random() < 0.2:  # a wrong checksum
        seg = seg[:16] + struct.pack("!H", rnd.randrange(65536)) + seg[18:]
    if kind == "frag":
        lo = rnd.randrange(0, 4) * 8
        return ether(ipv4(X, dst, 6, seg[lo:lo + rnd.randrange(1, 40)],
                          ident=rnd.randrange(65536), df=False, frag_offset=lo,
                          mf=rnd.random() < 0.5))
    return ether(ipv4(X, dst, 6, seg, ttl=rnd.randrange(256)))


REQUEST = (b"GET /cgi-bin/phf?Qalias=x%0a/bin/cat%20/etc/passwd HTTP/1.0\r\n"
           b"Host: lab\r\n\r\n")


def main_connection():
    c = Conn(0x01020304, 0x0A0B0C0D).handshake()
    for a in range(0, len(REQUEST), 9):
        b = min(len(REQUEST), a + 9)
        c.add(ether(ipv4(C, S, 6, c.segment(REQUEST, a, b, True))))
    c.server_ack(len(REQUEST) + 1)
    return c.frames


MAIN = main_connection()
MAIN_ALERTS = run(MAIN)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(MAIN)), junk_frame()), max_size=40))
def test_third_host_junk_never_raises_and_changes_nothing(junk):
    frames = list(MAIN)
    for at, frame in sorted(junk, key=lambda j: -j[0]):
        frames.insert(at, frame)
    assert run(frames) == MAIN_ALERTS
    assert MAIN_ALERTS[0] and MAIN_ALERTS[1] == REQUEST
