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


#: where each retrieval preset is trained, exported in both formats and validated (on real data,
#: not tiny shapes): the export walk below leaves them to these tests
RETRIEVAL_EXPORT_TESTS = {
    "cnn_gru_clip": "test_retrieval.py::test_cnn_gru_clip_trains_evaluates_exports_and_reindexes",
    "cnn_gru_siglip": "test_retrieval.py::test_other_retrieval_presets_train_and_export",
    "melcnn_gru_clip": "test_retrieval.py::test_other_retrieval_presets_train_and_export",
    "bag_cnn_gru_twotower":
        "test_interactions.py::test_the_two_tower_recommender_beats_popularity_and_serves_its_items",
    "gru_cnn_gru_twotower": "test_interactions.py::test_the_gru_recommender_trains_on_interactions_and_exports",
}
#: the same for the captioning presets (their exports decode whole captions: one dedicated test each)
CAPTION_EXPORT_TESTS = {
    "cnn_transformer_captioner":
        "test_captioning.py::test_cnn_transformer_captioner_trains_evaluates_exports_and_serves",
    "cnn_gru_captioner": "test_captioning.py::test_other_captioning_presets_train_and_export",
    "melcnn_transformer_captioner": "test_captioning.py::test_other_captioning_presets_train_and_export",
}
DEDICATED_EXPORT_TESTS = {**RETRIEVAL_EXPORT_TESTS, **CAPTION_EXPORT_TESTS}


def test_every_retrieval_and_captioning_preset_has_its_export_test():
    import os

    assert sorted(RETRIEVAL_EXPORT_TESTS) == sorted(mmzoo.list_models(task="retrieval"))
    assert sorted(CAPTION_EXPORT_TESTS) == sorted(mmzoo.list_models(task="captioning"))
    here = os.path.dirname(os.path.abspath(__file__))
    for name, where in DEDICATED_EXPORT_TESTS.items():
        module, test = where.split("::")
        source = open(os.path.join(here, module), encoding="utf-8").read()
        assert f"def {test}(" in source and name in source, (name, where)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in PRESET_NAMES if n not in DEDICATED_EXPORT_TESTS])
def test_preset_exports_pass_validation(name, tmp_path):
    TaskContract().run_export_test(tiny_task(name), tmp_path)


def test_a_retriever_exports_through_the_contract_runner(tmp_path):
    """The runner's retriever path (a candidates file of synthetic examples) stays working."""
    result = TaskContract().run_export_test(tiny_task("cnn_gru_siglip"), tmp_path)
    assert result.card["retrieval"]["candidates"] == 6
