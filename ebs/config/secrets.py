"""Secrets come from files (paths in the config or --*-file options), never from
log lines: errors here name the file and never its content."""

from __future__ import annotations

from pathlib import Path

from ebs.config.loader import ConfigError
from ebs.config.model import OpenIdConnectConfig


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


def oidc_client_secret(oidc: OpenIdConnectConfig, override_file: str | None = None) -> str:
    """The OpenID Connect client secret: --openid-client-secret-file, else
    open_id_connect.client_secret_file, else an inline client_secret."""
    path = override_file or oidc.client_secret_file
    if path:
        return read_secret_file(path, "OpenID Connect client secret")
    if oidc.client_secret is not None and oidc.client_secret.get_secret_value():
        return oidc.client_secret.get_secret_value()
    raise ConfigError(
        "open_id_connect is enabled but has no client secret; set "
        "open_id_connect.client_secret_file or use --openid-client-secret-file"
    )
