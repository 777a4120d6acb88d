"""Benchmark: how many pruning epochs the Deep Compression recipe needs, judged on the VALIDATION split.

For each corpus model (bench/_corpus.py, trained exactly as in bench_models.py), runs the default
Deep Compression recipe with each ``prune_epochs`` value given and measures the decoded model on the
6,000-image validation split (never on test): accuracy, its drop from the input model, the paired
standard error of that drop (image by image against the input), and the file's bytes. This is the run
that chose the recipe's default ``prune_epochs`` (README, "Your model"); the test split is left for
bench_models.py to report once.

    python bench/bench_dc_epochs.py [--models a,b] [--prune-epochs 2,4,6] [--quick]
"""

from __future__ import annotations

import os
import time

import numpy as np
from _common import emit, log, machine, parse_args


def extra_arguments(parser) -> None:
    parser.add_argument("--models", default=None, help="comma-separated corpus names (default: all)")
    parser.add_argument("--prune-epochs", default="2,4,6", help="comma-separated prune_epochs values")
    parser.add_argument("--epochs", type=int, default=3, help="Keras 3 training epochs of each corpus model")


def main() -> None:
    args = parse_args(__doc__, extra_arguments)
    import _corpus as corpus

    import compresslab as cl
    from compresslab.data import Dataset
    from compresslab.pipeline.search import drop_standard_error  # autocompress's own paired error

    load_start = os.getloadavg()
    started = time.perf_counter()
    data = cl.load_dataset("mnist", data_dir=args.data_dir, validation=0.1, seed=0)
    names = args.models.split(",") if args.models else list(corpus.CORPUS)
    epochs_list = [int(value) for value in args.prune_epochs.split(",")]
    if args.quick:
        data = data.subset(train=3000, validation=500, test=1000, seed=0)
        args.epochs, names, epochs_list = 1, names[:1], [1, 2]
    # Every stage record of run_pipeline is measured on the data set's test split: hand it the
    # validation split in that place, so nothing here ever sees the real test images.
    on_validation = Dataset(data.x_train, data.y_train, data.x_val, data.y_val, data.class_names,
                            name=f"{data.name} (validation split in the test slot)")

    def correct(model) -> np.ndarray:
        scores = model.predict(data.x_val, batch_size=512, verbose=0)
        return (np.argmax(scores, axis=1) == data.y_val).astype(np.float64)

    rows = {}
    for name in names:
        log(f"== {name}")
        user_model = corpus.train_keras3(name, data, epochs=args.epochs)
        reference = correct(cl.modelio.as_tf_keras(user_model))
        row = {"input_validation_accuracy": float(reference.mean())}
        for prune_epochs in epochs_list:
            began = time.perf_counter()
            result = cl.run_pipeline(user_model, on_validation,
                                     cl.pipeline.deep_compression_recipe(prune_epochs=prune_epochs),
                                     name=f"{name} prune_epochs={prune_epochs}")
            compressed = correct(result.model)
            drop = reference - compressed
            row[f"prune_epochs_{prune_epochs}"] = {
                "validation_accuracy": float(result.final.accuracy),
                "after_pruning_stage": float(result.records[1].accuracy),
                "drop_points": round(100 * float(drop.mean()), 2),
                "drop_se_points": round(100 * drop_standard_error(reference, compressed), 2),
                "bytes": result.final.extra.get("compressed_bytes"),
                "seconds": round(time.perf_counter() - began, 1)}
            log(f"  prune_epochs={prune_epochs}: {row[f'prune_epochs_{prune_epochs}']}")
        rows[name] = row
    emit("dc_epochs" if not args.quick else "dc_epochs-quick", {
        "benchmark": "bench_dc_epochs",
        "data": data.describe(),
        "protocol": ("default Deep Compression recipe at each prune_epochs; every accuracy on the VALIDATION "
                     "split; drop = input minus compressed, paired standard error over the validation images"),
        "models": rows,
        "machine": {**machine(), "load_at_start": load_start, "load_at_end": os.getloadavg()},
        "seconds": round(time.perf_counter() - started, 1),
    }, args.out)


if __name__ == "__main__":
    main()
