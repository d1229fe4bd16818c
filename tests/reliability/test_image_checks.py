"""Guarantee 7: a release never goes out with images that ECR no longer has (lifecycle
policies expire old ones), unless the operator says --skip-image-check."""

import pytest

from tests.conftest import Cli
from tests.support.assertions import assert_refused
from tests.support.project import ecr_image, push_image


def push(cli: Cli, name: str, tag: str) -> str:
    return push_image(cli.client("ecr"), name, tag)


def expire(cli: Cli, name: str, tag: str) -> None:
    cli.client("ecr").batch_delete_image(repositoryName=name, imageIds=[{"imageTag": tag}])


@pytest.fixture
def released(cli: Cli) -> Cli:
    """stage runs v1 (api:one), then v2 (api:two); both images were in ECR when deployed."""
    for tag in ("one", "two"):
        cli.ok("publish", "api", push(cli, "api", tag))
        cli.ok("apply", "-e", "stage", "-r", tag, "--yes")
    return cli


def test_publish_checks_the_image_is_in_ecr(cli: Cli) -> None:
    cli.ok("publish", "api", push(cli, "api", "one"))
    assert_refused(
        cli,
        ["publish", "api", ecr_image("api", "typo")],
        f"{ecr_image('api', 'typo')} does not exist in ECR",
        code=1,
    )
    cli.ok("publish", "api", ecr_image("api", "typo"), "--skip-image-check")


def test_a_rollback_to_expired_images_stops_before_anything_changes(released: Cli) -> None:
    expire(released, "api", "one")
    assert_refused(
        released,
        ["rollback", "-e", "stage", "-r", "two is broken", "--yes"],
        f"1 image(s) no longer exist in ECR: {ecr_image('api', 'one').split(':one')[0]}@sha256:",
        code=1,
    )  # the rollback brings back the digest v1 ran


def test_a_deploy_of_expired_images_is_refused_with_their_list(released: Cli) -> None:
    expire(released, "api", "one")
    assert_refused(
        released,
        ["deploy", "-e", "stage", "--version", "v1", "--yes"],
        "(pass --skip-image-check to deploy anyway)",
        code=1,
    )


def test_images_already_running_are_not_asked_for(released: Cli) -> None:
    expire(released, "api", "two")  # running now; a redeploy does not need ECR to have it
    released.ok("deploy", "-e", "stage", "--version", "v2", "--yes")


def test_skip_image_check_deploys_anyway(released: Cli) -> None:
    expire(released, "api", "one")
    out = released.ok("rollback", "-e", "stage", "-r", "override", "--yes", "--skip-image-check")
    assert "Rolled stage back to v1 as v3." in out.splitlines()  # after what it will do
