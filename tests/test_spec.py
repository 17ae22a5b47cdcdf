import pytest

from effnet_lib import EfficientNetSpec, conv_groups, round_filters, round_repeats
from effnet_lib.models.spec import HALF_RESOLUTION, PRESETS


def test_round_filters_is_multiple_of_8_and_never_below_90_percent():
    assert round_filters(32, 1.2) == 40  # 38.4 -> 40
    assert round_filters(1280, 1.1) == 1408
    assert round_filters(16, 0.25) == 8  # floor of one divisor
    for width in (0.3, 0.5, 1.0, 1.1, 1.4, 1.8, 2.0):
        for filters in (16, 24, 40, 80, 112, 192, 320):
            rounded = round_filters(filters, width)
            assert rounded % 8 == 0 and rounded >= 0.9 * filters * width


def test_round_repeats_rounds_up():
    assert round_repeats(3, 1.1) == 4 and round_repeats(4, 3.1) == 13 and round_repeats(1, 1.0) == 1


def test_grouping_rule_follows_the_reference():
    # groups = max(C // 16, 1): 40 channels -> 2 groups of 20, 24 channels -> one dense group.
    blocks = EfficientNetSpec.from_name("B3-G16-GN").blocks()
    first, second = blocks[0], blocks[1]
    assert (first.name, first.expanded_filters, first.groups) == ("block1a", 40, 2)
    assert (second.name, second.expanded_filters, second.groups) == ("block1b", 24, 1)
    # Past stage 1, every G16 group holds exactly 16 channels.
    for block in blocks[2:]:
        assert block.expanded_filters // block.groups == 16
    # G1 is depthwise everywhere.
    assert all(b.depthwise for b in EfficientNetSpec.from_name("B3-G1-GN").blocks())


def test_group_count_divides_channels_when_floor_does_not():
    assert conv_groups(56, 16) == 2  # 56 // 16 = 3 does not divide 56
    assert conv_groups(64, 16) == 4 and conv_groups(8, 16) == 1 and conv_groups(96, 1) == 96


@pytest.mark.parametrize("name, group_size, expand, norm", [
    ("B0-G16-LN_PN", 16, 4, "ln_pn"), ("B5-G1-GN", 1, 6, "gn"), ("b2-g16-gn_pn", 16, 4, "gn_pn"),
    ("B7", 1, 6, "bn"), ("B1-G8-LN", 8, 4, "ln"),
])
def test_from_name_parses_the_paper_naming(name, group_size, expand, norm):
    spec = EfficientNetSpec.from_name(name)
    assert (spec.group_size, spec.expand_ratio, spec.norm) == (group_size, expand, norm)
    assert spec.resolution == PRESETS[spec.name[:2]][2]


def test_from_name_accepts_overrides():
    spec = EfficientNetSpec.from_name("B0-G16-GN", expand_ratio=6, resolution=HALF_RESOLUTION["B0"])
    assert spec.expand_ratio == 6 and spec.resolution == 160


def test_expansion_ratio_keeps_stage_one_at_one():
    blocks = EfficientNetSpec.from_name("B0-G16-GN").blocks()
    assert blocks[0].expand_ratio == 1 and all(b.expand_ratio == 4 for b in blocks[1:])


def test_block_names_and_skips_follow_keras_convention():
    names = EfficientNetSpec.from_name("B0").block_names()
    assert names == ["block1a", "block2a", "block2b", "block3a", "block3b", "block4a", "block4b",
                     "block4c", "block5a", "block5b", "block5c", "block6a", "block6b", "block6c",
                     "block6d", "block7a"]
    skips = [b.has_skip for b in EfficientNetSpec.from_name("B0").blocks()]
    assert sum(skips) == 9  # every repeat but the first of each stage


def test_drop_connect_grows_linearly():
    blocks = EfficientNetSpec.from_name("B0").blocks()
    assert blocks[0].drop_rate == 0
    assert blocks[-1].drop_rate == pytest.approx(0.2 * 15 / 16)


@pytest.mark.parametrize("name, hint", [("B0-G16-LN_PM", "B0-G16-LN_PN"), ("B9-G16-GN", "B7-G16-GN"),
                                        ("EfficientNet", None)])
def test_unknown_model_name_names_the_closest(name, hint):
    with pytest.raises(ValueError, match="Unknown model name") as error:
        EfficientNetSpec.from_name(name)
    if hint:
        assert hint in str(error.value)


@pytest.mark.parametrize("field, value, accepted", [
    ("resolution", -3, "integer number of pixels"), ("group_size", 0, ">= 1"),
    ("norm", "instance", "bn, gn, ln, gn_pn, ln_pn"), ("width_coefficient", 0, "> 0"),
    ("dropout_rate", 1.5, r"\[0, 1\)"), ("activation", "gelu", "swish, relu"),
])
def test_impossible_values_say_what_is_accepted(field, value, accepted):
    with pytest.raises(ValueError, match=accepted):
        EfficientNetSpec(**{field: value})


def test_group_size_zero_in_a_name_is_rejected():
    with pytest.raises(ValueError, match="Group size G0 .* must be >= 1"):
        EfficientNetSpec.from_name("B0-G0-GN")


def test_unknown_override_field_is_rejected():
    with pytest.raises(TypeError, match="Unknown EfficientNetSpec field"):
        EfficientNetSpec.from_name("B0").replace(widht=2)
