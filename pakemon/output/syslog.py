"""Syslog output: the paper's response unit "sends a signal to syslog" (3.6).

``SyslogSink(target)`` sends one syslog message per alert and per notice::

    sink = SyslogSink("udp:[::1]:514", rfc="5424", facility="local0")
    sink.write_many(events)
    sink.close()

Targets (``parse_target``):

``unix:PATH``        a local socket such as ``unix:/dev/log``; datagram, or
                     stream when the socket is SOCK_STREAM (each message is
                     then ended by a NUL, as glibc's syslog() does)
``udp:HOST:PORT``    one datagram per message
``tcp:HOST:PORT``    RFC 6587 framing: octet counting (``LEN SP MSG``) for
                     RFC 5424, a trailing newline for RFC 3164
IPv6 hosts go in brackets: ``udp:[::1]:514``.

Formats:

RFC 5424 (default)::

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG
    <155>1 2001-01-11T19:40:51.123456+09:00 ids pakemon-xdp 4711 alert
      [pakemon@32473 sid="1000042" rev="1" proto="TCP" src="194.168.10.12"
      sport="1032" dst="192.168.10.5" dport="80"]
      CGI-phf(CVE-1999-0067) TCP 194.168.10.12(1032)->192.168.10.5(80)

  TIMESTAMP is the packet's capture time (RFC 3339, local time, microseconds
  and numeric offset; the whole second floored like alert.log). MSGID is
  ``alert`` or the notice kind (``STREAM_QUEUE_OVERFLOW``...). The SD-ID
  ``pakemon@32473`` uses 32473, the *example* Private Enterprise Number of
  RFC 5612: this project has no PEN of its own. ICMP alerts carry ``itype``
  and ``icode`` instead of ports. MSG is the alert log's two lines joined
  (rule title, then the flow without the time); for a notice, its message.
  MSG is sent without a BOM (RFC 5424 MSG-ANY).

RFC 3164 (BSD)::

    <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG

  with the capture time in local time, English month names, the day padded
  with a space, no year and no fraction (the format has none).

Severity: alerts default to ``err`` (3), as Suricata's alert-syslog output
(``DEFAULT_ALERT_SYSLOG_LEVEL LOG_ERR``, facility local0); Snort's
alert_syslog uses LOG_AUTH/LOG_ALERT. Notices go at ``notice`` (5). Both can
be changed (``alert_severity``, ``notice_severity``).

Control characters in header values and MSG are written as ``\\xNN`` so a
message never spans lines.

Errors: ``write()`` never raises on a send error. A message that could not be
sent is counted in ``dropped``, each failed send or connect in ``errors``;
``sent`` counts messages handed to the kernel. After a failure the sink
reconnects (tcp, unix: a receiver restart makes a new socket) at most once a
second; messages meanwhile are dropped and counted. Before each message on a
stream socket the sink checks whether the receiver closed the connection, so
a stopped receiver does not swallow the next message. UDP cannot tell: a
datagram sent while nobody listens is lost (a later send learns about it from
the ICMP error, counts it and retries that later message once).

Wiring the target in a unix socket of rsyslog: imuxsock parses glibc's
format only unless ``UseSpecialParser="off"`` is set on the input, and
replaces the message's time by its own unless ``IgnoreTimestamp="off"``
(``UseSysTimeStamp="off"``) is set; set them for RFC 5424 over a unix socket.
"""

from __future__ import annotations

import errno
import math
import os
import re
import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pakemon.events import Alert, Notice

__all__ = [
    "FACILITIES",
    "SEVERITIES",
    "SD_ID",
    "SyslogSink",
    "SyslogTarget",
    "format_3164",
    "format_5424",
    "parse_target",
]

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
    "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}
SEVERITIES = {
    "emerg": 0, "alert": 1, "crit": 2, "err": 3,
    "warning": 4, "notice": 5, "info": 6, "debug": 7,
}

PEN = 32473  # RFC 5612 example enterprise number: no PEN registered for us
SD_ID = f"pakemon@{PEN}"

ALERT_SEVERITY = SEVERITIES["err"]  # Suricata alert-syslog's default level
NOTICE_SEVERITY = SEVERITIES["notice"]

RECONNECT_INTERVAL = 1.0  # seconds between connection attempts
SEND_TIMEOUT = 2.0  # seconds a stream send may block before it counts as failed

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]*)):(?P<port>[^:]*)$")


# --- target ------------------------------------------------------------------


@dataclass(frozen=True)
class SyslogTarget:
    """A parsed target: ``kind`` "unix", "udp" or "tcp"; ``path`` for unix,
    ``host`` and ``port`` for udp/tcp."""

    kind: str
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind}:{host}:{self.port}"


def parse_target(text: str) -> SyslogTarget:
    """``unix:PATH``, ``udp:HOST:PORT`` or ``tcp:HOST:PORT`` (IPv6 in
    brackets). Raises ValueError saying what is wrong."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(
            f"bad syslog target {text!r}: expected unix:PATH, udp:HOST:PORT or tcp:HOST:PORT")
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    if kind == "unix":
        if not rest:
            raise ValueError(f"bad syslog target {text!r}: unix: needs a socket path")
        if "\0" in rest:
            raise ValueError(f"bad syslog target {text!r}: NUL in the socket path")
        return SyslogTarget("unix", path=rest)
    if kind not in ("udp", "tcp"):
        raise ValueError(
            f"bad syslog target {text!r}: unknown transport {kind!r} "
            "(expected unix, udp or tcp)")
    m = _HOST_PORT.match(rest)
    if not m:
        raise ValueError(
            f"bad syslog target {text!r}: expected {kind}:HOST:PORT "
            "(an IPv6 address goes in brackets: [::1])")
    if m.group("v6") is not None:
        host = m.group("v6")
        try:
            socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
        except OSError:
            raise ValueError(
                f"bad syslog target {text!r}: {host!r} is not an IPv6 address") from None
    else:
        host = m.group("host")
    if not host:
        raise ValueError(f"bad syslog target {text!r}: missing host")
    port_text = m.group("port")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(
            f"bad syslog target {text!r}: port {port_text!r} is not a number from 1 to 65535")
    return SyslogTarget(kind, host=host, port=int(port_text))


# --- formatting ----------------------------------------------------------------


def _clean(text: str) -> str:
    return _CTRL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _header_token(text: str, limit: int) -> str:
    """A 5424 header field: printable US-ASCII, no space, at most ``limit``."""
    out = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text)[:limit]
    return out or "-"


def rfc3339(ts: float) -> str:
    """``2001-01-11T19:40:51.123456+09:00`` in local time, second floored."""
    sec = math.floor(ts)
    usec = min(round((ts - sec) * 1_000_000), 999_999)
    tm = time.localtime(sec)
    off = tm.tm_gmtoff or 0
    sign = "-" if off < 0 else "+"
    off_min = abs(off) // 60
    return (time.strftime("%Y-%m-%dT%H:%M:%S", tm)
            + f".{usec:06d}{sign}{off_min // 60:02d}:{off_min % 60:02d}")


def bsd_time(ts: float) -> str:
    """``Jan  1 19:40:51`` in local time (RFC 3164 TIMESTAMP)."""
    tm = time.localtime(math.floor(ts))
    return f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"


def _endpoint(ip: str, port: int | None) -> str:
    return ip if port is None else f"{ip}({port})"


def event_text(event: Alert | Notice) -> str:
    """MSG: ``CGI-phf(CVE-1999-0067) TCP 1.2.3.4(1032)->5.6.7.8(80)``, or
    the notice's message."""
    if isinstance(event, Alert):
        return (f"{event.rule.signature} {event.proto} "
                f"{_endpoint(event.src_ip, event.src_port)}->"
                f"{_endpoint(event.dst_ip, event.dst_port)}")
    return event.message


def _sd_value(value) -> str:
    return _clean(str(value)).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(event: Alert | Notice) -> str:
    """``[pakemon@32473 sid="..." proto="TCP" src=... sport=... dst=... dport=...]``
    or ``-`` for a notice without addresses."""
    params: list[tuple[str, object]] = []
    if isinstance(event, Alert):
        params.append(("sid", event.rule.signature_id))
        params.append(("rev", getattr(event.rule, "rev", 1)))
    else:
        params.append(("kind", event.kind.name))
    if event.proto:
        params.append(("proto", event.proto))
    if event.src_ip:
        params.append(("src", event.src_ip))
    if event.src_port is not None:
        params.append(("sport", event.src_port))
    if event.dst_ip:
        params.append(("dst", event.dst_ip))
    if event.dst_port is not None:
        params.append(("dport", event.dst_port))
    if isinstance(event, Alert):
        if event.icmp_type is not None:
            params.append(("itype", event.icmp_type))
        if event.icmp_code is not None:
            params.append(("icode", event.icmp_code))
    body = " ".join(f'{k}="{_sd_value(v)}"' for k, v in params)
    return f"[{SD_ID} {body}]"


def _msgid(event: Alert | Notice) -> str:
    return "alert" if isinstance(event, Alert) else event.kind.name


def format_5424(event: Alert | Notice, pri: int, hostname: str, app_name: str,
                procid: int | str) -> str:
    """One RFC 5424 message (no framing)."""
    return (f"<{pri}>1 {rfc3339(event.ts)} {_header_token(hostname, 255)} "
            f"{_header_token(app_name, 48)} {_header_token(str(procid), 128)} "
            f"{_header_token(_msgid(event), 32)} {structured_data(event)} "
            f"{_clean(event_text(event))}")


def format_3164(event: Alert | Notice, pri: int, hostname: str, app_name: str,
                procid: int | str) -> str:
    """One RFC 3164 message (no framing)."""
    tag = "".join(c for c in app_name if 33 <= ord(c) <= 126 and c not in "[]:")[:32] or "pakemon"
    return (f"<{pri}>{bsd_time(event.ts)} {_header_token(hostname, 255)} "
            f"{tag}[{procid}]: {_clean(event_text(event))}")


def _code(value, table: dict, what: str, top: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= top:
            return value
    elif isinstance(value, str):
        key = value.lower()
        if key.startswith("log_"):
            key = key[4:]
        key = {"warn": "warning", "error": "err", "crit": "crit", "panic": "emerg",
               "security": "auth"}.get(key, key)
        if key in table:
            return table[key]
    raise ValueError(f"bad syslog {what} {value!r}: expected one of {', '.join(table)}")


# --- the sink ------------------------------------------------------------------


class SyslogSink:
    """Sends alerts and notices to a syslog receiver; see the module doc.

    Counters: ``sent``, ``dropped`` (messages not sent), ``errors`` (failed
    connects and sends). ``write()`` raises only TypeError for an object that
    is neither Alert nor Notice; after ``close()`` writes are dropped.
    """

    def __init__(self, target: str | SyslogTarget, rfc: str = "5424",
                 facility: str | int = "local0", app_name: str = "pakemon-xdp",
                 hostname: str | None = None, *,
                 alert_severity: str | int = ALERT_SEVERITY,
                 notice_severity: str | int = NOTICE_SEVERITY,
                 reconnect_interval: float = RECONNECT_INTERVAL,
                 send_timeout: float = SEND_TIMEOUT):
        self.target = target if isinstance(target, SyslogTarget) else parse_target(target)
        rfc = str(rfc)
        if rfc not in ("5424", "3164"):
            raise ValueError(f"bad syslog RFC {rfc!r}: expected 5424 or 3164")
        self.rfc = rfc
        self.facility = _code(facility, FACILITIES, "facility", 23)
        self.alert_severity = _code(alert_severity, SEVERITIES, "severity", 7)
        self.notice_severity = _code(notice_severity, SEVERITIES, "severity", 7)
        self.app_name = app_name
        self.hostname = hostname or socket.gethostname() or "-"
        self.procid = os.getpid()
        self.reconnect_interval = reconnect_interval
        self.send_timeout = send_timeout
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None
        self._sock: socket.socket | None = None
        self._stream = False
        self._next_connect = 0.0
        self._closed = False
        self._connect()

    # -- connection

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _fail(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._drop_socket()

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _connect(self) -> bool:
        """Try to connect (rate limited). True when a socket is ready."""
        if self._sock is not None:
            return True
        now = time.monotonic()
        if now < self._next_connect:
            return False
        self._next_connect = now + self.reconnect_interval
        t = self.target
        try:
            if t.kind == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                try:
                    sock.connect(t.path)
                    stream = False
                except OSError as e:
                    sock.close()
                    if e.errno != errno.EPROTOTYPE:
                        raise
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        sock.settimeout(self.send_timeout)
                        sock.connect(t.path)
                    except BaseException:
                        sock.close()
                        raise
                    stream = True
            elif t.kind == "udp":
                family, type_, proto, _, addr = socket.getaddrinfo(
                    t.host, t.port, type=socket.SOCK_DGRAM)[0]
                sock = socket.socket(family, type_, proto)
                try:
                    sock.connect(addr)
                except BaseException:
                    sock.close()
                    raise
                stream = False
            else:
                sock = socket.create_connection((t.host, t.port), timeout=self.send_timeout)
                stream = True
        except OSError as e:
            self._fail(e)
            return False
        if stream:
            sock.settimeout(self.send_timeout)
        self._sock, self._stream = sock, stream
        return True

    def _peer_closed(self) -> bool:
        """For a stream: has the receiver closed or reset the connection?"""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if not readable:
                return False  # nothing pending: the connection is up
            data = self._sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return False
        except OSError as e:
            self._fail(e)
            return True
        if data:
            return False  # the receiver said something; it is still there
        self._fail(ConnectionResetError(errno.ECONNRESET, "receiver closed the connection"))
        return True

    # -- messages

    def format(self, event: Alert | Notice) -> str:
        """The message for ``event`` without transport framing."""
        if isinstance(event, Alert):
            severity = self.alert_severity
        elif isinstance(event, Notice):
            severity = self.notice_severity
        else:
            raise TypeError(f"not an Alert or Notice: {event!r}")
        pri = self.facility * 8 + severity
        fmt = format_5424 if self.rfc == "5424" else format_3164
        return fmt(event, pri, self.hostname, self.app_name, self.procid)

    def _frame(self, text: str) -> bytes:
        data = text.encode("utf-8", "backslashreplace")
        if not self._stream:
            return data
        if self.target.kind == "unix":
            return data + b"\0"
        if self.rfc == "5424":
            return b"%d " % len(data) + data
        return data + b"\n"

    def _send(self, text: str) -> bool:
        for _ in range(2):
            if self._sock is not None and self._stream and self._peer_closed():
                pass  # counted; reconnect below (rate limited)
            if not self._connect():
                return False
            try:
                data = self._frame(text)
                if self._stream:
                    self._sock.sendall(data, socket.MSG_NOSIGNAL)
                else:
                    self._sock.send(data)
                return True
            except OSError as e:
                # A connected UDP socket reports an earlier datagram's ICMP
                # error on this send, which therefore did not go out: retry
                # once. Streams may have sent part of the frame: reconnect.
                retry_udp = (self.target.kind == "udp" and e.errno == errno.ECONNREFUSED)
                self._fail(e)
                if retry_udp:
                    self._next_connect = 0.0
                    continue
                return False
        return False

    def write(self, event: Alert | Notice) -> bool:
        """Send one event. True when it was sent; never raises on send errors."""
        text = self.format(event)
        if self._closed or not self._send(text):
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def write_many(self, events: Iterable[Alert | Notice]) -> int:
        """Send every event; returns how many were sent."""
        n = 0
        for event in events:
            n += self.write(event)
        return n

    def flush(self) -> None:
        """Nothing is buffered: present so the sink reads like LogSet."""

    def close(self) -> None:
        self._closed = True
        self._drop_socket()

    def __enter__(self) -> SyslogSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._sock else "disconnected")
        return (f"<SyslogSink {self.target} rfc{self.rfc} {state} sent={self.sent} "
                f"dropped={self.dropped} errors={self.errors}>")
