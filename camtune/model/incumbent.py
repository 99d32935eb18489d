"""The incumbent: the model the user runs now, which a tuned model must not be worse than
(docs/incumbent.md). Evaluate scores it; validate resolves it first, so bad input stops the run
before any training.

- `evaluate.incumbent.source: registry` (default): the user's newest promoted model in the registry
  (its model.tflite, labelmap.txt and lineage.json, each sha256-checked); none: a first model.
- `source: file`: a TFLite in Frigate's contract and its labelmap.txt, e.g. Frigate's stock
  `/cpu_model.tflite` + `/labelmap.txt` (90 COCO entries). Labels are matched by name; the ones
  only one side knows are left out of the comparison and listed.
- `source: none`: no comparison.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from camtune.core.errors import StepFailed
from camtune.model.labelmap import LABELMAP_FILE, parse_labelmap, read_labelmap


@dataclass(frozen=True)
class Incumbent:
    name: str                            # "registry:<model_id>" or "file:<path>"
    source: str                          # "registry" | "file"
    tflite: Path                         # a local copy (registry) or the user's file
    labels: tuple[str, ...]              # the model's label map, by class id
    lineage_ids: frozenset[int] = field(default_factory=frozenset)  # the user's images it trained on
    size: int = 320                      # its input side (Frigate's regions depend on it below 320)

    def compared_labels(self, label_names: Sequence[str]) -> list[str]:
        """Our labels the incumbent knows too (by name), in our order."""
        mine = set(self.labels)
        return [n for n in label_names if n in mine]

    def left_out(self, label_names: Sequence[str]) -> dict[str, list[str]]:
        """{"not_in_incumbent": our labels it does not know, "not_ours": its labels we do not train}."""
        ours, theirs = set(label_names), set(self.labels)
        return {"not_in_incumbent": [n for n in label_names if n not in theirs],
                "not_ours": sorted(n for n in theirs - ours if n and n != "???")}


def check_frigate_tflite(path: str | Path) -> int:
    """The input side of a TFLite model in Frigate's ssd contract (one uint8 [1, S, S, 3] input of
    raw pixels, four float32 outputs: boxes, classes, scores, count); StepFailed naming the file
    and what is wrong otherwise."""
    from ai_edge_litert.interpreter import Interpreter

    path = Path(path)
    if not path.is_file():
        raise StepFailed(f"{path}: incumbent model not found")
    try:
        interp = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise StepFailed(f"{path}: not a TFLite model ({' '.join(str(exc).split())[:200]})") from None
    ins, outs = interp.get_input_details(), interp.get_output_details()
    what = "not a TFLite model in Frigate's contract"
    if len(ins) != 1 or ins[0]["dtype"].__name__ != "uint8" or len(ins[0]["shape"]) != 4 \
            or ins[0]["shape"][0] != 1 or ins[0]["shape"][3] != 3 or ins[0]["shape"][1] != ins[0]["shape"][2]:
        got = [(d["dtype"].__name__, d["shape"].tolist()) for d in ins]
        raise StepFailed(f"{path}: {what}: it needs one uint8 [1, S, S, 3] input, has {got}")
    # (TFLite_Detection_PostProcess's output shapes are only known once tensors are allocated)
    if len(outs) != 4 or any(d["dtype"].__name__ != "float32" for d in outs):
        got = [(d["dtype"].__name__, d["shape"].tolist()) for d in outs]
        raise StepFailed(f"{path}: {what}: it needs four float32 outputs (boxes, classes, scores, count), "
                         f"has {got}")
    return int(ins[0]["shape"][1])


def resolve(params, workdir: str | Path, registry=None) -> Incumbent | None:
    """The incumbent `params.evaluate.incumbent` names (None: none, or the user's first model),
    checked: StepFailed naming the file when it is missing, not a Frigate-contract TFLite, its label
    map does not parse, or the registry's copy is gone. `workdir` receives registry downloads."""
    inc = params.evaluate.incumbent
    if inc.source == "none":
        return None
    if inc.source == "file":
        model = Path(inc.model)
        if not model.is_file():
            raise StepFailed(f"{model}: evaluate.incumbent.model not found")
        labels = read_labelmap(inc.labelmap)
        size = check_frigate_tflite(model)
        return Incumbent(f"file:{model}", "file", model, tuple(labels), frozenset(), size)
    if registry is None:
        from camtune.contracts.registry import open_registry

        registry = open_registry(params.publish.registry)
    user_id = params.user.id
    entry = registry.current_model(user_id)
    if entry is None:
        return None
    model_id = entry["model_id"]
    dest = Path(workdir) / model_id
    dest.mkdir(parents=True, exist_ok=True)
    # every read is sha256-checked against the index; a file that is gone is a RegistryError naming its URI
    model = registry.download_file(user_id, model_id, "model.tflite", dest / "model.tflite")
    where = registry.model_uri(user_id, model_id, LABELMAP_FILE)
    labels = parse_labelmap(registry.read_file(user_id, model_id, LABELMAP_FILE).decode(errors="replace"), where)
    lineage = registry.read_json(user_id, model_id, "lineage.json")
    try:
        size = check_frigate_tflite(model)
    except StepFailed as exc:
        raise StepFailed(f"{registry.model_uri(user_id, model_id, 'model.tflite')}: {exc}") from None
    return Incumbent(f"registry:{model_id}", "registry", model, tuple(labels),
                     frozenset(int(i) for i in lineage.get("image_ids") or []), size)
