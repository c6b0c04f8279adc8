"""Where an eval's time goes on gemma-3-270m (CPU), and the batch size that answers fastest here.

For each batch size, LLaMA-Factory's own prediction (as `zhouyi eval` runs it: evaluation.answers.predict) answers the
same held-out dreams with the base model, greedy, eval.max_new_tokens new tokens. Reported per batch size: the whole
wall time, the part LLaMA-Factory spent generating (its predict_runtime), the rest (interpreter, imports, model load,
data: paid once per process), seconds per answer amortised, and the floor: one read of the weights per generated
token per batch, at this machine's measured memory bandwidth.

    python bench/bench_answers.py [--questions 32] [--batch 1 4 8 16] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from common import HELDOUT, MODEL, REPO, RESULTS, pick_rows, require_scraped, write_rows, write_spec, zhouyi


def bandwidth_gb_s() -> float:
    """Memory read bandwidth: the best of a few sums over a 512 MiB array (numpy, one pass each)."""
    import numpy as np

    data = np.ones(2**27, dtype=np.float32)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return data.nbytes / best / 1e9


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--work", type=Path, help="an earlier bench-answers folder (its model and run are reused)")
    args = parser.parse_args()
    require_scraped()
    from zhouyi.evaluation.answers import predict
    from zhouyi.runs import latest_trained_run, recorded_spec

    work = (args.work or REPO / "runs" / f"bench-answers-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    if not (work / "data" / "heldout.json").is_file():
        _, _, held_out = pick_rows(0, args.questions, 0)
        write_rows(work, {"heldout.json": held_out, "train.json": held_out})
        spec = {"base": "gemma-cpu", "name": "speed", "train": {"max_steps": 1},
                "data": {"datasets": [{"name": "train", "file_name": "train.json"}, HELDOUT]}}
        zhouyi("download", "gemma-cpu", cwd=work)
        zhouyi("train", write_spec(work, spec), cwd=work)
    os.chdir(work)
    run = latest_trained_run(recorded_spec(next((work / "runs").glob("speed-*"))), work)
    spec = recorded_spec(run)
    gb_s = bandwidth_gb_s()
    weight_gb = 268_098_176 * 4 / 1e9  # gemma-3-270m in float32, as LLaMA-Factory loads it on the CPU
    rows = []
    for batch in args.batch:
        out = run / "speed" / f"batch-{batch}"
        started = time.monotonic()
        answers = predict(spec, run, "base", out, [f"max_samples={args.questions}",
                                                    f"per_device_eval_batch_size={batch}"])
        wall = time.monotonic() - started
        generating = json.loads((out / "predict_results.json").read_text("utf-8"))["predict_runtime"]
        steps = -(-len(answers) // batch) * spec.eval.max_new_tokens  # decode steps, at most
        floor = steps * weight_gb / gb_s
        rows.append({"batch": batch, "answers": len(answers), "wall_s": round(wall, 1),
                     "generating_s": round(generating, 1), "startup_s": round(wall - generating, 1),
                     "s_per_answer": round(wall / len(answers), 2),
                     "generating_s_per_answer": round(generating / len(answers), 2),
                     "floor_s_per_answer": round(floor / len(answers), 2)})
        print(rows[-1], flush=True)
    best = min(rows, key=lambda r: r["s_per_answer"])
    date = time.strftime("%Y-%m-%d")
    result = {"date": date, "machine": f"{os.cpu_count()} CPU cores", "model": MODEL, "questions": args.questions,
              "max_new_tokens": spec.eval.max_new_tokens, "bandwidth_gb_s": round(gb_s, 1), "rows": rows,
              "fastest_batch": best["batch"]}
    lines = [f"# Answering speed, gemma-3-270m on {result['machine']} ({date})", "",
             f"{args.questions} held-out dreams, greedy, up to {spec.eval.max_new_tokens} new tokens, LLaMA-Factory's "
             f"prediction (one process per batch size). Floor: one read of the {weight_gb:.2f} GB of float32 weights "
             f"per decode step at the measured {gb_s:.1f} GB/s, every batch running the full token budget.", "",
             "| batch | wall s | generating s | start-up s | s/answer (amortised) | generating s/answer "
             "| floor s/answer |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['batch']} | {r['wall_s']} | {r['generating_s']} | {r['startup_s']} | {r['s_per_answer']} | "
              f"{r['generating_s_per_answer']} | {r['floor_s_per_answer']} |" for r in rows]
    (RESULTS / f"answers-{date}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"answers-{date}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
