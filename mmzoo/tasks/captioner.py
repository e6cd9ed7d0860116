"""`Captioner`: an image (or audio, or image + audio) encoder whose token sequence a text
decoder attends to, trained with teacher forcing and a masked token loss, generating with
greedy or beam search over a cache (`mmzoo.tasks.decoding`).

The Keras model reads the inputs and ``caption_ids`` (the caption so far: start token, then
the tokens) and returns the next-token logits [batch, caption_len + 1, vocabulary]; `generate`
takes raw inputs (encoded image / WAV bytes, as everywhere) and returns captions. The decoder
is the head: ``transformer_decoder`` or ``gru_decoder`` (`mmzoo.layers.decoders`).

Example:
>>> model = mmzoo.build("cnn_transformer_captioner", **data.model_kwargs())   # doctest: +SKIP
>>> model.generate({"image": [png_bytes]})[0]["caption"]
'two shapes: a red circle at the top left and a green square at the bottom right.'
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import keras
import numpy as np
from keras import ops

from mmzoo.backbone import Backbone, ensure_parts_registered, part_config, plain
from mmzoo.data.preprocess import Preprocessor
from mmzoo.data.text import caption_tokens, join_tokens, split_tokens
from mmzoo.layers.decoders import DECODERS
from mmzoo.layers.sequence import PositionEmbedding
from mmzoo.registry import HEADS, keras_serializable, register_task
from mmzoo.spec import DataSpec
from mmzoo.tasks import caption_metrics
from mmzoo.tasks.base import Task
from mmzoo.tasks.targets import DECODER_INPUT

DECODER_HEADS = tuple(DECODERS)
REPORT_EXAMPLES = 8


@keras_serializable
class CaptionMemory(keras.layers.Layer):
    """The inputs' token sequences -> the memory the decoder attends to: each projected to
    ``dim``, given a learned embedding of its positions (``positions=True``), then joined along
    time (an image's patches, then an audio clip's frames).

    Attention alone does not know where a patch or a frame is: a convolution's features say
    what is there, not where, so without the positions "seven three" and "three seven" are the
    same picture to the decoder.

    Example:
    >>> CaptionMemory(8)({"audio": np.zeros((2, 5, 4)), "image": np.zeros((2, 3, 6))}).shape
    TensorShape([2, 8, 8])
    """

    def __init__(self, dim: int, positions: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.positions = bool(positions)
        self.projections = {}
        self.position_embeddings = {}

    def build(self, input_shape):
        for name in sorted(input_shape):
            shape = tuple(input_shape[name])
            layer = keras.layers.Dense(self.dim, name=f"{name}_projection", dtype=self.dtype_policy)
            layer.build(shape)
            self.projections[name] = layer
            if self.positions:
                if shape[1] is None:
                    raise ValueError(f"CaptionMemory(positions=True) needs a fixed number of {name} steps; "
                                     f"got the shape {shape}.")
                positions = PositionEmbedding(int(shape[1]), name=f"{name}_positions", dtype=self.dtype_policy)
                positions.build((shape[0], shape[1], self.dim))
                self.position_embeddings[name] = positions
        self.built = True

    def call(self, inputs):
        parts = []
        for name in sorted(inputs):
            x = self.projections[name](inputs[name])
            parts.append(self.position_embeddings[name](x) if self.positions else x)
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)

    def compute_output_shape(self, input_shape):
        names = sorted(input_shape)
        steps = [input_shape[n][1] for n in names]
        return (input_shape[names[0]][0], None if None in steps else sum(steps), self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "positions": self.positions}


class _GraphCache:
    """Traced decoding functions by their settings, out of Keras' and tf.Module's tracking (a
    plain object: a dict attribute would be saved with the model; these are rebuilt instead)."""

    def __init__(self):
        self._items: Dict[Any, Any] = {}

    def __contains__(self, key) -> bool:
        return key in self._items

    def __getitem__(self, key):
        return self._items[key]

    def __setitem__(self, key, value) -> None:
        self._items[key] = value


@register_task("captioner")
class Captioner(Task):
    """An encoder per input (token sequences) and a text decoder that attends to them.

    Args:
        backbone: a `mmzoo.backbone.Backbone` giving ``<input>_sequence`` features.
        decoder: a `TransformerCaptionDecoder` or `GRUCaptionDecoder` (the head).
        preprocessor: the `mmzoo.data.Preprocessor` of the inputs.
        preset: the preset name it came from.

    Example:
    >>> model = mmzoo.build("cnn_gru_captioner", **data.model_kwargs())   # doctest: +SKIP
    >>> model.generate({"image": [png_bytes]}, beam_width=4)
    """

    #: the classifier's modality ablation does not apply; `evaluate_data` blanks the inputs itself
    ablation_applies = False
    #: blanking a captioner's only input leaves nothing to describe
    modality_dropout_applies = False
    layer_keys = ("backbone", "decoder", "memory")

    def __init__(self, backbone: Backbone, decoder, preprocessor: Optional[Preprocessor] = None,
                 memory: Optional[CaptionMemory] = None, preset: Optional[str] = None, name: Optional[str] = None,
                 **kwargs):
        modalities = list(backbone.spec.modalities)
        inputs = {m: keras.Input(shape=backbone.input[m].shape[1:], dtype=backbone.input[m].dtype, name=m)
                  for m in modalities}
        inputs[DECODER_INPUT] = keras.Input(shape=(decoder.max_length,), dtype="int32", name=DECODER_INPUT)
        if memory is None:
            memory = CaptionMemory(decoder.dim, name="memory")
        features = backbone({m: inputs[m] for m in modalities})
        logits = decoder(inputs[DECODER_INPUT], self._memory(memory, features, modalities))
        super().__init__(inputs=inputs, outputs=logits, name=name or preset or "mmzoo_captioner",
                         preprocessor=preprocessor, **kwargs)
        self.backbone = backbone
        self.decoder = decoder
        self.memory = memory
        self.preset = preset
        self._graphs = _GraphCache()

    @staticmethod
    def _memory(memory, features: dict, modalities: Sequence[str]):
        return memory({m: features[f"{m}_sequence"] for m in modalities})

    # ------------------------------------------------------------------ building
    @classmethod
    def from_parts(cls, spec: DataSpec, encoders: dict, fusion, head, preset: Optional[str] = None,
                   name: Optional[str] = None) -> "Captioner":
        """Build from the resolved choices (`mmzoo.zoo.resolve_config`); the fusion is unused
        (the decoder attends to every input's tokens)."""
        head = part_config(head)
        backbone = Backbone(spec, encoders, None, feature_kinds={m: "sequence" for m in spec.modalities})
        decoder = HEADS.get(head["name"])(vocab_size=spec.num_classes, max_length=spec.caption_len + 1, name="decoder",
                                          **head["options"])
        return cls(backbone, decoder, preprocessor=Preprocessor(spec), preset=preset, name=name)

    @staticmethod
    def spec_fields(head: Optional[str], spec_fields: dict) -> tuple:
        ensure_parts_registered()
        fields = dict(spec_fields)
        fields["task"] = "captioning"
        if fields.get("class_names"):
            fields["num_classes"] = len(fields["class_names"])
        return head or "transformer_decoder", fields

    @staticmethod
    def check_choices(spec: DataSpec, head: dict) -> None:
        if head["name"] not in DECODER_HEADS:
            raise ValueError(f"A captioner's head is a decoder, one of {list(DECODER_HEADS)}. "
                             f"Received: head={head['name']!r}")
        if "image" not in spec.modalities and "audio" not in spec.modalities:
            raise ValueError("A captioner describes an image or an audio clip; the inputs are "
                             f"{list(spec.modalities)}.")
        HEADS.get(head["name"])(vocab_size=max(spec.num_classes, 4), max_length=spec.caption_len + 1,
                                **head["options"])  # its options, checked before anything is built

    # ------------------------------------------------------------------ training
    @property
    def target(self):
        return self.spec.targets[0]

    def default_loss(self, label_smoothing: float = 0.0):
        return self.target.loss(label_smoothing)

    def default_metrics(self):
        return self.target.keras_metrics()

    # ------------------------------------------------------------------ generation
    @property
    def modalities(self) -> List[str]:
        return list(self.backbone.spec.modalities)

    @property
    def vocabulary(self) -> List[str]:
        return list(self.spec.class_names or [])

    def encoder_model(self) -> keras.Model:
        """A Keras model of the inputs -> the memory the decoder attends to [batch, steps, dim]."""
        if "encoder" not in self._graphs:
            inputs = {m: keras.Input(shape=self.backbone.input[m].shape[1:], dtype=self.backbone.input[m].dtype,
                                     name=m) for m in self.modalities}
            memory = self._memory(self.memory, self.backbone(inputs), self.modalities)
            self._graphs["encoder"] = keras.Model(inputs, memory, name=f"{self.name}_encoder")
        return self._graphs["encoder"]

    def decode_function(self, beam_width: int = 1, length_penalty: float = 0.6, use_cache: bool = True,
                        jit_compile: bool = False):
        """A ``tf.function``: model inputs (dict) -> ``(token ids int32 [batch, caption_len + 1],
        score float32 [batch])``, the whole decoding loop in the graph (what the SavedModel's
        signatures run, without ``jit_compile``: TF Serving runs XLA on CPUs only when asked).

        ``jit_compile=True`` compiles the loop with XLA (one compilation per batch size), as
        keras-hub's ``generate()`` does: at batch 1 each step's many small ops then cost no
        dispatch of their own.
        """
        import tensorflow as tf

        from mmzoo.tasks import decoding

        key = ("decode", int(beam_width), float(length_penalty), bool(use_cache), bool(jit_compile))
        if key in self._graphs:
            return self._graphs[key]
        encoder, decoder, length = self.encoder_model(), self.decoder, self.decoder.max_length

        signature = {m: tf.TensorSpec([None, *self.backbone.input[m].shape[1:]], self.backbone.input[m].dtype, name=m)
                     for m in self.modalities}

        @tf.function(input_signature=[signature], autograph=False, jit_compile=bool(jit_compile) or None)
        def decode(inputs):  # (one trace, shared by every signature)
            memory = encoder(inputs, training=False)
            batch = tf.shape(memory)[0]
            if not use_cache:
                return decoding.greedy_search_uncached(lambda tokens: decoder(tokens, memory, training=False),
                                                       batch, length)
            if beam_width == 1:
                return decoding.greedy_search(decoder.step, decoder.init_cache(memory), batch, length)
            cache = decoder.init_cache(decoding.tile_beams(memory, beam_width))
            return decoding.beam_search(decoder.step, cache, batch, length, beam_width, length_penalty)

        self._graphs[key] = decode
        return decode

    def generate_ids(self, inputs: Dict[str, np.ndarray], beam_width: int = 1, length_penalty: float = 0.6,
                     batch_size: int = 64, use_cache: bool = True, jit_compile: bool = True):
        """Token ids and scores for preprocessed model inputs (numpy), in batches; the decoding
        loop compiled with XLA unless ``jit_compile=False`` (the SavedModel's graph)."""
        decode = self.decode_function(beam_width, length_penalty, use_cache, jit_compile)
        n = len(inputs[self.modalities[0]])
        ids, scores = [], []
        for s in range(0, n, batch_size):
            i, sc = decode({m: inputs[m][s:s + batch_size] for m in self.modalities})
            ids.append(np.asarray(i))
            scores.append(np.asarray(sc))
        if not ids:
            return np.zeros((0, self.decoder.max_length), np.int32), np.zeros((0,), np.float32)
        return np.concatenate(ids), np.concatenate(scores)

    def generate(self, inputs: Dict[str, Any], beam_width: int = 1, length_penalty: float = 0.6,
                 batch_size: int = 64) -> List[dict]:
        """Captions of raw inputs (encoded image bytes, WAV bytes; one or a list): greedy with
        ``beam_width=1``, else beam search. One dict per example: ``caption``, ``tokens``,
        ``token_ids``, ``score`` (summed log probability).

        Example:
        >>> model.generate({"image": [open("cat.png", "rb").read()]}, beam_width=4)  # doctest: +SKIP
        [{'caption': 'a ...', 'tokens': [...], 'token_ids': [...], 'score': -0.4}]
        """
        import tensorflow as tf

        raw = {m: tf.reshape(tf.convert_to_tensor(v), [-1]) for m, v in inputs.items()}
        x = {m: np.asarray(v) for m, v in self.preprocess(raw).items()}
        ids, scores = self.generate_ids(x, beam_width, length_penalty, batch_size)
        return [self.describe_ids(i, s) for i, s in zip(ids, scores)]

    def describe_ids(self, ids, score: float = 0.0) -> dict:
        tokens = caption_tokens(ids, self.vocabulary)
        kept = [int(i) for i in ids[:len(tokens)]]
        return {"caption": join_tokens(tokens), "tokens": tokens, "token_ids": kept, "score": float(score)}

    def predict_raw(self, features: Dict[str, Any], batch_size: int = 64) -> List[dict]:
        return self.generate(features, batch_size=batch_size)

    # ------------------------------------------------------------------ evaluation
    def evaluate_data(self, data, split: str, batch_size: int = 256) -> dict:
        """Greedy captions of every distinct input of ``split`` against all its references:
        BLEU-4, CIDEr-D, exact match (and, where the data knows what a caption must name,
        ``content_accuracy``), and the same with the inputs blanked (the text prior)."""
        caption_metrics.check_installed()
        inputs: Dict[str, list] = {m: [] for m in self.modalities}
        labels = []
        for x, y in data.dataset(split, batch_size=batch_size, shuffle=False):
            for m in self.modalities:
                inputs[m].append(np.asarray(x[m]))
            labels.append(np.asarray(y))
        inputs = {m: np.concatenate(v) for m, v in inputs.items()}
        labels = np.concatenate(labels)
        keys = data.input_keys(split) if hasattr(data, "input_keys") else [str(i) for i in range(len(labels))]
        texts = data.references(split) if hasattr(data, "references") else None
        tokenizer = self.spec.tokenizer
        first: Dict[str, int] = {}
        references: Dict[str, list] = {}
        for row, key in enumerate(keys):
            first.setdefault(key, row)
            ref = split_tokens(texts[row], tokenizer) if texts is not None else caption_tokens(labels[row],
                                                                                            self.vocabulary)
            references.setdefault(key, []).append(ref)
        rows = list(first.values())
        refs = [references[k] for k in first]
        picked = {m: v[rows] for m, v in inputs.items()}
        ids, scores = self.generate_ids(picked, batch_size=batch_size)
        generated = [caption_tokens(i, self.vocabulary) for i in ids]
        out = caption_metrics.caption_scores(generated, refs)
        out.update({"inputs": len(rows), "captions": len(keys), "mean_score": float(np.mean(scores))})
        content = getattr(data, "caption_content_accuracy", None)
        joined_refs = [[join_tokens(r) for r in rs] for rs in refs] if content is not None else None
        if content is not None:
            out["content_accuracy"] = float(content([join_tokens(g) for g in generated], joined_refs))
        blank_ids, _ = self.generate_ids({m: np.zeros_like(v) for m, v in picked.items()}, batch_size=batch_size)
        blank = [caption_tokens(i, self.vocabulary) for i in blank_ids]
        out["blanked"] = caption_metrics.caption_scores(blank, refs)
        if content is not None:
            out["blanked"]["content_accuracy"] = float(content([join_tokens(g) for g in blank], joined_refs))
        out["blanked"]["caption"] = join_tokens(blank[0]) if blank else ""
        out["examples"] = [{"row": int(r), "input_index": j, "generated": join_tokens(g),
                            "references": [join_tokens(x) for x in rs]}
                           for j, (r, g, rs) in enumerate(list(zip(rows, generated, refs))[:REPORT_EXAMPLES])]
        out["headline"] = {"name": "CIDEr-D", "value": out["cider_d"]}
        return {"test": out, "ablation": None, "inputs": picked}

    def headline(self, metrics: dict) -> float:
        return float(metrics["headline"]["value"])

    def report_sections(self, metrics: dict) -> List[str]:
        inputs = "+".join(self.modalities)
        content = "content_accuracy" in metrics
        lines = [f"Greedy captions of the {metrics['inputs']} distinct test inputs, each scored against all its "
                 f"references ({metrics['captions']} captions); tokens as the model's tokenizer splits them.", "",
                 "| | BLEU-4 | CIDEr-D | exact match |" + (" names the right things |" if content else ""),
                 "|---|---|---|---|" + ("---|" if content else "")]
        lines.append(f"| model | {metrics['bleu4']:.1f} | {metrics['cider_d']:.3f} | {metrics['exact_match']:.3f} |"
                     + (f" {metrics['content_accuracy']:.3f} |" if content else ""))
        b = metrics["blanked"]
        lines.append(f"| {inputs} blanked (text prior) | {b['bleu4']:.1f} | {b['cider_d']:.3f} | "
                     f"{b['exact_match']:.3f} |" + (f" {b['content_accuracy']:.3f} |" if content else ""))
        lines += ["", f"With the {inputs} blanked every input gets the same caption: \"{b['caption']}\".", "",
                  "| row | generated | a reference |", "|---|---|---|"]
        lines += [f"| {e['row']} | {e['generated']} | {e['references'][0]} |" for e in metrics["examples"]]
        return lines + [""]

    def summary_lines(self, metrics: dict) -> List[str]:
        b = metrics["blanked"]
        content = (f"  names the right things {metrics['content_accuracy']:.3f}" if "content_accuracy" in metrics
                   else "")
        return [f"BLEU-4 {metrics['bleu4']:.1f}  CIDEr-D {metrics['cider_d']:.3f}  exact match "
                f"{metrics['exact_match']:.3f}{content}  ({metrics['inputs']} inputs; blanked: BLEU-4 "
                f"{b['bleu4']:.1f}, CIDEr-D {b['cider_d']:.3f})"]

    def describe_prediction(self, output) -> dict:
        ids = np.argmax(np.asarray(output)[0], axis=-1)
        return self.describe_ids(ids)

    def rebuilt(self, encoder_options: Optional[dict] = None, fusion_options: Optional[dict] = None,
                spec: Optional[DataSpec] = None) -> "Captioner":
        """A copy rebuilt from the config (export's CPU copy; ``encoder_options`` such as loop-free
        recurrent encoders), the same weights and, with ``spec``, that preprocessor."""

        def edit(config):
            backbone = config["backbone"]["config"]
            for m, options in (encoder_options or {}).items():
                backbone["encoders"][m].setdefault("options", {}).update(options)
            config["backbone"]["config"] = plain(backbone)

        return self.copy_with(edit, spec)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "backbone": plain(keras.layers.serialize(self.backbone)),
            "decoder": plain(keras.layers.serialize(self.decoder)),
            "memory": plain(keras.layers.serialize(self.memory)),
            "preset": self.preset,
        })
        return config
