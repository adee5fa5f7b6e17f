"""IP reputation for the ``iprep`` rule keyword, as Suricata's reputation.c.

A categories file names the categories (``id,short name,description`` per
line, id 0-59); reputation files score addresses in them (``ip[/prefix],
category id,score`` per line, score 0-127; IPv4 and IPv6). A rule's
``iprep:<any|src|dst|both>,<category>,<op>,<value>`` compares a packet's
address score: an address with no score in that category (0) never
matches, whatever the operator, and a host entry wins over a network one,
the most specific network over the others, as Suricata looks the host
table up before its radix tree.

``IpReputation.load_categories(path)`` and ``load(path)`` raise
``IpRepError`` with every bad line (``FILE:LINE: why``); ``score(addr,
cat)`` takes the 4 or 16 raw bytes of an address.
"""

from __future__ import annotations

import ipaddress

MAX_CATEGORIES = 60  # Suricata's SREP_MAX_CATS
MAX_SCORE = 127


class IpRepError(ValueError):
    """A categories or reputation file that could not be read as one."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors[:3]) + (" ..." if len(errors) > 3 else ""))
        self.errors = errors


class IpReputation:
    """Categories and the scores of addresses and networks in them."""

    def __init__(self):
        self.categories: dict[str, int] = {}  # short name -> id
        self.hosts: dict[bytes, dict[int, int]] = {}  # raw address -> {category: score}
        # networks per family and prefix length, longest first: (prefix
        # length, {network's raw address masked: {category: score}})
        self._nets: dict[int, list] = {4: [], 6: []}
        self.entries = 0

    def load_categories(self, path) -> None:
        errors = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = [p.strip() for p in line.split(",", 2)]
                if len(parts) < 2 or not parts[0].isdigit() or not parts[1]:
                    errors.append(f"{path}:{n}: expected id,short name,description")
                    continue
                cid = int(parts[0])
                if cid >= MAX_CATEGORIES:
                    errors.append(f"{path}:{n}: category id {cid} over {MAX_CATEGORIES - 1}")
                    continue
                self.categories[parts[1]] = cid
        if errors:
            raise IpRepError(errors)

    def load(self, path) -> None:
        errors = []
        ids = set(self.categories.values())
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = [p.strip() for p in line.split(",")]
                if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
                    errors.append(f"{path}:{n}: expected ip[/prefix],category id,score")
                    continue
                cat, score = int(parts[1]), int(parts[2])
                if cat not in ids:
                    errors.append(f"{path}:{n}: category {cat} is not in the categories file")
                    continue
                if score > MAX_SCORE:
                    errors.append(f"{path}:{n}: score {score} over {MAX_SCORE}")
                    continue
                try:
                    net = ipaddress.ip_network(parts[0], strict=False)
                except ValueError as e:
                    errors.append(f"{path}:{n}: {e}")
                    continue
                self.entries += 1
                if net.prefixlen == net.max_prefixlen:
                    self.hosts.setdefault(net.network_address.packed, {})[cat] = score
                    continue
                nets = self._nets[net.version]
                for plen, table in nets:
                    if plen == net.prefixlen:
                        break
                else:
                    table = {}
                    nets.append((net.prefixlen, table))
                    nets.sort(key=lambda t: -t[0])
                table.setdefault(net.network_address.packed, {})[cat] = score
        if errors:
            raise IpRepError(errors)

    def score(self, addr: bytes, cat: int) -> int:
        """The address's score in ``cat``; 0 when it has none."""
        h = self.hosts.get(addr)
        if h is not None and cat in h:
            return h[cat]
        nets = self._nets[4 if len(addr) == 4 else 6]
        if nets:
            value = int.from_bytes(addr, "big")
            bits = len(addr) * 8
            for plen, table in nets:
                masked = (value >> (bits - plen) << (bits - plen)) if plen else 0
                t = table.get(masked.to_bytes(len(addr), "big"))
                if t is not None and cat in t:
                    return t[cat]
        return 0


def iprep_ok(checks, src: bytes, dst: bytes) -> bool:
    """A rule's iprep keywords (``(side, category, IntCompare, table)``)
    on a packet's addresses, as Suricata's DetectIPRepMatch."""
    for side, cat, cmp, rep in checks:
        if side == "src" or side == "dst":
            v = rep.score(src if side == "src" else dst, cat)
            ok = v > 0 and cmp.matches(v)
        elif side == "any":
            v = rep.score(src, cat)
            ok = v > 0 and cmp.matches(v)
            if not ok:
                v = rep.score(dst, cat)
                ok = v > 0 and cmp.matches(v)
        else:  # both
            v = rep.score(src, cat)
            ok = v > 0 and cmp.matches(v)
            if ok:
                v = rep.score(dst, cat)
                ok = v > 0 and cmp.matches(v)
        if not ok:
            return False
    return True
