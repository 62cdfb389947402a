"""The world a fresh simulator starts with: Fedora Rawhide and ELN as ebs sees them.

Tags and targets mirror Fedora's layout (names parameterised by the Rawhide
release): the trigger tag `f45` that Rawhide builds land in, `eln` (stable,
and the ELN target's destination), `eln-build` (inherits eln, sets the ELN dist
tag, base for side tags). Each package has a Rawhide build in the trigger tag
and an older ELN build in `eln`; content-resolver lists name the ELN packages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .world import World

# (name, version, rawhide release); an older ELN build is seeded too.
PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("bash", "5.2.37", "1"), ("coreutils", "9.6", "2"), ("glibc", "2.41.9000", "5"),
    ("gcc", "15.1.1", "1"), ("systemd", "257.4", "1"), ("openssl", "3.2.4", "3"),
    ("python3.13", "3.13.3", "1"), ("perl", "5.40.2", "515"), ("rpm", "4.20.1", "2"),
    ("dnf5", "5.2.12.0", "1"), ("curl", "8.13.0", "1"), ("zlib-ng", "2.2.4", "2"),
    ("xz", "5.8.1", "1"), ("sed", "4.9", "4"), ("grep", "3.11", "10"), ("gawk", "5.3.1", "1"),
    ("util-linux", "2.41", "3"), ("shadow-utils", "4.17.4", "1"), ("audit", "4.0.3", "2"),
    ("libselinux", "3.8", "1"), ("sqlite", "3.49.1", "2"), ("krb5", "1.21.3", "5"),
    ("nss", "3.110.0", "1"), ("gnutls", "3.8.9", "3"), ("libxml2", "2.13.6", "2"),
    ("openssh", "9.9p1", "12"), ("vim", "9.1.1275", "1"), ("tar", "1.35", "6"),
    ("findutils", "4.10.0", "5"), ("make", "4.4.1", "10"), ("cmake", "3.31.6", "2"),
    ("meson", "1.7.2", "1"), ("ninja-build", "1.12.1", "4"), ("autoconf", "2.72", "5"),
    ("automake", "1.17", "8"), ("libtool", "2.5.4", "4"), ("pkgconf", "2.3.0", "2"),
    ("fedora-release", "45", "0.4"), ("llvm", "20.1.3", "1"), ("rust", "1.86.0", "1"),
)
# Packages the ELN view only needs in the buildroot.
BUILDROOT_ONLY = ("autoconf", "automake", "libtool", "meson", "ninja-build", "cmake")
EXTRAS = ("vim",)


def synthetic_packages(count: int) -> tuple[tuple[str, str, str], ...]:
    """Many made-up packages (benchmarks): pkg-00000 ... with plausible versions."""
    return tuple((f"pkg-{i:05d}", f"{1 + i % 7}.{i % 13}.{i % 5}", str(1 + i % 4))
                 for i in range(count))


@dataclass
class WorldLayout:
    rawhide: int = 45
    eln: int = 150
    packages: tuple[tuple[str, str, str], ...] = PACKAGES
    package_lists: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def trigger_tag(self) -> str:
        return f"f{self.rawhide}"


def seed_world(world: World, layout: WorldLayout | None = None) -> WorldLayout:
    layout = layout or WorldLayout()
    fc, eln = f".fc{layout.rawhide}", f".eln{layout.eln}"
    with world.lock:
        world.quiet = True
        world.trigger_tag = layout.trigger_tag
        world.add_tag(layout.trigger_tag)
        world.add_tag(f"f{layout.rawhide}-build", parent=layout.trigger_tag,
                      extra={"rpm.macro.dist": fc})
        world.add_tag(f"f{layout.rawhide}-updates-candidate", parent=layout.trigger_tag)
        world.add_target("rawhide", f"f{layout.rawhide}-build",
                         f"f{layout.rawhide}-updates-candidate")
        world.add_tag("eln")
        world.add_tag("eln-build", parent="eln",
                      extra={"rpm.macro.dist": eln, "rpm.macro.rhel": "11",
                             "rpm.macro.eln": str(layout.eln)})
        world.add_target("eln", "eln-build", "eln")
        # The tags Bodhi's releases name (candidate, testing, signing, pending, override).
        for release in (f"f{layout.rawhide}", "eln"):
            for suffix in ("updates-testing", "signing-pending", "updates-testing-pending",
                           "updates-pending", "override") + (
                               ("updates-candidate",) if release == "eln" else ()):
                world.add_tag(f"{release}-{suffix}", parent=release)
        for name, version, release in layout.packages:
            old_release = f"{max(int(release.split('.')[0]) - 1, 0)}{eln}" \
                if release.split(".")[0].isdigit() else f"0{eln}"
            world.add_rawhide_build(name, version, f"{release}{fc}", notify=False)
            world.add_rawhide_build(name, version, old_release, tag="eln", owner="distrobaker",
                                    notify=False)
        world.seed_repo(f"f{layout.rawhide}-build")
        world.seed_repo("eln-build")
        world.quiet = False
        names = [p[0] for p in layout.packages]
        layout.package_lists = {
            ("eln", "source"): [n for n in names if n not in BUILDROOT_ONLY + EXTRAS],
            ("eln", "buildroot-source"): [n for n in names if n in BUILDROOT_ONLY],
            ("eln-extras", "source"): list(EXTRAS),
            ("eln-extras", "buildroot-source"): [],
        }
    return layout
