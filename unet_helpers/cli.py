"""What the command lines (``python -m unet_helpers.train``, ``python -m unet_helpers.predict``) share: an
argparse parser whose mistakes print one line and exit with code 2, and numeric argument types."""

import argparse
from collections.abc import Callable
from typing import Any


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


def scale_argument(text: str) -> float | str | None:
    """An argparse ``type`` for ``--scale``: ``auto``, ``squeeze`` (None) or a factor above 0."""
    if text in ("auto", "squeeze"):
        return None if text == "squeeze" else text
    return number_argument(text, float, "auto, squeeze or a number", lambda value: value > 0, "above 0")


def fraction(text: str) -> float:
    """An argparse ``type``: a number between 0 and 1, both excluded."""
    return number_argument(text, float, "a number", lambda value: 0 < value < 1, "between 0 and 1")


def mask_value(text: str) -> int | tuple[int, int, int]:
    """An argparse ``type``: a stored mask value, gray (``11``) or a colour (``0,0,0``)."""
    from unet_helpers.mask_classes import parse_stored_value

    try:
        return parse_stored_value(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
