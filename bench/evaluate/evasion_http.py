#!/usr/bin/env python3
"""Figure 9: detection rate by HTTP evasion technique, measured live.

The paper (section 4) ran whisker's scan through nidsbench/fragrouter and
counted, per evasion technique, what Pakemon and Snort detected; its misses
were ``%``-encoding and ``/./``. This module rebuilds that experiment on the
kernel sensor:

1. **Attacks** are derived from the bundled rules (rules/pakemon.rules):
   every TCP rule on port 80 gives one request whose target carries the
   rule's literal pattern (``DERIVE``), or a hand-written request where the
   pattern is a regex, a header or several patterns (``OVERRIDES``); a few
   rules get a second, distinct request the scanners of the time also sent
   (``EXTRA``), 119 requests in all like the paper's scan. Each one is first
   checked OFFLINE sent plainly: a request that does not alert is dropped
   and reported, never silently counted.
2. **Techniques** are the HTTP evasions of whisker (``-I 1..9``) and nikto
   (``-evasion 1-8, A, B``) plus those issue 7 names (``%u``, double
   encoding, ``//``, ``/x/../``, pipelining, keep-alive), alone and combined
   with the IP fragmentation and TCP segmentation primitives of
   bench/evasion/gen.py.
3. Every (technique, attack) becomes one TCP session (handshake, request,
   server ACK and answer, close) in one pcap per technique, next to a
   **benign twin** (a harmless request sent the same way), built with
   pakemon.lab.traffic through gen.py's ``Capture``/``Flow``. Client ports are
   unique across the whole run, so an alert maps to its session by port.
4. **Live**: one ``pakemon-xdp attach`` in a LiveLab (own namespace prefix),
   each pcap replayed with tcpreplay into the client veth; alerts are read
   from the sensor's eve.json. The same pcaps go through ``pakemon-xdp
   read`` offline and the two alert sets are compared per session.

Judging a miss: a technique only evades if the target server still runs the
attack. Each attack has a target server (``apache`` for Unix CGI, ``iis``
for Windows paths); ``effective()`` normalizes the evaded request target
with that server's personality (pakemon.detect.http_normalize; IIS modelled
as the unpatched IIS 5 of CVE-2001-0333, which decodes twice) and compares
it with the plain attack's. A request the server would not execute (``%u``
or ``\\`` sent to Apache, a changed case on a case-sensitive file system) is
"not applicable": listed, not counted in the rate. The separator techniques
(tab, CR, VT) leave the target alone; the era's servers (Apache 1.3's
``ap_getword_white``, IIS 5) split the request line on any white space.

Detection of a session = at least one alert on it (any signature: an
encoded traversal that normalizes to ``/winnt/system32/cmd.exe`` is caught
by ``IIS-cmd.exe`` even when its own encoded-form signature no longer
matches); the table also counts the attack's own rule apart. A false alert
= any alert on a twin session. Every miss is explained by
``explain_miss``, which looks where each of the rule's patterns went (raw
request, normalized target, neither) and names the cause (``CAUSES``): a
signature that is itself an encoded form, one that spans the request-line
separator, a raw ``/../../`` or slash run, case, double decoding, or a
detection bug (every pattern present, no alert). So the report's "why" is
computed, not written by hand.

The sensor runs in its default configuration (generic personality, one
decoding pass): that is what users run. The same pcaps are also read
offline with ``--http-personality iis --http-double-decode`` and the IIS
targets' detection is reported beside it, since the double-encoding
technique only works against a server that decodes twice.

Outputs: ``out_dir`` gets fig9-evasion-http.png, evasion-http.json (every
row, cause and session count) and evasion-http.md; the pcaps and sensor
logs (about 70 MB) go to ``work_dir``, by default bench/out/evasion-http,
which git ignores.

Run alone: ``python -m bench.evaluate.evasion_http [--quick] [--out DIR]``
(root for the live part; without root, tcpreplay or bcc it says why and
measures offline only, marking the report as such). ``run_evasion(out_dir,
quick)`` is what ``make evaluate`` calls. A run that loses perf samples is
repeated at half the rate (a full ring is the machine's limit, not an
evasion) and the report says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.evaluate.common import (command_line, markdown_table, save_bar,  # noqa: E402
                                   stamp, stamp_line)
from pakemon.detect.http_normalize import get_personality, normalize_uri  # noqa: E402


def _load_gen():
    # bench/evasion is a script directory, not a package: load gen.py by path
    # under a private name so a stray top-level "gen" module cannot shadow it.
    name = "pakemon_bench_evasion_gen"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "evasion" / "gen.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


gen = _load_gen()
PY = sys.executable
PREFIX = "pke9"  # this bench's LiveLab namespaces: other labs use other prefixes
SERVER = gen.SERVER
CLIENT = gen.CLIENT
UA = "Mozilla/4.0 (compatible; Whisker/1.4)"

# ---------------------------------------------------------------------------
# Attacks, derived from the rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One attack request: method, target, extra header lines, body.

    ``server``: which server's reading decides whether an evasion still
    works ("apache" or "iis"). ``rule``: the rule it was derived from.
    """

    name: str
    rule: str
    target: str
    server: str = "apache"
    method: str = "GET"
    headers: tuple[str, ...] = ()
    body: bytes = b""

    @property
    def path(self) -> str:
        return re.split(r"[?#]", self.target, maxsplit=1)[0]

    @property
    def query(self) -> str:
        return self.target[len(self.path):]


# Rules whose pattern is not simply a path: the request a scanner sent.
OVERRIDES: dict[str, tuple] = {
    # rule name prefix: (target, server, extra headers, body, method)
    "HTTP-ApacheDOS": ("////////", "apache"),
    "IIS-ISM.DLL-Exploit": ("/iisstart.asp%20%20%20%20%20.htr", "iis"),
    "CGI-phf-newline": ("/cgi-bin/phf?Qalias=x%0a/bin/cat%20/etc/passwd", "apache"),
    "CGI-count.cgi-overflow": ("/cgi-bin/Count.cgi?" + "A" * 320, "apache"),
    "CGI-formmail-cmd": ("/cgi-bin/formmail.pl?recipient=x%3bmail%20evil@example.com", "apache"),
    "CGI-cgi-bin-perl": ("/cgi-bin/perl?-e+print", "apache"),
    "CGI-wrap": ("/cgi-bin/wrap?/../../../../etc", "apache"),
    "CGI-guestbook.cgi-SSI": ("/cgi-bin/guestbook.cgi?comments=%3c!--%23exec%20cmd=id--%3e",
                              "apache"),
    "CGI-carbo.dll": ("/scripts/carbo.dll?icatcommand=..\\..\\boot.ini", "iis"),
    "CGI-webplus-traversal": ("/cgi-bin/webplus?script=/../../../../etc/passwd", "apache"),
    "CGI-sojourn.cgi": ("/cgi-bin/sojourn.cgi?cat=../../../../etc/passwd%00", "apache"),
    "CGI-infosrch.cgi": ("/cgi-bin/infosrch.cgi?cmd=getdoc&fname=|id", "apache"),
    "CGI-whois_raw.cgi": ("/cgi-bin/whois_raw.cgi?fqdn=%0acat%20/etc/passwd", "apache"),
    "HTTP-etc-passwd": ("/cgi-bin/view.cgi?file=/etc/passwd", "apache"),
    "HTTP-directory-traversal": ("/docs/../../../../etc/shadow", "apache"),
    "HTTP-WebSitePro-path": ("/HTTP/1.0/", "iis"),
    "HTTP-Apache-sioux-DoS": ("/", "apache", ("User-Agent: sioux",) * 100),
    "HTTP-Apache-chunked-overflow": (
        "/index.html", "apache", ("Transfer-Encoding: chunked",),
        b"90000000\r\n" + b"A" * 16 + b"\r\n", "POST"),
    "HTTP-Cisco-IOS-level-exec": ("/level/16/exec/show/config", "apache"),
    "HTTP-Netscape-wp-cs-dump": ("/?wp-cs-dump", "apache"),
    "HTTP-Netscape-PageServices": ("/?PageServices", "apache"),
    "IIS-unicode-c0af": ("/scripts/..%c0%af../winnt/system32/cmd.exe?/c+dir", "iis"),
    "IIS-unicode-c11c": ("/scripts/..%c1%1c../winnt/system32/cmd.exe?/c+dir", "iis"),
    "IIS-unicode-c19c": ("/scripts/..%c1%9c../winnt/system32/cmd.exe?/c+dir", "iis"),
    "IIS-unicode-e080af": ("/scripts/..%e0%80%af../winnt/system32/cmd.exe?/c+dir", "iis"),
    "IIS-double-decode-255c": ("/scripts/..%255c../winnt/system32/cmd.exe?/c+dir", "iis"),
    "IIS-double-decode-252f": ("/scripts/..%252f../winnt/system32/cmd.exe?/c+dir", "iis"),
    "IIS-double-decode-pct35": ("/scripts/..%%35c../winnt/system32/cmd.exe?/c+dir", "iis"),
    "IIS-printer-overflow": ("/NULL.printer", "iis", ("Host: " + "B" * 420,)),
    "IIS-CodeRed-ida": ("/default.ida?" + "N" * 224 + "%u9090%u6858%ucbd3%u7801", "iis"),
    "IIS-CodeRedII-ida": ("/default.ida?" + "X" * 224 + "%u9090%u6858%ucbd3%u7801", "iis"),
    "IIS-CodeRed-shellcode": ("/scripts/x.ida?a=%u9090%u6858%ucbd3%u7801", "iis"),
    "IIS-ida-idq-overflow": ("/scripts/null.idq?" + "A" * 240, "iis"),
    "IIS-DATA-stream": ("/default.asp::$DATA", "iis"),
    "IIS-plus-htr-source": ("/global.asa+.htr", "iis"),
    # exactly 300: the rule has no "or more" (see the report on its regex)
    "IIS-htr-overflow": ("/" + "A" * 300 + ".htr", "iis"),
    "IIS-shtml.exe-device-DoS": ("/_vti_bin/shtml.exe/com1.htm", "iis"),
    "IIS-asp-dot-source": ("/default.asp.", "iis"),
    "IIS-asp-2e-source": ("/default%2easp", "iis"),
    "IIS-Translate-f-source": ("/global.asa\\", "iis", ("Translate: f",)),
    "IIS-webhits-htw": ("/iissamples/issamples/oop/qfullhit.htw?CiWebHitsFile=/global.asa"
                        "&CiRestriction=none&CiHiliteType=Full", "iis"),
    "IIS-fpcount.exe-overflow": ("/scripts/fpcount.exe?" + "A" * 170, "iis"),
    "IIS-htimage.exe-overflow": ("/scripts/htimage.exe/" + "A" * 220, "iis"),
    "HTTP-PiranhaPasswd.php3": ("/piranha/secure/passwd.php3", "apache"),
}

# A second request for some rules: what whisker's and nikto's databases
# also probed (another directory, another CGI of the same family).
EXTRA: tuple[tuple[str, str, str], ...] = (
    ("CGI-phf(CVE-1999-0067)", "/cgi-bin/phf?Qname=root&Qalias=x", "apache"),
    ("CGI-test-cgi(CVE-1999-0070)", "/cgi-bin/test-cgi?*", "apache"),
    ("CGI-test-cgi(CVE-1999-0070)", "/cgi-win/test-cgi", "iis"),
    ("CGI-php.cgi(CVE-1999-0238)", "/cgi-bin/php.cgi?/etc/passwd", "apache"),
    ("CGI-campas(CVE-1999-0146)", "/cgi-bin/campas?%0acat%0a/etc/passwd%0a", "apache"),
    ("CGI-htmlscript(CVE-1999-0264)", "/cgi-bin/htmlscript?../../../etc/passwd", "apache"),
    ("CGI-faxsurvey(CVE-1999-0262)", "/cgi-bin/faxsurvey?/bin/cat%20/etc/passwd", "apache"),
    ("CGI-view-source(CVE-1999-0174)", "/cgi-bin/view-source?../../../../etc/passwd",
     "apache"),
    ("CGI-AnyForm(CVE-1999-0066)", "/cgi-bin/AnyForm2", "apache"),
    ("CGI-finger(CVE-1999-0612)", "/cgi-bin/finger?@localhost", "apache"),
    ("IIS-cmd.exe", "/msadc/..%c0%af../..%c0%af../winnt/system32/cmd.exe?/c+dir", "iis"),
    ("IIS-cmd.exe", "/_vti_bin/..%255c../..%255c../winnt/system32/cmd.exe?/c+dir", "iis"),
    ("IIS-root.exe", "/MSADC/root.exe?/c+dir", "iis"),
    ("IIS-root.exe", "/c/winnt/system32/root.exe?/c+dir", "iis"),
    ("IIS-MDAC-RDS-msadcs.dll(CVE-1999-1011)",
     "/msadc/msadcs.dll/VbBusObj.VbBusObjCls.GetRecordset", "iis"),
    ("IIS-showcode.asp(CVE-1999-0736)",
     "/msadc/Samples/SELECTOR/showcode.asp?source=/../../winnt/win.ini", "iis"),
    ("IIS-global.asa", "/scripts/global.asa", "iis"),
    ("IIS-administrator.pwd", "/shop/_vti_pvt/administrators.pwd", "iis"),
    ("HTTP-htpasswd-access", "/admin/.htpasswd", "apache"),
)

WINDOWS_HINT = re.compile(
    r"(?i)\.(exe|dll|asp|asa|htr|htw|ida|idq|pwd)\b|/cgi-win/|/_vti|/scripts/")


def _derive(rule) -> tuple[str, str] | None:
    """(target, server) for a rule whose first pattern is a literal path."""
    from pakemon.detect.rules import PatternKind

    if len(rule.patterns) != 1 or rule.patterns[0].kind is PatternKind.REGEX:
        return None
    try:
        text = rule.patterns[0].value.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text.startswith("/") or any(c in text for c in " \r\n\t"):
        return None
    # A CGI name alone is asked for under /cgi-bin/, as the scanners did.
    if rule.name.startswith("CGI-") and not re.match(r"/cgi-(bin|win)/", text):
        text = "/cgi-bin" + text
    if text.endswith("?"):
        text += "x=1"
    server = "iis" if rule.name.startswith("IIS-") or WINDOWS_HINT.search(text) else "apache"
    return text, server


def http_rules(rules_path: Path | None = None) -> list:
    """The bundled rules that inspect client requests to port 80."""
    from pakemon.cli import default_rules, load_ruleset

    rs = load_ruleset(rules_path or default_rules(), False)
    # Port 80 named exactly: the wide ranges (":1023", "*") are the
    # any-service shellcode rules, not HTTP requests.
    return [r for r in rs.rules if r.proto == "tcp" and not r.dst.any
            and r.dst.ranges == ((80, 80),)]


def derive_attacks(rules_path: Path | None = None) -> tuple[list[Attack], list[str]]:
    """Attack requests from the rules; (attacks, rules no request was made for)."""
    attacks: list[Attack] = []
    skipped: list[str] = []
    names: set[str] = set()

    def add(rule_name: str, target: str, server: str, headers=(), body=b"", method="GET"):
        base = re.sub(r"\(.*\)", "", rule_name)
        name = base
        n = 2
        while name in names:
            name = f"{base}#{n}"
            n += 1
        names.add(name)
        attacks.append(Attack(name, rule_name, target, server, method, tuple(headers), body))

    for rule in http_rules(rules_path):
        spec = next((v for k, v in OVERRIDES.items() if rule.name.split("(")[0] == k), None)
        if spec is not None:
            target, server, *rest = spec
            headers = rest[0] if len(rest) > 0 else ()
            body = rest[1] if len(rest) > 1 else b""
            method = rest[2] if len(rest) > 2 else "GET"
            add(rule.name, target, server, headers, body, method)
            continue
        d = _derive(rule)
        if d is None:
            skipped.append(rule.name)
            continue
        add(rule.name, *d)
    for rule_name, target, server in EXTRA:
        add(rule_name, target, server)
    return attacks, skipped


def twin_of(a: Attack, i: int) -> Attack:
    """A harmless request of the same server and shape (query kept or not)."""
    ext = ".htm" if a.server == "iis" else ".html"
    q = "?id=%d&lang=en" % i if a.query else ""
    return Attack(f"twin-{a.name}", "", f"/docs/manual/page{i:03d}{ext}{q}", a.server)


# ---------------------------------------------------------------------------
# Techniques
# ---------------------------------------------------------------------------

# An escape the attack already carries is one token, double-encoded ones
# ("%255c", "%%35c") whole: splitting them would change what IIS decodes.
ESCAPE_OR_CHAR = re.compile(
    r"%25[0-9A-Fa-f]{2}|%%[0-9A-Fa-f]{2}[0-9A-Fa-f]?|%u[0-9A-Fa-f]{4}|%[0-9A-Fa-f]{2}|.", re.S)


def _map_path_chars(path: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to each path character that is not ``/`` nor part of an
    escape the attack already carries (re-encoding those would change what
    the server decodes: the attack itself)."""
    out = []
    for tok in ESCAPE_OR_CHAR.findall(path):
        out.append(tok if len(tok) > 1 or tok == "/" else fn(tok))
    return "".join(out)


def _segments(path: str) -> list[str]:
    return path.split("/")


@dataclass(frozen=True)
class Technique:
    """One evasion: how the request target/line is rewritten, how it is sent.

    ``rewrite(path, rng) -> path`` changes the path (the query is kept: it is
    the CGI's input, and re-encoding it would change the attack);
    ``sep`` the request-line separator; ``layout`` "single", "pipelined"
    (benign, attack, benign in one segment) or "keepalive" (benign requests
    answered before the attack on the same connection); ``build`` and
    ``xmit`` are gen.py's TCP segmentation and IP fragmentation.
    ``scope``: the servers that accept the rewrite at all (None: judged per
    request by ``effective``). ``double_decode``: judged against a server
    that decodes twice (IIS 5 before MS01-026).
    """

    name: str
    origin: str
    summary: str
    rewrite: Callable[[str, random.Random], str] | None = None
    sep: str = " "
    layout: str = "single"
    build: Callable = gen.build_plain
    xmit: Callable = gen.xmit_plain
    double_decode: bool = False
    random_case: bool = False


def rw_pct(path, rng):
    return _map_path_chars(path, lambda c: "%%%02X" % ord(c))


def rw_pct_u(path, rng):
    return _map_path_chars(path, lambda c: "%%u%04X" % ord(c))


def rw_double(path, rng):
    return _map_path_chars(path, lambda c: "%%25%02X" % ord(c))


def rw_dot(path, rng):
    return path.replace("/", "/./")


def rw_slashes(path, rng):
    return path.replace("/", "//")


def _word(rng, n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def rw_reverse(path, rng):
    segs = _segments(path)
    out = [segs[0]]
    for s in segs[1:]:
        out.append(f"{_word(rng, 6)}/..")
        out.append(s)
    return "/".join(out)


def rw_fake_param(path, rng):
    return f"/%3f{_word(rng, 1)}=/.." + path


def rw_long(path, rng):
    return f"/{_word(rng, 1024)}/.." + path


def rw_premature(path, rng):
    # whisker -I 3: the target seems to end at an encoded " HTTP/1.1\r\n";
    # two "../" take back the two fake segments.
    return f"/%20HTTP/1.1%0d%0aAccept%3a%20{_word(rng, 6)}/../.." + path


def rw_case(path, rng):
    return "".join(c.upper() if c.isalpha() and rng.random() < 0.5 else
                   (c.lower() if c.isalpha() else c) for c in path)


def rw_backslash(path, rng):
    return path[:1] + path[1:].replace("/", "\\")


def rw_combo(*fns):
    def rw(path, rng):
        for f in fns:
            path = f(path, rng)
        return path
    return rw


FRAG8 = gen.xmit_frag("in-order", 8)
FRAG8_SHUF = gen.xmit_frag("shuffled", 8)
FRAG8_REV = gen.xmit_frag("reversed", 8)
SEG1 = gen.build_segments(1)
SEG2_SHUF = gen.build_segments(2, "shuffled")


def _techniques() -> list[Technique]:
    T = Technique
    return [
        T("plain", "-", "the request as is (baseline)"),
        T("pct-encode", "whisker -I 1, nikto 1", "every path character %XX", rw_pct),
        T("pct-u-encode", "IIS %u", "every path character %u00XX (IIS syntax)", rw_pct_u),
        T("double-encode", "CVE-2001-0333", "every path character %25XX (decoded twice by "
          "unpatched IIS 5)", rw_double, double_decode=True),
        T("dot-insert", "whisker -I 2, nikto 2", "/./ for every /", rw_dot),
        T("double-slash", "issue 7", "// for every /", rw_slashes),
        T("reverse-traversal", "issue 7", "/x/../ before every segment", rw_reverse),
        T("fake-parameter", "whisker -I 5, nikto 5", "/%3fa=/../ prefix", rw_fake_param),
        T("long-prefix", "whisker -I 4, nikto 4", "/<1024 random>/../ prefix", rw_long),
        T("premature-end", "whisker -I 3, nikto 3",
          "/%20HTTP/1.1%0d%0aAccept%3a%20x/../../ prefix", rw_premature),
        T("tab-separator", "whisker -I 6, nikto 6", "TAB between method, target, version",
          sep="\t"),
        T("cr-separator", "nikto A", "CR (0x0d) between method, target, version", sep="\r"),
        T("vt-separator", "nikto B", "VT (0x0b) between method, target, version", sep="\x0b"),
        T("random-case", "whisker -I 7, nikto 7", "random upper/lower case path", rw_case,
          random_case=True),
        T("backslash", "whisker -I 8, nikto 8", "\\ for every / but the first", rw_backslash),
        T("pipelined", "issue 7", "benign, attack, benign requests in one segment",
          layout="pipelined"),
        T("keep-alive", "issue 7", "two benign requests answered, then the attack, one "
          "connection", layout="keepalive"),
        T("session-splicing", "whisker -I 9", "1-byte TCP segments", build=SEG1),
        # combinations with the network-level primitives of bench/evasion/gen.py
        T("frag8", "fragrouter -F1", "8-byte IP fragments", xmit=FRAG8),
        T("pct-encode+frag8-shuffled", "combination", "%XX, 8-byte IP fragments shuffled",
          rw_pct, xmit=FRAG8_SHUF),
        T("pct-encode+seg1", "combination", "%XX, 1-byte TCP segments", rw_pct, build=SEG1),
        T("pct-u-encode+seg2-shuffled", "combination", "%u, 2-byte TCP segments out of order",
          rw_pct_u, build=SEG2_SHUF),
        T("dot-insert+frag8-reversed", "combination", "/./, 8-byte IP fragments reversed",
          rw_dot, xmit=FRAG8_REV),
        T("fake-parameter+seg1", "combination", "/%3fa=/../, 1-byte TCP segments",
          rw_fake_param, build=SEG1),
        T("long-prefix+seg2-shuffled", "combination", "long prefix, 2-byte segments out of "
          "order", rw_long, build=SEG2_SHUF),
        T("backslash+pct-encode+frag8", "combination", "\\, %XX, 8-byte IP fragments",
          rw_combo(rw_backslash, rw_pct), xmit=FRAG8),
        T("whisker-1-2-6+seg1", "whisker -I 1 -I 2 -I 6 -I 9",
          "/./, %XX, TAB, 1-byte TCP segments", rw_combo(rw_dot, rw_pct), sep="\t", build=SEG1),
        T("pipelined+pct-encode+frag8", "combination", "pipelined, %XX, 8-byte IP fragments",
          rw_pct, layout="pipelined", xmit=FRAG8),
    ]


TECHNIQUES: dict[str, Technique] = {t.name: t for t in _techniques()}
QUICK_TECHNIQUES = ("plain", "pct-encode", "dot-insert", "backslash", "pipelined",
                    "pct-encode+seg1", "dot-insert+frag8-reversed")
QUICK_ATTACKS = ("CGI-phf", "IIS-unicode-c0af", "IIS-administrator.pwd", "CGI-test-cgi",
                 "IIS-ida-idq-overflow")

# ---------------------------------------------------------------------------
# Requests and judging
# ---------------------------------------------------------------------------


def seed_of(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def evaded_target(tech: Technique, a: Attack) -> str:
    """The request target ``tech`` sends for ``a`` (deterministic)."""
    if tech.rewrite is None:
        return a.target
    rng = random.Random(seed_of(tech.name, a.name))
    return tech.rewrite(a.path, rng) + a.query


def request_bytes(a: Attack, target: str, sep: str = " ", keep_alive: bool = False) -> bytes:
    version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
    lines = [f"{a.method}{sep}{target}{sep}{version}", f"Host: {SERVER}"]
    if not any(h.lower().startswith("user-agent:") for h in a.headers):
        lines.append(f"User-Agent: {UA}")
    if not any(h.lower().startswith("host:") for h in a.headers):
        pass
    else:
        lines = [lines[0]] + [x for x in lines[1:] if not x.startswith("Host:")]
    lines += list(a.headers)
    lines.append("Connection: Keep-Alive" if keep_alive else "Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + a.body


BENIGN = (Attack("pre-1", "", "/index.html"), Attack("pre-2", "", "/images/logo.gif"))


def session_streams(tech: Technique, a: Attack) -> list[bytes]:
    """The client's requests on one connection, in order (the answered
    keep-alive requests as separate items; everything else one item)."""
    req = request_bytes(a, evaded_target(tech, a), tech.sep,
                        keep_alive=tech.layout != "single")
    if tech.layout == "pipelined":
        pre = request_bytes(BENIGN[0], BENIGN[0].target, tech.sep, keep_alive=True)
        post = request_bytes(BENIGN[1], BENIGN[1].target, tech.sep, keep_alive=False)
        return [pre + req + post]
    if tech.layout == "keepalive":
        return [request_bytes(b, b.target, tech.sep, keep_alive=True) for b in BENIGN] + [
            request_bytes(a, evaded_target(tech, a), tech.sep, keep_alive=False)]
    return [req]


def effective(tech: Technique, a: Attack) -> tuple[bool, str]:
    """Would ``a``'s target server still run the attack sent with ``tech``?"""
    if tech.rewrite is None:
        return True, ""
    pers = get_personality(a.server)
    dd = tech.double_decode and a.server == "iis"
    want, _ = normalize_uri(a.target.encode("latin-1"), pers, double_decode=dd)
    got, _ = normalize_uri(evaded_target(tech, a).encode("latin-1"), pers, double_decode=dd)
    if got == want:
        return True, ""
    why = {"apache": "Apache", "iis": "IIS"}[a.server]
    if tech.double_decode and a.server != "iis":
        return False, f"{why} decodes once: the target stays %XX-encoded (404)"
    return False, (f"{why} reads {got[:60].decode('latin-1')!r}, not the attack's "
                   f"{want[:60].decode('latin-1')!r}")


# ---------------------------------------------------------------------------
# Captures
# ---------------------------------------------------------------------------


@dataclass
class Session:
    technique: str
    kind: str  # "attack" or "twin"
    attack: str
    rule: str
    port: int
    target: str
    effective: bool = True
    why_not: str = ""


def _response(last: bool) -> bytes:
    body = b"<html><body>It works</body></html>\n"
    return (b"HTTP/1.1 200 OK\r\nServer: Apache/1.3.12 (Unix)\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (len(body), b"Connection: close\r\n" if last
                                                else b"")) + body


def _send_session(cap, tech: Technique, streams: list[bytes]) -> int:
    flow = gen.Flow(cap, tech.xmit)
    flow.open()
    off = 0
    for i, s in enumerate(streams[:-1]):
        # An answered keep-alive request: the server ACKs and answers before
        # the client sends the next one.
        flow.send_stream(s, start=off)
        off += len(s)
        flow.cnxt = flow.data_seq(off)
        flow.server_send(gen.ACK)
        flow.server_send(gen.PSH | gen.ACK, _response(False))
        flow.client_send(gen.ACK)
    last = streams[-1]
    if off == 0:
        tech.build(flow, last, last, None)
    else:
        flow.send_stream(last, start=off)
    flow.finish(b"".join(streams), responses=1)
    cap.wait(gen.CONN_GAP)
    return flow.cport


def build_captures(out_dir: Path, techniques, attacks) -> dict[str, tuple[Path, list[Session]]]:
    """One pcap per technique: attack sessions and twin sessions."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ports: set[int] = set()  # shared: a client port names one session in the whole run
    result = {}
    for tech in techniques:
        cap = gen.Capture(seed_of(tech.name))
        cap.ports = ports
        sessions = []
        for i, a in enumerate(attacks):
            ok, why = effective(tech, a)
            for kind, req in (("attack", a), ("twin", twin_of(a, i))):
                port = _send_session(cap, tech, session_streams(tech, req))
                sessions.append(Session(tech.name, kind, a.name, a.rule, port,
                                        evaded_target(tech, req), ok if kind == "attack" else True,
                                        why if kind == "attack" else ""))
        pcap = out_dir / f"{tech.name}.pcap"
        cap.write(pcap)
        result[tech.name] = (pcap, sessions)
    return result


# ---------------------------------------------------------------------------
# Reading alerts
# ---------------------------------------------------------------------------


def eve_events(path: Path) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """(alert signatures, anomaly events) per client port of this bench's
    sessions; lines that are not JSON are skipped (a sensor killed mid-line)."""
    alerts: dict[int, set[str]] = {}
    anomalies: dict[int, set[str]] = {}
    if not path.exists():
        return alerts, anomalies
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event_type")
            if kind not in ("alert", "anomaly"):
                continue
            if ev.get("dest_ip") == SERVER and ev.get("src_ip") == CLIENT:
                port = ev.get("src_port")
            elif ev.get("src_ip") == SERVER and ev.get("dest_ip") == CLIENT:
                port = ev.get("dest_port")
            else:
                continue
            if not isinstance(port, int):
                continue
            if kind == "alert":
                alerts.setdefault(port, set()).add(ev.get("alert", {}).get("signature", "?"))
            else:
                anomalies.setdefault(port, set()).add(ev.get("anomaly", {}).get("event", "?"))
    return alerts, anomalies


def eve_by_port(path: Path) -> dict[int, set[str]]:
    """Alert signatures per client port."""
    return eve_events(path)[0]


def read_offline(pcaps: list[Path], log_dir: Path, timeout: float = 1800,
                 extra: tuple[str, ...] = ()) -> dict[int, set[str]]:
    return read_offline_events(pcaps, log_dir, timeout, extra)[0]


def read_offline_events(pcaps: list[Path], log_dir: Path, timeout: float = 1800,
                        extra: tuple[str, ...] = ()):
    """``pakemon-xdp read`` of the pcaps: (alerts, anomalies) per client port."""
    if log_dir.exists():
        shutil.rmtree(log_dir)
    cmd = [PY, "-m", "pakemon.cli", "read", "-q", "--progress", "never", "--log-dir",
           str(log_dir), *extra] + [str(p) for p in pcaps]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"pakemon-xdp read: exit {p.returncode}: {p.stderr.strip()[-500:]}")
    return eve_events(log_dir / "eve.json")


def check_plain(attacks: list[Attack], work: Path) -> tuple[list[Attack], list[str]]:
    """Keep the attacks that alert sent plainly (offline), with their own rule;
    and twins must be quiet. (kept, reasons for the dropped)."""
    caps = build_captures(work / "plain-check", [TECHNIQUES["plain"]], attacks)
    pcap, sessions = caps["plain"]
    alerts = read_offline([pcap], work / "plain-check" / "logs")
    kept, dropped = [], []
    by = {a.name: a for a in attacks}
    for s in sessions:
        if s.kind != "attack":
            continue
        sigs = alerts.get(s.port, set())
        if s.rule in sigs:
            kept.append(by[s.attack])
        else:
            dropped.append(f"{s.attack}: sent plainly, {s.rule} did not alert "
                           f"(got {sorted(sigs) or 'nothing'})")
    return kept, dropped


# ---------------------------------------------------------------------------
# Live
# ---------------------------------------------------------------------------


def tcpreplay(lab, pcap: Path, pps: int) -> tuple[int, str]:
    from pakemon.lab.live import CLI_IF

    argv = ["tcpreplay", "-i", CLI_IF, "--preload-pcap", "--pps", str(pps), str(pcap)]
    p = lab.popen(lab.cli, *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = p.communicate(timeout=1800)
    m = re.search(r"Actual: (\d+) packets", out)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"tcpreplay {pcap.name}: exit {p.returncode}: {out.strip()[-300:]}")
    return int(m.group(1)), out


def live_unavailable() -> str | None:
    from pakemon.lab.live import why_unavailable

    why = why_unavailable()
    if why:
        return why
    if shutil.which("tcpreplay") is None:
        return "tcpreplay is not installed (make setup installs it)"
    try:
        import bcc  # noqa: F401  (only whether it loads)
    except Exception as e:  # bcc import can fail in many ways (headers, libbcc)
        return f"bcc (python3-bpfcc) is unavailable: {e}"
    return None


def run_live(pcaps: list[Path], work: Path, pps: int, pages: int = 256) -> dict:
    """All pcaps through one attached sensor; alerts by port and the counters."""
    from pakemon.lab.live import LiveLab

    log_dir = work / "live-logs"
    if log_dir.exists():
        shutil.rmtree(log_dir)
    log_dir.mkdir(parents=True)
    info = {"sent": 0, "pps": pps, "pages": pages, "errors": []}
    lab = LiveLab(prefix=PREFIX)
    sp = None
    try:
        lab.up()
        sp = lab.start_sensor("--log-dir", str(log_dir), "-q", "--pages", str(pages))
        line = next((x for x in sp.stderr if "attached to " in x), "")
        m = re.search(r"\(([a-z]+) XDP", line)
        info["xdp_mode"] = m.group(1) if m else "?"
        time.sleep(0.3)
        for p in pcaps:
            n, _ = tcpreplay(lab, p, pps)
            info["sent"] += n
        _drain(sp)
        code = sp.stop(signal.SIGINT, timeout=120)
        info["exit_code"] = code
        out = "\n".join(sp.stdout)
        for key, pat in (("records", r"^records read\s+(\d+)"),
                         ("perf_lost", r"^perf lost\s+(\d+)"),
                         ("candidates", r"^candidates\s+(\d+)")):
            m = re.search(pat, out, re.M)
            info[key] = int(m.group(1)) if m else None
        m = re.search(r"kernel perf_fail (\d+)", out)
        info["perf_fail"] = int(m.group(1)) if m else None
        if code != 0:
            info["errors"].append(f"sensor exit {code}: {' | '.join(sp.stderr[-5:])}")
        sp = None
    finally:
        if sp is not None:
            try:
                sp.stop(signal.SIGINT, timeout=30)
            except Exception:  # noqa: BLE001 - cleanup must go on to lab.down()
                sp.kill()
        lab.down()
        _make_sure_gone(lab, info)
    info["alerts"], info["anomalies"] = eve_events(log_dir / "eve.json")
    return info


def _make_sure_gone(lab, info: dict) -> None:
    """Our two namespaces must not outlive the run. LiveLab.down() deletes
    them without checking; a delete can fail while the kernel still tears
    down the veth, so try again briefly and report what stays."""
    for ns in (lab.cli, lab.srv):
        err = ""
        for _ in range(20):
            if not Path("/run/netns", ns).exists():
                break
            p = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True,
                               timeout=30)
            err = p.stderr.strip()
            time.sleep(0.25)
        else:
            info["errors"].append(f"namespace {ns} could not be deleted: {err}")


def _drain(sp, quiet: float = 1.5, limit: float = 300.0) -> None:
    """Wait until the sensor's CPU time stops moving: its ring is empty."""
    import os

    tick = os.sysconf("SC_CLK_TCK")

    def cpu():
        try:
            with open(f"/proc/{sp.proc.pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            return int(rest[11]) + int(rest[12])
        except (OSError, IndexError, ValueError):
            return None

    last, t_busy, t0 = cpu(), time.monotonic(), time.monotonic()
    while time.monotonic() - t0 < limit:
        time.sleep(0.1)
        now = cpu()
        if now is None:
            return
        if last is not None and now - last >= 2 * tick / 100:
            t_busy = time.monotonic()
        last = now
        if time.monotonic() - t_busy >= quiet:
            return


# ---------------------------------------------------------------------------
# Scoring and the report
# ---------------------------------------------------------------------------


def _found(pat, data: bytes) -> bool:
    from pakemon.detect.rules import PatternKind

    if pat.kind is PatternKind.REGEX:
        return pat.regex.search(data) is not None
    if pat.kind is PatternKind.NOCASE:
        return pat.value.lower() in data.lower()
    if pat.kind is PatternKind.ANY:
        return True
    return pat.value in data


CAUSES = {
    "gating-bug": "DETECTION BUG: every pattern of the rule is present, its literal only in "
                  "the normalized target and its regex in the raw stream, but the detect "
                  "stage runs a rule's regex only once the rule's literals were found in the "
                  "raw stream, and never again after the normalized target supplies them",
    "double-decode": "double encoding: the sensor decodes once by default; IIS 5 before "
                     "MS01-026 decoded twice (`--http-double-decode` models it, see the IIS "
                     "config column)",
    "case": "case-sensitive (\"...\") signature: the default generic personality keeps case; "
            "IIS does not care (`--http-personality iis` folds it)",
    "encoded-signature": "the signature is itself an encoded form (%XX): the technique "
                         "re-encodes the request, so it is gone from the raw stream, and the "
                         "normalized target holds the decoded form instead",
    "separator": "the signature spans the request-line separator (a space before or after "
                 "the target): the technique changes the separator or the target's edge, "
                 "and the normalized target is the target alone",
    "slash-dot": "the signature is a raw sequence of slashes or dot segments: the technique "
                 "breaks it up in the raw stream and normalization resolves it by design "
                 "(the resolved path is what the server opens; a target climbing above the root, "
                 "as HTTP-directory-traversal's, gets 400 from Apache anyway)",
    "regex": "the signature's regex matches neither the raw request nor the normalized target",
    "other": "a pattern is in neither the raw request nor the normalized target",
    "unexplained": "every pattern is present in the raw request or normalized target, "
                   "yet no alert: unexplained",
}


# Known reasons for twin alerts, by (technique, signatures). Any other
# false alert is printed without a note, so it stands out.
FALSE_ALERT_NOTES = {
    ("premature-end", ("HTTP-directory-traversal",)):
        "whisker's \"/../..\" that takes back the fake request line is itself the "
        "sequence this rule looks for: the alert is on the technique, which is a traversal, "
        "not on the twin's content",
}


def explain_miss(tech: Technique, a: Attack, rule, notices: set[str]) -> tuple[str, str]:
    """(cause, detail) of a miss of ``a``'s own rule: where each of the rule's
    patterns is (raw request, normalized target, neither) and what that means.
    The cause keys ``CAUSES``."""
    from pakemon.detect.rules import PatternKind

    raw = b"".join(session_streams(tech, a))
    norm, _ = normalize_uri(evaded_target(tech, a).encode("latin-1"), "generic")
    where = [(p, _found(p, raw), _found(p, norm)) for p in rule.patterns]
    lost = [p for p, r, n in where if not (r or n)]
    if not lost:
        regex = [p for p, r, n in where if p.kind is PatternKind.REGEX and r]
        only_norm = [p for p, r, n in where if p.kind is not PatternKind.REGEX and n and not r]
        if regex and only_norm:
            return "gating-bug", (f"{only_norm[0].text} only in the normalized target, "
                                  f"{regex[0].text} in the raw stream")
        return "unexplained", ", ".join(p.text for p in rule.patterns)
    pat = lost[0]
    if tech.double_decode:
        return "double-decode", pat.text
    if pat.kind is PatternKind.BYTES and tech.random_case:
        return "case", pat.text
    if b"%" in pat.value and pat.kind is not PatternKind.REGEX:
        return "encoded-signature", pat.text
    if pat.value[:1] == b" " or b"[ ?]" in pat.value or b" HTTP/" in pat.value:
        return "separator", pat.text
    if pat.kind is not PatternKind.REGEX and set(pat.value) <= set(b"/."):
        return "slash-dot", pat.text
    if pat.kind is PatternKind.REGEX:
        return "regex", pat.text
    return "other", pat.text


def score(tech: Technique, sessions: list[Session], alerts: dict[int, set[str]],
          anomalies: dict[int, set[str]] | None = None, attacks_by_name: dict | None = None,
          rules_by_name: dict | None = None, iis_alerts: dict[int, set[str]] | None = None) -> dict:
    anomalies = anomalies or {}
    attacks = [s for s in sessions if s.kind == "attack"]
    twins = [s for s in sessions if s.kind == "twin"]
    applicable = [s for s in attacks if s.effective]
    detected = [s for s in applicable if alerts.get(s.port)]
    own = [s for s in applicable if s.rule in alerts.get(s.port, ())]
    missed = [s for s in applicable if not alerts.get(s.port)]
    n_a = [s for s in attacks if not s.effective]
    fa = [s for s in twins if alerts.get(s.port)]
    causes = []
    for s in missed:
        cause, detail = "unknown", ""
        if attacks_by_name and rules_by_name and s.rule in rules_by_name:
            cause, detail = explain_miss(tech, attacks_by_name[s.attack],
                                         rules_by_name[s.rule], anomalies.get(s.port, set()))
        causes.append({"attack": s.attack, "target": s.target[:90], "cause": cause,
                       "detail": detail, "notice": bool(anomalies.get(s.port))})
    failed = [f"missed {c['attack']} ({c['target']!r}): {c['cause']}: {c['detail']}"
              for c in causes]
    failed += [f"false alert on twin of {s.attack} ({s.target[:70]!r}): "
               f"{', '.join(sorted(alerts[s.port]))}" for s in fa]
    row = {
        "name": tech.name, "origin": tech.origin, "summary": tech.summary,
        "attacks": len(applicable), "detected": len(detected), "own_rule": len(own),
        "rate": round(100.0 * len(detected) / len(applicable), 1) if applicable else None,
        "false_alerts": len(fa), "twins": len(twins),
        "notice_only": sum(1 for s in missed if anomalies.get(s.port)),
        "not_applicable": len(n_a),
        "not_applicable_detected": sum(1 for s in n_a if alerts.get(s.port)),
        "not_applicable_examples": [f"{s.attack}: {s.why_not}" for s in n_a[:3]],
        "failed": failed, "causes": causes,
        "missed": [s.attack for s in missed],
        "false_alert_signatures": sorted({sig for s in fa for sig in alerts[s.port]}),
    }
    if iis_alerts is not None and attacks_by_name:
        iis = [s for s in applicable if attacks_by_name[s.attack].server == "iis"]
        row["iis_attacks"] = len(iis)
        row["iis_detected_default"] = sum(1 for s in iis if alerts.get(s.port))
        row["iis_detected_configured"] = sum(1 for s in iis if iis_alerts.get(s.port))
    return row


def agreement(sessions: list[Session], live: dict, offline: dict) -> tuple[int, list[str]]:
    same, diff = 0, []
    for s in sessions:
        a, b = live.get(s.port, set()), offline.get(s.port, set())
        if a == b:
            same += 1
        else:
            diff.append(f"{s.technique} {s.kind} {s.attack}: live {sorted(a)}, "
                        f"offline {sorted(b)}")
    return same, diff


IIS_CONFIG = ("--http-personality", "iis", "--http-double-decode")


def main_run(out_dir: Path, quick: bool = False, command: str | None = None,
             pps: int = 4000, live: bool = True, work_dir: Path | None = None) -> dict:
    """Figure 9 end to end; ``out_dir`` gets the PNG, evasion-http.json and
    evasion-http.md, ``work_dir`` (default bench/out/evasion-http[-quick], which
    git ignores) the pcaps and the sensor's logs: tens of MB that must not land
    next to docs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command or (
        "python -m bench.evaluate.evasion_http" + (" --quick" if quick else "")
        + f" --out {out_dir}")
    st = stamp(command)
    t0 = time.monotonic()
    work = Path(work_dir) if work_dir else ROOT / "bench" / "out" / (
        "evasion-http-quick" if quick else "evasion-http")
    work.mkdir(parents=True, exist_ok=True)
    derived, no_request = derive_attacks()
    if quick:
        derived = [a for a in derived if a.name in QUICK_ATTACKS]
    attacks, dropped = check_plain(derived, work)
    by_name = {a.name: a for a in attacks}
    rules_by_name = {r.name: r for r in http_rules()}
    techs = [TECHNIQUES[n] for n in (QUICK_TECHNIQUES if quick else TECHNIQUES)]
    caps = build_captures(work / "pcaps", techs, attacks)
    pcaps = [caps[t.name][0] for t in techs]
    all_sessions = [s for t in techs for s in caps[t.name][1]]
    offline, offline_anom = read_offline_events(pcaps, work / "offline-logs")
    # The same captures with the sensor told its web servers are IIS 5:
    # what an operator protecting IIS gets (judged on IIS targets only).
    iis_offline = read_offline(pcaps, work / "offline-iis-logs", extra=IIS_CONFIG)
    why_not_live = live_unavailable() if live else "live run not requested (--offline)"
    live_info = None
    if why_not_live is None:
        try:
            live_info = run_live(pcaps, work, pps)
        except Exception as e:  # noqa: BLE001 - LabError, tcpreplay, a sensor that
            # would not attach: the report says so and shows the offline figures.
            why_not_live = f"the live run failed: {type(e).__name__}: {e}"
    if live_info is not None:
        lost = (live_info.get("perf_lost") or 0) + (live_info.get("perf_fail") or 0)
        if lost and pps > 500:
            # A full ring is the machine's limit, not an evasion: measure
            # again at half the rate, and say so in the report.
            first = {k: v for k, v in live_info.items() if k not in ("alerts", "anomalies")}
            live_info = run_live(pcaps, work, pps // 2)
            live_info["retried_after"] = first
        measured, anom = live_info["alerts"], live_info["anomalies"]
        mode = "live"
    else:
        measured, anom = offline, offline_anom
        mode = "offline"
    rows = [score(t, caps[t.name][1], measured, anom, by_name, rules_by_name, iis_offline)
            for t in techs]
    same, diff = agreement(all_sessions, measured, offline) if live_info else (
        len(all_sessions), [])
    totals = {
        "mode": mode, "why_not_live": why_not_live,
        "attacks_derived": len(derived), "attacks": len(attacks),
        "attacks_dropped": dropped, "rules_without_request": no_request,
        "rules": len(rules_by_name),
        "techniques": len(techs), "sessions": len(all_sessions),
        "cases": sum(r["attacks"] for r in rows), "detected": sum(r["detected"] for r in rows),
        "own_rule": sum(r["own_rule"] for r in rows),
        "false_alerts": sum(r["false_alerts"] for r in rows),
        "twins": sum(r["twins"] for r in rows),
        "not_applicable": sum(r["not_applicable"] for r in rows),
        "live_offline_same": same, "live_offline_diff": diff,
        "live": {k: v for k, v in (live_info or {}).items() if k not in ("alerts", "anomalies")},
        "wall_s": 0.0,
    }
    png = out_dir / "fig9-evasion-http.png"
    save_bar(png, [r["name"] for r in rows], [r["rate"] or 0.0 for r in rows],
             f"Figure 9: detection by HTTP evasion technique ({mode}, {len(attacks)} attacks)",
             "detected (% of applicable attacks)",
             secondary=[100.0 * r["false_alerts"] / r["twins"] if r["twins"] else 0.0
                        for r in rows],
             secondary_label="false alerts (% of twins)", ylim=(0, 105))
    totals["wall_s"] = round(time.monotonic() - t0, 1)
    # "png" and the markdown's image link are relative to out_dir's parent:
    # the orchestrator writes docs/evaluation.md next to its figure directory.
    result = {"stamp": st, "command": command, "techniques": rows, "totals": totals,
              "png": f"{out_dir.name}/{png.name}",
              "summary": (f"{t_mode(totals)}: {totals['detected']}/{totals['cases']} applicable "
                          f"cases detected through {totals['techniques']} techniques x "
                          f"{totals['attacks']} attacks, {totals['false_alerts']} false alerts")}
    (out_dir / "evasion-http.md").write_text(markdown(result, png.name))
    result["markdown"] = markdown(result, result["png"])
    (out_dir / "evasion-http.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def t_mode(totals: dict) -> str:
    return "live" if totals["mode"] == "live" else "offline only"


def run_evasion(out_dir: Path, quick: bool = False, work_dir: Path | None = None,
                command: str | None = None) -> dict:
    """The orchestrator's entry point (bench/evaluate/run.py).

    Returns {"stamp", "command", "techniques": [per-technique rows: name,
    attacks, detected, rate, false_alerts, twins, failed, ...], "totals",
    "png" (file name relative to ``out_dir``), "markdown" (the section)}.
    """
    # command: the caller's own command line (make evaluate's), stamped on the figure
    return main_run(Path(out_dir), quick=quick, command=command, work_dir=work_dir)


def markdown(res: dict, href: str | None = None) -> str:
    """The report section; ``href`` is the chart's link (default res["png"])."""
    t = res["totals"]
    rows = res["techniques"]
    md = ["## Evasion (Figure 9): detection rate by HTTP evasion technique\n",
          stamp_line(res["stamp"]) + "\n"]
    if t["mode"] == "live":
        lv = t["live"]
        md.append(f"Measured **live**: {t['sessions']} TCP sessions ({lv.get('sent')} frames) "
                  f"replayed with tcpreplay at {lv.get('pps')} frames/s into the lab veth, "
                  f"`pakemon-xdp attach` ({lv.get('xdp_mode')} XDP, default configuration) "
                  f"reading them; lost samples: {lv.get('perf_lost')} (kernel perf_fail "
                  f"{lv.get('perf_fail')}). Offline `pakemon-xdp read` of the same pcaps "
                  f"gives the same alerts on {t['live_offline_same']} of {t['sessions']} "
                  f"sessions. Run time {t['wall_s']} s.\n")
        if lv.get("errors"):
            md.append("**Sensor errors:** " + "; ".join(map(str, lv["errors"])) + "\n")
        if lv.get("retried_after"):
            r = lv["retried_after"]
            md.append(f"(A first run at {r.get('pps')} frames/s lost {r.get('perf_lost')} "
                      f"samples (perf_fail {r.get('perf_fail')}); the figures are from the "
                      f"run at {lv.get('pps')} frames/s.)\n")
    else:
        md.append(f"**Offline only** (`pakemon-xdp read`): the live run could not start here: "
                  f"{t['why_not_live']}.\n")
    md.append(f"{t['attacks']} attack requests derived from the {t['rules']} port-80 rules of "
              f"rules/pakemon.rules (each detected when sent plainly), each with a benign "
              f"twin, through {t['techniques']} techniques: **{t['detected']} of {t['cases']}** "
              f"applicable cases detected ({t['own_rule']} by the attack's own rule), "
              f"**{t['false_alerts']} false alerts** on {t['twins']} twins; "
              f"{t['not_applicable']} cases are not applicable (the target server would not "
              f"run the evaded request: `%u`, `\\`, case or double encoding sent to Apache).\n")
    md.append("Columns: *attacks* applicable cases; *detected* sessions with any alert; "
              "*own rule* the attack's own signature among them; *notice only* missed but "
              "flagged with an `http_uri_encoding_anomaly` notice; *n/a* not applicable; "
              "*IIS config*: the applicable IIS-target attacks detected (offline) when the "
              "sensor is told its servers are IIS 5 (`--http-personality iis "
              "--http-double-decode`).\n")
    table_rows = []
    for r in rows:
        iis = (f"{r['iis_detected_configured']}/{r['iis_attacks']}"
               if "iis_attacks" in r else "-")
        table_rows.append([r["name"], r["origin"], r["attacks"], r["detected"],
                           "-" if r["rate"] is None else r["rate"], r["own_rule"],
                           r["notice_only"], r["false_alerts"], r["twins"],
                           r["not_applicable"], iis])
    md.append(markdown_table(["technique", "origin", "attacks", "detected", "rate %",
                              "own rule", "notice only", "false alerts", "twins", "n/a",
                              "IIS config"], table_rows))
    md.append(f"\n![Figure 9: detection rate by HTTP evasion technique]({href or res['png']})\n")
    # Misses grouped by cause, then attack: the same few causes recur through
    # many techniques.
    groups: dict[str, dict[tuple[str, str], list[str]]] = {}
    for r in rows:
        for c in r.get("causes", []):
            groups.setdefault(c["cause"], {}).setdefault((c["attack"], c["detail"]), []).append(
                r["name"] + ("*" if c.get("notice") else ""))
    if groups:
        md.append("\n### Missed attacks, by cause\n")
        md.append("(technique* = an `http_uri_encoding_anomaly` notice was raised for the "
                  "session)\n")
        for cause, by_attack in sorted(groups.items(), key=lambda kv: -sum(
                len(v) for v in kv[1].values())):
            n = sum(len(v) for v in by_attack.values())
            md.append(f"* **{cause}** ({n} cases): {CAUSES.get(cause, cause)}.")
            if cause == "double-decode":
                atts = sorted({att for att, _ in by_attack})
                md.append(f"  * {len(atts)} attacks: {', '.join(atts)}")
                continue
            for (att, detail), techs in sorted(by_attack.items()):
                md.append(f"  * {att} (`{detail}`): {', '.join(techs)}")
        md.append("")
    fa = [r for r in rows if r["false_alerts"]]
    if fa:
        md.append("\n### False alerts\n")
        for r in fa:
            note = FALSE_ALERT_NOTES.get((r["name"], tuple(r["false_alert_signatures"])), "")
            md.append(f"* {r['name']}: {r['false_alerts']} twins alerted, by "
                      f"{', '.join(r['false_alert_signatures'])}" + (f". {note}" if note else ""))
        md.append("")
    na = [r for r in rows if r["not_applicable"]]
    if na:
        md.append("\n### Not applicable cases (the server would not run the evaded attack)\n")
        for r in na:
            ex = "; ".join(r["not_applicable_examples"][:2])
            md.append(f"* {r['name']}: {r['not_applicable']} (alerted anyway: "
                      f"{r['not_applicable_detected']}); e.g. {ex}")
        md.append("")
    if t["attacks_dropped"] or t["rules_without_request"]:
        md.append("\n### Attacks not used\n")
        for d in t["attacks_dropped"]:
            md.append(f"* dropped: {d}")
        for n in t["rules_without_request"]:
            md.append(f"* no request derived for rule {n}")
        md.append("")
    if t["live_offline_diff"]:
        md.append("\n### Live and offline disagree\n")
        for d in t["live_offline_diff"][:20]:
            md.append(f"* {d}")
        md.append("")
    return "\n".join(md) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a CI-sized subset (still live)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "evaluate",
                    help="where the PNG, evasion-http.json and .md go")
    ap.add_argument("--work", type=Path, help="pcaps and logs (default bench/out/evasion-http)")
    ap.add_argument("--offline", action="store_true", help="skip the live run")
    ap.add_argument("--pps", type=int, default=4000, help="tcpreplay rate (frames/s)")
    ap.add_argument("--list", action="store_true", help="list techniques and attacks")
    args = ap.parse_args(argv)
    if args.list:
        for t in TECHNIQUES.values():
            print(f"{t.name:<30} {t.origin:<28} {t.summary}")
        attacks, skipped = derive_attacks()
        for a in attacks:
            print(f"{a.name:<32} {a.server:<6} {a.target[:80]}")
        print(f"{len(attacks)} attacks; no request for: {', '.join(skipped) or '-'}")
        return 0
    res = main_run(args.out, quick=args.quick, pps=args.pps, live=not args.offline,
                   command=command_line("bench.evaluate.evasion_http"), work_dir=args.work)
    try:
        print(res["markdown"])
    except BrokenPipeError:  # `| head`: the report is in --out anyway
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
