"""Pruning benchmark on real MNIST: unstructured, pruned + int8, filter pruning, slider speed.

Prints one JSON object (progress on stderr) and writes bench/results/prune.json. Targets (issue 4),
all against references measured in the same run on seed_cnn trained 3 epochs on MNIST:

* 80% global magnitude sparsity + 2 epochs of tfmot fine-tuning: accuracy within 0.3 points of the
  float model; gzip bytes of its float32 TFLite file <= 0.35 x the unpruned file's gzip bytes;
* that pruned model quantized to int8 (compresslab.tflite.convert(..., "int8")): gzip bytes <=
  0.1 x the float32 TFLite bytes, LiteRT accuracy within 0.5 points of float;
* 50% filter pruning + fine-tuning: parameters, accuracy and TFLite latency as ratios to the
  unpruned model (a real latency gain: ratio < 1);
* PruningLab slider: median of 20 moves (set value -> figures updated) <= 1.5 x a plain
  ``model.evaluate`` on MNIST's 10,000 test images.

    python bench/bench_prune.py [--data-dir ../shared/data/mnist] [--quick]
"""

from __future__ import annotations

import statistics
import time

from _common import emit, log, machine, parse_args, target


def slider_seconds(lab, values) -> list[float]:
    times = []
    for value in values:
        start = time.perf_counter()
        lab.controls["sparsity"].value = value  # observers run synchronously: returns once figures are updated
        times.append(time.perf_counter() - start)
        if lab.last_error is not None:
            raise RuntimeError(f"panel error: {lab.last_error}")
    return times


def main() -> None:
    args = parse_args(__doc__)
    import compresslab as cl
    from compresslab import prune
    from compresslab._keras import versions
    from compresslab.tflite import convert

    quick = args.quick
    data = cl.load_dataset("mnist", data_dir=args.data_dir)
    if quick:
        data = data.subset(train=3000, test=1000)
    epochs = 1 if quick else 3
    log(f"baseline seed_cnn on {data.name} ({len(data.x_train)} train), {epochs} epochs (cached)")
    model = cl.baseline("seed_cnn", data, epochs=epochs, progress=False)
    float_accuracy = cl.models.accuracy(model, data)
    float_artifact = convert(model, "float32", name="float32")
    sample = data.x_test[:1]
    float_latency = float_artifact.latency_ms(sample, runs=200)
    float_row = prune.size_report(model, name="unpruned float32", artifact=float_artifact)
    float_row.update(accuracy=float_accuracy, latency_ms=float_latency)
    log(f"float: {float_accuracy:.4f}, {float_artifact.size_bytes:,} B, gzip {float_artifact.gzip_bytes:,} B, "
        f"{float_latency:.3f} ms")

    # -- 80% global magnitude + fine-tuning ---------------------------------------------------
    finetune_epochs = 1 if quick else 2
    log(f"80% global magnitude pruning, {finetune_epochs} epochs of tfmot fine-tuning")
    one_shot = prune.to_sparsity(model, prune.PruneSpec(sparsity=0.8, scope="global"))
    one_shot_accuracy = cl.models.accuracy(one_shot, data)
    start = time.perf_counter()
    pruned = prune.finetune(model, data, final_sparsity=0.8, scope="global", schedule="polynomial",
                            epochs=finetune_epochs)
    finetune_seconds = time.perf_counter() - start
    pruned_accuracy = cl.models.accuracy(pruned, data)
    pruned_artifact = convert(pruned, "float32", name="pruned 80% float32")
    pruned_latency = pruned_artifact.latency_ms(sample, runs=200)
    pruned_row = prune.size_report(pruned, name="80% pruned + fine-tuned, float32", artifact=pruned_artifact)
    pruned_row.update(accuracy=pruned_accuracy, latency_ms=pruned_latency)
    log(f"pruned: one-shot {one_shot_accuracy:.4f}, fine-tuned {pruned_accuracy:.4f}, "
        f"sparsity {prune.global_sparsity(pruned):.4f}, gzip {pruned_artifact.gzip_bytes:,} B")

    # -- pruned then int8 ---------------------------------------------------------------------
    log("int8 conversion of the pruned model")
    int8_artifact = convert(pruned, "int8", representative=data.x_train[:500], name="pruned 80% int8")
    int8_accuracy = int8_artifact.accuracy(data)
    int8_row = prune.size_report(pruned, name="80% pruned + int8", artifact=int8_artifact)
    int8_row.update(accuracy=int8_accuracy, accuracy_backend="litert",
                    latency_ms=int8_artifact.latency_ms(sample, runs=200))
    log(f"int8: LiteRT {int8_accuracy:.4f}, gzip {int8_artifact.gzip_bytes:,} B")

    # -- 50% filter pruning ---------------------------------------------------------------------
    filter_epochs = 1 if quick else 2
    log(f"50% filter pruning + {filter_epochs} epoch(s) of fine-tuning")
    smaller_untuned = prune.filter_pruning(model, data, 0.5)
    untuned_accuracy = cl.models.accuracy(smaller_untuned, data)
    smaller = prune.filter_pruning(model, data, 0.5, finetune_epochs=filter_epochs)
    smaller_accuracy = cl.models.accuracy(smaller, data)
    smaller_artifact = convert(smaller, "float32", name="filters 50%")
    smaller_litert = smaller_artifact.accuracy(data)
    # Alternate the two latency measurements so drift on a shared machine hits both alike.
    dense_times, smaller_times = [], []
    for _ in range(5):
        dense_times.append(float_artifact.latency_ms(sample, runs=100))
        smaller_times.append(smaller_artifact.latency_ms(sample, runs=100))
    dense_latency, smaller_latency = statistics.median(dense_times), statistics.median(smaller_times)
    smaller_row = prune.size_report(smaller, name="50% filters + fine-tuned, float32", artifact=smaller_artifact)
    smaller_row.update(accuracy=smaller_accuracy, latency_ms=smaller_latency)
    params_ratio = smaller.count_params() / model.count_params()
    latency_ratio = smaller_latency / dense_latency
    log(f"filters: params x{params_ratio:.3f}, accuracy {untuned_accuracy:.4f} -> {smaller_accuracy:.4f}, "
        f"latency {dense_latency:.3f} -> {smaller_latency:.3f} ms")

    # -- slider responsiveness --------------------------------------------------------------------
    log("PruningLab slider vs model.evaluate")
    lab = cl.widgets.PruningLab(model, data)
    moves = [round(0.05 + 0.9 * (i % 10) / 9 + (0.01 if i >= 10 else 0.0), 2) for i in range(20)]
    reference = cl.models.clone(model)
    cl.models.compile_for_classification(reference)
    reference.evaluate(data.x_test, data.y_test, verbose=0)  # warm-up (tracing)
    evaluate_times = []
    slider_times = []
    for chunk in range(10):  # interleave so load changes on the shared machine hit both alike
        start = time.perf_counter()
        reference.evaluate(data.x_test, data.y_test, verbose=0)
        evaluate_times.append(time.perf_counter() - start)
        slider_times += slider_seconds(lab, moves[chunk * 2 : (chunk + 1) * 2])
    evaluate_median = statistics.median(evaluate_times)
    slider_median = statistics.median(slider_times)
    slider_ratio = slider_median / evaluate_median
    log(f"slider median {slider_median:.3f} s vs evaluate {evaluate_median:.3f} s: x{slider_ratio:.2f}")

    digits = cl.load_dataset("digits")
    digits_model = cl.baseline("seed_cnn", digits, progress=False)
    digits_lab = cl.widgets.PruningLab(digits_model, digits)
    digits_times = slider_seconds(digits_lab, moves)

    accuracy_drop_points = 100 * (float_accuracy - pruned_accuracy)
    int8_drop_points = 100 * (float_accuracy - int8_accuracy)
    gzip_ratio = pruned_artifact.gzip_bytes / float_artifact.gzip_bytes
    int8_ratio = int8_artifact.gzip_bytes / float_artifact.size_bytes
    payload = {
        "benchmark": "prune",
        "quick": quick,
        "machine": machine(),
        "versions": versions(),
        "dataset": {"name": data.name, "train": len(data.x_train), "test": len(data.x_test)},
        "float": {"accuracy": float_accuracy, "tflite_bytes": float_artifact.size_bytes,
                  "gzip_bytes": float_artifact.gzip_bytes, "latency_ms": float_latency,
                  "params": model.count_params()},
        "unstructured_80": {
            "one_shot_accuracy": one_shot_accuracy, "finetuned_accuracy": pruned_accuracy,
            "finetune_epochs": finetune_epochs, "finetune_seconds": round(finetune_seconds, 1),
            "global_sparsity": prune.global_sparsity(pruned), "layer_sparsity": prune.layer_sparsity(pruned),
            "tflite_bytes": pruned_artifact.size_bytes, "gzip_bytes": pruned_artifact.gzip_bytes,
            "bitmask_bytes": pruned_row["bitmask_bytes"], "csr_bytes": pruned_row["csr_bytes"],
            "latency_ms": pruned_latency, "latency_ratio_vs_float": pruned_latency / float_latency,
        },
        "pruned_int8": {"litert_accuracy": int8_accuracy, "tflite_bytes": int8_artifact.size_bytes,
                        "gzip_bytes": int8_artifact.gzip_bytes},
        "filters_50": {
            "params": smaller.count_params(), "params_ratio": params_ratio,
            "accuracy_before_finetune": untuned_accuracy, "accuracy": smaller_accuracy,
            "litert_accuracy": smaller_litert, "accuracy_ratio": smaller_accuracy / float_accuracy,
            "finetune_epochs": filter_epochs, "kept": {name: [int(v) for v in kept] for name, kept in smaller.compresslab_info["kept"].items()},
            "latency_ms": smaller_latency, "float_latency_ms": dense_latency, "latency_ratio": latency_ratio,
            "latency_threads": 1, "tflite_bytes": smaller_artifact.size_bytes,
            "gzip_bytes": smaller_artifact.gzip_bytes,
            "tflite_ratio": smaller_artifact.size_bytes / float_artifact.size_bytes,
        },
        "slider": {
            "moves": len(slider_times), "median_s": slider_median, "evaluate_median_s": evaluate_median,
            "ratio": slider_ratio, "all_s": [round(t, 4) for t in slider_times],
            "evaluate_all_s": [round(t, 4) for t in evaluate_times],
            "digits_median_s": statistics.median(digits_times), "digits_test_images": len(digits.x_test),
        },
        "sizes_table": [float_row, pruned_row, int8_row, smaller_row],
        "targets": {
            "unstructured_80_accuracy_drop_points": target(
                round(accuracy_drop_points, 3), "<= 0.3 points below float", accuracy_drop_points <= 0.3),
            "unstructured_80_gzip_ratio": target(round(gzip_ratio, 4), "<= 0.35 x unpruned gzip bytes",
                                                 gzip_ratio <= 0.35),
            "pruned_int8_gzip_vs_float32_tflite": target(round(int8_ratio, 4), "<= 0.1 x float32 TFLite bytes",
                                                         int8_ratio <= 0.1),
            "pruned_int8_accuracy_drop_points": target(round(int8_drop_points, 3), "<= 0.5 points below float (LiteRT)",
                                                       int8_drop_points <= 0.5),
            "filters_50_params_ratio": target(round(params_ratio, 4), "< 1 (fewer parameters)", params_ratio < 1),
            "filters_50_latency_ratio": target(round(latency_ratio, 4), "< 1 (a real TFLite latency gain)",
                                               latency_ratio < 1),
            "slider_ratio_vs_evaluate": target(round(slider_ratio, 3), "<= 1.5 x model.evaluate on the test set",
                                               slider_ratio <= 1.5),
        },
    }
    emit("prune", payload, args.out)


if __name__ == "__main__":
    main()
