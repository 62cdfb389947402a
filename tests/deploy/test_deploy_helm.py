"""deploy/temporal/helm/ebs: strict `helm lint` and real rendering (Helm's Go
engine through helm-python-sdk), every rendered object validated against the
Kubernetes schemas of kubernetes-validate, the values schema, secret least privilege.

Not checked here (no cluster): installing the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ebs.config.loader import parse_config
from tests.helpers.deploy import (
    CHART,
    EBS_PROCESSES,
    KUBE_VERSION,
    REGISTER_SCRIPT,
    check_command,
    check_messaging_config,
    image_paths,
    process_secret_paths,
    same_as_packaged,
)


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
    check_messaging_config(configmap["data"]["fedora-messaging.toml"], f"chart[{name}]", tmp_path)
    packaged = "production.toml" if name == "production" else "staging.toml"
    same_as_packaged(configmap["data"]["fedora-messaging.toml"], packaged, f"chart[{name}]")
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
    needs = process_secret_paths(config, configmap["data"]["fedora-messaging.toml"])
    for process in EBS_PROCESSES:
        dep = _deployment(docs, process)
        container = _container(dep)
        argv = container["args"]
        assert "command" not in container, "the image's entry point (`ebs`) runs"
        assert argv[0] == process
        check_command(argv, f"chart[{name}] {process}")
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
    assert container["command"][-1] in image_paths(), "the script is baked into the image"
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




def test_chart_config_git_reaches_the_worker_and_the_bridge() -> None:
    repo = "https://pagure.io/eln-buildsync-config.git#main:elnbuildsync_dynamic.yaml"
    docs = _render({"configGit": repo})
    for process in ("worker", "ingest"):
        argv = _container(_deployment(docs, process))["args"]
        assert argv[argv.index("--config-git") + 1] == repo
        assert argv.index("--config") < argv.index("--config-git"), "the repo merges last"
        check_command(argv, f"chart[configGit] {process}")
    assert "--config-git" not in _container(_deployment(docs, "api"))["args"]
    assert all("--config-git" not in _container(_deployment(_render(), p))["args"]
               for p in ("worker", "ingest"))
