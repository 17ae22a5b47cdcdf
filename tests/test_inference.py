"""Export for serving and predict from image files: outputs equal, errors clear, accuracy real."""

import json
from pathlib import Path

import numpy as np
import pytest

from effnet_lib.cli import main
from effnet_lib.training import checkpoints
from effnet_lib.training.inference import export, image_files, load_classifier, predict

from conftest import TINY


def tiny_checkpoint(folder, name: str, image_size: int = 32, classes=("a", "b", "c")):
    from effnet_lib.models.builder import build_model
    from effnet_lib.models.spec import EfficientNetSpec

    spec = EfficientNetSpec.from_name(name, num_classes=len(classes), **TINY)
    model = build_model(spec, image_size=image_size)
    # move BN's moving statistics and every weight away from their initial values
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) if w.ndim else w
                       for w in model.get_weights()])
    return checkpoints.write(folder, model, dict(spec=checkpoints.spec_to_dict(spec),
                                                 image_size=image_size, class_names=list(classes))), model


@pytest.mark.parametrize("name", ["B0-G1-BN"] + [pytest.param(n, marks=pytest.mark.slow)
                                                   for n in ("B0-G16-BN", "B0-G16-LN_PN")])
def test_an_export_gives_the_models_outputs_in_keras_and_in_the_saved_model(tmp_path, name):
    """Rewritten for inference (BN folded, proxy moments stored, no dropout), the exported
    model's logits equal the trained model's within 1e-4 of their spread (float32 rounding
    of a different order of operations); unrewritten, within 1e-5 (the same graph)."""
    import keras
    import tensorflow as tf

    checkpoint, model = tiny_checkpoint(tmp_path / "ckpt", name)
    out = export(checkpoint, tmp_path / "export", say=lambda *_: None)
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    expected = np.asarray(model(images, training=False))
    tolerance = 1e-4 * expected.std()
    reloaded, meta = load_classifier(out)
    assert meta["class_names"] == ["a", "b", "c"] and meta["image_size"] == 32
    assert len(meta["rewrites"]) == 3
    kinds = {type(layer).__name__ for layer in reloaded.layers}
    assert not kinds & {"BatchNormalization", "Dropout", "ProxyNormActivation"}
    np.testing.assert_allclose(np.asarray(reloaded(images, training=False)), expected,
                               rtol=1e-4, atol=tolerance)
    loaded = tf.saved_model.load(str(out / "saved_model"))  # kept: it owns the variables
    served = loaded.serve(tf.constant(images))
    np.testing.assert_allclose(np.asarray(served), expected, rtol=1e-4, atol=tolerance)
    if name != "B0-G16-LN_PN":  # unrewritten, once: a second SavedModel export is seconds
        return
    plain = export(checkpoint, tmp_path / "plain", say=lambda *_: None, rewrite=False)
    as_trained, meta = load_classifier(plain)
    assert meta["rewrites"] == [] and any(isinstance(layer, keras.layers.Dropout)
                                          for layer in as_trained.layers)
    np.testing.assert_allclose(np.asarray(as_trained(images, training=False)), expected,
                               rtol=1e-5, atol=1e-5)


def test_export_refuses_a_folder_in_use_and_leaves_nothing_half_written(tmp_path):
    checkpoint, _ = tiny_checkpoint(tmp_path / "ckpt", "B0-G1-GN")
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        export(checkpoint, used)
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    assert main(["export", "no-such-model-or-folder", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_predict_names_unreadable_files_and_classifies_the_rest(tmp_path, capsys):
    from PIL import Image

    checkpoint, _ = tiny_checkpoint(tmp_path / "ckpt", "B0-G1-GN")
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(folder / "grey.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    results = {r.path.split("/")[-1]: r for r in predict([folder], checkpoint, top=2)}
    assert "cannot read it as JPEG or PNG" in results["broken.jpg"].error
    top = results["grey.png"].top
    assert len(top) == 2 and top[0][1] >= top[1][1] and {n for n, _ in top} <= {"a", "b", "c"}
    assert main(["predict", str(folder), "--model", str(checkpoint)]) == 1
    printed = capsys.readouterr().out
    assert "broken.jpg: error: cannot read it" in printed and "grey.png: " in printed
    with pytest.raises(FileNotFoundError, match="no JPEG or PNG"):
        image_files([tmp_path / "ckpt"])


@pytest.mark.slow
def test_predict_classifies_the_embedded_validation_images_well_above_chance(tmp_path, shapes_set):
    """A tiny model trained by the kit (about a minute), then `predict` on the validation images:
    the same accuracy as the run's own validation, and its 95% interval above chance."""
    from effnet_lib import load_case, train
    from effnet_lib.common.stats import proportion_ci

    data = shapes_set(image_size=32, train=600, validation=120, classes=4, seed=5,
                      class_set="distinct")
    case = load_case("B0-G16-GN-Native_16IPU_2x8").replace(
        micro_batch_size=16, gradient_accumulation_count=1, replicas=1, pipeline_stages=1,
        pipeline_splits=(), image_size=32, epochs=8, warmup_epochs=1, precision="32.32",
        lr_schedule="cosine", base_learning_rate_exponent=-11, mixup_alpha=0.0, cutmix_lambda=None,
        crop_area_range=(0.35, 1.0))
    run = tmp_path / "run"
    train(case, data=f"shapes:{data}", run_dir=str(run), progress=False, say=lambda *_: None,
          model_overrides=TINY)
    truth = {p: p.parent.name for p in image_files([data / "validation"])}
    results = predict(list(truth), run)
    correct = sum(r.top[0][0] == truth[Path(r.path)] for r in results)
    validated = json.loads((run / "validation.json").read_text())["top1"]
    assert correct / len(results) == pytest.approx(validated, abs=1.01 / len(results))
    low = proportion_ci(correct, len(results)).low
    assert low > 0.25, f"top-1 {correct}/{len(results)} through predict: not above chance (0.25)"


@pytest.mark.slow
@pytest.mark.subprocess
def test_an_export_loads_in_a_fresh_process_that_built_no_model(tmp_path):
    """`effnet predict --model EXPORT` in a new process: Keras must know the kit's layers
    without any model having been built there (it failed with 'Could not locate class')."""
    import subprocess
    import sys

    from PIL import Image

    checkpoint, _ = tiny_checkpoint(tmp_path / "ckpt", "B0-G16-LN_PN")
    out = export(checkpoint, tmp_path / "export", say=lambda *_: None)
    image = tmp_path / "one.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(image)
    run = subprocess.run([sys.executable, "-m", "effnet_lib.cli", "predict", str(image), "--model",
                          str(out), "--top", "2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith(f"{image}: ") and run.stdout.count(",") == 1
