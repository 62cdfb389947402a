"""Bodhi failures: permanent (refused, auth) or transient, sorted from the HTTP answer."""

from __future__ import annotations

import json
from typing import Any


class BodhiPermanentError(Exception):
    """Bodhi refused the request in a way retrying cannot fix."""


class BodhiAuthError(BodhiPermanentError):
    """ebs could not authenticate to Bodhi (Kerberos/OIDC login, or Bodhi said no)."""


class BodhiTransientError(Exception):
    """Bodhi (or a proxy in front of it) failed; worth retrying later."""


class HTTPFailure(Exception):
    """A non-2xx answer; classified by the adapter."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.text = text

    def bodhi_errors(self) -> list[dict[str, Any]]:
        """The ``errors`` of Bodhi's error JSON, or [] when the body is not one."""
        try:
            body = json.loads(self.text)
        except ValueError:
            return []
        errors = body.get("errors") if isinstance(body, dict) else None
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    def describe(self) -> str:
        errors = self.bodhi_errors()
        if errors:
            return "; ".join(str(e.get("description", e)) for e in errors)
        text = " ".join(self.text.split())
        return text[:300] or "(empty body)"


def classify(err: HTTPFailure, what: str, base_url: str) -> Exception:
    text = f"cannot {what}: Bodhi at {base_url} answered HTTP {err.status}: {err.describe()}"
    if err.status in (401, 403):
        return BodhiAuthError(text)
    if 400 <= err.status < 500 and err.status not in (408, 425, 429):
        return BodhiPermanentError(text)
    return BodhiTransientError(text)
