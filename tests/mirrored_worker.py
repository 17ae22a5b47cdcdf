"""Two replicas on one machine (two logical CPU devices, MirroredStrategy) against one device,
same global batch: run by test_train.py in its own process, since the devices must be split
before TensorFlow starts."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from effnet_lib import load_case  # noqa: E402
from effnet_lib.training.train import train  # noqa: E402

data, out = sys.argv[1], sys.argv[2]
# Global batch 16 = micro-batch 4 x accumulation 2 x 2 replicas, or 8 x 2 on one device: the
# all-reduce and the accumulation both run. No dropout or drop-connect: replicas draw their
# own masks, which would make the two runs differ for a reason that is not a bug.
weights, report = {}, {}
for replicas, micro_batch in ((2, 4), (1, 8)):
    case = load_case("B0-G16-GN-Native_16IPU_2x8").replace(
        micro_batch_size=micro_batch, gradient_accumulation_count=2, replicas=replicas,
        pipeline_stages=1, pipeline_splits=(), image_size=32, epochs=1, warmup_epochs=0,
        precision="32.32", mixup_alpha=0.0, cutmix_lambda=None)
    result = train(case, data=data, run_dir=f"{out}/replicas{replicas}", validation=False,
                   progress=False, max_updates_per_epoch=3,
                   model_overrides=dict(width_coefficient=0.25, depth_coefficient=0.25,
                                        dropout_rate=0.0, drop_connect_rate=0.0))
    weights[replicas] = result.model.get_weights()
    report[replicas] = dict(updates=result.updates, history=result.history)
report["devices"] = len(tf.config.list_logical_devices("CPU"))
report["max_weight_difference"] = max(float(np.max(np.abs(a - b)))
                                      for a, b in zip(weights[1], weights[2]))
print(json.dumps(report))
