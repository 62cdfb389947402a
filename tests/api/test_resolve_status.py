"""A component dropped at batch start, and a rebuilt build that differs from the
message's, are visible in /status.json's model and on the status page."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ebs.api.html import render_status
from ebs.api.links import Links
from ebs.api.models import CollectorView, StatusResponse
from ebs.api.status import current_batch
from ebs.contracts.batch import BatchResult, PackageResult


def test_dropped_and_substituted_packages_show_in_status_json_and_page() -> None:
    result = BatchResult(
        batch_id="ebs-batch-1",
        outcome="building:slice1000:attempt1",
        packages=[
            PackageResult(
                component="sed", rawhide_nvr="sed-4.9-4.fc45", state="dropped",
                reason="dropped: Koji's f45 no longer holds any build of sed (untagged "
                       "after the message named sed-4.9-4.fc45 (build 2700010)); nothing "
                       "to rebuild",
                message_nvr="sed-4.9-4.fc45", message_build_id=2700010,
            ),
            PackageResult(
                component="bash", rawhide_nvr="bash-5.2.38-1.fc45", state="building",
                message_nvr="bash-5.3.0-1.fc45", message_build_id=2700099,
                rawhide_build_id=2700098,
            ),
        ],
    )
    view = current_batch("ebs-batch-1", ["bash", "sed"], result, Links())
    doc = json.loads(view.model_dump_json())
    pkgs = {p["component"]: p for s in doc["slices"] for p in s["packages"]}
    assert pkgs["sed"]["state"] == "dropped" and "any build of sed" in pkgs["sed"]["reason"]
    assert pkgs["bash"]["rawhide_nvr"] == "bash-5.2.38-1.fc45"
    assert pkgs["bash"]["message_nvr"] == "bash-5.3.0-1.fc45"
    assert pkgs["bash"]["message_build_id"] == 2700099
    assert doc["counts"] == {"building": 1, "dropped": 1}
    status = StatusResponse(
        generated_at=datetime.now(UTC),
        collector=CollectorView(exists=True, answered=True),
        current_batch=view,
    )
    page = render_status(status)
    assert 'class="state state-dropped">dropped<' in page
    assert "no longer holds any build of sed" in page
    assert "message: <code>bash-5.3.0-1.fc45</code> (build 2700099)" in page
    # a package rebuilt from the build its message named shows no such note
    assert "message: <code>sed-4.9-4.fc45</code>" not in page


def test_a_slice_of_dropped_packages_is_done() -> None:
    result = BatchResult(
        batch_id="b", outcome="finished",
        packages=[PackageResult(component="sed", rawhide_nvr="sed-1-1", state="dropped")],
    )
    view = current_batch("b", ["sed"], result, Links())
    assert [s.state for s in view.slices] == ["done"]
