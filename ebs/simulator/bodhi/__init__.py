"""A Bodhi simulator: an ASGI app speaking enough of Bodhi's REST API for the
unmodified ``bodhi.client.bindings.BodhiClient`` (and so ebs's adapter).

What it serves (paths relative to the mount point, normally ``/bodhi``):

- ``GET releases/`` (``name``, ``state``, ``ids``, ``exclude_archived``, paging)
  and ``GET releases/<name>``; seeded with Rawhide (F45, branch ``rawhide``,
  stable tag ``f45``) and ELN (stable tag ``eln``).
- ``GET csrf``: a CSRF token bound to a session cookie, checked on writes.
- ``POST updates/`` from a Koji side tag (``from_tag``: its builds, read via
  :class:`KojiView`) or from ``builds``, with Bodhi's validation messages
  ("Update already exists using this side tag", ...); ``GET updates/`` with
  Bodhi's filters (``alias``, ``builds``, ``releases``, ``from_side_tag_name``,
  ``from_side_tag``, ``status``, ``user``, ``packages``, paging);
  ``GET updates/<alias>``.
- An OpenID Connect provider under ``oidc/`` (discovery document,
  authorization endpoint answering as Ipsilon does after a Kerberos login,
  token endpoint with authorization-code and refresh-token grants, userinfo),
  and Bodhi's own ``oidc/login-token`` that turns a bearer token into the
  ``auth_tkt`` session cookie.
- ``_sim/...``, a JSON control API: ``GET|DELETE _sim/calls[?operation=]``;
  ``GET|POST|DELETE _sim/faults`` (POST body: :class:`Fault` fields, the
  vocabulary of ebs.simulator.faults shared with the Koji side);
  ``GET _sim/updates``; ``POST _sim/updates/<alias>/stable``;
  ``POST _sim/releases`` (:class:`SimRelease` fields); ``GET|POST _sim/settings``
  (``stable_after``, ``auth``, ``kerberos``, ``username``);
  ``POST _sim/revoke-logins``.  Control requests are not in the call log.

An update from a side tag "goes stable" ``stable_after`` seconds after it is
created (``None``: only when :meth:`BodhiSim.make_stable` is called): its
builds are tagged into the release's stable tag and the side tag is removed,
as Fedora's Bodhi does for side-tag updates.

Errors use Bodhi's (cornice's) shape, ``{"status": "error", "errors":
[{"location", "name", "description"}]}``; faults are scripted per operation
and drawn from a seeded random generator, so runs are reproducible.

Modules: ``model`` (releases, updates, call log rows), ``request`` (one
request, refusals, paging), ``core`` (state, scripting, stable pushes),
``api`` (releases, CSRF, updates), ``oidc`` (the provider and login-token),
``control`` (``_sim``), ``state`` (saved state, pydantic), ``app`` (routes).
"""

from __future__ import annotations

from ..faults import KINDS as FAULT_KINDS
from ..faults import Fault
from .app import BodhiSim
from .model import OPERATIONS, KojiView, SimCall, SimRelease, SimUpdate, default_releases

__all__ = [
    "FAULT_KINDS", "OPERATIONS", "BodhiSim", "Fault", "KojiView", "SimCall", "SimRelease",
    "SimUpdate", "default_releases",
]

