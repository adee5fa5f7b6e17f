"""The asn1 keyword: the BER checks on Suricata's own test vectors, the
option's parsing, and ET Open's SMB rule (verbatim) on a TCP session."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import sid_counts

from pakemon.detect.asn1 import asn1_matches
from pakemon.detect.suricata_parser import Asn1Check, parse_suricata_rules
from pakemon.lab.traffic import TcpConnection

# X.690 (07/2002) appendix A.3, as Suricata's tests use it (136 bytes)
A3 = (b"\x60\x81\x85\x61\x10\x1a\x04John\x1a\x01P\x1a\x05Smith\xa0\x0a\x1a\x08Director"
      b"\x42\x01\x33\xa1\x0a\x43\x0819710917"
      b"\xa2\x12\x61\x10\x1a\x04Mary\x1a\x01T\x1a\x05Smith\xa3\x42\x31\x1f\x61\x11\x1a\x05Ralph"
      b"\x1a\x01T\x1a\x05Smith\xa0\x0a\x43\x0819571111"
      b"\x31\x1f\x61\x11\x1a\x05Susan\x1a\x01B\x1a\x05Jones\xa0\x0a\x43\x0819590717")


def real(length: int) -> bytes:
    return b"\x09\x82" + length.to_bytes(2, "big") + b"\x05" * length


def test_suricata_vectors():
    assert len(A3) == 136
    assert asn1_matches(A3, oversize_length=132)
    assert not asn1_matches(A3, oversize_length=133)
    assert asn1_matches(b"\x03\x01\xff", bitstring_overflow=True)
    assert not asn1_matches(b"\x03\x01\x07", bitstring_overflow=True)
    assert asn1_matches(real(257), double_overflow=True)
    assert not asn1_matches(real(256), double_overflow=True)


def test_nested_in_application_and_context_tags():
    blob = b"\x60\x07\xa0\x05\x30\x03\x03\x01\xff"  # [APPLICATION 0] { [0] { SEQ { BIT STRING
    assert asn1_matches(blob, bitstring_overflow=True)
    assert not asn1_matches(blob, double_overflow=True)
    # indefinite length, then end-of-contents
    assert asn1_matches(b"\x30\x80\x03\x01\xff\x00\x00", bitstring_overflow=True)


def test_broken_or_truncated_objects_are_not_checked():
    assert not asn1_matches(b"\x03\x05\xff", bitstring_overflow=True)  # runs past the end
    assert not asn1_matches(b"\x03\x80\xff", bitstring_overflow=True)  # primitive indefinite
    assert not asn1_matches(b"", oversize_length=0)
    # the objects before a broken one still count
    assert asn1_matches(b"\x03\x01\xff\x30\x09", bitstring_overflow=True)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_never_raise(data):
    asn1_matches(data, oversize_length=10, bitstring_overflow=True, double_overflow=True)
    asn1_matches(b"\x30\x80" * 200 + data, bitstring_overflow=True)  # deep nesting: bounded


def test_option_parsing():
    rs, skipped, errors = parse_suricata_rules(
        'alert tcp any any -> any any (content:"x"; asn1:double_overflow, bitstring_overflow, '
        'relative_offset -3, oversize_length 2048; sid:1;)\n'
        "alert tcp any any -> any any (asn1:oversize_length 10 , absolute_offset 4; sid:2;)\n")
    assert not skipped and not errors
    a = [e for e in rs[0].elements if isinstance(e, Asn1Check)][0]
    assert (a.double_overflow, a.bitstring_overflow, a.relative_offset, a.oversize_length) == (
        True, True, -3, 2048)
    b = rs[1].elements[0]
    assert (b.oversize_length, b.absolute_offset, b.relative_offset) == (10, 4, None)
    for bad in ("asn1;", "asn1:absolute_offset 1;", "asn1:oversize_length x;",
                "asn1:bitstring_overflow, absolute_offset 1, relative_offset 1;",
                "asn1:oversize_length -1;", "asn1:frobnicate;"):
        _, skipped, errors = parse_suricata_rules(f"alert tcp any any -> any any ({bad} sid:3;)")
        assert errors and not skipped, bad


# emerging-netbios.rules, as shipped
RULE = """\
alert tcp $EXTERNAL_NET any -> $HOME_NET 445 (msg:"GPL NETBIOS SMB-DS Session Setup NTMLSSP asn1 \
overflow attempt"; flow:established,to_server; content:"|00|"; depth:1; content:"|FF|SMBs"; \
within:5; distance:3; byte_test:1,!&,128,6,relative; byte_test:4,&,2147483648,48,relative,little; \
content:!"NTLMSSP"; within:7; distance:54; asn1:double_overflow, bitstring_overflow, \
relative_offset 54, oversize_length 2048; classtype:protocol-command-decode; sid:2102383; rev:21;)
"""


def session_setup(blob: bytes) -> bytes:
    body = bytearray(54)  # from the end of "\\xffSMBs": header rest, parameters
    body[48:52] = (0x80000000).to_bytes(4, "little")  # capabilities: extended security
    smb = b"\xffSMBs" + bytes(body) + blob
    return b"\x00" + len(smb).to_bytes(3, "big") + smb


def run(payload: bytes) -> dict:
    c = TcpConnection("198.51.100.9", "10.0.0.45", 40445, 445).open()
    c.send(payload)
    return sid_counts(c.close(), RULE, {"HOME_NET": "10.0.0.0/8", "EXTERNAL_NET": "!$HOME_NET"})


@pytest.mark.parametrize("blob, alerts", [
    (b"\x60\x07\xa0\x05\x30\x03\x03\x01\xff", {2102383: 1}),  # the overflowing BIT STRING
    (b"\x60\x07\xa0\x05\x30\x03\x03\x01\x07", {}),  # a valid one
    (b"\x60\x82\x08\x04" + b"\x04\x82\x08\x00" + bytes(2048), {2102383: 1}),  # over 2048
])
def test_et_smb_rule(blob, alerts):
    assert run(session_setup(blob)) == alerts
