"""Package lists fetched from a real (local) Content Resolver-style HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ebs.config.model import AutoPackageList, Override
from ebs.config.packages import (
    PackageListError,
    build_package_lists,
    fetch_package_lists,
    package_list_url,
)


class ListServer:
    """A stdlib HTTP server on a free loopback port serving `pages`
    (path -> (status, body)); every requested path is recorded in `hits`."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str]] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hits.append(self.path)
                status, body = server.pages.get(self.path, (404, "not found\n"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def set_list(self, view: str, source: str, names: list[str], status: int = 200) -> None:
        path = f"/view-{source}-package-name-list--view-{view}.txt"
        self.pages[path] = (status, "".join(f"{n}\n" for n in names))

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def lists_server() -> Iterator[ListServer]:
    server = ListServer()
    yield server
    server.close()


def test_url_shape() -> None:
    assert (
        package_list_url("https://tiny.distro.builders", "eln", "buildroot-source")
        == "https://tiny.distro.builders/view-buildroot-source-package-name-list--view-eln.txt"
    )
    assert (
        package_list_url("http://h/cr/", "v", "s")
        == "http://h/cr/view-s-package-name-list--view-v.txt"
    )


def test_fetches_every_view_and_source_and_merges_overrides(lists_server: ListServer) -> None:
    lists_server.set_list("eln", "source", ["bash", "glibc", "ipa"])
    lists_server.set_list("eln", "buildroot-source", ["gcc", "bash", ""])
    lists_server.set_list("eln-extras", "source", ["htop"])
    lists_server.set_list("eln-extras", "buildroot-source", ["perl-Foo"])
    apl = AutoPackageList(
        view=["eln", "eln-extras"],
        source=["source", "buildroot-source"],
        content_resolver=lists_server.url,
    )
    overrides = {"ipa": Override(upstream_name="freeipa"), "extrapackage": Override()}
    lists = fetch_package_lists(apl, overrides)

    assert sorted(lists_server.hits) == sorted(
        f"/view-{s}-package-name-list--view-{v}.txt"
        for v in ("eln", "eln-extras")
        for s in ("source", "buildroot-source")
    )
    assert len(lists.urls) == 4
    assert set(lists.downstream_to_upstream) == {
        "bash", "glibc", "ipa", "gcc", "htop", "perl-Foo", "extrapackage"
    }  # fmt: skip
    assert lists.upstream_name("ipa") == "freeipa"
    assert lists.downstream_name("freeipa") == "ipa"
    assert lists.downstream_name("ipa") is None  # renamed: not an upstream name any more
    assert lists.downstream_name("extrapackage") == "extrapackage"
    assert lists.origins["bash"] == "eln/source"  # first list that has it
    assert lists.origins["perl-Foo"] == "eln-extras/buildroot-source"
    assert lists.origins["extrapackage"] == "override"
    assert len(lists) == 7


def test_overrides_alone() -> None:
    lists = fetch_package_lists(None, {"bash": Override()})
    assert lists.downstream_name("bash") == "bash" and lists.urls == ()


def test_renamed_override_wins_an_upstream_name_listed_twice() -> None:
    lists = build_package_lists(
        {"freeipa": "eln/source", "ipa": "eln/source"}, {"ipa": Override(upstream_name="freeipa")}
    )
    assert lists.downstream_name("freeipa") == "ipa"
    assert lists.upstream_name("freeipa") == "freeipa"


def test_http_error_names_the_url(lists_server: ListServer) -> None:
    lists_server.set_list("eln", "source", ["bash"])
    lists_server.set_list("eln", "buildroot-source", ["x"], status=503)
    apl = AutoPackageList(content_resolver=lists_server.url)
    with pytest.raises(PackageListError) as info:
        fetch_package_lists(apl, {})
    assert info.value.url.endswith("/view-buildroot-source-package-name-list--view-eln.txt")
    assert "HTTP 503" in str(info.value)


def test_missing_list_is_an_error(lists_server: ListServer) -> None:
    apl = AutoPackageList(view=["nosuchview"], source=["source"], content_resolver=lists_server.url)
    with pytest.raises(PackageListError, match="view-nosuchview.txt: HTTP 404"):
        fetch_package_lists(apl, {})


def test_not_a_package_list_is_an_error(lists_server: ListServer) -> None:
    lists_server.pages["/view-source-package-name-list--view-eln.txt"] = (
        200,
        "bash\n<html><body>Maintenance</body></html>\n",
    )
    apl = AutoPackageList(source=["source"], content_resolver=lists_server.url)
    with pytest.raises(PackageListError, match="line 2 is not a package name: '<html>"):
        fetch_package_lists(apl, {})


def test_all_lists_empty_is_an_error(lists_server: ListServer) -> None:
    lists_server.set_list("eln", "source", [])
    apl = AutoPackageList(source=["source"], content_resolver=lists_server.url)
    with pytest.raises(PackageListError, match="all 1 lists are empty"):
        fetch_package_lists(apl, {})


def test_one_empty_list_among_others_is_fine(lists_server: ListServer) -> None:
    lists_server.set_list("eln", "source", ["bash"])
    lists_server.set_list("eln", "buildroot-source", [])
    apl = AutoPackageList(source=["source", "buildroot-source"],
                          content_resolver=lists_server.url)
    assert fetch_package_lists(apl, {}).downstream_name("bash") == "bash"


def test_unreachable_server_is_an_error() -> None:
    server = ListServer()
    url = server.url
    server.close()  # nothing listens there any more
    apl = AutoPackageList(source=["source"], content_resolver=url)
    with pytest.raises(PackageListError, match=f"package list {url}/view-source"):
        fetch_package_lists(apl, {})
