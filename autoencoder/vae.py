"""The package's own Keras classes: the VAE model with its training step, and its Sampling layer.

Both are registered for serialisation under "autoencoder>VAE" and "autoencoder>Sampling", the
names saved in a VAE's model.keras. This module imports Keras at its top, so the rest of the
package imports it only inside the functions that build or load a VAE.
"""

from __future__ import annotations

from autoencoder import runtime

runtime.tensorflow()  # the environment TensorFlow needs, set before Keras first imports it

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402


@keras.saving.register_keras_serializable(package="autoencoder")
class Sampling(keras.layers.Layer):
    """z = mean + exp(log_var / 2) * noise: the reparameterisation of a Gaussian code."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, inputs):
        mean, log_var = inputs
        noise = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * noise


@keras.saving.register_keras_serializable(package="autoencoder")
class VAE(keras.Model):
    """encoder -> (mean, log_var) -> Sampling -> decoder; fit() minimises the negative ELBO.

    Per image: reconstruction (the loss summed over pixels: nats for bce) + beta * KL(q(z|x)
    || N(0, I)), beta rising linearly from weight/warmup_steps to weight over the first
    warmup_steps steps (read from the optimizer's step counter, so a resumed run continues
    the ramp). Validation uses the full weight, so val/loss compares across epochs. predict()
    and call() decode the mean: the deterministic reconstruction.
    """

    def __init__(
        self,
        encoder,
        decoder,
        reconstruction="bce",
        kl_weight=1.0,
        warmup_steps=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.sampling = Sampling(name="sampling")
        self.set_objective(reconstruction, kl_weight, warmup_steps)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.mse_tracker = keras.metrics.MeanSquaredError(name="mse")
        self.built = True  # encoder and decoder are built functional models

    @property
    def input_shape(self):
        """(None, H, W, C) as a functional model gives it: the encoder's (export, predict)."""
        return self.encoder.input_shape

    def set_objective(self, reconstruction: str, kl_weight: float, warmup_steps: int):
        """The reconstruction loss (a train.loss name), the KL weight and its warm-up."""
        self.reconstruction = reconstruction
        self.kl_weight, self.warmup_steps = float(kl_weight), int(warmup_steps)

    @property
    def metrics(self):
        # Listed here, Keras resets them at each epoch and logs their epoch means.
        return [
            self.loss_tracker,
            self.reconstruction_tracker,
            self.kl_tracker,
            self.mse_tracker,
        ]

    def call(self, inputs, training=False):
        mean, _ = self.encoder(inputs, training=training)
        return self.decoder(mean, training=training)

    def terms(self, x, y, training=False):
        """(reconstruction of a sampled z, its reconstruction term, KL), per image, batch means."""
        mean, log_var = self.encoder(x, training=training)
        recon = self.decoder(self.sampling([mean, log_var]), training=training)
        from autoencoder.losses import per_image

        # The loss summed over an image's pixels: its per-image mean times their number (nats
        # for bce, whose binary_crossentropy reads the logits the float32 sigmoid keeps).
        pixels = float(np.prod(y.shape[1:]))
        reconstruction = ops.mean(per_image(self.reconstruction, y, recon) * pixels)
        kl = -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=1)
        return recon, reconstruction, ops.mean(kl)

    def beta(self):
        """The KL weight of the current training step."""
        if self.warmup_steps <= 0:
            return ops.convert_to_tensor(self.kl_weight, "float32")
        step = ops.cast(self.optimizer.iterations, "float32") + 1.0
        return self.kl_weight * ops.minimum(1.0, step / self.warmup_steps)

    def _record(self, loss, reconstruction, kl, y, recon):
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        self.mse_tracker.update_state(y, recon)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        y = x if y is None else y
        beta = self.beta()
        with tf.GradientTape() as tape:
            recon, reconstruction, kl = self.terms(x, y, training=True)
            loss = reconstruction + beta * kl
            if self.losses:  # kernel regularizers
                loss = loss + ops.sum(self.losses)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return {**self._record(loss, reconstruction, kl, y, recon), "kl_weight": beta}

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        y = x if y is None else y
        recon, reconstruction, kl = self.terms(x, y)
        return self._record(reconstruction + self.kl_weight * kl, reconstruction, kl, y, recon)

    def get_config(self):
        return {
            "name": self.name,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "reconstruction": self.reconstruction,
            "kl_weight": self.kl_weight,
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
