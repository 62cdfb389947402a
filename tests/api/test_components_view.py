"""Issue 14: "where is my build?" (/components) and the denylist on the
operator surface (/status.json, /status.html, /denylist), against a real
worker, the ledger workflows and the simulator's Koji."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ebs.api.app import create_app
from ebs.api.components import ComponentCatalog
from ebs.api.control import Control
from ebs.api.tokens import ApiTokens, new_token
from ebs.contracts.ledger import ComponentRecord, DeniedUrl
from ebs.devstack.waiting import until
from tests.helpers.engine import Engine


def http(app):  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ebs.test")


async def test_denylist_shows_and_clears_through_the_api(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The time-skipping server has no visibility (batch listing): not under test here.
    async def no_listing(self: Control, limit: int = 10) -> list:
        return []

    monkeypatch.setattr(Control, "recent_batches", no_listing)
    engine.sim.set_outcomes("glibc", ["FAILED", "FAILED"])
    first = await engine.run_batch(["bash", "glibc"])
    token, line = new_token()
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(f"{line} releng\n")
    app = create_app(engine.holder.config, client=engine.client, tokens=ApiTokens(tokens_file))
    async with http(app) as api:
        resp = await api.get("/status.json")
        status = resp.json()
        assert resp.status_code == 200, resp.text
        assert [(d["component"], d["batch_id"]) for d in status["denylist"]] == [
            ("glibc", first.batch_id)
        ]
        page = (await api.get("/status.html")).text
        assert 'id="denylist"' in page and status["denylist"][0]["url"] in page

        rows = (await api.get("/components.json", params={"q": "GLIB"})).json()
        glibc = next(r for r in rows["components"] if r["name"] == "glibc")
        assert glibc["status"] == "FAILED" and glibc["batch_id"] == first.batch_id
        assert glibc["denied_urls"] == [status["denylist"][0]["url"]]
        assert glibc["task_url"].endswith(f"taskinfo?taskID={glibc['task_id']}")
        assert all("glib" in r["name"] for r in rows["components"])
        bash = (await api.get("/components.json", params={"q": "bash"})).json()["components"]
        bash_row = next(r for r in bash if r["name"] == "bash")
        assert bash_row["status"] == "SUCCESS" and bash_row["stable_nvr"] == bash_row["nvr"]
        html = (await api.get("/components.html", params={"q": "glibc"})).text
        assert "glibc" in html and first.batch_id not in "" and "FAILED" in html

        refused = await api.delete("/denylist/glibc")
        assert refused.status_code == 401
        cleared = await api.delete(
            "/denylist/glibc", headers={"Authorization": f"Bearer {token}"}
        )
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["removed"] == [status["denylist"][0]["url"]]
        assert (await api.get("/status.json")).json()["denylist"] == []
        assert (await api.get("/denylist")).json() == []


async def _records() -> dict[str, ComponentRecord]:
    return {
        f"pkg{n:05d}": ComponentRecord(
            component=f"pkg{n:05d}", batch_id="ebs-batch-1", state="failed" if n % 7 else "stable",
            detail="build failed", nvr=f"pkg{n:05d}-1-1.eln150", task_id=n + 1,
            finished_at="2026-01-01T00:00:00+00:00",
        )
        for n in range(0, 10_000, 2)
    }


def catalog_10k(calls: list[str]) -> ComponentCatalog:
    async def names() -> dict[str, tuple[str, str]]:
        calls.append("names")
        return {f"pkg{n:05d}": (f"pkg{n:05d}", "eln/runtime") for n in range(10_000)}

    async def stable() -> dict[str, str]:
        calls.append("stable")
        return {f"pkg{n:05d}": f"pkg{n:05d}-1-1.eln150" for n in range(10_000)}

    async def records() -> dict[str, ComponentRecord]:
        calls.append("records")
        return await _records()

    async def denied() -> list[DeniedUrl]:
        return [DeniedUrl(url="git+https://x/pkg00003#abc", component="pkg00003")]

    return ComponentCatalog(names, stable, records, denied)


async def test_every_listed_component_is_a_row_and_sources_are_read_once(
) -> None:
    calls: list[str] = []
    catalog = catalog_10k(calls)
    everything = await catalog.search(limit=5000)
    assert everything.total == 10_000 and len(everything.components) == 5000
    assert everything.denylist_size == 1
    first, second = everything.components[0], everything.components[1]
    assert first.name == "pkg00000" and first.status == "SUCCESS"
    assert second.status == "UNKNOWN" and second.detail == "Not rebuilt by ebs yet"
    hit = await catalog.search("PKG00003")
    assert [r.name for r in hit.components] == ["pkg00003"]
    assert hit.components[0].denied_urls == ["git+https://x/pkg00003#abc"]
    page = await catalog.search("pkg0", offset=100, limit=10)
    assert page.total == 10_000 and page.components[0].name == "pkg00100"
    # The sources were read once for all those requests (cached, bulk).
    assert sorted(calls) == ["names", "records", "stable"]


async def test_a_failing_source_keeps_the_last_answer_and_says_so() -> None:
    calls: list[str] = []
    catalog = catalog_10k(calls)
    await catalog.search()
    for source in catalog._sources.values():  # noqa: SLF001 - force staleness
        source.read_at = -1e9

    async def broken() -> dict[str, str]:
        raise RuntimeError("koji down")

    catalog._sources["stable tag"].load = broken  # noqa: SLF001
    await catalog.search()  # serves the cached rows, refreshes in the background
    await until(lambda: any("koji down" in s for s in catalog.stale_sources()), 10,
                "the background refresh to fail")
    again = await catalog.search("pkg00000")
    assert again.components[0].stable_nvr == "pkg00000-1-1.eln150"
    assert any("koji down" in s for s in again.stale)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])


async def test_components_of_the_running_batch_show_as_building() -> None:
    from ebs.api.components import InFlight

    calls: list[str] = []
    base = catalog_10k(calls)

    async def current() -> InFlight:
        return InFlight("ebs-batch-now", ["pkg00002"], ["pkg00005"])

    catalog = ComponentCatalog(base.names, base.stable, base.records, base.denied,
                               current=current)
    rows = {r.name: r for r in (await catalog.search("pkg0000")).components}
    assert rows["pkg00002"].status == "Building" and rows["pkg00002"].batch_id == "ebs-batch-now"
    assert "queued for the next batch" in rows["pkg00005"].detail
    assert rows["pkg00004"].status == "SUCCESS" or rows["pkg00004"].status == "FAILED"
