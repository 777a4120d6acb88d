"""pyproject.toml declares exactly what the code imports, and environment.yml mirrors its pins.

Every third-party ``import`` in compresslab/ must come from a distribution in
``project.dependencies``; those in tests/, bench/ and the notebooks from the dependencies or the
``dev`` extra. Conversely every declared distribution is imported somewhere, or listed in
``NOT_IMPORTED`` with the reason it is needed anyway, so a dependency nothing uses cannot linger.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Declared although no Python file imports them; each with the reason.
NOT_IMPORTED = {
    "keras": "modelio's verification runs `import keras` (Keras 3) in a subprocess",
    "jupyterlab": "`make lab` serves the notebooks",
    "jupyterlab-language-pack-zh-cn": "JupyterLab's Simplified Chinese interface (Settings > Language)",
    "voila": "`make app` serves the classroom dashboard",
    "pytest-timeout": "a pytest plugin (--timeout)",
    "nbmake": "a pytest plugin (`make notebooks` runs pytest --nbmake)",
    "pytest-rerunfailures": "a pytest plugin (`make notebooks` tries a hung notebook run once more)",
    "ipykernel": "the notebooks' kernel, pinned below 7 (ipykernel#1471: 7.x freezes during run all)",
    "ruff": "`make lint`",
    "psycopg2-binary": "SQLAlchemy's postgresql+psycopg2 driver in tests/test_studies_postgres.py",
    "setuptools": "tests/test_package.py builds a wheel with `pip wheel --no-build-isolation`",
    "wheel": "the same wheel build (setuptools' bdist_wheel)",
}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


CORE = {_name(r) for r in PROJECT["dependencies"]}
DEV = {_name(r) for r in PROJECT["optional-dependencies"]["dev"]}


def _imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party(paths) -> dict[str, set[str]]:
    """Top-level import name -> files importing it, for names that are not stdlib or local."""
    local = {"compresslab", "__future__"} | {p.stem for folder in ("tests", "bench") for p in (ROOT / folder).rglob("*.py")}
    found: dict[str, set[str]] = {}
    for path in paths:
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            source = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
            # Notebook cells may hold IPython magics, which are not Python.
            source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        else:
            source = path.read_text()
        for name in _imports(source) - set(sys.stdlib_module_names) - local:
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def _distributions(import_name: str) -> set[str]:
    return {_name(d) for d in packages_distributions().get(import_name, [])}


@functools.cache
def _core_imports() -> dict[str, set[str]]:
    return _third_party((ROOT / "compresslab").rglob("*.py"))


@functools.cache
def _dev_imports() -> dict[str, set[str]]:
    return _third_party([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py"),
                         *(ROOT / "notebooks").glob("*.ipynb")])


def test_every_import_of_the_package_is_a_declared_dependency():
    missing = {name: sorted(files) for name, files in _core_imports().items() if not _distributions(name) & CORE}
    assert not missing, f"imported by compresslab but not in project.dependencies: {missing}"


def test_every_import_of_tests_bench_and_notebooks_is_declared():
    missing = {name: sorted(files) for name, files in _dev_imports().items()
               if not _distributions(name) & (CORE | DEV)}
    assert not missing, f"imported by tests, bench or notebooks but not declared: {missing}"


def test_every_declared_dependency_is_used():
    imported = set().union(*(_distributions(name) for name in {**_core_imports(), **_dev_imports()}))
    unused = sorted((CORE | DEV) - imported - set(NOT_IMPORTED))
    assert not unused, f"declared but imported nowhere (remove, or say why in NOT_IMPORTED): {unused}"


def test_environment_yml_mirrors_the_pins():
    text = (ROOT / "environment.yml").read_text()
    pip = re.findall(r'^\s+- "([^"]+)"$', text, flags=re.MULTILINE)
    assert pip[:-1] == PROJECT["dependencies"]
    assert pip[-1] == "-e .[dev]"
    assert "python=3.11" in text


def test_license_is_an_spdx_string():
    assert PROJECT["license"] == "MIT"
