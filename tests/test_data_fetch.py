"""`zhouyi data fetch`: the three sources over real HTTP (a local server standing in for GitHub, serving the raw
sources as their repositories had them), checked by content digest, converted to what the shared converted files
hold, written all or nothing."""

import functools
import http.server
import json
import shutil
import threading

import pytest

from tests.conftest import SHARED_DATA, cli
from zhouyi.data.fetch import SOURCES
from zhouyi.serve.server import free_port

SOURCES_DIR = SHARED_DATA / "sources"


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server over a copy of the raw sources (a test may change the copy)."""
    folder = tmp_path / "mirror"
    shutil.copytree(SOURCES_DIR, folder)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()


def records(path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return sorted((r["title"], r["text"]) for r in map(json.loads, text.splitlines()))
    if path.suffix == ".json":
        return sorted((r["title"], r["detail"]) for r in json.loads(text))
    return text


@pytest.mark.needs("sources")
def test_fetch_gives_the_records_of_the_converted_files(project, mirror):
    url, _ = mirror
    result = cli("data", "fetch", "--mirror", url, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "state no licence" in result.stdout
    for source in SOURCES:
        assert records(project / "data" / "scraped" / source.output) == records(SHARED_DATA / source.output)
    cleaned = cli("data", "clean", *[f"data/scraped/{s.output}" for s in SOURCES], "-o", "data/zhougong.json",
                  "--no-register", cwd=project)
    assert cleaned.returncode == 0, cleaned.stderr
    assert len(json.loads((project / "data" / "zhougong.json").read_text())) > 5000


@pytest.mark.needs("sources")
def test_a_source_whose_files_changed_is_refused_and_nothing_written(project, mirror):
    url, folder = mirror
    page = folder / SOURCES[2].mirror_name
    page.write_bytes(page.read_bytes() + "梦见广告。\n".encode())
    result = cli("data", "fetch", "--mirror", url, cwd=project)
    assert result.returncode == 2 and "not the ones pinned for MaxSherry/jiemeng@5208c95" in result.stderr
    assert not (project / "data" / "scraped").exists(), "all or nothing"


def test_no_network_is_a_clear_error(project):
    result = cli("data", "fetch", "--mirror", f"http://127.0.0.1:{free_port()}", "--timeout", "5", cwd=project)
    assert result.returncode == 2 and "could not reach http://127.0.0.1:" in result.stderr
    assert "network access to github.com" in result.stderr


def test_the_default_addresses_are_githubs_at_the_pinned_commits():
    assert [s.url() for s in SOURCES] == [
        "https://codeload.github.com/jingle1267/zgjm/tar.gz/5c6d90128c49dad85b706edd39a84ec5cb9605b6",
        "https://raw.githubusercontent.com/leochan2017/zgjm/f4530bc67986bf365efc943a51bf710c31dd4933/app/utils/data.js",
        "https://raw.githubusercontent.com/MaxSherry/jiemeng/5208c955941720ca08586fd7acb098902bb8e8e6/src/datas/"
        "jiemeng.txt"]


@pytest.mark.needs("sources")
def test_githubs_tarball_of_the_whole_repository_gives_the_same_files(mirror):
    import io
    import tarfile

    from zhouyi.data.fetch import content_digest, files_of

    _, folder = mirror
    source = SOURCES[0]
    whole = io.BytesIO()
    with tarfile.open(folder / source.mirror_name) as src, tarfile.open(fileobj=whole, mode="w:gz") as out:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else None
            member.name = f"zgjm-{source.commit}/{member.name}"
            out.addfile(member, io.BytesIO(data) if data is not None else None)
        extra = tarfile.TarInfo(f"zgjm-{source.commit}/public/content/x.md")
        extra.size = 3
        out.addfile(extra, io.BytesIO(b"---\n"[:3]))
    assert content_digest(files_of(source, whole.getvalue())) == source.digest
