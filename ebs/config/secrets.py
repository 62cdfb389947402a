"""Secrets come from files (paths in the config), never from log lines: errors
here name the file and never its content."""

from __future__ import annotations

from pathlib import Path

from ebs.config.loader import ConfigError


def read_secret_file(path: str | Path, what: str) -> str:
    """The first line of `path`, stripped; ConfigError if unreadable or empty."""
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.readline().strip()
    except OSError as e:
        raise ConfigError(f"cannot read the {what} from {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} file {path} is not UTF-8 text") from None
    if not secret:
        raise ConfigError(f"the {what} file {path} is empty")
    return secret
