"""The judge and the teacher with a real (small) language model behind the endpoint: `zhouyi api` serving the proof's
gemma-3-270m tuned on the cleaned data (the only real model this machine has; no network reaches a larger one).
What it shows is the safety net, not a good judge: how many of a 270M model's rewrites zhouyi's checks keep out, and
how often its verdicts flip with the order (the judge is then withheld).

    python bench/gemma_endpoint.py --work runs/proof-<stamp> [--rows 24] [--questions 20]

Needs a finished `make proof` work folder (its clean-s0 and tutorial-s0 runs, evaluated).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, RESULTS

sys.path.insert(0, str(REPO))

from zhouyi import endpoint, judge  # noqa: E402
from zhouyi.data.clean import PERSONA  # noqa: E402
from zhouyi.serve.server import free_port  # noqa: E402
from zhouyi.spec import JudgeSpec  # noqa: E402

KEY = "bench-local-key"


def run_of(work: Path, name: str) -> Path:
    (found,) = sorted((work / "runs").glob(f"{name}-2*"))[-1:]
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=24, help="cleaned rows the teacher rewrites")
    parser.add_argument("--questions", type=int, default=20, help="held-out questions the judge compares")
    args = parser.parse_args()
    work = args.work.absolute()
    clean, tutorial = run_of(work, "clean-s0"), run_of(work, "tutorial-s0")
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen([sys.executable, "-m", "zhouyi", "api", "--run", str(clean), "--port", str(port)],
                              cwd=work, env={**os.environ, "API_KEY": KEY}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    result: dict = {"model": "gemma-3-270m tuned on the cleaned data (the proof's clean-s0), served by zhouyi api",
                    "date": time.strftime("%Y-%m-%d")}
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2).status_code \
                        == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "teacher.yaml").write_text(f"base_url: {url}\nmodel: clean-s0\napi_key_env: BENCH_KEY\n"
                                              "max_tokens: 128\nconcurrency: 2\nrequests_per_minute: 600\n")
            started = time.monotonic()
            taught = subprocess.run([sys.executable, "-m", "zhouyi", "data", "rewrite", "-i",
                                     str(work / "data" / "clean.json"), "-o", str(tmp / "rewritten.json"),
                                     "--report", str(tmp / "report"), "--teacher-with", str(tmp / "teacher.yaml"),
                                     "--limit", str(args.rows)], cwd=tmp, env={**os.environ, "BENCH_KEY": KEY},
                                    capture_output=True, text=True)
            if taught.returncode:
                sys.exit(taught.stderr[-3000:])
            report = json.loads((tmp / "report" / "report.json").read_text())
            result["teacher"] = {k: report[k] for k in ("rows", "rewritten", "kept", "failed", "tokens",
                                                        "length_ratio")}
            result["teacher"]["minutes"] = round((time.monotonic() - started) / 60, 1)

            reports = [json.loads((r / "eval" / "report.json").read_text()) for r in (tutorial, clean)]
            pairs = judge.pairs_of(reports[0], "tuned", "tuned", reports[1])[:args.questions]
            spec = JudgeSpec(base_url=url, model="clean-s0", api_key_env="BENCH_KEY", max_tokens=64, concurrency=2,
                             requests_per_minute=600)
            os.environ["BENCH_KEY"] = KEY
            judging = judge.resolve(spec, "bench", REPO, PERSONA)
            started = time.monotonic()
            summary = judge.judge(judging, pairs, ("tutorial-style", "zhouyi-clean"),
                                  endpoint.Cache(tmp / "judge-cache.jsonl"), 0, echo=lambda *a, **k: None)
            summary.pop("rows")  # the questions are scraped keywords: not committed
            summary["minutes"] = round((time.monotonic() - started) / 60, 1)
            result["judge"] = summary
    finally:
        server.terminate()
        server.wait(timeout=60)
    t, j = result["teacher"], result["judge"]
    lines = [f"# A real small model as teacher and judge ({result['date']})", "", result["model"] + ", on this "
             "machine's 2 CPU cores. `python bench/gemma_endpoint.py --work " + str(args.work) + "`.", "",
             f"**Teacher**: {t['rows']} cleaned rows, {t['rewritten']} rewritten, kept the original: {t['kept'] or 0}, "
             f"no answer: {t['failed'] or 0}; {t['tokens']['total']:,} tokens; {t['minutes']} min.", "",
             f"**Judge**, zhouyi-clean against tutorial-style, {j['questions']} held-out questions in both orders: "
             f"judged {j['judged']}, left out (no verdict in an order) {j['unparsed']}, inconsistent "
             f"{j['inconsistent']}" + (f" ({j['inconsistency']['share']:.0%})" if "inconsistency" in j else "")
             + (f", win rate {j['win_rate']['share']:.2f} [{j['win_rate']['low']:.2f}, {j['win_rate']['high']:.2f}]"
                if "win_rate" in j else "")
             + f"; {'withheld: ' + j['withheld'] if 'withheld' in j else 'verdict: ' + j['verdict']}; "
             f"{j['minutes']} min.", ""]
    stamp = result["date"]
    (RESULTS / f"gemma-endpoint-{stamp}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    (RESULTS / f"gemma-endpoint-{stamp}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
