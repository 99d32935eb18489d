"""Edge TPU compatibility report for a TFLite model, without the Edge TPU compiler.

Reads the flatbuffer with the schema ai_edge_litert ships (`schema_py_generated`) and applies the
rules Coral documents for `edgetpu_compiler` (coral.ai/docs/edgetpu/models-intro, "Model
requirements" and "Supported operations"):
- one subgraph, static tensor shapes, batch 1, and tensors whose dims >1 are the 3 innermost;
- every mapped op works on 8-bit (int8/uint8) tensors (int32 only as a bias / shape operand);
- the op is in Coral's supported-operations table, at an op version the compiler understands;
- the compiler maps ops IN EXECUTION ORDER until the first op it cannot map; that op and every op
  after it run on the CPU (it cuts the graph once). For an SSD model the ideal is: everything maps
  except the final `TFLite_Detection_PostProcess` custom op, which always runs on the CPU.

This is a static prediction; `camtune.steps.export.compiler` runs the real compiler where it exists,
and its log is authoritative.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

COMPILER_VERSION = 16  # edgetpu_compiler 16.0 (the current release in Coral's apt repository)
POSTPROCESS_OP = "TFLite_Detection_PostProcess"

# Coral's supported-operations table (runtime >= 14, compiler 16). Value: the highest op version
# edgetpu_compiler 16 accepts. It was built against the TF 2.5-era TFLite op registry; newer
# versions fail with "Operation version not supported" or "Didn't find op for builtin opcode X
# version N" (e.g. CONV_2D version 6, google-coral/edgetpu#631). Conservative by design: an op
# at a version above this is reported as blocking.
MAX_OP_VERSION: dict[str, int] = {
    "ADD": 4, "AVERAGE_POOL_2D": 3, "CONCATENATION": 3, "CONV_2D": 5, "DEPTHWISE_CONV_2D": 6,
    "EXPAND_DIMS": 1, "FULLY_CONNECTED": 9, "L2_NORMALIZATION": 2, "LOGISTIC": 3, "LSTM": 4,
    "MAXIMUM": 4, "MAX_POOL_2D": 3, "MEAN": 2, "MINIMUM": 4, "MUL": 4, "PACK": 2, "PAD": 2,
    "PRELU": 1, "QUANTIZE": 2, "REDUCE_MAX": 2, "REDUCE_MIN": 2, "RELU": 2, "RELU6": 2,
    "RELU_N1_TO_1": 1, "RESHAPE": 1, "RESIZE_BILINEAR": 3, "RESIZE_NEAREST_NEIGHBOR": 3,
    "RSQRT": 2, "SLICE": 4, "SOFTMAX": 2, "SPACE_TO_DEPTH": 2, "SPLIT": 3, "SQUARED_DIFFERENCE": 2,
    "SQUEEZE": 1, "STRIDED_SLICE": 4, "SUB": 3, "SUM": 2, "TANH": 3, "TRANSPOSE": 4,
    "TRANSPOSE_CONV": 3,
}
# Ops whose non-data operands may be int32 (bias, shape, axis, paddings, begin/end/strides).
_INT32_OPERANDS_OK = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "RESHAPE",
                      "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "PAD", "SLICE", "STRIDED_SLICE",
                      "EXPAND_DIMS", "SPLIT", "TRANSPOSE", "RESIZE_BILINEAR",
                      "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION", "PACK", "SQUEEZE"}
_EIGHT_BIT = {"INT8", "UINT8"}


@dataclass
class OpCheck:
    index: int
    op: str
    version: int
    status: str           # "mapped" | "blocking" | "after_block" | "cpu_postprocess" (the op + its clip)
    reason: str = ""
    shapes: list = field(default_factory=list)


@dataclass
class CompatReport:
    """Which ops of a TFLite model the Edge TPU compiler maps, and the first one that stops it."""

    model: str
    compiler_version: int
    subgraphs: int
    total_ops: int
    mapped_ops: int
    cpu_ops: int
    first_blocking: dict | None
    fully_mapped_body: bool   # everything but the post-processing op (and its DEQUANTIZE inputs) maps
    model_problems: list[str]
    ops: list[OpCheck]
    op_counts: dict

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ops"] = [asdict(o) for o in self.ops]
        return d


def _names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _s(b) -> str:
    return b.decode() if isinstance(b, bytes) else str(b)


def check(model_path: str | Path) -> CompatReport:
    """Predict which ops of `model_path` edgetpu_compiler 16 maps, and the first one that stops it."""
    from ai_edge_litert import schema_py_generated as schema

    buf = bytearray(Path(model_path).read_bytes())
    model = schema.Model.GetRootAsModel(buf, 0)
    op_names, type_names = _names(schema.BuiltinOperator), _names(schema.TensorType)
    problems: list[str] = []
    if model.SubgraphsLength() != 1:
        problems.append(f"{model.SubgraphsLength()} subgraphs: the Edge TPU compiler supports one")
    sg = model.Subgraphs(0)
    buffers_with_data = {i for i in range(model.BuffersLength())
                         if model.Buffers(i).DataLength() > 0 or model.Buffers(i).Size() > 0}

    def tensor(i: int):
        t = sg.Tensors(i)
        shape = [int(v) for v in t.ShapeAsNumpy()] if t.ShapeLength() else []
        sig = [int(v) for v in t.ShapeSignatureAsNumpy()] if t.ShapeSignatureLength() else shape
        return {"name": _s(t.Name()), "type": type_names.get(t.Type(), str(t.Type())), "shape": shape,
                "signature": sig, "const": t.Buffer() in buffers_with_data}

    for i in range(sg.InputsLength()):
        t = tensor(sg.Inputs(i))
        if t["signature"][:1] != [1]:
            problems.append(f"input {t['name']} has batch {t['signature'][:1]} (-1 = dynamic): "
                            f"the Edge TPU needs batch 1")

    checks: list[OpCheck] = []
    blocked = after_pp = False
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = _s(code.CustomCode())
        version = int(code.Version())
        ins = [tensor(op.Inputs(j)) for j in range(op.InputsLength()) if op.Inputs(j) >= 0]
        outs = [tensor(op.Outputs(j)) for j in range(op.OutputsLength())]
        shapes = [t["shape"] for t in ins + outs]
        if name == POSTPROCESS_OP:
            after_pp = True
            checks.append(OpCheck(k, name, version, "cpu_postprocess",
                                  "custom post-processing op: runs on the CPU by design", shapes))
            continue
        if after_pp:  # the float box clip on the post-processing outputs
            checks.append(OpCheck(k, name, version, "cpu_postprocess",
                                  "after the post-processing op: runs on the CPU by design", shapes))
            continue
        if blocked:
            checks.append(OpCheck(k, name, version, "after_block",
                                  "after the first unmappable op: the compiler leaves it on the CPU",
                                  shapes))
            continue
        reason = _op_problem(name, version, ins, outs)
        if reason:
            blocked = True
            checks.append(OpCheck(k, name, version, "blocking", reason, shapes))
        else:
            checks.append(OpCheck(k, name, version, "mapped", "", shapes))

    mapped = sum(c.status == "mapped" for c in checks)
    first = next((c for c in checks if c.status == "blocking"), None)
    counts: dict[str, dict[str, int]] = {}
    for c in checks:
        counts.setdefault(c.op, {}).setdefault(c.status, 0)
        counts[c.op][c.status] += 1
    return CompatReport(
        model=str(model_path), compiler_version=COMPILER_VERSION, subgraphs=model.SubgraphsLength(),
        total_ops=len(checks), mapped_ops=mapped, cpu_ops=len(checks) - mapped,
        first_blocking=asdict(first) if first else None,
        # the DEQUANTIZEs that hand the int8 head outputs to the float post-processing op are the
        # expected CPU tail of an SSD model: "the body maps" when nothing else stays on the CPU
        fully_mapped_body=not problems and mapped > 0 and all(
            c.status in ("mapped", "cpu_postprocess") or c.op == "DEQUANTIZE" for c in checks),
        model_problems=problems, ops=checks, op_counts=counts)


def _op_problem(name: str, version: int, ins: list[dict], outs: list[dict]) -> str:
    if name not in MAX_OP_VERSION:
        return f"operation not supported by the Edge TPU ({name} is not in Coral's supported list)"
    if version > MAX_OP_VERSION[name]:
        return (f"operation version not supported: {name} v{version} > v{MAX_OP_VERSION[name]}, "
                f"the newest edgetpu_compiler {COMPILER_VERSION} knows")
    operand_ids = {id(t) for t in ins[1:]}
    for t in ins + outs:
        if any(d < 0 for d in t["signature"]):
            return f"dynamic-sized tensor {t['name']} {t['signature']}: shapes must be static"
        if t["type"] in _EIGHT_BIT:
            # the rank rule is about activations; weights ([O,H,W,I] filters) are fine
            if not t["const"] and len([d for d in t["shape"][:-3] if d > 1]):
                return (f"tensor {t['name']} {t['shape']}: only the 3 innermost dimensions may be "
                        f"larger than 1")
            continue
        if t["type"] == "INT32" and name in _INT32_OPERANDS_OK and id(t) in operand_ids:
            continue  # bias / shape / axis operand
        return f"tensor {t['name']} is {t['type']}: the Edge TPU computes on int8/uint8 only"
    return ""


def to_markdown(report: CompatReport) -> str:
    r = report
    lines = [f"# Edge TPU compatibility (static check, edgetpu_compiler {r.compiler_version} rules)", "",
             f"- model: `{Path(r.model).name}`, subgraphs: {r.subgraphs}",
             f"- operations: {r.total_ops}; predicted on the Edge TPU: **{r.mapped_ops}**, "
             f"on the CPU: {r.cpu_ops}"]
    if r.first_blocking:
        fb = r.first_blocking
        lines.append(f"- first op that stops the mapping: **#{fb['index']} {fb['op']} v{fb['version']}** "
                     f"- {fb['reason']}")
    if r.fully_mapped_body:
        lines.append("- the whole network body maps; only the post-processing (the op, the DEQUANTIZE "
                     "ops feeding it and its box clip) runs on the CPU")
    elif not r.mapped_ops:
        lines.append("- nothing maps")
    lines += [f"- model problem: {p}" for p in r.model_problems]
    lines += ["", "| operator | version | mapped | CPU | why (CPU) |", "| --- | --- | --- | --- | --- |"]
    reasons: dict[str, str] = {}
    versions: dict[str, set] = {}
    for c in r.ops:
        versions.setdefault(c.op, set()).add(c.version)
        if c.status != "mapped":
            reasons.setdefault(c.op, c.reason)
    for op, st in sorted(r.op_counts.items()):
        cpu = sum(v for k, v in st.items() if k != "mapped")
        lines.append(f"| {op} | {','.join(map(str, sorted(versions[op])))} | {st.get('mapped', 0)} | "
                     f"{cpu} | {reasons.get(op, '')} |")
    return "\n".join(lines) + "\n"
