"""The pieces of an end-to-end run on the real stack: a Temporal dev server, the
real ``ebs worker`` process (the console script) with a config file pointing
at the real Koji hub and Bodhi, and packages made up per test with real
Rawhide builds.

    with TemporalDevServer() as temporal:
        seeded = seed_rawhide(koji_stack, ["t1a", "t1b"])
        config = write_ebs_config(tmp_path, koji_stack, bodhi, oidc, temporal.address,
                                  queue, skip_tag=[...], ordering={...})
        worker = EbsWorker(config, tmp_path / "worker.log").start()
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import koji
import requests
import yaml

from ebs.contracts.search import SEARCH_ATTRIBUTES
from ebs.devstack.processes import free_port, port_open
from ebs.devstack.waiting import wait_until
from ebs.temporal_client import temporal_cli_path
from tests.realstack.koji_stack import TRIGGER_TAG, KojiStack

EBS_USER = "ebs"


class TemporalDevServer:
    """``temporal server start-dev`` on free ports, headless, in memory, with
    ebs's search attributes registered at start."""

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="ebs-e2e-temporal-", suffix=".log")[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> TemporalDevServer:
        self.port = free_port()
        args = [temporal_cli_path(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                "--port", str(self.port), "--http-port", str(free_port()),
                "--metrics-port", str(free_port()), "--log-level", "warn",
                "--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"]
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        proc = self.proc

        def running() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"temporal dev server exited: {self.log.read_text()[-2000:]}")
            return True

        try:
            wait_until(lambda: port_open(self.port), timeout, "the temporal dev server",
                       alive=running, interval=0.1)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> TemporalDevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ebs_console_script() -> str:
    """The `ebs` console script of the venv running the tests."""
    script = Path(sys.executable).parent / "ebs"
    if not script.exists():
        raise FileNotFoundError(f"{script}: the ebs console script is not installed")
    return str(script)


class EbsWorker:
    """The real ``ebs worker`` process; ``kill()`` is a crash (SIGKILL)."""

    def __init__(self, config: Path, log: Path, home: Path) -> None:
        self.config, self.log, self.home = config, log, home
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> EbsWorker:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOME": str(self.home)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [ebs_console_script(), "worker", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"ebs worker exited with {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def write_ebs_config(directory: Path, stack: KojiStack, *, bodhi_url: str, bodhi_token: Path,
                     oidc_url: str, temporal_address: str, task_queue: str, components: list[str],
                     scratch: bool = False, skip_tag: list[str] | None = None,
                     ordering: dict[str, int] | None = None, hub_url: str | None = None,
                     **timers: float) -> Path:
    """An ebs config for the real hub (password login as ``ebs``) and the real
    Bodhi (a bodhi-client token store of ``ebs``), with short timers."""
    password_file = directory / "koji-password"
    password_file.write_text(stack.hub.passwords[EBS_USER] + "\n")
    password_file.chmod(0o600)
    data: dict[str, Any] = {
        "configuration": {
            "koji": stack.koji_config_dict(
                **({"server": hub_url} if hub_url else {}),
                auth={"method": "password", "user": EBS_USER,
                      "password_file": str(password_file)},
                scratch_build=scratch, fail_fast=False, side_tag_timeout=60),
            "bodhi": {"url": bodhi_url,
                      "auth": {"method": "token-file", "token_file": str(bodhi_token),
                               "id_provider": oidc_url}},
            "control": {"skip_tag": skip_tag or [], "ordering": ordering or {}},
            "email": False,
            "open_id_connect": False,
        },
        "components": {"overrides": {name: {} for name in components}},
        "temporal": {"address": temporal_address, "namespace": "default",
                     "task_queue": task_queue},
        "timers": {"lull": 2, "task_poll": 1, "repo_poll": 0.5, "stable_poll": 0.5,
                   **timers},
    }
    path = directory / "ebs.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Seeded:
    name: str
    nvr: str
    build_id: int
    src: str


def seed_rawhide(stack: KojiStack, names: list[str], version: str = "1.0",
                 release: str = "1") -> dict[str, Seeded]:
    """Made-up packages with a real Rawhide build each (build task, RPMs) in
    the trigger tag, as Bodhi leaves them after gating."""
    for name in names:
        stack.add_package(name)
    sources = [stack.builder.register_source(n, version, release) for n in names]
    tasks = stack.run_builds([(src, "rawhide") for src in sources])
    admin = stack.admin()
    try:
        with admin.multicall(strict=True) as mc:
            calls = [mc.listBuilds(taskID=t) for t in tasks]
        builds = [c.result[0] for c in calls]
        with admin.multicall(strict=True) as mc:
            for build in builds:
                mc.tagBuildBypass(TRIGGER_TAG, build["build_id"])
    finally:
        admin.logout()
    return {n: Seeded(n, b["nvr"], int(b["build_id"]), src)
            for n, b, src in zip(names, builds, sources, strict=True)}


def build_tasks(session: koji.ClientSession, src: str, owner: str = EBS_USER
                ) -> list[dict[str, Any]]:
    """Every `build` task of `owner` for `src` the hub holds, in any state."""
    user = session.getUser(owner)
    rows = session.listTasks(opts={"method": "build", "owner": user["id"], "decode": True},
                             queryOpts={"order": "id"})
    return [r for r in rows if r["request"] and r["request"][0] == src]


_BUILD_CALL = re.compile(rb"<name>methodName</name>\s*<value><string>build</string>")


class HoldBuildAnswerProxy:
    """An HTTP proxy in front of the hub that forwards everything, but keeps
    the hub's answer to the first request that submits ``build`` calls: the
    hub has accepted the builds, the worker never hears so. ``accepted`` is set
    then; a test kills the worker meanwhile (its connection just breaks)."""

    def __init__(self, hub_url: str) -> None:
        self.hub_url = hub_url
        self.accepted = threading.Event()
        self._release = threading.Event()
        self.build_requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                answer = requests.post(f"{proxy.hub_url}{self.path[len('/kojihub'):]}",
                                       data=body, headers=headers, timeout=300)
                if _BUILD_CALL.search(body):
                    with proxy._lock:
                        proxy.build_requests += 1
                        first = proxy.build_requests == 1
                    if first:
                        proxy.accepted.set()
                        proxy._release.wait(120)
                        return  # no answer: the caller is gone by now
                self.send_response(answer.status_code)
                for k, v in answer.headers.items():
                    if k.lower() in ("content-type", "koji-session-callnum"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/kojihub"

    def start(self) -> HoldBuildAnswerProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
