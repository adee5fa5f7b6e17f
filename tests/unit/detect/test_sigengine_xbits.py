"""SigEngine: xbits (bits kept per host or address pair across flows, with
an expiry), Suricata 7's ``noalert;`` and ``target:`` in EVE."""

from __future__ import annotations

import pytest

from pakemon.detect import sigengine
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection
from test_sigengine import run_pipe, sids

RULES = "".join(f"alert tcp any any -> any {port} ({body})\n" for port, body in (
    (80, 'msg:"stage1"; content:"STAGE1"; xbits:set,x.s1,track ip_src,expire 60; noalert; '
         'sid:1;'),
    (80, 'msg:"stage2 after stage1"; content:"STAGE2"; xbits:isset,x.s1,track ip_src; sid:2;'),
    (80, 'msg:"stage2 alone"; content:"STAGE2"; xbits:isnotset,x.s1,track ip_src; sid:3;'),
    ("any", 'msg:"pair"; content:"PING"; xbits:set,x.p,track ip_pair; noalert; sid:4;'),
    ("any", 'msg:"pair back"; content:"PONG"; xbits:isset,x.p,track ip_pair; sid:5;'),
))


def conn(client, server, cport, data, ts, sport=80):
    c = TcpConnection(client, server, cport, sport, ts=ts).open()
    c.send(data)
    return c.close()


def test_a_host_bit_set_on_one_flow_is_seen_on_another_until_it_expires():
    frames = (conn("10.0.0.1", "10.0.0.2", 40000, b"STAGE1", 1.0)
              + conn("10.0.0.1", "10.0.0.3", 40001, b"STAGE2", 2.0)  # same host: 2
              + conn("10.0.0.4", "10.0.0.3", 40002, b"STAGE2", 3.0)  # another host: 3
              + conn("10.0.0.1", "10.0.0.3", 40003, b"STAGE2", 70.0))  # expired: 3
    alerts, _ = run_pipe(RULES, frames)
    assert sids(alerts) == {2: 1, 3: 2}  # stage1 itself: noalert
    assert [a.src_ip for a in alerts if a.rule.sid == 3] == ["10.0.0.4", "10.0.0.1"]


def test_an_address_pair_bit_holds_in_both_directions():
    frames = (conn("10.0.0.1", "10.0.0.2", 40000, b"PING", 1.0, sport=7000)
              + conn("10.0.0.2", "10.0.0.1", 40001, b"PONG", 2.0, sport=7000)
              + conn("10.0.0.2", "10.0.0.9", 40002, b"PONG", 3.0, sport=7000))
    alerts, _ = run_pipe(RULES, frames)
    assert sids(alerts) == {5: 1}
    assert (alerts[0].src_ip, alerts[0].dst_ip) == ("10.0.0.2", "10.0.0.1")


def test_the_xbit_table_is_bounded_and_counts_what_it_forgets(monkeypatch):
    monkeypatch.setattr(sigengine, "XBITS_MAX", 2)
    frames = []
    for i, host in enumerate(("10.0.0.11", "10.0.0.12", "10.0.0.13")):
        frames += conn(host, "10.0.0.2", 41000 + i, b"STAGE1", 1.0 + i)
    frames += conn("10.0.0.11", "10.0.0.2", 42000, b"STAGE2", 5.0)  # forgotten first
    frames += conn("10.0.0.13", "10.0.0.2", 42001, b"STAGE2", 6.0)
    alerts, pipe = run_pipe(RULES, frames)
    assert sids(alerts) == {3: 1, 2: 1}
    assert pipe.counters()["sig_xbits_evicted"] == 1


@pytest.mark.parametrize("opt", [
    "xbits:set,a", "xbits:set,a,track ip_any", "xbits:frob,a,track ip_src",
    "xbits:set,a,track ip_src,expire 0", "noalert:1",
])
def test_bad_xbits_are_rule_errors(opt):
    rules, skipped, errors = parse_suricata_rules(
        f'alert tcp any any -> any any (msg:"bad"; {opt}; sid:1;)')
    assert not rules and not skipped and len(errors) == 1


def test_target_names_the_attacked_side_in_eve():
    """``target:`` (Suricata 5+) gives EVE's alert.source and alert.target:
    the request's destination for dest_ip, its source for src_ip."""
    import json

    from pakemon.output.eve import format_eve

    rules = ('alert tcp any any -> any 80 (msg:"to the server"; content:"HIT"; target:dest_ip; '
             'sid:6;)\n'
             'alert tcp any any -> any 80 (msg:"from the client"; content:"HIT"; target:src_ip; '
             'sid:7;)\n'
             'alert tcp any any -> any 80 (msg:"untargeted"; content:"HIT"; sid:8;)\n')
    alerts, _ = run_pipe(rules, conn("10.0.0.1", "10.0.0.2", 40000, b"HIT", 1.0))
    recs = {a.rule.sid: json.loads(format_eve(a))["alert"] for a in alerts}
    client, server = {"ip": "10.0.0.1", "port": 40000}, {"ip": "10.0.0.2", "port": 80}
    assert (recs[6]["source"], recs[6]["target"]) == (client, server)
    assert (recs[7]["source"], recs[7]["target"]) == (server, client)
    assert "target" not in recs[8] and "source" not in recs[8]
    _, _, errors = parse_suricata_rules('alert tcp any any -> any any (target:both; sid:9;)')
    assert len(errors) == 1


def test_hostbits_mark_a_host_for_later_flows():
    """hostbits (Suricata): set on the packet's source (default), its
    destination, or both; isset/isnotset test one side."""
    rules = "".join(f"alert tcp any any -> any any ({body})\n" for body in (
        'msg:"mark"; content:"MARK"; hostbits:set,bad,both; hostbits:noalert; sid:11;',
        'msg:"from a marked host"; content:"AGAIN"; hostbits:isset,bad,src; sid:12;',
        'msg:"to a marked host"; content:"AGAIN"; hostbits:isset,bad,dst; sid:13;',
        'msg:"unmarked source"; content:"AGAIN"; hostbits:isnotset,bad; sid:14;',
    ))
    frames = (conn("10.0.0.1", "10.0.0.2", 40000, b"MARK", 1.0, sport=7000)
              + conn("10.0.0.2", "10.0.0.7", 40001, b"AGAIN", 2.0, sport=7000)
              + conn("10.0.0.8", "10.0.0.1", 40002, b"AGAIN", 3.0, sport=7000))
    alerts, _ = run_pipe(rules, frames)
    got = sorted((a.rule.sid, a.src_ip) for a in alerts)
    assert got == [(12, "10.0.0.2"), (13, "10.0.0.8"), (14, "10.0.0.8")]
    for bad in ("hostbits:isset,bad,both", "hostbits:frob,bad", "hostbits:set"):
        _, _, errors = parse_suricata_rules(f'alert tcp any any -> any any ({bad}; sid:1;)')
        assert len(errors) == 1, bad


def test_flowint_counts_per_flow_and_compares():
    """flowint: ``+`` on an unset integer sets it, changes apply once the
    rule matches, a comparison with an unset one does not match, and each
    flow counts on its own."""
    rules = "".join(f"alert tcp any any -> any any ({body})\n" for body in (
        'msg:"count"; content:"HIT"; flowint:hits,+,1; noalert; sid:21;',
        'msg:"third"; content:"HIT"; flowint:hits,==,3; sid:22;',
        'msg:"unset"; content:"FIRST"; flowint:hits,notset; sid:23;',
        'msg:"copy"; content:"COPY"; flowint:seen,=,hits; noalert; sid:24;',
        'msg:"copied"; content:"CHECK"; flowint:seen,>=,2; flowint:seen,<,limit; sid:25;',
        'msg:"limit"; content:"LIMIT"; flowint:limit,=,9; noalert; sid:26;',
    ))
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 7000, ts=1.0).open()
    for p in (b"FIRST", b"HIT", b"HIT", b"CHECK", b"HIT", b"COPY", b"CHECK", b"LIMIT", b"CHECK"):
        c.send(p)
    other = conn("10.0.0.1", "10.0.0.2", 40001, b"HIT", 9.0, sport=7000)
    alerts, _ = run_pipe(rules, c.close() + other)
    # 22: the third HIT only; 25: seen is 3 but limit unset (0) until LIMIT
    assert sids(alerts) == {23: 1, 22: 1, 25: 1}
    for bad in ("flowint:a,+", "flowint:a,isset,3", "flowint:a,%,1", "flowint:a,=,4294967296"):
        _, _, errors = parse_suricata_rules(f'alert tcp any any -> any any ({bad}; sid:1;)')
        assert len(errors) == 1, bad


@pytest.mark.parametrize("opt, n, expected", [
    ("threshold:type backoff,track by_flow,count 1,multiplier 2;", 25, [1, 2, 4, 8, 16]),
    ("threshold:type backoff,track by_flow,count 5,multiplier 5;", 30, [5, 25]),
    ("threshold:type backoff,track by_flow,count 1,multiplier 10;", 12, [1, 10]),
])
def test_threshold_backoff_alerts_at_count_times_powers_of_the_multiplier(opt, n, expected):
    """type backoff (Suricata 8): per flow, the alerts of the count-th match,
    then of count * multiplier, count * multiplier squared, ...; a second
    flow starts over."""
    from pakemon.lab.traffic import udp_frame

    def burst(sport, t0):
        return [(t0 + i * 0.01, udp_frame("10.0.0.1", "10.0.0.9", sport, 9999, b"PING"))
                for i in range(n)]

    rules = f'alert udp any any -> any any (msg:"b"; content:"PING"; {opt} sid:1;)'
    alerts, _ = run_pipe(rules, burst(1000, 1.0) + burst(1001, 5.0))
    first = [a.ts for a in alerts if a.src_port == 1000]
    assert [round((ts - 1.0) / 0.01) + 1 for ts in first] == expected
    assert len(alerts) == 2 * len(expected)
    for bad in ("type backoff,track by_src,count 1,multiplier 2",
                "type backoff,track by_flow,count 1,seconds 2",
                "type backoff,track by_flow,count 0,multiplier 2"):
        _, skipped, errors = parse_suricata_rules(
            f'alert udp any any -> any any (threshold:{bad}; sid:1;)')
        assert len(errors) + len(skipped) == 1, bad
