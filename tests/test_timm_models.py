"""timm's EfficientNet matched to this kit's specs (the benchmark's timm reference)."""

import dataclasses
import importlib.util
import re

import pytest

from effnet_lib import build_model
from effnet_lib.bench import references
from effnet_lib.common.fresh_process import run_in_fresh_process
from effnet_lib.bench.timm_models import arch_def, differences, is_standard, timm_name
from effnet_lib.models.spec import B0_STAGES, EfficientNetSpec
from effnet_lib.training.cases import resolve_spec


def test_the_block_strings_carry_the_specs_expansion_and_stages():
    g16 = arch_def(resolve_spec("B0-G16-GN"))
    assert len(g16) == len(B0_STAGES)
    assert g16[0] == ["ds_r1_k3_s1_e1_c16_se0.25"]  # stage 1 never expands
    assert g16[1] == ["ir_r2_k3_s2_e4_c24_se0.25"]  # G16: expansion 4, not timm's 6
    assert arch_def(resolve_spec("B0-G1-BN"))[5] == ["ir_r4_k5_s2_e6_c192_se0.25"]


def test_only_the_standard_networks_are_timms_registered_models():
    assert is_standard(resolve_spec("B3-G1-BN")) and timm_name(resolve_spec("B3")) == \
        "timm efficientnet_b3"
    for name in ("B0-G16-BN", "B0-G1-GN", "B0-G16-LN_PN"):
        assert not is_standard(resolve_spec(name)), name
        assert name in timm_name(resolve_spec(name))
    assert any("Proxy Norm" in d for d in differences(resolve_spec("B0-G16-LN_PN")))
    assert not any("Proxy Norm" in d for d in differences(resolve_spec("B0-G16-GN")))


def test_without_torch_the_timm_reference_is_skipped_with_a_note(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    available, note = references.reference_available("timm", resolve_spec("B0-G1-BN"))
    # (where timm is missing too, the note names both)
    assert not available and re.search(r"torch (and timm )?not installed", note), note


def test_keras_reference_of_a_variant_is_noted_as_the_standard_network():
    (note,) = references.reference_differences("keras", resolve_spec("B0-G16-GN"))
    assert "B0 (depthwise, BatchNorm), not B0-G16-GN" in note
    assert references.reference_differences("keras", resolve_spec("B0-G1-BN")) == []


MATCHED = ["B0-G1-BN", "B0-G1-GN", "B0-G16-GN", "B0-G16-LN", "B2-G16-BN"]


@pytest.mark.subprocess
def test_the_matched_timm_model_has_this_kits_trainable_parameters():
    """Same stages, channels, groups, squeeze-excite and norm parameters: the counts agree
    to the parameter (the check that the match is a match; Proxy Norm adds none). Runs
    where the timm extra is installed (pip install -e .[timm]); CI has it not."""
    if not all(importlib.util.find_spec(m) for m in ("torch", "timm")):
        pytest.skip("the timm extra is not installed: pip install -e .[timm]")
    specs = [resolve_spec(name, num_classes=10) for name in MATCHED]
    theirs = run_in_fresh_process("effnet_lib.bench.timm_models:parameter_counts",
                                  dict(specs=[dataclasses.asdict(s) for s in specs],
                                       num_classes=10))["counts"]
    ours = [sum(int(w.numpy().size) for w in build_model(s, image_size=32).trainable_weights)
            for s in specs]
    assert dict(zip(MATCHED, theirs)) == dict(zip(MATCHED, ours))
