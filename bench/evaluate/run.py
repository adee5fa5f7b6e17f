"""``make evaluate``: the paper's section 4 on pakemon-xdp, into docs/evaluation.md.

    python -m bench.evaluate.run [--quick] [--stability-minutes N] [--out docs]

Runs, in order, each part live through the kernel sensor in network
namespaces of its own (root):

  1. evasion     Figure 9, ``bench.evaluate.evasion_http.run_evasion``
  2-4. load      Figures 10 and 11 and the traffic table, ``bench.evaluate.load``
  5. stability   ``bench.evaluate.stability``, at a rate derived from part 2's
                 highest lossless rate

and writes ``OUT/evaluation.md`` (one section per part, each stamped with
its start date, the machine and this exact command), the figures as
``OUT/evaluation/*.png`` and every measured figure as
``OUT/evaluation/results.json``. Nothing in the document is typed in: each
number comes from the run that writes it, and a part that could not run is
shown as "not run" with the reason instead of old figures.

A part that fails (an exception, a lab that cannot start) does not stop
the others: it is reported in its section and the exit code is 1. Exit 0
when every part ran, whatever its figures (a FAIL is a result, not an
error); 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.evaluate.common import command_line, stamp, stamp_line  # noqa: E402

FIG_DIR = "evaluation"


def _one_line_error(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def run_part1(fig_dir: Path, quick: bool, log, command: str | None = None) -> dict:
    try:
        mod = importlib.import_module("bench.evaluate.evasion_http")
    except Exception as e:  # missing or broken: the section says so
        return {"part": "evasion", "status": "not run",
                "reason": f"bench/evaluate/evasion_http.py could not be imported: "
                          f"{_one_line_error(e)}"}
    fn = getattr(mod, "run_evasion", None)
    if fn is None:
        return {"part": "evasion", "status": "not run",
                "reason": "bench/evaluate/evasion_http.py has no run_evasion()"}
    res = fn(fig_dir, quick=quick, command=command)
    res = dict(res) if isinstance(res, dict) else {"markdown": str(res)}
    res.setdefault("part", "evasion")
    res.setdefault("status", "ok")
    return res


def evasion_markdown(res: dict, rel: str) -> str:
    if res.get("status") == "not run" or "markdown" not in res:
        return ("## Figure 9: detection rate by evasion technique\n\nNot run: "
                + str(res.get("reason", "no result")) + "\n")
    md = str(res["markdown"]).rstrip() + "\n"
    png = res.get("png")
    if png and Path(str(png)).name not in md:
        md += f"\n![Figure 9]({rel}/{Path(str(png)).name})\n"
    return md


def summary_rows(results: dict) -> list[list]:
    rows = []
    ev = results.get("evasion", {})
    if ev.get("status") == "not run":
        rows.append(["Figure 9 evasion", "not run", ev.get("reason", "")])
    else:
        rows.append(["Figure 9 evasion", ev.get("status", "?"),
                     ev.get("summary", "see the section")])
    ld = results.get("load", {})
    if ld.get("status") == "skipped":
        rows.append(["Figures 10, 11, traffic table", "not run", ld.get("reason", "")])
    elif ld.get("steps"):
        att = [s for s in ld["steps"] if s["attached"]]
        worst = min((s["detection_pct"] or 0 for s in att), default=0)
        lm = ld.get("lossless_max_fps")
        rows.append(["Figures 10, 11, traffic table", ld["status"],
                     f"{len(att)} load steps up to {max(s['offered_fps'] for s in att):,.0f} "
                     f"frames/s; lowest detection {worst:.1f}%; highest lossless "
                     + (f"{lm:,.0f} frames/s" if lm else "none")])
    else:
        rows.append(["Figures 10, 11, traffic table", ld.get("status", "?"),
                     ld.get("reason", "")])
    st = results.get("stability", {})
    if st.get("status") == "skipped":
        rows.append(["Stability", "not run", st.get("reason", "")])
    elif "passed" in st:
        rows.append(["Stability", "PASS" if st["passed"] else "FAIL",
                     f"{st['minutes']:g} min at {st['rate_fps']:,} frames/s"])
    else:
        rows.append(["Stability", st.get("status", "?"), st.get("reason", "")])
    return rows


def write_markdown(path: Path, results: dict, rel: str = FIG_DIR) -> None:
    from bench.evaluate import load, stability
    from bench.evaluate.common import markdown_table

    out = ["# Evaluation: the paper's section 4 on pakemon-xdp\n",
           "The experiments of Takeda & Takefuji (2001), section 4, repeated live through the "
           "kernel sensor: attacks and load traffic are replayed with tcpreplay from one "
           "network namespace into a veth whose other end has `pakemon-xdp attach` on it. "
           "Regenerated by `make evaluate` (root); every figure below comes from the run "
           "stamped under its section, nothing is typed in. All results as JSON: "
           f"[{rel}/results.json]({rel}/results.json).\n",
           markdown_table(["part", "result", "summary"], summary_rows(results))]
    for key, render in (("evasion", lambda r: evasion_markdown(r, rel)),
                        ("load", lambda r: load.markdown(r, rel)),
                        ("stability", lambda r: stability.markdown(r, rel))):
        r = results.get(key)
        if r is None:
            continue
        out.append("")
        if r.get("error"):
            title = {"evasion": "Figure 9: detection rate by evasion technique",
                     "load": "Figures 10 and 11, traffic table",
                     "stability": "Stability"}[key]
            out.append(f"## {title}\n\n**Failed:** {r['error']}\n")
        else:
            out.append(render(r))
        # The stamp goes under the part's first heading; a part that stamps
        # its own section (evasion_http does) keeps its own.
        if r.get("stamp") and "_Measured " not in out[-1]:
            head, _, body = out[-1].partition("\n")
            out[-1] = (head + "\n\n" + stamp_line(r["stamp"])
                       + f" (part took {r.get('seconds', 0):.0f} s)\n" + body)
    path.write_text("\n".join(out))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.evaluate.run",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller captures and fewer steps (minutes instead of tens)")
    ap.add_argument("--stability-minutes", type=float, default=30.0,
                    help="length of the stability run (default 30)")
    ap.add_argument("--stability-rate", type=int,
                    help="frames/s of the stability run (default: a quarter of the load part's "
                    "highest lossless rate)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs",
                    help="where evaluation.md and evaluation/ go (default docs)")
    ap.add_argument("--parts", default="evasion,load,stability",
                    help="comma list of parts to run (default all: evasion,load,stability)")
    ap.add_argument("--rates", help="load steps: tcpreplay --pps values and/or 'topspeed'")
    ap.add_argument("--sensor-args", default="", metavar="ARGS",
                    help="more `pakemon-xdp attach` options for the load part's sensors, "
                    "e.g. '--wakeup-bytes 64k' (the stamp's command says so)")
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    bad = parts - {"evasion", "load", "stability"}
    if bad or args.stability_minutes <= 0:
        ap.error(f"unknown part(s): {', '.join(sorted(bad))}" if bad
                 else "--stability-minutes must be > 0")
    cmd = command_line("bench.evaluate.run", [sys.argv[0]] + list(
        sys.argv[1:] if argv is None else argv))
    out = args.out
    fig_dir = out / FIG_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {"command": cmd}
    # A run of some parts keeps the figures of the others from the last run
    # (evaluation.md is written from all of them).
    try:
        with open(fig_dir / "results.json") as f:
            before = json.load(f)
        results.update({k: v for k, v in before.items()
                        if k in ("evasion", "load", "stability") and k not in parts})
    except (OSError, ValueError):
        pass
    status = 0
    t_all = time.monotonic()

    def log(msg: str) -> None:
        print(msg, flush=True)

    def part(key: str, fn) -> dict:
        nonlocal status
        st = stamp(cmd)
        log(f"== {key} ({st['date']})")
        t0 = time.monotonic()
        try:
            res = fn()
        except KeyboardInterrupt:
            raise
        except Exception as e:  # one part's bug must not cost the others' figures
            res = {"part": key, "status": "error", "error": _one_line_error(e)}
            log(f"{key}: {res['error']}")
        res["stamp"] = st
        res.setdefault("seconds", round(time.monotonic() - t0, 1))
        if res.get("status") in ("error",):
            status = 1
        log(f"== {key}: {res.get('status')} in {time.monotonic() - t0:.0f} s"
            + (f" ({res.get('reason')})" if res.get("reason") else ""))
        results[key] = res
        return res

    try:
        if "evasion" in parts:
            part("evasion", lambda: run_part1(fig_dir, args.quick, log, cmd))
        if "load" in parts:
            from bench.evaluate.load import run_load
            rates = [r.strip() for r in args.rates.split(",")] if args.rates else None
            part("load", lambda: run_load(fig_dir, args.quick, rates=rates, log=log,
                                          sensor_args=tuple(args.sensor_args.split())))
        if "stability" in parts:
            from bench.evaluate.stability import run_stability
            lm = results.get("load", {}).get("lossless_max_fps")
            part("stability", lambda: run_stability(fig_dir, args.stability_minutes,
                                                    rate=args.stability_rate,
                                                    lossless_max=lm, log=log))
    except KeyboardInterrupt:
        log("evaluate: interrupted; writing what was measured")
        status = 130
    results["seconds"] = round(time.monotonic() - t_all, 1)
    with open(fig_dir / "results.json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    write_markdown(out / "evaluation.md", results)
    log(f"wrote {out / 'evaluation.md'} and {fig_dir}/ in {results['seconds']:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
