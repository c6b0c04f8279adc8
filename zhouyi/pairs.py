"""`zhouyi data pairs`: preference pairs with no labelling. The models of a finished run (the base, the tuned model,
or both) answer the run's own training questions through LLaMA-Factory's prediction (greedy); every answer that
zhouyi's checks flag (zhouyi.answer_checks) becomes `rejected`, against the training answer as `chosen`.

An answer is flagged for a problem only where the reference has not the same problem (an answer without the
diviner's words teaches nothing against a reference without them either). Answers that pass every check give no
pair; an answer equal to its reference is dropped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from zhouyi import launch, process
from zhouyi.answer_checks import at_token_limit, has_boilerplate, loops
from zhouyi.errors import UserError
from zhouyi.evaluate import Question, prediction_rows, split_questions
from zhouyi.files import commit, locked, refuse_foreign
from zhouyi.registry import DATASET_INFO, merge_entries, read_registry
from zhouyi.render import RenderContext, dataset_entry
from zhouyi.spec import RANKING_COLUMNS, DatasetEntry, JobSpec

PAIRS_DIR = "pairs"  # inside the run: the models' answers and the report
VERBS = {"base": "predict_base", "tuned": "predict"}


def problems(answer: str, spec: JobSpec, at_limit: bool) -> list[str]:
    """What zhouyi's checks find wrong with one answer (`at_limit`: it used every new token without ending)."""
    if not answer.strip():
        return ["empty"]
    found = []
    if any(m in answer for m in spec.eval.off_voice_markers):
        found.append("speaks as an assistant")
    elif not any(m in answer for m in spec.eval.voice_markers):
        found.append("not in the persona's voice")
    if has_boilerplate(answer):
        found.append("site boilerplate")
    if loops(answer):
        found.append("repeats itself")
    if at_limit:
        found.append("no end (cut at the token limit)")
    return found


def build_pairs(questions: list[Question], answers: dict[str, list[tuple[str, bool]]], spec: JobSpec
                ) -> tuple[list[dict], dict]:
    """Pair rows and the report, from each model's (answer, ran into the limit) per question."""
    rows, reasons, no_pair, seen = [], Counter(), Counter(), set()
    examples = []
    for which, model_answers in answers.items():
        for q, (answer, at_limit) in zip(questions, model_answers, strict=True):
            if answer.strip() == q.reference.strip():
                no_pair["same as the reference"] += 1
                continue
            found = [p for p in problems(answer, spec, at_limit) if p not in problems(q.reference, spec, False)]
            if not found:
                no_pair["passes every check"] += 1
                continue
            if (q.prompt, q.query, answer) in seen:
                no_pair["the same answer from another model"] += 1
                continue
            seen.add((q.prompt, q.query, answer))
            reasons.update(found)
            row = {"instruction": q.prompt, "input": q.query, "chosen": q.reference, "rejected": answer}
            rows.append(row | ({"system": q.system} if q.system is not None else {}))
            if len(examples) < 5:
                examples.append({"model": which, "question": q.user,
                                 "rejected": answer, "because": found})
    report = {"questions": len(questions), "models": list(answers), "pairs": len(rows),
              "rejected_because": dict(reasons.most_common()), "no_pair": dict(no_pair), "examples": examples}
    return rows, report


def training_questions(spec: JobSpec, base_dir: Path, max_samples: int) -> list[Question]:
    """The run's training rows, in the order LLaMA-Factory reads them (each dataset cut at max_samples)."""
    folder = RenderContext(base_dir, base_dir).resolve(spec.data.dataset_dir)
    return split_questions(spec, folder, "train", max_samples, "data pairs (built from the answers of a stage-sft run)")


def answer(spec: JobSpec, run_dir: Path, which: str, max_samples: int, without_system: bool) -> Path:
    """`which` model's greedy answers to the run's training questions, by LLaMA-Factory; the output folder."""
    out = run_dir / PAIRS_DIR / which
    names = ",".join(spec.data.names("train"))
    args = [f"eval_dataset={names}", f"max_samples={max_samples}", f"output_dir={out}",
            *(["default_system=null"] if without_system else [])]
    log = run_dir / PAIRS_DIR / f"{which}.log"
    log.parent.mkdir(exist_ok=True)
    print(f"{which} model: answering {max_samples} training questions per dataset", flush=True)
    code = process.run(launch.build(spec, VERBS[which], run_dir, args=args), log=log)
    if code != 0:
        raise UserError(f"{which} model: prediction failed (exit {code}); {log} ends:\n{process.log_tail(log)}")
    return out


def read_answers(folder: Path, count: int, spec: JobSpec, count_tokens) -> list[tuple[str, bool]]:
    """Each answer LLaMA-Factory wrote in `folder`, and whether it ran into the token limit."""
    rows = prediction_rows(folder)
    if len(rows) != count:
        raise UserError(f"{folder}: {len(rows)} answers for {count} questions (LLaMA-Factory left rows out); check "
                        "the training file for rows without a question or an answer")
    return [(r["predict"], count_tokens is not None and at_token_limit(r["predict"], spec, count_tokens))
            for r in rows]


def write_pairs(rows: list[dict], report: dict, output: Path, report_dir: Path, register: bool, force: bool
                ) -> None:
    """The pairs file, its report and its registry entry, as one unit, after every check."""
    if not rows:
        raise UserError(f"no pairs: every answer passed zhouyi's checks or equalled its reference ({report['no_pair']})"
                        "; nothing written. Ask more questions (--max-samples) or the base model (--model base)")
    output = Path(output).absolute()
    registry = output.parent / DATASET_INFO
    with_system = any("system" in r for r in rows)
    columns = RANKING_COLUMNS.model_copy(update={"system": "system"} if with_system else {})
    entry = {output.stem: dataset_entry(DatasetEntry.model_construct(name=output.stem, file_name=output.name,
                                                                     ranking=True, columns=columns))}
    writes = {output: json.dumps(rows, ensure_ascii=False, indent=1) + "\n"}
    refuse_foreign(writes, force)
    writes |= {report_dir / "report.json": json.dumps(report, ensure_ascii=False, indent=2) + "\n",
               report_dir / "report.md": report_markdown(report, output)}
    with locked(output.parent):
        if register:
            read_registry(registry)
            merge_entries(registry, entry, force, dry_run=True)
        commit(writes)
        if register:
            merge_entries(registry, entry, force)


def report_markdown(report: dict, output: Path) -> str:
    lines = [f"# Preference pairs: {output.name}", "",
             f"{report['pairs']} pairs from {report['questions']} training questions answered by the "
             f"{' and '.join(report['models'])} model{'s' if len(report['models']) > 1 else ''}.", "",
             "| rejected because | answers |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["rejected_because"].items()]
    lines += ["", "| no pair | answers |", "|---|---|"] + [f"| {k} | {v} |" for k, v in report["no_pair"].items()]
    lines += ["", "## Examples", ""]
    for ex in report["examples"]:
        lines += [f"**{ex['model']}**: {ex['question']}", "", f"rejected ({', '.join(ex['because'])}): "
                  + ex["rejected"].replace("\n", " / "), ""]
    return "\n".join(lines) + "\n"
