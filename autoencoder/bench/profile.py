"""Measurements in this process with the project's settings: each layer alone, and matmul's rate."""

from __future__ import annotations

import statistics
import time

from autoencoder.config import Config
from autoencoder.model import keras_layers
from autoencoder.runtime import choose_precision, tensorflow
from autoencoder.shapes import forward_flops, plan_model


def layer_profile(config: Config, repeats: int = 7) -> str:
    """Each layer's forward + backward time, in float32 and in the static rule's policy."""
    import numpy as np

    plan = plan_model(config.model)
    tf = tensorflow()
    batch = config.train.batch_size
    # The static rule, untimed: the profile is there to compare float32 with the mixed policy,
    # whichever of the two training's timing would pick.
    auto = choose_precision(config.train.mixed_precision)
    policies = ["float32"] + ([auto] if auto != "float32" else [])
    rows, totals = [], {}
    for policy in policies:
        total = 0.0
        for planned in plan.layers:
            if planned.merge or planned.part == "vae":
                continue  # joins (Add, Concatenate) and a VAE's sampling: not layers of one input
            layers = keras_layers(planned, policy)
            x = tf.constant(
                np.random.default_rng(0).random((batch, *planned.input_shape), dtype=np.float32)
            )
            y = x
            for layer in layers:  # eagerly once, so that the layers build their weights
                y = layer(y, training=True)
            weights = [w for layer in layers for w in layer.trainable_weights]
            # A random upstream gradient, as the layers above would send: with a plain sum the
            # backward pass of a layer's first convolution can collapse into something cheaper.
            upstream = tf.random.uniform(y.shape, seed=1)

            @tf.function
            def step(inputs, layers=layers, weights=weights, upstream=upstream):
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    y = inputs
                    for layer in layers:
                        y = layer(y, training=True)
                    loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
                return tape.gradient(loss, [inputs, *weights])

            step(x)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                [g.numpy() for g in step(x) if g is not None]
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            total += seconds
            flops = 3 * forward_flops(planned) * batch
            rows.append(
                (
                    policy,
                    planned.block,
                    planned.kind,
                    planned.input_shape,
                    planned.output_shape,
                    seconds,
                    flops / seconds / 1e9 if flops else None,
                )
            )
        totals[policy] = total
    lines = [
        f"per-layer forward + backward at batch {batch} (median of {repeats}), {config.name}:",
        "",
        f"{'precision':<15} {'block':<6} {'layer':<16} {'input -> output':<22} {'ms':>8} "
        f"{'share':>6} {'GFLOP/s':>8}",
    ]
    for policy, block, kind, shape_in, shape_out, seconds, gflops in rows:
        shapes = f"{'x'.join(map(str, shape_in))} -> {'x'.join(map(str, shape_out))}"
        lines.append(
            f"{policy:<15} {block:<6} {kind:<16} {shapes:<22} {seconds * 1e3:>8.2f} "
            f"{seconds / totals[policy]:>6.0%} "
            f"{(f'{gflops:.3g}' if gflops else '-'):>8}"  # a tiny layer on busy cores is < 0.1
        )
    lines.append(
        "(every layer includes the gradient with respect to its input, which training "
        "skips for the first layer; GFLOP/s counts 3 x forward)"
    )
    for policy, total in totals.items():
        lines.append(
            f"{policy}: layers alone add up to {total * 1e3:.1f} ms a batch, "
            f"{batch / total:,.0f} images/s before the optimizer, loss and input pipeline"
        )
    return "\n".join(lines)


def measure_matmul() -> float:
    """Best float32 GFLOP/s of TensorFlow's 2048 x 2048 matmul, with the project's settings."""
    tf = tensorflow()
    n = 2048
    a = tf.random.uniform((n, n), dtype=tf.float32)
    b = tf.random.uniform((n, n), dtype=tf.float32)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(5):
            matmul(a, b).numpy()
        best = min(best, (time.perf_counter() - start) / 5)
    return 2 * n**3 / best / 1e9
