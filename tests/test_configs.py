"""The typed config: shipped presets validate, mistakes name the key and the fix, registries match the schema."""

from __future__ import annotations

import ast
import inspect
import re
from collections import Counter
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import BaseModel

from configs import schema
from configs.cli import field_rows, help_text, markdown_table
from configs.errors import UserError
from configs.load import RESOLVED_NAME, load_config
from configs.schema import (
    LOSS_NAMES,
    EvalDatasetConfig,
    EvaluateConfig,
    ExportName,
    LossConfig,
    RunConfig,
    Task,
    loss_name,
)
from conftest import REPO

PRESETS = sorted((REPO / "configs").glob("*.yaml"))
MINIMAL = {"data": {"train": {"path": "pairs.csv"}}, "loss": {"name": "mnrl"}}


def write_yaml(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def config_error(tmp_path: Path, raw: dict, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(UserError) as info:
        load_config(write_yaml(tmp_path, raw), overrides)
    return str(info.value)


# ------------------------------------------------------------------------------------------------- shipped presets
def test_presets_exist():
    assert PRESETS, "configs/ holds no *.yaml preset"


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_validates(path: Path):
    assert isinstance(load_config(path), RunConfig)


def test_presets_write_to_their_own_run_folders():
    run_dirs = [load_config(path).run_dir for path in PRESETS]
    assert len(set(run_dirs)) == len(run_dirs)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_header_lists_its_commands(path: Path):
    header = path.read_text(encoding="utf-8").split("\n\n")[0]
    for stage in ("data", "train", "evaluate", "train.push"):
        assert f"python -m {stage} configs/{path.name}" in header


# --------------------------------------------------------------------------------------- unknown keys and names
@pytest.mark.parametrize(
    ("section", "value", "path", "suggestion"),
    [
        ("sed", 1, "sed", "seed"),  # top level
        ("train", {"epoch": 2}, "train.epoch", "epochs"),
        ("data", {"train": {"path": "pairs.csv", "colums": {}}}, "data.train.colums", "columns"),
        ("evaluate", {"datasets": [{"name": "x", "task": "sts", "splt": "test"}]}, "evaluate.datasets.0.splt", "split"),
    ],
)
def test_unknown_key_names_its_path_and_the_closest_key(tmp_path, section, value, path, suggestion):
    message = config_error(tmp_path, {**MINIMAL, section: value})
    assert f"{path}: unknown key. Did you mean '{suggestion}'?" in message


def test_unknown_key_in_an_override_is_named_like_one_in_the_yaml(tmp_path):
    message = config_error(tmp_path, MINIMAL, ("train.epoch=2",))
    assert "train.epoch: unknown key. Did you mean 'epochs'?" in message


def test_unknown_loss_parameter_suggests_the_loss_own_parameter(tmp_path):
    message = config_error(tmp_path, {**MINIMAL, "loss": {"name": "contrastive", "margn": 0.3}})
    assert "margn: unknown key" in message
    assert "Did you mean 'margin'?" in message


def test_unknown_loss_name_suggests_the_closest(tmp_path):
    message = config_error(tmp_path, {**MINIMAL, "loss": {"name": "mnlr"}})
    assert "unknown loss name 'mnlr'. Did you mean 'mnrl'?" in message


def test_missing_required_section_is_named(tmp_path):
    message = config_error(tmp_path, {"loss": {"name": "mnrl"}})
    assert "data: required but missing." in message


# -------------------------------------------------------------------------------------------------------- overrides
def test_override_values_are_parsed_as_yaml(tmp_path):
    path = write_yaml(tmp_path, {**MINIMAL, "model": {"name": "some/model", "revision": "main"}})
    config = load_config(path, ["train.epochs=2", "model.revision=null", "push.private=false",
                                "data.train.score_range=[0, 5]", "loss.scale=7.5"])
    assert config.train.epochs == 2.0 and isinstance(config.train.epochs, float)
    assert config.model.revision is None
    assert config.push.private is False
    assert config.data.train.score_range == (0.0, 5.0)
    assert config.loss.scale == 7.5


def test_override_creates_missing_sections(tmp_path):
    path = write_yaml(tmp_path, MINIMAL)
    config = load_config(path, ["push.repo_id=alice/tiny", "data.dev.path=dev.csv", "data.dev.split=dev"])
    assert config.push.repo_id == "alice/tiny"
    assert config.data.dev is not None and (config.data.dev.path, config.data.dev.split) == ("dev.csv", "dev")


def test_override_can_switch_the_loss(tmp_path):
    config = load_config(write_yaml(tmp_path, MINIMAL), ["loss.name=cosent"])
    assert config.loss.name == "cosent"


@pytest.mark.parametrize("override", ["train.epochs", "=2"])
def test_malformed_override_is_an_error(tmp_path, override):
    with pytest.raises(UserError, match=f"Override '{re.escape(override)}' is not key=value"):
        load_config(write_yaml(tmp_path, MINIMAL), [override])


def test_override_with_a_bad_value_names_the_key(tmp_path):
    message = config_error(tmp_path, MINIMAL, ("train.epochs=many",))
    assert "train.epochs:" in message and "'many'" in message


# ---------------------------------------------------------------------------------------------------- missing files
def test_missing_config_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError, match=f"Config file {re.escape(str(missing))} does not exist"):
        load_config(missing)


def test_run_folder_without_resolved_config_names_the_file(tmp_path):
    with pytest.raises(UserError, match=re.escape(str(tmp_path / RESOLVED_NAME))):
        load_config(tmp_path)


def test_config_that_is_not_a_mapping_is_an_error(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(UserError, match="must hold a mapping of sections"):
        load_config(path)


# ------------------------------------------------------------------------------------------------------- registries
def disagreement(registry: set[str], schema: set[str], add_to_registry: str, add_to_schema: str) -> str:
    """What to add where, one line per name only one side has ('' when the sides agree). The ``add_to`` texts say
    how to add ``{name}`` to that side."""
    lines = [f"'{n}' is in the schema but not registered: {add_to_registry.format(name=n)}"
             for n in sorted(schema - registry)]
    lines += [f"'{n}' is registered but not in the schema: {add_to_schema.format(name=n)}"
              for n in sorted(registry - schema)]
    return "\n".join(lines)


def test_a_disagreement_names_each_missing_side():
    message = disagreement({"a", "b"}, {"b", "c"}, "register {name} in R", "add {name} to S")
    assert message == ("'c' is in the schema but not registered: register c in R\n"
                       "'a' is registered but not in the schema: add a to S")
    assert disagreement({"a"}, {"a"}, "", "") == ""


def test_loss_registry_matches_the_schema():
    from train.losses import LOSSES

    union = [loss_name(cls) for cls in get_args(get_args(LossConfig)[0])]
    assert LOSS_NAMES == tuple(union), "LOSS_NAMES must list the LossConfig union's classes, in its order"
    message = disagreement(set(LOSSES), set(LOSS_NAMES),
                           "add '{name}': LossSpec(make, kinds) to LOSSES in train/losses.py, and a test that a step "
                           "changes the parameters (tests/test_train.py)",
                           "add a LossBase subclass with name: Literal['{name}'] and its parameters to "
                           "configs/schema.py, and put it in the LossConfig union there")
    assert not message, message


def test_loss_names_are_written_once_in_the_schema():
    """Outside the loss classes' own ``name: Literal[...]`` no statement of configs/schema.py spells a loss name:
    every other list of losses is derived from the LossConfig union."""
    tree = ast.parse((REPO / "configs" / "schema.py").read_text(encoding="utf-8"))
    outside = [statement for statement in tree.body if not isinstance(statement, ast.ClassDef)]
    spelled = [f"line {node.lineno}: {node.value!r}" for statement in outside for node in ast.walk(statement)
               if isinstance(node, ast.Constant) and node.value in LOSS_NAMES]
    assert not spelled, ("configs/schema.py writes loss names outside their classes; derive the list from the "
                         "LossConfig union (as LOSS_NAMES does):\n" + "\n".join(spelled))


def test_evaluator_registry_matches_the_task_literal():
    from evaluate.evaluators import EVALUATORS

    message = disagreement(set(EVALUATORS), set(get_args(Task)),
                           "write evaluate/tasks/{name}.py (a TaskSpec) and add it to EVALUATORS in "
                           "evaluate/evaluators.py",
                           "add '{name}' to the Task literal in configs/schema.py")
    assert not message, message


def test_export_registry_matches_the_export_literal():
    from core.export import EXPORTS

    message = disagreement(set(EXPORTS), set(get_args(ExportName)),
                           "add '{name}': ExportSpec(...) to EXPORTS in core/export.py",
                           "add '{name}' to the ExportName literal in configs/schema.py")
    assert not message, message


def test_every_evaluation_backend_but_torch_is_an_fp32_export_of_its_own_runtime():
    from core.export import EXPORTS

    backends = set(get_args(EvaluateConfig.model_fields["backend"].annotation)) - {"torch"}
    wrong = [name for name in sorted(backends)
             if name not in EXPORTS or EXPORTS[name].backend != name or EXPORTS[name].quantized]
    assert not wrong, (f"evaluate.backend {wrong}: core.export.load_backend runs EXPORTS[backend], so each needs an "
                       "fp32 export of that name and runtime in EXPORTS (core/export.py)")


# ---------------------------------------------------------------------------------------------- generated documents
def test_every_leaf_key_is_documented():
    undocumented = [key for key, _, description in field_rows() if not description]
    assert not undocumented


def test_every_field_of_every_section_is_documented():
    """Also the fields --help does not list one by one (an evaluate.datasets entry's)."""
    sections = [cls for _, cls in inspect.getmembers(schema, inspect.isclass)
                if issubclass(cls, BaseModel) and cls.__module__ == schema.__name__]
    undocumented = [f"{cls.__name__}.{name}" for cls in sections for name, field in cls.model_fields.items()
                    if not field.description]
    assert EvalDatasetConfig in sections and not undocumented, f"add Field(description=...) to {undocumented}"


def test_no_description_is_written_twice_in_the_schema():
    """A field that means the same in several sections is defined once (a shared Annotated type such as
    WindowTokens, or a subclass such as AnglELoss(CoSENTLoss)), so its help cannot drift apart."""
    tree = ast.parse((REPO / "configs" / "schema.py").read_text(encoding="utf-8"))
    texts = Counter(keyword.value.value for keyword in ast.walk(tree) if isinstance(keyword, ast.keyword)
                    and keyword.arg == "description" and isinstance(keyword.value, ast.Constant))
    assert not [text for text, count in texts.items() if count > 1]


def test_help_mentions_every_leaf_key():
    text = help_text()
    keys = [key for key, _, _ in field_rows()]
    assert {"train.epochs", "data.train.columns", "loss[mnrl].scale", "evaluate.datasets"} <= set(keys)
    assert [key for key in keys if key not in text] == []


def test_readme_config_table_is_generated_from_the_schema():
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing; its config table is generated by `python -m configs --markdown`"
    match = re.search(r"<!-- config-table:start -->\n(.*?)\n?<!-- config-table:end -->",
                      readme.read_text(encoding="utf-8"), re.S)
    assert match, "README.md has no <!-- config-table:start --> ... <!-- config-table:end --> block"
    assert match.group(1).strip() == markdown_table().strip(), (
        "README.md's config table is out of date: regenerate it with `python -m configs --markdown` "
        "and paste the output between the config-table markers"
    )


def test_override_with_invalid_yaml_or_into_a_list_is_a_clear_error(tmp_path):
    from configs.errors import UserError
    from configs.load import apply_override, parse_overrides

    with pytest.raises(UserError, match=r"Override 'train.epochs=\[1,': the value is not valid YAML"):
        parse_overrides(["train.epochs=[1,"])
    raw = {"evaluate": {"datasets": [{"name": "t", "task": "sts"}]}}
    with pytest.raises(UserError, match=r"'evaluate.datasets' is a list; give the whole list"):
        apply_override(raw, ["evaluate", "datasets", "0", "split"], "dev")


@pytest.mark.parametrize("argv", [[], ["--help"]])
def test_the_configs_command_without_a_config_says_where_each_readme_table_comes_from(argv, capsys):
    from configs.__main__ import main
    from train.docs import BLOCKS

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "python -m configs --markdown" in out and "python -m train.docs" in out
    assert all(name in out for name in BLOCKS)
