"""The child's side of the contract (zhouyi.child.jobs): read the job from stdin, validate it, do the work, print one
JSON line, the answer or an error. A refusal the child words for the user is a ChildError; anything else the work
raises is reported with its type, so the parent never shows a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from pydantic import ValidationError

from zhouyi.child.jobs import ANSWERS, Job


class ChildError(Exception):
    """A refusal worded for the user (a tokenizer the converter cannot hash, a package not installed, ...)."""


def serve(job_type: type[Job], work: Callable[[Job], dict], unexpected: str = "") -> int:
    """Run `work` on the job from stdin; 0 with {"answer": ...}, or 2 with {"error": ...}. `unexpected` prefixes
    the message of an error the child did not word itself (e.g. "GGML's converter stopped")."""
    try:
        job = job_type.model_validate_json(sys.stdin.read())
        answer = ANSWERS[job_type].model_validate(work(job)).model_dump(mode="json")
    except KeyboardInterrupt:
        return 130  # the parent sent it on from the user, and says so itself
    except ChildError as exc:
        return _say({"error": str(exc)}, 2)
    except ValidationError as exc:
        return _say({"error": f"zhouyi.child.{job_type.child}: a job or answer out of contract: {exc}"}, 2)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which words it as a user error
        return _say({"error": f"{unexpected + ': ' if unexpected else ''}{type(exc).__name__}: {exc}"}, 2)
    return _say({"answer": answer}, 0)


def _say(message: dict, code: int) -> int:
    print(json.dumps(message, ensure_ascii=False), flush=True)
    return code
