"""The notebooks' exercise checks, and the solution edition built from instructor/solutions.json."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from _scripts import load_script

from compresslab import exercises

ROOT = Path(__file__).resolve().parents[1]


def _solutions_script():
    return load_script("solutions.py")


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.delenv(exercises.STRICT_VARIABLE, raising=False)


def test_check_says_correct_not_yet_or_fill_in_and_never_the_answer(capsys):
    assert exercises.check("Ex", 0.1, 0.7 / 7, tolerance=1e-6, hint="think") is True
    assert exercises.check("Ex", 0.2, 0.123456, tolerance=1e-6, hint="think again") is False
    assert exercises.check("Ex", None, 3, hint="h") is False
    assert exercises.check("Ex", "conv1", "conv2", hint="look at the scan") is False
    assert exercises.check("Ex", "8", 8, hint="an integer") is False  # a string is not the number
    assert exercises.check("Ex", [1, 2], [1, 2], hint="h") is True
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Ex: correct!"
    assert out[1] == "Ex: not yet. Hint: think again"
    assert out[2] == f"Ex: {exercises.NOT_ANSWERED}"
    assert "0.123456" not in "\n".join(out) and "conv2" not in "\n".join(out)


def test_check_function_reports_errors_in_one_line(capsys):
    def broken(x):
        raise KeyError("oops")

    assert exercises.check_function("F", broken, lambda x: x, [(1,)], hint="h") is False
    assert exercises.check_function("F", lambda x: None, lambda x: x, [(1,)], hint="h") is False
    assert exercises.check_function("F", lambda x: x + 1, lambda x: x, [(1,), (2,)], hint="h") is False
    assert exercises.check_function("F", lambda x: [x, x], lambda x: [x, x], [(1,), (np.arange(3),)], hint="h") is True
    assert exercises.check_function("F", None, lambda x: x, [(1,)], hint="h") is False
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("F: not yet: your function raised KeyError: 'oops' on test case 1")
    assert "did it `return`?" in out[1]
    assert out[2] == "F: not yet: test case 1 gives a different result. Hint: h"
    assert out[3] == "F: correct!"
    assert len(out) == 5  # one line per check, no traceback


def test_check_true_and_strict_mode(monkeypatch, capsys):
    assert exercises.check_true("T", 3.5, lambda r: 3 < r < 4.5, hint="h") is True
    assert exercises.check_true("T", "x", lambda r: r > 3, hint="h") is False  # the condition itself raised
    assert "not yet: checking your answer raised TypeError" in capsys.readouterr().out
    monkeypatch.setenv(exercises.STRICT_VARIABLE, "1")
    assert exercises.check("S", 1, 1, hint="h") is True
    with pytest.raises(AssertionError, match="S: not yet"):
        exercises.check("S", 2, 1, hint="h")


def test_every_answer_cell_has_a_solution_that_parses():
    script = _solutions_script()
    assert script.problems() == []
    solutions = json.loads((ROOT / "instructor" / "solutions.json").read_text())
    assert sum(len(cells) for cells in solutions.values()) >= 14
    for notebook, cells in solutions.items():
        student = json.loads((ROOT / "notebooks" / notebook).read_text())
        answers = script.answer_cells(student)
        for cid, source in cells.items():
            ast.parse(source)
            # the student's cell has a blank: None where the solution has an answer
            assert "None" in "".join(answers[cid]["source"]), (notebook, cid)


def test_the_solution_edition_differs_only_in_answer_cells(tmp_path):
    script = _solutions_script()
    written = script.build(tmp_path)
    assert len(written) == len(list((ROOT / "notebooks").glob("0*.ipynb")))
    for path in written:
        built = json.loads(path.read_text())
        student = json.loads((ROOT / "notebooks" / path.name).read_text())
        assert [c["id"] for c in built["cells"]] == [c["id"] for c in student["cells"]]
        for mine, theirs in zip(built["cells"], student["cells"]):
            if "answer" not in theirs.get("metadata", {}).get("tags", []):
                assert mine["source"] == theirs["source"]


def test_a_broken_solutions_file_is_reported(tmp_path, monkeypatch):
    script = _solutions_script()
    bad = tmp_path / "solutions.json"
    solutions = json.loads(script.SOLUTIONS.read_text())
    first = next(iter(solutions))
    solutions[first] = {"nope1234": "x = 1\n"}
    bad.write_text(json.dumps(solutions))
    monkeypatch.setattr(script, "SOLUTIONS", bad)
    found = script.problems()
    assert any("solution for nope1234, which is not an answer cell" in line for line in found)
    assert any("has no solution" in line for line in found)


def test_the_chinese_solution_edition_fills_the_zh_notebooks_with_the_same_code(tmp_path):
    script = _solutions_script()
    assert script.problems(ROOT / "notebooks" / "zh") == [] and script.zh_problems() == []
    written = script.build(tmp_path, ROOT / "notebooks" / "zh", script.chinese_solutions())
    assert {p.name for p in written} == {p.name for p in (ROOT / "notebooks").glob("0*.ipynb")}
    translate_skeleton = script._translate_script().code_skeleton
    english = json.loads(script.SOLUTIONS.read_text())
    built = json.loads((tmp_path / "01_quantization.ipynb").read_text())
    answers = script.answer_cells(built)
    assert "对称 4 位编码" in "".join(answers["724287fc"]["source"])       # the comment is translated
    for cid, source in english["01_quantization.ipynb"].items():            # the code is the English answer's
        assert translate_skeleton("".join(answers[cid]["source"])) == translate_skeleton(source)


def test_a_translated_answer_whose_code_changed_is_reported(tmp_path, monkeypatch):
    script = _solutions_script()
    chinese = json.loads(script.SOLUTIONS_ZH.read_text())
    chinese["01_quantization.ipynb"]["724287fc"] = "answer_scale = 0.1   # 改了代码\nanswer_levels = 8\n"
    chinese["01_quantization.ipynb"]["zzzz0000"] = "x = 1\n"
    bad = tmp_path / "solutions_zh.json"
    bad.write_text(json.dumps(chinese, ensure_ascii=False))
    monkeypatch.setattr(script, "SOLUTIONS_ZH", bad)
    found = script.zh_problems()
    assert any("724287fc: the code differs from the English answer" in line for line in found), found
    assert any("zzzz0000 is not an answer" in line for line in found), found
