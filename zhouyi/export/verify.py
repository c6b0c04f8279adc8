"""`zhouyi verify FOLDER`: recompute every digest an exported folder's provenance.json records (zhouyi.export.card)
and say, for each, whether it matches, differs or cannot be checked here (the data or the run are not on this
machine). Exit 1 when anything differs: a weight, the card, the data, the spec or the evaluation the card quotes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from zhouyi import layout
from zhouyi.errors import UserError
from zhouyi.export.card import CARD, OWN, PROVENANCE
from zhouyi.files import sha256_file

MATCHES, DIFFERS, NOT_HERE = "matches", "DIFFERS", "not available here"


def _state(path: Path, digest: str | None) -> str:
    if digest is None or not path.is_file():
        return NOT_HERE
    return MATCHES if sha256_file(path) == digest else DIFFERS


def _claims(card: Path, evaluation: dict) -> str:
    """Whether every score the card's model-index claims (read by huggingface_hub, as the Hub reads it) is the one
    the evaluation measured."""
    from huggingface_hub import ModelCard

    try:
        claimed = {r.metric_type: r.metric_value for r in ModelCard.load(card).data.eval_results or []}
    except Exception as exc:  # noqa: BLE001 (any card the Hub's reader cannot read is a card that was changed)
        return f"{DIFFERS}: the card's metadata does not read ({type(exc).__name__})"
    measured = {k: v["b"] for k, v in evaluation.get("metrics", {}).items() if k in claimed}
    wrong = [f"{k} {claimed[k]} (measured {measured.get(k)})" for k in claimed if claimed[k] != measured.get(k)]
    return f"{DIFFERS}: " + ", ".join(wrong) if wrong else MATCHES


def verify(folder: Path) -> list[tuple[str, str, str]]:
    """(what, its name, matches / DIFFERS / not available here) for every digest the folder's provenance records."""
    folder = Path(folder)
    record = folder / PROVENANCE
    if not folder.is_dir() or not record.is_file():
        raise UserError(f"{folder}: no {PROVENANCE} here, so this is not a folder `zhouyi export` wrote (or it was "
                        "written before zhouyi recorded provenance): nothing to verify")
    try:
        facts = json.loads(record.read_text(encoding="utf-8"))
        files, data = dict(facts["files"]), dict(facts.get("data") or {})
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise UserError(f"{record}: damaged ({type(exc).__name__}); export the run again to rewrite it") from None
    out = [("file", name, _state(folder / name, digest)) for name, digest in files.items()]
    out += [("file", p.relative_to(folder).as_posix(), f"{DIFFERS}: not in the record (added since)")
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in OWN
            and p.relative_to(folder).as_posix() not in files]
    card = folder / CARD
    out.append(("card", CARD, NOT_HERE if not card.is_file() else
                MATCHES if hashlib.sha256(card.read_bytes()).hexdigest() == facts.get("card_sha256") else DIFFERS))
    if card.is_file() and facts.get("evaluation"):
        out.append(("claims", "model-index", _claims(card, facts["evaluation"])))
    out += [("data", path, _state(Path(path), digest)) for path, digest in data.items()]
    run = Path(facts.get("run_dir") or "")
    out.append(("spec", layout.SPEC_RESOLVED, _state(run / layout.SPEC_RESOLVED, facts.get("spec_sha256"))))
    evaluation = facts.get("evaluation") or {}
    if evaluation.get("report_sha256"):
        out.append(("evaluation", f"{layout.EVAL_DIR}/{layout.REPORT_JSON}",
                    _state(run / layout.EVAL_DIR / layout.REPORT_JSON, evaluation["report_sha256"])))
    return out
