"""What the flows and stores announce of their long steps: `stores.progress.step("writing 12 SSM
parameters")` around anything that can take a while. The faces decide how to show it (the
terminal spinner of faces/progress.py); without a terminal, `Quiet` shows nothing.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TextIO


class Progress(Protocol):
    def step(self, message: str) -> AbstractContextManager[None]: ...

    def around(self, stream: TextIO) -> TextIO:
        """`stream`, for other output (Terraform's) written while steps are shown."""
        ...


class Quiet:
    """No display: for scripts, tests and output that is not a terminal."""

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        yield

    def around(self, stream: TextIO) -> TextIO:
        return stream
