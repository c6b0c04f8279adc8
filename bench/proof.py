"""`make proof`: does cleaning make a better 周公解梦 model than the tutorial's data? Measured on a real pretrained
model (gemma-3-270m, CPU), three ways on the same held-out dreams, each asked with and without the system prompt:

- base: no training;
- tutorial-style: the scraped text as the tutorial's rows carried it: the dream site's intro and advert around it,
  the persona as `instruction`, nothing cleaned;
- zhouyi-clean: the same dreams through zhouyi's cleaning (`zhouyi.data.clean`) with the `gemma-cpu` preset's
  settings (each answer cut to its first paragraph), persona as `system`.

The references are the held-out dreams' whole cleaned answers, for all three; the held-out dreams have keywords
that neither training set has. Same model, LoRA settings, step budget and seeds for both tunings; with `--seeds N`
each arm is trained with N seeds and shown as one column (mean over seeds, spread between them), compared per
question (each question's scores averaged over the seeds) with paired bootstrap intervals.

Everything runs through the `zhouyi` CLI in a project folder of its own (runs/proof-<time>/). It resumes: run it
again with `--work` that folder and whatever is trained or evaluated there already is kept (`zhouyi eval --reuse`).
The report (proof.md, proof.json, proof.png) lands there and in bench/results/.

    python bench/proof.py                      # 100 held-out dreams, one seed (make proof)
    python bench/proof.py --seeds 3            # three seeds per arm (make proof SEEDS=3)
    python bench/proof.py --quick              # 10 held-out dreams: for trying things
    python bench/proof.py --work runs/proof-<time>   # go on where it stopped
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
    latest_comparison,
    pick_rows,
    publish,
    relabel,
    require_scraped,
    train,
    write_rows,
    zhouyi,
)

ARMS = {"tutorial-style": ("tutorial", "tutorial.json", COLUMNS), "zhouyi-clean": ("clean", "clean.json", WITH_SYSTEM)}


def spec(name: str, train_file: str, columns: dict, steps: int, seed: int) -> dict:
    return {"base": "gemma-cpu", "name": name,
            "data": {"datasets": [{"name": name.split("-s")[0], "file_name": train_file, "columns": columns}, HELDOUT]},
            "train": {"max_steps": steps, "save_steps": 10 * steps, "seed": seed}}



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


def verdict_line(table: dict) -> str:
    """The clean-vs-tutorial ROUGE-L claim, worded from its interval."""
    found = next((c for c in table.get("comparisons", []) if c["a"].startswith("tutorial-style")
                  and c["b"].startswith("zhouyi-clean") and "metrics" in c), None)
    if found is None:
        return "No interval for zhouyi-clean against tutorial-style (too few questions)."
    r = found["metrics"]["rouge-l"]
    words = {"better": "better: the interval excludes no difference",
             "worse": "worse: the interval excludes no difference",
             "no clear difference": "not shown to differ: the interval includes no difference"}[r["verdict"]]
    return (f"zhouyi-clean against tutorial-style, ROUGE-L: {r['diff']:+.1f} points, 95% interval "
            f"[{r['low']:+.1f}, {r['high']:+.1f}] over {found['questions']} held-out dreams: {words}.")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-rows", type=int, default=240)
    parser.add_argument("--eval-rows", type=int, default=100)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per arm (0, 1, ...)")
    parser.add_argument("--quick", action="store_true", help="10 held-out dreams: today's quick size")
    parser.add_argument("--work", type=Path, help="go on with an earlier runs/proof-<time> folder")
    args = parser.parse_args()
    require_scraped()
    if args.quick:
        args.eval_rows = 10
    started = time.monotonic()
    work = (args.work or REPO / "runs" / f"proof-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    if not (work / "data" / "heldout.json").is_file():
        clean_rows, tutorial_rows, held_out = pick_rows(args.train_rows, args.eval_rows, 0)
        write_rows(work, {"clean.json": clean_rows, "tutorial.json": tutorial_rows, "heldout.json": held_out})
        zhouyi("download", "gemma-cpu", cwd=work)
    clean_rows, held_out = (json.loads((work / "data" / f).read_text("utf-8")) for f in ("clean.json", "heldout.json"))
    runs: dict[str, str] = {}  # run folder -> arm
    timings: dict[str, float] = {}
    for seed in range(args.seeds):
        for arm, (name, file, columns) in ARMS.items():
            began = time.monotonic()
            data = spec(f"{name}-s{seed}", file, columns, args.steps, seed)
            runs[train(work, data).name] = arm
            timings[f"train {name}-s{seed}"] = round(time.monotonic() - began)
    steps = yaml.safe_load((work / "clean-s0.yaml").read_text("utf-8"))["train"]["max_steps"]  # as trained
    # one `zhouyi eval` for every run: the base asked once, then each tuned model, with and without the system
    # prompt, and the forgetting check; --reuse keeps what an interrupted proof evaluated already
    began = time.monotonic()
    zhouyi("eval", *[a for run in runs for a in ("--run", f"runs/{run}")], "--max-samples", str(len(held_out)),
           "--without-system", "--reuse", cwd=work)
    timings["eval"] = round(time.monotonic() - began)
    table = relabel(latest_comparison(work), runs)
    date = time.strftime("%Y-%m-%d")
    result = {"date": date, "machine": f"{os.cpu_count()} CPU cores",
              "minutes": round((time.monotonic() - started) / 60, 1), "resumed": bool(args.work), "model": MODEL,
              "train_rows": len(clean_rows), "eval_rows": len(held_out), "steps": steps, "seeds": args.seeds,
              "seconds": timings, "verdict": verdict_line(table), "table": table}
    arms = [c for c in table["metrics"] if c.split(" (")[0] in ARMS]
    chart({m: table["metrics"][m] | table["checks"][m] for m in ("base", *arms)}, work / "proof.png")
    from zhouyi.reports import comparison_markdown

    md = (f"# Clean data vs the tutorial's data on a real model ({date}, {result['machine']})\n\n"
          f"{MODEL}; LoRA r8 on all linear layers, {steps} steps of 4 rows, lr 3e-4, cutoff 256, "
          f"seeds {', '.join(str(s) for s in range(args.seeds))}; {len(clean_rows)} training dreams (zhouyi-clean: "
          f"each answer's first paragraph, the gemma-cpu preset's `answer_paragraphs: 1`), {len(held_out)} held-out "
          f"dreams (keywords in neither training set; references: their whole cleaned answers), greedy; "
          f"{result['minutes']} minutes{' (resumed: earlier work not counted)' if args.work else ''}.\n\n"
          f"**{result['verdict']}**\n\n![chart](proof-{date}.png)\n\n"
          + comparison_markdown(table).split("\n", 2)[2])
    (work / "proof.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (work / "proof.md").write_text(md, encoding="utf-8")
    publish(work, "proof", date, (".json", ".md", ".png"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
