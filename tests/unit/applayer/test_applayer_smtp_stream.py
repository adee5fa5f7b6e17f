"""SMTP MIME read as it streams: a limit per file instead of per mail (a big
first attachment hides nothing), files out as soon as their part ends,
memory bounded whatever the mail, its lines or its nesting, and the same
events whatever the segmentation. Mails are built with the standard
library's ``email`` package (by hand where it cannot write the case)."""

from __future__ import annotations

import binascii
from email import encoders
from email import policy
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_applayer_smtp import (EXPLOIT, bdat, data_cmd, envelope, feed_cut, files, mail, run,
                                session, stuff, wire)

from pakemon.applayer import smtp
from pakemon.applayer.smtp import SmtpParser

MiB = 1 << 20
PAD = bytes(range(256))


def attachments(*parts, subject: str = "invoice") -> bytes:
    """A multipart/mixed mail: a text body then ``parts`` (name, payload,
    subtype, encoder)."""
    outer = MIMEMultipart()
    outer["Subject"] = subject
    outer.attach(MIMEText("see attached"))
    for name, payload, subtype, encoder in parts:
        outer.attach(MIMEApplication(payload, subtype, encoder, Name=name))
    return wire(outer)


def padded_mail(pad_size: int) -> bytes:
    return attachments(("padding.bin", PAD * (pad_size // len(PAD)), "octet-stream",
                        encoders.encode_base64),
                       ("invoice.eps", EXPLOIT, "postscript", encoders.encode_base64))


def feed_all(p: SmtpParser, data: bytes, step: int):
    out, peak = [], 0
    for i in range(0, len(data), step):
        out += p.feed(data[i:i + step])
        peak = max(peak, p.held())
    return out + p.end(), peak


def stdlib_files(raw: bytes):
    """The files of ``raw`` as the standard library reads the whole mail."""
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        info = smtp._file_info(part)
        if info is not None:
            out.append((info[0], part.get_payload(decode=True), info[1]))
    return out


def every_split(data: bytes, **kw):
    """The events of ``data`` fed whole, then cut in two (and in three around
    one byte) at every offset: all the same."""
    _, ref = run(data, **kw)
    for k in range(len(data) + 1):
        p = SmtpParser(**kw)
        out = p.feed(data[:k]) + p.feed(data[k:k + 1]) + p.feed(data[k + 1:]) + p.end()
        assert out == ref, k
    return ref


# -- per-file limits ----------------------------------------------------------


def test_a_big_first_attachment_hides_nothing():
    # 3 MiB of padding first, the exploit in the second attachment: the mail
    # is far past what a per-mail limit kept, each file is still inspected
    raw = padded_mail(3 * MiB)
    assert len(raw) > 4 * MiB and b"undefinedfilename" not in raw
    for kw in ({}, {"max_file": MiB}):
        p, events = run(session(raw), step=64 * 1024, **kw)
        [(n1, d1, t1), (n2, d2, t2)] = files(events)
        assert (n1, t1, len(d1)) == (b"padding.bin", "application/octet-stream", MiB)
        assert d1 == (PAD * (MiB // len(PAD)))
        assert (n2, d2, t2) == (b"invoice.eps", EXPLOIT, "application/postscript")
        c = p.counters
        assert (c["files"], c["file_truncated"], c["truncated"], c["messages"]) == (2, 1, 1, 1)


@pytest.fixture(scope="module")
def big_session():
    data = session(padded_mail(15 * MiB))
    assert len(data) > 20 * MiB
    return data


def test_memory_stays_bounded_while_a_20_mib_mail_streams(big_session):
    p = SmtpParser()
    events, peak = feed_all(p, big_session, 64 * 1024)
    assert peak <= p.max_file + p.max_header + 64 * 1024
    assert [(n, len(d)) for n, d, _ in files(events)] == [(b"padding.bin", MiB),
                                                           (b"invoice.eps", len(EXPLOIT))]
    # smaller limits hold less, and still find the exploit
    p = SmtpParser(max_file=4096, max_header=2048)
    events, peak = feed_all(p, big_session, 64 * 1024)
    assert peak <= 4096 + 2048 + 1024
    assert files(events)[1][1] == EXPLOIT


def test_a_file_is_out_as_soon_as_its_part_ends():
    raw = attachments(("invoice.eps", EXPLOIT, "postscript", encoders.encode_base64),
                      ("later.bin", b"x" * 5000, "octet-stream", encoders.encode_base64))
    data = b"EHLO c\r\n" + envelope() + b"DATA\r\n" + stuff(raw)
    boundary = raw[raw.index(b"boundary=\"") + 10:].partition(b'"')[0]
    # the boundary line after the exploit's part, up to its LF
    eol = data.index(b"\n", data.index(b"--" + boundary, data.index(b"invoice.eps")))
    p = SmtpParser()
    assert p.feed(data[:eol]) == []  # (not yet known to be a boundary line)
    assert files(p.feed(data[eol:eol + 1])) == [(b"invoice.eps", EXPLOIT,
                                                 "application/postscript")]
    rest = p.feed(data[eol + 1:])  # the last part ends at its closing boundary
    assert [n for n, _, _ in files(rest)] == [b"later.bin"]
    assert p.counters["messages"] == 0  # (the mail itself is not over)
    assert p.feed(b".\r\n") == [] and p.counters["messages"] == 1


def test_gap_keeps_the_files_already_out():
    raw = attachments(("one.bin", b"first", "octet-stream", encoders.encode_base64),
                      ("two.bin", b"second" * 100, "octet-stream", encoders.encode_base64))
    data = b"EHLO c\r\n" + envelope() + b"DATA\r\n" + stuff(raw)
    p = SmtpParser()
    events = p.feed(data[:data.index(b"two.bin") + 200])
    assert [n for n, _, _ in files(events)] == [b"one.bin"]
    p.gap()  # the mail in progress is lost, with its open file
    events = p.feed(b"junk\r\n.\r\n" + data_cmd(wire(mail()))) + p.end()
    assert [n for n, _, _ in files(events)] == [b"invoice.eps"]
    assert p.counters["lost_messages"] == 1 and p.counters["messages"] == 1


@pytest.mark.parametrize("ctype", ["text/plain", "application/octet-stream"])
@pytest.mark.parametrize("line", ["letters", "dashes", "boundary-and-blanks"])
def test_a_5_mb_line_is_never_held(ctype, line):
    size = 5 * 10 ** 6
    body = {"letters": b"x" * size, "dashes": b"-" * size,
            "boundary-and-blanks": None}[line]
    part = MIMEBase(*ctype.split("/"))
    part.set_payload("small")
    part["Content-Transfer-Encoding"] = "8bit"
    outer = MIMEMultipart()
    outer.attach(part)
    outer.attach(MIMEApplication(EXPLOIT, "postscript", Name="x.eps"))
    raw = wire(outer)
    boundary = outer.get_boundary().encode()
    if body is None:  # looks like a boundary line for 5 MB, is body in the end
        body = b"--" + boundary + b" \t" * (size // 2) + b"x"
    raw = raw.replace(b"\r\n\r\nsmall", b"\r\n\r\n" + body)
    p = SmtpParser(max_file=64 * 1024)
    events, peak = feed_all(p, session(raw), 64 * 1024)
    assert peak <= 64 * 1024 + 1024
    got = files(events)
    assert got[-1] == (b"x.eps", EXPLOIT, "application/postscript")
    if ctype == "text/plain":
        assert len(got) == 1
    else:
        assert len(got) == 2 and len(got[0][1]) == 64 * 1024
        want = body if line != "boundary-and-blanks" else (
            body[:len(boundary) + 2 + smtp.WS_KEEP])  # (blanks past WS_KEEP: spaces)
        assert got[0][1].startswith(want[:64 * 1024]) and p.counters["file_truncated"] == 1


# -- structure ----------------------------------------------------------------


def test_nested_multiparts_encapsulated_mails_and_digests():
    inner = MIMEMultipart()
    inner["Subject"] = "forwarded"
    inner.attach(MIMEText("inner text"))
    inner.attach(MIMEApplication(b"\x7fELF inner", Name="inner.elf"))
    fwd = MIMEMultipart()
    fwd.attach(MIMEText("fwd text"))
    fwd.attach(MIMEMessage(inner))
    fwd.attach(MIMEApplication(b"PK zip", "zip", Name="fwd.zip"))
    top = MIMEMultipart("alternative")
    top.attach(MIMEText("plain"))
    top.attach(MIMEMessage(fwd))
    top.attach(MIMEApplication(b"MZ top", Name="top.exe"))
    raw = wire(top)
    _, events = run(session(raw), step=7)
    assert files(events) == stdlib_files(raw) == [
        (b"inner.elf", b"\x7fELF inner", "application/octet-stream"),
        (b"fwd.zip", b"PK zip", "application/zip"),
        (b"top.exe", b"MZ top", "application/octet-stream")]


DIGEST = (b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
          b"--d\r\n\r\n"  # a part without headers: a message/rfc822 by default
          b"Content-Type: application/x-one; name=one.bin\r\n\r\nONE\r\n"
          b"--d\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
          b"--d\r\n\r\nSubject: no attachment\r\n\r\nbody\r\n"
          b"--d--\r\n")


def test_digest_parts_are_mails():
    _, events = run(session(DIGEST), step=3)
    assert files(events) == stdlib_files(DIGEST) == [(b"one.bin", b"ONE",
                                                      "application/x-one")]


OUTER_CLOSES_INNER = (
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n"
    b"--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
    b"--inner\r\nContent-Type: application/x-a; name=\"a.bin\"\r\n\r\nAAAA\r\n"
    b"--outer  \t\r\n"  # the inner multipart never closed: this ends it too
    b"Content-Type: application/x-b; name=\"b.bin\"\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\nQkJC\r\nQg==\r\n"
    b"--inner\r\n"  # (no longer open: body)
    b"--outer--\r\nepilogue\r\n--outer\r\nContent-Type: application/x-c\r\n\r\nC\r\n")


def test_an_outer_boundary_closes_the_inner_multiparts():
    _, events = run(session(OUTER_CLOSES_INNER))
    assert files(events) == stdlib_files(OUTER_CLOSES_INNER) == [
        (b"a.bin", b"AAAA", "application/x-a"), (b"b.bin", b"BBBB", "application/x-b")]


def test_boundary_line_forms_and_their_line_ends():
    # blanks after a boundary (as many as wanted), bare LF, a closing
    # boundary without line end at the end of the mail, a boundary line
    # that is body after all; the line end before a boundary is the boundary's
    many = b" " * (smtp.WS_KEEP * 3)
    msg = (b"Content-Type: multipart/mixed; boundary=b\n\n--b" + many + b"\n"
           b"Content-Type: application/x; name=one\n\nline\n--bx\n--b--x\n-- b\n\n"
           b"--b\t\r\nContent-Type: application/x; name=two\r\n\r\n2\r\n\r\n--b--")
    p, events = run(b"BDAT %d LAST\r\n" % len(msg) + msg)
    assert files(events) == stdlib_files(msg) == [
        (b"one", b"line\n--bx\n--b--x\n-- b\n", "application/x"),
        (b"two", b"2\r\n", "application/x")]


def test_a_multipart_without_its_boundary_is_a_leaf():
    # email reads it as a leaf whose body is its preamble: a file if named
    msg = (b"Content-Type: multipart/mixed; boundary=zz; name=\"p.exe\"\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nTVogcGF5bG9hZA==\r\n")
    _, events = run(session(msg))
    assert files(events) == stdlib_files(msg) == [(b"p.exe", b"MZ payload",
                                                   "multipart/mixed")]
    # its own first boundary makes that preamble no file
    msg2 = msg + b"--zz\r\nContent-Type: application/x; name=q\r\n\r\nQ\r\n--zz--\r\n"
    _, events = run(session(msg2))
    assert files(events) == stdlib_files(msg2) == [(b"q", b"Q", "application/x")]


def test_headers_without_a_blank_line_and_headers_only():
    msg = (b"Content-Type: multipart/mixed; boundary=b\r\n--b\r\n"  # first body line
           b"Content-Type: application/x; name=h\r\n"
           b"--b\r\n"  # a part with headers only: an empty file
           b"Content-Type: application/x; name=n\r\nthis line is body\r\nmore\r\n--b--\r\n")
    _, events = run(session(msg), step=5)
    assert files(events) == stdlib_files(msg) == [
        (b"h", b"", "application/x"), (b"n", b"this line is body\r\nmore", "application/x")]


def test_a_depth_bomb_never_raises_and_stays_bounded():
    # 100 nested multiparts, each with its own boundary, an attachment deepest
    raw = wire(_nested(100))
    p, events = run(session(raw), step=64)
    assert events == [] and p.counters["mime_errors"] == 1
    # boundaries as long as they may be: the stack stays within MAX_BOUNDARIES
    depth, size = 40, 1000
    head = b"".join(b"Content-Type: multipart/mixed; boundary=%s\r\n\r\n--%s\r\n"
                    % (b"%03d" % i * (size // 3), b"%03d" % i * (size // 3))
                    for i in range(depth))
    msg = head + b"Content-Type: application/x; name=deep\r\n\r\n" + b"x" * 100_000
    p = SmtpParser()
    events, peak = feed_all(p, b"DATA\r\n" + msg, 1000)
    assert events == [] and p.counters["mime_errors"] == 1
    assert peak <= 3 * smtp.MAX_BOUNDARIES + 2048


def _nested(depth: int):
    part = MIMEApplication(b"deep", Name="deep.bin")
    for _ in range(depth):
        outer = MIMEMultipart()
        outer.attach(part)
        part = outer
    return part


# -- decoding -----------------------------------------------------------------


def uu_part(payload: bytes, name: str) -> MIMEBase:
    lines = [binascii.b2a_uu(payload[i:i + 45]) for i in range(0, len(payload), 45)]
    part = MIMEBase("application", "octet-stream")
    part.set_payload(b"begin 644 x\n" + b"".join(lines) + b"`\nend\n")
    part["Content-Transfer-Encoding"] = "x-uuencode"
    part.add_header("Content-Disposition", "attachment", filename=name)
    return part


def encodings_mail() -> bytes:
    qp_payload = (b"=3D= \xff\x00" * 30 + b"\r\n" + b"y" * 200 + b"\r\ntrailing  \r\n"
                  + EXPLOIT)
    outer = MIMEMultipart()
    outer.attach(MIMEText("body"))
    outer.attach(MIMEApplication(PAD * 3, Name="b64.bin"))
    outer.attach(MIMEApplication(qp_payload, Name="qp.bin", _encoder=encoders.encode_quopri))
    outer.attach(uu_part(PAD, "uu.bin"))
    raw = wire(outer)
    # lenient base64 (junk, a group split over lines) and QP escapes split by lines
    return (raw.replace(b"AAECAwQF", b"AAE!\r\nCA wQF", 1)
            .replace(b"=3D", b"=\r\n3D", 1))


def test_base64_qp_and_uu_decoded_whatever_the_split():
    raw = encodings_mail()
    events = every_split(b"BDAT %d LAST\r\n" % len(raw) + raw)
    got = files(events)
    assert got == stdlib_files(raw)
    assert [n for n, _, _ in got] == [b"b64.bin", b"qp.bin", b"uu.bin"]
    assert got[0][1] == PAD * 3 and got[2][1] == PAD
    assert EXPLOIT.replace(b"\n", b"\r\n") in got[1][1]  # (QP hard line breaks: CRLF)


def test_boundaries_whatever_the_split():
    events = every_split(session(OUTER_CLOSES_INNER, DIGEST), max_line=64)
    assert len(events) == 3


def test_files_are_cut_at_max_file_whatever_the_encoding():
    raw = encodings_mail()
    p, events = run(session(raw), max_file=100)
    got = files(events)
    full = stdlib_files(raw)
    # (x-uuencode is kept as sent, at most max_file bytes, and decoded at the end)
    assert [len(d) for _, d, _ in got[:2]] == [100, 100] and 0 < len(got[2][1]) < 100
    assert all(f[1].startswith(d) for (_, d, _), f in zip(got, full))
    assert p.counters["file_truncated"] == 3 and p.counters["truncated"] == 1


# -- headers ------------------------------------------------------------------


def test_padding_headers_past_max_header_hides_nothing():
    # 200 KB of other fields before the ones read, a Content-Type folded over
    # thousands of lines of junk parameters before its boundary, a
    # Content-Disposition with 100 KB of junk before its file name
    junk = "".join("X-Pad-%d: %s\r\n" % (i, "v" * 60) for i in range(3000))
    fold = ";\r\n x-junk=value" * 8000
    msg = ("Subject: padded\r\n" + junk + "Content-Type: multipart/mixed" + fold
           + "; boundary=\"bb\"\r\n\r\n--bb\r\n" + junk
           + "Content-Disposition: attachment" + "; x=\"a;b\"" * 12000 + "; filename=\"e.exe\""
           + "\r\nContent-Transfer-Encoding: base64" + " " * 70000 + "\r\n\r\n"
           + "TVogcGF5bG9hZA==\r\n--bb--\r\n").encode()
    assert len(msg) > 600_000
    p, events = run(session(msg), step=4096)
    # (email does not trim the encoding's value: it would not decode it)
    assert files(events) == [(b"e.exe", b"MZ payload", "text/plain")]
    assert stdlib_files(msg)[0][0] == b"e.exe"
    assert p.counters["header_truncated"] == 2


def test_constructor_keywords():
    p = SmtpParser(5000, 100)
    assert (p.max_file, p.max_line) == (5000, 100)
    p = SmtpParser(max_file=10, max_header=4096)
    assert (p.max_file, p.max_header) == (10, 4096)
    assert SmtpParser().max_file == MiB and SmtpParser().max_header == 64 * 1024


# -- properties ---------------------------------------------------------------

STREAM_SESSION = (
    b"EHLO c\r\n" + data_cmd(encodings_mail()) + data_cmd(OUTER_CLOSES_INNER)
    + envelope() + bdat(DIGEST, [17, 40]) + data_cmd(wire(_nested(smtp.MAX_DEPTH + 2)))
    + data_cmd(padded_mail(3000), b"\n").replace(b"\r\n", b"\n") + b"DATA\r\n"
    + stuff(attachments(("cut.bin", EXPLOIT * 30, "octet-stream", encoders.encode_quopri))))


@pytest.fixture(scope="module")
def stream_reference():
    return run(STREAM_SESSION, max_file=1000, max_header=1024)


def test_stream_reference(stream_reference):
    p, events = stream_reference
    assert [n for n, _, _ in files(events)] == [
        b"b64.bin", b"qp.bin", b"uu.bin", b"a.bin", b"b.bin", b"one.bin",
        b"padding.bin", b"invoice.eps", b"cut.bin"]
    c = p.counters
    assert (c["messages"], c["incomplete"], c["mime_errors"]) == (6, 1, 1)
    assert c["file_truncated"] == 2 and c["truncated"] == 2  # (padding.bin, cut.bin)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.integers(0, len(STREAM_SESSION)), max_size=60))
def test_multipart_sessions_in_any_segmentation(stream_reference, cuts):
    ref_parser, ref_events = stream_reference
    p = SmtpParser(max_file=1000, max_header=1024)
    assert feed_cut(p, STREAM_SESSION, cuts) == ref_events
    assert p.counters == ref_parser.counters


_LEAF_TYPES = [("application", "octet-stream"), ("text", "plain"), ("image", "png"),
               ("application", "pdf")]
_ENCODERS = [encoders.encode_base64, encoders.encode_quopri, encoders.encode_7or8bit]


@st.composite
def mime_trees(draw, depth=0):
    kind = draw(st.sampled_from(["leaf", "leaf", "multi", "rfc822"] if depth < 3 else ["leaf"]))
    if kind == "multi":
        outer = MIMEMultipart(draw(st.sampled_from(["mixed", "alternative", "related"])))
        for child in draw(st.lists(mime_trees(depth + 1), min_size=0, max_size=3)):
            outer.attach(child)
        if draw(st.booleans()):
            outer.preamble = draw(st.sampled_from(["", "pre\r\n--x", "-- \r\n"]))
        return outer
    if kind == "rfc822":
        return MIMEMessage(draw(mime_trees(depth + 1)))
    maintype, subtype = draw(st.sampled_from(_LEAF_TYPES))
    payload = draw(st.binary(max_size=300)) if draw(st.booleans()) else draw(
        st.text("ab -=\r\n\t.", max_size=200)).encode()
    part = MIMEBase(maintype, subtype)
    part.set_payload(payload)
    encoder = draw(st.sampled_from(_ENCODERS))
    if encoder is encoders.encode_7or8bit and not payload.isascii():
        encoder = encoders.encode_base64
    encoder(part)
    name = draw(st.sampled_from([None, "f.bin", "été.doc"]))
    if name is not None:
        part.add_header("Content-Disposition", "attachment", filename=name)
    return part


def _walk_files(msg: Message):
    return stdlib_files(wire(msg))


@settings(max_examples=150, deadline=None)
@given(mime_trees(), st.lists(st.integers(0, 5000), max_size=8), st.booleans())
def test_files_are_the_ones_email_reads(tree, cuts, crlf):
    raw = wire(tree, crlf)
    want = stdlib_files(raw)
    data = b"BDAT %d LAST\r\n" % len(raw) + raw
    p = SmtpParser()
    out = feed_cut(p, data, cuts)
    assert files(out) == want
    assert p.counters["mime_errors"] == 0
