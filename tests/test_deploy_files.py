"""The production deployment files (deploy/temporal/), checked with the tools that work offline.

- Containerfile: hadolint, every COPY source exists, the entry point is the
  package's `ebs` console script and its subcommands/flags exist in ebs.cli.
- compose file: the compose-spec JSON schema (vendored by check-jsonschema), plus
  cross-references (secrets, configs, mounts, dependencies, commands).
- Helm chart: strict `helm lint` and real rendering (Helm's Go engine through
  helm-python-sdk), every rendered object validated against the Kubernetes
  schemas of kubernetes-validate, the values schema, secret least privilege.
- Shell scripts: shellcheck; the search-attribute script run against a real
  Temporal dev server (idempotent, fails fast on a type clash).
- The configs they ship load with ebs's config loader and fedora-messaging.

Not checked here (no container engine, no cluster): building the image, starting
the compose stack, installing the chart.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import pytest_asyncio
import yaml
from temporalio.testing import WorkflowEnvironment

from ebs.config.loader import load_config, parse_config
from ebs.contracts.search import SEARCH_ATTRIBUTES
from ebs.temporal_client import temporal_cli_path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "temporal"
CONTAINERFILE = DEPLOY / "Containerfile"
SCRIPTS = DEPLOY / "scripts"
REGISTER_SCRIPT = SCRIPTS / "register-search-attributes.sh"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
CHART = DEPLOY / "helm" / "ebs"
KUBE_VERSION = "1.30.0"  # OpenShift 4.17

EBS_PROCESSES = ("worker", "ingest", "api")
# The Koji topics the bridge follows, as routing-key suffixes.
BRIDGE_TOPICS = ("buildsys.tag", "buildsys.task.state.change", "buildsys.repo.init",
                 "buildsys.repo.done")


def _tool(name: str) -> str:
    """A binary installed by a test dependency into this interpreter's bin/."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"{name} not found; install the test extras (pip install -e '.[test]')"
    return found


# --- the CLI the deploy files call --------------------------------------------


def _cli_options() -> dict[str, set[str]]:
    """Subcommand -> the option names it accepts, read from ebs.cli (click parses
    every option of every subcommand)."""
    import click

    from ebs import cli

    group = next((g for g in (getattr(cli, "cli", None), getattr(cli, "main", None))
                  if isinstance(g, click.Group)), None)
    assert group is not None, "ebs.cli has no click group behind the `ebs` console script"
    ctx = click.Context(group)
    options: dict[str, set[str]] = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        options[name] = {
            opt for param in command.params if isinstance(param, click.Option)
            for opt in (*param.opts, *param.secondary_opts)
        }
    return options


def _check_command(argv: list[str], where: str) -> None:
    """`ebs <argv>` names an existing subcommand and only options it has."""
    options = _cli_options()
    sub, rest = argv[0], argv[1:]
    assert sub in options, f"{where}: `ebs {sub}` is not an ebs.cli subcommand ({sorted(options)})"
    for arg in rest:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            assert flag in options[sub], (
                f"{where}: `ebs {sub}` has no option {flag} (it has {sorted(options[sub])})"
            )


def test_console_script_is_ebs_cli_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["ebs"] == "ebs.cli:main"


def test_cli_has_the_processes_the_deployment_runs() -> None:
    options = _cli_options()
    for sub in EBS_PROCESSES:
        assert sub in options, f"ebs.cli has no `{sub}` subcommand"
        assert "--config" in options[sub], f"`ebs {sub}` takes no --config"
    assert "--messaging-config" in options["ingest"]


# --- Containerfile --------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return out


def test_containerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(CONTAINERFILE)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_containerfile_copies_only_what_exists() -> None:
    for keyword, args in _instructions(CONTAINERFILE):
        if keyword != "COPY" or "--from=" in args:
            continue
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"Containerfile copies {source}, which does not exist"


def test_containerfile_runs_the_ebs_console_script_as_non_root() -> None:
    instructions = _instructions(CONTAINERFILE)
    keywords = [k for k, _ in instructions]
    assert "HEALTHCHECK" not in keywords, "probes come from the orchestrator, not the image"
    assert keywords.count("FROM") == 2, "a build stage and a runtime stage"
    runtime = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM"):]
    build = instructions[: len(instructions) - len(runtime)]

    build_runs = " ".join(a for k, a in build if k == "RUN")
    assert "krb5-devel" in build_runs and "gcc" in build_runs, "gssapi (koji) builds from source"
    venv = re.search(r"python3 -m venv (\S+)", build_runs)
    assert venv, "the build stage makes a virtualenv"
    assert re.search(rf"{re.escape(venv[1])}/bin/pip install [^&]*\s\.(\s|$)", build_runs), (
        "the project itself is installed from pyproject.toml"
    )

    runtime_runs = " ".join(a for k, a in runtime if k == "RUN")
    assert "krb5-workstation" in runtime_runs and "krb5-libs" in runtime_runs

    (entrypoint,) = [json.loads(a) for k, a in runtime if k == "ENTRYPOINT"]
    assert entrypoint == [f"{venv[1]}/bin/ebs"], "the entry point is the `ebs` console script"
    (user,) = [a for k, a in runtime if k == "USER"]
    assert user.isdigit() and int(user) != 0, "a numeric non-root USER (OpenShift, runAsNonRoot)"
    assert ("EXPOSE", "8080") in runtime
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert "KRB5CCNAME=FILE:" in env, "Fedora's default KEYRING ccache does not work in containers"


def _image_paths() -> set[str]:
    """Destination paths that the runtime stage COPYs into the image."""
    paths = set()
    for keyword, args in _instructions(CONTAINERFILE):
        if keyword == "COPY":
            paths.add(shlex.split(args)[-1])
    return paths


def _ignore_patterns(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    """Whether a context path (or one of its parent directories) matches a pattern.

    Enough of the .dockerignore syntax for these files: root-anchored globs,
    `**/` for any depth; no `!` exceptions."""
    import fnmatch

    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        assert not pattern.startswith("!"), "exceptions are not expected here"
        anchored = pattern.strip("/")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, anchored):
                return True
            if anchored.startswith("**/") and fnmatch.fnmatchcase(
                prefix.rsplit("/", 1)[-1], anchored[3:]
            ):
                return True
    return False


def test_build_context_ignore_files() -> None:
    """The repo root is the build context: .containerignore (podman/buildah) and
    .dockerignore (Docker) are the same file and keep local state out of it."""
    containerignore, dockerignore = ROOT / ".containerignore", ROOT / ".dockerignore"
    assert containerignore.read_text() == dockerignore.read_text(), (
        ".dockerignore must be a copy of .containerignore"
    )
    patterns = _ignore_patterns(containerignore)
    for path in (".venv/bin/python", "state/temporal.db", ".git/HEAD", "bench/results/x.json",
                 "ebs/__pycache__/cli.cpython-312.pyc", "ebs.egg-info/PKG-INFO",
                 "deploy/temporal/compose/secrets/koji.keytab",
                 "deploy/temporal/compose/.env"):
        assert _ignored(path, patterns), f"{path} is sent to the image build"
    for keyword, args in _instructions(CONTAINERFILE):
        if keyword != "COPY" or "--from=" in args:
            continue
        for source in [p for p in shlex.split(args) if not p.startswith("--")][:-1]:
            assert not _ignored(source, patterns), f"the Containerfile copies ignored {source}"
    assert not _ignored("ebs/cli/__init__.py", patterns)
    assert not _ignored("pyproject.toml", patterns)


# --- shell scripts ---------------------------------------------------------------


def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert scripts
    result = subprocess.run(
        [_tool("shellcheck"), "--shell=sh", *map(str, scripts)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for script in scripts:
        assert os.access(script, os.X_OK), f"{script} is not executable"


def test_register_script_lists_ebs_search_attributes() -> None:
    match = re.search(r'^ATTRIBUTES="([^"]*)"', REGISTER_SCRIPT.read_text(), re.M)
    assert match, "ATTRIBUTES=... not found in the script"
    listed = dict(pair.split(":", 1) for pair in match[1].split())
    assert listed == SEARCH_ATTRIBUTES


@pytest_asyncio.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A private Temporal dev server: these tests create namespaces and clashes."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli_path())
    async with env:
        yield env


async def _run_register_script(env: WorkflowEnvironment, namespace: str,
                               **extra: str) -> tuple[int, str]:
    environ = {
        **os.environ,
        "PATH": f"{Path(temporal_cli_path()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
        "EBS_WAIT_SECONDS": "60",
        **extra,
    }
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", str(REGISTER_SCRIPT), env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _search_attribute_types(env: WorkflowEnvironment, namespace: str) -> dict[str, str]:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    resp = await env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    names = {
        IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
        IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
        IndexedValueType.INDEXED_VALUE_TYPE_TEXT: "Text",
    }
    return {k: names.get(v, str(v)) for k, v in resp.custom_attributes.items()}


async def test_register_script_creates_namespace_and_is_idempotent(
    dev_server: WorkflowEnvironment,
) -> None:
    for _ in range(2):
        code, out = await _run_register_script(
            dev_server, "ebs-deploy", EBS_CREATE_NAMESPACE="true"
        )
        assert code == 0, out
    assert "Namespace ebs-deploy exists" in out
    types = await _search_attribute_types(dev_server, "ebs-deploy")
    assert {k: v for k, v in types.items() if k in SEARCH_ATTRIBUTES} == SEARCH_ATTRIBUTES


async def test_register_script_fails_fast_on_a_type_clash(dev_server: WorkflowEnvironment) -> None:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await dev_server.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace="default",
            search_attributes={"EbsOutcome": IndexedValueType.INDEXED_VALUE_TYPE_TEXT},
        )
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    code, out = await _run_register_script(dev_server, "default")
    assert code != 0
    assert "EbsOutcome" in out and "different type" in out, out
    assert loop.time() - started < 30, "a clash is final: no waiting for the deadline"


async def test_register_script_gives_up_at_its_deadline() -> None:
    environ = {
        **os.environ,
        "PATH": f"{Path(temporal_cli_path()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # nothing listens there
        "EBS_WAIT_SECONDS": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", str(REGISTER_SCRIPT), env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode != 0
    assert "gave up" in out.decode()


# --- the configs deploy/temporal/ ships ------------------------------------------


def _secret_paths(config: Any) -> set[str]:
    """Every /run/secrets/... string anywhere in a parsed config."""
    found: set[str] = set()
    if isinstance(config, dict):
        for value in config.values():
            found |= _secret_paths(value)
    elif isinstance(config, list):
        for value in config:
            found |= _secret_paths(value)
    elif isinstance(config, str) and config.startswith("/run/secrets/"):
        found.add(config)
    return found


def _process_secret_paths(config: dict[str, Any], messaging_toml: str) -> dict[str, set[str]]:
    """Which process reads which secret file of the config: the worker logs in to
    Koji/Bodhi and sends mail, the bridge talks to the broker, the API validates
    OIDC bearer tokens (no secret file); all of them connect to Temporal."""
    cnf = config["configuration"]
    temporal = _secret_paths(config.get("temporal", {}))
    tls = tomllib.loads(messaging_toml).get("tls", {})
    return {
        "worker": _secret_paths(cnf["koji"]) | _secret_paths(cnf.get("email") or {}) | temporal,
        "ingest": _secret_paths(tls) | temporal,
        "api": _secret_paths(cnf.get("open_id_connect") or {}) | temporal,
    }


def _check_messaging_config(text: str, where: str, tmp_path: Path) -> None:
    from fedora_messaging.config import LazyConfig

    path = tmp_path / "fedora-messaging.toml"
    path.write_text(text)
    conf = LazyConfig().load_config(str(path))  # fedora-messaging's own validation
    assert conf["amqp_url"].startswith("amqps://"), f"{where}: the bus is reached over TLS"
    queues = set(conf["queues"])
    for binding in conf["bindings"]:
        assert binding["queue"] in queues, f"{where}: binding to an undeclared queue"
    keys = [k for b in conf["bindings"] for k in b["routing_keys"]]
    for topic in BRIDGE_TOPICS:
        assert any(k.endswith("." + topic) for k in keys), f"{where}: no binding for {topic}"
    for key in ("ca_cert", "certfile", "keyfile"):
        assert str(conf["tls"][key]).startswith("/run/secrets/"), f"{where}: tls.{key}"



def _same_as_packaged(text: str, packaged: str, where: str) -> None:
    """A deploy TOML is the bridge's packaged one (ebs/ingest/conf/) but for [tls]."""
    ours = tomllib.loads(text)
    theirs = tomllib.loads((ROOT / "ebs" / "ingest" / "conf" / packaged).read_text())
    ours.pop("tls"), theirs.pop("tls")
    assert ours == theirs, f"{where} differs from ebs/ingest/conf/{packaged} outside [tls]"

# --- compose ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())  # merge keys (<<) resolved
    assert isinstance(data, dict)
    return data


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema_file = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
                   / "compose-spec.json")
    schema = json.loads(schema_file.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_compose_references_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for top in ("secrets", "configs", "volumes", "networks"):
        defined = set(compose.get(top) or {})
        for name, svc in services.items():
            for ref in svc.get(top) or []:
                ref_name = ref if isinstance(ref, str) else ref.get("source", "")
                if top == "volumes":
                    ref_name = ref.split(":", 1)[0] if isinstance(ref, str) else ref_name
                    if ref_name.startswith((".", "/")):
                        source = (COMPOSE_DIR / ref_name).resolve()
                        assert source.exists(), f"{name}: bind mount {ref_name} does not exist"
                        continue
                assert ref_name in defined, f"{name}: {top} {ref_name!r} is not defined"
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown service {dep}"
    for name, config in (compose.get("configs") or {}).items():
        assert (COMPOSE_DIR / config["file"]).is_file(), f"config {name}: {config['file']} missing"
    readme = (COMPOSE_DIR / "secrets" / "README.md").read_text()
    for name, secret in (compose.get("secrets") or {}).items():
        file = Path(secret["file"])
        assert file.parent == Path("secrets"), f"secret {name} lives outside secrets/"
        assert f"`{file.name}`" in readme, f"secrets/README.md does not describe {file.name}"


def test_compose_builds_the_image_from_the_containerfile(compose: dict[str, Any]) -> None:
    for name in (f"ebs-{p}" for p in EBS_PROCESSES):
        build = compose["services"][name]["build"]
        context = (COMPOSE_DIR / build["context"]).resolve()
        assert context == ROOT
        assert (context / build["dockerfile"]).resolve() == CONTAINERFILE


def _mounted(service: dict[str, Any], kind: str) -> dict[str, str]:
    """target path -> source name of a service's compose secrets or configs."""
    out = {}
    for ref in service.get(kind) or []:
        source = ref if isinstance(ref, str) else ref["source"]
        target = ref.get("target") if isinstance(ref, dict) else None
        out[target or f"/run/secrets/{source}"] = source
    return out


def test_compose_processes_get_their_config_and_secret_files(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    services = compose["services"]
    configs = compose["configs"]
    config_files: dict[str, Path] = {}
    for process in EBS_PROCESSES:
        svc = services[f"ebs-{process}"]
        argv = svc["command"]
        assert argv[0] == process
        mounted = _mounted(svc, "configs")
        for flag in ("--config", "--messaging-config"):
            if flag in argv:
                target = argv[argv.index(flag) + 1]
                assert target in mounted, f"ebs-{process}: {flag} {target} is not mounted"
                config_files[flag] = COMPOSE_DIR / configs[mounted[target]]["file"]
        _check_command(argv, f"compose service ebs-{process}")

    config_path = config_files["--config"]
    warnings: list[str] = []
    load_config(config_path, warn=warnings.append)  # ebs's own validation of the shipped config
    assert not warnings, f"{config_path}: {warnings}"
    messaging = config_files["--messaging-config"].read_text()
    _check_messaging_config(messaging, "compose fedora-messaging.toml", tmp_path)
    _same_as_packaged(messaging, "staging.toml", "compose fedora-messaging.toml")

    config = yaml.safe_load(config_path.read_text())
    for process, paths in _process_secret_paths(config, messaging).items():
        mounted = _mounted(services[f"ebs-{process}"], "secrets")
        for path in paths:
            assert path in mounted, f"ebs-{process} reads {path}, which compose does not mount"


def test_compose_least_privilege_for_secrets(compose: dict[str, Any]) -> None:
    services = compose["services"]
    keytab = yaml.safe_load((COMPOSE_DIR / "config" / "ebs.yaml").read_text())[
        "configuration"]["koji"]["auth"]["keytab"]
    assert keytab in _mounted(services["ebs-worker"], "secrets")
    assert services["ebs-worker"]["environment"]["KRB5_CLIENT_KTNAME"] == keytab, (
        "Bodhi's Kerberos login takes the keytab from KRB5_CLIENT_KTNAME"
    )
    for process in ("ingest", "api"):
        assert keytab not in _mounted(services[f"ebs-{process}"], "secrets")
    assert not [s for s in compose.get("secrets") or {} if "oidc" in s], (
        "the API validates bearer tokens: no OIDC client secret"
    )
    for process in EBS_PROCESSES:
        svc = services[f"ebs-{process}"]
        assert svc.get("read_only") is True and "ALL" in svc.get("cap_drop", [])
        for value in (svc.get("environment") or {}):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|KEY", str(value)), (
                f"ebs-{process}: secrets are files, not environment variables"
            )


def test_compose_temporal_setup_matches_the_ebs_config(compose: dict[str, Any]) -> None:
    services = compose["services"]
    setup = services["temporal-setup"]
    config = load_config(COMPOSE_DIR / "config" / "ebs.yaml")
    env = setup["environment"]
    assert env["TEMPORAL_ADDRESS"] == config.temporal.address
    assert env["TEMPORAL_NAMESPACE"] == config.temporal.namespace
    mounts = {v.split(":")[1]: (COMPOSE_DIR / v.split(":")[0]).resolve()
              for v in setup["volumes"]}
    script_in_container = setup["entrypoint"][-1]
    assert mounts[script_in_container] == REGISTER_SCRIPT
    for process in EBS_PROCESSES:
        deps = services[f"ebs-{process}"]["depends_on"]
        assert deps["temporal-setup"]["condition"] == "service_completed_successfully"
    schema = services["temporal-schema"]
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    schema_mounts = {v.split(":")[1]: (COMPOSE_DIR / v.split(":")[0]).resolve()
                     for v in schema["volumes"]}
    assert schema_mounts[schema["entrypoint"][-1]] == SCRIPTS / "setup-temporal-schema.sh"
    dynamic = yaml.safe_load((COMPOSE_DIR / "temporal-server" / "dynamicconfig.yaml").read_text())
    for key, entries in dynamic.items():
        assert isinstance(entries, list) and all("value" in e for e in entries), key


def test_compose_api_healthcheck_uses_the_alive_probe(compose: dict[str, Any]) -> None:
    test = " ".join(compose["services"]["ebs-api"]["healthcheck"]["test"])
    assert "/alive" in test


# --- Helm chart -------------------------------------------------------------------


def _render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name="ebs", namespace="eln-ops", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in rendered.items():
        if path.endswith(".txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def _values_file(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CHART / name).read_text())
    assert isinstance(data, dict)
    return data


TEMPORAL_TLS_VALUES: dict[str, Any] = {
    "secrets": {"temporal": {"name": "ebs-temporal", "mountPath": "/run/secrets/ebs/temporal"}},
    "config": {"temporal": {
        "tls": True,
        "tls_ca_file": "/run/secrets/ebs/temporal/ca.crt",
        "tls_cert_file": "/run/secrets/ebs/temporal/tls.crt",
        "tls_key_file": "/run/secrets/ebs/temporal/tls.key",
    }},
    "worker": {"replicaCount": 4},
    "ingest": {"metricsPort": 9091},
    "api": {"route": {"enabled": True, "host": "ebs.apps.example.org"}},
}

VALUE_SETS = {
    "defaults": lambda: {},
    "production": lambda: _values_file("values-production.yaml"),
    "temporal-tls": lambda: TEMPORAL_TLS_VALUES,
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, _render(VALUE_SETS[request.param]())


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _deployment(docs: list[dict[str, Any]], process: str) -> dict[str, Any]:
    (dep,) = [d for d in docs if d["kind"] == "Deployment"
              and d["metadata"]["labels"]["app.kubernetes.io/component"] == process]
    return dep


def test_chart_passes_strict_lint() -> None:
    import helm_python as helm

    report = helm.lint(str(CHART), strict=True)
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not serious, report


def test_chart_objects_are_valid_kubernetes(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    import kubernetes_validate

    name, docs = rendered
    kinds = {d["kind"] for d in docs}
    assert {"ConfigMap", "Deployment", "Service", "Job", "ServiceAccount"} <= kinds
    for doc in docs:
        if doc["apiVersion"] == "route.openshift.io/v1":
            continue  # an OpenShift CRD: checked in test_chart_route_points_at_the_api
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"[{name}] {doc['kind']} {doc['metadata']['name']}: {e.message}")


def test_chart_route_points_at_the_api(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    routes = [d for d in docs if d["kind"] == "Route"]
    assert len(routes) == 1
    spec = routes[0]["spec"]
    assert set(spec) <= {"host", "to", "port", "tls", "wildcardPolicy"}
    service = _by_kind(docs, "Service")[spec["to"]["name"]]
    assert spec["to"]["kind"] == "Service"
    assert spec["port"]["targetPort"] in {p["name"] for p in service["spec"]["ports"]}
    assert spec["tls"]["termination"] in {"edge", "reencrypt", "passthrough"}
    assert spec["tls"]["insecureEdgeTerminationPolicy"] in {"None", "Allow", "Redirect"}


def test_chart_config_is_a_valid_ebs_config(
    rendered: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    name, docs = rendered
    (configmap,) = _by_kind(docs, "ConfigMap").values()
    warnings: list[str] = []
    parse_config(configmap["data"]["ebs.yaml"], f"chart[{name}] ebs.yaml", warn=warnings.append)
    assert not warnings, f"chart[{name}] ebs.yaml: {warnings}"
    _check_messaging_config(configmap["data"]["fedora-messaging.toml"], f"chart[{name}]", tmp_path)
    packaged = "production.toml" if name == "production" else "staging.toml"
    _same_as_packaged(configmap["data"]["fedora-messaging.toml"], packaged, f"chart[{name}]")
    if name == "production":
        config = yaml.safe_load(configmap["data"]["ebs.yaml"])
        assert config["configuration"]["koji"]["profile"] == "koji"
        assert config["configuration"]["bodhi"]["staging"] is False
        assert ".prod." in configmap["data"]["fedora-messaging.toml"]


def _container(dep: dict[str, Any]) -> dict[str, Any]:
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return container


def _mounts(dep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the pod volume mounted there."""
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in _container(dep)["volumeMounts"]}


def _covered(path: str, mounts: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    for mount_path, volume in mounts.items():
        if path.startswith(mount_path.rstrip("/") + "/"):
            return volume
    return None


def test_chart_processes_run_ebs_with_their_files(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    name, docs = rendered
    (configmap,) = _by_kind(docs, "ConfigMap").values()
    config = yaml.safe_load(configmap["data"]["ebs.yaml"])
    needs = _process_secret_paths(config, configmap["data"]["fedora-messaging.toml"])
    for process in EBS_PROCESSES:
        dep = _deployment(docs, process)
        container = _container(dep)
        argv = container["args"]
        assert "command" not in container, "the image's entry point (`ebs`) runs"
        assert argv[0] == process
        _check_command(argv, f"chart[{name}] {process}")
        mounts = _mounts(dep)
        config_flags = (("--config", "ebs.yaml"), ("--messaging-config", "fedora-messaging.toml"))
        for flag, key in config_flags:
            if flag in argv:
                path = argv[argv.index(flag) + 1]
                volume = _covered(path, mounts)
                assert volume and volume["configMap"]["name"] == configmap["metadata"]["name"]
                assert path.endswith("/" + key)
        for path in needs[process] | {a for a in argv if a.startswith("/run/secrets/")}:
            volume = _covered(path, mounts)
            assert volume and "secret" in volume, f"[{name}] {process} reads {path}: not mounted"
        pod = dep["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert "runAsUser" not in pod["securityContext"], "OpenShift assigns the UID"
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        for writable in ("/tmp", "/var/lib/ebs"):
            assert "emptyDir" in mounts[writable]


def test_chart_secrets_reach_only_the_processes_that_need_them(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    name, docs = rendered
    secret_names = {
        process: {v["secret"]["secretName"]
                  for v in _deployment(docs, process)["spec"]["template"]["spec"]["volumes"]
                  if "secret" in v}
        for process in EBS_PROCESSES
    }
    assert "ebs-koji-keytab" in secret_names["worker"]
    assert "ebs-koji-keytab" not in secret_names["api"] | secret_names["ingest"]
    assert "ebs-fedora-messaging" in secret_names["ingest"]
    assert "ebs-fedora-messaging" not in secret_names["api"] | secret_names["worker"]
    assert "ebs-api-tokens" in secret_names["api"]
    assert "ebs-api-tokens" not in secret_names["worker"] | secret_names["ingest"]
    # The API validates bearer tokens: it has no OIDC client secret to mount.
    assert not any("oidc" in s for names in secret_names.values() for s in names)
    (configmap,) = _by_kind(docs, "ConfigMap").values()
    config = yaml.safe_load(configmap["data"]["ebs.yaml"])
    keytab = config["configuration"]["koji"]["auth"]["keytab"]
    for process in EBS_PROCESSES:
        env = {e["name"]: e["value"]
               for e in _container(_deployment(docs, process)).get("env", [])}
        if process == "worker":
            assert env.get("KRB5_CLIENT_KTNAME") == keytab, "Bodhi's Kerberos login needs it"
        else:
            assert "KRB5_CLIENT_KTNAME" not in env
    if name == "temporal-tls":
        assert all("ebs-temporal" in s for s in secret_names.values())
    for doc in docs:
        assert doc["kind"] != "Secret", "the chart references secrets, never renders them"


def test_chart_api_probes_and_service(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    dep = _deployment(docs, "api")
    container = _container(dep)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    argv = container["args"]
    assert str(ports["http"]) == argv[argv.index("--port") + 1]
    assert argv[argv.index("--host") + 1] == "0.0.0.0", "reachable from the kubelet and Service"
    assert container["livenessProbe"]["httpGet"]["path"] == "/alive"
    assert container["startupProbe"]["httpGet"]["path"] == "/startup"
    assert container["readinessProbe"]["httpGet"]["path"] == "/startup"
    for probe in ("livenessProbe", "startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    services = _by_kind(docs, "Service")
    api_service = services[f"{dep['metadata']['name']}"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert api_service["spec"]["selector"].items() <= pod_labels.items()
    for process in ("worker", "ingest"):
        other = _deployment(docs, process)["spec"]["template"]["metadata"]["labels"]
        assert not api_service["spec"]["selector"].items() <= other.items()
    assert api_service["spec"]["ports"][0]["targetPort"] == "http"


def test_chart_metrics_ports(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    services = _by_kind(docs, "Service")
    assert "--metrics-port" not in _container(_deployment(docs, "worker"))["args"]
    container = _container(_deployment(docs, "ingest"))
    argv = container["args"]
    if name != "temporal-tls":
        assert "--metrics-port" not in argv and "ebs-ingest-metrics" not in services
        return
    port = int(argv[argv.index("--metrics-port") + 1])
    assert argv[argv.index("--metrics-addr") + 1] == "0.0.0.0", "scraped from outside the pod"
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
    assert services["ebs-ingest-metrics"]["spec"]["ports"][0]["port"] == port


def test_chart_search_attribute_job(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = rendered
    (configmap,) = _by_kind(docs, "ConfigMap").values()
    temporal = yaml.safe_load(configmap["data"]["ebs.yaml"])["temporal"]
    (job,) = _by_kind(docs, "Job").values()
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"pre-install", "pre-upgrade"}, "registered before any process starts"
    pod = job["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod, "the release's ServiceAccount does not exist yet"
    (container,) = pod["containers"]
    assert container["command"][-1] in _image_paths(), "the script is baked into the image"
    assert Path(container["command"][-1]).name == REGISTER_SCRIPT.name
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TEMPORAL_ADDRESS"] == temporal["address"]
    assert env["TEMPORAL_NAMESPACE"] == temporal["namespace"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    for var in ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_CLIENT_CERT_PATH",
                "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_API_KEY_FILE"):
        if var in env:
            assert _covered(env[var], mounts), f"{var}={env[var]} is not mounted in the Job"
    if name == "temporal-tls":
        assert env["TEMPORAL_TLS"] == "true"
        assert env["TEMPORAL_TLS_CLIENT_CERT_PATH"] == temporal["tls_cert_file"]


def test_chart_values_schema_rejects_mistakes() -> None:
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(_values_file("values-production.yaml"))
        for bad in ({"wroker": {"replicaCount": 2}},
                    {"worker": {"replicaCount": "two"}},
                    {"image": {"pullPolicy": "Sometimes"}}):
            with pytest.raises(helm.HelmValuesError):
                chart.validate_schema(bad)


def test_chart_names_an_unknown_secret_clearly() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmRenderError, match="worker.secrets lists \"kojii\""):
        _render({"worker": {"secrets": ["kojii"]}})


def test_chart_process_can_be_disabled() -> None:
    docs = _render({"ingest": {"enabled": False}})
    components = {d["metadata"]["labels"]["app.kubernetes.io/component"]
                  for d in docs if d["kind"] == "Deployment"}
    assert components == {"worker", "api"}



# --- docs/CONFIG.md -----------------------------------------------------------------


def _model_keys() -> set[str]:
    """Every key path of the config schema; `<name>` stands for a user-chosen key."""
    import types
    import typing

    from pydantic import BaseModel

    from ebs.config.model import EbsConfig

    def unwrap(annotation: Any) -> Any:
        while True:
            origin = typing.get_origin(annotation)
            if origin is typing.Annotated:
                annotation = typing.get_args(annotation)[0]
            elif origin in (typing.Union, types.UnionType):
                args = [a for a in typing.get_args(annotation) if a is not type(None)]
                if len(args) != 1:
                    return annotation
                annotation = args[0]
            else:
                return annotation

    def is_model(t: Any) -> bool:
        return isinstance(t, type) and issubclass(t, BaseModel)

    keys: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            path = f"{prefix}.{field.alias or name}" if prefix else (field.alias or name)
            t = unwrap(field.annotation)
            if is_model(t):
                walk(t, path)
            elif typing.get_origin(t) is dict and is_model(unwrap(typing.get_args(t)[1])):
                walk(unwrap(typing.get_args(t)[1]), f"{path}.<name>")
            else:
                keys.add(path)

    walk(EbsConfig, "")
    return keys


def test_config_reference_documents_every_key() -> None:
    text = (ROOT / "docs" / "CONFIG.md").read_text()
    documented = set(re.findall(
        r"^\| `((?:configuration|components|temporal|timers|messaging)\.[^`]+)` \|", text, re.M
    ))
    keys = _model_keys()
    assert not keys - documented, f"docs/CONFIG.md lacks {sorted(keys - documented)}"
    assert not documented - keys, f"docs/CONFIG.md documents unknown {sorted(documented - keys)}"


def test_chart_config_git_reaches_the_worker_and_the_bridge() -> None:
    repo = "https://pagure.io/eln-buildsync-config.git#main:elnbuildsync_dynamic.yaml"
    docs = _render({"configGit": repo})
    for process in ("worker", "ingest"):
        argv = _container(_deployment(docs, process))["args"]
        assert argv[argv.index("--config-git") + 1] == repo
        assert argv.index("--config") < argv.index("--config-git"), "the repo merges last"
        _check_command(argv, f"chart[configGit] {process}")
    assert "--config-git" not in _container(_deployment(docs, "api"))["args"]
    assert all("--config-git" not in _container(_deployment(_render(), p))["args"]
               for p in ("worker", "ingest"))
