"""ssh_proto / ssh_software and ftpbounce (the last ET Open rules that were
skipped for an unsupported keyword, but asn1's) on real TCP sessions through
the pipeline."""

from __future__ import annotations

import hashlib

import pytest

from helpers import sid_counts

from pakemon.lab.traffic import TcpConnection

# emerging-scan.rules and emerging-ftp.rules, as shipped
RULES = """\
alert ssh $EXTERNAL_NET any -> $HOME_NET any (msg:"ET SCAN SSH BruteForce Tool with fake PUTTY \
version"; flow:established,to_server; ssh_proto; content:"PUTTY"; threshold: type limit, track \
by_src, count 1, seconds 30; classtype:network-scan; sid:2019876; rev:2;)
alert tcp $EXTERNAL_NET any -> $HOME_NET 21 (msg:"GPL FTP PORT bounce attempt"; \
flow:to_server,established; content:"PORT"; nocase; ftpbounce; pcre:"/^PORT/smi"; \
classtype:misc-attack; sid:2103441; rev:2;)
alert ssh any any -> any any (msg:"old server"; flow:to_client; ssh.software; \
content:"OpenSSH_5"; startswith; sid:9;)
"""
VARS = {"HOME_NET": "10.0.0.0/8", "EXTERNAL_NET": "!$HOME_NET"}
CLIENT, SERVER = "198.51.100.9", "10.0.0.22"


def run(frames):
    return sid_counts(frames, RULES, VARS)


def ssh(client_id: bytes, server_id=b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", segment=None,
        banner_lines=b"", client_first=False):
    c = TcpConnection(CLIENT, SERVER, 40022, 22).open()
    if client_first:
        c.send(client_id, segment=segment)
    c.send(banner_lines + server_id, from_client=False, segment=segment)
    if not client_first:
        c.send(client_id, segment=segment)
    c.send(bytes(range(200)), from_client=False)  # key exchange, binary
    c.send(bytes(range(100)))
    return c.close()


@pytest.mark.parametrize("segment", [None, 1, 4])
def test_fake_putty_protocol_version(segment):
    assert run(ssh(b"SSH-PUTTY-tool\r\n", segment=segment)) == {2019876: 1}


def test_putty_as_software_is_not_the_protocol():
    assert run(ssh(b"SSH-2.0-PUTTY_Release_0.78\r\n")) == {}


def test_server_software():
    assert run(ssh(b"SSH-2.0-x\r\n", server_id=b"SSH-2.0-OpenSSH_5.3 old\r\n")) == {9: 1}
    assert run(ssh(b"SSH-2.0-x\r\n", server_id=b"SSH-2.0-OpenSSH_9.3\r\n")) == {}


def test_server_identification_after_other_lines():
    # RFC 4253 4.2 lets a server send other lines first (the client spoke first here)
    lines = b"Welcome\r\nauthorised use only\r\n"
    got = run(ssh(b"SSH-2.0-x\r\n", server_id=b"SSH-2.0-OpenSSH_5.3 old\r\n",
                  banner_lines=lines, client_first=True))
    assert got == {9: 1}


def ftp(port_cmd: bytes, client=CLIENT, segment=None):
    c = TcpConnection(client, SERVER, 40021, 21).open()
    c.send(b"220 ftp ready\r\n", from_client=False)
    c.send(b"USER anonymous\r\n")
    c.send(b"331 ok\r\n", from_client=False)
    c.send(b"PASS x@\r\n")
    c.send(b"230 ok\r\n", from_client=False)
    c.send(port_cmd, segment=segment)
    c.send(b"200 PORT ok\r\n", from_client=False)
    return c.close()


@pytest.mark.parametrize("segment", [None, 2])
def test_port_to_another_host_is_a_bounce(segment):
    assert run(ftp(b"PORT 192,0,2,77,0,25\r\n", segment=segment)) == {2103441: 1}


def test_port_to_the_client_itself_is_not():
    assert run(ftp(b"PORT 198,51,100,9,156,64\r\n")) == {}
    assert run(ftp(b"port 198,51,100,9,156,64\r\n")) == {}


def test_lines_before_the_identification_are_bounded():
    # a server sending lines without end: given up on past SSH_LINE_MAX
    # bytes (the lines are skipped, not kept), so what comes after is not read
    junk = b"x\r\n" * 40000  # 120 KB of lines
    assert run(ssh(b"SSH-2.0-x\r\n", server_id=junk + b"SSH-2.0-OpenSSH_5.3\r\n",
                   client_first=True)) == {}
    short = b"x\r\n" * 100
    assert run(ssh(b"SSH-2.0-x\r\n", server_id=short + b"SSH-2.0-OpenSSH_5.3\r\n",
                   client_first=True)) == {9: 1}


def test_a_bounce_is_counted_once_not_again_at_the_next_port():
    c = TcpConnection(CLIENT, SERVER, 40021, 21).open()
    c.send(b"220 ftp ready\r\n", from_client=False)
    c.send(b"USER a\r\n")
    c.send(b"PORT 192,0,2,77,0,25\r\n")
    c.send(b"200 ok\r\n", from_client=False)
    c.send(b"PORT 198,51,100,9,156,64\r\n")  # the client's own address: no bounce
    c.send(b"200 ok\r\n", from_client=False)
    assert run(c.close()) == {2103441: 1}


def test_app_layer_protocol():
    from pakemon.lab.traffic import dns_exchange

    rules = """\
alert tcp any any -> any any (msg:"ftp"; app-layer-protocol:ftp; content:"USER"; sid:21;)
alert tcp any any -> any any (msg:"not ftp"; app-layer-protocol:!ftp; content:"USER"; sid:22;)
alert tcp any any -> any any (msg:"failed"; app-layer-protocol:failed; content:"USER"; sid:23;)
alert udp any any -> any 53 (msg:"dns"; app-layer-protocol:dns; content:"example"; sid:24;)
"""
    ftp_frames = ftp(b"PORT 198,51,100,9,156,64\r\n")
    # detection fails once both sides named nothing (a side alone may be
    # answered by a protocol the other side names, as Suricata waits for)
    junk = TcpConnection(CLIENT, SERVER, 40099, 7777).open()
    junk.send(b"\x01\x02 hello\r\n")
    junk.send(b"\x03\x04 nope\r\n", from_client=False)
    junk.send(b"USER binary\r\n")
    dns = dns_exchange(CLIENT, SERVER, 40053, "www.example.com")

    def alerts(frames):
        return sorted(sid_counts(frames, rules))
    assert alerts(ftp_frames) == [21]
    assert alerts(junk.close()) == [22, 23]
    assert alerts(dns) == [24]


# ------------------------------------------------------------------ HASSH

def _kexinit(kex: bytes, enc: bytes, mac: bytes = b"hmac-sha2-256") -> bytes:
    lists = [kex, b"ssh-ed25519", enc, enc, mac, mac, b"none", b"none", b"", b""]
    payload = bytes([20]) + bytes(16) + b"".join(len(n).to_bytes(4, "big") + n for n in lists)
    payload += bytes(5)
    pad = 4
    return (len(payload) + pad + 1).to_bytes(4, "big") + bytes([pad]) + payload + bytes(pad)


CLIENT_KEX = _kexinit(b"curve25519-sha256", b"aes128-ctr")
SERVER_KEX = _kexinit(b"curve25519-sha256,ext", b"chacha20-poly1305@openssh.com")
CLIENT_HASSH = hashlib.md5(b"curve25519-sha256;aes128-ctr;hmac-sha2-256;none").hexdigest()
SERVER_HASSH = hashlib.md5(
    b"curve25519-sha256,ext;chacha20-poly1305@openssh.com;hmac-sha2-256;none").hexdigest()
HASSH_RULES = f"""\
alert ssh any any -> any any (msg:"client hassh"; ssh.hassh; content:"{CLIENT_HASSH}"; sid:1;)
alert ssh any any -> any any (msg:"server hassh"; ssh.hassh.server; \
content:"{SERVER_HASSH}"; sid:2;)
alert ssh any any -> any any (msg:"string"; ssh.hassh.string; content:"aes128-ctr;"; sid:3;)
alert ssh any any -> any any (msg:"server string"; ssh.hassh.server.string; \
content:"chacha20"; sid:4;)
alert ssh any any -> any any (msg:"software and hassh"; ssh.software; content:"libssh"; \
ssh.hassh; content:"{CLIENT_HASSH}"; sid:5;)
alert ssh any any -> any any (msg:"client's is not the server's"; flow:to_client; \
ssh.hassh.server; content:"{CLIENT_HASSH}"; sid:6;)
alert ssh any any -> any any (msg:"line alone"; ssh.software; content:"libssh"; sid:7;)
"""


@pytest.mark.parametrize("segment", [None, 1, 9])
def test_hassh_buffers_of_both_sides(segment):
    c = TcpConnection(CLIENT, SERVER, 40022, 22).open()
    c.send(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" + SERVER_KEX, from_client=False,
           segment=segment)
    c.send(b"SSH-2.0-libssh_0.9.6\r\n", segment=segment)
    c.send(CLIENT_KEX, segment=segment)
    c.send(bytes(range(200)), from_client=False)
    frames = c.close()
    assert sid_counts(frames, HASSH_RULES, VARS) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 7: 1}


def test_no_kexinit_no_hassh_alert_but_the_line_rules_still_run():
    c = TcpConnection(CLIENT, SERVER, 40022, 22).open()
    c.send(b"SSH-2.0-OpenSSH_9.2p1\r\n", from_client=False)
    c.send(b"SSH-2.0-libssh_0.9.6\r\n")
    c.send(b"\0\0\0\0junk")  # a packet length of 0: the parser stops
    frames = c.close()
    assert sid_counts(frames, HASSH_RULES, VARS) == {7: 1}


def test_eve_alerts_carry_the_ssh_object():
    from helpers import sig_alerts

    from pakemon.output.eve import alert_record
    c = TcpConnection(CLIENT, SERVER, 40022, 22).open()
    c.send(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" + SERVER_KEX, from_client=False)
    c.send(b"SSH-2.0-libssh_0.9.6\r\n" + CLIENT_KEX)
    c.send(bytes(range(200)), from_client=False)
    recs = {a.rule.sid: alert_record(a) for a in sig_alerts(c.close(), HASSH_RULES, VARS)}
    ssh = recs[1]["ssh"]
    assert ssh["client"] == {"proto_version": "2.0", "software_version": "libssh_0.9.6",
                             "hassh": {"hash": CLIENT_HASSH,
                                       "string": "curve25519-sha256;aes128-ctr;"
                                                 "hmac-sha2-256;none"}}
    assert ssh["server"]["software_version"] == "OpenSSH_9.2p1"
    assert ssh["server"]["hassh"]["hash"] == SERVER_HASSH
