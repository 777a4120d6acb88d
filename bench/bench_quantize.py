"""Quantization benchmark on real MNIST: simulation table, TFLite PTQ and QAT, latency, slider speed.

Prints one JSON object (progress on stderr) and writes bench/results/quantize.json. Targets (issue 3),
all against references measured in the same run on seed_cnn trained 3 epochs on MNIST:

* 8-bit symmetric per-channel simulation within 0.2 points of the float model (plus the table of
  accuracy against bits 1 to 16, symmetric per-tensor and per-channel);
* int8 PTQ TFLite file <= 0.27 x the float32 TFLite bytes, its LiteRT accuracy within 0.5 points of
  float; float16 about 0.5 x (0.45 to 0.55);
* QAT (1 epoch) int8 TFLite within 0.3 points of float (LiteRT);
* int8 against float32 TFLite latency, as a ratio in the same run (1 thread);
* QuantizationLab slider: median of 20 moves (set value -> figures updated, per-spec cache cleared
  so every move really re-quantizes and re-evaluates) <= 1.5 x the median plain ``model.evaluate`` on
  the same 10,000 test images, interleaved with the moves; the absolute figure on digits too.

    python bench/bench_quantize.py [--data-dir ../shared/data/mnist] [--quick]
"""

from __future__ import annotations

import statistics
import time

from _common import emit, log, machine, parse_args, target

SLIDER_MOVES = [4, 2, 6, 3, 8, 5, 1, 7, 12, 16, 10, 4, 2, 9, 3, 11, 6, 14, 5, 8]


def slider_and_evaluate_seconds(lab, model, data, values, evaluate_every: int = 4):
    """Seconds per slider move (set value -> figures updated, per-spec cache cleared) and per plain
    ``model.evaluate`` on the same test set, interleaved (one evaluate every ``evaluate_every`` moves)
    so both see the same machine load."""
    model.evaluate(data.x_test, data.y_test, verbose=0)  # warm-up (builds the test function)
    moves, evaluates = [], []
    for index, value in enumerate(values):
        if lab.controls["bits"].value == value:
            continue
        lab.accuracy_cache.clear()  # measure the real work, not a cache hit
        start = time.perf_counter()
        lab.controls["bits"].value = value  # observers run synchronously: returns once figures are updated
        moves.append(time.perf_counter() - start)
        if lab.last_error is not None:
            raise RuntimeError(f"panel error: {lab.last_error}")
        if index % evaluate_every == 0:
            start = time.perf_counter()
            model.evaluate(data.x_test, data.y_test, verbose=0)
            evaluates.append(time.perf_counter() - start)
    return moves, evaluates


def extra_arguments(parser) -> None:
    parser.add_argument("--cache-dir", default=None, help="where cached baselines live (default data/baselines)")
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads for latency")


def main() -> None:
    args = parse_args(__doc__, extra_arguments)
    import compresslab as cl
    from compresslab import quantize as q
    from compresslab._keras import versions
    from compresslab.tflite import convert

    quick = args.quick
    data = cl.load_dataset("mnist", data_dir=args.data_dir)
    if quick:
        data = data.subset(train=2000, test=500)
    epochs = 1 if quick else 3
    log(f"baseline seed_cnn on {data.name} ({len(data.x_train)} train / {len(data.x_test)} test), "
        f"{epochs} epochs (cached)")
    model = cl.baseline("seed_cnn", data, epochs=epochs, cache_dir=args.cache_dir, progress=False)
    float_accuracy = cl.models.accuracy(model, data)
    log(f"float accuracy {float_accuracy:.4f}")

    # -- simulation table ------------------------------------------------------------------------
    evaluator = q.SimulationEvaluator(model, data.x_test, data.y_test)
    table = []
    variants = [("symmetric", "per_tensor"), ("symmetric", "per_channel")]
    bit_range = range(1, 17) if not quick else (1, 2, 4, 8)
    for scheme, granularity in variants:
        for bits in bit_range:
            accuracy = evaluator.accuracy_for(q.QuantSpec(bits=bits, scheme=scheme, granularity=granularity))
            table.append({"bits": bits, "scheme": scheme, "granularity": granularity, "accuracy": accuracy,
                          "drop_points": 100 * (float_accuracy - accuracy)})
        log(f"table {scheme} {granularity}: " + ", ".join(
            f"{row['bits']}b {100 * row['accuracy']:.2f}" for row in table[-len(bit_range):]))
    eight_pc = next(r for r in table if r["bits"] == 8 and r["scheme"] == "symmetric"
                    and r["granularity"] == "per_channel")

    # -- TFLite: float32 and post-training quantization -------------------------------------------
    artifacts = {"float32": convert(model, "float32", name="float32")}
    for mode in ("dynamic", "float16", "int8"):
        log(f"PTQ {mode}")
        artifacts[mode] = q.post_training(model, data, mode)
    tflite = {}
    for mode, artifact in artifacts.items():
        tflite[mode] = {"bytes": artifact.size_bytes, "gzip_bytes": artifact.gzip_bytes,
                        "ratio_vs_float32_bytes": artifact.size_bytes / artifacts["float32"].size_bytes,
                        "litert_accuracy": artifact.accuracy(data)}
        log(f"{mode}: {artifact.size_bytes:,} B, LiteRT {tflite[mode]['litert_accuracy']:.4f}")

    # -- latency, int8 against float32, alternating rounds in the same run ------------------------
    sample = data.x_test[:1]
    rounds = {"float32": [], "int8": []}
    for _ in range(3):
        for mode in ("float32", "int8"):
            rounds[mode].append(artifacts[mode].latency_ms(sample, threads=args.threads, warmup=20,
                                                           runs=100 if quick else 300))
    latency = {mode: statistics.median(values) for mode, values in rounds.items()}
    latency_ratio = latency["int8"] / latency["float32"]
    log(f"latency float32 {latency['float32']:.3f} ms, int8 {latency['int8']:.3f} ms, ratio {latency_ratio:.2f}")

    # -- quantization-aware training ---------------------------------------------------------------
    log(f"QAT {args.qat_epochs} epoch(s)")
    started = time.perf_counter()
    qat = q.aware_training(model, data, epochs=args.qat_epochs)
    qat_seconds = time.perf_counter() - started
    qat_accuracy = qat.artifact.accuracy(data)
    log(f"QAT int8: LiteRT {qat_accuracy:.4f} (Keras fake-quant {qat.keras_accuracy:.4f}), "
        f"{qat.artifact.size_bytes:,} B, {qat_seconds:.0f} s")

    # -- slider responsiveness ---------------------------------------------------------------------
    moves = SLIDER_MOVES if not quick else SLIDER_MOVES[:5]
    log("slider on MNIST test")
    lab = cl.widgets.QuantizationLab(model, data)
    slider, evaluate = slider_and_evaluate_seconds(lab, model, data, moves)
    slider_median = statistics.median(slider)
    evaluate_median = statistics.median(evaluate)
    slider_ratio = slider_median / evaluate_median
    log(f"slider median {1000 * slider_median:.0f} ms, evaluate {1000 * evaluate_median:.0f} ms, "
        f"ratio {slider_ratio:.2f}")
    digits = cl.load_dataset("digits")
    digits_model = cl.baseline("seed_cnn", digits, cache_dir=args.cache_dir, progress=False)
    digits_lab = cl.widgets.QuantizationLab(digits_model, digits)
    digits_slider, digits_evaluate = slider_and_evaluate_seconds(digits_lab, digits_model, digits, moves)
    log(f"digits slider median {1000 * statistics.median(digits_slider):.0f} ms")

    float32_bytes = artifacts["float32"].size_bytes
    payload = {
        "benchmark": "quantize",
        "quick": quick,
        "dataset": {"name": data.name, "train": len(data.x_train), "test": len(data.x_test)},
        "model": {"arch": "seed_cnn", "epochs": epochs, "params": model.count_params(),
                  "float_accuracy": float_accuracy},
        "simulation_table": table,
        "tflite": tflite,
        "latency_ms": {**latency, "threads": args.threads, "rounds": rounds,
                       "int8_over_float32": latency_ratio},
        "qat": {"epochs": args.qat_epochs, "litert_accuracy": qat_accuracy, "keras_accuracy": qat.keras_accuracy,
                "bytes": qat.artifact.size_bytes, "seconds": qat_seconds},
        "slider": {
            "moves": len(slider), "median_ms": 1000 * slider_median, "all_ms": [1000 * t for t in slider],
            "evaluate_median_ms": 1000 * evaluate_median, "evaluate_all_ms": [1000 * t for t in evaluate],
            "ratio": slider_ratio, "test_images": len(data.x_test),
            "digits": {"median_ms": 1000 * statistics.median(digits_slider),
                       "evaluate_median_ms": 1000 * statistics.median(digits_evaluate),
                       "test_images": len(digits.x_test)},
            "note": "per-spec accuracy cache cleared before every move; one model.evaluate (default batch "
                    "size 32) after every 4th move, interleaved so both see the same machine load",
        },
        "targets": {
            "simulated_8bit_per_channel_drop_points": target(
                round(eight_pc["drop_points"], 3), "<= 0.2 points", abs(eight_pc["drop_points"]) <= 0.2),
            "int8_bytes_ratio_vs_float32": target(
                round(tflite["int8"]["bytes"] / float32_bytes, 4), "<= 0.27", tflite["int8"]["bytes"] <= 0.27 * float32_bytes),
            "int8_litert_drop_points": target(
                round(100 * (float_accuracy - tflite["int8"]["litert_accuracy"]), 3), "<= 0.5 points",
                100 * (float_accuracy - tflite["int8"]["litert_accuracy"]) <= 0.5),
            "float16_bytes_ratio_vs_float32": target(
                round(tflite["float16"]["bytes"] / float32_bytes, 4), "about 0.5 (0.45 to 0.55)",
                0.45 <= tflite["float16"]["bytes"] / float32_bytes <= 0.55),
            "qat_int8_litert_drop_points": target(
                round(100 * (float_accuracy - qat_accuracy), 3), "<= 0.3 points",
                100 * (float_accuracy - qat_accuracy) <= 0.3),
            "int8_over_float32_latency": target(round(latency_ratio, 3), "reported (same run, "
                                                f"{args.threads} thread)", True),
            "slider_over_evaluate": target(round(slider_ratio, 3), "<= 1.5 on MNIST test", slider_ratio <= 1.5),
        },
        "versions": versions(),
        "machine": machine(),
    }
    emit("quantize" if not quick else "quantize-quick", payload, args.out)


if __name__ == "__main__":
    main()
