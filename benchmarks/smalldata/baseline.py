"""A hand-written Keras 3 baseline for an image + text + audio manifest (what a user would write).

Conv2D image branch, char-level BiGRU text branch, log-mel + Conv1D audio branch, Concatenate,
Dense softmax; Adam, early stopping on the validation split (10 % of train when the manifest
has none) with the best weights restored. `run` returns test accuracy, the text-only score
(image and audio zeroed) and the seconds spent reading the data and training.
"""

import csv
import os
import time
import wave

import keras
import numpy as np
from keras import layers
from PIL import Image


def load(manifest, rows, chars, text_len, audio_len, image_size):
    """Images in [0, 1], char ids (0 pad, 1 unknown), audio floats padded / cropped."""
    root, out = os.path.dirname(manifest), {"image": [], "text": [], "audio": []}
    for r in rows:
        img = Image.open(os.path.join(root, r["image"])).convert("RGB").resize(image_size)
        out["image"].append(np.asarray(img, np.float32) / 255)
        ids = [chars.get(c, 1) for c in r["text"][:text_len]]
        out["text"].append(ids + [0] * (text_len - len(ids)))
        with wave.open(os.path.join(root, r["audio"])) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2")[:audio_len] / 32768
        out["audio"].append(np.pad(x, (0, audio_len - len(x))).astype(np.float32))
    return {k: np.array(v) for k, v in out.items()}


def build(n_chars, n_classes, image_shape, audio_len):
    """The three branches, concatenated, and a softmax classifier."""
    image, text, audio = (keras.Input(image_shape, name="image"), keras.Input((None,), dtype="int32", name="text"),
                          keras.Input((audio_len,), name="audio"))
    x = image
    for filters in (32, 64, 128):
        x = layers.MaxPooling2D()(layers.Conv2D(filters, 3, padding="same", activation="relu")(x))
    x = layers.Dense(128, activation="relu")(layers.Dropout(0.3)(layers.Flatten()(x)))
    t = layers.Bidirectional(layers.GRU(64))(layers.Embedding(n_chars, 64, mask_zero=True)(text))
    a = layers.MelSpectrogram(fft_length=512, sequence_stride=160, num_mel_bins=64)(audio)  # log-mel (dB)
    a = layers.BatchNormalization()(layers.Permute((2, 1))(a))  # (time, mels)
    for filters in (64, 128, 128):
        a = layers.MaxPooling1D()(layers.Conv1D(filters, 5, padding="same", activation="relu")(a))
    a = layers.GlobalMaxPooling1D()(a)
    z = layers.Dropout(0.3)(layers.Dense(256, activation="relu")(layers.Concatenate()([x, t, a])))
    model = keras.Model([image, text, audio], layers.Dense(n_classes, activation="softmax")(z))
    model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run(manifest, seed=0, epochs=40, patience=5, batch_size=32, audio_seconds=1.2, image_size=None):
    """Train on the manifest's train split, stop early on validation, score the test split."""
    keras.utils.set_random_seed(seed)
    started = time.time()
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "validation", "test")}
    if not split["validation"]:  # carve 10 % of train
        order = np.random.default_rng(seed).permutation(len(split["train"]))
        n_val = max(1, len(order) // 10)
        split["validation"] = [split["train"][i] for i in order[:n_val]]
        split["train"] = [split["train"][i] for i in order[n_val:]]
    classes = sorted({r["label"] for r in split["train"]})
    chars = {c: i + 2 for i, c in enumerate(sorted({c for r in split["train"] for c in r["text"]}))}
    text_len = max(len(r["text"]) for r in split["train"])
    audio_len = int(audio_seconds * 16000)
    image_size = image_size or Image.open(os.path.join(os.path.dirname(manifest), rows[0]["image"])).size
    data = {s: load(manifest, rs, chars, text_len, audio_len, image_size) for s, rs in split.items()}
    y = {s: np.array([classes.index(r["label"]) for r in rs]) for s, rs in split.items()}
    model = build(len(chars) + 2, len(classes), tuple(image_size)[::-1] + (3,), audio_len)
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = model.fit(data["train"], y["train"], batch_size=batch_size, epochs=epochs, verbose=0,
                        validation_data=(data["validation"], y["validation"]), callbacks=[stop])
    seconds = time.time() - started
    accuracy = model.evaluate(data["test"], y["test"], verbose=0)[1]
    blank = {**data["test"], "image": np.zeros_like(data["test"]["image"]),
             "audio": np.zeros_like(data["test"]["audio"])}
    text_only = float(np.mean(model.predict(blank, verbose=0).argmax(-1) == y["test"]))
    return {"accuracy": float(accuracy), "text_only": text_only, "seconds": seconds,
            "epochs": len(history.history["loss"]), "params": int(model.count_params())}
