import os
import subprocess
import sys

import compresslab as cl


def test_import_loads_neither_ipywidgets_nor_plotly():
    code = (
        "import sys, compresslab as cl; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'plotly')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stdout + result.stderr


def test_legacy_keras_is_selected_before_tensorflow():
    from compresslab._keras import keras, tf

    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert keras.__version__.startswith("2.") and tf.keras.__name__.startswith("tf_keras")


def test_public_foundation_names():
    for name in ["load_dataset", "Dataset", "train", "baseline", "load_model", "save_model", "measure",
                 "Record", "to_frame", "ExperimentLog", "as_tf_keras"]:
        assert callable(getattr(cl, name)), name
    for name in ["seed_cnn", "lenet5", "lenet_300_100", "student_cnn"]:
        assert callable(getattr(cl.models, name)), name
    assert cl.as_tf_keras is cl.modelio.as_tf_keras and issubclass(cl.ModelTypeError, TypeError)


def test_import_loads_no_study_machinery_and_every_module_is_reachable():
    code = (
        "import sys, compresslab as cl; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'sqlalchemy', 'psycopg2')); "
        "assert not heavy, heavy; "
        "[getattr(cl, name) for name in ('codec', 'sizes', 'studies', 'pipeline', 'quantize', 'prune')]; "
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr


def test_the_wheel_carries_the_data_files_the_code_reads(tmp_path):
    """An installed (not editable) compresslab needs the .cldc header dictionary and the chart script."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(root)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("compresslab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "compresslab/codec/header_v2.zdict" in names
    assert "compresslab/widgets/static/chart.js" in names
