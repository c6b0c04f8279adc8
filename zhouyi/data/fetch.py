"""`zhouyi data fetch`: the tutorial's scraped data, one command away. Three public GitHub collections of 周公解梦
pages, each at a pinned commit, checked by a digest of the files' contents (not of an archive, whose bytes depend on
how it was compressed), converted to the shapes `data clean` reads and written, all or nothing, into a git-ignored
folder. The sources state no licence: the data is for the user's own research, never committed here.

A mirror (`--mirror URL`) serves each source under the file name in `Source.mirror_name`, as the project's shared
copy of the raw sources has them; the tests serve that folder over local HTTP, so the download path is the real one.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from zhouyi.errors import UserError

DEFAULT_DIR = Path("data") / "scraped"  # git-ignored
MAX_BYTES = 512 * 2**20  # a download larger than this is not one of these sources


@dataclass(frozen=True)
class Source:
    repo: str
    commit: str
    path: str  # in the repository: a folder (fetched as the commit's tarball) or a file
    mirror_name: str
    digest: str  # sha256 over "<path under `path`>\t<sha256 of its bytes>\n", sorted by path
    output: str
    convert: Callable[[dict[str, bytes]], str]  # the files (path under `path` -> bytes) -> the converted text

    @property
    def is_folder(self) -> bool:
        return not PurePosixPath(self.path).suffix

    def url(self, mirror: str | None = None) -> str:
        if mirror:
            return f"{mirror.rstrip('/')}/{self.mirror_name}"
        if self.is_folder:
            return f"https://codeload.github.com/{self.repo}/tar.gz/{self.commit}"
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.path}"


def hugo_pages(files: dict[str, bytes]) -> str:
    """jingle1267/zgjm's Hugo pages (`<category>/<date>-<title>.md`, front matter first) as JSON Lines of
    {path, category, title, text}: the text is the page body as written."""
    lines = []
    for name in sorted(files):
        text = files[name].decode("utf-8")
        front, body = _front_matter(text)
        title = re.search(r"^title:\s*(.*?)\s*$", front, re.M)
        lines.append(json.dumps({"path": f"content/{name}", "category": name.split("/")[0],
                                 "title": title.group(1) if title else PurePosixPath(name).stem,  # as written
                                 "text": body}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def _front_matter(text: str) -> tuple[str, str]:
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    return (match.group(1), text[match.end():]) if match else ("", text)


def js_array(files: dict[str, bytes]) -> str:
    """leochan2017/zgjm's `app/utils/data.js` (`const dreamsData = [...]`, JSON inside) as the JSON array."""
    (text,) = (b.decode("utf-8") for b in files.values())
    start, end = text.index("["), text.rindex("]") + 1
    return json.dumps(json.loads(text[start:end]), ensure_ascii=False, indent=1) + "\n"


def as_is(files: dict[str, bytes]) -> str:
    (data,) = files.values()
    return data.decode("utf-8")


SOURCES = (
    Source("jingle1267/zgjm", "5c6d90128c49dad85b706edd39a84ec5cb9605b6", "content",
           "jingle1267_zgjm-5c6d901-content.tar.gz",
           "3f376e75e20d859f8ee7babcf61599f2d5a30a9052b48cc859683a16fe923865", "jingle1267_zgjm.jsonl", hugo_pages),
    Source("leochan2017/zgjm", "f4530bc67986bf365efc943a51bf710c31dd4933", "app/utils/data.js",
           "leochan2017_zgjm-f4530bc-data.js",
           "80de16631d3ba1c32b2c11b3b4ded7715d04c50f0afcc41db0bf3039926b2543", "leochan2017_zgjm.json", js_array),
    Source("MaxSherry/jiemeng", "5208c955941720ca08586fd7acb098902bb8e8e6", "src/datas/jiemeng.txt",
           "MaxSherry_jiemeng-5208c95-jiemeng.txt",
           "655b8ffe69535680e7a15744bd589735b4631778660e16df5046017dc1a40adc", "maxsherry_jiemeng_classical.txt",
           as_is),
)


def content_digest(files: dict[str, bytes]) -> str:
    listing = "".join(f"{name}\t{hashlib.sha256(data).hexdigest()}\n" for name, data in sorted(files.items()))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def files_of(source: Source, payload: bytes) -> dict[str, bytes]:
    """The source's files, by their path under `source.path`: a folder's from the tarball (GitHub's holds the whole
    repository under one top folder; a mirror's may hold only the folder), a file's the payload itself."""
    if not source.is_folder:
        return {PurePosixPath(source.path).name: payload}
    files = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or source.path not in parts[:2]:
                    continue
                inner = PurePosixPath(*parts[parts.index(source.path) + 1:])
                if inner.suffix == ".md":
                    files[str(inner)] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"{source.repo}@{source.commit[:7]}: the download is not a gzip tarball ({exc})") from None
    return files


def download(url: str, timeout: float, deadline: float | None = None) -> bytes:
    """The file at `url`: `timeout` for each wait on the server, `deadline` (seconds) for the whole download."""
    import httpx

    deadline = deadline if deadline is not None else whole_download(timeout)
    ends = time.monotonic() + deadline
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise UserError(f"{url}: the server answered {response.status_code}")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_BYTES:
                    raise UserError(f"{url}: more than {MAX_BYTES // 2**20} MiB; not the source zhouyi expects")
                if time.monotonic() > ends:
                    raise UserError(f"{url}: the download took longer than {deadline:g} s in all ({len(data):,} bytes "
                                    "so far); the server is too slow: try again later, or --mirror another")
            return bytes(data)
    except httpx.TooManyRedirects:
        raise UserError(f"{url}: the server redirects in a loop; fetch from another --mirror") from None
    except httpx.HTTPError as exc:
        raise UserError(f"could not reach {url} ({type(exc).__name__}: {exc}); `zhouyi data fetch` needs network "
                        "access to github.com (or --mirror URL with the sources)") from None


def whole_download(timeout: float) -> float:
    """The deadline for one whole download: ten of the waits `--timeout` allows (10 minutes at its default)."""
    return 10 * timeout


def fetch(dest: Path, mirror: str | None = None, timeout: float = 60, echo=print) -> list[Path]:
    """Download, check and convert every source, then write them all into `dest`; the files written."""
    from zhouyi.files import commit, refuse_foreign

    if not math.isfinite(timeout) or timeout <= 0:
        raise UserError(f"--timeout {timeout:g}: give the seconds to wait for a server, a number above 0 (e.g. 60)")
    if dest.exists() and not dest.is_dir():
        raise UserError(f"-o {dest} is a file; it names the folder the sources are written into")
    # every output checked before the first byte is fetched
    refuse_foreign({dest / source.output: "" for source in SOURCES}, force=False, force_flag=None)
    converted: dict[Path, str] = {}
    for source in SOURCES:
        url = source.url(mirror)
        echo(f"fetching {source.repo}@{source.commit[:7]} {source.path} from {url} ...", flush=True)
        files = files_of(source, download(url, timeout))
        if (got := content_digest(files)) != source.digest:
            raise UserError(f"{url}: its {len(files)} files are not the ones pinned for {source.repo}@"
                            f"{source.commit[:7]} (content digest {got[:16]}…, expected {source.digest[:16]}…); "
                            "nothing was written")
        converted[dest / source.output] = source.convert(files)
    refuse_foreign(converted, force=False, force_flag=None)
    commit(converted)
    return list(converted)
