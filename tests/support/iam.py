"""IAM enforcement in the moto server: a user with a given policy, and turning checks on/off."""

import json
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import Cli


def enforce_iam(cli: "Cli", after: float) -> None:
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
