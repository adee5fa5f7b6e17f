"""eve.json: Suricata EVE compatible lines, Community ID v1."""

from __future__ import annotations

import base64
import calendar
import hashlib
import ipaddress
import json
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pakemon.detect.rules import ANY_PORT, PortSpec, Rule
from pakemon.events import Alert, Notice, NoticeKind
from pakemon.output.eve import (
    EveWriter,
    anomaly_type,
    community_id,
    eve_timestamp,
    flow_id,
    format_eve,
    payload_printable,
)


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ts(y, mo, d, h, mi, s, frac=0.0):
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac


def rule(name, proto="tcp", dst=PortSpec("80", ((80, 80),), False), **kw):
    return Rule(name=name, proto=proto, src=ANY_PORT, dst=dst, patterns=(), **kw)


T0 = ts(2001, 1, 11, 19, 40, 51, 0.123456)
CGI = rule("CGI-handler(CVE-1999-0148)")


def tcp_alert(**kw):
    args = dict(
        ts=T0,
        rule=CGI,
        proto="TCP",
        src_ip="194.168.10.12",
        dst_ip="192.168.10.5",
        src_port=1032,
        dst_port=80,
        ip_proto=6,
        payload=b"GET /cgi-bin/phf HTTP/1.0\r\n\x00\xff",
    )
    args.update(kw)
    return Alert(**args)


def parse(line: str) -> dict:
    assert line.endswith("\n") and line.count("\n") == 1
    return json.loads(line)


# --- independent Community ID v1 ------------------------------------------


def ref_community_id(proto, saddr, daddr, sport=None, dport=None, seed=0):
    """Community ID v1 written straight from the specification (no ICMP mapping)."""
    s = ipaddress.ip_address(saddr).packed
    d = ipaddress.ip_address(daddr).packed
    if sport is not None and (d, dport) < (s, sport):
        s, d, sport, dport = d, s, dport, sport
    elif sport is None and d < s:
        s, d = d, s
    data = struct.pack("!H", seed) + s + d + struct.pack("BB", proto, 0)
    if sport is not None:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


# Published test vectors (Community ID spec baseline, as used by Zeek's and
# other implementations' test suites).
@pytest.mark.parametrize(
    "args,expected",
    [
        ((6, "1.2.3.4", "5.6.7.8", 1122, 3344), "1:wCb3OG7yAFWelaUydu0D+125CLM="),
        ((6, "5.6.7.8", "1.2.3.4", 3344, 1122), "1:wCb3OG7yAFWelaUydu0D+125CLM="),
        ((17, "1.2.3.4", "5.6.7.8", 1122, 3344), "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
        ((1, "1.2.3.4", "5.6.7.8", 8, 0), "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
        ((1, "5.6.7.8", "1.2.3.4", 0, 0), "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
        (
            (58, "fe80:1:203:405:607:809:a0b:c0d", "fe80:1011:1213:1415:1617:1819:1a1b:1c1d", 128, 0),
            "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
        ),
        ((46, "1.2.3.4", "5.6.7.8"), "1:ikv3kmf89luf73WPz1jOs49S768="),
    ],
)
def test_community_id_published_vectors(args, expected):
    assert community_id(*args) == expected


@pytest.mark.parametrize(
    "proto,s,d,sp,dp",
    [
        (6, "194.168.10.12", "192.168.10.5", 1032, 80),
        (17, "10.0.0.9", "10.0.0.7", 31337, 1031),
        (6, "2001:db8::1", "2001:db8::2", 40000, 443),
        (6, "2001:db8::2", "2001:db8::1", 443, 40000),
        (6, "10.0.0.1", "10.0.0.1", 80, 1024),
    ],
)
def test_community_id_matches_reference_implementation(proto, s, d, sp, dp):
    assert community_id(proto, s, d, sp, dp) == ref_community_id(proto, s, d, sp, dp)
    assert community_id(proto, d, s, dp, sp) == community_id(proto, s, d, sp, dp)


def test_community_id_unavailable():
    assert community_id(6, "1.2.3.4", "5.6.7.8") is None  # TCP without ports
    assert community_id(0, "1.2.3.4", "5.6.7.8") is None
    assert community_id(6, "", "5.6.7.8", 1, 2) is None
    assert community_id(6, "not-an-ip", "5.6.7.8", 1, 2) is None
    assert community_id(6, "1.2.3.4", "2001:db8::1", 1, 2) is None  # mixed families
    assert community_id(6, "1.2.3.4", "5.6.7.8", 70000, 2) is None  # not a port


_ADDR4 = st.sampled_from(["10.0.0.1", "10.0.0.2", "192.168.1.1", "1.2.3.4"]) | st.ip_addresses(
    v=4).map(str)
_ADDR6 = st.sampled_from(["2001:db8::1", "2001:db8::2", "fe80::1", "::ffff:1.2.3.4"]) | \
    st.ip_addresses(v=6).map(str)
# ICMP types with a counterpart (echo, timestamp, router, neighbour, ...)
# and without (one-way: not reordered), codes anything
_ICMP_TYPE = st.sampled_from([0, 8, 9, 10, 13, 14, 15, 16, 17, 18, 128, 129, 130, 131, 133, 134,
                              135, 136, 139, 140, 144, 145, 3, 5, 11, 1, 2, 4]) | \
    st.integers(0, 255)
_PORT = st.sampled_from([0, 53, 80, 1024, 65535]) | st.integers(0, 65535)


@settings(max_examples=400, deadline=None)
@given(st.data(), st.sampled_from([1, 6, 17, 58, 132, 46, 47, 89]), st.booleans())
def test_community_id_matches_the_communityid_package(data, proto, v6):
    """The hand-written hash (eve.community_id's docstring: the package is
    30 times slower) gives the package's answer for any flow: both address
    families, equal addresses, every ICMP type with and without a
    counterpart, protocols without ports."""
    import communityid

    addr = _ADDR6 if v6 else _ADDR4
    s = data.draw(addr)
    d = data.draw(st.just(s) | addr)
    make = communityid.FlowTuple
    if proto in (1, 58):
        sp, dp = data.draw(_ICMP_TYPE), data.draw(st.integers(0, 255))
        tpl = (make.make_icmp if proto == 1 else make.make_icmp6)(s, d, sp, dp)
    elif proto in (6, 17, 132):
        sp, dp = data.draw(_PORT), data.draw(_PORT)
        tpl = make(proto, s, d, sp, dp)
    else:
        sp = dp = None
        tpl = make.make_ip(s, d, proto)
    want = communityid.CommunityID(seed=0, use_base64=True).calc(tpl)
    assert want is not None
    assert community_id(proto, s, d, sp, dp) == want


# --- fields ---------------------------------------------------------------


def test_timestamp_utc(utc):
    assert eve_timestamp(T0) == "2001-01-11T19:40:51.123456+0000"
    assert eve_timestamp(ts(2001, 1, 11, 19, 40, 51)) == "2001-01-11T19:40:51.000000+0000"
    # never rounds into the next second (agrees with alert.log's ctime)
    assert eve_timestamp(ts(2001, 1, 11, 19, 40, 51, 0.9999999)) == "2001-01-11T19:40:51.999999+0000"


@pytest.mark.parametrize(
    "tz,expected",
    [
        ("EST+5", "2001-01-11T14:40:51.123456-0500"),
        ("IST-5:30", "2001-01-12T01:10:51.123456+0530"),
    ],
)
def test_timestamp_local_with_offset(monkeypatch, tz, expected):
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert eve_timestamp(T0) == expected
        # (both keep the last second's text: not across a change of TZ)
        from pakemon.output.alert_log import ctime_text
        assert ctime_text(T0) == time.asctime(time.localtime(int(T0)))
        assert ctime_text(T0)[11:13] == expected[11:13]  # the hour
    finally:
        monkeypatch.undo()
        time.tzset()


def test_payload_printable_like_suricata():
    assert payload_printable(b"GET / HTTP/1.0\r\n\x00\t\x7f\x80\xff~ ") == "GET / HTTP/1.0\r\n.....~ "
    assert payload_printable(b"") == ""
    every = bytes(range(256))
    want = "".join(chr(b) if 32 <= b <= 126 or b in (10, 13) else "." for b in every)
    assert payload_printable(every) == payload_printable(bytearray(every)) == want


def test_flow_id_stable_bidirectional_51_bits():
    a = flow_id(6, "194.168.10.12", "192.168.10.5", 1032, 80)
    assert a == flow_id(6, "192.168.10.5", "194.168.10.12", 80, 1032)
    assert a == flow_id(6, "194.168.10.12", "192.168.10.5", 1032, 80)  # deterministic
    assert 0 < a < 2**51
    assert a != flow_id(6, "194.168.10.12", "192.168.10.5", 1033, 80)
    assert a != flow_id(17, "194.168.10.12", "192.168.10.5", 1032, 80)
    assert flow_id(6, "::1", "::2", 1, 2) == flow_id(6, "0::2", "0:0::1", 2, 1)


def test_anomaly_type():
    assert anomaly_type("DECODE_TCP_BAD_HDR_LEN") == "decode"
    assert anomaly_type("CAPTURE_UNKNOWN_LINKTYPE") == "decode"
    assert anomaly_type("STREAM_OVERLAP") == "stream"
    assert anomaly_type("DEFRAG_OVERLAP") == "defrag"
    assert anomaly_type("APPLAYER_X") == "applayer"


# --- alerts ---------------------------------------------------------------

ALERT_KEYS = [
    "timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip",
    "dest_port", "proto", "community_id", "alert", "payload",
    "payload_printable", "stream", "pkt_src",
]
ALERT_OBJ_KEYS = ["action", "gid", "signature_id", "rev", "signature", "category", "severity"]


def test_tcp_alert_exact_line(utc):
    a = tcp_alert()
    fid = flow_id(6, "194.168.10.12", "192.168.10.5", 1032, 80)
    cid = ref_community_id(6, "194.168.10.12", "192.168.10.5", 1032, 80)
    sid = CGI.signature_id
    payload_b64 = base64.b64encode(a.payload).decode()
    assert format_eve(a) == (
        '{"timestamp":"2001-01-11T19:40:51.123456+0000",'
        f'"flow_id":{fid},"event_type":"alert",'
        '"src_ip":"194.168.10.12","src_port":1032,'
        '"dest_ip":"192.168.10.5","dest_port":80,"proto":"TCP",'
        f'"community_id":"{cid}",'
        '"alert":{"action":"allowed","gid":1,'
        f'"signature_id":{sid},"rev":1,'
        '"signature":"CGI-handler(CVE-1999-0148)","category":"","severity":3},'
        f'"payload":"{payload_b64}",'
        '"payload_printable":"GET /cgi-bin/phf HTTP/1.0\\r\\n..",'
        '"stream":1,"pkt_src":"wire/pcap"}\n'
    )
    rec = parse(format_eve(a))
    assert list(rec) == ALERT_KEYS
    assert list(rec["alert"]) == ALERT_OBJ_KEYS
    assert base64.b64decode(rec["payload"]) == a.payload
    assert 1_000_000 <= sid < 2**31


def test_alert_fields_from_rule(utc):
    r = rule("x", sid=2000001, rev=7, msg="ET WEB something", severity=1, category="web-application-attack")
    rec = parse(format_eve(tcp_alert(rule=r, action="blocked")))
    assert rec["alert"] == {
        "action": "blocked",
        "gid": 1,
        "signature_id": 2000001,
        "rev": 7,
        "signature": "ET WEB something",
        "category": "web-application-attack",
        "severity": 1,
    }


def test_udp_alert(utc):
    a = Alert(
        ts=T0, rule=rule("BO-BackOrifice", proto="udp"), proto="UDP",
        src_ip="10.0.0.7", dst_ip="10.0.0.9", src_port=1031, dst_port=31337,
        ip_proto=17, payload=b"*!*QWTY?",
    )
    rec = parse(format_eve(a))
    assert list(rec) == ALERT_KEYS
    assert rec["proto"] == "UDP"
    assert rec["stream"] == 0
    assert rec["src_port"] == 1031 and rec["dest_port"] == 31337
    assert rec["community_id"] == ref_community_id(17, "10.0.0.7", "10.0.0.9", 1031, 31337)
    assert rec["flow_id"] == flow_id(17, "10.0.0.9", "10.0.0.7", 31337, 1031)
    assert rec["payload_printable"] == "*!*QWTY?"


def test_icmp_alert_has_type_code_not_ports(utc):
    a = Alert(
        ts=T0, rule=rule("ICMP-echo", proto="icmp", dst=ANY_PORT), proto="ICMP",
        src_ip="1.2.3.4", dst_ip="5.6.7.8", src_port=None, dst_port=None,
        ip_proto=1, icmp_type=8, icmp_code=0, payload=b"abc",
    )
    rec = parse(format_eve(a))
    assert list(rec) == [
        "timestamp", "flow_id", "event_type", "src_ip", "dest_ip", "proto",
        "icmp_type", "icmp_code", "community_id", "alert", "payload",
        "payload_printable", "stream", "pkt_src",
    ]
    assert rec["proto"] == "ICMP"
    assert (rec["icmp_type"], rec["icmp_code"]) == (8, 0)
    assert rec["community_id"] == "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="
    assert rec["stream"] == 0


def test_icmp_without_ip_proto_uses_proto_text(utc):
    a = Alert(
        ts=T0, rule=rule("ICMP-echo", proto="icmp", dst=ANY_PORT), proto="ICMP",
        src_ip="1.2.3.4", dst_ip="5.6.7.8", src_port=None, dst_port=None,
        icmp_type=8, icmp_code=0,
    )
    rec = parse(format_eve(a))
    assert rec["proto"] == "ICMP"
    assert rec["community_id"] == "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="


def test_icmpv6_alert(utc):
    a = Alert(
        ts=T0, rule=rule("ICMP6-echo", proto="icmp", dst=ANY_PORT), proto="ICMP",
        src_ip="fe80:1:203:405:607:809:a0b:c0d", dst_ip="fe80:1011:1213:1415:1617:1819:1a1b:1c1d",
        src_port=None, dst_port=None, ip_proto=58, icmp_type=128, icmp_code=0,
    )
    rec = parse(format_eve(a))
    assert rec["proto"] == "IPv6-ICMP"
    # IPv6 written in full, as Suricata writes it
    assert rec["src_ip"] == "fe80:0001:0203:0405:0607:0809:0a0b:0c0d"
    assert rec["community_id"] == "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="
    assert "src_port" not in rec and "dest_port" not in rec


def test_ipv6_tcp_alert(utc):
    a = tcp_alert(src_ip="2001:db8::1", dst_ip="2001:db8::2")
    rec = parse(format_eve(a))
    assert list(rec) == ALERT_KEYS
    assert rec["src_ip"] == "2001:0db8:0000:0000:0000:0000:0000:0001"
    assert rec["dest_ip"] == "2001:0db8:0000:0000:0000:0000:0000:0002"
    assert rec["community_id"] == ref_community_id(6, "2001:db8::1", "2001:db8::2", 1032, 80)


def test_ip_rule_alert(utc):
    a = Alert(
        ts=T0, rule=rule("GRE-any", proto="ip", dst=ANY_PORT), proto="IP",
        src_ip="1.2.3.4", dst_ip="5.6.7.8", src_port=None, dst_port=None, ip_proto=47,
    )
    rec = parse(format_eve(a))
    assert rec["proto"] == "GRE"
    assert rec["community_id"] == ref_community_id(47, "1.2.3.4", "5.6.7.8")
    assert "src_port" not in rec
    assert rec["stream"] == 0
    odd = parse(format_eve(Alert(
        ts=T0, rule=rule("odd", proto="ip", dst=ANY_PORT), proto="IP",
        src_ip="1.2.3.4", dst_ip="5.6.7.8", src_port=None, dst_port=None, ip_proto=253,
    )))
    assert odd["proto"] == "253"
    assert odd["community_id"] == ref_community_id(253, "1.2.3.4", "5.6.7.8")


def test_eve_is_ascii_only(utc):
    r = rule("caf\u00e9-rule", msg="caf\u00e9 \u2603")
    line = format_eve(tcp_alert(rule=r))
    assert line.isascii()
    assert parse(line)["alert"]["signature"] == "caf\u00e9 \u2603"


# --- notices --------------------------------------------------------------


def test_anomaly_notice(utc):
    n = Notice(
        ts=ts(2001, 1, 12, 7, 25, 15),
        kind=NoticeKind.DECODE_TCP_BAD_HDR_LEN,
        message="invalid TCP header, from 194.168.10.12 to 192.168.10.5",
        proto="TCP", src_ip="194.168.10.12", dst_ip="192.168.10.5",
    )
    fid = flow_id(6, "194.168.10.12", "192.168.10.5", None, None)
    assert format_eve(n) == (
        '{"timestamp":"2001-01-12T07:25:15.000000+0000",'
        f'"flow_id":{fid},"event_type":"anomaly",'
        '"src_ip":"194.168.10.12","dest_ip":"192.168.10.5","proto":"TCP",'
        '"anomaly":{"type":"decode","event":"decode_tcp_bad_hdr_len",'
        '"message":"invalid TCP header, from 194.168.10.12 to 192.168.10.5"}}\n'
    )


def test_notice_with_ports(utc):
    n = Notice(
        ts=ts(2001, 1, 12, 9, 2, 0), kind=NoticeKind.DECODE_TCP_BAD_OPTIONS, message="m",
        proto="TCP", src_ip="194.168.10.12", dst_ip="192.168.10.5", src_port=80, dst_port=3983,
    )
    rec = parse(format_eve(n))
    assert list(rec) == [
        "timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip",
        "dest_port", "proto", "anomaly",
    ]
    assert rec["flow_id"] == flow_id(6, "192.168.10.5", "194.168.10.12", 3983, 80)


def test_notice_without_addresses(utc):
    n = Notice(ts=ts(2001, 1, 12, 9, 2, 0), kind=NoticeKind.CAPTURE_UNKNOWN_LINKTYPE, message="linktype 999")
    rec = parse(format_eve(n))
    assert rec == {
        "timestamp": "2001-01-12T09:02:00.000000+0000",
        "event_type": "anomaly",
        "anomaly": {"type": "decode", "event": "capture_unknown_linktype", "message": "linktype 999"},
    }


def test_writer_one_line_per_event(utc):
    class Buf(list):
        write = list.append

    buf = Buf()
    w = EveWriter(buf)
    w.write(tcp_alert())
    w.write(Notice(ts=T0, kind=NoticeKind.DECODE_UDP_BAD_LEN, message="m"))
    text = "".join(buf)
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")
    assert [json.loads(x)["event_type"] for x in lines] == ["alert", "anomaly"]
    with pytest.raises(TypeError):
        w.write(object())


def test_vlan_lists_the_tags_only(utc):
    """A tunnel's or NSH path's flow key in pkt.vlan is no VLAN: the record
    lists the 802.1Q IDs only (a GRE key's bytes made the writer raise)."""
    from pakemon.decode.packet import Packet
    from pakemon.events import PacketRef

    p = Packet()
    p.family = 4
    p.vlan = (5, ("gre", b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"), ("nsh", 9))
    rec = parse(format_eve(tcp_alert(pkt=PacketRef(p))))
    assert rec["vlan"] == [5] and rec["ip_v"] == 4
    p.vlan = (("gre", b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"),)
    assert "vlan" not in parse(format_eve(tcp_alert(pkt=PacketRef(p))))


def test_rule_metadata_as_suricata_writes_it(utc):
    """alert.metadata: each key once with its values in a list, keys in
    case-blind order, the values of a repeated key last given first (as
    Suricata's DetectMetadataParse prepends and then sorts), a key with no
    value left out; the rule's pairs as the Suricata parser stores them."""
    from pakemon.detect.suricata_parser import parse_suricata_rules

    text = ('alert tcp any any -> any 80 (msg:"m"; content:"x"; metadata: toto 1; '
            'metadata: Titi 2, jaivu gros_minet, lonely, tag A, TAG B; sid:7;)\n')
    (sr,), _, _ = parse_suricata_rules(text)
    r = sr.to_rule()
    obj = json.loads(format_eve(tcp_alert(rule=r)))
    assert obj["alert"]["metadata"] == {
        "jaivu": ["gros_minet"], "TAG": ["B", "A"], "Titi": ["2"], "toto": ["1"]}
    assert list(obj["alert"]["metadata"]) == ["jaivu", "TAG", "Titi", "toto"]
    # a rule without metadata (and a native rule) writes none
    (bare,), _, _ = parse_suricata_rules('alert tcp any any -> any 80 (content:"x"; sid:8;)\n')
    assert "metadata" not in json.loads(format_eve(tcp_alert(rule=bare.to_rule())))["alert"]
    assert "metadata" not in json.loads(format_eve(tcp_alert()))["alert"]
