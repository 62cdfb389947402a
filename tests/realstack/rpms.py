"""Real, tiny RPMs made with rpmbuild (~0.1 s each): what the stand-in builder
uploads, so the hub imports real headers, sizes and checksums."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

SPEC = """\
Name: {name}
Version: {version}
Release: {release}
Summary: ebs real-stack test package {name}
License: MIT
BuildArch: noarch
Source0: {name}.txt

%description
A tiny package built by the ebs real-stack test builder.

%prep

%build

%install
mkdir -p %{{buildroot}}/usr/share/ebs-test
cp %{{SOURCE0}} %{{buildroot}}/usr/share/ebs-test/{name}.txt

%files
/usr/share/ebs-test/{name}.txt
"""


class RpmBuildError(RuntimeError):
    pass


def rpmbuild_available() -> bool:
    return shutil.which("rpmbuild") is not None


def build_rpms(workdir: Path, name: str, version: str, release: str,
               cache: Path | None = None) -> tuple[Path, Path]:
    """(srpm, noarch rpm) for name-version-release, built under workdir, or
    taken from `cache` (a directory; filled atomically) when it has them."""
    nvr = f"{name}-{version}-{release}"
    if cache is not None:
        hit = cache / nvr
        srpm, rpm = hit / f"{nvr}.src.rpm", hit / f"{nvr}.noarch.rpm"
        if srpm.is_file() and rpm.is_file():
            return srpm, rpm
        built_srpm, built_rpm = build_rpms(workdir, name, version, release)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{nvr}-", dir=cache))
        shutil.copyfile(built_srpm, tmp / srpm.name)
        shutil.copyfile(built_rpm, tmp / rpm.name)
        try:
            tmp.rename(hit)
        except OSError:  # another process filled it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        return built_srpm, built_rpm
    top = workdir / nvr
    for sub in ("SOURCES", "SPECS", "BUILD", "RPMS", "SRPMS", "BUILDROOT"):
        (top / sub).mkdir(parents=True, exist_ok=True)
    (top / "SOURCES" / f"{name}.txt").write_text(f"{name}-{version}-{release}\n")
    spec = top / "SPECS" / f"{name}.spec"
    spec.write_text(SPEC.format(name=name, version=version, release=release))
    proc = subprocess.run(
        ["rpmbuild", "-ba", "--quiet", "--define", f"_topdir {top}",
         "--define", "_build_id_links none", "--define", "__os_install_post %{nil}",
         "--define", "debug_package %{nil}", "--define", "_source_payload w1.gzdio",
         "--define", "_binary_payload w1.gzdio", str(spec)],
        capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RpmBuildError(f"rpmbuild {name}-{version}-{release}: {proc.stderr.strip()}")
    srpms = list((top / "SRPMS").glob("*.src.rpm"))
    rpms = list((top / "RPMS").glob("*/*.rpm"))
    if len(srpms) != 1 or len(rpms) != 1:
        raise RpmBuildError(f"rpmbuild {name}: expected one srpm and one rpm, got "
                            f"{srpms} {rpms}")
    return srpms[0], rpms[0]
