"""deploy/: the systemd unit and the logrotate snippet are valid."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers import ROOT

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "pakemon-xdp@.service"
ROTATE = DEPLOY / "logrotate.d" / "pakemon-xdp"
BIN = "/opt/pakemon-xdp/.venv/bin/pakemon-xdp"


def test_unit_runs_attach_per_interface_and_detaches_after():
    text = UNIT.read_text()
    assert f"ExecStart={BIN} attach %i " in text
    assert "--log-dir /var/log/pakemon-xdp/%i" in text
    assert f"ExecStopPost={BIN} detach %i" in text
    assert "Restart=on-failure" in text
    assert "KillSignal=SIGTERM" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text


def test_logrotate_signals_the_sensors():
    text = ROTATE.read_text()
    assert "systemctl kill -s HUP 'pakemon-xdp@*.service'" in text
    assert "copytruncate" not in text.replace("no copytruncate", "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_verifies(tmp_path):
    # the venv is not installed here: point the commands at an existing binary
    unit = tmp_path / "pakemon-xdp@.service"
    unit.write_text(UNIT.read_text().replace(BIN, shutil.which("true")))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                       text=True, timeout=60)
    problems = [line for line in (r.stdout + r.stderr).splitlines()
                if str(unit.name) in line or "pakemon-xdp@" in line]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="no logrotate")
def test_logrotate_snippet_parses(tmp_path):
    state = tmp_path / "state"
    r = subprocess.run(["logrotate", "-d", "-s", str(state), str(ROTATE)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "error" not in (r.stdout + r.stderr).lower()
