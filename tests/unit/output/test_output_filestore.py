"""filestore on disk: a filestore rule's files under <log dir>/filestore in
Suricata's v2 layout (sha256 names, one copy), each with an EVE fileinfo
line after its alert; a refused write is counted and told, not fatal."""

from __future__ import annotations

import hashlib
import json

from pakemon.cli import main
from pakemon.lab.traffic import TcpConnection, write_pcap

BODY = b"MZ" + bytes(range(256)) * 4


def _capture(path, bodies):
    frames = []
    for i, body in enumerate(bodies):
        c = TcpConnection("10.0.0.1", "10.0.0.2", 40000 + i, 80).open()
        c.send(b"GET /dl/tool.exe HTTP/1.1\r\nHost: h\r\n\r\n")
        c.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
               from_client=False)
        frames += c.close()
    write_pcap(path, frames)


def _read(tmp_path, log_dir):
    (tmp_path / "r.rules").write_text(
        'alert http any any -> any any (msg:"exe download"; flow:to_client; fileext:"exe"; '
        'filestore; sid:7;)\n')
    return main(["read", "-q", "--log-dir", str(log_dir), "--rules", str(tmp_path / "r.rules"),
                 str(tmp_path / "c.pcap")])


def test_files_are_stored_once_with_a_fileinfo_line(tmp_path):
    _capture(tmp_path / "c.pcap", [BODY, BODY, b"other"])
    assert _read(tmp_path, tmp_path / "logs") == 0
    sha = hashlib.sha256(BODY).hexdigest()
    stored = tmp_path / "logs" / "filestore" / sha[:2] / sha
    assert stored.read_bytes() == BODY
    files = sorted(p.name for p in (tmp_path / "logs" / "filestore").rglob("*") if p.is_file())
    assert files == sorted([sha, hashlib.sha256(b"other").hexdigest()])
    lines = [json.loads(x) for x in (tmp_path / "logs" / "eve.json").read_text().splitlines()]
    kinds = [x["event_type"] for x in lines]
    assert kinds == ["alert", "fileinfo"] * 3
    info = lines[1]
    assert info["fileinfo"] == {"filename": "/dl/tool.exe", "sid": [7], "gaps": False,
                                "state": "CLOSED", "sha256": sha, "stored": True,
                                "size": len(BODY)}
    assert info["flow_id"] == lines[0]["flow_id"] and info["app_proto"] == "http"


def test_a_refused_file_is_counted_and_told(tmp_path, capsys):
    _capture(tmp_path / "c.pcap", [BODY])
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "filestore").write_text("not a directory")  # (mkdir under it fails)
    assert _read(tmp_path, log_dir) != 0
    err = capsys.readouterr().err
    assert "cannot store a file in" in err and "files not stored: 1 of 1" in err
    lines = [json.loads(x) for x in (log_dir / "eve.json").read_text().splitlines()]
    assert [x["event_type"] for x in lines] == ["alert", "fileinfo"]
    assert lines[1]["fileinfo"]["stored"] is False
