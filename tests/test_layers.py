"""Imports in ebs/ flow one way: no module imports from a layer above its own.

The layers, lowest first (docs/ARCHITECTURE.md draws them):

    0 contracts   ebs.contracts (data crossing workflow/activity boundaries), ebs (the version)
    1 config      ebs.config, ebs.metrics
    2 adapters    ebs.koji, ebs.bodhi, ebs.bus, ebs.mail, ebs.temporal_client,
                  ebs.payload_codec
    3 activities  ebs.activities, ebs.schedules
    4 workflows   ebs.workflows
    5 services    ebs.worker, ebs.ingest, ebs.api, ebs.cli, ebs.dev, ebs.devstack,
                  ebs.simulator, ebs.__main__

A module may import its own layer and any layer below it, never one above.
Within ebs.contracts, nothing outside ebs.contracts may be imported at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ebs

EBS = Path(ebs.__file__).parent

# The longest matching prefix decides a module's layer.
LAYERS: dict[str, int] = {
    "ebs": 0,
    "ebs.contracts": 0,
    "ebs.config": 1,
    "ebs.metrics": 1,
    "ebs.koji": 2,
    "ebs.bodhi": 2,
    "ebs.bus": 2,
    "ebs.mail": 2,
    "ebs.temporal_client": 2,
    # How payloads cross the wire to Temporal (imports only temporalio): beside
    # temporal_client, its one user in ebs; not a contract (layer 0 holds the
    # data itself, and a codec runs in clients and workers, never in workflows).
    "ebs.payload_codec": 2,
    "ebs.activities": 3,
    "ebs.schedules": 3,
    "ebs.workflows": 4,
    "ebs.worker": 5,
    "ebs.ingest": 5,
    "ebs.api": 5,
    "ebs.cli": 5,
    "ebs.dev": 5,
    "ebs.devstack": 5,
    "ebs.simulator": 5,
    "ebs.__main__": 5,
}
NAMES = {0: "contracts", 1: "config", 2: "adapters", 3: "activities", 4: "workflows",
         5: "services"}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/ARCHITECTURE.md")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(EBS.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported ebs module) for every import in the file, nested ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from ebs.x import y` may name a submodule y: judge the deepest one.
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((node.lineno, sub if _is_module(sub) else target))
    return [(line, name) for line, name in found if name == "ebs" or name.startswith("ebs.")]


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (EBS.parent / rel).with_suffix(".py").exists() or (EBS.parent / rel).is_dir()


def modules() -> list[tuple[Path, str]]:
    return [(p, module_name(p)) for p in sorted(EBS.rglob("*.py"))]


def test_every_module_has_a_layer() -> None:
    for _, module in modules():
        layer_of(module)


def test_no_import_goes_upward() -> None:
    upward = []
    for path, module in modules():
        own = layer_of(module)
        for line, imported in imports(path, module):
            theirs = layer_of(imported)
            if theirs > own:
                upward.append(
                    f"{path.relative_to(EBS.parent)}:{line}: {module} ({NAMES[own]}) imports "
                    f"{imported} ({NAMES[theirs]})"
                )
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_contracts_import_nothing_else_from_ebs() -> None:
    bad = []
    for path, module in modules():
        if not module.startswith("ebs.contracts"):
            continue
        for line, imported in imports(path, module):
            if not imported.startswith("ebs.contracts"):
                bad.append(f"{path.relative_to(EBS.parent)}:{line}: imports {imported}")
    assert not bad, "ebs.contracts must stay a leaf:\n" + "\n".join(bad)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The walker itself: an adapter importing a workflow is reported."""
    src = tmp_path / "x.py"
    src.write_text("from ebs.workflows.batch import RebuildBatch\nimport ebs.contracts.batch\n")
    found = imports(src, "ebs.koji.fake")
    assert [layer_of(name) for _, name in found] == [4, 0]
    assert layer_of("ebs.koji.fake") == 2
