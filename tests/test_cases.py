import pytest

from effnet_lib import case_names, load_case, load_cases
from effnet_lib.models.spec import HALF_RESOLUTION, PRESETS


def test_there_are_thirty_cases_named_as_in_the_paper():
    names = case_names()
    assert len(names) == 30 and len(set(names)) == 30
    for size in range(6):
        for variant in ("G1-GN-Native", "G16-GN-Native", "G16-GN-Half", "G16-LN_PN-Native",
                        "G16-LN_PN-Half"):
            assert sum(n.startswith(f"B{size}-{variant}_16IPU_") for n in names) == 1


@pytest.mark.parametrize("case", load_cases(), ids=lambda c: c.name)
def test_every_case_loads_with_consistent_facts(case):
    assert case.global_batch_size == 768
    assert case.ipus == 16
    stages, replicas = case.name.rsplit("_", 1)[1].split("x")  # suffix is stages x replicas
    assert (case.pipeline_stages, case.replicas) == (int(stages), int(replicas))
    size = case.model[:2]
    expected = PRESETS[size][2] if case.resolution == "native" else HALF_RESOLUTION[size]
    assert case.image_size == expected
    spec = case.model_spec()
    assert spec.resolution == case.image_size and spec.expand_ratio == (6 if "-G1-" in case.name else 4)
    assert all(split in spec.block_names() for split in case.pipeline_splits)
    assert case.learning_rate == pytest.approx(0.046875)
    assert case.rmsprop_rho == pytest.approx(1 - 768 / 2**14)


def test_paper_specific_values():
    assert load_case("B5-G1-GN-Native_16IPU_4x4").precision == "16.16"
    assert load_case("B4-G16-GN-Native_16IPU_4x4").precision == "16.32"
    b1 = load_case("B1-G16-LN_PN-Half_16IPU_4x4")
    assert (b1.mixup_alpha, b1.cutmix_lambda, b1.micro_batch_size) == (0.1, 0.95, 24)
    assert b1.pipeline_splits == ("block2b", "block4a", "block5d")
    assert load_case("B0-G16-GN-Native_16IPU_2x8").cutmix_lambda is None


def test_overrides_by_keyword():
    case = load_case("B0-G16-LN_PN-Half_16IPU_2x8", micro_batch_size=8, epochs=2)
    assert (case.micro_batch_size, case.epochs, case.global_batch_size) == (8, 2, 256)


def test_unknown_case_names_the_closest():
    with pytest.raises(ValueError, match="Did you mean B0-G16-LN_PN-Native_16IPU_2x8"):
        load_case("B0-G16-LN_PN-Nativ_16IPU_2x8")


def test_unknown_setting_is_named_with_a_suggestion():
    with pytest.raises(ValueError, match="'micro_batchsize' .did you mean 'micro_batch_size'"):
        load_case("B0-G1-GN-Native_16IPU_2x8", micro_batchsize=4)


@pytest.mark.parametrize("overrides, message", [
    (dict(micro_batch_size=0), "micro_batch_size=0 is not valid"),
    (dict(precision="8.8"), "accepted 32.32, 16.32, 16.16"),
    (dict(image_size=-224), "image_size=-224 is not valid"),
    (dict(pipeline_splits=["block9z"]), r"Unknown pipeline split.*valid block names are block1a"),
    (dict(pipeline_splits=["block3b", "block2a"], pipeline_stages=3), "in model order"),
    (dict(pipeline_stages=4), "4 pipeline stages need 3 pipeline_splits"),
    (dict(model="B0-G16-XN"), "Unknown model name"),
])
def test_impossible_values_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_case("B0-G1-GN-Native_16IPU_2x8", **overrides)


def test_a_user_config_file_is_read_safely(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text("cases:\n  tiny:\n    model: B0-G16-GN\n    resolution: half\n    image_size: 64\n"
                    "    micro_batch_size: 4\n    replicas: 1\n    pipeline_stages: 1\n"
                    "    gradient_accumulation_count: 2\n")
    case = load_case("tiny", path)
    assert case.global_batch_size == 8 and case.optimiser == "RMSprop"
    evil = tmp_path / "evil.yml"
    evil.write_text("cases: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(Exception, match="could not determine a constructor"):
        load_case("x", evil)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_case("x", tmp_path / "nope.yml")
