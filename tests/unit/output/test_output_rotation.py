"""LogSet rotation by size (--log-max-size/--log-keep) and reopen() for logrotate."""

from __future__ import annotations

import json
import os

import pytest

from pakemon.cli import build_parser
from pakemon.detect.rules import ANY_PORT, PortSpec, Rule
from pakemon.events import Alert, Notice, NoticeKind
from pakemon.output import LogSet

RULE = Rule(name="CGI-test-cgi", proto="tcp", src=ANY_PORT,
            dst=PortSpec("80", ((80, 80),), False), patterns=())


def alert(i: int) -> Alert:
    body = b"GET /cgi-bin/test-cgi?n=%d HTTP/1.0\r\n" % i
    return Alert(ts=979242051.0 + i, rule=RULE, proto="TCP", src_ip="194.168.10.12",
                 dst_ip="192.168.10.5", src_port=1024 + i, dst_port=80, ip_proto=6,
                 payload=body, dump=body)


def files_of(d, name):
    """FILE, FILE.1 ... that exist, newest first."""
    out = [d / name] if (d / name).exists() else []
    i = 1
    while (d / f"{name}.{i}").exists():
        out.append(d / f"{name}.{i}")
        i += 1
    return out


def eve_ports(paths):
    ports = []
    for p in paths:
        for line in p.read_text().splitlines():
            ports.append(json.loads(line)["src_port"])  # a split line would not parse
    return ports


def test_rotation_at_size_keeps_every_entry_exactly_once(tmp_path):
    n = 40
    with LogSet(tmp_path, max_bytes=2000, keep=100) as logs:
        for i in range(n):
            logs.write(alert(i))
    for name in ("alert.log", "dump.log", "eve.json"):
        paths = files_of(tmp_path, name)
        assert len(paths) > 1, name  # it did rotate
        for p in paths:
            assert p.stat().st_size <= 2000
    eves = files_of(tmp_path, "eve.json")
    assert sorted(eve_ports(eves)) == [1024 + i for i in range(n)]
    # oldest in the highest number: reading FILE.N ... FILE gives the order
    assert eve_ports(list(reversed(eves))) == [1024 + i for i in range(n)]
    # alert.log entries are never split: each file starts with an entry header
    alerts = files_of(tmp_path, "alert.log")
    total = 0
    for p in alerts:
        text = p.read_text()
        assert text.startswith("TCP 194.168.10.12(") and text.endswith("\n\n")
        total += text.count("\nCGI-test-cgi\n")
    assert total == n


def test_keep_count_is_honoured_oldest_dropped(tmp_path):
    with LogSet(tmp_path, max_bytes=600, keep=2) as logs:
        for i in range(30):
            logs.write(alert(i))
    eves = files_of(tmp_path, "eve.json")
    assert [p.name for p in eves] == ["eve.json", "eve.json.1", "eve.json.2"]
    assert not (tmp_path / "eve.json.3").exists()
    ports = eve_ports(list(reversed(eves)))
    assert ports == sorted(ports) and ports[-1] == 1024 + 29  # the newest kept, in order
    assert len(ports) < 30  # the oldest dropped


def test_entry_bigger_than_max_goes_alone_into_a_fresh_file(tmp_path):
    with LogSet(tmp_path, max_bytes=10, keep=5) as logs:
        logs.write(alert(0))
        logs.write(alert(1))
    assert eve_ports([tmp_path / "eve.json.1"]) == [1024]
    assert eve_ports([tmp_path / "eve.json"]) == [1025]


def test_no_rotation_by_default(tmp_path):
    with LogSet(tmp_path) as logs:
        for i in range(50):
            logs.write(alert(i))
    assert files_of(tmp_path, "eve.json") == [tmp_path / "eve.json"]


def test_rotation_counts_what_the_file_already_holds(tmp_path):
    with LogSet(tmp_path, max_bytes=1000) as logs:
        logs.write(alert(0))
    size = (tmp_path / "eve.json").stat().st_size
    with LogSet(tmp_path, max_bytes=size + 10) as logs:  # a restart: appended, then rotated
        logs.write(alert(1))
    assert eve_ports([tmp_path / "eve.json.1"]) == [1024]
    assert eve_ports([tmp_path / "eve.json"]) == [1025]


def test_reopen_after_external_rename_loses_nothing(tmp_path):
    notice = Notice(ts=979242051.0, kind=NoticeKind.DECODE_TCP_BAD_HDR_LEN,
                    message="invalid TCP header", proto="TCP",
                    src_ip="194.168.10.12", dst_ip="192.168.10.5")
    with LogSet(tmp_path) as logs:
        logs.write(alert(0))
        for name in ("alert.log", "dump.log", "eve.json"):  # what logrotate does
            os.rename(tmp_path / name, tmp_path / f"{name}.1")
        logs.write(alert(1))  # before the SIGHUP: still into the moved file
        logs.reopen()
        assert (tmp_path / "eve.json").exists()
        logs.write(alert(2))
        logs.write(notice)
    assert eve_ports([tmp_path / "eve.json.1"]) == [1024, 1025]
    lines = (tmp_path / "eve.json").read_text().splitlines()
    assert [json.loads(x).get("src_port") for x in lines] == [1026, None]
    assert (tmp_path / "dump.log").read_text().count("CGI-test-cgi") == 1
    assert (tmp_path / "alert.log").read_text().count("\n\n") == 2  # the alert, the notice
    assert "(1026)" in (tmp_path / "alert.log").read_text()
    assert oct((tmp_path / "eve.json").stat().st_mode & 0o777) == oct(0o640)


def test_reopen_of_a_closed_logset_is_an_error(tmp_path):
    logs = LogSet(tmp_path)
    logs.close()
    with pytest.raises(ValueError):
        logs.reopen()


@pytest.mark.parametrize("cmd", [["read", "x.pcap"], ["attach", "eth0"]])
def test_cli_options(cmd):
    p = build_parser()
    a = p.parse_args(cmd + ["--log-max-size", "10m", "--log-keep", "3", "--pcap-log",
                            "--pcap-log-size", "1m"])
    assert (a.log_max_size, a.log_keep, a.pcap_log, a.pcap_log_size) == (10 << 20, 3, True, 1 << 20)
    d = p.parse_args(cmd)
    assert (d.log_max_size, d.log_keep, d.pcap_log, d.pcap_log_size) == (0, 5, False, 64 << 20)
