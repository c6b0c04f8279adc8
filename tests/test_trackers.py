"""Early stopping, the best checkpoint and a tracker, through a real LLaMA-Factory training of the tiny model."""

import json

import pytest

from tests.conftest import zhouyi


@pytest.mark.slow
@pytest.mark.needs("tensorboard")
def test_early_stopping_keeps_the_best_checkpoint_and_tensorboard_gets_events(tiny_project):
    # an eval every 2 steps; patience 1: the first eval loss that does not fall stops the training
    sets = ["train.max_steps=40", "train.save_steps=2", "train.report_to=tensorboard", "train.early_stopping_steps=1"]
    result = zhouyi("train", "tiny-cpu", *[a for s in sets for a in ("--set", s)], cwd=tiny_project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (tiny_project / "runs").iterdir()
    state = json.loads((run / "train" / "trainer_state.json").read_text())
    losses = [e["eval_loss"] for e in state["log_history"] if "eval_loss" in e]
    assert state["global_step"] < 40, f"stopped early: eval losses {losses}"
    assert losses[-1] >= min(losses[:-1]), "it stopped because the eval loss stopped falling"
    best = min(range(len(losses)), key=losses.__getitem__)
    assert state["best_model_checkpoint"].endswith(f"checkpoint-{2 * (best + 1)}"), "the best one is kept"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = {path.parent for path in (run / "train").rglob("events.out.tfevents.*")}
    board = EventAccumulator(str(events))
    board.Reload()
    logged = {e.step: e.value for e in board.Scalars("train/loss")}
    expected = {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}
    assert logged.keys() == expected.keys() and all(abs(logged[k] - expected[k]) < 1e-4 for k in expected), \
        "TensorBoard got the training loss LLaMA-Factory logged, step by step"

