"""The stages run from the checkout, are never installed where they would shadow other packages, and import only
down the pipeline: configs < core < data < evaluate < train < train.push, with no cycle between modules."""

from __future__ import annotations

import ast
import importlib.util
import site
import sys
from pathlib import Path

import pytest

from conftest import REPO

STAGES = ("data", "train", "evaluate", "configs", "core")
# Pipeline order, bottom first: a module may import its own layer or one below it, never one above.
LAYERS = ("configs", "core", "data", "evaluate", "train", "train.push")


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


def layer(module: str) -> int:
    """The index in LAYERS of the deepest layer that contains ``module``."""
    return max(i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + "."))


def import_graph() -> dict[str, set[str]]:
    """module -> the project's modules it imports, at module level or inside a function alike (an import inside a
    function that closes a cycle is still a cycle)."""
    files = {".".join(f.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): f
             for stage in STAGES for f in (REPO / stage).rglob("*.py")}
    graph = {}
    for module, path in files.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [(node.module, a.name) for a in node.names] if isinstance(node, ast.ImportFrom) and node.module \
                else [(a.name, None) for a in node.names] if isinstance(node, ast.Import) else []
            for base, name in names:
                if base.split(".")[0] in STAGES:
                    targets.add(f"{base}.{name}" if f"{base}.{name}" in files else base)
        graph[module] = targets - {module}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets if layer(t) > layer(m))


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk closes (each at least once)."""
    state, cycles = {}, []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target.startswith(module + "."):  # a package importing its own submodule is no cycle
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_imports_only_run_down_the_pipeline():
    upward = upward_imports(import_graph())
    assert not upward, "imports running back up the pipeline:\n" + "\n".join(upward)


def test_no_import_cycle_between_modules():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_catch_an_upward_import_and_a_cycle():
    assert layer("train.push.gate") == 5 and layer("core.model") == 1 and layer("evaluate.tasks.spec") == 3
    graph = {"data.a": {"train.x"}, "train.x": {"data.b"}, "data.b": {"data.a"}, "core.m": {"configs.c"}}
    assert upward_imports(graph) == ["data.a -> train.x"]
    assert import_cycles(graph) == ["data.a -> train.x -> data.b -> data.a"]


def test_every_layer_logs_its_progress_lines():
    """A package missing from configs.cli.PACKAGES would log nothing below a warning (its progress lines lost)."""
    from configs.cli import PACKAGES

    assert {layer.split(".")[0] for layer in LAYERS} == set(PACKAGES)
