"""Spec -> every file zhouyi writes for LLaMA-Factory ({file name: text}): a run's train/predict/infer/export YAML,
DeepSpeed JSON and dataset_info.json entries, and the files later steps add to a run (resume.yaml, quantize.yaml,
per-node launch scripts). Pure: no I/O beyond reading templates.

Every path in the output is absolute (relative spec paths resolve against `base_dir`, run outputs
land in `run_dir`), so a rendered file works from any working directory.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2

from zhouyi import layout
from zhouyi.errors import UserError
from zhouyi.launch import Command
from zhouyi.layout import DATASET_INFO
from zhouyi.spec import DatasetEntry, JobSpec
from zhouyi.yamltext import omegaconf_problem, yaml_value


@dataclass(frozen=True)
class RenderContext:
    base_dir: Path  # what relative spec paths (model, dataset_dir) are relative to
    run_dir: Path  # where this run's outputs go
    tokenized_dir: Path | None = None  # the tokenized-dataset cache (zhouyi.tokcache), when the spec asks for one
    model_dir: Path | None = None  # a snapshot `zhouyi download` recorded for a hub model (zhouyi.download)

    def __post_init__(self) -> None:
        """Every rendered path starts with one of these folders: one LLaMA-Factory cannot read fails here, named."""
        for folder in (self.base_dir, self.run_dir, self.tokenized_dir, self.model_dir):
            if folder is not None and (problem := omegaconf_problem(str(folder))):
                raise UserError(f"{folder}: {problem.replace('write it', 'rename or move the folder')}")

    def resolve(self, path: str) -> Path:
        return (self.base_dir / path) if not Path(path).is_absolute() else Path(path)


def templates_dir() -> Path:
    """Templates ship inside the wheel (zhouyi/templates); a source checkout keeps them at the top level."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


@functools.cache
def template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["y"] = yaml_value
    return env


def model_path(spec: JobSpec, ctx: RenderContext) -> str:
    if ctx.model_dir is not None:
        return str(ctx.model_dir)
    if spec.model.source == "local":
        return str(ctx.resolve(spec.model.model_name_or_path))
    return spec.model.model_name_or_path


def method_keys(spec: JobSpec) -> dict[str, object]:
    """The LLaMA-Factory method keys (qlora is LoRA plus model-side quantization keys)."""
    m = spec.method
    if m.finetuning_type in ("lora", "qlora"):
        keys = {"finetuning_type": "lora", "lora_rank": m.lora_rank}
        if m.lora_alpha is not None:
            keys["lora_alpha"] = m.lora_alpha
        return {**keys, "lora_dropout": m.lora_dropout, "lora_target": m.lora_target}
    if m.finetuning_type == "freeze":
        return {
            "finetuning_type": "freeze",
            "freeze_trainable_layers": m.freeze_trainable_layers,
            "freeze_trainable_modules": m.freeze_trainable_modules,
        }
    return {"finetuning_type": "full"}


def dataset_entry(entry: DatasetEntry) -> dict[str, object]:
    """A dataset_info.json entry with the *whole* column map (a partial map nulls the rest).

    `file_name` stays as the spec gives it: LLaMA-Factory joins it onto `dataset_dir`.
    """
    cols = {k: v for k, v in entry.resolved_columns.model_dump().items() if v is not None}
    ranking = {"ranking": True} if entry.ranking else {}
    return {"file_name": entry.file_name, "formatting": entry.formatting, **ranking, "columns": cols}


def dataset_entries(spec: JobSpec) -> dict[str, dict[str, object]]:
    """The entries this spec registers: those that name a file (the rest must be registered already)."""
    return {d.name: dataset_entry(d) for d in spec.data.datasets if d.file_name is not None}


def deepspeed_file_name(spec: JobSpec) -> str | None:
    stage = spec.launch.deepspeed
    return None if stage == "none" else f"ds_{stage}.json"


def render(spec: JobSpec, ctx: RenderContext) -> dict[str, str]:
    """All files for one run: train/predict/infer/export YAML, DeepSpeed JSON, dataset_info entries."""
    run = ctx.run_dir
    adapter = str(run / layout.TRAIN_DIR) if spec.method.finetuning_type in ("lora", "qlora") else None
    ds_name = deepspeed_file_name(spec)
    values = {
        "spec": spec,
        "model": spec.model,
        "train": spec.train,
        "infer": spec.infer,
        "eval": spec.eval,
        "export": spec.export,
        "launch": spec.launch,
        "overrides": spec.overrides,
        "method_keys": method_keys(spec),
        "quantization": (
            {"bit": spec.method.quantization_bit, "method": spec.method.quantization_method}
            if spec.method.finetuning_type == "qlora"
            else None
        ),
        "train_datasets": ",".join(spec.data.names("train")),
        "eval_datasets": ",".join(spec.data.names("eval")),
        # a preference stage's eval loss would need pairs: its eval split is for `zhouyi eval` only
        "train_eval_datasets": ",".join(spec.data.names("eval")) if spec.train.stage == "sft" and not (
            spec.data.interleave_probs and len(spec.data.interleave_probs) != len(spec.data.names("eval"))) else "",
        "mixing": {"mix_strategy": spec.data.mix_strategy, "interleave_probs": ",".join(
            f"{p:g}" for p in spec.data.interleave_probs) if spec.data.interleave_probs else None},
        "dataset_dir": str(ctx.resolve(spec.data.dataset_dir)),
        "train_dir": str(run / layout.TRAIN_DIR),
        "export_dir": str(run / spec.export.export_dir),
        "deepspeed_file": str(run / ds_name) if ds_name else None,
        "tokenized_path": str(ctx.tokenized_dir) if ctx.tokenized_dir else None,
    }
    base = {**values, "model_path": model_path(spec, ctx), "adapter_dir": None}
    # Later verbs load the tuned model: base + adapter, or for full/freeze tuning the saved weights.
    tuned = {**base, "adapter_dir": adapter} if adapter else {**base, "model_path": str(run / layout.TRAIN_DIR)}
    files = {
        layout.TRAIN_YAML: _render_yaml("train.yaml.j2", base),
        layout.INFER_YAML: _render_yaml("infer.yaml.j2", tuned),
        layout.EXPORT_YAML: _render_yaml("export.yaml.j2", tuned),
    }
    if values["eval_datasets"]:  # `zhouyi eval`: the same questions to the base and to the tuned model
        for which, model in (("base", base), ("tuned", tuned)):
            name = layout.VERB_FILES[layout.PREDICT_VERBS[which]]
            out = str(layout.answers_dir(run, which))
            files[name] = _render_yaml("predict.yaml.j2", {**model, "which": which, "predict_dir": out})
    if ds_name:
        stage = spec.launch.deepspeed.split("_")[0]
        template = template_env().get_template(f"deepspeed/ds_{stage}.json.j2")
        text = template.render(offload="offload" in spec.launch.deepspeed)
        files[ds_name] = json.dumps(json.loads(text), indent=2) + "\n"
    entries = dataset_entries(spec)
    if entries:
        files[DATASET_INFO] = json.dumps(entries, ensure_ascii=False, indent=2) + "\n"
    return files


def render_resume(train_yaml: str, checkpoint: Path) -> str:
    """resume.yaml: the run's own train.yaml as it was written, continued from `checkpoint`."""
    return f"{train_yaml}\n### resume ({checkpoint.name})\nresume_from_checkpoint: {yaml_value(str(checkpoint))}\n"


def render_quantize(spec: JobSpec, run_dir: Path, bits: int, calibration_file: Path) -> str:
    """quantize.yaml: the merged weights in the run dir, GPTQ-quantized into `<export_dir>-gptq-int<bits>`."""
    return _render_yaml("quantize.yaml.j2", {
        "spec": spec, "model": spec.model, "export": spec.export, "bits": bits,
        "merged_dir": str(layout.merged_dir(run_dir, spec.export.export_dir)),
        "quantized_dir": str(layout.quantized_dir(run_dir, spec.export.export_dir, bits)),
        "calibration_file": str(calibration_file)})


def _render_yaml(template: str, values: dict[str, object]) -> str:
    text = template_env().get_template(template).render(**values)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


NODE_SCRIPTS = {"shell": ("launch/node.sh.j2", layout.NODE_SCRIPT),
                "slurm": ("launch/slurm.sbatch.j2", layout.SBATCH_SCRIPT)}


def render_node_script(kind: str, spec: JobSpec, cmd: Command, run_dir: Path) -> tuple[str, str]:
    """(file name, text) of the `kind` script ("shell": each node runs it with its NODE_RANK; "slurm": an sbatch
    job, MASTER_ADDR from the first host, NODE_RANK from SLURM_NODEID) that runs the train command `cmd`."""
    template, name = NODE_SCRIPTS[kind]
    if any(ch in str(run_dir) for ch in "\n\r\0"):
        raise UserError(f"output.runs_dir: the run folder {str(run_dir)!r} holds a line break, which a Slurm "
                        "directive cannot carry; choose a runs_dir without one")
    dropped = ("NODE_RANK", "MASTER_ADDR") if kind == "slurm" else ("NODE_RANK",)
    env = {k: v for k, v in sorted(cmd.env.items()) if k not in dropped}
    jinja = template_env().overlay()
    jinja.filters["q"] = lambda value: shlex.quote(str(value))
    jinja.filters["qjoin"] = lambda argv: shlex.join(str(a) for a in argv)
    text = jinja.get_template(template).render(
        spec=spec, launch=spec.launch, env=env, argv=cmd.argv, run_dir=str(run_dir), script_name=name,
        bin_dir=str(Path(sys.executable).parent), master_addr=spec.launch.master_addr or "its master_addr",
    )
    return name, text
