"""The zoo's front door: `list_models`, `describe`, `build`, `load_model`, `list_parts`."""

from __future__ import annotations

import ast
import copy
import difflib
import os
from typing import Any, Dict, List, Optional, Tuple, Union

from mmzoo import pretrained
from mmzoo.presets import DEFAULT_CHOICE, DEFAULT_ENCODERS
from mmzoo.registry import ENCODERS, FUSIONS, HEADS, PART_KEYS, PRESETS, TASKS
from mmzoo.spec import MODALITIES, DataSpec, field_names

#: the data settings `build` accepts: every DataSpec field (``spec=`` takes them all at once)
SPEC_OVERRIDES = field_names()
PART_OVERRIDES = PART_KEYS
OTHER_OVERRIDES = ("spec", "seed", "compile", "weights", "name")
ACCEPTED_OVERRIDES = SPEC_OVERRIDES + PART_OVERRIDES + OTHER_OVERRIDES


#: what a task is also called (its target kind): ``mmzoo list --task retrieval``
TASK_ALIASES = {"retrieval": ("retriever", "recommender"), "classification": ("classifier",),
                "captioning": ("captioner",)}


def list_models(pattern: str = "*", task: Optional[str] = None) -> List[str]:
    """Names of the registered presets matching an fnmatch ``pattern`` (and of one ``task``,
    e.g. ``"classifier"`` or ``"retrieval"``), naturally sorted.

    Example:
    >>> mmzoo.list_models("*film*")
    ['cnn_gru_film', 'cnn_gru_melcnn_film']
    """
    if task is None:
        return PRESETS.names(pattern)
    tasks = TASK_ALIASES.get(task, (task,))
    names = PRESETS.names(pattern)
    found = [n for n in names if PRESETS.get(n)["task"] in tasks]
    known = sorted({PRESETS.get(n)["task"] for n in names})
    if not found and not set(tasks) & set(known):
        raise ValueError(f"Unknown task {task!r}. Tasks with presets: {known}.")
    return found


def choose_preset(spec: DataSpec) -> Tuple[Union[str, dict], str]:
    """A model for data with this spec, and why: the first preset of
    `mmzoo.presets.DEFAULT_CHOICE` whose inputs and head fit the spec, else any preset that
    fits, else one composed from `mmzoo.presets.DEFAULT_ENCODERS` and a concat fusion.

    Example:
    >>> mmzoo.zoo.choose_preset(mmzoo.DataSpec(modalities=("image", "text"), num_classes=3))[0]
    'cnn_gru_attention'
    """
    inputs = sorted(spec.modalities)
    fits = [n for n in PRESETS.names()
            if sorted(PRESETS.get(n)["modalities"]) == inputs
            and (PRESETS.get(n)["head"] == spec.task or PRESETS.get(n)["task"] in TASK_ALIASES.get(spec.task, ()))]
    what = f"the data has inputs {inputs} and a {spec.task} target"
    for name in DEFAULT_CHOICE:
        if name in fits:
            return name, f"{what}; {name} is the default for them"
    if fits:
        return fits[0], f"{what}; {fits[0]} is the first preset for them"
    composed = {"preset": None, **{m: DEFAULT_ENCODERS[m] for m in inputs}, "fusion": "concat", "head": spec.task}
    parts = ", ".join(f"{m}={DEFAULT_ENCODERS[m]}" for m in inputs)
    return composed, f"{what}; no preset has exactly these, so it composes {parts}, fusion=concat"


def get_preset(name: str) -> Dict[str, Any]:
    """A copy of a preset's config; unknown names list the closest presets."""
    return copy.deepcopy(PRESETS.get(name))


def describe(name: str) -> Dict[str, Any]:
    """What a preset is, without building it: modalities, parts, params, reference.

    Example:
    >>> mmzoo.describe("cnn_gru_concat")["fusion"]
    'concat'
    """
    p = PRESETS.get(name)
    shipped = pretrained.available(name).get(name, {})
    return {
        "name": p["name"],
        "task": p["task"],
        "modalities": list(p["modalities"]),
        "encoders": {m: p[m] for m in p["modalities"]},
        "fusion": p["fusion"],
        "head": p["head"],
        "params": p["params"],
        "summary": p["description"],
        "reference": p["reference"] or fusion_reference(p["fusion"]),
        "weights": {tag: {"dataset": w["dataset"], "accuracy": w["accuracy"]} for tag, w in shipped.items()},
        "defaults": copy.deepcopy(p["defaults"]),
        "sides": {s: list(p[s]) for s in ("query", "candidate")} if p.get("query") else None,
        "head_options": copy.deepcopy(p["head_options"]),
    }


def fusion_reference(name: str) -> str:
    """The paper a fusion follows: its class's ``reference``. A class registered at run time
    is asked; a built-in one is read from its source in ``mmzoo/fusion/`` (not imported), so
    that describing a preset never imports TensorFlow.

    Example:
    >>> "Arevalo" in mmzoo.zoo.fusion_reference("gated")
    True
    """
    if name in FUSIONS:
        return getattr(FUSIONS.get(name), "reference", "")
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fusion")
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".py"):
            continue
        with open(os.path.join(folder, file), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(_registers_fusion(d, name) for d in node.decorator_list):
                for statement in node.body:
                    if isinstance(statement, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "reference" for t in statement.targets
                    ):
                        return ast.literal_eval(statement.value)
    return ""


def _registers_fusion(decorator: ast.expr, name: str) -> bool:
    return (
        isinstance(decorator, ast.Call)
        and getattr(decorator.func, "id", None) == "register_fusion"
        and bool(decorator.args)
        and isinstance(decorator.args[0], ast.Constant)
        and decorator.args[0].value == name
    )


def list_parts(kind: str = "encoder", pattern: str = "*", modality: Optional[str] = None) -> List[str]:
    """Registered part names: ``kind`` is ``encoder``, ``fusion``, ``head`` or ``task``.

    Example:
    >>> mmzoo.list_parts("encoder", modality="audio")
    ['crnn', 'melcnn']
    """
    _register_parts()
    tables = {"encoder": ENCODERS, "fusion": FUSIONS, "head": HEADS, "task": TASKS}
    if kind not in tables:
        raise ValueError(f"kind must be one of {list(tables)}. Received: kind={kind!r}")
    if modality is not None:
        return tables[kind].names(pattern, modality=modality)
    return tables[kind].names(pattern)


def _check_overrides(overrides: Dict[str, Any]) -> None:
    unknown = sorted(set(overrides) - set(ACCEPTED_OVERRIDES))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, ACCEPTED_OVERRIDES, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"Unknown override {', '.join(hints)}. Accepted keys: {', '.join(sorted(ACCEPTED_OVERRIDES))}."
        )


def _register_parts() -> None:
    """Import the built-in encoders, fusions, heads and tasks (they register themselves).
    Imported here, not at the top: ``import mmzoo`` (which imports this module) stays free of
    TensorFlow, and listing or describing presets never needs it."""
    import mmzoo.backbone
    import mmzoo.tasks

    mmzoo.backbone.ensure_parts_registered()
    mmzoo.tasks.ensure_tasks_registered()


def resolve_config(preset: Optional[str] = None, **overrides: Any) -> Dict[str, Any]:
    """Merge overrides onto a preset (``None`` keeps the default) and validate everything.

    Returns the config the task is made from: ``task``, ``spec``, ``encoders``, ``fusion``,
    ``head``, ``preset``. Raises ValueError before any layer is built.
    """
    _check_overrides(overrides)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    base = get_preset(preset) if preset is not None else {
        "name": None, "task": "classifier", "fusion": "concat", "head": None, "encoder_options": {},
        "fusion_options": {}, "head_options": {}, "defaults": {},
        **{m: None for m in MODALITIES},
    }
    _register_parts()
    task_cls = TASKS.get(base["task"])

    # Encoders: the preset's, with per-modality overrides (False drops a branch).
    encoders = {}
    for m in MODALITIES:
        choice = overrides.get(m, base.get(m))
        if choice:
            if not isinstance(choice, str):
                raise ValueError(f"{m}= takes an encoder name. Received: {m}={choice!r}")
            encoders[m] = {"name": choice, "options": {}}
    if not encoders:
        raise ValueError(
            "No encoder chosen. Name a preset (mmzoo.list_models()) or pass encoders, e.g. "
            "mmzoo.build(image='cnn', text='bigru', fusion='concat')."
        )
    encoder_options = copy.deepcopy(base["encoder_options"])
    for m, opts in (overrides.get("encoder_options") or {}).items():
        encoder_options.setdefault(m, {}).update(opts)
    for m, opts in encoder_options.items():
        if m not in encoders:
            raise ValueError(
                f"encoder_options has options for {m!r} but the model has no {m} branch. "
                f"Branches: {sorted(encoders)}"
            )
        encoders[m]["options"] = dict(opts)

    # Data spec: dataclass defaults <- preset defaults <- an explicit spec <- overrides.
    spec_fields = dict(base["defaults"])
    if "spec" in overrides:
        given = overrides["spec"]
        given = given.to_dict() if isinstance(given, DataSpec) else dict(given)
        spec_fields.update(given)
    spec_fields.update({k: overrides[k] for k in SPEC_OVERRIDES if k in overrides})
    data_modalities = spec_fields.pop("modalities", None)
    if data_modalities is not None:
        missing = sorted(set(encoders) - set(data_modalities))
        if missing:
            raise ValueError(
                f"{'Preset ' + repr(preset) if preset else 'The model'} needs {missing} but the data "
                f"has only {sorted(data_modalities)}. Pick a preset for these modalities: "
                f"mmzoo.list_models() and mmzoo.describe(name)."
            )
    head, spec_fields = task_cls.spec_fields(overrides.get("head", base.get("head")), spec_fields)
    spec = DataSpec(modalities=tuple(encoders), **spec_fields)

    fusion = overrides.get("fusion", base["fusion"])
    fusion_options = {**base["fusion_options"], **(overrides.get("fusion_options") or {})}
    head_options = {**base["head_options"], **(overrides.get("head_options") or {})}
    config = {
        "task": base["task"],
        "spec": spec,
        "encoders": encoders,
        "fusion": {"name": fusion, "options": fusion_options},
        "head": {"name": head, "options": head_options},
        "preset": preset,
    }
    from mmzoo.backbone import resolve_backbone_parts

    resolve_backbone_parts(spec, encoders, config["fusion"])
    task_cls.check_choices(spec, config["head"])
    config.update(task_cls.task_choices(base, overrides, spec))
    return config


def build(preset: Optional[str] = None, **overrides: Any):
    """Build a compiled multimodal Keras model (a task, e.g. `mmzoo.tasks.Classifier`) from a
    preset and/or free choices.

    Args:
        preset: a preset name (`mmzoo.list_models()`), or None to compose freely.
        **overrides: encoders (``image=``, ``text=``, ``audio=``, ``tabular=``; ``False``
            drops a branch), ``fusion=``, ``head=``, data settings (any `DataSpec` field:
            ``num_classes``, ``image_shape``, ``seq_len``, ``vocab_size``, ``sample_rate``,
            ``audio_samples``, ``tabular_dim``, ``class_names``, ``tasks``, and the
            preprocessing the export repeats: ``image_resize``, ``vocabulary``,
            ``tokenizer``; all of them in ``**data.model_kwargs()``; or ``spec=`` a
            `DataSpec`), options dicts (``encoder_options={"text":
            {"unroll": True}}``, ``fusion_options``, ``head_options``), ``seed`` (seeds
            weight initialisation), ``compile`` (default True: the task's optimizer, loss
            and metrics), ``weights`` (a shipped tag such as ``"shapes_vqa"`` or a file),
            ``name``. A ``None`` value keeps the default.

    Example:
    >>> model = mmzoo.build("cnn_gru_concat", num_classes=10)
    >>> sorted(model.input)
    ['image', 'text']
    """
    compile_model = overrides.pop("compile", True)
    seed = overrides.pop("seed", None)
    weights = overrides.pop("weights", None)
    name = overrides.pop("name", None)
    pretrained_info = None
    if weights is not None:
        pretrained_info = pretrained.resolve(preset, str(weights))
        if pretrained_info.get("spec"):
            clash = sorted(k for k in SPEC_OVERRIDES + ("spec",) if k in overrides and k != "modalities")
            if clash:
                raise ValueError(
                    f"weights={weights!r} fixes the data settings it was trained with; drop {clash} "
                    f"(the spec is {pretrained_info['dataset']}'s)."
                )
            overrides["spec"] = DataSpec.from_dict(pretrained_info["spec"])
        # the architecture the weights were trained with, where the preset has changed since
        for key, options in (pretrained_info.get("build") or {}).items():
            overrides[key] = {**options, **(overrides.get(key) or {})}
    config = resolve_config(preset, **overrides)
    import keras  # here, not at the top: `import mmzoo` stays free of TensorFlow

    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    task_cls = TASKS.get(config.pop("task"))
    model = task_cls.from_parts(name=name, **config)
    if pretrained_info is not None:
        model.load_weights(pretrained_info["path"])
    if compile_model:
        model.compile()
    return model


def load_model(path: str, compile: bool = True):
    """Load a ``.keras`` mmzoo model (safe mode) after registering mmzoo's layers.

    Example:
    >>> model = mmzoo.load_model("runs/exp1/model.keras")  # doctest: +SKIP
    """
    import keras  # here, not at the top: `import mmzoo` stays free of TensorFlow

    _register_parts()
    return keras.saving.load_model(path, compile=compile, safe_mode=True)
