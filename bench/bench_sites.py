"""Cleaning a scrape from sites zhouyi was never shown: the interpretations of the shared scraped data (cleaned),
wrapped as pages of three other dream sites (bench/sites.py: HTML portal, CRLF forum, mobile site with boilerplate
no rule was written for), cleaned by `zhouyi.data.clean` with and without the learnt templates. Reported per site:
the share of interpretation sentences kept (goal >= 95%) and the pages with any site text left (goal 0).

    python bench/bench_sites.py [--pages 100] [--extractor NAME] [--sites blog,almanac]

The other extractors are for the comparison only: pip install readability-lxml justext.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, SCRAPED, require_scraped
from sites import SAVED_PAGES, SITES, score, site_pages


def interpretations(count: int) -> list[tuple[str, str]]:
    """(keyword, cleaned interpretation) of the shared scraped data: distinct keywords and texts, whole answers (a
    page whose text another page has is a duplicate, which cleaning rightly keeps once)."""
    from zhouyi.data.clean import CleanOptions, clean, dedup_key, keyword
    from zhouyi.data.readers import read_file

    rows, seen = [], set()
    for rec in read_file(SCRAPED).records:
        k = keyword(rec.title)
        if k in seen or len(k) < 2:
            continue
        out = clean([rec], [], CleanOptions.of(eval_ratio=0.0)).train
        if out and dedup_key(out[0]["output"]) not in seen:
            seen |= {k, dedup_key(out[0]["output"])}
            rows.append((k, out[0]["output"]))
        if len(rows) == count:
            break
    return rows


def write_site(pages: list[dict], folder: Path, style: str) -> Path:
    """The site's scrape as a user brings it: a folder of saved pages (in the encoding each page declares), or one
    JSON file of rows."""
    if style in SAVED_PAGES:
        site = folder / style
        site.mkdir(parents=True, exist_ok=True)
        for n, p in enumerate(pages):
            encoding = "gb18030" if "charset=gbk" in p["text"] else "utf-8"
            (site / f"{n:05d}.html").write_bytes(p["text"].encode(encoding))
        return site
    path = folder / f"{style}.json"
    path.write_text(json.dumps([{"title": p["title"], "text": p["text"]} for p in pages], ensure_ascii=False),
                    encoding="utf-8")
    return path


def cleaned(pages: list[dict], folder: Path, style: str, learn: bool) -> tuple[dict[str, str], dict]:
    """Each page's cleaned text by title (a dropped page absent), and the cleaning's report."""
    from zhouyi.data.clean import CleanOptions, clean, question
    from zhouyi.data.readers import read_file

    path = write_site(pages, folder, style)
    read = read_file(path)
    opts = CleanOptions.of(eval_ratio=0.0, near_dup_threshold=0.0, learn_templates=learn)
    result = clean(read.records, read.skipped, opts)
    by_question = {row["instruction"]: row["output"] for row in result.train}
    return {p["title"]: by_question[q] for p in pages if (q := question(p["title"], 42)) in by_question}, \
        result.report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=100, help="pages per site")
    parser.add_argument("--extractor", default="trafilatura", help="main-content extractor for saved pages: "
                        "trafilatura (zhouyi's), trafilatura-balanced, trafilatura-recall, readability, justext")
    parser.add_argument("--sites", default=",".join(SITES), help="which sites, comma-separated")
    args = parser.parse_args()
    from zhouyi.data import extract

    extract.EXTRACTOR = args.extractor
    chosen = args.sites.split(",")
    unknown = set(chosen) - set(SITES)
    if unknown:
        parser.error(f"--sites: no site {', '.join(sorted(unknown))}; the sites are {', '.join(SITES)}")
    require_scraped()
    started = time.monotonic()
    texts = interpretations(args.pages * len(SITES))
    rows, templates = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, style in enumerate(SITES):
            if style not in chosen:
                continue
            pages = site_pages(style, texts[i * args.pages:(i + 1) * args.pages])
            for learn in (False, True):
                began = time.monotonic()
                outputs, report = cleaned(pages, Path(tmp), style, learn)
                rows.append({"site": style, "learnt_templates": learn, **score(pages, outputs),
                             "seconds_per_1000": round(1000 * (time.monotonic() - began) / len(pages), 2),
                             "sentences_removed": report["sentences_removed"],
                             "suspicious_kept": report["suspicious_removals"]["kept"]})
                if learn:
                    templates[style] = [(t["pages"], t["pattern"]) for t in report["templates"]]
                print(rows[-1], flush=True)
    date = time.strftime("%Y-%m-%d")
    stem = "sites" if args.extractor == "trafilatura" else f"sites-{args.extractor}"
    lines = [f"# Cleaning sites zhouyi was never shown ({date})", "",
             f"{args.pages} pages per site (bench/sites.py) around interpretations of the shared scraped data; saved "
             f"pages read by {args.extractor}; {time.monotonic() - started:.0f} s in all.", "",
             "| site | learnt templates | pages | dropped | interpretation sentences kept "
             "| pages with site text left | suspicious removals kept | s per 1,000 pages |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['site']} | {'yes' if r['learnt_templates'] else 'no'} | {r['pages']} | {r['dropped']} | "
              f"{r['kept']}/{r['sentences']} ({r['kept_share']:.1%}) | {r['pages_with_noise']} | "
              f"{r['suspicious_kept']} | {r['seconds_per_1000']} |" for r in rows]
    lines += ["", "Templates learnt (pages: pattern):", ""]
    lines += [f"- {style}: " + "; ".join(f"{n}: {p}" for n, p in found) for style, found in templates.items()]
    (RESULTS / f"{stem}-{date}.json").write_text(json.dumps({"date": date, "extractor": args.extractor, "rows": rows,
                                                             "templates": templates}, ensure_ascii=False, indent=1)
                                                  + "\n", encoding="utf-8")
    (RESULTS / f"{stem}-{date}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
