"""A key written twice in a YAML config is an error naming the key and both lines (PyYAML keeps the last silently)."""

from __future__ import annotations

import pytest

from configs.errors import UserError
from configs.load import RESOLVED_NAME, load_config, parse_overrides, read_yaml
from conftest import tiny_config, write_config

TWICE = """\
seed: 1
train:
  epochs: 1
  batch_size: 4
  epochs: 3
"""


def test_a_key_given_twice_names_the_key_and_both_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(TWICE)
    with pytest.raises(UserError, match=rf"{path}: key 'epochs' appears twice in the same section \(lines 3 and 5\)"):
        read_yaml(path)


def test_a_section_given_twice_at_the_top_is_refused(tmp_path, tiny_model_dir):
    path = write_config(tmp_path, tiny_config(tmp_path, tiny_model_dir, {"train": {"path": "x.csv"}},
                                              {"name": "mnrl"}))
    text = path.read_text()
    path.write_text(text + "seed: 9\n")
    first, second = text.splitlines().index("seed: 7") + 1, len(text.splitlines()) + 1
    with pytest.raises(UserError, match=rf"key 'seed' appears twice .*\(lines {first} and {second}\)"):
        load_config(path)


def test_a_resolved_config_with_a_key_twice_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / RESOLVED_NAME).write_text("# config_hash: abc\n" + TWICE)
    with pytest.raises(UserError, match=rf"{run_dir / RESOLVED_NAME}: key 'epochs' .*\(lines 4 and 6\)"):
        load_config(run_dir)


def test_an_override_value_with_a_key_twice_is_refused():
    with pytest.raises(UserError, match=r"Override 'evaluate.datasets=.*': key 'name' appears twice"):
        parse_overrides(["evaluate.datasets=[{name: a, task: sts, name: b}]"])


def test_the_same_key_in_different_sections_and_yaml_merges_are_fine(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("base: &base\n  batch_size: 4\ntrain:\n  <<: *base\n  batch_size: 8\nevaluate:\n  batch_size: 4\n")
    assert read_yaml(path)["train"] == {"batch_size": 8}
    assert read_yaml(path)["evaluate"] == {"batch_size": 4}
