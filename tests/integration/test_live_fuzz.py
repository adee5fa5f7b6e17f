"""Random evasion cases (live_fuzz) against this machine's kernel.

Each seed is a TCP connection or a fragmented UDP datagram mixing
segmentation, reordering, duplicates, overlapping decoys and insertion
tricks, over IPv4 and IPv6, some segments as IP fragments; the sensor
(linux-current) must reassemble exactly what the server application
received, up to any hole. What random cases found wrong is pinned as live
cases of its own (tcp_ofo_coalesce_into_ancestor,
tcp_ofo_data_after_a_queued_fin_is_purged); more seeds run with
``python tests/integration/live_fuzz.py --seeds N --start S``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

from live_fuzz import check, frag_case, tcp_case  # noqa: E402

TCP_SEEDS = list(range(1, 48))
UDP_SEEDS = list(range(1, 31))


def _check(lab, case, tmp_path):
    same, res, sensor = check(lab, case, tmp_path / f"{case.name}.pcap")
    assert same, (f"{case.name} ({case.doc}): the sensor reassembled {sensor!r}, "
                  f"the kernel delivered {res.app!r}")


@pytest.mark.parametrize("seed", TCP_SEEDS)
def test_random_tcp(seed, live_lab, tmp_path):
    _check(live_lab, tcp_case(seed), tmp_path)


@pytest.mark.parametrize("seed", UDP_SEEDS)
def test_random_fragments(seed, live_lab, tmp_path):
    _check(live_lab, frag_case(seed), tmp_path)
