"""eve.json: one JSON object per line, Suricata EVE compatible.

An alert (on one line)::

    {"timestamp":"2001-01-11T19:40:51.123456+0000","flow_id":...,
     "event_type":"alert","src_ip":"194.168.10.12","src_port":1032,
     "dest_ip":"192.168.10.5","dest_port":80,"proto":"TCP",
     "community_id":"1:...","alert":{"action":"allowed","gid":1,
     "signature_id":...,"rev":1,"signature":"CGI-handler(CVE-1999-0148)",
     "category":"","severity":3},"payload":"...","payload_printable":"...",
     "stream":1,"pkt_src":"wire/pcap"}

ICMP alerts carry ``icmp_type``/``icmp_code`` instead of ports, as Suricata
writes them. An alert of a Suricata rule on a flow whose protocol was
detected (http, tls, smtp, dns, ...) carries ``app_proto``, as Suricata's do,
and the app layer's own object where the engine parsed it: ``http`` (the
transaction), ``tls`` (sni, version, ja3/ja3s, the certificate's subject,
issuerdn, serial, fingerprint, notbefore, notafter), ``ssh`` (client and
server proto_version, software_version, hassh), ``smtp`` (helo, mail_from,
rcpt_to), ``dns`` (a request's questions, a response's header, first
question, answers, grouped answers and authorities). Notices are written
with ``event_type`` ``anomaly`` (or ``scan``) and an object of that name
holding ``type``, ``event`` and ``message``. ``community_id`` follows the
Community ID v1 specification (seed 0); ``flow_id`` is a stable 51-bit
number shared by both directions of a flow.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import json
import math
import socket
import struct
import time
from typing import TextIO

from communityid import icmp as _icmp4, icmp6 as _icmp6

from pakemon.events import Alert, Notice
from pakemon.decode.decoder import checksum

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132

# Protocol names as Suricata writes them in "proto" (IANA keywords).
PROTO_NAMES = {
    1: "ICMP",
    2: "IGMP",
    4: "IPv4",
    6: "TCP",
    17: "UDP",
    41: "IPv6",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "IPv6-ICMP",
    89: "OSPFIGP",
    103: "PIM",
    112: "VRRP",
    132: "SCTP",
}

_TEXT_PROTOS = {"TCP": IPPROTO_TCP, "UDP": IPPROTO_UDP, "ICMP": IPPROTO_ICMP}
_PORT_PROTOS = (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP)
_ICMP_PROTOS = (IPPROTO_ICMP, IPPROTO_ICMPV6)

FLOW_ID_BITS = 51  # Suricata's flow_id stays below 2**51 (exact in a double)

_CID_HEAD = struct.Struct("!HBB")  # seed, protocol, padding
_CID_PORTS = struct.Struct("!HH")
_AF_INET, _AF_INET6, _inet_pton = socket.AF_INET, socket.AF_INET6, socket.inet_pton

# Suricata's payload_printable: isprint() bytes, CR and LF kept, others ".".
_PRINTABLE = "".join(
    chr(b) if 0x20 <= b <= 0x7E or b in (0x0A, 0x0D) else "." for b in range(256)
)
_PRINTABLE_TABLE = _PRINTABLE.encode("ascii")  # for bytes.translate


# --- field helpers -------------------------------------------------------


def eve_timestamp(ts: float) -> str:
    """``ts`` as local time with microseconds and numeric offset.

    ``2001-01-11T19:40:51.123456+0000``, as Suricata writes it. The whole
    second is floored like the ctime text of alert.log, so both agree.
    """
    sec = math.floor(ts)
    usec = min(round((ts - sec) * 1_000_000), 999_999)
    key = (sec, time.tzname)
    last = _last_second
    if last[0] != key:  # (as alert_log.ctime_text: a burst shares its second)
        tm = time.localtime(sec)
        off = tm.tm_gmtoff or 0
        sign = "-" if off < 0 else "+"
        off_min = abs(off) // 60
        last[1] = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
        last[2] = f"{sign}{off_min // 60:02d}{off_min % 60:02d}"
        last[0] = key
    return f"{last[1]}.{usec:06d}{last[2]}"


_last_second: list = [None, "", ""]  # (second, tzname), its date and time, its offset


def payload_printable(data: bytes) -> str:
    """``data`` rendered like Suricata's payload_printable."""
    return bytes(data).translate(_PRINTABLE_TABLE).decode("ascii")


def proto_name(ip_proto: int, fallback: str = "") -> str:
    """The EVE "proto" text for an IP protocol number."""
    if ip_proto in PROTO_NAMES:
        return PROTO_NAMES[ip_proto]
    if ip_proto:
        return str(ip_proto)
    return fallback


def _is_v6(ip: str) -> bool:
    return ":" in ip


def _ip_proto_of(proto_text: str, ip_proto: int, src_ip: str) -> int:
    """The IP protocol number: ``ip_proto`` if set, else from the text."""
    if ip_proto:
        return ip_proto
    n = _TEXT_PROTOS.get(proto_text.upper(), 0)
    if n == IPPROTO_ICMP and _is_v6(src_ip):
        return IPPROTO_ICMPV6
    return n


def _addr_key(ip: str) -> bytes:
    # (inet_pton: the packed form ipaddress gives, a tenth of its cost)
    try:
        return _inet_pton(_AF_INET6 if ":" in ip else _AF_INET, ip)
    except (OSError, ValueError):
        return ip.encode("utf-8", "backslashreplace")


def flow_id(
    ip_proto: int, src_ip: str, dst_ip: str, src_port: int | None, dst_port: int | None
) -> int:
    """A stable 51-bit flow id, the same for both directions of the flow.

    BLAKE2b over the protocol and the two (address, port) endpoints in
    sorted order. Addresses are compared packed, so equal addresses written
    differently (``::1``, ``0::1``) give the same id. Never 0.
    """
    a = _addr_key(src_ip) + (src_port if src_port is not None else 0x10000).to_bytes(3, "big")
    b = _addr_key(dst_ip) + (dst_port if dst_port is not None else 0x10000).to_bytes(3, "big")
    lo, hi = (a, b) if a <= b else (b, a)
    h = hashlib.blake2b(digest_size=8)
    h.update(ip_proto.to_bytes(2, "big"))
    h.update(len(lo).to_bytes(1, "big") + lo)
    h.update(len(hi).to_bytes(1, "big") + hi)
    return (int.from_bytes(h.digest(), "big") & ((1 << FLOW_ID_BITS) - 1)) or 1


def community_id(
    ip_proto: int,
    src_ip: str,
    dst_ip: str,
    src_port: int | None = None,
    dst_port: int | None = None,
) -> str | None:
    """Community ID v1 (seed 0) of the flow, or None if it cannot be made.

    For ICMP and ICMPv6 ``src_port``/``dst_port`` are the message type and
    code, mapped to port equivalents by the communityid package's own
    tables (Zeek's). TCP, UDP and SCTP need both ports; other protocols use
    none.

    The hash is done here, not by ``communityid.CommunityID.calc``: that
    costs about 20 us a call (it validates and converts the tuple three
    times and formats it for a log message even with logging off), 30 times
    this; an ET ping flood of alerting frames spent 30% of its time there.
    The unit tests check this against the package on random tuples.
    """
    if not ip_proto or not src_ip or not dst_ip:
        return None
    try:
        fam = _AF_INET6 if ":" in src_ip else _AF_INET
        s = _inet_pton(fam, src_ip)
        d = _inet_pton(fam, dst_ip)
        head = _CID_HEAD.pack(0, ip_proto, 0)
        if ip_proto in _PORT_PROTOS or ip_proto in _ICMP_PROTOS:
            if src_port is None:
                return None
            sp = int(src_port)
            dp = int(dst_port) if dst_port is not None else 0
            one_way = False
            if ip_proto == IPPROTO_ICMP:
                sp, dp, one_way = _icmp4.get_port_equivalents(sp, dp)
            elif ip_proto == IPPROTO_ICMPV6:
                sp, dp, one_way = _icmp6.get_port_equivalents(sp, dp)
            if not one_way and (s > d or (s == d and sp > dp)):
                s, d, sp, dp = d, s, dp, sp
            data = head[:2] + s + d + head[2:] + _CID_PORTS.pack(sp, dp)
        else:
            if s > d:
                s, d = d, s
            data = head[:2] + s + d + head[2:]
    except (OSError, ValueError, TypeError, struct.error):
        return None
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def _flow_fields(
    obj: dict,
    ip_proto: int,
    proto_text: str,
    src_ip: str,
    dst_ip: str,
    src_port: int | None,
    dst_port: int | None,
) -> None:
    """src_ip, src_port, dest_ip, dest_port, proto (each only when known)."""
    if src_ip:
        obj["src_ip"] = eve_addr(src_ip)
    if src_port is not None:
        obj["src_port"] = src_port
    if dst_ip:
        obj["dest_ip"] = eve_addr(dst_ip)
    if dst_port is not None:
        obj["dest_port"] = dst_port
    proto = proto_name(ip_proto, proto_text)
    if proto:
        obj["proto"] = proto


@functools.lru_cache(maxsize=1024)
def eve_addr(ip: str) -> str:
    """An address as Suricata's EVE writes it: IPv6 in full, eight groups of
    four hex digits (``fe80:0000:...``), so jq filters and dashboards made
    for Suricata's output find the same text; IPv4 as given."""
    if ":" not in ip:
        return ip
    try:
        return ipaddress.IPv6Address(ip).exploded
    except ValueError:
        return ip


# pcap link types as Suricata names them in packet_info (DatalinkValueToName)
LINKTYPE_NAMES = {0: "NULL", 1: "EN10MB", 9: "PPP", 101: "RAW", 104: "C_HDLC",
                  113: "LINUX_SLL", 228: "IPv4", 229: "IPv6", 276: "LINUX_SLL2"}


def stamp_alerts(events, frame, linktype: int, pcap_cnt: int = 0) -> None:
    """At the capture edge, what an alert's EVE record says of the frame it
    was raised on: its number in the capture (``pcap_cnt``, when reading
    one), and the frame itself where the alert's packet is another one (a
    server's bytes read when the client's next packet came: Suricata's IDS
    mode logs the packet that made it inspect them). A flow's end raises
    alerts on no frame: they get neither."""
    for ev in events:
        if type(ev) is not Alert:
            continue
        ex = ev.extra
        if "pkt_src" in ex:
            continue
        if pcap_cnt:
            ex["pcap_cnt"] = pcap_cnt
        ref = ev.pkt
        if ref is not None and ref.raw is not frame and not _defragmented(ref):
            ex["frame"] = (frame, linktype)


def _defragmented(pkt) -> bool:
    """A datagram the defrag stage reassembled: its raw is its first
    fragment's frame."""
    raw, off = pkt.raw, pkt.l3_off
    if pkt.is_fragment or len(raw) < off + 8:
        return False
    if pkt.family == 4:
        return bool(raw[off + 6] & 0x3F | raw[off + 7])
    return pkt.family == 6 and _ipv6_fragment_header(raw, off) is not None


def packet_bytes(pkt) -> bytes:
    """The frame EVE's ``packet`` shows for a decoded packet: the captured
    frame, or for a reassembled IPv4 datagram what Suricata's defrag builds
    (the first fragment's link and IP headers, the length set, the fragment
    bits cleared, the checksum made again, the whole payload)."""
    raw = pkt.raw
    if not raw:
        return b""
    off = pkt.l3_off
    if not _defragmented(pkt):
        return bytes(raw)
    if pkt.family == 4:
        ihl = pkt.ip_hdr_len
        hdr = bytearray(raw[off:off + ihl])
        struct.pack_into("!H", hdr, 2, ihl + len(pkt.ip_payload))
        struct.pack_into("!H", hdr, 6, 0)
        struct.pack_into("!H", hdr, 10, 0)
        struct.pack_into("!H", hdr, 10, checksum(bytes(hdr)))
        return bytes(raw[:off]) + bytes(hdr) + bytes(pkt.ip_payload)
    pos, nh_at = _ipv6_fragment_header(raw, off)
    # the fragment header taken out, the header before it naming what it
    # named; the payload length counting the whole payload
    hdr = bytearray(raw[off:pos])
    hdr[nh_at - off] = raw[pos]
    struct.pack_into("!H", hdr, 4, len(hdr) - 40 + len(pkt.ip_payload))
    return bytes(raw[:off]) + bytes(hdr) + bytes(pkt.ip_payload)


def _ipv6_fragment_header(raw, off):
    """(where the Fragment header starts, where the next-header byte naming
    it is) in an IPv6 packet at ``off``, or None without one."""
    at = off + 6
    nh = raw[at]
    pos = off + 40
    while pos + 8 <= len(raw):
        if nh == 44:
            return pos, at
        if nh in (0, 43, 60):
            size = (raw[pos + 1] + 1) * 8
        elif nh == 51:
            size = (raw[pos + 1] + 2) * 4
        else:
            return None
        at = pos
        nh = raw[pos]
        pos += size
    return None


# --- records -------------------------------------------------------------


def alert_record(alert: Alert) -> dict:
    """The EVE object for ``alert`` (keys in the order written)."""
    rule = alert.rule
    ip_proto = _ip_proto_of(alert.proto, alert.ip_proto, alert.src_ip)
    is_icmp = ip_proto in _ICMP_PROTOS

    obj: dict = {"timestamp": eve_timestamp(alert.ts)}
    if is_icmp:
        obj["flow_id"] = flow_id(ip_proto, alert.src_ip, alert.dst_ip, None, None)
    else:
        obj["flow_id"] = flow_id(
            ip_proto, alert.src_ip, alert.dst_ip, alert.src_port, alert.dst_port
        )
    ex = alert.extra
    pcap_cnt = ex.get("pcap_cnt")
    if pcap_cnt:
        obj["pcap_cnt"] = pcap_cnt
    obj["event_type"] = "alert"
    pkt = alert.pkt
    if pkt is not None and pkt.vlan:
        # (the flow keys of tunnels and NSH paths that follow are no VLANs)
        ids = [v for v in pkt.vlan if type(v) is int]
        if ids:
            obj["vlan"] = ids
    if is_icmp:
        # Suricata writes no ports for ICMP, but the type and code.
        _flow_fields(obj, ip_proto, alert.proto, alert.src_ip, alert.dst_ip, None, None)
        if alert.icmp_type is not None:
            obj["icmp_type"] = alert.icmp_type
        if alert.icmp_code is not None:
            obj["icmp_code"] = alert.icmp_code
        cid = community_id(
            ip_proto, alert.src_ip, alert.dst_ip, alert.icmp_type, alert.icmp_code
        )
    else:
        _flow_fields(
            obj, ip_proto, alert.proto, alert.src_ip, alert.dst_ip,
            alert.src_port, alert.dst_port,
        )
        cid = community_id(
            ip_proto, alert.src_ip, alert.dst_ip, alert.src_port, alert.dst_port
        )
    if pkt is not None and pkt.family:
        obj["ip_v"] = pkt.family
    if cid is not None:
        obj["community_id"] = cid
    if "tx_id" in ex:
        obj["tx_id"] = ex["tx_id"]
    meta = getattr(rule, "meta", None) or {}
    obj["alert"] = {
        "action": alert.action,
        # Snort/Suricata rules carry their own gid; native rules are gid 1
        "gid": meta.get("gid", 1),
        "signature_id": rule.signature_id,
        "rev": rule.rev,
        "signature": rule.signature,
        "category": rule.category,
        "severity": rule.severity,
    }
    md = meta.get("metadata")
    if md:
        md = rule_metadata(tuple(md))
        if md:
            obj["alert"]["metadata"] = md
    target = meta.get("target")
    if target:
        # Suricata's source and target: the rule's target keyword names the
        # attacked side of this alert's packet
        ends = []
        for ip, port in ((obj.get("src_ip"), obj.get("src_port")),
                         (obj.get("dest_ip"), obj.get("dest_port"))):
            ends.append({"ip": ip} if port is None else {"ip": ip, "port": port})
        src, dst = ends if target == "dest_ip" else ends[::-1]
        obj["alert"]["source"], obj["alert"]["target"] = src, dst
    app = ex.get("app_proto")
    if app:
        obj["app_proto"] = app
    for key in ("http", "tls", "ssh", "smtp", "dns"):
        meta = ex.get(key)
        if meta:
            obj[key] = meta
    flow = pkt.flow if pkt is not None else None
    if flow is not None:
        # Suricata 7's alert: the packet's direction, the flow's counters
        # up to it and the flow's own orientation (its client first)
        start, to_server, pts, ptc, bts, btc = flow
        obj["direction"] = "to_server" if to_server else "to_client"
        f = {"pkts_toserver": pts, "pkts_toclient": ptc, "bytes_toserver": bts,
             "bytes_toclient": btc, "start": eve_timestamp(start)}
        if to_server:
            f["src_ip"], f["dest_ip"] = obj.get("src_ip"), obj.get("dest_ip")
            sp, dp = obj.get("src_port"), obj.get("dest_port")
        else:
            f["src_ip"], f["dest_ip"] = obj.get("dest_ip"), obj.get("src_ip")
            sp, dp = obj.get("dest_port"), obj.get("src_port")
        if sp is not None:
            f["src_port"], f["dest_port"] = sp, dp
        obj["flow"] = f
    obj["payload"] = base64.b64encode(alert.payload).decode("ascii")
    obj["payload_printable"] = payload_printable(alert.payload)
    stream = ex.get("stream")
    obj["stream"] = stream if stream is not None else (1 if alert.proto.upper() == "TCP" else 0)
    src = ex.get("pkt_src", "wire/pcap")
    if pkt is not None and src == "wire/pcap":
        # (a flow's end has no packet of its own: Suricata's pseudo packet)
        if "frame" in ex:
            frame, linktype = ex["frame"]
        else:
            linktype = pkt.linktype
            try:
                frame = packet_bytes(pkt)
            except (IndexError, ValueError, TypeError, struct.error):
                # (a header the decoder took but this cannot rebuild: the
                # frame as captured, rather than a lost alert)
                frame = bytes(pkt.raw)
        if frame:
            obj["packet"] = base64.b64encode(frame).decode("ascii")
            obj["packet_info"] = {"linktype": linktype,
                                  "linktype_name": LINKTYPE_NAMES.get(linktype, str(linktype))}
    obj["pkt_src"] = src
    return obj


@functools.lru_cache(maxsize=4096)
def rule_metadata(pairs: tuple) -> dict:
    """A rule's ``metadata`` (key, value) pairs as Suricata's alert writes
    them (``alert.metadata``, on by default): each key once, its values in
    a list, keys in case-blind order; values of one key last given first
    (Suricata prepends each pair, then sorts by key); a key without a
    value is left out. SIEM content reads ET's ``signature_severity``,
    ``attack_target``, ``created_at`` there."""
    items = [(k, v) for k, v in reversed(pairs) if k and v]
    items.sort(key=lambda kv: kv[0].lower())
    out: dict = {}
    last = None
    for k, v in items:
        low = k.lower()
        if low != last:
            last = low
            key = k
            out[key] = []
        out[key].append(v)
    return out


def anomaly_type(kind_name: str) -> str:
    """``anomaly.type`` from a NoticeKind name: decode, stream, defrag, ..."""
    prefix = kind_name.split("_", 1)[0]
    if prefix in ("DECODE", "CAPTURE"):
        return "decode"
    return prefix.lower()


def notice_record(notice: Notice) -> dict:
    """The EVE object for ``notice`` (keys in the order written)."""
    event_type = notice.kind.event_type
    ip_proto = _ip_proto_of(notice.proto, 0, notice.src_ip)
    obj: dict = {"timestamp": eve_timestamp(notice.ts)}
    if notice.src_ip and notice.dst_ip:
        obj["flow_id"] = flow_id(
            ip_proto, notice.src_ip, notice.dst_ip, notice.src_port, notice.dst_port
        )
    obj["event_type"] = event_type
    _flow_fields(
        obj, ip_proto, notice.proto, notice.src_ip, notice.dst_ip,
        notice.src_port, notice.dst_port,
    )
    obj[event_type] = {
        "type": anomaly_type(notice.kind.name),
        "event": notice.kind.name.lower(),
        "message": notice.message,
    }
    return obj


def event_record(event: Alert | Notice) -> dict:
    if isinstance(event, Alert):
        return alert_record(event)
    if isinstance(event, Notice):
        return notice_record(event)
    raise TypeError(f"not an Alert or Notice: {event!r}")


def format_eve(event: Alert | Notice) -> str:
    """One eve.json line for ``event``, newline included (pure ASCII)."""
    return _ENCODE(event_record(event)) + "\n"


# (one encoder: json.dumps with these arguments makes a new one a call)
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


class EveWriter:
    """Writes eve.json lines to an open text stream.

    The writer neither opens, flushes nor closes the stream.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, event: Alert | Notice) -> None:
        self.stream.write(format_eve(event))
