"""Scenes several tests start from, set in-process (faster than the console scripts)."""

import subprocess
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.support.project import image
from tf_release.flows import deploy, release
from tf_release.flows.deploy import DeployOptions, TerraformRun
from tf_release.model import naming
from tf_release.model.errors import TerraformFailed
from tf_release.model.state import EnvironmentState
from tf_release.stores.bundle import Stores
from tf_release.terraform.runner import PlanSummary


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


def dead_pid() -> int:
    """The id of a process that has come and gone."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def mark_holder_dead(stores: Stores, environment: str = "stage") -> None:
    """A deploy "dies" in-process by raising SystemExit, but the test process lives on: the lock
    it left names a process that really is gone, as a killed deploy's would."""

    def dead(state: EnvironmentState) -> EnvironmentState:
        assert state.lock is not None
        return replace(state, lock=replace(state.lock, pid=dead_pid()))

    stores.states.update(environment, dead)


def holding_the_lock(
    stores: Stores, environment: str = "stage", terraform: TerraformRun | None = None
) -> None:
    """The environment runs v1 (api "one"); a deploy of v2 (api "two") holds its lock, and its
    process (this one) is alive."""
    next_prepared(stores, environment)
    with pytest.raises(SystemExit):
        deploy.deploy(stores, environment, options=DeployOptions(terraform=terraform or Dies()))


def died_holding_the_lock(stores: Stores, environment: str = "stage") -> None:
    """The environment runs v1 (api "one"); a deploy of v2 (api "two") died holding its lock."""
    holding_the_lock(stores, environment)
    mark_holder_dead(stores, environment)


def failed_to_deploy(stores: Stores, environment: str = "stage") -> None:
    """The environment runs v1 (api "one"); deploying v2 (api "two") failed in Terraform."""
    next_prepared(stores, environment)
    with pytest.raises(TerraformFailed):
        deploy.deploy(stores, environment, options=DeployOptions(terraform=FailsToApply()))


SCRIPTED_REASON = '<script>alert("reason")</script> & more'


def six_weeks_of_releases(stores: Stores, now: datetime) -> None:
    """stage and prod as a board draws them at `now`, each step by a named person:

    - 40 days ago (before a 30-day window): v1 of both, api, cron and worker at 1.0.0 (alice);
    - 12 days ago: stage v2, api 1.0.1, worker 1.1.0, and web 1.0.0 is new (alice);
    - 10 days ago: prod v2 takes only api 1.0.1 (bob); 9 days ago it is rolled back as v3 (bob);
    - 3 days ago: stage v3 (api 1.0.2) fails in Terraform, its reason trying to be markup (carol).
    """

    def on(days: int, person: str) -> None:
        stores.clock = lambda: now - timedelta(days=days)
        stores.identify = lambda: f"arn:aws:sts::123456789012:assumed-role/release/{person}"
        stores.__dict__.pop("caller", None)

    on(40, "alice")
    for name in ("api", "cron", "worker"):
        release.publish(stores, name, image(name, "1.0.0"))
    release.apply(stores, "stage", "first release")
    release.apply(stores, "prod", "promote the first release")
    on(12, "alice")
    for name, tag in (("api", "1.0.1"), ("worker", "1.1.0"), ("web", "1.0.0")):
        release.publish(stores, name, image(name, tag))
    release.apply(stores, "stage", "api fix, worker 1.1, web")
    on(10, "bob")
    release.apply(stores, "prod", "api hotfix", images=["api"])
    on(9, "bob")
    release.rollback(stores, "prod", "api 1.0.1 errors in prod")
    on(3, "carol")
    release.publish(stores, "api", image("api", "1.0.2"))
    with pytest.raises(TerraformFailed):
        release.apply(
            stores, "stage", SCRIPTED_REASON, options=DeployOptions(terraform=FailsToApply())
        )
    stores.clock = lambda: now


def drop_indexes(stores: Stores, environment: str) -> None:
    """Remove the environment's indexes, as in a project written by a tf-release without them."""
    prefix = naming.index_prefix(stores.config.project, environment)
    for key in list(stores.index.keys(prefix)):
        stores.index.delete(key)
