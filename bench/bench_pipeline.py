"""Benchmark: Deep Compression and auto-compression on real MNIST, real bytes against dense float32.

Han, Mao and Dally (ICLR 2016) prune, share weights (k-means) and Huffman-code: LeNet-300-100
went 40x smaller at 1.58% test error, LeNet-5 39x at 0.74%. Here the same three stages run
through ``compresslab.run_pipeline`` and the final stage is a REAL file in compresslab's own
format (``compresslab.codec``), decoded back into a model whose test accuracy is measured. The
ratio is the dense float32 bytes (4 x parameters) of the trained model measured in the same run
against the bytes of that file, header and all.

Models: the zoo's ``seed_cnn`` (cached by ``cl.baseline``, shared with the other benchmarks), the
Caffe LeNet-5 of the paper (431K parameters) and LeNet-300-100. Then ``cl.autocompress`` with a
0.5-point budget on seed_cnn: what it found and how long it took.

Prints ONE JSON object to stdout (progress goes to stderr) and writes it to
``bench/results/pipeline.json``. ``--records`` runs the compression records instead (``bench/_records.py``:
the LeNets trained to the papers' baseline errors with a stated recipe, Deep Compression and sparse
variational dropout + sharing + codec on them, a curve of ratio against error) into
``bench/results/records.json``.

    .venv/bin/python bench/bench_pipeline.py [--data-dir ../shared/data/mnist] [--quick] [--records]
"""

from __future__ import annotations

import time
from pathlib import Path

from _common import emit, log, machine, parse_args, target

PAPER = {
    "lenet_300_100": {"ratio": 40, "error_pct": 1.58, "baseline_error_pct": 1.64,
                      "source": "Han, Mao, Dally, ICLR 2016, Table 1"},
    "lenet5_caffe": {"ratio": 39, "error_pct": 0.74, "baseline_error_pct": 0.80,
                     "source": "Han, Mao, Dally, ICLR 2016, Table 1"},
}


def _extra(parser):
    parser.add_argument("--skip-lenet", action="store_true", help="only seed_cnn (and autocompress)")
    parser.add_argument("--skip-autocompress", action="store_true")
    parser.add_argument("--only-autocompress", action="store_true",
                        help="skip the deep compression runs (to run the search in a separate process)")
    parser.add_argument("--select-on-validation", action="store_true",
                        help="with --records: only the sparse VD threshold chosen on a held-out validation split")
    parser.add_argument("--records", action="store_true",
                        help="only the compression records: paper-quality LeNets, Deep Compression and sparse VD "
                             "on them (writes bench/results/records.json)")


def _save_partial(results: dict, out) -> None:
    """Write what has finished so far, so an interrupted run still leaves its figures on disk."""
    import json
    import os
    from pathlib import Path

    path = Path(out) if out else Path(__file__).resolve().parent / "results" / "pipeline.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.tmp")
    tmp.write_text(json.dumps({**results, "partial": True}, indent=2, default=float))
    os.replace(tmp, path)


def _stages(result) -> list[dict]:
    rows = []
    for record in result.records:
        rows.append({
            "stage": record.extra.get("step"),
            "label": record.extra.get("label", "input"),
            "accuracy_pct": round(100 * record.accuracy, 3),
            "nonzero_params": record.nonzero_params,
            "compressed_bytes": record.extra.get("compressed_bytes"),
            "tflite_bytes": record.tflite_bytes,
            "gzip_tflite_bytes": record.gzip_bytes,
            "seconds": round(record.extra.get("seconds", 0.0), 1),
        })
    return rows


def _deep_compress(cl, model, data, recipe, name: str) -> dict:
    from compresslab import codec

    log(f"{name}: deep compression {[step['step'] for step in recipe]}")
    started = time.perf_counter()
    result = cl.run_pipeline(model, data, recipe, name=name)
    seconds = time.perf_counter() - started
    baseline, clustered, final = result.records[0], result.records[-2], result.final
    decoded = codec.decode(result.blob)
    breakdown = codec.size_breakdown(result.blob)
    row = {
        "params": baseline.params,
        "dense_float32_bytes": baseline.dense_float32_bytes,
        "baseline_accuracy_pct": round(100 * baseline.accuracy, 3),
        "baseline_tflite_bytes": baseline.tflite_bytes,
        "baseline_gzip_tflite_bytes": baseline.gzip_bytes,
        "compressed_bytes": len(result.blob),
        "ratio_vs_dense_float32": round(baseline.dense_float32_bytes / len(result.blob), 2),
        "ratio_vs_gzip_tflite": round(baseline.gzip_bytes / len(result.blob), 2),
        "final_accuracy_pct": round(100 * final.accuracy, 3),
        "final_error_pct": round(100 * (1 - final.accuracy), 3),
        "accuracy_drop_points": round(100 * (baseline.accuracy - final.accuracy), 3),
        "sparsity": round(1 - clustered.nonzero_params / clustered.params, 4),
        "decoded_accuracy_equals_clustered": bool(cl.models.accuracy(decoded, data) == clustered.accuracy),
        "stages": _stages(result),
        "file_breakdown": breakdown,
        "recipe": result.steps,
        "seconds": round(seconds, 1),
    }
    log(f"{name}: {row['ratio_vs_dense_float32']}x at {row['final_accuracy_pct']}% "
        f"(baseline {row['baseline_accuracy_pct']}%), {row['seconds']} s")
    return row


def _caffe_lenet5(cl, data, epochs: int):
    """The paper's LeNet-5 (Caffe variant), trained here and cached beside the zoo baselines."""
    from compresslab.data import default_data_home
    from compresslab.modelio import load_model, save_model

    path = default_data_home() / "baselines" / f"lenet5_caffe-{data.name}-{len(data.x_train)}-s0-e{epochs}.keras"
    if path.exists():
        model = load_model(path, verify=False)
        cl.models.compile_for_classification(model)
        return model
    model = cl.models.build("lenet5", data.input_shape, data.num_classes, seed=0, variant="caffe")
    cl.train(model, data, epochs=epochs, seed=0, progress=False)
    save_model(model, path)
    return model


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], extra=_extra)
    import compresslab as cl
    from compresslab._keras import versions

    started = time.perf_counter()
    data = cl.load_dataset("mnist", data_dir=args.data_dir)
    if args.records:
        _records_run(cl, args, data, started)
        return
    epochs = 3
    prune_epochs, cluster_epochs = 2, 1
    if args.quick:
        data = data.subset(train=2000, test=500, seed=0)
        epochs, prune_epochs, cluster_epochs = 1, 1, 1
    log(f"data: {data.describe().splitlines()[0]}")
    results: dict = {"benchmark": "pipeline", "quick": args.quick, "dataset": data.name,
                     "train_images": len(data.x_train), "test_images": len(data.x_test),
                     "machine": machine(), "versions": versions(), "paper": PAPER, "models": {},
                     "codec_format_version": cl.codec.VERSION}

    if not args.only_autocompress:
        seed_cnn = cl.baseline("seed_cnn", data, epochs=epochs, progress=False)
        _deep_compression_runs(cl, args, data, seed_cnn, epochs, prune_epochs, cluster_epochs, results)
    if not args.skip_autocompress:
        # Choices are made on a validation split: carve it first and train the model autocompress
        # starts from on the rest, so no validation image was ever seen in training.
        carved = data.with_validation(0.1, seed=0)
        start = cl.baseline("seed_cnn", carved, epochs=epochs, progress=False)
        results["autocompress_model"] = {"trained_on": len(carved.x_train), "validation": len(carved.y_val),
                                         "epochs": epochs}
        _autocompress_run(cl, args, carved, start, results)
    _finish(args, results, started)


def _records_run(cl, args, data, started) -> None:
    import os

    from _common import emit
    from _records import TARGETS, run_records, run_selection

    from compresslab._keras import versions

    if args.quick:
        data = data.subset(train=3000, test=1000, seed=0)
    stem = "records-selection" if args.select_on_validation else "records"
    out = args.out or str(Path(__file__).resolve().parent / "results" / (f"{stem}-quick.json" if args.quick
                                                                         else f"{stem}.json"))
    results = {"benchmark": "records", "quick": args.quick, "dataset": data.name, "train_images": len(data.x_train),
               "test_images": len(data.x_test), "machine": machine(), "versions": versions(),
               "load_average_before": os.getloadavg()}
    if args.select_on_validation:
        run_selection(cl, data, results, quick=args.quick, save=lambda: _save_partial(results, out))
        results.update(seconds=round(time.perf_counter() - started, 1), load_average_after=os.getloadavg())
        emit(stem if not args.quick else f"{stem}-quick", results, out)
        return
    run_records(cl, data, results, quick=args.quick, deep_compress=_deep_compress,
                save=lambda: _save_partial(results, out))
    targets = {}
    for (method, key), (ratio, error) in TARGETS.items():
        row = results["records"]["models"].get(key, {})
        if method in row:
            got = row[method]
            targets[f"{key}_{method}"] = target(
                {"ratio": got["ratio_vs_dense_float32"], "error_pct": got["final_error_pct"]},
                f">= {ratio}x smaller than dense float32 at <= {error}% test error",
                got["ratio_vs_dense_float32"] >= ratio and got["final_error_pct"] <= error)
        base = row.get("baseline")
        if base and method == "deep_compression":
            targets[f"{key}_baseline_error"] = target(round(base["test_error_pct"], 3),
                                                      f"<= {base['paper_error_pct']}% (the paper's baseline)",
                                                      base["test_error_pct"] <= base["paper_error_pct"])
    results.update(targets=targets, seconds=round(time.perf_counter() - started, 1),
                   load_average_after=os.getloadavg())
    emit("records" if not args.quick else "records-quick", results, out)


def _deep_compression_runs(cl, args, data, seed_cnn, epochs, prune_epochs, cluster_epochs, results) -> None:
    from compresslab.pipeline import deep_compression_recipe

    recipe = deep_compression_recipe(sparsity=0.92, scope="global", prune_epochs=prune_epochs,
                                     clusters=16, conv_clusters=32, cluster_epochs=cluster_epochs)
    results["models"]["seed_cnn"] = _deep_compress(cl, seed_cnn, data, recipe, "seed_cnn deep compression")
    # The same-run reference of ordinary deployment: int8 post-training quantization, gzip'd.
    from compresslab.quantize import post_training

    int8 = post_training(seed_cnn, data, "int8")
    results["models"]["seed_cnn"]["int8_ptq_reference"] = {
        "tflite_bytes": int8.size_bytes, "gzip_bytes": int8.gzip_bytes,
        "accuracy_pct": round(100 * int8.accuracy(data), 3),
        "ratio_vs_dense_float32": round(4 * seed_cnn.count_params() / int8.gzip_bytes, 2)}
    _save_partial(results, args.out)

    if not args.skip_lenet:
        lenet5 = _caffe_lenet5(cl, data, epochs)
        results["models"]["lenet5_caffe"] = _deep_compress(cl, lenet5, data, recipe, "lenet5 (caffe) deep compression")
        _save_partial(results, args.out)
        lenet300 = cl.baseline("lenet_300_100", data, epochs=epochs, progress=False)
        dense_recipe = deep_compression_recipe(sparsity=0.92, scope="global", prune_epochs=prune_epochs,
                                               clusters=32, conv_clusters=None, cluster_epochs=cluster_epochs)
        results["models"]["lenet_300_100"] = _deep_compress(cl, lenet300, data, dense_recipe,
                                                            "lenet_300_100 deep compression")
        _save_partial(results, args.out)


def _autocompress_run(cl, args, data, seed_cnn, results) -> None:
    log("autocompress seed_cnn, 0.5-point budget, objective size")
    options = {"max_trials": 3, "sparsities": (0.5, 0.8)} if args.quick else {"max_trials": 10}
    auto_started = time.perf_counter()
    found = cl.autocompress(seed_cnn, data, max_accuracy_drop=0.5, objective="size", epochs=1,
                            progress=False, **options)
    best, test = found.best_record, found.test_record
    best_size = cl.sizes.deployable_bytes(best)
    results["autocompress"] = {
        "budget_points": 0.5,
        "protocol": "every choice on a validation split carved from training (10%); the pick measured once on test",
        "seconds": round(time.perf_counter() - auto_started, 1),
        "trials": len(found.records),
        "study_trials": len(found.study.trials),
        "interrupted": found.interrupted,
        "baseline_validation_accuracy_pct": round(100 * found.baseline.accuracy, 3),
        "baseline_test_accuracy_pct": round(100 * found.baseline_test.accuracy, 3),
        "best": {"name": best.name, "validation_accuracy_pct": round(100 * best.accuracy, 3),
                 "test_accuracy_pct": round(100 * test.accuracy, 3),
                 "test_drop_points": round(100 * (found.baseline_test.accuracy - test.accuracy), 3),
                 "met_on_test": found.met_on_test,
                 "bytes": best_size, "ratio_vs_dense_float32": round(best.dense_float32_bytes / best_size, 2),
                 "recipe": best.spec.get("recipe")},
        "tried": [{"name": r.name, "validation_accuracy_pct": round(100 * r.accuracy, 3),
                   "drop_se_points": round(100 * r.extra.get("accuracy_drop_se", 0.0), 3),
                   "bytes": cl.sizes.deployable_bytes(r), "meets_budget": r.extra.get("meets_budget")}
                  for r in found.records],
        "notes": found.notes,
    }
    log(f"autocompress: {best.name} at {100 * best.accuracy:.2f}%, {best_size:,} B, "
        f"{results['autocompress']['seconds']} s")
    _save_partial(results, args.out)


def _finish(args, results, started) -> None:
    targets = {}
    if "seed_cnn" in results["models"]:
        seed = results["models"]["seed_cnn"]
        exact = all(m["decoded_accuracy_equals_clustered"] for m in results["models"].values())
        targets.update({
            "seed_cnn_ratio": target(seed["ratio_vs_dense_float32"], ">= 40x smaller than dense float32",
                                     seed["ratio_vs_dense_float32"] >= 40),
            "seed_cnn_accuracy_drop": target(seed["accuracy_drop_points"], "<= 0.3 points",
                                             seed["accuracy_drop_points"] <= 0.3),
            "round_trips_exact": target(exact, "decoded file's accuracy == clustered model's", exact),
        })
    if "autocompress" in results:
        auto = results["autocompress"]
        drop = auto["best"]["test_drop_points"]
        targets["autocompress_within_budget_on_test"] = target(drop, "<= 0.5 points", drop <= 0.5)
        ratio = auto["best"]["ratio_vs_dense_float32"]
        targets["autocompress_ratio"] = target(ratio, ">= 41x (the search before studies)", ratio >= 41)
        targets["autocompress_trials"] = target(auto["trials"], "<= 5 (the search before studies)",
                                                auto["trials"] <= 5)
    for key, paper_key in (("lenet5_caffe", "lenet5_caffe"), ("lenet_300_100", "lenet_300_100")):
        if key in results["models"]:
            row = results["models"][key]
            row["paper"] = PAPER[paper_key]
            targets[f"{key}_vs_paper_ratio"] = target(
                row["ratio_vs_dense_float32"], f">= {PAPER[paper_key]['ratio']}x (paper)",
                row["ratio_vs_dense_float32"] >= PAPER[paper_key]["ratio"])
    results["targets"] = targets
    results["seconds"] = round(time.perf_counter() - started, 1)
    emit("pipeline", results, args.out)


if __name__ == "__main__":
    main()
