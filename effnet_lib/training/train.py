"""Training: the paper's recipe on CPU, GPU or several of them, resumable.

:func:`train` reads like the recipe: plan the run (:mod:`.plan`), set the
precision, build and compile the model, resume from the run folder, fit, and
validate. A run folder holds checkpoints at epoch ends and within long epochs (atomic,
verified, see :mod:`.checkpoints`), the weight average, ``metrics.csv``,
``metrics.jsonl``, TensorBoard logs and ``run.json``. Running the same command again
resumes from the newest intact checkpoint: the schedule, the optimiser and the data
stream continue where they were (with ``deterministic=True``, bit for bit as if the
run had not stopped). SIGTERM or Ctrl-C stops at the end of the current log with a
checkpoint (:mod:`.stopping`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache, partial
from pathlib import Path

import keras

from ..common.optimizer_slots import build_optimizer_slots
from ..common.precision import dtype_policy, precision
from . import checkpoints, recipe
from .callbacks import CheckpointWithAverage, EpochValidation, MetricsLog, NanGuard
from .cases import CaseConfig, load_case
from .distribution import is_chief, needs_own_loop, strategy_for
from .evaluation import Validator, loss_for, metrics_for
from .multiworker import fit_across_replicas
from .plan import RunPlan, fold_replicas, plan_run
from .run_lock import run_folder_lock
from .stopping import StopRequest, stop_on_signals


@dataclass
class TrainResult:
    run_dir: str
    epochs_done: int
    updates: int
    resumed_from: int
    history: list
    validation: dict | None
    stopped: str | None = None
    model: object = None  # the trained keras.Model (latest weights)


def train(case: CaseConfig | str, *, data: str = "shapes", run_dir: str | None = None,
          epochs: int | None = None, logs_per_epoch="1", training: bool = True,
          validation: bool = True, l2_regularization: float = 0.0, seed: int = 0,
          model_overrides: dict | None = None, max_updates_per_epoch: int | None = None,
          skip_corrupt: bool = False, validate_every_epoch: bool = False, progress: bool = True,
          checkpoint_every_updates: int | None = None, keep_checkpoints: int = 2,
          deterministic: bool = False, say=print) -> TrainResult:
    """Train a case (or a case with overrides) on ``data``; resume if ``run_dir`` has a checkpoint.

    Args:
        case: a :class:`CaseConfig` or case name; flags of the IPU kit are its fields
            (``case.replace(micro_batch_size=16, ...)``).
        data: a source of :func:`effnet_lib.data.make_dataset`.
        epochs: whole epochs (default: the case's, rounded).
        logs_per_epoch: host events per epoch, as the IPU kit's flag (``"2"``, ``"1/2"``, ``0``).
        model_overrides: spec fields for small experiments (``width_coefficient=0.5``).
        max_updates_per_epoch: cap an epoch's weight updates (quick runs on big data).
        skip_corrupt: skip unreadable images (and count them) instead of stopping.
        validate_every_epoch: top-1/top-5 on the validation split at every epoch's
            checkpoint (``val_top1``, ``val_top5`` in the metrics log), as the reference did.
        checkpoint_every_updates: checkpoints within an epoch (0: none; default: see
            :func:`.plan.checkpoint_interval`), the newest ``keep_checkpoints`` kept.
        deterministic: op determinism (slower): resumed runs end as uninterrupted ones.
    """
    case = load_case(case) if isinstance(case, str) else case
    strategy = strategy_for(case.replicas)  # first: a multi-worker strategy configures TF
    _seed(seed, deterministic)
    layout = fold_replicas(case, strategy.num_replicas_in_sync)
    augmentation = case_augmentation(case)
    data_from = partial(_training_data, case, augmentation, data, layout.replicas, seed,
                        skip_corrupt)
    train_data = data_from(progress)
    plan = plan_run(case, layout, train_data.steps_per_epoch, epochs, logs_per_epoch,
                    max_updates_per_epoch, train_data.num_examples, data, checkpoint_every_updates)
    _say_plan(case, layout, plan, say)
    chief, run_dir = is_chief(strategy), Path(run_dir or Path("runs") / case.name)
    if chief:
        checkpoints.check_writable(run_dir)  # before any work that could not be saved

    with dtype_policy(case.precision), strategy.scope():
        spec = case.model_spec(num_classes=train_data.num_classes, **(model_overrides or {}))
        core, model = _build_and_compile(case, spec, plan, train_data, augmentation.soft_labels,
                                         needs_own_loop(strategy), l2_regularization, say)
    meta = _run_meta(case, spec, plan, train_data, data, seed)
    validator = _validator(case, spec, data, train_data.class_names)
    with run_folder_lock(run_dir, enabled=chief, say=say):  # one run per folder
        resumed_from, first_log = _resume(run_dir, chief, model, core, meta, plan, say)
        if first_log:  # the data stream goes on where the checkpoint left it
            train_data.dataset = data_from(False, first_log * plan.micro_steps_per_log).dataset
        stop, guard, saver, callbacks = _callbacks(
            case, run_dir, meta, plan, chief, core, model, train_data, resumed_from,
            validator if validate_every_epoch else None, keep_checkpoints, say)
        history = _fit(model, train_data, plan, strategy, callbacks, first_log,
                       augmentation.soft_labels, progress, stop) if training else []
        stopped = guard.stopped or saver.failed or _stop_message(stop, saver, run_dir)
        result = _after_training(stopped, train_data, validation, core, validator, case,
                                 run_dir, chief, say)
        reached = saver.reached or _newest_meta(run_dir)  # a non-chief writes no checkpoint
        return TrainResult(str(run_dir), reached.get("epoch", 0), reached.get("updates", 0),
                           resumed_from, history, result, stopped, core)


def _say_plan(case, layout, plan: RunPlan, say) -> None:
    """What was mapped (replicas, pipeline stages, precision), then the plan's warnings."""
    for note in filter(None, layout.notes + [precision(case.precision).note]):
        say(note)
    for warning in plan_warnings(case, plan):
        say(f"warning: {warning}")


def _seed(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow; with ``deterministic``, op determinism too."""
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)


def _stop_message(stop: StopRequest, saver, run_dir) -> str | None:
    if not stop.reason:
        return None
    where = saver.last_written or checkpoints.latest(run_dir)
    return (f"stopped by {stop.reason} after weight update {(saver.reached or {}).get('updates')}; "
            f"checkpoint: {where}. Run the same command to resume from there.")


def _after_training(stopped: str | None, train_data, validation: bool, core, validator, case,
                    run_dir, chief, say) -> dict | None:
    """Say how training ended; validate the final weights and averages (None when not, or
    when training ``stopped`` early: a NaN, a stop request, a checkpoint not written)."""
    if stopped:
        say(f"error: {stopped}")
    if train_data.skipped():
        say(f"skipped {train_data.skipped()} corrupt images")
    if validation and train_data.num_examples is None:
        say("no validation: synthetic data has no validation set.")
    elif validation and not stopped:
        return _final_validation(core, validator, case, run_dir, chief)
    return None


def plan_warnings(case: CaseConfig, plan: RunPlan) -> list[str]:
    """What the user should know before the run starts: host-event clashes, a warm-up that
    outlasts the run (``--epochs 1`` keeps the case's 5 warm-up epochs otherwise)."""
    warnings = list(plan.events.warnings)
    if case.warmup_epochs and case.warmup_epochs >= plan.epochs:
        warnings.append(f"the warm-up ({case.warmup_epochs:g} epochs) lasts the whole run "
                        f"({plan.epochs} epochs): the learning rate never reaches its peak. "
                        f"Shorten it with --warmup-epochs.")
    return warnings


def case_augmentation(case: CaseConfig, valid_preprocessing: bool = False):
    """The case's crops and label mixing as the data pipeline takes them."""
    from ..data import Augmentation

    return Augmentation(crop_area_range=case.crop_area_range, mixup_alpha=case.mixup_alpha,
                        cutmix_lambda=case.cutmix_lambda or 1.0, cutmix_version=case.cutmix_version,
                        label_smoothing=case.label_smoothing,
                        valid_preprocessing=valid_preprocessing)


def _training_data(case: CaseConfig, augmentation, data: str, replicas: int, seed,
                   skip_corrupt, progress, start_batch: int = 0):
    """The training pipeline, batched with the global micro-step batch (tf.distribute shards it
    across workers and splits each batch across replicas), from micro-batch ``start_batch``."""
    from ..data import make_dataset

    return make_dataset(data, "train", case.image_size, case.micro_batch_size * replicas,
                        augmentation=augmentation, repeat=True, seed=seed,
                        skip_corrupt=skip_corrupt, progress=progress, start_batch=start_batch)


def _build_and_compile(case, spec, plan: RunPlan, train_data, soft: bool, own_loop: bool,
                       l2_regularization: float, say):
    """(the model checkpoints hold, the model that trains); the second wraps the first only
    when synthetic images are drawn inside the step."""
    from ..models.builder import build_model

    core = build_model(spec)
    l2_count = recipe.add_l2_regularization(core, l2_regularization)
    if l2_count:
        say(f"L2 regularisation {l2_regularization} on {l2_count} weight tensors (norm "
            f"parameters excluded).")
    # The replica loop accumulates gradients itself (see multiworker.py).
    optimizer = recipe.optimizer_for(case, plan.updates_per_epoch, plan.epochs,
                                     1 if own_loop else plan.layout.accumulation,
                                     loss_scaled=precision(case.precision).loss_scaled)
    model = train_data.wrap_model(core)
    # Static loss scaling (the optimiser's loss_scale_factor), not Keras's dynamic wrapper.
    model.compile(optimizer=optimizer, loss=loss_for(soft),
                  metrics=metrics_for(soft, train_data.num_classes),
                  steps_per_execution=plan.micro_steps_per_log, jit_compile=False,
                  auto_scale_loss=False)
    build_optimizer_slots(model)  # a resumed run's slots load into these
    return core, model


def _run_meta(case, spec, plan: RunPlan, train_data, data: str, seed: int) -> dict:
    """What a checkpoint records of its run (and what a resumed run must share)."""
    return dict(case=asdict(case), spec=checkpoints.spec_to_dict(spec), image_size=case.image_size,
                class_names=train_data.class_names, data=data, seed=seed, epochs_total=plan.epochs,
                updates_per_epoch=plan.updates_per_epoch,
                epochs_per_checkpoint=plan.epochs_per_checkpoint,
                gradient_accumulation=plan.layout.accumulation, replicas=plan.layout.replicas)


def _resume(run_dir: Path, chief: bool, model, core, meta: dict, plan: RunPlan, say) -> tuple[int, int]:
    """Load the newest checkpoint of ``run_dir`` if there is one; (the whole epochs it holds,
    the log to go on from), (0, 0) for a new run."""
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.clean_partials(run_dir)
    newest = checkpoints.latest(run_dir, say=say)
    resumed_from = first_log = 0
    if newest is not None:
        saved = checkpoints.read_meta(newest)
        _check_same_run(saved, meta, run_dir)
        first_log = plan.log_after(saved["updates"])
        # The optimiser, built with the model, takes its saved slots and update count too.
        core.load_weights(newest / checkpoints.WEIGHTS)
        checkpoints.restore_random_state(core, saved.get("random_state", {}))
        resumed_from = saved["epoch"]
        within = saved["updates"] - resumed_from * plan.updates_per_epoch
        where = f"epoch {resumed_from}" + (f" and {within} updates into the next" if within else "")
        say(f"resuming {run_dir} from {newest.name}: after {where} (weight update "
            f"{saved['updates']}); the learning-rate schedule, the data stream and the metrics "
            f"log continue from there.")
    if chief:
        (run_dir / "run.json").write_text(json.dumps(meta, indent=1))
    return resumed_from, first_log


def _check_same_run(saved: dict, meta: dict, run_dir) -> None:
    keys = ("spec", "image_size", "class_names", "updates_per_epoch", "gradient_accumulation")
    changed = [k for k in keys if json.loads(json.dumps(saved.get(k))) != json.loads(json.dumps(meta[k]))]
    if changed:
        raise ValueError(f"{run_dir} holds a run with different {', '.join(changed)}; resuming it "
                         f"would mix two runs. Use another --checkpoint-dir, or delete that one.")


def _callbacks(case, run_dir: Path, meta: dict, plan: RunPlan, chief: bool, core, model,
               train_data, resumed_from: int, validator, keep_checkpoints: int, say):
    """(the stop request, the NaN guard, the checkpoint writer, every callback of the run);
    ``validator`` (see :func:`_validator`): validate with it at every epoch's checkpoint."""
    stop, guard = StopRequest(say), NanGuard(run_dir)
    saver = CheckpointWithAverage(run_dir, meta, plan, case.weight_avg_exp, guard, chief,
                                  saved_model=core if core is not model else None,
                                  keep=max(2, case.weight_avg_n + 1),
                                  keep_within_epoch=keep_checkpoints, stop=stop)
    average = run_dir / checkpoints.AVERAGE
    if resumed_from and (average / checkpoints.WEIGHTS).is_file():
        reason = checkpoints.damage(average)
        if reason:
            say(f"warning: the weight average {average} is damaged ({reason}): it starts again "
                f"from the resumed weights.")
        else:
            saver.resume_average(checkpoints.load_model(average)[0])
    callbacks = [stop, guard]
    if validator and train_data.num_examples is not None:  # synthetic data has none
        callbacks.append(EpochValidation(lambda: validator()(core.get_weights()), plan.epoch_at,
                                         guard))
    callbacks += [MetricsLog(run_dir, guard, chief, say, data=train_data), saver]
    if chief:  # other workers train the same weights and write nothing
        callbacks += [keras.callbacks.CSVLogger(str(run_dir / "metrics.csv"), append=True),
                      keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False)]
    return stop, guard, saver, callbacks


def _fit(model, train_data, plan: RunPlan, strategy, callbacks, first_log: int, soft: bool,
         progress, stop: StopRequest) -> list:
    """Train from log ``first_log`` to the end (or to a stop request); one dict of logs per log."""
    if first_log >= plan.total_logs:
        return []
    with stop_on_signals(stop):
        return _fit_logs(model, train_data, plan, strategy, callbacks, first_log, soft, progress)


def _fit_logs(model, train_data, plan: RunPlan, strategy, callbacks, first_log: int, soft: bool,
              progress) -> list:
    if needs_own_loop(strategy):  # several replicas: the kit's loop, not Keras's fit
        return fit_across_replicas(model, train_data.dataset, strategy, total_logs=plan.total_logs,
                                  initial_log=first_log, updates_per_log=plan.updates_per_log,
                                  accumulation=plan.layout.accumulation, callbacks=callbacks,
                                  soft=soft,
                                  top_k=min(5, train_data.num_classes), progress=progress)
    fit = model.fit(train_data.dataset, epochs=plan.total_logs, initial_epoch=first_log,
                    steps_per_epoch=plan.micro_steps_per_log, callbacks=callbacks,
                    verbose=1 if progress else 0, shuffle=False)
    return [dict(zip(fit.history, values)) for values in zip(*fit.history.values())]


def _validator(case, spec, data: str, class_names):
    """A function giving the run's :class:`Validator` (the case's size and precision), made at
    its first call and kept: the validation of every epoch and the final one share its data
    set, model and compiled step."""
    @cache
    def made() -> Validator:
        with dtype_policy(case.precision):
            return Validator(spec, data, case.image_size, class_names=class_names,
                             batch_size=max(case.micro_batch_size, 32))

    return made


def _final_validation(core, validator, case, run_dir: Path, chief: bool) -> dict:
    """Validation of the final weights and of the weight averages, saved as validation.json."""
    if chief and case.weight_avg_n:
        checkpoints.write_mean_of_last_epochs(run_dir, case.weight_avg_n)
    result = validator()(core.get_weights())
    averages = {"average": run_dir / checkpoints.AVERAGE}
    if case.weight_avg_n:
        averages["mean_of_last_epochs"] = run_dir / checkpoints.mean_folder_name(case.weight_avg_n)
    for key, folder in averages.items():
        if (folder / checkpoints.WEIGHTS).is_file() and not checkpoints.damage(folder):
            result[key] = validator()(folder)
    if chief:
        (run_dir / "validation.json").write_text(json.dumps(result, indent=1))
    return result


def _newest_meta(run_dir) -> dict:
    newest = checkpoints.latest(run_dir)
    return checkpoints.read_meta(newest) if newest else {}
