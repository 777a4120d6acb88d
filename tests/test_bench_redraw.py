"""The pure parts of bench/bench_redraw.py: summary statistics, issue 13's rule, arguments. No browser."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_redraw", Path(__file__).resolve().parents[1] / "bench" / "bench_redraw.py")
redraw = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(redraw)


def test_summary_has_median_max_nearest_rank_p90_and_count():
    samples = [410.0, 380.0, 500.0, 395.0, 420.0, 405.0, 390.0, 700.0, 400.0, 415.0]
    summary = redraw.summarize(samples, target_ms=200)
    assert summary == {"median_ms": 407.5, "max_ms": 700.0, "p90_ms": 500.0, "moves": 10,
                       "target_ms": 200, "met": False}


def test_summary_without_target_has_no_met_and_rounds_to_a_tenth():
    assert redraw.summarize([10.04, 20.06, 30.0]) == {"median_ms": 20.1, "max_ms": 30.0, "p90_ms": 30.0, "moves": 3}


def test_percentile_is_nearest_rank():
    values = list(range(1, 21))  # 1..20
    assert redraw.percentile(values, 0.9) == 18
    assert redraw.percentile(values, 0.5) == 10
    assert redraw.percentile(values, 1.0) == 20
    assert redraw.percentile([7, 3, 5], 0.9) == 7
    with pytest.raises(ValueError, match="no values"):
        redraw.percentile([], 0.9)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        redraw.percentile([1, 2], 90)


def test_summarize_refuses_no_samples():
    with pytest.raises(ValueError, match="no samples"):
        redraw.summarize([], target_ms=200)


@pytest.mark.parametrize("median, maximum, target, met", [
    (150, 290, 200, True),     # within target, max under 2x
    (200, 400, 200, True),     # both bounds inclusive
    (201, 300, 200, False),    # median over target
    (150, 301, 200, False),    # max over twice the median
    (412, 509, 200, False),    # the hand-measured QuantizationLab figures
    (250, 400, 300, True),     # the app's target
])
def test_met_rule_is_median_within_target_and_max_within_twice_median(median, maximum, target, met):
    assert redraw.target_met(median, maximum, target) is met
    samples = [median, median, maximum]
    assert redraw.summarize(samples, target)["met"] is met


def test_slider_result_keeps_samples_settled_times_and_first_visits():
    moves = [{"from": "8", "to": "7", "chart_ms": 300.0, "settled_ms": 420.0, "first_visit": True},
             {"from": "7", "to": "8", "chart_ms": 100.0, "settled_ms": 180.0, "first_visit": False},
             {"from": "8", "to": "7", "chart_ms": 120.0, "settled_ms": None, "first_visit": False}]
    result = redraw.slider_result(moves, 200)
    assert (result["median_ms"], result["max_ms"], result["met"]) == (120.0, 300.0, False)
    assert result["samples_ms"] == [300.0, 100.0, 120.0]
    assert result["first_visit_ms"] == [300.0]
    assert (result["settled_median_ms"], result["settled_max_ms"]) == (300.0, 420.0)
    assert result["values"] == ["8", "7", "8", "7"]


def test_first_key_moves_up_from_the_bottom_and_down_otherwise():
    assert redraw.first_key(0.0, 0.0) == "ArrowRight"
    assert redraw.first_key(8, 1) == "ArrowLeft"
    assert redraw.first_key(None, None) == "ArrowLeft"


def test_moves_defaults_to_15_and_accepts_3():
    assert redraw.parse_arguments([]).moves == 15
    assert redraw.parse_arguments(["--moves", "3", "--out", "x.json"]).moves == 3


@pytest.mark.parametrize("value, message", [
    ("2", "--moves must be >= 3"),
    ("0", "--moves must be >= 3"),
    ("-5", "--moves must be >= 3"),
    ("many", "--moves must be a whole number >= 3; got 'many'"),
    ("2.5", "--moves must be a whole number >= 3; got '2.5'"),
])
def test_too_few_or_non_integer_moves_are_refused_with_a_clear_error(value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        redraw.parse_arguments(["--moves", value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_slider_result_summarizes_the_page_clock_and_plotly_draw_times():
    moves = [{"from": "8", "to": "7", "chart_ms": 300.0, "settled_ms": 420.0, "drawn_ms": 250.0,
              "draw_ms": [90.0, 60.0], "first_visit": True},
             {"from": "7", "to": "8", "chart_ms": 100.0, "settled_ms": 180.0, "drawn_ms": 80.0,
              "draw_ms": [40.0, 30.0], "first_visit": False},
             {"from": "8", "to": "7", "chart_ms": 120.0, "settled_ms": None, "drawn_ms": None,
              "draw_ms": [], "first_visit": False}]
    result = redraw.slider_result(moves, 200)
    assert (result["page_drawn_median_ms"], result["page_drawn_max_ms"]) == (165.0, 250.0)
    assert (result["plotly_draw_median_ms"], result["charts_drawn_per_move"]) == (50.0, 1.3)
