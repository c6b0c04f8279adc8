"""The evidence travels with the model: every folder `zhouyi export` writes (the merge, a GGUF) gets a Hugging Face
model card (`README.md`, metadata through huggingface_hub's ModelCardData, with a `model-index` of the run's held-out
evaluation) and the `provenance.json` its facts come from: the digests of every file in the folder, of the data and
of the spec and rendered configs, the versions and the commit. `zhouyi verify FOLDER` recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import yaml

from zhouyi import layout
from zhouyi.errors import UserError
from zhouyi.files import atomic_write, read_mapping, sha256_file
from zhouyi.spec import JobSpec

CARD, PROVENANCE = layout.CARD, layout.PROVENANCE
OWN = (CARD, PROVENANCE)  # the folder's files the digests leave out: they describe the others
METRICS = (("rouge-l", "ROUGE-L"), ("bleu-4", "BLEU-4"))
CHECKS = (("boilerplate", "answers with site boilerplate"), ("loops", "answers repeating themselves"),
          ("in_voice", "answers in the persona's voice"), ("at_token_limit", "answers cut at the token limit"))


def eval_summary(run_dir: Path) -> tuple[dict | None, str]:
    """(the base-against-tuned comparison of the run's latest evaluation, or None; what the card says of it)."""
    from zhouyi.evaluation.evaluate import latest_report

    try:
        path, report, stale = latest_report(run_dir)
    except UserError:  # a damaged report is said on the card, not a failed export
        return None, f"The run's evaluation ({layout.REPORT_JSON}) is damaged: nothing here says how good it is."
    if report is None:
        return None, "This model was exported without an evaluation: nothing here says how good it is."
    found = next((c for c in report.get("comparisons", []) if (c.get("a"), c.get("b")) == ("base", "tuned")), None)
    if not found or "metrics" not in found:
        return None, "The run's evaluation holds no comparison with intervals: nothing here says how good it is."
    note = " It is older than the weights (trained again since), so it may not describe them." if stale else ""
    return {"questions": found["questions"], "metrics": found["metrics"], "shares": found.get("shares", {}),
            "forgetting": report.get("forgetting"), "report_sha256": sha256_file(path)}, note


def provenance(spec: JobSpec, run_dir: Path, folder: Path, gate: str) -> dict:
    """What the card states, with the digests a receiver can check."""
    manifest = read_mapping(run_dir / layout.MANIFEST, "")
    evaluation, note = eval_summary(run_dir)
    return {
        "made_by": "zhouyi export", "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run": run_dir.name,
        "run_dir": str(run_dir.resolve()),
        "files": {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
                  if p.is_file() and p.name not in OWN},
        # the data files; the registry is left out: it grows with every dataset registered after this run
        "data": {path: digest for path, digest in manifest.get("data", {}).items()
                 if Path(path).name != layout.DATASET_INFO},
        "spec_sha256": _sha256_of(run_dir / layout.SPEC_RESOLVED),
        "rendered": manifest.get("rendered", {}),
        "versions": manifest.get("versions", {}), "git_commit": manifest.get("git_commit"),
        "created": manifest.get("created"), "evaluation": evaluation, "evaluation_note": note, "export_gate": gate,
        "final_loss": _final_loss(run_dir),
    }


def _sha256_of(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def _final_loss(run_dir: Path) -> float | None:
    from zhouyi.runs import read_trainer_log

    losses = [e["loss"] for e in read_trainer_log(run_dir) if isinstance(e.get("loss"), int | float)]
    return round(losses[-1], 4) if losses else None


def base_license(spec: JobSpec, run_dir: Path) -> str | None:
    """The licence the base model's own card (README front matter) or config states, when it is a folder here."""
    from zhouyi.render import model_path
    from zhouyi.runs import render_context

    folder = Path(model_path(spec, render_context(spec, run_dir, Path.cwd())))
    readme = folder / CARD
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            meta = yaml.safe_load(text.split("---", 2)[1]) or {}
            if isinstance(meta, dict) and isinstance(meta.get("license"), str):
                return meta["license"]
    config = folder / layout.MODEL_CONFIG
    if config.is_file():
        found = json.loads(config.read_text(encoding="utf-8")).get("license")
        return found if isinstance(found, str) else None
    return None


def card_text(spec: JobSpec, run_dir: Path, facts: dict, folder: Path) -> str:
    """The model card: metadata (huggingface_hub's ModelCardData) and the body, in the order a reader asks."""
    from huggingface_hub import EvalResult, ModelCardData

    evaluation, licence = facts["evaluation"], base_license(spec, run_dir)
    eval_set = next((d.name for d in spec.data.datasets if d.split == "eval"), "held-out")
    results = []
    for key, label in METRICS:
        got = (evaluation or {}).get("metrics", {}).get(key)
        if got:
            results.append(EvalResult(
                task_type="text-generation", task_name="dream interpretation", dataset_type=eval_set,
                dataset_name=eval_set, dataset_split="eval", metric_type=key, metric_value=got["b"],
                metric_name=(f"{label} (base {got['a']}; tuned − base {got['diff']:+.2f}, 95% interval "
                             f"[{got['low']:+.2f}, {got['high']:+.2f}] over {evaluation['questions']} questions: "
                             f"{got['verdict']})")))
    hub_base = spec.model.model_name_or_path if spec.model.source in ("huggingface", "modelscope") else None
    data = ModelCardData(
        base_model=hub_base, library_name="transformers", pipeline_tag="text-generation", language=["zh"],
        license=licence, tags=["llama-factory", "zhouyi", spec.method.finetuning_type, "dream-interpretation"],
        datasets=[d.name for d in spec.data.datasets if d.split == "train"], model_name=spec.name,
        eval_results=results or None)
    body = _body(spec, run_dir, facts, folder, licence)
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def _body(spec: JobSpec, run_dir: Path, facts: dict, folder: Path, licence: str | None) -> str:
    persona = spec.model.default_system or "(none)"
    gguf = next((f for f in facts["files"] if f.endswith(".gguf")), None)
    what = spec.description or "a model tuned with zhouyi"
    lines = [f"# {spec.name}", "",
             f"{what[0].upper() + what[1:]}: {spec.model.model_name_or_path} tuned by "
             f"{spec.method.finetuning_type} with LLaMA-Factory, through zhouyi (run `{facts['run']}`). It answers "
             f"as its persona:", "", f"> {persona}", "", "## How to run it", ""]
    if gguf:
        lines += ["```bash", f"ollama create {spec.name} -f Modelfile && ollama run {spec.name}",
                  f"llama-cli -m {gguf} -cnv", "```"]
    else:
        lines += ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  'model = AutoModelForCausalLM.from_pretrained(".")',
                  'tokenizer = AutoTokenizer.from_pretrained(".")', "```", "",
                  f"With zhouyi: `zhouyi api {spec.name}` serves it (OpenAI-compatible); `ollama create {spec.name} "
                  "-f Modelfile` builds it for Ollama from this folder."]
    lines += ["", "## Evaluation", "", *_evaluation_lines(facts), "", "## Data", ""]
    if facts["data"]:
        lines += ["| file | sha256 |", "|---|---|"]
        lines += [f"| {Path(p).name} | `{digest}` |" for p, digest in facts["data"].items()]
    lines += _cleaning_lines(spec)
    lines += ["", "## Training", "",
              f"LLaMA-Factory {facts['versions'].get('llamafactory', '?')}, transformers "
              f"{facts['versions'].get('transformers', '?')}, torch {facts['versions'].get('torch', '?')}; zhouyi "
              f"commit {facts['git_commit'] or '(not a git checkout)'}; seed {spec.train.seed}; final training loss "
              f"{facts['final_loss'] if facts['final_loss'] is not None else '(not logged)'}; run made "
              f"{facts['created']}. The spec, as trained:", "", "```yaml",
              yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True), allow_unicode=True,
                             sort_keys=False).strip(), "```", "",
              "## Limitations", "",
              "The held-out questions are dreams of the same scraped collections as the training data; the scores "
              "measure closeness to their reference answers and the checks catch boilerplate, loops and answers that "
              "never end, not whether an interpretation is wise. "
              + (f"The evaluation asked {facts['evaluation']['questions']} questions: differences whose interval "
                 "includes zero are not shown." if facts["evaluation"] else ""),
              *([] if licence else ["", "Licence: the base model's card and config state none here; the base "
                                    "model's own terms apply."]),
              "", "## Reproduce and check", "",
              "```bash", f"zhouyi train {spec.name}   # the spec above", f"zhouyi eval {spec.name}",
              f"zhouyi export {spec.name}", "zhouyi verify .   # every digest in provenance.json, recomputed", "```",
              ""]
    return "\n".join(lines)


def _evaluation_lines(facts: dict) -> list[str]:
    evaluation = facts["evaluation"]
    gate = f"Export gate: {facts['export_gate']}."
    if not evaluation:
        return [facts["evaluation_note"], "", gate]
    lines = [f"Held-out questions: {evaluation['questions']}, greedy answers; tuned against the base model on the "
             "same questions, paired 95% intervals (bootstrap for scores, Wilson and exact McNemar for shares)."
             + facts["evaluation_note"], "", "| | base | tuned | tuned − base (95% interval) |", "|---|---:|---:|---|"]
    for key, label in METRICS:
        if got := evaluation["metrics"].get(key):
            lines.append(f"| {label} | {got['a']:.1f} | {got['b']:.1f} | {got['diff']:+.1f} [{got['low']:+.1f}, "
                         f"{got['high']:+.1f}], {got['verdict']} |")
    for key, label in CHECKS:
        if got := evaluation["shares"].get(key):
            lines.append(f"| {label} | {got['a']['share']:.0%} | {got['b']['share']:.0%} | "
                         f"{100 * got['diff']:+.0f} pts [{100 * got['low']:+.0f}, {100 * got['high']:+.0f}], "
                         f"{got['verdict']} |")
    forgot = evaluation.get("forgetting")
    if forgot and "low" in forgot.get("drift", {}):
        d = forgot["drift"]
        lines += ["", f"Forgetting: on {forgot['prompts']} general prompts the tuned model's loss moved "
                  f"{d['mean']:+.3f} nats per token, 95% interval [{d['low']:+.3f}, {d['high']:+.3f}]."]
    return [*lines, "", gate]


def _cleaning_lines(spec: JobSpec) -> list[str]:
    """The cleaning report's headline, when the spec's cleaning wrote one here."""
    clean = spec.data.clean
    path = Path(clean.report) / layout.REPORT_JSON if clean and getattr(clean, "report", None) else None
    if path is None or not path.is_file():
        return []
    report = json.loads(path.read_text(encoding="utf-8"))
    rules = sorted(report.get("rule_hits", {}).items(), key=lambda kv: -kv[1])[:5]
    return ["", f"Cleaned by `zhouyi data clean`: {report.get('rows_in')} rows in, {report.get('rows_out')} out; "
            f"{len(report.get('templates', []))} templates learnt; rules that fired most: "
            + ", ".join(f"{k} ({v})" for k, v in rules if v) + "."]


def write(spec: JobSpec, run_dir: Path, folder: Path, gate: str) -> Path:
    """The card and its provenance into `folder` (an export zhouyi just wrote: both are its own files)."""
    facts = provenance(spec, run_dir, folder, gate)
    card = card_text(spec, run_dir, facts, folder)
    facts["card_sha256"] = hashlib.sha256(card.encode("utf-8")).hexdigest()
    atomic_write(folder / CARD, card)
    atomic_write(folder / PROVENANCE, json.dumps(facts, ensure_ascii=False, indent=1) + "\n")
    return folder / CARD
