"""`zhouyi webui` in a real headless Chromium: LlamaBoard opens with the spec's model path filled in, its
dataset list offers the spec's datasets, and the trained run is offered as a checkpoint."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import cli, wait_for_http
from zhouyi.serve.server import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.mark.slow
@pytest.mark.needs("chromium", "playwright")
def test_webui_opens_with_the_spec_filled_in(trained_run, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    project, run, _ = trained_run
    model_path = str(project / "models" / "tiny-qwen2")
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "zhouyi", "webui", "tiny-cpu", "--port", str(port)], cwd=project,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, board)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            expect(page.get_by_label("模型路径")).to_have_value(model_path, timeout=60_000)
            dataset = page.get_by_label("数据集").first
            dataset.click()
            expect(page.get_by_role("option", name="zhougong_demo", exact=True)).to_be_visible(timeout=30_000)
            expect(page.get_by_role("option", name="zhougong_demo_eval", exact=True)).to_be_visible()
            page.screenshot(path=tmp_path / "webui.png", full_page=True)
            page.keyboard.press("Escape")
            checkpoints = page.get_by_label("检查点路径")
            checkpoints.click()
            expect(page.get_by_role("option", name=run.name, exact=True)).to_be_visible(timeout=30_000)
            page.keyboard.press("Escape")
            # the spec's training settings, one pick and one press away
            config = page.get_by_label("配置路径")
            config.click()
            page.get_by_role("option", name="zhouyi-tiny-cpu.yaml", exact=True).click()
            page.get_by_role("button", name="载入训练参数").click()
            textbox = lambda label: page.get_by_role("textbox", name=re.compile(f"^{label} "))  # noqa: E731
            expect(textbox("学习率")).to_have_value("0.01", timeout=30_000)
            expect(textbox("训练轮数")).to_have_value("20.0")
            page.screenshot(path=tmp_path / "webui-loaded.png", full_page=True)
            browser.close()
    finally:
        board.terminate()
        output = board.communicate(timeout=60)[0]
    print(f"screenshot for a person to look at: {tmp_path / 'webui.png'}")  # what is shown is asserted above
    assert f"model Custom at {model_path}" in output and "127.0.0.1" in output


def test_webui_folder_keeps_the_users_choices(tiny_project):
    folder = tiny_project / ".zhouyi" / "webui" / "tiny-cpu"
    (folder / "llamaboard_cache").mkdir(parents=True)
    (folder / "llamaboard_cache" / "user_config.yaml").write_text("lang: en\npath_dict: {Qwen2-7B: /m/q}\n")
    result = cli("webui", "tiny-cpu", "--dry-run", cwd=tiny_project)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((folder / "llamaboard_cache" / "user_config.yaml").read_text())
    assert config["lang"] == "en", "the user's language stays"
    assert config["path_dict"] == {"Qwen2-7B": "/m/q", "Custom": str(tiny_project / "models" / "tiny-qwen2")}
    assert config["last_model"] == "Custom"
    training = yaml.safe_load((folder / "llamaboard_config" / "zhouyi-tiny-cpu.yaml").read_text())
    assert training["train.dataset"] == ["zhougong_demo"] and training["train.learning_rate"] == "0.01"
    assert training["train.lora_rank"] == 8 and training["train.compute_type"] == "fp32"
    registry = json.loads((folder / "data" / "dataset_info.json").read_text())
    assert registry["zhougong_demo"]["file_name"] == str(tiny_project / "data" / "zhougong_demo.json")
    assert "GRADIO_SERVER_NAME=127.0.0.1" in result.stdout and "llamafactory-cli webui" in result.stdout


def test_a_chained_run_is_offered_on_the_model_it_started_from(tiny_project):
    from tests.conftest import fake_trained_run

    run = fake_trained_run(tiny_project, "tiny-cpu")
    (run / "start-model").mkdir()  # as `zhouyi train --from` leaves it: the earlier run merged
    result = cli("webui", "tiny-cpu", "--run", str(run), "--dry-run", cwd=tiny_project)
    assert result.returncode == 0, result.stderr
    assert f"model Custom at {run / 'start-model'}" in result.stdout, "its adapter was trained on the merge"
