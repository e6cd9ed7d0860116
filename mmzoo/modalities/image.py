"""The ``image`` input: encoded JPEG / PNG / GIF / BMP / WebP bytes in, uint8 or float32
pixels ``[H, W, C]`` (``spec.image_shape``, resized as ``spec.image_resize``) out."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from mmzoo.data import image as image_lib
from mmzoo.data import manifest as manifest_lib
from mmzoo.modalities.base import Modality, checked_map, decode_user_file, read_user_file
from mmzoo.registry import MODALITIES

REASON = "not a decodable image (JPEG, PNG, GIF, BMP, WebP bytes expected)"


class ImageModality(Modality):
    """Images: a file per example (manifest path, bytes, or an array of pixels)."""

    name = "image"
    is_file = True

    def preprocess_one(self, value, spec, state, resample=True):
        return image_lib.preprocess_image_bytes(value, spec)

    def from_decoded(self, value, spec, state, sample_rate=None, resample=True):
        if value.dtype == tf.string:
            return image_lib.preprocess_image_bytes(value, spec)
        return image_lib.preprocess_image(value, spec)

    def serve(self, batch, spec, state):
        return checked_map(self.name, batch, lambda b: image_lib.preprocess_image_bytes(b, spec),
                           spec.image_shape, spec.image_dtype, REASON)

    def check_cell(self, value, where):
        full = manifest_lib.resolve_path(value, where["root"], where["allow_absolute_paths"])
        _check_file(full)
        with open(full, "rb") as f:
            reason = image_lib.check_image_header(f.read(16))
        if reason:
            raise ValueError(reason)
        return full

    def decode_check(self, spec, resample):
        return lambda b: image_lib.preprocess_image_bytes(b, spec)

    def record_feature(self, spec):
        return tf.io.FixedLenFeature([], tf.string)

    def record_value(self, value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def encode_for_record(self, value):
        return tf.io.encode_png(tf.cast(value, tf.uint8))

    def from_record(self, value, spec):
        img = tf.ensure_shape(tf.io.decode_png(value, channels=spec.image_shape[-1]), spec.image_shape)
        return tf.cast(img, tf.float32) if spec.image_dtype == "float32" else img

    def random_input(self, spec, n, rng):
        return rng.integers(0, 256, (n, *self.input_shape(spec))).astype(spec.image_dtype)

    def absent_raw(self, spec) -> bytes:
        """A black PNG of the input's size (preprocesses to zeros)."""
        return bytes(tf.io.encode_png(np.zeros(spec.image_shape, np.uint8)).numpy())

    def synthetic(self, spec, rng, i):
        """A PNG or JPEG (of another size than the model's, so resizing runs) with a disc."""
        h, w, c = spec.image_shape
        hh, ww = h + 7 * (i % 3), w + 5 * (i % 2)
        img = rng.integers(0, 60, (hh, ww, c)).astype(np.uint8)
        yy, xx = np.mgrid[:hh, :ww]
        r = min(hh, ww) / 3
        disc = (yy - hh / 2) ** 2 + (xx - ww / 2) ** 2 < r * r
        img[disc] = rng.integers(100, 256, c).astype(np.uint8)
        if c == 4:
            img[..., 3] = 255
        use_jpeg = i % 2 == 1 and c != 4
        encoded = tf.io.encode_jpeg(img, quality=95) if use_jpeg else tf.io.encode_png(img)
        return bytes(encoded.numpy())

    def from_user(self, value, spec, state, resample=True):
        raw = read_user_file(value, self.name)
        if raw is not None:
            return decode_user_file(lambda b: image_lib.preprocess_image_bytes(b, spec), raw, self.name, value)
        return image_lib.preprocess_image(np.asarray(value), spec)


def _check_file(full: str) -> None:
    if not os.path.exists(full):
        raise ValueError(f"file not found ({full})")
    if not os.path.isfile(full):
        raise ValueError(f"not a file ({full})")


MODALITIES.add("image", ImageModality())
