"""The LN_PN study's plan and tables, from a made-up run table (no training here)."""

import pandas as pd
import pytest

from effnet_lib.lessons import norm_investigation as study


def _runs(values: dict) -> pd.DataFrame:
    rows = []
    for label, tops in values.items():
        model = " ".join(label.split()[:1])
        for seed, top1 in enumerate(tops):
            rows.append(dict(label=label, model=model, norm=model.split("-")[2], group=model.split("-")[1],
                             seed=seed, epochs=10, top1=top1, top5=1.0, top1_average=top1 / 2,
                             top1_by_epoch=[top1 / 2, top1], train_loss=1.0, seconds=1.0, reused=False))
    return pd.DataFrame(rows)


def test_the_study_runs_the_main_question_first_and_every_norm_at_both_group_sizes():
    plan = study.study_variants("quick")
    labels = [variant.label for variant, _ in plan]
    assert labels[:4] == ["B0-G1-GN", "B0-G1-LN_PN", "B0-G16-GN", "B0-G16-LN_PN"]
    base = {f"B0-{g}-{n}" for g in ("G1", "G16") for n in ("BN", "GN", "LN", "LN_PN")}
    assert base <= set(labels)
    seeds = dict((variant.label, s) for variant, s in plan)
    assert all(len(seeds[label]) >= 3 for label in base)  # at least 3 seeds for each norm
    assert len(labels) == len(set(labels))


def test_findings_are_paired_differences_and_say_what_their_interval_says():
    runs = _runs({"B0-G1-GN": [0.60, 0.50, 0.70], "B0-G1-LN_PN": [0.40, 0.31, 0.52],
                  "B0-G1-LN_PN deferred 1/sigma": [0.41, 0.30, 0.53]})
    table = study.findings(runs).set_index("question")
    gap = table.loc["LN_PN against GN, G1"]
    assert gap.difference == pytest.approx(-0.19, abs=1e-4)  # (-0.20 - 0.19 - 0.18) / 3
    assert gap.high < 0 and gap.says == "a lower"
    deferred = table.loc["deferred 1/sigma against the kit's placement (LN_PN, G1)"]
    assert deferred.low < 0 < deferred.high and deferred.says == "no clear difference"
    assert "LN_PN against GN, G16 (the paper's comparison)" not in table.index  # not run


def test_summary_and_curves_carry_every_variant_with_its_interval(tmp_path):
    runs = _runs({"B0-G1-GN": [0.6, 0.5, 0.7], "B0-G1-LN_PN": [0.4, 0.3, 0.5]})
    summary = study.summarise(runs).set_index("label")
    assert summary.loc["B0-G1-GN", "mean"] == pytest.approx(0.6)
    assert summary.loc["B0-G1-GN", "low"] < 0.6 < summary.loc["B0-G1-GN", "high"]
    curves = study.curves(runs)
    assert len(curves) == 4 and set(curves.epoch) == {1, 2}
    written = study.write_tables(runs, tmp_path)
    assert {p.name for p in written} >= {"ln_pn_study_runs.csv", "ln_pn_study.md",
                                         "ln_pn_study_findings.csv"}
    again = study.recorded_study(tmp_path)
    assert again.top1_by_epoch.tolist() == [[0.3, 0.6], [0.25, 0.5], [0.35, 0.7],
                                           [0.2, 0.4], [0.15, 0.3], [0.25, 0.5]]


def test_the_study_page_shows_the_recorded_study_as_computed_from_its_runs():
    """docs/ln-pn-study.md's block is the one written from figures/ln_pn_study_runs.csv, and
    the README links the page."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    runs = study.recorded_study()
    assert runs is not None, "figures/ln_pn_study_runs.csv is missing: run the study"
    page = (root / "docs" / "ln-pn-study.md").read_text()
    assert study.readme_section(runs) in page, (
        "docs/ln-pn-study.md's LN_PN tables differ from figures/ln_pn_study_runs.csv: run "
        "`python -m effnet_lib.lessons.norm_investigation --write-readme docs/ln-pn-study.md`")
    assert "](docs/ln-pn-study.md)" in (root / "README.md").read_text()


def test_write_readme_replaces_only_the_block_and_refuses_a_readme_without_one(tmp_path):
    runs = _runs({"B0-G1-GN": [0.6, 0.5, 0.7], "B0-G1-LN_PN": [0.4, 0.3, 0.5]})
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{study.README_BEGIN}\nold\n{study.README_END}\nafter\n")
    study.write_readme(readme, runs)
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "| B0-G1-GN" in text and "Not run yet" in text
    readme.write_text("no block here")
    with pytest.raises(ValueError, match="has no generated block"):
        study.write_readme(readme, runs)
    assert readme.read_text() == "no block here"


def test_keep_recorded_trains_only_the_missing_seeds_and_keeps_each_rows_code(tmp_path, monkeypatch):
    recorded = _runs({"B0-G1-GN": [0.6, 0.5, 0.7], "B0-G1-LN_PN": [0.4]}).assign(code="old")
    study.write_tables(recorded, tmp_path)
    plan = [(study.Variant("B0-G1-GN", "B0-G1-GN"), (0, 1, 2)),
            (study.Variant("B0-G1-LN_PN", "B0-G1-LN_PN"), (0, 1, 2))]
    trained = []

    def fake_run(variants, data, budget, seeds, say):
        trained.extend((variant.label, seed) for variant in variants for seed in seeds)
        return _runs({variants[0].label: [0.3, 0.3, 0.3]}).query("seed in @seeds")

    monkeypatch.setattr(study, "study_variants", lambda budget: plan)
    monkeypatch.setattr(study, "study_data", lambda budget: "shapes:unused")
    monkeypatch.setattr(study, "run_variants", fake_run)
    study.main("quick", tmp_path, say=lambda *_: None, keep_recorded=True)
    assert trained == [("B0-G1-LN_PN", 1), ("B0-G1-LN_PN", 2)]
    runs = study.recorded_study(tmp_path)
    assert len(runs) == 6 and (runs[runs.label == "B0-G1-GN"].code == "old").all()
    ln_pn = runs[runs.label == "B0-G1-LN_PN"].set_index("seed")
    assert ln_pn.top1.tolist() == [0.4, 0.3, 0.3] and ln_pn.code[0] == "old" != ln_pn.code[1]
    assert "2 versions of the kit's code" in study.readme_section(runs)
