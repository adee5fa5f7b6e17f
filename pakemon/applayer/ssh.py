"""SSH: one direction's identification line and its first key exchange
offer, the two things rules read of an SSH session before it is encrypted.

``SshParser().feed(chunk)`` returns events as the direction's reassembled
bytes come:

* ``("banner", proto, software)``: the identification line (RFC 4253 4.2,
  "SSH-protoversion-softwareversion SP comments", at most 255 bytes). A
  server may send other lines before it; they are skipped, up to
  ``LINE_MAX`` bytes, then the parser gives up as Suricata does.
* ``("kexinit", lists)``: the SSH_MSG_KEXINIT packet (RFC 4253 7.1), its
  ten name-lists in order (kex, host key, encryption c2s, s2c, MAC c2s,
  s2c, compression c2s, s2c, languages c2s, s2c) as bytes. ``hassh()``
  makes HASSH of them (Salesforce's fingerprint, as Suricata's ssh.hassh
  and ssh.hassh.server read it).

Binary packets are read unencrypted only up to the first KEXINIT, NEWKEYS
(after which they are encrypted) or ``KEX_MAX`` bytes; ``done`` is then
set and later bytes are not looked at. A packet length the protocol cannot
have stops the parser too (``malformed``). Nothing raises.
"""

from __future__ import annotations

import hashlib

__all__ = ["KEX_MAX", "LINE_MAX", "SshParser", "hassh"]

LINE_MAX = 255 + 8 * 1024  # the line, and the other lines a server may send first
KEX_MAX = 64 * 1024  # binary-packet bytes read looking for KEXINIT
MSG_KEXINIT, MSG_NEWKEYS = 20, 21
# RFC 4253 6.1: implementations must take 35,000-byte packets; larger ones
# may be refused. A KEXINIT is far smaller.
PACKET_MAX = 35000


def hassh(lists: list[bytes], server: bool) -> tuple[bytes, bytes]:
    """(HASSH string, its MD5 as lowercase hex): kex;enc;mac;compression of
    the sender's own direction (client to server for a client's KEXINIT)."""
    d = 1 if server else 0
    s = b";".join((lists[0], lists[2 + d], lists[4 + d], lists[6 + d]))
    return s, hashlib.md5(s).hexdigest().encode()


class SshParser:
    __slots__ = ("buf", "seen", "banner", "done", "malformed", "kex_bytes")

    def __init__(self):
        self.buf = b""
        self.seen = 0  # bytes skipped before the identification line
        self.banner = False
        self.done = False
        self.malformed = False
        self.kex_bytes = 0

    def feed(self, data) -> list:
        if self.done:
            return []
        buf = self.buf + bytes(data)
        out: list = []
        if not self.banner:
            buf = self._line(buf, out)
            if not self.banner:
                self.buf = buf
                return out
        self.buf = self._packets(buf, out)
        return out

    def _line(self, buf: bytes, out: list) -> bytes:
        pos = 0
        while True:
            j = buf.find(b"\n", pos)
            if j < 0:
                break
            if buf.startswith(b"SSH-", pos):
                line = buf[pos:j].rstrip(b"\r")[4:]
                proto, _, rest = line.partition(b"-")
                out.append(("banner", proto, rest.split(b" ", 1)[0]))
                self.banner = True
                return buf[j + 1:]
            pos = j + 1
        self.seen += pos
        rest = buf[pos:]
        if self.seen + len(rest) > LINE_MAX:
            self.done = True
            return b""
        return rest

    def _packets(self, buf: bytes, out: list) -> bytes:
        while len(buf) >= 6:
            plen = int.from_bytes(buf[:4], "big")
            pad = buf[4]
            if plen < 2 or plen > PACKET_MAX or pad >= plen:
                self.done = self.malformed = True
                return b""
            if len(buf) < 4 + plen:
                break
            payload = buf[5:4 + plen - pad]
            buf = buf[4 + plen:]
            self.kex_bytes += 4 + plen
            code = payload[0] if payload else 0
            if code == MSG_KEXINIT:
                lists = _name_lists(payload)
                self.done = True
                if lists is None:
                    self.malformed = True
                else:
                    out.append(("kexinit", lists))
                return b""
            if code == MSG_NEWKEYS:
                self.done = True
                return b""
        if self.kex_bytes + len(buf) > KEX_MAX:
            self.done = True
            return b""
        return buf


def _name_lists(payload: bytes) -> list[bytes] | None:
    """The ten name-lists after the message code and 16-byte cookie."""
    pos = 17
    lists = []
    for _ in range(10):
        if pos + 4 > len(payload):
            return None
        n = int.from_bytes(payload[pos:pos + 4], "big")
        pos += 4
        if pos + n > len(payload):
            return None
        lists.append(payload[pos:pos + n])
        pos += n
    return lists
