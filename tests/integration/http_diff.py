"""HTTP requests an attacker shapes, against real servers: a differential fuzz.

The live-target cases settle which *bytes* a server receives. This settles
what a server makes of them: a request line, a target, where one request
ends and the next begins. Each seed is one keep-alive connection of one to
four pipelined requests sent in random pieces (every third connection over
IPv6), some of them asking for the
attack path ``/cgi-bin/phf`` disguised as an evasion tool would (percent
encoding in either case, ``%2F`` and ``%2E``, ``/./``, ``//``, ``/x/../``,
the absolute form, queries and fragments, bare LF line ends, blank lines
before a request, extra spaces, HTTP/1.0 and 0.9, methods nginx takes or
refuses), the rest benign twins; bodies by Content-Length or chunked
(extensions, upper case, leading zeros, bare LF, trailers), some carrying a
request-shaped lure, some a shell command (or its twin) that chunking may
cut anywhere; User-Agent headers naming a bad agent (or a twin) with the
name in any case, odd blanks, folded onto a second line, or after a benign
copy; Cookie headers holding a bad cookie among others, split over two
headers (which servers join), folded; requests for a bad host named in the
Host header (any case, a port,
a trailing dot or blank, folded) or in an absolute-form target, which a
server takes over the header; and the framing attacks that desynchronize a
parser from the server (Content-Length and Transfer-Encoding together, two lengths, length
headers nginx ignores or refuses, folded and malformed headers).

The servers: nginx (the default), stock Apache (``--server apache``: its
HttpProtocolOptions Strict refuses most of the tricks) and Apache as many
sites relax it (``apache-lenient``: Unsafe, LenientMethods, Allow0.9). With
Apache the phf script is a real CGI script that logs each run, and that
log is the truth; the sensor may run with Apache's personality
(``--personality apache``). With nginx the truth is its own access log: each request it processed (status 404, the
one answer its only location gives) with its normalized ``$uri``. The sensor
reads the capture of the server's interface; every request nginx processed
whose ``$uri`` names the phf script (the path, or the path with path info
after it, which a CGI server runs too) must have raised the Suricata
``http_uri`` rule (once per transaction, as Suricata counts) and the native
phf rule; and every body nginx decoded (``$request_body``: the front proxies
each request to a second server, so it reads bodies whole) with the shell
command in it must have raised the ``http_client_body`` rule, and every
request whose User-Agent as the server read it (nginx's
``$http_user_agent``; the script's ``HTTP_USER_AGENT``) names the agent the
``http_user_agent`` rule, and every request the server took for the host
(nginx's ``$host``; the script's ``SERVER_NAME``) the ``http_host`` rule,
and every request whose cookies as the server read them (``$http_cookie``,
``HTTP_COOKIE``) hold the bad one the ``http_cookie`` rule.
Alerts on anything else are counted as extra, not as failures: a
request nginx refused (400) or never read (after a refusal closed the
connection) is still an attack to Suricata, and a sensor guessing the other
way would miss the server that takes it; a lure in a body or a header that
raises the native rule (which reads the raw stream) is the rule's meaning;
and ``/cgi-bin/phf.d/...`` holds the rule's content.

The sensor can read the capture twice (``--view both --view client``):
both directions, and the clients' frames alone, what the live sensor sees
by default (XDP is ingress only, so no server answer helps name the
protocol).

What it found, now fixed and pinned by their own tests: two requests in one
segment alerted once (test_suricata_http_evasion); and a pure ACK whose
right checksum happened to equal the offload pattern made a veth-captured
client look like one computing real checksums, so its offloaded request
segments were dropped (test_tcp_state); and, in the client view, requests
with a method only Apache takes, a lower-case version or a version past
the probe's first 64 bytes named no protocol, so no http rule saw them
(test_suricata_http_evasion).

Script mode runs many seeds and prints each connection the two differ on::

    .venv/bin/python tests/integration/http_diff.py [--seeds N] [--start S] [-v]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_netns import (CLI4, CLI6, CLI_IF, SRV4, SRV6, SRV_MAC, Lab, LabError,  # noqa: E402
                        _ip)

ROOT = Path(__file__).resolve().parents[2]
ATTACK = "/cgi-bin/phf"
TWINS = ("/cgi-bin/phx", "/cgi-bin/ph", "/cgi-bin/phf.d/../phx", "/cgi/phf", "/index.html")
PORT = 80
SID = 1
BODY = "cmd=/bin/sh"  # the attack a request body carries
BODY_SID = 2
AGENT = "EvilBot"  # a User-Agent ET-style rules look for
AGENT_SID = 3
HOST = "evil.example"  # a host ET-style rules look for
HOST_SID = 4
COOKIE = "sessid=evil"  # a cookie ET-style rules look for
COOKIE_SID = 5
RULES = (f'alert http any any -> any any (msg:"phf http.uri"; content:"{ATTACK}"; http_uri; '
         f'sid:{SID}; rev:1;)\n'
         f'alert http any any -> any any (msg:"shell in body"; content:"{BODY}"; '
         f'http_client_body; sid:{BODY_SID}; rev:1;)\n'
         f'alert http any any -> any any (msg:"evil agent"; content:"{AGENT}"; '
         f'http_user_agent; sid:{AGENT_SID}; rev:1;)\n'
         f'alert http any any -> any any (msg:"evil host"; content:"{HOST}"; '
         f'http_host; sid:{HOST_SID}; rev:1;)\n'
         f'alert http any any -> any any (msg:"evil cookie"; content:"{COOKIE}"; '
         f'http_cookie; sid:{COOKIE_SID}; rev:1;)\n')
NATIVE_PHF = "CGI-phf(CVE-1999-0067)"  # rules/pakemon.rules

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format diff escape=json
        '{{"port":"$remote_port","n":"$connection_requests","status":"$status",'
        '"uri":"$uri","request":"$request","body":"$request_body",'
        '"ua":"$http_user_agent","host":"$host","cookie":"$http_cookie"}}';
    access_log {d}/access.log diff;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_timeout 10s;
    keepalive_requests 1000;
    # the front reads each body whole to proxy it, which makes it
    # $request_body (the body as nginx decoded it: chunks joined) for the log
    client_body_buffer_size 64k;
    server {{
        listen {addr}:{port};
        listen [{addr6}]:{port};
        location / {{ proxy_pass http://127.0.0.1:8081; }}
    }}
    server {{
        listen 127.0.0.1:8081;
        access_log off;
        location / {{ return 404; }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx") \
        or None


# ------------------------------------------------------------ the attacker

_UNRESERVED = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def _pct(rng, ch: str) -> str:
    h = f"{ord(ch):02X}"
    return "%" + (h if rng.random() < 0.5 else h.lower())


def disguise(rng: random.Random, path: str) -> str:
    """``path`` as a request target some server reads back as ``path``
    (or, now and then, as something else: a server's reading decides).
    Each target draws its own mix of tricks, so most stay valid to nginx
    while every combination still comes up."""
    p_pct = rng.choice([0, 0.1, 0.3, 0.7])
    p_dots = rng.choice([0, 0.2, 0.5])
    p_slashes = rng.choice([0, 0.2, 0.5])
    rare = rng.random() < 0.15  # encodings nginx refuses or reads as plain bytes
    segs = path.split("/")[1:]
    out = []
    for i, seg in enumerate(segs):
        r = rng.random()
        if r < p_dots / 2:
            out.append(rng.choice(["/.", "/%2e", "/%2E", "/./."]))
        elif r < p_dots:
            junk = "".join(rng.choice(_UNRESERVED) for _ in range(rng.randrange(1, 6)))
            out.append("/" + junk + rng.choice(["", "/x", "/."]) + "/"
                       + rng.choice(["..", "../..", "%2e%2e", ".%2E", "%2E."]))
            if out[-1].endswith("../.."):
                out[-1] = "/a" + out[-1]
        sep = "/"
        r = rng.random()
        if r < p_slashes:
            sep = "/" * rng.randrange(2, 5)
        elif rare and r < p_slashes + 0.3 and (i or out):
            sep = rng.choice(["%2f", "%2F", "/%2f", "\\"])
        body = []
        for ch in seg:
            r = rng.random()
            if r < p_pct:
                body.append(_pct(rng, ch))
            elif rare and r < p_pct + 0.15:
                body.append(rng.choice(["%25" + f"{ord(ch):02x}",  # not decoded twice
                                        "%u00" + f"{ord(ch):02x}"]))  # IIS only
            else:
                body.append(ch)
        out.append(sep + "".join(body))
    target = "".join(out)
    r = rng.random()
    if r < 0.12:
        target += "?" + rng.choice(["a=1", "q=/etc/passwd", "", "x=%2fcgi-bin", "b=/../.."])
    elif r < 0.16:
        target += "#" + rng.choice(["frag", "/x", ""])
    elif r < 0.2:
        target += ";" + rng.choice(["jsessionid=1", "x"])
    if rng.random() < 0.1:
        target = rng.choice(["http://www", "http://www:80", "HTTP://Www"]) + target
    return target


@dataclass
class Request:
    raw: bytes
    attack: bool  # its target was made from the attack path
    note: str


@dataclass
class Conn:
    seed: int
    requests: list
    pieces: list  # the connection's bytes as sent, piece by piece
    notes: list = field(default_factory=list)
    family: int = 4  # IP version

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces)


def _eol(rng, crlf_rate=0.85):
    return "\r\n" if rng.random() < crlf_rate else "\n"


def _lure(rng) -> str:
    return rng.choice([f"GET {ATTACK} HTTP/1.1\r\nHost: www\r\n\r\n",
                       f"{ATTACK}", f"POST {ATTACK}?x HTTP/1.0\r\n\r\n", "hello=world"])


def make_request(rng: random.Random, last: bool, attack: bool | None = None) -> Request:
    if attack is None:
        attack = rng.random() < 0.55
    path = ATTACK if attack else rng.choice(TWINS)
    target = disguise(rng, path)
    eol = _eol(rng, 0.9 if rng.random() < 0.8 else 0.3)
    notes = []
    # extension methods too: nginx takes any run of A-Z, "_" and "-"; Apache
    # (LenientMethods, its default) any token, and runs a CGI script for it
    method = rng.choices(["GET", "HEAD", "POST", "OPTIONS", "PUT", "FOO", "get", "G-T",
                          "G3T", "X.Y", "M~", "Get", "A!B", "1", "PROPFIND", "T'R"],
                         [40, 6, 18, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])[0]
    sp1 = " " * rng.choice([1, 1, 1, 1, 2, 3])
    sp2 = " " * rng.choice([1, 1, 1, 1, 2])
    version = rng.choices(["HTTP/1.1", "HTTP/1.0", "", "HTTP/1.1 ", "HTTP/2.0", "http/1.1"],
                          [70, 10, 3 if last else 0, 2, 1, 1])[0]
    lead = rng.choice(["", "", "", "", "\r\n", "\n", "\r\n\r\n"])
    if version == "":  # HTTP/0.9: a GET and its target, nothing after
        return Request((lead + f"GET{sp1}{target}\r\n").encode(), attack, "http/0.9")
    line = f"{method}{sp1}{target}{sp2}{version}{eol}"
    headers = []
    host = rng.choice(["www", "www:80", "x.example"])
    if rng.random() < 0.3:
        host, target, how = host_trick(rng, host, target, eol)
        notes.append(how)
    if rng.random() < 0.93:
        headers.append(f"Host: {host}")
    for _ in range(rng.randrange(0, 3)):
        headers.append(rng.choice([
            "User-Agent: Mozilla/5.0", "Accept: */*", "X-Forwarded-For: 10.0.0.9",
            f"Referer: http://www{ATTACK}", f"X-Lure: {ATTACK}", "Cookie: a=b",
        ]))
    if rng.random() < 0.35:
        agent, how = user_agent(rng, eol)
        headers.append(agent)
        notes.append(how)
    if rng.random() < 0.25:
        cookie, how = cookie_header(rng, eol)
        headers.append(cookie)
        notes.append(how)
    if version == "HTTP/1.0":
        headers.append("Connection: keep-alive")
    body = ""
    r = rng.random()
    if r < 0.12:
        headers.append(rng.choice(DESYNC).format(n=rng.randrange(20, 90)))
        notes.append("desync-header")
    elif method in ("POST", "PUT") or r < 0.2:
        r3 = rng.random()
        if r3 < 0.3:
            content = _lure(rng)
        elif r3 < 0.65:  # a shell command, or its twin, at a random place
            pad = rng.randrange(0, 60)
            cut = rng.randrange(0, pad + 1)
            cmd = BODY if rng.random() < 0.6 else rng.choice(["cmd=/bin/sx", "cmd=/bin/s"])
            content = "a" * cut + "&" + cmd + "&" + "b" * (pad - cut)
            notes.append("shell" if cmd == BODY else "shell-twin")
        else:
            content = "a=" + "b" * rng.randrange(0, 40)
        r2 = rng.random()
        if r2 < 0.55:
            cl = str(len(content.encode()))
            if rng.random() < 0.1:
                cl = "0" * rng.randrange(1, 4) + cl
                notes.append("leading-zeros-length")
            headers.append(f"Content-Length:{rng.choice([' ', '', '  '])}{cl}")
            body = content
        elif r2 < 0.85:
            headers.append(rng.choice(["Transfer-Encoding: chunked",
                                       "Transfer-Encoding: Chunked",
                                       "transfer-encoding:  chunked"]))
            body = _chunked(rng, content)
            notes.append("chunked")
        elif r2 < 0.92:
            # both: nginx refuses (400) and closes; a parser that reads
            # the length instead would take the chunk data for a request
            headers.append(f"Content-Length: {len(content)}")
            headers.append("Transfer-Encoding: chunked")
            body = _chunked(rng, content)
            notes.append("length-and-chunked")
        else:
            headers.append(f"Content-Length: {len(content)}")
            headers.append(f"Content-Length: {len(content) + rng.choice([0, 3])}")
            body = content
            notes.append("two-lengths")
    r = rng.random()
    if r < 0.04 and headers:
        headers[-1] += eol + rng.choice([" folded", "\tfolded"])
        notes.append("folded")
    elif r < 0.08:
        headers.append(rng.choice(["Bad Header: x", "NoColon", ": empty-name", "X-\x01: y"]))
        notes.append("bad-header")
    head = line + "".join(h + eol for h in headers) + eol
    raw = (lead + head).encode("latin-1") + body.encode("latin-1")
    note = " ".join([method, repr(target), version or "0.9"] + notes)
    return Request(raw, attack, note)


def host_trick(rng, host: str, target: str, eol: str) -> tuple[str, str, str]:
    """(Host header value, request target, note): the request made for HOST
    (or a twin) in the Host header written oddly, or in an absolute-form
    target, which a server takes over the Host header."""
    name = rng.choice([HOST, HOST.upper(), "Evil.Example", HOST + ".", "evil.exampl", "evil-example"])
    r = rng.random()
    if r < 0.35 and target.startswith("/"):
        return host, f"http://{name}{rng.choice(['', ':80'])}{target}", "host-absolute"
    if r < 0.45 and target.startswith("/"):  # the header names it, the target another
        return name, f"http://www{target}", "host-header-overridden"
    if r < 0.6:
        return f"{name}:{rng.choice(['80', '8080', ''])}", target, "host-port"
    if r < 0.7:
        return name + rng.choice([" ", "\t"]), target, "host-trailing-blank"
    if r < 0.78:  # folded onto the next line
        return f"{eol} {name}", target, "host-folded"
    return name, target, "host"


def cookie_header(rng, eol: str) -> tuple[str, str]:
    """A Cookie header carrying COOKIE (or a twin): alone or among others,
    the name in any case, split over two Cookie headers (which servers
    join), folded, odd blanks."""
    value = rng.choice([COOKIE, "sessid=evi", "sessid=good", "xsessid=evil"])
    name = rng.choice(["Cookie", "cookie", "COOKIE", "cOoKiE"])
    r = rng.random()
    if r < 0.2:
        return f"{name}: a=1; {value}; b=2", "cookie-among"
    if r < 0.4:
        return f"Cookie: a=1{eol}{name}: {value}", "cookie-twice"
    if r < 0.55:
        fold = rng.choice([" ", "\t"])
        return f"{name}: a=1;{eol}{fold}{value}", "cookie-folded"
    if r < 0.7:
        return f"{name}:{value}", "cookie-no-blank"
    return f"{name}: {value}", "cookie"


def user_agent(rng, eol: str) -> tuple[str, str]:
    """A User-Agent header line carrying AGENT (or a twin) the ways a
    malware author might write it: the name in any case, odd blanks, folded
    onto a second line, after a benign copy of the header."""
    value = rng.choice([f"{AGENT}/1.0", f"Mozilla/5.0 ({AGENT})", "EvilBoat/1.0", "Evil Bot"])
    name = rng.choice(["User-Agent", "user-agent", "USER-AGENT", "User-agent", "uSeR-aGeNt"])
    r = rng.random()
    if r < 0.15:
        return f"{name}:{value}", "agent-no-blank"
    if r < 0.3:
        lead = rng.choice([" \t", "\t", "   "])
        trail = rng.choice(["", " ", "\t"])
        return f"{name}:{lead}{value}{trail}", "agent-blanks"
    if r < 0.45:  # obs-fold: the value goes on on the next line
        fold = rng.choice([" ", "\t"])
        return f"{name}: Mozilla/5.0{eol}{fold}{value}", "agent-folded"
    if r < 0.6:  # twice: which one a server takes is its own choice
        return f"User-Agent: Mozilla/5.0{eol}{name}: {value}", "agent-twice"
    if r < 0.65:
        return f"{name} : {value}", "agent-blank-before-colon"
    return f"{name}: {value}", "agent"


def _chunked(rng, content: str) -> str:
    out = []
    data = content
    eol = "\n" if rng.random() < 0.1 else "\r\n"  # bare LF chunk lines
    while data:
        k = rng.randrange(1, len(data) + 1)
        size = f"{k:x}"
        if rng.random() < 0.3:
            size = size.upper()
        if rng.random() < 0.15:
            size = "0" * rng.randrange(1, 3) + size
        ext = rng.choice(["", "", "", ";ext=1", ";x", " ", "\t;x"])
        out.append(f"{size}{ext}{eol}{data[:k]}{eol}")
        data = data[k:]
    out.append("0" + eol)
    if rng.random() < 0.2:  # a trailer section, which a server skips
        out.append(f"X-Trailer: {_lure(rng).splitlines()[0]}{eol}")
    out.append(eol)
    return "".join(out)


# Length headers a server ignores or refuses, each sent with no body: a
# parser that took one for a length would swallow the next request (an
# attack, more often than not) as this one's body.
DESYNC = ("Content_Length: {n}", "Content-Length : {n}", "Transfer_Encoding: chunked",
          "Content-Length: {n}, {n}", "Content-Length: +{n}", "Content-Length: -{n}",
          "Content-Length: 0x{n}", "Transfer-Encoding: identity", "Transfer-Encoding: xchunked",
          "Transfer-Encoding: chunked, identity", "X-Content-Length: {n}",
          "Content-Length:{n}\x0b", "Content-Length: {n}\x00")


def make_conn(seed: int) -> Conn:
    rng = random.Random(seed)
    n = rng.randrange(1, 5)
    reqs = []
    for i in range(n):
        # after a desynchronizing header, an attack is what would be hidden
        after = bool(reqs) and "desync-header" in reqs[-1].note
        reqs.append(make_request(rng, i == n - 1, attack=True if after else None))
    data = b"".join(r.raw for r in reqs)
    # random pieces: one send each (TCP_NODELAY), so segment boundaries
    # fall inside request lines, headers and chunk sizes
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(0, 6))))
    pieces, prev = [], 0
    for c in cuts + [len(data)]:
        pieces.append(data[prev:c])
        prev = c
    # every third over IPv6 (decided by the seed alone, so the rest of a
    # connection stays what it was)
    return Conn(seed, reqs, pieces, family=6 if seed % 3 == 0 else 4)


# ------------------------------------------------------------ the target


class Served(NamedTuple):
    """One request as the server's access log tells it."""

    status: int
    processed: bool  # the server took it as a request (not refused as malformed)
    ran: bool  # it ran the phf script
    uri: str  # the server's normalized path
    request: str  # the request line, as logged
    body: str | None  # the body as decoded (None: the server does not log it)
    ua: str | None = None  # the User-Agent as the server read it (None: not known)
    host: str | None = None  # the host the server took the request for (None: not known)
    cookie: str | None = None  # the Cookie header(s) as the server read them (None: not known)


class ServerLab:
    """The live lab's namespaces with a real client address and a real HTTP
    server listening in the server namespace; the server interface captured.
    A subclass starts its server (``_start``) and reads its log (``truth``)."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lab = Lab("http")
        self.proc = None
        self.cap = None
        self._port = 10000  # the last client port used

    def __enter__(self):
        self.lab.up()
        try:
            # real client addresses, IPv6 too (the lab keeps the client's off)
            cli = self.lab.cli
            _ip("-n", cli, "addr", "add", f"{CLI4}/24", "dev", CLI_IF)
            self.lab.sysctl(cli, f"net.ipv6.conf.{CLI_IF}.disable_ipv6=0")
            _ip("-n", cli, "addr", "add", f"{CLI6}/64", "dev", CLI_IF, "nodad")
            _ip("-n", cli, "-6", "neigh", "replace", SRV6, "lladdr", SRV_MAC, "dev", CLI_IF,
                "nud", "permanent")
            self.cap = self.lab.capture()
            self.proc = self._start()
            deadline = time.monotonic() + 10
            while True:
                try:
                    s = self._connect()
                    s.close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise LabError(f"{self.name} did not start: "
                                       + (self.dir / "stderr").read_text()[-500:])
                    time.sleep(0.05)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _popen(self, argv) -> subprocess.Popen:
        with open(self.dir / "stderr", "wb") as err:
            return subprocess.Popen(["ip", "netns", "exec", self.lab.srv, *argv],
                                    stdout=subprocess.DEVNULL, stderr=err)

    def _start(self) -> subprocess.Popen:
        raise NotImplementedError

    def truth(self) -> dict:
        """client port -> [Served], in the order the server logged them."""
        raise NotImplementedError

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.cap is not None:
            self.cap.close()
            self.cap = None
        self.lab.down()

    def _connect(self, family: int = 4) -> socket.socket:
        af, cli, srv = ((socket.AF_INET6, CLI6, SRV6) if family == 6
                        else (socket.AF_INET, CLI4, SRV4))
        s = self.lab.socket(self.lab.cli, af, socket.SOCK_STREAM)
        try:
            s.settimeout(2)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A port of its own per connection: the kernel reuses an ephemeral
            # port at once when the server closed first (the server holds the
            # TIME_WAIT), and two connections on one port would merge their
            # log lines and alerts.
            while True:
                self._port += 1
                try:
                    s.bind((cli, self._port))
                    break
                except OSError:
                    if self._port > 65000:
                        raise
            s.connect((srv, PORT))
        except BaseException:
            s.close()
            raise
        return s

    def run(self, conn: Conn) -> int:
        """Send one connection's pieces; its client port."""
        s = self._connect(conn.family)
        try:
            port = s.getsockname()[1]
            for p in conn.pieces:
                try:
                    s.sendall(p)
                except OSError:
                    break  # the server closed (a refused request): the rest is never read
                time.sleep(0.002)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    if not s.recv(65536):
                        break
                except (socket.timeout, OSError):
                    break
        finally:
            s.close()
        self.cap.drain(0)
        return port


class NginxLab(ServerLab):
    """nginx, whose only location proxies to a second server answering 404:
    a request it processed is logged 404 with its ``$uri`` (normalized) and
    ``$request_body`` (read whole to be proxied, chunks joined)."""

    name = "nginx"
    stop_signal = signal.SIGQUIT

    def _start(self) -> subprocess.Popen:
        nginx = nginx_binary()
        if nginx is None:
            raise LabError("nginx is not installed (make setup installs nginx-light)")
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(d=self.dir, addr=SRV4, addr6=SRV6, port=PORT))
        return self._popen([nginx, "-p", str(self.dir), "-c", str(conf)])

    def truth(self) -> dict:
        time.sleep(0.1)
        out: dict = {}
        log = self.dir / "access.log"
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                e = json.loads(line)
                status = int(e["status"])
                out.setdefault(int(e["port"]), []).append(Served(
                    status, status == 404, status == 404 and _runs_phf(e["uri"]), e["uri"],
                    e["request"], e["body"], e["ua"], e["host"], e["cookie"]))
        return out


APACHE_CONF = """\
ServerRoot /usr/lib/apache2
ServerName www
LoadModule mpm_prefork_module modules/mod_mpm_prefork.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule alias_module modules/mod_alias.so
LoadModule cgi_module modules/mod_cgi.so
Listen {addr}:{port}
Listen [{addr6}]:{port}
PidFile {d}/apache.pid
Mutex file:{d} default
DefaultRuntimeDir {d}
ErrorLog {d}/error.log
LogLevel info
User nobody
Group nogroup
KeepAlive On
MaxKeepAliveRequests 1000
KeepAliveTimeout 10
Timeout 5
LogFormat "%{{remote}}p\t%>s\t%U\t%r" diff
CustomLog {d}/access.log diff
DocumentRoot {www}/htdocs
<Directory />
    Require all granted
</Directory>
ScriptAlias /cgi-bin/ {www}/cgi-bin/
"""


class ApacheLab(ServerLab):
    """Apache httpd (stock Debian build, prefork, in the foreground as one
    process) with a real phf CGI script, which logs each run: the truth is
    what ran, not what the access log's status suggests."""

    name = "apache"
    extra_conf = ""

    def _start(self) -> subprocess.Popen:
        apache = apache_binary()
        if apache is None:
            raise LabError("apache2 is not installed (make setup installs apache2-bin)")
        # the script runs as nobody: a world-readable tree of its own
        self.www = Path(tempfile.mkdtemp(prefix="pk-http-diff-www-"))
        os.chmod(self.www, 0o755)
        (self.www / "htdocs").mkdir()
        (self.www / "cgi-bin").mkdir()
        phf = self.www / "cgi-bin" / "phf"
        # the script itself says it ran (an OPTIONS request is a 200 too)
        ran = self.www / "ran.log"
        ran.write_text("")
        # (and the User-Agent it was given, as the script's environment has it)
        phf.write_text(f"#!/bin/sh\nprintf '%s\\t%s\\t%s\\t%s\\n' \"$REMOTE_PORT\" "
                       f"\"$(printf %s \"$HTTP_USER_AGENT\" | tr -d '\\t\\n')\" "
                       f"\"$(printf %s \"$SERVER_NAME\" | tr -d '\\t\\n')\" "
                       f"\"$(printf %s \"$HTTP_COOKIE\" | tr -d '\\t\\n')\" >> {ran}\n"
                       "printf 'Content-Type: text/plain\\r\\n\\r\\nran\\n'\n")
        for p in (self.www / "htdocs", self.www / "cgi-bin", phf):
            os.chmod(p, 0o755)
        os.chmod(ran, 0o666)
        conf = self.dir / "apache.conf"
        conf.write_text(APACHE_CONF.format(d=self.dir, www=self.www, addr=SRV4, addr6=SRV6,
                                           port=PORT)
                        + self.extra_conf)
        return self._popen([apache, "-X", "-f", str(conf)])

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        www = getattr(self, "www", None)
        if www is not None:
            shutil.rmtree(www, ignore_errors=True)

    def truth(self) -> dict:
        time.sleep(0.1)
        runs: dict = {}  # port -> (User-Agent, host, cookie) of its runs, in order
        for line in (self.www / "ran.log").read_text(errors="replace").splitlines():
            port, ua, host, cookie = (line.split("\t") + ["", "", ""])[:4]
            runs.setdefault(int(port), []).append((ua, host, cookie))
        out: dict = {}
        log = self.dir / "access.log"
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                port, status, uri, request = (line.split("\t", 3) + ["", "", ""])[:4]
                status = int(status) if status.isdigit() else 0
                port = int(port)
                # the script's runs go to this connection's 200s, in order
                ran = status == 200 and bool(runs.get(port))
                ua, host, cookie = runs[port].pop(0) if ran else (None, None, None)
                out.setdefault(port, []).append(Served(
                    status, status in (200, 403, 404, 405), ran, uri, request, None, ua, host,
                    cookie))
        return out


class LenientApacheLab(ApacheLab):
    """Apache as many sites relax it: request lines and headers parsed the
    old, lenient way (multiple spaces, bare LF, HTTP/0.9, any method)."""

    name = "apache-lenient"
    extra_conf = "HttpProtocolOptions Unsafe LenientMethods Allow0.9\n"


SERVERS = {"nginx": NginxLab, "apache": ApacheLab, "apache-lenient": LenientApacheLab}


def apache_binary() -> str | None:
    return shutil.which("apache2") or (os.path.exists("/usr/sbin/apache2")
                                       and "/usr/sbin/apache2") or None


# ------------------------------------------------------------ the sensor


def sensor_alerts(pcap: Path, workdir: Path, personality: str | None = None,
                  client_only: bool = False) -> dict:
    """client port -> [(signature id, signature)], by `pakemon-xdp read` with the phf
    http_uri rule and the bundled rules (``personality``: --http-personality;
    ``client_only``: the clients' frames alone, what the live sensor sees by
    default, XDP being ingress only)."""
    from pakemon.cli import main

    rules = workdir / "diff.rules"
    rules.write_text(RULES)
    logs = workdir / f"logs-{personality or 'default'}{'-client' if client_only else ''}"
    extra = ["--http-personality", personality] if personality else []
    if client_only:
        extra += ["--bpf", f"tcp dst port {PORT}"]
    code = main(["read", "-q", "--rules", str(ROOT / "rules" / "pakemon.rules"),
                 "--rules", str(rules), "--log-dir", str(logs), *extra, str(pcap)])
    if code != 0:
        raise RuntimeError(f"pakemon-xdp read exited {code}")
    out: dict = {}
    for line in (logs / "eve.json").read_text().splitlines():
        e = json.loads(line)
        if e.get("event_type") != "alert" or e.get("dest_port") != PORT:
            continue
        a = e["alert"]
        out.setdefault(e["src_port"], []).append((a["signature_id"], a["signature"]))
    return out


@dataclass
class Verdict:
    conns: int = 0
    processed: int = 0  # requests nginx processed
    attacks: int = 0  # of those, with the attack path in $uri
    misses: list = field(default_factory=list)  # (seed, want, got, conn, logged)
    bodies: int = 0  # requests nginx processed with the shell command in the body
    agents: int = 0  # requests the server read AGENT in the User-Agent of
    agent_misses: list = field(default_factory=list)  # (seed, want, got, conn, logged)
    hosts: int = 0  # requests the server took for HOST
    host_misses: list = field(default_factory=list)  # (seed, want, got, conn, logged)
    cookies: int = 0  # requests the server read COOKIE in the cookies of
    cookie_misses: list = field(default_factory=list)  # (seed, want, got, conn, logged)
    body_misses: list = field(default_factory=list)  # (seed, want, got, conn, logged)
    native_misses: list = field(default_factory=list)
    extra: int = 0  # alerts beyond nginx's attacks (refused or lure requests)
    extras: list = field(default_factory=list)  # (seed, want, got, conn, logged)


def _runs_phf(uri: str) -> bool:
    """Whether nginx's normalized path names the phf script (itself, or it
    with extra path info, which a CGI server runs too)."""
    return uri == ATTACK or uri.startswith(ATTACK + "/")


def run_seeds(seeds, workdir: Path, server: str = "nginx",
              personality: str | None = None, views=("both",)) -> dict:
    """Each seed's connection to ``server`` (nginx or apache), then the sensor
    (``personality``: its --http-personality) over the capture, once per
    view: "both" directions, or the "client" side alone. {view: Verdict}"""
    workdir = Path(workdir)
    conns = [make_conn(s) for s in seeds]
    with SERVERS[server](workdir / server) as sl:
        ports = [sl.run(c) for c in conns]
        truth = sl.truth()
        pcap = workdir / "http_diff.pcap"
        sl.cap.write_pcap(pcap)
    return {view: judge(conns, ports, truth,
                        sensor_alerts(pcap, workdir, personality, view == "client"))
            for view in views}


# What the server read that a buffer rule must have seen: (Verdict count,
# Verdict misses, the server's reading of one request, rule sid, rule msg)
_BUFFER_CHECKS = (
    ("bodies", "body_misses", lambda t: t.body is not None and BODY in t.body,
     BODY_SID, "shell in body"),
    ("agents", "agent_misses", lambda t: t.ua is not None and AGENT in t.ua,
     AGENT_SID, "evil agent"),
    ("hosts", "host_misses", lambda t: t.host is not None and t.host.lower().rstrip(".") == HOST,
     HOST_SID, "evil host"),
    ("cookies", "cookie_misses", lambda t: t.cookie is not None and COOKIE in t.cookie,
     COOKIE_SID, "evil cookie"),
)


def judge(conns, ports, truth: dict, alerts: dict) -> Verdict:
    v = Verdict(conns=len(conns))
    for c, port in zip(conns, ports):
        logged = truth.get(port, [])
        done = [t for t in logged if t.processed]
        want = sum(t.ran for t in done)
        got_list = alerts.get(port, [])
        for count, misses, read, rule_sid, msg in _BUFFER_CHECKS:
            want_n = sum(read(t) for t in done)
            got_n = sum(1 for sid, sig in got_list if sid == rule_sid and sig == msg)
            setattr(v, count, getattr(v, count) + want_n)
            if got_n < want_n:
                getattr(v, misses).append((c.seed, want_n, got_n, c, logged))
        got = sum(1 for sid, sig in got_list if sid == SID and sig == "phf http.uri")
        v.processed += len(done)
        v.attacks += want
        if got < want:
            v.misses.append((c.seed, want, got, c, logged))
        elif got > want:
            v.extra += got - want
            v.extras.append((c.seed, want, got, c, logged))
        if want and not any(sig == NATIVE_PHF for _, sig in got_list):
            v.native_misses.append((c.seed, want, c, logged))
    return v


def describe(c: Conn, logged) -> str:
    lines = [f"seed {c.seed}: {len(c.pieces)} pieces, IPv{c.family}"]
    for r in c.requests:
        lines.append(f"  {'ATTACK' if r.attack else 'benign'} {r.note}: {r.raw!r}")
    for t in logged:
        lines.append(f"  server: {tuple(t)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--start", type=int, default=1)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--server", choices=sorted(SERVERS), default="nginx")
    ap.add_argument("--personality", choices=["generic", "apache", "iis"],
                    help="the sensor's --http-personality (default: its own default)")
    ap.add_argument("--view", choices=["both", "client"], action="append",
                    help="what the sensor reads: both directions (default) or the "
                    "clients' frames alone, as the ingress-only live sensor; repeatable")
    ap.add_argument("--keep", help="directory for the capture and logs (default: a temporary one)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(a.keep or tmp)
        wd.mkdir(parents=True, exist_ok=True)
        verdicts = run_seeds(range(a.start, a.start + a.seeds), wd, a.server, a.personality,
                             tuple(a.view or ("both",)))
    bad = 0
    for view, v in verdicts.items():
        print(f"[{view}] {v.conns} connections, {v.processed} requests {a.server} processed, "
              f"{v.attacks} of them ran {ATTACK}; missed by the http_uri rule: "
              f"{len(v.misses)} connections; by the native rule: {len(v.native_misses)}; "
              f"extra alerts: {v.extra}; {v.bodies} bodies with {BODY}, missed by the "
              f"http_client_body rule: {len(v.body_misses)} connections; {v.agents} with "
              f"{AGENT} in the User-Agent, missed by the http_user_agent rule: "
              f"{len(v.agent_misses)} connections; {v.hosts} for host {HOST}, missed by the "
              f"http_host rule: {len(v.host_misses)} connections; {v.cookies} with {COOKIE}, "
              f"missed by the http_cookie rule: {len(v.cookie_misses)} connections")
        for seed, want, c, logged in v.native_misses:
            print(f"NATIVE MISS [{view}]\n{describe(c, logged)}")
        for label, found in (("MISS", v.misses), ("BODY MISS", v.body_misses),
                             ("AGENT MISS", v.agent_misses), ("HOST MISS", v.host_misses),
                             ("COOKIE MISS", v.cookie_misses),
                             ("EXTRA", v.extras if a.verbose else ())):
            for seed, want, got, c, logged in found:
                print(f"{label} [{view}] want {want} got {got}\n{describe(c, logged)}")
        bad += bool(v.misses or v.native_misses or v.body_misses or v.agent_misses
                    or v.host_misses or v.cookie_misses)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
