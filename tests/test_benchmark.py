"""The throughput benchmark, the group-size microbenchmark and conv_impl='auto'.

These check that the measurements are made and reported sanely at tiny sizes;
speed targets are measured by the benchmark itself and written in the README,
never asserted here.
"""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from effnet_lib.bench import steps, throughput as bench
from effnet_lib.bench import group_sizes as conv_bench
from effnet_lib.models import conv_impl
from effnet_lib.cli import main
from effnet_lib.profiling import profile
from effnet_lib.models.spec import EfficientNetSpec


@pytest.mark.slow
@pytest.mark.subprocess
def test_benchmark_prints_a_sane_table_beside_keras_applications(tmp_path, capsys):
    """With the default references (keras,timm): timm's rows appear only where torch and timm
    are installed, with a note where they are not."""
    import importlib.util

    argv = ["benchmark", "B0-G1-BN", "--image-size", "32", "--batch-size", "2", "--warmup", "1",
            "--repeats", "2", "--steps", "1", "--num-classes", "10", "--mode", "infer",
            "--output-dir", str(tmp_path)]
    timm = all(importlib.util.find_spec(m) is not None for m in ("torch", "timm"))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "speed_vs_keras" in out and "images/s" in out
    (csv,) = tmp_path.glob("benchmark-B0-G1-BN-32px-b2-*.csv")
    table = pd.read_csv(csv)
    # Inference: a full B0's training step takes four times as long to trace, in each of the
    # four processes; training's rows are checked in test_a_table_row_counts_... below and its
    # step in test_implementations_in_processes_of_their_own_take_turns.
    assert sorted(zip(table.implementation, table["mode"])) == [("effnet-kit", "infer"),
                                                                ("keras", "infer")] + (
        [("timm", "infer")] if timm else [])
    assert (table.images_per_s_min <= table.images_per_s).all()
    assert (table.images_per_s <= table.images_per_s_max).all()
    np.testing.assert_allclose(table.step_ms, 1000 * 2 / table.images_per_s)
    # The same network: keras.applications' (and timm's) trainable parameters are ours.
    assert table.params.nunique() == 1
    ours = table[table.implementation == "effnet-kit"].set_index("mode")
    theirs = table[table.implementation == "keras"].set_index("mode")
    for mode in ("infer",):
        assert ours.speed_vs_keras[mode] == pytest.approx(
            ours.images_per_s[mode] / theirs.images_per_s[mode])
        assert ours.speed_vs_keras_paired[mode] > 0  # timed alternately in one process
        if timm:  # timm's PyTorch model alternating with ours in one process
            assert ours.speed_vs_timm_paired[mode] > 0
    assert theirs.speed_vs_keras_paired.isna().all()
    assert ("speed_vs_timm_paired" in table) == timm
    forward = profile(EfficientNetSpec.from_name("B0-G1-BN", num_classes=10), image_size=32).macs
    assert ours.forward_macs_per_image_G["infer"] == pytest.approx(forward / 1e9)
    rate = forward * 2 / (ours.step_ms["infer"] / 1000)  # one forward pass per image
    assert ours.achieved_macs_per_s_G["infer"] == pytest.approx(rate / 1e9)
    assert (0 < table.utilisation).all() and (table.utilisation < 2).all()
    assert (table.peak_memory_mib > 0).all()
    record = json.loads(csv.with_suffix(".json").read_text())
    env = record["environment"]
    assert {"date", "backend", "cpu", "versions", "matmul_macs_per_s"} <= set(env)
    assert env["versions"]["keras"] and env["matmul_macs_per_s"] > 1e8
    assert any("timm reference skipped" in note for note in record["notes"]) == (
        env["versions"]["timm"] is None or env["versions"]["torch"] is None)


@pytest.mark.parametrize("mode, passes", [("train", 3), ("infer", 1)])
def test_a_table_row_counts_three_passes_for_training_and_one_for_inference(mode, passes):
    """A training step is a forward pass, the backward pass through the activations and the
    one through the weights: three times the forward multiply-adds per image."""
    spec = EfficientNetSpec.from_name("B0-G16-GN", num_classes=10)
    request = dict(image_size=64, batch_size=4, num_classes=10, precision="32")
    result = dict(seconds_per_step=[0.5, 0.2, 0.4], xla="False", peak_bytes=2 * 2 ** 20,
                  memory_measure="test", model="efficientnet_b0", params=123)
    row = bench.table_row(spec, request, "effnet-kit", mode, result, dict(macs_per_s=1e12))
    forward = profile(spec, image_size=64).macs
    assert row["step_ms"] == pytest.approx(400) and row["images_per_s"] == pytest.approx(10)
    assert (row["images_per_s_min"], row["images_per_s_max"]) == pytest.approx((8, 20))
    assert row["achieved_macs_per_s_G"] == pytest.approx(forward * passes * 4 / 0.4 / 1e9)
    assert row["utilisation"] == pytest.approx(forward * passes * 4 / 0.4 / 1e12)
    assert row["peak_memory_mib"] == pytest.approx(2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(precision="8"), "precision='8'"),
    (dict(mode="fast"), "mode='fast'"),
    (dict(xla="maybe"), "xla='maybe'"),
    (dict(references=("torchvision",)), "accepted keras, timm"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(image_size=4), "image_size=4"),
])
def test_benchmark_rejects_bad_requests_before_measuring(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        bench.benchmark("B0", **kwargs)


def test_benchmark_command_reports_a_bad_model_name(capsys):
    assert main(["benchmark", "B9-G16"]) == 2
    assert "Unknown model name" in capsys.readouterr().err


@pytest.mark.slow
def test_group_size_sweep_counts_and_plots(tmp_path):
    table = conv_bench.sweep(channels=32, image_size=8, batch_size=2, group_sizes=(1, 8, "dense"),
                             backends=("tensorflow",), xla=("off",), warmup=1, repeats=2, steps=1,
                             progress=None)
    rows = {(r.impl, r.group_size) for r in table.itertuples()}
    # Split only where it is a real alternative (grouped, not depthwise nor dense).
    assert rows == {("native", 1), ("native", 8), ("split", 8), ("native", 32)}
    one = table.set_index(["impl", "group_size"])
    assert one.macs["native", 32] == 32 * one.macs["native", 1] == 8 * 8 * 9 * 32 * 32 * 2 * 3
    assert (table.seconds_min <= table.seconds).all() and (table.seconds > 0).all()
    np.testing.assert_allclose(table.macs_per_s_G, table.macs / table.seconds / 1e9)
    fig = conv_bench.plot(table)
    # one line per implementation, and depthwise (measured with "native" only) as its own star
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    assert [line.get_marker() for line in fig.axes[0].lines].count("*") == 1
    winners = conv_bench.winners(table, group_size=8)
    assert winners[0]["backend"] == "tensorflow" and winners[0]["winner"] in ("native", "split")
    with pytest.raises(ValueError, match="must divide channels=32"):
        conv_bench.sweep(channels=32, group_sizes=(3,))


def test_auto_conv_impl_prefers_the_users_measurement(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNET_DATA_DIR", str(tmp_path))
    shipped = conv_impl.choose("tensorflow", "cpu")
    assert shipped[0] == "split" and "shipped measurement" in shipped[1]
    conv_impl.save_choice([dict(backend="tensorflow", device="cpu", winner="native", date="x")])
    winner, origin = conv_impl.choose("tensorflow", "cpu")
    assert winner == "native" and "your measurement" in origin
    # Saving another device keeps the first entry.
    conv_impl.save_choice([dict(backend="tensorflow", device="gpu", winner="split")])
    assert [e["device"] for e in json.loads(conv_impl.user_choices_path().read_text())["choices"]] == [
        "cpu", "gpu"]
    assert conv_impl.choose("torch", "npu")[0] == "native"  # nobody measured it
    conv_impl.user_choices_path().write_text("{not json")
    with pytest.raises(ValueError, match="not a conv_impl choice file"):
        conv_impl.choose("tensorflow", "cpu")
    with pytest.raises(ValueError, match="accepted auto, native, split"):
        conv_impl.resolve("fast")


def test_every_shipped_choice_is_a_measurement_with_its_date_and_margin():
    entries = json.loads(conv_impl.SHIPPED.read_text())["choices"]
    assert entries
    for entry in entries:
        assert entry["winner"] in ("native", "split") and entry["date"]
        assert entry["speedup"] >= 1.0 and entry["group_size"] == 16


def test_inference_measurement_of_a_tiny_model_in_this_process():
    spec = EfficientNetSpec.from_name("B0-G16-GN", width_coefficient=0.25, depth_coefficient=0.25)
    job = dict(job="model", implementation="effnet-kit", mode="infer", spec=dataclasses.asdict(spec),
               size_name="B0", image_size=32, batch_size=2, precision="32", xla="auto", warmup=1,
               repeats=2, steps=1, num_classes=10, conv_impl="auto")
    result = steps.run_job(job)
    assert len(result["seconds_per_step"]) == 2 and min(result["seconds_per_step"]) > 0
    assert result["model"].startswith("efficientnet_b0") and result["params"] > 10_000


@pytest.mark.slow
def test_an_exported_folder_is_timed_as_served_with_its_own_size_and_classes(tmp_path):
    from effnet_lib.training.inference import export

    spec = EfficientNetSpec.from_name("B0-G16-LN_PN", width_coefficient=0.25, depth_coefficient=0.25,
                                      num_classes=10)
    from effnet_lib.models.builder import build_model
    from effnet_lib.training import checkpoints

    checkpoint = checkpoints.write(tmp_path / "ckpt", build_model(spec, image_size=32), dict(
        spec=checkpoints.spec_to_dict(spec), image_size=32, class_names=[str(i) for i in range(10)]))
    folder = export(checkpoint, tmp_path / "export", say=lambda *_: None)
    timed, size, classes, mode, note = bench._exported_request(folder, None, 1000, "both")
    assert (timed.width_coefficient, size, classes, mode) == (0.25, 32, 10, "infer") and note
    with pytest.raises(ValueError, match="takes 32 px images"):
        bench._exported_request(folder, 64, 1000, "infer")
    with pytest.raises(FileNotFoundError, match="not an `effnet export` folder"):
        bench._exported_request(tmp_path, None, 1000, "infer")
    job = dict(job="model", implementation="effnet-kit", mode="infer", spec=dataclasses.asdict(timed),
               size_name="B0", image_size=32, batch_size=2, precision="32", xla="auto", warmup=1,
               repeats=2, steps=1, num_classes=10, conv_impl="auto", exported=str(folder))
    result = steps.run_job(job)  # the exported model.keras, loaded safely, timed
    assert len(result["seconds_per_step"]) == 2 and min(result["seconds_per_step"]) > 0
    assert main(["benchmark"]) == 2  # neither a name nor --exported


def test_the_readme_speed_table_is_written_from_the_recorded_benchmarks(tmp_path):
    """README's speed table is the block written from the benchmark JSON files it names."""
    import re
    from pathlib import Path

    from effnet_lib.bench import speed_table

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    block = readme.split(speed_table.README_BEGIN, 1)[1].split(speed_table.README_END, 1)[0]
    files = re.findall(r"`figures/benchmarks/([^`]+\.json)`", block)
    assert files, "README's speed table names no recorded benchmark"
    records = [json.loads((root / "figures" / "benchmarks" / f).read_text()) for f in files]
    assert block == "\n" + speed_table.speed_table(records, files) + "\n", (
        "README's speed table differs from the files it names: run `python -m "
        "effnet_lib.bench.speed_table --write-readme README.md " +
        " ".join(f"figures/benchmarks/{f}" for f in files) + "`")
    for record in records:  # what the table quotes: both peers, paired, in one run
        ours = [r for r in record["results"] if r["implementation"] == "effnet-kit"]
        assert ours and all(r.get("speed_vs_keras_paired") for r in ours)
    copy = tmp_path / "README.md"
    copy.write_text(f"top\n{speed_table.README_BEGIN}\nstale\n{speed_table.README_END}\nbottom\n")
    speed_table.write_readme(copy, [root / "figures" / "benchmarks" / f for f in files])
    text = copy.read_text()
    assert "stale" not in text and text.startswith("top\n") and text.endswith("bottom\n")
    assert all(f in text for f in files)


def test_each_row_counts_the_multiply_adds_of_the_network_that_ran():
    """For a variant, keras.applications runs the standard network: its row's utilisation
    is counted with the standard network's multiply-adds, this kit's and timm's with the
    variant's (timm's matched model has the same stages and groups)."""
    request = dict(image_size=32, num_classes=10, batch_size=2, precision="32", exported=None)
    result = dict(seconds_per_step=[0.5], xla="off", peak_bytes=1, memory_measure="-", params=1,
                  model="-")
    spec = EfficientNetSpec.from_name("B0-G16-GN", num_classes=10)
    counted = {implementation: bench.table_row(spec, request, implementation, "infer", result,
                                          dict(macs_per_s=1e9))["forward_macs_per_image_G"]
               for implementation in ("effnet-kit", "keras", "timm")}
    standard = profile(EfficientNetSpec.from_name("B0", num_classes=10), image_size=32).macs
    assert counted["keras"] == pytest.approx(standard / 1e9)
    assert counted["effnet-kit"] == counted["timm"] == pytest.approx(
        profile(spec, image_size=32).macs / 1e9)
    assert counted["effnet-kit"] > counted["keras"]  # G16 does more multiply-adds than G1


@pytest.mark.slow
def test_the_op_profile_adds_up_a_training_steps_ops_by_type():
    """The profile of a tiny BN model's training step: convolutions forward and backward,
    the fused BatchNorm kernels (not Keras's unfused moments), shares that sum to one."""
    from effnet_lib.bench.op_profile import by_category, category, profile_training

    table, wall_ms = profile_training("B0-G1-BN", image_size=32, batch_size=4, steps=1,
                                      num_classes=10, width_coefficient=0.25,
                                      depth_coefficient=0.25)
    assert wall_ms > 0 and (table.ms_per_step > 0).all()
    assert table.share.sum() == pytest.approx(1.0)
    ops = set(zip(table.category, table["pass"]))
    assert {("convolution", "forward"), ("convolution", "backward"),
            ("batch norm (fused kernel)", "forward"), ("batch norm (fused kernel)", "backward")} <= ops
    assert any("Conv2DBackpropFilter" in op for op in table.op)
    summary = by_category(table)
    assert summary.share.sum() == pytest.approx(1.0)
    assert {"convolution", "depthwise convolution", "batch norm (fused kernel)"} <= set(
        summary.category)
    assert category("DepthwiseConv2dNativeBackpropInput") == "depthwise convolution"
    assert category("_MklNativeDepthwiseConv2dNativeBackpropInput") == "depthwise convolution"
    assert category("_MklNativeFusedConv2D") == "convolution"
    assert category("Sigmoid") == "element-wise and other"


def test_the_op_profile_table_in_the_docs_is_written_from_the_recorded_profiles(tmp_path):
    """docs/measurements.md quotes the recorded profiles (figures/benchmarks/op-profile-*.json)
    and nothing else; regenerating the block from the files it names gives the same text."""
    import re
    from pathlib import Path

    from effnet_lib.bench import op_profile

    root = Path(__file__).parent.parent
    doc = (root / "docs" / "measurements.md").read_text()
    block = doc.split(op_profile.DOC_BEGIN, 1)[1].split(op_profile.DOC_END, 1)[0]
    files = re.findall(r"`figures/benchmarks/(op-profile-[^`]+\.json)`", block)
    assert len(files) >= 2
    records = [json.loads((root / "figures" / "benchmarks" / f).read_text()) for f in files]
    assert block == "\n" + op_profile.comparison_table(records, files) + "\n", (
        "the op-profile table is stale: python -m effnet_lib.bench.op_profile --write-doc "
        "docs/measurements.md --records " + " ".join(f"figures/benchmarks/{f}" for f in files))
    # the last row is each profile's whole op time, the sum of its ops
    last_row = block.split("op time, all", 1)[1].split("\n", 1)[0]
    assert [int(n) for n in re.findall(r"\d+", last_row)] == [
        round(sum(row["ms_per_step"] for row in record["rows"])) for record in records]


@pytest.mark.slow
@pytest.mark.subprocess
def test_implementations_in_processes_of_their_own_take_turns():
    """The timm pairing's mechanism (timm's PyTorch model in its own process), run here with
    two of this kit's models so that it runs where timm is not installed: each process
    answers every turn with its timed run, in order, and a failing one is reported."""
    from effnet_lib.bench.turns import alternate_in_processes

    spec = dataclasses.asdict(EfficientNetSpec.from_name("B0-G1-BN", num_classes=10,
                                                         width_coefficient=0.25,
                                                         depth_coefficient=0.25))
    request = dict(implementation="effnet-kit", spec=spec, image_size=32, batch_size=2,
                   num_classes=10, precision="32.32", xla="off", warmup=1, mode="infer",
                   conv_impl="auto", exported=None)
    times = alternate_in_processes({"a": request, "b": dict(request, mode="train")},
                                   repeats=2, steps=1)
    assert sorted(times) == ["a", "b"]
    assert all(len(runs) == 2 and all(t > 0 for t in runs) for runs in times.values())
    with pytest.raises(RuntimeError, match="measuring process for broken failed"):
        alternate_in_processes({"broken": dict(request, spec=dict(spec, norm="nope"))},
                               repeats=1, steps=1)
