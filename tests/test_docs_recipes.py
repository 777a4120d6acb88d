"""docs/recipes.md lists every key of every pipeline step with the default the code uses."""

from __future__ import annotations

import re
from pathlib import Path

from compresslab.distill import DistillSpec
from compresslab.pipeline import recipe as recipes
from compresslab.pipeline.specs import STEP_PARAMETERS

DOC = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"


def _sections() -> dict[str, dict[str, str]]:
    """``{step: {key: default text}}`` from the doc's tables."""
    sections, current = {}, None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^## (\w+)$", line)
        if heading:
            current = sections.setdefault(heading.group(1), {})
            continue
        row = re.match(r"^\| `(\w+)` \| ([^|]+) \|", line)
        if row and current is not None:
            current[row.group(1)] = row.group(2).strip()
    return sections


def test_every_step_key_is_documented_with_its_default():
    sections = _sections()
    for step, parameters in STEP_PARAMETERS.items():
        assert step in sections, f"docs/recipes.md has no section for step {step!r}"
        documented = sections[step]
        assert set(documented) == set(parameters), (step, set(parameters) ^ set(documented))
        for key, default in parameters.items():
            text = documented[key]
            if text == "see `DistillSpec`":
                assert getattr(DistillSpec(), key) == default, (step, key)  # the step follows the spec
                continue
            expected = "None" if default is None else repr(default) if isinstance(default, str) else str(default)
            assert text.strip("`").replace('"', "'") == expected, (step, key, text, expected)


def test_the_deep_compression_arguments_named_in_the_doc_are_real():
    text = DOC.read_text()
    arguments = recipes.deep_compression_recipe.__code__.co_varnames[
        :recipes.deep_compression_recipe.__code__.co_kwonlyargcount]
    for argument in arguments:
        assert f"`{argument}`" in text, argument
    steps = recipes.deep_compression_recipe(prune_learning_rate=5e-4, cluster_learning_rate=2e-5, batch_size=32)
    assert steps[0]["learning_rate"] == 5e-4 and steps[1]["learning_rate"] == 2e-5
    assert steps[0]["batch_size"] == steps[1]["batch_size"] == 32
