"""What `zhouyi data clean` may overwrite, and that it checks everything before it writes anything."""

import json
from pathlib import Path

from tests.conftest import cli, write_json

BODY = "梦见蛇缠身，预示近日有意外之财。若被蛇咬，宜防小人暗算，言行须谨慎。"


def pages(tmp_path: Path, n: int = 40) -> str:
    return str(write_json(tmp_path / "pages.json",
                          [{"title": f"蛇{i}", "text": BODY.replace("蛇", f"蛇{i}")} for i in range(n)]))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_files_zhouyi_did_not_write_are_refused_without_force(tmp_path: Path):
    src = pages(tmp_path)
    (tmp_path / "notes.json").write_text("my notes\n")
    (tmp_path / "notes_eval.json").write_text("more notes\n")
    before = snapshot(tmp_path)
    refused = cli("data", "clean", src, "-o", "notes.json", "--eval-ratio", "0.3", cwd=tmp_path)
    assert refused.returncode == 2 and "notes.json" in refused.stderr and "--force" in refused.stderr
    assert snapshot(tmp_path) == before, "nothing written, the registry untouched"

    ours = cli("data", "clean", src, "-o", "data/z.json", "--eval-ratio", "0.3", cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr
    again = cli("data", "clean", src, "-o", "data/z.json", "--eval-ratio", "0.3", "--seed", "7", cwd=tmp_path)
    assert again.returncode == 0, "its own previous output is rewritten freely"
    with open(tmp_path / "data" / "z.json", "a") as fh:
        fh.write(" ")  # the user edited it since
    edited = cli("data", "clean", src, "-o", "data/z.json", cwd=tmp_path)
    assert edited.returncode == 2 and "changed since" in edited.stderr, edited.stderr
    forced = cli("data", "clean", src, "-o", "data/z.json", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and json.loads((tmp_path / "data" / "z.json").read_text())


def test_the_registry_is_never_an_output(tmp_path: Path):
    (tmp_path / "data").mkdir()
    registry = write_json(tmp_path / "data" / "dataset_info.json", {"mine": {"file_name": "mine.json"}})
    before = registry.read_bytes()
    result = cli("data", "clean", pages(tmp_path), "-o", "data/dataset_info.json", "--force", cwd=tmp_path)
    assert result.returncode == 2 and "dataset registry" in result.stderr
    assert registry.read_bytes() == before


def test_every_check_runs_before_anything_is_written(tmp_path: Path):
    src = pages(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "rep").write_text("a file, not a folder")
    cases = [
        ({"z": {"file_name": "other.json"}}, ["--report", "rep2"], "refusing to repoint"),
        ("{not json", [], "not valid JSON"),
        ({}, ["--report", "rep"], "is a file"),
    ]
    for registry, flags, message in cases:
        path = data / "dataset_info.json"
        path.write_text(registry if isinstance(registry, str) else json.dumps(registry))
        before = snapshot(tmp_path)
        result = cli("data", "clean", src, "-o", "data/z.json", "--eval-ratio", "0.3", *flags, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert snapshot(tmp_path) == before, f"{message}: nothing half-written"
    assert not list(data.glob(".*.tmp")), "no staged file left behind"


def test_a_rerun_without_eval_removes_the_stale_eval_split_and_its_entry(tmp_path: Path):
    src = pages(tmp_path)
    first = cli("data", "clean", src, "-o", "data/z.json", "--eval-ratio", "0.3", cwd=tmp_path)
    assert first.returncode == 0 and (tmp_path / "data" / "z_eval.json").exists()
    registry = tmp_path / "data" / "dataset_info.json"
    assert "z_eval" in json.loads(registry.read_text())
    second = cli("data", "clean", src, "-o", "data/z.json", "--eval-ratio", "0", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert not (tmp_path / "data" / "z_eval.json").exists(), "its rows are in train now: kept, it would leak"
    assert set(json.loads(registry.read_text())) == {"z"}
    assert len(json.loads((tmp_path / "data" / "z.json").read_text())) == 40
