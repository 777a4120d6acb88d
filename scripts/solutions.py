"""Build the solution notebooks from the student notebooks and instructor/solutions.json (one source, no drift).

The notebooks in notebooks/ are the student edition: each exercise has an answer cell (tagged
``answer``) with a blank and a check cell that says "correct!" or "not yet" with a hint. The answers
live apart, in instructor/solutions.json (notebook -> answer cell id -> source). This script writes
the solution edition: the same notebooks with every answer cell filled in.

The Chinese solution edition fills notebooks/zh/ (built by scripts/translate.py, same cell ids) with the
same answers; instructor/solutions_zh.json holds the answers whose comments are translated, and each of
those must be the English answer's code exactly (only comments and strings may differ).

    python scripts/solutions.py OUT_DIR        # writes OUT_DIR/<notebook>.ipynb
    python scripts/solutions.py --zh OUT_DIR   # the Chinese edition, from notebooks/zh/
    python scripts/solutions.py --check        # every answer cell has a solution and vice versa (both editions)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "instructor" / "solutions.json"
SOLUTIONS_ZH = ROOT / "instructor" / "solutions_zh.json"


def answer_cells(notebook: dict) -> dict[str, dict]:
    return {cell["id"]: cell for cell in notebook["cells"] if "answer" in cell.get("metadata", {}).get("tags", [])}


def problems(folder: Path = ROOT / "notebooks") -> list[str]:
    """What is out of step between the notebooks' answer cells and the solutions file."""
    solutions = json.loads(SOLUTIONS.read_text())
    found = []
    for path in sorted(folder.glob("0*.ipynb")):
        cells = answer_cells(json.loads(path.read_text()))
        given = solutions.get(path.name, {})
        found += [f"{path.name}: answer cell {cid} has no solution" for cid in sorted(set(cells) - set(given))]
        found += [f"{path.name}: solution for {cid}, which is not an answer cell" for cid in sorted(set(given) - set(cells))]
    unknown = sorted(set(solutions) - {p.name for p in folder.glob("0*.ipynb")})
    found += [f"solutions for {name}, which is not a notebook" for name in unknown]
    return found


def zh_problems() -> list[str]:
    """Translated answers that are not an English answer, or whose code differs from it."""
    translate = _translate_script()
    english, chinese = json.loads(SOLUTIONS.read_text()), json.loads(SOLUTIONS_ZH.read_text())
    found = []
    for name, cells in chinese.items():
        for cid, source in cells.items():
            if cid not in english.get(name, {}):
                found.append(f"{SOLUTIONS_ZH.name}: {name} {cid} is not an answer in {SOLUTIONS.name}")
            elif translate.code_skeleton(source) != translate.code_skeleton(english[name][cid]):
                found.append(f"{SOLUTIONS_ZH.name}: {name} {cid}: the code differs from the English answer "
                             "(only comments and strings may be translated)")
    return found


def _translate_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("translate_script", ROOT / "scripts" / "translate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chinese_solutions() -> dict:
    """The answers for notebooks/zh/: the English ones, with the translated ones in their place."""
    solutions = json.loads(SOLUTIONS.read_text())
    for name, cells in json.loads(SOLUTIONS_ZH.read_text()).items():
        solutions.setdefault(name, {}).update(cells)
    return solutions


def build(out: Path, folder: Path = ROOT / "notebooks", solutions: dict | None = None) -> list[Path]:
    """Write the solution edition of every numbered notebook in ``folder`` into ``out``."""
    solutions = json.loads(SOLUTIONS.read_text()) if solutions is None else solutions
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(folder.glob("0*.ipynb")):
        notebook = json.loads(path.read_text())
        for cid, cell in answer_cells(notebook).items():
            cell["source"] = solutions[path.name][cid].splitlines(True)
        target = out / path.name
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="folder for the solution notebooks")
    parser.add_argument("--check", action="store_true", help="only check that answers and solutions match")
    parser.add_argument("--zh", action="store_true", help="write the Chinese edition (from notebooks/zh/)")
    args = parser.parse_args()
    found = problems() + problems(ROOT / "notebooks" / "zh") + zh_problems()
    if found:
        print("\n".join(found), file=sys.stderr)
        return 1
    if args.check:
        return 0
    if not args.out:
        parser.error("give a folder to write the solution notebooks to (or --check)")
    written = (build(Path(args.out), ROOT / "notebooks" / "zh", chinese_solutions()) if args.zh
               else build(Path(args.out)))
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
