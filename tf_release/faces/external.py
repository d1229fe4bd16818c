"""`tf-release-manifest`: Terraform's external data program for an environment's images.

Reads `{"project": …, "environment": …, "region": …, "role_arn": …}` on stdin (region and
role_arn optional) and prints one JSON object of
strings: image name → image URL as SSM holds them now, and `_version` → the manifest version
whose images those are (empty when none was recorded). No side effects. Any error is one line on
stderr and exit code 1, which Terraform shows as the data source's error; a bug too (its
traceback saved to a file the line names).
"""

import json
import os
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from tf_release.model import naming
from tf_release.model.errors import DEBUG_VARIABLE, BadInput, ReleaseError, crash_report

if TYPE_CHECKING:
    from tf_release.stores.aws import AwsSession

VERSION_KEY = "_version"  # image names start with a letter or digit, so this never collides


@dataclass(frozen=True)
class Query:
    project: str
    environment: str
    region: str | None = None
    role_arn: str | None = None  # the environment's role, as in tf-release.toml


def parse_query(text: str) -> Query:
    try:
        query: Any = json.loads(text)
    except ValueError:
        raise BadInput("the query on stdin is not JSON") from None
    if not isinstance(query, dict) or not all(isinstance(v, str) for v in query.values()):
        raise BadInput("the query must be a JSON object of strings")
    missing = [key for key in ("project", "environment") if not query.get(key)]
    if missing:
        raise BadInput(f"the query lacks {' and '.join(missing)}")
    unknown = sorted(set(query) - {"project", "environment", "region", "role_arn"})
    if unknown:
        raise BadInput(f"unknown query keys: {', '.join(unknown)}")
    return Query(
        naming.check_project_name(query["project"]),
        naming.check_environment_name(query["environment"]),
        query.get("region") or None,
        naming.check_role_arn(query["role_arn"]) if query.get("role_arn") else None,
    )


def session_for(region: str | None, role_arn: str | None = None) -> "AwsSession":
    from tf_release.stores.aws import AwsSession

    session = AwsSession(region=region)
    return session.assume(role_arn) if role_arn else session


def read_release(project: str, environment: str, session: "AwsSession") -> dict[str, str]:
    """⌈N/10⌉ + 1 SSM requests: the version pointer, which says how many images to expect,
    then the images by path, ten a page."""
    from tf_release.stores.ssm import ImageStore

    images = ImageStore(session, project)
    pointer = images.read_pointer(environment)
    found = images.read(environment, expected=pointer.images if pointer else None)
    if not found and pointer is None:
        raise BadInput(
            f"nothing is deployed to {environment} of {project}: no parameters under "
            f"{naming.image_path(project, environment)}"
        )
    version = "" if pointer is None else naming.format_version(pointer.version)
    return {**found, VERSION_KEY: version}


# The AWS messages advise tf-release's own options; this program takes none, only the query
# and the environment Terraform gives it.
CLI_ADVICE = {
    "set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY": (
        "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, where Terraform runs"
    ),
    "check --profile / AWS_PROFILE": "check AWS_PROFILE where Terraform runs",
    "set `region` in tf-release.toml, --region or AWS_REGION": (
        "pass `region` in the query (the module's `region` input) or set AWS_REGION"
    ),
}


def for_terraform(message: str) -> str:
    """A message as advice for whoever runs Terraform: no tf-release option in it."""
    for cli, program in CLI_ADVICE.items():
        message = message.replace(cli, program)
    return message


def main() -> NoReturn:
    try:
        query = parse_query(sys.stdin.read())
        session = session_for(query.region, query.role_arn)
        result = read_release(query.project, query.environment, session)
    except ReleaseError as error:
        print(f"tf-release-manifest: {for_terraform(str(error))}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # a bug: one line for Terraform to show, the traceback in a file
        if os.environ.get(DEBUG_VARIABLE) == "1":
            traceback.print_exception(error, file=sys.stderr)
        print(f"tf-release-manifest: {crash_report(error, 'tf-release-manifest')}", file=sys.stderr)
        sys.exit(1)
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    sys.exit(0)
