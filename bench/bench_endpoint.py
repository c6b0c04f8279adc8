"""The judge's and teacher's client (zhouyi.endpoint) against a local OpenAI-compatible server whose every answer
takes LATENCY seconds (an LLM's answer time): the requests per minute it reaches with the spec's defaults
(requests_per_minute 60, concurrency 4) and with the pace lifted (concurrency 4 alone limits it), and what the cache
saves on a second run of the same requests.

    python bench/bench_endpoint.py [--latency 0.5] [--requests 120]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.endpoint_server import scripted_server  # noqa: E402  (the tests' local server)
from zhouyi.endpoint import Cache, Request, ask_all  # noqa: E402
from zhouyi.spec import EndpointSpec  # noqa: E402

RESULTS = REPO / "bench" / "results"


def run(spec: EndpointSpec, requests: list[Request], cache: Cache) -> dict:
    started = time.monotonic()
    out = ask_all(spec, requests, cache, echo=lambda *_, **__: None)
    seconds = time.monotonic() - started
    return {"requests": len(requests), "sent": out.sent, "cached": out.cached, "failed": dict(out.failed),
            "seconds": round(seconds, 3), "per_minute": round(out.sent / seconds * 60, 1) if out.sent else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the server takes per answer")
    parser.add_argument("--requests", type=int, default=120)
    args = parser.parse_args()
    requests = [Request((("user", f"梦见{i}是什么意思？"),)) for i in range(args.requests)]
    rows = {}
    with scripted_server(delay=args.latency) as (url, _, _), tempfile.TemporaryDirectory() as tmp:
        defaults = EndpointSpec(base_url=url, model="m")
        rows["defaults (60 a minute, concurrency 4)"] = run(defaults, requests[:30], Cache(Path(tmp) / "a.jsonl"))
        lifted = EndpointSpec(base_url=url, model="m", requests_per_minute=100_000)
        rows["pace lifted (concurrency 4)"] = run(lifted, requests, Cache(Path(tmp) / "b.jsonl"))
        rows["the same requests again (cache)"] = run(lifted, requests, Cache(Path(tmp) / "b.jsonl"))
    stamp = time.strftime("%Y-%m-%d")
    result = {"latency_s": args.latency, "rows": rows, "machine": f"{platform.machine()}, "
              f"{platform.python_version()}", "date": stamp}
    lines = [f"# The endpoint client against a local server ({args.latency:g} s an answer), {stamp}", "",
             "| run | requests | sent | from the cache | seconds | requests a minute |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['requests']} | {r['sent']} | {r['cached']} | {r['seconds']} | {r['per_minute']} |"
              for name, r in rows.items()]
    lines += ["", "`python bench/bench_endpoint.py` on this machine (2 cores). With the defaults the pace "
              "(requests_per_minute) is the limit; lifted, concurrency / latency is (4 / latency a second at most)."]
    (RESULTS / f"endpoint-{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"endpoint-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
