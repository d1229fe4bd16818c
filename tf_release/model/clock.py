"""The one clock every flow reads: real UTC now, or the moment TF_RELEASE_NOW names (ISO 8601),
so that tests, and an operator asking "what if", can set time without waiting for it.

A command that writes refuses a set clock unless TF_RELEASE_NOW_WRITES=1 says it is a rehearsal:
a forgotten export would date releases falsely and judge release rules at the wrong time."""

import os
from datetime import UTC, datetime

from tf_release.model import naming
from tf_release.model.errors import BadInput

NOW_VARIABLE = "TF_RELEASE_NOW"
WRITES_VARIABLE = "TF_RELEASE_NOW_WRITES"


def now() -> datetime:
    fixed = os.environ.get(NOW_VARIABLE)
    if fixed:
        try:
            return naming.parse_time(fixed)
        except BadInput as error:
            raise BadInput(f"{NOW_VARIABLE}: {error}") from None
    return datetime.now(UTC)


def check_writes() -> None:
    """Before a command that writes: the real clock, or a rehearsal that says it is one."""
    fixed = os.environ.get(NOW_VARIABLE)
    if fixed and os.environ.get(WRITES_VARIABLE) != "1":
        raise BadInput(
            f"{NOW_VARIABLE} is set ({fixed}): it is for asking what if (policy, diff, board); "
            f"unset it to write, or set {WRITES_VARIABLE}=1 to rehearse against a scratch bucket"
        )
