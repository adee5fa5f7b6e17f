"""Detect stage: a parser for Snort/Suricata rule files (the second rule format).

Protocol convention (read this first, engine)
---------------------------------------------
``rule.proto`` is the header's protocol word as written, lower case:
``tcp udp icmp icmpv6 ip ipv6 tcp-pkt tcp-stream pkthdr`` or an app-layer
protocol ``http tls ssl dns ssh ftp smtp smb``. Two module mappings say what
it means:

- ``TRANSPORTS[rule.proto]``: the transports the rule runs over, a tuple of
  ``"tcp" "udp" "icmp" "ip"`` (``("ip",)``: any IP packet). App-layer
  headers are ``("tcp",)`` except ``dns``: ``("udp", "tcp")``. ``pkthdr``
  is ``("ip",)``: every packet, also one that failed to decode (Suricata
  uses it for ``decode-event`` rules).
- ``rule.app_proto``: None, or the app-layer protocol the flow must have
  been detected as: ``"http" "tls" "dns" "ssh" "ftp" "smtp" "smb"``
  (``ssl`` is ``"tls"``). It comes from the header (``APP_PROTO``) *or*, as
  Suricata does, from the keywords: an ``http.*`` buffer makes the rule
  http, ``tls.*``/ssl_version/ssl_state tls, ``dns.query`` dns; so ``alert
  tcp ... (tls_sni; ...)`` has proto "tcp" and app_proto "tls". Two
  protocols in one rule are Suricata's "conflicting keywords" error.
  ``file.data`` leaves it alone (HTTP bodies and SMTP attachments).

``NATIVE_PROTO`` (for ``to_rule``) maps the single-transport headers to the
native format's tcp/udp/icmp/ip; dns has no native form.

Reads rules such as::

    alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET TROJAN x"; \\
        flow:established,to_server; content:"/gate.php"; http_uri; \\
        pcre:"/^\\/gate\\.php\\?id=\\d+$/U"; sid:2000001; rev:2;)

into ``SuricataRule`` objects: the header (action, protocol, address specs
with variables expanded, port specs, direction) and the options, the payload
ones as an ordered tuple of detection elements (``ContentMatch``,
``PcreMatch``, ``IsDataAt``, ``BufferSize``, ``ByteTest``, ``ByteJump``,
``ByteExtract``), each with the buffer it inspects (``None`` for the packet
payload / TCP stream, or a buffer name such as ``"http.uri"``).

This module only *parses*; ``SuricataRule.to_rule()`` turns the simplest
rules (plain contents only, no positions, no buffers, no negation, no pcre)
into a native ``pakemon.detect.rules.Rule`` that the native engine runs, with
documented approximations (addresses and flow direction/state are not
checked, see ``to_rule``); every other rule says why it can't be converted.

API
---
``parse_suricata_rules(text, filename, vars=None) -> (rules, skipped, errors)``
    ``rules``: ``SuricataRule`` list; ``skipped``: ``SkippedRule`` list, each a
    ``(line, sid, keyword)`` tuple for a rule using something outside the
    supported set (below); ``errors``: ``RuleError`` list
    (``FILE:LINE:COLUMN: message``) for malformed rules. Raises nothing,
    whatever the text.
``load_suricata_rules(path, vars=None) -> SuricataRuleSet``
    a file, a directory (its ``*.rules``, sorted) or a list of those; logs one
    warning per skipped rule and a summary (logger ``pakemon.detect.suricata``).
``detect_format(text) -> "native" | "suricata"``
``vars``: ``None`` (Suricata's defaults, ``pakemon.detect.vars``), a mapping
    of overrides, a ``Vars``, or the path of a vars file.

Engine contract (what each parsed keyword means)
------------------------------------------------
Elements (``rule.elements``, in rule order; each has ``.buffer``):

- ``ContentMatch``: ``offset``/``depth``/``distance``/``within`` are an int,
  or a str naming a ``ByteExtract`` earlier in the rule (its value at match
  time). ``fast_pattern``, ``nocase``, ``negated`` ... as in Suricata.
- ``ByteTest``: read ``nbytes`` at ``offset`` (from the buffer start, or
  from the end of the previous match when ``relative``), big endian unless
  ``big_endian`` is False, or as text in base ``string_base`` (10/16/8;
  ``nbytes`` 0 with a string base: as many digits as there are, Suricata's
  reading); AND with ``bitmask`` (then shift right by the mask's trailing
  zeros, as Suricata); compare ``op`` (``< > = <= >= & ^``; ``&``: any bit
  of ``value`` set, ``^``: value XOR nonzero) with ``value``; ``negated``
  inverts. ``value``/``offset`` may be a byte_extract name (str).
- ``ByteJump``: read like byte_test, multiply by ``multiplier``, round up to
  a multiple of 4 when ``align``, add ``post_offset``; move the cursor that
  far past the bytes read (``from_beginning``: from the buffer start,
  ``from_end``: from its end). No match if the result is past the end.
- ``ByteExtract``: read like byte_test (``align`` 2 or 4 rounds up), times
  ``multiplier``, into variable ``name`` for the later elements of the rule;
  moves the relative cursor past the bytes read.
- The buffer of a byte_* keyword: the sticky buffer; else, when relative,
  the buffer of the previous content/pcre/isdataat/byte_*; else the payload.

Buffers: ``None`` (payload/stream), ``http.method http.uri http.uri.raw
http.request_line http.header http.header.raw http.header_names http.host
http.host.raw http.user_agent http.cookie http.request_body http.accept
http.accept_enc http.accept_lang http.content_type http.content_len
http.connection http.referer http.protocol http.start http.stat_code
http.stat_msg http.response_line http.server http.location file.data
tls.sni tls.cert_subject tls.cert_issuer tls.cert_serial tls.cert_fingerprint
dns.query``. ``file.data`` is the HTTP response body (Suricata 4's
file_data, http_server_body, ``pcre/Q``) or, in an smtp rule, the attachment
data; a to_server HTTP rule's file.data is the request body (Suricata 6+).

Rule fields beyond Suricata's obvious ones:

- ``flowbits``: ``Flowbit(cmd, names, any_of)`` in rule order; cmd set,
  unset, toggle (every name), isset/isnotset (the test holds for every name,
  or with ``any_of``, written ``a|b``, for at least one: Suricata's
  ``isnotset,a|b`` is "a or b is not set"), noalert (no names; also sets
  ``noalert``: the rule matches and sets its bits but raises no alert).
  ``a&b`` (every name) is Snort's syntax; Suricata would take it as one
  name, ET Open doesn't use it.
- ``stream_size``: tuple of ``StreamSize(side, op, value)``, all must hold:
  the bytes seen on the TCP stream from the server, the client, both sides
  (each) or either side, compared with ``op`` (``< > = != <= >=``).
- ``ip_proto``: ``IntCompare`` on the IP protocol number (names such as
  ``tcp`` are turned into numbers; ``!``, ``<``, ``>`` allowed).
- ``ip_id``: ``id:N``, the IPv4 identification field equals N.
- ``flowints``: tuple of ``Flowint``, per-flow integers set, changed and
  compared, in rule order.
- ``target``: ``src_ip`` or ``dest_ip``, the attacked side (EVE's
  ``alert.source``/``alert.target``), or None.
- ``xbits``: tuple of ``Xbit``, host- or address-pair-tracked bits with an
  expiry, in rule order; ``noalert;`` (Suricata 7) sets ``noalert``.
- ``header``: ``IpHeader``, the packet header keywords ttl, tos, ipopts,
  sameip, fragbits, fragoffset, seq, ack, window, tcp.mss, vlan.id,
  vlan.layers and rpc (None: none).
- ``transforms``: buffer name -> the ``TRANSFORMS`` written right after its
  sticky buffer keyword, in order (``dns.query; dotprefix; content:...``):
  that buffer's contents are matched in the transformed copy. A buffer
  named twice must carry one chain.
- ``ssl_version``: tuple of ``sslv2 sslv3 tls1.0 tls1.1 tls1.2 tls1.3``,
  matches when the TLS version is any of them; a ``!`` prefix: is not.
- ``ssl_state``: tuple of ``client_hello server_hello client_keyx
  server_keyx unknown`` (written ``a|b``): any of them has been seen.
- ``dns_opcode``: ``IntCompare`` on a DNS message's opcode (queries and
  responses).
- ``tls_version``: (version, raw) from ``tls.version:1.2`` or ``0x7f12``:
  the direction's version as Suricata 7+ keeps it (its hello's, the
  supported_versions extension's when present) equals it.
- ``tag`` is accepted and its syntax checked, nothing is kept: it only asks
  Suricata to log the flow's following packets, and there is no such packet
  log here (the alert itself is unchanged).

Supported (``SUPPORTED_KEYWORDS``)
----------------------------------
- actions alert, drop, reject, pass; protocols as above; directions ``->``
  and ``<>``.
- msg sid rev gid classtype priority reference metadata; content (``|hex|``,
  escapes ``\\; \\" \\\\ \\:``, ``!``) with nocase offset depth distance within
  startswith endswith rawbytes fast_pattern (``;``, ``:only;``, ``:O,L;``);
  isdataat; pcre (flags i s m x A E G R B O and the buffer flags U I H D M C
  P V W Z S Y Q); byte_test byte_jump byte_extract byte_math; base64_decode
  and base64_data; flow; flowbits; dsize;
  flags; itype; icode; icmp_id; icmp_seq; urilen; bsize; threshold and
  detection_filter (type/track/count/seconds); decode-event; stream-event;
  stream_size; ip_proto; id; ttl; tos; ipopts; sameip; fragbits; fragoffset;
  seq; ack; window; tcp.mss; pkt_data; xbits; hostbits; flowint; noalert; target;
  requires (versions against SURICATA_VERSION; a feature or unmet version skips);
  vlan.id; vlan.layers; flow.age; absent (and absent: or_else); rpc;
  prefilter (accepted, a hint only); the header buffers ipv4.hdr ipv6.hdr
  tcp.hdr udp.hdr icmpv4.hdr icmpv6.hdr; the transforms dotprefix to_lowercase
  to_uppercase strip_whitespace compress_whitespace url_decode to_md5 to_sha1
  to_sha256 xor from_base64 pcrexform; dataset and datarep (``DataSet``,
  ``DatasetCheck``, ``DatarepCheck``; the file keywords filename, fileext,
  the file.name buffer, filesize, filemd5/filesha1/filesha256 and filemagic
  (``FileCheck``: one file of a transaction must pass them all; filemagic
  with libmagic only); filestore (scopes file and tx: an alert carries the
  files, the output stage writes them); entropy (``EntropyCheck``); iprep
  (``pakemon.detect.iprep``: the reputation files given to the loader);
  the buffers ip.src and ip.dst for address sets); ssl_version; ssl_state;
  tls.version; tls.cert_chain_len; dns.opcode; tag; ftpbounce (an FTP PORT
  command of the inspected data names another IPv4 address than the
  client's); asn1 (``Asn1Check``: bitstring_overflow, double_overflow,
  oversize_length N, absolute_offset N / relative_offset N).
- sticky buffers: every key of ``STICKY_BUFFERS`` (Suricata 6+ dotted names
  and the Suricata 4/5 names ET Open 4.0 uses, e.g. ``file_data``,
  ``http_accept``, ``tls_sni``, ``dns_query``); content modifiers: every key
  of ``LEGACY_MODIFIERS`` (``http_uri`` ... ``http_stat_code``,
  ``http_stat_msg``, ``http_raw_host``, ``http_server_body``).
- Beyond those (``EXTENSION_KEYWORDS``), three older spellings that Suricata
  itself still accepts: ``uricontent`` (exactly ``content`` + ``http_uri``)
  and ``http_request_line`` / ``http_header_names``; ``bench/et_load.py``
  reports the share with and without them.

Anything else skips the rule (``SkippedRule``; one warning
``FILE:LINE: sid N skipped: unsupported keyword 'lua'``): other keywords
(lua, luajit, ...), other Suricata app-layer
protocols (``alert imap ...``: keyword ``protocol:imap``), the actions
rejectsrc/rejectdst/rejectboth, flow only_frag/no_frag, byte_* with ``dce``
(``byte_test/dce``: needs the DCERPC app layer), threshold forms beyond
type/track/count/seconds (and backoff's multiplier), and a pcre that
Python's ``re`` can't compile even after translation (``pcre-syntax``).

Choices
-------
- Rule lines: ``#`` starts a comment line (so ``# alert ...``, a disabled
  rule, is ignored); a line ending in ``\\`` continues on the next line (the
  backslash is dropped, the next line appended as is); leading blanks are
  allowed. Text after the closing ``)`` is an error.
- An option ends at the first ``;`` not escaped by ``\\``; when its value
  starts with ``"`` (after an optional ``!``), a ``;`` inside the quotes
  doesn't end it, so ``msg:"a; b";`` works. Every option, the last included,
  must end with ``;`` (as in Suricata). Keyword names are case-insensitive.
- content: only ``\\\\ \\" \\; \\:`` are escapes, any other backslash and an
  unescaped ``"`` are errors (as in Suricata); hex digits in ``|..|`` may be
  split by blanks but must total an even count. Suricata's checks on
  modifiers are made: a modifier needs a preceding content; offset/depth
  can't be mixed with distance/within on one content; depth and within must
  be at least the content's length; one fast_pattern per rule; a content
  modifier can't move a content out of another buffer; http.host contents
  must be lower case unless nocase.
- PCRE is translated to Python ``re`` (bytes, ASCII): PCRE-only syntax is
  rewritten (``(?i)`` mid-pattern, ``(?<name>``, ``\\x{..}``, ``\\z``,
  ``\\Z``, ``\\h``, ``\\v``, ``\\R``, ``\\e``, ``\\cX``, ``\\Q..\\E``, POSIX
  ``[:alpha:]`` classes, flags A/E/G); what remains uncompilable (e.g.
  variable-length look-behind, recursion, ``\\K``, backtracking verbs) skips
  the rule as ``pcre-syntax``.
- Relative pcre/isdataat without a buffer of their own inspect the buffer of
  the preceding content/pcre (Suricata's rule).
- byte_test/byte_jump/byte_extract follow Suricata 7's checks: at most 8
  bytes (23 with ``string``; byte_extract: 14 hex, 20 dec, 23 oct), offsets
  and post_offset within -65535..65535, multiplier 1..65535, a number base
  only with ``string``, from_beginning xor from_end; byte_extract also
  refuses a repeated option, ``string`` with an endianness and align other
  than 2/4. Numbers are read as Suricata does (``0x`` hex, leading-0 octal).
  A value/offset/position starting with a letter names a variable, which
  must have been defined by a byte_extract earlier in the rule.
- flowbits: ``a|b`` (any of) only for isset/isnotset, ``a&b`` (all) for
  every command, never both (Snort's rules, which Suricata follows).
- Multiple threshold options in one rule are an error (Suricata: "multiple
  threshold options are not allowed in the same rule").
- A duplicate ``gid:sid`` is an error at the later rule; the first stays.
- ``sid`` is required (1..2^32-1); ``rev`` defaults to 1, ``gid`` to 1.
"""

from __future__ import annotations

import binascii
import ipaddress
import logging
import operator
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Union

from pakemon.detect.rules import Pattern, PatternKind, PortSpec, Rule, RuleError
from pakemon.detect.vars import AddressSpec, SpecError, Vars

__all__ = [
    "ACTIONS",
    "APP_LAYER_PROTOCOLS",
    "APP_PROTO",
    "EXTENSION_KEYWORDS",
    "PROTOCOLS",
    "STICKY_BUFFERS",
    "Asn1Check",
    "SUPPORTED_KEYWORDS",
    "TRANSPORTS",
    "BufferSize",
    "Flowbit",
    "ByteExtract",
    "ByteMath",
    "Base64Decode",
    "ByteJump",
    "ByteTest",
    "ContentMatch",
    "FlowSpec",
    "IntCompare",
    "IsDataAt",
    "PcreMatch",
    "SkippedRule",
    "SuricataRule",
    "SuricataRuleSet",
    "TcpFlags",
    "Threshold",
    "StreamSize",
    "UriLen",
    "buffer_app_proto",
    "detect_format",
    "load_classification_config",
    "load_suricata_rules",
    "parse_suricata_rules",
    "translate_pcre",
]

log = logging.getLogger("pakemon.detect.suricata")

ACTIONS = ("alert", "drop", "reject", "pass")
UNSUPPORTED_ACTIONS = frozenset({"rejectsrc", "rejectdst", "rejectboth", "config"})

# Header protocols. The app-layer ones (http ... smb) and pkthdr keep their
# header word in ``rule.proto``; ``TRANSPORTS`` says what they run over and
# ``APP_PROTO`` which app-layer protocol they require (module docstring).
APP_PROTO: Mapping[str, str] = {
    "http": "http", "tls": "tls", "ssl": "tls", "dns": "dns", "ssh": "ssh", "ftp": "ftp",
    "smtp": "smtp", "smb": "smb",
}  # fmt: skip
PROTOCOLS = (
    "tcp", "udp", "icmp", "icmpv6", "ip", "ipv6", "tcp-pkt", "tcp-stream", "pkthdr",
    *APP_PROTO,
)  # fmt: skip
TRANSPORTS: Mapping[str, tuple[str, ...]] = {
    "tcp": ("tcp",), "tcp-pkt": ("tcp",), "tcp-stream": ("tcp",), "udp": ("udp",),
    "icmp": ("icmp",), "icmpv6": ("icmp",), "ip": ("ip",), "ipv6": ("ip",),
    # pkthdr: every packet, also those that failed to decode (decode-event rules)
    "pkthdr": ("ip",),
    "http": ("tcp",), "tls": ("tcp",), "ssl": ("tcp",), "ssh": ("tcp",), "ftp": ("tcp",),
    "smtp": ("tcp",), "smb": ("tcp",),
    # DNS runs over both: Suricata matches "alert dns" rules on UDP and TCP flows
    "dns": ("udp", "tcp"),
}  # fmt: skip
# the native format has one protocol a rule: only single-transport headers map
NATIVE_PROTO = {
    name: ("icmp" if t[0] == "icmp" else t[0]) for name, t in TRANSPORTS.items() if len(t) == 1
}
# Protocols Suricata knows that this parser doesn't: the rule is skipped.
APP_LAYER_PROTOCOLS = frozenset(
    """ftp-data dcerpc imap pop3 modbus enip dnp3 nfs ntp
    tftp ikev2 ike krb5 dhcp snmp sip rfb mqtt pgsql telnet rdp quic http1 http2 doh2
    bittorrent-dht websocket ldap sctp icmpv4 ipv4 udp-pkt""".split()
)

# sticky buffer keyword -> buffer name (Suricata 6+ dotted names, and the
# Suricata 4/5 names ET Open 4.0 uses: file_data, http_accept, tls_sni, ...)
STICKY_BUFFERS: Mapping[str, str] = {
    "http.method": "http.method",
    "http.uri": "http.uri",
    "http.uri.raw": "http.uri.raw",
    "http.request_line": "http.request_line",
    "http.header": "http.header",
    "http.header.raw": "http.header.raw",
    "http.header_names": "http.header_names",
    "http.host": "http.host",
    "http.host.raw": "http.host.raw",
    "http.user_agent": "http.user_agent",
    "http.cookie": "http.cookie",
    "http.request_body": "http.request_body",
    "http.accept": "http.accept",
    "http_accept": "http.accept",
    "http.accept_enc": "http.accept_enc",
    "http_accept_enc": "http.accept_enc",
    "http.accept_lang": "http.accept_lang",
    "http_accept_lang": "http.accept_lang",
    "http.content_type": "http.content_type",
    "http_content_type": "http.content_type",
    "http.content_len": "http.content_len",
    "http_content_len": "http.content_len",
    "http.connection": "http.connection",
    "http_connection": "http.connection",
    "http.referer": "http.referer",
    "http_referer": "http.referer",
    "http.protocol": "http.protocol",
    "http_protocol": "http.protocol",
    "http.start": "http.start",
    "http_start": "http.start",
    "http.stat_code": "http.stat_code",
    "http.stat_msg": "http.stat_msg",
    "http.response_line": "http.response_line",
    "http_response_line": "http.response_line",
    "http.server": "http.server",
    "http.location": "http.location",
    "file_data": "file.data",
    "file.data": "file.data",
    # Suricata 6+: the response body, which file_data in an HTTP response is
    "http.response_body": "file.data",
    # Suricata 7: each header a buffer of its own, "Name: value"; a rule
    # matches when one header holds all its elements there
    "http.request_header": "http.request_header",
    "http.response_header": "http.response_header",
    # a packet's own header bytes (packet rules): IPv4 with options, the
    # fixed IPv6 header, TCP with options, UDP, ICMP's first 8 bytes
    "ipv4.hdr": "ipv4.hdr",
    "ipv6.hdr": "ipv6.hdr",
    "tcp.hdr": "tcp.hdr",
    "udp.hdr": "udp.hdr",
    "icmpv4.hdr": "icmpv4.hdr",
    "icmpv6.hdr": "icmpv6.hdr",
    # the name of each file of a transaction (HTTP upload or download, SMTP
    # attachment); ``filename``/``fileext`` are contents there
    "file.name": "file.name",
    # a packet's addresses as raw bytes (4 or 16), for dataset/datarep
    "ip.src": "ip.src",
    "ip.dst": "ip.dst",
    "tls.sni": "tls.sni",
    "tls_sni": "tls.sni",
    "tls.cert_subject": "tls.cert_subject",
    "tls_cert_subject": "tls.cert_subject",
    "tls.cert_issuer": "tls.cert_issuer",
    "tls_cert_issuer": "tls.cert_issuer",
    "tls.cert_serial": "tls.cert_serial",
    "tls_cert_serial": "tls.cert_serial",
    "tls.cert_fingerprint": "tls.cert_fingerprint",
    # the inspected direction's hello random: all 32 bytes, the first 4
    # (gmt_unix_time in TLS <= 1.2), the other 28
    "tls.random": "tls.random",
    "tls.random_time": "tls.random_time",
    "tls.random_bytes": "tls.random_bytes",
    "tls_cert_fingerprint": "tls.cert_fingerprint",
    "dns.query": "dns.query",
    "dns_query": "dns.query",
    # JA3/JA3S fingerprints of the ClientHello/ServerHello (the string, its MD5)
    "ja3.hash": "ja3.hash",
    "ja3_hash": "ja3.hash",
    "ja3.string": "ja3.string",
    "ja3_string": "ja3.string",
    "ja3s.hash": "ja3s.hash",
    "ja3s.string": "ja3s.string",
    # the SSH identification line "SSH-<proto>-<software> <comments>"
    "ssh.proto": "ssh.proto",
    "ssh_proto": "ssh.proto",
    "ssh.software": "ssh.software",
    "ssh_software": "ssh.software",
    # HASSH of a KEXINIT (the MD5 as hex, and the string it is made of):
    # the client's, the server's
    "ssh.hassh": "ssh.hassh",
    "ssh.hassh.string": "ssh.hassh.string",
    "ssh.hassh.server": "ssh.hassh.server",
    "ssh.hassh.server.string": "ssh.hassh.server.string",
    # Suricata 8's SMTP envelope: the HELO/EHLO name, the MAIL FROM and each
    # RCPT TO address (a multi-buffer: one recipient must hold it all)
    "smtp.helo": "smtp.helo",
    "smtp.mail_from": "smtp.mail_from",
    "smtp.rcpt_to": "smtp.rcpt_to",
    # older names of the same Suricata sticky buffers (EXTENSION_KEYWORDS)
    "http_request_line": "http.request_line",
    "http_header_names": "http.header_names",
}
# legacy content modifier -> the buffer it moves the preceding content to
LEGACY_MODIFIERS: Mapping[str, str] = {
    "http_method": "http.method",
    "http_uri": "http.uri",
    "http_raw_uri": "http.uri.raw",
    "http_header": "http.header",
    "http_raw_header": "http.header.raw",
    "http_cookie": "http.cookie",
    "http_user_agent": "http.user_agent",
    "http_host": "http.host",
    "http_raw_host": "http.host.raw",
    "http_client_body": "http.request_body",
    "http_stat_code": "http.stat_code",
    "http_stat_msg": "http.stat_msg",
    # Suricata 4: the HTTP response body, i.e. file_data on a to_client flow
    "http_server_body": "file.data",
}
# pcre flag -> buffer
PCRE_BUFFER_FLAGS: Mapping[str, str] = {
    "U": "http.uri",
    "I": "http.uri.raw",
    "H": "http.header",
    "D": "http.header.raw",
    "M": "http.method",
    "C": "http.cookie",
    "P": "http.request_body",
    "V": "http.user_agent",
    "W": "http.host",
    "Z": "http.host.raw",
    "S": "http.stat_code",
    "Y": "http.stat_msg",
    "Q": "file.data",
}
PCRE_FLAGS = frozenset("ismxAEGRBO") | frozenset(PCRE_BUFFER_FLAGS)


# ip_proto names (Suricata takes /etc/protocols names; these are the ones
# rules use, so loading doesn't depend on the host's /etc/protocols)
IP_PROTOCOL_NUMBERS: Mapping[str, int] = {
    "ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "tcp": 6, "egp": 8,
    "igp": 9, "udp": 17, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46,
    "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "eigrp": 88, "ospf": 89, "ospfigp": 89, "pim": 103, "vrrp": 112,
    "l2tp": 115, "sctp": 132, "udplite": 136,
}  # fmt: skip
SSL_VERSIONS = ("sslv2", "sslv3", "tls1.0", "tls1.1", "tls1.2", "tls1.3")
TLS_VERSIONS = {"1.0": 0x0301, "1.1": 0x0302, "1.2": 0x0303, "1.3": 0x0304}
SSL_STATES = ("client_hello", "server_hello", "client_keyx", "server_keyx", "unknown")


def buffer_app_proto(buffer: str | None) -> str | None:
    """The app-layer protocol a buffer belongs to: ``http.*`` -> http,
    ``tls.*`` -> tls, ``dns.*`` -> dns; None for the payload and for
    ``file.data`` (HTTP bodies and SMTP attachments alike)."""
    if buffer is None or buffer == "file.data":
        return None
    return _BUFFER_PROTO.get(buffer.partition(".")[0])


_BUFFER_PROTO = {"http": "http", "tls": "tls", "dns": "dns", "ssh": "ssh", "ja3": "tls",
                 "ja3s": "tls", "smtp": "smtp"}

_META_KEYWORDS = ("msg", "sid", "rev", "gid", "classtype", "priority", "reference", "metadata")
_PAYLOAD_KEYWORDS = (
    "content", "nocase", "offset", "depth", "distance", "within", "startswith", "endswith",
    "isdataat", "rawbytes", "fast_pattern", "pcre", "bsize", "byte_test", "byte_jump",
    "byte_extract", "byte_math", "base64_decode", "base64_data",
)  # fmt: skip
_OTHER_KEYWORDS = (
    "flow", "dsize", "flags", "itype", "icode", "icmp_id", "icmp_seq", "urilen",
    "threshold", "detection_filter", "decode-event", "stream-event", "flowbits", "tag",
    "stream_size", "ip_proto", "id", "ssl_version", "ssl_state", "tcp.flags", "ftpbounce",
    "asn1", "app-layer-protocol", "ttl", "tos", "ipopts", "sameip", "fragbits", "fragoffset",
    "seq", "ack", "window", "pkt_data", "xbits", "noalert", "target", "hostbits", "tcp.mss",
    "prefilter", "flowint", "requires", "vlan.id", "vlan.layers", "flow.age", "absent", "rpc",
    "dataset", "datarep", "filename", "fileext", "filesize", "filemd5", "filesha1",
    "filesha256", "filemagic", "iprep", "filestore", "entropy", "tls.version",
    "dns.opcode", "tls.cert_chain_len",
)  # fmt: skip
# filemd5/filesha1/filesha256: the digest size of each list's lines
FILE_HASHES = {"filemd5": ("md5", 16), "filesha1": ("sha1", 20), "filesha256": ("sha256", 32)}
# dataset: a set's default memory bound (Suricata's datasets.defaults.memcap
# is unlimited by default; one here keeps ``set`` on attacker data bounded),
# and what one value is charged beyond its bytes
DATASET_MEMCAP = 64 * 1024 * 1024
DATASET_VALUE_OVERHEAD = 64
DATASET_TYPES = ("string", "md5", "sha256", "ipv4", "ip", "ipv6")
# the Suricata version whose rule language this follows, for ``requires``
SURICATA_VERSION = (8, 0, 0)
# the comparison operators of requires and flowint
COMPARE = {"=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
           "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# Suricata's transforms: each rewrites the sticky buffer it follows before
# that buffer's contents are matched (``SuricataRule.transforms``)
TRANSFORMS = (
    "dotprefix", "to_lowercase", "to_uppercase", "strip_whitespace", "compress_whitespace",
    "url_decode", "to_md5", "to_sha1", "to_sha256", "xor", "from_base64", "pcrexform",
    "gunzip", "zlib_deflate", "subslice", "header_lowercase", "strip_pseudo_headers",
)  # fmt: skip
# gunzip / zlib_deflate: Suricata 8's default and largest output
DECOMPRESS_DEFAULT, DECOMPRESS_MAX = 1024, 16 << 20
# from_base64's modes, as Suricata names them (its default rfc4648)
BASE64_MODES = ("rfc4648", "rfc2045", "strict")
EXTENSION_KEYWORDS = frozenset({"uricontent", "http_request_line", "http_header_names"})
SUPPORTED_KEYWORDS = (
    frozenset(_META_KEYWORDS + _PAYLOAD_KEYWORDS + _OTHER_KEYWORDS + TRANSFORMS)
    | (frozenset(STICKY_BUFFERS) - EXTENSION_KEYWORDS)
    | frozenset(LEGACY_MODIFIERS)
)
_KNOWN = SUPPORTED_KEYWORDS | EXTENSION_KEYWORDS

_CONTENT_MODIFIERS = frozenset(
    {"nocase", "offset", "depth", "distance", "within", "startswith", "endswith", "rawbytes",
     "fast_pattern"}
)  # fmt: skip

_BLANK = " \t\r\f\v"
_OPTION_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_INT = re.compile(r"[+-]?\d{1,19}\Z")
_WORD = re.compile(r"[A-Za-z0-9_.\-]+\Z")
_UINT32_MAX = 2**32 - 1
_INT32 = (-(2**31), 2**31 - 1)


# =============================================================== data model


@dataclass(frozen=True, slots=True)
class IntCompare:
    """A numeric test: ``N``/``=N``, ``<N``, ``>N``, ``<=N``, ``>=N``, ``!N``,
    or ``A<>B`` (also ``A-B``): strictly between A and B, as in Suricata."""

    op: str  # "=", "<", ">", "<=", ">=", "!=", "<>"
    value: int
    value2: int | None = None
    text: str = ""

    def matches(self, n: int) -> bool:
        op, v = self.op, self.value
        if op == "=":
            return n == v
        if op == "<":
            return n < v
        if op == ">":
            return n > v
        if op == "<=":
            return n <= v
        if op == ">=":
            return n >= v
        if op == "!=":
            return n != v
        return v < n < (self.value2 or 0)

    def ranges(self, maximum: int) -> tuple[tuple[int, int], ...]:
        """The values in 0..maximum that match, as inclusive ranges."""
        op, v = self.op, self.value
        if op == "=":
            spans = [(v, v)]
        elif op == "<":
            spans = [(0, v - 1)]
        elif op == ">":
            spans = [(v + 1, maximum)]
        elif op == "<=":
            spans = [(0, v)]
        elif op == ">=":
            spans = [(v, maximum)]
        elif op == "!=":
            spans = [(0, v - 1), (v + 1, maximum)]
        else:
            spans = [(v + 1, (self.value2 or 0) - 1)]
        return tuple(
            (max(lo, 0), min(hi, maximum))
            for lo, hi in spans
            if lo <= hi and lo <= maximum and hi >= 0
        )


@dataclass(frozen=True, slots=True)
class UriLen:
    compare: IntCompare
    form: str = ""  # "", "raw" or "norm"


@dataclass(frozen=True, slots=True)
class FlowSpec:
    text: str
    to_server: bool = False  # also from_client
    to_client: bool = False  # also from_server
    established: bool = False
    not_established: bool = False
    stateless: bool = False
    only_stream: bool = False
    no_stream: bool = False


TCP_FLAG_BITS = {
    "F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20,
    "E": 0x40, "C": 0x80, "2": 0x40, "1": 0x80,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TcpFlags:
    """``flags:[!|*|+]FLAGS[,IGNORED]``: bits per ``TCP_FLAG_BITS`` (0: none)."""

    text: str
    flags: int
    # "" exactly these, "+" at least these, "*" any of these, "!" not all of these
    modifier: str = ""
    ignore: int = 0

    def matches(self, tcp_flags: int) -> bool:
        value = tcp_flags & ~self.ignore & 0xFF
        if self.modifier == "+":
            return value & self.flags == self.flags
        if self.modifier == "*":
            return bool(value & self.flags) or self.flags == 0
        if self.modifier == "!":
            return value & self.flags != self.flags if self.flags else value != 0
        return value == self.flags


# ipopts names (Snort's and Suricata's) and the IPv4 option types they test
IP_OPTION_TYPES = {"eol": 0, "nop": 1, "rr": 7, "ts": 68, "sec": 130, "esec": 133,
                   "lsrr": 131, "lsrre": 131, "ssrr": 137, "satid": 136, "any": -1}
FRAG_BITS = {"M": 1, "D": 2, "R": 4}  # more fragments, don't fragment, reserved
HOSTBITS_EXPIRE = 3600  # hostbits without ``expire``: Suricata's host table timeout


@dataclass(slots=True)
class IpHeader:
    """The packet header keywords of one rule; every test set must hold.

    Each is a packet test, as in Suricata (they make a rule a packet rule):
    ``ttl`` (IPv4 TTL or IPv6 hop limit), ``tos`` (IPv4), ``ipopts`` (an
    IPv4 option of that type is present; ``any``: any option), ``sameip``
    (source address equals destination), ``fragbits`` (IPv4 MF/DF/reserved
    bits, ``FRAG_BITS``, with Suricata's modifiers), ``fragoffset`` (the
    fragment offset field, in 8-byte units: IPv4, or an IPv6 fragment
    header's), ``seq``/``ack``/``window``/``tcp.mss`` (TCP), ``vlan.id``
    and ``vlan.layers`` (the VLAN tags), ``rpc`` (an ONC RPC call in the
    payload). ``fragbits`` and
    ``fragoffset`` describe single fragments: they never match a datagram
    reassembled from fragments (Suricata's pseudo packet), and the rules
    using them are run on each fragment as it comes."""

    ttl: IntCompare | None = None
    mss: IntCompare | None = None  # ``tcp.mss``: the MSS option's value (packets with one)
    tos: tuple[bool, int] | None = None  # (negated, value)
    ipopt: int | None = None  # an option type, -1 for any
    sameip: bool = False
    fragbits: tuple[str, int] | None = None  # (modifier "" + * !, bits)
    fragoffset: IntCompare | None = None
    seq: int | None = None
    ack: int | None = None
    window: tuple[bool, int] | None = None  # (negated, value)
    # VLAN tags (outermost first): ``vlan.id`` (compare, layer: None for any
    # tag, "all", or an index, -1 the innermost) and ``vlan.layers`` (count)
    vlan_id: tuple[IntCompare, int | str | None] | None = None
    vlan_layers: IntCompare | None = None
    # ``rpc``: an ONC RPC call (RFC 5531) of (program, version, procedure),
    # None for a ``*``; over TCP after the 4-byte record mark
    rpc: tuple[int, int | None, int | None] | None = None

    @property
    def fragment_fields(self) -> bool:
        return self.fragbits is not None or self.fragoffset is not None


@dataclass(frozen=True, slots=True)
class Threshold:
    """threshold (``type`` set) or detection_filter (``type`` None)."""

    track: str  # by_src, by_dst, by_rule, by_both, by_flow (Suricata 7)
    count: int
    seconds: int
    type: str | None = None  # limit, threshold, both, backoff
    multiplier: int = 0  # backoff: alerts at count, count * multiplier, ...


@dataclass(slots=True)
class ContentMatch:
    pattern: bytes
    nocase: bool = False
    negated: bool = False
    # a str names a byte_extract variable of the rule (set at match time)
    offset: int | str | None = None
    depth: int | str | None = None
    distance: int | str | None = None
    within: int | str | None = None
    startswith: bool = False
    endswith: bool = False
    fast_pattern: bool = False
    fast_pattern_only: bool = False
    fast_pattern_chop: tuple[int, int] | None = None  # (offset, length)
    rawbytes: bool = False
    buffer: str | None = None  # None: payload / stream; else e.g. "http.uri"
    text: str = ""  # the value as written, e.g. '!"GET|20|"'
    column: int = 0  # 1-based, in the rule's logical line (continuations joined)

    @property
    def relative(self) -> bool:
        return self.distance is not None or self.within is not None

    @property
    def plain(self) -> bool:
        """Just bytes to find anywhere in the payload (nocase allowed)."""
        return not (
            self.negated
            or self.buffer is not None
            or self.offset is not None
            or self.depth is not None
            or self.distance is not None
            or self.within is not None
            or self.startswith
            or self.endswith
        )


@dataclass(slots=True)
class PcreMatch:
    source: str  # between the slashes, as written
    flags: str  # after the last slash, as written
    regex: re.Pattern  # compiled (bytes) from ``translate_pcre``
    relative: bool = False  # R
    negated: bool = False
    buffer: str | None = None
    text: str = ""
    column: int = 0


@dataclass(slots=True)
class IsDataAt:
    offset: int
    relative: bool = False
    negated: bool = False
    rawbytes: bool = False
    buffer: str | None = None


@dataclass(slots=True)
class Asn1Check:
    """``asn1``: BER objects from an offset of the buffer fail one of the
    checks (``pakemon.detect.asn1``); ``relative_offset`` counts from the
    end of the previous match, ``absolute_offset`` from the buffer start."""

    oversize_length: int | None = None
    bitstring_overflow: bool = False
    double_overflow: bool = False
    absolute_offset: int | None = None
    relative_offset: int | None = None
    buffer: str | None = None


@dataclass(slots=True)
class BufferSize:
    """``bsize``: the size of the sticky buffer it follows."""

    compare: IntCompare
    buffer: str


@dataclass(slots=True)
class ByteTest:
    """``byte_test:N,[!]OP,VALUE,OFFSET[,relative][,big|little][,string,hex|dec|oct]
    [,dce][,bitmask M]``. ``value`` and ``offset`` may name a byte_extract
    variable (str)."""

    nbytes: int
    op: str  # "<", ">", "=", "<=", ">=", "&", "^"
    value: int | str
    offset: int | str
    relative: bool = False
    negated: bool = False
    big_endian: bool = True
    string_base: int | None = None  # 10, 16 or 8 when the bytes are text
    dce: bool = False
    bitmask: int | None = None
    buffer: str | None = None


@dataclass(slots=True)
class ByteJump:
    """``byte_jump:N,OFFSET[,relative][,multiplier M][,big|little][,string,BASE]
    [,align][,from_beginning|from_end][,post_offset P][,dce][,bitmask M]``."""

    nbytes: int
    offset: int | str
    relative: bool = False
    multiplier: int = 1
    big_endian: bool = True
    string_base: int | None = None
    align: bool = False
    from_beginning: bool = False
    from_end: bool = False
    post_offset: int = 0
    dce: bool = False
    bitmask: int | None = None
    buffer: str | None = None


@dataclass(slots=True)
class ByteExtract:
    """``byte_extract:N,OFFSET,NAME[,relative][,multiplier M][,big|little]
    [,string,BASE][,align A][,dce][,bitmask M]``: NAME usable by later
    byte_test/byte_jump/content offset/depth/distance/within (as a str)."""

    nbytes: int
    offset: int
    name: str
    relative: bool = False
    multiplier: int = 1
    big_endian: bool = True
    string_base: int | None = None
    align: int = 0  # 0, 2 or 4
    dce: bool = False
    bitmask: int | None = None
    buffer: str | None = None


@dataclass(slots=True)
class Base64Decode:
    """``base64_decode:[bytes N][, offset O][, relative]``: base64 decoded
    from the buffer (from the last match's end when relative, O bytes on,
    at most N bytes, 65535 by default) as RFC 4648 reads it, up to the first
    byte outside the alphabet; no match when nothing decodes. ``data``: the
    elements written after ``base64_data``, matched in the decoded bytes
    (the rule's other elements go on in the buffer, the position unmoved)."""

    nbytes: int = 0
    offset: int = 0
    relative: bool = False
    buffer: str | None = None
    data: tuple = ()


@dataclass(frozen=True, slots=True)
class ByteMath:
    """``byte_math:bytes N,offset O,oper OP,rvalue V,result NAME[,relative]
    [,endian big|little][,string hex|dec|oct][,bitmask M]`` (any order): the
    field read as byte_extract reads it, ``OP`` (``+ - * / << >>``) applied
    with ``rvalue`` (a number or an earlier variable), then the bitmask; the
    result is the variable NAME for later byte_* and content positions.
    Like byte_extract, it moves the relative position past the field."""

    nbytes: int
    offset: int
    oper: str
    rvalue: int | str
    name: str
    relative: bool = False
    big_endian: bool = True
    string_base: int | None = None
    dce: bool = False
    bitmask: int | None = None
    buffer: str | None = None


@dataclass(frozen=True, slots=True)
class StreamSize:
    """``stream_size:SIDE,OP,N``: the bytes seen so far on the TCP stream.
    ``side``: server, client, both (each side) or either (one side)."""

    side: str
    op: str  # "<", ">", "=", "!=", "<=", ">="
    value: int

    def matches(self, n: int) -> bool:
        return IntCompare(self.op, self.value).matches(n)


@dataclass(frozen=True, slots=True)
class Flowbit:
    """``flowbits:CMD[,NAME[|NAME..|&NAME..]]``; cmd set, unset, toggle,
    isset, isnotset or noalert. ``any_of``: names joined by ``|`` (isset
    a|b is true when either is set); otherwise all names (``&`` or one)."""

    cmd: str
    names: tuple[str, ...] = ()
    any_of: bool = False


@dataclass(frozen=True, slots=True)
class Flowint:
    """``flowint:NAME,OP[,VALUE]``: an unsigned 32-bit integer of the flow.
    ``=``, ``+``, ``-`` change it once the rule matches (``+`` on an unset
    one sets it); ``== != < <= > >=`` compare it (no match while unset),
    ``isset``/``notset`` test it. VALUE: a number or another flowint (0
    while unset)."""

    name: str
    op: str
    value: int | str | None = None


@dataclass(frozen=True, slots=True)
class Xbit:
    """``xbits:CMD,NAME,track ip_src|ip_dst|ip_pair[,expire SECONDS]``: a bit
    kept per host (the packet's source or destination address) or address
    pair, not per flow, for ``expire`` seconds of packet time after it is
    set (Suricata's default 30); cmd set, unset, toggle, isset, isnotset."""

    cmd: str
    name: str
    track: str
    expire: int = 30


class DataSet:
    """A named set of byte strings (Suricata's ``dataset``), shared by
    every rule of a load that names it.

    Types: string (base64 per line in a file), md5 and sha256 (hex, held
    as their 16 or 32 raw bytes: a ``to_md5``/``to_sha256`` buffer's form),
    ipv4 and ip (addresses, held as the 4 or 16 bytes of ``ip.src``/
    ``ip.dst``). ``load``: read once at load; ``state``: read if present,
    written back at the end of input; ``save``: written only. ``memcap``
    bounds what ``set`` adds (``full`` counts the values refused)."""

    __slots__ = ("name", "type", "values", "reps", "save", "memcap", "used", "full", "dirty")

    def __init__(self, name: str, type_: str, memcap: int = 0):
        self.name = name
        self.type = type_
        self.values: set = set()
        # datarep: a value's reputation (0-65535), from a file's second
        # field; a value without one has 0, as in Suricata
        self.reps: dict = {}
        self.save: str | None = None
        self.memcap = memcap or DATASET_MEMCAP
        self.used = 0
        self.full = 0
        self.dirty = False

    def add(self, value: bytes) -> int:
        """1 if added, 0 if there already, -1 if the memcap refused it."""
        if value in self.values:
            return 0
        cost = len(value) + DATASET_VALUE_OVERHEAD
        if self.used + cost > self.memcap:
            self.full += 1
            return -1
        self.values.add(value)
        self.used += cost
        self.dirty = True
        return 1

    def remove(self, value: bytes) -> bool:
        if value not in self.values:
            return False
        self.values.discard(value)
        self.reps.pop(value, None)
        self.used -= len(value) + DATASET_VALUE_OVERHEAD
        self.dirty = True
        return True

    def parse_line(self, line: str) -> bytes:
        """One line of a dataset file (its first CSV field) as a value;
        ValueError if it is not one of the set's type."""
        field = line.split(",", 1)[0].strip()
        t = self.type
        if t == "string":
            return binascii.a2b_base64(field.encode("ascii"), strict_mode=True)
        if t in ("md5", "sha256"):
            v = bytes.fromhex(field)
            if len(v) != (16 if t == "md5" else 32):
                raise ValueError(f"not a {t} in hex")
            return v
        if t == "ipv4":
            return ipaddress.IPv4Address(field).packed
        return ipaddress.ip_address(field).packed  # ip: either family

    def format(self, value: bytes) -> str:
        t = self.type
        if t == "string":
            return binascii.b2a_base64(value, newline=False).decode("ascii")
        if t in ("md5", "sha256"):
            return value.hex()
        return str(ipaddress.ip_address(value))

    def load(self, path: str) -> None:
        """Values (and ``data,reputation`` pairs) from ``path``; OSError or
        ValueError (naming the line)."""
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    value = self.parse_line(line)
                except (ValueError, binascii.Error, UnicodeError) as e:
                    raise ValueError(f"{path}:{n}: not a {self.type} value: {e}") from None
                fields = line.split(",")
                if len(fields) > 1:
                    rep = fields[1].strip()
                    if not rep.isdigit() or int(rep) > 65535:
                        raise ValueError(f"{path}:{n}: not a reputation 0-65535: {rep!r}")
                    self.reps[value] = int(rep)
                self.add(value)
        self.dirty = False

    def write(self) -> None:
        """Write the set to its ``save``/``state`` file (OSError)."""
        if self.save is None:
            return
        tmp = self.save + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            for v in sorted(self.values):
                rep = self.reps.get(v)
                f.write(self.format(v) + ("" if rep is None else f",{rep}") + "\n")
        os.replace(tmp, self.save)
        self.dirty = False


@dataclass(slots=True, eq=False)
class DatasetCheck:
    """``dataset:<cmd>,<name>...``: the whole sticky buffer against ``set``
    (``isset``, ``isnotset``, ``set``: matches when newly added, ``unset``:
    when removed)."""

    cmd: str
    set: DataSet
    buffer: str | None


@dataclass(slots=True)
class EntropyCheck:
    """``entropy:[bytes N][, offset O], value <op>F``: the Shannon entropy
    (bits per byte, 0-8) of the buffer, from ``offset`` (``nbytes`` of it,
    0 for the rest), compared with ``value`` (Suricata 8; ``<>``: strictly
    between ``value`` and ``value2``)."""

    op: str  # "=", "!=", "<", "<=", ">", ">=", "<>"
    value: float
    value2: float | None = None
    nbytes: int = 0
    offset: int = 0
    buffer: str | None = None


@dataclass(slots=True, eq=False)
class FileCheck:
    """A file keyword beside ``file.name``: ``filesize`` (``arg`` an
    IntCompare), ``filemd5``/``filesha1``/``filesha256`` (``arg`` a
    frozenset of digests from the list file; ``negated``: not in it) or
    ``filemagic`` (``arg`` the lower-cased text to find in libmagic's
    description of the file, nocase as Suricata)."""

    kind: str  # "size", "md5", "sha1", "sha256", "magic"
    arg: object
    negated: bool = False


@dataclass(slots=True, eq=False)
class DatarepCheck:
    """``datarep:<name>,<op>,<value>...``: the whole sticky buffer is in
    ``set`` with a reputation ``op`` (``>``, ``<``, ``==``) ``value``."""

    op: str
    value: int
    set: DataSet
    buffer: str | None


Element = Union[ContentMatch, PcreMatch, IsDataAt, BufferSize, ByteTest, ByteJump, ByteExtract,
                ByteMath, Base64Decode, DatasetCheck, DatarepCheck, EntropyCheck]


@dataclass(slots=True)
class SuricataRule:
    action: str
    proto: str
    src: AddressSpec
    src_port: PortSpec
    dst: AddressSpec
    dst_port: PortSpec
    bidirectional: bool
    elements: tuple[Element, ...]
    sid: int
    rev: int = 1
    gid: int = 1
    msg: str = ""
    classtype: str = ""
    priority: int | None = None
    references: tuple[tuple[str, str], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    flow: FlowSpec | None = None
    dsize: IntCompare | None = None
    flags: TcpFlags | None = None
    itype: IntCompare | None = None
    icode: IntCompare | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    urilen: UriLen | None = None
    threshold: Threshold | None = None
    detection_filter: Threshold | None = None
    decode_events: tuple[str, ...] = ()
    stream_events: tuple[str, ...] = ()
    # Suricata app-layer protocol of the header (``alert tls ...``, also
    # ``http`` here) or None: the rule applies only to flows detected as it.
    app_proto: str | None = None
    flowbits: tuple[Flowbit, ...] = ()  # in rule order; noalert sets ``noalert``
    noalert: bool = False
    xbits: tuple[Xbit, ...] = ()  # in rule order
    flowints: tuple[Flowint, ...] = ()  # in rule order
    flow_age: IntCompare | None = None  # ``flow.age``: whole seconds since the flow began
    # ``absent`` (Suricata 8): buffer -> "absent" (the rule needs it missing) or
    # "or_else" (missing, or else its contents match)
    absent: dict = field(default_factory=dict)
    # ``target:dest_ip|src_ip``: which side of an alert is attacked (EVE's
    # alert.source and alert.target); None: not said
    target: str | None = None
    stream_size: tuple[StreamSize, ...] = ()  # all must hold (a range takes two)
    ip_proto: IntCompare | None = None  # the IP protocol number (IPv6: next header)
    ip_id: int | None = None  # ``id``: the IPv4 identification field
    # IP and TCP header tests (``IpHeader``); None for a rule with none
    header: IpHeader | None = None
    # buffer name -> its transforms in order, e.g. {"dns.query": (("dotprefix", None),)}:
    # (name, argument) pairs, the argument the xor key; only transformed buffers
    transforms: dict = field(default_factory=dict)
    ssl_version: tuple[str, ...] = ()  # any of these; "!sslv2": not that one
    ssl_state: tuple[str, ...] = ()  # any of these states (client_hello ...)
    # tls.version: (version, raw) -- the direction's negotiated version
    # equals it; not raw: TLS 1.3 drafts (0x7fNN) count as 1.3
    tls_version: tuple[int, bool] | None = None
    # tls.cert_chain_len: certificates in the server's Certificate message
    tls_chain_len: IntCompare | None = None
    # dns.opcode: the DNS header's opcode (queries and responses alike)
    dns_opcode: IntCompare | None = None
    # ftpbounce: an FTP PORT command of the inspected data names an address
    # other than the client's (the server is asked to connect elsewhere)
    ftpbounce: bool = False
    # app-layer-protocol: (negated, name): the flow's detected protocol is
    # (is not) ``name``; "failed": detection gave up, "unknown": not yet
    app_layer_protocol: tuple[bool, str] | None = None
    # file keywords (``FileCheck``): one file of the transaction must pass
    # them all, and the rule's ``file.name`` contents too
    files: tuple = ()
    # iprep: (side, category id, IntCompare, IpReputation) each; all must hold
    iprep: tuple = ()
    # filestore: (direction "request"|"response"|"both"|None, scope
    # "file"|"tx"): the files an alert of the rule stores; None: none
    filestore: tuple | None = None
    options: tuple[str, ...] = ()  # keyword names in rule order
    file: str = "<string>"
    line: int = 0
    text: str = field(default="", repr=False)

    @property
    def contents(self) -> list[ContentMatch]:
        return [e for e in self.elements if isinstance(e, ContentMatch)]

    @property
    def pcres(self) -> list[PcreMatch]:
        return [e for e in self.elements if isinstance(e, PcreMatch)]

    @property
    def buffers(self) -> set[str | None]:
        return {getattr(e, "buffer", None) for e in self.elements}

    def native_blocker(self, ignore_addresses: bool = True) -> str | None:
        """Why ``to_rule`` can't express this rule natively; None if it can."""
        if self.action == "pass":
            return "a pass rule suppresses alerts; the native format has no actions"
        if self.bidirectional:
            return "'<>' (both directions) has no native form"
        if not ignore_addresses and not (self.src.any and self.dst.any):
            return "address restrictions have no native form"
        if not self.elements:
            return "no content to match"
        for e in self.elements:
            if isinstance(e, PcreMatch):
                return "pcre needs the matching engine"
            if isinstance(e, IsDataAt):
                return "isdataat needs the matching engine"
            if isinstance(e, BufferSize):
                return "bsize needs the matching engine"
            if isinstance(e, Base64Decode):
                return "base64_decode needs the matching engine"
            if isinstance(e, (ByteTest, ByteJump, ByteExtract, ByteMath)):
                return f"{_BYTE_KEYWORD[type(e)]} needs the matching engine"
            if not e.plain:
                what = (
                    "negated content" if e.negated
                    else f"content in buffer {e.buffer}" if e.buffer
                    else "content with a position "
                    "(offset/depth/distance/within/startswith/endswith)"
                )  # fmt: skip
                return f"{what} needs the matching engine"
        for name in ("dsize", "flags", "urilen", "threshold", "detection_filter", "icmp_id",
                     "icmp_seq"):  # fmt: skip
            if getattr(self, name) is not None:
                return f"{name.replace('_', ' ')} needs the matching engine"
        if self.decode_events or self.stream_events:
            return "decode-event/stream-event need the matching engine"
        if self.flowbits:
            return "flowbits need the matching engine"
        if self.stream_size:
            return "stream_size needs the matching engine"
        for name in ("ip_proto", "ip_id"):
            if getattr(self, name) is not None:
                return f"{name} needs the matching engine"
        if self.header is not None:
            return "IP/TCP header keywords need the matching engine"
        if self.dns_opcode is not None:
            return "dns.opcode needs the DNS app layer"
        if self.tls_chain_len is not None:
            return "tls.cert_chain_len needs the TLS app layer"
        if self.ssl_version or self.ssl_state or self.tls_version:
            return "ssl_version/ssl_state/tls.version need the TLS app layer"
        if self.proto not in NATIVE_PROTO:
            runs = " and ".join(TRANSPORTS[self.proto])
            return f"protocol {self.proto} runs over {runs}: a native rule has one protocol"
        if self.flow is not None and (
            self.flow.not_established or self.flow.stateless or self.flow.only_stream
            or self.flow.no_stream
        ):  # fmt: skip
            return f"flow:{self.flow.text} needs the matching engine"
        native = NATIVE_PROTO[self.proto]
        if native == "ip" and not (self.src_port.any and self.dst_port.any):
            return "ports on an ip rule have no native form"
        if native != "icmp" and (self.itype is not None or self.icode is not None):
            return "itype/icode on a non-ICMP rule need the matching engine"
        if native == "icmp":
            for what, cmp in (("itype", self.itype), ("icode", self.icode)):
                if cmp is not None and not cmp.ranges(255):
                    return f"{what}:{cmp.text} matches no value"
        return None

    def to_rule(
        self, ignore_addresses: bool = True, classifications: Mapping[str, int] | None = None
    ) -> Rule | None:
        """The native ``Rule`` for the simplest rules, else None (see
        ``native_blocker``).

        Convertible: alert/drop/reject rules whose detection is plain
        contents only (no offset/depth/distance/within/startswith/endswith,
        no negation, no buffer; nocase is fine). Mapping: name
        ``sid:N`` (``gid:G:sid:N`` for gid != 1), msg, sid, rev, category =
        classtype, severity = priority (else the classtype's priority from
        ``classifications``, else 3); proto by ``NATIVE_PROTO``: tcp, tcp-pkt,
        tcp-stream and the TCP app-layer headers (http, tls, ...) -> tcp, udp
        -> udp, icmp/icmpv6 -> icmp (SRC/DST = itype/icode), ip/ipv6/pkthdr ->
        ip; dns (UDP and TCP) has no native form. Approximations, recorded in
        ``meta["approximations"]`` (an app-layer header becomes "protocol tls
        run as tcp": the flow's protocol is not detected), the
        address specs are not checked (unless ``ignore_addresses=False``,
        which refuses rules with addresses), and flow direction/established
        is left to the native semantics (the stream direction whose ports fit).
        The full Suricata semantics come with the matching engine.
        """
        if self.native_blocker(ignore_addresses) is not None:
            return None
        native = NATIVE_PROTO[self.proto]
        if native == "icmp":
            src = _native_spec(self.itype.ranges(255)) if self.itype else _native_spec(())
            dst = _native_spec(self.icode.ranges(255)) if self.icode else _native_spec(())
        elif native == "ip":
            src = dst = _native_spec(())
        else:
            src = _native_spec(self.src_port.ranges if not self.src_port.any else ())
            dst = _native_spec(self.dst_port.ranges if not self.dst_port.any else ())
        patterns = tuple(
            Pattern(
                PatternKind.NOCASE if c.nocase else PatternKind.BYTES,
                c.pattern,
                text=c.text,
                column=c.column,
            )
            for c in self.contents
        )
        approximations = []
        if not (self.src.any and self.dst.any):
            approximations.append(f"addresses {self.src.text} -> {self.dst.text} not checked")
        if self.flow is not None:
            approximations.append(f"flow:{self.flow.text} left to the native semantics")
        if self.proto != native:
            approximations.append(f"protocol {self.proto} run as {native}")
        severity = self.priority
        if severity is None and classifications:
            severity = classifications.get(self.classtype)
        return Rule(
            name=f"sid:{self.sid}" if self.gid == 1 else f"gid:{self.gid}:sid:{self.sid}",
            proto=native,
            src=src,
            dst=dst,
            patterns=patterns,
            file=self.file,
            line=self.line,
            sid=self.sid,
            rev=self.rev,
            msg=self.msg,
            severity=severity if severity is not None else 3,
            category=self.classtype,
            meta={
                "format": "suricata",
                "action": self.action,
                "gid": self.gid,
                "references": list(self.references),
                "metadata": list(self.metadata),
                "approximations": approximations,
            },
        )


def _native_spec(ranges: tuple[tuple[int, int], ...]) -> PortSpec:
    if not ranges:
        return PortSpec("*")
    text = ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ranges)
    return PortSpec(text, tuple(ranges), any=False)


_BYTE_KEYWORD = {ByteTest: "byte_test", ByteJump: "byte_jump", ByteExtract: "byte_extract",
                 ByteMath: "byte_math"}


class _SkippedBase(NamedTuple):
    line: int
    sid: int
    keyword: str


class SkippedRule(_SkippedBase):
    """``(line, sid, keyword)``: a rule skipped for using ``keyword``.

    ``keyword`` is the keyword name (``flowbits``), or ``protocol:tls``,
    ``action:rejectboth``, ``direction:=>``, ``flow:only_frag``,
    ``byte_test/dce`` (a byte_* keyword with dce), ``pcre-syntax``, ``threshold``.
    Extra attributes: ``file``, ``detail`` (the reason in words), ``blockers``
    (every unsupported thing found, ``keyword`` first) and ``options``
    (the rule's keyword names).
    """

    def __new__(cls, line: int, sid: int, keyword: str, *, file: str = "<string>",
                detail: str = "", blockers: tuple[str, ...] = (),
                options: tuple[str, ...] = ()):  # fmt: skip
        self = super().__new__(cls, line, sid, keyword)
        self.file = file
        self.detail = detail or f"unsupported keyword {keyword!r}"
        self.blockers = blockers or (keyword,)
        self.options = options
        return self

    @property
    def message(self) -> str:
        return f"{self.file}:{self.line}: sid {self.sid} skipped: {self.detail}"

    def __str__(self) -> str:
        return self.message


@dataclass
class SuricataRuleSet:
    rules: list[SuricataRule]
    skipped: list[SkippedRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rules) + len(self.skipped) + len(self.errors)

    def skipped_by_keyword(self) -> Counter:
        return Counter(s.keyword for s in self.skipped)

    def summary(self, top: int = 10) -> str:
        line = (
            f"{len(self.rules)} of {self.total} Suricata rules loaded "
            f"from {len(self.files)} file(s); {len(self.skipped)} skipped, "
            f"{len(self.errors)} with errors"
        )
        counts = self.skipped_by_keyword()
        if counts:
            shown = ", ".join(f"{k} {n}" for k, n in counts.most_common(top))
            more = len(counts) - top
            line += f"; skipped by keyword: {shown}" + (f" (+{more} more)" if more > 0 else "")
        return line

    def to_rules(self, ignore_addresses: bool = True) -> list[Rule]:
        out = []
        for r in self.rules:
            native = r.to_rule(ignore_addresses)
            if native is not None:
                out.append(native)
        return out


# ==================================================================== parsing


class _Error(Exception):
    def __init__(self, pos: int, message: str):
        super().__init__(message)
        self.pos = pos
        self.message = message


_SIZE = re.compile(r"(\d{1,15})\s*(?:([kmg])(?:i?b)?|b)?", re.IGNORECASE)
_UNIT_SHIFT = {None: 0, "k": 10, "m": 20, "g": 30}  # Suricata's size units, binary


def _size_value(text: str) -> int | None:
    """A size as Suricata writes one (``1024``, ``10kb``, ``64mb``, ``1gb``),
    or None."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        return None
    return int(m.group(1)) << _UNIT_SHIFT[m.group(2) and m.group(2).lower()]


class _Skip(Exception):
    def __init__(self, keyword: str, detail: str = ""):
        super().__init__(keyword)
        self.keyword = keyword
        self.detail = detail or f"unsupported keyword {keyword!r}"


class _Opt(NamedTuple):
    name: str
    value: str | None
    name_pos: int
    value_pos: int


def parse_suricata_rules(
    text: str, filename: str = "<string>", vars: object = None, datasets: dict | None = None,
    reputation=None,
) -> tuple[list[SuricataRule], list[SkippedRule], list[RuleError]]:
    """Parse a Suricata/Snort rule file's text: ``(rules, skipped, errors)``.

    Never raises for any ``text`` (a bad ``vars`` argument may: a vars file
    with errors is ``RuleFileError``). ``datasets``: the named sets of the
    load (``DataSet``; shared across files: pass one dict to each call);
    ``reputation``: the ``IpReputation`` iprep rules read (None: they are
    errors).
    """
    loader = _Loader(Vars.coerce(vars), datasets, reputation)
    loader.feed(text, filename)
    return loader.rules, loader.skipped, loader.errors


def load_suricata_rules(
    path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], vars: object = None,
    datasets: dict | None = None, reputation=None,
) -> SuricataRuleSet:
    """Load a rule file, every ``*.rules`` of a directory (sorted), or a list
    of those. Logs a warning per skipped rule and one summary line. Invalid
    UTF-8 loads as in the native parser (surrogate escapes, reported where it
    matters). OSError if a file can't be read."""
    if isinstance(path, (str, os.PathLike)):
        paths = [path]
    else:
        paths = list(path)
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(p.glob("*.rules")))
        else:
            files.append(p)
    loader = _Loader(Vars.coerce(vars), datasets, reputation)
    for f in files:
        data = f.read_bytes()
        loader.feed(data.decode("utf-8", "surrogateescape"), str(f))
    rs = SuricataRuleSet(loader.rules, loader.skipped, loader.errors, [str(f) for f in files])
    for s in rs.skipped:
        log.warning("%s", s.message)
    for e in rs.errors:
        log.warning("%s", e)
    if rs.skipped or rs.errors:
        log.warning("%s", rs.summary())
    else:
        log.info("%s", rs.summary())
    return rs


_DETECT = re.compile(
    r"\s*(?:alert|drop|reject|pass|rejectsrc|rejectdst|rejectboth)\s+[A-Za-z0-9_.\-]+\s+"
    r"[^(]*?\s(?:->|<>)\s[^(]*\("
)


def detect_format(text: str) -> str:
    """``"suricata"`` if the first rule line (else, with no active rule, the
    first commented-out one) is ACTION PROTO ... -> ... (OPTIONS; otherwise
    ``"native"``. A native rule is NAME PROTO SRC DST PATTERN..., so a native
    rule named ``alert`` still has no direction arrow and option list."""
    commented = None
    for line in text.lstrip("\ufeff").split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if commented is None:
                body = stripped.lstrip("#")
                if _DETECT.match(body):
                    commented = "suricata"
            continue
        return "suricata" if _DETECT.match(stripped) else "native"
    return commented or "native"


def load_classification_config(path: str | os.PathLike[str]) -> dict[str, int]:
    """``config classification: NAME,DESCRIPTION,PRIORITY`` lines -> {NAME: PRIORITY}."""
    out: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"\s*config\s+classification\s*:\s*([^,]+),[^,]*,\s*(\d+)\s*$", line)
            if m:
                out[m.group(1).strip()] = int(m.group(2))
    return out


class _Loader:
    def __init__(self, vars: Vars, datasets: dict | None = None, reputation=None):
        self.vars = vars
        self.datasets = {} if datasets is None else datasets  # name -> DataSet
        self.reputation = reputation  # iprep's IpReputation, or None
        self.rules: list[SuricataRule] = []
        self.skipped: list[SkippedRule] = []
        self.errors: list[RuleError] = []
        self.first: dict[tuple[int, int], tuple[str, int]] = {}

    def feed(self, text: str, filename: str) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        lines = text.split("\n")
        i = 0
        n = len(lines)
        while i < n:
            line = lines[i].rstrip("\r")
            lineno = i + 1
            i += 1
            stripped = line.strip(_BLANK + "\n")
            if not stripped or stripped.startswith("#"):
                continue
            # (logical start, physical line number) for each joined line
            segments = [(0, lineno)]
            buf = line.rstrip(_BLANK)
            while buf.endswith("\\") and i < n:
                buf = buf[:-1]
                segments.append((len(buf), i + 1))
                buf += lines[i].rstrip("\r").rstrip(_BLANK)
                i += 1
            if buf.endswith("\\"):
                buf = buf[:-1]
            self._one(buf, segments, filename, lineno)

    def _one(self, buf: str, segments: list[tuple[int, int]], filename: str, lineno: int) -> None:
        builder = _RuleBuilder(buf, self.vars, filename, lineno)
        builder.datasets = self.datasets
        builder.reputation = self.reputation
        try:
            rule = builder.build()
        except _Error as e:
            self.errors.append(_rule_error(filename, segments, e.pos, e.message))
            return
        except _Skip as s:
            self.skipped.append(
                SkippedRule(
                    lineno, builder.sid, s.keyword, file=filename, detail=s.detail,
                    blockers=tuple(builder.blockers) or (s.keyword,), options=builder.option_names,
                )  # fmt: skip
            )
            return
        except Exception as e:  # a parser bug must not take the whole file down
            self.errors.append(
                RuleError(filename, lineno, 1, f"internal parser error: {type(e).__name__}: {e}")
            )
            return
        key = (rule.gid, rule.sid)
        first = self.first.get(key)
        if first is not None:
            where = f"{first[1]}" if first[0] == filename else f"{first[0]}:{first[1]}"
            what = f"sid {rule.sid}" if rule.gid == 1 else f"gid {rule.gid} sid {rule.sid}"
            self.errors.append(
                _rule_error(
                    filename, segments, builder.sid_pos,
                    f"duplicate {what} (first defined at line {where})",
                )  # fmt: skip
            )
            return
        self.first[key] = (filename, lineno)
        self.rules.append(rule)


def _rule_error(filename: str, segments, pos: int, message: str) -> RuleError:
    start, lineno = segments[0]
    for seg_start, seg_line in segments:
        if seg_start <= pos:
            start, lineno = seg_start, seg_line
    return RuleError(filename, lineno, pos - start + 1, message)


class _RuleBuilder:
    """Parses one logical rule line."""

    def __init__(self, buf: str, vars: Vars, filename: str, lineno: int):
        self.buf = buf
        self.vars = vars
        self.filename = filename
        self.lineno = lineno
        self.sid = 0
        self.sid_pos = 0
        self.datasets: dict = {}
        self.reputation = None
        self.blockers: list[str] = []
        self.option_names: tuple[str, ...] = ()

    # ------------------------------------------------------------ header

    def _header(self) -> tuple[list[tuple[int, str]], int]:
        """The header tokens (position, text) and the index of '('."""
        buf = self.buf
        tokens: list[tuple[int, str]] = []
        i = 0
        n = len(buf)
        while True:
            while i < n and buf[i] in _BLANK:
                i += 1
            if i >= n:
                return tokens, -1
            if buf[i] == "(":
                return tokens, i
            start = i
            depth = 0
            opened = -1
            while i < n:
                c = buf[i]
                if c == "[":
                    if depth == 0:
                        opened = i
                    depth += 1
                elif c == "]":
                    depth = max(0, depth - 1)
                elif c == "(" and depth:
                    break
                elif depth == 0 and c in _BLANK + "(":
                    break
                i += 1
            if depth:  # blanks may sit inside [..], but a header never holds '('
                raise _Error(opened, "unterminated [ in the rule header")
            tokens.append((start, buf[start:i]))

    def build(self) -> SuricataRule:
        buf = self.buf
        tokens, paren = self._header()
        names = ("ACTION", "PROTO", "SRC", "SPORT", "DIRECTION", "DST", "DPORT")
        form = "expected ACTION PROTO SRC SPORT -> DST DPORT (OPTIONS)"
        if len(tokens) < 7:
            missing = names[len(tokens)]
            if paren < 0 and len(tokens) == 0:
                raise _Error(0, f"{form}: missing ACTION")
            at = paren if paren >= 0 else len(buf.rstrip(_BLANK))
            raise _Error(at, f"{form}: missing {missing}")
        if len(tokens) > 7:
            raise _Error(tokens[7][0], f"{form}: unexpected {tokens[7][1]!r} before '('")
        if paren < 0:
            raise _Error(len(buf.rstrip(_BLANK)), f"{form}: missing '(' and the options")
        (act_at, action), (proto_at, proto), (src_at, src), (sp_at, sport), \
            (dir_at, direction), (dst_at, dst), (dp_at, dport) = tokens  # fmt: skip
        opts, end = self._options(paren)
        rest = buf[end + 1 :].strip(_BLANK)
        if rest:
            raise _Error(end + 1 + (len(buf[end + 1 :]) - len(buf[end + 1 :].lstrip(_BLANK))),
                         "unexpected text after the closing ')'")  # fmt: skip
        self.option_names = tuple(o.name for o in opts)
        # sid first, so skips and errors can name the rule
        sids = [o for o in opts if o.name == "sid"]
        if not sids:
            raise _Error(paren, "missing sid: every rule needs sid:N;")
        if len(sids) > 1:
            raise _Error(sids[1].name_pos, "sid given twice")
        self.sid_pos = sids[0].name_pos
        self.sid = self._int(sids[0], 1, _UINT32_MAX)

        action_l = action.lower()
        if action_l not in ACTIONS and action_l not in UNSUPPORTED_ACTIONS:
            raise _Error(act_at, f"unknown action {action!r}: expected alert, drop, reject or pass")
        proto_l = proto.lower()
        if proto_l not in PROTOCOLS and proto_l not in APP_LAYER_PROTOCOLS:
            raise _Error(
                proto_at, f"unknown protocol {proto!r}: expected one of {', '.join(PROTOCOLS)}"
            )
        if direction not in ("->", "<>"):
            if direction == "=>":
                self.blockers.append("direction:=>")
            elif direction == "<-":
                raise _Error(dir_at, "'<-' is not a direction: use '->' with SRC and DST swapped")
            else:
                raise _Error(dir_at, f"expected the direction '->' or '<>', found {direction!r}")
        if action_l in UNSUPPORTED_ACTIONS:
            self.blockers.insert(0, f"action:{action_l}")
        if proto_l in APP_LAYER_PROTOCOLS:
            self.blockers.insert(0, f"protocol:{proto_l}")
        for o in opts:
            if o.name not in _KNOWN and o.name not in self.blockers:
                self.blockers.append(o.name)
        if self.blockers:
            first = self.blockers[0]
            kind, _, what = first.partition(":")
            if kind in ("protocol", "action", "direction") and what:
                raise _Skip(first, f"unsupported {kind} {what!r}")
            raise _Skip(first)

        src_spec = self._address(src, src_at)
        dst_spec = self._address(dst, dst_at)
        sport_spec = self._ports(sport, sp_at)
        dport_spec = self._ports(dport, dp_at)
        rule = SuricataRule(
            action=action_l,
            proto=proto_l,
            src=src_spec,
            src_port=sport_spec,
            dst=dst_spec,
            dst_port=dport_spec,
            bidirectional=direction == "<>",
            elements=(),
            sid=self.sid,
            options=self.option_names,
            file=self.filename,
            line=self.lineno,
            text=buf,
            app_proto=APP_PROTO.get(proto_l),
        )
        _OptionParser(self, rule, opts).run()
        return rule

    def _address(self, text: str, at: int) -> AddressSpec:
        try:
            return self.vars.address(text)
        except SpecError as e:
            raise _Error(at + e.offset, e.message) from None

    def _ports(self, text: str, at: int) -> PortSpec:
        try:
            return self.vars.ports(text)
        except SpecError as e:
            raise _Error(at + e.offset, e.message) from None

    # ------------------------------------------------------------ options

    def _options(self, paren: int) -> tuple[list[_Opt], int]:
        buf = self.buf
        n = len(buf)
        i = paren + 1
        opts: list[_Opt] = []
        while True:
            while i < n and buf[i] in _BLANK:
                i += 1
            if i >= n:
                raise _Error(paren, "unterminated option list: missing ')'")
            if buf[i] == ")":
                return opts, i
            name_start = i
            while i < n and buf[i] not in ":;)":
                i += 1
            raw_name = buf[name_start:i]
            name = raw_name.strip(_BLANK)
            if not name:
                found = repr(buf[i]) if i < n else "the end"
                raise _Error(name_start, f"expected an option keyword, found {found}")
            if not _OPTION_NAME.match(name):
                raise _Error(name_start, f"invalid option keyword {name!r}")
            name = sys.intern(name.lower())  # 18,000 rules share a few dozen names
            if i >= n or buf[i] == ")":
                raise _Error(name_start, f"option {name!r} is not terminated by ';'")
            if buf[i] == ";":
                opts.append(_Opt(name, None, name_start, name_start))
                i += 1
                continue
            # a value
            i += 1
            while i < n and buf[i] in _BLANK:
                i += 1
            value_start = i
            end = self._value_end(value_start)
            if end < 0:
                raise _Error(name_start, f"option {name!r} is not terminated by ';'")
            value = buf[value_start:end].rstrip(_BLANK)
            opts.append(_Opt(name, value, name_start, value_start))
            i = end + 1

    def _value_end(self, start: int) -> int:
        """Index of the ';' ending the value at ``start``, or -1."""
        buf = self.buf
        n = len(buf)
        j = start
        if j < n and buf[j] == "!":
            j += 1
            while j < n and buf[j] in _BLANK:
                j += 1
        if j < n and buf[j] == '"':
            k = j + 1
            while k < n:
                if buf[k] == "\\":
                    k += 2
                    continue
                if buf[k] == '"':
                    break
                k += 1
            if k < n:  # closed: the value ends at the first ';' after the quote
                semi = self._plain_end(k + 1)
                if semi >= 0:
                    return semi
        return self._plain_end(start)

    def _plain_end(self, start: int) -> int:
        # str.find, not a char loop: 230,000 options in ET Open
        buf = self.buf
        k = start
        while True:
            semi = buf.find(";", k)
            if semi < 0 or not _escaped_at(buf, semi, start):
                return semi
            k = semi + 1

    def _int(self, opt: _Opt, lo: int, hi: int) -> int:
        value = opt.value
        if value is None:
            raise _Error(opt.name_pos, f"{opt.name} needs a value: {opt.name}:N;")
        if not _INT.match(value):
            raise _Error(opt.value_pos, f"{opt.name}: expected an integer, found {value!r}")
        number = int(value)
        if not lo <= number <= hi:
            raise _Error(opt.value_pos, f"{opt.name}: {number} out of range {lo}-{hi}")
        return number


class _OptionParser:
    """The options of one rule, in order, into ``rule``."""

    def __init__(self, builder: _RuleBuilder, rule: SuricataRule, opts: list[_Opt]):
        self.b = builder
        self.rule = rule
        self.opts = opts
        self.elements: list[Element] = []
        self.sticky: str | None = None
        self.last_content: ContentMatch | None = None
        self.last_match: ContentMatch | PcreMatch | None = None  # for relative pcre/isdataat
        self.seen: dict[int, set[str]] = {}  # id(content) -> modifiers applied
        self.fast_pattern_at = -1
        self.once: set[str] = set()
        self.references: list[tuple[str, str]] = []
        self.metadata: list[tuple[str, str]] = []
        self.decode_events: list[str] = []
        self.stream_events: list[str] = []
        self.flowbits: list[Flowbit] = []
        self.byte_vars: set[str] = set()  # byte_extract names defined so far
        # buffer of the last content/pcre/byte_*/isdataat: where a relative
        # byte_test/byte_jump/byte_extract without a sticky buffer looks
        self.last_buffer: str | None = None
        # each sticky buffer keyword: [buffer, its transforms, elements before it]
        self.chains: list = []

    def run(self) -> None:
        for opt in self.opts:
            name = opt.name
            if name in _CONTENT_MODIFIERS:
                self._modifier(opt)
            elif name in LEGACY_MODIFIERS:
                self._legacy(opt)
            elif name in STICKY_BUFFERS:
                self._no_value(opt)
                self.sticky = STICKY_BUFFERS[name]
                self._claim(opt, self.sticky)
                self.chains.append([self.sticky, [], len(self.elements)])
            elif name in TRANSFORMS:
                self._transform(opt)
            else:
                getattr(self, "_opt_" + name.replace("-", "_").replace(".", "_"))(opt)
        self._validate()
        r = self.rule
        r.elements = tuple(self.elements)
        r.references = tuple(self.references)
        r.metadata = tuple(self.metadata)
        r.decode_events = tuple(self.decode_events)
        r.stream_events = tuple(self.stream_events)
        r.flowbits = tuple(self.flowbits)
        self._transforms()
        self._base64_data()
        for buf, mode in r.absent.items():
            if mode == "absent" and any(getattr(e, "buffer", None) == buf for e in r.elements):
                raise _Error(0, f"absent: {buf} has contents of its own; write absent: or_else")

    def _opt_base64_decode(self, opt: _Opt) -> None:
        value = (opt.value or "").strip(_BLANK)
        m = re.fullmatch(r"(?:bytes\s+(\d{1,5})\s*,?\s*)?(?:offset\s+(\d{1,10})\s*,?\s*)?"
                         r"(relative)?", value)
        if m is None or opt.value is not None and not value:
            raise self._err(opt, "base64_decode: expected [bytes N][, offset O][, relative]; "
                            f"found {opt.value!r}", 0)
        nbytes = int(m.group(1) or 0) or 65535
        offset = int(m.group(2) or 0)
        if nbytes > 65535 or offset > _UINT32_MAX:
            raise self._err(opt, "base64_decode: bytes 1-65535, offset 0-4294967295", 0)
        # (Suricata: in the sticky buffer, else where the last match was)
        buffer = self.sticky if self.sticky is not None else self.last_buffer
        self.elements.append(Base64Decode(nbytes, offset, m.group(3) is not None, buffer))

    def _opt_base64_data(self, opt: _Opt) -> None:
        self._no_value(opt)
        if not any(isinstance(e, Base64Decode) for e in self.elements):
            raise self._err(opt, "base64_data needs a base64_decode before it")
        self.sticky = "base64_data"

    def _base64_data(self) -> None:
        """The elements written after base64_data, moved into the
        base64_decode they follow (its ``data``)."""
        if not any(isinstance(e, Base64Decode) for e in self.elements):
            return
        kept: list = []
        last = None
        for e in self.elements:
            if isinstance(e, Base64Decode):
                last = e
                kept.append(e)
            elif getattr(e, "buffer", None) == "base64_data" and last is not None:
                last.data += (e,)
            else:
                kept.append(e)
        self.rule.elements = tuple(kept)

    def _transform(self, opt: _Opt) -> None:
        name = opt.name
        chain = self.chains[-1] if self.chains and self.sticky is not None else None
        if chain is None or chain[0] != self.sticky or len(self.elements) != chain[2]:
            raise self._err(opt, f"{name}: a transform must follow a sticky buffer keyword "
                            f"(e.g. dns.query; {name}; content:...)")
        arg = None
        if name == "xor":
            value = self._value(opt).strip(_BLANK).strip('"')
            if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", value):
                raise self._err(opt, f"xor: expected a key of hex digit pairs, found {value!r}", 0)
            arg = bytes.fromhex(value)
        elif name == "from_base64":
            arg = self._from_base64(opt)
        elif name in ("gunzip", "zlib_deflate"):
            arg = self._decompress_size(opt)
        elif name == "subslice":
            arg = self._subslice(opt)
        elif name == "pcrexform":
            value = self._value(opt).strip(_BLANK)
            if len(value) < 2 or value[0] != '"' or value[-1] != '"':
                raise self._err(opt, "pcrexform: the regex must be quoted", 0)
            try:
                arg = compile_pcre(value[1:-1])
            except PcreUnsupported as e:
                raise self._err(opt, f"pcrexform: {e}", 0) from None
            if arg.groups != 1:
                raise self._err(opt, "pcrexform needs exactly one capture group, found "
                                f"{arg.groups}", 0)
        else:
            self._no_value(opt)
        chain[1].append((name, arg))

    def _decompress_size(self, opt: _Opt) -> int:
        """``gunzip[: max-size N]`` (also ``max-size=N``, units allowed): the
        most bytes the transform makes (Suricata 8: 1024 unless given)."""
        if opt.value is None or not opt.value.strip(_BLANK):
            return DECOMPRESS_DEFAULT
        m = re.fullmatch(r"max-size\s*[=\s]\s*(\S+)", opt.value.strip(_BLANK))
        size = _size_value(m.group(1)) if m else None
        if size is None or not 0 < size <= DECOMPRESS_MAX:
            raise self._err(opt, f"{opt.name}: expected max-size N (1 to {DECOMPRESS_MAX}, "
                            f"units kb mb), found {opt.value!r}", 0)
        return size

    def _subslice(self, opt: _Opt) -> tuple:
        """``subslice: offset[, nbytes][, truncate]`` (Suricata 8): negative
        values count from the end; without truncate a slice past the buffer
        empties it."""
        parts = [p.strip(_BLANK) for p in (opt.value or "").split(",")]
        truncate = len(parts) > 1 and parts[-1].lower() == "truncate"
        if truncate:
            parts = parts[:-1]
        if not 1 <= len(parts) <= 2 or not all(re.fullmatch(r"-?\d{1,9}", p) for p in parts) \
                or len(parts) == 2 and int(parts[1]) == 0:
            raise self._err(opt, "subslice: expected offset[, nbytes][, truncate] (nbytes not "
                            f"0), found {opt.value!r}", 0)
        return int(parts[0]), int(parts[1]) if len(parts) == 2 else None, truncate

    def _from_base64(self, opt: _Opt) -> tuple:
        """``from_base64[: bytes N][, offset O][, mode M]`` -> (N, O, M);
        N 0 for all of the buffer."""
        nbytes = offset = 0
        mode = "rfc4648"
        seen = set()
        for part in (opt.value or "").split(","):
            part = part.strip(_BLANK)
            if not part and opt.value is None:
                continue
            m = re.fullmatch(r"(bytes|offset|mode)\s+(\S+)", part)
            if m is None or m.group(1) in seen:
                raise self._err(opt, "from_base64: expected [bytes N][, offset O][, mode "
                                f"rfc4648|rfc2045|strict]; found {opt.value!r}", 0)
            key, val = m.groups()
            seen.add(key)
            if key == "mode":
                if val not in BASE64_MODES:
                    raise self._err(opt, f"from_base64: unknown mode {val!r}", 0)
                mode = val
            elif not val.isdigit() or int(val) > 65535:
                raise self._err(opt, f"from_base64: {key} must be a number 0-65535 "
                                f"(not a variable), found {val!r}", 0)
            elif key == "bytes":
                nbytes = int(val)
            else:
                offset = int(val)
        return nbytes, offset, mode

    def _transforms(self) -> None:
        """rule.transforms from the chains: a buffer named twice must have
        one chain (its contents are matched in one transformed copy)."""
        out: dict = {}
        n = len(self.elements)
        for i, (buf, xf, start) in enumerate(self.chains):
            end = self.chains[i + 1][2] if i + 1 < len(self.chains) else n
            if start == end:
                continue  # (a buffer keyword with nothing of its own)
            xf = tuple(xf)
            if out.setdefault(buf, xf) != xf:
                raise _Error(0, f"{buf} is named twice with different transforms")
        self.rule.transforms = {b: xf for b, xf in out.items() if xf}

    # ------------------------------------------------------------ helpers

    def _err(self, opt: _Opt, message: str, offset: int | None = None) -> _Error:
        if offset is None:
            return _Error(opt.name_pos, message)
        return _Error(opt.value_pos + offset, message)

    def _no_value(self, opt: _Opt) -> None:
        if opt.value is not None:
            raise self._err(opt, f"{opt.name} takes no value: write '{opt.name};'")

    def _value(self, opt: _Opt) -> str:
        if opt.value is None or not opt.value.strip(_BLANK):
            raise self._err(opt, f"{opt.name} needs a value")
        return opt.value

    def _claim(self, opt: _Opt, buffer: str | None, proto: str | None = None) -> None:
        """Tie the rule to the app-layer protocol of ``buffer`` (or
        ``proto``), as Suricata's keyword setup does; a second protocol is
        Suricata's "conflicting keywords" error."""
        proto = proto or buffer_app_proto(buffer)
        current = self.rule.app_proto
        if proto is None:
            if buffer in ("file.data", "file.name") and current not in (None, "http", "smtp"):
                raise self._err(
                    opt, f"{opt.name} (files) needs an http or smtp rule, not {current}"
                )
            return
        if current is None:
            self.rule.app_proto = proto
        elif current != proto:
            raise self._err(
                opt,
                f"conflicting keywords: {opt.name} is for {proto} but the rule is for {current}",
            )

    def _single(self, opt: _Opt) -> None:
        if opt.name in self.once:
            raise self._err(opt, f"{opt.name} given twice")
        self.once.add(opt.name)

    def _int(self, opt: _Opt, lo: int, hi: int) -> int:
        return self.b._int(opt, lo, hi)

    def _compare(self, opt: _Opt, maximum: int, text: str | None = None) -> IntCompare:
        text = self._value(opt) if text is None else text
        m = re.fullmatch(
            r"\s*(?:(\d{1,20})\s*(?:<>|-)\s*(\d{1,20})|(<=|>=|<|>|!=|!|=)?\s*(\d{1,20}))\s*", text
        )
        if m is None:
            raise self._err(
                opt, f"{opt.name}: expected N, <N, >N, <=N, >=N, !N or A<>B, found {text!r}", 0
            )
        if m.group(1) is not None:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo >= hi or hi > maximum:
                raise self._err(
                    opt, f"{opt.name}: invalid range {lo}<>{hi} (0-{maximum}, A < B)", 0
                )
            return IntCompare("<>", lo, hi, text.strip())
        op = m.group(3) or "="
        op = "!=" if op == "!" else op
        value = int(m.group(4))
        if value > maximum:
            raise self._err(opt, f"{opt.name}: {value} out of range 0-{maximum}", 0)
        return IntCompare(op, value, None, text.strip())

    # ------------------------------------------------------------ meta

    def _opt_msg(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
            # An unescaped quote inside: a closing quote is missing, and the
            # options after it were read as the message (msg:"a; content:"x";
            # made a rule without its content, matching every packet).
            # Suricata rejects the rule too.
            at = value.find('"')
            while at >= 0 and _escaped_at(value, at, 0):
                at = value.find('"', at + 1)
            if at >= 0:
                raise self._err(opt, "msg: unescaped '\"' inside the message (a closing quote "
                                "or ';' missing?): write \\\"", at + 1)
        self.rule.msg = _printable(re.sub(r"\\([\\\";:])", r"\1", value))

    def _opt_sid(self, opt: _Opt) -> None:
        pass  # parsed with the header

    def _opt_rev(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.rev = self._int(opt, 0, _UINT32_MAX)

    def _opt_gid(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.gid = self._int(opt, 0, _UINT32_MAX)

    def _opt_priority(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.priority = self._int(opt, 1, 255)

    def _opt_classtype(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        if not _WORD.match(value):
            raise self._err(opt, f"classtype: invalid name {value!r}", 0)
        self.rule.classtype = value

    def _opt_reference(self, opt: _Opt) -> None:
        value = self._value(opt)
        kind, comma, ref = value.partition(",")
        if not comma or not kind.strip(_BLANK) or not ref.strip(_BLANK):
            raise self._err(opt, f"reference: expected TYPE,ID, found {value!r}", 0)
        self.references.append((sys.intern(kind.strip(_BLANK)), _printable(ref.strip(_BLANK))))

    def _opt_metadata(self, opt: _Opt) -> None:
        for item in self._value(opt).split(","):
            item = item.strip(_BLANK)
            if not item:
                continue
            key, _, val = item.partition(" ")
            # keys and most values (dates, "Windows_XP_Vista_7_8_10") repeat
            self.metadata.append(
                (sys.intern(_printable(key)), sys.intern(_printable(val.strip(_BLANK))))
            )

    # ------------------------------------------------------------ content

    def _opt_content(self, opt: _Opt, buffer: str | None = None) -> None:
        value = self._value(opt)
        negated, data = self._content_bytes(opt, value)
        content = ContentMatch(
            data,
            negated=negated,
            buffer=buffer if buffer is not None else self.sticky,
            text=value,
            column=opt.value_pos + 1,
        )
        self.elements.append(content)
        self.last_content = content
        self.last_match = content
        self.last_buffer = content.buffer
        self.seen[id(content)] = set()
        if buffer is not None:
            self._claim(opt, buffer)

    def _opt_uricontent(self, opt: _Opt) -> None:
        self._opt_content(opt, buffer="http.uri")

    def _content_bytes(self, opt: _Opt, value: str) -> tuple[bool, bytes]:
        i = 0
        n = len(value)
        negated = False
        if value.startswith("!"):
            negated = True
            i = 1
            while i < n and value[i] in _BLANK:
                i += 1
        end = n
        if i < n and value[i] == '"':
            if n - i < 2 or value[-1] != '"' or _escaped_at(value, n - 1, i + 1):
                raise self._err(opt, f"{opt.name}: unterminated \"...\"", i)
            i += 1
            end = n - 1
        out = bytearray()
        chars: list[str] = []
        while i < end:
            c = value[i]
            if c == "\\":
                if i + 1 < end and value[i + 1] in '\\";:':
                    chars.append(value[i + 1])
                    i += 2
                    continue
                shown = value[i : i + 2]
                raise self._err(
                    opt,
                    f"{opt.name}: invalid escape '{shown}' "
                    "(only \\\\, \\\", \\; and \\: are escapes; "
                    "write other bytes as |hex|)",
                    i,
                )
            if c == '"':
                raise self._err(
                    opt, f"{opt.name}: unescaped '\"' inside the content: write \\\" or |22|", i
                )
            if c == "|":
                out += self._encode(opt, "".join(chars), i)
                chars = []
                close = value.find("|", i + 1, end)
                if close < 0:
                    raise self._err(opt, f"{opt.name}: unterminated |hex| section", i)
                digits = []
                for k in range(i + 1, close):
                    d = value[k]
                    if d in _BLANK:
                        continue
                    if d not in "0123456789abcdefABCDEF":
                        raise self._err(opt, f"{opt.name}: invalid hex digit {d!r} in |..|", k)
                    digits.append(d)
                if len(digits) % 2:
                    raise self._err(opt, f"{opt.name}: odd number of hex digits in |..|", i)
                out += bytes.fromhex("".join(digits))
                i = close + 1
                continue
            chars.append(c)
            i += 1
        out += self._encode(opt, "".join(chars), i)
        if not out:
            raise self._err(opt, f"{opt.name}: empty content")
        return negated, bytes(out)

    def _encode(self, opt: _Opt, text: str, at: int) -> bytes:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as e:
            bad = f"U+{ord(text[e.start]):04X}"
            raise self._err(opt, f"{opt.name}: invalid character {bad}", at) from None

    def _target(self, opt: _Opt) -> ContentMatch:
        if self.last_content is None:
            raise self._err(opt, f"{opt.name} needs a preceding content")
        seen = self.seen[id(self.last_content)]
        if opt.name in seen:
            raise self._err(opt, f"{opt.name} given twice for one content")
        seen.add(opt.name)
        return self.last_content

    def _modifier(self, opt: _Opt) -> None:
        name = opt.name
        c = self._target(opt)
        if name == "nocase":
            self._no_value(opt)
            c.nocase = True
        elif name == "rawbytes":
            self._no_value(opt)
            c.rawbytes = True
        elif name in ("startswith", "endswith"):
            self._no_value(opt)
            if name == "startswith":
                if c.offset is not None or c.depth is not None or c.relative:
                    raise self._err(
                        opt, "startswith can't be combined with offset, depth, distance or within"
                    )
                c.startswith = True
            else:
                c.endswith = True
        elif name == "fast_pattern":
            self._fast_pattern(opt, c)
        else:
            lo, hi = (_INT32[0], _INT32[1]) if name == "distance" else (0, _INT32[1])
            var = self._variable(opt)
            number = var if var is not None else self._int(opt, lo, hi)
            if c.startswith:
                raise self._err(opt, f"{name} can't be combined with startswith")
            if name in ("offset", "depth") and c.relative:
                raise self._err(
                    opt, f"{name} can't be combined with distance/within on one content"
                )
            if name in ("distance", "within") and (c.offset is not None or c.depth is not None):
                raise self._err(opt, f"{name} can't be combined with offset/depth on one content")
            if name in ("depth", "within") and var is None and number < len(c.pattern):
                raise self._err(
                    opt, f"{name} {number} is less than the content's length {len(c.pattern)}", 0
                )
            setattr(c, name, number)

    def _fast_pattern(self, opt: _Opt, c: ContentMatch) -> None:
        if self.fast_pattern_at >= 0:
            raise self._err(opt, "fast_pattern can be set on only one content of a rule")
        self.fast_pattern_at = opt.name_pos
        c.fast_pattern = True
        if opt.value is None:
            return
        value = opt.value.strip(_BLANK)
        if value == "only":
            c.fast_pattern_only = True
            return
        m = re.fullmatch(r"(\d{1,9})\s*,\s*(\d{1,9})", value)
        if m is None:
            raise self._err(
                opt, f"fast_pattern: expected 'only' or OFFSET,LENGTH, found {value!r}", 0
            )
        start, length = int(m.group(1)), int(m.group(2))
        if length == 0 or start + length > len(c.pattern):
            raise self._err(
                opt,
                f"fast_pattern:{start},{length} is outside the content ({len(c.pattern)} bytes)",
                0,
            )
        c.fast_pattern_chop = (start, length)

    def _variable(self, opt: _Opt) -> str | None:
        """A byte_extract variable name as the value (Suricata: the value
        starts with a letter), or None; an undefined one is an error."""
        value = (opt.value or "").strip(_BLANK)
        if not value or not value[0].isalpha():
            return None
        if value not in self.byte_vars:
            raise self._err(
                opt, f"{opt.name}: unknown byte_extract variable {value!r}", 0
            )
        return value

    def _legacy(self, opt: _Opt) -> None:
        self._no_value(opt)
        c = self._target(opt)
        buffer = LEGACY_MODIFIERS[opt.name]
        if c.buffer is not None and c.buffer != buffer:
            raise self._err(opt, f"{opt.name} can't move a content that is already in {c.buffer}")
        c.buffer = buffer
        if c is self.last_match:
            self.last_buffer = buffer
        self._claim(opt, buffer)

    def _opt_isdataat(self, opt: _Opt) -> None:
        value = self._value(opt)
        parts = [p.strip(_BLANK) for p in value.split(",")]
        head = parts[0]
        negated = head.startswith("!")
        if negated:
            head = head[1:].strip(_BLANK)
        if not re.fullmatch(r"\d{1,9}", head):
            raise self._err(
                opt, f"isdataat: expected [!]N[,relative][,rawbytes], found {value!r}", 0
            )
        relative = rawbytes = False
        for p in parts[1:]:
            if p == "relative":
                relative = True
            elif p == "rawbytes":
                rawbytes = True
            else:
                raise self._err(opt, f"isdataat: unknown option {p!r}", 0)
        buffer = self._element_buffer(relative)
        self.elements.append(IsDataAt(int(head), relative, negated, rawbytes, buffer))
        self.last_buffer = buffer

    def _element_buffer(self, relative: bool):
        """The buffer a non-content element reads: the sticky one, else for a
        relative element the buffer of the match it is relative to."""
        buffer = self.sticky
        if relative and buffer is None and self.last_match is not None:
            buffer = self.last_match.buffer
        return buffer

    def _opt_asn1(self, opt: _Opt) -> None:
        value = self._value(opt)
        e = Asn1Check()
        for part in value.split(","):
            words = part.split()
            if not words:
                raise self._err(opt, f"asn1: empty option in {value!r}", 0)
            name = words[0].lower()
            if name in ("bitstring_overflow", "double_overflow") and len(words) == 1:
                setattr(e, name, True)
            elif name in ("oversize_length", "absolute_offset", "relative_offset") and \
                    len(words) == 2 and re.fullmatch(r"[+-]?\d{1,9}", words[1]):
                n = int(words[1])
                if n < 0 and name != "relative_offset":
                    raise self._err(opt, f"asn1: {name} must not be negative", 0)
                setattr(e, name, n)
            else:
                raise self._err(
                    opt, "asn1: expected bitstring_overflow, double_overflow, oversize_length N, "
                    f"absolute_offset N or relative_offset N, found {part.strip()!r}", 0)
        if e.absolute_offset is not None and e.relative_offset is not None:
            raise self._err(opt, "asn1: absolute_offset and relative_offset together", 0)
        if e.oversize_length is None and not e.bitstring_overflow and not e.double_overflow:
            raise self._err(opt, "asn1: no check (bitstring_overflow, double_overflow, "
                            "oversize_length N)", 0)
        buffer = e.buffer = self._element_buffer(e.relative_offset is not None)
        self.elements.append(e)
        self.last_buffer = buffer

    def _opt_dataset(self, opt: _Opt) -> None:
        """``dataset:<set|isset|isnotset|unset>,<name>[, type T][, load F]
        [, state F][, save F][, memcap N][, hashsize N]`` on the sticky
        buffer."""
        parts = self._set_parts(opt, 2, "<cmd>,<name>")
        cmd, name = parts[0], parts[1]
        if cmd not in ("set", "isset", "isnotset", "unset"):
            raise self._err(opt, f"dataset: unknown command {cmd!r} "
                            "(set, isset, isnotset, unset)", 0)
        ds = self._named_set(opt, name, parts[2:], ("load", "state", "save"))
        self.elements.append(DatasetCheck(cmd, ds, self.sticky))

    def _opt_datarep(self, opt: _Opt) -> None:
        """``datarep:<name>,<op>,<value>[, type T][, load F][, memcap N]
        [, hashsize N]``: op ``>``, ``<`` or ``==``, value 0-65535."""
        parts = self._set_parts(opt, 3, "<name>,<op>,<value>")
        name, op, value = parts[0], parts[1], parts[2]
        if op not in (">", "<", "=="):
            raise self._err(opt, f"datarep: unknown operator {op!r} (>, <, ==)", 0)
        if not value.isdigit() or int(value) > 65535:
            raise self._err(opt, f"datarep: value must be 0-65535, found {value!r}", 0)
        ds = self._named_set(opt, name, parts[3:], ("load",))
        self.elements.append(DatarepCheck(op, int(value), ds, self.sticky))

    def _rule_dir(self) -> str:
        """Where the rule's relative files are: beside its rule file (the
        working directory for rules given as text)."""
        fn = self.b.filename
        return os.path.dirname(os.path.abspath(fn)) if fn and not fn.startswith("<") \
            else os.getcwd()

    def _set_parts(self, opt: _Opt, fixed: int, form: str) -> list:
        if self.sticky is None:
            raise self._err(opt, f"{opt.name} needs a sticky buffer (e.g. dns.query;) before it")
        parts = [p.strip(_BLANK) for p in self._value(opt).split(",")]
        if len(parts) < fixed or any(not p or " " in p for p in parts[:fixed]):
            raise self._err(opt, f"{opt.name}: expected {form}[, option value]...", 0)
        return parts

    def _named_set(self, opt: _Opt, name: str, parts: list, files: tuple) -> DataSet:
        """The load's set ``name``, made (and its file read) the first time
        a rule names it. A relative ``load`` is read beside the rule file
        (Suricata's first choice); a relative ``state`` or ``save`` is kept
        there too (Suricata: its data directory, which this sensor lacks)."""
        kw = opt.name
        opts: dict = {}
        for part in parts:
            if not part:
                continue
            key, _, val = part.partition(" ")
            val = val.strip(_BLANK)
            if not val or key in opts:
                raise self._err(opt, f"{kw}: bad or repeated option {part!r}", 0)
            if key == "format" and kw == "dataset" and val != "csv":
                self.b.blockers.append(kw)
                raise _Skip(kw, f"format {val} (only csv files are read)")
            if key not in ("type", "memcap", "hashsize") + files + (
                    ("format",) if kw == "dataset" else ()):
                raise self._err(opt, f"{kw}: unknown option {key!r}", 0)
            opts[key] = val
        if "state" in opts and ("load" in opts or "save" in opts):
            raise self._err(opt, f"{kw}: 'state' can not be mixed with 'load' and 'save'", 0)
        type_ = opts.get("type")
        if type_ is not None and type_ not in DATASET_TYPES:
            raise self._err(opt, f"{kw}: bad type {type_!r}", 0)
        type_ = "ip" if type_ == "ipv6" else type_
        memcap = 0
        if "memcap" in opts:
            memcap = _size_value(opts["memcap"])
            if memcap is None:
                raise self._err(opt, f"{kw}: bad memcap {opts['memcap']!r}", 0)
        reg = self.b.datasets
        ds = reg.get(name)
        if ds is not None:
            if type_ is not None and type_ != ds.type:
                raise self._err(opt, f"{kw} {name!r} is a {ds.type} set, not {type_}", 0)
            return ds
        if type_ is None:
            raise self._err(opt, f"{kw} {name!r} is not defined: give its type", 0)
        ds = DataSet(name, type_, memcap)
        here = self._rule_dir()
        where = opts.get("load") or opts.get("state")
        try:
            if where is not None:
                path = where if os.path.isabs(where) else os.path.join(here, where)
                if "load" in opts or os.path.exists(path):
                    ds.load(path)
        except OSError as e:
            raise self._err(opt, f"{kw} {name}: cannot read {where}: "
                            f"{e.strerror or e}", 0) from None
        except ValueError as e:
            raise self._err(opt, f"{kw} {name}: {e}", 0) from None
        save = opts.get("save") or opts.get("state")
        if save is not None:
            ds.save = save if os.path.isabs(save) else os.path.join(here, save)
        reg[name] = ds
        return ds

    _FLOAT = r"\d{1,9}(?:\.\d{1,9})?"

    def _opt_entropy(self, opt: _Opt) -> None:
        """``entropy:[bytes N][, offset O], value [op]F`` on the sticky
        buffer (else the payload), as Suricata 8's detect/entropy.rs."""
        nbytes = offset = 0
        cmp = None
        seen = set()
        for part in self._value(opt).split(","):
            key, _, val = part.strip(_BLANK).partition(" ")
            val = val.strip(_BLANK)
            if key in seen or key not in ("bytes", "offset", "value") or not val:
                raise self._err(opt, "entropy: expected [bytes N][, offset O], value [op]F; "
                                f"found {opt.value!r}", 0)
            seen.add(key)
            if key == "value":
                f = self._FLOAT
                m = re.fullmatch(rf"(?:({f})\s*(?:<>|-)\s*({f})|(<=|>=|<|>|!=|=)?\s*({f}))",
                                 val)
                if m is None:
                    raise self._err(opt, f"entropy: bad value {val!r}", 0)
                cmp = (("<>", float(m.group(1)), float(m.group(2))) if m.group(1) else
                       (m.group(3) or "=", float(m.group(4)), None))
            elif not re.fullmatch(r"-?\d{1,5}", val) or (key == "bytes" and int(val) < 0) \
                    or abs(int(val)) > 65535:
                raise self._err(opt, f"entropy: bad {key} {val!r}", 0)
            elif key == "bytes":
                nbytes = int(val)
            else:
                offset = int(val)
        if cmp is None:
            raise self._err(opt, "entropy: the value is required", 0)
        self.elements.append(EntropyCheck(cmp[0], cmp[1], cmp[2], nbytes, offset, self.sticky))

    def _opt_iprep(self, opt: _Opt) -> None:
        """``iprep:<any|src|dst|both>,<category>,<op>,<value>``: an address
        score (0-127) from the reputation files of ``--iprep``."""
        parts = [p.strip(_BLANK) for p in self._value(opt).split(",")]
        if len(parts) != 4 or parts[0] not in ("any", "src", "dst", "both"):
            raise self._err(opt, "iprep: expected <any|src|dst|both>,<category>,<op>,<value>",
                            0)
        rep = self.b.reputation
        if rep is None or not rep.categories:
            raise self._err(opt, "iprep: no reputation categories loaded "
                            "(--iprep-categories FILE and --iprep FILE)", 0)
        cat = rep.categories.get(parts[1])
        if cat is None:
            raise self._err(opt, f"iprep: category {parts[1]!r} is not in the categories "
                            "file", 0)
        if parts[2] not in ("<", ">", "=", "<=", ">=", "!="):
            raise self._err(opt, f"iprep: unknown operator {parts[2]!r}", 0)
        cmp = self._compare(opt, 127, parts[2] + parts[3])
        self.rule.iprep = self.rule.iprep + ((parts[0], cat, cmp, rep),)

    # ------------------------------------------------------------ files

    def _opt_filename(self, opt: _Opt, ext: bool = False) -> None:
        """``filename:[!]"name"``: ``file.name; content:"name"; nocase;``;
        ``fileext:[!]"ext"``: ``file.name; content:".ext"; endswith; nocase;``
        (Suricata's detect-filename.c). The sticky buffer is reset after it,
        as there."""
        value = self._value(opt).strip(_BLANK)
        if ext:
            neg = value.startswith("!")
            body = value[1:].strip(_BLANK) if neg else value
            quoted = len(body) >= 2 and body[0] == body[-1] == '"'
            body = body[1:-1] if quoted else body
            value = ("!" if neg else "") + '".' + body + '"'
            opt = opt._replace(value=value)
        self._opt_content(opt, buffer="file.name")
        c = self.last_content
        c.nocase = True
        if ext:
            c.endswith = True
        self.sticky = None

    def _opt_fileext(self, opt: _Opt) -> None:
        self._opt_filename(opt, ext=True)

    def _opt_filesize(self, opt: _Opt) -> None:
        self._claim(opt, "file.name")
        value = self._value(opt).strip(_BLANK)
        m = re.fullmatch(r"(.*?\d)\s*([kmg])?b", value, re.IGNORECASE)
        if m is not None:  # (Suricata's units: 10KB, 1MB...)
            shift = _UNIT_SHIFT[m.group(2) and m.group(2).lower()]
            cmp = self._compare(opt._replace(value=m.group(1)), 2**64 - 1)
            cmp = IntCompare(cmp.op, cmp.value << shift,
                             None if cmp.value2 is None else cmp.value2 << shift, value)
        else:
            cmp = self._compare(opt, 2**64 - 1)
        self._file_check(FileCheck("size", cmp))

    def _opt_filemd5(self, opt: _Opt) -> None:
        """``filemd5:[!]<file>`` (likewise sha1, sha256): the file's digest is
        (not) one of the list's, read beside the rule file: a hex digest at
        the start of each line, the rest of the line ignored."""
        self._claim(opt, "file.name")
        kind, size = FILE_HASHES[opt.name]
        value = self._value(opt).strip(_BLANK)
        neg = value.startswith("!")
        name = value[1:].strip(_BLANK) if neg else value
        name = name.strip('"')
        path = os.path.join(self._rule_dir(), name)  # (an absolute name stays itself)
        digests = set()
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    word = line.strip().split(None, 1)[0] if line.strip() else ""
                    if not word or word.startswith("#"):
                        continue
                    try:
                        d = bytes.fromhex(word[:size * 2])
                    except ValueError:
                        d = b""
                    if len(d) != size:
                        raise self._err(opt, f"{opt.name}: {name}:{n}: not a {kind} "
                                        "digest in hex", 0)
                    digests.add(d)
        except OSError as e:
            raise self._err(opt, f"{opt.name}: cannot read {name}: {e.strerror or e}", 0) \
                from None
        if not digests:
            raise self._err(opt, f"{opt.name}: {name} holds no {kind} digest", 0)
        self._file_check(FileCheck(kind, frozenset(digests), neg))

    _opt_filesha1 = _opt_filemd5
    _opt_filesha256 = _opt_filemd5

    def _opt_filemagic(self, opt: _Opt) -> None:
        self._claim(opt, "file.name")
        from .files import file_magic

        if file_magic(b"") is None:
            self.b.blockers.append("filemagic")
            raise _Skip("filemagic", "filemagic needs libmagic (Debian: python3-magic)")
        negated, data = self._content_bytes(opt, self._value(opt).strip(_BLANK))
        self._file_check(FileCheck("magic", data.lower(), negated))

    def _opt_filestore(self, opt: _Opt) -> None:
        """``filestore[:<direction>[,<scope>]]``: an alert stores the file(s)
        (``request``/``to_server``, ``response``/``to_client``, ``both``;
        scope ``file``, the matching file, or ``tx``, the transaction's).
        Scope ``ssn``/``flow`` (every later file of the flow) is not kept:
        the rule is skipped."""
        self._claim(opt, "file.name")
        direction, scope = None, "file"
        if opt.value is not None:
            parts = [p.strip(_BLANK) for p in opt.value.split(",")]
            if len(parts) > 2 or not parts[0]:
                raise self._err(opt, "filestore: expected [<direction>[,<scope>]]", 0)
            d = {"request": "request", "to_server": "request", "response": "response",
                 "to_client": "response", "both": "both"}.get(parts[0])
            if d is None:
                raise self._err(opt, f"filestore: unknown direction {parts[0]!r}", 0)
            direction = d
            if len(parts) == 2:
                scope = parts[1]
                if scope in ("ssn", "flow"):
                    self.b.blockers.append("filestore")
                    raise _Skip("filestore", f"filestore scope {scope} (every later file of "
                                "the flow) is not supported")
                if scope not in ("file", "tx"):
                    raise self._err(opt, f"filestore: unknown scope {scope!r}", 0)
        self.rule.filestore = (direction, scope)

    def _file_check(self, check: FileCheck) -> None:
        self.rule.files = self.rule.files + (check,)

    def _opt_bsize(self, opt: _Opt) -> None:
        if self.sticky is None:
            raise self._err(opt, "bsize needs a sticky buffer (e.g. http.uri;) before it")
        self.elements.append(BufferSize(self._compare(opt, 2**64 - 1), self.sticky))

    def _opt_pcre(self, opt: _Opt) -> None:
        value = self._value(opt).strip(_BLANK)
        v = value
        negated = False
        if v.startswith("!"):
            negated = True
            v = v[1:].lstrip(_BLANK)
        if v.startswith('"'):
            v = v[1:]
            if v.startswith("!") and not negated:
                negated = True
                v = v[1:]
        if v.endswith('"') and not _escaped_at(v, len(v) - 1, 0):
            v = v[:-1]
        if not v.startswith("/"):
            raise self._err(opt, f"pcre: expected \"/regex/flags\", found {value!r}", 0)
        last = v.rfind("/")
        if last <= 0:
            raise self._err(opt, "pcre: missing the closing '/'", 0)
        source, flags = v[1:last], v[last + 1 :].strip(_BLANK)
        for f in flags:
            if f not in PCRE_FLAGS:
                raise self._err(opt, f"pcre: unknown modifier {f!r}", 0)
        if not source:
            raise self._err(opt, "pcre: empty regex", 0)
        buffers = {PCRE_BUFFER_FLAGS[f] for f in flags if f in PCRE_BUFFER_FLAGS}
        if len(buffers) > 1:
            names = ", ".join(sorted(buffers))
            raise self._err(opt, f"pcre: modifiers for more than one buffer ({names})", 0)
        buffer = buffers.pop() if buffers else None
        if buffer is not None and self.sticky is not None and buffer != self.sticky:
            raise self._err(
                opt, f"pcre: modifier for {buffer} inside sticky buffer {self.sticky}", 0
            )
        relative = "R" in flags
        if buffer is None:
            buffer = self._element_buffer(relative)
        try:
            regex = compile_pcre(source, flags)
        except PcreUnsupported as e:
            raise _Skip("pcre-syntax", f"PCRE construct Python can't compile: {e}") from None
        pcre = PcreMatch(
            source, flags, regex, relative, negated, buffer, text=value, column=opt.value_pos + 1
        )
        self.elements.append(pcre)
        self.last_match = pcre
        self.last_buffer = buffer
        if buffer is not None:
            self._claim(opt, buffer)

    # ------------------------------------------------------------ the rest

    def _opt_flow(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt)
        seen: dict[str, bool] = {}
        names = {
            "to_server": "to_server", "from_client": "to_server",
            "to_client": "to_client", "from_server": "to_client",
            "established": "established", "not_established": "not_established",
            "stateless": "stateless", "only_stream": "only_stream", "no_stream": "no_stream",
        }  # fmt: skip
        for item in value.split(","):
            item = item.strip(_BLANK).lower()
            if item in ("only_frag", "no_frag"):
                raise _Skip(f"flow:{item}", f"unsupported flow option {item!r}")
            if item not in names:
                raise self._err(opt, f"flow: unknown option {item!r}", 0)
            seen[names[item]] = True
        for a, b in (("to_server", "to_client"), ("established", "not_established"),
                     ("established", "stateless"), ("only_stream", "no_stream")):  # fmt: skip
            if a in seen and b in seen:
                raise self._err(opt, f"flow: {a} and {b} contradict each other", 0)
        self.rule.flow = FlowSpec(value.strip(_BLANK), **seen)

    def _opt_dsize(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.dsize = self._compare(opt, 65535)

    def _opt_urilen(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt)
        head, comma, form = value.partition(",")
        form = form.strip(_BLANK)
        if comma and form not in ("raw", "norm"):
            raise self._err(opt, f"urilen: expected ',raw' or ',norm', found {form!r}", 0)
        self.rule.urilen = UriLen(self._compare(opt, 2**32 - 1, head), form)

    def _opt_itype(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.itype = self._compare(opt, 255)

    def _opt_icode(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.icode = self._compare(opt, 255)

    def _opt_icmp_id(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.icmp_id = self._int(opt, 0, 65535)

    def _opt_icmp_seq(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.icmp_seq = self._int(opt, 0, 65535)

    def _opt_tcp_flags(self, opt: _Opt) -> None:
        # Suricata 8's name of the same keyword
        if self.rule.flags is not None:
            raise self._err(opt, "flags given twice")
        self._opt_flags(opt)

    def _opt_flags(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        head, comma, mask_text = value.partition(",")
        modifier = ""
        bits = 0
        zero = False
        for ch in head.strip(_BLANK):
            if ch in "+*!":
                if modifier:
                    raise self._err(opt, f"flags: more than one modifier in {value!r}", 0)
                modifier = ch
            elif ch == "0":
                zero = True
            elif ch.upper() in TCP_FLAG_BITS:
                bits |= TCP_FLAG_BITS[ch.upper()]
            else:
                raise self._err(opt, f"flags: unknown flag {ch!r}", 0)
        if zero and bits:
            raise self._err(opt, "flags: 0 (no flags) can't be combined with flags", 0)
        if not zero and not bits:
            raise self._err(opt, f"flags: no flags in {value!r}", 0)
        ignore = 0
        if comma:
            for ch in mask_text.strip(_BLANK):
                if ch.upper() not in TCP_FLAG_BITS:
                    raise self._err(opt, f"flags: unknown flag {ch!r} in the mask", 0)
                ignore |= TCP_FLAG_BITS[ch.upper()]
        self.rule.flags = TcpFlags(value, bits, modifier, ignore)

    def _threshold(self, opt: _Opt, with_type: bool) -> Threshold:
        self._single(opt)
        value = self._value(opt)
        items: dict[str, str] = {}
        for part in value.split(","):
            words = part.split()
            if len(words) != 2:
                raise self._err(
                    opt, f"{opt.name}: expected 'KEY VALUE' items, found {part.strip()!r}", 0
                )
            key, val = words[0].lower(), words[1]
            if key in items:
                raise self._err(opt, f"{opt.name}: {key} given twice", 0)
            items[key] = val
        backoff = with_type and items.get("type") == "backoff"
        # backoff (Suricata 8): alerts at count, count * multiplier, ... of a flow
        keys = {"track", "count", "multiplier" if backoff else "seconds"} | (
            {"type"} if with_type else set())
        extra = set(items) - keys
        if extra:
            raise _Skip(opt.name, f"unsupported {opt.name} form ({', '.join(sorted(extra))})")
        missing = keys - set(items)
        if missing:
            raise self._err(opt, f"{opt.name}: missing {', '.join(sorted(missing))}", 0)
        kind = items.get("type")
        if with_type and kind not in ("limit", "threshold", "both", "backoff"):
            raise self._err(
                opt, f"{opt.name}: type must be limit, threshold, both or backoff, not {kind!r}", 0
            )
        if backoff and items["track"] != "by_flow":
            raise self._err(opt, "threshold: type backoff tracks by_flow only", 0)
        if items["track"] not in ("by_src", "by_dst", "by_rule", "by_both", "by_flow"):
            raise self._err(
                opt, f"{opt.name}: track must be by_src, by_dst, by_rule, by_both or by_flow", 0)
        numbers = []
        for key in ("count", "multiplier" if backoff else "seconds"):
            if not re.fullmatch(r"\d{1,9}", items[key]):
                raise self._err(opt, f"{opt.name}: {key} must be a number, not {items[key]!r}", 0)
            numbers.append(int(items[key]))
        if backoff:
            if numbers[0] < 1 or numbers[1] < 1:
                raise self._err(opt, "threshold: backoff count and multiplier must be 1 or more", 0)
            return Threshold(items["track"], numbers[0], 0, kind, numbers[1])
        return Threshold(items["track"], numbers[0], numbers[1], kind)

    def _opt_threshold(self, opt: _Opt) -> None:
        self.rule.threshold = self._threshold(opt, True)

    def _opt_detection_filter(self, opt: _Opt) -> None:
        self.rule.detection_filter = self._threshold(opt, False)

    def _event(self, opt: _Opt) -> str:
        value = self._value(opt).strip(_BLANK)
        if not _WORD.match(value):
            raise self._err(opt, f"{opt.name}: invalid event name {value!r}", 0)
        return value

    def _opt_decode_event(self, opt: _Opt) -> None:
        self.decode_events.append(self._event(opt))

    def _opt_stream_event(self, opt: _Opt) -> None:
        self.stream_events.append(self._event(opt))

    # ------------------------------------------------------------ byte_*

    def _byte_args(self, opt: _Opt, fixed: int, form: str) -> list[str]:
        parts = [p.strip(_BLANK) for p in self._value(opt).split(",")]
        if len(parts) < fixed or any(not p for p in parts):
            raise self._err(opt, f"{opt.name}: expected {form}, found {opt.value!r}", 0)
        return parts

    def _byte_number(self, opt: _Opt, text: str, what: str, lo: int, hi: int,
                     variable: bool = False) -> int | str:  # fmt: skip
        """A decimal, 0x hex or 0-prefixed octal number (Suricata reads these
        with base 0), or with ``variable`` a byte_extract name."""
        if variable and text[0].isalpha():
            if text not in self.byte_vars:
                raise self._err(opt, f"{opt.name}: unknown byte_extract variable {text!r}", 0)
            return text
        m = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F]{1,16}|0[0-7]{1,22}|\d{1,20})", text)
        if m is None:
            raise self._err(opt, f"{opt.name}: {what} must be a number, not {text!r}", 0)
        digits = m.group(2)
        if digits[:2] in ("0x", "0X"):
            number = int(digits, 16)
        elif len(digits) > 1 and digits[0] == "0":
            number = int(digits, 8)
        else:
            number = int(digits)
        number = -number if m.group(1) == "-" else number
        if not lo <= number <= hi:
            raise self._err(opt, f"{opt.name}: {what} {text} out of range {lo}..{hi}", 0)
        return number

    def _byte_flags(self, opt: _Opt, parts: list[str], allowed: frozenset[str],
                    with_value: frozenset[str] = frozenset()) -> dict[str, str]:  # fmt: skip
        """The flag words after the positional arguments: {word: value}
        (value "" for plain words; ``multiplier 4``-style words carry one)."""
        seen: dict[str, str] = {}
        for part in parts:
            word, _, rest = part.partition(" ")
            word = word.lower()
            rest = rest.strip(_BLANK)
            if word in with_value:
                if not rest:
                    raise self._err(opt, f"{opt.name}: {word} needs a value: '{word} N'", 0)
            elif word not in allowed or rest:
                raise self._err(opt, f"{opt.name}: unknown option {part!r}", 0)
            if word in ("big", "little") and ({"big", "little"} - {word}) & seen.keys():
                raise self._err(opt, f"{opt.name}: both big and little endian", 0)
            if word in ("hex", "dec", "oct") and {"hex", "dec", "oct"} & seen.keys():
                raise self._err(opt, f"{opt.name}: more than one number base", 0)
            seen[word] = rest
        if "dce" in seen:
            # dce takes the byte order from the DCERPC app layer, not supported
            raise _Skip(f"{opt.name}/dce", f"{opt.name} dce needs the DCERPC app layer")
        base = next((b for b in ("hex", "dec", "oct") if b in seen), None)
        if base and "string" not in seen:
            raise self._err(opt, f"{opt.name}: a number base ({base}) needs 'string'", 0)
        return seen

    @staticmethod
    def _string_base(flags: Mapping[str, str]) -> int | None:
        if "string" not in flags:
            return None
        return 16 if "hex" in flags else 8 if "oct" in flags else 10

    def _nbytes(self, opt: _Opt, text: str, string_max: int, flags: Mapping[str, str]) -> int:
        if not re.fullmatch(r"\d{1,3}", text):
            raise self._err(opt, f"{opt.name}: number of bytes must be a number, not {text!r}", 0)
        n = int(text)
        most = string_max if "string" in flags else 8
        # 0 with string: Suricata's ByteExtractString then reads the digits
        # there, however many (ET: byte_test:0,>,99,0,string,dec)
        least = 0 if "string" in flags and opt.name == "byte_test" else 1
        if not least <= n <= most:
            how = "with" if "string" in flags else "without"
            raise self._err(opt, f"{opt.name}: {n} bytes: {least} to {most} {how} 'string'", 0)
        return n

    def _bitmask(self, opt: _Opt, flags: Mapping[str, str]) -> int | None:
        if "bitmask" not in flags:
            return None
        mask = self._byte_number(opt, flags["bitmask"], "bitmask", 1, _UINT32_MAX)
        return int(mask)

    def _byte_buffer(self, relative: bool) -> str | None:
        """Suricata: the sticky buffer; else, when relative, the buffer of
        the last content/pcre/isdataat/byte_* (payload when there is none)."""
        if self.sticky is not None:
            return self.sticky
        return self.last_buffer if relative else None

    def _opt_byte_test(self, opt: _Opt) -> None:
        form = "N,[!]OP,VALUE,OFFSET[,relative][,big|little][,string[,hex|dec|oct]][,bitmask M]"
        parts = self._byte_args(opt, 4, form)
        flags = self._byte_flags(
            opt, parts[4:], frozenset({"relative", "big", "little", "string", "hex", "dec",
                                       "oct", "dce"}), frozenset({"bitmask"}),
        )  # fmt: skip
        nbytes = self._nbytes(opt, parts[0], 23, flags)
        m = re.fullmatch(r"(!?)\s*(<=|>=|<|>|=|&|\^|)", parts[1])
        if m is None or (not m.group(1) and not m.group(2)):
            raise self._err(
                opt,
                f"byte_test: invalid operator {parts[1]!r} (<, >, =, <=, >=, &, ^, ! or !OP)",
                0,
            )
        value = self._byte_number(opt, parts[2], "value", 0, 2**64 - 1, variable=True)
        offset = self._byte_number(opt, parts[3], "offset", -65535, 65535, variable=True)
        relative = "relative" in flags
        element = ByteTest(
            nbytes, m.group(2) or "=", value, offset, relative=relative,
            negated=bool(m.group(1)), big_endian="little" not in flags,
            string_base=self._string_base(flags), bitmask=self._bitmask(opt, flags),
            buffer=self._byte_buffer(relative),
        )  # fmt: skip
        self._add_byte(opt, element)

    def _opt_byte_jump(self, opt: _Opt) -> None:
        form = (
            "N,OFFSET[,relative][,multiplier M][,big|little][,string[,hex|dec|oct]][,align]"
            "[,from_beginning|from_end][,post_offset P][,bitmask M]"
        )
        parts = self._byte_args(opt, 2, form)
        flags = self._byte_flags(
            opt, parts[2:], frozenset({"relative", "big", "little", "string", "hex", "dec",
                                       "oct", "align", "from_beginning", "from_end", "dce"}),
            frozenset({"multiplier", "post_offset", "bitmask"}),
        )  # fmt: skip
        if "from_beginning" in flags and "from_end" in flags:
            raise self._err(opt, "byte_jump: from_beginning and from_end exclude each other", 0)
        nbytes = self._nbytes(opt, parts[0], 23, flags)
        offset = self._byte_number(opt, parts[1], "offset", -65535, 65535, variable=True)
        multiplier = 1
        if "multiplier" in flags:
            multiplier = int(self._byte_number(opt, flags["multiplier"], "multiplier", 1, 65535))
        post_offset = 0
        if "post_offset" in flags:
            post_offset = int(
                self._byte_number(opt, flags["post_offset"], "post_offset", -65535, 65535)
            )
        relative = "relative" in flags
        element = ByteJump(
            nbytes, offset, relative=relative, multiplier=multiplier,
            big_endian="little" not in flags, string_base=self._string_base(flags),
            align="align" in flags, from_beginning="from_beginning" in flags,
            from_end="from_end" in flags, post_offset=post_offset,
            bitmask=self._bitmask(opt, flags), buffer=self._byte_buffer(relative),
        )  # fmt: skip
        self._add_byte(opt, element)

    def _opt_byte_extract(self, opt: _Opt) -> None:
        form = (
            "N,OFFSET,NAME[,relative][,multiplier M][,big|little][,string[,hex|dec|oct]]"
            "[,align 2|4][,bitmask M]"
        )
        parts = self._byte_args(opt, 3, form)
        rest = parts[3:]
        words = [p.partition(" ")[0].lower() for p in rest]
        dup = next((w for w in words if words.count(w) > 1), None)
        if dup:  # Suricata refuses a repeated byte_extract option
            raise self._err(opt, f"byte_extract: {dup} given twice", 0)
        flags = self._byte_flags(
            opt, rest, frozenset({"relative", "big", "little", "string", "hex", "dec", "oct",
                                  "dce"}), frozenset({"multiplier", "align", "bitmask"}),
        )  # fmt: skip
        if "string" in flags and ("big" in flags or "little" in flags):
            raise self._err(opt, "byte_extract: 'string' can't be combined with big/little", 0)
        # longest string that can't overflow 64 bits, per base (as Suricata)
        string_max = 14 if "hex" in flags else 23 if "oct" in flags else 20
        nbytes = self._nbytes(opt, parts[0], string_max, flags)
        offset = int(self._byte_number(opt, parts[1], "offset", -65535, 65535))
        name = parts[2]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name):
            raise self._err(opt, f"byte_extract: invalid variable name {name!r}", 0)
        multiplier = 1
        if "multiplier" in flags:
            multiplier = int(self._byte_number(opt, flags["multiplier"], "multiplier", 1, 65535))
        align = 0
        if "align" in flags:
            if flags["align"] not in ("2", "4"):
                raise self._err(
                    opt, f"byte_extract: align must be 2 or 4, not {flags['align']!r}", 0
                )
            align = int(flags["align"])
        relative = "relative" in flags
        element = ByteExtract(
            nbytes, offset, name, relative=relative, multiplier=multiplier,
            big_endian="little" not in flags, string_base=self._string_base(flags),
            align=align, bitmask=self._bitmask(opt, flags), buffer=self._byte_buffer(relative),
        )  # fmt: skip
        self._add_byte(opt, element)
        self.byte_vars.add(name)

    def _opt_byte_math(self, opt: _Opt) -> None:
        form = ("bytes N,offset O,oper +|-|*|/|<<|>>,rvalue V,result NAME[,relative]"
                "[,endian big|little][,string hex|dec|oct][,bitmask M]")
        items: dict[str, str] = {}
        for part in self._byte_args(opt, 5, form):
            word, _, rest = part.partition(" ")
            word, rest = word.lower(), rest.strip(_BLANK)
            if word in items:
                raise self._err(opt, f"byte_math: {word} given twice", 0)
            if (word == "relative") == bool(rest) or word not in (
                    "bytes", "offset", "oper", "rvalue", "result", "relative", "endian",
                    "string", "bitmask"):
                raise self._err(opt, f"byte_math: unexpected {part!r}; expected {form}", 0)
            items[word] = rest
        missing = [w for w in ("bytes", "offset", "oper", "rvalue", "result") if w not in items]
        if missing:
            raise self._err(opt, f"byte_math: {', '.join(missing)} missing; expected {form}", 0)
        if items["oper"] not in ("+", "-", "*", "/", "<<", ">>"):
            raise self._err(opt, f"byte_math: unknown oper {items['oper']!r}", 0)
        endian = items.get("endian", "big").lower()
        if endian not in ("big", "little"):
            raise self._err(opt, f"byte_math: endian must be big or little, not {endian!r}", 0)
        base = items.get("string", "").lower()
        if base and base not in ("hex", "dec", "oct"):
            raise self._err(opt, f"byte_math: string must be hex, dec or oct, not {base!r}", 0)
        flags = {"string": "", base: ""} if base else {}
        nbytes = self._nbytes(opt, items["bytes"], 10, flags)
        offset = int(self._byte_number(opt, items["offset"], "offset", -65535, 65535))
        rvalue = self._byte_number(opt, items["rvalue"], "rvalue", 0, _UINT32_MAX, variable=True)
        if items["oper"] == "/" and rvalue == 0:
            raise self._err(opt, "byte_math: division by an rvalue of 0", 0)
        name = items["result"]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name):
            raise self._err(opt, f"byte_math: invalid result name {name!r}", 0)
        relative = "relative" in items
        element = ByteMath(
            nbytes, offset, items["oper"], rvalue, name, relative=relative,
            big_endian=endian == "big",
            string_base=self._string_base(flags),
            bitmask=self._bitmask(opt, items), buffer=self._byte_buffer(relative),
        )  # fmt: skip
        self._add_byte(opt, element)
        self.byte_vars.add(name)

    def _add_byte(self, opt: _Opt, element: ByteTest | ByteJump | ByteExtract | ByteMath) -> None:
        self.elements.append(element)
        self.last_buffer = element.buffer

    # ------------------------------------------------------------ flow state

    def _opt_flowbits(self, opt: _Opt) -> None:
        value = self._value(opt).strip(_BLANK)
        cmd, comma, names_text = value.partition(",")
        cmd = cmd.strip(_BLANK).lower()
        names_text = names_text.strip(_BLANK)
        if cmd == "noalert":
            if comma:
                raise self._err(opt, "flowbits:noalert takes no name", 0)
            self.rule.noalert = True
            self.flowbits.append(Flowbit("noalert"))
            return
        if cmd not in ("set", "unset", "toggle", "isset", "isnotset"):
            raise self._err(
                opt,
                f"flowbits: unknown command {cmd!r} (set, unset, toggle, isset, isnotset, "
                "noalert)",
                0,
            )
        if not names_text:
            raise self._err(opt, f"flowbits:{cmd} needs a name: flowbits:{cmd},NAME;", 0)
        any_of = "|" in names_text
        if any_of and "&" in names_text:
            raise self._err(opt, "flowbits: names joined by both '|' and '&'", 0)
        if any_of and cmd not in ("isset", "isnotset"):
            raise self._err(opt, f"flowbits:{cmd} can't take alternatives (a|b)", 0)
        names = tuple(n.strip(_BLANK) for n in re.split(r"[|&]", names_text))
        for n in names:
            if not re.fullmatch(r"[^\s,;|&]+", n):
                raise self._err(opt, f"flowbits: invalid name {n!r}", 0)
        self.flowbits.append(Flowbit(cmd, tuple(sys.intern(n) for n in names), any_of))

    def _opt_target(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        if value not in ("src_ip", "dest_ip"):
            raise self._err(opt, f"target: expected src_ip or dest_ip, found {value!r}", 0)
        self.rule.target = value

    def _opt_absent(self, opt: _Opt) -> None:
        value = (opt.value or "").strip(_BLANK)
        if value not in ("", "or_else") or opt.value is not None and not value:
            raise self._err(opt, f"absent: expected 'absent;' or 'absent: or_else;', "
                            f"found {opt.value!r}", 0)
        buf = self.sticky
        if buf is None or not self.chains or self.chains[-1][0] != buf:
            raise self._err(opt, "absent must follow a sticky buffer keyword")
        self.rule.absent[buf] = value or "absent"  # (contents beside it: checked in run)

    def _opt_prefilter(self, opt: _Opt) -> None:
        # Suricata: use this rule's non-content keyword as its prefilter; a
        # hint about the engine's work, not about what matches
        self._no_value(opt)

    @staticmethod
    def _dehex(text: str) -> str:
        # (Suricata's integer keywords take 0x hex too)
        return re.sub(r"0[xX][0-9a-fA-F]{1,8}", lambda m: str(int(m.group(), 16)), text)

    def _opt_rpc(self, opt: _Opt) -> None:
        parts = [p.strip(_BLANK) for p in self._value(opt).split(",")]
        ok = 1 <= len(parts) <= 3 and parts[0].isdigit() and all(
            p == "*" or p.isdigit() for p in parts[1:])
        if not ok or any(p.isdigit() and int(p) > _UINT32_MAX for p in parts):
            raise self._err(opt, "rpc: expected PROGRAM[,VERSION|*[,PROCEDURE|*]] numbers; "
                            f"found {opt.value!r}", 0)
        nums = [int(p) if p.isdigit() else None for p in parts] + [None, None]
        self._hdr(opt).rpc = (nums[0], nums[1], nums[2])

    def _opt_vlan_id(self, opt: _Opt) -> None:
        h = self._hdr(opt)
        value, comma, layer = self._value(opt).partition(",")
        layer = layer.strip(_BLANK).lower()
        if comma and not re.fullmatch(r"all|-?\d{1,2}", layer):
            raise self._err(opt, f"vlan.id: layer must be a number or all, not {layer!r}", 0)
        where = None if not comma else "all" if layer == "all" else int(layer)
        h.vlan_id = (self._compare(opt, 4095, self._dehex(value)), where)

    def _opt_vlan_layers(self, opt: _Opt) -> None:
        self._hdr(opt).vlan_layers = self._compare(opt, 255, self._dehex(self._value(opt)))

    def _opt_flow_age(self, opt: _Opt) -> None:
        # seconds since the flow's first packet (Suricata 7)
        self._single(opt)
        self.rule.flow_age = self._compare(opt, _UINT32_MAX)

    def _opt_tcp_mss(self, opt: _Opt) -> None:
        self._hdr(opt).mss = self._compare(opt, 65535)

    def _opt_requires(self, opt: _Opt) -> None:
        """Suricata 7.0.3+: the rule loads only where its requirements hold
        (``version OP X.Y.Z`` pairs, alternatives joined by ``|``; ``feature
        NAME``). One that does not hold skips the rule, counted under
        ``requires`` (Suricata skips it silently); no feature is claimed."""
        for clause in self._value(opt).split(","):
            word, _, rest = clause.strip(_BLANK).partition(" ")
            rest = rest.strip(_BLANK)
            if word == "feature" and re.fullmatch(r"[\w:.\-]+", rest):
                raise _Skip("requires", f"requires feature {rest!r}")
            if word != "version" or not rest:
                raise self._err(opt, "requires: expected 'version OP X.Y.Z' or 'feature NAME' "
                                f"items, found {clause.strip()!r}", 0)
            holds = False
            for alt in rest.split("|"):
                pairs = re.findall(r"(>=|<=|>|<|=)?\s*(\d+(?:\.\d+){0,2})", alt)
                if not pairs or re.sub(r"(>=|<=|>|<|=)?\s*\d+(?:\.\d+){0,2}", "", alt).strip():
                    raise self._err(opt, f"requires: bad version expression {alt.strip()!r}", 0)
                holds = holds or all(
                    COMPARE[op or ">="](SURICATA_VERSION[:len(v)], v)
                    for op, v in ((op, tuple(int(x) for x in ver.split("."))) for op, ver in pairs))
            if not holds:
                raise _Skip("requires", f"requires version {rest}")

    def _opt_flowint(self, opt: _Opt) -> None:
        value = self._value(opt).strip(_BLANK)
        m = re.fullmatch(r"([\w.\-]+)\s*,\s*(==|!=|<=|>=|<|>|=|\+|-|isset|notset|isnotset)"
                         r"(?:\s*,\s*([\w.\-]+))?", value)
        if m is None:
            raise self._err(opt, "flowint: expected NAME,OP[,VALUE] with OP one of = + - == != "
                            f"< <= > >= isset notset; found {value!r}", 0)
        name, op, target = m.groups()
        op = "notset" if op == "isnotset" else op
        if (target is None) != (op in ("isset", "notset")):
            raise self._err(opt, f"flowint: {op} {'takes no' if target else 'needs a'} value", 0)
        if target is not None and target[0].isdigit():
            if not target.isdigit() or int(target) > _UINT32_MAX:
                raise self._err(opt, f"flowint: value {target!r} not in 0-{_UINT32_MAX}", 0)
            target = int(target)
        self.rule.flowints += (Flowint(sys.intern(name), op, target),)

    def _opt_hostbits(self, opt: _Opt) -> None:
        # Suricata's hostbits: bits of a host (the packet's source by
        # default, its destination, or both), kept as xbits are
        self._host_bits(opt, r"(\w+)\s*,\s*([^\s,;|&]+)(?:\s*,\s*(src|dst|both))?",
                        "CMD,NAME[,src|dst|both][,expire SECONDS]")

    def _opt_noalert(self, opt: _Opt) -> None:
        # Suricata 7's spelling of flowbits:noalert: the rule matches (and
        # sets its bits) but raises no alert
        self._no_value(opt)
        self.rule.noalert = True

    def _opt_xbits(self, opt: _Opt) -> None:
        self._host_bits(opt, r"(\w+)\s*,\s*([^\s,;|&]+)\s*,\s*track\s+(ip_src|ip_dst|ip_pair)",
                        "CMD,NAME,track ip_src|ip_dst|ip_pair[,expire SECONDS]")

    def _host_bits(self, opt: _Opt, head: str, form: str) -> None:
        """xbits and hostbits: ``noalert``, or a command, a name, what is
        tracked (``head``'s groups) and an expiry, into ``rule.xbits``."""
        value = self._value(opt).strip(_BLANK)
        if value.lower() == "noalert":
            self.rule.noalert = True
            return
        m = re.fullmatch(head + r"(?:\s*,\s*expire\s+(\d{1,10}))?", value)
        cmd = m.group(1).lower() if m else ""
        if cmd not in ("set", "unset", "toggle", "isset", "isnotset"):
            raise self._err(opt, f"{opt.name}: expected {form} with CMD one of set, unset, "
                            f"toggle, isset, isnotset; found {value!r}", 0)
        hostbits = opt.name == "hostbits"
        track = m.group(3) or "src"
        if track == "both" and cmd in ("isset", "isnotset"):
            raise self._err(opt, f"hostbits: {cmd} takes src or dst, not both", 0)
        expire = int(m.group(4)) if m.group(4) else HOSTBITS_EXPIRE if hostbits else 30
        if not 0 < expire <= _UINT32_MAX:
            raise self._err(opt, f"{opt.name}: expire {expire} out of range 1-{_UINT32_MAX}", 0)
        if hostbits:  # (not an xbit of the same name)
            name = sys.intern("host:" + m.group(2))
            tracks = ("ip_src", "ip_dst") if track == "both" else ("ip_" + track,)
        else:
            name, tracks = sys.intern(m.group(2)), (track,)
        for t in tracks:
            self.rule.xbits += (Xbit(cmd, name, t, expire),)

    def _opt_app_layer_protocol(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        negated = value.startswith("!")
        name = value[1:].strip(_BLANK).lower() if negated else value.lower()
        if name == "ssl":
            name = "tls"
        if not re.fullmatch(r"[a-z0-9_\-]+", name):
            raise self._err(opt, f"app-layer-protocol: expected [!]NAME, found {value!r}", 0)
        self.rule.app_layer_protocol = (negated, sys.intern(name))

    def _opt_ftpbounce(self, opt: _Opt) -> None:
        self._no_value(opt)
        self._single(opt)
        self.rule.ftpbounce = True

    def _opt_tag(self, opt: _Opt) -> None:
        # tag only asks Suricata to log the following packets; there is no
        # packet log to feed here, so the syntax is checked and nothing kept
        parts = [p.strip(_BLANK).lower() for p in self._value(opt).split(",")]
        kind = parts[0]
        if kind not in ("session", "host"):
            raise self._err(opt, f"tag: expected session or host, found {kind!r}", 0)
        rest = parts[1:]
        if kind == "session" and not rest:
            return
        if len(rest) < 2 or not rest[0].isdigit() or rest[1] not in ("packets", "seconds", "bytes"):
            raise self._err(
                opt, "tag: expected session[,COUNT,packets|seconds|bytes] or "
                "host,COUNT,packets|seconds|bytes[,src|dst]", 0,
            )  # fmt: skip
        extra = rest[2:]
        if extra and (kind != "host" or extra != ["src"] and extra != ["dst"]):
            raise self._err(opt, f"tag: unexpected {','.join(extra)!r}", 0)

    def _opt_stream_size(self, opt: _Opt) -> None:
        value = self._value(opt)
        m = re.fullmatch(
            r"\s*(server|client|both|either)\s*,\s*(<=|>=|!=|<|>|=)\s*,\s*(\d{1,10})\s*", value
        )
        if m is None:
            raise self._err(
                opt,
                f"stream_size: expected server|client|both|either,OP,N with OP one of "
                f"<, >, =, !=, <=, >=; found {value!r}",
                0,
            )
        number = int(m.group(3))
        if number > _UINT32_MAX:
            raise self._err(opt, f"stream_size: {number} out of range 0-{_UINT32_MAX}", 0)
        # several are allowed (ET: client,>,424 and client,<,685 for a range)
        self.rule.stream_size += (StreamSize(m.group(1), m.group(2), number),)

    def _opt_ip_proto(self, opt: _Opt) -> None:
        self._single(opt)
        value = self._value(opt).strip(_BLANK)
        m = re.fullmatch(r"([!<>]?)\s*([A-Za-z0-9\-]+)", value)
        if m is None:
            raise self._err(opt, f"ip_proto: expected [!|<|>]NUMBER or a name, found {value!r}", 0)
        op = {"": "=", "!": "!=", "<": "<", ">": ">"}[m.group(1)]
        word = m.group(2)
        if word.isdigit():
            number = int(word)
            if number > 255:
                raise self._err(opt, f"ip_proto: {number} out of range 0-255", 0)
        elif word.lower() in IP_PROTOCOL_NUMBERS:
            number = IP_PROTOCOL_NUMBERS[word.lower()]
        else:
            raise self._err(opt, f"ip_proto: unknown protocol name {word!r}", 0)
        self.rule.ip_proto = IntCompare(op, number, None, value)

    def _opt_id(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.ip_id = self._int(opt, 0, 65535)

    def _opt_pkt_data(self, opt: _Opt) -> None:
        # back to the payload (the packet's, or the stream) after a sticky
        # buffer: what follows is matched there, relative options included
        self._no_value(opt)
        self.sticky = None
        self.last_buffer = None

    def _hdr(self, opt: _Opt) -> IpHeader:
        self._single(opt)
        h = self.rule.header
        if h is None:
            h = self.rule.header = IpHeader()
        return h

    def _opt_ttl(self, opt: _Opt) -> None:
        self._hdr(opt).ttl = self._compare(opt, 255)

    def _negated_int(self, opt: _Opt, hi: int, hex_ok: bool = False) -> tuple[bool, int]:
        value = self._value(opt).strip(_BLANK)
        negated = value.startswith("!")
        word = value[1:].strip(_BLANK) if negated else value
        number = None
        if word.isdigit():
            number = int(word)
        elif hex_ok and re.fullmatch(r"(?:0[xX]|[xX])[0-9a-fA-F]{1,2}", word):
            number = int(word.lstrip("0").lstrip("xX"), 16)
        if number is None or number > hi:
            form = "[!]N or [!]0xNN" if hex_ok else "[!]N"
            raise self._err(opt, f"{opt.name}: expected {form} in 0-{hi}, found {value!r}", 0)
        return negated, number

    def _opt_tos(self, opt: _Opt) -> None:
        self._hdr(opt).tos = self._negated_int(opt, 255, hex_ok=True)

    def _opt_window(self, opt: _Opt) -> None:
        self._hdr(opt).window = self._negated_int(opt, 65535)

    def _opt_seq(self, opt: _Opt) -> None:
        self._hdr(opt).seq = self._int(opt, 0, _UINT32_MAX)

    def _opt_ack(self, opt: _Opt) -> None:
        self._hdr(opt).ack = self._int(opt, 0, _UINT32_MAX)

    def _opt_sameip(self, opt: _Opt) -> None:
        self._no_value(opt)
        self._hdr(opt).sameip = True

    def _opt_ipopts(self, opt: _Opt) -> None:
        h = self._hdr(opt)
        word = self._value(opt).strip(_BLANK).lower()
        if word not in IP_OPTION_TYPES:
            raise self._err(opt, f"ipopts: unknown option {word!r} "
                            f"({', '.join(IP_OPTION_TYPES)})", 0)
        h.ipopt = IP_OPTION_TYPES[word]

    def _opt_fragbits(self, opt: _Opt) -> None:
        h = self._hdr(opt)
        value = self._value(opt).strip(_BLANK)
        # Suricata: the modifier first; Snort's documentation also writes it last
        m = re.fullmatch(r"([+*!]?)\s*([MDRmdr]+)\s*([+*!]?)", value)
        if m is None or m.group(1) and m.group(3):
            raise self._err(opt, f"fragbits: expected [+*!]BITS with BITS of M, D, R; "
                            f"found {value!r}", 0)
        bits = 0
        for ch in m.group(2).upper():
            bits |= FRAG_BITS[ch]
        h.fragbits = (m.group(1) or m.group(3), bits)

    def _opt_fragoffset(self, opt: _Opt) -> None:
        h = self._hdr(opt)
        value = self._value(opt).strip(_BLANK)
        m = re.fullmatch(r"([!<>]?)\s*(\d{1,5})", value)
        if m is None or int(m.group(2)) > 8191:
            raise self._err(opt, f"fragoffset: expected [!|<|>]N with N in 0-8191, "
                            f"found {value!r}", 0)
        op = {"": "=", "!": "!=", "<": "<", ">": ">"}[m.group(1)]
        h.fragoffset = IntCompare(op, int(m.group(2)), None, value)

    def _opt_ssl_version(self, opt: _Opt) -> None:
        self._single(opt)
        versions = []
        for item in self._value(opt).split(","):
            item = item.strip(_BLANK).lower()
            word = item.lstrip("!").strip(_BLANK)
            if word not in SSL_VERSIONS:
                raise self._err(
                    opt, f"ssl_version: unknown version {word!r} ({', '.join(SSL_VERSIONS)})", 0
                )
            versions.append(("!" if item.startswith("!") else "") + word)
        self.rule.ssl_version = tuple(versions)
        self._claim(opt, None, "tls")

    def _opt_tls_version(self, opt: _Opt) -> None:
        # "1.0".."1.3", or a raw 16-bit value written as 0xNNNN (a draft's)
        self._single(opt)
        word = self._value(opt).strip(_BLANK)
        if len(word) >= 2 and word[0] == word[-1] == '"':
            word = word[1:-1]
        if word in TLS_VERSIONS:
            self.rule.tls_version = (TLS_VERSIONS[word], False)
        elif re.fullmatch(r"0[xX][0-9a-fA-F]{4}", word):
            self.rule.tls_version = (int(word, 16), True)
        else:
            raise self._err(opt, f"tls.version: {word!r} is not 1.0, 1.1, 1.2, 1.3 or 0xNNNN", 0)
        self._claim(opt, None, "tls")

    def _opt_tls_cert_chain_len(self, opt: _Opt) -> None:
        self._single(opt)
        self.rule.tls_chain_len = self._compare(opt, _UINT32_MAX)
        self._claim(opt, None, "tls")

    def _opt_dns_opcode(self, opt: _Opt) -> None:
        # Suricata 8's uint8 forms (N, !N, <N, >N, A-B ...); opcodes are 4 bits
        self._single(opt)
        self.rule.dns_opcode = self._compare(opt, 255)
        self._claim(opt, None, "dns")

    def _opt_ssl_state(self, opt: _Opt) -> None:
        self._single(opt)
        states = []
        for item in self._value(opt).split("|"):
            item = item.strip(_BLANK).lower()
            word = item.lstrip("!").strip(_BLANK)
            if word not in SSL_STATES:
                raise self._err(
                    opt, f"ssl_state: unknown state {word!r} ({', '.join(SSL_STATES)})", 0
                )
            states.append(("!" if item.startswith("!") else "") + word)
        self.rule.ssl_state = tuple(states)
        self._claim(opt, None, "tls")

    # ------------------------------------------------------------ whole rule

    def _validate(self) -> None:
        for e in self.elements:
            if not isinstance(e, ContentMatch):
                continue
            if e.fast_pattern_only and (
                e.negated or e.offset is not None or e.depth is not None or e.relative
            ):
                raise _Error(
                    e.column - 1,
                    "fast_pattern:only can't be used on a negated content or one with "
                    "offset/depth/distance/within",
                )
            if e.buffer == "http.host" and not e.nocase and e.pattern.lower() != e.pattern:
                raise _Error(
                    e.column - 1,
                    "http.host content has upper case letters but the host buffer is lower "
                    "case: write it in lower case or add nocase",
                )


def _escaped_at(text: str, index: int, start: int) -> bool:
    """Whether text[index] is preceded by an odd number of backslashes."""
    count = 0
    k = index - 1
    while k >= start and text[k] == "\\":
        count += 1
        k -= 1
    return count % 2 == 1


_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(text: str) -> str:
    """Undecodable bytes (surrogate escapes) as U+FFFD, for logs and JSON."""
    # called for every msg/reference/metadata item: the ASCII case stays cheap
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


# ======================================================================= PCRE


class PcreUnsupported(ValueError):
    """A PCRE construct Python's ``re`` can't express."""


_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": "\\t\\n\\x0b\\x0c\\r ",
    "blank": " \\t",
    "punct": "!-/:-@\\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "word": "\\w",
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
    "ascii": "\\x00-\\x7f",
}
_VSPACE = "\\n\\x0b\\x0c\\r\\x85"
_HSPACE = "\\t \\xa0"
_FLAG_GROUP = re.compile(r"\(\?([A-Za-z]*)(?:-([A-Za-z]*))?([):])")
_QUANT = re.compile(r"\{\d+(?:,\d*)?\}")
_SIMPLE_ESCAPES = frozenset("dDwWsSbBAnrtfa")


def translate_pcre(source: str, flags: str = "") -> tuple[str, int]:
    """PCRE pattern + Suricata flags -> (Python pattern, re flags).

    Raises ``PcreUnsupported`` for constructs with no Python form. The result
    may still fail ``re.compile`` (``compile_pcre`` turns that into
    ``PcreUnsupported`` too).
    """
    t = _PcreTranslator(source, flags)
    pattern = t.run()
    py_flags = 0
    if "i" in flags:
        py_flags |= re.IGNORECASE
    if "s" in flags:
        py_flags |= re.DOTALL
    if "m" in flags:
        py_flags |= re.MULTILINE
    if "x" in flags:
        py_flags |= re.VERBOSE
    if "A" in flags:
        pattern = "\\A(?:" + pattern + ("\n)" if "x" in flags else ")")
    return pattern, py_flags


def compile_pcre(source: str, flags: str = "") -> re.Pattern:
    """``translate_pcre`` and compile (bytes); ``PcreUnsupported`` on failure."""
    try:
        pattern, py_flags = translate_pcre(source, flags)
        data = pattern.encode("utf-8", "surrogateescape")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(data, py_flags)
    except PcreUnsupported:
        raise
    except (re.error, OverflowError, RecursionError, ValueError, UnicodeError, TypeError) as e:
        raise PcreUnsupported(str(e)) from None


class _PcreTranslator:
    def __init__(self, source: str, flags: str):
        self.s = source
        self.out: list[str] = []
        self.x_mode = "x" in flags
        self.ungreedy = "G" in flags
        self.endonly = "E" in flags and "m" not in flags
        # one frame per open group: the inline-flag scopes opened in it
        self.frames: list[list[str]] = [[]]

    def run(self) -> str:
        s = self.s
        i = 0
        n = len(s)
        out = self.out
        while i < n:
            c = s[i]
            if c == "\\":
                i = self._escape(i, in_class=False)
            elif c == "[":
                i = self._class(i)
            elif c == "(":
                i = self._open(i)
            elif c == ")":
                scopes = self.frames[-1]
                out.append(")" * len(scopes))
                if len(self.frames) > 1:
                    self.frames.pop()
                out.append(")")
                i += 1
            elif c == "|":
                scopes = self.frames[-1]
                out.append(")" * len(scopes) + "|" + "".join(f"(?{f}:" for f in scopes))
                i += 1
            elif c in "*+?":
                out.append(c)
                i = self._lazy_suffix(i + 1)
            elif c == "{" and _QUANT.match(s, i):
                m = _QUANT.match(s, i)
                out.append(m.group())
                i = self._lazy_suffix(m.end())
            elif c == "$" and self.endonly:
                out.append("\\Z")
                i += 1
            elif c == "#" and self.x_mode:
                end = s.find("\n", i)
                end = n if end < 0 else end
                out.append(s[i:end])
                i = end
            else:
                out.append(c)
                i += 1
        out.append(")" * len(self.frames[0]))
        return "".join(out)

    def _lazy_suffix(self, i: int) -> int:
        """After a quantifier: flip greediness under G, keep +/? suffixes."""
        s = self.s
        nxt = s[i] if i < len(s) else ""
        if nxt == "+":
            self.out.append("+")
            return i + 1
        if self.ungreedy:
            if nxt == "?":
                return i + 1  # lazy under G -> greedy
            self.out.append("?")
            return i
        if nxt == "?":
            self.out.append("?")
            return i + 1
        return i

    def _open(self, i: int) -> int:
        s = self.s
        out = self.out
        if s.startswith("(*", i):
            raise PcreUnsupported(f"backtracking verb or option {s[i:i + 12]!r}")
        if not s.startswith("(?", i):
            out.append("(")
            self.frames.append([])
            return i + 1
        if s.startswith("(?#", i):
            end = s.find(")", i)
            if end < 0:
                raise PcreUnsupported("unterminated (?# comment")
            return end + 1  # dropped
        m = _FLAG_GROUP.match(s, i)
        if m:
            on, off, kind = m.group(1), m.group(2) or "", m.group(3)
            for f in on + off:
                if f not in "imsx":
                    raise PcreUnsupported(f"inline option {f!r} in {m.group()!r}")
            if "x" in on:
                self.x_mode = True
            spec = on + ("-" + off if off else "")
            if kind == ")":
                if spec:
                    out.append(f"(?{spec}:")
                    self.frames[-1].append(spec)
            else:
                out.append(f"(?{spec}:" if spec else "(?:")
                self.frames.append([])
            return m.end()
        for prefix in ("(?:", "(?=", "(?!", "(?<=", "(?<!", "(?>"):
            if s.startswith(prefix, i):
                out.append(prefix)
                self.frames.append([])
                return i + len(prefix)
        m = re.compile(r"\(\?(?:P?<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')").match(s, i)
        if m:
            out.append(f"(?P<{m.group(1) or m.group(2)}>")
            self.frames.append([])
            return m.end()
        m = re.compile(r"\(\?P=([A-Za-z_]\w*)\)").match(s, i)
        if m:
            out.append(m.group())
            return m.end()
        m = re.compile(r"\(\?\((\d+|[A-Za-z_]\w*)\)").match(s, i)
        if m:
            out.append(m.group())
            self.frames.append([])
            return m.end()
        raise PcreUnsupported(f"group construct {s[i:i + 6]!r}")

    def _class(self, i: int) -> int:
        s = self.s
        n = len(s)
        out = self.out
        out.append("[")
        i += 1
        if i < n and s[i] == "^":
            out.append("^")
            i += 1
        if i < n and s[i] == "]":
            out.append("\\]")
            i += 1
        while i < n:
            c = s[i]
            if c == "]":
                out.append("]")
                return i + 1
            if c == "\\":
                i = self._escape(i, in_class=True)
                continue
            if c == "[":
                m = re.compile(r"\[:(\^?)([a-z]+):\]").match(s, i)
                if m:
                    if m.group(1) or m.group(2) not in _POSIX_CLASSES:
                        raise PcreUnsupported(f"POSIX class {m.group()!r}")
                    out.append(_POSIX_CLASSES[m.group(2)])
                    i = m.end()
                    continue
                out.append("\\[")
                i += 1
                continue
            if c in "&~|":
                out.append("\\" + c)
                i += 1
                continue
            out.append(c)
            i += 1
        raise PcreUnsupported("unterminated character class")

    def _escape(self, i: int, in_class: bool) -> int:
        s = self.s
        n = len(s)
        out = self.out
        if i + 1 >= n:
            raise PcreUnsupported("pattern ends with a backslash")
        c = s[i + 1]
        j = i + 2
        if c == "x":
            if j < n and s[j] == "{":
                end = s.find("}", j)
                digits = s[j + 1 : end] if end > 0 else ""
                if end < 0 or not re.fullmatch(r"[0-9A-Fa-f]{1,8}", digits):
                    raise PcreUnsupported(f"bad \\x{{...}} escape {s[i:i + 12]!r}")
                value = int(digits, 16)
                if value > 0xFF:
                    raise PcreUnsupported(f"character \\x{{{digits}}} above 0xff")
                out.append(f"\\x{value:02x}")
                return end + 1
            m = re.compile(r"[0-9A-Fa-f]{0,2}").match(s, j)
            digits = m.group()
            out.append("\\x" + digits if len(digits) == 2 else f"\\x{int(digits or '0', 16):02x}")
            return m.end()
        if c == "0":
            m = re.compile(r"[0-7]{0,2}").match(s, j)
            out.append(f"\\x{int(m.group() or '0', 8):02x}")
            return m.end()
        if c == "o":
            raise PcreUnsupported("\\o{...} escape")
        if c == "e":
            out.append("\\x1b")
            return j
        if c == "c":
            if j >= n or not 32 <= ord(s[j]) < 127:
                raise PcreUnsupported("bad \\c escape")
            out.append(f"\\x{ord(s[j].upper()) ^ 0x40:02x}")
            return j + 1
        if c == "Q":
            end = s.find("\\E", j)
            literal = s[j:] if end < 0 else s[j:end]
            out.append("".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in literal))
            return n if end < 0 else end + 2
        if c == "E":
            return j  # a stray \E is ignored by PCRE
        if c == "v":
            out.append(_VSPACE if in_class else f"[{_VSPACE}]")
            return j
        if c == "h":
            out.append(_HSPACE if in_class else f"[{_HSPACE}]")
            return j
        if in_class and c in "VHRNKXCGzZ":
            raise PcreUnsupported(f"\\{c} inside a character class")
        if c == "V":
            out.append(f"[^{_VSPACE}]")
            return j
        if c == "H":
            out.append(f"[^{_HSPACE}]")
            return j
        if c == "R":
            out.append(f"(?:\\r\\n|[{_VSPACE}])")
            return j
        if c == "N" and not s.startswith("{", j):
            out.append("[^\\n]")
            return j
        if c == "z":
            out.append("\\Z")
            return j
        if c == "Z":
            out.append("(?=\\n?\\Z)")
            return j
        if c == "k":
            m = re.compile(r"<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|\{([A-Za-z_]\w*)\}").match(s, j)
            if not m:
                raise PcreUnsupported("bad \\k escape")
            out.append(f"(?P={m.group(1) or m.group(2) or m.group(3)})")
            return m.end()
        if c == "g":
            m = re.compile(r"\{(\d+)\}|(\d+)").match(s, j)
            if not m:
                raise PcreUnsupported(f"\\g escape {s[i:i + 8]!r}")
            out.append(f"(?:\\{m.group(1) or m.group(2)})")
            return m.end()
        if c in "KXCGpPu" or c == "N":
            raise PcreUnsupported(f"\\{c} escape")
        if c in "0123456789":  # not isdigit(): that is true of '²' too
            if in_class:
                m = re.compile(r"[0-7]{1,3}").match(s, i + 1)
                if not m:
                    raise PcreUnsupported(f"\\{c} inside a character class")
                out.append(f"\\x{int(m.group(), 8) & 0xFF:02x}")
                return m.end()
            m = re.compile(r"[0-9]+").match(s, i + 1)
            out.append(f"(?:\\{m.group()})")  # a back reference, fenced from digits after it
            return m.end()
        out.append("\\" + c)
        return j
