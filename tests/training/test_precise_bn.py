"""camtune.training.precise_bn: BN statistics recomputed as the plain mean over N batches."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture()
def model():
    import tf_keras

    inp = tf_keras.Input((4,))
    x = tf_keras.layers.Dense(4, kernel_initializer="identity", name="d")(inp)
    x = tf_keras.layers.BatchNormalization(momentum=0.99, name="bn")(x)
    out = tf_keras.layers.BatchNormalization(momentum=0.9, name="frozen")(x)
    m = tf_keras.Model(inp, out)
    m.get_layer("frozen").trainable = False  # a frozen layer runs in inference mode: stats kept
    return m


def test_statistics_become_the_mean_over_the_batches(model):
    from camtune.training import precise_bn

    rng = np.random.default_rng(0)
    # batches from shifted distributions: the old moving average (0 / 1) must be gone entirely
    batches = [(rng.normal(3 + i, 1 + i, size=(16, 4)).astype("float32"), None) for i in range(5)]
    used = precise_bn.recalibrate(model, iter(batches), num_batches=4)
    assert used == 4
    bn = model.get_layer("bn")
    x = np.stack([b for b, _ in batches[:4]])
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(axis=1).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(axis=1).mean(axis=0), rtol=1e-4)
    assert bn.momentum == 0.99  # restored
    frozen = model.get_layer("frozen")
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(4))
    np.testing.assert_array_equal(frozen.moving_variance.numpy(), np.ones(4))
    assert sorted(layer.name for layer in precise_bn.batchnorm_layers(model)) == ["bn", "frozen"]


def test_fewer_batches_than_asked(model):
    from camtune.training import precise_bn

    x = np.full((8, 4), 2.0, "float32")
    assert precise_bn.recalibrate(model, [x, x], num_batches=10) == 2
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), np.full(4, 2.0), rtol=1e-6)
