"""Child process of `zhouyi download`: one snapshot_download call (job and answer: zhouyi.child.jobs.HubFetch).

It runs apart so the parent can stop it after a timeout: a hub that does not answer must never hang zhouyi.
"""

from __future__ import annotations

import sys

from zhouyi.child.contract import serve
from zhouyi.child.jobs import HubFetch


def fetch(job: HubFetch) -> dict:
    if job.source == "modelscope":
        from modelscope import snapshot_download
    else:
        from huggingface_hub import snapshot_download
    path = snapshot_download(job.repo, revision=job.revision, cache_dir=job.cache_dir, local_files_only=job.offline,
                             allow_patterns=job.include)
    return {"path": str(path)}


if __name__ == "__main__":
    sys.exit(serve(HubFetch, fetch))
