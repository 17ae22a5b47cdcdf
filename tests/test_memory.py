"""The measured-memory check of the training-memory estimate."""

import pytest

from effnet_lib.profiling import memory
from effnet_lib.cli import main


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_real_training_step_is_measured_in_a_fresh_process():
    result = memory.measure_peak("B0-G1-GN", image_size=32, batch_size=2, steps=1)
    assert result["peak"] >= result["baseline"] > 50 * memory.MIB  # a backend was loaded
    # A B0 with its RMSprop state holds at least weights + 2 slots of 4.0M floats.
    assert result["measured"] > 3 * 4_000_000 * 4
    assert 0 < result["seconds_per_step"] < 60


def test_validation_compares_totals_and_growth_per_image(monkeypatch):
    fake = {2: 400 * memory.MIB, 6: 600 * memory.MIB}
    monkeypatch.setattr(memory, "measure_peak", lambda name, size, batch, **_: dict(
        baseline=0, peak=fake[batch], measured=fake[batch], seconds_per_step=0.1))
    report = memory.validate_estimate("B0-G1-GN", 64, (6, 2))
    small, large = report["rows"]
    assert (small["batch_size"], large["batch_size"]) == (2, 6)
    assert small["ratio_measured_to_estimate"] == pytest.approx(400 / small["estimate_mib"])
    assert report["per_image"]["measured_mib"] == pytest.approx(50.0)
    assert report["per_image"]["estimate_mib"] == pytest.approx(small["estimate_activations_mib"] / 2)


@pytest.mark.parametrize("argv, message", [
    (["memory", "--batch-sizes", "8"], "give exactly two"),
    (["memory", "--batch-sizes", "8,x"], "expected integers"),
    (["memory", "--batch-sizes", "8,8"], "two different batch sizes"),
    (["memory", "--image-size", "0"], "image_size=0"),
])
def test_memory_command_rejects_bad_arguments(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
