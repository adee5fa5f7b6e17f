"""Sans-I/O application-layer protocol detection and parsers.

The Suricata rule engine (``pakemon.detect.sigengine``) asks these for the
buffers of ET Open app-layer keywords; nothing here does I/O or keeps
global state, each parser is an object per flow direction fed reassembled
bytes (or a datagram) and returning what it found.

* :mod:`.detect` -- ``probe()`` / ``probe_dns_udp()`` / ``AppProbe``:
  protocol by content, port-agnostic like Suricata's probing parsers
  (``alert http`` applies to a flow detected as HTTP on any port).
* :mod:`.http_response` -- ``HttpResponseParser``: status line, headers,
  de-chunked and decompressed body (``file.data``, ``http.stat_code``...).
  Requests are :mod:`pakemon.detect.http`.
* :mod:`.tls` -- ``TlsParser``: ClientHello (SNI, JA3), ServerHello,
  first server certificate (``tls.cert_subject`` / issuer / serial /
  fingerprint formatted as Suricata prints them).
* :mod:`.dns` -- ``parse_dns()``, ``DnsTcpFramer``: ``dns.query`` names.
* :mod:`.smtp` -- ``SmtpParser``: the client's mails (DATA, BDAT), each
  attachment decoded (``file.data`` of ``alert smtp`` rules).
* :mod:`.ssh` -- ``SshParser``: the identification line (``ssh.proto``,
  ``ssh.software``) and the KEXINIT (``ssh.hassh``...).

Bad input never raises: parsers count what they could not use.

How the engine is meant to drive them, per TCP flow:

1. ``AppProbe(client_port, server_port).feed(chunk, to_server)`` on each
   reassembled chunk until it answers a name (or "" = none).
2. "http": the request parser (``pakemon.detect.http``) on the client's
   direction; ``HttpResponseParser.expect(req.method)`` for each request it
   returns, *before* feeding the server bytes that answer it (a response
   whose method is unknown is framed as a GET answer, which misframes an
   answer to HEAD). ``feed()`` on the server's direction returns each
   ``HttpResponse``: ``body`` -> ``file.data``/``http.response_body``,
   ``stat_code``, ``stat_msg``, ``response_line``, ``header``,
   ``raw_header``, ``server``, ``location``, ``content_type``. Call
   ``finish()`` at FIN/RST/flow end, ``gap()`` on a reassembly gap.
3. "tls": one ``TlsParser`` per direction; ``client_hello`` ->
   ``tls.sni`` / ``ja3.hash`` / ``ja3.string``, ``server_hello`` ->
   ``ja3s.hash``, ``certificate`` -> ``tls.cert_subject``,
   ``tls.cert_issuer``, ``tls.cert_serial``, ``tls.cert_fingerprint``;
   with ``records=True`` also ``key_exchange`` and each ``record`` (what
   ``ssl_state``/``ssl_version`` read).
4. "dns": ``DnsTcpFramer`` then ``parse_dns`` on each message (UDP:
   ``probe_dns_udp`` / ``parse_dns`` on the datagram); each of
   ``queries``' names is one ``dns.query`` buffer (multi-buffer).
5. "smtp": one ``SmtpParser`` on the client's direction; each ``file``
   event is one ``file.data`` buffer; ``end()`` when the session ends.
"""

from __future__ import annotations

from .detect import AppProbe, probe, probe_dns_udp
from .dns import DnsMessage, DnsTcpFramer, parse_dns
from .http_response import HttpResponse, HttpResponseParser
from .smtp import SmtpEvent, SmtpParser
from .tls import TlsEvent, TlsParser

__all__ = ["AppProbe", "probe", "probe_dns_udp", "DnsMessage", "DnsTcpFramer", "parse_dns",
           "HttpResponse", "HttpResponseParser", "SmtpEvent", "SmtpParser", "TlsEvent",
           "TlsParser"]
