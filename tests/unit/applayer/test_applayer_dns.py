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
    assert m.answers == [(b"mail.example.org", 5, 0, b"mx.example.org"),
                         (b"mx.example.org", 1, 0, bytes([192, 0, 2, 7]))]


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


def test_eve_answer_lists_answers_grouped_and_authorities():
    from scapy.layers.dns import DNSRRMX, DNSRRSOA, DNSRRSRV

    from pakemon.applayer.dns import eve_object
    pkt = DNS(id=9, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.org", qtype="A"),
              an=[DNSRR(rrname="www.example.org", type="CNAME", ttl=300,
                        rdata="web.example.org"),
                  DNSRR(rrname="web.example.org", type="A", ttl=60, rdata="192.0.2.7"),
                  DNSRR(rrname="web.example.org", type="A", ttl=60, rdata="192.0.2.8"),
                  DNSRR(rrname="web.example.org", type="AAAA", ttl=60, rdata="2001:db8::1"),
                  DNSRRMX(rrname="example.org", ttl=7, preference=10,
                          exchange="mx.example.org"),
                  DNSRR(rrname="example.org", type="TXT", ttl=5, rdata=[b"v=spf1", b"-all"]),
                  DNSRRSRV(rrname="_sip._tcp.example.org", ttl=9, priority=1, weight=2,
                           port=5060, target="sip.example.org"),
                  DNSRR(rrname="example.org", type="DNAME", ttl=3, rdata="example.net")],
              ns=[DNSRRSOA(rrname="example.org", ttl=3600, mname="ns1.example.org",
                           rname="hostmaster.example.org", serial=2026120101, refresh=7200,
                           retry=900, expire=1209600, minimum=300)])
    for msg in (bytes(pkt), bytes(pkt.compress())):
        m = parse_dns(msg)
        assert not m.malformed
        ans = eve_object(m)["answer"]
        assert ans["rrname"] == "www.example.org" and ans["rcode"] == "NOERROR"
        assert ans["answers"] == [
            {"rrname": "www.example.org", "rrtype": "CNAME", "ttl": 300,
             "rdata": "web.example.org"},
            {"rrname": "web.example.org", "rrtype": "A", "ttl": 60, "rdata": "192.0.2.7"},
            {"rrname": "web.example.org", "rrtype": "A", "ttl": 60, "rdata": "192.0.2.8"},
            # Suricata's dns_print_addr: eight groups of four digits
            {"rrname": "web.example.org", "rrtype": "AAAA", "ttl": 60,
             "rdata": "2001:0db8:0000:0000:0000:0000:0000:0001"},
            {"rrname": "example.org", "rrtype": "MX", "ttl": 7, "rdata": "mx.example.org"},
            {"rrname": "example.org", "rrtype": "TXT", "ttl": 5, "rdata": "v=spf1"},
            {"rrname": "example.org", "rrtype": "TXT", "ttl": 5, "rdata": "-all"},
            {"rrname": "_sip._tcp.example.org", "rrtype": "SRV", "ttl": 9,
             "srv": {"priority": 1, "weight": 2, "port": 5060, "name": "sip.example.org"}},
            {"rrname": "example.org", "rrtype": "DNAME", "ttl": 3}]
        assert ans["grouped"] == {
            "CNAME": ["web.example.org"], "A": ["192.0.2.7", "192.0.2.8"],
            "AAAA": ["2001:0db8:0000:0000:0000:0000:0000:0001"], "MX": ["mx.example.org"],
            "TXT": ["v=spf1", "-all"],
            "SRV": [{"priority": 1, "weight": 2, "port": 5060, "name": "sip.example.org"}]}
        assert ans["authorities"] == [
            {"rrname": "example.org", "rrtype": "SOA", "ttl": 3600,
             "soa": {"mname": "ns1.example.org", "rname": "hostmaster.example.org",
                     "serial": 2026120101, "refresh": 7200, "retry": 900,
                     "expire": 1209600, "minimum": 300}}]


def test_eve_text_is_suricatas_bytes_to_string():
    from pakemon.applayer.dns import eve_object
    from pakemon.lab.traffic import dns_query
    # a name that is not UTF-8 shows its high bytes as \xNN; UTF-8 stays as it is
    q = dns_query("caf\xe9.example", qid=1)
    for raw, text in ((b"caf\xe9", "caf\\xe9"), ("café".encode(), "café")):
        name = bytes([len(raw)]) + raw + b"\x07example\x00"
        msg = q[:12] + name + q[-4:]
        assert eve_object(parse_dns(msg))["query"][0]["rrname"] == text + ".example"


def test_records_whose_data_does_not_parse_are_logged_without_it():
    from pakemon.applayer.dns import eve_object
    hdr = b"\x00\x05\x81\x80\x00\x01\x00\x02\x00\x00\x00\x00"
    q = b"\x01a\x00\x00\x01\x00\x01"
    # a CNAME whose name runs past its RDATA, an SRV too short for a target
    bad_cname = b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x01\x00\x02\x03abc\x00"
    bad_srv = b"\xc0\x0c\x00\x21\x00\x01\x00\x00\x00\x01\x00\x03\x00\x01\x00"
    m = parse_dns(hdr + q + bad_cname[:14] + bad_srv)
    assert [a[3] for a in m.answers] == [None, None]
    ans = eve_object(m)["answer"]
    assert ans["answers"] == [{"rrname": "a", "rrtype": "CNAME", "ttl": 1},
                              {"rrname": "a", "rrtype": "SRV", "ttl": 1}]
    assert ans["grouped"] == {}
