"""Detect stage for Snort/Suricata rules: a compiled rule set and its engine.

``SigRuleSet(rules)`` compiles ``SuricataRule`` objects (suricata_parser);
``SigEngine(ruleset)`` is fed by the pipeline and returns ``Alert`` events.
Sans-I/O like every stage: the pipeline calls

* ``begin(pkt)`` once per decoded packet, then ``packet(pkt)`` for the
  packet rules;
* ``stream_data(direction, data, pkt, gap)`` for each chunk of reassembled
  TCP data (``StreamData``) of a direction ``wants_stream`` said a rule may
  read, and ``after_tcp(pkt)`` once the reassembler has handled the segment;
* ``stream_end(direction)`` once its stream ended (its receiver read the
  FIN, or a reset closed the connection): what its parsers hold until the
  end (a close-delimited response body, a request cut short) is inspected
  then, not when the session leaves the table a closed timeout later;
* ``end_direction(direction)`` when its session ended (what it still holds
  is inspected then, as at the end of input), ``flush()`` at the end of
  input.

Where each rule runs (Suricata's split, detect-engine-build.c):

* "stream" rules -- ``tcp``/``tcp-stream`` (and ``http`` etc. without a
  sticky buffer) with payload elements on the default buffer and neither
  ``dsize`` nor ``flags`` nor ``flow:no_stream`` -- inspect reassembled
  stream data. Suricata's IDS mode inspects a direction's raw stream once
  the receiver has ACKed it, on that direction's next packet, and again at
  the end of the flow; so does this engine: chunks pile up per direction
  and are inspected when ``direction.wup`` (the receiver's last ACK) covers
  them, when 32 KiB are pending, when the session ends and at ``flush``. Offsets (``depth``...)
  count from the start of the inspected chunk, as in Suricata, which is why
  e.g. two SMB requests each anchored with ``depth:8`` alert twice. A match
  spanning two chunks is still found: when the chunk alone does not match,
  the last ``TAIL`` bytes before it are prepended, and the rule alerts if
  that window matches while the tail alone does not (the tail's own matches
  were counted with the earlier chunk).
* "http" rules -- any ``http.*``/``file.data`` buffer or ``urilen`` -- run
  once per transaction
  of flows detected as HTTP by content (``applayer.detect.probe``), not by
  port. Request rules when the request is complete (or at the end of
  input), on ``detect.http.HttpRequestParser``'s request; response rules
  ("http-resp": a response buffer such as ``http.stat_code``, or
  ``flow:to_client``, or ``file.data`` without ``flow:to_server``) when
  ``applayer.http_response.HttpResponseParser`` returns the response, which
  is paired with the request it answers so ``http.uri`` still reads the
  request (an interim 100 Continue answers none: it is one transaction
  with the final response after it, as libhtp has it). The prefilter
  scans one side's fast-pattern buffers joined in one pass.
* The server's side is read in one piece per batch once its protocol is
  known: its deliveries wait for the client's next packet and are read
  before it (``read_deferred``), or at a gap, a rewrite, the stream's end,
  ``DEFER_MAX`` bytes or the end of input; their alerts name the batch's
  last segment. A response of seven segments is prefiltered and parsed
  once, still before the request that follows it, and its raw bytes are
  pending before the ACK that lets them be inspected arrives.
* "dns" rules (``dns.query``/``dns_query``) run once per query name of each
  DNS request over UDP port 53 (``applayer.dns.parse_dns``) and, for
  ``alert dns``/``alert tcp`` ones, of each request framed from a TCP
  stream to port 53 (``DnsTcpFramer``); a rule alerts at most once per
  packet.
* "tls" rules (``tls.sni``, ``tls.cert_subject``/``issuer``/``serial``/
  ``fingerprint``) run on flows detected as TLS by content when
  ``applayer.tls.TlsParser`` reads the ClientHello (SNI) or the server's
  first certificate, with every TLS buffer known so far; each rule
  matches at most once per flow (Suricata's one TLS transaction).
* "tls-state" rules (``ssl_state``/``ssl_version``/``tls.version``, no
  sticky buffer) run on each TLS record of their direction
  (``TlsParser(records=True)``) until they alert, once per direction:
  the flow's handshake state (``_TlsState``) and the direction's version
  must fit, and their payload contents read the record, header included
  (ET's POODLE rules anchor ``|16 03 00|`` at depth 3).
* "smtp" rules (``file.data`` of ``alert smtp``) run once per attachment
  of each mail the client sends (``applayer.smtp.SmtpParser``: DATA and
  BDAT, dot-unstuffed, MIME-decoded), when the mail ends or the session
  does. Rules of the envelope alone (``smtp.helo``, ``smtp.mail_from``,
  ``smtp.rcpt_to``, one recipient at a time) run at each of those commands
  and alert once per mail (``_SmtpTx``).
* "ssh" rules (``ssh.proto``/``ssh.software``) run once per direction on
  its identification line; those reading a HASSH (``ssh.hassh[.string]``
  of the client, ``ssh.hassh.server[.string]`` of the server) once, on
  the direction's KEXINIT (``applayer.ssh.SshParser``). ``ftpbounce`` is a
  check of whatever kind its rule is: a PORT command of the inspected bytes
  naming another address than the client's.
  Rules of other app-layer buffers are compiled as "app" rules that never
  match yet; the CLI names them at load (``SigRuleSet.inert``).
* "event" rules (``decode-event``/``stream-event``) match the notices the
  pipeline raised for a packet, via ``pakemon.detect.eventmap`` when it
  exists (otherwise they never match).
* everything else is a "packet" rule: the packet payload (``dsize`` is its
  size). One of an app protocol (``alert http`` with no payload keyword)
  matches the packets of flows of that protocol once the bytes that told
  it were ACKed (``FlowState.pkt_app``), as Suricata's IDS mode counts it.

Prefilter: per inspection kind (packet rules per IP protocol, stream,
HTTP requests, HTTP responses, DNS names) one multi-pattern matcher of every
rule's fast pattern (the fast_pattern content, else the longest non-negated
one), all caseless: the full check is exact, so folding (and scanning an
HTTP transaction's buffers joined) only adds candidates. The matcher is
hyperscan when installed (Suricata's own; ~0.6 ns per byte on segments,
each pattern reported once per scan), else pyahocorasick (8-13 ns per byte
however few its patterns; a group of at most ``FEW`` patterns then tests
them with ``in``). ``PAKEMON_MATCHER`` picks one.

Views (Suricata's per-direction, per-port rule groups, made on demand): a
TCP direction, and each direction of a UDP flow, gets the groups cut down
to the rules whose header can fit it -- addresses, ports, flow:to_server /
to_client, and, once the flow's app protocol is probed, its app -- each
with its own matcher, shared by every flow with the same rules
(``SigRuleSet.view``: keyed by the address and port intervals between the
rules' range bounds, so a random client port costs a bisect, not a walk
over 18,000 rules). A view is only a superset (the full check still reads
the header), so alerts are those of the whole groups (tested); what it
saves is scanning (ET's $EXTERNAL_NET rules on internal traffic), the
HTTP response parser and body scan of directions no response rule can
apply to, and per-packet work on segments with no rule for them. A
response group records whether one of its rules reads the body
(``file.data``/``http.response_body``): where none does, the parser frames
bodies without keeping or decompressing them. A direction's view and its
``to_server`` side are kept on its ``DirState`` (the side never changes
once the session exists; the view is made again only when the flow's app
protocol becomes known), so an empty segment with no payload-less packet
rule in its view leaves ``packet`` after a few attribute reads.

Per-byte scanning is still the cost that matters, so: a TCP segment
delivered in order as it came is scanned once for both stream and packet
rules (the view's ``merged`` matcher; a server's segment, whose delivery
waits, is scanned for packet rules alone as it comes, its batch later with
the merged matcher); stream candidates are gathered as
bytes are delivered (each delivery scanned with the last bytes of the one
before, for patterns across the two) and used when the chunk is inspected;
without hyperscan, packet groups keep one automaton per dsize interval,
holding only the rules the payload's size can match (ET: 480 of 495 TCP
packet rules with content have a dsize). Rules without a usable content are
always candidates, cached per protocol and the port interval they restrict.
Only candidates get the full check: header (addresses, ports, direction),
flow, the non-payload options, flowbits, then ``sigmatch.inspect_buffer``
for each buffer's elements.

Order and counting: rules run in Suricata's order (pass rules first, then
by flowbits dependency: a rule setting a bit before a rule testing it,
then file order), so a bit set on a packet is visible to later rules on the
same packet. A sid alerts at most once per packet (or inspected chunk or
transaction); a matching pass rule stops the alerts of that inspection and
passes the whole flow (Suricata 7's flow scope). threshold/detection_filter
follow Suricata's detect-engine-threshold.c counters (limit: the first N in
each period; threshold: every Nth; both: once at the Nth; detection_filter:
from the N+1th on).

Other Suricata details kept: ``to_server`` is the side that sent the SYN
(a connection picked up midstream whose first sender used a port below
1024 toward an ephemeral one is taken as reversed, as Suricata reverses it
once the protocol is seen); ``flow:established`` on a packet reads the
session state before that packet (the handshake's last ACK is not
established); ICMP payload is what follows the 8-byte header; a ``dsize``
other than ``<``/``<=`` (or ``=0``) needs a payload (Suricata's signature
mask), so ``dsize:!9`` skips empty segments. Deviation: a stream match
across two inspected chunks is found (Suricata would miss it), with the
last 2 KB before the chunk; a whole earlier match in those bytes does not
hide it where the rule's buffer is contents only (``_new_across``), but
does where it has a negation, an anchor, a pcre or a byte test.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import struct
import time
import zlib
from collections import Counter, OrderedDict
from contextlib import contextmanager

try:
    import ahocorasick
except ImportError:  # pragma: no cover - a dependency; the engine degrades
    ahocorasick = None
try:  # Suricata's own multi-pattern matcher, when installed
    import hyperscan
except ImportError:  # pragma: no cover - optional
    hyperscan = None

from ..applayer.detect import PROBE_LIMIT
from ..applayer.detect import probe as _app_probe
from ..applayer.detect import probe_dns_udp
from ..applayer.dns import DnsTcpFramer, parse_dns
from ..applayer.dns import eve_object as _dns_eve
from ..applayer.http_response import BODY_LIMIT, HttpResponseParser
from ..applayer.smtp import SmtpParser
from ..applayer.ssh import SshParser, hassh
from ..applayer.tls import TlsParser
from ..decode import format_addr
from ..events import Alert, PacketRef
from ..events import eve_text as _eve_text
from .http import HttpRequestParser
from .files import FileInfo, disposition_name, file_ok, request_files, uri_path
from .http_normalize import normalize_uri
from .iprep import iprep_ok
from .rules import PortSpec, Rule
from .suricata_parser import (COMPARE, Base64Decode, ContentMatch, DatarepCheck, DatasetCheck,
                              IsDataAt)

from . import sigmatch
from .sigmatch import b64_decode, inspect_buffer

try:
    from .eventmap import EVENT_MAP
except ImportError:  # pragma: no cover
    EVENT_MAP = None

# Fast patterns this long or shorter are tested with ``in`` instead of the
# automaton. Measured on bench/out/mixed-120000.pcap with ET Open: 0 (all in
# the automaton) 2.7 s, 2 -> 3.2 s, 3 -> 3.6 s per 30,000 frames; so off.
SHORT = 1
# A group of at most FEW fast patterns tests each with ``in`` rather than
# scanning with an automaton: pyahocorasick costs 8-13 ns per byte however few
# its patterns (the per-byte step and the str the bytes become), ``in`` about
# 0.25 ns per byte and pattern (measured on random bodies, 2-20 byte
# patterns), so up to a few dozen patterns ``in`` wins; the views of ET make
# many such groups (5 response-body patterns where a flow's addresses fit).
FEW = 16
# A fast pattern is at most this long: a longer content's first FP_MAX bytes
# (a prefilter may say more than the rule matches, never less). Whole, a
# 200,000-byte content made hyperscan refuse its group ("Pattern length
# exceeds limit") on every frame, and the stream prefilter keep the
# pattern's length of every direction's last bytes.
FP_MAX = 255
# Which multi-pattern matcher the groups use: "hyperscan" (about 0.6 ns per
# byte on segment-sized blocks, 20 times pyahocorasick; a caseless
# single-match database reports each pattern once per scan, so the Python
# callback runs per distinct pattern found, not per occurrence) or
# "ahocorasick". Tests set it to compare both; PAKEMON_MATCHER=ahocorasick
# picks pyahocorasick where hyperscan is installed (to measure it).
BACKEND = "hyperscan" if hyperscan is not None else "ahocorasick"
if os.environ.get("PAKEMON_MATCHER") in ("hyperscan", "ahocorasick"):
    BACKEND = os.environ["PAKEMON_MATCHER"]


class _Multi:
    """Which of ``pats`` (case-folded bytes) occur in a buffer, caseless.

    ``found(data)`` gives the pattern indexes. With hyperscan the bytes are
    scanned as they are; with pyahocorasick they are lowered and decoded
    (latin-1: one code point per byte, as ruletree does)."""

    __slots__ = ("db", "auto", "pats", "plain")

    # groups hyperscan refused (the group then takes pyahocorasick, or
    # ``in`` per pattern without it)
    refused = 0

    def __init__(self, pats):
        # compiled on first use: of ET's groups only those some traffic
        # needs are ever built (a view's, the datagram ones)
        self.db = self.auto = self.plain = None
        self.pats = list(pats)

    def _compile(self):
        pats = self.pats
        if _hs():
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            exprs = [b"".join(b"\\x%02x" % c for c in p) for p in pats]
            try:
                db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
                           flags=hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH)
                self.db = db
            except hyperscan.error:
                _Multi.refused += 1
        if self.db is None:
            if ahocorasick is not None:
                a = ahocorasick.Automaton()
                for i, p in enumerate(pats):
                    a.add_word(p.decode("latin-1"), i)
                a.make_automaton()
                self.auto = a
            else:
                self.plain = pats
        self.pats = None

    def found(self, data, low=None) -> set:
        if self.pats is not None:
            self._compile()
        if self.db is not None:
            out = set()
            self.db.scan(data if type(data) is bytes else bytes(data),
                         match_event_handler=_on_match, context=out)
            return out
        if low is None:
            low = bytes(data).lower()
        if self.plain is not None:
            return {i for i, p in enumerate(self.plain) if p in low}
        return {v for _, v in self.auto.iter(low.decode("latin-1"))}


def _hs() -> bool:
    return hyperscan is not None and (BACKEND == "hyperscan" or ahocorasick is None)


def _few(n: int) -> bool:
    """Whether n fast patterns are tested with ``in`` rather than a matcher."""
    return n <= FEW and not _hs()


def _on_match(idx, _start, _end, _flags, out):
    out.add(idx)


_MATCHER = ahocorasick is not None or hyperscan is not None
TAIL = 2048  # bytes of the previous chunk kept for matches across chunks
PROBE_BLANK = 4096  # leading CR/LF bytes the app probe looks past
# bytes a direction that named no protocol keeps while the other direction
# may still name one (a request head's worth; past it the flow is none:
# bounded so, a flood of silent connections holds 32 MB at most)
HOLD_MAX = 2048
DNS_PORT = 53
TLS_RAW_MAX = 64 * 1024  # handshake bytes kept per direction for TLS rules' payload contents
PENDING_MAX = 32 * 1024  # inspect unacknowledged stream data past this much
# The server's deliveries wait for the client's next packet before they are
# read (SigEngine.stream_data), up to this much
DEFER_MAX = 64 * 1024
PACKET_COST = 400  # a decoded Packet object beside its bytes (held())
# A direction's state beside its bytes (held()): the DirState, its share of
# the flow and their sets, lists and parsers' objects; measured with
# tracemalloc on bench/floods.py's connection flood, where sessions with it
# held 9.2 KB against 5.9 KB without (bench/suricata-http.rules)
DIRSTATE_COST = 1536
CACHE_MAX = 8192
# Restricted groups compiled at most, from then on a new view takes its
# kind's whole group. Each costs a hyperscan compile (~30 ms with ET: most
# of a group is the rules with any port), and traffic spread over the
# rules' port and address intervals asks for a new one per view: a sweep of
# ET's 384 port intervals from one address made 114 (3.2 s), traffic made
# from every ET rule 380 (13 s), stalls a live sensor cannot afford. A
# whole group is compiled once (50-120 ms), but a view of it is slower on
# ordinary traffic (every rule of the kind is a candidate: the bench
# capture with ET through whole groups only, 25.7k frames per CPU second
# against 37.6k), so the budget refills: one more compile per
# COMPILE_REFILL_S of running time (0.3% of a CPU at most).
COMPILE_BUDGET = 64
COMPILE_REFILL_S = 10.0
AIDX_MAX = 16384  # addresses whose interval is remembered (~1.6 MB at most)
FLOWS_MAX = 65536
THRESH_MAX = 65536
XBITS_MAX = 65536  # xbits kept (host or address-pair bits), the least recently set go first
# Directions with bytes or requests waiting for inspection, at most: past it
# the oldest are inspected at once (a live sensor sees connections vanish
# without FIN; their pending bytes must not be held forever).
WAITING_MAX = 20000

_PROTO_NUM = {"tcp": 6, "tcp-pkt": 6, "tcp-stream": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
_TLS_BUFS = frozenset({"tls.sni", "tls.cert_subject", "tls.cert_issuer", "tls.cert_serial",
                       "tls.cert_fingerprint", "ja3.hash", "ja3.string", "ja3s.hash",
                       "ja3s.string", "tls.random", "tls.random_time", "tls.random_bytes",
                       "tls.cert_chain_len"})
_TCP_APP = frozenset({"http", "tls", "ssh", "ftp", "smtp", "smb", "dcerpc", "imap", "pop3"})
_PROTO_NAMES = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMP"}
_PKT_PROTOS = (6, 17, 1, 58, 0)  # 0: any other IP protocol
_IP_LEVEL = frozenset({"ip", "ipv6", "pkthdr"})  # header protocols of every IP packet

def _inspect(elements, data, env=None) -> bool:
    return inspect_buffer(elements, data, env)


def _inspect_some(elements, data, env=None) -> bool:
    """``_inspect`` of a transformed buffer: None (a transform failed)
    matches nothing, not even a negated content."""
    return data is not None and inspect_buffer(elements, data, env)


def _addr_key(raw: bytes) -> int:
    if len(raw) == 4:
        return int.from_bytes(raw, "big")
    return (1 << 32) + int.from_bytes(raw, "big")


class _Addr:
    """AddressSpec as two parallel lists, for bisect on an int key."""

    __slots__ = ("any", "los", "his")

    def __init__(self, spec):
        self.any = spec.any
        self.los = [lo for lo, _ in spec.ranges]
        self.his = [hi for _, hi in spec.ranges]

    def has(self, key: int) -> bool:
        if self.any:
            return True
        i = bisect.bisect_right(self.los, key) - 1
        return i >= 0 and key <= self.his[i]


_ADDR_CACHE: dict = {}


def _addr(spec) -> _Addr:
    """Compiled address specs, shared by text: ET writes $HOME_NET 18,000
    times and each expansion is the same range list (one vars per load)."""
    key = (spec.text, len(spec.ranges), spec.ranges[:1], spec.ranges[-1:])
    a = _ADDR_CACHE.get(key)
    if a is None:
        a = _Addr(spec)
        if len(_ADDR_CACHE) < 4096:
            _ADDR_CACHE[key] = a
    return a


class SigRule:
    """One compiled rule (``idx`` is its place in the evaluation order)."""

    __slots__ = ("idx", "src", "rule", "kind", "ipproto", "app", "dns_tcp", "saddr", "daddr",
                 "sport", "dport", "bidir", "anyports", "anyaddrs", "buffers", "fp", "fp_buffer",
                 "xf", "xsets", "xchecks", "imods", "ichecks", "sets", "checks", "event_kinds",
                 "flow", "sid", "pass_", "env", "absent", "files", "reads_hassh", "smtp_env")

    def __init__(self, r, rule: Rule):
        self.src = r
        self.rule = rule
        self.sid = (r.gid, r.sid)
        self.pass_ = r.action == "pass"
        self.ipproto = _PROTO_NUM.get(r.proto)  # None: any IP protocol
        app = r.app_proto
        if app is None and r.proto == "http":
            app = "http"
        bufs: dict = {}
        for e in r.elements:
            bufs.setdefault(getattr(e, "buffer", None), []).append(e)
        # ``absent`` buffers (Suricata 8): inspected even with nothing of their own
        self.absent = getattr(r, "absent", None) or None
        for b in self.absent or ():
            bufs.setdefault(b, [])
        # file keywords: checked per file with the rule's file.name contents
        # (a filestore rule is a file rule too: its alert needs the files)
        self.files = getattr(r, "files", ()) or ()
        if self.files or getattr(r, "filestore", None) is not None:
            bufs.setdefault("file.name", [])
        if getattr(r, "tls_chain_len", None) is not None:
            # (the server's certificate message: its count stands as a buffer)
            bufs.setdefault("tls.cert_chain_len", [])
        self.buffers = tuple((b, tuple(es)) for b, es in bufs.items())
        self.reads_hassh = not _HASSH_BUFS.isdisjoint(bufs)
        self.smtp_env = bool(bufs) and set(bufs) <= _SMTP_ENV_BUFS  # no file buffer
        app_bufs = [b for b in bufs if b is not None and b not in HDR_BUFFERS]
        if any(b.startswith("http.") or b in _FILE_BUFFERS for b in app_bufs) or \
                r.urilen is not None:
            app = app or "http"
        self.app = app
        self.dns_tcp = False
        if app in _TCP_APP or app == "http":
            self.ipproto = 6
        elif app == "dns" and self.ipproto is None:
            self.ipproto = None  # DNS over UDP and TCP
        ipp = r.ip_proto
        if self.ipproto is None and r.proto in _IP_LEVEL and ipp is not None and ipp.op == "=":
            # ip_proto:N narrows an ``ip`` rule to protocol N, as Suricata's
            # setup narrows the signature's protocol: ET's 6in4 rule
            # (ip_proto:41, no content) was checked on every packet from
            # $HOME_NET, 73,820 of the bench capture's with the clients home
            self.ipproto = ipp.value
        self.flow = r.flow
        if r.decode_events or r.stream_events:
            self.kind = "event"
        elif app == "http" and (app_bufs or bufs and None not in bufs or r.urilen is not None):
            # (a payload-less ``alert http`` rule is a packet rule of HTTP
            # flows: Suricata matches it on every packet once the flow's app
            # protocol is known, not once per transaction)
            self.kind = "http-resp" if _response_rule(r, app_bufs) else "http"
        elif app == "dns" and set(app_bufs) <= {"dns.query"} and (
                app_bufs or getattr(r, "dns_opcode", None) is not None):
            # per query name of a DNS request; a rule without dns.query
            # (dns.opcode alone) once per message, responses too
            self.kind = "dns"
            # over UDP (the views, ports and kernel maps see it as UDP) and,
            # for ``alert dns``/``alert tcp``, over TCP too (``dns_tcp``)
            self.dns_tcp = r.proto in ("dns", "tcp")
            self.ipproto = 17 if r.proto in ("dns", "udp") else self.ipproto
        elif app == "tls" and app_bufs and set(app_bufs) <= _TLS_BUFS and not _tls_state_kw(r):
            # once per handshake fact (ClientHello, certificate); payload
            # contents read the direction's handshake bytes
            self.kind = "tls"
        elif app == "tls" and not app_bufs and _tls_state_kw(r):
            # per TLS record of the direction, with the flow's handshake
            # state and version; payload contents read the record
            self.kind = "tls-state"
        elif app == "smtp" and app_bufs and set(bufs) <= _FILE_BUFFERS | _SMTP_ENV_BUFS:
            # per attachment of a mail (decoded), file.data/file.name; a rule
            # of the envelope alone once per mail, when its commands come
            self.kind = "smtp"
        elif app == "ssh" and app_bufs and set(bufs) <= _SSH_BUFS:
            self.kind = "ssh"  # once per direction, on its identification line
        elif app_bufs or _tls_state_kw(r):
            self.kind = "app"  # other app-layer buffers: never match yet
        elif (None in bufs and r.proto in ("tcp", "tcp-stream", "http") or
              (None in bufs and app in _TCP_APP)) and r.dsize is None and r.flags is None and \
                getattr(r, "header", None) is None and getattr(r, "ip_id", None) is None and \
                not HDR_BUFFERS.intersection(bufs) and \
                not (r.flow is not None and r.flow.no_stream):
            # (header keywords test one packet: like dsize and flags, they
            # make the rule a packet rule, as Suricata's REQUIRE_PACKET)
            self.kind = "stream"
        else:
            self.kind = "pkt"
        if r.proto == "tcp-stream" and self.kind == "pkt":
            self.kind = "stream" if None in bufs else "pkt"
        self.saddr = _addr(r.src)
        self.daddr = _addr(r.dst)
        self.sport = r.src_port
        self.dport = r.dst_port
        self.bidir = r.bidirectional
        self.anyports = self.sport.any and self.dport.any
        self.anyaddrs = self.saddr.any and self.daddr.any
        self.sets = tuple(f for f in r.flowbits if f.cmd in ("set", "unset", "toggle"))
        self.checks = tuple(f for f in r.flowbits if f.cmd in ("isset", "isnotset"))
        fi = getattr(r, "flowints", ())
        self.imods = tuple(x for x in fi if x.op in ("=", "+", "-")) or None
        self.ichecks = tuple(x for x in fi if x.op not in ("=", "+", "-")) or None
        xb = getattr(r, "xbits", ())
        self.xsets = tuple(x for x in xb if x.cmd in ("set", "unset", "toggle")) or None
        self.xchecks = tuple(x for x in xb if x.cmd in ("isset", "isnotset")) or None
        kinds = set()
        if EVENT_MAP is not None:
            for name in r.decode_events + r.stream_events:
                kinds |= set(EVENT_MAP.get(name, ()))
                kinds |= set(EVENT_MAP.get(name.split(".", 1)[-1], ()))
        self.event_kinds = frozenset(kinds)
        self.fp, self.fp_buffer = _fast_pattern(r)
        self.xf = getattr(r, "transforms", None) or None  # buffer -> transforms
        self.env = any(type(e).__name__ in ("ByteExtract", "ByteMath") for e in r.elements)

    def ports_fit(self, sport: int, dport: int) -> bool:
        if sport in self.sport and dport in self.dport:
            return True
        return self.bidir and dport in self.sport and sport in self.dport

    def addrs_fit(self, skey: int, dkey: int) -> bool:
        if self.saddr.has(skey) and self.daddr.has(dkey):
            return True
        return self.bidir and self.saddr.has(dkey) and self.daddr.has(skey)


_SMTP_ENV_BUFS = frozenset({"smtp.helo", "smtp.mail_from", "smtp.rcpt_to"})
_HASSH_BUFS = frozenset({"ssh.hassh", "ssh.hassh.string", "ssh.hassh.server",
                         "ssh.hassh.server.string"})
_SSH_BUFS = frozenset({"ssh.proto", "ssh.software"}) | _HASSH_BUFS


def _reads_dns_query(sr) -> bool:
    return any(b == "dns.query" for b, _ in sr.buffers)


def _tls_state_kw(r) -> bool:
    """The rule tests the TLS flow's handshake state or version."""
    return bool(getattr(r, "ssl_version", ()) or getattr(r, "ssl_state", ())
                or getattr(r, "tls_version", None))

_PER_HEADER = frozenset({"http.request_header", "http.response_header"})

_RESPONSE_BUFFERS = frozenset({
    "http.stat_code", "http.stat_msg", "http.response_line", "http.response_header",
    "http.response_header.raw", "http.response_body", "http.server", "http.location"})


def _response_rule(r, bufs) -> bool:
    """Whether an HTTP rule inspects the response (Suricata: its buffers, or
    flow:to_client; file.data is the response body, and file.name its file,
    unless flow:to_server)."""
    if any(b in _RESPONSE_BUFFERS for b in bufs):
        return True
    f = r.flow
    if f is not None and f.to_client:
        return True
    return any(b in _FILE_BUFFERS for b in bufs) and not (f is not None and f.to_server)


# the buffers of files (an HTTP body, an SMTP attachment)
_FILE_BUFFERS = frozenset({"file.data", "file.name"})
# (file.name: whether a response has a file, its size, digest or magic)
_BODY_BUFFERS = frozenset({"file.data", "http.response_body", "file.name"})


def _reads_body(rules, idxs) -> bool:
    """Whether one of the rules ``idxs`` reads a response body (a raw
    content of a response rule may lie in it too: ``RAW_TX``)."""
    for i in idxs:
        for name, _ in rules[i].buffers:
            if name is None or name in _BODY_BUFFERS:
                return True
    return False


# The bytes a raw (bufferless) content of an HTTP rule is matched against:
# the transaction as it came, start line, headers, blank line and body.
# Suricata matches a rule's payload contents beside its HTTP buffers on the
# raw stream of the direction, so they may lie in the body (ET: content:
# "|0d 0a 0d 0a|MZ" beside http_method), not only in the start line and
# headers (``http.start``), which alone missed those rules (found by
# tests/e2e/et_synth.py).
RAW_TX = "raw.tx"


def _raw_buffer(kind: str) -> str:
    """The buffer a raw content (and its fast pattern) is read in, for a
    buffer-rule kind: RAW_TX for HTTP, else the start bytes ("http.start":
    a TLS direction's handshake bytes, an SMTP or SSH line)."""
    return RAW_TX if kind == "http" or kind == "http-resp" else "http.start"


# Suricata's fast-pattern priority by buffer (lower first): the payload and
# the method, status code and message (short, common: "GET", "200") come
# after the other app-layer buffers (docs: "Fast Pattern Determination
# Explained", Appendix B)
_FP_LATE = frozenset({None, "http.method", "http.stat_code", "http.stat_msg"})


def _pattern_strength(pat: bytes) -> int:
    """Suricata's PatternStrength: diverse bytes score higher, a repeat 1."""
    seen = set()
    score = 0
    for c in pat:
        if c in seen:
            score += 1
        else:
            seen.add(c)
            ch = chr(c)
            score += 3 if ch.isascii() and ch.isalpha() else \
                4 if 32 <= c < 127 or c in (0, 1, 255) else 6
    return score


def _fast_pattern(r):
    """(folded bytes, buffer) of the rule's prefilter content, or (None, None).

    The content marked fast_pattern (chopped if so); else, as Suricata
    picks within a rule, among the non-negated contents of the first
    priority (an app-layer buffer before the payload and http.method, see
    _FP_LATE), the longest, then the strongest, then the first. At most
    FP_MAX bytes of it. (The longest of all, whatever its buffer, took
    ET 2009949's ``content:"GET "; depth:4`` over its ``uricontent:".pl~"``:
    a candidate on every GET.)"""
    best = key = None
    xf = getattr(r, "transforms", None)
    for e in r.elements:
        if not isinstance(e, ContentMatch) or e.negated or not e.pattern or \
                e.buffer in HDR_BUFFERS:  # (the prefilter reads payloads, not headers)
            continue
        pat = e.pattern
        if xf and e.buffer in xf:
            # the prefilter scans the buffer as it is: a content of a
            # transformed one serves only where the transform keeps it findable
            pat = _untransformed(pat, xf[e.buffer])
            if not pat:
                continue
        if e.fast_pattern:
            if e.fast_pattern_chop and pat is e.pattern:
                o, n = e.fast_pattern_chop
                pat = pat[o:o + n] or pat
            return pat[:FP_MAX].lower(), e.buffer
        k = (e.buffer not in _FP_LATE, len(pat), _pattern_strength(pat))
        if best is None or k > key:
            best, key = (pat, e.buffer), k
    if best is None:
        return None, None
    return best[0][:FP_MAX].lower(), best[1]


def _untransformed(pat: bytes, chain) -> bytes | None:
    """Bytes that must be in a buffer whose ``chain`` of transforms yields
    ``pat`` somewhere, for the prefilter (which folds case); None if the
    chain leaves none (whitespace, decoding, hashes, xor, dropped lines).
    A subslice is a piece of the buffer, header_lowercase changes case."""
    for name, _arg in chain:
        if name == "dotprefix":
            pat = pat[1:] if pat.startswith(b".") else pat
        elif name not in ("to_lowercase", "to_uppercase", "subslice", "header_lowercase"):
            return None
    return pat or None


def native_rule(r, classifications=None) -> Rule:
    """The native ``Rule`` the outputs render for a Suricata rule."""
    sev = r.priority
    if sev is None and classifications:
        sev = classifications.get(r.classtype)
    proto = {"tcp-pkt": "tcp", "tcp-stream": "tcp", "icmpv6": "icmp", "ipv6": "ip",
             "pkthdr": "ip"}.get(r.proto, r.proto)
    if proto not in ("tcp", "udp", "icmp", "ip"):
        proto = "tcp" if r.proto in _TCP_APP or r.proto == "http" else proto
    sport = r.src_port if isinstance(r.src_port, PortSpec) else PortSpec("*")
    dport = r.dst_port if isinstance(r.dst_port, PortSpec) else PortSpec("*")
    return Rule(
        name=f"sid:{r.sid}" if r.gid == 1 else f"gid:{r.gid}:sid:{r.sid}",
        proto=proto, src=sport, dst=dport, patterns=(), file=r.file, line=r.line,
        sid=r.sid, rev=r.rev, msg=r.msg, severity=sev if sev is not None else 3,
        category=r.classtype,
        meta={"format": "suricata", "action": r.action, "gid": r.gid,
              "references": list(r.references), "metadata": list(r.metadata),
              "target": getattr(r, "target", None)})


class _Group:
    """The rules of one inspection kind: an automaton and the always-candidates."""

    def __init__(self):
        self.patterns: dict = {}  # folded bytes -> [rule idx]
        self.always: list = []
        self.auto = None
        self.cache: OrderedDict = OrderedDict()
        self.short: list = []  # (pattern, rule idxs) tested with ``in``
        self.rules_of: list = []  # automaton value -> rule idxs
        self.scan = False
        self.longest = 1
        self.cuts = None  # size_split: dsize interval bounds
        self.by_size: dict = {}
        # packet groups: rule idx -> (dsize, lo, hi) of the rules whose
        # payload length is bounded (dsize, absolute isdataat), see _sized_out
        self.sized: dict = {}
        self.free = None  # always-candidates of any protocol and port (made lazily)
        self.bound: list = []
        self.pcuts: list = []
        self.s_only: list = []
        self.both = False
        self.buffers: tuple = ()  # http groups: the fast-pattern buffers, joined to scan
        # response groups: whether a rule reads the body (file.data,
        # http.response_body); if none does, bodies are framed, not kept
        self.needs_body = True

    def restricted(self, keep, rules, raw: str | None = None):
        """This group cut down to the rules in ``keep`` (a view's), with an
        automaton of their fast patterns only: a small automaton is scanned
        about four times faster per byte than ET's whole one (cache misses
        dominate pyahocorasick's cost; measured 8.5 against 34 ns/byte), and
        most bytes meet no pattern of the rules that can apply to them."""
        g = _Group()
        for pat, idxs in self.patterns.items():
            k = [i for i in idxs if i in keep]
            if k:
                g.patterns[pat] = k
        g.always = [i for i in self.always if i in keep]
        if not g.patterns and not g.always:
            return None
        g.sized = self.sized  # (by rule idx: the view's are among them)
        if raw is not None:  # (a buffer-rule group: raw fast patterns are read in ``raw``)
            g.buffers = tuple(sorted({rules[i].fp_buffer or raw
                                      for idxs in g.patterns.values() for i in idxs}))
            g.needs_body = _reads_body(rules, keep)
        g.build()
        if self.cuts is not None and g.auto is not None and not _hs():
            g.size_split(rules)
        return g

    def build(self):
        if self.patterns and _MATCHER:
            # The matcher reports a pattern number, so repeated hits of one
            # pattern cost a set.add at most; patterns up to SHORT bytes (off,
            # see SHORT), or all of a group of FEW without hyperscan, are
            # tested with ``in`` instead.
            longs, words = [], []
            few = _few(len(self.patterns))
            for pat, idxs in self.patterns.items():
                if len(pat) <= SHORT or few:
                    self.short.append((pat, tuple(idxs)))
                else:
                    words.append(pat)
                    longs.append(tuple(idxs))
            self.rules_of = longs
            self.longest = max(len(p) for p in self.patterns)
            if longs:
                self.auto = _Multi(words)
            self.scan = bool(longs or self.short)
        elif self.patterns:  # no matcher installed: every rule is a candidate
            for idxs in self.patterns.values():
                self.always.extend(idxs)
            self.always.sort()
            self.patterns = {}

    def size_split(self, rules) -> None:
        """Packet groups: almost every packet rule with content has a dsize
        (ET: 480 of 495 TCP ones), so the automaton a payload is scanned
        with holds only the rules its size can match, one per size interval
        between the rules' dsize bounds, built when first needed. (Not with
        hyperscan: its scan costs the same whatever the patterns, and one
        database per size interval cost 0.2 s of compiling on the bench.)"""
        cuts = {0, 1}
        for idxs in self.patterns.values():
            for i in idxs:
                c = rules[i].src.dsize
                if c is None:
                    continue
                v = c.value
                if c.op in ("=", "!="):
                    cuts.update((v, v + 1))
                elif c.op in ("<", ">="):
                    cuts.add(v)
                elif c.op in (">", "<="):
                    cuts.add(v + 1)
                else:
                    cuts.update((v + 1, c.value2 or 0))
        self.cuts = sorted(x for x in cuts if x >= 0)
        self.by_size = {}

    def _by_size(self, n, rules):
        k = bisect.bisect_right(self.cuts, n) - 1
        got = self.by_size.get(k)
        if got is None:
            kept = []
            for pat, idxs in self.patterns.items():
                keep = tuple(i for i in idxs if rules[i].src.dsize is None
                             or rules[i].src.dsize.matches(n))
                if keep:
                    kept.append((pat, keep))
            longs = [kv for kv in kept if len(kv[0]) > SHORT]
            if not longs:
                got = (None, (), ())
            elif _few(len(kept)):
                got = (None, (), longs)
            else:
                got = (_Multi([p for p, _ in longs]), [k for _, k in longs], ())
            self.by_size[k] = got
        return got

    def _split(self, rules):
        """always-candidates by the ports they restrict: none (``free``),
        the destination only, the source only (``s_only``), or both."""
        free, bound, s_only, both = [], [], [], False
        for i in self.always:
            r = rules[i]
            if r.sport.any and r.dport.any and r.ipproto is None:
                free.append(i)
            elif r.dport.any and not r.sport.any and not r.bidir:
                s_only.append(i)
            else:
                bound.append(i)
                both = both or r.bidir or not r.sport.any
        self.free, self.bound, self.s_only, self.both = free, bound, s_only, both
        # the cache is keyed by port intervals between these cuts (two ports
        # in one interval fit the same rules): keyed by the port itself, a
        # rule restricting the source port (or ``<>``) made every new client
        # port a miss and a walk over the rules (ET's UDP group: 7,000 walks)
        cuts = set()
        for i in bound + s_only:
            for spec in (rules[i].sport, rules[i].dport):
                if not spec.any:
                    for lo, hi in getattr(spec, "ranges", ()):
                        cuts.update((lo, hi + 1))
        self.pcuts = sorted(cuts)
        if s_only and not bound:
            self.bound = [-1]  # keep the cached path; -1 is never a candidate

    def _base(self, rules, proto, sport, dport):
        out = []
        for i in self.bound:
            if i < 0:
                continue
            r = rules[i]
            if r.ipproto is not None and r.ipproto != proto:
                continue
            if sport >= 0 or dport >= 0:
                if self.both:
                    if not r.ports_fit(sport, dport):
                        continue
                elif dport not in r.dport:
                    continue
            out.append(i)
        if self.free:
            out = sorted(out + self.free)
        return out

    def candidates(self, data, rules, proto, sport, dport) -> list:
        base = self.base(rules, proto, sport, dport)
        if not self.scan or not data:
            return base
        found = self.hits(data, rules)
        if not found:
            return base
        found.update(base)
        return sorted(found)

    def hits(self, data, rules) -> set:
        """Rule indexes whose fast pattern occurs in ``data``."""
        found = set()
        auto, rules_of, few = self.auto, self.rules_of, self.short
        if self.cuts is not None:
            auto, rules_of, sized = self._by_size(len(data), rules)
            few = few + sized if sized else few
        low = bytes(data).lower() if few or auto is not None and auto.db is None else None
        for pat, idxs in few:
            if pat in low:
                found.update(idxs)
        if auto is not None:
            for v in auto.found(data, low):
                found.update(rules_of[v])
        return found

    def base(self, rules, proto, sport, dport) -> list:
        """The always-candidates that fit the protocol and ports (sorted)."""
        if self.free is None:
            self._split(rules)
        if self.bound:
            # cached by the one port a rule restricts (ET: the server's), so
            # a new client port does not miss the cache
            if proto not in (6, 17):
                sport = dport = -1
            pcuts = self.pcuts
            si, di = bisect.bisect_right(pcuts, sport), bisect.bisect_right(pcuts, dport)
            key = (proto, si, di) if self.both else (proto, -1, di)
            base = self.cache.get(key)
            if base is None:
                base = self.cache[key] = self._base(rules, proto, sport, dport)
                if len(self.cache) > CACHE_MAX:
                    self.cache.popitem(last=False)
            if self.s_only:
                skey = ("s", proto, si)
                extra = self.cache.get(skey)
                if extra is None:
                    extra = self.cache[skey] = [
                        i for i in self.s_only
                        if (rules[i].ipproto is None or rules[i].ipproto == proto)
                        and (sport < 0 or sport in rules[i].sport)]
                if extra:
                    base = sorted(base + extra)
            return base
        return self.free


class SigRuleSet:
    """Suricata rules compiled for ``SigEngine``: ordered, grouped, prefiltered."""

    def __init__(self, rules, classifications=None, prefilter: bool = True,
                 views: bool = True):
        ordered = _order(list(rules))
        self.rules: list[SigRule] = []
        for r in ordered:
            sr = SigRule(r, native_rule(r, classifications))
            sr.idx = len(self.rules)
            self.rules.append(sr)
        self.groups: dict = {}
        self.tcp_ports_any = False
        self.tcp_ports: set = set()
        self._port_specs: set = set()  # (proto, ranges) already in tcp/udp_ports
        self.dns_tcp_ports: set = set()  # where DNS over TCP is parsed for dns rules
        # DNS responses are parsed only for rules that read no query name
        # (dns.opcode alone): a response's name is not dns.query's
        # the SSH key exchange is parsed only for rules reading a HASSH
        self.ssh_hassh = any(sr.reads_hassh for sr in self.rules)
        # envelope rules run only when one is loaded
        self.smtp_envelope = any(sr.kind == "smtp" and not _SMTP_ENV_BUFS.isdisjoint(
            b for b, _ in sr.buffers) for sr in self.rules)
        self.dns_responses = any(sr.kind == "dns" and not _reads_dns_query(sr)
                                 for sr in self.rules)
        self.udp_ports: set = set()
        self.udp_ports_any = False
        self.has_icmp = self.has_ip = False
        fp_buffers = {"http": set(), "http-resp": set(), "tls": set(), "smtp": set(),
                      "ssh": set()}
        for sr in self.rules:
            if sr.kind == "event":
                keys = ("event",)
            elif sr.kind in ("http", "http-resp", "tls", "smtp", "ssh"):
                # one automaton per side: a transaction's fast-pattern
                # buffers are scanned joined, in one pass (a pattern found
                # across two of them only adds a candidate; the full check
                # is per buffer)
                keys = (sr.kind,)
                fp_buffers[sr.kind].add(sr.fp_buffer or _raw_buffer(sr.kind))
            elif sr.kind == "pkt":
                # one packet group per IP protocol: a TCP segment is not
                # scanned for the patterns of UDP rules
                p = sr.ipproto
                keys = (("pkt", p if p in _PKT_PROTOS else 0),) if p is not None else tuple(
                    ("pkt", p) for p in _PKT_PROTOS)
            else:
                keys = (sr.kind,)
            for key in keys:
                g = self.groups.get(key)
                if g is None:
                    g = self.groups[key] = _Group()
                if prefilter and sr.fp is not None and key != "event":
                    g.patterns.setdefault(sr.fp, []).append(sr.idx)
                else:
                    g.always.append(sr.idx)
            self._ports(sr)
        for key, g in self.groups.items():
            g.build()
            if isinstance(key, tuple) and key[0] == "pkt":
                g.sized = _size_bounds(self.rules, g)
                if g.auto is not None and not _hs():
                    g.size_split(self.rules)
        self.merged = self._merge(self.groups.get("stream"), self.groups.get(("pkt", 6)))
        self.http_group = self.groups.get("http")
        self.resp_group = self.groups.get("http-resp")
        self.http_buffers = tuple(sorted(fp_buffers["http"]))
        self.resp_buffers = tuple(sorted(fp_buffers["http-resp"]))
        self.wants_http = self.http_group is not None or self.resp_group is not None
        if self.http_group is not None:
            self.http_group.buffers = self.http_buffers
        for kind in ("tls", "smtp", "ssh"):
            if self.groups.get(kind) is not None:
                self.groups[kind].buffers = tuple(sorted(fp_buffers[kind]))
        if self.resp_group is not None:
            self.resp_group.buffers = self.resp_buffers
            self.resp_group.needs_body = _reads_body(
                self.rules, [sr.idx for sr in self.rules if sr.kind == "http-resp"])
        self._view_init()
        # views=False: every TCP direction sees the whole groups (the
        # engine as it was before views; tests compare the two)
        self._all = None
        if not views:
            v = self._all = _View()
            v.stream, v.pkt = self.groups.get("stream"), self.groups.get(("pkt", 6))
            v.http, v.resp, v.merged = self.http_group, self.resp_group, self.merged
            v.tls = self.groups.get("tls")
            v.tlsst, v.smtp = self.groups.get("tls-state"), self.groups.get("smtp")
            v.ssh = self.groups.get("ssh")
            u = self._all17 = _View()
            u.pkt, u.dns = self.groups.get(("pkt", 17)), self.groups.get("dns")
            self._all_icmp = {}
            for p in (1, 58):
                u = self._all_icmp[p] = _View()
                u.pkt = self.groups.get(("pkt", p))

    # ------------------------------------------------------------ views

    _VIEW_KINDS = {6: ("stream", ("pkt", 6), "http", "http-resp", "tls", "tls-state", "smtp",
                       "ssh"),
                   17: (("pkt", 17), "dns"), 1: (("pkt", 1),), 58: (("pkt", 58),)}

    def _view_init(self):
        """Cut points of the address and port spaces for ``view``: every
        range bound of a TCP or UDP rule's header. Two addresses (ports)
        between the same cuts fit exactly the same rules, so a flow's
        interval numbers key the cache and a random client port costs a
        bisect."""
        acuts, pcuts = set(), set()
        self._idx = {6: [], 17: [], 1: [], 58: []}
        seen = set()
        for sr in self.rules:
            # (ICMP views too: ET's ICMP rules are mostly $EXTERNAL_NET ->
            # $HOME_NET; a ping between two local hosts need not scan them)
            protos = [p for p, fits in (
                (6, sr.kind in _TCP_KINDS and sr.ipproto in (None, 6)),
                (17, sr.kind in ("pkt", "dns") and sr.ipproto in (None, 17)),
                (1, sr.kind == "pkt" and sr.ipproto in (None, 1)),
                (58, sr.kind == "pkt" and sr.ipproto in (None, 58))) if fits]
            if not protos:
                continue
            for p in protos:
                self._idx[p].append(sr.idx)
            for a in (sr.saddr, sr.daddr):
                if id(a) in seen or a.any:
                    continue
                seen.add(id(a))
                acuts.update(a.los)
                acuts.update(h + 1 for h in a.his)
            for spec in (sr.sport, sr.dport):
                if not spec.any:
                    for lo, hi in getattr(spec, "ranges", ()):
                        pcuts.update((lo, hi + 1))
        self._acuts = sorted(acuts)
        self._pcuts = sorted(pcuts)
        self._fit_classes: dict = {}
        self._port_pairs: dict = {}
        for p, idx in self._idx.items():
            self._fit_classes[p], pairs = self._fit_classes_of(idx)
            if p in (6, 17):
                self._port_pairs[p] = self._port_masks_of(pairs)
        self._fitviews: dict = {}  # (address key, fitting port pairs) -> _View
        self._by_addr: dict = {}
        self._views: dict = {}
        self._view_of: dict = {}  # rule idxs -> _View
        self._cut: dict = {}  # (kind, rule idxs) -> restricted _Group
        self._merges: dict = {}
        self.compiled_views = 0  # restricted groups and merges made (COMPILE_BUDGET)
        self._budget_t0 = time.monotonic()
        self._aidx: dict = {}  # raw address -> its address interval (AIDX_MAX at most)

    def view(self, src: bytes, dst: bytes, sport: int, dport: int, to_server: bool, app,
             proto: int = 6):
        """The rules that can apply to one TCP direction, or to the
        datagrams of one UDP or ICMP flow direction (``proto`` 17, 1, 58)
        (``_View``; ICMP has no ports, ``sport``/``dport`` are not read).

        Suricata keeps one rule group per protocol, direction and port
        group, each with its own pattern matcher; here the groups are made
        on demand per interval key and shared by every flow of that key.
        A view is a superset: the full check still reads the header; it
        only keeps rules that cannot fit the direction's addresses, ports,
        flow direction and (once known) app protocol out of the scans."""
        if self._all is not None:
            return self._all if proto == 6 else self._all17 if proto == 17 else \
                self._all_icmp[proto]
        # A connection asks for views four or five times as it opens (each
        # side's classification, its state, its app protocol), each time
        # with a client port never seen before: the views are found by the
        # address and port intervals, each address's interval remembered
        # (hosts come back; keyed by the arguments, every connection missed).
        aidx = self._aidx
        sa = aidx.get(src)
        if sa is None:
            sa = self._addr_interval(src)
        da = aidx.get(dst)
        if da is None:
            da = self._addr_interval(dst)
        key = (sa, da, to_server, app, proto, bisect.bisect_right(self._pcuts, sport),
               bisect.bisect_right(self._pcuts, dport))
        v = self._views.get(key)
        if v is not None:
            return v
        return self._view_of_key(key, src, dst, sport, dport, to_server, app, proto)

    def _addr_interval(self, raw: bytes) -> int:
        aidx = self._aidx
        if len(aidx) >= AIDX_MAX:
            aidx.clear()  # (a spoofed-source flood: a dict, not a sweep, bounds it)
        i = aidx[raw] = bisect.bisect_right(self._acuts, _addr_key(raw))
        return i

    def _view_of_key(self, key, src, dst, sport, dport, to_server, app, proto):
        skey, dkey = _addr_key(src), _addr_key(dst)
        ak = key[:5]
        si, di = key[5], key[6]
        # two stages: what fits the addresses, flow direction and app is
        # shared by every port pair of the address pair (ET: most rules
        # have a port "any"); of the rules restricting a port, the port-spec
        # pairs that fit the two port intervals are found with bit masks
        fit = self._by_addr.get(ak)
        if fit is None:
            if len(self._by_addr) > CACHE_MAX:
                self._by_addr.clear()
            fit = self._by_addr[ak] = self._addr_fit(skey, dkey, to_server, app, proto)
        anyport, by_bit, present, odd = fit
        if proto == 6 or proto == 17:
            sp, dp, bi = self._port_pairs[proto]
            m = present & (sp[si] & dp[di] | bi & sp[di] & dp[si])
            for bit, rep_rule in odd:
                if rep_rule.ports_fit(sport, dport):
                    m |= bit
        else:
            m = present  # (ICMP has no ports: the full check does not read them either)
        fk = (ak, m)
        v = self._fitviews.get(fk)
        if v is None:
            kept = list(anyport)
            for bit, idxs in by_bit:
                if m & bit:
                    kept += idxs
            keep = tuple(sorted(kept))
            v = self._view_of.get((proto, keep))  # most port intervals keep the same rules
            if v is None:
                v = self._view_of[(proto, keep)] = self._make_view(keep, proto)
            self._fitviews[fk] = v
        self._views[key] = v
        if len(self._views) > CACHE_MAX:
            self._views.clear()
            self._view_of.clear()
            self._fitviews.clear()
        return v

    def _fit_classes_of(self, idxs):
        """(classes, pairs): the rules of ``idxs`` grouped by everything
        ``_addr_fit`` reads of them (address specs, flow direction, app
        protocol, port specs): ET's 16,000 TCP rules make some 470 classes,
        ET's 2,300 UDP ones 100. A new address interval then costs a pass
        over the classes, not over the rules (23 ms with ET before: a flood
        of spoofed sources walking the intervals made every new one a
        stall). Each class: (a rule of it, to_server only, to_client only,
        its app or None, its port-spec pair's bit (0: any ports), whether
        that pair has another shape than ranges (tested on the ports), its
        rule idxs). ``pairs``: each distinct pair of range specs -> its bit
        number (``_port_masks_of``)."""
        classes: dict = {}
        for i in idxs:
            sr = self.rules[i]
            f = sr.flow
            ts = f is not None and bool(f.to_server)
            tc = f is not None and bool(f.to_client)
            app = sr.app if sr.kind in ("stream", "pkt") else None
            if sr.anyports:
                pk = None
            else:
                pk = (sr.sport.any, tuple(getattr(sr.sport, "ranges", ())), sr.dport.any,
                      tuple(getattr(sr.dport, "ranges", ())), sr.bidir)
                if not all(hasattr(p, "ranges") for p in (sr.sport, sr.dport)):
                    pk = i  # (a spec of another shape: on its own)
            # (address specs by identity: _addr shares them by text)
            key = (sr.anyaddrs, id(sr.saddr), id(sr.daddr), sr.bidir, ts, tc, app, pk)
            c = classes.get(key)
            if c is None:
                classes[key] = (sr, ts, tc, app, pk, [i])
            else:
                c[5].append(i)
        pairs: dict = {}
        for c in classes.values():
            if type(c[4]) is tuple:
                pairs.setdefault(c[4], len(pairs))
        n = len(pairs)
        out = []
        for sr, ts, tc, app, pk, ix in classes.values():
            if pk is None:
                bit, odd = 0, False
            elif type(pk) is tuple:
                bit, odd = 1 << pairs[pk], False
            else:
                bit, odd = 1 << n, True
                n += 1
            out.append((sr, ts, tc, app, bit, odd, ix))
        return out, pairs

    def _port_masks_of(self, pairs):
        """(sp, dp, bi) for ``pairs`` (pair of range specs -> bit number):
        ``sp[x]`` (``dp[x]``) has the bits of the pairs whose source
        (destination) spec holds port interval ``x``, ``bi`` those of
        bidirectional rules. The pairs that fit a port pair are then a few
        integer ANDs, where testing each pair against the ports cost a miss
        of the view cache ~15 µs with ET (a flood of random ports misses it
        on most datagrams)."""
        pcuts = self._pcuts
        n = len(pcuts) + 1
        sp, dp = [0] * n, [0] * n
        s_any = d_any = bi = 0
        bisect_right = bisect.bisect_right
        for (sany, sranges, dany, dranges, bidir), j in pairs.items():
            bit = 1 << j
            if bidir:
                bi |= bit
            if sany:
                s_any |= bit
            if dany:
                d_any |= bit
            for anyflag, ranges, arr in ((sany, sranges, sp), (dany, dranges, dp)):
                if anyflag:
                    continue
                for lo, hi in ranges:  # lo and hi + 1 are cuts: whole intervals
                    for x in range(bisect_right(pcuts, lo), bisect_right(pcuts, hi) + 1):
                        arr[x] |= bit
        if s_any or d_any:
            for x in range(n):
                sp[x] |= s_any
                dp[x] |= d_any
        return sp, dp, bi

    def _addr_fit(self, skey, dkey, to_server, app, proto):
        """The protocol's rules that fit the addresses, flow direction and
        app protocol, as ``_view_of_key`` reads them: (rules with any ports,
        (bit, rule idxs) per port-spec pair, the bits present, the pairs of
        another shape as (bit, a rule of them), tested on the ports)."""
        anyport, by_bit, odd = [], {}, []
        present = 0
        for sr, ts, tc, rapp, bit, is_odd, idxs in self._fit_classes[proto]:
            if not sr.anyaddrs and not sr.addrs_fit(skey, dkey):
                continue
            if ts and not to_server or tc and to_server:
                continue
            if rapp is not None and app is not None and rapp != app:
                continue  # app rules need the flow's app (not probed yet: kept)
            if not bit:
                anyport += idxs
                continue
            got = by_bit.get(bit)
            if got is None:
                by_bit[bit] = list(idxs)
                present |= bit
                if is_odd:
                    odd.append((bit, sr))
            else:
                got.extend(idxs)
        return anyport, list(by_bit.items()), present, odd

    def _make_view(self, idxs_fit, proto=6):
        rules = self.rules
        kinds = self._VIEW_KINDS[proto]
        keep = {k: [] for k in kinds}
        for i in idxs_fit:
            kind = rules[i].kind
            keep[("pkt", proto) if kind == "pkt" else kind].append(i)
        v = _View()
        if len(self._cut) > CACHE_MAX:
            # (views made before keep their groups; new ones make their own)
            self._cut.clear()
            self._merges.clear()
        cks = {}
        for kind in kinds:
            idxs = tuple(keep[kind])
            g = self.groups.get(kind)
            if not idxs or g is None:
                continue
            ck = cks[kind] = (kind, idxs)
            if ck not in self._cut:
                if _hs() and self.compiled_views >= COMPILE_BUDGET + (
                        time.monotonic() - self._budget_t0) / COMPILE_REFILL_S:
                    # the kind's whole group: a superset (the full check
                    # reads each candidate's header), compiled once
                    self._cut[ck] = g
                else:
                    self.compiled_views += 1
                    self._cut[ck] = g.restricted(
                        set(idxs), rules, _raw_buffer(kind) if kind in _BUFFER_KINDS else None)
            setattr(v, _VIEW_ATTR[kind], self._cut[ck])
        v.reads_stream = proto == 6 and (
            v.stream is not None or v.http is not None or v.resp is not None
            or v.tls is not None or v.tlsst is not None or v.smtp is not None
            or v.ssh is not None
            or any(rules[i].app is not None for i in keep[("pkt", 6)]))
        if v.stream is not None and v.pkt is not None:
            mk = (v.stream, v.pkt)  # (the groups themselves: whole ones are shared)
            if mk not in self._merges:
                self.compiled_views += 1
                self._merges[mk] = self._merge(v.stream, v.pkt)
            v.merged = self._merges[mk]
        return v

    @staticmethod
    def _merge(gs, gp):
        """One automaton of the stream and TCP packet fast patterns: a
        segment delivered in order as it came is scanned once for both
        (value: (stream rule idxs, packet rule idxs))."""
        if gs is None or gp is None or gs.auto is None:
            return None  # a stream group of FEW patterns tests them with ``in``
        both: dict = {}
        for pat, idxs in gs.patterns.items():
            if len(pat) > SHORT:
                both[pat] = (tuple(idxs), ())
        for pat, idxs in (gp.patterns.items() if gp.auto is not None else ()):
            # (a packet group of FEW patterns has them all in ``short``)
            if len(pat) > SHORT:
                old = both.get(pat, ((), ()))
                both[pat] = (old[0], tuple(idxs))
        if not both:
            return None
        return _Multi(list(both)), list(both.values())

    def _ports(self, sr):
        p = sr.ipproto
        if sr.dns_tcp:
            # DNS over TCP on the rule's port, or 53 (Suricata's default
            # detection port for DNS over TCP)
            ports = _port_values(sr.dport) if not sr.dport.any else {DNS_PORT}
            self.dns_tcp_ports.update(ports)
            self.tcp_ports.update(ports)
        if p is None:
            self.has_ip = True
            return
        if p in (1, 58):
            self.has_icmp = True
            return
        # A packet the rule matches has its destination port in the rule's
        # (or, for ``<>``, either port): with that port restricted, the
        # flows it can match are those with it on either side; with only the
        # source port restricted, that one; with neither, every flow.
        any_ = sr.dport.any and sr.sport.any
        spec = sr.dport if not sr.dport.any else sr.sport
        if p == 6:
            self.tcp_ports_any |= any_
            if not any_ and self._new_spec(6, spec):
                self.tcp_ports.update(_port_values(spec))
        elif p == 17:
            self.udp_ports_any |= any_
            if not any_ and self._new_spec(17, spec):
                self.udp_ports.update(_port_values(spec))

    def _new_spec(self, proto: int, spec) -> bool:
        # ET's thousands of rules share a few dozen port specs, some of them
        # ranges like 1024: or !80 of tens of thousands of ports: each is
        # expanded once (a tenth of ET's load time went to re-adding them)
        key = (proto, tuple(spec.ranges))
        if key in self._port_specs:
            return False
        self._port_specs.add(key)
        return True

    def __len__(self) -> int:
        return len(self.rules)

    def inert(self) -> Counter:
        """Loaded rules this engine never inspects yet, by reason: their
        app-layer keyword has no parser here."""
        out: Counter = Counter()
        for sr in self.rules:
            if sr.kind != "app":
                continue
            r = sr.src
            if _tls_state_kw(r):
                out["ssl_state/ssl_version/tls.version"] += 1
            else:
                out[f"{sr.app or 'app'} {'/'.join(sorted(b for b, _ in sr.buffers if b))}"] += 1
        return out

    def ports(self, proto: str):
        """The ports a flow of ``proto`` needs on one side for a rule of it to
        apply (a frozenset), or None for every flow."""
        if self.has_ip:
            return None
        if proto == "tcp":
            return None if self.tcp_ports_any else frozenset(self.tcp_ports)
        if proto == "udp":
            return None if self.udp_ports_any else frozenset(self.udp_ports)
        return None


_VIEW_ATTR = {"stream": "stream", ("pkt", 6): "pkt", "http": "http", "http-resp": "resp",
              "tls": "tls", ("pkt", 17): "pkt", "dns": "dns", "tls-state": "tlsst",
              "smtp": "smtp", "ssh": "ssh", ("pkt", 1): "pkt", ("pkt", 58): "pkt"}
_TCP_KINDS = ("stream", "pkt", "http", "http-resp", "tls", "tls-state", "smtp", "ssh")


class _View:
    """The restricted groups of one flow direction (None: no rule can apply)."""

    __slots__ = ("stream", "pkt", "http", "resp", "merged", "dns", "tls", "tlsst", "smtp",
                 "ssh", "reads_stream")

    def __init__(self):
        self.stream = self.pkt = self.http = self.resp = self.merged = self.dns = None
        self.tls = self.tlsst = self.smtp = self.ssh = None
        self.reads_stream = True


class _KernelNode:
    """What ``capture.xdp.service_keys`` reads of a service node."""

    __slots__ = ("src", "dst")

    def __init__(self, src, dst):
        self.src = src
        self.dst = dst


class KernelTree:
    """A RuleTree look-alike for the XDP service maps: the native tree's
    nodes plus one node per distinct port pair of the Suricata rules (a rule
    with both ports ``any``, or ``<>``, wants every port of its protocol;
    an ``ip``/``pkthdr`` rule wants everything)."""

    def __init__(self, tree, sig=None):
        self.nodes = {p: list(tree.nodes.get(p, ())) for p in ("tcp", "udp", "icmp")}
        self.ip_nodes = list(tree.ip_nodes)
        self.other = False  # a rule wants IP protocols other than TCP, UDP and ICMP
        if sig is None:
            return
        any_spec = PortSpec("*")
        seen = set()
        for sr in sig.rules:
            p = sr.ipproto
            if sr.dns_tcp:
                dspec = sr.dport if not sr.dport.any else PortSpec(str(DNS_PORT), (
                    (DNS_PORT, DNS_PORT),), any=False)
                key = ("tcp", "*", dspec.text, (), dspec.ranges)
                if key not in seen:
                    seen.add(key)
                    self.nodes["tcp"].append(_KernelNode(any_spec, dspec))
            if p is None:
                if not self.ip_nodes:
                    self.ip_nodes.append(_KernelNode(any_spec, any_spec))
                continue
            name = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}.get(p)
            if name is None:
                self.other = True  # (an ``ip`` rule narrowed to another protocol)
                continue
            if name == "icmp" or sr.bidir:
                key = (name, "*", "*")
                node = _KernelNode(any_spec, any_spec)
            else:
                key = (name, sr.sport.text if not sr.sport.any else "*",
                       sr.dport.text if not sr.dport.any else "*", sr.sport.ranges,
                       sr.dport.ranges)
                node = _KernelNode(sr.sport, sr.dport)
            if key not in seen:
                seen.add(key)
                self.nodes[name].append(node)


def _port_values(spec) -> set:
    out = set()
    for lo, hi in spec.ranges:
        out.update(range(lo, hi + 1))
    return out


def _order(rules):
    """Suricata's evaluation order: pass first, then flowbit setters before
    the rules testing those bits, then file order."""
    setters: dict = {}
    for r in rules:
        for f in r.flowbits:
            if f.cmd in ("set", "unset", "toggle"):
                for n in f.names:
                    setters.setdefault(n, []).append(id(r))
        for x in getattr(r, "xbits", ()):
            if x.cmd in ("set", "unset", "toggle"):
                setters.setdefault(("x", x.name), []).append(id(r))
    depth = {id(r): 0 for r in rules}
    checks = {id(r): [n for f in r.flowbits if f.cmd in ("isset", "isnotset") for n in f.names]
              + [("x", x.name) for x in getattr(r, "xbits", ()) if x.cmd in ("isset", "isnotset")]
              for r in rules}
    for _ in range(8):  # dependency chains deeper than this are rare; cycles stop here
        changed = False
        for r in rules:
            need = 0
            for n in checks[id(r)]:
                for s in setters.get(n, ()):
                    if s != id(r):
                        need = max(need, depth[s] + 1)
            if need > depth[id(r)]:
                depth[id(r)] = need
                changed = True
        if not changed:
            break
    pos = {id(r): i for i, r in enumerate(rules)}
    return sorted(rules, key=lambda r: (r.action != "pass", depth[id(r)], pos[id(r)]))


_SSL_VERSIONS = {"sslv2": 0x0002, "sslv3": 0x0300, "tls1.0": 0x0301, "tls1.1": 0x0302,
                 "tls1.2": 0x0303, "tls1.3": 0x0304}
_SSL_STATES = {"client_hello": "client_hello", "server_hello": "server_hello",
               "key_exchange:client": "client_keyx", "key_exchange:server": "server_keyx"}


class _TlsState:
    """What ``ssl_state`` and ``ssl_version`` read of a TLS flow.

    Suricata keeps one state word per flow (``current_flags``), set by each
    ClientHello, ServerHello, ServerKeyExchange or ClientKeyExchange it
    parses, so a server flight of ServerHello + ServerKeyExchange in one
    chunk reads as server_keyx only; here the states of the messages of the
    record just completed all count (a ServerHello is not hidden by the key
    exchange after it in the same flight), and a record without any keeps
    the last ones. ``ssl_version`` reads the inspected direction's version:
    its hello's (an SSLv2-framed hello is sslv2), else its first record's.
    ``tls.version`` reads the version Suricata 7+ keeps (app-layer-ssl.c):
    the same, except that a hello's supported_versions extension overrides
    the hello's legacy field (the client's first, preferred entry; the
    server's chosen one), so a TLS 1.3 session reads as 1.3.
    """

    __slots__ = ("flags", "fresh", "ver", "nver")

    def __init__(self):
        self.flags = frozenset()
        self.fresh: set = set()
        self.ver = [0, 0]  # [to the client, to the server]
        self.nver = [0, 0]  # the same, as tls.version reads it

    def message(self, kind, info) -> None:
        if kind == "key_exchange":
            kind = "key_exchange:" + info["side"]
        name = _SSL_STATES.get(kind)
        if name is None:
            return
        self.fresh.add(name)
        if kind == "client_hello":
            self.ver[True] = 0x0002 if info.get("sslv2") else info.get("version", 0)
            sv = info.get("supported_versions")
            self.nver[True] = sv[0] if sv else self.ver[True]
        elif kind == "server_hello":
            self.ver[False] = info.get("legacy_version", info.get("version", 0))
            self.nver[False] = info.get("version", 0)

    def record(self, to_server, version) -> None:
        if self.fresh:
            self.flags = frozenset(self.fresh)
            self.fresh = set()
        if not self.ver[to_server]:
            self.ver[to_server] = version
        if not self.nver[to_server]:
            self.nver[to_server] = version

    def fits(self, r, to_server) -> bool:
        states = r.ssl_state
        if states:
            ok = False
            for s in states:
                neg = s.startswith("!")
                if (s.lstrip("!") in self.flags) != neg:
                    ok = True
                    break
            if not ok:
                return False
        versions = r.ssl_version
        if versions:
            ver = self.ver[to_server]
            pos = [_SSL_VERSIONS.get(v) for v in versions if not v.startswith("!")]
            neg = [_SSL_VERSIONS.get(v[1:]) for v in versions if v.startswith("!")]
            if ver in neg:
                return False
            if pos:
                if ver not in pos:
                    return False
            elif not ver:  # only negations: any known other version
                return False
        tv = getattr(r, "tls_version", None)
        if tv is not None:
            ver = self.nver[to_server]
            if not tv[1] and ver >> 8 == 0x7F:
                ver = 0x0304  # a TLS 1.3 draft
            return ver == tv[0]
        return True


class FlowState:
    """Per-flow detect state shared by both directions."""

    __slots__ = ("bits", "ints", "passed", "app", "client", "seen_both", "fid", "reqlog",
                 "expected", "answered", "interim_done", "views", "pkt_app", "app_dir", "app_at",
                 "tls", "tls_done", "tls_st", "start", "pkts_ts", "pkts_tc", "bytes_ts",
                 "bytes_tc", "meta")

    def __init__(self, client, fid):
        self.bits: set = set()
        self.ints: dict | None = None  # flowint values, made on the first change
        self.passed = False
        self.app = None  # None: not probed yet; "" unknown; else a name
        # The app protocol as packet rules see it: known once the bytes that
        # told it (``app_dir``'s stream up to ``app_at``) are ACKed, on a
        # packet of the established session (Suricata's IDS mode hands data
        # to the app layer when the receiver ACKs it)
        self.pkt_app = None
        self.app_dir = None
        self.app_at = 0
        # TLS handshake buffers seen so far (tls.sni from the ClientHello,
        # tls.cert_* from the server's certificate) and the rules that
        # matched them: one TLS "transaction" per flow, each rule once
        self.tls = None
        self.tls_done = None
        # what ssl_state/ssl_version read: the handshake states of the last
        # record that had any, and each side's version (_TlsState)
        self.tls_st = None
        self.client = client  # (src, sport) of the side that started it
        self.seen_both = False
        self.fid = fid
        # HTTP requests in order, so each response meets the request it
        # answers: ``expected`` were passed to the response parser,
        # ``answered`` were paired with a response (both absolute counts)
        self.reqlog: list = []
        self.expected = 0
        self.answered = 0
        # the rules that alerted on interim responses (100 Continue) of the
        # request awaiting its final response: one transaction with it
        self.interim_done = None
        self.views = None  # datagram flows: (view to the server, view back)
        # Datagram flows: Suricata's per-flow counters, for EVE's alert
        # ``flow`` object (TCP sessions count their own)
        self.start = 0.0
        self.pkts_ts = self.pkts_tc = self.bytes_ts = self.bytes_tc = 0
        # what EVE's alerts show of the flow's app layer, as Suricata's
        # (``tls``, ``ssh``, ``smtp`` objects), made by the parsers that ran
        self.meta: dict | None = None


class _SmtpTx:
    """The SMTP envelope of the client's mail in progress: the HELO name
    (kept across mails, as Suricata keeps it in the session), MAIL FROM and
    the RCPT TO addresses; ``done`` holds the rules (sids) that alerted on
    it, the engine's once-per-transaction set."""

    __slots__ = ("helo", "mail_from", "rcpt_to", "done")

    def __init__(self):
        self.helo = None
        self.end()

    def end(self) -> None:
        self.mail_from = None
        self.rcpt_to: list = []
        self.done: set = set()

    def add(self, kind: str, value: bytes) -> None:
        if kind == "helo":
            self.helo = value
        elif kind == "mail_from":
            self.mail_from = value
        elif len(self.rcpt_to) < 1000:
            self.rcpt_to.append(value)

    def buffers(self, last_rcpt: bool = False):
        """The buffer dicts to inspect: one per recipient (the newest alone
        when ``last_rcpt``: the others were inspected as they came), or one
        without a recipient."""
        base = {}
        if self.helo is not None:
            base["smtp.helo"] = self.helo
        if self.mail_from is not None:
            base["smtp.mail_from"] = self.mail_from
        rcpts = self.rcpt_to[-1:] if last_rcpt else self.rcpt_to
        if not rcpts:
            return [base]
        return [dict(base, **{"smtp.rcpt_to": r}) for r in rcpts]


class DirState:
    """Per TCP direction: pending stream bytes, the tail, the HTTP parser."""

    __slots__ = ("flow", "pending", "tail", "last_pkt", "http", "reqs", "probe", "d", "resp", "tls",
                 "tls_raw", "dns", "held", "acc", "edge", "view", "vapp", "cs", "smtp", "ssh",
                 "ssh_line", "smtp_env", "ended", "defer")

    def __init__(self, flow, d):
        self.flow = flow
        self.d = d
        self.pending = bytearray()
        self.tail = b""
        self.last_pkt = None
        self.http = None
        self.reqs = []
        self.probe = b""
        self.resp = None  # HttpResponseParser on the server's direction
        self.tls = None  # TlsParser of this direction (TLS flows with TLS rules)
        self.tls_raw = None  # its handshake bytes, for a TLS rule's payload contents
        self.dns = None  # DnsTcpFramer: DNS over TCP
        self.smtp = None  # SmtpParser: the client's mail (SMTP file.data rules)
        self.ssh = None  # SshParser until it is done, then True
        self.ssh_line = None  # the identification line's ssh.proto/ssh.software
        self.smtp_env = None  # _SmtpTx of the client's SMTP envelope
        self.held = b""  # bytes delivered while the flow's app was not known
        # stream rules whose fast pattern is in the pending bytes, found as
        # they were delivered; ``edge``: the last delivered bytes, for
        # patterns across two deliveries
        self.acc = set()
        self.edge = b""
        self.view = None  # the rules that can apply to this direction (_View)
        self.vapp = None  # the flow's app when ``view`` was made
        # Suricata's to_server, fixed once the session exists (its client
        # and midstream flag are set before any DirState is made): asked
        # on every packet, so computed once
        self.cs = d.session is None or _is_client(d)
        self.ended = False  # stream_end done: the direction can deliver nothing more
        # the server's deliveries not read yet: they wait for the client's
        # next packet (SigEngine.stream_data)
        self.defer = None


class SigEngine:
    def __init__(self, ruleset: SigRuleSet, http_config=None):
        self.rs = ruleset
        self.rules = ruleset.rules
        self.http_config = http_config
        self._pers = None
        if http_config is not None:
            self._pers = http_config.resolve()
        self.dgram_flows: OrderedDict = OrderedDict()
        self.thresholds: OrderedDict = OrderedDict()  # oldest first (a FIFO)
        # xbits: (name, tracked address key(s)) -> expiry in packet time, the
        # least recently set first (bounded: XBITS_MAX)
        self.xbits: OrderedDict = OrderedDict()
        self.waiting: dict = {}  # id(DirState) -> DirState with pending bytes
        # the named sets the rules' dataset keywords use (each once), for
        # their counters and for the edge to save at the end of input
        self.datasets = _datasets_of(r.src for r in self.rules)
        # the pipeline's checksum verdict for a TCP segment the reassembler
        # did not verify (a direction no stream rule reads is not buffered)
        self.verify_tcp = None
        self._alerted: set = set()
        self._pkt_hits = None  # (pkt, packet rule idxs) from the merged scan
        self._dns_opcode = 0  # of the DNS message being inspected
        self._dns_msg = None  # the DNS message being inspected (its EVE object)
        self._fids = 0
        # the TCP session state before the packet now fed (None: unknown)
        self.pre_state = None
        # pcre searches are timed per process (sigmatch.LIMITS): this
        # engine's share is what they counted since it began
        self._pcre_limited0 = sigmatch.LIMITS["pcre_time_limit"]
        self.counters = {"sig_stream_inspections": 0, "sig_candidates": 0,
                         "sig_http_transactions": 0, "sig_smtp_files": 0,
                         # directions inspected early because the waiting
                         # table was full (WAITING_MAX)
                         "sig_waiting_trimmed": 0,
                         # state forgotten at its table's bound: datagram
                         # flows (FLOWS_MAX), threshold and detection_filter
                         # counts (THRESH_MAX)
                         "sig_flows_evicted": 0, "sig_thresholds_evicted": 0,
                         # xbits forgotten at XBITS_MAX before they expired
                         "sig_xbits_evicted": 0,
                         # SMTP mail not (wholly) examined: over the size
                         # cap, lost to a hole in the stream, files past
                         # the per-mail cap
                         "sig_smtp_mail_truncated": 0, "sig_smtp_mail_lost": 0,
                         "sig_smtp_files_dropped": 0}
        g = ruleset.groups
        self.g_pkts = {p: g.get(("pkt", p)) for p in _PKT_PROTOS}
        # datagrams of a protocol (and, UDP, ports) no rule can match skip
        # the engine (``wants``): no flow state made for them
        self._protos = {p for p, gp in self.g_pkts.items() if gp is not None}
        if g.get("dns") is not None:
            self._protos.add(17)
        self._udp_ports = ruleset.ports("udp")
        self.g_stream = g.get("stream")
        self.g_event = g.get("event")
        self.g_dns = g.get("dns")
        # packet rules testing fragment fields (fragbits, fragoffset) without
        # reading a payload: run on each IP fragment as it comes (``fragment``)
        self.frag_rules = [i for i, sr in enumerate(self.rules) if sr.kind == "pkt" and
                           getattr(sr.src, "header", None) is not None and
                           sr.src.header.fragment_fields and not sr.src.elements]

    # ------------------------------------------------------------ flows

    def _new_flow(self, client):
        self._fids += 1
        return FlowState(client, self._fids)

    def pcre_time_limited(self) -> int:
        """Inspections whose pcre searches ran out of time (a rule that did
        not match because of it: sigmatch.PCRE_TIME_LIMIT)."""
        return sigmatch.LIMITS["pcre_time_limit"] - self._pcre_limited0

    @staticmethod
    def matcher_refused() -> int:
        """Fast-pattern groups hyperscan refused to compile (read with the
        fallback matcher instead: slower, nothing missed)."""
        return _Multi.refused

    def tcp_state(self, d) -> DirState:
        """The DirState of TCP direction ``d`` (made on first use)."""
        st = _sig_of(d)
        if st is not None:
            return st
        pst = _sig_of(d.peer)
        if pst is not None:
            flow = pst.flow
        else:
            c = d.session.client if d.session is not None else d
            flow = self._new_flow((c.src, c.sport) if c is not None else (d.src, d.sport))
            if d.session is not None:
                flow.start = d.session.start  # (flow.age)
        st = DirState(flow, d)
        if d.det is not None:
            d.det.sig = st
        return st

    def wants_stream(self, d) -> bool:
        """Whether a rule may read TCP direction ``d``'s bytes (stream, HTTP,
        or a packet rule of an app protocol, which the stream tells): if
        not, the reassembler only follows its state. Either flow direction
        and any app protocol: the view of a direction is fixed later."""
        rs = self.rs
        dp = rs.dns_tcp_ports
        if dp and (d.dport in dp or d.sport in dp):
            return True  # DNS over TCP
        likely = d.session is None or d.session.client is d  # (the other: midstream)
        for cs in (likely, not likely):
            if rs.view(d.src, d.dst, d.sport, d.dport, cs, None).reads_stream:
                return True
        return False

    def _view(self, st) -> "_View":
        """``st``'s view, made again when the app protocol becomes known
        (the earlier view was a superset; the side is fixed, ``st.cs``)."""
        app = st.flow.app
        v = st.view
        if v is None or st.vapp != app:
            d = st.d
            v = st.view = self.rs.view(d.src, d.dst, d.sport, d.dport, st.cs, app)
            st.vapp = app
        return v

    def _dgram_flow(self, pkt):
        """(the flow state of a datagram, whether it goes to the server:
        its sender started the flow). An ICMP flow is an address pair, as
        Suricata's (its flow hash gives ICMP other than errors fixed
        ports): an echo reply is its request's flow, to the client, and
        makes it established."""
        proto = pkt.proto
        if proto == 1 or proto == 58:
            a, b = (pkt.src, 0), (pkt.dst, 0)
        else:
            a, b = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        key = (proto, a, b) if a <= b else (proto, b, a)
        flows = self.dgram_flows
        f = flows.get(key)
        if f is None:
            f = flows[key] = self._new_flow(a)
            if len(flows) > FLOWS_MAX:
                # the least recently seen goes (its flowbits, thresholds by
                # flow and direction sides with it), counted
                flows.popitem(last=False)
                self.counters["sig_flows_evicted"] += 1
            f.start = pkt.ts
            to_server = True
        else:
            # most recently seen last: a flood of new flows evicts idle ones,
            # not a conversation still going on
            flows.move_to_end(key)
            to_server = f.client == a
            if not to_server:
                f.seen_both = True
        if to_server:
            f.pkts_ts += 1
            f.bytes_ts += pkt.frame_len
        else:
            f.pkts_tc += 1
            f.bytes_tc += pkt.frame_len
        pkt.flow = (f, to_server)
        return f, to_server

    # ------------------------------------------------------------ entry points

    def begin(self, pkt) -> None:
        if self._alerted:  # (most packets alert nothing: no new set for them)
            self._alerted = set()
        self._pkt_hits = None
        self.pre_state = None

    def wants(self, proto: int, sport: int, dport: int) -> bool:
        """Whether a packet rule may apply to a datagram (not TCP) of
        ``proto`` between these ports (ICMP: any)."""
        if proto not in self._protos and (proto in _PKT_PROTOS or 0 not in self._protos):
            return False
        if proto == 17:
            ports = self._udp_ports
            return ports is None or sport in ports or dport in ports
        return True

    def packet(self, pkt, notices=()):
        """Packet rules (and event rules for ``notices``) on one packet."""
        proto = pkt.proto
        if proto == 6 and not notices:
            # Most TCP packets: an empty segment of a direction whose view
            # (current for the flow's app) has no payload-less packet rule,
            # or one whose payload the stream prefilter scanned as it came
            # and found no packet rule's fast pattern in.
            d = pkt.direction
            sm = d.det if d is not None else None
            st = sm.sig if sm is not None else None
            if st is not None:
                if st.view is not None and st.vapp == st.flow.app:
                    g = st.view.pkt
                    if g is None or self.g_pkts[6] is None:
                        return []
                    if not g.always:
                        if not pkt.payload:
                            return []
                        ph = self._pkt_hits
                        if ph is None or ph[0] is not pkt:
                            # (a server's delivery waiting for the client:
                            # not scanned as it came) scanned here, its
                            # hits kept for the check below
                            ph = self._pkt_hits = (
                                pkt, g.hits(pkt.payload, self.rules) if g.scan else set())
                        if ph[1] and g.sized:
                            n = len(pkt.payload)
                            ph = self._pkt_hits = (pkt, set(_sized_out(ph[1], g.sized, n, n)))
                        if not ph[1]:
                            return []
            elif d is not None and d.session is not None and not pkt.payload:
                # A direction with no state yet (its SYN, a flood's): the
                # view before the app protocol is known holds every rule
                # that can ever apply to it; with no payload-less one
                # there, no flow state is made for it now.
                g = self.rs.view(d.src, d.dst, d.sport, d.dport, _is_client(d), None).pkt
                if g is None or not g.always or self.g_pkts[6] is None:
                    return []
        out = []
        flow = None
        to_server = True
        established = False
        g = self.g_pkts.get(proto) if proto in self.g_pkts else self.g_pkts[0]
        gdns = self.g_dns
        if proto == 6:
            d = pkt.direction
            if d is not None and d.session is not None:
                if d.det is not None:
                    st = self.tcp_state(d)
                    flow = st.flow
                    if g is not None:
                        g = self._view(st).pkt
                    if not notices and (g is None or not g.always and not pkt.payload):
                        # (most segments: an ACK with no rule for it)
                        return out
                    to_server = st.cs
                else:
                    to_server = _is_client(d)
                # Suricata flags a packet established by the flow's state
                # before the packet: the handshake's last ACK is not
                pre = self.pre_state
                established = pre is not None and pre >= 3 or (
                    pre is None and d.session.state >= 3)
        elif pkt.l4 or pkt.family:
            flow, to_server = self._dgram_flow(pkt)
            established = flow.seen_both
            if pkt.l4 and (proto == 17 or proto == 1 or proto == 58):
                views = flow.views
                if views is None:
                    views = flow.views = [None, None]
                v = views[to_server]
                if v is None:
                    v = views[to_server] = self.rs.view(pkt.src, pkt.dst, pkt.sport,
                                                        pkt.dport, to_server, None, proto)
                g, gdns = v.pkt, v.dns
        if flow is not None and flow.passed:
            return out
        ctx = (to_server, established, flow)
        if g is not None:
            if pkt.l4:
                data = _payload_of(pkt)
                ph = self._pkt_hits
                if ph is not None and ph[0] is pkt:
                    cands = g.base(self.rules, proto, pkt.sport, pkt.dport)
                    if ph[1]:
                        cands = sorted(ph[1].union(cands))
                else:
                    cands = g.candidates(data, self.rules, proto, pkt.sport, pkt.dport)
            else:
                data = pkt.ip_payload
                cands = g.candidates(data, self.rules, proto, -1, -1)
            if cands and g.sized:
                cands = _sized_out(cands, g.sized, len(data),
                                   len(_payload_of(pkt)) if pkt.l4 else 0)
            if cands:
                if proto == 6 and self.verify_tcp is not None:
                    d = pkt.direction
                    if (d is None or not d.buffer) and not self.verify_tcp(pkt):
                        return out
                out += self._run(cands, pkt, data, ctx, "pkt")
        if proto == 17 and gdns is not None and pkt.l4 and (
                pkt.dport == 53 or pkt.sport == 53) and pkt.payload:
            out += self._dns(pkt, ctx, gdns)
        if notices and self.g_event is not None:
            kinds = {n.kind for n in notices}
            cands = [i for i in self.g_event.always if self.rules[i].event_kinds & kinds]
            if cands:
                out += self._run(cands, pkt, pkt.payload if pkt.l4 else b"", ctx, "event")
        return out

    def _dns(self, pkt, ctx, g):
        """dns.query rules, once per query name of a DNS request (Suricata's
        dns.query is a multi-buffer: a rule matches if one name matches)."""
        return self._dns_message(pkt.payload, pkt, ctx, g)

    def _dns_tcp_feed(self, st, data, pkt):
        """DNS over TCP: each framed request through the dns rules (all of
        them: few flows, so no per-direction view)."""
        g = self.g_dns
        if g is None:
            return []
        if st.dns is None:
            st.dns = DnsTcpFramer()
        d = st.d
        if d.dport not in self.rs.dns_tcp_ports and d.sport not in self.rs.dns_tcp_ports:
            return []
        ctx = self._ctx(st, True)
        out = []
        for msg in st.dns.feed(data):
            out += self._dns_message(msg, pkt, ctx, g)
        return out

    def _dns_message(self, payload, pkt, ctx, g):
        """dns.query rules on one DNS message: a UDP payload, or a request
        framed from a TCP stream. dns.opcode rules without dns.query see
        every message, responses too (Suricata's dns.opcode is a keyword of
        both directions' transactions); responses are parsed only for them."""
        if len(payload) > 2 and payload[2] & 0x80 and not self.rs.dns_responses:
            return []  # the QR bit: a response (not parsed for nothing)
        msg = parse_dns(bytes(payload))
        if msg is None:
            return []
        self._dns_opcode = msg.opcode
        self._dns_msg = msg
        if msg.is_response or not msg.queries:
            # (no name to match: only rules that read none)
            cands = [i for i in g.candidates(b"", self.rules, 17, pkt.sport, pkt.dport)
                     if not _reads_dns_query(self.rules[i])]
            if not cands:
                return []
            with self._transaction():
                return self._run(cands, pkt, payload, ctx, "dns", http={})
        runs = [(name, cands) for name, _qtype in msg.queries
                if (cands := g.candidates(name, self.rules, 17, pkt.sport, pkt.dport))]
        if not runs:  # (nearly every query: no transaction to open)
            return []
        out = []
        # once per message, however many of its queries match
        with self._transaction():
            for name, cands in runs:
                out += self._run(cands, pkt, payload, ctx, "dns", http={"dns.query": name})
        return out

    @contextmanager
    def _transaction(self, done=None):
        """One transaction's inspection (an HTTP request or response, a DNS
        message): a rule alerts once per transaction, as Suricata counts, so
        two requests pipelined in one segment alert twice, not once for the
        packet. The packet's own once-per-rule set is kept for its other
        inspections. ``done``: the set of rules that already alerted on
        this transaction (added to)."""
        pkt_alerted, self._alerted = self._alerted, set() if done is None else done
        try:
            yield
        finally:
            self._alerted = pkt_alerted

    def malformed(self, pkt, notices):
        """Event rules for a frame that failed to decode (``pkt`` may be None)."""
        if pkt is None or not pkt.family:
            return []
        self.begin(pkt)
        out = []
        # ``ip`` rules still see an IP packet whose transport header is bad
        g = self.g_pkts.get(pkt.proto) if pkt.proto in self.g_pkts else self.g_pkts[0]
        if g is not None:
            cands = [i for i in g.candidates(pkt.ip_payload, self.rules, pkt.proto, -1, -1)
                     if self.rules[i].src.proto in _IP_LEVEL]
            if cands:
                pkt.l4 = False
                out += self._run(cands, pkt, pkt.ip_payload, (True, False, None), "pkt")
        kinds = {n.kind for n in notices}
        cands = [i for i in self.g_event.always if self.rules[i].event_kinds & kinds] \
            if self.g_event is not None else ()
        if cands:
            out += self._run(cands, pkt, b"", (True, False, None), "event", headers=False)
        return out

    def fragment(self, pkt):
        """The fragment-field rules (``frag_rules``) on one IP fragment, held
        or completing a datagram: Suricata inspects every fragment as a
        packet of its own, with no transport header past the first and no
        flow (its payload is not read: these rules have none to match)."""
        if not pkt.family:
            return []
        l4 = pkt.l4
        pkt.l4 = False
        try:
            return self._run(self.frag_rules, pkt, b"", (True, False, None), "pkt")
        finally:
            pkt.l4 = l4

    def stream_data(self, d, data: bytes, pkt, gap: bool = False, sink: bool = False):
        """A chunk of in-order TCP data of direction ``d``: queued for inspection.

        ``sink``: nothing but this engine reads ``d``'s deliveries (the
        caller's choice), so while the server's bytes wait they may be
        appended by the reassembler itself (``TcpDirection.sink``)."""
        st = self.tcp_state(d)
        ses = d.session
        if not st.cs and not gap and st.flow.app is not None and ses is not None and \
                not ses.oneside:
            # The server's side, its protocol known: its deliveries wait
            # for the client's next packet, or the stream's end, and are
            # then read as one (``read_deferred``): one prefilter scan and
            # one parse of a response of seven segments instead of seven.
            # Suricata's IDS mode reads the server's bytes at the client's
            # ACK of them too. (Not with the client side unseen: no client
            # packet would come.)
            st.last_pkt = pkt
            d.sink_pkt = None  # (this packet came after any the sink took)
            if st.defer is None:
                st.defer = bytearray(data)
                self.waiting[id(st)] = st
                if sink:
                    # the next in-order segments go straight to the batch:
                    # no event, no call here, no charge walk (3 us each)
                    d.sink = st.defer
                    d.sink_max = DEFER_MAX
                return []
            if len(st.defer) + len(data) <= DEFER_MAX:
                st.defer += data
                return []
        out = self.read_deferred(st) if st.defer is not None else []
        found = self._delivery(st, data, pkt, gap)
        return out + found if out else found

    def _delivery(self, st, data: bytes, pkt, gap: bool):
        """``stream_data``'s work on one delivery (or a deferred batch)."""
        out = []
        if gap and st.pending:
            out += self._inspect_pending(st, len(st.pending))
        if gap:
            st.tail = b""
            st.edge = b""
            if st.http is not None:
                st.http.gap()
            if st.resp is not None:
                for resp in st.resp.gap():
                    out += self._http_resp_tx(st, resp, pkt)
            if st.tls is not None:
                st.tls.gap()
            if st.dns is not None:
                st.dns.gap()
            if st.smtp is not None:
                st.smtp.gap()
            st.held = b""
        st.last_pkt = pkt
        flow = st.flow
        app_data = data
        if flow.app is None:
            probe_data = data
            if st.probe == b"":
                # Nothing probed yet, at most blanks held: servers skip blank
                # lines before a request line (nginx any number of them), so
                # a run of them is kept to its last PROBE_BLANK bytes and
                # probed with what follows it (a longer run held whole made
                # the hold and the probe give up before the request came)
                run = st.held + data if st.held else data
                lead = len(run) - len(run.lstrip(b" \t\r\n"))
                blanks_only = lead == len(run)
                if lead > PROBE_BLANK:
                    run = run[lead - PROBE_BLANK:]
                st.held = b""
                if blanks_only:
                    st.held = run  # still
                    probe_data = None
                else:
                    probe_data = app_data = run
            if probe_data is not None:
                self._probe(st, probe_data)
            if flow.app is None:
                # Not decided yet (64 bytes, or HOLD_MAX while the other
                # side may still name it): the app parser gets these bytes
                # once it is, or a request sent a byte per segment would
                # reach it without its first bytes.
                if probe_data is not None:
                    st.held += probe_data
                app_data = None
                if st.probe is None and len(st.held) > HOLD_MAX:
                    self._decide_none(st)
            elif flow.app:
                pst = self._peer_state(st)
                if pst is not None and pst.held:
                    # the other side's bytes came first (a request whose
                    # method named nothing): they are parsed first
                    held, pst.held = pst.held, b""
                    out += self._app_feed(pst, held, pst.last_pkt, self._view(pst))
        if st.held and app_data is not None:
            app_data = st.held + data
            st.held = b""
        view = self._view(st)
        if app_data is not None:
            out += self._app_feed(st, app_data, pkt, view)
        if len(self.waiting) > WAITING_MAX:
            out += self._trim_waiting()
        if view.stream is not None and not flow.passed:
            self._prefilter_stream(st, data, pkt)
            st.pending += data
            self.waiting[id(st)] = st
            if len(st.pending) >= PENDING_MAX:
                out += self._inspect_pending(st, len(st.pending))
        return out

    def read_deferred(self, st):
        """The server's deferred deliveries (``stream_data``) read as one, a
        delivery of its last packet (what a rule there alerts on); a
        transaction's alerts are its own (``_http_run``), and so are the
        rest here. The pipeline calls it before a packet of the client, as
        those bytes came before it."""
        data, st.defer = bytes(st.defer), None
        d = st.d
        if d.sink is not None:
            if d.sink_pkt is not None:
                st.last_pkt = d.sink_pkt  # (the last segment the sink took)
            d.sink = d.sink_pkt = None
        with self._transaction():
            return self._delivery(st, data, st.last_pkt, False)

    def stream_rewrite(self, d, at: int, data: bytes) -> list:
        """Bytes of ``d`` from stream offset ``at`` replaced by a later copy
        (``StreamRewrite``): what of them still waits for its ACK is
        inspected as replaced. (The app-layer parsers read the first copy:
        deferred bytes are read first, and the pending ones then end at
        ``d.off``.)"""
        st = _sig_of(d)
        out = self.read_deferred(st) if st is not None and st.defer is not None else []
        if st is None or not st.pending or st.view is None or st.view.stream is None:
            return out
        base = d.off - len(st.pending)
        lo, hi = max(at, base), min(at + len(data), d.off)
        if lo >= hi:
            return out
        st.pending[lo - base:hi - base] = data[lo - at:hi - at]
        n = len(st.edge)
        if n and hi > d.off - n and len(st.pending) >= n:
            st.edge = bytes(st.pending[-n:])  # (the next delivery is scanned after it)
        g = st.view.stream
        if g.scan:
            k = g.longest - 1
            around = st.pending[max(lo - base - k, 0):hi - base + k]
            st.acc |= g.hits(bytes(around), self.rules)
        return out

    def _app_feed(self, st, app_data, pkt, view):
        """``app_data``, in-order bytes of ``st``'s direction, to the parser
        of the flow's app protocol, where a rule of the view reads it."""
        flow = st.flow
        out = []
        if flow.app == "http" and self.rs.wants_http:
            if st.cs:
                out += self._http_feed(st, app_data, pkt)
            elif view.resp is not None:
                # responses are parsed (and bodies decompressed) only where
                # a response rule can apply to this direction
                out += self._http_resp_feed(st, app_data, pkt)
        elif flow.app == "tls" and (view.tls is not None or view.tlsst is not None) and \
                not flow.passed:
            out += self._tls_feed(st, app_data, pkt)
        elif flow.app == "smtp" and view.smtp is not None and st.cs and not flow.passed:
            out += self._smtp_feed(st, app_data, pkt)
        elif flow.app == "ssh" and view.ssh is not None and st.ssh is not True and \
                not flow.passed:
            out += self._ssh_feed(st, app_data, pkt)
        elif flow.app == "dns" and (st.cs or self.rs.dns_responses) and \
                self.rs.dns_tcp_ports and not flow.passed:
            out += self._dns_tcp_feed(st, app_data, pkt)
        return out

    @staticmethod
    def _peer_state(st):
        """The DirState of the other direction of ``st``'s connection, if any."""
        return _sig_of(st.d.peer)

    def _decide_none(self, st):
        """The flow is none of the protocols the probe knows: the bytes
        held for an app parser are let go."""
        st.flow.app = ""
        st.held = b""
        pst = self._peer_state(st)
        if pst is not None:
            pst.held = b""

    def _trim_waiting(self):
        """Read the deferred and inspect the pending stream bytes of the
        oldest quarter of the waiting directions and take them off the table.

        Their open requests stay with them: the parser holds the one in
        progress anyway (nothing to free), its next bytes put the direction
        back on the table, and the session's end inspects what is left
        (``end_direction``). Dropping them let a flood of connections with
        unanswered bytes erase an attack request whose body was still
        coming."""
        out = []
        oldest = list(self.waiting)[:WAITING_MAX // 4]
        for key in oldest:
            st = self.waiting.pop(key)
            if st.defer is not None:
                out += self.read_deferred(st)
            if st.pending:
                self._alerted = set()
                out += self._inspect_pending(st, len(st.pending))
            self.waiting.pop(key, None)  # (a response parser read just now puts it back)
        self.counters["sig_waiting_trimmed"] += len(oldest)
        return out

    def _prefilter_stream(self, st, data, pkt):
        """Stream candidates of newly delivered bytes, into ``st.acc``."""
        view = st.view
        g = view.stream
        if not g.scan or not data:
            return
        rules = self.rules
        merged = view.merged
        # the last bytes of the previous delivery go in front, for patterns
        # across the two: one scan per delivery (a pattern wholly in those
        # bytes comes again, an extra candidate the full check rejects)
        k = g.longest - 1
        edge = st.edge
        buf = edge + data if edge else data
        if merged is not None:
            # The segment as it came: one scan serves the packet rules too.
            # Other deliveries (a server's batch, what a hole held back) are
            # scanned with it as well, their packet hits unused: the
            # stream group's own matcher would be one more compile.
            same = pkt is not None and pkt.proto == 6 and \
                len(pkt.payload) == len(data) and pkt.payload == data
            auto, vals = merged
            gp = view.pkt
            low = bytes(buf).lower() if g.short or (same and gp.short) or auto.db is None \
                else None
            sf = st.acc
            pf = set()
            for v in auto.found(buf, low):
                si, pi = vals[v]
                if si:
                    sf.update(si)
                if pi:
                    pf.update(pi)
            for pat, idxs in g.short:
                if pat in low:
                    sf.update(idxs)
            if same:
                for pat, idxs in gp.short:
                    if pat in low:
                        pf.update(idxs)
                self._pkt_hits = (pkt, pf)
        else:
            st.acc |= g.hits(buf, rules)
        if k > 0:
            st.edge = bytes(buf[-k:])

    def after_tcp(self, pkt):
        """Inspect what the receiver ACKed of ``pkt``'s direction."""
        d = pkt.direction
        if d is None or d.det is None:
            return []
        st = getattr(d.det, "sig", None)
        if st is not None:
            flow = st.flow
            if flow.app_dir is not None and flow.pkt_app is None:
                a = flow.app_dir
                if a is d.peer and a.wup is not None and a.wup >= flow.app_at and \
                        self.pre_state is not None and self.pre_state >= 3:
                    flow.pkt_app = flow.app
                    flow.app_dir = None
        if st is None or not st.pending:
            return []
        n = len(st.pending)
        if d.wup is not None:
            # (the pending bytes end where the server's deferred ones begin)
            start = d.off - n - (len(st.defer) if st.defer is not None else 0)
            n = min(n, d.wup - start)
            if d.fin_done or d.rst or (d.peer is not None and d.peer.rst):
                n = len(st.pending)
        if n <= 0:
            return []
        st.last_pkt = pkt
        d.sink_pkt = None  # (``pkt`` is d's own, newer than any its sink took)
        return self._inspect_pending(st, n)

    def flush(self):
        """End of input: inspect every pending stream byte and open request."""
        out = []
        for st in list(self.waiting.values()):
            out += self._finish(st)
        self.waiting.clear()
        return out

    def stream_end(self, d):
        """TCP direction ``d`` will deliver nothing more (its receiver read
        its FIN, or a reset closed the connection): finish it now, as at the
        end of input. A close-delimited HTTP/1.0 response was inspected only
        when its session left the table, up to the 60 s closed timeout after
        the FIN (live), or at the end of the capture. The bytes kept for
        matches across deliveries go too: none can follow."""
        st = _sig_of(d)
        if st is None or st.ended:
            return []
        st.ended = True
        self.waiting.pop(id(st), None)
        out = self._finish(st)
        st.tail = st.edge = st.held = b""
        # A closed session stays up to its closed timeout for late copies;
        # they read the flow and the view, never the stream's parsers or its
        # last packet (two copies of a frame): those go now, not 60 s later
        st.http = st.resp = st.tls = st.tls_raw = st.dns = st.smtp = st.last_pkt = None
        st.pending = bytearray()
        st.acc = set()
        st.reqs = []
        st.defer = None
        return out

    def end_direction(self, d):
        """TCP direction ``d``'s session ended: what it still holds is
        inspected now, as at the end of input, and its state forgotten."""
        st = _sig_of(d)
        if st is None:
            return []
        self.waiting.pop(id(st), None)
        if st.ended:
            return []  # (stream_end finished it)
        return self._finish(st)

    def _finish(self, st):
        out = []
        if st.defer is not None:
            out += self.read_deferred(st)
        if st.pending:
            self._alerted = set()
            out += self._inspect_pending(st, len(st.pending))
        if st.http is not None and st.reqs:
            for req in st.reqs:
                self._alerted = set()
                out += self._http_tx(st, req, st.last_pkt)
            st.reqs = []
        if st.resp is not None:
            self._expect(st)
            for resp in st.resp.finish():
                self._alerted = set()
                out += self._http_resp_tx(st, resp, st.last_pkt)
        if st.smtp is not None and st.last_pkt is not None:
            # a mail whose final "." never came: what the server got of it
            self._alerted = set()
            files = st.smtp.end()
            if not st.flow.passed:
                out += self._smtp_files(st, files, st.last_pkt)
            c, counters = st.smtp.counters, self.counters
            counters["sig_smtp_mail_truncated"] += c["truncated"]
            counters["sig_smtp_mail_lost"] += c["lost_messages"]
            counters["sig_smtp_files_dropped"] += c["files_dropped"]
            st.smtp.counters.clear()
        return out

    # ------------------------------------------------------------ stream

    def _probe(self, st, data):
        # 64 bytes after any blank lines or blanks a client sent first (a
        # server skips them before a request line; up to PROBE_BLANK of them
        # count for nothing, or a run of CRLFs would end the probe undecided)
        if st.probe is None:
            return  # this side named nothing: the other one may yet
        seen = len(st.probe)  # bytes an earlier call probed, undecided
        pr = st.probe + data
        blank = len(pr) - len(pr.lstrip(b" \t\r\n"))
        if blank > PROBE_BLANK:
            blank = 0
        st.probe = pr[:blank + PROBE_LIMIT]
        d = st.d
        to_server = _is_client(d)
        try:
            # 64 bytes name nearly every protocol; a request line whose
            # method no list names is HTTP only by the version at its end,
            # which can be further on ("G3T /a/long/path HTTP/1.0"): the
            # probe reads on, up to PROBE_LIMIT, while it stays undecided
            # (the first 64 are probed once: an earlier call past them found
            # them undecided)
            app = None if seen - blank >= 64 else \
                _app_probe(bytes(st.probe[:blank + 64]), to_server, d.sport, d.dport)
            if app is None and len(st.probe) - blank > 64:
                app = _app_probe(bytes(st.probe), to_server, d.sport, d.dport)
        except Exception:  # a probe bug must not stop the sensor
            app = ""
        if app is None and len(st.probe) - blank < PROBE_LIMIT:
            return
        flow = st.flow
        if not app:
            # None of them from this side. The other side may still name
            # the flow's protocol (a server's "HTTP/1.1" answering a request
            # whose method no probe knows): Suricata's detection waits for
            # it and then parses both sides (applayer event
            # detect_protocol_only_one_direction). The flow is none once
            # both sides said so, or when the other side's bytes are not
            # reassembled (no rule reads them), or past HOLD_MAX.
            st.probe = None
            pst = self._peer_state(st)
            peer = d.peer
            if (pst is not None and pst.probe is None) or peer is None or not peer.buffer:
                self._decide_none(st)
            return
        flow.app = app
        # (read no more, on either side: the flow's protocol is known)
        st.probe = b""
        pst = self._peer_state(st)
        if pst is not None and pst.probe:
            pst.probe = b""
        ses = d.session
        if ses is None or ses.oneside or ses.midstream:
            flow.pkt_app = flow.app  # (no ACK of it may ever be seen)
        else:
            flow.app_dir, flow.app_at = d, d.off

    def _inspect_pending(self, st, n):
        chunk = bytes(st.pending[:n])
        del st.pending[:n]
        if not st.pending and st.defer is None:  # (deferred bytes keep it waiting)
            self.waiting.pop(id(st), None)
        tail = st.tail
        st.tail = (tail + chunk)[-TAIL:]
        flow = st.flow
        if flow.passed or self.g_stream is None:
            return []
        self.counters["sig_stream_inspections"] += 1
        d = st.d
        ses = d.session
        to_server = ses is None or _is_client(d)
        established = ses is not None and ses.state >= 3
        ctx = (to_server, established, flow)
        # the prefilter needs only enough of the tail for a fast pattern
        # that ends in the new chunk (scanning the whole tail again would
        # double the bytes scanned); a rule whose fast pattern lies wholly
        # in the tail was a candidate for the earlier chunk
        g = self._view(st).stream
        if g is None:  # the app protocol now known rules every stream rule out
            st.acc = set()
            return []
        base = g.base(self.rules, 6, d.sport, d.dport)
        acc = st.acc
        if not st.pending:
            st.acc = set()
        if acc:
            acc = acc | set(base)
            cands = sorted(acc)
        else:
            cands = base
        if not cands:
            return []
        pkt = st.last_pkt
        return self._run(cands, pkt, chunk, ctx, "stream", d=d, tail=tail)

    # ------------------------------------------------------------ http

    def _tls_feed(self, st, data, pkt):
        """TLS rules when a handshake fact arrives: the ClientHello gives
        ``tls.sni``, the server's first certificate ``tls.cert_*``; each
        rule matches at most once per flow, with the buffers known then."""
        view = self._view(st)
        p = st.tls
        if p is None:
            p = st.tls = TlsParser(records=view.tlsst is not None)
        if p.failed or p.encrypted and not p.report_records:
            return []
        raw = st.tls_raw
        if raw is None:
            raw = st.tls_raw = bytearray()
        if len(raw) < TLS_RAW_MAX:
            raw += data[:TLS_RAW_MAX - len(raw)]
        events = p.feed(data)
        if not events:
            return []
        flow = st.flow
        bufs = flow.tls
        if bufs is None:
            bufs = flow.tls = {}
            flow.tls_done = set()
        out = []
        tstate = flow.tls_st
        if tstate is None:
            tstate = flow.tls_st = _TlsState()
        for ev in events:
            info = ev.info
            kind = ev.kind
            if kind == "record":
                tstate.record(st.cs, info["version"])
                if view.tlsst is not None:
                    out += self._tls_state_run(st, info["raw"], pkt)
                continue
            tstate.message(kind, info)
            _tls_meta(flow, kind, info)
            if kind == "key_exchange" or view.tls is None:
                continue
            if kind == "client_hello" or kind == "server_hello":
                # (tls.random is the inspected direction's hello's)
                rnd = info.get("random")
                if rnd is not None:
                    bufs["tls.random"] = rnd
                    bufs["tls.random_time"] = rnd[:4]
                    bufs["tls.random_bytes"] = rnd[4:]
                if kind == "client_hello":
                    if info.get("ja3"):
                        bufs["ja3.string"] = info["ja3"].encode()
                        bufs["ja3.hash"] = info["ja3_hash"].encode()
                    if info.get("sni"):
                        bufs["tls.sni"] = bytes(info["sni"])
                    elif not info.get("ja3") and rnd is None:
                        continue
                else:
                    if not info.get("ja3s"):
                        continue
                    bufs["ja3s.string"] = info["ja3s"].encode()
                    bufs["ja3s.hash"] = info["ja3s_hash"].encode()
            elif ev.kind == "certificate":
                for name, key in _CERT_BUFS:
                    v = info.get(key)
                    if v:
                        bufs[name] = v.encode("utf-8", "surrogateescape")
                bufs["tls.cert_chain_len"] = b"%d" % info.get("chain_length", 1)
            else:
                continue
            out += self._tls_run(st, bufs, pkt)
        return out

    def _tls_state_run(self, st, raw, pkt):
        """ssl_state/ssl_version/tls.version rules on one TLS record of the
        direction; each alerts once per direction of the flow, as Suricata's
        keywords of its one TLS transaction do."""
        g = self._view(st).tlsst
        d = st.d
        done = st.flow.tls_done  # (the "tls" rules' indices, these by direction)
        cs = st.cs
        cands = [i for i in g.candidates(raw, self.rules, 6, d.sport, d.dport)
                 if (i, cs) not in done]
        if not cands:
            return []
        out = self._run(cands, pkt, raw, self._ctx(st), "tls-state", d=d)
        if out:
            ids = {id(a.rule) for a in out}
            done.update((i, cs) for i in cands if id(self.rules[i].rule) in ids)
        return out

    def _ssh_feed(self, st, data, pkt):
        """ssh.proto / ssh.software rules once per direction, on its
        identification line; rules reading the direction's HASSH
        (ssh.hassh[.string] of the client, ssh.hassh.server[.string] of the
        server) once, on its KEXINIT, with the line's buffers too."""
        p = st.ssh
        if p is None:
            p = st.ssh = SshParser()
        g = self._view(st).ssh
        out = []
        for ev in p.feed(data):
            side = _meta_side(st.flow, "ssh", st.cs)
            if ev[0] == "banner":
                st.ssh_line = bufs = {"ssh.proto": ev[1], "ssh.software": ev[2]}
                side["proto_version"] = _eve_text(ev[1])
                side["software_version"] = _eve_text(ev[2])
                if not self.rs.ssh_hassh:
                    p.done = True  # (no rule reads the key exchange)
            else:
                bufs = dict(st.ssh_line)
                text, digest = hassh(ev[1], server=not st.cs)
                name = "ssh.hassh" if st.cs else "ssh.hassh.server"
                bufs[name] = digest
                bufs[name + ".string"] = text
                side["hassh"] = {"hash": digest.decode(), "string": _eve_text(text)}
            kex = ev[0] == "kexinit"
            cands = [i for i in self._buffer_cands(g, bufs, st.d)
                     if self.rules[i].reads_hassh == kex]
            if cands:
                out += self._run(cands, pkt, b"", self._ctx(st), "ssh", d=st.d, http=bufs)
        if p.done:
            st.ssh = True
        return out

    def _smtp_feed(self, st, data, pkt):
        p = st.smtp
        if p is None:
            p = st.smtp = SmtpParser(envelope=True)
        # (fed even once STARTTLS looks taken: the parser checks that the
        # bytes after it stay TLS records, or reads them as commands again)
        self.waiting[id(st)] = st  # a mail cut off is read at the end
        return self._smtp_files(st, p.feed(data), pkt)

    def _smtp_files(self, st, events, pkt):
        """SMTP file.data rules, once per attachment of a mail; rules of the
        envelope alone (smtp.helo, smtp.mail_from, smtp.rcpt_to) once per
        mail (Suricata's transaction), at the command that lets them match.
        The envelope is kept for EVE's ``smtp`` object either way."""
        g = self._view(st).smtp
        if g is None:
            return []
        ctx = self._ctx(st)
        env = st.smtp_env
        if env is None:
            env = st.smtp_env = _SmtpTx()
        by_env = self.rs.smtp_envelope  # a rule reads the envelope
        out = []
        for ev in events:
            kind = ev.kind
            if kind == "file":
                self.counters["sig_smtp_files"] += 1
                name = ev.info.get("name") or ""
                name = name.encode("utf-8", "surrogateescape") if isinstance(name, str) \
                    else name
                f = FileInfo(name, ev.info["data"], not ev.info.get("cut", False))
                bufs = {"file.data": ev.info["data"], "files": [f], "file.name": name or None}
                if not by_env:
                    cands = self._buffer_cands(g, bufs, st.d)
                    if cands:
                        out += self._run(cands, pkt, b"", ctx, "smtp", d=st.d, http=bufs)
                    continue
                # (each recipient in turn, the file's rules alerting once)
                with self._transaction():
                    for eb in env.buffers():
                        eb.update(bufs)
                        cands = [i for i in self._buffer_cands(g, eb, st.d)
                                 if not self.rules[i].smtp_env]
                        if cands:
                            out += self._run(cands, pkt, b"", ctx, "smtp", d=st.d, http=eb)
                continue
            if kind == "mail_end":
                env.end()
            else:
                env.add(kind, ev.info["value"])
            _smtp_meta(st.flow, env)
            if not by_env or kind == "mail_end":
                continue
            with self._transaction(env.done):
                for eb in env.buffers(kind == "rcpt_to"):
                    cands = [i for i in self._buffer_cands(g, eb, st.d)
                             if self.rules[i].smtp_env]
                    if cands:
                        out += self._run(cands, pkt, b"", ctx, "smtp", d=st.d, http=eb)
        return out

    def _tls_run(self, st, bufs, pkt):
        g = self._view(st).tls
        d = st.d
        # this direction's handshake bytes stand for the payload (a fast
        # pattern there is listed under "http.start")
        bufs = dict(bufs)
        bufs["http.start"] = bytes(st.tls_raw or b"")
        done = st.flow.tls_done
        cands = [i for i in self._buffer_cands(g, bufs, d) if i not in done]
        if not cands:
            return []
        out = self._run(cands, pkt, b"", self._ctx(st), "tls", d=d, http=bufs)
        if out:
            # (a rule matched here is not run again on a later fact)
            ids = {id(a.rule) for a in out}
            done.update(i for i in cands if id(self.rules[i].rule) in ids)
        return out

    def _http_feed(self, st, data, pkt):
        if st.http is None:
            st.http = HttpRequestParser(body_cap=64 * 1024, keep_headers=True)
        flow = st.flow
        for req in st.http.feed(data):
            st.reqs.append(req)
            if self.rs.resp_group is not None:
                flow.reqlog.append(req)
        if len(flow.reqlog) > 1024:
            # the server's view may have no response rule: its parser never
            # takes these, so the log is bounded here too
            _trim_reqlog(flow, 256)
        self.waiting[id(st)] = st
        out = []
        while st.reqs and (st.reqs[0].complete or
                           (st.reqs[0] is not st.http.current and st.reqs[0].headers_complete)):
            req = st.reqs.pop(0)
            out += self._http_tx(st, req, pkt)
        return out

    def _http_resp_feed(self, st, data, pkt):
        flow = st.flow
        resp_g = st.view.resp
        if st.resp is None:
            # no rule of this direction reads bodies: frame them, keep none
            # (nothing copied, nothing decompressed)
            st.resp = HttpResponseParser() if resp_g.needs_body else HttpResponseParser(0)
        elif resp_g.needs_body and not st.resp.body_limit:
            # (a view made again since holds a body rule): bodies from the
            # next response on
            st.resp.body_limit = BODY_LIMIT
        if flow.expected < len(flow.reqlog):
            self._expect(st)
        self.waiting[id(st)] = st
        out = []
        for resp in st.resp.feed(data):
            out += self._http_resp_tx(st, resp, pkt)
        if len(flow.reqlog) > 256:  # requests never answered: keep memory bounded
            _trim_reqlog(flow, 256)
        return out

    def _expect(self, st):
        """Tell the response parser the methods of requests seen since."""
        flow = st.flow
        while flow.expected < len(flow.reqlog):
            st.resp.expect(flow.reqlog[flow.expected].method)
            flow.expected += 1

    def _http_resp_tx(self, st, resp, pkt):
        flow = st.flow
        if flow.passed or pkt is None:
            return []
        req = flow.reqlog[flow.answered] if flow.answered < len(flow.reqlog) else None
        if resp.interim:
            # a 100 Continue is inspected with the request it belongs to,
            # whose final response comes next, in one transaction with it
            # (libhtp's): paired off, it shifted every later response onto
            # the wrong request
            if flow.interim_done is None:
                flow.interim_done = set()
            return self._http_run(st, _HttpBuffers(req, self._pers, resp), pkt, False,
                                  flow.interim_done)
        done, flow.interim_done = flow.interim_done, None
        if req is not None:
            flow.answered += 1
        if flow.answered > 32:  # paired requests are not needed any more
            del flow.reqlog[:flow.answered]
            flow.expected -= flow.answered
            flow.answered = 0
        self.counters["sig_http_transactions"] += 1
        return self._http_run(st, _HttpBuffers(req, self._pers, resp), pkt, False, done)

    def _http_tx(self, st, req, pkt):
        flow = st.flow
        if flow.passed or pkt is None:
            return []
        self.counters["sig_http_transactions"] += 1
        return self._http_run(st, _HttpBuffers(req, self._pers), pkt, True)

    def _http_run(self, st, bufs, pkt, request: bool, done=None):
        """One HTTP transaction's request (or response) rules: the fast
        patterns of the direction's group over its buffers, then the check
        (``done``: as for ``_transaction``)."""
        d = st.d
        view = self._view(st)
        g = view.http if request else view.resp
        if g is None:
            return []
        cands = self._buffer_cands(g, bufs, d)
        if not cands:
            return []
        with self._transaction(done):
            return self._run(cands, pkt, b"", self._ctx(st, request),
                             "http" if request else "http-resp", d=d, http=bufs)

    @staticmethod
    def _ctx(st, to_server=None):
        """(to_server, established, flow) for an inspection of ``st``'s
        direction (``to_server``: the direction's own unless given)."""
        ses = st.d.session
        return (st.cs if to_server is None else to_server, ses is None or ses.state >= 3,
                st.flow)

    def _buffer_cands(self, g, bufs, d) -> list:
        """Candidates of a buffer-rule group (HTTP, TLS, SSH, SMTP): its
        fast-pattern buffers joined, scanned in one pass; then a candidate
        whose fast pattern is not in its own buffer (the scan found it in
        another) is dropped before the check. (ET 2016680's client-body
        "user" was found in every request's User-Agent header name, and the
        rule checked each time.)"""
        data = b"\x00".join([b for b in map(bufs.get, g.buffers) if b])
        cands = g.candidates(data, self.rules, 6, d.sport, d.dport)
        if len(g.buffers) < 2 or not cands:
            return cands
        rules = self.rules
        folded = {}
        keep = []
        for i in cands:
            sr = rules[i]
            fp = sr.fp
            if fp is not None:
                name = sr.fp_buffer or _raw_buffer(sr.kind)  # (as _payload reads it)
                low = folded.get(name)
                if low is None:
                    # (an absent buffer: no positive content matches in it)
                    buf = bufs.get(name)
                    low = folded[name] = bytes(buf).lower() if buf else b""
                if fp not in low:
                    continue
            keep.append(i)
        return keep

    # ------------------------------------------------------------ the check

    def _run(self, cands, pkt, data, ctx, kind, d=None, tail=b"", http=None, headers=True):
        """Full check of candidate rules in order; alerts of this inspection."""
        to_server, established, flow = ctx
        rules = self.rules
        out = []
        self.counters["sig_candidates"] += len(cands)
        if d is not None:
            skey, dkey, sport, dport = _addr_key(d.src), _addr_key(d.dst), d.sport, d.dport
        else:
            skey, dkey = _addr_key(pkt.src), _addr_key(pkt.dst)
            sport, dport = (pkt.sport, pkt.dport) if pkt.l4 else (-1, -1)
        proto = pkt.proto
        matched = []
        for i in cands:
            sr = rules[i]
            if sr.kind != kind:
                continue
            r = sr.src
            if sr.ipproto is not None and sr.ipproto != proto and not (
                    kind == "dns" and sr.dns_tcp):
                continue
            if sr.app is not None and kind != "http" and kind != "http-resp" and kind != "dns":
                if flow is None or (flow.pkt_app if kind == "pkt" and proto == 6
                                    else _dgram_app(flow, pkt)) != sr.app:
                    continue
            if headers:
                if not sr.anyports and proto in (6, 17) and sport >= 0 and \
                        not sr.ports_fit(sport, dport):
                    continue
                if not sr.anyaddrs and not sr.addrs_fit(skey, dkey):
                    continue
            f = r.flow
            if f is not None:
                if f.to_server and not to_server or f.to_client and to_server:
                    continue
                if f.established and not established:
                    continue
                if f.not_established and established:
                    continue
                if f.only_stream and kind not in ("stream", "http", "http-resp"):
                    continue
                if f.no_stream and kind == "stream":
                    continue
            if kind in ("pkt", "event") and not self._packet_opts(r, pkt):
                continue
            if getattr(r, "stream_size", ()) and not _stream_size_ok(
                    r.stream_size, d if d is not None else pkt.direction):
                continue
            if sr.checks and not _bits_ok(sr.checks, flow):
                continue
            if sr.xchecks is not None and not self._xbits_ok(sr.xchecks, pkt, skey, dkey):
                continue
            if sr.ichecks is not None and not _ints_ok(sr.ichecks, flow):
                continue
            if r.flow_age is not None and (
                    flow is None or not r.flow_age.matches(int(pkt.ts - flow.start))):
                continue
            if r.iprep and not (pkt.family and iprep_ok(r.iprep, pkt.src, pkt.dst)):
                continue
            if kind == "tls-state" and not flow.tls_st.fits(r, to_server):
                continue
            if kind == "tls" and r.tls_chain_len is not None and not (
                    (n := http.get("tls.cert_chain_len")) is not None
                    and r.tls_chain_len.matches(int(n))):
                continue
            if kind == "dns" and r.dns_opcode is not None and \
                    not r.dns_opcode.matches(self._dns_opcode):
                continue
            if r.app_layer_protocol is not None and not _app_is(
                    r.app_layer_protocol, flow, kind, pkt):
                continue
            if r.ftpbounce:
                # (a command split across two chunks is read across them;
                # one wholly in the earlier chunk was judged with it)
                before = bytes(tail[-512:]) if tail else b""
                if not _ftp_bounce(before + bytes(data), d.src if d is not None else pkt.src,
                                   len(before)):
                    continue
            if not self._payload(sr, kind, data, tail, http, pkt if kind == "pkt" else None):
                continue
            matched.append(sr)
            if sr.pass_:
                break
            if sr.sets and flow is not None:
                # at once, so later rules of this inspection see the bits
                _apply_bits(sr.sets, flow.bits)
            if sr.xsets is not None:
                self._apply_xbits(sr.xsets, pkt, skey, dkey)
            if sr.imods is not None and flow is not None:
                _apply_ints(sr.imods, flow)
        if not matched:
            return out
        if matched[-1].pass_:
            if flow is not None:
                flow.passed = True
            # rules before the pass rule in order are other pass rules only
            return out
        for sr in matched:
            r = sr.src
            if r.noalert:
                continue
            if sr.sid in self._alerted:
                continue
            if not self._threshold(sr, pkt, flow, skey, dkey):
                continue
            self._alerted.add(sr.sid)
            alert = self._alert(sr, pkt, d, data, skey, dkey)
            ex = alert.extra
            # EVE's fields as Suricata writes them: stream 1 for a match on
            # the reassembled stream (not a packet's payload nor a
            # transaction's buffers), app_proto for a flow whose protocol
            # it detected, an HTTP transaction's id and metadata
            ex["stream"] = 1 if kind == "stream" else 0
            app = "dns" if kind == "dns" else None if flow is None else \
                flow.app if proto == 6 else _dgram_app(flow, pkt)
            if app:
                ex["app_proto"] = app
            if flow is not None and flow.meta:
                ex.update(_meta_snapshot(flow.meta))
            if kind == "dns" and self._dns_msg is not None:
                dns = _dns_eve(self._dns_msg)
                if dns:
                    ex["dns"] = dns
            if (kind == "http" or kind == "http-resp") and type(http) is _HttpBuffers:
                if http.req is not None:
                    ex["tx_id"] = http.req.tx
                ex["http"] = _http_meta(http)
            if r.filestore is not None and http is not None:
                files = _files_to_store(sr, http, kind)
                if files:
                    # (the output stage writes them: the engine does no I/O)
                    ex["files"] = files
            out.append(alert)
        return out

    @staticmethod
    def _packet_opts(r, pkt) -> bool:
        ipp = getattr(r, "ip_proto", None)
        if ipp is not None and not ipp.matches(pkt.proto):
            return False
        ip_id = getattr(r, "ip_id", None)
        if ip_id is not None and (pkt.family != 4 or pkt.ip_id != ip_id):
            return False
        h = getattr(r, "header", None)
        if h is not None and not _header_ok(h, pkt):
            return False
        if r.dsize is not None:
            n = len(_payload_of(pkt)) if pkt.l4 else 0
            # Suricata's signature mask: a dsize other than "<"/"<=" (or "=0")
            # requires a payload, so "dsize:!9" skips empty packets
            if n == 0 and r.dsize.op not in ("<", "<=") and not (
                    r.dsize.op == "=" and r.dsize.value == 0):
                return False
            if not r.dsize.matches(n):
                return False
        proto = pkt.proto
        if r.flags is not None and (proto != 6 or not r.flags.matches(pkt.flags)):
            return False
        if r.itype is not None or r.icode is not None or r.icmp_id is not None or \
                r.icmp_seq is not None:
            if proto not in (1, 58) or not pkt.l4:
                return False
            if r.itype is not None and not r.itype.matches(pkt.sport):
                return False
            if r.icode is not None and not r.icode.matches(pkt.dport):
                return False
            p = pkt.payload
            if r.icmp_id is not None and (len(p) < 2 or int.from_bytes(p[0:2], "big") !=
                                          r.icmp_id):
                return False
            if r.icmp_seq is not None and (len(p) < 4 or int.from_bytes(p[2:4], "big") !=
                                           r.icmp_seq):
                return False
        return True

    def _payload(self, sr, kind, data, tail, http, pkt=None) -> bool:
        env = {} if sr.env else None
        if kind in _BUFFER_KINDS:
            r = sr.src
            if r.urilen is not None:
                uri = http.get("http.uri.raw" if r.urilen.form == "raw" else "http.uri")
                if uri is None or not r.urilen.compare.matches(len(uri)):
                    return False
            xf = sr.xf
            for name, elements in sr.buffers:
                if name == "file.name":
                    # one file of the transaction passes the file keywords
                    # and holds the name contents (a filestore rule with
                    # neither stores what the transaction has)
                    if not elements and not sr.files:
                        continue
                    if not any(_file_matches(sr, f, elements, env)
                               for f in http.get("files") or ()):
                        return False
                    continue
                if name in _PER_HEADER and type(http) is _HttpBuffers:
                    # (a multi-buffer: one header must hold all of it)
                    chain = xf.get(name) if xf is not None else None
                    if not any(_inspect_some(elements, _transformed(h, chain) if chain else h,
                                             dict(env) if env is not None else None)
                               for h in http.header_lines(name)):
                        return False
                    continue
                buf = http.get(name or _raw_buffer(kind))
                absent = sr.absent.get(name) if sr.absent is not None else None
                if buf is None:
                    # (no buffer, nothing to inspect: even a negated content
                    # does not match, as in Suricata, unless the rule asks
                    # for the buffer to be absent)
                    if absent is not None:
                        continue
                    return False
                if absent == "absent":
                    return False
                if xf is not None and name in xf:
                    buf = _transformed(buf, xf[name])
                if not _inspect_some(elements, buf, env):
                    return False
            return True
        if kind == "dns":
            xf = sr.xf
            for name, elements in sr.buffers:
                buf = http[name] if name is not None else data
                if xf is not None and name in xf:
                    buf = _transformed(buf, xf[name])
                if not _inspect_some(elements, buf, env):
                    return False
            return True
        for name, elements in sr.buffers:
            if name is not None:
                if name not in HDR_BUFFERS or pkt is None:
                    return False  # other app buffers are not inspected here
                buf = _header_bytes(name, pkt)
                # (a header the packet lacks is no buffer to inspect: even
                # a negated content there does not match, as in Suricata)
                if buf is None or not _inspect(elements, buf, env):
                    return False
                continue
            if _inspect(elements, data, env):
                continue
            if kind == "stream" and tail:
                # a match across the chunk boundary, not one the tail held already
                env2 = {} if sr.env else None
                if _inspect(elements, tail + data, env2):
                    if not _inspect(elements, tail, {}):
                        continue
                    # The tail holds a match of its own (an earlier
                    # occurrence, which may not have alerted: a flowbit not
                    # set yet), which must not hide a new one across the
                    # boundary (seen: a response's pattern split across two
                    # inspections, the same pattern 400 bytes before).
                    if _new_across(elements, tail, data):
                        continue
            return False
        return True

    @staticmethod
    def _xkey(x, skey, dkey):
        if x.track == "ip_src":
            return (x.name, skey)
        if x.track == "ip_dst":
            return (x.name, dkey)
        return (x.name, skey, dkey) if skey <= dkey else (x.name, dkey, skey)

    def _xbits_ok(self, checks, pkt, skey, dkey) -> bool:
        xb = self.xbits
        for x in checks:
            key = self._xkey(x, skey, dkey)
            until = xb.get(key)
            if until is not None and until < pkt.ts:
                del xb[key]  # expired
                until = None
            if (until is not None) != (x.cmd == "isset"):
                return False
        return True

    def _apply_xbits(self, sets, pkt, skey, dkey) -> None:
        xb = self.xbits
        for x in sets:
            key = self._xkey(x, skey, dkey)
            until = xb.pop(key, None)
            if until is not None and until < pkt.ts:
                until = None
            if x.cmd == "set" or x.cmd == "toggle" and until is None:
                xb[key] = pkt.ts + x.expire  # (re-set: moved to the newest end)
                if len(xb) > XBITS_MAX:
                    xb.popitem(last=False)
                    self.counters["sig_xbits_evicted"] += 1

    def _threshold(self, sr, pkt, flow, skey, dkey) -> bool:
        r = sr.src
        t = r.threshold or r.detection_filter
        if t is None:
            return True
        tr = t.track
        if tr == "by_src":
            key = (sr.sid, skey)
        elif tr == "by_dst":
            key = (sr.sid, dkey)
        elif tr == "by_both":
            key = (sr.sid, skey, dkey)
        elif tr == "by_flow":
            key = (sr.sid, "flow", flow.fid if flow is not None else 0)
        else:
            key = (sr.sid,)
        ts = pkt.ts
        ent = self.thresholds.get(key)
        if t.type == "backoff" and r.threshold is not None:
            if ent is None:
                ent = self.thresholds[key] = [t.count, 0]  # [next alert at, matches]
                if len(self.thresholds) > THRESH_MAX:
                    self.thresholds.popitem(last=False)
                    self.counters["sig_thresholds_evicted"] += 1
            ent[1] += 1
            if ent[1] < ent[0]:
                return False
            ent[0] = ent[0] * t.multiplier if t.multiplier > 1 else ent[1] + 1
            return True
        if ent is None or ts - ent[0] > t.seconds:
            ent = self.thresholds[key] = [ts, 0]
            if len(self.thresholds) > THRESH_MAX:
                self.thresholds.popitem(last=False)
                self.counters["sig_thresholds_evicted"] += 1
        ent[1] += 1
        c = ent[1]
        typ = t.type if r.threshold is not None else None
        if typ is None:  # detection_filter
            return c > t.count
        if typ == "limit":
            return c <= t.count
        if typ == "threshold":
            if c >= t.count:
                ent[1] = 0
                return True
            return False
        return c == t.count  # both

    def _alert(self, sr, pkt, d, data, skey, dkey) -> Alert:
        proto = pkt.proto
        icmp = proto in (1, 58)
        if d is not None:
            src, dst, sport, dport = d.src, d.dst, d.sport, d.dport
        else:
            src, dst = pkt.src, pkt.dst
            sport, dport = (pkt.sport, pkt.dport) if pkt.l4 and not icmp else (None, None)
        return Alert(
            ts=pkt.ts, rule=sr.rule, proto=_PROTO_NAMES.get(proto, "IP"),
            src_ip=format_addr(src), dst_ip=format_addr(dst),
            src_port=sport, dst_port=dport,
            payload=bytes(pkt.payload if pkt.l4 else pkt.ip_payload),
            dump=bytes(data[-4096:]) if data else bytes(pkt.payload),
            ip_proto=proto,
            icmp_type=pkt.sport if icmp and pkt.l4 else None,
            icmp_code=pkt.dport if icmp and pkt.l4 else None,
            extra={"sid": sr.sid[1], "gid": sr.sid[0], "action": sr.src.action},
            pkt=PacketRef(pkt),
        )


_CERT_BUFS = (("tls.cert_subject", "subject"), ("tls.cert_issuer", "issuer"),
              ("tls.cert_serial", "serial"), ("tls.cert_fingerprint", "fingerprint"))


_BUFFER_KINDS = frozenset({"http", "http-resp", "tls", "smtp", "ssh"})
_PORT_CMD = re.compile(rb"(?im)^[ \t]*PORT[ \t]+(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),")


_WS = re.compile(rb"[ \t\n\v\f\r]+")
_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _transformed(buf: bytes, chain) -> bytes | None:
    """``buf`` through a rule's transforms, in order, as Suricata's
    (dotprefix, to_lowercase, to_uppercase, strip_whitespace,
    compress_whitespace, url_decode, to_md5, to_sha1, to_sha256, xor,
    from_base64, pcrexform, gunzip, zlib_deflate, subslice,
    header_lowercase, strip_pseudo_headers); None where pcrexform finds
    nothing (Suricata marks the buffer failed: nothing in it matches)."""
    for name, arg in chain:
        if name == "gunzip" or name == "zlib_deflate":
            # at most ``arg`` bytes; what does not inflate leaves nothing
            d = zlib.decompressobj(31 if name == "gunzip" else 15)
            try:
                buf = d.decompress(bytes(buf), arg) if buf else buf
            except zlib.error:
                buf = b""
        elif name == "subslice":
            buf = _subslice(buf, *arg)
        elif name == "header_lowercase":
            # each line's name, up to its first ':'
            buf = b"".join(ln[:i].lower() + ln[i:] if (i := ln.find(b":")) >= 0 else ln.lower()
                           for ln in bytes(buf).splitlines(keepends=True))
        elif name == "strip_pseudo_headers":
            buf = b"".join(ln for ln in bytes(buf).splitlines(keepends=True)
                           if not ln.startswith(b":"))
        elif name == "from_base64":
            # (offset or bytes past the buffer, or nothing decoded: unchanged)
            nbytes, offset, mode = arg
            if offset + nbytes <= len(buf):
                buf = b64_decode(buf[offset:offset + nbytes] if nbytes else buf[offset:],
                                 mode) or buf
        elif name == "pcrexform":
            m = arg.search(buf)
            if m is None or m.group(1) is None:
                return None
            buf = m.group(1)
        elif name == "dotprefix":
            buf = b"." + buf
        elif name == "to_lowercase":
            buf = buf.lower()
        elif name == "to_uppercase":
            buf = buf.upper()
        elif name == "strip_whitespace":
            buf = _WS.sub(b"", buf)
        elif name == "compress_whitespace":
            buf = _WS.sub(b" ", buf)
        elif name == "url_decode":
            buf = _PCT.sub(lambda m: bytes((int(m.group(1), 16),)), buf.replace(b"+", b" "))
        elif name == "xor":
            n = len(arg)
            buf = bytes(b ^ arg[i % n] for i, b in enumerate(buf))
        else:  # to_md5, to_sha1, to_sha256
            buf = hashlib.new(name[3:], bytes(buf)).digest()
    return buf


def _subslice(buf: bytes, offset: int, nbytes: int | None, truncate: bool) -> bytes:
    """Suricata 8's subslice (rust/src/detect/transforms/subslice.rs)."""
    n = len(buf)
    if abs(offset) > n and not truncate:
        return b""
    start = min(offset, n) if offset >= 0 else n + max(offset, -n)
    if nbytes is None:
        end = n
    elif nbytes < 0:
        end = n + nbytes
        if end < 0:
            if not truncate:
                return b""
            end = 0
    else:
        end = start + nbytes
        if end > n and not truncate:
            return b""
        end = min(end, n)
    if end < start:
        start, end = end, start
    return buf[start:end]


def _header_ok(h, pkt) -> bool:
    """A rule's IP/TCP header keywords (``IpHeader``) on ``pkt``.

    Fragment fields are read from the IP header bytes: a datagram the
    defrag stage reassembled still carries its first fragment's header
    (MF set) but is not a fragment, and never matches them (Suricata's
    pseudo packet)."""
    fam = pkt.family
    raw, o = pkt.raw, pkt.l3_off
    if h.ttl is not None and (not fam or not h.ttl.matches(pkt.ttl)):
        return False
    if h.mss is not None:
        mss = _tcp_mss(pkt) if pkt.proto == 6 and pkt.l4 else None
        if mss is None or not h.mss.matches(mss):
            return False
    if h.tos is not None:
        if fam != 4 or (raw[o + 1] == h.tos[1]) == h.tos[0]:
            return False
    if h.sameip and (not fam or pkt.src != pkt.dst):
        return False
    if h.vlan_id is not None or h.vlan_layers is not None:
        tags = [v for v in pkt.vlan if type(v) is int]
        if h.vlan_layers is not None and not h.vlan_layers.matches(len(tags)):
            return False
        if h.vlan_id is not None:
            cmp, where = h.vlan_id
            if not tags:
                return False
            if where is None:
                ok = any(cmp.matches(t) for t in tags)
            elif where == "all":
                ok = all(cmp.matches(t) for t in tags)
            else:
                ok = -len(tags) <= where < len(tags) and cmp.matches(tags[where])
            if not ok:
                return False
    if h.ipopt is not None:
        # (the header length from the header: a packet the target refuses for
        # its source route is decoded no further)
        if fam != 4 or not _has_ip_option(raw[o + 20:o + (raw[o] & 15) * 4], h.ipopt):
            return False
    if h.fragbits is not None or h.fragoffset is not None:
        if fam == 4:
            word = (raw[o + 6] << 8) | raw[o + 7]
            offset = word & 0x1FFF
            if not pkt.is_fragment and (offset or word & 0x2000):
                return False  # reassembled
        elif pkt.is_fragment:
            word, offset = 0, pkt.frag_offset >> 3
        else:
            return False  # IPv6 with no fragment header (or reassembled)
        if h.fragbits is not None:
            if fam != 4:
                return False
            bits = word >> 13  # MF 1, DF 2, reserved 4: FRAG_BITS
            mod, want = h.fragbits
            have = bits & want
            if mod == "*":
                ok = have != 0
            elif mod == "+":
                ok = have == want and bits != want  # Suricata: and another bit set
            elif mod == "!":
                ok = have != want
            else:
                ok = bits == want
            if not ok:
                return False
        if h.fragoffset is not None and not h.fragoffset.matches(offset):
            return False
    if h.rpc is not None:
        if not pkt.l4 or pkt.proto not in (6, 17):
            return False
        msg = pkt.payload[4:] if pkt.proto == 6 else pkt.payload  # (TCP: the record mark)
        if len(msg) < 24:
            return False
        _xid, mtype, rpcvers, prog, vers, proc = struct.unpack_from("!6I", msg)
        want_prog, want_vers, want_proc = h.rpc
        if mtype != 0 or rpcvers != 2 or prog != want_prog or (
                want_vers is not None and vers != want_vers) or (
                want_proc is not None and proc != want_proc):
            return False
    if h.seq is not None or h.ack is not None or h.window is not None:
        if pkt.proto != 6 or not pkt.l4:
            return False
        if h.seq is not None and pkt.seq != h.seq:
            return False
        if h.ack is not None and pkt.ack != h.ack:
            return False
        if h.window is not None and (pkt.window == h.window[1]) == h.window[0]:
            return False
    return True


HDR_BUFFERS = frozenset({"ipv4.hdr", "ipv6.hdr", "tcp.hdr", "udp.hdr", "icmpv4.hdr",
                         "icmpv6.hdr", "ip.src", "ip.dst"})


def _file_matches(sr, f, elements, env) -> bool:
    """File ``f`` passes the rule's file keywords and holds its file.name
    ``elements`` (transformed as the rule says)."""
    if not file_ok(sr.files, f):
        return False
    if not elements:
        return True
    chain = sr.xf.get("file.name") if sr.xf is not None else None
    return _inspect_some(elements, _transformed(f.name, chain) if chain else f.name,
                         dict(env) if env is not None else None)


def _files_to_store(sr, http, kind) -> list:
    """The ``FileInfo``s a filestore rule's alert stores: scope ``file``,
    the transaction's files that match the rule's file keywords (all of the
    direction's when it has none); ``tx``, all of them; direction ``both``
    adds a response transaction's request files."""
    direction, scope = sr.src.filestore
    files = list(http.get("files") or ())
    elems = next((es for n, es in sr.buffers if n == "file.name"), ())
    if scope == "file" and (sr.files or elems):
        files = [f for f in files if _file_matches(sr, f, elems, {} if sr.env else None)]
    elif type(http) is _HttpBuffers and http.resp is not None and http.req is not None:
        if direction == "request":
            files = request_files(http.req, http.pers)
        elif direction == "both":
            files = request_files(http.req, http.pers) + files
    elif kind == "http" and direction == "response":
        files = []  # (a request transaction: its response is not here yet)
    return files


def _datasets_of(rules) -> list:
    """The ``DataSet`` objects of the rules' dataset keywords, each once."""
    seen: dict = {}
    todo = [e for r in rules for e in r.elements]
    while todo:
        e = todo.pop()
        if isinstance(e, (DatasetCheck, DatarepCheck)):
            seen.setdefault(id(e.set), e.set)
        elif isinstance(e, Base64Decode) and e.data:
            todo.extend(e.data)
    return list(seen.values())


def _header_bytes(name: str, pkt) -> bytes | None:
    """A header buffer's bytes of ``pkt`` (None: the packet has no such
    header): as Suricata's ipv4.hdr (options included), ipv6.hdr (the
    fixed 40 bytes), tcp.hdr (options included), udp.hdr, icmpv4.hdr and
    icmpv6.hdr (the first 8 bytes); ip.src and ip.dst, the addresses'
    4 or 16 bytes (Suricata's, for datasets)."""
    fam, raw, o = pkt.family, pkt.raw, pkt.l3_off
    if name == "ip.src" or name == "ip.dst":
        return (pkt.src if name == "ip.src" else pkt.dst) if fam else None
    if name == "ipv4.hdr":
        return raw[o:o + (raw[o] & 15) * 4] if fam == 4 else None
    if name == "ipv6.hdr":
        return raw[o:o + 40] if fam == 6 else None
    if not pkt.l4:
        return None
    # (from the IP payload, not the frame: a datagram reassembled from
    # fragments has its transport header there, whole)
    seg = pkt.ip_payload
    proto = pkt.proto
    if name == "tcp.hdr":
        return bytes(seg[:(seg[12] >> 4) * 4]) if proto == 6 and len(seg) >= 20 else None
    want = 17 if name == "udp.hdr" else 1 if name == "icmpv4.hdr" else 58
    return bytes(seg[:8]) if proto == want and len(seg) >= 8 else None


def _tcp_mss(pkt) -> int | None:
    """The MSS option's value of a TCP packet, or None."""
    for t, o in _options(pkt.tcp_options):
        if t == 2 and len(o) == 4:
            return (o[2] << 8) | o[3]
    return None


def _has_ip_option(opts: bytes, want: int) -> bool:
    """An IPv4 option of type ``want`` (-1: any but end-of-list and no-op
    padding) in the options bytes."""
    return any(t == want or want == -1 and t > 1 for t, _ in _options(opts))


def _options(opts: bytes):
    """(type, bytes) of each option of an IPv4 or TCP options block, which
    share one layout (end of list 0, no-op 1, else type, length, value), up
    to the end of list or a malformed length."""
    i, n = 0, len(opts)
    while i < n:
        t = opts[i]
        if t <= 1:
            yield t, opts[i:i + 1]
            if t == 0:
                return
            i += 1
            continue
        size = opts[i + 1] if i + 1 < n else 0
        if size < 2 or i + size > n:
            return
        yield t, opts[i:i + size]
        i += size


def _dgram_app(flow, pkt):
    """A datagram flow's app protocol, probed from this datagram while not
    known: DNS over UDP to or from port 53, as Suricata's probing parser
    (its DNS detection port) tells it. Probed only when asked (a candidate
    of an ``alert dns`` packet rule, an alert's app_proto), not per
    datagram."""
    app = flow.app
    if app is None and pkt.proto == 17 and pkt.l4 and pkt.payload and (
            pkt.dport == 53 or pkt.sport == 53) and probe_dns_udp(bytes(pkt.payload)):
        app = flow.app = "dns"
    return app


def _app_is(want, flow, kind, pkt) -> bool:
    """``app-layer-protocol``: the flow's protocol as this inspection sees
    it (packet rules of TCP: once ACKed, as for app rules) is ``want``."""
    negated, name = want
    if flow is None:
        app = None
    elif pkt.proto == 6:
        app = flow.pkt_app if kind == "pkt" else flow.app
    else:  # a datagram: DNS is told by its content, as Suricata's probe does
        app = flow.app
        if app is None and pkt.l4 and pkt.payload:
            app = probe_dns_udp(bytes(pkt.payload))
    if name == "unknown":
        got = app is None
    elif name == "failed":
        got = app == ""
    else:
        got = app == name or name == "http1" and app == "http"
    return got != negated


def _ftp_bounce(data: bytes, client: bytes, start: int = 0) -> bool:
    """An FTP PORT command in ``data`` names an IPv4 address other than the
    client's (Suricata's ftpbounce: the server would connect elsewhere);
    commands that end before ``start`` are not looked at.
    PORT carries IPv4 only: on an IPv6 flow it is no bounce test."""
    if len(client) != 4:
        return False
    for m in _PORT_CMD.finditer(data):
        if m.end() <= start:
            continue
        octets = [int(x) for x in m.groups()]
        if max(octets) > 255:
            continue
        if bytes(octets) != client:
            return True
    return False


def _uri_host(target: bytes) -> bytes | None:
    """The host[:port] of an absolute-form request target, else None."""
    low = target[:8].lower()
    if low.startswith(b"http://"):
        rest = target[7:]
    elif low.startswith(b"https://"):
        rest = target[8:]
    else:
        return None
    for stop in (b"/", b"?", b"#"):
        i = rest.find(stop)
        if i >= 0:
            rest = rest[:i]
    rest = rest.rpartition(b"@")[2]  # (userinfo is not the host)
    return rest or None


def held_by(st) -> int:
    """About the memory direction state ``st`` keeps beyond the session's
    fixed cost, in bytes: what the stream stage charges for it
    (``TcpReassembler.charge_app``). Its own objects, bytes waiting for
    their ACK, held for an app parser or the probe, the parsers' messages
    in progress, the last packet (its frame and IP payload copies; its TCP
    payload is a delivered chunk, charged by the native matcher)."""
    n = DIRSTATE_COST + len(st.pending) + len(st.held) + len(st.tail) + len(st.edge)
    if st.defer is not None:
        n += len(st.defer)
    if st.probe:
        n += len(st.probe)
    if st.http is not None:
        n += st.http.held()
    if st.resp is not None:
        n += st.resp.held()
    if st.tls_raw:
        n += len(st.tls_raw)
    pkt = st.last_pkt
    if pkt is not None:
        n += len(pkt.raw) + len(pkt.ip_payload) + PACKET_COST
    # the last segment the reassembler's sink took (its bytes are in
    # ``defer``, charged by the reassembler as they came; its packet from
    # the next charge on)
    sp = st.d.sink_pkt
    if sp is not None and sp is not pkt:
        n += len(sp.raw) + len(sp.ip_payload) + PACKET_COST
    return n


def _trim_reqlog(flow, keep: int) -> None:
    drop = len(flow.reqlog) - keep
    if drop > 0:
        del flow.reqlog[:drop]
        flow.expected = max(0, flow.expected - drop)
        flow.answered = max(0, flow.answered - drop)


def _new_across(elements, tail: bytes, data: bytes) -> bool:
    """Whether a match of ``elements`` in ``tail + data`` uses bytes of
    ``data`` when ``tail`` alone matches too (and ``data`` alone does not).

    One unanchored content: looked for with one byte of the tail fewer than
    the content (sigmatch.cross_span), so a match must reach into ``data``.
    Contents that cutting the front can only lose (sigmatch.suffix_monotone):
    the shortest end of the tail that still gives a match with ``data`` is
    found by halving (11 inspections for a 2 KB tail, only in this case),
    the match starting latest; it is new if that much tail alone has none.
    Any other shape (negations, anchors, pcre, byte tests): not new, as
    before (a copy in the tail hides one across the boundary)."""
    k = sigmatch.cross_span(elements)
    if k is not None:
        return bool(k) and _inspect(elements, tail[-k:] + data, {})
    if not sigmatch.suffix_monotone(elements):
        return False
    lo, hi = 1, len(tail)
    while lo < hi:
        mid = (lo + hi) // 2
        if _inspect(elements, tail[-mid:] + data, {}):
            hi = mid
        else:
            lo = mid + 1
    return not _inspect(elements, tail[-lo:], {})


def _size_bounds(rules, g) -> dict:
    """Rule idx -> (dsize, lo, hi) for the packet rules of ``g`` whose
    payload must be longer than lo and at most hi bytes long, or fit a
    dsize: absolute ``isdataat:N`` needs more than N bytes, ``isdataat:!N``
    at most N. A fast pattern found in a payload of another length makes
    no candidate (ET's DNS rules with ``dsize:>300`` or ``isdataat:2049``
    found their pattern in every query or answer and were checked each
    time: 7,148 checks on the bench capture)."""
    out = {}
    for idxs in list(g.patterns.values()) + [g.always]:
        for i in idxs:
            r = rules[i].src
            lo, hi = -1, None
            for e in r.elements:
                if isinstance(e, IsDataAt) and not e.relative and e.buffer is None and \
                        type(e.offset) is int:  # (not a byte_extract variable)
                    if e.negated:
                        hi = e.offset if hi is None else min(hi, e.offset)
                    else:
                        lo = max(lo, e.offset)
            if r.dsize is not None or lo >= 0 or hi is not None:
                out[i] = (r.dsize, lo, hi)
    return out


def _sized_out(cands, sized, n, dsize_n):
    """``cands`` (an iterable of rule idxs) less those ``sized`` says cannot
    match an inspected buffer of n bytes whose packet's dsize is dsize_n
    (``_packet_opts``: 0 for a packet rule on what is not TCP, UDP or ICMP)."""
    keep = []
    for i in cands:
        b = sized.get(i)
        if b is not None:
            ds, lo, hi = b
            if n <= lo or (hi is not None and n > hi) or (
                    ds is not None and not ds.matches(dsize_n)):
                continue
        keep.append(i)
    return keep


def _payload_of(pkt):
    """The payload Suricata inspects: for ICMP what follows the 8-byte header
    (our decoder's ICMP payload starts after type/code/checksum)."""
    if pkt.proto in (1, 58):
        return pkt.payload[4:]
    return pkt.payload


def _sig_of(d):
    """The DirState of TCP direction ``d`` (None: no direction, or none made)."""
    sm = d.det if d is not None else None
    return getattr(sm, "sig", None) if sm is not None else None


def _is_client(d) -> bool:
    """Whether TCP direction ``d`` is the client's (Suricata's to_server).

    The SYN's sender is the client. A connection picked up midstream has no
    SYN: the reassembler calls the first sender the client, but when that
    sender used a well-known port toward an ephemeral one it is the server
    answering (Suricata reverses such flows once the protocol is seen)."""
    ses = d.session
    c = ses.client
    if ses.midstream and c is not None and c.sport < 1024 <= c.dport:
        return c is not d
    return c is d


def _apply_bits(sets, bits) -> None:
    for fb in sets:
        for n in fb.names:
            if fb.cmd == "set":
                bits.add(n)
            elif fb.cmd == "unset":
                bits.discard(n)
            elif n in bits:
                bits.discard(n)
            else:
                bits.add(n)


def _stream_size_ok(sizes, d) -> bool:
    """stream_size: Suricata counts next_seq - isn per side (the SYN included)."""
    ses = getattr(d, "session", None)
    if ses is None or ses.client is None or ses.server is None:
        return False
    csize, ssize = ses.client.off + 1, ses.server.off + 1
    for ss in sizes:
        side = ss.side
        if side == "client":
            ok = ss.matches(csize)
        elif side == "server":
            ok = ss.matches(ssize)
        elif side == "both":
            ok = ss.matches(csize) and ss.matches(ssize)
        else:
            ok = ss.matches(csize) or ss.matches(ssize)
        if not ok:
            return False
    return True


def _bits_ok(checks, flow) -> bool:
    bits = flow.bits if flow is not None else ()
    for f in checks:
        if f.any_of:
            hit = any(n in bits for n in f.names)
        else:
            hit = all(n in bits for n in f.names)
        if f.cmd == "isset" and not hit:
            return False
        if f.cmd == "isnotset":
            if f.any_of:
                if all(n in bits for n in f.names):
                    return False
            elif any(n in bits for n in f.names):
                return False
    return True


def _ints_ok(checks, flow) -> bool:
    """A rule's flowint tests on the flow (Suricata's DetectFlowintMatch)."""
    if flow is None:
        return False
    ints = flow.ints or {}
    for c in checks:
        v = ints.get(c.name)
        if c.op == "isset" or c.op == "notset":
            if (v is None) == (c.op == "isset"):
                return False
            continue
        if v is None:
            return False
        t = c.value if type(c.value) is int else ints.get(c.value, 0)
        if not COMPARE[c.op](v, t):
            return False
    return True


def _apply_ints(mods, flow) -> None:
    """A matching rule's flowint changes, in order (unsigned 32-bit)."""
    ints = flow.ints
    if ints is None:
        ints = flow.ints = {}
    for m in mods:
        t = m.value if type(m.value) is int else ints.get(m.value, 0)
        v = ints.get(m.name)
        if m.op == "=" or m.op == "+" and v is None:
            ints[m.name] = t
        elif v is not None:
            ints[m.name] = (v + t if m.op == "+" else v - t) & 0xFFFFFFFF


_REQUEST_SIDE = object()


def _resp_buffer(resp, name):
    """A response transaction's buffer ``name``; _REQUEST_SIDE for the
    request's buffers (http.uri in a to_client rule reads the request)."""
    if name in ("file.data", "http.response_body"):
        return resp.body or None
    if name == "http.stat_code":
        return resp.stat_code or None
    if name == "http.stat_msg":
        return resp.stat_msg or None
    if name == "http.response_line":
        return resp.response_line or None
    if name in ("http.response_header", "http.header"):
        return resp.header or None
    if name in ("http.response_header.raw", "http.header.raw"):
        return resp.raw_header or None
    if name == "http.header_names":
        if not resp.headers:
            return None
        return b"\r\n" + b"".join(n + b"\r\n" for n, _ in resp.headers) + b"\r\n"
    if name == "http.start":
        return resp.response_line + b"\r\n" + (resp.raw_header or b"")
    if name == RAW_TX:
        return _resp_buffer(resp, "http.start") + (resp.body or b"")
    if name == "http.protocol":
        return resp.protocol or None
    if name == "http.cookie":
        return resp.get(b"set-cookie")
    if name == "http.server":
        return resp.get(b"server")
    if name == "http.location":
        return resp.get(b"location")
    key = _HDR_BUF.get(name)
    if key is not None and name not in ("http.user_agent", "http.referer", "http.accept",
                                        "http.accept_enc", "http.accept_lang"):
        return resp.get(key)
    return _REQUEST_SIDE


_HDR_BUF = {
    "http.user_agent": b"user-agent", "http.cookie": b"cookie", "http.accept": b"accept",
    "http.accept_enc": b"accept-encoding", "http.accept_lang": b"accept-language",
    "http.content_type": b"content-type", "http.content_len": b"content-length",
    "http.connection": b"connection", "http.referer": b"referer",
}


_TLS_VERSION_NAMES = {0x0002: "SSLv2", 0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLS 1.1",
                      0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


def _meta_snapshot(meta: dict) -> dict:
    """A copy of the flow's app-layer objects as they are now (the flow's
    go on changing after the alert is made: objects and their dicts, such
    as ssh's two sides, are updated in place; lists are replaced whole)."""
    return {k: {f: dict(x) if type(x) is dict else x for f, x in v.items()}
            for k, v in meta.items()}


def _flow_meta(flow, proto: str) -> dict:
    meta = flow.meta
    if meta is None:
        meta = flow.meta = {}
    return meta.setdefault(proto, {})


def _meta_side(flow, proto: str, client: bool) -> dict:
    return _flow_meta(flow, proto).setdefault("client" if client else "server", {})


def _tls_meta(flow, kind: str, info: dict) -> None:
    """EVE's ``tls`` object of an alert (Suricata's JsonTlsLogJSONExtended):
    sni and ja3 from the ClientHello, version and ja3s from the
    ServerHello, the certificate's names, serial, fingerprint and dates."""
    t = _flow_meta(flow, "tls")
    if kind == "client_hello":
        if info.get("sni"):
            t["sni"] = _eve_text(bytes(info["sni"]))
        if info.get("ja3"):
            t["ja3"] = {"hash": info["ja3_hash"], "string": info["ja3"]}
    elif kind == "server_hello":
        v = info.get("version", 0)
        t["version"] = _TLS_VERSION_NAMES.get(v, "TLS 1.3" if v >> 8 == 0x7F else f"0x{v:04x}")
        if info.get("ja3s"):
            t["ja3s"] = {"hash": info["ja3s_hash"], "string": info["ja3s"]}
    elif kind == "certificate" and "subject" not in t:
        for key, name in (("subject", "subject"), ("issuer", "issuerdn"), ("serial", "serial"),
                          ("fingerprint", "fingerprint")):
            if info.get(key):
                t[name] = info[key]
        for key, name in (("not_before", "notbefore"), ("not_after", "notafter")):
            if info.get(key) is not None:
                t[name] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(info[key]))


def _smtp_meta(flow, env) -> None:
    """EVE's ``smtp`` object: the session's HELO name, the mail's MAIL FROM
    and RCPT TO addresses (Suricata's JsonSmtpLogJSON)."""
    m = _flow_meta(flow, "smtp")
    m.clear()
    if env.helo is not None:
        m["helo"] = _eve_text(env.helo)
    if env.mail_from is not None:
        m["mail_from"] = _eve_text(env.mail_from)
    if env.rcpt_to:
        m["rcpt_to"] = [_eve_text(r) for r in env.rcpt_to]


def _http_meta(bufs) -> dict:
    """An HTTP transaction's metadata as Suricata's EVE alert carries it
    (its ``http`` object: EveHttpLogJSONBasic and Extended)."""
    req, resp = bufs.req, bufs.resp
    out = {}
    if req is not None:
        host = bufs.get("http.host")
        if host:
            out["hostname"] = _eve_text(host)
        if req.target:  # (Suricata's C writer leaves an empty value out)
            out["url"] = _eve_text(req.target)
        ua = bufs.get("http.user_agent")
        if ua:
            out["http_user_agent"] = _eve_text(ua)
    if resp is not None:
        ctype = resp.get(b"content-type")
        if ctype:
            out["http_content_type"] = _eve_text(ctype.split(b";", 1)[0].strip())
    if req is not None:
        ref = bufs.get("http.referer")
        if ref:
            out["http_refer"] = _eve_text(ref)
        if req.method:
            out["http_method"] = _eve_text(req.method)
        if req.version:
            out["protocol"] = _eve_text(req.version)
    elif resp is not None and resp.protocol:
        out["protocol"] = _eve_text(resp.protocol)
    if resp is not None:
        if resp.status is not None:
            out["status"] = resp.status
        loc = resp.get(b"location")
        if loc:
            out["redirect"] = _eve_text(loc)
    out["length"] = resp.body_length if resp is not None else 0
    return out


class _HttpBuffers:
    """The request buffers of one transaction, built when first asked for."""

    __slots__ = ("req", "pers", "cache", "hdrs", "resp")

    def __init__(self, req, pers, resp=None):
        self.req = req  # None: a response whose request was not seen
        self.pers = pers
        self.resp = resp  # set for a response transaction
        self.cache = {}
        self.hdrs = None

    def get(self, name):
        c = self.cache
        if name in c:
            return c[name]
        v = c[name] = self._make(name)
        return v

    _resp = staticmethod(_resp_buffer)

    def _header(self, key):
        h = self.hdrs
        if h is None:
            h = self.hdrs = {}
            for n, v in (self.req.headers if self.req is not None else ()):
                h.setdefault(n.lower(), []).append(v)
        vals = h.get(key)
        return b", ".join(vals) if vals else None

    def header_lines(self, name):
        """``http.request_header``/``http.response_header``: each header of
        the message as "Name: value"."""
        msg = self.resp if name == "http.response_header" else self.req
        return [n + b": " + v for n, v in msg.headers] if msg is not None else []

    def _make(self, name):
        resp = self.resp
        if resp is not None:
            if name == "files":
                # the body, if any, named by Content-Disposition, else by
                # the request's URI path (libhtp's HtpResponseBodyHandle)
                if resp.body_length <= 0:
                    return []
                fname = disposition_name(resp.get(b"content-disposition"))
                if fname is None:
                    fname = uri_path(self.req.target, self.pers) if self.req is not None \
                        else b""
                return [FileInfo(fname, resp.body or b"", resp.complete and
                                 not resp.body_truncated)]
            if name == "file.name":
                return b"\x00".join(f.name for f in self.get("files")) or None
            v = self._resp(resp, name)
            if v is not _REQUEST_SIDE:
                return v
        req = self.req
        if req is None:
            return None
        if name == "http.method":
            return req.method
        if name == "http.uri.raw":
            return req.target
        if name == "http.uri":
            try:
                return normalize_uri(req.target, self.pers or "generic")[0]
            except Exception:  # never let a normalizer bug drop the request
                return req.target
        if name == "http.request_line":
            return req.request_line
        if name == "http.protocol":
            return req.version or None
        if name in ("http.header", "http.header.raw"):
            if not req.headers:
                return None
            sep = b": " if name == "http.header" else b": "
            hs = req.headers
            if name == "http.header":
                hs = [(n, v) for n, v in hs if n.lower() != b"cookie"]
            return b"".join(n + sep + v + b"\r\n" for n, v in hs) + (
                b"\r\n" if name == "http.header.raw" else b"")
        if name == "http.header_names":
            if not req.headers:
                return None
            return b"\r\n" + b"".join(n + b"\r\n" for n, _ in req.headers) + b"\r\n"
        if name == "http.request_header":  # (the prefilter's view: every header)
            return b"".join(h + b"\r\n" for h in self.header_lines(name)) or None
        if name == "http.start":
            return req.request_line + b"\r\n" + b"".join(
                n + b": " + v + b"\r\n" for n, v in req.headers) + b"\r\n"
        if name == RAW_TX:
            return self.get("http.start") + req.body
        if name == "http.host":
            # libhtp's request hostname: an absolute-form target's authority
            # wins over the Host header, as at the server (RFC 9112 3.2.2)
            h = _uri_host(req.target) or req.host
            if h is None:
                return None
            h = h.lower()
            if h.startswith(b"["):
                return h
            return h.rsplit(b":", 1)[0] if h.count(b":") == 1 else h
        if name == "http.host.raw":
            return req.host
        if name in ("http.request_body", "file.data"):
            return req.body or None
        if name == "files":
            return request_files(req, self.pers)
        if name == "file.name":
            return b"\x00".join(f.name for f in self.get("files")) or None
        key = _HDR_BUF.get(name)
        if key is not None:
            return self._header(key)
        return None
