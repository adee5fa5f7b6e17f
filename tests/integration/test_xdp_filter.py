"""Which frames the kernel pushes to userland, and how much of each (root only).

Rules name services; the kernel pushes client->server frames of a service
whole, the server's side of a TCP service cut after the TCP header, every
IP fragment whole, and nothing else (unless an any-port rule, `ip` rule or
scan-probe setting says so). One sensor, attached natively with the tc
egress program, serves the whole module.
"""

from __future__ import annotations

import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    fragment6,
)
from scapy.layers.l2 import Dot1Q
from scapy.packet import Raw

from pakemon.abi import EVF, Hook
from xdp_lab import IP_A, counter_delta, eth, lab, requires_xdp, sensor_lab  # noqa: F401 (fixtures)

pytestmark = requires_xdp

DST = "192.0.2.99"  # not the server's address: its kernel stays silent
RULES = """\
web      tcp *     80  "GET"
dns      udp *     53  *
echo     icmp 8    0   *
backdoor tcp 31337 *   *
"""
HTTP_REQ = b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n"
BODY = b"<html>" + b"x" * 600 + b"</html>"
# MSS, SACK-permitted, timestamps, window scale: a 40-byte TCP header.
TCP_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None),
            ("WScale", 7)]


@pytest.fixture
def net(sensor_lab):
    """Each test starts from RULES, default settings and an empty ring;
    coalescing off: these tests look at what each frame becomes
    (test_xdp_coalesce.py looks at the merged records)."""
    srv = sensor_lab.server
    srv.call("set_rules", text=RULES)
    srv.call("configure", snaplen=65279, scan_tcp=False, scan_udp=False, coalesce=False)
    srv.call("collect", timeout=0.3, settle=0.1)
    return sensor_lab


def exchange(net, frames, expect, from_server=False):
    """Send frames; the records pushed and the counter changes."""
    srv = net.server
    before = srv.call("counters")
    (net.send_from_server if from_server else net.send)(frames)
    recs = srv.call("collect", count=expect, timeout=3.0, settle=0.2 if expect else 0.4)
    for r in recs:
        r["frame"] = bytes.fromhex(r["frame"])
    return recs, counter_delta(before, srv.call("counters"))


def v4(net, l4, dst=DST):
    return eth(net, IP(src=IP_A, dst=dst) / l4)


def test_client_to_server_data_is_pushed_whole(net):
    f = bytes(v4(net, TCP(sport=40001, dport=80, flags="PA") / HTTP_REQ))
    recs, d = exchange(net, [f], 1)
    assert [r["frame"] for r in recs] == [f]
    assert recs[0]["wire_len"] == len(f)
    assert recs[0]["flags"] == EVF.FORWARD
    assert recs[0]["hook"] == Hook.XDP
    assert abs(recs[0]["ts"] - time.time()) < 5  # wall clock, not boot time
    assert d["candidates"] == 1 and d["candidate_bytes"] == len(f)


def test_server_to_client_arrives_truncated_to_headers(net):
    syn_ack = bytes(v4(net, TCP(sport=80, dport=40001, flags="SA", options=TCP_OPTS)))
    data = bytes(v4(net, TCP(sport=80, dport=40001, flags="PA", options=TCP_OPTS) / BODY))
    fin = bytes(v4(net, TCP(sport=80, dport=40001, flags="FA")))
    recs, d = exchange(net, [syn_ack, data, fin], 3)
    hdr = 14 + 20 + 40  # Ethernet, IPv4, TCP with 20 bytes of options
    assert [r["frame"] for r in recs] == [syn_ack[:hdr], data[:hdr], fin[:14 + 20 + 20]]
    assert [r["wire_len"] for r in recs] == [len(syn_ack), len(data), len(fin)]
    assert all(r["flags"] == EVF.REVERSE | EVF.HDR_ONLY for r in recs)
    # The stream state survives the cut: flags and ACK number are there.
    assert TCP(recs[1]["frame"][34:]).ack == TCP(data[34:]).ack
    assert d["hdr_only"] == 3


def test_source_port_service_pushes_its_data_and_cuts_the_other_side(net):
    out = bytes(v4(net, TCP(sport=31337, dport=50000, flags="PA") / b"owned"))
    back = bytes(v4(net, TCP(sport=50000, dport=31337, flags="PA") / b"cmd"))
    recs, _ = exchange(net, [out, back], 2)
    assert [(r["frame"], r["flags"]) for r in recs] == [
        (out, EVF.FORWARD), (back[:54], EVF.REVERSE | EVF.HDR_ONLY)]


def test_other_ports_and_udp_replies_are_not_pushed(net):
    frames = [v4(net, TCP(sport=40001, dport=8080, flags="PA") / HTTP_REQ),
              v4(net, UDP(sport=5000, dport=9999) / b"q"),
              v4(net, UDP(sport=53, dport=5000) / b"answer"),  # UDP: no reverse side
              v4(net, ICMP(type=0)),  # echo reply: the rule is on type 8
              v4(net, IP(proto=47) / b"gre")]
    recs, d = exchange(net, frames, 0)
    assert recs == []
    assert d["passed_over"] == len(frames) and "candidates" not in d


def test_udp_and_icmp_services(net):
    q = bytes(v4(net, UDP(sport=5000, dport=53) / b"\x12\x34query"))
    ping = bytes(v4(net, ICMP(type=8) / b"abc"))
    ping6 = bytes(eth(net, IPv6(src="2001:db8::1", dst="2001:db8::2", nh=58) / Raw(b"\x08\0\0\0")))
    recs, _ = exchange(net, [q, ping, ping6], 3)
    assert [r["frame"] for r in recs] == [q, ping, ping6]


def test_every_fragment_is_pushed_whole_whatever_the_port(net):
    dgram = IP(src=IP_A, dst=DST, id=77) / UDP(sport=5000, dport=9999) / (b"A" * 1200)
    frags4 = [bytes(eth(net, f)) for f in fragment(dgram, fragsize=400)]
    dgram6 = (IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=9)
              / UDP(sport=5000, dport=9999) / (b"B" * 1200))
    frags6 = [bytes(eth(net, f)) for f in fragment6(dgram6, 600)]
    assert len(frags4) == 4 and len(frags6) >= 2
    recs, d = exchange(net, frags4 + frags6, len(frags4) + len(frags6))
    assert [r["frame"] for r in recs] == frags4 + frags6
    assert all(r["flags"] == EVF.FRAGMENT for r in recs)
    assert d["fragments"] == len(frags4) + len(frags6)


def test_atomic_ipv6_fragment_is_an_ordinary_datagram(net):
    # RFC 6946: offset 0 and M clear is not a fragment; port 9999 is no service.
    f = eth(net, IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(m=0, offset=0)
            / UDP(sport=5000, dport=9999) / b"x")
    recs, d = exchange(net, [f], 0)
    assert recs == [] and d["passed_over"] == 1


def test_vlan_tags_and_ipv6_extension_headers_are_parsed(net):
    qinq = bytes(eth(net, Dot1Q(vlan=100) / Dot1Q(vlan=7) / IP(src=IP_A, dst=DST)
                     / TCP(sport=40001, dport=80, flags="PA") / HTTP_REQ))
    v6 = bytes(eth(net, IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop()
                   / IPv6ExtHdrDestOpt() / TCP(sport=40001, dport=80, flags="PA") / HTTP_REQ))
    v6_back = bytes(eth(net, IPv6(src="2001:db8::2", dst="2001:db8::1") / IPv6ExtHdrHopByHop()
                        / TCP(sport=80, dport=40001, flags="A") / BODY))
    recs, _ = exchange(net, [qinq, v6, v6_back], 3)
    assert [r["frame"] for r in recs] == [qinq, v6, v6_back[:14 + 40 + 8 + 20]]


def test_header_chains_longer_than_the_walk_are_pushed_whole(net):
    # Linux reads TCP behind 8 Destination Options headers and under up to
    # eight priority (VLAN 0) tags (live cases tcp_v6_many_dest_opts,
    # tcp_eight_priority_tags): passed over here, a segment would be hidden
    # from the sensor by its headers alone. Any port: the walk never
    # reached it. A chain cut short is still malformed.
    chain = IPv6ExtHdrDestOpt()
    for _ in range(7):
        chain = chain / IPv6ExtHdrDestOpt()
    deep = bytes(eth(net, IPv6(src="2001:db8::1", dst="2001:db8::2") / chain
                     / TCP(sport=40001, dport=80, flags="PA") / HTTP_REQ))
    other = bytes(eth(net, IPv6(src="2001:db8::1", dst="2001:db8::2") / chain
                      / UDP(sport=5000, dport=9999) / b"x"))
    tags = bytes(eth(net, Dot1Q(vlan=0) / Dot1Q(vlan=0) / Dot1Q(vlan=0) / IP(src=IP_A, dst=DST)
                     / TCP(sport=40001, dport=80, flags="PA") / HTTP_REQ))
    cut = deep[:14 + 40 + 8 * 3 + 4]
    recs, d = exchange(net, [deep, other, tags, cut], 3)
    assert [r["frame"] for r in recs] == [deep, other, tags]
    # (no flow the program can tell: with coalescing on, no merging for a while)
    assert all(r["flags"] == EVF.FORWARD | EVF.NO_FLOW for r in recs)
    assert d["deep_headers"] == 3 and d["malformed"] == 1


def test_malformed_headers_are_passed_and_counted(net):
    bad_ihl = bytearray(bytes(v4(net, UDP(sport=1, dport=53) / b"x")))
    bad_ihl[14] = 0x43  # version 4, IHL 3 words
    short_tcp = bytes(v4(net, TCP(sport=40001, dport=80)))[:14 + 20 + 12]
    bad_doff = bytearray(bytes(v4(net, TCP(sport=40001, dport=80))))
    bad_doff[14 + 20 + 12] = 0xF0  # data offset 15 words in a 20-byte header
    recs, d = exchange(net, [bytes(bad_ihl), short_tcp, bytes(bad_doff)], 0)
    assert recs == []
    assert d["malformed"] == 3 and d["other_frames"] == 3


def test_snaplen_cuts_pushed_frames(net):
    net.server.call("configure", snaplen=64)
    f = bytes(v4(net, TCP(sport=40001, dport=80, flags="PA") / (HTTP_REQ * 10)))
    recs, _ = exchange(net, [f], 1)
    assert recs[0]["frame"] == f[:64] and recs[0]["wire_len"] == len(f)
    assert recs[0]["flags"] == EVF.FORWARD | EVF.SNAPLEN


def test_scan_probe_headers_on_any_port_when_enabled(net):
    syn = bytes(v4(net, TCP(sport=40001, dport=9999, flags="S")))
    ack = bytes(v4(net, TCP(sport=40001, dport=9999, flags="A") / b"data"))
    udp = bytes(v4(net, UDP(sport=5000, dport=9999) / (b"u" * 100)))
    recs, _ = exchange(net, [syn, ack, udp], 0)
    assert recs == []  # off by default
    net.server.call("configure", scan_tcp=True, scan_udp=True)
    recs, _ = exchange(net, [syn, ack, udp], 2)
    assert [(r["frame"], r["flags"]) for r in recs] == [
        (syn, EVF.PROBE | EVF.HDR_ONLY), (udp[:42], EVF.PROBE | EVF.HDR_ONLY)]


def test_rule_reload_updates_the_maps_in_place(net):
    srv = net.server
    prog_before = srv.call("status", ifname="pkxb")["xdp"]
    assert [6, 0, 80] in srv.call("service_keys")
    res = srv.call("set_rules", text='alt tcp * 8080 "GET"\necho icmp 8 0 *\n')
    assert res["removed"] == 3  # tcp/80, udp/53, tcp/31337 src (icmp 8 x2 stay)
    assert res["added"] == 1 and res["keys"] == 3
    assert srv.call("service_keys") == [[1, 0, 8], [6, 0, 8080], [58, 0, 8]]
    assert srv.call("status", ifname="pkxb")["xdp"] == prog_before  # same program
    to80 = bytes(v4(net, TCP(sport=40001, dport=80, flags="PA") / HTTP_REQ))
    to8080 = bytes(v4(net, TCP(sport=40001, dport=8080, flags="PA") / HTTP_REQ))
    recs, _ = exchange(net, [to80, to8080], 1)
    assert [r["frame"] for r in recs] == [to8080]


def test_any_port_and_ip_rules_push_whole_protocols(net):
    srv = net.server
    srv.call("set_rules", text="alludp udp * * *\n")
    udp = bytes(v4(net, UDP(sport=1234, dport=4321) / b"x"))
    tcp = bytes(v4(net, TCP(sport=1234, dport=4321, flags="PA") / b"x"))
    recs, _ = exchange(net, [udp, tcp], 1)
    assert [(r["frame"], r["flags"]) for r in recs] == [(udp, EVF.FORWARD | EVF.ANY_PORT)]
    srv.call("set_rules", text='anyip ip * * "x"\n')
    gre = bytes(v4(net, IP(proto=47) / b"gre"))
    recs, _ = exchange(net, [udp, tcp, gre], 3)
    assert [r["frame"] for r in recs] == [udp, tcp, gre]


def test_egress_frames_are_pushed_by_the_tc_program(net):
    # To an address the client does not have: its kernel stays silent
    # (no RST or ARP comes back through XDP).
    macs = dict(src=net.mac_b, dst=net.mac_a)
    resp = bytes(eth(net, IP(src="192.0.2.2", dst="192.0.2.98")
                     / TCP(sport=80, dport=40001, flags="PA") / BODY, **macs))
    req = bytes(eth(net, IP(src="192.0.2.2", dst="192.0.2.98")
                    / TCP(sport=40002, dport=80, flags="PA") / HTTP_REQ, **macs))
    recs, _ = exchange(net, [resp, req], 2, from_server=True)
    assert [(r["frame"], r["hook"]) for r in recs] == [
        (resp[:54], Hook.TC_EGRESS), (req, Hook.TC_EGRESS)]
    assert recs[0]["flags"] == EVF.REVERSE | EVF.HDR_ONLY
