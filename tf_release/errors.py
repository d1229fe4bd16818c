"""The few ways an operation can fail; the faces turn each into one line and an exit code."""


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


class LockHeld(ReleaseError):
    """Another deploy of the same environment is in progress (or was abandoned)."""

    exit_code = 3


class TerraformFailed(ReleaseError):
    """Terraform could not plan or apply; SSM was put back as it was."""

    exit_code = 1


class Cancelled(ReleaseError):
    """The operator declined the plan or interrupted the run; SSM was put back as it was."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class LockLost(ReleaseError):
    """The deploy's lock was cleared (or taken over) while it ran: it stopped and recorded
    nothing as deployed, and leaves SSM and the lock to whoever holds it now."""

    exit_code = 1
