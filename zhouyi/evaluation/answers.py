"""Answers, in one home: the questions of a split (one reader, as LLaMA-Factory reads them), asking a run's model
through LLaMA-Factory's own prediction and reading what it wrote (one failure style), the token counter, and the
checks made on every answer (documented in the README, "See the model"): site boilerplate, the persona's voice,
degeneration (loops, running into the token limit) and length against the reference. `zhouyi eval`, `data pairs`
and the export's parity check sit on top of it."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from zhouyi import launch, layout, process
from zhouyi.data.rules import DEFAULT_RULES
from zhouyi.errors import UserError
from zhouyi.evaluation.checks import NAMES
from zhouyi.files import read_json_rows
from zhouyi.spec import DatasetEntry, JobSpec

# ---------------------------------------------------------------- questions


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

    def shown(self, persona: str | None) -> str:
        """The question as a report shows it: a persona the instruction column carries is not the question."""
        return "\n".join(t for t in (self.prompt, self.query) if t and t != persona)


def readable(spec: JobSpec, split: str) -> bool:
    """Every dataset of the split is an alpaca file of answers zhouyi can read (not a hub set, sharegpt, pairs)."""
    return all(d.file_name is not None and d.formatting == "alpaca" and not d.ranking
               for d in spec.data.datasets if d.split == split)


def split_questions(spec: JobSpec, data_dir: Path, split: str, max_samples: int | None, verb: str) -> list[Question]:
    """A split's rows, in the order LLaMA-Factory reads them (each dataset cut at max_samples). `verb` names who
    asks, for the error when a dataset is not an alpaca file of answers."""
    return [q for entry in spec.data.datasets if entry.split == split
            for q in dataset_questions(entry, data_dir, verb)[:max_samples]]


def dataset_questions(entry: DatasetEntry, data_dir: Path, verb: str) -> list[Question]:
    """One registered dataset's rows as questions (an alpaca file of answers; anything else is refused)."""
    cols = entry.resolved_columns
    if entry.file_name is None or entry.formatting != "alpaca" or entry.ranking:
        raise UserError(f"{verb}: the {entry.split} set '{entry.name}' is not an alpaca file of answers zhouyi can "
                        "read (file_name, formatting: alpaca, no ranking)")
    try:
        rows = read_json_rows(data_dir / entry.file_name)
    except (OSError, ValueError) as exc:
        raise UserError(f"{data_dir / entry.file_name}: {exc}; the run's {entry.split} data must be where it was") \
            from None
    return [Question(str(r.get(cols.prompt) or ""), str(r.get(cols.query or "") or ""), str(r.get(cols.response) or ""),
                     r.get(cols.system) if cols.system else None) for r in rows]


def require_no_system_column(spec: JobSpec, split: str = "eval") -> None:
    """Asking without the system prompt means nothing when the rows asked carry the persona themselves (LLaMA-Factory's
    `default_system=null` only drops the default)."""
    carrying = [d.name for d in spec.data.datasets if d.split == split and d.resolved_columns.system]
    if carrying:
        raise UserError(f"--without-system: the {split} split {', '.join(carrying)} maps a system column "
                        f"(columns.system), so its rows carry the persona; map no system column for the {split} split")


# ---------------------------------------------------------------- asking a run's model


@dataclass(frozen=True)
class Asking:
    """One prediction: `which` model of the run ("base" or "tuned") answers into `out` (LLaMA-Factory's output_dir),
    with LLaMA-Factory's key=value overrides `args`."""

    which: str
    out: Path
    args: tuple[str, ...] = ()

    @property
    def log(self) -> Path:
        return self.out.with_name(self.out.name + ".log")


def predict(spec: JobSpec, run_dir: Path, which: str, out: Path, args: list[str] | tuple[str, ...] = ()
            ) -> list[dict]:
    """The `which` model of a run ("base" or "tuned") answers by LLaMA-Factory's own prediction (greedy), into
    `out` (its log beside it, `<out>.log`); the rows it wrote. A failure is a UserError ending with the log."""
    return predict_all(spec, run_dir, [Asking(which, out, tuple(args))])[0]


def predict_all(spec: JobSpec, run_dir: Path, askings: list[Asking], echo=print) -> list[list[dict]]:
    """Each asking's rows, in order, by LLaMA-Factory's own prediction: each is the `llamafactory-cli train` command
    printed, run from one import of LLaMA-Factory for all (zhouyi.child.lf_askings: 7-10 s saved an asking). The
    first that fails is a UserError ending with its log; the ones after it are not asked."""
    from zhouyi.child.jobs import CliRun, LfAskings

    if not askings:
        return []
    commands = [launch.build(spec, layout.PREDICT_VERBS[a.which], run_dir, args=[*a.args, f"output_dir={a.out}"])
                for a in askings]
    for asking, cmd in zip(askings, commands, strict=True):
        asking.out.parent.mkdir(parents=True, exist_ok=True)
        echo(f"run: {cmd.shell()} > {asking.log} 2>&1", flush=True)
    job = LfAskings(askings=[CliRun(args=cmd.argv[1:], cwd=cmd.cwd, log=str(a.log))
                             for a, cmd in zip(askings, commands, strict=True)])
    codes = process.call_child(job, "LLaMA-Factory's prediction", env=commands[0].env).codes  # one env: predict's
    for asking, code in zip(askings, codes, strict=False):
        if code != 0:
            raise UserError(f"{asking.which} model: prediction failed (exit {code}); {asking.log} ends:\n"
                            f"{process.log_tail(asking.log)}")
    return [prediction_rows(asking.out) for asking in askings]


@dataclass(frozen=True)
class Prediction:
    question: str
    reference: str
    answer: str


METRICS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")  # what LLaMA-Factory's prediction scores, in points


def read_predictions(folder: Path, questions: list[str] | None) -> tuple[list[Prediction], dict[str, float]]:
    """LLaMA-Factory's generated_predictions.jsonl and predict_results.json from one prediction folder; `questions`
    (None: the templated prompt, markup removed, stands for each) in the order it asked them."""
    rows = prediction_rows(folder)
    if questions is None or len(questions) != len(rows):
        questions = [re.sub(r"<\|[^|>]*\|>", " ", r["prompt"]).strip() for r in rows]
    results = json.loads((folder / layout.PREDICT_RESULTS).read_text("utf-8"))
    metrics = {m: round(float(results[f"predict_{m}"]), 2) for m in METRICS if f"predict_{m}" in results}
    return [Prediction(q, r["label"], r["predict"]) for q, r in zip(questions, rows, strict=True)], metrics


def scores(answer: str, reference: str) -> dict[str, float]:
    """One answer's BLEU-4 and ROUGE-1/2/L against its reference, in points, computed as LLaMA-Factory's prediction
    computes them (ComputeSimilarity: jieba-segmented ROUGE F, character BLEU-4 with smoothing method 3), so their
    mean over questions is its predict_results.json."""
    import logging

    import jieba
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge_chinese import Rouge

    jieba.setLogLevel(logging.WARNING)
    hypothesis, ref = list(jieba.cut(answer)), list(jieba.cut(reference))
    if not " ".join(hypothesis).split() or not " ".join(ref).split():
        rouge = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    else:
        got = Rouge().get_scores(" ".join(hypothesis), " ".join(ref))[0]
        rouge = {k: round(v["f"] * 100, 4) for k, v in got.items()}
    bleu = sentence_bleu([list(reference)], list(answer), smoothing_function=SmoothingFunction().method3)
    return {"bleu-4": round(bleu * 100, 4), **rouge}


def prediction_rows(folder: Path) -> list[dict]:
    """The rows ({prompt, predict, label}) of LLaMA-Factory's generated_predictions.jsonl in one prediction folder."""
    return [json.loads(line) for line in (folder / layout.PREDICTIONS).read_text("utf-8").splitlines()
            if line.strip()]


def asked_model(run_dir: Path, which: str) -> dict:
    """The model a run's prediction of `which` ("base", "tuned") loads, as its rendered YAML says: path, adapter,
    template."""
    import yaml

    config = yaml.safe_load((run_dir / layout.VERB_FILES[layout.PREDICT_VERBS[which]]).read_text("utf-8"))
    return {"model": str(config["model_name_or_path"]), "adapter": config.get("adapter_name_or_path"),
            "template": str(config["template"])}


def token_counter(run_dir: Path):
    """Counts an answer's tokens with the run's own tokenizer (for the token-limit check), or None."""
    try:
        model = asked_model(run_dir, "tuned")["model"]
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception:  # noqa: BLE001 - no tokenizer, no token-limit check; the other checks still hold
        return None
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


# ---------------------------------------------------------------- checks on one answer, and on many

BOILERPLATE_RULES = tuple(r.name for r in DEFAULT_RULES if r.boilerplate)  # each rule says whether it is one
SHARES = NAMES  # the checks (zhouyi.evaluation.checks) reported as shares of answers


def has_boilerplate(text: str) -> bool:
    return any(rule.compiled().search(text) for rule in DEFAULT_RULES if rule.name in BOILERPLATE_RULES)


def speaks_as_assistant(text: str, off_voice: list[str]) -> bool:
    return any(m in text for m in off_voice)


def in_voice(text: str, voice: list[str], off_voice: list[str]) -> bool:
    return not speaks_as_assistant(text, off_voice) and any(m in text for m in voice)


def loops(text: str, width: int = 10, times: int = 3) -> bool:
    """The answer repeats itself: some `width`-character stretch occurs `times` times, or a sentence of six or more
    characters twice (what a model that never learnt to stop does until its token limit)."""
    compact = "".join(text.split())
    stretches = [compact[i:i + width] for i in range(max(len(compact) - width + 1, 0))]
    if any(count >= times for count in Counter(stretches).values()):
        return True
    sentences = [s for s in re.split(r"[。！？!?\n；;]", text) if len(s.strip()) >= 6]
    return any(count >= 2 for count in Counter(s.strip() for s in sentences).values())


def at_token_limit(text: str, spec: JobSpec, count_tokens) -> bool:
    """The answer used every new token `zhouyi eval` allows: cut by the limit, not ended by the model."""
    return count_tokens(text) >= spec.eval.max_new_tokens - 1


def check(text: str, spec: JobSpec, count_tokens=None) -> dict[str, bool]:
    """Every check on one answer; `at_token_limit` only with a token counter."""
    voice, off = spec.eval.voice_markers, spec.eval.off_voice_markers
    flags = {"boilerplate": has_boilerplate(text), "in_voice": in_voice(text, voice, off),
             "speaks_as_assistant": speaks_as_assistant(text, off), "empty": not text.strip(), "loops": loops(text)}
    if count_tokens is not None:  # an answer this long was cut by the limit, not ended by the model
        flags["at_token_limit"] = at_token_limit(text, spec, count_tokens)
    return flags


def share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else 0.0


def answer_checks(texts: list[str], references: list[str], spec: JobSpec, count_tokens=None) -> dict[str, float]:
    """The share of answers with each problem, and their mean length against the reference's."""
    flags = [check(t, spec, count_tokens) for t in texts]
    checks = {name: share([f[name] for f in flags]) for name in SHARES
              if name != "at_token_limit" or count_tokens is not None}
    checks["length_ratio"] = round(sum(len(t) / max(len(r), 1) for t, r in zip(texts, references, strict=True))
                                   / max(len(texts), 1), 2)
    return checks
