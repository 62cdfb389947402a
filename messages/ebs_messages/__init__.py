"""Fedora Messaging schemas of the messages ebs publishes (ELN rebuilds)."""

from .base import SCHEMA_URL, EbsMessage
from .batch import BatchFinishedV1, BatchStartedV1
from .package import PackageBuiltV1, PackageFailedV1
from .update import UpdateFiledV1, UpdateStableV1, UpdateUnstableV1

__all__ = [
    "SCHEMA_URL",
    "EbsMessage",
    "BatchStartedV1",
    "BatchFinishedV1",
    "PackageBuiltV1",
    "PackageFailedV1",
    "UpdateFiledV1",
    "UpdateStableV1",
    "UpdateUnstableV1",
    "MESSAGE_CLASSES",
]

# Topic (without the deployment's topic_prefix) -> class.
MESSAGE_CLASSES = {
    cls.topic: cls
    for cls in (
        BatchStartedV1,
        BatchFinishedV1,
        PackageBuiltV1,
        PackageFailedV1,
        UpdateFiledV1,
        UpdateStableV1,
        UpdateUnstableV1,
    )
}
