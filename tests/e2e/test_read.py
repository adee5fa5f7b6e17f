"""End to end: `pakemon-xdp read` over generated captures, all three logs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import BUNDLED_RULES, ROOT, eve_alerts, read_eve

from pakemon.lab import samples
from pakemon.lab.traffic import http_exchange, write_pcap

C, S = "194.168.10.12", "192.168.10.5"
PHF_TS = 979242051.0  # Thu Jan 11 19:40:51 2001 UTC


def cli(*args, env_tz="UTC"):
    env = dict(os.environ, TZ=env_tz)
    return subprocess.run([sys.executable, "-m", "pakemon.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def test_phf_request_writes_the_alert_to_all_three_logs(tmp_path):
    cap = tmp_path / "phf.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n",
                                  b"no", ts=PHF_TS))
    logs = tmp_path / "logs"
    r = cli("read", cap, "--log-dir", logs)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    alert_log = (logs / "alert.log").read_text()
    # the SYN/SYN-ACK/ACK take 3 * 0.5 ms; the request is the 4th frame
    assert alert_log == ("TCP 194.168.10.12(1032)->192.168.10.5(80) Thu Jan 11 19:40:51 2001\n"
                         "CGI-phf(CVE-1999-0067)\n\n")
    dump = (logs / "dump.log").read_text().splitlines()
    assert dump[0] == "TCP 194.168.10.12(1032)->192.168.10.5(80) Thu Jan 11 19:40:51 2001"
    assert dump[1] == "CGI-phf(CVE-1999-0067) (TCP * 80)"
    assert dump[2] == "47 45 54 20 2f 63 67 69 2d 62 69 6e 2f 70 68 66   GET /cgi-bin/phf"
    assert dump[3] == ""
    (eve,) = read_eve(logs)
    assert eve["event_type"] == "alert"
    assert eve["timestamp"] == "2001-01-11T19:40:51.001500+0000"
    assert (eve["src_ip"], eve["src_port"], eve["dest_ip"], eve["dest_port"], eve["proto"]) == (
        C, 1032, S, 80, "TCP")
    assert eve["alert"]["signature"] == "CGI-phf(CVE-1999-0067)"
    assert eve["alert"]["action"] == "allowed"
    assert eve["community_id"].startswith("1:")
    assert "GET /cgi-bin/phf?Qalias=x" in eve["payload_printable"]
    assert "CGI-phf(CVE-1999-0067)" in r.stdout  # alerts by rule in the summary


def test_logs_are_appended_never_truncated(tmp_path):
    cap = tmp_path / "phf.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS))
    logs = tmp_path / "logs"
    for _ in range(2):
        assert cli("read", cap, "--log-dir", logs).returncode == 0
    assert len(read_eve(logs)) == 2
    assert (logs / "alert.log").read_text().count("CGI-phf") == 2


def test_demo_capture_gives_its_attacks_and_a_notice(tmp_path):
    logs = tmp_path / "logs"
    r = cli("read", ROOT / "pakemon" / "lab" / "demo.pcap", "--log-dir", logs)
    assert r.returncode == 0, r.stderr
    eve = read_eve(logs)
    sigs = sorted(e["alert"]["signature"] for e in eve if e["event_type"] == "alert")
    assert "CGI-phf(CVE-1999-0067)" in sigs
    assert "BO-BackOrifice" in sigs
    assert "ICMP-echo-large" in sigs
    assert "SMTP-exploit3" in sigs
    assert "HTTP-ApacheDOS" in sigs
    assert "IIS-administrator.pwd" in sigs
    anomalies = [e for e in eve if e["event_type"] == "anomaly"]
    # the demo's IIS unicode traversal (..%c0%af..) is an encoding anomaly too
    assert sorted(a["anomaly"]["event"] for a in anomalies) == [
        "decode_tcp_bad_hdr_len", "http_uri_encoding_anomaly"]
    assert "invalid TCP header, from 194.168.10.12 to 192.168.10.5" in (
        logs / "alert.log").read_text()
    assert "IP" in r.stdout and "OTHER" in r.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_log_the_disk_refuses_is_one_line_exit_4_and_the_other_logs_whole(tmp_path):
    """eve.json on a device that is always full (/dev/full: ENOSPC): one
    line says so, every entry it could not take is counted, the other logs
    are whole, and no traceback."""
    good = tmp_path / "good"
    assert cli("read", ROOT / "pakemon" / "lab" / "demo.pcap", "--log-dir", good).returncode == 0
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "eve.json").symlink_to("/dev/full")
    r = cli("read", ROOT / "pakemon" / "lab" / "demo.pcap", "--log-dir", logs)
    assert r.returncode == 4, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == (f"pakemon-xdp: cannot write {logs / 'eve.json'}: No space left on "
                        "device; what cannot be written is counted (log entries not "
                        "written), later entries are tried again")
    n_eve = len(read_eve(good))
    assert f"pakemon-xdp: log entries not written: {n_eve} " in r.stderr
    for name in ("alert.log", "dump.log"):
        assert (logs / name).read_text() == (good / name).read_text()
    assert "alerts by rule:" in r.stdout  # the summary all the same


def test_demo_capture_is_what_its_generator_makes(tmp_path):
    out = tmp_path / "demo.pcap"
    samples.main(["demo", str(out)])
    assert out.read_bytes() == (ROOT / "pakemon" / "lab" / "demo.pcap").read_bytes()


def test_benign_traffic_gives_no_alerts(tmp_path):
    cap = tmp_path / "benign.pcap"
    write_pcap(cap, samples.mixed_frames(3000, seed=11, attack_every=10**9))
    logs = tmp_path / "logs"
    r = cli("read", cap, "--log-dir", logs, "-q")
    assert r.returncode == 0, r.stderr
    assert read_eve(logs) == []
    assert "no alerts" in r.stdout


def test_attacks_scattered_in_mixed_traffic_are_each_found(tmp_path):
    frames = samples.mixed_frames(4000, seed=3, attack_every=25)
    cap = tmp_path / "mixed.pcap"
    write_pcap(cap, frames)
    logs = tmp_path / "logs"
    r = cli("read", cap, "--log-dir", logs, "-q")
    assert r.returncode == 0, r.stderr
    attacks = 0
    for _, frame in frames:
        if any(a.split(b"\r\n")[0] in frame for a in samples.HTTP_ATTACKS):
            attacks += 1
    flows = {(e["src_ip"], e["src_port"]) for e in read_eve(logs)}
    assert attacks > 5
    assert len(flows) == attacks


def test_truncated_capture_reports_offset_after_logging_what_came_before(tmp_path):
    frames = http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS)
    frames += http_exchange(C, S, 1033, b"GET /cgi-bin/test-cgi HTTP/1.0\r\n\r\n", ts=PHF_TS + 1)
    cap = tmp_path / "cut.pcap"
    write_pcap(cap, frames)
    data = cap.read_bytes()
    cap.write_bytes(data[:-30])  # cut inside the last record
    logs = tmp_path / "logs"
    r = cli("read", cap, "--log-dir", logs)
    assert r.returncode == 3
    assert "Traceback" not in r.stderr
    assert "offset" in r.stderr
    sigs = [e["alert"]["signature"] for e in read_eve(logs)]
    assert sigs == ["CGI-phf(CVE-1999-0067)", "CGI-test-cgi(CVE-1999-0070)"]


def test_not_a_capture_is_one_clear_error(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, this is not a capture\n")
    r = cli("read", bad, "--log-dir", tmp_path / "logs")
    assert r.returncode == 3
    assert "Traceback" not in r.stderr
    assert "notes.txt" in r.stderr and "offset 0" in r.stderr
    missing = cli("read", tmp_path / "nope.pcap", "--log-dir", tmp_path / "logs")
    assert missing.returncode == 3 and "Traceback" not in missing.stderr


def test_bad_rule_file_fails_with_file_line_column(tmp_path):
    rules = tmp_path / "bad.rules"
    rules.write_text('GOOD tcp * 80 "x"\nBAD tcpx * 80 "y"\n')
    cap = tmp_path / "phf.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET / HTTP/1.0\r\n\r\n"))
    r = cli("read", cap, "--rules", rules, "--log-dir", tmp_path / "logs")
    assert r.returncode == 1
    assert f"{rules}:2:5:" in r.stderr
    r = cli("read", cap, "--rules", rules, "--skip-bad-rules", "--log-dir", tmp_path / "l2")
    assert r.returncode == 0
    assert f"{rules}:2:5:" in r.stderr and "skipped" in r.stderr


def test_rules_check_and_tree_on_the_bundled_rules():
    r = cli("rules", "check", BUNDLED_RULES)
    assert r.returncode == 0, r.stderr
    t = cli("rules", "tree", BUNDLED_RULES)
    assert t.returncode == 0
    assert "(TCP * 80)" in t.stdout and '"/cgi-bin/phf"  <- CGI-phf(CVE-1999-0067)' in t.stdout


def test_rules_check_exits_1_on_errors(tmp_path):
    rules = tmp_path / "bad.rules"
    rules.write_text('A tcp * 80 |2f 6|\n')
    r = cli("rules", "check", rules)
    assert r.returncode == 1 and f"{rules}:1:" in r.stderr


@pytest.mark.parametrize("argv", [["--help"], ["read", "--help"], ["rules", "--help"],
                                  ["rules", "check", "--help"], ["rules", "tree", "--help"]])
def test_help_on_every_command_documents_exit_codes(argv):
    r = cli(*argv)
    assert r.returncode == 0
    assert "exit codes" in r.stdout


@pytest.mark.parametrize("argv", [[], ["read"], ["read", "x.pcap", "--bogus"], ["frobnicate"],
                                  ["rules"], ["read", "x.pcap", "--progress", "sometimes"],
                                  ["read", "x.pcap", "--max-sessions", "-1"],
                                  ["read", "x.pcap", "--stream-depth", "-5"],
                                  ["read", "x.pcap", "--defrag-timeout", "0"],
                                  ["read", "x.pcap", "--defrag-timeout", "nan"],
                                  ["read", "x.pcap", "--defrag-timeout", "inf"],
                                  ["attach", "nosuch0", "--bypass-timeout", "nan"],
                                  ["attach", "nosuch0", "--bypass-timeout", "inf"],
                                  ["read", "x.pcap", "--checksum", "maybe"],
                                  # an unset variable is not the current directory
                                  ["read", "x.pcap", "--log-dir", ""],
                                  ["read", "x.pcap", "--rules", " "],
                                  ["read", "x.pcap", "--vars", ""],
                                  ["read", "x.pcap", "--host-policy", ""],
                                  ["rules", "check", ""], ["lab", "--log-dir", ""]])
def test_bad_flags_are_usage_errors_without_traceback(argv):
    r = cli(*argv)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


def test_bundled_rules_have_figure_6_and_100_more():
    from pakemon.detect.rule_parser import load_rules

    rs = load_rules(BUNDLED_RULES)
    names = [r.name for r in rs.rules]
    assert len(names) >= 112
    for fig6 in ["FTP-exploit1", "SMTP-exploit3", "SMTP-exploit11(CVE-1999-0204)",
                 "DNS-named-exploit", "IIS-administrator.pwd", "IIS-ISM.DLL-Exploit",
                 "CGI-phf(CVE-1999-0067)", "HTTP-ApacheDOS", "RPC-portmap-request-rusers",
                 "IMAP-exploit2", "BO-BackOrifice", "ICMP-echo-large"]:
        assert fig6 in names


def test_progress_bar_reports_bytes_read(tmp_path):
    cap = tmp_path / "p.pcap"
    write_pcap(cap, samples.mixed_frames(500, seed=5))
    r = cli("read", cap, "--log-dir", tmp_path / "logs", "-q", "--progress", "always")
    assert r.returncode == 0, r.stderr
    assert "p.pcap" in r.stderr and "100%" in r.stderr
    quiet = cli("read", cap, "--log-dir", tmp_path / "logs", "-q")  # not a terminal: no bar
    assert "100%" not in quiet.stderr


def test_bad_host_policy_file_is_a_clear_usage_error(tmp_path):
    hp = tmp_path / "hosts.txt"
    hp.write_text("10.0.0.0/8 plan9\n")
    cap = tmp_path / "x.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET / HTTP/1.0\r\n\r\n"))
    r = cli("read", cap, "--host-policy", hp, "--log-dir", tmp_path / "logs")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{hp}:1:12: unknown policy 'plan9'" in r.stderr


def test_syn_scan_goes_to_alert_log_and_eve_as_scan(tmp_path):
    from pakemon.lab.traffic import SYN, tcp_frame

    cap = tmp_path / "scan.pcap"
    write_pcap(cap, [(PHF_TS + p * 0.01, tcp_frame(C, S, 40000, p, 7, 0, SYN))
                     for p in range(1, 120)])
    logs = tmp_path / "logs"
    r = cli("read", cap, "--log-dir", logs)
    assert r.returncode == 0, r.stderr
    assert f"Scan from {C} scan type: SYN" in (logs / "alert.log").read_text()
    (scan,) = [e for e in read_eve(logs) if e["event_type"] == "scan"]
    assert scan["src_ip"] == C and "Scan from" in scan["scan"]["message"]


def test_rules_check_reports_suricata_rules_loaded_and_skipped_by_keyword(tmp_path):
    rules = tmp_path / "et.rules"
    rules.write_text(
        'alert tcp $EXTERNAL_NET any -> $HOME_NET 80 (msg:"phf"; content:"/cgi-bin/phf"; '
        "http_uri; sid:1; rev:1;)\n"
        'alert tcp any any -> any any (msg:"bits"; lua:x.lua; content:"a"; sid:2;)\n')
    r = cli("rules", "check", rules)
    assert r.returncode == 0, r.stderr
    assert "1 of 2 Suricata rules loaded" in r.stdout and "lua 1" in r.stdout
    assert f"{rules}:2: sid 2 skipped: unsupported keyword 'lua'" in r.stderr
    assert r.stderr.count("sid 2 skipped") == 1
    assert "not inspected" not in r.stdout  # every loaded rule can alert


def test_rules_loaded_but_not_inspected_are_said(tmp_path):
    """A rule that parses but whose app-layer keyword has no parser here is
    named at load (rules check and read), not counted as working."""
    rules = tmp_path / "app.rules"
    rules.write_text(
        'alert tls any any -> any any (msg:"sni"; tls.sni; content:"evil"; sid:1;)\n'
        'alert tls any any -> any any (msg:"v"; ssl_version:sslv3; ssl_state:client_hello; '
        "sid:2;)\n"
        # SMTP payload bytes mixed with file.data: no buffer for the former
        'alert smtp any any -> any any (msg:"m"; content:"MAIL"; file_data; content:"x"; '
        "sid:3;)\n")
    r = cli("rules", "check", rules)
    assert r.returncode == 0, r.stderr
    assert "3 of 3 Suricata rules loaded" in r.stdout
    assert "1 loaded rule(s) are not inspected yet" in r.stdout
    assert "smtp file.data 1" in r.stdout
    cap = tmp_path / "x.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET / HTTP/1.0\r\n\r\n"))
    r = cli("read", cap, "--rules", rules, "--log-dir", tmp_path / "logs")
    assert r.returncode == 0, r.stderr
    assert "smtp file.data 1" in r.stderr


def test_read_runs_suricata_rules(tmp_path):
    """A Suricata rule file is run, not refused: its alert lands in EVE with the rule's sid."""
    rules = tmp_path / "s.rules"
    rules.write_text('alert tcp any any -> any 80 (msg:"x"; content:"phf"; sid:1;)\n')
    cap = tmp_path / "x.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET /phf HTTP/1.0\r\n\r\n"))
    r = cli("read", cap, "--rules", rules, "--log-dir", tmp_path / "logs")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    alerts = eve_alerts(tmp_path / "logs")
    assert [a["alert"]["signature_id"] for a in alerts] == [1]
    assert alerts[0]["app_proto"] == "http"  # the flow's protocol, detected by content


def test_bpf_filter_skips_and_counts_what_it_rejects(tmp_path):
    """--bpf takes tcpdump's filter language, as snort -r FILE FILTER does:
    the phf connection filtered out alerts nothing, the other one alerts."""
    cap = tmp_path / "two.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS)
               + http_exchange(C, S, 1033, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n",
                               ts=PHF_TS + 1))
    logs = tmp_path / "logs"
    r = cli("read", cap, "--log-dir", logs, "--bpf", "not tcp port 1032")
    assert r.returncode == 0, r.stderr
    assert [e["src_port"] for e in read_eve(logs) if e["event_type"] == "alert"] == [1033]
    frames = len(http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n"))
    assert f"frames skipped by --bpf 'not tcp port 1032': {frames}" in r.stdout


def test_bad_bpf_filter_is_a_usage_error_naming_libpcap_s_reason(tmp_path):
    cap = tmp_path / "phf.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n"))
    r = cli("read", cap, "--log-dir", tmp_path / "logs", "--bpf", "tcp prot 80")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("pakemon-xdp: bad --bpf filter 'tcp prot 80': ")
    assert not (tmp_path / "logs" / "eve.json").exists()


def test_a_frame_the_pipeline_raises_on_is_skipped_counted_and_the_rest_read(
        tmp_path, monkeypatch, capsys):
    """A bug on one frame must not lose the rest of the capture (the live
    sensor goes on after a bad record too): the frame is skipped with one
    error line, counted in the summary, and later attacks still alert."""
    from pakemon import pipeline
    from pakemon.cli import main

    cap = tmp_path / "two.pcap"
    first = http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS)
    write_pcap(cap, first + http_exchange(C, S, 1033, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n",
                                          ts=PHF_TS + 1))
    real = pipeline.Pipeline.feed
    seen = [0]

    def feed(self, ts, frame, linktype=1, wire_len=None):
        seen[0] += 1
        if seen[0] == 2:
            raise RuntimeError("boom")
        return real(self, ts, frame, linktype, wire_len)

    monkeypatch.setattr(pipeline.Pipeline, "feed", feed)
    monkeypatch.setenv("PAKEMON_STRICT", "0")
    logs = tmp_path / "logs"
    assert main(["read", "-q", str(cap), "--log-dir", str(logs)]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == (f"pakemon-xdp: internal error on frame 2 of {cap} "
                           "(RuntimeError: boom); frame skipped")
    assert "internal errors: 1 frames skipped" in out
    assert 1033 in [e["src_port"] for e in read_eve(logs) if e["event_type"] == "alert"]
    monkeypatch.setenv("PAKEMON_STRICT", "1")
    seen[0] = 0
    with pytest.raises(RuntimeError):
        main(["read", "-q", str(cap), "--log-dir", str(logs)])


def test_a_link_type_without_a_decoder_is_said_once_and_its_frames_counted(tmp_path):
    import struct

    cap = tmp_path / "wifi.pcap"
    rec = struct.pack("<IIII", 1, 0, 30, 30) + bytes(30)
    cap.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 105) + rec * 3)
    r = cli("read", cap, "--log-dir", tmp_path / "logs", "-q")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    warn = [line for line in r.stderr.splitlines() if "link type 105" in line]
    assert len(warn) == 1 and "is not supported" in warn[0] and "ETHERNET (1)" in warn[0]
    assert "malformed: 3" in r.stdout


def test_a_rule_directory_without_rule_files_is_an_error_and_no_rules_a_warning(tmp_path):
    empty = tmp_path / "rules.d"
    empty.mkdir()
    (empty / "README").write_text("not rules\n")
    r = cli("read", ROOT / "pakemon" / "lab" / "demo.pcap", "--log-dir", tmp_path / "l",
            "--rules", empty)
    assert r.returncode == 1
    assert r.stderr == f"pakemon-xdp: {empty}: no *.rules file in this directory\n"
    nothing = tmp_path / "none.rules"
    nothing.write_text("# every rule commented out\n")
    r = cli("read", ROOT / "pakemon" / "lab" / "demo.pcap", "--log-dir", tmp_path / "l",
            "--rules", nothing)
    assert r.returncode == 0
    assert (f"pakemon-xdp: warning: no rules loaded from {nothing}: nothing can alert"
            in r.stderr)
    assert "no alerts" in r.stdout


def test_read_dash_inspects_a_stream_as_it_comes_and_sigint_ends_it_with_the_summary(tmp_path):
    """tcpdump -w - | pakemon-xdp read -: alerts are written while the
    stream is still open, and Ctrl-C while it waits for more ends the read
    as the end of a capture would (flush, summary, exit 0)."""
    import signal
    import time

    # Up to the request, whose segment alerts: once the alert is in
    # eve.json every frame has been read (with the rest of the exchange
    # after it, a loaded machine could deliver the SIGINT before the reader
    # had the last frames: "after 8 frames", a flaky failure).
    frames = http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS)[:4]
    write_pcap(tmp_path / "phf.pcap", frames)
    logs = tmp_path / "logs"
    p = subprocess.Popen([sys.executable, "-m", "pakemon.cli", "read", "-q", "--log-dir",
                          str(logs), "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=ROOT, text=False)
    try:
        p.stdin.write((tmp_path / "phf.pcap").read_bytes())
        p.stdin.flush()
        deadline = time.monotonic() + 30
        while not (logs / "eve.json").exists() or not read_eve(logs):
            assert p.poll() is None and time.monotonic() < deadline, "no alert while streaming"
            time.sleep(0.05)
        assert p.poll() is None  # still waiting for more of the stream
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    out, err = out.decode(), err.decode()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    assert (f"stopped by SIGINT after {len(frames)} frames: the rest of <stdin> was not read"
            in err)
    assert f"processed {len(frames)} frames" in out
    assert "       1  CGI-phf(CVE-1999-0067)" in out
    assert [e["src_port"] for e in read_eve(logs) if e["event_type"] == "alert"] == [1032]


def test_sigterm_between_frames_stops_after_that_frame_and_flushes(tmp_path, monkeypatch,
                                                                    capsys):
    """A signal while frames are being inspected is acted on between two
    frames: the frames before it are inspected and logged, the pipeline's
    end-of-capture flush runs, the rest is not read, and it says so."""
    import signal

    from pakemon import capture
    from pakemon.cli import main

    first = http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS)
    second = http_exchange(C, S, 1033, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS + 1)
    cap, other = tmp_path / "two.pcap", tmp_path / "other.pcap"
    write_pcap(cap, first + second)
    write_pcap(other, first)
    real_open = capture.open_capture

    class SignalsItself:
        """The real reader, which sends this process SIGTERM once the first
        connection's frames are out (as `kill` would, mid-capture)."""

        def __init__(self, path):
            self.real = real_open(path)
            self.path, self.size, self.waiting = self.real.path, self.real.size, False

        offset = property(lambda self: self.real.offset)

        def __iter__(self):
            for n, item in enumerate(self.real, 1):
                yield item
                if n == len(first):
                    os.kill(os.getpid(), signal.SIGTERM)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.real.close()

    monkeypatch.setattr(capture, "open_capture", SignalsItself)
    logs = tmp_path / "logs"
    before = signal.getsignal(signal.SIGTERM)
    assert main(["read", "-q", str(cap), str(other), "--log-dir", str(logs)]) == 0
    assert signal.getsignal(signal.SIGTERM) == before  # handlers given back
    out, err = capsys.readouterr()
    assert err.strip() == (f"pakemon-xdp: stopped by SIGTERM after {len(first)} frames: the "
                           f"rest of {cap} and 1 more capture(s) were not read; what was read "
                           "is flushed and counted")
    assert f"processed {len(first)} frames" in out
    assert [e["src_port"] for e in read_eve(logs) if e["event_type"] == "alert"] == [1032]


def test_a_directory_is_read_oldest_capture_first_and_other_files_left_out(tmp_path):
    """As Suricata's pcap-file mode takes a directory: a rotated capture
    (tcpdump -C/-G) is read in the order it was written."""
    d = tmp_path / "caps"
    d.mkdir()
    for name, port, mtime in (("a.pcap", 1032, 2_000_000_000), ("b.pcap", 1033, 1_000_000_000)):
        write_pcap(d / name, http_exchange(C, S, port, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n",
                                           ts=PHF_TS))
        os.utime(d / name, (mtime, mtime))
    (d / "README").write_text("not a capture\n")
    (d / "sub").mkdir()
    write_pcap(d / "sub" / "c.pcap", http_exchange(C, S, 1034, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n",
                                                   ts=PHF_TS))
    logs = tmp_path / "logs"
    r = cli("read", "-q", d, "--log-dir", logs)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"pakemon-xdp: {d}: 1 file(s) that are not captures left out"
    # b.pcap is older: its connection comes first; sub/ is not entered
    assert [e["src_port"] for e in read_eve(logs) if e["event_type"] == "alert"] == [1033, 1032]

    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("read", "-q", empty, "--log-dir", logs)
    assert r.returncode == 3
    assert f"pakemon-xdp: {empty}: no pcap or pcapng file in it" in r.stderr
    assert "Traceback" not in r.stderr


def test_closed_stdout_stderr_and_stdin_are_no_traceback(tmp_path):
    """A daemon's `>&- 2>&-`: Python sets sys.stdout/stderr to None, and the
    first alert printed (or the progress bar's terminal check) raised."""
    cap = tmp_path / "phf.pcap"
    write_pcap(cap, http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS))
    logs = tmp_path / "logs"
    r = subprocess.run(["sh", "-c", 'exec "$0" -m pakemon.cli read "$@" >&- 2>&- <&-',
                        sys.executable, cap, "--log-dir", logs], cwd=ROOT)
    assert r.returncode == 0
    assert [e["src_port"] for e in read_eve(logs) if e["event_type"] == "alert"] == [1032]
    r = subprocess.run(["sh", "-c", 'exec "$0" -m pakemon.cli read - --log-dir "$1" 2>&1 <&-',
                        sys.executable, logs], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 3
    assert "standard input is closed" in r.stdout and "Traceback" not in r.stdout


def test_a_signal_after_the_last_frame_says_nothing_was_left(tmp_path, monkeypatch, capsys):
    """A signal between a capture's last frame and the next capture's first
    is acted on there: the finished capture is not called cut."""
    import signal

    from pakemon import capture
    from pakemon.cli import main

    frames = http_exchange(C, S, 1032, b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n", ts=PHF_TS)
    cap, other = tmp_path / "one.pcap", tmp_path / "two.pcap"
    write_pcap(cap, frames)
    write_pcap(other, frames)
    real_open = capture.open_capture

    class SignalsAtItsEnd:
        def __init__(self, path):
            self.real = real_open(path)
            self.path, self.size, self.waiting = self.real.path, self.real.size, False

        offset = property(lambda self: self.real.offset)

        def __iter__(self):
            yield from self.real
            os.kill(os.getpid(), signal.SIGTERM)  # the last frame is out

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.real.close()

    monkeypatch.setattr(capture, "open_capture", SignalsAtItsEnd)
    for argv, unread in (([cap], ""), ([cap, other], ": 1 more capture(s) were not read")):
        assert main(["read", "-q", *map(str, argv), "--log-dir", str(tmp_path / "logs")]) == 0
        err = capsys.readouterr().err
        assert err.strip() == (f"pakemon-xdp: stopped by SIGTERM after {len(frames)} frames"
                               f"{unread}; what was read is flushed and counted")
