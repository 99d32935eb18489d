"""Run Coral's `edgetpu_compiler` on the int8 model and read what it did.

The compiler writes `<out_dir>/<name>_edgetpu.tflite` and `<out_dir>/<name>_edgetpu.log` (the
per-operator table) and prints a summary (`Number of Edge TPU subgraphs: N`, `Number of operations
that will run on Edge TPU: N` / `on CPU: N`). We run it with `-s` (print the operator table too),
`-o <out_dir>` and its own `-t` timeout, keep both files, and parse the table. It exists only for
x86-64 Debian/Ubuntu (Coral's apt repository); where it is missing `export.edgetpu.required`
decides between a loud skip and a failure that says how to install it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from camtune.core.errors import StepFailed

COMPILER = "edgetpu_compiler"
INSTALL_STEPS = (
    "Install the Edge TPU compiler from Coral's apt repository (x86-64 Debian/Ubuntu):\n"
    "  curl https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -\n"
    "  echo 'deb https://packages.cloud.google.com/apt coral-edgetpu-stable main' | "
    "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list\n"
    "  sudo apt-get update && sudo apt-get install edgetpu-compiler\n"
    "or point export.edgetpu.compiler_path at it, or set export.edgetpu.required: false to skip."
)
_ROW = re.compile(r"^(?P<op>[A-Za-z0-9_]+)\s+(?P<count>\d+)\s+(?P<status>\S.*?)\s*$")
_MAPPED = "Mapped to Edge TPU"
TIMEOUT_GRACE_S = 30  # our hard limit beyond the compiler's own -t, for a compiler that hangs anyway


class CompileFailed(StepFailed):
    """edgetpu_compiler ran and did not produce a usable model."""


@dataclass
class CompileResult:
    compiler: str
    version: str | None
    model: str                 # the compiled model (<name>_edgetpu.tflite)
    log: str                   # the operator log (<name>_edgetpu.log)
    subgraphs: int | None
    total_ops: int | None
    tpu_ops: int | None
    cpu_ops: int | None
    operators: list[dict] = field(default_factory=list)  # {op, count, status, on_tpu}
    seconds: float = 0.0
    stdout: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("stdout")
        return d


def find_compiler(compiler_path: str | None = None) -> str | None:
    """`compiler_path` when given (must exist and be executable), else edgetpu_compiler on PATH."""
    if compiler_path:
        p = Path(compiler_path)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise StepFailed(f"export.edgetpu.compiler_path {compiler_path}: not an executable file\n"
                             f"{INSTALL_STEPS}")
        return str(p)
    return shutil.which(COMPILER)


def _int(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text, re.MULTILINE)
    return int(m.group(1)) if m else None


def parse_log(text: str) -> dict:
    """Compiler stdout and/or its .log -> version, subgraphs, op counts and the operator table."""
    version = re.search(r"Edge TPU Compiler version (\S+)", text)
    operators, in_table = [], False
    for line in text.splitlines():
        if re.match(r"^\s*Operator\s+Count\s+Status\s*$", line):
            in_table, operators = True, []  # stdout (-s) and .log both have the table: keep one
            continue
        if in_table:
            m = _ROW.match(line.strip())
            if m:
                operators.append({"op": m["op"], "count": int(m["count"]), "status": m["status"],
                                  "on_tpu": m["status"] == _MAPPED})
            elif line.strip() and operators:
                in_table = False
    tpu = _int(r"Number of operations that will run on Edge TPU:\s*(\d+)", text)
    cpu = _int(r"Number of operations that will run on CPU:\s*(\d+)", text)
    total = _int(r"Total number of operations:\s*(\d+)", text)
    if operators:
        table_tpu = sum(o["count"] for o in operators if o["on_tpu"])
        table_cpu = sum(o["count"] for o in operators if not o["on_tpu"])
        tpu = table_tpu if tpu is None else tpu
        cpu = table_cpu if cpu is None else cpu
    if total is not None and tpu is not None and cpu is None:
        cpu = total - tpu  # a fully mapped model prints no "on CPU" line
    return {"version": version.group(1) if version else None,
            "subgraphs": _int(r"Number of Edge TPU subgraphs:\s*(\d+)", text),
            "total_ops": total, "tpu_ops": tpu, "cpu_ops": cpu, "operators": operators}


def compile_model(model_path: str | Path, out_dir: str | Path, *, compiler: str,
                  timeout_s: int) -> CompileResult:
    """Run the compiler; CompileFailed (with its output) on a non-zero exit, a timeout, or
    missing/empty output files."""
    model_path, out_dir = Path(model_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [compiler, "-s", "-o", str(out_dir), "-t", str(int(timeout_s)), str(model_path)]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + TIMEOUT_GRACE_S)
    except subprocess.TimeoutExpired as exc:
        raise CompileFailed(f"{COMPILER} did not finish within {timeout_s}s "
                            f"(export.edgetpu.timeout_s): {' '.join(cmd)}\n"
                            f"{_tail(exc.stdout)}{_tail(exc.stderr)}") from None
    seconds = time.monotonic() - t0
    output = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        raise CompileFailed(f"{COMPILER} failed (exit {proc.returncode}) on {model_path}:\n{_tail(output)}")
    stem = model_path.stem
    compiled, log = out_dir / f"{stem}_edgetpu.tflite", out_dir / f"{stem}_edgetpu.log"
    missing = [p.name for p in (compiled, log) if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise CompileFailed(f"{COMPILER} exited 0 but did not write {', '.join(missing)} in {out_dir}:\n"
                            f"{_tail(output)}")
    parsed = parse_log(output + "\n" + log.read_text(errors="replace"))
    return CompileResult(compiler=compiler, version=parsed["version"], model=str(compiled), log=str(log),
                         subgraphs=parsed["subgraphs"], total_ops=parsed["total_ops"],
                         tpu_ops=parsed["tpu_ops"], cpu_ops=parsed["cpu_ops"],
                         operators=parsed["operators"], seconds=round(seconds, 2), stdout=output)


def _tail(text, n: int = 4000) -> str:
    if not text:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return text[-n:]


def resolve(*, required: bool, compiler_path: str | None) -> str | None:
    """The compiler to use, None to skip (not required), or StepFailed with the install steps.
    Called before the minutes of conversion, so a required compile fails fast."""
    compiler = find_compiler(compiler_path)
    if compiler is None and required:
        raise StepFailed(f"{COMPILER} not found on PATH and export.edgetpu.compiler_path is not set, "
                         f"but export.edgetpu.required is true.\n{INSTALL_STEPS}")
    return compiler


def compile_or_skip(model_path: str | Path, out_dir: str | Path, *, compiler: str | None,
                    timeout_s: int) -> dict:
    """{"status": "compiled", ...CompileResult} or, without a compiler, {"status": "skipped", ...}."""
    if compiler is None:
        return {"status": "skipped",
                "reason": f"{COMPILER} not found on PATH and export.edgetpu.compiler_path is not set: "
                          f"NO Edge TPU model was built (model_edgetpu.tflite is absent)",
                "install": INSTALL_STEPS}
    result = compile_model(model_path, out_dir, compiler=compiler, timeout_s=timeout_s)
    return {"status": "compiled", **result.to_dict()}


def edgetpu_latency(model_path: str | Path, runs: int = 10) -> dict:
    """Run the compiled model on a Coral through libedgetpu.so.1 and time it, or say why not."""
    import numpy as np

    from camtune.model.tflite import EdgeTPUUnavailable, TFLiteDetector

    try:
        det = TFLiteDetector(model_path, edgetpu=True)
    except EdgeTPUUnavailable as exc:
        return {"status": "not_run", "reason": str(exc).splitlines()[0]}
    frame = np.zeros((1, det.height, det.width, 3), np.uint8)
    det.detect_raw(frame)  # first invoke loads the model onto the TPU
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        det.detect_raw(frame)
        times.append((time.perf_counter() - t0) * 1000)
    return {"status": "ran", "runs": runs, "median_ms": float(np.median(times))}
