"""alert.log and dump.log: the exact text of ../shared/spec/outputs.md."""

from __future__ import annotations

import calendar
import time

import pytest

from pakemon.detect.rules import ANY_PORT, PortSpec, Rule
from pakemon.events import Alert, Notice, NoticeKind
from pakemon.output.alert_log import (
    AlertLogWriter,
    alert_header,
    ctime_text,
    format_alert,
    format_notice,
)
from pakemon.output.dump_log import DumpLogWriter, format_dump, hexdump_lines


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ts(y, mo, d, h, mi, s, frac=0.0):
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac


def port(n):
    return PortSpec(str(n), ((n, n),), False)


def rule(name, proto="tcp", dst=port(80), src=ANY_PORT, **kw):
    return Rule(name=name, proto=proto, src=src, dst=dst, patterns=(), **kw)


def tcp_alert(**kw):
    args = dict(
        ts=ts(2001, 1, 11, 19, 40, 51, 0.123456),
        rule=rule("CGI-handler(CVE-1999-0148)"),
        proto="TCP",
        src_ip="194.168.10.12",
        dst_ip="192.168.10.5",
        src_port=1032,
        dst_port=80,
        ip_proto=6,
    )
    args.update(kw)
    return Alert(**args)


# --- alert.log ------------------------------------------------------------


def test_ctime_is_c_ctime_style(utc):
    assert ctime_text(ts(2001, 1, 11, 19, 40, 51)) == "Thu Jan 11 19:40:51 2001"
    # the day of the month is space padded, as C ctime() does
    assert ctime_text(ts(1970, 1, 1, 0, 0, 0)) == "Thu Jan  1 00:00:00 1970"
    # fractions are dropped, never rounded up into the next second
    assert ctime_text(ts(2001, 1, 11, 19, 40, 51, 0.9999999)) == "Thu Jan 11 19:40:51 2001"


def test_ctime_is_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    try:
        assert ctime_text(ts(2001, 1, 12, 0, 40, 51)) == "Thu Jan 11 19:40:51 2001"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_tcp_alert_entry_spec_example(utc):
    assert format_alert(tcp_alert()) == (
        "TCP 194.168.10.12(1032)->192.168.10.5(80) Thu Jan 11 19:40:51 2001\n"
        "CGI-handler(CVE-1999-0148)\n"
    )


def test_udp_alert_entry_spec_example(utc):
    a = Alert(
        ts=ts(2001, 1, 11, 19, 41, 2),
        rule=rule("BO-BackOrifice", proto="udp", dst=port(31337)),
        proto="UDP",
        src_ip="10.0.0.7",
        dst_ip="10.0.0.9",
        src_port=1031,
        dst_port=31337,
        ip_proto=17,
    )
    assert format_alert(a) == (
        "UDP 10.0.0.7(1031)->10.0.0.9(31337) Thu Jan 11 19:41:02 2001\n"
        "BO-BackOrifice\n"
    )


def test_icmp_alert_entry_has_no_ports(utc):
    a = Alert(
        ts=ts(2001, 1, 11, 19, 41, 2),
        rule=rule("ICMP-echo", proto="icmp", dst=ANY_PORT),
        proto="ICMP",
        src_ip="1.2.3.4",
        dst_ip="5.6.7.8",
        src_port=None,
        dst_port=None,
        ip_proto=1,
        icmp_type=8,
        icmp_code=0,
    )
    assert format_alert(a) == "ICMP 1.2.3.4->5.6.7.8 Thu Jan 11 19:41:02 2001\nICMP-echo\n"


def test_ip_rule_alert_entry(utc):
    a = Alert(
        ts=ts(2001, 1, 11, 19, 41, 2),
        rule=rule("IP-any", proto="ip", dst=ANY_PORT),
        proto="IP",
        src_ip="1.2.3.4",
        dst_ip="5.6.7.8",
        src_port=None,
        dst_port=None,
        ip_proto=47,
    )
    assert format_alert(a) == "IP 1.2.3.4->5.6.7.8 Thu Jan 11 19:41:02 2001\nIP-any\n"


def test_ipv6_alert_entry(utc):
    a = tcp_alert(src_ip="2001:db8::1", dst_ip="2001:db8::2")
    assert format_alert(a) == (
        "TCP 2001:db8::1(1032)->2001:db8::2(80) Thu Jan 11 19:40:51 2001\n"
        "CGI-handler(CVE-1999-0148)\n"
    )


def test_alert_entry_uses_snort_msg_when_present(utc):
    a = tcp_alert(rule=rule("sid-2000001", msg="ET WEB test-cgi"))
    assert format_alert(a).splitlines()[1] == "ET WEB test-cgi"


@pytest.mark.parametrize(
    "when,message,expected",
    [
        (
            ts(2001, 1, 11, 22, 59, 20),
            "Scan from 194.168.10.12 scan type: SYN",
            "Thu Jan 11 22:59:20 2001\nScan from 194.168.10.12 scan type: SYN\n",
        ),
        (
            ts(2001, 1, 12, 7, 25, 15),
            "invalid TCP header, from 194.168.10.12 to 192.168.10.5",
            "Fri Jan 12 07:25:15 2001\ninvalid TCP header, from 194.168.10.12 to 192.168.10.5\n",
        ),
        (
            ts(2001, 1, 12, 9, 2, 0),
            "Too much data in TCP receive queue, from 194.168.10.12:80 to 192.168.10.5:3983",
            "Fri Jan 12 09:02:00 2001\n"
            "Too much data in TCP receive queue, from 194.168.10.12:80 to 192.168.10.5:3983\n",
        ),
    ],
)
def test_notice_entries_spec_examples(utc, when, message, expected):
    n = Notice(ts=when, kind=NoticeKind.DECODE_TCP_BAD_HDR_LEN, message=message)
    assert format_notice(n) == expected


class _Buf:
    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)

    def text(self):
        return "".join(self.parts)


def test_alert_log_writer_separates_entries_with_blank_line(utc):
    buf = _Buf()
    w = AlertLogWriter(buf)
    w.write(tcp_alert())
    w.write(
        Alert(
            ts=ts(2001, 1, 11, 19, 41, 2),
            rule=rule("BO-BackOrifice", proto="udp", dst=port(31337)),
            proto="UDP",
            src_ip="10.0.0.7",
            dst_ip="10.0.0.9",
            src_port=1031,
            dst_port=31337,
        )
    )
    w.write(
        Notice(
            ts=ts(2001, 1, 12, 7, 25, 15),
            kind=NoticeKind.DECODE_TCP_BAD_HDR_LEN,
            message="invalid TCP header, from 194.168.10.12 to 192.168.10.5",
        )
    )
    assert buf.text() == (
        "TCP 194.168.10.12(1032)->192.168.10.5(80) Thu Jan 11 19:40:51 2001\n"
        "CGI-handler(CVE-1999-0148)\n"
        "\n"
        "UDP 10.0.0.7(1031)->10.0.0.9(31337) Thu Jan 11 19:41:02 2001\n"
        "BO-BackOrifice\n"
        "\n"
        "Fri Jan 12 07:25:15 2001\n"
        "invalid TCP header, from 194.168.10.12 to 192.168.10.5\n"
        "\n"
    )


def test_alert_log_writer_rejects_other_objects():
    with pytest.raises(TypeError):
        AlertLogWriter(_Buf()).write("not an event")


# --- dump.log -------------------------------------------------------------


def test_dump_entry_spec_example(utc):
    a = tcp_alert(
        ts=ts(2001, 1, 11, 19, 40, 53),
        rule=rule("CGI-test-cgi"),
        src_port=1033,
        dump=b"GET /cgi-bin/test-cgi HTTP/1.0\r\n",
    )
    assert format_dump(a) == (
        "TCP 194.168.10.12(1033)->192.168.10.5(80) Thu Jan 11 19:40:53 2001\n"
        "CGI-test-cgi (TCP * 80)\n"
        "47 45 54 20 2f 63 67 69 2d 62 69 6e 2f 74 65 73   GET /cgi-bin/tes\n"
        "74 2d 63 67 69 20 48 54 54 50 2f 31 2e 30 0d 0a   t-cgi HTTP/1.0..\n"
    )


def test_hexdump_short_last_line_is_padded():
    lines = hexdump_lines(b"0123456789abcdefXY\x00\x7f\x80\xff ~")
    assert lines == [
        "30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66   0123456789abcdef",
        "58 59 00 7f 80 ff 20 7e" + " " * 24 + "   XY.... ~",
    ]
    # the ASCII column starts at the same place on every line
    assert lines[0].index("0123") == lines[1].index("XY") == 50


def test_hexdump_every_byte_value():
    data = bytes(range(256))
    lines = hexdump_lines(data)
    assert len(lines) == 16
    for i, line in enumerate(lines):
        chunk = data[i * 16 : i * 16 + 16]
        hex_col, ascii_col = line[:47], line[50:]
        assert line[47:50] == "   "
        assert bytes.fromhex(hex_col) == chunk
        assert hex_col == hex_col.lower()
        assert ascii_col == "".join(chr(b) if 32 <= b <= 126 else "." for b in chunk)


def test_hexdump_empty():
    assert hexdump_lines(b"") == []


def test_dump_entry_udp_and_icmp_service(utc):
    udp = Alert(
        ts=ts(2001, 1, 11, 19, 41, 2),
        rule=rule("BO-BackOrifice", proto="udp", dst=port(31337), src=PortSpec("1024:65535", ((1024, 65535),), False)),
        proto="UDP",
        src_ip="10.0.0.7",
        dst_ip="10.0.0.9",
        src_port=1031,
        dst_port=31337,
        dump=b"*!*QWTY?",
    )
    assert format_dump(udp) == (
        "UDP 10.0.0.7(1031)->10.0.0.9(31337) Thu Jan 11 19:41:02 2001\n"
        "BO-BackOrifice (UDP 1024:65535 31337)\n"
        "2a 21 2a 51 57 54 59 3f" + " " * 24 + "   *!*QWTY?\n"
    )
    icmp = Alert(
        ts=ts(2001, 1, 11, 19, 41, 2),
        rule=rule("ICMP-echo", proto="icmp", src=port(8), dst=ANY_PORT),
        proto="ICMP",
        src_ip="fe80::1",
        dst_ip="fe80::2",
        src_port=None,
        dst_port=None,
        ip_proto=58,
        icmp_type=128,
        icmp_code=0,
        dump=b"\x00\x01",
    )
    assert format_dump(icmp) == (
        "ICMP fe80::1->fe80::2 Thu Jan 11 19:41:02 2001\n"
        "ICMP-echo (ICMP 8 *)\n"
        "00 01" + " " * 42 + "   ..\n"
    )


def test_dump_log_writer_skips_notices_and_separates_entries(utc):
    buf = _Buf()
    w = DumpLogWriter(buf)
    a = tcp_alert(ts=ts(2001, 1, 11, 19, 40, 53), rule=rule("CGI-test-cgi"), src_port=1033, dump=b"GET /")
    w.write(a)
    w.write(Notice(ts=0.0, kind=NoticeKind.DECODE_TCP_BAD_HDR_LEN, message="x"))
    w.write(a)
    entry = (
        "TCP 194.168.10.12(1033)->192.168.10.5(80) Thu Jan 11 19:40:53 2001\n"
        "CGI-test-cgi (TCP * 80)\n"
        "47 45 54 20 2f" + " " * 33 + "   GET /\n"
    )
    assert buf.text() == entry + "\n" + entry + "\n"


def test_header_matches_between_logs(utc):
    a = tcp_alert(dump=b"x")
    assert format_dump(a).splitlines()[0] == format_alert(a).splitlines()[0] == alert_header(a)
