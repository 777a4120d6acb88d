"""Train the baselines the course notebooks and the classroom app load, once, into the baseline cache.

Each notebook calls ``cl.baseline(...)``: a cached model loads in under a second, a missing one is
trained first (about 10 s each on 2 CPU cores, 30 s for notebook 00's two). ``make lab`` and
``make notebooks`` run this script first, so a student's first run of a notebook does not train,
and each notebook stays within its minute. Already cached baselines are only loaded (and their
SHA-256 checked); the whole script then takes about as long as importing TensorFlow.

    python scripts/prepare_baselines.py              # into <data home>/baselines (see compresslab.data)
    python scripts/prepare_baselines.py --cache-dir DIR

tests/test_notebooks_meta.py checks that every (model, validation split) a notebook loads is listed in
COURSE_BASELINES.
"""

from __future__ import annotations

import argparse
import sys
import time

# (zoo architecture, validation share carved from digits' training images, or None): what the notebooks load.
COURSE_BASELINES = (
    ("seed_cnn", None),     # 00, 03, 05 and the app
    ("student_cnn", None),  # 00
    ("seed_cnn", 0.2),      # 01, 02
    ("seed_cnn", 0.1),      # 04
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default=None, help="the baseline cache (default: <data home>/baselines)")
    args = parser.parse_args(argv)
    import compresslab as cl

    for arch, validation in COURSE_BASELINES:
        started = time.perf_counter()
        data = cl.load_dataset("digits", validation=validation) if validation else cl.load_dataset("digits")
        model = cl.baseline(arch, data, cache_dir=args.cache_dir, progress=False)
        split = f"{validation:.0%} validation" if validation else "no validation split"
        print(f"baseline {arch} on digits ({split}): ready in {time.perf_counter() - started:.1f} s, "
              f"test accuracy {cl.models.accuracy(model, data):.2%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
