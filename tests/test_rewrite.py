"""`zhouyi data rewrite`: a teacher rewrites each cleaned answer; a rewrite that fails zhouyi's checks keeps the
original; the original stays beside every rewrite; the output registers; a stop by SIGTERM resumes without losing or
repeating a row; the key is never written or shown; bad input is named before any request."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli
from tests.endpoint_server import scripted_server
from zhouyi.data.rewrite import overlap, problem
from zhouyi.spec import RewriteSpec

SECRET = "sk-teacher-8b7d3e61f0"
ROWS = 12  # the demo rows a test rewrites


def original_of(body: dict) -> str:
    return body["messages"][-1]["content"].split("[原文]\n")[1].strip()


def teacher(body: dict) -> str:
    """A teacher whose rewrites are good, except for the dreams of a few rows: each fails one check."""
    original = original_of(body)
    prompt = body["messages"][-1]["content"]
    if "梦见蛇" in prompt:
        return original + "更多精彩内容请访问 www.example.com"
    if "梦见下雨" in prompt:
        return "吉。"
    if "梦见掉牙" in prompt:
        return "作为一个AI语言模型，" + original
    return "吾观此梦，" + original


def write_teacher(project, url, extra=""):
    (project / "teacher.yaml").write_text(f"base_url: {url}\nmodel: teacher\napi_key_env: TEACHER_KEY\n"
                                          f"requests_per_minute: 6000\n{extra}")


def rewrite(project, *more, env=None):
    return cli("data", "rewrite", "-i", "data/zhougong_demo.json", "--teacher-with", "teacher.yaml",
               "--limit", str(ROWS), *more, cwd=project, env={"TEACHER_KEY": SECRET, **(env or {})})


def test_rewrites_replace_answers_that_pass_the_checks_and_keep_the_rest(project):
    with scripted_server(teacher) as (url, _, seen):
        write_teacher(project, url)
        result = rewrite(project)
        assert result.returncode == 0, result.stderr
        assert len(seen) == ROWS and all(s["auth"] == f"Bearer {SECRET}" for s in seen)
        rows = json.loads((project / "data" / "zhougong_demo_rewritten.json").read_text())
        source = json.loads((project / "data" / "zhougong_demo.json").read_text())[:ROWS]
        assert [r["original_output"] for r in rows] == [r["output"] for r in source], "every original kept beside"
        assert [r["input"] for r in rows] == [r["input"] for r in source]
        status = {r["input"]: r["rewrite"] for r in rows}
        assert {q: s for q, s in status.items() if s != "rewritten"} == {
            "梦见蛇是什么意思？": "kept: boilerplate", "梦见下雨预示着什么？": "kept: length",
            "梦见掉牙好不好？": "kept: left the persona"}, "each failing rewrite kept out for its own reason"
        for r in rows:
            assert r["output"] == (("吾观此梦，" + r["original_output"]) if r["rewrite"] == "rewritten"
                                   else r["original_output"])
        report = json.loads((project / "out" / "rewrite-report" / "report.json").read_text())
        assert report["rows"] == ROWS and report["rewritten"] + sum(report["kept"].values()) == ROWS
        assert report["requests"] == {"sent": ROWS, "cached": 0} and report["tokens"]["this_run"] > 0
        entry = json.loads((project / "data" / "dataset_info.json").read_text())["zhougong_demo_rewritten"]
        assert entry["file_name"] == "zhougong_demo_rewritten.json" and entry["formatting"] == "alpaca"
        assert f"{report['rewritten']} rewritten" in result.stdout

        again = rewrite(project)
        assert again.returncode == 0 and len(seen) == ROWS, "a second run sends nothing"
        assert json.loads((project / "out" / "rewrite-report" / "report.json").read_text())["requests"] == {
            "sent": 0, "cached": ROWS}


def test_the_checks_on_a_rewrite():
    s, asked = RewriteSpec(), "梦见蛇是什么意思？"
    original = "梦见蛇，主财运将至，宜守不宜攻。"
    assert problem(original, "吾观此梦：梦见蛇，主财运将至，宜守不宜攻。", asked, s) is None
    assert problem(original, "", asked, s) == "empty"
    assert problem(original, "梦见蛇，主财运。本文来源：周公解梦网 www.x.com", asked, s) == "boilerplate"
    assert problem(original, "梦见蛇主财运将至主财运将至主财运将至主财运将至", asked, s) == "repetition"
    assert problem(original, "主吉。", asked, s) == "length"
    assert problem(original, "此梦主财运将至，宜守不宜攻，静待时机。", asked, s) == "keyword lost"
    assert problem(original, "作为一个AI，我认为梦见蛇主财运将至，宜守不宜攻。", asked, s) == "left the persona"
    assert problem(original, "梦见蛇，预示你要提高警觉，小心陷阱。", asked, s) == "meaning changed"
    assert overlap("梦到面包厂，要提高警觉，可能未来陷井林立。", "梦见面包厂，预示着你将获得丰厚的财运。",
                   "面包厂") == 0
    assert problem(original, "梦见蛇，预示你要提高警觉，小心陷阱。", asked, RewriteSpec(min_overlap=0)) is None


def readable(path: Path) -> bytes:
    """A process's file, or nothing when the process ended meanwhile."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_a_sigterm_mid_rewrite_resumes_without_losing_or_repeating_a_row(project):
    with scripted_server(teacher, delay=0.3) as (url, _, seen):
        write_teacher(project, url, "concurrency: 2\n")
        proc = subprocess.Popen([sys.executable, "-m", "zhouyi", "data", "rewrite", "-i", "data/zhougong_demo.json",
                                 "--teacher-with", "teacher.yaml", "--limit", str(ROWS)], cwd=project,
                                env={**os.environ, "TEACHER_KEY": SECRET}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        cache = project / "data" / "zhougong_demo_rewritten.teacher-cache.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not cache.is_file() or len(cache.read_text().splitlines()) < 4):
            time.sleep(0.05)
        assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if SECRET.encode() in readable(p)], \
            "no process on the machine has the key on its command line (ps shows them to every user)"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143 and "Traceback" not in err, err
        assert not (project / "data" / "zhougong_demo_rewritten.json").exists(), "nothing half-written"
        answered = len(cache.read_text().splitlines())
        assert 4 <= answered < ROWS
        sent_before = len(seen)

        result = rewrite(project)
        assert result.returncode == 0, result.stderr
        assert len(seen) - sent_before == ROWS - answered, "requests only for the missing rows"
        rows = json.loads((project / "data" / "zhougong_demo_rewritten.json").read_text())
        source = json.loads((project / "data" / "zhougong_demo.json").read_text())[:ROWS]
        assert [r["original_output"] for r in rows] == [r["output"] for r in source], "every row once, in order"
        assert len(cache.read_text().splitlines()) == ROWS
    for path in [p for p in project.rglob("*") if p.is_file()]:
        assert SECRET not in path.read_text(errors="replace"), f"the key was written to {path}"
    assert SECRET not in out + err + result.stdout + result.stderr


def test_a_refused_key_stops_at_once_naming_the_variable_not_the_key(project):
    with scripted_server(teacher) as (url, script, seen):
        script += [(401, {})] * 20
        write_teacher(project, url, "concurrency: 1\n")
        result = rewrite(project)
    assert result.returncode == 2 and "check the environment variable TEACHER_KEY" in result.stderr
    assert SECRET not in result.stderr + result.stdout and len(seen) == 1
    assert not (project / "data" / "zhougong_demo_rewritten.json").exists()


def test_dry_run_counts_requests_and_tokens_and_sends_none(project):
    with scripted_server(teacher) as (url, _, seen):
        write_teacher(project, url)
        result = rewrite(project, "--dry-run")
    assert result.returncode == 0 and f"{ROWS} requests to send (0 cached)" in result.stdout, result.stderr
    assert not seen and not (project / "data" / "zhougong_demo_rewritten.json").exists()


@pytest.mark.parametrize("teacher_yaml, more, message", [
    ("base_url: not-a-url\nmodel: t\n", (), "base_url: is not an http(s) URL"),
    ("base_url: http://127.0.0.1:1/v1\nmodel: t\napi_key_env: MISSING_TEACHER_KEY\n", (),
     "MISSING_TEACHER_KEY is not set"),
    ("base_url: http://127.0.0.1:1/v1\nmodel: t\n", ("-o", "data/zhougong_demo.json"), "is the input"),
    ("base_url: http://127.0.0.1:1/v1\nmodel: t\n", ("-o", "data/dataset_info.json"), "keeps for itself"),
    ("base_url: http://127.0.0.1:1/v1\nmodel: t\n", ("-o", "data/zhougong_demo_eval.json"), "not as zhouyi wrote it"),
])
def test_bad_input_is_named_before_any_request(project, teacher_yaml, more, message):
    (project / "teacher.yaml").write_text(teacher_yaml)
    result = rewrite(project, *more)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (project / "data" / "dataset_info.json").exists()


def test_a_prompt_without_the_answer_placeholder_is_refused(project):
    (project / "prompt.j2").write_text("改写：{{ question }}")
    (project / "spec.yaml").write_text(
        "base: tiny-cpu\ndata:\n  rewrite:\n    prompt: prompt.j2\n    teacher:\n"
        "      base_url: http://127.0.0.1:1/v1\n      model: t\n")
    result = cli("data", "rewrite", "--spec", "spec.yaml", "-i", "data/zhougong_demo.json", cwd=project)
    assert result.returncode == 2 and "data.rewrite.prompt" in result.stderr and "{{ answer }}" in result.stderr
