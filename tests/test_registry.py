import json
from pathlib import Path

import pytest

from zhouyi.errors import UserError
from zhouyi.registry import merge_entries, read_registry

OURS = {"zhougong": {"file_name": "zhougong.json", "formatting": "alpaca",
                     "columns": {"prompt": "instruction", "query": "input", "response": "output"}}}


def test_adds_entries_and_keeps_everyone_elses(tmp_path: Path):
    path = tmp_path / "dataset_info.json"
    other = {"alpaca_zh_demo": {"file_name": "alpaca_zh_demo.json"}, "odd": {"hf_hub_url": "x/y", "extra": [1]}}
    path.write_text(json.dumps(other, indent=4))
    result = merge_entries(path, OURS)
    assert result.added == ["zhougong"]
    assert read_registry(path) == {**other, **OURS}
    assert list(tmp_path.iterdir()) == [path], "no temp file left behind"


def test_same_entry_again_is_unchanged_and_not_rewritten(tmp_path: Path):
    path = tmp_path / "dataset_info.json"
    merge_entries(path, OURS)
    before = path.stat().st_mtime_ns
    result = merge_entries(path, OURS)
    assert result.unchanged == ["zhougong"] and not result.changed
    assert path.stat().st_mtime_ns == before


def test_columns_update_in_place_but_repointing_needs_force(tmp_path: Path):
    path = tmp_path / "dataset_info.json"
    merge_entries(path, OURS)
    new_cols = {"zhougong": {**OURS["zhougong"], "columns": {**OURS["zhougong"]["columns"], "system": "system"}}}
    assert merge_entries(path, new_cols).updated == ["zhougong"]
    moved = {"zhougong": {**OURS["zhougong"], "file_name": "other.json"}}
    text = path.read_text()
    with pytest.raises(UserError, match="refusing to repoint.*--force"):
        merge_entries(path, moved)
    assert path.read_text() == text
    merge_entries(path, moved, force=True)
    assert read_registry(path)["zhougong"]["file_name"] == "other.json"


def test_malformed_registry_names_file_and_line_and_is_kept(tmp_path: Path):
    path = tmp_path / "dataset_info.json"
    broken = '{\n  "a": {"file_name": "a.json"},\n  "b": \n}\n'
    path.write_text(broken)
    with pytest.raises(UserError, match=r"dataset_info.json:4:1: not valid JSON"):
        merge_entries(path, OURS)
    assert path.read_text() == broken


def test_registry_of_the_wrong_shape(tmp_path: Path):
    path = tmp_path / "dataset_info.json"
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="expected a JSON object"):
        read_registry(path)


def _register_many(args) -> None:
    path, worker = args
    for i in range(15):
        merge_entries(Path(path), {f"w{worker}_{i}": {"file_name": f"w{worker}_{i}.json"}})


def test_concurrent_writers_lose_no_entry(tmp_path: Path):
    """Six processes registering at once (as six `zhouyi register` would): every entry arrives."""
    import multiprocessing

    path = tmp_path / "dataset_info.json"
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        pool.map(_register_many, [(str(path), w) for w in range(6)])
    assert len(json.loads(path.read_text())) == 6 * 15


def test_a_symlinked_registry_stays_a_symlink(tmp_path: Path):
    real = tmp_path / "shared" / "dataset_info.json"
    real.parent.mkdir()
    real.write_text('{"mine": {"file_name": "mine.json"}}')
    link = tmp_path / "dataset_info.json"
    link.symlink_to(real)
    merge_entries(link, {"zhougong": {"file_name": "zhougong.json"}})
    assert link.is_symlink() and set(json.loads(real.read_text())) == {"mine", "zhougong"}
