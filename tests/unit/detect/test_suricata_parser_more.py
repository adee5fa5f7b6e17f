"""The Suricata rule parser, second part: app-layer header protocols, the
response/TLS/DNS buffers, flowbits, byte_test/byte_jump/byte_extract and
the flow/IP/TLS keywords that take ET Open 4.0 from 72% to over 99% loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pakemon.detect.suricata_parser import (
    APP_PROTO,
    NATIVE_PROTO,
    STICKY_BUFFERS,
    TRANSPORTS,
    ByteExtract,
    ByteJump,
    ByteTest,
    ContentMatch,
    Flowbit,
    IntCompare,
    StreamSize,
    buffer_app_proto,
    parse_suricata_rules,
)

ET_DIR = Path(__file__).resolve().parents[4] / "shared" / "rulesets" / "et-open-suricata-4.0"


def parse(text: str):
    return parse_suricata_rules(text, "t.rules")


def one(options: str = "", header: str = "alert tcp any any -> any any"):
    rules, skipped, errors = parse(f"{header} ({options} sid:1;)")
    assert not skipped, [s.message for s in skipped]
    assert not errors, [str(e) for e in errors]
    return rules[0]


def error(options: str, header: str = "alert tcp any any -> any any") -> str:
    rules, skipped, errors = parse(f"{header} ({options} sid:1;)")
    assert not rules and not skipped, (rules, skipped)
    assert len(errors) == 1
    return errors[0].message


def et(name: str, lineno: int):
    """One real ET Open rule, parsed: (rule, its text)."""
    # split on \n only, as the loader does (a bare \r is not a line end there)
    text = (ET_DIR / name).read_bytes().decode("utf-8").split("\n")[lineno - 1]
    rules, skipped, errors = parse_suricata_rules(text, name)
    assert not skipped and not errors, (skipped, [str(e) for e in errors])
    return rules[0], text


# ============================================================ header protocols


@pytest.mark.parametrize(
    "proto, app, transports, native",
    [("http", "http", ("tcp",), "tcp"), ("tls", "tls", ("tcp",), "tcp"),
     ("ssl", "tls", ("tcp",), "tcp"), ("ssh", "ssh", ("tcp",), "tcp"),
     ("ftp", "ftp", ("tcp",), "tcp"), ("smtp", "smtp", ("tcp",), "tcp"),
     ("smb", "smb", ("tcp",), "tcp"), ("dns", "dns", ("udp", "tcp"), None),
     ("pkthdr", None, ("ip",), "ip"), ("tcp", None, ("tcp",), "tcp")],
)  # fmt: skip
def test_header_protocol_keeps_its_word_and_names_transports(proto, app, transports, native):
    r = one('content:"a";', header=f"alert {proto.upper()} any any -> any any")
    assert (r.proto, r.app_proto) == (proto, app)
    assert TRANSPORTS[r.proto] == transports
    assert NATIVE_PROTO.get(r.proto) == native
    native_rule = r.to_rule()
    if native is None:
        assert native_rule is None
        assert "runs over udp and tcp" in r.native_blocker()
    else:
        assert native_rule.proto == native


def test_every_header_protocol_has_transports():
    assert set(APP_PROTO) <= set(TRANSPORTS)
    assert all(t and set(t) <= {"tcp", "udp", "icmp", "ip"} for t in TRANSPORTS.values())


def test_pkthdr_with_decode_event():
    r = one("decode-event:ipv4.trunc_pkt;", header="alert pkthdr any any -> any any")
    assert r.proto == "pkthdr" and r.decode_events == ("ipv4.trunc_pkt",)


# ====================================================== app_proto from keywords


@pytest.mark.parametrize(
    "options, app",
    [('tls_sni; content:"x.com";', "tls"), ('content:"/a"; http_uri;', "http"),
     ('dns_query; content:"evil";', "dns"), ('pcre:"/200/S";', "http"),
     ("ssl_version:tls1.0;", "tls"), ("ssl_state:client_hello;", "tls"),
     ('file_data; content:"MZ";', None), ('content:"a";', None)],
)  # fmt: skip
def test_keywords_set_the_app_protocol_as_suricata_does(options, app):
    assert one(options).app_proto == app


@pytest.mark.parametrize(
    "options, header",
    [('content:"a"; http_uri;', "alert tls any any -> any any"),
     ('tls_sni; content:"a"; http.uri; content:"b";', "alert tcp any any -> any any"),
     ('dns_query; content:"a"; tls.sni; content:"b";', "alert tcp any any -> any any"),
     ("ssl_state:client_hello;", "alert dns any any -> any any"),
     ('file_data; content:"a";', "alert dns any any -> any any")],
)  # fmt: skip
def test_conflicting_app_protocols_are_an_error(options, header):
    message = error(options, header)
    assert "conflicting keywords" in message or "needs an http or smtp rule" in message


def test_file_data_in_smtp_rule():
    r = one('file_data; content:"%PDF";', header="alert smtp any any -> any any")
    assert r.app_proto == "smtp" and r.contents[0].buffer == "file.data"


def test_buffer_app_proto():
    assert buffer_app_proto("http.stat_code") == "http"
    assert buffer_app_proto("tls.cert_serial") == "tls"
    assert buffer_app_proto("dns.query") == "dns"
    assert buffer_app_proto("file.data") is None and buffer_app_proto(None) is None


# ================================================================== buffers


@pytest.mark.parametrize(
    "old, new",
    [("file_data", "file.data"), ("http_accept", "http.accept"),
     ("http_accept_enc", "http.accept_enc"), ("http_accept_lang", "http.accept_lang"),
     ("http_content_type", "http.content_type"), ("http_content_len", "http.content_len"),
     ("http_connection", "http.connection"), ("http_referer", "http.referer"),
     ("http_protocol", "http.protocol"), ("http_start", "http.start"),
     ("http_response_line", "http.response_line"), ("tls_sni", "tls.sni"),
     ("tls_cert_subject", "tls.cert_subject"), ("tls_cert_issuer", "tls.cert_issuer"),
     ("tls_cert_serial", "tls.cert_serial"), ("tls_cert_fingerprint", "tls.cert_fingerprint"),
     ("dns_query", "dns.query")],
)  # fmt: skip
def test_suricata4_sticky_names_are_the_dotted_buffers(old, new):
    assert STICKY_BUFFERS[old] == STICKY_BUFFERS[new] == new
    r = one(f'{old}; content:"a"; content:"b"; distance:0;')
    assert [c.buffer for c in r.contents] == [new, new]


@pytest.mark.parametrize(
    "sticky", ["http.server", "http.location", "http.stat_code", "http.stat_msg",
               "http.header.raw", "http.host.raw", "http.response_line"],
)  # fmt: skip
def test_suricata6_only_sticky_buffers(sticky):
    r = one(f'{sticky}; content:"A";')
    assert r.contents[0].buffer == sticky and r.app_proto == "http"


@pytest.mark.parametrize(
    "modifier, buffer",
    [("http_stat_code", "http.stat_code"), ("http_stat_msg", "http.stat_msg"),
     ("http_raw_host", "http.host.raw"), ("http_server_body", "file.data")],
)  # fmt: skip
def test_response_content_modifiers(modifier, buffer):
    r = one(f'content:"200"; {modifier}; content:"x";')
    assert [c.buffer for c in r.contents] == [buffer, None]


def test_raw_host_keeps_case_unlike_host():
    assert one('content:"Evil.COM"; http_raw_host;').contents[0].pattern == b"Evil.COM"
    assert "lower case" in error('content:"Evil.COM"; http_host;')


def test_pcre_buffer_flag_must_agree_with_the_sticky_buffer():
    assert one('file_data; pcre:"/MZ/Q";').pcres[0].buffer == "file.data"
    assert "inside sticky buffer file.data" in error('file_data; pcre:"/200/S";')


def test_et_dns_query_rule():
    r, _ = et("emerging-dns.rules", 185)
    assert (r.proto, r.app_proto, TRANSPORTS[r.proto]) == ("dns", "dns", ("udp", "tcp"))
    assert [(c.pattern, c.negated, c.buffer) for c in r.contents] == [
        (b".pw", False, "dns.query"), (b".u.pw", True, "dns.query"),
    ]  # fmt: skip
    assert [e.buffer for e in r.elements] == ["dns.query"] * 4


def test_et_http_stat_code_modifier_and_file_data():
    rules, skipped, errors = parse(
        'alert http $EXTERNAL_NET any -> $HOME_NET any (msg:"x"; flow:established,to_client; '
        'content:"200"; http_stat_code; file_data; content:"MZ"; within:2; sid:7;)'
    )
    (r,) = rules
    assert [(c.pattern, c.buffer) for c in r.contents] == [
        (b"200", "http.stat_code"), (b"MZ", "file.data"),
    ]  # fmt: skip


# ================================================================= flowbits


def test_flowbits_commands():
    r = one(
        "flowbits:set,ET.a; flowbits:isset,b|c; flowbits:isnotset,d&e; flowbits:unset,f; "
        "flowbits:toggle,g; flowbits: noalert;"
    )
    assert r.flowbits == (
        Flowbit("set", ("ET.a",)), Flowbit("isset", ("b", "c"), any_of=True),
        Flowbit("isnotset", ("d", "e")), Flowbit("unset", ("f",)), Flowbit("toggle", ("g",)),
        Flowbit("noalert"),
    )  # fmt: skip
    assert r.noalert
    assert not one("flowbits:set,a;").noalert
    blocker = one('flowbits:set,a; content:"a";').native_blocker()
    assert "flowbits need the matching engine" in blocker


@pytest.mark.parametrize(
    "value, message",
    [("sett,a", "unknown command 'sett'"), ("set", "needs a name"),
     ("isset,", "needs a name"), ("set,a|b", "can't take alternatives"),
     ("isset,a|b&c", "both '|' and '&'"), ("noalert,x", "takes no name"),
     ("isset,a b", "invalid name"), ("isset,a||b", "invalid name")],
)  # fmt: skip
def test_flowbits_errors(value, message):
    assert message in error(f"flowbits:{value};")


def test_et_flowbits_noalert_rule():
    r, _ = et("emerging-current_events.rules", 181)
    assert [f.cmd for f in r.flowbits] == ["set", "noalert"] and r.noalert
    assert r.flowbits[0].names == ("et.exploitkitlanding",)
    r, _ = et("emerging-current_events.rules", 2017)
    assert r.flowbits == (Flowbit("set", ("ET.MalformedTLSHB",)),) and not r.noalert


# ================================================================ byte_test


@pytest.mark.parametrize(
    "value, expected",
    [("1,&,128,0,relative", ByteTest(1, "&", 128, 0, relative=True)),
     ("1,!&,64,0", ByteTest(1, "&", 64, 0, negated=True)),
     ("4,>,1000,-10,relative,little", ByteTest(4, ">", 1000, -10, relative=True,
                                               big_endian=False)),
     ("2,=,0x10,0", ByteTest(2, "=", 16, 0)), ("2,=,010,0", ByteTest(2, "=", 8, 0)),
     ("2,!=,5,0", ByteTest(2, "=", 5, 0, negated=True)),
     ("2,!,5,0", ByteTest(2, "=", 5, 0, negated=True)),
     ("3, <= ,100,0,string,dec", ByteTest(3, "<=", 100, 0, string_base=10)),
     ("5,<,0x1F,0,relative,string,hex", ByteTest(5, "<", 31, 0, relative=True, string_base=16)),
     ("2,^,3,0,string", ByteTest(2, "^", 3, 0, string_base=10)),
     ("0,>,99,0,string,dec", ByteTest(0, ">", 99, 0, string_base=10)),
     ("2,>=,1,0,bitmask 0x3ff0", ByteTest(2, ">=", 1, 0, bitmask=0x3FF0))],
)  # fmt: skip
def test_byte_test_forms(value, expected):
    assert one(f"byte_test:{value};").elements == (expected,)


@pytest.mark.parametrize(
    "value, message",
    [("9,=,1,0", "1 to 8 without 'string'"), ("24,=,1,0,string", "0 to 23 with 'string'"),
     ("0,=,1,0", "1 to 8 without"), ("2,=>,1,0", "invalid operator"),
     ("2,,1,0", "expected N,[!]OP"), ("2,!<>,1,0", "invalid operator"),
     ("2,=,1,0,hex", "needs 'string'"),
     ("2,=,1,0,middle", "unknown option 'middle'"), ("2,=,1", "expected N,[!]OP"),
     ("2,=,-1,0", "out of range"), ("2,=,1,70000", "out of range"),
     ("2,=,x1,0", "unknown byte_extract variable 'x1'"), ("2,=,1,0,big,little", "both big"),
     ("2,=,1,0,bitmask", "bitmask needs a value"), ("2,=,1,0,bitmask 0", "out of range"),
     ("2,=,1x,0", "value must be a number")],
)  # fmt: skip
def test_byte_test_errors(value, message):
    assert message in error(f"byte_test:{value};")


def test_byte_dce_needs_dcerpc_and_skips():
    (s,) = parse("alert tcp any any -> any any (byte_test:2,=,1,0,relative,dce; sid:1;)")[1]
    assert s.keyword == "byte_test/dce"


# ================================================================ byte_jump


@pytest.mark.parametrize(
    "value, expected",
    [("4,-4,relative,from_beginning,little",
      ByteJump(4, -4, relative=True, from_beginning=True, big_endian=False)),
     ("2,0,relative,align", ByteJump(2, 0, relative=True, align=True)),
     ("2,1,relative,little,from_beginning, post_offset -1",
      ByteJump(2, 1, relative=True, big_endian=False, from_beginning=True, post_offset=-1)),
     ("2,0,relative,multiplier 2,little,string,hex",
      ByteJump(2, 0, relative=True, multiplier=2, big_endian=False, string_base=16)),
     ("1,0,from_end,bitmask 0x0f", ByteJump(1, 0, from_end=True, bitmask=15))],
)  # fmt: skip
def test_byte_jump_forms(value, expected):
    assert one(f"byte_jump:{value};").elements == (expected,)


@pytest.mark.parametrize(
    "value, message",
    [("2,0,from_beginning,from_end", "exclude each other"),
     ("2,0,multiplier 0", "multiplier 0 out of range"), ("2,0,post_offset x", "must be a number"),
     ("9,0", "1 to 8 without"), ("2", "expected N,OFFSET"), ("2,0,align 4", "unknown option"),
     ("2,nope", "unknown byte_extract variable 'nope'")],
)  # fmt: skip
def test_byte_jump_errors(value, message):
    assert message in error(f"byte_jump:{value};")


# ============================================================== byte_extract


def test_byte_extract_variable_feeds_later_keywords():
    r = one(
        'content:"|16 03|"; byte_extract:2,3,rec.len,relative,little; '
        "byte_test:2,>,rec.len,6; byte_jump:2,rec.len; "
        'content:"x"; distance:rec.len; within:rec.len; content:"y"; offset:rec.len; '
        "depth:rec.len;"
    )
    extract, test, jump = r.elements[1:4]
    assert extract == ByteExtract(2, 3, "rec.len", relative=True, big_endian=False)
    assert (test.value, jump.offset) == ("rec.len", "rec.len")
    x, y = r.contents[1:]
    assert (x.distance, x.within, y.offset, y.depth) == ("rec.len",) * 4
    assert "byte_extract needs the matching engine" in r.native_blocker()


def test_byte_extract_variable_must_be_defined_before():
    assert "unknown byte_extract variable 'n'" in error(
        'content:"a"; within:n; byte_extract:1,0,n;'
    )
    assert "unknown byte_extract variable" in error("byte_test:1,=,n,0; byte_extract:1,0,n;")


def test_variable_depth_skips_the_length_check():
    # a literal depth below the content's length is an error; a variable can't be checked
    assert "less than the content's length" in error('content:"abcd"; depth:2;')
    assert one('byte_extract:1,0,n; content:"abcd"; depth:n;').contents[0].depth == "n"


@pytest.mark.parametrize(
    "value, expected",
    [("1,0,size,relative", ByteExtract(1, 0, "size", relative=True)),
     ("4,2,len,multiplier 4,little,align 4",
      ByteExtract(4, 2, "len", multiplier=4, big_endian=False, align=4)),
     ("14,0,h,string,hex", ByteExtract(14, 0, "h", string_base=16)),
     ("3,0,d,string", ByteExtract(3, 0, "d", string_base=10))],
)  # fmt: skip
def test_byte_extract_forms(value, expected):
    assert one(f"byte_extract:{value};").elements == (expected,)


@pytest.mark.parametrize(
    "value, message",
    [("2,0,n,string,little", "can't be combined with big/little"),
     ("2,0,n,align 3", "align must be 2 or 4"), ("2,0,n,relative,relative", "relative given twice"),
     ("15,0,n,string,hex", "1 to 14 with"), ("0,0,n", "1 to 8 without"),
     ("2,0,1n", "invalid variable name"), ("2,0", "expected N,OFFSET,NAME"),
     ("2,x,n", "offset must be a number")],
)  # fmt: skip
def test_byte_extract_errors(value, message):
    assert message in error(f"byte_extract:{value};")


def test_et_byte_extract_in_file_data():
    r, _ = et("emerging-current_events.rules", 2521)
    extract = next(e for e in r.elements if isinstance(e, ByteExtract))
    assert (extract.name, extract.buffer, extract.relative) == ("size", "file.data", True)
    within_size = [c for c in r.contents if c.within == "size" or c.distance == "size"]
    assert len(within_size) == 2 and all(c.buffer == "file.data" for c in within_size)


# ============================================================ byte_* buffers


def test_byte_keyword_buffers():
    r = one(
        'content:"a"; http_header; byte_test:1,=,1,0,relative; byte_test:1,=,1,0; '
        'http.uri; byte_jump:1,0;'
    )
    assert [e.buffer for e in r.elements] == ["http.header", "http.header", None, "http.uri"]
    r = one('content:"a"; byte_jump:1,0,relative; pcre:"/b/R";')
    assert [e.buffer for e in r.elements] == [None, None, None]


# ============================================================== other keywords


def test_tag_is_accepted_and_kept_nowhere():
    for value in ("session,300,packets", " session, 10, packets", "session", "host,5,seconds,src",
                  "session,16,seconds"):  # fmt: skip
        r = one(f'content:"a"; tag:{value};')
        assert r.contents[0].pattern == b"a" and "tag" in r.options
    for value, message in (("flow,5,packets", "expected session or host"),
                           ("session,x,packets", "expected session[,COUNT"),
                           ("session,5,packets,src", "unexpected 'src'")):  # fmt: skip
        assert message in error(f"tag:{value};")


def test_stream_size():
    r = one("stream_size:client,>,424; stream_size:client,<,685; stream_size:either,!=, 0;")
    assert r.stream_size == (
        StreamSize("client", ">", 424), StreamSize("client", "<", 685),
        StreamSize("either", "!=", 0),
    )  # fmt: skip
    assert r.stream_size[0].matches(425) and not r.stream_size[1].matches(685)
    for value in ("server,>>,1", "sender,>,1", "server,>", "server,>,99999999999"):
        assert "stream_size" in error(f"stream_size:{value};")


def test_ip_proto_and_id():
    r = one("ip_proto:47; id:31337;", header="alert ip any any -> any any")
    assert (r.ip_proto, r.ip_id) == (IntCompare("=", 47, None, "47"), 31337)
    assert one("ip_proto:!tcp;").ip_proto == IntCompare("!=", 6, None, "!tcp")
    assert one("ip_proto:<IPV6;").ip_proto.op == "<"
    assert "unknown protocol name 'tcpp'" in error("ip_proto:tcpp;")
    assert "out of range" in error("ip_proto:256;")
    assert "out of range" in error("id:65536;")
    assert "ip_proto needs the matching engine" in one('ip_proto:6; content:"a";').native_blocker()


def test_ssl_version_and_state():
    r = one("ssl_version:sslv3, tls1.0; ssl_state:client_hello|!server_hello;")
    assert r.ssl_version == ("sslv3", "tls1.0")
    assert r.ssl_state == ("client_hello", "!server_hello")
    assert r.app_proto == "tls"
    assert "unknown version 'tls2'" in error("ssl_version:tls2;")
    assert "unknown state 'hello'" in error("ssl_state:hello;")


# =============================================================== ET Open


def test_et_tls_sni_rule():
    text = (ET_DIR / "emerging-trojan.rules").read_bytes().decode("utf-8")
    rules, _, errors = parse_suricata_rules(text, "t")
    sni = [r for r in rules if any(c.buffer == "tls.sni" for c in r.contents)]
    assert len(sni) >= 20
    assert all(r.app_proto == "tls" for r in sni)
    subject = [r for r in rules if any(c.buffer == "tls.cert_subject" for c in r.contents)]
    assert subject and all(r.proto in ("tls", "tcp") for r in subject)


def test_et_unbracketed_port_list_loads():
    r, _ = et("emerging-trojan.rules", 10727)
    assert r.sid == 2020215 and 445 not in r.dst_port and 5801 in r.dst_port


def test_et_content_with_distance_variable_is_a_str():
    r, _ = et("emerging-current_events.rules", 2017)
    tests = [e for e in r.elements if isinstance(e, ByteTest)]
    assert [t.value for t in tests] == [4, 2, "record_len"]
    assert all(isinstance(c, ContentMatch) for c in r.contents)


# ============================================================ never raises

NEW_KEYWORDS = [
    "byte_test", "byte_jump", "byte_extract", "flowbits", "tag", "stream_size", "ip_proto", "id",
    "ssl_version", "ssl_state", "file_data", "tls_sni", "dns_query", "http_stat_code",
    "http_server_body", "content", "distance", "within", "offset", "depth", "pcre",
]  # fmt: skip
NEW_VALUES = [
    None, "", "1,&,128,0,relative", "2,0,relative,post_offset -4", "2,0,n,relative", "n",
    "set,a|b", "isset,a&b", "noalert", "session,5,packets", "client,>,5", "!tcp", "tls1.0",
    "client_hello|!unknown", '"a"', '"/a/Q"', "0x10", "-1", "4,>,n,n", "2,=,1,0,bitmask 0x0",
    ",,,", "1,0,string,hex,little", "9999999999999999999999",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["tcp", "udp", "tls", "dns", "http", "smtp", "pkthdr", "ip"]),
    st.lists(
        st.tuples(st.sampled_from(NEW_KEYWORDS),
                  st.one_of(st.sampled_from(NEW_VALUES), st.text(max_size=10))),
        max_size=8,
    ),
)  # fmt: skip
def test_new_keywords_never_raise(proto, options):
    body = " ".join(k + (f":{v}" if v is not None else "") + ";" for k, v in options)
    rules, skipped, errors = parse(f"alert {proto} any any -> any any ({body} sid:1;)")
    assert not [e for e in errors if "internal parser error" in e.message], errors
    for r in rules:
        r.native_blocker()
        r.to_rule()
        for e in r.contents:  # a variable position always names a byte_extract before it
            for value in (e.offset, e.depth, e.distance, e.within):
                assert value is None or isinstance(value, int) or value in {
                    x.name for x in r.elements if isinstance(x, ByteExtract)
                }


def test_tcp_flags_is_suricata8_name_of_flags():
    rules, skipped, errors = parse_suricata_rules(
        'alert tcp any any -> any any (tcp.flags:S,CE; sid:1;)\n'
        'alert tcp any any -> any any (flags:S; tcp.flags:A; sid:2;)\n', "t.rules")
    assert not skipped and len(rules) == 1 and len(errors) == 1
    assert rules[0].flags.matches(0x02) and not rules[0].flags.matches(0x12)
    assert "flags given twice" in errors[0].message


def test_threshold_track_by_flow():
    rules, _, errors = parse_suricata_rules(
        'alert tcp any any -> any any (content:"a"; '
        'threshold:type limit, track by_flow, count 1, seconds 60; sid:1;)\n', "t.rules")
    assert not errors and rules[0].threshold.track == "by_flow"
