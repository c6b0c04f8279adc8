"""`zhouyi data clean` speed on the shared scraped data (targets: 10k rows <= 10 s; 100k rows <= 10x the 10k time).

- 10k real: the first 10,000 records of the scraped JSONL as they are.
- Scaling: 10k and 100k rows built the same way, each from the first n/10 scraped records repeated ten
  times with the copy number put in front of title and text (`一：…`), so every row is distinct, exact
  dedup cannot shortcut the work, near-duplicate detection sees ten copies of each, and the two sizes
  differ only in how much data there is.
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


def timed_clean(src: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "zhouyi", "data", "clean", str(src), "-o",
                             str(src.with_suffix(".out.json")), "--no-register"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr[-2000:])
    return time.perf_counter() - start, result.stdout.strip()


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def copies(rows: list[dict], n: int) -> list[dict]:
    originals = rows[: n // 10]
    return [{**r, "title": f"{COPY_TAG[c]}：{r['title']}", "text": f"{COPY_TAG[c]}：{r['text']}"}
            for c in range(10) for r in originals]


def main() -> int:
    if not SCRAPED.is_file():
        print(f"skipped: the scraped data is not here ({SCRAPED})")
        return 0
    rows = [json.loads(line) for line in SCRAPED.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t_real, out_real = timed_clean(write_rows(tmp / "real10k.jsonl", rows[:10_000]))
        t_10k, _ = timed_clean(write_rows(tmp / "s10k.jsonl", copies(rows, 10_000)))
        t_100k, out_100k = timed_clean(write_rows(tmp / "s100k.jsonl", copies(rows, 100_000)))
    print(f"10,000 real rows: {t_real:.1f} s (target <= 10 s)\n  {out_real}")
    print(f"scaling: 10,000 rows {t_10k:.1f} s, 100,000 rows {t_100k:.1f} s = {t_100k / t_10k:.1f}x (target <= 10x)"
          f"\n  {out_100k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
