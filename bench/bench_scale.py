"""`zhouyi data clean` at scale: wall time and peak memory (the child's max RSS) for 10k, 100k and 1M pages.

Pages are made from the shared scraped records the way a large scrape looks: each page its own dream (a title of
the shared data with a tag unique to the page) and its own text, four to eight sentences drawn from the whole
scrape's sentences, in paragraphs; one page in fifty is a near copy of the page before it (one sentence changed),
as scrapes carry near duplicates (1.5% in the shared data). So templates, exact and near duplicates see what they
would on a real site of that size, and nothing can be learnt or deduplicated away.

    python bench/bench_scale.py [--pages 10000,100000,1000000] [--html]

--html writes the pages as whole saved HTML pages (bench/sites.py's blog style, one file each, a folder read by the
extractor) instead of one JSON Lines file. Results: bench/results/scale[-html]-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, SCRAPED, require_scraped
from sites import page

TAGS = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥金木水火土东南西北春夏秋冬梅兰竹菊琴棋书画山川"


def tag(n: int) -> str:
    """A tag unique to each `n` (up to 3,375,000 of them), two to four characters."""
    digits = []
    while True:
        n, d = divmod(n, len(TAGS))
        digits.append(TAGS[d])
        if not n:
            return "".join(reversed(digits)).rjust(2, TAGS[0])


def pages(count: int) -> list[tuple[str, str]]:
    """(title, text) of `count` pages (see the module's docstring)."""
    source = [json.loads(line) for line in SCRAPED.read_text(encoding="utf-8").splitlines() if line.strip()]
    titles = [r["title"] for r in source if isinstance(r.get("title"), str) and r["title"].strip()]
    sentences = [s for r in source if isinstance(r.get("text"), str)
                 for s in re.findall(r"[^。！？\n]{6,80}[。！？]", r["text"])]
    rng = random.Random(0)
    out: list[tuple[str, str]] = []
    text = ""
    for n in range(count):
        title = f"{titles[n % len(titles)]}{tag(n // len(titles))}"
        if n % 50 == 49:  # a near copy of the page before, one sentence changed
            text = text.replace(rng.choice(re.findall(r"[^。！？\n]+[。！？]", text)), rng.choice(sentences), 1)
        else:
            picked = rng.sample(sentences, rng.randint(4, 8))
            cut = sorted(rng.sample(range(1, len(picked)), min(2, len(picked) - 1)))
            text = "\n".join("".join(picked[a:b]) for a, b in zip([0, *cut], [*cut, len(picked)], strict=True))
        out.append((title, f"梦见{title}，{text}"))
    return out


def write_rows(folder: Path, count: int) -> Path:
    path = folder / f"pages-{count}.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for title, text in pages(count):
            fh.write(json.dumps({"title": title, "text": text}, ensure_ascii=False) + "\n")
    return path


def write_html(folder: Path, count: int) -> Path:
    site = folder / f"pages-{count}"
    rng = random.Random(0)
    made = pages(count)
    others = [title for title, _ in made[:500]]
    for n, (title, text) in enumerate(made):
        sub = site / f"{n // 10_000:03d}"
        if n % 10_000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{n:07d}.html").write_text(page("blog", title, text, n, rng, others)["text"], encoding="utf-8")
    return site


def measure(src: Path, out: Path) -> dict:
    """One cleaning in a child process: wall seconds, the child's peak RSS, and its summary line."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "zhouyi", "data", "clean", str(src), "-o", str(out),
                           "--no-register"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest child so far
    return {"seconds": round(seconds, 1), "peak_bytes": peak, "summary": done.stdout.strip().splitlines()[-1]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", default="10000,100000,1000000", help="page counts, comma-separated, ascending")
    parser.add_argument("--html", action="store_true", help="whole saved HTML pages through the extractor")
    parser.add_argument("--tmp", default=None, help="folder for the generated pages (default: the system's)")
    parser.add_argument("--name", default="", help="a suffix for the results' file names (e.g. before)")
    parser.add_argument("--note", default="", help="a note for the report (what else ran, which commit)")
    args = parser.parse_args()
    require_scraped()
    counts = [int(c) for c in args.pages.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for count in counts:  # ascending: RUSAGE_CHILDREN's max is then this size's peak
            made = time.perf_counter()
            src = (write_html if args.html else write_rows)(Path(tmp), count)
            generated = time.perf_counter() - made
            row = {"pages": count, **measure(src, Path(tmp) / f"out-{count}.json"),
                   "generate_seconds": round(generated, 1)}
            rows.append(row)
            print(row, flush=True)
    date = time.strftime("%Y-%m-%d")
    stem = f"scale{'-html' if args.html else ''}{'-' + args.name if args.name else ''}-{date}"
    shape = "whole saved HTML pages (blog style, one file each), read by trafilatura" if args.html else \
        "JSON Lines rows"
    lines = [f"# `zhouyi data clean` at scale ({date})", "",
             f"{shape}; pages made of the shared scrape's sentences, each its own dream, one in fifty a near copy "
             f"(bench/bench_scale.py); {os.cpu_count()} cores; peak = the cleaning process's max RSS"
             + (f"; {args.note}" if args.note else "") + ".", "",
             "| pages | seconds | seconds per 1,000 | peak memory | rows out |", "|---:|---:|---:|---:|---|"]
    lines += [f"| {r['pages']:,} | {r['seconds']} | {1000 * r['seconds'] / r['pages']:.2f} | "
              f"{r['peak_bytes'] / 2**30:.2f} GiB | {r['summary'].split(':')[0]} |" for r in rows]
    (RESULTS / f"{stem}.json").write_text(json.dumps({"date": date, "html": args.html, "note": args.note, "rows": rows},
                                                     indent=1) + "\n")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
