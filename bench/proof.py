"""`make proof`: does cleaning make a better 周公解梦 model than the tutorial's data? Measured on a real pretrained
model (gemma-3-270m, CPU), three ways on the same held-out dreams:

- base: no training;
- tutorial-style: the scraped text as the tutorial's rows carried it: the dream site's intro and advert around it,
  the persona as `instruction`, nothing cleaned;
- zhouyi-clean: the same dreams through zhouyi's cleaning (`zhouyi.data.clean`) with the `gemma-cpu` preset's
  settings (each answer cut to its first paragraph), persona as `system`.

The references are the held-out dreams' whole cleaned answers, for all three.

Same model, LoRA settings, step budget and seed for both tunings (the `gemma-cpu` preset). The held-out dreams have
keywords that neither training set has. Everything runs through the `zhouyi` CLI in a project folder of its own
(runs/proof-<time>/); the report (proof.md, proof.json, proof.png) lands there and in bench/results/.

    python bench/proof.py [--train-rows 240] [--eval-rows 10] [--steps 120]
    python bench/proof.py --rescore runs/proof-<time>   # ask and score the trained runs again
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml
from common import (
    COLUMNS,
    HELDOUT,
    MODEL,
    REPO,
    WITH_SYSTEM,
    finished_run,
    latest_comparison,
    pick_rows,
    publish,
    relabel,
    require_scraped,
    write_rows,
    write_spec,
    zhouyi,
)


def train_both(work: Path, specs: dict[str, dict], args) -> None:
    """The proof's data, the converted model and both tunings, in `work`."""
    clean_rows, tutorial_rows, held_out = pick_rows(args.train_rows, args.eval_rows, args.seed)
    write_rows(work, {"clean.json": clean_rows, "tutorial.json": tutorial_rows, "heldout.json": held_out})
    zhouyi("download", "gemma-cpu", cwd=work)
    for data in specs.values():
        zhouyi("train", write_spec(work, data), cwd=work)


def spec(name: str, train_file: str, columns: dict, steps: int) -> dict:
    return {"base": "gemma-cpu", "name": name,
            "data": {"datasets": [
                {"name": name, "file_name": train_file, "columns": columns},
                HELDOUT]},
            "train": {"max_steps": steps, "save_steps": 10 * steps}}


def chart(rows: dict[str, dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = [("boilerplate", "site boilerplate"), ("in_voice", "in the persona's voice"),
                ("loops", "repeating itself"), ("rouge-l", "ROUGE-L / 100")]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    width = 0.8 / len(rows)
    for i, (model, row) in enumerate(rows.items()):
        values = [row[key] / (100 if key == "rouge-l" else 1) for key, _ in measures]
        ax.bar([m + i * width for m in range(len(measures))], values, width, label=model)
    ax.set_xticks([m + width * (len(rows) - 1) / 2 for m in range(len(measures))], [label for _, label in measures])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of answers")
    ax.legend()
    ax.set_title("gemma-3-270m on held-out dreams: base, tutorial-style data, zhouyi-clean data")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-rows", type=int, default=240)
    parser.add_argument("--eval-rows", type=int, default=10)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rescore", metavar="WORK", type=Path,
                        help="ask and score again the runs an earlier proof trained in WORK (runs/proof-<time>)")
    args = parser.parse_args()
    require_scraped()
    started = time.monotonic()
    specs = {"tutorial-style": spec("tutorial", "tutorial.json", COLUMNS, args.steps),
             "zhouyi-clean": spec("clean", "clean.json", WITH_SYSTEM, args.steps)}
    if args.rescore:
        work = args.rescore.resolve()
    else:
        work = REPO / "runs" / f"proof-{time.strftime('%Y%m%d-%H%M%S')}"
        train_both(work, specs, args)
    clean_rows, held_out = (json.loads((work / "data" / f).read_text("utf-8")) for f in ("clean.json", "heldout.json"))
    args.steps = yaml.safe_load((work / "clean.yaml").read_text("utf-8"))["train"]["max_steps"]  # as trained
    runs = {finished_run(work, data["name"]).name: model for model, data in specs.items()}
    # one `zhouyi eval` for both runs: the base answers once, then each tuned model, with and without the persona's
    # system prompt, in one table
    zhouyi("eval", *[a for run in runs for a in ("--run", f"runs/{run}")], "--max-samples", str(args.eval_rows),
           "--without-system", cwd=work)
    table = relabel(latest_comparison(work), runs)
    date = time.strftime("%Y-%m-%d")
    result = {"date": date, "machine": f"{os.cpu_count()} CPU cores",
              "minutes": round((time.monotonic() - started) / 60, 1), "rescored": bool(args.rescore),
              "model": MODEL,
              "train_rows": len(clean_rows), "eval_rows": len(held_out), "steps": args.steps, "seed": args.seed,
              "table": table}
    chart({m: table["metrics"][m] | table["checks"][m] for m in ("base", *specs)}, work / "proof.png")
    from zhouyi.reports import comparison_markdown

    md = (f"# Clean data vs the tutorial's data on a real model ({date}, {result['machine']})\n\n"
          f"{result['model']}; LoRA r8 on all linear layers, {args.steps} steps of 4 rows, lr 3e-4, cutoff 256, "
          f"seed {args.seed}; {len(clean_rows)} training dreams (zhouyi-clean: each answer's first paragraph, the "
          f"gemma-cpu preset's `answer_paragraphs: 1`), {len(held_out)} held-out dreams (keywords in neither training "
          f"set; references: their whole cleaned answers); "
          + (f"asked and scored again (--rescore) in {result['minutes']} minutes, training not counted"
             if args.rescore else f"{result['minutes']} minutes in all") + f".\n\n![chart](proof-{date}.png)\n\n"
          + comparison_markdown(table).split("\n", 2)[2])
    (work / "proof.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (work / "proof.md").write_text(md, encoding="utf-8")
    publish(work, "proof", date, (".json", ".md", ".png"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
