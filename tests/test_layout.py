"""The house rules, checked on the source: no import cycle, one module starts processes, heavy imports only in the
child entry points (or inside the functions that need them), every run-file name spelt only in zhouyi.layout, and
every child spoken to through the one contract."""

import ast
import re
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "zhouyi"
HEAVY = ("torch", "transformers", "llamafactory", "modelscope", "huggingface_hub", "peft", "datasets", "llama_cpp",
         "gguf", "convert_hf_to_gguf")
STARTERS = {"subprocess", "multiprocessing", "pty", "os.system", "os.popen", "os.fork", "os.forkpty", "os.posix_spawn",
            "os.posix_spawnp"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def top_level(tree: ast.Module):
    """The statements that run on import: the module's body, and inside its top-level if/try/with blocks (not
    inside functions or classes)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            stack += [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]
            if isinstance(node, ast.Try):
                stack += [stmt for handler in node.handlers for stmt in handler.body]


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in top_level(tree) if top_level_only else ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_import_graph_has_no_cycle():
    mods = modules()
    graph = {name: {m for m in imports(path) if m in mods and m != name} for name, path in mods.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph[name]):
            assert state.get(dep) != "open", "import cycle: " + " -> ".join([*trail, name, dep])
            if dep not in state:
                visit(dep, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def process_calls(path: Path) -> set[str]:
    """Calls that start a process without importing a module for it: os.exec*/spawn*/system/popen/fork and asyncio's
    create_subprocess_*, however they are reached (os.execv, asyncio.create_subprocess_exec, loop.subprocess_exec)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if name.startswith(("exec", "spawn")) and isinstance(node.value, ast.Name) and node.value.id == "os":
                found.add(f"os.{name}")
            elif name in ("system", "popen", "fork", "forkpty") and isinstance(node.value, ast.Name) \
                    and node.value.id == "os":
                found.add(f"os.{name}")
            elif name.startswith("create_subprocess") or name in ("subprocess_exec", "subprocess_shell"):
                found.add(name)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found |= {f"os.{a.name}" for a in node.names if a.name.startswith(("exec", "spawn", "system", "popen"))}
    return found


def test_only_process_py_starts_processes():
    starters = sorted(name for name, path in modules().items()
                      if (STARTERS & imports(path) or process_calls(path)) and not name.startswith("zhouyi.child."))
    assert starters == ["zhouyi.process"]


def test_the_process_rule_sees_every_way_of_starting_one(tmp_path):
    sample = tmp_path / "sample.py"
    for line in ("import os\nos.execvp('x', ['x'])", "import os\nos.spawnl(0, 'x')", "import pty",
                 "import asyncio\nasyncio.create_subprocess_exec('x')", "from os import execv",
                 "try:\n    import subprocess\nexcept ImportError:\n    pass"):
        sample.write_text(line + "\n")
        assert STARTERS & imports(sample) or process_calls(sample), line


def test_heavy_packages_are_imported_at_the_top_only_by_child_entry_points():
    for name, path in modules().items():
        heavy = {m for m in imports(path, top_level_only=True) if m.split(".")[0] in HEAVY}
        assert not heavy or name.startswith("zhouyi.child."), f"{name} imports {sorted(heavy)} at the top"


def test_a_heavy_import_inside_a_top_level_block_is_seen(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("try:\n    import torch\nexcept ImportError:\n    torch = None\nif True:\n    import gguf\n"
                      "def later():\n    import llama_cpp\n")
    assert imports(sample, top_level_only=True) == {"torch", "gguf"}


def run_names() -> set[str]:
    """Every name inside a run folder that zhouyi.layout owns (files, and folders with a dash)."""
    from zhouyi import layout

    names = {v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str)}
    return {n for n in names if "." in n or "-" in n} - layout_names_outside_runs()


def layout_names_outside_runs() -> set[str]:
    """The names layout owns that are not inside a run: beside the runs, in exports, in the project's folder and in
    a Hugging Face model folder."""
    from zhouyi import layout

    return {layout.COMPARE_JSON, layout.COMPARE_MD, layout.BENCH_JSON, layout.BENCH_MD, layout.BENCH_MEASURED,
            layout.NODE_SCRIPT, layout.SBATCH_SCRIPT, layout.CARD, layout.PROVENANCE, layout.PROJECT_DIR,
            layout.CONVERTED_SOURCE, layout.MODEL_CONFIG, layout.TOKENIZER_JSON, *layout.TOKENIZER_FILES,
            *layout.WEIGHTS, *layout.WEIGHT_INDEXES, layout.PREDICTIONS, layout.PREDICT_RESULTS, layout.TRAINER_STATE,
            layout.ADAPTER_CONFIG, layout.ADAPTER_WEIGHTS, layout.CHECKPOINT, layout.GENERAL_FILE, layout.EVAL_RESULTS}


def owned_names() -> set[str]:
    from zhouyi import layout

    return run_names() | layout_names_outside_runs() | {layout.MODELFILE}


FILE_NAME = re.compile(r"^[\w.{}*/-]*\w\}?\.(?:json|jsonl|yaml|yml|safetensors|bin|sh|sbatch|png|md|html|gguf|txt)$")
# file names that are not a run's, the project's or a model folder's: each says why it lives where it is
ELSEWHERE = {
    "zhouyi.data.fetch": "the three sources' files, as their repositories name them",
    "zhouyi.data.readers": "the kinds of page a user's folder holds",
    "zhouyi.data.rewrite": "the rewrite's output and teacher cache, beside the user's dataset",
    "zhouyi.data.rules": "web_noise.yaml, shipped beside it",
    "zhouyi.evaluation.forgetting": "general_prompts.json, shipped beside it",
    "zhouyi.evaluation.evaluate": "the loss plot's temporary name",
    "zhouyi.load": "a preset's file",
    "zhouyi.archs": "an architecture's file, shipped beside it",
    "zhouyi.reference": "docs/reference's pages",
    "zhouyi.spec": "the cleaned dataset's default name, in the user's data folder",
    "zhouyi.data.pipeline": "a name to suggest for the cleaned dataset",
    "zhouyi.data.pairs": "the default pairs file, beside the training data",
    "zhouyi.cli.model": "the demo dataset the tiny model's tokenizer learns from",
    "zhouyi.child.gguf_write": "the converter's intermediate f16 file, in its own temporary folder",
}


def file_names_in(path: Path):
    """(line, text) of every string literal shaped like a file name, f-strings with their fields as {...}."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pieces = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if id(node) in pieces:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        else:
            continue
        if FILE_NAME.match(text):
            yield node.lineno, text


def test_a_new_file_name_spelt_outside_layout_is_caught_whatever_it_is():
    """Not only the names layout already knows: any literal shaped like a file name (`*.json`, `*.yaml`, `*.sh`,
    an f-string such as f"{stem}.md") outside zhouyi.layout is a second owner, unless its module is one that names
    files of another kind (ELSEWHERE)."""
    offenders = [f"{module}:{line} {text!r}" for module, path in modules().items()
                 if module != "zhouyi.layout" and module not in ELSEWHERE for line, text in file_names_in(path)]
    assert not offenders, "file names outside zhouyi.layout: " + ", ".join(offenders)
    planted = Path(__file__).with_name("__planted.py")
    try:
        planted.write_text('NAME = f"{stem}-scores.jsonl"\nOTHER = "launch.sbatch"\n')
        assert [text for _, text in file_names_in(planted)] == ["{}-scores.jsonl", "launch.sbatch"]
    finally:
        planted.unlink()


RUN_FOLDERS = ("train", "eval", "pairs", "parity", "start-model")


def test_no_module_but_layout_spells_a_run_files_name():
    """A file name as a string literal (e.g. "predict.yaml"), or a run folder joined onto a path (run / "train"),
    anywhere in zhouyi but zhouyi.layout, is a second definition of the run folder."""
    names = owned_names()
    assert {"manifest.json", "train.yaml", "report.json", "gguf.json", ".zhouyi-made", "start-model", "Modelfile",
            "config.json", "generated_predictions.jsonl"} <= names
    offenders = []
    for module, path in modules().items():
        if module == "zhouyi.layout":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                offenders.append(f"{module}:{node.lineno} {node.value!r}")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) \
                    and isinstance(node.right, ast.Constant) and node.right.value in RUN_FOLDERS:
                offenders.append(f"{module}:{node.lineno} / {node.right.value!r}")
    assert not offenders, "run-folder names outside zhouyi.layout: " + ", ".join(offenders)


def test_the_names_an_export_may_not_take_are_every_name_of_the_run():
    from zhouyi import layout

    not_a_runs_own = {layout.MADE_BY_ZHOUYI, layout.TRAINER_LOG, layout.REPORT_JSON, layout.REPORT_MD,
                      layout.LOSS_PNG, layout.GGUF_RECORD, layout.JUDGE_CACHE, layout.REPORT_HTML,
                      layout.LENGTHS_PNG, layout.PARITY_ANSWERS}
    assert run_names() - not_a_runs_own <= layout.RUN_OWN_NAMES
    assert set(RUN_FOLDERS) <= layout.RUN_OWN_NAMES


def test_every_child_that_answers_zhouyi_speaks_the_one_contract():
    """A child with a job model serves it through zhouyi.child.contract; nobody reads a child's stdout by hand."""
    from zhouyi.child.jobs import ANSWERS

    for job in ANSWERS:
        source = (PACKAGE / "child" / f"{job.child}.py").read_text(encoding="utf-8")
        assert f"serve({job.__name__}" in source, f"zhouyi.child.{job.child} does not serve {job.__name__}"
        for module, path in modules().items():
            assert f'child("{job.child}"' not in path.read_text(encoding="utf-8"), \
                f"{module} starts zhouyi.child.{job.child} by hand instead of process.call_child"
