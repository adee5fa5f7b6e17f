"""byte_math (Suricata 5+, Snort 3): a field read as byte_extract reads it,
an operation, then the bitmask; the result a variable for what follows."""

from __future__ import annotations

import pytest

from pakemon.detect.suricata_parser import parse_suricata_rules
from pakemon.lab.traffic import udp_frame
from test_sigengine import run, sids

RULES = "".join(f'alert udp any any -> any 9000 (msg:"m{sid}"; {body} sid:{sid};)\n'
                for sid, body in (
    (1, 'content:"HDR"; byte_math:bytes 2,offset 0,oper +,rvalue 3,result total,relative; '
        'byte_test:2,=,total,0,relative;'),
    (2, 'content:"K"; byte_extract:1,0,k,relative; '
        'byte_math:oper <<,bytes 1,offset 0,rvalue k,result sh,relative; '
        'byte_test:1,=,sh,0,relative;'),
    (3, 'content:"B"; byte_math:bytes 1,offset 0,oper +,rvalue 1,result m,relative,'
        'bitmask 0xf0; byte_test:1,=,m,0,relative;'),
    (4, 'content:"Q"; byte_extract:1,0,z,relative; '
        'byte_math:bytes 1,offset 0,oper /,rvalue z,result q,relative;'),
    (5, 'content:"S"; byte_math:bytes 3,offset 0,oper *,rvalue 2,string dec,result d,relative; '
        'content:"X"; distance:0; byte_test:3,=,d,0,relative,string,dec;'),
    (6, 'content:"L"; byte_math:bytes 2,offset 0,oper -,rvalue 1,endian little,result w,'
        'relative; byte_test:1,=,w,0,relative;'),
))


@pytest.mark.parametrize("payload, want", [
    (b"HDR\x00\x05\x00\x08", {1: 1}),
    (b"HDR\x00\x05\x00\x09", {}),
    (b"K\x02\x03\x0c", {2: 1}),
    (b"K\x02\x03\x0d", {}),
    (b"B\x1f\x02", {3: 1}),  # 0x20 masked 0xf0, shifted: 2
    (b"Q\x04\x09", {4: 1}),
    (b"Q\x00\x09", {}),  # division by a variable of 0: no match
    (b"S123X246", {5: 1}),
    (b"S123X247", {}),
    (b"L\x05\x00\x04", {6: 1}),  # little-endian 5, minus 1
    (b"HDR\x00", {}),  # the field is not there
])
def test_byte_math(payload, want):
    frames = [(1.0, udp_frame("10.0.0.1", "10.0.0.2", 5000, 9000, payload))]
    assert sids(run(RULES, frames)) == want


@pytest.mark.parametrize("value", [
    "bytes 2,offset 0,oper +,rvalue 1", "bytes 2,offset 0,oper %,rvalue 1,result r",
    "bytes 9,offset 0,oper +,rvalue 1,result r", "bytes 2,offset 0,oper /,rvalue 0,result r",
    "bytes 2,offset 0,oper +,rvalue nope,result r", "bytes 2,offset 0,oper +,rvalue 1,result r,"
    "endian middle", "bytes 2,bytes 2,offset 0,oper +,rvalue 1,result r",
])
def test_bad_byte_math_is_a_rule_error(value):
    rules, skipped, errors = parse_suricata_rules(
        f'alert udp any any -> any any (msg:"bad"; content:"a"; byte_math:{value}; sid:1;)')
    assert not rules and not skipped and len(errors) == 1
    assert "byte_math" in str(errors[0])
