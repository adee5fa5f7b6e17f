"""Pipelined, disguised and desynchronizing HTTP requests against a real
nginx (http_diff): every request nginx processed for the phf script must
have alerted, once per transaction for the Suricata ``http_uri`` rule and at
least once per connection for the native rule, and every body nginx decoded
with a shell command in it (chunks joined) the ``http_client_body`` rule. More seeds run with
``python tests/integration/http_diff.py --seeds N --start S -v``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

from http_diff import describe, nginx_binary, run_seeds  # noqa: E402
from live_netns import why_unavailable  # noqa: E402

SEEDS = range(1, 401)


def test_sensor_alerts_on_every_phf_request_nginx_processed(tmp_path):
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    assert nginx_binary(), "nginx is not installed: `make setup` installs nginx-light"
    v = run_seeds(SEEDS, tmp_path)
    # the generator must have made nginx run the script often, and refuse
    # some requests too, or the comparison proves little
    assert v.attacks >= len(SEEDS) // 3, v
    assert v.processed > v.attacks
    assert v.bodies >= len(SEEDS) // 30, v
    assert not v.misses, "\n\n".join(
        f"want {want} alerts, got {got}\n{describe(c, logged)}"
        for _, want, got, c, logged in v.misses)
    assert not v.body_misses, "\n\n".join(
        f"want {want} body alerts, got {got}\n{describe(c, logged)}"
        for _, want, got, c, logged in v.body_misses)
    assert not v.native_misses, "\n\n".join(
        describe(c, logged) for _, _, c, logged in v.native_misses)
