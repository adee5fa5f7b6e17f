"""The loader's refusals: one SensorError with a message that says what to do.

No root or bcc needed: each test fakes the missing piece.
"""

from __future__ import annotations

import os
import sys

import pytest

from pakemon.capture import xdp
from pakemon.capture.xdp import SensorError, XdpSensor


def test_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SensorError, match="needs root"):
        XdpSensor()
    with pytest.raises(SensorError, match="needs root"):
        xdp.detach_interface("lo")


def test_bcc_missing_says_what_to_install(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setitem(sys.modules, "bcc", None)  # makes `import bcc` fail
    with pytest.raises(SensorError, match="python3-bpfcc.*make setup"):
        XdpSensor()


def test_kernel_headers_missing_names_the_package(monkeypatch):
    real = os.uname()
    fake = type(real)((real.sysname, real.nodename, "0.0.0-nosuch", real.version, real.machine))
    monkeypatch.setattr(os, "uname", lambda: fake)
    monkeypatch.setattr(xdp.Path, "exists", lambda self: False)
    with pytest.raises(SensorError) as e:
        xdp._check_kernel_headers()
    assert "linux-headers-0.0.0-nosuch" in str(e.value) and "make setup" in str(e.value)


def test_unknown_interface():
    with pytest.raises(SensorError, match="no such interface: nosuch0"):
        xdp.interface_index("nosuch0")


def test_message_is_the_whole_str():
    assert str(SensorError("no such interface: x")) == "no such interface: x"
