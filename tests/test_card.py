"""The evidence travels with the model (issue 38): `zhouyi export` writes a model card that huggingface_hub reads
without a warning, whose model-index is the run's held-out evaluation, and a provenance.json that `zhouyi verify`
recomputes: a changed weight, data file or claimed score is named, a folder zhouyi did not write is exit 2."""

import warnings

import pytest

from tests.conftest import cli


@pytest.fixture
def exported(exported_run):
    """The session's run, evaluated on 4 questions and exported through its gate: (project, run, merged)."""
    project, run, _ = exported_run
    return project, run, run / "merged"


@pytest.mark.slow
def test_the_card_reads_as_the_hub_reads_it_and_quotes_the_evaluation(exported):
    import json

    from huggingface_hub import ModelCard

    project, run, merged = exported
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        card = ModelCard.load(merged / "README.md")
    report = json.loads((run / "eval" / "report.json").read_text(encoding="utf-8"))
    tuned = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert tuned["rouge-l"] == report["metrics"]["tuned"]["rouge-l"]
    base = report["metrics"]["base"]["rouge-l"]
    assert f"base {base}" in next(r.metric_name for r in card.data.eval_results if r.metric_type == "rouge-l")
    assert card.data.library_name == "transformers" and card.data.language == ["zh"]
    assert card.data.license is None and "Licence: the base model's card and config state none" in card.text
    order = ["## How to run it", "## Evaluation", "## Data", "## Training", "## Limitations", "## Reproduce"]
    assert [card.text.index(h) for h in order] == sorted(card.text.index(h) for h in order)
    assert "Export gate:" in card.text and "zhougong_demo.json" in card.text


@pytest.mark.slow
def test_verify_names_what_changed(exported):
    project, run, merged = exported
    ok = cli("verify", str(merged), cwd=project)
    assert ok.returncode == 0 and "nothing differs" in ok.stdout, ok.stdout
    for path, what in ((merged / "model.safetensors", "model.safetensors"),
                       (project / "data" / "zhougong_demo.json", "zhougong_demo.json")):
        original = path.read_bytes()
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        try:
            found = cli("verify", str(merged), cwd=project)
            assert found.returncode == 1 and any(what in line and "DIFFERS" in line for line in
                                                 found.stdout.splitlines()), found.stdout
        finally:
            path.write_bytes(original)
    card = merged / "README.md"
    original = card.read_text(encoding="utf-8")
    claimed = next(line for line in original.splitlines() if line.strip().startswith("value:"))
    card.write_text(original.replace(claimed, claimed.split(":")[0] + ": 99.99", 1), encoding="utf-8")
    try:
        found = cli("verify", str(merged), cwd=project)
        assert found.returncode == 1 and "measured" in found.stdout and "99.99" in found.stdout
    finally:
        card.write_text(original, encoding="utf-8")


def test_verify_refuses_a_folder_zhouyi_did_not_write(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    result = cli("verify", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "no provenance.json" in result.stderr


def test_a_run_without_an_evaluation_is_said_plainly(tmp_path):
    from zhouyi.export.card import eval_summary

    run = tmp_path / "run"
    (run / "train").mkdir(parents=True)
    summary, note = eval_summary(run)
    assert summary is None and "exported without an evaluation" in note
    (run / "eval").mkdir()
    (run / "eval" / "report.json").write_text("{not json")
    summary, note = eval_summary(run)
    assert summary is None and "damaged" in note
