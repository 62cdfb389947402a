"""deploy/temporal/compose/: the compose-spec JSON schema (vendored by
check-jsonschema), cross-references (secrets, configs, mounts, dependencies,
commands), and the configs it ships loading with ebs's loader and fedora-messaging.

Not checked here (no container engine): starting the stack."""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ebs.config.loader import load_config
from tests.helpers.deploy import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    CONTAINERFILE,
    EBS_PROCESSES,
    REGISTER_SCRIPT,
    ROOT,
    SCRIPTS,
    check_command,
    check_messaging_config,
    process_secret_paths,
    same_as_packaged,
)


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
        check_command(argv, f"compose service ebs-{process}")

    config_path = config_files["--config"]
    warnings: list[str] = []
    load_config(config_path, warn=warnings.append)  # ebs's own validation of the shipped config
    assert not warnings, f"{config_path}: {warnings}"
    messaging = config_files["--messaging-config"].read_text()
    check_messaging_config(messaging, "compose fedora-messaging.toml", tmp_path)
    same_as_packaged(messaging, "staging.toml", "compose fedora-messaging.toml")

    config = yaml.safe_load(config_path.read_text())
    for process, paths in process_secret_paths(config, messaging).items():
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
