"""Killing a process as a dead laptop would: it and everything it started, at once."""

import contextlib
import os
import pty
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(process: "subprocess.Popen[bytes] | subprocess.Popen[str]") -> None:
    """Ask a test server to stop (SIGTERM), and kill it if it has not within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def kill_tree(pid: int) -> None:
    for target in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)


def answer_prompt(
    start: Callable[..., subprocess.Popen[str]], prompt: bytes, reply: bytes, wait: float = 60
) -> tuple[int, bytes, str]:
    """Run a command on a terminal, wait for its `prompt`, type `reply`: its exit code, what the
    terminal showed until the prompt, and its stderr."""
    controller, terminal = pty.openpty()
    run = start(stdin=terminal, stdout=terminal)
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + wait
    while prompt not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(controller, 4096)
    os.write(controller, reply)
    _, err = run.communicate(timeout=60)
    os.close(controller)
    return run.returncode, seen, err
