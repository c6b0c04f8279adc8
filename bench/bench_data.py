"""`zhouyi data clean` speed on the shared scraped data: 10k rows (target <= 10 s) and 100k rows (<= 10x that).

The 10k input is the first 10,000 records of the scraped JSONL as they are. The 100k input repeats all
scraped records ten times, each copy's title and text tagged with its copy number, so every row is
distinct and exact dedup cannot shortcut the work (near-duplicate detection then sees ten copies of each).
Run from the repo root after `make install`; skipped where ../shared/data/zgjm is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRAPED = REPO.parent / "shared" / "data" / "zgjm" / "jingle1267_zgjm.jsonl"
COPY_TAG = "零一二三四五六七八九"


def timed_clean(src: Path, out: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "zhouyi", "data", "clean", str(src), "-o", str(out),
                             "--no-register"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr[-2000:])
    return time.perf_counter() - start, result.stdout.strip()


def main() -> int:
    if not SCRAPED.is_file():
        print(f"skipped: the scraped data is not here ({SCRAPED})")
        return 0
    rows = [json.loads(line) for line in SCRAPED.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = tmp / "10k.jsonl"
        small.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:10_000]), encoding="utf-8")
        big = tmp / "100k.jsonl"
        with big.open("w", encoding="utf-8") as fh:
            for copy in range(10):
                for r in rows:
                    tag = COPY_TAG[copy]
                    fh.write(json.dumps({**r, "title": r["title"] + tag, "text": r["text"] + f"其{tag}。"},
                                        ensure_ascii=False) + "\n")
        t_small, out_small = timed_clean(small, tmp / "a.json")
        t_big, out_big = timed_clean(big, tmp / "b.json")
    n_big = len(rows) * 10
    print(f"10,000 rows: {t_small:.1f} s (target <= 10 s)\n  {out_small}")
    print(f"{n_big:,} rows: {t_big:.1f} s, {t_big / t_small:.1f}x the 10k time for {n_big / 10_000:.1f}x the rows "
          f"(target <= 10x)\n  {out_big}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
