"""Shared fixtures: the default digits data, tiny trained models, and the real MNIST folder.

Models here are small and trained for a few epochs so the whole unit suite stays fast; the
real-MNIST runs live in tests marked ``slow`` and in ``bench/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import compresslab as cl

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def digits():
    """The offline default data set (1,347 train / 450 test images, 28x28x1)."""
    return cl.load_dataset("digits")


@pytest.fixture(scope="session")
def small_digits(digits):
    """A smaller slice of digits for the quickest tests (600 train / 200 test)."""
    return digits.subset(train=600, test=200, seed=0)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("baselines")


@pytest.fixture(scope="session")
def trained_seed_cnn(digits, cache_dir):
    """seed_cnn trained on digits (about 95% test accuracy); do not modify it in a test."""
    return cl.baseline("seed_cnn", digits, epochs=6, seed=0, cache_dir=cache_dir, progress=False)


@pytest.fixture(scope="session")
def trained_student(digits, cache_dir):
    """A tiny student_cnn trained on digits; do not modify it in a test."""
    return cl.baseline("student_cnn", digits, epochs=6, seed=0, cache_dir=cache_dir, progress=False)


@pytest.fixture(scope="session")
def mnist_dir():
    """The real MNIST IDX files beside the checkout (CI has them; elsewhere the test is skipped)."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI"):
            pytest.fail(f"real MNIST is missing at {MNIST_DIR}; CI must provide ../shared/data/mnist")
        pytest.skip(f"real MNIST not found at {MNIST_DIR}")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    return cl.load_dataset("mnist", data_dir=mnist_dir)


@pytest.fixture
def english_afterwards():
    """The language is English when the test starts and again after it (for tests that switch to Chinese)."""
    cl.set_language("en")
    yield
    cl.set_language("en")
