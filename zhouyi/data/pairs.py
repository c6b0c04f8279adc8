"""`zhouyi data pairs`: preference pairs with no labelling. The models of a finished run (the base, the tuned model,
or both) answer the run's own training questions through LLaMA-Factory's prediction (greedy); every answer that
zhouyi's checks flag (zhouyi.evaluation.answers) becomes `rejected`, against the training answer as `chosen`.

An answer is flagged for a problem only where the reference has not the same problem (an answer without the
diviner's words teaches nothing against a reference without them either). Answers that pass every check give no
pair; an answer equal to its reference is dropped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from zhouyi import layout
from zhouyi.errors import UserError
from zhouyi.evaluation import answers as answering
from zhouyi.evaluation.answers import Question, check, split_questions
from zhouyi.evaluation.checks import BY_NAME, CHECKS
from zhouyi.files import commit, locked, refuse_foreign, sole_writer
from zhouyi.layout import DATASET_INFO
from zhouyi.registry import merge_entries, read_registry
from zhouyi.render import RenderContext, dataset_entry
from zhouyi.runs import check_run, recorded_spec
from zhouyi.spec import RANKING_COLUMNS, DatasetEntry, JobSpec

# a failed check -> the reason a pair gives; empty ends the list, and in_voice says whether it speaks as an assistant
REASONS = {check.name: check.problem for check in CHECKS if check.name not in ("empty", "in_voice")}


def problems(answer: str, spec: JobSpec, at_limit: bool) -> list[str]:
    """What zhouyi's checks find wrong with one answer (`at_limit`: it used every new token without ending)."""
    flags = check(answer, spec) | {"at_token_limit": at_limit}
    if flags["empty"]:
        return ["empty"]
    found = ["speaks as an assistant"] if flags["speaks_as_assistant"] else [] if flags["in_voice"] else [
        "not in the persona's voice"]
    return found + [reason for name, reason in REASONS.items() if BY_NAME[name].fails(flags[name])]


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


def answer(spec: JobSpec, run_dir: Path, which: str, count: int, max_samples: int, without_system: bool,
           count_tokens) -> list[tuple[str, bool]]:
    """`which` model's greedy answers to the run's `count` training questions, by LLaMA-Factory, each with whether it
    ran into the token limit."""
    names = ",".join(spec.data.names("train"))
    args = [f"eval_dataset={names}", f"max_samples={max_samples}", *(["default_system=null"] if without_system else [])]
    print(f"{which} model: answering {max_samples} training questions per dataset", flush=True)
    out = layout.answers_dir(run_dir, which, layout.PAIRS_DIR)
    rows = answering.predict(spec, run_dir, which, out, args)
    if len(rows) != count:
        raise UserError(f"{out}: {len(rows)} answers for {count} questions (LLaMA-Factory left rows out); check "
                        "the training file for rows without a question or an answer")
    return [(r["predict"], count_tokens is not None and answering.at_token_limit(r["predict"], spec, count_tokens))
            for r in rows]


def make_pairs(run: Path, base_dir: Path, output: Path | None, models: tuple[str, ...], max_samples: int,
               without_system: bool, register: bool, force: bool) -> tuple[Path, dict]:
    """`zhouyi data pairs`, whole: every check before the first question is asked, the answers, then the pairs, their
    report and their registry entry written as one unit; (the pairs file, the report)."""
    run = check_run(run)
    with sole_writer(run, "data pairs"):
        return _make_pairs(run, base_dir, output, models, max_samples, without_system, register, force)


def _make_pairs(run: Path, base_dir: Path, output: Path | None, models: tuple[str, ...], max_samples: int,
                without_system: bool, register: bool, force: bool) -> tuple[Path, dict]:
    spec = recorded_spec(run)
    if max_samples < 1:
        raise UserError(f"--max-samples {max_samples}: ask at least one question")
    if without_system:
        answering.require_no_system_column(spec, "train")
    if spec.train.stage != "sft":
        raise UserError(f"--run {run}: it trained stage {spec.train.stage}; pairs come from an SFT run's questions")
    if not (run / layout.PREDICT_YAML).is_file():
        raise UserError(f"--run {run}: it has no {layout.PREDICT_YAML} (its spec has no eval split, or an older zhouyi "
                        "made it); add a dataset with split: eval and train again")
    questions = training_questions(spec, base_dir, max_samples)
    first = next(d for d in spec.data.datasets if d.split == "train")
    output = Path(output or Path(spec.data.dataset_dir) / f"{Path(first.file_name).stem}_pairs.json")
    if output.resolve() in [(Path(spec.data.dataset_dir) / d.file_name).resolve() for d in spec.data.datasets
                            if d.file_name]:
        raise UserError(f"-o {output}: that is one of the run's datasets; write the pairs to another file")
    refuse_foreign([output], force)  # before minutes of answering
    count_tokens = answering.token_counter(run)
    answers = {which: answer(spec, run, which, len(questions), max_samples, without_system, count_tokens)
               for which in models}
    rows, report = build_pairs(questions, answers, spec)
    report |= {"run": str(run), "without_system": without_system, "output": str(output.absolute())}
    write_pairs(rows, report, output, run / layout.PAIRS_DIR, register, force)
    return output, report


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
    writes |= {report_dir / layout.REPORT_JSON: json.dumps(report, ensure_ascii=False, indent=2) + "\n",
               report_dir / layout.REPORT_MD: report_markdown(report, output)}
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
