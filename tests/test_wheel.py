"""`pip install .` (not editable) into a fresh virtualenv, then `zhouyi render` from another folder."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_wheel_carries_templates_and_presets(tmp_path: Path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True)
    (wheel,) = dist.glob("zhouyi-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    # render needs only the light dependencies; the heavy ones (torch, llamafactory) are not imported
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True)
    subprocess.run([*pip, "pydantic>=2.6,<3", "jinja2>=3.1", "pyyaml>=6"], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([str(venv / "bin" / "zhouyi"), "render", "zhougong-lora", "-o", "out"],
                            cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    train = yaml.safe_load((elsewhere / "out" / "train.yaml").read_text())
    assert train["model_name_or_path"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert train["dataset_dir"] == str(elsewhere / "data")
    presets = subprocess.run([str(venv / "bin" / "zhouyi"), "presets"], cwd=elsewhere, capture_output=True, text=True)
    assert "tiny-cpu" in presets.stdout
    # every subpackage ships, with its data files
    check = ("from zhouyi.archs import arch_config; import zhouyi.speed.runner, zhouyi.child.smoke, zhouyi.cli, "
             "zhouyi.data.pipeline, zhouyi.preflight.estimate, zhouyi.serve.webui; "
             "print(arch_config('Qwen/Qwen2.5-1.5B-Instruct')['num_hidden_layers'])")
    shipped = subprocess.run([str(venv / "bin" / "python"), "-c", check], cwd=elsewhere, capture_output=True, text=True)
    assert shipped.stdout.strip() == "28", shipped.stderr
