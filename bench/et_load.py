"""Benchmark: loading the Emerging Threats Open rule set (Suricata 4.0 edition).

Loads every ``*.rules`` file of ../shared/rulesets/et-open-suricata-4.0/
(38 .rules files, 18,220 active rules; the README says 37) with ``pakemon.detect.suricata_parser`` and
prints the loading report of the Suricata-rules issue: rules loaded (target:
at least 90%), rules skipped by keyword (top 20), parse errors, the loaded
rules by app-layer protocol (from the header or the keywords), load time,
peak memory, and the share of rules whose every option keyword is supported.

    .venv/bin/python bench/et_load.py [RULES_DIR] [--repeat N] [--no-tracemalloc]
                                      [--json FILE]

Time is the best of N loads without tracing. Memory is reported twice: the
process's peak RSS (VmHWM: interpreter, modules and the loaded rule set
together) and, in one extra traced load, tracemalloc's peak and what stays
allocated once loading is done (the rule set itself). The tracemalloc pass is
several times slower; it does not count in the time.

"Supported" shares, over all active rules:
  options (issue list)  every option keyword is in ``SUPPORTED_KEYWORDS``
  options (+ aliases)   the same, counting the old spellings uricontent,
                        http_request_line, http_header_names (which the
                        parser accepts, ``EXTENSION_KEYWORDS``)
  loadable              actually loaded: options, protocol, pcre syntax and
                        values all fine
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time
import tracemalloc
from collections import Counter

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from pakemon.detect.suricata_parser import (  # noqa: E402
    EXTENSION_KEYWORDS,
    SUPPORTED_KEYWORDS,
    load_suricata_rules,
)

DEFAULT_DIR = os.path.join(ROOT, "..", "shared", "rulesets", "et-open-suricata-4.0")
TARGET = 0.90


def vm_hwm_kib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:6.2f}%" if total else "   n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rules_dir", nargs="?", default=DEFAULT_DIR)
    ap.add_argument("--repeat", type=int, default=3, help="timed loads (best is shown)")
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip the traced load")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()

    # one warning a skipped rule is the loader's job; here only the report counts
    logging.getLogger("pakemon.detect.suricata").setLevel(logging.ERROR)

    rss_before = vm_hwm_kib()
    times = []
    rs = None
    for _ in range(max(1, args.repeat)):
        rs = None
        gc.collect()
        t0 = time.perf_counter()
        rs = load_suricata_rules(args.rules_dir)
        times.append(time.perf_counter() - t0)
    rss_peak = vm_hwm_kib()

    traced_peak = traced_kept = None
    if not args.no_tracemalloc:
        held = rs
        rs = None
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        rs = load_suricata_rules(args.rules_dir)
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        traced_peak, traced_kept = peak - base, kept - base
        del held

    total = rs.total
    loaded = len(rs.rules)
    skipped = rs.skipped

    # option-keyword shares over every active rule (an error rule counts as unsupported)
    strict_ok = alias_ok = 0
    for item in list(rs.rules) + list(skipped):
        names = set(item.options)
        if names <= SUPPORTED_KEYWORDS:
            strict_ok += 1
        if names <= SUPPORTED_KEYWORDS | EXTENSION_KEYWORDS:
            alias_ok += 1
    uses_alias = sum(1 for r in rs.rules if set(r.options) & EXTENSION_KEYWORDS)

    primary = Counter(s.keyword for s in skipped)
    anywhere = Counter(b for s in skipped for b in set(s.blockers))
    sole = Counter(s.blockers[0] for s in skipped if len(set(s.blockers)) == 1)

    native = sum(1 for r in rs.rules if r.to_rule() is not None)
    by_app = Counter(r.app_proto or "-" for r in rs.rules)

    print(f"ET Open (Suricata 4.0 edition): {os.path.normpath(args.rules_dir)}")
    print(f"  files                     {len(rs.files)}")
    print(f"  active rules              {total}")
    verdict = "met" if total and loaded >= TARGET * total else "NOT met"
    print(f"  loaded                    {loaded:6d}  {pct(loaded, total)}"
          f"   (target >= {TARGET:.0%}: {verdict})")
    print(f"    of them via an alias    {uses_alias:6d}  (uricontent / http_request_line / "
          "http_header_names)")
    print(f"  skipped (unsupported)     {len(skipped):6d}  {pct(len(skipped), total)}")
    print(f"  parse errors              {len(rs.errors):6d}  {pct(len(rs.errors), total)}")
    for e in rs.errors[:10]:
        print(f"    {os.path.basename(e.file)}:{e.line}:{e.column}: {e.message}")
    print()
    print("  every option supported:")
    print(f"    options (issue list)    {strict_ok:6d}  {pct(strict_ok, total)}")
    print(f"    options (+ aliases)     {alias_ok:6d}  {pct(alias_ok, total)}")
    print(f"    loadable                {loaded:6d}  {pct(loaded, total)}")
    print(f"  convertible to native     {native:6d}  {pct(native, total)}   (SuricataRule.to_rule)")
    print("  loaded by app-layer protocol (header or keywords; - none): "
          + ", ".join(f"{k} {n}" for k, n in by_app.most_common()))
    print()
    print("  skipped rules by keyword (top 20): first blocker / rules needing it / only blocker")
    for kw, n in primary.most_common(20):
        print(f"    {kw:24s} {n:6d}  {anywhere[kw]:6d}  {sole[kw]:6d}")
    others = [k for k in anywhere if k not in dict(primary.most_common(20))]
    if others:
        more = sorted(others, key=lambda k: -anywhere[k])
        print(f"    ... {len(more)} more: " + ", ".join(f"{k} {anywhere[k]}" for k in more[:25]))
    print()
    print(f"  load time                 {min(times):.2f} s best of {len(times)}"
          f" ({', '.join(f'{t:.2f}' for t in times)}); {1e6 * min(times) / total:.0f} us/rule")
    print(f"  peak RSS (VmHWM)          {rss_peak / 1024:.1f} MiB"
          f" (before loading {rss_before / 1024:.1f} MiB)")
    if traced_peak is not None:
        print(f"  tracemalloc               peak {traced_peak / 2**20:.1f} MiB during a load,"
              f" {traced_kept / 2**20:.1f} MiB held by the loaded rule set")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "rules_dir": os.path.normpath(args.rules_dir),
                    "files": len(rs.files),
                    "active": total,
                    "loaded": loaded,
                    "loaded_via_alias": uses_alias,
                    "skipped": len(skipped),
                    "errors": [str(e) for e in rs.errors],
                    "supported_options_strict": strict_ok,
                    "supported_options_with_aliases": alias_ok,
                    "convertible_to_native": native,
                    "loaded_by_app_proto": dict(by_app.most_common()),
                    "skipped_first_blocker": dict(primary.most_common()),
                    "skipped_needing": dict(anywhere.most_common()),
                    "skipped_only_blocker": dict(sole.most_common()),
                    "load_seconds": times,
                    "vm_hwm_kib": rss_peak,
                    "vm_hwm_before_kib": rss_before,
                    "tracemalloc_peak_bytes": traced_peak,
                    "tracemalloc_kept_bytes": traced_kept,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
