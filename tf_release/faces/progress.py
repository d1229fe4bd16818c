"""The terminal spinner that shows the steps the flows announce (model/progress.py).

On a terminal a spinner on stderr names the step and its elapsed seconds, so there is never a
silent pause, and Terraform's own output, written through `Spinner.around`, prints above it
line by line; without a terminal nothing is shown.
"""

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO, cast

from tf_release.model.progress import Quiet

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
CLEAR = "\r\x1b[K"


class Spinner:
    """A one-line spinner on a terminal, redrawn every `interval` seconds while a step runs."""

    def __init__(self, stream: TextIO, interval: float = 0.1) -> None:
        self.stream = stream
        self.interval = interval
        self._lock = threading.Lock()
        self._message: str | None = None
        self._started = 0.0
        self._frame = 0
        self._drawn = False
        self._line_open = False  # other output ended mid-line: do not draw over it
        self._thread: threading.Thread | None = None

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        with self._lock:
            outer = self._message, self._started
            self._message, self._started = message, time.monotonic()
            self._frame = 0
            self._draw()
            if self._thread is None:
                self._thread = threading.Thread(target=self._spin, daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._clear()
                self._message, self._started = outer

    def around(self, stream: TextIO) -> TextIO:
        """`stream`, written so that its lines appear above the spinner, never through it."""
        return cast(TextIO, _AboveSpinner(self, stream))

    def _spin(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                if self._message is None:
                    self._thread = None
                    return
                self._frame += 1
                self._draw()

    def _draw(self) -> None:
        if self._message is None or self._line_open:
            return
        elapsed = time.monotonic() - self._started
        frame = FRAMES[self._frame % len(FRAMES)]
        self.stream.write(f"{CLEAR}{frame} {self._message} ({elapsed:.0f}s)")
        self.stream.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(CLEAR)
            self.stream.flush()
            self._drawn = False

    def _write_above(self, stream: TextIO, text: str) -> None:
        with self._lock:
            self._clear()
            stream.write(text)
            stream.flush()
            if text:
                self._line_open = not text.endswith("\n")
            self._draw()


class _AboveSpinner:
    """The file-like face of `Spinner.around`: what Terraform's output is written to."""

    def __init__(self, spinner: Spinner, stream: TextIO) -> None:
        self._spinner = spinner
        self._stream = stream

    def write(self, text: str) -> int:
        self._spinner._write_above(self._stream, text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def for_terminal(stream: TextIO = sys.stderr) -> "Spinner | Quiet":
    """A spinner when `stream` is a terminal, nothing otherwise."""
    return Spinner(stream) if stream.isatty() else Quiet()
