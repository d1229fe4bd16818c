"""`tf-release-manifest`, driven over stdin/stdout exactly as Terraform's external data source
calls it."""

import json

import pytest

from tests.conftest import Cli
from tests.support.project import image
from tests.support.scenes import released
from tf_release.flows import release


def query(cli: Cli, document: object) -> tuple[int, str, str]:
    text = document if isinstance(document, str) else json.dumps(document)
    result = cli.run(input=text, script="tf-release-manifest")
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def deployed(cli: Cli) -> Cli:
    released(cli.stores())
    return cli


def test_it_prints_the_environment_images_and_version_as_strings(deployed: Cli) -> None:
    code, out, err = query(deployed, {"project": "catalogue", "environment": "stage"})
    assert code == 0, err
    assert json.loads(out) == {
        "api": image("api", "one"),
        "worker": image("worker", "one"),
        "_version": "v1",
    }


def test_the_region_may_be_given_in_the_query(deployed: Cli) -> None:
    del deployed.env["AWS_DEFAULT_REGION"]
    code, out, _ = query(
        deployed, {"project": "catalogue", "environment": "stage", "region": "eu-west-1"}
    )
    assert code == 0 and json.loads(out)["_version"] == "v1"


@pytest.mark.parametrize(
    "document,message",
    [
        ({"project": "catalogue"}, "the query lacks environment"),
        ({}, "the query lacks project and environment"),
        ("not json", "the query on stdin is not JSON"),
        ({"project": "catalogue", "environment": "stage", "colour": "red"}, "unknown query keys"),
        ({"project": "catalogue", "environment": "../prod"}, "invalid environment name"),
        ({"project": "cata/logue", "environment": "stage"}, "invalid project name"),
        ({"project": "catalogue", "environment": "qa"}, "nothing is deployed to qa of catalogue"),
        (
            {"project": "catalogue", "environment": "stage", "role_arn": "admin"},
            "invalid role ARN 'admin'",
        ),
    ],
)
def test_bad_queries_fail_with_one_line(deployed: Cli, document: object, message: str) -> None:
    code, out, err = query(deployed, document)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("tf-release-manifest: ")
    assert message in err


def test_aws_errors_fail_with_one_line(deployed: Cli) -> None:
    del deployed.env["AWS_ACCESS_KEY_ID"], deployed.env["AWS_SECRET_ACCESS_KEY"]
    code, out, err = query(deployed, {"project": "catalogue", "environment": "stage"})
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "no AWS credentials" in err
    assert err.endswith(
        ": set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, where Terraform runs\n"
    )  # it takes no --profile: the query and Terraform's environment are all it reads
    assert "--" not in err


def test_the_environment_role_may_be_given_in_the_query(cli: Cli) -> None:
    role = "arn:aws:iam::222222222222:role/release"
    cli.write_config(f'[environments.stage]\npromote_from = "latest"\nrole_arn = "{role}"\n')
    stores = cli.stores()
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "one")
    code, out, err = query(cli, {"project": "catalogue", "environment": "stage", "role_arn": role})
    assert code == 0, err
    assert json.loads(out) == {"api": image("api", "one"), "_version": "v1"}
    code, _, err = query(cli, {"project": "catalogue", "environment": "stage"})
    assert code == 1 and "nothing is deployed to stage" in err  # not in the caller's account
