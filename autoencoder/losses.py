"""The reconstruction losses of `train.loss` beyond Keras's own: Charbonnier and SSIM + L1.

Each is a function of (target, output) giving one value per image (the mean over its pixels),
used by the autoencoder's compiled Keras loss and, times the pixels of an image, by the VAE's
reconstruction term. The Keras class ImageLoss is registered for serialisation
("autoencoder>ImageLoss"), the name a saved model.keras holds with its compile settings; the
names older versions saved ("autoencoder>Charbonnier", "autoencoder>SSIML1") still load, as
ImageLoss. This module imports Keras at its top, so the rest of the package imports it only
inside functions.
"""

from __future__ import annotations

from autoencoder import runtime

runtime.tensorflow()  # the environment TensorFlow needs, set before Keras first imports it

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

# Charbonnier's epsilon: sqrt(d^2 + eps^2) is |d| to within eps, with a gradient at d = 0
# (Lai et al. 2017, LapSRN, use 1e-3 on [0, 1] images).
CHARBONNIER_EPS = 1e-3
# The weight of (1 - SSIM) in ssim_l1, the rest on L1: alpha = 0.84 of Zhao, Gallo, Frosio and
# Kautz, "Loss Functions for Image Restoration with Neural Networks" (IEEE TCI 2017), section 3.3.
SSIM_WEIGHT = 0.84


def _pixel_axes(y):
    return tuple(range(1, len(y.shape)))


def charbonnier(y, x):
    """Per image: the mean over pixels of sqrt((y - x)^2 + eps^2)."""
    d = ops.cast(y, "float32") - ops.cast(x, "float32")
    return ops.mean(ops.sqrt(ops.square(d) + CHARBONNIER_EPS**2), axis=_pixel_axes(y))


def ssim(y, x):
    """Per image: SSIM of x against y (tf.image.ssim, max_val 1, mean over channels), x clipped
    to [0, 1]; the window shrinks to fit images under 11 pixels, as evaluate.ssim_values does."""
    size = min(11, int(y.shape[1]), int(y.shape[2]))
    x = ops.clip(ops.cast(x, "float32"), 0.0, 1.0)
    return tf.image.ssim(ops.cast(y, "float32"), x, max_val=1.0, filter_size=size)


def ssim_l1(y, x):
    """Per image: SSIM_WEIGHT * (1 - SSIM) + (1 - SSIM_WEIGHT) * the mean |y - x|."""
    l1 = ops.mean(ops.abs(ops.cast(y, "float32") - ops.cast(x, "float32")), axis=_pixel_axes(y))
    return SSIM_WEIGHT * (1.0 - ssim(y, x)) + (1.0 - SSIM_WEIGHT) * l1


def per_image(name: str, y, x):
    """The loss `name` of train.loss per image, a mean over its pixels (bce reads the output
    as a probability: the sigmoid's, which keeps its logits for it)."""
    axes = _pixel_axes(y)
    if name == "bce":
        return ops.mean(ops.binary_crossentropy(y, x), axis=axes)
    if name == "mse":
        return ops.mean(ops.square(y - x), axis=axes)
    if name in ("mae", "l1"):
        return ops.mean(ops.abs(y - x), axis=axes)
    return {"charbonnier": charbonnier, "ssim_l1": ssim_l1}[name](y, x)


@keras.saving.register_keras_serializable(package="autoencoder")
class ImageLoss(keras.losses.Loss):
    """One of this module's per-image losses by name (charbonnier, ssim_l1), averaged over images.

    charbonnier: sqrt((y - x)^2 + CHARBONNIER_EPS^2), a smooth L1; ssim_l1: SSIM_WEIGHT (1 - SSIM)
    + (1 - SSIM_WEIGHT) L1 (Zhao et al. 2017).
    """

    def __init__(self, kind: str = "charbonnier", name: str | None = None, **kwargs):
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind

    def call(self, y_true, y_pred):
        return per_image(self.kind, y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind}


class _Legacy(ImageLoss):
    """A loss class of older versions, by its old registered name: it loads as ImageLoss(KIND)."""

    # Older versions saved charbonnier and ssim_l1 as classes of their own, whose config holds
    # name and reduction but no kind: without these names Keras cannot compile such a
    # model.keras on load.
    KIND: str

    def __init__(self, name: str | None = None, **kwargs):
        super().__init__(self.KIND, name=name, **kwargs)

    @classmethod
    def from_config(cls, config):
        return ImageLoss(cls.KIND, **config)  # saved again, it is an ImageLoss


@keras.saving.register_keras_serializable(package="autoencoder")
class Charbonnier(_Legacy):
    """The charbonnier loss of older versions' model.keras files ("autoencoder>Charbonnier")."""

    KIND = "charbonnier"


@keras.saving.register_keras_serializable(package="autoencoder")
class SSIML1(_Legacy):
    """The ssim_l1 loss of older versions' model.keras files ("autoencoder>SSIML1")."""

    KIND = "ssim_l1"


def keras_loss(name: str):
    """The compiled loss of train.loss `name`: Keras's own where it has one."""
    builtin = {
        "bce": keras.losses.BinaryCrossentropy,
        "mse": keras.losses.MeanSquaredError,
        "mae": keras.losses.MeanAbsoluteError,
        "l1": keras.losses.MeanAbsoluteError,
    }
    return builtin[name]() if name in builtin else ImageLoss(name)
