"""A private PostgreSQL cluster for real-stack tests.

Debian's `postgresql` binaries, a cluster in a temporary directory, listening
only on a unix socket in that directory (no TCP port to collide on), fsync
off. Run as the `postgres` user when the tests run as root (initdb refuses
root). The server is a direct child of the test process and gets SIGQUIT if
that process dies, even by SIGKILL; the hub's gunicorn does the same. Starts
in about a second; `stop()` ends only this cluster's server.
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ebs.devstack.waiting import wait_until


class PostgresError(RuntimeError):
    """The private cluster could not be set up or started."""


def pg_bindir() -> Path:
    """The newest Debian PostgreSQL bin directory (or one holding pg_ctl on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise PostgresError("PostgreSQL is not installed (Debian: apt-get install postgresql)")


class PostgresServer:
    """One private cluster. Use as a context manager or call start()/stop().

    `socket_dir` is what libpq wants as host (psycopg2 `host=`, Koji's `DBHost`,
    SQLAlchemy `postgresql:///db?host=<socket_dir>`); `user` is the superuser.
    """

    def __init__(self, base: Path | None = None) -> None:
        self._own_base = base is None
        self.base = Path(base or tempfile.mkdtemp(prefix="ebs-pg-"))
        self.datadir = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.logfile = self.base / "postgres.log"
        self.bindir = pg_bindir()
        self.as_postgres = os.geteuid() == 0
        self.user = "postgres" if self.as_postgres else pwd.getpwuid(os.geteuid()).pw_name
        self.port = 5432  # only names the socket file; no TCP listener
        self.running = False

    # ------------------------------------------------------------ process
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise PostgresError(f"{' '.join(args[:1])} failed ({proc.returncode}): "
                                f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def start(self) -> PostgresServer:
        self.base.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chmod(self.base, 0o755)
            for p in (self.base, self.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.datadir), "-U", self.user, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        # The server runs as our direct child (not daemonized by pg_ctl) and
        # gets SIGQUIT (immediate shutdown) if the test process dies.
        args = [str(self.bindir / "postgres"), "-D", str(self.datadir),
                "-c", "listen_addresses=", "-c", f"unix_socket_directories={self.socket_dir}",
                "-c", f"port={self.port}", "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=200"]
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=self._child_setup, start_new_session=True)
        self.running = True
        proc = self.proc

        def ready() -> bool:
            return self._run("pg_isready", "-q", "-h", str(self.socket_dir),
                             "-p", str(self.port), check=False).returncode == 0

        try:
            wait_until(ready, 60, "PostgreSQL to start", alive=lambda: proc.poll() is None)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise PostgresError(f"PostgreSQL did not start ({exc}): {self._log_tail()}") from exc
        return self

    def _child_setup(self) -> None:
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        # after setuid, which clears it: die with the parent
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGQUIT)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # immediate shutdown: a test cluster
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.running = False
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------- databases
    def psql(self, db: str, sql: str | None = None, file: Path | None = None) -> str:
        """Run SQL (a string or a file) in `db`, stopping at the first error."""
        args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
                "-p", str(self.port), "-U", self.user, "-d", db]
        if file is not None:
            if self.as_postgres:  # the postgres user must be able to read it
                copy = self.base / f"load-{os.getpid()}-{file.name}"
                shutil.copyfile(file, copy)
                os.chmod(copy, 0o644)
                file = copy
            args += ["-f", str(file)]
        if sql is not None:
            args += ["-c", sql]
        return self._run(*args).stdout

    def create_database(self, name: str, owner: str | None = None) -> str:
        """Create database `name` (and role `owner`, if given and new); returns its DSN."""
        if owner and owner != self.user:
            self.psql("postgres", f'DO $$BEGIN CREATE ROLE "{owner}" LOGIN SUPERUSER; '
                                  "EXCEPTION WHEN duplicate_object THEN NULL; END$$;")
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port),
                  "-U", self.user, "-O", owner or self.user, name)
        return self.dsn(name, owner)

    def dsn(self, db: str, user: str | None = None) -> str:
        return f"host={self.socket_dir} port={self.port} dbname={db} user={user or self.user}"

    def sqlalchemy_url(self, db: str, user: str | None = None) -> str:
        return (f"postgresql://{user or self.user}@/{db}"
                f"?host={self.socket_dir}&port={self.port}")
