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
from dataclasses import dataclass
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


@dataclass
class Plan:
    """What the forgetting check asks LLaMA-Factory, planned so that an evaluation's predictions are asked together
    (zhouyi.evaluation.answers.predict_all): the tuned model, and the base unless its answers are cached."""

    prompts: list[str]
    cache: Path
    cached: dict | None  # the base's answers and likelihoods, from the cache
    askings: list[answers.Asking]


def plan(spec: JobSpec, run_dir: Path, base_dir: Path, echo=print) -> Plan:
    """The prompts written as the run's general dataset, and who must answer them."""
    prompts = load_prompts(spec, base_dir)
    keys = answers.asked_model(run_dir, "base")
    digest = hashlib.sha256(json.dumps([keys, prompts, spec.eval.max_new_tokens], ensure_ascii=False)
                            .encode()).hexdigest()[:16]
    cache = base_dir / layout.general_cache_file(digest)
    cached = None
    if cache.is_file():
        try:
            cached = json.loads(cache.read_text("utf-8"))
        except ValueError:
            pass  # a damaged cache is made again
    data = run_dir / layout.EVAL_DIR / layout.GENERAL_DATA
    _write_dataset(data, prompts)
    args = (f"eval_dataset={DATASET}", f"dataset_dir={data}", "default_system=null", f"max_samples={len(prompts)}")
    who = ["tuned"] if cached is not None else ["base", "tuned"]
    if cached is None:
        echo(f"forgetting check: the base model answers {len(prompts)} general prompts (once; cached in {cache})",
             flush=True)
    echo(f"forgetting check: the tuned model answers {len(prompts)} general prompts", flush=True)
    return Plan(prompts, cache, cached,
                [answers.Asking(w, layout.answers_dir(run_dir, f"general_{w}"), args) for w in who])


def finish(spec: JobSpec, run_dir: Path, planned: Plan, rows: list[list[dict]]) -> dict:
    """Drift and domain bleed of the run's tuned model (see the module's docstring), per prompt and in all, from
    the planned askings' rows (in the plan's order); the base's answers and likelihoods cached for the next run."""
    replies = {}
    for asking, asked in zip(planned.askings, rows, strict=True):
        if len(asked) != len(planned.prompts):
            raise UserError(f"LLaMA-Factory answered {len(asked)} of {len(planned.prompts)} general prompts; an "
                            "empty prompt?")
        replies[asking.which] = [r["predict"] for r in asked]
    base = planned.cached
    if base is None:  # the base's likelihood of its own answers, read with the tuned model's in one child
        keys = answers.asked_model(run_dir, "base")
        base_nll, tuned_nll = _nll(spec, [keys, answers.asked_model(run_dir, "tuned")], planned.prompts,
                                   replies["base"])
        base = {"model": keys, "prompts": planned.prompts, "answers": replies["base"], "nll": base_nll}
        write_json(planned.cache, base)
    else:
        (tuned_nll,) = _nll(spec, [answers.asked_model(run_dir, "tuned")], planned.prompts, base["answers"])
    return summarise(planned.prompts, base["answers"], replies["tuned"], base["nll"], tuned_nll,
                     spec.eval.bleed_markers, spec.eval.seed)


def _nll(spec: JobSpec, models: list[dict], prompts: list[str], replies: list[str]) -> list[list[float]]:
    """Each model's negative log-likelihood per token of each reply (zhouyi.child.nll)."""
    from zhouyi import launch
    from zhouyi.child.jobs import Nll

    job = Nll(models=models, pairs=list(zip(prompts, replies, strict=True)))
    return process.call_child(job, f"the forgetting check ({', '.join(m['model'] for m in models)})",
                              env=launch.single_process_env(spec)).nll


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
