"""An overlap with the bytes already held is no notice, but it is marked on
the fragment (``Packet.anomalies``) because Suricata's frag_overlap decoder
event fires on any overlap (suricata-verify ipv6-malformed-fragments-6)."""

import pytest

from defrag_frames import feed_all, frag, kinds
from pakemon.config import DefragConfig
from pakemon.defrag import Defragmenter
from pakemon.events import NoticeKind as K

CLASSIC = ["first", "last", "bsd", "bsd-right", "linux", "windows", "solaris"]


@pytest.mark.parametrize("policy", CLASSIC)
@pytest.mark.parametrize("family", [4, 6])
def test_same_bytes_overlap_marks_the_fragment(policy, family):
    d = Defragmenter(DefragConfig(policy=policy))
    a = frag(family, 0, b"A" * 16)
    b = frag(family, 8, b"A" * 16)  # 8..16 overlaps with the same bytes
    c = frag(family, 24, b"B" * 8, False)
    out, notices = feed_all(d, [a, b, c])
    assert K.DEFRAG_OVERLAP_SAME in b.anomalies
    assert a.anomalies == () and c.anomalies == ()
    assert "DEFRAG_OVERLAP_MISMATCH" not in kinds(notices)
    assert len(out) == 1  # the datagram still completes


@pytest.mark.parametrize("family", [4, 6])
def test_differing_overlap_is_a_notice_not_a_same_mark(family):
    d = Defragmenter(DefragConfig(policy="bsd"))
    b = frag(family, 8, b"E" * 16)
    _, notices = feed_all(d, [frag(family, 0, b"A" * 16), b])
    assert "DEFRAG_OVERLAP_MISMATCH" in kinds(notices)
    assert K.DEFRAG_OVERLAP_SAME not in b.anomalies


def test_no_overlap_no_mark():
    d = Defragmenter(DefragConfig(policy="bsd"))
    pieces = [frag(6, 0, b"A" * 16), frag(6, 16, b"A" * 8, False)]
    feed_all(d, pieces)
    assert all(p.anomalies == () for p in pieces)
