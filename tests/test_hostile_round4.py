"""Reliability, round 4 (issue 40): the new surfaces against hostile and careless input — outputs that coincide,
secrets in URLs, patterns that backtrack without end, answers of megabytes, waits without end, files nested past
any use, foreign caches, non-finite numbers — each a clear exit 2 (or a counted failure) in seconds, nothing
written, no secret shown. Cases are written as variants of each class, not only the issue's own examples."""

import http.server
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, cli
from tests.endpoint_server import scripted_server
from zhouyi import endpoint
from zhouyi.data.clean import CleanOptions, clean
from zhouyi.data.readers import Record
from zhouyi.files import sole_user
from zhouyi.spec import EndpointSpec

PAGE = [{"title": "梦见灯笼", "text": "梦见红灯笼高挂，预示着家中将有喜事临门，亲友团聚，诸事顺遂，财运亨通。"}] * 2 + [
    {"title": f"梦见物{i}", "text": f"梦见物{i}，预示着近期运势平稳，做事要脚踏实地，不可急于求成，终有所获。"}
    for i in range(30)]


def pages(project: Path) -> str:
    (project / "pages.json").write_text(json.dumps(PAGE, ensure_ascii=False), encoding="utf-8")
    return "pages.json"


def untouched(project: Path) -> set[str]:
    return {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}


@pytest.mark.parametrize("flags, words", [
    (["-o", "data/x.json", "--save-templates", "data/x.json"], "--save-templates and -o are the same file"),
    (["-o", "data/x.json", "--save-templates", "data/x_eval.json"], "the eval split are the same file"),
    (["-o", "data/x.json", "--report", "out", "--save-templates", "out/report.json"], "report.json are the same"),
    (["-o", "data/x.json", "--report", "out", "--save-templates", "out/report.html"], "report.html are the same"),
    (["-o", "data/x.json", "--save-templates", "data/dataset_info.json"], "the registry"),
    (["-o", "data/x.json", "--save-templates", "pages.json"], "is one of the inputs"),
])
def test_outputs_of_one_cleaning_never_coincide(project, flags, words):
    registry = project / "data" / "dataset_info.json"
    registry.write_text('{"theirs": {"file_name": "theirs.json"}}\n')
    before = untouched(project)
    result = cli("data", "clean", pages(project), *flags, cwd=project)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert untouched(project) == before | {"pages.json"}, "nothing written"
    assert registry.read_text() == '{"theirs": {"file_name": "theirs.json"}}\n'


def test_a_link_between_two_outputs_is_the_same_file(project):
    (project / "data" / "t.json").symlink_to(project / "data" / "x.json")
    result = cli("data", "clean", pages(project), "-o", "data/x.json", "--save-templates", "data/t.json",
                 "--no-register", cwd=project)
    assert result.returncode == 2 and "are the same file" in result.stderr


@pytest.mark.parametrize("url", ["http://user:hunter2pass@127.0.0.1:9/v1", "https://:hunter2pass@example.org/v1",
                                 "http://hunter2pass@127.0.0.1:9/v1"])
def test_credentials_in_a_url_are_refused_and_never_shown(project, url):
    (project / "teacher.yaml").write_text(f"base_url: {url}\nmodel: t\n")
    via_file = cli("data", "rewrite", "-i", "data/zhougong_demo.json", "--teacher-with", "teacher.yaml",
                   "--dry-run", cwd=project)
    via_set = cli("data", "rewrite", "-i", "data/zhougong_demo.json", "--set", f"data.rewrite.teacher.base_url={url}",
                  "--dry-run", cwd=project)
    spec = project / "spec.yaml"
    spec.write_text(f"base: tiny-cpu\neval:\n  judge:\n    base_url: {url}\n    model: j\n")
    via_spec = cli("validate", "spec.yaml", cwd=project)
    for result in (via_file, via_set, via_spec):
        assert result.returncode != 0 and "hunter2pass" not in result.stdout + result.stderr
    assert "holds credentials" in via_file.stderr and "holds credentials" in via_spec.stdout + via_spec.stderr
    assert "no --spec is given" in via_set.stderr, "--set without --spec is refused, not silently ignored"


@pytest.mark.parametrize("pattern", ["^(梦|梦梦)+$", "(梦|梦梦|梦梦梦)+!", "^(\\w|\\w\\w)+$"])
def test_a_pattern_that_backtracks_without_end_is_stopped_naming_rule_and_row(project, pattern):
    (project / "rules.yaml").write_text(f"- name: runaway\n  pattern: '{pattern}'\n  action: delete\n")
    (project / "long.json").write_text(json.dumps([{"title": "梦见梦", "text": "梦" * 48 + "?"}] * 3))
    began = time.monotonic()
    result = cli("data", "clean", "long.json", "-o", "data/x.json", "--rules-file", "rules.yaml", "--no-register",
                 cwd=project)
    assert time.monotonic() - began < 30
    assert result.returncode == 2 and "rule runaway ran past" in result.stderr and "long.json#0" in result.stderr
    assert not (project / "data" / "x.json").exists()


@pytest.mark.parametrize("replacement", ["\\2", "\\g<name>", "\\g<9>"])
def test_a_replacement_naming_a_missing_group_is_refused_where_it_is_written(project, replacement):
    (project / "rules.yaml").write_text(f"- name: regroup\n  pattern: '梦(见)'\n  action: replace\n"
                                        f"  replacement: '{replacement}'\n")
    from_file = cli("data", "clean", pages(project), "-o", "data/x.json", "--rules-file", "rules.yaml", cwd=project)
    assert from_file.returncode == 2 and "rules.yaml:1: rule regroup" in from_file.stderr
    (project / "spec.yaml").write_text("base: tiny-cpu\ndata:\n  clean:\n    rules:\n      - name: regroup\n"
                                       f"        pattern: '梦(见)'\n        action: replace\n"
                                       f"        replacement: '{replacement}'\n")
    from_spec = cli("validate", "spec.yaml", cwd=project)
    assert from_spec.returncode != 0 and "data.clean.rules.0" in from_spec.stdout + from_spec.stderr


def test_every_built_in_rule_is_linear_on_a_megabyte_line_without_a_full_stop():
    text = ("梦见蛇，预示着财运，小编说关注公众号，网友留言说" * 40_000)[:1_000_000]
    began = time.monotonic()
    clean([Record("big.json#0", "梦见蛇", text)], [], CleanOptions.of(eval_ratio=0.0))
    assert time.monotonic() - began < 20, "a 1 MB line cleans in seconds, not hours"


def huge(body: dict) -> str:
    return "梦" * (4 << 20)  # 12 MB of UTF-8


def test_an_answer_of_megabytes_is_refused_counted_and_never_cached(tmp_path):
    spec = EndpointSpec(base_url="http://127.0.0.1:9/v1", model="t", requests_per_minute=6000, retries=0)
    with scripted_server(huge) as (url, _, _):
        spec = spec.model_copy(update={"base_url": url})
        cache = endpoint.Cache(tmp_path / "cache.jsonl")
        asked = [endpoint.Request((("user", "梦见蛇"),)), endpoint.Request((("user", "梦见龙"),))]
        began = time.monotonic()
        outcome = endpoint.ask_all(spec, asked, cache, echo=lambda *a, **k: None)
    assert time.monotonic() - began < 30
    assert outcome.sent == 0 and sum(outcome.failed.values()) == 2
    assert any("KiB" in why for why in outcome.failed), outcome.failed
    assert cache.load() == {}


@pytest.mark.parametrize("wait", ["inf", "100000", "1e309", "nan"])
def test_a_wait_asked_for_past_the_cap_fails_the_request_instead_of_waiting(tmp_path, wait):
    with scripted_server() as (url, script, _):
        script += [(429, {"Retry-After": wait})]
        spec = EndpointSpec(base_url=url, model="t", requests_per_minute=6000, retries=1, timeout_s=2)
        began = time.monotonic()
        outcome = endpoint.ask_all(spec, [endpoint.Request((("user", "梦见蛇"),))],
                                   endpoint.Cache(tmp_path / "c.jsonl"), echo=lambda *a, **k: None)
    assert time.monotonic() - began < 15
    if wait == "nan":  # not a number of seconds: the backoff, then the next try answers
        assert outcome.sent == 1
    else:
        assert outcome.sent == 0 and any("past the cap" in why for why in outcome.failed), outcome.failed


def test_a_foreign_or_linked_cache_is_refused_and_a_bad_line_is_skipped(tmp_path):
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my own notes\n")
    (tmp_path / "link.jsonl").symlink_to(foreign)
    with pytest.raises(endpoint.UserError, match="is a link"):
        endpoint.Cache(tmp_path / "link.jsonl")
    with pytest.raises(endpoint.UserError, match="not an answers' cache"):
        endpoint.Cache(foreign).load()
    good = tmp_path / "c.jsonl"
    good.write_text('{"key": "k1", "answer": "答", "tokens": 3}\n{"key": "k2", "answer": "答", "tokens": Infinity}\n')
    assert list(endpoint.Cache(good).load()) == ["k1"]
    assert foreign.read_text() == "my own notes\n"


def test_two_rewrites_of_one_output_never_run_at_once(project):
    with scripted_server() as (url, _, seen):
        (project / "teacher.yaml").write_text(f"base_url: {url}\nmodel: t\nrequests_per_minute: 6000\n")
        cache = project / "data" / "zhougong_demo_rewritten.teacher-cache.jsonl"
        with sole_user(cache, "data rewrite"):  # another rewrite of the same output holds it
            result = cli("data", "rewrite", "-i", "data/zhougong_demo.json", "--teacher-with", "teacher.yaml",
                         "--limit", "2", cwd=project)
        assert result.returncode == 2 and "is in use by pid" in result.stderr and not seen


class Trickle(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/loop"):
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass  # the download gave up at its deadline, as the test wants: no traceback in the suite's output

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_download_has_a_deadline_for_the_whole_and_a_loop_is_named(trickle_url):
    from zhouyi.data.fetch import download
    from zhouyi.errors import UserError

    began = time.monotonic()
    with pytest.raises(UserError, match="longer than 1 s in all"):
        download(f"{trickle_url}/slow", timeout=5, deadline=1)
    assert time.monotonic() - began < 5
    with pytest.raises(UserError, match="redirects in a loop"):
        download(f"{trickle_url}/loop", timeout=5)


@pytest.mark.parametrize("args, words", [
    (["--timeout", "-5"], "a number above 0"), (["--timeout", "nan"], "a number above 0"),
    (["--timeout", "0"], "a number above 0"), (["--timeout", "inf"], "a number above 0"),
    (["-o", "afile"], "is a file"),
])
def test_fetch_refuses_bad_flags_before_the_first_byte(project, args, words):
    (project / "afile").write_text("")
    result = cli("data", "fetch", "--mirror", "http://127.0.0.1:9", *(args if "-o" in args else ["-o", "d", *args]),
                 cwd=project)
    assert result.returncode == 2 and words in result.stderr and "--force" not in result.stderr


def test_fetch_over_a_foreign_file_says_so_without_advising_a_flag_it_lacks(project):
    (project / "d").mkdir()
    (project / "d" / "jingle1267_zgjm.jsonl").write_text("mine\n")
    result = cli("data", "fetch", "-o", "d", "--mirror", "http://127.0.0.1:9", cwd=project)
    assert result.returncode == 2 and "not as zhouyi wrote it" in result.stderr and "--force" not in result.stderr
    assert (project / "d" / "jingle1267_zgjm.jsonl").read_text() == "mine\n"


DEEP_JSON = "[" * 20_000 + "]" * 20_000
DEEP_YAML = "a: " + "[" * 20_000 + "]" * 20_000 + "\n"


@pytest.mark.parametrize("write, args", [
    (("deep.json", '{"a":\n' + DEEP_JSON + "}\n"), ["data", "clean", "deep.json", "-o", "data/x.json"]),
    (("deep.json", DEEP_JSON), ["data", "clean", "pages.json", "-o", "data/x.json", "--templates", "deep.json"]),
    (("t.json", '[{"pattern": "x", "pages": "many"}]'),
     ["data", "clean", "pages.json", "-o", "data/x.json", "--templates", "t.json"]),
    (("t.json", '[{"pattern": "x", "pages": 1e999}]'),
     ["data", "clean", "pages.json", "-o", "data/x.json", "--templates", "t.json"]),
    (("deep.yaml", DEEP_YAML), ["show", "deep.yaml"]),
    (("deep.yaml", DEEP_YAML), ["data", "rewrite", "-i", "data/zhougong_demo.json", "--teacher-with", "deep.yaml"]),
    (("bench.json", '{"results": [{"status": "ok", "device": "NVIDIA H100 80GB HBM3", "peak_memory_gib": "-inf", '
                    '"settings": {"per_device_train_batch_size": 1}}]}'),
     ["estimate", "zhougong-lora", "--hardware", "h100", "--measured", "bench.json"]),
    (("bench.json", '{"results": [7, "x"]}'), ["estimate", "zhougong-lora", "--hardware", "h100", "--measured",
                                                "bench.json"]),
    (("bench.json", DEEP_JSON), ["estimate", "zhougong-lora", "--hardware", "h100", "--measured", "bench.json"]),
])
def test_a_malformed_file_is_an_exit_2_naming_it_never_a_traceback(project, write, args):
    pages(project)
    (project / write[0]).write_text(write[1], encoding="utf-8")
    result = cli(*args, cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert write[0] in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("setting", ["train.num_train_epochs=1e400", "train.learning_rate=nan",
                                     "eval.max_new_tokens=inf"])
def test_numbers_that_are_not_finite_are_refused_naming_the_field(tiny_project, setting):
    result = cli("validate", "tiny-cpu", "--set", setting, cwd=tiny_project)
    assert result.returncode != 0 and setting.split("=")[0] in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_an_empty_eval_split_is_not_reported_as_a_file(project):
    result = cli("data", "clean", pages(project), "-o", "data/x.json", "--eval-ratio", "0", "--no-register",
                 cwd=project)
    assert result.returncode == 0 and "no eval split" in result.stdout and "_eval.json" not in result.stdout


def test_the_api_gate_refuses_what_would_break_the_model_server():
    from starlette.testclient import TestClient

    from zhouyi.serve.api_gate import app
    from zhouyi.serve.requests import Limits

    gate = TestClient(app("http://127.0.0.1:9", "k", None, Limits(max_prompt_chars=200, max_new_tokens=32)))
    deep = gate.post("/v1/chat/completions", content=DEEP_JSON.encode())
    assert deep.status_code == 400 and "nested too deep" in deep.json()["error"]["message"]
    for role in ("user", "tool"):
        null = gate.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": role, "content": None}]})
        assert null.status_code == 400 and "needs content" in null.json()["error"]["message"]
    header = gate.post("/v1/chat/completions", headers={"x-big": "a" * 100_000},
                       json={"model": "m", "messages": [{"role": "user", "content": "梦见蛇"}]})
    assert header.status_code == 431 and "headers" in header.json()["error"]["message"]


def test_make_install_names_the_fix_on_an_old_python(tmp_path):
    fake = tmp_path / "python3.10"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'Python 3.10.12' && exit 0\nexit 1\n")
    fake.chmod(0o755)
    result = subprocess.run(["make", "-s", "install", f"PYTHON={fake}", f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "needs Python 3.11" in result.stderr and "PYTHON=python3.11" in result.stderr
    assert not (tmp_path / "venv").exists()


KINDS = {  # a malformed file of each kind, as bytes
    "not UTF-8": b"\xff\xfe\x00bad \x81\x82 bytes",
    "empty": b"",
    "wrong type": b"42\n",
    "nested 10,000 deep": ("[" * 10_000 + "]" * 10_000).encode(),
    "non-finite": b"NaN\n",
}
READERS = {  # every reader of a user-named file, as the command that reads it
    "records": ["data", "clean", "{f}", "-o", "data/x.json"],
    "templates": ["data", "clean", "pages.json", "-o", "data/x.json", "--templates", "{f}"],
    "rules": ["data", "clean", "pages.json", "-o", "data/x.json", "--rules-file", "{f}"],
    "spec": ["validate", "{f}"],
    "teacher": ["data", "rewrite", "-i", "data/zhougong_demo.json", "--teacher-with", "{f}", "--dry-run"],
    "bench report": ["estimate", "zhougong-lora", "--hardware", "h100", "--measured", "{f}"],
    "explain": ["data", "explain", "{f}", "0"],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_of_a_users_file_names_every_kind_of_bad_file(project, reader, kind):
    pages(project)
    name = "bad.yaml" if reader in ("spec", "teacher", "rules") else "bad.json"
    (project / name).write_bytes(KINDS[kind])
    result = cli(*[a.replace("{f}", name) for a in READERS[reader]], cwd=project)
    said = result.stdout + result.stderr
    assert result.returncode == 2, said
    assert name in said and "Traceback" not in said, said


def test_a_page_of_unclosed_headings_is_read_in_linear_time():
    from zhouyi.data.extract import title_of

    began = time.monotonic()
    assert title_of("<h1>" * 30_000 + "梦见蛇") == ""
    assert title_of("<title>梦见蛇_解梦吧</title>" + "<h1>" * 30_000) == "梦见蛇"
    assert time.monotonic() - began < 2
