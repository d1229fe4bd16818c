"""Checks shared by the command-line tests."""

from typing import TYPE_CHECKING

from tests.support.project import BUCKET

if TYPE_CHECKING:
    from tests.conftest import Cli


def snapshot(cli: "Cli") -> tuple[dict[str, str], dict[str, str]]:
    ssm = cli.client("ssm")
    parameters = {
        p["Name"]: p["Value"]
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/", Recursive=True)
        for p in page["Parameters"]
    }
    s3 = cli.client("s3")
    objects = {
        item["Key"]: item["ETag"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    }
    return parameters, objects


def assert_refused(cli: "Cli", args: list[str], message: str, code: int = 2) -> None:
    before = snapshot(cli)
    result = cli.run(*args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tf-release: error: ")
    assert message in lines[0], lines[0]
    assert result.stdout == ""
    assert snapshot(cli) == before
