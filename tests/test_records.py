import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import compresslab as cl


def _record(i=0, **kw):
    return cl.Record(name=f"variant {i}", technique="quantize", spec={"bits": i}, dataset="digits",
                     accuracy=0.9, params=100, nonzero_params=80, dense_float32_bytes=400,
                     tflite_bytes=1000, gzip_bytes=200, **kw)


def test_record_round_trip_and_validation():
    record = _record(extra={"sparse_bytes": 123})
    again = cl.Record.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record and again.key == record.key
    assert record.sparsity == pytest.approx(0.2)
    with pytest.raises(ValueError, match="accuracy is 93"):
        cl.Record(name="x", accuracy=93)
    with pytest.raises(ValueError, match="name is ''"):
        cl.Record(name="")
    with pytest.raises(ValueError, match="unknown Record fields \\['colour'\\]"):
        cl.Record.from_dict({"name": "x", "colour": "red"})


def test_to_frame_one_row_per_record_with_derived_columns():
    frame = cl.to_frame([_record(1), _record(2, extra={"sparse_bytes": 50})])
    assert len(frame) == 2
    assert frame.loc[0, "ratio_vs_float32_gzip"] == 2.0
    assert frame.loc[1, "extra.sparse_bytes"] == 50
    assert json.loads(frame.loc[1, "spec_json"]) == {"bits": 2}
    empty = cl.to_frame([])
    assert empty.empty and "accuracy" in empty.columns


def test_log_appends_resumes_and_keys(tmp_path):
    path = tmp_path / "runs" / "log.jsonl"
    log = cl.ExperimentLog(path)
    log.append(_record(1))
    log.append(_record(2))
    resumed = cl.ExperimentLog(path)
    resumed.append(_record(3))
    assert [r.name for r in cl.ExperimentLog(path)] == ["variant 1", "variant 2", "variant 3"]
    assert _record(2).key in resumed.keys() and _record(9).key not in resumed.keys()
    with pytest.raises(ValueError, match="takes a Record"):
        log.append({"name": "x"})


def test_torn_last_line_is_skipped_then_moved_aside(tmp_path):
    path = tmp_path / "log.jsonl"
    log = cl.ExperimentLog(path)
    log.append(_record(1))
    with open(path, "a") as handle:
        handle.write('{"name": "variant 2", "techn')  # a write cut short by a crash
    with pytest.warns(UserWarning, match="torn last line"):
        assert len(log.records()) == 1
    with pytest.warns(UserWarning, match="moved a torn last line"):
        log.append(_record(3))
    assert [r.name for r in log] == ["variant 1", "variant 3"]
    assert (tmp_path / "log.jsonl.torn").read_text().startswith('{"name": "variant 2"')


def test_corrupt_middle_line_is_an_error_not_a_silent_skip(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(_record(1).to_dict()) + "\nnot json\n" + json.dumps(_record(2).to_dict()) + "\n")
    with pytest.raises(ValueError, match="line 2 is not a valid record"):
        cl.ExperimentLog(path).records()


def test_killed_writer_loses_no_finished_record(tmp_path):
    path = tmp_path / "log.jsonl"
    progress = tmp_path / "progress"
    script = textwrap.dedent(f"""
        import os
        from compresslab.records import ExperimentLog, Record
        log = ExperimentLog({str(path)!r})
        for i in range(100000):
            log.append(Record(name=f"variant {{i}}", spec={{"i": i, "pad": "x" * 2000}}))
            with open({str(progress)!r}, "w") as handle:
                handle.write(str(i))
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        if progress.exists() and progress.read_text().strip() and int(progress.read_text() or 0) >= 50:
            break
        time.sleep(0.05)
    finished = int(progress.read_text())
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert finished >= 50
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        records = cl.ExperimentLog(path).records()
    # every record whose append returned is there, in order, intact
    assert len(records) >= finished + 1
    assert [r.spec["i"] for r in records] == list(range(len(records)))
