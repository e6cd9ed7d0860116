"""What gets exported: a run directory or a (model, spec) pair, and the CPU copy of the model
that every artifact is traced from."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from typing import Any, Optional, Tuple, Union

import keras
import tensorflow as tf

from mmzoo.registry import ENCODERS, FUSIONS
from mmzoo.spec import DataSpec
from mmzoo.zoo import load_model

RUN_FILES = ("model.keras", "data_spec.json")


@dataclasses.dataclass
class ExportSource:
    """The model to export with its data spec and, for a run directory, its records.

    Attributes:
        model: the trained `MultimodalModel`.
        spec: the `DataSpec` with the vocabulary and class names (from ``data_spec.json``,
            the given spec, or ``model.spec``).
        run_dir: the run directory, when the source was one.
        metrics: ``metrics.json`` of the run (``{}`` otherwise).
        config: ``config.json`` of the run (``{}`` otherwise).
    """

    model: Any
    spec: DataSpec
    run_dir: Optional[str] = None
    metrics: dict = dataclasses.field(default_factory=dict)
    config: dict = dataclasses.field(default_factory=dict)

    @property
    def preset(self) -> Optional[str]:
        return getattr(self.model, "preset", None)


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_source(source: Union[str, os.PathLike, Any, Tuple[Any, Any]], spec=None) -> ExportSource:
    """Resolve what to export.

    Args:
        source: a run directory (``model.keras``, ``data_spec.json``, optional
            ``metrics.json`` / ``config.json``), a path to a ``.keras`` file, a
            `MultimodalModel`, or a ``(model, spec)`` pair.
        spec: a `DataSpec` (or the path of a saved one) overriding the model's own.

    Example:
    >>> src = mmzoo.export.load_source("runs/exp1")  # doctest: +SKIP
    >>> src.spec.class_names
    """
    if isinstance(source, tuple):
        if len(source) != 2:
            raise ValueError(
                f"A (model, spec) pair has two items. Received a tuple of {len(source)}."
            )
        source, spec = source
    if isinstance(spec, (str, os.PathLike)):
        spec = DataSpec.load(os.fspath(spec))
    elif isinstance(spec, dict):
        spec = DataSpec.from_dict(spec)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            missing = [f for f in RUN_FILES if not os.path.exists(os.path.join(path, f))]
            if missing:
                raise ValueError(
                    f"{path} is not a run directory: {missing} missing. A run directory "
                    f"holds {list(RUN_FILES)} (and metrics.json, config.json)."
                )
            model = load_model(os.path.join(path, "model.keras"), compile=False)
            spec = spec or DataSpec.load(os.path.join(path, "data_spec.json"))
            return ExportSource(
                model, spec, os.path.abspath(path),
                _read_json(os.path.join(path, "metrics.json")),
                _read_json(os.path.join(path, "config.json")),
            )
        if os.path.isfile(path) and path.endswith(".keras"):
            model = load_model(path, compile=False)
            return ExportSource(model, spec or model.spec)
        raise ValueError(
            f"Expected a run directory, a .keras file, a model or a (model, spec) pair. "
            f"Received the path {path!r}, which {'does not exist' if not os.path.exists(path) else 'is neither'}."
        )
    model = source
    if not hasattr(model, "get_config") or not hasattr(model, "spec"):
        raise ValueError(
            "Expected an mmzoo model (mmzoo.build / mmzoo.load_model), a run directory or a "
            f"(model, spec) pair. Received: {type(model).__name__}"
        )
    spec = spec or model.spec
    _check_spec_matches(model.spec, spec)
    return ExportSource(model, spec)


def _check_spec_matches(model_spec: DataSpec, spec: DataSpec) -> None:
    if model_spec.input_shapes() != spec.input_shapes() or model_spec.input_dtypes() != spec.input_dtypes():
        raise ValueError(
            "The given spec does not match the model's inputs. Model inputs: "
            f"{model_spec.input_shapes()} {model_spec.input_dtypes()}; spec inputs: "
            f"{spec.input_shapes()} {spec.input_dtypes()}"
        )


# ---------------------------------------------------------------------- the CPU copy
def _all_layers(model) -> list:
    """Every sublayer, fusion internals included (Keras tracks those in ``_layers``)."""
    return model._flatten_layers(include_self=False, recursive=True)


def _keras():
    return keras


def serving_model(model, unroll: bool = False, spec: Optional[DataSpec] = None):
    """Rebuild ``model`` from its config on the CPU and copy the weights.

    The copy never uses cuDNN kernels (``use_cudnn=False`` on every GRU / LSTM), so a model
    trained on a GPU exports a graph that runs on CPU. With ``unroll=True`` recurrent
    encoders (those whose builder takes ``unroll``: ``bigru``, ``bilstm``, ``crnn``) and the
    ``recurrent`` fusion are rebuilt loop-free, as TFLite conversion and full-int8
    calibration need.

    Example:
    >>> lite = mmzoo.export.serving_model(model, unroll=True)  # doctest: +SKIP
    """
    keras = _keras()
    encoder_options, fusion_options = {}, {}
    if unroll:
        # (a retriever has two backbones, its towers; their inputs are disjoint)
        for backbone in getattr(model, "towers", {"": model.backbone}).values():
            for m, part in backbone.encoder_config.items():
                if "unroll" in inspect.signature(ENCODERS.get(part["name"])).parameters:
                    encoder_options[m] = {"unroll": True}
            fusion = backbone.fusion_config
            if fusion and "unroll" in inspect.signature(FUSIONS.get(fusion["name"]).__init__).parameters:
                fusion_options["unroll"] = True
    with tf.device("/CPU:0"):
        copy = model.rebuilt(encoder_options=encoder_options, fusion_options=fusion_options, spec=spec)
    for layer in _all_layers(copy):
        if isinstance(layer, (keras.layers.GRU, keras.layers.LSTM)):
            layer.use_cudnn = False
        if (
            isinstance(layer, keras.layers.Bidirectional)
            and layer.return_sequences
            and getattr(layer.backward_layer, "unroll", False)
        ):
            # Keras 3.15 bug: an unrolled, masked, go_backwards RNN with
            # zero_output_for_mask=True zeroes its *valid* steps (the mask is applied
            # unreversed to the reversed outputs). Without zeroing, right-padded steps still
            # come out as zeros (the reversed pass starts on them with a zero output), which
            # is what the while-loop version computes.
            layer.backward_layer.zero_output_for_mask = False
    return copy
