"""The task contract for every registered task and preset, walked from the registry."""

import numpy as np
import pytest

import mmzoo
from mmzoo.registry import PRESETS, TASKS
from tests.helpers import TaskContract, fake_labels, tiny_task

PRESET_NAMES = mmzoo.list_models()


def test_every_registered_task_has_presets():
    mmzoo.tasks.ensure_tasks_registered()
    with_presets = {PRESETS.get(name)["task"] for name in PRESET_NAMES}
    assert set(TASKS.names()) <= with_presets, "a task without presets escapes the contract walk"


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_keeps_the_task_contract(name):
    contract = TaskContract()
    task = tiny_task(name)
    x = contract.run_preprocessor_test(task)
    x = {k: np.asarray(v) for k, v in x.items()}
    contract.run_fit_test(task, x, fake_labels(task.spec))
    contract.run_round_trip_test(task, x)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_exports_pass_validation(name, tmp_path):
    TaskContract().run_export_test(tiny_task(name), tmp_path)
