"""Import one of the project's scripts/*.py (they are not a package) as a module, for the tests."""

import importlib.util
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(filename: str):
    """The module of ``scripts/<filename>``, freshly executed (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"script_{Path(filename).stem}", SCRIPTS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
