"""DNS message parsing for ``dns.query`` (and cheap answer names).

``parse_dns(msg) -> DnsMessage | None`` reads one DNS message (a UDP
payload, or one message of a TCP stream as ``DnsTcpFramer`` cuts them).
It returns None only when the 12-byte header is missing; a message cut
short or malformed past the header keeps what was read before the damage
and says so (``truncated``, ``malformed``), because a query name is worth
matching even when a crafted answer section behind it is broken.

Names are rendered as Suricata renders ``dns.query``: labels joined with
``.``, no trailing dot, label bytes as they are (no escaping: a ``.`` or a
NUL inside a label stays a raw byte, exactly what rules match), the root
name as ``b""``. Compression pointers are followed with a bound on the
number of jumps (``MAX_JUMPS``), so a pointer loop ends as a malformed
name instead of a hang; a rendered name is capped at ``MAX_NAME`` bytes
(a legal name is at most 253, crafted ones chaining pointers could grow
quadratically).

``DnsTcpFramer().feed(data) -> list[bytes]`` splits a TCP stream into its
2-byte-length-prefixed messages (RFC 1035 4.2.2). Its buffer is compacted
once per ``feed`` and then holds at most one partial message, so many small
segments cost linear time.
"""

from __future__ import annotations

import struct

MAX_JUMPS = 64  # compression pointers followed per name
MAX_NAME = 1025  # rendered bytes kept per name
MAX_RECORDS = 256  # questions + records read per message

# RR types whose RDATA is a single domain name (may use compression)
_NAME_RDATA = {2, 5, 12, 39}  # NS, CNAME, PTR, DNAME

_HDR = struct.Struct("!HHHHHH")


class DnsMessage:
    """One parsed DNS message.

    ``queries``: list of (name bytes, qtype); ``answers``: list of
    (name bytes, rrtype, rdata) for the answer section where rdata is the
    rendered name for NS/CNAME/PTR/DNAME, the 4/16 address bytes for
    A/AAAA, else the raw RDATA bytes. ``flags`` is the raw 16-bit flags
    word; ``is_response``, ``opcode`` and ``rcode`` come from it.
    ``malformed`` is set when something past the header could not be read
    (then the lists hold what was read before it).
    """

    __slots__ = ("id", "flags", "is_response", "opcode", "rcode", "qdcount", "ancount",
                 "nscount", "arcount", "queries", "answers", "malformed")

    def __init__(self, ident: int, flags: int, counts: tuple[int, int, int, int]):
        self.id = ident
        self.flags = flags
        self.is_response = bool(flags & 0x8000)
        self.opcode = (flags >> 11) & 0xF
        self.rcode = flags & 0xF
        self.qdcount, self.ancount, self.nscount, self.arcount = counts
        self.queries: list[tuple[bytes, int]] = []
        self.answers: list[tuple[bytes, int, bytes]] = []
        self.malformed = False

    def __repr__(self) -> str:
        return (f"DnsMessage(id={self.id}, response={self.is_response}, "
                f"queries={self.queries!r}, answers={len(self.answers)})")


# Suricata's rrtype and rcode names (dns_rrtype_string, dns_rcode_string);
# others are written as their number, as it does.
RRTYPE_NAMES = {1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG",
                9: "MR", 10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX",
                16: "TXT", 17: "RP", 18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP",
                23: "NSAPPTR", 24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA",
                29: "LOC", 30: "NXT", 33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX",
                37: "CERT", 38: "A6", 39: "DNAME", 41: "OPT", 42: "APL", 43: "DS",
                44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
                49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 55: "HIP", 59: "CDS",
                60: "CDNSKEY", 65: "HTTPS", 99: "SPF", 249: "TKEY", 250: "TSIG", 251: "IXFR",
                252: "AXFR", 254: "MAILA", 255: "ANY", 256: "URI"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
               5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
               10: "NOTZONE"}


def eve_object(msg: DnsMessage) -> dict:
    """The ``dns`` object of an EVE alert on this message, as Suricata 7
    writes it (AlertJsonDns: a request's ``query`` list, one entry per
    question, and a response's ``answer`` header with its first question).
    Names are written byte for byte (latin-1), as its JSON writer escapes
    what is not ASCII."""
    if not msg.is_response:
        z = {"z": True} if msg.flags & 0x0040 else {}
        return {"query": [{"type": "query", "id": msg.id, "rrname": n.decode("latin-1"),
                           "rrtype": RRTYPE_NAMES.get(t, str(t)), **z, "opcode": msg.opcode}
                          for n, t in msg.queries]} if msg.queries else {}
    if not msg.queries:
        return {}  # (Suricata logs no answer without a question)
    f = msg.flags
    ans: dict = {"version": 2, "type": "answer", "id": msg.id, "flags": "%x" % f, "qr": True}
    for bit, key in ((0x0400, "aa"), (0x0200, "tc"), (0x0100, "rd"), (0x0080, "ra"),
                     (0x0040, "z")):
        if f & bit:
            ans[key] = True
    ans["opcode"] = msg.opcode
    n, t = msg.queries[0]
    ans["rrname"] = n.decode("latin-1")
    ans["rrtype"] = RRTYPE_NAMES.get(t, str(t))
    ans["rcode"] = RCODE_NAMES.get(msg.rcode, str(msg.rcode))
    return {"answer": ans}


def read_name(msg: bytes, pos: int) -> tuple[bytes, int] | None:
    """The name at ``pos`` and the offset just past it in the message.

    None when the name runs off the end, uses a reserved label type, or
    loops (more than ``MAX_JUMPS`` pointers).
    """
    labels: list[bytes] = []
    size = 0
    end = -1  # where the name ends in the original position (before a jump)
    jumps = 0
    n = len(msg)
    while True:
        if pos >= n:
            return None
        length = msg[pos]
        if length == 0:
            pos += 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                return None
            jumps += 1
            if jumps > MAX_JUMPS:
                return None
            if end < 0:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | msg[pos + 1]
            continue
        if kind:
            return None  # 0x40 / 0x80: extended label types, obsolete
        if pos + 1 + length > n:
            return None
        if size < MAX_NAME:
            labels.append(msg[pos + 1:pos + 1 + length])
            size += length + 1
        pos += 1 + length
    name = b".".join(labels)
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME]
    return name, (end if end >= 0 else pos)


def parse_dns(msg: bytes) -> DnsMessage | None:
    """Parse one DNS message; None when shorter than a DNS header.

    Never raises on bad input (see the module docstring for partial
    results).
    """
    if not isinstance(msg, (bytes, bytearray, memoryview)) or len(msg) < 12:
        return None
    msg = bytes(msg)
    ident, flags, qd, an, ns, ar = _HDR.unpack_from(msg)
    out = DnsMessage(ident, flags, (qd, an, ns, ar))
    pos = 12
    n = len(msg)
    budget = MAX_RECORDS
    for _ in range(qd):
        if budget <= 0:
            break
        budget -= 1
        r = read_name(msg, pos)
        if r is None or r[1] + 4 > n:
            out.malformed = True
            return out
        name, pos = r
        qtype = (msg[pos] << 8) | msg[pos + 1]
        pos += 4
        out.queries.append((name, qtype))
    for _ in range(an):
        if budget <= 0:
            break
        budget -= 1
        r = read_name(msg, pos)
        if r is None or r[1] + 10 > n:
            out.malformed = True
            return out
        name, pos = r
        rrtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", msg, pos)
        pos += 10
        if pos + rdlen > n:
            out.malformed = True
            return out
        rdata = msg[pos:pos + rdlen]
        if rrtype in _NAME_RDATA:
            rn = read_name(msg, pos)
            if rn is not None:
                rdata = rn[0]
        out.answers.append((name, rrtype, rdata))
        pos += rdlen
    return out


class DnsTcpFramer:
    """Cut a DNS-over-TCP byte stream into messages.

    ``feed(data)`` returns the messages completed by ``data`` (without
    their length prefix). A zero-length message is skipped (counted in
    ``empty``). ``gap()`` drops the partial message: after lost bytes the
    next length prefix cannot be found reliably, so framing stops
    (``lost`` set) rather than read garbage lengths.
    """

    __slots__ = ("_buf", "messages", "empty", "lost")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.messages = 0
        self.empty = 0
        self.lost = False

    def gap(self) -> None:
        self._buf = bytearray()
        self.lost = True

    def feed(self, data: bytes) -> list[bytes]:
        if self.lost or not data:
            return []
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        out: list[bytes] = []
        while n - pos >= 2:
            length = (buf[pos] << 8) | buf[pos + 1]
            if n - pos - 2 < length:
                break
            if length == 0:
                self.empty += 1
            else:
                out.append(bytes(buf[pos + 2:pos + 2 + length]))
                self.messages += 1
            pos += 2 + length
        # Compact once per feed: what stays is at most one partial message.
        if pos:
            del buf[:pos]
        return out
