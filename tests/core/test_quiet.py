"""camtune.core.quiet: no TensorFlow ERROR line on a CPU machine where nothing is wrong."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from camtune.core import quiet


def test_level_3_without_a_gpu_device_node_and_2_with_one(tmp_path):
    node = tmp_path / "nvidiactl"
    assert quiet.default_tf_log_level([str(node)]) == "3"
    node.touch()
    assert quiet.default_tf_log_level([str(tmp_path / "nvidia0"), str(node)]) == "2"


def test_a_level_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    quiet.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == quiet.default_tf_log_level()


@pytest.mark.skipif(quiet.has_gpu_device(), reason="a GPU machine: TensorFlow's CUDA lines are its own")
def test_tensorflow_starts_without_an_error_line_on_this_cpu_machine():
    """Importing camtune before TensorFlow is enough (a step, a script, a library user): the real
    import and device probe (the CUDA build prints `failed call to cuInit` at ERROR level at this
    point on a CPU-only machine)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import camtune\nimport tensorflow as tf; print(tf.config.list_physical_devices())"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "CPU" in r.stdout, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if " E " in ln or "ERROR" in ln or "cuInit" in ln]
    assert not lines, r.stderr
