"""What a training run survives (issue: kills, SIGTERM, damaged checkpoints, full disks).

The table in docs/training.md lists each case with the test here (or in
test_train.py) that backs it."""

import errno
import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

from effnet_lib import load_case
from effnet_lib.training import checkpoints
from effnet_lib.training.plan import checkpoint_interval, fold_replicas, plan_run
from effnet_lib.training.train import train

from conftest import TINY

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def shapes(shapes_set):
    return shapes_set(image_size=48, train=48, validation=8, classes=4, seed=1)


def tiny_case(**overrides):
    fields = dict(micro_batch_size=4, gradient_accumulation_count=2, replicas=1, pipeline_stages=1,
                  pipeline_splits=(), image_size=32, epochs=2, warmup_epochs=0, precision="32.32",
                  mixup_alpha=0.0, cutmix_lambda=None)
    return load_case("B0-G16-GN-Native_16IPU_2x8").replace(**dict(fields, **overrides))


def test_checkpoints_within_an_epoch_fall_on_logs_and_long_epochs_get_them_by_default():
    assert checkpoint_interval(1668, None) == 556  # the paper's ImageNet epochs: 3 a epoch
    assert checkpoint_interval(600, None) is None and checkpoint_interval(600, 0) is None
    with pytest.raises(ValueError, match="whole number of weight updates"):
        checkpoint_interval(600, -3)
    case = tiny_case()
    layout = fold_replicas(case, 1)
    plan = plan_run(case, layout, 24, 2, "1", checkpoint_every_updates=4)  # 12 updates an epoch
    assert plan.updates_per_log == 4 and plan.events.warnings  # logs made finer, and said so
    at = [log for log in range(plan.total_logs) if plan.checkpoint_at(log)]
    assert [(log + 1) * plan.updates_per_log for log in at] == [4, 8, 12, 16, 20, 24]
    assert plan.log_after(8) == 2
    with pytest.raises(ValueError, match="does not end a log"):
        plan.log_after(6)


def test_the_newest_checkpoint_is_found_by_updates_and_old_ones_are_pruned(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    for name, updates in (("epoch-0001", 12), ("update-00000016", 16), ("update-00000020", 20),
                          ("update-00000004", 4)):
        checkpoints.write(tmp_path / name, model, dict(epoch=updates // 12, updates=updates))
    assert checkpoints.latest(tmp_path).name == "update-00000020"
    checkpoints.prune(tmp_path, keep=2, keep_within_epoch=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0001", "update-00000020"]
    (tmp_path / "update-00000020" / checkpoints.WEIGHTS).write_bytes(b"0" * 1000)
    said = []
    assert checkpoints.latest(tmp_path, say=said.append).name == "epoch-0001"
    assert "update-00000020" in said[0] and "bytes" in said[0]


def test_an_unwritable_run_folder_is_an_error_before_training(shapes, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="cannot write the run folder"):
        train(tiny_case(), data=f"shapes:{shapes}", run_dir=blocker / "run", model_overrides=TINY,
              progress=False, validation=False)


@pytest.mark.slow
def test_a_full_disk_stops_the_run_and_keeps_the_previous_checkpoint(shapes, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_write, calls = checkpoints.write, []

    def write_until_the_disk_is_full(folder, model, meta):
        calls.append(folder)
        if len(calls) > 1:  # the first one fits, then nothing more
            (Path(folder).with_name(Path(folder).name + ".partial")).mkdir(exist_ok=True)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(folder, model, meta)

    monkeypatch.setattr(checkpoints, "write", write_until_the_disk_is_full)
    said = []
    result = train(tiny_case(), data=f"shapes:{shapes}", run_dir=run, model_overrides=TINY,
                   progress=False, validation=False, checkpoint_every_updates=3, say=said.append)
    assert result.stopped and "No space left on device" in result.stopped
    assert "update-00000003" in result.stopped and "run the same command" in result.stopped
    assert checkpoints.latest(run).name == "update-00000003"
    assert checkpoints.damage(run / "update-00000003") == ""


def _newest_updates(run: Path) -> int:
    held = [0]
    for folder in run.glob("*-*"):
        try:
            held.append(json.loads((folder / "meta.json").read_text())["updates"])
        except (OSError, ValueError, KeyError):
            pass
    return max(held)


def _worker(settings) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "resume_worker.py"), json.dumps(settings)],
                            cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop_when(process, run: Path, updates: int, how) -> str:
    """Send ``how`` (a signal) once the run holds a checkpoint of ``updates``, after a random
    extra delay so that the kill lands anywhere (mid-step, mid-write); the process's output."""
    while _newest_updates(run) < updates and process.poll() is None:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.4))
    process.send_signal(how)
    return process.communicate(timeout=300)[0]


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_run_stopped_and_killed_resumes_to_the_weights_of_an_uninterrupted_one(
        shapes, tmp_path, capsys):
    """2 epochs of 6 updates (accumulation 2, Mixup, dropout): stopped once by SIGTERM and
    once by SIGKILL at random points, resumed each time; then the same run uninterrupted.
    The kill points and the difference are printed past pytest's capture (to reproduce).
    BatchNorm, whose moving statistics are the state a resume most easily loses (the
    batch-independent norms keep none; their resumes are checked in test_train.py)."""
    def say(line):
        with capsys.disabled():
            print(f"\n{line}", end="")

    run = tmp_path / "run"
    settings = dict(model="B0-G16-BN", data=f"shapes:{shapes}", run_dir=str(run))
    points = sorted(random.sample(range(1, 11), 2))
    say(f"SIGTERM after update {points[0]}, SIGKILL after {points[1]} (+ random delays)")
    out = _stop_when(_worker(settings), run, points[0], signal.SIGTERM)
    # Graceful: a checkpoint where it stopped, and how to go on. A stop on an epoch's last
    # update leaves that epoch's checkpoint (epoch-0001), any other an update-... one.
    assert "SIGTERM: finishing the current log" in out
    stopped = re.search(r"stopped by SIGTERM after weight update (\d+); checkpoint: \S*/"
                        r"(update-\d{8}|epoch-\d{4})\. Run the same command", out)
    assert stopped, out[-3000:]
    updates, folder = int(stopped.group(1)), stopped.group(2)
    assert folder == (f"epoch-{updates // 6:04d}" if updates % 6 == 0 else f"update-{updates:08d}")
    say(f"resumed from {_newest_updates(run)} updates")
    _stop_when(_worker(settings), run, points[1], signal.SIGKILL)
    say(f"resumed from {_newest_updates(run)} updates")
    final = _worker(dict(settings, reference_dir=str(tmp_path / "uninterrupted")))
    out = final.communicate(timeout=600)[0]
    assert final.returncode == 0, out[-3000:]
    assert "resuming" in out and "done after 12 weight updates" in out
    difference = float(re.search(r"max abs difference: (\S+)", out).group(1))
    say(f"max abs difference against the uninterrupted run: {difference}")
    assert difference <= 1e-6
