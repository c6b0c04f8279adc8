"""`zhouyi eval`: did fine-tuning help? The same held-out questions go to the base and to the tuned model through
LLaMA-Factory's own prediction (`do_predict`, greedy); zhouyi only reads its outputs and writes the comparison.

Checks on the answers (zhouyi.answer_checks; documented in the README, "Evaluate"):
- boilerplate: the answer contains a dream site's phrase that `zhouyi data clean` removes (adverts, editor notes,
  site intros, pasted horoscope or numerology filler, URLs, HTML); with clean data this falls to zero;
- in voice: the answer names no modern assistant (`eval.off_voice_markers`) and uses at least one of the diviner's
  words the training answers use (`eval.voice_markers`, e.g. 主, 预示, 宜, 忌, 吉, 凶);
- degeneration: the answer loops (a 10-character stretch three times, or a sentence twice), or it ran into
  `eval.max_new_tokens` without ending (it never produced its end-of-turn token); and its length against the
  reference's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from zhouyi import launch, process
from zhouyi.answer_checks import answer_checks
from zhouyi.errors import UserError
from zhouyi.files import atomic_write, read_json_rows, write_json
from zhouyi.render import EVAL_DIR, RenderContext
from zhouyi.runs import read_trainer_log
from zhouyi.spec import JobSpec

METRICS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")
MODELS = (("base", "predict_base"), ("tuned", "predict"))  # (output folder, launch verb)
WITHOUT_SYSTEM = (("base_no_system", "predict_base"), ("tuned_no_system", "predict"))  # `--without-system`


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


def require_no_system_column(spec: JobSpec, split: str = "eval") -> None:
    """Asking without the system prompt means nothing when the rows asked carry the persona themselves (LLaMA-Factory's
    `default_system=null` only drops the default)."""
    carrying = [d.name for d in spec.data.datasets if d.split == split and d.resolved_columns.system]
    if carrying:
        raise UserError(f"--without-system: the {split} split {', '.join(carrying)} maps a system column "
                        f"(columns.system), so its rows carry the persona; map no system column for the {split} split")


def predict(spec: JobSpec, run_dir: Path, max_samples: int | None, without_system: bool = False,
            with_base: bool = True) -> int:
    """Answer the eval split with the base model, then the tuned one, and with `without_system` both again with no
    system prompt (the template's own default instead of the persona); `with_base=False` asks the tuned model
    only (another run already asked the base). 0, or the failing exit code."""
    out = run_dir / EVAL_DIR
    out.mkdir(exist_ok=True)
    extra = [f"max_samples={max_samples}"] if max_samples else []  # llamafactory-cli's key=value overrides
    bare = [(which, verb, ["default_system=null", f"output_dir={out / which}"]) for which, verb in WITHOUT_SYSTEM]
    for which, verb, overrides in [(w, v, []) for w, v in MODELS] + (bare if without_system else []):
        if which.startswith("base") and not with_base:
            continue
        log = out / f"{which}.log"
        code = process.run(launch.build(spec, verb, run_dir, args=[*extra, *overrides]), log=log)
        if code != 0:
            print(f"{which} model: prediction failed (exit {code}); {log} ends:\n{process.log_tail(log)}")
            return code
    return 0


def prediction_rows(folder: Path) -> list[dict]:
    """The rows ({prompt, predict, label}) of LLaMA-Factory's generated_predictions.jsonl in one prediction folder."""
    return [json.loads(line) for line in (folder / "generated_predictions.jsonl").read_text("utf-8").splitlines()
            if line.strip()]


def read_predictions(folder: Path, questions: list[str] | None) -> tuple[list[Prediction], dict[str, float]]:
    """LLaMA-Factory's generated_predictions.jsonl and predict_results.json from one prediction folder."""
    rows = prediction_rows(folder)
    if questions is None or len(questions) != len(rows):  # fall back on the templated prompt, markup removed
        questions = [re.sub(r"<\|[^|>]*\|>", " ", r["prompt"]).strip() for r in rows]
    results = json.loads((folder / "predict_results.json").read_text("utf-8"))
    metrics = {m: round(float(results[f"predict_{m}"]), 2) for m in METRICS if f"predict_{m}" in results}
    return [Prediction(q, r["label"], r["predict"]) for q, r in zip(questions, rows, strict=True)], metrics


@dataclass(frozen=True)
class Question:
    """One alpaca row as LLaMA-Factory reads it: instruction, input, the reference answer, the row's system prompt."""

    prompt: str
    query: str
    reference: str
    system: str | None

    @property
    def user(self) -> str:
        """The user turn LLaMA-Factory makes of it: instruction and input joined by a newline."""
        return "\n".join(t for t in (self.prompt, self.query) if t)


def split_questions(spec: JobSpec, data_dir: Path, split: str, max_samples: int | None, verb: str) -> list[Question]:
    """A split's rows, in the order LLaMA-Factory reads them (each dataset cut at max_samples). `verb` names who
    asks, for the error when a dataset is not an alpaca file of answers."""
    out = []
    for entry in (d for d in spec.data.datasets if d.split == split):
        cols = entry.resolved_columns
        if entry.file_name is None or entry.formatting != "alpaca" or entry.ranking:
            raise UserError(f"{verb}: the {split} set '{entry.name}' is not an alpaca file of answers zhouyi can read "
                            "(file_name, formatting: alpaca, no ranking)")
        try:
            rows = read_json_rows(data_dir / entry.file_name)[:max_samples]
        except (OSError, ValueError) as exc:
            raise UserError(f"{data_dir / entry.file_name}: {exc}; the run's {split} data must be where it was") \
                from None
        out += [Question(str(r.get(cols.prompt) or ""), str(r.get(cols.query or "") or ""),
                         str(r.get(cols.response) or ""), r.get(cols.system) if cols.system else None) for r in rows]
    return out


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


def token_counter(run_dir: Path):
    """Counts an answer's tokens with the run's own tokenizer (for the token-limit check), or None."""
    import yaml

    try:
        model = yaml.safe_load((run_dir / launch.VERB_FILES["predict"]).read_text("utf-8"))["model_name_or_path"]
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception:  # noqa: BLE001 - no tokenizer, no token-limit check; the other checks still hold
        return None
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


def build_report(spec: JobSpec, run_dir: Path, base: list[Prediction], tuned: list[Prediction],
                 metrics: dict[str, dict[str, float]], loss_png: str | None, count_tokens=None,
                 without_system: dict[str, list[Prediction]] | None = None) -> dict:
    """The comparison; `without_system` adds the same questions asked with no system prompt (base_no_system,
    tuned_no_system), reported as further columns."""
    voice, off = spec.eval.voice_markers, spec.eval.off_voice_markers
    references = [p.reference for p in tuned]
    answers = {"base": base, "tuned": tuned, **(without_system or {})}
    checks = {"reference": answer_checks(references, references, spec)}
    checks |= {name: answer_checks([p.answer for p in predictions], references, spec, count_tokens)
               for name, predictions in answers.items()}
    samples = [{"question": tuned[i].question, "reference": tuned[i].reference,
                **{name: predictions[i].answer for name, predictions in answers.items()}}
               for i in range(min(len(tuned), spec.eval.side_by_side))]
    return {"run": str(run_dir), "spec": spec.name, "rows": len(tuned), "metrics": metrics, "checks": checks,
            "loss_curve": loss_png, "samples": samples,
            "settings": {"max_new_tokens": spec.eval.max_new_tokens, "do_sample": False,
                         "voice_markers": voice, "off_voice_markers": off}}


COLUMN_LABELS = {"reference": "reference", "base": "base", "tuned": "tuned", "base_no_system": "base, no system prompt",
                 "tuned_no_system": "tuned, no system prompt"}


def to_markdown(report: dict) -> str:
    lines = [f"# Evaluation of {Path(report['run']).name}", "",
             f"{report['rows']} held-out questions, greedy answers (max {report['settings']['max_new_tokens']} new "
             "tokens), scored by LLaMA-Factory (character BLEU-4, jieba-segmented ROUGE)."]
    for suffix, title in (("", "metric"), ("_no_system", "metric, no system prompt")):
        base, tuned = report["metrics"].get("base" + suffix), report["metrics"].get("tuned" + suffix)
        if base is None or tuned is None:
            continue
        lines += ["", f"| {title} | base | tuned | change |", "|---|---:|---:|---:|"]
        lines += [f"| {m.upper()} | {base[m]:.2f} | {tuned[m]:.2f} | {tuned[m] - base[m]:+.2f} |"
                  for m in METRICS if m in base and m in tuned]
    c = report["checks"]
    columns = [w for w in COLUMN_LABELS if w in c]
    lines += ["", "| share of answers | " + " | ".join(COLUMN_LABELS[w] for w in columns) + " |",
              "|---|" + "---:|" * len(columns)]
    labels = {"boilerplate": "with site boilerplate", "in_voice": "in the persona's voice", "empty": "empty",
              "loops": "repeating itself", "at_token_limit": "cut at the token limit (never ended)"}
    for key, label in labels.items():
        if key in c["tuned"]:
            lines.append(f"| {label} | " + " | ".join(f"{c[w][key]:.0%}" if key in c[w] else "-" for w in columns)
                         + " |")
    lines.append("| length / reference length | " + " | ".join(f"{c[w]['length_ratio']:.2f}" for w in columns) + " |")
    lines += ["", "In voice: no modern-assistant words (" + "、".join(report["settings"]["off_voice_markers"]) +
              ") and at least one of " + "、".join(report["settings"]["voice_markers"]) + "."]
    if report["loss_curve"]:
        lines += ["", f"![training loss]({report['loss_curve']})"]
    for n, s in enumerate(report["samples"], 1):
        lines += ["", f"## {n}. {_one_line(s['question'])}", "", "| | answer |", "|---|---|"]
        lines += [f"| {COLUMN_LABELS[w]} | {_one_line(s[w])} |" for w in columns if w in s]
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


def write_report(spec: JobSpec, run_dir: Path, ctx: RenderContext, max_samples: int | None,
                 without_system: bool = False, base_from: Path | None = None) -> tuple[Path, dict]:
    """The run's eval/report.{json,md}; `base_from`: the eval folder of a run that asked the base model already."""
    out = run_dir / EVAL_DIR
    questions = eval_questions(spec, ctx, max_samples or spec.eval.max_samples)
    read = {which: read_predictions((base_from if base_from and which.startswith("base") else out) / which, questions)
            for which, _ in MODELS + (WITHOUT_SYSTEM if without_system else ())}
    loss = "loss.png" if plot_loss(run_dir, out / "loss.png") else None
    report = build_report(spec, run_dir, read["base"][0], read["tuned"][0],
                          {which: metrics for which, (_, metrics) in read.items()}, loss, token_counter(run_dir),
                          {which: read[which][0] for which, _ in WITHOUT_SYSTEM} if without_system else None)
    write_json(out / "report.json", report)
    atomic_write(out / "report.md", to_markdown(report))
    return out / "report.md", report


def compare(reports: list[dict]) -> dict:
    """Several runs' reports on the same questions as one table: the base once, then each run's tuned model."""
    first = reports[0]
    columns: dict[str, tuple[dict, str]] = {"reference": (first, "reference")}
    for which in ("base", "base_no_system"):
        if which in first["checks"]:
            columns[COLUMN_LABELS[which]] = (first, which)
    for report in reports:
        name = Path(report["run"]).name
        columns[name] = (report, "tuned")
        if "tuned_no_system" in report["checks"]:
            columns[f"{name}, no system prompt"] = (report, "tuned_no_system")
    return {"runs": [r["run"] for r in reports], "rows": first["rows"], "settings": first["settings"],
            "metrics": {c: r["metrics"][w] for c, (r, w) in columns.items() if w in r["metrics"]},
            "checks": {c: r["checks"][w] for c, (r, w) in columns.items()},
            "samples": [{"question": s["question"], **{c: r["samples"][i][w] for c, (r, w) in columns.items()
                                                       if i < len(r["samples"])}}
                        for i, s in enumerate(first["samples"])]}


def comparison_markdown(table: dict) -> str:
    columns = [c for c in table["checks"] if c != "reference"]
    lines = [f"# {len(table['runs'])} runs on {table['rows']} held-out questions", "",
             "Greedy answers (max " + str(table["settings"]["max_new_tokens"]) + " new tokens); runs: "
             + ", ".join(Path(r).name for r in table["runs"]) + ".", "",
             "| metric | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {m.upper()} | " + " | ".join(f"{table['metrics'][c][m]:.2f}" if m in table["metrics"].get(c, {})
                                               else "-" for c in columns) + " |" for m in METRICS]
    labels = {"boilerplate": "with site boilerplate", "in_voice": "in the persona's voice",
              "loops": "repeating itself", "at_token_limit": "cut at the token limit (never ended)"}
    everything = ["reference", *columns]
    lines += ["", "| share of answers | " + " | ".join(everything) + " |", "|---|" + "---:|" * len(everything)]
    for key, label in labels.items():
        lines.append(f"| {label} | " + " | ".join(f"{table['checks'][c][key]:.0%}" if key in table["checks"][c]
                                                  else "-" for c in everything) + " |")
    for n, sample in enumerate(table["samples"], 1):
        lines += ["", f"## {n}. {_one_line(sample['question'])}", "", "| | answer |", "|---|---|"]
        lines += [f"| {c} | {_one_line(sample[c])} |" for c in everything if c in sample]
    return "\n".join(lines) + "\n"
