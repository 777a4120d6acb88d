"""Foundation benchmark: import cost, seed_cnn on real MNIST, and the cached baseline.

Prints one JSON object. Targets (issue 2): import of compresslab at most 1.2x a bare
``import tensorflow`` measured in the same run; seed_cnn, 3 epochs on MNIST, at least 98.8%
test accuracy.

    python bench/bench_foundation.py [--data-dir ../shared/data/mnist] [--quick]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _common import emit, log, machine, parse_args, target


def import_seconds(statement: str, repeats: int) -> list[float]:
    """Wall time of a fresh interpreter running ``statement`` minus one running ``pass``."""
    times = []
    for _ in range(repeats):
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(output.stdout.strip().splitlines()[-1]))
    return times


def main() -> None:
    args = parse_args(__doc__)
    repeats = 2 if args.quick else 5
    log("import timing (fresh interpreters, alternating)")
    tf_times, cl_times = [], []
    for _ in range(repeats):  # alternate so drift on a shared machine hits both alike
        tf_times += import_seconds("import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'; import tensorflow", 1)
        cl_times += import_seconds("import compresslab", 1)
    tf_median, cl_median = statistics.median(tf_times), statistics.median(cl_times)

    import compresslab as cl

    data = cl.load_dataset("mnist", data_dir=args.data_dir)
    if args.quick:
        data = data.subset(train=3000, test=1000)
    epochs = 1 if args.quick else 3
    log(f"training seed_cnn on {len(data.x_train)} images for {epochs} epochs")
    model = cl.models.build("seed_cnn", data.input_shape, data.num_classes, seed=0)
    epoch_times = []
    last = [time.perf_counter()]

    def on_epoch(epoch, logs):
        now = time.perf_counter()
        epoch_times.append(now - last[0])
        last[0] = now
        log(f"epoch {epoch + 1}: {logs.get('accuracy', 0):.4f} train accuracy")

    last[0] = time.perf_counter()
    cl.train(model, data, epochs=epochs, seed=0, progress=on_epoch)
    accuracy = cl.models.accuracy(model, data)

    log("cached baseline() call")
    cl.baseline("seed_cnn", data, epochs=epochs, progress=False)  # makes sure the cache entry exists
    start = time.perf_counter()
    cached = cl.baseline("seed_cnn", data, epochs=epochs, progress=False)
    cached_seconds = time.perf_counter() - start

    ratio = cl_median / tf_median
    payload = {
        "benchmark": "foundation",
        "quick": args.quick,
        "machine": machine(),
        "versions": cl._keras.versions(),
        "import": {"tensorflow_s": tf_times, "compresslab_s": cl_times,
                   "tensorflow_median_s": tf_median, "compresslab_median_s": cl_median, "ratio": ratio},
        "seed_cnn_mnist": {"train_images": len(data.x_train), "test_images": len(data.x_test), "epochs": epochs,
                           "batch_size": 64, "test_accuracy": accuracy, "seconds_per_epoch": epoch_times,
                           "median_seconds_per_epoch": statistics.median(epoch_times)},
        "cached_baseline": {"seconds": cached_seconds, "from_cache": cached.compresslab_info["cached"]},
        "targets": {
            "import_ratio": target(ratio, "<= 1.2 x bare import tensorflow", ratio <= 1.2),
            "seed_cnn_accuracy": target(accuracy, ">= 0.988 after 3 epochs (full MNIST)",
                                        accuracy >= 0.988 and not args.quick),
        },
    }
    emit("foundation" + ("_quick" if args.quick else ""), payload, args.out)


if __name__ == "__main__":
    main()
