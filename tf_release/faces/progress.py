"""The terminal spinner that shows the steps the flows announce (model/progress.py).

On an interactive terminal a spinner on stderr names the step and its elapsed seconds, so there
is never a silent pause, and Terraform's own output, written through `Spinner.around`, prints
above it line by line. rich draws it: it knows dumb terminals (TERM=dumb: no spinner), NO_COLOR
and pipes (nothing is shown).
"""

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO, cast

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner as RichSpinner
from rich.text import Text

from tf_release.model.progress import Quiet

REFRESHES_PER_SECOND = 10


class Spinner:
    """One spinner line for the innermost step under way, shown while any step runs."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.RLock()
        self._message: str | None = None
        self._started = 0.0
        self._live: Live | None = None
        self._above: list[_AboveSpinner] = []

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        with self._lock:
            outer = self._message, self._started
            self._message, self._started = message, time.monotonic()
            if self._live is None:
                self._live = Live(
                    RichSpinner("dots", text=_Elapsed(self)),
                    console=self.console,
                    refresh_per_second=REFRESHES_PER_SECOND,
                    transient=True,
                    redirect_stdout=False,  # --json's output stays on stdout, untouched
                    redirect_stderr=False,
                )
                self._live.start(refresh=True)
            else:
                self._live.refresh()
        try:
            yield
        finally:
            with self._lock:
                self._message, self._started = outer
                if self._message is None and self._live is not None:
                    for above in self._above:
                        above.close()  # a half line left when the last step ends
                    self._live.stop()
                    self._live = None

    def around(self, stream: TextIO) -> TextIO:
        """`stream`, written so that its lines appear above the spinner, never through it: on a
        terminal they are printed whole, above it; elsewhere (a pipe) as they come."""
        if not stream.isatty():
            return stream
        above = _AboveSpinner(self)
        self._above.append(above)
        return cast(TextIO, above)

    def _print_above(self, line: str) -> None:
        with self._lock:
            self.console.print(Text.from_ansi(line), soft_wrap=True)

    def _text(self) -> Text:
        elapsed = time.monotonic() - self._started
        return Text(f"{self._message} ({elapsed:.0f}s)")


class _Elapsed:
    """The spinner's text, rendered afresh at each refresh so that the seconds count up."""

    def __init__(self, spinner: Spinner) -> None:
        self._spinner = spinner

    def __rich__(self) -> Text:
        return self._spinner._text()


class _AboveSpinner:
    """The file-like face of `Spinner.around`: what Terraform's output is written to. A line is
    printed once it is whole, so the spinner never draws over half of one."""

    def __init__(self, spinner: Spinner) -> None:
        self._spinner = spinner
        self._pending = ""

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._spinner._print_above(line)
        return len(text)

    def flush(self) -> None:
        """A half line stays pending until its end, or until the last step ends."""

    def close(self) -> None:
        if self._pending:
            self._spinner._print_above(self._pending)
            self._pending = ""

    def isatty(self) -> bool:
        return True


def for_terminal(stream: TextIO = sys.stderr) -> "Spinner | Quiet":
    """A spinner when `stream` is an interactive terminal (not TERM=dumb), nothing otherwise."""
    console = Console(file=stream)
    return Spinner(console) if console.is_interactive else Quiet()
