"""SigEngine: Suricata rules run over frames built with pakemon.lab.traffic."""

from __future__ import annotations

import random

import pytest

from pakemon.detect.sigengine import DIRSTATE_COST, PACKET_COST, SigRuleSet
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.events import Alert
from pakemon.lab.traffic import (TcpConnection, dns_exchange, http_exchange, ping_exchange,
                                 tcp_frame, udp_frame)
from pakemon.pipeline import Pipeline
from sig_traffic import (APP_RULES, CUT_RULES, FRAG_RULES, HTTP_RULES, SINK_RULES, TLS_RULES,
                         _dns_query, app_frames, cut_frames, cut_stream, frag_datagrams, frag_frames,
                         http_exchanges, http_frames, sink_traffic, tls_frames)


def run(rules_text, frames, prefilter=True, vars=None):
    return run_pipe(rules_text, frames, prefilter, vars)[0]


def run_pipe(rules_text, frames, prefilter=True, vars=None, filename="<string>"):
    """(the alerts, the pipeline): for a test that reads its counters too
    (``filename``: where the rules' relative files are read from)."""
    rules, skipped, errors = parse_suricata_rules(rules_text, filename, vars=vars)
    assert not errors and not skipped, (errors, skipped)
    pipe = Pipeline([], sig=SigRuleSet(rules, prefilter=prefilter))
    out = []
    for ts, frame in frames:
        out += pipe.feed(ts, frame)
    out += pipe.flush()
    return [a for a in out if isinstance(a, Alert)], pipe


def sids(alerts):
    counts = {}
    for a in alerts:
        counts[a.rule.sid] = counts.get(a.rule.sid, 0) + 1
    return counts


def tcp_session(payloads, cport=40000, sport=80, segment=None, server=b""):
    c = TcpConnection("10.0.0.1", "10.0.0.2", cport, sport).open()
    for p in payloads:
        c.send(p, segment=segment)
    if server:
        c.send(server, from_client=False)
    return c.close()


def test_stream_content_alerts_once_per_chunk_and_direction():
    frames = tcp_session([b"hello EVIL world"], server=b"EVIL reply")
    alerts = run('alert tcp any any -> any 80 (msg:"x"; flow:established,to_server; '
                 'content:"EVIL"; sid:1;)\n'
                 'alert tcp any 80 -> any any (msg:"y"; flow:to_client; content:"EVIL"; sid:2;)',
                 frames)
    assert sids(alerts) == {1: 1, 2: 1}
    a = [x for x in alerts if x.rule.sid == 1][0]
    assert (a.src_ip, a.dst_ip, a.dst_port) == ("10.0.0.1", "10.0.0.2", 80)


def test_two_requests_acked_separately_alert_twice():
    frames = tcp_session([b"AAAA-attack-1", b"AAAA-attack-2"])
    alerts = run('alert tcp any any -> any any (msg:"x"; content:"AAAA"; depth:4; sid:1;)',
                 frames)
    assert sids(alerts) == {1: 2}


def test_pattern_split_over_one_byte_segments():
    frames = tcp_session([b"xxxxSPLITPATTERNyyyy"], segment=1)
    alerts = run('alert tcp any any -> any any (msg:"x"; content:"SPLITPATTERN"; sid:1;)',
                 frames)
    assert sids(alerts) == {1: 1}


def test_wrong_direction_and_ports_do_not_alert():
    frames = tcp_session([b"needle"])
    alerts = run('alert tcp any any -> any 81 (msg:"port"; content:"needle"; sid:1;)\n'
                 'alert tcp any any -> any any (msg:"dir"; flow:to_client; content:"needle"; '
                 'sid:2;)\n'
                 'alert tcp 10.9.0.0/16 any -> any any (msg:"addr"; content:"needle"; sid:3;)\n'
                 'alert tcp any 80 <> any any (msg:"bidir"; content:"needle"; sid:4;)\n'
                 'alert tcp !10.0.0.1 any -> any any (msg:"neg"; content:"needle"; sid:5;)',
                 frames)
    assert sids(alerts) == {4: 1}


def test_packet_rules_dsize_flags_and_counting():
    frames = tcp_session([b"0123456789"])
    alerts = run('alert tcp any any -> any any (msg:"syn"; flags:S; sid:1;)\n'
                 'alert tcp any any -> any any (msg:"ten"; dsize:10; sid:2;)\n'
                 'alert tcp any any -> any any (msg:"not9"; dsize:!9; sid:3;)\n'
                 'alert tcp any any -> any any (msg:"lt"; dsize:<5; sid:4;)', frames)
    counts = sids(alerts)
    assert counts[1] == 1 and counts[2] == 1 and counts[3] == 1
    # every empty packet: SYN, SYN-ACK, ACK, the data ACK, FIN, FIN, ACK
    assert counts[4] == 7


def test_icmp_and_udp():
    frames = ping_exchange("10.0.0.1", "10.0.0.3", 7, 9) + dns_exchange(
        "10.0.0.1", "10.0.0.53", 5555, "www.example.com", ts=1)
    alerts = run('alert icmp any any -> any any (msg:"req"; itype:8; icmp_id:7; icmp_seq:9; '
                 'sid:1;)\n'
                 'alert icmp any any -> any any (msg:"rep"; itype:0; sid:2;)\n'
                 'alert icmp any any -> any any (msg:"other"; itype:3; sid:3;)\n'
                 'alert udp any any -> any 53 (msg:"dns"; content:"|07|example"; nocase; '
                 'sid:4;)\n'
                 'alert udp any any -> any 53 (msg:"resp"; flow:to_client; content:"example"; '
                 'sid:5;)', frames)
    assert sids(alerts) == {1: 1, 2: 1, 4: 1}


def test_icmp_flow_is_the_address_pair():
    """As Suricata's flows: an echo request and its reply are one flow (its
    flow hash gives ICMP other than errors fixed ports), so the reply goes
    to the client and finds the flow established, and a flowbit the
    request set is seen on the reply."""
    frames = ping_exchange("10.0.0.1", "10.0.0.3", 7, 9) + ping_exchange(
        "10.0.0.1", "10.0.0.3", 7, 10, ts=1)
    alerts = run('alert icmp any any -> any any (msg:"est rep"; flow:established,to_client; '
                 'itype:0; sid:1;)\n'
                 'alert icmp any any -> any any (msg:"req to server"; flow:to_server; itype:8; '
                 'sid:2;)\n'
                 'alert icmp any any -> any any (msg:"rep to server"; flow:to_server; itype:0; '
                 'sid:3;)\n'
                 'alert icmp any any -> any any (msg:"set"; itype:8; flowbits:set,pinged; '
                 'flowbits:noalert; sid:4;)\n'
                 'alert icmp any any -> any any (msg:"seen"; itype:0; flowbits:isset,pinged; '
                 'sid:5;)\n', frames)
    assert sids(alerts) == {1: 2, 2: 2, 5: 2}


def test_dns_rule_with_raw_contents_reads_datagrams_of_a_dns_flow():
    """``alert dns`` with a plain content (ET's TXT-response rules): a
    packet rule on flows whose protocol is DNS, which Suricata tells by
    probing UDP on port 53. The same bytes to another port, or a port-53
    datagram that is no DNS message, are no DNS flow."""
    from pakemon.lab.traffic import dns_txt_answer, udp_frame

    def txt_answer(qid, txt):
        return dns_txt_answer("t.example.org", txt, qid)

    frames = [(1.0, udp_frame("8.8.8.8", "10.0.0.1", 53, 5353, txt_answer(1, b"V3LU9x"))),
              (2.0, udp_frame("8.8.8.8", "10.0.0.1", 5300, 5353, txt_answer(2, b"V3LU9y"))),
              (3.0, udp_frame("8.8.8.8", "10.0.0.1", 53, 5354, b"not dns V3LU9z"))]
    rules = ('alert dns any any -> any any (msg:"txt"; content:"|00 10 00 01|"; '
             'content:"V3LU9"; distance:0; sid:1;)\n'
             'alert udp any any -> any any (msg:"plain"; content:"V3LU9"; sid:2;)\n')
    alerts = run(rules, frames)
    assert sids(alerts) == {1: 1, 2: 3}
    (txt,) = [a for a in alerts if a.rule.sid == 1]
    assert txt.src_port == 53 and txt.extra["app_proto"] == "dns"
    # the other datagrams' alerts: no DNS flow, no app_proto
    assert [a.extra.get("app_proto") for a in alerts if a.rule.sid == 2] == ["dns", None, None]


def test_http_buffers_once_per_transaction():
    req = (b"GET /a/../evil%2ephp?x=1 HTTP/1.1\r\nHost: WWW.Example.com:8080\r\n"
           b"User-Agent: BadBot/1.0\r\nCookie: s=1\r\n\r\n")
    frames = []
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40001, 8080).open()
    c.send(req)
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", from_client=False)
    c.send(req)
    frames = c.close()
    alerts = run(
        'alert http any any -> any any (msg:"uri"; content:"/evil.php"; http_uri; sid:1;)\n'
        'alert http any any -> any any (msg:"raw"; content:"%2e"; http_raw_uri; sid:2;)\n'
        'alert http any any -> any any (msg:"ua"; http.user_agent; content:"BadBot"; '
        'startswith; sid:3;)\n'
        'alert http any any -> any any (msg:"host"; http.host; content:"www.example.com"; '
        'bsize:15; sid:4;)\n'
        'alert http any any -> any any (msg:"method"; http.method; content:"POST"; sid:5;)\n'
        'alert http any any -> any any (msg:"urilen"; urilen:>5; sid:6;)\n'
        'alert http any any -> any any (msg:"cookie"; content:"s=1"; http_cookie; sid:7;)',
        frames)
    assert sids(alerts) == {1: 2, 2: 2, 3: 2, 4: 2, 6: 2, 7: 2}


def test_http_rule_needs_http_content_not_port():
    frames = tcp_session([b"SSH-2.0-OpenSSH\r\n/evil.php"], sport=80)
    frames += http_exchange("10.0.0.1", "10.0.0.2", 40002, b"GET /evil.php HTTP/1.0\r\n\r\n",
                            port=5555, ts=5)
    alerts = run('alert http any any -> any any (msg:"uri"; content:"/evil.php"; http_uri; '
                 'sid:1;)', frames)
    assert len(alerts) == 1 and alerts[0].dst_port == 5555


def test_flowbits_setter_runs_before_checker_on_same_packet():
    frames = tcp_session([b"LOGIN admin"], sport=21)
    # the checker comes first in the file: order must still be by dependency
    alerts = run('alert tcp any any -> any any (msg:"chk"; flowbits:isset,login; '
                 'content:"admin"; sid:2;)\n'
                 'alert tcp any any -> any any (msg:"set"; content:"LOGIN"; '
                 'flowbits:set,login; flowbits:noalert; sid:1;)\n'
                 'alert tcp any any -> any any (msg:"not"; flowbits:isnotset,login; '
                 'content:"admin"; sid:3;)', frames)
    assert sids(alerts) == {2: 1}


def test_flowbits_are_per_flow():
    f1 = tcp_session([b"SETBIT"], cport=41000)
    f2 = tcp_session([b"CHECK"], cport=41001)
    for i, (ts, fr) in enumerate(f2):
        f2[i] = (ts + 10, fr)
    alerts = run('alert tcp any any -> any any (msg:"set"; content:"SETBIT"; '
                 'flowbits:set,b; flowbits:noalert; sid:1;)\n'
                 'alert tcp any any -> any any (msg:"chk"; content:"CHECK"; '
                 'flowbits:isset,b; sid:2;)', f1 + f2)
    assert sids(alerts) == {}


def test_pass_rule_suppresses_alerts_of_the_flow():
    frames = tcp_session([b"evil stuff"], cport=42000)
    other = tcp_session([b"evil stuff"], cport=42001)
    alerts = run('alert tcp any any -> any any (msg:"a"; content:"evil"; sid:1;)\n'
                 'pass tcp any 42000 -> any any (msg:"p"; content:"stuff"; sid:2;)',
                 frames + [(ts + 10, f) for ts, f in other])
    assert len(alerts) == 1 and alerts[0].src_port == 42001


def udp_burst(n, sport=1000, dst="10.0.0.9"):
    return [(i * 0.1, udp_frame("10.0.0.1", dst, sport, 9999, b"PING")) for i in range(n)]


@pytest.mark.parametrize("opt,expected", [
    ("threshold:type limit,track by_src,count 3,seconds 60;", 3),
    ("threshold:type threshold,track by_src,count 3,seconds 60;", 3),  # 3rd, 6th, 9th
    ("threshold:type both,track by_src,count 3,seconds 60;", 1),
    ("detection_filter:track by_src,count 7,seconds 60;", 3),  # 8th, 9th, 10th
])
def test_thresholds(opt, expected):
    alerts = run(f'alert udp any any -> any any (msg:"t"; content:"PING"; {opt} sid:1;)',
                 udp_burst(10))
    assert len(alerts) == expected


def test_threshold_by_dst_keys_separately():
    frames = udp_burst(4, dst="10.0.0.9") + [(ts + 1, f) for ts, f in
                                              udp_burst(4, dst="10.0.0.8")]
    alerts = run('alert udp any any -> any any (msg:"t"; content:"PING"; '
                 'threshold:type limit,track by_dst,count 1,seconds 60; sid:1;)', frames)
    assert len(alerts) == 2


def test_alert_rule_fields_for_outputs():
    frames = udp_burst(1)
    alerts = run('alert udp any any -> any any (msg:"m"; content:"PING"; classtype:x; '
                 'priority:1; gid:3; rev:7; sid:99;)', frames)
    rule = alerts[0].rule
    assert (rule.sid, rule.rev, rule.signature, rule.category, rule.severity) == \
        (99, 7, "m", "x", 1)
    assert rule.meta["gid"] == 3 and rule.meta["action"] == "alert"


def test_prefilter_equals_brute_force():
    rnd = random.Random(7)
    alphabet = b"abcdXYZ"

    def word(n):
        return bytes(rnd.choice(alphabet) for _ in range(n))

    lines = []
    for sid in range(1, 80):
        opts = []
        for _ in range(rnd.randint(0, 3)):
            w = word(rnd.randint(1, 3)).decode()
            mod = rnd.choice(["", " nocase;", " depth:10;", " offset:2;"])
            neg = "!" if rnd.random() < 0.15 else ""
            opts.append(f'content:{neg}"{w}";{mod}')
        proto = rnd.choice(["tcp", "udp", "ip"])
        sp, dp = rnd.choice([("any", "any"), ("any", "80"), ("any", "2000"),
                             ("80", "any"), ("[1000:1010]", "any"), ("any", "!80")])
        if proto == "ip":
            sp = dp = "any"
        arrow = rnd.choice(["->", "->", "<>"])
        size = rnd.choice(["", "", "dsize:>5;", "dsize:<12;", "dsize:3<>20;", "dsize:!7;"])
        lines.append(f'alert {proto} any {sp} {arrow} any {dp} (msg:"r{sid}"; '
                     f'{" ".join(opts)} {size} sid:{sid};)')
    text = "\n".join(lines)
    frames = []
    for i in range(30):
        payload = word(rnd.randint(0, 30))
        frames.append((i, udp_frame("10.0.0.1", "10.0.0.2", 1000 + i, 2000, payload)))
        frames += [(i + 0.5 + k * 1e-4, f) for k, (_, f) in
                   enumerate(tcp_session([payload or b"x"], cport=3000 + i))]
    fast = sorted((a.ts, a.rule.sid) for a in run(text, frames))
    brute = sorted((a.ts, a.rule.sid) for a in run(text, frames, prefilter=False))
    assert fast == brute
    assert len(fast) > 20  # the random rules do match something


def test_native_rules_still_run_beside_suricata_rules():
    from pakemon.detect.rule_parser import parse_rules

    native = parse_rules('N tcp * 80 "native-hit"\n')
    rules, _, _ = parse_suricata_rules('alert tcp any any -> any 80 (msg:"s"; '
                                       'content:"suri-hit"; sid:5;)')
    pipe = Pipeline(native.rules if hasattr(native, "rules") else native,
                    sig=SigRuleSet(rules))
    out = []
    for ts, f in tcp_session([b"native-hit suri-hit"]):
        out += pipe.feed(ts, f)
    out += pipe.flush()
    names = sorted(a.rule.signature for a in out if isinstance(a, Alert))
    assert names == ["N", "s"]


def test_kernel_service_keys_from_suricata_ports():
    from pakemon import abi
    from pakemon.capture.xdp import service_keys
    from pakemon.detect.ruletree import RuleTree
    from pakemon.detect.sigengine import KernelTree

    rules, _, _ = parse_suricata_rules(
        'alert tcp any any -> any $HTTP_PORTS (msg:"a"; content:"x"; sid:1;)\n'
        'alert udp any 53 -> any any (msg:"b"; content:"x"; sid:2;)\n',
        vars={"HTTP_PORTS": "[80,8080]"})
    keys, bits = service_keys(KernelTree(RuleTree([]), SigRuleSet(rules)))
    assert set(keys) == {(6, abi.Dir.DST, 80), (6, abi.Dir.DST, 8080), (17, abi.Dir.SRC, 53)}
    assert bits == 0
    more, _, _ = parse_suricata_rules('alert tcp any any -> any any (msg:"c"; content:"y"; '
                                      'sid:3;)')
    _, bits = service_keys(KernelTree(RuleTree([]), SigRuleSet(rules + more)))
    assert bits & abi.ANY.TCP and not bits & abi.ANY.UDP
    # DNS rules: UDP and, for `alert dns`, TCP to the DNS port
    dns, _, _ = parse_suricata_rules('alert dns any any -> any any (msg:"d"; dns.query; '
                                     'content:"evil"; sid:4;)')
    keys, bits = service_keys(KernelTree(RuleTree([]), SigRuleSet(dns)))
    assert (6, abi.Dir.DST, 53) in keys and bits == abi.ANY.UDP
    # an `ip` rule narrowed by ip_proto to another protocol: those packets
    # only, not every TCP, UDP and ICMP one
    tun, _, _ = parse_suricata_rules('alert ip any any -> any any (msg:"6in4"; ip_proto:41; '
                                     'sid:5;)')
    keys, bits = service_keys(KernelTree(RuleTree([]), SigRuleSet(tun)))
    assert not keys and bits == abi.ANY.OTHER
    loose, _, _ = parse_suricata_rules('alert ip any any -> any any (msg:"not gre"; '
                                       'ip_proto:!47; sid:6;)')
    _, bits = service_keys(KernelTree(RuleTree([]), SigRuleSet(loose)))
    assert bits == abi.ANY.TCP | abi.ANY.UDP | abi.ANY.ICMP | abi.ANY.OTHER


IP_PROTO_RULES = (
    'alert ip any any -> any any (msg:"6in4"; ip_proto:41; sid:1;)\n'
    'alert ip any any -> any any (msg:"tcp X"; ip_proto:6; content:"XMARK"; sid:2;)\n'
    'alert ip any any -> any any (msg:"not tcp"; ip_proto:!6; content:"XMARK"; sid:3;)\n')


def test_ip_proto_narrows_an_ip_rule_to_its_protocol():
    """An ``ip`` rule with ip_proto:N is a candidate on protocol N's packets
    only (Suricata narrows the signature's protocol): a 6in4 packet raises
    the 6in4 rule, the TCP segments of a session are no candidates for it
    (ET's rule had been checked on every packet from $HOME_NET), and an
    ip_proto:6 rule with a content still alerts on TCP, a negated one on UDP."""
    from pakemon.lab.traffic import _ip_ether
    inner = bytes.fromhex("60000000000c3b40") + bytes(32) + b"XMARK-in-6in4"
    frames = tcp_session([b"GET / HTTP/1.0\r\n\r\n"] * 3)
    frames.append((9.0, _ip_ether("10.0.0.1", "192.0.2.9", 41, inner)))
    frames.append((9.5, udp_frame("10.0.0.1", "10.0.0.2", 5000, 6000, b"an XMARK")))
    alerts, pipe = run_pipe(IP_PROTO_RULES, frames)
    assert sids(alerts) == {1: 1, 3: 2}  # (6in4's payload holds XMARK: not TCP)
    assert pipe.sig.counters["sig_candidates"] == 3
    tcp = tcp_session([b"an XMARK here"])
    assert sids(run(IP_PROTO_RULES, tcp)) == {2: 1}


def test_http_response_buffers_paired_with_request():
    import gzip

    body = gzip.compress(b"<html>malicious-payload</html>")
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40010, 80).open()
    c.send(b"GET /download.exe HTTP/1.1\r\nHost: a\r\n\r\n")
    c.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nServer: evil\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body) + body, from_client=False)
    c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    c.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", from_client=False)
    frames = c.close()
    alerts = run(
        'alert http any any -> any any (msg:"body"; flow:to_client; file_data; '
        'content:"malicious-payload"; sid:1;)\n'
        'alert http any any -> any any (msg:"code+uri"; content:"/download.exe"; http_uri; '
        'content:"200"; http_stat_code; sid:2;)\n'
        'alert http any any -> any any (msg:"404"; http.stat_code; content:"404"; sid:3;)\n'
        'alert http any any -> any any (msg:"srv hdr"; flow:to_client; content:"Server|3a| '
        'evil"; http_header; sid:4;)\n'
        'alert http any any -> any any (msg:"req"; flow:to_server; content:"/x"; http_uri; '
        'sid:5;)', frames)
    assert sids(alerts) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    body_alert = [a for a in alerts if a.rule.sid == 1][0]
    assert (body_alert.src_ip, body_alert.src_port) == ("10.0.0.2", 80)


@pytest.mark.parametrize("prefilter", [True, False])
def test_raw_content_beside_http_buffers_is_looked_for_in_the_body(prefilter):
    # Suricata matches a payload content of an HTTP rule on the raw stream,
    # so one past the headers alerts (ET: "|0d 0a 0d 0a|PK" beside
    # http_header); before, only the start line and headers were read
    body = b"PK\x03\x04 cmd=run"
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40020, 80).open()
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\ncmd=run")
    c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body) + body, from_client=False)
    frames = c.close()
    alerts = run(
        'alert http any any -> any any (msg:"req"; flow:to_server; content:"POST"; '
        'http_method; content:"|0d 0a 0d 0a|cmd=run"; fast_pattern; sid:1;)\n'
        'alert http any any -> any any (msg:"resp"; flow:to_client; content:"200"; '
        'http_stat_code; content:"|0d 0a 0d 0a|PK"; sid:2;)\n'
        'alert http any any -> any any (msg:"start"; flow:to_server; content:"POST"; '
        'http_method; http.start; content:"Host|3a| a"; sid:3;)\n'
        # twins: the raw content is not there, or only in the body while
        # the rule reads http_start (the start line and headers alone)
        'alert http any any -> any any (msg:"twin"; flow:to_server; content:"POST"; '
        'http_method; content:"|0d 0a 0d 0a|cmd=stop"; sid:4;)\n'
        'alert http any any -> any any (msg:"start twin"; flow:to_server; content:"POST"; '
        'http_method; http.start; content:"cmd=run"; sid:5;)', frames, prefilter=prefilter)
    assert sids(alerts) == {1: 1, 2: 1, 3: 1}


def test_dns_query_rules_on_udp_requests():
    frames = dns_exchange("10.0.0.1", "10.0.0.53", 5353, "evil.example.com")
    frames += dns_exchange("10.0.0.1", "10.0.0.53", 5354, "good.example.org", ts=1)
    alerts = run('alert dns any any -> any any (msg:"q"; dns.query; content:"evil.example"; '
                 'nocase; sid:1;)\n'
                 'alert dns any any -> any any (msg:"end"; dns.query; content:".org"; '
                 'endswith; sid:2;)\n'
                 'alert udp any any -> any any (msg:"legacy"; dns_query; '
                 'content:"example.com"; isdataat:!1,relative; sid:3;)', frames)
    assert sids(alerts) == {1: 1, 2: 1, 3: 1}
    assert all(a.dst_port == 53 for a in alerts)


def _notify_exchange(client, server, cport, zone, ts):
    """A DNS NOTIFY (opcode 4, RFC 1996) and its answer."""
    import struct

    from pakemon.lab.traffic import dns_query, udp_frame
    q = dns_query(zone, qid=cport, qtype=6)
    q = q[:2] + struct.pack("!H", 4 << 11) + q[4:]
    r = q[:2] + struct.pack("!H", 0x8000 | 4 << 11) + q[4:]
    return [(ts, udp_frame(client, server, cport, 53, q)),
            (ts + 0.001, udp_frame(server, client, 53, cport, r))]


def test_dns_opcode_reads_queries_and_responses():
    frames = dns_exchange("10.0.0.1", "10.0.0.53", 5353, "evil.example.com")
    frames += _notify_exchange("10.0.0.2", "10.0.0.53", 5360, "example.com", ts=1)
    alerts = run('alert dns any any -> any any (msg:"notify"; dns.opcode:4; sid:1;)\n'
                 'alert dns any any -> any any (msg:"not a query"; flow:to_server; '
                 'dns.opcode:!0; sid:2;)\n'
                 'alert dns any any -> any any (msg:"q"; dns.opcode:0; dns.query; '
                 'content:"evil"; sid:3;)\n'
                 'alert dns any any -> any any (msg:"standard"; dns.opcode:0; sid:4;)\n'
                 'alert dns any any -> any any (msg:"range"; dns.opcode:1-5; sid:5;)\n'
                 'alert dns any any -> any any (msg:"notify q"; dns.opcode:4; dns.query; '
                 'content:"evil"; sid:6;)', frames)
    assert sids(alerts) == {1: 2, 2: 1, 3: 1, 4: 2, 5: 2}
    assert {a.src_port for a in alerts if a.rule.sid == 1} == {5360, 53}

    # over TCP (RFC 7766) too, the server's answer included
    q, r = (f[42:] for _, f in _notify_exchange("10.0.0.2", "10.0.0.53", 5360, "ex.org", 0))
    frames = tcp_session([len(q).to_bytes(2, "big") + q], sport=53,
                         server=len(r).to_bytes(2, "big") + r)
    alerts = run('alert dns any any -> any any (msg:"notify"; dns.opcode:4; sid:1;)', frames)
    assert sorted(a.src_port for a in alerts) == [53, 40000]


def test_eve_alerts_on_dns_carry_the_dns_object():
    """Suricata 7's alert on a DNS transaction: a request's questions, a
    response's header (flags, rcode) and its first question; an alert of a
    plain udp rule on the same packet has no dns object."""
    from pakemon.output.eve import alert_record
    frames = dns_exchange("10.0.0.1", "10.0.0.53", 5353, "evil.example.com")
    frames += _notify_exchange("10.0.0.2", "10.0.0.53", 5360, "example.com", ts=1)
    alerts = run('alert dns any any -> any any (msg:"q"; dns.query; content:"evil"; sid:1;)\n'
                 'alert dns any any -> any any (msg:"notify"; dns.opcode:4; sid:2;)\n'
                 'alert udp any any -> any 53 (msg:"raw"; content:"evil"; sid:3;)', frames)
    recs = [alert_record(a) for a in alerts]
    q = [r for r in recs if r["alert"]["signature_id"] == 1]
    assert [r["dns"] for r in q] == [{"query": [{"type": "query", "id": 5353,
                                                 "rrname": "evil.example.com", "rrtype": "A",
                                                 "opcode": 0}]}]
    notify = {r["src_port"]: r["dns"] for r in recs if r["alert"]["signature_id"] == 2}
    assert notify[5360] == {"query": [{"type": "query", "id": 5360, "rrname": "example.com",
                                       "rrtype": "SOA", "opcode": 4}]}
    assert notify[53] == {"answer": {"version": 2, "type": "answer", "id": 5360, "flags": "a000",
                                     "qr": True, "opcode": 4, "rrname": "example.com",
                                     "rrtype": "SOA", "rcode": "NOERROR"}}
    assert all("dns" not in r for r in recs if r["alert"]["signature_id"] == 3)
    assert [r["alert"]["signature_id"] for r in recs].count(3) == 1


def test_waiting_directions_are_bounded(monkeypatch):
    import pakemon.detect.sigengine as se

    monkeypatch.setattr(se, "WAITING_MAX", 8)
    rules, _, _ = parse_suricata_rules('alert tcp any any -> any any (msg:"x"; '
                                       'content:"LEFT"; sid:1;)')
    pipe = Pipeline([], sig=SigRuleSet(rules))
    out = []
    for i in range(40):  # data never acknowledged, connections never closed
        c = TcpConnection("10.0.0.1", "10.0.0.2", 20000 + i, 80, ts=i).open()
        frames = c.frames + [(i + 0.5, tcp_frame(c.client, c.server, c.cport, c.sport, c.cseq,
                                                  c.sseq, 0x18, b"LEFT"))]
        for ts, f in frames:
            out += pipe.feed(ts, f)
        assert len(pipe.sig.waiting) <= 9
    out += pipe.flush()
    assert sum(1 for a in out if isinstance(a, Alert)) == 40


@pytest.mark.parametrize("body_completes", [True, False])
def test_waiting_table_overflow_keeps_requests_whose_body_is_coming(monkeypatch,
                                                                     body_completes):
    """A flood of directions with bytes waiting overflows the table while
    each attack request's body is still on its way: the trim inspects their
    stream bytes early but keeps the open requests, so every one is matched
    when its body ends (or, if it never does, when the session ends)."""
    import pakemon.detect.sigengine as se

    monkeypatch.setattr(se, "WAITING_MAX", 8)
    rules, _, _ = parse_suricata_rules('alert http any any -> any any (msg:"x"; http.uri; '
                                       'content:"/attack"; sid:1;)')
    pipe = Pipeline([], sig=SigRuleSet(rules))
    out, conns = [], []
    for i in range(40):
        c = TcpConnection("10.0.0.1", "10.0.0.2", 20000 + i, 80, ts=i).open()
        c.send(b"POST /attack HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        for ts, f in c.frames:
            out += pipe.feed(ts, f)
        c.frames = []
        conns.append(c)
    assert pipe.sig.counters["sig_waiting_trimmed"] > 0
    if body_completes:
        for c in conns:
            c.send(b"67890")
            for ts, f in c.frames:
                out += pipe.feed(ts, f)
            c.frames = []
    out += pipe.flush()
    assert sum(1 for a in out if isinstance(a, Alert)) == 40


def test_datagram_flow_table_evicts_the_least_recently_seen_and_counts(monkeypatch):
    """New UDP flows past the table's bound evict the flow seen least
    recently, not the oldest one: a conversation that goes on keeps its
    flowbits through a flood of one-packet flows; each eviction is counted."""
    import pakemon.detect.sigengine as se

    monkeypatch.setattr(se, "FLOWS_MAX", 4)
    rules, _, _ = parse_suricata_rules(
        'alert udp any any -> any 5353 (msg:"set"; content:"SET"; flowbits:set,x; '
        'flowbits:noalert; sid:1;)\n'
        'alert udp any any -> any 5353 (msg:"hit"; content:"HIT"; flowbits:isset,x; sid:2;)')
    pipe = Pipeline([], sig=SigRuleSet(rules))
    out = pipe.feed(0, udp_frame("10.0.0.1", "10.0.0.2", 1000, 5353, b"SET"))
    for i in range(20):
        out += pipe.feed(1 + i, udp_frame("10.0.9.%d" % (i + 1), "10.0.0.2", 2000, 5353, b"x"))
        out += pipe.feed(1.5 + i, udp_frame("10.0.0.1", "10.0.0.2", 1000, 5353, b"go on"))
    out += pipe.feed(30, udp_frame("10.0.0.1", "10.0.0.2", 1000, 5353, b"HIT"))
    assert sids([a for a in out if isinstance(a, Alert)]) == {2: 1}
    assert pipe.sig.counters["sig_flows_evicted"] == 17  # 21 flows, 4 kept
    assert pipe.counters()["sig_flows_evicted"] == 17


def test_sides_of_a_midstream_flow_kept_per_direction():
    """A flow picked up midstream whose first sender is the server (port 80
    toward an ephemeral port) is reversed, and each direction keeps its
    side for every later packet (empty ones take the early exit)."""
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40100, 80).open()
    c.send(b"srv-hello", from_client=False)
    c.send(b"cli-data")
    c.send(b"srv-again", from_client=False)
    frames = c.close()[3:]  # no handshake: the server's data comes first
    alerts = run('alert tcp any any -> any any (msg:"tc"; flow:to_client; content:"srv-"; '
                 'dsize:>0; sid:1;)\n'
                 'alert tcp any any -> any any (msg:"ts"; flow:to_server; content:"cli-"; '
                 'dsize:>0; sid:2;)\n'
                 'alert tcp any any -> any any (msg:"wrong"; flow:to_server; content:"srv-"; '
                 'dsize:>0; sid:3;)', frames)
    assert sids(alerts) == {1: 2, 2: 1}


def test_datagram_checksum_verified_once_with_both_rule_sets(monkeypatch):
    from pakemon.detect.rule_parser import parse_rules
    from pakemon.stream.checksum import ChecksumGate

    native = parse_rules('N udp * 53 "native-hit"\n')
    rules, _, _ = parse_suricata_rules('alert udp any any -> any 53 (msg:"s"; '
                                       'content:"suri-hit"; sid:5;)')
    pipe = Pipeline(native.rules if hasattr(native, "rules") else native,
                    sig=SigRuleSet(rules))
    calls = []
    real = ChecksumGate.check_l4

    def counting(self, pkt, strict=False):
        calls.append(pkt)
        return real(self, pkt, strict)

    monkeypatch.setattr(ChecksumGate, "check_l4", counting)
    good = udp_frame("10.0.0.1", "10.0.0.2", 4000, 53, b"native-hit suri-hit")
    bad = bytearray(good)
    bad[-1] ^= 0xFF  # payload changed after the checksum: the target drops it
    out = pipe.feed(0.0, good) + pipe.feed(1.0, bytes(bad))
    names = sorted(a.rule.signature for a in out if isinstance(a, Alert))
    assert names == ["N", "s"]  # the good datagram only, by both rule sets
    assert len(calls) == 2 and calls[0] is not calls[1]  # once per datagram
    assert pipe.stats.bad_l4_checksum == 1


def test_payloadless_app_rule_matches_client_packets_once_http_is_acked():
    """``alert http ... flow:to_server`` with no payload keyword is a packet
    rule of HTTP flows (Suricata): it matches each client packet processed
    after the server ACKed the request that told the protocol, so not the
    request's own segment nor the handshake, and it does not need a
    complete transaction."""
    rules = ('alert http any any -> any any (msg:"http"; flow:to_server; sid:9;)\n'
             'alert tcp any any -> any any (msg:"tcp"; flow:to_server; sid:10;)\n')
    frames = tcp_session([b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"],
                         server=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    got = sids(run(rules, frames))
    # client packets: SYN, ACK, GET, ACK of the response, FIN, last ACK (6);
    # after the server's ACK of the GET: the last three
    assert got == {9: 3, 10: 6}
    # a flow that is not HTTP never matches it
    other = tcp_session([b"SSH-2.0-OpenSSH_9.2\r\n"], sport=22, server=b"SSH-2.0-x\r\n")
    assert sids(run(rules, other)) == {10: 6}


def test_http_rules_whatever_the_segment_size():
    """The bytes that decide the app protocol reach the HTTP parsers too: a
    request or response sent a few bytes per segment (the probe needs up to
    64) alerts like one sent whole (it used to lose its first bytes and
    evade every http rule)."""
    rules = ('alert http any any -> any any (msg:"uri"; http.uri; content:"/evil.php"; sid:1;)\n'
             'alert http any any -> any any (msg:"code"; flow:to_client; http.stat_code; '
             'content:"404"; sid:2;)\n'
             'alert http any any -> any any (msg:"body"; flow:to_client; file.data; '
             'content:"secret"; sid:3;)\n')
    for seg in (None, 1, 2, 3, 5, 7, 63, 64, 65):
        c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 80).open()
        c.send(b"GET /evil.php HTTP/1.1\r\nHost: x\r\n\r\n", segment=seg)
        c.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 6\r\n\r\nsecret", from_client=False,
               segment=seg)
        assert sids(run(rules, c.close())) == {1: 1, 2: 1, 3: 1}, seg


def test_http_detected_after_blank_lines_and_with_tab_separators():
    """Servers skip empty lines before a request line (RFC 9112 2.2), and
    some split it on any blank: neither may hide the request from the
    app-protocol probe, however many CRLFs come first (more than the 64
    bytes the probe reads) or however they are segmented."""
    rules = 'alert http any any -> any any (msg:"u"; http.uri; content:"/evil.php"; sid:1;)\n'
    req = b"GET /evil.php HTTP/1.1\r\nHost: x\r\n\r\n"
    for payloads in ([b"\r\n" + req], [b"\r\n" * 200 + req], [b"\r\n", b"\n", req],
                     [b"GET\t/evil.php\tHTTP/1.1\r\nHost: x\r\n\r\n"], [b"  \t" + req]):
        assert sids(run(rules, tcp_session(payloads))) == {1: 1}, payloads[0][:20]
        assert sids(run(rules, tcp_session(payloads, segment=3))) == {1: 1}
    # a client direction that is not HTTP stays so
    assert sids(run(rules, tcp_session([b"\r\n" * 10 + b"HELLO /evil.php\r\n"]))) == {}


def test_http_host_of_an_absolute_form_target():
    """The server takes the host of an absolute-form target over the Host
    header (RFC 9112 3.2.2), so http.host does too (libhtp's hostname):
    a benign Host header must not hide it."""
    rules = 'alert http any any -> any any (msg:"h"; http.host; content:"evil.example"; sid:1;)\n'
    for req, want in ((b"GET http://evil.example/ HTTP/1.1\r\nHost: good\r\n\r\n", {1: 1}),
                      (b"GET HTTPS://user@EVIL.example:8443/x?y HTTP/1.1\r\nHost: g\r\n\r\n",
                       {1: 1}),
                      (b"GET http://evil.example HTTP/1.0\r\n\r\n", {1: 1}),
                      (b"GET http://good/evil.example HTTP/1.1\r\nHost: good\r\n\r\n", {}),
                      (b"GET /x HTTP/1.1\r\nHost: evil.example:80\r\n\r\n", {1: 1})):
        assert sids(run(rules, tcp_session([req]))) == want, req


def test_dns_query_rules_over_tcp():
    """A resolver also takes queries over TCP (RFC 7766): ``alert dns``
    rules see them (length-prefixed, in any segmentation); ``alert udp``
    ones stay on UDP."""
    rules = ('alert dns any any -> any any (msg:"dns"; dns.query; content:"evil.example"; '
             'nocase; sid:1;)\n'
             'alert udp any any -> any any (msg:"udp only"; dns.query; content:"evil.example"; '
             'nocase; sid:2;)\n')
    q = dns_exchange("10.0.0.1", "10.0.0.2", 40001, "www.EVIL.example")[0][1][42:]
    msg = len(q).to_bytes(2, "big") + q
    for seg in (None, 1, 3):
        frames = tcp_session([msg + msg[:2] + b"\x12\x34"], sport=53, segment=seg)
        assert sids(run(rules, frames)) == {1: 1}, seg
    assert sids(run(rules, dns_exchange("10.0.0.1", "10.0.0.2", 40001, "www.evil.example"))) \
        == {1: 1, 2: 1}
    # not DNS on port 53 (an HTTP request): nothing
    assert sids(run(rules, tcp_session([b"GET /evil.example HTTP/1.0\r\n\r\n"], sport=53))) == {}


def test_dns_queries_pipelined_in_one_segment_alert_once_each():
    """Each DNS message is a transaction: two queries for the name in one
    TCP segment alert twice (as two pipelined HTTP requests do), and one
    message asking for it twice alerts once."""
    rules = ('alert dns any any -> any any (msg:"dns"; dns.query; content:"evil.example"; '
             'nocase; sid:1;)\n')
    q = dns_exchange("10.0.0.1", "10.0.0.2", 40001, "www.evil.example")[0][1][42:]
    msg = len(q).to_bytes(2, "big") + q
    assert sids(run(rules, tcp_session([msg + msg], sport=53))) == {1: 2}
    # one message, two questions for the name (QDCOUNT 2, the question twice)
    qd = q[12:]
    two = q[:4] + b"\x00\x02" + q[6:12] + qd + qd
    msg2 = len(two).to_bytes(2, "big") + two
    assert sids(run(rules, tcp_session([msg2], sport=53))) == {1: 1}


BODY_RULE = ('alert http any any -> any any (msg:"body"; flow:to_client; file.data; '
             'content:"EVILBODY"; sid:1;)\n'
             'alert http any any -> any any (msg:"cut"; flow:to_server; http.uri; '
             'content:"/cut"; sid:2;)\n'
             'alert tcp any 80 -> any any (msg:"stream"; flow:to_client; content:"NOTHERE"; '
             'sid:3;)')


def _feed_each(frames):
    """(frame index, sid) of each alert as the frames are fed, then flush's;
    and what the servers' directions were charged before the flush."""
    rules, _, _ = parse_suricata_rules(BODY_RULE)
    pipe = Pipeline([], sig=SigRuleSet(rules))
    got = []
    for i, (ts, frame) in enumerate(frames):
        got += [(i, a.rule.sid) for a in pipe.feed(ts, frame) if isinstance(a, Alert)]
    charged = [s.server.app_mem for s in pipe.tcp._sessions]
    got += [("flush", a.rule.sid) for a in pipe.flush() if isinstance(a, Alert)]
    return got, charged


def test_close_delimited_response_is_inspected_at_the_fin_not_at_session_end():
    """An HTTP/1.0 body without Content-Length ends with the connection:
    it is inspected when the client reads the server's FIN (the session
    stays in the table for its closed timeout, 60 s, and only the end of
    the capture inspected it before), once, and the direction's charge
    drops to its state."""
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40100, 80, ts=1.0).open()
    c.send(b"GET /page HTTP/1.0\r\n\r\n")
    c.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + b"x" * 4000
           + b"<p>EVILBODY</p>", from_client=False)
    frames = c.close()  # client FIN, server FIN, last ACK
    got, charged = _feed_each(frames)
    fin = len(frames) - 2
    assert got == [(fin, 1)]
    # its state and last packet (the FIN, here), not the 2 KB
    # tail kept for patterns across deliveries: none can follow
    assert len(charged) == 1 and charged[0] < DIRSTATE_COST + PACKET_COST + 1514, charged


def test_resets_taken_by_both_hosts_finish_both_directions_at_once():
    """A request cut short (headers without their empty line) and a
    close-delimited response: the client's RST alone leaves them open (the
    model still reads what either side sends after one RST: it may be
    forged), the server's RST too closes the connection and both are
    inspected there."""
    from pakemon.lab.traffic import tcp_frame

    c = TcpConnection("10.0.0.1", "10.0.0.2", 40101, 80, ts=1.0).open()
    c.send(b"GET /cut HTTP/1.0\r\nHost: a\r\n")
    c.send(b"HTTP/1.0 200 OK\r\n\r\nsome EVILBODY", from_client=False)
    c._emit(tcp_frame(c.client, c.server, c.cport, c.sport, c.cseq, c.sseq, 0x14))  # RST|ACK
    c._emit(tcp_frame(c.server, c.client, c.sport, c.cport, c.sseq, c.cseq, 0x14))
    got, _ = _feed_each(c.frames)
    last = len(c.frames) - 1
    assert sorted(got) == [(last, 1), (last, 2)]


def test_views_past_the_compile_budget_take_whole_groups_and_still_alert(monkeypatch):
    # Traffic spread over many port intervals asks for a restricted group
    # (a hyperscan compile) per view; past the budget a view takes its
    # kind's whole group, a superset the full check narrows down
    from pakemon.detect import sigengine

    if not sigengine._hs():
        pytest.skip("hyperscan not installed: no compile to budget")
    monkeypatch.setattr(sigengine, "COMPILE_BUDGET", 3)
    monkeypatch.setattr(sigengine, "COMPILE_REFILL_S", 1e9)
    text = "\n".join(
        f'alert tcp any any -> any {2000 + 10 * i} (msg:"p{i}"; flow:to_server; '
        f'content:"probe-{i:02d}"; sid:{100 + i};)' for i in range(20))
    frames = []
    for i in range(20):
        # each port its own interval; one probe names its own rule, its
        # twin names the next port's (a candidate of a whole group only)
        frames += tcp_session([b"probe-%02d and probe-%02d" % (i, (i + 1) % 20)],
                              cport=41000 + i, sport=2000 + 10 * i)
    rules, _, _ = parse_suricata_rules(text)
    rs = SigRuleSet(rules)
    pipe = Pipeline([], sig=rs)
    out = []
    for ts, frame in frames:
        out += pipe.feed(ts, frame)
    out += pipe.flush()
    got = sids([a for a in out if isinstance(a, Alert)])
    assert got == {100 + i: 1 for i in range(20)}
    assert rs.compiled_views <= 3 + 1  # (the last one counted may be a merge)


@pytest.mark.parametrize(("policy", "want"), [("last", {1: 1}), ("old-linux", {1: 1}),
                                              ("bsd", {2: 1}), ("linux-current", {2: 1})])
def test_a_later_copy_over_unacked_bytes_is_inspected_as_the_policy_says(policy, want):
    """In-order "GOOD", then "EVIL" over it before the server's ACK, then
    "MORE": Suricata applies the receiver's policy to every segment it holds
    un-ACKed, so under last or old-linux its stream reads EVILMORE (a same-range
    copy wins), under bsd GOODMORE; linux-current is the host itself, which read
    GOOD at once. "EVILMORE" crosses the rewritten bytes and the next
    delivery: the prefilter's bytes kept between deliveries must be the new
    ones too."""
    from pakemon.lab.traffic import ACK, PSH

    c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 80).open()
    seq, ack = c.cseq, c.sseq
    frames = list(c.frames)
    for off, data in ((0, b"GOOD"), (0, b"EVIL"), (4, b"MORE")):
        frames.append((1.0, tcp_frame("10.0.0.1", "10.0.0.2", 40000, 80, seq + off, ack,
                                      PSH | ACK, data)))
    frames.append((1.1, tcp_frame("10.0.0.2", "10.0.0.1", 80, 40000, ack, seq + 8, ACK)))
    assert _sids_under_policy(
        policy, frames,
        'alert tcp any any -> any any (msg:"evil"; flow:to_server; content:"EVILMORE"; sid:1;)\n'
        'alert tcp any any -> any any (msg:"good"; flow:to_server; content:"GOODMORE"; sid:2;)\n'
    ) == want


def _sids_under_policy(policy, frames, rules_text):
    """Alerts by sid of the Suricata rules over ``frames``, the stream read
    under ``policy``."""
    from pakemon.config import Config

    rules, _, errors = parse_suricata_rules(rules_text)
    assert not errors
    cfg = Config()
    cfg.stream.policy = policy
    pipe = Pipeline([], cfg, sig=SigRuleSet(rules))
    out = []
    for ts, frame in frames:
        out += pipe.feed(ts, frame)
    out += pipe.flush()
    return sids([a for a in out if isinstance(a, Alert)])


def _resp_reads(monkeypatch):
    """The byte counts the HTTP response parser is fed, call by call."""
    from pakemon.applayer.http_response import HttpResponseParser

    reads = []
    feed = HttpResponseParser.feed

    def counted(self, data):
        reads.append(len(data))
        return feed(self, data)

    monkeypatch.setattr(HttpResponseParser, "feed", counted)
    return reads


def test_server_bytes_are_parsed_once_when_the_client_speaks(monkeypatch):
    """A response of several segments reaches its parser in one read when
    the client's next packet (its ACK) comes, not a read per segment; the
    alert is returned there and names the server's last segment."""
    reads = _resp_reads(monkeypatch)
    body = b"x" * 5000 + b"EVILBODY"
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40200, 80, ts=1.0).open()
    c.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    c.send(head + body, from_client=False)
    frames = c.close()
    rules, _, _ = parse_suricata_rules(BODY_RULE)
    pipe = Pipeline([], sig=SigRuleSet(rules))
    got = []
    for i, (ts, frame) in enumerate(frames):
        got += [(i, a) for a in pipe.feed(ts, frame) if isinstance(a, Alert)]
    got += [("flush", a) for a in pipe.flush() if isinstance(a, Alert)]
    assert reads == [len(head) + len(body)]  # one read, four segments
    ack = len(frames) - 4  # the client's ACK of the response (then FIN, FIN, ACK)
    assert [(i, a.rule.sid) for i, a in got] == [(ack, 1)]
    a = got[0][1]
    assert (a.src_ip, a.src_port, a.dst_ip) == ("10.0.0.2", 80, "10.0.0.1")


def test_a_response_is_read_before_the_next_request_it_came_before():
    """The client's next request carries the ACK of the response before it
    (no pure ACK between): the response is read first, so a flowbit its
    rule sets is there for the request's rule, as in the order they came."""
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40201, 80, ts=1.0).open()
    c.send(b"GET /login HTTP/1.1\r\nHost: a\r\n\r\n")
    n = len(c.frames)
    c.send(b"HTTP/1.1 302 Found\r\nLocation: /admin\r\nContent-Length: 0\r\n\r\n",
           from_client=False)
    del c.frames[n + 1:]  # (the client's pure ACK of it)
    c.send(b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n")
    frames = c.close()
    rules = ('alert http any any -> any any (msg:"redirected"; flow:to_client; '
             'http.stat_code; content:"302"; flowbits:set,redir; flowbits:noalert; sid:1;)\n'
             'alert http any any -> any any (msg:"followed"; flow:to_server; http.uri; '
             'content:"/admin"; flowbits:isset,redir; sid:2;)')
    assert sids(run(rules, frames)) == {2: 1}


def test_deferred_server_bytes_are_bounded(monkeypatch):
    """A server that sends on while the client says nothing (a one-sided
    capture of a long download): its bytes are read every DEFER_MAX, and
    what waits for the parser stays under it, charged to its session."""
    from pakemon.detect import sigengine

    monkeypatch.setattr(sigengine, "DEFER_MAX", 8192)
    reads = _resp_reads(monkeypatch)
    body = b"y" * 60000 + b"EVILBODY"
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40202, 80, ts=1.0).open()
    c.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
    n = len(c.frames)
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
           from_client=False)
    last = len(c.frames) - 1  # the client's ACK of the whole body
    rules, _, _ = parse_suricata_rules(BODY_RULE)
    pipe = Pipeline([], sig=SigRuleSet(rules))
    got = []
    for i, (ts, frame) in enumerate(c.frames):
        got += [(i, a.rule.sid) for a in pipe.feed(ts, frame) if isinstance(a, Alert)]
        if n < i < last:
            (server,) = [s.server for s in pipe.tcp._sessions]
            waiting = server.det.sig.defer
            if waiting is not None:
                # never more than DEFER_MAX, and charged to the session
                assert len(waiting) <= 8192
                assert server.app_mem >= DIRSTATE_COST + len(waiting)
    assert len(reads) > 1 and max(reads) <= 8192
    assert got == [(last, 1)]


def test_deferred_server_bytes_are_read_before_a_gap():
    """The server's bytes before a hole are read before the gap resets the
    response parser: the cut response ends there and the one after the
    hole is found by its status line (read after the gap, its first bytes
    would frame the bytes past the hole as the cut response's body)."""
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40203, 80, ts=1.0).open()
    c.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
    c.send(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
    n = len(c.frames)
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\nEVILBODY"
    c.send(first, from_client=False)
    c.send(b"z" * 100, from_client=False)  # lost
    c.send(b"zz\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" + b"\r\n" * 120,
           from_client=False)
    frames = [f for i, f in enumerate(c.frames) if i < n or i in (n, n + 4)]
    rules = BODY_RULE + ('\nalert http any any -> any any (msg:"404"; http.stat_code; '
                         'content:"404"; sid:4;)')
    assert sids(run(rules, frames)) == {1: 1, 4: 1}


def test_a_one_sided_servers_bytes_are_read_as_they_come(monkeypatch):
    """Only the server's side of the session is seen (async-oneside): no
    client packet will come to read its bytes before, so each response is
    read as it arrives and alerts on its own segment, not at the end."""
    from pakemon.config import Config

    reads = _resp_reads(monkeypatch)
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40204, 80, ts=1.0).open()
    c.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
    n = len(c.frames)
    for i in range(3):
        c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nEVILBODY", from_client=False)
    server = [f for i, f in enumerate(c.frames) if i == 1 or (i >= n and i % 2 == n % 2)]
    assert len(server) == 4  # the SYN-ACK and three responses
    rules, _, _ = parse_suricata_rules(BODY_RULE)
    cfg = Config()
    cfg.stream.async_oneside = True
    pipe = Pipeline([], config=cfg, sig=SigRuleSet(rules))
    got = []
    for i, (ts, frame) in enumerate(server):
        got += [(i, a.rule.sid) for a in pipe.feed(ts, frame) if isinstance(a, Alert)]
    assert got == [(1, 1), (2, 1), (3, 1)]
    assert len(reads) == 3


def _server_after_request(cport):
    """A connection whose client sent a request (the flow is HTTP) and got
    its ACK: (connection, frames so far, client seq, server seq)."""
    c = TcpConnection("10.0.0.1", "10.0.0.2", cport, 80, ts=1.0).open()
    c.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
    return c, list(c.frames), c.cseq, c.sseq


@pytest.mark.parametrize(("policy", "want"), [("last", {1: 1}), ("old-linux", {1: 1}),
                                              ("bsd", {2: 1}), ("linux-current", {2: 1})])
def test_a_later_server_copy_over_deferred_bytes_is_inspected_as_the_policy_says(policy,
                                                                                 want):
    """test_a_later_copy_over_unacked_bytes_is_inspected_as_the_policy_says
    on the server's side, where the bytes it rewrites still wait for the
    client's next packet: they are read first, then rewritten."""
    from pakemon.lab.traffic import ACK, PSH

    c, frames, cseq, sseq = _server_after_request(40205)
    head = b"HTTP/1.1 200 OK\r\n\r\n"
    for off, data in ((0, head), (len(head), b"GOOD"), (len(head), b"EVIL"),
                      (len(head) + 4, b"MORE")):
        frames.append((2.0, tcp_frame("10.0.0.2", "10.0.0.1", 80, 40205, sseq + off, cseq,
                                      PSH | ACK, data)))
    frames.append((2.1, tcp_frame("10.0.0.1", "10.0.0.2", 40205, 80, cseq,
                                  sseq + len(head) + 8, ACK)))
    assert _sids_under_policy(
        policy, frames,
        'alert tcp any 80 -> any any (msg:"evil"; flow:to_client; content:"EVILMORE"; sid:1;)\n'
        'alert tcp any 80 -> any any (msg:"good"; flow:to_client; content:"GOODMORE"; sid:2;)\n'
    ) == want


def test_server_stream_and_packet_rules_over_deferred_deliveries():
    """The server's deliveries wait for the client, so none is scanned as
    it came: a packet rule still alerts on its own segment, and a stream
    pattern across two segments of one wait, and one across two waits,
    alert once each."""
    from pakemon.lab.traffic import ACK, PSH

    rules, _, errors = parse_suricata_rules(
        'alert tcp any 80 -> any any (msg:"pkt"; flow:to_client; content:"PKTMARK"; '
        'dsize:>10; sid:1;)\n'
        'alert tcp any 80 -> any any (msg:"in one wait"; flow:to_client; '
        'content:"SPANNING-ONE"; sid:2;)\n'
        'alert tcp any 80 -> any any (msg:"across waits"; flow:to_client; '
        'content:"SPANNING-TWO"; sid:3;)\n')
    assert not errors
    pipe = Pipeline([], sig=SigRuleSet(rules))
    c, frames, cseq, sseq = _server_after_request(40206)
    parts = [b"HTTP/1.1 200 OK\r\n\r\nxxxx SPANN", b"ING-ONE yyyy", b"zz PKTMARK zz",
             b"end SPANNI", None, b"NG-TWO tail"]
    off = 0
    marks = {}
    for p in parts:
        if p is None:  # the client speaks between these two
            frames.append((2.0, tcp_frame("10.0.0.1", "10.0.0.2", 40206, 80, cseq, sseq + off,
                                          ACK)))
            continue
        if b"PKTMARK" in p:
            marks["pkt"] = len(frames)
        frames.append((2.0, tcp_frame("10.0.0.2", "10.0.0.1", 80, 40206, sseq + off, cseq,
                                      PSH | ACK, p)))
        off += len(p)
    frames.append((2.1, tcp_frame("10.0.0.1", "10.0.0.2", 40206, 80, cseq, sseq + off, ACK)))
    got = []
    for i, (ts, frame) in enumerate(frames):
        got += [(i, a) for a in pipe.feed(ts, frame) if isinstance(a, Alert)]
    got += [("flush", a) for a in pipe.flush() if isinstance(a, Alert)]
    assert sids([a for _, a in got]) == {1: 1, 2: 1, 3: 1}
    (pkt_alert,) = [(i, a) for i, a in got if a.rule.sid == 1]
    assert pkt_alert[0] == marks["pkt"] and pkt_alert[1].src_port == 80


def test_a_server_batch_is_scanned_with_the_views_merged_matcher():
    """A view with stream and packet rules scans a delivery once for both
    (its merged matcher); a server's batch, not the segment as it came, is
    scanned with it too, its packet hits unused: the stream group's own
    matcher is never built (a compile of ~40 ms with ET per group)."""
    from pakemon.detect import sigengine

    # more patterns than FEW: a matcher with either backend
    n = sigengine.FEW + 1
    rules, _, errors = parse_suricata_rules("".join(
        f'alert tcp any 80 -> any any (msg:"pkt"; flow:to_client; content:"PKTMARK-{i:02d}"; '
        f'dsize:>10; sid:{100 + i};)\n'
        f'alert tcp any 80 -> any any (msg:"stream"; flow:to_client; '
        f'content:"STREAM-MARK-{i:02d}"; sid:{200 + i};)\n' for i in range(n)))
    assert not errors
    pipe = Pipeline([], sig=SigRuleSet(rules))
    c, frames, _, _ = _server_after_request(40207)
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n" + b"a" * 1500
           + b"STREAM-MARK-07" + b"b" * 2486, from_client=False)
    frames = c.close()
    out = []
    for ts, frame in frames:
        out += pipe.feed(ts, frame)
    (ses,) = list(pipe.tcp._sessions)
    view = ses.server.det.sig.view
    assert view.merged is not None and view.merged[0].pats is None  # built, used
    assert view.stream.auto.pats is not None  # never built
    out += pipe.flush()
    assert sids([a for a in out if isinstance(a, Alert)]) == {207: 1}


def test_acked_server_bytes_are_inspected_while_later_ones_wait():
    """The client ACKed the server's first segment (read then), the second
    waits for it: the next server packet inspects the first as before,
    the waiting bytes between its pending bytes and the stream's end not
    counted as ACKed or not; and the second, whose ACK never came (the
    capture ends), is still read and inspected at the end."""
    c, frames, _, _ = _server_after_request(40208)
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nRAWMARK" + b"a" * 493,
           from_client=False)  # and the client's ACK
    second = len(c.frames)
    c.send(b"b" * 492 + b"EVILBODY", from_client=False)
    frames = c.frames[:second + 1]  # (not the client's ACK of it)
    rules, _, errors = parse_suricata_rules(
        BODY_RULE + '\nalert tcp any 80 -> any any (msg:"raw"; flow:to_client; '
        'content:"RAWMARK"; sid:4;)')
    assert not errors
    pipe = Pipeline([], sig=SigRuleSet(rules))
    got = []
    for i, (ts, frame) in enumerate(frames):
        got += [(i, a.rule.sid) for a in pipe.feed(ts, frame) if isinstance(a, Alert)]
    got += [("flush", a.rule.sid) for a in pipe.flush() if isinstance(a, Alert)]
    assert got == [(second, 4), ("flush", 1)]





# (226, 656, 788, 1119: a server FIN or pure ACK inspecting earlier pending
# bytes while the sink held a later batch; 3,000 seeds run by hand agree)
@pytest.mark.parametrize("seed", list(range(24)) + [226, 656, 788, 1119])
def test_the_reassemblers_sink_changes_no_alert(seed, monkeypatch):
    """The server's in-order bytes waiting for the client are appended by
    the reassembler itself (TcpDirection.sink) instead of an event per
    segment: every alert, its packet and its place in the output stay what
    the event path gives (the sink turned off), over disordered, repeated,
    overlapping, lost and interleaved segments and every way to end; and
    the sink was used, its bytes charged."""
    from pakemon.detect import sigengine

    rules, _, errors = parse_suricata_rules(SINK_RULES)
    assert not errors
    frames = sink_traffic(seed)

    def alerts(sink_on):
        pipe = Pipeline([], sig=SigRuleSet(rules))
        took = [0]
        if not sink_on:
            orig = sigengine.SigEngine.stream_data
            monkeypatch.setattr(sigengine.SigEngine, "stream_data",
                                lambda self, d, data, pkt, gap=False, sink=False:
                                orig(self, d, data, pkt, gap, False))
        out = []
        for i, (ts, frame) in enumerate(frames):
            for a in pipe.feed(ts, frame):
                if isinstance(a, Alert):
                    out.append((i, a.rule.sid, a.ts, a.src_port, a.dst_port))
            for s in pipe.tcp._sessions:
                d = s.server
                if d.sink is not None:
                    took[0] += 1
                    # what the sink holds is charged to the session, and
                    # the next full charge counts its last packet too
                    assert d.app_mem >= len(d.sink)
                    if d.sink_pkt is not None:
                        assert sigengine.held_by(d.det.sig) >= (
                            DIRSTATE_COST + len(d.sink) + len(d.sink_pkt.raw) + PACKET_COST)
        out += [("flush", a.rule.sid, a.ts, a.src_port, a.dst_port)
                for a in pipe.flush() if isinstance(a, Alert)]
        monkeypatch.undo()
        return out, took[0]

    with_sink, used = alerts(True)
    without, unused = alerts(False)
    assert with_sink == without
    assert unused == 0 and used > 0


@pytest.mark.parametrize("seed", range(6))
def test_cookie_and_user_agent_buffers_whatever_headers_came(seed):
    """http.cookie, http.user_agent and http.header of a request with no,
    one or several such headers in any case, its headers complete or not
    (a request cut by the stream's end): each Cookie or User-Agent value
    joined with ", " as libhtp does, Cookie lines left out of http.header.
    (Complete requests with none of them skip the header table.)"""
    from pakemon.detect.http import HttpRequestParser
    from pakemon.detect.sigengine import _HttpBuffers

    rnd = random.Random(seed)
    names = [b"Cookie", b"COOKIE", b"cookie", b"User-Agent", b"user-agent", b"Host", b"X-A"]
    for _ in range(40):
        hs = [(rnd.choice(names), b"v%d" % rnd.randrange(100)) for _ in range(rnd.randint(0, 5))]
        raw = b"GET /x HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in hs)
        complete = rnd.random() < 0.6
        p = HttpRequestParser(body_cap=1024, keep_headers=True)
        (req,) = p.feed(raw + b"\r\n" if complete else raw)
        assert req.headers_complete == complete
        bufs = _HttpBuffers(req, None)

        def joined(key):
            vals = [v for n, v in hs if n.lower() == key]
            return b", ".join(vals) if vals else None

        assert bufs.get("http.cookie") == joined(b"cookie")
        assert bufs.get("http.user_agent") == joined(b"user-agent")
        want = b"".join(n + b": " + v + b"\r\n" for n, v in hs if n.lower() != b"cookie")
        assert bufs.get("http.header") == (want if hs else None)


def test_a_pattern_across_two_inspections_alerts_though_an_earlier_copy_is_in_the_tail():
    """A stream rule's pattern split between two ACKed chunks is found with
    the bytes kept before the chunk (the tail); one whole copy of it in those
    bytes, seen earlier when its flowbit was not set yet, must not hide the
    new one (it did: "the tail held a match already" rejected every match
    across the boundary). The earlier copy alerts no more for it."""
    rules = (
        'alert tcp any any -> any 80 (msg:"go"; flow:to_server; content:"SETGO"; '
        'flowbits:set,go; flowbits:noalert; sid:1;)\n'
        'alert tcp any any -> any 80 (msg:"mark"; flow:to_server; content:"STREAMMARK"; '
        'flowbits:isset,go; sid:2;)\n')
    frames = tcp_session([b"aaaa STREAMMARK aaaa", b"SETGO bbbb STREAM", b"MARK cccc"])
    assert sids(run(rules, frames)) == {2: 1}
    # the copy seen before the flowbit, alone: nothing
    frames = tcp_session([b"aaaa STREAMMARK aaaa", b"SETGO bbbb", b"cccc"])
    assert sids(run(rules, frames)) == {}





@pytest.mark.parametrize("seed", list(range(40)) + [52, 283, 417, 895])
def test_stream_rules_alert_however_the_bytes_were_cut(seed):
    """Where the client's segments end and when the server ACKs them (so
    where each inspection of the stream ends) changes no detection: a
    content, two in order, two within a distance, a pcre, each alerts cut
    as it does whole; and a flowbit-gated content (and pair of contents)
    alerts whenever a copy follows the flowbit's setter, however cut
    (seeds 52, 283, 417, 895:
    the copy after the setter split across two inspections, an older one
    in the kept bytes before them, was missed: 11 of 3,000 seeds). 3,000
    seeds run by hand agree."""
    rnd = random.Random(seed)
    data = cut_stream(rnd)
    whole = set(sids(run(CUT_RULES, cut_frames(data, rnd, 40000, True))))
    cut = set(sids(run(CUT_RULES, cut_frames(data, rnd, 40001, False))))
    assert whole - {6, 8} == cut - {6, 8}
    go = data.find(b"SETGO")
    if go >= 0 and data.find(b"EVILWORD", go) >= 0:
        assert {6, 8} <= whole and {6, 8} <= cut


@pytest.mark.parametrize("seed", range(20))
def test_http_rules_alert_however_the_bytes_were_cut(seed):
    """HTTP buffers are per transaction: request and response bytes cut
    anywhere, ACKed at random, pipelined, bodies by length or chunked, URIs
    encoded or with dot segments give each rule the alerts the bytes give
    sent whole (1,500 seeds run by hand agree, tests/integration/sig_diff.py)."""
    exchanges = http_exchanges(random.Random(seed))
    whole = sids(run(HTTP_RULES, http_frames(exchanges, random.Random(seed), 40000, True)))
    cut = sids(run(HTTP_RULES, http_frames(exchanges, random.Random(-seed - 1), 40001, False)))
    assert whole == cut
    assert whole  # (every seed has some rule to alert: the buffers are read)


@pytest.mark.parametrize("seed", range(15))
def test_udp_rules_alert_however_the_datagrams_were_fragmented(seed):
    """Packet and dns.query rules see the reassembled datagram: DNS queries
    and marked payloads cut into IP fragments in random order, some sent
    twice, other datagrams' fragments between, give the alerts the
    datagrams give whole, count for count (1,500 seeds run by hand agree,
    tests/integration/sig_diff.py --kind frag)."""
    datagrams = frag_datagrams(random.Random(seed))
    whole = sids(run(FRAG_RULES, frag_frames(datagrams, random.Random(seed), True)))
    cut = sids(run(FRAG_RULES, frag_frames(datagrams, random.Random(-seed - 1), False)))
    assert whole == cut


@pytest.mark.parametrize("seed", range(10))
def test_tls_rules_alert_however_the_handshake_was_cut(seed):
    """tls.sni, tls.cert_subject and tls.cert_issuer, ja3s.string and a raw
    content with a certificate buffer: a handshake cut anywhere, pieces
    swapped, ACKed at random, gives the alerts it gives whole, count for
    count (300 seeds run by hand agree, tests/integration/sig_diff.py --kind tls)."""
    whole = sids(run(TLS_RULES, tls_frames(random.Random(seed), 40000, True)))
    cut = sids(run(TLS_RULES, tls_frames(random.Random(seed), 40001, False)))
    assert whole == cut and 5 in whole  # (ja3s: every handshake has one)


# seeds whose whole run alerts on each of APP_RULES' sids 1-5 between them
_APP_SEEDS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


@pytest.mark.parametrize("seed", _APP_SEEDS)
def test_app_rules_alert_however_the_writes_were_cut(seed):
    """DNS over TCP (dns.query of queries sent two to a write, length
    prefixes cut), SMTP (file_data of base64 and plain attachments, a raw
    RCPT content) and SSH (ssh.software, ssh.proto): each write cut
    anywhere, pieces swapped, ACKed at random, gives the alerts it gives
    whole, count for count (3,500 seeds run by hand agree,
    tests/integration/sig_diff.py --kind apps)."""
    whole = sids(run(APP_RULES, app_frames(random.Random(seed), 40000, True)))
    cut = sids(run(APP_RULES, app_frames(random.Random(seed), 40001, False)))
    assert whole == cut


def test_app_seeds_cover_every_rule():
    """The suite's seeds of the app differential alert on every rule, so
    the comparison above tests each parser."""
    seen = set()
    for seed in _APP_SEEDS:
        seen |= set(sids(run(APP_RULES, app_frames(random.Random(seed), 40000, True))))
    assert seen == {1, 2, 3, 4, 5}



SIZED_RULES = (
    'alert udp any any -> any 53 (msg:"big query"; content:"|01 00 00 01|"; dsize:>300; '
    'sid:1;)\n'
    'alert udp any any -> any 53 (msg:"data at 500"; content:"|01 00 00 01|"; isdataat:500; '
    'sid:2;)\n'
    'alert udp any any -> any 53 (msg:"nothing past 100"; content:"|01 00 00 01|"; '
    'isdataat:!100; sid:3;)\n'
    'alert udp any any -> any 53 (msg:"500 past it"; content:"|01 00 00 01|"; '
    'isdataat:500,relative; sid:4;)\n'
    'alert tcp any any -> any 80 (msg:"long GET"; content:"GET /"; dsize:>1000; sid:5;)\n'
    'alert icmp any any -> any any (msg:"ping 60"; itype:8; content:"|00 01 02 03|"; '
    'dsize:60; sid:6;)\n')


def _sized_run(frames):
    """(alerted sids, candidates checked) with the prefilter, and the sids
    of checking every rule."""
    alerts, pipe = run_pipe(SIZED_RULES, frames)
    every = {a.rule.sid for a in run(SIZED_RULES, frames, prefilter=False)}
    return {a.rule.sid for a in alerts}, pipe.sig.counters["sig_candidates"], every


@pytest.mark.parametrize("pad", [0, 60, 73, 74, 273, 274, 473, 474, 900])
def test_packet_rules_whose_payload_size_cannot_fit_are_no_candidates(pad):
    """A fast pattern found in a payload that dsize or an absolute isdataat
    rules out makes no candidate (ET's DNS rules with dsize:>300 or
    isdataat:2049 were checked on every query and answer), and the alerts
    are those of checking every rule. A relative isdataat bounds nothing
    here: its rule stays a candidate."""
    query = _dns_query(b"a.example", 7) + bytes(pad)  # 27 bytes and the padding
    n = len(query)
    got, cands, every = _sized_run([(1.0, udp_frame("10.0.0.1", "10.0.0.2", 5353, 53, query))])
    want = {sid for sid, fits in ((1, n > 300), (2, n > 500), (3, n <= 100), (4, n >= 506))
            if fits}
    assert got == want == every
    assert cands == len(want - {4}) + 1


@pytest.mark.parametrize("size", [56, 60, 1200])
def test_tcp_and_icmp_packet_rules_by_size(size):
    """The same for a TCP segment's and an ICMP echo's dsize (ICMP: the
    payload after the 8-byte header, as Suricata counts it)."""
    req = b"GET /" + b"a" * (size - 5)
    frames = tcp_session([req]) + ping_exchange("10.0.0.1", "10.0.0.2", 1, 1, size, ts=9.0)
    got, cands, every = _sized_run(frames)
    want = {sid for sid, fits in ((5, size > 1000), (6, size == 60)) if fits}
    assert got == want == every
    # (the echo reply carries the pattern too: a candidate its itype rules out)
    assert cands == (size > 1000) + 2 * (size == 60)


def test_a_content_longer_than_a_fast_pattern_alerts_and_costs_no_frame():
    """A 12,000-byte content (its first FP_MAX bytes the fast pattern) alerts
    on a stream that holds it, cut into segments, and not on one that holds
    all but its last byte; whole, its group was refused by hyperscan on
    every frame ("Pattern length exceeds limit")."""
    from pakemon.detect import sigengine
    body = bytes(random.Random(7).randrange(256) for _ in range(12000))
    rule = ('alert tcp any any -> any 80 (msg:"long"; flow:to_server; content:"|%s|"; sid:1;)'
            % body.hex(" "))
    assert len(sigengine._fast_pattern(parse_suricata_rules(rule)[0][0])[0]) == sigengine.FP_MAX
    hit = tcp_session([b"x" * 10 + body + b"y" * 10], segment=1400)
    near = tcp_session([b"x" * 10 + body[:-1] + b"z" * 10], cport=40001, segment=1400)
    alerts, pipe = run_pipe(rule, hit + near)
    assert [a.rule.sid for a in alerts] == [1]
    assert "sig_matcher_refused" not in pipe.counters()


def test_a_group_hyperscan_refuses_is_read_by_the_fallback_matcher(monkeypatch):
    """Where hyperscan refuses a group's patterns, the group is read with
    pyahocorasick (or ``in``) instead, counted, and its rules still alert:
    no frame is lost to the refusal."""
    from pakemon.detect import sigengine
    if not sigengine._hs():
        pytest.skip("hyperscan is not the matcher here")

    class Refusing:
        def __init__(self, mode):
            pass

        def compile(self, **kw):
            raise sigengine.hyperscan.error("refused for the test")

    monkeypatch.setattr(sigengine.hyperscan, "Database", Refusing)
    monkeypatch.setattr(sigengine._Multi, "refused", 0)
    monkeypatch.setattr(sigengine, "FEW", 0)  # (every group through _Multi)
    text = "".join('alert tcp any any -> any 80 (msg:"m%d"; content:"EVIL%03d"; sid:%d;)\n'
                   % (i, i, i + 1) for i in range(20))
    frames = tcp_session([b"GET /EVIL007 and EVIL013 HTTP/1.0\r\n\r\n"])
    alerts, pipe = run_pipe(text, frames)
    assert {a.rule.sid for a in alerts} == {8, 14}
    assert pipe.counters()["sig_matcher_refused"] >= 1


@pytest.mark.parametrize("opts,want", [
    # an app-layer buffer's content comes before the payload's, however long
    ('content:"GET "; depth:4; nocase; uricontent:".pl~"; nocase;', (b".pl~", "http.uri")),
    # http.method and the payload come last: a 2-byte URI content first
    ('content:"POST"; http_method; content:"ab"; http_uri;', (b"ab", "http.uri")),
    # then the longest; then the stronger (more distinct bytes)
    ('content:"aaaa"; http_uri; content:"abcd"; http_uri; content:"xyz"; http_header;',
     (b"abcd", "http.uri")),
    ('content:"POST"; http_method; content:"Agent"; content:"abc";', (b"agent", None)),
    # an explicit fast_pattern wins whatever its buffer
    ('content:"POST"; http_method; fast_pattern; content:"longer"; http_uri;',
     (b"post", "http.method")),
])
def test_fast_pattern_picked_as_suricata_picks_it(opts, want):
    """Suricata's fast-pattern choice: the first priority (app-layer buffers
    before the payload, http.method, http.stat_code and http.stat_msg),
    then the longest, then the strongest, then the first."""
    from pakemon.detect import sigengine
    rules, _, errors = parse_suricata_rules(
        f'alert http any any -> any any (msg:"t"; flow:to_server; {opts} sid:1;)')
    assert not errors
    assert sigengine._fast_pattern(rules[0]) == want


def test_a_fast_pattern_found_in_another_buffer_makes_no_candidate():
    """HTTP buffers are scanned joined; a rule whose fast pattern the scan
    found in another buffer than its own (ET 2016680's client-body "user"
    in every User-Agent header name) is no candidate, and the rule still
    alerts where its own buffer holds it."""
    text = ('alert http any any -> any any (msg:"body user"; flow:to_server; '
            'http.request_body; content:"user"; sid:1;)\n'
            'alert http any any -> any any (msg:"uri x"; flow:to_server; '
            'http.uri; content:"/x"; sid:2;)\n')
    get = b"GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: curl\r\n\r\n"
    post = (b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nname=user")
    alerts, pipe = run_pipe(text, tcp_session([get], cport=40001))
    assert alerts == [] and pipe.sig.counters["sig_candidates"] == 0
    alerts, pipe = run_pipe(text, tcp_session([post], cport=40002))
    assert sids(alerts) == {1: 1} and pipe.sig.counters["sig_candidates"] == 1


def test_service_ports_union_every_rules_port_spec_once_per_protocol():
    """The kernel's port maps come from ``ports``: a spec shared by many
    rules (expanded once) still counts for each protocol it appears under,
    source-only specs included."""
    rules, _, errors = parse_suricata_rules(
        'alert tcp any any -> any 1024: (msg:"a"; content:"x"; sid:1;)\n'
        'alert tcp any any -> any 1024: (msg:"b"; content:"y"; sid:2;)\n'
        'alert udp any any -> any 1024: (msg:"c"; content:"z"; sid:3;)\n'
        'alert tcp any [80,8080] -> any any (msg:"d"; content:"w"; sid:4;)\n'
        'alert udp any any -> any 53 (msg:"e"; content:"v"; sid:5;)')
    assert not errors
    rs = SigRuleSet(rules)
    assert rs.ports("tcp") == frozenset(range(1024, 65536)) | {80, 8080}
    assert rs.ports("udp") == frozenset(range(1024, 65536)) | {53}
