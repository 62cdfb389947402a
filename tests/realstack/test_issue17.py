"""Issue 17 against the real Koji 1.35.3 hub: what the contract tests do not
already cover (#3 password login from config, #6 an existing rebuild)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from ebs.config.model import KojiConfig
from ebs.contracts.koji import (
    BuildLookupRequest,
    BuildSpec,
    RebuildLookupRequest,
    RemoveSideTagRequest,
    SideTagRequest,
    SubmitRequest,
    TagBuildsRequest,
    TaskPollRequest,
)
from ebs.koji.adapter import KojiAdapter
from ebs.koji.errors import KojiPermanentError
from tests.realstack.koji_backends import RealBackend, wait_task_states
from tests.realstack.koji_stack import EBS_USER, KojiStack


def _password_config(stack: KojiStack, password_file: Path) -> KojiConfig:
    return KojiConfig(**stack.koji_config_dict(
        username=None,
        auth={"method": "password", "user": EBS_USER, "password_file": str(password_file)}))


def test_password_login_from_config(koji_stack: KojiStack, tmp_path: Path,
                                    unique: str) -> None:
    """#3: `auth: {method: password, user, password_file}`; the worker reads
    the secret from the file; a packager can then make side tags."""
    secret = tmp_path / "koji-password"
    secret.write_text(koji_stack.hub.passwords[EBS_USER] + "\n")
    adapter = KojiAdapter(_password_config(koji_stack, secret), timeout=30)
    try:
        assert adapter.username == EBS_USER  # from getLoggedInUser: logged in
        tag = adapter.create_side_tag(SideTagRequest("eln-build", f"{unique}:pw"))
        adapter.remove_side_tag(RemoveSideTagRequest(tag.name))
    finally:
        adapter.close()
    # the password is nowhere in the config a workflow could carry
    assert koji_stack.hub.passwords[EBS_USER] not in _password_config(
        koji_stack, secret).model_dump_json()


def test_password_login_failures_are_permanent_and_clear(koji_stack: KojiStack,
                                                         tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    with pytest.raises(KojiPermanentError):
        KojiAdapter(_password_config(koji_stack, wrong), timeout=30).username  # noqa: B018
    missing = tmp_path / "missing"
    with pytest.raises(KojiPermanentError, match=r"koji.auth.password_file .*missing"):
        KojiAdapter(_password_config(koji_stack, missing), timeout=30).username  # noqa: B018
    with pytest.raises(ValidationError, match="password auth takes user and password_file"):
        KojiConfig(**koji_stack.koji_config_dict(auth={"method": "password", "user": "x"}))


def test_an_existing_rebuild_is_found_not_resubmitted(koji_stack: KojiStack,
                                                      unique: str) -> None:
    """#6: the ELN rebuild of a Rawhide NVR exists (promoted, not in eln):
    Koji refuses a new build of it; ebs finds the existing one first."""
    kb = RealBackend(koji_stack)
    try:
        nvr = kb.rawhide_build(f"ex{unique}")
        [build] = kb.adapter.get_builds(BuildLookupRequest([nvr])).builds
        # an earlier batch's rebuild: a non-draft build for the ELN target
        koji_stack.run_builds([(build.source, "eln")])
        eln_nvr = nvr.replace(".fc45", ".eln150")
        [found] = kb.adapter.existing_rebuilds(RebuildLookupRequest([nvr])).builds
        assert found.found and found.nvr == eln_nvr and found.build_id > 0
        [other] = kb.adapter.existing_rebuilds(
            RebuildLookupRequest(["bash-0.1-9.fc45"])).builds
        assert not other.found
        # what ebs did before: submit it again; the hub refuses it as existing
        tag = kb.adapter.create_side_tag(SideTagRequest("eln-build", f"{unique}:ex"))
        try:
            kb.adapter.tag_builds(TagBuildsRequest(tag.name, [nvr]))
            result = kb.adapter.submit_builds(SubmitRequest(
                tag.name, [BuildSpec(build.component, build.source)], draft=True,
                not_before=time.time() - 60, workflow_id=f"ex{unique}"))
            ids = [t.task_id for t in result.submitted]
            assert wait_task_states(kb.adapter, ids) == ["FAILED"]
            [polled] = kb.adapter.poll_tasks(TaskPollRequest(ids)).tasks
            assert "already exists" in polled.reason
        finally:
            kb.adapter.remove_side_tag(RemoveSideTagRequest(tag.name))
    finally:
        kb.close()
