"""The compresslab command: report, sweep and app (the app's server is not started here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from compresslab import cli
from compresslab.records import ExperimentLog, Record


def _log(path):
    log = ExperimentLog(path)
    log.append(Record(name="<script>alert(1)</script>", technique="baseline", dataset="digits", accuracy=0.9,
                      params=100, nonzero_params=100, dense_float32_bytes=400, tflite_bytes=900, gzip_bytes=500))
    log.append(Record(name="int8", technique="quantize", dataset="digits", accuracy=0.89, params=100,
                      nonzero_params=100, dense_float32_bytes=400, tflite_bytes=300, gzip_bytes=250))
    return path


def test_report_command(tmp_path, capsys):
    log = _log(tmp_path / "runs.jsonl")
    assert cli.main(["report", str(log), "-o", str(tmp_path / "out.html"), "--title", "Week 3"]) == 0
    text = (tmp_path / "out.html").read_text()
    assert "Week 3" in text and "<script>alert(1)</script>" not in text
    assert (tmp_path / "out.csv").exists() and (tmp_path / "out.json").exists()
    assert "html:" in capsys.readouterr().out


def test_report_command_errors(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cli.main(["report", str(empty), "-o", str(tmp_path / "r.html")]) == 2
    assert "holds no records" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


def test_sweep_config_is_checked(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"model": "seed_cnn", "grid": {}, "colour": 1, "workers": 0}))
    assert cli.main(["sweep", str(config)]) == 2
    err = capsys.readouterr().err
    assert "colour" in err and "missing key 'dataset'" in err and "missing key 'log'" in err and "workers" in err
    config.write_text("{not json")
    assert cli.main(["sweep", str(config)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert cli.main(["sweep", str(tmp_path / "missing.json")]) == 2


GOOD_GRID = {"steps": ["prune"], "prune.sparsity": [0.5], "prune.epochs": 1}


@pytest.mark.parametrize("change, words", [
    ({"model": 5}, "model is 5; it must be a zoo architecture name"),
    ({"model": ""}, "model is ''"),
    ({"epochs": "ten"}, "epochs is 'ten'; it must be an integer >= 1 or null"),
    ({"epochs": -1}, "epochs is -1"),
    ({"epochs": True}, "epochs is True"),
    ({"seed": "x"}, "seed is 'x'; it must be an integer >= 0"),
    ({"seed": -3}, "seed is -3"),
    ({"workers": 1.5}, "workers is 1.5"),
    ({"log": 5}, "log is 5; it must be a file path"),
    ({"grid": 3}, "grid is 3; it must be an object"),
    ({"title": ["a"]}, "title is ['a']; it must be a title"),
    ({"log": "afile/runs.jsonl"}, "log 'afile/runs.jsonl' cannot be written:"),
    ({"report": "afile/r.html"}, "report 'afile/r.html' cannot be written:"),
    ({"log": "."}, "is a folder"),
    ({"dataset": 3}, "dataset is 3; it must be a data set name (digits, mnist"),
    ({"dataset": "imagenet"}, "dataset is 'imagenet'"),
    ({"dataset": {"name": 5}}, "dataset.name is 5; it must be one of digits"),
    ({"dataset": {"name": "mnist", "data_dir": 5}}, "dataset.data_dir is 5; it must be a folder path"),
    ({"dataset": {"name": "mnist", "folder": "x"}}, "dataset has unknown key(s) ['folder']"),
    ({"grid": {"steps": ["quantize"], "quantize.bits": [4, "x"]}}, "grid configuration quantize.bits=\"x\": step 1 "
                                                                  "(quantize): QuantSpec.bits is 'x'; it must be"),
    ({"grid": {"steps": ["prune"], "prune.sparsity": [0.5, 1.5]}}, "grid configuration prune.sparsity=1.5: step 1"),
    ({"grid": {"steps": ["prune"], "quantize.bits": 4}}, "grid: grid key 'quantize.bits' must be"),
    ({"grid": {"steps": ["frobnicate"]}}, "grid configuration configuration: step 1"),
])
def test_sweep_config_values_of_the_wrong_type_or_place_are_refused_before_any_work(
        tmp_path, capsys, monkeypatch, change, words):
    (tmp_path / "afile").write_text("a file, not a folder")
    trained = []
    monkeypatch.setattr("compresslab.baseline", lambda *a, **k: trained.append(1))
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps({"model": "seed_cnn", "dataset": "digits", "grid": GOOD_GRID, "log": "runs.jsonl",
                                  **change}))
    assert cli.main(["sweep", str(config)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert trained == []  # nothing was trained


def test_one_problem_is_one_line_naming_the_key_and_value(tmp_path, capsys):
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps({"model": "seed_cnn", "dataset": "digits", "grid": GOOD_GRID, "log": "r.jsonl",
                                  "epochs": "ten"}))
    assert cli.main(["sweep", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "epochs is 'ten'; it must be an integer >= 1 or null" in err


@pytest.mark.parametrize("name, text, words", [
    ("sweep.yaml", "model: 5\ndataset: digits\nlog: r.jsonl\ngrid: {steps: [prune], prune.sparsity: 0.5}\n",
     "model is 5; it must be a zoo architecture name"),
    ("sweep.yml", "model: seed_cnn\ndataset: digits\nlog: r.jsonl\nepochs: ten\n"
                  "grid: {steps: [prune], prune.sparsity: 0.5}\n", "epochs is 'ten'"),
    ("sweep.yaml", "model: seed_cnn\n  dataset: [digits\n", "is not valid YAML"),
    ("sweep.yaml", "- a\n- list\n", "must hold an object (a mapping)"),
    ("sweep.yaml", "!!python/object/apply:os.system ['touch pwned']\n", "is not valid YAML"),
    ("sweep.json", '{"model": "seed_cnn",}', "is not valid JSON"),
    ("sweep.json", "[1, 2]", "must hold an object"),
    ("sweep.json", b"\xff\xfe\x00binary", "is not a text file"),
])
def test_config_files_that_cannot_be_read_are_clean_errors(tmp_path, capsys, monkeypatch, name, text, words):
    trained = []
    monkeypatch.setattr("compresslab.baseline", lambda *a, **k: trained.append(1))
    monkeypatch.chdir(tmp_path)
    config = tmp_path / name
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert cli.main(["sweep", str(config)]) == 2
    err = capsys.readouterr().err
    assert words in err and name in err and "Traceback" not in err
    assert trained == [] and not (tmp_path / "pwned").exists()


def test_a_config_that_is_a_folder_or_unreadable_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "conf.json").mkdir()
    assert cli.main(["sweep", str(tmp_path / "conf.json")]) == 2
    assert "conf.json is a folder" in capsys.readouterr().err
    if os.geteuid() != 0:  # root reads any file, whatever its mode
        unreadable = tmp_path / "secret.json"
        unreadable.write_text("{}")
        unreadable.chmod(0)
        assert cli.main(["sweep", str(unreadable)]) == 2
        assert "secret.json cannot be read" in capsys.readouterr().err


def test_a_yaml_config_runs_like_its_json_twin(tmp_path, monkeypatch):
    config = tmp_path / "sweep.yaml"
    config.write_text("model: seed_cnn\ndataset: digits\nlog: runs/p.jsonl\n"
                      "grid:\n  steps: [prune]\n  prune.sparsity: [0.5, 0.8]\n")
    loaded = cli.load_config(config)
    assert loaded["log"] == str(tmp_path / "runs" / "p.jsonl")
    assert loaded["grid"] == {"steps": ["prune"], "prune.sparsity": [0.5, 0.8]}


def test_an_unwritable_report_path_is_a_clean_error(tmp_path, capsys):
    log = _log(tmp_path / "runs.jsonl")
    (tmp_path / "afile").write_text("x")
    assert cli.main(["report", str(log), "-o", str(tmp_path / "afile" / "out.html")]) == 2
    err = capsys.readouterr().err
    assert "afile" in err and "Traceback" not in err


def test_sweep_command_runs_a_grid_and_writes_a_report(tmp_path, capsys, trained_student, monkeypatch):
    import compresslab as cl

    # The config names a model file; the command loads it, runs the grid and writes the report.
    cl.save_model(trained_student, tmp_path / "student.keras")
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps({"model": "student.keras", "dataset": "digits", "log": "runs/s.jsonl",
                                  "grid": {"steps": ["quantize"], "quantize.bits": [2, 8]},
                                  "report": "runs/s.html", "workers": 1}))
    from concurrent.futures import ThreadPoolExecutor

    from compresslab import pipeline

    real = pipeline.grid._run_configurations
    # Threads instead of processes keep this test fast; the process pool is tested in test_pipeline.
    monkeypatch.setattr(pipeline.grid, "_run_configurations",
                        lambda *a, **k: real(*a, **{**k, "executor": ThreadPoolExecutor(1)}))
    assert cli.main(["sweep", str(config)]) == 0
    out = capsys.readouterr().out
    assert "2 configuration(s)" in out and "quantize.bits=2" in out
    records = ExperimentLog(tmp_path / "runs" / "s.jsonl").records()
    assert [r.name for r in records] == ["quantize.bits=2", "quantize.bits=8"]
    assert records[1].accuracy > records[0].accuracy  # 8-bit weights keep the accuracy 2-bit loses
    assert (tmp_path / "runs" / "s.html").exists()
    assert cli.main(["sweep", str(config)]) == 0  # rerun: nothing left to do, same log
    assert len(ExperimentLog(tmp_path / "runs" / "s.jsonl")) == 2


def test_app_command(tmp_path, monkeypatch, capsys):
    notebook = tmp_path / "app.ipynb"
    notebook.write_text("{}")
    command, environment = cli.app_command(notebook, port=8899, no_browser=True)
    assert command[-1] == str(notebook) and "--port=8899" in command and "--no-browser" in command
    assert "--Voila.ip=127.0.0.1" in command  # this machine only, unless asked
    assert "--allow-root" not in command  # Voila has no such option (JupyterLab does)
    assert "voila" in " ".join(command[:3])
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command, env: calls.append((command, env)) or 0)
    assert cli.main(["app", "--notebook", str(notebook), "--port", "8899", "--token", "s3cret-token",
                     "--work-dir", str(tmp_path / "ana")]) == 0
    command, env = calls[0]
    assert command[-1] == str(notebook)
    assert not any("s3cret-token" in part for part in command)  # the token is not on the command line
    assert "s3cret-token" in (Path(env["JUPYTER_CONFIG_DIR"]) / "voila.json").read_text()
    assert oct((Path(env["JUPYTER_CONFIG_DIR"]) / "voila.json").stat().st_mode & 0o777) == "0o600"
    assert env["COMPRESSLAB_WORK_DIR"] == str((tmp_path / "ana").resolve())
    assert "s3cret-token" not in capsys.readouterr().out
    assert cli.main(["app", "--notebook", str(notebook), "--ip", "0.0.0.0"]) == 2
    assert "give a --token" in capsys.readouterr().err
    assert cli.main(["app", "--notebook", str(notebook), "--token", "short"]) == 2
    assert "shorter than 8 characters" in capsys.readouterr().err
    assert cli.main(["app", "--notebook", str(tmp_path / "missing.ipynb")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_study_commands_create_a_class_run_a_worker_and_report_progress(trained_student, small_digits, tmp_path,
                                                                         capsys):
    from compresslab import cli, studies

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    assert cli.main(["class", "create", "lab", "--storage", url, "--title", "Lab 3"]) == 0
    assert "class board 'lab' ready" in capsys.readouterr().out
    studies.create_sweep("grid", trained_student, small_digits,
                         {"steps": ["prune"], "prune.sparsity": [0.5, 0.8], "prune.schedule": "oneshot"}, storage=url)
    assert cli.main(["study", "grid", "--storage", url]) == 0
    assert "0/2 done" in capsys.readouterr().out
    assert cli.main(["worker", "--study", "grid", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "2/2 done" in out and "worker finished: 2 trial(s)" in out
    # mistakes are one line naming the problem, never a traceback
    assert cli.main(["worker", "--study", "nope", "--storage", url]) == 2
    assert "no study named 'nope'" in capsys.readouterr().err
    assert cli.main(["worker", "--study", "lab", "--storage", url]) == 2
    assert "is a class study" in capsys.readouterr().err
    assert cli.main(["worker", "--study", "grid", "--storage", url, "--max-trials", "0"]) == 2
    assert "--max-trials is 0" in capsys.readouterr().err
    assert cli.main(["study", "grid", "--storage", "nosuchdb://x"]) == 2
    assert "cannot open study storage" in capsys.readouterr().err
