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

With `--draws K` the whole experiment is repeated on K draws of the data (bench/draws.py: each draw trains on other
dreams and is asked other held-out dreams); each draw gets its own paired intervals, and the verdict comes from a
cluster bootstrap across draws (stats.compare_across_draws), which carries the draw-to-draw spread that one draw's
interval cannot (docs/gemma-cpu.md). Each draw's training data is described beside its scores (bench/draws.py).

Everything runs through the `zhouyi` CLI in a project folder of its own (runs/proof-<time>/). It resumes: run it
again with `--work` that folder and whatever is trained or evaluated there already is kept (`zhouyi eval --reuse`);
a folder made with other settings is refused, naming the difference. The report (proof.md, proof.json with every
draw's per-question scores, proof.png) lands there and in bench/results/.

    python bench/proof.py                      # one draw, 100 held-out dreams, one seed (make proof)
    python bench/proof.py --draws 3            # three draws of the data: the README's claims (make proof DRAWS=3)
    python bench/proof.py --seeds 3            # three training seeds per arm (make proof SEEDS=3)
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

import draws
from common import (
    COLUMNS,
    MODEL,
    REPO,
    SCRAPED,
    WITH_SYSTEM,
    clean_row,
    latest_comparison,
    publish,
    reference_row,
    relabel,
    require_scraped,
    train,
    tutorial_row,
    write_rows,
    zhouyi,
)

ARMS = {"tutorial-style": ("tutorial", "tutorial.json", COLUMNS), "zhouyi-clean": ("clean", "clean.json", WITH_SYSTEM)}


# what a resumed work folder must have been made with (seeds and draws may grow: their runs are added)
SETTINGS = ("train_rows", "eval_rows", "steps", "without_system")
# the rows of the headline table: (key, label, higher is better, a share of answers)
MEASURES = [("rouge-l", "ROUGE-L", True, False), ("bleu-4", "BLEU-4", True, False),
            ("boilerplate", "answers with site boilerplate", False, True),
            ("in_voice", "answers in the persona's voice", True, True),
            ("loops", "answers repeating themselves", False, True),
            ("at_token_limit", "answers cut at the token limit (never ended)", False, True)]


def spec(name: str, train_file: str, columns: dict, steps: int, seed: int, draw: int) -> dict:
    heldout = {"name": f"heldout-d{draw}", "file_name": f"d{draw}-heldout.json", "columns": COLUMNS, "split": "eval"}
    return {"base": "gemma-cpu", "name": name,
            "data": {"datasets": [{"name": name.rsplit("-s", 1)[0], "file_name": train_file, "columns": columns},
                                  heldout]},
            "train": {"max_steps": steps, "save_steps": 10 * steps, "seed": seed}}



CHART = [("boilerplate", "site boilerplate"), ("in_voice", "in the persona's voice"), ("loops", "repeating itself"),
         ("at_token_limit", "never ended"), ("rouge-l", "ROUGE-L / 100")]


def arm_intervals(results: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """Each arm's 95% interval per charted measure: Wilson over every draw's answers for a share of answers, a
    bootstrap over draws and questions (stats.cluster_bootstrap; over questions with one draw) for ROUGE-L."""
    from zhouyi.evaluation import stats

    out: dict[str, dict[str, tuple[float, float]]] = {}
    for arm in ("base", "tutorial-style", "zhouyi-clean"):
        for key, _ in CHART:
            groups = [[float(v) for v in r["table"]["per_question"][
                "base" if arm == "base" else column(r["table"], arm)][key]] for r in results]
            if key == "rouge-l":
                found = stats.cluster_bootstrap(groups) if len(groups) > 1 else \
                    stats.paired_bootstrap([0.0] * len(groups[0]), groups[0])
            else:
                found = stats.wilson(round(sum(map(sum, groups))), sum(map(len, groups)))
            out.setdefault(arm, {})[key] = (found.low, found.high)
    return out


def chart(means: dict[str, dict], intervals: dict[str, dict], png: Path) -> None:
    """Bars of each arm's means with their 95% intervals as error bars; the legend below the axes, off the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.6), dpi=100)
    width = 0.8 / len(means)
    for i, (model, row) in enumerate(means.items()):
        scale = [100 if key == "rouge-l" else 1 for key, _ in CHART]
        values = [row[key] / k for (key, _), k in zip(CHART, scale, strict=True)]
        lows = [v - intervals[model][key][0] / k for v, (key, _), k in zip(values, CHART, scale, strict=True)]
        highs = [intervals[model][key][1] / k - v for v, (key, _), k in zip(values, CHART, scale, strict=True)]
        ax.bar([m + i * width for m in range(len(CHART))], values, width, label=model,
               yerr=[[max(0.0, x) for x in lows], [max(0.0, x) for x in highs]], capsize=3)
    ax.set_xticks([m + width * (len(means) - 1) / 2 for m in range(len(CHART))], [label for _, label in CHART])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of answers (ROUGE-L / 100)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(means), frameon=False)
    ax.set_title("gemma-3-270m on held-out dreams, with 95% intervals")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


WORDS = {"better": "better: the interval excludes no difference",
         "worse": "worse: the interval excludes no difference",
         "no clear difference": "not shown to differ: the interval includes no difference"}


def verdict_line(result: dict) -> str:
    """The clean-vs-tutorial ROUGE-L claim, worded from its interval (across draws when there are several)."""
    across = result["across"].get("zhouyi-clean vs tutorial-style", {}).get("rouge-l")
    if across:
        held = sum(d["clean_vs_tutorial"]["rouge-l"]["verdict"] == "better" for d in result["draws"])
        return (f"zhouyi-clean against tutorial-style, ROUGE-L: {across['diff']:+.1f} points, 95% interval across "
                f"{across['draws']} draws [{across['low']:+.1f}, {across['high']:+.1f}]: {WORDS[across['verdict']]}"
                f" (better on {held} of {across['draws']} draws by their own intervals).")
    one = result["draws"][0].get("clean_vs_tutorial")
    if not one:
        return "No interval for zhouyi-clean against tutorial-style (too few questions)."
    r = one["rouge-l"]
    return (f"zhouyi-clean against tutorial-style, ROUGE-L: {r['diff']:+.1f} points, 95% interval "
            f"[{r['low']:+.1f}, {r['high']:+.1f}] over {result['eval_rows']} held-out dreams of one draw: "
            f"{WORDS[r['verdict']]}.")


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return int(text)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=positive, default=240)
    parser.add_argument("--eval-rows", type=positive, default=100)
    parser.add_argument("--steps", type=positive, default=60, help="training steps of 4 rows (60: one epoch of 240)")
    parser.add_argument("--seeds", type=positive, default=1, help="training seeds per arm (0, 1, ...)")
    parser.add_argument("--draws", type=positive, default=1, help="draws of the data (data seeds 0, 1, ...)")
    parser.add_argument("--without-system", action="store_true",
                        help="also ask every model without the persona's system prompt (doubles the asking)")
    parser.add_argument("--quick", action="store_true", help="10 held-out dreams: today's quick size")
    parser.add_argument("--work", type=Path, help="go on with an earlier runs/proof-<time> folder")
    args = parser.parse_args()
    if args.quick:
        args.eval_rows = 10
    return args


def check_settings(work: Path, args: argparse.Namespace) -> None:
    """A resumed folder must have been made with the same settings; a new one records them."""
    path = work / "proof-settings.json"
    mine = {k: getattr(args, k) for k in SETTINGS}
    if path.is_file():
        theirs = json.loads(path.read_text("utf-8"))
        differ = [f"{k} {theirs.get(k)} there, {mine[k]} asked" for k in SETTINGS if theirs.get(k) != mine[k]]
        if differ:
            sys.exit(f"{work} was made with other settings ({'; '.join(differ)}): resume it with its own settings, "
                     "or start a new work folder")
        return
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=1) + "\n", encoding="utf-8")


def write_draws(work: Path, args: argparse.Namespace) -> None:
    """Each draw's training and held-out files and its training data's statistics, once (a resumed folder has
    them); refused before anything is written when the data cannot give that many draws."""
    missing = [d for d in range(args.draws) if not (work / "data" / f"d{d}-stats.json").is_file()]
    if not missing:
        return
    from zhouyi.data.readers import read_file

    dreams = draws.usable_dreams(read_file(SCRAPED).records)
    largest = draws.max_draws(len(dreams), args.train_rows, args.eval_rows)
    if args.draws > largest:
        sys.exit(f"--draws {args.draws}: {len(dreams)} usable dreams allow at most {largest} draws of "
                 f"{args.train_rows} training and {args.eval_rows} held-out dreams without overlap")
    for d in missing:
        trained, held_out = draws.pick(dreams, args.train_rows, args.eval_rows, d)
        clean_rows = [clean_row(x.record, d) for x in trained]
        write_rows(work, {f"d{d}-clean.json": clean_rows,
                          f"d{d}-tutorial.json": [tutorial_row(x.record) for x in trained],
                          f"d{d}-heldout.json": [reference_row(x.record, d) for x in held_out]})
        stats = draws.training_stats(trained, clean_rows, held_out)
        (work / "data" / f"d{d}-stats.json").write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")


def column(table: dict, arm: str) -> str:
    """The table's column of an arm asked with the system prompt (`zhouyi-clean (3 seeds)` for `zhouyi-clean`)."""
    return next(c for c in table["metrics"] if c.split(" (")[0] == arm)


def run_draw(work: Path, d: int, args: argparse.Namespace, timings: dict) -> dict:
    """Train both arms of draw d with every seed, ask them and the base in one `zhouyi eval`; the draw's result."""
    runs: dict[str, str] = {}  # run folder -> arm
    for seed in range(args.seeds):
        for arm, (name, file, columns) in ARMS.items():
            began = time.monotonic()
            data = spec(f"{name}-d{d}-s{seed}", f"d{d}-{file}", columns, args.steps, seed, d)
            runs[train(work, data).name] = arm
            timings[f"train {name}-d{d}-s{seed}"] = round(time.monotonic() - began)
    began = time.monotonic()
    zhouyi("eval", *[a for run in runs for a in ("--run", f"runs/{run}")], "--max-samples", str(args.eval_rows),
           *(["--without-system"] if args.without_system else []), "--reuse", cwd=work)
    timings[f"eval d{d}"] = round(time.monotonic() - began)
    table = relabel(latest_comparison(work), runs)
    tutorial, clean = column(table, "tutorial-style"), column(table, "zhouyi-clean")
    found = next((c for c in table.get("comparisons", []) if (c["a"], c["b"]) == (tutorial, clean)), {})
    both = found.get("metrics", {}) | found.get("shares", {})
    return {"draw": d, "training": json.loads((work / "data" / f"d{d}-stats.json").read_text("utf-8")),
            "clean_vs_tutorial": {key: both[key] for key, *_ in MEASURES if key in both}, "table": table}


def across(results: list[dict]) -> dict:
    """Each arm against the base and clean against tutorial, over all draws, with cluster-bootstrap intervals."""
    from zhouyi.evaluation import stats

    def scores(col_of, key):
        return [[float(v) for v in r["table"]["per_question"][col_of(r["table"])][key]] for r in results]

    arms = {"base": lambda t: "base", "tutorial-style": lambda t: column(t, "tutorial-style"),
            "zhouyi-clean": lambda t: column(t, "zhouyi-clean")}
    out = {}
    for a, b in (("base", "tutorial-style"), ("base", "zhouyi-clean"), ("tutorial-style", "zhouyi-clean")):
        out[f"{b} vs {a}"] = {key: stats.compare_across_draws(scores(arms[a], key), scores(arms[b], key), better)
                              for key, _, better, _ in MEASURES}
    return out


def arm_means(results: list[dict]) -> dict[str, dict[str, float]]:
    """Each arm's mean over draws of its per-question means, measure by measure."""
    from zhouyi.evaluation import stats

    out: dict[str, dict[str, float]] = {}
    for arm in ("base", "tutorial-style", "zhouyi-clean"):
        for key, *_ in MEASURES:
            per_draw = [stats.mean([float(v) for v in r["table"]["per_question"][
                "base" if arm == "base" else column(r["table"], arm)][key]]) for r in results]
            out.setdefault(arm, {})[key] = stats.mean(per_draw)
    return out


def cell(value: float, share: bool) -> str:
    return f"{100 * value:.0f}%" if share else f"{value:.1f}"


def interval_cell(c: dict, share: bool) -> str:
    if share:
        return f"{100 * c['diff']:+.0f} pts [{100 * c['low']:+.0f}, {100 * c['high']:+.0f}], {c['verdict']}"
    return f"{c['diff']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}], {c['verdict']}"


def markdown(result: dict, png: str) -> str:
    """The report: the headline table (across draws when there are several, each draw's own result beside it), each
    draw's training data beside its scores, then each draw's full comparison."""
    draws_n, means = len(result["draws"]), result["means"]
    lines = [f"# Clean data vs the tutorial's data on a real model ({result['date']}, {result['machine']})", "",
             f"{MODEL}; LoRA r8 on all linear layers, {result['steps']} steps of 4 rows, lr 3e-4, cutoff 256, "
             f"training seeds {', '.join(str(s) for s in range(result['seeds']))}; {draws_n} draw"
             f"{'s' if draws_n > 1 else ''} of the data, each {result['train_rows']} training dreams (zhouyi-clean: "
             f"each answer's first paragraph, the gemma-cpu preset's `answer_paragraphs: 1`) and {result['eval_rows']} "
             "held-out dreams (keywords in neither training set; other held-out dreams in every draw; references: "
             "their whole cleaned answers), greedy; "
             f"{result['minutes']} minutes{' (resumed: earlier work not counted)' if result['resumed'] else ''}.", "",
             f"**{result['verdict']}**", "", f"![chart]({png})", ""]
    pair = result["across"].get("zhouyi-clean vs tutorial-style") if draws_n > 1 else None
    head = "clean − tutorial, 95% interval across draws" if pair else "clean − tutorial (95% interval)"
    lines += [f"| | base | tutorial-style | zhouyi-clean | {head} | "
              + " | ".join(f"draw {r['draw']}: clean − tutorial" for r in result["draws"]) + " |",
              "|---|---:|---:|---:|---|" + "---|" * draws_n]
    for key, label, _, share in MEASURES:
        own = [interval_cell(r["clean_vs_tutorial"][key], share) if key in r["clean_vs_tutorial"] else "–"
               for r in result["draws"]]
        headline = interval_cell(pair[key], share) if pair else own[0]
        lines.append(f"| {label} | " + " | ".join(cell(means[a][key], share)
                                                  for a in ("base", "tutorial-style", "zhouyi-clean"))
                     + f" | **{headline}** | " + " | ".join(own) + " |")
    if pair:
        lines += ["", f"Across draws: a cluster bootstrap (draws resampled, then questions within each), "
                  f"{draws_n} draws; with so few draws the interval is coarse and wide, and says so. Each draw's own "
                  "column: paired over its questions (bootstrap for metrics, McNemar's exact test for shares)."]
    lines += ["", "## Each draw's training data beside its scores", "",
              "| draw | answer chars (clean) | page chars | paragraphs a page | share of the page kept | list-style "
              "pages | held-out keywords with a near neighbour in training | ROUGE-L tutorial | ROUGE-L clean |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["draws"]:
        t, c = r["training"], r["clean_vs_tutorial"].get("rouge-l", {})
        lines.append(f"| {r['draw']} | {t['answer_chars']:.0f} | {t['page_chars']:.0f} | {t['page_paragraphs']:.1f} | "
                     f"{100 * t['share_of_page_kept']:.0f}% | {100 * t['list_style']:.0f}% | "
                     f"{t['heldout_with_neighbour']} of {t['heldout']} | {c.get('a', 0):.1f} | {c.get('b', 0):.1f} |")
    from zhouyi.evaluation.reports import comparison_markdown

    for r in result["draws"]:
        lines += ["", f"## Draw {r['draw']}", "", comparison_markdown(r["table"]).split("\n", 2)[2]]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse()
    require_scraped()
    started = time.monotonic()
    work = (args.work or REPO / "runs" / f"proof-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    check_settings(work, args)
    write_draws(work, args)
    if not (work / ".zhouyi").is_dir():
        zhouyi("download", "gemma-cpu", cwd=work)
    timings: dict[str, float] = {}
    results = [run_draw(work, d, args, timings) for d in range(args.draws)]
    date = time.strftime("%Y-%m-%d")
    result = {"date": date, "machine": f"{os.cpu_count()} CPU cores",
              "minutes": round((time.monotonic() - started) / 60, 1), "resumed": bool(args.work), "model": MODEL,
              **{k: getattr(args, k) for k in SETTINGS}, "seeds": args.seeds, "seconds": timings,
              "draws": results, "across": across(results) if len(results) > 1 else {}, "means": arm_means(results)}
    result["verdict"] = verdict_line(result)
    stem = "proof" if args.draws == 1 else f"proof-{args.draws}draws"
    chart(result["means"], arm_intervals(results), work / f"{stem}.png")
    md = markdown(result, f"{stem}-{date}.png")
    (work / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (work / f"{stem}.md").write_text(md, encoding="utf-8")
    publish(work, stem, date, (".json", ".md", ".png"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
