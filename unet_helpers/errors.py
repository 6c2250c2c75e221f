"""The one exception type the package raises for mistakes a user can fix, and the command lines' parser."""

import argparse


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
