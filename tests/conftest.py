"""Shared fixtures. Area-specific fixtures live in tests/helpers/ and are
registered here so every test module can use them."""

pytest_plugins = [
    "tests.helpers.temporal",
    "tests.helpers.engine",
    "tests.helpers.smtp",
]
