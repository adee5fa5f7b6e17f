"""--pcap-log: the packets of alerted flows in pakemon.pcap."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT

from pakemon.capture import open_capture
from pakemon.decode import decode_frame
from pakemon.lab.traffic import http_exchange, write_pcap
from pakemon.output.pcaplog import PcapLog, packet_flow_key

C, S, OTHER = "194.168.10.12", "192.168.10.5", "194.168.10.13"
PHF = b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n"


def cli(*args):
    env = dict(os.environ, TZ="UTC")
    return subprocess.run([sys.executable, "-m", "pakemon.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def frames_of(path):
    with open_capture(path) as r:
        return [(ts, lt, bytes(f)) for ts, lt, f in r]


def test_pcap_log_holds_the_alerted_flow_from_its_alert_on(tmp_path):
    benign = http_exchange(OTHER, S, 2000, b"GET /index.html HTTP/1.0\r\n\r\n", b"hi", ts=100.0)
    attack = http_exchange(C, S, 1032, PHF, b"no", ts=100.5)
    benign2 = http_exchange(OTHER, S, 2001, b"GET /a.html HTTP/1.0\r\n\r\n", b"hi", ts=101.5)
    cap = tmp_path / "in.pcap"
    write_pcap(cap, sorted(benign + attack + benign2, key=lambda f: f[0]))
    logs = tmp_path / "logs"
    r = cli("read", cap, "--log-dir", logs, "--pcap-log")
    assert r.returncode == 0, r.stderr
    assert "phf" in (logs / "alert.log").read_text().lower()

    out = frames_of(logs / "pakemon.pcap")
    assert out
    attack_key = packet_flow_key(decode_frame(1, attack[0][1]))
    for _, lt, f in out:
        assert lt == 1
        assert packet_flow_key(decode_frame(1, f)) == attack_key  # no other flow
    written = [f for _, _, f in out]
    request = next(f for _, f in attack if PHF in f)
    assert request in written  # the alerting request frame
    i = [f for _, f in attack].index(request)
    # the alerting frame and every later frame of the flow, both directions, in order
    assert written == [f for _, f in attack[i:]]
    assert [round(ts, 6) for ts, _, _ in out] == [round(ts, 6) for ts, _ in attack[i:]]


def test_without_the_option_there_is_no_pcap(tmp_path):
    cap = tmp_path / "in.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, PHF, b"no", ts=100.0))
    logs = tmp_path / "logs"
    assert cli("read", cap, "--log-dir", logs).returncode == 0
    assert not (logs / "pakemon.pcap").exists()


def test_pcap_log_rotates_by_size_and_appends_after_restart(tmp_path):
    attack = http_exchange(C, S, 1032, PHF, b"no", ts=100.0)
    size = 24 + 2 * (16 + max(len(f) for _, f in attack))
    log = PcapLog(tmp_path, max_bytes=size, keep=2)
    for ts, f in attack:
        log.write(ts, f)
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["pakemon.pcap", "pakemon.pcap.1", "pakemon.pcap.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= size
        frames_of(p)  # each one a whole, readable capture
    # a restart appends to the same file, one header only
    n = len(frames_of(tmp_path / "pakemon.pcap"))
    log = PcapLog(tmp_path, max_bytes=0, keep=2)
    log.write(200.0, attack[0][1])
    log.close()
    assert len(frames_of(tmp_path / "pakemon.pcap")) == n + 1
