"""The typed config: shipped presets validate, mistakes name the key and the fix, registries match the schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
import yaml

from configs.cli import field_rows, help_text, markdown_table
from configs.errors import UserError
from configs.load import RESOLVED_NAME, load_config
from configs.schema import LOSS_NAMES, LossConfig, RunConfig, Task
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
def loss_union_names() -> set[str]:
    return {get_args(cls.model_fields["name"].annotation)[0] for cls in get_args(get_args(LossConfig)[0])}


def test_loss_registry_matches_the_schema():
    from train.losses import LOSSES

    assert set(LOSSES) == set(LOSS_NAMES) == loss_union_names()
    assert len(LOSS_NAMES) == len(set(LOSS_NAMES))


def test_evaluator_registry_matches_the_task_literal():
    from evaluate.evaluators import EVALUATORS

    assert set(EVALUATORS) == set(get_args(Task))


# ---------------------------------------------------------------------------------------------- generated documents
def test_every_leaf_key_is_documented():
    undocumented = [key for key, _, description in field_rows() if not description]
    assert not undocumented


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
