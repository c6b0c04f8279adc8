"""Verbs about past runs: runs (list them), diff (compare two)."""

from __future__ import annotations

import json
from pathlib import Path

from zhouyi.cli.common import verb


def add_verbs(sub) -> None:
    p = verb(sub, "runs", cmd_runs, "list runs: status, steps, last loss, minutes, adapter and merged weights")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--json", action="store_true")
    p = verb(sub, "diff", cmd_diff, "show how two runs' specs and rendered configs differ")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")


def cmd_runs(args) -> int:
    from zhouyi.runs import list_runs

    runs_dir = Path(args.runs_dir)
    rows = list_runs(runs_dir)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs under {runs_dir}")
        return 0
    print(f"{'run':40} {'status':12} {'steps':>9} {'loss':>8} {'min':>6}  adapter merged")
    for r in rows:
        if r["status"] == "damaged":
            print(f"{r['run']:40} damaged      {r['problem']}")
            continue
        loss = "-" if r["loss"] is None else f"{r['loss']:.4f}"
        minutes = "-" if r["minutes"] is None else f"{r['minutes']:.1f}"
        print(f"{r['run']:40} {r['status']:12} {r['steps']:>9} {loss:>8} {minutes:>6}  "
              f"{'yes' if r['adapter'] else 'no':7} {'yes' if r['merged'] else 'no'}")
    return 0


def cmd_diff(args) -> int:
    from zhouyi.runs import diff_runs

    text = diff_runs(Path(args.run_a), Path(args.run_b))
    print(text or "the runs' specs and rendered configs are the same")
    return 0
