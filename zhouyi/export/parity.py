"""The parity check of `zhouyi export --gguf` and `zhouyi export --check`: does the exported model answer as the model
that was evaluated? The same held-out questions, greedy, through
  (a) LLaMA-Factory with the adapter: the model `zhouyi eval` judged, and the reference;
  (b) the merged safetensors through plain transformers;
  (c) each GGUF through llama.cpp, asked with the chat template inside the GGUF, as llama.cpp's server asks.
Each is compared with (a): the share of answers that are exactly the same, where each first differs, whether its
prompts are the very tokens LLaMA-Factory trained on, whether the persona is in them, and whether it ever ends an
answer. A runtime fails below its threshold (export.gguf), on other prompt tokens, on a dropped persona, or when it
never ends an answer while the merge ends some; then exit 2 with the first differing pair."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from zhouyi import launch, layout, process
from zhouyi.child.jobs import GreedyAnswers
from zhouyi.errors import UserError
from zhouyi.evaluation import answers
from zhouyi.export import gguf
from zhouyi.export.merge import require_merged
from zhouyi.files import atomic_write, write_json
from zhouyi.render import RenderContext
from zhouyi.spec import JobSpec


@dataclass
class Runtime:
    """One exported model as asked: its name, how strict to be, its answers."""

    name: str
    min_exact_match: float
    answers: list[dict]
    persona_ok: bool = True


def questions(spec: JobSpec, ctx: RenderContext) -> list[tuple[str | None, str]]:
    """(system, user) of the eval split's first rows, as LLaMA-Factory's prediction reads them: the row's own system
    prompt, else none (the template's persona)."""
    rows = answers.split_questions(spec, ctx.resolve(spec.data.dataset_dir), "eval", spec.export.gguf.parity_questions,
                           "the parity check")
    if not rows:
        raise UserError("the parity check asks the eval split's questions; the spec has no eval split "
                        "(data.datasets with split: eval)")
    return [(q.system or None, q.user) for q in rows]


def adapter_answers(spec: JobSpec, run_dir: Path, out: Path) -> list[str]:
    """(a): LLaMA-Factory's own prediction with the adapter, one question at a time (batches pad, and padding moves
    the numbers), as many questions and new tokens as the others get."""
    gg = spec.export.gguf
    args = [f"max_samples={gg.parity_questions}", "per_device_eval_batch_size=1",
            f"max_new_tokens={gg.parity_max_new_tokens}"]
    return [row["predict"] for row in answers.predict(spec, run_dir, "tuned", out, args)]


def _stamps(run_dir: Path, merged: Path) -> list:
    """What says the adapter and the merge are still the ones answered: each weights file's name, size and time."""
    files = [*layout.weights_files(run_dir), *(run_dir / layout.TRAIN_DIR).glob("*.safetensors"),
             *merged.glob("*.safetensors"), merged / layout.MODEL_CONFIG]
    return sorted([str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.is_file())


def _reused(path: Path, key: dict) -> tuple[list[str], dict] | None:
    """The adapter's and the merge's answers of an earlier check that asked the same of the same weights: they are
    greedy, so asking again would give them again (minutes on a real model, once per export otherwise)."""
    try:
        found = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("key") != json.loads(json.dumps(key)):
        return None
    return found["adapter"], found["merged"]


def child_answers(spec: JobSpec, runtime: str, model: Path, asked: list, timeout: float) -> dict:
    job = GreedyAnswers(runtime=runtime, model=str(model), template=spec.model.template,
                        persona=spec.model.default_system, max_new_tokens=spec.export.gguf.parity_max_new_tokens,
                        messages=asked)
    answer = process.call_child(job, f"{model}: {runtime} could not answer", env=launch.single_process_env(spec),
                                timeout=timeout)
    return answer.model_dump()


def first_difference(a: str, b: str) -> int | None:
    """The index of the first character where the answers differ; None when they are the same."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def compare(reference: list[str], trained_prompts: list[list[int]], merged_ends: int, runtime: Runtime) -> dict:
    """One runtime against (a): the numbers and the reasons it fails, if it does. (a) gives text only; where it
    ended, the merged weights (held to the same answers) say."""
    pairs = list(zip(reference, runtime.answers, strict=True))
    firsts = [first_difference(ref, got["text"]) for ref, got in pairs]
    exact = sum(f is None for f in firsts) / len(pairs)
    same_prompts = sum(got["prompt_ids"] == ids for got, ids in zip(runtime.answers, trained_prompts, strict=True))
    ends = sum(got["ended"] for got in runtime.answers)
    problems = []
    if exact < runtime.min_exact_match:
        problems.append(f"{exact:.0%} of answers match the adapter's, below {runtime.min_exact_match:.0%}")
    if same_prompts < len(pairs):
        problems.append(f"{len(pairs) - same_prompts} prompt(s) are not the tokens LLaMA-Factory trained on "
                        "(another chat template or tokenizer)")
    if not runtime.persona_ok:
        problems.append("the persona is not in its prompt when no system prompt is sent")
    if ends == 0 and merged_ends:
        problems.append("it never ends an answer")
    first = next((i for i, f in enumerate(firsts) if f is not None), None)
    return {"runtime": runtime.name, "exact_match": round(exact, 3), "min_exact_match": runtime.min_exact_match,
            "first_difference": firsts, "same_prompt_tokens": same_prompts, "ended": ends, "questions": len(pairs),
            "persona": runtime.persona_ok, "passed": not problems, "problems": problems,
            "first_differing": None if first is None else {"question": first, "at": firsts[first],
                                                           "adapter": reference[first],
                                                           "exported": runtime.answers[first]["text"]}}


def check(spec: JobSpec, run_dir: Path, ctx: RenderContext, ggufs: list[Path] | None = None,
          timeout: float = 3600) -> dict:
    """Ask the merge and `ggufs` (default: every GGUF export of the run), write `<run>/parity/report.{json,md}`;
    the report. Raises UserError (exit 2) with the first differing pair when a runtime fails."""
    merged = layout.merged_dir(run_dir, spec.export.export_dir)
    require_merged(merged, "--check", "the check asks the merge and every GGUF made from it")
    folders = gguf.gguf_dirs(spec, run_dir) if ggufs is None else ggufs
    if folders:
        gguf.require_packages()  # llama.cpp answers for the GGUFs: say so before minutes of answering
    asked = questions(spec, ctx)
    out = run_dir / layout.PARITY_DIR
    out.mkdir(exist_ok=True)
    gg = spec.export.gguf
    persona = spec.model.default_system
    key = {"questions": asked, "template": spec.model.template, "persona": persona, "settings": [
        gg.parity_questions, gg.parity_max_new_tokens], "weights": _stamps(run_dir, merged)}
    reused = _reused(out / layout.PARITY_ANSWERS, key)
    if reused:
        print("parity: the adapter's and the merge's answers of the last check reused (same weights, same questions)")
    reference, plain = reused or (adapter_answers(spec, run_dir, out / "adapter"),
                                  child_answers(spec, "transformers", merged, asked, timeout))
    if len(reference) != len(asked):
        raise UserError(f"LLaMA-Factory answered {len(reference)} questions, zhouyi asked {len(asked)}; the eval "
                        "split's files changed since the run was made?")
    write_json(out / layout.PARITY_ANSWERS, {"key": key, "adapter": reference, "merged": plain})
    merged_answers = plain["answers"]
    trained_prompts = [a["prompt_ids"] for a in merged_answers]  # LLaMA-Factory's template code made them
    runtimes = [Runtime("merged (transformers)", gg.merged_min_exact_match, merged_answers,
                        not persona or persona in plain["bare_prompt"])]
    for folder in folders:
        record = gguf.record(folder)
        strict = gg.min_exact_match if record["type"] in gguf.FULL_PRECISION else gg.quantized_min_exact_match
        answer = child_answers(spec, "llama.cpp", gguf.gguf_file(folder), asked, timeout)
        ok = not persona or (persona in answer["bare_prompt"]
                             and f'SYSTEM """{persona}"""' in (folder / layout.MODELFILE).read_text("utf-8"))
        runtimes.append(Runtime(f"GGUF {record['type']} (llama.cpp)", strict, answer["answers"], ok))
    merged_ends = sum(a["ended"] for a in merged_answers)
    report = {"run": run_dir.name, "questions": [u for _, u in asked], "adapter": reference,
              "max_new_tokens": gg.parity_max_new_tokens,
              "results": [compare(reference, trained_prompts, merged_ends, r) for r in runtimes],
              "answers": {r.name: [a["text"] for a in r.answers] for r in runtimes}}
    write_json(out / layout.REPORT_JSON, report)
    atomic_write(out / layout.REPORT_MD, to_markdown(report))
    print(to_markdown(report, answers=False))
    failed = [r for r in report["results"] if not r["passed"]]
    if failed:
        r = failed[0]
        pair = r["first_differing"]
        shown = "" if pair is None else (f"\nquestion {pair['question'] + 1}, first difference at character "
                                         f"{pair['at']}:\n  adapter:  {pair['adapter']!r}\n"
                                         f"  exported: {pair['exported']!r}")
        raise UserError(f"parity check failed for {', '.join(f['runtime'] for f in failed)}: "
                        f"{'; '.join(r['problems'])}{shown}\n(report: {out / layout.REPORT_MD})")
    return report


def to_markdown(report: dict, answers: bool = True) -> str:
    lines = [f"# Parity: does the export answer as the evaluated model? ({report['run']})", "",
             f"{len(report['questions'])} held-out questions, greedy, up to {report['max_new_tokens']} new tokens; "
             "each runtime against LLaMA-Factory with the adapter.", "",
             "| runtime | same answers | needed | first difference (chars) | trained prompt tokens | ended | persona "
             "| verdict |", "|---|---:|---:|---|---:|---:|---|---|"]
    for r in report["results"]:
        firsts = ", ".join("=" if f is None else str(f) for f in r["first_difference"])
        verdict = "pass" if r["passed"] else "FAIL: " + "; ".join(r["problems"])
        lines.append(f"| {r['runtime']} | {r['exact_match']:.0%} | {r['min_exact_match']:.0%} | {firsts} "
                     f"| {r['same_prompt_tokens']}/{r['questions']} | {r['ended']}/{r['questions']} "
                     f"| {'yes' if r['persona'] else 'no'} | {verdict} |")
    if answers:
        lines += ["", "## Answers", ""]
        for i, question in enumerate(report["questions"]):
            lines += [f"**{i + 1}. {question}**", "", f"- adapter: {report['adapter'][i]!r}"]
            lines += [f"- {name}: {texts[i]!r}" for name, texts in report["answers"].items()]
            lines.append("")
    return "\n".join(lines) + "\n"
