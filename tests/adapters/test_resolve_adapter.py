"""KojiAdapter.resolve_in_tags against the simulator over HTTP: Koji's latest
build per package, one multicall per 500 queries, and faults never read as
"not in the tag"."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ebs.contracts.koji import LatestBuildsRequest, TagQuery, TagResolveRequest
from ebs.koji.adapter import KojiAdapter
from ebs.koji.errors import KojiPermanentError
from ebs.simulator import FaultRule

if TYPE_CHECKING:
    from tests.helpers.sim import SimWithSink

pytest_plugins = ["tests.helpers.sim"]


def test_latest_by_tag_event_not_by_version(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    tag = sim.layout.trigger_tag
    session = sim.session()
    newer = sim.add_rawhide_build("bash", "6.0", "1", tag=f"{tag}-updates-candidate")
    older = sim.add_rawhide_build("bash", "5.9", "1", tag=f"{tag}-updates-candidate")
    for nvr in (newer.nvr, older.nvr):
        sim.world.tag_build_now(tag, nvr)
    (sed,) = [b["nvr"] for b in session.listTagged(tag, package="sed")]
    session.untagBuild(tag, sed)
    res = koji_adapter.resolve_in_tags(TagResolveRequest([
        TagQuery("bash", tag), TagQuery("sed", tag), TagQuery("no-such-package", tag),
        TagQuery("renamed", "eln", package="coreutils"),
    ]))
    bash, gone, unknown, eln = res.builds
    assert (bash.component, bash.found, bash.nvr, bash.build_id) == (
        "bash", True, older.nvr, older.id)
    assert bash.tag_event == session.getLatestBuilds(tag, package="bash")[0]["create_event"]
    assert (gone.component, gone.found, gone.nvr) == ("sed", False, "")
    assert not unknown.found
    assert eln.component == "renamed" and eln.tag == "eln" and eln.nvr.startswith("coreutils-")


def test_one_multicall_per_500_queries(sim: SimWithSink) -> None:
    adapter = KojiAdapter(sim.koji_config())
    assert adapter.cfg.multicall_chunk == 500
    names = [p[0] for p in sim.layout.packages]
    queries = [TagQuery(names[i % len(names)], sim.layout.trigger_tag) for i in range(1001)]
    before = sim.hub_requests()
    ticks: list[int] = []
    res = adapter.resolve_in_tags(TagResolveRequest(queries),
                                  on_progress=lambda: ticks.append(1))
    assert sim.hub_requests() - before == 3 and len(ticks) == 3
    assert [b.component for b in res.builds] == [q.component for q in queries]
    assert all(b.found for b in res.builds)
    adapter.close()


def test_a_missing_tag_is_an_error_not_a_drop(sim: SimWithSink,
                                              koji_adapter: KojiAdapter) -> None:
    with pytest.raises(KojiPermanentError, match="No such tagInfo"):
        koji_adapter.resolve_in_tags(TagResolveRequest([TagQuery("bash", "no-such-tag")]))


def test_a_transient_fault_propagates(sim: SimWithSink, koji_adapter: KojiAdapter) -> None:
    sim.add_fault(FaultRule("getLatestBuilds", "fault", code=1000, message="database busy",
                            package="bash"))
    with pytest.raises(Exception, match="database busy") as err:
        koji_adapter.resolve_in_tags(TagResolveRequest([
            TagQuery("sed", sim.layout.trigger_tag), TagQuery("bash", sim.layout.trigger_tag)]))
    assert not isinstance(err.value, KojiPermanentError)


def test_latest_builds_read_the_creation_time_of_tag_rows(
    sim: SimWithSink, koji_adapter: KojiAdapter
) -> None:
    """getLatestBuilds rows carry creation_time only (no creation_ts, as the hub);
    the manual trigger's tie-break on creation needs it."""
    tag = sim.layout.trigger_tag
    (row,) = sim.session().getLatestBuilds(tag, package="bash")
    assert "creation_ts" not in row
    (build,) = koji_adapter.latest_builds(LatestBuildsRequest(tag, ["bash"])).builds
    expected = sim.session().getBuild(row["nvr"])["creation_ts"]
    assert build.creation_ts == pytest.approx(expected, abs=1e-3)
