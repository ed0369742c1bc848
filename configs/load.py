"""YAML → validated ``RunConfig``, with ``key=value`` overrides and errors that say how to fix them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from configs.errors import UserError, did_you_mean
from configs.schema import LOSS_CLASSES, LOSS_NAMES, RunConfig

RESOLVED_NAME = "config.resolved.yaml"


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping holding the same key twice (plain PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # complex keys are rare and caught by validation; '<<' merges are deliberate
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            if key in seen:
                raise UserError(f"key '{key}' appears twice in the same section (lines {seen[key]} and {line}); "
                                "the second would silently replace the first. Keep one of them.")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """``yaml.safe_load`` with duplicate keys refused (UserError naming the key and both lines)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # safe: UniqueKeyLoader is a SafeLoader


def parse_overrides(overrides: list[str]) -> list[tuple[list[str], Any]]:
    """Turn ``["train.epochs=2", "loss.name=mnrl"]`` into ``[(["train", "epochs"], 2), ...]`` (values are YAML)."""
    parsed = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"Override '{item}' is not key=value. Example: train.epochs=2")
        try:
            parsed.append((key.split("."), load_yaml_text(value) if value != "" else None))
        except UserError as err:
            raise UserError(f"Override '{item}': {err}") from None
        except yaml.YAMLError:
            raise UserError(f"Override '{item}': the value is not valid YAML. Quote text, e.g. key='a: b'.") from None
    return parsed


def apply_override(raw: dict, keys: list[str], value: Any) -> None:
    """Set ``raw[k1][k2]... = value``, creating sections that the YAML left out."""
    node = raw
    for depth, key in enumerate(keys[:-1]):
        if isinstance(node.get(key), list):
            raise UserError(f"Override '{'.'.join(keys)}': '{'.'.join(keys[:depth + 1])}' is a list; give the whole "
                            "list, e.g. evaluate.datasets='[{name: test, task: sts}]'.")
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML file (or in a run folder's resolved config); UserError for anything else."""
    path = Path(path)
    if path.is_dir():
        path = path / RESOLVED_NAME
    if not path.is_file():
        raise UserError(f"Config file {path} does not exist. Pass a YAML from configs/ or a run folder.")
    text = read_utf8(path)
    try:
        raw = load_yaml_text(text) or {}
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must hold a mapping of sections (model, data, loss, ...), not {type(raw).__name__}.")
    return raw


def read_utf8(path: Path) -> str:
    """A config file's text; UserError naming the line and byte when it was saved in another encoding (YAML is
    UTF-8: a Latin-1 'é' would otherwise end as a traceback)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: byte 0x{data[err.start]:02x} at offset {err.start} is not valid "
                        "UTF-8. Save the config as UTF-8 (in most editors: 'Save with encoding' > UTF-8; or "
                        f"iconv -f latin-1 -t utf-8 {path.name} > fixed.yaml).") from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML (or a run folder's resolved config), apply overrides, validate."""
    raw = read_yaml(path)
    for keys, value in parse_overrides(list(overrides)):
        apply_override(raw, keys, value)
    return validate(raw, source=str(path))


def validate(raw: dict, source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        lines = [_explain(e, raw) for e in err.errors()]
        raise UserError(f"{source} is not a valid embtune config:\n  " + "\n  ".join(lines)) from None


def _explain(error: dict, raw: dict) -> str:
    loc = [str(part) for part in error["loc"]]
    shown = [p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] == "loss" and p in LOSS_NAMES)]
    where = ".".join(shown)
    if error["type"] == "extra_forbidden":
        fields = _fields_at(RunConfig, loc[:-1], raw)
        return f"{where}: unknown key.{did_you_mean(loc[-1], fields)}"
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        given = (error.get("ctx") or {}).get("tag", "")
        return f"{where}: unknown loss name '{given}'.{did_you_mean(str(given), LOSS_NAMES)}"
    if error["type"] == "missing":
        return f"{where}: required but missing."
    return f"{where}: {error['msg']} (got {error.get('input')!r})."


def _fields_at(model: type[BaseModel], loc: list[str], raw: dict) -> list[str]:
    """Valid field names of the section at ``loc`` (numeric parts index into lists; loss is a union)."""
    node: Any = model
    for index, part in enumerate(loc):
        if part.isdigit() or node is None or (index > 0 and loc[index - 1] == "loss"):
            continue  # list positions, and the loss union's tag (pydantic puts the loss name in the path)
        annotation = node.model_fields[part].annotation if part in node.model_fields else None
        node = _model_in(annotation, raw, part)
    return list(node.model_fields) if node is not None else []


def _model_in(annotation: Any, raw: dict, part: str) -> type[BaseModel] | None:
    if part == "loss":
        name = (raw.get("loss") or {}).get("name")
        return LOSS_CLASSES.get(name) if isinstance(name, str) else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg, raw, "")
        if found is not None:
            return found
    return None


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML, every default written out."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
