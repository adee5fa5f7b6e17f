"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
import time

import pytest


@pytest.fixture
def utc():
    """Render local times as UTC for exact log text."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()
