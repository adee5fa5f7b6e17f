"""Traffic generators for the Suricata engine's differential tests and fuzz.

Each gives frames (timestamp, Ethernet frame) for one TCP connection whose
bytes are cut, ordered and acknowledged at random, next to rules whose
alerts must not depend on that: tests/unit/detect/test_sigengine.py runs a
few seeds of each, tests/integration/sig_diff.py runs many (script mode).
"""

from __future__ import annotations

import random

from pakemon.lab.traffic import ACK, PSH, RST, SYN, tcp_frame

def _chunked(body: bytes, size: int) -> bytes:
    """``body`` in chunks of ``size`` bytes, with the last, empty chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def _response_bytes(code: bytes, body: bytes, chunk: int | None, coding: bytes = b"") -> bytes:
    """A response with ``body`` framed by length, or chunked in ``chunk``-byte
    pieces; ``coding`` ("gzip" or "deflate"): the body compressed so first."""
    head = b"HTTP/1.1 " + code + b"\r\n"
    if coding:
        import zlib
        z = zlib.compressobj(6, zlib.DEFLATED, 31 if coding == b"gzip" else 15)
        body = z.compress(body) + z.flush()
        head += b"Content-Encoding: " + coding + b"\r\n"
    if chunk:
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(body, chunk)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class _Frames(list):
    """The frames of one test connection, 10.0.0.1:cport to 10.0.0.2:sport
    (80 unless given), a millisecond apart."""

    def __init__(self, cport: int, sport: int = 80):
        super().__init__()
        self.cport = cport
        self.sport = sport
        self.ts = 1.0

    def add(self, from_client: bool, seq: int, ack: int, flags: int, data: bytes = b""):
        self.ts += 0.001
        if from_client:
            frame = tcp_frame("10.0.0.1", "10.0.0.2", self.cport, self.sport, seq, ack, flags,
                              data)
        else:
            frame = tcp_frame("10.0.0.2", "10.0.0.1", self.sport, self.cport, seq, ack, flags,
                              data)
        self.append((self.ts, frame))


SINK_RULES = (
    'alert tcp any 80 -> any any (msg:"pkt"; flow:to_client; content:"PKTMARK"; sid:1;)\n'
    'alert tcp any 80 -> any any (msg:"stream"; flow:established,to_client; '
    'content:"STREAMMARK"; sid:2;)\n'
    'alert http any any -> any any (msg:"body"; flow:to_client; file.data; '
    'content:"BODYMARK"; sid:3;)\n'
    'alert http any any -> any any (msg:"code"; flow:to_client; http.stat_code; '
    'content:"404"; sid:4;)\n'
    'alert tcp any 80 -> any any (msg:"set"; flow:to_client; content:"SETBIT"; '
    'flowbits:set,seen; flowbits:noalert; sid:5;)\n'
    'alert http any any -> any any (msg:"isset"; flow:to_server; http.uri; content:"/next"; '
    'flowbits:isset,seen; sid:6;)\n'
    'alert tcp any 80 -> any any (msg:"small"; flow:to_client; dsize:<8; content:"MK"; '
    'sid:7;)\n')


def sink_traffic(seed):
    """Keep-alive HTTP exchanges whose responses come in random segments,
    some out of order, sent twice, overlapped by a copy with other bytes or
    lost, with the client's ACKs and next (sometimes pipelined) requests
    between them at random, bodies by length or chunked, the rules' marks
    anywhere; the connection ends with FINs (the server's carrying data), a
    RST, or not at all."""
    rnd = random.Random(seed)
    marks = [b"PKTMARK", b"STREAMMARK", b"BODYMARK", b"SETBIT", b"MK", b"plain"]
    cseq, sseq = 1000, 50000
    fr = _Frames(41000 + seed % 20000)  # (a port for any seed)
    frame = fr.add

    def response():
        body = b"".join(rnd.choice(marks) + bytes(rnd.randint(0, 40)) for _ in range(
            rnd.randint(1, 12)))
        code = rnd.choice([b"200 OK", b"404 Not Found"])
        return _response_bytes(code, body, 25 if rnd.random() < 0.3 else None)

    frame(True, cseq, 0, SYN)
    frame(False, sseq, cseq + 1, SYN | ACK)
    cseq, sseq = cseq + 1, sseq + 1
    frame(True, cseq, sseq, ACK)
    n = 0
    for _ in range(rnd.randint(2, 5)):
        reqs = 2 if rnd.random() < 0.2 else 1  # pipelined: two requests, two responses
        req = b"".join(b"GET /" + (b"next" if n + k else b"first") + b" HTTP/1.1\r\n"
                       b"Host: a\r\n\r\n" for k in range(reqs))
        n += reqs
        frame(True, cseq, sseq, PSH | ACK, req)
        cseq += len(req)
        resp = b"".join(response() for _ in range(reqs))
        cuts = sorted(rnd.sample(range(1, len(resp)), min(len(resp) - 1, rnd.randint(1, 9))))
        segs = [(a, resp[a:b]) for a, b in zip([0] + cuts, cuts + [len(resp)])]
        if rnd.random() < 0.3 and len(segs) > 2:  # two segments swapped
            i = rnd.randrange(len(segs) - 1)
            segs[i], segs[i + 1] = segs[i + 1], segs[i]
        if rnd.random() < 0.3:  # a copy sent again
            segs.insert(rnd.randrange(len(segs) + 1), rnd.choice(segs))
        if rnd.random() < 0.2:  # a copy with other bytes, before or after
            off, data = rnd.choice(segs)
            segs.insert(rnd.randrange(len(segs) + 1), (off, bytes(b ^ 0x20 for b in data)))
        if rnd.random() < 0.1 and len(segs) > 2:  # one the capture lost
            del segs[rnd.randrange(1, len(segs))]
        for off, data in segs:
            frame(False, sseq + off, cseq, PSH | ACK, data)
            if rnd.random() < 0.25:  # the client ACKs what it has so far
                frame(True, cseq, sseq + off + len(data), ACK)
        sseq += len(resp)
        if rnd.random() < 0.7:
            frame(True, cseq, sseq, ACK)
    end = rnd.random()
    if end < 0.5:
        tail = b"" if rnd.random() < 0.5 else b"trailing STREAMMARK"
        frame(False, sseq, cseq, ACK | PSH | 1, tail)  # the server's FIN, with data
        sseq += len(tail)
        frame(True, cseq, sseq + 1, ACK | 1)
        frame(False, sseq + 1, cseq + 1, ACK)
    elif end < 0.75:
        frame(True, cseq, sseq, RST | ACK)
    return fr


CUT_RULES = (
    'alert tcp any any -> any 80 (msg:"one"; flow:to_server; content:"EVILWORD"; sid:1;)\n'
    'alert tcp any any -> any 80 (msg:"two"; flow:to_server; content:"AAA"; content:"BBB"; '
    'distance:0; sid:2;)\n'
    'alert tcp any any -> any 80 (msg:"within"; flow:to_server; content:"CCC"; content:"DDD"; '
    'distance:0; within:10; sid:3;)\n'
    'alert tcp any any -> any 80 (msg:"pcre"; flow:to_server; content:"XY"; '
    'pcre:"/XY[0-9]{3}Z/"; sid:4;)\n'
    'alert tcp any any -> any 80 (msg:"set"; flow:to_server; content:"SETGO"; flowbits:set,go; '
    'flowbits:noalert; sid:5;)\n'
    'alert tcp any any -> any 80 (msg:"isset"; flow:to_server; content:"EVILWORD"; '
    'flowbits:isset,go; sid:6;)\n'
    'alert tcp any any -> any 80 (msg:"isset2"; flow:to_server; content:"EVIL"; '
    'content:"WORD"; distance:0; flowbits:isset,go; sid:8;)\n')


def cut_frames(data, rnd, cport, whole):
    cseq, sseq = 1001, 5001
    fr = _Frames(cport)
    f = fr.add

    f(True, cseq - 1, 0, SYN)
    f(False, sseq - 1, cseq, SYN | ACK)
    f(True, cseq, sseq, ACK)
    cuts = [] if whole else sorted(rnd.sample(range(1, len(data)),
                                              min(len(data) - 1, rnd.randint(0, 12))))
    for a, b in zip([0] + cuts, cuts + [len(data)]):
        f(True, cseq + a, sseq, PSH | ACK, data[a:b])
        if rnd.random() < 0.5:  # the server ACKs: an inspection ends here
            f(False, sseq, cseq + b, ACK)
    n = len(data)
    f(True, cseq + n, sseq, ACK | 1)
    f(False, sseq, cseq + n + 1, ACK | 1)
    f(True, cseq + n + 1, sseq + 1, ACK)
    return fr


def cut_stream(rnd: random.Random) -> bytes:
    """A client stream of the CUT_RULES marks and filler, in random order."""
    pieces = [b"EVILWORD", b"AAA", b"BBB", b"CCC", b"DDD", b"XY123Z", b"XY12Z", b"SETGO"]
    return b"".join(rnd.choice(pieces) + bytes(rnd.randint(0, 30))
                    for _ in range(rnd.randint(1, 12)))


HTTP_RULES = (
    'alert http any any -> any any (msg:"uri"; flow:to_server; http.uri; content:"/evil"; '
    'sid:1;)\n'
    'alert http any any -> any any (msg:"method"; flow:to_server; http.method; '
    'content:"POST"; sid:2;)\n'
    'alert http any any -> any any (msg:"ua"; flow:to_server; http.user_agent; '
    'content:"BadBot"; sid:3;)\n'
    'alert http any any -> any any (msg:"host"; flow:to_server; http.host; '
    'content:"evil.example"; sid:4;)\n'
    'alert http any any -> any any (msg:"body"; flow:to_server; http.request_body; '
    'content:"PAYLOAD"; sid:5;)\n'
    'alert http any any -> any any (msg:"hdr"; flow:to_server; http.header; '
    'content:"X-Evil|3a| 1"; sid:6;)\n'
    'alert http any any -> any any (msg:"cookie"; flow:to_server; http.cookie; '
    'content:"sess=bad"; sid:7;)\n'
    'alert http any any -> any any (msg:"resp body"; flow:to_client; file.data; '
    'content:"MALWARE"; sid:8;)\n'
    'alert http any any -> any any (msg:"code"; flow:to_client; http.stat_code; '
    'content:"403"; sid:9;)\n'
    'alert http any any -> any any (msg:"uri+ua"; flow:to_server; http.uri; content:"/x"; '
    'http.user_agent; content:"curl"; sid:10;)\n'
    'alert http any any -> any any (msg:"normalized"; flow:to_server; http.uri; '
    'content:"/a/b"; sid:11;)\n')


def _request(rnd):
    method = rnd.choice([b"GET", b"POST", b"HEAD"])
    uri = rnd.choice([b"/index", b"/evil.php", b"/x?y=1", b"/a/./b", b"/a//b", b"/%61/b",
                      b"/c/../a/b"])
    hs = [(b"Host", rnd.choice([b"evil.example", b"good.example", b"EVIL.example:80"]))]
    if rnd.random() < 0.5:
        hs.append((b"User-Agent", rnd.choice([b"BadBot/1", b"curl/8", b"Mozilla"])))
    if rnd.random() < 0.3:
        hs.append((b"X-Evil", b"1"))
    if rnd.random() < 0.3:
        hs.append((b"Cookie", rnd.choice([b"sess=bad", b"sess=good"])))
    body = b""
    if method == b"POST":
        body = rnd.choice([b"PAYLOAD here", b"nothing", b"xxPAYLOADxx" * 3])
        if rnd.random() < 0.5:
            hs.append((b"Content-Length", b"%d" % len(body)))
        else:
            hs.append((b"Transfer-Encoding", b"chunked"))
            body = _chunked(body, 5)
    return method + b" " + uri + b" HTTP/1.1\r\n" + b"".join(
        n + b": " + v + b"\r\n" for n, v in hs) + b"\r\n" + body


def _response(rnd):
    code = rnd.choice([b"200 OK", b"403 Forbidden", b"404 Not Found"])
    body = rnd.choice([b"hello", b"MALWARE inside", b"x" * 50 + b"MALWARE"])
    coding = rnd.choice([b"", b"", b"gzip", b"deflate"])
    return _response_bytes(code, body, None if rnd.random() < 0.5 else 7, coding)


def http_exchanges(rnd: random.Random) -> list:
    """One to four exchanges, some of two pipelined requests and responses
    (bodies by length or chunked, responses' maybe gzip or deflate, URIs
    encoded or with dot segments)."""
    out = []
    for _ in range(rnd.randint(1, 4)):
        k = 2 if rnd.random() < 0.3 else 1
        out.append((b"".join(_request(rnd) for _ in range(k)),
                    b"".join(_response(rnd) for _ in range(k))))
    return out


def http_frames(exchanges, rnd: random.Random, cport: int, whole: bool) -> list:
    """The exchanges over one connection, each side's bytes whole or cut at
    random with the receiver's ACKs at random between the pieces."""
    cseq, sseq = 1001, 5001
    fr = _Frames(cport)
    f = fr.add

    def send(data, c):
        nonlocal cseq, sseq
        base = cseq if c else sseq
        cuts = [] if whole or len(data) < 2 else sorted(
            rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(0, 10))))
        for a, b in zip([0] + cuts, cuts + [len(data)]):
            f(c, base + a, sseq if c else cseq, PSH | ACK, data[a:b])
            if not whole and rnd.random() < 0.4:
                f(not c, sseq if c else cseq, base + b, ACK)
        if c:
            cseq += len(data)
        else:
            sseq += len(data)
        f(not c, sseq if c else cseq, cseq if c else sseq, ACK)

    f(True, cseq - 1, 0, SYN)
    f(False, sseq - 1, cseq, SYN | ACK)
    f(True, cseq, sseq, ACK)
    for reqs, resps in exchanges:
        send(reqs, True)
        send(resps, False)
    f(True, cseq, sseq, ACK | 1)
    f(False, sseq, cseq + 1, ACK | 1)
    f(True, cseq + 1, sseq + 1, ACK)
    return fr


FRAG_RULES = (
    'alert udp any any -> any 53 (msg:"dns name"; dns.query; content:"evil.example"; '
    'nocase; sid:1;)\n'
    'alert udp any any -> any any (msg:"udp content"; content:"UDPMARK"; sid:2;)\n'
    'alert udp any any -> any any (msg:"big"; dsize:>600; content:"BIGMARK"; sid:3;)\n'
    'alert udp any any -> any 53 (msg:"two"; content:"AAA"; content:"BBB"; distance:0; '
    'sid:4;)\n')


def _dns_query(name: bytes, qid: int) -> bytes:
    labels = b"".join(bytes((len(x),)) + x for x in name.split(b".")) + b"\0"
    return qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + \
        b"\x00\x01\x00\x01"


def frag_datagrams(rnd: random.Random) -> list:
    """Datagrams to port 53 and another port: DNS queries for a bad or a
    good name, and payloads carrying the FRAG_RULES marks, small and large."""
    out = []
    for i in range(rnd.randint(1, 4)):
        if rnd.random() < 0.5:
            name = rnd.choice([b"evil.example", b"www.EVIL.example", b"good.example",
                               b"a" * 40 + b".evil.example"])
            payload = _dns_query(name, i) + bytes(rnd.randint(0, 900))
            port = 53
        else:
            marks = [b"UDPMARK", b"BIGMARK", b"AAA", b"BBB", b"plain"]
            payload = b"".join(rnd.choice(marks) + bytes(rnd.randint(0, 300))
                               for _ in range(rnd.randint(1, 6)))
            port = rnd.choice([53, 9999])
        out.append((5000 + i, port, payload))
    return out


def frag_frames(datagrams, rnd: random.Random, whole: bool) -> list:
    """Each datagram as one IPv4 packet, or cut into fragments (8-byte
    multiples) sent in random order, some twice (not a datagram no cut
    fell in); other datagrams' fragments may come in between."""
    from pakemon.lab.traffic import ether, ipv4, udp

    frags = []
    for ident, (sport, dport, payload) in enumerate(datagrams, 1):
        seg = udp("10.0.0.1", "10.0.0.2", sport, dport, payload)
        if whole:
            frags.append(ether(ipv4("10.0.0.1", "10.0.0.2", 17, seg, ident=ident)))
            continue
        cuts = sorted({rnd.randrange(1, len(seg) // 8 + 1) * 8
                       for _ in range(rnd.randint(1, 6))} - {len(seg)})
        cuts = [c for c in cuts if c < len(seg)]
        pieces = []
        for a, b in zip([0] + cuts, cuts + [len(seg)]):
            pieces.append(ether(ipv4("10.0.0.1", "10.0.0.2", 17, seg[a:b], ident=ident,
                                     df=False, frag_offset=a, mf=b < len(seg))))
        rnd.shuffle(pieces)
        # (a datagram left whole is no fragment: a second copy of it is a
        # second datagram, which the host reads and a rule alerts on again)
        if rnd.random() < 0.3 and len(pieces) > 1:
            pieces.insert(rnd.randrange(len(pieces) + 1), rnd.choice(pieces))
        frags.append(pieces)
    if whole:
        return [(1.0 + i * 0.001, f) for i, f in enumerate(frags)]
    out = []
    queues = [list(p) for p in frags]
    while any(queues):
        q = rnd.choice([q for q in queues if q])
        out.append(q.pop(0))
    return [(1.0 + i * 0.001, f) for i, f in enumerate(out)]


def _exchange_frames(parts, rnd: random.Random, cport: int, whole: bool, sport: int = 80):
    """One connection carrying ``parts``, (from_client, bytes) in turn: each
    whole in one segment, or cut at up to 12 random places with two pieces
    swapped now and then and the receiver's ACKs between them at random; the
    receiver ACKs each part, and both sides close with FINs."""
    cseq, sseq = 1001, 5001
    fr = _Frames(cport, sport)
    fr.add(True, cseq - 1, 0, SYN)
    fr.add(False, sseq - 1, cseq, SYN | ACK)
    fr.add(True, cseq, sseq, ACK)
    for c, data in parts:
        base = cseq if c else sseq
        cuts = [] if whole else sorted(rnd.sample(range(1, len(data)),
                                                  min(len(data) - 1, rnd.randint(0, 12))))
        order = list(zip([0] + cuts, cuts + [len(data)]))
        if not whole and len(order) > 2 and rnd.random() < 0.3:
            i = rnd.randrange(len(order) - 1)
            order[i], order[i + 1] = order[i + 1], order[i]
        for a, b in order:
            fr.add(c, base + a, sseq if c else cseq, PSH | ACK, data[a:b])
            if not whole and rnd.random() < 0.4:
                fr.add(not c, sseq if c else cseq, base + b, ACK)
        if c:
            cseq += len(data)
        else:
            sseq += len(data)
        fr.add(not c, sseq if c else cseq, cseq if c else sseq, ACK)
    fr.add(True, cseq, sseq, ACK | 1)
    fr.add(False, sseq, cseq + 1, ACK | 1)
    fr.add(True, cseq + 1, sseq + 1, ACK)
    return fr


TLS_RULES = (
    'alert tls any any -> any any (msg:"sni"; flow:established,to_server; tls.sni; '
    'content:"c2.evil.example"; endswith; nocase; sid:1;)\n'
    'alert tls any any -> any any (msg:"subject"; flow:established,to_client; '
    'tls.cert_subject; content:"CN=c2.evil.example"; sid:2;)\n'
    'alert tls any any -> any any (msg:"issuer and sni"; tls.cert_issuer; content:"Shady CA"; '
    'tls.sni; content:"evil"; sid:3;)\n'
    'alert tls any any -> any any (msg:"raw and issuer"; flow:from_server,established; '
    'content:"c2.evil.example"; fast_pattern; tls.cert_issuer; content:"Shady CA"; sid:4;)\n'
    'alert tls any any -> any any (msg:"ja3s"; ja3s.string; content:"771,"; sid:5;)\n')


def tls_frames(rnd: random.Random, cport: int, whole: bool) -> list:
    """A TLS 1.2 handshake (SNI c2.evil.example or another name, a
    certificate from "Shady CA" or another issuer) and a few encrypted
    records, each side's bytes whole or cut at random, some pieces swapped,
    ACKed at random. The choice of names comes first from ``rnd``."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from tls_builders import certificate_msg, client_hello, make_cert, record, server_hello

    sni = rnd.choice([b"c2.evil.example", b"www.good.example"])
    issuer = rnd.choice(["Shady CA", "Real CA"])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sni.decode())])
    der = make_cert(subject, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]),
                    1000 + rnd.randrange(1000))
    parts = [(True, record(22, client_hello(sni), b"\x03\x01")),
             (False, record(22, server_hello() + certificate_msg(der))),
             (True, record(20, b"\x01") + record(23, b"\x17" * 40)),
             (False, record(20, b"\x01") + record(23, b"\x18" * 60))]
    if whole:
        rnd = random.Random(0)
    return _exchange_frames(parts, rnd, cport, whole)


APP_RULES = (
    'alert dns any any -> any any (msg:"dns tcp"; dns.query; content:"evil.example"; nocase; '
    'sid:1;)\n'
    'alert smtp any any -> any any (msg:"attachment"; flow:to_server; file_data; '
    'content:"exploit"; sid:2;)\n'
    'alert tcp any any -> any 25 (msg:"smtp raw"; flow:to_server,established; '
    'content:"RCPT TO:<victim"; nocase; sid:3;)\n'
    'alert ssh any any -> any any (msg:"ssh software"; ssh.software; content:"EvilClient"; '
    'sid:4;)\n'
    'alert ssh any any -> any any (msg:"ssh proto"; ssh.proto; content:"1.99"; sid:5;)\n')


def _mail(rnd: random.Random) -> bytes:
    """One mail's DATA bytes: an attachment that may carry "exploit",
    base64 (lines of 76) or plain, and the ending dot line."""
    import base64
    payload = b"".join(rnd.choice([b"exploit", b"harmless", b"x"]) + bytes(rnd.randint(0, 60))
                       for _ in range(rnd.randint(1, 8)))
    if rnd.random() < 0.7:
        enc = base64.encodebytes(payload).replace(b"\n", b"\r\n")
        cte = b"base64"
    else:
        enc = payload.replace(b"\0", b"z").replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
        cte = b"7bit"
    return (b"From: a@example.org\r\nTo: victim@example.net\r\nSubject: x\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n"
            b"--BB\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
            b"--BB\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"a.bin\"\r\n"
            b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + enc + b"--BB--\r\n.\r\n")


def app_frames(rnd: random.Random, cport: int, whole: bool) -> list:
    """One connection of DNS over TCP (queries with their length prefixes,
    some two to a write), SMTP (one or two mails with attachments) or SSH
    (banners, then binary bytes), each side's writes whole or cut at
    random as tls_frames does. The content comes first from ``rnd``."""
    kind = rnd.choice(["dns", "smtp", "ssh"])
    parts = []
    if kind == "dns":
        sport = 53
        for i in range(rnd.randint(1, 4)):
            qs = [_dns_query(rnd.choice([b"evil.example", b"www.EVIL.example", b"good.example"]),
                             i * 2 + k) for k in range(2 if rnd.random() < 0.3 else 1)]
            parts.append((True, b"".join(len(q).to_bytes(2, "big") + q for q in qs)))
            ans = b"".join(len(q).to_bytes(2, "big") + q[:2] + b"\x81\x80" + q[4:] for q in qs)
            parts.append((False, ans))
    elif kind == "smtp":
        sport = 25
        parts.append((False, b"220 mx ESMTP\r\n"))
        parts += [(True, b"EHLO client\r\n"), (False, b"250-mx\r\n250 PIPELINING\r\n")]
        for _ in range(rnd.randint(1, 2)):
            rcpt = rnd.choice([b"victim", b"VICTIM", b"friend"])
            parts += [(True, b"MAIL FROM:<a@example.org>\r\n"), (False, b"250 ok\r\n"),
                      (True, b"RCPT TO:<" + rcpt + b"@example.net>\r\n"), (False, b"250 ok\r\n"),
                      (True, b"DATA\r\n"), (False, b"354 go on\r\n"),
                      (True, _mail(rnd)), (False, b"250 queued\r\n")]
        parts += [(True, b"QUIT\r\n"), (False, b"221 bye\r\n")]
    else:
        sport = 22
        parts.append((False, b"SSH-2.0-OpenSSH_9.2\r\n"))
        sw = rnd.choice([b"2.0-EvilClient_1.0", b"1.99-EvilClient_2", b"2.0-PuTTY_0.79"])
        parts.append((True, b"SSH-" + sw + b"\r\n"))
        parts += [(True, bytes(rnd.randrange(256) for _ in range(rnd.randint(20, 200)))),
                  (False, bytes(rnd.randrange(256) for _ in range(rnd.randint(20, 200))))]
    if whole:
        rnd = random.Random(0)
    return _exchange_frames(parts, rnd, cport, whole, sport)
