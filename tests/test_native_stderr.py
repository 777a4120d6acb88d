"""What C++ code prints straight to file descriptor 2 stays out of a student's notebook, and is never lost."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from compresslab import tflite
from compresslab._keras import captured_native_stderr


def test_what_native_code_writes_is_caught_and_kept():
    with captured_native_stderr() as caught:
        os.write(2, b"fully_quantize: 0, inference_type: 6\n")
    assert caught.text == "fully_quantize: 0, inference_type: 6\n"


def test_a_failing_conversion_carries_what_the_converter_printed():
    class Broken:
        def convert(self):
            os.write(2, b"error: 'tfl.conv_2d' op is neither a custom op nor a flex op\n")
            raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed") as raised:
        tflite._quiet_convert(Broken())
    assert any("neither a custom op nor a flex op" in note for note in raised.value.__notes__)


def test_an_int8_conversion_prints_nothing_on_stderr(tmp_path):
    code = ("import compresslab as cl\nfrom compresslab.quantize import post_training\n"
            "data = cl.load_dataset('digits').subset(train=200, test=50, seed=0)\n"
            "model = cl.models.build('student_cnn', seed=0)\n"
            "post_training(model, data, 'int8')\nprint('converted')\n")
    env = {key: value for key, value in os.environ.items() if key != "COMPRESSLAB_VERBOSE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "converted" in done.stdout
    assert "fully_quantize" not in done.stderr and "inference_type" not in done.stderr, done.stderr[-2000:]
