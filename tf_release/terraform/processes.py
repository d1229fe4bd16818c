"""Child processes that stop when tf-release stops: Terraform and verification commands.

Each runs from an argument list (never a shell) in a session of its own, with its output kept and
shown live; an interrupt reaches its process group as one SIGINT, and tf-release's death reaches
the child itself (Linux). Once it ends, times out or is interrupted, nothing it started is left
running.
"""

import codecs
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, TextIO

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Output(NamedTuple):
    """Where a child's output is shown as it runs."""

    out: TextIO
    err: TextIO


@dataclass(frozen=True)
class Finished:
    code: int
    out: str
    err: str
    timed_out: bool = False


def run(
    argv: list[str],
    cwd: Path,
    environment: Mapping[str, str | None] | None = None,
    live: Output | None = None,
    timeout: float | None = None,
    grace: float = 60,
) -> Finished:
    """Run `argv` to its end (or `timeout` seconds, then stop it: SIGINT, and after `grace`
    seconds SIGKILL). `environment` adds to tf-release's variables; a None value removes one."""
    env = dict(os.environ)
    for name, value in (environment or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    # Our own pipes, whose read ends Terraform also holds (pass_fds): if tf-release dies, what
    # Terraform prints while it stops still has somewhere to go, where a broken pipe would
    # kill it at its first line (SIGPIPE) and leave its provisioners running.
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=out_write,
            stderr=err_write,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches Terraform once, from us
            pass_fds=(out_read, err_read),
            preexec_fn=_stop_when_we_die(),
        )
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        os.close(out_write)
        os.close(err_write)
    out: list[str] = []
    err: list[str] = []
    streams = [os.fdopen(out_read, "rb"), os.fdopen(err_read, "rb")]
    readers = [
        threading.Thread(
            target=_tee, args=(streams[0], out, live.out if live else None), daemon=True
        ),
        threading.Thread(
            target=_tee, args=(streams[1], err, live.err if live else None), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(process, grace)
            code = process.wait()
    except BaseException:
        _stop(process, grace)
        raise
    finally:
        _signal_group(process, signal.SIGKILL)  # nothing it started outlives it
        for reader in readers:
            reader.join(timeout=10)
        for reader, stream in zip(readers, streams, strict=True):
            if not reader.is_alive():  # closing under a blocked read would wait for it
                stream.close()
    return Finished(code, "".join(out), "".join(err), timed_out)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, loaded before any fork (never in the child); else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _stop_when_we_die() -> Callable[[], None] | None:
    """For the child, before exec: SIGINT when tf-release dies, however it dies (even SIGKILL),
    so Terraform stops cleanly instead of finishing an apply nobody will record.

    The kernel sends it when the *thread* that forked exits: `_run` is called from the main
    thread, whose end is the process's end. The setting survives exec.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGINT))
        if os.getppid() != parent:  # tf-release died before prctl: no signal would come
            os._exit(1)

    return preexec


def _tee(stream: IO[bytes], kept: list[str], live: TextIO | None) -> None:
    """Keep what Terraform prints and pass it on as it comes, a chunk at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := stream.read1(65536):  # type: ignore[attr-defined]
        text = decoder.decode(chunk)
        kept.append(text)
        if live is not None:
            live.write(text)
            live.flush()


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """Ask the child's whole process group to stop, as Ctrl-C on a terminal does (Terraform
    finishes its step and saves state); after `grace` seconds, or once the child has ended, kill
    whatever of the group is left (a check script's `sleep` would hold our pipes)."""
    if process.poll() is None:
        _signal_group(process, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    _signal_group(process, signal.SIGKILL)
    process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """The child leads a session of its own (start_new_session): its group is its pid."""
    with contextlib.suppress(ProcessLookupError):  # nothing of it is left
        os.killpg(process.pid, signum)
