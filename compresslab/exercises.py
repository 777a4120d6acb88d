"""Friendly checks for the notebooks' exercises: "correct", or "not yet" with a hint; never a traceback, never the answer.

A student's answer is compared with the truth the notebook computed; the check prints one line and
returns True or False, so a wrong answer never stops the notebook and never prints the expected
value. :func:`check_function` runs a student's function on test cases the same way (an exception in
it is reported in one line).

Example:
    >>> check("Exercise 1", my_scale, 0.1, hint="s = max|x| / (2^(b-1) - 1)", tolerance=1e-6)
    Exercise 1: not yet. Hint: s = max|x| / (2^(b-1) - 1)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable

import numpy as np

from .i18n import MESSAGES, t

# The English text (the message shown follows cl.set_language).
NOT_ANSWERED = MESSAGES["exercise.not_answered"]["en"]
# Set (to anything but "" or "0") when the SOLUTION notebooks run in CI: then an answer that is not
# correct raises, so a wrong solution fails the build instead of printing "not yet".
STRICT_VARIABLE = "COMPRESSLAB_EXERCISES_STRICT"


def _say(name: str, key: str, **fields) -> None:
    # Judged by the message KEY, not its text, so strict mode works in every language.
    text = t(key, **fields)
    print(f"{name}: {text}")
    if key != "exercise.correct" and os.environ.get(STRICT_VARIABLE, "") not in ("", "0"):
        raise AssertionError(f"{name}: {text} ({STRICT_VARIABLE} is set: every answer must be correct)")


def _equal(answer, expected, tolerance) -> bool:
    if isinstance(expected, (bool, np.bool_)):
        return isinstance(answer, (bool, np.bool_)) and bool(answer) == bool(expected)
    if isinstance(expected, (int, float, np.integer, np.floating)) and not isinstance(expected, bool):
        if isinstance(answer, bool) or not isinstance(answer, (int, float, np.integer, np.floating)):
            return False
        if tolerance is None:
            return answer == expected
        return math.isclose(float(answer), float(expected), rel_tol=0.0, abs_tol=float(tolerance))
    if isinstance(expected, (list, tuple, np.ndarray)):
        try:
            a, e = np.asarray(answer, dtype=float), np.asarray(expected, dtype=float)
        except (TypeError, ValueError):
            return False
        if a.shape != e.shape:
            return False
        return bool(np.allclose(a, e, rtol=0.0, atol=0.0 if tolerance is None else float(tolerance)))
    return answer == expected


def check(name: str, answer, expected, *, hint: str, tolerance: float | None = None) -> bool:
    """Compare a student's answer with the expected one and say so in one line.

    Args:
        name: the exercise's name, printed first (``"Exercise 2"``).
        answer: what the student wrote (``None``: not answered yet).
        expected: the truth, computed by the notebook (never printed).
        hint: what to think about when the answer is wrong (must not give the answer away).
        tolerance: absolute tolerance for numbers and arrays (None: exact).

    Returns:
        True when correct.
    """
    if answer is None:
        _say(name, "exercise.not_answered")
        return False
    if _equal(answer, expected, tolerance):
        _say(name, "exercise.correct")
        return True
    _say(name, "exercise.not_yet", hint=hint)
    return False


def check_true(name: str, answer, condition: Callable[[object], bool], *, hint: str) -> bool:
    """Like :func:`check`, for answers judged by a condition (``condition(answer)`` is True when right)."""
    if answer is None:
        _say(name, "exercise.not_answered")
        return False
    try:
        ok = bool(condition(answer))
    except Exception as error:  # the student's answer may be of any type: say what went wrong, in one line
        _say(name, "exercise.raised", error=f"{type(error).__name__}: {error}", hint=hint)
        return False
    _say(name, "exercise.correct" if ok else "exercise.not_yet", hint=hint)
    return ok


def check_function(name: str, function, reference: Callable, cases: Iterable[tuple], *, hint: str,
                   tolerance: float = 1e-9) -> bool:
    """Run a student's ``function`` and the ``reference`` on each case (a tuple of arguments); compare.

    Returns:
        True when every case agrees; otherwise prints which case number failed (not the expected
        value) or the one-line error the student's function raised.
    """
    if function is None:
        _say(name, "exercise.not_answered")
        return False
    for number, arguments in enumerate(cases, start=1):
        try:
            got = function(*arguments)
        except Exception as error:  # the student's code: report it in one line, keep the notebook going
            _say(name, "exercise.function_raised", error=f"{type(error).__name__}: {error}", number=number, hint=hint)
            return False
        if got is None:
            _say(name, "exercise.returned_none", number=number, hint=hint)
            return False
        want = reference(*arguments)
        try:
            same = np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=0.0,
                               atol=tolerance) and np.shape(got) == np.shape(want)
        except (TypeError, ValueError):
            same = got == want
        if not same:
            _say(name, "exercise.different", number=number, hint=hint)
            return False
    _say(name, "exercise.correct")
    return True


__all__ = ["check", "check_true", "check_function", "NOT_ANSWERED", "STRICT_VARIABLE"]
