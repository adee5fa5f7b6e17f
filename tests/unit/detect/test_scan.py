"""Scan detection: the paper's "Scan from A scan type: T" notice, and no more."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pakemon.config import ScanConfig
from pakemon.decode import Packet, decode_frame
from pakemon.decode.packet import TH_CWR, TH_ECE, TH_URG
from pakemon.detect.scan import ScanDetector
from pakemon.events import Notice, NoticeKind
from pakemon.lab.traffic import ACK, FIN, PSH, RST, SYN, tcp_frame, udp_frame

ATTACKER, VICTIM = "194.168.10.12", "192.168.10.5"
T0 = 979253960.0  # the paper's capture, January 2001
XMAS = FIN | PSH | TH_URG


def tcp(src, dst, dport, ts, flags=SYN, sport=40000):
    return decode_frame(1, tcp_frame(src, dst, sport, dport, 1000, 0, flags), ts)


def udp(src, dst, dport, ts, sport=40000):
    return decode_frame(1, udp_frame(src, dst, sport, dport, b"x"), ts)


def feed_all(det, pkts):
    out = []
    for p in pkts:
        out.extend(det.feed(p))
    return out


def port_scan(src=ATTACKER, dst=VICTIM, ports=range(1, 101), t0=T0, step=0.01, flags=SYN):
    return [tcp(src, dst, port, t0 + i * step, flags) for i, port in enumerate(ports)]


# ---- what is reported ----

def test_syn_scan_of_100_ports_gives_one_notice_with_the_papers_text():
    det = ScanDetector()
    notices = feed_all(det, port_scan())
    assert notices == [Notice(T0 + 19 * 0.01, NoticeKind.SCAN_DETECTED,
                              "Scan from 194.168.10.12 scan type: SYN",
                              proto="TCP", src_ip=ATTACKER, dst_ip="")]
    assert notices[0].kind.event_type == "scan"


@pytest.mark.parametrize("flags, name", [
    (FIN, "FIN"),
    (0, "NULL"),
    (XMAS, "XMAS"),
    (XMAS | SYN, "XMAS"),  # any FIN+PSH+URG superset without ACK
    (XMAS | RST, "XMAS"),
    (SYN | FIN, "OTHER"),  # crafted: no stack sends it
    (PSH, "OTHER"),
    (SYN | TH_ECE | TH_CWR, "SYN"),  # ECN setup SYN is still a connection attempt
])
def test_stealth_scan_types(flags, name):
    notices = feed_all(ScanDetector(), port_scan(ports=range(1, 31), flags=flags))
    assert [n.message for n in notices] == [f"Scan from {ATTACKER} scan type: {name}"]
    assert notices[0].proto == "TCP"


def test_udp_scan():
    det = ScanDetector()
    notices = feed_all(det, [udp(ATTACKER, VICTIM, p, T0 + p / 100, sport=45000)
                             for p in range(1, 101)])
    assert [(n.message, n.proto, n.src_ip) for n in notices] == [
        (f"Scan from {ATTACKER} scan type: UDP", "UDP", ATTACKER)]


def test_threshold_is_reached_at_exactly_config_ports():
    det = ScanDetector(ScanConfig(ports=20))
    assert feed_all(det, port_scan(ports=range(1, 20))) == []  # 19 distinct ports
    assert len(det.feed(tcp(ATTACKER, VICTIM, 20, T0 + 1))) == 1


def test_thresholds_follow_the_config():
    det = ScanDetector(ScanConfig(ports=5, hosts=1000))
    assert len(feed_all(det, port_scan(ports=range(1, 6)))) == 1


def test_horizontal_sweep_of_one_port():
    pkts = [tcp(ATTACKER, f"10.{i}.0.1", 22, T0 + i * 0.1) for i in range(50)]
    notices = feed_all(ScanDetector(), pkts)
    assert [n.message for n in notices] == [f"Scan from {ATTACKER} scan type: SYN"]
    assert notices[0].ts == T0 + 19 * 0.1


def test_udp_sweep_of_an_uncommon_port():
    pkts = [udp(ATTACKER, f"10.{i}.0.1", 161, T0 + i) for i in range(25)]  # SNMP sweep
    assert len(feed_all(ScanDetector(), pkts)) == 1


def test_fin_sweep_of_port_80_is_a_scan_wherever_the_hosts_are():
    pkts = [tcp(ATTACKER, f"10.{i}.0.1", 80, T0 + i, FIN) for i in range(25)]
    assert [n.message for n in feed_all(ScanDetector(), pkts)] == [
        f"Scan from {ATTACKER} scan type: FIN"]


def test_syn_sweep_of_port_80_over_one_network_is_a_scan():
    pkts = [tcp(ATTACKER, f"192.168.10.{i}", 80, T0 + i * 0.1) for i in range(1, 255)]
    assert len(feed_all(ScanDetector(), pkts)) == 1


def test_mixed_ports_and_hosts_below_both_thresholds_is_quiet():
    # 19 ports on each of 19 hosts: no host has 20 ports, no port 20 hosts
    pkts = [tcp(ATTACKER, f"10.0.0.{h}", 1000 + p, T0 + h + p / 100)
            for h in range(1, 20) for p in range(19)]
    assert feed_all(ScanDetector(ScanConfig(window=3600)), pkts) == []


# ---- what is not ----

def test_browser_opening_50_connections_to_one_server_is_not_a_scan():
    pkts = [tcp("10.0.0.7", "93.184.216.34", 80, T0 + i * 0.1, sport=40000 + i)
            for i in range(50)]
    det = ScanDetector()
    assert feed_all(det, pkts) == []
    assert det.counters()["targets"] == 1


@pytest.mark.parametrize("port", [80, 443, 8080, 25, 53])
def test_client_reaching_30_servers_on_a_common_port_is_not_a_scan(port):
    pkts = [tcp("10.0.0.7", f"{20 + i}.{i}.1.1", port, T0 + i, sport=50000 + i)
            for i in range(30)]
    assert feed_all(ScanDetector(), pkts) == []


def test_but_a_client_reaching_30_hosts_on_ssh_is_a_sweep():
    pkts = [tcp("10.0.0.7", f"{20 + i}.{i}.1.1", 22, T0 + i, sport=50000 + i)
            for i in range(30)]
    assert len(feed_all(ScanDetector(), pkts)) == 1


@pytest.mark.parametrize("port", [53, 123, 443])
def test_resolver_ntp_and_quic_clients_are_not_scans(port):
    pkts = [udp("10.0.0.53", f"{20 + i}.{i}.2.2", port, T0 + i, sport=30000 + i)
            for i in range(40)]
    assert feed_all(ScanDetector(), pkts) == []


def test_dns_replies_to_randomised_client_ports_are_not_a_udp_scan():
    det = ScanDetector()
    pkts = [udp("8.8.8.8", "10.0.0.7", 20000 + i * 7, T0 + i * 0.1, sport=53) for i in range(100)]
    assert feed_all(det, pkts) == []
    assert det.counters()["exempt"] == 100
    assert det.counters()["sources"] == 0  # exempt traffic holds no memory


def test_udp_scan_from_source_port_53_still_counts_its_low_ports():
    # nmap -g 53: probes of ports >= 1024 look like replies, the rest count
    pkts = [udp(ATTACKER, VICTIM, p, T0 + p / 100, sport=53) for p in range(1, 101)]
    assert len(feed_all(ScanDetector(), pkts)) == 1


def test_active_ftp_data_connections_from_port_20_are_not_a_scan():
    pkts = [tcp("10.0.0.21", "10.0.0.7", 50000 + i, T0 + i, sport=20) for i in range(40)]
    assert feed_all(ScanDetector(), pkts) == []


def test_passive_ftp_data_connections_are_not_a_scan():
    det = ScanDetector()
    assert det.feed(tcp("10.0.0.7", "10.0.0.21", 21, T0)) == []
    # mget: 50 data connections to the server's passive ports, over 20 minutes
    pkts = [tcp("10.0.0.7", "10.0.0.21", 50000 + i, T0 + 1 + i * 24, sport=41000 + i)
            for i in range(50)]
    assert feed_all(det, pkts) == []
    assert det.counters()["ftp_sessions"] == 1


def test_an_ftp_session_hides_only_high_ports_of_that_server():
    det = ScanDetector()
    det.feed(tcp(ATTACKER, VICTIM, 21, T0))
    assert feed_all(det, port_scan(ports=range(2000, 2100), t0=T0 + 1)) == []
    assert len(feed_all(det, port_scan(ports=range(1, 30), t0=T0 + 3))) == 1
    other = port_scan(dst="192.168.10.6", ports=range(2000, 2100), t0=T0 + 5)
    assert len(feed_all(ScanDetector(), other)) == 1


def test_a_stale_ftp_session_no_longer_hides_anything():
    det = ScanDetector()
    det.feed(tcp(ATTACKER, VICTIM, 21, T0))
    det.expire(T0 + 2000)
    assert det.counters()["ftp_sessions"] == 0
    assert len(feed_all(det, port_scan(ports=range(2000, 2100), t0=T0 + 2000))) == 1


def test_traceroute_is_not_a_udp_scan():
    # 3 probes per hop, 30 hops, one destination port per probe
    pkts = [udp("10.0.0.7", "198.51.100.9", 33434 + i, T0 + i * 0.05, sport=51000)
            for i in range(90)]
    assert feed_all(ScanDetector(), pkts) == []


def test_ack_rst_and_icmp_are_not_probes():
    det = ScanDetector()
    pkts = port_scan(flags=SYN | ACK) + port_scan(flags=RST) + port_scan(flags=ACK)
    assert feed_all(det, pkts) == []
    c = det.counters()
    assert (c["packets"], c["ignored"], c["sources"]) == (300, 300, 0)


def test_disabled_reports_nothing():
    assert feed_all(ScanDetector(ScanConfig(enabled=False)), port_scan()) == []


# ---- windows ----

def test_one_notice_per_window_then_a_new_one():
    det = ScanDetector()
    assert len(feed_all(det, port_scan(t0=T0))) == 1
    assert feed_all(det, port_scan(ports=range(200, 300), t0=T0 + 30)) == []  # same window
    notices = feed_all(det, port_scan(t0=T0 + 61))
    assert [n.ts for n in notices] == [T0 + 61 + 19 * 0.01]


def test_a_long_scan_gets_one_notice_per_window():
    pkts = port_scan(ports=range(1, 401), step=0.5)  # 200 s, 2 ports/s
    notices = feed_all(ScanDetector(), pkts)
    # 20th port; quiet for 60 s; then 20 more ports counted afresh
    assert [n.ts - T0 for n in notices] == [9.5, 79.0, 148.5]


def test_scan_types_and_sources_are_reported_separately():
    det = ScanDetector()
    notices = feed_all(det, port_scan() + port_scan(flags=FIN)
                       + port_scan(src="194.168.10.13"))
    assert [n.message for n in notices] == [
        "Scan from 194.168.10.12 scan type: SYN",
        "Scan from 194.168.10.12 scan type: FIN",
        "Scan from 194.168.10.13 scan type: SYN",
    ]
    c = det.counters()
    assert (c["notices"], c["notices_syn"], c["notices_fin"], c["notices_udp"]) == (3, 2, 1, 0)


def test_slow_scan_spread_over_more_than_a_window_is_not_reported():
    # 15 ports, then 5 more 70 s later: never 20 within 60 s
    pkts = port_scan(ports=range(1, 16)) + port_scan(ports=range(16, 21), t0=T0 + 70)
    assert feed_all(ScanDetector(), pkts) == []


def test_window_slides_rather_than_starting_at_the_first_probe():
    # an ordinary connection at t=0, then a scan of 20 ports between t=50 and
    # t=66: a window tumbling from t=0 would split it 10/10
    det = ScanDetector()
    det.feed(tcp(ATTACKER, "10.9.9.9", 80, T0))
    pkts = port_scan(ports=range(1, 11), t0=T0 + 50, step=0.5) \
        + port_scan(ports=range(11, 21), t0=T0 + 61, step=0.5)
    assert [n.ts for n in feed_all(det, pkts)] == [T0 + 65.5]


def test_ipv6_source_is_formatted():
    det = ScanDetector()
    src = bytes.fromhex("20010db8000000000000000000000001")
    notices = []
    for port in range(1, 25):
        p = Packet()
        p.ts, p.family, p.proto, p.l4 = T0 + port, 6, 6, True
        p.src, p.dst = src, bytes.fromhex("20010db8000000000000000000000002")
        p.sport, p.dport, p.flags = 40000, port, SYN
        notices += det.feed(p)
    assert [n.message for n in notices] == ["Scan from 2001:db8::1 scan type: SYN"]


# ---- memory ----

def test_expire_forgets_idle_sources_and_keeps_quiet_ones_quiet():
    det = ScanDetector()
    feed_all(det, port_scan(ports=range(1, 10)))  # below threshold
    feed_all(det, port_scan(src="194.168.10.13"))  # reported at T0 + 0.19
    assert det.counters()["sources"] == 2
    assert det.expire(T0 + 59) == 0
    # the quiet entry outlives the idle one by the time its quiet lasts
    assert det.expire(T0 + 60.1) == 1
    # still quiet until T0 + 60.19: a whole new scan before then is not reported
    again = port_scan(src="194.168.10.13", ports=range(1, 21), t0=T0 + 60.15, step=0.001)
    assert feed_all(det, again) == []
    assert det.expire(T0 + 200) == 1
    c = det.counters()
    assert (c["sources"], c["targets"], c["sources_expired"]) == (0, 0, 2)


def test_source_cap_evicts_the_least_recently_active():
    det = ScanDetector(max_sources=4)
    feed_all(det, port_scan(ports=range(1, 11)))  # attacker: 10 ports
    for i in range(4):  # four other sources push the attacker out
        det.feed(tcp(f"10.0.1.{i}", VICTIM, 80, T0 + 1 + i))
    c = det.counters()
    assert (c["sources"], c["sources_evicted"]) == (4, 1)
    # its first 10 ports were forgotten: 10 more are not enough
    assert feed_all(det, port_scan(ports=range(11, 21), t0=T0 + 10)) == []


def test_an_active_source_is_not_the_one_evicted():
    det = ScanDetector(max_sources=2)
    det.feed(tcp("10.0.1.1", VICTIM, 80, T0))
    feed_all(det, port_scan(ports=range(1, 11), t0=T0 + 1))
    det.feed(tcp("10.0.1.2", VICTIM, 80, T0 + 2))  # evicts 10.0.1.1, not the attacker
    assert len(feed_all(det, port_scan(ports=range(11, 21), t0=T0 + 3))) == 1


def test_targets_per_source_are_capped():
    # a peer-to-peer client: each peer on its own port, so never a scan
    det = ScanDetector(max_targets_per_source=30)
    pkts = [tcp("10.0.0.7", f"10.{i // 250}.{i % 250}.1", 10000 + i, T0 + i * 0.01)
            for i in range(100)]
    assert feed_all(det, pkts) == []
    c = det.counters()
    assert (c["targets"], c["targets_dropped"]) == (30, 70)


def test_total_targets_are_capped():
    det = ScanDetector(max_targets_per_source=30, max_targets=50)
    for s in range(3):
        feed_all(det, [tcp(f"10.0.2.{s}", f"10.{i}.0.1", 10000 + i, T0 + s + i * 0.01)
                       for i in range(19)])
    c = det.counters()
    assert c["targets"] <= 50
    assert c["sources_evicted"] == 1 and c["sources"] == 2


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        ScanDetector(ScanConfig(window=0))
    with pytest.raises(ValueError):
        ScanDetector(ScanConfig(ports=0))
    with pytest.raises(ValueError):
        ScanDetector(max_targets_per_source=100, max_targets=10)


def test_counters_are_named_and_counted():
    det = ScanDetector()
    feed_all(det, port_scan(ports=range(1, 21)))
    det.feed(udp("8.8.8.8", VICTIM, 40000, T0, sport=53))
    det.feed(tcp(ATTACKER, VICTIM, 1, T0, flags=SYN | ACK))
    c = det.counters()
    assert c == {
        "packets": 22, "ignored": 1, "exempt": 1, "notices": 1,
        "sources_evicted": 0, "sources_expired": 0, "targets_dropped": 0,
        "ftp_sessions_evicted": 0,
        "notices_syn": 1, "notices_fin": 0, "notices_null": 0, "notices_xmas": 0,
        "notices_other": 0, "notices_udp": 0,
        "sources": 1, "targets": 0, "ftp_sessions": 0,
    }


probe = st.tuples(
    st.integers(0, 3),  # source
    st.integers(0, 5),  # host
    st.integers(1, 40),  # port
    st.sampled_from([SYN, FIN, 0, XMAS]),
    st.floats(0, 2.0),  # gap before it
)


@settings(max_examples=60, deadline=None)
@given(st.lists(probe, max_size=300))
def test_bounded_and_consistent_whatever_the_traffic(probes):
    det = ScanDetector(ScanConfig(window=10, ports=8, hosts=4), max_sources=5,
                       max_targets_per_source=12, max_targets=30)
    ts = T0
    last_notice = {}
    for s, h, port, flags, gap in probes:
        ts += gap
        for n in det.feed(tcp(f"10.0.0.{s}", f"10.1.0.{h}", port, ts, flags)):
            key = n.message
            # one notice per source and type per window
            assert key not in last_notice or n.ts - last_notice[key] >= 10
            last_notice[key] = n.ts
        c = det.counters()
        assert c["sources"] <= 5 and c["targets"] <= 30
        tracks = det._tracks.values()
        assert c["targets"] == sum(len(t.targets) for t in tracks)
        for t in tracks:
            assert len(t.targets) <= 12
            assert sum(t.by_host.values()) == sum(t.by_port.values()) == len(t.targets)
    det.expire(ts + 11)
    assert det.counters()["sources"] == 0 and det.counters()["targets"] == 0
