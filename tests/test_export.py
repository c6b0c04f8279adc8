"""`zhouyi export` around LLaMA-Factory's: the Modelfile's persona, and --quantize as a second step on the merge.
(The merge itself and its smoke generation run for real in test_pipeline.)"""

import json

import pytest
import yaml

from tests.conftest import cli, fake_trained_run
from zhouyi.export import missing_quantize_packages, modelfile_with_persona

PERSONA = "你是周文王，精通《周易》与解梦之道。请以周文王的口吻，为来访者解释梦境的寓意。"


def test_quantize_refuses_a_run_with_no_merge(project):
    run = fake_trained_run(project, "tiny-cpu")
    result = cli("export", "--run", str(run), "--quantize", "4", cwd=project)
    assert result.returncode == 2 and "without --quantize first" in result.stderr


def test_quantize_renders_a_second_step_calibrated_on_our_data(project):
    run = fake_trained_run(project, "tiny-cpu")
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    result = cli("export", "--run", str(run), "--quantize", "8", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((run / "quantize.yaml").read_text())
    assert config["model_name_or_path"] == str(run / "merged") and "adapter_name_or_path" not in config
    assert config["export_quantization_bit"] == 8 and config["export_dir"] == str(run / "merged-gptq-int8")
    rows = [json.loads(line) for line in open(config["export_quantization_dataset"], encoding="utf-8")]
    assert rows and all(len(r["text"]) >= 4 * config["export_quantization_maxlen"] for r in rows)
    assert "蛇盘于梦中" in rows[0]["text"], "calibrated on the project's own answers"
    assert "llamafactory-cli export" in result.stdout and str(run / "quantize.yaml") in result.stdout


@pytest.mark.skipif(not missing_quantize_packages(), reason="optimum and gptqmodel are installed here")
def test_quantize_names_the_packages_it_needs(project):
    run = fake_trained_run(project, "tiny-cpu")
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    result = cli("export", "--run", str(run), "--quantize", "4", cwd=project)
    assert result.returncode == 2 and "pip install" in result.stderr and "gptqmodel" in result.stderr
    assert not (run / "merged-gptq-int4").exists(), "nothing started, nothing written"


def test_modelfile_gets_the_persona_once(tmp_path):
    (tmp_path / "Modelfile").write_text('FROM .\n\nPARAMETER stop "<|im_end|>"\n')
    assert modelfile_with_persona(tmp_path, PERSONA)
    assert not modelfile_with_persona(tmp_path, PERSONA), "already there: left alone"
    assert (tmp_path / "Modelfile").read_text().count(f'SYSTEM """{PERSONA}"""') == 1
