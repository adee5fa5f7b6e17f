"""SMTP ``file.data`` rules (ET Open's Ghostscript rules, verbatim) on real
mails (built with the standard library's ``email`` package) sent in TCP
sessions to port 25 through the pipeline.

``file.data`` of SMTP is each attachment of a mail, decoded (base64,
quoted-printable): the exploit inside a base64 attachment matches, the same
text in a plain body does not, and nothing is lost to segmentation,
pipelining, BDAT chunking or a mail cut off before its final dot.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest

from helpers import sid_counts

from pakemon.detect.sigengine import SigRuleSet
from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import TcpConnection

RULES = """\
alert smtp $EXTERNAL_NET any -> $SMTP_SERVERS any (msg:"ET EXPLOIT Ghostscript illegal read \
undefinedfilename attempt (SMTP)"; flow:to_server,established; file_data; \
content:"undefinedfilename"; fast_pattern; content:"errordict"; content:"invalidfileaccess"; \
content:"typecheck"; pcre:"/errordict\\s+\\x2Finvalidfileaccess/smi"; classtype:attempted-user; \
sid:2026086; rev:2;)
alert smtp $EXTERNAL_NET any -> $SMTP_SERVERS any (msg:"ET EXPLOIT Ghostscript setpattern type \
confusion attempt (SMTP)"; flow:to_server,established; file_data; content:"16#"; \
content:"setpattern"; distance:0; pcre:"/16#[^s]\\d+\\s*\\x3E\\x3E\\s*setpattern/smi"; \
classtype:attempted-user; sid:2026090; rev:2;)
"""
VARS = {"HOME_NET": "10.0.0.0/8", "EXTERNAL_NET": "!$HOME_NET", "SMTP_SERVERS": "$HOME_NET"}

EXPLOIT = (b"%!PS\n/x { null restore } stopped { } if\n"
           b"errordict /invalidfileaccess get\n"
           b"{ /typecheck } /undefinedfilename 0 put\n")
PATTERN = b"%!PS\n<< /PatternType 1 /PaintType 16#a1 >> setpattern\n"


def mail(payload: bytes = EXPLOIT, filename="invoice.eps", cte=None, body_only=False):
    m = EmailMessage()
    m["From"] = "a@example.org"
    m["To"] = "b@example.net"
    m["Subject"] = "invoice"
    if body_only:
        m.set_content(payload.decode())
    else:
        m.set_content("see attached")
        kw = {"filename": filename}
        if cte:
            kw["cte"] = cte
        m.add_attachment(payload, maintype="application", subtype="postscript", **kw)
    return m.as_bytes()


def stuff(msg: bytes) -> bytes:
    """DATA's transparency: lines starting with a dot get another."""
    lines = msg.replace(b"\r\n", b"\n").split(b"\n")
    return b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)


def session(msgs, segment=None, pipelined=False, bdat=None, cut=False, port=25):
    c = TcpConnection("198.51.100.9", "10.0.0.25", 40125, port).open()
    c.send(b"220 mx.example.net ESMTP\r\n", from_client=False)
    c.send(b"EHLO client.example\r\n")
    c.send(b"250-mx.example.net\r\n250 PIPELINING\r\n", from_client=False)
    for msg in msgs:
        env = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
        if bdat:
            c.send(env, segment=segment)
            for k in range(0, len(msg), bdat):
                piece = msg[k:k + bdat]
                last = b" LAST" if k + bdat >= len(msg) else b""
                c.send(b"BDAT %d%s\r\n" % (len(piece), last) + piece, segment=segment)
            continue
        data = stuff(msg) + (b"" if cut else b"\r\n.\r\n")
        if pipelined:
            c.send(env + b"DATA\r\n" + data, segment=segment)
        else:
            c.send(env + b"DATA\r\n", segment=segment)
            c.send(b"354 go ahead\r\n", from_client=False)
            c.send(data, segment=segment)
            c.send(b"250 queued\r\n", from_client=False)
    if not cut:
        c.send(b"QUIT\r\n")
    return c.close()


def run(frames, rules=RULES):
    rs, skipped, errors = parse_suricata_rules(rules, vars=VARS)
    assert not errors and not skipped, (errors, skipped)
    sig = SigRuleSet(rs)
    assert not sig.inert(), sig.inert()
    return sid_counts(frames, "", sig_rules=sig)


@pytest.mark.parametrize("cte", [None, "quoted-printable", "7bit"])
def test_exploit_in_an_attachment_alerts(cte):
    assert run(session([mail(cte=cte)])) == {2026086: 1}


def test_base64_hides_nothing():
    raw = mail()
    assert b"undefinedfilename" not in raw  # on the wire it is base64
    assert base64.b64encode(EXPLOIT)[:20] in raw.replace(b"\n", b"")
    assert run(session([mail()])) == {2026086: 1}


def test_the_same_text_in_the_body_is_not_a_file():
    assert run(session([mail(body_only=True)])) == {}


@pytest.mark.parametrize("segment", [1, 3, 536])
def test_whatever_the_segmentation(segment):
    assert run(session([mail()], segment=segment)) == {2026086: 1}


def test_pipelined_and_two_mails_in_one_session():
    frames = session([mail(b"%!PS\nharmless\n"), mail(), mail(PATTERN)], pipelined=True)
    assert run(frames) == {2026086: 1, 2026090: 1}


def test_bdat_chunks():
    assert run(session([mail()], bdat=300)) == {2026086: 1}


def test_a_mail_cut_before_its_final_dot_is_still_read():
    assert run(session([mail()], cut=True)) == {2026086: 1}


def test_rules_of_the_other_direction_do_not_fit():
    # the same mail, rules written for mail sent out from the inside
    rules = RULES.replace("$EXTERNAL_NET any -> $SMTP_SERVERS", "$HOME_NET any -> $EXTERNAL_NET")
    assert run(session([mail()]), rules) == {}


# ------------------------------------------------ the envelope (Suricata 8)

ENVELOPE_RULES = """\
alert smtp any any -> any any (msg:"helo"; smtp.helo; content:"client.example"; sid:1;)
alert smtp any any -> any any (msg:"from"; smtp.mail_from; content:"<a@example.org>"; \
isdataat:!1,relative; sid:2;)
alert smtp any any -> any any (msg:"rcpt"; smtp.rcpt_to; content:"@example.net>"; endswith; \
sid:3;)
alert smtp any any -> any any (msg:"second rcpt, with from"; smtp.mail_from; \
content:"a@"; smtp.rcpt_to; content:"<c@"; startswith; sid:4;)
alert smtp any any -> any any (msg:"no such rcpt"; smtp.rcpt_to; content:"nobody"; sid:5;)
alert smtp any any -> any any (msg:"rcpt and file"; smtp.rcpt_to; content:"<c@"; \
file_data; content:"undefinedfilename"; sid:6;)
"""


def envelope_session(n_mails=2, segment=None):
    c = TcpConnection("198.51.100.9", "10.0.0.25", 40125, 25).open()
    c.send(b"220 mx.example.net ESMTP\r\n", from_client=False)
    c.send(b"EHLO client.example\r\n", segment=segment)
    for _ in range(n_mails):
        c.send(b"MAIL FROM:<a@example.org> SIZE=1000\r\nRCPT TO:<b@example.net>\r\n"
               b"rcpt to: <c@example.net>\r\nDATA\r\n", segment=segment)
        c.send(b"354 go ahead\r\n", from_client=False)
        c.send(stuff(mail()) + b"\r\n.\r\n", segment=segment)
    c.send(b"QUIT\r\n")
    return c.close()


@pytest.mark.parametrize("segment", [None, 5])
def test_envelope_buffers_alert_once_per_mail(segment):
    # each mail is a transaction: every rule once per mail; the HELO name is
    # the session's, so it reads in the second mail too
    assert run(envelope_session(2, segment), ENVELOPE_RULES) == {1: 2, 2: 2, 3: 2, 4: 2, 6: 2}


def test_envelope_without_a_mail_still_alerts():
    c = TcpConnection("198.51.100.9", "10.0.0.25", 40125, 25).open()
    c.send(b"220 mx ESMTP\r\n", from_client=False)
    c.send(b"HELO client.example\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n")
    assert run(c.close(), ENVELOPE_RULES) == {1: 1, 2: 1}


def test_eve_alerts_carry_the_smtp_object():
    from helpers import sig_alerts

    from pakemon.output.eve import alert_record
    alerts = sig_alerts(envelope_session(1), ENVELOPE_RULES, VARS)
    by_sid = {a.rule.sid: alert_record(a) for a in alerts}
    assert by_sid[1]["smtp"] == {"helo": "client.example"}  # at EHLO: nothing more yet
    assert by_sid[6]["smtp"] == {"helo": "client.example", "mail_from": "<a@example.org>",
                                 "rcpt_to": ["<b@example.net>", "<c@example.net>"]}


def test_a_file_alert_carries_its_mails_envelope():
    from helpers import sig_alerts

    from pakemon.output.eve import alert_record
    recs = [alert_record(a) for a in sig_alerts(envelope_session(2), RULES, VARS)]
    assert len(recs) == 2  # the Ghostscript rule, once per mail
    assert all(r["smtp"] == {"helo": "client.example", "mail_from": "<a@example.org>",
                             "rcpt_to": ["<b@example.net>", "<c@example.net>"]} for r in recs)
