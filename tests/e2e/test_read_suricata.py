"""`pakemon-xdp read` with Snort/Suricata rule files: eve.json alerts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from helpers import eve_alerts

from pakemon.cli import main
from pakemon.decode.decoder import checksum
from pakemon.lab.traffic import TcpConnection, dns_exchange, http_exchange, write_pcap
from pakemon.output.eve import eve_timestamp

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "conformance" / "suricata-verify"


def make_pcap(tmp_path):
    frames = http_exchange("10.0.0.1", "192.0.2.2", 40000,
                           b"GET /gate.php?id=42 HTTP/1.1\r\nHost: c2.example\r\n\r\n", b"ok")
    frames += dns_exchange("10.0.0.1", "10.0.0.53", 5353, "bad.example.com", ts=1)
    pcap = tmp_path / "c.pcap"
    write_pcap(pcap, frames)
    return pcap


def test_read_suricata_rules_mixed_with_native(tmp_path, capsys):
    rules = tmp_path / "s.rules"
    rules.write_text(
        'alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET TROJAN gate"; '
        'flow:established,to_server; content:"/gate.php"; http_uri; '
        'pcre:"/id=\\d+$/U"; classtype:trojan-activity; priority:1; sid:2000001; rev:3;)\n'
        'drop udp any any -> any 53 (msg:"DNS bad"; content:"|03|bad"; sid:2000002;)\n'
        'alert udp any any -> any 53 (msg:"never"; content:"good"; sid:2000003;)\n'
        'alert udp any any -> any 53 (msg:"gid 3"; content:"|03|bad"; gid:3; sid:2000004;)\n')
    native = tmp_path / "n.rules"
    native.write_text('NATIVE-GATE tcp * 80 "/gate.php"\n')
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("HOME_NET: \"[10.0.0.0/24]\"\n")
    logs = tmp_path / "logs"
    rc = main(["read", "-q", "--rules", str(rules), "--rules", str(native),
               "--vars", str(vars_file), str(make_pcap(tmp_path)), "--log-dir", str(logs)])
    assert rc == 0, capsys.readouterr().err
    got = {e["alert"]["signature"]: e["alert"] for e in eve_alerts(logs)}
    assert set(got) == {"ET TROJAN gate", "DNS bad", "NATIVE-GATE", "gid 3"}
    assert [got[m]["gid"] for m in ("ET TROJAN gate", "gid 3", "NATIVE-GATE")] == [1, 3, 1]
    gate = got["ET TROJAN gate"]
    assert (gate["signature_id"], gate["rev"], gate["category"], gate["severity"]) == \
        (2000001, 3, "trojan-activity", 1)


def test_home_net_var_restricts(tmp_path):
    rules = tmp_path / "s.rules"
    rules.write_text('alert http $HOME_NET any -> any any (msg:"g"; content:"/gate.php"; '
                     'http_uri; sid:1;)\n')
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("HOME_NET: \"[192.168.0.0/16]\"\n")
    logs = tmp_path / "logs"
    rc = main(["read", "-q", "--rules", str(rules), "--vars", str(vars_file),
               str(make_pcap(tmp_path)), "--log-dir", str(logs)])
    assert rc == 0
    assert eve_alerts(logs) == []


def test_bad_suricata_rule_exit_1_unless_skipped(tmp_path, capsys):
    rules = tmp_path / "s.rules"
    rules.write_text('alert udp any any -> any 53 (msg:"ok"; content:"|03|bad"; sid:1;)\n'
                     'alert udp any any -> any 53 (msg:"broken"; content:"x"; depth:0; sid:2;)\n'
                     'alert tcp any any -> any any (msg:"no sid";)\n')
    pcap = make_pcap(tmp_path)
    rc = main(["read", "-q", "--rules", str(rules), str(pcap), "--log-dir", str(tmp_path / "a")])
    assert rc == 1
    assert "s.rules:3" in capsys.readouterr().err
    rc = main(["read", "-q", "--skip-bad-rules", "--rules", str(rules), str(pcap),
               "--log-dir", str(tmp_path / "b")])
    assert rc == 0
    assert [e["alert"]["signature_id"] for e in eve_alerts(tmp_path / "b")] == [1]


def run_case(name, tmp_path):
    case = CORPUS / name
    expected = json.loads((case / "expected.json").read_text())
    logs = tmp_path / name
    rc = main(["read", "-q", "--checksum", "off", "--rules", str(case / "test.rules"),
               str(case / expected.get("pcap", "input.pcap")), "--log-dir", str(logs)])
    assert rc == 0
    counts = {}
    for e in eve_alerts(logs):
        sid = str(e["alert"]["signature_id"])
        counts[sid] = counts.get(sid, 0) + 1
    return {s: counts.get(s, 0) for s in expected["alerts"]}, expected["alerts"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="suricata-verify corpus not present")
@pytest.mark.parametrize("name", [
    "alert-distance-within-1", "test-dsize-values", "bug-5162", "detect-itype",
    "uricontent--detect-uricontent-02", "detect-http-uri--UriTestSig01",
    "threshold--detection_filter-rule-hostsrc",
])
def test_suricata_verify_cases(name, tmp_path):
    got, want = run_case(name, tmp_path)
    assert got == want


def test_rules_directory_format_flag_and_missing_vars(tmp_path, capsys):
    d = tmp_path / "ruledir"
    d.mkdir()
    (d / "a.rules").write_text('alert udp any any -> any 53 (msg:"A"; content:"|03|bad"; '
                               'sid:11;)\n')
    (d / "b.rules").write_text('alert udp any any -> any 53 (msg:"B"; content:"example"; '
                               'sid:12;)\n')
    pcap = make_pcap(tmp_path)
    logs = tmp_path / "logs"
    assert main(["read", "-q", "--rules", str(d), str(pcap), "--log-dir", str(logs)]) == 0
    assert sorted(e["alert"]["signature_id"] for e in eve_alerts(logs)) == [11, 12]
    # forcing the native format on a Suricata file: the native parser's errors
    assert main(["read", "-q", "--rules-format", "native", "--rules", str(d / "a.rules"),
                 str(pcap), "--log-dir", str(tmp_path / "n")]) == 1
    capsys.readouterr()
    assert main(["read", "-q", "--rules", str(d), "--vars", str(tmp_path / "none.yaml"),
                 str(pcap), "--log-dir", str(tmp_path / "v")]) == 1
    assert "cannot read vars" in capsys.readouterr().err


def test_a_broken_vars_file_is_an_error_with_native_rules_too(tmp_path, capsys):
    """Native rules take no variables, but a vars file given with them is
    read and its errors reported (exit 1), not passed over in silence."""
    native = tmp_path / "n.rules"
    native.write_text('DNS-bad udp * 53 "|03|bad"\n')
    bad = tmp_path / "vars.txt"
    bad.write_text("HOME_NET [10.0.0.0/8\nHTTP_PORTS [80,abc]\n")
    pcap = make_pcap(tmp_path)
    assert main(["read", "-q", "--rules", str(native), "--vars", str(bad), str(pcap),
                 "--log-dir", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "vars.txt:1:" in err and "vars.txt:2:" in err and "2 error(s) in the vars file" in err
    good = tmp_path / "good.txt"
    good.write_text("HOME_NET [10.0.0.0/8]\n")
    assert main(["read", "-q", "--rules", str(native), "--vars", str(good), str(pcap),
                 "--log-dir", str(tmp_path / "b")]) == 0


ET_DIR = ROOT.parent / "shared" / "rulesets" / "et-open-suricata-4.0"
MUTATION_CHARS = ';:"|\\!,()[]$ -/<>*.0123456789abcdefxyzABC_%{}\t'


def _mutate(rng, line: str) -> str:
    s = list(line.rstrip("\n"))
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(s))
        op = rng.randrange(5)
        if op == 0:
            del s[i]
        elif op == 1:
            s.insert(i, rng.choice(MUTATION_CHARS))
        elif op == 2:
            s[i] = rng.choice(MUTATION_CHARS)
        elif op == 3:
            s.insert(i, s[i])
        else:
            j = rng.randrange(len(s))
            s[i], s[j] = s[j], s[i]
    return "".join(s)


@pytest.mark.skipif(not ET_DIR.exists(), reason="shared ET rule set not present")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_et_rules_load_compile_and_match_without_raising(seed, tmp_path):
    """The parser's own fuzz stops at parsing; here damaged ET rules go the
    whole way (the prefilter's compile, the checks on real traffic): a rule
    is loaded or reported, never a crash (PAKEMON_STRICT raises on any
    frame the engine fails on)."""
    import random

    lines = [ln for f in sorted(ET_DIR.glob("*.rules"))
             for ln in f.read_text(errors="surrogateescape").splitlines()
             if ln.startswith("alert")]
    rng = random.Random(seed)
    rules = tmp_path / "mutated.rules"
    rules.write_text("\n".join(_mutate(rng, rng.choice(lines)) for _ in range(300)) + "\n",
                     errors="surrogateescape")
    code = main(["read", "-q", "--skip-bad-rules", "--rules", str(rules),
                 "--log-dir", str(tmp_path / "logs"), str(make_pcap(tmp_path)),
                 str(ROOT / "pakemon" / "lab" / "demo.pcap")])
    assert code in (0, 1)


def _vlan(frame: bytes, vid: int) -> bytes:
    return frame[:12] + b"\x81\x00" + vid.to_bytes(2, "big") + frame[12:]


def _fragments(frame: bytes, cut: int) -> list[bytes]:
    """An IPv4 frame (no options) as two fragments, ``cut`` bytes of IP
    payload (a multiple of 8) in the first."""
    eth, ip = frame[:14], frame[14:]
    payload = ip[20:]

    def piece(data, off, more):
        hdr = bytearray(ip[:20])
        hdr[2:4] = (20 + len(data)).to_bytes(2, "big")
        hdr[6:8] = ((0x2000 if more else 0) | off // 8).to_bytes(2, "big")
        hdr[10:12] = b"\0\0"
        hdr[10:12] = checksum(bytes(hdr)).to_bytes(2, "big")
        return eth + bytes(hdr) + data

    return [piece(payload[:cut], 0, True), piece(payload[cut:], cut, False)]


def _read_alerts(tmp_path, frames, rules_text) -> dict:
    """``read`` of ``frames`` with ``rules_text``: its EVE alerts by sid."""
    pcap = tmp_path / "in.pcap"
    write_pcap(pcap, frames)
    rules = tmp_path / "in.rules"
    rules.write_text(rules_text)
    logs = tmp_path / "logs"
    assert main(["read", "-q", "--rules", str(rules), str(pcap), "--log-dir", str(logs)]) == 0
    return {e["alert"]["signature_id"]: e for e in eve_alerts(logs)}


def test_eve_alerts_carry_what_suricata_writes(tmp_path):
    """tx_id, the HTTP transaction's metadata, stream, ip_v, vlan, pcap_cnt,
    the packet (a reassembled datagram as Suricata's defrag builds it), and
    pkt_src for what only the end of input raised: the fields of Suricata's
    EVE alerts that dashboards and jq filters use."""
    from pakemon.lab.traffic import TcpConnection, udp_frame

    conn = TcpConnection("10.0.0.1", "192.0.2.2", 40001, 80, ts=1.0).open()
    conn.send(b"GET /index.html HTTP/1.1\r\nHost: WWW.Example.ORG:8080\r\n"
              b"User-Agent: probe/1\r\nReferer: http://ref.example/\r\n\r\n")
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
              b"Content-Length: 5\r\n\r\nhello", from_client=False)
    # a byte that is not UTF-8 in the URI, a UTF-8 user agent: EVE writes them
    # as Suricata's JSON writer does (\\xe9; the text as it is)
    conn.send(b"GET /admin/x\xe9 HTTP/1.1\r\nHost: www.example.org\r\n"
              + "User-Agent: naïve\r\n\r\n".encode())
    conn.send(b"HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n",
              from_client=False)
    frames = [(ts, _vlan(f, 7)) for ts, f in conn.close()]
    dgram = udp_frame("10.0.0.1", "10.0.0.9", 5000, 6000, b"x" * 40 + b"FRAGMARK" + b"y" * 40)
    frames += [(3.0 + i / 100, f) for i, f in enumerate(_fragments(dgram, 48))]
    # a request the server never acknowledges: read at the end of input
    tail = TcpConnection("10.0.0.1", "192.0.2.2", 40002, 81, ts=4.0).open()
    tail.send(b"TAILMARK", )
    frames += tail.frames[:-1]  # (not the server's ACK of it)
    got = _read_alerts(tmp_path, frames, (
        'alert http any any -> any any (msg:"admin"; flow:to_server; http.uri; '
        'content:"/admin"; sid:1;)\n'
        'alert http any any -> any any (msg:"redirect"; flow:to_client; http.stat_code; '
        'content:"302"; sid:2;)\n'
        'alert http any any -> any any (msg:"ok"; flow:to_client; http.stat_code; '
        'content:"200"; sid:3;)\n'
        'alert tcp any any -> any 80 (msg:"raw"; flow:to_server; content:"probe/1"; sid:4;)\n'
        'alert udp any any -> any any (msg:"frag"; content:"FRAGMARK"; sid:5;)\n'
        'alert tcp any any -> any 81 (msg:"tail"; content:"TAILMARK"; sid:6;)\n'))
    assert sorted(got) == [1, 2, 3, 4, 5, 6]

    admin, redirect, ok, raw = got[1], got[2], got[3], got[4]
    assert (admin["tx_id"], redirect["tx_id"], ok["tx_id"]) == (1, 1, 0)
    assert admin["http"] == {"hostname": "www.example.org", "url": "/admin/x\\xe9",
                             "http_user_agent": "naïve", "http_method": "GET",
                             "protocol": "HTTP/1.1", "length": 0}
    assert ok["http"] == {"hostname": "www.example.org", "url": "/index.html",
                          "http_user_agent": "probe/1", "http_content_type": "text/html",
                          "http_refer": "http://ref.example/", "http_method": "GET",
                          "protocol": "HTTP/1.1", "status": 200, "length": 5}
    assert (redirect["http"]["status"], redirect["http"]["redirect"]) == (302, "/login")
    # a match on the stream, not on a transaction: stream 1, no transaction
    assert raw["stream"] == 1 and "tx_id" not in raw and "http" not in raw
    assert admin["stream"] == 0 and got[5]["stream"] == 0
    for e in (admin, redirect, ok, raw):
        assert e["vlan"] == [7] and e["ip_v"] == 4 and e["app_proto"] == "http"
    # the packet logged is the capture's frame numbered pcap_cnt
    for e in (admin, redirect, ok, raw):
        assert base64.b64decode(e["packet"]) == frames[e["pcap_cnt"] - 1][1]
        assert e["packet_info"] == {"linktype": 1, "linktype_name": "EN10MB"}
        assert e["pkt_src"] == "wire/pcap"
    # the reassembled datagram, as one packet with a valid header
    frag = got[5]
    assert frag["pcap_cnt"] == len(conn.frames) + 2
    whole = base64.b64decode(frag["packet"])
    assert whole[14:] [:2] == dgram[14:16] and whole[20:22] == b"\0\0"
    assert int.from_bytes(whole[16:18], "big") == len(dgram) - 14
    assert checksum(whole[14:34]) == 0 and whole[34:] == dgram[34:]
    # raised by the end of input, on no packet of its own
    end = got[6]
    assert end["pkt_src"] == "stream (flow timeout)"
    assert "pcap_cnt" not in end and "packet" not in end


def _flow_key(frame):
    """(proto, endpoint, endpoint) of an untagged IPv4 frame, endpoints
    sorted; ICMP by address pair (as EVE's flow_id)."""
    ihl = (frame[14] & 15) * 4
    proto = frame[23]
    a, b = (frame[26:30], 0), (frame[30:34], 0)
    if proto in (6, 17):
        l4 = 14 + ihl
        a = (frame[26:30], int.from_bytes(frame[l4:l4 + 2], "big"))
        b = (frame[30:34], int.from_bytes(frame[l4 + 2:l4 + 4], "big"))
    return (proto,) + tuple(sorted((a, b))), a


def test_eve_alert_flow_counts_the_flow_up_to_its_packet(tmp_path):
    """Suricata 7's alert ``direction`` and ``flow`` object: each flow's
    packets and bytes (captured length, link header included) each way up
    to and including the frame the alert was raised at (pcap_cnt), its
    first packet's time, and the flow's own orientation (client first),
    for TCP (a request, and a response read at the client's next packet),
    UDP and ICMP (an address pair, requests and replies one flow), with
    other flows' frames in between."""
    from pakemon.lab.traffic import TcpConnection, ping_exchange, udp_frame

    conn = TcpConnection("10.0.0.1", "10.0.0.2", 40001, 80, ts=1.0).open()
    conn.send(b"GET /flowtest HTTP/1.1\r\nHost: h\r\n\r\n")
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"b" * 1990 + b"FLOWBODY!!",
              from_client=False)
    web = conn.close()
    other = [(0, udp_frame("10.0.0.7", "10.0.0.8", 7000 + i, 9, b"noise" * i)) for i in range(6)]
    dns = dns_exchange("10.0.0.1", "10.0.0.53", 5353, "flows.example.org")
    dns += [(0, f) for _, f in dns_exchange("10.0.0.1", "10.0.0.53", 5353, "again.example.org")]
    ping = ping_exchange("10.0.0.9", "10.0.0.1", 77, 1) + ping_exchange("10.0.0.9", "10.0.0.1",
                                                                        77, 2)
    mixed = (web[:4] + other[:2] + dns[:3] + web[4:9] + other[2:4] + ping[:3] + web[9:]
             + dns[3:] + ping[3:] + other[4:])
    frames = [(1.0 + i / 100, f) for i, (_, f) in enumerate(mixed)]
    got = _read_alerts(tmp_path, frames, (
        'alert http any any -> any any (msg:"req"; flow:to_server; http.uri; '
        'content:"/flowtest"; sid:1;)\n'
        'alert tcp any 80 -> any any (msg:"body"; flow:to_client; content:"FLOWBODY"; sid:2;)\n'
        'alert udp any 53 -> any any (msg:"answer"; content:"|05|again"; sid:3;)\n'
        'alert icmp any any -> any any (msg:"reply"; itype:0; icmp_seq:2; sid:4;)\n'
        'alert udp any any -> any 53 (msg:"query"; content:"|05|flows"; sid:5;)\n'
        'alert http any any -> any any (msg:"resp"; flow:to_client; file.data; '
        'content:"FLOWBODY"; sid:6;)\n'))
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    for sid, e in got.items():
        n = e["pcap_cnt"]
        key, _ = _flow_key(frames[n - 1][1])
        mine = [f for _, f in frames if _flow_key(f)[0] == key]
        client = _flow_key(mine[0])[1]
        upto = [f for _, f in frames[:n] if _flow_key(f)[0] == key]
        ts = [f for f in upto if _flow_key(f)[1] == client]
        tc = [f for f in upto if _flow_key(f)[1] != client]
        flow = e["flow"]
        assert (flow["pkts_toserver"], flow["pkts_toclient"]) == (len(ts), len(tc)), sid
        assert flow["bytes_toserver"] == sum(map(len, ts)), sid
        assert flow["bytes_toclient"] == sum(map(len, tc)), sid
        first = next(t for t, f in frames if _flow_key(f)[0] == key)
        assert flow["start"] == eve_timestamp(first)
        to_server = e["src_ip"] == flow["src_ip"] and e.get("src_port") == flow.get("src_port")
        assert e["direction"] == ("to_server" if to_server else "to_client"), sid
        assert {flow["src_ip"], flow["dest_ip"]} == {e["src_ip"], e["dest_ip"]}
    # who started each flow, whichever way the alert's packet went
    assert got[1]["direction"] == "to_server" and got[5]["direction"] == "to_server"
    assert got[2]["direction"] == "to_client" and got[3]["direction"] == "to_client"
    # the response's transaction, read at the client's next packet
    assert got[6]["direction"] == "to_client"
    assert _flow_key(frames[got[6]["pcap_cnt"] - 1][1])[1][0] == bytes([10, 0, 0, 1])
    assert got[2]["flow"]["src_ip"] == "10.0.0.1" and got[2]["flow"]["dest_port"] == 80
    assert got[3]["flow"]["src_ip"] == "10.0.0.1" and got[3]["flow"]["src_port"] == 5353
    # ICMP: one flow per address pair, as Suricata's; the reply goes to
    # the client, after two requests and a reply
    assert got[4]["direction"] == "to_client" and "src_port" not in got[4]["flow"]
    assert got[4]["flow"]["src_ip"] == "10.0.0.9"
    assert (got[4]["flow"]["pkts_toserver"], got[4]["flow"]["pkts_toclient"]) == (2, 2)
    # the second query and answer of the DNS flow count with the first
    assert got[3]["flow"]["pkts_toserver"] == 2 and got[3]["flow"]["pkts_toclient"] == 2


@pytest.mark.parametrize("interim", [False, True])
def test_a_100_continue_answers_no_request_of_its_own(tmp_path, interim):
    """A POST with Expect: 100-continue, the server's 100 Continue, its
    final response, then a second request and response on the connection:
    each final response meets its own request (the 100 Continue was paired
    off as an answer, and every later response met the wrong request),
    and a rule matching both the 100 and the final response alerts once for
    their transaction."""
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 80).open()
    c.send(b"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    if interim:
        c.send(b"HTTP/1.1 100 Continue\r\n\r\n", from_client=False)
    c.send(b"data")
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nfirstbody", from_client=False)
    c.send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nevilbody", from_client=False)
    write_pcap(tmp_path / "c.pcap", c.close())
    rules = tmp_path / "r.rules"
    rules.write_text(
        'alert http any any -> any any (msg:"b"; flow:to_client; http.uri; content:"/b"; '
        'file_data; content:"evilbody"; sid:1;)\n'
        'alert http any any -> any any (msg:"a"; flow:to_client; http.uri; content:"/a"; '
        'file_data; content:"firstbody"; sid:2;)\n'
        'alert http any any -> any any (msg:"100"; flow:to_client; http.stat_code; '
        'content:"100"; sid:3;)\n'
        'alert http any any -> any any (msg:"any status"; flow:to_client; http.stat_code; '
        'content:"0"; sid:4;)\n')
    assert main(["read", "-q", "--rules", str(rules), "--log-dir", str(tmp_path / "l"),
                 str(tmp_path / "c.pcap")]) == 0
    got = sorted((e["alert"]["signature_id"], e["tx_id"], e["http"]["url"])
                 for e in eve_alerts(tmp_path / "l"))
    want = [(1, 1, "/b"), (2, 0, "/a"), (4, 0, "/a"), (4, 1, "/b")]
    if interim:
        want.insert(2, (3, 0, "/a"))
    assert got == want
