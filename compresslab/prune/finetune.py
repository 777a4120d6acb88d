"""Pruning while training: tfmot schedules, :func:`finetune`, and fine-tuning that holds zeros."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._keras import keras, tf, tfmot
from ..data import Dataset
from ..models import check_model_fits, clone, compile_for_classification, train
from .masks import (
    _check_m_by_n_layers,
    _kernel_of,
    positive_zeros,
    prunable_layers,
    pruning_report,
    zero_masks,
)
from .oneshot import _masks_for_spec
from .spec import SCHEDULES, SCOPES, PruneSpec


@dataclass(frozen=True)
class _SchedulePlan:
    total_steps: int
    begin_step: int
    end_step: int
    frequency: int


def _plan_schedule(total_steps: int, schedule: str, begin_step: int, end_step: int | None,
                   frequency: int | None) -> _SchedulePlan:
    if frequency is None:
        frequency = max(1, min(100, total_steps // 20))
    if int(frequency) < 1:
        raise ValueError(f"frequency is {frequency}; it must be at least 1 step")
    frequency = int(frequency)
    if begin_step < 0 or begin_step >= total_steps:
        raise ValueError(f"begin_step is {begin_step}; it must be in [0, {total_steps}) (the training steps)")
    if end_step is None:
        # Reach the final sparsity after ~70% of the steps, leaving the rest to recover accuracy
        # with the final mask. Aligned to the pruning frequency so the last update lands on it.
        span = max(frequency, int(0.7 * (total_steps - begin_step)) // frequency * frequency)
        end_step = begin_step + span
    if schedule == "polynomial" and not begin_step < end_step:
        raise ValueError(f"end_step ({end_step}) must be after begin_step ({begin_step})")
    return _SchedulePlan(int(total_steps), int(begin_step), int(end_step), frequency)


def _make_schedule(schedule: str, initial_sparsity: float, final_sparsity: float, plan: _SchedulePlan):
    sparsity = tfmot().sparsity.keras
    if schedule == "constant":
        return sparsity.ConstantSparsity(final_sparsity, begin_step=plan.begin_step, end_step=-1,
                                         frequency=plan.frequency)
    return sparsity.PolynomialDecay(initial_sparsity=min(initial_sparsity, final_sparsity),
                                    final_sparsity=final_sparsity, begin_step=plan.begin_step,
                                    end_step=plan.end_step, power=3, frequency=plan.frequency)


def schedule_curve(*, final_sparsity: float, total_steps: int, schedule: str = "polynomial",
                   initial_sparsity: float = 0.0, begin_step: int = 0, end_step: int | None = None,
                   frequency: int | None = None):
    """The sparsity a tfmot schedule applies at each training step, as a DataFrame (step, sparsity).

    Evaluated by calling the same tfmot schedule object :func:`finetune` uses, at each pruning
    step; between pruning steps the mask (and its sparsity) is held.

    Example:
        >>> schedule_curve(final_sparsity=0.8, total_steps=1000).tail(1)
    """
    import pandas as pd

    _check_schedule_args(final_sparsity, initial_sparsity, schedule)
    if int(total_steps) < 1:
        raise ValueError(f"total_steps is {total_steps}; it must be at least 1")
    plan = _plan_schedule(int(total_steps), schedule, int(begin_step), end_step, frequency)
    pruning_schedule = _make_schedule(schedule, initial_sparsity, final_sparsity, plan)
    steps, values, current = [], [], 0.0
    for step in range(plan.total_steps + 1):
        on_turn = (step - plan.begin_step) % plan.frequency == 0 and step >= plan.begin_step
        in_range = plan.end_step == -1 or schedule == "constant" or step <= plan.end_step
        if on_turn and in_range:
            should_prune, value = pruning_schedule(tf.constant(step, tf.int64))
            if bool(should_prune):
                current = float(value)
        steps.append(step)
        values.append(current)
    return pd.DataFrame({"step": steps, "sparsity": values, "schedule": schedule})


def _check_schedule_args(final_sparsity, initial_sparsity, schedule) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule is {schedule!r}; allowed: 'polynomial', 'constant'")
    for name, value in (("final_sparsity", final_sparsity), ("initial_sparsity", initial_sparsity)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"{name} is {value!r}; it must be a number in [0, 1)")


def global_layer_targets(model, sparsity: float, layers=None) -> dict[str, float]:
    """Per-layer sparsities that global magnitude pruning at ``sparsity`` gives this model now.

    Used by :func:`finetune` with ``scope="global"``: tfmot prunes layer by layer, so the global
    ranking is done once on the starting weights and each layer then follows its own schedule
    to its share.
    """
    chosen = prunable_layers(model, layers)
    masks = _masks_for_spec(chosen, PruneSpec(sparsity=sparsity, scope="global"))
    return {layer.name: float(1.0 - masks[_kernel_of(layer).name].mean()) for layer in chosen}


def _reached(layer, target: float) -> bool:
    """False when tfmot wrapped ``layer`` but left its kernel dense (it does so for DepthwiseConv2D)."""
    if target <= 0:
        return True
    kernel = _kernel_of(layer)
    return kernel is not None and float(np.mean(kernel.numpy() == 0)) >= target / 2


def finetune(model, data: Dataset, *, final_sparsity: float, schedule: str = "polynomial", epochs: int = 2,
             initial_sparsity: float = 0.0, scope: str = "layer", layers=None, structure: str = "unstructured",
             begin_step: int = 0, end_step: int | None = None, frequency: int | None = None,
             batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0, progress=False,
             callbacks: list | None = None):
    """Prune while training with tfmot, then strip the wrappers: a NEW, sparse, plain Keras model.

    Each chosen layer is wrapped with ``prune_low_magnitude``; ``UpdatePruningStep`` advances the
    schedule and re-applies the mask after every step, so weights outside the mask stay zero
    during fine-tuning (the optimizer's update to a masked weight is undone before the next
    forward pass and at each epoch end); ``strip_pruning`` leaves the zeros in plain kernels.

    Args:
        model: a trained tf_keras model (not modified).
        data: its data set (training split used; test split held out).
        final_sparsity: sparsity reached at ``end_step`` (ignored for 2:4, which is 0.5).
        schedule: ``"polynomial"`` (tfmot PolynomialDecay, power 3: prunes fast early, gently
            late) or ``"constant"`` (the final sparsity from ``begin_step`` on).
        epochs: fine-tuning epochs (>= 1).
        initial_sparsity: polynomial schedule's starting sparsity.
        scope: ``"layer"`` (each layer to ``final_sparsity``) or ``"global"`` (per-layer shares
            from a global magnitude ranking of the starting weights; see :func:`global_layer_targets`).
        layers: names of the layers to prune (default: all prunable).
        structure: ``"unstructured"`` or ``"2:4"`` (tfmot ``sparsity_m_by_n=(2, 4)``; the mask is set
            at step 1 and held).
        begin_step, end_step, frequency: schedule steps (defaults: start at 0, reach the final
            sparsity after about 70% of the steps, update the mask about 20 times).
        batch_size, seed: training settings.
        learning_rate: Adam's rate (default 1e-3, Keras's own default and the tfmot pruning guide's;
            the old 1e-4 lost 0.5 points more than the guide on a user's Keras 3 CNN, issue 11;
            bench/bench_models.py measures this default on six such models).
        progress: True for a bar, False for none, or ``callable(epoch, logs)``.
        callbacks: extra Keras callbacks (run after ``UpdatePruningStep``).

    Returns:
        A new compiled model; ``model.compresslab_info`` holds the schedule plan and layer targets,
        ``model.pruning`` the pruned and skipped layers and both sparsity figures.

    Raises:
        ValueError: bad settings, a missing layer, or 2:4 on a layer whose input size is not a
            multiple of 4 (all checked before training).

    Example:
        >>> sparse = finetune(model, data, final_sparsity=0.8, epochs=2)
    """
    _check_schedule_args(final_sparsity, initial_sparsity, schedule)
    if scope not in SCOPES:
        raise ValueError(f"scope is {scope!r}; allowed: 'layer', 'global'")
    if structure not in ("unstructured", "2:4"):
        raise ValueError(f"structure is {structure!r}; finetune supports 'unstructured' and '2:4' "
                         "(use filter_pruning(..., finetune_epochs=) for filters)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs is {epochs!r}; it must be an integer >= 1")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size is {batch_size}; it must be at least 1")
    model = check_model_fits(model, data)
    layer_names = None if layers is None else tuple(layers)
    PruneSpec(sparsity=final_sparsity, layers=layer_names)  # validates the layer list form
    chosen = prunable_layers(model, layer_names)
    if structure == "2:4":
        chosen = _check_m_by_n_layers(chosen, explicit=layer_names is not None)
    steps_per_epoch = math.ceil(len(data.x_train) / int(batch_size))
    plan = _plan_schedule(steps_per_epoch * epochs, schedule, int(begin_step), end_step, frequency)
    if scope == "global" and structure == "unstructured":
        targets = global_layer_targets(model, final_sparsity, [layer.name for layer in chosen])
    else:
        targets = {layer.name: (0.5 if structure == "2:4" else float(final_sparsity)) for layer in chosen}

    sparsity_api = tfmot().sparsity.keras
    start = clone(model)

    def wrap(layer):
        target = targets.get(layer.name)
        if target is None or (target == 0.0 and structure == "unstructured"):
            return layer.__class__.from_config(layer.get_config())
        params = {"pruning_schedule": _make_schedule(schedule, initial_sparsity, target, plan)}
        if structure == "2:4":
            params["sparsity_m_by_n"] = (2, 4)
        return sparsity_api.prune_low_magnitude(layer, **params)

    wrapped = keras.models.clone_model(start, clone_function=wrap)
    # clone_model builds fresh variables: copy the trained weights layer by layer.
    for layer in wrapped.layers:
        source = start.get_layer(_unwrapped_name(layer))
        inner = getattr(layer, "layer", layer)
        inner.set_weights(source.get_weights())
    all_callbacks = [sparsity_api.UpdatePruningStep()] + list(callbacks or [])
    train(wrapped, data, epochs=epochs, batch_size=batch_size, seed=seed, learning_rate=learning_rate,
          progress=progress, callbacks=all_callbacks)
    stripped = sparsity_api.strip_pruning(wrapped)
    result = clone(stripped)  # a plain model with its own variables, named like the input
    positive_zeros(result)  # tfmot's masks multiply: store its -0.0 as +0.0 (smaller compressed files)
    compile_for_classification(result)
    pruned = [layer.name for layer in chosen if _reached(result.get_layer(layer.name), targets.get(layer.name, 0.0))]
    missed = {layer.name for layer in chosen} - set(pruned)
    result.pruning = pruning_report(result, pruned, missed)
    result.compresslab_info = {
        "schedule": schedule, "final_sparsity": float(final_sparsity), "scope": scope, "structure": structure,
        "total_steps": plan.total_steps, "begin_step": plan.begin_step, "end_step": plan.end_step,
        "frequency": plan.frequency, "layer_targets": targets,
    }
    return result


def _unwrapped_name(layer) -> str:
    inner = getattr(layer, "layer", None)
    return inner.name if inner is not None and isinstance(layer, keras.layers.Wrapper) else layer.name


# ---------------------------------------------------------------------------------------------
# Fine-tuning an already pruned model with its zeros held


class HoldZeros(keras.callbacks.Callback):
    """Re-applies the keep-masks after every training step, so pruned weights stay exactly zero.

    Adam moves a zeroed weight off zero in one step (its update depends on the gradient, not on the
    weight), so the mask must be re-applied after each step, not only at the end.

    Args:
        masks: ``(variable, keep)`` pairs; ``keep`` is 1 where the weight may train, 0 where it
            must stay zero (see :func:`compresslab.prune.masks.zero_masks`).
    """

    def __init__(self, masks: list):
        super().__init__()
        self.masks = list(masks)

    def on_train_batch_end(self, batch, logs=None):
        self.hold()

    def hold(self) -> None:
        """Re-apply every mask now."""
        for variable, keep in self.masks:
            # where(), not variable * keep: a product leaves -0.0 for zeroed negative weights, and
            # -0.0 costs file size (see masks.positive_zeros).
            variable.assign(tf.where(keep != 0, variable, tf.zeros_like(variable)))


def finetune_holding_zeros(model, data: Dataset, *, epochs: int, learning_rate: float, batch_size: int = 64,
                           seed: int = 0, progress=False):
    """Train an already pruned model with every zero kernel weight held at zero: a NEW model.

    Use it after one-shot pruning (:func:`to_sparsity`, :func:`to_layer_sparsities`, ...) to recover
    accuracy without losing sparsity. Every kernel (Conv, Dense, DepthwiseConv2D, SeparableConv
    pointwise) holding at least one zero gets a keep-mask; the mask is re-applied after every
    training step and once more at the end. Biases and kernels without zeros train freely.

    Args:
        model: a tf_keras model with zeros in its kernels (not modified).
        data: its data set (training split used).
        epochs: fine-tuning epochs (>= 1).
        learning_rate: Adam learning rate.
        batch_size: images per step.
        seed: seeds the shuffling.
        progress: True for a bar, False for none, or ``callable(epoch, logs)``.

    Returns:
        A new compiled model whose zero kernel weights are exactly those of ``model`` (or more,
        never fewer).

    Raises:
        ValueError: bad epochs, learning rate or batch size, or a model that does not fit ``data``.

    Example:
        >>> tuned = finetune_holding_zeros(to_sparsity(model, 0.8), data, epochs=1, learning_rate=1e-4)
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs is {epochs!r}; it must be an integer >= 1")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
            or not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate is {learning_rate!r}; it must be a finite number > 0")
    model = check_model_fits(model, data)
    result = clone(model)
    holder = HoldZeros([(variable, keep) for _, _, variable, keep in zero_masks(result)])
    train(result, data, epochs=epochs, batch_size=batch_size, seed=seed, learning_rate=learning_rate,
          progress=progress, callbacks=[holder])
    holder.hold()  # the last step's update is already masked; this makes it certain
    return result
