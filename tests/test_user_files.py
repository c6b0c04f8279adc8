"""The one reader of a file the user names (zhouyi.user_files): each kind of bad file is said one way — the flag or
field, the file, what is wrong, how to mend it — by every command that reads one."""

import pytest

from tests.conftest import cli, write_json
from zhouyi.errors import UserError
from zhouyi.user_files import read_json, read_text, read_yaml_node

KINDS = {  # what the file is -> (how to make it, what is said)
    "missing": (None, "does not exist"),
    "a folder": ("folder", "is a folder, not a file"),
    "not UTF-8": (b"\xff\xfe\xc3(", "is not UTF-8 text (byte 0)"),
    "not JSON": (b"{ nope", "is not JSON (line 1: "),
    "not YAML": (b"key: [unclosed\n", "is not YAML (line 2: "),
    "nested too deep": (b"[" * 100_000, "is nested too deep to read"),
}


def make(tmp_path, kind):
    path = tmp_path / "users-file"
    how = KINDS[kind][0]
    if how == "folder":
        path.mkdir()
    elif how is not None:
        path.write_bytes(how)
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_bad_file_is_said_one_way(tmp_path, kind):
    path = make(tmp_path, kind)
    read = {"not YAML": read_yaml_node}.get(kind, read_json)
    with pytest.raises(UserError) as caught:
        read(path, "--some-flag", "give the file --some-flag takes")
    said = str(caught.value)
    assert said.startswith(f"--some-flag: {path} {KINDS[kind][1]}")
    assert said.endswith("; give the file --some-flag takes")


def test_a_good_file_is_read_as_it_is(tmp_path):
    write_json(tmp_path / "ok.json", {"梦": "蛇"})
    assert read_json(tmp_path / "ok.json", "x", "y") == {"梦": "蛇"}
    assert read_text(tmp_path / "ok.json", "x", "y") == '{"梦": "蛇"}'


@pytest.mark.parametrize("command, flag", [
    (["data", "clean", "data/zhougong_demo.json", "-o", "data/x.json", "--templates", "{f}"], "data.clean.templates"),
    (["data", "clean", "data/zhougong_demo.json", "-o", "data/x.json", "--rules-file", "{f}"],
     "data.clean.rules_files"),
    (["data", "rewrite", "-i", "data/zhougong_demo.json", "--teacher-with", "{f}", "--dry-run"], "--teacher-with"),
    (["estimate", "zhougong-lora", "--hardware", "h100", "--measured", "{f}"], "--measured"),
])
@pytest.mark.parametrize("kind", ["missing", "a folder", "not UTF-8"])
def test_every_command_that_reads_a_users_file_says_it_the_same_way(project, command, flag, kind):
    path = make(project, kind)
    result = cli(*[a.replace("{f}", path.name) for a in command], cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{flag}: {path.name} {KINDS[kind][1]}" in result.stderr, result.stderr
