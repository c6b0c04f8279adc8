"""The house rules, checked on the source: no import cycle, one module starts processes, heavy imports only in the
child entry points (or inside the functions that need them)."""

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "zhouyi"
HEAVY = ("torch", "transformers", "llamafactory", "modelscope", "huggingface_hub", "peft", "datasets")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body if top_level_only else ast.walk(tree):
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


def test_only_process_py_starts_processes():
    starters = sorted(name for name, path in modules().items()
                      if {"subprocess", "multiprocessing", "os.system"} & imports(path)
                      and not name.startswith("zhouyi.child."))
    assert starters == ["zhouyi.process"]


def test_heavy_packages_are_imported_at_the_top_only_by_child_entry_points():
    for name, path in modules().items():
        heavy = {m for m in imports(path, top_level_only=True) if m.split(".")[0] in HEAVY}
        assert not heavy or name.startswith("zhouyi.child."), f"{name} imports {sorted(heavy)} at the top"
