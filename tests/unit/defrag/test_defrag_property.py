"""Property: consistent fragments reassemble to the original under every policy."""

from hypothesis import given, settings
from hypothesis import strategies as st

from defrag_frames import frag, udp_datagram
from pakemon.config import DEFRAG_POLICIES, DefragConfig
from pakemon.defrag import Defragmenter


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_defrag_any_cut_order_and_duplication_reassembles_the_original(data):
    policy = data.draw(st.sampled_from(DEFRAG_POLICIES), label="policy")
    family = data.draw(st.sampled_from([4, 6]), label="family")
    body = data.draw(st.binary(min_size=1, max_size=400), label="body")
    dgram = udp_datagram(body, sport=4000, dport=53)
    cuts = data.draw(st.sets(st.integers(1, (len(dgram) - 1) // 8), min_size=1, max_size=12),
                     label="cuts")
    bounds = [0] + sorted(8 * c for c in cuts) + [len(dgram)]
    pieces = [(bounds[i], dgram[bounds[i]:bounds[i + 1]], i < len(bounds) - 2)
              for i in range(len(bounds) - 1)]
    order = data.draw(st.permutations(range(len(pieces))), label="order")
    sequence = list(order)
    for _ in range(data.draw(st.integers(0, 6), label="n_dups")):
        which = data.draw(st.integers(0, len(pieces) - 1))
        where = data.draw(st.integers(0, len(sequence)))
        sequence.insert(where, which)

    d = Defragmenter(DefragConfig(policy=policy))
    out = []
    for i, k in enumerate(sequence):
        off, chunk, mf = pieces[k]
        r, notices = d.feed(frag(family, off, chunk, mf, proto=17, id=99, ts=i * 0.01))
        assert notices == [], notices
        if r is not None:
            out.append(r)
    assert out, (policy, family, bounds, sequence)
    for r in out:
        assert r.ip_payload == dgram
        assert r.l4 and (r.sport, r.dport, r.payload) == (4000, 53, body)
    c = d.counters()
    assert c["discarded"] == c["overlap_mismatches"] == c["fragments_dropped"] == 0
