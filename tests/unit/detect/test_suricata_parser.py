"""The Snort/Suricata rule parser (pakemon.detect.suricata_parser) and the
address/port variables (pakemon.detect.vars)."""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pakemon.detect.rules import PatternKind, PortSpec, RuleError, RuleFileError
from pakemon.detect.ruletree import RuleTree
from pakemon.detect.suricata_parser import (
    APP_LAYER_PROTOCOLS,
    EXTENSION_KEYWORDS,
    LEGACY_MODIFIERS,
    PROTOCOLS,
    STICKY_BUFFERS,
    SUPPORTED_KEYWORDS,
    BufferSize,
    ContentMatch,
    Flowbit,
    IsDataAt,
    PcreMatch,
    PcreUnsupported,
    SkippedRule,
    compile_pcre,
    detect_format,
    load_classification_config,
    load_suricata_rules,
    parse_suricata_rules,
    translate_pcre,
)
from pakemon.detect.vars import DEFAULT_VARS, AddressSpec, SpecError, Vars, load_vars, parse_vars

ET_DIR = Path(__file__).resolve().parents[4] / "shared" / "rulesets" / "et-open-suricata-4.0"


def parse(text: str, vars=None):
    return parse_suricata_rules(text, "t.rules", vars)


def one(options: str = "", header: str = "alert tcp any any -> any any", vars=None):
    """Parse one rule (sid:1 added) that must load."""
    rules, skipped, errors = parse(f"{header} ({options} sid:1;)", vars)
    assert not skipped, [s.message for s in skipped]
    assert not errors, [str(e) for e in errors]
    assert len(rules) == 1
    return rules[0]


def error(text: str, vars=None) -> RuleError:
    rules, skipped, errors = parse(text, vars)
    assert not rules and not skipped, (rules, skipped)
    assert len(errors) == 1, errors
    return errors[0]


def skip(text: str) -> SkippedRule:
    rules, skipped, errors = parse(text)
    assert not rules and not errors, (rules, [str(e) for e in errors])
    assert len(skipped) == 1
    return skipped[0]


def col(text: str, needle: str, nth: int = 0) -> int:
    """1-based column of the nth occurrence of needle in text."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    return at + 1


# ================================================================== header


@pytest.mark.parametrize("action", ["alert", "drop", "reject", "pass"])
def test_actions(action):
    assert one(header=f"{action} tcp any any -> any any").action == action


@pytest.mark.parametrize("action", ["rejectsrc", "rejectdst", "rejectboth"])
def test_other_suricata_actions_are_skipped(action):
    s = skip(f"{action} tcp any any -> any any (sid:7;)")
    assert s == (1, 7, f"action:{action}")
    assert s.message == f"t.rules:1: sid 7 skipped: unsupported action '{action}'"


def test_unknown_action_is_an_error():
    text = "alrt tcp any any -> any any (sid:1;)"
    e = error(text)
    assert (e.line, e.column) == (1, 1)
    assert "unknown action 'alrt'" in e.message


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_protocols(proto):
    assert one(header=f"alert {proto} any any -> any any").proto == proto


def test_protocol_is_case_insensitive():
    assert one(header="alert TCP any any -> any any").proto == "tcp"


@pytest.mark.parametrize("proto", ["imap", "dcerpc", "modbus", "ntp", "sip", "ftp-data"])
def test_app_layer_protocols_are_skipped(proto):
    assert proto in APP_LAYER_PROTOCOLS
    s = skip(f'alert {proto} any any -> any any (msg:"x"; sid:3;)')
    assert s.keyword == f"protocol:{proto}"
    assert s.message == f"t.rules:1: sid 3 skipped: unsupported protocol '{proto}'"


def test_unknown_protocol_is_an_error():
    text = "alert tcpp any any -> any any (sid:1;)"
    e = error(text)
    assert e.column == col(text, "tcpp")
    assert "unknown protocol 'tcpp'" in e.message


def test_directions():
    assert one(header="alert tcp any any -> any any").bidirectional is False
    assert one(header="alert tcp any any <> any any").bidirectional is True
    text = "alert tcp any any <- any any (sid:1;)"
    e = error(text)
    assert e.column == col(text, "<-") and "'<-' is not a direction" in e.message
    e = error("alert tcp any any => any any (sid:1;)".replace("=>", "~>"))
    assert "expected the direction" in e.message
    assert skip("alert tcp any any => any any (sid:1;)").keyword == "direction:=>"


def test_missing_header_fields():
    e = error("alert tcp any any -> any (sid:1;)")
    assert "missing DPORT" in e.message and e.column == col("alert tcp any any -> any (", "(")
    e = error("alert tcp any any -> any any")
    assert "missing '('" in e.message
    e = error("alert tcp any any -> any any extra (sid:1;)")
    assert "unexpected 'extra'" in e.message


# ------------------------------------------------------------ addresses


def test_any_addresses():
    r = one()
    assert r.src.any and r.dst.any
    assert "1.2.3.4" in r.src and "::1" in r.dst


def test_ipv4_cidr_netmask_range_and_ipv6():
    r = one(header="alert ip 10.1.2.3 any -> 192.168.0.0/16 any")
    assert r.src.networks == [ipaddress.ip_network("10.1.2.3/32")]
    assert "192.168.77.1" in r.dst and "192.169.0.1" not in r.dst
    r = one(header="alert ip 10.0.0.0/255.255.0.0 any -> 1.1.1.1-1.1.1.3 any")
    assert r.src.networks == [ipaddress.ip_network("10.0.0.0/16")]
    assert "1.1.1.2" in r.dst and "1.1.1.4" not in r.dst
    r = one(header="alert ipv6 2001:db8::/32 any -> ::1 any")
    assert "2001:db8::42" in r.src and "2001:db9::" not in r.src
    assert "10.0.0.1" not in r.src
    assert r.dst.networks == [ipaddress.ip_network("::1/128")]


def test_address_lists_and_negation():
    r = one(header="alert ip [10.0.0.0/8,!10.1.0.0/16,192.168.1.1] any -> !10.0.0.0/8 any")
    assert "10.2.3.4" in r.src and "10.1.3.4" not in r.src and "192.168.1.1" in r.src
    assert "11.0.0.1" in r.dst and "10.0.0.1" not in r.dst and "::1" in r.dst
    # nested lists, a negated list, blanks inside brackets
    r = one(header="alert ip [1.2.3.0/24, ![1.2.3.4, 1.2.3.5]] any -> [!1.2.3.4] any")
    assert "1.2.3.3" in r.src and "1.2.3.4" not in r.src and "1.2.3.5" not in r.src
    assert "1.2.3.4" not in r.dst and "8.8.8.8" in r.dst


def test_address_errors():
    text = "alert ip !any any -> any any (sid:1;)"
    assert "matches nothing" in error(text).message
    text = "alert ip [10.0.0.0/8,!10.0.0.0/8] any -> any any (sid:1;)"
    assert "matches nothing" in error(text).message
    text = "alert ip 10.0.0.300 any -> any any (sid:1;)"
    e = error(text)
    assert e.column == col(text, "10.0.0.300") and "invalid address '10.0.0.300'" in e.message
    text = "alert ip [10.0.0.1,10.0.0.999] any -> any any (sid:1;)"
    assert error(text).column == col(text, "10.0.0.999")
    text = "alert ip [10.0.0.1 any -> any any (sid:1;)"
    e = error(text)
    assert "unterminated [" in e.message and e.column == col(text, "[")


def test_default_variables():
    r = one(header="alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS")
    assert r.src.text == "$HOME_NET"
    assert {str(n) for n in r.src.networks} == {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
    assert "8.8.8.8" in r.dst and "10.0.0.1" not in r.dst and "2001:db8::1" in r.dst
    assert r.dst_port == PortSpec("$HTTP_PORTS", ((80, 80),), any=False)


@pytest.mark.parametrize(
    "name",
    """HOME_NET EXTERNAL_NET HTTP_SERVERS HTTP_PORTS SHELLCODE_PORTS ORACLE_PORTS SSH_PORTS
    DNS_SERVERS SMTP_SERVERS SQL_SERVERS TELNET_SERVERS AIM_SERVERS DC_SERVERS FILE_DATA_PORTS
    FTP_PORTS DNP3_PORTS MODBUS_PORTS GTP_PORTS""".split(),
)
def test_every_variable_of_the_issue_has_a_default(name):
    assert name in DEFAULT_VARS
    v = Vars()
    try:
        spec = v.address(f"${name}")
    except SpecError:
        spec = v.ports(f"${name}")
    assert spec.ranges or spec.any


def test_default_values_are_suricata_yaml():
    v = Vars()
    assert v.ports("$SHELLCODE_PORTS").ranges == ((0, 79), (81, 65535))
    assert v.ports("$ORACLE_PORTS").ranges == ((1521, 1521),)
    assert v.ports("$FILE_DATA_PORTS").ranges == ((80, 80), (110, 110), (143, 143))
    assert v.address("$AIM_SERVERS").ranges == v.address("$EXTERNAL_NET").ranges
    assert v.address("$DNS_SERVERS").ranges == v.address("$HOME_NET").ranges


def test_undefined_variable_is_an_error():
    text = "alert tcp $NOPE any -> any any (sid:1;)"
    e = error(text)
    assert e.column == col(text, "$NOPE") and e.message == "undefined variable $NOPE"


def test_variables_overridden_by_a_mapping():
    vars = {"HOME_NET": "[10.9.0.0/16]", "HTTP_PORTS": "[80,8080]"}
    r = one(header="alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS", vars=vars)
    assert r.src.networks == [ipaddress.ip_network("10.9.0.0/16")]
    assert "10.1.0.1" in r.dst  # EXTERNAL_NET = !$HOME_NET follows the override
    assert r.dst_port.ranges == ((80, 80), (8080, 8080))


def test_variable_loop_is_an_error():
    e = error("alert tcp $A any -> any any (sid:1;)", vars={"A": "[$B]", "B": "!$A"})
    assert "variable loop" in e.message


def test_vars_file_lines_format(tmp_path):
    path = tmp_path / "vars.conf"
    path.write_text(
        "# my network\n"
        "HOME_NET [10.0.0.0/8]\n"
        "ipvar DNS_SERVERS [10.0.0.53, 10.0.1.53]\n"
        "portvar HTTP_PORTS [80,8080]   # proxies too\n"
        '$SSH_PORTS: "2222"\n'
    )
    v = load_vars(path)
    assert v["HOME_NET"] == "[10.0.0.0/8]"
    assert v["SSH_PORTS"] == "2222"
    assert v.ports("$HTTP_PORTS").ranges == ((80, 80), (8080, 8080))
    assert "10.0.1.53" in v.address("$DNS_SERVERS")
    assert v["ORACLE_PORTS"] == "1521"  # defaults stay
    rules_file = tmp_path / "a.rules"
    rules_file.write_text("alert tcp any any -> $HOME_NET $SSH_PORTS (sid:5;)\n")
    rs = load_suricata_rules(rules_file, vars=path)
    assert rs.rules[0].dst_port.ranges == ((2222, 2222),)
    assert "192.168.0.1" not in rs.rules[0].dst


def test_vars_file_suricata_yaml_format():
    text = (
        "%YAML 1.1\n---\n"
        "vars:\n"
        "  address-groups:\n"
        '    HOME_NET: "[172.20.0.0/16]"\n'
        '    EXTERNAL_NET: "!$HOME_NET"\n'
        "  port-groups:\n"
        "    HTTP_PORTS: \"[80,81]\"\n"
        "    ORACLE_PORTS: 1521\n"
        "default-rule-path: /etc/suricata/rules\n"
        "af-packet:\n"
        "  - interface: eth0\n"
    )
    values, errors = parse_vars(text, "suricata.yaml")
    assert errors == []
    assert values == {
        "HOME_NET": "[172.20.0.0/16]",
        "EXTERNAL_NET": "!$HOME_NET",
        "HTTP_PORTS": "[80,81]",
        "ORACLE_PORTS": "1521",
    }


def test_vars_file_errors(tmp_path):
    text = "HOME_NET [10.0.0.0/8\nFOO\nBAD-NAME 1\nX $UNDEFINED\n"
    values, errors = parse_vars(text, "v.conf")
    assert [(e.line, e.column) for e in errors] == [(1, 10), (2, 1), (3, 1), (4, 3)]
    assert str(errors[3]).startswith("v.conf:4:3: $X is neither an address nor a port spec")
    path = tmp_path / "bad.conf"
    path.write_text(text)
    with pytest.raises(RuleFileError):
        load_vars(path)


# ------------------------------------------------------------ ports


def test_ports():
    r = one(header="alert tcp any 1024: -> any :1023")
    assert r.src_port.ranges == ((1024, 65535),) and r.dst_port.ranges == ((0, 1023),)
    r = one(header="alert tcp any [80,8000:8010,443] -> any 1:2")
    assert r.src_port.ranges == ((80, 80), (443, 443), (8000, 8010))
    assert r.src_port.text == "[80,8000:8010,443]"
    assert 8005 in r.src_port and 8011 not in r.src_port
    assert r.dst_port.ranges == ((1, 2),)
    assert one().src_port.any


def test_port_negation_is_the_complement():
    r = one(header="alert tcp any !80 -> any [1:100,!50]")
    assert r.src_port.ranges == ((0, 79), (81, 65535))
    assert 80 not in r.src_port and 81 in r.src_port
    assert r.dst_port.ranges == ((1, 49), (51, 100))
    r = one(header="alert tcp any [!80,!443] -> any $SHELLCODE_PORTS")
    assert r.src_port.ranges == ((0, 79), (81, 442), (444, 65535))
    assert r.dst_port.ranges == ((0, 79), (81, 65535))


def test_port_errors():
    text = "alert tcp any 70000 -> any any (sid:1;)"
    e = error(text)
    assert e.column == col(text, "70000") and "out of range" in e.message
    assert "empty port range" in error("alert tcp any 90:80 -> any any (sid:1;)").message
    assert "matches nothing" in error("alert tcp any !any -> any any (sid:1;)").message
    assert "invalid port 'http'" in error("alert tcp any http -> any any (sid:1;)").message
    e = error("alert tcp any any -> any $HOME_NET (sid:1;)")
    assert "in $HOME_NET" in e.message


def test_unbracketed_port_list_is_a_list_as_in_suricata():
    # emerging-trojan.rules:10727: Suricata's DetectPortParseDo splits on a
    # comma outside brackets, so this is [!5800,!445]
    text = (
        'alert tcp $HOME_NET any -> $EXTERNAL_NET !5800,!445 (msg:"ET TROJAN Backdoor.Win32'
        '.PcClient.bal CnC (OUTBOUND) 5"; flow:to_server,established; sid:2008199; rev:4;)'
    )
    (r,), _, _ = parse(text)
    assert r.dst_port.ranges == ((0, 444), (446, 5799), (5801, 65535))
    assert 445 not in r.dst_port and 5800 not in r.dst_port and 80 in r.dst_port
    e = error("alert tcp any any -> any 80, (sid:1;)")
    assert "empty item in port list" in e.message
    e = error("alert tcp any any -> any 80] (sid:1;)")
    assert "unexpected ']'" in e.message


# ================================================================== options


def test_meta_options():
    r = one(
        'msg:"ET TEST \\"quoted\\" a\\; b"; rev:3; gid:2; classtype:trojan-activity; '
        "priority:1; reference:url,example.com/a; reference:cve,2019-0001; "
        "metadata:created_at 2010_07_30, updated_at 2019_01_01; metadata:former_category TEST;"
    )
    assert r.msg == 'ET TEST "quoted" a; b'
    assert (r.sid, r.rev, r.gid, r.classtype, r.priority) == (1, 3, 2, "trojan-activity", 1)
    assert r.references == (("url", "example.com/a"), ("cve", "2019-0001"))
    assert r.metadata == (
        ("created_at", "2010_07_30"),
        ("updated_at", "2019_01_01"),
        ("former_category", "TEST"),
    )


def test_quoted_semicolons_in_values():
    r = one('msg:"a;b;c"; content:"x;y"; content:"p\\;q";')
    assert r.msg == "a;b;c"
    assert [c.pattern for c in r.contents] == [b"x;y", b"p;q"]


def test_a_message_missing_its_closing_quote_is_an_error():
    """msg:"a; content:"x"; read the content keyword into the message and
    loaded a rule with no content, which matched every packet of its
    ports; Suricata rejects it, and so does this parser now. An escaped
    quote in a message stays allowed."""
    text = 'alert tcp any any -> any 80 (msg:"oops; content:"x"; sid:1;)'
    e = error(text)
    assert "unescaped '\"' inside the message" in e.message
    assert e.column == text.index('"x') + 1
    assert one('msg:"say \\"hi\\""; content:"x";').msg == 'say "hi"'


def test_meta_errors():
    assert "missing sid" in error("alert tcp any any -> any any (msg:\"x\";)").message
    assert "sid given twice" in error("alert tcp any any -> any any (sid:1; sid:2;)").message
    assert "sid: 0 out of range" in error("alert tcp any any -> any any (sid:0;)").message
    e = error("alert tcp any any -> any any (sid:x1;)")
    assert "sid: expected an integer" in e.message and e.column == 35
    assert "priority" in error("alert tcp any any -> any any (priority:0; sid:1;)").message
    assert "TYPE,ID" in error("alert tcp any any -> any any (reference:foo; sid:1;)").message
    assert "rev given twice" in error("alert tcp any any -> any any (rev:1; rev:2; sid:1;)").message


def test_options_must_end_with_a_semicolon():
    text = 'alert tcp any any -> any any (msg:"x"; sid:1)'
    e = error(text)
    assert e.column == col(text, "sid") and "'sid' is not terminated by ';'" in e.message
    e = error('alert tcp any any -> any any (msg:"x"; sid:1; nocase)')
    assert "'nocase' is not terminated" in e.message
    e = error('alert tcp any any -> any any (msg:"x"; sid:1;')
    assert "missing ')'" in e.message
    text = 'alert tcp any any -> any any (sid:1;) trailing'
    e = error(text)
    assert e.column == col(text, "trailing") and "after the closing ')'" in e.message


def test_option_keywords_are_case_insensitive():
    r = one('MSG:"x"; Content:"abc"; NOCASE;')
    assert r.msg == "x" and r.contents[0].nocase


# ------------------------------------------------------------ content


def test_content_hex_and_escapes():
    r = one('content:"a|0d 0A|b|20|"; content:"|4142 43|"; content:"q\\"\\\\\\;\\:z";')
    assert [c.pattern for c in r.contents] == [b"a\r\nb ", b"ABC", b'q"\\;:z']
    assert r.contents[0].text == '"a|0d 0A|b|20|"'


def test_content_negation():
    r = one('content:"a"; content:!"b"; content: ! "c";')
    assert [c.negated for c in r.contents] == [False, True, True]


@pytest.mark.parametrize(
    "value, message",
    [
        ('"a\\x41"', "invalid escape '\\x'"),
        ('"a"b"', "unescaped '\"'"),
        ('"|4|"', "odd number of hex digits"),
        ('"|41"', "unterminated |hex|"),
        ('"|4g|"', "invalid hex digit 'g'"),
        ('""', "empty content"),
        ('"abc', "unterminated"),
    ],
)
def test_content_errors(value, message):
    text = f"alert tcp any any -> any any (content:{value}; sid:1;)"
    e = error(text)
    assert message in e.message
    assert e.column >= col(text, "content")


def test_content_modifiers():
    r = one(
        'content:"GET "; offset:0; depth:4; nocase; rawbytes; '
        'content:"x"; distance:-2; within:10; content:"y"; startswith; content:"z"; endswith;'
    )
    a, b, c, d = r.contents
    assert (a.offset, a.depth, a.nocase, a.rawbytes) == (0, 4, True, True)
    assert (b.distance, b.within, b.relative) == (-2, 10, True)
    assert c.startswith and d.endswith
    assert not any(x.plain for x in (a, b, c, d))


def test_modifier_spacing():
    r = one('content:"abc"; depth: 10; offset:  2;')
    assert (r.contents[0].depth, r.contents[0].offset) == (10, 2)


@pytest.mark.parametrize(
    "options, message",
    [
        ("nocase;", "nocase needs a preceding content"),
        ('content:"a"; nocase; nocase;', "nocase given twice"),
        ('content:"abcd"; depth:3;', "depth 3 is less than the content's length 4"),
        ('content:"abcd"; within:2;', "within 2 is less than"),
        ('content:"a"; offset:1; distance:2;', "distance can't be combined with offset/depth"),
        ('content:"a"; within:5; depth:5;', "depth can't be combined with distance/within"),
        ('content:"a"; startswith; offset:2;', "can't be combined with startswith"),
        ('content:"a"; depth:3; startswith;', "startswith can't be combined"),
        ('content:"a"; offset:-1;', "out of range"),
        ('content:"a"; depth:1x;', "expected an integer"),
        ('content:"a"; depth:x;', "unknown byte_extract variable 'x'"),
        ('content:"a"; nocase:1;', "nocase takes no value"),
    ],
)
def test_content_modifier_errors(options, message):
    assert message in error(f"alert tcp any any -> any any ({options} sid:1;)").message


def test_fast_pattern_forms():
    r = one('content:"abcdef"; fast_pattern;')
    assert r.contents[0].fast_pattern and not r.contents[0].fast_pattern_only
    r = one('content:"abcdef"; fast_pattern:only;')
    assert r.contents[0].fast_pattern_only
    r = one('content:"abcdef"; fast_pattern:1,3;')
    assert r.contents[0].fast_pattern_chop == (1, 3)
    for options, message in [
        ('content:"a"; fast_pattern; content:"b"; fast_pattern;', "only one content"),
        ('content:"abc"; fast_pattern:2,5;', "outside the content"),
        ('content:"abc"; fast_pattern:fast;', "expected 'only' or OFFSET,LENGTH"),
        ('content:!"abc"; fast_pattern:only;', "fast_pattern:only can't"),
        ('content:"abc"; fast_pattern:only; depth:5;', "fast_pattern:only can't"),
    ]:
        assert message in error(f"alert tcp any any -> any any ({options} sid:1;)").message


def test_isdataat():
    r = one('content:"a"; isdataat:10; isdataat:!1,relative; isdataat:2,relative,rawbytes;')
    i1, i2, i3 = r.elements[1:]
    assert (i1.offset, i1.relative, i1.negated) == (10, False, False)
    assert (i2.offset, i2.relative, i2.negated) == (1, True, True)
    assert i3.rawbytes
    assert "unknown option 'far'" in error(
        "alert tcp any any -> any any (isdataat:1,far; sid:1;)"
    ).message


def test_isdataat_relative_follows_the_previous_match_buffer():
    r = one('content:"a"; http_uri; isdataat:1,relative; isdataat:5;')
    assert r.elements[1] == IsDataAt(1, relative=True, buffer="http.uri")
    assert r.elements[2] == IsDataAt(5, buffer=None)


# ------------------------------------------------------------ buffers


@pytest.mark.parametrize("sticky", sorted(STICKY_BUFFERS))
def test_sticky_buffers(sticky):
    r = one(f'content:"raw"; {sticky}; content:"in"; pcre:"/x/"; isdataat:1; content:"too";')
    buffer = STICKY_BUFFERS[sticky]
    assert [getattr(e, "buffer") for e in r.elements] == [None, buffer, buffer, buffer, buffer]


@pytest.mark.parametrize("modifier", sorted(LEGACY_MODIFIERS))
def test_legacy_modifiers(modifier):
    r = one(f'content:"a"; {modifier}; content:"b";')
    assert [c.buffer for c in r.contents] == [LEGACY_MODIFIERS[modifier], None]


def test_legacy_modifier_names_the_buffer_as_suricata_does():
    assert LEGACY_MODIFIERS["http_client_body"] == "http.request_body"
    assert LEGACY_MODIFIERS["http_raw_uri"] == "http.uri.raw"
    assert LEGACY_MODIFIERS["http_raw_header"] == "http.header.raw"


def test_legacy_modifier_errors():
    assert "needs a preceding content" in error(
        "alert tcp any any -> any any (http_uri; sid:1;)"
    ).message
    e = error('alert tcp any any -> any any (http.uri; content:"a"; http_header; sid:1;)')
    assert "already in http.uri" in e.message
    # the same buffer twice is harmless
    assert one('http.uri; content:"a"; http_uri;').contents[0].buffer == "http.uri"


def test_uricontent_is_content_in_http_uri():
    r = one('uricontent:"/a.php"; nocase;')
    assert r.contents[0] == ContentMatch(
        b"/a.php", nocase=True, buffer="http.uri", text='"/a.php"', column=r.contents[0].column
    )


def test_http_host_content_must_be_lower_case():
    e = error('alert http any any -> any any (content:"Evil.COM"; http_host; sid:1;)')
    assert "lower case" in e.message
    assert one('content:"Evil.COM"; http_host; nocase;').contents[0].buffer == "http.host"


def test_bsize():
    r = one("http.uri; bsize:>10; http.host; bsize:5<>20;")
    assert r.elements == (
        BufferSize(r.elements[0].compare, "http.uri"),
        BufferSize(r.elements[1].compare, "http.host"),
    )
    assert r.elements[0].compare.matches(11) and not r.elements[0].compare.matches(10)
    assert r.elements[1].compare.matches(6) and not r.elements[1].compare.matches(20)
    assert "sticky buffer" in error("alert tcp any any -> any any (bsize:1; sid:1;)").message


# ------------------------------------------------------------ pcre


def test_pcre_flags_and_buffers():
    r = one('pcre:"/^GET\\s+\\/a/smi"; pcre:!"/x/U"; content:"b"; http_header; pcre:"/y/R";')
    p1, p2, _, p3 = r.elements
    assert isinstance(p1, PcreMatch)
    assert (p1.source, p1.flags, p1.buffer, p1.relative) == ("^GET\\s+\\/a", "smi", None, False)
    assert p1.regex.flags & (re.S | re.M | re.I) == re.S | re.M | re.I
    assert p1.regex.search(b"\nget  /a")
    assert (p2.negated, p2.buffer) == (True, "http.uri")
    assert (p3.relative, p3.buffer) == (True, "http.header")  # R inherits the buffer


@pytest.mark.parametrize(
    "flag, buffer",
    [("U", "http.uri"), ("I", "http.uri.raw"), ("H", "http.header"), ("D", "http.header.raw"),
     ("M", "http.method"), ("C", "http.cookie"), ("P", "http.request_body"),
     ("V", "http.user_agent"), ("W", "http.host")],
)  # fmt: skip
def test_pcre_buffer_flags(flag, buffer):
    assert one(f'pcre:"/a/{flag}";').pcres[0].buffer == buffer


def test_pcre_unquoted_and_half_quoted():
    # emerging-policy.rules:867 writes pcre:/Java/\d\.\d/Vi" (no opening quote)
    r = one('content:"Java/"; nocase; http_user_agent; pcre:/Java/\\d\\.\\d/Vi";')
    p = r.pcres[0]
    assert (p.source, p.flags, p.buffer) == ("Java/\\d\\.\\d", "Vi", "http.user_agent")
    assert p.regex.search(b"java/1.8")


@pytest.mark.parametrize(
    "flag, buffer",
    [("Q", "file.data"), ("S", "http.stat_code"), ("Y", "http.stat_msg"), ("Z", "http.host.raw")],
)
def test_pcre_flags_of_response_and_raw_host_buffers(flag, buffer):
    r = one(f'pcre:"/a/{flag}";', header="alert http any any -> any any")
    assert r.pcres[0].buffer == buffer and r.pcres[0].regex.search(b"xa")


def test_pcre_python_cannot_compile_is_skipped():
    s = skip('alert tcp any any -> any any (pcre:"/(?<=ab|c)d/"; sid:4;)')
    assert s.keyword == "pcre-syntax"
    assert "PCRE construct Python can't compile" in s.message
    assert skip('alert tcp any any -> any any (pcre:"/a\\Kb/"; sid:4;)').keyword == "pcre-syntax"


@pytest.mark.parametrize(
    "value, message",
    [('"abc"', "expected \"/regex/flags\""), ('"/abc/z"', "unknown modifier 'z'"),
     ('"//"', "empty regex"), ('"/a/UH"', "more than one buffer")],
)  # fmt: skip
def test_pcre_errors(value, message):
    assert message in error(f"alert tcp any any -> any any (pcre:{value}; sid:1;)").message
    e = error('alert tcp any any -> any any (http.uri; pcre:"/a/H"; sid:1;)')
    assert "inside sticky buffer http.uri" in e.message


@pytest.mark.parametrize(
    "source, flags, yes, no",
    [
        ("a(?i)b|c", "", [b"ab", b"aB", b"c", b"C"], [b"Ab"]),
        ("(a(?i)b|c)d", "", [b"aBd", b"Cd"], [b"ABd"]),
        ("^(?i)get /", "", [b"GET /"], [b"xGET /"]),
        ("(?<n>ab)\\k<n>", "", [b"abab"], [b"abba"]),
        ("\\x{41}\\x9[[:digit:]]+\\z", "", [b"A\t12"], [b"A\t12\n"]),
        ("ab\\Z", "", [b"ab", b"ab\n"], [b"ab\n\n"]),
        ("\\Qa.b\\E", "", [b"a.b"], [b"axb"]),
        ("\\h\\v\\R\\e\\cA\\012", "", [b" \x0b\r\n\x1b\x01\n"], [b" \x0b\x1b"]),
        ("abc", "A", [b"abcd"], [b"xabc"]),
        ("ab$", "E", [b"ab"], [b"ab\n"]),
        ("a.+b", "G", [b"axbb"], []),
        ("a b # comment", "x", [b"ab"], [b"a b"]),
    ],
)
def test_pcre_translation(source, flags, yes, no):
    regex = compile_pcre(source, flags)
    for data in yes:
        assert regex.search(data), (regex.pattern, data)
    for data in no:
        assert not regex.search(data), (regex.pattern, data)


def test_pcre_ungreedy_flag_swaps_greediness():
    assert translate_pcre("a.*b.*?c+?d{2,3}", "G")[0] == "a.*?b.*c+d{2,3}?"
    assert compile_pcre("<.+>", "G").search(b"<a><b>").group() == b"<a>"


@pytest.mark.parametrize(
    "source", ["(?R)", "(*SKIP)", "\\p{L}", "[[:^alpha:]]", "\\x{100}", "(?J)x", "a\\G"]
)
def test_pcre_untranslatable(source):
    with pytest.raises(PcreUnsupported):
        compile_pcre(source)


# ------------------------------------------------------------ the rest


def test_flow():
    r = one("flow:established,to_server;")
    assert r.flow.established and r.flow.to_server and not r.flow.to_client
    r = one("flow: from_server , not_established;")
    assert r.flow.to_client and r.flow.not_established and r.flow.text == "from_server , not_established"
    r = one("flow:from_client,stateless,only_stream;")
    assert r.flow.to_server and r.flow.stateless and r.flow.only_stream
    assert one("flow:to_client,no_stream;").flow.no_stream
    for value, message in [
        ("to_server,to_client", "contradict"),
        ("established,not_established", "contradict"),
        ("only_stream,no_stream", "contradict"),
        ("sideways", "unknown option 'sideways'"),
    ]:
        assert message in error(f"alert tcp any any -> any any (flow:{value}; sid:1;)").message
    assert skip("alert tcp any any -> any any (flow:only_frag; sid:1;)").keyword == "flow:only_frag"


@pytest.mark.parametrize(
    "value, op, a, b, yes, no",
    [("300", "=", 300, None, 300, 301), (">10", ">", 10, None, 11, 10),
     ("< 10", "<", 10, None, 9, 10), ("10<>20", "<>", 10, 20, 15, 20),
     ("10-20", "<>", 10, 20, 11, 10), (">=5", ">=", 5, None, 5, 4),
     ("<=5", "<=", 5, None, 5, 6), ("!0", "!=", 0, None, 1, 0)],
)  # fmt: skip
def test_dsize(value, op, a, b, yes, no):
    d = one(f"dsize:{value};").dsize
    assert (d.op, d.value, d.value2) == (op, a, b)
    assert d.matches(yes) and not d.matches(no)


def test_numeric_errors():
    for options, message in [
        ("dsize:70000;", "out of range 0-65535"),
        ("dsize:20<>10;", "invalid range"),
        ("dsize:big;", "expected N, <N"),
        ("itype:256;", "out of range 0-255"),
        ("icmp_id:65536;", "out of range"),
        ("urilen:5,weird;", "',raw' or ',norm'"),
    ]:
        assert message in error(f"alert tcp any any -> any any ({options} sid:1;)").message


def test_tcp_flags():
    f = one("flags:S,12;").flags
    assert (f.flags, f.modifier, f.ignore) == (0x02, "", 0xC0)
    assert f.matches(0x02) and f.matches(0xC2) and not f.matches(0x12)
    f = one("flags:+SA;").flags
    assert f.modifier == "+" and f.matches(0x1A) and not f.matches(0x02)
    f = one("flags:*FRU;").flags
    assert f.matches(0x04) and not f.matches(0x10)
    f = one("flags:!R;").flags
    assert f.matches(0x10) and not f.matches(0x04)
    assert one("flags:0;").flags.matches(0) and not one("flags:0;").flags.matches(2)
    assert one("flags:CE;").flags.flags == 0xC0
    assert "unknown flag 'X'" in error("alert tcp any any -> any any (flags:SX; sid:1;)").message
    assert "more than one modifier" in error("alert tcp any any -> any any (flags:+*S; sid:1;)").message


def test_icmp_options():
    r = one("itype:8; icode:0; icmp_id:1234; icmp_seq:7;", header="alert icmp any any -> any any")
    assert (r.itype.op, r.itype.value, r.icode.value, r.icmp_id, r.icmp_seq) == ("=", 8, 0, 1234, 7)
    r = one("itype:>30; icode:1<>5;", header="alert icmpv6 any any -> any any")
    assert r.itype.ranges(255) == ((31, 255),) and r.icode.ranges(255) == ((2, 4),)


def test_urilen():
    r = one("urilen:>80;")
    assert (r.urilen.compare.op, r.urilen.compare.value, r.urilen.form) == (">", 80, "")
    assert one("urilen: 10<>20, raw;").urilen.form == "raw"
    assert one("urilen:5,norm;").urilen.compare.matches(5)


def test_threshold_and_detection_filter():
    r = one("threshold: type both, track by_src, count 5, seconds 120; "
            "detection_filter:track by_dst, count 10, seconds 60;")  # fmt: skip
    assert (r.threshold.type, r.threshold.track, r.threshold.count, r.threshold.seconds) == (
        "both", "by_src", 5, 120,
    )  # fmt: skip
    assert (r.detection_filter.type, r.detection_filter.track) == (None, "by_dst")
    assert r.detection_filter.count == 10 and r.detection_filter.seconds == 60
    for value, message in [
        ("type sometimes, track by_src, count 1, seconds 1", "type must be"),
        ("type limit, track by_src, count 1", "missing seconds"),
        ("type limit, track by_nobody, count 1, seconds 1", "track must be"),
        ("type limit, track by_src, count x, seconds 1", "count must be a number"),
    ]:
        assert message in error(f"alert tcp any any -> any any (threshold:{value}; sid:1;)").message
    s = skip("alert tcp any any -> any any (threshold:type limit, track by_src, count 1, "
             "seconds 1, multiplier 2; sid:1;)")  # fmt: skip
    assert s.keyword == "threshold" and "unsupported threshold form" in s.detail


def test_events():
    r = one("decode-event:ipv4.trunc_pkt; stream-event:3whs_synack_with_wrong_ack;")
    assert r.decode_events == ("ipv4.trunc_pkt",)
    assert r.stream_events == ("3whs_synack_with_wrong_ack",)
    assert "invalid event name" in error(
        'alert tcp any any -> any any (decode-event:"a b"; sid:1;)'
    ).message


def test_supported_keyword_list_is_the_issue_list():
    issue = set(
        """msg sid rev gid classtype priority reference metadata content nocase offset depth
        distance within startswith endswith isdataat rawbytes fast_pattern pcre flow dsize
        flags itype icode icmp_id icmp_seq urilen bsize threshold detection_filter decode-event
        stream-event http.method http.uri http.uri.raw http.request_line http.header
        http.header_names http.host http.user_agent http.cookie http.request_body http_method
        http_uri http_raw_uri http_header http_raw_header http_cookie http_user_agent http_host
        http_client_body
        byte_test byte_jump byte_extract flowbits tag stream_size ip_proto id ssl_version
        ssl_state http.header.raw http.host.raw http_raw_host http.accept http_accept
        http.accept_enc http_accept_enc http.accept_lang http_accept_lang http.content_type
        http_content_type http.content_len http_content_len http.connection http_connection
        http.referer http_referer http.protocol http_protocol http.start http_start
        http.stat_code http_stat_code http.stat_msg http_stat_msg http.response_line
        http_response_line http.server http.location file_data file.data http.response_body
        http_server_body tls.sni tls_sni tls.cert_subject tls_cert_subject tls.cert_issuer
        tls_cert_issuer tls.cert_serial tls_cert_serial tls.cert_fingerprint
        tls_cert_fingerprint dns.query dns_query tcp.flags
        ssh.proto ssh_proto ssh.software ssh_software ftpbounce asn1
        ja3.hash ja3_hash ja3.string ja3_string ja3s.hash ja3s.string
        app-layer-protocol ttl tos ipopts sameip fragbits fragoffset seq ack window
        pkt_data dotprefix to_lowercase to_uppercase strip_whitespace compress_whitespace
        url_decode to_md5 to_sha1 to_sha256 xor xbits noalert target byte_math hostbits
        tcp.mss prefilter ipv4.hdr ipv6.hdr tcp.hdr udp.hdr icmpv4.hdr icmpv6.hdr
        base64_decode base64_data http.request_header http.response_header flowint
        requires vlan.id vlan.layers flow.age absent rpc from_base64 pcrexform dataset
        datarep ip.src ip.dst file.name filename fileext filesize filemd5 filesha1
        filesha256 filemagic iprep filestore entropy tls.version dns.opcode ssh.hassh
        ssh.hassh.string ssh.hassh.server ssh.hassh.server.string smtp.helo smtp.mail_from
        smtp.rcpt_to gunzip zlib_deflate subslice header_lowercase strip_pseudo_headers
        tls.random tls.random_time tls.random_bytes tls.cert_chain_len""".split()
    )
    assert SUPPORTED_KEYWORDS == issue
    assert EXTENSION_KEYWORDS == {"uricontent", "http_request_line", "http_header_names"}


# ================================================================ skipping


@pytest.mark.parametrize(
    "keyword, option",
    [("luajit", "luajit:x.lua;"), ("snmp.community", "snmp.community;"),
     ("lua", 'lua:"x.lua";'), ("krb5_cname", "krb5_cname;"), ("sip.method", "sip.method;"),
     ("smb.named_pipe", "smb.named_pipe;"), ("app-layer-event", "app-layer-event:http.x;"),
     ("quic.sni", "quic.sni;")],
)  # fmt: skip
def test_unsupported_keyword_skips_the_rule(keyword, option):
    text = f'alert tcp any any -> any any (msg:"x"; content:"a"; {option} sid:2001;)'
    rules, skipped, errors = parse_suricata_rules("# header\n\n" + text, "rules/x.rules")
    assert rules == [] and errors == []
    assert skipped == [(3, 2001, keyword)]
    assert skipped[0].message == f"rules/x.rules:3: sid 2001 skipped: unsupported keyword '{keyword}'"


def test_skip_names_the_first_unsupported_keyword_and_lists_all():
    s = skip("alert imap any any -> any any (tls_sni; krb5_cname; lua:y; luajit:z; sid:5;)")
    assert s.keyword == "protocol:imap"
    assert s.blockers == ("protocol:imap", "krb5_cname", "lua", "luajit")
    line, sid, keyword = s
    assert (line, sid, keyword) == (1, 5, "protocol:imap")


def test_load_logs_warnings_and_a_summary(tmp_path, caplog):
    path = tmp_path / "a.rules"
    path.write_text(
        'alert tcp any any -> any any (content:"a"; sid:1;)\n'
        "alert tcp any any -> any any (luajit:a; sid:2;)\n"
        "alert tcp any any -> any any (luajit:b; content:\"b\"; sid:3;)\n"
        "alert tcp any any -> any any (lua:x.lua; sid:4;)\n"
        "alert tcp any any -> any any (sid:5)\n"
    )
    with caplog.at_level(logging.INFO, logger="pakemon.detect.suricata"):
        rs = load_suricata_rules(path)
    messages = [r.getMessage() for r in caplog.records]
    assert f"{path}:2: sid 2 skipped: unsupported keyword 'luajit'" in messages
    assert f"{path}:4: sid 4 skipped: unsupported keyword 'lua'" in messages
    assert f"{path}:5:31: option 'sid' is not terminated by ';'" in messages
    assert messages[-1] == (
        "1 of 5 Suricata rules loaded from 1 file(s); 3 skipped, 1 with errors; "
        "skipped by keyword: luajit 2, lua 1"
    )
    assert rs.skipped_by_keyword() == {"luajit": 2, "lua": 1}


# ============================================================= the file level


def test_comments_blank_lines_and_disabled_rules():
    text = (
        "# Emerging Threats\n"
        "\n"
        '#alert tcp any any -> any any (msg:"disabled"; sid:1;)\n'
        '  # alert tcp any any -> any any (msg:"disabled too"; sid:2;)\n'
        '   alert tcp any any -> any any (msg:"indented"; sid:3;)\r\n'
    )
    rules, skipped, errors = parse(text)
    assert [r.sid for r in rules] == [3] and not skipped and not errors
    assert rules[0].line == 5


def test_multi_line_rule():
    text = (
        'alert tcp any any -> any 80 (msg:"multi"; \\\n'
        '    content:"abc"; \\\n'
        "    sid:10; rev:2;)\n"
        'alert tcp any any -> any 80 (msg:"next"; sid:11;)\n'
    )
    rules, skipped, errors = parse(text)
    assert not errors and [(r.sid, r.line) for r in rules] == [(10, 1), (11, 4)]
    assert rules[0].contents[0].pattern == b"abc"


def test_error_position_in_a_multi_line_rule():
    text = 'alert tcp any any -> any 80 (msg:"m"; \\\n    content:"ab"; depth:1; \\\n    sid:10;)\n'
    e = error(text)
    # at the value, on the second physical line
    assert (e.line, e.column) == (2, col('    content:"ab"; depth:1;', "depth:") + len("depth:"))


def test_a_bad_rule_does_not_stop_the_file():
    text = (
        "alert tcp any any -> any any (sid:1;)\n"
        "garbage\n"
        "alert tcp any any -> any any (sid:2;)\n"
    )
    rules, skipped, errors = parse(text)
    assert [r.sid for r in rules] == [1, 2]
    assert [str(e) for e in errors] == [
        "t.rules:2:8: expected ACTION PROTO SRC SPORT -> DST DPORT (OPTIONS): missing PROTO"
    ]


def test_duplicate_sid_is_an_error():
    text = "alert tcp any any -> any any (sid:1;)\nalert udp any any -> any any (sid:1;)\n"
    rules, _, errors = parse(text)
    assert len(rules) == 1 and rules[0].proto == "tcp"
    assert str(errors[0]) == "t.rules:2:31: duplicate sid 1 (first defined at line 1)"
    # another gid is another signature
    rules, _, errors = parse(text.replace("(sid:1;)\nalert", "(sid:1;)\nalert", 1).replace(
        "udp any any -> any any (sid:1;)", "udp any any -> any any (gid:3; sid:1;)"))
    assert len(rules) == 2 and not errors


def test_invalid_utf8_in_a_file(tmp_path):
    path = tmp_path / "bin.rules"
    path.write_bytes(b'alert tcp any any -> any any (msg:"caf\xe9"; content:"\xff\xfe"; sid:1;)\n')
    rs = load_suricata_rules(path)
    assert rs.rules[0].contents[0].pattern == b"\xff\xfe"  # the bytes as written
    assert rs.rules[0].msg == "caf\ufffd"


def test_load_a_directory_and_a_list(tmp_path):
    (tmp_path / "b.rules").write_text("alert tcp any any -> any any (sid:2;)\n")
    (tmp_path / "a.rules").write_text("alert tcp any any -> any any (sid:1;)\n")
    (tmp_path / "notes.txt").write_text("not rules")
    rs = load_suricata_rules(tmp_path)
    assert [r.sid for r in rs.rules] == [1, 2] and len(rs.files) == 2
    rs = load_suricata_rules([tmp_path / "b.rules", tmp_path / "a.rules"])
    assert [r.sid for r in rs.rules] == [2, 1]


# ============================================================ detect_format

NATIVE_SAMPLE = """\
# name                        proto src  dst    pattern
FTP-exploit1                  tcp   *    21     |50 57 44 0A 2F 69|
alert                         tcp   *    80     "alert ( ->"
"""


def test_detect_format():
    assert detect_format(NATIVE_SAMPLE) == "native"
    assert detect_format("alert tcp $HOME_NET any -> any 80 (msg:\"x\"; sid:1;)") == "suricata"
    assert detect_format("# c\n\ndrop udp [1.2.3.4, 5.6.7.8] any <> any 53 (sid:1;)") == "suricata"
    multi = 'alert http any any -> any any (msg:"x"; \\\n sid:1;)\n'
    assert detect_format(multi) == "suricata"
    # only disabled rules: judged by them
    assert detect_format("# alert tcp any any -> any any (sid:1;)\n") == "suricata"
    assert detect_format("") == "native"
    assert detect_format("alert tcp * 80 'x'") == "native"


# =========================================================== real ET rules

# Copied verbatim from ../shared/rulesets/et-open-suricata-4.0 (file:line).
ET_RULES = {
    "emerging-icmp_info.rules:91": 'alert icmp $EXTERNAL_NET any -> $HOME_NET any (msg:"GPL ICMP_INFO PING *NIX"; itype:8; content:"|10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F|"; depth:32; classtype:misc-activity; sid:2100366; rev:8; metadata:created_at 2010_09_23, updated_at 2010_09_23;)',  # noqa: E501
    "emerging-scan.rules:515": 'alert tcp $EXTERNAL_NET any -> $HOME_NET 22 (msg:"ET SCAN Potential SSH Scan"; flow:to_server; flags:S,12; threshold: type both, track by_src, count 5, seconds 120; reference:url,en.wikipedia.org/wiki/Brute_force_attack; reference:url,doc.emergingthreats.net/2001219; classtype:attempted-recon; sid:2001219; rev:20; metadata:created_at 2010_07_30, updated_at 2010_07_30;)',  # noqa: E501
    "emerging-exploit.rules:77": 'alert tcp $EXTERNAL_NET $HTTP_PORTS -> $HOME_NET any (msg:"ET EXPLOIT libPNG - Possible integer overflow in allocation in png_handle_sPLT"; flow: established; content:"|89 50 4E 47 0D 0A 1A 0A|"; depth:8; content:"sPLT"; isdataat:80,relative; content:!"|00|"; distance: 0; reference:url,www.securiteam.com/unixfocus/5ZP0C0KDPG.html; reference:url,doc.emergingthreats.net/bin/view/Main/2001195; classtype:misc-activity; sid:2001195; rev:9; metadata:created_at 2010_07_30, updated_at 2010_07_30;)',  # noqa: E501
    "emerging-shellcode.rules:265": 'alert ip $EXTERNAL_NET $SHELLCODE_PORTS -> $HOME_NET any (msg:"GPL SHELLCODE AIX NOOP"; content:"O|FF FB 82|O|FF FB 82|O|FF FB 82|O|FF FB 82|"; classtype:shellcode-detect; sid:2100640; rev:7; metadata:created_at 2010_09_23, updated_at 2010_09_23;)',  # noqa: E501
    "emerging-trojan.rules:10861": 'alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"ET TROJAN Trojan Generic - POST To gate.php with no referer"; flow:established,to_server; content:"POST"; http_method; content:"/gate.php"; http_uri; http_header_names; content:!"Referer"; classtype:trojan-activity; sid:2017930; rev:10; metadata:created_at 2014_01_03, updated_at 2014_01_03;)',  # noqa: E501
    "emerging-policy.rules:867": 'alert http $EXTERNAL_NET any -> $HOME_NET any (msg:"Java Url Lib User Agent Web Crawl"; flow:established,to_server; content:"Java/"; nocase; http_user_agent; pcre:/Java/\\d\\.\\d/Vi"; threshold: type both, track by_src, count 10, seconds 60; reference:url,www.mozilla.org/docs/netlib/seealso/netmods.html; reference:url,doc.emergingthreats.net/2002945; classtype:attempted-recon; sid:2002945; rev:12; metadata:created_at 2010_07_30, updated_at 2010_07_30;)',  # noqa: E501
    "emerging-trojan.rules:73": 'alert tcp $HOME_NET any -> $EXTERNAL_NET 443 (msg:"ET TROJAN Aurora Backdoor (C&C) client connection to CnC"; flow:established,to_server; content:"|ff ff ff ff ff ff 00 00 fe ff ff ff ff ff ff ff ff ff 88 ff|"; depth:20; flowbits:set,ET.aurora.init; reference:url,www.trustedsource.org/blog/373/An-Insight-into-the-Aurora-Communication-Protocol; reference:url,doc.emergingthreats.net/2010695; classtype:trojan-activity; sid:2010695; rev:2; metadata:created_at 2010_07_30, updated_at 2010_07_30;)',  # noqa: E501
}


@pytest.mark.parametrize("where", sorted(ET_RULES))
def test_et_rules_are_copied_verbatim(where):
    name, line = where.split(":")
    path = ET_DIR / name
    if not path.exists():
        pytest.skip("shared ET rule set not present")
    assert path.read_text(encoding="utf-8").split("\n")[int(line) - 1] == ET_RULES[where]


def et(where: str):
    rules, skipped, errors = parse_suricata_rules(ET_RULES[where], where.split(":")[0])
    return rules, skipped, errors


def test_et_icmp_ping():
    (r,), _, _ = et("emerging-icmp_info.rules:91")
    assert (r.action, r.proto, r.sid, r.rev, r.classtype) == ("alert", "icmp", 2100366, 8, "misc-activity")
    assert r.msg == "GPL ICMP_INFO PING *NIX"
    assert r.itype.value == 8
    assert r.contents[0].pattern == bytes(range(0x10, 0x20)) and r.contents[0].depth == 32
    assert r.metadata == (("created_at", "2010_09_23"), ("updated_at", "2010_09_23"))
    assert r.src.text == "$EXTERNAL_NET" and "8.8.8.8" in r.src and "10.0.0.1" in r.dst


def test_et_ssh_scan():
    (r,), _, _ = et("emerging-scan.rules:515")
    assert r.dst_port.ranges == ((22, 22),)
    assert r.flow.to_server and not r.flow.established
    assert (r.flags.flags, r.flags.ignore) == (0x02, 0xC0)
    assert (r.threshold.type, r.threshold.track, r.threshold.count, r.threshold.seconds) == (
        "both", "by_src", 5, 120,
    )  # fmt: skip
    assert r.references[0] == ("url", "en.wikipedia.org/wiki/Brute_force_attack")
    assert r.elements == ()


def test_et_libpng():
    (r,), _, _ = et("emerging-exploit.rules:77")
    assert r.src_port.text == "$HTTP_PORTS" and r.src_port.ranges == ((80, 80),)
    png, splt, isdataat, nul = r.elements
    assert png.pattern == b"\x89PNG\r\n\x1a\n" and png.depth == 8
    assert splt.pattern == b"sPLT" and splt.plain
    assert isdataat == IsDataAt(80, relative=True)
    assert nul.negated and nul.pattern == b"\0" and nul.distance == 0
    assert r.flow.established


def test_et_shellcode_ports():
    (r,), _, _ = et("emerging-shellcode.rules:265")
    assert r.proto == "ip" and r.src_port.ranges == ((0, 79), (81, 65535))
    assert r.contents[0].pattern == b"O\xff\xfb\x82" * 4


def test_et_http_sticky_alias():
    (r,), _, _ = et("emerging-trojan.rules:10861")
    assert [(c.pattern, c.buffer, c.negated) for c in r.contents] == [
        (b"POST", "http.method", False),
        (b"/gate.php", "http.uri", False),
        (b"Referer", "http.header_names", True),
    ]


def test_et_half_quoted_pcre():
    (r,), _, _ = et("emerging-policy.rules:867")
    content, pcre = r.elements
    assert content.buffer == pcre.buffer == "http.user_agent" and content.nocase
    assert pcre.regex.search(b"Java/1.6.0_21") and not pcre.regex.search(b"Java/x")


def test_et_flowbits_rule_loads():
    (r,), skipped, errors = et("emerging-trojan.rules:73")
    assert skipped == [] and errors == []
    assert r.flowbits == (Flowbit("set", ("ET.aurora.init",)),) and not r.noalert
    assert [c.depth for c in r.contents] == [20]


@pytest.mark.skipif(not ET_DIR.exists(), reason="shared ET rule set not present")
def test_et_rule_set_loads_as_in_suricata():
    logging.getLogger("pakemon.detect.suricata").setLevel(logging.ERROR)
    try:
        rs = load_suricata_rules(ET_DIR)
    finally:
        logging.getLogger("pakemon.detect.suricata").setLevel(logging.NOTSET)
    assert rs.total == 18220  # the README's count of active rules
    # Suricata rejects exactly one rule: two threshold options
    assert [(Path(e.file).name, e.line) for e in rs.errors] == [("emerging-trojan.rules", 10879)]
    assert "threshold given twice" in rs.errors[0].message
    assert len(rs.rules) >= 0.9 * rs.total
    # every other rule loads
    assert rs.skipped_by_keyword() == {}
    assert len(rs.rules) == rs.total - 1
    assert not [s for s in rs.skipped if s.keyword == "pcre-syntax"]


# ================================================================ to_rule


def test_to_rule_plain_contents():
    r = one('msg:"plain"; content:"abc"; nocase; content:"|00 01|"; classtype:misc-attack; rev:4;',
            header="alert tcp $HOME_NET any -> $EXTERNAL_NET [80,8080]")  # fmt: skip
    rule = r.to_rule()
    assert (rule.name, rule.proto, rule.sid, rule.rev, rule.msg, rule.category) == (
        "sid:1", "tcp", 1, 4, "plain", "misc-attack",
    )  # fmt: skip
    assert rule.src.any and rule.dst == PortSpec("80,8080", ((80, 80), (8080, 8080)), any=False)
    assert [(p.kind, p.value) for p in rule.patterns] == [
        (PatternKind.NOCASE, b"abc"),
        (PatternKind.BYTES, b"\x00\x01"),
    ]
    assert rule.meta["approximations"] == ["addresses $HOME_NET -> $EXTERNAL_NET not checked"]
    assert r.to_rule(ignore_addresses=False) is None
    assert "address" in r.native_blocker(ignore_addresses=False)
    RuleTree([rule])  # the native engine takes it


def test_to_rule_protocols_and_icmp_type_code():
    assert one('content:"a";', header="alert http any any -> any any").to_rule().proto == "tcp"
    assert one('content:"a";', header="alert tcp-pkt any any -> any any").to_rule().proto == "tcp"
    assert one('content:"a";', header="alert ipv6 any any -> any any").to_rule().proto == "ip"
    rule = one('itype:8; icode:0; content:"a";', header="alert icmp any any -> any any").to_rule()
    assert (rule.proto, rule.src.text, rule.dst.text) == ("icmp", "8", "0")
    assert one('content:"a"; gid:3;').to_rule().name == "gid:3:sid:1"


def test_to_rule_severity():
    assert one('content:"a"; priority:1;').to_rule().severity == 1
    r = one('content:"a"; classtype:trojan-activity;')
    assert r.to_rule().severity == 3
    assert r.to_rule(classifications={"trojan-activity": 1}).severity == 1


def test_classification_config(tmp_path):
    path = tmp_path / "classification.config"
    path.write_text("# c\nconfig classification: trojan-activity,A Network Trojan was detected,1\n")
    assert load_classification_config(path) == {"trojan-activity": 1}


@pytest.mark.parametrize(
    "options, header, reason",
    [('content:"a"; depth:3;', None, "position"), ('content:!"a";', None, "negated"),
     ('content:"a"; http_uri;', None, "buffer http.uri"), ('pcre:"/a/";', None, "pcre"),
     ('content:"a"; dsize:>3;', None, "dsize"), ("flow:established;", None, "no content"),
     ('content:"a";', "alert tcp any any <> any any", "both directions"),
     ('content:"a";', "pass tcp any any -> any any", "pass"),
     ('content:"a"; flow:stateless;', None, "flow:stateless"),
     ('content:"a";', "alert ip any 80 -> any any", "ports on an ip rule"),
     ('content:"a"; itype:3;', None, "itype/icode")],
)  # fmt: skip
def test_to_rule_refuses_what_needs_the_engine(options, header, reason):
    r = one(options, header=header or "alert tcp any any -> any any")
    assert r.to_rule() is None
    assert reason in r.native_blocker()


# ============================================================ never raises

RULE_WORDS = [
    "alert", "drop", "pass", "reject", "rejectboth", "tcp", "udp", "http", "tls", "icmp", "ip",
    "any", "$HOME_NET", "$EXTERNAL_NET", "$HTTP_PORTS", "$NOPE", "[", "]", ",", "!", "->", "<>",
    "<-", "(", ")", ";", ":", '"', "\\", "|", "80", "1:1024", "!80", "10.0.0.0/8", "::1",
    "[1.2.3.4,!$HOME_NET]", "#", "\n", "\\\n", " ",
]  # fmt: skip
OPTION_NAMES = sorted(SUPPORTED_KEYWORDS | EXTENSION_KEYWORDS) + [
    "flowbits", "byte_test", "file_data", "dns.query", "lua", "x y", "", "SID",
]  # fmt: skip
OPTION_VALUES = [
    None, "", '"abc"', '!"|41 4|"', '"a\\;b"', '"a;b"', "1", "-5", "99999999999999999999", "x",
    '"/a(?i)b/Ui"', '"/(?<=a|bc)/"', '"/[[:alpha:]/"', "/x/Q", "established,to_server",
    "to_server,to_client", "type limit, track by_src, count 1, seconds 1", "1<>3", ">1",
    "S,12", "+*!", "only", "0,1", "1,relative", "url,x", "a b, c d", '"\\x"', '"\ud800"',
    '"' + "|" * 7, "!", ",", "\\",
]  # fmt: skip


VALID_OPTIONS = [
    'msg:"m; x";', 'content:"abc";', 'content:!"|0d 0a|";', "nocase;", "depth:10;", "offset:1;",
    "distance:0;", "within:20;", "startswith;", "endswith;", "fast_pattern;", "rawbytes;",
    "http_uri;", "http_host;", "http.header;", "http_header_names;", 'uricontent:"/x";',
    'pcre:"/a(?i)b/Ui";', 'pcre:"/x/R";', 'pcre:"/y/Q";', "isdataat:1,relative;", "bsize:>1;",
    "flow:established,to_server;", "flow:only_frag;", "dsize:<100;", "flags:S,12;", "itype:8;",
    "urilen:>5;", "threshold:type limit, track by_src, count 1, seconds 60;", "flowbits:set,x;",
    "classtype:misc;", "reference:url,x;", "metadata:a b;", "rev:2;", "gid:1;", "priority:2;",
]  # fmt: skip
# (good choices, bad choices) for ACTION PROTO ADDR PORT DIRECTION
HEADER_PARTS = [
    (["alert", "drop", "pass", "reject"], ["rejectsrc", "alrt"]),
    (["tcp", "udp", "http", "icmp", "ip", "ipv6", "tcp-pkt"], ["tls", "dns", "foo"]),
    (["any", "$HOME_NET", "[10.0.0.0/8,!10.1.0.0/16]", "!$EXTERNAL_NET", "::1"], ["$NOPE", "!any"]),
    (["any", "80", "[80,!81]", "1024:", ":1023", "$HTTP_PORTS", "!80"], ["70000", "80,81"]),
    (["->", "<>"], ["<-", "=>"]),
]  # fmt: skip


@st.composite
def rule_like(draw):
    if draw(st.integers(0, 3)):  # a well-formed header, mostly
        parts = []
        for i in (0, 1, 2, 3, 4, 2, 3):
            good, bad = HEADER_PARTS[i]
            parts.append(draw(st.sampled_from(good if draw(st.integers(0, 9)) else bad)))
        header = " ".join(parts)
    else:
        header = " ".join(
            draw(st.lists(st.one_of(st.sampled_from(RULE_WORDS), st.text(max_size=6)), max_size=9))
        )
    options = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 9)) < 6:
            options.append(draw(st.sampled_from(VALID_OPTIONS)))
            continue
        name = draw(st.one_of(st.sampled_from(OPTION_NAMES), st.text(max_size=5)))
        value = draw(st.one_of(st.sampled_from(OPTION_VALUES), st.text(max_size=12)))
        end = draw(st.sampled_from([";", ";", ";", ";", ";", "", " ;", "\\;", ";\\\n"]))
        options.append(name + (f":{value}" if value is not None else "") + end)
    if draw(st.integers(0, 9)):
        options.append(f"sid:{draw(st.integers(0, 5))};")
    draw(st.randoms()).shuffle(options)
    tail = draw(st.sampled_from([")"] * 6 + ["", ") x", "\\", ")\\"]))
    return f"{header} ({' '.join(options)}{tail}"


def _check_never_raises(text: str) -> None:
    rules, skipped, errors = parse_suricata_rules(text, "fuzz.rules")
    assert not [e for e in errors if "internal parser error" in e.message], errors
    for e in errors:
        assert e.line >= 1 and e.column >= 1
        str(e)
    for s in skipped:
        assert s.message.startswith("fuzz.rules:")
    for r in rules:
        r.native_blocker()
        r.to_rule()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_never_raises_on_random_text(text):
    _check_never_raises(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule_like(), min_size=1, max_size=4))
def test_never_raises_on_rule_like_lines(lines):
    _check_never_raises("\n".join(lines))


@st.composite
def mutated_et_rule(draw):
    text = draw(st.sampled_from(sorted(ET_RULES.values())))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 5))
        insert = draw(st.one_of(st.sampled_from(RULE_WORDS), st.text(max_size=3)))
        text = text[:at] + insert + text[at + cut :]
    return text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_et_rule())
def test_never_raises_on_mutated_et_rules(text):
    _check_never_raises(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=8))
def test_pcre_translation_never_raises_anything_but_unsupported(source, flags):
    try:
        compile_pcre(source, flags)
    except PcreUnsupported:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789abcdef.:/[]!,$-_ ANYHOME", max_size=40))
def test_spec_parsing_raises_only_spec_errors(text):
    v = Vars()
    for parse_spec in (v.address, v.ports):
        try:
            spec = parse_spec(text)
        except SpecError as e:
            assert 0 <= e.offset <= len(text)
        else:
            assert spec.any or spec.ranges


def test_address_spec_contains_rejects_non_addresses():
    spec = Vars().address("$HOME_NET")
    assert "not an ip" not in spec and 42 not in spec
    assert isinstance(spec, AddressSpec)


@pytest.mark.parametrize("req, loads", [
    ("version >= 7.0.3", True), ("version >= 7", True), ("version >= 9", False),
    ("version >= 7.0.3 < 8", False), ("version >= 7.0.3 < 8 | >= 8.0.0", True),
    ("version >= 6, version < 9", True), ("feature output::file-store", False),
])
def test_requires_loads_a_rule_only_where_it_holds(req, loads):
    rules, skipped, errors = parse_suricata_rules(
        f'alert tcp any any -> any any (msg:"r"; content:"a"; requires: {req}; sid:1;)')
    assert not errors
    assert (len(rules), len(skipped)) == ((1, 0) if loads else (0, 1))
    if not loads:
        assert skipped[0].keyword == "requires"
    _, _, errors = parse_suricata_rules('alert tcp any any -> any any (requires: vers 7; sid:1;)')
    assert len(errors) == 1
