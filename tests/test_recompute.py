"""Results anyone can recompute (python -m zhouyi.evaluation.recompute): every interval a results file prints is
recomputed from the per-question numbers it carries; a changed interval, a changed score or a file without numbers is
caught."""

import json
import random

import pytest

from tests.conftest import REPO
from zhouyi.evaluation import recompute, stats


def table() -> dict:
    rng = random.Random(3)
    base = [rng.uniform(5, 30) for _ in range(40)]
    tuned = [b + rng.uniform(-2, 9) for b in base]
    loops_a, loops_b = [rng.random() < 0.5 for _ in base], [rng.random() < 0.1 for _ in base]
    return {"settings": {"seed": 0},
            "per_question": {"base": {"rouge-l": base, "loops": loops_a},
                             "tuned": {"rouge-l": tuned, "loops": loops_b}},
            "comparisons": [{"a": "base", "b": "tuned", "metrics": {"rouge-l": stats.compare_scores(base, tuned)},
                             "shares": {"loops": stats.compare_shares(loops_a, loops_b, False)}}]}


def test_printed_intervals_are_recomputed_and_a_changed_one_is_caught(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"table": table()}))
    assert recompute.main([str(good)]) == 0 and "2 of 2 intervals match" in capsys.readouterr().out
    tampered = table()
    tampered["comparisons"][0]["metrics"]["rouge-l"]["low"] -= 1.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tampered))
    assert recompute.main([str(bad)]) == 1 and "DIFFERS tuned vs base: rouge-l" in capsys.readouterr().out
    score = table()
    score["per_question"]["tuned"]["rouge-l"][0] += 400  # one question's score changed after the fact
    (tmp_path / "score.json").write_text(json.dumps(score))
    assert recompute.main([str(tmp_path / "score.json")]) == 1


def test_a_file_without_per_question_numbers_says_it_cannot_be_recomputed(capsys):
    assert recompute.main([str(REPO / "bench" / "results" / "proof-3seeds-2026-12-03.json")]) == 2
    assert "no per-question numbers" in capsys.readouterr().err


def test_every_committed_proof_with_its_numbers_recomputes():
    found = [p for p in sorted((REPO / "bench" / "results").glob("proof-*.json"))
             if "draws" in json.loads(p.read_text(encoding="utf-8"))]
    if not found:
        pytest.skip("no proof with per-question numbers is committed yet (make proof writes one)")
    for path in found:
        assert recompute.main([str(path)]) == 0, path
