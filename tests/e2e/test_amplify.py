"""bench/amplify.py end to end, with the bundled rules: every crafted shape
is read without an error or an alert it should not raise, and printed.
(Its figures are a benchmark's, in the README, not asserted here.)"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import amplify  # noqa: E402


def test_every_crafted_shape_is_read_and_reported(capsys):
    assert amplify.main([]) == 0
    out = capsys.readouterr().out
    for name in amplify.cases():
        assert f"\n{name} " in out, name


def test_the_crafted_shapes_alert_on_nothing():
    """They are costly, not attacks: the bundled rules stay quiet on them
    (a regex rule waiting on the formmail query too: it never ends)."""
    from helpers import BUNDLED_RULES, run_frames

    from pakemon.detect.rule_parser import load_rules
    from pakemon.events import Alert
    from pakemon.pipeline import Pipeline

    rules = load_rules(BUNDLED_RULES).rules
    for name, (c2s, s2c, port) in amplify.cases().items():
        events = run_frames(Pipeline(rules), amplify.frames_of(c2s, s2c, port))
        assert [e.rule.name for e in events if isinstance(e, Alert)] == [], name
