"""Scenes several tests start from, set in-process (faster than the console scripts)."""

import pytest

from tests.support.project import image
from tf_release import deploy, release
from tf_release.deploy import DeployOptions
from tf_release.errors import TerraformFailed
from tf_release.stores import Stores
from tf_release.terraform import PlanSummary


class Dies:
    """A Terraform run whose process dies during plan, as a killed CI job or closed laptop."""

    def plan(self) -> PlanSummary:
        raise SystemExit("the laptop died")

    def apply(self) -> None:
        raise AssertionError("never reached")


class FailsToApply:
    """A Terraform run that plans, then fails to apply with a message of several lines."""

    def plan(self) -> PlanSummary:
        return PlanSummary(change=1)

    def apply(self) -> None:
        raise TerraformFailed("terraform apply failed (exit 1): Error: quota\nmore detail")


def released(
    stores: Stores,
    images: tuple[str, ...] = ("api", "worker"),
    reason: str = "one",
    environment: str = "stage",
) -> None:
    """`images` published at tag "one" and applied to the environment as its v1."""
    for name in images:
        release.publish(stores, name, image(name, "one"))
    release.apply(stores, environment, reason)


def next_prepared(stores: Stores, environment: str = "stage") -> None:
    """The environment runs v1 (api "one"); v2 (api "two") is prepared, not deployed."""
    released(stores, ("api",), environment=environment)
    release.publish(stores, "api", image("api", "two"))
    release.prepare(stores, environment, "two")


def died_holding_the_lock(stores: Stores, environment: str = "stage") -> None:
    """The environment runs v1 (api "one"); a deploy of v2 (api "two") died holding its lock."""
    next_prepared(stores, environment)
    with pytest.raises(SystemExit):
        deploy.deploy(stores, environment, options=DeployOptions(terraform=Dies()))


def failed_to_deploy(stores: Stores, environment: str = "stage") -> None:
    """The environment runs v1 (api "one"); deploying v2 (api "two") failed in Terraform."""
    next_prepared(stores, environment)
    with pytest.raises(TerraformFailed):
        deploy.deploy(stores, environment, options=DeployOptions(terraform=FailsToApply()))
