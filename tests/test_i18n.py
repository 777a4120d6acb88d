"""The message catalogue, the language switch, Chinese panels and app, and the zh notebooks' generator."""

from __future__ import annotations

import json
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

import compresslab as cl
from compresslab import exercises, i18n

ROOT = Path(__file__).resolve().parents[1]
HAN = re.compile(r"[\u4e00-\u9fff]")


# Every test starts and ends in English (tests/conftest.py), so no other test sees Chinese labels.
pytestmark = pytest.mark.usefixtures("english_afterwards")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys_and_fields():
    assert i18n.MESSAGES, "empty catalogue"
    for key, texts in i18n.MESSAGES.items():
        assert set(texts) == set(i18n.LANGUAGES), key
        assert texts["en"].strip() and texts["zh"].strip(), key
        assert _fields(texts["en"]) == _fields(texts["zh"]), key
    # Every Chinese text that is not a code name is really Chinese.
    untranslated = [k for k, v in i18n.MESSAGES.items() if v["zh"] == v["en"] and not k.startswith("quant.ptq_")
                    and k != "quant.qat"]
    assert untranslated == []


def test_set_language_validates_and_t_names_a_missing_key():
    with pytest.raises(ValueError, match=r"'fr'.*'en', 'zh'"):
        cl.set_language("fr")
    assert cl.get_language() == "en"
    cl.set_language("zh")
    assert cl.get_language() == "zh"
    assert i18n.t("quant.bits") == "位宽"
    assert i18n.t("quant.bits_measured", bits=4) == "已测量 4 位"
    with pytest.raises(KeyError, match="no.such.key"):
        i18n.t("no.such.key")


def test_the_environment_variable_chooses_the_default_and_is_validated():
    code = "import compresslab.i18n as i; print(i.get_language())"
    for value, expected in (("zh", "zh"), ("", "en")):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env={**_env(), "COMPRESSLAB_LANGUAGE": value})
        assert done.stdout.strip() == expected, done.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**_env(), "COMPRESSLAB_LANGUAGE": "klingon"})
    assert bad.returncode != 0 and "COMPRESSLAB_LANGUAGE" in bad.stderr and "'klingon'" in bad.stderr


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "COMPRESSLAB_LANGUAGE"}


def test_exercise_messages_follow_the_language_and_strict_mode_does_not_depend_on_it(capsys, monkeypatch):
    cl.set_language("zh")
    assert exercises.check("练习 1", 3, 3, hint="想一想") is True
    assert exercises.check("练习 2", 2, 3, hint="想一想") is False
    assert exercises.check("练习 3", None, 3, hint="想一想") is False
    out = capsys.readouterr().out.splitlines()
    assert out == ["练习 1: 正确！", "练习 2: 还不对。提示：想一想", "练习 3: 请先填写你的答案（替换 None）"]
    monkeypatch.setenv(exercises.STRICT_VARIABLE, "1")
    assert exercises.check("练习 4", 3, 3, hint="h") is True  # a correct answer passes in Chinese too
    with pytest.raises(AssertionError, match="练习 5"):
        exercises.check("练习 5", 2, 3, hint="h")


def test_a_panel_built_after_set_language_zh_is_chinese(trained_seed_cnn, digits):
    english = cl.widgets.PruningLab(trained_seed_cnn, digits)
    cl.set_language("zh")
    chinese = cl.widgets.PruningLab(trained_seed_cnn, digits)
    assert english.controls["sparsity"].description == "sparsity"
    assert chinese.controls["sparsity"].description == "稀疏度"
    assert chinese.controls["finetune"].description == "在此稀疏度下微调"
    assert "剪枝实验室" in chinese.view.children[0].value
    chinese.controls["sparsity"].value = 0.5  # the summary is rebuilt in the panel's language
    assert "测试集准确率" in chinese.summary.value and "50%" in chinese.summary.value
    assert HAN.search(chinese.figures["histogram"].layout.title.text)
    assert english.controls["sparsity"].description == "sparsity"  # built earlier: stays English


def _chart_words(figure) -> set[str]:
    """The ASCII words (3+ letters) of a panel chart's title, axis titles, subplot titles and legend names."""
    layout = figure.layout
    texts = [layout.title.text, layout.xaxis.title.text, layout.yaxis.title.text,
             *(annotation.text for annotation in layout.annotations), *(trace.name for trace in figure.data)]
    return {word for text in texts if text for word in re.findall(r"[A-Za-z]{3,}", text)}


# Code and format names, math, layer names and the records' own names a Chinese chart may keep.
CHART_WORDS = {"float", "int", "TFLite", "gzip", "CSR", "PTQ", "conv", "dense", "softmax", "logits", "seed", "cnn"}


def test_the_chinese_pruning_lab_draws_chinese_charts(trained_seed_cnn, digits):
    cl.set_language("zh")
    lab = cl.widgets.PruningLab(trained_seed_cnn, digits)
    lab.controls["sparsity"].value = 0.5
    lab.controls["scope"].value = "global"
    for name, figure in lab.figures.items():
        assert not _chart_words(figure) - CHART_WORDS, (name, _chart_words(figure))
    accuracy = lab.figures["accuracy"]
    assert accuracy.layout.yaxis.title.text == "测试集准确率（%）"
    shown = {trace.meta: trace.name for trace in accuracy.data if len(trace.x)}
    assert shown["magnitude, layer scope"] == "幅值，逐层范围" and shown["now"] == "当前"
    assert lab.figures["layer_sparsity"].layout.title.text == "逐层稀疏度"
    assert [trace.name for trace in lab.figures["layer_sparsity"].data][1] == "目标 50%"


def test_the_chinese_distillation_lab_draws_chinese_charts(trained_seed_cnn, small_digits):
    from compresslab import distill

    cl.set_language("zh")
    lab = cl.widgets.DistillationLab(trained_seed_cnn, small_digits, latency=False,
                                     spec=distill.DistillSpec(temperature=4, alpha=0.2, epochs=1))
    lab.controls["temperature"].value = 6.0   # redrawn in place: names and hover in Chinese too
    soft = lab.figures["soft_targets"].data[1]
    assert soft.name.startswith("T = 6（H = ") and soft.meta.startswith("T = 6 (H = ")
    assert soft.hovertemplate.startswith("类别 %{x}：")
    lab.run()
    assert lab.last_error is None
    for name, figure in lab.figures.items():
        assert not _chart_words(figure) - CHART_WORDS, (name, _chart_words(figure))
    names = list(lab.figures["comparison"].data[0].x)
    assert names[1:] == ["从零训练的学生网络 1x", "蒸馏的学生网络 1x"] and names[0].startswith("教师网络（")
    assert [trace.meta for trace in lab.figures["curves"].data] == ["scratch student", "distilled student"]


def test_the_quantization_lab_in_chinese(trained_seed_cnn, digits):
    cl.set_language("zh")
    lab = cl.widgets.QuantizationLab(trained_seed_cnn, digits)
    assert lab.controls["bits"].description == "位宽"
    assert lab.controls["ptq_dynamic"].description == "PTQ 动态范围"
    assert [label for label, _ in lab.controls["lowbit_mode"].options][0] == "int4 权重（逐通道）"
    assert lab.controls["lowbit_mode"].value == "int4 weights (per channel)"  # the value stays the record's name
    lab.controls["bits"].value = 4
    assert "测试集准确率（模拟，Keras）" in lab.table.value and "个百分点" in lab.table.value
    # The scheme and scale buttons, the curves and the histogram title speak Chinese; the values do not change.
    assert [label for label, _ in lab.controls["scheme"].options] == ["对称", "非对称", "定点"]
    assert [label for label, _ in lab.controls["granularity"].options] == ["逐张量", "逐通道"]
    lab.controls["granularity"].value = "per_channel"
    assert lab.spec().granularity == "per_channel"
    assert lab.figures["histogram"].layout.title.text.endswith(": 4 位，对称，逐通道")
    curves = {trace.meta: trace.name for trace in lab.figures["accuracy"].data}
    assert curves["symmetric per-channel"] == "对称，逐通道", curves
    for name in ("accuracy", "histogram"):  # "dense1.kernel" names the weights shown: a variable's name
        assert not _chart_words(lab.figures[name]) - CHART_WORDS - {"kernel"}, (name, _chart_words(lab.figures[name]))


def test_the_app_language_selector_works_through_its_value(monkeypatch):
    monkeypatch.delenv("COMPRESSLAB_DATA_DIR", raising=False)
    app = cl.widgets.ClassroomApp()
    selector = app.controls["language"]
    assert selector.value == "en" and [label for label, _ in selector.options] == ["English", "中文"]
    assert list(app.tabs.titles) == ["Quantize", "Prune", "Distill", "Compare"]
    selector.value = "zh"  # as the browser does
    assert cl.get_language() == "zh"
    assert list(app.tabs.titles) == ["量化", "剪枝", "知识蒸馏", "对比"]
    assert app.controls["load"].description == "加载"
    assert app.controls["dataset"].value == "digits" and app.controls["dataset"].options[0][0].startswith("digits（")
    assert "按<b>加载</b>开始" in app.pages[0].children[0].value
    selector.value = "en"
    assert app.controls["load"].description == "Load" and list(app.tabs.titles)[1] == "Prune"
    assert app.last_error is None


def test_an_app_started_in_chinese_is_chinese_from_the_start(monkeypatch):
    cl.set_language("zh")
    app = cl.widgets.ClassroomApp()
    assert app.controls["language"].value == "zh"
    assert app.controls["add_pruned"].description == "把这个剪枝模型加入对比"
    assert app.export_box.controls["export"].description == "导出我的结果"


# -- scripts/translate.py: the zh notebooks are generated, complete and up to date --------------------------------

def _translate_module():
    import runpy

    return runpy.run_path(str(ROOT / "scripts" / "translate.py"), run_name="translate_under_test")


def test_translate_check_passes():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "translate.py"), "--check"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        chinese = json.loads((ROOT / "notebooks" / "zh" / path.name).read_text(encoding="utf-8"))
        english = json.loads(path.read_text(encoding="utf-8"))
        assert [c["id"] for c in chinese["cells"]] == [c["id"] for c in english["cells"]], path.name
        first_code = next(c for c in chinese["cells"] if c["cell_type"] == "code")
        assert 'cl.set_language("zh")' in "".join(first_code["source"]), path.name
        assert all(not c.get("outputs") for c in chinese["cells"] if c["cell_type"] == "code"), path.name
        markdown = [c for c in chinese["cells"] if c["cell_type"] == "markdown"]
        assert markdown and all(HAN.search("".join(c["source"])) for c in markdown), path.name


def _notebook(*cells):
    return {"cells": [{"cell_type": kind, "id": cid, "metadata": {}, "source": text,
                       **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                      for kind, cid, text in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_the_tokenize_rule_rejects_changed_code_and_accepts_translated_text():
    tr = _translate_module()
    english = 'import compresslab as cl\nx = 1  # one\nprint(f"x is {x}", "done")\n'
    notebook = _notebook(("markdown", "m1", "# Title"), ("code", "c1", english))
    translated = 'import compresslab as cl\nx = 1  # 一\nprint(f"x 是 {x}", "完成")\n'

    def entries(code):
        return {"m1": {"en_sha": tr["digest"]("# Title"), "zh": "# 标题"},
                "c1": {"en_sha": tr["digest"](english), "zh": code}}

    out, problems = tr["translate"](notebook, entries(translated), "fake.ipynb")
    assert problems == []
    assert "".join(out["cells"][1]["source"]).startswith('import compresslab as cl\ncl.set_language("zh")')
    for changed in ('import compresslab as cl\nx = 2  # 一\nprint(f"x 是 {x}", "完成")\n',
                    'import compresslab as cl\nprint(f"x 是 {x}", "完成")\n',
                    'import compresslab as cl\nx = 1  # 一\nprint(f"x 是 {x}", "完成", end="")\n'):
        _, problems = tr["translate"](notebook, entries(changed), "fake.ipynb")
        assert len(problems) == 1 and "fake.ipynb cell c1" in problems[0] and "changes the code" in problems[0], \
            problems


def test_missing_stale_and_unknown_translations_are_named():
    tr = _translate_module()
    notebook = _notebook(("markdown", "m1", "# Title"), ("code", "c1", "import compresslab as cl\n# a comment\n"),
                         ("code", "c2", "y = 3\n"))
    _, problems = tr["translate"](notebook, {"m1": {"en_sha": tr["digest"]("# Old title"), "zh": "# 标题"},
                                             "gone": {"en_sha": "0", "zh": "x"}}, "fake.ipynb")
    assert any("cell m1: stale translation" in p for p in problems), problems
    assert any("cell c1: no translation (code cell)" in p for p in problems), problems
    assert any("translation of cell gone" in p for p in problems), problems
    assert not any("c2" in p for p in problems), problems  # code without comments or sentences needs none
