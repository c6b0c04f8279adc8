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



@pytest.mark.slow
def test_a_run_that_evaluates_only_at_its_end_computes_the_held_out_loss_once(tiny_project):
    """transformers evaluates at the last step of a step strategy and LLaMA-Factory evaluates again after training;
    with no evaluation before the end, zhouyi renders eval_strategy "no" with do_eval, so the held-out loss (minutes
    on a real model) is computed once."""
    result = zhouyi("train", "tiny-cpu", "--set", "train.max_steps=4", "--set", "train.logging_steps=1",
                    cwd=tiny_project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (tiny_project / "runs").iterdir()
    state = json.loads((run / "train" / "trainer_state.json").read_text())
    assert not [entry for entry in state["log_history"] if "eval_loss" in entry], "no evaluation during training"
    final = json.loads((run / "train" / "eval_results.json").read_text())
    assert final["eval_loss"] > 0, "one evaluation, after training (LLaMA-Factory's do_eval)"
    from zhouyi.evaluation.evaluate import plot_loss

    assert plot_loss(run, tiny_project / "loss.png"), "the plot still shows the held-out loss, at the last step"
