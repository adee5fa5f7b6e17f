#!/usr/bin/env python3
"""Run the whole suricata-verify corpus through ``pakemon-xdp read``.

The corpus (``../shared/conformance/suricata-verify`` next to the repository,
see its README.md) holds one folder per upstream case: ``input.pcap``,
``test.rules`` (Suricata syntax, byte for byte) and ``expected.json`` (alert
counts per sid and the ``config`` upstream ran Suricata with). For every case
this runner translates that ``config`` into ``read`` flags, runs the real
CLI in a subprocess over the case's own rule file, counts the EVE ``alert``
events per ``signature_id`` and compares them with ``expected.json``.

Design choices
--------------

* The CLI, not the library, is what is run: the corpus checks the product a
  user runs (rule loading, option handling, EVE output), and a crash in any
  of them must show as that case failing, never as the runner failing. A
  non-zero exit (the rule file refused, a bad option) fails the case with the
  CLI's own first error line; exit 3 (capture cut short: every frame before
  the damage was processed) is compared like exit 0, as Suricata also reads
  a damaged pcap up to the damage.
* Settings (README "Configuration semantics"):

  - checksums: ``-k none`` -> ``--checksum off``. Otherwise ``auto``: the
    stock suricata.yaml has ``stream.checksum-validation: yes`` but
    ``pcap-file.checksum-checks: auto``, which turns validation off when
    the capture shows checksum offload; that is what ``--checksum auto``
    does (the built-in defaults of a minimal suricata.yaml are the same).
  - ``stream.midstream=true`` -> ``--midstream on``, else ``off`` (Suricata's
    default is off, ours on); ``stream.async-oneside`` -> ``--async-oneside``;
    ``stream.reassembly.depth=0`` -> ``--stream-depth 0``, else ``1m`` (Suricata's
    default, both directions; ours reads all a client sends).
  - host-os-policy: no suricata.yaml in the case -> the stock table as a
    ``--host-policy`` file; the case's own table likewise; and always
    ``--policy bsd``, Suricata's built-in default, for what no block covers
    (every address of a case whose minimal suricata.yaml sets none).
  - address vars: the stock values as a ``--vars`` file when there is no own
    suricata.yaml (none of the cases with one uses a variable).
  - ``stream.inline=true`` and the libhtp personality (IDS for the stock
    config -> ``--http-personality generic``, Minimal for ``bug-28`` ->
    ``apache``, see ``PERSONALITY_VALUE``) are passed when the CLI offers an
    option for them (found in ``read --help``, see ``OPTIONAL_FLAGS``); otherwise
    the case runs without and the result names the setting as ``unsupported``.
    Options are discovered so the runner works before and after the CLI
    grows them, and never passes an option the CLI would refuse.
* Comparison per listed sid (README "Counting semantics"): ``exact`` true ->
  equal counts; false -> at least the count; expected ``0`` -> no alert
  either way; sids not listed may alert any number of times.
* Known failures: ``tests/conformance/known_failures.json`` (case -> reason)
  is the single machine-readable list; KNOWN.md explains it. ``--strict``
  exits 1 when a case outside it fails (or one in it passes: the list is
  stale). Without ``--strict`` the exit code is 0 whatever the pass rate,
  1 only when the runner itself cannot work (no corpus, no CLI).

Usage::

    .venv/bin/python bench/conformance.py [--case GLOB] [--jobs N] [--verbose]
        [--json PATH] [--strict] [--corpus DIR] [--timeout S]
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import os
import re
import signal
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "conformance" / "suricata-verify"
KNOWN_FAILURES = ROOT / "tests" / "conformance" / "known_failures.json"
DEFAULT_JSON = ROOT / "bench" / "out" / "conformance.json"
EXE = ROOT / ".venv" / "bin" / "pakemon-xdp"
TIMEOUT_S = 60.0

# host-os-policy of the stock suricata.yaml (README "Configuration semantics").
STOCK_HOST_POLICY = """\
# host-os-policy of the stock suricata.yaml
0.0.0.0/0 windows
10.0.0.0/8 linux
192.168.1.100 linux
8762:2352:6241:7245:E000:: linux
::1 solaris
"""
# Suricata's built-in default policy for what no host-os-policy block covers.
DEFAULT_POLICY = "bsd"
STOCK_VARS = """\
# address-groups of the stock suricata.yaml
HOME_NET [192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]
EXTERNAL_NET !$HOME_NET
"""

# Settings whose CLI option may or may not exist yet: the first option name
# found in `read --help` is used (the names to try, in order).
OPTIONAL_FLAGS = {
    "vars": ("--vars",),
    "inline": ("--stream-inline", "--inline"),
    "personality": ("--http-personality",),
}
# libhtp personality -> the closest --http-personality value: IDS decodes
# everything (%u, %2f, backslashes) without case folding, as `generic` does;
# Minimal only percent-decodes and removes dot segments, and `apache` (no %u,
# %2f kept, no backslash conversion) is the nearest (it also compresses //).
PERSONALITY_VALUE = {"ids": "generic", "minimal": "apache"}


@functools.lru_cache(maxsize=None)
def cli_options(exe: str = str(EXE)) -> frozenset[str]:
    """Long option names `pakemon-xdp read --help` lists (empty if it cannot run)."""
    try:
        r = _run([exe, "read", "--help"], 30.0)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", r.stdout))


def _optional(name: str, options: frozenset[str]) -> str | None:
    for flag in OPTIONAL_FLAGS[name]:
        if flag in options:
            return flag
    return None


def load_expected(case_dir: Path) -> dict:
    return json.loads((case_dir / "expected.json").read_text())


def case_settings(exp: dict) -> dict:
    """The run settings a case's ``config`` asks for, as plain values."""
    cfg = exp.get("config", {})
    stream = cfg.get("stream_args") or []
    own_yaml = "own" in str(cfg.get("suricata_yaml", ""))
    hop = cfg.get("host_os_policy", "")
    if isinstance(hop, dict):
        table = "".join(f"{net} {name}\n" for name, nets in hop.items() for net in nets)
    elif str(hop).startswith("stock"):
        table = STOCK_HOST_POLICY
    else:
        table = None  # built-in default (bsd) everywhere
    libhtp = str(cfg.get("libhtp", ""))
    personality = None
    if libhtp:
        personality = "minimal" if "Minimal personality" in libhtp else "ids"
    return {
        "checksum": "off" if "disabled" in str(cfg.get("checksum_validation", "")) else "auto",
        "midstream": "stream.midstream=true" in stream,
        "async_oneside": "stream.async-oneside=true" in stream,
        "depth0": "stream.reassembly.depth=0" in stream,
        "inline": "stream.inline=true" in stream,
        "host_policy": table,
        "vars": None if own_yaml else STOCK_VARS,
        "personality": personality,
    }


def case_args(exp: dict, work: Path, options: frozenset[str]) -> tuple[list[str], list[str]]:
    """(`read` options for the case, settings the CLI cannot express)."""
    s = case_settings(exp)
    args = ["--checksum", s["checksum"], "--midstream", "on" if s["midstream"] else "off",
            "--async-oneside", "on" if s["async_oneside"] else "off", "--policy", DEFAULT_POLICY]
    unsupported = []
    # Suricata's stream.reassembly.depth (1 MB unless the case says 0), in
    # both directions: this CLI's default inspects all a client sends
    args += ["--stream-depth", "0" if s["depth0"] else "1m"]
    if s["host_policy"] is not None:
        path = work / "host-policy.txt"
        path.write_text(s["host_policy"])
        args += ["--host-policy", str(path)]
    if s["vars"] is not None:
        flag = _optional("vars", options)
        if flag:
            path = work / "vars.txt"
            path.write_text(s["vars"])
            args += [flag, str(path)]
        # the CLI's built-in vars are the stock ones: nothing is lost without --vars
    if s["inline"]:
        flag = _optional("inline", options)
        if flag:
            args += [flag, "on"]
        else:
            unsupported.append("stream.inline=true")
    if s["personality"]:
        flag = _optional("personality", options)
        if flag:
            args += [flag, PERSONALITY_VALUE[s["personality"]]]
        elif s["personality"] != "ids":
            # the HTTP normalizer's fixed behaviour is the IDS personality's
            unsupported.append(f"libhtp personality {s['personality']}")
    return args, unsupported


def count_alerts(eve: Path) -> tuple[Counter, int]:
    """(alerts per signature_id as text, EVE lines that were not JSON)."""
    counts: Counter = Counter()
    bad = 0
    if not eve.exists():
        return counts, 0
    with eve.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(ev, dict) and ev.get("event_type") == "alert":
                sid = (ev.get("alert") or {}).get("signature_id")
                counts[str(sid)] += 1
    return counts, bad


def _field(ev, dotted: str):
    """``ev``'s value at a dotted upstream path (``http.url``, ``vlan[0]``),
    or _ABSENT."""
    cur = ev
    for part in dotted.split("."):
        if part == "__len":  # (suricata-verify's length of the value)
            return len(cur) if isinstance(cur, (str, list, dict)) else _ABSENT
        idx = None
        if part.endswith("]") and "[" in part:
            part, idx = part[:-1].split("[", 1)
        if not isinstance(cur, dict) or part not in cur:
            return _ABSENT
        cur = cur[part]
        if idx is not None:
            if not isinstance(cur, list) or not idx.isdigit() or int(idx) >= len(cur):
                return _ABSENT
            cur = cur[int(idx)]
    return cur


_ABSENT = object()


def field_checks(exp: dict, eve: Path) -> dict:
    """How the alert fields upstream checks beyond the sid (an alert check's
    ``extra_conditions``: tx_id, http.*, packet, pcap_cnt, ...) agree with
    ours: for each such field of each check, whether an alert of that sid
    has upstream's value. Reported beside the counts, not part of a pass
    (README: the counts are what a case is judged on)."""
    checks = [c for c in exp.get("upstream_checks", [])
              if c.get("applicable") == "alert" and c.get("extra_conditions")]
    out = {"agree": 0, "checked": 0, "differ": {}}
    if not checks or not eve.exists():
        return out
    alerts = []
    with eve.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict) and ev.get("event_type") == "alert":
                alerts.append(ev)
    for c in checks:
        m = c.get("match", {})
        sid = m.get("alert.signature_id")
        mine = [a for a in alerts if sid is None or (a.get("alert") or {}).get(
            "signature_id") == sid]
        if not mine:
            continue  # (the count says so already)
        for key in c["extra_conditions"]:
            if key not in m:
                continue
            out["checked"] += 1
            if any(_field(a, key) == m[key] for a in mine):
                out["agree"] += 1
            else:
                out["differ"][key] = out["differ"].get(key, 0) + 1
    return out


def compare(alerts: dict, exact: bool, got: Counter) -> list[str]:
    """Mismatches of the listed sids (README "expected.json": exact / lower bound)."""
    bad = []
    for sid, want in alerts.items():
        n = got.get(str(sid), 0)
        if want == 0:
            ok = n == 0
        elif exact:
            ok = n == want
        else:
            ok = n >= want
        if not ok:
            rel = "" if exact or want == 0 else ">="
            bad.append(f"sid {sid}: expected {rel}{want}, got {n}")
    return bad


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run cmd in its own process group; on timeout the whole group is
    killed (a child left holding the pipes would make the wait outlast
    the timeout), then TimeoutExpired is raised with what stderr had."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", cwd=ROOT, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(cmd, timeout, out, err) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def run_case(case_dir: Path | str, *, exe: Path | str = EXE, timeout: float = TIMEOUT_S,
             work: Path | None = None) -> dict:
    """Run one case through the CLI; the result record (see ``main``'s JSON).

    Never raises for a bad case or a failing CLI: the record says ``error``.
    """
    case_dir = Path(case_dir)
    t0 = time.monotonic()
    rec = {"case": case_dir.name, "category": "", "expected": {}, "exact": True, "got": {},
           "pass": False, "mismatches": [], "error": "", "unsupported": [], "skipped_rules": [],
           "cmd": [],
           "stderr": "", "returncode": None, "seconds": 0.0}
    try:
        exp = load_expected(case_dir)
    except (OSError, ValueError) as e:
        rec["error"] = f"expected.json unreadable: {e}"
        return rec
    rec["category"] = exp.get("category", "")
    rec["expected"] = {str(k): v for k, v in exp.get("alerts", {}).items()}
    rec["exact"] = bool(exp.get("exact", True))
    own_tmp = work is None
    work = Path(tempfile.mkdtemp(prefix=f"conf-{case_dir.name[:40]}-")) if own_tmp else work
    try:
        args, rec["unsupported"] = case_args(exp, work, cli_options(str(exe)))
        logs = work / "logs"
        cmd = [str(exe), "read", "-q", "--progress", "never", "--log-dir", str(logs),
               "--rules", str(case_dir / exp.get("rules", "test.rules")), *args,
               str(case_dir / exp.get("pcap", "input.pcap"))]
        rec["cmd"] = cmd
        try:
            r = _run(cmd, timeout)
        except subprocess.TimeoutExpired as e:
            rec["error"] = f"timed out after {timeout:g} s"
            rec["stderr"] = e.stderr or ""
            return rec
        except OSError as e:
            rec["error"] = f"cannot run {exe}: {e}"
            return rec
        rec["returncode"] = r.returncode
        rec["stderr"] = r.stderr[-4000:]
        # "FILE:LINE: sid N skipped: unsupported keyword 'x'": the usual cause
        # of a sid that never alerts, kept apart so the table can say so
        rec["skipped_rules"] = [ln.split(": ", 1)[-1] for ln in r.stderr.splitlines()
                                if re.search(r": sid \d+ skipped: ", ln)][:20]
        if "Traceback (most recent call last)" in r.stderr:
            rec["error"] = "traceback: " + r.stderr.strip().splitlines()[-1][:300]
        elif r.returncode not in (0, 3):
            first = next((ln for ln in r.stderr.splitlines() if ln.strip()), "")
            rec["error"] = f"exit {r.returncode}: {first[:300]}"
        got, bad_lines = count_alerts(logs / "eve.json")
        rec["got"] = dict(sorted(got.items(), key=lambda kv: _sid_key(kv[0])))
        if bad_lines:
            rec["error"] = rec["error"] or f"{bad_lines} eve.json lines are not JSON"
        rec["mismatches"] = compare(rec["expected"], rec["exact"], got)
        rec["fields"] = field_checks(exp, logs / "eve.json")
        rec["pass"] = not rec["error"] and not rec["mismatches"]
        return rec
    finally:
        rec["seconds"] = round(time.monotonic() - t0, 3)
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def _sid_key(sid: str):
    return (0, int(sid), "") if sid.isdigit() else (1, 0, sid)


def corpus_cases(corpus: Path = CORPUS, pattern: str = "*") -> list[Path]:
    return sorted(p.parent for p in corpus.glob("*/expected.json")
                  if fnmatch.fnmatchcase(p.parent.name, pattern))


def load_known_failures(path: Path = KNOWN_FAILURES) -> dict[str, str]:
    """case -> reason; a missing or broken file is an empty list (with a warning)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        print(f"conformance: {path}: {e}; no known failures used", file=sys.stderr)
        return {}
    if not isinstance(data, dict):
        return {}
    cases = data.get("cases", {})
    return {str(k): str(v) for k, v in cases.items()} if isinstance(cases, dict) else {}


def observed_reason(rec: dict) -> str:
    """What a failing case showed, as a first reason until someone writes a better one."""
    if rec["error"]:
        return "observed: " + rec["error"]
    return "observed: " + "; ".join(rec["mismatches"])


def write_known_failures(path: Path, results: list[dict], known: dict[str, str]) -> None:
    cases = {r["case"]: known.get(r["case"]) or observed_reason(r)
             for r in results if not r["pass"]}
    data = {
        "_doc": "Corpus cases that fail today (strict xfail in tests/conformance/test_corpus.py, "
                "--strict in bench/conformance.py): case -> why. KNOWN.md explains the causes. "
                "'observed: ...' reasons were written by `bench/conformance.py --update-known`.",
        "cases": dict(sorted(cases.items())),
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def _fmt_counts(d: dict) -> str:
    return ", ".join(f"{k}:{v}" for k, v in d.items()) or "-"


def _got_for(rec: dict) -> dict:
    """The got counts of the listed sids, then any other sid that alerted."""
    got = {sid: rec["got"].get(sid, 0) for sid in rec["expected"]}
    for sid, n in rec["got"].items():
        if sid not in got:
            got[sid] = n
    return got


def print_table(results: list[dict], known: dict[str, str], verbose: bool, out=sys.stdout):
    w = max([len(r["case"]) for r in results] + [4])
    print(f"{'case':<{w}}  {'category':<8}  {'pass':<5}  expected -> got", file=out)
    for r in results:
        mark = "PASS" if r["pass"] else ("xfail" if r["case"] in known else "FAIL")
        line = (f"{r['case']:<{w}}  {r['category']:<8}  {mark:<5}  "
                f"{_fmt_counts(r['expected'])} -> {_fmt_counts(_got_for(r))}")
        if r["error"]:
            line += f"  [{r['error']}]"
        if r["unsupported"]:
            line += f"  (unsupported: {', '.join(r['unsupported'])})"
        if r["skipped_rules"] and not r["pass"]:
            line += f"  (rules skipped: {'; '.join(r['skipped_rules'][:3])})"
        print(line, file=out)
        if verbose and not r["pass"]:
            print("    $ " + " ".join(r["cmd"]), file=out)
            for m in r["mismatches"]:
                print(f"    {m}", file=out)
            for ln in r["stderr"].strip().splitlines()[-15:]:
                print(f"    | {ln}", file=out)


def summarize(results: list[dict], known: dict[str, str]) -> dict:
    passed = sum(r["pass"] for r in results)
    by_cat: dict[str, list[int]] = {}
    for r in results:
        c = by_cat.setdefault(r["category"], [0, 0])
        c[0] += r["pass"]
        c[1] += 1
    unexpected_fail = [r["case"] for r in results if not r["pass"] and r["case"] not in known]
    unexpected_pass = [r["case"] for r in results if r["pass"] and r["case"] in known]
    fields = {"agree": 0, "checked": 0, "differ": Counter()}
    for r in results:
        f = r.get("fields") or {}
        fields["agree"] += f.get("agree", 0)
        fields["checked"] += f.get("checked", 0)
        fields["differ"].update(f.get("differ", {}))
    fields["differ"] = dict(fields["differ"].most_common())
    return {
        "alert_fields": fields,
        "cases": len(results), "passed": passed,
        "pass_rate": round(passed / len(results), 4) if results else 0.0,
        "by_category": {k: {"passed": v[0], "cases": v[1]} for k, v in sorted(by_cat.items())},
        "unexpected_failures": unexpected_fail, "unexpected_passes": unexpected_pass,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", default="*", metavar="GLOB",
                    help="only cases whose folder name matches GLOB")
    ap.add_argument("--jobs", type=int, default=2, metavar="N",
                    help="cases run in parallel (default 2)")
    ap.add_argument("--verbose", action="store_true",
                    help="show the command, mismatches and stderr of each failure")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                    help=f"result file (default {DEFAULT_JSON.relative_to(ROOT)})")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a case not in the known-failures list fails, "
                         "or one in it passes")
    ap.add_argument("--corpus", type=Path, default=CORPUS, metavar="DIR",
                    help="the suricata-verify corpus (default ../shared/conformance/suricata-verify)")
    ap.add_argument("--known", type=Path, default=KNOWN_FAILURES, metavar="FILE",
                    help="known failures, case -> reason "
                         "(default tests/conformance/known_failures.json)")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S, metavar="S",
                    help=f"seconds per case (default {TIMEOUT_S:g})")
    ap.add_argument("--exe", default=str(EXE), help="the pakemon-xdp executable")
    ap.add_argument("--update-known", action="store_true",
                    help="rewrite the known-failures list from this run: failing cases keep "
                         "their reason (new ones get what was observed), passing ones leave "
                         "(only with the whole corpus, no --case)")
    a = ap.parse_args(argv)

    if not (a.corpus / "README.md").is_file():
        print(f"conformance: corpus not found at {a.corpus}", file=sys.stderr)
        return 1
    if not cli_options(a.exe):
        print(f"conformance: cannot run `{a.exe} read --help`", file=sys.stderr)
        return 1
    cases = corpus_cases(a.corpus, a.case)
    if not cases:
        print(f"conformance: no case matches {a.case!r}", file=sys.stderr)
        return 1
    known = load_known_failures(a.known)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        results = list(pool.map(lambda c: run_case(c, exe=a.exe, timeout=a.timeout), cases))
    print_table(results, known, a.verbose)
    summary = summarize(results, known)
    summary["seconds"] = round(time.monotonic() - t0, 1)
    print(f"\npassed {summary['passed']} of {summary['cases']} "
          f"({100 * summary['pass_rate']:.1f}%) in {summary['seconds']} s; "
          + "; ".join(f"{k or '?'} {v['passed']}/{v['cases']}"
                      for k, v in summary["by_category"].items()))
    fields = summary["alert_fields"]
    if fields["checked"]:
        print(f"alert fields upstream checks beyond the sid: {fields['agree']} of "
              f"{fields['checked']} agree; differ: "
              + (", ".join(f"{k} {v}" for k, v in fields["differ"].items()) or "none"))
    if summary["unexpected_failures"]:
        bad = summary["unexpected_failures"]
        more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
        print(f"failing, not in {a.known.name} ({len(bad)}): {' '.join(bad[:20])}{more}")
    if summary["unexpected_passes"]:
        print(f"passing, but listed in {a.known.name}: {' '.join(summary['unexpected_passes'])}")
    try:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"summary": summary, "results": results}, indent=1) + "\n")
    except OSError as e:
        print(f"conformance: cannot write {a.json}: {e}", file=sys.stderr)
        return 1
    if a.update_known:
        if a.case != "*":
            print("conformance: --update-known needs the whole corpus (no --case)",
                  file=sys.stderr)
            return 1
        write_known_failures(a.known, results, known)
        print(f"wrote {a.known}")
    if a.strict and (summary["unexpected_failures"] or summary["unexpected_passes"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
