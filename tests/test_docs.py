"""The docs cannot drift from the code: the CLI and spec references are what `make docs` generates, and every
page the README links to exists."""

import re
from pathlib import Path

import pytest

from zhouyi import reference

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name, generate", [("cli.md", reference.cli_reference),
                                            ("spec.md", reference.spec_reference)])
def test_the_committed_reference_is_what_the_code_generates(name, generate):
    committed = (REPO / reference.DOCS / name).read_text(encoding="utf-8")
    assert committed == generate(), f"docs/reference/{name} is stale: run `make docs` and commit it"


def test_every_verb_and_spec_section_is_in_the_references():
    cli, spec = reference.cli_reference(), reference.spec_reference()
    for verb in ("train", "eval", "export", "api", "data clean", "data pairs", "webui"):
        assert f"## zhouyi {verb}\n" in cli
    for field in ("model.template", "train.learning_rate", "infer.max_prompt_chars", "export.gate.metric_drop",
                  "launch.deepspeed", "data.datasets[].file_name"):
        assert f"| `{field}` |" in spec


def test_the_readme_links_only_to_pages_that_exist():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs|bench|data|templates)/[^)#]+)", readme)
    assert links, "the README links to its docs"
    assert [link for link in links if not (REPO / link).exists()] == []


def readme_commands(tool: str) -> list[list[str]]:
    """Each `tool ...` line of the README's shell blocks, as argv (environment assignments and comments dropped)."""
    import shlex

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            words = [w for w in shlex.split(line, comments=True) if not re.match(r"^[A-Z_]+=", w)]
            words = words[:words.index(">")] if ">" in words else words  # a redirection is the shell's
            if words[:1] == [tool]:
                commands.append(words[1:])
    return commands


def test_every_zhouyi_command_in_the_readme_parses():
    from zhouyi.cli import parse

    commands = readme_commands("zhouyi")
    assert len(commands) >= 20
    for argv in commands:
        try:
            parse(argv)
        except SystemExit as exc:
            raise AssertionError(f"README: `zhouyi {' '.join(argv)}` does not parse") from exc


def test_every_make_target_in_the_readme_exists():
    targets = set(re.findall(r"^([a-z-]+):", (REPO / "Makefile").read_text(encoding="utf-8"), re.M))
    used = {argv[0] for argv in readme_commands("make")}
    assert used and used <= targets, used - targets
