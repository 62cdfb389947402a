"""The ELN package lists: Content Resolver views plus the config's overrides.

Content Resolver publishes one plain-text list of source package names per
view and source kind; the names there are ELN (downstream) names, which equal
the Fedora (upstream) names unless an override says otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests

from ebs.config.model import AutoPackageList, Override

logger = logging.getLogger(__name__)

HttpGet = Callable[[str], str]
"""Fetch a URL and return its body as text; raise on any failure."""

FETCH_TIMEOUT = 60.0
# An RPM source package name; anything else means the response is not a list.
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9._+-]+$")


class PackageListError(Exception):
    """A package list could not be fetched or is not a package list."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"package list {url}: {reason}")
        self.url = url
        self.reason = reason


def requests_get_text(url: str) -> str:
    response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=True)
    response.raise_for_status()
    return response.text


def package_list_url(content_resolver: str, view: str, source: str) -> str:
    return f"{content_resolver.rstrip('/')}/view-{source}-package-name-list--view-{view}.txt"


@dataclass(frozen=True)
class PackageLists:
    """Upstream (Fedora) ↔ downstream (ELN) component names.

    `origins` says where each downstream name came from: "<view>/<source>" or
    "override".
    """

    upstream_to_downstream: Mapping[str, str] = field(default_factory=dict)
    downstream_to_upstream: Mapping[str, str] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.downstream_to_upstream)

    def downstream_name(self, upstream: str) -> str | None:
        return self.upstream_to_downstream.get(upstream)

    def upstream_name(self, downstream: str) -> str | None:
        return self.downstream_to_upstream.get(downstream)


def build_package_lists(
    listed: Mapping[str, str],
    overrides: Mapping[str, Override],
    urls: tuple[str, ...] = (),
) -> PackageLists:
    """Combine listed downstream names (name -> origin) with the overrides.

    An override `ipa: {upstream_name: freeipa}` makes Fedora's `freeipa` the
    upstream of ELN's `ipa`; `ipa` then stops being an upstream name itself,
    so a Fedora package that happened to be called `ipa` is not rebuilt as it.
    An override without `upstream_name` adds the package under its own name.
    """
    down_to_up = {name: name for name in listed}
    origins = dict(listed)
    for downstream, override in overrides.items():
        down_to_up[downstream] = override.upstream_name or downstream
        origins.setdefault(downstream, "override")
    up_to_down = {up: down for down, up in down_to_up.items() if down not in overrides}
    # Overrides go last so they win when an upstream name is claimed twice.
    up_to_down.update((down_to_up[down], down) for down in overrides)
    return PackageLists(up_to_down, down_to_up, origins, urls)


def parse_package_list(url: str, text: str) -> list[str]:
    names = []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if not _PACKAGE_NAME.match(name):
            raise PackageListError(url, f"line {number} is not a package name: {name[:80]!r}")
        names.append(name)
    return names


def fetch_package_lists(
    autopackagelist: AutoPackageList | None,
    overrides: Mapping[str, Override],
    http_get: HttpGet = requests_get_text,
) -> PackageLists:
    """Fetch every view × source list and merge in the overrides.

    All lists must be fetched: a partial set would silently make packages
    ineligible, so any failure raises PackageListError. One empty list is
    normal (ELN Extras may have no buildroot-only packages); all of them empty
    means Content Resolver is broken, and is an error too.
    """
    listed: dict[str, str] = {}
    urls: list[str] = []
    if autopackagelist is not None:
        for view in autopackagelist.view:
            for source in autopackagelist.source:
                url = package_list_url(autopackagelist.content_resolver, view, source)
                try:
                    text = http_get(url)
                except Exception as e:
                    raise PackageListError(url, _describe(e)) from e
                for name in parse_package_list(url, text):
                    listed.setdefault(name, f"{view}/{source}")
                urls.append(url)
        if urls and not listed:
            raise PackageListError(urls[0], f"all {len(urls)} lists are empty")
    lists = build_package_lists(listed, overrides, tuple(urls))
    logger.debug("package lists: %d components from %d lists", len(lists), len(urls))
    return lists


def _describe(error: Exception) -> str:
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} {error.response.reason}"
    return str(error) or type(error).__name__
