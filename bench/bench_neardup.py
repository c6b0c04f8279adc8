"""Near-duplicate search: zhouyi's own MinHash (zhouyi.data.neardup: numpy-vectorised hashing, LSH banding, exact
Jaccard to confirm) against datasketch's MinHash and MinHashLSH with the same confirmation, on the shared scraped
files' cleaned texts: the clusters each finds and the time per 10,000 rows.

    python bench/bench_neardup.py
"""

from __future__ import annotations

import json
import sys
import time

from common import RESULTS, SCRAPED, require_scraped

THRESHOLD = 0.8  # data.clean.near_dup_threshold's default


def texts() -> list[str]:
    from zhouyi.data.clean import CleanOptions, clean
    from zhouyi.data.readers import read_file

    rows = []
    for name in ("jingle1267_zgjm.jsonl", "leochan2017_zgjm.json"):
        read = read_file(SCRAPED.parent / name)
        rows += clean(read.records, [], CleanOptions.of(eval_ratio=0.0, near_dup_threshold=0.0)).train
    return [r["output"] for r in rows]


def datasketch_clusters(items: list[str], threshold: float, num_perm: int = 64) -> list[int]:
    """The same clusters as zhouyi.data.neardup.clusters, with datasketch finding the candidates."""
    from datasketch import MinHash, MinHashLSH

    from zhouyi.data.neardup import shingles

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.05, 0.95))  # recall first, as zhouyi
    sets = [shingles(t) for t in items]
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, s in enumerate(sets):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([g.encode("utf-8") for g in s])
        for j in sorted(int(k) for k in lsh.query(m)):
            both = len(s & sets[j])
            ri, rj = root(i), root(j)
            if ri != rj and both >= threshold * (len(s) + len(sets[j]) - both):
                parent[max(ri, rj)] = min(ri, rj)
        lsh.insert(str(i), m)
    return [root(i) for i in range(len(items))]


def groups(roots: list[int]) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for i, r in enumerate(roots):
        out.setdefault(r, set()).add(i)
    return {frozenset(g) for g in out.values() if len(g) > 1}


def main() -> int:
    require_scraped()
    from zhouyi.data.neardup import clusters

    items = texts()
    found = {}
    for name, fn in (("zhouyi", clusters), ("datasketch", datasketch_clusters)):
        began = time.monotonic()
        roots = fn(items, THRESHOLD)
        seconds = time.monotonic() - began
        found[name] = {"seconds_per_10000": round(seconds * 10_000 / len(items), 2), "groups": groups(roots)}
    same = found["zhouyi"]["groups"] == found["datasketch"]["groups"]
    result = {"date": time.strftime("%Y-%m-%d"), "rows": len(items), "threshold": THRESHOLD, "same_clusters": same,
              **{n: {"seconds_per_10000": f["seconds_per_10000"], "clusters": len(f["groups"])}
                 for n, f in found.items()},
              "only_zhouyi": len(found["zhouyi"]["groups"] - found["datasketch"]["groups"]),
              "only_datasketch": len(found["datasketch"]["groups"] - found["zhouyi"]["groups"])}
    (RESULTS / f"neardup-{result['date']}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
