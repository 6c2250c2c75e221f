"""The one exception type the package raises for mistakes a user can fix."""


class UnetTutorialError(Exception):
    """A problem with the user's input or setup, with a message that says what to do.

    In Jupyter it shows as one line (``UnetTutorialError: ...``) instead of a stack trace, because the
    trace would only point into this package while the fix is in the user's data or settings.
    """

    def _render_traceback_(self) -> list[str]:
        # IPython calls this hook, if present, instead of formatting the traceback itself.
        return [f"{type(self).__name__}: {self}"]
