"""Shared helpers for the evaluation parts: stamps, tables, plots.

Every figure in docs/evaluation.md must say when, where and by which exact
command it was measured (issue 7: "nothing is typed in"), so each part
calls :func:`stamp` at the start of its run and prints the result next to
its table. The machine description is read from the running system
(/proc/cpuinfo, os.uname, os.cpu_count), never configured.

Plots use matplotlib's non-interactive Agg backend: the evaluation runs as
root on headless machines and in CI, where no display exists. Saving is
deterministic enough for review (fixed size and DPI) but images are not
compared byte for byte by any test; tests check that a PNG was written.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Iterable, Sequence


def _cpu_model() -> str:
    # /proc/cpuinfo is Linux-only; elsewhere platform.processor() is the
    # best portable guess (often empty, hence the final fallback).
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def command_line(module: str | None = None, argv: Sequence[str] | None = None) -> str:
    """The command as a user would retype it, shell-quoted.

    Under ``python -m pkg.mod`` sys.argv[0] is the module's file path, which
    cannot be pasted back; callers pass ``module`` to get the ``-m`` form.
    """
    argv = list(sys.argv if argv is None else argv)
    args = shlex.join(argv[1:])
    head = f"python -m {module}" if module else shlex.quote(argv[0] if argv else "python")
    return head + (" " + args if args else "")


def stamp(command: str) -> dict:
    """Date (UTC), machine (cores, kernel, CPU model) and the exact command."""
    uname = os.uname()
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    return {
        "date": now.isoformat().replace("+00:00", "Z"),
        "cores": os.cpu_count() or 0,
        "kernel": f"{uname.sysname} {uname.release}",
        "machine": uname.machine,
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "command": command,
    }


def stamp_line(st: dict) -> str:
    """One markdown line for under a figure: date, machine, command."""
    return (
        f"_Measured {st['date']} on {st['cores']} cores ({st['cpu']}), "
        f"{st['kernel']} {st['machine']}; command: `{st['command']}`_"
    )


def _cell(v) -> str:
    s = str(v)
    # A pipe inside a cell would split it into two columns.
    return s.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence, rows: Iterable[Sequence]) -> str:
    """A GitHub-flavoured markdown table; numbers right-aligned."""
    rows = [list(r) for r in rows]
    ncol = len(headers)
    for r in rows:
        if len(r) != ncol:
            raise ValueError(f"row has {len(r)} cells, table has {ncol} columns: {r!r}")

    def numeric(col: int) -> bool:
        vals = [r[col] for r in rows]
        return bool(vals) and all(isinstance(v, (int, float)) for v in vals)

    out = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    out.append("|" + "|".join("---:" if numeric(i) else "---" for i in range(ncol)) + "|")
    for r in rows:
        out.append("| " + " | ".join(_fmt(v) for v in r) + " |")
    return "\n".join(out) + "\n"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 or v == 0 else f"{v:.3g}"
    return _cell(v)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: root shells and CI have no display
    import matplotlib.pyplot as plt

    return plt


def save_bar(path, labels: Sequence[str], values: Sequence[float], title: str,
             ylabel: str, *, secondary: Sequence[float] | None = None,
             secondary_label: str | None = None, ylim: tuple | None = None) -> Path:
    """Horizontal-label bar chart (labels are technique names, often long).

    ``secondary`` draws a second bar per label (e.g. false alerts next to
    detection rate) so one figure carries both columns of the table.
    """
    if len(labels) != len(values):
        raise ValueError("labels and values differ in length")
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.38 * n + 2), 4.8), dpi=110)
    xs = list(range(n))
    if secondary is None:
        ax.bar(xs, values, color="#3b6ea5")
    else:
        w = 0.4
        ax.bar([x - w / 2 for x in xs], values, w, color="#3b6ea5", label=ylabel)
        ax.bar([x + w / 2 for x in xs], secondary, w, color="#c0504d",
               label=secondary_label or "secondary")
        # Above the axes: inside, it would hide the bars near 100%.
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8,
                  frameon=False)
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_title(title, loc="left" if secondary is not None else "center",
                 pad=18 if secondary is not None else 6)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_lines(path, series: dict, title: str, xlabel: str, ylabel: str,
               *, logx: bool = False, ylim: tuple | None = None) -> Path:
    """One line per series; ``series`` maps a label to (xs, ys)."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for label, (xs, ys) in series.items():
        if len(xs) != len(ys):
            raise ValueError(f"series {label!r}: xs and ys differ in length")
        ax.plot(list(xs), list(ys), marker="o", markersize=3, label=label)
    if logx:
        ax.set_xscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
