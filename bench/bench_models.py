"""Benchmark: every technique, with compresslab's DEFAULTS, on Keras 3 CNNs nobody here tuned (bench/_corpus.py).

Each corpus model is defined and trained by plain Keras 3 (``model.fit``, Adam at Keras's default rate)
on real MNIST's training images less a seeded, stratified 10% validation split; the Keras 3 model
object is then handed to compresslab as it is (compresslab converts it once). Side by side, in the
same run and on the same model, the tfmot guides' own recipes:

* pruning guide: ``prune_low_magnitude`` on the whole model, PolynomialDecay 50% -> 80% over 2 epochs,
  Adam (default rate), batch 128; compresslab: ``prune.finetune(model, data, final_sparsity=0.8)``.
* clustering guide: ``cluster_weights`` on the whole model, 16 clusters, k-means++ centroids, 1 epoch
  at Adam 1e-5, batch 500; compresslab: ``cluster.cluster_weights(model, ClusterSpec(), data, epochs=1)``.
* int8 post-training quantization: ``quantize.post_training(model, data, "int8")`` in LiteRT against the
  float model.
* Deep Compression: ``run_pipeline(model, data, "deep_compression")`` (the default recipe); its file is
  compared with the model's dense float32 bytes (4 bytes a parameter). Where the default recipe does not
  reach 25x within 0.5 points, ``autocompress`` with a 0.5-point budget (chosen on the validation split)
  is run and its test figure reported.

Accuracies are on the 10,000 test images (nothing is chosen on them). Prints one JSON object and writes
bench/results/models.json.

    python bench/bench_models.py [--data-dir ../shared/data/mnist] [--quick] [--models a,b] [--no-autocompress]
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback

from _common import emit, log, machine, parse_args, target


def extra_arguments(parser) -> None:
    parser.add_argument("--models", default=None, help="comma-separated corpus names (default: all)")
    parser.add_argument("--epochs", type=int, default=3, help="Keras 3 training epochs of each corpus model")
    parser.add_argument("--no-autocompress", action="store_true", help="skip autocompress where DC misses")
    parser.add_argument("--autocompress-all", action="store_true",
                        help="run autocompress on every model, also where the Deep Compression recipe met its target")
    parser.add_argument("--batchnorm-images", type=int, default=2000,
                        help="autocompress's batchnorm_images (0: its scan keeps the models' own statistics)")
    parser.add_argument("--dataset", default="mnist", help="IDX data set name in --data-dir (mnist, fashion_mnist)")


def guide_prune(model, data, keras, tfmot, epochs=2, batch_size=128):
    """The tfmot pruning guide's recipe on the (tf_keras) model; returns the stripped model."""
    end_step = math.ceil(len(data.x_train) / batch_size) * epochs
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.50, final_sparsity=0.80,
                                                    begin_step=0, end_step=end_step)
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    wrapped.compile(optimizer="adam", metrics=["accuracy"],
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=_logits(model, keras)))
    wrapped.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=0,
                validation_data=(data.x_val, data.y_val), callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def guide_cluster(model, data, keras, tfmot, batch_size=500):
    """The tfmot clustering guide's recipe: 16 clusters, k-means++, 1 epoch at Adam 1e-5."""
    api = tfmot.clustering.keras
    wrapped = api.cluster_weights(model, number_of_clusters=16,
                                  cluster_centroids_init=api.CentroidInitialization.KMEANS_PLUS_PLUS)
    wrapped.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-5), metrics=["accuracy"],
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=_logits(model, keras)))
    wrapped.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=1, verbose=0,
                validation_data=(data.x_val, data.y_val))
    return api.strip_clustering(wrapped)


def _logits(model, keras) -> bool:
    return getattr(model.layers[-1], "activation", None) is not keras.activations.softmax


def _plain(mapping) -> dict:
    """A layer -> share mapping as plain JSON (Keras wraps dicts set on a model in tracking wrappers)."""
    return {str(key): float(value) for key, value in dict(mapping).items()}


def _timed(rows: dict, key: str, work):
    """Run ``work()``; store its result dict (or the error) and seconds under ``rows[key]``."""
    started = time.perf_counter()
    try:
        rows[key] = work()
    except Exception as error:  # a refused model is a result to report, not a crash
        rows[key] = {"error": f"{type(error).__name__}: {error}"[:400]}
        log(traceback.format_exc(limit=3))
    rows[key]["seconds"] = round(time.perf_counter() - started, 1)
    log(f"  {key}: {rows[key]}")
    return rows[key]


def run_model(name, data, args, cl, corpus):
    from compresslab._keras import keras as tf_keras
    from compresslab._keras import tfmot
    from compresslab.models import accuracy
    from compresslab.tflite import count_params

    log(f"== {name}: training with Keras 3 ({args.epochs} epochs)")
    started = time.perf_counter()
    user_model = corpus.train_keras3(name, data, epochs=args.epochs)
    row = {"train_seconds": round(time.perf_counter() - started, 1),
           "output": "logits" if corpus.outputs_logits(user_model) else "softmax",
           "layers": sorted({type(layer).__name__ for layer in user_model.layers})}
    converted = cl.modelio.as_tf_keras(user_model)  # the same conversion every entry point uses
    params, _ = count_params(converted)
    dense_bytes = 4 * params
    float_accuracy = accuracy(converted, data)
    row.update(params=params, dense_float32_bytes=dense_bytes, float_accuracy=float_accuracy)
    log(f"  float {100 * float_accuracy:.2f}%, {params:,} parameters")

    def points(value):
        return round(100 * (value - float_accuracy), 2)

    def ptq():
        artifact = cl.quantize.post_training(user_model, data, "int8")
        acc = artifact.accuracy(data)
        return {"accuracy": acc, "drop_points": -points(acc), "bytes": artifact.size_bytes}

    def prune_defaults():
        model = cl.prune.finetune(user_model, data, final_sparsity=0.8)
        acc = accuracy(model, data)
        return {"accuracy": acc, "drop_points": -points(acc),
                "sparsity_of_all_weights": float(model.pruning["sparsity_of_all_weights"]),
                "skipped": _plain(model.pruning["skipped"])}

    def prune_guide():
        model = guide_prune(cl.models.clone(converted), data, tf_keras, tfmot())
        return {"accuracy": accuracy(model, data), "drop_points": -points(accuracy(model, data))}

    def cluster_defaults():
        model = cl.cluster.cluster_weights(user_model, cl.ClusterSpec(), data, epochs=1)
        acc = accuracy(model, data)
        return {"accuracy": acc, "drop_points": -points(acc), "clustered_layers": list(model.clustering["layers"]),
                "skipped": _plain(model.clustering["skipped"])}

    def cluster_guide():
        model = guide_cluster(cl.models.clone(converted), data, tf_keras, tfmot())
        return {"accuracy": accuracy(model, data), "drop_points": -points(accuracy(model, data))}

    def deep_compression():
        result = cl.run_pipeline(user_model, data, "deep_compression", name=name)
        size = result.final.extra.get("compressed_bytes")
        return {"accuracy": result.final.accuracy, "drop_points": -points(result.final.accuracy),
                "bytes": size, "ratio_vs_dense_float32": round(dense_bytes / size, 1),
                "header_bytes": cl.codec.size_breakdown(result.blob)["header_bytes"]}

    for key, work in (("int8_ptq", ptq), ("prune80_defaults", prune_defaults), ("prune80_guide", prune_guide),
                      ("cluster16_defaults", cluster_defaults), ("cluster16_guide", cluster_guide),
                      ("deep_compression_defaults", deep_compression)):
        _timed(row, key, work)

    dc = row["deep_compression_defaults"]
    dc_met = "error" not in dc and dc["ratio_vs_dense_float32"] >= 25 and dc["drop_points"] <= 0.5
    if (not dc_met or args.autocompress_all) and not args.no_autocompress:
        def auto():
            result = cl.autocompress(user_model, data, max_accuracy_drop=0.5, seed=0,
                                     batchnorm_images=args.batchnorm_images)
            record = result.test_record
            size = record.extra.get("compressed_bytes") or record.gzip_bytes
            chosen = result.best_record
            return {"accuracy": record.accuracy, "drop_points": -points(record.accuracy), "bytes": size,
                    "ratio_vs_dense_float32": round(dense_bytes / size, 1), "label": record.name,
                    "header_bytes": cl.codec.size_breakdown(result.blob)["header_bytes"] if result.blob else None,
                    "validation": {  # what the choice saw: the pick's drop and its standard error
                        "input_accuracy": result.baseline.accuracy, "pick_accuracy": chosen.accuracy,
                        "drop_points": round(100 * (result.baseline.accuracy - chosen.accuracy), 2),
                        "drop_se_points": round(100 * chosen.extra.get("accuracy_drop_se", 0.0), 2),
                        "margin_se": chosen.extra.get("margin_se")},
                    "trials": len(result.records), "notes": result.notes}
        _timed(row, "autocompress_0.5", auto)
    row["targets"] = _targets(row, dc_met)
    return row


def _targets(row, dc_met) -> dict:
    def gap(ours, guide):
        if "error" in row[ours] or "error" in row[guide]:
            return None
        return round(100 * (row[ours]["accuracy"] - row[guide]["accuracy"]), 2)

    result = {}
    if "error" not in row["int8_ptq"]:
        result["int8_ptq"] = target(row["int8_ptq"]["drop_points"], "<= 0.5 points below float",
                                    row["int8_ptq"]["drop_points"] <= 0.5)
    for ours, guide, label in (("prune80_defaults", "prune80_guide", "prune80"),
                               ("cluster16_defaults", "cluster16_guide", "cluster16")):
        value = gap(ours, guide)
        if value is not None:
            result[label] = target(value, ">= -0.3 points vs the tfmot guide's recipe", value >= -0.3)
    if dc_met:
        dc = row["deep_compression_defaults"]
        result["compression"] = target(dc["ratio_vs_dense_float32"], "DC >= 25x within 0.5 points", True)
    elif "autocompress_0.5" in row and "error" not in row["autocompress_0.5"]:
        auto = row["autocompress_0.5"]
        result["compression"] = target(auto["ratio_vs_dense_float32"],
                                       "DC missed 25x/0.5 points; autocompress >= 20x within 0.5 points",
                                       auto["ratio_vs_dense_float32"] >= 20 and auto["drop_points"] <= 0.5)
    return result


def main() -> None:
    args = parse_args(__doc__, extra_arguments)
    import _corpus as corpus

    import compresslab as cl

    load_start = os.getloadavg()
    started = time.perf_counter()
    data = cl.load_dataset(args.dataset, data_dir=args.data_dir, validation=0.1, seed=0)
    names = args.models.split(",") if args.models else list(corpus.CORPUS)
    if args.quick:
        data = data.subset(train=3000, validation=500, test=1000, seed=0)
        args.epochs = 1
        names = names[:2]
    log(data.describe())
    rows = {}
    for name in names:
        rows[name] = run_model(name, data, args, cl, corpus)
        log("partial: " + json.dumps({name: rows[name]}, default=float))  # kept in the log if a later model fails
    met = {name: {k: v["met"] for k, v in row["targets"].items()} for name, row in rows.items()}
    emit("models" if not args.quick else "models-quick", {
        "benchmark": "bench_models",
        "data": data.describe(),
        "protocol": ("corpus models defined and trained by plain Keras 3 on the training split (validation "
                     "split held out); every compresslab technique at its defaults, the tfmot guides' recipes "
                     "on the same model in the same run; accuracy on the test split"),
        "models": rows,
        "targets_met": met,
        "codec_format_version": cl.codec.VERSION,
        "autocompress_batchnorm_images": args.batchnorm_images,
        "machine": {**machine(), "load_at_start": load_start, "load_at_end": os.getloadavg()},
        "seconds": round(time.perf_counter() - started, 1),
    }, args.out)


if __name__ == "__main__":
    main()
