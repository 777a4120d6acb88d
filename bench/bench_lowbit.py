"""Low-bit files on real MNIST: ai-edge-quantizer's 8/4/2-bit TFLite files against float32, Keras 3 beside them.

Prints one JSON object (progress on stderr) and writes bench/results/lowbit.json. This is the
low-bit part of the quantization benchmark (issue 15), a script of its own so it can be rerun alone.
Every figure is from the same run on seed_cnn trained 3 epochs on MNIST (54,000 training images;
6,000 carved off as the validation split the mixed-precision search chooses on); accuracies are
on the 10,000 test images in LiteRT (Keras 3 rows: in LiteRT when Keras 3 exported a file, else in
Keras 3). The reference for every byte ratio is the float32 TFLite file of the same model.

Targets:
* int4 weight-only per-channel file <= 0.16 x the float32 TFLite bytes, within 0.5 points;
* int4 blockwise file within 0.5 points;
* a 2-bit file measured and reported whatever it scores;
* the mixed-precision plan (0.5-point budget, chosen on validation) as a file: its test accuracy
  against the budget, beside the simulated accuracy the plan promised;
* Keras 3's ``model.quantize`` rows in the same run, with the share of weights it left float.

    python bench/bench_lowbit.py [--data-dir ../shared/data/mnist] [--quick]
"""

from __future__ import annotations

import os
import time
import warnings

from _common import emit, log, machine, parse_args, target


def extra_arguments(parser) -> None:
    parser.add_argument("--cache-dir", default=None, help="where cached baselines live (default data/baselines)")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads for latency")


def main() -> None:
    args = parse_args(__doc__, extra_arguments)
    import compresslab as cl
    from compresslab import lowbit
    from compresslab._keras import versions
    from compresslab.lowbit import LowBitSpec

    load_before = os.getloadavg()
    started = time.perf_counter()
    data = cl.load_dataset("mnist", data_dir=args.data_dir, validation=0.1)
    if args.quick:
        data = data.subset(train=2000, test=500, validation=500)
    epochs = 1 if args.quick else 3
    log(f"baseline seed_cnn on {data}, {epochs} epochs (cached)")
    model = cl.baseline("seed_cnn", data, epochs=epochs, cache_dir=args.cache_dir, progress=False)
    sample = data.x_test[:1]

    def row(artifact, **more) -> dict:
        accuracy = artifact.accuracy(data)
        latency = artifact.latency_ms(sample, threads=args.threads, warmup=20, runs=100 if args.quick else 300)
        result = {"bytes": artifact.size_bytes, "gzip_bytes": artifact.gzip_bytes,
                  "ratio_vs_float32_tflite": artifact.size_bytes / float32.size_bytes,
                  "litert_accuracy": accuracy, "drop_points": 100 * (float_accuracy - accuracy),
                  "latency_ms": latency, "latency_threads": args.threads,
                  **{k: artifact.info[k] for k in ("layer_storage", "left_float_layers", "left_float_share")
                     if k in artifact.info}, **more}
        log(f"{artifact.name}: {artifact.size_bytes:,} B ({result['ratio_vs_float32_tflite']:.3f}x), "
            f"LiteRT {100 * accuracy:.2f}%, {latency:.3f} ms")
        return result

    float32 = cl.tflite.convert(model, "float32", name="float32")
    float_accuracy = float32.accuracy(data)
    files = {"float32": row(float32)}
    specs = {
        "int8_weight_only": LowBitSpec("int8_weight_only"),
        "int4_weight_only": LowBitSpec("int4_weight_only"),
        "int4_dynamic": LowBitSpec("int4_dynamic"),
        "int4_blockwise_32": LowBitSpec("int4_dynamic", granularity="blockwise", block_size=32),
        "int4_blockwise_64": LowBitSpec("int4_dynamic", granularity="blockwise", block_size=64),
        "int8_static": LowBitSpec("int8_static"),
        "int16x8_static": LowBitSpec("int16x8_static"),
        # the 2-bit files: dense1 holds 91% of the weights; the small layers stay at 8 bits
        "int2_dense1_rest_int8": LowBitSpec("int2_dynamic", keep_int8=("conv1", "conv2", "logits")),
        "int2_dense_layers_rest_int8": LowBitSpec("int2_dynamic", keep_int8=("conv1", "conv2")),
    }
    artifacts = {}
    for key, spec in specs.items():
        artifacts[key] = lowbit.post_training_lowbit(model, data, spec, name=key)
        files[key] = row(artifacts[key])
    refused = {}
    try:
        lowbit.post_training_lowbit(model, data, LowBitSpec("int2_dynamic"))
    except ValueError as error:
        refused["int2_dynamic_all_layers"] = str(error)
        log(f"int2 on every layer refused: {error}")

    log("layer errors of the int4 and 2-bit files (validation images)")
    errors = {key: lowbit.layer_errors(model, artifacts[key], data, images=512).to_dict(orient="records")
              for key in ("int8_weight_only", "int4_weight_only", "int2_dense1_rest_int8")}

    log("mixed precision plan (0.5-point budget, chosen on validation), then the plan as a file")
    plan = cl.quantize.mixed_precision(model, data, max_accuracy_drop=0.5, search_images=6000)
    plan_spec = lowbit.plan_to_lowbit(plan)
    plan_file = lowbit.post_training_lowbit(model, data, plan_spec, name="mixed precision file")
    files["mixed_precision_file"] = row(plan_file, plan_bits=plan.bits)
    mixed = {
        "plan_bits": plan.bits, "search_split": plan.search_split,
        "plan_simulated_test_accuracy": plan.accuracy, "plan_simulated_drop_points": plan.accuracy_drop_points,
        "plan_average_bits": plan.average_bits, "plan_packed_bytes": plan.packed_bytes,
        "file_spec": plan_spec.to_dict(), "file_litert_accuracy": files["mixed_precision_file"]["litert_accuracy"],
        "file_drop_points": files["mixed_precision_file"]["drop_points"],
        "file_bytes": plan_file.size_bytes,
    }

    log("Keras 3 model.quantize rows (subprocess)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras3 = [r.to_dict() for r in lowbit.keras3_quantize_rows(model, data, threads=args.threads)]
    for record in keras3:
        log(f"{record['name']}: {record['accuracy']} ({record['accuracy_backend']}), .keras "
            f"{record['extra'].get('keras_bytes')} B, left float {record['extra'].get('left_float_share')}")

    int4 = files["int4_weight_only"]
    block = files["int4_blockwise_32"]
    payload = {
        "benchmark": "lowbit",
        "quick": args.quick,
        "dataset": {"name": data.name, "train": len(data.x_train), "validation": len(data.x_val),
                    "test": len(data.x_test)},
        "model": {"arch": "seed_cnn", "epochs": epochs, "params": model.count_params(),
                  "float32_tflite_litert_accuracy": float_accuracy},
        "reference": "every ratio is against the float32 TFLite file of the same model (float32.bytes)",
        "files": files,
        "refused": refused,
        "layer_errors": errors,
        "mixed_precision": mixed,
        "keras3": keras3,
        "targets": {
            "int4_weight_only_bytes_ratio": target(round(int4["ratio_vs_float32_tflite"], 4), "<= 0.16",
                                                   int4["ratio_vs_float32_tflite"] <= 0.16),
            "int4_weight_only_drop_points": target(round(int4["drop_points"], 3), "<= 0.5 points",
                                                   int4["drop_points"] <= 0.5),
            "int4_blockwise_drop_points": target(round(block["drop_points"], 3), "<= 0.5 points",
                                                 block["drop_points"] <= 0.5),
            "two_bit_file_drop_points": target(round(files["int2_dense1_rest_int8"]["drop_points"], 3),
                                               "reported whatever it scores", True),
            "mixed_precision_file_within_budget": target(round(mixed["file_drop_points"], 3), "<= 0.5 points on test",
                                                         mixed["file_drop_points"] <= 0.5),
        },
        "versions": {**versions(), "ai-edge-quantizer": _version("ai-edge-quantizer"),
                     "ai-edge-litert": _version("ai-edge-litert"), "keras3": keras3[0]["extra"].get("keras_version")},
        "seconds": time.perf_counter() - started,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": machine(),
    }
    emit("lowbit" if not args.quick else "lowbit-quick", payload, args.out)


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


if __name__ == "__main__":
    main()
