"""SMTP client-side parsing: real mails (built with the standard library's
``email`` package) sent with DATA or BDAT, their attachments decoded as
``file.data``, whatever the segmentation, and nothing raises on junk."""

from __future__ import annotations

import base64
import binascii
import time
from email import policy
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import feed_steps
from tls_builders import client_hello, record

from pakemon.applayer import smtp
from pakemon.applayer.smtp import TLS_WINDOW, SmtpEvent, SmtpParser

EXPLOIT = (b"%!PS\n/x { null restore } stopped { } if\n"
           b"errordict /invalidfileaccess get\n"
           b"{ /typecheck } /undefinedfilename 0 put\n")


def mail(payload: bytes = EXPLOIT, filename: str | tuple | None = "invoice.eps",
         maintype: str = "application", subtype: str = "postscript", cte: str | None = None,
         body: str = "see attached") -> EmailMessage:
    m = EmailMessage()
    m["From"] = "a@example.org"
    m["To"] = "b@example.net"
    m["Subject"] = "invoice"
    m.set_content(body)
    kw = {"filename": filename} if filename is not None else {}
    if cte:
        kw["cte"] = cte
    m.add_attachment(payload, maintype=maintype, subtype=subtype, **kw)
    return m


def wire(m, crlf: bool = True) -> bytes:
    """A message as a client sends it: CRLF line ends (or bare LF)."""
    return m.as_bytes(policy=m.policy.clone(linesep="\r\n" if crlf else "\n"))


def stdlib_files(raw: bytes):
    """The leaf parts' decoded bodies as the stdlib reads ``raw`` itself."""
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    return [part.get_payload(decode=True) for part in msg.walk() if not part.is_multipart()]


def stuff(msg: bytes) -> bytes:
    """DATA transparency (RFC 5321 4.5.2): a line starting with "." gets another."""
    out = b"." + msg if msg.startswith(b".") else msg
    return out.replace(b"\n.", b"\n..")


def envelope(eol: bytes = b"\r\n") -> bytes:
    return b"MAIL FROM:<a@example.org>" + eol + b"RCPT TO:<b@example.net>" + eol


def data_cmd(msg: bytes, eol: bytes = b"\r\n") -> bytes:
    end = b"" if msg.endswith(b"\n") else eol
    return envelope(eol) + b"DATA" + eol + stuff(msg) + end + b"." + eol


def session(*msgs: bytes, eol: bytes = b"\r\n") -> bytes:
    return (b"EHLO client.example" + eol + b"".join(data_cmd(m, eol) for m in msgs)
            + b"QUIT" + eol)


def run(data: bytes, step: int = 0, end: bool = True, **kw):
    p = SmtpParser(**kw)
    out = feed_steps(p, data, step)
    if end:
        out += p.end()
    return p, out


def files(events):
    assert all(isinstance(e, SmtpEvent) and e.kind == "file" for e in events)
    return [(e.info["name"], e.info["data"], e.info["content_type"]) for e in events]


# -- MIME -------------------------------------------------------------------


def test_base64_attachment_decoded():
    raw = wire(mail())
    assert b"undefinedfilename" not in raw  # base64 on the wire
    p, events = run(session(raw))
    assert files(events) == [(b"invoice.eps", EXPLOIT, "application/postscript")]
    assert p.counters["messages"] == 1 and p.counters["files"] == 1
    assert p.counters["incomplete"] == 0 and p.counters["mime_errors"] == 0


def test_quoted_printable_attachment():
    payload = bytes(range(256)) + b"=3D not an escape\n" + b"x" * 200
    raw = wire(mail(payload, "blob.bin", "application", "octet-stream", "quoted-printable"))
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    _, events = run(session(raw))
    assert files(events) == [(b"blob.bin", payload, "application/octet-stream")]


def test_root_is_the_attachment():
    m = EmailMessage()
    m["From"] = "a@example.org"
    m["Subject"] = "scan"
    m.set_content(b"%PDF-1.4 evil", maintype="application", subtype="pdf",
                  disposition="attachment", filename="scan.pdf")
    assert not m.is_multipart()
    _, events = run(session(wire(m)))
    assert files(events) == [(b"scan.pdf", b"%PDF-1.4 evil", "application/pdf")]


def test_nested_multiparts_and_an_encapsulated_mail():
    inner = mail(b"inner payload", "inner.exe", "application", "x-msdownload")
    mixed = MIMEMultipart("mixed")
    mixed.attach(MIMEText("plain part"))
    mixed.attach(MIMEApplication(b"\x7fELF deep", Name="deep.elf"))
    alt = MIMEMultipart("alternative")
    alt.attach(MIMEText("text version"))
    alt.attach(MIMEText("<b>html version</b>", "html"))
    alt.attach(mixed)
    top = MIMEMultipart("mixed")
    top["Subject"] = "fwd"
    top.attach(alt)
    top.attach(MIMEMessage(inner))  # message/rfc822: its attachment is a file too
    _, events = run(session(wire(top)))
    assert files(events) == [(b"deep.elf", b"\x7fELF deep", "application/octet-stream"),
                             (b"inner.exe", b"inner payload", "application/x-msdownload")]


def test_rfc2231_filename():
    name = "résumé €.exe"
    raw = wire(mail(b"MZ", ("utf-8", "", name), "application", "x-msdownload"))
    assert b"filename*=utf-8''" in raw
    _, events = run(session(raw))
    assert files(events) == [(name.encode(), b"MZ", "application/x-msdownload")]
    # compat32's own encoder, with RFC 2231 continuations on a long name
    part = MIMEApplication(b"data")
    long_name = "x" * 50 + "ü" * 40 + ".scr"
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", long_name))
    outer = MIMEMultipart()
    outer.attach(MIMEText("hi"))
    outer.attach(part)
    _, events = run(session(wire(outer)))
    assert files(events) == [(long_name.encode(), b"data", "application/octet-stream")]


@pytest.mark.parametrize("case", ["ct-name", "disposition-only", "image-inline", "named-text"])
def test_what_makes_a_file(case):
    if case == "ct-name":  # a name in Content-Type only (no Content-Disposition)
        part = MIMEApplication(b"payload", Name="ct.bin")
        del part["Content-Disposition"]
        expect = (b"ct.bin", "application/octet-stream")
    elif case == "disposition-only":  # attachment without any name
        part = MIMEText("payload in a text attachment")
        part.add_header("Content-Disposition", "attachment")
        expect = (None, "text/plain")
    elif case == "image-inline":  # no name, no disposition, but not text: ours
        part = MIMEBase("image", "png")
        part.set_payload(b"\x89PNG payload")
        expect = (None, "image/png")
    else:  # text/plain with a file name
        part = MIMEText("payload")
        part.add_header("Content-Disposition", "inline", filename="notes.txt")
        expect = (b"notes.txt", "text/plain")
    outer = MIMEMultipart()
    outer.attach(MIMEText("body"))
    outer.attach(part)
    _, events = run(session(wire(outer)))
    got = files(events)
    assert [(n, t) for n, _, t in got] == [expect]
    assert b"payload" in got[0][1]


def test_plain_text_body_is_no_file():
    m = EmailMessage()
    m["Subject"] = "hi"
    m.set_content(EXPLOIT.decode())
    plain = wire(m)
    m.add_alternative("<p>html</p>", subtype="html")
    p, events = run(session(plain, wire(m)))
    assert events == []
    assert p.counters["messages"] == 2 and p.counters["files"] == 0


def test_uuencoded_attachment():
    payload = bytes(range(200))
    lines = [binascii.b2a_uu(payload[i:i + 45]) for i in range(0, len(payload), 45)]
    part = MIMEBase("application", "octet-stream")
    part.set_payload(b"begin 644 x.bin\n" + b"".join(lines) + b"`\nend\n")
    part["Content-Transfer-Encoding"] = "x-uuencode"
    part.add_header("Content-Disposition", "attachment", filename="x.bin")
    outer = MIMEMultipart()
    outer.attach(MIMEText("body"))
    outer.attach(part)
    _, events = run(session(wire(outer)))
    assert files(events) == [(b"x.bin", payload, "application/octet-stream")]


def test_padded_headers_hide_neither_boundary_nor_name():
    # 100 KB of junk parameters before the boundary and the file name: read
    # in one pass, not the stdlib's quadratic one (seconds), and still found
    pad = "; x-junk=value" * 8000
    part = MIMEApplication(b"MZ payload")
    part.replace_header("Content-Type", "application/octet-stream" + pad)
    part["Content-Disposition"] = "attachment" + pad + '; filename="evil.exe"'
    outer = MIMEMultipart()
    outer.attach(part)
    outer.replace_header("Content-Type", "multipart/mixed" + pad
                         + '; boundary="%s"' % outer.get_boundary())
    raw = wire(outer)
    assert len(raw) > 200_000
    t0 = time.perf_counter()
    _, events = run(session(raw))
    assert files(events) == [(b"evil.exe", b"MZ payload", "application/octet-stream")]
    assert time.perf_counter() - t0 < 1


def nested(depth: int):
    part = MIMEApplication(b"deep")
    for _ in range(depth):
        outer = MIMEMultipart()
        outer.attach(part)
        part = outer
    return part


def test_deep_nesting_and_many_files():
    p, events = run(session(wire(nested(smtp.MAX_DEPTH))))
    assert files(events) == [(None, b"deep", "application/octet-stream")]
    assert p.counters["mime_errors"] == 0
    # one level more: the deepest multipart is a leaf (not a file), counted
    p, events = run(session(wire(nested(smtp.MAX_DEPTH + 1))))
    assert events == [] and p.counters["mime_errors"] == 1
    many = MIMEMultipart()
    for i in range(smtp.MAX_FILES + 5):
        many.attach(MIMEApplication(b"%d" % i))
    p, events = run(session(wire(many)))
    assert len(events) == smtp.MAX_FILES and p.counters["files_dropped"] == 5


# -- DATA framing -----------------------------------------------------------


@pytest.mark.parametrize("crlf", [True, False])
def test_dot_stuffing_survives_in_an_unencoded_attachment(crlf):
    payload = b"line1\n.hidden\n.\n..two\n.\r\nend\n"
    raw = wire(mail(payload, "dots.bin", "application", "octet-stream", "8bit"), crlf)
    eol = b"\r\n" if crlf else b"\n"
    assert eol + b"." + eol in raw  # a line that is just "." inside the attachment
    p, events = run(session(raw, eol=eol))
    want = stdlib_files(raw)[1]
    assert b"\n.hidden" in want and eol + b"." + eol in want and b"\n..two" in want
    assert files(events) == [(b"dots.bin", want, "application/octet-stream")]
    assert p.counters["incomplete"] == 0


def test_two_mails_in_one_session_with_rset():
    m1 = wire(mail(b"first", "one.bin", "application", "octet-stream"))
    m2 = wire(mail(b"second", "two.bin", "application", "octet-stream"))
    data = (b"EHLO c\r\n" + envelope() + b"RSET\r\n" + data_cmd(m1) + b"RSET\r\n"
            + data_cmd(m2) + b"QUIT\r\n")
    p, events = run(data)
    assert [(n, d) for n, d, _ in files(events)] == [(b"one.bin", b"first"),
                                                     (b"two.bin", b"second")]
    assert p.counters["messages"] == 2


def test_pipelined_commands_in_one_chunk():
    m1 = wire(mail(b"A" * 100, "a.bin", "application", "octet-stream"))
    m2 = wire(mail(EXPLOIT))
    data = (b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n"
            + stuff(m1) + b".\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n" + stuff(m2)
            + b".\r\nQUIT\r\n")
    p = SmtpParser()
    events = p.feed(data)  # everything before end()
    assert [n for n, _, _ in files(events)] == [b"a.bin", b"invoice.eps"]
    assert p.end() == []
    assert p.counters["commands"] == 9


def test_bytes_like_input():
    data = session(wire(mail()))
    p = SmtpParser()
    events = p.feed(bytearray(data[:100])) + p.feed(memoryview(data)[100:]) + p.end()
    assert files(events)[0][1] == EXPLOIT


def test_commands_case_and_blanks():
    raw = wire(mail())
    data = (b"ehlo c\r\n  mail from:<a@x>\r\n\trcpt to:<b@y>\r\n  data  \r\n" + stuff(raw)
            + b".\r\n")
    _, events = run(data)
    assert files(events)[0][1] == EXPLOIT


@pytest.mark.parametrize("step", [1, 7, 64])
def test_bare_lf_session_like_crlf(step):
    lf = session(wire(mail(), crlf=False), eol=b"\n")
    assert b"\r" not in lf
    _, events = run(lf, step=step)
    _, crlf_events = run(session(wire(mail())), step=step)
    assert files(events) == files(crlf_events) == [(b"invoice.eps", EXPLOIT,
                                                    "application/postscript")]


def test_a_refused_data_does_not_swallow_the_next_mail():
    # RCPT refused, DATA refused (503), the client resets and sends again:
    # the first "mail line" is a command, so the DATA was not accepted.
    data = (b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<nobody@y>\r\nDATA\r\nRSET\r\n"
            + data_cmd(wire(mail())) + b"QUIT\r\n")
    p, events = run(data, step=5)
    assert files(events) == [(b"invoice.eps", EXPLOIT, "application/postscript")]
    assert p.counters["data_refused"] == 1 and p.counters["messages"] == 1


def test_dot_stuffed_first_line_is_mail_content():
    # ".RSET" is not a command to a server in command mode: a real mail line
    msg = b".RSET\r\n" + wire(mail())
    p, events = run(b"DATA\r\n" + stuff(msg) + b".\r\n")
    assert p.counters["data_refused"] == 0 and p.counters["messages"] == 1


# -- BDAT -------------------------------------------------------------------


def bdat(msg: bytes, sizes) -> bytes:
    out, k = [], 0
    for i, size in enumerate(sizes):
        piece = msg[k:k + size] if i < len(sizes) - 1 else msg[k:]
        k += len(piece)
        last = b" LAST" if i == len(sizes) - 1 else b""
        out.append(b"BDAT %d%s\r\n" % (len(piece), last) + piece)
    return b"".join(out)


@pytest.mark.parametrize("step", [0, 1, 13])
def test_bdat_chunks_with_an_end_of_data_inside(step):
    payload = b"before\r\n.\r\nQUIT\r\nDATA\r\n..dots kept\r\nafter\r\n"
    raw = wire(mail(payload, "raw.bin", "application", "octet-stream", "8bit"))
    assert b"\r\n.\r\n" in raw
    data = (b"EHLO c\r\n" + envelope() + bdat(raw, [raw.index(b"\r\n.\r\n") + 3, 50])
            + b"QUIT\r\n")
    p, events = run(data, step=step, end=False)
    assert b"\r\n.\r\nQUIT\r\nDATA\r\n..dots kept" in stdlib_files(raw)[1]
    assert files(events) == [(b"raw.bin", stdlib_files(raw)[1], "application/octet-stream")]
    assert p.counters["bdat_chunks"] == 2 and p.counters["messages"] == 1
    assert p.counters["incomplete"] == 0


def test_bdat_malformed_size_is_ignored_and_zero_last():
    raw = wire(mail())
    data = (envelope() + b"BDAT 12x\r\nBDAT\r\nbdat -5 LAST\r\n" + b"BDAT %d\r\n" % len(raw)
            + raw + b"bdat 0 last\r\n")
    p, events = run(data, end=False)
    assert files(events)[0][1] == EXPLOIT
    assert p.counters["bad_bdat"] == 3 and p.counters["bdat_chunks"] == 2


def root_attachment(payload: bytes = EXPLOIT) -> bytes:
    """A mail that is its attachment: the file ends with the mail only."""
    m = EmailMessage()
    m["Subject"] = "scan"
    m.set_content(payload, maintype="application", subtype="postscript",
                  disposition="attachment", filename="invoice.eps")
    return wire(m)


def test_bdat_without_last_is_examined_when_the_client_moves_on_or_ends():
    raw = root_attachment()
    p = SmtpParser()
    assert p.feed(envelope() + b"BDAT %d\r\n" % len(raw) + raw) == []
    assert files(p.feed(b"RSET\r\n"))[0][1] == EXPLOIT
    assert files(p.feed(envelope() + b"BDAT 100000\r\n" + raw)) == []
    assert files(p.end())[0][1] == EXPLOIT
    assert p.counters["incomplete"] == 2 and p.counters["messages"] == 2


# -- STARTTLS ---------------------------------------------------------------


def tls_session(records: int = 3) -> bytes:
    hello = record(22, client_hello(sni=b"mx.example.net"), b"\x03\x01")
    app = b"".join(record(23, bytes([i]) * 300 + b"\r\nDATA\r\n.\r\n") for i in range(records))
    return hello + record(20, b"\x01") + app


@pytest.mark.parametrize("step", [0, 1, 100])
def test_starttls_then_tls_is_encrypted(step):
    data = b"EHLO c\r\nSTARTTLS\r\n" + tls_session()
    p, events = run(data, step=step, end=False)
    assert p.encrypted and events == []
    assert p.feed(tls_session(200)) == [] and p.end() == []
    assert p.encrypted and p.counters["not_tls"] == 0


def test_starttls_refused_then_clear_commands():
    data = b"EHLO c\r\nSTARTTLS\r\n" + data_cmd(wire(mail())) + b"QUIT\r\n"
    p, events = run(data, step=3)
    assert files(events)[0][1] == EXPLOIT and not p.encrypted


def fake_tls_with_mail_inside(tail: bytes = b"", length: int | None = None) -> bytes:
    # A server that refused STARTTLS reads these bytes as lines: a junk
    # line, then a whole mail sent in clear inside the "record".
    inner = b"\r\n" + data_cmd(wire(mail())) + b"NOOP\r\n"
    header = b"\x16\x03\x01" + (len(inner) if length is None else length).to_bytes(2, "big")
    return b"EHLO c\r\nSTARTTLS\r\n" + header + inner + tail


@pytest.mark.parametrize("step", [0, 1, 50])
def test_a_fake_tls_record_does_not_blind_the_parser(step):
    data = fake_tls_with_mail_inside(b"QUIT\r\n")  # not a record header
    p, events = run(data, step=step, end=False)
    assert files(events)[0][1] == EXPLOIT
    assert not p.encrypted and p.counters["not_tls"] == 1


def test_a_fake_tls_record_cut_by_the_end_of_the_stream():
    data = fake_tls_with_mail_inside(length=16384)
    p, events = run(data, end=False)
    assert events == [] and p.encrypted  # 16 KiB announced, not all there
    assert files(p.end())[0][1] == EXPLOIT
    assert not p.encrypted


def test_clear_text_after_a_long_tls_session_resumes_at_a_line():
    hello = record(22, client_hello(), b"\x03\x01")
    app = record(23, b"x" * 16000 + b"\r\n")
    data = b"STARTTLS\r\n" + hello + app * (TLS_WINDOW // 16000 + 1)
    p, events = run(data, end=False)
    assert p.encrypted and events == []
    assert files(p.feed(data_cmd(wire(mail()))))[0][1] == EXPLOIT
    assert not p.encrypted and p.counters["not_tls"] == 1


def test_gap_during_the_tls_check_resyncs_in_clear():
    p = SmtpParser()
    p.feed(b"STARTTLS\r\n\x16\x03\x01\x01\x00partial")
    assert p.encrypted
    p.gap()
    assert not p.encrypted
    events = p.feed(b"rest of a line\r\n" + data_cmd(wire(mail())))
    assert files(events)[0][1] == EXPLOIT


def test_gap_in_a_long_tls_session_stays_encrypted():
    hello = record(22, client_hello(), b"\x03\x01")
    p = SmtpParser()
    p.feed(b"STARTTLS\r\n" + hello + record(23, b"x" * 16000) * 3)
    p.gap()
    assert p.feed(data_cmd(wire(mail()))) == [] and p.end() == []
    assert p.encrypted and p.counters["gaps"] == 1


# -- limits, gaps, the end of the stream ------------------------------------


@pytest.mark.parametrize("extra", range(4))
def test_truncated_mail_keeps_the_decoded_prefix(extra):  # (extra: the cut in a quantum)
    payload = bytes(range(256)) * 40
    raw = wire(mail(payload, "big.bin", "application", "octet-stream"))
    cut = raw.index(b"\r\n\r\n", raw.index(b"big.bin")) + 4 + 1000 + extra
    p, events = run(session(raw), max_file=cut)
    assert p.counters["truncated"] == 1 and p.counters["messages"] == 1
    [(name, data, _)] = files(events)
    assert name == b"big.bin"
    assert 700 <= len(data) < len(payload) and payload.startswith(data)


def test_memory_stays_bounded():
    p = SmtpParser(max_file=1000, max_line=100)
    big = b"A" * 100_000
    p.feed(b"NOOP " + big)  # a command line without its LF
    assert p.held() <= 100
    p.feed(b"\r\nDATA\r\nSubject: x\r\nContent-Type: application/x\r\n\r\n")
    for _ in range(20):
        p.feed(big + b"\r\n")
        assert p.held() <= 1000
    [event] = p.end()
    assert event.info["data"] == b"A" * 1000
    assert p.counters["long_lines"] == 1 and p.counters["truncated"] == 1
    assert p.counters["file_truncated"] == 1


def test_long_command_line_is_cut_and_still_a_command():
    raw = wire(mail())
    data = (b"NOOP " + b"x" * 10_000 + b"\r\n" + envelope() + b"DATA" + b" " * 5000 + b"\r\n"
            + stuff(raw) + b".\r\n")
    for step in (0, 1000, 4097):
        p, events = run(data, step=step, max_line=4096)
        assert files(events)[0][1] == EXPLOIT
        assert p.counters["long_lines"] == 2


def test_gap_in_a_mail_then_the_next_mail():
    first = stuff(wire(mail(b"lost", "lost.bin", "application", "octet-stream")))
    second = data_cmd(wire(mail()))
    p = SmtpParser()
    assert p.feed(b"EHLO c\r\n" + envelope() + b"DATA\r\n" + first[:200]) == []
    p.gap()
    events = p.feed(first[260:] + b".\r\n" + second + b"QUIT\r\n") + p.end()
    assert files(events) == [(b"invoice.eps", EXPLOIT, "application/postscript")]
    assert p.counters["gaps"] == 1 and p.counters["lost_messages"] == 1


def test_end_examines_a_mail_without_its_final_dot():
    raw = wire(mail())
    raw = raw[:raw.rindex(b"\r\n--")]  # (its attachment ends with the mail)
    data = b"EHLO c\r\n" + envelope() + b"DATA\r\n" + stuff(raw)
    p = SmtpParser()
    assert p.feed(data) == []
    assert files(p.end()) == [(b"invoice.eps", EXPLOIT, "application/postscript")]
    assert p.counters["incomplete"] == 1
    assert p.end() == [] and p.feed(b"DATA\r\n") == []


def test_malformed_base64_and_mime_do_not_raise():
    msg = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Type: application/x; name*=bogus-charset''%FF%FE\r\n"
           b"Content-Transfer-Encoding:  BASE64 \r\n\r\n"
           b"QUJD!!RE\xff\xfeVG=\r\n--b\r\nContent-Type: text/plain\r\n\r\ntext\r\n")
    _, events = run(session(msg))
    [(name, data, ctype)] = files(events)
    assert ctype == "application/x" and data == b"ABCDEF"


# -- properties -------------------------------------------------------------

SESSION = (
    b"EHLO c\r\nSTARTTLS\r\n" + data_cmd(wire(mail(b"one\r\n.\r\n", "1.bin", cte="8bit")))
    + b"RSET\r\n" + envelope() + bdat(wire(mail()), [40, 300, 1]) + b"NOOP " + b"y" * 300
    + b"\r\n" + data_cmd(wire(mail(b"two", "2.bin", "image", "gif"), crlf=False), b"\n")
    + b"DATA\r\nRSET\r\n" + envelope() + b"DATA\r\n" + stuff(wire(mail(b"three", "3.bin")))
)


REF_PARSER, REF_EVENTS = run(SESSION, max_line=128)


def test_reference_session():
    p, events = REF_PARSER, REF_EVENTS
    assert [n for n, _, _ in files(events)] == [b"1.bin", b"invoice.eps", b"2.bin", b"3.bin"]
    c = p.counters
    assert (c["messages"], c["incomplete"], c["data_refused"], c["long_lines"]) == (4, 1, 1, 1)


def feed_cut(p: SmtpParser, stream: bytes, cuts) -> list:
    """The events of ``stream`` fed in pieces cut at ``cuts`` (taken modulo
    its length + 1), then end()."""
    out = []
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for a, b in zip(bounds, bounds[1:]):
        out += p.feed(stream[a:b])
    return out + p.end()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, len(SESSION)), max_size=40))
def test_any_segmentation_gives_the_same_events(cuts):
    p = SmtpParser(max_line=128)
    assert feed_cut(p, SESSION, cuts) == REF_EVENTS
    assert p.counters == REF_PARSER.counters


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2000), max_size=30))
def test_fake_tls_any_segmentation(cuts):
    data = fake_tls_with_mail_inside(b"QUIT\r\n")
    out = feed_cut(SmtpParser(), data, cuts)
    assert [d for _, d, _ in files(out)] == [EXPLOIT]


TOKENS = [b"DATA\r\n", b"BDAT 5\r\n", b"BDAT 3 LAST\r\n", b"bdat 0 last\n", b"STARTTLS\r\n",
          b".\r\n", b".\n", b"..", b".", b"\r\n", b"\n", b"\r", b"RSET\r\n", b"MAIL FROM:<a>\r\n",
          b"\x16\x03\x01\x00\x05", b"\x17\x03\x03\x00\x02", b"\x16\x03\x01\x00\x30",
          b"Content-Type: application/x\r\n\r\n", b"Content-Disposition: attachment\r\n",
          b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", b"--b--\r\n",
          b"Content-Transfer-Encoding: base64\r\n", b"QUJD", b"x" * 70]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=6)), max_size=60),
       st.lists(st.integers(0, 4000), max_size=20), st.sampled_from([8, 40, TLS_WINDOW]))
def test_token_soup_same_events_in_any_segmentation(tokens, cuts, window):
    data = b"".join(tokens)
    with mock.patch.object(smtp, "TLS_WINDOW", window):
        ref, whole = run(data, max_file=200, max_line=64)
        bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        p = SmtpParser(max_file=200, max_line=64)
        out = []
        for a, b in zip(bounds, bounds[1:]):
            out += p.feed(data[a:b])
        out += p.end()
    assert out == whole and p.counters == ref.counters and p.encrypted == ref.encrypted


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 64), st.booleans())
def test_random_bytes_never_raise(data, step, gap):
    prefixes = [b"", b"DATA\r\n", b"BDAT 100 LAST\r\n", b"STARTTLS\r\n",
                b"DATA\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"]
    for prefix in prefixes:
        p = SmtpParser(max_file=300, max_line=64)
        blob = prefix + data
        for i in range(0, len(blob), step):
            p.feed(blob[i:i + step])
            if gap and i == step:
                p.gap()
        for ev in p.end():
            assert isinstance(ev.info["data"], bytes)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SESSION) - 1), st.integers(0, 7)), min_size=1,
                max_size=12),
       st.integers(16, 400))
def test_bit_flipped_sessions_never_raise(flips, step):
    data = bytearray(SESSION)
    for at, bit in flips:
        data[at] ^= 1 << bit
    p = SmtpParser(max_line=128)
    for i in range(0, len(data), step):
        for ev in p.feed(data[i:i + step]):
            assert isinstance(ev.info["data"], bytes)
    p.end()


def test_base64_on_the_wire_matches_the_stdlib():
    payload = bytes(range(256)) * 3
    raw = wire(mail(payload, "x.bin", "application", "octet-stream"))
    assert base64.b64encode(payload)[:40] in raw.replace(b"\r\n", b"")
    _, events = run(session(raw), step=11)
    assert files(events)[0][1] == payload


def test_envelope_events_take_the_argument_as_suricata_does():
    from pakemon.applayer.smtp import SmtpParser
    p = SmtpParser(envelope=True)
    ev = p.feed(b"EHLO  host.example extra\r\nmail from: <a@x> SIZE=10\r\n"
                b"RCPT TO:<b@y>\r\nRCPT  TO:<c@z>\r\nMAIL FROM:\r\nNOOP\r\n"
                b"DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n")
    assert [(e.kind, e.info.get("value")) for e in ev] == [
        ("helo", b"host.example"), ("mail_from", b"<a@x>"), ("rcpt_to", b"<b@y>"),
        ("mail_from", b""), ("mail_end", None)]
    # not asked for: only files, as before
    assert SmtpParser().feed(b"EHLO h\r\nMAIL FROM:<a@x>\r\n") == []
