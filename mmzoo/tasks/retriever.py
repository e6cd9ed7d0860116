"""`Retriever`: two towers (a query side and a candidate side, each one or more inputs through
their encoders, fused when a side has several) projected to one L2-normalised embedding space,
trained with in-batch negatives (the CLIP loss, or SigLIP's sigmoid loss).

The model returns ``{"query": [batch, dim], "candidate": [batch, dim]}`` for the pairs it is
given; rows that share a group (several captions of one image) are never each other's
negatives. Evaluation ranks the whole test pool in both directions (`mmzoo.tasks.ranking`).

Example:
>>> model = mmzoo.build("cnn_gru_clip", vocabulary=vocab)        # doctest: +SKIP
>>> model.sides
{'query': ['text'], 'candidate': ['image']}
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
from keras import ops

from mmzoo.backbone import FUSED, Backbone, ensure_parts_registered, part_config, plain
from mmzoo.data.preprocess import Preprocessor
from mmzoo.registry import register_head, register_task
from mmzoo.spec import DataSpec
from mmzoo.tasks import ranking
from mmzoo.tasks.base import Task
from mmzoo.tasks.losses import RETRIEVAL_LOSSES, same_group

SIDES = ("query", "candidate")
#: the largest logit scale (CLIP clips 1 / temperature at 100)
MAX_LOGIT_SCALE = 100.0
#: recall@K of the report's curve
CURVE_KS = (1, 2, 3, 5, 10, 20, 50, 100)
REPORT_EXAMPLES = 6


@register_head("retrieval")
class RetrievalHead(keras.layers.Layer):
    """Both sides' projections to a shared space (L2-normalised) and the learned logit
    scale (and bias, for the sigmoid loss) of their similarities.

    Args:
        embedding_dim: size of the shared embedding.
        loss: ``"clip"`` (symmetric InfoNCE, learned temperature from 1/0.07, clipped at 100)
            or ``"siglip"`` (sigmoid loss, scale from 10 and bias from -10).
        hidden_units: Dense(relu) layers before each side's projection.
        dropout: dropout after each hidden layer.

    Example:
    >>> head = RetrievalHead(embedding_dim=8)
    >>> out = head([keras.ops.ones((2, 5)), keras.ops.ones((2, 3))])
    >>> tuple(out["query"].shape), tuple(out["candidate"].shape)
    ((2, 8), (2, 8))
    """

    kind = "retrieval"

    def __init__(self, embedding_dim: int = 128, loss: str = "clip", hidden_units: Sequence[int] = (),
                 dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if loss not in RETRIEVAL_LOSSES:
            raise ValueError(f"loss must be one of {sorted(RETRIEVAL_LOSSES)}. Received: loss={loss!r}")
        if not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"embedding_dim must be a positive integer. Received: {embedding_dim!r}")
        self.embedding_dim = int(embedding_dim)
        self.loss = loss
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        projections = {}
        for side in SIDES:
            layers = []
            for i, units in enumerate(self.hidden_units, start=1):
                layers.append(keras.layers.Dense(units, activation="relu", name=f"{side}_dense_{i}",
                                                 dtype=self.dtype_policy))
                if self.dropout:
                    layers.append(keras.layers.Dropout(self.dropout, name=f"{side}_dropout_{i}",
                                                       dtype=self.dtype_policy))
            layers.append(keras.layers.Dense(self.embedding_dim, name=f"{side}_projection", dtype=self.dtype_policy))
            projections[side] = layers
        self.query_layers, self.candidate_layers = projections["query"], projections["candidate"]

    @property
    def projections(self) -> Dict[str, list]:
        return {"query": self.query_layers, "candidate": self.candidate_layers}

    def build(self, input_shape):
        for side, shape in zip(SIDES, input_shape):
            shape = tuple(shape)
            for layer in self.projections[side]:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        start = math.log(1 / 0.07) if self.loss == "clip" else math.log(10.0)
        self.log_scale = self.add_weight(name="log_scale", shape=(),
                                         initializer=keras.initializers.Constant(start))
        self.bias = self.add_weight(name="bias", shape=(), trainable=self.loss == "siglip",
                                    initializer=keras.initializers.Constant(-10.0 if self.loss == "siglip" else 0.0))

    def project(self, side: str, x, training=None):
        """One side's features -> its normalised embedding (what a tower exports)."""
        for layer in self.projections[side]:
            x = layer(x, training=training) if isinstance(layer, keras.layers.Dropout) else layer(x)
        x = ops.cast(x, "float32")
        return x / ops.sqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), 1e-12))

    def call(self, inputs, training=None):
        query, candidate = inputs
        return {"query": self.project("query", query, training), "candidate": self.project("candidate", candidate,
                                                                                            training)}

    def compute_output_shape(self, input_shape):
        return {side: (shape[0], self.embedding_dim) for side, shape in zip(SIDES, input_shape)}

    def logit_scale(self):
        return ops.exp(ops.minimum(self.log_scale, math.log(MAX_LOGIT_SCALE)))

    def logits(self, query, candidate):
        """[queries, candidates] training logits: scale * cosine (+ bias)."""
        return self.logit_scale() * ops.matmul(query, ops.transpose(candidate)) + self.bias

    def loss_value(self, embeddings: dict, groups):
        return RETRIEVAL_LOSSES[self.loss](self.logits(embeddings["query"], embeddings["candidate"]), groups)

    def get_config(self):
        return {**super().get_config(), "embedding_dim": self.embedding_dim, "loss": self.loss,
                "hidden_units": list(self.hidden_units), "dropout": self.dropout}


def check_sides(sides: dict, modalities: Sequence[str]) -> Dict[str, List[str]]:
    """``{"query": [...], "candidate": [...]}``: both sides named, disjoint, covering the inputs."""
    if not sides or any(not sides.get(s) for s in SIDES):
        raise ValueError("A retriever needs query=[inputs] and candidate=[inputs], e.g. query=['text'], "
                         f"candidate=['image']. Received: {sides}")
    out = {}
    for side in SIDES:
        value = sides[side]
        out[side] = sorted([value] if isinstance(value, str) else [str(v) for v in value])
    shared = sorted(set(out["query"]) & set(out["candidate"]))
    if shared:
        raise ValueError(f"query and candidate share inputs {shared}; each input belongs to one side.")
    missing = sorted(set(modalities) - set(out["query"]) - set(out["candidate"]))
    extra = sorted((set(out["query"]) | set(out["candidate"])) - set(modalities))
    if missing or extra:
        raise ValueError(f"The sides {out} must cover the model's inputs {sorted(modalities)} exactly "
                         f"(no side for {missing}, no encoder for {extra}).")
    return out


def side_spec(spec: DataSpec, side: Sequence[str]) -> DataSpec:
    """The spec of one side's inputs."""
    return spec.replace(modalities=tuple(side), optional=tuple(m for m in spec.optional if m in side))


def side_label(side: Sequence[str]) -> str:
    """``["image", "text"]`` -> ``"image+text"``."""
    return "+".join(side)


@register_task("retriever")
class Retriever(Task):
    """A dual encoder: ``query`` and ``candidate`` towers and a `RetrievalHead`.

    Args:
        query_tower, candidate_tower: `mmzoo.backbone.Backbone` of each side (with a fusion
            when a side has several inputs).
        head: the `RetrievalHead`.
        sides: ``{"query": [inputs], "candidate": [inputs]}``.
        preprocessor: the `mmzoo.data.Preprocessor` of all inputs (vocabulary included).
        preset: the preset name it came from.

    Example:
    >>> model = mmzoo.build("cnn_gru_clip", vocabulary=vocab, compile=False)  # doctest: +SKIP
    >>> out = model(inputs)               # {"query": [n, 128], "candidate": [n, 128]}
    """

    #: the modality ablation of classifiers does not apply: each side needs its inputs
    ablation_applies = False
    #: modality dropout would blank a side's only input and make the pair meaningless
    modality_dropout_applies = False
    layer_keys = ("query_tower", "candidate_tower", "head")

    def __init__(self, query_tower: Backbone, candidate_tower: Backbone, head: RetrievalHead,
                 sides: dict, preprocessor: Optional[Preprocessor] = None, preset: Optional[str] = None,
                 name: Optional[str] = None, **kwargs):
        sides = {s: list(sides[s]) for s in SIDES}
        towers = {"query": query_tower, "candidate": candidate_tower}
        inputs = {}
        for side, tower in towers.items():
            for m in sides[side]:
                inputs[m] = keras.Input(shape=tower.input[m].shape[1:], dtype=tower.input[m].dtype, name=m)
        vectors = [self._vector(towers[s], towers[s]({m: inputs[m] for m in sides[s]})) for s in SIDES]
        outputs = head(vectors)
        super().__init__(inputs=inputs, outputs=outputs, name=name or preset or "mmzoo_retriever",
                         preprocessor=preprocessor, **kwargs)
        self.query_tower, self.candidate_tower = query_tower, candidate_tower
        self.head = head
        self.sides = sides
        self.preset = preset
        self.batch_recall = keras.metrics.Mean(name="batch_recall@1")

    @staticmethod
    def _vector(tower: Backbone, features: dict):
        if FUSED in features:
            return features[FUSED]
        (modality,) = tower.spec.modalities
        return features[f"{modality}_vector"]

    @property
    def backbone(self):
        """The query tower (a task's ``backbone``; `towers` has both)."""
        return self.query_tower

    @property
    def towers(self) -> Dict[str, Backbone]:
        return {"query": self.query_tower, "candidate": self.candidate_tower}

    # ------------------------------------------------------------------ building
    @classmethod
    def from_parts(cls, spec: DataSpec, encoders: dict, fusion, head, sides: dict, preset: Optional[str] = None,
                   name: Optional[str] = None) -> "Retriever":
        """Build from the resolved choices (`mmzoo.zoo.resolve_config`)."""
        sides = check_sides(sides, spec.modalities)
        fusion, head = part_config(fusion), part_config(head)
        towers = {}
        for side in SIDES:
            s = side_spec(spec, sides[side])
            side_fusion = fusion if len(sides[side]) > 1 else None
            towers[side] = Backbone(s, {m: encoders[m] for m in sides[side]}, side_fusion, name=f"{side}_tower")
        head_layer = RetrievalHead(name="head", **head["options"])
        return cls(towers["query"], towers["candidate"], head_layer, sides, preprocessor=Preprocessor(spec),
                   preset=preset, name=name)

    @staticmethod
    def spec_fields(head: Optional[str], spec_fields: dict) -> tuple:
        ensure_parts_registered()
        fields = dict(spec_fields)
        fields["task"] = "retrieval"
        fields.setdefault("num_classes", 1)
        return head or "retrieval", fields

    @staticmethod
    def check_choices(spec: DataSpec, head: dict) -> None:
        if head["name"] != "retrieval":
            raise ValueError(f"A retriever's head is 'retrieval'. Received: head={head['name']!r}")
        RetrievalHead(**head["options"])  # its options, checked before anything is built

    @staticmethod
    def task_choices(base: dict, overrides: dict, spec: DataSpec) -> dict:
        """The sides of the towers: the preset's, or ``query=`` / ``candidate=`` overrides."""
        sides = {s: overrides.get(s, base.get(s)) for s in SIDES}
        return {"sides": check_sides(sides, spec.modalities)}

    # ------------------------------------------------------------------ training
    def default_loss(self, label_smoothing: float = 0.0):
        """None: the loss is the head's in-batch loss (`compute_loss`); no smoothing applies."""
        return None

    def default_metrics(self):
        return None  # (the in-batch recall is tracked in `compute_metrics`)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.head.loss_value(y_pred, y)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """In-batch recall@1 (query -> candidate), a training monitor; the real evaluation
        ranks the whole test pool (`evaluate_predictions`)."""
        scores = ops.matmul(y_pred["query"], ops.transpose(y_pred["candidate"]))
        best = ops.argmax(scores, axis=1)
        hits = ops.take_along_axis(ops.cast(same_group(y), "float32"), ops.expand_dims(best, 1), axis=1)
        self.batch_recall.update_state(hits[:, 0])
        return self.get_metrics_result()

    # ------------------------------------------------------------------ evaluation
    def directions(self) -> List[tuple]:
        """``[(name, from side, to side)]``: ``text_to_image`` then ``image_to_text``."""
        q, c = side_label(self.sides["query"]), side_label(self.sides["candidate"])
        return [(f"{q}_to_{c}", "query", "candidate"), (f"{c}_to_{q}", "candidate", "query")]

    def evaluate_predictions(self, y_true, predictions) -> dict:
        """Recall@1/5/10, median rank, MRR and chance recall in both directions over the pool."""
        groups = np.asarray(y_true).reshape(-1)
        out = {}
        for name, a, b in self.directions():
            metrics = ranking.rank_metrics(predictions[a], groups, predictions[b], groups)
            metrics["curve"] = ranking.recall_curve(predictions[a], groups, predictions[b], groups, CURVE_KS)
            out[name] = metrics
        first = self.directions()[0][0]
        out["examples"] = self._examples(predictions, groups)
        out["headline"] = {"name": f"{first} recall@5", "value": out[first]["recall@5"]}
        return out

    def _examples(self, predictions, groups) -> list:
        """A few queries (first rows of distinct groups) with their top-5 candidate rows."""
        ci = ranking.unique_rows(predictions["candidate"], groups)
        seen, rows = set(), []
        for i, g in enumerate(groups):
            if int(g) not in seen:
                seen.add(int(g))
                rows.append(i)
            if len(rows) == REPORT_EXAMPLES:
                break
        order, scores = ranking.top_k(predictions["query"][rows], predictions["candidate"][ci], 5)
        return [{"query_row": int(r), "top_rows": [int(ci[j]) for j in o], "scores": [float(s) for s in sc],
                 "hits": [bool(groups[ci[j]] == groups[r]) for j in o]} for r, o, sc in zip(rows, order, scores)]

    def headline(self, metrics: dict) -> float:
        return float(metrics["headline"]["value"])

    def report_sections(self, metrics: dict) -> List[str]:
        lines = ["Ranked over the whole test pool (each distinct query and candidate once); chance is a random",
                 "ranking's expected recall.", "",
                 "| direction | R@1 | R@5 | R@10 | median rank | MRR | chance R@5 | queries | pool |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for name, _, _ in self.directions():
            m = metrics[name]
            lines.append(f"| {name} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | "
                         f"{m['median_rank']:g} | {m['mrr']:.3f} | {m['chance_recall@5']:.3f} | {m['queries']} | "
                         f"{m['pool']} |")
        return lines + [""]

    def summary_lines(self, metrics: dict) -> List[str]:
        return [f"{name}: R@1 {metrics[name]['recall@1']:.3f}  R@5 {metrics[name]['recall@5']:.3f}  "
                f"R@10 {metrics[name]['recall@10']:.3f}  median rank {metrics[name]['median_rank']:g}  "
                f"(pool {metrics[name]['pool']}, chance R@5 {metrics[name]['chance_recall@5']:.3f})"
                for name, _, _ in self.directions()]

    # ------------------------------------------------------------------ one side at a time
    def tower_model(self, side: str) -> keras.Model:
        """A Keras model of one side: its inputs -> its normalised embedding."""
        tower = self.towers[side]
        inputs = {m: keras.Input(shape=tower.input[m].shape[1:], dtype=tower.input[m].dtype, name=m)
                  for m in self.sides[side]}
        embedding = self.head.project(side, self._vector(tower, tower(inputs)))
        return keras.Model(inputs, embedding, name=f"{self.name}_{side}")

    def embed(self, side: str, inputs: dict, batch_size: int = 256) -> np.ndarray:
        """Embeddings of one side's model inputs (numpy), in batches."""
        names = self.sides[side]
        n = len(inputs[names[0]])
        if not hasattr(self, "_tower_models"):
            self._tower_models = {}
        model = self._tower_models.setdefault(side, self.tower_model(side))
        parts = [np.asarray(model({m: inputs[m][s:s + batch_size] for m in names}, training=False))
                 for s in range(0, n, batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.head.embedding_dim), np.float32)

    def describe_prediction(self, output) -> dict:
        return {side: np.asarray(output[side])[0].tolist() for side in SIDES}

    def rebuilt(self, encoder_options: Optional[dict] = None, fusion_options: Optional[dict] = None,
                spec: Optional[DataSpec] = None) -> "Retriever":
        """A copy rebuilt from the config with some encoder / fusion options changed (export's
        loop-free recurrent layers), the same weights and, with ``spec``, that preprocessor."""

        def edit(config):
            for side in SIDES:
                tower = config[f"{side}_tower"]["config"]
                for m, options in (encoder_options or {}).items():
                    if m in tower["encoders"]:
                        tower["encoders"][m].setdefault("options", {}).update(options)
                if fusion_options and tower.get("fusion"):
                    tower["fusion"].setdefault("options", {}).update(fusion_options)
                config[f"{side}_tower"]["config"] = plain(tower)

        return self.copy_with(edit, spec)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "query_tower": plain(keras.layers.serialize(self.query_tower)),
            "candidate_tower": plain(keras.layers.serialize(self.candidate_tower)),
            "head": plain(keras.layers.serialize(self.head)),
            "sides": plain(self.sides),
            "preset": self.preset,
        })
        return config


@register_task("recommender")
class Recommender(Retriever):
    """A two-tower recommender: a user tower (id, history of items, features) and an item tower
    (id and attributes: image, text, numbers), trained on interactions with in-batch negatives
    (rows of one item are never each other's). Evaluated by ranking every item of the catalogue
    for each held-out interaction, the user's earlier items left out: recall@10/50 and NDCG@10,
    against a popularity baseline computed in the same run (`evaluate_data`).

    Example:
    >>> model = mmzoo.build("bag_cnn_gru_twotower", **data.model_kwargs())   # doctest: +SKIP
    """

    def evaluate_data(self, data, split: str, batch_size: int = 256) -> dict:
        """The recommendation metrics of ``split`` (``data``: a `mmzoo.data.recommender.RecommenderData`;
        other data is ranked as pairs, as a retriever's)."""
        if not hasattr(data, "catalogue_inputs"):
            return super().evaluate_data(data, split, batch_size)
        return {"test": self.recommendation_metrics(data, split), "ablation": None}

    def recommendation_metrics(self, data, split: str) -> dict:
        """Recall@10/50 and NDCG@10 over the whole catalogue, beside popularity."""
        from mmzoo.data.interactions import ranking_metrics

        ids, _, item_inputs = data.catalogue_inputs()
        items = self.embed("candidate", item_inputs)
        names = self.sides["query"]
        chunks: Dict[str, list] = {m: [] for m in names}
        for x, _ in data.dataset(split, batch_size=256, shuffle=False):
            for m in names:
                chunks[m].append(np.asarray(x[m]))
        users = self.embed("query", {m: np.concatenate(v) for m, v in chunks.items()})
        columns = data._columns[split]
        seen = data.seen_items(split)
        position = {item: i for i, item in enumerate(ids)}
        rankings, relevant = [], []
        for s in range(0, len(users), 1024):
            scores = users[s:s + 1024] @ items.T
            for row, user in zip(scores, columns["user"][s:s + 1024]):
                row[[position[i] for i in seen.get(user, ()) if i in position]] = -np.inf
                rankings.append([ids[j] for j in np.argsort(-row, kind="stable")[:50]])
        relevant = [{item} for item in columns["item"]]
        model = ranking_metrics(rankings, relevant)
        popular = data.interactions.popularity_baseline(split)
        return {"recommender": model, "popularity": popular, "items": len(ids),
                "lift_recall@10": model["recall@10"] / max(popular["recall@10"], 1e-9),
                "headline": {"name": "recall@10", "value": model["recall@10"]}}

    def report_sections(self, metrics: dict) -> List[str]:
        lines = [f"Every held-out interaction ranks all {metrics['items']} items (the user's earlier ones left out); "
                 "popularity ranks them by training interactions.", "",
                 "| | recall@10 | recall@50 | NDCG@10 | interactions |", "|---|---|---|---|---|"]
        for name in ("recommender", "popularity"):
            m = metrics[name]
            lines.append(f"| {name} | {m['recall@10']:.3f} | {m['recall@50']:.3f} | {m['ndcg@10']:.3f} | "
                         f"{m['queries']} |")
        return lines + [""]

    def summary_lines(self, metrics: dict) -> List[str]:
        m, p = metrics["recommender"], metrics["popularity"]
        return [f"recall@10 {m['recall@10']:.3f}  recall@50 {m['recall@50']:.3f}  NDCG@10 {m['ndcg@10']:.3f}  "
                f"(popularity: {p['recall@10']:.3f} / {p['recall@50']:.3f} / {p['ndcg@10']:.3f}; "
                f"{metrics['lift_recall@10']:.1f}x at 10; {metrics['items']} items)"]
