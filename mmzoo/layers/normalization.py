"""A BatchNormalization that trains with TensorFlow's fused kernel."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="mmzoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with the same weights, config and results, whose
    training step runs TensorFlow's fused batch norm kernel. (Keras' name on purpose: Keras 3
    files a layer's weights under its class name, so weights saved with either load into the
    other; the config names it ``mmzoo>BatchNormalization``.)

    Keras 3 normalizes a training batch with separate ops (moments, then the normalization),
    forward and backward: on CPU that took longer than the convolutions around it (5.0 ms
    forward after a melcnn audio encoder's 1.9 ms first conv at batch 64, 16 channels; the
    fused kernel: 2.7 ms). Training on feature maps ``[N, H, W, C]`` (channels last) uses
    ``FusedBatchNormV3`` (1.3-1.5x faster forward and backward there); the moving statistics
    get Keras' update (the population variance, not the kernel's Bessel-corrected one). Inference
    is Keras' own graph (what SavedModel and LiteRT exports trace). Other ranks (where the fused
    kernel is slower), a mask, renorm, synchronized statistics or another axis fall back to
    `keras.layers.BatchNormalization` unchanged.

    Example:
    >>> layer = mmzoo.layers.BatchNormalization(momentum=0.9)
    >>> layer(np.ones((8, 4, 4, 3), "float32"), training=True).shape
    TensorShape([8, 4, 4, 3])
    """

    def _fused_applies(self, inputs, mask) -> bool:
        axis = self.axis if isinstance(self.axis, int) else None
        return (keras.config.backend() == "tensorflow" and mask is None and not self.renorm
                and not self.synchronized and len(inputs.shape) == 4 and axis in (-1, 3)
                and inputs.shape[-1] is not None)

    def call(self, inputs, training=None, mask=None):
        if not (training is True and self.trainable and self._fused_applies(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")  # as Keras: float32 statistics under mixed precision too
        channels = int(x.shape[-1])
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=tf.zeros([0]), variance=tf.zeros([0]),
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        # The kernel returns the Bessel-corrected variance; Keras averages the population one.
        n = tf.cast(tf.size(x) // channels, "float32")
        variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + tf.cast(mean, self.moving_mean.dtype) * (1 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum
                                    + tf.cast(variance, self.moving_variance.dtype) * (1 - momentum))
        return ops.cast(y, self.compute_dtype)
