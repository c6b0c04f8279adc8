"""`zhouyi eval`: did fine-tuning help? The same held-out questions go to the base and to the tuned model through
LLaMA-Factory's own prediction (`do_predict`, greedy; evaluation.answers asks and reads), and this module writes the
comparison: the report of one run, and the table of several runs on the same questions.

The checks on the answers are evaluation.answers' (documented in the README, "See the model"): site boilerplate, the
persona's voice, degeneration (loops, answers cut at `eval.max_new_tokens`) and length against the reference.
"""

from __future__ import annotations

from pathlib import Path

from zhouyi import layout
from zhouyi.errors import UserError
from zhouyi.evaluation import answers, forgetting, stats, trace
from zhouyi.evaluation.answers import METRICS, SHARES, Prediction, answer_checks
from zhouyi.evaluation.checks import HIGHER_IS_BETTER
from zhouyi.evaluation.reports import COLUMN_LABELS, comparison_markdown, to_markdown
from zhouyi.files import atomic_write, read_mapping, write_json
from zhouyi.render import RenderContext
from zhouyi.runs import read_trainer_log, recorded_spec
from zhouyi.spec import JobSpec

MODELS = ("base", "tuned")
WITHOUT_SYSTEM = ("base_no_system", "tuned_no_system")  # `--without-system`: the same questions, no system prompt
PAIRS = (("base", "tuned"), ("base_no_system", "tuned_no_system"))  # the comparisons a report makes
TRACED = ("tuned", "tuned_no_system")  # whose flagged answers are traced to training rows


def require_eval_split(spec: JobSpec, run_dir: Path) -> None:
    if not spec.data.names("eval"):
        raise UserError(
            f"{spec.name} has no eval split to answer: add a dataset with `split: eval` to data.datasets "
            f"(`zhouyi data clean` writes one beside the training file, e.g. {Path(spec.data.clean.output).stem}"
            "_eval.json, and registers it), then train again")
    missing = [name for which in MODELS if not (run_dir / (name := layout.VERB_FILES[layout.PREDICT_VERBS[which]]))
               .is_file()]
    if missing:
        raise UserError(f"{run_dir} has no {', '.join(missing)}: it was trained by an older zhouyi; train again")


def askings(spec: JobSpec, run_dir: Path, max_samples: int | None, without_system: bool = False,
            with_base: bool = True) -> list[answers.Asking]:
    """The eval split asked of the base model, then the tuned one, and with `without_system` both again with no
    system prompt (the template's own default instead of the persona); `with_base=False` asks the tuned model
    only (another run already asked the base)."""
    extra = (f"max_samples={max_samples}",) if max_samples else ()  # llamafactory-cli's key=value overrides
    result = []
    for which in MODELS + (WITHOUT_SYSTEM if without_system else ()):
        model = which.removesuffix("_no_system")
        if model == "base" and not with_base:
            continue
        bare = ("default_system=null",) if which != model else ()
        result.append(answers.Asking(model, layout.answers_dir(run_dir, which), (*extra, *bare)))
    return result


def evaluate_runs(run_dirs: list[Path], base_dir: Path, max_samples: int | None, without_system: bool,
                  forgetting_check: bool = True, reuse: bool = False, echo=print
                  ) -> tuple[list[tuple[Path, dict]], Path | None]:
    """`zhouyi eval` on finished runs, whole: every check first, then each run's answers and report (the base asked
    once, by the first run); with several runs, also their comparison. ([(report.md, report)], compare.md or None)."""
    if max_samples is not None and max_samples < 1:
        raise UserError(f"--max-samples {max_samples}: answer at least one question")
    specs = [recorded_spec(run) for run in run_dirs]
    for spec, run in zip(specs, run_dirs, strict=True):
        require_eval_split(spec, run)
        if without_system:
            answers.require_no_system_column(spec)
        if _eval_data(spec) != _eval_data(specs[0]):
            raise UserError(f"--run {run}: its held-out split differs from {run_dirs[0].name}'s; compare runs on the "
                            "same questions")
        if forgetting_check and spec.eval.forgetting:
            forgetting.load_prompts(spec, base_dir)  # a bad prompts file is named before minutes of answering
    reports = []
    for i, (spec, run) in enumerate(zip(specs, run_dirs, strict=True)):
        asked = forgetting_check and spec.eval.forgetting
        if reuse and (old := reusable(spec, run, max_samples, without_system, asked)) is not None:
            echo(f"{run.name}: its evaluation is newer than its weights and asked the same: reused", flush=True)
            reports.append((run / layout.EVAL_DIR / layout.REPORT_MD, old))
            continue
        split = askings(spec, run, max_samples, without_system, with_base=i == 0)
        planned = forgetting.plan(spec, run, base_dir, echo) if asked else None
        rows = answers.predict_all(spec, run, split + (planned.askings if planned else []), echo)
        forgot = forgetting.finish(spec, run, planned, rows[len(split):]) if planned else None
        base_from = run_dirs[0] / layout.EVAL_DIR if i else None
        reports.append(write_report(spec, run, RenderContext(base_dir, run), max_samples, without_system, base_from,
                                    forgot))
    if len(reports) == 1:
        return reports, None
    table = compare([report for _, report in reports], seed_groups(specs))
    folder = layout.compare_dir(base_dir / specs[0].output.runs_dir)
    write_json(folder / layout.COMPARE_JSON, table)
    atomic_write(folder / layout.COMPARE_MD, comparison_markdown(table))
    return reports, folder / layout.COMPARE_MD


def latest_report(run: Path) -> tuple[Path, dict | None, bool]:
    """The one reader of a run's latest evaluation (eval's reuse, the export gate, the model card, the judge):
    (its report.json, the report or None when there is none, whether it is older than the run's weights). A damaged
    one is a UserError naming it and how to mend it."""
    path = run / layout.EVAL_DIR / layout.REPORT_JSON
    if not path.is_file():
        return path, None, False
    report = read_mapping(path, f"run `zhouyi eval --run {run}` again to rewrite it")
    stale = max((p.stat().st_mtime for p in layout.weights_files(run)), default=0) > path.stat().st_mtime
    return path, report, stale


def reusable(spec: JobSpec, run: Path, max_samples: int | None, without_system: bool, forgot: bool) -> dict | None:
    """The run's report when it is newer than its weights and asked what this evaluation would ask, else None."""
    try:
        _, report, stale = latest_report(run)
    except UserError:  # damaged: evaluated afresh
        return None
    if report is None or stale:
        return None
    settings = report.get("settings", {})
    same = (settings.get("max_samples") == (max_samples or spec.eval.max_samples)
            and settings.get("max_new_tokens") == spec.eval.max_new_tokens and "questions" in report
            and (not without_system or "tuned_no_system" in report["checks"])
            and (not forgot or "forgetting" in report))
    return report if same else None


def _eval_data(spec: JobSpec) -> list:
    return [spec.data.dataset_dir, [d.model_dump() for d in spec.data.datasets if d.split == "eval"]]


def build_report(spec: JobSpec, run_dir: Path, base: list[Prediction], tuned: list[Prediction],
                 metrics: dict[str, dict[str, float]], loss_png: str | None, count_tokens=None,
                 without_system: dict[str, list[Prediction]] | None = None, forgot: dict | None = None,
                 training: trace.TrainingRows | None = None, max_samples: int | None = None) -> dict:
    """The comparison: LLaMA-Factory's mean scores and the share of answers each check flags per model; every
    question with every model's answer, scores and checks; base against tuned with intervals (`comparisons`);
    the forgetting check (`forgot`); flagged tuned answers traced to the `training` rows behind them.
    `without_system` adds the same questions asked with no system prompt (base_no_system, tuned_no_system)."""
    voice, off = spec.eval.voice_markers, spec.eval.off_voice_markers
    references = [p.reference for p in tuned]
    asked = {"base": base, "tuned": tuned, **(without_system or {})}
    checks = {"reference": answer_checks(references, references, spec)}
    checks |= {name: answer_checks([p.answer for p in predictions], references, spec, count_tokens)
               for name, predictions in asked.items()}
    questions = per_question(asked, spec, count_tokens)
    samples = [{"question": tuned[i].question, "reference": tuned[i].reference,
                **{name: predictions[i].answer for name, predictions in asked.items()}}
               for i in range(min(len(tuned), spec.eval.side_by_side))]
    report = {"run": str(run_dir), "spec": spec.name, "rows": len(tuned), "metrics": metrics, "checks": checks,
              "questions": questions,
              "comparisons": [comparison(questions, a, b, spec.eval.seed) for a, b in PAIRS
                              if a in asked and b in asked],
              "loss_curve": loss_png, "samples": samples,
              "settings": {"max_new_tokens": spec.eval.max_new_tokens, "do_sample": False, "seed": spec.eval.seed,
                           "max_samples": max_samples or spec.eval.max_samples,
                           "voice_markers": voice, "off_voice_markers": off}}
    if forgot is not None:
        report["forgetting"] = forgot
    if training is not None:
        report["traces"] = [t for model in TRACED if model in asked
                            for t in trace.trace(questions, model, training, spec)]
    return report


def per_question(asked: dict[str, list[Prediction]], spec: JobSpec, count_tokens=None) -> list[dict]:
    """Every question with every model's answer, its scores (as LLaMA-Factory scores them) and its checks."""
    first = next(iter(asked.values()))
    out = []
    for i, p in enumerate(first):
        row = {"question": p.question, "reference": p.reference, "answers": {}, "scores": {},
               "checks": {"reference": answers.check(p.reference, spec)}}
        for name, predictions in asked.items():
            text = predictions[i].answer
            row["answers"][name] = text
            row["scores"][name] = answers.scores(text, p.reference)
            row["checks"][name] = answers.check(text, spec, count_tokens)
        out.append(row)
    return out


def comparison(questions: list[dict], a: str, b: str, seed: int = 0) -> dict:
    """Model `b` against model `a` on the same questions: each metric's mean difference with its paired bootstrap
    interval, each check's shares with their intervals and McNemar's test, and the verdicts. Per-question values
    that are fractions (the mean over several seeds' runs) are compared by the bootstrap interval alone."""
    out = {"a": a, "b": b, "questions": len(questions)}
    if len(questions) < stats.MIN_QUESTIONS:
        return out | {"too_few": f"{len(questions)} question: an interval needs at least {stats.MIN_QUESTIONS}"}
    out["metrics"] = {m: stats.compare_scores([q["scores"][a][m] for q in questions],
                                              [q["scores"][b][m] for q in questions], True, seed) for m in METRICS}
    out["shares"] = {}
    for name in SHARES:
        if not all(name in q["checks"][a] and name in q["checks"][b] for q in questions):
            continue
        x, y = [q["checks"][a][name] for q in questions], [q["checks"][b][name] for q in questions]
        if all(isinstance(v, bool) for v in x + y):
            out["shares"][name] = stats.compare_shares(x, y, HIGHER_IS_BETTER[name], seed)
        else:
            scored = stats.compare_scores([float(v) for v in x], [float(v) for v in y], HIGHER_IS_BETTER[name], seed)
            out["shares"][name] = {**scored, "a": {"share": scored["a"]}, "b": {"share": scored["b"]}}
    return out


def plot_loss(run_dir: Path, png: Path) -> bool:
    """Training (and held-out) loss by step from the run's trainer_log.jsonl; False when it logged no loss."""
    curves: dict[str, dict[int, float]] = {"loss": {}, "eval_loss": {}}
    for entry in read_trainer_log(run_dir):
        for key, points in curves.items():
            if key in entry and "current_steps" in entry:
                points[entry["current_steps"]] = entry[key]  # a resumed run logs some steps twice
    if not curves["loss"]:
        return False
    final = read_mapping(run_dir / layout.TRAIN_DIR / layout.EVAL_RESULTS, "train again to rewrite it")
    if not curves["eval_loss"] and isinstance(final.get("eval_loss"), float):  # evaluated once, after training
        curves["eval_loss"][max(curves["loss"])] = final["eval_loss"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key, label in (("loss", "training"), ("eval_loss", "held-out")):
        steps = sorted(curves[key])
        if steps:
            ax.plot(steps, [curves[key][s] for s in steps], label=label, marker="o" if len(steps) < 20 else None)
    ax.set(xlabel="step", ylabel="loss", title=run_dir.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(png)
    return True


def write_report(spec: JobSpec, run_dir: Path, ctx: RenderContext, max_samples: int | None,
                 without_system: bool = False, base_from: Path | None = None, forgot: dict | None = None
                 ) -> tuple[Path, dict]:
    """The run's eval/report.{json,md}; `base_from`: the eval folder of a run that asked the base model already."""
    out = run_dir / layout.EVAL_DIR
    data_dir = ctx.resolve(spec.data.dataset_dir)
    questions = None  # a split zhouyi cannot read (a hub set): the templated prompt stands for the question
    if answers.readable(spec, "eval"):
        rows = answers.split_questions(spec, data_dir, "eval", max_samples or spec.eval.max_samples, "eval")
        questions = [q.shown(spec.model.default_system) for q in rows]
    read = {which: answers.read_predictions((base_from if base_from and which.startswith("base") else out) / which,
                                            questions)
            for which in MODELS + (WITHOUT_SYSTEM if without_system else ())}
    loss = layout.LOSS_PNG if plot_loss(run_dir, out / layout.LOSS_PNG) else None
    report = build_report(spec, run_dir, read["base"][0], read["tuned"][0],
                          {which: metrics for which, (_, metrics) in read.items()}, loss,
                          answers.token_counter(run_dir),
                          {which: read[which][0] for which in WITHOUT_SYSTEM} if without_system else None,
                          forgot, training_rows(spec, data_dir), max_samples)
    write_json(out / layout.REPORT_JSON, report)
    atomic_write(out / layout.REPORT_MD, to_markdown(report))
    return out / layout.REPORT_MD, report


def training_rows(spec: JobSpec, data_dir: Path) -> trace.TrainingRows | None:
    """The run's training answers, to trace flagged answers to (None when the training split is not alpaca)."""
    if not answers.readable(spec, "train"):
        return None
    return trace.TrainingRows([(data_dir / entry.file_name, i, q.reference)
                               for entry in spec.data.datasets if entry.split == "train"
                               for i, q in enumerate(answers.dataset_questions(entry, data_dir, "eval"))])


def seed_groups(specs: list[JobSpec]) -> list[list[int]]:
    """Runs whose specs differ only in train.seed (and their names), as groups of indices, in order."""
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        data = spec.model_dump(mode="json", exclude={"name", "description", "output"})
        data["train"].pop("seed")
        groups.setdefault(repr(data), []).append(i)
    return list(groups.values())


def compare(reports: list[dict], groups: list[list[int]] | None = None) -> dict:
    """Several runs' reports on the same questions as one table: the base once, then each run's tuned model; runs
    that differ only in their training seed (`groups`) as one column, their per-question scores averaged, with the
    spread of their means between seeds. Comparisons: each column against the base and, with several columns,
    each against the first."""
    groups = groups or [[i] for i in range(len(reports))]
    first = reports[0]
    columns: dict[str, list[tuple[dict, str]]] = {"reference": [(first, "reference")]}
    for which in ("base", "base_no_system"):
        if which in first["checks"]:
            columns[COLUMN_LABELS[which]] = [(first, which)]
    tuned_columns = []
    for group in groups:
        members = [reports[i] for i in group]
        name = Path(members[0]["run"]).name + (f" ({len(group)} seeds)" if len(group) > 1 else "")
        columns[name] = [(r, "tuned") for r in members]
        tuned_columns.append(name)
        if all("tuned_no_system" in r["checks"] for r in members):
            columns[f"{name}, no system prompt"] = [(r, "tuned_no_system") for r in members]
    table = {"runs": [r["run"] for r in reports], "rows": first["rows"], "settings": first["settings"],
             "metrics": {c: _mean_of(m, "metrics") for c, m in columns.items() if all(w in r["metrics"] for r, w in m)},
             "checks": {c: _mean_of(m, "checks") for c, m in columns.items()},
             "samples": [{"question": s["question"], **{c: m[0][0]["samples"][i][m[0][1]] for c, m in columns.items()
                                                        if i < len(m[0][0]["samples"])}}
                         for i, s in enumerate(first["samples"])],
             "seeds": {c: {k: stats.spread([r["metrics"][w][k] for r, w in m]) for k in METRICS
                           if all(k in r["metrics"].get(w, {}) for r, w in m)}
                       for c, m in columns.items() if len(m) > 1}}
    if all("questions" in r for r in reports):
        questions = [{"question": q["question"], "reference": q["reference"],
                      "scores": {c: _mean_scores([r["questions"][i]["scores"][w] for r, w in m])
                                 for c, m in columns.items() if c != "reference"},
                      "checks": {c: _mean_flags([r["questions"][i]["checks"][w] for r, w in m])
                                 for c, m in columns.items()}}
                     for i, q in enumerate(first["questions"])]
        pairs = [(COLUMN_LABELS["base"], c) for c in tuned_columns]
        pairs += [(COLUMN_LABELS["base_no_system"], f"{c}, no system prompt") for c in tuned_columns
                  if f"{c}, no system prompt" in columns and COLUMN_LABELS["base_no_system"] in columns]
        pairs += [(tuned_columns[0], c) for c in tuned_columns[1:]]
        table["comparisons"] = [comparison(questions, a, b, first["settings"].get("seed", 0)) for a, b in pairs]
        table["per_question"] = per_question_numbers(questions)
    return table


def per_question_numbers(questions: list[dict]) -> dict:
    """Each column's per-question scores and checks as lists of numbers in question order (no text), so that
    every interval in the table can be recomputed from the table alone."""
    out: dict[str, dict[str, list]] = {}
    for q in questions:
        for column, scores in q["scores"].items():
            for name, value in scores.items():
                out.setdefault(column, {}).setdefault(name, []).append(round(float(value), 4))
        for column, checks in q["checks"].items():
            if column == "reference":
                continue
            for name, value in checks.items():
                if name in SHARES:
                    out.setdefault(column, {}).setdefault(name, []).append(
                        value if isinstance(value, bool) else round(float(value), 4))
    return out


def _mean_of(members: list[tuple[dict, str]], part: str) -> dict:
    values = [r[part][w] for r, w in members]
    return {k: round(stats.mean([v[k] for v in values]), 3) for k in values[0] if all(k in v for v in values)}


def _mean_scores(values: list[dict]) -> dict:
    return values[0] if len(values) == 1 else {k: stats.mean([v[k] for v in values]) for k in values[0]}


def _mean_flags(values: list[dict]) -> dict:
    if len(values) == 1:
        return values[0]
    return {k: stats.mean([float(v[k]) for v in values]) for k in values[0] if all(k in v for v in values)}
