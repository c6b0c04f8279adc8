"""Recompute every interval a results file states from the per-question numbers it carries, so a reader can check a
claim without the runs: `python -m evaluation.recompute FILE` (a `zhouyi eval` compare.json, or a proof's result with
its draws). Exit 0 when every interval matches what is printed, 1 when one differs, 2 when the file carries no
per-question numbers to recompute from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zhouyi.evaluation import stats

TOLERANCE = 0.011  # the printed numbers are rounded to 2 decimals (shares to 3), the per-question ones to 4


def tables(data) -> list[dict]:
    """Every comparison table (one with comparisons and their per-question numbers) anywhere in `data`."""
    found = []
    if isinstance(data, dict):
        if "comparisons" in data and "per_question" in data:
            found.append(data)
        for value in data.values():
            found += tables(value)
    elif isinstance(data, list):
        for value in data:
            found += tables(value)
    return found


def check_table(table: dict) -> list[tuple[str, dict, dict]]:
    """(what, printed, recomputed) for every interval of the table's comparisons."""
    from zhouyi.evaluation.checks import HIGHER_IS_BETTER

    numbers, seed = table["per_question"], table.get("settings", {}).get("seed", 0)
    out = []
    for c in table["comparisons"]:
        a, b = numbers[c["a"]], numbers[c["b"]]
        for metric, printed in c.get("metrics", {}).items():
            out.append((f"{c['b']} vs {c['a']}: {metric}", printed,
                        stats.compare_scores(a[metric], b[metric], True, seed)))
        for name, printed in c.get("shares", {}).items():
            x, y = a[name], b[name]
            if all(isinstance(v, bool) for v in x + y):
                again = stats.compare_shares(x, y, HIGHER_IS_BETTER[name], seed)
            else:
                floats = [float(v) for v in x], [float(v) for v in y]
                again = stats.compare_scores(*floats, HIGHER_IS_BETTER[name], seed)
            out.append((f"{c['b']} vs {c['a']}: {name}", printed, again))
    return out


def check_draws(result: dict) -> list[tuple[str, dict, dict]]:
    """The intervals across a proof's draws (bench/proof.py), recomputed from every draw's per-question numbers."""
    from zhouyi.evaluation.checks import HIGHER_IS_BETTER

    draws = result.get("draws", [])

    def column(draw: dict, arm: str, key: str) -> list[float]:
        numbers = draw["table"]["per_question"]
        name = "base" if arm == "base" else next(c for c in numbers if c.split(" (")[0] == arm)
        return [float(v) for v in numbers[name][key]]

    out = []
    for pair, measures in result.get("across", {}).items():
        b_arm, a_arm = pair.split(" vs ")
        for key, printed in measures.items():
            again = stats.compare_across_draws([column(d, a_arm, key) for d in draws],
                                               [column(d, b_arm, key) for d in draws], HIGHER_IS_BETTER.get(key, True))
            out.append((f"across draws, {pair}: {key}", printed, again))
    return out


def differs(printed: dict, again: dict) -> bool:
    keys = ("diff", "low", "high")
    if any(abs(float(printed[k]) - float(again[k])) > TOLERANCE for k in keys if k in printed):
        return True
    return printed.get("verdict") != again.get("verdict")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m zhouyi.evaluation.recompute RESULTS.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        print(f"{path}: not a results file zhouyi can read ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    checks = [c for t in tables(data) for c in check_table(t)] + (check_draws(data) if isinstance(data, dict) else [])
    if not checks:
        print(f"{path}: carries no per-question numbers, so no interval in it can be recomputed", file=sys.stderr)
        return 2
    bad = [(what, p, a) for what, p, a in checks if differs(p, a)]
    for what, printed, again in bad:
        print(f"DIFFERS {what}: printed {printed.get('diff')} [{printed.get('low')}, {printed.get('high')}] "
              f"{printed.get('verdict')}; recomputed {again['diff']} [{again['low']}, {again['high']}] "
              f"{again['verdict']}")
    print(f"{len(checks) - len(bad)} of {len(checks)} intervals match what {path} prints")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
