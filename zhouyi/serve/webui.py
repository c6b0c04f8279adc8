"""`zhouyi webui`: LLaMA-Factory's web UI (LlamaBoard) in a working directory prepared so the tutorial's clicks
start from the right place: the dataset list offers the project's datasets, the model and its path are
pre-selected, and a trained run's adapter is offered as a checkpoint.

LlamaBoard reads all of this relative to its working directory: `data/dataset_info.json` (the dataset list),
`llamaboard_cache/user_config.yaml` (language, hub, last model and a path per model name),
`saves/<model name>/<finetuning type>/<checkpoint>` (the checkpoint list) and `llamaboard_config/*.yaml` (saved
training settings, keyed by the board's element ids, which its "Load arguments" button applies).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import yaml

from zhouyi import launch, layout
from zhouyi.errors import UserError
from zhouyi.files import atomic_write, read_mapping, write_json
from zhouyi.launch import Command
from zhouyi.layout import DATASET_INFO
from zhouyi.registry import read_registry
from zhouyi.render import RenderContext, dataset_entries, method_keys, model_path
from zhouyi.runs import check_run, latest_trained_run, render_context
from zhouyi.spec import JobSpec

CUSTOM = "Custom"  # LlamaBoard's model name for a model it does not list


def workdir(spec: JobSpec, base_dir: Path) -> Path:
    return base_dir / layout.WEBUI_DIR / spec.name


def board_model_name(spec: JobSpec) -> str:
    """LlamaBoard's name for the spec's hub model (its template then fills in), or Custom."""
    if spec.model.source == "local":
        return CUSTOM
    from llamafactory.extras.constants import SUPPORTED_MODELS  # imports torch: only this verb pays for it

    wanted = spec.model.model_name_or_path
    return next((name for name, paths in SUPPORTED_MODELS.items() if wanted in paths.values()), CUSTOM)


def datasets_for_board(spec: JobSpec, ctx: RenderContext) -> dict[str, dict]:
    """The project's registry and the spec's own entries, with file names made absolute (the board's data/
    folder holds no data)."""
    dataset_dir = ctx.resolve(spec.data.dataset_dir)
    entries = {**read_registry(dataset_dir / DATASET_INFO), **dataset_entries(spec)}
    return {name: {**entry, "file_name": str(dataset_dir / entry["file_name"])} if "file_name" in entry else entry
            for name, entry in entries.items()}


def config_name(spec: JobSpec) -> str:
    return layout.board_config(spec.name)


def board_training_config(spec: JobSpec) -> dict[str, object]:
    """The spec's training settings as LlamaBoard's element ids and value types (textboxes hold strings)."""
    t, m = spec.train, spec.method
    config: dict[str, object] = {
        "top.template": spec.model.template,
        "top.finetuning_type": method_keys(spec)["finetuning_type"],
        "train.training_stage": "Supervised Fine-Tuning",
        "train.dataset_dir": "data",
        "train.dataset": spec.data.names("train"),
        "train.learning_rate": str(t.learning_rate),
        "train.num_train_epochs": str(t.num_train_epochs),
        "train.compute_type": t.precision,
        "train.cutoff_len": t.cutoff_len,
        "train.batch_size": t.per_device_train_batch_size,
        "train.gradient_accumulation_steps": t.gradient_accumulation_steps,
        "train.val_size": t.val_size,
        "train.lr_scheduler_type": t.lr_scheduler_type,
        "train.logging_steps": t.logging_steps,
        "train.save_steps": t.save_steps,
        "train.packing": t.packing or t.neat_packing,
        "train.neat_packing": t.neat_packing,
        "train.extra_args": json.dumps({"optim": "adamw_torch", "warmup_ratio": t.warmup_ratio}),
        "train.ds_stage": {"none": "none", "zero2": "2", "zero2_offload": "2", "zero3": "3",
                           "zero3_offload": "3"}.get(spec.launch.deepspeed, "none"),
        "train.ds_offload": "offload" in spec.launch.deepspeed,
    }
    if t.max_samples is not None:
        config["train.max_samples"] = str(t.max_samples)
    if m.finetuning_type in ("lora", "qlora"):
        config |= {"train.lora_rank": m.lora_rank, "train.lora_alpha": m.lora_alpha or 2 * m.lora_rank,
                   "train.lora_dropout": m.lora_dropout, "train.lora_target": m.lora_target}
    if m.finetuning_type == "qlora":
        config["top.quantization_bit"] = str(m.quantization_bit)
    return config


@dataclasses.dataclass(frozen=True)
class Board:
    folder: Path  # LlamaBoard's working folder
    model_name: str
    model_path: str
    run_dir: Path | None  # the run whose adapter is offered as a checkpoint


def prepare_board(spec: JobSpec, base_dir: Path, run: Path | None) -> Board:
    """The board's working folder for `spec`, offering `run` (default: the spec's latest finished run, if any) as a
    checkpoint; a chained run's adapter is offered on its start model, the merge it was trained on."""
    run_dir = check_run(run) if run else None
    if run_dir is None:
        with contextlib.suppress(UserError):  # no finished run yet: the board starts without a checkpoint
            run_dir = latest_trained_run(spec, base_dir)
    folder = workdir(spec, base_dir)
    name = board_model_name(spec)
    ctx = render_context(spec, folder, base_dir)
    if run_dir is not None and (run_dir / layout.START_MODEL).is_dir():
        ctx = dataclasses.replace(ctx, model_dir=run_dir / layout.START_MODEL)
    return Board(folder, name, prepare(spec, ctx, folder, run_dir, name), run_dir)


def prepare(spec: JobSpec, ctx: RenderContext, folder: Path, run_dir: Path | None, name: str) -> str:
    """Write the board's dataset list and user config (keeping the user's other choices); offer `run_dir`'s
    adapter as a checkpoint. Returns the model path the board shows."""
    path = model_path(spec, ctx)
    write_json(folder / "data" / DATASET_INFO, datasets_for_board(spec, ctx))
    config_file = folder / layout.BOARD_USER_CONFIG
    config = board_user_config(config_file)
    hub = "modelscope" if spec.model.source == "modelscope" else "huggingface"  # a local model: no hub to ask
    config = {"lang": "zh", "cache_dir": None, **config, "hub_name": hub, "last_model": name,
              "path_dict": {**(config.get("path_dict") or {}), name: path}}
    atomic_write(config_file, yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    atomic_write(folder / "llamaboard_config" / config_name(spec),
                 yaml.safe_dump(board_training_config(spec), allow_unicode=True, sort_keys=False))
    if run_dir is not None:
        link = folder / "saves" / name / method_keys(spec)["finetuning_type"] / run_dir.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(run_dir / layout.TRAIN_DIR, target_is_directory=True)
    return path


def board_user_config(path: Path) -> dict:
    """LlamaBoard's saved choices ({} when none); a damaged file is named, not overwritten (it is the user's)."""
    return read_mapping(path, "fix it, or delete it and LlamaBoard starts from its defaults", yaml.safe_load,
                        (yaml.YAMLError,))


def command(spec: JobSpec, folder: Path, host: str, port: int) -> Command:
    gradio = {"GRADIO_SERVER_NAME": host, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    return launch.build(spec, "webui", folder, env=gradio)
