"""One worker of the two-process MultiWorkerMirroredStrategy test (run by test_train.py)."""

import json
import os
import sys

task, ports, data, out = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3], sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                      "task": {"type": "worker", "index": task}})
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from effnet_lib import load_case  # noqa: E402
from effnet_lib.models import build_model  # noqa: E402
from effnet_lib.training.train import train  # noqa: E402

# Global batch 8 = micro-batch 2 x accumulation 2 x 2 workers: the all-reduce and the
# accumulation both run.
case = load_case("B0-G16-GN-Native_16IPU_2x8").replace(
    micro_batch_size=2, gradient_accumulation_count=2, replicas=2, pipeline_stages=1,
    pipeline_splits=(), image_size=32, epochs=1, warmup_epochs=0, precision="32.32",
    mixup_alpha=0.0, cutmix_lambda=None, label_smoothing=0.0)
result = train(case, data=data, run_dir=f"{out}/run{task}", validation=False, progress=False,
               model_overrides=dict(width_coefficient=0.25, depth_coefficient=0.25),
               max_updates_per_epoch=3)
np.savez(f"{out}/weights{task}.npz", *result.model.get_weights())
if task == 0:  # the weights before training (same seed): to show that they moved
    keras.utils.set_random_seed(0)
    np.savez(f"{out}/initial.npz", *build_model(result.model.effnet_spec).get_weights())
print(json.dumps(dict(task=task, updates=result.updates, history=result.history)))
