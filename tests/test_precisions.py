"""The path a user takes: `effnet train` with a case's own defaults, at every precision a case
can name, with the case's soft labels (label smoothing, Mixup, CutMix) and with sparse ones.

Every paper case names 16.32 (one 16.16); until these tests, every test forced 32.32 and
all 30 cases crashed at their first step under their own precision.
"""

import json

import pytest

from effnet_lib.cli import main
from effnet_lib.common.precision import PRECISIONS

# B1-G16-GN-Native: label smoothing 0.1, Mixup 0.1, CutMix 0.95 (version 1), weight decay 1e-5.
CASE = "B1-G16-GN-Native_16IPU_2x8"
TINY = ["--image-size", "32", "--batch-size", "4", "--gradient-accumulation-count", "1",
        "--replicas", "1", "--max-updates-per-epoch", "2", "--epochs", "1",
        "--width-coefficient", "0.25", "--depth-coefficient", "0.25"]
SPARSE = ["--label-smoothing", "0", "--mixup-alpha", "0", "--cutmix-lambda", "none"]


@pytest.fixture(scope="module")
def shapes(shapes_set):
    return shapes_set(image_size=40, train=32, validation=16, classes=4, seed=2)


def _train(shapes, run, *extra):
    return main(["train", "--config", CASE, "--data", f"shapes:{shapes}", "--checkpoint-dir",
                 str(run), *TINY, *extra])


def _check_run(run, updates=2):
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["updates"] == updates
    assert all(v == v for record in log for v in record.values() if isinstance(v, float))  # no NaN
    validation = json.loads((run / "validation.json").read_text())
    assert 0 <= validation["top1"] <= 1


@pytest.mark.slow
def test_the_case_trains_at_its_own_precision_with_its_own_mixing(shapes, tmp_path, capsys):
    assert _train(shapes, tmp_path / "run") == 0
    _check_run(tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["case"]["precision"] == "16.32" and run["case"]["mixup_alpha"] == 0.1


# One precision per distinct Keras policy and loss scaling: 16.16 runs exactly 16.32's
# (mixed_float16, loss scaled; test_recipe.py's test_16_16_maps_to_mixed_float16_and_says_so),
# so training it again would repeat the same graph. The case's own pair (16.32 with its soft
# labels) is the test above: the same run, with its defaults checked; every other pair here.
DISTINCT = sorted({(p.policy, p.loss_scaled): name  # the later name wins: 16.32 over 16.16
                   for name, p in sorted(PRECISIONS.items())}.values())


def test_every_policy_a_precision_runs_is_trained_and_each_once():
    def runs(name):
        return PRECISIONS[name].policy, PRECISIONS[name].loss_scaled

    assert sorted(map(runs, DISTINCT)) == sorted(set(map(runs, PRECISIONS)))
    assert "16.32" in DISTINCT  # the cases' own


@pytest.mark.slow
@pytest.mark.parametrize("precision, labels", [
    (precision, labels) for precision in DISTINCT for labels in ("soft", "sparse")
    if (precision, labels) != ("16.32", "soft")])
def test_every_precision_trains_with_soft_and_sparse_labels(shapes, tmp_path, precision, labels):
    extra = ["--precision", precision] + (SPARSE if labels == "sparse" else [])
    assert _train(shapes, tmp_path / "run", *extra) == 0
    _check_run(tmp_path / "run")
