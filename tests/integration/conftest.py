"""The live-target tests' lab: a fresh pair of namespaces per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_netns import Lab, why_unavailable  # noqa: E402


@pytest.fixture
def live_lab():
    """A client and a server namespace joined by a veth (live_netns), deleted
    even when the test fails; skips without root or ``ip netns``."""
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    lab = Lab()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
