"""Bugs the chaos suite found, as the reasons of its xfail(strict=True) tests
(and the notes of the rows they produce in docs/RELIABILITY.md)."""

SIDE_TAG_LEAK = (
    "side tag leaked: ebs.kojiclient.KojiAdapter.create_side_tag writes the request key "
    "in a second call (editSideTag) after createSideTag; when the worker dies between the "
    "two, when createSideTag's answer is lost, or when editSideTag fails with an HTTP error "
    "(only koji.GenericError is caught there), the activity's retry cannot recognise the "
    "tag it made, creates another, and the first is never removed"
)

POISON_TAG_MESSAGE = (
    "bridge crash loop: a buildsys.tag message whose body is not an object (or whose `tag` "
    "is not a string) and that names the TagV1 schema makes koji_fedoramessaging's "
    "TagV1.__init__ raise AttributeError/TypeError inside fedora_messaging's get_message, "
    "before validation; ebs.ingest.bridge only turns ValidationError into a drop, so the "
    "consumer fails, `ebs ingest` exits, the unacked message is redelivered to the "
    "restarted bridge, which fails again"
)

UNCLEAR_SHAPE_ERROR = (
    "unclear error: when Koji answers with a value of the wrong shape, ebs.kojiclient."
    "KojiAdapter passes it on unchecked and the activity fails with a bare Python error "
    "(\"TypeError: list indices must be integers or slices, not str\") that names neither "
    "the Koji call nor what was wrong with the answer; nothing is lost (Temporal retries)"
)
