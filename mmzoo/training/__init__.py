"""Training and evaluation: `mmzoo.train`, run folders, reports, the quickstart."""

from mmzoo.training.quickstart import DEFAULT_PRESET, quickstart
from mmzoo.training.run import RunDirectory, RunError
from mmzoo.training.trainer import Run, TrainingError, open_data, train

__all__ = ["DEFAULT_PRESET", "Run", "RunDirectory", "RunError", "TrainingError", "open_data", "quickstart", "train"]
