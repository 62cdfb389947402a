"""ebs.config.sources against real files, a real local HTTP server and real git repositories."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ebs.config.sources import (
    DEFAULT_GIT_PATH,
    DEFAULT_GIT_REF,
    Fetched,
    GitSpec,
    SourceError,
    fetch,
    parse_git_spec,
    redact,
)
from ebs.devstack.processes import free_port

CONFIG_V1 = "configuration:\n  koji:\n    trigger_tag: f44\n"
CONFIG_V2 = "configuration:\n  koji:\n    trigger_tag: f45\n"


def _sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return "sha256:" + hashlib.sha256(data).hexdigest()[:12]


# --------------------------------------------------------------------------- files


def test_file_path_and_file_url(tmp_path: Path) -> None:
    f = tmp_path / "ebs.yaml"
    f.write_text(CONFIG_V1)
    got = fetch(str(f))
    assert got == Fetched(CONFIG_V1, _sha(CONFIG_V1), str(f.resolve()))
    assert fetch(f.as_uri()) == got
    f.write_text(CONFIG_V2)
    assert fetch(str(f)).version == _sha(CONFIG_V2) != got.version


def test_file_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"reading .*missing\.yaml: No such file"):
        fetch(str(tmp_path / "missing.yaml"))
    with pytest.raises(SourceError, match="Is a directory"):
        fetch(str(tmp_path))
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("trigger_tag: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SourceError, match="not UTF-8 text"):
        fetch(str(bad))
    with pytest.raises(SourceError, match="unsupported scheme"):
        fetch("ftp://example.org/ebs.yaml")
    with pytest.raises(SourceError, match="no configuration source"):
        fetch("  ")


# --------------------------------------------------------------------------- HTTP


class _Handler(http.server.BaseHTTPRequestHandler):
    pages: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, body = self.pages.get(self.path, (404, b"not found\n"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serving(handler: Any) -> Iterator[int]:
    """An HTTP server on a loopback port (yielded) for the block's duration."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    pages: dict[str, tuple[int, bytes]] = {}
    with _serving(type("Handler", (_Handler,), {"pages": pages})) as port:
        yield f"http://127.0.0.1:{port}", pages


def test_http_200_and_content_version(http_server: tuple[str, dict]) -> None:
    base, pages = http_server
    pages["/ebs.yaml"] = (200, CONFIG_V1.encode())
    got = fetch(base + "/ebs.yaml")
    assert got == Fetched(CONFIG_V1, _sha(CONFIG_V1), base + "/ebs.yaml")
    pages["/ebs.yaml"] = (200, CONFIG_V2.encode())
    assert fetch(base + "/ebs.yaml").version == _sha(CONFIG_V2)


def test_http_errors(http_server: tuple[str, dict]) -> None:
    base, pages = http_server
    with pytest.raises(SourceError, match=r"fetching http://127\.0\.0\.1:\d+/nope\.yaml: HTTP 404"):
        fetch(base + "/nope.yaml")
    pages["/broken"] = (500, b"oops")
    with pytest.raises(SourceError, match="HTTP 500"):
        fetch(base + "/broken")
    pages["/binary"] = (200, b"\xff\xfe\x00")
    with pytest.raises(SourceError, match="not UTF-8"):
        fetch(base + "/binary")


def test_http_connection_refused() -> None:
    port = free_port()
    # nothing listens on the port any more
    with pytest.raises(
        SourceError, match=rf"fetching http://127\.0\.0\.1:{port}/x: ConnectionError"
    ):
        fetch(f"http://127.0.0.1:{port}/x", timeout=5)


# --------------------------------------------------------------------------- git


def _git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="ebs test",
        GIT_AUTHOR_EMAIL="ebs@example.org",
        GIT_COMMITTER_NAME="ebs test",
        GIT_COMMITTER_EMAIL="ebs@example.org",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def config_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "elnbuildsync-config"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    return repo


def test_parse_git_spec() -> None:
    assert parse_git_spec("git+https://h/r.git") == GitSpec(
        "https://h/r.git", DEFAULT_GIT_REF, DEFAULT_GIT_PATH
    )
    assert DEFAULT_GIT_PATH == "elnbuildsync_dynamic.yaml"
    assert parse_git_spec("git+https://h/r.git#production") == GitSpec(
        "https://h/r.git", "production", DEFAULT_GIT_PATH
    )
    assert parse_git_spec("git+ssh://git@h:22/r#staging:conf/ebs.yaml") == GitSpec(
        "ssh://git@h:22/r", "staging", "conf/ebs.yaml"
    )
    assert parse_git_spec("git+/srv/r#main:") == GitSpec("/srv/r", "main", DEFAULT_GIT_PATH)
    assert str(parse_git_spec("git+/srv/r")) == "git+/srv/r#main:elnbuildsync_dynamic.yaml"
    with pytest.raises(SourceError, match="no repository URL"):
        parse_git_spec("git+#main")
    with pytest.raises(SourceError, match=r"may not contain '\.\.'"):
        parse_git_spec("git+/srv/r#main:../../etc/passwd")


def test_git_fetch_follows_new_commits(config_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "cache"
    first = _commit(config_repo, {DEFAULT_GIT_PATH: CONFIG_V1}, "v1")
    spec = f"git+{config_repo}#main"
    got = fetch(spec, workdir=work)
    assert got == Fetched(CONFIG_V1, f"git:{first}", f"{spec}:{DEFAULT_GIT_PATH}")
    # unchanged repository: same version
    assert fetch(spec, workdir=work).version == f"git:{first}"

    second = _commit(config_repo, {DEFAULT_GIT_PATH: CONFIG_V2}, "v2")
    again = fetch(spec, workdir=work)
    assert again.text == CONFIG_V2
    assert again.version == f"git:{second}" != got.version
    # cloned once: one cache repository, refetched in place
    assert len(list(work.iterdir())) == 1


def test_git_refs_paths_and_file_urls(config_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "cache"
    _commit(config_repo, {DEFAULT_GIT_PATH: CONFIG_V1, "conf/ebs.yaml": "ebs: 1\n"}, "v1")
    _git(config_repo, "tag", "v1")
    _git(config_repo, "branch", "staging")
    _commit(config_repo, {"conf/ebs.yaml": "ebs: 2\n"}, "v2")

    assert fetch(f"git+{config_repo}#main:conf/ebs.yaml", workdir=work).text == "ebs: 2\n"
    assert fetch(f"git+{config_repo}#staging:conf/ebs.yaml", workdir=work).text == "ebs: 1\n"
    tagged = fetch(f"git+{config_repo.as_uri()}#v1:conf/ebs.yaml", workdir=work)
    assert tagged.text == "ebs: 1\n"
    assert tagged.version == "git:" + _git(config_repo, "rev-parse", "v1^{commit}")
    # no ref: main, no path: the original's file name
    assert fetch(f"git+{config_repo}", workdir=work).text == CONFIG_V1


def test_git_errors(config_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "cache"
    commit = _commit(config_repo, {DEFAULT_GIT_PATH: CONFIG_V1, "sub/x.yaml": "x\n"}, "v1")
    with pytest.raises(SourceError, match="couldn't find remote ref nope"):
        fetch(f"git+{config_repo}#nope", workdir=work)
    with pytest.raises(SourceError, match=rf"no file 'missing.yaml' at commit {commit}"):
        fetch(f"git+{config_repo}#main:missing.yaml", workdir=work)
    with pytest.raises(SourceError, match=r"not a file \(tree\) 'sub'"):
        fetch(f"git+{config_repo}#main:sub", workdir=work)
    with pytest.raises(SourceError, match="does not appear to be a git repository"):
        fetch(f"git+{tmp_path / 'absent'}#main", workdir=work)
    with pytest.raises(SourceError, match="git fetch failed"):
        fetch("git+ext::sh -c touch% /tmp/ebs-pwned#main", workdir=work)
    assert not Path("/tmp/ebs-pwned").exists()
    # a failed fetch does not spoil the cache for the next good one
    assert fetch(f"git+{config_repo}#main", workdir=work).version == f"git:{commit}"


def test_git_concurrent_fetches_share_one_cache(config_repo: Path, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    work = tmp_path / "cache"
    commit = _commit(config_repo, {DEFAULT_GIT_PATH: CONFIG_V1}, "v1")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: fetch(f"git+{config_repo}", workdir=work), range(4)))
    assert {r.version for r in results} == {f"git:{commit}"}
    assert {r.text for r in results} == {CONFIG_V1}
    # one cache repository; the losers' staging directories are gone
    assert len(list(work.iterdir())) == 1


# --------------------------------------------------------------------------- credentials in URLs

TOKEN = "glpat-S3CR3T-t0ken"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:token@host/c.yaml", "https://***@host/c.yaml"),
        ("https://token@host", "https://***@host"),
        ("git+https://oauth2:TOKEN@gitlab.com/eln/c.git#main:x.yaml",
         "git+https://***@gitlab.com/eln/c.git#main:x.yaml"),
        ("ssh://git@host:22/r", "ssh://***@host:22/r"),
        ("https://u:p@ss@host/x", "https://***@host/x"),  # an unescaped "@" in the password
        ("fetching 'https://a:b@h1/x': see https://c@h2/y", "fetching 'https://***@h1/x': "
         "see https://***@h2/y"),
        # nothing to hide
        ("https://host/c.yaml?user=a@b", "https://host/c.yaml?user=a@b"),
        ("git@github.com:eln/c.git", "git@github.com:eln/c.git"),
        ("/etc/ebs/ebs.yaml", "/etc/ebs/ebs.yaml"),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_http_credentials_never_shown(http_server: tuple[str, dict]) -> None:
    base, pages = http_server
    pages["/ebs.yaml"] = (200, CONFIG_V1.encode())
    url = base.replace("http://", f"http://ebs:{TOKEN}@") + "/ebs.yaml"
    got = fetch(url)
    assert got.text == CONFIG_V1 and got.origin == redact(url) == (
        base.replace("http://", "http://***@") + "/ebs.yaml"
    )
    with pytest.raises(SourceError, match=r"HTTP 404") as err:
        fetch(url.replace("ebs.yaml", "nope.yaml"))
    assert TOKEN not in str(err.value) and "http://***@127.0.0.1" in str(err.value)


def test_http_credentials_not_in_connection_errors() -> None:
    port = free_port()
    with pytest.raises(SourceError, match="ConnectionError") as err:
        fetch(f"http://ebs:{TOKEN}@127.0.0.1:{port}/x", timeout=5)
    assert TOKEN not in str(err.value)
    with pytest.raises(SourceError, match="unsupported scheme") as err:
        fetch(f"ftp://ebs:{TOKEN}@example.org/ebs.yaml")
    assert TOKEN not in str(err.value)


@pytest.fixture
def dumb_http_repo(config_repo: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The config repository served over git's dumb HTTP protocol (static files)."""
    import functools

    _commit(config_repo, {DEFAULT_GIT_PATH: CONFIG_V1}, "v1")
    served = tmp_path / "served"
    served.mkdir()
    _git(served, "clone", "-q", "--bare", str(config_repo), "c.git")
    _git(served / "c.git", "update-server-info")
    handler = functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,),
             {"log_message": lambda *a: None}),
        directory=str(served),
    )
    with _serving(handler) as port:
        yield f"127.0.0.1:{port}/c.git", config_repo


def _files_mentioning(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if needle in p.name
            or (p.is_file() and needle.encode() in p.read_bytes())]


def test_git_credentials_never_shown_nor_stored(
    dumb_http_repo: tuple[str, Path], tmp_path: Path
) -> None:
    where, repo = dumb_http_repo
    work = tmp_path / "cache"
    spec = f"git+http://oauth2:{TOKEN}@{where}#main"
    got = fetch(spec, workdir=work)
    assert got.text == CONFIG_V1
    assert got.origin == f"git+http://***@{where}#main:{DEFAULT_GIT_PATH}"
    (cache,) = work.iterdir()
    assert (cache / "ebs-source-url").read_text() == f"http://***@{where}\n"
    assert _files_mentioning(work, TOKEN) == []
    # errors name the redacted URL only
    with pytest.raises(SourceError, match="couldn't find remote ref nope") as err:
        fetch(f"git+http://oauth2:{TOKEN}@{where}#nope", workdir=work)
    assert TOKEN not in str(err.value) and "http://***@" in str(err.value)
    with pytest.raises(SourceError, match="no file 'missing.yaml'") as err:
        fetch(f"git+http://oauth2:{TOKEN}@{where}#main:missing.yaml", workdir=work)
    assert TOKEN not in str(err.value)
    with pytest.raises(SourceError, match=r"may not contain '\.\.'") as err:
        fetch(f"git+http://oauth2:{TOKEN}@{where}#main:../x", workdir=work)
    assert TOKEN not in str(err.value)
    # a rotated token keeps the cache
    fetch(f"git+http://oauth2:other-token@{where}#main", workdir=work)
    assert len(list(work.iterdir())) == 1
    assert _files_mentioning(work, TOKEN) == [] and _files_mentioning(work, "other-token") == []
