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

from ..events import eve_text

MAX_JUMPS = 64  # compression pointers followed per name
MAX_NAME = 1025  # rendered bytes kept per name
MAX_RECORDS = 256  # questions + records read per message

# RR types whose RDATA is a single domain name (may use compression)
_NAME_RDATA = {2, 5, 12, 39}  # NS, CNAME, PTR, DNAME

_HDR = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_SOA = struct.Struct("!IIIII")


class DnsMessage:
    """One parsed DNS message.

    ``queries``: list of (name bytes, qtype); ``answers`` and
    ``authorities``: lists of (name bytes, rrtype, ttl, rdata) for those
    sections, where rdata is the rendered name for NS/CNAME/PTR/DNAME and
    MX (its preference left out, as Suricata keeps it), the list of
    character-strings for TXT, (mname, rname, serial, refresh, retry,
    expire, minimum) for SOA, (priority, weight, port, target) for SRV,
    (algorithm, type, fingerprint) for SSHFP, None where those do not
    parse, else the raw RDATA bytes (the 4/16 address bytes of A/AAAA).
    ``flags`` is the raw 16-bit flags word; ``is_response``, ``opcode`` and
    ``rcode`` come from it.
    ``malformed`` is set when something past the header could not be read
    (then the lists hold what was read before it).
    """

    __slots__ = ("id", "flags", "is_response", "opcode", "rcode", "qdcount", "ancount",
                 "nscount", "arcount", "queries", "answers", "authorities", "malformed")

    def __init__(self, ident: int, flags: int, counts: tuple[int, int, int, int]):
        self.id = ident
        self.flags = flags
        self.is_response = bool(flags & 0x8000)
        self.opcode = (flags >> 11) & 0xF
        self.rcode = flags & 0xF
        self.qdcount, self.ancount, self.nscount, self.arcount = counts
        self.queries: list[tuple[bytes, int]] = []
        self.answers: list[tuple] = []
        self.authorities: list[tuple] = []
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
    question; a response's ``answer``: its header, first question, and
    both the ``answers`` and the ``grouped`` form of its answer section
    with the ``authorities``, all record types logged)."""
    if not msg.is_response:
        z = {"z": True} if msg.flags & 0x0040 else {}
        return {"query": [{"type": "query", "id": msg.id, "rrname": eve_text(n),
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
    ans["rrname"] = eve_text(n)
    ans["rrtype"] = RRTYPE_NAMES.get(t, str(t))
    ans["rcode"] = RCODE_NAMES.get(msg.rcode, str(msg.rcode))
    if msg.answers:
        grouped: dict = {}
        for _name, rrtype, _ttl, data in msg.answers:
            for v in _rdata_values(rrtype, data):
                grouped.setdefault(RRTYPE_NAMES.get(rrtype, str(rrtype)), []).append(v)
        ans["answers"] = [d for rr in msg.answers for d in _details(rr)]
        ans["grouped"] = grouped
    if msg.authorities:
        ans["authorities"] = [d for rr in msg.authorities for d in _details(rr)]
    return {"answer": ans}


def _addr(b: bytes) -> str:
    # dns_print_addr: an IPv6 address as eight groups of four digits
    if len(b) == 4:
        return "%d.%d.%d.%d" % tuple(b)
    if len(b) == 16:
        return ":".join(b[i:i + 2].hex() for i in range(0, 16, 2))
    return ""


def _rdata_values(rrtype: int, data) -> list:
    """What Suricata logs of a record's data: strings for addresses and
    names (each TXT string apart), objects for SOA, SRV and SSHFP; nothing
    for the types it does not read (DNAME among them) or data that did not
    parse."""
    if data is None:
        return []
    if rrtype in (1, 28):
        return [_addr(data)]
    if rrtype in (2, 5, 12, 15, 10):  # NS, CNAME, PTR, MX; NULL's raw bytes
        return [eve_text(data)]
    if rrtype == 16:
        return [eve_text(x) for x in data]
    if rrtype == 6:
        mname, rname, serial, refresh, retry, expire, minimum = data
        return [{"mname": eve_text(mname), "rname": eve_text(rname), "serial": serial,
                 "refresh": refresh, "retry": retry, "expire": expire, "minimum": minimum}]
    if rrtype == 33:
        prio, weight, port, target = data
        return [{"priority": prio, "weight": weight, "port": port, "name": eve_text(target)}]
    if rrtype == 44:
        algo, fptype, fp = data
        return [{"fingerprint": ":".join("%02x" % c for c in fp), "algo": algo,
                 "type": fptype}]
    return []


_RDATA_KEYS = {6: "soa", 33: "srv", 44: "sshfp"}


def _details(rr: tuple) -> list[dict]:
    """One record as entries of ``answers``/``authorities``
    (dns_log_json_answer_detail): a TXT record gives one per string."""
    name, rrtype, ttl, data = rr
    head = {"rrname": eve_text(name), "rrtype": RRTYPE_NAMES.get(rrtype, str(rrtype)),
            "ttl": ttl}
    values = _rdata_values(rrtype, data)
    if not values:
        return [head]
    key = _RDATA_KEYS.get(rrtype, "rdata")
    return [{**head, key: v} for v in values]


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


def _rdata_name(msg: bytes, pos: int, end: int) -> bytes | None:
    """A name that must end inside the record's RDATA (as Suricata reads
    it, from the RDATA alone with the message for pointers)."""
    r = read_name(msg, pos)
    return r[0] if r is not None and r[1] <= end else None


def _rdata(msg: bytes, rrtype: int, pos: int, end: int):
    """A record's RDATA in the shape Suricata's parser gives it
    (dns_parse_rdata): see ``DnsMessage``. None when it does not parse."""
    if rrtype in _NAME_RDATA:
        return _rdata_name(msg, pos, end)
    if rrtype == 15:  # MX: the preference, then a name
        return _rdata_name(msg, pos + 2, end) if end - pos >= 2 else None
    if rrtype == 16:  # TXT: character-strings
        strings = []
        while pos < end:
            k = msg[pos]
            if pos + 1 + k > end:
                return strings or None
            strings.append(msg[pos + 1:pos + 1 + k])
            pos += 1 + k
        return strings
    if rrtype == 6:  # SOA
        r = read_name(msg, pos)
        r2 = read_name(msg, r[1]) if r is not None else None
        if r2 is None or r2[1] + 20 > end:
            return None
        return (r[0], r2[0]) + _SOA.unpack_from(msg, r2[1])
    if rrtype == 33:  # SRV: priority, weight, port, target
        if end - pos < 7:
            return None
        target = _rdata_name(msg, pos + 6, end)
        if target is None:
            return None
        return (msg[pos] << 8 | msg[pos + 1], msg[pos + 2] << 8 | msg[pos + 3],
                msg[pos + 4] << 8 | msg[pos + 5], target)
    if rrtype == 44:  # SSHFP: algorithm, fingerprint type, fingerprint
        return (msg[pos], msg[pos + 1], msg[pos + 2:end]) if end - pos >= 2 else None
    return msg[pos:end]


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
    for records in (out.answers, out.authorities):
        for _ in range(an if records is out.answers else ns):
            if budget <= 0:
                break
            budget -= 1
            r = read_name(msg, pos)
            if r is None or r[1] + 10 > n:
                out.malformed = True
                return out
            name, pos = r
            rrtype, _cls, ttl, rdlen = _RR.unpack_from(msg, pos)
            pos += 10
            if pos + rdlen > n:
                out.malformed = True
                return out
            records.append((name, rrtype, ttl, _rdata(msg, rrtype, pos, pos + rdlen)))
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
