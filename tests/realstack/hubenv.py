"""Where the real Koji hub comes from, and the venv it runs in.

The hub's source: `$EBS_KOJI_HUB_SRC` (a koji release tree, or a release
tarball), else the vendored `../shared/vendor/koji-hub-1.35.3.tar.gz` next to
the project. The hub runs in its own venv, made from Debian's python3 with
`--system-site-packages` (the hub imports `rpm`, which pip cannot supply),
created once under `.realstack/` (git-ignored) by `./run.sh setup|test`, or
`python -m tests.realstack.hubenv`. Idempotent: a stamp names what is
installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
VENDOR_ARCHIVE_NAME = "koji-hub-1.35.3.tar.gz"
# What the hub (kojihub + the koji library of its release) imports from PyPI.
HUB_REQUIREMENTS = (
    "psycopg2-binary>=2.9,<3", "gunicorn>=22,<24", "python-dateutil>=2.8,<3",
    "requests>=2.28,<3", "defusedxml>=0.7,<1", "six>=1.16,<2",
)
SKIP_REASON = (
    "real Koji hub source not found: set EBS_KOJI_HUB_SRC to a koji release tree "
    "(e.g. an unpacked koji-1.35.3 with kojihub/, koji/, schemas/, plugins/hub/) "
    f"or put {VENDOR_ARCHIVE_NAME} in ../shared/vendor/")


def realstack_dir() -> Path:
    return Path(os.environ.get("EBS_REALSTACK_DIR") or PROJECT / ".realstack")


def vendor_archive() -> Path | None:
    """The vendored hub archive, searched upward from the project (worktrees sit
    one level deeper than a plain clone)."""
    for parent in PROJECT.parents:
        candidate = parent / "shared" / "vendor" / VENDOR_ARCHIVE_NAME
        if candidate.is_file():
            return candidate
    return None


def hub_source() -> Path | None:
    """A tree or tarball with the hub, or None when there is none (tests skip)."""
    env = os.environ.get("EBS_KOJI_HUB_SRC")
    if env:
        path = Path(env)
        if not path.exists():
            raise FileNotFoundError(f"EBS_KOJI_HUB_SRC={env} does not exist")
        return path
    return vendor_archive()


def unpack_hub(source: Path, dest: Path) -> Path:
    """A private copy of the hub tree under `dest` (the sidetag plugin's config
    path is rewritten per copy, so the source is never used in place)."""
    if source.is_dir():
        shutil.copytree(source, dest / "koji-src", symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "tests", "docs", "*.pyc"))
        return dest / "koji-src"
    with tarfile.open(source) as tar:
        tar.extractall(dest, filter="data")
    roots = [p for p in dest.iterdir() if p.is_dir() and (p / "kojihub").is_dir()]
    if not roots:
        raise FileNotFoundError(f"{source}: no kojihub/ inside")
    return roots[0]


def base_python() -> str:
    """Debian's python3 (it has python3-rpm), not a pyenv/venv interpreter."""
    for candidate in ("/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and subprocess.run([candidate, "-c", "import rpm"],
                                        capture_output=True).returncode == 0:
            return candidate
    raise RuntimeError("no python3 with the rpm module: install python3-rpm "
                       "(Debian) / python3-rpm (Fedora)")


def hub_venv() -> Path:
    return realstack_dir() / "hub-venv"


def _stamp() -> str:
    return hashlib.sha256("\n".join(HUB_REQUIREMENTS).encode()).hexdigest()


def hub_python(install: bool = True) -> Path:
    """The hub venv's python, creating/updating the venv if needed."""
    venv = hub_venv()
    python = venv / "bin" / "python"
    stamp = venv / ".ebs-hub-installed"
    if python.exists() and stamp.exists() and stamp.read_text() == _stamp():
        return python
    if not install:
        raise RuntimeError(f"hub venv {venv} missing: run ./run.sh setup")
    base = base_python()
    if not python.exists():
        subprocess.run([base, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *HUB_REQUIREMENTS], check=True)
    stamp.write_text(_stamp())
    return python


if __name__ == "__main__":
    print(hub_python())
    sys.exit(0)
