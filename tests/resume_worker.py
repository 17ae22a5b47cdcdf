"""Trains a tiny model deterministically in a process of its own, for the kill/resume test:
``python resume_worker.py '{"model": ..., "data": ..., "run_dir": ...}'``. With
``"reference_dir"``, it then trains the same run uninterrupted there and prints the largest
difference between the two final weights (``max abs difference: ...``)."""

import json
import sys

import numpy as np

from effnet_lib import load_case
from effnet_lib.training.train import train

from conftest import TINY

settings = json.loads(sys.argv[1])
# Gradient accumulation 2, Mixup (soft labels), drop-connect and dropout on: every piece of
# state a resumed run must restore.
case = load_case("B0-G16-GN-Native_16IPU_2x8").replace(
    model=settings["model"], micro_batch_size=4, gradient_accumulation_count=2, replicas=1,
    pipeline_stages=1, pipeline_splits=(), image_size=32, epochs=2, warmup_epochs=0,
    precision="32.32", mixup_alpha=0.2, cutmix_lambda=None)


def run(folder, checkpoint_every_updates=1):
    return train(case, data=settings["data"], run_dir=folder, model_overrides=TINY,
                 validation=False, progress=False, deterministic=True,
                 checkpoint_every_updates=checkpoint_every_updates,
                 say=lambda line: print(line, flush=True))


result = run(settings["run_dir"])
if result.stopped:
    sys.exit(3)
print(f"done after {result.updates} weight updates", flush=True)
if settings.get("reference_dir"):
    # Uninterrupted, and with epoch checkpoints only: 12 checkpoint writes fewer, and a check
    # that neither the writes nor a log per update change what is trained.
    reference = run(settings["reference_dir"], checkpoint_every_updates=0)
    difference = max(float(np.abs(a - b).max())
                     for a, b in zip(result.model.get_weights(), reference.model.get_weights()))
    print(f"max abs difference: {difference}", flush=True)
