"""`zhouyi eval`: the held-out split answered by the base and the tuned model, compared (zhouyi.evaluate); with
several --run, the base once and every run's tuned model in one table."""

from __future__ import annotations

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
    p.add_argument("--reuse", action="store_true",
                   help="take a run's answers from its latest evaluation when that is newer than its weights and "
                   "asked the same (questions, token limit, system prompt, forgetting): compare runs without asking "
                   "again")
    p.add_argument("--no-forgetting", action="store_true",
                   help="skip the forgetting check (general prompts: drift and domain bleed; eval.forgetting)")


def cmd_eval(args) -> int:
    from zhouyi import evaluate
    from zhouyi.files import sole_writers
    from zhouyi.runs import check_run, latest_trained_run

    if args.set:
        raise UserError("eval asks each run as it was trained (its recorded spec); --set changes a spec before "
                        "training: zhouyi train SPEC --set KEY=VALUE. How many questions: --max-samples")
    if args.run:
        run_dirs = [check_run(Path(r)) for r in args.run]
    elif args.spec:
        run_dirs = [latest_trained_run(load_spec(args).spec, Path.cwd())]
    else:
        raise UserError("say which model: SPEC (its latest finished run) or --run DIR")
    with sole_writers(run_dirs, "eval"):
        reports, comparison = evaluate.evaluate_runs(run_dirs, Path.cwd(), args.max_samples, args.without_system,
                                                     forgetting_check=not args.no_forgetting, reuse=args.reuse)
    for path, report in reports:
        _summary(report, path)
    if comparison:
        print(f"comparison of {len(reports)} runs: {comparison}")
    return 0


def _summary(report: dict, path: Path) -> None:
    from zhouyi.evaluate import METRICS

    base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
    print(f"{report['rows']} held-out questions: " + ", ".join(
        f"{m.upper()} {base[m]:.1f} -> {tuned[m]:.1f}" for m in METRICS if m in base and m in tuned))
    checks = report["checks"]
    print(f"in voice: base {checks['base']['in_voice']:.0%} -> tuned {checks['tuned']['in_voice']:.0%}; "
          f"boilerplate: base {checks['base']['boilerplate']:.0%} -> tuned {checks['tuned']['boilerplate']:.0%}; "
          f"repeating itself: base {checks['base']['loops']:.0%} -> tuned {checks['tuned']['loops']:.0%}")
    found = next((c for c in report.get("comparisons", []) if c["b"] == "tuned"), None)
    if found and "metrics" in found:
        rouge = found["metrics"]["rouge-l"]
        print(f"ROUGE-L change {rouge['diff']:+.1f}, 95% interval [{rouge['low']:+.1f}, {rouge['high']:+.1f}]: "
              f"{rouge['verdict']}")
    elif found:
        print(f"no intervals: {found['too_few']}")
    forgot = report.get("forgetting")
    if forgot:
        drift, bleed = forgot["drift"], forgot["bleed"]
        print(f"forgetting, {forgot['prompts']} general prompts: drift {drift['mean']:+.3f} nats/token"
              + (f" [{drift['low']:+.3f}, {drift['high']:+.3f}]" if "low" in drift else "")
              + f"; domain bleed base {bleed['a']['share']:.0%} -> tuned {bleed['b']['share']:.0%}")
    if "tuned_no_system" in checks:
        print(f"no system prompt, in voice: base {checks['base_no_system']['in_voice']:.0%} -> tuned "
              f"{checks['tuned_no_system']['in_voice']:.0%}")
    print(f"report: {path}")
