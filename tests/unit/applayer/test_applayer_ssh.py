"""SshParser: identification line and KEXINIT, from a real OpenSSH client
(over loopback) and from built packets cut every way."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading

import pytest

from pakemon.applayer.ssh import KEX_MAX, LINE_MAX, SshParser, hassh

NAMES = [b"curve25519-sha256,diffie-hellman-group14-sha256", b"ssh-ed25519",
         b"aes128-ctr,aes256-ctr", b"aes256-gcm@openssh.com", b"hmac-sha2-256",
         b"hmac-sha2-512", b"none", b"none,zlib@openssh.com", b"", b""]


def kexinit(lists=NAMES, code=20, pad=4) -> bytes:
    payload = bytes([code]) + bytes(range(16))
    for n in lists:
        payload += len(n).to_bytes(4, "big") + n
    payload += b"\0" + bytes(4)
    plen = len(payload) + pad + 1
    return plen.to_bytes(4, "big") + bytes([pad]) + payload + bytes(pad)


def feed_all(data: bytes, step: int | None):
    p = SshParser()
    out = []
    if step is None:
        out += p.feed(data)
    else:
        for i in range(0, len(data), step):
            out += p.feed(data[i:i + step])
    return p, out


@pytest.mark.parametrize("step", [None, 1, 3, 17])
def test_banner_then_kexinit_in_any_cut(step):
    data = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" + kexinit()
    p, out = feed_all(data, step)
    assert out[0] == ("banner", b"2.0", b"OpenSSH_9.2p1")
    assert out[1] == ("kexinit", NAMES)
    assert p.done and not p.malformed


def test_hassh_takes_the_senders_own_direction():
    s, h = hassh(NAMES, server=False)
    assert s == (b"curve25519-sha256,diffie-hellman-group14-sha256;aes128-ctr,aes256-ctr;"
                 b"hmac-sha2-256;none")
    assert h == hashlib.md5(s).hexdigest().encode()
    s, _ = hassh(NAMES, server=True)
    assert s == (b"curve25519-sha256,diffie-hellman-group14-sha256;aes256-gcm@openssh.com;"
                 b"hmac-sha2-512;none,zlib@openssh.com")


def test_other_lines_before_the_banner_and_the_limit():
    p, out = feed_all(b"hello\r\nworld\r\nSSH-2.0-x\r\n" + kexinit(), 5)
    assert [e[0] for e in out] == ["banner", "kexinit"]
    p, out = feed_all((b"x" * 80 + b"\r\n") * (LINE_MAX // 80) + b"SSH-2.0-x\r\n", 100)
    assert out == [] and p.done


@pytest.mark.parametrize("junk", [
    b"\0\0\0\0\4",  # length 0
    b"\xff\xff\xff\xff\4",  # past any packet
    (10).to_bytes(4, "big") + b"\x0a" + bytes(9),  # padding as long as the packet
])
def test_impossible_packets_stop_the_parser(junk):
    p, out = feed_all(b"SSH-2.0-x\r\n" + junk + kexinit(), None)
    assert [e[0] for e in out] == ["banner"] and p.done and p.malformed
    assert p.feed(kexinit()) == []


def test_truncated_name_lists_are_malformed():
    pkt = kexinit(NAMES[:3])
    p, out = feed_all(b"SSH-2.0-x\r\n" + pkt, None)
    assert [e[0] for e in out] == ["banner"] and p.malformed


def test_newkeys_or_too_many_bytes_end_the_search():
    p, out = feed_all(b"SSH-2.0-x\r\n" + kexinit(code=21) + kexinit(), None)
    assert [e[0] for e in out] == ["banner"] and p.done
    other = kexinit(code=90)  # some other message, over and over
    p, out = feed_all(b"SSH-2.0-x\r\n" + other * (KEX_MAX // len(other) + 2) + kexinit(), 999)
    assert [e[0] for e in out] == ["banner"] and p.done


def test_a_message_before_kexinit_is_skipped():
    p, out = feed_all(b"SSH-2.0-x\r\n" + kexinit(code=2) + kexinit(), 7)  # SSH_MSG_IGNORE
    assert [e[0] for e in out] == ["banner", "kexinit"]


@pytest.mark.skipif(shutil.which("ssh") is None, reason="openssh-client (make setup) missing")
def test_a_real_openssh_client_kexinit():
    """OpenSSH's own client, talking to a listener on loopback that only
    sends a server line and records what comes back."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = bytearray()

    def serve():
        conn, _ = srv.accept()
        conn.settimeout(5)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        try:
            while len(got) < 4096:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                got.extend(chunk)
                p = SshParser()
                if any(e[0] == "kexinit" for e in p.feed(bytes(got))):
                    break
        except OSError:
            pass
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    cmd = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-p", str(port),
           "nobody@127.0.0.1", "true"]
    subprocess.run(cmd, capture_output=True, timeout=20)
    t.join(10)
    srv.close()
    p = SshParser()
    out = p.feed(bytes(got))
    assert out[0][0] == "banner" and out[0][1] == b"2.0" and out[0][2].startswith(b"OpenSSH_")
    assert out[1][0] == "kexinit"
    lists = out[1][1]
    # what the client offers is what it says it is configured to offer
    conf = subprocess.run(["ssh", "-F", "/dev/null", "-G", "-p", str(port), "127.0.0.1"],
                          capture_output=True, text=True, check=True).stdout
    opts = dict(line.split(" ", 1) for line in conf.splitlines() if " " in line)
    assert lists[2].decode() == lists[3].decode() == opts["ciphers"]
    assert lists[4].decode() == opts["macs"]
    assert set(opts["kexalgorithms"].split(",")) <= set(lists[0].decode().split(","))
    s, h = hassh(lists, server=False)
    assert s.count(b";") == 3 and len(h) == 32
