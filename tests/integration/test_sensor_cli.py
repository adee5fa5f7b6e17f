"""`pakemon-xdp attach/detach/status`: errors are one line and an exit code,
never a traceback; a stopped sensor leaves nothing attached; `detach`
cleans up after a killed one (root only, except where said)."""

from __future__ import annotations

import os
import shutil
import subprocess
import signal
import sys
import time

import pytest

from helpers import nothing_attached_soon
from test_sensor_live import lab, stop  # noqa: F401 (fixture)
from xdp_lab import requires_xdp

from pakemon import cli
from pakemon.capture import xdp
from pakemon.sensor import EXIT_SENSOR


def run_cli(*args, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "pakemon.cli", *args],
                          capture_output=True, text=True, timeout=120, cwd="/")


@pytest.mark.parametrize("args, message", [
    (("attach", "nosuch0"), "pakemon-xdp: no such interface: nosuch0\n"),
    (("detach", "nosuch0"), "pakemon-xdp: no such interface: nosuch0\n"),
    (("status", "nosuch0"), "pakemon-xdp: no such interface: nosuch0\n"),
])
def test_missing_interface_is_one_line_and_exit_5(args, message):
    r = run_cli(*args)
    assert (r.returncode, r.stderr, r.stdout) == (EXIT_SENSOR, message, "")


def test_bad_arguments_and_rules_use_the_read_exit_codes(tmp_path):
    assert run_cli("attach", "lo", "--pages", "3").returncode == cli.EXIT_USAGE
    assert run_cli("attach", "lo", "--snaplen", "0").returncode == cli.EXIT_USAGE
    bad = tmp_path / "bad.rules"
    bad.write_text("x tcp *\n")
    r = run_cli("attach", "lo", "--rules", str(bad))
    assert r.returncode == cli.EXIT_RULES and "Traceback" not in r.stderr


def test_status_lists_every_interface():
    r = run_cli("status")
    assert r.returncode == 0 and "lo: " in r.stdout


def test_not_root_is_refused_with_a_message():
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to become nobody")
    nobody = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    probe = subprocess.run([*nobody, sys.executable, "-c", "import pakemon.sensor"],
                           capture_output=True, cwd="/")
    if probe.returncode:
        pytest.skip("the checkout is not readable by nobody")
    r = run_cli("attach", "lo", prefix=nobody)
    assert r.returncode == EXIT_SENSOR
    assert r.stderr.startswith("pakemon-xdp: the XDP sensor needs root")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("where, message", [
    ("_check_kernel_headers", "kernel headers for 6.x are missing: install them"),
    ("_import_bcc", "bcc is not importable: install python3-bpfcc"),
])
def test_missing_headers_or_bcc_is_a_message(monkeypatch, capsys, tmp_path, where, message):
    def fail(*_a):
        raise xdp.SensorError(message)

    monkeypatch.setattr(xdp, "_need_root", lambda: None)
    monkeypatch.setattr(xdp, where, fail)
    assert cli.main(["attach", "lo", "--log-dir", str(tmp_path / "logs")]) == EXIT_SENSOR
    err = capsys.readouterr().err
    assert err == f"pakemon-xdp: {message}\n"


@requires_xdp
def test_sigterm_detaches_second_attach_refused_detach_after_kill(lab, tmp_path):
    a = lab.start_sensor("--log-dir", str(tmp_path / "a"), "--direction", "both")
    st = lab.cli_command(lab.srv, "status", "vsrv")
    assert st.returncode == 0
    assert "native id" in st.stdout and "pk_xdp" in st.stdout
    assert "tc egress pk_tc_egress" in st.stdout and "(pakemon)" in st.stdout
    # a second sensor on the same interface: refused, and the first one untouched
    b = lab.start_sensor("--log-dir", str(tmp_path / "b"), wait=False)
    assert b.proc.wait(timeout=120) == EXIT_SENSOR
    b.stop()
    assert "an XDP program is already attached" in b.stderr[-1]
    assert "Traceback" not in "\n".join(b.stderr)
    stop(a)  # SIGTERM: exit 0, counters printed
    lab.assert_nothing_attached()
    assert "no XDP or tc program" in lab.cli_command(lab.srv, "status", "vsrv").stdout

    # SIGKILL: the kernel takes the programs with the process (bpf links);
    # a hung sensor's are taken by `pakemon-xdp detach`
    c = lab.start_sensor("--log-dir", str(tmp_path / "c"), "--direction", "both",
                         "--mode", "generic")
    assert "generic id" in lab.cli_command(lab.srv, "status", "vsrv").stdout
    c.kill()
    nothing_attached_soon(lab)
    r = lab.cli_command(lab.srv, "detach", "vsrv")
    assert (r.returncode, r.stdout) == (0, "vsrv: nothing attached\n")
    lab.sensors.remove(c)
    d = lab.start_sensor("--log-dir", str(tmp_path / "d"), "--direction", "both")
    d.proc.send_signal(signal.SIGSTOP)
    try:
        r = lab.cli_command(lab.srv, "detach", "vsrv")
        assert r.returncode == 0, r.stderr
        assert "removed XDP native" in r.stdout and "removed tc egress pk_tc_egress" in r.stdout
        lab.assert_nothing_attached()
    finally:
        d.proc.send_signal(signal.SIGCONT)
    d.kill()
    lab.sensors.remove(d)



def test_a_deleted_interface_stops_the_sensor_with_what_came_before_logged(lab, tmp_path):
    """The veth goes away under a running sensor: it says so and exits 5
    within a few seconds instead of watching nothing for ever, with the
    alert it raised before in its logs and its counters printed."""
    import json
    import time

    from pakemon.lab.live import SRV_IF

    lab.start_http(80)
    a = lab.start_sensor("--log-dir", str(tmp_path / "a"), "--direction", "both")
    assert lab.http_get("/cgi-bin/phf?Qalias=x").split()[1] == "404"
    a.wait_for(r"^ALERT CGI-phf\(CVE-1999-0067\)", stream="stdout", timeout=10)
    t0 = time.monotonic()
    subprocess.run(["ip", "-n", lab.srv, "link", "del", SRV_IF], check=True)
    assert a.proc.wait(timeout=15) == EXIT_SENSOR
    assert time.monotonic() - t0 < 5
    a.stop()  # joins the output readers
    err = "\n".join(a.stderr)
    assert f"{SRV_IF} is gone (deleted, or the name is another interface's now)" in err
    assert "Traceback" not in err
    assert any(line.startswith(f"kernel sensor on {SRV_IF}") for line in a.stdout)
    with open(tmp_path / "a" / "eve.json") as f:
        sigs = [json.loads(line)["alert"]["signature"] for line in f
                if '"event_type":"alert"' in line.replace(" ", "")]
    assert sigs == ["CGI-phf(CVE-1999-0067)"]


def test_an_interface_without_ethernet_headers_is_refused(lab, tmp_path):
    """A tun device (link type none: frames start at the IP header) would
    accept a generic XDP program that then parses IP as Ethernet and sees
    nothing: refused, one line, nothing attached."""
    r = subprocess.run(["ip", "-n", lab.srv, "tuntap", "add", "mode", "tun", "dev", "pktun"],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"no tun device here: {r.stderr.strip()}")
    subprocess.run(["ip", "-n", lab.srv, "link", "set", "pktun", "up"], check=True)
    r = lab.cli_command(lab.srv, "attach", "pktun", "--log-dir", str(tmp_path / "l"))
    assert r.returncode == EXIT_SENSOR
    assert r.stderr.startswith("pakemon-xdp: pktun has no Ethernet header (link type none")
    assert "Traceback" not in r.stderr
    shown = subprocess.run(["ip", "-n", lab.srv, "-d", "link", "show", "pktun"],
                           capture_output=True, text=True).stdout
    assert "xdp" not in shown


def test_a_program_removed_under_the_sensor_stops_it(lab, tmp_path):
    """Another tool removes the XDP program: the sensor notices at its next
    snapshot, says so, exits 5. Held by a bpf link, the program cannot be
    taken by `ip link set dev vsrv xdp off` (the kernel refuses), only by
    detaching the link (`pakemon-xdp detach` from another shell)."""
    from pakemon.lab.live import SRV_IF

    a = lab.start_sensor("--log-dir", str(tmp_path / "a"))
    off = subprocess.run(["ip", "-n", lab.srv, "link", "set", "dev", SRV_IF, "xdp", "off"],
                         capture_output=True, text=True)
    assert off.returncode != 0 and "link" in off.stderr, off
    assert "prog/xdp" in lab.link_state() and a.proc.poll() is None
    r = lab.cli_command(lab.srv, "detach", SRV_IF)
    assert r.returncode == 0 and "removed XDP native" in r.stdout, r
    t0 = time.monotonic()
    assert a.proc.wait(timeout=20) == EXIT_SENSOR
    assert time.monotonic() - t0 < 12
    a.stop()
    err = "\n".join(a.stderr)
    assert (f"{SRV_IF}: the XDP program there is no longer this sensor's (removed or "
            "replaced by another tool): nothing left to watch") in err
    assert "Traceback" not in err
    assert any(line.startswith(f"kernel sensor on {SRV_IF}") for line in a.stdout)
