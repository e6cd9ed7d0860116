"""The Colab notebooks: generated from notebooks/src, committed without outputs, and each one
executed top to bottom (headless, nbclient) with its smallest settings.

Executing them needs ``nbclient``, ``nbformat`` and ``ipykernel`` (the ``notebooks`` extra).
Without them the execution tests are skipped locally and fail in CI (``CI`` set), so a CI
that silently stopped running the notebooks is noticed.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
sys.path.insert(0, NOTEBOOKS)
import build_notebooks  # noqa: E402

NAMES = build_notebooks.notebook_names()

# What each notebook must leave in its working directory (checked after it ran).
PRODUCES = {
    "01_quickstart": [
        "runs/quickstart_concat/metrics.json",
        "runs/quickstart_concat/model.keras",
        "runs/quickstart_concat/plots/confusion_matrix.png",
        "my_picture.png",
    ],
    "02_your_own_data": [
        "my_data/manifest.csv",
        "runs/own_data/metrics.json",
        "runs/own_data/report.md",
        "my_data/manifest_with_problems.csv",
    ],
    "03_compare_fusions": [
        "compare_fusions.json",
        "compare_fusions.png",
        "compare_fusions_ablation.png",
    ],
    "04_export_and_serve": [
        "export/models/shapes/1/saved_model.pb",
        "export/models/shapes/1/assets.extra/tf_serving_warmup_requests",
        "export/models/shapes/1/litert/model_int8.tflite",
        "rest_request_row.json",
        "rest_request_columnar.json",
    ],
    "06_matching_and_recommendation": [
        "runs/clip/metrics.json",
        "runs/clip/plots/recall_at_k.png",
        "runs/clip/plots/retrieval_examples.png",
        "export/models/clip/1/saved_model.pb",
        "export/models/clip/1/litert/query_int8.tflite",
        "export/models/clip/1/litert/candidates.npy",
        "export/models/clip/2/saved_model.pb",
        "runs/shop/metrics.json",
    ],
    "07_captioning": [
        "runs/captions/metrics.json",
        "runs/captions/plots/caption_examples.png",
        "export/models/captions/1/saved_model.pb",
        "export/models/captions/1/litert/captioner_float32.tflite",
        "export/models/captions/1/assets.extra/mmzoo.json",
        "export/models/captions/1/litert/caption_loop.py",
    ],
    "05_extend_the_zoo": [
        "runs/extend/metrics.json",
        "tiny_gru_product.keras",
        "export/models/tiny_gru_product/1/saved_model.pb",
        "export/models/tiny_gru_product/1/litert/model_float32.tflite",
    ],
}

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Shell commands (`!mmzoo ...`) do not raise in a notebook: their output is checked instead.
SHELL_FAILURES = re.compile(r"command not found|No module named|Traceback \(most recent call last\)|^error: ", re.M)


def test_every_notebook_has_a_source_and_a_check():
    assert NAMES == sorted(PRODUCES), "each notebook needs an entry in PRODUCES"
    committed = sorted(f[:-6] for f in os.listdir(NOTEBOOKS) if f.endswith(".ipynb"))
    assert committed == NAMES, "every notebooks/src/NN_name.py has a committed NN_name.ipynb and vice versa"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_generated_and_stripped(name):
    path = os.path.join(NOTEBOOKS, name + ".ipynb")
    text = open(path, encoding="utf-8").read()
    assert text == build_notebooks.render(name), "stale notebook: run python notebooks/build_notebooks.py"
    nb = json.loads(text)
    assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None
    first = "".join(code[0]["source"])
    assert "import mmzoo" in first and "except ImportError" in first and "%pip install" in first
    text_all = "".join("".join(c["source"]) for c in nb["cells"])
    assert "colab.research.google.com/github/" in text_all, "a Colab badge"
    assert "SMALL = True" in text_all and "MMZOO_NOTEBOOK_TEST" in text_all
    assert re.search(r"GPU", text_all) and re.search(r"TPU", text_all), "what to change on a GPU / TPU runtime"


def test_build_script_check_mode():
    out = subprocess.run([sys.executable, os.path.join(NOTEBOOKS, "build_notebooks.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------- execution
@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("notebook_tfds"))


def _need_nbclient():
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must execute the notebooks: {e}. Add nbclient, nbformat, ipykernel to the test extra.")
        pytest.skip(f"notebook execution needs nbclient, nbformat and ipykernel: {e}")


def execute_notebook(name, workdir, env):
    """Run one notebook in ``workdir`` with extra environment variables; returns (nb, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(os.path.join(NOTEBOOKS, name + ".ipynb"), as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(workdir)}})
        started = time.perf_counter()
        client.execute()
        return nb, time.perf_counter() - started
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, tmp_path, tfds_dir):
    _need_nbclient()
    env = {
        "MMZOO_NOTEBOOK_TEST": "1",
        "TFDS_DATA_DIR": tfds_dir,
        "PYTHONPATH": os.pathsep.join([ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    }
    nb, seconds = execute_notebook(name, tmp_path, env)
    print(f"{name}: executed in {seconds:.0f} s")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                failed = SHELL_FAILURES.search(output["text"])
                assert not failed, f"{name}: a shell command failed:\n{output['text'][-2000:]}"
    for rel in PRODUCES[name]:
        path = tmp_path / rel
        assert path.exists(), f"{name} did not write {rel}"
        if rel.endswith(".png"):
            assert path.read_bytes()[:8] == PNG_MAGIC, rel
        if rel.endswith("metrics.json"):
            metrics = json.loads(path.read_text())
            headline = metrics["test"].get("headline", {}).get("value", metrics["test"].get("accuracy"))
            assert 0.0 <= headline <= (10.0 if metrics["task"] == "captioner" else 1.0)  # (CIDEr-D: 0-10)
