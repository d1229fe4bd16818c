"""The one clock every flow reads: real UTC now, or the moment TF_RELEASE_NOW names (ISO 8601),
so that tests, and an operator asking "what if", can set time without waiting for it."""

import os
from datetime import UTC, datetime

from tf_release import naming
from tf_release.errors import BadInput

NOW_VARIABLE = "TF_RELEASE_NOW"


def now() -> datetime:
    fixed = os.environ.get(NOW_VARIABLE)
    if fixed:
        try:
            return naming.parse_time(fixed)
        except BadInput as error:
            raise BadInput(f"{NOW_VARIABLE}: {error}") from None
    return datetime.now(UTC)
