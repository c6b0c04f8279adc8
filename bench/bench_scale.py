"""`zhouyi data clean` at scale: wall time and peak memory (the child's max RSS) for 10k, 100k and 1M pages.

Pages are made from the shared scraped records, copied as often as needed; every copy is distinct where the cleaning
looks: a two-character tag unique to the copy follows its title's dream and starts every sentence of its text, so no
two pages share a keyword, a masked sentence (templates) or an exact text. Near-duplicate search sees each record's
copies as near duplicates (3-gram Jaccard 0.84 on average): at 1M pages, clusters of about 94 copies, each kept
(its dream differs), which costs more than a real scrape's few copies of a page.

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


def tag(copy: int) -> str:
    """A tag unique to each copy (two characters for up to 2,500 copies)."""
    return TAGS[copy // len(TAGS) % len(TAGS)] + TAGS[copy % len(TAGS)]


def pages(count: int) -> list[tuple[str, str]]:
    """(title, text) of `count` distinct pages."""
    source = [json.loads(line) for line in SCRAPED.read_text(encoding="utf-8").splitlines() if line.strip()]
    source = [r for r in source if isinstance(r.get("text"), str) and r["text"].strip()]
    out = []
    for n in range(count):
        row, t = source[n % len(source)], tag(n // len(source))
        text = re.sub(r"(^|[。！？\n])(?=[\u4e00-\u9fff])", rf"\g<1>{t}", row["text"])
        out.append((f"{row['title']}{t}", text))
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
             f"{shape}; distinct copies of the shared scraped records (bench/bench_scale.py); {os.cpu_count()} "
             "cores; peak = the cleaning process's max RSS.", "",
             "| pages | seconds | seconds per 1,000 | peak memory | rows out |", "|---:|---:|---:|---:|---|"]
    lines += [f"| {r['pages']:,} | {r['seconds']} | {1000 * r['seconds'] / r['pages']:.2f} | "
              f"{r['peak_bytes'] / 2**30:.2f} GiB | {r['summary'].split(':')[0]} |" for r in rows]
    (RESULTS / f"{stem}.json").write_text(json.dumps({"date": date, "html": args.html, "rows": rows}, indent=1) + "\n")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
