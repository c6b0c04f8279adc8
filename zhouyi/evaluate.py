"""`zhouyi eval`: did fine-tuning help? The same held-out questions go to the base and to the tuned model through
LLaMA-Factory's own prediction (`do_predict`, greedy); zhouyi only reads its outputs and writes the comparison.

Checks on the answers (documented in the README, "Evaluate"):
- boilerplate: the answer contains a dream site's phrase that `zhouyi data clean` removes (adverts, editor notes,
  site intros, pasted horoscope or numerology filler, URLs, HTML); with clean data this falls to zero;
- in voice: the answer names no modern assistant (`eval.off_voice_markers`) and uses at least one of the diviner's
  words the training answers use (`eval.voice_markers`, e.g. 主, 预示, 宜, 忌, 吉, 凶).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from zhouyi import launch, process
from zhouyi.data.rules import DEFAULT_RULES
from zhouyi.errors import UserError
from zhouyi.files import atomic_write, read_json_rows, write_json
from zhouyi.render import EVAL_DIR, RenderContext
from zhouyi.runs import read_trainer_log
from zhouyi.spec import JobSpec

BOILERPLATE_RULES = ("advert_footer", "site_intro", "html", "url", "attribution", "editor_phrases", "navigation",
                     "horoscope_filler", "numerology_filler", "case_studies")
METRICS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")
MODELS = (("base", "predict_base"), ("tuned", "predict"))  # (output folder, launch verb)


@dataclass(frozen=True)
class Prediction:
    question: str
    reference: str
    answer: str


def require_eval_split(spec: JobSpec, run_dir: Path) -> None:
    if not spec.data.names("eval"):
        raise UserError(
            f"{spec.name} has no eval split to answer: add a dataset with `split: eval` to data.datasets "
            f"(`zhouyi data clean` writes one beside the training file, e.g. {Path(spec.data.clean.output).stem}"
            "_eval.json, and registers it), then train again")
    missing = [launch.VERB_FILES[verb] for _, verb in MODELS if not (run_dir / launch.VERB_FILES[verb]).is_file()]
    if missing:
        raise UserError(f"{run_dir} has no {', '.join(missing)}: it was trained by an older zhouyi; train again")


def predict(spec: JobSpec, run_dir: Path, max_samples: int | None) -> int:
    """Answer the eval split with the base model, then the tuned one; 0, or the failing exit code."""
    out = run_dir / EVAL_DIR
    out.mkdir(exist_ok=True)
    extra = [f"max_samples={max_samples}"] if max_samples else []  # llamafactory-cli's key=value overrides
    for which, verb in MODELS:
        log = out / f"{which}.log"
        code = process.run(launch.build(spec, verb, run_dir, args=extra), log=log)
        if code != 0:
            print(f"{which} model: prediction failed (exit {code}); {log} ends:\n{process.log_tail(log)}")
            return code
    return 0


def read_predictions(folder: Path, questions: list[str] | None) -> tuple[list[Prediction], dict[str, float]]:
    """LLaMA-Factory's generated_predictions.jsonl and predict_results.json from one prediction folder."""
    rows = [json.loads(line) for line in (folder / "generated_predictions.jsonl").read_text("utf-8").splitlines()
            if line.strip()]
    if questions is None or len(questions) != len(rows):  # fall back on the templated prompt, markup removed
        questions = [re.sub(r"<\|[^|>]*\|>", " ", r["prompt"]).strip() for r in rows]
    results = json.loads((folder / "predict_results.json").read_text("utf-8"))
    metrics = {m: round(float(results[f"predict_{m}"]), 2) for m in METRICS if f"predict_{m}" in results}
    return [Prediction(q, r["label"], r["predict"]) for q, r in zip(questions, rows, strict=True)], metrics


def eval_questions(spec: JobSpec, ctx: RenderContext, max_samples: int | None) -> list[str] | None:
    """The eval rows' user turns, in the order LLaMA-Factory reads them (each dataset cut at max_samples)."""
    questions = []
    for entry in (d for d in spec.data.datasets if d.split == "eval"):
        if entry.file_name is None or entry.formatting != "alpaca":
            return None
        cols = entry.resolved_columns
        rows = read_json_rows(ctx.resolve(spec.data.dataset_dir) / entry.file_name)[:max_samples]
        persona = spec.model.default_system  # a persona in the instruction column is not the question
        questions += ["\n".join(t for t in (r.get(cols.prompt, ""), r.get(cols.query or "", "")) if t and t != persona)
                      for r in rows]
    return questions


def has_boilerplate(text: str) -> bool:
    return any(rule.compiled().search(text) for rule in DEFAULT_RULES if rule.name in BOILERPLATE_RULES)


def in_voice(text: str, voice: list[str], off_voice: list[str]) -> bool:
    return not any(m in text for m in off_voice) and any(m in text for m in voice)


def share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else 0.0


def build_report(spec: JobSpec, run_dir: Path, base: list[Prediction], tuned: list[Prediction],
                 metrics: dict[str, dict[str, float]], loss_png: str | None) -> dict:
    voice, off = spec.eval.voice_markers, spec.eval.off_voice_markers
    checks = {}
    for name, texts in (("reference", [p.reference for p in tuned]), ("base", [p.answer for p in base]),
                        ("tuned", [p.answer for p in tuned])):
        checks[name] = {"boilerplate": share([has_boilerplate(t) for t in texts]),
                        "in_voice": share([in_voice(t, voice, off) for t in texts]),
                        "empty": share([not t.strip() for t in texts])}
    samples = [{"question": t.question, "reference": t.reference, "base": b.answer, "tuned": t.answer}
               for b, t in list(zip(base, tuned, strict=True))[: spec.eval.side_by_side]]
    return {"run": str(run_dir), "spec": spec.name, "rows": len(tuned), "metrics": metrics, "checks": checks,
            "loss_curve": loss_png, "samples": samples,
            "settings": {"max_new_tokens": spec.eval.max_new_tokens, "do_sample": False,
                         "voice_markers": voice, "off_voice_markers": off}}


def to_markdown(report: dict) -> str:
    base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
    lines = [f"# Evaluation of {Path(report['run']).name}", "",
             f"{report['rows']} held-out questions, greedy answers (max {report['settings']['max_new_tokens']} new "
             "tokens), scored by LLaMA-Factory (character BLEU-4, jieba-segmented ROUGE).", "",
             "| metric | base | tuned | change |", "|---|---:|---:|---:|"]
    for m in METRICS:
        if m in base and m in tuned:
            lines.append(f"| {m.upper()} | {base[m]:.2f} | {tuned[m]:.2f} | {tuned[m] - base[m]:+.2f} |")
    lines += ["", "| share of answers | reference | base | tuned |", "|---|---:|---:|---:|"]
    labels = {"boilerplate": "with site boilerplate", "in_voice": "in the persona's voice", "empty": "empty"}
    for key, label in labels.items():
        c = report["checks"]
        lines.append(f"| {label} | {c['reference'][key]:.0%} | {c['base'][key]:.0%} | {c['tuned'][key]:.0%} |")
    lines += ["", "In voice: no modern-assistant words (" + "、".join(report["settings"]["off_voice_markers"]) +
              ") and at least one of " + "、".join(report["settings"]["voice_markers"]) + "."]
    if report["loss_curve"]:
        lines += ["", f"![training loss]({report['loss_curve']})"]
    for n, s in enumerate(report["samples"], 1):
        lines += ["", f"## {n}. {_one_line(s['question'])}", "", "| | answer |", "|---|---|",
                  f"| reference | {_one_line(s['reference'])} |", f"| base | {_one_line(s['base'])} |",
                  f"| tuned | {_one_line(s['tuned'])} |"]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "(empty)"


def plot_loss(run_dir: Path, png: Path) -> bool:
    """Training (and held-out) loss by step from the run's trainer_log.jsonl; False when it logged no loss."""
    curves: dict[str, dict[int, float]] = {"loss": {}, "eval_loss": {}}
    for entry in read_trainer_log(run_dir):
        for key, points in curves.items():
            if key in entry and "current_steps" in entry:
                points[entry["current_steps"]] = entry[key]  # a resumed run logs some steps twice
    if not curves["loss"]:
        return False
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


def write_report(spec: JobSpec, run_dir: Path, ctx: RenderContext, max_samples: int | None) -> tuple[Path, dict]:
    out = run_dir / EVAL_DIR
    questions = eval_questions(spec, ctx, max_samples or spec.eval.max_samples)
    (base, base_metrics), (tuned, tuned_metrics) = (read_predictions(out / which, questions) for which, _ in MODELS)
    loss = "loss.png" if plot_loss(run_dir, out / "loss.png") else None
    report = build_report(spec, run_dir, base, tuned, {"base": base_metrics, "tuned": tuned_metrics}, loss)
    write_json(out / "report.json", report)
    atomic_write(out / "report.md", to_markdown(report))
    return out / "report.md", report
