from pathlib import Path

import pandas as pd
import pytest

import effnet_lib as el
from effnet_lib.spec import HALF_RESOLUTION, PRESETS

RESULTS = Path(__file__).parents[1] / "data" / "paper_results.csv"


def test_reported_numbers_carry_a_source_and_an_uncertainty():
    table = pd.read_csv(RESULTS)
    assert table.source.notna().all() and (table.source.str.len() > 20).all()
    known = table.dropna(subset=["value"])
    assert known.uncertainty.notna().all()
    assert set(table.metric) == {"top1_accuracy", "multiply_adds", "ipu_pod16_train_throughput"}
    assert len(table[table.metric == "top1_accuracy"]) == 6 * 6


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


def test_reported_numbers_can_be_found_outside_a_clone(tmp_path, monkeypatch):
    from effnet_lib import paper_tables

    copy = tmp_path / "elsewhere.csv"
    copy.write_text(RESULTS.read_text())
    monkeypatch.setattr(paper_tables, "PAPER_RESULTS", tmp_path / "not_installed.csv")
    monkeypatch.setenv("EFFNET_PAPER_RESULTS", str(copy))
    assert len(paper_tables.reported()) == len(pd.read_csv(RESULTS))
    monkeypatch.delenv("EFFNET_PAPER_RESULTS")
    with pytest.raises(FileNotFoundError, match="set EFFNET_PAPER_RESULTS"):
        paper_tables.reported()
