"""The Bodhi simulator's saved state (the ``"bodhi"`` object of the state
file), validated with pydantic: a file that does not fit raises ValueError
naming the first fields that do not, and nothing is half restored."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ..faults import Fault
from .model import SimRelease, SimUpdate


class SavedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stable_after: float | None = 1.0
    auth: str = "none"
    kerberos: str = "accept"
    username: str = "elnbuildsync"
    token_lifetime: int = 3600

    @model_validator(mode="after")
    def _valid(self) -> SavedSettings:
        validate_settings(self.auth, self.kerberos, self.stable_after)
        return self


def validate_settings(auth: Any, kerberos: Any, stable_after: Any) -> None:
    """The settings BodhiSim accepts (ValueError with the reason)."""
    if auth not in ("none", "oidc"):
        raise ValueError("auth must be 'none' or 'oidc'")
    if kerberos not in ("accept", "reject"):
        raise ValueError("kerberos must be 'accept' or 'reject'")
    if stable_after is not None and (not isinstance(stable_after, int | float)
                                     or stable_after < 0):
        raise ValueError("stable_after must be >= 0 seconds, or None for never")


class BodhiState(BaseModel):
    """What :meth:`BodhiSim.state` returns (the call log is not kept)."""

    rng: tuple[int, tuple[int, ...], float | None]
    releases: list[SimRelease]
    updates: list[dict[str, Any]]  # SimUpdate rows, "release" by name (see update_map)
    faults: list[Fault]
    stable_due: dict[str, float]
    settings: SavedSettings
    codes: dict[str, dict[str, str]]
    access_tokens: dict[str, tuple[str, float]]
    refresh_tokens: dict[str, str]
    auth_tickets: dict[str, str]

    @field_validator("faults", mode="before")
    @classmethod
    def _older_fault_names(cls, rows: Any) -> Any:
        """Faults saved before the shared vocabulary (Bodhi's own Fault)."""
        if isinstance(rows, list):
            return [Fault.from_dict(row) if isinstance(row, dict) else row for row in rows]
        return rows

    def release_map(self) -> dict[str, SimRelease]:
        return {r.name: r for r in self.releases}

    def update_map(self, releases: dict[str, SimRelease]) -> dict[str, SimUpdate]:
        """The updates, validated as SimUpdate dataclasses (ValueError if not)."""
        updates = {}
        for n, row in enumerate(self.updates):
            name = row.get("release")
            if not isinstance(name, str) or name not in releases:
                raise ValueError(f"updates.{n}.release: no release named {name!r}")
            try:
                update = _UPDATE.validate_python({**row, "release": releases[name]})
            except ValidationError as exc:
                raise ValueError(f"updates.{n}.{summary(exc)}") from None
            updates[update.alias] = update
        return updates


_ADAPTER = TypeAdapter(BodhiState)
_UPDATE = TypeAdapter(SimUpdate)


def parse_state(data: Any) -> BodhiState:
    """`data` as a BodhiState, or ValueError with a one-line reason."""
    try:
        state = _ADAPTER.validate_python(data)
        state.update_map(state.release_map())
    except ValidationError as exc:
        raise ValueError(f"bad Bodhi data ({summary(exc)})") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad Bodhi data ({exc})") from None
    return state


def summary(exc: ValidationError, most: int = 3) -> str:
    """A pydantic error as one line: the first few fields and what is wrong."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'top'}: {e['msg']}"
             for e in exc.errors()[:most]]
    more = exc.error_count() - most
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
