"""Image preprocessing with TF ops: decode JPEG / PNG / BMP / GIF (first frame) / WebP,
bring gray / gray+alpha / RGB / RGBA to the spec's channels, resize, output uint8.

Channel rules: gray -> RGB repeats the gray value; RGB -> gray uses
``tf.image.rgb_to_grayscale``; alpha is dropped (not composited) when the spec has 1 or 3
channels and set to 255 (opaque) when the spec has 4 channels and the file has none.
Resizing: an image already at the spec's size is left alone; shrinking uses area averaging
(anti-aliased, and 3x faster than antialiased bilinear); anything else uses bilinear with
antialiasing. ``image_resize="pad"`` keeps the aspect ratio and pads with black
(``tf.image.resize_with_pad``).
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

IMAGE_RESIZE_MODES = ("stretch", "pad")
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WebP")


def sniff_image_format(head: bytes) -> Optional[str]:
    """The image format from a file's first bytes, or None when TF cannot decode it."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def check_image_header(data: bytes) -> Optional[str]:
    """Python-side check of an image file's bytes: the reason it is unusable, or None."""
    if not data:
        return "the image file is empty (0 bytes)"
    if sniff_image_format(data[:16]) is None:
        return (
            f"not an image TensorFlow can decode ({', '.join(IMAGE_FORMATS)}); "
            f"the file starts with {data[:8]!r}"
        )
    return None


def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 [h, w, 1|2|3|4] -> uint8 [h, w, channels]."""

    def gray(x):
        return x[..., :1]

    def rgb_from(x, c):
        if c in (1, 2):
            return tf.concat([x[..., :1]] * 3, axis=-1)
        return x[..., :3]

    def to_gray(x, c):
        if c in (1, 2):
            return gray(x)
        return tf.image.rgb_to_grayscale(x[..., :3])

    def opaque(x):
        return tf.fill(tf.concat([tf.shape(x)[:2], [1]], axis=0), tf.constant(255, tf.uint8))

    def to_rgba(x, c):
        if c == 2:
            return tf.concat([rgb_from(x, c), x[..., 1:2]], axis=-1)
        if c == 4:
            return x
        return tf.concat([rgb_from(x, c), opaque(x)], axis=-1)

    convert = {1: to_gray, 3: rgb_from, 4: to_rgba}[channels]
    branches = [lambda c=c: convert(image, c) for c in (1, 2, 3, 4)]
    out = tf.switch_case(tf.shape(image)[-1] - 1, branches)
    out.set_shape([None, None, channels])
    return out


def preprocess_image(image: tf.Tensor, spec) -> tf.Tensor:
    """A decoded uint8 image [h, w, c] -> the spec's image input ([H, W, C], spec.image_dtype).

    Example:
    >>> preprocess_image(tf.zeros([10, 20, 1], tf.uint8), DataSpec()).shape
    TensorShape([64, 64, 3])
    """
    height, width, channels = spec.image_shape
    mode = spec.image_resize
    if mode not in IMAGE_RESIZE_MODES:
        raise ValueError(
            f"image_resize must be one of {list(IMAGE_RESIZE_MODES)}. Received: {mode!r}"
        )
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        image = tf.cast(tf.clip_by_value(tf.round(tf.cast(image, tf.float32)), 0, 255), tf.uint8)
    if image.shape.rank == 2:
        image = image[..., tf.newaxis]
    if image.shape[-1] != channels:
        image = _to_channels(image, channels)

    def resize(method, antialias):
        def fn():
            if mode == "pad":
                out = tf.image.resize_with_pad(image, height, width, method, antialias)
            else:
                out = tf.image.resize(image, [height, width], method, antialias=antialias)
            return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)

        return fn

    size = tf.shape(image)[:2]
    out = tf.case(
        [
            (tf.reduce_all(tf.equal(size, [height, width])), lambda: image),
            (tf.reduce_all(size >= [height, width]), resize("area", False)),
        ],
        default=resize("bilinear", True),
    )
    out = tf.ensure_shape(out, [height, width, channels])
    if spec.image_dtype == "float32":
        out = tf.cast(out, tf.float32)
    return out


def decode_image_bytes(data: tf.Tensor, channels: int = 0) -> tf.Tensor:
    """Encoded bytes -> uint8 [h, w, c] (GIF: first frame).

    ``channels=0`` keeps the file's own channels; ``channels=3`` lets the decoders convert
    (same result as `preprocess_image`'s rules: gray repeated, alpha dropped).
    """
    image = tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, channels or None])
    return image


def preprocess_image_bytes(data: tf.Tensor, spec) -> tf.Tensor:
    """Encoded image bytes (scalar string) -> the spec's image input. Graph-safe.

    Example:
    >>> img = preprocess_image_bytes(tf.io.read_file("cat.png"), data.spec)  # doctest: +SKIP
    """
    # Every decoder converts to RGB itself (identically to `_to_channels`), and faster.
    channels = 3 if spec.image_shape[-1] == 3 else 0
    return preprocess_image(decode_image_bytes(data, channels), spec)
