"""Tokenisation: first run vs a run that loads zhouyi's tokenized cache (issue 6, part 3), on this CPU.

Cleans the shared scraped data (../shared/data/zgjm) into a dataset, then runs `zhouyi bench` twice on
a spec that trains on it with the tiny tokenizer, `tokenized_cache: true` and the machine's cores as
preprocessing workers. Reported: seconds from process start to the first training callback (imports +
data + model load) in each run, and that the second run loaded the cache instead of tokenising.
Run from the repo root after `make install` (`make bench` builds the tiny model first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRAPED = REPO.parent / "shared" / "data" / "zgjm"
SPEC = """
name: preprocess-bench
model: {{model_name_or_path: models/tiny-qwen2, source: local, template: qwen}}
data:
  datasets: [{{name: zhougong, file_name: zhougong.json,
              columns: {{prompt: instruction, query: input, response: output, system: system}}}}]
train: {{precision: fp32, cutoff_len: 1024, tokenized_cache: true, preprocessing_num_workers: {workers}}}
launch: {{device: cpu}}
"""


def zhouyi(*args: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "zhouyi", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"zhouyi {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def main() -> int:
    if not SCRAPED.is_dir():
        print(f"skipped: the scraped data is not here ({SCRAPED}); it ships with the project's CI only")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "models").mkdir()
        (project / "models" / "tiny-qwen2").symlink_to(REPO / "models" / "tiny-qwen2")
        inputs = [str(p) for p in sorted(SCRAPED.iterdir()) if p.suffix in (".json", ".jsonl", ".txt")]
        print(zhouyi("data", "clean", *inputs, "-o", "data/zhougong.json", cwd=project).strip())
        (project / "spec.yaml").write_text(SPEC.format(workers=os.cpu_count() or 1), encoding="utf-8")
        results = {}
        for run in ("first", "cached"):
            out = project / f"bench-{run}"
            zhouyi("bench", "spec.yaml", "--steps", "2", "--warmup", "1", "-o", str(out), cwd=project)
            (row,) = json.loads((out / "bench.json").read_text())["results"]
            log = (out / "preprocess-bench" / "train.log").read_text()
            results[run] = {"load_s": round(row["load_s"], 1), "loaded_cache": "Loaded tokenized dataset" in log}
        rows = len(json.loads((project / "data" / "zhougong.json").read_text()))
        print(json.dumps({"rows": rows, "workers": os.cpu_count(), **results}, indent=2))
        print(f"start -> training: {results['first']['load_s']} s tokenising, {results['cached']['load_s']} s cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
