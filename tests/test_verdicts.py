"""Verdicts: ``holds`` is computed from the measurement, its interval and the criterion."""

import pytest

from effnet_lib.common.stats import mean_ci
from effnet_lib.lessons.verdicts import INCONCLUSIVE, judge, summary, table, verdict


@pytest.mark.parametrize("criterion, measured, interval, expected", [
    (dict(kind="above", threshold=0.0), 0.05, [0.01, 0.09], True),
    (dict(kind="above", threshold=0.0), 0.05, [-0.01, 0.11], INCONCLUSIVE),
    (dict(kind="above", threshold=0.0), -0.05, [-0.09, -0.01], False),
    (dict(kind="below", threshold=1.0), 0.67, None, True),  # an exact count
    (dict(kind="below", threshold=1.0), 1.2, [0.9, 1.5], INCONCLUSIVE),
    (dict(kind="within", low=1.5, high=1.7), 1.645, None, True),
    (dict(kind="within", low=1.5, high=1.7), 1.8, None, False),
])
def test_judge(criterion, measured, interval, expected):
    assert judge(criterion, measured, interval) == expected


def test_a_verdict_takes_an_estimate_and_says_its_criterion_in_words():
    v = verdict("a claim", "yes", "a paper", mean_ci([0.19, 0.2, 0.21]), dict(kind="above", threshold=0.0))
    assert v["measured"] == pytest.approx(0.2)
    assert v["interval"][0] < v["measured"] < v["interval"][1]
    assert v["holds"] is True and "above 0" in v["criterion"]["text"]
    with pytest.raises(ValueError, match="criterion kind 'beside'"):
        verdict("c", "r", "s", 1.0, dict(kind="beside", threshold=0))


def test_the_prose_counts_what_the_table_says():
    verdicts = [verdict("first", "r", "s", 2.0, dict(kind="above", threshold=1.0)),
                verdict("second", "r", "s", 0.5, dict(kind="above", threshold=1.0)),
                verdict("third", "r", "s", 1.0, dict(kind="above", threshold=1.0), interval=[0.5, 1.5])]
    text = summary(verdicts)
    assert text.startswith("Of 3 claims checked in this run, 1 hold, 1 do not and 1 are inconclusive")
    assert list(table(verdicts)["verdict"]) == ["holds", "does not hold", "inconclusive"]


def test_the_readme_glance_is_written_from_lesson_06s_record(tmp_path):
    """README's *Results at a glance* is the block written from figures/06_reproduce_paper.json."""
    import json
    from pathlib import Path

    from effnet_lib.lessons import verdicts as module

    root = Path(__file__).resolve().parents[1]
    record = json.loads((root / "figures" / "06_reproduce_paper.json").read_text())
    block = module.glance(record["verdicts_gathered"], record["budget"])
    assert module.README_BEGIN + block + module.README_END in (root / "README.md").read_text(), (
        "README's glance differs from figures/06_reproduce_paper.json: run "
        "`python -m effnet_lib.lessons.verdicts --write-readme README.md`")
    copy = tmp_path / "README.md"
    copy.write_text(f"top\n{module.README_BEGIN}\nstale\n{module.README_END}\nbottom\n")
    module.write_readme(copy, root / "figures" / "06_reproduce_paper.json")
    text = copy.read_text()
    assert "stale" not in text and text.startswith("top\n") and text.endswith("bottom\n")
    assert f"{len(record['verdicts_gathered'])} claims checked" in text
    # The claims that fail or stay open are named in prose written from the same record.
    for key, title in (("does not hold", "Not holding"), (module.INCONCLUSIVE, "Inconclusive")):
        claims = [v["claim"] for v in record["verdicts_gathered"] if module.label(v["holds"]) == key]
        lines = [line for line in block.splitlines() if line.startswith(title)]
        assert len(lines) == (1 if claims else 0)
        assert all(claim in lines[0] for claim in claims)


def test_a_new_run_starts_a_lessons_record_afresh(tmp_path, monkeypatch):
    # A key an earlier version of a lesson wrote must not outlive it in figures/.
    from effnet_lib.lessons.records import RUN_ID_VARIABLE, load_record, record

    monkeypatch.setenv(RUN_ID_VARIABLE, "run-1")
    record(tmp_path, "04_x", stale=0.1, kept=1)
    record(tmp_path, "04_x", second=2)
    assert load_record(tmp_path, "04_x").keys() >= {"stale", "kept", "second"}
    monkeypatch.setenv(RUN_ID_VARIABLE, "run-2")
    record(tmp_path, "04_x", kept=3)
    data = load_record(tmp_path, "04_x")
    assert "stale" not in data and "second" not in data
    assert data["kept"] == 3 and data["run"]["id"] == "run-2"
