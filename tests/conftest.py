"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import settings

# A frame the pipeline raises on is a bug: `read` would count it and go on
# (as a user wants); the tests want the exception (children inherit this).
os.environ.setdefault("PAKEMON_STRICT", "1")

# CI runs the property tests with a fixed seed so a landing is reproducible;
# developers' runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


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
