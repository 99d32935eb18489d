"""The layering of camtune/ (docs/ARCHITECTURE.md "Layers"), without exceptions: every module
imports only its own layer and the layers below it, and a step never imports another step."""
from __future__ import annotations

import pytest

from tests.support.import_graph import all_modules, imports, module_file

# bottom -> top
LAYERS = ("core", "contracts", "model", "metrics", "training", "steps", "runners")
CAMTUNE = [m for m in all_modules() if m.startswith("camtune.") and m.count(".") >= 1]


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def step_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "steps" else None


def test_every_module_has_a_layer():
    loose = [m for m in CAMTUNE if layer_of(m) is None and m not in ("camtune.__main__",)]
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"


def test_the_graph_is_read():
    assert "camtune.model.checkpoint" in imports(module_file("camtune.training.train"))
    assert "camtune.model.tflite" in imports(module_file("camtune.steps.validate.audit"))  # a lazy import
    assert {"camtune.contracts.artifacts", "camtune.model.labelmap"} <= imports(
        module_file("camtune.steps.publish.release"))


@pytest.mark.parametrize("module", [m for m in CAMTUNE if layer_of(m) is not None])
def test_no_upward_import(module):
    mine = layer_of(module)
    bad = sorted(i for i in imports(module_file(module)) if (layer_of(i) or 0) > mine)
    assert not bad, f"{module} ({LAYERS[mine]}) imports from layers above it: {bad}"


@pytest.mark.parametrize("module", [m for m in CAMTUNE if step_of(m)])
def test_no_step_imports_another_step(module):
    mine = step_of(module)
    bad = sorted(i for i in imports(module_file(module)) if step_of(i) not in (None, mine))
    assert not bad, f"{module} (step {mine}) imports other steps' modules {bad}"


def test_every_step_has_the_same_shape():
    """A front door (__init__ with a docstring) and a flow named as the step."""
    import ast

    from camtune.contracts import artifacts

    for step in (*artifacts.STAGES, "ingest", "ingest_public"):
        init = module_file(f"camtune.steps.{step}")
        flow = module_file(f"camtune.steps.{step}.flow")
        assert init and flow, step
        assert ast.get_docstring(ast.parse(init.read_text())), f"camtune/steps/{step}/__init__.py has no docstring"
        names = {n.name for n in ast.walk(ast.parse(flow.read_text())) if isinstance(n, ast.FunctionDef)}
        if step != "ingest":
            assert f"{step}_flow" in names, f"camtune/steps/{step}/flow.py defines no {step}_flow"
