"""The stages run from the checkout and are never installed where they would shadow other packages."""

from __future__ import annotations

import importlib.util
import site
import sys
from pathlib import Path

import pytest

from conftest import REPO

STAGES = ("data", "train", "evaluate", "configs")


@pytest.mark.parametrize("name", STAGES)
def test_stage_resolves_to_this_repository(name):
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve() == REPO / name / "__init__.py"


@pytest.mark.parametrize("name", STAGES)
def test_stage_is_not_installed_in_site_packages(name):
    for folder in [*site.getsitepackages(), site.getusersitepackages()]:
        assert not (Path(folder) / name / "__init__.py").exists(), f"{name} is installed in {folder}"
        assert not any(Path(folder).glob(f"__editable__*{name}*")), f"{name} is installed editable in {folder}"


def test_evaluate_is_ours_not_hugging_face_evaluate():
    import evaluate

    assert Path(evaluate.__file__).resolve().parent == REPO / "evaluate"
    assert hasattr(importlib.import_module("evaluate.evaluators"), "EVALUATORS")
    assert "evaluate" in sys.modules
