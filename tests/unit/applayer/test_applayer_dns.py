"""DNS message parsing and TCP framing with real (scapy-built) messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR

from pakemon.applayer.dns import DnsTcpFramer, parse_dns


def test_query():
    msg = bytes(DNS(id=0x1234, rd=1, qd=DNSQR(qname="www.example.com", qtype="A")))
    m = parse_dns(msg)
    assert m.id == 0x1234 and not m.is_response and m.opcode == 0
    assert m.queries == [(b"www.example.com", 1)]
    assert not m.malformed


def test_response_with_compression():
    pkt = DNS(id=7, qr=1, aa=1, qd=DNSQR(qname="mail.example.org", qtype="MX"),
              an=[DNSRR(rrname="mail.example.org", type="CNAME", rdata="mx.example.org"),
                  DNSRR(rrname="mx.example.org", type="A", rdata="192.0.2.7")])
    msg = bytes(pkt.compress())  # names become pointers (to the question, to the rdata)
    assert msg[34:36] == b"\xc0\x0c" and len(msg) < len(bytes(pkt))
    m = parse_dns(msg)
    assert m.is_response and m.queries == [(b"mail.example.org", 15)]
    assert m.answers == [(b"mail.example.org", 5, b"mx.example.org"),
                         (b"mx.example.org", 1, bytes([192, 0, 2, 7]))]


def test_hand_built_pointer_and_raw_label_bytes():
    # Question: "a.b" then an answer whose name is "x" + pointer to "b".
    hdr = b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    q = b"\x01a\x01b\x00\x00\x01\x00\x01"
    an = b"\x01x\xc0\x0e\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01"
    m = parse_dns(hdr + q + an)
    assert m.answers[0][0] == b"x.b"
    # A label holding a dot and a NUL is kept as raw bytes (as dns.query).
    q2 = b"\x03a.\x00\x03com\x00\x00\x10\x00\x01"
    m = parse_dns(b"\x00\x02\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + q2)
    assert m.queries == [(b"a.\x00.com", 16)]


def test_root_name_is_empty():
    m = parse_dns(b"\x00\x03\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01")
    assert m.queries == [(b"", 2)]


def test_pointer_loop_is_malformed_not_hang():
    # The question name points at itself.
    msg = b"\x00\x04\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"
    m = parse_dns(msg)
    assert m.malformed and m.queries == []


def test_truncated_keeps_what_was_read():
    full = bytes(DNS(id=1, qd=[DNSQR(qname="one.example"), DNSQR(qname="two.example")]))
    m = parse_dns(full[:-8])
    assert m.queries == [(b"one.example", 1)] and m.malformed
    assert parse_dns(full[:11]) is None


def test_tcp_framer_segments():
    a = bytes(DNS(id=1, qd=DNSQR(qname="a.example")))
    b = bytes(DNS(id=2, qd=DNSQR(qname="b.example")))
    stream = len(a).to_bytes(2, "big") + a + b"\x00\x00" + len(b).to_bytes(2, "big") + b
    f = DnsTcpFramer()
    out = []
    for i in range(len(stream)):
        out += f.feed(stream[i:i + 1])
    assert out == [a, b] and f.empty == 1
    f.gap()
    assert f.feed(stream) == []


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    m = parse_dns(data)
    assert m is None or m.id == int.from_bytes(data[:2], "big")
    DnsTcpFramer().feed(data)


def test_eve_object_of_a_response_names_its_flags_rcode_and_type():
    import struct

    from pakemon.applayer.dns import eve_object
    from pakemon.lab.traffic import dns_query
    q = dns_query("gone.example", qid=7, qtype=99)
    # a recursive answer (qr rd ra), NXDOMAIN, for SPF (99); type 4660 has no name
    r = struct.pack("!HHHHHH", 7, 0x8183, 1, 0, 0, 0) + q[12:]
    assert eve_object(parse_dns(r)) == {"answer": {
        "version": 2, "type": "answer", "id": 7, "flags": "8183", "qr": True, "rd": True, "ra": True,
        "opcode": 0, "rrname": "gone.example", "rrtype": "SPF", "rcode": "NXDOMAIN"}}
    q2 = dns_query("a.example", qid=8, qtype=4660)
    assert eve_object(parse_dns(q2))["query"][0]["rrtype"] == "4660"
    # the z bit as Suricata writes it; a message without a question has no object
    z = parse_dns(q2[:2] + b"\x01\x40" + q2[4:])
    assert eve_object(z)["query"][0]["z"] is True
    assert eve_object(parse_dns(r[:4] + b"\0\0" + r[6:12])) == {}
