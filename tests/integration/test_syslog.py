"""SyslogSink against a real rsyslogd (unix socket, UDP, TCP; RFC 5424 and 3164).

Needs root only to install rsyslog (scripts/setup.sh); rsyslogd itself runs
unprivileged-capable here with everything in tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from pakemon.events import Alert, Notice, NoticeKind
from pakemon.detect.rules import Rule
from pakemon.output.syslog import SyslogSink, parse_target

RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)

SEP = "\x1f"  # field separator in the rsyslog template


def _free_port(kind) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _rule(name="CGI-phf(CVE-1999-0067)", sid=1000042):
    return Rule(name=name, proto="tcp", src=None, dst=None, patterns=(), sid=sid)


def _alert(ts, tag, **kw):
    base = dict(ts=ts, rule=_rule(name=f"CGI-phf(CVE-1999-0067)-{tag}"), proto="TCP",
                src_ip="1.2.3.4", dst_ip="5.6.7.8", src_port=1032, dst_port=80)
    base.update(kw)
    return Alert(**base)


def _notice(ts, tag):
    return Notice(ts=ts, kind=NoticeKind.STREAM_QUEUE_OVERFLOW,
                  message=f"Too much data in TCP receive queue {tag}", proto="TCP",
                  src_ip="1.2.3.4", dst_ip="5.6.7.8", src_port=1032, dst_port=80)


@pytest.fixture
def rsyslog(tmp_path):
    if RSYSLOGD is None:
        pytest.skip("rsyslogd not installed (scripts/setup.sh installs rsyslog)")
    sock_path = tmp_path / "log.sock"
    out = tmp_path / "out.log"
    udp_port = _free_port(socket.SOCK_DGRAM)
    tcp_port = _free_port(socket.SOCK_STREAM)
    work = tmp_path / "work"
    work.mkdir()
    conf = tmp_path / "rsyslog.conf"
    fields = SEP.join(["%PRI%", "%TIMESTAMP:::date-rfc3339%", "%HOSTNAME%", "%APP-NAME%",
                       "%PROCID%", "%MSGID%", "%STRUCTURED-DATA%", "%msg%", "%inputname%"])
    fields = fields.replace(SEP, "\\x1f")
    conf.write_text(f"""
global(workDirectory="{work}")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
input(type="imuxsock" Socket="{sock_path}" UseSpecialParser="off" ParseHostname="on"
      RateLimit.Interval="0" UseSysTimeStamp="off" IgnoreTimestamp="off" CreatePath="on")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
template(name="t" type="string" string="{fields}\\n")
*.* action(type="omfile" file="{out}" template="t")
""")
    # rsyslog's string templates know \\n but not \\x1f: use a literal byte.
    conf.write_text(conf.read_text().replace("\\x1f", SEP))
    check = subprocess.run([RSYSLOGD, "-N1", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "pid")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            if sock_path.exists() and _tcp_listening(tcp_port) and _udp_bound(udp_port):
                break
            assert time.monotonic() < deadline, "rsyslogd did not open its inputs"
            time.sleep(0.05)
        yield {"unix": f"unix:{sock_path}", "udp": f"udp:127.0.0.1:{udp_port}",
               "tcp": f"tcp:127.0.0.1:{tcp_port}", "out": out, "proc": proc,
               "udp_port": udp_port, "tcp_port": tcp_port}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def _tcp_listening(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _udp_bound(port) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return False  # nobody holds it yet
    except OSError:
        return True
    finally:
        s.close()


def _records(out, want: int, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        lines = out.read_text(errors="replace").splitlines() if out.exists() else []
        recs = [dict(zip(("pri", "ts", "host", "app", "procid", "msgid", "sd", "msg", "input"),
                         ln.split(SEP))) for ln in lines]
        recs = [r for r in recs if r.get("app") == "pakemon-xdp"]
        if len(recs) >= want or time.monotonic() > deadline:
            return recs


@pytest.mark.parametrize("rfc", ["5424", "3164"])
def test_all_transports_reach_rsyslog(rsyslog, rfc):
    now = float(int(time.time())) + 0.123456
    expected = {}
    for kind in ("unix", "udp", "tcp"):
        tag = f"{kind}-{rfc}"
        events = [_alert(now, tag), _notice(now, tag),
                  _alert(now, tag + "-icmp", proto="ICMP", src_port=None, dst_port=None,
                         icmp_type=8, icmp_code=0)]
        with SyslogSink(rsyslog[kind], rfc=rfc, hostname="ids-host") as sink:
            assert sink.write_many(events) == 3
            assert (sink.sent, sink.dropped, sink.errors) == (3, 0, 0), sink.last_error
        expected[tag] = events
    recs = _records(rsyslog["out"], 9)
    assert len(recs) == 9, recs
    by_msg = {r["msg"].lstrip(): r for r in recs}
    pid = str(os.getpid())
    for tag in expected:
        a = by_msg[f"CGI-phf(CVE-1999-0067)-{tag} TCP 1.2.3.4(1032)->5.6.7.8(80)"]
        n = by_msg[f"Too much data in TCP receive queue {tag}"]
        i = by_msg[f"CGI-phf(CVE-1999-0067)-{tag}-icmp ICMP 1.2.3.4->5.6.7.8"]
        # local0 (16): alerts at err (3), notices at notice (5)
        assert a["pri"] == str(16 * 8 + 3) and i["pri"] == str(16 * 8 + 3)
        assert n["pri"] == str(16 * 8 + 5)
        for r in (a, n, i):
            assert r["host"] == "ids-host"
            assert r["procid"] == pid
            assert r["ts"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(int(now))))
        if rfc == "5424":
            assert a["msgid"] == "alert"
            assert n["msgid"] == "STREAM_QUEUE_OVERFLOW"
            assert a["ts"][19:26] == ".123456", a
            sid = _rule().signature_id
            assert a["sd"] == (f'[pakemon@32473 sid="{sid}" rev="1" proto="TCP" src="1.2.3.4" '
                               'sport="1032" dst="5.6.7.8" dport="80"]')
            assert i["sd"] == (f'[pakemon@32473 sid="{sid}" rev="1" proto="ICMP" src="1.2.3.4" '
                               'dst="5.6.7.8" itype="8" icode="0"]')
            assert n["sd"].startswith('[pakemon@32473 kind="STREAM_QUEUE_OVERFLOW" proto="TCP"')
        else:
            assert a["msgid"] == "-" and a["sd"] == "-"


def test_sd_escaping_and_control_chars(rsyslog):
    now = time.time()
    ev = _alert(now, 'q"uo]te\\x\nnl', )
    with SyslogSink(rsyslog["udp"]) as sink:
        assert sink.write(ev)
    (r,) = _records(rsyslog["out"], 1)
    assert r["msg"].lstrip().startswith('CGI-phf(CVE-1999-0067)-q"uo]te\\x\\x0anl TCP')


def test_receiver_down_and_back_tcp(rsyslog):
    now = time.time()
    sink = SyslogSink(rsyslog["tcp"], reconnect_interval=0.2)
    assert sink.write(_alert(now, "before"))
    proc = rsyslog["proc"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(5)
    for k in range(5):
        assert sink.write(_alert(now, f"down{k}")) is False  # never raises
    assert sink.dropped == 5 and sink.errors >= 1 and sink.sent == 1
    sink.close()
    assert sink.write(_alert(now, "closed")) is False
    assert sink.dropped == 6


def test_receiver_absent_every_transport(tmp_path):
    port = _free_port(socket.SOCK_STREAM)
    for target in (f"unix:{tmp_path}/nobody", f"tcp:127.0.0.1:{port}"):
        sink = SyslogSink(target)  # does not raise either
        assert not sink.connected and sink.errors == 1
        for k in range(3):
            assert sink.write(_notice(time.time(), k)) is False
        # reconnect tried at most once a second: no new errors yet
        assert sink.errors == 1 and sink.dropped == 3
    # UDP: the first datagram is lost silently (no listener, ICMP comes back);
    # the next send sees the error, counts it and retries (UDP cannot know more).
    sink = SyslogSink(f"udp:127.0.0.1:{_free_port(socket.SOCK_DGRAM)}", reconnect_interval=0)
    sink.write(_notice(time.time(), "u1"))
    time.sleep(0.05)
    sink.write(_notice(time.time(), "u2"))
    assert sink.errors >= 1 and sink.sent + sink.dropped == 2


def test_unix_stream_fallback(tmp_path):
    path = str(tmp_path / "stream.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    got = []

    def serve():
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.append(chunk)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    with SyslogSink(f"unix:{path}", rfc="3164", hostname="h") as sink:
        assert sink.write(_notice(0.0, "s"))
    th.join(5)
    srv.close()
    data = b"".join(got)
    assert data.endswith(b"\0") and data.startswith(b"<133>")
    assert b" h pakemon-xdp[" in data


def test_tcp_framing_5424_octet_counting(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def serve():
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.append(chunk)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    with SyslogSink(f"tcp:127.0.0.1:{srv.getsockname()[1]}") as sink:
        sink.write_many([_alert(0.5, "a"), _notice(0.5, "b")])
    th.join(5)
    srv.close()
    data = b"".join(got)
    msgs = []
    while data:
        n, _, rest = data.partition(b" ")
        msgs.append(rest[: int(n)])
        data = rest[int(n):]
    assert len(msgs) == 2 and all(m.startswith(b"<13") for m in msgs)


@pytest.mark.parametrize("bad", [
    "", "dev/log", "unix:", "file:/x", "udp:host", "udp::514", "udp:host:0",
    "udp:host:65536", "tcp:host:port", "udp:::1:514", "udp:[nothex]:514", "tcp:[::1]",
])
def test_parse_target_errors(bad):
    with pytest.raises(ValueError, match="syslog target"):
        parse_target(bad)


def test_parse_target_ok():
    assert parse_target("unix:/dev/log").path == "/dev/log"
    t = parse_target("udp:[::1]:514")
    assert (t.kind, t.host, t.port, str(t)) == ("udp", "::1", 514, "udp:[::1]:514")
    t = parse_target("tcp:log.example:6514")
    assert (t.kind, t.host, t.port) == ("tcp", "log.example", 6514)
    with pytest.raises(ValueError, match="RFC"):
        SyslogSink("udp:127.0.0.1:514", rfc="5425")
    with pytest.raises(ValueError, match="facility"):
        SyslogSink("udp:127.0.0.1:514", facility="local9")


def test_read_sends_its_alerts_to_syslog_over_udp(tmp_path):
    """`pakemon-xdp read --syslog udp:...`: the CLI wiring, received by a socket."""
    import socket as _socket
    import subprocess
    import sys

    from pakemon.lab.traffic import http_exchange, write_pcap

    rx = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    port = rx.getsockname()[1]
    cap = tmp_path / "phf.pcap"
    write_pcap(cap, http_exchange("10.0.0.1", "10.0.0.2", 1032,
                                  b"GET /cgi-bin/phf HTTP/1.0\r\n\r\n"))
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "pakemon.cli", "read", str(cap), "-q",
                        "--log-dir", str(tmp_path / "logs"), "--syslog", f"udp:127.0.0.1:{port}"],
                       cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    msg = rx.recv(65536).decode()
    rx.close()
    assert msg.startswith("<131>1 ") and "CGI-phf(CVE-1999-0067)" in msg
    bad = subprocess.run([sys.executable, "-m", "pakemon.cli", "read", str(cap),
                          "--log-dir", str(tmp_path / "l2"), "--syslog", "carrier-pigeon:x"],
                         cwd=root, capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
