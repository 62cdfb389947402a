"""Where the configuration text comes from: a file, an HTTP(S) URL or a git repository.

Spec forms accepted by :func:`fetch`:

* ``/etc/ebs/config.yaml`` or ``file:///etc/ebs/config.yaml``: a local file;
* ``https://host/config.yaml`` (or ``http://``): fetched with a GET;
* ``git+<url>[#<ref>][:<path>]``: the file ``<path>`` at ``<ref>`` of the
  repository ``<url>`` (anything ``git fetch`` takes: https, ssh, file:// or a
  local path). ``<ref>`` defaults to ``main`` and ``<path>`` to
  ``elnbuildsync_dynamic.yaml``, as the original ELNBuildSync reads its
  elnbuildsync-config repository. Example:
  ``git+https://github.com/fedora-eln/elnbuildsync-config.git#production``.

The repository is kept as a bare cache under ``workdir`` (cloned once, then
``git fetch``-ed on every call), so a refresh downloads only what changed.

Either a complete text comes back or :class:`SourceError`, never a part.

A URL may carry credentials (``https://user:token@host/...``,
``git+https://oauth2:TOKEN@host/...``): they are used for the fetch only.
Every origin, error message and cache file shows the URL through
:func:`redact`, with the userinfo replaced by ``***``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests

DEFAULT_GIT_REF = "main"
DEFAULT_GIT_PATH = "elnbuildsync_dynamic.yaml"
# Transports git may use for a config repository (no ext::, fd::, ...).
GIT_PROTOCOLS = "file:git:http:https:ssh"
_KEEP_REF = "refs/ebs/fetched"  # keeps the last fetch's objects, for cheap refetches
# scheme://userinfo@ : the userinfo runs to the last "@" before the host's end.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#'\"<>]*@")
REDACTED = "***"


def redact(text: str) -> str:
    """``text`` (a URL, a source spec or a message naming them) with the
    userinfo of every ``scheme://user:password@host`` replaced by ``***``:
    ``https://oauth2:TOKEN@host/x`` → ``https://***@host/x``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


class SourceError(Exception):
    """The configuration text could not be fetched; one line: what and why."""


@dataclass(frozen=True)
class Fetched:
    text: str
    version: str  # "sha256:<12 hex>" for files and URLs, "git:<commit sha>" for git
    origin: str  # where it came from, for logs and the status page


@dataclass(frozen=True)
class GitSpec:
    url: str
    ref: str = DEFAULT_GIT_REF
    path: str = DEFAULT_GIT_PATH

    def __str__(self) -> str:
        """The spec for logs and origins: credentials in the URL are redacted."""
        return redact(f"git+{self.url}#{self.ref}:{self.path}")


NO_SOURCE = "give at least one of --config, --config-url, --config-git"


def source_specs(files: Sequence[str], urls: Sequence[str], gits: Sequence[str]) -> list[str]:
    """The specs of --config, --config-url and --config-git, in merge order
    (files, then URLs, then git repositories) for the config holder."""
    return [*files, *urls, *(f"git+{g}" for g in gits)]


def content_version(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:12]


def parse_git_spec(spec: str) -> GitSpec:
    """``git+<url>[#<ref>][:<path>]`` → :class:`GitSpec` (ref names cannot hold ':')."""
    shown = redact(spec)
    if not spec.startswith("git+"):
        raise SourceError(f"{shown!r} is not a git+<url>#<ref>[:<path>] spec")
    url, sep, fragment = spec[len("git+") :].partition("#")
    ref, _, path = fragment.partition(":") if sep else ("", "", "")
    path = path.strip("/")
    if not url:
        raise SourceError(f"{shown!r}: no repository URL before '#'")
    if ".." in Path(path).parts:
        raise SourceError(f"{shown!r}: the path may not contain '..'")
    return GitSpec(url=url, ref=ref or DEFAULT_GIT_REF, path=path or DEFAULT_GIT_PATH)


def _decode(data: bytes, origin: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(f"{origin}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _fetch_file(path_text: str) -> Fetched:
    path = Path(path_text).expanduser()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(f"reading {path}: {e.strerror or e}") from None
    return Fetched(_decode(data, str(path)), content_version(data), str(path.resolve()))


def _fetch_http(url: str, timeout: float) -> Fetched:
    origin = redact(url)
    try:
        resp = requests.get(url, timeout=timeout)
    except requests.RequestException as e:
        detail = redact(f"{e.__class__.__name__}: {e}")
        raise SourceError(f"fetching {origin}: {detail}") from None
    if resp.status_code != 200:
        raise SourceError(
            f"fetching {origin}: HTTP {resp.status_code} {resp.reason or ''}".rstrip()
        )
    data = resp.content
    return Fetched(_decode(data, origin), content_version(data), origin)


def _git(args: list[str], cwd: Path, timeout: float, what: str) -> bytes:
    env = dict(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",  # fail, never wait for a password
        GIT_ALLOW_PROTOCOL=GIT_PROTOCOLS,
        LC_ALL="C",
    )
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise SourceError(f"{what}: git {args[0]} timed out after {timeout:g}s") from None
    except OSError as e:
        raise SourceError(f"{what}: cannot run git: {e.strerror or e}") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        fatal = [ln.strip() for ln in lines if ln.startswith(("fatal:", "error:"))]
        detail = "; ".join(fatal) or (lines[-1] if lines else f"exit status {proc.returncode}")
        raise SourceError(redact(f"{what}: git {args[0]} failed: {detail}"))
    return proc.stdout


def _local_git_url(url: str) -> str:
    """A repository given as a relative local path is made absolute: the cache
    runs git in another directory."""
    if "://" in url or (":" in url.split("/", 1)[0]):  # scheme, or scp-like host:path
        return url
    return str(Path(url).expanduser().resolve())


def _cache_dir(workdir: Path, url: str) -> Path:
    """The bare cache repository for ``url``; created (atomically) when missing.

    Named and labelled after the redacted URL: no credentials on disk (the URL
    with them is passed to every ``git fetch`` and never stored as a remote),
    and a rotated token keeps the cache."""
    shown = redact(url)
    repo = workdir / ("git-" + hashlib.sha256(shown.encode()).hexdigest()[:16])
    if (repo / "HEAD").is_file():
        return repo
    workdir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".init-", dir=workdir))
    try:
        _git(
            ["init", "--bare", "--quiet", str(staging)], workdir, 30,
            f"creating a cache for {shown}",
        )
        (staging / "ebs-source-url").write_text(shown + "\n")
        try:
            staging.rename(repo)
        except OSError:  # another process made it first
            if not (repo / "HEAD").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return repo


def _fetch_git(spec_text: str, workdir: Path | None, timeout: float) -> Fetched:
    spec = parse_git_spec(spec_text)
    url = _local_git_url(spec.url)
    if shutil.which("git") is None:
        raise SourceError(f"fetching {spec}: git is not installed")
    root = workdir or Path(tempfile.gettempdir()) / f"ebs-config-sources-{os.getuid()}"
    origin = str(spec)  # redacted
    try:
        repo = _cache_dir(root, url)
        lock = open(repo / "ebs.lock", "a")  # noqa: SIM115 - held for the whole fetch
    except OSError as e:
        raise SourceError(f"fetching {origin}: cache under {root}: {e.strerror or e}") from None
    what = f"fetching {origin}"
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _git(["fetch", "--quiet", "--no-tags", "--", url, spec.ref], repo, timeout, what)
        commit = _git(["rev-parse", "--verify", "FETCH_HEAD^{commit}"], repo, timeout, what)
        commit_id = commit.decode().strip()
        _git(["update-ref", _KEEP_REF, commit_id], repo, timeout, what)
        entry = _git(["ls-tree", "-z", commit_id, "--", spec.path], repo, timeout, what)
        meta, _, _ = entry.partition(b"\t")
        fields = meta.decode().split()
        if len(fields) != 3 or fields[1] != "blob":
            kind = "no file" if not fields else f"not a file ({fields[1]})"
            raise SourceError(f"reading {origin}: {kind} {spec.path!r} at commit {commit_id}")
        data = _git(["cat-file", "blob", fields[2]], repo, timeout, f"reading {origin}")
    return Fetched(_decode(data, origin), f"git:{commit_id}", origin)


def fetch(spec: str, *, workdir: Path | None = None, timeout: float = 30) -> Fetched:
    """The configuration text named by ``spec`` (see the module docstring)."""
    spec = spec.strip()
    if not spec:
        raise SourceError("no configuration source given")
    if spec.startswith("git+"):
        return _fetch_git(spec, workdir, timeout)
    if spec.startswith(("http://", "https://")):
        return _fetch_http(spec, timeout)
    if spec.startswith("file://"):
        parsed = urlparse(spec)
        if parsed.netloc not in ("", "localhost"):
            raise SourceError(f"{redact(spec)}: only local file:// URLs are supported")
        return _fetch_file(unquote(parsed.path))
    if "://" in spec:
        raise SourceError(
            f"{redact(spec)}: unsupported scheme "
            "(use a path, http(s)://, file:// or git+<url>#<ref>)"
        )
    return _fetch_file(spec)
