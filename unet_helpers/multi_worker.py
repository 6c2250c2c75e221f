"""Training on several machines: ``tf.distribute.MultiWorkerMirroredStrategy``, with a loop of its own.

Keras 3's ``Model.fit`` fails under that strategy before its first step (keras-team/keras issue 20585, open
at Keras 3.15.1; ``tests/test_multi_worker.py`` checks that it still does). TensorFlow's own engine does work
there, so :func:`fit` trains with it in a custom loop, and ``training.train_unet`` uses :func:`fit` under that
strategy only (one machine keeps ``model.fit``). Every machine runs the same command; ``TF_CONFIG`` says which
worker it is (``devices.make_strategy("multi-worker")``; the launch is in docs/multi_worker.md).

What :func:`fit` does as ``fit`` does, and how:

- **the step**: each worker takes its share of every batch, computes the compiled loss per image and the
  gradients of their sum over the whole (global) batch (``tf.nn.compute_average_loss``), and Keras's
  optimizer sums the gradients of all workers (TensorFlow's collective all-reduce) before one update: the
  same update as one machine makes on the whole batch, up to the order of float32 additions;
- **the data**: each worker reads the batches of the same dataset and keeps its own part of each
  (``AutoShardPolicy.DATA``), so the datasets must give the same batches on every worker (a fixed shuffling
  seed, as ``data.load_splits`` uses). Every worker reads every image: the data must be on each machine;
- **the scores**: the compiled metrics (deserialised from the model's compile config) and the mean loss
  per image are summed over the workers before they are read, so ``loss``, ``val_dice`` ... are those of
  one machine seeing all the data;
- **callbacks**: the chief (worker 0) runs the callbacks of ``training.make_callbacks`` (checkpoint, learning
  rate on a plateau, early stopping, history, backup, time limit) with each epoch's logs, as ``fit`` calls
  them, and alone writes the run folder; after each epoch it tells the other workers whether to stop and
  the learning rate to use, and at the start it gives them its weights, optimizer state and first epoch
  (a resumed run's). The other workers write nothing.

Creating a variable and every all-reduce are collective: each worker must run them in the same order, so
every worker builds the model and its optimizer the same way (:func:`built_model`) and the chief's
decisions reach the others through all-reduces at fixed points (:func:`agree_to_start`, :func:`fit`).

**A worker that stops** (killed, its machine gone) makes the next collective of the others fail: at once when
its connections close (1.5 s measured with two workers on one machine), else when TensorFlow's coordination
service misses its heartbeats (about 10 s). Each stops with a one-line
:class:`~unet_helpers.errors.UnetTutorialError` that says from which epoch the same commands resume.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from unet_helpers import devices
from unet_helpers.errors import TrainingInterrupted, UnetTutorialError

# What a collective raises on the workers left when one has gone: its connection refused or cut
# (Unavailable), TensorFlow's health check aborting the collectives (Unavailable, Internal), the pending
# operations cancelled or aborted with them, a timeout.
PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
    tf.errors.AbortedError,
    tf.errors.InternalError,
)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` trains on several machines (``MultiWorkerMirroredStrategy``)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run: always on one machine; on several, only the chief (worker 0)."""
    return strategy.extended.should_checkpoint


def _this_worker(strategy: tf.distribute.Strategy) -> str:
    """ "worker 1 of 2": this process, for messages."""
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id} of {devices.worker_count(strategy)}"


def _from_chief(strategy: tf.distribute.Strategy, values: list[tf.Tensor]) -> list[tf.Tensor]:
    """``values`` as the chief holds them, on every worker.

    An all-reduce (a sum) to which only replica 0, the chief's first device, adds its values and every
    other replica zeros: TensorFlow's own collective, run by every worker at the same point.
    """

    def on_replica(*local: tf.Tensor) -> list[tf.Tensor]:
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        # One all-reduce each: a list would be packed into one tensor, which its mixed dtypes cannot be.
        return [
            context.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(first, value, tf.zeros_like(value)))
            for value in local
        ]

    reduced = tf.function(lambda *values: strategy.run(on_replica, args=values))(*values)
    return [strategy.experimental_local_results(value)[0] for value in reduced]


def _worker_stopped(strategy: tf.distribute.Strategy, error: tf.errors.OpError, saved: int | None) -> str:
    """The one-line message for a collective that failed because another worker stopped.

    ``saved``: epochs this process saw saved when it failed (the chief saves each epoch before it tells
    the others to go on), or None before training began.
    """
    detail = re.sub(r"\{\{.*?\}\}|\[Op:.*?\]", "", error.message).strip().splitlines() or [""]
    cause = f"{type(error).__name__}: {detail[0][:120]}"
    if saved is None:
        return (
            f"{_this_worker(strategy)}: another worker stopped before training began ({cause}); "
            "run the same command on every machine again."
        )
    kept = f"epochs 1 to {saved} are saved" if saved else "no epoch had finished"
    return (
        f"{_this_worker(strategy)}: another worker stopped during epoch {saved + 1} ({cause}); training "
        f"ended on every worker and {kept}: run the same commands on every machine again to resume from "
        f"epoch {saved + 1}."
    )


@contextlib.contextmanager
def _stop_if_a_worker_stops(
    strategy: tf.distribute.Strategy, saved: Callable[[], int | None]
) -> Iterator[None]:
    """Turn the error of a collective whose peer has gone into a one-line UnetTutorialError."""
    try:
        yield
    except PEER_ERRORS as error:
        if not is_multi_worker(strategy):
            raise
        raise UnetTutorialError(_worker_stopped(strategy, error, saved())) from None


def _fingerprint(settings: Mapping[str, Any]) -> int:
    """A 56-bit number for a run's settings but the dataset's folder (its path may differ per machine)."""
    text = json.dumps(
        {key: value for key, value in settings.items() if key != "data"}, sort_keys=True, default=str
    )
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def agree_to_start(strategy: tf.distribute.Strategy, settings: Mapping[str, Any], *, train: bool) -> bool:
    """Whether to train, as the chief decides, after checking that this worker has the chief's settings.

    On one machine, ``train``. On several, every worker calls it once, before it builds the model: the chief
    with ``train`` False when its run folder has nothing left to train (the others then return too).

    Raises:
        UnetTutorialError: this worker's ``settings`` (sizes, batch size, epochs, ...: those run.json
            records; the dataset's folder excepted) differ from the chief's, or another worker stopped.
    """
    if not is_multi_worker(strategy):
        return train
    fingerprint = _fingerprint(settings)
    with _stop_if_a_worker_stops(strategy, saved=lambda: None):
        (agreed,) = _from_chief(strategy, [tf.constant([fingerprint, int(train)], tf.int64)])
    chief_fingerprint, chief_trains = (int(value) for value in agreed.numpy())
    if chief_fingerprint != fingerprint:
        raise UnetTutorialError(
            f"{_this_worker(strategy)} was started with other settings than the chief (worker 0): run the "
            "same command, with the same options, on every machine."
        )
    return bool(chief_trains)


def built_model(strategy: tf.distribute.Strategy, new_model: Callable[[], keras.Model]) -> keras.Model:
    """``new_model()`` (a compiled model, built in ``strategy``'s scope) with its optimizer's variables built.

    Every variable exists afterwards, so that loading a backup creates none: creating a variable is
    collective under ``MultiWorkerMirroredStrategy``, and only the chief loads.
    """
    with _stop_if_a_worker_stops(strategy, saved=lambda: None):
        model = new_model()
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
    return model


# --- the steps -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Steps:
    """A model's training and validation steps (``tf.function`` of a distributed batch) and their scores.

    ``scores``: a mean of the per-image loss (``loss``), then the compiled metrics (``dice``, ...), summed
    over every worker when ``results`` reads them.
    """

    train: Callable[[Any], None]
    test: Callable[[Any], None]
    results: Callable[[], dict[str, tf.Tensor]]
    scores: list[keras.metrics.Metric]

    def reset(self) -> None:
        for score in self.scores:
            score.reset_state()

    def read(self) -> dict[str, float]:
        """The scores since the last reset, reduced over every worker, as floats."""
        return {name: float(value) for name, value in self.results().items()}


def _gradients(
    model: keras.Model,
    per_image_loss: keras.losses.Loss,
    x: tf.Tensor,
    y: tf.Tensor,
    weights: Any,
    images: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
    """(predictions, the loss of each image (B,), this worker's gradients of the batch's mean loss).

    ``x`` (B, H, W, C) and ``y`` (B, H, W, 1) are this replica's part of a batch of ``images`` images in all:
    the loss is summed here and divided by ``images``, so that the gradients summed over the replicas are
    those of the whole batch's mean (the optimizer's loss scale applied, under mixed precision).
    """
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        losses = per_image_loss(y, y_pred, sample_weight=weights)
        loss = tf.nn.compute_average_loss(losses, global_batch_size=images)
        scaled = model.optimizer.scale_loss(loss)
    return y_pred, losses, tape.gradient(scaled, model.trainable_variables)


def _steps(model: keras.Model) -> _Steps:
    """The distributed steps of a compiled ``model``, with its compiled loss (per image) and metrics."""
    strategy, compiled = model.distribute_strategy, model.get_compile_config()
    per_image_loss = keras.losses.deserialize(compiled["loss"])
    per_image_loss.reduction = None  # one value per image: _gradients averages them over the whole batch
    with strategy.scope():  # metric variables sum over replicas when read
        scores = [keras.metrics.Mean(name="loss")]
        scores += [keras.metrics.deserialize(metric) for metric in compiled["metrics"]]
    gradients = tf.function(
        functools.partial(_gradients, model, per_image_loss), jit_compile=model.jit_compile
    )

    def update(y: tf.Tensor, y_pred: tf.Tensor, losses: tf.Tensor, weights: Any) -> None:
        scores[0].update_state(losses)
        for metric in scores[1:]:
            metric.update_state(y, y_pred, sample_weight=weights)

    def learn(x: tf.Tensor, y: tf.Tensor, weights: Any, images: tf.Tensor) -> list[tf.Tensor]:
        y_pred, losses, grads = gradients(x, y, weights, images)
        update(y, y_pred, losses, weights)
        return grads

    def score(x: tf.Tensor, y: tf.Tensor, weights: Any) -> None:
        y_pred = model(x, training=False)
        update(y, y_pred, per_image_loss(y, y_pred, sample_weight=weights), weights)

    # A batch of fewer images than replicas (an epoch's last) leaves some replicas none: a convolution
    # fails on an empty batch, so they skip the model (adding zero gradients and nothing to the scores).
    # The scores are updated inside the branch: fed constant empty predictions instead, TensorFlow 2.21's
    # graph optimizer dies (SIGFPE in its ArithmeticOptimizer) when it specialises the step to that shape.
    def train_on_replica(batch: Any) -> None:
        x, y, weights = keras.utils.unpack_x_y_sample_weight(batch)
        images = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.shape(x)[0])
        grads = tf.cond(
            tf.shape(x)[0] > 0,
            lambda: learn(x, y, weights, images),
            lambda: [tf.zeros_like(variable) for variable in model.trainable_variables],
        )
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    def test_on_replica(batch: Any) -> None:
        x, y, weights = keras.utils.unpack_x_y_sample_weight(batch)
        tf.cond(tf.shape(x)[0] > 0, lambda: score(x, y, weights), lambda: None)

    return _Steps(
        train=tf.function(lambda batch: strategy.run(train_on_replica, args=(batch,))),
        test=tf.function(lambda batch: strategy.run(test_on_replica, args=(batch,))),
        results=tf.function(lambda: {metric.name: metric.result() for metric in scores}),
        scores=scores,
    )


def _sharded(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> Any:
    """``dataset``'s batches split over the replicas: each worker keeps its part of every batch.

    Sharding by data, not by file: the pipelines read images through ``map``, which file sharding cannot
    split, and TensorFlow's automatic choice would warn before falling back to it.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


# --- the loop --------------------------------------------------------------------------------------------


def _share_state(strategy: tf.distribute.Strategy, model: keras.Model, initial_epoch: int) -> int:
    """Give every worker the chief's weights, optimizer state (learning rate included) and first epoch."""
    variables = [*model.variables, *model.optimizer.variables]
    first, *values = _from_chief(
        strategy, [tf.constant(initial_epoch, tf.int64), *(keras.ops.convert_to_tensor(v) for v in variables)]
    )
    with strategy.scope():
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
    return int(first)


def _chief_says_stop(strategy: tf.distribute.Strategy, model: keras.Model) -> bool:
    """After an epoch: the chief's callbacks' decision to stop, and their learning rate, on every worker."""
    learning_rate = keras.ops.convert_to_numpy(model.optimizer.learning_rate)
    decided = tf.constant([float(model.stop_training), learning_rate], tf.float64)
    (shared,) = _from_chief(strategy, [decided])
    stop, learning_rate = shared.numpy()
    model.optimizer.learning_rate = learning_rate
    model.stop_training = bool(stop)
    return model.stop_training


def _epoch(
    epoch: int, steps: _Steps, callbacks: keras.callbacks.CallbackList, train: Any, validation: Any
) -> dict:
    """Train one epoch and validate, calling the callbacks as ``fit`` does; the epoch's logs."""
    callbacks.on_epoch_begin(epoch)
    steps.reset()
    for step, batch in enumerate(train):
        callbacks.on_train_batch_begin(step)
        steps.train(batch)
        callbacks.on_train_batch_end(step)
    logs = steps.read()
    callbacks.on_test_begin()
    steps.reset()
    for batch in validation:
        steps.test(batch)
    validation_logs = steps.read()
    callbacks.on_test_end(validation_logs)
    logs |= {f"val_{name}": value for name, value in validation_logs.items()}
    callbacks.on_epoch_end(epoch, logs)
    return logs


def fit(
    model: keras.Model,
    *,
    x: tf.data.Dataset,
    validation_data: tf.data.Dataset,
    epochs: int,
    callbacks: list[keras.callbacks.Callback],
    initial_epoch: int = 0,
    verbose: str | int = "auto",
) -> dict[str, list[float]]:
    """``model.fit(x, validation_data=..., epochs=..., callbacks=...)`` for ``MultiWorkerMirroredStrategy``.

    Call it on every worker, with the same datasets (the same batches, in the same order) and ``epochs``;
    ``model`` compiled in the strategy's scope and its optimizer built (:func:`built_model`). The chief
    (worker 0) passes the callbacks and its ``initial_epoch`` (that of a resumed run), which the others
    receive; they pass no callbacks. Each epoch, after the chief's callbacks, every worker stops if the
    chief's set ``model.stop_training`` and takes the chief's learning rate. A Keras progress bar prints
    unless ``verbose`` is 0.

    Args:
        model: a compiled model whose loss gives one value per image when its reduction is None.
        x: training batches ``(images, masks)`` or ``(images, masks, weights)``; a batch of B images is
            split over the replicas of all workers (B is the global batch).
        validation_data: validation batches of the same kind.
        epochs: the epoch to train up to, counted from 0 as in ``fit``.
        callbacks: Keras callbacks (the chief's), called as ``fit`` calls them.
        initial_epoch: the first epoch to train (the chief's counts).
        verbose: 0 silent, 1 or ``"auto"`` a progress bar, 2 one line per epoch.

    Returns:
        Each score of this session's epochs, as ``history.csv`` would give them (``epoch`` from 0).

    Raises:
        UnetTutorialError: another worker stopped; the message says from which epoch to resume.
    """
    strategy, steps = model.distribute_strategy, _steps(model)
    train, validation = _sharded(strategy, x), _sharded(strategy, validation_data)
    verbose = 1 if verbose == "auto" else verbose
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_progbar=verbose != 0, model=model, verbose=verbose, epochs=epochs, steps=None
    )
    history: dict[str, list[float]] = {"epoch": []}
    saved = initial_epoch
    with _stop_if_a_worker_stops(strategy, saved=lambda: saved):
        model.stop_training = False
        callback_list.on_train_begin()
        saved = epoch = _share_state(strategy, model, initial_epoch)
        while epoch < epochs:
            logs = _epoch(epoch, steps, callback_list, train, validation)
            history["epoch"].append(epoch)
            for name, value in logs.items():
                history.setdefault(name, []).append(value)
            saved = epoch = epoch + 1
            if _chief_says_stop(strategy, model):
                break
        callback_list.on_train_end(logs if history["epoch"] else None)
    return history


def fit_function(model: keras.Model) -> Callable[..., Any]:
    """How to fit ``model``: ``model.fit`` on one machine, :func:`fit` under MultiWorkerMirroredStrategy."""
    if is_multi_worker(model.distribute_strategy):
        return functools.partial(fit, model)
    # shuffle=False: the dataset shuffles itself (Keras cannot shuffle a tf.data.Dataset, and warns).
    return functools.partial(model.fit, shuffle=False)


def follow_chief(
    strategy: tf.distribute.Strategy,
    new_model: Callable[[], keras.Model],
    *,
    settings: Mapping[str, Any],
    **fit_options: Any,
) -> dict[str, list[float]]:
    """Train as a worker other than the chief: build the model, then :func:`fit` it in step with the chief.

    It writes nothing: the chief's run folder holds the run. ``settings`` must be the chief's
    (:func:`agree_to_start`); ``fit_options`` are :func:`fit`'s ``x``, ``validation_data``, ``epochs`` and
    ``verbose``.

    Returns:
        This session's history (empty if the chief had nothing to train).
    """
    if not agree_to_start(strategy, settings, train=True):
        print(f"{_this_worker(strategy)}: the chief (worker 0) has nothing to train; see its output.")
        return {}
    print(
        f"{_this_worker(strategy)}: training in step with the chief (worker 0), which writes the run folder."
    )
    try:
        return fit(built_model(strategy, new_model), callbacks=[], **fit_options)
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"{_this_worker(strategy)} stopped by Ctrl-C, and the other workers stop with it: run the same "
            "commands on every machine again to resume after the last epoch the chief saved."
        ) from None
