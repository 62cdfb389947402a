"""The real Bodhi server (26.4.0) for the realstack tests.

:class:`BodhiServer` runs ``tests/realstack/bodhi_server.py`` with the Python
of Bodhi's own venv (``.realstack/bodhi-venv``, or ``$EBS_BODHI_VENV``; made
once by ``tests/realstack/install_bodhi.sh``, which ``python -m
tests.realstack.bodhi_stack`` and the first fixture start run): a database in
the private PostgreSQL, Bodhi's schema, the releases below, and Bodhi's WSGI
app under waitress on a free loopback port.  Bodhi's buildsystem is the
fixture's Koji hub; Bodhi logs in there with a password as the user ``bodhi``
(:func:`prepare_koji`).  The OIDC provider it trusts is
:mod:`tests.realstack.oidc_provider`.

How an update reaches stable, as in Fedora for a release Bodhi does not
compose (Rawhide, ELN): ``save(from_tag=SIDE)`` makes it *pending* and Bodhi
tags its builds into ``SIDE-signing-pending``; the signer (robosignatory in
Fedora, :meth:`BodhiServer.sign` here) moves each build to
``SIDE-testing-pending`` and Bodhi's signed handler marks it signed (update
*testing*); Bodhi's ``approve_testing`` job then makes it *stable*, tags the
builds into the release's stable tag and deletes the side tag and its children.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Protocol

import requests

from ebs.devstack.processes import free_port
from ebs.devstack.waiting import wait_until
from tests.realstack.hubenv import realstack_dir

BODHI_VENV = Path(os.environ.get("EBS_BODHI_VENV") or realstack_dir() / "bodhi-venv")
INSTALL_SCRIPT = Path(__file__).with_name("install_bodhi.sh")
SERVER_SCRIPT = Path(__file__).with_name("bodhi_server.py")
BODHI_KOJI_USER = "bodhi"
# What Bodhi does in Koji: creates SIDE-signing-pending/-testing-pending
# (createTag, deleteTag: `tag`), makes the latter autosign (editTag2 perm=),
# tags builds into them and into the stable tag (the hub's tag policy allows
# `has_perm tag`).
BODHI_KOJI_PERMS = ("tag", "autosign")
# Fedora's signer moves signed builds into SIDE-testing-pending, an autosign tag.
SIGNER_KOJI_USER = "robosignatory"
SIGNER_KOJI_PERMS = ("tag", "autosign")


class PostgresLike(Protocol):
    def create_database(self, name: str, owner: str | None = None) -> str: ...
    def sqlalchemy_url(self, db: str, user: str | None = None) -> str: ...


class BodhiError(RuntimeError):
    """The Bodhi server could not be set up or started."""


def release_rows() -> list[dict[str, Any]]:
    """Bodhi's releases, as the simulator's ``default_releases()``: Fedora Rawhide
    (F45, branch ``rawhide``, which ebs resolves trigger tag ``rawhide`` with) and
    ELN, both pending and not composed by Bodhi."""
    def release(name: str, long_name: str, version: str, branch: str, tag: str,
                **extra: Any) -> dict[str, Any]:
        return {
            "name": name, "long_name": long_name, "version": version, "branch": branch,
            "id_prefix": "FEDORA", "dist_tag": tag, "stable_tag": tag,
            "testing_tag": f"{tag}-updates-testing", "candidate_tag": f"{tag}-updates-candidate",
            "pending_signing_tag": f"{tag}-signing-pending",
            "pending_testing_tag": f"{tag}-updates-testing-pending",
            "pending_stable_tag": f"{tag}-updates-pending", "override_tag": f"{tag}-override",
            "state": "pending", "composed_by_bodhi": False, "package_manager": "dnf",
            **extra,
        }
    return [
        release("F45", "Fedora 45", "45", "rawhide", "f45",
                create_automatic_updates=True, testing_repository="updates-testing"),
        release("ELN", "Fedora ELN", "eln", "eln", "eln",
                create_automatic_updates=True, testing_repository=None),
    ]


def ensure_installed() -> Path:
    """Bodhi's venv python, installing the venv first if its stamp is missing
    (one-off, about a minute)."""
    python = BODHI_VENV / "bin" / "python"
    if not (BODHI_VENV / ".bodhi-installed").exists() or not python.exists():
        proc = subprocess.run([str(INSTALL_SCRIPT), str(BODHI_VENV)], capture_output=True,
                              text=True, timeout=900)
        if proc.returncode != 0:
            raise BodhiError(f"{INSTALL_SCRIPT} failed ({proc.returncode}):\n"
                             f"{proc.stderr[-3000:] or proc.stdout[-3000:]}")
    return python


def prepare_koji(hub: Any) -> str:
    """Give the fixture's Koji hub what Bodhi needs: a password user ``bodhi``
    with :data:`BODHI_KOJI_PERMS`, and the signer :data:`SIGNER_KOJI_USER`.
    Returns Bodhi's password (the signer's is in ``hub.passwords``)."""
    for user, perms in ((SIGNER_KOJI_USER, SIGNER_KOJI_PERMS),
                        (BODHI_KOJI_USER, BODHI_KOJI_PERMS)):
        if user not in hub.passwords:  # idempotent: made once per hub
            hub.add_user(user, perms=perms)
    password: str = hub.passwords[BODHI_KOJI_USER]
    return password


class BodhiServer:
    """One Bodhi server.  ``start()`` takes about 3 s once the venv exists."""

    def __init__(self, pg: PostgresLike, *, koji_hub_url: str, koji_password: str,
                 oidc_url: str, koji_user: str = BODHI_KOJI_USER,
                 workdir: Path | None = None, database: str | None = None) -> None:
        self.pg = pg
        self.koji_hub_url, self.koji_user, self.koji_password = (
            koji_hub_url, koji_user, koji_password)
        self.oidc_url = oidc_url.rstrip("/")
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ebs-bodhi-"))
        self.database = database or f"bodhi_{secrets.token_hex(4)}"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "bodhi.log"
        self.http = requests.Session()

    @property
    def url(self) -> str:
        """Bodhi's base URL, with the trailing slash bodhi-client expects."""
        return f"http://127.0.0.1:{self.port}/"

    # ------------------------------------------------------------- set-up
    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        celery = self.workdir / "celeryconfig.py"
        celery.write_text('broker_url = "memory://"\ntask_always_eager = False\n')
        ini = self.workdir / "bodhi.ini"
        ini.write_text(textwrap.dedent(f"""\
            [app:main]
            use = egg:bodhi-server
            sqlalchemy.url = {self.pg.sqlalchemy_url(self.database)}
            sqlalchemy_extra.statement_timeout = 30000
            base_address = {self.url}
            buildsystem = koji
            koji_hub = {self.koji_hub_url}
            koji_web_url = https://koji.example.org/koji/
            acl_system = dummy
            bugtracker = dummy
            bodhi_email =
            authtkt.secret = {secrets.token_hex(16)}
            authtkt.secure = false
            session.secret = {secrets.token_hex(16)}
            oidc.fedora.client_id = bodhi
            oidc.fedora.client_secret = bodhi-secret
            oidc.fedora.server_metadata_url = {self.oidc_url}/.well-known/openid-configuration
            dogpile.cache.backend = dogpile.cache.memory
            dogpile.cache.expiration_time = 100
            warm_cache_on_start = false
            celery_config = {celery}
            cache_dir = {self.workdir / 'cache'}
            query_wiki_test_cases = false
            test_gating.required = false
            critpath.type =
            f45.status = pre_beta
            f45.pre_beta.mandatory_days_in_testing = 0
            eln.mandatory_days_in_testing = 0
            fedora.mandatory_days_in_testing = 0
            """))
        (self.workdir / "cache").mkdir(exist_ok=True)
        return ini

    def start(self, timeout: float = 60.0) -> BodhiServer:
        python = ensure_installed()
        self.pg.create_database(self.database)
        self.port = free_port()
        ini = self._write_config()
        ready = self.workdir / "ready"
        ready.unlink(missing_ok=True)  # a server started here before
        setup = self.workdir / "setup.json"
        setup.write_text(json.dumps({
            "ini": str(ini), "port": self.port, "ready_file": str(ready),
            "koji_user": self.koji_user, "koji_password": self.koji_password,
            "releases": release_rows(),
        }))
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.update(BODHI_CONFIG=str(ini), PYTHONUNBUFFERED="1")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(python), str(SERVER_SCRIPT), str(setup)],
                                         stdout=out, stderr=subprocess.STDOUT, env=env,
                                         cwd=self.workdir, start_new_session=True)
        proc = self.proc

        def running() -> bool:
            if proc.poll() is not None:
                raise BodhiError(f"Bodhi exited with {proc.returncode} while starting:\n"
                                 f"{self.log_tail()}")
            return True

        try:
            wait_until(ready.exists, timeout, "Bodhi to start", alive=running)
        except TimeoutError as exc:
            tail = self.log_tail()  # before stop() removes the workdir and its log
            self.stop()
            raise BodhiError(f"Bodhi did not start within {timeout} s:\n{tail}") from exc
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self.http.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BodhiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------- control
    def _control(self, what: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.http.post(f"{self.url}_realstack/{what}", json=body or {}, timeout=120)
        answer: dict[str, Any] = resp.json()
        if not resp.ok:
            raise BodhiError(f"Bodhi control {what} failed:\n{answer.get('error')}")
        return answer

    def messages(self, topic_suffix: str = "") -> list[dict[str, Any]]:
        """The messages Bodhi published (topic, body, id), oldest first."""
        found: list[dict[str, Any]] = self._control("messages")["messages"]
        return [m for m in found if m["topic"].endswith(topic_suffix)]

    def signed(self, nvr: str, tag: str) -> list[str]:
        """Run Bodhi's signed handler on the message Koji sends when ``nvr`` was
        tagged into ``tag``.  Returns the handler's log lines."""
        log: list[str] = self._control("signed", {"build": nvr, "tag": tag})["log"]
        return log

    def approve_testing(self) -> list[str]:
        """Run Bodhi's ``approve_testing`` job once.  Returns its log lines."""
        log: list[str] = self._control("approve_testing")["log"]
        return log

    def sign(self, signer: Any, side_tag: str, nvrs: list[str], timeout: float = 60.0) -> None:
        """Do the signer's part for a side-tag update, as robosignatory does: once
        Bodhi's tagBuild tasks put each build in ``SIDE-signing-pending``, move it
        to ``SIDE-testing-pending`` (``signer``: a Koji session of
        :data:`SIGNER_KOJI_USER`; ``*BuildBypass``, so no task) and tell Bodhi."""
        signing, testing = f"{side_tag}-signing-pending", f"{side_tag}-testing-pending"
        tagged: set[str] = set()

        def all_signing_pending() -> bool:
            nonlocal tagged
            tagged = {b["nvr"] for b in signer.listTagged(signing)}
            return set(nvrs) <= tagged

        wait_until(all_signing_pending, timeout, interval=0.1,
                   what=lambda: f"Bodhi to tag {sorted(set(nvrs) - tagged)} into {signing}")
        for nvr in nvrs:
            signer.tagBuildBypass(testing, nvr)
            signer.untagBuildBypass(signing, nvr)
            self.signed(nvr, testing)

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        resp = self.http.get(f"{self.url}{path}", params=params,
                             headers={"Accept": "application/json"}, timeout=60)
        resp.raise_for_status()
        answer: dict[str, Any] = resp.json()
        return answer


if __name__ == "__main__":  # python -m tests.realstack.bodhi_stack: install Bodhi's venv
    print(ensure_installed())
