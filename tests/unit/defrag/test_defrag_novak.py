"""Novak's overlap pattern per policy, with Suricata's expected bytes.

Source: OISF/suricata src/defrag.c (7.x), DefragDoSturgesNovakTest and
DefragSturgesNovak{Bsd,Linux,Windows,Solaris,First,Last}{Ipv4,Ipv6}Test,
which implement Novak's "Target-Based Fragmentation Reassembly" (2005)
scenario: nine original fragments, seven overlapping ones, then the last.
Each letter below is 8 bytes of that letter. bsd-right has no Suricata test
(Suricata never implemented it): its row follows Snort frag3's
FRAG_POLICY_BSD_RIGHT rules and is derived, not quoted.
"""

import pytest

from defrag_frames import feed_all, frag, kinds
from pakemon.config import DefragConfig
from pakemon.defrag import Defragmenter

# (offset, letter, length) in the order DefragDoSturgesNovakTest sends them.
NOVAK = [
    (0, "A", 24), (32, "B", 16), (48, "C", 24), (80, "D", 8), (104, "E", 16),
    (120, "F", 24), (144, "G", 16), (160, "H", 16), (176, "I", 8),
    (8, "J", 32), (48, "K", 24), (72, "L", 24), (96, "M", 24), (128, "N", 8),
    (152, "O", 8), (160, "P", 8), (176, "Q", 16),  # Q is the last fragment
]

EXPECTED = {
    "bsd": "AAAJJBCCCLLLMMMFFFGGHHIQ",
    "linux": "AAAJJBKKKLLLMMMFFFGGPHQQ",
    "windows": "AAAJBBCCCLLLMEEFFFGGHHIQ",
    "solaris": "AAAJBBCCCLLLMMMFFFGGHHIQ",
    "first": "AAAJBBCCCLDLMEEFFFGGHHIQ",
    "last": "AJJJJBKKKLLLMMMFNFGOPHQQ",
    "bsd-right": "AJJJBBKKKLLLMMMFFFGGHHQQ",
}


def novak(policy, family):
    d = Defragmenter(DefragConfig(policy=policy))
    pkts = [frag(family, off, (ch * n).encode(), i != len(NOVAK) - 1, proto=1)
            for i, (off, ch, n) in enumerate(NOVAK)]
    out, notices = feed_all(d, pkts[:-1])
    assert out == []
    assert "DEFRAG_OVERLAP_MISMATCH" in kinds(notices)  # Suricata: FRAG_OVERLAP set
    r, _ = d.feed(pkts[-1])
    assert r is not None
    assert len(r.ip_payload) == 192
    assert d.queues == 0 and d.memory == 0 and d.charged == 0
    return r.ip_payload


def blocks(expected: str) -> bytes:
    return "".join(ch * 8 for ch in expected).encode()


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_novak_bsd_policy(family):
    assert novak("bsd", family) == blocks(EXPECTED["bsd"])


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_novak_linux_policy(family):
    assert novak("linux", family) == blocks(EXPECTED["linux"])


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_novak_windows_policy(family):
    assert novak("windows", family) == blocks(EXPECTED["windows"])


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_novak_solaris_policy(family):
    assert novak("solaris", family) == blocks(EXPECTED["solaris"])


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_novak_first_policy(family):
    assert novak("first", family) == blocks(EXPECTED["first"])


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_novak_last_policy(family):
    assert novak("last", family) == blocks(EXPECTED["last"])


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_novak_bsd_right_policy(family):
    assert novak("bsd-right", family) == blocks(EXPECTED["bsd-right"])


@pytest.mark.parametrize("policy", ["drop-overlap", "linux-current"])
@pytest.mark.parametrize("family", [4, 6])
def test_defrag_novak_rejecting_policies_discard(policy, family):
    """J overlaps A and B partially: both RFC 5722 policies drop it all."""
    d = Defragmenter(DefragConfig(policy=policy))
    pkts = [frag(family, off, (ch * n).encode(), i != len(NOVAK) - 1, proto=1)
            for i, (off, ch, n) in enumerate(NOVAK)]
    out, notices = feed_all(d, pkts)
    assert out == []
    assert "DEFRAG_OVERLAP" in kinds(notices)
    assert d.counters()["discarded"] >= 1


# Suricata's further overlap tests (src/defrag.c, 7.x).

@pytest.mark.parametrize("family", [4, 6])
def test_defrag_bsd_fragment_after_no_mf(family):
    """DefragBsdFragmentAfterNoMfIpv{4,6}Test."""
    d = Defragmenter(DefragConfig(policy="bsd"))
    out, _ = feed_all(d, [
        frag(family, 24, b"A" * 16, False, id=0x96),
        frag(family, 8, b"B" * 16, id=0x96),
        frag(family, 16, b"C" * 16, id=0x96),
        frag(family, 0, b"D" * 8, id=0x96),
    ])
    assert [r.ip_payload for r in out] == [b"D" * 8 + b"B" * 16 + b"C" * 8 + b"A" * 8]


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_bsd_subsequent_overlaps_start_of_original(family):
    """DefragBsdSubsequentOverlapsStartOfOriginalIpv{4,6}Test."""
    d = Defragmenter(DefragConfig(policy="bsd"))
    out, _ = feed_all(d, [frag(family, 8, b"E" * 24, False), frag(family, 0, b"M" * 24)])
    assert [r.ip_payload for r in out] == [b"M" * 24 + b"E" * 8]


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_bsd_subsequent_overlaps_start_of_original_2(family):
    """DefragBsdSubsequentOverlapsStartOfOriginalIpv{4,6}Test_2."""
    d = Defragmenter(DefragConfig(policy="bsd"))
    out, _ = feed_all(d, [
        frag(family, 16, b"AABBCCDDAABBDDCC", id=6),
        frag(family, 8, b"AACCBBDDAACCDDBB", id=6),
        frag(family, 0, b"ZZZZZZZZ", id=6),
        frag(family, 32, b"DDCCBBAA", False, id=6),
    ])
    assert [r.ip_payload[8:] for r in out] == [b"AACCBBDDAACCDDBBAABBDDCCDDCCBBAA"]


@pytest.mark.parametrize("family", [4, 6])
def test_defrag_bsd_missing_fragment_never_completes(family):
    """DefragBsdMissingFragmentIpv{4,6}Test: the hole at 32-40 stays."""
    d = Defragmenter(DefragConfig(policy="bsd"))
    out, _ = feed_all(d, [
        frag(family, 16, b"AABBCCDDAABBDDCC", id=189),
        frag(family, 40, b"AACCBBDD", id=189),
        frag(family, 8, b"AACCDDBBAADDBBCC", id=189),
        frag(family, 0, b"ZZZZZZZZ", id=189),
        frag(family, 48, b"DDCCBBAA", False, id=189),
    ])
    assert out == [] and d.queues == 1


def test_defrag_linux_jeremy():
    """DefragTestJeremyLinux: a later fragment starting before a held one wins."""
    d = Defragmenter(DefragConfig(policy="linux"))
    out, _ = feed_all(d, [
        frag(4, 0, b"A" * 24), frag(4, 40, b"B" * 48), frag(4, 24, b"C" * 48),
        frag(4, 88, b"D" * 14, False),
    ])
    assert [r.ip_payload for r in out] == [b"A" * 24 + b"C" * 48 + b"B" * 16 + b"D" * 14]
