"""Build the Simplified Chinese notebooks (notebooks/zh/) from the English ones and instructor/zh/ (never by hand).

Each English notebook ``notebooks/NAME.ipynb`` has a translation file ``instructor/zh/NAME.json``:
``{cell id: {"en_sha": <hash of the English source>, "zh": <translated source>}}``. Markdown cells are
translated whole; a code cell keeps its code, and only its comments and string literals may differ
(checked with ``tokenize``: with comments and strings removed the two must be identical). The hash
marks a translation stale as soon as the English cell changes. Every zh notebook's first code cell
also calls ``cl.set_language("zh")`` right after ``import compresslab as cl``. Outputs are stripped;
cell ids are kept (so scripts/solutions.py can fill the zh answer cells too).

    python scripts/translate.py            # write notebooks/zh/*.ipynb (a notebook with a missing or stale
                                           # translation is not written; the problems are listed)
    python scripts/translate.py --check    # every translation present and fresh, notebooks/zh up to date
    python scripts/translate.py --stamp    # record the English hash of translations that have none yet
    python scripts/translate.py --accept NAME CELL_ID...   # re-stamp reviewed translations after an English edit
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGLISH = ROOT / "notebooks"
CHINESE = ENGLISH / "zh"
TRANSLATIONS = ROOT / "instructor" / "zh"
IMPORT_LINE = "import compresslab as cl"
LANGUAGE_LINE = 'cl.set_language("zh")  # 面板、图表和练习提示都用中文\n'
# A string literal that reads as words (two English words in a row) is text a reader sees: it needs a translation.
_WORDS = re.compile(r"[A-Za-z]{2,}[ ,.:;!?'-]+[A-Za-z]{2,}")


class TranslationError(ValueError):
    """A translation that is missing, stale, or changes a code cell's code (the message names the cell)."""


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def digest(text: str) -> str:
    """The hash stored next to a translation: the first 16 hex digits of the English source's SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _tokens(code: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(code).readline))


def code_skeleton(code: str) -> list[tuple[int, str]]:
    """The cell's tokens without comments and string literals (an f-string counts as one literal).

    Raises:
        TranslationError: the code does not tokenize.
    """
    try:
        tokens = _tokens(code)
    except (tokenize.TokenError, SyntaxError, IndentationError) as error:
        raise TranslationError(f"cannot tokenize: {error}") from None
    skeleton, depth = [], 0
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings into tokens
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    for token in tokens:
        if fstring_start is not None and token.type == fstring_start:
            if depth == 0:
                skeleton.append((tokenize.STRING, "<str>"))
            depth += 1
        elif fstring_end is not None and token.type == fstring_end:
            depth -= 1
        elif depth:
            continue
        elif token.type == tokenize.STRING:
            skeleton.append((tokenize.STRING, "<str>"))
        elif token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.ENDMARKER):
            skeleton.append((token.type, token.string))
    return skeleton


def needs_translation(cell: dict) -> bool:
    """Markdown always; a code cell when it has a comment or a string literal that reads as words."""
    text = source(cell)
    if not text.strip() or cell["cell_type"] not in ("markdown", "code"):
        return False
    if cell["cell_type"] == "markdown":
        return True
    return any(token.type == tokenize.COMMENT or (token.type == tokenize.STRING and _WORDS.search(token.string))
               for token in _tokens(text))


def check_code(english: str, chinese: str, where: str) -> None:
    """Fail unless ``chinese`` is ``english`` with only comments and string literals changed."""
    try:
        same = code_skeleton(english) == code_skeleton(chinese)
    except TranslationError as error:
        raise TranslationError(f"{where}: {error}") from None
    if not same:
        raise TranslationError(f"{where}: the translated code cell changes the code itself; only comments and "
                               "string literals may differ from the English cell")


def load_translations(name: str) -> dict:
    path = TRANSLATIONS / f"{Path(name).stem}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _with_language_call(text: str, where: str) -> str:
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.strip() == IMPORT_LINE:
            if not line.endswith("\n"):
                lines[index] = line + "\n"
            return "".join(lines[:index + 1] + [LANGUAGE_LINE] + lines[index + 1:])
    raise TranslationError(f"{where}: the first code cell has no line '{IMPORT_LINE}' to set the language after")


def translate(notebook: dict, translations: dict, name: str) -> tuple[dict, list[str]]:
    """The zh edition of one notebook and the list of problems (missing, stale, code changed, unknown id).

    Args:
        notebook: the English notebook (JSON dict).
        translations: cell id -> {"en_sha", "zh"} from instructor/zh/NAME.json.
        name: the notebook's file name (for messages).

    Returns:
        ``(zh notebook, problems)``; the notebook is only valid when ``problems`` is empty.
    """
    problems, out = [], copy.deepcopy(notebook)
    ids = {cell.get("id") for cell in notebook["cells"]}
    problems += [f"{name}: translation of cell {cid}, which is not in the English notebook"
                 for cid in sorted(set(translations) - ids)]
    first_code = True
    for cell in out["cells"]:
        cid, english = cell.get("id"), source(cell)
        where = f"{name} cell {cid}"
        entry = translations.get(cid)
        text = english
        if entry is not None:
            if entry.get("en_sha") != digest(english):
                problems.append(f"{where}: stale translation (the English cell changed; update it, then "
                                f"`--accept {Path(name).stem} {cid}`)" if entry.get("en_sha")
                                else f"{where}: translation not stamped yet (run --stamp)")
            text = entry["zh"]
            if cell["cell_type"] == "code":
                try:
                    check_code(english, text, where)
                except TranslationError as error:
                    problems.append(str(error))
        elif needs_translation(cell):
            problems.append(f"{where}: no translation ({cell['cell_type']} cell)")
        if cell["cell_type"] == "code":
            if first_code:
                try:
                    text = _with_language_call(text, where)
                except TranslationError as error:
                    problems.append(str(error))
                first_code = False
            cell["outputs"], cell["execution_count"] = [], None
        cell["source"] = text.splitlines(keepends=True)
    out.setdefault("metadata", {})["language_info"] = {
        **out.get("metadata", {}).get("language_info", {}), "name": "python"}
    return out, problems


def english_notebooks() -> list[Path]:
    return sorted(p for p in ENGLISH.glob("*.ipynb"))


def render(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def build(write: bool) -> list[str]:
    """Translate every notebook; write each zh notebook that has no problem when ``write``, else compare.

    Returns:
        Every problem found (a notebook with a problem is never written; with ``write=False``, an
        out-of-date or orphan file in notebooks/zh is a problem too).
    """
    problems, outputs = [], {}
    for path in english_notebooks():
        notebook, found = translate(json.loads(path.read_text(encoding="utf-8")), load_translations(path.name),
                                    path.name)
        problems += found
        if not found:
            outputs[CHINESE / path.name] = render(notebook)
    known = {f"{p.stem}.json" for p in english_notebooks()}
    problems += [f"instructor/zh/{p.name}: no English notebook {p.stem}.ipynb"
                 for p in sorted(TRANSLATIONS.glob("*.json")) if p.name not in known]
    if write:
        CHINESE.mkdir(parents=True, exist_ok=True)
        for target, text in outputs.items():
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
                print(target.relative_to(ROOT))
        return problems
    problems += [f"{target.relative_to(ROOT)} is out of date: run python scripts/translate.py"
                 for target, text in outputs.items()
                 if not target.exists() or target.read_text(encoding="utf-8") != text]
    orphans = sorted(set(CHINESE.glob("*.ipynb")) - {CHINESE / p.name for p in english_notebooks()})
    return problems + [f"{p.relative_to(ROOT)} has no English notebook" for p in orphans]


def stamp(only: dict[str, set[str]] | None = None) -> list[str]:
    """Record the English hash on translations without one (or, with ``only``, re-stamp those cells)."""
    changed = []
    for path in english_notebooks():
        translations = load_translations(path.name)
        if not translations:
            continue
        cells = {cell.get("id"): source(cell) for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]}
        wanted = (only or {}).get(path.stem)
        for cid, entry in translations.items():
            if cid in cells and ((wanted is None and only is None and "en_sha" not in entry)
                                 or (wanted is not None and cid in wanted)):
                entry["en_sha"] = digest(cells[cid])
                changed.append(f"{path.stem} {cid}")
        target = TRANSLATIONS / f"{path.stem}.json"
        target.write_text(json.dumps(translations, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check only; write nothing")
    parser.add_argument("--stamp", action="store_true", help="record the English hash of unstamped translations")
    parser.add_argument("--accept", nargs="+", metavar="NAME_OR_CELL_ID",
                        help="re-stamp these reviewed cells of notebook NAME (e.g. 01_quantization 3f2a...)")
    args = parser.parse_args(argv)
    if args.accept:
        if len(args.accept) < 2:
            parser.error("--accept takes a notebook name and at least one cell id")
        print("\n".join(stamp({args.accept[0]: set(args.accept[1:])})))
        return 0
    if args.stamp:
        print("\n".join(stamp()))
        return 0
    problems = build(write=not args.check)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
