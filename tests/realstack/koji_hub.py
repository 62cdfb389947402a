"""The real Koji hub (1.35.3) served by gunicorn on a free port.

`KojiHub(pg, source).start()` unpacks the hub, creates database `koji` in the
private PostgreSQL, loads `schemas/schema.sql`, bootstraps the first admin,
writes the hub config (sidetag plugin, `RunInterval = 0`, no mail) and serves
`kojihub.kojixmlrpc.application` at `http://127.0.0.1:<port>/kojihub`.

Logins: every user made by `add_user` has a password (`ClientSession(url,
opts={"user": name, "password": pw}).login()`, which the 1.35 hub supports).
The `REMOTE_USER` path (what Apache's auth module sets before `sslLogin`) is
there too: a request carrying the header `X-Ebs-Test-Remote-User: name` gets
`REMOTE_USER=name`, so `session.ssl_login()`-style logins can be tested
without certificates (`remote_user_session`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import koji

from ebs.devstack.rabbitmq import free_port
from ebs.devstack.waiting import wait_until
from tests.realstack.hubenv import hub_python, unpack_hub
from tests.realstack.postgres import PostgresServer

ADMIN = "kojiadmin"
REMOTE_USER_HEADER = "X-Ebs-Test-Remote-User"

WSGI_WRAPPER = '''\
"""WSGI entry for the test hub: points the hub at its config; maps a test
header to REMOTE_USER the way Apache's auth module would."""
from kojihub.kojixmlrpc import application as _hub

CONFIG_FILE = {config_file!r}
CONFIG_DIR = {config_dir!r}


def application(environ, start_response):
    environ["koji.hub.ConfigFile"] = CONFIG_FILE
    environ["koji.hub.ConfigDir"] = CONFIG_DIR
    user = environ.pop("HTTP_X_EBS_TEST_REMOTE_USER", None)
    if user:
        environ["REMOTE_USER"] = user
    return _hub(environ, start_response)
'''

# Fedora-like policies, cut to what the layout needs. Side tags only of
# *-build tags (Fedora allows them of the release build tags).
DEFAULT_POLICY = {
    "build_from_scm": "all :: allow",
    "build_from_srpm": "has_perm admin :: allow\nall :: deny Only admin can do this",
    "sidetag": "tag *-build :: allow\nall :: deny Side tags only of *-build tags",
    # untag passes no `tag` (only fromtag): is_sidetag_owner must name which.
    "tag": ("has_perm admin :: allow\n"
            "has_perm tag :: allow\n"
            "operation tag && is_sidetag_owner tag :: allow\n"
            "operation untag && is_sidetag_owner fromtag :: allow\n"
            "operation tag && tag *-updates-candidate eln-build f*-build :: allow\n"
            "all :: deny tag policy"),
    "draft_promotion": ("has_perm draft-promoter :: allow\nis_build_owner :: allow\n"
                        "all :: deny Only draft-promoter and build owner can do this"),
}


class HubError(RuntimeError):
    """The hub could not be set up or did not come up."""


class KojiHub:
    """One hub process. `url` is the XML-RPC endpoint (…/kojihub)."""

    def __init__(self, pg: PostgresServer, source: Path, *, workdir: Path | None = None,
                 sidetag_suffixes: tuple[str, ...] = (), workers: int = 4,
                 policy: dict[str, str] | None = None) -> None:
        self.pg = pg
        self.source = source
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ebs-koji-"))
        self.sidetag_suffixes = sidetag_suffixes
        self.workers = workers
        self.policy = {**DEFAULT_POLICY, **(policy or {})}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.kojidir = self.workdir / "koji"
        self.log = self.workdir / "hub.log"
        self.passwords: dict[str, str] = {}
        self.tree: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/kojihub"

    @property
    def weburl(self) -> str:
        return f"http://127.0.0.1:{self.port}/koji"

    # ------------------------------------------------------------- set-up
    def _write_config(self, tree: Path) -> Path:
        etc = self.workdir / "etc"
        (etc / "hub.conf.d").mkdir(parents=True, exist_ok=True)
        sidetag_conf = etc / "sidetag.conf"
        suffixes = ",".join(self.sidetag_suffixes)
        sidetag_conf.write_text(
            "[sidetag]\nremove_empty = off\n"
            + (f"allowed_suffixes = {suffixes}\n" if suffixes else "")
            + "trigger_new_repo = False\n")
        plugin = tree / "plugins" / "hub" / "sidetag_hub.py"
        text = plugin.read_text()
        marker = 'CONFIG_FILE = "/etc/koji-hub/plugins/sidetag.conf"'
        if marker not in text:
            raise HubError(f"{plugin}: cannot find {marker!r} to point at the test config")
        plugin.write_text(text.replace(marker, f"CONFIG_FILE = {str(sidetag_conf)!r}"))
        for sub in ("work", "packages", "repos", "scratch", "repos-dist"):
            (self.kojidir / sub).mkdir(parents=True, exist_ok=True)
        policy = "".join(
            f"{name} =\n{textwrap.indent(text, '    ')}\n" for name, text in self.policy.items())
        conf = etc / "hub.conf"
        conf.write_text(textwrap.dedent(f"""\
            [hub]
            DBName = koji
            DBUser = koji
            DBHost = {self.pg.socket_dir}
            DBPort = {self.pg.port}
            KojiDir = {self.kojidir}
            KojiWebURL = {self.weburl}
            CheckClientIP = False
            LoginCreatesUser = On
            PluginPath = {tree / 'plugins' / 'hub'}
            Plugins = sidetag_hub
            RunInterval = 0
            DisableNotifications = True
            KojiTraceback = normal
            LogLevel = WARNING
            RepoQueueUser = kojira
            MaxRepoTasks = 10
            MaxJobs = 1000
            CapacityOvercommit = 1000

            [policy]
            """) + policy)
        (self.workdir / "ebs_test_hub_wsgi.py").write_text(WSGI_WRAPPER.format(
            config_file=str(conf), config_dir=str(etc / "hub.conf.d")))
        return conf

    def _load_schema(self, tree: Path) -> None:
        self.pg.create_database("koji", owner="koji")
        self.pg.psql("koji", file=tree / "schemas" / "schema.sql")
        # the first admin: two inserts (then everything else goes through the API)
        password = self.passwords[ADMIN] = "admin-password"
        self.pg.psql("koji", (
            f"INSERT INTO users (name, password, status, usertype) VALUES "
            f"('{ADMIN}', '{password}', 0, 0);"
            f"INSERT INTO user_perms (user_id, perm_id, creator_id) "
            f"SELECT id, 1, id FROM users WHERE name = '{ADMIN}';"))

    def start(self, timeout: float = 60.0) -> KojiHub:
        python = hub_python(install=True)
        self.tree = tree = unpack_hub(self.source, self.workdir)
        self._write_config(tree)
        self._load_schema(tree)
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": f"{self.workdir}:{tree}",
               "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("VIRTUAL_ENV", None)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(python), "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers), "--timeout", "120", "--preload",
                 "--log-level", "warning", "ebs_test_hub_wsgi:application"],
                cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent)
        proc, last_error = self.proc, ""

        def running() -> bool:
            if proc.poll() is not None:
                raise HubError(f"hub exited ({proc.returncode}): {self.log_tail()}")
            return True

        def answers() -> bool:
            nonlocal last_error
            try:
                koji.ClientSession(self.url, opts={"max_retries": 0}).getAPIVersion()
            except Exception as exc:  # noqa: BLE001 - not up yet; shown if it never is
                last_error = str(exc)
                return False
            return True

        try:
            wait_until(answers, timeout, "the hub to answer", alive=running, interval=0.1)
        except TimeoutError as exc:
            self.stop()
            raise HubError(f"hub did not answer in {timeout} s ({last_error}): "
                           f"{self.log_tail()}") from exc
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # gunicorn's own session: the arbiter and its workers, nothing else
            try:
                os.killpg(self.proc.pid, signal.SIGINT)  # gunicorn: quick shutdown
                self.proc.wait(timeout=1)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=15)

    # ------------------------------------------------------------ sessions
    def session(self, user: str | None = None, **opts: Any) -> koji.ClientSession:
        """A ClientSession logged in with `user`'s password (None: anonymous)."""
        s = koji.ClientSession(self.url, opts={"max_retries": 0, **opts})
        if user is not None:
            s.opts["user"], s.opts["password"] = user, self.passwords[user]
            s.login()
        return s

    def admin(self) -> koji.ClientSession:
        return self.session(ADMIN)

    def remote_user_session(self, user: str) -> koji.ClientSession:
        """Logged in through REMOTE_USER + sslLogin, as behind Apache's auth
        module (Kerberos/mod_auth_gssapi sets REMOTE_USER the same way)."""
        s = _RemoteUserSession(self.url, opts={"max_retries": 0})
        s.remote_user = user
        s.new_session()
        s.setSession(s._callMethod("sslLogin", [], {}))  # noqa: SLF001
        return s

    def add_user(self, name: str, password: str | None = None,
                 perms: tuple[str, ...] = ()) -> str:
        """A normal user with a password login and `perms`; returns the password."""
        admin = self.admin()
        try:
            if not admin.getUser(name):
                admin.createUser(name)
            for perm in perms:
                admin.grantPermission(name, perm, create=True)
        finally:
            admin.logout()
        password = password or f"{name}-password"
        self.pg.psql("koji", f"UPDATE users SET password = '{password}' WHERE name = '{name}'")
        self.passwords[name] = password
        return password


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies (even by SIGKILL), so a
    killed run leaves no hub behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


class _RemoteUserSession(koji.ClientSession):  # type: ignore[misc]
    """Sends the test hub's REMOTE_USER header on every request."""

    remote_user = ""

    def new_session(self) -> None:
        super().new_session()
        if self.remote_user:
            self.rsession.headers[REMOTE_USER_HEADER] = self.remote_user
