"""SigEngine views (the rules that can apply to one TCP direction), the
matcher backends, and what is skipped where no rule can apply."""

from __future__ import annotations

import gc
import random
import socket

import pytest

from pakemon.detect import sigengine
from pakemon.detect.sigengine import SigRuleSet
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.events import Alert
from pakemon.lab.traffic import (SYN, TcpConnection, http_exchange, ping_exchange, tcp_frame,
                                 udp_frame)
from pakemon.pipeline import GC_THRESHOLDS, Pipeline, tune_gc

BACKENDS = ["ahocorasick"] + (["hyperscan"] if sigengine.hyperscan is not None else [])


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setattr(sigengine, "BACKEND", request.param)
    return request.param


def ruleset(text, **kw):
    rules, skipped, errors = parse_suricata_rules(text)
    assert not errors and not skipped, (errors, skipped)
    return SigRuleSet(rules, **kw)


def feed(rs, frames):
    pipe = Pipeline([], sig=rs)
    out = []
    for ts, frame in frames:
        out += pipe.feed(ts, frame)
    out += pipe.flush()
    return pipe, [a for a in out if isinstance(a, Alert)]


def alerts_of(alerts):
    return sorted((a.ts, a.rule.sid, a.src_ip, a.dst_ip) for a in alerts)


def addr(text):
    return socket.inet_aton(text)


def test_view_keeps_only_rules_whose_header_can_fit():
    rs = ruleset(
        'alert tcp $EXTERNAL_NET any -> $HOME_NET 80 (msg:"ext"; content:"aaaa"; sid:1;)\n'
        'alert tcp any any -> any 80 (msg:"srv"; flow:to_server; content:"bbbb"; sid:2;)\n'
        'alert tcp any 80 -> any any (msg:"cli"; flow:to_client; content:"cccc"; sid:3;)\n'
        'alert tcp any any -> any 8080 (msg:"port"; content:"dddd"; sid:4;)\n'
        'alert smb any any -> any any (msg:"smb"; content:"eeee"; sid:5;)\n'
        'alert http any any -> any any (msg:"resp"; flow:to_client; file.data; '
        'content:"ffff"; sid:6;)\n')

    def sids(group):
        if group is None:
            return set()
        return {rs.rules[i].sid[1] for idxs in group.patterns.values() for i in idxs}

    inside, server = addr("10.1.2.3"), addr("10.2.0.1")
    outside = addr("198.51.100.7")
    v = rs.view(inside, server, 40000, 80, True, "http")
    assert sids(v.stream) == {2}  # not $EXTERNAL_NET, not to_client, not 8080, not smb
    assert v.resp is None
    assert sids(rs.view(outside, server, 40000, 80, True, "http").stream) == {1, 2}
    assert sids(rs.view(inside, server, 40000, 8080, True, "http").stream) == {4}
    back = rs.view(server, inside, 80, 40000, False, "http")
    assert sids(back.stream) == {3} and sids(back.resp) == {6}
    # the app protocol not probed yet: app rules stay; an other app: gone
    assert 5 in sids(rs.view(inside, server, 40000, 445, True, None).stream)
    assert 5 not in sids(rs.view(inside, server, 40000, 445, True, "http").stream)
    assert 5 in sids(rs.view(inside, server, 40000, 445, True, "smb").stream)


def test_views_share_groups_across_client_ports():
    rs = ruleset('alert tcp any any -> any 80 (msg:"x"; content:"zzzz"; sid:1;)\n'
                 'alert tcp any [1000:2000] -> any 80 (msg:"y"; content:"yyyy"; sid:2;)')
    a, b = addr("10.0.0.1"), addr("10.0.0.2")
    v1 = rs.view(a, b, 40000, 80, True, None)
    v2 = rs.view(a, b, 50000, 80, True, None)
    v3 = rs.view(a, b, 1500, 80, True, None)
    assert v1 is v2  # same rules: one view, one matcher
    assert v3 is not v1 and v3.stream is not v1.stream


@pytest.mark.parametrize("seed,aidx_max", [(1, 65536), (2, 65536), (3, 3)])
def test_views_keep_exactly_the_rules_whose_header_fits(seed, aidx_max, monkeypatch):
    """A view holds every rule of its protocol whose addresses, ports, flow
    direction and app protocol can fit, and no other, however the lookup
    gets there (rules grouped by header, port-spec pairs found with bit
    masks, caches shared across ports and addresses, each address's
    interval remembered, that memory emptied when full: seed 3 keeps 3):
    checked against each rule's own header, on ports and addresses at and
    around the rules' cuts."""
    monkeypatch.setattr(sigengine, "AIDX_MAX", aidx_max)
    rnd = random.Random(seed)
    ports = ["any", "80", "!80", "[80,8080]", "[1024:]", "[:1023]", "![1:1024]",
             "[53,1000:2000,!1500]", "[8000:8100,443]", "0", "65535", "$HTTP_PORTS"]
    addrs = ["any", "$HOME_NET", "$EXTERNAL_NET", "10.0.0.1", "[10.0.0.0/24,!10.0.0.7]",
             "192.0.2.0/25", "!192.0.2.9", "2001:db8::/64"]
    lines = []
    for sid in range(1, 400):
        proto = rnd.choice(["tcp", "tcp", "udp", "http", "tls", "tcp-pkt", "tcp-stream"])
        flow = rnd.choice(["", "flow:to_server;", "flow:to_client;", "flow:established;"])
        arrow = rnd.choice(["->", "->", "<>"])
        lines.append(f"alert {proto} {rnd.choice(addrs)} {rnd.choice(ports)} {arrow} "
                     f"{rnd.choice(addrs)} {rnd.choice(ports)} (msg:\"r{sid}\"; {flow} "
                     f"content:\"w{sid}x\"; sid:{sid};)")
    rs = ruleset("\n".join(lines))
    made = {}
    make = rs._make_view

    def spy(keep, proto=6):
        v = make(keep, proto)
        made[id(v)] = (keep, v)
        return v

    monkeypatch.setattr(rs, "_make_view", spy)

    def want(src, dst, sport, dport, to_server, app, proto):
        skey, dkey = sigengine._addr_key(src), sigengine._addr_key(dst)
        out = []
        for i in rs._idx[proto]:
            sr = rs.rules[i]
            f = sr.flow
            if not sr.addrs_fit(skey, dkey) or not sr.ports_fit(sport, dport):
                continue
            if f is not None and (f.to_server and not to_server or f.to_client and to_server):
                continue
            if sr.kind in ("stream", "pkt") and sr.app is not None and app is not None \
                    and sr.app != app:
                continue
            out.append(i)
        return tuple(out)

    near = sorted({max(0, min(65535, c + d)) for c in rs._pcuts for d in (-1, 0, 1)})
    # (at the address cuts and beside them: an interval off by one is seen)
    v4 = [addr(a) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.6", "10.0.0.7", "10.0.0.8",
                            "192.0.2.9", "192.0.2.10", "192.0.2.127", "192.0.2.128",
                            "192.0.2.200", "198.51.100.4", "172.16.0.1")]
    v6 = [socket.inet_pton(socket.AF_INET6, a) for a in ("2001:db8::1", "2001:db8:1::1")]
    checked = 0
    for _ in range(3000):
        hosts = v4 if rnd.random() < 0.8 else v6
        src, dst = rnd.choice(hosts), rnd.choice(hosts)
        sport, dport = (rnd.choice(near) if rnd.random() < 0.7 else rnd.randrange(65536)
                        for _ in range(2))
        args = (src, dst, sport, dport, rnd.random() < 0.5,
                rnd.choice([None, "http", "tls", ""]), rnd.choice([6, 6, 17]))
        v = rs.view(*args)
        assert made[id(v)][0] == want(*args), args
        assert len(rs._aidx) <= aidx_max
        checked += 1
    assert checked == 3000 and len(made) > 20  # many distinct views were made


def _random_rules_and_traffic(seed):
    rnd = random.Random(seed)
    alphabet = b"abcXYZ"

    def word(n):
        return bytes(rnd.choice(alphabet) for _ in range(n))

    lines = []
    for sid in range(1, 120):
        opts = []
        for _ in range(rnd.randint(1, 2)):
            w = word(rnd.randint(2, 4)).decode()
            opts.append(f'content:"{w}";{rnd.choice(["", " nocase;", " depth:12;"])}')
        proto = rnd.choice(["tcp", "tcp", "http", "udp", "ip", "icmp"])
        src = rnd.choice(["any", "$HOME_NET", "$EXTERNAL_NET", "10.0.0.1"])
        dst = rnd.choice(["any", "$HOME_NET", "$EXTERNAL_NET", "192.0.2.9"])
        sp, dp = rnd.choice([("any", "any"), ("any", "80"), ("80", "any"),
                             ("any", "[80,8080]"), ("[1024:]", "any"), ("any", "!80")])
        flow = rnd.choice(["", "flow:to_server;", "flow:to_client;", "flow:established;"])
        if proto == "http" and rnd.random() < 0.5:
            buf = rnd.choice(["http.uri;", "file.data;", "http.header;", "http.stat_code;"])
            opts.insert(0, buf)
            if buf == "http.stat_code;":
                opts = [buf, 'content:"200";']
        if proto in ("ip", "icmp"):
            sp = dp = "any"
            flow = ""
        if proto == "icmp" and rnd.random() < 0.5:
            opts.append(rnd.choice(["itype:8;", "itype:0;", "icode:0;"]))
        arrow = rnd.choice(["->", "->", "<>"])
        lines.append(f'alert {proto} {src} {sp} {arrow} {dst} {dp} (msg:"r{sid}"; {flow} '
                     f'{" ".join(opts)} sid:{sid};)')
    frames = []
    ts = 0.0
    hosts = ["10.0.0.1", "10.0.0.2", "192.0.2.9", "198.51.100.4"]
    for i in range(40):
        c, s = rnd.sample(hosts, 2)
        port = rnd.choice([80, 8080, 443])
        req = b"GET /" + word(8) + b" HTTP/1.1\r\nHost: x\r\nX: " + word(12) + b"\r\n\r\n"
        frames += http_exchange(c, s, 2000 + i, req, word(rnd.randint(0, 300)), ts=ts,
                                port=port)
        frames.append((ts + 0.5, udp_frame(c, s, 3000 + i, 53, word(20))))
        # (a ping's payload is bytes 0-255 in order: "abc" and "XYZ" occur)
        frames += ping_exchange(c, s, i, i, size=rnd.choice([40, 120]), ts=ts + 0.6)
        ts += 1.0
    return "\n".join(lines), frames


@pytest.mark.parametrize("seed", [3, 11])
def test_views_alert_exactly_as_the_whole_groups(backend, seed):
    text, frames = _random_rules_and_traffic(seed)
    _, with_views = feed(ruleset(text), frames)
    _, whole = feed(ruleset(text, views=False), frames)
    _, brute = feed(ruleset(text, views=False, prefilter=False), frames)
    assert alerts_of(with_views) == alerts_of(whole) == alerts_of(brute)
    assert len(with_views) > 20  # the random rules do match something


def test_backends_alert_alike():
    if len(BACKENDS) < 2:
        pytest.skip("hyperscan is not installed")
    text, frames = _random_rules_and_traffic(5)
    got = {}
    for b in BACKENDS:
        old = sigengine.BACKEND
        sigengine.BACKEND = b
        try:
            got[b] = alerts_of(feed(ruleset(text), frames)[1])
        finally:
            sigengine.BACKEND = old
    assert got["ahocorasick"] == got["hyperscan"] and got["hyperscan"]


def test_few_patterns_are_tested_with_in_under_pyahocorasick(monkeypatch):
    monkeypatch.setattr(sigengine, "BACKEND", "ahocorasick")
    rs = ruleset('alert tcp any any -> any 80 (msg:"x"; content:"NeedLe"; nocase; sid:1;)')
    g = rs.groups["stream"]
    assert g.auto is None and [p for p, _ in g.short] == [b"needle"]
    frames = http_exchange("10.0.0.1", "10.0.0.2", 4000, b"GET /a HTTP/1.0\r\nX: neeDLE\r\n\r\n")
    _, alerts = feed(rs, frames)
    assert [a.rule.sid for a in alerts] == [1]


def test_responses_parsed_only_where_a_response_rule_can_apply(backend, monkeypatch):
    fed = []
    real = sigengine.SigEngine._http_resp_feed

    def counting(self, st, data, pkt):
        fed.append(len(data))
        return real(self, st, data, pkt)

    monkeypatch.setattr(sigengine.SigEngine, "_http_resp_feed", counting)
    frames = http_exchange("10.0.0.1", "10.0.0.2", 4001, b"GET /x HTTP/1.0\r\n\r\n",
                           b"<html>secret-body</html>")
    req_only = ('alert http any any -> any any (msg:"u"; flow:to_server; http.uri; '
                'content:"/x"; sid:1;)\n')
    _, alerts = feed(ruleset(req_only), frames)
    assert [a.rule.sid for a in alerts] == [1] and fed == []
    # a response rule whose addresses cannot fit: still no parsing
    _, alerts = feed(ruleset(req_only + 'alert http 192.0.2.1 any -> any any (msg:"r"; '
                             'file.data; content:"secret"; sid:2;)'), frames)
    assert [a.rule.sid for a in alerts] == [1] and fed == []
    # one that fits: parsed, and it alerts
    _, alerts = feed(ruleset(req_only + 'alert http any any -> any any (msg:"r"; '
                             'file.data; content:"secret"; sid:2;)'), frames)
    assert sorted(a.rule.sid for a in alerts) == [1, 2] and fed


def test_request_log_bounded_when_no_response_rule_applies():
    rs = ruleset('alert http any any -> any any (msg:"u"; flow:to_server; http.uri; '
                 'content:"/never"; sid:1;)\n'
                 'alert http 192.0.2.1 any -> any any (msg:"r"; file.data; content:"x"; sid:2;)')
    conn = TcpConnection("10.0.0.1", "10.0.0.2", 4002, 80).open()
    for i in range(1500):
        conn.send(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
    flows = []
    real = sigengine.SigEngine._http_feed

    def keep(self, st, data, pkt):
        flows.append(st.flow)
        return real(self, st, data, pkt)

    sigengine.SigEngine._http_feed = keep
    try:
        _, alerts = feed(rs, conn.close())
    finally:
        sigengine.SigEngine._http_feed = real
    assert alerts == []
    assert flows and all(len(f.reqlog) <= 1024 for f in flows)
    assert max(f.expected for f in flows) == 0  # no response parser ever took them


def test_tune_gc_raises_thresholds_and_never_lowers_them():
    old = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        gc.set_threshold(50000, 5, 500)
        tune_gc()
        assert gc.get_threshold() == (50000, GC_THRESHOLDS[1], 500)
    finally:
        gc.set_threshold(*old)


def test_read_summary_times_load_and_processing_apart(tmp_path, capsys):
    from pakemon.cli import main
    from pakemon.lab.traffic import write_pcap

    cap = tmp_path / "t.pcap"
    frames = http_exchange("10.0.0.1", "10.0.0.2", 4003, b"GET / HTTP/1.0\r\n\r\n")
    write_pcap(str(cap), frames)
    rc = main(["read", "-q", "--progress", "never", "--log-dir", str(tmp_path / "logs"),
               str(cap)])
    out = capsys.readouterr().out
    assert rc == 0
    import re

    assert re.search(r"^rules loaded in [0-9.]+ s \(CPU [0-9.]+ s\)$", out, re.M), out
    m = re.search(r"^processed (\d+) frames in [0-9.]+ s \(CPU [0-9.]+ s", out, re.M)
    assert m and int(m.group(1)) == len(frames)


def test_response_bodies_kept_only_where_a_body_rule_can_apply(backend, monkeypatch):
    bodies = []
    real = sigengine.SigEngine._http_resp_tx

    def recording(self, st, resp, pkt):
        bodies.append(resp.body)
        return real(self, st, resp, pkt)

    monkeypatch.setattr(sigengine.SigEngine, "_http_resp_tx", recording)
    frames = http_exchange("10.0.0.1", "10.0.0.2", 4003, b"GET /x HTTP/1.0\r\n\r\n",
                           b"<html>secret-body</html>")
    stat = ('alert http any any -> any any (msg:"s"; flow:to_client; http.stat_code; '
            'content:"200"; sid:1;)\n')
    _, alerts = feed(ruleset(stat), frames)
    assert [a.rule.sid for a in alerts] == [1] and bodies == [b""]
    # a body rule that cannot fit this flow's addresses: still no body kept
    bodies.clear()
    _, alerts = feed(ruleset(stat + 'alert http 192.0.2.1 any -> any any (msg:"b"; '
                                    'file.data; content:"secret"; sid:2;)'), frames)
    assert [a.rule.sid for a in alerts] == [1] and bodies == [b""]
    # one that fits: the body is kept and the rule alerts
    bodies.clear()
    _, alerts = feed(ruleset(stat + 'alert http any any -> any any (msg:"b"; '
                                    'file.data; content:"secret"; sid:2;)'), frames)
    assert sorted(a.rule.sid for a in alerts) == [1, 2]
    assert bodies == [b"<html>secret-body</html>"]


def test_icmp_views_keep_only_rules_whose_addresses_fit(backend):
    text = (
        'alert icmp $EXTERNAL_NET any -> $HOME_NET any (msg:"ext"; itype:8; content:"abc"; '
        'sid:1;)\n'
        'alert icmp any any -> any any (msg:"any"; content:"XYZ"; sid:2;)\n'
        'alert icmp 10.0.0.0/8 any -> any any (msg:"local"; content:"|10 11 12|"; sid:3;)\n'
        'alert ip any any -> any any (msg:"ip"; content:"|20 21 22 23|"; sid:4;)\n'
        'alert icmpv6 any any -> any any (msg:"v6"; content:"abc"; sid:5;)\n')
    rs = ruleset(text)
    local = rs.view(addr("10.0.0.1"), addr("10.0.0.2"), 8, 0, True, None, 1)
    sids = {rs.rules[i].sid[1] for idxs in local.pkt.patterns.values() for i in idxs}
    assert sids == {2, 3, 4}  # not $EXTERNAL_NET's, not ICMPv6's
    # (a ping's payload is bytes 0-255 in order: every pattern above occurs)
    frames = (ping_exchange("198.51.100.4", "10.0.0.2", 7, 1, size=120, ts=0.0)
              + ping_exchange("10.0.0.1", "10.0.0.2", 8, 1, size=120, ts=1.0))
    got = {}
    for label, kw in (("views", {}), ("whole", {"views": False}),
                      ("brute", {"views": False, "prefilter": False})):
        got[label] = sorted((a.ts, a.rule.sid) for a in feed(ruleset(text, **kw), frames)[1])
    assert got["views"] == got["whole"] == got["brute"]
    by_packet = {}
    for ts, sid in got["views"]:
        by_packet.setdefault(ts, set()).add(sid)
    # the outside request; its reply (itype 0, to the outside); the local pair
    assert list(by_packet.values()) == [{1, 2, 4}, {2, 3, 4}, {2, 3, 4}, {2, 3, 4}]


def test_syns_no_rule_can_see_make_no_flow_state():
    """A SYN flood: each SYN opens a session, but with no payload-less
    packet rule for its direction the Suricata engine keeps nothing for it;
    a flags:S rule still sees every one."""
    syns = [(i * 0.001, tcp_frame(f"198.51.100.{i % 200 + 1}", "10.0.0.2", 10000 + i, 80,
                                  i * 7919, 0, SYN)) for i in range(300)]
    content_only = ('alert tcp any any -> any 80 (msg:"c"; flow:to_server; content:"evil"; '
                    'sid:1;)\n')
    pipe, alerts = feed(ruleset(content_only), syns)
    assert alerts == [] and pipe.sig._fids == 0
    pipe, alerts = feed(ruleset(content_only + 'alert tcp any any -> any 80 (msg:"syn"; '
                                'flags:S; sid:2;)'), syns)
    assert [a.rule.sid for a in alerts] == [2] * 300


def test_payloadless_rules_see_each_segment_of_the_handshake():
    """Before a direction has flow state, whether a payload-less packet rule
    can apply to it is judged once and kept for its next segments: each
    segment of every handshake still meets the rules written for it (the
    client's SYN and ACK, the server's SYN-ACK), the handshakes of a port
    only a content rule names between them."""
    from pakemon.lab.traffic import ACK

    rs = ruleset(
        'alert tcp any any -> any 80 (msg:"syn"; flags:S; sid:1;)\n'
        'alert tcp any 80 -> any any (msg:"synack"; flags:SA; sid:2;)\n'
        'alert tcp any any -> any 80 (msg:"ack"; flags:A; flow:to_server; sid:3;)\n'
        'alert tcp any any -> any [80,8080] (msg:"c"; content:"evil"; sid:4;)\n')
    frames = []
    for i in range(5):
        c = f"198.51.100.{i + 1}"
        frames += [(i + 0.1, tcp_frame(c, "10.0.0.2", 20000 + i, 80, 100, 0, SYN)),
                   (i + 0.2, tcp_frame("10.0.0.2", c, 80, 20000 + i, 900, 101, SYN | ACK)),
                   (i + 0.3, tcp_frame(c, "10.0.0.2", 20000 + i, 80, 101, 901, ACK)),
                   (i + 0.4, tcp_frame(c, "10.0.0.2", 20000 + i, 80, 101, 901, ACK))]
        # port 8080: a content rule only (the engine reads its segments)
        frames += [(i + 0.5, tcp_frame(c, "10.0.0.2", 30000 + i, 8080, 100, 0, SYN)),
                   (i + 0.6, tcp_frame("10.0.0.2", c, 8080, 30000 + i, 900, 101, SYN | ACK)),
                   (i + 0.7, tcp_frame(c, "10.0.0.2", 30000 + i, 8080, 101, 901, ACK))]
    pipe, alerts = feed(rs, frames)
    got = [(round(a.ts % 1, 1), a.rule.sid) for a in alerts]
    # the ACK rule alerts once per flow direction's packet, both pure ACKs
    assert got == [(0.1, 1), (0.2, 2), (0.3, 3), (0.4, 3)] * 5
