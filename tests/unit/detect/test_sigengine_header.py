"""SigEngine: the IP and TCP header keywords (ttl, tos, ipopts, sameip,
fragbits, fragoffset, seq, ack, window) on frames built here."""

from __future__ import annotations

import struct

import pytest

from pakemon.decode.decoder import checksum
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import CLIENT_MAC, SERVER_MAC, TcpConnection, ether
from pakemon.respond.packet import ipv4, ipv6, tcp, udp
from test_sigengine import run, sids

LSRR = b"\x83\x07\x04\x0a\x00\x00\x09\x00"  # loose source route via 10.0.0.9, then NOP


def frame(ip: bytes, v6: bool = False) -> bytes:
    return ether(ip, CLIENT_MAC, SERVER_MAC, 0x86DD if v6 else 0x0800)


def reserved_bit(ip: bytes) -> bytes:
    """The IPv4 header's reserved ("evil") flag set, checksum mended."""
    hdr = bytearray(ip[:20])
    hdr[6] |= 0x80
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", checksum(bytes(hdr)))
    return bytes(hdr) + ip[20:]


def udp_fragments(src, dst, payload, ident):
    """A UDP datagram cut into three IPv4 fragments (DF clear)."""
    seg = udp(src, dst, 4000, 5000, payload)
    cuts = [(0, 16), (16, 32), (32, len(seg))]
    return [frame(ipv4(src, dst, 17, seg[a:b], ident=ident, df=False, frag_offset=a,
                       mf=b < len(seg))) for a, b in cuts]


def header_frames():
    a, b = "10.0.0.1", "10.0.0.2"
    frames = [
        frame(ipv4(a, b, 17, udp(a, b, 1000, 2000, b"low ttl"), ttl=1, tos=0x10)),
        # source-routed: the target drops it (a decode notice), ip rules see it
        frame(ipv4(a, b, 6, tcp(a, b, 3334, 80, 1, 0, 0x02), options=LSRR)),
        frame(ipv4(a, b, 6, tcp(a, b, 3333, 80, 0xDEADBEEF, 0, 0x02, window=1024))),
        frame(ipv4("10.0.0.5", "10.0.0.5", 6, tcp("10.0.0.5", "10.0.0.5", 139, 139, 7, 0,
                                                   0x02))),  # land
        frame(reserved_bit(ipv4(a, b, 17, udp(a, b, 1000, 2001, b"evil bit")))),
        frame(ipv6("fd00::1", "fd00::2", 17, udp("fd00::1", "fd00::2", 1000, 2000, b"v6"),
                   hlim=3), v6=True),
        *udp_fragments(a, b, b"FRAGMARK" + bytes(40), 77),
    ]
    return [(1.0 + i * 0.01, f) for i, f in enumerate(frames)]


HEADER_RULES = """
alert ip any any -> any any (msg:"MF only"; fragbits:M; sid:10;)
alert ip any any -> any any (msg:"later fragment"; fragoffset:>0; sid:11;)
alert ip any any -> any any (msg:"first fragment"; fragbits:M; fragoffset:0; sid:12;)
alert udp any any -> any any (msg:"reassembled"; content:"FRAGMARK"; sid:13;)
alert ip any any -> any any (msg:"evil bit"; fragbits:*R; sid:14;)
alert ip any any -> any any (msg:"not DF"; fragbits:!D; ip_proto:17; sid:15;)
alert ip any any -> any any (msg:"ttl"; ttl:<2; sid:20;)
alert udp any any -> any any (msg:"tos"; tos:0x10; sid:21;)
alert udp any any -> any any (msg:"tos not 0"; tos:!0; sid:22;)
alert ip any any -> any any (msg:"lsrr"; ipopts:lsrr; sid:23;)
alert ip any any -> any any (msg:"any option"; ipopts:any; sid:24;)
alert ip any any -> any any (msg:"rr"; ipopts:rr; sid:25;)
alert ip any any -> any any (msg:"land"; sameip; sid:26;)
alert tcp any any -> any any (msg:"probe"; flags:S; seq:3735928559; ack:0; window:1024; sid:27;)
alert tcp any any -> any any (msg:"other window"; flags:S; window:!1024; sid:28;)
alert ip any any -> any any (msg:"hop limit"; ttl:3; sid:31;)
"""


def test_header_keywords_on_built_packets():
    got = sids(run(HEADER_RULES, header_frames()))
    assert got == {
        10: 2,  # the two fragments with MF (DF clear): not the reassembled datagram
        11: 2,  # the second and third fragment
        12: 1,  # the first fragment only
        13: 1,  # the datagram, reassembled once
        14: 1,  # the reserved bit
        # DF clear on UDP: the three fragments and the reserved-bit packet
        # (its DF is set too: not); the first UDP packet has DF set
        15: 3,
        20: 1, 21: 1, 22: 1, 23: 1, 24: 1, 26: 1, 27: 1, 31: 1,
        28: 1,  # the land SYN (the source-routed one is dropped before TCP)
    }


def test_a_header_keyword_makes_a_content_rule_a_packet_rule():
    """ttl beside a content is tested on the packet carrying it, as
    Suricata's packet keywords require a packet: the stream rule it would
    otherwise be never reads a TTL."""
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 80).open()
    c.send(b"GET /EVIL HTTP/1.0\r\n\r\n")
    frames = c.close()
    rules = ('alert tcp any any -> any 80 (msg:"low"; content:"EVIL"; ttl:<100; sid:1;)\n'
             'alert tcp any any -> any 80 (msg:"high"; content:"EVIL"; ttl:>100; sid:2;)\n'
             'alert tcp any any -> any 80 (msg:"id"; content:"EVIL"; id:4242; sid:3;)\n')
    assert sids(run(rules, frames)) == {1: 1}


@pytest.mark.parametrize("opt", [
    "ttl:abc", "ttl:300", "tos:256", "tos:0x1ff", "ipopts:foo", "fragbits:X", "fragbits:+M*",
    "fragoffset:9000", "fragoffset:>=3", "window:70000", "sameip:1", "seq:-1", "ack:4294967296",
    "ttl:1; ttl:2",
])
def test_bad_header_keywords_are_rule_errors(opt):
    rules, skipped, errors = parse_suricata_rules(
        f'alert ip any any -> any any (msg:"bad"; {opt}; sid:1;)')
    assert not rules and not skipped and len(errors) == 1
    assert opt.split(":")[0] in str(errors[0])


def test_header_keywords_parse_to_their_values():
    rules, skipped, errors = parse_suricata_rules(
        'alert tcp any any -> any any (msg:"all"; ttl:10-20; tos:!x1f; ipopts:ssrr; sameip; '
        'fragbits:MD+; fragoffset:!0; seq:1; ack:2; window:!3; sid:1;)')
    assert not skipped and not errors
    h = rules[0].header
    assert (h.ttl.op, h.ttl.value, h.ttl.value2) == ("<>", 10, 20)
    assert h.tos == (True, 0x1F) and h.ipopt == 137 and h.sameip
    assert h.fragbits == ("+", 3) and (h.fragoffset.op, h.fragoffset.value) == ("!=", 0)
    assert (h.seq, h.ack, h.window) == (1, 2, (True, 3))
    assert rules[0].native_blocker() is not None


def test_pkt_data_returns_from_a_sticky_buffer_to_the_payload():
    """``pkt_data`` ends a sticky buffer: the content after it is the
    payload's, so the rule needs EVIL in the stream, not in the URI."""
    rules = ('alert http any any -> any any (msg:"uri, then payload"; http.uri; content:"/x"; '
             'pkt_data; content:"EVIL"; sid:1;)\n')
    parsed, skipped, errors = parse_suricata_rules(rules)
    assert not skipped and not errors
    assert [e.buffer for e in parsed[0].contents] == ["http.uri", None]
    hit, miss = (TcpConnection("10.0.0.1", "10.0.0.2", port, 80).open() for port in (4001, 4002))
    hit.send(b"GET /x HTTP/1.0\r\nX-A: EVIL\r\n\r\n")
    miss.send(b"GET /x HTTP/1.0\r\nX-A: good\r\n\r\n")
    assert sids(run(rules, hit.close())) == {1: 1}
    assert sids(run(rules, miss.close())) == {}


def test_header_buffers_tcp_mss_and_prefilter():
    """ipv4.hdr, tcp.hdr, udp.hdr, icmpv4.hdr and ipv6.hdr hold the packet's
    own header bytes (options included) for contents and byte tests;
    tcp.mss reads the MSS option; ``prefilter;`` is only a hint."""
    from pakemon.respond.packet import icmp

    a, b = "10.0.0.1", "10.0.0.2"
    mss = b"\x02\x04\x02\x00"  # MSS 512
    frames = [
        frame(ipv4(a, b, 6, tcp(a, b, 3000, 80, 1, 0, 0x02, options=mss), ident=0)),
        frame(ipv4(a, b, 6, tcp(a, b, 3001, 80, 1, 0, 0x02, options=b"\x02\x04\x05\xb4"),
                   ident=7)),
        frame(ipv4(a, b, 17, udp(a, b, 1000, 53, b"x"), ident=9)),
        frame(ipv4(a, b, 1, icmp(8, 0, b"\x12\x34\x00\x01abc"), ident=10)),
        frame(ipv6("fd00::1", "fd00::2", 17, udp("fd00::1", "fd00::2", 1000, 2000, b"v6"),
                   hlim=7), v6=True),
    ]
    rules = "".join(f"alert {body}\n" for body in (
        'tcp any any -> any any (msg:"small mss"; tcp.hdr; content:"|02 04|"; offset:20; '
        'byte_test:2,<,536,0,big,relative; sid:1;)',
        'ip any any -> any any (msg:"ip id 0"; ipv4.hdr; content:"|00 00|"; offset:4; depth:2; '
        'sid:2;)',
        'tcp any any -> any any (msg:"mss"; tcp.mss:<536; prefilter; sid:3;)',
        'tcp any any -> any any (msg:"mss range"; tcp.mss:1000-1500; sid:4;)',
        'udp any any -> any any (msg:"udp to 53"; udp.hdr; content:"|00 35|"; offset:2; '
        'depth:2; sid:5;)',
        'icmp any any -> any any (msg:"echo id"; icmpv4.hdr; content:"|12 34|"; offset:4; '
        'depth:2; sid:6;)',
        'ip any any -> any any (msg:"hop limit 7"; ipv6.hdr; content:"|07|"; offset:7; depth:1; '
        'sid:7;)',
        'ip any any -> any any (msg:"v4 only"; ipv4.hdr; content:!"|ff|"; offset:8; depth:1; '
        'sid:8;)',
    ))
    assert sids(run(rules, [(1.0 + i, f) for i, f in enumerate(frames)])) == {
        1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1,
        8: 4,  # (the IPv6 packet has no ipv4.hdr: not even a negated content holds)
    }


def test_vlan_id_and_layers_as_the_verification_suite_writes_them():
    """vlan.id (any tag, a layer from the outermost, -1 the innermost, or
    all) and vlan.layers, on the suite's detect-vlan-id traffic: an echo
    request under tags 200, 300, 400 and an untagged reply (no match)."""
    import struct

    from pakemon.respond.packet import icmp

    c, s = bytes.fromhex("111111111111"), bytes.fromhex("222222222222")
    tags = b"".join(struct.pack("!HH", 0x8100, v) for v in (200, 300, 400))
    frames = [(1.0, s + c + tags + b"\x08\x00" + ipv4("1.1.1.1", "2.2.2.2", 1,
                                                          icmp(8, 0, b"\0\0\0\0"))),
              (1.1, c + s + b"\x08\x00" + ipv4("2.2.2.2", "1.1.1.1", 1, icmp(0, 0, b"\0" * 4)))]
    opts = ["vlan.id:200,0", "vlan.id:300", "vlan.id:400,-1", "vlan.id:0x12C,1",
            "vlan.id:!200,1", "vlan.id:!500", "vlan.id:100-600,2", "vlan.id:<400,1",
            "vlan.id:>=0xC8", "vlan.id:>100,all", "vlan.layers:3", "vlan.id:200,1",
            "vlan.id:>200,all", "vlan.id:300,5", "vlan.layers:<3"]
    rules = "".join(f'alert ip any any -> any any (msg:"v{i}"; {o}; sid:{i};)\n'
                    for i, o in enumerate(opts, 1))
    assert sids(run(rules, frames)) == {i: 1 for i in range(1, 12)} | {15: 1}


def test_flow_age_counts_seconds_from_the_flows_first_packet():
    a, b = "10.0.0.1", "10.0.0.2"
    frames = [(100.0 + t, frame(ipv4(a, b, 17, udp(a, b, 1000, 2000, b"x"))))
              for t in (0, 1, 5, 12)]
    rules = ('alert udp any any -> any any (msg:"old"; flow.age:>4; sid:1;)\n'
             'alert udp any any -> any any (msg:"young"; flow.age:<2; sid:2;)\n')
    assert sids(run(rules, frames)) == {1: 2, 2: 2}
    c = TcpConnection(a, b, 40000, 80, ts=50.0).open()
    c.send(b"EARLY")
    c.ts = 70.0
    c.send(b"LATE")
    # (packet rules: a stream rule's chunk is inspected later than its packet)
    rules = ('alert tcp any any -> any 80 (msg:"late"; dsize:4; flow.age:>=20; sid:3;)\n'
             'alert tcp any any -> any 80 (msg:"early"; dsize:5; flow.age:>=20; sid:4;)\n')
    assert sids(run(rules, c.close())) == {3: 1}


def test_rpc_matches_onc_rpc_calls_by_program_version_and_procedure():
    """rpc (Snort, Suricata): an RPC CALL, RPC version 2, of that program
    and, unless ``*``, version and procedure; over TCP after the record
    mark. Replies and other programs do not match."""
    import struct as st

    def call(prog, vers, proc, mtype=0):
        return st.pack("!6I", 0x1234, mtype, 2, prog, vers, proc) + bytes(16)

    a, b = "10.0.0.1", "10.0.0.2"
    c = TcpConnection(a, b, 40000, 111).open()
    c.send(st.pack("!I", 0x80000000 | 40) + call(100000, 2, 4))  # portmap DUMP over TCP
    frames = c.close() + [
        (9.0, frame(ipv4(a, b, 17, udp(a, b, 1000, 111, call(100000, 2, 3))))),  # GETPORT
        (9.1, frame(ipv4(a, b, 17, udp(a, b, 1000, 111, call(100005, 1, 1))))),  # mountd
        (9.2, frame(ipv4(a, b, 17, udp(a, b, 1000, 111, call(100000, 2, 4, mtype=1))))),
    ]
    rules = "".join(f'alert {p} any any -> any 111 (msg:"r{i}"; rpc:{o}; sid:{i};)\n'
                    for i, (p, o) in enumerate((("tcp", "100000,*,4"), ("udp", "100000,2,3"),
                                                ("udp", "100000,*,*"), ("udp", "100005"),
                                                ("udp", "100000,3,*")), 1))
    assert sids(run(rules, frames)) == {1: 1, 2: 1, 3: 1, 4: 1}
    _, _, errors = parse_suricata_rules('alert udp any any -> any any (rpc:x,1,2; sid:9;)')
    assert len(errors) == 1


def test_transport_header_buffers_of_a_datagram_reassembled_from_fragments():
    """A TCP header cut across two fragments is read whole from the
    reassembled datagram (a mutated capture once made tcp.hdr index past
    the first fragment's frame)."""
    a, b = "10.0.0.1", "10.0.0.2"
    seg = tcp(a, b, 3000, 80, 1, 0, 0x02, options=b"\x02\x04\x02\x00")
    frames = [(1.0, frame(ipv4(a, b, 6, seg[:8], ident=5, df=False, mf=True))),
              (1.1, frame(ipv4(a, b, 6, seg[8:], ident=5, df=False, frag_offset=8)))]
    rules = ('alert tcp any any -> any any (msg:"small mss"; tcp.hdr; content:"|02 04|"; '
             'offset:20; byte_test:2,<,536,0,relative; sid:1;)\n'
             'alert tcp any any -> any any (msg:"mss"; tcp.mss:512; sid:2;)\n')
    assert sids(run(rules, frames)) == {1: 1, 2: 1}
