"""The package's exceptions for what a user can fix or do: a mistake, or training stopped by Ctrl-C."""


class UnetTutorialError(Exception):
    """A problem with the user's input or setup, with a message that says what to do.

    In Jupyter it shows as one line (``UnetTutorialError: ...``) instead of a stack trace, because the
    trace would only point into this package while the fix is in the user's data or settings.
    """

    def _render_traceback_(self) -> list[str]:
        # IPython calls this hook, if present, instead of formatting the traceback itself.
        return [f"{type(self).__name__}: {self}"]


class TrainingInterrupted(UnetTutorialError):
    """Training was stopped by Ctrl-C; the message says what is saved and how to resume."""
