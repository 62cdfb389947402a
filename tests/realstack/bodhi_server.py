"""Run the real Bodhi server (bodhi-server 26.4.0) for the realstack tests.

Runs under Bodhi's own venv (``.realstack/bodhi-venv``), never ebs's: it
imports nothing from ebs.  ``python bodhi_server.py SETUP.json`` does, in one
process (Bodhi's imports are the slow part):

1. ``initialize_bodhi_db`` on the ini (schema into the private PostgreSQL);
2. the release rows, with Bodhi's own models;
3. serves Bodhi's WSGI app (``pyramid.paster.get_app``) with waitress on the
   given port, and writes ``ready`` to the ready file once it listens.

What differs from a production Bodhi, each because this machine has no such
service:

- Koji login: Bodhi logs in with Kerberos (``gssapi_login``); here it is a
  password login to the fixture's hub with the user and password of SETUP.
- Celery: there is no broker or worker; every ``.delay()``/``apply_async``
  runs the task at once in a thread of its own and waits for it (an eager task
  in the request's thread would close the request's DB session).
- Messages: ``fedora_messaging.api.publish`` is replaced by a recorder; the
  fixture reads them at ``GET /_realstack/messages``.
- ``POST /_realstack/signed`` (JSON ``{"build": NVR, "tag": TAG}``) runs Bodhi's
  own signed handler (``bodhi.server.consumers.signed.SignedHandler``) on the
  ``buildsys.tag`` message Koji would send when the signer moved ``NVR`` into
  ``TAG``; ``POST /_realstack/approve_testing`` runs Bodhi's ``approve_testing``
  job (a cron job in production).  Both answer the job's log lines.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import traceback
from typing import Any


def main() -> None:
    setup = json.loads(open(sys.argv[1]).read())
    os.environ["BODHI_CONFIG"] = setup["ini"]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _patch_koji_login(setup["koji_user"], setup["koji_password"])
    messages = _record_messages()
    _run_tasks_in_threads()

    from bodhi.server.scripts import initializedb
    initializedb.main(["initialize_bodhi_db", setup["ini"]])
    _create_releases(setup["ini"], setup["releases"])

    import waitress
    from pyramid.paster import get_app
    app = get_app(setup["ini"])
    server = waitress.create_server(_Control(app, messages), host="127.0.0.1",
                                    port=setup["port"], threads=8, channel_timeout=300)
    with open(setup["ready_file"], "w") as ready:
        ready.write("ready\n")
    server.run()


def _patch_koji_login(user: str, password: str) -> None:
    """Bodhi's ``koji_login`` calls ``gssapi_login``; log in with a password instead."""
    import koji

    def password_login(self: Any, *args: Any, **kwargs: Any) -> bool:
        self.opts["user"], self.opts["password"] = user, password
        return bool(self.login())

    koji.ClientSession.gssapi_login = password_login


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []

    def publish(self, message: Any, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.messages.append({"topic": message.topic, "body": message.body,
                                  "id": message.id})


def _record_messages() -> _Recorder:
    import fedora_messaging.api

    recorder = _Recorder()
    fedora_messaging.api.publish = recorder.publish
    return recorder


def _run_tasks_in_threads() -> None:
    import celery.app.task

    def apply_async(self: Any, args: Any = None, kwargs: Any = None, *_a: Any,
                    **_kw: Any) -> Any:
        result: dict[str, Any] = {}

        def run() -> None:
            result["r"] = self.apply(args, kwargs)
            if result["r"].failed():
                logging.getLogger("realstack").error(
                    "task %s failed: %s", self.name, result["r"].traceback)

        thread = threading.Thread(target=run, name=f"task-{self.name}")
        thread.start()
        thread.join()
        return result["r"]

    celery.app.task.Task.apply_async = apply_async


def _create_releases(ini: str, releases: list[dict[str, Any]]) -> None:
    from bodhi.server import initialize_db
    from bodhi.server.models import PackageManager, Release, ReleaseState
    from pyramid.paster import get_appsettings
    from sqlalchemy.orm import sessionmaker

    engine = initialize_db(get_appsettings(ini))
    session = sessionmaker(bind=engine)()
    for spec in releases:
        if session.query(Release).filter_by(name=spec["name"]).first() is not None:
            continue
        spec = dict(spec)
        spec["state"] = ReleaseState.from_string(spec.get("state", "pending"))
        spec["package_manager"] = PackageManager.from_string(
            spec.get("package_manager", "dnf"))
        session.add(Release(**spec))
    session.commit()
    session.close()


class _Control:
    """Bodhi's app plus the fixture's control routes under ``/_realstack/``."""

    def __init__(self, app: Any, recorder: _Recorder) -> None:
        self.app, self.recorder = app, recorder
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_realstack/"):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        status, answer = "200 OK", {}
        try:
            with self.lock:
                answer = self._control(path[len("/_realstack/"):], body)
        except Exception:  # noqa: BLE001 - the answer carries it to the test
            status, answer = "500 Internal Server Error", {"error": traceback.format_exc()}
        data = json.dumps(answer, default=str).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data)))])
        return [data]

    def _control(self, what: str, body: dict[str, Any]) -> dict[str, Any]:
        if what == "messages":
            with self.recorder.lock:
                return {"messages": list(self.recorder.messages)}
        with _captured_log() as log:
            if what == "signed":
                _signed(body["build"], body["tag"])
            elif what == "approve_testing":
                from bodhi.server.tasks import approve_testing_task
                approve_testing_task.delay()
            else:
                raise ValueError(f"no control route {what!r}")
        return {"log": log.getvalue().splitlines()}


def _signed(nvr: str, tag: str) -> None:
    from bodhi.server import buildsys
    from bodhi.server.consumers.signed import SignedHandler
    from fedora_messaging.api import Message

    koji = buildsys.get_session()
    build = koji.getBuild(nvr, strict=True)
    taginfo = koji.getTag(tag, strict=True)
    message = Message(topic="org.fedoraproject.prod.buildsys.tag", body={
        "build_id": build["build_id"], "name": build["name"], "version": build["version"],
        "release": build["release"], "tag": tag, "tag_id": taginfo["id"], "instance": "primary",
        "user": "robosignatory", "owner": build["owner_name"],
    })
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            SignedHandler()(message)
        except Exception as err:  # noqa: BLE001
            result["error"] = err

    thread = threading.Thread(target=run, name="signed-handler")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]


class _captured_log:  # noqa: N801 - used as a context manager
    def __enter__(self) -> io.StringIO:
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(self.handler)
        return self.buffer

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger().removeHandler(self.handler)


if __name__ == "__main__":
    main()
