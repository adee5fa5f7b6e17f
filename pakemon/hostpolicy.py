"""Per-destination target policies: Snort's host attribute table in small.

File format: one ``CIDR POLICY`` per line (IPv4 or IPv6; a bare address is
a /32 or /128), ``#`` starts a comment, the most specific block wins. Policy
names are Suricata's host-os-policy names plus ``linux-current`` and
``drop-overlap``; a name selects both the defrag and the stream policy, as
Suricata does (``pakemon.config.DEFRAG_FOR_HOST``, ``STREAM_FOR_HOST``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .config import DEFRAG_FOR_HOST, HOST_POLICY_NAMES, STREAM_FOR_HOST


class HostPolicyError(Exception):
    """Errors in a host-policy file, each as FILE:LINE:COLUMN: message."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass
class HostPolicy:
    """Longest-prefix match of raw addresses to policy names."""

    # per family: list of (prefixlen, {network int: name}), longest first
    v4: list
    v6: list

    @classmethod
    def parse(cls, text: str, filename: str = "<string>") -> "HostPolicy":
        tables = {4: {}, 6: {}}
        errors = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0]
            fields = line.split()
            if not fields:
                continue
            col = len(raw) - len(raw.lstrip()) + 1
            if len(fields) != 2:
                errors.append(f"{filename}:{lineno}:{col}: expected 'CIDR POLICY'")
                continue
            cidr, name = fields
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError as e:
                errors.append(f"{filename}:{lineno}:{col}: bad address block {cidr!r}: {e}")
                continue
            name = name.lower()
            if name not in HOST_POLICY_NAMES:
                pcol = raw.index(fields[1], col - 1 + len(cidr)) + 1
                errors.append(f"{filename}:{lineno}:{pcol}: unknown policy {fields[1]!r}: "
                              f"expected one of {', '.join(HOST_POLICY_NAMES)}")
                continue
            tables[net.version].setdefault(net.prefixlen, {})[int(net.network_address)] = name
        if errors:
            raise HostPolicyError(errors)
        return cls(*(sorted(tables[v].items(), reverse=True) for v in (4, 6)))

    @classmethod
    def load(cls, path) -> "HostPolicy":
        with open(path, encoding="utf-8", errors="replace") as f:
            return cls.parse(f.read(), str(path))

    def lookup(self, addr: bytes) -> str | None:
        """The policy name for a raw 4- or 16-byte address, or None."""
        if len(addr) == 4:
            table, bits = self.v4, 32
        else:
            table, bits = self.v6, 128
        value = int.from_bytes(addr, "big")
        for plen, nets in table:
            name = nets.get(value >> (bits - plen) << (bits - plen) if plen else 0)
            if name is not None:
                return name
        return None

    def defrag_policy(self, addr: bytes, default: str) -> str:
        name = self.lookup(addr)
        return DEFRAG_FOR_HOST.get(name, default) if name else default

    def stream_policy(self, addr: bytes, default: str) -> str:
        name = self.lookup(addr)
        return (STREAM_FOR_HOST.get(name) or default) if name else default
