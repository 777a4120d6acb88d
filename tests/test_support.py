"""The README's layer-support table is measured (compresslab.support), and no technique skips a layer silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from compresslab import support

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def table(small_digits):
    return support.support_table(small_digits.subset(train=256, test=64, seed=0))


def test_no_technique_skips_a_layer_silently(table):
    answers = {answer for row in table.values() for answer in row.values()}
    assert answers <= {"acts", "skipped, warned", "refused", "no kernel (left as is)"}, answers
    # Every technique acts on the two layer types every CNN has.
    assert all(row["Conv2D"] == "acts" and row["Dense"] == "acts" for row in table.values())


def test_the_readme_table_is_what_was_measured(table):
    assert support.markdown(table) in README.read_text(), "run `python -m compresslab.support` and paste its table"
