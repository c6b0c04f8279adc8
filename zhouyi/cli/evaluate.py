"""`zhouyi eval`: the held-out split answered by the base and the tuned model, compared (zhouyi.evaluate)."""

from __future__ import annotations

from pathlib import Path

from zhouyi.cli.common import run_args, run_for, verb
from zhouyi.errors import UserError


def add_verbs(sub) -> None:
    p = verb(sub, "eval", cmd_eval, "answer the held-out split with the base and the tuned model; compare them")
    run_args(p)
    p.add_argument("--max-samples", type=int, help="questions to answer (default: the spec's eval.max_samples)")
    p.add_argument("--without-system", action="store_true",
                   help="also ask every question with no system prompt: does the tuned model keep the persona?")


def cmd_eval(args) -> int:
    from zhouyi.evaluate import METRICS, predict, require_eval_split, require_no_system_column, write_report
    from zhouyi.runs import render_context

    spec, run_dir = run_for(args)
    require_eval_split(spec, run_dir)
    if args.without_system:
        require_no_system_column(spec)
    if args.max_samples is not None and args.max_samples < 1:
        raise UserError(f"--max-samples {args.max_samples}: answer at least one question")
    code = predict(spec, run_dir, args.max_samples, args.without_system)
    if code != 0:
        return code
    path, report = write_report(spec, run_dir, render_context(None, run_dir, Path.cwd()), args.max_samples,
                                args.without_system)
    base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
    print(f"{report['rows']} held-out questions: " + ", ".join(
        f"{m.upper()} {base[m]:.1f} -> {tuned[m]:.1f}" for m in METRICS if m in base and m in tuned))
    checks = report["checks"]
    print(f"in voice: base {checks['base']['in_voice']:.0%} -> tuned {checks['tuned']['in_voice']:.0%}; "
          f"boilerplate: base {checks['base']['boilerplate']:.0%} -> tuned {checks['tuned']['boilerplate']:.0%}; "
          f"repeating itself: base {checks['base']['loops']:.0%} -> tuned {checks['tuned']['loops']:.0%}")
    if args.without_system:
        print(f"no system prompt, in voice: base {checks['base_no_system']['in_voice']:.0%} -> tuned "
              f"{checks['tuned_no_system']['in_voice']:.0%}")
    print(f"report: {path}")
    return 0
