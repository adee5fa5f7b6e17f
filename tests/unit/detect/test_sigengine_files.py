"""The file keywords, as Suricata's file tracking sees an HTTP or SMTP
transaction: a response body is a file named by Content-Disposition, else
by the request's URI path; a PUT or POST body is one named by the URI path,
a multipart/form-data part with a file name one of its own; an SMTP
attachment is one by its name. ``filename``/``fileext`` (and the
``file.name`` buffer), ``filesize``, ``filemd5``/``filesha1``/
``filesha256`` and ``filemagic`` must all hold for one file."""

from __future__ import annotations

import hashlib

import pytest

from pakemon.applayer.http_response import BODY_LIMIT
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection
from test_sigengine import run, sids
from test_sigengine_smtp import mail, session

PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + \
    b"PE\x00\x00" + b"\x00" * 200
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def download(target: bytes, body: bytes, headers: bytes = b"", port: int = 40000):
    c = TcpConnection("10.0.0.1", "10.0.0.2", port, 80).open()
    c.send(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    c.send(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: %d\r\n\r\n" % len(body) + body,
           from_client=False)
    c.send(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")  # (the response is read by then)
    return c.close()


def upload(request: bytes, port: int = 41000):
    c = TcpConnection("10.0.0.1", "10.0.0.2", port, 80).open()
    c.send(request)
    c.send(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", from_client=False)
    return c.close()


A = "alert http any any -> any any"
NAME_RULES = "".join(f"{A} ({body})\n" for body in (
    'msg:"exe"; flow:to_client; fileext:"exe"; sid:1;',
    'msg:"invoice"; filename:"INVOICE"; sid:2;',
    'msg:"not pdf"; flow:to_client; fileext:!"pdf"; sid:3;',
    'msg:"buffer"; file.name; content:"/dl/"; startswith; sid:4;',
))


@pytest.mark.parametrize("prefilter", [True, False])
def test_a_download_is_named_by_content_disposition_else_by_its_path(prefilter):
    cases = [
        (download(b"/dl/setup.exe?v=1", PE), {1: 1, 3: 1, 4: 1}),
        (download(b"/get?id=7", PE, b'Content-Disposition: attachment; filename="invoice.exe"'
                  b"\r\n"), {1: 1, 2: 1, 3: 1}),
        (download(b"/get?id=8", PDF, b"Content-Disposition: attachment; filename=invoice.pdf"
                  b"\r\n"), {2: 1}),
        (download(b"/dl/a%2Eexe", PE), {1: 1, 3: 1, 4: 1}),  # the path as normalized
        (download(b"/dl/readme.txt.pdf", PDF), {4: 1}),
    ]
    for i, (frames, want) in enumerate(cases):
        assert sids(run(NAME_RULES, frames, prefilter=prefilter)) == want, i


def test_a_response_without_a_body_is_no_file():
    c = TcpConnection("10.0.0.1", "10.0.0.2", 40000, 80).open()
    c.send(b"GET /x.exe HTTP/1.1\r\nHost: h\r\n\r\n")
    c.send(b"HTTP/1.1 304 Not Modified\r\n\r\n", from_client=False)
    c.send(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
    assert sids(run(NAME_RULES, c.close())) == {}


SIZE_RULES = "".join(f"{A} ({body})\n" for body in (
    'msg:"big"; flow:to_client; filesize:>1000; sid:1;',
    'msg:"small"; flow:to_client; filesize:<1000; sid:2;',
    'msg:"exact"; flow:to_client; filesize:268; sid:3;',
    'msg:"range"; flow:to_client; filesize:100<>300; sid:4;',
    'msg:"units"; flow:to_client; filesize:>99KB; sid:5;',
))


def test_filesize_of_whole_and_of_cut_files():
    assert len(PE) == 268
    assert sids(run(SIZE_RULES, download(b"/a", PE))) == {2: 1, 3: 1, 4: 1}
    assert sids(run(SIZE_RULES, download(b"/a", b"x" * 5000))) == {1: 1}
    # past the body limit: larger than that, but its size is not known
    big = b"y" * (BODY_LIMIT + 5000)
    assert sids(run(SIZE_RULES, download(b"/a", big))) == {1: 1, 5: 1}


def test_digests_from_list_files(tmp_path):
    (tmp_path / "bad.md5").write_text("# known bad\n" + hashlib.md5(PE).hexdigest()
                                      + "  setup.exe\n" + "0" * 32 + "\n")
    (tmp_path / "bad.sha256").write_text(hashlib.sha256(PDF).hexdigest().upper() + "\n")
    (tmp_path / "ok.sha1").write_text(hashlib.sha1(PE).hexdigest() + "\n")
    rules = "".join(f"{A} ({body})\n" for body in (
        f'msg:"md5"; flow:to_client; filemd5:{tmp_path}/bad.md5; sid:1;',
        f'msg:"sha256"; flow:to_client; filesha256:{tmp_path}/bad.sha256; sid:2;',
        f'msg:"not listed"; flow:to_client; filesha1:!{tmp_path}/ok.sha1; sid:3;',
    ))
    assert sids(run(rules, download(b"/a", PE))) == {1: 1}
    assert sids(run(rules, download(b"/a", PDF))) == {2: 1, 3: 1}
    # a file cut at the body limit has no digest: neither listed nor not
    assert sids(run(rules, download(b"/a", b"z" * (BODY_LIMIT + 1)))) == {}


def test_filemagic_reads_the_file_type():
    rules = "".join(f"{A} ({body})\n" for body in (
        'msg:"pe"; flow:to_client; filemagic:"executable"; sid:1;',
        'msg:"pdf"; flow:to_client; filemagic:"pdf document"; sid:2;',
        'msg:"exe named pdf"; flow:to_client; fileext:"pdf"; filemagic:"MS-DOS"; sid:3;',
    ))
    assert sids(run(rules, download(b"/a.bin", PE))) == {1: 1}
    assert sids(run(rules, download(b"/a.pdf", PDF))) == {2: 1}
    assert sids(run(rules, download(b"/b.pdf", PE))) == {1: 1, 3: 1}


UP_RULES = "".join(f"{A} ({body})\n" for body in (
    'msg:"php upload"; flow:to_server; fileext:"php"; sid:1;',
    'msg:"jsp put"; flow:to_server; file.name; content:"/upload/"; fileext:"jsp"; sid:2;',
    'msg:"big upload"; flow:to_server; filesize:>20; sid:3;',
))


def test_uploads_multipart_parts_and_put_bodies():
    shell = b"<?php system($_GET['c']); ?>"
    form = (b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"s.php\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + shell + b"\r\n--XyZ--\r\n")
    post = (b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; "
            b"boundary=XyZ\r\nContent-Length: %d\r\n\r\n" % len(form) + form)
    assert sids(run(UP_RULES, upload(post))) == {1: 1, 3: 1}
    put = b"PUT /upload/x.jsp HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n<% x %>\r\n"
    assert sids(run(UP_RULES, upload(put, 41001))) == {2: 1}
    # a form without a file part has no file; a GET body is none either
    plain = b"note=hello&x=" + b"1" * 30
    post2 = (b"POST /form.php HTTP/1.1\r\nHost: h\r\nContent-Type: application/"
             b"x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(plain) + plain)
    assert sids(run(UP_RULES, upload(post2, 41002))) == {1: 1, 3: 1}  # (named by its path)
    get = b"GET /a.php HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n" + b"q" * 40
    assert sids(run(UP_RULES, upload(get, 41003))) == {}


def test_smtp_attachments_by_name():
    rules = ('alert smtp any any -> any any (msg:"eps"; fileext:"eps"; sid:1;)\n'
             'alert smtp any any -> any any (msg:"zip"; fileext:"zip"; sid:2;)\n'
             'alert smtp any any -> any any (msg:"eps big"; fileext:"EPS"; filesize:>10; '
             'file.data; content:"restore"; sid:3;)\n')
    assert sids(run(rules, session([mail()]))) == {1: 1, 3: 1}
    assert sids(run(rules, session([mail(filename="a.zip")]))) == {2: 1}


@pytest.mark.parametrize("body, message", [
    ("filemd5:nowhere.md5;", "cannot read nowhere.md5"),
    ("filesha256:{d}/short.lst;", "short.lst:1: not a sha256"),
    ("filemd5:{d}/empty.lst;", "holds no md5"),
    ("filesize:lots;", "filesize"),
])
def test_bad_file_keywords_are_rule_errors(tmp_path, body, message):
    (tmp_path / "short.lst").write_text("abcd\n")
    (tmp_path / "empty.lst").write_text("# nothing\n")
    rules, skipped, errors = parse_suricata_rules(
        f'{A} (msg:"x"; {body.format(d=tmp_path)} sid:1;)', str(tmp_path / "t.rules"))
    assert not rules and not skipped and len(errors) == 1, (errors, skipped)
    assert message in str(errors[0])


def test_file_keywords_need_a_protocol_with_files():
    rules, skipped, errors = parse_suricata_rules(
        'alert tls any any -> any any (msg:"x"; tls.sni; content:"a"; filename:"b"; sid:1;)')
    assert not rules and "needs an http or smtp rule" in str(errors[0])


def _stored(alerts):
    return sorted((a.rule.sid, f.name, f.data) for a in alerts for f in a.extra.get("files", ()))


def test_filestore_puts_the_matching_files_on_the_alert():
    """scope file: the files the rule's file keywords matched; with none,
    the transaction's; tx: all of them; a direction picks a response
    transaction's request files."""
    form = (b"--B\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.exe\"\r\n\r\n"
            + PE + b"\r\n--B\r\nContent-Disposition: form-data; name=\"b\"; filename=\"b.txt\""
            b"\r\n\r\ntext\r\n--B--\r\n")
    post = (b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=B\r\n"
            b"Content-Length: %d\r\n\r\n" % len(form) + form)
    rules = "".join(f"{A} ({body})\n" for body in (
        'msg:"exe part"; flow:to_server; fileext:"exe"; filestore; sid:1;',
        'msg:"all parts"; flow:to_server; fileext:"exe"; filestore:request,tx; sid:2;',
        'msg:"no file keyword"; flow:to_server; http.method; content:"POST"; filestore; '
        'sid:3;',
        'msg:"the upload of a response"; flow:to_client; http.stat_code; content:"201"; '
        'filestore:request,tx; sid:4;',
    ))
    alerts = run(rules, upload(post))
    exe, txt = (1, b"a.exe", PE), (1, b"b.txt", b"text")
    assert _stored(alerts) == sorted([exe, (2,) + exe[1:], (2,) + txt[1:], (3,) + exe[1:],
                                      (3,) + txt[1:], (4,) + exe[1:], (4,) + txt[1:]])


def test_filestore_options():
    rules, skipped, errors = parse_suricata_rules("".join(
        f'{A} (msg:"x"; {body} sid:{i};)\n' for i, body in enumerate((
            "filestore;", "filestore:to_client,tx;", "filestore:both;",
            "filestore:response,ssn;", "filestore:sideways;", "filestore:both,forever;"), 1)))
    assert [r.filestore for r in rules] == [(None, "file"), ("response", "tx"), ("both", "file")]
    assert [(s.sid, s.keyword) for s in skipped] == [(4, "filestore")]
    assert [e.message.split(":")[0] for e in errors] == ["filestore"] * 2
