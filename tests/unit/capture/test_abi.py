"""pakemon/abi.py against bpf/pakemon_abi.h, checked by a C compiler.

A probe including the header prints sizeof, offsetof and sizeof of every
field of every shared struct, and the value of every shared constant; the
test compares them with the ctypes mirror (cilium's alignchecker idea, with
cc instead of BTF). Skipped when no C compiler is installed.
"""

from __future__ import annotations

import ctypes as ct
import shutil
import subprocess
from pathlib import Path

import pytest

from pakemon import abi

ROOT = Path(__file__).resolve().parents[3]
BPF_DIR = ROOT / "bpf"
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")

# C name -> Python value, for every number the header shares.
CONSTANTS = {
    "PK_ABI_VERSION": abi.ABI_VERSION,
    "PK_SNAPLEN_MAX": abi.SNAPLEN_MAX,
    "PK_SNAPLEN_DEFAULT": abi.SNAPLEN_DEFAULT,
    "PK_SERVICE_MAX": abi.SERVICE_MAX,
    "PK_BYPASS_MAX": abi.BYPASS_MAX,
    "PK_BLOCK_MAX": abi.BLOCK_MAX,
    "PK_IPV6_EXT_MAX": abi.IPV6_EXT_MAX,
    "PK_VLAN_MAX": abi.VLAN_MAX,
    "PK_PENDING_MAX": abi.PENDING_MAX,
    "PK_COALESCE_HDR_MAX": abi.COALESCE_HDR_MAX,
    "PK_COALESCE_BYTES_MAX": abi.COALESCE_BYTES_MAX,
    "PK_COALESCE_HOLD_NS": abi.COALESCE_HOLD_NS,
    "PK_COALESCE_QUIET_NS": abi.COALESCE_QUIET_NS,
    **{f"PK_HOOK_{m.name}": m.value for m in abi.Hook},
    **{f"PK_EVF_{m.name}": m.value for m in abi.EVF},
    **{("PK_CNT__MAX" if m is abi.Counter.MAX_ else f"PK_CNT_{m.name}"): m.value
       for m in abi.Counter},
    **{f"PK_ANY_{m.name}": m.value for m in abi.ANY},
    **{f"PK_CFG_{m.name}": m.value for m in abi.CFG},
    **{f"PK_DIR_{m.name}": m.value for m in abi.Dir},
}


def _probe_source() -> str:
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/bpf.h>",
             '#include "pakemon_abi.h"',
             "int main(void) {"]
    for cname, cls in abi.SHARED_STRUCTS.items():
        lines.append(f'printf("struct {cname} %zu\\n", sizeof(struct {cname}));')
        for fname, _ in cls._fields_:
            lines.append(
                f'printf("field {cname} {fname} %zu %zu\\n", offsetof(struct {cname}, {fname}),'
                f" sizeof(((struct {cname} *)0)->{fname}));")
    for name in CONSTANTS:
        lines.append(f'printf("const {name} %lld\\n", (long long)({name}));')
    lines += ["return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler (cc) to build the ABI probe")
    d = tmp_path_factory.mktemp("abi")
    src = d / "probe.c"
    exe = d / "probe"
    src.write_text(_probe_source())
    # -Wpadded -Werror: the header promises no implicit padding (every byte
    # of a hash key is hashed, so padding must be explicit and zeroed).
    build = subprocess.run([CC, "-Wall", "-Wpadded", "-Werror", "-I", str(BPF_DIR),
                            "-o", str(exe), str(src)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    structs, fields, consts = {}, {}, {}
    for line in out.splitlines():
        kind, *rest = line.split()
        if kind == "struct":
            structs[rest[0]] = int(rest[1])
        elif kind == "field":
            fields[(rest[0], rest[1])] = (int(rest[2]), int(rest[3]))
        else:
            consts[rest[0]] = int(rest[1])
    return structs, fields, consts


@pytest.mark.parametrize("cname", sorted(abi.SHARED_STRUCTS))
def test_struct_layout_matches_header(probe, cname):
    structs, fields, _ = probe
    cls = abi.SHARED_STRUCTS[cname]
    assert structs[cname] == ct.sizeof(cls), f"sizeof(struct {cname})"
    for fname, _ in cls._fields_:
        desc = getattr(cls, fname)
        assert fields[(cname, fname)] == (desc.offset, desc.size), f"{cname}.{fname}"


@pytest.mark.parametrize("cname", sorted(abi.SHARED_STRUCTS))
def test_struct_has_no_hidden_fields(cname):
    # With no implicit padding (checked by -Wpadded above), equal sizes and
    # equal offsets leave no room for a C field the mirror lacks.
    cls = abi.SHARED_STRUCTS[cname]
    assert sum(getattr(cls, f).size for f, _ in cls._fields_) == ct.sizeof(cls)


def test_constants_match_header(probe):
    _, _, consts = probe
    wrong = {name: (consts[name], value) for name, value in CONSTANTS.items()
             if consts[name] != value}
    assert not wrong, f"C value, Python value: {wrong}"


def test_counter_indices_are_dense():
    # The per-CPU array is indexed by these: a gap would be a counter
    # nobody reads, a duplicate two counters in one slot.
    values = sorted(m.value for m in abi.Counter)
    assert values == list(range(abi.Counter.MAX_ + 1))


def test_flow_key_holds_wire_bytes():
    key = abi.flow_key("192.0.2.1", "198.51.100.7", 1234, 80, 6)
    raw = bytes(key)
    assert raw[:8] == bytes([4, 6]) + (1234).to_bytes(2, "big") + (80).to_bytes(2, "big") + b"\0\0"
    assert raw[8:24] == bytes([192, 0, 2, 1]) + bytes(12)
    assert raw[24:40] == bytes([198, 51, 100, 7]) + bytes(12)


def test_flow_key_ipv6_and_portless_protocols():
    key = abi.flow_key(bytes(15) + b"\1", "2001:db8::2", 5, 6, 58)
    raw = bytes(key)
    assert raw[0] == 6 and raw[1] == 58
    assert raw[2:6] == bytes(4)  # ICMPv6: no ports in the key
    assert raw[8:24] == bytes(15) + b"\1"
    with pytest.raises(ValueError):
        abi.flow_key("192.0.2.1", "2001:db8::2", 1, 2, 17)
