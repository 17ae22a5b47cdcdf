"""README's quick start, run as written but smaller, so that it cannot rot."""

import re
import shlex
from pathlib import Path

import pytest

from effnet_lib.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
# What makes it small: fewer and smaller images, one epoch, a quarter-width model.
SMALLER = {"--train": "60", "--val": "20", "--image-size": "32", "--epochs": "1",
           "--width-coefficient": "0.25", "--depth-coefficient": "0.25", "--image-sizes": "32,40"}


def quick_start_commands() -> list[list[str]]:
    """The `effnet` commands of README's quick start, continuation lines joined."""
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("effnet ")]


def smaller(argv: list[str]) -> list[str]:
    out = list(argv)
    for i, word in enumerate(out[:-1]):
        if word in SMALLER:
            out[i + 1] = SMALLER[word]
    return out


def test_the_quick_start_is_four_commands_of_the_cli():
    commands = quick_start_commands()
    assert [c[0] for c in commands] == ["data", "train", "validate", "predict"]


@pytest.mark.slow
def test_the_quick_start_runs_as_written_at_a_smaller_size(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in quick_start_commands():
        assert main(smaller(argv)) == 0, argv
    out = capsys.readouterr().out
    assert "validation at 32px: top-1" in out and "run folder: runs/quickstart" in out
    assert re.search(r"^40px: top-1 \d", out, re.M)  # validate, at each size
    assert "star5" in out  # predict names the files it classified
