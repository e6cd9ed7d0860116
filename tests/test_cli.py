"""The ``mmzoo`` command line and the README it keeps honest."""

import json
import os
import re
import subprocess
import sys

import mmzoo
from mmzoo.cli import format_table, main, preset_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mmzoo.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_list_prints_every_preset(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "task", "modalities", "encoders", "fusion", "head", "params", "pretrained"]
    assert [item.split()[0] for item in lines[2:]] == mmzoo.list_models()
    assert "2,189,770" in out


def test_list_filters_and_fails_on_no_match(capsys):
    assert main(["list", "*film*"]) == 0
    assert [item.split()[0] for item in capsys.readouterr().out.strip().splitlines()[2:]] == mmzoo.list_models("*film*")
    assert main(["list", "nothing*"]) == 1
    assert "No preset matches 'nothing*'" in capsys.readouterr().err


def test_describe_prints_json(capsys):
    assert main(["describe", "cnn_gru_film"]) == 0
    assert json.loads(capsys.readouterr().out)["fusion"] == "film"
    assert main(["describe", "cnn_gru_flim"]) == 2
    assert "Did you mean: cnn_gru_film" in capsys.readouterr().err


def test_summary_builds_the_model():
    out = run_cli("summary", "cnn_gru_concat")
    assert out.returncode == 0, out.stderr
    for name in ("image_encoder", "text_encoder", "fusion", "head", "Total params: 2,189,770"):
        assert name in out.stdout


def test_unknown_command_is_an_error():
    out = run_cli("lst")
    assert out.returncode == 2 and "invalid choice: 'lst'" in out.stderr


def test_write_table_into_needs_markers(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("no markers here")
    assert main(["list", "--write", str(path)]) == 2
    path.write_text("intro\n<!-- presets:start -->\nold\n<!-- presets:end -->\nrest\n")
    assert main(["list", "--write", str(path)]) == 0
    text = path.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "old" not in text
    assert "| `cnn_gru_concat` |" in text


# ---------------------------------------------------------------------------- README
def readme_blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", open(README, encoding="utf-8").read(), flags=re.S)


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    bash = readme_blocks("bash")
    assert "mmzoo quickstart" in bash[0] and "pip install" in bash[0]
    test_command = bash[1].strip()
    assert "pytest" in test_command and "pip install" in test_command
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read().splitlines()
    assert test_command in ci


def test_readme_preset_table_is_generated():
    text = open(README, encoding="utf-8").read()
    table = text.split("<!-- presets:start -->\n")[1].split("\n<!-- presets:end -->")[0]
    assert table == format_table(preset_rows(), markdown=True), "run: mmzoo list --write README.md"


def test_readme_python_examples_run(tmp_path):
    """```python blocks run as they are (```py blocks illustrate use on a user's own files)."""
    code = "\n".join(readme_blocks("python"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "model.keras").exists()
