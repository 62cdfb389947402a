"""The simulator answers the calls the trigger-tag resolution uses as Koji
hub 1.35 does (kojihub.readTaggedBuilds, untagBuild)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import koji
import pytest

if TYPE_CHECKING:
    from tests.helpers.sim import SimWithSink

pytest_plugins = ["tests.helpers.sim"]

# readTaggedBuilds' columns without extra=True (kojihub 1.35.3).
HUB_COLUMNS = {
    "tag_id", "tag_name", "id", "build_id", "version", "release", "epoch", "state",
    "completion_time", "promotion_time", "start_time", "task_id", "draft", "owner_id",
    "owner_name", "promoter_id", "promoter_name", "creation_event_id", "creation_time",
    "volume_id", "volume_name", "package_id", "package_name", "name", "nvr", "create_event",
}


def test_latest_rows_have_the_hub_columns_and_tag_event_order(sim: SimWithSink) -> None:
    tag = sim.layout.trigger_tag
    session = sim.session()
    newer = sim.add_rawhide_build("bash", "6.0", "1")
    older = sim.add_rawhide_build("bash", "5.9", "1")
    (latest,) = session.getLatestBuilds(tag, package="bash")
    assert set(latest) == HUB_COLUMNS  # no source, no *_ts: getBuild has those
    assert latest["nvr"] == older.nvr and latest["tag_name"] == tag
    rows = session.listTagged(tag, package="bash")
    assert [r["nvr"] for r in rows][:2] == [older.nvr, newer.nvr]  # most recently tagged first
    assert rows[0]["create_event"] > rows[1]["create_event"]
    assert set(session.listTagged(tag, package="bash", extra=True)[0]) == HUB_COLUMNS | {"extra"}
    assert session.getLatestBuilds(tag, package="no-such-package") == []
    with pytest.raises(koji.GenericError, match="No such tagInfo"):
        session.getLatestBuilds("no-such-tag", package="bash")


def test_untag_makes_the_previous_build_latest_and_is_announced(sim: SimWithSink) -> None:
    tag = sim.layout.trigger_tag
    session = sim.session()
    (previous,) = session.getLatestBuilds(tag, package="bash")
    bad = sim.add_rawhide_build("bash", "6.0", "1")
    session.untagBuild(tag, bad.nvr)
    assert session.getLatestBuilds(tag, package="bash")[0]["nvr"] == previous["nvr"]
    with pytest.raises(koji.TagError, match=f"build {bad.nvr} not in tag {tag}"):
        session.untagBuild(tag, bad.nvr)
    event = session.getLastEvent()["id"]
    session.untagBuild(tag, bad.nvr, strict=False)  # no error; still an event and a message
    assert session.getLastEvent()["id"] > event
    sim.flush()
    untags = [f"{b['name']}-{b['version']}-{b['release']}"
              for b in sim.sink.bodies("buildsys.untag")]
    assert untags == [bad.nvr, bad.nvr]
