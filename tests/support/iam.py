"""IAM enforcement in the moto server: a user with a given policy, and turning checks on/off.

Only moto's server can enforce IAM (`/moto-api/reset-auth`): a test that enforces it is marked
`@pytest.mark.moto_only(...)`, and is skipped here too where the marker was forgotten."""

import json
import math
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import Cli


def enforce_iam(cli: "Cli", after: float) -> None:
    """Check IAM from the `after`-th request on (0: now; infinity: stop checking)."""
    if cli.server.kind != "moto":
        if math.isinf(after):
            return  # nothing was enforced: nothing to stop (a fixture's teardown)
        pytest.skip(f"moto only, not {cli.server.kind}: IAM enforcement is /moto-api/reset-auth")
    request = urllib.request.Request(
        f"{cli.server.url}/moto-api/reset-auth",
        data=str(after).encode(),
        headers={"Content-Type": "text/plain"},  # a form body would hide the number from moto
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()


def as_moto_checks_it(policy: dict[str, Any]) -> dict[str, Any]:
    statements = []
    for statement in policy["Statement"]:
        scoped = all(action.startswith("s3:") for action in statement["Action"])
        statements.append(statement if scoped else {**statement, "Resource": "*"})
    return {**policy, "Statement": statements}


def user_with(cli: "Cli", policy: dict[str, Any]) -> dict[str, str]:
    iam = cli.client("iam")
    iam.create_user(UserName="deployer")
    iam.put_user_policy(
        UserName="deployer", PolicyName="tf-release", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }
