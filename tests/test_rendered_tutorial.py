"""How `make tutorial` renders stream outputs (tools/render_streams.py): one line per epoch of a Keras bar.

The chunks below are real: a Dense model fitted for 3 epochs of 4 steps with `verbose=1` in a notebook run
by nbclient (the notebook of the last test), with a callback that sleeps 0.06 s a step, so that Keras redraws
its bar at every step, prints a line on stderr at the second step and a line at the end of each epoch
(as unet_helpers's and Keras's own callbacks do: "\\nEpoch 1: ...", before the bar's last update).
"""

from __future__ import annotations

import copy
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "render_streams.py"

_spec = importlib.util.spec_from_file_location("render_streams", SCRIPT)
render_streams = importlib.util.module_from_spec(_spec)
sys.modules["render_streams"] = render_streams  # dataclasses look their module up there
_spec.loader.exec_module(render_streams)

BAR_1 = "\x1b[1m1/4\x1b[0m \x1b[32m━━━━━\x1b[0m\x1b[37m━━━━━━━━━━━━━━━\x1b[0m"
BAR_2 = "\x1b[1m2/4\x1b[0m \x1b[32m━━━━━━━━━━\x1b[0m\x1b[37m━━━━━━━━━━\x1b[0m"
BAR_3 = "\x1b[1m3/4\x1b[0m \x1b[32m━━━━━━━━━━━━━━━\x1b[0m\x1b[37m━━━━━\x1b[0m"
BAR_4 = "\x1b[1m4/4\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m"

# Two epochs, chunk by chunk, as the notebook file stores them. Keras pads a bar that got narrower with
# spaces ("0.9919 "), and the stderr line splits stdout in two outputs in the middle of the bar.
KERAS_CHUNKS = [
    ("stdout", "before fit\nEpoch 1/3\n"),
    ("stdout", "\r" + BAR_1 + " \x1b[1m1s\x1b[0m 438ms/step - loss: 1.2245 - mae: 1.0054"),
    ("stderr", "warning in epoch 1\n"),
    ("stdout", "\b" * 67 + "\r" + BAR_2 + " \x1b[1m0s\x1b[0m 64ms/step - loss: 1.1138 - mae: 0.9919 "),
    ("stdout", "\b" * 66 + "\r" + BAR_3 + " \x1b[1m0s\x1b[0m 64ms/step - loss: 1.0783 - mae: 0.9558"),
    ("stdout", "\b" * 66 + "\r" + BAR_4 + " \x1b[1m0s\x1b[0m 64ms/step - loss: 1.0171 - mae: 0.9274"),
    (
        "stdout",
        "\nEpoch 1: val_loss is 0.7742\n"
        + "\b" * 66
        + "\r"
        + BAR_4
        + " \x1b[1m1s\x1b[0m 98ms/step - loss: 1.0171 - mae: 0.9274 - val_loss: 0.7742 - val_mae: 0.7870\n",
    ),
    ("stdout", "Epoch 2/3\n"),
    ("stdout", "\r" + BAR_1 + " \x1b[1m0s\x1b[0m 323ms/step - loss: 0.7998 - mae: 0.8067"),
    ("stderr", "warning in epoch 2\n"),
    ("stdout", "\b" * 67 + "\r" + BAR_2 + " \x1b[1m0s\x1b[0m 65ms/step - loss: 0.9323 - mae: 0.8872 "),
    ("stdout", "\b" * 66 + "\r" + BAR_3 + " \x1b[1m0s\x1b[0m 64ms/step - loss: 0.8418 - mae: 0.8446"),
    ("stdout", "\b" * 66 + "\r" + BAR_4 + " \x1b[1m0s\x1b[0m 63ms/step - loss: 0.7450 - mae: 0.7801"),
    (
        "stdout",
        "\nEpoch 2: val_loss is 0.5607\n"
        + "\b" * 66
        + "\r"
        + BAR_4
        + " \x1b[1m1s\x1b[0m 85ms/step - loss: 0.7450 - mae: 0.7801 - val_loss: 0.5607 - val_mae: 0.6466\n",
    ),
    ("stdout", "after fit\n"),
]
FINAL_1 = (
    BAR_4 + " \x1b[1m1s\x1b[0m 98ms/step - loss: 1.0171 - mae: 0.9274 - val_loss: 0.7742 - val_mae: 0.7870\n"
)
FINAL_2 = (
    BAR_4 + " \x1b[1m1s\x1b[0m 85ms/step - loss: 0.7450 - mae: 0.7801 - val_loss: 0.5607 - val_mae: 0.6466\n"
)

# Bar lines, as the HTML shows them once the ANSI codes are gone: "4/4 ━━━━ 1s 98ms/step - loss: ...".
BAR_LINE = re.compile(r"^\s*\d+/\d+ ━+ .*step - loss", re.MULTILINE)


def notebook_with(*cells: list) -> nbformat.NotebookNode:
    """A notebook whose code cells hold these outputs: (name, text) for a stream, or an output itself."""
    code_cells = []
    for outputs in cells:
        cell = new_code_cell("...")
        cell.outputs = [
            new_output("stream", name=item[0], text=item[1]) if isinstance(item, tuple) else item
            for item in outputs
        ]
        code_cells.append(cell)
    return new_notebook(cells=code_cells)


def rendered(*cells: list) -> list[list[tuple]]:
    """Each cell's outputs after the preprocessor: (name, text) for a stream, the output type otherwise."""
    notebook, _ = render_streams.RenderStreamsPreprocessor().preprocess(notebook_with(*cells), {})
    return [
        [
            (output.name, output.text) if output.output_type == "stream" else output.output_type
            for output in cell.outputs
        ]
        for cell in notebook.cells
    ]


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_a_keras_progress_bar_leaves_one_line_per_epoch_with_its_final_numbers():
    [outputs] = rendered(KERAS_CHUNKS)

    assert outputs == [
        ("stdout", "before fit\nEpoch 1/3\n"),
        ("stderr", "warning in epoch 1\n"),
        ("stdout", "Epoch 1: val_loss is 0.7742\n" + FINAL_1 + "Epoch 2/3\n"),
        ("stderr", "warning in epoch 2\n"),
        ("stdout", "Epoch 2: val_loss is 0.5607\n" + FINAL_2 + "after fit\n"),
    ]
    stdout = "".join(text for name, text in outputs if name == "stdout")
    assert len(BAR_LINE.findall(plain(stdout))) == 2
    assert "\r" not in stdout and "\b" not in stdout


def test_a_bar_whose_last_update_follows_directly_is_one_line_too():
    # From a fit without callbacks (and notebook 04's second epoch): the final update redraws the last one.
    final = (
        BAR_4
        + " \x1b[1m0s\x1b[0m 34ms/step - loss: 0.3714 - mae: 0.5158 - val_loss: 0.4055 - val_mae: 0.5700"
    )
    chunks = [
        ("stdout", "Epoch 1/3\n"),
        ("stdout", "\r" + BAR_1 + " \x1b[1m0s\x1b[0m 188ms/step - loss: 0.5515 - mae: 0.6444"),
        ("stdout", "\b" * 67 + "\r" + final + "\n"),
        ("stdout", "Epoch 2/3\n"),
    ]

    [outputs] = rendered(chunks)

    assert outputs == [("stdout", "Epoch 1/3\n" + final + "\nEpoch 2/3\n")]


def test_lines_written_without_carriage_return_or_backspace_are_kept_as_they_are():
    cells = [
        [
            (
                "stdout",
                "Epoch 3: val_dice improved from 0.41230 to 0.52011; saved runs/04_nuclei/best.keras\n",
            ),
            ("stdout", "\n  indented\ttabbed  \n\n"),
            new_output("display_data", data={"text/plain": "<Figure>"}),
            ("stdout", "\x1b[31mcoloured\x1b[0m, ünïcode ━━ and an unfinished line"),
            ("stderr", "UserWarning: something\n"),
            ("stdout", " that goes on after stderr\n"),
        ],
        [new_output("execute_result", data={"text/plain": "42"}, execution_count=1)],
        [
            new_output(
                "error", ename="ValueError", evalue="bad", traceback=["Traceback\r\n", "\x1b[31mbad\x1b[0m"]
            )
        ],
        [],
    ]
    notebook = notebook_with(*cells)
    before = copy.deepcopy(notebook)

    render_streams.RenderStreamsPreprocessor().preprocess(notebook, {})

    merged = before.cells[0].outputs[0].text + before.cells[0].outputs[1].text
    assert notebook.cells[0].outputs[0] == new_output("stream", name="stdout", text=merged)
    assert notebook.cells[0].outputs[1:] == before.cells[0].outputs[2:]
    assert notebook.cells[1:] == before.cells[1:]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc\b\bX\n", "aX\n"),
        ("12%\b\b\b45%\b\b\b78%\n", "78%\n"),
        ("\x1b[1mab\x1b[0m\bc\n", "\x1b[1ma\x1b[0mc\n"),  # colour codes take no room: the "b" goes
        ("ab\n\b\bc\n", "ab\nc\n"),  # not across a newline
        ("x\b\b\by\n", "y\n"),  # not past the start of the line
    ],
)
def test_a_backspace_erases_the_character_before_it(text, expected):
    assert render_streams.resolve_terminal_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10%\r50%\r100%\n", "100%\n"),
        ("a long first state\rshort\n", "short\n"),  # the last state only, nothing left of the first
        ("line one\r\nline two\r\n", "line one\nline two\n"),
        ("done\r", "done"),  # nothing written after the carriage return yet
        ("kept\nrewritten\rlast\nkept too\n", "kept\nlast\nkept too\n"),
    ],
)
def test_a_carriage_return_keeps_the_last_state_of_the_line(text, expected):
    assert render_streams.resolve_terminal_text(text) == expected


def test_stdout_and_stderr_are_resolved_apart_and_never_merged():
    [outputs] = rendered(
        [
            ("stdout", "out \r"),
            ("stderr", "err 1/2"),
            ("stdout", "\rout 2/2\n"),
            ("stderr", "\rerr 2/2\n"),
            ("stdout", "kept"),
            ("stderr", "\rnot a rewrite of stdout\n"),
        ]
    )

    assert outputs == [
        ("stdout", "out 2/2\n"),
        ("stderr", "err 2/2\n"),
        ("stdout", "kept"),
        ("stderr", "not a rewrite of stdout\n"),
    ]


def test_the_script_renders_html_with_one_bar_line_per_epoch(tmp_path):
    # The command of `make tutorial`, here without --execute: the notebook holds the chunks already.
    notebook_path = tmp_path / "training.ipynb"
    nbformat.write(notebook_with(KERAS_CHUNKS), notebook_path)

    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--to",
            "html",
            "--output-dir",
            str(tmp_path / "html"),
            str(notebook_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    page = (tmp_path / "html" / "training.html").read_text(encoding="utf-8")
    assert page.count("step - loss") == 2
    assert "val_mae: 0.7870" in page and "val_mae: 0.6466" in page
    assert "Epoch 1: val_loss is 0.7742" in page and "warning in epoch 2" in page


SETUP = """\
import sys, time
import numpy as np
import keras
x = np.random.default_rng(0).random((40, 4), dtype="float32")
y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse", metrics=["mae"])
"""
CALLBACK = """\
class Report(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.06)  # slower than Keras's 0.05 s between redraws: every step is drawn
        if batch == 1:
            print(f"warning in epoch {self.epoch + 1}", file=sys.stderr, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        print(f"\\nEpoch {epoch + 1}: val_loss is {logs['val_loss']:.4f}")
"""
FIT = """\
print("before fit")
model.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=1, callbacks=[Report()])
print("after fit")
"""


def test_a_real_keras_fit_in_a_notebook_leaves_one_bar_line_per_epoch():
    from nbclient import NotebookClient

    notebook = new_notebook(cells=[new_code_cell(SETUP), new_code_cell(CALLBACK), new_code_cell(FIT)])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    raw = "".join(output.get("text", "") for output in notebook.cells[2].outputs)
    assert raw.count("step - loss") > 3  # the notebook file holds every state of the bars

    render_streams.RenderStreamsPreprocessor().preprocess(notebook, {})

    outputs = notebook.cells[2].outputs
    stdout = plain("".join(output.text for output in outputs if output.get("name") == "stdout"))
    stderr = "".join(output.text for output in outputs if output.get("name") == "stderr")
    assert len(BAR_LINE.findall(stdout)) == 3, stdout
    lines = stdout.splitlines()
    assert len(lines) == 2 + 3 * 3, stdout  # before, after, and per epoch: "Epoch 1/3", the callback, the bar
    assert lines[0] == "before fit" and lines[-1] == "after fit"
    for epoch in (1, 2, 3):
        start = lines.index(f"Epoch {epoch}/3")
        value = lines[start + 1].removeprefix(f"Epoch {epoch}: val_loss is ")
        assert re.fullmatch(r"\d+\.\d{4}", value), lines[start + 1]
        assert re.fullmatch(
            rf"4/4 ━{{20}} .*step - loss: .* - val_loss: {value} - val_mae: [\d.]+", lines[start + 2]
        )
    assert all(f"warning in epoch {epoch}\n" in stderr for epoch in (1, 2, 3))
    assert "step - " not in stderr and "\r" not in stdout + stderr and "\b" not in stdout + stderr
