"""The pure parts of bench/bench_notebooks.py: one notebook's summary, the notebook list. No kernel runs."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_notebooks", Path(__file__).resolve().parents[1] / "bench" / "bench_notebooks.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

CELLS = [(2, "import compresslab as cl\n", 5.04), (4, "\n\nlog.append(x)  # six records\n", 30.26),
         (6, "grid = {}\n", 12.0), (7, "x = 1\n", 0.01), (9, "board\n", 12.0), (11, "", 0.3), (13, "y\n", 1.0)]


def test_summary_lists_the_five_slowest_cells_slowest_first_with_their_first_code_line():
    summary = bench.summarize("05_report", 71.449, CELLS, kernel_start_seconds=0.94)
    assert summary["slowest_cells"] == [
        {"index": 4, "code": "log.append(x)  # six records", "seconds": 30.26},
        {"index": 6, "code": "grid = {}", "seconds": 12.0},   # a tie: the earlier cell first
        {"index": 9, "code": "board", "seconds": 12.0},
        {"index": 2, "code": "import compresslab as cl", "seconds": 5.04},
        {"index": 13, "code": "y", "seconds": 1.0},
    ]
    assert summary["total_seconds"] == 71.4 and summary["kernel_start_seconds"] == 0.9
    assert summary["code_cells"] == 7 and summary["cells_seconds"] == 60.6
    assert summary["target_seconds"] == 60.0 and summary["met"] is False


def test_the_target_is_met_at_exactly_the_limit_and_can_be_changed():
    assert bench.summarize("00_start_here", 60.0, CELLS[:2])["met"] is True
    assert bench.summarize("00_start_here", 60.01, CELLS[:2])["met"] is False
    assert bench.summarize("00_start_here", 44.0, CELLS[:2], target_seconds=45)["met"] is True
    assert len(bench.summarize("00_start_here", 1.0, [])["slowest_cells"]) == 0


def test_summary_refuses_negative_times_and_a_target_that_is_not_positive():
    with pytest.raises(ValueError, match="times must be >= 0"):
        bench.summarize("01_quantization", 10.0, [(1, "x\n", -0.5)])
    with pytest.raises(ValueError, match="target_seconds must be positive"):
        bench.summarize("01_quantization", 10.0, CELLS, target_seconds=0)


def test_only_picks_notebooks_by_stem_or_file_name_and_names_the_choices_when_wrong():
    assert [path.name for path in bench.notebook_paths(["05_report", "01_quantization.ipynb"])] == [
        "05_report.ipynb", "01_quantization.ipynb"]
    every = [path.name for path in bench.notebook_paths(None)]
    assert every == sorted(every) and "app.ipynb" not in every and len(every) == 6
    with pytest.raises(SystemExit, match="'05': no such course notebook; choose from 00_start_here"):
        bench.notebook_paths(["05"])
