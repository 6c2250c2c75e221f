"""The one exception type the package raises for mistakes a user can fix, and the command lines' parser
with its numeric argument types (one-line messages, exit code 2)."""

import argparse
from collections.abc import Callable
from typing import Any


class UnetTutorialError(Exception):
    """A problem with the user's input or setup, with a message that says what to do.

    In Jupyter it shows as one line (``UnetTutorialError: ...``) instead of a stack trace, because the
    trace would only point into this package while the fix is in the user's data or settings.
    """

    def _render_traceback_(self) -> list[str]:
        # IPython calls this hook, if present, instead of formatting the traceback itself.
        return [f"{type(self).__name__}: {self}"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the package's command lines: a wrong argument prints one line and exits with 2."""

    def error(self, message: str) -> None:  # one line instead of argparse's usage block
        self.exit(2, f"error: {message} (see --help)\n")


def number_argument(text: str, convert: type, kind: str, fits: Callable[[Any], bool], rule: str) -> Any:
    """Parse a numeric option for argparse; one-line messages for a non-number or a value out of range."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
    if not fits(value):
        raise argparse.ArgumentTypeError(f"{value} is not {rule}")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number of 1 or more."""
    return number_argument(text, int, "a whole number", lambda value: value >= 1, "1 or more")


def non_negative_int(text: str) -> int:
    """An argparse ``type``: a whole number of 0 or more."""
    return number_argument(text, int, "a whole number", lambda value: value >= 0, "0 or more")


def positive_float(text: str) -> float:
    """An argparse ``type``: a number above 0."""
    return number_argument(text, float, "a number", lambda value: value > 0, "above 0")


def fraction(text: str) -> float:
    """An argparse ``type``: a number between 0 and 1, both excluded."""
    return number_argument(text, float, "a number", lambda value: 0 < value < 1, "between 0 and 1")
