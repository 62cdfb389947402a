"""deploy/temporal/Containerfile: hadolint, every COPY source exists, the entry
point is the package's `ebs` console script as non-root, the build-context ignore files.

Not checked here (no container engine): building the image."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from tests.helpers.deploy import (
    CONTAINERFILE,
    ROOT,
    containerfile_instructions,
    tool,
)


def test_containerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(CONTAINERFILE)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_containerfile_copies_only_what_exists() -> None:
    for keyword, args in containerfile_instructions(CONTAINERFILE):
        if keyword != "COPY" or "--from=" in args:
            continue
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"Containerfile copies {source}, which does not exist"


def test_containerfile_runs_the_ebs_console_script_as_non_root() -> None:
    instructions = containerfile_instructions(CONTAINERFILE)
    keywords = [k for k, _ in instructions]
    assert "HEALTHCHECK" not in keywords, "probes come from the orchestrator, not the image"
    assert keywords.count("FROM") == 2, "a build stage and a runtime stage"
    runtime = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM"):]
    build = instructions[: len(instructions) - len(runtime)]

    build_runs = " ".join(a for k, a in build if k == "RUN")
    assert "krb5-devel" in build_runs and "gcc" in build_runs, "gssapi (koji) builds from source"
    venv = re.search(r"python3 -m venv (\S+)", build_runs)
    assert venv, "the build stage makes a virtualenv"
    assert re.search(rf"{re.escape(venv[1])}/bin/pip install [^&]*\s\.(\s|$)", build_runs), (
        "the project itself is installed from pyproject.toml"
    )

    runtime_runs = " ".join(a for k, a in runtime if k == "RUN")
    assert "krb5-workstation" in runtime_runs and "krb5-libs" in runtime_runs

    (entrypoint,) = [json.loads(a) for k, a in runtime if k == "ENTRYPOINT"]
    assert entrypoint == [f"{venv[1]}/bin/ebs"], "the entry point is the `ebs` console script"
    (user,) = [a for k, a in runtime if k == "USER"]
    assert user.isdigit() and int(user) != 0, "a numeric non-root USER (OpenShift, runAsNonRoot)"
    assert ("EXPOSE", "8080") in runtime
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert "KRB5CCNAME=FILE:" in env, "Fedora's default KEYRING ccache does not work in containers"


def _ignore_patterns(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    """Whether a context path (or one of its parent directories) matches a pattern.

    Enough of the .dockerignore syntax for these files: root-anchored globs,
    `**/` for any depth; no `!` exceptions."""
    import fnmatch

    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        assert not pattern.startswith("!"), "exceptions are not expected here"
        anchored = pattern.strip("/")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, anchored):
                return True
            if anchored.startswith("**/") and fnmatch.fnmatchcase(
                prefix.rsplit("/", 1)[-1], anchored[3:]
            ):
                return True
    return False


def test_build_context_ignore_files() -> None:
    """The repo root is the build context: .containerignore (podman/buildah) and
    .dockerignore (Docker) are the same file and keep local state out of it."""
    containerignore, dockerignore = ROOT / ".containerignore", ROOT / ".dockerignore"
    assert containerignore.read_text() == dockerignore.read_text(), (
        ".dockerignore must be a copy of .containerignore"
    )
    patterns = _ignore_patterns(containerignore)
    for path in (".venv/bin/python", "state/temporal.db", ".git/HEAD", "bench/results/x.json",
                 "ebs/__pycache__/cli.cpython-312.pyc", "ebs.egg-info/PKG-INFO",
                 "deploy/temporal/compose/secrets/koji.keytab",
                 "deploy/temporal/compose/.env"):
        assert _ignored(path, patterns), f"{path} is sent to the image build"
    for keyword, args in containerfile_instructions(CONTAINERFILE):
        if keyword != "COPY" or "--from=" in args:
            continue
        for source in [p for p in shlex.split(args) if not p.startswith("--")][:-1]:
            assert not _ignored(source, patterns), f"the Containerfile copies ignored {source}"
    assert not _ignored("ebs/cli/__init__.py", patterns)
    assert not _ignored("pyproject.toml", patterns)
