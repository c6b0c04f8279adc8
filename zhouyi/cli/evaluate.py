"""`zhouyi eval`: the held-out split answered by the base and the tuned model, compared (zhouyi.evaluate); with
several --run, the base once and every run's tuned model in one table."""

from __future__ import annotations

import time
from pathlib import Path

from zhouyi.cli.common import load_spec, spec_args, verb
from zhouyi.errors import UserError


def add_verbs(sub) -> None:
    p = verb(sub, "eval", cmd_eval, "answer the held-out split with the base and the tuned model; compare them")
    spec_args(p, optional=True)
    p.add_argument("--run", action="append", help="run directory (default: the latest finished run of SPEC); "
                   "repeat it to compare several runs on the same questions")
    p.add_argument("--max-samples", type=int, help="questions to answer (default: the spec's eval.max_samples)")
    p.add_argument("--without-system", action="store_true",
                   help="also ask every question with no system prompt: does the tuned model keep the persona?")


def cmd_eval(args) -> int:
    from zhouyi import evaluate
    from zhouyi.files import atomic_write, write_json
    from zhouyi.runs import check_run, latest_trained_run, recorded_spec, render_context

    if args.max_samples is not None and args.max_samples < 1:
        raise UserError(f"--max-samples {args.max_samples}: answer at least one question")
    if args.run:
        run_dirs = [check_run(Path(r)) for r in args.run]
    elif args.spec:
        run_dirs = [latest_trained_run(load_spec(args).spec, Path.cwd())]
    else:
        raise UserError("say which model: SPEC (its latest finished run) or --run DIR")
    specs = [recorded_spec(run) for run in run_dirs]
    for spec, run in zip(specs, run_dirs, strict=True):
        evaluate.require_eval_split(spec, run)
        if args.without_system:
            evaluate.require_no_system_column(spec)
        if _eval_data(spec) != _eval_data(specs[0]):
            raise UserError(f"--run {run}: its held-out split differs from {run_dirs[0].name}'s; compare runs on the "
                            "same questions")
    reports = []
    for i, (spec, run) in enumerate(zip(specs, run_dirs, strict=True)):
        code = evaluate.predict(spec, run, args.max_samples, args.without_system, with_base=i == 0)
        if code != 0:
            return code
        base_from = run_dirs[0] / evaluate.EVAL_DIR if i else None
        path, report = evaluate.write_report(spec, run, render_context(None, run, Path.cwd()), args.max_samples,
                                             args.without_system, base_from)
        _summary(report, path)
        reports.append(report)
    if len(reports) > 1:
        table = evaluate.compare(reports)
        folder = Path.cwd() / specs[0].output.runs_dir / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
        write_json(folder / "compare.json", table)
        atomic_write(folder / "compare.md", evaluate.comparison_markdown(table))
        print(f"comparison of {len(reports)} runs: {folder / 'compare.md'}")
    return 0


def _eval_data(spec) -> list:
    return [spec.data.dataset_dir, [d.model_dump() for d in spec.data.datasets if d.split == "eval"]]


def _summary(report: dict, path: Path) -> None:
    from zhouyi.evaluate import METRICS

    base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
    print(f"{report['rows']} held-out questions: " + ", ".join(
        f"{m.upper()} {base[m]:.1f} -> {tuned[m]:.1f}" for m in METRICS if m in base and m in tuned))
    checks = report["checks"]
    print(f"in voice: base {checks['base']['in_voice']:.0%} -> tuned {checks['tuned']['in_voice']:.0%}; "
          f"boilerplate: base {checks['base']['boilerplate']:.0%} -> tuned {checks['tuned']['boilerplate']:.0%}; "
          f"repeating itself: base {checks['base']['loops']:.0%} -> tuned {checks['tuned']['loops']:.0%}")
    if "tuned_no_system" in checks:
        print(f"no system prompt, in voice: base {checks['base_no_system']['in_voice']:.0%} -> tuned "
              f"{checks['tuned_no_system']['in_voice']:.0%}")
    print(f"report: {path}")
