"""`zhouyi eval`: the held-out split answered by the base and the tuned model, compared (evaluation.evaluate); with
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
    p.add_argument("--judge", action="store_true",
                   help="also have the judge (eval.judge: an OpenAI-compatible endpoint) compare the tuned answer "
                   "with the base answer, and with several --run each run with the first, in both orders; the judge "
                   "is read from SPEC as it is now (it is not part of training), else from the first run's spec")
    p.add_argument("--judge-with", metavar="FILE", help="the judge's fields (those of eval.judge) from a YAML file of "
                   "their own; implies --judge")
    p.add_argument("--dry-run", action="store_true", help="with --judge: say how many requests the judge will be "
                   "sent and roughly how many tokens, over the answers of each run's latest evaluation, and stop")


def cmd_eval(args) -> int:
    from zhouyi import layout
    from zhouyi.evaluation import evaluate, judge
    from zhouyi.files import sole_writers
    from zhouyi.runs import check_run, latest_trained_run

    if args.set:
        raise UserError("eval asks each run as it was trained (its recorded spec); --set changes a spec before "
                        "training: zhouyi train SPEC --set KEY=VALUE. How many questions: --max-samples")
    spec = load_spec(args).spec if args.spec else None
    if args.run:
        run_dirs = [check_run(Path(r)) for r in args.run]
    elif spec:
        run_dirs = [latest_trained_run(spec, Path.cwd())]
    else:
        raise UserError("say which model: SPEC (its latest finished run) or --run DIR")
    judging = judge.judging_for(Path(args.judge_with) if args.judge_with else None, spec, args.spec, run_dirs[0],
                                Path.cwd()) if args.judge or args.judge_with else None
    if args.dry_run and judging is None:
        raise UserError("--dry-run plans the judge's requests: give --judge (or --judge-with FILE)")
    with sole_writers(run_dirs, "eval"):
        if args.dry_run:
            reports = [(run / layout.EVAL_DIR / layout.REPORT_MD, judge.evaluated(run)) for run in run_dirs]
            comparison = None
        else:
            reports, comparison = evaluate.evaluate_runs(run_dirs, Path.cwd(), args.max_samples,
                                                         args.without_system, forgetting_check=not args.no_forgetting,
                                                         reuse=args.reuse)
            for path, report in reports:
                _summary(report, path)
            if comparison:
                print(f"comparison of {len(reports)} runs: {comparison}")
        if judging is not None:
            judged = judge.judge_runs(judging, [(run, r) for run, (_, r) in zip(run_dirs, reports, strict=True)],
                                      comparison.parent if comparison else None, args.dry_run,
                                      reports[0][1]["settings"].get("seed", 0))
            for path, summary in judged:
                print(_judge_line(summary) + (f"; report: {path}" if path else ""))
    return 0


def _judge_line(summary: dict) -> str:
    head = f"judge, {summary['b']} against {summary['a']}: "
    if "win_rate" in summary:
        w = summary["win_rate"]
        head += f"win rate {w['share']:.2f} [{w['low']:.2f}, {w['high']:.2f}], "
    if "inconsistency" in summary:
        head += f"inconsistent {summary['inconsistency']['share']:.0%}, "
    if "agreement" in summary:
        head += f"agrees with the checks {summary['agreement']['share']:.0%} of {summary['agreement']['of']}, "
    failed = summary["judge"]["failed"]
    tail = f"withheld: {summary['withheld']}" if "withheld" in summary else summary["verdict"]
    return head + tail + (f" ({sum(failed.values())} requests failed: {failed}; run again to ask only those)"
                          if failed else "")


def _summary(report: dict, path: Path) -> None:
    from zhouyi.evaluation.checks import CHECKS
    from zhouyi.evaluation.evaluate import METRICS

    base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
    print(f"{report['rows']} held-out questions: " + ", ".join(
        f"{m.upper()} {base[m]:.1f} -> {tuned[m]:.1f}" for m in METRICS if m in base and m in tuned))
    checks = report["checks"]
    print("; ".join(f"{c.label}: base {checks['base'][c.name]:.0%} -> tuned {checks['tuned'][c.name]:.0%}"
                    for c in CHECKS if c.summary and c.name in checks["base"] and c.name in checks["tuned"]))
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
