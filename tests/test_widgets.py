"""The FLOPs/memory explorer, driven headless: set controls, read what it displays."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from effnet_lib.profiling import profile, stage_balance, training_memory  # noqa: E402
from effnet_lib.models.spec import EfficientNetSpec  # noqa: E402
from effnet_lib.lessons.explorer import Explorer  # noqa: E402


@pytest.fixture
def explorer():
    return Explorer(plots=False)


def _expected(name, image_size, batch_size, precision, expand_ratio=None):
    extra = {"expand_ratio": expand_ratio} if expand_ratio else {}
    return profile(EfficientNetSpec.from_name(name, **extra), image_size=image_size,
                   batch_size=batch_size, precision=precision)


def test_displayed_numbers_equal_the_profilers_after_each_change(explorer):
    panel = explorer.config
    panel.controls["size"].value = "B2"
    panel.controls["norm"].value = "GN"
    panel.controls["image_size"].value = 196
    panel.controls["batch_size"].value = 12
    panel.controls["precision"].value = "32"
    expected = _expected("B2-G16-GN", 196, 12, "32")
    numbers = panel.numbers
    assert numbers["name"] == "B2-G16-GN"
    assert numbers["macs"] == expected.macs
    assert numbers["params"] == expected.params and numbers["norm_params"] == expected.norm_params
    assert numbers["activation_bytes"] == expected.activation_bytes
    assert numbers["training_memory_bytes"] == training_memory(expected)["total"]
    # What a person reads is the same number, formatted.
    assert f"{expected.macs / 12 / 1e9:.3f} G" in panel.summary.value
    assert f"{expected.params / 1e6:.3f} M" in panel.summary.value
    assert f"{training_memory(expected)['total'] / 2**30:.3f} GiB" in panel.summary.value


def test_group_size_follows_the_papers_expansion_pairing_and_can_be_overridden(explorer):
    panel = explorer.config
    panel.controls["group_size"].value = 1
    assert panel.controls["expand_ratio"].value == 6
    assert panel.numbers["macs"] == _expected("B0-G1-LN_PN", 160, 32, "16").macs
    panel.controls["group_size"].value = 32  # 1 -> 32: expansion back to 4
    assert panel.controls["expand_ratio"].value == 4
    panel.controls["expand_ratio"].value = 3
    assert panel.numbers["macs"] == _expected("B0-G32-LN_PN", 160, 32, "16", expand_ratio=3).macs


def test_pipeline_splits_show_the_stage_balance_and_bad_names_an_error(explorer):
    panel = explorer.config
    panel.set(size="B3", image_size=204)
    panel.controls["splits"].value = "block2b, block4b, block5e"
    expected = stage_balance(_expected("B3-G16-LN_PN", 204, 32, "16"), ["block2b", "block4b", "block5e"])
    assert panel.error is None and panel.numbers["stage_macs"] == list(expected.macs)
    assert panel.numbers["imbalance"] == pytest.approx(expected.imbalance.max())
    assert "stem..block2a" in panel.stages.value
    panel.controls["splits"].value = "block2b, block9z"
    assert "block9z" in panel.error and "block7b" in panel.error  # lists the valid names
    assert "valid block names" in panel.stages.value
    assert panel.numbers["macs"] == _expected("B3-G16-LN_PN", 204, 32, "16").macs  # still counted


def test_baseline_column_and_ratios(explorer):
    explorer.baseline.set(size="B0", group_size=1, norm="GN", image_size=224)
    explorer.config.set(size="B0", group_size=16, norm="GN", image_size=224)
    g16, g1 = _expected("B0-G16-GN", 224, 32, "16"), _expected("B0-G1-GN", 224, 32, "16")
    assert explorer.ratios["macs_per_image"] == pytest.approx(g16.macs / g1.macs)
    assert explorer.ratios["params"] == pytest.approx(g16.params / g1.params)
    assert f"{g16.macs / g1.macs:.2f}x" in explorer.comparison.value
    fig = explorer.figure()
    assert len(fig.axes) == 3 and len(fig.axes[2].lines) == 2
