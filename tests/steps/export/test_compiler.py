"""The edgetpu_compiler wrapper against a stand-in `edgetpu_compiler` put on PATH by the test.

The real compiler only exists in Coral's apt repository (x86-64 Debian/Ubuntu), so it cannot be
installed here. The stand-in mimics its CLI as documented and as its users have posted it
(google-coral/edgetpu issues): `-s -o OUT -t SECONDS model.tflite`, the summary on stdout, the
operator table, `OUT/<name>_edgetpu.tflite` + `OUT/<name>_edgetpu.log`, exit 1 with `ERROR: ...`
when the model cannot be compiled. STANDIN_MODE picks the behaviour.
"""
from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from camtune.core.errors import StepFailed
from camtune.steps.export import compiler

STANDIN = textwrap.dedent('''\
    #!{python}
    import os, shutil, sys, time
    args = sys.argv[1:]
    out_dir, timeout, show, models = ".", 180, False, []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "--out_dir"):
            out_dir = args[i + 1]; i += 2; continue
        if a in ("-t", "--timeout_sec"):
            timeout = int(args[i + 1]); i += 2; continue
        if a in ("-s", "--show_operations"):
            show = True
        elif a in ("-v", "--version"):
            print("Edge TPU Compiler version 16.0.384591198"); sys.exit(0)
        else:
            models.append(a)
        i += 1
    mode = os.environ.get("STANDIN_MODE", "partial")
    print("Edge TPU Compiler version 16.0.384591198")
    print(f"Started a compilation timeout timer of {{timeout}} seconds.")
    if mode == "unparsable":
        print("ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version of "
              "this builtin might be supported. Are you using an old TFLite binary with a newer model?")
        print("ERROR: Registration failed.")
        print()
        print(f"Invalid model: {{models[0]}}")
        print("Model could not be parsed")
        sys.exit(1)
    if mode == "hang":
        time.sleep(60)
    model = models[0]
    stem = os.path.splitext(os.path.basename(model))[0]
    out_model = os.path.join(out_dir, stem + "_edgetpu.tflite")
    out_log = os.path.join(out_dir, stem + "_edgetpu.log")
    if mode == "full":
        table = [("QUANTIZE", 1, "Mapped to Edge TPU"), ("CONV_2D", 70, "Mapped to Edge TPU"),
                 ("DEPTHWISE_CONV_2D", 35, "Mapped to Edge TPU"), ("ADD", 17, "Mapped to Edge TPU")]
    else:
        table = [("QUANTIZE", 1, "Mapped to Edge TPU"), ("CONV_2D", 70, "Mapped to Edge TPU"),
                 ("DEPTHWISE_CONV_2D", 35, "Mapped to Edge TPU"), ("ADD", 17, "Mapped to Edge TPU"),
                 ("DEQUANTIZE", 2, "Operation is working on an unsupported data type"),
                 ("CUSTOM", 1, "Operation is working on an unsupported data type")]
    tpu = sum(c for _, c, s in table if s == "Mapped to Edge TPU")
    cpu = sum(c for _, c, s in table if s != "Mapped to Edge TPU")
    rows = "\\n".join(f"{{op:<30}} {{c:<10}} {{s}}" for op, c, s in table)
    header = "Operator                       Count      Status\\n\\n"
    if mode != "no_output":
        shutil.copyfile(model, out_model)
        with open(out_log, "w") as fh:
            fh.write("Edge TPU Compiler version 16.0.384591198\\n")
            fh.write(f"Input: {{model}}\\nOutput: {{out_model}}\\n\\n" + header + rows + "\\n")
    print()
    print("Model compiled successfully in 1043 ms.")
    print()
    print(f"Input model: {{model}}")
    print("Input size: 3.30MiB")
    print(f"Output model: {{out_model}}")
    print("Output size: 3.71MiB")
    print("On-chip memory used for caching model parameters: 3.42MiB")
    print("On-chip memory remaining for caching model parameters: 4.31MiB")
    print("Off-chip memory used for streaming uncached model parameters: 0.00B")
    print("Number of Edge TPU subgraphs: 1")
    print(f"Total number of operations: {{tpu + cpu}}")
    print(f"Operation log: {{out_log}}")
    print()
    if cpu:
        print("Model successfully compiled but not all operations are supported by the Edge TPU. "
              "A percentage of the model will instead run on the CPU, which is slower. If possible, "
              "consider updating your model to use only operations supported by the Edge TPU. "
              "For details, visit g.co/coral/model-reqs.")
        print(f"Number of operations that will run on Edge TPU: {{tpu}}")
        print(f"Number of operations that will run on CPU: {{cpu}}")
        if show:
            print()
            print(header + rows)
    print("Compilation child process completed within timeout period.")
    print("Compilation succeeded! ")
''')


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """edgetpu_compiler stand-in first on PATH; returns a setter for its mode."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(STANDIN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def set_mode(mode: str):
        monkeypatch.setenv("STANDIN_MODE", mode)
        return str(exe)

    set_mode("partial")
    return set_mode


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "models" / "model.tflite"
    p.parent.mkdir()
    p.write_bytes(b"TFL3 stand-in payload")
    return p


def test_compiles_and_parses_the_operator_log(standin, model_file, tmp_path):
    exe = compiler.resolve(required=True, compiler_path=None)
    assert exe == standin("partial")
    res = compiler.compile_model(model_file, tmp_path / "out", compiler=exe, timeout_s=60)
    assert Path(res.model) == tmp_path / "out" / "model_edgetpu.tflite" and Path(res.model).is_file()
    assert Path(res.log).name == "model_edgetpu.log"
    assert res.version == "16.0.384591198"
    assert (res.subgraphs, res.total_ops, res.tpu_ops, res.cpu_ops) == (1, 126, 123, 3)
    ops = {o["op"]: o for o in res.operators}
    assert ops["CONV_2D"] == {"op": "CONV_2D", "count": 70, "status": "Mapped to Edge TPU", "on_tpu": True}
    assert ops["CUSTOM"]["on_tpu"] is False and len(res.operators) == 6  # table read once, not twice


def test_fully_mapped_model_has_no_cpu_line(standin, model_file, tmp_path):
    exe = standin("full")
    out = compiler.compile_or_skip(model_file, tmp_path / "out", compiler=exe, timeout_s=60)
    assert out["status"] == "compiled"
    assert (out["tpu_ops"], out["cpu_ops"], out["total_ops"]) == (123, 0, 123)


def test_compiler_error_is_a_step_failure_with_its_output(standin, model_file, tmp_path):
    exe = standin("unparsable")
    with pytest.raises(compiler.CompileFailed, match=r"exit 1[\s\S]*CONV_2D' version '6'"):
        compiler.compile_model(model_file, tmp_path / "out", compiler=exe, timeout_s=60)


def test_timeout(standin, model_file, tmp_path, monkeypatch):
    exe = standin("hang")
    monkeypatch.setattr(compiler, "TIMEOUT_GRACE_S", 0)
    with pytest.raises(compiler.CompileFailed, match=r"did not finish within 1s"):
        compiler.compile_model(model_file, tmp_path / "out", compiler=exe, timeout_s=1)


def test_missing_output_files(standin, model_file, tmp_path):
    exe = standin("no_output")
    with pytest.raises(compiler.CompileFailed,
                       match=r"did not write model_edgetpu.tflite, model_edgetpu.log"):
        compiler.compile_model(model_file, tmp_path / "out", compiler=exe, timeout_s=60)


def test_missing_compiler_skip_or_fail(tmp_path, monkeypatch, model_file):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert compiler.resolve(required=False, compiler_path=None) is None
    skipped = compiler.compile_or_skip(model_file, tmp_path / "out", compiler=None, timeout_s=60)
    assert skipped["status"] == "skipped" and "NO Edge TPU model" in skipped["reason"]
    assert not (tmp_path / "out").exists()
    with pytest.raises(StepFailed, match=r"required is true[\s\S]*apt-get install edgetpu-compiler"):
        compiler.resolve(required=True, compiler_path=None)


def test_compiler_path_must_be_executable(tmp_path):
    bad = tmp_path / "edgetpu_compiler"
    bad.write_text("not executable")
    with pytest.raises(StepFailed, match="not an executable file"):
        compiler.resolve(required=False, compiler_path=str(bad))


# ai_edge_litert's Delegate.__del__ trips over its own half-built object when the library is missing
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_edgetpu_runtime_not_run_without_libedgetpu(tmp_path):
    """No libedgetpu.so.1 here: the runtime check reports why instead of pretending."""
    from camtune.model.tflite import EDGETPU_LIBRARY

    model = tmp_path / "model_edgetpu.tflite"
    model.write_bytes(b"not loaded: the delegate is looked up first")
    out = compiler.edgetpu_latency(model)
    assert out["status"] == "not_run" and EDGETPU_LIBRARY in out["reason"]
