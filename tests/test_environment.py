"""The lessons' first cell: each problem named in one line with the command that fixes it."""

import pytest

from effnet_lib.lessons import environment


@pytest.mark.parametrize("keras, tensorflow, expected", [
    ("3.5.0", "2.17.0", ""),
    ("2.15.0", "2.15.0", "Keras 2"),
    (None, "2.17.0", "Keras is not installed"),
    ("3.5.0", None, "TensorFlow is not installed"),
    ("3.0.1", "2.15.1", "predates Keras 3 support"),
])
def test_a_keras_and_tensorflow_pair_is_diagnosed_in_one_line(keras, tensorflow, expected):
    problem = environment.keras_problem(keras, tensorflow)
    if not expected:
        assert problem == ""
    else:
        assert expected in problem and "\n" not in problem
        assert "make lab" in problem or "ipykernel install" in problem  # says what to run


def test_this_kernel_passes_and_the_cell_prints_one_line_per_check():
    lines = []
    found = environment.check_environment("smoke", "build/figures", say=lines.append)
    assert [f.name for f in found][:3] == ["python", "effnet_lib", "tensorflow"]
    assert any(line.split()[:2] == ["ok", "device"] for line in lines)
    assert [line.split() for line in lines[-2:]] == [["ok", "budget", "smoke"],
                                                     ["ok", "output_dir", "build/figures"]]


def test_a_lesson_that_runs_no_model_does_not_load_tensorflow_for_the_device(monkeypatch):
    def load_tensorflow():
        raise AssertionError("the device was looked up")

    monkeypatch.setattr(environment, "devices", load_tensorflow)
    lines = []
    environment.check_environment("smoke", say=lines.append, runs_models=False)
    assert any(line.split()[:2] == ["ok", "device"] and "runs no model" in line for line in lines)
    with pytest.raises(AssertionError, match="looked up"):
        environment.check_environment("smoke", say=lines.append)


def test_a_bad_budget_stops_the_lesson_with_the_choices():
    with pytest.raises(RuntimeError, match="budget: choose one of smoke, quick, full"):
        environment.check_environment("quik", say=lambda *_: None)


def test_make_lab_saves_lessons_without_outputs():
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# text"),
                                               nbformat.v4.new_code_cell("1 + 1")])
    notebook.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"},
                                                        execution_count=1)]
    notebook.cells[1].execution_count = 1
    model = {"type": "notebook", "content": notebook}
    environment.strip_outputs_on_save(model=model, path="01.ipynb", contents_manager=None)
    assert notebook.cells[1].outputs == [] and notebook.cells[1].execution_count is None
    assert notebook.cells[0].source == "# text"
    text = {"type": "file", "content": "keep me"}
    environment.strip_outputs_on_save(model=text, path="notes.txt")
    assert text["content"] == "keep me"
    from pathlib import Path
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "pre_save_hook=effnet_lib.lessons.environment.strip_outputs_on_save" in makefile


def test_the_suite_keeps_out_of_the_users_kit_folder():
    """conftest's session fixture: data sets, cached runs and conv_impl choices of the tests go
    to a temporary folder, never to ~/.cache/effnet-kit (where a malformed conv_impl.json or a
    saved "native" choice of the user's would change what the suite measures)."""
    import os
    from pathlib import Path

    from effnet_lib.common.paths import data_dir
    from effnet_lib.models.conv_impl import user_choices_path

    home_default = Path.home() / ".cache" / "effnet-kit"
    assert data_dir() != home_default and home_default not in data_dir().parents
    assert user_choices_path().parent == data_dir()
    assert os.environ["EFFNET_DATA_DIR"] == str(data_dir())  # inherited by subprocesses
