"""Post-training quantization: a float model converted to a TFLite file (dynamic, float16 or int8).

Owns :func:`post_training` and the representative-image sample full-integer conversion calibrates on.
"""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..models import check_model_fits
from ..tflite import TFLiteArtifact, convert
from .simulate import _chosen_layers
from .spec import PTQ_MODES, _check_data, _check_model

# ---------------------------------------------------------------------------------------------
# Post-training quantization


def _representative(data: Dataset, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    index = rng.choice(len(data.x_train), size=min(int(count), len(data.x_train)), replace=False)
    return data.x_train[np.sort(index)]


def post_training(model, data: Dataset, mode: str = "dynamic", *, representative_images: int = 300,
                  seed: int = 0, name: str | None = None, **lowbit_options) -> TFLiteArtifact:
    """Post-training quantization with the TFLite converter, or with ai-edge-quantizer for low bits.

    * ``"dynamic"``: int8 weights, float activations (quantized on the fly at run time);
    * ``"float16"``: float16 weights (about half the float32 file);
    * ``"int8"``: full-integer: int8 weights and activations, int8 input and output; activation
      ranges are calibrated on ``representative_images`` images drawn from the TRAINING split
      (the test split stays held out);
    * any mode of :data:`compresslab.lowbit.MODES` (``"int4_weight_only"``, ``"int4_dynamic"``,
      ``"int2_dynamic"``, ``"int8_static"``, ...): a real low-bit file written by ai-edge-quantizer
      through :func:`compresslab.lowbit.post_training_lowbit`; ``granularity``, ``block_size``,
      ``keep_int8`` and ``keep_float`` pass through to :class:`~compresslab.lowbit.LowBitSpec`.

    Args:
        model: a tf_keras model (not modified).
        data: the data set (its training split calibrates int8).
        mode: ``"dynamic"``, ``"float16"``, ``"int8"`` or a low-bit mode.
        representative_images: calibration images for ``"int8"`` and the static low-bit modes.
        seed: picks the calibration images.
        name: label of the artifact (default ``"<model> ptq-<mode>"``).
        **lowbit_options: the other fields of a LowBitSpec, for the low-bit modes only.

    Returns:
        A :class:`~compresslab.tflite.TFLiteArtifact`; measure it with ``cl.measure(artifact, data, ...)``
        (accuracy from LiteRT).

    Raises:
        ValueError: unknown mode, a model that does not fit the data or has no weights to quantize.

    Example:
        >>> artifact = post_training(model, data, "int8")
        >>> artifact.accuracy(data), artifact.size_bytes
    """
    from ..lowbit import MODES as LOWBIT_MODES
    from ..lowbit import LowBitSpec, post_training_lowbit

    if mode in LOWBIT_MODES:
        return post_training_lowbit(model, data, LowBitSpec(mode, **lowbit_options),
                                    representative_images=representative_images, seed=seed,
                                    name=name or f"{getattr(model, 'name', 'model')} ptq-{mode}")
    model = _check_model(model)
    _check_data(data)
    if mode not in PTQ_MODES:
        raise ValueError(f"mode is {mode!r}; choose one of {', '.join(PTQ_MODES)} (TFLite converter) or "
                         f"{', '.join(LOWBIT_MODES)} (ai-edge-quantizer)")
    if lowbit_options:
        raise TypeError(f"post_training got {sorted(lowbit_options)}, which only the low-bit modes "
                        f"({', '.join(LOWBIT_MODES)}) take")
    check_model_fits(model, data)
    _chosen_layers(model, None)
    if int(representative_images) < 1:
        raise ValueError(f"representative_images is {representative_images}; it must be at least 1")
    info = {"technique": "post_training", "ptq_mode": mode, "bits": 16 if mode == "float16" else 8}
    representative = None
    if mode == "int8":
        representative = _representative(data, representative_images, seed)
        info.update(representative_images=len(representative), representative_split="train", int8_io=True)
    return convert(model, mode, representative=representative, int8_io=True,
                   name=name or f"{model.name} ptq-{mode}", info=info)

