"""The user guide (docs/guide.md) and the CLI reference (docs/cli.md): generated parts are
current, every public command and name is covered, links resolve, and every ```python block
of the guide runs."""

import doctest
import os
import re
import subprocess
import sys

import pytest

import mmzoo.docs
from mmzoo.docs import (
    CLI_DOC,
    GUIDE,
    command_names,
    public_names,
    render_cli,
    render_guide,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUIDE_PATH = os.path.join(ROOT, GUIDE)


def guide_text():
    with open(GUIDE_PATH, encoding="utf-8") as f:
        return f.read()


def test_cli_reference_is_generated_from_the_parsers():
    with open(os.path.join(ROOT, CLI_DOC), encoding="utf-8") as f:
        assert f.read() == render_cli(), "docs/cli.md is stale: run python -m mmzoo.docs"


def test_guide_generated_blocks_are_current():
    text = guide_text()
    assert render_guide(text) == text, (
        "docs/guide.md's generated blocks (presets, parts, spec, api, benchmarks) are stale: "
        "run python -m mmzoo.docs")


def test_guide_starts_with_the_readmes_two_commands():
    def bash_blocks(text):
        return [b.strip() for b in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)]

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = bash_blocks(f.read())
    assert bash_blocks(guide_text())[:2] == readme[:2]


def test_cli_reference_documents_every_command_and_option():
    text = render_cli()
    parser = mmzoo.docs.cli_parser()
    for path, sub, _ in mmzoo.docs.iter_commands(parser):
        assert f"## `mmzoo {' '.join(path)}`" in text
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in text or f", {option}" in text, f"mmzoo {' '.join(path)} {option}"


def test_guide_covers_every_command():
    text = guide_text()
    commands = command_names()
    assert "mmzoo list" in commands and "mmzoo data check" in commands and "mmzoo train" in commands
    for command in commands:
        assert f"`{command}" in text, f"the guide's command table lacks {command}"
    table = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(mmzoo [a-z][a-z-]*(?: [a-z][a-z-]*)?)", table, flags=re.M)
    for command in listed:
        words = command.split()
        found = any(c.split()[: len(words)] == words for c in commands)
        assert found, f"the guide lists {command!r}, which does not exist"


def test_guide_covers_every_public_name():
    text = guide_text()
    for module, names in public_names().items():
        assert names, module
        for name in names:
            assert f"`{name}`" in text, f"{module}.{name} is not in the guide"


def test_every_public_callable_has_a_docstring():
    import importlib
    import inspect

    missing = []
    for module, names in public_names().items():
        mod = importlib.import_module(module)
        for name in names:
            obj = getattr(mod, name)
            if (inspect.isclass(obj) or inspect.isroutine(obj)) and not inspect.getdoc(obj):
                missing.append(f"{module}.{name}")
    assert not missing, f"public names without a docstring: {missing}"


def test_guide_links_resolve():
    text = re.sub(r"^```.*?^```", "", guide_text(), flags=re.S | re.M)  # links outside code blocks
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if target.startswith(("http://", "https://")):
            continue
        assert os.path.exists(os.path.normpath(os.path.join(os.path.dirname(GUIDE_PATH), target))), target
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in anchors, f"broken anchor #{anchor}"


def test_guide_links_every_notebook_and_its_colab_badge():
    text = guide_text()
    notebooks = sorted(f[:-6] for f in os.listdir(os.path.join(ROOT, "notebooks")) if f.endswith(".ipynb"))
    assert len(notebooks) == 7
    for name in notebooks:
        assert f"(../notebooks/{name}.ipynb)" in text
        assert f"colab.research.google.com/github/mmzoo-dev/mmzoo/blob/main/notebooks/{name}.ipynb" in text


def test_docs_module_doctests():
    result = doctest.testmod(mmzoo.docs)
    assert result.attempted >= 1 and result.failed == 0


def test_docs_check_mode_reports_stale_files(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# g\n" + "".join(
        f"<!-- {n}:start -->\n<!-- {n}:end -->\n" for n in mmzoo.docs.GUIDE_BLOCKS), encoding="utf-8")
    assert sorted(os.path.basename(p) for p in mmzoo.docs.update(str(tmp_path), check=True)) == ["cli.md", "guide.md"]
    assert not (tmp_path / "docs" / "cli.md").exists()
    assert mmzoo.docs.main(["--root", str(tmp_path)]) == 0
    assert mmzoo.docs.main(["--root", str(tmp_path), "--check"]) == 0
    assert "## `mmzoo train`" in (tmp_path / "docs" / "cli.md").read_text(encoding="utf-8")


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.slow
def test_guide_python_examples_run(tmp_path):
    blocks = python_blocks(guide_text())
    assert len(blocks) >= 6
    code = "\n\n".join(blocks)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           "TFDS_DATA_DIR": str(tmp_path / "tfds"), "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    for rel in ("guide_data/train.csv", "guide_spec.json", "runs/guide/metrics.json", "guide_custom.keras",
                "export/models/guide/1/saved_model.pb", "export/models/guide/1/litert/model_float32.tflite"):
        assert (tmp_path / rel).exists(), rel
    assert "Did you mean: cnn_gru_film" in out.stdout
    assert "1 row skipped" in out.stdout


def test_benchmark_commands_name_the_script_and_preset(tmp_path):
    from mmzoo.docs import _bench_command

    (tmp_path / "benchmarks").mkdir()
    for name in ("export", "data_pipeline"):
        (tmp_path / "benchmarks" / f"bench_{name}.py").write_text("")
    root = str(tmp_path)
    assert _bench_command(root, "export", {}) == "python benchmarks/bench_export.py"
    assert _bench_command(root, "data_pipeline", {}) == "python benchmarks/bench_data_pipeline.py"
    assert (_bench_command(root, "export_cnn_gru_concat", {"preset": "cnn_gru_concat"})
            == "python benchmarks/bench_export.py --preset cnn_gru_concat")
