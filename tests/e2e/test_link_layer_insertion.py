"""Frames the target's stack discards for their link-layer destination.

Linux drops a frame addressed to another host's MAC in ip_rcv
(PACKET_OTHERHOST), and tcp_v4_rcv discards a segment sent to a broadcast
or multicast MAC; UDP and ICMP take those. A decoy sent that way is an
insertion the sensor must not take (tests/integration/live_cases.py,
tcp_to_*_mac, checks each against the live kernel). Linux cooked captures
record the packet type itself. Judged only when the host's own MACs are
given (``--host-mac``): captures from elsewhere, replays and generators
carry MACs no host saw.
"""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from helpers import BUNDLED_RULES, ROOT
from helpers import phf_with_decoy as phf_decoy
from pakemon.config import Config
from pakemon.decode.packet import LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2
from pakemon.detect.rule_parser import load_rules
from pakemon.events import Alert, Notice
from pakemon.events import NoticeKind as K
from pakemon.lab.traffic import SERVER_MAC, TcpConnection, udp_frame, write_pcap
from pakemon.pipeline import Pipeline

BROADCAST = b"\xff" * 6
MULTICAST = bytes.fromhex("01005e000001")
OTHER_HOST = bytes.fromhex("020000009999")
ATTACK = "CGI-phf(CVE-1999-0067)"


def with_dst_mac(frame: bytes, mac: bytes) -> bytes:
    return mac + frame[6:]


def phf_with_decoy(dst_mac: bytes) -> list:
    return phf_decoy(lambda frame: with_dst_mac(frame, dst_mac))


def run(frames, config=None, linktype=1):
    pipe = Pipeline(load_rules(BUNDLED_RULES).rules, config)
    events = []
    for ts, frame in frames:
        events += pipe.feed(ts, frame, linktype)
    events += pipe.flush()
    alerts = {e.rule.name for e in events if isinstance(e, Alert)}
    notices = [e.kind for e in events if isinstance(e, Notice)]
    return pipe, alerts, notices


HOST = Config(local_macs=frozenset({SERVER_MAC}))


@pytest.mark.parametrize("mac", [BROADCAST, MULTICAST, OTHER_HOST],
                         ids=["broadcast", "multicast", "other-host"])
def test_a_tcp_decoy_the_host_discards_is_dropped_once_its_macs_are_known(mac):
    frames = phf_with_decoy(mac)
    _, alerts, notices = run(frames)  # the capture alone is not trusted
    assert ATTACK not in alerts and notices == [K.STREAM_OVERLAP_MISMATCH]
    pipe, alerts, notices = run(frames, HOST)
    assert ATTACK in alerts
    assert notices == [K.DECODE_FRAME_TO_OTHER_HOST if mac == OTHER_HOST
                       else K.DECODE_TCP_TO_LINK_GROUP]
    assert pipe.stats.not_for_host == 1 and pipe.stats.malformed == 0
    assert pipe.stats.tcp == len(frames)  # still counted as TCP frames


def test_without_the_hosts_macs_no_frame_is_judged_by_its_macs():
    """A traffic generator's capture (suricata-verify's flowsynth pcaps: a
    random MAC pair per frame, half of them group addresses) loses nothing."""
    conn = TcpConnection("10.1.0.5", "10.2.0.1", 41002, 80).open()
    conn.send(b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n", from_client=True)
    conn.send(b"HTTP/1.0 404 Not Found\r\n\r\n", from_client=False)
    frames = [(ts, with_dst_mac(f, BROADCAST if i % 2 else OTHER_HOST))
              for i, (ts, f) in enumerate(conn.close())]
    pipe, alerts, notices = run(frames)
    assert ATTACK in alerts and notices == [] and pipe.stats.not_for_host == 0


def test_the_hosts_own_frames_and_group_udp_are_kept():
    # the server's replies go to the client's MAC, from the server's own
    conn = TcpConnection("10.1.0.5", "10.2.0.1", 41001, 80).open()
    conn.send(b"GET /cgi-bin/phf?Qalias=x HTTP/1.0\r\n\r\n")
    pipe, alerts, notices = run(conn.close(), HOST)
    assert ATTACK in alerts and notices == [] and pipe.stats.not_for_host == 0
    # a UDP datagram to a unicast address by link-layer broadcast: UDP takes it
    dgram = with_dst_mac(udp_frame("10.1.0.5", "10.2.0.1", 5000, 53, b"q" * 20), BROADCAST)
    pipe, _, notices = run([(0.0, dgram)], HOST)
    assert notices == [] and pipe.stats.not_for_host == 0 and pipe.stats.inspected == 1


def sll(frame: bytes, ptype: int) -> bytes:
    """An Ethernet frame as a Linux cooked (v1) capture records it."""
    return struct.pack("!HHH8sH", ptype, 1, 6, frame[6:12] + b"\0\0", 0x0800) + frame[14:]


def sll2(frame: bytes, ptype: int) -> bytes:
    return struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, ptype, 6, frame[6:12] + b"\0\0") + frame[14:]


@pytest.mark.parametrize("linktype,wrap", [(LINKTYPE_LINUX_SLL, sll),
                                           (LINKTYPE_LINUX_SLL2, sll2)], ids=["sll", "sll2"])
@pytest.mark.parametrize("ptype,kind", [(0, None), (1, K.DECODE_TCP_TO_LINK_GROUP),
                                        (2, K.DECODE_TCP_TO_LINK_GROUP),
                                        (3, K.DECODE_FRAME_TO_OTHER_HOST), (4, None)],
                         ids=["host", "broadcast", "multicast", "otherhost", "outgoing"])
def test_cooked_captures_say_the_packet_type(linktype, wrap, ptype, kind):
    """The capture the host took itself (told so with its MAC)."""
    frames = []
    for ts, frame in phf_with_decoy(SERVER_MAC):
        decoy = frame[14 + 20 + 20:] == b"x" * 26
        frames.append((ts, wrap(frame, ptype if decoy else 0)))
    pipe, alerts, notices = run(frames, HOST, linktype=linktype)
    # the decoy taken (host, outgoing): the real bytes come as a conflicting
    # retransmission, and the sensor reads what no server got
    assert notices == ([kind] if kind else [K.STREAM_OVERLAP_MISMATCH])
    assert (ATTACK in alerts) == (kind is not None)


def test_read_takes_host_mac(tmp_path):
    pcap = tmp_path / "decoy.pcap"
    write_pcap(pcap, phf_with_decoy(OTHER_HOST))
    logs = tmp_path / "logs"
    r = subprocess.run([sys.executable, "-m", "pakemon.cli", "read", "--progress", "never",
                        "--log-dir", str(logs), "--host-mac", SERVER_MAC.hex(":"), str(pcap)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert ATTACK in (logs / "alert.log").read_text()
    assert "DECODE_FRAME_TO_OTHER_HOST" in r.stdout and "not for this host: 1" in r.stdout
    r = subprocess.run([sys.executable, "-m", "pakemon.cli", "read", "--host-mac", "02:00",
                        str(pcap)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "not a MAC address" in r.stderr and "Traceback" not in r.stderr

