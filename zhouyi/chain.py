"""`zhouyi train SPEC --from RUN`: a second stage (e.g. DPO) on top of a finished LoRA run.

The new run does not continue RUN's adapter: LLaMA-Factory 0.9.5 takes a LoRA model's DPO reference to be the
model with its adapters disabled (trainer_utils.create_ref_model gives None, the DPO trainer then runs
`disable_adapter()`), so continuing the SFT adapter would silently make the *base* model the reference. Instead
RUN's adapter is merged into the new run's `start-model/` (with RUN's own export.yaml) and the new stage trains a
fresh adapter on that merge: policy and reference both start as the SFT model, and the first step's DPO rewards are
exactly zero (tests/test_chain.py checks this on a real run).
"""

from __future__ import annotations

from pathlib import Path

from zhouyi import launch
from zhouyi.errors import UserError
from zhouyi.launch import Command
from zhouyi.layout import START_MODEL, is_trained
from zhouyi.runs import check_in_place, check_weights, read_manifest, recorded_spec
from zhouyi.spec import JobSpec

SAME_BASE = ("source", "model_name_or_path", "model_revision", "template")


def check_from(spec: JobSpec, from_dir: Path) -> Path:
    """The --from run, resolved: a zhouyi run, its LoRA training finished, on the same base model and template."""
    from_dir = Path(from_dir).resolve()
    if not from_dir.is_dir():
        raise UserError(f"--from {from_dir}: no such directory")
    check_in_place(from_dir, "--from")  # a folder that is no run is an error naming its missing manifest
    earlier = recorded_spec(from_dir)
    if earlier.method.finetuning_type != "lora":
        raise UserError(f"--from {from_dir}: it trained method.finetuning_type {earlier.method.finetuning_type}; a "
                        "stage chains onto a LoRA run (its adapter is merged into the model the stage starts from)")
    if not is_trained(from_dir):
        raise UserError(f"--from {from_dir}: its training has not finished (train/adapter_config.json missing); "
                        f"finish it first (zhouyi train --resume {from_dir})")
    check_weights(from_dir, "--from")
    differs = [f"model.{k}: {getattr(earlier.model, k)!r} there, {getattr(spec.model, k)!r} here" for k in SAME_BASE
               if getattr(earlier.model, k) != getattr(spec.model, k)]
    if differs:
        raise UserError(f"--from {from_dir}: it trained another base model ({'; '.join(differs)}); chain a stage "
                        "onto a run of the same model")
    return from_dir


def merge_command(from_dir: Path, run_dir: Path) -> Command:
    """RUN's adapter merged into `run_dir/start-model`, by RUN's own rendered export.yaml."""
    return launch.build(recorded_spec(from_dir), "export", from_dir, args=[f"export_dir={run_dir / START_MODEL}"])


def chained_from(run_dir: Path) -> Path | None:
    """The run a chained run started from, as its manifest recorded it."""
    value = read_manifest(run_dir).get("from_run")
    return Path(value) if value else None
