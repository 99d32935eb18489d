"""TensorFlow's start-up lines on a machine without a GPU.

TensorFlow's CUDA build logs `failed call to cuInit` at ERROR level on every CPU-only machine:
nothing is wrong, yet a person reading a step's output sees an ERROR line. TF_CPP_MIN_LOG_LEVEL=2
hides its INFO and WARNING lines only, and the ERROR line cannot be hidden on its own (it is
written by C++ straight to stderr, and neither CUDA_VISIBLE_DEVICES nor device filters stop it).
So where no NVIDIA device node exists we default to level 3; Python errors still raise as always.
A value the user set is kept (TF_CPP_MIN_LOG_LEVEL=0 shows everything again)."""
from __future__ import annotations

import os
from pathlib import Path

NVIDIA_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")  # Linux driver; WSL2's GPU


def has_gpu_device(nodes=NVIDIA_NODES) -> bool:
    return any(Path(n).exists() for n in nodes)


def default_tf_log_level(nodes=NVIDIA_NODES) -> str:
    """3 (errors too) without a GPU device, where TF's only ERROR line is the CUDA probe; else 2."""
    return "2" if has_gpu_device(nodes) else "3"


def quiet_tensorflow() -> None:
    """Before TensorFlow is imported: its log level, unless the user chose one."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", default_tf_log_level())
