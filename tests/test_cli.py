import pytest

from effnet_lib.cli import main
from effnet_lib.paper.tables import write_all_tables


def test_cases_lists_all_thirty(capsys):
    assert main(["cases", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("case,model,image_size") and len(lines) == 31


def test_model_prints_a_per_block_summary(capsys):
    assert main(["model", "B0-G16-LN_PN", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "block1a" in out and "block7a" in out and "groups" in out
    assert "B0-G16-LN_PN at 64px" in out and "16 blocks, 9 with a residual" in out


def test_model_accepts_a_case(capsys):
    assert main(["model", "B1-G16-GN-Half_16IPU_4x4", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("block,stage,kernel,stride,in,out,expansion,expanded,groups")
    assert rows[-1].split(",")[0] == "predictions" and "block7b" in rows[-3]


@pytest.mark.parametrize("argv, message", [
    (["model", "B0-G16-LN_PM"], "Did you mean B0-G16-LN_PN"),
    (["model", "B0", "--image-size", "-3"], "resolution=-3 is not valid"),
    (["cases", "--config-path", "/nonexistent.yml"], "does not exist"),
])
def test_bad_input_exits_2_with_a_specific_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["cases"], ["model"], ["profile"], ["memory"], ["tables"], ["reproduce"]])
def test_help_is_complete(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(command + ["--help"])
    assert exit_.value.code == 0
    assert "usage: effnet" in capsys.readouterr().out


@pytest.mark.slow
def test_reproduce_writes_the_model_table(tmp_path):
    paths = write_all_tables(tmp_path, sizes=("B0",), progress=False)
    assert {"model_table.csv", "model_table.md", "flops_params.md", "front_page.png"} <= {p.name for p in paths}
    import pandas as pd

    table = pd.read_csv(tmp_path / "model_table.csv")
    bn = table[table.variant == "G1-BN"].iloc[0]
    assert bn.trainable_params_measured == bn.keras_applications_params_measured == 5288548
    assert set(table.model) == {"B0-G1-BN", "B0-G1-GN", "B0-G16-GN", "B0-G16-LN_PN"}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_profile_prints_stage_balance_for_a_case(capsys):
    assert main(["profile", "B0-G16-LN_PN-Native_16IPU_2x8", "--stages", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("pipeline_stage,first_block") and len(rows) == 3
    assert rows[2].split(",")[1] == "block3b"


def test_profile_summary_and_json(capsys):
    assert main(["profile", "B0-G1-GN"]) == 0
    assert "0.386 G multiply-adds per image" in capsys.readouterr().out
    assert main(["profile", "B0-G1-GN", "--by", "layer", "--format", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["layer"] == "stem_conv" and rows[-1]["layer"] == "predictions"


def test_profile_stages_of_a_model_needs_splits(capsys):
    assert main(["profile", "B0", "--stages"]) == 2
    assert "--stages needs --splits" in capsys.readouterr().err


def test_version(capsys):
    import importlib.metadata

    from effnet_lib.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"effnet-kit {importlib.metadata.version('effnet-kit')}"


@pytest.mark.parametrize("argv, recipe, for_a_model", [
    (["train", "B0-G16-LN_PN-Half_16IPU_2x8", "--dry-run"], "B0-G16-LN_PN-Half_16IPU_2x8", False),
    (["train", "--config", "B0-G16-LN_PN-Half_16IPU_2x8", "--dry-run"], "B0-G16-LN_PN-Half_16IPU_2x8",
     False),
    (["train", "B0-G1-BN", "--dry-run"], "B0-G1-GN-Native_16IPU_2x8", True),  # its size and group
    (["train", "B0-G16-LN", "--dry-run"], "B0-G16-GN-Native_16IPU_2x8", True),
    (["train", "--model", "B1-G16-LN_PN", "--dry-run"], "B1-G16-LN_PN-Native_16IPU_2x8", True),
])
def test_train_takes_a_case_or_any_model_with_a_cases_recipe(argv, recipe, for_a_model, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{recipe}: the recipe `effnet train` runs" in out
    assert (f": the recipe of {recipe}" in out) == for_a_model  # says which recipe a model gets


@pytest.mark.parametrize("argv, message", [
    (["train", "--dry-run"], "name a case or a model"),
    (["train", "B9-G1-BN", "--dry-run"], "Unknown model name 'B9-G1-BN'"),
    (["train", "B7-G1-BN", "--dry-run"], "no case trains a B7 model"),
    (["train", "B0-G1-GN-Native_16IPU_2x8", "--config", "B1-G1-GN-Native_16IPU_4x4", "--dry-run"],
     "two cases"),
])
def test_train_says_what_is_wrong_with_its_name(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
