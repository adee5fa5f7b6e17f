"""The linux-current model checked against the live target: this machine's kernel.

For every case in live_cases a test of the same name (``test_<case>``)
replays the case's crafted traffic from a client network namespace into a
server namespace where a real socket listens, records what the application
got, captures the traffic on the server's veth as the sensor would see it,
runs the pipeline (policy linux-current) over that capture and asserts that
the sensor reassembled exactly what the application received.

Needs root and ``ip netns``; skips otherwise. Every test gets its own pair of
namespaces (pk-<pid>-<n>-cli/srv), deleted even when the test fails.

Script mode prints what the kernel delivers for each case (the facts the
model is built on), optionally with the sensor's view::

    .venv/bin/python tests/integration/test_live_target.py [--sensor] [CASE ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


from live_cases import CASES, describe, main, run_case, sensor_view  # noqa: E402


def _check(case, lab, tmp_path):
    res = run_case(lab, case, tmp_path / f"{case.name}.pcap")
    print(f"{case.name}: {case.doc}\n    kernel: {describe(case, res)}")
    # The harness itself: the capture holds exactly the frames the client sent
    # (so the client namespace's kernel sent nothing of its own, e.g. no RST).
    assert res.frames_seen_from_client == res.frames_sent, "capture or RST suppression broken"
    if case.kind == "udp":
        assert res.barrier_seen, "the barrier datagram did not arrive"
    if case.name.endswith("_in_order"):  # plain traffic must get through
        want = case.kernel
        got = res.app if case.kind == "udp" else (res.app, res.eof)
        assert got == want, f"harness: plain {case.name} delivered {got!r}"
    sensor = sensor_view(case, res.pcap)
    assert sensor == res.app, (
        f"{case.name}: the sensor (linux-current) reassembled {sensor!r}, "
        f"the kernel delivered {res.app!r} ({describe(case, res)})")


def _make(case):
    def test(live_lab, tmp_path):
        _check(case, live_lab, tmp_path)
    test.__name__ = f"test_{case.name}"
    test.__doc__ = case.doc
    return test


for _case in CASES.values():
    globals()[f"test_{_case.name}"] = _make(_case)
del _case


if __name__ == "__main__":
    sys.exit(main())
