"""Reading the YAML config: parse, adapt the original's layout, validate, and say
precisely what is wrong (YAML path, file:line, what was expected)."""

from __future__ import annotations

import logging
import re
import types
import typing
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ebs.config.model import EbsConfig
from ebs.config.sources import redact

logger = logging.getLogger(__name__)

Warn = Callable[[str], None]
EXAMPLES_DIR = Path(__file__).parent / "examples"
_SECRET_WORDS = ("secret", "password", "api_key", "token")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ConfigIssue:
    path: str  # YAML path, e.g. configuration.control.exclude[3]
    message: str
    origin: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line}" if self.line else self.origin
        parts = [p for p in (where, self.path, self.message) if p]
        return ": ".join(parts)


class ConfigError(Exception):
    """The configuration cannot be used; the message names every problem."""

    def __init__(self, message: str, issues: Sequence[ConfigIssue] = ()) -> None:
        super().__init__(message)
        self.issues = list(issues)


# --- YAML ------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last silently,
    which would quietly drop a whole `exclude:` list)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


@dataclass
class _Document:
    origin: str
    data: dict[str, Any]
    node: yaml.Node


def _read_yaml(text: str, origin: str) -> _Document:
    loader = _Loader(text)
    loader.name = origin
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        problem = e.problem or e.context or "invalid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin}: YAML error: {e}") from None
    finally:
        loader.dispose()
    if node is None:
        raise ConfigError(f"{origin}: the file is empty; expected a mapping with 'configuration'")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}:1: expected a mapping with 'configuration' at the top level, "
            f"got {_type_name(data)}"
        )
    return _Document(origin, data, node)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- the original's layout --------------------------------------------------


def _adapt_original(data: dict[str, Any], warn: Warn) -> dict[str, Any]:
    """Accept what the original ELNBuildSync accepted but ebs does not use."""
    cnf = data.get("configuration")
    if not isinstance(cnf, dict):
        return data
    data = dict(data)
    cnf = data["configuration"] = dict(cnf)
    if "db" in cnf:
        del cnf["db"]
        warn("configuration.db is ignored: ebs keeps its state in Temporal")
    # The API's browser login and token introspection use the client secret (ebs.api).
    oidc = cnf.get("open_id_connect")
    if isinstance(oidc, dict) and "client_secret" in oidc:
        warn(
            "configuration.open_id_connect.client_secret is set inline in the configuration; "
            "keep it in a file instead (`ebs api --openid-client-secret-file`, as in "
            "ELNBuildSync, or open_id_connect.client_secret_file)"
        )
    # The original's split ("dynamic") config keeps the trigger tag in control.
    control, koji = cnf.get("control"), cnf.get("koji")
    if isinstance(control, dict) and "trigger_tag" in control:
        control = cnf["control"] = dict(control)
        tag = control.pop("trigger_tag")
        if isinstance(koji, dict):
            koji = cnf["koji"] = dict(koji)
            if "trigger_tag" not in koji:
                koji["trigger_tag"] = tag
            elif koji["trigger_tag"] != tag:
                raise ConfigError(
                    f"configuration.control.trigger_tag ({tag!r}) and "
                    f"configuration.koji.trigger_tag ({koji['trigger_tag']!r}) disagree; "
                    "keep one"
                )
    koji = cnf.get("koji")
    if isinstance(koji, dict) and koji.get("instance") is not None:
        warn(
            "configuration.koji.instance has no effect in ebs: the Koji hub comes from "
            "koji.profile (or koji.server)"
        )
    components = data.get("components")
    overrides = components.get("overrides") if isinstance(components, dict) else None
    if isinstance(overrides, dict):
        for name, options in overrides.items():
            extra = sorted(
                str(k) for k in (options or {}) if k != "upstream_name"
            ) if isinstance(options, dict) else []
            if extra:
                warn(
                    f"components.overrides.{name}: {', '.join(extra)} kept as the original "
                    "merges them, but ebs reads only upstream_name"
                )
    if components is None or (
        isinstance(components, dict)
        and not components.get("autopackagelist")
        and not components.get("overrides")
    ):
        warn("components: neither autopackagelist nor overrides is set; no component is eligible")
    return data


# --- validation errors -> YAML paths ----------------------------------------


def _format_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def unwrap_field_type(annotation: Any) -> Any:
    """Strip Annotated and Optional around a field type."""
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


def _is_model(t: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The schema model that a YAML path lands in, if it lands in one."""
    current: Any = EbsConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        current = unwrap_field_type(current)
        if _is_model(current):
            field = next(
                (f for name, f in current.model_fields.items() if part in (name, f.alias)), None
            )
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        else:
            return None
    current = unwrap_field_type(current)
    if _is_model(current):
        return current
    return None


def key_paths(model: type[BaseModel] = EbsConfig, prefix: str = "") -> set[str]:
    """Every key path of the config schema, as YAML spells it
    (`configuration.koji.server`); `<name>` stands for a user-chosen key."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}.{field.alias or name}" if prefix else (field.alias or name)
        t = unwrap_field_type(field.annotation)
        if _is_model(t):
            keys |= key_paths(t, path)
        elif typing.get_origin(t) is dict and _is_model(unwrap_field_type(typing.get_args(t)[1])):
            keys |= key_paths(unwrap_field_type(typing.get_args(t)[1]), f"{path}.<name>")
        else:
            keys.add(path)
    return keys


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items() if f.repr]


def _type_name(value: Any, secret: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if secret:
        return f"{type(value).__name__} (not shown)"
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 80 else shown[:77] + '...'}"


def _describe_error(error: ErrorDetails) -> str:
    loc = error["loc"]
    kind = error["type"]
    ctx = error.get("ctx", {})
    value = error.get("input")
    secret = any(word in str(part) for part in loc for word in _SECRET_WORDS)
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        expected = f"; expected one of: {', '.join(_allowed_keys(model))}" if model else ""
        return f"unknown key{expected}"
    if kind == "missing":
        return "missing required key"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "expected a mapping"
    elif kind == "list_type":
        message = "expected a list"
    elif kind == "too_short":
        message = f"expected at least {ctx.get('min_length')} item(s)"
    else:
        message = error["msg"].replace("Input should be", "expected", 1)
        if not secret and not isinstance(value, dict | list) and value is not None:
            # Scalars: the value as written is the most useful hint.
            shown = repr(value)
            return f"{message}, got {shown if len(shown) <= 80 else shown[:77] + '...'}"
    return f"{message}, got {_type_name(value, secret)}"


def _node_line(node: yaml.Node, loc: Sequence[int | str]) -> tuple[int, bool]:
    """(1-based line, whether the whole path was found) for a YAML path."""
    for index, part in enumerate(loc):
        if part == "[key]":
            break
        want_key = index + 1 < len(loc) and loc[index + 1] == "[key]"
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    child = key_node if want_key else value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                child = node.value[part]
        if child is None:
            return node.start_mark.line + 1, False
        node = child
    return node.start_mark.line + 1, True


def _locate(docs: Sequence[_Document], loc: Sequence[int | str]) -> tuple[str, int | None]:
    fallback: tuple[str, int | None] = (docs[-1].origin, None) if docs else ("", None)
    for doc in reversed(docs):
        line, found = _node_line(doc.node, loc)
        if found:
            return doc.origin, line
        if fallback[1] is None:
            fallback = (doc.origin, line)
    return fallback


def _validation_issues(error: ValidationError, docs: Sequence[_Document]) -> list[ConfigIssue]:
    issues = []
    for detail in error.errors():
        loc = detail["loc"]
        origin, line = _locate(docs, loc)
        issues.append(ConfigIssue(_format_path(loc), _describe_error(detail), origin, line))
    return issues


# --- public API --------------------------------------------------------------


def _log_warning(message: str) -> None:
    logger.warning("configuration: %s", message)


def parse_documents(documents: Sequence[tuple[str, str]], *, warn: Warn | None = None) -> EbsConfig:
    """Validate one or more YAML texts, given as (text, origin) pairs, merged in
    order (later mappings override earlier keys), as the original's static
    file plus dynamic file."""
    if not documents:
        raise ConfigError("no configuration given")
    warn = warn or _log_warning
    docs = [_read_yaml(text, redact(origin)) for text, origin in documents]
    merged: dict[str, Any] = {}
    for doc in docs:
        merged = _merge(merged, doc.data)
    data = _adapt_original(merged, warn)
    try:
        return EbsConfig.model_validate(data)
    except ValidationError as e:
        issues = _validation_issues(e, docs)
        origins = ", ".join(doc.origin for doc in docs)
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        body = "\n".join(f"  {issue}" for issue in issues)
        if len(issues) == 1:
            raise ConfigError(f"invalid configuration: {issues[0]}", issues) from None
        raise ConfigError(f"invalid configuration {origins} ({count}):\n{body}", issues) from None


def parse_config(text: str, origin: str = "<config>", *, warn: Warn | None = None) -> EbsConfig:
    """Validate one YAML text; `origin` names it in messages (a path or URL)."""
    return parse_documents([(text, origin)], warn=warn)


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text: {e.reason}") from None


def load_config(path: str | Path, *more_paths: str | Path, warn: Warn | None = None) -> EbsConfig:
    """Load and validate a config file (plus, optionally, more files merged over it)."""
    paths = (path, *more_paths)
    return parse_documents([(read_text(p), str(p)) for p in paths], warn=warn)


def example_path(name: str) -> Path:
    """A shipped example config, e.g. example_path("sandbox")."""
    return EXAMPLES_DIR / f"{name}.yaml"


def render_example(name: str, **values: str) -> str:
    """An example config's text with its ${placeholders} filled in.

    Only ${identifier} is a placeholder; a regex's `$` stays as it is.
    """
    text = read_text(example_path(name))
    missing = sorted({m for m in _PLACEHOLDER.findall(text) if m not in values})
    if missing:
        needed = ", ".join(f"${{{m}}}" for m in missing)
        raise ConfigError(f"example {name!r} needs a value for {needed}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
