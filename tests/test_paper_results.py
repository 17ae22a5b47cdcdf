from pathlib import Path

import pandas as pd
import pytest

import effnet_lib as el
from effnet_lib.models.spec import HALF_RESOLUTION, PRESETS

from effnet_lib.paper.results import REPORTED_RESULTS as RESULTS


def test_reported_numbers_carry_a_source_and_an_uncertainty():
    table = pd.read_csv(RESULTS)
    assert table.source.notna().all() and (table.source.str.len() > 20).all()
    known = table.dropna(subset=["value"])
    assert known.uncertainty.notna().all()
    assert set(table.metric) == {"top1_accuracy", "multiply_adds", "ipu_pod16_train_throughput",
                                 "parameters"}
    assert len(table[table.metric == "top1_accuracy"]) == 6 * 6
    assert not table.source.str.contains("shared/|; $").any()  # sources stated in full, here
    tan_le = table[table.variant == "G1-BN-TanLe2019"]
    assert set(tan_le.metric) == {"multiply_adds", "parameters"} and tan_le.source.str.contains("Tan & Le").all()


def test_training_resolutions_agree_with_the_spec_and_cases():
    table = pd.read_csv(RESULTS)
    for row in table.itertuples():
        expected = HALF_RESOLUTION[row.size] if row.variant.endswith("Half") else PRESETS[row.size][2]
        assert row.train_resolution == expected, row
    for case in el.load_cases():
        rows = table[(table["size"] == case.model[:2]) & (table.variant == case.name.split("_16IPU")[0][3:])]
        assert len(rows) and (rows.train_resolution == case.image_size).all(), case.name


def test_tables_put_computed_beside_reported(tmp_path):
    from effnet_lib.cli import main

    assert main(["tables", "--output-dir", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "flops_params.csv")
    assert len(table) == 6 * 5
    # Digitised from a figure (+-3%): the computed counts must land close, not exactly.
    assert table.computed_over_reported.between(0.95, 1.05).all()
    assert {"multiply_adds_G_computed", "multiply_adds_G_reported"} <= set(table.columns)
    assert (tmp_path / "front_page.png").stat().st_size > 10_000
    skips = pd.read_csv(tmp_path / "skip_connections.csv")
    assert list(skips.model) == list(PRESETS) and (skips.with_skip + skips.without_skip == skips.blocks).all()


def test_reported_numbers_are_package_data(tmp_path):
    from importlib import resources

    from effnet_lib.paper import reported

    packaged = resources.files("effnet_lib.paper") / "reported_results.csv"
    assert len(reported()) == len(pd.read_csv(packaged)) > 0  # installed with the package
    with pytest.raises(FileNotFoundError, match="reported numbers"):
        reported(tmp_path / "missing.csv")


def test_the_half_resolution_flag_agrees_with_the_speed_ups_the_table_prints():
    from effnet_lib.paper.tables import throughput_table

    def measured(half_speedup):
        return pd.DataFrame([
            dict(label="G1-GN-Native", model="B0-G1-GN", image_size=224, images_per_s=10.0,
                 speedup=1.0, speedup_low=1.0, speedup_high=1.0),
            dict(label="G16-GN-Native", model="B0-G16-GN", image_size=224, images_per_s=8.861,
                 speedup=0.8861, speedup_low=0.85, speedup_high=0.92),
            dict(label="G16-GN-Half", model="B0-G16-GN", image_size=128, images_per_s=8.857,
                 speedup=half_speedup, speedup_low=0.85, speedup_high=0.92)])

    tie = throughput_table(measured(0.8857)).set_index("variant")
    assert tie.measured_speedup_vs_G1_GN["G16-GN-Half"] == tie.measured_speedup_vs_G1_GN["G16-GN-Native"]
    assert not tie.against_pixels["G16-GN-Half"]  # equal as printed: not flagged
    slower = throughput_table(measured(0.80)).set_index("variant")
    assert slower.against_pixels["G16-GN-Half"] and not slower.against_pixels["G16-GN-Native"]
