

def test_log_axes_label_every_tick_in_full():
    from compresslab.plots.common import log_axis, short_number

    axis = log_axis([19_678, 23_309, 117_992])
    assert axis["type"] == "log" and axis["ticktext"] == ["10k", "20k", "50k", "100k", "200k"]
    wide = log_axis([1, 44_000])                       # more than two decades: powers of ten only
    assert wide["ticktext"] == ["1", "10", "100", "1k", "10k", "100k"]
    assert log_axis([5_000, 5_000])["ticktext"] == ["5k", "10k"]   # never a single label
    assert log_axis([]) == {"type": "log"} and short_number(1_500_000) == "1.5M"


# -- every chart string in the panel language ---------------------------------------------------

import re  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import compresslab as cl  # noqa: E402
from compresslab import i18n  # noqa: E402
from compresslab.plots import common, distillation, pruning, quantization, tradeoff  # noqa: E402

# ASCII words a Chinese chart may keep: code and format names, units, math symbols, the test data's own names.
ALLOWED_WORDS = {"float", "int", "TFLite", "gzip", "CSR", "PTQ", "QAT", "log", "alpha", "softmax", "logits",
                 "conv", "keras", "litert", "extra", "compresslab"}
ASCII_WORD = re.compile(r"[A-Za-z]{3,}")


# Every test starts and ends in English (tests/conftest.py), so no other test sees Chinese labels.
pytestmark = pytest.mark.usefixtures("english_afterwards")


def _frame():
    return pd.DataFrame([
        {"name": "conv v1", "technique": "baseline", "accuracy": 0.97, "accuracy_backend": "keras",
         "tflite_bytes": 90_000, "gzip_bytes": 80_000, "dense_float32_bytes": 100_000, "params": 25_000,
         "latency_ms": 0.2, "extra.bits": 32, "spec_json": "{}"},
        {"name": "PTQ int8", "technique": "quantize", "accuracy": 0.96, "accuracy_backend": "litert",
         "tflite_bytes": 25_000, "gzip_bytes": 20_000, "dense_float32_bytes": 100_000, "params": 25_000,
         "latency_ms": 0.1, "extra.bits": 8, "extra.tflite_mode": "int8", "spec_json": "{}"},
        {"name": "v3", "technique": "prune", "accuracy": 0.95, "accuracy_backend": "keras",
         "tflite_bytes": 90_000, "gzip_bytes": 30_000, "dense_float32_bytes": 100_000, "params": 25_000,
         "latency_ms": 0.2, "extra.bits": None, "spec_json": "{}"},
    ])


def _figures():
    """Every public fig_* and *_traces of compresslab.plots, name -> a figure or a list of trace dicts."""
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.1, (3, 3, 1, 4))
    kept = np.abs(weights) > 0.05
    accuracy = pd.DataFrame({"sparsity": [0.5, 0.8, 0.5, 0.9], "accuracy": [0.97, 0.9, 0.96, 0.95],
                             "series": ["magnitude, layer scope", "magnitude, layer scope",
                                        "magnitude, global scope", "fine-tuned (polynomial)"]})
    schedule = pd.DataFrame({"step": [0, 5, 10, 0, 5, 10], "sparsity": [0, 0.4, 0.8, 0.8, 0.8, 0.8],
                             "schedule": ["polynomial (chosen)"] * 3 + ["constant"] * 3})
    sizes = pd.DataFrame([{"name": "unpruned", **dict.fromkeys(pruning.SIZE_LABELS, 100_000)},
                          {"name": "pruned now", **dict.fromkeys(pruning.SIZE_LABELS, 40_000)}])
    scan = pd.DataFrame({"layer": ["conv1", "conv1", "conv2", "conv2"], "sparsity": [0.5, 0.9] * 2,
                         "accuracy": [0.97, 0.9, 0.96, 0.8]})
    curve = [{"bits": b, "accuracy": 0.9 + b / 200} for b in (2, 4, 8)]
    sensitivity = pd.DataFrame({"layer": ["conv1", "conv2"] * 2, "bits": [2, 2, 4, 4],
                                "accuracy_drop_points": [5.0, 2.0, 1.0, 0.5]})
    errors = {"layer": ["conv1", "conv2"], "storage": ["int8", "int4"], "weight_snr_db": [30.0, 20.0],
              "output_snr_db": [25.0, float("inf")]}
    distilled = pd.DataFrame([
        {"name": "teacher (conv)", "technique": "baseline", "accuracy": 0.98, "params": 90_000,
         "tflite_bytes": 360_000, "latency_ms": 0.3},
        {"name": "scratch student 0.5x", "technique": "baseline", "accuracy": 0.95, "params": 9_000,
         "tflite_bytes": 36_000, "latency_ms": 0.1},
        {"name": "distilled student 0.5x", "technique": "distill", "accuracy": 0.96, "params": 9_000,
         "tflite_bytes": 36_000, "latency_ms": None},
    ])
    histories = {"scratch": {"val_accuracy": [0.9, 0.95]}, "distilled": {"val_accuracy": [0.91, 0.96]}}
    probabilities = np.full((2, 3), 1 / 3)
    return {
        "fig_weight_histogram": common.fig_weight_histogram(weights, lines=[0.1], line_label="|w|"),
        "fig_tradeoff": tradeoff.fig_tradeoff(_frame(), highlight=[1]),
        "fig_tradeoff gzip": tradeoff.fig_tradeoff(_frame(), size="gzip_bytes"),
        "threshold_histogram_traces": pruning.threshold_histogram_traces(weights, 0.05),
        "threshold_histogram_traces per layer": pruning.threshold_histogram_traces(weights, kept=kept),
        "fig_threshold_histogram": pruning.fig_threshold_histogram(weights, 0.05),
        "layer_sparsity_traces": pruning.layer_sparsity_traces({"conv1": 0.5, "conv2": 0.7}),
        "fig_layer_sparsity": pruning.fig_layer_sparsity({"conv1": 0.5, "conv2": 0.7}, target=0.01),
        "accuracy_traces": pruning.accuracy_traces(accuracy, float_accuracy=0.97, current=(0.5, 0.96)),
        "accuracy_traces one series": pruning.accuracy_traces(accuracy[["sparsity", "accuracy"]]),
        "fig_accuracy_vs_sparsity": pruning.fig_accuracy_vs_sparsity(accuracy, float_accuracy=0.97,
                                                                     current=(0.5, 0.96)),
        "fig_sensitivity": pruning.fig_sensitivity(scan, float_accuracy=0.97),
        "fig_sparsity_schedule": pruning.fig_sparsity_schedule(schedule, steps_per_epoch=5),
        "fig_sparsity_schedule one": pruning.fig_sparsity_schedule(schedule[["step", "sparsity"]]),
        "size_traces": pruning.size_traces(sizes),
        "size_traces one": pruning.size_traces({"tflite_bytes": 1000, "gzip_bytes": 500}),
        "fig_sizes": pruning.fig_sizes(sizes),
        "fig_log_alpha": pruning.fig_log_alpha(weights, weights, magnitude_kept=kept),
        "fig_log_alpha |w|": pruning.fig_log_alpha(weights, weights),
        "quantization_levels_traces": quantization.quantization_levels_traces(weights, weights, [-0.1, 0, 0.1]),
        "quantization_levels_traces dense": quantization.quantization_levels_traces(
            weights, levels=np.linspace(-0.3, 0.3, 1000)),
        "fig_quantization_levels": quantization.fig_quantization_levels(weights, weights, [-0.1, 0, 0.1]),
        "accuracy_vs_bits_traces": quantization.accuracy_vs_bits_traces(
            curve, float_accuracy=0.97, current_bits=4, records=_frame()),
        "fig_accuracy_vs_bits": quantization.fig_accuracy_vs_bits(curve, float_accuracy=0.97, current_bits=4),
        "fig_quantized_size_vs_accuracy": quantization.fig_quantized_size_vs_accuracy(_frame()),
        "fig_quantized_size_vs_accuracy empty": quantization.fig_quantized_size_vs_accuracy([], size="gzip_bytes"),
        "fig_quantized_size_vs_accuracy dense": quantization.fig_quantized_size_vs_accuracy(
            _frame(), size="dense_float32_bytes"),
        "fig_quantization_sensitivity": quantization.fig_quantization_sensitivity(sensitivity),
        "fig_layer_errors": quantization.fig_layer_errors(errors),
        "fig_soft_targets": distillation.fig_soft_targets(probabilities, [1, 5], true_label=0),
        "fig_digit": distillation.fig_digit(np.zeros((8, 8))),
        "fig_distill_comparison": distillation.fig_distill_comparison(distilled),
        "fig_distill_comparison untimed": distillation.fig_distill_comparison(
            distilled.drop(columns=["tflite_bytes"]).assign(dense_float32_bytes=1000)),
        "fig_distill_curves": distillation.fig_distill_curves(histories),
        "fig_distill_errors": distillation.fig_distill_errors(
            [{"seed": 0, "scratch_errors": 30, "distilled_errors": 25}], teacher_errors=20),
    }


def _texts(figure) -> list[str]:
    """Every title, axis title, annotation, legend name, bar category and hover template a reader sees."""
    if isinstance(figure, list):
        traces, layout = figure, {}
    else:
        data = figure.to_plotly_json()
        traces, layout = data["data"], data["layout"]
    texts = [(layout.get("title") or {}).get("text")]
    texts += [(value.get("title") or {}).get("text") for key, value in layout.items()
              if key.startswith(("xaxis", "yaxis"))]
    texts += [annotation.get("text") for annotation in layout.get("annotations", [])]
    for trace in traces:
        texts += [trace.get("name"), trace.get("hovertemplate"), ((trace.get("colorbar") or {}).get("title") or {})
                  .get("text") if isinstance((trace.get("colorbar") or {}).get("title"), dict) else None]
        if trace.get("type") == "bar" and isinstance(trace.get("x"), (list, tuple)):  # categories, not numbers
            texts += [x for x in trace["x"] if isinstance(x, str)]
    return [str(text) for text in texts if text]


def test_every_chart_is_chinese_after_set_language_zh():
    cl.set_language("zh")
    for name, figure in _figures().items():
        texts = _texts(figure)
        assert texts, name
        english = {word for text in texts for word in ASCII_WORD.findall(re.sub(r"%\{[^}]*\}", "", text))
                   if word not in ALLOWED_WORDS}
        assert not english, f"{name}: English left in {sorted(english)}: {texts}"
    assert "帕累托前沿" in _texts(_figures()["fig_tradeoff"])


def test_english_chart_strings_are_unchanged():
    figures = _figures()
    layer = figures["fig_layer_sparsity"]
    assert layer.layout.title.text == "Sparsity per layer"
    assert (layer.layout.xaxis.title.text, layer.layout.yaxis.title.text) == ("layer", "zero weights (%)")
    assert [trace.name for trace in layer.data] == ["sparsity", "target 1%"]
    assert [trace["name"] for trace in figures["accuracy_traces"]] == [
        "magnitude, layer scope", "magnitude, global scope", "fine-tuned (polynomial)", "unpruned", "now"]
    assert figures["fig_accuracy_vs_sparsity"].layout.xaxis.title.text == "sparsity (%)"
    assert figures["fig_accuracy_vs_sparsity"].layout.yaxis.title.text == "test accuracy (%)"
    board = figures["fig_tradeoff"]
    assert [trace.name for trace in board.data] == ["baseline", "quantize", "prune", "Pareto front", "selected"]
    assert board.layout.xaxis.title.text == "size in bytes, log scale (smallest stored file)"
    assert [trace["name"] for trace in figures["threshold_histogram_traces"]][2] == "±threshold 0.05"
    assert [trace.name for trace in figures["fig_sparsity_schedule"].data] == [
        "polynomial (chosen)", "constant", "epoch end"]
    assert figures["fig_quantization_levels"].data[0].name == "float weights"
    assert figures["fig_quantization_levels"].data[2].name == "quantization levels (3)"
    assert figures["fig_distill_errors"].layout.title.text == "Test errors out of 10,000"
    assert list(figures["fig_distill_comparison"].data[0].x) == [
        "teacher (conv)", "scratch student 0.5x", "distilled student 0.5x"]
    assert figures["fig_soft_targets"].data[1].name == "T = 5 (H = 1.58 bits)"
    assert figures["fig_soft_targets"].data[1].hovertemplate == "class %{x}: p = %{y:.4f}<extra>T = 5</extra>"
    # In English a trace's meta is its name (or the fixed part of a name holding numbers).
    for name, figure in figures.items():
        for trace in (figure if isinstance(figure, list) else figure.to_plotly_json()["data"]):
            if "meta" in trace:
                assert trace["meta"] in trace["name"], (name, trace)


def test_hover_text_is_chinese_too():
    row = _frame().loc[1].to_dict()
    english = tradeoff.hover_text(row, 20_000, "gzip_bytes")
    assert "accuracy 96.00% (litert)" in english and "size 20,000 bytes (gzip -9 of the TFLite file)" in english
    assert "5.0x smaller than dense float32" in english
    cl.set_language("zh")
    chinese = tradeoff.hover_text(row, 20_000, "gzip_bytes")
    assert "准确率 96.00%（litert）" in chinese and "缩小为稠密 float32 的 1/5.0" in chinese
    assert not set(ASCII_WORD.findall(chinese)) - ALLOWED_WORDS, chinese
    unmeasured = tradeoff.hover_text({"name": "v", "technique": "prune", "spec": {"bits": 4}}, None, "smallest")
    assert unmeasured == "<b>v</b> (剪枝)<br>准确率：未测量<br>大小：未测量<br>配置：bits: 4"


def test_code_finds_traces_by_meta_in_every_language():
    """Notebook 05's exercise-3 check picks the tradeoff chart's technique traces by meta, not by name."""
    found = {}
    for language in i18n.LANGUAGES:
        cl.set_language(language)
        figure = tradeoff.fig_tradeoff(_frame(), highlight=[0])
        found[language] = {trace.meta for trace in figure.data if trace.meta not in ("Pareto front", "selected")}
        assert {trace.meta for trace in figure.data} >= {"Pareto front", "selected"}
        names = {trace["meta"]: trace["name"] for trace in pruning.accuracy_traces(
            pd.DataFrame({"sparsity": [0.5], "accuracy": [0.9], "series": ["threshold |w| < t"]}),
            float_accuracy=0.97, current=(0.5, 0.9))}
        assert set(names) == {"threshold |w| < t", "unpruned", "now"}
    assert found["en"] == found["zh"] == {"baseline", "quantize", "prune"}
    assert names == {"threshold |w| < t": "阈值 |w| < t", "unpruned": "未剪枝", "now": "当前"}


def test_the_language_is_read_when_a_figure_is_built_not_at_import():
    assert pruning.fig_sizes(pd.DataFrame({"name": ["v1"], "tflite_bytes": [1]})).layout.title.text == "Honest sizes"
    cl.set_language("zh")
    figure = pruning.fig_sizes(pd.DataFrame({"name": ["v1"], "tflite_bytes": [1]}))
    assert figure.layout.title.text == "真实大小" and figure.data[0].name == "TFLite 文件"
    assert figure.data[0].meta == "TFLite file"
    assert pruning.fig_sizes(pd.DataFrame({"name": ["v1"]}), title="mine").layout.title.text == "mine"


def test_catalogue_english_matches_the_size_names_it_translates():
    for key, text in tradeoff.SIZE_MEASURES.items():
        assert i18n.MESSAGES[f"plot.size_measure.{key}"]["en"] == text
    for key, text in pruning.SIZE_LABELS.items():
        assert i18n.MESSAGES[f"plot.size_label.{key}"]["en"] == text
    cl.set_language("zh")
    assert common.display_label("fine-tuned (constant)") == "微调（恒定）"
    assert common.display_label("conv1") == "conv1"   # not a known label: unchanged
    with pytest.raises(ValueError, match="'biggest'.*smallest"):
        tradeoff.fig_tradeoff(_frame().iloc[:0], size="biggest")


def test_the_tradeoff_accuracy_axis_names_the_split_its_points_were_measured_on():
    test_only = tradeoff.fig_tradeoff(_frame())
    assert test_only.layout.yaxis.title.text == "test accuracy (%)"
    chosen = _frame().assign(**{"extra.split": "validation"})  # autocompress's trials: measured on validation
    figure = tradeoff.fig_tradeoff(chosen)
    assert figure.layout.yaxis.title.text == "validation accuracy (%)"
    assert all("measured on the validation split" in text for trace in figure.data[:3] for text in trace.hovertext)
    mixed = _frame().assign(**{"extra.split": ["validation", "test", None]})
    figure = tradeoff.fig_tradeoff(mixed)
    assert figure.layout.yaxis.title.text.startswith("accuracy (%): validation and test points")
    hovers = {trace.name: trace.hovertext[0] for trace in figure.data[:3]}
    assert "validation split" in hovers["baseline"] and "validation split" not in hovers["quantize"]
    cl.set_language("zh")
    assert tradeoff.fig_tradeoff(chosen).layout.yaxis.title.text == "验证集准确率（%）"
