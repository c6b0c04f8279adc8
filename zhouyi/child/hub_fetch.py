"""Child process of `zhouyi download`: one snapshot_download call, its result as one JSON line.

It runs apart so the parent can stop it after a timeout: a hub that does not answer must never
hang zhouyi.    python -m zhouyi.child.hub_fetch '{"source": ..., "repo": ..., "revision": ..., ...}'
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    try:
        if job["source"] == "modelscope":
            from modelscope import snapshot_download

            path = snapshot_download(job["repo"], revision=job["revision"], cache_dir=job["cache_dir"],
                                     local_files_only=job["offline"], allow_patterns=job["include"])
        else:
            from huggingface_hub import snapshot_download

            path = snapshot_download(job["repo"], revision=job["revision"], cache_dir=job["cache_dir"],
                                     local_files_only=job["offline"], allow_patterns=job["include"])
    except Exception as exc:  # reported to the parent, which turns it into a user error
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"path": str(path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
