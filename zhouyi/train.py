"""Making and training runs, as a library: register the spec's datasets, make a new run (its rendered files and
manifest), train it, resume a stopped one, rerun a past one. The `train`, `rerun` and `launch-script` verbs only
parse, call these and print.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from zhouyi import chain, launch, layout, process
from zhouyi.download import missing_local_model, recorded
from zhouyi.errors import UserError
from zhouyi.files import atomic_write, read_json_rows, sha256_file, write_json
from zhouyi.launch import Command, redact
from zhouyi.layout import DATASET_INFO, MANIFEST
from zhouyi.load import LoadedSpec, to_yaml
from zhouyi.packages import package_versions
from zhouyi.registry import MergeResult, merge_entries
from zhouyi.render import RenderContext, dataset_entries, render, render_node_script, render_resume
from zhouyi.runs import drift, ensure_empty_target, last_checkpoint, recorded_spec, render_context, runs_dir
from zhouyi.spec import JobSpec

# ---------------------------------------------------------------- making a run folder


def new_run_dir(spec: JobSpec, base_dir: Path) -> Path:
    """Create `<runs_dir>/<run_name>-<timestamp>`; a second run in the same second gets `-2`, `-3`, ..."""
    parent = runs_dir(spec, base_dir)
    parent.mkdir(parents=True, exist_ok=True)
    stem = f"{spec.run_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        path = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path.resolve()
        except FileExistsError:
            continue
    raise UserError(f"could not create a new run directory under {parent}")


def write_files(run_dir: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        atomic_write(run_dir / name, text)


def data_files(spec: JobSpec, ctx: RenderContext) -> list[Path]:
    """The data files this spec reads: its registry and every registered file it names that exists."""
    dataset_dir = ctx.resolve(spec.data.dataset_dir)
    registry = dataset_dir / DATASET_INFO
    paths = [registry] if registry.exists() else []
    for entry in spec.data.datasets:
        if entry.file_name and (dataset_dir / entry.file_name).exists():
            paths.append(dataset_dir / entry.file_name)
    return paths


def git_commit(path: Path) -> str | None:
    """The commit (with -dirty) of the project the run was made in, when it is a git checkout."""
    try:
        out = process.capture(Command(["git", "-C", str(path), "describe", "--always", "--dirty", "--abbrev=40"]),
                              timeout=10)
    except (OSError, UserError, process.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def write_manifest(run_dir: Path, spec: JobSpec, spec_text: str, spec_source: str, ctx: RenderContext,
                   files: dict[str, str], command: Command, extra: dict | None = None) -> dict:
    """Record what this run was, before it is launched: spec, files, data hashes, versions, command (and `extra`,
    e.g. the run a chained run starts from)."""
    manifest = {
        "run_dir": str(run_dir),
        "spec_source": spec_source,
        "spec": spec.model_dump(mode="json"),
        "rendered": {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()},
        "data": {str(p): sha256_file(p) for p in data_files(spec, ctx)},
        "versions": package_versions(),
        "git_commit": git_commit(ctx.base_dir),
        "command": {"argv": command.argv, "env": redact(command.env), "cwd": command.cwd},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }
    atomic_write(run_dir / layout.SPEC_COPY, spec_text)
    atomic_write(run_dir / layout.SPEC_RESOLVED, to_yaml(spec))
    write_json(run_dir / MANIFEST, manifest)
    return manifest


@dataclass(frozen=True)
class Run:
    dir: Path
    spec: JobSpec
    command: Command  # the training command, ready to run
    start: Command | None = None  # a chained run's merge of the run it starts from (zhouyi.chain), run first


def register(spec: JobSpec, base_dir: Path, force: bool = False) -> MergeResult:
    """Merge the spec's datasets into its dataset_dir's dataset_info.json (a repointed entry needs `force`)."""
    path = RenderContext(base_dir, base_dir).resolve(spec.data.dataset_dir) / DATASET_INFO
    return merge_entries(path, dataset_entries(spec), force=force)


def check_ready(loaded: LoadedSpec, base_dir: Path, node_rank: int | None = None, script: str | None = None) -> None:
    """What must hold before anything is written for a new run: a node rank the job has, the master's address
    where a node must be told it (all but a Slurm script), and a model that needs converting (`source: pypi`)
    converted."""
    spec = loaded.spec
    check_node_rank(spec, node_rank)
    launch_ = spec.launch
    if launch_.nnodes > 1 and launch_.engine == "torchrun" and not launch_.master_addr and script != "slurm":
        raise UserError(f"launch.master_addr: a {launch_.nnodes}-node job needs the master node's address on every "
                        "node; set it (only `zhouyi launch-script --slurm` takes it from the allocation)")
    check_data_files(spec, base_dir)
    check_pairs(spec, base_dir)
    if spec.model.source == "pypi" and recorded(spec, base_dir) is None:
        ref = loaded.source.removeprefix("preset:")
        raise UserError(f"model.model_name_or_path: {spec.model.model_name_or_path} is not converted here (or its "
                        f"folder under .zhouyi/models was deleted); run `zhouyi download {ref}` first")


def check_data_files(spec: JobSpec, base_dir: Path) -> None:
    """Every data file the spec names is there (a dry run too: its command would fail at once)."""
    folder = RenderContext(base_dir, base_dir).resolve(spec.data.dataset_dir)
    missing = [f"data.datasets[{i}].file_name: {folder / d.file_name}" for i, d in enumerate(spec.data.datasets)
               if d.file_name and not (folder / d.file_name).is_file()]
    if missing:
        raise UserError("data file not found:\n  " + "\n  ".join(missing) + "\nMake it from your scrape (zhouyi "
                        "data clean INPUT -o FILE), or fix file_name; nothing was written")


def check_pairs(spec: JobSpec, base_dir: Path) -> None:
    """A preference stage needs pairs to learn from: every pairs file it names exists and holds at least one."""
    if spec.train.stage == "sft":
        return
    folder = RenderContext(base_dir, base_dir).resolve(spec.data.dataset_dir)
    for entry in (d for d in spec.data.datasets if d.split == "train" and d.file_name):
        path = folder / entry.file_name
        try:
            rows = read_json_rows(path)
        except FileNotFoundError:
            rows = None
        except ValueError as exc:
            raise UserError(f"{path}: {exc}; build the pairs again (zhouyi data pairs)") from None
        if not rows:
            raise UserError(f"data.datasets: train.stage is dpo but {path} holds no pairs"
                            f"{'' if rows is not None else ' (no such file)'}; build them with `zhouyi data pairs "
                            f"--run SFT_RUN -o {path}`")


def require_model(spec: JobSpec, base_dir: Path) -> None:
    """A local model folder must hold a model before anything loads it (LLaMA-Factory would only say it failed to
    load a tokenizer)."""
    problem = missing_local_model(spec, base_dir)
    if problem:
        raise UserError(f"model.model_name_or_path: {problem}")


def prepare(loaded: LoadedSpec, base_dir: Path, *, node_rank: int | None = None, script: str | None = None,
            from_dir: Path | None = None, force: bool = False, dry_run: bool = False, echo=print) -> Run:
    """Everything before training, each check once and all of them before anything is written: the spec ready,
    the --from run, the model on disk (not for a launch script, which runs elsewhere), the registry (left alone in
    a dry run), then the new run."""
    spec = loaded.spec
    check_ready(loaded, base_dir, node_rank, script)
    from_dir = chain.check_from(spec, from_dir) if from_dir is not None else None
    if dry_run:
        echo("dry run: the registry is left as it is")
    else:
        register_for_training(spec, base_dir, force, echo, model=script is None)
    return new_run(loaded, base_dir, node_rank, from_dir)


def register_for_training(spec: JobSpec, base_dir: Path, force: bool = False, echo=print, model: bool = True) -> None:
    """The model on disk (unless `model=False`), then the spec's datasets registered, said to the user."""
    if model:
        require_model(spec, base_dir)
    echo(register(spec, base_dir, force).describe())


def new_run(loaded: LoadedSpec, base_dir: Path, node_rank: int | None = None, from_dir: Path | None = None) -> Run:
    """A fresh run dir holding every rendered file and the manifest (what the run is, before it is launched);
    `from_dir`: the checked, finished run this one chains onto (zhouyi.chain: it trains on that run merged)."""
    spec = loaded.spec
    render_context(spec, runs_dir(spec, base_dir), base_dir)  # folders LLaMA-Factory cannot read: refused here
    run_dir = new_run_dir(spec, base_dir)
    try:
        ctx = render_context(spec, run_dir, base_dir)
        if from_dir is not None:
            ctx = replace(ctx, model_dir=run_dir / layout.START_MODEL)
        files = render(spec, ctx)
        write_files(run_dir, files)
        cmd = launch.build(spec, "train", run_dir, node_rank=node_rank)
        write_manifest(run_dir, spec, loaded.text, loaded.source, ctx, files, cmd,
                       {"from_run": str(from_dir)} if from_dir else {})
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # made just now, and no run without its manifest
        raise
    return Run(run_dir, spec, cmd, chain.merge_command(from_dir, run_dir) if from_dir else None)


def train(run: Run, echo=print) -> int:
    """Run the training; in CI and logs (stdout not a terminal) also one plain progress line per logged step."""
    from zhouyi.progress import LogWatcher

    if run.start is not None:
        echo(f"merging the run this one starts from into {run.dir / layout.START_MODEL} (the model it trains on and "
             "its reference)")
        ensure_empty_target(run.dir / layout.START_MODEL, force=False)
        code = process.run(run.start, echo=echo)
        if code != 0:
            echo(f"merging the starting run failed (exit {code}); nothing trained: {run.dir}")
            return code
    watching = LogWatcher(run.dir, echo) if not sys.stdout.isatty() else contextlib.nullcontext()
    with watching:
        code = process.run(run.command, echo=echo)
    echo(f"{'trained' if code == 0 else f'training failed (exit {code})'}: {run.dir / layout.TRAIN_DIR}")
    return code


def resume(run_dir: Path, node_rank: int | None = None, dry_run: bool = False) -> tuple[Run, Path]:
    """The stopped run continued from its last checkpoint, in the same run dir, with the train.yaml it was made
    with (written as resume.yaml, except in a dry run); returns the run and the checkpoint."""
    run_dir = Path(run_dir).resolve()
    checkpoint = last_checkpoint(run_dir)
    spec = recorded_spec(run_dir)
    check_node_rank(spec, node_rank)
    if not dry_run:
        train_yaml = (run_dir / layout.TRAIN_YAML).read_text(encoding="utf-8")
        atomic_write(run_dir / layout.RESUME_YAML, render_resume(train_yaml, checkpoint))
    cmd = launch.build(spec, "train", run_dir, node_rank=node_rank, config=layout.RESUME_YAML)
    return Run(run_dir, spec, cmd), checkpoint


def rerun_source(run_dir: Path) -> tuple[LoadedSpec, list[str], Path | None]:
    """A past run's recorded spec, to make a new run from, what changed since (data, package versions), and the
    run it was chained onto, if any."""
    old = Path(run_dir).resolve()
    spec = recorded_spec(old)
    return LoadedSpec(spec, to_yaml(spec), f"rerun of {old}", {}), drift(old), chain.chained_from(old)


def write_node_script(run: Run, kind: str) -> Path:
    """The run's per-node launch script ("shell" or "slurm"), executable."""
    name, script = render_node_script(kind, run.spec, run.command, run.dir)
    atomic_write(run.dir / name, script)
    (run.dir / name).chmod(0o755)
    return run.dir / name


def check_node_rank(spec: JobSpec, node_rank: int | None) -> None:
    if node_rank is not None and not 0 <= node_rank < spec.launch.nnodes:
        raise UserError(f"--node-rank {node_rank}: launch.nnodes is {spec.launch.nnodes}, so ranks are "
                        f"0..{spec.launch.nnodes - 1}")
