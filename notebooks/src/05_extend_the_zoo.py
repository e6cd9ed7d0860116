# Source of notebooks/05_extend_the_zoo.ipynb (percent format); build with notebooks/build_notebooks.py.

# %% [markdown]
# # Extend the zoo: your own encoder, fusion layer and preset
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_URL})
#
# Every part of mmzoo is registered by name: encoders (one per modality), fusion layers and
# heads, and presets that name one of each. Your own parts go through the same decorators
# and then work everywhere: `mmzoo.build`, `mmzoo.train`, saving and loading `.keras` files,
# and the export to TF Serving and LiteRT. In this notebook you:
#
# 1. write and register an image encoder (`tiny_cnn`);
# 2. write and register a fusion layer (`product`: multiplicative fusion);
# 3. register a preset with them and build it;
# 4. train it on the built-in dataset;
# 5. check that it serializes (config round trip, `.keras` save and safe-mode load);
# 6. check that it exports (SavedModel + TFLite, validated against the Keras model).
#
# It runs on a CPU runtime in a couple of minutes; GPU / TPU notes are at [the end](#gpu-tpu).

# %%
# Install mmzoo when it is missing (Colab). Locally, from a clone: pip install -e ".[notebooks]"
try:
    import mmzoo
except ImportError:
    %pip install -q "mmzoo[lite] @ git+https://github.com/mmzoo-dev/mmzoo.git"
    import importlib

    importlib.invalidate_caches()
    import mmzoo
print("mmzoo", mmzoo.__version__)

# %% [markdown]
# ## Settings

# %%
import os

SMALL = True  # False: the 8,000-example config and more epochs (use a GPU runtime)
TEST = os.environ.get("MMZOO_NOTEBOOK_TEST") == "1"  # set by mmzoo's test suite: smaller still

CONFIG = "image_text_small" if SMALL else "image_text"
EPOCHS = 1 if TEST else (6 if SMALL else 20)
DATA_DIR = os.environ.get("TFDS_DATA_DIR")  # None: ~/tensorflow_datasets

# %% [markdown]
# What is registered already:

# %%
!mmzoo parts

# %% [markdown]
# ## 1. An encoder
#
# An encoder is a function `(spec, output="vector", **options) -> keras.Model`. The `spec`
# (a `DataSpec`) gives the input shape and dtype; `output` is the kind of features the fusion
# layer asks for: `"vector"` `[batch, dim]`, `"sequence"` `[batch, steps, dim]` (what
# cross-modal attention needs) or, for images, `"map"` `[batch, h, w, channels]` (what FiLM
# needs). Supporting all three lets the encoder work with every fusion. Keyword options
# (`filters` here) can be set per preset or per build with `encoder_options`.
#
# The decorator adds it to the registry under a name and a modality.

# %%
import keras

import mmzoo


@mmzoo.register_encoder("tiny_cnn", modality="image")
def tiny_cnn(spec, output="vector", filters=16):
    """Two strided 3x3 convolutions: a deliberately small image branch."""
    if output not in ("vector", "sequence", "map"):
        raise ValueError(f"tiny_cnn cannot produce output={output!r}. It supports: vector, sequence, map.")
    inputs = keras.Input(spec.image_shape, dtype=spec.image_dtype, name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)  # uint8 pixels 0..255 come in
    x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(2 * filters, 3, strides=2, padding="same", activation="relu")(x)
    if output == "vector":
        x = keras.layers.GlobalAveragePooling2D()(x)
    elif output == "sequence":
        x = keras.layers.Reshape((-1, 2 * filters))(x)  # image patches as tokens
    return keras.Model(inputs, x, name="image_encoder")


mmzoo.list_parts("encoder", modality="image")

# %% [markdown]
# ## 2. A fusion layer
#
# A fusion layer is a Keras layer that takes a dict of modality features. Subclass
# `mmzoo.fusion.FusionLayer`: it checks the incoming shapes, fixes the modality order (sorted
# names: `self.modalities`) and calls three methods you write:
#
# * `build_fusion(shapes)`: create the weights (`self.projections` makes one `Dense` per
#   modality);
# * `fuse(features, masks, training)`: the fusion math;
# * `fused_shape(shapes)`: the output shape.
#
# Constructor arguments are the layer's config: store each under its own name and return
# them from `get_config`. `@mmzoo.register_fusion` adds the class to the registry **and**
# registers it as Keras-serializable (package `mmzoo`), so saved models load in safe mode.
#
# This one is **multiplicative fusion**: each modality is projected with `tanh` and the
# projections are multiplied element-wise, a low-rank bilinear interaction between the
# modalities (Kim et al., 2017, *Hadamard Product for Low-rank Bilinear Pooling*).

# %%
@mmzoo.register_fusion("product")
class ProductFusion(mmzoo.fusion.FusionLayer):
    """Multiplicative fusion: ``prod_m tanh(W_m x_m)`` (Kim et al., 2017).

    Args:
        units: size of each modality's projection and of the output.
    """

    def __init__(self, units=64, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build_fusion(self, shapes):
        self.project = self.projections(shapes, self.units, activation="tanh")

    def fuse(self, features, masks, training=None):
        fused = None
        for m in self.modalities:
            h = self.project[m](features[m])
            fused = h if fused is None else fused * h
        return fused

    def fused_shape(self, shapes):
        batch = next(iter(shapes.values()))[0]
        return (batch, self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


mmzoo.list_parts("fusion")

# %% [markdown]
# The layer on its own, with a dict of features:

# %%
import numpy as np

layer = ProductFusion(units=8)
out = layer({"image": np.ones((2, 32), "float32"), "text": np.ones((2, 64), "float32")})
layer.modalities, out.shape

# %% [markdown]
# A name can only be registered once: a second, different `tiny_cnn` is refused loudly
# (so a typo cannot silently replace a part). Re-running the registration cells in the same
# kernel therefore fails too; restart the kernel, or pick a new name.

# %%
try:
    mmzoo.register_encoder("tiny_cnn", modality="image")(lambda spec, output="vector": None)
except ValueError as err:
    print(err)

# %% [markdown]
# ## 3. A preset, and a model
#
# A preset is data: an encoder per modality, a fusion, a head, options and a description.
# `mmzoo.build` accepts free choices too (`mmzoo.build(image="tiny_cnn", text="bigru",
# fusion="product", ...)`), but a preset gives the combination a name that `mmzoo list`,
# `mmzoo.train` and the command line know.

# %%
mmzoo.register_preset(
    "tiny_gru_product",
    image="tiny_cnn",
    text="bigru",
    fusion="product",
    fusion_options={"units": 64},
    encoder_options={"image": {"filters": 16}},
    description="A tiny CNN and a BiGRU joined by multiplicative (Hadamard product) fusion.",
    reference="Kim et al., 2017, Hadamard Product for Low-rank Bilinear Pooling.",
)
print(mmzoo.list_models("tiny*"))
mmzoo.describe("tiny_gru_product")

# %%
model = mmzoo.build("tiny_gru_product", num_classes=14, image_shape=(32, 32, 3), seq_len=12, vocab_size=40)
model.summary()

# %% [markdown]
# The same parts work with the other fusions and heads, e.g. the image as a sequence of
# patches for cross-modal attention, or as a feature map for FiLM:

# %%
for fusion in ["attention", "film", "gated"]:
    m = mmzoo.build(image="tiny_cnn", text="bigru", fusion=fusion, num_classes=14, image_shape=(32, 32, 3),
                    seq_len=12, vocab_size=40)
    print(f"{fusion:<10} {m.count_params():>9,} parameters")

# %% [markdown]
# ## 4. Train it
#
# `mmzoo.train` finds the preset by name, exactly as for the built-in ones.

# %%
import mmzoo.datasets

data = mmzoo.datasets.load("shapes_vqa", config=CONFIG, data_dir=DATA_DIR, seq_len=12)
run = mmzoo.train("tiny_gru_product", data, epochs=EPOCHS, out="runs/extend", learning_rate=3e-3,
                  seed=0, overwrite=True, verbose=0)
m = run.metrics
print(f"test accuracy {m['test']['accuracy']:.3f}; ablation: {m['ablation']}")

# %% [markdown]
# ## 5. It serializes
#
# The fusion layer's config round trip, then the whole model through a `.keras` file loaded
# with `mmzoo.load_model` (Keras safe mode: only registered classes are rebuilt, no Python
# code is unpickled). The outputs must be identical.

# %%
config = keras.saving.serialize_keras_object(ProductFusion(units=32))
print(config["module"], config["class_name"], config["registered_name"], config["config"]["units"])
assert keras.saving.deserialize_keras_object(config).units == 32

trained = run.model
trained.save("tiny_gru_product.keras")
reloaded = mmzoo.load_model("tiny_gru_product.keras")

x, _ = next(iter(data.dataset("test", batch_size=8)))
difference = np.abs(np.asarray(trained(x)) - np.asarray(reloaded(x))).max()
print("max |difference| after save + load:", difference)
assert difference == 0.0

# %% [markdown]
# Another Python process needs the same registrations before it loads the file: put your
# parts in a module and import it first. Without them, loading fails with
# `Unknown encoder 'tiny_cnn'` instead of running code stored in the file.
#
# ## 6. It exports
#
# `mmzoo.export` writes a SavedModel for TF Serving (with the preprocessing inside: it takes
# PNG/JPEG bytes and raw strings) and a TFLite flatbuffer for LiteRT, then checks both
# against the Keras model in a fresh process before publishing the version. The custom
# layers are traced into plain TensorFlow ops, so serving them needs no mmzoo code.
# See [04_export_and_serve](04_export_and_serve.ipynb) for what is inside.

# %%
import mmzoo.export

result = mmzoo.export(run.root, out="export/models", name="tiny_gru_product", formats="saved_model,tflite")
print(result.summary())

# %%
import tensorflow as tf

served = tf.saved_model.load(result.path).signatures["serving_default"]
png = tf.io.encode_png(x["image"][0]).numpy()
question = "what colour is the circle?"
print(served(image=tf.constant([png]), text=tf.constant([question])))
print(run.predict(image=png, text=question)["class_name"])

# %% [markdown]
# <a id="gpu-tpu"></a>
# ## On a GPU or TPU runtime
#
# * Nothing in the parts above is device-specific. For mixed precision
#   (`mmzoo.train(..., precision="mixed_float16")` on a GPU, `"mixed_bfloat16"` on a TPU),
#   create sublayers in a fusion layer with `self.sublayer(...)` or `self.projections(...)`:
#   they share the layer's dtype policy, so the math runs in float16 with float32 weights.
# * Set `SMALL = False` for the 8,000-example config; `jit=True` compiles the training step
#   with XLA.
# * A recurrent encoder of your own should accept an `unroll` option (as the built-in
#   `bigru` does): the TFLite export rebuilds recurrent encoders loop-free with
#   `unroll=True`.
# * TPU: see the note at the end of [01_quickstart](01_quickstart.ipynb).
