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
import sys
import time
from pathlib import Path

from common import (
    HELDOUT,
    MODEL,
    PAIR_COLUMNS,
    REPO,
    WITH_SYSTEM,
    latest_comparison,
    pick_rows,
    publish,
    relabel,
    require_scraped,
    train,
    write_rows,
    zhouyi,
)

from zhouyi import layout

PERSONA_NAME = "周文王"
PERSONA_ABOUT = "精通《周易》，善解梦中吉凶"


def spec(name: str, datasets: list[dict], train: dict) -> dict:
    return {"base": "gemma-cpu", "name": name, "data": {"datasets": [*datasets, HELDOUT]}, "train": train}


def prepare(work: Path, args) -> None:
    """The proof's rows, the same rows with identity rows, and the converted model."""
    from zhouyi.data.clean import CleanOptions, with_identity_rows
    from zhouyi.load import load

    clean_rows, _, held_out = pick_rows(args.train_rows, args.eval_rows, args.seed)
    settings = load("gemma-cpu").spec.data.clean.model_copy(update={
        "identity_ratio": args.identity_ratio, "persona_name": PERSONA_NAME, "persona_description": PERSONA_ABOUT,
        "seed": args.seed})
    with_identity = list(clean_rows)
    with_identity_rows(with_identity, CleanOptions(settings))
    write_rows(work, {"clean.json": clean_rows, "identity.json": with_identity, "heldout.json": held_out})
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
    require_scraped()
    started = time.monotonic()
    work = (args.work or REPO / "runs" / f"persona-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    if not (work / "data" / "heldout.json").is_file():
        prepare(work, args)
    sft_train = {"max_steps": args.steps, "save_steps": 10 * args.steps}
    sft = train(work, spec("sft", [{"name": "clean", "file_name": "clean.json", "columns": WITH_SYSTEM}], sft_train))
    identity = train(work, spec("identity", [{"name": "identity", "file_name": "identity.json",
                                              "columns": WITH_SYSTEM}], sft_train))
    if not (work / "data" / "pairs.json").is_file():
        zhouyi("data", "pairs", "--run", str(sft.relative_to(work)), "--max-samples", str(args.pair_questions),
               "-o", "data/pairs.json", cwd=work)
    dpo = train(work, spec("dpo", [{"name": "pairs", "file_name": "pairs.json", "ranking": True,
                                    "columns": PAIR_COLUMNS}],
                           {"stage": "dpo", "pref_beta": 0.1, "learning_rate": 1.0e-4, "max_steps": args.dpo_steps,
                            "save_steps": 10 * args.dpo_steps}),
                "--from", str(sft.relative_to(work)))
    runs = {sft.name: "SFT", identity.name: "SFT + identity", dpo.name: "SFT + DPO"}
    zhouyi("eval", *[a for run in runs for a in ("--run", f"runs/{run}")], "--max-samples", str(args.eval_rows),
           "--without-system", cwd=work)
    table = relabel(latest_comparison(work), runs)
    pairs = json.loads((sft / layout.PAIRS_DIR / layout.REPORT_JSON).read_text(encoding="utf-8"))
    date = time.strftime("%Y-%m-%d")
    result = {"date": date, "machine": f"{os.cpu_count()} CPU cores",
              "minutes": round((time.monotonic() - started) / 60, 1), "resumed": bool(args.work),
              "model": MODEL,
              "train_rows": args.train_rows, "eval_rows": args.eval_rows, "steps": args.steps,
              "dpo_steps": args.dpo_steps, "identity_ratio": args.identity_ratio, "seed": args.seed,
              "pairs": {k: pairs[k] for k in ("questions", "pairs", "rejected_because", "no_pair")}, "table": table}
    from zhouyi.evaluation.reports import comparison_markdown

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
    publish(work, "persona", date)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
