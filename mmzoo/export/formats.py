"""Export formats behind one interface: each format is one module (`mmzoo.export.saved_model`,
`mmzoo.export.tflite`) with an `ExportFormat` that writes its artifacts into the staging
folder and says how the fresh validation process checks them. The orchestrator
(`mmzoo.export.api.export`) only stages, validates and publishes.

Example:
>>> mmzoo.export.all_formats.get_format("tflite").card_dir      # doctest: +SKIP
'litert'
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

from mmzoo.registry import EXPORT_FORMATS


@dataclasses.dataclass
class ExportJob:
    """What every format gets: the CPU model, its spec, the folders and the examples."""

    model: Any
    spec: Any
    name: str
    staging: str            # the version being built (renamed into place once validated)
    scratch: str            # a private temporary folder (removed afterwards)
    raw_rows: List[dict]    # raw examples (warmup requests, REST examples)
    calibration: dict       # model inputs for int8 calibration
    check_inputs: Optional[dict] = None  # inputs quantized variants are checked on while made
    quantize: List[str] = dataclasses.field(default_factory=list)
    xla: bool = False
    warmup_requests: int = 4
    log: Callable[[str], None] = print
    thresholds: Dict[str, float] = dataclasses.field(
        default_factory=lambda: {"tolerance": 1e-4, "min_agreement": 0.98, "max_nrmse": 0.05})
    extras: Dict[str, Any] = dataclasses.field(default_factory=dict)  # a task's own (a retriever's index)


@dataclasses.dataclass
class Written:
    """What a format wrote.

    Attributes:
        artifacts: ``{key: path}`` (``saved_model``, ``tflite_float32``, ...).
        card: ``{key: entry}`` of the model card's ``artifacts`` (path in the version, bytes...).
        signatures: the format's signatures, for the card.
        checks: ``{key: entry}`` for the validation plan; each entry names its ``format``.
        sections: other top-level sections of the card (``warmup``).
    """

    artifacts: Dict[str, str] = dataclasses.field(default_factory=dict)
    card: Dict[str, dict] = dataclasses.field(default_factory=dict)
    signatures: Optional[dict] = None
    checks: Dict[str, dict] = dataclasses.field(default_factory=dict)
    sections: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class CheckContext:
    """What the fresh validation process knows: the references computed with Keras."""

    inputs: dict            # model inputs of the validation sample
    reference: dict         # Keras outputs on them
    raw_rows: List[dict]    # raw examples
    raw_reference: dict     # Keras outputs on the raw examples
    plan: List[dict]        # the outputs (`mmzoo.export.outputs.output_plan`)
    warmup_rows: int
    labels: Any = None      # the validation sample's labels (array, or dict by task) when known

    @property
    def examples(self) -> int:
        return len(next(iter(self.inputs.values())))


#: one check: (name, "exact" | "quantized", examples, function returning its figures)
Check = Tuple[str, str, int, Callable[[], dict]]


class ExportFormat:
    """One export format. Subclasses set ``name`` and implement `write` and `checks`."""

    name: str = ""
    #: TF Serving loads the version folder (``<version>``; else ``litert-<version>``)
    servable: bool = False
    #: the folder inside a version where this format keeps its copy of the model card
    card_dir: str = ""

    def write(self, job: ExportJob) -> Written:
        raise NotImplementedError

    def checks(self, key: str, entry: dict, ctx: CheckContext) -> List[Check]:
        """The checks of one artifact, run by `mmzoo.export.validate.run_checks`."""
        raise NotImplementedError


def register_format(fmt: ExportFormat) -> ExportFormat:
    EXPORT_FORMATS.add(fmt.name, fmt)
    return fmt
