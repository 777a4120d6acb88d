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
    finished = -1
    while time.time() < deadline:
        # read once per look: the writer rewrites the file, so a second read may find it empty
        text = progress.read_text().strip() if progress.exists() else ""
        finished = max(finished, int(text) if text else -1)
        if finished >= 50:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert finished >= 50
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        records = cl.ExperimentLog(path).records()
    # every record whose append returned is there, in order, intact
    assert len(records) >= finished + 1
    assert [r.spec["i"] for r in records] == list(range(len(records)))


def _log_with(tmp_path, *payloads):
    path = tmp_path / "log.jsonl"
    lines = [json.dumps(_record(1).to_dict())] + [json.dumps({**_record(2).to_dict(), **p}) for p in payloads]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "change, field",
    [
        ({"gzip_bytes": "big"}, "Record.gzip_bytes is 'big'"),
        ({"params": -100}, "Record.params is -100"),
        ({"extra": 5}, "Record.extra is 5"),
        ({"spec": [1, 2]}, r"Record.spec is \[1, 2\]"),
        ({"accuracy": "high"}, "Record.accuracy is 'high'"),
        ({"latency_ms": -1.0}, "Record.latency_ms is -1.0"),
        ({"nonzero_params": 500}, "Record.nonzero_params is 500; it cannot exceed params"),
        ({"timestamp": 12}, "Record.timestamp is 12"),
        ({"seed": 1.5}, "Record.seed is 1.5"),
    ],
)
def test_records_are_type_checked_on_read_with_file_line_and_field(tmp_path, change, field):
    path = _log_with(tmp_path, change)
    with pytest.raises(ValueError, match=rf"log.jsonl, line 2 is not a valid record \({field}"):
        cl.ExperimentLog(path).records()


def test_record_checks_types_ranges_and_finiteness():
    for bad, message in [
        ({"params": True}, "params is True"),
        ({"tflite_bytes": 10.5}, "tflite_bytes is 10.5; it must be a whole number >= 0"),
        ({"accuracy": float("nan")}, "accuracy is nan; it must be a fraction in"),
        ({"entropy_bytes": float("inf")}, "entropy_bytes is inf; it must be a finite number"),
        ({"latency_threads": 0}, "latency_threads is 0"),
        ({"extra": {1: "a"}}, "extra is {1: 'a'}; it must be a dict with string keys"),
        ({"technique": None}, "technique is None; it must be a string"),
    ]:
        with pytest.raises(ValueError, match=message):
            cl.Record(name="x", **bad)
    import numpy as np

    record = cl.Record(name="x", params=np.int64(10), accuracy=np.float32(0.5), seed=np.int32(3))
    assert type(record.params) is int and type(record.accuracy) is float and type(record.seed) is int
    assert record.to_dict()["params"] == 10
    with pytest.raises(ValueError, match="'name' is missing"):
        cl.Record.from_dict({"technique": "prune"})
    with pytest.raises(ValueError, match="JSON object \\(dict\\), got list"):
        cl.Record.from_dict([1, 2])


def test_log_line_that_is_not_an_object_names_the_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(_record(1).to_dict()) + "\n[1, 2]\n" + json.dumps(_record(2).to_dict()) + "\n")
    with pytest.raises(ValueError, match="line 2 is not a valid record \\(a Record is a JSON object"):
        cl.ExperimentLog(path).records()


def test_torn_bad_last_line_stays_a_warning_naming_its_line(tmp_path):
    path = _log_with(tmp_path, {})
    with open(path, "a") as handle:
        handle.write('{"name": "variant 3", "gzip_bytes": "bi')
    with pytest.warns(UserWarning, match="line 3: skipped a torn last line"):
        assert len(cl.ExperimentLog(path).records()) == 2


def test_append_repairs_a_tail_longer_than_one_read_chunk(tmp_path):
    path = tmp_path / "log.jsonl"
    log = cl.ExperimentLog(path)
    log.append(_record(1))
    with open(path, "a") as handle:
        handle.write('{"name": "' + "x" * 200_000)  # a torn line longer than the 64 KiB tail read
    with pytest.warns(UserWarning, match="moved a torn last line"):
        log.append(_record(2))
    assert [r.name for r in log] == ["variant 1", "variant 2"]
    assert len((tmp_path / "log.jsonl.torn").read_bytes()) == 200_011


def test_a_record_carries_its_references_bytes():
    from compresslab.records import Record, ratio_reference_bytes, to_frame, with_reference

    teacher = Record(name="teacher", params=1000, dense_float32_bytes=4000)
    student = Record(name="student", technique="distill", params=100, dense_float32_bytes=400)
    assert ratio_reference_bytes(student) == 400  # no reference: its own parameters
    linked = with_reference(student, teacher)
    assert (linked.reference, linked.reference_bytes, ratio_reference_bytes(linked)) == ("teacher", 4000, 4000)
    assert Record.from_dict(linked.to_dict()) == linked
    assert linked.key == student.key  # the reference is a figure, not part of the variant's identity
    assert to_frame([teacher, linked])["ratio_reference_bytes"].tolist() == [4000, 4000]
    with pytest.raises(ValueError, match="Record.reference_bytes is -1"):
        Record(name="x", reference_bytes=-1)
    with pytest.raises(ValueError, match="Record.reference is 5; it must be the reference model's name"):
        Record(name="x", reference=5)
    with pytest.raises(TypeError, match="reference must be a Record"):
        with_reference(student, "teacher")
