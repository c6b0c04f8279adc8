"""The quality gate on export: a run is exported only when its latest `zhouyi eval` does not show the tuned model
worse than the base (beyond the spec's `export.gate` margins, by the 95% intervals) on the held-out metrics, the
persona's voice and the degeneration checks, nor drifted or bleeding into general prompts. A model that loops or
lost its voice should not leave the machine by accident; a model that only looks worse by noise is not stopped."""

from __future__ import annotations

from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.evaluation.checks import CHECKS
from zhouyi.spec import ExportGateSpec, JobSpec

GATED_METRICS = ("rouge-l", "bleu-4")  # of LLaMA-Factory's scores (evaluation.answers.METRICS), the gated: points


def failures(report: dict, gate: ExportGateSpec) -> list[str]:
    """One line per measure on which the tuned model is worse than the base and the 95% interval says so, beyond
    the spec's margin; an interval that includes no difference blocks nothing (noise alone neither blocks nor
    passes), and too few questions to give an interval is a failure of its own."""
    found = next((c for c in report.get("comparisons", []) if (c["a"], c["b"]) == ("base", "tuned")), None)
    if found is None:
        return ["the evaluation holds no per-question scores (an older zhouyi wrote it): run `zhouyi eval` again"]
    if "too_few" in found:
        return [f"{found['too_few']}, so noise cannot be told from a worse model: evaluate more questions"]
    lines = []
    for name in GATED_METRICS:
        got = found["metrics"].get(name)
        if got and got["high"] < -gate.metric_drop:
            lines.append(f"{name} {got['b']:.1f} against the base's {got['a']:.1f}: change {got['diff']:+.1f}, 95% "
                         f"interval [{got['low']:+.1f}, {got['high']:+.1f}], all of it below the allowed drop "
                         f"{gate.metric_drop}")
    for name in (check.name for check in CHECKS if check.gated):  # shares of answers
        got = found["shares"].get(name)
        if got and got["verdict"] == "worse" and abs(got["diff"]) > gate.share_worse + 1e-9:
            lines.append(f"{name} {got['b']['share']:.0%} of answers against the base's {got['a']['share']:.0%}: "
                         f"change {got['diff'] * 100:+.0f} pts, 95% interval [{got['low'] * 100:+.0f}, "
                         f"{got['high'] * 100:+.0f}] pts, McNemar p {got['mcnemar_p']:.3f} (allowed "
                         f"{gate.share_worse:.0%} worse)")
    forgot = report.get("forgetting")
    if forgot:
        drift, bleed = forgot["drift"], forgot["bleed"]
        if "low" in drift and drift["low"] > gate.max_drift:
            lines.append(f"drift {drift['mean']:+.3f} nats per token on {forgot['prompts']} general prompts, 95% "
                         f"interval [{drift['low']:+.3f}, {drift['high']:+.3f}], all of it above the allowed "
                         f"{gate.max_drift} (export.gate.max_drift): tuning moved the model away from everything "
                         "else; mix a general dataset in (data.mix_strategy) or train less")
        if "low" in bleed.get("b", {}) and bleed["b"]["low"] > gate.max_bleed:
            lines.append(f"domain bleed {bleed['b']['share']:.0%} of general answers talk about dreams or omens or "
                         f"take the persona, 95% interval [{bleed['b']['low']:.0%}, {bleed['b']['high']:.0%}], all "
                         f"of it above the allowed {gate.max_bleed:.0%} (export.gate.max_bleed)")
    return lines


def check(spec: JobSpec, run_dir: Path) -> str:
    """The decision in words when the run passes, or a UserError with the numbers and the ways on;
    `export.gate.enabled: false` skips it."""
    gate = spec.export.gate
    if not gate.enabled:
        return "disabled (export.gate.enabled: false)"
    from zhouyi.evaluation.evaluate import latest_report

    report_path, report, stale = latest_report(run_dir)
    again = f"run `zhouyi eval --run {run_dir}` first, or export anyway with --skip-gate"
    if not report:
        raise UserError(f"{run_dir.name} has no evaluation, and the export gate needs one to compare the tuned model "
                        f"with the base: {again}")
    if not all(isinstance(report.get(part), dict) for part in ("metrics", "checks")):
        raise UserError(f"{report_path}: damaged (no metrics or checks to compare); run `zhouyi eval --run {run_dir}` "
                        "again to rewrite it")
    if stale:
        raise UserError(f"{report_path} is older than the run's weights (trained again since?): {again}")
    worse = failures(report, gate)
    if worse:
        raise UserError(f"the export gate stops {run_dir.name}: on {report.get('rows')} held-out questions its latest "
                        "evaluation shows the tuned model worse than the base:\n  " + "\n  ".join(worse) +
                        "\nTrain it better; loosen the gate for this export (e.g. --set export.gate.metric_drop=2, "
                        "--set export.gate.share_worse=0.1); or export anyway with --skip-gate")
    decision = (f"{run_dir.name} is no worse than the base on {report.get('rows')} held-out questions, by the 95% "
                "intervals")
    print(f"export gate: {decision} ({report_path})")
    return f"passed: {decision}"
