"""The forgetting check of `zhouyi eval`: did tuning on dreams break the model for everything else? General prompts
(everyday questions, cooking, travel, arithmetic, code, history; zhouyi ships 64, or `eval.general_prompts`) go to
the base and the tuned model with no system prompt, through LLaMA-Factory's own prediction, and two numbers come out:

- drift: the tuned model's mean negative log-likelihood per token of the *base model's own* greedy answers, minus
  the base model's (a forward pass each, zhouyi.child.nll), with a paired bootstrap interval over the prompts: how
  far tuning moved the model away from what it would have said;
- domain bleed: the share of the tuned model's answers that talk about dreams or omens or take the persona unasked
  (`eval.bleed_markers`), with its Wilson interval, against the base's.

The base's answers and likelihoods depend on the base model only: they are computed once and cached in
`.zhouyi/general/` of the project, keyed by the model, template, prompts and token limit.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from zhouyi import layout, process
from zhouyi.errors import UserError
from zhouyi.evaluation import answers, stats
from zhouyi.files import BadLine, json_rows, write_json
from zhouyi.layout import DATASET_INFO
from zhouyi.spec import JobSpec
from zhouyi.user_files import read_text, wrong_shape

SHIPPED = Path(__file__).resolve().parent / "general_prompts.json"
DATASET = "zhouyi_general"


def load_prompts(spec: JobSpec, base_dir: Path) -> list[str]:
    """The general prompts: the spec's file (rows of {"prompt": ...} or plain strings) or the shipped ones."""
    path = base_dir / spec.eval.general_prompts if spec.eval.general_prompts else SHIPPED
    where = f"eval.general_prompts: {path}" if spec.eval.general_prompts else str(path)
    mend = 'write one prompt a row, as {"prompt": "..."} or a plain string, in a JSON or JSONL file'
    text = read_text(path, "eval.general_prompts", mend)
    try:
        rows = json_rows(text)
    except ValueError as exc:
        raise wrong_shape(path, "eval.general_prompts", f"a JSON or JSONL list of prompts ({exc})", mend) from None
    if any(isinstance(row, BadLine) for row in rows):
        bad = next(row for row in rows if isinstance(row, BadLine))
        raise wrong_shape(path, "eval.general_prompts", f"JSON Lines (line {bad.line} is not JSON)", mend)
    prompts = [r if isinstance(r, str) else r.get("prompt") if isinstance(r, dict) else None for r in rows]
    bad = next((i for i, p in enumerate(prompts) if not isinstance(p, str) or not p.strip()), None)
    if bad is not None:
        raise UserError(f"{where}: row {bad} holds no prompt ({str(rows[bad])[:80]!r}); write each row as "
                        '{"prompt": "..."} or a plain string')
    if not prompts:
        raise UserError(f"{where}: holds no prompts; give at least two (an interval needs two)")
    return prompts[:spec.eval.general_max_samples]


def bleeds(text: str, markers: list[str]) -> bool:
    lowered = text.lower()
    return any(m.lower() in lowered for m in markers)


def _write_dataset(folder: Path, prompts: list[str]) -> None:
    """The prompts as an alpaca file and its own dataset_info.json, in the run's eval folder."""
    from zhouyi.render import dataset_entry
    from zhouyi.spec import DatasetEntry

    write_json(folder / layout.GENERAL_FILE, [{"instruction": p, "input": "", "output": ""} for p in prompts])
    entry = DatasetEntry(name=DATASET, file_name=layout.GENERAL_FILE)
    write_json(folder / DATASET_INFO, {DATASET: dataset_entry(entry)})


def _answer(spec: JobSpec, run_dir: Path, which: str, prompts: list[str]) -> list[str]:
    """`which` model's greedy answers to the prompts, asked with no system prompt, by LLaMA-Factory."""
    data = run_dir / layout.EVAL_DIR / layout.GENERAL_DATA
    _write_dataset(data, prompts)
    args = [f"eval_dataset={DATASET}", f"dataset_dir={data}", "default_system=null", f"max_samples={len(prompts)}"]
    rows = answers.predict(spec, run_dir, which, layout.answers_dir(run_dir, f"general_{which}"), args)
    if len(rows) != len(prompts):
        raise UserError(f"LLaMA-Factory answered {len(rows)} of {len(prompts)} general prompts; an empty prompt?")
    return [r["predict"] for r in rows]


def _nll(spec: JobSpec, keys: dict, prompts: list[str], replies: list[str]) -> list[float]:
    from zhouyi import launch
    from zhouyi.child.jobs import Nll

    job = Nll(**keys, pairs=list(zip(prompts, replies, strict=True)))
    return process.call_child(job, f"the forgetting check ({keys['model']})",
                              env=launch.single_process_env(spec)).nll


def base_answers(spec: JobSpec, run_dir: Path, base_dir: Path, prompts: list[str], echo=print) -> dict:
    """The base model's answers to the prompts and its likelihood of them: from the cache, else made and cached."""
    keys = answers.asked_model(run_dir, "base")
    digest = hashlib.sha256(json.dumps([keys, prompts, spec.eval.max_new_tokens], ensure_ascii=False)
                            .encode()).hexdigest()[:16]
    cached = base_dir / layout.general_cache_file(digest)
    if cached.is_file():
        try:
            return json.loads(cached.read_text("utf-8"))
        except ValueError:
            pass  # a damaged cache is made again
    echo(f"forgetting check: the base model answers {len(prompts)} general prompts (once; cached in {cached})",
         flush=True)
    replies = _answer(spec, run_dir, "base", prompts)
    record = {"model": keys, "prompts": prompts, "answers": replies, "nll": _nll(spec, keys, prompts, replies)}
    write_json(cached, record)
    return record


def check(spec: JobSpec, run_dir: Path, base_dir: Path, echo=print) -> dict:
    """Drift and domain bleed of the run's tuned model (see the module's docstring), per prompt and in all."""
    prompts = load_prompts(spec, base_dir)
    base = base_answers(spec, run_dir, base_dir, prompts, echo)
    echo(f"forgetting check: the tuned model answers {len(prompts)} general prompts", flush=True)
    tuned = _answer(spec, run_dir, "tuned", prompts)
    tuned_nll = _nll(spec, answers.asked_model(run_dir, "tuned"), prompts, base["answers"])
    return summarise(prompts, base["answers"], tuned, base["nll"], tuned_nll, spec.eval.bleed_markers, spec.eval.seed)


def summarise(prompts: list[str], base: list[str], tuned: list[str], base_nll: list[float], tuned_nll: list[float],
              markers: list[str], seed: int = 0) -> dict:
    """The forgetting section of a report: per prompt, and drift and bleed with their intervals."""
    base_bleed, tuned_bleed = [bleeds(t, markers) for t in base], [bleeds(t, markers) for t in tuned]
    per_prompt = [{"prompt": p, "base": b, "tuned": t, "base_nll": bn, "tuned_nll": tn, "base_bleeds": bb,
                   "tuned_bleeds": tb} for p, b, t, bn, tn, bb, tb in
                  zip(prompts, base, tuned, base_nll, tuned_nll, base_bleed, tuned_bleed, strict=True)]
    out = {"prompts": len(prompts), "per_prompt": per_prompt,
           "nll": {"base": round(stats.mean(base_nll), 4), "tuned": round(stats.mean(tuned_nll), 4)},
           "drift": {"mean": round(stats.mean(tuned_nll) - stats.mean(base_nll), 4)}}
    try:
        interval = stats.paired_bootstrap(base_nll, tuned_nll, seed=seed)
        out["drift"] |= {"low": round(interval.low, 4), "high": round(interval.high, 4)}
        out["bleed"] = stats.compare_shares(base_bleed, tuned_bleed, higher_is_better=False, seed=seed)
    except stats.TooFew as exc:
        out["too_few"] = str(exc)
        out["bleed"] = {"a": {"share": stats.mean(base_bleed)}, "b": {"share": stats.mean(tuned_bleed)}}
    return out
