"""Header-only records (the live sensor's reverse direction) drive stream state."""

from pakemon.decode import decode_frame
from pakemon.lab.traffic import ACK, PSH, RST, TcpConnection, tcp_frame
from pakemon.stream.tcp import TcpReassembler

C, S = "10.0.0.1", "10.0.0.2"


def header_only(frame: bytes, wire_len: int):
    """What the kernel program pushes for the reverse direction: the headers."""
    return decode_frame(1, frame[:54], 0.0, wire_len=wire_len)


def test_server_rst_after_header_only_data_closes_the_server_side():
    r = TcpReassembler(classify=lambda d: d.dport == 80)
    conn = TcpConnection(C, S, 40000, 80).open()
    for ts, f in conn.frames:
        r.feed(decode_frame(1, f, ts))
    body = b"x" * 1000
    data = tcp_frame(S, C, 80, 40000, conn.sseq, conn.cseq, PSH | ACK, body)
    pkt = header_only(data, len(data))
    assert pkt.truncated and pkt.payload == b"" and pkt.wire_payload == 1000
    r.feed(pkt)
    rst = tcp_frame(S, C, 80, 40000, conn.sseq + 1000, conn.cseq, RST | ACK)
    r.feed(decode_frame(1, rst, 1.0))
    c = r.counters()
    # the RST sits exactly after the 1000 bytes the kernel did not push
    assert c["rst_ignored"] == 0
    assert r.last_direction.rst


def test_flow_counters_count_a_header_only_segment_at_its_wire_length():
    """EVE's flow.bytes_*: a segment whose payload the capture cut counts
    what crossed the wire, not the headers the kernel pushed."""
    r = TcpReassembler(classify=lambda d: d.dport == 80)
    conn = TcpConnection(C, S, 40000, 80).open()
    for ts, f in conn.frames:
        r.feed(decode_frame(1, f, ts))
    s = r.last_direction.session
    sent = {s.client: 0, s.server: 0}
    for ts, f in conn.frames:
        sent[s.client if f[26:30] == bytes([10, 0, 0, 1]) else s.server] += len(f)
    data = tcp_frame(S, C, 80, 40000, conn.sseq, conn.cseq, PSH | ACK, b"x" * 1000)
    r.feed(header_only(data, len(data)))
    assert (s.client.packets, s.server.packets) == (2, 2)
    assert s.client.nbytes == sent[s.client]
    assert s.server.nbytes == sent[s.server] + len(data)
    assert s.start == conn.frames[0][0]
