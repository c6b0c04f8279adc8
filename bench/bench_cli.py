"""CLI speed and launch overhead (issue 2 targets), measured on this machine.

- `zhouyi --help` and `zhouyi render` wall time (target <= 0.5 s each; no torch/llamafactory import);
- `zhouyi validate` on every preset (target <= 20 s on 2 cores);
- `zhouyi train tiny-cpu` vs `llamafactory-cli train` on the same rendered YAML (target <= 5% overhead).
Run from the repo root after `make install` (`make bench` builds the tiny model first).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wall(argv: list[str], cwd: Path, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    zhouyi = str(BIN / "zhouyi")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copytree(REPO / "data", project / "data", ignore=shutil.ignore_patterns("dataset_info.json"))
        demo = json.loads((project / "data" / "zhougong_demo.json").read_text(encoding="utf-8"))
        rows = [{"system": r["instruction"], "instruction": r["input"], "input": "", "output": r["output"]}
                for r in demo]  # shaped as `zhouyi data clean` writes zhougong.json
        (project / "data" / "zhougong.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        (project / "models").mkdir()
        (project / "models" / "tiny-qwen2").symlink_to(REPO / "models" / "tiny-qwen2")

        results["help_s"] = wall([zhouyi, "--help"], project, repeat=5)
        results["render_s"] = wall([zhouyi, "render", "zhougong-lora", "-o", "r"], project, repeat=5)
        probe = ("import sys; from zhouyi.cli import main; main(['render', 'tiny-cpu', '-o', 'r2']); "
                 "print(sorted(m for m in ('torch', 'transformers', 'llamafactory') if m in sys.modules))")
        heavy = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True)
        results["render_heavy_imports"] = heavy.stdout.strip().splitlines()[-1]
        presets = subprocess.run([zhouyi, "presets"], capture_output=True, text=True).stdout.split()
        presets = [p for p in presets if (REPO / "zhouyi" / "presets" / f"{p}.yaml").exists()]
        results["validate_all_presets_s"] = wall([zhouyi, "validate", *presets], project)

        subprocess.run([zhouyi, "register", "tiny-cpu"], cwd=project, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([zhouyi, "train", "tiny-cpu", "--dry-run"], cwd=project, check=True, stdout=subprocess.DEVNULL)
        (dry,) = (project / "runs").iterdir()
        direct, wrapped = [], []
        for _ in range(2):  # alternate, so drift on the machine hits both sides alike
            shutil.rmtree(dry / "train", ignore_errors=True)
            direct.append(wall([str(BIN / "llamafactory-cli"), "train", str(dry / "train.yaml")], dry))
            wrapped.append(wall([zhouyi, "train", "tiny-cpu"], project))
        results["llamafactory_train_s"] = min(direct)
        results["zhouyi_train_s"] = min(wrapped)
        results["train_overhead_ratio"] = round(min(wrapped) / min(direct), 3)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
