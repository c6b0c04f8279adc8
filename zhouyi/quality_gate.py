"""The quality gate on export: a run is exported only when its latest `zhouyi eval` shows the tuned model no worse
than the base (within the spec's `export.gate` margins) on the held-out metrics, the persona's voice and the
degeneration checks. A model that loops or lost its voice should not leave the machine by accident."""

from __future__ import annotations

from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.files import read_mapping
from zhouyi.render import EVAL_DIR, TRAIN_DIR
from zhouyi.spec import JobSpec

METRICS = ("rouge-l", "bleu-4")  # points, higher is better
BETTER_HIGH = ("in_voice",)  # shares of answers
BETTER_LOW = ("boilerplate", "empty", "loops", "at_token_limit")


def failures(report: dict, metric_drop: float, share_worse: float) -> list[str]:
    """One line per measure on which the tuned model is worse than the base by more than the margin."""
    lines = []
    base, tuned = report["metrics"].get("base", {}), report["metrics"].get("tuned", {})
    for name in METRICS:
        if name in base and name in tuned and tuned[name] < base[name] - metric_drop:
            lines.append(f"{name} {tuned[name]:.1f} against the base's {base[name]:.1f} (allowed drop {metric_drop})")
    base, tuned = report["checks"].get("base", {}), report["checks"].get("tuned", {})
    for name in BETTER_HIGH + BETTER_LOW:
        if name not in base or name not in tuned:
            continue
        worse = base[name] - tuned[name] if name in BETTER_HIGH else tuned[name] - base[name]
        if worse > share_worse + 1e-9:
            lines.append(f"{name} {tuned[name]:.0%} of answers against the base's {base[name]:.0%} "
                         f"(allowed {share_worse:.0%} worse)")
    return lines


def check(spec: JobSpec, run_dir: Path) -> None:
    """Pass quietly, or raise a UserError with the numbers and the ways on; `export.gate.enabled: false` skips it."""
    gate = spec.export.gate
    if not gate.enabled:
        return
    report_path = run_dir / EVAL_DIR / "report.json"
    rewrite = f"run `zhouyi eval --run {run_dir}` again to rewrite it"
    report = read_mapping(report_path, rewrite)
    again = f"run `zhouyi eval --run {run_dir}` first, or export anyway with --force"
    if not report:
        raise UserError(f"{run_dir.name} has no evaluation, and the export gate needs one to compare the tuned model "
                        f"with the base: {again}")
    if not all(isinstance(report.get(part), dict) for part in ("metrics", "checks")):
        raise UserError(f"{report_path}: damaged (no metrics or checks to compare); {rewrite}")
    weights = [run_dir / TRAIN_DIR / name for name in ("adapter_config.json", "config.json")]
    if max((p.stat().st_mtime for p in weights if p.is_file()), default=0) > report_path.stat().st_mtime:
        raise UserError(f"{report_path} is older than the run's weights (trained again since?): {again}")
    worse = failures(report, gate.metric_drop, gate.share_worse)
    if worse:
        raise UserError(f"the export gate stops {run_dir.name}: on {report.get('rows')} held-out questions its latest "
                        "evaluation shows the tuned model worse than the base:\n  " + "\n  ".join(worse) +
                        "\nTrain it better, widen export.gate in the spec, or export anyway with --force")
    print(f"export gate: {run_dir.name} is no worse than the base on {report.get('rows')} held-out questions "
          f"({report_path})")
