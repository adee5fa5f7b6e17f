"""The rule tree as kernel service keys (pure: no bcc, no root)."""

from __future__ import annotations

from pakemon import abi
from pakemon.capture.xdp import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, service_keys
from pakemon.detect.ruletree import RuleTree

from helpers import BUNDLED_RULES, rules_from

DST, SRC = abi.Dir.DST, abi.Dir.SRC


def keys_of(text):
    return service_keys(RuleTree(rules_from(text)))


def test_destination_ports_become_dst_keys_and_src_is_left_to_userland():
    keys, any_bits = keys_of('a tcp * 80 "x"\nb tcp 1024:65535 25 "y"\nc udp * 53 *\n')
    assert keys == {(IPPROTO_TCP, DST, 80): 1, (IPPROTO_TCP, DST, 25): 1,
                    (IPPROTO_UDP, DST, 53): 1}
    assert any_bits == 0


def test_source_port_with_any_destination_becomes_src_keys():
    keys, _ = keys_of("bd tcp 1243,6776 * *\n")
    assert set(keys) == {(IPPROTO_TCP, SRC, 1243), (IPPROTO_TCP, SRC, 6776)}


def test_ranges_expand_port_by_port_and_nodes_are_counted():
    keys, _ = keys_of('a tcp * 6000:6003 "x"\nb tcp * 6001 "y"\n')
    assert keys == {(IPPROTO_TCP, DST, p): (2 if p == 6001 else 1) for p in range(6000, 6004)}


def test_icmp_types_key_both_families():
    keys, any_bits = keys_of("e icmp 8 0 *\n")
    assert set(keys) == {(IPPROTO_ICMP, DST, 8), (IPPROTO_ICMPV6, DST, 8)}
    assert any_bits == 0


def test_any_ports_and_ip_rules_set_flags():
    _, bits = keys_of("u udp * * *\ni icmp * 0 *\n")
    assert bits == abi.ANY.UDP | abi.ANY.ICMP
    _, bits = keys_of('x ip * * "y"\n')
    assert bits == abi.ANY.TCP | abi.ANY.UDP | abi.ANY.ICMP | abi.ANY.OTHER


def test_bundled_rules_fit_the_service_map():
    keys, _ = service_keys(RuleTree(rules_from(BUNDLED_RULES.read_text())))
    assert 0 < len(keys) <= abi.SERVICE_MAX
