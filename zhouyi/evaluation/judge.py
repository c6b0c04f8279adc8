"""`zhouyi eval --judge`: a model behind an OpenAI-compatible endpoint compares two answers to every held-out
question (the tuned against the base, run B against run A), in both orders, as FastChat's MT-Bench judge does: a
verdict that flips with the order counts as a tie and as inconsistent. The report gives the win rate (ties count
half) with its bootstrap interval, the inconsistency rate, and how often the judge agrees with zhouyi's own checks;
when the judge is inconsistent more often than `eval.judge.max_inconsistency`, its verdict is withheld.

The answers come from `zhouyi eval`'s report (report.json's `questions`); the judge's answers are cached in the run's
eval folder (zhouyi.endpoint), so a second judging sends only what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from zhouyi import endpoint, layout
from zhouyi.errors import UserError
from zhouyi.evaluation import stats
from zhouyi.evaluation.checks import NAMES, problems
from zhouyi.files import atomic_write, write_json
from zhouyi.spec import JobSpec, JudgeSpec

VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
PLACEHOLDERS = ("question", "answer_a", "answer_b")
SCORE = {"b": 1.0, "tie": 0.5, "a": 0.0}  # the win rate of `b`: ties count half
SAME = ("[[C]]", "[[C]]")  # two answers of the same text: a tie in both orders, asked of no one


@dataclass(frozen=True)
class Pair:
    """One question's two answers: `a` the baseline (the base model, run A), `b` the one judged against it."""

    question: str
    a: str
    b: str
    a_checks: dict
    b_checks: dict


@dataclass(frozen=True)
class Judging:
    spec: JudgeSpec
    where: str  # where the spec came from, for messages
    prompt: object  # the rubric, a jinja2.Template
    persona: str | None


def resolve(spec: JudgeSpec | None, where: str, base_dir: Path, persona: str | None) -> Judging:
    """The judge checked whole before any model is asked: a spec, a rubric with its placeholders, the key's
    variable set."""
    from zhouyi.prompts import load_prompt

    if spec is None:
        raise UserError(f"{where} has no eval.judge: add one (base_url, model, api_key_env; see docs/judge.md) or give "
                        "--judge-with FILE, a YAML file of those fields")
    prompt = load_prompt(spec.rubric, "judge.zh.j2", PLACEHOLDERS, "eval.judge.rubric", base_dir)
    endpoint.api_key(spec)
    return Judging(spec, where, prompt, persona)


def pairs_of(report: dict, a: str, b: str, other: dict | None = None) -> list[Pair]:
    """Each question's answers of models `a` and `b` from an eval report (b from `other`'s report if given: the
    same questions asked of another run)."""
    second = other or report
    if "questions" not in report or "questions" not in second:
        raise UserError(f"{report['run']}: its evaluation keeps no per-question answers (an older zhouyi); run "
                        "zhouyi eval again")
    return [Pair(q["question"], q["answers"][a], r["answers"][b], q["checks"][a], r["checks"][b])
            for q, r in zip(report["questions"], second["questions"], strict=True)]


def requests(judging: Judging, pairs: list[Pair]) -> list[tuple[endpoint.Request, endpoint.Request] | None]:
    """Per question: (b shown first, a shown first); None where the two answers are the same text (a tie, asked
    of no one)."""
    def ask(question: str, first: str, second: str) -> endpoint.Request:
        text = judging.prompt.render(question=question, answer_a=first, answer_b=second, persona=judging.persona)
        return endpoint.Request((("user", text),))

    return [(ask(p.question, p.b, p.a), ask(p.question, p.a, p.b)) if p.a != p.b else None for p in pairs]


def _flat(asked) -> list[endpoint.Request]:
    return [r for two in asked if two for r in two]


def plan_line(judging: Judging, asked: list[endpoint.Request], cache: endpoint.Cache) -> str:
    send, cached, tokens = endpoint.plan(judging.spec, asked, cache)
    return (f"judge {judging.spec.model} at {judging.spec.base_url}: {send} requests to send ({cached} cached), "
            f"≈{tokens:,} prompt tokens")


def judge(judging: Judging, pairs: list[Pair], labels: tuple[str, str], cache: endpoint.Cache, seed: int,
          echo=print) -> dict:
    """Every pair judged in both orders (cached answers reused) and summarized."""
    asked = requests(judging, pairs)
    outcome = endpoint.ask_all(judging.spec, _flat(asked), cache, echo)
    verdicts = [(outcome.text(judging.spec, two[0]), outcome.text(judging.spec, two[1])) if two else SAME
                for two in asked]
    summary = summarize(pairs, verdicts, labels, judging.spec.max_inconsistency, seed)
    summary["judge"] = {"model": judging.spec.model, "base_url": judging.spec.base_url, "from": judging.where,
                        "rubric": judging.spec.rubric or "templates/prompts/judge.zh.j2",
                        "sent": outcome.sent, "cached": outcome.cached, "failed": dict(outcome.failed),
                        "tokens": outcome.tokens(judging.spec, _flat(asked))}
    return summary


def parse_verdict(text: str | None) -> str | None:
    """"A", "B" or "C" (a tie) from the judge's [[X]]; None when it gave none, or gave two different ones
    (`[[A]][[B]]` says nothing), so it counts as unparsed (any text is survived)."""
    if text is None:
        return None
    found = set(VERDICT.findall(text))
    return found.pop() if len(found) == 1 else None


def outcome_of(b_first: str | None, a_first: str | None) -> tuple[str, bool]:
    """(who won: "a", "b", "tie", or "unparsed"; whether the verdict flipped with the order) from the two raw
    verdicts, the first with b shown as A, the second with a shown as A."""
    if b_first is None or a_first is None:
        return "unparsed", False
    one = {"A": "b", "B": "a", "C": "tie"}[b_first]
    two = {"A": "a", "B": "b", "C": "tie"}[a_first]
    return (one, False) if one == two else ("tie", True)


def _problems(checks: dict) -> set[str]:
    """The checks (zhouyi.evaluation.checks) that one answer fails."""
    return problems(checks)


def checks_prefer(a: dict, b: dict) -> str | None:
    """"a" or "b" when zhouyi's checks flag fewer problems in one answer; None when they flag as many."""
    pa, pb = len(_problems(a)), len(_problems(b))
    return None if pa == pb else ("a" if pa < pb else "b")


def _separating_checks(pair: Pair) -> list[tuple[str, str]]:
    """(check, the side it prefers) for each check both answers have that flags exactly one of them."""
    pa, pb = _problems(pair.a_checks), _problems(pair.b_checks)
    both = pair.a_checks.keys() & pair.b_checks.keys()
    return [(name, "b" if name in pa else "a") for name in NAMES if name in both and (name in pa) != (name in pb)]


def summarize(pairs: list[Pair], answers: list[tuple[str | None, str | None]], labels: tuple[str, str],
              max_inconsistency: float, seed: int = 0) -> dict:
    """The judging of `labels[1]` (b) against `labels[0]` (a): win rate with its interval, inconsistency, agreement
    with zhouyi's checks, and the verdict or why it is withheld. Pure."""
    rows, scores, flips, agree = [], [], [], []
    by_check: dict[str, list[bool]] = {}  # check -> did the judge pick the answer it did not flag?
    unparsed = 0
    for pair, (b_first, a_first) in zip(pairs, answers, strict=True):
        raw = (parse_verdict(b_first), parse_verdict(a_first))
        won, flipped = outcome_of(*raw)
        preferred = checks_prefer(pair.a_checks, pair.b_checks)
        rows.append({"question": pair.question, "verdicts": list(raw), "won": won, "inconsistent": flipped,
                     "checks_prefer": preferred, "no_answer": [b_first is None, a_first is None]})
        if won == "unparsed":
            unparsed += 1
            continue
        scores.append(SCORE[won])
        flips.append(flipped)
        if preferred and won != "tie":
            agree.append(won == preferred)
        if won != "tie":
            for name, better in _separating_checks(pair):
                by_check.setdefault(name, []).append(won == better)
    judged = len(scores)
    out = {"a": labels[0], "b": labels[1], "questions": len(pairs), "judged": judged, "unparsed": unparsed,
           "no_answer": sum(r["no_answer"][0] or r["no_answer"][1] for r in rows),
           "wins": sum(s == 1.0 for s in scores), "ties": sum(s == 0.5 for s in scores),
           "losses": sum(s == 0.0 for s in scores), "inconsistent": sum(flips), "rows": rows,
           "max_inconsistency": max_inconsistency}
    if judged:
        rate = stats.wilson(sum(flips), judged)
        out["inconsistency"] = {"share": round(sum(flips) / judged, 3), "low": round(rate.low, 3),
                                "high": round(rate.high, 3)}
    if agree:
        share = stats.wilson(sum(agree), len(agree))
        out["agreement"] = {"agree": sum(agree), "of": len(agree), "share": round(sum(agree) / len(agree), 3),
                            "low": round(share.low, 3), "high": round(share.high, 3)}
    out["by_check"] = {name: {"agree": sum(v), "of": len(v)} for name, v in sorted(by_check.items())}
    if judged < stats.MIN_QUESTIONS:
        out["withheld"] = (f"{judged} question{'s' if judged != 1 else ''} judged in both orders: an interval needs "
                           f"at least {stats.MIN_QUESTIONS}")
        return out
    interval = stats.paired_bootstrap([0.5] * judged, scores, seed=seed)
    out["win_rate"] = {"share": round(stats.mean(scores), 3), "low": round(0.5 + interval.low, 3),
                       "high": round(0.5 + interval.high, 3)}
    if out["inconsistency"]["share"] > max_inconsistency:
        out["withheld"] = (f"the judge's verdict flipped with the order on {out['inconsistency']['share']:.0%} of the "
                           f"questions, above eval.judge.max_inconsistency {max_inconsistency:.0%}: it is not reliable "
                           "for this comparison")
    else:
        out["verdict"] = stats.verdict(interval, True)
    return out


def markdown(summary: dict) -> str:
    a, b = summary["a"], summary["b"]
    j = summary["judge"]
    lines = [f"# {b} against {a}, judged by {j['model']}", "",
             f"{j['model']} at {j['base_url']} (from {j['from']}), rubric {j['rubric']}. Each of "
             f"{summary['questions']} held-out questions judged twice, once with each answer shown first; a verdict "
             "that flips with the order counts as a tie and as inconsistent. Win rate: ties count half; 95% interval "
             "by paired bootstrap over questions; shares with Wilson intervals.", ""]
    if "win_rate" in summary:
        w = summary["win_rate"]
        lines += ["| | value | 95% interval |", "|---|---|---|",
                  f"| {b}'s win rate | {w['share']:.2f} | [{w['low']:.2f}, {w['high']:.2f}] |"]
    else:
        lines += ["| | value | 95% interval |", "|---|---|---|"]
    if "inconsistency" in summary:
        c = summary["inconsistency"]
        lines.append(f"| inconsistent (flips with the order) | {c['share']:.0%} ({summary['inconsistent']} of "
                     f"{summary['judged']}) | [{c['low']:.0%}, {c['high']:.0%}] |")
    if "agreement" in summary:
        g = summary["agreement"]
        lines.append(f"| agrees with zhouyi's checks, where they prefer one answer | {g['share']:.0%} ({g['agree']} of "
                     f"{g['of']}) | [{g['low']:.0%}, {g['high']:.0%}] |")
    lines += [f"| … preferring the answer without {name.replace('_', ' ')} | {c['agree']} of {c['of']} | |"
              if name != "in_voice" else f"| … preferring the answer in the persona's voice | {c['agree']} of "
              f"{c['of']} | |" for name, c in summary.get("by_check", {}).items()]
    lines += ["", f"{b} won {summary['wins']}, tied {summary['ties']}, lost {summary['losses']} of {summary['judged']} "
              f"questions judged in both orders; {summary['unparsed']} left out, a verdict missing in one order or "
              f"both ({summary['no_answer']} of them for want of an answer)."]
    if "withheld" in summary:
        lines += ["", f"**Verdict withheld**: {summary['withheld']}."]
    else:
        lines += ["", f"**Verdict**: {b} is {summary['verdict']} than {a} by this judge"
                  if summary["verdict"] != stats.UNCLEAR else f"**Verdict**: {stats.UNCLEAR} between {a} and {b}"]
    lines += ["", f"Requests: {j['sent']} sent, {j['cached']} answered from the cache"
              + (f", failed: {j['failed']}" if j["failed"] else "") + f"; ≈{j['tokens']:,} tokens.", ""]
    return "\n".join(lines)


def judge_runs(judging: Judging, runs: list[tuple[Path, dict]], compare_dir: Path | None, dry_run: bool,
               seed: int, echo=print) -> list[tuple[Path, dict]]:
    """Each run's tuned model against the base (written to its eval/judge.{json,md}); with several runs, each
    against the first (written beside compare.md). `dry_run`: the plan only."""
    jobs = [(run / layout.EVAL_DIR, pairs_of(report, "base", "tuned"), ("base", "tuned"), run / layout.EVAL_DIR)
            for run, report in runs]
    first_run, first = runs[0]
    for run, report in runs[1:]:
        jobs.append((first_run / layout.EVAL_DIR, pairs_of(first, "tuned", "tuned", report),
                     (first_run.name, run.name), compare_dir))
    for cache_dir, pairs, _, _ in jobs:
        echo(plan_line(judging, _flat(requests(judging, pairs)),
                       endpoint.Cache(cache_dir / layout.JUDGE_CACHE)), flush=True)
    if dry_run:
        return []
    written = []
    for cache_dir, pairs, labels, out in jobs:
        summary = judge(judging, pairs, labels, endpoint.Cache(cache_dir / layout.JUDGE_CACHE), seed, echo)
        name = layout.JUDGE if labels == ("base", "tuned") else f"{layout.JUDGE}-{labels[1]}"
        as_json, as_md = layout.judge_files(name)
        if out is not None:
            write_json(out / as_json, summary)
            atomic_write(out / as_md, markdown(summary))
        written.append((out / as_md if out else None, summary))
    return written


def judging_for(judge_with: Path | None, spec: JobSpec | None, spec_ref: str | None, first_run: Path,
                base_dir: Path) -> Judging:
    """The judge, checked whole before any model is asked: from --judge-with FILE, SPEC as it is now, or the first
    run's recorded spec (the persona is the first run's)."""
    from zhouyi.data.clean import PERSONA
    from zhouyi.runs import recorded_spec

    recorded = recorded_spec(first_run)
    persona = recorded.model.default_system or PERSONA  # the tutorial's persona rides in the instruction column
    if judge_with is not None:
        found = endpoint.load_file(judge_with, JudgeSpec, "--judge-with")
        return resolve(found, str(judge_with), base_dir, persona)
    source, where = (spec, spec_ref) if spec else (recorded, str(first_run / layout.SPEC_COPY))
    return resolve(source.eval.judge, where, base_dir, persona)


def evaluated(run: Path) -> dict:
    """The run's latest evaluation, which the judge's dry run plans over; a UserError when there is none yet."""
    from zhouyi.evaluation.evaluate import latest_report

    _, report, _ = latest_report(run)
    if report is None:
        raise UserError(f"--dry-run plans the judge over answers already made, and {run} has no evaluation yet: run "
                        f"zhouyi eval --run {run} first (then --reuse takes its answers)")
    return report
