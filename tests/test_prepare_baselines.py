"""scripts/prepare_baselines.py: the baselines `make lab` and `make notebooks` train once for the course."""

import json
import re
from pathlib import Path

from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _script():
    return load_script("prepare_baselines.py")


def _loaded_baselines(notebook: Path) -> set:
    """(arch, validation) of every cl.baseline(...) call in a notebook's code."""
    code = "\n".join("".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"]
                     if cell["cell_type"] == "code")
    splits = {float(v) if v else None
              for v in re.findall(r'load_dataset\("digits"(?:,\s*validation=([0-9.]+))?\)', code)}
    found = set()
    for arch, source in re.findall(r'cl\.baseline\("(\w+)",\s*("digits"|data\b)', code):
        if source == '"digits"':
            found.add((arch, None))
        else:
            assert len(splits) == 1, f"{notebook.name}: cannot tell which digits split `data` is: {splits}"
            found.add((arch, next(iter(splits))))
    return found


def test_every_baseline_a_notebook_loads_is_prepared():
    prepared = set(_script().COURSE_BASELINES)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    loaded = {nb.name: _loaded_baselines(nb) for nb in notebooks}
    assert sum(map(len, loaded.values())) >= 6, loaded  # the parser found the notebooks' calls
    for name, pairs in loaded.items():
        assert pairs <= prepared, f"{name} loads {pairs - prepared}, which scripts/prepare_baselines.py does not prepare"


def test_the_script_trains_once_then_loads(tmp_path, monkeypatch, capsys):
    script = _script()
    monkeypatch.setattr(script, "COURSE_BASELINES", (("student_cnn", None),))
    assert script.main(["--cache-dir", str(tmp_path)]) == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.startswith("student_cnn-digits") and name.endswith(".keras") for name in files), files
    assert script.main(["--cache-dir", str(tmp_path)]) == 0  # the second run loads the cached file
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("baseline student_cnn")]
    assert len(lines) == 2 and all("test accuracy" in line for line in lines), lines
