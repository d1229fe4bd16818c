"""The few ways an operation can fail; the faces turn each into one line and an exit code."""

import os
import tempfile
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class ReleaseError(Exception):
    """Base of every failure the tool reports to a user; never shown with a traceback."""

    exit_code = 1


class BadInput(ReleaseError):
    """The request itself is wrong (arguments, config, a stored object): nothing was written."""

    exit_code = 2


class AwsFailure(ReleaseError):
    """AWS refused or could not be reached; the message says what to fix."""

    exit_code = 1


class ImagesMissing(ReleaseError):
    """Images a release names are gone from their registry; deploying them would fail."""

    exit_code = 1


class RegistryFailure(ReleaseError):
    """An image registry refused, could not be reached, or kept rate-limiting; the message names
    the registry and what to do. Nothing was written."""

    exit_code = 1


class LockHeld(ReleaseError):
    """Another deploy of the same environment is in progress (or was abandoned)."""

    exit_code = 3


class HeldByPolicy(ReleaseError):
    """A release rule (soak, freeze) holds the release; nothing was written, no lock taken.
    `policy`: the hold as `--json` shows it (`{"held": true, "rule", "until"}`)."""

    exit_code = 5

    def __init__(self, message: str, policy: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.policy = policy or {}


class TerraformFailed(ReleaseError):
    """Terraform could not plan or apply; SSM was put back as it was."""

    exit_code = 1


class ApplyRefused(TerraformFailed):
    """`terraform apply` refused the saved plan before changing anything (a stale plan, a state
    lock it could not take): the stack is as it was before the deploy."""


class Cancelled(ReleaseError):
    """The operator declined the plan or interrupted the run; SSM was put back as it was."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class BrokenState(BadInput):
    """An environment's state does not parse (or is gone while records exist); `tf-release
    repair` rebuilds it from the deployment records."""


class GateFailed(ReleaseError):
    """A deploy went through but a gate says it did not succeed (ECS rolled back, runs other
    images, never settled); `checks` are the gates.Check results up to the failure."""

    exit_code = 1

    def __init__(self, message: str, phase: str, checks: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.phase = phase  # which gate: "ecs" (the rollout check)
        # gates.Check values; errors.py sits below gates.py, so it cannot name the type
        self.checks: tuple[Any, ...] = tuple(checks)


class LockLost(ReleaseError):
    """The deploy's lock was cleared (or taken over) while it ran: it stopped and recorded
    nothing as deployed, and leaves SSM and the lock to whoever holds it now."""

    exit_code = 1


DEBUG_VARIABLE = "TF_RELEASE_DEBUG"  # "1": the faces print an internal error's traceback too


def internal_error(error: BaseException) -> str:
    """A bug, named by its type and message, for a record or an error line."""
    lines = str(error).splitlines()
    return f"internal error: {type(error).__name__}" + (f": {lines[0]}" if lines else "")


def crash_report(error: BaseException, program: str) -> str:
    """Save the traceback of a bug to a file and return the one line that points to it: the
    user sees no traceback, the report has everything."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(tempfile.gettempdir()) / f"{program}-crash-{stamp}-{os.getpid()}.log"
    try:
        path.write_text("".join(traceback.format_exception(error)))
        where = f"details in {path}"
    except OSError as why:
        where = f"details not saved: {why}"
    return f"{internal_error(error)} ({where}; please report it)"
