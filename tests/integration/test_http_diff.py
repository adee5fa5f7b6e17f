"""Pipelined, disguised and desynchronizing HTTP requests against a real
nginx and a real Apache, stock and lenient (http_diff): every request the
server ran the phf script for must have alerted, once per transaction for
the Suricata ``http_uri`` rule and at least once per connection for the
native rule; and every body nginx decoded with a shell command in it
(chunks joined) the ``http_client_body`` rule; and every request whose
User-Agent, as the server read it, names the bad agent the
``http_user_agent`` rule, every request the server took for the bad host
the ``http_host`` rule, and every request whose cookies, as the server read
them, hold the bad one the ``http_cookie`` rule. The sensor reads the capture
twice: both directions, and the clients' frames alone (what the live
sensor sees by default, XDP being ingress only). More seeds run with
``python tests/integration/http_diff.py --server S --seeds N --start S -v``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

from http_diff import apache_binary, describe, nginx_binary, run_seeds  # noqa: E402
from live_netns import why_unavailable  # noqa: E402

# (server, the sensor's personality, seeds, fewest script runs the seeds make)
CASES = {
    "nginx": ("nginx", None, range(1, 401), 130),
    # stock Apache refuses most of the tricks (HttpProtocolOptions Strict)
    "apache": ("apache", None, range(1, 401), 40),
    "apache-lenient-personality-apache": ("apache-lenient", "apache", range(1, 401), 130),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sensor_alerts_on_every_phf_request_the_server_ran(case, tmp_path):
    server, personality, seeds, runs = CASES[case]
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    assert nginx_binary() and apache_binary(), \
        "nginx or apache2 is not installed: `make setup` installs nginx-light and apache2-bin"
    verdicts = run_seeds(seeds, tmp_path, server, personality, ("both", "client"))
    for view, v in verdicts.items():
        _check(view, v, seeds, runs, server)


def _check(view, v, seeds, runs, server):
    # the generator must have made the server run the script often, and
    # refuse some requests too, or the comparison proves little
    assert v.attacks >= runs, v
    assert v.processed > v.attacks
    if server == "nginx":  # (the only one whose log shows bodies)
        assert v.bodies >= len(seeds) // 30, v
    assert v.agents >= runs // 15, v
    assert v.hosts >= runs // 15, v
    assert v.cookies >= runs // 20, v
    for what, misses in (("phf", v.misses), ("body", v.body_misses),
                         ("user-agent", v.agent_misses), ("host", v.host_misses),
                         ("cookie", v.cookie_misses)):
        assert not misses, f"[{view}] " + "\n\n".join(
            f"want {want} {what} alerts, got {got}\n{describe(c, logged)}"
            for _, want, got, c, logged in misses)
    assert not v.native_misses, f"[{view}] " + "\n\n".join(
        describe(c, logged) for _, _, c, logged in v.native_misses)
