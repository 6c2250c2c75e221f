"""Stream outputs as a terminal would leave them: one line per epoch of a Keras progress bar, not dozens.

Keras's progress bar (``verbose=1`` or ``"auto"``) redraws its line in a notebook with backspaces and a
carriage return, in many small chunks. JupyterLab shows only the last state of the line, but the notebook
file keeps every chunk, and nbconvert's HTML shows every step of every bar. `RenderStreamsPreprocessor`
resolves them after execution. In each cell, stdout and stderr each go through their own terminal (never
mixed), output after output, so a line begun in one output and rewritten in a later one (a TensorFlow
message on stderr came in between) is shown once, in the output that finished it. Line by line:

- ``\\b`` erases the character on screen before it (ANSI colour codes take no room and stay);
- ``\\r`` followed by more text on the same line starts that line again: a line rewritten by ``\\r``
  keeps only its last state; ``\\r\\n`` is a plain newline; a ``\\r`` that nothing follows changes nothing;
- Keras's redraw (as many ``\\b`` as the bar is wide, then ``\\r``) that finds its line already ended by
  another writer's newline (callbacks print ``"\\nEpoch 3: val_dice improved ..."`` before the bar's last
  update) replaces that bar line rather than leaving a half-finished copy of it above the message;
- every other character, and every line written without ``\\r`` or ``\\b``, is kept as it is.

Then consecutive stream outputs of one name are merged (Keras writes many tiny chunks) and empty ones go.

`make tutorial` renders each notebook with this script, which takes the arguments of ``jupyter nbconvert``
and runs it with the preprocessor added after the others (after execution):

    python tools/render_streams.py --to html --execute --output-dir build/tutorial notebooks/04_training.ipynb
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from nbconvert.preprocessors import Preprocessor

# A token: an ANSI escape sequence (colours, bold: it takes no room on the line) or one character.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_TOKENS = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|.", re.DOTALL)


@dataclass
class _Line:
    """A finished line: its text, the output it belongs to, and whether it was drawn after a `\\r`."""

    text: str
    owner: int
    drawn: bool
    width: int  # characters on screen, ANSI sequences and the newline left out


class _Terminal:
    """One stream (stdout or stderr) of one cell, written output by output, as a terminal shows it."""

    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self._line: list[str] = []  # tokens of the line being written
        self._owner = 0  # the output that drew the line being written (its last state)
        self._drawn = False  # the line being written was started again by a `\r`
        self._restart = False  # a `\r` came: the next character written starts the line again
        self._backspaces = 0  # `\b` in a row that found nothing to erase on an empty line
        self._erased = False  # the `\b` in a row erased something first

    def write(self, text: str, owner: int) -> None:
        """Write the text of output number `owner`: later outputs are written with larger numbers.

        A line left unfinished by an earlier output goes on in this one only if this one starts by
        rewriting it (`\\r`, `\\b`) or ending it (`\\n`); otherwise it ends where it was written.
        """
        if self._line and owner != self._owner and not text.startswith(("\r", "\b", "\n")):
            self._finish("")
        for token in _TOKENS.findall(text):
            if token == "\n":
                self._finish("\n")
            elif token == "\r":
                if self._backspaces and not self._erased:
                    self._redraw(self._backspaces)
                self._backspaces, self._erased, self._restart = 0, False, True
            elif token == "\b":
                self._backspace()
            else:
                if self._restart:
                    self._line, self._drawn, self._restart = [], True, False
                if not self._line:
                    self._owner = owner
                self._backspaces, self._erased = 0, False
                self._line.append(token)

    def close(self) -> list[_Line]:
        """The lines, the unfinished last one included."""
        if self._line:
            self._finish("")
        return self.lines

    def _finish(self, end: str) -> None:
        width = sum(1 for token in self._line if not _ANSI.fullmatch(token))
        self.lines.append(_Line("".join(self._line) + end, self._owner, self._drawn, width))
        self._line, self._drawn, self._restart = [], False, False
        self._backspaces, self._erased = 0, False

    def _backspace(self) -> None:
        """Erase the last character on screen of the line; on an empty line, count the `\\b`."""
        for position in range(len(self._line) - 1, -1, -1):
            if not _ANSI.fullmatch(self._line[position]):
                del self._line[position]
                self._erased = True
                return
        self._backspaces += 1

    def _redraw(self, width: int) -> None:
        """`width` backspaces and a `\\r` on an empty line: a progress bar redraws the line it drew last.

        That line was ended by another writer's newline (Keras's callbacks print "\\nEpoch 3: ..." before
        the bar's last update), so it is already finished: remove it, when it is as wide as the bar says.
        """
        drawn = [line for line in self.lines if line.drawn]
        if drawn and drawn[-1].width == width:
            self.lines.remove(drawn[-1])


def resolve_terminal_text(text: str) -> str:
    """`text` as a terminal leaves it: `\\b` and `\\r` applied, a line rewritten keeping its last state."""
    terminal = _Terminal()
    terminal.write(text, 0)
    return "".join(line.text for line in terminal.close())


class RenderStreamsPreprocessor(Preprocessor):
    """Resolve the `\\r` and `\\b` of each cell's stream outputs; merge consecutive ones of one name."""

    def preprocess_cell(self, cell, resources, index):
        outputs = _merge_consecutive_streams(cell.get("outputs", []))
        terminals: dict[str, _Terminal] = {}
        for position, output in enumerate(outputs):
            if _is_stream(output):
                terminals.setdefault(output.name, _Terminal()).write(output.text, position)
        texts = dict.fromkeys(range(len(outputs)), "")
        for terminal in terminals.values():
            for line in terminal.close():
                texts[line.owner] += line.text
        for position, output in enumerate(outputs):
            if _is_stream(output):
                output.text = texts[position]
        if "outputs" in cell:
            # A line rewritten in a later output can leave an earlier one empty: two of one name side by side.
            cell.outputs = _merge_consecutive_streams(
                [output for output in outputs if not (_is_stream(output) and output.text == "")]
            )
        return cell, resources


def _is_stream(output) -> bool:
    return output is not None and output.get("output_type") == "stream"


def _merge_consecutive_streams(outputs: list) -> list:
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if _is_stream(output) and _is_stream(previous) and previous.name == output.name:
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def main(argv: list[str] | None = None) -> int:
    """Run ``jupyter nbconvert`` with `argv` and `RenderStreamsPreprocessor` after its other preprocessors."""
    from nbconvert.nbconvertapp import NbConvertApp
    from traitlets.config import Config

    config = Config()
    config.Exporter.preprocessors = [RenderStreamsPreprocessor]
    NbConvertApp.launch_instance(argv=sys.argv[1:] if argv is None else argv, config=config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
