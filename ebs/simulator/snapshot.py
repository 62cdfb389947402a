"""The simulated Koji world (and its layout) as plain JSON data, and back.

``world_state`` returns rows that still share mutable values (tag extra, task
requests) with the live world: encode them while holding ``world.lock``.
``restore_world`` fills a freshly constructed, unseeded World; timed actions
that were pending (build start/finish, tagBuild tasks, repo regenerations)
are put back on its scheduler with the time they had left (none: at once).
Saved data is validated with pydantic (the rows are the model's dataclasses);
malformed data raises :class:`StateError` naming the first bad fields, never a
half-restored world's traceback.
"""

from __future__ import annotations

import random
import time
from dataclasses import fields
from typing import Any

from pydantic import BaseModel, ValidationError

from .bodhi.state import summary
from .model import Build, Listing, Repo, Tag, Target, Task, User
from .script import Script
from .seed import WorldLayout
from .world import TIMED_ACTIONS, World


class StateError(ValueError):
    """Saved simulator state this version cannot load."""


def _row(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_rng_state(rng: random.Random, data: Any) -> None:
    version, internal, gauss = data
    rng.setstate((int(version), tuple(int(i) for i in internal), gauss))


# ------------------------------------------------------------------- layout
def layout_state(layout: WorldLayout) -> dict[str, Any]:
    return {"rawhide": layout.rawhide, "eln": layout.eln,
            "packages": [list(p) for p in layout.packages],
            "package_lists": [[view, source, list(names)]
                              for (view, source), names in layout.package_lists.items()]}


class LayoutState(BaseModel):
    rawhide: int
    eln: int
    packages: list[tuple[str, str, str]]
    package_lists: list[tuple[str, str, list[str]]]


def restore_layout(data: dict[str, Any]) -> WorldLayout:
    try:
        saved = LayoutState.model_validate(data)
    except ValidationError as exc:
        raise StateError(f"bad layout ({summary(exc)})") from None
    return WorldLayout(saved.rawhide, saved.eln, tuple(saved.packages),
                       {(view, source): names for view, source, names in saved.package_lists})


# -------------------------------------------------------------------- world
def world_state(world: World) -> dict[str, Any]:
    """The world as JSON-able data (call with world.lock held)."""
    def user(u: User) -> dict[str, Any]:
        return {**_row(u), "perms": sorted(u.perms)}

    return {
        "seed": world.seed,
        "trigger_tag": world.trigger_tag,
        "next_ids": dict(world._next),
        "last_event": world.last_event,
        "events": [[e, ts] for e, ts in world.event_ts.items()],
        "users": [user(u) for u in world.users.values()],
        "hosts": [[hid, name] for hid, name in world.hosts.items()],
        "packages": dict(world.packages),
        "sources": dict(world.sources),
        "tags": [_row(t) for t in world.tags.values()],
        "targets": [_row(t) for t in world.targets.values()],
        "builds": [_row(b) for b in world.builds.values()],
        "listings": [[li.tag_id, li.build_id, li.create_event, li.creator_id, li.revoke_event]
                     for li in world.listings],
        "tasks": [_row(t) for t in world.tasks.values()],
        "repos": [_row(r) for r in world.repos.values()],
        "regen_running": sorted(world._regen_running),
        "regen_dirty": sorted(world._regen_dirty),
        "timed": [[due, action, args] for due, action, args in world.timed.values()],
        "side_tags_created": list(world.side_tags_created),
        "side_tags_removed": list(world.side_tags_removed),
        "builds_submitted": list(world.builds_submitted),
        "script": world.script.to_dict(),
        "rng": {"world": rng_state(world.rng_world), "build": rng_state(world.rng_build),
                "chaos": rng_state(world.outbox._rng)},
    }


RngState = tuple[int, tuple[int, ...], float | None]


class RngStates(BaseModel):
    world: RngState
    build: RngState
    chaos: RngState


class WorldState(BaseModel):
    """What world_state returns; rows are the model's dataclasses."""

    seed: Any = None
    trigger_tag: str
    next_ids: dict[str, int]
    last_event: int
    events: list[tuple[int, float]]
    users: list[User]
    hosts: list[tuple[int, str]]
    packages: dict[str, int]
    sources: dict[str, int]
    tags: list[Tag]
    targets: list[Target]
    builds: list[Build]
    listings: list[tuple[int, int, int, int, int | None]]
    tasks: list[Task]
    repos: list[Repo]
    regen_running: list[int]
    regen_dirty: list[int]
    timed: list[tuple[float, str, list[Any]]]
    side_tags_created: list[str]
    side_tags_removed: list[str]
    builds_submitted: list[Any]
    script: dict[str, Any]
    rng: RngStates


def restore_world(world: World, data: dict[str, Any], default_user: str,
                  default_user_perms: tuple[str, ...]) -> None:
    """Load `data` (from world_state) into a fresh World, then re-schedule what
    was pending. The named default user gets `default_user_perms` as on seeding."""
    try:
        saved = WorldState.model_validate(data)
    except ValidationError as exc:
        raise StateError(f"bad Koji world data ({summary(exc)})") from None
    try:
        _restore(world, saved)
    except StateError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"bad Koji world data ({type(exc).__name__}: {exc})") from None
    with world.lock:
        world.default_user = world.add_user(default_user, perms=default_user_perms)
        world.kojira = world.add_user("kojira", perms=("repo",))
        world.bodhi_user = world.add_user("bodhi", perms=("tag", "sidetag_admin"))
        now = time.time()
        for due, action, args in saved.timed:
            world.after(max(0.0, due - now), action, *args)


def _restore(world: World, saved: WorldState) -> None:
    """Check what pydantic cannot, then swap it in: a bad file leaves the world as it was."""
    users = {u.id: u for u in saved.users}
    tags = {t.id: t for t in saved.tags}
    builds = {b.id: b for b in saved.builds}
    tasks = {t.id: t for t in saved.tasks}
    listings = [Listing(*row) for row in saved.listings]
    missing = set(world._next) - set(saved.next_ids)
    if missing:
        raise StateError(f"id counters missing: {sorted(missing)}")
    for _due, action, _args in saved.timed:
        if action not in TIMED_ACTIONS:
            raise StateError(f"unknown timed action {action!r}")
    script = Script()
    script.update(saved.script)
    for li in listings:
        if li.build_id not in builds or li.tag_id not in tags:
            raise StateError(f"tag listing of build {li.build_id} in tag {li.tag_id} "
                             "names a missing build or tag")
    for t in tasks.values():
        if t.owner_id not in users:
            raise StateError(f"task {t.id} has an unknown owner {t.owner_id}")

    with world.lock:
        world._next = dict(saved.next_ids)
        world.event_ts = dict(saved.events)
        world.last_event = saved.last_event
        world.trigger_tag = saved.trigger_tag
        world.users, world.tags = users, tags
        world.targets = {t.id: t for t in saved.targets}
        world.builds, world.tasks = builds, tasks
        world.repos = {r.id: r for r in saved.repos}
        world.listings = listings
        world.hosts = dict(saved.hosts)
        world.packages, world.sources = dict(saved.packages), dict(saved.sources)
        world._regen_running = set(saved.regen_running)
        world._regen_dirty = set(saved.regen_dirty)
        world.side_tags_created = list(saved.side_tags_created)
        world.side_tags_removed = list(saved.side_tags_removed)
        world.builds_submitted = list(saved.builds_submitted)
        world.script = script
        set_rng_state(world.rng_world, saved.rng.world)
        set_rng_state(world.rng_build, saved.rng.build)
        set_rng_state(world.outbox._rng, saved.rng.chaos)
        world.reindex()
        world.timed.clear()
