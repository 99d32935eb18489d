"""Precise BatchNorm statistics: recompute every BN layer's moving mean and variance after training.

Why: BN keeps an exponential moving average (momentum 0.99) of its batch statistics, and that
average trails the weights. A short run from scratch (hundreds of steps, a high learning rate)
ends with averages gathered under weights that are long gone. Frigate runs the model in inference
mode, and the int8 export folds exactly these averages into the convolutions. Measured on the
default sample run (400 steps): the float model's top score on its own training regions was 0.04
in inference mode against 0.47-0.86 in training mode on the same batches; after this recompute,
0.49-0.85 in inference mode. A model that Frigate would see detect nothing becomes one that does.

The recompute ("precise BN", Wu & Johnson 2021, "Rethinking Batch in BatchNorm") runs the finished
model forward in training mode on N batches of its own training input, no gradient, with each
layer's momentum set so its moving statistics end as the plain mean over those N batches. Layers
that are not trainable (a frozen backbone) keep their statistics: Keras runs them in inference mode.
"""
from __future__ import annotations

from typing import Iterable


def batchnorm_layers(model) -> list:
    import tf_keras

    return [layer for layer in model.submodules
            if isinstance(layer, tf_keras.layers.BatchNormalization)]


def recalibrate(model, batches: Iterable, num_batches: int) -> int:
    """Replace the moving statistics of `model`'s BN layers by their mean over the first
    `num_batches` of `batches` (each an input tensor, or an (inputs, labels) pair). Runs eagerly so
    each call reads the layer's current momentum. Returns the number of batches used."""
    layers = batchnorm_layers(model)
    saved = [layer.momentum for layer in layers]
    used = 0
    try:
        for batch in batches:
            if used >= num_batches:
                break
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            used += 1
            for layer in layers:
                # moving = moving * m + batch * (1 - m): with m = 1 - 1/i, the running mean of i batches
                layer.momentum = 1.0 - 1.0 / used
            model(images, training=True)
    finally:
        for layer, m in zip(layers, saved):
            layer.momentum = m
    return used


def copy_statistics(src, dest) -> None:
    """Copy every BN layer's moving mean and variance from `src` to `dest`, two builds of the
    same architecture (their layers pair up in build order; shapes are checked)."""
    a, b = batchnorm_layers(src), batchnorm_layers(dest)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} BatchNorm layers vs {len(b)}: not the same architecture")
    for x, y in zip(a, b):
        for name in ("moving_mean", "moving_variance"):
            v, w = getattr(x, name), getattr(y, name)
            if v.shape != w.shape:
                raise ValueError(f"{x.name}.{name} {v.shape} vs {y.name}.{name} {w.shape}")
            w.assign(v.numpy())
