"""LogSet: the three logs in one directory, appended to, never truncated."""

from __future__ import annotations

import calendar
import json
import stat
import time

import pytest

from pakemon.detect.rules import ANY_PORT, PortSpec, Rule
from pakemon.events import Alert, Notice, NoticeKind
from pakemon.output import LogSet, format_alert, format_dump, format_eve, format_notice


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


T0 = calendar.timegm((2001, 1, 11, 19, 40, 53, 0, 0, 0))
RULE = Rule(name="CGI-test-cgi", proto="tcp", src=ANY_PORT, dst=PortSpec("80", ((80, 80),), False), patterns=())
ALERT = Alert(
    ts=T0, rule=RULE, proto="TCP", src_ip="194.168.10.12", dst_ip="192.168.10.5",
    src_port=1033, dst_port=80, ip_proto=6,
    payload=b"GET /cgi-bin/test-cgi HTTP/1.0\r\n", dump=b"GET /cgi-bin/test-cgi HTTP/1.0\r\n",
)
NOTICE = Notice(
    ts=T0 + 1, kind=NoticeKind.DECODE_TCP_BAD_HDR_LEN,
    message="invalid TCP header, from 194.168.10.12 to 192.168.10.5",
    proto="TCP", src_ip="194.168.10.12", dst_ip="192.168.10.5",
)


def read(path):
    return path.read_text(encoding="utf-8")


def test_creates_directory_and_dispatches(tmp_path, utc):
    d = tmp_path / "a" / "b"
    with LogSet(d) as logs:
        logs.write(ALERT)
        logs.write(NOTICE)
    assert read(d / "alert.log") == format_alert(ALERT) + "\n" + format_notice(NOTICE) + "\n"
    assert read(d / "dump.log") == format_dump(ALERT) + "\n"  # notices not dumped
    assert read(d / "eve.json") == format_eve(ALERT) + format_eve(NOTICE)
    assert read(d / "dump.log") == (
        "TCP 194.168.10.12(1033)->192.168.10.5(80) Thu Jan 11 19:40:53 2001\n"
        "CGI-test-cgi (TCP * 80)\n"
        "47 45 54 20 2f 63 67 69 2d 62 69 6e 2f 74 65 73   GET /cgi-bin/tes\n"
        "74 2d 63 67 69 20 48 54 54 50 2f 31 2e 30 0d 0a   t-cgi HTTP/1.0..\n"
        "\n"
    )


def test_append_never_truncate(tmp_path, utc):
    logs = LogSet(tmp_path)
    logs.write(ALERT)
    logs.close()
    logs = LogSet(tmp_path)
    logs.write(NOTICE)
    logs.close()
    assert read(tmp_path / "alert.log") == format_alert(ALERT) + "\n" + format_notice(NOTICE) + "\n"
    assert read(tmp_path / "dump.log") == format_dump(ALERT) + "\n"
    eve = read(tmp_path / "eve.json").splitlines()
    assert [json.loads(x)["event_type"] for x in eve] == ["alert", "anomaly"]


def test_existing_content_is_kept(tmp_path, utc):
    (tmp_path / "alert.log").write_text("old entry\n\n")
    with LogSet(tmp_path) as logs:
        logs.write(ALERT)
    assert read(tmp_path / "alert.log") == "old entry\n\n" + format_alert(ALERT) + "\n"


def test_write_many_flushes_once_batch_visible(tmp_path, utc):
    logs = LogSet(tmp_path)
    try:
        assert logs.write_many([ALERT, NOTICE, ALERT]) == 3
        # visible on disk before close: flushed after the batch
        eve = read(tmp_path / "eve.json").splitlines()
        assert [json.loads(x)["event_type"] for x in eve] == ["alert", "anomaly", "alert"]
        assert read(tmp_path / "dump.log").count("CGI-test-cgi (TCP * 80)") == 2
        assert logs.alerts_written == 2 and logs.notices_written == 1
    finally:
        logs.close()


def test_lazy_write_many_waits_for_size_or_time(tmp_path, utc, monkeypatch):
    """write_many(lazy=True) (a capture file's reader) keeps batches in
    memory until a file holds LAZY_BYTES or LAZY_S passed, then writes
    everything held, in order; flush() and close() write the rest."""
    import pakemon.output as output

    clock = [1000.0]
    monkeypatch.setattr(output.time, "monotonic", lambda: clock[0])
    logs = LogSet(tmp_path)
    try:
        logs.write_many([ALERT], lazy=True)
        logs.write_many([NOTICE], lazy=True)
        assert read(tmp_path / "eve.json") == ""  # held
        clock[0] += output.LAZY_S
        logs.write_many([ALERT], lazy=True)  # due by time: all three go
        eve = read(tmp_path / "eve.json").splitlines()
        assert [json.loads(x)["event_type"] for x in eve] == ["alert", "anomaly", "alert"]
        # by size, the clock standing still
        per = max(len(format_dump(ALERT)) + 1, len(format_eve(ALERT)))  # (the largest file)
        n = -(-output.LAZY_BYTES // per)
        logs.write_many([ALERT] * (n - 1), lazy=True)
        assert read(tmp_path / "dump.log").count("CGI-test-cgi (TCP * 80)") == 2
        logs.write_many([ALERT], lazy=True)  # eve.json's pending bytes reach LAZY_BYTES
        assert read(tmp_path / "dump.log").count("CGI-test-cgi (TCP * 80)") == n + 2
        logs.write_many([NOTICE], lazy=True)
        logs.flush()
        assert read(tmp_path / "alert.log").endswith(format_notice(NOTICE) + "\n")
    finally:
        logs.close()
    assert logs.alerts_written == n + 2


def test_write_flushes(tmp_path, utc):
    with LogSet(tmp_path) as logs:
        logs.write(NOTICE)
        assert read(tmp_path / "alert.log") == format_notice(NOTICE) + "\n"


def test_eve_lines_parse_and_keep_key_order(tmp_path, utc):
    with LogSet(tmp_path) as logs:
        logs.write_many([ALERT, NOTICE])
    lines = read(tmp_path / "eve.json").splitlines()
    first = json.loads(lines[0])
    assert list(first)[:14] == [
        "timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip",
        "dest_port", "proto", "community_id", "alert", "payload",
        "payload_printable", "stream", "pkt_src",
    ]
    assert json.loads(lines[1])["anomaly"]["event"] == "decode_tcp_bad_hdr_len"


def test_close_idempotent_and_write_after_close(tmp_path):
    logs = LogSet(tmp_path)
    logs.close()
    logs.close()
    assert logs.closed
    with pytest.raises(ValueError):
        logs.write(ALERT)


def test_rejects_other_objects(tmp_path):
    with LogSet(tmp_path) as logs:
        with pytest.raises(TypeError):
            logs.write("nope")


def test_files_not_world_readable(tmp_path):
    with LogSet(tmp_path):
        pass
    for name in ("alert.log", "dump.log", "eve.json"):
        assert not (tmp_path / name).stat().st_mode & stat.S_IROTH


class _Disk:
    """os.write as on a file system with ``room`` bytes left: a write is cut
    where the room ends, the next one refused with ENOSPC."""

    def __init__(self, room):
        self.room = room
        self.real = None

    def write(self, fd, data):
        import errno
        import os

        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = self.real(fd, bytes(data[:self.room]))
        self.room -= n
        return n


@pytest.fixture
def disk(monkeypatch):
    import os

    from pakemon import output

    d = _Disk(0)
    d.real = os.write
    monkeypatch.setattr(output.os, "write", d.write)
    return d


def test_a_full_disk_is_counted_not_raised_and_leaves_no_torn_entry(tmp_path, utc, disk):
    said = []
    logs = LogSet(tmp_path, report=said.append)
    eve_one = len(format_eve(ALERT).encode())
    per_alert = sum(len(f(ALERT).encode()) + 1 for f in (format_alert, format_dump)) + eve_one
    disk.room = 2 * per_alert + eve_one // 2  # two alerts fit, the third is cut
    logs.write_many([ALERT] * 5)  # no exception
    eve = (tmp_path / "eve.json").read_text().splitlines()
    assert len(eve) <= 2 and all(json.loads(line) for line in eve)  # no torn line
    alerts = (tmp_path / "alert.log").read_text()
    lost = logs.entries_lost
    assert lost == 3 * 5 - (alerts.count("CGI-test-cgi") + len(eve)
                            + (tmp_path / "dump.log").read_text().count("CGI-test-cgi"))
    assert lost >= 5
    # one line per file refused, naming it and the reason
    assert said and all("No space left on device" in s for s in said)
    assert len(said) == len(set(said))
    # room again: later entries go through, after the refused ones' place
    disk.room = 10**9
    logs.write_many([NOTICE])
    assert json.loads((tmp_path / "eve.json").read_text().splitlines()[-1])["event_type"] \
        == "anomaly"
    logs.close()
    assert logs.entries_lost == lost  # counted, and kept after close
    n = len(said)
    disk.room = 0
    logs2 = LogSet(tmp_path, report=said.append)
    logs2.write(ALERT)
    logs2.close()
    assert logs2.entries_lost == 3 and len(said) == n + 3  # each file said once


def test_a_failed_reopen_counts_what_cannot_be_written(tmp_path, utc, monkeypatch):
    from pakemon import output

    logs = LogSet(tmp_path)
    logs.write(ALERT)

    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(output, "_open_append", refuse)
    with pytest.raises(OSError):
        logs.reopen()  # the caller says so (attach: on SIGHUP)
    logs.write(ALERT)  # no exception, no growing backlog
    assert logs.entries_lost >= 1
    monkeypatch.undo()
    logs.close()


def test_a_full_disk_leaves_the_pcap_log_readable_and_counts_its_records(tmp_path, disk):
    from pakemon.capture import open_capture
    from pakemon.output.pcaplog import HEADER, RECORD, PcapLog

    said = []
    logs = LogSet(tmp_path, report=said.append)
    logs.pcaplog = PcapLog(tmp_path)
    frame = bytes(range(60))
    disk.room = 10**9
    logs.write(NOTICE)  # the three text logs have room
    disk.room = HEADER.size + 2 * (RECORD.size + len(frame)) + 7  # 2 records and a bit
    for i in range(5):
        logs.pcaplog.write(1000.0 + i, frame)
    logs.flush()
    logs.close()
    with open_capture(tmp_path / "pakemon.pcap") as r:  # no torn record
        got = [bytes(f) for _ts, _lt, f in r]
    assert got == [frame, frame]
    assert logs.entries_lost == 3
    assert said == [f"cannot write {tmp_path / 'pakemon.pcap'}: No space left on device; what "
                    "cannot be written is counted (log entries not written), later entries "
                    "are tried again"]
