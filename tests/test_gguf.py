"""`zhouyi export --gguf` and its parity check, on the tiny model through the real converter, llama.cpp and
llamafactory-cli (the real small model's GGUF is in test_real_model.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli, fake_trained_run, lay_out_project, prompts_from_gguf_and_llamafactory, zhouyi

PERSONA = "你是周文王，精通《周易》与解梦之道。请以周文王的口吻，为来访者解释梦境的寓意。"


@pytest.fixture(scope="session")
def gguf_run(tmp_path_factory, tiny_model) -> tuple[Path, Path]:
    """A tiny run of its own (other tests export the shared one), merged: (project, run)."""
    project = lay_out_project(tmp_path_factory.mktemp("gguf"), tiny_model)
    trained = zhouyi("train", "tiny-cpu", "--set", "train.max_steps=30",
                     "--set", "export.gguf.quantized_min_exact_match=0", cwd=project)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run,) = (project / "runs").iterdir()
    merged = zhouyi("export", "--run", str(run), cwd=project)
    assert merged.returncode == 0, merged.stderr[-3000:]
    return project, run


def gguf_fields(path: Path) -> dict:
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields
    return {k: fields[k].contents() for k in fields if not k.startswith("tokenizer.ggml.") or k.endswith(".pre")}


@pytest.mark.slow
@pytest.mark.needs("gguf")
def test_the_gguf_carries_the_persona_and_answers_as_the_adapter(gguf_run):
    import llama_cpp
    from transformers import AutoTokenizer

    project, run = gguf_run
    result = zhouyi("export", "--run", str(run), "--gguf", "f32", cwd=project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = run / "merged-gguf-f32"
    record = json.loads((folder / "gguf.json").read_text())
    gguf = folder / record["file"]
    assert record["file"] == "tiny-cpu-f32.gguf" and gguf.stat().st_size == record["bytes"] > 100_000
    meta = gguf_fields(gguf)
    assert meta["tokenizer.ggml.pre"] == "gpt-2", "the tiny tokenizer's pre-tokenizer, told to the converter"
    assert f"set system_message = '{PERSONA}'" in meta["tokenizer.chat_template"], "the persona is the default"
    assert meta["zhouyi.persona"] == PERSONA and meta["zhouyi.template"] == "qwen"

    # llama.cpp reads the GGUF's tokenizer as the trained one encodes, and its template as LLaMA-Factory's turns
    llm = llama_cpp.Llama(str(gguf), vocab_only=True, verbose=False)
    tokenizer = AutoTokenizer.from_pretrained(run / "merged")
    text = "梦见蛇盘在屋梁上，是什么预兆？ I've 333 dreams."
    assert llm.tokenize(text.encode(), add_bos=False, special=False) == tokenizer.encode(text)

    report = json.loads((run / "parity" / "report.json").read_text())
    by_name = {r["runtime"]: r for r in report["results"]}
    assert set(by_name) == {"merged (transformers)", "GGUF f32 (llama.cpp)"}
    assert by_name["merged (transformers)"]["min_exact_match"] == 0.9
    assert by_name["GGUF f32 (llama.cpp)"]["min_exact_match"] == 0.5
    for r in by_name.values():
        assert r["passed"] and r["exact_match"] >= r["min_exact_match"], r
        assert r["same_prompt_tokens"] == r["questions"] == 8, "the very prompt tokens LLaMA-Factory trained on"
    assert "| GGUF f32 (llama.cpp) | " in result.stdout, "the table is shown"
    ours, theirs = prompts_from_gguf_and_llamafactory(gguf, run / "merged", "qwen", PERSONA, report["questions"])
    assert ours == theirs, "llama-cpp-python's chat path asks with the very tokens LLaMA-Factory trained on"
    merged = json.loads((run / "parity" / "answers.json").read_text())["merged"]["answers"]
    assert [a["prompt_ids"] for a in merged] == theirs, "the merge was asked with them too"

    modelfile = (folder / "Modelfile").read_text()
    assert "FROM ./tiny-cpu-f32.gguf" in modelfile and f'SYSTEM """{PERSONA}"""' in modelfile
    assert 'TEMPLATE """{{ if .System }}<|im_start|>system' in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "PARAMETER temperature 0" in modelfile, "greedy, as the spec's infer section asks and eval judged"

    again = zhouyi("export", "--run", str(run), "--gguf", "f32", cwd=project)
    assert again.returncode == 2 and "not empty; pass --force" in again.stderr
    assert (folder / record["file"]).stat().st_size == record["bytes"], "the first export is untouched"


@pytest.mark.slow
@pytest.mark.needs("gguf")
def test_a_quantized_gguf_is_reported_against_its_own_threshold(gguf_run):
    project, run = gguf_run
    result = zhouyi("export", "--run", str(run), "--gguf", "q4_k_m", cwd=project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((run / "parity" / "report.json").read_text())
    q4 = next(r for r in report["results"] if r["runtime"] == "GGUF q4_k_m (llama.cpp)")
    assert q4["min_exact_match"] == 0, "export.gguf.quantized_min_exact_match, set to 0 for this run"
    assert q4["passed"] and len(q4["first_difference"]) == q4["questions"] == 8
    assert [r["runtime"] for r in report["results"]] == ["merged (transformers)", "GGUF q4_k_m (llama.cpp)"]

    f16 = zhouyi("export", "--run", str(run), "--gguf", "f16", cwd=project)
    assert f16.returncode == 0, f16.stdout[-3000:] + f16.stderr[-3000:]
    assert "answers of the last check reused" in f16.stdout, "the adapter and the merge are asked once"
    sizes = {t: json.loads((run / f"merged-gguf-{t}" / "gguf.json").read_text())["bytes"] for t in ("f16", "q4_k_m")}
    assert sizes["q4_k_m"] < sizes["f16"] and (run / "merged-gguf-q4_k_m" / "tiny-cpu-q4_k_m.gguf").is_file()
    f16_result = json.loads((run / "parity" / "report.json").read_text())["results"][1]
    assert f16_result["runtime"] == "GGUF f16 (llama.cpp)" and f16_result["min_exact_match"] == 0.5


@pytest.mark.slow
@pytest.mark.needs("gguf")
def test_the_parity_check_fails_a_gguf_with_the_base_tokenizers_template(gguf_run):
    """The hand fix users make: the merged folder's own chat template put into the GGUF (the base's default
    system prompt, not the persona). The check names the runtime, why, and the first differing answers."""
    project, run = gguf_run
    made = zhouyi("export", "--run", str(run), "--gguf", "f32", "--force", cwd=project)
    assert made.returncode == 0, made.stderr[-3000:]
    gguf = run / "merged-gguf-f32" / "tiny-cpu-f32.gguf"
    broken = gguf.with_name("broken.gguf")
    subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(gguf), str(broken),
                    "--chat-template-file", str(run / "merged" / "chat_template.jinja"), "--force"],
                   check=True, capture_output=True, input="y\n", text=True)
    broken.replace(gguf)

    result = zhouyi("export", "--run", str(run), "--check", cwd=project)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "parity check failed for GGUF f32 (llama.cpp)" in result.stderr
    assert "not the tokens LLaMA-Factory trained on" in result.stderr
    assert "the persona is not in its prompt when no system prompt is sent" in result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((run / "parity" / "report.json").read_text())
    gguf_result = next(r for r in report["results"] if r["runtime"] == "GGUF f32 (llama.cpp)")
    assert not gguf_result["passed"] and gguf_result["same_prompt_tokens"] == 0 and not gguf_result["persona"]
    merged_result = next(r for r in report["results"] if r["runtime"] == "merged (transformers)")
    assert merged_result["passed"], "the merge itself still answers as the adapter"


def test_gguf_export_refuses_a_run_with_no_merge(project):
    run = fake_trained_run(project, "tiny-cpu")
    result = cli("export", "--run", str(run), "--gguf", cwd=project)
    assert result.returncode == 2 and "run `zhouyi export` first (without --gguf)" in result.stderr
    assert not (run / "merged-gguf-f16").exists()


def test_gguf_export_names_the_packages_and_the_compile_time(project, monkeypatch):
    import zhouyi.export.gguf

    monkeypatch.setattr(zhouyi.export.gguf, "dist_version", lambda name: None if name == "llama-cpp-python" else "1")
    run = fake_trained_run(project, "tiny-cpu")
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    result = cli("export", "--run", str(run), "--gguf", "q4_k_m", cwd=project)
    assert result.returncode == 2 and "llama-cpp-python" in result.stderr
    assert "pip install -e '.[gguf]'" in result.stderr and "compiles llama.cpp" in result.stderr
    assert not (run / "merged-gguf-q4_k_m").exists(), "refused before anything is written"


@pytest.mark.needs("gguf")
def test_gguf_export_of_an_architecture_the_converter_lacks_writes_nothing(project):
    run = fake_trained_run(project, "tiny-cpu")
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text(json.dumps({"architectures": ["DreamWeaverForCausalLM"]}))
    result = zhouyi("export", "--run", str(run), "--gguf", cwd=project)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "does not support the architecture DreamWeaverForCausalLM" in result.stderr
    assert "Traceback" not in result.stderr and not (run / "merged-gguf-f16").exists()


def test_gguf_and_quantize_are_separate_steps(project):
    run = fake_trained_run(project, "tiny-cpu")
    result = cli("export", "--run", str(run), "--gguf", "--quantize", "4", cwd=project)
    assert result.returncode == 2 and "separate steps" in result.stderr


def test_the_parity_verdict_names_each_way_an_export_can_fail():
    """parity.compare on answers written by hand: a runtime that never ends an answer fails only when the merge
    does end its answers (2 training steps teach no ending, and then nothing is to blame on the export)."""
    from zhouyi.export.parity import Runtime, compare

    def asked(texts, ended, prompts=((1, 2),) * 3):
        return [{"text": t, "ended": e, "prompt_ids": list(p)} for t, e, p in zip(texts, ended, prompts, strict=True)]

    reference = ["蛇主财。", "水主智。", "火主礼。"]
    trained = [[1, 2]] * 3
    same = compare(reference, trained, 3, Runtime("GGUF f16", 0.5, asked(reference, [True] * 3)))
    assert same["passed"] and same["exact_match"] == 1.0 and same["ended"] == 3 and same["first_differing"] is None

    endless = compare(reference, trained, 3, Runtime("GGUF f16", 0.5, asked(reference, [False] * 3)))
    assert not endless["passed"] and endless["problems"] == ["it never ends an answer"]
    merge_neither = compare(reference, trained, 0, Runtime("GGUF f16", 0.5, asked(reference, [False] * 3)))
    assert merge_neither["passed"], "the merge never ends either: not the export's fault"

    other = ["蛇主财。", "水主仁。", "土主信。"]
    answers = asked(other, [True] * 3, [(1, 2), (1, 3), (1, 2)])
    wrong = compare(reference, trained, 3, Runtime("GGUF q4_k_m", 0.9, answers, persona_ok=False))
    assert wrong["exact_match"] == round(1 / 3, 3) and wrong["first_difference"] == [None, 2, 0]
    assert wrong["same_prompt_tokens"] == 2 and wrong["first_differing"]["question"] == 1
    assert wrong["problems"] == ["33% of answers match the adapter's, below 90%",
                                 "1 prompt(s) are not the tokens LLaMA-Factory trained on (another chat template or "
                                 "tokenizer)", "the persona is not in its prompt when no system prompt is sent"]
