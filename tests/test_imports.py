"""The layering of camtune/ (docs/ARCHITECTURE.md "Where things live"): the shared layer
(camtune/model, camtune/artifacts) sits at the bottom and imports no step; a step never reaches
into another step's modules. The one library call across steps is evaluation's public API
(`camtune.evaluation.score_model`, export's int8 fidelity check)."""
from __future__ import annotations

import pytest

from import_graph import all_modules, imports, module_file

STEPS = {
    "validation": "camtune.validation", "sampling": "camtune.sampling", "training": "camtune.training",
    "evaluation": "camtune.evaluation", "export": "camtune.export", "publishing": "camtune.publishing",
    "reporting": "camtune.reporting", "ingest": "camtune.ingest",
}
SHARED = ("camtune.model", "camtune.artifacts")
# another step's package, as a whole (its __init__'s public API), that a step may call
PUBLIC_API = {"camtune.evaluation"}


def step_of(module: str) -> str | None:
    for step, prefix in STEPS.items():
        if module == prefix or module.startswith(prefix + "."):
            return step
    return None


CAMTUNE = [m for m in all_modules() if m.startswith("camtune.")]


def test_the_graph_is_read():
    assert "camtune.model.checkpoint" in imports(module_file("camtune.training.train"))
    assert "camtune.model.tflite" in imports(module_file("camtune.validation.audit"))  # a lazy import
    assert {"camtune.artifacts", "camtune.model.labelmap"} <= imports(module_file("camtune.publishing"))


@pytest.mark.parametrize("module", [m for m in CAMTUNE if m.startswith(SHARED)])
def test_shared_layer_imports_no_step(module):
    bad = sorted(i for i in imports(module_file(module)) if step_of(i))
    assert not bad, f"{module} (shared layer) imports step modules {bad}"


@pytest.mark.parametrize("module", [m for m in CAMTUNE if step_of(m)])
def test_no_step_imports_another_steps_module(module):
    mine = step_of(module)
    bad = sorted(i for i in imports(module_file(module))
                 if step_of(i) not in (None, mine) and i not in PUBLIC_API)
    assert not bad, f"{module} ({mine}) imports other steps' modules {bad}"


def test_flows_wrap_only_their_own_step():
    own = {"flows.validate": "validation", "flows.sample": "sampling", "flows.train_base": "training",
           "flows.finetune": "training", "flows._training_report": "training",
           "flows.evaluate": "evaluation", "flows.export": "export", "flows.publish": "publishing",
           "flows.report": "reporting", "flows.ingest_public": "ingest", "flows.ingest": "ingest"}
    for flow, step in own.items():
        others = sorted(i for i in imports(module_file(flow)) if step_of(i) not in (None, step))
        assert not others, f"{flow} imports {others}"
